//! What can stop `sluice serve` from starting: each failure names the listener, file, thread or
//! plugin, and keeps the operating system's or the plugin's error as its source.

use std::net::SocketAddr;

/// A failure to start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener's address cannot be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A bound listener cannot join a worker's event loop.
    #[error("cannot serve listener {listener}")]
    Serve {
        /// The listener's name.
        listener: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An access log file cannot be opened for appending.
    #[error("cannot open the access log {path}")]
    AccessLog {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A thread or a worker's event loop cannot be started.
    #[error("cannot start {what}")]
    Thread {
        /// Which ("a worker thread", "the admin thread", …).
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A plugin does not start in a worker.
    #[error("plugin `{plugin}` failed to start")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// Why.
        #[source]
        source: Box<sluice_core::Error>,
    },
    /// A server thread panicked before it was ready.
    #[error("a server thread panicked while starting: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
}
