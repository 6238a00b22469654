//! Which filter object owns which context id, and the type-erased adapters between the ABI's
//! callbacks and the user's [`Plugin`], [`HttpFilter`] and [`TcpFilter`].
//!
//! Invariants that make the raw pointers below sound: the guest is single-threaded; the host never
//! calls back into the guest while a callback runs; a boxed filter never moves while its entry
//! exists; and a filter's pending handler future is dropped before any other callback of that
//! stream touches the filter, and before the filter itself is dropped.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::executor::{self, TaskDone, TaskFuture};
use crate::http::{Action, Body, HttpFilter, HttpStream, MapType, Request, Response, Trailers};
use crate::plugin::{parse_config, HttpPlugin, Plugin, Setup, TcpPlugin};
use crate::tcp::TcpFilter;
use crate::Result;

type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Action>> + 'a>>;

/// A plugin behind a trait object.
pub trait RootDyn {
    #[doc(hidden)]
    fn vm_start(&mut self, vm_config: &[u8]) -> Result<()>;
    #[doc(hidden)]
    fn configure(&mut self, config: &[u8]) -> Result<()>;
    #[doc(hidden)]
    fn foreign_function(&self, function_id: u32, arguments: Vec<u8>);
    #[doc(hidden)]
    fn tick(&self);
    #[doc(hidden)]
    fn queue_ready(&self, queue: u32);
    #[doc(hidden)]
    fn new_stream(&self) -> Option<Stream>;
    #[doc(hidden)]
    fn done(&self) -> bool;
}

#[doc(hidden)]
pub enum Stream {
    Http(Box<dyn HttpDyn>),
    Tcp(Box<dyn TcpFilterObj>),
}

#[doc(hidden)]
pub trait HttpDyn {
    fn buffers(&self, request: bool) -> bool;
    fn headers(&mut self, id: u32, request: bool, eos: bool) -> HandlerFuture<'_>;
    fn body(&mut self, id: u32, request: bool, size: usize, eos: bool) -> HandlerFuture<'_>;
    fn trailers(&mut self, id: u32, request: bool) -> HandlerFuture<'_>;
    fn log(&mut self, id: u32);
}

impl<F: HttpFilter> HttpDyn for F {
    fn buffers(&self, request: bool) -> bool {
        if request {
            self.buffer_request_body()
        } else {
            self.buffer_response_body()
        }
    }

    fn headers(&mut self, id: u32, request: bool, eos: bool) -> HandlerFuture<'_> {
        if request {
            Box::pin(self.on_request_headers(Request::new(id), eos))
        } else {
            Box::pin(self.on_response_headers(Response::new(id), eos))
        }
    }

    fn body(&mut self, id: u32, request: bool, size: usize, eos: bool) -> HandlerFuture<'_> {
        let body = Body::new(id, request, size);
        if request {
            Box::pin(self.on_request_body(body, eos))
        } else {
            Box::pin(self.on_response_body(body, eos))
        }
    }

    fn trailers(&mut self, id: u32, request: bool) -> HandlerFuture<'_> {
        if request {
            Box::pin(self.on_request_trailers(Trailers::new(id, MapType::RequestTrailers)))
        } else {
            Box::pin(self.on_response_trailers(Trailers::new(id, MapType::ResponseTrailers)))
        }
    }

    fn log(&mut self, id: u32) {
        self.on_log(&HttpStream::new(id))
    }
}

#[doc(hidden)]
pub trait TcpFilterObj {
    fn new_connection(&mut self, id: u32) -> u32;
    fn data(&mut self, id: u32, downstream: bool, size: usize, eos: bool) -> u32;
    fn downstream_close(&mut self, peer: u32);
    fn upstream_close(&mut self, peer: u32);
    fn log(&mut self);
}

