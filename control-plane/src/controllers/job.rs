//! Job controller: how many pods a Job runs, when it is done, and its status, without I/O.
//!
//! Follows `pkg/controller/job/job_controller.go` (`syncJob` + `manageJob`) as of 1.33:
//!
//! ```text
//!  finished (Complete/Failed)? ──► only ttlSecondsAfterFinished: delete the Job when expired
//!  counters: succeeded, failed (Indexed: completedIndexes), active, ready, terminating
//!  failure?  failed > backoffLimit, OnFailure restarts ≥ backoffLimit ─► FailureTarget
//!            (BackoffLimitExceeded); startTime + activeDeadlineSeconds passed ─► (DeadlineExceeded)
//!  failure or success criteria met ──► delete active pods; when none is left terminating,
//!            the terminal condition (Failed / Complete) follows the interim one
//!  otherwise manage:
//!    suspended ──► delete every active pod, condition Suspended
//!    wantActive = completions unset: parallelism until one pod succeeded, then what runs
//!                 completions set:   min(parallelism, completions - succeeded)
//!    too many active (or Indexed duplicates / out-of-range indexes) ──► delete (never also create)
//!    too few ──► create (Indexed: the lowest pending indexes), unless the failure backoff
//!                (10 s doubling per failure since the last success, max 6 min) is still running
//!    done: completions unset → a pod succeeded and none is active; else succeeded ≥ completions
//! ```
//!
//! Worked example (NonIndexed, completions 5, parallelism 2): 3 succeeded, 1 running →
//! wantActive = min(2, 5-3) = 2 → create 1. Later 4 succeeded, 1 running → wantActive =
//! min(2, 1) = 1 → nothing. Then 5 succeeded, 0 running → SuccessCriteriaMet + Complete.
//!
//! Simplified: pods are counted from the pods passed in, not through the
//! `batch.kubernetes.io/job-tracking` finalizer and `status.uncountedTerminatedPods` (left as
//! they are). Counters never go down (a NonIndexed count is the max of the status and the pods
//! seen; Indexed unions `completedIndexes`), so pods that vanish are not lost, but a pod deleted
//! while running is replaced without being counted as failed. `podFailurePolicy`,
//! `successPolicy`, `backoffLimitPerIndex` and `managedBy` other than the built-in controller are
//! not evaluated (a Job managed elsewhere is left alone).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

/// Annotation (and label) carrying an Indexed Job pod's completion index.
pub const ANNOTATION_COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// First delay before recreating pods after a failure; doubles per further failure.
pub const DEFAULT_BACKOFF_SECS: i64 = 10;
/// Cap of the failure backoff.
pub const MAX_BACKOFF_SECS: i64 = 360;
/// At most this many pods are created or deleted in one pass (`MaxPodCreateDeletePerSync`).
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// Largest `completions` the API accepts for an Indexed Job.
const MAX_INDEXED_COMPLETIONS: i32 = 100_000;
const MANAGED_BY_DEFAULT: &str = "kubernetes.io/job-controller";

/// What the Job controller should do now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPlan {
    /// Number of pods to create from the template ([`pod_for`]).
    pub create: usize,
    /// Indexed mode: the completion index of each pod to create (`len() == create`).
    pub create_indexes: Vec<i32>,
    /// Names of pods (in the Job's namespace) to delete, sorted.
    pub delete: Vec<String>,
    /// The new `status`, when it differs from the Job's.
    pub status: Option<JobStatus>,
    /// `ttlSecondsAfterFinished` expired: delete the Job (propagation Foreground, as the TTL
    /// controller does).
    pub delete_job: bool,
    /// Seconds until a time-driven change (deadline, backoff end, TTL expiry).
    pub requeue_after: Option<i64>,
}

/// Why the Job is finishing.
#[derive(Debug, Clone)]
struct Finish {
    success: bool,
    reason: String,
    message: String,
}

