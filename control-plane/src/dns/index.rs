//! The cluster zone in memory: every name the cluster DNS answers for, built from
//! Services, Endpoints and Pods, and the pure `name, type → answer` logic.
//!
//! An [`Index`] is immutable; the DNS task builds a new one whenever one of its
//! sources changes and swaps it in, so a query reads one consistent snapshot
//! without locks held across I/O and without a store read.
//!
//! Names (lower case, without the trailing dot; `<domain>` is `cluster.local` by
//! default), as in the Kubernetes DNS specification:
//!
//! | name | records |
//! | --- | --- |
//! | `<svc>.<ns>.svc.<domain>` | A/AAAA: the cluster IPs; headless: each ready endpoint; ExternalName: CNAME |
//! | `_<port>._<proto>.<svc>.<ns>.svc.<domain>` | SRV per named port (headless: one per endpoint) |
//! | `<host>.<svc>.<ns>.svc.<domain>` | A/AAAA of a headless Service's endpoint (`hostname`, else the dashed IP) |
//! | `<a-b-c-d>.<ns>.pod.<domain>` | A/AAAA of a pod with that IP |
//! | `d.c.b.a.in-addr.arpa`, `….ip6.arpa` | PTR of cluster IPs, headless endpoints, pod IPs |
//!
//! Every ancestor of a name inside the domain exists too (an "empty non-terminal"),
//! so `default.svc.cluster.local` answers NODATA, not NXDOMAIN.

use hickory_proto::rr::RecordType;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One SRV record's data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Lower case, without the trailing dot.
    pub target: String,
}

/// Everything stored at one name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub srv: Vec<Srv>,
    pub ptr: Vec<String>,
    pub cname: Option<String>,
}

impl Node {
    fn add_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.a.push(v4),
            IpAddr::V6(v6) => self.aaaa.push(v6),
        }
    }

    /// Sorted and deduplicated, so answers are stable; SRV weights share 100
    /// between the targets of one name, as CoreDNS does.
    fn normalize(&mut self) {
        self.a.sort_unstable();
        self.a.dedup();
        self.aaaa.sort_unstable();
        self.aaaa.dedup();
        self.ptr.sort_unstable();
        self.ptr.dedup();
        self.srv.sort_unstable_by(|x, y| (x.port, &x.target).cmp(&(y.port, &y.target)));
        self.srv.dedup_by(|x, y| x.port == y.port && x.target == y.target);
        let n = self.srv.len().max(1) as u16;
        for s in &mut self.srv {
            s.weight = (100 / n).max(1);
        }
    }
}

/// One record of an answer: its owner name and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    /// Lower case, without the trailing dot.
    pub name: String,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv(Srv),
    Ptr(String),
    Cname(String),
    /// The zone's SOA (its fields come from the [`Index`]).
    Soa,
}

/// What the zone says about a name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Records for the question (owner = the question's name) and helpful extras
    /// (the addresses of SRV targets).
    Found { answers: Vec<Rr>, additionals: Vec<Rr> },
    /// The name exists but has no records of that type (NOERROR, SOA in authority).
    NoData,
    /// The name is inside the cluster domain and does not exist (SOA in authority).
    NxDomain,
    /// Not ours: forward it upstream (or refuse).
    Elsewhere,
}

/// The cluster zone at one moment.
#[derive(Debug, Clone)]
pub struct Index {
    /// Lower case, without the trailing dot, e.g. `cluster.local`.
    pub domain: String,
    /// The SOA serial: grows with every rebuild.
    pub serial: u32,
    names: HashMap<String, Node>,
}

impl Index {
    /// An index with no objects: only the zone apex and its `svc`/`pod` subtrees.
    pub fn empty(domain: &str) -> Self {
        Self::build(domain, 0, [], [], [])
    }

