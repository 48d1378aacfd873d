//! Per-kind defaulting and validation of the built-in kinds the API server serves,
//! following Kubernetes' `pkg/apis/*/v1/defaults.go`, the registry strategies'
//! `PrepareForCreate`, and `pkg/apis/*/validation` (field paths and messages as
//! kubectl users see them).
//!
//! Objects are stored as `serde_json::Value`; each kind is handled through its
//! k8s-openapi struct (never hand-written types):
//!
//! ```text
//!  Value ─prepare─► typed struct ─defaults─► Value   (default: unknown fields dropped,
//!                        │                            zero values k8s-openapi adds undone)
//!                        └─► validate(_update) ─► Vec<FieldError>
//! ```
//!
//! Layout: [`pod`] (Pod and the PodSpec/PodTemplateSpec/Container rules the
//! workloads share), [`core`] (Service, ConfigMap, Secret, Namespace, Node, Event,
//! ServiceAccount, Endpoints), [`apps`] (Deployment, ReplicaSet, Job), [`net`]
//! (Ingress, EndpointSlice, Lease), [`rbac`] (Role, ClusterRole and their bindings); [`decode`] turns values into structs with
//! Kubernetes' decoding errors and [`quantity`] parses resource quantities. Shared
//! field-path and format helpers are below.
//!
//! Metadata (name, namespace, labels, annotations) is validated by the caller; only
//! the kind-specific name rule lives here ([`name_rule`]).

mod apps;
mod core;
mod decode;
mod net;
mod pod;
mod quantity;
mod rbac;

use super::error::{ApiError, FieldError, FieldErrorKind};
use super::meta;
use decode::DecodeError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

// === public API ===

/// Applies Kubernetes' defaults to a new or updated object of `kind` (typed:
/// deserialize into the k8s-openapi struct, default, serialize back). A body that
/// does not decode as the kind (wrong JSON types) is `Err(ApiError::BadRequest)`
/// with a message like Kubernetes' decoding errors, naming the field.
pub fn default(kind: &str, obj: &mut Value) -> Result<(), ApiError> {
    match kind {
        "Pod" => typed_default(kind, obj, pod::default_pod),
        "Service" => typed_default(kind, obj, core::default_service),
        "ConfigMap" => typed_default(kind, obj, |_: &mut ConfigMap| Ok(())),
        "Secret" => typed_default(kind, obj, core::default_secret),
        "Namespace" => typed_default(kind, obj, core::default_namespace),
        "Node" => typed_default(kind, obj, core::default_node),
        "Event" => typed_default(kind, obj, |_: &mut Event| Ok(())),
        "ServiceAccount" => typed_default(kind, obj, |_: &mut ServiceAccount| Ok(())),
        "Endpoints" => typed_default(kind, obj, core::default_endpoints),
        "Deployment" => typed_default(kind, obj, apps::default_deployment),
        "ReplicaSet" => typed_default(kind, obj, apps::default_replica_set),
        "Job" => typed_default(kind, obj, apps::default_job),
        "Ingress" => typed_default(kind, obj, |_: &mut Ingress| Ok(())),
        "EndpointSlice" => typed_default(kind, obj, net::default_endpoint_slice),
        "Lease" => typed_default(kind, obj, |_: &mut Lease| Ok(())),
        "Role" => typed_default(kind, obj, |_: &mut Role| Ok(())),
        "ClusterRole" => typed_default(kind, obj, |_: &mut ClusterRole| Ok(())),
        "RoleBinding" => typed_default(kind, obj, rbac::default_role_binding),
        "ClusterRoleBinding" => typed_default(kind, obj, rbac::default_cluster_role_binding),
        // Kinds without typed rules are stored as sent.
        _ => Ok(()),
    }
}

