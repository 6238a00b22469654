//! `tcp-guard`: a network filter in front of `tcp_proxy`.
//!
//! - counts bytes from clients (`tcp_guard.bytes_in`) and from upstreams (`tcp_guard.bytes_out`);
//! - closes a connection whose first bytes start with a denied prefix (`tcp_guard.denied`);
//! - allows at most `max_connections_per_client` open connections per client IP address, counted
//!   in shared data so that every worker sees the same count (`tcp_guard.limited`).
use std::rc::Rc;

use serde::Deserialize;
use sluice::prelude::*;
use sluice::tcp::Peer;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Connections whose first bytes start with one of these are closed.
    #[serde(default)]
    deny_prefixes: Vec<String>,
    /// Open connections allowed per client IP address (none: no limit).
    #[serde(default)]
    max_connections_per_client: Option<u32>,
}

struct Guard {
    config: Config,
    bytes_in: Counter,
    bytes_out: Counter,
    denied: Counter,
    limited: Counter,
}

impl Plugin for Guard {
    type Config = Config;

    fn configure(config: Config, _: &mut Setup) -> sluice::Result<Self> {
        if config.deny_prefixes.iter().any(String::is_empty) {
            return Err(Error::Config("an empty deny prefix would close every connection".into()));
        }
        if config.max_connections_per_client == Some(0) {
            return Err(Error::Config("max_connections_per_client 0 would refuse every connection".into()));
        }
        Ok(Guard {
            config,
            bytes_in: Counter::new("tcp_guard.bytes_in")?,
            bytes_out: Counter::new("tcp_guard.bytes_out")?,
            denied: Counter::new("tcp_guard.denied")?,
            limited: Counter::new("tcp_guard.limited")?,
        })
    }
}

impl TcpPlugin for Guard {
    type Filter = Conn;

    fn new_filter(self: &Rc<Self>) -> Conn {
        Conn { plugin: self.clone(), client: String::new(), first: true, counted_as: None, closed: false }
    }
}

struct Conn {
    plugin: Rc<Guard>,
    /// The client's IP address.
    client: String,
    first: bool,
    /// The shared-data key this connection is counted under, until it ends.
    counted_as: Option<String>,
    /// This filter closed the connection: nothing more goes through.
    closed: bool,
}

impl Conn {
    fn close(&mut self, connection: &TcpConnection) -> sluice::Result<TcpAction> {
        self.closed = true;
        connection.close_downstream()?;
        Ok(TcpAction::Pause)
    }

    /// Gives back this connection's place in its client's count.
    fn release(&mut self) {
        if let Some(key) = self.counted_as.take() {
            if let Err(e) = sluice::shared::update(&key, |n: Option<u32>| n.unwrap_or(1).saturating_sub(1)) {
                log::error!("tcp-guard: cannot release {key}: {e}");
            }
        }
    }
}

impl TcpFilter for Conn {
    fn on_new_connection(&mut self, connection: TcpConnection) -> sluice::Result<TcpAction> {
        self.client = sluice::properties::source_ip().ok().flatten().map(|ip| ip.to_string()).unwrap_or_default();
        let Some(max) = self.plugin.config.max_connections_per_client else { return Ok(TcpAction::Continue) };
        let key = format!("tcp_guard:open:{}", self.client);
        let mut admitted = false;
        let result = sluice::shared::update(&key, |n: Option<u32>| {
            let n = n.unwrap_or(0);
            admitted = n < max;
            if admitted {
                n + 1
            } else {
                n
            }
        });
        match result {
            Ok(_) if admitted => {
                self.counted_as = Some(key);
                Ok(TcpAction::Continue)
            }
            Ok(n) => {
                log::info!("tcp-guard: {} already has {n} connections; closing", self.client);
                self.plugin.limited.inc();
                self.close(&connection)
            }
            Err(e) => {
                // Shared data failed: serve the client rather than refuse everyone.
                log::warn!("tcp-guard: {e}; not limiting this connection");
                Ok(TcpAction::Continue)
            }
        }
    }

    fn on_downstream_data(&mut self, data: Data<'_>, _end_of_stream: bool) -> sluice::Result<TcpAction> {
        if self.closed {
            return Ok(TcpAction::Pause);
        }
        self.plugin.bytes_in.add(data.len() as u64);
        if std::mem::take(&mut self.first) && !data.is_empty() && !self.plugin.config.deny_prefixes.is_empty() {
            let bytes = data.read()?;
            if self.plugin.config.deny_prefixes.iter().any(|p| bytes.starts_with(p.as_bytes())) {
                log::info!("tcp-guard: denied first bytes from {}", self.client);
                self.plugin.denied.inc();
                return self.close(&data.connection());
            }
        }
        Ok(TcpAction::Continue)
    }

    fn on_upstream_data(&mut self, data: Data<'_>, _end_of_stream: bool) -> sluice::Result<TcpAction> {
        self.plugin.bytes_out.add(data.len() as u64);
        Ok(TcpAction::Continue)
    }

    fn on_downstream_close(&mut self, _peer: Peer) {
        self.release();
    }

    fn on_log(&mut self) {
        self.release();
    }
}

sluice::tcp_filter!(Guard);
