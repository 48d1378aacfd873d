//! Endpoints and EndpointSlices of a Service, computed from its pods without I/O.
//!
//! Two views of the same content, as the endpoints controller (`pkg/controller/endpoint`) and
//! the EndpointSlice controller (`pkg/controller/endpointslice`) write them:
//!
//! ```text
//!  pods in the Service's namespace matching spec.selector, not Succeeded/Failed, with an IP
//!    │  ports: each service port's targetPort, a number or a container port name looked up
//!    │         per pod (a pod without that name simply does not serve that port)
//!    ├─► v1 Endpoints: subsets grouping addresses by identical port sets; ready pods in
//!    │     `addresses`, others in `notReadyAddresses`; terminating pods left out unless
//!    │     publishNotReadyAddresses; at most 1000 addresses (then "over-capacity: truncated")
//!    └─► discovery.k8s.io/v1 EndpointSlices: one set per IP family and port set, ≤ 100
//!          endpoints each, every pod with conditions ready / serving / terminating
//!          (ready = publishNotReadyAddresses || (serving && !terminating)); with no endpoint
//!          at all, one empty placeholder slice
//! ```
//!
//! Everything is sorted (addresses by IP then pod uid, subsets and slices by their ports), and
//! slice names are derived from the Service name and a hash of the port set and chunk
//! (`<service>-xxxxx`, the shape of a generated name), so the same inputs always give identical
//! objects and an executor can update slices in place instead of replacing them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServicePort,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint as SliceEndpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Most addresses one Endpoints object carries (`maxCapacity`).
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;
/// Most endpoints in one EndpointSlice (`--max-endpoints-per-slice` default).
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
pub const LABEL_ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
pub const ENDPOINTS_CONTROLLER: &str = "endpoint-controller";
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
pub const ANNOTATION_OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

/// The desired Endpoints and EndpointSlices of one Service.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointsPlan {
    /// The `v1` Endpoints, named after the Service.
    pub endpoints: Endpoints,
    /// The EndpointSlices (empty for an ExternalName Service), sorted by name.
    pub slices: Vec<EndpointSlice>,
}

/// Computes the Endpoints and EndpointSlices of `service` from `pods` (pods of other namespaces
/// or not matching the selector are ignored). `None` for a Service without a selector, whose
/// endpoints are managed by hand.
pub fn plan(service: &Service, pods: &[Pod]) -> Option<EndpointsPlan> {
    let spec = service.spec.as_ref()?;
    let selector = spec.selector.as_ref()?;
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let mut selected: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or_default() == namespace)
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .filter(|p| !is_terminal(p))
        .collect();
    selected.sort_by(|a, b| (&a.metadata.name, &a.metadata.uid).cmp(&(&b.metadata.name, &b.metadata.uid)));

    let families = ip_families(service);
    let slices = if spec.type_.as_deref() == Some("ExternalName") {
        Vec::new()
    } else {
        families.iter().flat_map(|f| slices_for_family(service, &selected, *f)).collect()
    };
    let primary = families.first().copied().unwrap_or(Family::V4);
    Some(EndpointsPlan { endpoints: endpoints(service, &selected, primary), slices })
}

// === v1 Endpoints ===

/// Addresses offering one port: (ip, pod uid) → (address, ready).
type AddressSet = BTreeMap<(String, String), (EndpointAddress, bool)>;
/// Subsets being repacked: the address set's identity → (its ports, its addresses).
type Repacked = BTreeMap<Vec<((String, String), bool)>, (Vec<PortKey>, Vec<(EndpointAddress, bool)>)>;