/// Validation on create: every problem as a FieldError with the Kubernetes field
/// path (e.g. "spec.template.spec.containers[0].image").
pub fn validate_create(kind: &str, obj: &Value) -> Vec<FieldError> {
    match kind {
        "Pod" => typed_validate(kind, obj, pod::validate_pod),
        "Service" => typed_validate(kind, obj, core::validate_service),
        "ConfigMap" => typed_validate(kind, obj, core::validate_config_map),
        "Secret" => typed_validate(kind, obj, core::validate_secret),
        "Namespace" => typed_validate(kind, obj, core::validate_namespace),
        "Node" => typed_validate(kind, obj, core::validate_node),
        "Event" => typed_validate(kind, obj, core::validate_event),
        "ServiceAccount" => Vec::new(),
        "Endpoints" => typed_validate(kind, obj, core::validate_endpoints),
        "Deployment" => typed_validate(kind, obj, apps::validate_deployment),
        "ReplicaSet" => typed_validate(kind, obj, apps::validate_replica_set),
        "Job" => typed_validate(kind, obj, apps::validate_job),
        "Ingress" => typed_validate(kind, obj, net::validate_ingress),
        "EndpointSlice" => typed_validate(kind, obj, net::validate_endpoint_slice),
        "Lease" => typed_validate(kind, obj, net::validate_lease),
        "Role" => typed_validate(kind, obj, rbac::validate_role),
        "ClusterRole" => typed_validate(kind, obj, rbac::validate_cluster_role),
        "RoleBinding" => typed_validate(kind, obj, rbac::validate_role_binding),
        "ClusterRoleBinding" => typed_validate(kind, obj, rbac::validate_cluster_role_binding),
        _ => Vec::new(),
    }
}

/// Validation on update (create rules plus immutability rules).
pub fn validate_update(kind: &str, old: &Value, new: &Value) -> Vec<FieldError> {
    match kind {
        "Pod" => typed_validate_update(kind, old, new, pod::validate_pod_update),
        "Service" => typed_validate_update(kind, old, new, core::validate_service_update),
        "ConfigMap" => typed_validate_update(kind, old, new, core::validate_config_map_update),
        "Secret" => typed_validate_update(kind, old, new, core::validate_secret_update),
        "Node" => typed_validate_update(kind, old, new, core::validate_node_update),
        "Event" => typed_validate_update(kind, old, new, core::validate_event_update),
        "Deployment" => typed_validate_update(kind, old, new, apps::validate_deployment_update),
        "ReplicaSet" => typed_validate_update(kind, old, new, apps::validate_replica_set_update),
        "Job" => typed_validate_update(kind, old, new, apps::validate_job_update),
        "EndpointSlice" => typed_validate_update(kind, old, new, net::validate_endpoint_slice_update),
        "Ingress" => typed_validate_update(kind, old, new, net::validate_ingress_update),
        "RoleBinding" => typed_validate_update(kind, old, new, rbac::validate_role_binding_update),
        "ClusterRoleBinding" => typed_validate_update(kind, old, new, rbac::validate_cluster_role_binding_update),
        // The rest have no update-only rules.
        _ => validate_create(kind, new),
    }
}

/// Fields present in `obj` that `kind`'s schema does not know (for
/// fieldValidation=Strict/Warn): paths like `spec.replicass`, found by comparing obj
/// with its typed round trip (null values are not unknown).
pub fn unknown_fields(kind: &str, obj: &Value) -> Vec<String> {
    match kind {
        "Pod" => dropped::<Pod>(kind, obj),
        "Service" => dropped::<Service>(kind, obj),
        "ConfigMap" => dropped::<ConfigMap>(kind, obj),
        "Secret" => dropped::<Secret>(kind, obj),
        "Namespace" => dropped::<Namespace>(kind, obj),
        "Node" => dropped::<Node>(kind, obj),
        "Event" => dropped::<Event>(kind, obj),
        "ServiceAccount" => dropped::<ServiceAccount>(kind, obj),
        "Endpoints" => dropped::<Endpoints>(kind, obj),
        "Deployment" => dropped::<Deployment>(kind, obj),
        "ReplicaSet" => dropped::<ReplicaSet>(kind, obj),
        "Job" => dropped::<Job>(kind, obj),
        "Ingress" => dropped::<Ingress>(kind, obj),
        "EndpointSlice" => dropped::<EndpointSlice>(kind, obj),
        "Lease" => dropped::<Lease>(kind, obj),
        "Role" => dropped::<Role>(kind, obj),
        "ClusterRole" => dropped::<ClusterRole>(kind, obj),
        "RoleBinding" => dropped::<RoleBinding>(kind, obj),
        "ClusterRoleBinding" => dropped::<ClusterRoleBinding>(kind, obj),
        _ => Vec::new(),
    }
}

