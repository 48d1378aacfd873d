//! networking.k8s.io/v1 Ingress, discovery.k8s.io/v1 EndpointSlice and
//! coordination.k8s.io/v1 Lease: `pkg/apis/networking/validation`,
//! `pkg/apis/discovery/{v1/defaults.go,validation}` and
//! `pkg/apis/coordination/validation`.

use super::decode::DecodeError;
use super::{
    Errs, Path, duplicate, each, endpoint_ip, forbidden, immutable, invalid, not_supported, parse_ip, port_name,
    port_num, required, too_many, validate_labels, wildcard_dns1123_subdomain,
};
use crate::api::meta;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend, IngressSpec};
use serde_json::Value;
use std::collections::BTreeSet;

fn list<T>(v: &Option<Vec<T>>) -> &[T] {
    v.as_deref().unwrap_or_default()
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or_default()
}

// === Ingress ===

/// ValidateIngressCreate.
pub fn validate_ingress(ing: &Ingress, raw: &Value) -> Errs {
    let mut errs = validate_ingress_spec(ing, raw, false);
    let class_annotation = ing.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/ingress.class"));
    if let Some(v) = class_annotation
        && ing.spec.as_ref().is_some_and(|s| s.ingress_class_name.is_some())
    {
        // Kubernetes' path for this one has no `metadata.`.
        errs.push(invalid(
            &Path::new("annotations").child("kubernetes.io/ingress.class"),
            v,
            "can not be set when the class field is also set",
        ));
    }
    errs
}

/// ValidateIngressUpdate: the create rules, except that TLS secret names that
/// were already invalid may stay so.
pub fn validate_ingress_update(new: &Ingress, new_raw: &Value, old: &Ingress, old_raw: &Value) -> Errs {
    let old_bad_secret = validate_ingress_spec(old, old_raw, false).iter().any(|e| e.field.ends_with(".secretName"));
    validate_ingress_spec(new, new_raw, old_bad_secret)
}

fn validate_ingress_spec(ing: &Ingress, raw: &Value, allow_invalid_secret: bool) -> Errs {
    let mut errs = Vec::new();
    let spec = ing.spec.clone().unwrap_or_default();
    let p = Path::new("spec");
    let rules = list(&spec.rules);
    if rules.is_empty() && spec.default_backend.is_none() {
        errs.push(invalid(&p, "[]", "either `defaultBackend` or `rules` must be specified"));
    }
    if let Some(b) = &spec.default_backend {
        validate_backend(b, &p.child("defaultBackend"), &mut errs);
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = p.child("rules").index(i);
        let host = s(&rule.host);
        if !host.is_empty() {
            if parse_ip(host).is_some() {
                errs.push(invalid(&rp.child("host"), host, "must be a DNS name, not an IP address"));
            }
            if host.contains('*') {
                each(wildcard_dns1123_subdomain, host, &rp.child("host"), &mut errs);
            } else {
                each(meta::dns1123_subdomain, host, &rp.child("host"), &mut errs);
            }
        }
        if let Some(http) = &rule.http {
            let hp = rp.child("http");
            if http.paths.is_empty() {
                errs.push(required(&hp.child("paths"), ""));
            }
            for (j, path) in http.paths.iter().enumerate() {
                let pp = hp.child("paths").index(j);
                // k8s-openapi fills a missing pathType with ""; the body says whether
                // it was given.
                let given =
                    raw.pointer(&format!("/spec/rules/{i}/http/paths/{j}/pathType")).is_some_and(|v| !v.is_null());
                validate_http_path(path, given, &pp, &mut errs);
            }
        }
    }
    validate_tls(&spec, allow_invalid_secret, &p.child("tls"), &mut errs);
    if let Some(class) = &spec.ingress_class_name {
        each(meta::dns1123_subdomain, class, &p.child("ingressClassName"), &mut errs);
    }
    errs
}

fn validate_http_path(path: &HTTPIngressPath, given: bool, p: &Path, errs: &mut Errs) {
    if !given {
        errs.push(required(&p.child("pathType"), "pathType must be specified"));
        return;
    }
    let value = s(&path.path);
    match path.path_type.as_str() {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(invalid(&p.child("path"), value, "must be an absolute path"));
            }
            if !value.is_empty() {
                for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                    if value.contains(seq) {
                        errs.push(invalid(&p.child("path"), value, format!("must not contain '{seq}'")));
                    }
                }
                for suffix in ["/..", "/."] {
                    if value.ends_with(suffix) {
                        errs.push(invalid(&p.child("path"), value, format!("cannot end with '{suffix}'")));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(invalid(&p.child("path"), value, "must be an absolute path"));
            }
        }
        other => errs.push(not_supported(&p.child("pathType"), other, &["Exact", "ImplementationSpecific", "Prefix"])),
    }
    validate_backend(&path.backend, &p.child("backend"), errs);
}

