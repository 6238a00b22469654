//! The two C++ toolchains Envoy's users build proxy-wasm filters with, from Debian's packages
//! ([`crate::debian`], under `target/cpp-toolchains/`, nothing installed): Emscripten, the C++
//! SDK's own recipe, and clang for wasm32-wasi with wasi-libc and libc++. Each compiles a filter
//! with the SDK's intrinsics as the SDK's users do.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// The two toolchains Envoy's users build C++ filters with; modules from either must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    /// Emscripten (`em++`, `-sSTANDALONE_WASM`), the C++ SDK's own recipe. Its modules also
    /// import `env.emscripten_notify_memory_growth` and `wasi_snapshot_preview1.proc_exit`.
    Emscripten,
    /// clang for `wasm32-wasi` with wasi-libc and libc++ (the wasi-sdk way), as a reactor.
    WasiClang,
}

impl Toolchain {
    /// Both, in a fixed order.
    pub const ALL: [Toolchain; 2] = [Toolchain::Emscripten, Toolchain::WasiClang];

    /// A short name for test names and paths.
    pub fn name(self) -> &'static str {
        match self {
            Toolchain::Emscripten => "emscripten",
            Toolchain::WasiClang => "clang-wasi",
        }
    }
}

/// The Debian packages of both C++ toolchains: Emscripten with the LLVM 14 it runs on, and clang
/// 16 with wasi-libc and libc++ for wasm32 (their missing libraries come along).
const PACKAGES: [&str; 13] = [
    "emscripten",
    "clang-14",
    "lld-14",
    "llvm-14",
    "libclang-common-14-dev",
    "binaryen",
    "clang-16",
    "lld-16",
    "libclang-common-16-dev",
    "wasi-libc",
    "libc++-16-dev-wasm32",
    "libc++abi-16-dev-wasm32",
    "libclang-rt-16-dev-wasm32",
];

/// The functions the C++ SDK keeps alive for the host (`PROXY_WASM_KEEPALIVE`), which a clang
/// build must export by name (Emscripten exports them by itself).
fn sdk_exports(sdk: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(sdk.join("proxy_wasm_intrinsics.cc"))?;
    let mut names = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if !line.contains("PROXY_WASM_KEEPALIVE") {
            continue;
        }
        // The macro stands before the function's return type; the name is on the same line or
        // the next.
        let both = format!("{line} {}", lines.next().unwrap_or(""));
        if let Some(at) = both.find("proxy_") {
            let name: String = both[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    if names.len() < 10 {
        bail!("found only {names:?} kept alive in the C++ SDK: its source changed shape");
    }
    Ok(names)
}

/// Compiles `source` with the intrinsics of the C++ SDK at `sdk` into `OUT_DIR/STEM.wasm` as the
/// SDK's users do with `toolchain` (the commands of the corpus's README); the module's path.
///
/// # Errors
/// If the toolchain cannot be had or the file does not compile (with the compiler's output).
pub fn compile(toolchain: Toolchain, sdk: &Path, source: &Path, out_dir: &Path) -> Result<PathBuf> {
    static TOOLS: OnceLock<Result<crate::debian::Unpacked, String>> = OnceLock::new();
    // Once per process: tests run on several threads and must not unpack over each other.
    let tools = TOOLS
        .get_or_init(|| crate::debian::unpacked("cpp-toolchains", &PACKAGES).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)?;
    let root = &tools.root;
    std::fs::create_dir_all(out_dir)?;
    let stem = source.file_stem().context("a C++ source file")?.to_string_lossy();
    let out = out_dir.join(format!("{stem}.wasm"));
    let mut cmd = match toolchain {
        Toolchain::Emscripten => {
            // Debian's `em++` is a wrapper with /usr/share/emscripten written in: run the script
            // itself, with a configuration naming the unpacked tools. Debian's emcc runs
            // binaryen's tools from PATH.
            let config = out_dir.join(format!("{stem}.emscripten.config"));
            let node = which("node").context("Emscripten needs node on PATH (Debian's nodejs)")?;
            std::fs::write(
                &config,
                format!(
                    "EMSCRIPTEN_ROOT = '{r}/usr/share/emscripten'\nLLVM_ROOT = '{r}/usr/lib/llvm-14/bin'\n\
                     BINARYEN_ROOT = '{r}/usr'\nNODE_JS = '{node}'\n\
                     # Debian ships the built system libraries: never rebuild or write them.\n\
                     FROZEN_CACHE = True\nCACHE = '{r}/usr/share/emscripten/cache'\n",
                    r = root.display(),
                    node = node.display()
                ),
            )?;
            let mut c = Command::new("python3");
            c.arg(root.join("usr/share/emscripten/em++.py"))
                .env("EM_CONFIG", &config)
                .env("PATH", format!("{}:{}", root.join("usr/bin").display(), std::env::var("PATH")?))
                .args(["--std=c++17", "-O3", "-flto", "-DSTANDALONE_WASM", "--no-entry", "--js-library"])
                .arg(sdk.join("proxy_wasm_intrinsics.js"))
                .args(["-sSTANDALONE_WASM", "-sEXPORTED_FUNCTIONS=_malloc", "-sALLOW_MEMORY_GROWTH=1"]);
            c
        }
        Toolchain::WasiClang => {
            // Debian's clang finds wasi-libc under --sysroot but not libc++'s headers, and looks
            // for `wasm-ld-16` on PATH: both are named.
            let mut c = Command::new(root.join("usr/lib/llvm-16/bin/clang++"));
            c.arg("--target=wasm32-wasi")
                .arg(format!("--sysroot={}", root.join("usr").display()))
                .arg("-isystem")
                .arg(root.join("usr/include/wasm32-wasi/c++/v1"))
                .arg(format!("-fuse-ld={}", root.join("usr/lib/llvm-16/bin/wasm-ld").display()))
                .args(["-mexec-model=reactor", "-std=c++17", "-O3", "-flto", "-fno-exceptions"])
                // The SDK uses errno without including its header.
                .args(["-include", "errno.h", "-Wl,--allow-undefined", "-Wl,--export=malloc", "-Wl,--strip-debug"]);
            for name in sdk_exports(sdk)? {
                c.arg(format!("-Wl,--export={name}"));
            }
            c
        }
    };
    let output = cmd
        .arg("-I")
        .arg(sdk)
        .arg(sdk.join("proxy_wasm_intrinsics.cc"))
        .arg(source)
        .arg("-o")
        .arg(&out)
        .env("LD_LIBRARY_PATH", tools.libraries())
        .current_dir(out_dir)
        .output()
        .with_context(|| format!("running the {} toolchain", toolchain.name()))?;
    if !output.status.success() {
        bail!(
            "building {} with {} failed:\n{}",
            source.display(),
            toolchain.name(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(out)
}

/// `program` on PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}