/// The rule `metadata.name` must follow for `kind` (the name function each
/// Kubernetes `Validate<Kind>` passes to `ValidateObjectMeta`).
pub fn name_rule(kind: &str) -> fn(&str) -> Vec<String> {
    match kind {
        // ValidateServiceName = NameIsDNS1035Label.
        "Service" => meta::dns1035_label,
        // ValidateNamespaceName = NameIsDNSLabel.
        "Namespace" => meta::dns1123_label,
        // ValidateRBACName = path.IsValidPathSegmentName (`system:basic-user`).
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => rbac::path_segment_name,
        // Pods, nodes, secrets, config maps, service accounts, endpoints, events,
        // deployments, replica sets, jobs, ingresses, endpoint slices and leases all
        // use NameIsDNSSubdomain.
        _ => meta::dns1123_subdomain,
    }
}

// === typed plumbing ===

/// Decodes `obj` as `T`, runs the kind's defaulting, and writes the result back.
/// `f` fails with the body of a decoding error (a bad quantity, say).
fn typed_default<T, F>(kind: &str, obj: &mut Value, f: F) -> Result<(), ApiError>
where
    T: DeserializeOwned + Serialize,
    F: FnOnce(&mut T) -> Result<(), DecodeError>,
{
    let bad_request = |e: DecodeError| ApiError::BadRequest(format!("{} {}", cannot_handle(kind), e.0));
    let raw = prepare(kind, obj).map_err(bad_request)?;
    let mut typed: T = decode::decode(kind, &raw).map_err(bad_request)?;
    let plain = decode::encode(&typed).map_err(|e| ApiError::Internal(e.0))?;
    f(&mut typed).map_err(bad_request)?;
    let mut out = decode::encode(&typed).map_err(|e| ApiError::Internal(e.0))?;
    decode::drop_artifacts(&raw, &plain, &mut out);
    *obj = out;
    Ok(())
}

/// The body as the typed decoder should see it: nulls dropped, and base64 fields
/// read the way Go reads them.
fn prepare(kind: &str, obj: &Value) -> Result<Value, DecodeError> {
    let mut raw = decode::prepare(obj);
    match kind {
        "Secret" => core::normalize_base64(&mut raw, "data")?,
        "ConfigMap" => core::normalize_base64(&mut raw, "binaryData")?,
        _ => {}
    }
    Ok(raw)
}

/// `Pod in version "v1" cannot be handled as a Pod:`, the start of every decoding
/// error.
fn cannot_handle(kind: &str) -> String {
    let version = super::registry::RESOURCES.iter().find(|r| r.kind == kind).map(|r| r.version).unwrap_or("v1");
    format!("{kind} in version {version:?} cannot be handled as a {kind}:")
}

/// The typed object, or the decoding problem as a validation error (only reached
/// when a caller validates an object it did not default first).
fn typed<T: DeserializeOwned>(kind: &str, obj: &Value) -> Result<T, FieldError> {
    prepare(kind, obj)
        .and_then(|raw| decode::decode(kind, &raw))
        .map_err(|e| FieldError::invalid("", "<object>", format!("{} {}", cannot_handle(kind), e.0)))
}