/// Plans one sync of `job` given the pods it owns, at `now` (unix seconds).
pub fn plan(job: &Job, pods: &[Pod], now: i64) -> JobPlan {
    let mut out = JobPlan::default();
    let Some(spec) = job.spec.as_ref() else { return out };
    let old_status = job.status.clone().unwrap_or_default();
    let old_conditions = old_status.conditions.clone().unwrap_or_default();

    if is_finished(&old_conditions) {
        ttl_after_finished(job, &old_status, now, &mut out);
        return out;
    }
    if spec.managed_by.as_deref().is_some_and(|m| m != MANAGED_BY_DEFAULT) {
        return out;
    }
    let indexed = match spec.completion_mode.as_deref() {
        None | Some("NonIndexed") => false,
        Some("Indexed") => true,
        Some(_) => return out,
    };
    // API defaulting: neither set → both 1; only parallelism set → a work queue (no completions).
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let completions = spec.completions.or(if spec.parallelism.is_none() { Some(1) } else { None });
    let Some(completions_for_index) = completions.or(if indexed { None } else { Some(0) }) else { return out };
    if indexed && completions_for_index > MAX_INDEXED_COMPLETIONS {
        // API validation rejects such Jobs; refuse rather than walk billions of indexes.
        return out;
    }
    let backoff_limit = spec.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT);
    let only_replace_failed = spec.pod_replacement_policy.as_deref() == Some("Failed");
    let suspended = spec.suspend == Some(true);

    let mut status = old_status.clone();
    let mut conditions = old_conditions.clone();
    let mut requeue = Requeue::default();

    let active_pods: Vec<&Pod> =
        pods.iter().filter(|p| !is_terminal(p) && p.metadata.deletion_timestamp.is_none()).collect();
    let mut active = active_pods.len();
    let mut terminating = pods.iter().filter(|p| !is_terminal(p) && p.metadata.deletion_timestamp.is_some()).count();
    let mut ready = active_pods.iter().filter(|p| is_ready(p)).count();
    let valid_index = |p: &Pod| completion_index(p).filter(|&ix| !indexed || ix < completions_for_index);

    // Counters never go down: pods may disappear after being counted.
    let succeeded = if indexed {
        let mut done = parse_indexes(old_status.completed_indexes.as_deref().unwrap_or(""), completions_for_index);
        done.extend(pods.iter().filter(|p| phase(p) == "Succeeded").filter_map(valid_index));
        status.completed_indexes = Some(format_indexes(&done));
        done.len()
    } else {
        let seen = pods.iter().filter(|p| phase(p) == "Succeeded").count();
        seen.max(count(old_status.succeeded))
    };
    let failed_seen =
        pods.iter().filter(|p| phase(p) == "Failed").filter(|p| !indexed || valid_index(p).is_some()).count();
    let failed = failed_seen.max(count(old_status.failed));

    if status.start_time.is_none() && !suspended {
        status.start_time = Some(time(now));
    }

    // Is the Job finishing?
    let condition_true = |type_: &str| conditions.iter().find(|c| c.type_ == type_ && c.status == "True");
    let mut finish = if let Some(c) = condition_true("SuccessCriteriaMet") {
        Some(Finish {
            success: true,
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        })
    } else if let Some(c) = condition_true("FailureTarget") {
        Some(Finish {
            success: false,
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        })
    } else if failed > count(Some(backoff_limit)) || past_backoff_limit_on_failure(job, pods, backoff_limit) {
        Some(Finish {
            success: false,
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        })
    } else {
        let start = status.start_time.as_ref().map(|t| t.0.as_second());
        match (spec.active_deadline_seconds, start) {
            (Some(ads), Some(start)) if !suspended && now.saturating_sub(start) >= ads => Some(Finish {
                success: false,
                reason: "DeadlineExceeded".into(),
                message: "Job was active longer than specified deadline".into(),
            }),
            (Some(ads), Some(start)) if !suspended => {
                requeue.at(start.saturating_add(ads).saturating_sub(now));
                None
            }
            _ => None,
        }
    };

    let mut delete: Vec<&Pod> = Vec::new();
    if finish.is_some() {
        delete = active_pods.clone();
    } else {
        let mut manage_called = false;
        if job.metadata.deletion_timestamp.is_none() {
            manage_called = true;
            if suspended {
                delete = active_pods_for_removal(&active_pods, active, indexed, completions_for_index);
            } else {
                let want_active = match completions {
                    None if succeeded > 0 => active,
                    None => count(Some(parallelism)),
                    Some(c) => count(Some(c)).saturating_sub(succeeded).min(count(Some(parallelism))),
                };
                let remove_at_least = active.saturating_sub(want_active);
                delete = active_pods_for_removal(&active_pods, remove_at_least, indexed, completions_for_index);
                delete.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
                let replacing = if only_replace_failed { terminating } else { 0 };
                let missing = want_active.saturating_sub(replacing).saturating_sub(active);
                // Deletion takes precedence: never create and delete in the same pass.
                if delete.is_empty() && missing > 0 {
                    let backoff = backoff_remaining(pods, now);
                    if backoff > 0 {
                        requeue.at(backoff);
                    } else {
                        let missing = missing.min(MAX_POD_CREATE_DELETE_PER_SYNC);
                        if indexed {
                            let mut taken: BTreeSet<i32> =
                                active_pods.iter().filter_map(|p| completion_index(p)).collect();
                            if only_replace_failed {
                                taken.extend(
                                    pods.iter()
                                        .filter(|p| p.metadata.deletion_timestamp.is_some() && !is_terminal(p))
                                        .filter_map(completion_index),
                                );
                            }
                            let done =
                                parse_indexes(status.completed_indexes.as_deref().unwrap_or(""), completions_for_index);
                            out.create_indexes = (0..completions_for_index)
                                .filter(|ix| !taken.contains(ix) && !done.contains(ix))
                                .take(missing)
                                .collect();
                            out.create = out.create_indexes.len();
                        } else {
                            out.create = missing;
                        }
                    }
                }
            }
        }
        let active_after = (active + out.create).saturating_sub(delete.len());
        let complete = match completions {
            None => succeeded > 0 && active_after == 0,
            Some(c) => succeeded >= count(Some(c)) && active_after == 0,
        };
        if complete {
            finish = Some(Finish {
                success: true,
                reason: "CompletionsReached".into(),
                message: "Reached expected number of succeeded pods".into(),
            });
        } else if manage_called {
            if suspended {
                ensure_condition(&mut conditions, "Suspended", "True", "JobSuspended", "Job suspended", now);
            } else if ensure_condition(&mut conditions, "Suspended", "False", "JobResumed", "Job resumed", now) {
                // The deadline counts time spent active: resuming starts it again.
                status.start_time = Some(time(now));
            }
        }
    }

    active = (active + out.create).saturating_sub(delete.len());
    terminating += delete.len();
    ready = ready.saturating_sub(delete.iter().filter(|p| is_ready(p)).count());

    if let Some(f) = &finish {
        let interim = if f.success { "SuccessCriteriaMet" } else { "FailureTarget" };
        if !conditions.iter().any(|c| c.type_ == interim && c.status == "True") {
            conditions.push(new_condition(interim, "True", &f.reason, &f.message, now));
        }
        // The terminal condition waits until no pod of the Job is still terminating.
        if terminating == 0 {
            let terminal = if f.success { "Complete" } else { "Failed" };
            ensure_condition(&mut conditions, terminal, "True", &f.reason, &f.message, now);
            if f.success {
                status.completion_time = Some(time(now));
            }
        }
    }

    status.active = Some(to_i32(active));
    status.ready = Some(to_i32(ready));
    status.terminating = Some(to_i32(terminating));
    status.succeeded = Some(to_i32(succeeded));
    status.failed = Some(to_i32(failed));
    status.conditions = (!conditions.is_empty()).then_some(conditions);
    if status.conditions.is_none() && old_status.conditions.is_some() {
        status.conditions = old_status.conditions.clone();
    }

    let mut names: Vec<String> = delete.iter().filter_map(|p| p.metadata.name.clone()).collect();
    names.sort();
    names.dedup();
    out.delete = names;
    if status != old_status {
        if is_finished(status.conditions.as_deref().unwrap_or_default()) {
            ttl_after_finished(job, &status, now, &mut out);
        }
        out.status = Some(status);
    }
    out.requeue_after = match (out.requeue_after, requeue.0) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    out
}

