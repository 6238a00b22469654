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

/// Waits (boundedly) until a proxy's log shows `n` streams finished by the first filter, and
/// every context the second created done too; the lines then.
fn settled(log: impl Fn() -> String, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let lines = callbacks(&log());
        let count = |s: &str| lines.iter().filter(|l| *l == s).count();
        if (count("A: done") >= n && count("B: done") >= count("B: create")) || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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
        assert_eq!(e, s, "after {case:?}: the callbacks differ between Envoy (left) and sluice serve (right)");
        assert_eq!(e, h, "after {case:?}: the callbacks differ between Envoy (left) and the harness (right)");
    }
}
