//! skopeo, the containers project's tool that reads OCI image layouts, to check `sluice package`'s
//! output with something nobody here wrote. Taken from Debian's packages on first use
//! ([`crate::debian`], under `target/skopeo/`). `SKOPEO_BIN` names another one.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Result;

fn install() -> Result<(PathBuf, Option<PathBuf>)> {
    if let Ok(bin) = std::env::var("SKOPEO_BIN") {
        return Ok((PathBuf::from(bin), None));
    }
    let tools = crate::debian::unpacked("skopeo", &["skopeo"])?;
    Ok((tools.root.join("usr/bin/skopeo"), Some(tools.libraries())))
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
