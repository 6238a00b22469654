//! A stream's filter chain, as Envoy's filter manager steps it: the part of the core both drivers
//! share.
//!
//! Each filter of a chain is one plugin in some VM ([`PluginVm`]: a VM and the plugins that
//! share it); a chain holds, for one HTTP stream or one TCP connection, that filter's stream in its
//! VM, and moves what each filter lets through on to the next one — requests and client bytes in
//! the chain's order, responses and upstream bytes in reverse — until it leaves the chain. It does
//! no I/O: a driver pushes what arrived in at one end, pulls what came out at the other, and asks
//! whether the stream was answered, reset or closed, or must stop reading a peer.
//!
//! The VMs themselves stay with the driver (the harness owns them; `sluice serve` shares them between
//! the streams of a worker): a chain reaches them through [`Vms`], one step at a time.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sluice_core::chain::HttpChain;
//! use sluice_core::plugin_vm::{Direction, PluginVm, PluginId, Forwarded};
//! use sluice_core::runtime::{Runtime, RuntimeConfig};
//! use sluice_core::stream::{HeaderMap, StreamInfo};
//! use sluice_core::vm::{RealClock, PluginInfo, ProxyEnv, TracingLogSink, VmOptions};
//!
//! let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
//! let env = Arc::new(ProxyEnv::new(Default::default(), Arc::new(TracingLogSink), RealClock::shared()));
//! let start = |file: &str| -> sluice_core::Result<PluginVm> {
//!     let module = runtime.load_file(file)?;
//!     PluginVm::start(&runtime, module, env.clone(), PluginInfo::default(), VmOptions::default())
//! };
//! // Two filters, each in a VM of its own; the driver keeps the VMs.
//! let mut vms = vec![start("auth.wasm")?, start("headers.wasm")?];
//! let filters = [(0, PluginId::FIRST), (1, PluginId::FIRST)];
//! let mut chain = HttpChain::open(&mut vms, filters, &StreamInfo::default(), 1 << 20);
//! let headers = HeaderMap::from_pairs([(":method", "GET"), (":path", "/"), (":authority", "x")]);
//! chain.push(&mut vms, Direction::Request, Forwarded { headers: Some(headers), end_of_stream: true, ..Default::default() });
//! let upstream = chain.pull(&mut vms, Direction::Request); // what the last filter let through
//! # let _ = upstream;
//! chain.close(&mut vms);
//! # Ok::<(), sluice_core::Error>(())
//! ```

mod http;
mod tcp;

pub use http::{Answer, HttpChain};
pub use tcp::{TcpChain, TcpOut};

use crate::plugin_vm::{PluginId, PluginVm, StreamId};

/// Where a chain finds the VMs of its filters: the driver's own handles on them.
///
/// A driver that owns its VMs uses `Vec<PluginVm>` (a filter's VM is its index); `sluice
/// serve` names each by the worker's shared handle and does what a VM asked for (callouts, timers)
/// after each step.
pub trait Vms {
    /// How the driver names one VM.
    type Key;

    /// Runs `f` on VM `key` as one step of a stream; the driver then does what the VM asked for.
    fn step<T>(&mut self, key: &Self::Key, f: impl FnOnce(&mut PluginVm) -> T) -> T;

    /// Reads VM `key` without stepping it.
    fn peek<T>(&self, key: &Self::Key, f: impl FnOnce(&PluginVm) -> T) -> T;
}

/// VMs a driver owns, named by their index (as the harness holds them).
impl Vms for Vec<PluginVm> {
    type Key = usize;

    fn step<T>(&mut self, key: &usize, f: impl FnOnce(&mut PluginVm) -> T) -> T {
        f(&mut self[*key])
    }

    fn peek<T>(&self, key: &usize, f: impl FnOnce(&PluginVm) -> T) -> T {
        f(&self[*key])
    }
}

/// One filter of a chain: which VM, which of its plugins, and this stream's id in that VM.
#[derive(Debug, Clone)]
pub struct Link<K> {
    /// The VM the filter runs in, as the driver names it.
    pub vm: K,
    /// Which of the VM's plugins the filter is.
    pub plugin: PluginId,
    /// The stream (or connection) in that VM.
    pub stream: StreamId,
}
