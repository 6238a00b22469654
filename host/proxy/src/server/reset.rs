//! A stream that ends without an answer.

/// The stream was reset; hyper drops the connection.
#[derive(Debug)]
pub(crate) struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream reset by the filter")
    }
}

impl std::error::Error for Reset {}
