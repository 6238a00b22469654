//! The `protoc-gen-validate` constraints of Envoy's API (`(validate.rules)` on fields,
//! `(validate.required)` on oneofs), checked on a parsed message the way Envoy checks every
//! configuration message it loads. Errors name the field's path and say what the rule asks, in
//! PGV's words (`value length must be at least 1 characters`).

use std::borrow::Cow;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, OneofDescriptor, ReflectMessage, Value};

use super::{index, join, pool, shown};
use crate::config::ConfigError;

/// Checks `msg` (at `path`) and every message inside it.
pub(super) fn check(msg: &DynamicMessage, path: &str) -> Result<(), ConfigError> {
    let desc = msg.descriptor();
    if message_flag(&desc, "validate.disabled") || message_flag(&desc, "validate.ignored") {
        return Ok(());
    }
    for oneof in desc.oneofs().filter(|o| !o.is_synthetic() && oneof_required(o)) {
        if !oneof.fields().any(|f| msg.has_field(&f)) {
            let names: Vec<String> = oneof.fields().map(|f| format!("`{}`", f.name())).collect();
            return Err(ConfigError::new(
                join(path, oneof.name()),
                format!("value is required: set one of {}", names.join(", ")),
            ));
        }
    }
    for field in desc.fields() {
        let set = msg.has_field(&field);
        if field.containing_oneof().is_some_and(|o| !o.is_synthetic()) && !set {
            continue;
        }
        let here = join(path, field.name());
        let value = msg.get_field(&field);
        let rules = field_rules(&field);
        if let Some(rules) = &rules {
            field_value(&value, &field, rules, set, &here)?;
        }
        let skip = rules.as_ref().and_then(|r| sub(r, "message")).is_some_and(|m| flag(&m, "skip"));
        if set && !skip {
            descend(&value, &here)?;
        }
    }
    Ok(())
}

/// The messages inside a field's value.
fn descend(value: &Value, path: &str) -> Result<(), ConfigError> {
    match value {
        Value::Message(m) => nested(m, path),
        Value::List(items) => items.iter().enumerate().try_for_each(|(i, item)| descend(item, &index(path, i))),
        Value::Map(entries) => entries.iter().try_for_each(|(k, v)| descend(v, &join(path, &map_key(k)))),
        _ => Ok(()),
    }
}

/// A nested message; an `Any` is checked as the message it holds.
fn nested(m: &DynamicMessage, path: &str) -> Result<(), ConfigError> {
    let name = m.descriptor().full_name().to_string();
    if name == "google.protobuf.Any" {
        let type_url = text(m, "type_url");
        let inner_name = type_url.rsplit_once('/').map_or(type_url.as_ref(), |(_, n)| n);
        let Some(inner) = pool().get_message_by_name(inner_name) else { return Ok(()) };
        let bytes = m.get_field_by_name("value").and_then(|v| v.as_bytes().cloned()).unwrap_or_default();
        return match DynamicMessage::decode(inner, bytes) {
            Ok(inner) => check(&inner, path),
            Err(e) => Err(ConfigError::new(shown(path), format!("`{type_url}` cannot be read: {e}"))),
        };
    }
    if name.starts_with("google.protobuf.") {
        return Ok(());
    }
    check(m, path)
}

