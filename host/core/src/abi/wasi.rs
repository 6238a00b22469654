//! The WASI preview1 subset Envoy provides (under `wasi_snapshot_preview1` and `wasi_unstable`),
//! call by call and status by status as proxy-wasm-cpp-host answers: stdout/stderr become log lines,
//! clocks, random bytes, configured environment variables, empty args, no preopened directories
//! (`fd_prestat_get` answers EBADF, which Go's `wasip1` runtime needs to start), no files
//! (`path_open` ENOENT, `fd_read` ENOSYS), `fd_seek`/`fd_close`/`proc_exit` logged and ignored.
//! Every other WASI call is refused with ENOSYS: no sockets.

use wasmtime::{Caller, Linker};

use super::memory::{slice, split, write_u32, write_u64};
use super::status::LogLevel;
use crate::store::Host;

/// The WASI functions the host really implements; others are stubs returning ENOSYS.
pub const WASI_FUNCTIONS: &[&str] = &[
    "fd_write",
    "clock_time_get",
    "random_get",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "proc_exit",
    "poll_oneoff",
    "sched_yield",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "path_open",
    "fd_read",
    "fd_seek",
    "fd_close",
];

/// The WASI module names Envoy serves.
pub const WASI_MODULES: &[&str] = &["wasi_snapshot_preview1", "wasi_unstable"];

const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const FAULT: i32 = 21;
const INVAL: i32 = 28;
const NOENT: i32 = 44;
const NOTSUP: i32 = 58;
/// What refused WASI calls return.
pub const ENOSYS: i32 = 52;

const MAX_RANDOM: usize = 64 * 1024;

fn fault<T>(r: Result<T, crate::wire::status::Status>) -> Result<T, i32> {
    r.map_err(|_| FAULT)
}

fn errno(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(SUCCESS)
}

fn fd_write(caller: &mut Caller<'_, Host>, fd: i32, iovs: i32, n: i32, ret: i32) -> Result<(), i32> {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Err(BADF),
    };
    let (mem, host) = fault(split(caller))?;
    let mut text = Vec::new();
    for i in 0..n.max(0) {
        let entry = fault(slice(mem, iovs.wrapping_add(i.wrapping_mul(8)), 8))?;
        let ptr = i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let len = i32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        text.extend_from_slice(fault(slice(mem, ptr, len))?);
    }
    let written = text.len() as u32;
    let line = text.strip_suffix(b"\n").unwrap_or(&text);
    host.log(level, String::from_utf8_lossy(line).into_owned());
    fault(write_u32(mem, ret, written))
}

fn clock_time_get(caller: &mut Caller<'_, Host>, id: i32, ret: i32) -> Result<(), i32> {
    let (mem, host) = fault(split(caller))?;
    let nanos = match id {
        0 => host.env.clock.now_nanos(),
        1 => host.env.clock.monotonic_nanos(),
        _ => return Err(NOTSUP),
    };
    fault(write_u64(mem, ret, nanos as u64))
}

fn random_get(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Result<(), i32> {
    if len as u32 as usize > MAX_RANDOM {
        return Err(INVAL);
    }
    if len == 0 {
        return Ok(());
    }
    let (mem, _) = fault(split(caller))?;
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize).filter(|e| *e <= mem.len()).ok_or(FAULT)?;
    getrandom::fill(&mut mem[start..end]).map_err(|_| NOTSUP)
}

fn environ_sizes(caller: &mut Caller<'_, Host>, count_ptr: i32, size_ptr: i32) -> Result<(), i32> {
    let (mem, host) = fault(split(caller))?;
    let vars = &host.env_vars;
    let size: usize = vars.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    fault(write_u32(mem, count_ptr, vars.len() as u32))?;
    fault(write_u32(mem, size_ptr, size as u32))
}

fn environ_get(caller: &mut Caller<'_, Host>, ptrs: i32, buf: i32) -> Result<(), i32> {
    let (mem, host) = fault(split(caller))?;
    let mut at = buf as u32 as usize;
    for (i, (k, v)) in host.env_vars.iter().enumerate() {
        fault(write_u32(mem, ptrs.wrapping_add(4 * i as i32), at as u32))?;
        let entry = format!("{k}={v}\0");
        let end = at.checked_add(entry.len()).filter(|e| *e <= mem.len()).ok_or(FAULT)?;
        mem[at..end].copy_from_slice(entry.as_bytes());
        at = end;
    }
    Ok(())
}

