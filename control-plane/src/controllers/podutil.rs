//! Pod and object helpers shared by the workload controllers (ReplicaSet, Deployment).
//!
//! Everything here is pure: time comes in as `now` (unix seconds) and nothing does I/O.
//!
//! - Pod state: [`is_pod_active`], [`is_pod_ready`], [`is_pod_available`], [`seconds_until_available`].
//! - Ownership: [`controller_of`], [`is_controlled_by`], [`new_controller_ref`].
//! - Label selectors: [`Selector`] (metav1 `LabelSelector` with `matchLabels` and `matchExpressions`).
//! - Scale-down order: [`rank_pods_for_deletion`], Kubernetes' `ActivePodsWithRanks` ordering.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

/// Annotation whose int32 value makes a pod cheaper (lower) or dearer (higher) to delete on scale-down.
pub const POD_DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

const NANOS_PER_SECOND: i128 = 1_000_000_000;

// === time ===

/// `now` (unix seconds) as an API timestamp. Out-of-range values clamp to the epoch instead of panicking.
pub fn time_at(now: i64) -> Time {
    Time(Timestamp::from_second(now).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn nanos(t: &Time) -> i128 {
    t.0.as_nanosecond()
}

fn now_nanos(now: i64) -> i128 {
    i128::from(now) * NANOS_PER_SECOND
}

// === pod state ===

/// A pod counts towards its controller unless it finished (`Succeeded`/`Failed`) or is being deleted.
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod_phase(pod);
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// The pod's phase, `""` when unset.
pub fn pod_phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// The pod has a `Ready` condition with status `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")
}

/// When the pod last became ready (`Ready=True` condition's lastTransitionTime), if it is ready.
pub fn pod_ready_time(pod: &Pod) -> Option<&Time> {
    ready_condition(pod).filter(|c| c.status == "True").and_then(|c| c.last_transition_time.as_ref())
}

/// Ready for at least `min_ready_seconds`: Kubernetes' `IsPodAvailable`.
///
/// With `min_ready_seconds > 0` the pod must have a ready transition time `t` with `t + minReadySeconds < now`
/// (strictly): ready at 100 with minReadySeconds 10 is unavailable at 110 and available at 111.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: i64) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match pod_ready_time(pod) {
        Some(t) => nanos(t) + i128::from(min_ready_seconds) * NANOS_PER_SECOND < now_nanos(now),
        None => false,
    }
}

/// For a pod that is ready but not yet available, whole seconds from `now` until [`is_pod_available`] turns
/// true (at least 1). `None` if it is not ready, already available, or can never become available by waiting.
///
/// Ready at 100, minReadySeconds 10, now 104: available once `100 + 10 < t`, i.e. at 111, so 7.
pub fn seconds_until_available(pod: &Pod, min_ready_seconds: i32, now: i64) -> Option<i64> {
    if !is_pod_ready(pod) || is_pod_available(pod, min_ready_seconds, now) {
        return None;
    }
    let ready = nanos(pod_ready_time(pod)?);
    let available_at = ready + i128::from(min_ready_seconds) * NANOS_PER_SECOND;
    // The first whole second strictly after `available_at`.
    let first_second = available_at.div_euclid(NANOS_PER_SECOND) + 1;
    let wait = first_second - i128::from(now);
    Some(i64::try_from(wait.max(1)).unwrap_or(i64::MAX))
}

fn max_container_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
        .max(0)
}

fn deletion_cost(pod: &Pod) -> i32 {
    // Kubernetes ignores an unparsable cost (treats it as 0).
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST_ANNOTATION))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0)
}

fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

