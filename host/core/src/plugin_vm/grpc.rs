//! Answering gRPC calls and streams the plugin opened, in Envoy's callback order.

use super::PluginVm;
use crate::error::{Error, Result};
use crate::stream::HeaderMap;
use crate::vm::CalloutToken;

impl PluginVm {
    fn check_grpc(&self, token: CalloutToken) -> Result<()> {
        if self.grpc_calls.iter().any(|c| c.token == token) {
            Ok(())
        } else {
            Err(Error::Usage(format!("no open gRPC call or stream with token {token}")))
        }
    }

    fn forget_grpc(&mut self, token: CalloutToken) {
        self.grpc_calls.retain(|c| c.token != token);
    }

    /// Answers a unary gRPC call: `Ok(message)` is delivered to `proxy_on_grpc_receive`; `Err((status,
    /// message))` to `proxy_on_grpc_close` with the message readable through `proxy_get_status`.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn respond_grpc_call(
        &mut self,
        token: CalloutToken,
        reply: std::result::Result<Vec<u8>, (u32, String)>,
    ) -> Result<()> {
        self.check_grpc(token)?;
        let r = match reply {
            Ok(message) => {
                let r = self.vm.deliver_grpc_message(token, message);
                self.vm.forget_grpc(token);
                r
            }
            Err((status, message)) => self.vm.deliver_grpc_close(token, status, message.as_bytes()),
        };
        self.forget_grpc(token);
        self.after_guest_call(r)
    }

    /// Delivers initial metadata on a gRPC stream.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn grpc_stream_initial_metadata(&mut self, token: CalloutToken, metadata: HeaderMap) -> Result<()> {
        self.check_grpc(token)?;
        let r = self.vm.deliver_grpc_initial_metadata(token, metadata);
        self.after_guest_call(r)
    }

    /// Delivers one message on a gRPC stream.
    ///
    /// # Errors
    /// A guest fault is not an error here: the VM's failure policy applies and its streams see it (see
    /// [`PluginVm::vm_failures`](crate::plugin_vm::PluginVm::vm_failures)). The errors are the driver's:
    /// [`Error::Usage`] for a stream, connection or token this VM does not know,
    /// [`Error::Runaway`] when the plugin keeps making work without end.
    pub fn grpc_stream_message(&mut self, token: CalloutToken, message: impl Into<Vec<u8>>) -> Result<()> {
        self.check_grpc(token)?;
        let r = self.vm.deliver_grpc_message(token, message.into());
        self.after_guest_call(r)
    }

    /// Delivers trailing metadata, then closes the stream with `status` and `message`.
    pub fn close_grpc_stream(
        &mut self,
        token: CalloutToken,
        trailers: HeaderMap,
        status: u32,
        message: &str,
    ) -> Result<()> {
        self.check_grpc(token)?;
        let r = self.vm.deliver_grpc_trailing_metadata(token, trailers);
        self.after_guest_call(r)?;
        let r = self.vm.deliver_grpc_close(token, status, message.as_bytes());
        self.forget_grpc(token);
        self.after_guest_call(r)
    }
}
