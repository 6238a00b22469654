//! What tools see of the proxy around the examples: `envoy`'s command line, `/stats`,
//! `/config_dump`, how often plugins start and how VMs are shared, on the examples' own
//! configs, in Envoy and in sluice.

use std::collections::BTreeSet;
use std::time::Duration;

use sluice_integration::client::{self, Raw};
use sluice_integration::proxy::{self, Proxy, Which};
use sluice_integration::thirdparty::{self, Sdk};
use sluice_integration::Upstream;

/// `envoy_filter_metadata` needs Envoy's Lua filter: Envoy starts it; sluice refuses it in one line
/// that names the filter.
pub fn an_example_needing_a_missing_envoy_filter_is_refused_by_name() {
    let upstream = Upstream::start().unwrap();
    let original = thirdparty::original_config(Sdk::Rust, "envoy_filter_metadata");
    let root = sluice_integration::wasm::workspace_root();
    let config = thirdparty::rewrite(&original, Sdk::Rust, upstream.port).unwrap();
    let envoy = Proxy::start(Which::Envoy, &config, &root);
    assert!(envoy.is_ok(), "Envoy should start it: {:#}", envoy.err().unwrap());
    let (code, log) = proxy::run_to_exit(Which::Sluice, &config, &root, Duration::from_secs(30)).unwrap();
    assert_eq!(code, Some(1), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one line: {log}");
    assert!(errors[0].contains("envoy.extensions.filters.http.lua.v3.Lua"), "{}", errors[0]);
}

/// The command lines tools pass to `envoy`, run against Envoy and against sluice through a link
/// named `envoy`: the same exit codes, and the same output where tools read it.
pub fn envoys_command_line_runs_sluice() {
    use std::process::Command;
    let upstream = Upstream::start().unwrap();
    let original = thirdparty::original_config(Sdk::Go, "helloworld");
    let cwd = thirdparty::built(Sdk::Go);
    let good = thirdparty::rewrite(&original, Sdk::Go, upstream.port).unwrap();
    let dir = std::env::temp_dir().join(format!("sluice-argv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good_file = dir.join("good.yaml");
    std::fs::write(&good_file, &good.yaml).unwrap();
    let bad_file = dir.join("bad.yaml");
    std::fs::write(&bad_file, good.yaml.replace("codec_type: auto", "codec_type: bogus")).unwrap();
    let envoy = sluice_integration::envoy::envoy_binary();
    let sluice = proxy::sluice_as_envoy();
    let run = |bin: &std::path::Path, args: &[&str]| {
        let out = Command::new(bin).args(args).current_dir(&cwd).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (good, bad) = (good_file.display().to_string(), bad_file.display().to_string());
    let validate =
        ["--mode", "validate", "--base-id", "7", "--concurrency", "1", "--component-log-level", "wasm:trace", "-c"];
    for (what, file) in [("a valid config", &good), ("an invalid config", &bad)] {
        let args: Vec<&str> = validate.iter().copied().chain([file.as_str()]).collect();
        let (e, s) = (run(&envoy, &args), run(&sluice, &args));
        assert_eq!(e.0, s.0, "{what}: exit codes");
        if e.0 == Some(0) {
            assert_eq!(e.1, s.1, "{what}: what --mode validate prints");
        }
    }
    let (e, s) = (run(&envoy, &["--version"]), run(&sluice, &["--version"]));
    assert_eq!((e.0, s.0), (Some(0), Some(0)));
    assert!(e.1.contains("/1.40.0/") && s.1.contains("/1.40.0/"), "version lines: {e:?} {s:?}");
    // A flag Envoy does not have is refused by both.
    let (e, s) = (run(&envoy, &["--no-such-flag", "-c", &good]), run(&sluice, &["--no-such-flag", "-c", &good]));
    assert_ne!(e.0, Some(0));
    assert_ne!(s.0, Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// After the same requests on the same config, Envoy's `/stats` and sluice's agree on Envoy's
/// standard names (connection managers, clusters, listeners, server), every name sluice prints
/// exists in Envoy's, and the Prometheus names and labels are Envoy's.
pub fn stats_have_envoys_names_and_values() {
    let upstream = Upstream::start().unwrap();
    let original = thirdparty::original_config(Sdk::Go, "http_headers");
    let cwd = thirdparty::built(Sdk::Go);
    let mut seen = Vec::new();
    for which in [Which::Envoy, Which::Sluice] {
        let config = thirdparty::rewrite(&original, Sdk::Go, upstream.port).unwrap();
        let proxy = Proxy::start(which.clone(), &config, &cwd).unwrap();
        let port = proxy.ports[&18000];
        for _ in 0..3 {
            assert_eq!(client::get(port, "/").unwrap().status(), 200);
        }
        std::thread::sleep(Duration::from_millis(300));
        let stats = client::get(proxy.admin_port, "/stats").unwrap();
        let prometheus = client::get(proxy.admin_port, "/stats/prometheus").unwrap();
        let filtered = client::get(proxy.admin_port, "/stats?filter=downstream_rq_2xx").unwrap();
        let text = |r: &Raw| String::from_utf8_lossy(&r.body).into_owned();
        // Listener stats are named by address: the ports differ between the two runs.
        let mut names = std::collections::BTreeMap::new();
        for line in text(&stats).lines() {
            if let Some((name, value)) = line.split_once(": ") {
                // The original port, as the example's envoy.yaml has it.
                let name = config
                    .ports
                    .iter()
                    .fold(name.to_string(), |n, (o, p)| n.replace(&format!("_{p}."), &format!("_{o}.")));
                names.insert(name, value.to_string());
            }
        }
        let prom: BTreeSet<String> = text(&prometheus)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' ').map(|(k, _)| k.to_string()))
            .map(|k| config.ports.iter().fold(k, |n, (o, p)| n.replace(&format!("_{p}\""), &format!("_{o}\""))))
            .collect();
        seen.push((names, prom, text(&filtered)));
    }
    let (envoy, sluice) = (&seen[0], &seen[1]);
    let compared = [
        "http.ingress_http.downstream_rq_total",
        "http.ingress_http.downstream_rq_2xx",
        "http.ingress_http.downstream_rq_completed",
        "http.ingress_http.downstream_cx_total",
        "cluster.web_service.upstream_rq_total",
        "cluster.web_service.upstream_rq_2xx",
        "listener.127.0.0.1_18000.downstream_cx_total",
        "listener.127.0.0.1_8099.downstream_cx_total",
        "server.live",
        "server.concurrency",
    ];
    for name in compared {
        assert_eq!(envoy.0.get(name), sluice.0.get(name), "{name}");
        assert!(sluice.0.contains_key(name), "{name} is missing");
    }
    // The wasm VM stats: every name Envoy has (the VM counts differ: Envoy starts a VM per worker,
    // one on the main thread and one to validate; sluice one per worker and the canary), and no
    // reloads in either.
    let wasm = |m: &std::collections::BTreeMap<String, String>| {
        m.keys().filter(|k| k.starts_with("wasm.")).cloned().collect::<BTreeSet<_>>()
    };
    assert_eq!(wasm(&envoy.0), wasm(&sluice.0), "the wasm.* stats");
    for (name, value) in sluice.0.iter().filter(|(k, _)| k.contains(".vm_reload")) {
        assert_eq!(value, "0", "{name}");
    }
    assert_ne!(sluice.0.get("wasm.envoy.wasm.runtime.v8.active").map(String::as_str), Some("0"), "VMs are alive");
    let invented: Vec<&String> = sluice.0.keys().filter(|k| !envoy.0.contains_key(*k)).collect();
    assert!(invented.is_empty(), "names Envoy does not have: {invented:?}");
    let invented: Vec<&String> = sluice.1.iter().filter(|k| !envoy.1.contains(*k)).collect();
    assert!(invented.is_empty(), "Prometheus series Envoy does not have: {invented:?}");
    // `?filter=` keeps the matching lines (Envoy also has per-listener and admin copies).
    let lines = |t: &str| t.lines().map(str::to_string).collect::<BTreeSet<_>>();
    let (e, s) = (lines(&envoy.2), lines(&sluice.2));
    assert!(s.contains("http.ingress_http.downstream_rq_2xx: 6"), "{s:?}");
    assert!(s.iter().all(|l| l.contains("downstream_rq_2xx") && e.contains(l)), "sluice {s:?}, envoy {e:?}");
}

/// `/config_dump` of the examples' own configs (TypedStruct wrappers, lower-case enums, one value
/// for a list, metadata, network filters) is Envoy's: the same dumps in the same order, and each
/// listener, cluster, route configuration and the bootstrap (but its `node`, where Envoy lists its
/// build and extensions) field for field as Envoy writes them back (route configurations in any
/// order: Envoy's is its hash set's).
pub fn config_dumps_match_envoys() {
    let upstream = Upstream::start().unwrap();
    let examples = [
        (Sdk::Go, "http_headers"),
        (Sdk::Go, "properties"),
        (Sdk::Go, "network"),
        (Sdk::Rust, "http_config"),
        (Sdk::Rust, "http_body"),
    ];
    for (sdk, example) in examples {
        let original = thirdparty::original_config(sdk, example);
        let cwd = thirdparty::built(sdk);
        let mut dumps = Vec::new();
        for which in [Which::Envoy, Which::Sluice] {
            let mut config = thirdparty::rewrite(&original, sdk, upstream.port).unwrap();
            if !config.has_admin {
                // The Rust SDK's examples have no admin listener: the test adds one.
                config.admin_port = sluice_integration::ports::free_port();
                config.yaml.push_str(&format!(
                    "\nadmin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}}}\n",
                    config.admin_port
                ));
                config.has_admin = true;
            }
            let proxy = Proxy::start(which.clone(), &config, &cwd).unwrap();
            let raw = client::get(proxy.admin_port, "/config_dump").unwrap();
            assert_eq!(raw.status(), 200, "{which:?} {example}");
            // Ports as the example's envoy.yaml has them; the admin port by name.
            let mut text = String::from_utf8_lossy(&raw.body).into_owned();
            for (original, port) in &config.ports {
                text = text.replace(&format!("\"port_value\": {port}\n"), &format!("\"port_value\": {original}\n"));
            }
            text = text.replace(&format!("\"port_value\": {}\n", config.admin_port), "\"port_value\": \"admin\"\n");
            let mut dump: serde_json::Value = serde_json::from_str(&text).unwrap();
            for config in dump["configs"].as_array_mut().unwrap() {
                config.as_object_mut().unwrap().remove("last_updated");
                if let Some(bootstrap) = config.get_mut("bootstrap") {
                    bootstrap.as_object_mut().unwrap().remove("node");
                }
                for items in config.as_object_mut().unwrap().values_mut().filter_map(|v| v.as_array_mut()) {
                    for item in items.iter_mut() {
                        item.as_object_mut().unwrap().remove("last_updated");
                    }
                    // Envoy keeps static route configurations in a hash set: their order is not
                    // the file's.
                    items.sort_by_key(|i| i.to_string());
                }
            }
            dumps.push(dump);
        }
        let (envoy, sluice) = (&dumps[0]["configs"], &dumps[1]["configs"]);
        let types =
            |d: &serde_json::Value| d.as_array().unwrap().iter().map(|c| c["@type"].clone()).collect::<Vec<_>>();
        assert_eq!(types(envoy), types(sluice), "{example}");
        for (e, s) in envoy.as_array().unwrap().iter().zip(sluice.as_array().unwrap()) {
            assert_eq!(e, s, "{example}: {}", e["@type"]);
        }
    }
}

/// As many plugin starts as Envoy makes: with `--concurrency 1` Envoy configures each plugin in
/// the canary, on the main thread and on the worker (three `on_configure`), and sluice does too
/// (the main thread's instance serves no streams but starts, ticks and takes queue events).
pub fn plugins_start_as_often_as_in_envoy() {
    let upstream = Upstream::start().unwrap();
    let original = thirdparty::original_config(Sdk::Go, "http_headers");
    let cwd = thirdparty::built(Sdk::Go);
    let counts = thirdparty::in_both(&original, Sdk::Go, upstream.port, &cwd, |_, proxy| {
        std::thread::sleep(Duration::from_millis(1000));
        proxy.log().lines().filter(|l| l.contains("wasm log") && l.contains("loading plugin config")).count()
    });
    assert_eq!(counts[0], 3, "Envoy's count changed: {counts:?}");
    assert_eq!(counts[1], counts[0], "plugin starts (Envoy, sluice)");
}

/// The Go `shared_queue` example's own account of its root contexts: the context id each
/// plugin got and the queue id each receiver registered, in every VM (the canaries included), as
/// a sorted list.
fn root_context_lines(log: &str) -> Vec<String> {
    let mut lines: Vec<String> = log
        .lines()
        .filter_map(|l| l.split_once("wasm log ")?.1.split_once(": ").map(|(_, m)| m.to_string()))
        .filter(|m| m.contains("is configured for") || m.contains("registered as queueID"))
        .collect();
    lines.sort();
    lines
}

pub fn plugins_with_one_vm_id_and_code_share_a_vm_and_number_their_contexts_as_in_envoy() {
    // `shared_queue`: three receiver services with vm_id `receiver` and two sender filters (HTTP
    // and network) with vm_id `sender`. Envoy gives each thread one VM per vm_id, and each plugin
    // its own root context in it, numbered 1, 2, 3 in start order (each plugin's canary VM has
    // only its own root, 1). Without sharing, every root would be context 1.
    let upstream = Upstream::start().unwrap();
    let original = thirdparty::original_config(Sdk::Go, "shared_queue");
    let cwd = thirdparty::built(Sdk::Go);
    let seen = thirdparty::in_both(&original, Sdk::Go, upstream.port, &cwd, |_, proxy| {
        std::thread::sleep(Duration::from_millis(1500));
        root_context_lines(&proxy.log())
    });
    assert!(
        seen[0].iter().any(|l| l.contains("queueID=3 by contextID=3")),
        "Envoy numbers shared roots 1, 2, 3: {:#?}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0], "root contexts (sluice, Envoy)");
}
