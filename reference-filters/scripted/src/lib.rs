//! The conformance engine's filter: what it does in each callback comes from a script the request
//! carries (`x-script`), so one proxy process plays thousands of scenarios; it logs every callback
//! it gets with its arguments and what it read, under its tag (its plugin configuration) and the
//! scenario's id (`x-sid`), so that two proxies' lines can be compared per scenario.
//!
//! A script is `;`-separated steps `TAG.POINT:VERB[=ARG]`; a filter runs the steps with its own
//! tag at the callback named by POINT (`rqh`, `rqb`, `rqt`, `rsh`, `rsb`, `rst`), in order:
//! - headers and trailers: `add=NAME:VALUE`, `set=NAME:VALUE`, `del=NAME`, `get=NAME`;
//! - bodies: `append=TEXT`, `prepend=TEXT`, `replace=TEXT`, `clear`, `cut=N` (keep N bytes),
//!   `buffer` (pause until the end of stream);
//! - flow: `stop` (pause, nothing resumes), `timer` (pause, resume from the root's next tick),
//!   `call=CLUSTER/PATH` (pause, resume when the callout answers), `callreply=CLUSTER/PATH` (answer
//!   with the callout's status), `reply=STATUS`, `reset`;
//! - anything: `log=LEVEL`, `prop=a.b.c` (log a property), `panic`.
//!
//! Written with the official `proxy-wasm` crate, so that the oracle does not see through sluice's
//! own SDK.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { tag: String::new(), waiting: Rc::default() })
    });
}}

/// Streams paused by `timer`: their context, scenario and which side to resume.
type Waiting = Rc<RefCell<Vec<(u32, String, Side)>>>;

/// How often the root ticks while a stream waits for it.
const TICK: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Request,
    Response,
}

struct Root {
    tag: String,
    waiting: Waiting,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.tag = String::from_utf8_lossy(&config).trim().to_string();
        true
    }

    fn on_tick(&mut self) {
        let waiting: Vec<_> = self.waiting.borrow_mut().drain(..).collect();
        let _ = hostcalls::set_tick_period(Duration::ZERO);
        for (context, sid, side) in waiting {
            let effective = hostcalls::set_effective_context(context);
            let resumed = match (effective, side) {
                (Err(e), _) => Err(e),
                (Ok(()), Side::Request) => hostcalls::resume_http_request(),
                (Ok(()), Side::Response) => hostcalls::resume_http_response(),
            };
            log::info!("{} {sid} tick resume -> {}", self.tag, outcome(resumed));
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            tag: self.tag.clone(),
            context_id,
            sid: String::from("?"),
            script: Vec::new(),
            waiting: self.waiting.clone(),
            call_side: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One step of a script, for this filter.
struct Step {
    point: String,
    verb: String,
    arg: String,
}

fn parse(script: &str, tag: &str) -> Vec<Step> {
    script
        .split(';')
        .filter_map(|step| {
            let (head, action) = step.trim().split_once(':')?;
            let (t, point) = head.split_once('.')?;
            if t != tag {
                return None;
            }
            let (verb, arg) = action.split_once('=').unwrap_or((action, ""));
            Some(Step { point: point.to_string(), verb: verb.to_string(), arg: arg.to_string() })
        })
        .collect()
}

/// The ABI's edits, called directly: the SDK's wrappers panic on a status they do not expect,
/// and what a host answers to an edit it refuses is part of what the engine compares.
mod raw {
    use proxy_wasm::types::{BufferType, MapType};

    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_set_buffer_bytes(t: u32, start: usize, size: usize, data: *const u8, len: usize) -> u32;
        fn proxy_add_header_map_value(t: u32, k: *const u8, kl: usize, v: *const u8, vl: usize) -> u32;
        fn proxy_replace_header_map_value(t: u32, k: *const u8, kl: usize, v: *const u8, vl: usize) -> u32;
        fn proxy_remove_header_map_value(t: u32, k: *const u8, kl: usize) -> u32;
    }

    fn status(code: u32) -> Result<(), String> {
        if code == 0 {
            Ok(())
        } else {
            Err(format!("status {code}"))
        }
    }

    pub fn set_buffer(b: BufferType, start: usize, size: usize, data: &[u8]) -> Result<(), String> {
        status(unsafe { proxy_set_buffer_bytes(b as u32, start, size, data.as_ptr(), data.len()) })
    }

    pub fn add(m: MapType, k: &str, v: &str) -> Result<(), String> {
        status(unsafe { proxy_add_header_map_value(m as u32, k.as_ptr(), k.len(), v.as_ptr(), v.len()) })
    }

    pub fn replace(m: MapType, k: &str, v: &str) -> Result<(), String> {
        status(unsafe { proxy_replace_header_map_value(m as u32, k.as_ptr(), k.len(), v.as_ptr(), v.len()) })
    }

    pub fn remove(m: MapType, k: &str) -> Result<(), String> {
        status(unsafe { proxy_remove_header_map_value(m as u32, k.as_ptr(), k.len()) })
    }
}

fn outcome(r: Result<(), Status>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(s) => format!("{s:?}"),
    }
}

