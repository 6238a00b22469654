//! Timers: the root context ticks every `configuration` milliseconds and counts ticks in shared data.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let Some(ms) = String::from_utf8(config).ok().and_then(|s| s.trim().parse::<u64>().ok()) else {
            log::error!("configuration must be a tick period in milliseconds");
            return false;
        };
        self.set_tick_period(Duration::from_millis(ms));
        true
    }

    fn on_tick(&mut self) {
        loop {
            let (v, cas) = self.get_shared_data("ticks");
            let n: u64 = v.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
            if self.set_shared_data("ticks", Some((n + 1).to_string().as_bytes()), cas).is_ok() {
                break;
            }
        }
        log::info!("tick");
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream;

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let (v, _) = self.get_shared_data("ticks");
        let ticked = v.is_some_and(|v| v != b"0");
        self.set_http_response_header("x-ticked", Some(&ticked.to_string()));
        Action::Continue
    }
}
