//! The core kinds other than Pod: Service, ConfigMap, Secret, Namespace, Node,
//! Event, ServiceAccount (metadata only) and Endpoints — defaults from
//! `pkg/apis/core/v1/defaults.go` (plus the Service and Namespace strategies'
//! create-time normalization) and rules from `pkg/apis/core/validation`.

use super::decode::{DecodeError, go_base64};
use super::pod::{port_num_or_name, resource_list, validate_taint_effect};
use super::quantity::Quantity;
use super::{
    Errs, Path, duplicate, each, endpoint_ip, forbidden, immutable, invalid, json_of, non_special_ip, not_supported,
    parse_ip, port_num, required, semantic_eq, valid_cidr, valid_ip, validate_labels,
};
use crate::api::error::FieldError;
use crate::api::meta;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ClientIPConfig, ConfigMap, EndpointAddress, EndpointPort, Endpoints, Event, Namespace, NamespaceSpec,
    NamespaceStatus, Node, Secret, Service, ServicePort, ServiceSpec, SessionAffinityConfig, Taint,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn list<T>(v: &Option<Vec<T>>) -> &[T] {
    v.as_deref().unwrap_or_default()
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or_default()
}

/// Secrets and config maps may hold at most this many bytes of data.
const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// Rewrites the base64 values of `field` (Secret `data`, ConfigMap `binaryData`)
/// the way Go decodes them (line breaks and sloppy trailing bits allowed), so the
/// strict decoder of k8s-openapi accepts what Kubernetes accepts and rejects the
/// rest with Go's message.
pub fn normalize_base64(obj: &mut Value, field: &str) -> Result<(), DecodeError> {
    let Some(map) = obj.get_mut(field).and_then(Value::as_object_mut) else { return Ok(()) };
    for v in map.values_mut() {
        if let Value::String(s) = v {
            *s = go_base64(s).map_err(DecodeError)?;
        }
    }
    Ok(())
}

// === Service ===

fn externally_accessible(spec: &ServiceSpec) -> bool {
    match s(&spec.type_) {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => !list(&spec.external_ips).is_empty(),
        _ => false,
    }
}

