//! `sluice new NAME [--http|--tcp|--service]`: a filter crate that builds, passes its own tests,
//! and loads in Envoy and `sluice serve` as made.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Arguments of `sluice new`.
#[derive(clap::Args)]
pub struct NewArgs {
    /// The crate's name (letters, digits, `-` and `_`; it names the `.wasm` and the plugin).
    name: String,
    /// Where to make it (default: `./NAME`). It must not exist, or be an empty directory.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// An HTTP filter (the default).
    #[arg(long, group = "kind")]
    http: bool,
    /// A network (TCP) filter.
    #[arg(long, group = "kind")]
    tcp: bool,
    /// A service: a plugin with no streams, run as an Envoy bootstrap extension.
    #[arg(long, group = "kind")]
    service: bool,
    /// A checkout of this repository to depend on by path (default: the one this binary was
    /// built from).
    #[arg(long, value_name = "DIR", conflicts_with = "git")]
    sluice_path: Option<PathBuf>,
    /// Depend on this repository by git instead (the crates are not on crates.io).
    #[arg(long, value_name = "URL")]
    git: Option<String>,
    /// With `--git`: the revision (commit, tag or branch) to pin.
    #[arg(long, value_name = "REV", requires = "git")]
    rev: Option<String>,
}

/// What kind of plugin the crate holds.
#[derive(Clone, Copy)]
enum Kind {
    Http,
    Tcp,
    Service,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Http => "HTTP filter",
            Kind::Tcp => "network (TCP) filter",
            Kind::Service => "service",
        }
    }

    /// `src/lib.rs`, `tests/*.rs` and `envoy.yaml`.
    fn templates(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Http => (
                include_str!("new/http_lib.rs.tmpl"),
                include_str!("new/http_test.rs.tmpl"),
                include_str!("new/http_envoy.yaml.tmpl"),
            ),
            Kind::Tcp => (
                include_str!("new/tcp_lib.rs.tmpl"),
                include_str!("new/tcp_test.rs.tmpl"),
                include_str!("new/tcp_envoy.yaml.tmpl"),
            ),
            Kind::Service => (
                include_str!("new/service_lib.rs.tmpl"),
                include_str!("new/service_test.rs.tmpl"),
                include_str!("new/service_envoy.yaml.tmpl"),
            ),
        }
    }
}

/// Where the generated crate gets the SDK and the harness from.
enum Source {
    Path(PathBuf),
    Git { url: String, rev: Option<String> },
}

impl Source {
    /// The dependency lines for `sluice` and `sluice-host` (the harness alone, no proxy).
    fn dependencies(&self) -> (String, String) {
        match self {
            Source::Path(root) => (
                format!("sluice = {{ path = {} }}", toml_string(&root.join("sdk"))),
                format!("sluice-host = {{ path = {}, default-features = false }}", toml_string(&root.join("host"))),
            ),
            Source::Git { url, rev } => {
                let rev = rev.as_ref().map(|r| format!(", rev = \"{r}\"")).unwrap_or_default();
                (
                    format!("sluice = {{ git = \"{url}\"{rev} }}"),
                    format!("sluice-host = {{ git = \"{url}\"{rev}, default-features = false }}"),
                )
            }
        }
    }
}

fn toml_string(p: &Path) -> String {
    format!("\"{}\"", p.display().to_string().replace('\\', "\\\\").replace('"', "\\\""))
}

/// Makes the crate and prints what to run next.
pub fn run(args: NewArgs) -> Result<()> {
    let name = args.name.as_str();
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || !name.starts_with(|c: char| c.is_ascii_alphabetic())
    {
        bail!("`{name}` cannot name a crate: use letters, digits, `-` and `_`, starting with a letter");
    }
    let kind = if args.tcp {
        Kind::Tcp
    } else if args.service {
        Kind::Service
    } else {
        Kind::Http
    };
    let source = match (args.git, args.sluice_path) {
        (Some(url), _) => Source::Git { url, rev: args.rev },
        (None, Some(dir)) => Source::Path(checkout(&dir)?),
        (None, None) => {
            // This binary's own checkout: host/ is the crate it was built from.
            let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf);
            match built_from.filter(|d| d.join("sdk/Cargo.toml").is_file()) {
                Some(dir) => Source::Path(dir),
                None => bail!(
                    "this sluice binary's source checkout is gone: pass --sluice-path DIR (a checkout of sluice) \
                     or --git URL"
                ),
            }
        }
    };
    let dir = args.path.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    let crate_file = name.replace('-', "_");
    let (sdk, harness) = source.dependencies();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_file)
            .replace("{{metric}}", &crate_file)
            .replace("{{kind}}", kind.describe())
            .replace("{{sdk_dependency}}", &sdk)
            .replace("{{harness_dependency}}", &harness)
    };
    let (lib, test, envoy) = kind.templates();
    let files = [
        ("Cargo.toml", fill(include_str!("new/Cargo.toml.tmpl"))),
        (".gitignore", fill(include_str!("new/gitignore.tmpl"))),
        ("README.md", fill(include_str!("new/README.md.tmpl"))),
        ("envoy.yaml", fill(envoy)),
        ("src/lib.rs", fill(lib)),
        ("tests/filter.rs", fill(test)),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Source::Path(root) = &source {
        // The dependency versions that checkout is tested with (cargo drops what the crate does
        // not use on its first build).
        let lock = root.join("Cargo.lock");
        if lock.is_file() {
            std::fs::copy(&lock, dir.join("Cargo.lock")).with_context(|| format!("cannot copy {}", lock.display()))?;
        }
    }
    println!("made the {} `{name}` in {}", kind.describe(), dir.display());
    println!("next: cd {} && cargo test   (needs `rustup target add wasm32-wasip1` once)", dir.display());
    Ok(())
}

/// `dir`, checked to be a checkout of this repository.
fn checkout(dir: &Path) -> Result<PathBuf> {
    let dir = dir.canonicalize().with_context(|| format!("cannot find {}", dir.display()))?;
    if !dir.join("sdk/Cargo.toml").is_file() || !dir.join("host/Cargo.toml").is_file() {
        bail!("{} is not a checkout of sluice (no sdk/ and host/ crates in it)", dir.display());
    }
    Ok(dir)
}
