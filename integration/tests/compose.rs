//! `envoy-config/<sample>.yaml` (what `docker-compose.yml` runs) is the very bootstrap the sample's
//! main case runs in Envoy and `sluice serve`, with the compose addresses in place of loopback ones.
//! After changing a case, `SLUICE_BLESS=1 cargo test -p sluice-integration --test compose` rewrites
//! the files.

use sluice_integration::cases::CaseFile;
use sluice_integration::places::case_config;
use sluice_integration::wasm::workspace_root;

fn header(stem: &str) -> String {
    format!(
        "# The `{stem}` sample for docker-compose.yml. Generated from integration/cases/{stem}.yaml by\n\
         # `SLUICE_BLESS=1 cargo test -p sluice-integration --test compose`: the tests run this very\n\
         # configuration (on loopback addresses) in Envoy 1.40, `sluice serve` and the harness.\n"
    )
}

#[test]
fn envoy_config_files_are_the_configs_the_cases_run() {
    let root = workspace_root();
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).expect("docker-compose.yml");
    let mut stale = Vec::new();
    let mut samples = 0;
    for entry in std::fs::read_dir(root.join("integration/cases")).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let case = CaseFile::load(&path).unwrap();
        // Only a sample's main case (cases/<filter>.yaml) becomes its compose config.
        if case.filter != stem || case.refused.is_some() {
            continue;
        }
        samples += 1;
        let want = header(&stem) + &case_config(&case, 0, 0, 0).unwrap().render_for_compose();
        let file = root.join("envoy-config").join(format!("{stem}.yaml"));
        let have = std::fs::read_to_string(&file).unwrap_or_default();
        if have != want {
            if std::env::var_os("SLUICE_BLESS").is_some() {
                std::fs::write(&file, &want).unwrap();
            } else {
                stale.push(format!("{} differs from what the case runs; expected:\n{want}", file.display()));
            }
        }
        let mount = format!("envoy-config/{stem}.yaml");
        assert!(compose.contains(&format!("/etc/envoy/config/{stem}.yaml")), "docker-compose.yml does not run {mount}");
    }
    assert!(samples >= 8, "expected a main case per sample, found {samples}");
    assert!(stale.is_empty(), "{}\n(run with SLUICE_BLESS=1 to rewrite)", stale.join("\n\n"));
}
