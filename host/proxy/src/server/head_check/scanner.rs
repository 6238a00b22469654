//! The request heads of one HTTP/1 connection, checked as they arrive: a sans-IO scanner over the
//! connection's bytes that says how many may go on to hyper and where a refused head begins.

use super::framing::{chunk_step, Chunked, Framing};
use super::refusal::Refusal;
use super::rules::{check, parse_refusal, Rules};
use sluice_core::stream::HeaderMap;

/// Header slots kept on the stack: Envoy's default `max_headers_count` (and hyper's).
const STACK_HEADERS: usize = 100;

/// What became of the bytes given to [`Heads::scan`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The first `n` bytes may go to hyper; the rest begin a head not yet complete, to be given
    /// again with the bytes that follow.
    Pass(usize),
    /// The first `pass` bytes may go to hyper (earlier requests); the head after them is refused.
    Refuse { pass: usize, refusal: Refusal },
}

/// The request heads of one HTTP/1 connection, checked as they arrive (the sans-IO core of the reader
/// that puts it in front of hyper).
#[derive(Debug)]
pub struct Heads {
    framing: Framing,
    rules: Rules,
    /// Heads passed so far (the tests read it: hyper serves as many).
    passed: u64,
    /// How much of the pending head is known to have no end yet.
    looked: usize,
    /// The refused request as the connection manager read it, for a refusal of its own, and
    /// whether it was HTTP/1.0.
    pub(super) refused_request: Option<(HeaderMap, bool)>,
}

impl Heads {
    /// Checks by a listener's `rules`.
    pub fn new(rules: Rules) -> Self {
        Self { framing: Framing::Head, rules, passed: 0, looked: 0, refused_request: None }
    }

    /// No checks: an HTTP/2 connection, whose requests hyper's h2 reads whole.
    pub fn unchecked() -> Self {
        let rules = Rules {
            limit: 0,
            most: 0,
            max_headers: 0,
            accept_http_10: false,
            default_host_for_http_10: false,
            allow_chunked_length: false,
        };
        Self { framing: Framing::Off, rules, passed: 0, looked: 0, refused_request: None }
    }

    /// How many heads have been passed on (the number of the next request).
    pub fn passed(&self) -> u64 {
        self.passed
    }

    /// Looks at the bytes after everything passed so far.
    pub fn scan(&mut self, data: &[u8]) -> Step {
        let mut at = 0;
        loop {
            match self.framing {
                Framing::Off => return Step::Pass(data.len()),
                Framing::Length(left) => {
                    let take = left.min((data.len() - at) as u64);
                    at += take as usize;
                    self.framing = if take == left { Framing::Head } else { Framing::Length(left - take) };
                    if at == data.len() {
                        return Step::Pass(at);
                    }
                }
                Framing::Chunked(mut state) => {
                    let mut done = false;
                    while at < data.len() && !done {
                        if let Chunked::Body(left) = state {
                            let take = left.min((data.len() - at) as u64);
                            at += take as usize;
                            state = if take == left { Chunked::BodyCr } else { Chunked::Body(left - take) };
                            continue;
                        }
                        match chunk_step(state, data[at]) {
                            Ok(Some(next)) => state = next,
                            Ok(None) => done = true,
                            Err(()) => {
                                // hyper fails the body here and the connection ends.
                                self.framing = Framing::Off;
                                return Step::Pass(data.len());
                            }
                        }
                        at += 1;
                    }
                    if !done {
                        self.framing = Framing::Chunked(state);
                        return Step::Pass(at);
                    }
                    self.framing = Framing::Head;
                }
                Framing::Head => {
                    let rest = &data[at..];
                    if rest.is_empty() {
                        return Step::Pass(at);
                    }
                    match self.head(rest) {
                        None if rest.len() > self.rules.most => {
                            return Step::Refuse { pass: at, refusal: Refusal::HeadersTooLarge };
                        }
                        None => return Step::Pass(at),
                        Some(Err(refusal)) => return Step::Refuse { pass: at, refusal },
                        Some(Ok((len, next))) => {
                            at += len;
                            self.passed += 1;
                            self.looked = 0;
                            self.framing = next;
                        }
                    }
                }
            }
        }
    }