fn typed_validate<T: DeserializeOwned>(
    kind: &str,
    obj: &Value,
    f: fn(&T, &Value) -> Vec<FieldError>,
) -> Vec<FieldError> {
    match typed::<T>(kind, obj) {
        Ok(t) => f(&t, obj),
        Err(e) => vec![e],
    }
}

type UpdateRule<T> = fn(&T, &Value, &T, &Value) -> Vec<FieldError>;

fn typed_validate_update<T: DeserializeOwned>(
    kind: &str,
    old: &Value,
    new: &Value,
    f: UpdateRule<T>,
) -> Vec<FieldError> {
    match (typed::<T>(kind, old), typed::<T>(kind, new)) {
        (Ok(o), Ok(n)) => f(&n, new, &o, old),
        (_, Err(e)) | (Err(e), _) => vec![e],
    }
}

fn dropped<T: DeserializeOwned + Serialize>(kind: &str, obj: &Value) -> Vec<String> {
    let Ok(raw) = prepare(kind, obj) else { return Vec::new() };
    let Ok(t) = decode::decode::<T>(kind, &raw) else { return Vec::new() };
    let Ok(plain) = decode::encode(&t) else { return Vec::new() };
    let mut out = Vec::new();
    decode::collect_dropped(&raw, &plain, &mut Vec::new(), &mut out);
    out
}

// === field paths ===

/// A field path as Kubernetes prints it: `spec.containers[0].ports[1].name`,
/// `data[tls.crt]` for map keys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path(String);

impl Path {
    pub fn new(root: &str) -> Path {
        Path(root.to_string())
    }

    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() { Path(name.to_string()) } else { Path(format!("{}.{name}", self.0)) }
    }

    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    pub fn key(&self, k: &str) -> Path {
        Path(format!("{}[{k}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

// === errors (Kubernetes' field.Error constructors) ===

type Errs = Vec<FieldError>;

fn required(p: &Path, detail: &str) -> FieldError {
    FieldError { detail: detail.to_string(), ..FieldError::required(p) }
}

fn invalid(p: &Path, value: impl fmt::Display, detail: impl Into<String>) -> FieldError {
    FieldError::invalid(p, value, detail)
}

fn not_supported(p: &Path, value: impl fmt::Display, supported: &[&str]) -> FieldError {
    FieldError::not_supported(p, value, supported)
}

fn forbidden(p: &Path, detail: impl Into<String>) -> FieldError {
    FieldError::forbidden(p, detail)
}

fn duplicate(p: &Path, value: impl fmt::Display) -> FieldError {
    FieldError::duplicate(p, value)
}

fn not_found(p: &Path, value: impl fmt::Display) -> FieldError {
    FieldError {
        field: p.into(),
        kind: FieldErrorKind::NotFound,
        value: Some(value.to_string()),
        detail: String::new(),
    }
}

/// field.TooMany has no kind of its own here; Kubernetes' detail is kept.
fn too_many(p: &Path, count: usize, max: usize) -> FieldError {
    invalid(p, count, format!("must have at most {max} items"))
}

/// `field is immutable` (apimachinery's ValidateImmutableField).
fn immutable(p: &Path, value: impl fmt::Display) -> FieldError {
    invalid(p, value, "field is immutable")
}

const NEGATIVE: &str = "must be greater than or equal to 0";

/// ValidateNonnegativeField.
fn nonnegative(v: i64, p: &Path, errs: &mut Errs) {
    if v < 0 {
        errs.push(invalid(p, v, NEGATIVE));
    }
}

// === formats (k8s.io/apimachinery/pkg/util/validation) ===

/// Each message of `check` as an Invalid error on `p`.
fn each(check: fn(&str) -> Vec<String>, value: &str, p: &Path, errs: &mut Errs) {
    errs.extend(check(value).into_iter().map(|m| invalid(p, value, m)));
}

/// IsValidPortNum.
fn port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) { Vec::new() } else { vec![inclusive_range(1, 65535)] }
}

fn inclusive_range(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// IsValidPortName (an IANA_SVC_NAME).
fn port_name(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !name.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// hasChDirPrefix: keys that would be a path component `.` or `..`.
fn ch_dir_prefix(value: &str) -> Option<String> {
    match value {
        "." => Some("must not be '.'".into()),
        ".." => Some("must not be '..'".into()),
        v if v.starts_with("..") => Some("must not start with '..'".into()),
        _ => None,
    }
}

/// IsConfigMapKey (also used for Secret keys).
fn config_map_key(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > meta::DNS1123_SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {} characters", meta::DNS1123_SUBDOMAIN_MAX));
    }
    if key.is_empty() || !key.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')) {
        errs.push(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or \
             'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
                .into(),
        );
    }
    errs.extend(ch_dir_prefix(key));
    errs
}

/// IsEnvVarName: `[-._a-zA-Z][-._a-zA-Z0-9]*`, not `.`/`..`.
fn env_var_name(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !ok {
        errs.push(
            "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and \
             must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for \
             validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
                .into(),
        );
    }
    errs.extend(ch_dir_prefix(name));
    errs
}

/// IsWildcardDNS1123Subdomain: `*.` followed by a subdomain.
fn wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > meta::DNS1123_SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {} characters", meta::DNS1123_SUBDOMAIN_MAX));
    }
    let ok = value.strip_prefix("*.").is_some_and(|rest| meta::dns1123_subdomain(rest).is_empty());
    if !ok {
        errs.push(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must \
             consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. \
             '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .into(),
        );
    }
    errs
}