    /// Builds the zone from the cluster's objects. Pure: no I/O.
    pub fn build<'a>(
        domain: &str,
        serial: u32,
        services: impl IntoIterator<Item = &'a Service>,
        endpoints: impl IntoIterator<Item = &'a Endpoints>,
        pods: impl IntoIterator<Item = &'a Pod>,
    ) -> Self {
        let domain = normalize_name(domain);
        let mut b = Builder { domain: domain.clone(), names: HashMap::new() };
        let endpoints: HashMap<(&str, &str), &Endpoints> = endpoints
            .into_iter()
            .filter_map(|e| Some(((e.metadata.namespace.as_deref()?, e.metadata.name.as_deref()?), e)))
            .collect();
        let pods: Vec<&Pod> = pods.into_iter().collect();
        // Headless Services by (namespace, name), for pods' hostname.subdomain names.
        let mut headless: HashMap<(&str, &str), &Service> = HashMap::new();

        for svc in services {
            let (Some(ns), Some(name)) = (svc.metadata.namespace.as_deref(), svc.metadata.name.as_deref()) else {
                continue;
            };
            let Some(spec) = &svc.spec else { continue };
            let base = format!("{name}.{ns}.svc.{domain}");
            b.node(&base);
            if spec.type_.as_deref() == Some("ExternalName") {
                if let Some(ext) = spec.external_name.as_deref().filter(|e| !e.is_empty()) {
                    b.node(&base).cname = Some(normalize_name(ext));
                }
                continue;
            }
            let cluster_ips: Vec<IpAddr> = match &spec.cluster_ips {
                Some(ips) if !ips.is_empty() => ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
                _ => spec.cluster_ip.iter().filter_map(|ip| ip.parse().ok()).collect(),
            };
            let is_headless = spec.cluster_ip.as_deref() == Some("None");
            if !is_headless {
                for ip in &cluster_ips {
                    b.node(&base).add_ip(*ip);
                    b.ptr(*ip, &base);
                }
                for port in spec.ports.iter().flatten() {
                    let Some(pname) = port.name.as_deref().filter(|n| !n.is_empty()) else { continue };
                    let Ok(p) = u16::try_from(port.port) else { continue };
                    let proto = port.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                    let srv = Srv { priority: 0, weight: 100, port: p, target: base.clone() };
                    b.node(&format!("_{pname}._{proto}.{base}")).srv.push(srv.clone());
                    b.node(&base).srv.push(srv);
                }
                continue;
            }
            headless.insert((ns, name), svc);
            let Some(ep) = endpoints.get(&(ns, name)) else { continue };
            for subset in ep.subsets.iter().flatten() {
                for addr in subset.addresses.iter().flatten() {
                    let Ok(ip) = addr.ip.parse::<IpAddr>() else { continue };
                    let host = addr.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| dashed(ip));
                    let target = format!("{}.{base}", host.to_ascii_lowercase());
                    b.node(&base).add_ip(ip);
                    b.node(&target).add_ip(ip);
                    b.ptr(ip, &target);
                    for port in subset.ports.iter().flatten() {
                        let Some(pname) = port.name.as_deref().filter(|n| !n.is_empty()) else { continue };
                        let Ok(p) = u16::try_from(port.port) else { continue };
                        let proto = port.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                        let srv = Srv { priority: 0, weight: 100, port: p, target: target.clone() };
                        b.node(&format!("_{pname}._{proto}.{base}")).srv.push(srv.clone());
                        b.node(&base).srv.push(srv);
                    }
                }
            }
        }

        for pod in &pods {
            let (Some(ns), Some(spec), Some(status)) = (pod.metadata.namespace.as_deref(), &pod.spec, &pod.status)
            else {
                continue;
            };
            // A finished pod's IP may already belong to another pod.
            if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
                continue;
            }
            let ips: Vec<IpAddr> = match &status.pod_ips {
                Some(ips) if !ips.is_empty() => ips.iter().filter_map(|p| p.ip.parse().ok()).collect(),
                _ => status.pod_ip.iter().filter_map(|ip| ip.parse().ok()).collect(),
            };
            let host_network = spec.host_network == Some(true);
            for ip in &ips {
                let name = format!("{}.{ns}.pod.{domain}", dashed(*ip));
                b.node(&name).add_ip(*ip);
                // A host-network pod's IP is its node's: naming the node after one pod would mislead.
                if !host_network {
                    b.ptr_if_none(*ip, &name);
                }
            }
            // `<hostname>.<subdomain>.<ns>.svc.<domain>`, as the endpoints would say for
            // a pod that the Service does not select.
            let (Some(host), Some(sub)) = (spec.hostname.as_deref(), spec.subdomain.as_deref()) else { continue };
            let Some(svc) = headless.get(&(ns, sub)) else { continue };
            let publish = svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses) == Some(true);
            let terminating = pod.metadata.deletion_timestamp.is_some();
            if host.is_empty() || !(publish || (is_ready(pod) && !terminating)) {
                continue;
            }
            let name = format!("{}.{sub}.{ns}.svc.{domain}", host.to_ascii_lowercase());
            for ip in &ips {
                b.node(&name).add_ip(*ip);
            }
        }
        let mut names = b.names;
        for node in names.values_mut() {
            node.normalize();
        }
        // The apex and the two subtrees always exist.
        for n in [domain.clone(), format!("svc.{domain}"), format!("pod.{domain}")] {
            names.entry(n).or_default();
        }
        Index { domain, serial, names }
    }

    /// How many names the zone holds (empty non-terminals included).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// True for the cluster domain and every name under it.
    pub fn in_domain(&self, name: &str) -> bool {
        is_under(name, &self.domain)
    }

    /// Answers `name` (lower case, no trailing dot) and `qtype`.
    pub fn lookup(&self, name: &str, qtype: RecordType) -> Lookup {
        let Some(node) = self.names.get(name) else {
            return if self.in_domain(name) { Lookup::NxDomain } else { Lookup::Elsewhere };
        };
        let rr = |data: Data| Rr { name: name.to_string(), data };
        let any = qtype == RecordType::ANY;
        let mut answers = Vec::new();
        if let Some(target) = &node.cname {
            // Clients follow the alias themselves (it usually points outside the zone).
            if qtype != RecordType::SOA {
                answers.push(rr(Data::Cname(target.clone())));
            }
            return Lookup::Found { answers, additionals: Vec::new() };
        }
        if any || qtype == RecordType::A {
            answers.extend(node.a.iter().map(|ip| rr(Data::A(*ip))));
        }
        if any || qtype == RecordType::AAAA {
            answers.extend(node.aaaa.iter().map(|ip| rr(Data::Aaaa(*ip))));
        }
        let mut additionals = Vec::new();
        if any || qtype == RecordType::SRV {
            for srv in &node.srv {
                answers.push(rr(Data::Srv(srv.clone())));
                if let Some(t) = self.names.get(&srv.target) {
                    additionals.extend(t.a.iter().map(|ip| Rr { name: srv.target.clone(), data: Data::A(*ip) }));
                    additionals.extend(t.aaaa.iter().map(|ip| Rr { name: srv.target.clone(), data: Data::Aaaa(*ip) }));
                }
            }
            // Several ports of one Service share a target: list its addresses once.
            let mut seen = BTreeSet::new();
            additionals.retain(|r| seen.insert(format!("{}/{:?}", r.name, r.data)));
        }
        if any || qtype == RecordType::PTR {
            answers.extend(node.ptr.iter().map(|p| rr(Data::Ptr(p.clone()))));
        }
        if (any || qtype == RecordType::SOA) && name == self.domain {
            answers.push(rr(Data::Soa));
        }
        if answers.is_empty() { Lookup::NoData } else { Lookup::Found { answers, additionals } }
    }
}