fn two_zeros(caller: &mut Caller<'_, Host>, a: i32, b: i32) -> Result<(), i32> {
    let (mem, _) = fault(split(caller))?;
    fault(write_u32(mem, a, 0))?;
    fault(write_u32(mem, b, 0))
}

fn fdstat(caller: &mut Caller<'_, Host>, fd: i32, ret: i32) -> Result<(), i32> {
    if fd != 1 && fd != 2 {
        return Err(BADF);
    }
    let (mem, _) = fault(split(caller))?;
    let start = ret as u32 as usize;
    let out = mem.get_mut(start..start.checked_add(24).ok_or(FAULT)?).ok_or(FAULT)?;
    // Envoy's answer: file type unknown, no flags, the one right fd_write (64).
    out.fill(0);
    out[8..16].copy_from_slice(&64u64.to_le_bytes());
    Ok(())
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    for m in WASI_MODULES {
        linker.func_wrap(m, "fd_write", |mut c: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, ret: i32| {
            errno(fd_write(&mut c, fd, iovs, n, ret))
        })?;
        linker.func_wrap(m, "clock_time_get", |mut c: Caller<'_, Host>, id: i32, _precision: i64, ret: i32| {
            errno(clock_time_get(&mut c, id, ret))
        })?;
        linker.func_wrap(m, "random_get", |mut c: Caller<'_, Host>, ptr: i32, len: i32| {
            errno(random_get(&mut c, ptr, len))
        })?;
        linker.func_wrap(m, "environ_sizes_get", |mut c: Caller<'_, Host>, cp: i32, sp: i32| {
            errno(environ_sizes(&mut c, cp, sp))
        })?;
        linker
            .func_wrap(m, "environ_get", |mut c: Caller<'_, Host>, p: i32, b: i32| errno(environ_get(&mut c, p, b)))?;
        linker.func_wrap(m, "args_sizes_get", |mut c: Caller<'_, Host>, cp: i32, sp: i32| {
            errno(two_zeros(&mut c, cp, sp))
        })?;
        linker.func_wrap(m, "args_get", |_: Caller<'_, Host>, _p: i32, _b: i32| SUCCESS)?;
        // Envoy says so at trace level (not as the guest's log) and carries on: a module that
        // exits keeps running (and traps on the `unreachable` its libc puts after the call).
        linker.func_wrap(m, "proc_exit", |mut c: Caller<'_, Host>, _code: i32| {
            c.data_mut().host_error("wasi_unstable proc_exit");
        })?;
        linker.func_wrap(m, "fd_seek", |mut c: Caller<'_, Host>, _fd: i32, _off: i64, _whence: i32, _ret: i32| {
            c.data_mut().host_error("wasi_unstable fd_seek");
            SUCCESS
        })?;
        linker.func_wrap(m, "fd_close", |mut c: Caller<'_, Host>, _fd: i32| {
            c.data_mut().host_error("wasi_unstable fd_close");
            SUCCESS
        })?;
        linker.func_wrap(m, "fd_prestat_get", |_: Caller<'_, Host>, _fd: i32, _ret: i32| BADF)?;
        linker.func_wrap(m, "fd_prestat_dir_name", |_: Caller<'_, Host>, _fd: i32, _p: i32, _n: i32| ENOSYS)?;
        linker.func_wrap(m, "fd_read", |_: Caller<'_, Host>, _fd: i32, _iovs: i32, _n: i32, _ret: i32| ENOSYS)?;
        linker.func_wrap(
            m,
            "path_open",
            |_: Caller<'_, Host>,
             _fd: i32,
             _df: i32,
             _p: i32,
             _n: i32,
             _of: i32,
             _rb: i64,
             _ri: i64,
             _ff: i32,
             _r: i32| { NOENT },
        )?;
        linker.func_wrap(m, "poll_oneoff", |mut c: Caller<'_, Host>, _in: i32, _out: i32, _n: i32, ret: i32| {
            let r = split(&mut c).map_err(|_| FAULT).and_then(|(mem, _)| fault(write_u32(mem, ret, 0)));
            errno(r)
        })?;
        linker.func_wrap(m, "sched_yield", |_: Caller<'_, Host>| SUCCESS)?;
        linker.func_wrap(m, "fd_fdstat_get", |mut c: Caller<'_, Host>, fd: i32, ret: i32| {
            errno(fdstat(&mut c, fd, ret))
        })?;
    }
    Ok(())
}
