//! `docs/SUPPORT.md` against the code and the proxies: every hostcall, callback and WASI function
//! the host serves has its row (and no row names one it does not), the SDK column says "—" exactly
//! where the SDK does not import (or export) the function, and the property and foreign function
//! columns are what Envoy 1.40, `sluice serve` and the harness answer a probe filter.

use std::collections::{BTreeMap, BTreeSet};

use sluice_host::abi::{CALLBACKS, ENV_FUNCTIONS, WASI_FUNCTIONS};
use sluice_integration::envoy::WasmFilter;
use sluice_integration::sluice::SluiceServe;
use sluice_integration::wasm::{sdk_filter, workspace_root};
use sluice_integration::{Case, Observed, SideBySide};

/// The rows of the table under `## {heading}`: (first column's name, last column).
fn rows(doc: &str, heading: &str) -> Vec<(String, String)> {
    let section = doc.split(&format!("\n## {heading}")).nth(1).unwrap_or_else(|| panic!("no section {heading}"));
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells.last().unwrap().to_string())
        })
        .collect()
}

/// `fn proxy_…(` names in an SDK source file.
fn sdk_functions(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
    text.split("fn ")
        .skip(1)
        .filter_map(|s| s.split('(').next())
        .filter(|n| n.starts_with("proxy_"))
        .map(String::from)
        .collect()
}

fn names(rows: &[(String, String)]) -> BTreeSet<String> {
    rows.iter().map(|(n, _)| n.clone()).collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_hostcall_callback_and_wasi_function_has_its_row() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/SUPPORT.md")).unwrap();
    assert_eq!(names(&rows(&doc, "Hostcalls")), set(ENV_FUNCTIONS), "the hostcall rows");
    assert_eq!(names(&rows(&doc, "Callbacks")), set(CALLBACKS), "the callback rows");
    assert_eq!(names(&rows(&doc, "WASI")), set(WASI_FUNCTIONS), "the WASI rows");
}

#[test]
fn the_sdk_column_is_what_the_sdk_imports_and_exports() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/SUPPORT.md")).unwrap();
    let imports = sdk_functions("sdk/src/abi/imports.rs");
    for (name, sdk) in rows(&doc, "Hostcalls") {
        assert_eq!(sdk != "—", imports.contains(&name), "{name}: the SDK column says {sdk:?}");
    }
    let mut exports = sdk_functions("sdk/src/abi/exports.rs");
    // The Rust runtime's own start function, and the allocator (not a callback row).
    exports.insert("_initialize".into());
    exports.remove("proxy_on_memory_allocate");
    for (name, sdk) in rows(&doc, "Callbacks") {
        assert_eq!(sdk != "—", exports.contains(&name), "{name}: the SDK column says {sdk:?}");
    }
    let unknown: Vec<_> = imports.iter().filter(|i| !ENV_FUNCTIONS.contains(&i.as_str())).collect();
    assert!(unknown.is_empty(), "the SDK imports what the host does not serve: {unknown:?}");
}

