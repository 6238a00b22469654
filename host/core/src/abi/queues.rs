//! Shared queues: `proxy_{register,resolve,enqueue,dequeue}_shared_queue`.

use wasmtime::{Caller, Linker};

use super::memory::{finish, return_bytes, slice, split, write_u32, CallResult};
use super::require_running;
use super::status::Status;
use crate::store::Host;

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn register(caller: &mut Caller<'_, Host>, np: i32, nl: i32, ret: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let name = utf8(slice(mem, np, nl)?);
    // A stream context registers on behalf of its root.
    let root = host.effective_root_id();
    let id = host.env.shared.queues.register(&host.vm_id, &name, host.notifier.clone(), root);
    Ok(write_u32(mem, ret, id)?)
}

fn resolve(caller: &mut Caller<'_, Host>, vp: i32, vl: i32, np: i32, nl: i32, ret: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let vm_id = slice(mem, vp, vl)?;
    let vm_id = if vm_id.is_empty() { host.vm_id.clone() } else { utf8(vm_id) };
    let name = utf8(slice(mem, np, nl)?);
    let id = host.env.shared.queues.resolve(&vm_id, &name).ok_or(Status::NotFound)?;
    Ok(write_u32(mem, ret, id)?)
}

fn enqueue(caller: &mut Caller<'_, Host>, id: i32, vp: i32, vl: i32) -> CallResult {
    let (mem, host) = split(caller)?;
    let value = slice(mem, vp, vl)?;
    if !host.env.shared.queues.enqueue(id as u32, value) {
        return Err(Status::NotFound.into());
    }
    Ok(())
}

fn dequeue(caller: &mut Caller<'_, Host>, id: i32, ret_ptr: i32, ret_len: i32) -> CallResult {
    let item = match caller.data().env.shared.queues.dequeue(id as u32) {
        Err(_) => return Err(Status::NotFound.into()),
        Ok(None) => return Err(Status::Empty.into()),
        Ok(Some(item)) => item,
    };
    return_bytes(caller, &item, ret_ptr, ret_len)
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_register_shared_queue", |mut c: Caller<'_, Host>, np: i32, nl: i32, ret: i32| {
        require_running(&c, "proxy_register_shared_queue")?;
        finish(register(&mut c, np, nl, ret))
    })?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Caller<'_, Host>, vp: i32, vl: i32, np: i32, nl: i32, ret: i32| {
            require_running(&c, "proxy_resolve_shared_queue")?;
            finish(resolve(&mut c, vp, vl, np, nl, ret))
        },
    )?;
    linker.func_wrap("env", "proxy_enqueue_shared_queue", |mut c: Caller<'_, Host>, id: i32, vp: i32, vl: i32| {
        require_running(&c, "proxy_enqueue_shared_queue")?;
        finish(enqueue(&mut c, id, vp, vl))
    })?;
    linker.func_wrap("env", "proxy_dequeue_shared_queue", |mut c: Caller<'_, Host>, id: i32, rp: i32, rl: i32| {
        require_running(&c, "proxy_dequeue_shared_queue")?;
        finish(dequeue(&mut c, id, rp, rl))
    })?;
    Ok(())
}
