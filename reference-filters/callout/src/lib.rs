//! HTTP callout: asks the cluster named in the configuration (`cluster timeout_ms`) whether the
//! request's `x-user` may pass; 200 lets it through with `x-auth-user`, anything else is a 403 that
//! carries the callout's status and body.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { cluster: String::new(), timeout: Duration::from_secs(1) })
    });
}}

struct Root {
    cluster: String,
    timeout: Duration,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = String::from_utf8(self.get_plugin_configuration().unwrap_or_default()).unwrap_or_default();
        let mut parts = config.split_whitespace();
        self.cluster = parts.next().unwrap_or("auth").to_string();
        self.timeout = Duration::from_millis(parts.next().and_then(|t| t.parse().ok()).unwrap_or(1000));
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { cluster: self.cluster.clone(), timeout: self.timeout }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    cluster: String,
    timeout: Duration,
}

impl Context for Stream {
    fn on_http_call_response(&mut self, _token: u32, num_headers: usize, body_size: usize, _trailers: usize) {
        if num_headers == 0 {
            let (code, msg) = self.get_grpc_status();
            self.send_http_response(502, vec![], Some(format!("callout reset: {code} {msg:?}").as_bytes()));
            return;
        }
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        if status == "200" {
            let user = self.get_http_call_response_header("x-user").unwrap_or_default();
            self.set_http_request_header("x-auth-user", Some(&user));
            self.resume_http_request();
        } else {
            let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
            self.send_http_response(403, vec![("x-auth-status", &status)], Some(&body));
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let user = self.get_http_request_header("x-user").unwrap_or_default();
        let headers = vec![(":method", "GET"), (":path", "/auth"), (":authority", "auth"), ("x-user", user.as_str())];
        match self.dispatch_http_call(&self.cluster, headers, None, vec![], self.timeout) {
            Ok(_) => Action::Pause,
            Err(status) => {
                self.send_http_response(500, vec![], Some(format!("callout failed: {status:?}").as_bytes()));
                Action::Pause
            }
        }
    }
}
