//! Byte buffers: `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`, and the
//! 0.1.0 `proxy_get_configuration`.

use wasmtime::{Caller, Linker};

use super::memory::{finish, return_with, slice, split, write_u32, CallResult};
use super::require_running;
use super::status::{BufferType, Status};
use crate::store::{ContextKind, Host, Phase};
use crate::stream::{Access, BufferSlot};

/// A read-only view of a buffer, or NOT_FOUND when it does not exist in this callback.
pub(crate) fn buffer(host: &Host, t: BufferType) -> Result<&[u8], Status> {
    match t {
        BufferType::HttpRequestBody | BufferType::HttpResponseBody => {
            let ContextKind::Http(s) = &host.effective().ok_or(Status::NotFound)?.kind else {
                return Err(Status::NotFound);
            };
            let slot = if t == BufferType::HttpRequestBody { &s.request_body } else { &s.response_body };
            // Envoy reads a body it holds no pointer to as empty.
            Ok(if slot.access.readable() { &slot.bytes } else { &[] })
        }
        BufferType::DownstreamData | BufferType::UpstreamData => {
            let ContextKind::Tcp(s) = &host.effective().ok_or(Status::NotFound)?.kind else {
                return Err(Status::NotFound);
            };
            let slot = if t == BufferType::DownstreamData { &s.downstream } else { &s.upstream };
            Ok(if slot.access.readable() { &slot.bytes } else { &[] })
        }
        BufferType::HttpCallResponseBody if host.phase == Phase::HttpCallResponse => {
            host.callout_data.as_ref().and_then(|d| d.body.as_deref()).ok_or(Status::NotFound)
        }
        BufferType::GrpcReceiveBuffer if host.phase == Phase::GrpcReceive => {
            host.callout_data.as_ref().and_then(|d| d.body.as_deref()).ok_or(Status::NotFound)
        }
        BufferType::VmConfiguration => Ok(&host.vm_config),
        BufferType::PluginConfiguration if host.phase == Phase::Configure => {
            host.effective_root().map(|r| r.plugin.configuration.as_slice()).ok_or(Status::NotFound)
        }
        BufferType::ForeignFunctionArguments if host.phase == Phase::ForeignFunction => {
            host.foreign_args.as_deref().ok_or(Status::NotFound)
        }
        _ => Err(Status::NotFound),
    }
}

fn buffer_mut(host: &mut Host, t: BufferType) -> Result<&mut BufferSlot, Status> {
    let ctx = host.effective_mut().ok_or(Status::NotFound)?;
    // In an HTTP stream Envoy answers BAD_ARGUMENT for every body it is not passing through the
    // filter right now (the other direction, a body during the headers or on_log, a network
    // buffer), as the C++ SDK probe observed; for network filters such a write is NOT_FOUND.
    let (slot, absent) = match (&mut ctx.kind, t) {
        (ContextKind::Http(s), BufferType::HttpRequestBody) => (&mut s.request_body, Status::BadArgument),
        (ContextKind::Http(s), BufferType::HttpResponseBody) => (&mut s.response_body, Status::BadArgument),
        (ContextKind::Http(_), BufferType::DownstreamData | BufferType::UpstreamData) => {
            return Err(Status::BadArgument)
        }
        (ContextKind::Tcp(s), BufferType::DownstreamData) => (&mut s.downstream, Status::NotFound),
        (ContextKind::Tcp(s), BufferType::UpstreamData) => (&mut s.upstream, Status::NotFound),
        (_, BufferType::HttpRequestBody | BufferType::HttpResponseBody)
        | (_, BufferType::DownstreamData | BufferType::UpstreamData) => return Err(Status::NotFound),
        _ => return Err(Status::BadArgument),
    };
    match slot.access {
        Access::ReadWrite => Ok(slot),
        Access::Read => Err(Status::BadArgument),
        Access::None => Err(absent),
    }
}

