//! The workload controllers' objects: apps/v1 Deployment and ReplicaSet and
//! batch/v1 Job — defaults from `pkg/apis/{apps,batch}/v1/defaults.go` (plus the
//! Job strategy's generated selector) and rules from
//! `pkg/apis/{apps,batch}/validation` and the apps/v1 registry strategies.

use super::decode::DecodeError;
use super::pod::{default_template, template_labels, validate_template};
use super::{
    Errs, Path, forbidden, immutable, invalid, json_of, nonnegative, not_supported, required, selector_is_empty,
    selector_matches, semantic_eq, validate_label_selector,
};
use crate::api::meta;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use std::collections::BTreeMap;

// === Deployment ===

/// SetDefaults_Deployment: one replica, a 25%/25% rolling update, ten old
/// ReplicaSets kept, ten minutes to make progress; the template as any pod
/// template.
pub fn default_deployment(d: &mut Deployment) -> Result<(), DecodeError> {
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
    let type_ = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
    if type_ == "RollingUpdate" {
        let ru = strategy.rolling_update.get_or_insert_with(RollingUpdateDeployment::default);
        ru.max_unavailable.get_or_insert_with(|| IntOrString::String("25%".into()));
        ru.max_surge.get_or_insert_with(|| IntOrString::String("25%".into()));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    default_template(&mut spec.template)
}

/// Whether the body names a selector at all (k8s-openapi makes the field
/// non-optional, Kubernetes does not).
fn has_selector(raw: &Value) -> bool {
    raw.pointer("/spec/selector").is_some_and(|v| !v.is_null())
}

/// The selector and template rules Deployments and ReplicaSets share
/// (ValidateDeploymentSpec's first half and ValidatePodTemplateSpecForReplicaSet).
fn validate_selector_and_template(
    selector: Option<&LabelSelector>,
    template: &PodTemplateSpec,
    kind: &str,
    p: &Path,
    errs: &mut Errs,
) {
    let sp = p.child("selector");
    match selector {
        None => errs.push(required(&sp, "")),
        Some(sel) => {
            validate_label_selector(sel, &sp, errs);
            if selector_is_empty(sel) {
                // Kubernetes uses the Deployment wording for ReplicaSets too.
                errs.push(invalid(&sp, json_of(sel), "empty selector is invalid for deployment"));
            }
        }
    }
    let tp = p.child("template");
    // A missing selector selects nothing, so it cannot match the template either.
    let verdict = match selector {
        None => Some(false),
        Some(sel) if selector_is_empty(sel) => Some(true),
        Some(sel) => selector_matches(sel, template.metadata.as_ref().and_then(|m| m.labels.as_ref())),
    };
    match verdict {
        None => errs.push(invalid(&sp, json_of(&selector), "invalid label selector")),
        Some(false) => errs.push(invalid(
            &tp.child("metadata").child("labels"),
            template_labels(template),
            "`selector` does not match template `labels`",
        )),
        Some(true) => {}
    }
    if verdict.is_some() {
        validate_template(template, &tp, errs);
        let spec = template.spec.clone().unwrap_or_default();
        let restart = spec.restart_policy.as_deref().unwrap_or_default();
        if restart != "Always" {
            errs.push(not_supported(&tp.child("spec").child("restartPolicy"), restart, &["Always"]));
        }
        if spec.active_deadline_seconds.is_some() {
            errs.push(forbidden(
                &tp.child("spec").child("activeDeadlineSeconds"),
                format!("activeDeadlineSeconds in {kind} is not Supported"),
            ));
        }
    }
}

/// ValidatePositiveIntOrPercent.
fn int_or_percent(v: &IntOrString, p: &Path, errs: &mut Errs) {
    match v {
        IntOrString::String(s) => {
            if !is_percent(s) {
                errs.push(invalid(
                    p,
                    s,
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', \
                     regex used for validation is '[0-9]+%')",
                ));
            }
        }
        IntOrString::Int(n) => nonnegative((*n).into(), p, errs),
    }
}

fn is_percent(s: &str) -> bool {
    s.strip_suffix('%').is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// getIntOrPercentValue: the number, whether absolute or a percentage.
fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(n) => (*n).into(),
        IntOrString::String(s) if is_percent(s) => s.trim_end_matches('%').parse().unwrap_or(i64::MAX),
        IntOrString::String(s) => s.parse().unwrap_or(0),
    }
}

