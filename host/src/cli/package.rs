//! `sluice package MODULE.wasm -o DIR|FILE.tar`: the module as an OCI image layout, in the form
//! Istio's `WasmPlugin` and Envoy Gateway's `EnvoyExtensionPolicy` pull.
//!
//! Two formats, both read by Istio's (and Envoy Gateway's) image fetcher:
//! - `image` (default; Istio's "compat" variant): an OCI image whose single layer is a tar holding
//!   `plugin.wasm`, what `FROM scratch` + `COPY plugin.wasm ./` builds;
//! - `artifact`: the Wasm OCI artifact (config `application/vnd.module.wasm.config.v1+json`, one
//!   layer `application/vnd.module.wasm.content.layer.v1+wasm` that is the module itself).
//!
//! The output is reproducible: no timestamps, so the same module gives the same digests.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Arguments of `sluice package`.
#[derive(clap::Args)]
pub struct PackageArgs {
    /// The module (it is checked to be a proxy-wasm module first).
    module: PathBuf,
    /// Where to write: a directory (an OCI image layout) or a file ending in `.tar` (the same
    /// layout as a tar archive, skopeo's `oci-archive:`).
    #[arg(short, long, value_name = "DIR|FILE.tar")]
    output: PathBuf,
    /// `image` (a one-layer image holding `plugin.wasm`) or `artifact` (the Wasm OCI artifact).
    #[arg(long, default_value = "image", value_parser = ["image", "artifact"])]
    format: String,
    /// The tag the layout names the manifest by (`org.opencontainers.image.ref.name`).
    #[arg(long, default_value = "latest")]
    tag: String,
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A blob: its media type, bytes and digest.
struct Blob {
    media_type: &'static str,
    bytes: Vec<u8>,
    digest: String,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Self {
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        Blob { media_type, bytes, digest }
    }

    fn descriptor(&self) -> serde_json::Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len() })
    }
}

/// A tar holding one file, `name`, with fixed metadata (reproducible).
fn tar_of(name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, bytes)?;
    Ok(builder.into_inner()?)
}

/// The blobs of the image (config, layers) and its manifest.
fn image(wasm: &[u8]) -> Result<(Vec<Blob>, Blob)> {
    let layer_tar = tar_of("plugin.wasm", wasm)?;
    let diff_id = format!("sha256:{:x}", Sha256::digest(&layer_tar));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &layer_tar)?;
    let layer = Blob::new("application/vnd.oci.image.layer.v1.tar+gzip", gz.finish()?);
    let config = json!({
        "architecture": "wasm",
        "os": "wasip1",
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "config": {},
    });
    let config = Blob::new("application/vnd.oci.image.config.v1+json", serde_json::to_vec(&config)?);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        // What container runtimes (crun, containerd's wasm shims) read to know the image is wasm.
        "annotations": { "module.wasm.image/variant": "compat" },
    });
    Ok((vec![config, layer], Blob::new(MANIFEST, serde_json::to_vec(&manifest)?)))
}

/// The blobs of the Wasm OCI artifact and its manifest.
fn artifact(wasm: &[u8]) -> Result<(Vec<Blob>, Blob)> {
    let config = Blob::new("application/vnd.module.wasm.config.v1+json", b"{}".to_vec());
    let layer = Blob::new("application/vnd.module.wasm.content.layer.v1+wasm", wasm.to_vec());
    let mut layer_descriptor = layer.descriptor();
    layer_descriptor["annotations"] = json!({ "org.opencontainers.image.title": "plugin.wasm" });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.descriptor(),
        "layers": [layer_descriptor],
    });
    Ok((vec![config, layer], Blob::new(MANIFEST, serde_json::to_vec(&manifest)?)))
}

/// The files of the OCI image layout: path inside the layout, bytes.
fn layout(blobs: Vec<Blob>, manifest: Blob, tag: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut descriptor = manifest.descriptor();
    descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [descriptor] });
    let mut files = vec![
        ("oci-layout".to_string(), serde_json::to_vec(&json!({ "imageLayoutVersion": "1.0.0" }))?),
        ("index.json".to_string(), serde_json::to_vec(&index)?),
    ];
    for b in blobs.into_iter().chain([manifest]) {
        let hex = b.digest.trim_start_matches("sha256:").to_string();
        files.push((format!("blobs/sha256/{hex}"), b.bytes));
    }
    Ok(files)
}

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn write_tar(file: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, bytes.as_slice())?;
    }
    let bytes = builder.into_inner()?;
    std::fs::write(file, bytes).with_context(|| format!("cannot write {}", file.display()))
}

/// Packages the module and prints the manifest's digest (what a `WasmPlugin`'s `sha256` pins).
pub fn run(args: PackageArgs) -> Result<()> {
    let wasm =
        std::fs::read(&args.module).with_context(|| format!("cannot read the module {}", args.module.display()))?;
    let runtime = sluice_host::runtime::Runtime::new(sluice_host::runtime::RuntimeConfig::default())?;
    let info =
        runtime.inspect(&wasm).with_context(|| format!("{} is not a module Envoy can run", args.module.display()))?;
    let (blobs, manifest) = match args.format.as_str() {
        "artifact" => artifact(&wasm)?,
        _ => image(&wasm)?,
    };
    let digest = manifest.digest.clone();
    let files = layout(blobs, manifest, &args.tag)?;
    let is_tar = args.output.extension().is_some_and(|e| e == "tar");
    if is_tar {
        write_tar(&args.output, &files)?;
    } else {
        write_dir(&args.output, &files)?;
    }
    println!(
        "packaged {} (proxy-wasm {}) as an OCI {} in {}: manifest {digest}, tag {}",
        args.module.display(),
        info.abi,
        args.format,
        args.output.display(),
        args.tag
    );
    Ok(())
}