/// A parsed IP address, accepting IPv4 octets with leading zeros as Kubernetes'
/// `ParseIPSloppy` does.
fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(std::net::IpAddr::from(octets))
}

/// IsValidIP.
fn valid_ip(p: &Path, value: &str, errs: &mut Errs) -> bool {
    if parse_ip(value).is_some() {
        return true;
    }
    errs.push(invalid(p, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
    false
}

/// ValidateNonSpecialIP: addresses that make no sense as endpoints.
fn non_special_ip(p: &Path, value: &str, errs: &mut Errs) {
    special_ip_check(p, value, errs, false);
}

/// [`non_special_ip`] for Endpoints and EndpointSlice addresses, where rk accepts
/// loopback addresses, unlike Kubernetes: pods on the process runtime have their
/// node's address, which is a loopback one (127.x.y.z) on a local cluster, and
/// rk's Service proxy reaches them there. See docs/services.md.
fn endpoint_ip(p: &Path, value: &str, errs: &mut Errs) {
    special_ip_check(p, value, errs, true);
}

fn special_ip_check(p: &Path, value: &str, errs: &mut Errs, allow_loopback: bool) {
    let Some(ip) = parse_ip(value) else {
        errs.push(invalid(p, value, "must be a valid IP address"));
        return;
    };
    if ip.is_unspecified() {
        errs.push(invalid(p, value, format!("may not be unspecified ({value})")));
    }
    if ip.is_loopback() && !allow_loopback {
        errs.push(invalid(p, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
    }
    let link_local = match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        errs.push(invalid(p, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
    }
    let link_local_multicast = match ip {
        std::net::IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(invalid(p, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"));
    }
}

/// IsValidCIDR.
fn valid_cidr(p: &Path, value: &str, errs: &mut Errs) {
    let ok = value.split_once('/').is_some_and(|(ip, bits)| {
        let max = match parse_ip(ip) {
            Some(std::net::IpAddr::V4(_)) => 32,
            Some(std::net::IpAddr::V6(_)) => 128,
            None => return false,
        };
        bits.parse::<u8>().is_ok_and(|b| b <= max) && !bits.starts_with('+')
    });
    if !ok {
        errs.push(invalid(p, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"));
    }
}

// === labels and selectors ===

/// ValidateLabels: keys must be qualified names, values label values; both are
/// reported on the map's own path.
fn validate_labels(labels: Option<&BTreeMap<String, String>>, p: &Path, errs: &mut Errs) {
    for (k, v) in labels.into_iter().flatten() {
        each(meta::qualified_name, k, p, errs);
        each(meta::label_value, v, p, errs);
    }
}

/// ValidateLabelSelector.
fn validate_label_selector(sel: &LabelSelector, p: &Path, errs: &mut Errs) {
    validate_labels(sel.match_labels.as_ref(), &p.child("matchLabels"), errs);
    for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
        let ep = p.child("matchExpressions").index(i);
        let values = expr.values.as_deref().unwrap_or_default();
        match expr.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                errs.push(required(&ep.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
            }
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(forbidden(
                &ep.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Exists" | "DoesNotExist" => {}
            op => errs.push(invalid(&ep.child("operator"), op, "not a valid selector operator")),
        }
        each(meta::qualified_name, &expr.key, &ep.child("key"), errs);
        for (j, v) in values.iter().enumerate() {
            each(meta::label_value, v, &ep.child("values").index(j), errs);
        }
    }
}

/// The selector's verdict on `labels` as `LabelSelectorAsSelector(...).Matches`:
/// `None` when the selector itself is invalid (it then matches nothing and
/// Kubernetes skips the check), `Some(true)` for an empty selector.
fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> Option<bool> {
    let mut errs = Vec::new();
    validate_label_selector(sel, &Path::new(""), &mut errs);
    if !errs.is_empty() {
        return None;
    }
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let ml = sel.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let me = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            _ => !labels.contains_key(&e.key),
        }
    });
    Some(ml && me)
}

/// Whether the selector selects nothing in particular (no terms at all).
fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty) && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

// === how values are quoted in messages ===

/// A string map as Go's `%#v` prints it (`map[string]string{"app":"web"}`), the
/// form Kubernetes uses for label values in messages.
fn go_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let body: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
    }
}

/// A compact JSON rendering of a typed value, for errors whose Kubernetes value is
/// a whole struct.
fn json_of<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Compares two typed values the way `apiequality.Semantic.DeepEqual` does for our
/// purposes: unset and empty lists or maps are the same.
fn semantic_eq<T: Serialize>(a: &T, b: &T) -> bool {
    let (Ok(a), Ok(b)) = (serde_json::to_value(a), serde_json::to_value(b)) else { return false };
    prune_empty(a) == prune_empty(b)
}

fn prune_empty(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, prune_empty(v)))
                .filter(|(_, v)| {
                    !(v.is_null()
                        || v.as_array().is_some_and(Vec::is_empty)
                        || v.as_object().is_some_and(|o| o.is_empty()))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune_empty).collect()),
        other => other,
    }
}

/// Leaf paths where two JSON values differ, with both sides (for "what changed"
/// details in immutability errors).
fn json_diff(a: &Value, b: &Value, path: &Path, out: &mut Vec<(String, String, String)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (l, r) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                json_diff(l, r, &path.child(k), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                json_diff(l, r, &path.index(i), out);
            }
        }
        _ if a != b => out.push((path.to_string(), a.to_string(), b.to_string())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_print_like_kubernetes() {
        let p = Path::new("spec").child("containers").index(0).child("ports").index(2).child("name");
        assert_eq!(p.to_string(), "spec.containers[0].ports[2].name");
        assert_eq!(Path::new("data").key("tls.crt").to_string(), "data[tls.crt]");
        assert_eq!(Path::new("").child("type").to_string(), "type");
    }

    #[test]
    fn formats() {
        assert!(port_name("http").is_empty());
        assert_eq!(port_name("HTTP").len(), 2);
        assert_eq!(port_name("a--b"), vec!["must not contain consecutive hyphens".to_string()]);
        assert_eq!(port_name("1234"), vec!["must contain at least one letter (a-z)".to_string()]);
        assert_eq!(port_num(0), vec!["must be between 1 and 65535, inclusive".to_string()]);
        assert!(config_map_key("a.b_c-D").is_empty());
        assert_eq!(config_map_key(".."), vec!["must not be '..'".to_string()]);
        assert_eq!(config_map_key("a b").len(), 1);
        assert!(env_var_name("MY_VAR.1").is_empty());
        assert_eq!(env_var_name("1A").len(), 1);
        assert!(wildcard_dns1123_subdomain("*.example.com").is_empty());
        assert!(!wildcard_dns1123_subdomain("*example.com").is_empty());
        assert!(parse_ip("010.1.1.1").is_some());
        assert!(parse_ip("::1").is_some());
        assert!(parse_ip("1.2.3").is_none());
        let mut errs = Vec::new();
        non_special_ip(&Path::new("ip"), "127.0.0.1", &mut errs);
        assert_eq!(errs[0].detail, "may not be in the loopback range (127.0.0.0/8, ::1/128)");
        let mut errs = Vec::new();
        endpoint_ip(&Path::new("ip"), "127.42.0.101", &mut errs);
        endpoint_ip(&Path::new("ip"), "0.0.0.0", &mut errs);
        assert_eq!(errs.len(), 1, "only the unspecified address: {errs:?}");
        let mut errs = Vec::new();
        valid_cidr(&Path::new("c"), "10.0.0.0/8", &mut errs);
        valid_cidr(&Path::new("c"), "10.0.0.0/33", &mut errs);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
        }))
        .unwrap();
        let labels: BTreeMap<String, String> =
            [("app", "web"), ("tier", "b")].map(|(k, v)| (k.into(), v.into())).into();
        assert_eq!(selector_matches(&sel, Some(&labels)), Some(true));
        assert_eq!(selector_matches(&sel, None), Some(false));
        let bad: LabelSelector =
            serde_json::from_value(json!({"matchExpressions": [{"key": "a", "operator": "Is"}]})).unwrap();
        assert_eq!(selector_matches(&bad, None), None);
        let mut errs = Vec::new();
        validate_label_selector(&bad, &Path::new("spec.selector"), &mut errs);
        assert_eq!(errs[0].field, "spec.selector.matchExpressions[0].operator");
        assert_eq!(go_map(Some(&labels)), r#"map[string]string{"app":"web", "tier":"b"}"#);
    }

    #[test]
    fn unknown_kinds_pass_through() {
        let mut v = json!({"kind": "Widget", "spec": {"x": 1}});
        default("Widget", &mut v).unwrap();
        assert_eq!(v, json!({"kind": "Widget", "spec": {"x": 1}}));
        assert!(validate_create("Widget", &v).is_empty());
        assert!(unknown_fields("Widget", &v).is_empty());
        assert_eq!(name_rule("Service")("1abc").len(), 1);
        assert!(name_rule("Pod")("a.b").is_empty());
        assert!(!name_rule("Namespace")("a.b").is_empty());
    }

    #[test]
    fn bad_bodies_are_bad_requests() {
        let mut v = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "3"}});
        let err = default("Deployment", &mut v).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)));
        assert_eq!(
            err.to_string(),
            "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go \
             struct field DeploymentSpec.spec.replicas of type int32"
        );
    }
}

/// What the kinds' tests share.
#[cfg(test)]
mod testkit {
    use super::FieldError;
    use serde_json::Value;

    /// Errors as kubectl prints them.
    pub fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    /// `v` after the defaulting of `kind`.
    pub fn defaulted(kind: &str, mut v: Value) -> Value {
        super::default(kind, &mut v).expect("defaults apply");
        v
    }
}
