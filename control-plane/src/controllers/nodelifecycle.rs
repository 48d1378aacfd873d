//! Node lifecycle: from kubelet heartbeats to Unknown conditions, NoExecute taints and evictions.
//!
//! This merges what kube-controller-manager splits between the node lifecycle controller
//! (`pkg/controller/nodelifecycle`) and the taint eviction controller
//! (`pkg/controller/tainteviction`), as one pure [`plan`]:
//!
//! ```text
//!  Lease renewTime ─┐
//!  Ready heartbeat ─┴─► last probe ──(now > probe + grace)──► mark_unknown ──┐
//!                                                                           ▼
//!  effective Ready:  True ──► remove_taints          (node healthy again)
//!                    False ─► add_not_ready_taint    node.kubernetes.io/not-ready:NoExecute
//!                    Unknown► add_unreachable_taint  node.kubernetes.io/unreachable:NoExecute
//!                    ≠ True ─► mark_pods_not_ready   (pods' Ready condition → False)
//!
//!  NoExecute taints on a node ──► evict pods that do not tolerate them, or whose
//!                                 tolerationSeconds ran out since the taint's timeAdded
//! ```
//!
//! Disruption guard, as Kubernetes: nodes are grouped into zones (region + zone labels); if every
//! zone has no Ready node at all, the problem is more likely the control plane's view than the
//! nodes, so no node is tainted and existing NoExecute taints are removed ("master disruption
//! mode"). A zone of at most 50 nodes with more than 2 and at least 55 % not Ready gets no new
//! taints (its eviction rate is 0). Rate limiting of tainting in normal zones is not modelled.
//!
//! The plan is level-triggered: evictions look only at taints already on the node, so a taint
//! added by this plan evicts on the next pass (the node update that adds it triggers one);
//! `requeue_after` says when the next time-driven change is due.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Default grace (seconds) after the last heartbeat before a node is considered lost.
pub const DEFAULT_GRACE_SECS: i64 = 10;
/// Namespace of the kubelets' heartbeat Leases (one per node, named after it).
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Reason and message put on the conditions of a node that stopped reporting.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
/// Reason and message for a condition the kubelet never reported at all.
pub const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
pub const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";
/// Conditions set to Unknown with Ready (NetworkUnavailable belongs to the network plugin).
pub const CONDITIONS_SET_UNKNOWN: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
/// Label that keeps a node out of the zone disruption computation.
const LABEL_EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
const LABEL_REGION: &str = "topology.kubernetes.io/region";
/// Zones up to this size stop tainting entirely when partially disrupted.
const LARGE_CLUSTER_THRESHOLD: usize = 50;
const UNHEALTHY_ZONE_THRESHOLD: f64 = 0.55;

/// What the node lifecycle controller should do now. Node and pod lists are sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePlan {
    /// Set Ready, MemoryPressure, DiskPressure and PIDPressure to Unknown (reason
    /// `NodeStatusUnknown`, message "Kubelet stopped posting node status."); build the new
    /// conditions with [`unknown_conditions`].
    pub mark_unknown: Vec<String>,
    /// Add `node.kubernetes.io/unreachable:NoExecute` with timeAdded = now ([`unreachable_taint`]),
    /// removing a `not-ready` NoExecute taint if present (Kubernetes swaps them in one update).
    pub add_unreachable_taint: Vec<String>,
    /// Add `node.kubernetes.io/not-ready:NoExecute` ([`not_ready_taint`]), removing an
    /// `unreachable` NoExecute taint if present.
    pub add_not_ready_taint: Vec<String>,
    /// Node is healthy again (or the cluster is in disruption mode): remove both NoExecute taints.
    pub remove_taints: Vec<String>,
    /// Delete these pods (namespace, name): they do not tolerate a NoExecute taint of their node,
    /// or their `tolerationSeconds` ran out since the taint's `timeAdded`.
    pub evict: Vec<(String, String)>,
    /// Set the pod's Ready condition to False (its node's Ready is not True).
    pub mark_pods_not_ready: Vec<(String, String)>,
    /// Seconds until the next change that time alone will cause (a heartbeat going stale, a
    /// toleration running out); `Some(0)` after adding taints, whose evictions come next pass.
    pub requeue_after: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// Plans node health for all `nodes` at time `now` (unix seconds). `leases` may contain any
