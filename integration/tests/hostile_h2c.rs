//! An HTTP/2 client (prior knowledge, cleartext) whose connection preface is wrong, in Envoy 1.40 and
//! in `sluice serve` on the same config: the GOAWAY each sends, and the connections each counts as
//! protocol errors. Deliberate differences are pinned at the end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sluice_integration::h2_frames::{frame, frames, MAGIC};
use sluice_integration::sluice::SluiceServe;
use sluice_integration::{Envoy, EnvoyConfig};

const PROTOCOL_ERROR: u32 = 1;
const FRAME_SIZE_ERROR: u32 = 6;
const PROTOCOL_ERRORS: &str = "http.ingress.downstream_cx_protocol_error";

fn preface_then(rest: &[u8]) -> Vec<u8> {
    [MAGIC, rest].concat()
}

/// What the server sent on a connection that got `raw` (read until it closes, or 3 s).
fn answer(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The GOAWAY a connection ended with: its error code and debug text.
fn goaway(bytes: &[u8]) -> Option<(u32, String)> {
    frames(bytes).into_iter().find(|(kind, ..)| *kind == 0x7).map(|(_, _, _, p)| {
        let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        (code, String::from_utf8_lossy(&p[8..]).into_owned())
    })
}

fn both() -> (Envoy, SluiceServe) {
    let config = EnvoyConfig::http_without_filter().direct_response(200, "hi");
    (Envoy::start_quiet(&config).unwrap(), SluiceServe::start(&config).unwrap())
}

#[test]
fn a_bad_first_frame_gets_envoys_goaway_and_counts_as_a_protocol_error() {
    let (envoy, sluice) = both();
    let settings = |len: usize| frame(0x4, 0, 0, &vec![0; len]);
    // (what, bytes, GOAWAY code, debug text: compared where Envoy's is also sluice's)
    let cases: Vec<(&str, Vec<u8>, u32, Option<&str>)> = vec![
        (
            "garbage after the magic",
            preface_then(b"this is not a frame\r\n\r\n"),
            PROTOCOL_ERROR,
            Some("SETTINGS expected"),
        ),
        ("a PING first", preface_then(&frame(0x6, 0, 0, b"12345678")), PROTOCOL_ERROR, Some("SETTINGS expected")),
        ("HEADERS first", preface_then(&frame(0x1, 0x5, 1, b"")), PROTOCOL_ERROR, Some("SETTINGS expected")),
        ("a SETTINGS ACK first", preface_then(&frame(0x4, 0x1, 0, b"")), PROTOCOL_ERROR, Some("SETTINGS expected")),
        ("SETTINGS of 5 bytes", preface_then(&settings(5)), FRAME_SIZE_ERROR, Some("")),
        // Envoy adds "too large frame size"; hyper's h2 sends the code alone.
        ("SETTINGS over 16 KiB", preface_then(&settings(16386)), FRAME_SIZE_ERROR, None),
    ];
    for (what, raw, code, debug) in &cases {
        let e = goaway(&answer(envoy.port, raw));
        let s = goaway(&answer(sluice.port, raw));
        let e = e.unwrap_or_else(|| panic!("{what}: Envoy sent no GOAWAY"));
        let s = s.unwrap_or_else(|| panic!("{what}: sluice sent no GOAWAY"));
        assert_eq!(e.0, *code, "{what}: Envoy's GOAWAY {e:?}");
        assert_eq!(s.0, e.0, "{what}: sluice {s:?}, Envoy {e:?}");
        if let Some(debug) = debug {
            assert_eq!((e.1.as_str(), s.1.as_str()), (*debug, *debug), "{what}");
        }
    }
    // A good preface (then the client's own GOAWAY) still gets served: the server's SETTINGS, then
    // the ACK of the client's, and no error.
    let good = answer(sluice.port, &preface_then(&[settings(6), frame(0x7, 0, 0, &[0; 8])].concat()));
    let kinds: Vec<(u8, u8)> = frames(&good).iter().map(|f| (f.0, f.1)).collect();
    assert!(kinds.starts_with(&[(0x4, 0)]) && kinds.contains(&(0x4, 0x1)), "sluice after a good preface: {kinds:?}");
    assert!(goaway(&good).is_none_or(|(code, _)| code == 0), "sluice after a good preface: {kinds:?}");
    // A client that sends the magic alone and waits gets the server's SETTINGS from both (sluice
    // waits half a second for the first frame first).
    for (who, port) in [("Envoy", envoy.port), ("sluice", sluice.port)] {
        let first = frames(&answer(port, MAGIC)).first().map(|f| (f.0, f.1));
        assert_eq!(first, Some((0x4, 0)), "{who} to a client that waits after the magic");
    }
    std::thread::sleep(Duration::from_millis(200));
    let counted =
        (envoy.stat(PROTOCOL_ERRORS), sluice_integration::client::stat(sluice.admin_port, PROTOCOL_ERRORS).unwrap());
    let n = cases.len().to_string();
    assert_eq!(counted, (Some(n.clone()), Some(n)), "{PROTOCOL_ERRORS} (Envoy, sluice)");
}

/// Where sluice answers otherwise than Envoy, on purpose:
/// - A first SETTINGS on a stream other than 0: Envoy closes without a frame; sluice (hyper's h2)
///   sends GOAWAY `PROTOCOL_ERROR`, which tells the client why.
/// - `PRI * HTTP/2` followed by a wrong rest of the magic: Envoy closes without a word; sluice takes
///   the connection for HTTP/1 and answers `400 Bad Request`.
#[test]
fn what_envoy_closes_without_a_word_sluice_explains() {
    let (envoy, sluice) = both();
    let on_stream_1 = preface_then(&frame(0x4, 0, 1, b""));
    assert_eq!(answer(envoy.port, &on_stream_1), b"", "Envoy");
    assert_eq!(goaway(&answer(sluice.port, &on_stream_1)).map(|g| g.0), Some(PROTOCOL_ERROR), "sluice");
    let wrong_magic = [b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n".as_slice(), &frame(0x4, 0, 0, b"")].concat();
    assert_eq!(answer(envoy.port, &wrong_magic), b"", "Envoy");
    let s = String::from_utf8_lossy(&answer(sluice.port, &wrong_magic)).into_owned();
    assert!(s.starts_with("HTTP/1.1 400 Bad Request"), "sluice: {s:?}");
}
