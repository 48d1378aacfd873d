//! Which resources the server serves, and what a name typed by a user means.
//!
//! Discovery asks `/api` and `/apis` for aggregated discovery
//! (`apidiscovery.k8s.io/v2`, two requests for the whole cluster) and falls back to
//! the legacy documents (`/api/v1`, `/apis/<group>/<version>` one by one) when the
//! server answers in the old format.
//!
//! Names resolve as kubectl resolves them: `deployments`, `deployment`, `deploy`,
//! `Deployment`, and group-qualified `deployments.apps` or `deployments.v1.apps`;
//! preferred versions first, the core group before the others.

use crate::client::{Client, Request};
use crate::error::Error;
use serde_json::Value;

const ACCEPT_AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

/// One resource at one group/version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The URL segment, e.g. `deployments`.
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    /// Whether `version` is the group's preferred version.
    pub preferred: bool,
}

impl ApiResource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `deployments.apps`, `pods`: how errors name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// `deployment.apps`, `pod`: the prefix of `kind/name` output.
    pub fn kind_group(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() { kind } else { format!("{kind}.{}", self.group) }
    }

    /// The collection path: in one namespace, or across all of them (`None`).
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{base}/namespaces/{}/{}", crate::client::encode(ns), self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }

    /// The path of one object.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{}", self.collection_path(namespace), crate::client::encode(name))
    }
}

/// Everything the server serves, in resolution order.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub resources: Vec<ApiResource>,
}

impl Discovery {
    /// Asks the server.
    pub async fn fetch(client: &Client) -> Result<Self, Error> {
        let mut resources = Vec::new();
        for (root, core) in [("/api", true), ("/apis", false)] {
            let resp = client.send(Request::get(root).accept(ACCEPT_AGGREGATED)).await?;
            let aggregated = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.contains("as=APIGroupDiscoveryList"));
            let bytes = resp
                .into_body()
                .collect_bytes()
                .await
                .map_err(|e| crate::client::transport_error(client.server(), &e))?;
            let doc: Value = serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
                what: format!("GET {root}"),
                code: 200,
                detail: e.to_string(),
            })?;
            if aggregated {
                resources.extend(parse_aggregated(&doc));
            } else {
                resources.extend(legacy(client, &doc, core).await?);
            }
        }
        Ok(Self { resources })
    }

    /// Resolves what a user typed (`deploy`, `deployments.apps`, `Deployment`, …).
    pub fn resolve(&self, name: &str) -> Result<&ApiResource, Error> {
        let lower = name.to_lowercase();
        if let Some((base, rest)) = lower.split_once('.')
            && let Some(r) = self.find(base, |r| r.group == rest || format!("{}.{}", r.version, r.group) == rest)
        {
            return Ok(r);
        }
        self.find(&lower, |_| true).ok_or_else(|| Error::UnknownResource(name.to_string()))
    }

    /// The first resource (preferred versions first) whose plural, singular, short
    /// name or kind is `name`, in that order of precedence, among those `filter` keeps.
    fn find(&self, name: &str, filter: impl Fn(&ApiResource) -> bool) -> Option<&ApiResource> {
        let ordered =
            || self.resources.iter().filter(|r| r.preferred).chain(self.resources.iter().filter(|r| !r.preferred));
        let matchers: [&dyn Fn(&ApiResource) -> bool; 4] =
            [&|r| r.plural == name, &|r| r.singular == name, &|r| r.short_names.iter().any(|s| s == name), &|r| {
                r.kind.to_lowercase() == name
            }];
        matchers.iter().find_map(|m| ordered().find(|r| filter(r) && m(r)))
    }

    /// The resource of an object's `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ApiResource> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.resources.iter().find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// The preferred-version resources of a category (`all`).
    pub fn category(&self, category: &str) -> Vec<&ApiResource> {
        self.resources.iter().filter(|r| r.preferred && r.categories.iter().any(|c| c == category)).collect()
    }
}