fn endpoints(service: &Service, pods: &[&Pod], family: Family) -> Endpoints {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let headless = is_headless(service);
    let service_ports = spec.ports.unwrap_or_default();

    // Port → addresses offering it ((ip, uid) → (address, ready)); `None` is the sentinel for
    // a headless Service without ports.
    let mut by_port: BTreeMap<Option<PortKey>, AddressSet> = BTreeMap::new();
    for pod in pods {
        if !publish_not_ready && pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(ip) = pod_ip(pod, family) else { continue };
        let address = EndpointAddress {
            ip: ip.clone(),
            hostname: hostname(pod, service),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
            target_ref: Some(target_ref(pod)),
        };
        let ready = publish_not_ready || is_ready(pod);
        let key = (ip, pod.metadata.uid.clone().unwrap_or_default());
        if service_ports.is_empty() {
            if headless {
                by_port.entry(None).or_default().insert(key, (address, ready));
            }
            continue;
        }
        for sp in &service_ports {
            if let Some(port) = find_port(pod, sp) {
                by_port.entry(Some(PortKey::new(sp, port))).or_default().insert(key.clone(), (address.clone(), ready));
            }
        }
    }

    // RepackSubsets: ports offered by exactly the same addresses share a subset.
    let mut subsets: Repacked = BTreeMap::new();
    for (port, addresses) in by_port {
        let key: Vec<((String, String), bool)> = addresses.iter().map(|(k, (_, ready))| (k.clone(), *ready)).collect();
        let entry = subsets.entry(key).or_insert_with(|| (Vec::new(), addresses.into_values().collect()));
        entry.0.extend(port);
    }
    let mut subsets: Vec<EndpointSubset> = subsets
        .into_values()
        .map(|(mut ports, addresses)| {
            ports.sort();
            let (ready, not_ready): (Vec<_>, Vec<_>) = addresses.into_iter().partition(|(_, r)| *r);
            let strip = |v: Vec<(EndpointAddress, bool)>| -> Option<Vec<EndpointAddress>> {
                (!v.is_empty()).then(|| v.into_iter().map(|(a, _)| a).collect())
            };
            EndpointSubset {
                addresses: strip(ready),
                not_ready_addresses: strip(not_ready),
                ports: (!ports.is_empty()).then(|| ports.iter().map(PortKey::endpoint_port).collect()),
            }
        })
        .collect();
    subsets.sort_by_key(subset_sort_key);

    let mut annotations = BTreeMap::new();
    if truncate(&mut subsets) {
        annotations.insert(ANNOTATION_OVER_CAPACITY.to_string(), "truncated".to_string());
    }
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.remove(LABEL_HEADLESS);
    if headless {
        labels.insert(LABEL_HEADLESS.to_string(), String::new());
    }
    labels.insert(LABEL_ENDPOINTS_MANAGED_BY.to_string(), ENDPOINTS_CONTROLLER.to_string());
    Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    }
}

fn subset_sort_key(s: &EndpointSubset) -> (Vec<(String, i32, String)>, Option<String>) {
    let ports = s
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.port, p.protocol.clone().unwrap_or_default()))
        .collect();
    let first = s.addresses.iter().chain(s.not_ready_addresses.iter()).flatten().map(|a| a.ip.clone()).min();
    (ports, first)
}

