//! ReplicaSet controller: the pure decision half of Kubernetes' `pkg/controller/replicaset`.
//!
//! [`plan`] looks at one ReplicaSet and every pod of its namespace and decides, like one `syncReplicaSet`:
//!
//! 1. claim pods: adopt active orphans that match the selector, release owned pods that no longer match,
//!    ignore pods controlled by anything else (`ClaimPods`);
//! 2. manage replicas, unless the ReplicaSet is being deleted: create the missing pods (at most `burst`; the
//!    executor runs them in slow-start batches 1, 2, 4, ...) or delete the surplus, least valuable first
//!    ([`podutil::rank_pods_for_deletion`]);
//! 3. compute the status from the claimed active pods as they were *before* this plan's creates and deletes
//!    (as Kubernetes does: the pod events that follow trigger the next sync);
//! 4. ask to be requeued when a ready pod will cross `minReadySeconds`.
//!
//! Expectations (not acting again until the watch shows our own creates and deletes) belong to the executor.
//! When creates or deletes fail, the executor asks [`status_after_failure`] for the status carrying the
//! `ReplicaFailure` condition.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;

use super::podutil::{self, Selector};

/// Kubernetes' default `--replicaset-burst` style cap on creates or deletes in one sync.
pub const DEFAULT_BURST_REPLICAS: usize = 500;

/// Condition type set when pods could not be created or deleted.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// What one reconcile of a ReplicaSet should do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RsPlan {
    /// Pods to create now (slow start: at most `burst` at once; the executor creates them from rs.spec.template
    /// with an ownerRef to the RS and generateName "<rs-name>-").
    pub create: usize,
    /// Pods to delete (names), least valuable first (Kubernetes' ranking: unassigned < assigned;
    /// pending < unknown < running; not ready < ready; ready for less time; more restarts; newer).
    pub delete: Vec<String>,
    /// Orphan pods matching the selector to adopt (set controller ownerRef), and owned pods that no longer
    /// match to release (remove ownerRef).
    pub adopt: Vec<String>,
    pub release: Vec<String>,
    /// The status to write if different from the current one.
    pub status: Option<ReplicaSetStatus>,
    /// When some pod becomes available later (minReadySeconds), reconcile again after this many seconds.
    pub requeue_after: Option<i64>,
}

/// Plan one sync of `rs` given all pods in its namespace.
pub fn plan(rs: &ReplicaSet, pods: &[Pod], now: i64, burst: usize) -> RsPlan {
    let Some(claim) = claim_pods(rs, pods) else {
        // An invalid selector selects nothing; Kubernetes logs and does nothing, not even status.
        return RsPlan::default();
    };
    let mut out = RsPlan { adopt: claim.adopt, release: claim.release, ..RsPlan::default() };

    let desired = spec_replicas(rs);
    if !podutil::is_deleting(&rs.metadata) {
        let active = claim.owned.len();
        if active < desired {
            out.create = (desired - active).min(burst);
        } else if active > desired {
            let surplus = (active - desired).min(burst);
            // Kubernetes ranks against all pods of the ReplicaSets sharing this one's owner; the plan only
            // sees this ReplicaSet's pods, so "doubled up" counts only its own pods per node.
            let ranked = podutil::rank_pods_for_deletion(&claim.owned, &claim.owned, now);
            out.delete = ranked.iter().take(surplus).map(|p| name_of(p)).collect();
        }
    }

    let new_status = calculate_status(rs, &claim.owned, now, None);
    out.requeue_after = requeue_for_availability(rs, &claim.owned, &new_status, now);
    out.status = status_if_changed(rs, new_status);
    out
}

/// The status to write after the executor failed to create (or delete) pods for `rs` with `message`:
/// the plan's status plus a `ReplicaFailure` condition (reason `FailedCreate` or `FailedDelete`), unless one
/// is already present.
pub fn status_after_failure(rs: &ReplicaSet, pods: &[Pod], now: i64, message: &str) -> Option<ReplicaSetStatus> {
    let claim = claim_pods(rs, pods)?;
    status_if_changed(rs, calculate_status(rs, &claim.owned, now, Some(message)))
}