/// Reads an `APIGroupDiscoveryList`.
pub fn parse_aggregated(doc: &Value) -> Vec<ApiResource> {
    let mut out = Vec::new();
    for group in doc.get("items").and_then(Value::as_array).into_iter().flatten() {
        let group_name = group.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let versions = group.get("versions").and_then(Value::as_array).cloned().unwrap_or_default();
        // The first version that is not stale is the preferred one.
        let preferred = versions
            .iter()
            .find(|v| v.get("freshness").and_then(Value::as_str) != Some("Stale"))
            .and_then(|v| v.get("version").and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        for v in &versions {
            let version = v.get("version").and_then(Value::as_str).unwrap_or("");
            for r in v.get("resources").and_then(Value::as_array).into_iter().flatten() {
                let kind = r.pointer("/responseKind/kind").and_then(Value::as_str).unwrap_or("");
                let plural = r.get("resource").and_then(Value::as_str).unwrap_or("");
                if kind.is_empty() || plural.is_empty() {
                    continue; // as client-go: a resource without responseKind is dropped
                }
                out.push(ApiResource {
                    group: group_name.to_string(),
                    version: version.to_string(),
                    kind: kind.to_string(),
                    plural: plural.to_string(),
                    singular: str_field(r, "singularResource").unwrap_or_else(|| kind.to_lowercase()),
                    namespaced: r.get("scope").and_then(Value::as_str) == Some("Namespaced"),
                    short_names: strings(r.get("shortNames")),
                    categories: strings(r.get("categories")),
                    verbs: strings(r.get("verbs")),
                    preferred: version == preferred,
                });
            }
        }
    }
    out
}

/// Legacy discovery: `/api` lists versions, `/apis` groups; each group version has
/// its own `APIResourceList`.
async fn legacy(client: &Client, root: &Value, core: bool) -> Result<Vec<ApiResource>, Error> {
    let mut gvs: Vec<(String, String, bool)> = Vec::new();
    if core {
        for (i, v) in root.get("versions").and_then(Value::as_array).into_iter().flatten().enumerate() {
            if let Some(v) = v.as_str() {
                gvs.push((String::new(), v.to_string(), i == 0));
            }
        }
    } else {
        for g in root.get("groups").and_then(Value::as_array).into_iter().flatten() {
            let name = str_field(g, "name").unwrap_or_default();
            let preferred = g.pointer("/preferredVersion/version").and_then(Value::as_str).unwrap_or("").to_string();
            for v in g.get("versions").and_then(Value::as_array).into_iter().flatten() {
                let version = str_field(v, "version").unwrap_or_default();
                let is_preferred = version == preferred;
                gvs.push((name.clone(), version, is_preferred));
            }
        }
    }
    let mut out = Vec::new();
    for (group, version, preferred) in gvs {
        let path = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        let list = client.json(Request::get(path)).await?;
        out.extend(parse_resource_list(&group, &version, preferred, &list));
    }
    Ok(out)
}

/// Reads a legacy `APIResourceList` (subresources like `pods/log` are skipped).
pub fn parse_resource_list(group: &str, version: &str, preferred: bool, list: &Value) -> Vec<ApiResource> {
    let mut out = Vec::new();
    for r in list.get("resources").and_then(Value::as_array).into_iter().flatten() {
        let plural = str_field(r, "name").unwrap_or_default();
        let kind = str_field(r, "kind").unwrap_or_default();
        if plural.is_empty() || plural.contains('/') || kind.is_empty() {
            continue;
        }
        out.push(ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            singular: str_field(r, "singularName").filter(|s| !s.is_empty()).unwrap_or_else(|| kind.to_lowercase()),
            kind,
            plural,
            namespaced: r.get("namespaced").and_then(Value::as_bool).unwrap_or(false),
            short_names: strings(r.get("shortNames")),
            categories: strings(r.get("categories")),
            verbs: strings(r.get("verbs")),
            preferred,
        });
    }
    out
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A trimmed copy of what rk-server's `/api` and `/apis` answer.
    fn discovery() -> Discovery {
        let core = json!({"kind":"APIGroupDiscoveryList","items":[{"metadata":{"creationTimestamp":null},"versions":[{"version":"v1","freshness":"Current","resources":[
            {"resource":"pods","responseKind":{"group":"","kind":"Pod","version":"v1"},"scope":"Namespaced","shortNames":["po"],"singularResource":"pod","categories":["all"]},
            {"resource":"namespaces","responseKind":{"group":"","kind":"Namespace","version":"v1"},"scope":"Cluster","shortNames":["ns"],"singularResource":"namespace"},
            {"resource":"events","responseKind":{"group":"","kind":"Event","version":"v1"},"scope":"Namespaced","shortNames":["ev"],"singularResource":"event"},
            {"resource":"broken","scope":"Namespaced"}]}]}]});
        let groups = json!({"kind":"APIGroupDiscoveryList","items":[
            {"metadata":{"name":"apps"},"versions":[{"version":"v1","resources":[
                {"resource":"deployments","responseKind":{"group":"apps","kind":"Deployment","version":"v1"},"scope":"Namespaced","shortNames":["deploy"],"singularResource":"deployment","categories":["all"]}]},
              {"version":"v1beta1","resources":[
                {"resource":"deployments","responseKind":{"group":"apps","kind":"Deployment","version":"v1beta1"},"scope":"Namespaced","singularResource":"deployment"}]}]},
            {"metadata":{"name":"events.k8s.io"},"versions":[{"version":"v1","resources":[
                {"resource":"events","responseKind":{"group":"events.k8s.io","kind":"Event","version":"v1"},"scope":"Namespaced","shortNames":["ev"],"singularResource":"event"}]}]}]});
        let mut resources = parse_aggregated(&core);
        resources.extend(parse_aggregated(&groups));
        Discovery { resources }
    }

    #[test]
    fn names_resolve_like_kubectl() {
        let d = discovery();
        for name in
            ["deployments", "deployment", "deploy", "Deployment", "DEPLOY", "deployments.apps", "deployments.v1.apps"]
        {
            let r = d.resolve(name).unwrap();
            assert_eq!((r.kind.as_str(), r.version.as_str()), ("Deployment", "v1"), "{name}");
        }
        assert_eq!(d.resolve("deployments.v1beta1.apps").unwrap().version, "v1beta1");
        assert_eq!(d.resolve("po").unwrap().plural, "pods");
        assert!(!d.resolve("ns").unwrap().namespaced);
        // The core group comes first for names served twice.
        assert_eq!(d.resolve("ev").unwrap().group, "");
        assert_eq!(d.resolve("events.events.k8s.io").unwrap().group, "events.k8s.io");
        assert!(d.resolve("broken").is_err(), "a resource without responseKind is dropped");
        assert_eq!(d.resolve("depoy").unwrap_err().line(), r#"error: the server doesn't have a resource type "depoy""#);
        assert!(d.resolve("deployments.batch").is_err());
    }

    #[test]
    fn kinds_categories_and_paths() {
        let d = discovery();
        let deploy = d.by_kind("apps/v1", "Deployment").unwrap();
        assert_eq!(deploy.object_path(Some("default"), "web"), "/apis/apps/v1/namespaces/default/deployments/web");
        assert_eq!(deploy.collection_path(None), "/apis/apps/v1/deployments");
        assert_eq!((deploy.qualified(), deploy.kind_group()), ("deployments.apps".into(), "deployment.apps".into()));
        let ns = d.by_kind("v1", "Namespace").unwrap();
        assert_eq!(ns.object_path(Some("ignored"), "kube-system"), "/api/v1/namespaces/kube-system");
        assert!(d.by_kind("apps/v2", "Deployment").is_none());
        let all: Vec<&str> = d.category("all").iter().map(|r| r.plural.as_str()).collect();
        assert_eq!(all, ["pods", "deployments"]);
    }

    #[test]
    fn legacy_resource_lists() {
        let list = json!({"kind":"APIResourceList","groupVersion":"apps/v1","resources":[
            {"name":"deployments","singularName":"deployment","namespaced":true,"kind":"Deployment","shortNames":["deploy"],"categories":["all"]},
            {"name":"deployments/scale","singularName":"","namespaced":true,"group":"autoscaling","version":"v1","kind":"Scale"}]});
        let rs = parse_resource_list("apps", "v1", true, &list);
        assert_eq!(rs.len(), 1);
        assert_eq!((rs[0].plural.as_str(), rs[0].short_names.clone()), ("deployments", vec!["deploy".to_string()]));
    }
}
