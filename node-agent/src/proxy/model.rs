//! Services and Endpoints as the proxy sees them: one [`ServicePort`] per port of
//! every Service that has a cluster IP or a node port, with the ready endpoints of
//! that port. Pure functions over the JSON objects, so a Service with odd ports or an
//! Endpoints object with missing fields is skipped (with a reason), never a panic.
//!
//! How a service port finds its endpoints is Kubernetes' rule: in each subset of the
//! Endpoints object named after the Service, the endpoint port with the same *name*
//! as the service port (both empty for a single unnamed port) and the same protocol;
//! every address in `addresses` (ready) of that subset serves it.
//! `notReadyAddresses` never receive traffic.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Transport protocol of a service port. SCTP ports are skipped (see docs/services.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The nftables keyword.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("TCP") {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            other => Err(format!("protocol {other} is not proxied")),
        }
    }
}

/// One port of one Service, with what the proxy needs to route it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's name (empty for a Service's single unnamed port).
    pub port_name: String,
    pub protocol: Protocol,
    /// None for a NodePort-only view of a Service without a usable cluster IP.
    pub cluster_ip: Option<Ipv4Addr>,
    pub port: u16,
    pub node_port: Option<u16>,
    /// `type: LoadBalancer` (without a `loadBalancerClass`): `port` is served at the
    /// node's address too, as k3s' ServiceLB serves it (the control plane lists the
    /// nodes' addresses in the Service's `status.loadBalancer`).
    pub load_balancer: bool,
    /// `sessionAffinity: ClientIP`: seconds a client sticks to its endpoint.
    pub affinity_seconds: Option<u32>,
    /// Ready endpoints, sorted and without duplicates.
    pub endpoints: Vec<SocketAddrV4>,
}

impl ServicePort {
    /// `namespace/name:port-name` (or `:port` for an unnamed port), for logs.
    pub fn key(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}/{}:{}", self.namespace, self.name, self.port)
        } else {
            format!("{}/{}:{}", self.namespace, self.name, self.port_name)
        }
    }
}

/// Default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours), as in Kubernetes.
pub const DEFAULT_AFFINITY_SECONDS: u32 = 10800;

fn str_at<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

fn port_number(v: &Value) -> Option<u16> {
    v.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0)
}

/// The service ports of `service` with their ready endpoints from `endpoints` (the
/// Endpoints object of the same name, if any). Ports that cannot be proxied are left
/// out and described in the second list, for the log.
pub fn service_ports(service: &Value, endpoints: Option<&Value>) -> (Vec<ServicePort>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let namespace = str_at(service, "/metadata/namespace").unwrap_or("default").to_string();
    let Some(name) = str_at(service, "/metadata/name").map(String::from) else {
        skipped.push("a Service without metadata.name".to_string());
        return (out, skipped);
    };
    let spec = &service["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return (out, skipped);
    }
    let cluster_ip = match spec["clusterIP"].as_str() {
        // Headless: DNS hands out the endpoints; nothing to proxy (node ports of a
        // headless Service are not allowed by validation).
        Some("None") => return (out, skipped),
        Some(ip) if !ip.is_empty() => match ip.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                skipped.push(format!("{namespace}/{name}: cluster IP {ip:?} is not IPv4; only IPv4 is proxied"));
                None
            }
        },
        _ => None,
    };
    let affinity_seconds = (spec["sessionAffinity"].as_str() == Some("ClientIP")).then(|| {
        spec.pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    let node_ports_wanted = matches!(kind, "NodePort" | "LoadBalancer");
    let load_balancer = kind == "LoadBalancer" && spec["loadBalancerClass"].as_str().is_none_or(str::is_empty);
    for (i, p) in spec["ports"].as_array().into_iter().flatten().enumerate() {
        let port_name = p["name"].as_str().unwrap_or("").to_string();
        let Some(port) = port_number(&p["port"]) else {
            skipped.push(format!("{namespace}/{name}: port #{i} has no valid port number ({})", p["port"]));
            continue;
        };
        let protocol = match Protocol::parse(p["protocol"].as_str()) {
            Ok(proto) => proto,
            Err(e) => {
                skipped.push(format!("{namespace}/{name}:{port}: {e}"));
                continue;
            }
        };
        let node_port = if node_ports_wanted { port_number(&p["nodePort"]) } else { None };
        if cluster_ip.is_none() && node_port.is_none() {
            continue;
        }
        let mut eps = ready_endpoints(endpoints, &port_name, protocol);
        eps.sort();
        eps.dedup();
        out.push(ServicePort {
            namespace: namespace.clone(),
            name: name.clone(),
            port_name,
            protocol,
            cluster_ip,
            port,
            node_port,
            load_balancer,
            affinity_seconds,
            endpoints: eps,
        });
    }
    (out, skipped)
}

/// Ready `ip:port`s of the endpoint port named `port_name` with `protocol`.
fn ready_endpoints(endpoints: Option<&Value>, port_name: &str, protocol: Protocol) -> Vec<SocketAddrV4> {
    let mut out = Vec::new();
    let Some(endpoints) = endpoints else { return out };
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let port = subset["ports"].as_array().into_iter().flatten().find(|p| {
            p["name"].as_str().unwrap_or("") == port_name && Protocol::parse(p["protocol"].as_str()) == Ok(protocol)
        });
        let Some(port) = port.and_then(|p| port_number(&p["port"])) else { continue };
        for a in subset["addresses"].as_array().into_iter().flatten() {
            if let Some(ip) = a["ip"].as_str().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) {
                out.push(SocketAddrV4::new(ip, port));
            }
        }
    }
    out
}