/// The rules of one field, applied to its value (`set` tells presence for message fields).
fn field_value(
    value: &Value,
    field: &FieldDescriptor,
    rules: &DynamicMessage,
    set: bool,
    path: &str,
) -> Result<(), ConfigError> {
    let required = sub(rules, "message").is_some_and(|m| flag(&m, "required"))
        || ["duration", "any", "timestamp"].iter().any(|k| sub(rules, k).is_some_and(|r| flag(&r, "required")));
    if required && !set {
        return Err(ConfigError::new(path, "value is required"));
    }
    if matches!(field.kind(), Kind::Message(_)) && !field.is_list() && !field.is_map() && !set {
        return Ok(());
    }
    if let (Value::List(items), Some(repeated)) = (value, sub(rules, "repeated")) {
        if flag(&repeated, "ignore_empty") && items.is_empty() {
            return Ok(());
        }
        count(items.len(), &repeated, "min_items", "max_items", "item", path)?;
        if flag(&repeated, "unique") {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    return Err(ConfigError::new(index(path, i), "repeated value must contain unique items"));
                }
            }
        }
        if let Some(each) = sub(&repeated, "items") {
            for (i, item) in items.iter().enumerate() {
                single(item, &field.kind(), &each, &index(path, i))?;
            }
        }
        return Ok(());
    }
    if let (Value::Map(entries), Some(map)) = (value, sub(rules, "map")) {
        if flag(&map, "ignore_empty") && entries.is_empty() {
            return Ok(());
        }
        count(entries.len(), &map, "min_pairs", "max_pairs", "pair", path)?;
        let Kind::Message(entry) = field.kind() else { return Ok(()) };
        for (k, v) in entries {
            let here = join(path, &map_key(k));
            if let Some(keys) = sub(&map, "keys") {
                single(&map_key_value(k), &entry.map_entry_key_field().kind(), &keys, &here)?;
            }
            if let Some(values) = sub(&map, "values") {
                single(v, &entry.map_entry_value_field().kind(), &values, &here)?;
            }
        }
        return Ok(());
    }
    single(value, &field.kind(), rules, path)
}

/// The scalar rules of one value (a wrapper message counts as the scalar it wraps).
fn single(value: &Value, kind: &Kind, rules: &DynamicMessage, path: &str) -> Result<(), ConfigError> {
    let fail = |why: String| Err(ConfigError::new(path, why));
    let unwrapped = unwrap_wrapper(value);
    let value = unwrapped.as_ref();
    for numeric in ["float", "double", "int32", "int64", "uint32", "uint64", "sint32", "sint64"]
        .into_iter()
        .chain(["fixed32", "fixed64", "sfixed32", "sfixed64"])
    {
        if let Some(r) = sub(rules, numeric) {
            let Some(n) = number(value) else { return Ok(()) };
            if flag(&r, "ignore_empty") && n == 0.0 {
                return Ok(());
            }
            return range(n, &r, number, &|x| x.to_string()).map_or(Ok(()), fail);
        }
    }
    if let Some(r) = sub(rules, "bool") {
        if let (Some(want), Some(got)) = (r.get_field_by_name("const").and_then(|c| c.as_bool()), value.as_bool()) {
            if r.has_field_by_name("const") && want != got {
                return fail(format!("value must equal {want}"));
            }
        }
        return Ok(());
    }
    if let Some(r) = sub(rules, "string") {
        let Some(s) = value.as_str() else { return Ok(()) };
        return string(s, &r).map_or(Ok(()), fail);
    }
    if let Some(r) = sub(rules, "bytes") {
        let Some(b) = value.as_bytes() else { return Ok(()) };
        if flag(&r, "ignore_empty") && b.is_empty() {
            return Ok(());
        }
        return lengths(b.len() as u64, &r, "len", "min_len", "max_len", "bytes").map_or(Ok(()), fail);
    }
    if let Some(r) = sub(rules, "enum") {
        let (Some(n), Kind::Enum(e)) = (value.as_enum_number(), kind) else { return Ok(()) };
        if flag(&r, "defined_only") && e.get_value(n).is_none() {
            return fail("value must be one of the defined enum values".to_string());
        }
        let listed = |name: &str| list(&r, name).iter().any(|v| v.as_i32() == Some(n));
        if r.has_field_by_name("const") && r.get_field_by_name("const").and_then(|c| c.as_i32()) != Some(n) {
            return fail("value must equal the one enum value allowed".to_string());
        }
        if !list(&r, "in").is_empty() && !listed("in") || listed("not_in") {
            return fail("value is not one of the enum values allowed here".to_string());
        }
        return Ok(());
    }
    if let Some(r) = sub(rules, "duration") {
        let Some(d) = value.as_message().map(nanos) else { return Ok(()) };
        let as_nanos = |v: &Value| v.as_message().map(|m| nanos(m) as f64);
        return range(d as f64, &r, as_nanos, &|n| format!("{}s", n / 1e9)).map_or(Ok(()), fail);
    }
    if let Some(r) = sub(rules, "any") {
        let Some(m) = value.as_message() else { return Ok(()) };
        let type_url = text(m, "type_url");
        let listed = |name: &str| list(&r, name).iter().any(|v| v.as_str() == Some(type_url.as_ref()));
        if !list(&r, "in").is_empty() && !listed("in") || listed("not_in") {
            return fail(format!("type URL `{type_url}` is not allowed here"));
        }
    }
    Ok(())
}

