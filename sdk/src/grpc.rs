//! gRPC status codes, as the gRPC specification numbers them.

use std::fmt;

/// A gRPC status code: what a local reply tells a gRPC client ([`Reply::grpc_status`]), and how
/// a gRPC call or stream ended ([`Error::Grpc`], [`GrpcStreamEvent::Closed`]).
///
/// ```
/// use sluice::grpc::Code;
/// assert_eq!(Code::from_u32(16), Code::Unauthenticated);
/// assert_eq!(Code::PermissionDenied as u32, 7);
/// assert_eq!(Code::from_u32(99), Code::Unknown); // codes past 16 read as UNKNOWN, as gRPC says
/// ```
///
/// [`Reply::grpc_status`]: crate::http::Reply::grpc_status
/// [`Error::Grpc`]: crate::Error::Grpc
/// [`GrpcStreamEvent::Closed`]: crate::call::GrpcStreamEvent::Closed
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    /// 0: not an error.
    Ok = 0,
    /// 1: the caller cancelled.
    Cancelled = 1,
    /// 2: an error with no better code (also any code this list does not have).
    Unknown = 2,
    /// 3: the request is wrong whatever the server's state.
    InvalidArgument = 3,
    /// 4: the deadline passed.
    DeadlineExceeded = 4,
    /// 5: the entity does not exist.
    NotFound = 5,
    /// 6: the entity exists already.
    AlreadyExists = 6,
    /// 7: the caller may not do this.
    PermissionDenied = 7,
    /// 8: a quota or resource ran out.
    ResourceExhausted = 8,
    /// 9: the system is not in the state the operation needs.
    FailedPrecondition = 9,
    /// 10: aborted (a concurrency conflict).
    Aborted = 10,
    /// 11: past the valid range.
    OutOfRange = 11,
    /// 12: the server does not implement it.
    Unimplemented = 12,
    /// 13: an invariant broke.
    Internal = 13,
    /// 14: the service is unavailable now (retry).
    Unavailable = 14,
    /// 15: data was lost.
    DataLoss = 15,
    /// 16: the caller is not authenticated.
    Unauthenticated = 16,
}

impl Code {
    /// The code with this number; a number past 16 is [`Code::Unknown`], as gRPC clients read it.
    pub fn from_u32(code: u32) -> Code {
        use Code::*;
        const ALL: [Code; 17] = [
            Ok,
            Cancelled,
            Unknown,
            InvalidArgument,
            DeadlineExceeded,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            ResourceExhausted,
            FailedPrecondition,
            Aborted,
            OutOfRange,
            Unimplemented,
            Internal,
            Unavailable,
            DataLoss,
            Unauthenticated,
        ];
        usize::try_from(code).ok().and_then(|i| ALL.get(i)).copied().unwrap_or(Unknown)
    }

    /// True for [`Code::Ok`].
    pub fn is_ok(self) -> bool {
        self == Code::Ok
    }
}

impl fmt::Display for Code {
    /// The number and name, as gRPC's tools print them: `7 (PERMISSION_DENIED)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        };
        write!(f, "{} ({name})", *self as u32)
    }
}
