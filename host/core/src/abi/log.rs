//! `proxy_log`, `proxy_get_log_level`.

use wasmtime::{Caller, Linker};

use super::memory::{finish, put_u32, slice, split, CallResult};
use super::status::{LogLevel, Status};
use crate::store::Host;

fn log(caller: &mut Caller<'_, Host>, level: i32, ptr: i32, len: i32) -> CallResult {
    let level = LogLevel::from_code(level).ok_or(Status::BadArgument)?;
    let (mem, host) = split(caller)?;
    let msg = String::from_utf8_lossy(slice(mem, ptr, len)?).into_owned();
    host.log(level, msg);
    Ok(())
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_log", |mut c: Caller<'_, Host>, level: i32, ptr: i32, len: i32| {
        finish(log(&mut c, level, ptr, len))
    })?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: Caller<'_, Host>, ret: i32| {
        let level = c.data().env.log_level_code() as u32;
        finish(put_u32(&mut c, ret, level))
    })?;
    Ok(())
}