/// Every cell of the rows of the table under `## {heading}`.
fn cells(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let section = doc.split(&format!("\n## {heading}")).nth(1).unwrap_or_else(|| panic!("no section {heading}"));
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

/// The probe filter's path for a property row: `<name>` placeholders get a value the probe's
/// request (or the test upstream's response) has.
fn probe_path(row: &str) -> String {
    let name = row.trim_matches('`');
    let concrete = match name {
        "request.headers.<name>" => "request.headers.x-probe-me".to_string(),
        "response.headers.<name>" => "response.headers.content-type".to_string(),
        "filter_state.wasm.<key>" => "filter_state/wasm.probe_key".to_string(),
        "<path set with set_property>" => "probe_key".to_string(),
        other => other.to_string(),
    };
    if concrete.contains('/') {
        concrete
    } else {
        concrete.replace('.', "/")
    }
}

/// Per probed name, its answers (`ok`, or the host's status), one per phase it was asked in.
fn answers(lists: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for list in lists {
        for item in list.split(',').filter(|s| !s.is_empty()) {
            let (name, answer) = item.rsplit_once('=').unwrap_or_else(|| panic!("probe answer {item:?}"));
            out.entry(name.to_string()).or_default().push(answer.to_string());
        }
    }
    out
}

/// What one proxy answered: for each property path whether some phase (request headers,
/// response headers, `on_log`) had a value, and for each foreign function whether the host knows
/// it (with junk arguments, anything but NotFound).
struct Measured {
    properties: BTreeMap<String, bool>,
    foreign: BTreeMap<String, bool>,
}

/// Sends the probe twice (the second answer carries the first one's `on_log` answers).
fn probe(send: &mut dyn FnMut() -> Observed) -> Measured {
    let first = send();
    let second = send();
    assert_eq!((first.status, second.status), (200, 200), "{first}\n{second}");
    let h = |n: &str| second.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    let properties = answers(&[&h("x-probe-request"), &h("x-probe-response"), &h("x-probe-log")]);
    let foreign = answers(&[&h("x-probe-foreign")]);
    Measured {
        properties: properties.into_iter().map(|(k, v)| (k, v.iter().any(|a| a == "ok"))).collect(),
        foreign: foreign.into_iter().map(|(k, v)| (k, v.iter().all(|a| a != "NotFound"))).collect(),
    }
}

/// The rows whose "Envoy 1.40" or "sluice serve / harness" cell says otherwise than measured.
fn disagreements(
    rows: &[Vec<String>],
    keys: &[String],
    pick: impl Fn(&Measured) -> &BTreeMap<String, bool>,
    envoy: &Measured,
    sluice: &Measured,
    harness: &Measured,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (row, key) in rows.iter().zip(keys) {
        let got = |m: &Measured| *pick(m).get(key).unwrap_or_else(|| panic!("no answer for {key}"));
        let says = |cell: &str, who: &str, yes: bool| {
            (cell.starts_with("yes") != yes)
                .then(|| format!("{}: {who} {}", row[0], if yes { "serves it" } else { "does not" }))
        };
        wrong.extend(says(&row[1], "Envoy", got(envoy)));
        wrong.extend(says(&row[2], "sluice serve", got(sluice)));
        if got(harness) != got(sluice) {
            wrong.push(format!("{}: the harness and sluice serve differ", row[0]));
        }
    }
    wrong
}

#[test]
fn the_property_and_foreign_function_columns_are_what_envoy_and_sluice_answer() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/SUPPORT.md")).unwrap();
    let properties = cells(&doc, "Properties");
    let foreign = cells(&doc, "Foreign functions");
    assert!(properties.len() > 40 && foreign.len() > 5, "the tables are there");
    let paths: Vec<String> = properties.iter().map(|r| probe_path(&r[0])).collect();
    let names: Vec<String> = foreign.iter().map(|r| r[0].trim_matches('`').to_string()).collect();
    let leak = |v: &[String]| -> &'static str { Box::leak(v.join(",").into_boxed_str()) };
    let case = Case::get("/probe")
        .header("x-probe-properties", leak(&paths))
        .header("x-probe-foreign", leak(&names))
        .header("x-probe-me", "1")
        .header("referer", "http://example.com/")
        .header("user-agent", "probe/1");

    let mut s = SideBySide::start(WasmFilter::named(sdk_filter("probe"), "probe"), &[], |b| b).unwrap();
    let serve = SluiceServe::start(&s.config).unwrap();
    let envoy = probe(&mut || s.envoy(&case).unwrap());
    let harness = probe(&mut || s.harness(&case).unwrap());
    let sluice = probe(&mut || {
        let raw = sluice_integration::client::send(serve.port, case.method, case.path, &case.headers, b"").unwrap();
        Observed::from(&raw)
    });
    let mut wrong = disagreements(&properties, &paths, |m| &m.properties, &envoy, &sluice, &harness);
    wrong.extend(disagreements(&foreign, &names, |m| &m.foreign, &envoy, &sluice, &harness));
    assert!(wrong.is_empty(), "docs/SUPPORT.md disagrees with what was measured:\n{}", wrong.join("\n"));
}
