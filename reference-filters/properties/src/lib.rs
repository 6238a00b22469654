//! Properties: reads Envoy's attributes in the request phase and reports them as response headers.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Props::default()) });
}}

#[derive(Default)]
struct Props {
    found: Vec<(String, String)>,
}

const STRINGS: &[&[&str]] = &[
    &["request", "path"],
    &["request", "url_path"],
    &["request", "query"],
    &["request", "method"],
    &["request", "host"],
    &["request", "scheme"],
    &["request", "protocol"],
    &["request", "headers", "x-prop"],
    &["plugin_name"],
    &["plugin_root_id"],
    &["plugin_vm_id"],
    &["xds", "cluster_name"],
    &["xds", "route_name"],
    &["my_key"],
    &["cluster_name"],
    &["node"],
    &["xds", "node", "id"],
    &["xds", "node", "cluster"],
    &["xds", "node", "metadata", "role"],
    &["xds", "listener_metadata", "filter_metadata", "sluice.test", "who"],
    &["xds", "virtual_host_metadata", "filter_metadata", "sluice.test", "who"],
    &["xds", "route_metadata", "filter_metadata", "sluice.test", "who"],
    &["xds", "cluster_metadata", "filter_metadata", "sluice.test", "who"],
];

/// Values that differ from run to run: report only their encoded length.
const SIZES: &[&[&str]] = &[
    &["source", "port"],
    &["request", "time"],
    &["connection", "id"],
    &["connection", "mtls"],
    &["xds", "listener_metadata"],
    &["xds", "route_metadata"],
    &["xds", "cluster_metadata"],
    &["xds", "route_metadata", "filter_metadata"],
    &["xds", "route_metadata", "filter_metadata", "sluice.test"],
    &["xds", "cluster_metadata", "filter_metadata", "sluice.test", "n"],
    &["xds", "node", "metadata"],
];

/// Values whose bytes are compared whole (hex): serialized messages and pairs-encoded maps.
const BYTES: &[&[&str]] = &[
    &["xds", "route_metadata"],
    &["xds", "route_metadata", "filter_metadata", "sluice.test"],
    &["xds", "cluster_metadata", "filter_metadata", "sluice.test", "n"],
    &["xds", "cluster_metadata", "filter_metadata", "sluice.test", "i"],
];

impl Context for Props {}

impl HttpContext for Props {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_property(vec!["my_key"], Some(b"my value"));
        for path in STRINGS {
            let v = self.get_property(path.to_vec()).map(|b| String::from_utf8_lossy(&b).into_owned());
            self.found.push((path.join("."), v.unwrap_or_else(|| "<none>".into())));
        }
        for path in SIZES {
            let v = self.get_property(path.to_vec()).map(|b| format!("len={}", b.len()));
            self.found.push((path.join("."), v.unwrap_or_else(|| "<none>".into())));
        }
        for path in BYTES {
            let v = self.get_property(path.to_vec()).map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>());
            self.found.push((format!("hex.{}", path.join(".")), v.unwrap_or_else(|| "<none>".into())));
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        for (k, v) in std::mem::take(&mut self.found) {
            self.set_http_response_header(&format!("x-prop-{}", k.replace('.', "-")), Some(&v));
        }
        let code = self.get_property(vec!["response", "code"]).map(|b| b.len());
        self.set_http_response_header("x-prop-response-code-len", Some(&format!("{code:?}")));
        // After the request headers continued, request attributes are gone (Envoy: NotFound).
        let late = self.get_property(vec!["request", "path"]).is_some();
        self.set_http_response_header("x-prop-late-request-path", Some(&late.to_string()));
        Action::Continue
    }

    fn on_log(&mut self) {
        // In the access-log phase every map is readable again.
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let status = self.get_http_response_header(":status").unwrap_or_default();
        let code = self.get_property(vec!["response", "code"]).map(|b| {
            let mut le = [0u8; 8];
            le.copy_from_slice(&b[..8]);
            i64::from_le_bytes(le)
        });
        let details =
            self.get_property(vec!["response", "code_details"]).map(|b| String::from_utf8_lossy(&b).into_owned());
        let prop_path = self.get_property(vec!["request", "path"]).map(|b| String::from_utf8_lossy(&b).into_owned());
        log::info!("access path={path} status={status} code={code:?} details={details:?} request.path={prop_path:?}");
        let int = |p: &[&str]| {
            self.get_property(p.to_vec()).map(|b| {
                let mut le = [0u8; 8];
                le.copy_from_slice(&b[..8]);
                i64::from_le_bytes(le)
            })
        };
        log::info!("sizes request.size={:?} response.size={:?}", int(&["request", "size"]), int(&["response", "size"]));
        let upstream = self.get_property(vec!["upstream", "address"]).map(|b| String::from_utf8_lossy(&b).into_owned());
        log::info!("upstream address={upstream:?} port={:?}", int(&["upstream", "port"]));
    }
}
