//! `sluice`: write proxy-wasm filters for Envoy in idiomatic Rust.
//!
//! The SDK is being built (see the project's issue tracker); today this crate only reserves the name
//! and the place in the workspace.