/// The pod to create for `job` (for Indexed Jobs, for `index`): the template with the labels,
/// completion index (annotation, label, `JOB_COMPLETION_INDEX` env var, hostname
/// `<job>-<index>`), `generateName` and controller owner reference the Job controller sets.
/// (Kubernetes also adds the `batch.kubernetes.io/job-tracking` finalizer; rk does not track
/// with it.)
pub fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let template = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let mut meta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();

    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("batch.kubernetes.io/job-name", name.as_str()),
        ("controller-uid", uid.as_str()),
        ("job-name", name.as_str()),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    meta.generate_name = Some(format!("{name}-"));
    if let Some(ix) = index {
        labels.insert(ANNOTATION_COMPLETION_INDEX.to_string(), ix.to_string());
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANNOTATION_COMPLETION_INDEX.to_string(), ix.to_string());
        meta.generate_name = Some(format!("{name}-{ix}-"));
        spec.hostname = Some(format!("{name}-{ix}"));
        let env = EnvVar {
            name: "JOB_COMPLETION_INDEX".to_string(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.labels['{ANNOTATION_COMPLETION_INDEX}']"),
                }),
                ..Default::default()
            }),
        };
        for c in spec.init_containers.iter_mut().flatten().chain(spec.containers.iter_mut()) {
            let vars = c.env.get_or_insert_with(Vec::new);
            if !vars.iter().any(|v| v.name == env.name) {
                vars.push(env.clone());
            }
        }
    }
    meta.namespace = job.metadata.namespace.clone();
    meta.name = None;
    meta.owner_references = Some(vec![OwnerReference {
        api_version: "batch/v1".to_string(),
        kind: "Job".to_string(),
        name,
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    Pod { metadata: ObjectMeta { ..meta }, spec: Some(spec), status: None }
}

// === Helpers ===

#[derive(Default)]
struct Requeue(Option<i64>);

impl Requeue {
    fn at(&mut self, delay: i64) {
        let delay = delay.max(0);
        self.0 = Some(self.0.map_or(delay, |d| d.min(delay)));
    }
}

fn ttl_after_finished(job: &Job, status: &JobStatus, now: i64, out: &mut JobPlan) {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else { return };
    if job.metadata.deletion_timestamp.is_some() {
        return;
    }
    let finished_at = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .find_map(|c| c.last_transition_time.as_ref())
        .map(|t| t.0.as_second());
    let Some(finished_at) = finished_at else { return };
    let expires = finished_at.saturating_add(i64::from(ttl));
    if now >= expires {
        out.delete_job = true;
    } else {
        out.requeue_after = Some(expires.saturating_sub(now));
    }
}

fn is_finished(conditions: &[JobCondition]) -> bool {
    conditions.iter().any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn new_condition(type_: &str, status: &str, reason: &str, message: &str, now: i64) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(time(now)),
        last_transition_time: Some(time(now)),
    }
}

/// `ensureJobConditionStatus`: update the condition of that type if it differs, or append it
/// unless it would be False (nothing → False is no news). Returns whether anything changed.
fn ensure_condition(
    list: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: i64,
) -> bool {
    match list.iter_mut().find(|c| c.type_ == type_) {
        Some(c)
            if c.status != status || c.reason.as_deref() != Some(reason) || c.message.as_deref() != Some(message) =>
        {
            *c = new_condition(type_, status, reason, message, now);
            true
        }
        Some(_) => false,
        None if status != "False" => {
            list.push(new_condition(type_, status, reason, message, now));
            true
        }
        None => false,
    }
}

/// `pastBackoffLimitOnFailure`: with restartPolicy OnFailure, container restarts of running and
/// pending pods count as failures.
fn past_backoff_limit_on_failure(job: &Job, pods: &[Pod], backoff_limit: i32) -> bool {
    let policy = job.spec.as_ref().and_then(|s| s.template.spec.as_ref()).and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()))
        .map(|c| i64::from(c.restart_count))
        .sum();
    if backoff_limit == 0 { restarts > 0 } else { restarts >= i64::from(backoff_limit) }
}

