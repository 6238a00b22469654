//! Errors: every hostcall failure is a value, never a panic.

/// A status the host returned for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// The key, token or value does not exist.
    NotFound,
    /// An argument was rejected, or the object is not available in this callback.
    BadArgument,
    /// A value could not be serialized.
    SerializationFailure,
    /// A value could not be parsed (Envoy: unknown gRPC cluster).
    ParseFailure,
    /// Memory could not be accessed or allocated.
    InvalidMemoryAccess,
    /// The queue is empty.
    Empty,
    /// Shared data changed since it was read.
    CasMismatch,
    /// The host failed.
    InternalFailure,
    /// The host does not implement the call.
    Unimplemented,
    /// A code this SDK does not know.
    Other(u32),
}

impl Status {
    pub(crate) fn from_code(code: u32) -> Self {
        use crate::abi::status::*;
        match code {
            NOT_FOUND => Status::NotFound,
            BAD_ARGUMENT => Status::BadArgument,
            SERIALIZATION_FAILURE => Status::SerializationFailure,
            PARSE_FAILURE => Status::ParseFailure,
            INVALID_MEMORY_ACCESS => Status::InvalidMemoryAccess,
            EMPTY => Status::Empty,
            CAS_MISMATCH => Status::CasMismatch,
            INTERNAL_FAILURE => Status::InternalFailure,
            UNIMPLEMENTED => Status::Unimplemented,
            other => Status::Other(other),
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hostcall returned a failure status.
    #[error("{call} failed: {status:?}")]
    Host {
        /// The hostcall.
        call: &'static str,
        /// What the host said.
        status: Status,
    },
    /// The plugin or VM configuration could not be read into the configuration type.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An HTTP or gRPC callout failed before a response (reset, refused).
    #[error("callout failed: {0}")]
    Callout(String),
    /// A gRPC call ended with a non-OK status.
    #[error("gRPC status {status}: {message}")]
    Grpc {
        /// The gRPC status code.
        status: crate::grpc::Code,
        /// The status message.
        message: String,
    },
    /// A stored value could not be decoded.
    #[error("cannot decode {what}: {why}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        why: String,
    },
}

impl Error {
    /// The host status behind this error, if it came from a hostcall.
    pub fn status(&self) -> Option<Status> {
        match self {
            Error::Host { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Shorthand for results with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps a hostcall status to a result.
pub(crate) fn check(call: &'static str, code: u32) -> Result<()> {
    if code == crate::abi::status::OK {
        Ok(())
    } else {
        Err(Error::Host { call, status: Status::from_code(code) })
    }
}
