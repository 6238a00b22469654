//! Header and trailer maps: `proxy_{get,set}_header_map_pairs`, `proxy_{get,add,replace,remove}_header_map_value`,
//! `proxy_get_header_map_size`.

use wasmtime::{Caller, Linker};

use super::codec;
use super::memory::{finish, return_with, slice, split, write_u32, CallResult};
use super::require_running;
use super::status::{MapType, Status};
use crate::store::{ContextKind, Host, Phase};
use crate::stream::{Access, HeaderMap};

/// The map a hostcall addresses and what may be done with it now; `None` when it is not there.
pub(crate) fn map(host: &Host, t: MapType) -> Option<(&HeaderMap, Access)> {
    match t {
        MapType::HttpCallResponseHeaders | MapType::HttpCallResponseTrailers => {
            if host.phase != Phase::HttpCallResponse {
                return None;
            }
            let d = host.callout_data.as_ref()?;
            Some((if t == MapType::HttpCallResponseHeaders { &d.headers } else { &d.trailers }, Access::Read))
        }
        MapType::GrpcInitialMetadata | MapType::GrpcTrailingMetadata => {
            if host.phase != Phase::GrpcReceive {
                return None;
            }
            let d = host.callout_data.as_ref()?;
            Some((if t == MapType::GrpcInitialMetadata { &d.headers } else { &d.trailers }, Access::Read))
        }
        _ => {
            let ContextKind::Http(s) = &host.effective()?.kind else {
                return None;
            };
            let slot = match t {
                MapType::RequestHeaders => &s.request_headers,
                MapType::RequestTrailers => &s.request_trailers,
                MapType::ResponseHeaders => &s.response_headers,
                _ => &s.response_trailers,
            };
            slot.access.readable().then_some((&slot.map, slot.access))
        }
    }
}

/// The map, if it may be written now.
pub(crate) fn map_mut(host: &mut Host, t: MapType) -> Option<&mut HeaderMap> {
    let ContextKind::Http(s) = &mut host.effective_mut()?.kind else {
        return None;
    };
    let slot = match t {
        MapType::RequestHeaders => &mut s.request_headers,
        MapType::RequestTrailers => &mut s.request_trailers,
        MapType::ResponseHeaders => &mut s.response_headers,
        MapType::ResponseTrailers => &mut s.response_trailers,
        _ => return None,
    };
    slot.access.writable().then_some(&mut slot.map)
}

fn map_type(t: i32) -> Result<MapType, Status> {
    MapType::from_code(t).ok_or(Status::BadArgument)
}

/// The key a hostcall's `key` names in map `t`: Envoy's request headers answer `host` with
/// `:authority` (its header map keeps the two as one entry).
fn key_in(t: MapType, key: &[u8]) -> &[u8] {
    if t == MapType::RequestHeaders && key.eq_ignore_ascii_case(b"host") {
        b":authority"
    } else {
        key
    }
}

fn get_pairs(caller: &mut Caller<'_, Host>, t: i32, ret_ptr: i32, ret_len: i32) -> CallResult {
    let t = map_type(t)?;
    // An absent or empty map reads as (0, 0) with OK, as in Envoy.
    let len = match map(caller.data(), t) {
        Some((m, _)) if !m.is_empty() => codec::encoded_len(m.iter()),
        _ => 0,
    };
    return_with(caller, len, ret_ptr, ret_len, |host, dst| {
        if let Some((m, _)) = map(host, t) {
            codec::encode_into(m.iter(), dst);
        }
    })
}

fn get_value(caller: &mut Caller<'_, Host>, t: i32, kp: i32, kl: i32, ret_ptr: i32, ret_len: i32) -> CallResult {
    let t = map_type(t)?;
    let (mem, host) = split(caller)?;
    let key = key_in(t, slice(mem, kp, kl)?);
    let (m, _) = map(host, t).ok_or(Status::BadArgument)?;
    let at = m.position(key).ok_or(Status::NotFound)?;
    let len = m.value_at(at).map_or(0, <[u8]>::len);
    return_with(caller, len, ret_ptr, ret_len, |host, dst| {
        // The entry found above, unless the guest's allocator changed the map meanwhile.
        if let Some(v) = map(host, t).and_then(|(m, _)| m.value_at(at)).filter(|v| v.len() == dst.len()) {
            dst.copy_from_slice(v);
        }
    })
}

