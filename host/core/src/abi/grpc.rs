//! gRPC callouts: `proxy_grpc_call`, `proxy_grpc_stream`, `proxy_grpc_send`, `proxy_grpc_cancel`,
//! `proxy_grpc_close`. Like HTTP callouts they are recorded here and answered by the driver.

use std::time::Duration;

use wasmtime::{Caller, Linker};

use super::codec;
use super::memory::{finish, slice, split, write_u32, CallResult};
use super::require_running;
use super::status::Status;
use crate::store::{CalloutToken, ContextId, GrpcCallout, GrpcEvent, Host};

#[allow(clippy::too_many_arguments)]
fn start(
    caller: &mut Caller<'_, Host>,
    svc: (i32, i32),
    name: (i32, i32),
    method: (i32, i32),
    md: (i32, i32),
    msg: Option<(i32, i32)>,
    timeout_ms: i32,
    ret: i32,
) -> CallResult {
    let (mem, host) = split(caller)?;
    let service_arg = slice(mem, svc.0, svc.1)?.to_vec();
    let service = String::from_utf8_lossy(slice(mem, name.0, name.1)?).into_owned();
    let method = String::from_utf8_lossy(slice(mem, method.0, method.1)?).into_owned();
    let metadata = codec::decode(slice(mem, md.0, md.1)?).unwrap_or_default();
    let message = match msg {
        Some((p, l)) => Some(slice(mem, p, l)?.to_vec()),
        None => None,
    };
    if !host.env.has_cluster(&crate::wire::grpc_service::cluster_name(&service_arg)) {
        return Err(Status::ParseFailure.into());
    }
    let streaming = message.is_none();
    let token = if streaming {
        host.next_grpc_stream_token += 4;
        host.next_grpc_stream_token
    } else {
        host.next_grpc_call_token += 4;
        host.next_grpc_call_token
    };
    write_u32(mem, ret, token)?;
    let token = CalloutToken(token);
    let call = GrpcCallout {
        token,
        context_id: ContextId(host.effective_context),
        root_id: ContextId(host.effective_root_id()),
        cluster: service_arg,
        service,
        method,
        metadata,
        messages: message.into_iter().collect(),
        streaming,
        timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64)),
        half_closed: !streaming,
    };
    host.grpc_callouts.insert(token, call);
    host.grpc_events.push(GrpcEvent::Open(token));
    Ok(())
}

fn send(caller: &mut Caller<'_, Host>, token: i32, mp: i32, ml: i32, end: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let msg = slice(mem, mp, ml)?.to_vec();
    let token = CalloutToken(token as u32);
    let call = host.grpc_callouts.get_mut(&token).ok_or(Status::NotFound)?;
    if !call.streaming {
        return Err(Status::BadArgument.into());
    }
    call.messages.push(msg.clone());
    call.half_closed |= end != 0;
    host.grpc_events.push(GrpcEvent::Send { token, message: Some(msg), end_of_stream: end != 0 });
    Ok(())
}

fn cancel(host: &mut Host, token: i32, close: bool) -> CallResult {
    let token = CalloutToken(token as u32);
    if close {
        let call = host.grpc_callouts.get_mut(&token).ok_or(Status::NotFound)?;
        call.half_closed = true;
        host.grpc_events.push(GrpcEvent::Send { token, message: None, end_of_stream: true });
    } else {
        host.grpc_callouts.remove(&token).ok_or(Status::NotFound)?;
        host.grpc_events.push(GrpcEvent::Cancel(token));
    }
    Ok(())
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: Caller<'_, Host>,
         sp: i32,
         sl: i32,
         np: i32,
         nl: i32,
         mp: i32,
         ml: i32,
         hp: i32,
         hl: i32,
         gp: i32,
         gl: i32,
         timeout: i32,
         ret: i32| {
            require_running(&c, "proxy_grpc_call")?;
            finish(start(&mut c, (sp, sl), (np, nl), (mp, ml), (hp, hl), Some((gp, gl)), timeout, ret))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut c: Caller<'_, Host>, sp: i32, sl: i32, np: i32, nl: i32, mp: i32, ml: i32, hp: i32, hl: i32, ret: i32| {
            require_running(&c, "proxy_grpc_stream")?;
            finish(start(&mut c, (sp, sl), (np, nl), (mp, ml), (hp, hl), None, 0, ret))
        },
    )?;
    linker.func_wrap("env", "proxy_grpc_send", |mut c: Caller<'_, Host>, t: i32, mp: i32, ml: i32, end: i32| {
        require_running(&c, "proxy_grpc_send")?;
        finish(send(&mut c, t, mp, ml, end))
    })?;
    linker.func_wrap("env", "proxy_grpc_cancel", |mut c: Caller<'_, Host>, t: i32| {
        require_running(&c, "proxy_grpc_cancel")?;
        finish(cancel(c.data_mut(), t, false))
    })?;
    linker.func_wrap("env", "proxy_grpc_close", |mut c: Caller<'_, Host>, t: i32| {
        require_running(&c, "proxy_grpc_close")?;
        finish(cancel(c.data_mut(), t, true))
    })?;
    Ok(())
}
