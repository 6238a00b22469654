//! Envoy's access-log format strings (`%START_TIME%`, `%REQ(USER-AGENT)%`, …), parsed once when the
//! configuration is read: an operator sluice does not know is refused there, as Envoy refuses it.

/// Envoy's default format (used when an access log gives none), for HTTP and TCP alike.
pub const DEFAULT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" \
%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% \
%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \
\"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// One command operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// `%START_TIME%` (`2026-12-01T10:25:58.429Z`), or `%START_TIME(%s)%` (seconds).
    StartTime {
        /// Seconds since the epoch instead of Envoy's default shape.
        epoch_seconds: bool,
    },
    /// `%REQ(A?B):N%`: a request header (`B` if `A` is absent), cut to `N` characters.
    Request(Vec<String>, Option<usize>),
    /// `%RESP(A?B):N%`: a response header.
    Response(Vec<String>, Option<usize>),
    /// `%PROTOCOL%`.
    Protocol,
    /// `%RESPONSE_CODE%` (0 for TCP).
    ResponseCode,
    /// `%RESPONSE_FLAGS%` (`DPE` for a request the HTTP/1 codec refused; sluice sets no other).
    ResponseFlags,
    /// `%BYTES_RECEIVED%` from the client.
    BytesReceived,
    /// `%BYTES_SENT%` to the client.
    BytesSent,
    /// `%DURATION%` in milliseconds.
    Duration,
    /// `%UPSTREAM_HOST%`.
    UpstreamHost,
    /// `%UPSTREAM_CLUSTER%`.
    UpstreamCluster,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`.
    DownstreamRemoteAddress,
    /// `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`.
    DownstreamRemoteAddressWithoutPort,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    DownstreamLocalAddress,
    /// `%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%`.
    DownstreamLocalAddressWithoutPort,
}

/// A part of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text written as it is.
    Text(String),
    /// A value.
    Op(Operator),
}

/// Parses a format string; the error names the operator.
///
/// # Errors
/// The operator that is unknown or malformed, as Envoy names it.
pub fn parse(format: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        text.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            text.push('%');
            rest = r;
            continue;
        }
        let end = operator_end(rest).ok_or_else(|| format!("unterminated command operator at `%{rest}`"))?;
        let (op, after) = rest.split_at(end);
        rest = &after[1..];
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Op(operator(op)?));
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Where the operator starting `s` ends (its closing `%`, past any parenthesised argument).
fn operator_end(s: &str) -> Option<usize> {
    let open = s.find(['(', '%'])?;
    if s.as_bytes()[open] == b'%' {
        return Some(open);
    }
    let close = open + s[open..].find(')')?;
    let len = s[close..].find('%')?;
    Some(close + len)
}

fn operator(op: &str) -> Result<Operator, String> {
    let (name, arg, max) = match op.split_once('(') {
        Some((name, rest)) => {
            let (arg, tail) = rest.rsplit_once(')').ok_or_else(|| format!("`{op}`: missing `)`"))?;
            let max = match tail.strip_prefix(':') {
                Some(n) => Some(n.parse::<usize>().map_err(|_| format!("`{op}`: `{n}` is not a length"))?),
                None if tail.is_empty() => None,
                None => return Err(format!("`{op}`: unexpected `{tail}`")),
            };
            (name, Some(arg), max)
        }
        None => (op, None, None),
    };
    let headers = |arg: Option<&str>| -> Result<Vec<String>, String> {
        let arg = arg.filter(|a| !a.is_empty()).ok_or_else(|| format!("`{op}` needs a header name"))?;
        Ok(arg.split('?').map(str::to_ascii_lowercase).collect())
    };
    Ok(match (name, arg) {
        ("START_TIME", None) => Operator::StartTime { epoch_seconds: false },
        ("START_TIME", Some("%s")) => Operator::StartTime { epoch_seconds: true },
        ("REQ", a) => Operator::Request(headers(a)?, max),
        ("RESP", a) => Operator::Response(headers(a)?, max),
        ("PROTOCOL", None) => Operator::Protocol,
        ("RESPONSE_CODE", None) => Operator::ResponseCode,
        ("RESPONSE_FLAGS", None) => Operator::ResponseFlags,
        ("BYTES_RECEIVED", None) => Operator::BytesReceived,
        ("BYTES_SENT", None) => Operator::BytesSent,
        ("DURATION", None) => Operator::Duration,
        ("UPSTREAM_HOST", None) => Operator::UpstreamHost,
        ("UPSTREAM_CLUSTER", None) => Operator::UpstreamCluster,
        ("DOWNSTREAM_REMOTE_ADDRESS", None) => Operator::DownstreamRemoteAddress,
        ("DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", None) => Operator::DownstreamRemoteAddressWithoutPort,
        ("DOWNSTREAM_LOCAL_ADDRESS", None) => Operator::DownstreamLocalAddress,
        ("DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", None) => Operator::DownstreamLocalAddressWithoutPort,
        _ => return Err(format!("sluice does not support the command operator `%{op}%`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envoys_default_and_refuses_the_unknown() {
        let p = parse(DEFAULT).unwrap();
        assert_eq!(p[0], Piece::Text("[".into()));
        assert_eq!(p[1], Piece::Op(Operator::StartTime { epoch_seconds: false }));
        assert!(p.contains(&Piece::Op(Operator::Request(vec!["x-envoy-original-path".into(), ":path".into()], None))));
        assert_eq!(parse("%REQ(USER-AGENT):10% 100%%").unwrap()[1], Piece::Text(" 100%".into()));
        assert!(parse("%NO_SUCH_THING%").unwrap_err().contains("NO_SUCH_THING"));
        assert!(parse("%START_TIME").is_err());
    }
}
