//! What an accept loop does when `accept` fails.
//!
//! A failure that concerns one connection (it was reset or aborted before it was taken) leaves the
//! listener able to take the next at once. One that concerns the process (out of file
//! descriptors, of socket buffers, of memory) would come back at once, and an accept loop that
//! retried at once would spin: Envoy's listener waits for the next readiness event instead; here
//! the loop backs off, longer with each failure in a row (a few milliseconds, up to a second), so
//! that the other connections keep being served and new ones are taken again as soon as the
//! process has room.

use std::io::{Error, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The first back-off after a failure that concerns the process.
const FIRST: Duration = Duration::from_millis(5);

/// The longest back-off.
const LONGEST: Duration = Duration::from_secs(1);

/// How long to wait before accepting again after `e`, the `failures`-th failure in a row
/// (counting from 0); `None` to accept again at once.
pub(crate) fn backoff(e: &Error, failures: u32) -> Option<Duration> {
    let one_connection = matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted | ErrorKind::WouldBlock
    );
    (!one_connection).then(|| FIRST.saturating_mul(1 << failures.min(10)).min(LONGEST))
}

/// The next connection `listener` takes, or `None` once `stop` is cancelled. A failure that
/// concerns the process is logged once and backed off (see [`backoff`]); the loop serves on.
pub(crate) async fn next(listener: &TcpListener, stop: &CancellationToken) -> Option<(TcpStream, SocketAddr)> {
    let mut failures = 0;
    loop {
        let e = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => return Some(c),
                Err(e) => e,
            },
            _ = stop.cancelled() => return None,
        };
        if let Some(wait) = backoff(&e, failures) {
            if failures == 0 {
                tracing::warn!(target: "conn_handler", "accepting a connection failed: {e}; backing off");
            }
            failures = failures.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_went_away_is_no_reason_to_wait() {
        for kind in [ErrorKind::ConnectionAborted, ErrorKind::ConnectionReset, ErrorKind::Interrupted] {
            assert_eq!(backoff(&Error::from(kind), 3), None, "{kind:?}");
        }
    }

    #[test]
    fn running_out_of_descriptors_backs_off_longer_each_time_up_to_a_second() {
        let emfile = Error::from_raw_os_error(24);
        let waits: Vec<Duration> = (0..12).map(|n| backoff(&emfile, n).expect("a back-off")).collect();
        assert_eq!(waits[0], Duration::from_millis(5));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), Duration::from_secs(1));
        assert_eq!(backoff(&emfile, u32::MAX), Some(Duration::from_secs(1)));
    }
}
