//! The upstream the cases run against, as a standalone server for `docker-compose.yml`: HTTP
//! (echo, `/status/N`, `/auth`, `/collect`, `/collected`) and a TCP echo.
//!
//! ```text
//! test-upstream --http 0.0.0.0:8080 --tcp-echo 0.0.0.0:9000
//! ```

use anyhow::{bail, Context, Result};
use sluice_integration::Upstream;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut http, mut echo) = ("127.0.0.1:8080".to_string(), "127.0.0.1:9000".to_string());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--http" => http = args.next().context("--http needs an address")?,
            "--tcp-echo" => echo = args.next().context("--tcp-echo needs an address")?,
            other => bail!("unknown argument {other:?}; usage: test-upstream [--http ADDR] [--tcp-echo ADDR]"),
        }
    }
    let _http = Upstream::start_on(&http).with_context(|| format!("listening on {http}"))?;
    let _echo = Upstream::start_tcp_echo_on(&echo).with_context(|| format!("listening on {echo}"))?;
    println!("test upstream: HTTP on {http}, TCP echo on {echo}");
    loop {
        std::thread::park();
    }
}
