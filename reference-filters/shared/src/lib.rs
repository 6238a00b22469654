//! Shared data and queues: a CAS-incremented hit counter, and a queue of request paths that the root
//! context drains when notified, counting what it dequeued.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { queue: 0 }) });
}}

fn read_u64(ctx: &dyn Context, key: &str) -> (u64, Option<u32>) {
    let (value, cas) = ctx.get_shared_data(key);
    let n = value.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
    (n, cas)
}

/// Adds one to `key`, retrying when another writer got there first.
fn increment(ctx: &dyn Context, key: &str) -> u64 {
    loop {
        let (n, cas) = read_u64(ctx, key);
        match ctx.set_shared_data(key, Some((n + 1).to_string().as_bytes()), cas) {
            Ok(()) => return n + 1,
            Err(Status::CasMismatch) => continue,
            Err(e) => panic!("set_shared_data: {e:?}"),
        }
    }
}

struct Root {
    queue: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.queue = self.register_shared_queue("paths");
        true
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            log::info!("dequeued {}", String::from_utf8_lossy(&item));
            increment(self, "dequeued");
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { hits: 0, dequeued: 0 }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    hits: u64,
    dequeued: u64,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.hits = increment(self, "hits");
        // Items of earlier requests, counted before this request enqueues its own (whose delivery
        // would race with the response).
        self.dequeued = read_u64(self, "dequeued").0;
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let queue = self.resolve_shared_queue("", "paths").expect("queue registered by the root");
        self.enqueue_shared_queue(queue, Some(path.as_bytes())).expect("enqueue");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_response_header("x-hits", Some(&self.hits.to_string()));
        self.set_http_response_header("x-dequeued", Some(&self.dequeued.to_string()));
        let missing = self.get_shared_data("never-set");
        self.set_http_response_header("x-missing", Some(&format!("{:?}", missing)));
        Action::Continue
    }
}