/// Seconds before failed pods may be replaced: 10 s after the first failure since the last
/// success, doubling per further failure up to 6 min, counted from the last failure.
///
/// Example: three failures after the last success, the last one 15 s ago → backoff 40 s →
/// 25 s remaining.
fn backoff_remaining(pods: &[Pod], now: i64) -> i64 {
    let last_success = pods.iter().filter(|p| phase(p) == "Succeeded").map(finished_time).max();
    let failures: Vec<i64> = pods
        .iter()
        .filter(|p| phase(p) == "Failed")
        .map(finished_time)
        .filter(|&t| last_success.is_none_or(|s| t > s))
        .collect();
    let Some(last_failure) = failures.iter().copied().max() else { return 0 };
    let mut backoff = DEFAULT_BACKOFF_SECS;
    for _ in 1..failures.len() {
        backoff = backoff.saturating_mul(2);
        if backoff >= MAX_BACKOFF_SECS {
            backoff = MAX_BACKOFF_SECS;
            break;
        }
    }
    let elapsed = now.saturating_sub(last_failure);
    if backoff < elapsed { 0 } else { backoff.saturating_sub(elapsed) }
}

/// `getFinishedTime`: the latest container finish, else when Ready turned False, else the
/// deletion time minus its grace period, else the creation time.
fn finished_time(pod: &Pod) -> i64 {
    let status = pod.status.as_ref();
    let containers: Vec<Option<i64>> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0.as_second()))
        .collect();
    if containers.iter().all(Option::is_some)
        && let Some(t) = containers.into_iter().flatten().max()
    {
        return t;
    }
    let ready_false = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "False"))
        .and_then(|c| c.last_transition_time.as_ref());
    if let Some(t) = ready_false {
        return t.0.as_second();
    }
    if let Some(t) = pod.metadata.deletion_timestamp.as_ref() {
        return t.0.as_second().saturating_sub(pod.metadata.deletion_grace_period_seconds.unwrap_or(0));
    }
    pod.metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second())
}

/// `activePodsForRemoval`: for Indexed Jobs, first the pods without a valid index, beyond
/// `completions`, or duplicating an index (keeping the most advanced one); then, if that is not
/// `at_least`, the least advanced of the rest (see [`removal_order`]).
fn active_pods_for_removal<'a>(active: &[&'a Pod], at_least: usize, indexed: bool, completions: i32) -> Vec<&'a Pod> {
    let mut remove: Vec<&Pod> = Vec::new();
    let mut left: Vec<&Pod> = Vec::new();
    if indexed {
        let mut by_index: BTreeMap<i32, Vec<&Pod>> = BTreeMap::new();
        for p in active {
            match completion_index(p).filter(|&ix| ix < completions) {
                Some(ix) => by_index.entry(ix).or_default().push(p),
                None => remove.push(p),
            }
        }
        for (_, mut same) in by_index {
            same.sort_by(|a, b| removal_order(a, b));
            if let Some(keep) = same.pop() {
                left.push(keep);
            }
            remove.extend(same);
        }
    } else {
        left = active.to_vec();
    }
    if remove.len() < at_least {
        left.sort_by(|a, b| removal_order(a, b));
        remove.extend(left.into_iter().take(at_least - remove.len()));
    }
    remove
}

/// `controller.ActivePods` order, least advanced first: unscheduled, then Pending < Unknown <
/// Running, not ready, ready for less time, more restarts, newer; then by name.
fn removal_order(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    let assigned = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let phase_rank = |p: &Pod| match phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    let ready_since = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0.as_second())
    };
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0)
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second());
    // `afterOrZero`: a missing time sorts first, otherwise the later time does.
    let later_first = |x: Option<i64>, y: Option<i64>| match (x, y) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
    };
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| {
            if is_ready(a) && is_ready(b) {
                later_first(ready_since(a), ready_since(b))
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| later_first(created(a), created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata.annotations.as_ref()?.get(ANNOTATION_COMPLETION_INDEX)?.parse::<i32>().ok().filter(|ix| *ix >= 0)
}

/// Parses `completedIndexes` ("1,3-5,7"), keeping indexes below `completions`; bad parts are
/// skipped, as Kubernetes does.
fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else { continue };
        if first < 0 {
            continue;
        }
        out.extend(first..=last.min(completions.saturating_sub(1)));
    }
    out
}