/// At most 40 bytes of `bytes`, printable.
fn show(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().take(40).flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
    if bytes.len() > 40 {
        s.push_str("...");
    }
    s
}

/// Headers whose values change from run to run.
const VARYING: &[&str] = &["x-request-id", "date", "x-envoy-upstream-service-time"];

fn show_map(pairs: &[(String, Bytes)]) -> String {
    let shown: Vec<String> = pairs
        .iter()
        .map(|(k, v)| if VARYING.contains(&k.as_str()) { format!("{k}:*") } else { format!("{k}:{}", show(v)) })
        .collect();
    format!("[{}]", shown.join(","))
}

struct Stream {
    tag: String,
    context_id: u32,
    sid: String,
    script: Vec<Step>,
    waiting: Waiting,
    /// The side a callout in flight resumes, and whether its answer replies.
    call_side: Option<(Side, bool)>,
}

/// What a step leaves the callback to do.
enum Flow {
    Next,
    Pause,
}

impl Stream {
    fn say(&self, what: &str) {
        log::info!("{} {} {what}", self.tag, self.sid);
    }

    /// Runs the steps for `point`; the action the callback returns.
    fn run(&mut self, point: &str, map: Option<MapType>, body: Option<(BufferType, usize)>, eos: bool) -> Action {
        let side = if point.starts_with("rq") { Side::Request } else { Side::Response };
        let steps: Vec<(String, String)> =
            self.script.iter().filter(|s| s.point == point).map(|s| (s.verb.clone(), s.arg.clone())).collect();
        for (verb, arg) in steps {
            if let Flow::Pause = self.step(side, map, body, eos, &verb, &arg) {
                return Action::Pause;
            }
        }
        Action::Continue
    }

    fn step(
        &mut self,
        side: Side,
        map: Option<MapType>,
        body: Option<(BufferType, usize)>,
        eos: bool,
        verb: &str,
        arg: &str,
    ) -> Flow {
        // `NAME:VALUE`, where a pseudo-header's name starts with its own colon.
        let split_at = usize::from(arg.starts_with(':'));
        let (name, value) = match arg[split_at..].split_once(':') {
            Some((n, v)) => (&arg[..split_at + n.len()], v),
            None => (arg, ""),
        };
        let result: Result<(), String> = match (verb, map, body) {
            ("add", Some(m), _) => raw::add(m, name, value),
            ("set", Some(m), _) => raw::replace(m, name, value),
            ("del", Some(m), _) => raw::remove(m, name),
            ("get", Some(m), _) => {
                let v = hostcalls::get_map_value_bytes(m, name);
                self.say(&format!("get {name} = {:?}", v.map(|v| v.map(|v| show(&v)))));
                Ok(())
            }
            ("append", _, Some((b, size))) => raw::set_buffer(b, size, 0, arg.as_bytes()),
            ("prepend", _, Some((b, _))) => raw::set_buffer(b, 0, 0, arg.as_bytes()),
            ("replace", _, Some((b, size))) => raw::set_buffer(b, 0, size, arg.as_bytes()),
            ("clear", _, Some((b, size))) => raw::set_buffer(b, 0, size, b""),
            ("cut", _, Some((b, size))) => {
                let keep = arg.parse::<usize>().unwrap_or(0).min(size);
                raw::set_buffer(b, keep, size - keep, b"")
            }
            ("buffer", _, Some(_)) => return if eos { Flow::Next } else { Flow::Pause },
            ("stop", ..) => return Flow::Pause,
            ("timer", ..) => {
                self.waiting.borrow_mut().push((self.context_id, self.sid.clone(), side));
                let r = hostcalls::set_tick_period(TICK);
                self.say(&format!("timer -> {}", outcome(r)));
                return Flow::Pause;
            }
            ("call" | "callreply", ..) => {
                let (cluster, path) = arg.split_once('/').unwrap_or((arg, ""));
                let path = format!("/{path}");
                let headers =
                    vec![(":method", "GET"), (":path", path.as_str()), (":authority", "callout"), ("x-sid", &self.sid)];
                let r = self.dispatch_http_call(cluster, headers, None, vec![], Duration::from_millis(1000));
                self.say(&format!("call {arg} -> {}", outcome(r.map(|_| ()))));
                if r.is_ok() {
                    self.call_side = Some((side, verb == "callreply"));
                    return Flow::Pause;
                }
                return Flow::Next;
            }
            ("reply", ..) => {
                let status = arg.parse().unwrap_or(200);
                let text = format!("{} says {status}", self.tag);
                let r = hostcalls::send_http_response(status, vec![("x-replied-by", &self.tag)], Some(text.as_bytes()));
                self.say(&format!("reply {status} -> {}", outcome(r)));
                return Flow::Pause;
            }
            ("reset", ..) => {
                let r = match side {
                    Side::Request => hostcalls::reset_http_request(),
                    Side::Response => hostcalls::reset_http_response(),
                };
                self.say(&format!("reset -> {}", outcome(r)));
                return Flow::Pause;
            }
            ("log", ..) => {
                let level = match arg {
                    "trace" => LogLevel::Trace,
                    "debug" => LogLevel::Debug,
                    "warn" => LogLevel::Warn,
                    "error" => LogLevel::Error,
                    "critical" => LogLevel::Critical,
                    _ => LogLevel::Info,
                };
                let _ = hostcalls::log(level, &format!("{} {} said {arg}", self.tag, self.sid));
                Ok(())
            }
            ("prop", ..) => {
                let v = hostcalls::get_property(arg.split('.').collect());
                self.say(&format!("prop {arg} = {:?}", v.map(|v| v.map(|v| show(&v)))));
                Ok(())
            }
            ("panic", ..) => panic!("{} {} panics as scripted", self.tag, self.sid),
            _ => {
                self.say(&format!("{verb} does not apply here"));
                Ok(())
            }
        };
        if let Err(e) = result {
            self.say(&format!("{verb} {arg} -> {e}"));
        }
        Flow::Next
    }

