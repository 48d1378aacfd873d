//! ClusterIP and NodePort allocation for Services.
//!
//! Every allocated address or port is a key in the store
//! (`/registry/ranges/serviceips/<ip>`, `/registry/ranges/servicenodeports/<port>`)
//! claimed in the same transaction that writes the Service, with a "must not exist"
//! compare. Two replicas allocating at once cannot both win: the loser's
//! transaction fails and it picks again. Deleting the Service releases its keys in
//! the same transaction.

use super::error::FieldError;
use super::store::Side;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::Ipv4Addr;

pub const IP_PREFIX: &str = "/registry/ranges/serviceips/";
pub const PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";

/// The ranges Services are given addresses and ports from.
#[derive(Debug, Clone)]
pub struct Ranges {
    pub network: u32,
    pub prefix_len: u32,
    pub ports: (u16, u16),
}

impl Default for Ranges {
    fn default() -> Self {
        Self { network: u32::from(Ipv4Addr::new(10, 96, 0, 0)), prefix_len: 16, ports: (30000, 32767) }
    }
}

impl Ranges {
    pub fn parse(cidr: &str, ports: &str) -> Result<Self, String> {
        let (ip, len) = cidr.split_once('/').ok_or_else(|| format!("{cidr:?} is not a CIDR like 10.96.0.0/16"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{cidr:?}: {ip:?} is not an IPv4 address"))?;
        let len: u32 = len
            .parse()
            .ok()
            .filter(|l| (8..=30).contains(l))
            .ok_or_else(|| format!("{cidr:?}: the prefix length must be 8 to 30"))?;
        let mask = u32::MAX << (32 - len);
        let (lo, hi) =
            ports.split_once('-').ok_or_else(|| format!("{ports:?} is not a port range like 30000-32767"))?;
        let lo: u16 = lo.parse().map_err(|_| format!("{ports:?}: bad start port"))?;
        let hi: u16 = hi.parse().map_err(|_| format!("{ports:?}: bad end port"))?;
        if lo > hi || lo == 0 {
            return Err(format!("{ports:?}: the range is empty"));
        }
        Ok(Self { network: u32::from(ip) & mask, prefix_len: len, ports: (lo, hi) })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix_len)
    }

    pub fn contains(&self, ip: &str) -> bool {
        let Ok(ip) = ip.parse::<Ipv4Addr>() else { return false };
        let v = u32::from(ip);
        let mask = u32::MAX << (32 - self.prefix_len);
        // Network and broadcast addresses are not usable.
        v & mask == self.network && v != self.network && v != self.network + self.size() - 1
    }

    /// The first usable address: the `kubernetes` Service's.
    pub fn first(&self) -> String {
        Ipv4Addr::from(self.network + 1).to_string()
    }

    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network), self.prefix_len)
    }

    fn random_ip(&self, avoid: &HashSet<String>) -> Option<String> {
        // Skip the network address, the first address (reserved for `kubernetes`)
        // and broadcast. Random start, then linear probing.
        let usable = self.size().saturating_sub(3);
        if usable == 0 {
            return None;
        }
        let start = rand::random_range(0..usable);
        (0..usable)
            .map(|i| Ipv4Addr::from(self.network + 2 + (start + i) % usable).to_string())
            .find(|ip| !avoid.contains(&ip_key(ip)))
    }

    fn random_port(&self, avoid: &HashSet<String>) -> Option<u16> {
        let n = u32::from(self.ports.1 - self.ports.0) + 1;
        let start = rand::random_range(0..n);
        (0..n).map(|i| self.ports.0 + ((start + i) % n) as u16).find(|p| !avoid.contains(&port_key(*p)))
    }
}

pub fn ip_key(ip: &str) -> String {
    format!("{IP_PREFIX}{ip}")
}

pub fn port_key(port: u16) -> String {
    format!("{PORT_PREFIX}{port}")
}

fn wants_cluster_ip(svc: &Value) -> bool {
    let ty = svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP");
    ty != "ExternalName" && svc.pointer("/spec/clusterIP").and_then(Value::as_str) != Some("None")
}

