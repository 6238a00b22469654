//! Chains of filters, as Envoy's filter manager runs them: every ordering of a few reference
//! filters (each written with the official `proxy-wasm` crate), in the real Envoy, in `sluice
//! serve` and in the harness, on requests that make each filter act (edit headers, rewrite the
//! body, answer locally at the request or at the response, call out and wait). What the client
//! gets must be the same in all three.

use sluice_integration::compare::{harness_answer, harness_like};
use sluice_integration::envoy::WasmFilter;
use sluice_integration::sluice::SluiceServe;
use sluice_integration::{client::send, reference, Case, Envoy, EnvoyConfig, Observed, Upstream};

/// The filters a chain is made of: headers edits, a body rewriter, local replies (at the
/// request's headers for `/deny`, at the response's for an upstream 500), an auth callout.
fn filters() -> Vec<WasmFilter> {
    ["headers", "body", "local-reply", "callout"]
        .iter()
        .map(|name| {
            let config = if *name == "callout" { "upstream 2000" } else { "" };
            reference(name, config)
        })
        .collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case::get("/h").header("x-echo-in", "hi").header("x-user", "alice"),
        Case::post("/echo", "hello there").header("x-user", "alice"),
        Case::get("/deny").header("x-user", "alice"),
        Case::get("/status/500").header("x-user", "alice"),
        Case::get("/in").header("x-user", "bob"),
    ]
}

/// Runs every case through `chain` in Envoy, `sluice serve` and the harness; the first
/// disagreement, described.
fn disagreement(chain: &[WasmFilter]) -> Option<String> {
    let upstream = Upstream::start().unwrap();
    let mut config = EnvoyConfig::http(chain[0].clone());
    for f in &chain[1..] {
        config = config.and_filter(f.clone());
    }
    let config = config.cluster("upstream", upstream.port);
    let envoy = Envoy::start(&config).unwrap();
    let sluice = SluiceServe::start(&config).unwrap_or_else(|e| panic!("{e:#}"));
    let mut harness = harness_like(&config, &[]).build().unwrap();
    let names: Vec<&str> = chain.iter().map(|f| f.name.as_str()).collect();
    for case in cases() {
        let ask = |port| {
            let raw = send(port, case.method, case.path, &case.headers, case.body.as_bytes()).unwrap();
            Observed::from(&raw)
        };
        let (e, s) = (ask(envoy.port), ask(sluice.port));
        let h = harness_answer(&mut harness, &case).unwrap_or_else(|e| panic!("{names:?} {}: {e}", case.path));
        if e != s || e != h {
            return Some(format!(
                "chain {names:?}, {} {}:\n--- envoy ---\n{e}\n--- sluice serve ---\n{s}\n--- harness ---\n{h}",
                case.method, case.path
            ));
        }
    }
    None
}

#[test]
fn every_ordering_of_two_filters_answers_alike() {
    let all = filters();
    let mut failures = Vec::new();
    for a in &all {
        for b in &all {
            if a.name != b.name {
                failures.extend(disagreement(&[a.clone(), b.clone()]));
            }
        }
    }
    assert!(failures.is_empty(), "{} of 12 chains disagree:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn chains_of_three_answer_alike() {
    let all = filters();
    let [headers, body, reply, callout] = [&all[0], &all[1], &all[2], &all[3]];
    let chains = [
        [headers.clone(), body.clone(), reply.clone()],
        [callout.clone(), reply.clone(), body.clone()],
        [reply.clone(), callout.clone(), headers.clone()],
        [body.clone(), headers.clone(), callout.clone()],
    ];
    let failures: Vec<String> = chains.iter().filter_map(|c| disagreement(c)).collect();
    assert!(failures.is_empty(), "{} of {} chains disagree:\n{}", failures.len(), chains.len(), failures.join("\n\n"));
}

/// A lifecycle logger tagged `tag` (see `reference-filters/lifecycle`).
fn logger(tag: &str) -> WasmFilter {
    let mut f = reference("lifecycle", tag);
    f.name = format!("lifecycle_{tag}");
    f
}

/// The lines the chain's loggers wrote, in order (`A: request headers …`).
fn callbacks(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let at = l.find("wasm log")?;
            let (_, msg) = l[at..].split_once(": ")?;
            (msg.starts_with("A: ") || msg.starts_with("B: ")).then(|| msg.to_string())
        })
        .collect()
}

