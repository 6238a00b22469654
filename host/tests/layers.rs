//! The host's crates (core, harness, proxy, and this one with the CLI: Cargo refuses a cycle
//! between them) and the modules in each stand in layers (docs/ARCHITECTURE.md): no module uses one
//! that uses it back, between the top-level modules of a crate nor between the files of one folder.
//! Read from the source:
//! `crate::NAME` between top-level modules, `super::NAME` and `crate::FOLDER::NAME` between the
//! files of a folder; comments and `#[cfg(test)] mod tests` (which may use anything) left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// A file's code as it builds outside tests: no comments, no trailing test module.
fn production_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The names that follow `prefix::` in `code`.
fn names_after<'a>(code: &'a str, prefix: &str) -> impl Iterator<Item = &'a str> + 'a {
    let prefix = format!("{prefix}::");
    let starts: Vec<usize> = code.match_indices(&prefix).map(|(i, _)| i + prefix.len()).collect();
    starts.into_iter().map(move |i| {
        let rest = &code[i..];
        let end =
            rest.find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())).unwrap_or(rest.len());
        &rest[..end]
    })
}

/// The module each file belongs to, relative to `dir`: its first path component (`http` for
/// `http.rs`, `server` for `server/tcp.rs`).
fn module_of(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.strip_suffix(".rs").map(str::to_string).unwrap_or(first)
}

/// The cycles of `graph` (its strongly connected components of more than one node).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Reachability is enough at this size: two nodes share a cycle when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|k| (k, reach(k))).collect();
    let mut out: BTreeSet<Vec<String>> = BTreeSet::new();
    for (a, ra) in &reaches {
        if ra.contains(*a) {
            let mut group: Vec<String> =
                ra.iter().filter(|b| reaches.get(b).is_some_and(|rb| rb.contains(*a))).cloned().collect();
            group.sort();
            out.insert(group);
        }
    }
    out.into_iter().collect()
}

/// Each crate's `src/`.
fn sources() -> Vec<PathBuf> {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["src", "core/src", "harness/src", "proxy/src"].iter().map(|s| host.join(s)).collect()
}

#[test]
fn the_top_level_modules_use_each_other_in_one_direction() {
    for src in sources() {
        top_level(&src);
    }
}

fn top_level(src: &Path) {
    let mut graph = Graph::new();
    let modules: BTreeSet<String> = rust_files(src).iter().map(|f| module_of(src, f)).collect();
    for file in rust_files(src) {
        let from = module_of(src, &file);
        // The crate root declares the modules and names what they export.
        if from == "lib" || from == "main" {
            continue;
        }
        let code = production_code(&file);
        for to in names_after(&code, "crate") {
            if to != from && modules.contains(to) {
                graph.entry(from.clone()).or_default().insert(to.to_string());
            }
        }
    }
    assert!(graph.get("wire").is_none_or(BTreeSet::is_empty), "`wire` is a leaf: {:?}", graph.get("wire"));
    assert_eq!(
        cycles(&graph),
        Vec::<Vec<String>>::new(),
        "modules of {} that use each other: {graph:#?}",
        src.display()
    );
}

#[test]
fn the_files_of_each_folder_use_each_other_in_one_direction() {
    let folders: Vec<PathBuf> = sources()
        .iter()
        .flat_map(|src| std::fs::read_dir(src).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()))
        .collect();
    assert!(folders.len() > 5, "{folders:?}");
    for folder in folders {
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let files = rust_files(&folder);
        let siblings: BTreeSet<String> = files.iter().map(|f| module_of(&folder, f)).collect();
        let mut graph = Graph::new();
        for file in &files {
            let from = module_of(&folder, file);
            let code = production_code(file);
            // A file directly in the folder names its siblings through `super::`; a file one level
            // down through `super::super::`; any through `crate::FOLDER::`.
            let depth = file.strip_prefix(&folder).unwrap().components().count();
            let up = if depth == 1 { "super".to_string() } else { "super::super".to_string() };
            let crate_path = format!("crate::{name}");
            for to in names_after(&code, &up).chain(names_after(&code, &crate_path)) {
                if to != from && from != "mod" && siblings.contains(to) {
                    graph.entry(from.clone()).or_default().insert(to.to_string());
                }
            }
        }
        assert_eq!(cycles(&graph), Vec::<Vec<String>>::new(), "files of {name}/ that use each other: {graph:#?}");
    }
}
