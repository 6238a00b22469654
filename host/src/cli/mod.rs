//! The subcommands of the `sluice` binary.

pub mod check;
pub mod logging;
pub mod new;
pub mod package;
pub mod serve;
