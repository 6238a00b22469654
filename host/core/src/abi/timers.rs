//! `proxy_get_current_time_nanoseconds`, `proxy_set_tick_period_milliseconds`.

use std::time::Duration;

use wasmtime::{Caller, Linker};

use super::memory::{finish, split, write_u64, CallResult};
use super::require_running;
use super::status::Status;
use crate::store::Host;

fn current_time(caller: &mut Caller<'_, Host>, ret: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    Ok(write_u64(mem, ret, host.env.clock.now_nanos() as u64)?)
}

/// The period belongs to the root context, even when a stream context sets it.
fn set_tick_period(host: &mut Host, ms: i32) -> CallResult {
    let root = host.effective_root_mut().ok_or(Status::BadArgument)?;
    let ms = ms as u32;
    root.tick_period = (ms != 0).then(|| Duration::from_millis(ms.into()));
    Ok(())
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", |mut c: Caller<'_, Host>, ret: i32| {
        finish(current_time(&mut c, ret))
    })?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", |mut c: Caller<'_, Host>, ms: i32| {
        require_running(&c, "proxy_set_tick_period_milliseconds")?;
        finish(set_tick_period(c.data_mut(), ms))
    })?;
    Ok(())
}