    fn headers(&self, map: MapType) -> String {
        show_map(&hostcalls::get_map_bytes(map).unwrap_or_default())
    }

    fn body(&self, buffer: BufferType, size: usize) -> String {
        show(&hostcalls::get_buffer(buffer, 0, size).ok().flatten().unwrap_or_default())
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, _token: u32, headers: usize, body_size: usize, trailers: usize) {
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        let body = show(&self.get_http_call_response_body(0, body_size).unwrap_or_default());
        let map = show_map(&hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default());
        self.say(&format!("answer status={status} n={headers} size={body_size} t={trailers} {map} body={body}"));
        let Some((side, reply)) = self.call_side.take() else { return };
        let r = if reply {
            let code = status.parse().unwrap_or(500);
            hostcalls::send_http_response(code, vec![("x-replied-by", &self.tag)], Some(b"callout said so"))
        } else if side == Side::Request {
            hostcalls::resume_http_request()
        } else {
            hostcalls::resume_http_response()
        };
        self.say(&format!("after answer -> {}", outcome(r)));
    }

    fn on_done(&mut self) -> bool {
        self.waiting.borrow_mut().retain(|(c, ..)| *c != self.context_id);
        self.say("done");
        true
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        self.sid = self.get_http_request_header("x-sid").unwrap_or_else(|| "?".into());
        self.script = parse(&self.get_http_request_header("x-script").unwrap_or_default(), &self.tag);
        self.say(&format!("rqh n={n} eos={eos} {}", self.headers(MapType::HttpRequestHeaders)));
        self.run("rqh", Some(MapType::HttpRequestHeaders), None, eos)
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        self.say(&format!("rqb size={size} eos={eos} [{}]", self.body(BufferType::HttpRequestBody, size)));
        self.run("rqb", None, Some((BufferType::HttpRequestBody, size)), eos)
    }

    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        self.say(&format!("rqt n={n} {}", self.headers(MapType::HttpRequestTrailers)));
        self.run("rqt", Some(MapType::HttpRequestTrailers), None, true)
    }

    fn on_http_response_headers(&mut self, n: usize, eos: bool) -> Action {
        self.say(&format!("rsh n={n} eos={eos} {}", self.headers(MapType::HttpResponseHeaders)));
        self.run("rsh", Some(MapType::HttpResponseHeaders), None, eos)
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        self.say(&format!("rsb size={size} eos={eos} [{}]", self.body(BufferType::HttpResponseBody, size)));
        self.run("rsb", None, Some((BufferType::HttpResponseBody, size)), eos)
    }

    fn on_http_response_trailers(&mut self, n: usize) -> Action {
        self.say(&format!("rst n={n} {}", self.headers(MapType::HttpResponseTrailers)));
        self.run("rst", Some(MapType::HttpResponseTrailers), None, true)
    }

    fn on_log(&mut self) {
        if self.sid == "?" {
            self.sid = self.get_http_request_header("x-sid").unwrap_or_else(|| "?".into());
        }
        let status = self.get_http_response_header(":status").unwrap_or_default();
        self.say(&format!("log status={status}"));
    }
}
