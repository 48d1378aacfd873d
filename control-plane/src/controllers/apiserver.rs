//! The endpoints of the API's own Service, `default/kubernetes` (kube-apiserver's
//! endpoint reconciler): the client addresses of the control plane's voting replicas,
//! kept in an Endpoints object and an EndpointSlice of that name, so the Service's
//! cluster IP (and `kubernetes.default.svc` in cluster DNS) reaches the API from pods.
//!
//! The leader looks every few seconds: replicas come and go through membership changes,
//! and an address each replica publishes (`--advertise-client`) that is a host name is
//! resolved, since Endpoints hold IPs.

use crate::api::error::ApiError;
use crate::api::registry;
use crate::api::rest::{Api, Target};
use crate::api::store::Freshness;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::watch;

const NAME: &str = "kubernetes";
const NAMESPACE: &str = "default";
const PASS: Duration = Duration::from_secs(5);

/// Endpoints `subsets` for the replicas' client addresses: one subset per port, IPs sorted.
pub fn subsets(addrs: &[SocketAddr]) -> Value {
    let mut by_port: BTreeMap<u16, Vec<IpAddr>> = BTreeMap::new();
    for a in addrs {
        by_port.entry(a.port()).or_default().push(a.ip());
    }
    let subsets: Vec<Value> = by_port
        .into_iter()
        .map(|(port, mut ips)| {
            ips.sort();
            ips.dedup();
            let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect();
            json!({"addresses": addresses, "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})
        })
        .collect();
    Value::Array(subsets)
}

/// The EndpointSlice `default/kubernetes` for the same addresses (IPv4 only: one slice
/// has one address type; rk's service network is IPv4).
pub fn slice(addrs: &[SocketAddr]) -> Option<Value> {
    let v4: Vec<&SocketAddr> = addrs.iter().filter(|a| a.is_ipv4()).collect();
    let port = v4.first()?.port();
    let mut ips: Vec<String> = v4.iter().filter(|a| a.port() == port).map(|a| a.ip().to_string()).collect();
    ips.sort();
    ips.dedup();
    let endpoints: Vec<Value> =
        ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect();
    Some(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {"kubernetes.io/service-name": NAME,
                                "endpointslice.kubernetes.io/managed-by": "rk-server"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }))
}

/// The client addresses of the voting members, host names resolved.
async fn replica_addresses(api: &Api) -> Vec<SocketAddr> {
    let urls: Vec<String> = {
        let sm = api.store.raft.shared.sm.read();
        sm.members.values().filter(|m| !m.is_learner).flat_map(|m| m.client_urls.clone()).collect()
    };
    let mut out = Vec::new();
    for url in urls {
        let hostport = url.split("://").last().unwrap_or(&url).trim_end_matches('/').to_string();
        match hostport.parse::<SocketAddr>() {
            Ok(a) if !a.ip().is_unspecified() => out.push(a),
            Ok(_) => {}
            Err(_) => {
                if let Ok(found) = tokio::net::lookup_host(hostport.as_str()).await {
                    out.extend(found.filter(|a| a.is_ipv4()).take(1));
                }
            }
        }
    }
    out
}

/// Makes object `name` of `plural` in `default` match `desired` (created if missing).
async fn ensure(api: &Api, plural: &str, desired: Value, same: impl Fn(&Value) -> bool) -> Result<(), ApiError> {
    let res = registry::lookup(plural).ok_or(ApiError::NoSuchResource)?;
    match api.get(res, Some(NAMESPACE), NAME, Freshness::Any).await {
        Ok(current) => {
            if same(&current.object()?) {
                return Ok(());
            }
            api.guaranteed_update(
                res,
                Some(NAMESPACE),
                NAME,
                Target::Main,
                &Default::default(),
                "rk-server",
                false,
                |live| {
                    let mut next = live.cloned().ok_or_else(|| ApiError::not_found(res, NAME))?;
                    for (k, v) in desired.as_object().into_iter().flatten() {
                        if k != "metadata" {
                            next[k] = v.clone();
                        }
                    }
                    Ok((next, false))
                },
            )
            .await
            .map(|_| ())
        }
        Err(ApiError::NotFound { .. }) => {
            match api.create(res, Some(NAMESPACE), desired, &Default::default(), "rk-server").await {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Runs on the leader until `stop` turns true.
pub async fn run(api: Api, mut stop: watch::Receiver<bool>) {
    loop {
        let addrs = replica_addresses(&api).await;
        if !addrs.is_empty() {
            let subsets = subsets(&addrs);
            let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": NAME, "namespace": NAMESPACE}, "subsets": subsets});
            let result = ensure(&api, "endpoints", endpoints, |cur| cur["subsets"] == subsets).await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "cannot update the kubernetes Endpoints yet");
            }
            if let Some(s) = slice(&addrs) {
                let (eps, ports) = (s["endpoints"].clone(), s["ports"].clone());
                let result =
                    ensure(&api, "endpointslices", s, |cur| cur["endpoints"] == eps && cur["ports"] == ports).await;
                if let Err(e) = result {
                    tracing::debug!(error = %e, "cannot update the kubernetes EndpointSlice yet");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PASS) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_become_one_subset_per_port() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let addrs = [a("10.0.0.2:2379"), a("10.0.0.1:2379"), a("10.0.0.3:6443"), a("10.0.0.1:2379")];
        assert_eq!(
            subsets(&addrs),
            json!([
                {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                 "ports": [{"name": "https", "port": 2379, "protocol": "TCP"}]},
                {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
            ])
        );
        let s = slice(&addrs[..2]).unwrap();
        assert_eq!(s["endpoints"][0]["addresses"], json!(["10.0.0.1"]));
        assert_eq!(s["ports"][0]["port"], 2379);
        assert_eq!(s["metadata"]["labels"]["kubernetes.io/service-name"], "kubernetes");
        assert!(slice(&[]).is_none());
    }
}
