//! `proxy_get_property` / `proxy_set_property`: Envoy's attribute paths and their binary encodings.

use wasmtime::{Caller, Linker};

use super::codec;
use super::memory::{finish, return_bytes, slice, split, CallResult};
use super::require_running;
use super::status::Status;
use crate::store::{ContextKind, Host};
use crate::stream::{struct_property, HeaderMap, MapSlot, Metadata, PropertyValue, StreamInfo};

type Value = Result<PropertyValue, Status>;

fn text(s: &str) -> Value {
    Ok(PropertyValue::String(s.to_string()))
}

fn opt_text(s: Option<&String>) -> Value {
    s.map(|s| PropertyValue::String(s.clone())).ok_or(Status::NotFound)
}

fn header_map(m: &HeaderMap) -> PropertyValue {
    // Repeated values are joined with commas, as CEL's header map view does.
    let mut out: Vec<(String, PropertyValue)> = Vec::new();
    for (k, v) in m.iter() {
        let k = String::from_utf8_lossy(k).into_owned();
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some((_, PropertyValue::Bytes(existing))) => {
                existing.push(b',');
                existing.extend_from_slice(v);
            }
            _ => out.push((k, PropertyValue::Bytes(v.to_vec()))),
        }
    }
    PropertyValue::Map(out)
}

fn headers_attr(slot: &MapSlot, rest: &[&[u8]]) -> Value {
    if !slot.access.readable() {
        return Err(Status::NotFound);
    }
    match rest {
        [] => Ok(header_map(&slot.map)),
        [name] => {
            let joined: Vec<&[u8]> =
                slot.map.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v).collect();
            if joined.is_empty() {
                return Err(Status::NotFound);
            }
            Ok(PropertyValue::Bytes(joined.join(&b","[..])))
        }
        _ => Err(Status::NotFound),
    }
}

fn request_attr(req: &MapSlot, info: &StreamInfo, field: &[u8], rest: &[&[u8]]) -> Value {
    match field {
        b"time" => return info.request_time_nanos.map(PropertyValue::Timestamp).ok_or(Status::NotFound),
        b"protocol" => return opt_text(info.protocol.as_ref()),
        b"duration" => return info.request_duration_nanos.map(PropertyValue::Duration).ok_or(Status::NotFound),
        // Envoy's: the request's content-length while it has one (so the size is known at the
        // headers), else the body bytes received so far.
        b"size" => {
            let length = if req.access.readable() { req.map.get("content-length") } else { None };
            return match length {
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .map(PropertyValue::Int)
                    .ok_or(Status::NotFound),
                None => Ok(PropertyValue::Int(info.request_body_bytes as i64)),
            };
        }
        // Envoy's: the body bytes received so far and the headers' bytes (names and values),
        // while the headers are there to count.
        b"total_size" => {
            let headers = if req.access.readable() { req.map.byte_size() } else { 0 };
            return Ok(PropertyValue::Int((info.request_body_bytes as usize + headers) as i64));
        }
        b"headers" => return headers_attr(req, rest),
        _ => {}
    }
    if !req.access.readable() {
        return Err(Status::NotFound);
    }
    let h = &req.map;
    let header = |name: &str| h.get(name).map(|v| PropertyValue::Bytes(v.to_vec())).ok_or(Status::NotFound);
    let path = h.get(":path").unwrap_or_default();
    let (url_path, query) = match path.iter().position(|b| *b == b'?') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (path, &b""[..]),
    };
    match field {
        b"path" => header(":path"),
        b"url_path" => Ok(PropertyValue::Bytes(url_path.to_vec())),
        b"query" => Ok(PropertyValue::Bytes(query.to_vec())),
        b"host" => header(":authority"),
        b"scheme" => header(":scheme"),
        b"method" => header(":method"),
        b"referer" => header("referer"),
        b"useragent" => header("user-agent"),
        b"id" => header("x-request-id"),
        b"headers_bytes" => Ok(PropertyValue::Int(h.byte_size() as i64)),
        _ => Err(Status::NotFound),
    }
}