/// Collects names while building; creates every ancestor inside the domain.
struct Builder {
    domain: String,
    names: HashMap<String, Node>,
}

impl Builder {
    fn node(&mut self, name: &str) -> &mut Node {
        if !self.names.contains_key(name) {
            // Empty non-terminals, up to and including the apex.
            let mut rest = name;
            while let Some((_, parent)) = rest.split_once('.') {
                if !is_under(parent, &self.domain) {
                    break;
                }
                self.names.entry(parent.to_string()).or_default();
                rest = parent;
            }
        }
        self.names.entry(name.to_string()).or_default()
    }

    /// Reverse names are not inside the cluster domain: no ancestors (the rest of
    /// `in-addr.arpa` is forwarded upstream).
    fn ptr(&mut self, ip: IpAddr, target: &str) {
        self.names.entry(reverse_name(ip)).or_default().ptr.push(target.to_string());
    }

    fn ptr_if_none(&mut self, ip: IpAddr, target: &str) {
        let node = self.names.entry(reverse_name(ip)).or_default();
        if node.ptr.is_empty() {
            node.ptr.push(target.to_string());
        }
    }
}

/// `name` equals `domain` or ends with `.domain`.
pub fn is_under(name: &str, domain: &str) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

/// Lower case, without a trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `10.1.2.3` → `10-1-2-3`; IPv6 colons become dashes too (as CoreDNS does).
pub fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// `10.1.2.3` → `3.2.1.10.in-addr.arpa`; IPv6 → nibbles under `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": ports},
        }))
        .unwrap()
    }

    fn endpoints(ns: &str, name: &str, addrs: serde_json::Value, ports: serde_json::Value) -> Endpoints {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "subsets": [{"addresses": addrs, "ports": ports}],
        }))
        .unwrap()
    }

    fn pod(ns: &str, name: &str, ip: &str, extra_spec: serde_json::Value, ready: bool) -> Pod {
        let mut spec = json!({"containers": [{"name": "c"}]});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap()
    }

    fn a(ip: &str) -> Data {
        Data::A(ip.parse().unwrap())
    }

    fn answers(l: Lookup) -> Vec<Data> {
        match l {
            Lookup::Found { answers, .. } => answers.into_iter().map(|r| r.data).collect(),
            other => panic!("expected records, got {other:?}"),
        }
    }

    fn zone() -> Index {
        let services = [
            svc("default", "web", "10.96.0.10", json!([{"name": "http", "port": 80}, {"port": 8080}])),
            svc("default", "db", "None", json!([{"name": "pg", "port": 5432}])),
            svc("kube-system", "dns", "10.96.0.53", json!([{"name": "dns", "port": 53, "protocol": "UDP"}])),
            serde_json::from_value(json!({
                "metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.com."},
            }))
            .unwrap(),
        ];
        let eps = [endpoints(
            "default",
            "db",
            json!([{"ip": "10.244.0.5", "hostname": "db-0"}, {"ip": "10.244.0.6"}]),
            json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        )];
        let pods = [
            pod("default", "db-0", "10.244.0.5", json!({"hostname": "db-0", "subdomain": "db"}), true),
            pod("default", "db-1", "10.244.0.6", json!({}), true),
            pod("default", "lone", "10.244.0.7", json!({"hostname": "solo", "subdomain": "db"}), true),
            pod("default", "slow", "10.244.0.8", json!({"hostname": "late", "subdomain": "db"}), false),
            pod("default", "host", "192.168.1.10", json!({"hostNetwork": true}), true),
        ];
        Index::build("Cluster.Local.", 7, &services, &eps, &pods)
    }

    #[test]
    fn a_cluster_ip_service_answers_its_cluster_ip() {
        let z = zone();
        assert_eq!(answers(z.lookup("web.default.svc.cluster.local", RecordType::A)), [a("10.96.0.10")]);
        // v4 only: AAAA is NODATA, not NXDOMAIN.
        assert_eq!(z.lookup("web.default.svc.cluster.local", RecordType::AAAA), Lookup::NoData);
    }

    #[test]
    fn a_headless_service_answers_each_ready_endpoint() {
        let z = zone();
        let got = answers(z.lookup("db.default.svc.cluster.local", RecordType::A));
        assert_eq!(got, [a("10.244.0.5"), a("10.244.0.6")]);
        assert_eq!(answers(z.lookup("db-0.db.default.svc.cluster.local", RecordType::A)), [a("10.244.0.5")]);
        // No hostname: the endpoint is named after its dashed IP.
        assert_eq!(answers(z.lookup("10-244-0-6.db.default.svc.cluster.local", RecordType::A)), [a("10.244.0.6")]);
    }

    #[test]
    fn srv_of_named_ports_with_target_addresses_as_additionals() {
        let z = zone();
        let Lookup::Found { answers, additionals } =
            z.lookup("_http._tcp.web.default.svc.cluster.local", RecordType::SRV)
        else {
            panic!("no SRV")
        };
        let target = "web.default.svc.cluster.local".to_string();
        assert_eq!(answers[0].data, Data::Srv(Srv { priority: 0, weight: 100, port: 80, target: target.clone() }));
        assert_eq!(answers.len(), 1);
        assert_eq!(additionals, [Rr { name: target, data: a("10.96.0.10") }]);
        // Unnamed ports have no SRV name.
        assert_eq!(z.lookup("_8080._tcp.web.default.svc.cluster.local", RecordType::SRV), Lookup::NxDomain);
        // UDP ports under _udp.
        assert!(matches!(
            z.lookup("_dns._udp.dns.kube-system.svc.cluster.local", RecordType::SRV),
            Lookup::Found { .. }
        ));
    }

    #[test]
    fn headless_srv_has_one_record_per_endpoint() {
        let z = zone();
        let Lookup::Found { answers, additionals } = z.lookup("_pg._tcp.db.default.svc.cluster.local", RecordType::SRV)
        else {
            panic!("no SRV")
        };
        let targets: Vec<(u16, u16, String)> = answers
            .iter()
            .map(|r| match &r.data {
                Data::Srv(s) => (s.port, s.weight, s.target.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            [
                (5432, 50, "10-244-0-6.db.default.svc.cluster.local".to_string()),
                (5432, 50, "db-0.db.default.svc.cluster.local".to_string())
            ]
        );
        assert_eq!(additionals.len(), 2);
    }

    #[test]
    fn pods_by_dashed_ip_and_by_hostname_and_subdomain() {
        let z = zone();
        assert_eq!(answers(z.lookup("10-244-0-7.default.pod.cluster.local", RecordType::A)), [a("10.244.0.7")]);
        // A pod in another namespace is not found under this one.
        assert_eq!(z.lookup("10-244-0-7.kube-system.pod.cluster.local", RecordType::A), Lookup::NxDomain);
        // hostname + subdomain naming a headless Service, ready: a name even though no endpoint lists it.
        assert_eq!(answers(z.lookup("solo.db.default.svc.cluster.local", RecordType::A)), [a("10.244.0.7")]);
        // Not ready (and the Service does not publish not-ready addresses): none.
        assert_eq!(z.lookup("late.db.default.svc.cluster.local", RecordType::A), Lookup::NxDomain);
    }

    #[test]
    fn ptr_for_cluster_ips_endpoints_and_pods() {
        let z = zone();
        let ptr = |s: &str| Data::Ptr(s.to_string());
        assert_eq!(
            answers(z.lookup("10.0.96.10.in-addr.arpa", RecordType::PTR)),
            [ptr("web.default.svc.cluster.local")]
        );
        // A headless endpoint's PTR names it under its Service, not as a bare pod.
        assert_eq!(
            answers(z.lookup("5.0.244.10.in-addr.arpa", RecordType::PTR)),
            [ptr("db-0.db.default.svc.cluster.local")]
        );
        assert_eq!(
            answers(z.lookup("7.0.244.10.in-addr.arpa", RecordType::PTR)),
            [ptr("10-244-0-7.default.pod.cluster.local")]
        );
        // Host-network pods do not name their node; unknown addresses go upstream.
        assert_eq!(z.lookup("10.1.168.192.in-addr.arpa", RecordType::PTR), Lookup::Elsewhere);
        assert_eq!(z.lookup("1.1.1.1.in-addr.arpa", RecordType::PTR), Lookup::Elsewhere);
    }

    #[test]
    fn nxdomain_nodata_and_names_elsewhere() {
        let z = zone();
        assert_eq!(z.lookup("nope.default.svc.cluster.local", RecordType::A), Lookup::NxDomain);
        assert_eq!(z.lookup("a.b.c.cluster.local", RecordType::A), Lookup::NxDomain);
        // Empty non-terminals exist.
        assert_eq!(z.lookup("default.svc.cluster.local", RecordType::A), Lookup::NoData);
        assert_eq!(z.lookup("svc.cluster.local", RecordType::A), Lookup::NoData);
        assert_eq!(z.lookup("pod.cluster.local", RecordType::A), Lookup::NoData);
        assert_eq!(answers(z.lookup("cluster.local", RecordType::SOA)), [Data::Soa]);
        assert_eq!(z.lookup("example.com", RecordType::A), Lookup::Elsewhere);
        // A suffix match is not a subdomain.
        assert_eq!(z.lookup("notcluster.local", RecordType::A), Lookup::Elsewhere);
    }

    #[test]
    fn external_name_is_a_cname() {
        let z = zone();
        assert_eq!(
            answers(z.lookup("ext.default.svc.cluster.local", RecordType::A)),
            [Data::Cname("example.com".into())]
        );
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!(reverse_name("10.1.2.3".parse().unwrap()), "3.2.1.10.in-addr.arpa");
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0.") && v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
        assert_eq!(dashed("fd00::1".parse().unwrap()), "fd00--1");
        assert!(is_under("a.cluster.local", "cluster.local"));
        assert!(!is_under("acluster.local", "cluster.local"));
    }

    #[test]
    fn an_empty_zone_still_has_its_apex() {
        let z = Index::empty("cluster.local");
        assert_eq!(z.lookup("cluster.local", RecordType::A), Lookup::NoData);
        assert_eq!(z.lookup("x.cluster.local", RecordType::A), Lookup::NxDomain);
    }
}