/// validateIngressBackend: a service (by name, with a port number or name) or a
/// resource, exactly one.
fn validate_backend(b: &IngressBackend, p: &Path, errs: &mut Errs) {
    match (&b.resource, &b.service) {
        (Some(_), Some(_)) => errs.push(invalid(p, "", "cannot set both resource and service backends")),
        (Some(r), None) => {
            let rp = p.child("resource");
            if let Some(g) = &r.api_group {
                each(meta::dns1123_subdomain, g, &rp.child("apiGroup"), errs);
            }
            for (field, v) in [("kind", &r.kind), ("name", &r.name)] {
                if v.is_empty() {
                    errs.push(required(&rp.child(field), &format!("{field} is required")));
                } else if v == "." || v == ".." || v.contains(['/', '%']) {
                    errs.push(invalid(&rp.child(field), v, "may not be '.' or '..' and may not contain '/' or '%'"));
                }
            }
        }
        (None, Some(svc)) => {
            let sp = p.child("service");
            if svc.name.is_empty() {
                errs.push(required(&sp.child("name"), ""));
            } else {
                each(meta::dns1035_label, &svc.name, &sp.child("name"), errs);
            }
            let port = svc.port.clone().unwrap_or_default();
            let name = s(&port.name);
            let number = port.number.unwrap_or(0);
            match (name.is_empty(), number == 0) {
                (false, false) => errs.push(invalid(p, "", "cannot set both port name & port number")),
                (false, true) => each(port_name, name, &sp.child("port").child("name"), errs),
                (true, false) => {
                    for m in port_num(number.into()) {
                        errs.push(invalid(&sp.child("port").child("number"), number, m));
                    }
                }
                (true, true) => errs.push(required(p, "port name or number is required")),
            }
        }
        (None, None) => errs.push(invalid(p, "", "resource or service backend is required")),
    }
}

fn validate_tls(spec: &IngressSpec, allow_invalid_secret: bool, p: &Path, errs: &mut Errs) {
    for (i, tls) in list(&spec.tls).iter().enumerate() {
        let tp = p.index(i);
        for (j, host) in list(&tls.hosts).iter().enumerate() {
            if host.contains('*') {
                each(wildcard_dns1123_subdomain, host, &tp.child("hosts").index(j), errs);
            } else {
                each(meta::dns1123_subdomain, host, &tp.child("hosts").index(j), errs);
            }
        }
        let secret = s(&tls.secret_name);
        if !allow_invalid_secret && !secret.is_empty() {
            each(meta::dns1123_subdomain, secret, &tp.child("secretName"), errs);
        }
    }
}

// === EndpointSlice ===

/// SetDefaults_EndpointPort: an unnamed port is named "", protocols are TCP.
pub fn default_endpoint_slice(slice: &mut EndpointSlice) -> Result<(), DecodeError> {
    for port in slice.ports.iter_mut().flatten() {
        port.name.get_or_insert_with(String::new);
        port.protocol.get_or_insert_with(|| "TCP".into());
    }
    Ok(())
}