// === ownership ===

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// The object's controller is the object with this uid.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// A controller owner reference with `blockOwnerDeletion`, as `metav1.NewControllerRef` builds it.
pub fn new_controller_ref(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The object is being deleted.
pub fn is_deleting(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// Both objects live in the same namespace (an unset namespace matches anything, as in the controllers'
/// `ClaimObject`).
pub fn same_namespace(a: &ObjectMeta, b: &ObjectMeta) -> bool {
    match (a.namespace.as_deref(), b.namespace.as_deref()) {
        (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => x == y,
        _ => true,
    }
}

// === label selectors ===

/// Why a `LabelSelector` cannot be turned into a [`Selector`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("matchExpressions[{index}] (key {key:?}): unknown operator {operator:?}")]
    UnknownOperator { index: usize, key: String, operator: String },
    #[error("matchExpressions[{index}] (key {key:?}): operator {operator} needs at least one value")]
    MissingValues { index: usize, key: String, operator: String },
    #[error("matchExpressions[{index}] (key {key:?}): operator {operator} takes no values")]
    UnexpectedValues { index: usize, key: String, operator: String },
    #[error("label selector key must not be empty")]
    EmptyKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Operator,
    values: Vec<String>,
}

/// A parsed metav1 `LabelSelector`: every requirement must hold. An empty selector matches everything
/// (`labels.Everything()`), as `metav1.LabelSelectorAsSelector` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parse `matchLabels` (each `key = value`) and `matchExpressions` (`In`, `NotIn`, `Exists`, `DoesNotExist`).
    pub fn parse(selector: &LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            if key.is_empty() {
                return Err(SelectorError::EmptyKey);
            }
            requirements.push(Requirement { key: key.clone(), op: Operator::In, values: vec![value.clone()] });
        }
        for (index, expr) in selector.match_expressions.iter().flatten().enumerate() {
            if expr.key.is_empty() {
                return Err(SelectorError::EmptyKey);
            }
            let values = expr.values.clone().unwrap_or_default();
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::UnknownOperator {
                        index,
                        key: expr.key.clone(),
                        operator: other.to_string(),
                    });
                }
            };
            let needs_values = matches!(op, Operator::In | Operator::NotIn);
            if needs_values && values.is_empty() {
                return Err(SelectorError::MissingValues {
                    index,
                    key: expr.key.clone(),
                    operator: expr.operator.clone(),
                });
            }
            if !needs_values && !values.is_empty() {
                return Err(SelectorError::UnexpectedValues {
                    index,
                    key: expr.key.clone(),
                    operator: expr.operator.clone(),
                });
            }
            requirements.push(Requirement { key: expr.key.clone(), op, values });
        }
        Ok(Selector { requirements })
    }

    /// The selector has no requirements and so selects every object.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key));
            match r.op {
                Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// A selector is "empty" (selects everything) when it has neither matchLabels nor matchExpressions.
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|e| e.is_empty())
}

// === scale-down ranking ===

/// `pods` ordered least valuable first, the order in which a ReplicaSet deletes them on scale-down
/// (Kubernetes' `ActivePodsWithRanks`, with PodDeletionCost and LogarithmicScaleDown on, their defaults):
///
/// 1. unassigned (no node) before assigned;
/// 2. phase Pending (or unset) before Unknown before Running;
/// 3. not ready before ready;
/// 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
/// 5. more active `related` pods on the same node first ("doubled up" pods go first);
/// 6. if both are ready: ready for less time first, compared in log2 buckets of the age in nanoseconds,
///    same bucket broken by uid;
/// 7. more container restarts first;
/// 8. newer (created later) first, again in log2 buckets broken by uid; a missing time counts as newest.
///
/// `related` should be a superset of `pods` (the pods of all ReplicaSets of the same owner). The sort is a
/// hand-written stable merge sort, since the comparison above is not a total order (bucket ties fall back to
/// uids, exact ties fall through) and `slice::sort_by` may panic on such comparators.
pub fn rank_pods_for_deletion<'a>(pods: &[&'a Pod], related: &[&Pod], now: i64) -> Vec<&'a Pod> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| is_pod_active(p)) {
        *on_node.entry(node_name(pod)).or_default() += 1;
    }
    let ranked: Vec<(&Pod, usize)> =
        pods.iter().map(|p| (*p, on_node.get(node_name(p)).copied().unwrap_or(0))).collect();
    let sorted = merge_sort_by(ranked, |a, b| deletes_before(a.0, a.1, b.0, b.1, now));
    sorted.into_iter().map(|(p, _)| p).collect()
}

