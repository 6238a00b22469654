//! Picks the virtual host and route for a request, as Envoy's router does.

use crate::config::{HeaderTest, PathMatch, RoutePlan, VirtualHostPlan};
use sluice_core::stream::HeaderMap;

fn domain_matches(pattern: &str, host: &str) -> bool {
    let host = host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h);
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return host.ends_with(suffix);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return host.starts_with(prefix);
    }
    pattern.eq_ignore_ascii_case(host)
}

/// The virtual host for `authority`: exact domains first, then wildcards, then `*`.
pub(crate) fn virtual_host<'a>(hosts: &'a [VirtualHostPlan], authority: &str) -> Option<&'a VirtualHostPlan> {
    let exact = hosts.iter().find(|v| v.domains.iter().any(|d| !d.contains('*') && domain_matches(d, authority)));
    let wild =
        || hosts.iter().find(|v| v.domains.iter().any(|d| d != "*" && d.contains('*') && domain_matches(d, authority)));
    let any = || hosts.iter().find(|v| v.domains.iter().any(|d| d == "*"));
    exact.or_else(wild).or_else(any)
}

/// The first route whose path and header conditions hold.
pub(crate) fn route<'a>(vh: &'a VirtualHostPlan, headers: &HeaderMap) -> Option<&'a RoutePlan> {
    let path = headers.get_str(":path").unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    vh.routes.iter().find(|r| {
        let path_ok = match &r.path {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
            PathMatch::Regex(re) => re.is_match(path),
        };
        path_ok
            && r.headers.iter().all(|c| {
                let v = headers.get_str(&c.name);
                let ok = match (&c.test, v) {
                    (_, None) => false,
                    (HeaderTest::Present, Some(_)) => true,
                    (HeaderTest::Exact(x), Some(v)) => v == x,
                    (HeaderTest::Prefix(x), Some(v)) => v.starts_with(x.as_str()),
                    (HeaderTest::Suffix(x), Some(v)) => v.ends_with(x.as_str()),
                    (HeaderTest::Contains(x), Some(v)) => v.contains(x.as_str()),
                };
                ok != c.invert
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert!(domain_matches("*", "x"));
        assert!(domain_matches("*.example.com", "a.example.com:8080"));
        assert!(domain_matches("api.*", "api.local"));
        assert!(!domain_matches("example.com", "other.com"));
    }
}
