//! `docs/SUPPORT.md` against the code: every hostcall, callback and WASI function the host serves
//! has its row (and no row names one it does not), and the SDK column says "—" exactly where the
//! SDK does not import (or export) the function.

use std::collections::BTreeSet;

use sluice_host::abi::{CALLBACKS, ENV_FUNCTIONS, WASI_FUNCTIONS};
use sluice_integration::wasm::workspace_root;

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
