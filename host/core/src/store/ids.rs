//! The numbers a guest and its host share: context ids and callout tokens, each its own type so
//! that one can never be passed where the other is meant.

use std::fmt;

/// A context inside a VM, as the guest knows it: root contexts and stream contexts share one
/// numbering, which starts at 1 (Envoy numbers them the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContextId(pub(crate) u32);

impl ContextId {
    /// The number the guest sees.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "context {}", self.0)
    }
}

/// The token a guest got for one callout (`proxy_http_call`, `proxy_grpc_call` or
/// `proxy_grpc_stream`); the answer is delivered under it.
///
/// Tokens are handed out by the VM only, so a test answers the callout it found in
/// `Harness::http_callouts` or
/// `Harness::grpc_callouts` by its token:
///
/// ```no_run
/// # fn f(h: &mut sluice_harness::Harness) -> sluice_core::Result<()> {
/// let token = h.http_callouts()[0].token;
/// h.respond_http_callout(token, sluice_harness::CalloutReply::new(200))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CalloutToken(pub(crate) u32);

impl CalloutToken {
    /// The number the guest sees (for gRPC, Envoy's: ≡ 1 mod 4 for calls, ≡ 2 mod 4 for streams).
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for CalloutToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token {}", self.0)
    }
}
