//! Exercises the SDK: typed config, the VM start and foreign function hooks, async callouts (one or
//! two in flight), local replies, whole-body buffering and replacement, headers held and edited
//! from the body, hostcall errors through `?`, metrics, shared data, properties and logging.
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use sluice::call::HttpCall;
use sluice::grpc::Code;
use sluice::http::{Action, Body, Headers, HttpFilter, HttpStream, Reply, Request, Response, StatusCode};
use sluice::metrics::Counter;
use sluice::{HttpPlugin, Plugin, Setup};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Cluster of the authorization service.
    auth_cluster: String,
    /// Callout timeout.
    timeout_ms: u64,
    /// Header added to every request.
    tag: String,
}

struct Features {
    config: Config,
    requests: Counter,
    denied: Counter,
}

impl Plugin for Features {
    type Config = Config;

    fn configure(config: Config, setup: &mut Setup) -> sluice::Result<Self> {
        log::info!("configured with cluster {}", config.auth_cluster);
        let vm: Option<String> = setup.vm_config()?;
        log::info!("vm config: {vm:?}");
        Ok(Features { config, requests: Counter::new("sdk_requests")?, denied: Counter::new("sdk_denied")? })
    }

    fn on_vm_start(vm_configuration: &[u8]) -> sluice::Result<()> {
        if vm_configuration == br#""refuse""# {
            return Err(sluice::Error::Config("the VM configuration says refuse".into()));
        }
        log::info!("vm start with {} bytes of VM configuration", vm_configuration.len());
        Ok(())
    }

    fn on_foreign_function(self: &Rc<Self>, function_id: u32, arguments: Vec<u8>) {
        log::info!("foreign function {function_id}: {}", String::from_utf8_lossy(&arguments));
    }
}

impl HttpPlugin for Features {
    type Filter = Stream;
    fn new_filter(self: &Rc<Self>) -> Stream {
        Stream { plugin: self.clone(), rewrite: false, hold: false }
    }
}

struct Stream {
    plugin: Rc<Features>,
    rewrite: bool,
    hold: bool,
}

impl Stream {
    fn auth(&self, user: &str) -> HttpCall {
        HttpCall::get(&self.plugin.config.auth_cluster, "/auth")
            .header("x-user", user)
            .timeout(Duration::from_millis(self.plugin.config.timeout_ms))
    }
}

impl HttpFilter for Stream {
    fn buffer_request_body(&self) -> bool {
        true
    }

    async fn on_request_headers(&mut self, req: Request<'_>, _eos: bool) -> sluice::Result<Action> {
        let p = &self.plugin;
        p.requests.inc();
        req.set_header("x-tag", &p.config.tag)?;
        let path = req.path()?.unwrap_or_default();
        self.rewrite = path.starts_with("/rewrite");
        if path == "/panic" {
            panic!("the features filter was asked to panic");
        }
        let hits = sluice::shared::update("sdk_hits", |n: Option<u64>| n.unwrap_or(0) + 1).unwrap_or(0);
        req.set_header("x-hits", hits.to_string())?;
        let route = sluice::properties::string(&["xds", "route_name"])?.unwrap_or_default();
        req.set_header("x-route", route)?;
        match path.as_str() {
            "/reset" => {
                req.stream().reset()?;
                return Ok(Action::Pause);
            }
            "/grpc-deny" => {
                return Ok(Reply::new(StatusCode::FORBIDDEN).body("no").grpc_status(Code::Unauthenticated).into())
            }
            "/manual" => {
                // Pause now; a detached task resumes the request by hand once its callout answers.
                let cluster = self.plugin.config.auth_cluster.clone();
                let stream = req.stream();
                sluice::spawn(async move {
                    let ok = HttpCall::get(&cluster, "/auth").header("x-user", "alice").send().await.is_ok();
                    let _ = stream.request_headers().set_header("x-manual", ok.to_string());
                    let _ = stream.resume_request();
                });
                return Ok(Action::Pause);
            }
            "/hold" => {
                // Hold the headers; the body handler edits them and releases them (Envoy allows
                // it with `allow_on_headers_stop_iteration`).
                self.hold = true;
                return Ok(Action::Pause);
            }
            "/fail" => {
                // A hostcall failure returned with `?`: response headers do not exist yet.
                req.stream().response_headers().set_header("x-too-early", "1")?;
                return Ok(Action::Continue);
            }
            "/api" => {
                api_tour(&req)?;
                return Ok(Action::Continue);
            }
            "/grpc" => {
                return Ok(
                    match sluice::call::GrpcCall::new("grpc", "pkg.Checker", "Check", b"/grpc".to_vec()).send().await {
                        Ok(reply) => {
                            req.set_header("x-grpc-reply", reply)?;
                            Action::Continue
                        }
                        Err(e) => Reply::new(StatusCode::FORBIDDEN).body(e.to_string()).into(),
                    },
                );
            }
            _ => {}
        }
        let Some(user) = req.header_str("x-user")? else { return Ok(Action::Continue) };
        if let Some(second) = req.header_str("x-also")? {
            // Two callouts in flight at once; the stream resumes when both are answered.
            let (a, b) = join(self.auth(&user).send(), self.auth(&second).send()).await;
            let ok = |r: &sluice::Result<sluice::call::HttpResponse>| {
                r.as_ref().is_ok_and(|r| r.status() == Some(StatusCode::OK))
            };
            req.set_header("x-both", format!("{} {}", ok(&a), ok(&b)))?;
            return Ok(Action::Continue);
        }
        Ok(match self.auth(&user).send().await {
            Ok(r) if r.status() == Some(StatusCode::OK) => {
                req.set_header("x-auth-user", r.header("x-user").unwrap_or_default())?;
                Action::Continue
            }
            Ok(r) => {
                p.denied.inc();
                let status = r.status().map(|s| s.as_u16()).unwrap_or(0);
                Reply::new(StatusCode::FORBIDDEN)
                    .header("x-auth-status", status.to_string())
                    .body(r.body().to_vec())
                    .into()
            }
            Err(e) => Reply::new(StatusCode::INTERNAL_SERVER_ERROR).body(format!("auth failed: {e}")).into(),
        })
    }

