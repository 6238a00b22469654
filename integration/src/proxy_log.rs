//! What a proxy's log says, as the side-by-side tests compare it: the guest's messages and the
//! access-log lines, with what differs from run to run masked.

/// Where readiness probes come from, so their connections can be told apart in access logs.
pub const PROBE_IP: &str = "127.0.0.254";

/// The guest's log messages in a proxy's log (the text after `wasm log …: `), with what differs
/// from run to run masked: UUIDs (request ids) become `<uuid>`, hex strings of 16 or more digits
/// `<hex>`, and each run of digits `#` (times, counters, random numbers).
pub fn guest_messages(log: &str) -> std::collections::BTreeSet<String> {
    log.lines()
        .filter_map(|l| {
            let at = l.find("wasm log")?;
            let (_, msg) = l[at..].split_once(": ")?;
            Some(mask(msg))
        })
        .collect()
}

/// The access-log lines in a proxy's output (those that start with an ISO `%START_TIME%`,
/// `[2026-12-01T10:25:58.429Z]`), masked like [`guest_messages`], less the readiness probes'
/// (from [`PROBE_IP`]: whether a proxy still starting sees a probe is a race).
pub fn access_log_lines(log: &str) -> Vec<String> {
    let mut lines: Vec<String> = log
        .lines()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() > 12 && b[0] == b'[' && b[1..5].iter().all(u8::is_ascii_digit) && b[11] == b'T'
        })
        .filter(|l| !l.contains(PROBE_IP))
        .map(mask)
        .collect();
    lines.sort();
    lines
}

fn mask(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(c) = rest.chars().next() {
        let word_len = rest.find(|c: char| !(c.is_ascii_hexdigit() || c == '-')).unwrap_or(rest.len());
        let word = &rest[..word_len];
        let parts: Vec<usize> = word.split('-').map(str::len).collect();
        if parts == [8, 4, 4, 4, 12] {
            out.push_str("<uuid>");
            rest = &rest[word_len..];
        } else if word_len >= 16 && !word.contains('-') && word.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("<hex>");
            rest = &rest[word_len..];
        } else if c.is_ascii_digit() {
            let n = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            out.push('#');
            rest = &rest[n..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_what_varies() {
        assert_eq!(super::mask("x-request-id: 09fd4f29-0000-4000-8000-000000000003"), "x-request-id: <uuid>");
        assert_eq!(super::mask("called: 1792, result: 789ccb48cdc9c95728cf2fca"), "called: #, result: <hex>");
        assert_eq!(super::mask("It's 2026-12-01 09:35:08.381443 UTC"), "It's #-#-# #:#:#.# UTC");
    }
}
