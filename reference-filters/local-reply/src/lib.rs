//! Local replies: `/deny` is answered 403 from the request phase (the reply passes through this
//! filter's response callbacks); an upstream 500 is replaced by a 502 from the response phase.
//! `/deny-crlf` and `/crlf-header` put CR LF into a header, as a filter echoing untrusted text would.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Reply::default()) });
}}

#[derive(Default)]
struct Reply {
    /// `/crlf-header`: echo CR LF into a response header.
    crlf: bool,
}

impl Context for Reply {}

impl HttpContext for Reply {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        self.crlf = path.starts_with("/crlf-header");
        // A filter that builds a header from untrusted text (CR, LF in it).
        if path.starts_with("/deny-crlf") {
            self.send_http_response(403, vec![("x-reason", "bad\r\nset-cookie: injected=1")], Some(b"denied"));
            return Action::Pause;
        }
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
        if self.crlf {
            self.set_http_response_header("x-echo", Some("a\r\nset-cookie: injected=1"));
        }
        Action::Continue
    }
}
