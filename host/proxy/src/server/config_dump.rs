//! `/config_dump`, in Envoy's shape: the bootstrap, then the static clusters, listeners and route
//! configurations as `envoy.admin.v3.*ConfigDump` messages, written with proto field names and
//! one-space indentation as Envoy writes them. `?resource=` lists the items of one field
//! (`static_listeners`); `?mask=` keeps the fields a `FieldMask` names.

use serde_yaml_ng::{Mapping, Value};

use sluice_core::calendar::UtcTime;

/// The admin API's type URL prefix.
const ADMIN: &str = "type.googleapis.com/envoy.admin.v3.";

/// A built dump: the `configs` entries, each `(message type, entry)`.
#[derive(Debug, Clone)]
pub(super) struct ConfigDump {
    configs: Vec<(&'static str, Value)>,
}

/// `ClustersConfigDump.static_clusters` and its kin: which dump holds them, the item's field and
/// type, and the item's type URL.
const RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("ClustersConfigDump", "static_clusters", "cluster", "envoy.config.cluster.v3.Cluster"),
    ("ListenersConfigDump", "static_listeners", "listener", "envoy.config.listener.v3.Listener"),
    ("RoutesConfigDump", "static_route_configs", "route_config", "envoy.config.route.v3.RouteConfiguration"),
];

/// The item message of each resource field, as in `?resource=` answers.
fn item_type(field: &str) -> Option<&'static str> {
    Some(match field {
        "static_clusters" => "ClustersConfigDump.StaticCluster",
        "static_listeners" => "ListenersConfigDump.StaticListener",
        "static_route_configs" => "RoutesConfigDump.StaticRouteConfig",
        _ => return None,
    })
}

impl ConfigDump {
    /// The dump of `bootstrap` (canonical form), loaded at `loaded`, for the node `(id, cluster)`.
    pub(super) fn new(bootstrap: &Value, node: &sluice_core::vm::NodeInfo, loaded: std::time::SystemTime) -> Self {
        let stamp = Value::from(UtcTime::of(loaded).iso8601_millis());
        let mut boot = bootstrap.as_mapping().cloned().unwrap_or_default();
        boot.insert("node".into(), node_of(boot.get("node"), node));
        let mut first = Mapping::new();
        first.insert("@type".into(), format!("{ADMIN}BootstrapConfigDump").into());
        first.insert("bootstrap".into(), Value::Mapping(boot));
        first.insert("last_updated".into(), stamp.clone());
        let mut configs = vec![("BootstrapConfigDump", Value::Mapping(first))];
        let statics = bootstrap.get("static_resources");
        let list =
            |name: &str| statics.and_then(|s| s.get(name)).and_then(Value::as_sequence).cloned().unwrap_or_default();
        let routes: Vec<Value> = list("listeners").iter().flat_map(inline_route_configs).collect();
        for (dump, field, item, type_name) in RESOURCES {
            let items = match *field {
                "static_clusters" => list("clusters"),
                "static_listeners" => list("listeners"),
                _ => routes.clone(),
            };
            let mut entry = Mapping::new();
            entry.insert("@type".into(), format!("{ADMIN}{dump}").into());
            if !items.is_empty() {
                let wrapped = items.into_iter().map(|v| {
                    let mut m = Mapping::new();
                    m.insert((*item).into(), typed(&v, type_name));
                    m.insert("last_updated".into(), stamp.clone());
                    Value::Mapping(m)
                });
                entry.insert((*field).into(), Value::Sequence(wrapped.collect()));
            }
            configs.push((dump, Value::Mapping(entry)));
            if *dump == "ListenersConfigDump" {
                configs.push(("ScopedRoutesConfigDump", only_type("ScopedRoutesConfigDump")));
            }
        }
        configs.push(("SecretsConfigDump", only_type("SecretsConfigDump")));
        Self { configs }
    }

    /// The answer to `/config_dump?query`: status and body.
    pub(super) fn answer(&self, query: Option<&str>) -> (u16, String) {
        let param = |name: &str| {
            query.into_iter().flat_map(|q| q.split('&')).find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        };
        let mask: Option<Vec<&str>> = param("mask").map(|m| m.split(',').filter(|p| !p.is_empty()).collect());
        let configs: Vec<Value> = match param("resource") {
            Some(resource) => {
                let Some(item) = item_type(resource) else {
                    return if resource.starts_with("dynamic_") {
                        (200, "{}\n".to_string())
                    } else {
                        (404, format!("{resource} not found in config dump"))
                    };
                };
                let items = self
                    .configs
                    .iter()
                    .filter_map(|(_, c)| c.get(resource))
                    .flat_map(|v| v.as_sequence().cloned().unwrap_or_default());
                let items = items.map(|v| {
                    let mut m = Mapping::new();
                    m.insert("@type".into(), format!("{ADMIN}{item}").into());
                    m.extend(v.as_mapping().cloned().unwrap_or_default());
                    let v = Value::Mapping(m);
                    match &mask {
                        Some(paths) => masked(&v, paths),
                        None => v,
                    }
                });
                items.collect()
            }
            None => match &mask {
                Some(paths) => {
                    let applies = |dump: &str| {
                        paths.iter().all(|p| crate::config::has_field_path(&format!("envoy.admin.v3.{dump}"), p))
                    };
                    let kept: Vec<Value> =
                        self.configs.iter().filter(|(d, _)| applies(d)).map(|(_, c)| masked(c, paths)).collect();
                    if kept.is_empty() {
                        return (
                            400,
                            format!("FieldMask {} could not be successfully applied to any configs.", paths.join(",")),
                        );
                    }
                    kept
                }
                None => self.configs.iter().map(|(_, c)| c.clone()).collect(),
            },
        };
        let mut top = Mapping::new();
        top.insert("configs".into(), Value::Sequence(configs));
        (200, pretty(&Value::Mapping(top)))
    }
}

