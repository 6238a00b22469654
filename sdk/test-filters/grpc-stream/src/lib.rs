//! The official SDK's `grpc-stream` reference filter, written with `sluice::call::GrpcStream`:
//! opens `pkg.Echo/Stream` on cluster `grpc`, sends the request path's segments as messages
//! (half-closing with the last), and answers the client with what came back, in order.
use std::rc::Rc;

use sluice::call::{GrpcStream, GrpcStreamEvent};
use sluice::http::{Action, HttpFilter, Reply, Request, StatusCode};
use sluice::{HttpPlugin, Plugin, Setup};

struct Echo;

impl Plugin for Echo {
    type Config = ();
    fn configure(_: (), _: &mut Setup) -> sluice::Result<Self> {
        Ok(Echo)
    }
}

impl HttpPlugin for Echo {
    type Filter = Echo;
    fn new_filter(self: &Rc<Self>) -> Echo {
        Echo
    }
}

fn value(pairs: &[(Vec<u8>, Vec<u8>)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k.as_slice() == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

impl HttpFilter for Echo {
    async fn on_request_headers(&mut self, req: Request<'_>, _eos: bool) -> sluice::Result<Action> {
        let path = req.path()?.unwrap_or_default();
        let method = if path.starts_with("/unknown") { "Nope" } else { "Stream" };
        let mut stream = match GrpcStream::open("grpc", "pkg.Echo", method, &[("x-md", b"1")]) {
            Ok(s) => s,
            Err(e) => {
                return Ok(Reply::new(StatusCode::INTERNAL_SERVER_ERROR)
                    .body(format!("grpc stream failed: {e}"))
                    .into())
            }
        };
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, p) in parts.iter().enumerate() {
            stream.send(p, i + 1 == parts.len())?;
        }
        if parts.is_empty() {
            stream.close_send()?;
        }
        let mut log = Vec::new();
        while let Some(event) = stream.next().await {
            log.push(match event {
                GrpcStreamEvent::InitialMetadata(md) => format!("initial x-echo-md={}", value(&md, "x-echo-md")),
                GrpcStreamEvent::Message(m) => format!("message {}", String::from_utf8_lossy(&m)),
                GrpcStreamEvent::TrailingMetadata(t) => format!("trailing x-echo-count={}", value(&t, "x-echo-count")),
                GrpcStreamEvent::Closed { status, message } => format!("close {} {message}", status as u32),
            });
        }
        Ok(Reply::new(StatusCode::OK).body(log.join("\n") + "\n").into())
    }
}

sluice::http_filter!(Echo);