    async fn on_request_body(&mut self, mut body: Body<'_>, eos: bool) -> sluice::Result<Action> {
        if self.hold {
            // Headers held since `on_request_headers`: still writable here (once they have gone
            // on, Envoy refuses with BadArgument).
            let stream = body.stream();
            let headers = stream.request_headers();
            headers.set_header("x-held-body-size", body.len().to_string())?;
            // Envoy's map size is the bytes of every name and value.
            let counted: usize = headers.pairs()?.iter().map(|(k, v)| k.len() + v.len()).sum();
            headers.set_header("x-map-size", format!("{}", headers.byte_size()? == counted))?;
            body.append(b"!")?;
            headers.set_header("x-body-len", format!("{} {}", body.len(), body.host_len()?))?;
            return Ok(if eos { Action::Continue } else { Action::Pause });
        }
        if self.rewrite {
            let text = String::from_utf8_lossy(&body.read()?).to_uppercase();
            body.replace(text.as_bytes())?;
            body.prepend(b"<")?;
            body.append(b">")?;
        }
        Ok(Action::Continue)
    }

    async fn on_response_headers(&mut self, resp: Response<'_>, _eos: bool) -> sluice::Result<Action> {
        resp.set_header("x-sdk", "sluice")?;
        Ok(Action::Continue)
    }

    fn on_log(&mut self, stream: &HttpStream) {
        // Tell the collector service (if one runs in this vm_id) about the request.
        let path = stream.request_headers().path().ok().flatten().unwrap_or_default();
        if let Ok(Some(q)) = sluice::queue::Queue::resolve("", "events") {
            let _ = q.push(path.as_bytes());
        }
    }
}

/// Uses the rest of the API and reports each result as an `x-api-*` request header.
fn api_tour(req: &Request<'_>) -> sluice::Result<()> {
    use sluice::properties as p;
    let set = |k: &str, v: String| {
        let _ = req.set_header(format!("x-api-{k}"), v);
    };
    set("port", format!("{:?}", p::int(&["source", "port"]).map(|v| v.is_some())));
    set("time", format!("{:?}", p::timestamp(&["request", "time"]).map(|t| t.is_some())));
    set("headers", format!("{:?}", p::map(&["request", "headers"]).map(|m| m.map(|m| m.len() > 2))));
    set("mtls", format!("{:?}", p::boolean(&["connection", "mtls"])));
    set("missing", format!("{:?}", p::string(&["no", "such"])));
    let _ = p::set(&["my_state"], b"v1");
    set("state", format!("{:?}", p::string(&["my_state"])));
    let z = sluice::call_foreign_function("compress", b"aaaaaaaaaaaaaaaa").unwrap_or_default();
    let back = sluice::call_foreign_function("uncompress", &z).unwrap_or_default();
    set("zlib", String::from_utf8_lossy(&back).into_owned());
    set("foreign", format!("{:?}", sluice::call_foreign_function("nope", b"")));
    let gauge = sluice::metrics::Gauge::new("sdk_gauge").unwrap();
    gauge.add(5);
    gauge.add(-2);
    set("gauge", format!("{:?}", gauge.get()));
    sluice::metrics::Histogram::new("sdk_hist").unwrap().record(42);
    let q = sluice::queue::Queue::register("api_q").unwrap();
    let _ = q.push_json(&vec![1, 2, 3]);
    set("queue", format!("{:?}", q.pop_json::<Vec<u32>>()));
    set("queue-empty", format!("{:?}", q.pop()));
    let _ = sluice::shared::set("api_k", &"hello");
    set("shared", format!("{:?}", sluice::shared::get::<String>("api_k").map(|v| v.map(|v| v.value))));
    set("map", format!("{}", req.to_header_map()?.len()));
    set("map-bytes", format!("{}", req.byte_size()? > 0));
    set("bad-utf8", format!("{:?}", req.header_str("x-binary")?));
    set("raw", format!("{:?}", req.header("x-binary")?));
    set("method", format!("{:?}", req.method()?));
    Ok(())
}

/// Awaits two futures together.
async fn join<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::pin::pin;
    use std::task::Poll;
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}

sluice::http_filter!(Features);
