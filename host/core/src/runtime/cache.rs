//! Compiling modules once: by content hash in memory, and as serialized code on disk.

use std::hash::{Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::error::{Error, Result};

/// SHA-256 of the module bytes.
pub(crate) fn content_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The on-disk file for this module and engine: compiled code is only valid for the engine settings
/// that produced it, so both are in the name.
fn cache_file(engine: &Engine, dir: &Path, hash: &[u8; 32]) -> std::path::PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{}-{:016x}.cwasm", hex(hash), h.finish()))
}

/// Compiles `bytes`, or loads the code compiled earlier from `cache_dir`.
pub(crate) fn compile(engine: &Engine, bytes: &[u8], hash: &[u8; 32], cache_dir: Option<&Path>) -> Result<Module> {
    let is_binary = bytes.starts_with(b"\0asm");
    if bytes.is_empty() {
        return Err(Error::NotWasm { reason: "the file is empty" });
    }
    // WebAssembly text is accepted too (handy in tests); anything else must have the binary header.
    let is_text = std::str::from_utf8(bytes).is_ok_and(|t| t.trim_start().starts_with('('));
    if !is_binary && !is_text {
        return Err(Error::NotWasm { reason: "it does not start with the \\0asm magic number" });
    }
    if let Some(dir) = cache_dir {
        let file = cache_file(engine, dir, hash);
        if file.exists() {
            // SAFETY: the file is one this host wrote itself into its own cache directory, named by the
            // hash of the module and of the engine settings that compiled it.
            if let Ok(m) = unsafe { Module::deserialize_file(engine, &file) } {
                return Ok(m);
            }
        }
        let module = build(engine, bytes, is_binary)?;
        // A cache that cannot be written only costs time next start.
        if let Ok(code) = module.serialize() {
            let _ = std::fs::create_dir_all(dir);
            let tmp = file.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, code).is_ok() {
                let _ = std::fs::rename(&tmp, &file);
            }
        }
        return Ok(module);
    }
    build(engine, bytes, is_binary)
}

fn build(engine: &Engine, bytes: &[u8], is_binary: bool) -> Result<Module> {
    let r = if is_binary { Module::from_binary(engine, bytes) } else { Module::new(engine, bytes) };
    r.map_err(|e| if is_binary { Error::Compile { source: e.into() } } else { Error::InvalidText { source: e.into() } })
}
