//! `proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`, `proxy_get_metric`.

use wasmtime::{Caller, Linker};

use super::memory::{finish, slice, split, write_u32, write_u64, CallResult};
use super::require_running;
use super::status::{MetricType, Status};
use crate::state::Metric;
use crate::store::Host;

/// Ids step by 4 with the type in the low two bits (counter 4, 8…; gauge 5, 9…; histogram 6, 10…).
fn define(caller: &mut Caller<'_, Host>, t: i32, np: i32, nl: i32, ret: i32) -> CallResult {
    let kind = MetricType::from_code(t).ok_or(Status::BadArgument)?;
    let (mem, host) = split(caller)?;
    let name = String::from_utf8_lossy(slice(mem, np, nl)?).into_owned();
    let metric = host.env.shared.metrics.define(kind, &name);
    host.next_metric_id += 4;
    let id = host.next_metric_id | kind as u32;
    host.metrics.insert(id, metric);
    Ok(write_u32(mem, ret, id)?)
}

fn lookup(host: &Host, id: i32) -> Result<&Metric, Status> {
    let id = id as u32;
    if id & 3 == 3 {
        return Err(Status::BadArgument);
    }
    host.metrics.get(&id).map(|m| &**m).ok_or(Status::NotFound)
}

/// Envoy reads and increments counters and gauges only: for a histogram's id, known or not, it
/// answers BAD_ARGUMENT before looking it up.
fn not_a_histogram(id: i32) -> Result<(), Status> {
    if id as u32 & 3 == MetricType::Histogram as u32 {
        return Err(Status::BadArgument);
    }
    Ok(())
}

fn get(caller: &mut Caller<'_, Host>, id: i32, ret: i32) -> CallResult {
    not_a_histogram(id)?;
    let (mem, host) = split(caller)?;
    let value = lookup(host, id)?.get()?;
    Ok(write_u64(mem, ret, value)?)
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_define_metric", |mut c: Caller<'_, Host>, t: i32, np: i32, nl: i32, ret: i32| {
        require_running(&c, "proxy_define_metric")?;
        finish(define(&mut c, t, np, nl, ret))
    })?;
    linker.func_wrap("env", "proxy_increment_metric", |c: Caller<'_, Host>, id: i32, delta: i64| {
        require_running(&c, "proxy_increment_metric")?;
        finish(
            not_a_histogram(id)
                .and_then(|()| lookup(c.data(), id))
                .and_then(|m| m.increment(delta))
                .map_err(Into::into),
        )
    })?;
    linker.func_wrap("env", "proxy_record_metric", |c: Caller<'_, Host>, id: i32, value: i64| {
        require_running(&c, "proxy_record_metric")?;
        finish(lookup(c.data(), id).map(|m| m.record(value as u64)).map_err(Into::into))
    })?;
    linker.func_wrap("env", "proxy_get_metric", |mut c: Caller<'_, Host>, id: i32, ret: i32| {
        require_running(&c, "proxy_get_metric")?;
        finish(get(&mut c, id, ret))
    })?;
    Ok(())
}