/// Formats indexes as Kubernetes does: runs of 3+ as "a-b", pairs as "a,b".
fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        match last - first {
            0 => parts.push(first.to_string()),
            1 => parts.push(format!("{first},{last}")),
            _ => parts.push(format!("{first}-{last}")),
        }
    }
    parts.join(",")
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn count(n: Option<i32>) -> usize {
    usize::try_from(n.unwrap_or(0)).unwrap_or(0)
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn time(unix: i64) -> Time {
    Time(Timestamp::from_second(unix).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition, PodSpec, PodStatus,
        PodTemplateSpec,
    };
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000;

    struct JobB(Job);
    fn job(completions: Option<i32>, parallelism: Option<i32>) -> JobB {
        JobB(Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                uid: Some("job-uid".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                completions,
                parallelism,
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container { name: "pi".into(), ..Default::default() }],
                        restart_policy: Some("Never".into()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: Some(JobStatus { start_time: Some(time(NOW - 100)), ..Default::default() }),
        })
    }
    impl JobB {
        fn spec(&mut self) -> &mut JobSpec {
            self.0.spec.as_mut().unwrap()
        }
        fn indexed(mut self) -> Self {
            self.spec().completion_mode = Some("Indexed".into());
            self
        }
        fn status(&mut self) -> &mut JobStatus {
            self.0.status.as_mut().unwrap()
        }
    }

    struct PodB(Pod);
    fn pod(name: &str, phase: &str) -> PodB {
        PodB(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(time(NOW - 50)),
                ..Default::default()
            },
            spec: Some(PodSpec { node_name: Some("n1".into()), ..Default::default() }),
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
        })
    }
    impl PodB {
        fn index(mut self, ix: i32) -> Self {
            self.0
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ANNOTATION_COMPLETION_INDEX.into(), ix.to_string());
            self
        }
        fn ready(mut self) -> Self {
            let c = PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(time(NOW - 10)),
                ..Default::default()
            };
            self.0.status.as_mut().unwrap().conditions.get_or_insert_with(Vec::new).push(c);
            self
        }
        fn finished(mut self, ago: i64) -> Self {
            let terminated = ContainerStateTerminated { finished_at: Some(time(NOW - ago)), ..Default::default() };
            self.0.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
                name: "pi".into(),
                state: Some(ContainerState { terminated: Some(terminated), ..Default::default() }),
                ..Default::default()
            }]);
            self
        }
        fn restarts(mut self, n: i32) -> Self {
            self.0.status.as_mut().unwrap().container_statuses =
                Some(vec![ContainerStatus { name: "pi".into(), restart_count: n, ..Default::default() }]);
            self
        }
        fn unscheduled(mut self) -> Self {
            self.0.spec.as_mut().unwrap().node_name = None;
            self
        }
        fn deleting(mut self) -> Self {
            self.0.metadata.deletion_timestamp = Some(time(NOW - 1));
            self
        }
    }

    fn pods(v: Vec<PodB>) -> Vec<Pod> {
        v.into_iter().map(|p| p.0).collect()
    }

    fn cond<'a>(s: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
        s.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
    }

    #[test]
    fn new_job_creates_parallelism_pods_and_sets_start_time() {
        let mut j = job(Some(5), Some(2));
        j.status().start_time = None;
        let p = plan(&j.0, &[], NOW);
        assert_eq!((p.create, p.delete.len()), (2, 0));
        let s = p.status.unwrap();
        assert_eq!((s.active, s.start_time), (Some(2), Some(time(NOW))));
    }

    #[test]
    fn defaults_are_one_completion_one_pod() {
        let p = plan(&job(None, None).0, &[], NOW);
        assert_eq!(p.create, 1);
        let p = plan(&job(None, None).0, &pods(vec![pod("a", "Succeeded")]), NOW);
        assert_eq!(p.create, 0);
        let s = p.status.unwrap();
        assert_eq!(cond(&s, "Complete").map(|c| c.status.as_str()), Some("True"));
    }

    #[test]
    fn worked_example_from_the_module_doc() {
        let j = job(Some(5), Some(2));
        let three = || vec![pod("s1", "Succeeded"), pod("s2", "Succeeded"), pod("s3", "Succeeded")];
        let mut ps = three();
        ps.push(pod("r1", "Running"));
        assert_eq!(plan(&j.0, &pods(ps), NOW).create, 1);
        let mut ps = three();
        ps.extend([pod("s4", "Succeeded"), pod("r1", "Running")]);
        let p = plan(&j.0, &pods(ps), NOW);
        assert_eq!((p.create, p.delete.len()), (0, 0));
        let mut ps = three();
        ps.extend([pod("s4", "Succeeded"), pod("s5", "Succeeded")]);
        let s = plan(&j.0, &pods(ps), NOW).status.unwrap();
        let complete = cond(&s, "Complete").unwrap();
        assert_eq!(complete.reason.as_deref(), Some("CompletionsReached"));
        assert_eq!(complete.message.as_deref(), Some("Reached expected number of succeeded pods"));
        assert_eq!(cond(&s, "SuccessCriteriaMet").map(|c| c.status.as_str()), Some("True"));
        assert_eq!((s.succeeded, s.active, s.completion_time), (Some(5), Some(0), Some(time(NOW))));
    }

    #[test]
    fn parallelism_shrink_deletes_least_advanced_pods_first() {
        let j = job(Some(10), Some(1));
        let ps = pods(vec![
            pod("running-ready", "Running").ready(),
            pod("pending", "Pending"),
            pod("unscheduled", "Pending").unscheduled(),
        ]);
        let p = plan(&j.0, &ps, NOW);
        assert_eq!(p.delete, vec!["pending", "unscheduled"]);
        assert_eq!(p.create, 0);
        let s = p.status.unwrap();
        assert_eq!((s.active, s.terminating), (Some(1), Some(2)));
    }

    #[test]
    fn work_queue_job_stops_creating_after_first_success() {
        // completions unset, parallelism 3: once one pod succeeded, only wait for the others.
        let j = job(None, Some(3));
        assert_eq!(plan(&j.0, &[], NOW).create, 3);
        let ps = pods(vec![pod("a", "Succeeded"), pod("b", "Running")]);
        let p = plan(&j.0, &ps, NOW);
        assert_eq!((p.create, p.delete.len()), (0, 0));
        assert!(cond(p.status.as_ref().unwrap(), "Complete").is_none());
        let ps = pods(vec![pod("a", "Succeeded"), pod("b", "Failed")]);
        let s = plan(&j.0, &ps, NOW).status.unwrap();
        assert_eq!(cond(&s, "Complete").map(|c| c.status.as_str()), Some("True"));
    }

    #[test]
    fn backoff_delays_replacements() {
        // Three failures, the last 15 s ago: backoff 10·2² = 40 s → 25 s left.
        let j = job(Some(1), Some(1));
        let ps = pods(vec![
            pod("f1", "Failed").finished(100),
            pod("f2", "Failed").finished(60),
            pod("f3", "Failed").finished(15),
        ]);
        let p = plan(&j.0, &ps, NOW);
        assert_eq!((p.create, p.requeue_after), (0, Some(25)));
        assert_eq!(p.status.unwrap().failed, Some(3));
        assert_eq!(plan(&j.0, &ps, NOW + 25).create, 1);
        // A success resets the count: one failure after it → 10 s.
        let ps = pods(vec![
            pod("f1", "Failed").finished(100),
            pod("ok", "Succeeded").finished(50),
            pod("f2", "Failed").finished(4),
        ]);
        let mut j = job(Some(3), Some(1));
        j.spec().backoff_limit = Some(10);
        assert_eq!(plan(&j.0, &ps, NOW).requeue_after, Some(6));
    }

    #[test]
    fn backoff_is_capped_at_six_minutes() {
        let mut j = job(Some(1), Some(1));
        j.spec().backoff_limit = Some(100);
        let ps: Vec<Pod> = (0..12).map(|i| pod(&format!("f{i}"), "Failed").finished(1000 - i).0).collect();
        // Twelve failures would be 10·2¹¹ s; the cap is 360 s from the last one (at NOW - 989).
        assert_eq!(backoff_remaining(&ps, NOW - 800), 360 - 189);
        assert_eq!(backoff_remaining(&ps, NOW), 0);
        assert_eq!(plan(&j.0, &ps, NOW).create, 1);
    }

    #[test]
    fn backoff_limit_exceeded_fails_the_job_after_pods_terminate() {
        let mut j = job(Some(3), Some(2));
        j.spec().backoff_limit = Some(1);
        let ps = pods(vec![pod("f1", "Failed"), pod("f2", "Failed"), pod("r", "Running").ready()]);
        let p = plan(&j.0, &ps, NOW);
        assert_eq!(p.delete, vec!["r"]);
        let s = p.status.unwrap();
        let target = cond(&s, "FailureTarget").unwrap();
        assert_eq!(target.reason.as_deref(), Some("BackoffLimitExceeded"));
        assert_eq!(target.message.as_deref(), Some("Job has reached the specified backoff limit"));
        assert!(cond(&s, "Failed").is_none(), "waits for the deleted pod to terminate");
        assert_eq!((s.active, s.ready, s.terminating), (Some(0), Some(0), Some(1)));

        // Next pass: the pod is gone; the interim condition turns into Failed.
        j.0.status = Some(s);
        let p = plan(&j.0, &pods(vec![pod("f1", "Failed"), pod("f2", "Failed")]), NOW + 5);
        let s = p.status.unwrap();
        let failed = cond(&s, "Failed").unwrap();
        assert_eq!((failed.status.as_str(), failed.reason.as_deref()), ("True", Some("BackoffLimitExceeded")));
        assert_eq!(s.completion_time, None);
        assert_eq!(p.create, 0);
    }

    #[test]
    fn on_failure_restarts_count_against_the_backoff_limit() {
        let mut j = job(Some(1), Some(1));
        j.spec().backoff_limit = Some(3);
        j.spec().template.spec.as_mut().unwrap().restart_policy = Some("OnFailure".into());
        let s = plan(&j.0, &pods(vec![pod("r", "Running").restarts(3)]), NOW).status.unwrap();
        assert_eq!(cond(&s, "FailureTarget").and_then(|c| c.reason.as_deref()), Some("BackoffLimitExceeded"));
        let s = plan(&j.0, &pods(vec![pod("r", "Running").restarts(2)]), NOW).status.unwrap();
        assert!(cond(&s, "FailureTarget").is_none());
    }

    #[test]
    fn active_deadline() {
        let mut j = job(Some(1), Some(1));
        j.spec().active_deadline_seconds = Some(150);
        // Started 100 s ago: 50 s left.
        let p = plan(&j.0, &pods(vec![pod("r", "Running")]), NOW);
        assert_eq!(p.requeue_after, Some(50));
        let p = plan(&j.0, &pods(vec![pod("r", "Running")]), NOW + 50);
        assert_eq!(p.delete, vec!["r"]);
        let s = p.status.unwrap();
        assert_eq!(cond(&s, "FailureTarget").and_then(|c| c.reason.as_deref()), Some("DeadlineExceeded"));
        assert_eq!(
            cond(&s, "FailureTarget").and_then(|c| c.message.as_deref()),
            Some("Job was active longer than specified deadline")
        );
    }

    #[test]
    fn suspend_and_resume() {
        let mut j = job(Some(4), Some(2));
        j.spec().suspend = Some(true);
        let p = plan(&j.0, &pods(vec![pod("a", "Running"), pod("b", "Pending")]), NOW);
        assert_eq!((p.create, p.delete.clone()), (0, vec!["a".to_string(), "b".to_string()]));
        let s = p.status.unwrap();
        let c = cond(&s, "Suspended").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
            ("True", Some("JobSuspended"), Some("Job suspended"))
        );

        j.spec().suspend = Some(false);
        j.0.status = Some(s);
        let p = plan(&j.0, &[], NOW + 30);
        assert_eq!(p.create, 2);
        let s = p.status.unwrap();
        let c = cond(&s, "Suspended").unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_deref()), ("False", Some("JobResumed")));
        assert_eq!(s.start_time, Some(time(NOW + 30)), "resuming restarts the deadline clock");
    }

    #[test]
    fn created_suspended_job_has_no_start_time() {
        let mut j = job(Some(1), Some(1));
        j.spec().suspend = Some(true);
        j.status().start_time = None;
        assert_eq!(plan(&j.0, &[], NOW).status.unwrap().start_time, None);
    }

    #[test]
    fn indexed_job_creates_lowest_pending_indexes() {
        let j = job(Some(5), Some(3)).indexed();
        let ps = pods(vec![pod("p0", "Succeeded").index(0), pod("p2", "Running").index(2)]);
        let p = plan(&j.0, &ps, NOW);
        assert_eq!((p.create, p.create_indexes.clone()), (2, vec![1, 3]));
        let s = p.status.unwrap();
        assert_eq!((s.completed_indexes.as_deref(), s.succeeded), (Some("0"), Some(1)));
    }

    #[test]
    fn indexed_job_removes_duplicates_and_out_of_range_indexes() {
        let j = job(Some(3), Some(3)).indexed();
        let ps = pods(vec![
            pod("dup-old", "Running").index(1).ready(),
            pod("dup-new", "Pending").index(1),
            pod("beyond", "Running").index(7),
            pod("no-index", "Running"),
            pod("ok", "Running").index(0),
        ]);
        let p = plan(&j.0, &ps, NOW);
        assert_eq!(p.delete, vec!["beyond", "dup-new", "no-index"]);
        assert_eq!(p.create, 0, "never create in a pass that deletes");
    }

    #[test]
    fn indexed_completion_merges_status_and_pods() {
        let mut j = job(Some(6), Some(2)).indexed();
        j.status().completed_indexes = Some("0-2,4".into());
        let ps = pods(vec![pod("p3", "Succeeded").index(3), pod("p5", "Running").index(5)]);
        let p = plan(&j.0, &ps, NOW);
        let s = p.status.unwrap();
        assert_eq!((s.completed_indexes.as_deref(), s.succeeded, p.create), (Some("0-4"), Some(5), 0));
        let ps = pods(vec![pod("p5", "Succeeded").index(5)]);
        let s = plan(&j.0, &ps, NOW).status.unwrap();
        assert_eq!(s.completed_indexes.as_deref(), Some("0-2,4,5"));
        assert_eq!(s.succeeded, Some(5));
    }

    #[test]
    fn index_strings_like_kubernetes() {
        let set: BTreeSet<i32> = [0, 1, 3, 5, 6, 7, 9].into_iter().collect();
        assert_eq!(format_indexes(&set), "0,1,3,5-7,9");
        assert_eq!(parse_indexes("0,1,3,5-7,9", 100), set);
        assert_eq!(parse_indexes("1-9,x,12", 5), [1, 2, 3, 4].into_iter().collect());
        assert_eq!(parse_indexes("", 5), BTreeSet::new());
    }

    #[test]
    fn ttl_after_finished_deletes_the_job() {
        let mut j = job(Some(1), Some(1));
        j.spec().ttl_seconds_after_finished = Some(100);
        j.status().conditions = Some(vec![new_condition("Complete", "True", "CompletionsReached", "", NOW - 40)]);
        let p = plan(&j.0, &[], NOW);
        assert_eq!((p.delete_job, p.requeue_after, p.status.is_none()), (false, Some(60), true));
        assert!(plan(&j.0, &[], NOW + 60).delete_job);
        // Finishing with ttl 0 is deleted right away by the same plan.
        let mut j = job(Some(1), Some(1));
        j.spec().ttl_seconds_after_finished = Some(0);
        assert!(plan(&j.0, &pods(vec![pod("a", "Succeeded")]), NOW).delete_job);
    }

    #[test]
    fn finished_jobs_are_left_alone() {
        let mut j = job(Some(2), Some(2));
        j.status().conditions = Some(vec![new_condition("Failed", "True", "DeadlineExceeded", "", NOW - 1)]);
        assert_eq!(plan(&j.0, &pods(vec![pod("r", "Running")]), NOW), JobPlan::default());
    }

    #[test]
    fn deleting_pods_count_as_terminating_and_get_replaced() {
        let j = job(Some(2), Some(2));
        let p = plan(&j.0, &pods(vec![pod("gone", "Running").deleting(), pod("r", "Running")]), NOW);
        assert_eq!(p.create, 1);
        assert_eq!(p.status.unwrap().terminating, Some(1));
        let mut j = job(Some(2), Some(2));
        j.spec().pod_replacement_policy = Some("Failed".into());
        assert_eq!(plan(&j.0, &pods(vec![pod("gone", "Running").deleting(), pod("r", "Running")]), NOW).create, 0);
    }

    #[test]
    fn unchanged_job_has_no_status_update() {
        let j = job(Some(2), Some(2));
        let s = plan(&j.0, &pods(vec![pod("a", "Running"), pod("b", "Running")]), NOW).status.unwrap();
        let mut j2 = job(Some(2), Some(2));
        j2.0.status = Some(s);
        assert_eq!(plan(&j2.0, &pods(vec![pod("a", "Running"), pod("b", "Running")]), NOW + 1), JobPlan::default());
    }

    #[test]
    fn absurd_indexed_jobs_and_index_strings_do_not_blow_up() {
        let mut j = job(Some(i32::MAX), Some(i32::MAX)).indexed();
        j.status().completed_indexes = Some("0-2147483646".into());
        assert_eq!(plan(&j.0, &[], NOW), JobPlan::default());
        let mut j = job(Some(100_000), Some(i32::MAX)).indexed();
        j.status().completed_indexes = Some("0-99998,-5,9-x".into());
        let p = plan(&j.0, &[], NOW);
        assert_eq!(p.create_indexes, vec![99_999]);
        let p = plan(&job(Some(i32::MAX), Some(i32::MAX)).0, &[], NOW);
        assert_eq!(p.create, MAX_POD_CREATE_DELETE_PER_SYNC);
    }

    #[test]
    fn jobs_managed_elsewhere_are_skipped() {
        let mut j = job(Some(2), Some(2));
        j.spec().managed_by = Some("example.com/other".into());
        assert_eq!(plan(&j.0, &[], NOW), JobPlan::default());
    }

    #[test]
    fn pod_template_for_an_index() {
        let j = job(Some(3), Some(3)).indexed();
        let p = pod_for(&j.0, Some(2));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(p.metadata.annotations.as_ref().unwrap()[ANNOTATION_COMPLETION_INDEX], "2");
        assert_eq!(p.metadata.labels.as_ref().unwrap()["batch.kubernetes.io/job-name"], "pi");
        let spec = p.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        assert_eq!(spec.containers[0].env.as_ref().unwrap()[0].name, "JOB_COMPLETION_INDEX");
        let owner = &p.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("Job", "job-uid", Some(true)));
        assert_eq!(pod_for(&j.0, None).metadata.generate_name.as_deref(), Some("pi-"));
    }

    // --- properties ---

    fn arb_pods(indexed: bool) -> impl Strategy<Value = Vec<Pod>> {
        let phase = prop_oneof![Just("Pending"), Just("Running"), Just("Succeeded"), Just("Failed")];
        proptest::collection::vec((phase, 0i32..8, any::<bool>(), any::<bool>()), 0..12).prop_map(move |specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (ph, ix, ready, deleting))| {
                    let mut b = pod(&format!("p{i}"), ph);
                    if indexed {
                        b = b.index(ix);
                    }
                    if ready && ph == "Running" {
                        b = b.ready();
                    }
                    if deleting && i % 3 == 0 {
                        b = b.deleting();
                    }
                    b.0
                })
                .collect()
        })
    }

    proptest! {
        /// Never more active pods than parallelism or remaining completions after the plan, never
        /// create and delete together, only delete active pods, counters never go down.
        #[test]
        fn plan_respects_parallelism_and_completions(
            completions in proptest::option::of(1i32..8),
            parallelism in 0i32..6,
            indexed in any::<bool>(),
            prior_succeeded in 0i32..3,
            pods in arb_pods(true),
        ) {
            let indexed = indexed && completions.is_some();
            let mut j = job(completions, Some(parallelism));
            j.spec().backoff_limit = Some(100);
            if indexed {
                j = j.indexed();
            } else {
                j.status().succeeded = Some(prior_succeeded);
            }
            let p = plan(&j.0, &pods, NOW);
            prop_assert!(p.create == 0 || p.delete.is_empty());
            prop_assert_eq!(p.create_indexes.len(), if indexed { p.create } else { 0 });
            let active: Vec<&Pod> = pods.iter().filter(|p| !is_terminal(p) && p.metadata.deletion_timestamp.is_none()).collect();
            for name in &p.delete {
                prop_assert!(active.iter().any(|a| a.metadata.name.as_deref() == Some(name.as_str())), "deleted {name} which is not active");
            }
            let status = p.status.clone().unwrap_or_else(|| j.0.status.clone().unwrap());
            let after = active.len() + p.create - p.delete.len();
            prop_assert_eq!(status.active, Some(after as i32));
            if p.create > 0 {
                prop_assert!(after <= parallelism as usize);
                if let Some(c) = completions {
                    prop_assert!(after as i32 + status.succeeded.unwrap() <= c);
                }
            }
            if indexed {
                let mut ixs = p.create_indexes.clone();
                ixs.dedup();
                prop_assert_eq!(ixs.len(), p.create);
                let active_ix: BTreeSet<i32> = active.iter().filter_map(|p| completion_index(p)).collect();
                for ix in &p.create_indexes {
                    prop_assert!(*ix < completions.unwrap() && !active_ix.contains(ix));
                }
            } else {
                prop_assert!(status.succeeded.unwrap() >= prior_succeeded);
            }
        }

        #[test]
        fn plan_does_not_depend_on_pod_order(pods in arb_pods(true), completions in 1i32..8, parallelism in 1i32..5) {
            let j = job(Some(completions), Some(parallelism)).indexed();
            let mut reversed = pods.clone();
            reversed.reverse();
            prop_assert_eq!(plan(&j.0, &pods, NOW), plan(&j.0, &reversed, NOW));
        }
    }
}
