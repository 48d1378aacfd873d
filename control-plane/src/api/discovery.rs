//! Discovery: what kubectl asks first. `/version`, the legacy discovery documents
//! (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`), and aggregated
//! discovery (one document with every resource, when the client asks for
//! `apidiscovery.k8s.io/v2` or `v2beta1`).

use super::registry::{self, RESOURCES, Resource, VERBS};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// The Kubernetes version rk reports. kubectl picks a compatible client from it.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const KUBE_GIT_VERSION: &str = "v1.33.0-rk";

pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-11-25T00:00:00Z",
        "goVersion": "rk (Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

fn json_response(value: &Value, content_type: &'static str) -> Response {
    let mut resp = (StatusCode::OK, serde_json::to_vec(value).unwrap_or_default()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn resource_entry(r: &Resource) -> Value {
    let mut e = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": VERBS,
        "storageVersionHash": storage_version_hash(r),
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if r.in_all {
        e["categories"] = json!(["all"]);
    }
    e
}

/// A short stable hash kubectl uses only to notice storage changes.
fn storage_version_hash(r: &Resource) -> String {
    let h = crc32fast::hash(format!("{}/{}/{}", r.group, r.version, r.kind).as_bytes());
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h.to_be_bytes().repeat(2))[..11].to_string()
}

/// `/api/v1` or `/apis/<group>/<version>`: the APIResourceList.
pub fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        resources.push(resource_entry(r));
        for sub in r.subresources {
            let (kind, g, v, verbs) = sub.discovery(r);
            let mut e = json!({
                "name": format!("{}/{}", r.plural, sub.name()),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if g != r.group || v != r.version {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            resources.push(e);
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources })
}

pub fn resource_list_response(group: &str, version: &str) -> Response {
    json_response(&resource_list(group, version), "application/json")
}

/// `/api`: the core group's versions.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

/// `/apis`: every named group.
pub fn api_groups() -> Value {
    let groups: Vec<Value> = registry::groups()
        .into_iter()
        .map(|(g, v)| {
            let gv = json!({ "groupVersion": format!("{g}/{v}"), "version": v });
            json!({ "name": g, "versions": [gv.clone()], "preferredVersion": gv })
        })
        // Access reviews: answered, never stored.
        .chain(super::review::groups().into_iter().map(|(g, _)| super::review::api_group(g)))
        .chain(std::iter::once({
            // Served from the node agents' usage summaries, not from the store.
            let gv = json!({ "groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1" });
            json!({ "name": "metrics.k8s.io", "versions": [gv.clone()], "preferredVersion": gv })
        }))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// Which aggregated discovery version the client asked for, if any.
fn aggregated_version(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
    }
    None
}

fn discovery_group(group: &str) -> Value {
    let versions: Vec<&str> = {
        let mut v: Vec<&str> = RESOURCES.iter().filter(|r| r.group == group).map(|r| r.version).collect();
        v.dedup();
        v
    };
    let versions: Vec<Value> = versions
        .into_iter()
        .map(|version| {
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .map(|r| {
                    let subresources: Vec<Value> = r
                        .subresources
                        .iter()
                        .map(|s| {
                            let (kind, g, v, verbs) = s.discovery(r);
                            json!({
                                "subresource": s.name(),
                                "responseKind": { "group": g, "version": v, "kind": kind },
                                "verbs": verbs,
                            })
                        })
                        .collect();
                    let mut e = json!({
                        "resource": r.plural,
                        "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.singular,
                        "verbs": VERBS,
                    });
                    if !r.short_names.is_empty() {
                        e["shortNames"] = json!(r.short_names);
                    }
                    if r.in_all {
                        e["categories"] = json!(["all"]);
                    }
                    if !subresources.is_empty() {
                        e["subresources"] = json!(subresources);
                    }
                    e
                })
                .collect();
            json!({ "version": version, "resources": resources, "freshness": "Current" })
        })
        .collect();
    let mut item = json!({ "metadata": { "creationTimestamp": null }, "versions": versions });
    if !group.is_empty() {
        item["metadata"]["name"] = json!(group);
    }
    item
}

/// The metrics.k8s.io group in aggregated form.
fn metrics_group() -> Value {
    let resource = |name: &str, kind: &str, scope: &str| {
        json!({
            "resource": name,
            "responseKind": { "group": "metrics.k8s.io", "version": "v1beta1", "kind": kind },
            "scope": scope,
            "singularResource": "",
            "verbs": ["get", "list"],
        })
    };
    json!({
        "metadata": { "name": "metrics.k8s.io", "creationTimestamp": null },
        "versions": [{ "version": "v1beta1", "freshness": "Current", "resources": [
            resource("nodes", "NodeMetrics", "Cluster"),
            resource("pods", "PodMetrics", "Namespaced"),
        ]}],
    })
}

/// `/api` or `/apis`, in the format the client asked for.
pub fn root(headers: &HeaderMap, core: bool, server_address: &str) -> Response {
    if let Some(v) = aggregated_version(headers) {
        let items: Vec<Value> = if core {
            vec![discovery_group("")]
        } else {
            let mut groups: Vec<Value> = registry::groups().into_iter().map(|(g, _)| discovery_group(g)).collect();
            groups.extend(super::review::groups().into_iter().map(|(g, _)| super::review::discovery_group(g)));
            groups.push(metrics_group());
            groups
        };
        let doc = json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": format!("apidiscovery.k8s.io/{v}"),
            "metadata": {},
            "items": items,
        });
        let ct = if v == "v2" {
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        } else {
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        };
        return json_response(&doc, ct);
    }
    if core {
        json_response(&api_versions(server_address), "application/json")
    } else {
        json_response(&api_groups(), "application/json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_documents() {
        let core = resource_list("", "v1");
        let names: Vec<&str> =
            core["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"pods") && names.contains(&"pods/status") && names.contains(&"pods/binding"));
        let apps = resource_list("apps", "v1");
        let scale = apps["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["kind"], "Scale");
        let groups = api_groups();
        assert!(groups["groups"].as_array().unwrap().iter().any(|g| g["name"] == "apps"));
    }

    #[test]
    fn aggregated_when_asked() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            ),
        );
        assert_eq!(aggregated_version(&h), Some("v2"));
        let g = discovery_group("apps");
        assert_eq!(g["metadata"]["name"], "apps");
        assert_eq!(g["versions"][0]["resources"][0]["scope"], "Namespaced");
    }
}
