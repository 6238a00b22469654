//! `sluice-proxy`: what `sluice serve` is made of.
//!
//! [`config`] reads an Envoy bootstrap against Envoy's own API schema (the descriptor set of
//! `envoy-types`) into a plan, refusing what sluice does not implement with its YAML path;
//! [`server`] serves the plan with tokio and hyper: listeners, routes, clusters, the admin
//! endpoint, stats and access logs, each stream's filters driven through the core's chain
//! (`sluice_core::chain`).

pub mod config;
pub mod server;
