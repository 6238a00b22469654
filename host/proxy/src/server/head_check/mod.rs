//! Envoy's HTTP/1 codec refusals, decided on a connection's raw request bytes before hyper parses
//! them.
//!
//! hyper's parser forgives or discards what Envoy's refuses: it serves `Content-Length` together
//! with `Transfer-Encoding` (dropping the length), two equal `Content-Length`s, a
//! `Transfer-Encoding` whose last coding is `chunked`, and drops a `#fragment` from the target; the
//! request it hands on no longer shows any of it. And where hyper does refuse, its answer has
//! neither Envoy's status for every case (400 where Envoy says 426 or 501) nor Envoy's body. So each
//! request head is read here first, with the parser hyper uses (httparse), and checked in the order
//! Envoy 1.40 checks it (each asked of a real Envoy; `integration/tests/hostile_http1.rs` pins
//! them). A refused head never reaches hyper: in its place hyper gets a stand-in request, marked
//! with a header of its own, which the service answers with the [`Refusal`], and
//! nothing after it, as a refusal ends the connection.
//!
//! To find the next head, bodies are framed as hyper frames them (its `Content-Length` and chunked
//! decoders, step for step). Only framing both accept can lead to a later head: wherever hyper
//! would fail a body (a bad chunk) the connection ends there, and wherever the two could disagree
//! (an upgrade, a `CONNECT`) the checks stop for the rest of the connection rather than guess.
//!
//! One idea per file: [`Refusal`] (what Envoy answers), [`Rules`] (a listener's limits and
//! Envoy's checks of one complete head, in its order), `framing` (where a connection is between
//! heads: hyper's body decoders, state for state), [`Heads`] (the sans-IO scanner over a
//! connection's bytes; public, so a fuzz target drives it in-process) and `reader` (the
//! `AsyncRead` that puts the scanner in front of hyper).

mod framing;
mod reader;
mod refusal;
mod rules;
mod scanner;

pub(crate) use reader::{Checked, Refused, Verdict, STAND_IN_HEADER};
pub use refusal::Refusal;
pub use rules::Rules;
pub use scanner::{Heads, Step};
