//! Where a connection is between request heads: before a head, inside a body framed by its
//! length or by chunks (hyper's chunked decoder, state for state), or past where the checks can
//! follow.

/// hyper's limits on chunk extensions and trailers: past them it fails the body.
const CHUNK_EXTENSIONS_LIMIT: u64 = 16 * 1024;
const TRAILERS_LIMIT: usize = 16 * 1024;

/// Where the stream is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// At a request head (or inside one not yet complete).
    Head,
    /// Inside a `Content-Length` body: this many bytes to go.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunked),
    /// After a request that may take the connection over (an upgrade, `CONNECT`), or a body hyper
    /// fails: no more checks on this connection.
    Off,
}

/// hyper's chunked decoder's states, with what each carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64, u64),
    SizeLf(u64),
    Body(u64),
    BodyCr,
    BodyLf,
    Trailer(usize),
    TrailerLf(usize),
    EndCr(usize),
    EndLf,
}

/// One step of a chunked body: the next state, `None` at the body's end, or `Err` where hyper
/// fails the body.
pub(super) fn chunk_step(state: Chunked, b: u8) -> Result<Option<Chunked>, ()> {
    use Chunked::*;
    let hex = |b: u8| (b as char).to_digit(16).map(u64::from);
    let grow = |size: u64, d: u64| size.checked_mul(16).and_then(|s| s.checked_add(d)).ok_or(());
    Ok(Some(match state {
        Start => Size(grow(0, hex(b).ok_or(())?)?),
        Size(size) => match b {
            b'\t' | b' ' => SizeLws(size),
            b';' => Extension(size, 0),
            b'\r' => SizeLf(size),
            _ => Size(grow(size, hex(b).ok_or(())?)?),
        },
        SizeLws(size) => match b {
            b'\t' | b' ' => SizeLws(size),
            b';' => Extension(size, 0),
            b'\r' => SizeLf(size),
            _ => return Err(()),
        },
        Extension(size, n) => match b {
            b'\r' => SizeLf(size),
            b'\n' => return Err(()),
            _ if n + 1 >= CHUNK_EXTENSIONS_LIMIT => return Err(()),
            _ => Extension(size, n + 1),
        },
        SizeLf(0) if b == b'\n' => EndCr(0),
        SizeLf(size) if b == b'\n' => Body(size),
        Body(_) => unreachable!("a body's bytes are skipped in bulk"),
        BodyCr if b == b'\r' => BodyLf,
        BodyLf if b == b'\n' => Start,
        EndCr(_) if b == b'\r' => EndLf,
        EndCr(n) => Trailer(n + 1),
        Trailer(n) if n >= TRAILERS_LIMIT => return Err(()),
        Trailer(n) if b == b'\r' => TrailerLf(n + 1),
        Trailer(n) => Trailer(n + 1),
        TrailerLf(n) if b == b'\n' => EndCr(n + 1),
        EndLf if b == b'\n' => return Ok(None),
        _ => return Err(()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_framed_as_hyper_frames_it() {
        let ok: &[&[u8]] =
            &[b"0\r\n\r\n", b"5 \t;a=b\r\nhello\r\n0\r\n\r\n", b"A\r\n0123456789\r\n0\r\nT: 1\r\nU: 2\r\n\r\n"];
        for body in ok {
            let mut c = Chunked::Start;
            let mut ended = false;
            let mut i = 0;
            while i < body.len() {
                if let Chunked::Body(n) = c {
                    i += n as usize;
                    c = Chunked::BodyCr;
                    continue;
                }
                match chunk_step(c, body[i]) {
                    Ok(Some(next)) => c = next,
                    Ok(None) => {
                        ended = i == body.len() - 1;
                        break;
                    }
                    Err(()) => panic!("{:?} failed at {i}", String::from_utf8_lossy(body)),
                }
                i += 1;
            }
            assert!(ended, "{:?}", String::from_utf8_lossy(body));
        }
        for bad in [&b"x\r\n"[..], b"5 5\r\n", b"5\n", b"5;a\nb\r\n", b"1\r\nab"] {
            let mut c = Chunked::Start;
            let failed = bad.iter().try_for_each(|&b| match c {
                Chunked::Body(_) => {
                    c = Chunked::BodyCr;
                    Ok(())
                }
                _ => chunk_step(c, b).map(|n| c = n.unwrap_or(Chunked::Start)),
            });
            assert!(failed.is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
