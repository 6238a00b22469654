//! A connection's read side with its request heads checked before hyper reads them: heads the
//! scanner passes go through as read, a refused one is replaced by a stand-in request.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::refusal::Refusal;
use super::scanner::{Heads, Step};
use sluice_core::stream::HeaderMap;

/// The header that marks the request a refused head is replaced with. The service answers such a
/// request with the refusal when its connection has one; a client that sends the header itself can
/// only have its own connection's refusal answered early.
pub(crate) const STAND_IN_HEADER: &str = "x-sluice-refused-head";
/// The request a refused head is replaced with: it reaches the service, which answers the refusal.
const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\nhost: refused\r\nx-sluice-refused-head: 1\r\n\r\n";
/// The same for an HTTP/1.0 request the connection manager refuses (with `accept_http_10`): it
/// answers in the request's version.
const STAND_IN_10: &[u8] = b"GET / HTTP/1.0\r\nhost: refused\r\nx-sluice-refused-head: 1\r\n\r\n";

/// A refused request head.
#[derive(Debug)]
pub(crate) struct Refused {
    pub refusal: Refusal,
    /// The request, when the connection manager refused it (not the codec).
    pub request: Option<HeaderMap>,
}

/// Why the connection's request head was refused: set by [`Checked`] before hyper reads the
/// stand-in, taken by the service when the stand-in comes.
pub(crate) type Verdict = Rc<RefCell<Option<Refused>>>;

/// A connection's read side, with its request heads checked before hyper reads them.
pub(crate) struct Checked<R> {
    inner: R,
    heads: Heads,
    /// The start of a head that has not ended: read, not yet given to hyper.
    held: Vec<u8>,
    /// Bytes for hyper before anything more is read: held bytes let through, or the stand-in.
    ready: Vec<u8>,
    ready_at: usize,
    /// The client ended its side (after `ready`, hyper reads the end).
    eof: bool,
    /// A head was refused: after the stand-in, hyper reads nothing more (an end would make it
    /// drop the stand-in's answer).
    refused: bool,
    verdict: Verdict,
}

impl<R> Checked<R> {
    /// Wraps `inner`; a refusal is reported through `verdict`.
    pub(crate) fn new(inner: R, heads: Heads, verdict: Verdict) -> Self {
        Self { inner, heads, held: Vec::new(), ready: Vec::new(), ready_at: 0, eof: false, refused: false, verdict }
    }

