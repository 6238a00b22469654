//! gRPC stream callout: opens `pkg.Echo/Stream` on cluster `grpc`, sends the request path's segments
//! as messages and half-closes; answers the client with what came back: initial metadata, each
//! message, trailing metadata and the status.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Stream { log: Vec::new() }) });
}}

struct Stream {
    log: Vec<String>,
}

impl Context for Stream {
    fn on_grpc_stream_initial_metadata(&mut self, token: u32, _n: u32) {
        let md =
            self.get_grpc_stream_initial_metadata_value("x-echo-md").map(|v| String::from_utf8_lossy(&v).into_owned());
        self.log.push(format!("initial x-echo-md={}", md.unwrap_or_default()));
        let _ = token;
    }

    fn on_grpc_stream_message(&mut self, _token: u32, size: usize) {
        let m = self.get_grpc_stream_message(0, size).unwrap_or_default();
        self.log.push(format!("message {}", String::from_utf8_lossy(&m)));
    }

    fn on_grpc_stream_trailing_metadata(&mut self, _token: u32, _n: u32) {
        let t = self
            .get_grpc_stream_trailing_metadata_value("x-echo-count")
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        self.log.push(format!("trailing x-echo-count={}", t.unwrap_or_default()));
    }

    fn on_grpc_stream_close(&mut self, _token: u32, status: u32) {
        let (_, message) = self.get_grpc_status();
        self.log.push(format!("close {status} {}", message.unwrap_or_default()));
        let body = self.log.join("\n") + "\n";
        self.send_http_response(200, vec![], Some(body.as_bytes()));
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let method = if path.starts_with("/unknown") { "Nope" } else { "Stream" };
        let token = match self.open_grpc_stream("grpc", "pkg.Echo", method, vec![("x-md", b"1")]) {
            Ok(t) => t,
            Err(e) => {
                self.send_http_response(500, vec![], Some(format!("grpc stream failed: {e:?}").as_bytes()));
                return Action::Pause;
            }
        };
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, p) in parts.iter().enumerate() {
            let _ = self.send_grpc_stream_message(token, Some(p.as_bytes()), i + 1 == parts.len());
        }
        if parts.is_empty() {
            let _ = self.send_grpc_stream_message(token, None, true);
        }
        Action::Pause
    }
}