/// Leases; only those in `kube-node-lease` named after a node count as its heartbeat. A node is
/// lost when `now` is more than `grace_secs` past its last heartbeat (the later of the Lease's
/// `renewTime` and the Ready condition's `lastHeartbeatTime`; for a node that never reported
/// Ready, its creation time).
pub fn plan(nodes: &[Node], leases: &[Lease], pods: &[Pod], now: i64, grace_secs: i64) -> NodePlan {
    plan_since(nodes, leases, pods, now, grace_secs, i64::MIN)
}

/// [`plan`] for a controller that started at `since`: no heartbeat counts as older than that.
/// A new leader thus gives every node one grace period to show its lease, as Kubernetes'
/// node lifecycle controller does by timing heartbeats from when it first observes them: after
/// the control plane was down (a cold restart, a long election) the agents' last renewals are
/// old through no fault of theirs, and marking their nodes lost would evict healthy pods.
pub fn plan_since(nodes: &[Node], leases: &[Lease], pods: &[Pod], now: i64, grace_secs: i64, since: i64) -> NodePlan {
    let grace = grace_secs.max(0);
    let renewals: HashMap<&str, i64> = leases
        .iter()
        .filter(|l| l.metadata.namespace.as_deref() == Some(NODE_LEASE_NAMESPACE))
        .filter_map(|l| {
            let name = l.metadata.name.as_deref()?;
            let renew = l.spec.as_ref()?.renew_time.as_ref()?.0.as_second();
            Some((name, renew))
        })
        .collect();

    let mut out = NodePlan::default();
    let mut requeue = Requeue::default();
    // Effective Ready status per node after this plan's condition updates, and its zone.
    let mut health: Vec<(&Node, String, Option<&'static str>)> = Vec::new();
    let mut zones: BTreeMap<String, Vec<bool>> = BTreeMap::new();

    for node in nodes {
        let Some(name) = node.metadata.name.clone() else { continue };
        let ready = condition(node, "Ready");
        let heartbeat = ready.and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0.as_second());
        let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second());
        let probe = [renewals.get(name.as_str()).copied(), if ready.is_some() { heartbeat } else { created }]
            .into_iter()
            .flatten()
            .max()
            .map(|p| p.max(since));
        let stale = probe.is_some_and(|p| now > p.saturating_add(grace));
        if let Some(p) = probe
            && !stale
        {
            requeue.at(p.saturating_add(grace).saturating_add(1).saturating_sub(now));
        }
        let effective = if stale {
            let all_unknown =
                CONDITIONS_SET_UNKNOWN.iter().all(|t| condition(node, t).is_some_and(|c| c.status == "Unknown"));
            if !all_unknown {
                out.mark_unknown.push(name.clone());
            }
            Some("Unknown")
        } else {
            // A node without a Ready condition inside its grace is left alone, as Kubernetes does.
            ready.map(|c| match c.status.as_str() {
                "True" => "True",
                "False" => "False",
                _ => "Unknown",
            })
        };
        if !node.metadata.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_EXCLUDE_DISRUPTION)) {
            zones.entry(zone_key(node)).or_default().push(effective == Some("True"));
        }
        health.push((node, name, effective));
    }

    let zone_states: BTreeMap<String, ZoneState> = zones.iter().map(|(z, r)| (z.clone(), zone_state(r))).collect();
    let all_fully_disrupted = !zone_states.is_empty() && zone_states.values().all(|s| *s == ZoneState::FullDisruption);

    for (node, name, effective) in &health {
        let has_unreachable = has_no_execute(node, TAINT_UNREACHABLE);
        let has_not_ready = has_no_execute(node, TAINT_NOT_READY);
        let small_partial = zone_states.get(&zone_key(node)) == Some(&ZoneState::PartialDisruption)
            && zones.get(&zone_key(node)).is_some_and(|r| r.len() <= LARGE_CLUSTER_THRESHOLD);
        let may_taint = !all_fully_disrupted && !small_partial;
        if all_fully_disrupted {
            if has_unreachable || has_not_ready {
                out.remove_taints.push(name.clone());
            }
        } else {
            match *effective {
                Some("True") if has_unreachable || has_not_ready => out.remove_taints.push(name.clone()),
                // A swap between the two taints is immediate in Kubernetes, not rate limited.
                Some("False") if !has_not_ready && (has_unreachable || may_taint) => {
                    out.add_not_ready_taint.push(name.clone())
                }
                Some("Unknown") if !has_unreachable && (has_not_ready || may_taint) => {
                    out.add_unreachable_taint.push(name.clone())
                }
                _ => {}
            }
        }

        let on_node =
            pods.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()));
        if effective.is_some_and(|s| s != "True") {
            for pod in on_node.clone() {
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
                if ready.is_some_and(|c| c.status != "False") {
                    out.mark_pods_not_ready.push(pod_key(pod));
                }
            }
        }

        if out.remove_taints.last() == Some(name) {
            continue;
        }
        let taints: Vec<&Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.effect == "NoExecute")
            .collect();
        if taints.is_empty() {
            continue;
        }
        for pod in on_node.filter(|p| p.metadata.deletion_timestamp.is_none()) {
            let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
            match eviction_time(&taints, tolerations) {
                Eviction::Now => out.evict.push(pod_key(pod)),
                Eviction::Never => {}
                Eviction::At(t) if t <= now => out.evict.push(pod_key(pod)),
                Eviction::At(t) => requeue.at(t.saturating_sub(now)),
            }
        }
    }

    if !out.add_not_ready_taint.is_empty() || !out.add_unreachable_taint.is_empty() {
        requeue.at(0);
    }
    for list in
        [&mut out.mark_unknown, &mut out.add_unreachable_taint, &mut out.add_not_ready_taint, &mut out.remove_taints]
    {
        list.sort();
        list.dedup();
    }
    out.evict.sort();
    out.evict.dedup();
    out.mark_pods_not_ready.sort();
    out.mark_pods_not_ready.dedup();
    out.requeue_after = requeue.0;
    out
}

