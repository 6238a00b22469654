//! The epoch clock behind callback deadlines: a thread advances the engine's epoch every
//! [`EPOCH_TICK`] while guest code runs, and sleeps while none does, so an idle proxy wakes no
//! thread at all.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::EngineWeak;

/// How often the epoch advances; callback deadlines are measured in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Ticks without a guest call before the thread goes to sleep.
const IDLE_TICKS: u32 = 20;

/// Advances an engine's epoch while guest calls are in flight.
#[derive(Debug, Default)]
pub(crate) struct EpochTicker {
    /// Guest calls in flight, over every VM of the engine.
    running: AtomicUsize,
    /// The thread is asleep (or about to be) until a call starts.
    parked: AtomicBool,
    stop: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
}

/// One guest call in flight; the epoch advances until it is dropped.
pub(crate) struct GuestCall<'a>(&'a EpochTicker);

impl Drop for GuestCall<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EpochTicker {
    /// Starts the thread for `engine`.
    pub(crate) fn start(engine: EngineWeak) -> std::io::Result<Arc<Self>> {
        let ticker = Arc::new(Self::default());
        let t = ticker.clone();
        let handle = std::thread::Builder::new().name("sluice-epoch".into()).spawn(move || t.run(engine))?;
        let _ = ticker.thread.set(handle.thread().clone());
        Ok(ticker)
    }

    /// Marks a guest call as running (wakes the thread if it sleeps).
    pub(crate) fn enter(&self) -> GuestCall<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        // Paired with `run`: either it sees this call running, or this sees it parked.
        if self.parked.load(Ordering::SeqCst) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
        GuestCall(self)
    }

    /// Stops the thread.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    fn run(&self, engine: EngineWeak) {
        let mut idle = 0;
        while !self.stop.load(Ordering::SeqCst) {
            if self.running.load(Ordering::SeqCst) == 0 {
                idle += 1;
            } else {
                idle = 0;
            }
            if idle >= IDLE_TICKS {
                self.parked.store(true, Ordering::SeqCst);
                if self.running.load(Ordering::SeqCst) == 0 && !self.stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                self.parked.store(false, Ordering::SeqCst);
                idle = 0;
                continue;
            }
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(e) => e.increment_epoch(),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::runtime::{Runtime, RuntimeConfig};
    use crate::state::SharedState;
    use crate::vm::{NoQueues, PluginInfo, ProxyEnv, RealClock, TracingLogSink, Vm, VmOptions};
    use crate::{Error, Fault};

    const LOOPS: &str = r#"(module
      (memory (export "memory") 1)
      (func (export "malloc") (param i32) (result i32) (i32.const 4096))
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))"#;

    #[test]
    fn a_guest_that_loops_after_the_clock_went_to_sleep_is_still_stopped() {
        let config = RuntimeConfig { callback_deadline: Duration::from_millis(50), ..Default::default() };
        let runtime = Runtime::new(config).unwrap();
        let module = runtime.load(LOOPS.as_bytes()).unwrap();
        let env = ProxyEnv::new(Arc::new(SharedState::default()), Arc::new(TracingLogSink), RealClock::shared());
        let options = VmOptions { vm_id: String::new(), configuration: Vec::new(), env_vars: Vec::new() };
        let mut vm = Vm::new(&runtime, module, options, Arc::new(env), Arc::new(NoQueues)).unwrap();
        let root = vm.start_plugin(PluginInfo::default()).unwrap();
        let ctx = vm.create_http_context(root, Default::default()).unwrap();
        // Long enough without a guest call for the epoch thread to park.
        std::thread::sleep(super::EPOCH_TICK * (super::IDLE_TICKS + 10));
        let started = Instant::now();
        let r = vm.on_request_headers(ctx, 0, true);
        assert!(matches!(&r, Err(Error::Guest(f)) if matches!(f.fault, Fault::Deadline { deadline_ms: 50 })), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "stopped after {:?}", started.elapsed());
    }
}
