//! Node authorization and NodeRestriction: what a node agent's credentials
//! (`system:node:<name>` in group `system:nodes`) may touch, beyond the `system:node`
//! role RBAC gives every node.
//!
//! As Kubernetes' Node authorizer and NodeRestriction admission plugin have it:
//! - **reads of Secrets, ConfigMaps and PersistentVolumeClaims** (`get` only) are allowed
//!   when a pod bound to the node uses the object (volumes, projected sources, `env`,
//!   `envFrom`, image pull secrets); listing or watching them is refused, so a node
//!   cannot read other nodes' pods' Secrets; a Secret an Ingress names in `spec.tls` is
//!   readable by every node too (`get` only), as every node's agent can serve Ingress
//!   over TLS (an ingress controller reads such Secrets in Kubernetes as well);
//! - **writes to Nodes and Leases** only to its own (`nodes/<name>`, its status, and the
//!   `kube-node-lease/<name>` Lease);
//! - **pod writes** (status, deletion, eviction) only to pods bound to it; no pod
//!   creation (mirror pods are not served);
//! - **registering a Node** (`POST /api/v1/nodes`) only under its own name;
//! - **ServiceAccount tokens** (TokenRequest) only bound to a pod bound to it that runs
//!   as that ServiceAccount.
//!
//! [`decide`] returns `Some(refusal)` for what this forbids and `None` to leave the
//! request to RBAC; the last two need the request's body, which [`admit_body`] reads
//! (the RBAC layer hands it the body of the requests [`inspects_body`] names). Its pod lookups read this replica's store (no ReadIndex): a pod is
//! bound before its node sees it, so the node's own reads are never ahead of it.

use super::error::ApiError;
use super::rbac::{Attributes, Identity, NODES};
use super::registry;
use super::rest::Api;
use super::store::Freshness;
use serde_json::Value;

/// The node a request's identity is, if it is a node's.
pub fn node_of(id: &Identity) -> Option<&str> {
    let name = id.user.strip_prefix("system:node:")?;
    (!name.is_empty() && id.groups.iter().any(|g| g == NODES)).then_some(name)
}

