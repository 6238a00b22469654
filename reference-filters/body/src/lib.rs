//! Body buffering and rewriting: the request body is wrapped in brackets once complete; the response
//! body has `hello` replaced and `!` appended. Content-length is dropped where the length changes.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Body) });
}}

struct Body;

impl Context for Body {}

impl HttpContext for Body {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_request_header("content-length", None);
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        if !eos {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, size).unwrap_or_default();
        let mut wrapped = b"[".to_vec();
        wrapped.extend_from_slice(&body);
        wrapped.push(b']');
        self.set_http_request_body(0, size, &wrapped);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_response_header("content-length", None);
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        if !eos {
            return Action::Pause;
        }
        let body = self.get_http_response_body(0, size).unwrap_or_default();
        let text = String::from_utf8_lossy(&body).replace("hello", "HOWDY");
        self.set_http_response_body(0, size, text.as_bytes());
        self.set_http_response_body(size + 100, 0, b"!");
        Action::Continue
    }
}