/// ValidateEndpointSlice.
pub fn validate_endpoint_slice(slice: &EndpointSlice, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let addr_type = slice.address_type.as_str();
    let ep = Path::new("endpoints");
    if slice.endpoints.len() > 1000 {
        errs.push(too_many(&ep, slice.endpoints.len(), 1000));
    } else {
        for (i, e) in slice.endpoints.iter().enumerate() {
            let p = ep.index(i);
            let ap = p.child("addresses");
            if e.addresses.is_empty() {
                errs.push(required(&ap, "must contain at least 1 address"));
            } else if e.addresses.len() > 100 {
                errs.push(too_many(&ap, e.addresses.len(), 100));
            }
            for (j, a) in e.addresses.iter().enumerate() {
                let ip_path = ap.index(j);
                match addr_type {
                    "IPv4" | "IPv6" => {
                        let family_ok = match parse_ip(a) {
                            Some(std::net::IpAddr::V4(_)) => addr_type == "IPv4",
                            Some(std::net::IpAddr::V6(_)) => addr_type == "IPv6",
                            None => false,
                        };
                        if family_ok {
                            endpoint_ip(&ip_path, a, &mut errs);
                        } else {
                            errs.push(invalid(&ip_path, a, format!("must be a valid {addr_type} address")));
                        }
                    }
                    "FQDN" => fqdn(a, &ip_path, &mut errs),
                    _ => {}
                }
            }
            if let Some(n) = &e.node_name {
                each(meta::dns1123_subdomain, n, &p.child("nodeName"), &mut errs);
            }
            let topology = e.deprecated_topology.as_ref();
            if topology.is_some_and(|t| t.len() > 16) {
                errs.push(too_many(&p.child("deprecatedTopology"), topology.map_or(0, |t| t.len()), 16));
            }
            validate_labels(topology, &p.child("deprecatedTopology"), &mut errs);
            if let Some(h) = &e.hostname {
                each(meta::dns1123_label, h, &p.child("hostname"), &mut errs);
            }
        }
    }
    let pp = Path::new("ports");
    let ports = list(&slice.ports);
    if ports.len() > 20000 {
        errs.push(too_many(&pp, ports.len(), 20000));
    } else {
        let mut names = BTreeSet::new();
        for (i, port) in ports.iter().enumerate() {
            let p = pp.index(i);
            let name = s(&port.name);
            if !name.is_empty() {
                each(meta::dns1123_label, name, &p.child("name"), &mut errs);
            }
            if !names.insert(name) {
                errs.push(duplicate(&p.child("name"), name));
            }
            match port.protocol.as_deref() {
                None => errs.push(required(&p.child("protocol"), "")),
                Some("TCP" | "UDP" | "SCTP") => {}
                Some(other) => errs.push(not_supported(&p.child("protocol"), other, &["SCTP", "TCP", "UDP"])),
            }
            if let Some(ap) = &port.app_protocol {
                each(meta::qualified_name, ap, &p.child("appProtocol"), &mut errs);
            }
        }
    }
    let tp = Path::new("addressType");
    match addr_type {
        "" => errs.push(required(&tp, "")),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => errs.push(not_supported(&tp, other, &["FQDN", "IPv4", "IPv6"])),
    }
    errs
}

