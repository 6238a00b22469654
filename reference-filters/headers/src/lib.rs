//! Header mutation: adds, replaces and removes request and response headers, and reports what it saw.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Headers::default()) });
}}

#[derive(Default)]
struct Headers {
    seen: usize,
    echo: Option<String>,
}

impl Context for Headers {}

impl HttpContext for Headers {
    fn on_http_request_headers(&mut self, num_headers: usize, _eos: bool) -> Action {
        self.seen = num_headers;
        self.echo = self.get_http_request_header("x-echo-in");
        self.add_http_request_header("x-added", "1");
        self.add_http_request_header("x-added", "2");
        self.set_http_request_header("x-replaced", Some("new"));
        self.set_http_request_header("x-remove-me", None);
        self.set_http_request_header("X-Upper-Case", Some("lowered-key"));
        let first = self.get_http_request_header("x-multi").unwrap_or_default();
        self.set_http_request_header("x-multi-first", Some(&first));
        let missing = self.get_http_request_header("x-missing").is_none();
        self.set_http_request_header("x-missing-is-none", Some(&missing.to_string()));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _eos: bool) -> Action {
        self.set_http_response_header("x-request-header-count", Some(&self.seen.to_string()));
        if let Some(echo) = self.echo.take() {
            self.set_http_response_header("x-echo-out", Some(&echo));
        }
        self.add_http_response_header("x-response-added", "yes");
        self.set_http_response_header("x-upstream-remove", None);
        Action::Continue
    }
}
