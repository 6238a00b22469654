//! Logs every HTTP callback it gets, with its arguments, under the tag its plugin configuration
//! gives it (so that two of it in one chain tell their lines apart); answers locally when asked:
//! `x-reply: TAG` at the request's headers, `x-reply-response: TAG` at the response's,
//! `x-reset: TAG` resets the stream at the request's headers, and `x-buffer: TAG` holds the
//! request body until it is whole.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { tag: String::new() }) });
}}

struct Root {
    tag: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.tag = String::from_utf8_lossy(&config).trim().to_string();
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        log::info!("{}: create", self.tag);
        Some(Box::new(Stream { tag: self.tag.clone(), context_id, buffer: false, reply_response: false }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    tag: String,
    context_id: u32,
    buffer: bool,
    /// Answer at the response's headers (decided at the request's: Envoy does not let a filter
    /// read the request's headers later, until `on_log`).
    reply_response: bool,
}

impl Stream {
    fn asked(&self, header: &str) -> bool {
        self.get_http_request_header(header).is_some_and(|v| v == self.tag)
    }
}

impl Context for Stream {
    fn on_done(&mut self) -> bool {
        log::info!("{}: done", self.tag);
        true
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        let _ = self.context_id;
        log::info!("{}: request headers n={n} eos={eos}", self.tag);
        self.buffer = self.asked("x-buffer");
        self.reply_response = self.asked("x-reply-response");
        if self.asked("x-reset") {
            self.reset_http_request();
            return Action::Pause;
        }
        if self.asked("x-reply") {
            self.send_http_response(418, vec![("x-replied-by", &self.tag)], Some(b"short and stout"));
            return Action::Pause;
        }
        self.add_http_request_header("x-seen-by", &self.tag);
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        log::info!("{}: request body size={size} eos={eos}", self.tag);
        if self.buffer && !eos {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        log::info!("{}: request trailers n={n}", self.tag);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, n: usize, eos: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        log::info!("{}: response headers n={n} eos={eos} status={status}", self.tag);
        if self.reply_response && status != "419" {
            self.send_http_response(419, vec![("x-replied-by", &self.tag)], Some(b"too late"));
            return Action::Pause;
        }
        self.add_http_response_header("x-passed", &self.tag);
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        log::info!("{}: response body size={size} eos={eos}", self.tag);
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, n: usize) -> Action {
        log::info!("{}: response trailers n={n}", self.tag);
        Action::Continue
    }

    fn on_log(&mut self) {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        let seen = self.get_http_request_header("x-seen-by").unwrap_or_default();
        log::info!("{}: log status={status} seen-by={seen}", self.tag);
    }
}