/// The proxy's view of the cluster: Services, Endpoints (and Ingresses) by `namespace/name`, as
/// the watches last reported them.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub services: BTreeMap<String, Value>,
    pub endpoints: BTreeMap<String, Value>,
    /// Only watched when the agent serves Ingress (`--ingress-listen`).
    pub ingresses: BTreeMap<String, Value>,
}

/// `namespace/name` of an object.
pub fn object_key(obj: &Value) -> Option<String> {
    let ns = str_at(obj, "/metadata/namespace").unwrap_or("");
    let name = str_at(obj, "/metadata/name")?;
    Some(format!("{ns}/{name}"))
}

impl State {
    /// Every proxied service port, sorted (so equal states give equal rule sets), and
    /// why some were skipped.
    pub fn service_ports(&self) -> (Vec<ServicePort>, Vec<String>) {
        let mut all = Vec::new();
        let mut skipped = Vec::new();
        for (key, svc) in &self.services {
            let (ports, why) = service_ports(svc, self.endpoints.get(key));
            all.extend(ports);
            skipped.extend(why);
        }
        all.sort();
        (all, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"namespace": "default", "name": "web"}, "spec": spec})
    }

    #[test]
    fn ports_match_endpoints_by_name_and_protocol() {
        let s = svc(json!({
            "type": "NodePort", "clusterIP": "10.96.0.10",
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
                {"name": "dns", "port": 53, "protocol": "UDP"},
            ],
        }));
        let e = json!({"subsets": [
            {"addresses": [{"ip": "172.18.0.3"}, {"ip": "172.18.0.2"}],
             "notReadyAddresses": [{"ip": "172.18.0.9"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "dns", "port": 5353, "protocol": "UDP"}]},
            {"addresses": [{"ip": "172.18.0.4"}], "ports": [{"name": "http", "port": 9090}]},
        ]});
        let (ports, skipped) = service_ports(&s, Some(&e));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(ports.len(), 2);
        let http = &ports[0];
        assert_eq!((http.port, http.node_port, http.protocol), (80, Some(30080), Protocol::Tcp));
        let eps: Vec<String> = http.endpoints.iter().map(ToString::to_string).collect();
        assert_eq!(eps, ["172.18.0.2:8080", "172.18.0.3:8080", "172.18.0.4:9090"]);
        let dns = &ports[1];
        assert_eq!((dns.protocol, dns.node_port), (Protocol::Udp, None));
        let eps: Vec<String> = dns.endpoints.iter().map(ToString::to_string).collect();
        assert_eq!(eps, ["172.18.0.2:5353", "172.18.0.3:5353"]);
    }

    #[test]
    fn node_ports_only_for_node_port_and_load_balancer() {
        let s = svc(json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}]}));
        let (ports, _) = service_ports(&s, None);
        assert_eq!(ports[0].node_port, None);
        assert!(ports[0].endpoints.is_empty());
        let s =
            svc(json!({"type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}]}));
        assert_eq!(service_ports(&s, None).0[0].node_port, Some(30080));
        assert!(service_ports(&s, None).0[0].load_balancer);
        assert!(!ports[0].load_balancer);
        // Another implementation's load balancer: node ports only.
        let s = svc(json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/lb", "clusterIP": "10.96.0.10",
            "ports": [{"port": 80, "nodePort": 30080}]}));
        assert!(!service_ports(&s, None).0[0].load_balancer);
    }

    #[test]
    fn affinity_defaults_and_timeout() {
        let s = svc(json!({"clusterIP": "10.96.0.10", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}));
        assert_eq!(service_ports(&s, None).0[0].affinity_seconds, Some(DEFAULT_AFFINITY_SECONDS));
        let s = svc(json!({"clusterIP": "10.96.0.10", "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}, "ports": [{"port": 80}]}));
        assert_eq!(service_ports(&s, None).0[0].affinity_seconds, Some(60));
        let s = svc(json!({"clusterIP": "10.96.0.10", "sessionAffinity": "None", "ports": [{"port": 80}]}));
        assert_eq!(service_ports(&s, None).0[0].affinity_seconds, None);
    }

    #[test]
    fn weird_input_is_skipped_not_fatal() {
        for spec in [
            json!({"clusterIP": "None", "ports": [{"port": 80}]}),
            json!({"type": "ExternalName", "externalName": "example.com"}),
            json!({"clusterIP": "10.96.0.10"}),
            json!({"clusterIP": "10.96.0.10", "ports": "eighty"}),
            json!(null),
        ] {
            assert!(service_ports(&svc(spec), None).0.is_empty());
        }
        let s = svc(json!({"clusterIP": "10.96.0.10", "ports": [
            {"port": 70000}, {"port": -1}, {"port": "80"}, {"port": 0}, {"port": 80, "protocol": "SCTP"},
            {"port": 81},
        ]}));
        let (ports, skipped) = service_ports(&s, None);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 81);
        assert_eq!(skipped.len(), 5, "{skipped:?}");
        let (ports, skipped) = service_ports(&svc(json!({"clusterIP": "fd00::1", "ports": [{"port": 80}]})), None);
        assert!(ports.is_empty() && skipped.len() == 1);
        assert!(service_ports(&json!({"spec": {}}), None).1.len() == 1);
        // Endpoints with missing or broken fields: those addresses are ignored.
        let s = svc(json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}));
        for e in [
            json!({}),
            json!({"subsets": null}),
            json!({"subsets": [{"addresses": [{"ip": "172.18.0.2"}]}]}),
            json!({"subsets": [{"addresses": [{"ip": "x"}, {}], "ports": [{"port": 80}]}]}),
            json!({"subsets": [{"addresses": [{"ip": "172.18.0.2"}], "ports": [{"port": 99999}]}]}),
        ] {
            assert!(service_ports(&s, Some(&e)).0[0].endpoints.is_empty(), "{e}");
        }
    }
}
