//! Hello world with the official SDK: adds `x-hello: world` to every response (the size baseline
//! for the `sluice` SDK's hello world).
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Hello) });
}}

struct Hello;

impl Context for Hello {}

impl HttpContext for Hello {
    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_response_header("x-hello", Some("world"));
        Action::Continue
    }
}
