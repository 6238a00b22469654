//! The start-up barrier: `sluice serve` is started once every thread (each worker and the main
//! one) has said it is ready, or as soon as one says why it is not, however long that takes. No
//! fixed wait: a thread whose plugins take seconds to configure, then fail, still fails the start.

use std::sync::mpsc::{Receiver, Sender};

use super::ServeError;

type Result<T, E = ServeError> = std::result::Result<T, E>;

/// Runs a thread's `work`, which tells `ready` once it is set up; if it fails instead (a panic
/// included), `ready` hears why.
pub(super) fn reporting(ready: &Sender<Result<()>>, work: impl FnOnce(&Sender<Result<()>>) -> Result<()>) {
    let failed = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(ready))) {
        Ok(r) => r.err(),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Some(ServeError::Panicked { message: message.to_string() })
        }
    };
    if let Some(e) = failed {
        let _ = ready.send(Err(e));
    }
}

/// Waits until `threads` threads said they are ready.
///
/// # Errors
/// The first failure a thread reports.
pub(super) fn wait(ready: &Receiver<Result<()>>, threads: usize) -> Result<()> {
    for _ in 0..threads {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            // Every thread is gone, each having said its word: none is left to wait for.
            Err(_) => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use super::*;

    /// What one thread does before it serves.
    type Work = Box<dyn FnOnce(&Sender<Result<()>>) -> Result<()> + Send>;

    fn start(threads: Vec<Work>) -> Result<()> {
        let (tx, rx) = channel();
        let n = threads.len();
        for work in threads {
            let tx = tx.clone();
            std::thread::spawn(move || {
                reporting(&tx, work);
                // A ready thread serves on: it keeps its sender until the test is done.
                std::thread::sleep(Duration::from_secs(2));
            });
        }
        drop(tx);
        wait(&rx, n)
    }

    #[test]
    fn a_late_failure_fails_the_start() {
        let r = start(vec![
            Box::new(|ready| {
                let _ = ready.send(Ok(()));
                Ok(())
            }),
            Box::new(|_| {
                std::thread::sleep(Duration::from_millis(700));
                Err(ServeError::Plugin {
                    plugin: "late".into(),
                    source: Box::new(sluice_core::Error::ConfigureFailed { logged: None }),
                })
            }),
        ]);
        assert!(r.is_err_and(|e| e.to_string().contains("late")));
    }

    #[test]
    fn a_panic_while_starting_fails_the_start_with_its_message() {
        let r = start(vec![Box::new(|_| panic!("no sockets left"))]);
        assert!(r.is_err_and(|e| e.to_string().contains("no sockets left")));
    }

    #[test]
    fn every_thread_ready_is_a_start() {
        let ok: fn(&Sender<Result<()>>) -> Result<()> = |ready| {
            std::thread::sleep(Duration::from_millis(400));
            let _ = ready.send(Ok(()));
            Ok(())
        };
        assert!(start(vec![Box::new(ok), Box::new(ok), Box::new(ok)]).is_ok());
    }
}
