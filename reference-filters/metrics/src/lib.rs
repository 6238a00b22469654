//! Metrics: a counter of requests, a gauge of requests in flight and a histogram of body sizes.
use proxy_wasm::hostcalls;
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default, Clone, Copy)]
struct Ids {
    requests: u32,
    inflight: u32,
    sizes: u32,
}

#[derive(Default)]
struct Root {
    ids: Ids,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.ids = Ids {
            requests: hostcalls::define_metric(MetricType::Counter, "ref_requests").unwrap(),
            inflight: hostcalls::define_metric(MetricType::Gauge, "ref_inflight").unwrap(),
            sizes: hostcalls::define_metric(MetricType::Histogram, "ref_body_size").unwrap(),
        };
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { ids: self.ids }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    ids: Ids,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        hostcalls::increment_metric(self.ids.requests, 1).unwrap();
        hostcalls::increment_metric(self.ids.inflight, 1).unwrap();
        let bad = hostcalls::increment_metric(self.ids.requests, -1);
        self.set_http_request_header("x-negative-counter", Some(&format!("{bad:?}")));
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        if eos {
            hostcalls::record_metric(self.ids.sizes, size as u64).unwrap();
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let n = hostcalls::get_metric(self.ids.requests).unwrap();
        self.set_http_response_header("x-requests", Some(&n.to_string()));
        let hist = hostcalls::get_metric(self.ids.sizes);
        self.set_http_response_header("x-histogram-get", Some(&format!("{hist:?}")));
        Action::Continue
    }

    fn on_log(&mut self) {
        hostcalls::increment_metric(self.ids.inflight, -1).unwrap();
    }
}
