//! Panics three calls deep when a request has `x-panic`: for the guest backtraces a trap shows
//! (function names always; files and lines when the module keeps its line tables).
use std::rc::Rc;

use sluice::http::{Action, Headers, HttpFilter, Request};
use sluice::{HttpPlugin, Plugin, Setup};

struct DeepPanic;

impl Plugin for DeepPanic {
    type Config = ();
    fn configure(_: (), _: &mut Setup) -> sluice::Result<Self> {
        Ok(DeepPanic)
    }
}

impl HttpPlugin for DeepPanic {
    type Filter = DeepPanic;
    fn new_filter(self: &Rc<Self>) -> DeepPanic {
        DeepPanic
    }
}

#[inline(never)]
fn check_outer(value: &[u8]) -> usize {
    check_middle(value) + 1
}

#[inline(never)]
fn check_middle(value: &[u8]) -> usize {
    check_inner(value) * 2
}

#[inline(never)]
fn check_inner(value: &[u8]) -> usize {
    if value == b"now" {
        panic!("deep trouble: x-panic is {:?}", String::from_utf8_lossy(value));
    }
    value.len()
}

impl HttpFilter for DeepPanic {
    async fn on_request_headers(&mut self, req: Request<'_>, _eos: bool) -> sluice::Result<Action> {
        if let Some(v) = req.header("x-panic")? {
            std::hint::black_box(check_outer(std::hint::black_box(&v)));
        }
        Ok(Action::Continue)
    }
}

sluice::http_filter!(DeepPanic);
