//! A gRPC service on 127.0.0.1 (HTTP/2 without TLS) for callout tests: `pkg.Checker/Check` answers
//! `allowed:<request>`, or status 7 (`denied`) when the request message is `/deny`;
//! `pkg.Echo/Stream` answers each message as it arrives with `echo:<message>` (initial metadata
//! `x-echo-md` repeats the request's `x-md`; trailers carry `x-echo-count`).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;

/// A running gRPC service; it stops with the test process.
pub struct GrpcUpstream {
    /// Its port.
    pub port: u16,
    /// Each request's headers as they arrived (pseudo-headers first), in order.
    received: Received,
}

type Received = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>;

/// A body of frames sent as they are made.
struct Body(tokio::sync::mpsc::UnboundedReceiver<Frame<Bytes>>);

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// A gRPC message with its length prefix (uncompressed).
pub fn framed(m: &[u8]) -> Vec<u8> {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(m.len() as u32).to_be_bytes());
    framed.extend_from_slice(m);
    framed
}

fn data_frame(m: &[u8]) -> Frame<Bytes> {
    Frame::data(Bytes::from(framed(m)))
}

fn trailers(status: u32, text: &str) -> hyper::HeaderMap {
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", status.to_string().parse().expect("a number is a valid header"));
    if !text.is_empty() {
        trailers.insert("grpc-message", text.parse().expect("ASCII text is a valid header"));
    }
    trailers
}

fn frames(message: Option<&[u8]>, status: u32, text: &str) -> Body {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(m) = message {
        let _ = tx.send(data_frame(m));
    }
    let _ = tx.send(Frame::trailers(trailers(status, text)));
    Body(rx)
}

/// `pkg.Echo/Stream`: answers each request message as it arrives.
fn echo_stream(req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body> {
    let md = req.headers().get("x-md").cloned();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut body = req.into_body();
    tokio::spawn(async move {
        let mut pending: Vec<u8> = Vec::new();
        let mut count = 0;
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else { continue };
            pending.extend_from_slice(&data);
            while pending.len() >= 5 {
                let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
                if pending.len() < 5 + len {
                    break;
                }
                let m: Vec<u8> = pending.drain(..5 + len).skip(5).collect();
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&m);
                count += 1;
                let _ = tx.send(data_frame(&reply));
            }
        }
        let mut t = trailers(0, "");
        t.insert("x-echo-count", count.to_string().parse().expect("a number is a valid header"));
        let _ = tx.send(Frame::trailers(t));
    });
    let mut resp = hyper::Response::builder().header("content-type", "application/grpc");
    if let Some(md) = md {
        resp = resp.header("x-echo-md", md);
    }
    resp.body(Body(rx)).expect("a valid response")
}

async fn answer(req: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/pkg.Echo/Stream" {
        return Ok(echo_stream(req));
    }
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
        let received = Received::default();
        let seen = received.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                while let Ok((stream, _)) = listener.accept().await {
                    let seen = seen.clone();
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let mut headers = vec![
                            (":method".to_string(), req.method().to_string()),
                            (":path".to_string(), req.uri().path().to_string()),
                            (
                                ":authority".to_string(),
                                req.uri().authority().map(|a| a.to_string()).unwrap_or_default(),
                            ),
                        ];
                        for (k, v) in req.headers() {
                            headers.push((k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()));
                        }
                        seen.lock().unwrap_or_else(|e| e.into_inner()).push(headers);
                        answer(req)
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Ok(Self { port, received })
    }

    /// The headers of every request so far, in order.
    pub fn received(&self) -> Vec<Vec<(String, String)>> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