    /// The head at the start of `data`: `None` while it has not ended, else its length and the
    /// framing of what follows, or Envoy's refusal.
    fn head(&mut self, data: &[u8]) -> Option<Result<(usize, Framing), Refusal>> {
        // A head ends with a line feed: without a new one there is nothing new to parse (a client
        // that sends a byte at a time costs one scan for the byte, not one parse of the head).
        let fresh = &data[self.looked.min(data.len())..];
        if !fresh.contains(&b'\n') {
            self.looked = data.len();
            return None;
        }
        let (mut stack, mut heap);
        let slots: &mut [httparse::Header<'_>] = if self.rules.max_headers <= STACK_HEADERS {
            stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
            &mut stack[..self.rules.max_headers]
        } else {
            heap = vec![httparse::EMPTY_HEADER; self.rules.max_headers];
            &mut heap
        };
        let mut req = httparse::Request::new(slots);
        let verdict = match req.parse(data) {
            Ok(httparse::Status::Complete(len)) => {
                let checked = check(&req, &self.rules);
                if let Err(refusal) = checked {
                    // The connection manager's refusals are of a request it read: its access log
                    // shows the request, and it answers in the request's version.
                    self.refused_request =
                        (!refusal.is_protocol_error()).then(|| (request_headers(&req), req.version == Some(0)));
                }
                Some(checked.map(|next| (len, next)))
            }
            Ok(httparse::Status::Partial) => None,
            // Envoy reads the whole head before it judges it: a bad byte early in a head that
            // grows past the limit is still a 431.
            Err(e) => ended(data).then(|| Err(parse_refusal(e, data))),
        };
        if verdict.is_none() {
            self.looked = data.len();
        }
        verdict
    }
}

/// A parsed head as the connection manager's request headers.
fn request_headers(req: &httparse::Request<'_, '_>) -> HeaderMap {
    let mut h =
        HeaderMap::from_pairs([(":method", req.method.unwrap_or_default()), (":path", req.path.unwrap_or_default())]);
    for header in req.headers.iter() {
        if header.name.eq_ignore_ascii_case("host") {
            h.add(":authority", header.value);
        } else {
            h.add(header.name, header.value);
        }
    }
    h
}