/// `spec.replicas`, defaulting to 1 like the API server; negative values count as 0.
pub fn spec_replicas(rs: &ReplicaSet) -> usize {
    let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    usize::try_from(replicas).unwrap_or(0)
}

fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

// === claiming ===

struct Claim<'a> {
    /// Active pods this ReplicaSet controls after the claim (including the ones being adopted).
    owned: Vec<&'a Pod>,
    adopt: Vec<String>,
    release: Vec<String>,
}

/// Kubernetes' `PodControllerRefManager.ClaimPods` over the active pods. `None` for an invalid selector.
fn claim_pods<'a>(rs: &ReplicaSet, pods: &'a [Pod]) -> Option<Claim<'a>> {
    let selector = Selector::parse(&rs.spec.as_ref()?.selector).ok()?;
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let rs_deleting = podutil::is_deleting(&rs.metadata);
    let mut claim = Claim { owned: Vec::new(), adopt: Vec::new(), release: Vec::new() };
    for pod in pods.iter().filter(|p| podutil::is_pod_active(p)) {
        if !podutil::same_namespace(&rs.metadata, &pod.metadata) {
            continue;
        }
        let matches = selector.matches(pod.metadata.labels.as_ref());
        match podutil::controller_of(&pod.metadata) {
            Some(owner) if owner.uid != uid => {} // someone else's
            Some(_) if matches => claim.owned.push(pod),
            // Ours but no longer selected: let go, unless we are being deleted (then just stop counting it).
            Some(_) if !rs_deleting => claim.release.push(name_of(pod)),
            Some(_) => {}
            // An orphan: adopt it if it matches and neither side is going away.
            None if matches && !rs_deleting && !podutil::is_deleting(&pod.metadata) => {
                claim.adopt.push(name_of(pod));
                claim.owned.push(pod);
            }
            None => {}
        }
    }
    Some(claim)
}

// === status ===

