//! `log` crate integration: records go to `proxy_log` at the host's level; panics are logged with
//! their message and location before the module traps.

use std::sync::Once;

struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        crate::abi::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

static LOGGER: HostLogger = HostLogger;

/// Installs the logger (at the host's level) and the panic hook, once.
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(match crate::abi::log_level() {
            0 => log::LevelFilter::Trace,
            1 => log::LevelFilter::Debug,
            2 => log::LevelFilter::Info,
            3 => log::LevelFilter::Warn,
            _ => log::LevelFilter::Error,
        });
        std::panic::set_hook(Box::new(|info| {
            // Critical (5): the filter is about to trap.
            crate::abi::log(5, &info.to_string());
        }));
    });
}
