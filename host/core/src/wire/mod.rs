//! The proxy-wasm ABI's plain data, as numbers and bytes cross the guest boundary: the statuses and
//! enumerations with Envoy's values, and the encoding of header pairs. It depends on nothing else
//! in the crate, so that stream and shared state, the store data and the hostcalls can all use it.

pub mod codec;
pub mod grpc_service;
pub mod status;
