//! Load-balancer status: where LoadBalancer Services and Ingresses are reached,
//! written to their `status.loadBalancer.ingress`, as k3s' ServiceLB does with node
//! addresses (rk has no cloud load balancer: its nodes are the load balancer).
//!
//! - A Service of `type: LoadBalancer` without `spec.loadBalancerClass` (a class
//!   names another implementation) is served by every node's service proxy at the
//!   node's address on the Service's own ports (besides its node ports), so its status
//!   lists the InternalIPs of the Ready nodes labelled [`SERVICE_PROXY_LABEL`]. A
//!   Service that stops being one has its addresses removed.
//! - An Ingress of class `rk` or without a class lists the Ready nodes labelled
//!   [`INGRESS_LABEL`] (agents started with an Ingress listener).
//!
//! The agents set those labels when they register. [`addresses`] and [`desired`] are
//! pure; [`LoadBalancerController`] writes the `status` subresource when it differs.
//! Keys are `services/<ns>/<name>` or `ingresses/<ns>/<name>`; a node's change
//! requeues them all.

use super::act::update_with;
use super::runtime::{Action, ControllerError, Informer, Key, Reconciler};
use crate::api::registry;
use crate::api::rest::{Api, Target};
use serde_json::{Value, json};
use std::sync::Arc;

/// On Nodes whose agent serves LoadBalancer Services' ports at the node's address.
pub const SERVICE_PROXY_LABEL: &str = "node.rk.io/service-proxy";
/// On Nodes whose agent serves Ingress.
pub const INGRESS_LABEL: &str = "node.rk.io/ingress";
/// The IngressClass rk's agents serve by default.
pub const INGRESS_CLASS: &str = "rk";

/// What of a node its load-balancer addresses depend on: its two labels, whether it
/// is Ready, its addresses.
pub fn node_view(n: &Value) -> (Option<&Value>, Option<&Value>, bool, Option<&Value>) {
    let labels = n.pointer("/metadata/labels");
    let ready = n
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    (
        labels.and_then(|l| l.get(SERVICE_PROXY_LABEL)),
        labels.and_then(|l| l.get(INGRESS_LABEL)),
        ready,
        n.pointer("/status/addresses"),
    )
}

