//! Network filter: upper-cases what the client sends, closes connections that start with `DENY`, and
//! counts bytes both ways in shared data.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_stream_context(|_, _| -> Box<dyn StreamContext> { Box::new(Tcp { first: true }) });
}}

struct Tcp {
    first: bool,
}

fn add(ctx: &dyn Context, key: &str, n: usize) {
    loop {
        let (v, cas) = ctx.get_shared_data(key);
        let total: usize = v.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
        if ctx.set_shared_data(key, Some((total + n).to_string().as_bytes()), cas).is_ok() {
            return;
        }
    }
}

impl Context for Tcp {}

impl StreamContext for Tcp {
    fn on_downstream_data(&mut self, size: usize, _eos: bool) -> Action {
        if size == 0 {
            return Action::Continue;
        }
        let data = self.get_downstream_data(0, size).unwrap_or_default();
        add(self, "down_bytes", data.len());
        if std::mem::take(&mut self.first) && data.starts_with(b"DENY") {
            log::warn!("denied connection");
            self.close_downstream();
            return Action::Pause;
        }
        self.set_downstream_data(0, size, &data.to_ascii_uppercase());
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, _eos: bool) -> Action {
        add(self, "up_bytes", size);
        Action::Continue
    }
}