/// Whether `data` holds the end of a head (an empty line after the first line), whatever the
/// bytes before it.
fn ended(data: &[u8]) -> bool {
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(data.len());
    let data = &data[start..];
    data.windows(2).any(|w| w == b"\n\n") || data.windows(3).any(|w| w == b"\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads() -> Heads {
        Heads::new(Rules::defaults(60 * 1024, 63 * 1024))
    }

    /// Scans `stream` in pieces of `piece` bytes, holding back what the checks hold, as
    /// [`Checked`] does: the heads passed, and the refusal if any.
    fn run(stream: &[u8], piece: usize) -> (u64, Option<Refusal>) {
        let mut h = heads();
        let mut held = Vec::new();
        for part in stream.chunks(piece) {
            held.extend_from_slice(part);
            match h.scan(&held) {
                Step::Pass(n) => {
                    held.drain(..n);
                }
                Step::Refuse { refusal, .. } => return (h.passed(), Some(refusal)),
            }
        }
        (h.passed(), None)
    }

    fn verdict(stream: &[u8]) -> Option<Refusal> {
        let whole = run(stream, stream.len());
        for piece in [1, 2, 7] {
            assert_eq!(run(stream, piece), whole, "in pieces of {piece}: {:?}", String::from_utf8_lossy(stream));
        }
        whole.1
    }

    #[test]
    fn well_formed_requests_pass_whatever_the_pieces() {
        let stream = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
            POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
            \r\nGET /d HTTP/1.1\nHost: x\n\n";
        assert_eq!(verdict(stream), None);
        assert_eq!(run(stream, 3).0, 4);
        let taken: &[&[u8]] = &[
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"PURGE http://[::1]:8080/a HTTP/1.1\r\n\r\n",
            b"GET https://u@x:65535/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"QUERY / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\r\n",
            b"GET /a?x=%23 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\n\r\nabc",
        ];
        for raw in taken {
            assert_eq!(verdict(raw), None, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_a_body() {
        let smuggled = b"GET /x#y HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut stream =
            format!("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", smuggled.len()).into_bytes();
        stream.extend_from_slice(smuggled);
        assert_eq!(verdict(&stream), None);
        let chunked = format!(
            "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            smuggled.len(),
            String::from_utf8_lossy(smuggled)
        );
        assert_eq!(verdict(chunked.as_bytes()), None);
    }

    #[test]
    fn envoys_refusals_in_envoys_order() {
        let cases: &[(&[u8], Refusal)] = &[
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::ContentLengthAndChunked),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n", Refusal::ContentLengthAndChunked),
            (b"POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::ContentLengthAndChunked),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Refusal::InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::InvalidTransferEncoding),
            (b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", Refusal::InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Refusal::CodecError),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Refusal::CodecError),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n", Refusal::CodecError),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", Refusal::CodecError),
            (b"HELLO\r\n\r\n", Refusal::CodecError),
            (b"GET / HTTP/1.1\r\nBad Name: y\r\n\r\n", Refusal::CodecError),
            (b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", Refusal::InvalidCharacters),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", Refusal::LowVersion),
            (b"GET /\r\n\r\n", Refusal::LowVersion),
            (b"GET / HTTP/1.0\r\n\r\n", Refusal::LowVersion),
            (b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::LowVersion),
            (b"GET / HTTP/1.1\r\nHost: x#y\r\n\r\n", Refusal::InvalidAuthority),
            (b"GET / HTTP/1.1\r\n\r\n", Refusal::MissingHost),
            (b"GET /a#x HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::Fragment),
            (b"GET http://x/a#x HTTP/1.1\r\n\r\n", Refusal::Fragment),
            (b"GET /a#b HTTP/1.0\r\nHost: x\r\n\r\n", Refusal::LowVersion),
            (b"GET HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", Refusal::CodecError),
            (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"M-SEARCH / HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"QUERY / HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::QueryWithoutContentType),
            (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::InvalidUrl),
            (b"GET x/y HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::CodecError),
            (b"GET http://x:99999/ HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::InvalidUrl),
            (b"GET http://x:/ HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::InvalidUrl),
            (b"GET ftp://x/a HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::InvalidScheme),
        ];
        for (raw, refusal) in cases {
            assert_eq!(verdict(raw), Some(*refusal), "{:?}", String::from_utf8_lossy(raw));
        }
        let many: String = (0..101).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            verdict(format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes()),
            Some(Refusal::TooManyHeaders)
        );
    }

    #[test]
    fn http_protocol_options_loosen_what_envoy_loosens() {
        let rules = Rules {
            accept_http_10: true,
            allow_chunked_length: true,
            max_headers: 150,
            ..Rules::defaults(60 * 1024, 63 * 1024)
        };
        let judge = |raw: &[u8]| match Heads::new(rules).scan(raw) {
            Step::Pass(n) => {
                assert_eq!(n, raw.len(), "{:?}", String::from_utf8_lossy(raw));
                None
            }
            Step::Refuse { refusal, .. } => Some(refusal),
        };
        assert_eq!(judge(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"), None);
        assert_eq!(judge(b"GET / HTTP/1.0\r\n\r\n"), Some(Refusal::MissingHost));
        let with_default = Rules { default_host_for_http_10: true, ..rules };
        assert_eq!(Heads::new(with_default).scan(b"GET / HTTP/1.0\r\n\r\n"), Step::Pass(18));
        assert_eq!(
            judge(b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Some(Refusal::CodecError)
        );
        // The length gives way to chunked: the body is framed as chunked.
        assert_eq!(
            judge(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            None
        );
        assert_eq!(
            judge(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Some(Refusal::CodecError)
        );
        let headers = |n: usize| format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "X-A: b\r\n".repeat(n)).into_bytes();
        assert_eq!(judge(&headers(120)), None);
        assert_eq!(judge(&headers(150)), Some(Refusal::TooManyHeaders));
    }

    #[test]
    fn size_comes_first_and_an_unended_head_is_too_large_at_the_most() {
        let big = "a".repeat(61 * 1024);
        let over = format!("GET /#x HTTP/1.0\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\nX: {big}\r\n\r\n");
        assert_eq!(verdict(over.as_bytes()), Some(Refusal::HeadersTooLarge));
        let under = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(59 * 1024));
        assert_eq!(verdict(under.as_bytes()), None);
        // A bad name early does not matter when the head never ends within the limit.
        let unended = format!("GET / HTTP/1.1\r\nBad Name: y\r\nX: {}", "a".repeat(70 * 1024));
        assert_eq!(run(unended.as_bytes(), 4096), (0, Some(Refusal::HeadersTooLarge)));
    }

    #[test]
    fn the_request_after_a_refusal_is_never_read() {
        let stream =
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b#x HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut h = heads();
        let first = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".len();
        assert_eq!(h.scan(stream), Step::Refuse { pass: first, refusal: Refusal::Fragment });
        assert_eq!(h.passed(), 1, "the refused head is the second request");
    }

    #[test]
    fn after_an_upgrade_or_a_failed_body_nothing_is_checked() {
        let upgrade =
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nGET /#x HTTP/1.1\r\n\r\n";
        assert_eq!(verdict(upgrade), None);
        let bad_chunk =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /#x HTTP/1.1\r\n\r\n";
        assert_eq!(verdict(bad_chunk), None);
    }
}
