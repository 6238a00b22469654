//! The start of a downstream connection, read before hyper gets it, so that an HTTP/2 client whose
//! first frame is wrong gets Envoy's answer.
//!
//! After the 24-byte connection preface, Envoy's codec wants a SETTINGS frame first: anything else
//! (garbage, a PING, HEADERS, a SETTINGS ACK) gets GOAWAY `PROTOCOL_ERROR` with the debug text
//! `SETTINGS expected`, and a SETTINGS whose length is not a multiple of 6 gets GOAWAY
//! `FRAME_SIZE_ERROR` (RFC 9113 §3.4, §6.5). hyper's h2 reads the length of whatever comes first and
//! answers garbage with `FRAME_SIZE_ERROR`, serves a PING or HEADERS sent before SETTINGS, and calls
//! a bad SETTINGS length `PROTOCOL_ERROR`. Everything else about the connection stays hyper's: the
//! bytes read here are handed back to it first.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The client connection preface (RFC 9113 §3.4).
const MAGIC: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The magic and the header of the first frame: all a verdict needs.
const NEEDED: usize = MAGIC.len() + 9;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;
const PROTOCOL_ERROR: u32 = 0x1;
const FRAME_SIZE_ERROR: u32 = 0x6;
/// How long the first frame's header may take after the magic before hyper takes the connection as
/// it is (and sends the server's SETTINGS, which such a client may be waiting for).
const FIRST_FRAME_WAIT: Duration = Duration::from_millis(500);
/// How long a refused client gets to read the GOAWAY before the socket closes (Envoy's default
/// `delayed_close_timeout`): closing with its unread bytes in our receive buffer would send a RST
/// that can overtake the GOAWAY.
const DELAYED_CLOSE: Duration = Duration::from_secs(1);

/// What the first bytes of a connection say.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Not an HTTP/2 preface (HTTP/1), or a good one: hyper takes it from here.
    Serve,
    /// A prefix of the preface: more bytes are needed to tell.
    NeedMore,
    /// A preface whose first frame Envoy refuses: the GOAWAY error code and debug text.
    Refuse(u32, &'static [u8]),
}

fn verdict(head: &[u8]) -> Verdict {
    let n = head.len().min(MAGIC.len());
    if head[..n] != MAGIC[..n] {
        return Verdict::Serve;
    }
    if head.len() < NEEDED {
        return Verdict::NeedMore;
    }
    let frame = &head[MAGIC.len()..NEEDED];
    let length = u32::from_be_bytes([0, frame[0], frame[1], frame[2]]);
    let (kind, flags) = (frame[3], frame[4]);
    if kind != SETTINGS || flags & ACK != 0 {
        Verdict::Refuse(PROTOCOL_ERROR, b"SETTINGS expected")
    } else if !length.is_multiple_of(6) {
        Verdict::Refuse(FRAME_SIZE_ERROR, b"")
    } else {
        Verdict::Serve
    }
}

/// Whether the bytes [`read_start`] returned begin an HTTP/2 connection.
pub(crate) fn is_http2(start: &[u8]) -> bool {
    start.starts_with(MAGIC)
}

/// Reads the start of `conn` until it is clearly not HTTP/2, or until the first frame's header is
/// in. Returns the bytes read, to be served before the rest of `conn`, or `None` when the client
/// was refused (its GOAWAY is written and the connection is done).
///
/// An HTTP/1 request costs no wait: its first byte or two tell it apart from the magic.
pub(crate) async fn read_start<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut S) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(4096);
    loop {
        match verdict(&head) {
            Verdict::Serve => return Ok(Some(head)),
            Verdict::NeedMore if head.len() >= MAGIC.len() => {
                // The magic is in; a client should send its SETTINGS with it (RFC 9113 §3.4). One
                // that waits for the server's first gets hyper, which sends them, after a moment.
                match tokio::time::timeout(FIRST_FRAME_WAIT, conn.read_buf(&mut head)).await {
                    Ok(Ok(0)) | Err(_) => return Ok(Some(head)),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                }
            }
            Verdict::NeedMore => {
                if conn.read_buf(&mut head).await? == 0 {
                    // The client left: hyper sees the same end.
                    return Ok(Some(head));
                }
            }
            Verdict::Refuse(code, debug) => {
                refuse(conn, code, debug).await;
                return Ok(None);
            }
        }
    }
}

/// Sends the server preface (an empty SETTINGS) and GOAWAY `code`, then lets the client read them.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut S, code: u32, debug: &[u8]) {
    let mut out = Vec::with_capacity(9 + 9 + 8 + debug.len());
    out.extend_from_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
    let length = (8 + debug.len()) as u32;
    out.extend_from_slice(&length.to_be_bytes()[1..]);
    out.extend_from_slice(&[GOAWAY, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&0u32.to_be_bytes()); // last stream id: none was processed
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(debug);
    if conn.write_all(&out).await.is_err() || conn.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ =
        tokio::time::timeout(DELAYED_CLOSE, async { while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {} })
            .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(length: u32, kind: u8, flags: u8) -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&length.to_be_bytes()[1..]);
        f.extend_from_slice(&[kind, flags, 0, 0, 0, 0]);
        f
    }

    #[test]
    fn http1_is_told_apart_at_once() {
        assert_eq!(verdict(b"G"), Verdict::Serve);
        assert_eq!(verdict(b"POST / HTTP/1.1\r\n"), Verdict::Serve);
        assert_eq!(verdict(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), Verdict::Serve);
    }

    #[test]
    fn a_preface_waits_for_the_first_frame_header() {
        assert_eq!(verdict(b""), Verdict::NeedMore);
        assert_eq!(verdict(b"PRI * HTTP/2"), Verdict::NeedMore);
        assert_eq!(verdict(&frame(0, SETTINGS, 0)[..32]), Verdict::NeedMore);
    }

    #[test]
    fn the_first_frame_must_be_a_settings_of_whole_entries() {
        assert_eq!(verdict(&frame(0, SETTINGS, 0)), Verdict::Serve);
        assert_eq!(verdict(&frame(18, SETTINGS, 0)), Verdict::Serve);
        let expected = Verdict::Refuse(PROTOCOL_ERROR, b"SETTINGS expected");
        assert_eq!(verdict(&frame(8, 0x6, 0)), expected);
        assert_eq!(verdict(&frame(0, SETTINGS, ACK)), expected);
        assert_eq!(verdict(&frame(5, SETTINGS, 0)), Verdict::Refuse(FRAME_SIZE_ERROR, b""));
    }
}