fn wants_node_ports(svc: &Value) -> bool {
    matches!(svc.pointer("/spec/type").and_then(Value::as_str), Some("NodePort" | "LoadBalancer"))
}

/// The allocation keys a stored Service holds.
pub fn held_by(svc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(ip) =
        svc.pointer("/spec/clusterIP").and_then(Value::as_str).filter(|ip| !ip.is_empty() && *ip != "None")
    {
        out.push(ip_key(ip));
    }
    for p in svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten() {
        if let Some(port) = p["nodePort"].as_u64().filter(|p| *p > 0) {
            out.push(port_key(port as u16));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What a write of `svc` must claim and release, filling in the addresses and
/// ports it asks the server to choose. `taken` are keys known to be held;
/// returns the side effects and the keys the *user* asked for explicitly (a
/// clash on those is an error, not a reason to pick again).
pub fn plan(
    svc: &mut Value,
    old: Option<&Value>,
    ranges: &Ranges,
    taken: &HashSet<String>,
) -> Result<(Side, HashSet<String>), Vec<FieldError>> {
    let owner = format!(
        "{}/{}",
        svc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(""),
        svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
    );
    let before: HashSet<String> = old.map(held_by).unwrap_or_default().into_iter().collect();
    let mut explicit = HashSet::new();
    let mut errs = Vec::new();
    let mut avoid: HashSet<String> = taken.iter().filter(|k| !before.contains(*k)).cloned().collect();

    // The cluster IP.
    if wants_cluster_ip(svc) {
        let asked = svc.pointer("/spec/clusterIP").and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
        let kept = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty() && *ip != "None")
            .map(String::from);
        let ip = match (asked, kept) {
            (None, Some(k)) => Some(k),
            (Some(a), _) => {
                if !ranges.contains(&a) && a != ranges.first() {
                    errs.push(FieldError::invalid(
                        "spec.clusterIPs",
                        json!([a]).to_string().replace('"', ""),
                        format!("failed to allocate IP {a}: provided IP is not in the valid range. The range of valid IPs is {}", ranges.cidr()),
                    ));
                    None
                } else {
                    if avoid.contains(&ip_key(&a)) {
                        errs.push(FieldError::invalid(
                            "spec.clusterIPs",
                            json!([a]).to_string().replace('"', ""),
                            format!("failed to allocate IP {a}: provided IP is already allocated"),
                        ));
                    }
                    explicit.insert(ip_key(&a));
                    Some(a)
                }
            }
            (None, None) => match ranges.random_ip(&avoid) {
                Some(ip) => Some(ip),
                None => {
                    errs.push(FieldError::forbidden(
                        "spec.clusterIPs",
                        "failed to allocate IP: the service IP range is full",
                    ));
                    None
                }
            },
        };
        if let Some(ip) = ip {
            avoid.insert(ip_key(&ip));
            svc["spec"]["clusterIP"] = json!(ip);
            svc["spec"]["clusterIPs"] = json!([ip]);
            svc["spec"]["ipFamilies"] = json!(["IPv4"]);
            svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        }
    } else if svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
        svc["spec"]["clusterIPs"] = json!(["None"]);
    }

    // Node ports.
    let node_ports = wants_node_ports(svc);
    if node_ports && let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        let mut used_here = HashSet::new();
        let previous: Vec<(u64, String, u64)> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        Some((
                            p["port"].as_u64()?,
                            p["protocol"].as_str().unwrap_or("TCP").to_string(),
                            p["nodePort"].as_u64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (i, p) in ports.iter_mut().enumerate() {
            // An update that leaves a port's nodePort out keeps the one it had.
            if p["nodePort"].as_u64().filter(|n| *n > 0).is_none() {
                let proto = p["protocol"].as_str().unwrap_or("TCP").to_string();
                if let Some((_, _, n)) =
                    previous.iter().find(|(port, pr, _)| Some(*port) == p["port"].as_u64() && *pr == proto)
                {
                    p["nodePort"] = json!(n);
                }
            }
            let asked = p["nodePort"].as_u64().filter(|n| *n > 0);
            let port = match asked {
                Some(n) => {
                    let n16 = u16::try_from(n).unwrap_or(0);
                    if n16 < ranges.ports.0 || n16 > ranges.ports.1 {
                        errs.push(FieldError::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            n,
                            format!(
                                "provided port is not in the valid range. The range of valid ports is {}-{}",
                                ranges.ports.0, ranges.ports.1
                            ),
                        ));
                        continue;
                    }
                    if avoid.contains(&port_key(n16)) && !used_here.contains(&n16) {
                        errs.push(FieldError::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            n,
                            "provided port is already allocated",
                        ));
                        continue;
                    }
                    if !before.contains(&port_key(n16)) {
                        explicit.insert(port_key(n16));
                    }
                    n16
                }
                None => match ranges.random_port(&avoid) {
                    Some(n) => n,
                    None => {
                        errs.push(FieldError::forbidden(
                            format!("spec.ports[{i}].nodePort"),
                            "failed to allocate a port: the node port range is full",
                        ));
                        continue;
                    }
                },
            };
            used_here.insert(port);
            avoid.insert(port_key(port));
            p["nodePort"] = json!(port);
        }
    }
    if !wants_node_ports(svc)
        && let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
    {
        for p in ports {
            if let Some(m) = p.as_object_mut() {
                m.remove("nodePort");
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let after: HashSet<String> = held_by(svc).into_iter().collect();
    let side = Side {
        claim: after.difference(&before).map(|k| (k.clone(), owner.clone().into_bytes())).collect(),
        release: before.difference(&after).cloned().collect(),
    };
    Ok((side, explicit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ty: &str) -> Value {
        json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"type": ty, "ports": [{"port": 80}]}})
    }

    #[test]
    fn cluster_ips_and_node_ports_are_allocated_and_released() {
        let r = Ranges::default();
        let mut s = svc("NodePort");
        let (side, explicit) = plan(&mut s, None, &r, &HashSet::new()).unwrap();
        assert!(explicit.is_empty());
        let ip = s["spec"]["clusterIP"].as_str().unwrap().to_string();
        assert!(r.contains(&ip) && ip != "10.96.0.1");
        let port = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&port));
        assert_eq!(side.claim.len(), 2);
        // Switching to ClusterIP gives the node port back, keeps the IP.
        let mut next = s.clone();
        next["spec"]["type"] = json!("ClusterIP");
        let (side, _) = plan(&mut next, Some(&s), &r, &held_by(&s).into_iter().collect()).unwrap();
        assert_eq!(side.release, vec![port_key(port as u16)]);
        assert!(side.claim.is_empty());
        assert_eq!(next["spec"]["clusterIP"], json!(ip));
    }

    #[test]
    fn explicit_choices_are_checked() {
        let r = Ranges::default();
        let mut s = svc("ClusterIP");
        s["spec"]["clusterIP"] = json!("192.168.1.1");
        let errs = plan(&mut s, None, &r, &HashSet::new()).unwrap_err();
        assert!(errs[0].to_string().contains("not in the valid range"), "{}", errs[0]);
        let mut s = svc("NodePort");
        s["spec"]["ports"][0]["nodePort"] = json!(30080);
        let taken: HashSet<String> = [port_key(30080)].into_iter().collect();
        let errs = plan(&mut s, None, &r, &taken).unwrap_err();
        assert!(errs[0].to_string().contains("already allocated"), "{}", errs[0]);
        let mut s = svc("NodePort");
        s["spec"]["ports"][0]["nodePort"] = json!(80);
        assert!(plan(&mut s, None, &r, &HashSet::new()).is_err());
        // Headless and ExternalName services take nothing.
        let mut s = svc("ClusterIP");
        s["spec"]["clusterIP"] = json!("None");
        let (side, _) = plan(&mut s, None, &r, &HashSet::new()).unwrap();
        assert!(side.is_empty());
    }

    #[test]
    fn ranges_parse() {
        let r = Ranges::parse("10.100.0.0/24", "31000-31005").unwrap();
        assert_eq!(r.first(), "10.100.0.1");
        assert!(r.contains("10.100.0.200") && !r.contains("10.100.0.255") && !r.contains("10.101.0.5"));
        assert!(Ranges::parse("10.0.0.0", "1-2").is_err());
        assert!(Ranges::parse("10.0.0.0/16", "5-1").is_err());
    }
}