fn show(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// ValidateDeploymentStrategy.
fn validate_strategy(strategy: Option<&DeploymentStrategy>, p: &Path, errs: &mut Errs) {
    let default = DeploymentStrategy::default();
    let strategy = strategy.unwrap_or(&default);
    let type_ = strategy.type_.as_deref().unwrap_or_default();
    match type_ {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(forbidden(
                    &p.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(required(&p.child("rollingUpdate"), "this should be defaulted and never be nil")),
            Some(ru) => {
                let rp = p.child("rollingUpdate");
                let zero = IntOrString::Int(0);
                let unavailable = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let surge = ru.max_surge.as_ref().unwrap_or(&zero);
                int_or_percent(unavailable, &rp.child("maxUnavailable"), errs);
                int_or_percent(surge, &rp.child("maxSurge"), errs);
                if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
                    errs.push(invalid(
                        &rp.child("maxUnavailable"),
                        show(unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                if matches!(unavailable, IntOrString::String(s) if is_percent(s))
                    && int_or_percent_value(unavailable) > 100
                {
                    errs.push(invalid(&rp.child("maxUnavailable"), show(unavailable), "must not be greater than 100%"));
                }
            }
        },
        // Kubernetes reports an unknown type on the strategy itself.
        other => errs.push(not_supported(p, other, &["Recreate", "RollingUpdate"])),
    }
}

/// ValidateDeployment (spec part).
pub fn validate_deployment(d: &Deployment, raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let spec = d.spec.clone().unwrap_or_default();
    let p = Path::new("spec");
    nonnegative(spec.replicas.unwrap_or(0).into(), &p.child("replicas"), &mut errs);
    let selector = has_selector(raw).then_some(&spec.selector);
    validate_selector_and_template(selector, &spec.template, "ReplicaSet", &p, &mut errs);
    validate_strategy(spec.strategy.as_ref(), &p.child("strategy"), &mut errs);
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    nonnegative(min_ready.into(), &p.child("minReadySeconds"), &mut errs);
    if let Some(limit) = spec.revision_history_limit {
        nonnegative(limit.into(), &p.child("revisionHistoryLimit"), &mut errs);
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        nonnegative(deadline.into(), &p.child("progressDeadlineSeconds"), &mut errs);
        if deadline <= min_ready {
            errs.push(invalid(&p.child("progressDeadlineSeconds"), deadline, "must be greater than minReadySeconds"));
        }
    }
    errs
}

/// The apps/v1 Deployment strategy's update rule: the selector is immutable.
pub fn validate_deployment_update(new: &Deployment, new_raw: &Value, old: &Deployment, old_raw: &Value) -> Errs {
    let mut errs = validate_deployment(new, new_raw);
    let sel =
        |d: &Deployment, raw: &Value| has_selector(raw).then(|| d.spec.as_ref().map(|s| s.selector.clone())).flatten();
    selector_immutable(sel(new, new_raw), sel(old, old_raw), &mut errs);
    errs
}

fn selector_immutable(new: Option<LabelSelector>, old: Option<LabelSelector>, errs: &mut Errs) {
    if !semantic_eq(&new, &old) {
        errs.push(immutable(&Path::new("spec").child("selector"), json_of(&new)));
    }
}

// === ReplicaSet ===

/// SetDefaults_ReplicaSet: one replica; the template as any pod template.
pub fn default_replica_set(rs: &mut ReplicaSet) -> Result<(), DecodeError> {
    let spec = rs.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    if let Some(t) = &mut spec.template {
        default_template(t)?;
    }
    Ok(())
}

/// ValidateReplicaSetSpec.
pub fn validate_replica_set(rs: &ReplicaSet, raw: &Value) -> Errs {
    let mut errs = Vec::new();
    let spec = rs.spec.clone().unwrap_or_default();
    let p = Path::new("spec");
    nonnegative(spec.replicas.unwrap_or(0).into(), &p.child("replicas"), &mut errs);
    nonnegative(spec.min_ready_seconds.unwrap_or(0).into(), &p.child("minReadySeconds"), &mut errs);
    let selector = has_selector(raw).then_some(&spec.selector);
    let template = spec.template.clone().unwrap_or_default();
    validate_selector_and_template(selector, &template, "ReplicaSet", &p, &mut errs);
    errs
}

/// The apps/v1 ReplicaSet strategy's update rule: the selector is immutable.
pub fn validate_replica_set_update(new: &ReplicaSet, new_raw: &Value, old: &ReplicaSet, old_raw: &Value) -> Errs {
    let mut errs = validate_replica_set(new, new_raw);
    let sel =
        |r: &ReplicaSet, raw: &Value| has_selector(raw).then(|| r.spec.as_ref().map(|s| s.selector.clone())).flatten();
    selector_immutable(sel(new, new_raw), sel(old, old_raw), &mut errs);
    errs
}

// === Job ===

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const LEGACY_JOB_NAME: &str = "job-name";

/// SetDefaults_Job, then the Job strategy's generated selector (Kubernetes does it
/// in PrepareForCreate once the uid exists; rk's caller sets `metadata.uid` before
/// defaulting a new object). Labels the user set are kept: a conflicting value is
/// a validation error, as in Kubernetes.
pub fn default_job(job: &mut Job) -> Result<(), DecodeError> {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let spec = job.spec.get_or_insert_with(Default::default);
    // A non-parallel job may leave both unset: then both are 1.
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    let per_index = spec.backoff_limit_per_index.is_some();
    spec.backoff_limit.get_or_insert(if per_index { i32::MAX } else { 6 });
    spec.completion_mode.get_or_insert_with(|| "NonIndexed".into());
    spec.suspend.get_or_insert(false);
    for rule in spec.pod_failure_policy.iter_mut().flat_map(|p| p.rules.iter_mut()) {
        for pattern in rule.on_pod_conditions.iter_mut().flatten() {
            if pattern.status.is_empty() {
                pattern.status = "True".into();
            }
        }
    }
    let failure_policy = spec.pod_failure_policy.is_some();
    spec.pod_replacement_policy
        .get_or_insert_with(|| if failure_policy { "Failed" } else { "TerminatingOrFailed" }.into());
    let manual = *spec.manual_selector.get_or_insert(false);
    default_template(&mut spec.template)?;

    // The job's own labels default to the template's: the user's ones if the
    // template had any, else (as Kubernetes does when it reads the job back) the
    // generated ones.
    let user_labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).filter(|l| !l.is_empty());
    if !manual {
        let labels =
            spec.template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in
            [(LEGACY_JOB_NAME, &name), (JOB_NAME, &name), (LEGACY_CONTROLLER_UID, &uid), (CONTROLLER_UID, &uid)]
        {
            labels.entry(k.to_string()).or_insert_with(|| v.clone());
        }
        let selector = spec.selector.get_or_insert_with(LabelSelector::default);
        selector.match_labels.get_or_insert_with(BTreeMap::new).entry(CONTROLLER_UID.to_string()).or_insert(uid);
    }
    if job.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
        let labels = user_labels.or_else(|| spec.template.metadata.as_ref().and_then(|m| m.labels.clone()));
        if labels.is_some() {
            job.metadata.labels = labels;
        }
    }
    Ok(())
}

/// ValidateHasLabel.
fn has_label(t: &PodTemplateSpec, key: &str, want: &str, errs: &mut Errs) {
    let labels = t.metadata.as_ref().and_then(|m| m.labels.as_ref());
    let p = Path::new("spec").child("template").child("metadata").child("labels").key(key);
    match labels.and_then(|l| l.get(key)) {
        None => errs.push(required(&p, &format!("must be '{want}'"))),
        Some(v) if v != want => errs.push(invalid(&p, template_labels(t), format!("must be '{want}'"))),
        _ => {}
    }
}

/// ValidateJob; `prefixed` is RequirePrefixedLabels (always on create, on update
/// only when the old job had them).
fn validate_job_common(job: &Job, prefixed: bool) -> Errs {
    let mut errs = Vec::new();
    let spec = job.spec.clone().unwrap_or_default();
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let p = Path::new("spec");
    // validateGeneratedSelector
    if spec.manual_selector != Some(true)
        && let Some(sel) = &spec.selector
    {
        if uid.is_empty() {
            errs.push(required(&Path::new("metadata").child("uid"), ""));
        }
        has_label(&spec.template, LEGACY_CONTROLLER_UID, uid, &mut errs);
        has_label(&spec.template, LEGACY_JOB_NAME, name, &mut errs);
        let mut expected = BTreeMap::from([
            (LEGACY_CONTROLLER_UID.to_string(), uid.to_string()),
            (LEGACY_JOB_NAME.to_string(), name.to_string()),
        ]);
        if prefixed {
            has_label(&spec.template, CONTROLLER_UID, uid, &mut errs);
            has_label(&spec.template, JOB_NAME, name, &mut errs);
            expected.insert(CONTROLLER_UID.into(), uid.into());
            expected.insert(JOB_NAME.into(), name.into());
        }
        if selector_matches(sel, Some(&expected)) == Some(false) {
            errs.push(invalid(&p.child("selector"), json_of(sel), "`selector` not auto-generated"));
        }
    }
    if spec.completion_mode.as_deref() == Some("Indexed")
        && let Some(c) = spec.completions.filter(|c| *c > 0)
    {
        // Pods of an indexed job are named `<job>-<index>`, which must be a DNS label.
        let host = format!("{name}-{}", c - 1);
        if !meta::dns1123_label(&host).is_empty() {
            errs.push(invalid(
                &Path::new("metadata").child("name"),
                name,
                format!("will not able to create pod with invalid DNS label: {host}"),
            ));
        }
    }
    validate_job_spec(&spec, &p, &mut errs);
    errs
}

/// ValidateJobSpec.
fn validate_job_spec(spec: &k8s_openapi::api::batch::v1::JobSpec, p: &Path, errs: &mut Errs) {
    for (field, v) in [
        ("parallelism", spec.parallelism.map(i64::from)),
        ("completions", spec.completions.map(i64::from)),
        ("activeDeadlineSeconds", spec.active_deadline_seconds),
        ("backoffLimit", spec.backoff_limit.map(i64::from)),
        ("ttlSecondsAfterFinished", spec.ttl_seconds_after_finished.map(i64::from)),
        ("backoffLimitPerIndex", spec.backoff_limit_per_index.map(i64::from)),
        ("maxFailedIndexes", spec.max_failed_indexes.map(i64::from)),
    ] {
        if let Some(v) = v {
            nonnegative(v, &p.child(field), errs);
        }
    }
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        errs.push(required(&p.child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"));
    }
    if let Some(m) = &spec.managed_by
        && m.len() > 63
    {
        errs.push(crate::api::error::FieldError::too_long(&p.child("managedBy"), 63));
    }
    let mode = spec.completion_mode.as_deref();
    if let Some(m) = mode
        && !matches!(m, "NonIndexed" | "Indexed")
    {
        errs.push(not_supported(&p.child("completionMode"), m, &["NonIndexed", "Indexed"]));
    }
    if mode == Some("Indexed") {
        if spec.completions.is_none() {
            errs.push(required(&p.child("completions"), "when completion mode is Indexed"));
        }
        if let Some(par) = spec.parallelism.filter(|p| *p > 100_000) {
            errs.push(invalid(
                &p.child("parallelism"),
                par,
                "must be less than or equal to 100000 when completion mode is Indexed",
            ));
        }
        if let (Some(c), Some(m)) = (spec.completions, spec.max_failed_indexes)
            && m > c
        {
            errs.push(invalid(&p.child("maxFailedIndexes"), m, "must be less than or equal to completions"));
        }
    } else {
        if let Some(b) = spec.backoff_limit_per_index {
            errs.push(invalid(&p.child("backoffLimitPerIndex"), b, "requires indexed completion mode"));
        }
        if let Some(m) = spec.max_failed_indexes {
            errs.push(invalid(&p.child("maxFailedIndexes"), m, "requires indexed completion mode"));
        }
        if spec.success_policy.is_some() {
            errs.push(invalid(
                &p.child("successPolicy"),
                json_of(&spec.success_policy),
                "requires indexed completion mode",
            ));
        }
    }
    if let Some(policy) = &spec.pod_replacement_policy {
        if spec.pod_failure_policy.is_some() {
            if policy != "Failed" {
                errs.push(not_supported(&p.child("podReplacementPolicy"), policy, &["Failed"]));
            }
        } else if !matches!(policy.as_str(), "Failed" | "TerminatingOrFailed") {
            errs.push(not_supported(&p.child("podReplacementPolicy"), policy, &["Failed", "TerminatingOrFailed"]));
        }
    }
    let tp = p.child("template");
    validate_template(&spec.template, &tp, errs);
    let restart = spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or_default();
    let rp = tp.child("spec").child("restartPolicy");
    match restart {
        // Defaulting makes an unset policy Always, so both mean "not chosen".
        "Always" | "" => errs.push(required(&rp, "valid values: \"OnFailure\", \"Never\"")),
        "OnFailure" | "Never" => {
            if spec.pod_failure_policy.is_some() && restart != "Never" {
                errs.push(invalid(&rp, restart, "only \"Never\" is supported when podFailurePolicy is specified"));
            }
        }
        other => errs.push(not_supported(&rp, other, &["OnFailure", "Never"])),
    }
    match &spec.selector {
        None => errs.push(required(&p.child("selector"), "")),
        Some(sel) => validate_label_selector(sel, &p.child("selector"), errs),
    }
    let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    let verdict = match &spec.selector {
        // A nil selector selects nothing (Kubernetes' labels.Nothing()).
        None => Some(false),
        Some(sel) => selector_matches(sel, labels),
    };
    if verdict == Some(false) {
        errs.push(invalid(
            &tp.child("metadata").child("labels"),
            template_labels(&spec.template),
            "`selector` does not match template `labels`",
        ));
    }
}

/// ValidateJob on create.
pub fn validate_job(job: &Job, _raw: &Value) -> Errs {
    validate_job_common(job, true)
}

/// ValidateJobUpdate: the selector, the template (except scheduling directives of
/// a suspended job that never ran) and most of the spec are immutable;
/// completions may change only for an Indexed job, together with parallelism.
pub fn validate_job_update(new: &Job, _new_raw: &Value, old: &Job, _old_raw: &Value) -> Errs {
    let os = old.spec.clone().unwrap_or_default();
    let ns = new.spec.clone().unwrap_or_default();
    let old_labels = os.template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    let prefixed = old_labels.is_some_and(|l| l.contains_key(JOB_NAME) && l.contains_key(CONTROLLER_UID));
    let mut errs = validate_job_common(new, prefixed);
    let p = Path::new("spec");
    if !semantic_eq(&ns.completions, &os.completions) {
        if ns.completion_mode.as_deref() != Some("Indexed") {
            errs.push(immutable(&p.child("completions"), opt(ns.completions)));
        } else if let Some(c) = ns.completions
            && Some(c) != ns.parallelism
        {
            errs.push(invalid(&p.child("completions"), c, "can only be modified in tandem with spec.parallelism"));
        }
    }
    if !semantic_eq(&ns.selector, &os.selector) {
        errs.push(immutable(&p.child("selector"), json_of(&ns.selector)));
    }
    // A suspended job that never started may still be steered to other nodes.
    let mut old_template = os.template.clone();
    let never_started = old.status.as_ref().is_none_or(|s| s.start_time.is_none());
    if os.suspend == Some(true) && never_started {
        let nt = &ns.template;
        let (ots, nts) = (old_template.spec.get_or_insert_with(Default::default), nt.spec.clone().unwrap_or_default());
        let new_node_affinity = nts.affinity.as_ref().and_then(|a| a.node_affinity.clone());
        match (&mut ots.affinity, &nts.affinity) {
            (Some(a), None) => {
                a.node_affinity = None;
                if a.pod_affinity.is_none() && a.pod_anti_affinity.is_none() {
                    ots.affinity = None;
                }
            }
            (None, Some(_)) => {
                ots.affinity = Some(k8s_openapi::api::core::v1::Affinity {
                    node_affinity: new_node_affinity,
                    ..Default::default()
                })
            }
            (Some(a), Some(_)) => a.node_affinity = new_node_affinity,
            (None, None) => {}
        }
        ots.node_selector = nts.node_selector.clone();
        ots.tolerations = nts.tolerations.clone();
        ots.scheduling_gates = nts.scheduling_gates.clone();
        let meta = old_template.metadata.get_or_insert_with(Default::default);
        let new_meta = nt.metadata.clone().unwrap_or_default();
        meta.labels = new_meta.labels;
        meta.annotations = new_meta.annotations;
    }
    if !semantic_eq(&ns.template, &old_template) {
        errs.push(immutable(&p.child("template"), json_of(&ns.template)));
    }
    for (field, same) in [
        ("completionMode", ns.completion_mode == os.completion_mode),
        ("podFailurePolicy", semantic_eq(&ns.pod_failure_policy, &os.pod_failure_policy)),
        ("backoffLimitPerIndex", ns.backoff_limit_per_index == os.backoff_limit_per_index),
        ("managedBy", ns.managed_by == os.managed_by),
        ("successPolicy", semantic_eq(&ns.success_policy, &os.success_policy)),
    ] {
        if !same {
            let value = serde_json::to_value(&ns).ok().and_then(|v| v.get(field).cloned()).unwrap_or(Value::Null);
            errs.push(immutable(&p.child(field), value));
        }
    }
    errs
}

fn opt(v: Option<i32>) -> String {
    v.map_or_else(|| "null".into(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{defaulted, messages};
    use super::super::{default, unknown_fields, validate_create, validate_update};
    use super::*;
    use serde_json::json;

    /// The nginx Deployment from the Kubernetes docs ("Creating a Deployment").
    fn nginx() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}
                }
            }
        })
    }

    #[test]
    fn deployment_defaults() {
        let d = defaulted("Deployment", nginx());
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 3);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let t = &spec["template"]["spec"];
        assert_eq!(t["restartPolicy"], "Always");
        assert_eq!(t["dnsPolicy"], "ClusterFirst");
        assert_eq!(t["containers"][0]["imagePullPolicy"], "IfNotPresent");
        // Pod-only defaults stay out of templates.
        assert!(t.get("enableServiceLinks").is_none());
        assert!(t.get("serviceAccountName").is_none());
        assert!(validate_create("Deployment", &d).is_empty(), "{:?}", validate_create("Deployment", &d));
        let mut one = nginx();
        one["spec"].as_object_mut().unwrap().remove("replicas");
        assert_eq!(defaulted("Deployment", one)["spec"]["replicas"], 1);
    }

    #[test]
    fn selector_must_match_template() {
        let mut d = nginx();
        d["spec"]["selector"]["matchLabels"]["app"] = json!("web");
        let d = defaulted("Deployment", d);
        assert_eq!(
            messages(&validate_create("Deployment", &d)),
            vec![
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"nginx\"}: `selector` does not match template `labels`"
            ]
        );
        let mut d = nginx();
        d["spec"].as_object_mut().unwrap().remove("selector");
        let d = defaulted("Deployment", d);
        assert!(d["spec"].get("selector").is_none());
        let errs = validate_create("Deployment", &d);
        assert_eq!(
            errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            vec!["spec.selector", "spec.template.metadata.labels"]
        );
        assert_eq!(errs[0].to_string(), "spec.selector: Required value");
    }

    #[test]
    fn template_restart_policy_and_strategy() {
        let mut d = nginx();
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}});
        d["spec"]["minReadySeconds"] = json!(700);
        let d = defaulted("Deployment", d);
        assert_eq!(
            messages(&validate_create("Deployment", &d)),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
                "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
            ]
        );
        let mut d = nginx();
        d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
        let d = defaulted("Deployment", d);
        assert_eq!(
            messages(&validate_create("Deployment", &d)),
            vec![
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0"
            ]
        );
        let mut d = nginx();
        d["spec"]["strategy"] = json!({"type": "BlueGreen"});
        let d = defaulted("Deployment", d);
        assert_eq!(
            messages(&validate_create("Deployment", &d)),
            vec!["spec.strategy: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\""]
        );
        let mut d = nginx();
        d["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "150%", "maxSurge": "x"}});
        let m = messages(&validate_create("Deployment", &defaulted("Deployment", d)));
        assert!(
            m[0].starts_with("spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x\": a valid percent string"),
            "{m:#?}"
        );
        assert_eq!(
            m[1],
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%"
        );
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old = defaulted("Deployment", nginx());
        let mut new = old.clone();
        new["spec"]["selector"]["matchLabels"]["tier"] = json!("web");
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("web");
        let errs = validate_update("Deployment", &old, &new);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.selector");
        assert!(errs[0].to_string().ends_with(": field is immutable"));
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        assert!(validate_update("Deployment", &old, &scaled).is_empty());
        let mut typo = nginx();
        typo["spec"]["replicass"] = json!(2);
        assert_eq!(unknown_fields("Deployment", &typo), vec!["spec.replicass"]);
    }

    #[test]
    fn replica_sets() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "frontend"},
            "spec": {"selector": {"matchLabels": {"tier": "frontend"}},
                     "template": {"metadata": {"labels": {"tier": "frontend"}},
                                  "spec": {"containers": [{"name": "php-redis", "image": "us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5"}]}}}});
        let rs = defaulted("ReplicaSet", rs);
        assert_eq!(rs["spec"]["replicas"], 1);
        assert!(validate_create("ReplicaSet", &rs).is_empty(), "{:?}", validate_create("ReplicaSet", &rs));
        let mut bad = rs.clone();
        bad["spec"]["selector"] = json!({});
        bad["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        assert_eq!(
            messages(&validate_create("ReplicaSet", &bad)),
            vec![
                "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
            ]
        );
        assert_eq!(validate_update("ReplicaSet", &rs, &bad)[2].field, "spec.selector");
    }

    /// The "pi" Job from the Kubernetes docs, as rk's caller passes it on create.
    fn pi() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
            "spec": {"backoffLimit": 4, "template": {"spec": {
                "containers": [{"name": "pi", "image": "perl:5.34.0", "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}],
                "restartPolicy": "Never"}}}})
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let j = defaulted("Job", pi());
        let spec = &j["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 4);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(spec["selector"], json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}));
        let labels = json!({"batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi",
                            "controller-uid": "u-1", "job-name": "pi"});
        assert_eq!(spec["template"]["metadata"]["labels"], labels);
        assert_eq!(j["metadata"]["labels"], labels);
        assert!(validate_create("Job", &j).is_empty(), "{:?}", validate_create("Job", &j));
        let mut again = j.clone();
        default("Job", &mut again).unwrap();
        assert_eq!(again, j);
        let mut six = pi();
        six["spec"].as_object_mut().unwrap().remove("backoffLimit");
        six["spec"]["parallelism"] = json!(2);
        let six = defaulted("Job", six);
        assert_eq!(six["spec"]["backoffLimit"], 6);
        assert!(six["spec"].get("completions").is_none());
    }

    #[test]
    fn job_rules() {
        let mut j = pi();
        j["spec"]["template"]["spec"].as_object_mut().unwrap().remove("restartPolicy");
        let j = defaulted("Job", j);
        assert_eq!(
            messages(&validate_create("Job", &j)),
            vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""]
        );
        let mut j = pi();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Sometimes");
        j["spec"]["completionMode"] = json!("Indexed");
        j["spec"]["parallelism"] = json!(-2);
        let m = messages(&validate_create("Job", &defaulted("Job", j)));
        assert_eq!(
            m,
            vec![
                "spec.parallelism: Invalid value: -2: must be greater than or equal to 0",
                "spec.completions: Required value: when completion mode is Indexed",
                // Once as any pod spec, once as a Job's.
                "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"OnFailure\", \"Never\"",
            ]
        );
        let mut j = pi();
        j["spec"]["template"]["metadata"] = json!({"labels": {"job-name": "other"}});
        let m = messages(&validate_create("Job", &defaulted("Job", j)));
        assert!(m[0].starts_with("spec.template.metadata.labels[job-name]: Invalid value: "), "{m:#?}");
        assert!(m[0].ends_with(": must be 'pi'"));
        let mut manual = pi();
        manual["spec"]["manualSelector"] = json!(true);
        let manual = defaulted("Job", manual);
        assert!(manual["spec"].get("selector").is_none());
        assert_eq!(
            messages(&validate_create("Job", &manual)),
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`"
            ]
        );
    }

    #[test]
    fn job_updates() {
        let old = defaulted("Job", pi());
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        new["spec"]["completions"] = json!(2);
        let m = messages(&validate_update("Job", &old, &new));
        assert_eq!(m.len(), 2, "{m:#?}");
        assert_eq!(m[0], "spec.completions: Invalid value: 2: field is immutable");
        assert!(m[1].starts_with("spec.template: Invalid value: ") && m[1].ends_with(": field is immutable"));

        let mut active = old.clone();
        active["spec"]["parallelism"] = json!(0);
        active["spec"]["activeDeadlineSeconds"] = json!(100);
        assert!(validate_update("Job", &old, &active).is_empty());

        let mut suspended = old.clone();
        suspended["spec"]["suspend"] = json!(true);
        let mut steered = suspended.clone();
        steered["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        assert!(validate_update("Job", &suspended, &steered).is_empty());

        let mut indexed = pi();
        indexed["spec"]["completionMode"] = json!("Indexed");
        indexed["spec"]["completions"] = json!(3);
        indexed["spec"]["parallelism"] = json!(3);
        let indexed = defaulted("Job", indexed);
        let mut scaled = indexed.clone();
        scaled["spec"]["completions"] = json!(5);
        scaled["spec"]["parallelism"] = json!(5);
        assert!(validate_update("Job", &indexed, &scaled).is_empty());
        scaled["spec"]["parallelism"] = json!(4);
        assert_eq!(
            messages(&validate_update("Job", &indexed, &scaled)),
            vec!["spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism"]
        );
    }
}