/// IsFullyQualifiedDomainName.
fn fqdn(name: &str, p: &Path, errs: &mut Errs) {
    if name.is_empty() {
        errs.push(required(p, ""));
        return;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let msgs = meta::dns1123_subdomain(name);
    if !msgs.is_empty() {
        errs.push(invalid(p, name, msgs.join(",")));
        return;
    }
    if !name.contains('.') {
        errs.push(invalid(p, name, "should be a domain with at least two segments separated by dots"));
        return;
    }
    for label in name.split('.') {
        let msgs = meta::dns1123_label(label);
        if !msgs.is_empty() {
            errs.push(invalid(p, label, msgs.join(",")));
            return;
        }
    }
}

/// ValidateEndpointSliceUpdate: the address type is fixed.
pub fn validate_endpoint_slice_update(
    new: &EndpointSlice,
    new_raw: &Value,
    old: &EndpointSlice,
    _old_raw: &Value,
) -> Errs {
    let mut errs = validate_endpoint_slice(new, new_raw);
    if new.address_type != old.address_type {
        errs.push(immutable(&Path::new("addressType"), &new.address_type));
    }
    errs
}

// === Lease ===

/// ValidateLeaseSpec.
pub fn validate_lease(lease: &Lease, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let Some(spec) = &lease.spec else { return errs };
    let p = Path::new("spec");
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.push(invalid(&p.child("leaseDurationSeconds"), d, "must be greater than 0"));
    }
    if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.push(invalid(&p.child("leaseTransitions"), t, "must be greater than or equal to 0"));
    }
    if let Some(strategy) = &spec.strategy {
        let sp = p.child("strategy");
        if strategy.contains('/') {
            each(meta::qualified_name, strategy, &sp, &mut errs);
        } else if strategy != "OldestEmulationVersion" {
            errs.push(not_supported(&sp, strategy, &["OldestEmulationVersion"]));
        }
    }
    if !s(&spec.preferred_holder).is_empty() && s(&spec.strategy).is_empty() {
        errs.push(forbidden(&p.child("preferredHolder"), "may only be specified if `strategy` is defined"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{defaulted, messages};
    use super::super::{validate_create, validate_update};
    use serde_json::{Value, json};

    /// The minimal Ingress from the Kubernetes docs.
    fn minimal() -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "minimal-ingress",
            "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}},
            "spec": {"ingressClassName": "nginx-example", "rules": [{"http": {"paths": [
                {"path": "/testpath", "pathType": "Prefix",
                 "backend": {"service": {"name": "test", "port": {"number": 80}}}}]}}]}})
    }

    #[test]
    fn docs_ingress_is_accepted_unchanged() {
        let ing = defaulted("Ingress", minimal());
        assert_eq!(ing, minimal());
        assert!(validate_create("Ingress", &ing).is_empty());
    }

    #[test]
    fn ingress_rules() {
        let ing = defaulted(
            "Ingress",
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i"}, "spec": {"rules": [
                {"host": "10.0.0.1", "http": {"paths": [{"path": "/a", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}},
                {"host": "*.example.com", "http": {"paths": [
                    {"path": "a", "pathType": "Exact", "backend": {"service": {"name": "s"}}},
                    {"path": "/b", "pathType": "Regex", "backend": {"service": {"name": "s", "port": {"name": "http", "number": 80}}}}
                ]}},
                {"host": "Bad.Host"}
            ]}}),
        );
        let m = messages(&validate_create("Ingress", &ing));
        assert_eq!(m[0], "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address");
        assert_eq!(m[1], "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified");
        assert_eq!(m[2], "spec.rules[1].http.paths[0].path: Invalid value: \"a\": must be an absolute path");
        assert_eq!(m[3], "spec.rules[1].http.paths[0].backend: Required value: port name or number is required");
        assert_eq!(
            m[4],
            "spec.rules[1].http.paths[1].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""
        );
        assert_eq!(
            m[5],
            "spec.rules[1].http.paths[1].backend: Invalid value: \"\": cannot set both port name & port number"
        );
        assert!(m[6].starts_with("spec.rules[2].host: Invalid value: \"Bad.Host\""));
        assert_eq!(m.len(), 7);
        let empty = defaulted(
            "Ingress",
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "spec": {}}),
        );
        assert_eq!(
            messages(&validate_create("Ingress", &empty)),
            vec!["spec: Invalid value: []: either `defaultBackend` or `rules` must be specified"]
        );
    }

    fn slice(address_type: &str, addresses: Value) -> Value {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"},
               "addressType": address_type, "endpoints": [{"addresses": addresses}], "ports": [{"port": 80}]})
    }

    #[test]
    fn endpoint_slices() {
        let s = defaulted("EndpointSlice", slice("IPv4", json!(["10.1.2.3"])));
        assert_eq!(s["ports"], json!([{"port": 80, "name": "", "protocol": "TCP"}]));
        assert!(validate_create("EndpointSlice", &s).is_empty());
        let s = defaulted("EndpointSlice", slice("IPv4", json!(["fd00::1", "0.0.0.0"])));
        assert_eq!(
            messages(&validate_create("EndpointSlice", &s)),
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
                "endpoints[0].addresses[1]: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)"
            ]
        );
        let s = defaulted("EndpointSlice", slice("FQDN", json!(["example"])));
        assert_eq!(
            messages(&validate_create("EndpointSlice", &s)),
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"example\": should be a domain with at least two segments separated by dots"
            ]
        );
        let many: Vec<String> = (0..101).map(|i| format!("10.0.0.{}", i % 250 + 1)).collect();
        let s = defaulted("EndpointSlice", slice("IPv4", json!(many)));
        assert_eq!(
            messages(&validate_create("EndpointSlice", &s))[0],
            "endpoints[0].addresses: Invalid value: 101: must have at most 100 items"
        );
        let s = defaulted("EndpointSlice", slice("", json!([])));
        assert_eq!(
            messages(&validate_create("EndpointSlice", &s)),
            vec![
                "endpoints[0].addresses: Required value: must contain at least 1 address",
                "addressType: Required value"
            ]
        );
        let old = defaulted("EndpointSlice", slice("IPv4", json!(["10.1.2.3"])));
        let new = defaulted("EndpointSlice", slice("FQDN", json!(["a.example.com"])));
        assert_eq!(
            messages(&validate_update("EndpointSlice", &old, &new)),
            vec!["addressType: Invalid value: \"FQDN\": field is immutable"]
        );
    }

    #[test]
    fn leases() {
        let lease = |spec: Value| {
            defaulted(
                "Lease",
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": spec}),
            )
        };
        assert!(
            validate_create("Lease", &lease(json!({"holderIdentity": "n1", "leaseDurationSeconds": 40}))).is_empty()
        );
        assert_eq!(
            messages(&validate_create("Lease", &lease(json!({"leaseDurationSeconds": 0, "leaseTransitions": -1})))),
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"
            ]
        );
    }
}