/// `truncateEndpoints`: keep at most 1000 addresses, ready ones first, each subset keeping its
/// proportional share (rounded up, within what is left).
fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let len = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let total_ready: usize = subsets.iter().map(|s| len(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| len(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= MAX_ENDPOINTS_ADDRESSES {
        return false;
    }
    let truncate_ready = total_ready > MAX_ENDPOINTS_ADDRESSES;
    let (max, total) = if truncate_ready {
        (MAX_ENDPOINTS_ADDRESSES, total_ready)
    } else {
        (MAX_ENDPOINTS_ADDRESSES - total_ready, total_not_ready)
    };
    let mut room = max;
    for s in subsets.iter_mut() {
        let in_subset = if truncate_ready { len(&s.addresses) } else { len(&s.not_ready_addresses) };
        let share = (in_subset * max).div_ceil(total.max(1)).min(room);
        if truncate_ready {
            if let Some(a) = s.addresses.as_mut() {
                a.truncate(share);
            }
            s.not_ready_addresses = None;
            room -= len(&s.addresses);
        } else {
            if let Some(a) = s.not_ready_addresses.as_mut() {
                a.truncate(share);
            }
            room -= len(&s.not_ready_addresses);
        }
    }
    true
}

// === EndpointSlices ===

fn slices_for_family(service: &Service, pods: &[&Pod], family: Family) -> Vec<EndpointSlice> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let service_ports = spec.ports.unwrap_or_default();

    // Port set → endpoints (sorted by address, then pod).
    let mut by_ports: BTreeMap<Vec<PortKey>, BTreeMap<(String, String), SliceEndpoint>> = BTreeMap::new();
    for pod in pods {
        let Some(ip) = pod_ip(pod, family) else { continue };
        let mut ports: Vec<PortKey> =
            service_ports.iter().filter_map(|sp| find_port(pod, sp).map(|p| PortKey::new(sp, p))).collect();
        ports.sort();
        let serving = is_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let endpoint = SliceEndpoint {
            addresses: vec![ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(publish_not_ready || (serving && !terminating)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: hostname(pod, service),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
            target_ref: Some(target_ref(pod)),
            ..Default::default()
        };
        by_ports.entry(ports).or_default().insert((ip, pod.metadata.name.clone().unwrap_or_default()), endpoint);
    }

    let service_name = service.metadata.name.clone().unwrap_or_default();
    let address_type = family.address_type();
    let mut slices = Vec::new();
    for (ports, endpoints) in by_ports {
        let endpoints: Vec<SliceEndpoint> = endpoints.into_values().collect();
        for (chunk, part) in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE).enumerate() {
            let seed = format!("{address_type}|{ports:?}|{chunk}");
            slices.push(slice(service, &service_name, address_type, &seed, &ports, part.to_vec()));
        }
    }
    if slices.is_empty() {
        // The placeholder slice Kubernetes keeps for a Service without endpoints.
        let seed = format!("{address_type}|placeholder");
        slices.push(slice(service, &service_name, address_type, &seed, &[], Vec::new()));
    }
    slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    slices
}

fn slice(
    service: &Service,
    service_name: &str,
    address_type: &str,
    seed: &str,
    ports: &[PortKey],
    endpoints: Vec<SliceEndpoint>,
) -> EndpointSlice {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.remove(LABEL_HEADLESS);
    if is_headless(service) {
        labels.insert(LABEL_HEADLESS.to_string(), String::new());
    }
    labels.insert(LABEL_SERVICE_NAME.to_string(), service_name.to_string());
    labels.insert(LABEL_SLICE_MANAGED_BY.to_string(), SLICE_CONTROLLER.to_string());
    // generateName's base is cut to 58 characters before 5 random ones are appended.
    let prefix = format!("{service_name}-");
    let base: String = prefix.chars().take(58).collect();
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(format!("{base}{}", name_suffix(&format!("{service_name}|{seed}")))),
            generate_name: Some(prefix),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_string(),
                kind: "Service".to_string(),
                name: service_name.to_string(),
                uid: service.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: address_type.to_string(),
        endpoints,
        ports: (!ports.is_empty()).then(|| ports.iter().map(PortKey::slice_port).collect()),
    }
}

/// Five characters from the alphabet of generated names, from an FNV-1a hash of `seed`.
fn name_suffix(seed: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..5)
        .map(|_| {
            let c = ALPHABET.get((hash % ALPHABET.len() as u64) as usize).copied().unwrap_or(b'b');
            hash /= ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

// === Shared helpers ===

/// A resolved port of an endpoint, ordered for stable output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn new(sp: &ServicePort, port: i32) -> PortKey {
        PortKey {
            name: sp.name.clone().unwrap_or_default(),
            port,
            protocol: protocol(sp.protocol.as_deref()),
            app_protocol: sp.app_protocol.clone(),
        }
    }

    fn endpoint_port(&self) -> EndpointPort {
        EndpointPort {
            name: (!self.name.is_empty()).then(|| self.name.clone()),
            port: self.port,
            protocol: Some(self.protocol.clone()),
            app_protocol: self.app_protocol.clone(),
        }
    }

    fn slice_port(&self) -> SlicePort {
        SlicePort {
            name: Some(self.name.clone()),
            port: Some(self.port),
            protocol: Some(self.protocol.clone()),
            app_protocol: self.app_protocol.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn address_type(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn matches(self, ip: &str) -> bool {
        match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => self == Family::V4,
            Ok(IpAddr::V6(_)) => self == Family::V6,
            Err(_) => false,
        }
    }
}

/// The Service's IP families: `spec.ipFamilies`, else the family of its cluster IP, else IPv4.
fn ip_families(service: &Service) -> Vec<Family> {
    let spec = service.spec.as_ref();
    let mut families: Vec<Family> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        })
        .collect();
    families.dedup();
    if families.is_empty() {
        let v6 = spec.and_then(|s| s.cluster_ip.as_deref()).is_some_and(|ip| Family::V6.matches(ip));
        families.push(if v6 { Family::V6 } else { Family::V4 });
    }
    families
}

/// The pod's first IP of that family (`status.podIPs`, then `status.podIP`).
fn pod_ip(pod: &Pod, family: Family) -> Option<String> {
    let status = pod.status.as_ref()?;
    status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .find(|ip| family.matches(ip))
        .map(str::to_string)
}

/// `FindPort`: a numeric targetPort as is (unset means the service port); a named one from the
/// pod's containers (and sidecars) with that port name and protocol.
fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(0)) => Some(sp.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let want = protocol(sp.protocol.as_deref());
            let sidecars =
                spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()) && protocol(p.protocol.as_deref()) == want)
                .map(|p| p.container_port)
        }
    }
}