/// The bootstrap's `node` with the identity in effect (`--service-node` and `--service-cluster`
/// override the file, as in Envoy) and the user agent, as Envoy fills it in.
fn node_of(
    written: Option<&Value>,
    sluice_core::vm::NodeInfo { id, cluster, .. }: &sluice_core::vm::NodeInfo,
) -> Value {
    let mut node = Mapping::new();
    if !id.is_empty() {
        node.insert("id".into(), id.as_str().into());
    }
    if !cluster.is_empty() {
        node.insert("cluster".into(), cluster.as_str().into());
    }
    if let Some(Value::Mapping(m)) = written {
        for (k, v) in m {
            if !matches!(k.as_str(), Some("id" | "cluster")) {
                node.insert(k.clone(), v.clone());
            }
        }
    }
    node.insert("user_agent_name".into(), "envoy".into());
    let version: Value = serde_yaml_ng::from_str(&format!(
        "{{version: {{major_number: 1, minor_number: 40}}, metadata: {{build.type: RELEASE, sluice.version: '{}'}}}}",
        env!("CARGO_PKG_VERSION")
    ))
    .unwrap_or_default();
    node.insert("user_agent_build_version".into(), version);
    Value::Mapping(node)
}

/// The route configurations written inline in a listener's connection managers.
fn inline_route_configs(listener: &Value) -> Vec<Value> {
    let chains = listener.get("filter_chains").and_then(Value::as_sequence).cloned().unwrap_or_default();
    chains
        .iter()
        .flat_map(|c| c.get("filters").and_then(Value::as_sequence).cloned().unwrap_or_default())
        .filter_map(|f| f.get("typed_config")?.get("route_config").cloned())
        .collect()
}

/// `v` as an `Any` of `type_name`: `@type` first.
fn typed(v: &Value, type_name: &str) -> Value {
    let mut m = Mapping::new();
    m.insert("@type".into(), format!("type.googleapis.com/{type_name}").into());
    m.extend(v.as_mapping().cloned().unwrap_or_default());
    Value::Mapping(m)
}

/// A dump that has nothing but its type.
fn only_type(dump: &str) -> Value {
    let mut m = Mapping::new();
    m.insert("@type".into(), format!("{ADMIN}{dump}").into());
    Value::Mapping(m)
}

/// The fields of `v` that `paths` name (`a.b`), through lists, with every `@type` kept.
fn masked(v: &Value, paths: &[&str]) -> Value {
    match v {
        Value::Sequence(items) => Value::Sequence(items.iter().map(|i| masked(i, paths)).collect()),
        Value::Mapping(m) => {
            let mut out = Mapping::new();
            for (k, child) in m {
                let Some(key) = k.as_str() else { continue };
                if key == "@type" {
                    out.insert(k.clone(), child.clone());
                    continue;
                }
                let rest: Vec<&str> = paths
                    .iter()
                    .filter_map(|p| match p.split_once('.') {
                        Some((head, tail)) if head == key => Some(tail),
                        None if *p == key => Some(""),
                        _ => None,
                    })
                    .collect();
                if rest.contains(&"") {
                    out.insert(k.clone(), child.clone());
                } else if !rest.is_empty() {
                    out.insert(k.clone(), masked(child, &rest));
                }
            }
            Value::Mapping(out)
        }
        other => other.clone(),
    }
}

/// JSON with one-space indentation, as Envoy prints its dumps.
fn pretty(v: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b" "));
    match serde::Serialize::serialize(v, &mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"error\": \"{e}\"}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump() -> ConfigDump {
        let boot: Value = serde_yaml_ng::from_str(
            "static_resources:\n  listeners:\n  - name: l\n    filter_chains:\n    - filters:\n      - name: hcm\n        typed_config: {'@type': x, route_config: {name: r}}\n  clusters:\n  - name: c\n    type: STATIC\n",
        )
        .unwrap();
        let node = sluice_core::vm::NodeInfo { id: "n".into(), ..Default::default() };
        ConfigDump::new(&boot, &node, std::time::UNIX_EPOCH)
    }

    #[test]
    fn envoys_six_dumps_in_order_with_inline_routes() {
        let (status, body) = dump().answer(None);
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let types: Vec<&str> = v["configs"].as_array().unwrap().iter().map(|c| c["@type"].as_str().unwrap()).collect();
        let short: Vec<&str> = types.iter().map(|t| t.trim_start_matches(ADMIN)).collect();
        assert_eq!(
            short,
            [
                "BootstrapConfigDump",
                "ClustersConfigDump",
                "ListenersConfigDump",
                "ScopedRoutesConfigDump",
                "RoutesConfigDump",
                "SecretsConfigDump"
            ]
        );
        assert_eq!(v["configs"][0]["bootstrap"]["node"]["id"], "n");
        assert_eq!(v["configs"][4]["static_route_configs"][0]["route_config"]["name"], "r");
        assert_eq!(v["configs"][0]["last_updated"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn resource_and_mask_select() {
        let (_, body) = dump().answer(Some("resource=static_clusters&mask=cluster.name"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["configs"][0],
            serde_json::json!({"@type": format!("{ADMIN}ClustersConfigDump.StaticCluster"), "cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "c"}})
        );
        assert_eq!(dump().answer(Some("resource=nothing")).0, 404);
        assert_eq!(dump().answer(Some("resource=dynamic_listeners")), (200, "{}\n".to_string()));
        assert_eq!(dump().answer(Some("mask=bootstrap.node.id,static_listeners.listener.name")).0, 400);
    }
}
