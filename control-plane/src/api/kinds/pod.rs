//! Pod, and the PodSpec / PodTemplateSpec / Container rules the workload kinds
//! share: `SetDefaults_Pod`, `SetDefaults_PodSpec` and friends from
//! `pkg/apis/core/v1/defaults.go`, the ServiceAccount admission default, the pod
//! strategy's status on create, and `ValidatePodCreate` / `ValidatePodUpdate` /
//! `ValidatePodTemplateSpec` from `pkg/apis/core/validation/validation.go`.

use super::decode::DecodeError;
use super::quantity::{self, Quantity};
use super::{
    Errs, Path, duplicate, each, env_var_name, forbidden, go_map, inclusive_range, invalid, json_diff, json_of,
    nonnegative, not_found, not_supported, port_name, port_num, prune_empty, required, validate_label_selector,
    validate_labels,
};
use crate::api::meta;
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, EnvFromSource, EnvVar, HTTPGetAction, Lifecycle, LifecycleHandler,
    NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector, Pod, PodAffinityTerm, PodCondition,
    PodSecurityContext, PodSpec, PodStatus, PodTemplateSpec, Probe, ResourceFieldSelector, ResourceRequirements,
    SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Qty;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const MAX_INT32: i64 = i32::MAX as i64;

fn list<T>(v: &Option<Vec<T>>) -> &[T] {
    v.as_deref().unwrap_or_default()
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or_default()
}

// === defaults ===

/// Defaults a Pod: its spec (as in any template), then what only Pods get
/// (`SetDefaults_Pod`), the ServiceAccount admission plugin's default, and the
/// status the pod strategy gives a new pod.
pub fn default_pod(pod: &mut Pod) -> Result<(), DecodeError> {
    let spec = pod.spec.get_or_insert_with(Default::default);
    default_pod_spec(spec)?;
    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        // Requests default to limits, for Pods only (not templates) so that a
        // template's own rendering does not change.
        if let Some(res) = &mut c.resources
            && let Some(limits) = &res.limits
        {
            let requests = res.requests.get_or_insert_with(BTreeMap::new);
            for (k, v) in limits {
                requests.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    spec.enable_service_links.get_or_insert(true);
    if spec.host_network == Some(true) {
        // With host networking every container port is a host port.
        for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
            for port in c.ports.iter_mut().flatten() {
                if port.host_port.unwrap_or(0) == 0 {
                    port.host_port = Some(port.container_port);
                }
            }
        }
    }
    // ServiceAccount admission: every pod runs as some account; the deprecated
    // field mirrors the real one, as the v1 conversion writes it.
    let account = [&spec.service_account_name, &spec.service_account]
        .into_iter()
        .find_map(|a| a.clone().filter(|a| !a.is_empty()))
        .unwrap_or_else(|| "default".to_string());
    spec.service_account_name = Some(account.clone());
    spec.service_account = Some(account);

    // The pod strategy starts every new pod Pending with its QoS class. An update
    // carries the stored status, which already has both.
    let gated = !list(&spec.scheduling_gates).is_empty();
    let qos = qos_class(spec);
    let status = pod.status.get_or_insert_with(PodStatus::default);
    if status.phase.is_none() {
        status.phase = Some("Pending".into());
        if gated && !list(&status.conditions).iter().any(|c| c.type_ == "PodScheduled") {
            status.conditions.get_or_insert_with(Vec::new).push(PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("SchedulingGated".into()),
                message: Some("Scheduling is blocked due to non-empty scheduling gates".into()),
                ..Default::default()
            });
        }
    }
    status.qos_class.get_or_insert(qos);
    Ok(())
}

/// Defaults a pod template (what Deployments, ReplicaSets and Jobs embed).
pub fn default_template(t: &mut PodTemplateSpec) -> Result<(), DecodeError> {
    default_pod_spec(t.spec.get_or_insert_with(Default::default))
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a PodSpec.
pub fn default_pod_spec(spec: &mut PodSpec) -> Result<(), DecodeError> {
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.security_context.get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name.get_or_insert_with(|| "default-scheduler".into());
    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        default_container(c)?;
    }
    for ec in spec.ephemeral_containers.iter_mut().flatten() {
        ec.image_pull_policy.get_or_insert_with(|| pull_policy(s(&ec.image)).into());
        ec.termination_message_path.get_or_insert_with(|| "/dev/termination-log".into());
        ec.termination_message_policy.get_or_insert_with(|| "File".into());
        for port in ec.ports.iter_mut().flatten() {
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
        for e in ec.env.iter_mut().flatten() {
            default_env(e)?;
        }
        if let Some(r) = &mut ec.resources {
            default_resources(r)?;
        }
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v)?;
    }
    if let Some(overhead) = &mut spec.overhead {
        resource_list(overhead)?;
    }
    if let Some(r) = &mut spec.resources {
        default_resources(r)?;
    }
    Ok(())
}

fn default_container(c: &mut Container) -> Result<(), DecodeError> {
    c.image_pull_policy.get_or_insert_with(|| pull_policy(s(&c.image)).into());
    c.termination_message_path.get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy.get_or_insert_with(|| "File".into());
    for port in c.ports.iter_mut().flatten() {
        port.protocol.get_or_insert_with(|| "TCP".into());
    }
    for e in c.env.iter_mut().flatten() {
        default_env(e)?;
    }
    for probe in [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe].into_iter().flatten() {
        default_probe(probe);
    }
    if let Some(l) = &mut c.lifecycle {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            if let Some(g) = &mut h.http_get {
                default_http_get(g);
            }
        }
    }
    if let Some(r) = &mut c.resources {
        default_resources(r)?;
    }
    Ok(())
}

fn default_env(e: &mut EnvVar) -> Result<(), DecodeError> {
    if let Some(from) = &mut e.value_from {
        if let Some(f) = &mut from.field_ref {
            default_field_ref(f);
        }
        if let Some(r) = &mut from.resource_field_ref {
            default_resource_field_ref(r)?;
        }
    }
    Ok(())
}

fn default_field_ref(f: &mut ObjectFieldSelector) {
    f.api_version.get_or_insert_with(|| "v1".into());
}

/// Go always writes the divisor (a zero Quantity prints as "0").
fn default_resource_field_ref(r: &mut ResourceFieldSelector) -> Result<(), DecodeError> {
    let divisor = r.divisor.get_or_insert_with(|| Qty("0".into()));
    divisor.0 = quantity::canonical(&divisor.0, false).map_err(DecodeError)?;
    Ok(())
}

fn default_probe(p: &mut Probe) {
    p.timeout_seconds.get_or_insert(1);
    p.period_seconds.get_or_insert(10);
    p.success_threshold.get_or_insert(1);
    p.failure_threshold.get_or_insert(3);
    if let Some(g) = &mut p.http_get {
        default_http_get(g);
    }
    if let Some(g) = &mut p.grpc {
        g.service.get_or_insert_with(String::new);
    }
}

fn default_http_get(g: &mut HTTPGetAction) {
    g.path.get_or_insert_with(|| "/".into());
    g.scheme.get_or_insert_with(|| "HTTP".into());
}

fn default_resources(r: &mut ResourceRequirements) -> Result<(), DecodeError> {
    for l in [&mut r.limits, &mut r.requests].into_iter().flatten() {
        resource_list(l)?;
    }
    Ok(())
}

/// `SetDefaults_ResourceList`: every quantity rounded up to milli-units, stored in
/// canonical form.
pub fn resource_list(l: &mut BTreeMap<String, Qty>) -> Result<(), DecodeError> {
    for q in l.values_mut() {
        q.0 = quantity::canonical(&q.0, true).map_err(DecodeError)?;
    }
    Ok(())
}

fn default_volume(v: &mut Volume) -> Result<(), DecodeError> {
    if volume_sources(v).is_empty() {
        // A volume without a source is an emptyDir.
        v.empty_dir = Some(Default::default());
    }
    if let Some(e) = &mut v.empty_dir
        && let Some(limit) = &mut e.size_limit
    {
        limit.0 = quantity::canonical(&limit.0, false).map_err(DecodeError)?;
    }
    if let Some(sec) = &mut v.secret {
        sec.default_mode.get_or_insert(0o644);
    }
    if let Some(cm) = &mut v.config_map {
        cm.default_mode.get_or_insert(0o644);
    }
    if let Some(h) = &mut v.host_path {
        h.type_.get_or_insert_with(String::new);
    }
    if let Some(d) = &mut v.downward_api {
        d.default_mode.get_or_insert(0o644);
        for item in d.items.iter_mut().flatten() {
            if let Some(f) = &mut item.field_ref {
                default_field_ref(f);
            }
            if let Some(r) = &mut item.resource_field_ref {
                default_resource_field_ref(r)?;
            }
        }
    }
    if let Some(p) = &mut v.projected {
        p.default_mode.get_or_insert(0o644);
        for src in p.sources.iter_mut().flatten() {
            if let Some(t) = &mut src.service_account_token {
                t.expiration_seconds.get_or_insert(3600);
            }
            for item in src.downward_api.iter_mut().flat_map(|d| d.items.iter_mut().flatten()) {
                if let Some(f) = &mut item.field_ref {
                    default_field_ref(f);
                }
                if let Some(r) = &mut item.resource_field_ref {
                    default_resource_field_ref(r)?;
                }
            }
        }
    }
    if let Some(spec) = v.ephemeral.as_mut().and_then(|e| e.volume_claim_template.as_mut()).map(|t| &mut t.spec) {
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    }
    if let Some(img) = &mut v.image {
        img.pull_policy.get_or_insert_with(|| {
            if image_tag(s(&img.reference)).as_deref() == Some("latest") { "Always" } else { "IfNotPresent" }.into()
        });
    }
    Ok(())
}