/// `line` with the header count of a response's headers masked.
fn mask_response_headers(line: &str) -> String {
    match line.split_once(": response headers n=") {
        Some((tag, rest)) => format!("{tag}: response headers n=# {}", rest.split_once(' ').map_or("", |(_, r)| r)),
        None => line.to_string(),
    }
}

/// The chain's callback lines in a proxy's log, once `ready` holds of them (the log is read again
/// as it grows; after 10 s, as they are).
fn lines_when(log: impl Fn() -> String, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let lines = callbacks(&log());
        if ready(&lines) || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The lines once a proxy's log shows `n` streams finished by the first filter, and every context
/// the second created done too.
fn settled(log: impl Fn() -> String, n: usize) -> Vec<String> {
    lines_when(log, |lines| {
        let count = |s: &str| lines.iter().filter(|l| *l == s).count();
        count("A: done") >= n && count("B: done") >= count("B: create")
    })
}

/// Two lifecycle loggers, `A` then `B`: the callbacks each gets, in order, and their arguments,
/// when the stream passes both, when either answers at the request or at the response, when
/// either resets it, when one buffers a body, and with trailers — the same in Envoy, `sluice
/// serve` and the harness.
#[test]
fn callbacks_reach_each_filter_of_a_chain_alike() {
    let upstream = Upstream::start().unwrap();
    let config = EnvoyConfig::http(logger("A")).and_filter(logger("B")).cluster("upstream", upstream.port);
    let envoy = Envoy::start_with_workers(&config, 1).unwrap();
    let sluice = SluiceServe::start(&config).unwrap_or_else(|e| panic!("{e:#}"));
    let mut harness = harness_like(&config, &[]).build().unwrap();
    let cases = [
        Case::get("/"),
        Case::post("/echo", "hello"),
        Case::get("/").header("x-reply", "A"),
        Case::get("/").header("x-reply", "B"),
        Case::get("/").header("x-reply-response", "A"),
        Case::get("/").header("x-reply-response", "B"),
        Case::post("/echo", "held").header("x-buffer", "A"),
        Case::post("/echo", "held").header("x-buffer", "B"),
    ];
    for (n, case) in cases.iter().enumerate() {
        let ask = |port| {
            let raw = send(port, case.method, case.path, &case.headers, case.body.as_bytes()).unwrap();
            Observed::from(&raw)
        };
        let (e, s) = (ask(envoy.port), ask(sluice.port));
        let h = harness_answer(&mut harness, case).unwrap();
        assert_eq!(e, s, "{case:?}: Envoy and sluice serve answer differently");
        assert_eq!(e, h, "{case:?}: Envoy and the harness answer differently");
        let e = settled(|| envoy.log(), n + 1);
        let s = settled(|| sluice.log(), n + 1);
        let h: Vec<String> = harness
            .logs()
            .into_iter()
            .map(|r| r.message)
            .filter(|m| m.starts_with("A: ") || m.starts_with("B: "))
            .collect();
        // The harness's upstream is not the test upstream: its responses carry fewer headers and
        // frame their bodies with a content-length (the test upstream's come chunked, their end
        // in a frame of its own), so those two facts are left out of that comparison.
        let upstream_headers = |lines: &[String]| -> Vec<String> {
            lines.iter().filter(|l| !l.contains(": response body ")).map(|l| mask_response_headers(l)).collect()
        };
        let (e_masked, h) = (upstream_headers(&e), upstream_headers(&h));
        assert_eq!(
            e,
            s,
            "after {case:?}: the callbacks differ between Envoy (left) and sluice serve (right)\n{}",
            envoy.log()
        );
        assert_eq!(e_masked, h, "after {case:?}: the callbacks differ between Envoy (left) and the harness (right)");
    }
}

/// A client that goes away mid-request, while the first filter holds the body: every filter's
/// `on_log` and `on_done` still run, in Envoy, in `sluice serve` and in the harness.
#[test]
fn a_stream_the_client_abandons_still_ends_in_every_filter() {
    use std::io::Write;
    let upstream = Upstream::start().unwrap();
    let config = EnvoyConfig::http(logger("A")).and_filter(logger("B")).cluster("upstream", upstream.port);
    let envoy = Envoy::start_with_workers(&config, 1).unwrap();
    let sluice = SluiceServe::start(&config).unwrap_or_else(|e| panic!("{e:#}"));
    let abandon = |port: u16, log: &dyn Fn() -> String| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\nx-buffer: A\r\n\r\nabc";
        s.write_all(head.as_bytes()).unwrap();
        s.flush().unwrap();
        // The client goes once the first filter has the first bytes (its log says so).
        lines_when(log, |lines| lines.iter().any(|l| l.starts_with("A: request body")));
    };
    abandon(envoy.port, &|| envoy.log());
    abandon(sluice.port, &|| sluice.log());
    let (e, s) = (settled(|| envoy.log(), 1), settled(|| sluice.log(), 1));
    assert!(e.contains(&"A: done".to_string()), "Envoy ends the stream in every filter: {e:?}");
    assert_eq!(e, s, "the callbacks differ between Envoy (left) and sluice serve (right)");
    let mut harness = harness_like(&config, &[]).build().unwrap();
    let mut st = harness.http_stream();
    let id = st.id();
    let headers =
        [(":method", "POST"), (":path", "/echo"), (":authority", "x"), ("content-length", "10"), ("x-buffer", "A")];
    st.request_headers(headers, false).unwrap();
    st.request_body("abc", false).unwrap();
    harness.close_http_stream(id);
    let h: Vec<String> = harness.logs().into_iter().map(|r| r.message).filter(|m| m.contains(": ")).collect();
    let without_counts = |lines: &[String]| -> Vec<String> {
        lines.iter().map(|l| l.split(" n=").next().unwrap_or(l).to_string()).collect()
    };
    assert_eq!(without_counts(&e), without_counts(&h), "Envoy (left) and the harness (right)");
}

