//! skopeo, the containers project's tool that reads OCI image layouts, to check `sluice package`'s
//! output with something nobody here wrote. Taken from Debian's packages on first use: `apt-get
//! download` the `skopeo` package and the libraries it needs that are not installed, unpacked
//! with `dpkg -x` under `target/skopeo/` (nothing is installed on the machine). `SKOPEO_BIN`
//! names another one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::wasm::workspace_root;

/// The packages `package` depends on directly whose names start with `lib` and that this
/// machine does not have.
fn missing_libraries(package: &str) -> Result<Vec<String>> {
    let out = Command::new("apt-cache").args(["depends", package]).output().context("running apt-cache")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut missing = Vec::new();
    for dep in text.lines().filter_map(|l| l.trim().strip_prefix("Depends: ")) {
        let dep = dep.trim();
        if !dep.starts_with("lib") || dep.starts_with('<') {
            continue;
        }
        let status = Command::new("dpkg-query").args(["-W", "-f=${Status}", dep]).output()?;
        if String::from_utf8_lossy(&status.stdout).trim() != "install ok installed" {
            missing.push(dep.to_string());
        }
    }
    Ok(missing)
}

fn unpack(dir: &Path) -> Result<()> {
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs)?;
    let mut packages = vec!["skopeo".to_string()];
    for lib in missing_libraries("skopeo")? {
        packages.extend(missing_libraries(&lib)?);
        packages.push(lib);
    }
    packages.sort();
    packages.dedup();
    let out = Command::new("apt-get")
        .arg("download")
        .args(&packages)
        .current_dir(&debs)
        .output()
        .context("running apt-get download (Debian's apt is needed to fetch skopeo)")?;
    if !out.status.success() {
        bail!("apt-get download {} failed: {}", packages.join(" "), String::from_utf8_lossy(&out.stderr));
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

fn install() -> Result<(PathBuf, Option<PathBuf>)> {
    if let Ok(bin) = std::env::var("SKOPEO_BIN") {
        return Ok((PathBuf::from(bin), None));
    }
    let dir = workspace_root().join("target/skopeo");
    let root = dir.join("root");
    let bin = root.join("usr/bin/skopeo");
    if !bin.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        unpack(&dir)?;
    }
    Ok((bin, Some(root.join("usr/lib/x86_64-linux-gnu"))))
}

/// A `skopeo` command, fetching skopeo on first use.
///
/// # Panics
/// If skopeo cannot be had: the tests that need it fail, never skip.
pub fn skopeo() -> Command {
    static BIN: OnceLock<Result<(PathBuf, Option<PathBuf>), String>> = OnceLock::new();
    let (bin, libs) =
        BIN.get_or_init(|| install().map_err(|e| format!("{e:#}"))).clone().unwrap_or_else(|e| panic!("skopeo: {e}"));
    let mut cmd = Command::new(bin);
    if let Some(libs) = libs {
        cmd.env("LD_LIBRARY_PATH", libs);
    }
    // No signature policy to consult: the images are local and made by the test.
    cmd.arg("--insecure-policy");
    cmd
}