/// SetDefaults_Service, and the strategy's `NormalizeClusterIPs` for a new
/// service (an old client sets only `clusterIP`).
pub fn default_service(svc: &mut Service) -> Result<(), DecodeError> {
    let spec = svc.spec.get_or_insert_with(Default::default);
    let affinity = spec.session_affinity.get_or_insert_with(|| "None".into()).clone();
    if affinity == "None" {
        spec.session_affinity_config = None;
    }
    if affinity == "ClientIP"
        && spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .is_none()
    {
        spec.session_affinity_config =
            Some(SessionAffinityConfig { client_ip: Some(ClientIPConfig { timeout_seconds: Some(10800) }) });
    }
    let type_ = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
    for port in spec.ports.iter_mut().flatten() {
        port.protocol.get_or_insert_with(|| "TCP".into());
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    if externally_accessible(spec) && s(&spec.external_traffic_policy).is_empty() {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    if spec.internal_traffic_policy.is_none() && matches!(type_.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        spec.internal_traffic_policy = Some("Cluster".into());
    }
    if type_ == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
        let ingress = svc
            .status
            .iter_mut()
            .flat_map(|st| st.load_balancer.iter_mut())
            .flat_map(|lb| lb.ingress.iter_mut().flatten());
        for ing in ingress {
            if !s(&ing.ip).is_empty() && ing.ip_mode.is_none() {
                ing.ip_mode = Some("VIP".into());
            }
        }
    }
    if !s(&spec.cluster_ip).is_empty() && list(&spec.cluster_ips).is_empty() {
        spec.cluster_ips = Some(vec![s(&spec.cluster_ip).to_string()]);
    }
    Ok(())
}

fn is_headless(spec: &ServiceSpec) -> bool {
    matches!(list(&spec.cluster_ips), [only] if only == "None")
}

/// ValidateService.
pub fn validate_service(svc: &Service, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let spec = svc.spec.clone().unwrap_or_default();
    let p = Path::new("spec");
    let type_ = s(&spec.type_);
    let headless = is_headless(&spec);
    let ports = list(&spec.ports);
    if ports.is_empty() && !headless && type_ != "ExternalName" {
        errs.push(required(&p.child("ports"), ""));
    }
    match type_ {
        "LoadBalancer" | "NodePort" if headless => errs.push(invalid(
            &p.child("clusterIPs").index(0),
            "None",
            format!("may not be set to 'None' for {type_} services"),
        )),
        "ExternalName" => {
            for (field, set) in [
                ("clusterIPs", !list(&spec.cluster_ips).is_empty()),
                ("ipFamilies", !list(&spec.ip_families).is_empty()),
                ("ipFamilyPolicy", spec.ip_family_policy.is_some()),
            ] {
                if set {
                    errs.push(forbidden(&p.child(field), "may not be set for ExternalName services"));
                }
            }
            // The name may end with a dot to mark it fully qualified.
            let cname = s(&spec.external_name).strip_suffix('.').unwrap_or(s(&spec.external_name));
            if cname.is_empty() {
                errs.push(required(&p.child("externalName"), ""));
            } else {
                each(meta::dns1123_subdomain, cname, &p.child("externalName"), &mut errs);
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        validate_service_port(port, ports.len() > 1, &mut names, &p.child("ports").index(i), &mut errs);
    }
    if spec.selector.is_some() {
        validate_labels(spec.selector.as_ref(), &p.child("selector"), &mut errs);
    }
    let affinity = s(&spec.session_affinity);
    match affinity {
        "" => errs.push(required(&p.child("sessionAffinity"), "")),
        "ClientIP" | "None" => {}
        other => errs.push(not_supported(&p.child("sessionAffinity"), other, &["ClientIP", "None"])),
    }
    let cp = p.child("sessionAffinityConfig");
    if affinity == "ClientIP" {
        let detail = "when session affinity type is ClientIP";
        match spec.session_affinity_config.as_ref().map(|c| c.client_ip.as_ref().map(|ip| ip.timeout_seconds)) {
            None => errs.push(required(&cp, detail)),
            Some(None) => errs.push(required(&cp.child("clientIP"), detail)),
            Some(Some(None)) => errs.push(required(&cp.child("clientIP").child("timeoutSeconds"), detail)),
            Some(Some(Some(t))) if !(1..=86400).contains(&t) => errs.push(invalid(
                &cp.child("clientIP").child("timeoutSeconds"),
                t,
                "must be greater than 0 and less than 86400",
            )),
            _ => {}
        }
    } else if affinity == "None" && spec.session_affinity_config.is_some() {
        errs.push(forbidden(&cp, "must not be set when session affinity is None"));
    }
    validate_cluster_ips(&spec, &p, &mut errs);
    for (i, ip) in list(&spec.external_ips).iter().enumerate() {
        let ip_path = p.child("externalIPs").index(i);
        if valid_ip(&ip_path, ip, &mut errs) {
            non_special_ip(&ip_path, ip, &mut errs);
        }
    }
    match type_ {
        "" => errs.push(required(&p.child("type"), "")),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.push(not_supported(
            &p.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if type_ == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.node_port.unwrap_or(0) != 0 {
                errs.push(forbidden(
                    &p.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = port.node_port.unwrap_or(0);
        if np != 0 && !node_ports.insert((s(&port.protocol), np)) {
            errs.push(duplicate(&p.child("ports").index(i).child("nodePort"), np));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        if !seen.insert((s(&port.protocol), port.port)) {
            // Kubernetes prints the (protocol, port) key as a whole ServicePort.
            let key = format!(
                "core.ServicePort{{Name:\"\", Protocol:\"{}\", AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                s(&port.protocol),
                port.port
            );
            errs.push(duplicate(&p.child("ports").index(i), key));
        }
    }
    let ranges = list(&spec.load_balancer_source_ranges);
    if !ranges.is_empty() {
        // Kubernetes' own capitalization of this path.
        let rp = p.child("LoadBalancerSourceRanges");
        if type_ != "LoadBalancer" {
            errs.push(forbidden(&rp, "may only be used when `type` is 'LoadBalancer'"));
        }
        for (i, r) in ranges.iter().enumerate() {
            valid_cidr(&rp.index(i), r.trim(), &mut errs);
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && type_ != "LoadBalancer" {
        errs.push(forbidden(
            &p.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if type_ == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        // Kubernetes reports this one without the `spec.` prefix.
        errs.push(required(&Path::new("allocateLoadBalancerNodePorts"), ""));
    }
    if let Some(class) = &spec.load_balancer_class {
        if type_ != "LoadBalancer" {
            errs.push(forbidden(&p.child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"));
        } else {
            each(meta::qualified_name, class, &p.child("loadBalancerClass"), &mut errs);
        }
    }
    let etp = s(&spec.external_traffic_policy);
    if !externally_accessible(&spec) {
        if !etp.is_empty() {
            errs.push(invalid(
                &p.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(required(&p.child("externalTrafficPolicy"), ""));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(not_supported(&p.child("externalTrafficPolicy"), etp, &["Cluster", "Local"]));
    }
    let needs_health_check = type_ == "LoadBalancer" && etp == "Local";
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check && hc != 0 {
        errs.push(invalid(
            &p.child("healthCheckNodePort"),
            hc,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    } else if needs_health_check && hc != 0 {
        for m in port_num(hc.into()) {
            errs.push(invalid(&p.child("healthCheckNodePort"), hc, m));
        }
    }
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(type_, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(required(&p.child("internalTrafficPolicy"), ""))
        }
        Some(itp) if !matches!(itp, "Cluster" | "Local") => {
            errs.push(not_supported(&p.child("internalTrafficPolicy"), itp, &["Cluster", "Local"]))
        }
        _ => {}
    }
    if let Some(td) = &spec.traffic_distribution
        && td != "PreferClose"
    {
        errs.push(not_supported(&p.child("trafficDistribution"), td, &["PreferClose"]));
    }
    errs
}

/// validateServicePort.
fn validate_service_port<'a>(
    sp: &'a ServicePort,
    require_name: bool,
    names: &mut BTreeSet<&'a str>,
    p: &Path,
    errs: &mut Errs,
) {
    let name = s(&sp.name);
    if require_name && name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else if !name.is_empty() {
        each(meta::dns1123_label, name, &p.child("name"), errs);
        if !names.insert(name) {
            errs.push(duplicate(&p.child("name"), name));
        }
    }
    for m in port_num(sp.port.into()) {
        errs.push(invalid(&p.child("port"), sp.port, m));
    }
    match s(&sp.protocol) {
        "" => errs.push(required(&p.child("protocol"), "")),
        "TCP" | "UDP" | "SCTP" => {}
        other => errs.push(not_supported(&p.child("protocol"), other, &["SCTP", "TCP", "UDP"])),
    }
    port_num_or_name(sp.target_port.as_ref().unwrap_or(&IntOrString::Int(0)), &p.child("targetPort"), errs);
    if let Some(ap) = &sp.app_protocol {
        each(meta::qualified_name, ap, &p.child("appProtocol"), errs);
    }
}

/// ValidateServiceClusterIPsRelatedFields.
fn validate_cluster_ips(spec: &ServiceSpec, p: &Path, errs: &mut Errs) {
    if s(&spec.type_) == "ExternalName" {
        return;
    }
    let ips = list(&spec.cluster_ips);
    let ips_path = p.child("clusterIPs");
    let cluster_ip = s(&spec.cluster_ip);
    if !cluster_ip.is_empty() {
        match ips.first() {
            None => errs.push(required(&ips_path, "")),
            Some(first) if first != cluster_ip => {
                errs.push(invalid(&ips_path, json_of(&ips), "first value must match `clusterIP`"))
            }
            _ => {}
        }
    } else if !ips.is_empty() {
        errs.push(invalid(&ips_path, json_of(&ips), "must be empty when `clusterIP` is not specified"));
    }
    let mut seen = BTreeSet::new();
    for (i, fam) in list(&spec.ip_families).iter().enumerate() {
        let fp = p.child("ipFamilies").index(i);
        if !matches!(fam.as_str(), "IPv4" | "IPv6") {
            errs.push(not_supported(&fp, fam, &["IPv4", "IPv6"]));
        }
        if !seen.insert(fam) {
            errs.push(duplicate(&fp, fam));
        }
    }
    if let Some(policy) = &spec.ip_family_policy
        && !matches!(policy.as_str(), "PreferDualStack" | "RequireDualStack" | "SingleStack")
    {
        errs.push(not_supported(
            &p.child("ipFamilyPolicy"),
            policy,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    let mut bad_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                bad_ips = true;
                errs.push(invalid(&ips_path, json_of(&ips), "'None' must be the first and only value"));
            }
            continue;
        }
        bad_ips |= !valid_ip(&ips_path.index(i), ip, errs);
    }
    if ips.len() > 2 {
        errs.push(invalid(&ips_path, json_of(&ips), "may only hold up to 2 values"));
    }
    if bad_ips {
        return;
    }
    let v6 = |ip: &str| matches!(parse_ip(ip), Some(std::net::IpAddr::V6(_)));
    if ips.len() > 1 && ips.len() <= 2 && v6(&ips[0]) == v6(&ips[1]) {
        errs.push(invalid(&ips_path, json_of(&ips), "may specify no more than one IP for each IP family"));
    }
    if !is_headless(spec) {
        for (i, (ip, fam)) in ips.iter().zip(list(&spec.ip_families)).enumerate() {
            if fam == "IPv4" && v6(ip) {
                errs.push(invalid(
                    &ips_path.index(i),
                    ip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if fam == "IPv6" && !v6(ip) {
                errs.push(invalid(
                    &ips_path.index(i),
                    ip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
}

/// ValidateServiceUpdate: allocated cluster IPs and IP families cannot move (a
/// service may gain or drop a secondary one), plus the create rules.
pub fn validate_service_update(new: &Service, new_raw: &Value, old: &Service, _old_raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let ns = new.spec.clone().unwrap_or_default();
    let os = old.spec.clone().unwrap_or_default();
    let p = Path::new("spec");
    let external = s(&ns.type_) == "ExternalName" || s(&os.type_) == "ExternalName";
    // A body that leaves clusterIP out keeps the allocated one (Kubernetes copies
    // it from the old object before validating).
    let omitted = s(&ns.cluster_ip).is_empty() && list(&ns.cluster_ips).is_empty();
    let both_headless = is_headless(&ns) && is_headless(&os);
    if !(external || omitted || both_headless) {
        let (n, o) = (list(&ns.cluster_ips), list(&os.cluster_ips));
        let ips_path = p.child("clusterIPs");
        if n.len() == o.len() {
            for (i, ip) in o.iter().enumerate() {
                if *ip != n[i] {
                    errs.push(invalid(&ips_path.index(i), json_of(&n), "may not change once set"));
                }
            }
        } else if o.len() > n.len() {
            if n.is_empty() {
                errs.push(invalid(&ips_path.index(0), json_of(&n), "primary clusterIP can not be unset"));
            }
            if !n.is_empty() && n[0] != o[0] {
                errs.push(invalid(&ips_path.index(0), json_of(&n), "may not change once set"));
            }
            if n.len() == 1 && ns.ip_family_policy.as_deref() != Some("SingleStack") {
                errs.push(invalid(
                    &p.child("ipFamilyPolicy"),
                    s(&ns.ip_family_policy),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !o.is_empty() && n[0] != o[0] {
            errs.push(invalid(&ips_path.index(0), json_of(&n), "may not change once set"));
        }
    }
    let (nf, of) = (list(&ns.ip_families), list(&os.ip_families));
    let omitted_families = nf.is_empty();
    if !external && !omitted_families && is_headless(&ns) == is_headless(&os) && !is_headless(&ns) {
        let fp = p.child("ipFamilies").index(0);
        if nf.len() == of.len() {
            if nf != of {
                errs.push(invalid(&fp, json_of(&nf), "may not change once set"));
            }
        } else if of.len() > nf.len() {
            if nf[0] != of[0] {
                errs.push(invalid(&fp, json_of(&nf), "may not change once set"));
            }
            if nf.len() == 1 && ns.ip_family_policy.as_deref() != Some("SingleStack") {
                errs.push(invalid(
                    &p.child("ipFamilyPolicy"),
                    s(&ns.ip_family_policy),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                ));
            }
        } else if !of.is_empty() && nf[0] != of[0] {
            errs.push(invalid(&fp, json_of(&nf), "may not change once set"));
        }
    }
    if s(&os.type_) == "LoadBalancer"
        && s(&ns.type_) == "LoadBalancer"
        && ns.load_balancer_class != os.load_balancer_class
    {
        errs.push(invalid(&p.child("loadBalancerClass"), s(&ns.load_balancer_class), "may not change once set"));
    }
    let needs = |sp: &ServiceSpec| s(&sp.type_) == "LoadBalancer" && s(&sp.external_traffic_policy) == "Local";
    if needs(&ns)
        && needs(&os)
        && ns.health_check_node_port != os.health_check_node_port
        && ns.health_check_node_port.is_some()
    {
        errs.push(forbidden(&p.child("healthCheckNodePort"), "field is immutable"));
    }
    errs.extend(validate_service(new, new_raw));
    errs
}

// === ConfigMap ===

/// ValidateConfigMap.
pub fn validate_config_map(cm: &ConfigMap, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let mut total = 0;
    let binary = cm.binary_data.clone().unwrap_or_default();
    for (k, v) in cm.data.iter().flatten() {
        let kp = Path::new("data").key(k);
        each(super::config_map_key, k, &kp, &mut errs);
        if binary.contains_key(k) {
            errs.push(invalid(&kp, k, "duplicate of key present in binaryData"));
        }
        total += v.len();
    }
    for (k, v) in &binary {
        each(super::config_map_key, k, &Path::new("binaryData").key(k), &mut errs);
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        // The whole object is too large: Kubernetes reports it on an empty path.
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE));
    }
    errs
}

/// ValidateConfigMapUpdate: an immutable config map keeps its data for good.
pub fn validate_config_map_update(new: &ConfigMap, new_raw: &Value, old: &ConfigMap, _old_raw: &Value) -> Errs {
    let mut errs = Vec::new();
    if old.immutable == Some(true) {
        immutable_data(
            new.immutable,
            &[
                ("data", semantic_eq(&new.data, &old.data)),
                ("binaryData", semantic_eq(&new.binary_data, &old.binary_data)),
            ],
            &mut errs,
        );
    }
    errs.extend(validate_config_map(new, new_raw));
    errs
}

fn immutable_data(now: Option<bool>, same: &[(&str, bool)], errs: &mut Errs) {
    const MSG: &str = "field is immutable when `immutable` is set";
    if now != Some(true) {
        errs.push(forbidden(&Path::new("immutable"), MSG));
    }
    for (field, same) in same {
        if !same {
            errs.push(forbidden(&Path::new(field), MSG));
        }
    }
}

// === Secret ===

/// SetDefaults_Secret (type Opaque), and the v1 conversion that folds the
/// write-only `stringData` into `data`.
pub fn default_secret(secret: &mut Secret) -> Result<(), DecodeError> {
    secret.type_.get_or_insert_with(|| "Opaque".into());
    if let Some(strings) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in strings {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
    Ok(())
}

/// ValidateSecret.
pub fn validate_secret(secret: &Secret, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let data = secret.data.clone().unwrap_or_default();
    let dp = Path::new("data");
    let mut total = 0;
    for (k, v) in &data {
        each(super::config_map_key, k, &dp.key(k), &mut errs);
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&dp, MAX_SECRET_SIZE));
    }
    let json_key = |key: &str, errs: &mut Errs| match data.get(key) {
        None => errs.push(required(&dp.key(key), "")),
        Some(bytes) => {
            if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes.0) {
                errs.push(invalid(&dp.key(key), "<secret contents redacted>", e.to_string()));
            }
        }
    };
    match s(&secret.type_) {
        "kubernetes.io/service-account-token" => {
            let name = secret.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/service-account.name"));
            if name.is_none_or(String::is_empty) {
                errs.push(required(
                    &Path::new("metadata").child("annotations").key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => json_key(".dockercfg", &mut errs),
        "kubernetes.io/dockerconfigjson" => json_key(".dockerconfigjson", &mut errs),
        // Either may be empty, but one of them must be there.
        "kubernetes.io/basic-auth" if !data.contains_key("username") && !data.contains_key("password") => {
            errs.push(required(&dp.key("username"), ""));
            errs.push(required(&dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
            errs.push(required(&dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !data.contains_key(key) {
                    errs.push(required(&dp.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// ValidateSecretUpdate: the type never changes; an immutable secret keeps its
/// data.
pub fn validate_secret_update(new: &Secret, new_raw: &Value, old: &Secret, _old_raw: &Value) -> Errs {
    let mut errs = Vec::new();
    if new.type_ != old.type_ {
        errs.push(immutable(&Path::new("type"), s(&new.type_)));
    }
    if old.immutable == Some(true) {
        immutable_data(new.immutable, &[("data", semantic_eq(&new.data, &old.data))], &mut errs);
    }
    errs.extend(validate_secret(new, new_raw));
    errs
}

// === Namespace ===

/// The namespace strategy on create (status Active, the `kubernetes` finalizer)
/// and SetDefaults_Namespace (the `kubernetes.io/metadata.name` label).
/// The finalizer is only added when the list is absent: the namespace controller
/// removes it while deleting, and defaulting must not put it back.
pub fn default_namespace(ns: &mut Namespace) -> Result<(), DecodeError> {
    let spec = ns.spec.get_or_insert_with(NamespaceSpec::default);
    spec.finalizers.get_or_insert_with(|| vec!["kubernetes".into()]);
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    status.phase.get_or_insert_with(|| "Active".into());
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata.labels.get_or_insert_with(BTreeMap::new).insert("kubernetes.io/metadata.name".into(), name);
    }
    Ok(())
}

/// ValidateNamespace: finalizer names.
pub fn validate_namespace(ns: &Namespace, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let p = Path::new("spec").child("finalizers");
    for f in ns.spec.iter().flat_map(|s| list(&s.finalizers)) {
        each(meta::qualified_name, f, &p, &mut errs);
        if !f.contains('/') && !matches!(f.as_str(), "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(invalid(&p, f, "name is neither a standard finalizer name nor is it fully qualified"));
        }
    }
    errs
}

// === Node ===

/// SetDefaults_NodeStatus (allocatable defaults to capacity) and the resource
/// lists' rounding.
pub fn default_node(node: &mut Node) -> Result<(), DecodeError> {
    if let Some(status) = &mut node.status {
        if status.allocatable.is_none() && status.capacity.is_some() {
            status.allocatable = status.capacity.clone();
        }
        for l in [&mut status.capacity, &mut status.allocatable].into_iter().flatten() {
            resource_list(l)?;
        }
    }
    Ok(())
}

/// validateNodeTaints. Kubernetes reports node taints under `metadata.taints`
/// (its ValidateNode passes the metadata path), and so does rk.
fn validate_taints(taints: &[Taint], errs: &mut Errs) {
    let p = Path::new("metadata").child("taints");
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let tp = p.index(i);
        each(meta::qualified_name, &t.key, &tp.child("key"), errs);
        let value = s(&t.value);
        let msgs = meta::label_value(value);
        if !msgs.is_empty() {
            errs.push(invalid(&tp.child("value"), value, msgs.join(";")));
        }
        if t.effect.is_empty() {
            errs.push(required(&tp.child("effect"), ""));
        } else {
            validate_taint_effect(&t.effect, &tp.child("effect"), errs);
        }
        if !seen.insert((&t.effect, &t.key)) {
            let mut e = duplicate(&tp, json_of(t));
            e.detail = "taints must be unique by key and effect pair".into();
            errs.push(e);
        }
    }
}

/// ValidateNodeResources: capacity and allocatable must be valid, non-negative
/// quantities.
fn validate_node_resources(node: &Node, errs: &mut Errs) {
    let Some(status) = &node.status else { return };
    for (field, l) in [("capacity", &status.capacity), ("allocatable", &status.allocatable)] {
        for (k, q) in l.iter().flatten() {
            let p = Path::new("status").child(field).child(k);
            match Quantity::parse(&q.0) {
                None => errs.push(invalid(&p, &q.0, super::quantity::PARSE_ERROR)),
                Some(v) if v.is_negative() => errs.push(invalid(&p, v, super::NEGATIVE)),
                _ => {}
            }
        }
    }
}

/// ValidateNode.
pub fn validate_node(node: &Node, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let spec = node.spec.clone().unwrap_or_default();
    validate_taints(list(&spec.taints), &mut errs);
    validate_node_resources(node, &mut errs);
    let cidrs = list(&spec.pod_cidrs);
    let cp = Path::new("spec").child("podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        valid_cidr(&cp.index(i), c, &mut errs);
    }
    if cidrs.len() > 1 {
        let v6 = |c: &String| c.contains(':');
        if cidrs.len() > 2 || v6(&cidrs[0]) == v6(&cidrs[1]) {
            errs.push(invalid(&cp, json_of(&cidrs), "may specify no more than one CIDR for each IP family"));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c) {
                errs.push(duplicate(&cp.index(i), c));
            }
        }
    }
    errs
}

/// ValidateNodeUpdate: pod CIDRs and the provider ID may only be set once.
pub fn validate_node_update(new: &Node, _new_raw: &Value, old: &Node, _old_raw: &Value) -> Errs {
    let mut errs = Vec::new();
    validate_node_resources(new, &mut errs);
    let mut addresses = BTreeSet::new();
    for (i, a) in new.status.iter().flat_map(|st| list(&st.addresses)).enumerate() {
        if !addresses.insert((a.type_.as_str(), a.address.as_str())) {
            errs.push(duplicate(&Path::new("status").child("addresses").index(i), json_of(a)));
        }
    }
    let ns = new.spec.clone().unwrap_or_default();
    let os = old.spec.clone().unwrap_or_default();
    let (n, o) = (list(&ns.pod_cidrs), list(&os.pod_cidrs));
    if !o.is_empty() {
        let msg = "node updates may not change podCIDR except from \"\" to valid";
        if n.len() != o.len() {
            errs.push(forbidden(&Path::new("spec").child("podCIDRs"), msg));
        } else {
            for (a, b) in o.iter().zip(n) {
                if a != b {
                    errs.push(forbidden(&Path::new("spec").child("podCIDRs"), msg));
                }
            }
        }
    }
    if !s(&os.provider_id).is_empty() && os.provider_id != ns.provider_id {
        errs.push(forbidden(
            &Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    validate_taints(list(&ns.taints), &mut errs);
    if ns.external_id != os.external_id {
        errs.push(forbidden(&Path::new("spec").child("externalID"), "may not be updated"));
    }
    errs
}

// === Event ===

/// legacyValidateEvent (core/v1 events), plus two checks rk adds for every
/// event: an `involvedObject` must be given, and a `type` must be one of the two
/// Kubernetes defines (events.k8s.io's rule and message).
pub fn validate_event(ev: &Event, raw: &Value) -> Errs {
    let mut errs = Vec::new();
    if raw.get("involvedObject").is_none_or(|v| v.is_null() || v.as_object().is_some_and(|o| o.is_empty())) {
        errs.push(required(&Path::new("involvedObject"), ""));
    }
    if let Some(t) = ev.type_.as_deref().filter(|t| !t.is_empty())
        && !matches!(t, "Normal" | "Warning")
    {
        errs.push(invalid(&Path::new("type"), "", format!("has invalid value: {t}")));
    }
    let ns = ev.metadata.namespace.as_deref().unwrap_or_default();
    let involved_ns = s(&ev.involved_object.namespace);
    let ip = Path::new("involvedObject").child("namespace");
    let mismatch = || invalid(&ip, involved_ns, "does not match event.namespace");
    if ev.event_time.is_none() {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(mismatch());
            }
        } else if ns != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        let controller = s(&ev.reporting_component);
        if controller.is_empty() {
            errs.push(required(&Path::new("reportingController"), ""));
        }
        each(meta::qualified_name, controller, &Path::new("reportingController"), &mut errs);
        for (field, value, limit) in [
            ("reportingInstance", s(&ev.reporting_instance), 128),
            ("action", s(&ev.action), 128),
            ("reason", s(&ev.reason), 128),
        ] {
            if value.is_empty() {
                errs.push(required(&Path::new(field), ""));
            }
            if value.len() > limit {
                errs.push(invalid(&Path::new(field), "", format!("can have at most {limit} characters")));
            }
        }
        if s(&ev.message).len() > 1024 {
            errs.push(invalid(&Path::new("message"), "", "can have at most 1024 characters"));
        }
    }
    each(meta::dns1123_subdomain, ns, &Path::new("namespace"), &mut errs);
    errs
}

/// Core/v1 events have no update-only rules: the legacy checks apply again.
pub fn validate_event_update(new: &Event, new_raw: &Value, _old: &Event, _old_raw: &Value) -> Errs {
    validate_event(new, new_raw)
}

// === Endpoints ===

/// SetDefaults_Endpoints: ports default to TCP.
pub fn default_endpoints(ep: &mut Endpoints) -> Result<(), DecodeError> {
    for port in ep.subsets.iter_mut().flatten().flat_map(|ss| ss.ports.iter_mut().flatten()) {
        port.protocol.get_or_insert_with(|| "TCP".into());
    }
    Ok(())
}

/// ValidateEndpoints.
pub fn validate_endpoints(ep: &Endpoints, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    for (i, ss) in list(&ep.subsets).iter().enumerate() {
        let sp = Path::new("subsets").index(i);
        if list(&ss.addresses).is_empty() && list(&ss.not_ready_addresses).is_empty() {
            errs.push(required(&sp, "must specify `addresses` or `notReadyAddresses`"));
        }
        for (j, a) in list(&ss.addresses).iter().enumerate() {
            endpoint_address(a, &sp.child("addresses").index(j), &mut errs);
        }
        for (j, a) in list(&ss.not_ready_addresses).iter().enumerate() {
            endpoint_address(a, &sp.child("notReadyAddresses").index(j), &mut errs);
        }
        let ports = list(&ss.ports);
        for (j, port) in ports.iter().enumerate() {
            endpoint_port(port, ports.len() > 1, &sp.child("ports").index(j), &mut errs);
        }
    }
    errs
}

fn endpoint_address(a: &EndpointAddress, p: &Path, errs: &mut Errs) {
    valid_ip(&p.child("ip"), &a.ip, errs);
    if !s(&a.hostname).is_empty() {
        each(meta::dns1123_label, s(&a.hostname), &p.child("hostname"), errs);
    }
    if let Some(node) = &a.node_name {
        each(meta::dns1123_subdomain, node, &p.child("nodeName"), errs);
    }
    endpoint_ip(&p.child("ip"), &a.ip, errs);
}

fn endpoint_port(port: &EndpointPort, require_name: bool, p: &Path, errs: &mut Errs) {
    let name = s(&port.name);
    if require_name && name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else if !name.is_empty() {
        each(meta::dns1123_label, name, &p.child("name"), errs);
    }
    for m in port_num(port.port.into()) {
        errs.push(invalid(&p.child("port"), port.port, m));
    }
    match s(&port.protocol) {
        "" => errs.push(required(&p.child("protocol"), "")),
        "TCP" | "UDP" | "SCTP" => {}
        other => errs.push(not_supported(&p.child("protocol"), other, &["SCTP", "TCP", "UDP"])),
    }
    if let Some(ap) = &port.app_protocol {
        each(meta::qualified_name, ap, &p.child("appProtocol"), errs);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::messages;
    use super::super::{default, validate_create, validate_update};
    use super::*;
    use crate::api::error::ApiError;
    use serde_json::json;

    fn obj(kind: &str, body: Value) -> Value {
        let mut v = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "default"}});
        for (k, val) in body.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    }

    fn defaulted(kind: &str, body: Value) -> Value {
        let mut v = obj(kind, body);
        default(kind, &mut v).unwrap();
        v
    }

    #[test]
    fn service_defaults() {
        let svc = defaulted("Service", json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}));
        assert_eq!(
            svc["spec"],
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                   "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"})
        );
        assert!(validate_create("Service", &svc).is_empty());
        let lb = defaulted(
            "Service",
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": "https"}]}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(lb["spec"]["ports"][0]["targetPort"], "https");
        let headless = defaulted("Service", json!({"spec": {"clusterIP": "None", "selector": {"app": "db"}}}));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert!(validate_create("Service", &headless).is_empty());
    }

    #[test]
    fn service_rules() {
        let svc = defaulted(
            "Service",
            json!({"spec": {"type": "Magic", "ports": [
            {"port": 80}, {"port": 0, "name": "b", "protocol": "HTTP"}]}}),
        );
        let m = messages(&validate_create("Service", &svc));
        assert_eq!(
            m,
            vec![
                "spec.ports[0].name: Required value".to_string(),
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive".to_string(),
                "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".to_string(),
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive".to_string(),
                "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
                    .to_string(),
            ]
        );
        let svc = defaulted("Service", json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}));
        assert_eq!(
            messages(&validate_create("Service", &svc)),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
        let svc = defaulted("Service", json!({"spec": {}}));
        assert_eq!(messages(&validate_create("Service", &svc)), vec!["spec.ports: Required value"]);
        let svc = defaulted("Service", json!({"spec": {"ports": [{"port": 80}], "selector": {"app": "a b"}}}));
        assert_eq!(validate_create("Service", &svc)[0].field, "spec.selector");
    }

    #[test]
    fn cluster_ip_is_immutable_once_set() {
        let old = defaulted("Service", json!({"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}}));
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.96.0.11");
        new["spec"]["clusterIPs"] = json!(["10.96.0.11"]);
        assert_eq!(
            messages(&validate_update("Service", &old, &new)),
            vec!["spec.clusterIPs[0]: Invalid value: \"[\\\"10.96.0.11\\\"]\": may not change once set"]
        );
        // Setting it when it was empty (allocation) is fine, and so is leaving it out.
        let unset = defaulted("Service", json!({"spec": {"ports": [{"port": 53}]}}));
        assert!(validate_update("Service", &unset, &old).is_empty());
        assert!(validate_update("Service", &old, &unset).is_empty());
    }

    #[test]
    fn config_maps() {
        let cm = defaulted(
            "ConfigMap",
            json!({"data": {"ok.key": "1", "bad key": "2", "..": "3", "dup": "x"},
                                              "binaryData": {"dup": "eA=="}}),
        );
        let m = messages(&validate_create("ConfigMap", &cm));
        assert_eq!(m.len(), 3, "{m:#?}");
        assert_eq!(m[0], "data[..]: Invalid value: \"..\": must not be '..'");
        assert!(m[1].starts_with(
            "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters"
        ));
        assert_eq!(m[2], "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData");
        let big = defaulted("ConfigMap", json!({"data": {"a": "x".repeat(MAX_SECRET_SIZE + 1)}}));
        assert_eq!(
            messages(&validate_create("ConfigMap", &big)),
            vec![": Too long: may not be more than 1048576 bytes"]
        );

        let old = defaulted("ConfigMap", json!({"data": {"a": "1"}, "immutable": true}));
        let mut new = old.clone();
        new["data"]["a"] = json!("2");
        new["immutable"] = json!(false);
        assert_eq!(
            messages(&validate_update("ConfigMap", &old, &new)),
            vec![
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set"
            ]
        );
    }

    #[test]
    fn secrets() {
        let sec = defaulted("Secret", json!({"stringData": {"password": "s3cret"}, "data": {"user": "YWRt\naW4="}}));
        assert_eq!(sec["type"], "Opaque");
        assert_eq!(sec["data"], json!({"password": "czNjcmV0", "user": "YWRtaW4="}));
        assert!(sec.get("stringData").is_none());
        assert!(validate_create("Secret", &sec).is_empty());

        let tls = defaulted("Secret", json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}));
        assert_eq!(messages(&validate_create("Secret", &tls)), vec!["data[tls.key]: Required value"]);
        let sa = defaulted("Secret", json!({"type": "kubernetes.io/service-account-token"}));
        assert_eq!(
            messages(&validate_create("Secret", &sa)),
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        let docker = defaulted(
            "Secret",
            json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "nope"}}),
        );
        assert!(
            messages(&validate_create("Secret", &docker))[0]
                .starts_with("data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\"")
        );
        let basic = defaulted("Secret", json!({"type": "kubernetes.io/basic-auth"}));
        assert_eq!(validate_create("Secret", &basic).len(), 2);
        let ssh = defaulted("Secret", json!({"type": "kubernetes.io/ssh-auth"}));
        assert_eq!(messages(&validate_create("Secret", &ssh)), vec!["data[ssh-privatekey]: Required value"]);

        let mut bad = obj("Secret", json!({"data": {"k": "not base64!"}}));
        match default("Secret", &mut bad).unwrap_err() {
            ApiError::BadRequest(m) => assert_eq!(
                m,
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
            ),
            other => panic!("{other:?}"),
        }

        let mut changed = tls.clone();
        changed["type"] = json!("Opaque");
        assert_eq!(
            messages(&validate_update("Secret", &tls, &changed)),
            vec!["type: Invalid value: \"Opaque\": field is immutable"]
        );
        let old = defaulted("Secret", json!({"data": {"a": "eA=="}, "immutable": true}));
        let mut new = old.clone();
        new["data"]["a"] = json!("eQ==");
        assert_eq!(
            messages(&validate_update("Secret", &old, &new)),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
    }

    #[test]
    fn namespaces() {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
        default("Namespace", &mut ns).unwrap();
        assert_eq!(ns["spec"], json!({"finalizers": ["kubernetes"]}));
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");
        assert!(validate_create("Namespace", &ns).is_empty());
        ns["spec"]["finalizers"] = json!(["custom"]);
        assert_eq!(
            messages(&validate_create("Namespace", &ns)),
            vec![
                "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
        // A finalized namespace keeps its empty list.
        ns["spec"]["finalizers"] = json!([]);
        default("Namespace", &mut ns).unwrap();
        assert_eq!(ns["spec"]["finalizers"], json!([]));
    }

    #[test]
    fn nodes() {
        let node = defaulted(
            "Node",
            json!({"spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "x", "effect": "NoSchedule"},
            {"key": "bad key", "effect": "Sometimes"},
            {"key": "k"}
        ]}, "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}),
        );
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "4", "memory": "8Gi"}));
        let m = messages(&validate_create("Node", &node));
        assert!(m[0].starts_with("metadata.taints[1]: Duplicate value:"), "{m:#?}");
        assert!(m[0].ends_with(": taints must be unique by key and effect pair"));
        assert!(m[1].starts_with("metadata.taints[2].key: Invalid value: \"bad key\""));
        assert_eq!(
            m[2],
            "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
        );
        assert_eq!(m[3], "metadata.taints[3].effect: Required value");

        let old = defaulted("Node", json!({"spec": {"podCIDRs": ["10.244.1.0/24"], "providerID": "rk://n1"}}));
        let mut new = old.clone();
        new["spec"]["podCIDRs"] = json!(["10.244.2.0/24"]);
        new["spec"]["providerID"] = json!("rk://n2");
        assert_eq!(validate_update("Node", &old, &new).len(), 2);
    }

    #[test]
    fn events() {
        let ev = defaulted(
            "Event",
            json!({"involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                                          "reason": "Started", "type": "Normal"}),
        );
        assert!(validate_create("Event", &ev).is_empty());
        let ev = defaulted(
            "Event",
            json!({"reason": "Started", "type": "Loud",
                                          "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}}),
        );
        assert_eq!(
            messages(&validate_create("Event", &ev)),
            vec![
                "type: Invalid value: \"\": has invalid value: Loud",
                "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
            ]
        );
        let ev = defaulted("Event", json!({"reason": "Started"}));
        assert_eq!(messages(&validate_create("Event", &ev)), vec!["involvedObject: Required value"]);
    }

    #[test]
    fn endpoints() {
        let ep = defaulted(
            "Endpoints",
            json!({"subsets": [
                {"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]},
                {"addresses": [{"ip": "0.0.0.0"}, {"ip": "nope"}], "ports": [{"port": 80}, {"port": 81, "name": "b"}]},
                {}
            ]}),
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        let m = messages(&validate_create("Endpoints", &ep));
        assert_eq!(
            m,
            vec![
                "subsets[1].addresses[0].ip: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)".to_string(),
                "subsets[1].addresses[1].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string(),
                "subsets[1].addresses[1].ip: Invalid value: \"nope\": must be a valid IP address".to_string(),
                "subsets[1].ports[0].name: Required value".to_string(),
                "subsets[2]: Required value: must specify `addresses` or `notReadyAddresses`".to_string(),
            ]
        );
    }

    #[test]
    fn service_accounts_have_no_rules_of_their_own() {
        let sa = defaulted("ServiceAccount", json!({"automountServiceAccountToken": false}));
        assert_eq!(sa["automountServiceAccountToken"], false);
        assert!(validate_create("ServiceAccount", &sa).is_empty());
    }
}
