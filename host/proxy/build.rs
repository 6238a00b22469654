//! Embeds Envoy's API schema: the protobuf descriptor set of Envoy's data-plane API that the
//! `envoy-types` crate ships (`src/generated/types.bin`). The configuration loader reads every
//! bootstrap against it, so the fields, types, enums and `Any` types it accepts are Envoy's own.
//!
//! Cargo gives a build script no path to a dependency's sources, so the file is found where Cargo
//! unpacks registry crates (`$CARGO_HOME/registry/src/*/envoy-types-VERSION`); being a
//! build-dependency makes Cargo fetch it there. `SLUICE_ENVOY_DESCRIPTORS` names the file instead
//! (vendored or offline builds).

use std::path::{Path, PathBuf};

/// The `envoy-types` release pinned in Cargo.toml.
const ENVOY_TYPES: &str = "envoy-types-0.7.7";

fn main() {
    println!("cargo:rerun-if-env-changed=SLUICE_ENVOY_DESCRIPTORS");
    let source = match std::env::var_os("SLUICE_ENVOY_DESCRIPTORS") {
        Some(p) => PathBuf::from(p),
        None => find_in_registry().unwrap_or_else(|| {
            panic!(
                "Envoy's descriptor set ({ENVOY_TYPES}/src/generated/types.bin) is not under $CARGO_HOME/registry/src; \
                 run `cargo fetch`, or set SLUICE_ENVOY_DESCRIPTORS to the file"
            )
        }),
    };
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("envoy_descriptors.bin");
    std::fs::copy(&source, &out).unwrap_or_else(|e| panic!("copying {} to {}: {e}", source.display(), out.display()));
}

fn find_in_registry() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let registries = std::fs::read_dir(home.join("registry").join("src")).ok()?;
    registries
        .filter_map(Result::ok)
        .map(|r| r.path().join(ENVOY_TYPES).join("src").join("generated").join("types.bin"))
        .find(|p| p.is_file())
}
