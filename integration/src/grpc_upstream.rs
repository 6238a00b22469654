//! A gRPC service on 127.0.0.1 (HTTP/2 without TLS) for callout tests: `pkg.Checker/Check` answers
//! `allowed:<request>`, or status 7 (`denied`) when the request message is `/deny`.

use std::collections::VecDeque;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;

/// A running gRPC service; it stops with the test process.
pub struct GrpcUpstream {
    /// Its port.
    pub port: u16,
}

/// A body of ready frames (data, then trailers).
struct Body(VecDeque<Frame<Bytes>>);

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(Ok))
    }
}

fn frames(message: Option<&[u8]>, status: u32, text: &str) -> Body {
    let mut out = VecDeque::new();
    if let Some(m) = message {
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(m.len() as u32).to_be_bytes());
        framed.extend_from_slice(m);
        out.push_back(Frame::data(Bytes::from(framed)));
    }
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", status.to_string().parse().expect("a number is a valid header"));
    if !text.is_empty() {
        trailers.insert("grpc-message", text.parse().expect("ASCII text is a valid header"));
    }
    out.push_back(Frame::trailers(trailers));
    Body(out)
}

async fn answer(req: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let message = body.get(5..).unwrap_or_default();
    let reply = if path != "/pkg.Checker/Check" {
        frames(None, 12, "unknown method")
    } else if message == b"/deny" {
        frames(None, 7, "denied")
    } else {
        let mut m = b"allowed:".to_vec();
        m.extend_from_slice(message);
        frames(Some(&m), 0, "")
    };
    Ok(hyper::Response::builder().header("content-type", "application/grpc").body(reply).expect("a valid response"))
}

impl GrpcUpstream {
    /// Starts the service on its own thread.
    pub fn start() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), hyper::service::service_fn(answer))
                            .await;
                    });
                }
            });
        });
        Ok(Self { port })
    }
}
