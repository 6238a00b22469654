//! The names a driver uses to address the core: streams and directions.

use std::fmt;

/// One HTTP stream or TCP connection of a [`PluginVm`](super::PluginVm), as the plugin's driver
/// names it (not the guest's context id, which exists only once the context is created).
///
/// Ids come only from [`PluginVm::open_http`](super::PluginVm::open_http) and
/// [`PluginVm::open_tcp`](super::PluginVm::open_tcp), so an id always names a stream that was opened;
/// one that was closed since is answered as finished, never with a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub(crate) u32);

impl StreamId {
    /// The number behind the id (unique within its plugin instance).
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}", self.0)
    }
}

/// One plugin of a [`PluginVm`](super::PluginVm)'s VM (plugins with the same `vm_id`,
/// VM configuration and code share one VM, each with its own root context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PluginId(pub(crate) usize);

impl PluginId {
    /// The plugin the VM was started with.
    pub const FIRST: PluginId = PluginId(0);
}

/// Which way a message flows through the filter.
///
/// For HTTP, the request goes from the client to the upstream and the response back. For TCP,
/// `Request` is the bytes the client sends (`on_downstream_data`) and `Response` the bytes the
/// upstream sends (`on_upstream_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to upstream.
    Request,
    /// Upstream to client.
    Response,
}

impl Direction {
    /// 0 for the request, 1 for the response: the index of per-direction pairs.
    pub fn index(self) -> usize {
        match self {
            Direction::Request => 0,
            Direction::Response => 1,
        }
    }
}
