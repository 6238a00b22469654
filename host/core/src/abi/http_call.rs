//! `proxy_http_call`: records the callout; the driver sends it and delivers the answer later.

use std::time::Duration;

use wasmtime::{Caller, Linker};

use super::codec;
use super::memory::{finish, slice, split, write_u32, CallResult};
use super::require_running;
use super::status::Status;
use crate::store::{CalloutToken, ContextId, Host, HttpCallout};

#[allow(clippy::too_many_arguments)]
fn http_call(
    caller: &mut Caller<'_, Host>,
    up: (i32, i32),
    hd: (i32, i32),
    body: (i32, i32),
    tr: (i32, i32),
    timeout_ms: i32,
    ret: i32,
) -> CallResult {
    let (mem, host) = split(caller)?;
    let cluster = String::from_utf8_lossy(slice(mem, up.0, up.1)?).into_owned();
    let headers = codec::decode(slice(mem, hd.0, hd.1)?).unwrap_or_default();
    let body = slice(mem, body.0, body.1)?.to_vec();
    let trailers = codec::decode(slice(mem, tr.0, tr.1)?).unwrap_or_default();
    if !host.env.has_cluster(&cluster) || timeout_ms < 0 {
        return Err(Status::BadArgument.into());
    }
    let has = |name: &[u8]| headers.iter().any(|(k, _)| k.as_slice() == name);
    if !(has(b":method") && has(b":path") && has(b":authority")) {
        return Err(Status::BadArgument.into());
    }
    host.next_http_token += 4;
    let token = host.next_http_token;
    write_u32(mem, ret, token)?;
    let callout = HttpCallout {
        token: CalloutToken(token),
        context_id: ContextId(host.effective_context),
        root_id: ContextId(host.effective_root_id()),
        cluster,
        headers,
        body,
        trailers,
        timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64)),
    };
    host.http_callouts.push(callout);
    Ok(())
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Caller<'_, Host>,
         up: i32,
         upl: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         tp: i32,
         tl: i32,
         timeout: i32,
         ret: i32| {
            require_running(&c, "proxy_http_call")?;
            finish(http_call(&mut c, (up, upl), (hp, hl), (bp, bl), (tp, tl), timeout, ret))
        },
    )?;
    Ok(())
}
