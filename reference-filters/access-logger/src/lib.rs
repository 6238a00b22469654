//! An access logger (`envoy.access_loggers.wasm`): Envoy calls `proxy_on_log` on its **root**
//! context once each request is complete; it logs what it can read of the request then.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Logger) });
}}

struct Logger;

impl Context for Logger {}

impl Logger {
    fn text(&self, path: &[&str]) -> String {
        self.get_property(path.to_vec()).map_or_else(|| "<none>".into(), |b| String::from_utf8_lossy(&b).into_owned())
    }

    fn int(&self, path: &[&str]) -> String {
        self.get_property(path.to_vec()).filter(|b| b.len() == 8).map_or_else(
            || "<none>".into(),
            |b| {
                let mut le = [0u8; 8];
                le.copy_from_slice(&b);
                i64::from_le_bytes(le).to_string()
            },
        )
    }

    fn header(&self, map: MapType, name: &str) -> String {
        proxy_wasm::hostcalls::get_map_value(map, name).ok().flatten().unwrap_or_else(|| "<none>".into())
    }
}

impl RootContext for Logger {
    fn on_log(&mut self) {
        let path = self.header(MapType::HttpRequestHeaders, ":path");
        let method = self.header(MapType::HttpRequestHeaders, ":method");
        let status = self.header(MapType::HttpResponseHeaders, ":status");
        let agent = self.header(MapType::HttpRequestHeaders, "user-agent");
        let code = self.int(&["response", "code"]);
        let size = self.int(&["request", "size"]);
        let route = self.text(&["xds", "route_name"]);
        let cluster = self.text(&["xds", "cluster_name"]);
        let plugin = self.text(&["plugin_name"]);
        log::info!(
            "logged {method} {path} status={status} code={code} request.size={size} user-agent={agent} route={route} cluster={cluster} plugin={plugin}"
        );
    }
}