fn response_attr(resp: &MapSlot, trailers: &MapSlot, info: &StreamInfo, field: &[u8], rest: &[&[u8]]) -> Value {
    match field {
        b"code" => info.response_code.map(|c| PropertyValue::Int(c.into())).ok_or(Status::NotFound),
        b"code_details" => opt_text(info.response_code_details.as_ref()),
        b"size" => Ok(PropertyValue::Int(info.response_body_bytes as i64)),
        // Envoy's: the body bytes sent and the bytes of the headers and trailers it has.
        b"total_size" => {
            let bytes = |slot: &MapSlot| if slot.access.readable() { slot.map.byte_size() } else { 0 };
            Ok(PropertyValue::Int((info.response_body_bytes as usize + bytes(resp) + bytes(trailers)) as i64))
        }
        b"headers_bytes" => {
            Ok(PropertyValue::Int(if resp.access.readable() { resp.map.byte_size() as i64 } else { 0 }))
        }
        // Envoy's legacy response-flag bits. sluice raises none of them on a stream a filter sees
        // yet (its access logs set only DPE, for heads no filter sees), so this is 0, as Envoy's
        // is for every stream that neither failed upstream nor was cut off.
        b"flags" => Ok(PropertyValue::Int(0)),
        b"headers" if rest.is_empty() && !resp.access.readable() => Ok(PropertyValue::Map(Vec::new())),
        b"headers" => headers_attr(resp, rest),
        b"trailers" if rest.is_empty() && !trailers.access.readable() => Ok(PropertyValue::Map(Vec::new())),
        b"trailers" => headers_attr(trailers, rest),
        _ => Err(Status::NotFound),
    }
}

fn address_attr(addr: Option<std::net::SocketAddr>, field: &[u8]) -> Value {
    let addr = addr.ok_or(Status::NotFound)?;
    match field {
        b"address" => text(&addr.to_string()),
        b"port" => Ok(PropertyValue::Int(addr.port().into())),
        _ => Err(Status::NotFound),
    }
}

/// `xds.*_metadata` below the message `m`, or NotFound where there is none (no stream, no route).
fn metadata(m: Option<&Metadata>, rest: &[&[u8]]) -> Value {
    m.ok_or(Status::NotFound)?.property(rest)
}

