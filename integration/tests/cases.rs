//! Every case file under integration/cases/, in the harness, `sluice serve` and the real Envoy (and
//! the host `SLUICE_CASES_HOST` names, if set). `SLUICE_CASES=NAME` runs only the files whose name
//! contains NAME.

#[test]
fn every_case_file_passes_in_all_three_places() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    // `SLUICE_CASES=auth` runs only the files whose name contains `auth`.
    if let Ok(only) = std::env::var("SLUICE_CASES") {
        files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(only.as_str())));
    }
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    let failures: Vec<String> =
        files.iter().filter_map(|f| sluice_integration::cases::run(f).err().map(|e| format!("{e:#}"))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
