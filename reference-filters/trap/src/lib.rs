//! Faults: `x-fault: panic` panics, `loop` spins forever, `oom` allocates without end, `stack`
//! recurses without end, `wild` reads far past linear memory, `headers` adds 100,000 request
//! headers, `crlf` sets a request header whose value holds CR LF.
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Trap) });
}}

struct Trap;

impl Context for Trap {}

impl HttpContext for Trap {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        match self.get_http_request_header("x-fault").as_deref() {
            Some("panic") => panic!("boom: the filter panicked on purpose"),
            Some("loop") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("oom") => {
                let mut keep = Vec::new();
                loop {
                    keep.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&keep);
                }
            }
            Some("stack") => {
                std::hint::black_box(recurse(std::hint::black_box(1)));
            }
            Some("wild") => {
                // Far past any linear memory a module has: the load traps.
                let p = std::hint::black_box(0xffff_fff0usize) as *const u64;
                // SAFETY: it is not; the point is the trap.
                std::hint::black_box(unsafe { std::ptr::read_volatile(p) });
            }
            Some("headers") => {
                for i in 0..100_000 {
                    self.add_http_request_header(&format!("x-many-{i}"), "v");
                }
            }
            Some("crlf") => {
                self.set_http_request_header("x-injected", Some("a\r\nx-evil: 1"));
            }
            _ => {}
        }
        self.set_http_request_header("x-trap-ok", Some("yes"));
        Action::Continue
    }
}

/// Recurses until the stack is gone.
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let a = [std::hint::black_box(n); 64];
    std::hint::black_box(&a);
    recurse(n + 1).wrapping_add(a[(n % 64) as usize])
}