/// Resolves a property path for the effective context.
pub(crate) fn resolve(host: &Host, path: &[u8]) -> Result<Vec<u8>, Status> {
    let segments = codec::split_path(path);
    let ctx = host.effective();
    let (info, filter_state, http) = match ctx.map(|c| &c.kind) {
        Some(ContextKind::Http(s)) => (Some(&s.info), Some(&s.filter_state), Some(&**s)),
        Some(ContextKind::Tcp(s)) => (Some(&s.info), Some(&s.filter_state), None),
        _ => (None, None, None),
    };
    let joined = segments.join(&0u8);
    if let Some(v) = info.and_then(|i| i.extra.get(&joined)) {
        return Ok(v.encode());
    }
    let root = host.effective_root();
    let value: Value = match segments.as_slice() {
        [b"plugin_name"] => root.map(|r| PropertyValue::from(r.plugin.name.as_str())).ok_or(Status::NotFound),
        [b"plugin_root_id"] => root.map(|r| PropertyValue::from(r.plugin.root_id.as_str())).ok_or(Status::NotFound),
        [b"plugin_vm_id"] => text(&host.vm_id),
        [b"connection_id"] => info.map(|i| PropertyValue::UInt(i.connection_id)).ok_or(Status::NotFound),
        [b"xds", b"node"] => Ok(PropertyValue::Bytes(host.env.node.proto.clone())),
        [b"xds", b"node", b"metadata", rest @ ..] => match &host.env.node.metadata {
            serde_yaml_ng::Value::Null => struct_property(&serde_yaml_ng::Value::Mapping(Default::default()), rest),
            m => struct_property(m, rest),
        },
        [b"xds", b"listener_metadata", rest @ ..] => metadata(info.and_then(|i| i.listener_metadata.as_ref()), rest),
        [b"xds", b"virtual_host_metadata", rest @ ..] => {
            metadata(info.and_then(|i| i.virtual_host_metadata.as_ref()), rest)
        }
        [b"xds", b"route_metadata", rest @ ..] => metadata(info.and_then(|i| i.route_metadata.as_ref()), rest),
        [b"xds", b"cluster_metadata", rest @ ..] => metadata(info.and_then(|i| i.cluster_metadata.as_ref()), rest),
        [b"xds", b"node", b"id"] => text(&host.env.node.id),
        [b"xds", b"node", b"cluster"] => text(&host.env.node.cluster),
        [b"xds", b"cluster_name"] => opt_text(info.and_then(|i| i.cluster_name.as_ref())),
        [b"xds", b"route_name"] => opt_text(info.and_then(|i| i.route_name.as_ref())),
        [b"xds", b"virtual_host_name"] => opt_text(info.and_then(|i| i.virtual_host_name.as_ref())),
        [b"xds", b"listener_direction"] => info.map(|_| PropertyValue::Int(0)).ok_or(Status::NotFound),
        [b"request", field, rest @ ..] => match (http, info) {
            (Some(s), Some(i)) => request_attr(&s.request_headers, i, field, rest),
            _ => Err(Status::NotFound),
        },
        [b"response", field, rest @ ..] => match (http, info) {
            (Some(s), Some(i)) => response_attr(&s.response_headers, &s.response_trailers, i, field, rest),
            _ => Err(Status::NotFound),
        },
        [b"source", field] => address_attr(info.and_then(|i| i.source), field),
        [b"destination", field] => address_attr(info.and_then(|i| i.destination), field),
        [b"upstream", field] => address_attr(info.and_then(|i| i.upstream), field),
        [b"connection", b"id"] => info.map(|i| PropertyValue::UInt(i.connection_id)).ok_or(Status::NotFound),
        [b"connection", b"mtls"] => info.map(|_| PropertyValue::Bool(false)).ok_or(Status::NotFound),
        [b"connection", b"requested_server_name"] => info.map(|_| PropertyValue::from("")).ok_or(Status::NotFound),
        // A whole namespace cannot be serialized (Envoy: SERIALIZATION_FAILURE).
        [b"request" | b"response" | b"source" | b"destination" | b"upstream" | b"connection" | b"xds"
        | b"filter_state"] => Err(Status::SerializationFailure),
        [b"filter_state", key] => {
            let key = key.strip_prefix(b"wasm.").ok_or(Status::NotFound)?;
            filter_state.and_then(|f| f.get(key)).map(|v| PropertyValue::Bytes(v.clone())).ok_or(Status::NotFound)
        }
        _ => filter_state.and_then(|f| f.get(&joined)).map(|v| PropertyValue::Bytes(v.clone())).ok_or(Status::NotFound),
    };
    value.map(|v| v.encode())
}

fn get(caller: &mut Caller<'_, Host>, pp: i32, pl: i32, ret_ptr: i32, ret_len: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let path = slice(mem, pp, pl)?;
    let value = resolve(host, path)?;
    return_bytes(caller, &value, ret_ptr, ret_len)
}

/// Stores the value as the stream's filter state `wasm.<path>`; real attributes never change.
fn set(caller: &mut Caller<'_, Host>, pp: i32, pl: i32, vp: i32, vl: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let path = codec::split_path(slice(mem, pp, pl)?).join(&0u8);
    let value = slice(mem, vp, vl)?.to_vec();
    let state = match host.effective_mut().map(|c| &mut c.kind) {
        Some(ContextKind::Http(s)) => &mut s.filter_state,
        Some(ContextKind::Tcp(s)) => &mut s.filter_state,
        _ => return Err(Status::NotFound.into()),
    };
    state.insert(path, value);
    Ok(())
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_property", |mut c: Caller<'_, Host>, pp: i32, pl: i32, rp: i32, rl: i32| {
        require_running(&c, "proxy_get_property")?;
        finish(get(&mut c, pp, pl, rp, rl))
    })?;
    linker.func_wrap("env", "proxy_set_property", |mut c: Caller<'_, Host>, pp: i32, pl: i32, vp: i32, vl: i32| {
        require_running(&c, "proxy_set_property")?;
        finish(set(&mut c, pp, pl, vp, vl))
    })?;
    Ok(())
}
