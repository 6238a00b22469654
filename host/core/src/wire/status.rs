//! The numeric enumerations of the proxy-wasm ABI, with the values Envoy uses.

/// The status every `proxy_*` hostcall returns (`WasmResult` in Envoy).
///
/// SDKs panic on statuses they do not expect, so each hostcall returns exactly the one Envoy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Status {
    /// The call succeeded.
    Ok = 0,
    /// The key, token, id or value does not exist.
    NotFound = 1,
    /// An argument is out of range, or the object is not available in this callback.
    BadArgument = 2,
    /// A value could not be serialized.
    SerializationFailure = 3,
    /// A value could not be parsed (Envoy: unknown gRPC cluster).
    ParseFailure = 4,
    /// A CEL expression is bad.
    BadExpression = 5,
    /// A pointer or length points outside guest memory, or the guest allocator failed.
    InvalidMemoryAccess = 6,
    /// The shared queue is empty.
    Empty = 7,
    /// The shared-data compare-and-swap value did not match.
    CasMismatch = 8,
    /// A result did not have the expected type.
    ResultMismatch = 9,
    /// The host failed internally.
    InternalFailure = 10,
    /// The connection broke (status of a reset HTTP callout).
    BrokenConnection = 11,
    /// The host does not implement this call for these arguments.
    Unimplemented = 12,
}

impl Status {
    /// The value as the guest sees it.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A hostcall either succeeds or fails with a non-OK [`Status`].
pub type AbiResult<T = ()> = Result<T, Status>;

/// `proxy_log_level_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2
    Info,
    /// 3
    Warn,
    /// 4
    Error,
    /// 5
    Critical,
}

impl LogLevel {
    /// Parses the guest's numeric level; `None` for values above 5.
    pub fn from_code(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Trace,
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            4 => Self::Error,
            5 => Self::Critical,
            _ => return None,
        })
    }

    /// The numeric level.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The lower-case name Envoy prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

/// `proxy_map_type_t`: which header map a hostcall addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// 0
    RequestHeaders,
    /// 1
    RequestTrailers,
    /// 2
    ResponseHeaders,
    /// 3
    ResponseTrailers,
    /// 4
    GrpcInitialMetadata,
    /// 5
    GrpcTrailingMetadata,
    /// 6
    HttpCallResponseHeaders,
    /// 7
    HttpCallResponseTrailers,
}

impl MapType {
    /// Parses the guest's value; `None` (BAD_ARGUMENT) above 7.
    pub fn from_code(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::RequestHeaders,
            1 => Self::RequestTrailers,
            2 => Self::ResponseHeaders,
            3 => Self::ResponseTrailers,
            4 => Self::GrpcInitialMetadata,
            5 => Self::GrpcTrailingMetadata,
            6 => Self::HttpCallResponseHeaders,
            7 => Self::HttpCallResponseTrailers,
            _ => return None,
        })
    }
}

/// `proxy_buffer_type_t`: which byte buffer a hostcall addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferType {
    /// 0
    HttpRequestBody,
    /// 1
    HttpResponseBody,
    /// 2
    DownstreamData,
    /// 3
    UpstreamData,
    /// 4
    HttpCallResponseBody,
    /// 5
    GrpcReceiveBuffer,
    /// 6
    VmConfiguration,
    /// 7
    PluginConfiguration,
    /// 8
    ForeignFunctionArguments,
}

impl BufferType {
    /// Parses the guest's value; `None` (BAD_ARGUMENT) above 8.
    pub fn from_code(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::HttpRequestBody,
            1 => Self::HttpResponseBody,
            2 => Self::DownstreamData,
            3 => Self::UpstreamData,
            4 => Self::HttpCallResponseBody,
            5 => Self::GrpcReceiveBuffer,
            6 => Self::VmConfiguration,
            7 => Self::PluginConfiguration,
            8 => Self::ForeignFunctionArguments,
            _ => return None,
        })
    }
}

/// `proxy_stream_type_t`: the target of `proxy_continue_stream` / `proxy_close_stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// 0: the HTTP request (decoder) side.
    HttpRequest,
    /// 1: the HTTP response (encoder) side.
    HttpResponse,
    /// 2: the downstream connection of a network filter.
    Downstream,
    /// 3: the upstream connection of a network filter.
    Upstream,
}

impl StreamType {
    /// Parses the guest's value; `None` (BAD_ARGUMENT) above 3.
    pub fn from_code(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::HttpRequest,
            1 => Self::HttpResponse,
            2 => Self::Downstream,
            3 => Self::Upstream,
            _ => return None,
        })
    }
}

/// `proxy_peer_type_t`: who closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerType {
    /// 0
    Unknown = 0,
    /// 1: this proxy closed it.
    Local = 1,
    /// 2: the peer closed it.
    Remote = 2,
}

/// `proxy_metric_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// 0: only goes up.
    Counter = 0,
    /// 1: goes up and down, or is set.
    Gauge = 1,
    /// 2: records samples.
    Histogram = 2,
}

impl MetricType {
    /// Parses the guest's value; `None` (BAD_ARGUMENT) above 2.
    pub fn from_code(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Counter,
            1 => Self::Gauge,
            2 => Self::Histogram,
            _ => return None,
        })
    }
}