/// The node's conditions with Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown,
/// as the node lifecycle controller writes them: a condition that was not Unknown gets reason
/// `NodeStatusUnknown` and lastTransitionTime = now; a missing one is added with reason
/// `NodeStatusNeverUpdated` and lastHeartbeatTime = the node's creation time. Other conditions
/// are kept as they are.
pub fn unknown_conditions(node: &Node, now: i64) -> Vec<NodeCondition> {
    let mut conditions = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    for type_ in CONDITIONS_SET_UNKNOWN {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".to_string();
                c.reason = Some(REASON_UNKNOWN.to_string());
                c.message = Some(MESSAGE_UNKNOWN.to_string());
                c.last_transition_time = Some(time(now));
            }
            Some(_) => {}
            None => conditions.push(NodeCondition {
                type_: type_.to_string(),
                status: "Unknown".to_string(),
                reason: Some(REASON_NEVER_UPDATED.to_string()),
                message: Some(MESSAGE_NEVER_UPDATED.to_string()),
                last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                last_transition_time: Some(time(now)),
            }),
        }
    }
    conditions
}

/// `node.kubernetes.io/unreachable:NoExecute` added at `now`.
pub fn unreachable_taint(now: i64) -> Taint {
    Taint {
        key: TAINT_UNREACHABLE.to_string(),
        effect: "NoExecute".to_string(),
        value: None,
        time_added: Some(time(now)),
    }
}

/// `node.kubernetes.io/not-ready:NoExecute` added at `now`.
pub fn not_ready_taint(now: i64) -> Taint {
    Taint {
        key: TAINT_NOT_READY.to_string(),
        effect: "NoExecute".to_string(),
        value: None,
        time_added: Some(time(now)),
    }
}

