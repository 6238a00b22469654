//! What `proxy_get_log_level` answers, in Envoy 1.40 and in `sluice serve` with the same command
//! line: the level of the proxy's `wasm` logger, from `-l` and `--component-log-level`, and as admin
//! `/logging` changes it while the proxy runs. Filters that look at it before they log (the
//! AssemblyScript SDK, Kuadrant's wasm-shim) log what Envoy would only if the answers agree.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_integration::envoy::{envoy_binary, WasmFilter};
use sluice_integration::proxy::sluice_as_envoy;
use sluice_integration::wasm::workspace_root;
use sluice_integration::EnvoyConfig;

/// A plugin that logs `level=N` at critical (shown at every level but `off`), N being what
/// `proxy_get_log_level` answered, when it is configured and on every request.
const REPORTER: &str = r#"(module
  (import "env" "proxy_get_log_level" (func $level (param i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "level=?")
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func $report
    (drop (call $level (i32.const 200)))
    (i32.store8 (i32.const 106) (i32.add (i32.const 48) (i32.load (i32.const 200))))
    (drop (call $log (i32.const 5) (i32.const 100) (i32.const 7))))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (call $report) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (call $report) (i32.const 0)))"#;

struct Running {
    child: Child,
    dir: PathBuf,
    admin: u16,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Running {
    fn start(binary: &Path, yaml: &str, args: &[&str], name: &str) -> Running {
        let dir = workspace_root().join("target/log-level-test").join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("envoy.yaml"), yaml).unwrap();
        let child = Command::new(binary)
            .arg("-c")
            .arg(dir.join("envoy.yaml"))
            .args(["--concurrency", "1", "--disable-hot-restart", "--admin-address-path"])
            .arg(dir.join("admin"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap();
        let mut r = Running { child, dir, admin: 0, port: 0 };
        let deadline = Instant::now() + Duration::from_secs(30);
        while r.port == 0 {
            assert!(Instant::now() < deadline, "{name} was not ready:\n{}", r.log());
            assert!(r.child.try_wait().unwrap().is_none(), "{name} exited:\n{}", r.log());
            if r.admin == 0 {
                let text = std::fs::read_to_string(r.dir.join("admin")).unwrap_or_default();
                r.admin = text.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
            } else if let Ok(l) = sluice_integration::client::get(r.admin, "/listeners") {
                let text = String::from_utf8_lossy(&l.body).into_owned();
                r.port = text.lines().find_map(|l| l.rsplit(':').next()?.trim().parse().ok()).unwrap_or(0);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("log")).unwrap_or_default()).into_owned()
    }

    /// The plugin's lines as the log shows them, without time, thread and source: its level's
    /// name, then the text from `wasm log` on.
    fn lines(&self) -> Vec<(String, String)> {
        let log = self.log();
        log.lines()
            .filter(|l| l.contains("level="))
            .filter_map(|l| Some((l.split("][").nth(2)?.to_string(), l[l.find("wasm log")?..].to_string())))
            .collect()
    }

    /// The levels the plugin reported so far, in order.
    fn reported(&self) -> Vec<char> {
        self.log().lines().filter_map(|l| l.split("level=").nth(1)?.chars().next()).collect()
    }

    /// Sends one request and waits for its answer.
    fn request(&self) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    }

    /// Admin `POST /logging?QUERY`.
    fn set_logging(&self, query: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin)).unwrap();
        write!(s, "POST /logging?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{query}: {answer}");
    }

    /// What the plugin reports on the next request.
    fn on_request(&self) -> char {
        let before = self.reported().len();
        self.request();
        // The log line reaches the file a moment after the answer.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = self.reported();
            if r.len() > before {
                return r[before];
            }
            assert!(Instant::now() < deadline, "no report for the request:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn proxy_get_log_level_answers_the_wasm_loggers_level_as_it_changes() {
    let dir = workspace_root().join("target/log-level-test");
    std::fs::create_dir_all(&dir).unwrap();
    let module = dir.join("reporter.wasm");
    std::fs::write(&module, wat::parse_str(REPORTER).unwrap()).unwrap();
    // A name, root id and vm id of their own, to see which a log line's prefix names.
    let filter = WasmFilter { root_id: "rid".into(), vm_id: "vid".into(), ..WasmFilter::named(module, "nm") };
    let yaml = EnvoyConfig::http(filter).direct_response(200, "").render()
        + "admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n";
    // (command line, admin /logging changes made after the first request) → what the plugin
    // reports: when configured (by the canary and the worker in Envoy) and on each request.
    let cases: &[(&[&str], &[&str])] = &[
        (&["-l", "info"], &["wasm=debug", "level=trace", "wasm=critical"]),
        (&["-l", "debug"], &[]),
        (&["-l", "info", "--component-log-level", "wasm:trace"], &["wasm=warning"]),
        (&["-l", "warning", "--component-log-level", "upstream:debug,wasm:error"], &["level=info"]),
    ];
    for (args, changes) in cases {
        let mut seen = Vec::new();
        for (who, binary) in [("Envoy", envoy_binary()), ("sluice", sluice_as_envoy())] {
            let p = Running::start(&binary, &yaml, args, who);
            // Every instance configured so far (the canary's, the threads'): the levels they saw.
            let mut configured = p.reported();
            configured.dedup();
            let mut answers = vec![p.on_request()];
            for change in *changes {
                p.set_logging(change);
                answers.push(p.on_request());
            }
            // A root context's line (configure) and a stream's (the first request), as logged.
            let mut lines = p.lines();
            lines.dedup();
            seen.push((who, configured, answers, lines));
        }
        let (envoy, sluice) = (&seen[0], &seen[1]);
        assert_eq!((&sluice.1, &sluice.2), (&envoy.1, &envoy.2), "{args:?} then /logging {changes:?}: sluice, Envoy");
        assert_eq!(sluice.3, envoy.3, "{args:?}: the lines as logged, sluice and Envoy");
    }
}
