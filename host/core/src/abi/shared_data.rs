//! `proxy_get_shared_data` / `proxy_set_shared_data`, scoped by vm_id.

use wasmtime::{Caller, Linker};

use super::memory::{finish, return_with, slice, split, write_u32, CallResult};
use super::require_running;
use super::status::Status;
use crate::store::Host;

fn get(caller: &mut Caller<'_, Host>, kp: i32, kl: i32, ret_ptr: i32, ret_len: i32, ret_cas: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let key = slice(mem, kp, kl)?.to_vec();
    let shared = host.env.shared.clone();
    let vm_id = host.vm_id.clone();
    let (len, cas) = shared.shared_data.with(&vm_id, &key, |v, cas| (v.len(), cas)).ok_or(Status::NotFound)?;
    // The value may change between the two looks; copy what is there then, never past `len`.
    return_with(caller, len, ret_ptr, ret_len, |_, dst| {
        shared.shared_data.with(&vm_id, &key, |v, _| {
            let n = v.len().min(dst.len());
            dst[..n].copy_from_slice(&v[..n]);
        });
    })?;
    let (mem, _) = split(caller)?;
    Ok(write_u32(mem, ret_cas, cas)?)
}

fn set(caller: &mut Caller<'_, Host>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let key = slice(mem, kp, kl)?;
    let value = slice(mem, vp, vl)?;
    Ok(host.env.shared.shared_data.set(&host.vm_id, key, value, cas as u32)?)
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Caller<'_, Host>, kp: i32, kl: i32, rp: i32, rl: i32, rc: i32| {
            require_running(&c, "proxy_get_shared_data")?;
            finish(get(&mut c, kp, kl, rp, rl, rc))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Caller<'_, Host>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| {
            require_running(&c, "proxy_set_shared_data")?;
            finish(set(&mut c, kp, kl, vp, vl, cas))
        },
    )?;
    Ok(())
}
