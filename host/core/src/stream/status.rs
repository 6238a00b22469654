//! Envoy's mapping of raw callback results to filter-manager statuses (cpp-host `convertVmCallResultTo*`).

/// What Envoy's filter manager did with a step of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterStatus {
    /// The data went on to the next filter.
    Continue,
    /// Headers held; body callbacks keep coming (needs `allow_on_headers_stop_iteration`).
    StopIteration,
    /// Headers and all following data held and buffered until the filter continues.
    StopAllIterationAndBuffer,
    /// Headers and all following data held, with flow control (Envoy's mapping of a headers Pause).
    StopAllIterationAndWatermark,
    /// Body chunk held and accumulated; the next body callback sees everything buffered.
    StopIterationAndBuffer,
    /// Body chunk held with flow control.
    StopIterationAndWatermark,
    /// Body chunk held without buffering.
    StopIterationNoBuffer,
    /// The filter was not called: an earlier step stopped all iteration, so the data was buffered.
    Buffered,
    /// The filter was not called: the stream was already answered, reset or ended.
    Ended,
    /// The filter was not called: its VM failed and the policy lets traffic pass.
    Skipped,
}

impl FilterStatus {
    /// True if the step let data through.
    pub fn is_continue(self) -> bool {
        matches!(self, FilterStatus::Continue | FilterStatus::Skipped)
    }
}

/// Headers callback result. A Pause (1) is StopAllIterationAndWatermark unless the plugin allows a
/// real StopIteration; 2 (ContinueAndEndStream) acts as Continue; above 4 is 4; a local reply forces 4.
pub fn headers_status(raw: i32, allow_stop_iteration: bool, local_reply: bool) -> FilterStatus {
    if local_reply {
        return FilterStatus::StopAllIterationAndWatermark;
    }
    match raw {
        0 | 2 => FilterStatus::Continue,
        1 if allow_stop_iteration => FilterStatus::StopIteration,
        3 => FilterStatus::StopAllIterationAndBuffer,
        _ => FilterStatus::StopAllIterationAndWatermark,
    }
}

/// Body callback result: 1 buffers, 2 watermarks, 3 and above stop without buffering; a local reply
/// forces StopIterationNoBuffer.
pub fn data_status(raw: i32, local_reply: bool) -> FilterStatus {
    if local_reply {
        return FilterStatus::StopIterationNoBuffer;
    }
    match raw {
        0 => FilterStatus::Continue,
        1 => FilterStatus::StopIterationAndBuffer,
        2 => FilterStatus::StopIterationAndWatermark,
        _ => FilterStatus::StopIterationNoBuffer,
    }
}

/// Trailers (and TCP) result: anything but 0 stops.
pub fn trailers_status(raw: i32, local_reply: bool) -> FilterStatus {
    if raw == 0 && !local_reply {
        FilterStatus::Continue
    } else {
        FilterStatus::StopIteration
    }
}

/// Envoy's HTTP-status → gRPC-status mapping for local replies to gRPC requests.
pub fn grpc_status_for_http(status: u32) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_mapping() {
        assert_eq!(headers_status(1, false, false), FilterStatus::StopAllIterationAndWatermark);
        assert_eq!(headers_status(1, true, false), FilterStatus::StopIteration);
        assert_eq!(headers_status(2, false, false), FilterStatus::Continue);
        assert_eq!(headers_status(9, false, false), FilterStatus::StopAllIterationAndWatermark);
        assert_eq!(headers_status(0, false, true), FilterStatus::StopAllIterationAndWatermark);
        assert_eq!(data_status(1, false), FilterStatus::StopIterationAndBuffer);
        assert_eq!(data_status(7, false), FilterStatus::StopIterationNoBuffer);
        assert_eq!(trailers_status(5, false), FilterStatus::StopIteration);
        assert_eq!(grpc_status_for_http(403), 7);
    }
}
