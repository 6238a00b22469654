//! Stream control and context plumbing: `proxy_continue_stream`, `proxy_close_stream`,
//! `proxy_send_local_response`, `proxy_set_effective_context`, `proxy_done`, `proxy_get_status`,
//! and the 0.1.0 `proxy_continue_request` / `proxy_continue_response` / `proxy_clear_route_cache`.

use wasmtime::{Caller, Linker};

use super::codec;
use super::memory::{finish, return_with, slice, split, write_u32, CallResult};
use super::require_running;
use super::status::{Status, StreamType};
use crate::store::{ContextKind, Host, HostAction};
use crate::stream::LocalReply;

fn is_stream(host: &Host) -> bool {
    matches!(host.effective().map(|c| &c.kind), Some(ContextKind::Http(_) | ContextKind::Tcp(_)))
}

fn continue_stream(host: &mut Host, t: i32) -> CallResult {
    let stream = StreamType::from_code(t).ok_or(Status::BadArgument)?;
    if stream == StreamType::Upstream {
        return Err(Status::Unimplemented.into());
    }
    if is_stream(host) {
        host.actions.push(HostAction::Continue { context_id: host.effective_context, stream });
    }
    Ok(())
}

fn close_stream(host: &mut Host, t: i32) -> CallResult {
    let stream = StreamType::from_code(t).ok_or(Status::BadArgument)?;
    if is_stream(host) {
        host.actions.push(HostAction::Close { context_id: host.effective_context, stream });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn local_response(
    caller: &mut Caller<'_, Host>,
    status: i32,
    dp: i32,
    dl: i32,
    bp: i32,
    bl: i32,
    hp: i32,
    hl: i32,
    grpc: i32,
) -> CallResult {
    let (mem, host) = split(caller)?;
    let details = slice(mem, dp, dl)?;
    let body = slice(mem, bp, bl)?;
    let headers = slice(mem, hp, hl)?;
    if !matches!(host.effective().map(|c| &c.kind), Some(ContextKind::Http(_))) {
        // A root context has no stream to answer: Envoy does nothing and says OK.
        return Ok(());
    }
    let details: String =
        String::from_utf8_lossy(details).chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
    let reply = LocalReply {
        status: status as u32,
        details,
        body: body.to_vec(),
        headers: codec::decode(headers).unwrap_or_default(),
        grpc_status: (0..=16).contains(&grpc).then_some(grpc as u32),
    };
    host.actions.push(HostAction::LocalReply { context_id: host.effective_context, reply });
    Ok(())
}

fn set_effective_context(host: &mut Host, id: i32) -> CallResult {
    let id = id as u32;
    if !host.contexts.contains_key(&id) {
        return Err(Status::BadArgument.into());
    }
    host.effective_context = id;
    Ok(())
}

fn done(host: &mut Host) -> CallResult {
    let id = host.effective_context;
    match host.contexts.get_mut(&id).map(|c| &mut c.kind) {
        Some(ContextKind::Root(r)) if r.done_pending => {
            r.done_pending = false;
            host.actions.push(HostAction::Done { context_id: id });
            Ok(())
        }
        _ => Err(Status::NotFound.into()),
    }
}

fn get_status(caller: &mut Caller<'_, Host>, ret_code: i32, ret_ptr: i32, ret_len: i32) -> CallResult {
    let (code, len) = caller.data().effective_root().map(|r| (r.status.0, r.status.1.len())).unwrap_or((0, 0));
    return_with(caller, len, ret_ptr, ret_len, |host, dst| {
        if let Some(r) = host.effective_root() {
            dst.copy_from_slice(&r.status.1);
        }
    })?;
    let (mem, _) = split(caller)?;
    Ok(write_u32(mem, ret_code, code)?)
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_continue_stream", |mut c: Caller<'_, Host>, t: i32| {
        require_running(&c, "proxy_continue_stream")?;
        finish(continue_stream(c.data_mut(), t))
    })?;
    linker.func_wrap("env", "proxy_close_stream", |mut c: Caller<'_, Host>, t: i32| {
        require_running(&c, "proxy_close_stream")?;
        finish(close_stream(c.data_mut(), t))
    })?;
    linker.func_wrap("env", "proxy_continue_request", |mut c: Caller<'_, Host>| {
        require_running(&c, "proxy_continue_request")?;
        finish(continue_stream(c.data_mut(), StreamType::HttpRequest as i32))
    })?;
    linker.func_wrap("env", "proxy_continue_response", |mut c: Caller<'_, Host>| {
        require_running(&c, "proxy_continue_response")?;
        finish(continue_stream(c.data_mut(), StreamType::HttpResponse as i32))
    })?;
    linker.func_wrap("env", "proxy_clear_route_cache", |c: Caller<'_, Host>| {
        require_running(&c, "proxy_clear_route_cache")?;
        finish(Ok(()))
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, Host>, status: i32, dp: i32, dl: i32, bp: i32, bl: i32, hp: i32, hl: i32, grpc: i32| {
            require_running(&c, "proxy_send_local_response")?;
            finish(local_response(&mut c, status, dp, dl, bp, bl, hp, hl, grpc))
        },
    )?;
    linker.func_wrap("env", "proxy_set_effective_context", |mut c: Caller<'_, Host>, id: i32| {
        require_running(&c, "proxy_set_effective_context")?;
        finish(set_effective_context(c.data_mut(), id))
    })?;
    linker.func_wrap("env", "proxy_done", |mut c: Caller<'_, Host>| {
        require_running(&c, "proxy_done")?;
        finish(done(c.data_mut()))
    })?;
    linker.func_wrap("env", "proxy_get_status", |mut c: Caller<'_, Host>, code: i32, rp: i32, rl: i32| {
        require_running(&c, "proxy_get_status")?;
        finish(get_status(&mut c, code, rp, rl))
    })?;
    Ok(())
}