fn protocol(p: Option<&str>) -> String {
    p.filter(|p| !p.is_empty()).unwrap_or("TCP").to_string()
}

fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// `ShouldSetHostname`: the pod asked for a hostname under this Service's subdomain.
fn hostname(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.clone().filter(|h| !h.is_empty())?;
    let same_subdomain = spec.subdomain.is_some() && spec.subdomain == service.metadata.name;
    (same_subdomain && pod.metadata.namespace == service.metadata.namespace).then_some(hostname)
}

fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_string()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodCondition, PodIP, PodSpec, PodStatus, ServiceSpec};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    struct SvcB(Service);
    fn svc(name: &str, ports: Vec<ServicePort>) -> SvcB {
        SvcB(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some("svc-uid".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(ports),
                cluster_ip: Some("10.96.0.10".into()),
                ..Default::default()
            }),
            status: None,
        })
    }
    impl SvcB {
        fn spec(&mut self) -> &mut ServiceSpec {
            self.0.spec.as_mut().unwrap()
        }
    }

    fn sport(name: &str, port: i32, target: Option<IntOrString>) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port,
            target_port: target,
            protocol: Some("TCP".into()),
            ..Default::default()
        }
    }

    struct PodB(Pod);
    fn pod(name: &str, ip: &str) -> PodB {
        PodB(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container { name: "c".into(), ..Default::default() }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: (!ip.is_empty()).then(|| ip.to_string()),
                pod_ips: (!ip.is_empty()).then(|| vec![PodIP { ip: ip.into() }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }
    impl PodB {
        fn not_ready(mut self) -> Self {
            self.0.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
            self
        }
        fn named_port(mut self, name: &str, port: i32) -> Self {
            let p = ContainerPort { name: Some(name.into()), container_port: port, ..Default::default() };
            self.0.spec.as_mut().unwrap().containers[0].ports.get_or_insert_with(Vec::new).push(p);
            self
        }
        fn terminating(mut self) -> Self {
            self.0.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
            self
        }
        fn phase(mut self, p: &str) -> Self {
            self.0.status.as_mut().unwrap().phase = Some(p.into());
            self
        }
    }

    fn pods(v: Vec<PodB>) -> Vec<Pod> {
        v.into_iter().map(|p| p.0).collect()
    }

    fn ips(addresses: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        addresses.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn service_without_selector_is_not_managed() {
        let mut s = svc("web", vec![sport("http", 80, None)]);
        s.spec().selector = None;
        assert_eq!(plan(&s.0, &pods(vec![pod("a", "10.0.0.1")])), None);
    }

    #[test]
    fn ready_and_not_ready_addresses_with_numeric_target_port() {
        let s = svc("web", vec![sport("http", 80, Some(IntOrString::Int(8080)))]);
        let ps = pods(vec![
            pod("b", "10.0.0.2").not_ready(),
            pod("a", "10.0.0.1"),
            pod("noip", ""),
            pod("done", "10.0.0.9").phase("Succeeded"),
        ]);
        let out = plan(&s.0, &ps).unwrap();
        let subsets = out.endpoints.subsets.clone().unwrap();
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.1"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.0.0.2"]);
        let port = &subsets[0].ports.as_ref().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port, port.protocol.as_deref()), (Some("http"), 8080, Some("TCP")));
        let a = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let r = a.target_ref.as_ref().unwrap();
        assert_eq!((r.kind.as_deref(), r.name.as_deref(), r.uid.as_deref()), (Some("Pod"), Some("a"), Some("uid-a")));
        assert_eq!(out.endpoints.metadata.labels.as_ref().unwrap()[LABEL_ENDPOINTS_MANAGED_BY], ENDPOINTS_CONTROLLER);
        assert_eq!(out.endpoints.metadata.name.as_deref(), Some("web"));

        assert_eq!(out.slices.len(), 1);
        let slice = &out.slices[0];
        assert_eq!(slice.address_type, "IPv4");
        let conditions: Vec<(&str, Option<bool>)> =
            slice.endpoints.iter().map(|e| (e.addresses[0].as_str(), e.conditions.as_ref().unwrap().ready)).collect();
        assert_eq!(conditions, vec![("10.0.0.1", Some(true)), ("10.0.0.2", Some(false))]);
        let labels = slice.metadata.labels.as_ref().unwrap();
        assert_eq!(
            (labels[LABEL_SERVICE_NAME].as_str(), labels[LABEL_SLICE_MANAGED_BY].as_str()),
            ("web", SLICE_CONTROLLER)
        );
        assert!(slice.metadata.name.as_ref().unwrap().starts_with("web-"));
        assert_eq!(slice.metadata.name.as_ref().unwrap().len(), "web-".len() + 5);
        assert_eq!(slice.metadata.owner_references.as_ref().unwrap()[0].uid, "svc-uid");
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_split_subsets() {
        // Kubernetes' docs example: targetPort "http-web-svc" resolved per pod; a pod that names
        // its port differently serves another number, a pod without the name serves nothing.
        let s = svc("web", vec![sport("http", 80, Some(IntOrString::String("http-web-svc".into())))]);
        let ps = pods(vec![
            pod("a", "10.0.0.1").named_port("http-web-svc", 8080),
            pod("b", "10.0.0.2").named_port("http-web-svc", 8080),
            pod("c", "10.0.0.3").named_port("http-web-svc", 9090),
            pod("d", "10.0.0.4").named_port("other", 8080),
        ]);
        let out = plan(&s.0, &ps).unwrap();
        let subsets = out.endpoints.subsets.unwrap();
        let summary: Vec<(Vec<&str>, i32)> =
            subsets.iter().map(|s| (ips(&s.addresses), s.ports.as_ref().unwrap()[0].port)).collect();
        assert_eq!(summary, vec![(vec!["10.0.0.1", "10.0.0.2"], 8080), (vec!["10.0.0.3"], 9090)]);
        // Slices: one per port set, and the port-less pod "d" in a slice without ports.
        let slice_ports: Vec<Option<i32>> = out
            .slices
            .iter()
            .map(|s| s.ports.as_ref().and_then(|p| p.first()).and_then(|p| p.port))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(slice_ports, vec![None, Some(8080), Some(9090)]);
    }

    #[test]
    fn ports_offered_by_the_same_pods_share_a_subset() {
        let s = svc("web", vec![sport("http", 80, Some(IntOrString::Int(8080))), sport("metrics", 9100, None)]);
        let out = plan(&s.0, &pods(vec![pod("a", "10.0.0.1"), pod("b", "10.0.0.2").not_ready()])).unwrap();
        let subsets = out.endpoints.subsets.unwrap();
        assert_eq!(subsets.len(), 1);
        let ports: Vec<i32> = subsets[0].ports.iter().flatten().map(|p| p.port).collect();
        assert_eq!(ports, vec![8080, 9100]);
        assert_eq!(out.slices.len(), 1);
        assert_eq!(out.slices[0].ports.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn terminating_pods() {
        let s = svc("web", vec![sport("http", 80, None)]);
        let ps = pods(vec![pod("a", "10.0.0.1"), pod("t", "10.0.0.2").terminating()]);
        let out = plan(&s.0, &ps).unwrap();
        assert_eq!(ips(&out.endpoints.subsets.as_ref().unwrap()[0].addresses), vec!["10.0.0.1"]);
        assert!(out.endpoints.subsets.as_ref().unwrap()[0].not_ready_addresses.is_none());
        let t = out.slices[0].endpoints.iter().find(|e| e.addresses[0] == "10.0.0.2").unwrap();
        let c = t.conditions.as_ref().unwrap();
        assert_eq!((c.ready, c.serving, c.terminating), (Some(false), Some(true), Some(true)));

        // publishNotReadyAddresses keeps terminating and not-ready pods as ready addresses.
        let mut s = svc("web", vec![sport("http", 80, None)]);
        s.spec().publish_not_ready_addresses = Some(true);
        let ps = pods(vec![pod("a", "10.0.0.1").not_ready(), pod("t", "10.0.0.2").terminating()]);
        let out = plan(&s.0, &ps).unwrap();
        assert_eq!(ips(&out.endpoints.subsets.as_ref().unwrap()[0].addresses), vec!["10.0.0.1", "10.0.0.2"]);
        assert!(out.slices[0].endpoints.iter().all(|e| e.conditions.as_ref().unwrap().ready == Some(true)));
    }

    #[test]
    fn headless_service_without_ports_and_hostnames() {
        let mut s = svc("db", vec![]);
        s.spec().cluster_ip = Some("None".into());
        let mut p = pod("db-0", "10.0.0.5");
        p.0.spec.as_mut().unwrap().hostname = Some("db-0".into());
        p.0.spec.as_mut().unwrap().subdomain = Some("db".into());
        let out = plan(&s.0, &pods(vec![p, pod("other", "10.0.0.6")])).unwrap();
        let subsets = out.endpoints.subsets.unwrap();
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        let hosts: Vec<Option<&str>> = subsets[0].addresses.iter().flatten().map(|a| a.hostname.as_deref()).collect();
        assert_eq!(hosts, vec![Some("db-0"), None]);
        assert_eq!(out.endpoints.metadata.labels.as_ref().unwrap().get(LABEL_HEADLESS).map(String::as_str), Some(""));
        assert_eq!(out.slices[0].endpoints.len(), 2);

        // A non-headless Service without ports gets no addresses.
        let s = svc("plain", vec![]);
        assert!(plan(&s.0, &pods(vec![pod("a", "10.0.0.1")])).unwrap().endpoints.subsets.is_none());
    }

    #[test]
    fn no_endpoints_gives_a_placeholder_slice() {
        let s = svc("web", vec![sport("http", 80, None)]);
        let out = plan(&s.0, &[]).unwrap();
        assert!(out.endpoints.subsets.is_none());
        assert_eq!(out.slices.len(), 1);
        assert!(out.slices[0].endpoints.is_empty() && out.slices[0].ports.is_none());
    }

    #[test]
    fn other_namespaces_and_labels_are_ignored() {
        let s = svc("web", vec![sport("http", 80, None)]);
        let mut elsewhere = pod("x", "10.0.0.7");
        elsewhere.0.metadata.namespace = Some("other".into());
        let mut unlabeled = pod("y", "10.0.0.8");
        unlabeled.0.metadata.labels = None;
        let out = plan(&s.0, &pods(vec![elsewhere, unlabeled])).unwrap();
        assert!(out.endpoints.subsets.is_none());
    }

    #[test]
    fn dual_stack_gets_slices_per_family_and_endpoints_use_the_primary() {
        let mut s = svc("web", vec![sport("http", 80, None)]);
        s.spec().ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
        let mut p = pod("a", "10.0.0.1");
        p.0.status.as_mut().unwrap().pod_ips =
            Some(vec![PodIP { ip: "10.0.0.1".into() }, PodIP { ip: "fd00::1".into() }]);
        let out = plan(&s.0, &pods(vec![p])).unwrap();
        assert_eq!(ips(&out.endpoints.subsets.as_ref().unwrap()[0].addresses), vec!["fd00::1"]);
        let types: BTreeSet<&str> = out.slices.iter().map(|s| s.address_type.as_str()).collect();
        assert_eq!(types, ["IPv4", "IPv6"].into_iter().collect());
    }

    #[test]
    fn large_services_are_chunked_and_truncated() {
        let s = svc("big", vec![sport("http", 80, None)]);
        let ps: Vec<Pod> =
            (0..1100).map(|i| pod(&format!("p{i:04}"), &format!("10.{}.{}.1", i / 256, i % 256)).0).collect();
        let out = plan(&s.0, &ps).unwrap();
        assert_eq!(out.slices.len(), 11);
        assert!(out.slices.iter().all(|s| s.endpoints.len() == 100));
        let names: BTreeSet<&String> = out.slices.iter().filter_map(|s| s.metadata.name.as_ref()).collect();
        assert_eq!(names.len(), 11, "slice names are distinct");
        let subsets = out.endpoints.subsets.as_ref().unwrap();
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), MAX_ENDPOINTS_ADDRESSES);
        assert_eq!(out.endpoints.metadata.annotations.as_ref().unwrap()[ANNOTATION_OVER_CAPACITY], "truncated");
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let addr = |i: usize| EndpointAddress { ip: format!("10.0.{}.{}", i / 256, i % 256), ..Default::default() };
        let mut subsets = vec![EndpointSubset {
            addresses: Some((0..900).map(addr).collect()),
            not_ready_addresses: Some((900..1200).map(addr).collect()),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 900);
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 100);
    }

    proptest! {
        /// Shuffling the pods changes nothing; every ready matching pod with an IP is a ready
        /// address once per port set, and in exactly one slice.
        #[test]
        fn content_is_independent_of_pod_order(
            specs in proptest::collection::vec((0u8..40, any::<bool>(), any::<bool>(), 0u8..3), 0..25),
            seed in any::<u64>(),
        ) {
            let s = svc("web", vec![
                sport("http", 80, Some(IntOrString::String("web".into()))),
                sport("metrics", 9100, None),
            ]);
            let ps: Vec<Pod> = specs
                .iter()
                .enumerate()
                .map(|(i, (ip, ready, terminating, port))| {
                    let mut b = pod(&format!("p{i}"), &format!("10.0.0.{ip}"));
                    if !ready { b = b.not_ready(); }
                    if *terminating { b = b.terminating(); }
                    match port {
                        0 => b = b.named_port("web", 8080),
                        1 => b = b.named_port("web", 8081),
                        _ => {}
                    }
                    b.0
                })
                .collect();
            let mut shuffled = ps.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let a = plan(&s.0, &ps).unwrap();
            let b = plan(&s.0, &shuffled).unwrap();
            prop_assert_eq!(&a, &b);

            for (i, (_, ready, terminating, _)) in specs.iter().enumerate() {
                let name = format!("p{i}");
                let in_slices = a.slices.iter().flat_map(|s| &s.endpoints)
                    .filter(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
                    .count();
                prop_assert_eq!(in_slices, 1);
                // Every pod serves port 9100: the subset offering it lists the pod once, as ready
                // or not ready (terminating pods are left out). A pod may be in several subsets.
                let with_9100: Vec<&EndpointSubset> = a.endpoints.subsets.iter().flatten()
                    .filter(|s| s.ports.iter().flatten().any(|p| p.port == 9100))
                    .collect();
                let count = |list: fn(&EndpointSubset) -> &Option<Vec<EndpointAddress>>| with_9100.iter()
                    .flat_map(|s| list(s).iter().flatten())
                    .filter(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
                    .count();
                let as_ready = count(|s| &s.addresses);
                let as_not_ready = count(|s| &s.not_ready_addresses);
                prop_assert_eq!(as_ready, usize::from(*ready && !*terminating));
                prop_assert_eq!(as_not_ready, usize::from(!*ready && !*terminating));
            }
        }
    }
}