/// The InternalIPs (else the first address) of the Ready nodes labelled `label=true`,
/// sorted, without duplicates.
pub fn addresses(nodes: &[Arc<Value>], label: &str) -> Vec<String> {
    let mut out: Vec<String> = nodes
        .iter()
        .filter(|n| n.pointer("/metadata/labels").and_then(|l| l[label].as_str()) == Some("true"))
        .filter(|n| {
            n.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
        .filter_map(|n| {
            let addrs = n.pointer("/status/addresses").and_then(Value::as_array)?;
            let internal = addrs.iter().find(|a| a["type"] == "InternalIP").or_else(|| addrs.first())?;
            internal["address"].as_str().filter(|a| !a.is_empty()).map(String::from)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The `status.loadBalancer` that `obj` (a Service or an Ingress, per `resource`)
/// should have; None when this controller leaves it alone.
pub fn desired(resource: &str, obj: &Value, proxies: &[String], ingresses: &[String]) -> Option<Value> {
    let lb = |addrs: &[String]| {
        if addrs.is_empty() {
            json!({})
        } else {
            json!({"ingress": addrs.iter().map(|a| json!({"ip": a})).collect::<Vec<_>>()})
        }
    };
    match resource {
        "services" => {
            let spec = &obj["spec"];
            if spec["loadBalancerClass"].as_str().is_some_and(|c| !c.is_empty()) {
                return None;
            }
            if spec["type"].as_str() == Some("LoadBalancer") {
                Some(lb(proxies))
            } else {
                // No longer a LoadBalancer: nothing should claim an address for it.
                Some(json!({}))
            }
        }
        "ingresses" => {
            let class = obj
                .pointer("/spec/ingressClassName")
                .and_then(Value::as_str)
                .or_else(|| obj.pointer("/metadata/annotations/kubernetes.io~1ingress.class").and_then(Value::as_str));
            class.is_none_or(|c| c == INGRESS_CLASS).then(|| lb(ingresses))
        }
        _ => None,
    }
}

/// Whether two `status.loadBalancer` values say the same (absent = empty).
fn same(current: Option<&Value>, want: &Value) -> bool {
    let empty = json!({});
    let current = current.filter(|v| !v.is_null()).unwrap_or(&empty);
    let ingress = |v: &Value| v.get("ingress").filter(|i| i.as_array().is_some_and(|a| !a.is_empty())).cloned();
    ingress(current) == ingress(want)
}

pub struct LoadBalancerController {
    pub api: Api,
    pub services: Arc<Informer>,
    pub ingresses: Arc<Informer>,
    pub nodes: Arc<Informer>,
}

impl LoadBalancerController {
    /// Every key a node change can concern: LoadBalancer Services (and Services still
    /// showing addresses), and Ingresses.
    pub fn all_keys(&self) -> Vec<Key> {
        let services = self.services.list().into_iter().filter_map(|s| {
            let lb = s.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
                || s.pointer("/status/loadBalancer/ingress").is_some_and(|i| !i.is_null());
            lb.then(|| format!("services/{}", super::runtime::key_of(&s)))
        });
        services.chain(self.ingresses.keys().into_iter().map(|k| format!("ingresses/{k}"))).collect()
    }
}

#[tonic::async_trait]
impl Reconciler for LoadBalancerController {
    fn name(&self) -> &'static str {
        "loadbalancer-controller"
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ControllerError> {
        let Some((resource, rest)) = key.split_once('/') else { return Ok(Action::done()) };
        let informer = if resource == "services" { &self.services } else { &self.ingresses };
        let Some(obj) = informer.get(rest) else { return Ok(Action::done()) };
        let nodes = self.nodes.list();
        let want = desired(resource, &obj, &addresses(&nodes, SERVICE_PROXY_LABEL), &addresses(&nodes, INGRESS_LABEL));
        let Some(want) = want else { return Ok(Action::done()) };
        if same(obj.pointer("/status/loadBalancer"), &want) {
            return Ok(Action::done());
        }
        let Some(res) = registry::lookup(resource) else { return Ok(Action::done()) };
        let (ns, name) = super::runtime::split_key(rest);
        update_with(&self.api, res, ns, name, Target::Status, self.name(), move |o| {
            o["status"]["loadBalancer"] = want.clone();
        })
        .await?;
        Ok(Action::done())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ip: &str, ready: bool, labels: Value) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": name, "labels": labels},
            "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
    }

    #[test]
    fn addresses_are_the_ready_labelled_nodes_internal_ips() {
        let nodes = vec![
            node("b", "10.0.0.2", true, json!({SERVICE_PROXY_LABEL: "true", INGRESS_LABEL: "true"})),
            node("a", "10.0.0.1", true, json!({SERVICE_PROXY_LABEL: "true"})),
            node("c", "10.0.0.3", false, json!({SERVICE_PROXY_LABEL: "true", INGRESS_LABEL: "true"})),
            node("d", "10.0.0.4", true, json!({})),
        ];
        assert_eq!(addresses(&nodes, SERVICE_PROXY_LABEL), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(addresses(&nodes, INGRESS_LABEL), ["10.0.0.2"]);
    }

    #[test]
    fn load_balancers_get_the_addresses_and_others_none() {
        let proxies = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        let ingresses = vec!["10.0.0.2".to_string()];
        let svc = |spec: Value| json!({"spec": spec});
        let lb = desired("services", &svc(json!({"type": "LoadBalancer"})), &proxies, &ingresses).unwrap();
        assert_eq!(lb, json!({"ingress": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}));
        let other = json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/lb"});
        assert_eq!(desired("services", &svc(other), &proxies, &ingresses), None, "another implementation's");
        assert_eq!(desired("services", &svc(json!({"type": "ClusterIP"})), &proxies, &ingresses), Some(json!({})));
        assert_eq!(desired("services", &svc(json!({"type": "LoadBalancer"})), &[], &[]), Some(json!({})));
        let ing = |class: Option<&str>| json!({"spec": {"ingressClassName": class}});
        assert_eq!(
            desired("ingresses", &ing(None), &proxies, &ingresses),
            Some(json!({"ingress": [{"ip": "10.0.0.2"}]}))
        );
        assert!(desired("ingresses", &ing(Some("rk")), &proxies, &ingresses).is_some());
        assert_eq!(desired("ingresses", &ing(Some("nginx")), &proxies, &ingresses), None);
    }

    #[test]
    fn unchanged_status_is_not_written_again() {
        let want = json!({"ingress": [{"ip": "10.0.0.1"}]});
        assert!(same(Some(&json!({"ingress": [{"ip": "10.0.0.1"}]})), &want));
        assert!(!same(Some(&json!({})), &want));
        assert!(!same(None, &want));
        assert!(same(None, &json!({})));
        assert!(same(Some(&json!({"ingress": []})), &json!({})));
        assert!(same(Some(&Value::Null), &json!({})));
    }
}
