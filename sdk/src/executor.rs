//! A small single-threaded executor. A handler that awaits a callout becomes a task parked on the
//! callout's token; the host's answer wakes it and the SDK polls it again inside that callback.
//! Nothing busy-waits: a task is only polled when something it waits on has happened.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// A boxed future whose borrows the SDK keeps alive for as long as the task exists.
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = TaskDone>>>;

/// What a finished task means for its stream.
pub(crate) enum TaskDone {
    /// A stream handler finished with this action.
    Action { request: bool, action: crate::http::Action },
    /// A detached task (spawned) finished.
    Detached,
}

struct Task {
    context_id: u32,
    /// A paused stream handler (as opposed to a spawned, detached task).
    handler: bool,
    future: TaskFuture,
}

#[derive(Default)]
struct Executor {
    tasks: BTreeMap<u32, Task>,
    next_id: u32,
    ready: Vec<u32>,
}

thread_local! {
    static EXECUTOR: RefCell<Executor> = RefCell::new(Executor::default());
}

fn waker_for(task: u32) -> Waker {
    fn clone(data: *const ()) -> RawWaker {
        RawWaker::new(data, &VTABLE)
    }
    fn wake(data: *const ()) {
        let id = data as usize as u32;
        EXECUTOR.with(|e| {
            if let Ok(mut e) = e.try_borrow_mut() {
                if !e.ready.contains(&id) {
                    e.ready.push(id);
                }
            }
        });
    }
    fn drop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: the vtable functions only use the pointer as an integer id.
    unsafe { Waker::from_raw(RawWaker::new(task as usize as *const (), &VTABLE)) }
}

/// Polls a new future once. If it is done, returns its output; otherwise parks it as a task of
/// `context_id` and returns `None`.
pub(crate) fn start(context_id: u32, handler: bool, mut future: TaskFuture) -> Option<TaskDone> {
    let id = EXECUTOR.with(|e| {
        let mut e = e.borrow_mut();
        e.next_id = e.next_id.wrapping_add(1);
        e.next_id
    });
    let waker = waker_for(id);
    match future.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(done) => Some(done),
        Poll::Pending => {
            EXECUTOR.with(|e| e.borrow_mut().tasks.insert(id, Task { context_id, handler, future }));
            None
        }
    }
}

/// Polls every woken task until none is ready; `on_done` gets each finished task's output, with
/// the effective context switched to the task's context first.
pub(crate) fn run_ready(mut on_done: impl FnMut(u32, TaskDone)) {
    loop {
        let next = EXECUTOR.with(|e| {
            let mut e = e.borrow_mut();
            while let Some(id) = e.ready.pop() {
                if let Some(task) = e.tasks.remove(&id) {
                    return Some((id, task));
                }
            }
            None
        });
        let Some((id, mut task)) = next else { return };
        // Hostcalls in the task act on its own context, not on the root that got the callback.
        let _ = crate::abi::set_effective_context(task.context_id);
        crate::dispatch::set_current(task.context_id);
        let waker = waker_for(id);
        match task.future.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(done) => on_done(task.context_id, done),
            Poll::Pending => EXECUTOR.with(|e| {
                e.borrow_mut().tasks.insert(id, task);
            }),
        }
    }
}

fn cancel(pick: impl Fn(&Task) -> bool) {
    let dropped: Vec<Task> = EXECUTOR.with(|e| {
        let mut e = e.borrow_mut();
        let ids: Vec<u32> = e.tasks.iter().filter(|(_, t)| pick(t)).map(|(id, _)| *id).collect();
        ids.into_iter().filter_map(|id| e.tasks.remove(&id)).collect()
    });
    // Dropped outside the borrow: a future's destructor may touch the executor (callout cleanup).
    drop(dropped);
}

/// Drops every task of a context that is going away.
pub(crate) fn cancel_context(context_id: u32) {
    cancel(|t| t.context_id == context_id);
}

/// Drops a paused handler of a stream: a new callback of that stream needs its filter.
pub(crate) fn cancel_handlers(context_id: u32) {
    cancel(|t| t.handler && t.context_id == context_id);
}

/// Runs a `'static` future as a task of the current context; it is polled as things it waits on
/// complete, and dropped if the context goes away.
///
/// ```no_run
/// sluice::spawn(async {
///     let reply = sluice::call::HttpCall::get("collector", "/flush").send().await;
///     log::info!("flushed: {:?}", reply.map(|r| r.status()));
/// });
/// ```
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    let context_id = crate::dispatch::current_context();
    let _ = start(
        context_id,
        false,
        Box::pin(async move {
            future.await;
            TaskDone::Detached
        }),
    );
}