impl<F: TcpFilter> TcpFilterObj for F {
    fn new_connection(&mut self, id: u32) -> u32 {
        tcp_code(id, "on_new_connection", self.on_new_connection(crate::tcp::TcpConnection::new(id)))
    }
    fn data(&mut self, id: u32, downstream: bool, size: usize, eos: bool) -> u32 {
        let data = crate::tcp::Data::new(id, downstream, size);
        if downstream {
            tcp_code(id, "on_downstream_data", self.on_downstream_data(data, eos))
        } else {
            tcp_code(id, "on_upstream_data", self.on_upstream_data(data, eos))
        }
    }
    fn downstream_close(&mut self, peer: u32) {
        self.on_downstream_close(crate::tcp::Peer::from_code(peer))
    }
    fn upstream_close(&mut self, peer: u32) {
        self.on_upstream_close(crate::tcp::Peer::from_code(peer))
    }
    fn log(&mut self) {
        self.on_log()
    }
}

/// The host's code for a TCP handler's answer; an error closes the connection.
fn tcp_code(id: u32, handler: &str, action: Result<crate::tcp::TcpAction>) -> u32 {
    match action {
        Ok(crate::tcp::TcpAction::Continue) => 0,
        Ok(crate::tcp::TcpAction::Pause) => 1,
        Err(e) => {
            log::error!("{handler} failed, closing the connection: {e}");
            if let Err(e) = crate::tcp::TcpConnection::new(id).close_downstream() {
                log::error!("closing the connection failed: {e}");
            }
            1
        }
    }
}

/// Adapts a [`Plugin`] with a way to make its streams.
struct Root<P: Plugin> {
    plugin: Option<Rc<P>>,
    make: fn(&Rc<P>) -> Stream,
}

impl<P: Plugin> RootDyn for Root<P> {
    fn vm_start(&mut self, vm_config: &[u8]) -> Result<()> {
        P::on_vm_start(vm_config)
    }

    fn foreign_function(&self, function_id: u32, arguments: Vec<u8>) {
        if let Some(p) = &self.plugin {
            p.on_foreign_function(function_id, arguments);
        }
    }

    fn configure(&mut self, config: &[u8]) -> Result<()> {
        let config = parse_config::<P::Config>(config)?;
        let mut setup = Setup::default();
        self.plugin = Some(Rc::new(P::configure(config, &mut setup)?));
        Ok(())
    }

    fn tick(&self) {
        if let Some(p) = &self.plugin {
            p.on_tick();
        }
    }

    fn done(&self) -> bool {
        self.plugin.as_ref().is_none_or(|p| p.on_done())
    }

    fn queue_ready(&self, queue: u32) {
        if let Some(p) = &self.plugin {
            p.on_queue_ready(crate::queue::Queue::from_id(queue));
        }
    }

    fn new_stream(&self) -> Option<Stream> {
        self.plugin.as_ref().map(|p| (self.make)(p))
    }
}

#[doc(hidden)]
pub fn http_root<P: HttpPlugin>() -> Box<dyn RootDyn> {
    crate::log::init();
    Box::new(Root::<P> { plugin: None, make: |p| Stream::Http(Box::new(P::new_filter(p))) })
}

#[doc(hidden)]
pub fn tcp_root<P: TcpPlugin>() -> Box<dyn RootDyn> {
    crate::log::init();
    Box::new(Root::<P> { plugin: None, make: |p| Stream::Tcp(Box::new(P::new_filter(p))) })
}

/// A plugin-only (service) root: no streams.
#[doc(hidden)]
pub fn service_root<P: Plugin>() -> Box<dyn RootDyn> {
    crate::log::init();
    struct Service<P: Plugin>(Root<P>);
    impl<P: Plugin> RootDyn for Service<P> {
        fn vm_start(&mut self, vm_config: &[u8]) -> Result<()> {
            self.0.vm_start(vm_config)
        }
        fn configure(&mut self, config: &[u8]) -> Result<()> {
            self.0.configure(config)
        }
        fn foreign_function(&self, function_id: u32, arguments: Vec<u8>) {
            self.0.foreign_function(function_id, arguments)
        }
        fn tick(&self) {
            self.0.tick()
        }
        fn queue_ready(&self, queue: u32) {
            self.0.queue_ready(queue)
        }
        fn new_stream(&self) -> Option<Stream> {
            None
        }
        fn done(&self) -> bool {
            self.0.done()
        }
    }
    Box::new(Service(Root::<P> { plugin: None, make: |_| unreachable!("a service plugin has no streams") }))
}