fn calculate_status(rs: &ReplicaSet, owned: &[&Pod], now: i64, failure: Option<&str>) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = rs.spec.as_ref().and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref());
    let template_labels = template_labels.and_then(|m| m.labels.as_ref());
    let min_ready = min_ready_seconds(rs);

    let fully_labeled = owned.iter().filter(|p| labels_superset(p.metadata.labels.as_ref(), template_labels)).count();
    let ready = owned.iter().filter(|p| podutil::is_pod_ready(p)).count();
    let available = owned.iter().filter(|p| podutil::is_pod_available(p, min_ready, now)).count();

    let existing_failure = status.conditions.iter().flatten().any(|c| c.type_ == REPLICA_FAILURE);
    match failure {
        Some(message) if !existing_failure => {
            let desired = spec_replicas(rs);
            let reason = match owned.len().cmp(&desired) {
                std::cmp::Ordering::Less => "FailedCreate",
                std::cmp::Ordering::Greater => "FailedDelete",
                std::cmp::Ordering::Equal => "",
            };
            status.conditions.get_or_insert_with(Vec::new).push(ReplicaSetCondition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(podutil::time_at(now)),
            });
        }
        None if existing_failure => {
            let kept: Vec<_> =
                status.conditions.take().into_iter().flatten().filter(|c| c.type_ != REPLICA_FAILURE).collect();
            status.conditions = if kept.is_empty() { None } else { Some(kept) };
        }
        _ => {}
    }

    status.replicas = count(owned.len());
    status.fully_labeled_replicas = Some(count(fully_labeled));
    status.ready_replicas = Some(count(ready));
    status.available_replicas = Some(count(available));
    status
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn labels_superset(labels: Option<&BTreeMap<String, String>>, required: Option<&BTreeMap<String, String>>) -> bool {
    required.into_iter().flatten().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Kubernetes' `updateReplicaSetStatus` short-cut: nothing to write when the counts, the conditions and the
/// observed generation already agree. The written status records the generation acted on.
fn status_if_changed(rs: &ReplicaSet, mut new: ReplicaSetStatus) -> Option<ReplicaSetStatus> {
    let old = rs.status.clone().unwrap_or_default();
    let generation = rs.metadata.generation;
    let n = |v: Option<i32>| v.unwrap_or(0);
    let conditions = |c: &Option<Vec<ReplicaSetCondition>>| c.clone().unwrap_or_default();
    let unchanged = old.replicas == new.replicas
        && n(old.fully_labeled_replicas) == n(new.fully_labeled_replicas)
        && n(old.ready_replicas) == n(new.ready_replicas)
        && n(old.available_replicas) == n(new.available_replicas)
        && generation.unwrap_or(0) == old.observed_generation.unwrap_or(0)
        && conditions(&old.conditions) == conditions(&new.conditions);
    if unchanged {
        return None;
    }
    new.observed_generation = generation;
    Some(new)
}

/// When does this ReplicaSet next need a look because a pod crosses `minReadySeconds`? The earliest such pod,
/// or, as Kubernetes' last line of defence against clock skew, `minReadySeconds` when every desired pod is
/// ready but not all are available.
fn requeue_for_availability(rs: &ReplicaSet, owned: &[&Pod], status: &ReplicaSetStatus, now: i64) -> Option<i64> {
    let min_ready = min_ready_seconds(rs);
    if min_ready <= 0 {
        return None;
    }
    let earliest = owned.iter().filter_map(|p| podutil::seconds_until_available(p, min_ready, now)).min();
    let desired = count(spec_replicas(rs));
    let fallback = (status.ready_replicas == Some(desired) && status.available_replicas != Some(desired))
        .then_some(i64::from(min_ready));
    earliest.or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::apps_testkit::{PodBuilder, RsBuilder};

    const NOW: i64 = 1_700_000_000;

    fn names(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn creates_missing_pods_up_to_burst() {
        let rs = RsBuilder::new("web", "rs-uid").replicas(5).build();
        let pods = vec![PodBuilder::new("web-a").labels(&[("app", "web")]).owned_by_rs("web", "rs-uid").build()];
        let p = plan(&rs, &pods, NOW, 500);
        assert_eq!(p.create, 4);
        assert!(p.delete.is_empty());
        let capped = plan(&rs, &pods, NOW, 3);
        assert_eq!(capped.create, 3);
    }

    #[test]
    fn deletes_least_valuable_first() {
        let rs = RsBuilder::new("web", "rs-uid").replicas(2).build();
        let owned = |n: &str| PodBuilder::new(n).labels(&[("app", "web")]).owned_by_rs("web", "rs-uid").on_node("n1");
        let pods = vec![
            owned("ready-old").running().ready_since(NOW - 3600).created(NOW - 4000).build(),
            owned("pending").phase("Pending").created(NOW - 10).build(),
            owned("ready-new").running().ready_since(NOW - 5).created(NOW - 30).build(),
            owned("not-ready").running().created(NOW - 100).build(),
        ];
        let p = plan(&rs, &pods, NOW, 500);
        assert_eq!(p.create, 0);
        assert_eq!(names(&p.delete), ["pending", "not-ready"]);
    }

    #[test]
    fn adopts_matching_orphans_releases_strays_ignores_others() {
        let rs = RsBuilder::new("web", "rs-uid").replicas(3).build();
        let pods = vec![
            PodBuilder::new("mine").labels(&[("app", "web")]).owned_by_rs("web", "rs-uid").build(),
            PodBuilder::new("orphan").labels(&[("app", "web")]).build(),
            PodBuilder::new("stray").labels(&[("app", "other")]).owned_by_rs("web", "rs-uid").build(),
            PodBuilder::new("theirs").labels(&[("app", "web")]).owned_by_rs("other", "other-uid").build(),
            PodBuilder::new("orphan-no-match").labels(&[("app", "db")]).build(),
            PodBuilder::new("orphan-dying").labels(&[("app", "web")]).phase("Failed").build(),
        ];
        let p = plan(&rs, &pods, NOW, 500);
        assert_eq!(names(&p.adopt), ["orphan"]);
        assert_eq!(names(&p.release), ["stray"]);
        // mine + orphan are ours: one more to create.
        assert_eq!(p.create, 1);
        assert_eq!(p.status.unwrap().replicas, 2);
    }

    #[test]
    fn rs_being_deleted_only_updates_status() {
        let rs = RsBuilder::new("web", "rs-uid").replicas(3).deleting(NOW - 1).build();
        let pods = vec![
            PodBuilder::new("mine").labels(&[("app", "web")]).owned_by_rs("web", "rs-uid").build(),
            PodBuilder::new("orphan").labels(&[("app", "web")]).build(),
            PodBuilder::new("stray").labels(&[("app", "x")]).owned_by_rs("web", "rs-uid").build(),
        ];
        let p = plan(&rs, &pods, NOW, 500);
        assert_eq!((p.create, p.delete.len(), p.adopt.len(), p.release.len()), (0, 0, 0, 0));
        assert_eq!(p.status.unwrap().replicas, 1);
    }

    #[test]
    fn status_counts_and_is_omitted_when_unchanged() {
        let rs = RsBuilder::new("web", "rs-uid").replicas(3).min_ready_seconds(10).generation(4).build();
        let owned = |n: &str| PodBuilder::new(n).labels(&[("app", "web")]).owned_by_rs("web", "rs-uid");
        let pods = vec![
            owned("available").running().ready_since(NOW - 60).build(),
            owned("ready-only").running().ready_since(NOW - 3).build(),
            owned("starting").phase("Pending").build(),
            owned("done").phase("Succeeded").build(),
        ];
        let p = plan(&rs, &pods, NOW, 500);
        let s = p.status.clone().unwrap();
        assert_eq!(s.replicas, 3);
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(s.available_replicas, Some(1));
        assert_eq!(s.fully_labeled_replicas, Some(3));
        assert_eq!(s.observed_generation, Some(4));
        // ready at NOW-3 + 10s: available at NOW+8.
        assert_eq!(p.requeue_after, Some(8));

        let mut synced = rs.clone();
        synced.status = Some(s);
        assert_eq!(plan(&synced, &pods, NOW, 500).status, None);
    }

    #[test]
    fn failure_condition_set_once_and_cleared_on_success() {
        let rs = RsBuilder::new("web", "rs-uid").replicas(2).build();
        let s = status_after_failure(&rs, &[], NOW, "pods \"x\" is forbidden: exceeded quota").unwrap();
        let cond = &s.conditions.as_ref().unwrap()[0];
        assert_eq!((cond.type_.as_str(), cond.reason.as_deref()), (REPLICA_FAILURE, Some("FailedCreate")));

        let mut failed = rs.clone();
        failed.status = Some(s);
        // A second failure keeps the first condition (and its time).
        assert_eq!(status_after_failure(&failed, &[], NOW + 5, "again"), None);
        // A successful sync removes it.
        let cleared = plan(&failed, &[], NOW + 10, 500).status.unwrap();
        assert_eq!(cleared.conditions, None);
    }

    #[test]
    fn invalid_selector_does_nothing() {
        let mut rs = RsBuilder::new("web", "rs-uid").replicas(2).build();
        if let Some(spec) = rs.spec.as_mut() {
            spec.selector.match_expressions = Some(vec![Default::default()]);
        }
        assert_eq!(plan(&rs, &[], NOW, 500), RsPlan::default());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::controllers::apps_testkit::{PodBuilder, RsBuilder};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Kind {
        Owned,
        Orphan,
        OrphanOtherLabels,
        OtherOwner,
        StrayOwned,
        Terminal,
        Terminating,
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            4 => Just(Kind::Owned),
            2 => Just(Kind::Orphan),
            1 => Just(Kind::OrphanOtherLabels),
            2 => Just(Kind::OtherOwner),
            1 => Just(Kind::StrayOwned),
            1 => Just(Kind::Terminal),
            1 => Just(Kind::Terminating),
        ]
    }

    fn pod(i: usize, k: &Kind, ready: bool, node: u8) -> Pod {
        let b = PodBuilder::new(&format!("p{i}")).on_node(&format!("n{node}")).created(1_000 + i as i64);
        let b = if ready { b.running().ready_since(1_000) } else { b.phase("Pending") };
        match k {
            Kind::Owned => b.labels(&[("app", "web")]).owned_by_rs("web", "rs-uid"),
            Kind::Orphan => b.labels(&[("app", "web")]),
            Kind::OrphanOtherLabels => b.labels(&[("app", "db")]),
            Kind::OtherOwner => b.labels(&[("app", "web")]).owned_by_rs("other", "other-uid"),
            Kind::StrayOwned => b.labels(&[("app", "nope")]).owned_by_rs("web", "rs-uid"),
            Kind::Terminal => b.labels(&[("app", "web")]).owned_by_rs("web", "rs-uid").phase("Failed"),
            Kind::Terminating => b.labels(&[("app", "web")]).owned_by_rs("web", "rs-uid").terminating(900),
        }
        .build()
    }

    fn owned_active(pods: &[Pod]) -> usize {
        pods.iter()
            .filter(|p| podutil::is_pod_active(p) && podutil::is_controlled_by(&p.metadata, "rs-uid"))
            .filter(|p| p.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str) == Some("web"))
            .count()
    }

    proptest! {
        /// Applying plans repeatedly converges to exactly `replicas` owned active pods, and never touches pods
        /// that belong to another controller, finished pods or terminating pods.
        #[test]
        fn repeated_plans_converge(
            replicas in 0usize..30,
            specs in prop::collection::vec((kind(), any::<bool>(), 0u8..4), 0..40),
            burst in 1usize..20,
        ) {
            let rs = RsBuilder::new("web", "rs-uid").replicas(replicas as i32).build();
            let mut pods: Vec<Pod> = specs.iter().enumerate().map(|(i, (k, r, n))| pod(i, k, *r, *n)).collect();
            let protected: Vec<Pod> = pods
                .iter()
                .filter(|p| {
                    let foreign = podutil::controller_of(&p.metadata).is_some_and(|o| o.uid != "rs-uid");
                    foreign || !podutil::is_pod_active(p)
                })
                .cloned()
                .collect();
            let mut next = specs.len();
            for _ in 0..100 {
                let p = plan(&rs, &pods, 2_000, burst);
                for name in &p.delete {
                    let victim = pods.iter().find(|x| x.metadata.name.as_deref() == Some(name.as_str())).unwrap();
                    prop_assert!(podutil::is_controlled_by(&victim.metadata, "rs-uid") || p.adopt.contains(name));
                    prop_assert!(podutil::is_pod_active(victim));
                }
                prop_assert!(p.create <= burst && p.delete.len() <= burst);
                prop_assert!(p.create == 0 || p.delete.is_empty());
                let done = p.create == 0 && p.delete.is_empty() && p.adopt.is_empty() && p.release.is_empty();
                for name in &p.adopt {
                    let x = pods.iter_mut().find(|x| x.metadata.name.as_deref() == Some(name.as_str())).unwrap();
                    prop_assert!(podutil::controller_of(&x.metadata).is_none());
                    x.metadata.owner_references = PodBuilder::new("_").owned_by_rs("web", "rs-uid").build().metadata.owner_references;
                }
                for name in &p.release {
                    let x = pods.iter_mut().find(|x| x.metadata.name.as_deref() == Some(name.as_str())).unwrap();
                    x.metadata.owner_references = None;
                }
                pods.retain(|x| !p.delete.iter().any(|d| x.metadata.name.as_deref() == Some(d.as_str())));
                for _ in 0..p.create {
                    pods.push(PodBuilder::new(&format!("new{next}")).labels(&[("app", "web")]).owned_by_rs("web", "rs-uid").build());
                    next += 1;
                }
                if done {
                    break;
                }
            }
            prop_assert_eq!(owned_active(&pods), replicas);
            for x in &protected {
                let still = pods.iter().find(|p| p.metadata.name == x.metadata.name);
                prop_assert_eq!(still, Some(x));
            }
        }
    }
}