/// Kubernetes' `ActivePodsWithRanks.Less`: should `a` (with node rank `rank_a`) be deleted before `b`?
fn deletes_before(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: i64) -> bool {
    let (node_a, node_b) = (node_name(a), node_name(b));
    if node_a != node_b && (node_a.is_empty() || node_b.is_empty()) {
        return node_a.is_empty();
    }
    let (phase_a, phase_b) = (phase_ordinal(a), phase_ordinal(b));
    if phase_a != phase_b {
        return phase_a < phase_b;
    }
    let (ready_a, ready_b) = (is_pod_ready(a), is_pod_ready(b));
    if ready_a != ready_b {
        return !ready_a;
    }
    let (cost_a, cost_b) = (deletion_cost(a), deletion_cost(b));
    if cost_a != cost_b {
        return cost_a < cost_b;
    }
    if rank_a != rank_b {
        return rank_a > rank_b;
    }
    if ready_a && ready_b {
        let (ta, tb) = (pod_ready_time(a), pod_ready_time(b));
        if ta.map(nanos) != tb.map(nanos) {
            return newer_in_log_scale(ta, tb, a, b, now);
        }
    }
    let (restarts_a, restarts_b) = (max_container_restarts(a), max_container_restarts(b));
    if restarts_a != restarts_b {
        return restarts_a > restarts_b;
    }
    let (ca, cb) = (a.metadata.creation_timestamp.as_ref(), b.metadata.creation_timestamp.as_ref());
    if ca.map(nanos) != cb.map(nanos) {
        return newer_in_log_scale(ca, cb, a, b, now);
    }
    false
}

/// `t1` is "newer" than `t2` in Kubernetes' logarithmic comparison; a missing time is the newest.
fn newer_in_log_scale(t1: Option<&Time>, t2: Option<&Time>, a: &Pod, b: &Pod, now: i64) -> bool {
    match (t1, t2) {
        (None, _) => true,
        (_, None) => false,
        (Some(t1), Some(t2)) => {
            let (r1, r2) = (log2_age(t1, now), log2_age(t2, now));
            if r1 == r2 {
                let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
                return uid(a) < uid(b);
            }
            r1 < r2
        }
    }
}

/// floor(log2(age in nanoseconds)), -1 for a time not in the past.
fn log2_age(t: &Time, now: i64) -> i64 {
    let age = now_nanos(now) - nanos(t);
    if age <= 0 {
        return -1;
    }
    // 127 - leading zeros of a positive i128 is floor(log2); Go computes it through float64, which agrees
    // except within a few ulps of a power of two.
    i64::from(127 - age.leading_zeros())
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod_phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// Stable merge sort by a strict "less" predicate that need not be a total order; never panics.
pub(crate) fn merge_sort_by<T: Clone>(items: Vec<T>, less: impl Fn(&T, &T) -> bool) -> Vec<T> {
    merge_sort(items, &less)
}

fn merge_sort<T: Clone>(items: Vec<T>, less: &dyn Fn(&T, &T) -> bool) -> Vec<T> {
    if items.len() <= 1 {
        return items;
    }
    let mid = items.len() / 2;
    let right_half = items[mid..].to_vec();
    let mut left_half = items;
    left_half.truncate(mid);
    let left = merge_sort(left_half, less);
    let right = merge_sort(right_half, less);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_right = match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => less(b, a),
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => break,
        };
        let next = if take_right { r.next() } else { l.next() };
        out.extend(next);
    }
    out
}