fn set_pairs(caller: &mut Caller<'_, Host>, t: i32, ptr: i32, len: i32) -> CallResult {
    let t = map_type(t)?;
    let (mem, host) = split(caller)?;
    let bytes = slice(mem, ptr, len)?;
    let m = map_mut(host, t).ok_or(Status::BadArgument)?;
    // A malformed map replaces the headers with nothing, as in Envoy.
    m.set_all(codec::decode(bytes).unwrap_or_default());
    Ok(())
}

#[derive(Clone, Copy)]
enum Edit {
    Add,
    Replace,
}

fn edit(caller: &mut Caller<'_, Host>, op: Edit, t: i32, kp: i32, kl: i32, vp: i32, vl: i32) -> CallResult {
    let t = map_type(t)?;
    let (mem, host) = split(caller)?;
    let key = key_in(t, slice(mem, kp, kl)?);
    let value = slice(mem, vp, vl)?;
    let m = map_mut(host, t).ok_or(Status::BadArgument)?;
    match op {
        // Adding to a header Envoy keeps one entry of joins the values with a comma.
        // Adding nothing to one changes nothing (Envoy's `appendToHeader`).
        Edit::Add if value.is_empty() && super::inline_headers::is_inline(t, key) && m.get(key).is_some() => {}
        Edit::Add if super::inline_headers::is_inline(t, key) && m.get(key).is_some() => {
            let mut joined = m.get(key).unwrap_or_default().to_vec();
            joined.push(b',');
            joined.extend_from_slice(value);
            m.replace(key, joined);
        }
        Edit::Add => m.add(key, value),
        // Envoy's `setCopy` removes every entry of the key, then adds one at the end.
        Edit::Replace => {
            m.remove(key);
            m.add(key, value);
        }
    }
    Ok(())
}

fn remove(caller: &mut Caller<'_, Host>, t: i32, kp: i32, kl: i32) -> CallResult {
    let t = map_type(t)?;
    let (mem, host) = split(caller)?;
    let key = key_in(t, slice(mem, kp, kl)?);
    map_mut(host, t).ok_or(Status::BadArgument)?.remove(key);
    Ok(())
}

fn size(caller: &mut Caller<'_, Host>, t: i32, ret: i32) -> CallResult {
    let t = map_type(t)?;
    let (mem, host) = split(caller)?;
    let (m, _) = map(host, t).ok_or(Status::BadArgument)?;
    Ok(write_u32(mem, ret, m.byte_size() as u32)?)
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_header_map_pairs", |mut c: Caller<'_, Host>, t: i32, rp: i32, rl: i32| {
        require_running(&c, "proxy_get_header_map_pairs")?;
        finish(get_pairs(&mut c, t, rp, rl))
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, Host>, t: i32, kp: i32, kl: i32, rp: i32, rl: i32| {
            require_running(&c, "proxy_get_header_map_value")?;
            finish(get_value(&mut c, t, kp, kl, rp, rl))
        },
    )?;
    linker.func_wrap("env", "proxy_set_header_map_pairs", |mut c: Caller<'_, Host>, t: i32, p: i32, l: i32| {
        require_running(&c, "proxy_set_header_map_pairs")?;
        finish(set_pairs(&mut c, t, p, l))
    })?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Caller<'_, Host>, t: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
            require_running(&c, "proxy_add_header_map_value")?;
            finish(edit(&mut c, Edit::Add, t, kp, kl, vp, vl))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, Host>, t: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
            require_running(&c, "proxy_replace_header_map_value")?;
            finish(edit(&mut c, Edit::Replace, t, kp, kl, vp, vl))
        },
    )?;
    linker.func_wrap("env", "proxy_remove_header_map_value", |mut c: Caller<'_, Host>, t: i32, kp: i32, kl: i32| {
        require_running(&c, "proxy_remove_header_map_value")?;
        finish(remove(&mut c, t, kp, kl))
    })?;
    linker.func_wrap("env", "proxy_get_header_map_size", |mut c: Caller<'_, Host>, t: i32, ret: i32| {
        require_running(&c, "proxy_get_header_map_size")?;
        finish(size(&mut c, t, ret))
    })?;
    Ok(())
}