    /// The head after what was let through is refused: the stand-in goes next, then nothing.
    fn refuse(&mut self, refusal: Refusal) {
        let (request, http10) = match self.heads.refused_request.take() {
            Some((request, http10)) => (Some(request), http10),
            None => (None, false),
        };
        *self.verdict.borrow_mut() = Some(Refused { refusal, request });
        self.ready.extend_from_slice(if http10 { STAND_IN_10 } else { STAND_IN });
        self.refused = true;
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Checked<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready_at < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_at);
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.refused {
                // The service answers the stand-in and hyper closes the connection.
                return Poll::Pending;
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.held.is_empty() {
                // Most reads end between requests or inside a body: they go to hyper as read.
                let before = buf.filled().len();
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                let filled = buf.filled().len();
                if filled == before {
                    return Poll::Ready(Ok(()));
                }
                let pass = match this.heads.scan(&buf.filled()[before..]) {
                    Step::Pass(n) => {
                        this.held.extend_from_slice(&buf.filled()[before + n..]);
                        n
                    }
                    Step::Refuse { pass, refusal } => {
                        this.refuse(refusal);
                        pass
                    }
                };
                buf.set_filled(before + pass);
                if pass > 0 {
                    return Poll::Ready(Ok(()));
                }
            } else {
                // A head split across reads: it waits here until it ends.
                let mut more = [0u8; 8192];
                let mut more = ReadBuf::new(&mut more);
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut more))?;
                if more.filled().is_empty() {
                    // The client left mid-head: hyper gets what there was, and the end.
                    this.ready = std::mem::take(&mut this.held);
                    this.eof = true;
                    continue;
                }
                this.held.extend_from_slice(more.filled());
                let step = this.heads.scan(&this.held);
                let pass = match step {
                    Step::Pass(n) => n,
                    Step::Refuse { pass, .. } => pass,
                };
                this.ready.extend(this.held.drain(..pass));
                if let Step::Refuse { refusal, .. } = step {
                    this.held.clear();
                    this.refuse(refusal);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::head_check::Rules;

    /// hyper, reading through [`Checked`], serves exactly the requests Envoy takes, in order, then
    /// the stand-in for the first one Envoy refuses, and nothing after it: 400 random pipelines of
    /// requests (bodies that look like heads included) written in random pieces.
    #[test]
    fn hyper_serves_exactly_the_heads_let_through() {
        use http_body_util::BodyExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let hidden = "GET /#x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (a, b) = hidden.split_at(20);
        // A request, and what hyper should hand the service for it (`None`: Envoy refuses it).
        let pieces: Vec<(String, Option<(&str, String)>)> = vec![
            ("GET /a HTTP/1.1\r\nHost: x\r\n\r\n".into(), Some(("/a", String::new()))),
            (format!("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{hidden}", hidden.len()), Some(("/b", hidden.into()))),
            (
                format!("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x};e=1\r\n{a}\r\n{:X}\r\n{b}\r\n0\r\nT: 1\r\n\r\n", a.len(), b.len()),
                Some(("/c", hidden.into())),
            ),
            ("\r\nGET /d HTTP/1.1\nHost: x\n\n".into(), Some(("/d", String::new()))),
            ("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".into(), Some(("/e", String::new()))),
            ("POST /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n".into(), Some(("/f", "0123456789".into()))),
            (hidden.into(), None),
            ("GET /g#x HTTP/1.1\r\nHost: x\r\n\r\n".into(), None),
            ("HELLO\r\n\r\n".into(), None),
            ("POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz".into(), None),
        ];
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for round in 0..400 {
            let chosen: Vec<usize> = (0..1 + next() % 4).map(|_| (next() % pieces.len() as u64) as usize).collect();
            let stream: Vec<u8> = chosen.iter().flat_map(|&i| pieces[i].0.bytes()).collect();
            let mut expected: Vec<(String, String)> = Vec::new();
            for &i in &chosen {
                match &pieces[i].1 {
                    Some((path, body)) => expected.push((path.to_string(), body.clone())),
                    None => {
                        expected.push(("stand-in".into(), String::new()));
                        break;
                    }
                }
            }
            let cuts: Vec<usize> = (0..next() % 6).map(|_| (next() as usize) % stream.len()).collect();
            let served = rt.block_on(async {
                let (client, server) = tokio::io::duplex(1 << 20);
                let (read, write) = tokio::io::split(server);
                let verdict = Verdict::default();
                let io = tokio::io::join(
                    Checked::new(read, Heads::new(Rules::defaults(60 * 1024, 63 * 1024)), verdict.clone()),
                    write,
                );
                let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
                let log = seen.clone();
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (log, verdict) = (log.clone(), verdict.clone());
                    async move {
                        let stand_in = req.headers().contains_key(STAND_IN_HEADER);
                        let path = if stand_in { "stand-in".to_string() } else { req.uri().to_string() };
                        assert_eq!(stand_in, verdict.borrow().is_some() && stand_in, "a stand-in without a refusal");
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        log.borrow_mut().push((path, String::from_utf8_lossy(&body).into_owned()));
                        let mut answer = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                        if stand_in {
                            answer.headers_mut().insert("connection", hyper::header::HeaderValue::from_static("close"));
                        }
                        Ok::<_, std::convert::Infallible>(answer)
                    }
                });
                // Half-close on, so that the client's end after its last request does not cut off
                // the answers (the checks do not depend on it).
                let conn = hyper::server::conn::http1::Builder::new()
                    .half_close(true)
                    .max_buf_size(63 * 1024)
                    .serve_connection(hyper_util::rt::TokioIo::new(io), service);
                let talk = async move {
                    let (mut rx, mut tx) = tokio::io::split(client);
                    let mut at = 0;
                    let mut cuts = cuts.clone();
                    cuts.sort_unstable();
                    for cut in cuts.into_iter().chain([stream.len()]) {
                        // After a refusal the server may be gone before the rest is written.
                        if cut > at {
                            if tx.write_all(&stream[at..cut]).await.is_err() {
                                break;
                            }
                            tokio::task::yield_now().await;
                            at = cut;
                        }
                    }
                    let _ = tx.shutdown().await;
                    let mut sink = Vec::new();
                    let _ = rx.read_to_end(&mut sink).await;
                };
                let both = async { tokio::join!(conn, talk) };
                let (_conn_result, ()) =
                    tokio::time::timeout(std::time::Duration::from_secs(5), both).await.expect("the connection ended");
                seen.take()
            });
            assert_eq!(
                served,
                expected,
                "round {round}: {:?}",
                String::from_utf8_lossy(&chosen.iter().flat_map(|&i| pieces[i].0.bytes()).collect::<Vec<u8>>())
            );
        }
    }
}