/// Orders two optional timestamps like Kubernetes' `CreationTimestamp.Before` (unset is the zero time).
pub(crate) fn cmp_time(a: Option<&Time>, b: Option<&Time>) -> Ordering {
    a.map(nanos).cmp(&b.map(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::apps_testkit::PodBuilder;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: if values.is_empty() { None } else { Some(values.iter().map(|v| v.to_string()).collect()) },
        }
    }

    #[test]
    fn selector_match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                expr("tier", "In", &["front", "edge"]),
                expr("canary", "DoesNotExist", &[]),
                expr("env", "NotIn", &["prod"]),
                expr("team", "Exists", &[]),
            ]),
        };
        let s = Selector::parse(&sel).unwrap();
        assert!(s.matches(Some(&labels(&[("app", "web"), ("tier", "edge"), ("team", "a")]))));
        assert!(s.matches(Some(&labels(&[("app", "web"), ("tier", "front"), ("team", "a"), ("env", "dev")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "front"), ("team", "a"), ("env", "prod")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "back"), ("team", "a")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "front"), ("team", "a"), ("canary", "1")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "front")]))));
        assert!(!s.matches(None));
    }

    #[test]
    fn empty_selector_matches_everything_and_bad_ones_are_errors() {
        let everything = Selector::parse(&LabelSelector::default()).unwrap();
        assert!(everything.is_everything());
        assert!(everything.matches(None));
        assert!(selector_is_empty(&LabelSelector { match_labels: Some(BTreeMap::new()), match_expressions: None }));

        let bad_op = LabelSelector { match_labels: None, match_expressions: Some(vec![expr("a", "Gt", &["1"])]) };
        assert!(matches!(Selector::parse(&bad_op), Err(SelectorError::UnknownOperator { .. })));
        let no_values = LabelSelector { match_labels: None, match_expressions: Some(vec![expr("a", "In", &[])]) };
        assert!(matches!(Selector::parse(&no_values), Err(SelectorError::MissingValues { .. })));
        let extra = LabelSelector { match_labels: None, match_expressions: Some(vec![expr("a", "Exists", &["x"])]) };
        assert!(matches!(Selector::parse(&extra), Err(SelectorError::UnexpectedValues { .. })));
    }

    #[test]
    fn availability_needs_min_ready_seconds_strictly_elapsed() {
        // Ready at 100 with minReadySeconds 10: available from 111 on.
        let pod = PodBuilder::new("p").running().ready_since(100).build();
        assert!(is_pod_available(&pod, 0, 100));
        assert!(!is_pod_available(&pod, 10, 110));
        assert!(is_pod_available(&pod, 10, 111));
        assert_eq!(seconds_until_available(&pod, 10, 104), Some(7));
        assert_eq!(seconds_until_available(&pod, 10, 111), None);
        let not_ready = PodBuilder::new("q").running().build();
        assert!(!is_pod_available(&not_ready, 0, 100));
        assert_eq!(seconds_until_available(&not_ready, 10, 100), None);
    }

    #[test]
    fn active_excludes_terminal_and_terminating() {
        assert!(is_pod_active(&PodBuilder::new("a").running().build()));
        assert!(!is_pod_active(&PodBuilder::new("b").phase("Succeeded").build()));
        assert!(!is_pod_active(&PodBuilder::new("c").phase("Failed").build()));
        assert!(!is_pod_active(&PodBuilder::new("d").running().terminating(5).build()));
    }

    #[test]
    fn deletion_order_follows_kubernetes_ranking() {
        let now = 10_000;
        let unassigned = PodBuilder::new("unassigned").phase("Pending").build();
        let pending = PodBuilder::new("pending").on_node("n1").phase("Pending").build();
        let unknown = PodBuilder::new("unknown").on_node("n1").phase("Unknown").build();
        let not_ready = PodBuilder::new("not-ready").on_node("n2").running().build();
        let cheap = PodBuilder::new("cheap").on_node("n3").running().ready_since(100).deletion_cost(-5).build();
        let ready_recent = PodBuilder::new("ready-recent").on_node("n3").running().ready_since(9_990).build();
        let ready_old = PodBuilder::new("ready-old").on_node("n3").running().ready_since(100).build();
        let pods = [&ready_old, &cheap, &ready_recent, &not_ready, &unknown, &pending, &unassigned];
        let order: Vec<_> =
            rank_pods_for_deletion(&pods, &pods, now).iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(
            order,
            ["unassigned", "pending", "unknown", "not-ready", "cheap", "ready-recent", "ready-old"].map(String::from)
        );
    }

    #[test]
    fn deletion_order_prefers_doubled_up_then_restarts_then_newer() {
        let now = 1_000_000;
        // Same node count: more restarts go first, then newer pods.
        let restarts = PodBuilder::new("restarts").on_node("n1").running().created(10).restarts(3).build();
        let newer = PodBuilder::new("newer").on_node("n2").running().created(900_000).build();
        let older = PodBuilder::new("older").on_node("n3").running().created(10).build();
        let pods = [&older, &newer, &restarts];
        let order: Vec<_> =
            rank_pods_for_deletion(&pods, &pods, now).iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(order, ["restarts", "newer", "older"].map(String::from));

        // A pod sharing its node with another related pod goes before a lone one.
        let crowded = PodBuilder::new("crowded").on_node("n1").running().created(10).build();
        let neighbour = PodBuilder::new("neighbour").on_node("n1").running().created(10).build();
        let lone = PodBuilder::new("lone").on_node("n2").running().created(900_000).build();
        let ranked = rank_pods_for_deletion(&[&lone, &crowded], &[&lone, &crowded, &neighbour], now);
        assert_eq!(ranked[0].metadata.name.as_deref(), Some("crowded"));
    }

    #[test]
    fn merge_sort_is_stable_and_total() {
        let v = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        let sorted = merge_sort_by(v, |a, b| a.0 < b.0);
        assert_eq!(sorted, vec![(1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]);
        // A nonsense comparator must not panic.
        let odd = merge_sort_by((0..50).collect::<Vec<i32>>(), |a, b| (a * 7 + b) % 3 == 0);
        assert_eq!(odd.len(), 50);
    }
}