/// Envoy's `Buffer::copyFrom`: start 0 drains `size` bytes then prepends; start at or past the end
/// appends; anything in between is BAD_ARGUMENT.
pub(crate) fn splice(bytes: &mut Vec<u8>, start: usize, size: usize, data: &[u8]) -> Result<(), Status> {
    if start == 0 {
        let drain = size.min(bytes.len());
        bytes.splice(..drain, data.iter().copied());
        Ok(())
    } else if start >= bytes.len() {
        bytes.extend_from_slice(data);
        Ok(())
    } else {
        Err(Status::BadArgument)
    }
}

fn get_bytes(caller: &mut Caller<'_, Host>, t: i32, start: i32, max: i32, ret_ptr: i32, ret_len: i32) -> CallResult {
    let t = BufferType::from_code(t).ok_or(Status::BadArgument)?;
    let (start, max) = (start as u32 as usize, max as u32 as usize);
    let total = buffer(caller.data(), t)?.len();
    let len = if start >= total { 0 } else { max.min(total - start) };
    return_with(caller, len, ret_ptr, ret_len, |host, dst| {
        if let Ok(b) = buffer(host, t) {
            dst.copy_from_slice(&b[start..start + len]);
        }
    })
}

fn set_bytes(caller: &mut Caller<'_, Host>, t: i32, start: i32, size: i32, dp: i32, dl: i32) -> CallResult {
    let t = BufferType::from_code(t).ok_or(Status::BadArgument)?;
    let (mem, host) = split(caller)?;
    let data = slice(mem, dp, dl)?;
    let slot = buffer_mut(host, t)?;
    Ok(splice(&mut slot.bytes, start as u32 as usize, size as u32 as usize, data)?)
}

fn status(caller: &mut Caller<'_, Host>, t: i32, ret_len: i32, ret_flags: i32) -> CallResult {
    let t = BufferType::from_code(t).ok_or(Status::BadArgument)?;
    let (mem, host) = split(caller)?;
    let len = buffer(host, t)?.len();
    write_u32(mem, ret_len, len as u32)?;
    // Envoy never reports flags.
    Ok(write_u32(mem, ret_flags, 0)?)
}

/// 0.1.0: the VM configuration during `on_vm_start`, else the plugin configuration.
fn get_configuration(caller: &mut Caller<'_, Host>, ret_ptr: i32, ret_len: i32) -> CallResult {
    let t = if caller.data().phase == Phase::VmStart {
        BufferType::VmConfiguration
    } else {
        BufferType::PluginConfiguration
    };
    let len = buffer(caller.data(), t).map(<[u8]>::len).unwrap_or(0);
    return_with(caller, len, ret_ptr, ret_len, |host, dst| {
        if let Ok(b) = buffer(host, t) {
            dst.copy_from_slice(b);
        }
    })
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, Host>, t: i32, start: i32, max: i32, rp: i32, rl: i32| {
            require_running(&c, "proxy_get_buffer_bytes")?;
            finish(get_bytes(&mut c, t, start, max, rp, rl))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_, Host>, t: i32, start: i32, size: i32, dp: i32, dl: i32| {
            require_running(&c, "proxy_set_buffer_bytes")?;
            finish(set_bytes(&mut c, t, start, size, dp, dl))
        },
    )?;
    linker.func_wrap("env", "proxy_get_buffer_status", |mut c: Caller<'_, Host>, t: i32, rl: i32, rf: i32| {
        require_running(&c, "proxy_get_buffer_status")?;
        finish(status(&mut c, t, rl, rf))
    })?;
    linker.func_wrap("env", "proxy_get_configuration", |mut c: Caller<'_, Host>, rp: i32, rl: i32| {
        require_running(&c, "proxy_get_configuration")?;
        finish(get_configuration(&mut c, rp, rl))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_copy_from_rules() {
        let mut b = b"hello".to_vec();
        splice(&mut b, 0, 0, b">").unwrap();
        assert_eq!(b, b">hello");
        splice(&mut b, 0, 3, b"").unwrap();
        assert_eq!(b, b"llo");
        splice(&mut b, 3, 0, b"!").unwrap();
        splice(&mut b, 100, 7, b"?").unwrap();
        assert_eq!(b, b"llo!?");
        assert_eq!(splice(&mut b, 2, 1, b"x"), Err(Status::BadArgument));
        splice(&mut b, 0, usize::MAX, b"new").unwrap();
        assert_eq!(b, b"new");
    }
}