/// Makes a root of one plugin type.
#[doc(hidden)]
pub type NewRoot = fn() -> Box<dyn RootDyn>;

/// A module with several plugins: the one to run is chosen by the plugin's `root_id` when the
/// host configures it (the root id is readable as the `plugin_root_id` property from then on).
#[doc(hidden)]
pub fn root_by_id(table: &'static [(&'static str, NewRoot)]) -> Box<dyn RootDyn> {
    crate::log::init();
    struct ById {
        table: &'static [(&'static str, NewRoot)],
        chosen: Option<Box<dyn RootDyn>>,
    }
    impl ById {
        fn choose(&mut self) -> Result<&mut Box<dyn RootDyn>> {
            if self.chosen.is_none() {
                let id = crate::properties::string(&["plugin_root_id"])?.unwrap_or_default();
                let Some((_, make)) = self.table.iter().find(|(name, _)| *name == id) else {
                    let known: Vec<&str> = self.table.iter().map(|(n, _)| *n).collect();
                    return Err(crate::Error::Config(format!(
                        "this module has no plugin with root_id `{id}`; set root_id to one of: {}",
                        known.join(", ")
                    )));
                };
                self.chosen = Some(make());
            }
            Ok(self.chosen.as_mut().expect("chosen just above"))
        }
    }
    impl RootDyn for ById {
        fn vm_start(&mut self, vm_config: &[u8]) -> Result<()> {
            // The root id is known at VM start in Envoy; a host that does not tell it yet gets
            // the choice made at configure time, without the start hook.
            match self.choose() {
                Ok(root) => root.vm_start(vm_config),
                Err(_) => Ok(()),
            }
        }
        fn configure(&mut self, config: &[u8]) -> Result<()> {
            self.choose()?.configure(config)
        }
        fn foreign_function(&self, function_id: u32, arguments: Vec<u8>) {
            if let Some(r) = &self.chosen {
                r.foreign_function(function_id, arguments)
            }
        }
        fn tick(&self) {
            if let Some(r) = &self.chosen {
                r.tick()
            }
        }
        fn queue_ready(&self, queue: u32) {
            if let Some(r) = &self.chosen {
                r.queue_ready(queue)
            }
        }
        fn new_stream(&self) -> Option<Stream> {
            self.chosen.as_ref().and_then(|r| r.new_stream())
        }
        fn done(&self) -> bool {
            self.chosen.as_ref().is_none_or(|r| r.done())
        }
    }
    Box::new(ById { table, chosen: None })
}

enum Entry {
    Root(Box<dyn RootDyn>),
    Http(Box<dyn HttpDyn>),
    Tcp(Box<dyn TcpFilterObj>),
}