/// What the Node authorizer and NodeRestriction refuse `node` (see the module docs);
/// `None` when the request is RBAC's to decide.
pub async fn decide(api: &Api, node: &str, a: &Attributes) -> Result<Option<String>, ApiError> {
    if a.path.is_some() {
        return Ok(None);
    }
    let deny = |why: String| Ok(Some(why));
    let group = a.api_group.as_str();
    let sub = a.subresource.as_str();
    match (group, a.resource.as_str()) {
        ("", "secrets" | "configmaps" | "persistentvolumeclaims") => {
            if a.verb != "get" || a.name.is_empty() {
                return deny(format!("nodes may only get individual {} their pods use", a.resource));
            }
            if uses(api, node, &a.namespace, &a.resource, &a.name).await?
                || (a.resource == "secrets" && ingress_tls_uses(api, &a.namespace, &a.name).await?)
            {
                Ok(None)
            } else {
                deny(format!("no relationship found between node '{node}' and this object"))
            }
        }
        ("", "nodes") => {
            let writes = !matches!(a.verb.as_str(), "get" | "list" | "watch");
            if writes && a.name != node && !(a.verb == "create" && a.name.is_empty()) {
                return deny(format!("node '{node}' may only modify its own Node"));
            }
            Ok(None)
        }
        ("coordination.k8s.io", "leases") => {
            let writes = !matches!(a.verb.as_str(), "get" | "list" | "watch");
            if writes && (a.namespace != "kube-node-lease" || (a.name != node && !a.name.is_empty())) {
                return deny(format!("node '{node}' may only modify its own Lease in kube-node-lease"));
            }
            Ok(None)
        }
        ("", "pods") => {
            let writes = !matches!(a.verb.as_str(), "get" | "list" | "watch");
            if !writes {
                return Ok(None);
            }
            if a.verb == "create" && sub.is_empty() {
                return deny(format!("node '{node}' may not create pods"));
            }
            if a.name.is_empty() || bound_to(api, &a.namespace, &a.name).await?.as_deref() != Some(node) {
                return deny(format!("node '{node}' may only modify pods bound to it"));
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Whether the node's request `a` can be judged only with its body: a Node created
/// (which name?) or a ServiceAccount token requested (bound to which pod?).
pub fn inspects_body(a: &Attributes) -> bool {
    a.path.is_none()
        && a.verb == "create"
        && a.api_group.is_empty()
        && matches!((a.resource.as_str(), a.subresource.as_str()), ("nodes", "") | ("serviceaccounts", "token"))
}

/// What NodeRestriction refuses `node` given the body (`None`: allowed so far) of a
/// request [`inspects_body`] names.
pub async fn admit_body(api: &Api, node: &str, a: &Attributes, body: &Value) -> Result<Option<String>, ApiError> {
    match a.resource.as_str() {
        "nodes" => {
            let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            if name == node {
                Ok(None)
            } else {
                Ok(Some(format!("node '{node}' may only register a Node named '{node}', not '{name}'")))
            }
        }
        "serviceaccounts" => {
            let bound = &body["spec"]["boundObjectRef"];
            if bound["kind"].as_str() != Some("Pod") {
                return Ok(Some(format!("node '{node}' may only request tokens bound to pods")));
            }
            let pod_name = bound["name"].as_str().unwrap_or("");
            let Some(pods) = registry::lookup("pods") else { return Ok(Some("pods are not served".into())) };
            let pod = match api.get(pods, Some(&a.namespace), pod_name, Freshness::Any).await {
                Ok(s) => s.object()?,
                Err(ApiError::NotFound { .. }) => {
                    return Ok(Some(format!("node '{node}' may not request a token for a pod that does not exist")));
                }
                Err(e) => return Err(e),
            };
            let spec = &pod["spec"];
            if spec["nodeName"].as_str() != Some(node) {
                return Ok(Some(format!("node '{node}' may only request tokens for pods bound to it")));
            }
            let account = spec["serviceAccountName"].as_str().filter(|s| !s.is_empty()).unwrap_or("default");
            if account != a.name {
                return Ok(Some(format!("pod '{pod_name}' runs as service account '{account}', not '{}'", a.name)));
            }
            let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
            match bound["uid"].as_str() {
                Some(want) if !want.is_empty() && want != uid => {
                    Ok(Some(format!("the bound pod's UID {want} is not pod '{pod_name}''s")))
                }
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// The node pod `ns/name` is bound to (`None` when it is unbound or missing).
async fn bound_to(api: &Api, ns: &str, name: &str) -> Result<Option<String>, ApiError> {
    let Some(pods) = registry::lookup("pods") else { return Ok(None) };
    match api.get(pods, Some(ns), name, Freshness::Any).await {
        Ok(s) => Ok(s.object()?.pointer("/spec/nodeName").and_then(Value::as_str).map(String::from)),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a pod bound to `node` in `ns` uses `resource/name`.
async fn uses(api: &Api, node: &str, ns: &str, resource: &str, name: &str) -> Result<bool, ApiError> {
    let Some(pods) = registry::lookup("pods") else { return Ok(false) };
    let opts =
        super::query::ListOptions { field_selector: Some(format!("spec.nodeName={node}")), ..Default::default() };
    let list = api.list(pods, Some(ns), &opts, Freshness::Any).await?;
    for item in &list.page.items {
        if references(&item.object()?, resource, name) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether an Ingress in `ns` names Secret `name` in its `spec.tls`.
async fn ingress_tls_uses(api: &Api, ns: &str, name: &str) -> Result<bool, ApiError> {
    let Some(ingresses) = registry::lookup("ingresses") else { return Ok(false) };
    let list = api.list(ingresses, Some(ns), &super::query::ListOptions::default(), Freshness::Any).await?;
    for item in &list.page.items {
        let ing = item.object()?;
        let tls = ing.pointer("/spec/tls").and_then(Value::as_array).into_iter().flatten();
        if tls.into_iter().any(|t| t["secretName"].as_str() == Some(name)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `pod` names `resource/name` anywhere a kubelet reads one from.
pub fn references(pod: &Value, resource: &str, name: &str) -> bool {
    let spec = &pod["spec"];
    let is = |v: &Value| v.as_str() == Some(name);
    let volumes = spec["volumes"].as_array().into_iter().flatten();
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten());
    match resource {
        "secrets" => {
            spec["imagePullSecrets"].as_array().into_iter().flatten().any(|s| is(&s["name"]))
                || volumes.into_iter().any(|v| {
                    is(&v["secret"]["secretName"])
                        || projected(v).any(|s| is(&s["secret"]["name"]))
                        || ["cephfs", "cinder", "flexVolume", "iscsi", "rbd", "azureFile", "scaleIO", "storageos"]
                            .iter()
                            .any(|k| is(&v[*k]["secretRef"]["name"]))
                })
                || containers.into_iter().any(|c| env_refs(c, "secretRef", "secretKeyRef", name))
        }
        "configmaps" => {
            volumes
                .into_iter()
                .any(|v| is(&v["configMap"]["name"]) || projected(v).any(|s| is(&s["configMap"]["name"])))
                || containers.into_iter().any(|c| env_refs(c, "configMapRef", "configMapKeyRef", name))
        }
        "persistentvolumeclaims" => volumes.into_iter().any(|v| is(&v["persistentVolumeClaim"]["claimName"])),
        _ => false,
    }
}

/// A projected volume's sources.
fn projected(v: &Value) -> impl Iterator<Item = &Value> {
    v["projected"]["sources"].as_array().into_iter().flatten()
}

/// Whether container `c` takes `name` through `envFrom[].<from>` or `env[].valueFrom.<key>`.
fn env_refs(c: &Value, from: &str, key: &str, name: &str) -> bool {
    c["envFrom"].as_array().into_iter().flatten().any(|e| e[from]["name"].as_str() == Some(name))
        || c["env"].as_array().into_iter().flatten().any(|e| e["valueFrom"][key]["name"].as_str() == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_reference_what_a_kubelet_reads() {
        let pod = json!({"spec": {
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "vol"}},
                {"name": "b", "configMap": {"name": "cm-vol"}},
                {"name": "c", "projected": {"sources": [{"secret": {"name": "proj"}}, {"configMap": {"name": "cm-proj"}}]}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
            ],
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{"name": "c", "env": [
                {"name": "X", "valueFrom": {"secretKeyRef": {"name": "key", "key": "k"}}},
                {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}},
            ], "envFrom": [{"configMapRef": {"name": "cm-env"}}]}],
        }});
        for s in ["pull", "vol", "proj", "init-env", "key"] {
            assert!(references(&pod, "secrets", s), "{s}");
        }
        for c in ["cm-vol", "cm-proj", "cm-key", "cm-env"] {
            assert!(references(&pod, "configmaps", c), "{c}");
        }
        assert!(references(&pod, "persistentvolumeclaims", "data"));
        assert!(!references(&pod, "secrets", "cm-vol"), "a ConfigMap's name is not a Secret's");
        assert!(!references(&pod, "secrets", "other"));
        assert!(!references(&json!({}), "configmaps", "x"));
    }

    #[test]
    fn node_identities_need_the_group() {
        let node = Identity { user: "system:node:a".into(), groups: vec![NODES.into()] };
        assert_eq!(node_of(&node), Some("a"));
        let impostor = Identity { user: "system:node:a".into(), groups: vec![] };
        assert_eq!(node_of(&impostor), None);
        let empty = Identity { user: "system:node:".into(), groups: vec![NODES.into()] };
        assert_eq!(node_of(&empty), None);
    }
}
