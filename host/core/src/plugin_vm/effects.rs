//! What the core asks its driver to do: the only way work leaves it.

use super::StreamId;
use crate::vm::{CalloutToken, GrpcCallout, HttpCallout};

/// One thing a driver must do for the core, drained with
/// [`PluginVm::take_effects`](super::PluginVm::take_effects) after each call into it.
///
/// Nothing in the core polls: a callout is announced once, a stream that moved while its driver
/// was not stepping it is named once, and the next timer is read with
/// [`PluginVm::next_deadline`](super::PluginVm::next_deadline).
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send this HTTP callout; its answer goes back through
    /// [`PluginVm::answer_http_callout`](super::PluginVm::answer_http_callout). The core times it out
    /// by itself (Envoy's 504) if the answer comes after its timeout.
    HttpCallout(HttpCallout),
    /// Open this gRPC call (`streaming: false`, one message) or stream, with what it holds so far.
    GrpcOpen(GrpcCallout),
    /// Send one more message on an open gRPC stream (`end_of_stream`: the plugin half-closed it).
    GrpcSend {
        /// The stream's token.
        token: CalloutToken,
        /// The message, without its length prefix (`None`: only the half-close).
        message: Option<Vec<u8>>,
        /// The plugin will send nothing more.
        end_of_stream: bool,
    },
    /// The plugin cancelled a gRPC call or stream: stop talking to the upstream.
    GrpcCancel(CalloutToken),
    /// A stream moved on outside its driver's own step (a callout answer, a timer, a queue event,
    /// a failed VM): its driver should look at it again.
    Wake(StreamId),
}