thread_local! {
    static ENTRIES: RefCell<BTreeMap<u32, (u32, Entry)>> = const { RefCell::new(BTreeMap::new()) };
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// The context whose callback (or task) is running.
pub(crate) fn current_context() -> u32 {
    CURRENT.with(Cell::get)
}

pub(crate) fn set_current(id: u32) {
    CURRENT.with(|c| c.set(id));
}

/// Runs `f` with `context` as the host's effective context, and switches back after: a handle of
/// one stream used from another context's callback acts on its own stream, and leaves the caller's
/// context as it was. Inside the stream's own callbacks this costs nothing.
pub(crate) fn within<T>(context: u32, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let caller = current_context();
    if caller == context {
        return f();
    }
    // Fails when the context is gone (the stream ended): the caller gets that error.
    crate::abi::set_effective_context(context)?;
    set_current(context);
    let result = f();
    let _ = crate::abi::set_effective_context(caller);
    set_current(caller);
    result
}

pub(crate) fn insert_root(id: u32, root: Box<dyn RootDyn>) {
    ENTRIES.with(|e| e.borrow_mut().insert(id, (id, Entry::Root(root))));
}

/// Creates the stream entry for `id` under `root_id`; false if the root makes no streams.
pub(crate) fn insert_stream(id: u32, root_id: u32) -> bool {
    let Some(root) = root_ptr(root_id) else { return false };
    // SAFETY: see the module invariants; the root's box is alive and not otherwise borrowed.
    let stream = unsafe { (*root).new_stream() };
    let entry = match stream {
        Some(Stream::Http(f)) => Entry::Http(f),
        Some(Stream::Tcp(f)) => Entry::Tcp(f),
        None => return false,
    };
    ENTRIES.with(|e| e.borrow_mut().insert(id, (root_id, entry)));
    true
}

pub(crate) fn root_ptr(id: u32) -> Option<*mut dyn RootDyn> {
    ENTRIES.with(|e| match e.borrow_mut().get_mut(&id) {
        Some((_, Entry::Root(r))) => Some(&mut **r as *mut dyn RootDyn),
        _ => None,
    })
}

pub(crate) fn http_ptr(id: u32) -> Option<*mut dyn HttpDyn> {
    ENTRIES.with(|e| match e.borrow_mut().get_mut(&id) {
        Some((_, Entry::Http(f))) => Some(&mut **f as *mut dyn HttpDyn),
        _ => None,
    })
}

pub(crate) fn tcp_ptr(id: u32) -> Option<*mut dyn TcpFilterObj> {
    ENTRIES.with(|e| match e.borrow_mut().get_mut(&id) {
        Some((_, Entry::Tcp(f))) => Some(&mut **f as *mut dyn TcpFilterObj),
        _ => None,
    })
}

/// Forgets a context: its tasks are dropped first, then the filter.
pub(crate) fn remove(id: u32) {
    executor::cancel_context(id);
    let entry = ENTRIES.with(|e| e.borrow_mut().remove(&id));
    drop(entry);
}

/// Runs an HTTP handler: polls its future once; if it is not done, parks it as a task and pauses
/// the stream. Returns the raw action for the host.
pub(crate) fn http_handler(
    id: u32,
    request: bool,
    handler: &'static str,
    call: impl for<'a> FnOnce(&'a mut dyn HttpDyn) -> HandlerFuture<'a>,
) -> u32 {
    executor::cancel_handlers(id);
    let Some(filter) = http_ptr(id) else { return 0 };
    set_current(id);
    // SAFETY: see the module invariants; the filter box outlives the future, which is dropped first
    // (on the next callback of this stream, or when the context is removed).
    let future: HandlerFuture<'static> = unsafe { std::mem::transmute(call(&mut *filter)) };
    let task: TaskFuture =
        Box::pin(
            async move { TaskDone::Action { request, action: future.await.unwrap_or_else(|e| failed(handler, e)) } },
        );
    let code = match executor::start(id, true, task) {
        Some(TaskDone::Action { action, .. }) => sync_code(action),
        _ => 1,
    };
    run_tasks();
    code
}

/// What a handler that failed answers: a 500, logged with the handler's name and the error.
fn failed(handler: &str, error: crate::Error) -> Action {
    log::error!("{handler} failed: {error}");
    Action::Respond(crate::http::Reply::new(http::StatusCode::INTERNAL_SERVER_ERROR).details("sluice_filter_error"))
}

fn sync_code(action: Action) -> u32 {
    match action {
        Action::Continue => 0,
        Action::Pause => 1,
        Action::Respond(reply) => {
            if let Err(e) = reply.send() {
                log::error!("sending the local reply failed: {e}");
            }
            1
        }
    }
}

/// Polls woken tasks; a finished handler resumes (or answers) its stream.
pub(crate) fn run_tasks() {
    executor::run_ready(|context_id, done| {
        set_current(context_id);
        if let TaskDone::Action { request, action } = done {
            let r = match action {
                Action::Continue => crate::abi::continue_stream(if request { 0 } else { 1 }),
                Action::Pause => Ok(()),
                Action::Respond(reply) => reply.send(),
            };
            if let Err(e) = r {
                log::error!("resuming the stream failed: {e}");
            }
        }
    });
}