/// PGV's `const`/`lt`/`lte`/`gt`/`gte`/`in`/`not_in` on a number; a lower bound above the upper
/// one means "outside the range", as in PGV.
fn range(
    n: f64,
    r: &DynamicMessage,
    read: impl Fn(&Value) -> Option<f64>,
    show: &dyn Fn(f64) -> String,
) -> Option<String> {
    let get =
        |name: &str| r.has_field_by_name(name).then(|| r.get_field_by_name(name)).flatten().and_then(|v| read(&v));
    if let Some(c) = get("const") {
        if n != c {
            return Some(format!("value must equal {}", show(c)));
        }
    }
    let lower = get("gt").map(|g| (g, false)).or_else(|| get("gte").map(|g| (g, true)));
    let upper = get("lt").map(|l| (l, false)).or_else(|| get("lte").map(|l| (l, true)));
    let above = |(b, inclusive): (f64, bool)| if inclusive { n >= b } else { n > b };
    let below = |(b, inclusive): (f64, bool)| if inclusive { n <= b } else { n < b };
    let word = |inclusive: bool, more: bool| match (more, inclusive) {
        (true, false) => "greater than",
        (true, true) => "greater than or equal to",
        (false, false) => "less than",
        (false, true) => "less than or equal to",
    };
    match (lower, upper) {
        (Some(lo), Some(hi)) if lo.0 > hi.0 => {
            if !(above(lo) || below(hi)) {
                return Some(format!(
                    "value must be {} {} or {} {}",
                    word(hi.1, false),
                    show(hi.0),
                    word(lo.1, true),
                    show(lo.0)
                ));
            }
        }
        (lo, hi) => {
            if let Some(lo) = lo.filter(|&lo| !above(lo)) {
                return Some(format!("value must be {} {}", word(lo.1, true), show(lo.0)));
            }
            if let Some(hi) = hi.filter(|&hi| !below(hi)) {
                return Some(format!("value must be {} {}", word(hi.1, false), show(hi.0)));
            }
        }
    }
    let listed = |name: &str| list(r, name).iter().filter_map(&read).any(|x| x == n);
    if !list(r, "in").is_empty() && !listed("in") {
        return Some("value must be one of the values listed for it".to_string());
    }
    if listed("not_in") {
        return Some("value must not be one of the values excluded for it".to_string());
    }
    None
}

/// PGV's string rules.
fn string(s: &str, r: &DynamicMessage) -> Option<String> {
    if flag(r, "ignore_empty") && s.is_empty() {
        return None;
    }
    let opt = |name: &str| r.has_field_by_name(name).then(|| text(r, name).into_owned());
    if let Some(c) = opt("const") {
        if s != c {
            return Some(format!("value must equal `{c}`"));
        }
    }
    let chars = s.chars().count() as u64;
    if let Some(why) = lengths(chars, r, "len", "min_len", "max_len", "characters") {
        return Some(why);
    }
    if let Some(why) = lengths(s.len() as u64, r, "len_bytes", "min_bytes", "max_bytes", "bytes") {
        return Some(why);
    }
    if let Some(p) = opt("prefix").filter(|p| !s.starts_with(p.as_str())) {
        return Some(format!("value does not have prefix `{p}`"));
    }
    if let Some(p) = opt("suffix").filter(|p| !s.ends_with(p.as_str())) {
        return Some(format!("value does not have suffix `{p}`"));
    }
    if let Some(p) = opt("contains").filter(|p| !s.contains(p.as_str())) {
        return Some(format!("value does not contain `{p}`"));
    }
    if let Some(p) = opt("not_contains").filter(|p| s.contains(p.as_str())) {
        return Some(format!("value contains `{p}`"));
    }
    if let Some(p) = opt("pattern") {
        if regex::Regex::new(&p).is_ok_and(|re| !re.is_match(s)) {
            return Some(format!("value does not match regex pattern `{p}`"));
        }
    }
    let listed = |name: &str| list(r, name).iter().any(|v| v.as_str() == Some(s));
    if !list(r, "in").is_empty() && !listed("in") || listed("not_in") {
        return Some(format!("value `{s}` is not one of the values allowed here"));
    }
    // `strict` defaults to true (proto2 default).
    let strict = r.get_field_by_name("strict").and_then(|v| v.as_bool()).unwrap_or(true);
    match r.get_field_by_name("well_known_regex").filter(|_| r.has_field_by_name("well_known_regex")) {
        Some(v) if v.as_enum_number() == Some(1) && !header_name(s, strict) => {
            Some("value must be a valid HTTP header name".to_string())
        }
        Some(v) if v.as_enum_number() == Some(2) && !header_value(s, strict) => {
            Some("value must be a valid HTTP header value".to_string())
        }
        _ => well_known(s, r),
    }
}

