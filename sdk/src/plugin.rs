//! The plugin (root context): typed configuration, and what its streams share.

use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::http::HttpFilter;
use crate::tcp::TcpFilter;

/// A plugin: created from its configuration in `on_configure`, shared (as `Rc<Self>`) with every
/// stream it creates.
///
/// ```no_run
/// use std::rc::Rc;
/// use sluice::{Plugin, Setup};
///
/// #[derive(serde::Deserialize)]
/// struct Config { header: String }
///
/// struct AddHeader { header: String }
///
/// impl Plugin for AddHeader {
///     type Config = Config;
///     fn configure(config: Config, _setup: &mut Setup) -> sluice::Result<Self> {
///         Ok(AddHeader { header: config.header })
///     }
/// }
/// ```
pub trait Plugin: Sized + 'static {
    /// The plugin configuration, read as JSON. An empty configuration reads as `null`, then `{}`.
    type Config: DeserializeOwned;

    /// Builds the plugin. An error makes `on_configure` fail (Envoy rejects the configuration).
    fn configure(config: Self::Config, setup: &mut Setup) -> Result<Self>;

    /// The VM is starting (`proxy_on_vm_start`), before this plugin is configured; given the VM
    /// configuration's bytes. An error fails the start, and Envoy refuses the VM (and with it
    /// the listener's configuration).
    fn on_vm_start(vm_configuration: &[u8]) -> Result<()> {
        let _ = vm_configuration;
        Ok(())
    }

    /// The host called one of this plugin's foreign functions (`proxy_on_foreign_function`),
    /// with its arguments. Envoy 1.40 itself never calls it; hosts with extensions do.
    fn on_foreign_function(self: &Rc<Self>, function_id: u32, arguments: Vec<u8>) {
        let _ = (function_id, arguments);
    }

    /// The tick period set with [`Setup::tick_every`] elapsed.
    fn on_tick(self: &Rc<Self>) {}

    /// An item arrived in a queue this plugin registered.
    fn on_queue_ready(self: &Rc<Self>, queue: crate::queue::Queue) {
        let _ = queue;
    }

    /// The plugin is shutting down (Envoy is exiting, or its configuration is gone). Return
    /// `true` when there is nothing left to do (the default); `false` to finish asynchronously
    /// (in a [`spawn`](crate::spawn)ed task) and call [`done`](crate::done) when finished. Envoy
    /// does not wait for a plugin that is not done.
    fn on_done(self: &Rc<Self>) -> bool {
        true
    }
}

/// A plugin whose streams are HTTP streams.
pub trait HttpPlugin: Plugin {
    /// The per-stream filter.
    type Filter: HttpFilter;

    /// A filter for a new stream. It may keep `self` (an `Rc`) to reach the plugin's state.
    fn new_filter(self: &Rc<Self>) -> Self::Filter;
}

/// A plugin whose streams are TCP connections.
pub trait TcpPlugin: Plugin {
    /// The per-connection filter.
    type Filter: TcpFilter;

    /// A filter for a new connection.
    fn new_filter(self: &Rc<Self>) -> Self::Filter;
}

/// What a plugin can set up while it is configured.
#[derive(Debug, Default)]
pub struct Setup {
    _private: (),
}

impl Setup {
    /// Calls [`Plugin::on_tick`] every `period` (zero turns it off).
    pub fn tick_every(&mut self, period: Duration) -> Result<()> {
        crate::abi::set_tick_period_ms(u32::try_from(period.as_millis()).unwrap_or(u32::MAX))
    }

    /// The VM configuration read as JSON into `T` (empty reads as `null`, then `{}`).
    pub fn vm_config<T: DeserializeOwned>(&self) -> Result<T> {
        parse_config(&self.vm_configuration())
    }

    /// The VM configuration bytes.
    pub fn vm_configuration(&self) -> Vec<u8> {
        crate::abi::get_buffer(crate::http::BufferType::VmConfiguration as u32, 0, usize::MAX >> 1)
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

/// Parses the plugin configuration into `T`.
pub(crate) fn parse_config<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    // A configuration type with no data (`()`, a unit struct) needs no parser. The size test is a
    // constant, so for such types the JSON parser is not even linked in: a hello-world stays small.
    if std::mem::size_of::<T>() == 0 {
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            log::warn!("the plugin takes no configuration; ignoring the {} bytes given", bytes.len());
        }
        return T::deserialize(serde::de::value::UnitDeserializer::<serde::de::value::Error>::new())
            .map_err(|e| Error::Config(e.to_string()));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"null")
            .or_else(|_| serde_json::from_slice(b"{}"))
            .map_err(|e| Error::Config(format!("the configuration is empty and {e}")));
    }
    serde_json::from_slice(bytes).map_err(|e| Error::Config(e.to_string()))
}
