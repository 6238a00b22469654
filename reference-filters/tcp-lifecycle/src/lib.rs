//! Logs every network-filter callback it gets, with its arguments, under the tag its plugin
//! configuration gives it (so that two of it in one chain tell their lines apart); closes the
//! connection when the client sends `close TAG`.
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

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        log::info!("{}: create", self.tag);
        Some(Box::new(Conn { tag: self.tag.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

struct Conn {
    tag: String,
}

impl Context for Conn {
    fn on_done(&mut self) -> bool {
        log::info!("{}: done", self.tag);
        true
    }
}

impl StreamContext for Conn {
    fn on_new_connection(&mut self) -> Action {
        log::info!("{}: new connection", self.tag);
        Action::Continue
    }

    fn on_downstream_data(&mut self, size: usize, eos: bool) -> Action {
        log::info!("{}: downstream data size={size} eos={eos}", self.tag);
        let data = self.get_downstream_data(0, size).unwrap_or_default();
        if data == format!("close {}", self.tag).as_bytes() {
            self.close_downstream();
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_downstream_close(&mut self, peer: PeerType) {
        log::info!("{}: downstream close peer={}", self.tag, peer as u32);
    }

    fn on_upstream_data(&mut self, size: usize, eos: bool) -> Action {
        log::info!("{}: upstream data size={size} eos={eos}", self.tag);
        Action::Continue
    }

    fn on_upstream_close(&mut self, peer: PeerType) {
        log::info!("{}: upstream close peer={}", self.tag, peer as u32);
    }

    fn on_log(&mut self) {
        log::info!("{}: log", self.tag);
    }
}