/// A network-filter lifecycle logger tagged `tag` (see `reference-filters/tcp-lifecycle`).
fn tcp_logger(tag: &str) -> WasmFilter {
    let mut f = reference("tcp-lifecycle", tag);
    f.name = format!("tcp_lifecycle_{tag}");
    f
}

/// Two network-filter loggers, `A` then `B`, in front of an echo server: the callbacks each
/// gets, in order, for a connection that passes both, and for one that either closes — the same
/// in Envoy and in `sluice serve`.
#[test]
fn network_callbacks_reach_each_filter_of_a_chain_alike() {
    use std::io::{Read, Write};
    let upstream = Upstream::start_tcp_echo().unwrap();
    let config = EnvoyConfig::tcp(tcp_logger("A")).and_filter(tcp_logger("B")).cluster("upstream", upstream.port);
    let envoy = Envoy::start_with_workers(&config, 1).unwrap();
    let sluice = SluiceServe::start(&config).unwrap_or_else(|e| panic!("{e:#}"));
    let talk = |port: u16, data: &[u8]| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        s.write_all(data).unwrap();
        // The echo comes back before the client ends its side, so that both ends' order is fixed.
        let mut back = vec![0u8; data.len()];
        let echoed = s.read_exact(&mut back).is_ok();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        if echoed {
            back.extend(rest);
            back
        } else {
            rest
        }
    };
    // The same conversation driven through the harness's chain, step by step.
    let mut harness = harness_like(&config, &[]).build().unwrap();
    let converse = |harness: &mut sluice_host::harness::Harness, data: &[u8]| {
        let mut c = harness.tcp_stream().unwrap();
        c.downstream_data(data, false).unwrap();
        let echo = c.take_sent_upstream();
        if !echo.is_empty() {
            c.upstream_data(&echo, false).unwrap();
        }
        if c.closed().is_none() {
            // The client ends its side; the echo server then ends its own.
            c.downstream_data([], true).unwrap();
            c.upstream_data([], true).unwrap();
        }
        // The proxy closes the client's connection once the upstream's is done.
        c.close(sluice_host::abi::status::PeerType::Local).unwrap();
    };
    for (n, data) in [&b"hello"[..], b"close B", b"close A"].iter().enumerate() {
        let (e, s) = (talk(envoy.port, data), talk(sluice.port, data));
        assert_eq!(e, s, "{:?}: what the client got", String::from_utf8_lossy(data));
        converse(&mut harness, data);
        let (e, s) = (settled(|| envoy.log(), n + 1), settled(|| sluice.log(), n + 1));
        let what = String::from_utf8_lossy(data);
        assert_eq!(e, s, "after {what:?}: the callbacks differ between Envoy (left) and sluice serve (right)");
        let h: Vec<String> = harness.logs().into_iter().map(|r| r.message).filter(|m| m.contains(": ")).collect();
        assert_eq!(e, h, "after {what:?}: the callbacks differ between Envoy (left) and the harness (right)");
    }
}
