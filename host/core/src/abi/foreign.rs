//! `proxy_call_foreign_function`: the Envoy foreign functions that make sense without Envoy.
//!
//! `compress` / `uncompress` (zlib), `clear_route_cache`, `declare_property` and
//! `set_envoy_filter_state` (protobuf arguments, as Envoy takes them). Unknown names are NOT_FOUND.

use std::io::{Read, Write};

use wasmtime::{Caller, Linker};

use super::memory::{finish, return_bytes, slice, split, CallResult};
use super::require_running;
use super::status::Status;
use crate::store::{ContextKind, Host};

/// Filter-state object factories Envoy registers that a filter may name in `set_envoy_filter_state`.
const FILTER_STATE_FACTORIES: &[&str] = &[
    "envoy.string",
    "envoy.tcp_proxy.cluster",
    "envoy.network.upstream_server_name",
    "envoy.network.application_protocols",
    "envoy.network.upstream_subject_alt_names",
    "envoy.network.transport_socket.original_dst_address",
];

/// A protobuf field: its number, and its varint value (`Ok`) or its bytes (`Err`).
type Field<'a> = (u32, Result<u64, &'a [u8]>);

/// The fields of a protobuf message.
fn proto_fields(mut b: &[u8]) -> Option<Vec<Field<'_>>> {
    fn varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = varint(&mut b)?;
        let field = u32::try_from(tag >> 3).ok()?;
        match tag & 7 {
            0 => out.push((field, Ok(varint(&mut b)?))),
            2 => {
                let len = usize::try_from(varint(&mut b)?).ok()?;
                if len > b.len() {
                    return None;
                }
                out.push((field, Err(&b[..len])));
                b = &b[len..];
            }
            _ => return None,
        }
    }
    (field_ok(&out)).then_some(out)
}

fn field_ok(fields: &[Field<'_>]) -> bool {
    fields.iter().all(|(n, _)| *n > 0)
}

fn bytes_field<'a>(fields: &[Field<'a>], n: u32) -> Option<&'a [u8]> {
    fields.iter().find_map(|(f, v)| (*f == n).then_some(*v).and_then(|v| v.err()))
}

fn compress(args: &[u8]) -> Result<Vec<u8>, Status> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(args).map_err(|_| Status::InternalFailure)?;
    enc.finish().map_err(|_| Status::InternalFailure)
}

fn uncompress(args: &[u8]) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(args).read_to_end(&mut out).map_err(|_| Status::SerializationFailure)?;
    Ok(out)
}

fn declare_property(host: &mut Host, args: &[u8]) -> Result<Vec<u8>, Status> {
    let fields = proto_fields(args).ok_or(Status::BadArgument)?;
    let name = bytes_field(&fields, 1).and_then(|n| std::str::from_utf8(n).ok()).ok_or(Status::BadArgument)?;
    if name.is_empty() || !host.declared_properties.insert(name.to_string()) {
        return Err(Status::BadArgument);
    }
    Ok(Vec::new())
}

fn set_envoy_filter_state(host: &mut Host, args: &[u8]) -> Result<Vec<u8>, Status> {
    let fields = proto_fields(args).ok_or(Status::BadArgument)?;
    let path = bytes_field(&fields, 1).and_then(|n| std::str::from_utf8(n).ok()).ok_or(Status::BadArgument)?;
    let value = bytes_field(&fields, 2).unwrap_or_default().to_vec();
    if !FILTER_STATE_FACTORIES.contains(&path) {
        return Err(Status::NotFound);
    }
    let state = match host.effective_mut().map(|c| &mut c.kind) {
        Some(ContextKind::Http(s)) => &mut s.filter_state,
        Some(ContextKind::Tcp(s)) => &mut s.filter_state,
        _ => return Err(Status::NotFound),
    };
    let mut key = b"envoy:".to_vec();
    key.extend_from_slice(path.as_bytes());
    state.insert(key, value);
    Ok(Vec::new())
}

/// Runs a foreign function by name.
pub(crate) fn call(host: &mut Host, name: &[u8], args: &[u8]) -> Result<Vec<u8>, Status> {
    match name {
        b"compress" => compress(args),
        b"uncompress" => uncompress(args),
        b"clear_route_cache" => Ok(Vec::new()),
        b"declare_property" => declare_property(host, args),
        b"set_envoy_filter_state" => set_envoy_filter_state(host, args),
        _ => Err(Status::NotFound),
    }
}

fn call_foreign(caller: &mut Caller<'_, Host>, np: i32, nl: i32, ap: i32, al: i32, rp: i32, rl: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let name = slice(mem, np, nl)?.to_vec();
    let args = slice(mem, ap, al)?.to_vec();
    let result = call(host, &name, &args)?;
    if rp == 0 {
        return Ok(());
    }
    return_bytes(caller, &result, rp, rl)
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: Caller<'_, Host>, np: i32, nl: i32, ap: i32, al: i32, rp: i32, rl: i32| {
            require_running(&c, "proxy_call_foreign_function")?;
            finish(call_foreign(&mut c, np, nl, ap, al, rp, rl))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_round_trip_and_bad_input() {
        let z = compress(b"hello hello hello").unwrap();
        assert_eq!(&z[..2], &[0x78, 0x9c]);
        assert_eq!(uncompress(&z).unwrap(), b"hello hello hello");
        assert_eq!(uncompress(b"junk"), Err(Status::SerializationFailure));
    }

    #[test]
    fn proto_reader() {
        let f = proto_fields(&[0x0a, 0x01, b'x', 0x10, 0x01]).unwrap();
        assert_eq!(bytes_field(&f, 1), Some(&b"x"[..]));
        assert!(proto_fields(&[0x0a, 0x05, b'x']).is_none());
    }
}
