//! gRPC callout: sends the request path to `pkg.Checker/Check` on cluster `grpc` and lets the request
//! through with the reply as `x-grpc-reply`, or answers 403 with the gRPC status.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Check) });
}}

struct Check;

impl Context for Check {
    fn on_grpc_call_response(&mut self, _token: u32, status: u32, size: usize) {
        if status == 0 {
            let reply = self.get_grpc_call_response_body(0, size).unwrap_or_default();
            self.set_http_request_header("x-grpc-reply", Some(&String::from_utf8_lossy(&reply)));
            self.resume_http_request();
        } else {
            let (_, message) = self.get_grpc_status();
            let body = format!("grpc status {status}: {}", message.unwrap_or_default());
            self.send_http_response(403, vec![], Some(body.as_bytes()));
        }
    }
}

impl HttpContext for Check {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        match self.dispatch_grpc_call(
            "grpc",
            "pkg.Checker",
            "Check",
            vec![("x-md", b"1")],
            Some(path.as_bytes()),
            Duration::from_secs(1),
        ) {
            Ok(_) => Action::Pause,
            Err(e) => {
                self.send_http_response(500, vec![], Some(format!("grpc call failed: {e:?}").as_bytes()));
                Action::Pause
            }
        }
    }
}