/// The address-shaped `well_known` string rules.
fn well_known(s: &str, r: &DynamicMessage) -> Option<String> {
    let ip = s.parse::<std::net::IpAddr>();
    let hostname = || {
        !s.is_empty()
            && s.len() <= 253
            && s.trim_end_matches('.').split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    let bad = |name: &str, ok: bool| (flag(r, name) && !ok).then(|| format!("value must be a valid {name}"));
    bad("ip", ip.is_ok())
        .or_else(|| bad("ipv4", matches!(ip, Ok(std::net::IpAddr::V4(_)))))
        .or_else(|| bad("ipv6", matches!(ip, Ok(std::net::IpAddr::V6(_)))))
        .or_else(|| bad("hostname", hostname()))
        .or_else(|| bad("address", ip.is_ok() || hostname()))
}

/// RFC 7230 token characters, with HTTP/2's leading `:` allowed (PGV's strict header name).
fn header_name(s: &str, strict: bool) -> bool {
    if !strict {
        return !s.is_empty() && !s.contains(['\0', '\n', '\r']);
    }
    let body = s.strip_prefix(':').unwrap_or(s);
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_|~`".contains(&b))
}

/// No control characters but tab (PGV's strict header value).
fn header_value(s: &str, strict: bool) -> bool {
    if !strict {
        return !s.contains(['\0', '\n', '\r']);
    }
    !s.chars().any(|c| (c < ' ' && c != '\t') || c == '\x7f')
}

/// `len`/`min`/`max` on a length, in `unit`s.
fn lengths(n: u64, r: &DynamicMessage, exact: &str, min: &str, max: &str, unit: &str) -> Option<String> {
    let get =
        |name: &str| r.has_field_by_name(name).then(|| r.get_field_by_name(name)).flatten().and_then(|v| v.as_u64());
    if let Some(want) = get(exact).filter(|&w| w != n) {
        return Some(format!("value length must be {want} {unit}"));
    }
    if let Some(want) = get(min).filter(|&w| n < w) {
        return Some(format!("value length must be at least {want} {unit}"));
    }
    if let Some(want) = get(max).filter(|&w| n > w) {
        return Some(format!("value length must be at most {want} {unit}"));
    }
    None
}

/// `min_items`/`max_items` (or pairs) on a list or map.
fn count(n: usize, r: &DynamicMessage, min: &str, max: &str, unit: &str, path: &str) -> Result<(), ConfigError> {
    let get =
        |name: &str| r.has_field_by_name(name).then(|| r.get_field_by_name(name)).flatten().and_then(|v| v.as_u64());
    if let Some(want) = get(min).filter(|&w| (n as u64) < w) {
        return Err(ConfigError::new(path, format!("value must contain at least {want} {unit}(s)")));
    }
    if let Some(want) = get(max).filter(|&w| (n as u64) > w) {
        return Err(ConfigError::new(path, format!("value must contain no more than {want} {unit}(s)")));
    }
    Ok(())
}

/// A field's `(validate.rules)`, if it has any.
fn field_rules(field: &FieldDescriptor) -> Option<DynamicMessage> {
    let ext = pool().get_extension_by_name("validate.rules")?;
    let options = field.options();
    options.has_extension(&ext).then(|| options.get_extension(&ext).as_message().cloned()).flatten()
}

/// A oneof's `(validate.required)`.
fn oneof_required(oneof: &OneofDescriptor) -> bool {
    let Some(ext) = pool().get_extension_by_name("validate.required") else { return false };
    let options = oneof.options();
    options.has_extension(&ext) && options.get_extension(&ext).as_bool() == Some(true)
}

/// A message-level flag (`validate.disabled`, `validate.ignored`).
fn message_flag(desc: &MessageDescriptor, name: &str) -> bool {
    let Some(ext) = pool().get_extension_by_name(name) else { return false };
    let options = desc.options();
    options.has_extension(&ext) && options.get_extension(&ext).as_bool() == Some(true)
}

/// A set sub-message of a rules message (`rules.string`).
fn sub(r: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    if !r.has_field_by_name(name) {
        return None;
    }
    r.get_field_by_name(name).and_then(|v| v.as_message().cloned())
}

/// A set boolean of a rules message.
fn flag(r: &DynamicMessage, name: &str) -> bool {
    r.get_field_by_name(name).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// A repeated field of a rules message.
fn list(r: &DynamicMessage, name: &str) -> Vec<Value> {
    match r.get_field_by_name(name).as_deref() {
        Some(Value::List(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// A string field.
fn text<'a>(m: &'a DynamicMessage, name: &str) -> Cow<'a, str> {
    match m.get_field_by_name(name) {
        Some(Cow::Borrowed(Value::String(s))) => Cow::Borrowed(s.as_str()),
        Some(v) => Cow::Owned(v.as_str().unwrap_or_default().to_string()),
        None => Cow::Borrowed(""),
    }
}

/// The scalar inside a `google.protobuf.*Value` wrapper, or the value itself.
fn unwrap_wrapper(v: &Value) -> Cow<'_, Value> {
    match v.as_message() {
        Some(m)
            if m.descriptor().full_name().starts_with("google.protobuf.")
                && m.descriptor().full_name().ends_with("Value") =>
        {
            m.get_field_by_name("value").map_or(Cow::Borrowed(v), |inner| Cow::Owned(inner.into_owned()))
        }
        _ => Cow::Borrowed(v),
    }
}

/// Any number as `f64`.
fn number(v: &Value) -> Option<f64> {
    match *v {
        Value::I32(n) => Some(n.into()),
        Value::I64(n) => Some(n as f64),
        Value::U32(n) => Some(n.into()),
        Value::U64(n) => Some(n as f64),
        Value::F32(n) => Some(n.into()),
        Value::F64(n) => Some(n),
        _ => None,
    }
}

/// A `google.protobuf.Duration` in nanoseconds.
fn nanos(d: &DynamicMessage) -> i128 {
    let field = |name: &str| d.get_field_by_name(name).and_then(|v| number(&v)).unwrap_or(0.0) as i128;
    field("seconds") * 1_000_000_000 + field("nanos")
}

/// A map key as it appears in a path.
fn map_key(k: &prost_reflect::MapKey) -> String {
    match k {
        prost_reflect::MapKey::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// A map key as a value, for its rules.
fn map_key_value(k: &prost_reflect::MapKey) -> Value {
    Value::from(k.clone())
}

#[cfg(test)]
mod tests {
    use super::super::normalize_bootstrap;

    fn refused(yaml: &str) -> crate::config::ConfigError {
        normalize_bootstrap(serde_yaml_ng::from_str(yaml).unwrap()).unwrap_err()
    }

    #[test]
    fn envoys_constraints_are_checked_with_paths() {
        // Cluster.name: string.min_len = 1.
        let e = refused("static_resources: {clusters: [{name: ''}]}");
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("static_resources.clusters[0].name", "value length must be at least 1 characters")
        );
        // SocketAddress.port_value: uint32.lte = 65535.
        let e = refused("admin: {address: {socket_address: {address: 127.0.0.1, port_value: 70000}}}");
        assert_eq!(e.path, "admin.address.socket_address.port_value");
        assert!(e.message.contains("65535"), "{e}");
        // Cluster.connect_timeout: duration.gt = 0.
        let e = refused("static_resources: {clusters: [{name: c, connect_timeout: 0s}]}");
        assert_eq!(e.path, "static_resources.clusters[0].connect_timeout");
    }

    #[test]
    fn a_required_oneof_must_be_set() {
        // SocketAddress.port_specifier has no `(validate.required)`, Address.address does.
        let e = refused("admin: {address: {}}");
        assert_eq!(e.path, "admin.address.address");
        assert!(e.message.contains("socket_address"), "{e}");
    }
}