/// The names of the sources a volume sets (exactly one is valid).
fn volume_sources(v: &Volume) -> Vec<&'static str> {
    let set = [
        ("emptyDir", v.empty_dir.is_some()),
        ("hostPath", v.host_path.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("secret", v.secret.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("rbd", v.rbd.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephFS", v.cephfs.is_some()),
        ("quobyte", v.quobyte.is_some()),
        // Kubernetes' own spelling of this path (sic).
        ("downwarAPI", v.downward_api.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("configMap", v.config_map.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("storageos", v.storageos.is_some()),
        ("projected", v.projected.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
    ];
    set.into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect()
}

/// `Always` for `:latest` or an untagged image, else `IfNotPresent` (a digest
/// without a tag, or a reference that does not parse, is `IfNotPresent`).
pub fn pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") { "Always" } else { "IfNotPresent" }
}

/// The tag Kubernetes' `parsers.ParseImageName` finds: `latest` when there is
/// neither tag nor digest, `None` for a digest alone or an invalid reference.
pub fn image_tag(image: &str) -> Option<String> {
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let (algo, hex) = d.split_once(':')?;
        if algo.is_empty() || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
    }
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (&name_tag[..last_slash + i], Some(&name_tag[last_slash + i + 1..])),
        None => (name_tag, None),
    };
    if let Some(t) = tag {
        let b = t.as_bytes();
        let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
        if b.is_empty() || b.len() > 128 || !word(&b[0]) || !b.iter().all(|c| word(c) || matches!(c, b'.' | b'-')) {
            return None;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    let parts: Vec<&str> = name.split('/').collect();
    let first_is_domain = parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost");
    for (i, part) in parts.iter().enumerate() {
        let ok = if i == 0 && first_is_domain {
            let (host, port) = part.split_once(':').unwrap_or((part, "0"));
            !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
                && !port.is_empty()
                && port.bytes().all(|c| c.is_ascii_digit())
        } else {
            path_component(part)
        };
        if !ok {
            return None;
        }
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".into()),
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn path_component(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

// === QoS ===

/// The pod's QoS class (`qos.ComputePodQOS`): BestEffort without any cpu or memory
/// request or limit, Guaranteed when every container limits both and requests
/// equal limits, else Burstable.
pub fn qos_class(spec: &PodSpec) -> String {
    let mut requests: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(list(&spec.init_containers)) {
        let res = c.resources.as_ref();
        for (name, q) in res.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            let Some(name) = qos_resource(name) else { continue };
            if let Some(q) = Quantity::parse(&q.0).filter(|q| *q > Quantity::zero()) {
                requests.entry(name).and_modify(|t| *t = t.plus(q)).or_insert(q);
            }
        }
        let mut has: BTreeSet<&str> = BTreeSet::new();
        for (name, q) in res.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            let Some(name) = qos_resource(name) else { continue };
            if let Some(q) = Quantity::parse(&q.0).filter(|q| *q > Quantity::zero()) {
                has.insert(name);
                limits.entry(name).and_modify(|t| *t = t.plus(q)).or_insert(q);
            }
        }
        if has.len() != 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort".into();
    }
    if guaranteed && requests.iter().all(|(k, v)| limits.get(k) == Some(v)) && requests.len() == limits.len() {
        return "Guaranteed".into();
    }
    "Burstable".into()
}

fn qos_resource(name: &str) -> Option<&'static str> {
    match name {
        "cpu" => Some("cpu"),
        "memory" => Some("memory"),
        _ => None,
    }
}

// === validation: Pod ===

/// ValidatePodCreate.
pub fn validate_pod(pod: &Pod, _raw: &Value) -> Errs {
    let mut errs = validate_pod_common(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let p = Path::new("spec");
    if !list(&spec.ephemeral_containers).is_empty() {
        errs.push(forbidden(&p.child("ephemeralContainers"), "cannot be set on create"));
    }
    if !s(&spec.node_name).is_empty() && !list(&spec.scheduling_gates).is_empty() {
        errs.push(forbidden(&p.child("nodeName"), "cannot be set until all schedulingGates have been cleared"));
    }
    errs
}

/// validatePodMetadataAndSpec without the metadata (validated by the caller).
fn validate_pod_common(pod: &Pod) -> Errs {
    let mut errs = Vec::new();
    let spec = pod.spec.clone().unwrap_or_default();
    let p = Path::new("spec");
    validate_pod_spec(&spec, &p, true, &mut errs);
    if s(&spec.service_account_name).is_empty() {
        for (vi, v) in list(&spec.volumes).iter().enumerate() {
            for (si, src) in v.projected.iter().flat_map(|pr| list(&pr.sources)).enumerate() {
                if src.service_account_token.is_some() {
                    let sp = p.child("volumes").index(vi).child("projected").child("sources").index(si);
                    errs.push(forbidden(
                        &sp.child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    // Only pods (not templates) refuse images with surrounding whitespace.
    for (name, cs) in [("containers", &spec.containers[..]), ("initContainers", list(&spec.init_containers))] {
        for (i, c) in cs.iter().enumerate() {
            let image = s(&c.image);
            if image.len() != image.trim().len() {
                errs.push(invalid(
                    &p.child(name).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set \
to 1 if it was previously negative)";

/// ValidatePodUpdate: a running pod's spec may only change its images, shorten its
/// deadline, gain tolerations, lose scheduling gates, and (in rk) be bound to a
/// node once.
pub fn validate_pod_update(new: &Pod, _new_raw: &Value, old: &Pod, _old_raw: &Value) -> Errs {
    let mut errs = validate_pod_common(new);
    let p = Path::new("spec");
    let ns = new.spec.clone().unwrap_or_default();
    let os = old.spec.clone().unwrap_or_default();
    for (name, n, o) in [
        ("containers", &ns.containers[..], &os.containers[..]),
        ("initContainers", list(&ns.init_containers), list(&os.init_containers)),
    ] {
        if n.len() != o.len() {
            errs.push(forbidden(&p.child(name), "pod updates may not add or remove containers"));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            if s(&c.image).is_empty() {
                errs.push(required(&p.child(name).index(i).child("image"), ""));
            }
        }
    }
    // activeDeadlineSeconds may be set, or lowered, never raised or removed.
    match (ns.active_deadline_seconds, os.active_deadline_seconds) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(invalid(&p.child("activeDeadlineSeconds"), n, inclusive_range(0, MAX_INT32)));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(invalid(&p.child("activeDeadlineSeconds"), n, "must be less than or equal to previous value"));
            return errs;
        }
        (None, Some(_)) => errs.push(invalid(
            &p.child("activeDeadlineSeconds"),
            "null",
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Existing tolerations may only change their tolerationSeconds.
    for o in list(&os.tolerations) {
        let kept = list(&ns.tolerations)
            .iter()
            .any(|n| Toleration { toleration_seconds: n.toleration_seconds, ..o.clone() } == *n);
        if !kept {
            errs.push(forbidden(
                &p.child("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    let old_gates: BTreeSet<&str> = list(&os.scheduling_gates).iter().map(|g| g.name.as_str()).collect();
    for (i, g) in list(&ns.scheduling_gates).iter().enumerate() {
        if !old_gates.contains(g.name.as_str()) {
            errs.push(forbidden(
                &p.child("schedulingGates").index(i).child("name"),
                format!("only deletion is allowed, but found new scheduling gate '{}'", g.name),
            ));
        }
    }

    // Everything else must be unchanged: copy the updatable fields from the old
    // spec and compare.
    let mut munged = ns.clone();
    for (c, o) in munged.containers.iter_mut().zip(&os.containers) {
        c.image = o.image.clone();
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(list(&os.init_containers)) {
        c.image = o.image.clone();
    }
    munged.active_deadline_seconds = os.active_deadline_seconds;
    munged.scheduling_gates = os.scheduling_gates.clone();
    munged.tolerations = os.tolerations.clone();
    if os.termination_grace_period_seconds.is_some_and(|g| g < 0) && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = os.termination_grace_period_seconds;
    }
    // rk binds pods by updating spec.nodeName: allowed once, never changed after.
    if s(&os.node_name).is_empty() {
        munged.node_name = os.node_name.clone();
    }
    let (Ok(old_v), Ok(new_v)) = (serde_json::to_value(&os), serde_json::to_value(&munged)) else { return errs };
    let (old_v, new_v) = (prune_empty(old_v), prune_empty(new_v));
    if old_v != new_v {
        let mut diff = Vec::new();
        json_diff(&old_v, &new_v, &p, &mut diff);
        let lines: Vec<String> = diff.iter().map(|(path, a, b)| format!("  {path}: {a} -> {b}")).collect();
        errs.push(forbidden(
            &p,
            format!("pod updates may not change fields other than {UPDATABLE}\n{}", lines.join("\n")),
        ));
    }
    errs
}

// === validation: templates ===

/// ValidatePodTemplateSpec (the template's labels and annotations are validated
/// here, as they are not the object's own metadata). Kubernetes reports them on
/// `<template>.labels` and `<template>.annotations`, without `metadata`.
pub fn validate_template(t: &PodTemplateSpec, p: &Path, errs: &mut Errs) {
    let meta = t.metadata.clone().unwrap_or_default();
    validate_labels(meta.labels.as_ref(), &p.child("labels"), errs);
    let mut ann_errs = Vec::new();
    let ann = serde_json::json!({ "annotations": meta.annotations });
    meta::validate_labels_and_annotations(&ann, &mut ann_errs);
    for mut e in ann_errs {
        e.field = p.child(e.field.trim_start_matches("metadata.")).to_string();
        errs.push(e);
    }
    let spec = t.spec.clone().unwrap_or_default();
    validate_pod_spec(&spec, &p.child("spec"), false, errs);
    if !list(&spec.ephemeral_containers).is_empty() {
        errs.push(forbidden(
            &p.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

// === validation: PodSpec ===

/// ValidatePodSpec. `is_pod` is Kubernetes' `ResourceIsPod` option.
pub fn validate_pod_spec(spec: &PodSpec, p: &Path, is_pod: bool, errs: &mut Errs) {
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(required(&p.child("terminationGracePeriodSeconds"), ""));
    }
    let grace = spec.termination_grace_period_seconds;
    let vols = validate_volumes(list(&spec.volumes), &p.child("volumes"), errs);
    let restart = s(&spec.restart_policy);
    validate_containers(&spec.containers, &vols, grace, &p.child("containers"), restart, errs);
    validate_init_containers(
        list(&spec.init_containers),
        &spec.containers,
        &vols,
        grace,
        &p.child("initContainers"),
        restart,
        errs,
    );
    for (i, ec) in list(&spec.ephemeral_containers).iter().enumerate() {
        let ep = p.child("ephemeralContainers").index(i);
        if ec.name.is_empty() {
            errs.push(required(&ep.child("name"), ""));
        } else {
            each(meta::dns1123_label, &ec.name, &ep.child("name"), errs);
        }
        if s(&ec.image).is_empty() {
            errs.push(required(&ep.child("image"), ""));
        }
    }
    if spec.host_network == Some(true) {
        for (i, c) in spec.containers.iter().enumerate() {
            for (j, port) in list(&c.ports).iter().enumerate() {
                let hp = port.host_port.unwrap_or(0);
                if (is_pod || hp != 0) && hp != port.container_port {
                    let pp = p.child("containers").index(i).child("ports").index(j).child("hostPort");
                    errs.push(invalid(&pp, hp, "must match `containerPort` when `hostNetwork` is true"));
                }
            }
        }
    }
    match restart {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(&p.child("restartPolicy"), "")),
        other => errs.push(not_supported(&p.child("restartPolicy"), other, &["Always", "OnFailure", "Never"])),
    }
    match s(&spec.dns_policy) {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(required(&p.child("dnsPolicy"), "")),
        other => errs.push(not_supported(
            &p.child("dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    validate_labels(spec.node_selector.as_ref(), &p.child("nodeSelector"), errs);
    if let Some(sc) = &spec.security_context {
        validate_pod_security_context(sc, spec, p, errs);
    }
    if let Some(a) = &spec.affinity {
        validate_affinity(a, &p.child("affinity"), errs);
    }
    validate_dns_config(spec, &p.child("dnsConfig"), errs);
    for (i, g) in list(&spec.readiness_gates).iter().enumerate() {
        each(meta::qualified_name, &g.condition_type, &p.child("readinessGates").index(i).child("conditionType"), errs);
    }
    let mut seen = BTreeSet::new();
    for (i, g) in list(&spec.scheduling_gates).iter().enumerate() {
        let gp = p.child("schedulingGates").index(i);
        each(meta::qualified_name, &g.name, &gp, errs);
        if !seen.insert(g.name.as_str()) {
            errs.push(duplicate(&gp, &g.name));
        }
    }
    for (i, c) in list(&spec.topology_spread_constraints).iter().enumerate() {
        let cp = p.child("topologySpreadConstraints").index(i);
        if c.max_skew <= 0 {
            errs.push(invalid(&cp.child("maxSkew"), c.max_skew, "must be greater than zero"));
        }
        if c.topology_key.is_empty() {
            errs.push(required(&cp.child("topologyKey"), "can not be empty"));
        } else {
            each(meta::qualified_name, &c.topology_key, &cp.child("topologyKey"), errs);
        }
        if !matches!(c.when_unsatisfiable.as_str(), "DoNotSchedule" | "ScheduleAnyway") {
            errs.push(not_supported(
                &cp.child("whenUnsatisfiable"),
                &c.when_unsatisfiable,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if let Some(sel) = &c.label_selector {
            validate_label_selector(sel, &cp.child("labelSelector"), errs);
        }
    }
    let account = s(&spec.service_account_name);
    if !account.is_empty() {
        each(meta::dns1123_subdomain, account, &p.child("serviceAccountName"), errs);
    }
    let node = s(&spec.node_name);
    if !node.is_empty() {
        each(meta::dns1123_subdomain, node, &p.child("nodeName"), errs);
    }
    if let Some(v) = spec.active_deadline_seconds
        && !(1..=MAX_INT32).contains(&v)
    {
        errs.push(invalid(&p.child("activeDeadlineSeconds"), v, inclusive_range(1, MAX_INT32)));
    }
    for (field, v) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if !s(v).is_empty() {
            each(meta::dns1123_label, s(v), &p.child(field), errs);
        }
    }
    validate_tolerations(list(&spec.tolerations), &p.child("tolerations"), errs);
    for (i, a) in list(&spec.host_aliases).iter().enumerate() {
        let ap = p.child("hostAliases").index(i);
        super::valid_ip(&ap.child("ip"), &a.ip, errs);
        for (j, h) in list(&a.hostnames).iter().enumerate() {
            each(meta::dns1123_subdomain, h, &ap.child("hostnames").index(j), errs);
        }
    }
    if !s(&spec.priority_class_name).is_empty() {
        each(meta::dns1123_subdomain, s(&spec.priority_class_name), &p.child("priorityClassName"), errs);
    }
    if let Some(rc) = &spec.runtime_class_name {
        each(meta::dns1123_subdomain, rc, &p.child("runtimeClassName"), errs);
    }
    match spec.preemption_policy.as_deref() {
        None | Some("PreemptLowerPriority") | Some("Never") => {}
        Some("") => errs.push(required(&p.child("preemptionPolicy"), "")),
        Some(other) => {
            errs.push(not_supported(&p.child("preemptionPolicy"), other, &["PreemptLowerPriority", "Never"]))
        }
    }
    if let Some(overhead) = &spec.overhead {
        let req = ResourceRequirements { limits: Some(overhead.clone()), ..Default::default() };
        validate_resources(&req, &p.child("overhead"), errs);
    }
    if let Some(os) = &spec.os
        && !matches!(os.name.as_str(), "linux" | "windows")
    {
        errs.push(not_supported(&p.child("os").child("name"), &os.name, &["linux", "windows"]));
    }
}

fn validate_pod_security_context(sc: &PodSecurityContext, spec: &PodSpec, p: &Path, errs: &mut Errs) {
    let sp = p.child("securityContext");
    for (field, v) in [("fsGroup", sc.fs_group), ("runAsUser", sc.run_as_user), ("runAsGroup", sc.run_as_group)] {
        if let Some(v) = v
            && !(0..=MAX_INT32).contains(&v)
        {
            errs.push(invalid(&sp.child(field), v, inclusive_range(0, MAX_INT32)));
        }
    }
    for (i, g) in list(&sc.supplemental_groups).iter().enumerate() {
        if !(0..=MAX_INT32).contains(g) {
            errs.push(invalid(&sp.child("supplementalGroups").index(i), g, inclusive_range(0, MAX_INT32)));
        }
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(invalid(
            &p.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    if let Some(policy) = &sc.fs_group_change_policy
        && !matches!(policy.as_str(), "Always" | "OnRootMismatch")
    {
        errs.push(not_supported(&sp.child("fsGroupChangePolicy"), policy, &["Always", "OnRootMismatch"]));
    }
    if let Some(sp2) = &sc.seccomp_profile {
        validate_seccomp(&sp2.type_, sp2.localhost_profile.as_deref(), &sp.child("seccompProfile"), errs);
    }
}

fn validate_seccomp(type_: &str, localhost: Option<&str>, p: &Path, errs: &mut Errs) {
    match type_ {
        "RuntimeDefault" | "Unconfined" | "Localhost" => {}
        "" => errs.push(required(&p.child("type"), "")),
        other => errs.push(not_supported(&p.child("type"), other, &["Localhost", "RuntimeDefault", "Unconfined"])),
    }
    match (type_, localhost) {
        ("Localhost", None) => {
            errs.push(required(&p.child("localhostProfile"), "must be set when seccomp type is Localhost"))
        }
        ("Localhost", Some(l)) => local_descending_path(l, &p.child("localhostProfile"), errs),
        (_, Some(l)) => {
            errs.push(invalid(&p.child("localhostProfile"), l, "can only be set when seccomp type is Localhost"))
        }
        _ => {}
    }
}

fn validate_affinity(a: &Affinity, p: &Path, errs: &mut Errs) {
    if let Some(na) = &a.node_affinity {
        let np = p.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            let tp = np.child("requiredDuringSchedulingIgnoredDuringExecution").child("nodeSelectorTerms");
            if req.node_selector_terms.is_empty() {
                errs.push(required(&tp, "must have at least one node selector term"));
            }
            for (i, term) in req.node_selector_terms.iter().enumerate() {
                validate_node_selector_term(term, &tp.index(i), false, errs);
            }
        }
        for (i, t) in list(&na.preferred_during_scheduling_ignored_during_execution).iter().enumerate() {
            let tp = np.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            if !(1..=100).contains(&t.weight) {
                errs.push(invalid(&tp.child("weight"), t.weight, "must be in the range 1-100"));
            }
            // Preferred terms may carry any label value: they can still match.
            validate_node_selector_term(&t.preference, &tp.child("preference"), true, errs);
        }
    }
    let pod_terms = [
        (
            "podAffinity",
            a.pod_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            a.pod_anti_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ];
    for (name, terms) in pod_terms {
        let Some((req, pref)) = terms else { continue };
        let ap = p.child(name);
        for (i, t) in list(req).iter().enumerate() {
            validate_pod_affinity_term(t, &ap.child("requiredDuringSchedulingIgnoredDuringExecution").index(i), errs);
        }
        for (i, w) in list(pref).iter().enumerate() {
            let wp = ap.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
            if !(1..=100).contains(&w.weight) {
                errs.push(invalid(&wp.child("weight"), w.weight, "must be in the range 1-100"));
            }
            validate_pod_affinity_term(&w.pod_affinity_term, &wp.child("podAffinityTerm"), errs);
        }
    }
}

fn validate_node_selector_term(term: &NodeSelectorTerm, p: &Path, any_value: bool, errs: &mut Errs) {
    for (i, r) in list(&term.match_expressions).iter().enumerate() {
        validate_node_selector_requirement(r, &p.child("matchExpressions").index(i), any_value, errs);
    }
    for (i, r) in list(&term.match_fields).iter().enumerate() {
        let rp = p.child("matchFields").index(i);
        let values = list(&r.values);
        if matches!(r.operator.as_str(), "In" | "NotIn") {
            if values.len() != 1 {
                errs.push(required(
                    &rp.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        } else {
            errs.push(invalid(&rp.child("operator"), &r.operator, "not a valid selector operator"));
        }
        if r.key != "metadata.name" {
            errs.push(invalid(&rp.child("key"), &r.key, "not a valid field selector key"));
        } else {
            for (j, v) in values.iter().enumerate() {
                each(meta::dns1123_subdomain, v, &rp.child("values").index(j), errs);
            }
        }
    }
}

fn validate_node_selector_requirement(r: &NodeSelectorRequirement, p: &Path, any_value: bool, errs: &mut Errs) {
    let values = list(&r.values);
    match r.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => {
            errs.push(required(&p.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        }
        "Exists" | "DoesNotExist" if !values.is_empty() => errs
            .push(forbidden(&p.child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")),
        "Gt" | "Lt" if values.len() != 1 => {
            errs.push(required(&p.child("values"), "must be specified single value when `operator` is 'Lt' or 'Gt'"))
        }
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        op => errs.push(invalid(&p.child("operator"), op, "not a valid selector operator")),
    }
    each(meta::qualified_name, &r.key, &p.child("key"), errs);
    if !any_value {
        for (i, v) in values.iter().enumerate() {
            each(meta::label_value, v, &p.child("values").index(i), errs);
        }
    }
}

fn validate_pod_affinity_term(t: &PodAffinityTerm, p: &Path, errs: &mut Errs) {
    if let Some(sel) = &t.label_selector {
        validate_label_selector(sel, &p.child("labelSelector"), errs);
    }
    if let Some(sel) = &t.namespace_selector {
        validate_label_selector(sel, &p.child("namespaceSelector"), errs);
    }
    for ns in list(&t.namespaces) {
        // Kubernetes reports these on `namespace` (sic).
        each(meta::dns1123_label, ns, &p.child("namespace"), errs);
    }
    if t.topology_key.is_empty() {
        errs.push(required(&p.child("topologyKey"), "can not be empty"));
    }
    each(meta::qualified_name, &t.topology_key, &p.child("topologyKey"), errs);
}

fn validate_dns_config(spec: &PodSpec, p: &Path, errs: &mut Errs) {
    if s(&spec.dns_policy) == "None" {
        let Some(c) = &spec.dns_config else {
            errs.push(required(p, "must provide `dnsConfig` when `dnsPolicy` is None"));
            return;
        };
        if list(&c.nameservers).is_empty() {
            errs.push(required(
                &p.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ));
            return;
        }
    }
    let Some(c) = &spec.dns_config else { return };
    let servers = list(&c.nameservers);
    if servers.len() > 3 {
        errs.push(invalid(&p.child("nameservers"), json_of(servers), "must not have more than 3 nameservers"));
    }
    for (i, ns) in servers.iter().enumerate() {
        super::valid_ip(&p.child("nameservers").index(i), ns, errs);
    }
    let searches = list(&c.searches);
    if searches.len() > 32 {
        errs.push(invalid(&p.child("searches"), json_of(searches), "must not have more than 32 search paths"));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(invalid(
            &p.child("searches"),
            json_of(searches),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        // Relaxed DNS search validation (on by default since 1.32): "." and
        // underscores are allowed.
        if search != "." {
            let s = search.trim_end_matches('.').replace('_', "a");
            for m in meta::dns1123_subdomain(&s) {
                errs.push(invalid(&p.child("searches").index(i), search.trim_end_matches('.'), m));
            }
        }
    }
    for (i, o) in list(&c.options).iter().enumerate() {
        if s(&o.name).is_empty() {
            errs.push(required(&p.child("options").index(i), "must not be empty"));
        }
    }
}

/// ValidateTolerations.
pub fn validate_tolerations(tolerations: &[Toleration], p: &Path, errs: &mut Errs) {
    for (i, t) in tolerations.iter().enumerate() {
        let tp = p.index(i);
        let key = s(&t.key);
        let op = s(&t.operator);
        let effect = s(&t.effect);
        let value = s(&t.value);
        if !key.is_empty() {
            each(meta::qualified_name, key, &tp.child("key"), errs);
        }
        if key.is_empty() && op != "Exists" {
            errs.push(invalid(
                &tp.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(invalid(
                &tp.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = meta::label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid(&tp.child("operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(&tp.child("operator"), value, "value must be empty when `operator` is 'Exists'"));
                }
            }
            other => errs.push(not_supported(&tp.child("operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() {
            validate_taint_effect(effect, &tp.child("effect"), errs);
        }
    }
}

/// validateTaintEffect (an empty effect is the caller's business).
pub fn validate_taint_effect(effect: &str, p: &Path, errs: &mut Errs) {
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        errs.push(not_supported(p, effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"]));
    }
}

// === volumes ===

/// ValidateVolumes; returns the volumes that are valid, by name, for mounts to
/// refer to.
fn validate_volumes<'a>(volumes: &'a [Volume], p: &Path, errs: &mut Errs) -> HashMap<&'a str, &'a Volume> {
    let mut valid = HashMap::new();
    for (i, v) in volumes.iter().enumerate() {
        let vp = p.index(i);
        let mut el = Vec::new();
        validate_volume_source(v, &vp, &mut el);
        if v.name.is_empty() {
            el.push(required(&vp.child("name"), ""));
        } else {
            each(meta::dns1123_label, &v.name, &vp.child("name"), &mut el);
        }
        if valid.contains_key(v.name.as_str()) {
            el.push(duplicate(&vp.child("name"), &v.name));
        }
        if el.is_empty() {
            valid.insert(v.name.as_str(), v);
        } else {
            errs.extend(el);
        }
    }
    valid
}

fn validate_volume_source(v: &Volume, p: &Path, errs: &mut Errs) {
    let sources = volume_sources(v);
    if sources.is_empty() {
        errs.push(required(p, "must specify a volume type"));
        return;
    }
    for extra in &sources[1..] {
        errs.push(forbidden(&p.child(extra), "may not specify more than 1 volume type"));
    }
    match sources[0] {
        "emptyDir" => {
            let limit = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref());
            if limit.and_then(|q| Quantity::parse(&q.0)).is_some_and(|q| q.is_negative()) {
                errs.push(forbidden(
                    &p.child("emptyDir").child("sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => {
            let Some(h) = &v.host_path else { return };
            let hp = p.child("hostPath");
            if h.path.is_empty() {
                errs.push(required(&hp.child("path"), ""));
                return;
            }
            no_backsteps(&h.path, &hp.child("path"), errs);
            let types =
                ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"];
            if let Some(t) = &h.type_
                && !types.contains(&t.as_str())
            {
                errs.push(not_supported(&hp.child("type"), t, &types));
            }
        }
        "secret" => {
            let Some(sec) = &v.secret else { return };
            let sp = p.child("secret");
            if s(&sec.secret_name).is_empty() {
                errs.push(required(&sp.child("secretName"), ""));
            }
            file_mode(sec.default_mode, &sp.child("defaultMode"), errs);
            for (i, kp) in list(&sec.items).iter().enumerate() {
                key_to_path(&kp.key, &kp.path, kp.mode, &sp.child("items").index(i), errs);
            }
        }
        "configMap" => {
            let Some(cm) = &v.config_map else { return };
            let cp = p.child("configMap");
            if cm.name.is_empty() {
                errs.push(required(&cp.child("name"), ""));
            }
            file_mode(cm.default_mode, &cp.child("defaultMode"), errs);
            for (i, kp) in list(&cm.items).iter().enumerate() {
                key_to_path(&kp.key, &kp.path, kp.mode, &cp.child("items").index(i), errs);
            }
        }
        "persistentVolumeClaim" if v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name.is_empty()) => {
            errs.push(required(&p.child("persistentVolumeClaim").child("claimName"), ""));
        }
        "nfs" => {
            let Some(n) = &v.nfs else { return };
            let np = p.child("nfs");
            if n.server.is_empty() {
                errs.push(required(&np.child("server"), ""));
            }
            if n.path.is_empty() {
                errs.push(required(&np.child("path"), ""));
            }
            if !n.path.starts_with('/') {
                errs.push(invalid(&np.child("path"), &n.path, "must be an absolute path"));
            }
        }
        "csi" if v.csi.as_ref().is_some_and(|c| c.driver.is_empty()) => {
            errs.push(required(&p.child("csi").child("driver"), ""));
        }
        "downwarAPI" => {
            let Some(d) = &v.downward_api else { return };
            let dp = p.child("downwardAPI");
            file_mode(d.default_mode, &dp.child("defaultMode"), errs);
            for item in list(&d.items) {
                if item.path.is_empty() {
                    errs.push(required(&dp.child("path"), ""));
                }
                local_non_reserved_path(&item.path, &dp.child("path"), errs);
                match (&item.field_ref, &item.resource_field_ref) {
                    (Some(_), Some(_)) => errs.push(invalid(
                        &dp,
                        "resource",
                        "fieldRef and resourceFieldRef can not be specified simultaneously",
                    )),
                    (None, None) => errs.push(required(&dp, "one of fieldRef and resourceFieldRef is required")),
                    _ => {}
                }
                file_mode(item.mode, &dp.child("mode"), errs);
            }
        }
        "projected" => {
            let Some(pr) = &v.projected else { return };
            let pp = p.child("projected");
            file_mode(pr.default_mode, &pp.child("defaultMode"), errs);
            for (i, src) in list(&pr.sources).iter().enumerate() {
                let sp = pp.child("sources").index(i);
                let mut n = 0;
                if let Some(sec) = &src.secret {
                    n += 1;
                    for (j, kp) in list(&sec.items).iter().enumerate() {
                        key_to_path(&kp.key, &kp.path, kp.mode, &sp.child("secret").child("items").index(j), errs);
                    }
                }
                if let Some(cm) = &src.config_map {
                    n += 1;
                    for (j, kp) in list(&cm.items).iter().enumerate() {
                        key_to_path(&kp.key, &kp.path, kp.mode, &sp.child("configMap").child("items").index(j), errs);
                    }
                }
                if src.downward_api.is_some() {
                    n += 1;
                }
                if let Some(t) = &src.service_account_token {
                    n += 1;
                    let tp = sp.child("serviceAccountToken");
                    let secs = t.expiration_seconds.unwrap_or(0);
                    if secs < 600 {
                        errs.push(invalid(
                            &tp.child("expirationSeconds"),
                            secs,
                            "may not specify a duration less than 10 minutes",
                        ));
                    }
                    if secs > 1 << 32 {
                        errs.push(invalid(
                            &tp.child("expirationSeconds"),
                            secs,
                            "may not specify a duration larger than 2^32 seconds",
                        ));
                    }
                    if t.path.is_empty() {
                        errs.push(required(&pp.child("path"), ""));
                    } else {
                        local_non_reserved_path(&t.path, &pp.child("path"), errs);
                    }
                }
                if src.cluster_trust_bundle.is_some() {
                    n += 1;
                }
                if n > 1 {
                    errs.push(forbidden(&sp, "may not specify more than 1 volume type per source"));
                }
            }
        }
        _ => {}
    }
}

fn file_mode(mode: Option<i32>, p: &Path, errs: &mut Errs) {
    if let Some(m) = mode
        && !(0..=0o777).contains(&m)
    {
        errs.push(invalid(p, m, "must be a number between 0 and 0777 (octal), both inclusive"));
    }
}

fn key_to_path(key: &str, path: &str, mode: Option<i32>, p: &Path, errs: &mut Errs) {
    if key.is_empty() {
        errs.push(required(&p.child("key"), ""));
    }
    if path.is_empty() {
        errs.push(required(&p.child("path"), ""));
    }
    local_non_reserved_path(path, &p.child("path"), errs);
    file_mode(mode, &p.child("mode"), errs);
}

fn no_backsteps(path: &str, p: &Path, errs: &mut Errs) {
    if path.replace('\\', "/").split('/').any(|part| part == "..") {
        errs.push(invalid(p, path, "must not contain '..'"));
    }
}

fn local_descending_path(path: &str, p: &Path, errs: &mut Errs) {
    if path.starts_with('/') {
        errs.push(invalid(p, path, "must be a relative path"));
    }
    no_backsteps(path, p, errs);
}

fn local_non_reserved_path(path: &str, p: &Path, errs: &mut Errs) {
    local_descending_path(path, p, errs);
    if path.starts_with("..") && !path.starts_with("../") {
        errs.push(invalid(p, path, "must not start with '..'"));
    }
}

// === containers ===

fn validate_containers(
    containers: &[Container],
    vols: &HashMap<&str, &Volume>,
    grace: Option<i64>,
    p: &Path,
    restart: &str,
    errs: &mut Errs,
) {
    if containers.is_empty() {
        errs.push(required(p, ""));
        return;
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let cp = p.index(i);
        validate_container_common(c, vols, &cp, restart, errs);
        if !names.insert(c.name.as_str()) {
            errs.push(duplicate(&cp.child("name"), &c.name));
        }
        if let Some(l) = &c.lifecycle {
            validate_lifecycle(l, grace, &cp.child("lifecycle"), errs);
        }
        validate_probe(c.liveness_probe.as_ref(), &cp.child("livenessProbe"), Kind::Liveness, errs);
        validate_probe(c.readiness_probe.as_ref(), &cp.child("readinessProbe"), Kind::Readiness, errs);
        validate_probe(c.startup_probe.as_ref(), &cp.child("startupProbe"), Kind::Startup, errs);
        if c.restart_policy.is_some() {
            errs.push(forbidden(&cp.child("restartPolicy"), "may not be set for non-init containers"));
        }
    }
    host_port_conflicts(containers, p, errs);
}

fn validate_init_containers(
    containers: &[Container],
    regular: &[Container],
    vols: &HashMap<&str, &Volume>,
    grace: Option<i64>,
    p: &Path,
    restart: &str,
    errs: &mut Errs,
) {
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in containers.iter().enumerate() {
        let cp = p.index(i);
        validate_container_common(c, vols, &cp, restart, errs);
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        if let Some(rp) = &c.restart_policy
            && !sidecar
        {
            errs.push(not_supported(&cp.child("restartPolicy"), rp, &["Always"]));
        }
        if names.contains(c.name.as_str()) {
            errs.push(duplicate(&cp.child("name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(&c.name);
        }
        // Init containers run one at a time, so only clash with themselves.
        host_port_conflicts(std::slice::from_ref(c), p, errs);
        if sidecar {
            if let Some(l) = &c.lifecycle {
                validate_lifecycle(l, grace, &cp.child("lifecycle"), errs);
            }
            validate_probe(c.liveness_probe.as_ref(), &cp.child("livenessProbe"), Kind::Liveness, errs);
            validate_probe(c.readiness_probe.as_ref(), &cp.child("readinessProbe"), Kind::Readiness, errs);
            validate_probe(c.startup_probe.as_ref(), &cp.child("startupProbe"), Kind::Startup, errs);
        } else {
            let set = [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ];
            for (field, _) in set.iter().filter(|(_, on)| *on) {
                errs.push(forbidden(
                    &cp.child(field),
                    "may not be set for init containers without restartPolicy=Always",
                ));
            }
        }
    }
}

/// AccumulateUniqueHostPorts: a protocol/hostIP/hostPort triple once per pod.
fn host_port_conflicts(containers: &[Container], p: &Path, errs: &mut Errs) {
    let mut seen = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, port) in list(&c.ports).iter().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", s(&port.protocol), s(&port.host_ip));
            if !seen.insert(key.clone()) {
                errs.push(duplicate(&p.index(i).child("ports").index(j).child("hostPort"), key));
            }
        }
    }
}

/// validateContainerCommon: what every kind of container must satisfy.
fn validate_container_common(c: &Container, vols: &HashMap<&str, &Volume>, p: &Path, restart: &str, errs: &mut Errs) {
    if c.name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else {
        each(meta::dns1123_label, &c.name, &p.child("name"), errs);
    }
    if s(&c.image).is_empty() {
        errs.push(required(&p.child("image"), ""));
    }
    match s(&c.termination_message_policy) {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(required(&p.child("terminationMessagePolicy"), "")),
        other => {
            errs.push(not_supported(&p.child("terminationMessagePolicy"), other, &["File", "FallbackToLogsOnError"]))
        }
    }
    validate_ports(list(&c.ports), &p.child("ports"), errs);
    validate_env(list(&c.env), &p.child("env"), errs);
    validate_env_from(list(&c.env_from), &p.child("envFrom"), errs);
    validate_volume_mounts(list(&c.volume_mounts), vols, c, &p.child("volumeMounts"), errs);
    match s(&c.image_pull_policy) {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(required(&p.child("imagePullPolicy"), "")),
        other => errs.push(not_supported(&p.child("imagePullPolicy"), other, &["Always", "IfNotPresent", "Never"])),
    }
    if let Some(r) = &c.resources {
        validate_resources(r, &p.child("resources"), errs);
    }
    let mut seen = BTreeSet::new();
    for (i, rp) in list(&c.resize_policy).iter().enumerate() {
        let pp = p.child("resizePolicy");
        if !seen.insert(rp.resource_name.as_str()) {
            errs.push(duplicate(&pp.index(i), &rp.resource_name));
        }
        match rp.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(required(&pp, "")),
            other => errs.push(not_supported(&pp, other, &["cpu", "memory"])),
        }
        match rp.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(required(&pp, "")),
            other => errs.push(not_supported(&pp, other, &["NotRequired", "RestartContainer"])),
        }
        if restart == "Never" && rp.restart_policy != "NotRequired" {
            errs.push(invalid(&pp, &rp.restart_policy, "must be 'NotRequired' when `restartPolicy` is 'Never'"));
        }
    }
    if let Some(sc) = &c.security_context {
        validate_security_context(sc, &p.child("securityContext"), errs);
    }
}

fn validate_security_context(sc: &SecurityContext, p: &Path, errs: &mut Errs) {
    for (field, v) in [("runAsUser", sc.run_as_user), ("runAsGroup", sc.run_as_group)] {
        if let Some(v) = v
            && !(0..=MAX_INT32).contains(&v)
        {
            errs.push(invalid(&p.child(field), v, inclusive_range(0, MAX_INT32)));
        }
    }
    if let Some(pm) = &sc.proc_mount
        && !matches!(pm.as_str(), "Default" | "Unmasked")
    {
        errs.push(not_supported(&p.child("procMount"), pm, &["Default", "Unmasked"]));
    }
    if let Some(sp) = &sc.seccomp_profile {
        validate_seccomp(&sp.type_, sp.localhost_profile.as_deref(), &p.child("seccompProfile"), errs);
    }
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.push(invalid(
                p,
                json_of(sc),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds = sc.capabilities.as_ref().map(|c| list(&c.add)).unwrap_or_default();
        if adds.iter().any(|c| c == "CAP_SYS_ADMIN") {
            errs.push(invalid(
                p,
                json_of(sc),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
}

/// validateContainerPorts.
fn validate_ports(ports: &[ContainerPort], p: &Path, errs: &mut Errs) {
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let pp = p.index(i);
        let name = s(&port.name);
        if !name.is_empty() {
            let msgs = port_name(name);
            if !msgs.is_empty() {
                errs.extend(msgs.into_iter().map(|m| invalid(&pp.child("name"), name, m)));
            } else if !names.insert(name) {
                errs.push(duplicate(&pp.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(required(&pp.child("containerPort"), ""));
        } else {
            for m in port_num(port.container_port.into()) {
                errs.push(invalid(&pp.child("containerPort"), port.container_port, m));
            }
        }
        if let Some(hp) = port.host_port.filter(|hp| *hp != 0) {
            for m in port_num(hp.into()) {
                errs.push(invalid(&pp.child("hostPort"), hp, m));
            }
        }
        match s(&port.protocol) {
            "" => errs.push(required(&pp.child("protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(not_supported(&pp.child("protocol"), other, &["SCTP", "TCP", "UDP"])),
        }
    }
}

/// ValidateEnv.
fn validate_env(vars: &[EnvVar], p: &Path, errs: &mut Errs) {
    for (i, ev) in vars.iter().enumerate() {
        let ep = p.index(i);
        if ev.name.is_empty() {
            errs.push(required(&ep.child("name"), ""));
        } else {
            each(env_var_name, &ev.name, &ep.child("name"), errs);
        }
        let Some(from) = &ev.value_from else { continue };
        let vp = ep.child("valueFrom");
        let mut n = 0;
        if let Some(f) = &from.field_ref {
            n += 1;
            validate_field_ref(f, ENV_FIELDS, &vp.child("fieldRef"), errs);
        }
        if let Some(r) = &from.resource_field_ref {
            n += 1;
            validate_resource_field_ref(r, &vp.child("resourceFieldRef"), errs);
        }
        if let Some(k) = &from.config_map_key_ref {
            n += 1;
            key_selector(&k.name, &k.key, &vp.child("configMapKeyRef"), errs);
        }
        if let Some(k) = &from.secret_key_ref {
            n += 1;
            key_selector(&k.name, &k.key, &vp.child("secretKeyRef"), errs);
        }
        if n == 0 {
            errs.push(invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(&ev.value).is_empty() {
            errs.push(invalid(&vp, "", "may not be specified when `value` is not empty"));
        } else if n > 1 {
            errs.push(invalid(&vp, "", "may not have more than one field specified at a time"));
        }
    }
}

/// What `fieldRef` may expose through an environment variable.
const ENV_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Field labels the v1 downward API converts (`ConvertDownwardAPIFieldLabel`).
const CONVERTIBLE_FIELDS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn validate_field_ref(f: &ObjectFieldSelector, allowed: &[&str], p: &Path, errs: &mut Errs) {
    let version = s(&f.api_version);
    if version.is_empty() {
        errs.push(required(&p.child("apiVersion"), ""));
        return;
    }
    if f.field_path.is_empty() {
        errs.push(required(&p.child("fieldPath"), ""));
        return;
    }
    // `metadata.labels['key']` and `metadata.annotations['key']` pick one entry.
    let (path, subscript) = match f.field_path.split_once("['") {
        Some((path, rest)) if rest.ends_with("']") => (path, Some(&rest[..rest.len() - 2])),
        _ => (f.field_path.as_str(), None),
    };
    if version != "v1" {
        errs.push(invalid(
            &p.child("fieldPath"),
            &f.field_path,
            format!("error converting fieldPath: unsupported pod version: {version}"),
        ));
        return;
    }
    if !CONVERTIBLE_FIELDS.contains(&path) {
        errs.push(invalid(
            &p.child("fieldPath"),
            &f.field_path,
            format!("error converting fieldPath: field label not supported: {path}"),
        ));
        return;
    }
    match (path, subscript) {
        ("metadata.annotations", Some(k)) => each(meta::qualified_name, &k.to_ascii_lowercase(), p, errs),
        ("metadata.labels", Some(k)) => each(meta::qualified_name, k, p, errs),
        (path, Some(_)) => errs.push(invalid(p, path, "does not support subscript")),
        (path, None) if !allowed.contains(&path) => errs.push(not_supported(&p.child("fieldPath"), path, allowed)),
        _ => {}
    }
}

const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn validate_resource_field_ref(r: &ResourceFieldSelector, p: &Path, errs: &mut Errs) {
    if r.resource.is_empty() {
        errs.push(required(&p.child("resource"), ""));
    } else if !RESOURCE_FIELDS.contains(&r.resource.as_str())
        && !r.resource.starts_with("limits.hugepages-")
        && !r.resource.starts_with("requests.hugepages-")
    {
        errs.push(not_supported(&p.child("resource"), &r.resource, RESOURCE_FIELDS));
    }
}

fn key_selector(name: &str, key: &str, p: &Path, errs: &mut Errs) {
    each(meta::dns1123_subdomain, name, &p.child("name"), errs);
    if key.is_empty() {
        errs.push(required(&p.child("key"), ""));
    } else {
        each(super::config_map_key, key, &p.child("key"), errs);
    }
}

/// ValidateEnvFrom.
fn validate_env_from(sources: &[EnvFromSource], p: &Path, errs: &mut Errs) {
    for (i, ev) in sources.iter().enumerate() {
        let ep = p.index(i);
        let prefix = s(&ev.prefix);
        if !prefix.is_empty() {
            each(env_var_name, prefix, &ep.child("prefix"), errs);
        }
        let mut n = 0;
        for (field, name) in [
            ("configMapRef", ev.config_map_ref.as_ref().map(|r| r.name.as_str())),
            ("secretRef", ev.secret_ref.as_ref().map(|r| r.name.as_str())),
        ] {
            let Some(name) = name else { continue };
            n += 1;
            if name.is_empty() {
                errs.push(required(&ep.child(field).child("name"), ""));
            } else {
                each(meta::dns1123_subdomain, name, &ep.child(field).child("name"), errs);
            }
        }
        // Kubernetes reports these two on the list, not the entry.
        if n == 0 {
            errs.push(invalid(p, "", "must specify one of: `configMapRef` or `secretRef`"));
        } else if n > 1 {
            errs.push(invalid(p, "", "may not have more than one field specified at a time"));
        }
    }
}

/// ValidateVolumeMounts.
fn validate_volume_mounts(
    mounts: &[VolumeMount],
    vols: &HashMap<&str, &Volume>,
    c: &Container,
    p: &Path,
    errs: &mut Errs,
) {
    let mut points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let mp = p.index(i);
        if m.name.is_empty() {
            errs.push(required(&mp.child("name"), ""));
        }
        if !vols.contains_key(m.name.as_str()) {
            errs.push(not_found(&mp.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(required(&mp.child("mountPath"), ""));
        }
        if !points.insert(m.mount_path.as_str()) {
            errs.push(invalid(&mp.child("mountPath"), &m.mount_path, "must be unique"));
        }
        let sub = s(&m.sub_path);
        let sub_expr = s(&m.sub_path_expr);
        if vols.get(m.name.as_str()).is_some_and(|v| v.image.is_some()) {
            if !sub.is_empty() {
                errs.push(invalid(&mp.child("subPath"), sub, "not allowed in image volume sources"));
            }
            if !sub_expr.is_empty() {
                errs.push(invalid(&mp.child("subPathExpr"), sub_expr, "not allowed in image volume sources"));
            }
        }
        // Kubernetes reports the path checks on the list's path (sic).
        if !sub.is_empty() {
            local_descending_path(sub, &p.child("subPath"), errs);
        }
        if !sub_expr.is_empty() {
            if !sub.is_empty() {
                errs.push(invalid(
                    &mp.child("subPathExpr"),
                    sub_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            local_descending_path(sub_expr, &p.child("subPathExpr"), errs);
        }
        if let Some(prop) = &m.mount_propagation {
            let pp = p.child("mountPropagation");
            if !matches!(prop.as_str(), "Bidirectional" | "HostToContainer" | "None") {
                errs.push(not_supported(&pp, prop, &["Bidirectional", "HostToContainer", "None"]));
            }
            let privileged = c.security_context.as_ref().and_then(|sc| sc.privileged) == Some(true);
            if prop == "Bidirectional" && !privileged {
                errs.push(forbidden(&pp, "Bidirectional mount propagation is available only to privileged containers"));
            }
        }
        if let Some(rro) = &m.recursive_read_only {
            let rp = p.child("recursiveReadOnly");
            match rro.as_str() {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if m.read_only != Some(true) {
                        errs.push(forbidden(&rp, "may only be specified when readOnly is true"));
                    }
                    if m.mount_propagation.as_deref().is_some_and(|mp| mp != "None") {
                        errs.push(forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(not_supported(&rp, other, &["Disabled", "Enabled", "IfPossible"])),
            }
        }
    }
}

// === probes and handlers ===

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Liveness,
    Readiness,
    Startup,
}

fn validate_probe(probe: Option<&Probe>, p: &Path, kind: Kind, errs: &mut Errs) {
    let Some(probe) = probe else { return };
    let handlers = [
        ("exec", probe.exec.is_some()),
        ("httpGet", probe.http_get.is_some()),
        ("tcpSocket", probe.tcp_socket.is_some()),
        ("grpc", probe.grpc.is_some()),
    ];
    check_handlers(&handlers, p, errs);
    if let Some(e) = &probe.exec
        && list(&e.command).is_empty()
    {
        errs.push(required(&p.child("exec").child("command"), ""));
    }
    if let Some(g) = &probe.http_get {
        validate_http_get(g, &p.child("httpGet"), errs);
    }
    if let Some(t) = &probe.tcp_socket {
        port_num_or_name(&t.port, &p.child("tcpSocket").child("port"), errs);
    }
    if let Some(g) = &probe.grpc {
        port_num_or_name(&IntOrString::Int(g.port), &p.child("grpc").child("port"), errs);
    }
    for (field, v) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        nonnegative(v.unwrap_or(0).into(), &p.child(field), errs);
    }
    if let Some(g) = probe.termination_grace_period_seconds
        && g <= 0
    {
        errs.push(invalid(&p.child("terminationGracePeriodSeconds"), g, "must be greater than 0"));
    }
    let success = probe.success_threshold.unwrap_or(0);
    if kind != Kind::Readiness && success != 1 {
        errs.push(invalid(&p.child("successThreshold"), success, "must be 1"));
    }
    if kind == Kind::Readiness
        && let Some(g) = probe.termination_grace_period_seconds
    {
        errs.push(invalid(&p.child("terminationGracePeriodSeconds"), g, "must not be set for readinessProbes"));
    }
}

/// validateHandler's "exactly one" rule.
fn check_handlers(handlers: &[(&str, bool)], p: &Path, errs: &mut Errs) {
    let set: Vec<&str> = handlers.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
    if set.is_empty() {
        errs.push(required(p, "must specify a handler type"));
    }
    for extra in set.iter().skip(1) {
        errs.push(forbidden(&p.child(extra), "may not specify more than 1 handler type"));
    }
}

fn validate_lifecycle(l: &Lifecycle, grace: Option<i64>, p: &Path, errs: &mut Errs) {
    for (name, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
        if let Some(h) = h {
            validate_lifecycle_handler(h, grace, &p.child(name), errs);
        }
    }
}

fn validate_lifecycle_handler(h: &LifecycleHandler, grace: Option<i64>, p: &Path, errs: &mut Errs) {
    let handlers = [
        ("exec", h.exec.is_some()),
        ("httpGet", h.http_get.is_some()),
        ("tcpSocket", h.tcp_socket.is_some()),
        ("sleep", h.sleep.is_some()),
    ];
    check_handlers(&handlers, p, errs);
    if let Some(e) = &h.exec
        && list(&e.command).is_empty()
    {
        errs.push(required(&p.child("exec").child("command"), ""));
    }
    if let Some(g) = &h.http_get {
        validate_http_get(g, &p.child("httpGet"), errs);
    }
    if let Some(t) = &h.tcp_socket {
        port_num_or_name(&t.port, &p.child("tcpSocket").child("port"), errs);
    }
    // PodLifecycleSleepActionAllowZero is on by default in 1.33: zero is allowed.
    if let (Some(sl), Some(grace)) = (&h.sleep, grace)
        && (sl.seconds < 0 || sl.seconds > grace)
    {
        errs.push(invalid(
            &p.child("sleep"),
            sl.seconds,
            format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})"),
        ));
    }
}

fn validate_http_get(g: &HTTPGetAction, p: &Path, errs: &mut Errs) {
    if s(&g.path).is_empty() {
        errs.push(required(&p.child("path"), ""));
    }
    port_num_or_name(&g.port, &p.child("port"), errs);
    let scheme = s(&g.scheme);
    if !matches!(scheme, "HTTP" | "HTTPS") {
        errs.push(not_supported(&p.child("scheme"), scheme, &["HTTP", "HTTPS"]));
    }
    for h in list(&g.http_headers) {
        let token =
            !h.name.is_empty() && h.name.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
        if !token {
            errs.push(invalid(
                &p.child("httpHeaders"),
                &h.name,
                "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex \
                 used for validation is '[-A-Za-z0-9]+')",
            ));
        }
    }
}

/// ValidatePortNumOrName.
pub fn port_num_or_name(port: &IntOrString, p: &Path, errs: &mut Errs) {
    match port {
        IntOrString::Int(n) => errs.extend(port_num((*n).into()).into_iter().map(|m| invalid(p, n, m))),
        IntOrString::String(name) => each(port_name, name, p, errs),
    }
}

// === resources ===

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended(name: &str) -> bool {
    !is_native(name) && !name.starts_with("requests.") && meta::qualified_name(&format!("requests.{name}")).is_empty()
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepages(name)
}

/// validateContainerResourceName.
fn resource_name(name: &str, p: &Path, errs: &mut Errs) {
    let before = errs.len();
    each(meta::qualified_name, name, p, errs);
    if errs.len() == before && !name.contains('/') && !STANDARD_RESOURCES.contains(&name) && !is_hugepages(name) {
        errs.push(invalid(p, name, "must be a standard resource type or fully qualified"));
    }
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages(name) {
            errs.push(invalid(p, name, "must be a standard resource for containers"));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(invalid(p, name, "doesn't follow extended resource name standard"));
    }
}

/// ValidateResourceQuantityValue.
fn quantity_value(name: &str, q: &Qty, p: &Path, errs: &mut Errs) -> Option<Quantity> {
    let Some(parsed) = Quantity::parse(&q.0) else {
        errs.push(invalid(p, &q.0, quantity::PARSE_ERROR));
        return None;
    };
    if parsed.is_negative() {
        errs.push(invalid(p, parsed, super::NEGATIVE));
    }
    if is_extended(name) && !parsed.is_integer() {
        errs.push(invalid(p, parsed, "must be an integer"));
    }
    Some(parsed)
}

/// validateResourceRequirements: names, non-negative quantities, requests within
/// limits (equal for resources that cannot be overcommitted).
pub fn validate_resources(r: &ResourceRequirements, p: &Path, errs: &mut Errs) {
    let lim_path = p.child("limits");
    let req_path = p.child("requests");
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let (mut lim_cpu_mem, mut req_cpu_mem, mut hugepages) = (false, false, false);
    for (name, q) in r.limits.iter().flatten() {
        let fp = lim_path.key(name);
        resource_name(name, &fp, errs);
        if let Some(v) = quantity_value(name, q, &fp, errs) {
            limits.insert(name, v);
        }
        hugepages |= is_hugepages(name);
        lim_cpu_mem |= matches!(name.as_str(), "cpu" | "memory");
    }
    for (name, q) in r.requests.iter().flatten() {
        let fp = req_path.key(name);
        resource_name(name, &fp, errs);
        let value = quantity_value(name, q, &fp, errs);
        match (value, limits.get(name.as_str())) {
            (Some(v), Some(lim)) if v != *lim && !overcommit_allowed(name) => {
                errs.push(invalid(&req_path, v, format!("must be equal to {name} limit of {lim}")));
            }
            (Some(v), Some(lim)) if v > *lim => {
                errs.push(invalid(&req_path, v, format!("must be less than or equal to {name} limit of {lim}")));
            }
            (_, None) if !overcommit_allowed(name) => {
                errs.push(required(&lim_path, "Limit must be set for non overcommitable resources"));
            }
            _ => {}
        }
        hugepages |= is_hugepages(name);
        req_cpu_mem |= matches!(name.as_str(), "cpu" | "memory");
    }
    if hugepages && !lim_cpu_mem && !req_cpu_mem {
        errs.push(forbidden(p, "HugePages require cpu or memory"));
    }
}

/// `map[string]string{...}` of a template's labels, for selector mismatch errors.
pub fn template_labels(t: &PodTemplateSpec) -> String {
    go_map(t.metadata.as_ref().and_then(|m| m.labels.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::messages;
    use super::super::{default, unknown_fields, validate_create, validate_update};
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec})
    }

    fn defaulted(spec: Value) -> Value {
        let mut p = pod(spec);
        default("Pod", &mut p).unwrap();
        p
    }

    fn fields(errs: &[crate::api::error::FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn pod_defaults_match_kubernetes() {
        let p = defaulted(json!({"containers": [{
            "name": "web", "image": "nginx",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}}
        }], "volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "tmp"}]}));
        let spec = &p["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["serviceAccount"], "default");
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10,
                   "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["resources"]["limits"]["cpu"], "500m");
        assert_eq!(c["resources"]["requests"], json!({"cpu": "500m", "memory": "128Mi"}));
        assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][1]["emptyDir"], json!({}));
        assert_eq!(p["status"], json!({"phase": "Pending", "qosClass": "Guaranteed"}));
        assert!(validate_create("Pod", &p).is_empty(), "{:?}", validate_create("Pod", &p));
    }

    #[test]
    fn defaulting_is_idempotent_and_keeps_what_is_set() {
        let p = defaulted(json!({"containers": [{"name": "a", "image": "nginx:1.25", "imagePullPolicy": "Never"}],
                                 "restartPolicy": "Never", "serviceAccountName": "robot"}));
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Never");
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert_eq!(p["spec"]["serviceAccount"], "robot");
        assert_eq!(p["status"]["qosClass"], "BestEffort");
        let mut again = p.clone();
        default("Pod", &mut again).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn pull_policies_follow_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(pull_policy("registry.k8s.io/pause:3.10"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy(&format!("nginx@sha256:{}", "a".repeat(64))), "IfNotPresent");
        assert_eq!(pull_policy(&format!("nginx:latest@sha256:{}", "a".repeat(64))), "Always");
        assert_eq!(pull_policy("Nginx"), "IfNotPresent");
    }

    #[test]
    fn qos_classes() {
        let spec = |res: Value| -> PodSpec {
            serde_json::from_value(json!({"containers": [{"name": "a", "resources": res}]})).unwrap()
        };
        assert_eq!(qos_class(&spec(json!({}))), "BestEffort");
        assert_eq!(qos_class(&spec(json!({"requests": {"cpu": "100m"}}))), "Burstable");
        assert_eq!(
            qos_class(&spec(
                json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}})
            )),
            "Guaranteed"
        );
        assert_eq!(qos_class(&spec(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}))), "Burstable");
    }

    #[test]
    fn missing_image_and_bad_restart_policy() {
        let p = defaulted(json!({"containers": [{"name": "web"}], "restartPolicy": "Sometimes"}));
        let errs = validate_create("Pod", &p);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.containers[0].image: Required value".to_string(),
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
                    .to_string(),
            ]
        );
    }

    #[test]
    fn containers_are_required_and_named_uniquely() {
        let p = defaulted(json!({}));
        assert_eq!(fields(&validate_create("Pod", &p)), vec!["spec.containers"]);
        let p = defaulted(json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "x"}],
                                 "initContainers": [{"name": "a", "image": "x"}, {"name": "Bad_Name", "image": "x"}]}));
        let errs = validate_create("Pod", &p);
        assert_eq!(
            fields(&errs),
            vec!["spec.containers[1].name", "spec.initContainers[0].name", "spec.initContainers[1].name"]
        );
        assert!(errs[0].to_string().starts_with("spec.containers[1].name: Duplicate value: \"a\""));
    }

    #[test]
    fn bad_ports() {
        let p = defaulted(json!({"containers": [{"name": "a", "image": "x", "ports": [
            {"containerPort": 70000, "name": "http"},
            {"containerPort": 80, "name": "http", "protocol": "ICMP"},
            {"name": "Not_A_Name"},
            {"containerPort": 81, "hostPort": -1}
        ]}]}));
        let errs = validate_create("Pod", &p);
        let m = messages(&errs);
        assert_eq!(
            m[0],
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_eq!(m[1], "spec.containers[0].ports[1].name: Duplicate value: \"http\"");
        assert_eq!(
            m[2],
            "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        );
        assert!(fields(&errs).contains(&"spec.containers[0].ports[2].name".to_string()));
        assert!(fields(&errs).contains(&"spec.containers[0].ports[2].containerPort".to_string()));
        assert!(fields(&errs).contains(&"spec.containers[0].ports[3].hostPort".to_string()));
    }

    #[test]
    fn env_rules() {
        let p = defaulted(json!({"containers": [{"name": "a", "image": "x", "env": [
            {"name": "1BAD"},
            {"name": "OK", "valueFrom": {}},
            {"name": "BOTH", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"},
                                            "secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "FIELD", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}},
            {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}
        ]}]}));
        let m = messages(&validate_create("Pod", &p));
        assert_eq!(m.len(), 4, "{m:#?}");
        assert!(
            m[0].starts_with(
                "spec.containers[0].env[0].name: Invalid value: \"1BAD\": a valid environment variable name"
            )
        );
        assert_eq!(
            m[1],
            "spec.containers[0].env[1].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
        );
        assert_eq!(
            m[2],
            "spec.containers[0].env[2].valueFrom: Invalid value: \"\": may not have more than one field specified at a time"
        );
        assert!(m[3].starts_with(
            "spec.containers[0].env[3].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.restartPolicy\""
        ));
    }

    #[test]
    fn volumes_and_mounts() {
        let p = defaulted(json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "missing", "mountPath": "/data"},
            {"name": "two"}
        ]}], "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "data", "emptyDir": {}},
            {"name": "two", "emptyDir": {}, "secret": {"secretName": "s"}},
            {"name": "Bad", "hostPath": {"path": "/x/../y"}}
        ]}));
        let m = messages(&validate_create("Pod", &p));
        assert_eq!(
            m,
            vec![
                "spec.volumes[1].name: Duplicate value: \"data\"".to_string(),
                "spec.volumes[2].secret: Forbidden: may not specify more than 1 volume type".to_string(),
                "spec.volumes[3].hostPath.path: Invalid value: \"/x/../y\": must not contain '..'".to_string(),
                format!("spec.volumes[3].name: Invalid value: \"Bad\": {}", meta::dns1123_label("Bad")[0]),
                "spec.containers[0].volumeMounts[1].name: Not found: \"missing\"".to_string(),
                "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/data\": must be unique".to_string(),
                "spec.containers[0].volumeMounts[2].name: Not found: \"two\"".to_string(),
                "spec.containers[0].volumeMounts[2].mountPath: Required value".to_string(),
            ]
        );
    }

    #[test]
    fn resources_requests_within_limits() {
        let p = defaulted(json!({"containers": [{"name": "a", "image": "x", "resources": {
            "limits": {"cpu": "500m", "memory": "1Gi", "example.com/gpu": "1"},
            "requests": {"cpu": "1", "memory": "-1", "pods": "1"}
        }}]}));
        let m = messages(&validate_create("Pod", &p));
        assert!(m.contains(&"spec.containers[0].resources.requests: Invalid value: 1: must be less than or equal to cpu limit of 500m".to_string()), "{m:#?}");
        assert!(
            m.contains(
                &"spec.containers[0].resources.requests[memory]: Invalid value: -1: must be greater than or equal to 0"
                    .to_string()
            )
        );
        assert!(m.contains(&"spec.containers[0].resources.requests[pods]: Invalid value: \"pods\": must be a standard resource for containers".to_string()));
        let mut bad =
            pod(json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "lots"}}}]}));
        let err = default("Pod", &mut bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Pod in version \"v1\" cannot be handled as a Pod: {}", quantity::PARSE_ERROR)
        );
    }

    #[test]
    fn tolerations_node_selector_and_deadline() {
        let p = defaulted(json!({"containers": [{"name": "a", "image": "x"}],
        "nodeSelector": {"disk": "ssd ok"},
        "activeDeadlineSeconds": 0,
        "tolerations": [
            {"key": "k", "operator": "Exists", "value": "v"},
            {"operator": "Equal", "value": "v"},
            {"key": "k", "operator": "Maybe", "effect": "Sometimes"},
            {"key": "k", "value": "v", "tolerationSeconds": 5, "effect": "NoSchedule"}
        ]}));
        let m = messages(&validate_create("Pod", &p));
        assert!(m[0].starts_with("spec.nodeSelector: Invalid value: \"ssd ok\""), "{m:#?}");
        assert_eq!(m[1], "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive");
        assert_eq!(
            m[2],
            "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'"
        );
        assert_eq!(
            m[3],
            "spec.tolerations[1].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""
        );
        assert_eq!(
            m[4],
            "spec.tolerations[2].operator: Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\""
        );
        assert_eq!(
            m[5],
            "spec.tolerations[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
        );
        assert_eq!(
            m[6],
            "spec.tolerations[3].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"
        );
        assert_eq!(m.len(), 7);
    }

    #[test]
    fn probes() {
        let p = defaulted(json!({"containers": [{"name": "a", "image": "x",
            "livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}, "tcpSocket": {"port": "http"}},
            "readinessProbe": {"httpGet": {"port": 0}}}]}));
        let m = messages(&validate_create("Pod", &p));
        assert_eq!(
            m,
            vec![
                "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type".to_string(),
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1".to_string(),
                "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn updates_may_only_change_images_and_friends() {
        let old = defaulted(json!({"containers": [{"name": "a", "image": "nginx:1"}], "activeDeadlineSeconds": 100,
                                   "tolerations": [{"key": "k", "operator": "Exists"}]}));
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["spec"]["activeDeadlineSeconds"] = json!(50);
        new["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}, {"key": "j", "operator": "Exists"}]);
        new["spec"]["nodeName"] = json!("node-1");
        assert!(validate_update("Pod", &old, &new).is_empty(), "{:?}", validate_update("Pod", &old, &new));

        let mut changed = new.clone();
        changed["spec"]["restartPolicy"] = json!("Never");
        let errs = validate_update("Pod", &new, &changed);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        assert!(errs[0].to_string().starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
        ));
        assert!(errs[0].detail.contains("spec.restartPolicy: \"Always\" -> \"Never\""));

        let mut moved = new.clone();
        moved["spec"]["nodeName"] = json!("node-2");
        assert_eq!(fields(&validate_update("Pod", &new, &moved)), vec!["spec"]);

        let mut raised = new.clone();
        raised["spec"]["activeDeadlineSeconds"] = json!(500);
        assert_eq!(
            messages(&validate_update("Pod", &new, &raised)),
            vec!["spec.activeDeadlineSeconds: Invalid value: 500: must be less than or equal to previous value"]
        );
        let mut more = new.clone();
        more["spec"]["containers"] = json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]);
        default("Pod", &mut more).unwrap();
        assert_eq!(
            messages(&validate_update("Pod", &new, &more)),
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
        let mut dropped = new.clone();
        dropped["spec"]["tolerations"] = json!([]);
        assert_eq!(
            messages(&validate_update("Pod", &new, &dropped))[0],
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );
    }

    #[test]
    fn docs_example_pod_is_accepted() {
        // From kubernetes.io "Configure Liveness, Readiness and Startup Probes".
        let p = defaulted(json!({"containers": [{
            "name": "liveness", "image": "registry.k8s.io/busybox:1.27.2",
            "args": ["/bin/sh", "-c", "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600"],
            "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "initialDelaySeconds": 5, "periodSeconds": 5}
        }]}));
        assert!(validate_create("Pod", &p).is_empty());
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(p["spec"]["containers"][0]["livenessProbe"]["periodSeconds"], 5);
    }

    #[test]
    fn unknown_pod_fields() {
        let p = pod(json!({"containers": [{"name": "a", "image": "x", "imagee": "y"}], "restartPolicyy": "Never"}));
        assert_eq!(unknown_fields("Pod", &p), vec!["spec.containers[0].imagee", "spec.restartPolicyy"]);
    }

    #[test]
    fn template_validation_uses_template_paths() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "bad value"}},
            "spec": {"containers": [{"name": "a"}], "ephemeralContainers": [{"name": "e", "image": "x"}]}
        }))
        .unwrap();
        let mut errs = Vec::new();
        validate_template(&t, &Path::new("spec").child("template"), &mut errs);
        let f = fields(&errs);
        assert_eq!(f[0], "spec.template.labels");
        assert!(f.contains(&"spec.template.spec.containers[0].image".to_string()));
        assert!(f.contains(&"spec.template.spec.ephemeralContainers".to_string()));
        assert!(f.contains(&"spec.template.spec.terminationGracePeriodSeconds".to_string()));
    }
}
