//! `sluice package`: the OCI layouts it writes, read back by skopeo (Debian's, see
//! `sluice_integration::skopeo`): the manifest's media types and annotations as Istio and Envoy
//! Gateway look for them, and the module itself out of the layer, byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_integration::skopeo::skopeo;
use sluice_integration::sluice::sluice_binary;
use sluice_integration::wasm::{reference_filter, workspace_root};

fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root().join("target/package-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn package(wasm: &Path, out: &Path, format: &str) -> String {
    run(Command::new(sluice_binary()).arg("package").arg(wasm).arg("-o").arg(out).args(["--format", format]))
}

fn manifest(reference: &str) -> serde_json::Value {
    serde_json::from_str(&run(skopeo().args(["inspect", "--raw", reference]))).unwrap()
}

/// Copies the image to a `dir:` layout (skopeo checks every digest on the way) and returns it.
fn copied(reference: &str, dir: &Path) -> PathBuf {
    run(skopeo().args(["copy", reference]).arg(format!("dir:{}", dir.display())));
    dir.to_path_buf()
}

#[test]
fn the_image_format_is_one_layer_holding_plugin_wasm() {
    let wasm = reference_filter("headers");
    let dir = scratch("image");
    let said = package(&wasm, &dir.join("layout"), "image");
    let oci = format!("oci:{}:latest", dir.join("layout").display());
    let m = manifest(&oci);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["annotations"]["module.wasm.image/variant"], "compat");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let digest = run(skopeo().args(["inspect", "--format", "{{.Digest}}", &oci]));
    assert!(said.contains(digest.trim()), "the printed digest is the manifest's: {said} / {digest}");
    // The layer, unpacked with tar, is plugin.wasm and nothing else: the module's bytes.
    let out = copied(&oci, &dir.join("copy"));
    let layer = out.join(layers[0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let listing = run(Command::new("tar").arg("-tzf").arg(&layer));
    assert_eq!(listing.trim(), "plugin.wasm");
    run(Command::new("tar").arg("-xzf").arg(&layer).arg("-C").arg(&out));
    assert_eq!(std::fs::read(out.join("plugin.wasm")).unwrap(), std::fs::read(&wasm).unwrap());
}

#[test]
fn the_artifact_format_is_the_module_as_its_layer() {
    let wasm = reference_filter("headers");
    let dir = scratch("artifact");
    package(&wasm, &dir.join("layout"), "artifact");
    let oci = format!("oci:{}:latest", dir.join("layout").display());
    let m = manifest(&oci);
    assert_eq!(m["config"]["mediaType"], "application/vnd.module.wasm.config.v1+json");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    assert_eq!(layers[0]["mediaType"], "application/vnd.module.wasm.content.layer.v1+wasm");
    assert_eq!(layers[0]["annotations"]["org.opencontainers.image.title"], "plugin.wasm");
    let out = copied(&oci, &dir.join("copy"));
    let layer = out.join(layers[0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    assert_eq!(std::fs::read(layer).unwrap(), std::fs::read(&wasm).unwrap());
}

#[test]
fn a_tar_output_is_an_oci_archive_with_the_same_digests() {
    let wasm = reference_filter("headers");
    let dir = scratch("archive");
    package(&wasm, &dir.join("layout"), "image");
    package(&wasm, &dir.join("image.tar"), "image");
    let from_dir = run(skopeo()
        .args(["inspect", "--format", "{{.Digest}}"])
        .arg(format!("oci:{}:latest", dir.join("layout").display())));
    let from_tar = run(skopeo()
        .args(["inspect", "--format", "{{.Digest}}"])
        .arg(format!("oci-archive:{}:latest", dir.join("image.tar").display())));
    assert_eq!(from_dir, from_tar, "reproducible: the same module gives the same manifest");
}

#[test]
fn a_file_that_is_not_a_module_is_refused() {
    let dir = scratch("refused");
    std::fs::write(dir.join("not.wasm"), b"hello").unwrap();
    let out = Command::new(sluice_binary())
        .arg("package")
        .arg(dir.join("not.wasm"))
        .arg("-o")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a module Envoy can run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("out").exists(), "nothing is written");
}