// === Helpers ===

/// Smallest positive delay seen so far.
#[derive(Default)]
struct Requeue(Option<i64>);

impl Requeue {
    fn at(&mut self, delay: i64) {
        let delay = delay.max(0);
        self.0 = Some(self.0.map_or(delay, |d| d.min(delay)));
    }
}

enum Eviction {
    Now,
    At(i64),
    Never,
}

/// When a pod on a node with these NoExecute taints must go (taint eviction controller):
/// now if some taint is not tolerated; never if every toleration used is unbounded; otherwise the
/// smallest `tolerationSeconds` (≤ 0 meaning 0) after the earliest `timeAdded` of the taints. A
/// taint without `timeAdded` counts as added long ago, since no first observation is remembered.
fn eviction_time(taints: &[&Taint], tolerations: &[Toleration]) -> Eviction {
    let mut used: Vec<&Toleration> = Vec::new();
    for taint in taints {
        match tolerations.iter().find(|t| tolerates(t, taint)) {
            Some(t) => used.push(t),
            None => return Eviction::Now,
        }
    }
    let seconds = used.iter().filter_map(|t| t.toleration_seconds).map(|s| s.max(0)).min();
    let Some(seconds) = seconds else { return Eviction::Never };
    let since =
        taints.iter().map(|t| t.time_added.as_ref().map_or(i64::MIN, |ta| ta.0.as_second())).min().unwrap_or(i64::MIN);
    Eviction::At(since.saturating_add(seconds))
}

fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
        return false;
    }
    if toleration.key.as_deref().is_some_and(|k| !k.is_empty() && k != taint.key) {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// `ComputeZoneState`: no Ready node → full disruption; more than 2 and at least 55 % not Ready →
/// partial disruption.
fn zone_state(ready: &[bool]) -> ZoneState {
    let ready_count = ready.iter().filter(|r| **r).count();
    let not_ready = ready.len() - ready_count;
    if ready_count == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / ready.len() as f64 >= UNHEALTHY_ZONE_THRESHOLD {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

fn zone_key(node: &Node) -> String {
    let label = |k: &str| node.metadata.labels.as_ref().and_then(|l| l.get(k)).cloned().unwrap_or_default();
    format!("{}:\u{0}:{}", label(LABEL_REGION), label(LABEL_ZONE))
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn has_no_execute(node: &Node, key: &str) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == key && t.effect == "NoExecute"))
}

fn pod_key(pod: &Pod) -> (String, String) {
    (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default())
}

fn time(unix: i64) -> Time {
    Time(Timestamp::from_second(unix).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000;

    struct NodeB(Node);
    fn node(name: &str) -> NodeB {
        NodeB(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(time(NOW - 3600)),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus::default()),
        })
    }
    impl NodeB {
        /// Ready condition with status and heartbeat `age` seconds ago.
        fn ready(mut self, status: &str, age: i64) -> Self {
            let c = NodeCondition {
                type_: "Ready".into(),
                status: status.into(),
                last_heartbeat_time: Some(time(NOW - age)),
                ..Default::default()
            };
            self.0.status.as_mut().unwrap().conditions.get_or_insert_with(Vec::new).push(c);
            self
        }
        fn cond(mut self, type_: &str, status: &str) -> Self {
            let c = NodeCondition { type_: type_.into(), status: status.into(), ..Default::default() };
            self.0.status.as_mut().unwrap().conditions.get_or_insert_with(Vec::new).push(c);
            self
        }
        fn taint(mut self, key: &str, added_ago: Option<i64>) -> Self {
            let t = Taint {
                key: key.into(),
                effect: "NoExecute".into(),
                value: None,
                time_added: added_ago.map(|a| time(NOW - a)),
            };
            self.0.spec.as_mut().unwrap().taints.get_or_insert_with(Vec::new).push(t);
            self
        }
        fn zone(mut self, z: &str) -> Self {
            self.0.metadata.labels.get_or_insert_with(Default::default).insert(LABEL_ZONE.into(), z.into());
            self
        }
    }

    fn lease(node: &str, age: i64) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(node.into()),
                namespace: Some(NODE_LEASE_NAMESPACE.into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(Timestamp::from_second(NOW - age).unwrap())),
                ..Default::default()
            }),
        }
    }

    struct PodB(Pod);
    fn pod(name: &str, node: &str) -> PodB {
        PodB(Pod {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some("default".into()), ..Default::default() },
            spec: Some(PodSpec { node_name: Some(node.into()), ..Default::default() }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
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
        fn tolerate(mut self, key: &str, seconds: Option<i64>) -> Self {
            let t = Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: seconds,
                value: None,
            };
            self.0.spec.as_mut().unwrap().tolerations.get_or_insert_with(Vec::new).push(t);
            self
        }
    }

    fn nodes(v: Vec<NodeB>) -> Vec<Node> {
        v.into_iter().map(|n| n.0).collect()
    }
    fn pods(v: Vec<PodB>) -> Vec<Pod> {
        v.into_iter().map(|p| p.0).collect()
    }
    fn key(name: &str) -> (String, String) {
        ("default".into(), name.into())
    }

    #[test]
    fn a_new_controller_gives_every_node_one_grace_period() {
        let ns = nodes(vec![node("a").ready("True", 60)]);
        // The lease is long expired, but this controller only started 5 s ago.
        let p = plan_since(&ns, &[lease("a", 30)], &[], NOW, 10, NOW - 5);
        assert!(p.mark_unknown.is_empty());
        assert_eq!(p.requeue_after, Some(6), "checked again when the grace period ends");
        let p = plan_since(&ns, &[lease("a", 30)], &[], NOW, 10, NOW - 11);
        assert_eq!(p.mark_unknown, vec!["a"]);
    }

    #[test]
    fn healthy_cluster_needs_nothing_and_requeues_at_the_next_deadline() {
        let ns = nodes(vec![node("a").ready("True", 3), node("b").ready("True", 1)]);
        let p = plan(&ns, &[lease("a", 2)], &pods(vec![pod("x", "a")]), NOW, 10);
        // a's freshest heartbeat is the lease, 2 s ago: stale after 10 - 2 + 1 = 9 s; b after 10.
        assert_eq!(p, NodePlan { requeue_after: Some(9), ..Default::default() });
    }

    #[test]
    fn lost_node_goes_unknown_gets_tainted_and_its_pods_not_ready() {
        let ns = nodes(vec![node("a").ready("True", 60), node("b").ready("True", 1), node("c").ready("True", 1)]);
        let p = plan(&ns, &[lease("a", 30)], &pods(vec![pod("x", "a"), pod("y", "b")]), NOW, 10);
        assert_eq!(p.mark_unknown, vec!["a"]);
        assert_eq!(p.add_unreachable_taint, vec!["a"]);
        assert_eq!(p.mark_pods_not_ready, vec![key("x")]);
        assert!(p.evict.is_empty(), "evictions wait for the taint to be on the node");
        assert_eq!(p.requeue_after, Some(0));
    }

    #[test]
    fn fresh_lease_keeps_a_node_alive_even_with_old_status() {
        let ns = nodes(vec![node("a").ready("True", 300), node("b").ready("True", 1)]);
        assert!(plan(&ns, &[lease("a", 1)], &[], NOW, 10).mark_unknown.is_empty());
        // A lease in another namespace is not a heartbeat.
        let mut other = lease("a", 1);
        other.metadata.namespace = Some("default".into());
        assert_eq!(plan(&ns, &[other], &[], NOW, 10).mark_unknown, vec!["a"]);
    }

    #[test]
    fn reported_not_ready_gets_the_not_ready_taint_and_swaps_unreachable() {
        let ns = nodes(vec![node("a").ready("False", 1), node("b").ready("True", 1), node("c").ready("True", 1)]);
        let p = plan(&ns, &[], &[], NOW, 10);
        assert_eq!(p.add_not_ready_taint, vec!["a"]);
        assert!(p.mark_unknown.is_empty());
        let ns = nodes(vec![node("a").ready("False", 1).taint(TAINT_UNREACHABLE, Some(5)), node("b").ready("True", 1)]);
        assert_eq!(plan(&ns, &[], &[], NOW, 10).add_not_ready_taint, vec!["a"]);
    }

    #[test]
    fn healthy_again_removes_taints() {
        let ns =
            nodes(vec![node("a").ready("True", 1).taint(TAINT_UNREACHABLE, Some(100)), node("b").ready("True", 1)]);
        let p = plan(&ns, &[], &pods(vec![pod("x", "a")]), NOW, 10);
        assert_eq!(p.remove_taints, vec!["a"]);
        assert!(p.evict.is_empty(), "no eviction on a node whose taints are being removed");
    }

    #[test]
    fn evictions_follow_tolerations() {
        // Taint added 100 s ago. The default 300 s toleration waits; 60 s expired; none evicts now;
        // unbounded never.
        let ns = nodes(vec![
            node("a").ready("Unknown", 200).taint(TAINT_UNREACHABLE, Some(100)),
            node("b").ready("True", 1),
            node("c").ready("True", 1),
        ]);
        let ps = pods(vec![
            pod("default-300", "a").tolerate(TAINT_UNREACHABLE, Some(300)),
            pod("short-60", "a").tolerate(TAINT_UNREACHABLE, Some(60)),
            pod("none", "a"),
            pod("forever", "a").tolerate(TAINT_UNREACHABLE, None),
            pod("zero", "a").tolerate(TAINT_UNREACHABLE, Some(-5)),
            pod("elsewhere", "b"),
        ]);
        // A long grace keeps heartbeat deadlines out of the way of the toleration deadline.
        let p = plan(&ns, &[], &ps, NOW, 1000);
        assert_eq!(p.evict, vec![key("none"), key("short-60"), key("zero")]);
        assert_eq!(p.requeue_after, Some(200));
    }

    #[test]
    fn pods_already_deleting_are_not_evicted_twice() {
        let ns = nodes(vec![
            node("a").ready("Unknown", 200).taint(TAINT_UNREACHABLE, Some(100)),
            node("b").ready("True", 1),
        ]);
        let mut gone = pod("gone", "a");
        gone.0.metadata.deletion_timestamp = Some(time(NOW - 1));
        assert!(plan(&ns, &[], &pods(vec![gone]), NOW, 10).evict.is_empty());
    }

    #[test]
    fn taint_without_time_added_counts_as_old() {
        let ns =
            nodes(vec![node("a").ready("Unknown", 200).taint(TAINT_UNREACHABLE, None), node("b").ready("True", 1)]);
        let ps = pods(vec![pod("p", "a").tolerate(TAINT_UNREACHABLE, Some(300))]);
        assert_eq!(plan(&ns, &[], &ps, NOW, 10).evict, vec![key("p")]);
    }

    #[test]
    fn all_nodes_down_is_master_disruption_mode() {
        // Every zone without a Ready node: no taints, existing ones removed, no evictions.
        let ns =
            nodes(vec![node("a").ready("True", 60), node("b").ready("True", 60).taint(TAINT_UNREACHABLE, Some(100))]);
        let p = plan(&ns, &[], &pods(vec![pod("x", "b")]), NOW, 10);
        assert_eq!(p.mark_unknown, vec!["a", "b"]);
        assert!(p.add_unreachable_taint.is_empty());
        assert_eq!(p.remove_taints, vec!["b"]);
        assert!(p.evict.is_empty());
        assert_eq!(p.mark_pods_not_ready, vec![key("x")]);
    }

    #[test]
    fn one_lost_zone_among_healthy_ones_is_tainted() {
        let ns = nodes(vec![node("a").zone("z1").ready("True", 60), node("b").zone("z2").ready("True", 1)]);
        assert_eq!(plan(&ns, &[], &[], NOW, 10).add_unreachable_taint, vec!["a"]);
    }

    #[test]
    fn small_partially_disrupted_zone_stops_tainting() {
        // 3 of 4 nodes lost in z1 (≥ 55 %, more than 2) while z2 is fine: no new taints in z1.
        let ns = nodes(vec![
            node("a").zone("z1").ready("True", 60),
            node("b").zone("z1").ready("True", 60),
            node("c").zone("z1").ready("True", 60),
            node("d").zone("z1").ready("True", 1),
            node("e").zone("z2").ready("True", 1),
        ]);
        let p = plan(&ns, &[], &[], NOW, 10);
        assert_eq!(p.mark_unknown, vec!["a", "b", "c"]);
        assert!(p.add_unreachable_taint.is_empty());
    }

    #[test]
    fn excluded_nodes_do_not_count_for_disruption() {
        let mut cp = node("cp").ready("True", 1);
        cp.0.metadata.labels.get_or_insert_with(Default::default).insert(LABEL_EXCLUDE_DISRUPTION.into(), "".into());
        let ns = nodes(vec![cp, node("a").ready("True", 60)]);
        // Only "a" counts, and it is down: disruption mode, no taint.
        assert!(plan(&ns, &[], &[], NOW, 10).add_unreachable_taint.is_empty());
    }

    #[test]
    fn node_that_never_reported_uses_creation_time() {
        let mut young = node("young");
        young.0.metadata.creation_timestamp = Some(time(NOW - 5));
        let ns = nodes(vec![young, node("old"), node("ok").ready("True", 1)]);
        let p = plan(&ns, &[], &[], NOW, 10);
        assert_eq!(p.mark_unknown, vec!["old"]);
        assert_eq!(p.add_unreachable_taint, vec!["old"]);
    }

    #[test]
    fn already_unknown_is_not_marked_again() {
        let n = node("a")
            .ready("Unknown", 60)
            .cond("MemoryPressure", "Unknown")
            .cond("DiskPressure", "Unknown")
            .cond("PIDPressure", "Unknown")
            .taint(TAINT_UNREACHABLE, Some(5));
        let ns = nodes(vec![n, node("b").ready("True", 1)]);
        let p = plan(&ns, &[], &[], NOW, 10);
        assert!(p.mark_unknown.is_empty());
        assert!(p.add_unreachable_taint.is_empty());
    }

    #[test]
    fn pods_already_not_ready_are_left_alone() {
        let ns = nodes(vec![node("a").ready("Unknown", 60), node("b").ready("True", 1)]);
        let mut p = pod("x", "a");
        p.0.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        assert!(plan(&ns, &[], &pods(vec![p]), NOW, 10).mark_pods_not_ready.is_empty());
    }

    #[test]
    fn unknown_conditions_are_built_like_kubernetes() {
        let n = node("a").ready("True", 60).cond("MemoryPressure", "False").0;
        let cs = unknown_conditions(&n, NOW);
        let ready = cs.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("Unknown", Some(REASON_UNKNOWN)));
        assert_eq!(ready.message.as_deref(), Some(MESSAGE_UNKNOWN));
        assert_eq!(ready.last_transition_time, Some(time(NOW)));
        let disk = cs.iter().find(|c| c.type_ == "DiskPressure").unwrap();
        assert_eq!(disk.reason.as_deref(), Some(REASON_NEVER_UPDATED));
        assert_eq!(cs.len(), 4);
        assert_eq!(unreachable_taint(NOW).time_added, Some(time(NOW)));
    }

    #[test]
    fn plan_is_independent_of_input_order() {
        let ns = nodes(vec![
            node("a").ready("Unknown", 200).taint(TAINT_UNREACHABLE, Some(100)),
            node("b").ready("True", 60),
            node("c").ready("False", 1),
            node("d").ready("True", 1),
        ]);
        let ps = pods(vec![pod("p1", "a"), pod("p2", "b"), pod("p3", "c").tolerate(TAINT_NOT_READY, Some(10))]);
        let forward = plan(&ns, &[], &ps, NOW, 10);
        let mut rn = ns.clone();
        rn.reverse();
        let mut rp = ps.clone();
        rp.reverse();
        assert_eq!(forward, plan(&rn, &[], &rp, NOW, 10));
    }

    proptest! {
        /// Random clusters at random times: a node gets at most one taint action, evictions only
        /// hit pods that are on a NoExecute-tainted node and not already deleting, the plan does
        /// not depend on input order, and nothing panics (even at extreme times).
        #[test]
        fn plan_is_consistent(
            specs in proptest::collection::vec(
                (prop_oneof![Just("True"), Just("False"), Just("Unknown"), Just("")], 0i64..100, any::<bool>(), proptest::option::of(0i64..400), 0u8..2),
                0..6,
            ),
            pod_specs in proptest::collection::vec((0usize..6, proptest::option::of(-10i64..500), any::<bool>()), 0..10),
            now_offset in prop_oneof![Just(0i64), -1000i64..1000, Just(i64::MAX / 2), Just(i64::MIN / 2)],
            grace in 0i64..60,
        ) {
            let now = NOW.saturating_add(now_offset);
            let ns: Vec<Node> = specs
                .iter()
                .enumerate()
                .map(|(i, (ready, age, lease_only, taint_age, zone))| {
                    let mut b = node(&format!("n{i}")).zone(&format!("z{zone}"));
                    if !ready.is_empty() && !lease_only {
                        b = b.ready(ready, *age);
                    }
                    if let Some(a) = taint_age {
                        b = b.taint(if i % 2 == 0 { TAINT_UNREACHABLE } else { TAINT_NOT_READY }, Some(*a));
                    }
                    b.0
                })
                .collect();
            let leases: Vec<Lease> = specs.iter().enumerate().filter(|(_, s)| s.2).map(|(i, s)| lease(&format!("n{i}"), s.1)).collect();
            let ps: Vec<Pod> = pod_specs
                .iter()
                .enumerate()
                .map(|(i, (n, seconds, deleting))| {
                    let mut b = pod(&format!("p{i}"), &format!("n{n}"));
                    if let Some(s) = seconds {
                        b = b.tolerate(TAINT_UNREACHABLE, Some(*s)).tolerate(TAINT_NOT_READY, Some(*s));
                    }
                    if *deleting {
                        b.0.metadata.deletion_timestamp = Some(time(NOW));
                    }
                    b.0
                })
                .collect();
            let p = plan(&ns, &leases, &ps, now, grace);
            for n in &ns {
                let name = n.metadata.name.clone().unwrap();
                let actions = [&p.add_unreachable_taint, &p.add_not_ready_taint, &p.remove_taints]
                    .iter()
                    .filter(|l| l.contains(&name))
                    .count();
                prop_assert!(actions <= 1, "{name} got {actions} taint actions");
            }
            for (_, pod_name) in &p.evict {
                let pod = ps.iter().find(|x| x.metadata.name.as_deref() == Some(pod_name.as_str())).unwrap();
                prop_assert!(pod.metadata.deletion_timestamp.is_none());
                let node_name = pod.spec.as_ref().unwrap().node_name.clone().unwrap();
                let n = ns.iter().find(|n| n.metadata.name.as_deref() == Some(node_name.as_str())).unwrap();
                prop_assert!(has_no_execute(n, TAINT_UNREACHABLE) || has_no_execute(n, TAINT_NOT_READY));
                prop_assert!(!p.remove_taints.contains(&node_name));
            }
            prop_assert!(p.requeue_after.is_none_or(|r| r >= 0));
            let mut rn = ns.clone();
            rn.reverse();
            let mut rp = ps.clone();
            rp.reverse();
            prop_assert_eq!(&p, &plan(&rn, &leases, &rp, now, grace));
        }
    }
}
