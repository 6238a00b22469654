//! Tools from Debian's packages, for tests that need something nobody here wrote (skopeo, the C++
//! toolchains): `apt-get download` the packages and the libraries they need that this machine does
//! not have, unpacked with `dpkg -x` under `target/NAME/root` (nothing is installed on the
//! machine), once: later runs find them there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::wasm::workspace_root;

/// Packages unpacked under one root.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Where `dpkg -x` put them (`ROOT/usr/bin/…`).
    pub root: PathBuf,
}

impl Unpacked {
    /// The directory of their shared libraries, for `LD_LIBRARY_PATH`.
    pub fn libraries(&self) -> PathBuf {
        self.root.join("usr/lib/x86_64-linux-gnu")
    }
}

/// Whether `package` is installed on this machine.
fn installed(package: &str) -> Result<bool> {
    let status =
        Command::new("dpkg-query").args(["-W", "-f=${Status}", package]).output().context("running dpkg-query")?;
    Ok(String::from_utf8_lossy(&status.stdout).trim() == "install ok installed")
}

/// The packages `package` depends on directly whose names start with `lib` and that this
/// machine does not have.
fn missing_libraries(package: &str) -> Result<Vec<String>> {
    let out = Command::new("apt-cache").args(["depends", package]).output().context("running apt-cache")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut missing = Vec::new();
    for dep in text.lines().filter_map(|l| l.trim().strip_prefix("Depends: ")) {
        let dep = dep.trim();
        if dep.starts_with("lib") && !dep.starts_with('<') && !installed(dep)? {
            missing.push(dep.to_string());
        }
    }
    Ok(missing)
}

fn unpack(dir: &Path, wanted: &[&str]) -> Result<()> {
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs)?;
    let mut packages: Vec<String> = wanted.iter().map(|p| p.to_string()).collect();
    for package in wanted {
        for lib in missing_libraries(package)? {
            packages.extend(missing_libraries(&lib)?);
            packages.push(lib);
        }
    }
    packages.sort();
    packages.dedup();
    let out = Command::new("apt-get")
        .arg("download")
        // The download directory is the test's own: apt's sandbox user need not read it.
        .args(["-q", "-o", "APT::Sandbox::User=root"])
        .args(&packages)
        .current_dir(&debs)
        .output()
        .context("running apt-get download (Debian's apt is needed to fetch the tools)")?;
    if !out.status.success() {
        bail!(
            "apt-get download {} failed (run `apt-get update` if the lists are missing): {}",
            packages.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for deb in std::fs::read_dir(&debs)? {
        let deb = deb?.path();
        let out = Command::new("dpkg").arg("-x").arg(&deb).arg(dir.join("root")).output()?;
        if !out.status.success() {
            bail!("dpkg -x {} failed: {}", deb.display(), String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}

/// `packages` (and the libraries they need that are missing here) unpacked under
/// `target/NAME/root`, fetched on first use.
///
/// # Errors
/// If apt cannot download them or dpkg cannot unpack them.
pub fn unpacked(name: &str, packages: &[&str]) -> Result<Unpacked> {
    let dir = workspace_root().join("target").join(name);
    let marker = dir.join(".unpacked");
    let list = packages.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(list.as_str()) {
        eprintln!("fetching {list} from Debian (apt-get download, dpkg -x) into {}", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
        unpack(&dir, packages).with_context(|| format!("unpacking {list}"))?;
        let _ = std::fs::remove_dir_all(dir.join("debs"));
        std::fs::write(&marker, &list)?;
    }
    Ok(Unpacked { root: dir.join("root") })
}
