//! Local replies: `/deny` is answered 403 from the request phase (the reply passes through this
//! filter's response callbacks); an upstream 500 is replaced by a 502 from the response phase.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Reply) });
}}

struct Reply;

impl Context for Reply {}

impl HttpContext for Reply {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        if path.starts_with("/deny") {
            self.send_http_response(403, vec![("x-denied", "yes")], Some(b"denied by policy"));
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        if status == "500" {
            self.send_http_response(502, vec![("x-replaced-500", "yes")], Some(b"upstream failed"));
            return Action::Pause;
        }
        self.set_http_response_header("x-saw-status", Some(&status));
        Action::Continue
    }
}
