//! Ports for the proxies a test starts with a port in their configuration.

/// A port on 127.0.0.1 that nothing listens on right now, for a proxy to bind a moment later.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`, 32768 and up by default), at a
/// random place per process and distinct within it: a port the kernel handed out and took back
/// can be handed again as the source port of any test's client connection before the proxy binds
/// it (seen once: Envoy exiting with "Address already in use").
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    for _ in 0..SPAN {
        let port = (LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}
