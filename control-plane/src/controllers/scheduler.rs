//! Scheduler: where a pending pod should run, decided without I/O.
//!
//! The decision follows kube-scheduler's default profile, reduced to the plugins rk needs:
//!
//! ```text
//!   pod ──► filters, per node, first failure wins ──► feasible nodes ──► scores ──► best node
//!           NodeUnschedulable                                            TaintToleration ×3
//!           NodeName                                                     NodeAffinity    ×2
//!           TaintToleration (incl. not-ready/unreachable)                LeastAllocated  ×1
//!           NodeAffinity (nodeSelector + required terms)                 BalancedAlloc   ×1
//!           NodePorts                                                    owner spread    ×2
//!           NodeResourcesFit (pods, cpu, memory)
//! ```
//!
//! When no node passes, the message is kube-scheduler's `FailedScheduling` text: each node
//! contributes the reasons of the first filter that rejected it, reasons are counted and the
//! `"<count> <reason>"` strings sorted, then the preemption sentence is appended (rk has no
//! preemption, so a node rejected for resources or ports reports "No preemption victims found
//! for incoming pod", exactly what Kubernetes says when no lower-priority pod could be evicted):
//!
//! ```text
//! 0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: },
//! 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for
//! scheduling, 2 No preemption victims found for incoming pod.
//! ```
//!
//! Start at [`node_infos`] (build the per-node view) and [`schedule`] (one pod). A batch of
//! pending pods is scheduled by calling [`schedule`] once per pod with the same `&mut [NodeInfo]`:
//! every `Bind` is accounted in the chosen node ("assumed", as kube-scheduler's cache does), so
//! the next pod sees the resources, ports and owner spread the previous ones took.
//!
//! Quantities (`"100m"`, `"0.5"`, `"128Mi"`, `"1e3"`) are parsed by [`parse_quantity`] /
//! [`parse_quantity_milli`], which round up like `resource.Quantity.Value()` / `MilliValue()`.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Highest score a plugin gives one node (kube-scheduler's `MaxNodeScore`).
const MAX_NODE_SCORE: i64 = 100;
/// CPU a container without a cpu request is assumed to use when *scoring* (not when filtering).
const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory a container without a memory request is assumed to use when *scoring*.
const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

// Plugin weights of the default profile (pkg/scheduler/apis/config/v1/default_plugins.go).
const WEIGHT_TAINT_TOLERATION: i64 = 3;
const WEIGHT_NODE_AFFINITY: i64 = 2;
const WEIGHT_LEAST_ALLOCATED: i64 = 1;
const WEIGHT_BALANCED_ALLOCATION: i64 = 1;
const WEIGHT_OWNER_SPREAD: i64 = 2;

const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
const REASON_TOO_MANY_PODS: &str = "Too many pods";
const REASON_INSUFFICIENT_CPU: &str = "Insufficient cpu";
const REASON_INSUFFICIENT_MEMORY: &str = "Insufficient memory";
const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const PREEMPTION_NO_VICTIMS: &str = "No preemption victims found for incoming pod";

// === Quantities ===

/// Why a resource quantity string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string is empty.
    #[error("quantity is empty")]
    Empty,
    /// The numeric part is not `digits[.digits]` with an optional sign.
    #[error("quantity {0:?} does not start with a number")]
    Number(String),
    /// The suffix is none of the SI, binary-SI or `e<exponent>` forms.
    #[error("quantity {0:?} has an unknown suffix")]
    Suffix(String),
    /// The value does not fit in a signed 64-bit integer of the requested unit.
    #[error("quantity {0:?} is too large")]
    TooLarge(String),
}

/// Parses a quantity and returns `ceil(value)`, like `resource.Quantity.Value()`
/// (`"128Mi"` → 134217728, `"1G"` → 1000000000, `"1e3"` → 1000, `"0.5"` → 1).
pub fn parse_quantity(s: &str) -> Result<i64, QuantityError> {
    parse_scaled(s, 0)
}

/// Parses a quantity and returns `ceil(value * 1000)`, like `resource.Quantity.MilliValue()`
/// (`"100m"` → 100, `"0.5"` → 500, `"2"` → 2000).
pub fn parse_quantity_milli(s: &str) -> Result<i64, QuantityError> {
    parse_scaled(s, 3)
}

/// `ceil(value * 10^scale)`, computed exactly on integers.
fn parse_scaled(input: &str, scale: i32) -> Result<i64, QuantityError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(QuantityError::Empty);
    }
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(QuantityError::Number(input.to_string()));
    }
    let (pow2, exp10): (u32, i32) = match suffix {
        "" => (0, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        other => {
            let exponent = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))
                .ok_or_else(|| QuantityError::Suffix(input.to_string()))?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Suffix(input.to_string()));
            }
            let e: i32 = exponent.parse().map_err(|_| QuantityError::TooLarge(input.to_string()))?;
            (0, e)
        }
    };
    let too_large = || QuantityError::TooLarge(input.to_string());
    // Mantissa as an integer, with the decimal point folded into the exponent.
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mut mantissa: i128 = 0;
    for b in digits.bytes() {
        mantissa = mantissa.checked_mul(10).and_then(|m| m.checked_add(i128::from(b - b'0'))).ok_or_else(too_large)?;
    }
    mantissa = mantissa.checked_mul(1i128 << pow2).ok_or_else(too_large)?;
    let frac_len = i32::try_from(frac_part.len()).map_err(|_| too_large())?;
    let exponent = exp10.checked_sub(frac_len).and_then(|e| e.checked_add(scale)).ok_or_else(too_large)?;
    let magnitude: i128 = if mantissa == 0 {
        0
    } else if exponent >= 0 {
        let factor = 10i128.checked_pow(exponent.unsigned_abs()).ok_or_else(too_large)?;
        mantissa.checked_mul(factor).ok_or_else(too_large)?
    } else {
        match 10i128.checked_pow(exponent.unsigned_abs()) {
            // Rounding up a positive value, down (towards +inf) a negative one.
            Some(divisor) if negative => mantissa / divisor,
            Some(divisor) => mantissa / divisor + i128::from(mantissa % divisor != 0),
            // Divisor beyond i128: the value is a tiny fraction.
            None if negative => 0,
            None => 1,
        }
    };
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| too_large())
}

// === Node view ===

/// cpu (millicores), memory (bytes) and pod count; one resource vector of the scheduler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub pods: i64,
}

/// A host port taken on a node: (host IP, protocol, port), with `""` IP as `0.0.0.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

/// What the scheduler knows about one node: its labels, taints and capacity, plus what the pods
/// bound to it (and the pods assumed onto it during this pass) use.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.taints`, followed by the NoSchedule taint the node lifecycle controller would put on a
    /// node whose Ready condition is not True (`not-ready` for False, `unreachable` for Unknown or
    /// missing), unless the node already carries it. This is how Kubernetes keeps pods off nodes
    /// that are not ready, and how a pod that tolerates that taint (a DaemonSet's) still gets one.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `status.allocatable` (missing or unparsable entries count as 0).
    pub allocatable: Resources,
    /// Sum of the requests of the pods on the node, and their count in `pods`.
    pub requested: Resources,
    /// Like `requested`, but a container without a cpu/memory request counts as 100m / 200Mi.
    /// Used only for LeastAllocated scoring, as kube-scheduler's `NonZeroRequested`.
    pub non_zero_requested: Resources,
    pub used_ports: Vec<HostPort>,
    /// Pods per controller-owner uid that [`schedule`] bound here during this pass; added to the
    /// caller's `owner_counts` so a batch spreads like pods bound one at a time.
    pub assumed_owner_counts: HashMap<String, usize>,
}

/// Builds one [`NodeInfo`] per node, sorted by name, from the nodes and every pod: only
/// non-terminal pods with `spec.nodeName` count (terminating pods still hold their resources,
/// as in kube-scheduler's cache, until they are gone).
pub fn node_infos(nodes: &[Node], pods: &[Pod]) -> Vec<NodeInfo> {
    let mut infos: Vec<NodeInfo> = nodes.iter().map(node_info).collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let index: HashMap<String, usize> = infos.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
    for pod in pods {
        if is_terminal(pod) {
            continue;
        }
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else { continue };
        if let Some(info) = index.get(node).and_then(|&i| infos.get_mut(i)) {
            // A bound pod with a malformed quantity is already running: count what can be read.
            let request = pod_request(pod, false).unwrap_or_default();
            let non_zero = pod_request(pod, true).unwrap_or_default();
            add_pod(info, request, non_zero, host_ports(pod));
        }
    }
    infos
}

fn node_info(node: &Node) -> NodeInfo {
    let name = node.metadata.name.clone().unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let spec = node.spec.as_ref();
    let mut taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    let condition_taint = match ready {
        Some("True") => None,
        Some("False") => Some(TAINT_NOT_READY),
        _ => Some(TAINT_UNREACHABLE),
    };
    if let Some(key) = condition_taint
        && !taints.iter().any(|t| t.key == key && t.effect == "NoSchedule")
    {
        taints.push(Taint { key: key.to_string(), effect: "NoSchedule".to_string(), ..Default::default() });
    }
    let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let get = |name: &str, milli: bool| -> i64 {
        let parsed = allocatable
            .and_then(|a| a.get(name))
            .map(|q| if milli { parse_quantity_milli(&q.0) } else { parse_quantity(&q.0) });
        parsed.and_then(Result::ok).unwrap_or(0).max(0)
    };
    NodeInfo {
        name,
        labels,
        taints,
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        allocatable: Resources { milli_cpu: get("cpu", true), memory: get("memory", false), pods: get("pods", false) },
        requested: Resources::default(),
        non_zero_requested: Resources::default(),
        used_ports: Vec::new(),
        assumed_owner_counts: HashMap::new(),
    }
}

fn add_pod(info: &mut NodeInfo, request: Resources, non_zero: Resources, ports: Vec<HostPort>) {
    for (total, add) in [(&mut info.requested, request), (&mut info.non_zero_requested, non_zero)] {
        total.milli_cpu = total.milli_cpu.saturating_add(add.milli_cpu);
        total.memory = total.memory.saturating_add(add.memory);
        total.pods = total.pods.saturating_add(1);
    }
    info.used_ports.extend(ports);
}

/// Counts bound, non-terminal pods per (controller owner uid, node name): the usual value of
/// [`schedule`]'s `owner_counts`.
pub fn owner_counts(pods: &[Pod]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for pod in pods.iter().filter(|p| !is_terminal(p)) {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        if let (Some(owner), Some(node)) = (controller_uid(pod), node) {
            *counts.entry((owner, node)).or_insert(0) += 1;
        }
    }
    counts
}

// === Scheduling ===

/// Outcome of [`schedule`] for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Bind the pod to this node (already accounted in that node's [`NodeInfo`]).
    Bind(String),
    /// No node fits; the message is the `PodScheduled=False` / `FailedScheduling` text.
    Unschedulable(String),
}

/// How a filter failure may be resolved, as kube-scheduler's status codes; decides the
/// preemption sentence of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    /// Removing pods from the node could help (resources, ports).
    Unschedulable,
    /// Nothing about the pods on the node would help (taints, affinity, cordon).
    Unresolvable,
}

/// The pod's requirements, computed once per scheduling attempt (kube-scheduler's PreFilter).
struct PodDemand<'a> {
    request: Resources,
    non_zero: Resources,
    ports: Vec<HostPort>,
    tolerations: &'a [Toleration],
    node_name: Option<&'a str>,
    node_selector: Option<&'a BTreeMap<String, String>>,
    required_terms: Option<&'a [NodeSelectorTerm]>,
    preferred_terms: &'a [PreferredSchedulingTerm],
    owner: Option<String>,
}

/// Chooses a node for `pod` among `nodes`, or explains why none fits.
///
/// `owner_counts` maps (controller owner uid, node name) to the number of that owner's pods
/// already bound there (see [`owner_counts`]); nodes with fewer get a higher spread score. On
/// `Bind` the pod is added to that node's [`NodeInfo`] (resources, ports, and its owner in
/// `assumed_owner_counts`), so the next call in a batch sees it. Ties are broken by the smallest
/// node name, so the same inputs always give the same answer.
pub fn schedule(pod: &Pod, nodes: &mut [NodeInfo], owner_counts: &HashMap<(String, String), usize>) -> Decision {
    schedule_from(pod, nodes, owner_counts, &mut 0)
}

/// Below this many nodes every node is filtered and scored (kube-scheduler's
/// `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The smallest share of a large cluster's nodes that is looked at, in percent
/// (kube-scheduler's `minFeasibleNodesPercentageToFind`).
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// How many feasible nodes to find before scoring, out of `all`: kube-scheduler's
/// adaptive `percentageOfNodesToScore` (50% less 1% per 125 nodes, at least 5% and
/// at least 100 nodes). Scoring a sample instead of every node keeps a decision's
/// cost nearly flat as the cluster grows; the sample rotates over the nodes
/// between decisions, so every node gets its turn.
pub fn feasible_nodes_to_find(all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let percentage = 50usize.saturating_sub(all / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE);
    (all * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// [`schedule`], filtering nodes from `*next_start` on (wrapping around) until
/// [`feasible_nodes_to_find`] fit, and moving `*next_start` past the nodes looked at
/// so the next decision starts where this one stopped (kube-scheduler's
/// `nextStartNodeIndex`).
pub fn schedule_from(
    pod: &Pod,
    nodes: &mut [NodeInfo],
    owner_counts: &HashMap<(String, String), usize>,
    next_start: &mut usize,
) -> Decision {
    let Some(spec) = pod.spec.as_ref() else {
        return Decision::Unschedulable("pod has no spec".to_string());
    };
    if spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty()) {
        return Decision::Unschedulable("Scheduling is blocked due to non-empty scheduling gates".to_string());
    }
    if nodes.is_empty() {
        return Decision::Unschedulable("no nodes available to schedule pods".to_string());
    }
    let (request, non_zero) = match (pod_request(pod, false), pod_request(pod, true)) {
        (Ok(r), Ok(n)) => (r, n),
        (Err(e), _) | (_, Err(e)) => return Decision::Unschedulable(format!("invalid resource request: {e}")),
    };
    let node_affinity = spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref());
    let demand = PodDemand {
        request,
        non_zero,
        ports: host_ports(pod),
        tolerations: spec.tolerations.as_deref().unwrap_or_default(),
        node_name: spec.node_name.as_deref().filter(|n| !n.is_empty()),
        node_selector: spec.node_selector.as_ref(),
        required_terms: node_affinity
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|s| s.node_selector_terms.as_slice()),
        preferred_terms: node_affinity
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
            .unwrap_or_default(),
        owner: controller_uid(pod),
    };

    let mut feasible = Vec::new();
    let mut failures: Vec<(Code, Vec<String>)> = Vec::new();
    let wanted = feasible_nodes_to_find(nodes.len());
    let start = *next_start % nodes.len();
    let mut examined = 0;
    for i in (start..nodes.len()).chain(0..start) {
        examined += 1;
        match filter(&demand, &nodes[i]) {
            Ok(()) => feasible.push(i),
            Err(failure) => failures.push(failure),
        }
        if feasible.len() >= wanted {
            break;
        }
    }
    *next_start = (start + examined) % nodes.len();
    if feasible.is_empty() {
        let preemption_never = spec.preemption_policy.as_deref() == Some("Never");
        return Decision::Unschedulable(fit_error(nodes.len(), &failures, preemption_never));
    }

    let scores = score(&demand, nodes, &feasible, owner_counts);
    // Highest score wins; among equals the smallest name (kube-scheduler picks one at random).
    let name_of = |i: usize| nodes.get(i).map(|n| n.name.as_str()).unwrap_or_default();
    let best = feasible
        .iter()
        .copied()
        .zip(scores)
        .max_by(|(a, sa), (b, sb)| sa.cmp(sb).then_with(|| name_of(*b).cmp(name_of(*a))))
        .map(|(i, _)| i);
    let Some(node) = best.and_then(|i| nodes.get_mut(i)) else {
        return Decision::Unschedulable("no feasible node".to_string());
    };
    add_pod(node, demand.request, demand.non_zero, demand.ports);
    if let Some(owner) = demand.owner {
        *node.assumed_owner_counts.entry(owner).or_insert(0) += 1;
    }
    Decision::Bind(node.name.clone())
}

/// Runs the filters in the default profile's order; the first failing one gives the reasons.
fn filter(demand: &PodDemand<'_>, node: &NodeInfo) -> Result<(), (Code, Vec<String>)> {
    let unresolvable = |reason: String| Err((Code::Unresolvable, vec![reason]));
    if node.unschedulable {
        let cordon =
            Taint { key: TAINT_UNSCHEDULABLE.to_string(), effect: "NoSchedule".to_string(), ..Default::default() };
        if !demand.tolerations.iter().any(|t| tolerates(t, &cordon)) {
            return unresolvable(REASON_UNSCHEDULABLE.to_string());
        }
    }
    if demand.node_name.is_some_and(|n| n != node.name) {
        return unresolvable(REASON_NODE_NAME.to_string());
    }
    let untolerated = node
        .taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|taint| !demand.tolerations.iter().any(|t| tolerates(t, taint)));
    if let Some(taint) = untolerated {
        let value = taint.value.as_deref().unwrap_or_default();
        return unresolvable(format!("node(s) had untolerated taint {{{}: {value}}}", taint.key));
    }
    let selector_ok = demand.node_selector.is_none_or(|sel| sel.iter().all(|(k, v)| node.labels.get(k) == Some(v)));
    let affinity_ok = demand.required_terms.is_none_or(|terms| terms.iter().any(|t| term_matches(t, node)));
    if !selector_ok || !affinity_ok {
        return unresolvable(REASON_NODE_AFFINITY.to_string());
    }
    if demand.ports.iter().any(|want| port_conflicts(&node.used_ports, want)) {
        return Err((Code::Unschedulable, vec![REASON_NODE_PORTS.to_string()]));
    }
    let insufficient = insufficient_resources(demand.request, node);
    if !insufficient.is_empty() {
        return Err((Code::Unschedulable, insufficient.into_iter().map(str::to_string).collect()));
    }
    Ok(())
}

/// NodeResourcesFit: the pod slot always counts; cpu and memory only when the pod requests them
/// (a pod requesting no cpu fits even on an overcommitted node).
fn insufficient_resources(request: Resources, node: &NodeInfo) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if node.requested.pods.saturating_add(1) > node.allocatable.pods {
        reasons.push(REASON_TOO_MANY_PODS);
    }
    if request.milli_cpu > 0 && request.milli_cpu > node.allocatable.milli_cpu.saturating_sub(node.requested.milli_cpu)
    {
        reasons.push(REASON_INSUFFICIENT_CPU);
    }
    if request.memory > 0 && request.memory > node.allocatable.memory.saturating_sub(node.requested.memory) {
        reasons.push(REASON_INSUFFICIENT_MEMORY);
    }
    reasons
}

/// `FitError.Error()` followed by the DefaultPreemption post-filter message.
fn fit_error(total: usize, failures: &[(Code, Vec<String>)], preemption_never: bool) -> String {
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, node_reasons) in failures {
        for r in node_reasons {
            *reasons.entry(r.as_str()).or_insert(0) += 1;
        }
    }
    let histogram = sorted_histogram(reasons);
    let mut message = format!("0/{total} nodes are available: {histogram}.");
    if preemption_never {
        message.push_str(" preemption: not eligible due to preemptionPolicy=Never.");
    } else {
        let mut preemption: BTreeMap<&str, usize> = BTreeMap::new();
        for (code, _) in failures {
            let r = if *code == Code::Unresolvable { PREEMPTION_NOT_HELPFUL } else { PREEMPTION_NO_VICTIMS };
            *preemption.entry(r).or_insert(0) += 1;
        }
        message.push_str(&format!(" preemption: 0/{total} nodes are available: {}.", sorted_histogram(preemption)));
    }
    message
}

/// `"<count> <reason>"` strings, sorted as strings (so "1 x" < "2 a"), joined with ", ".
fn sorted_histogram(counts: BTreeMap<&str, usize>) -> String {
    let mut entries: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    entries.sort();
    entries.join(", ")
}

// === Scoring ===

/// Weighted sum of the score plugins for each feasible node (same order as `feasible`).
fn score(
    demand: &PodDemand<'_>,
    nodes: &[NodeInfo],
    feasible: &[usize],
    owner_counts: &HashMap<(String, String), usize>,
) -> Vec<i64> {
    let feasible_nodes: Vec<&NodeInfo> = feasible.iter().filter_map(|&i| nodes.get(i)).collect();

    // TaintToleration: count of PreferNoSchedule taints not tolerated, fewer is better.
    let prefer_tolerations: Vec<&Toleration> = demand
        .tolerations
        .iter()
        .filter(|t| t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "PreferNoSchedule"))
        .collect();
    let taint_counts: Vec<i64> = feasible_nodes
        .iter()
        .map(|n| {
            let untolerated = n
                .taints
                .iter()
                .filter(|t| t.effect == "PreferNoSchedule")
                .filter(|taint| !prefer_tolerations.iter().any(|t| tolerates(t, taint)));
            i64::try_from(untolerated.count()).unwrap_or(i64::MAX)
        })
        .collect();
    let taint_scores = normalize(taint_counts, true);

    // NodeAffinity: sum of the weights of matching preferred terms, more is better.
    let affinity_sums: Vec<i64> = feasible_nodes
        .iter()
        .map(|n| {
            demand
                .preferred_terms
                .iter()
                .filter(|p| p.weight != 0 && term_matches(&p.preference, n))
                .map(|p| i64::from(p.weight))
                .sum()
        })
        .collect();
    let affinity_scores = normalize(affinity_sums, false);

    // Owner spread (SelectorSpread's node part): fewer pods of the same owner is better.
    let spread_scores: Vec<i64> = match &demand.owner {
        None => vec![0; feasible_nodes.len()],
        Some(owner) => {
            let counts: Vec<i64> = feasible_nodes
                .iter()
                .map(|n| {
                    let bound = owner_counts.get(&(owner.clone(), n.name.clone())).copied().unwrap_or(0);
                    let assumed = n.assumed_owner_counts.get(owner).copied().unwrap_or(0);
                    i64::try_from(bound.saturating_add(assumed)).unwrap_or(i64::MAX)
                })
                .collect();
            let max = counts.iter().copied().max().unwrap_or(0);
            counts.iter().map(|&c| if max == 0 { MAX_NODE_SCORE } else { MAX_NODE_SCORE * (max - c) / max }).collect()
        }
    };

    feasible_nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let at = |v: &[i64]| v.get(i).copied().unwrap_or(0);
            WEIGHT_TAINT_TOLERATION * at(&taint_scores)
                + WEIGHT_NODE_AFFINITY * at(&affinity_scores)
                + WEIGHT_LEAST_ALLOCATED * least_allocated(demand.non_zero, n)
                + WEIGHT_BALANCED_ALLOCATION * balanced_allocation(demand.request, n)
                + WEIGHT_OWNER_SPREAD * at(&spread_scores)
        })
        .collect()
}

/// kube-scheduler's `DefaultNormalizeScore`: scale to 0..=100 by the maximum, optionally reversed.
fn normalize(raw: Vec<i64>, reverse: bool) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    if max <= 0 {
        return vec![if reverse { MAX_NODE_SCORE } else { 0 }; raw.len()];
    }
    raw.into_iter()
        .map(|s| {
            let scaled = MAX_NODE_SCORE.saturating_mul(s) / max;
            if reverse { MAX_NODE_SCORE - scaled } else { scaled }
        })
        .collect()
}

/// LeastAllocated: mean over cpu and memory of `(allocatable - requested) * 100 / allocatable`,
/// with the pod included and missing requests counted as 100m / 200Mi.
///
/// Example: 4000m node with 1000m requested, pod asking 1000m → cpu score (4000-2000)*100/4000 =
/// 50; 8Gi node with 2Gi requested, pod 2Gi → memory 50; node score (50+50)/2 = 50.
fn least_allocated(pod_non_zero: Resources, node: &NodeInfo) -> i64 {
    let cpu = least_requested(
        node.non_zero_requested.milli_cpu.saturating_add(pod_non_zero.milli_cpu),
        node.allocatable.milli_cpu,
    );
    let memory =
        least_requested(node.non_zero_requested.memory.saturating_add(pod_non_zero.memory), node.allocatable.memory);
    (cpu + memory) / 2
}

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    let scaled = i128::from(capacity - requested) * i128::from(MAX_NODE_SCORE) / i128::from(capacity);
    i64::try_from(scaled).unwrap_or(0)
}

/// BalancedAllocation: `(1 - |cpu fraction - memory fraction| / 2) * 100`, fractions capped at 1,
/// on actual requests (no defaults), pod included; a resource with no allocatable is left out.
fn balanced_allocation(pod_request: Resources, node: &NodeInfo) -> i64 {
    let fraction = |requested: i64, allocatable: i64| -> Option<f64> {
        (allocatable > 0).then(|| (requested as f64 / allocatable as f64).min(1.0))
    };
    let cpu = fraction(node.requested.milli_cpu.saturating_add(pod_request.milli_cpu), node.allocatable.milli_cpu);
    let memory = fraction(node.requested.memory.saturating_add(pod_request.memory), node.allocatable.memory);
    let std = match (cpu, memory) {
        (Some(c), Some(m)) => ((c - m) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

// === Pod helpers ===

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn controller_uid(pod: &Pod) -> Option<String> {
    pod.metadata.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true)).map(|r| r.uid.clone())
}

/// The pod's effective request (`resource.PodRequests`): the sum of its containers, restartable
/// init containers (sidecars) added to it, and the max with each regular init container (plus
/// the sidecars started before it); then `spec.overhead`. A container's request falls back to
/// its limit, as the API server defaults it. With `non_zero`, a container without a cpu or memory
/// request counts as 100m / 200Mi (scoring only).
///
/// Example: init containers 2 cpu/1G and 2 cpu/3G, containers 2 cpu/1G and 1 cpu/1G → sum 3 cpu/2G,
/// init max 2 cpu/3G → request 3 cpu/3G.
fn pod_request(pod: &Pod, non_zero: bool) -> Result<Resources, QuantityError> {
    let Some(spec) = pod.spec.as_ref() else { return Ok(Resources::default()) };
    let mut total = Resources::default();
    for c in &spec.containers {
        total = add(total, container_request(c, non_zero)?);
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.as_deref().unwrap_or_default() {
        let request = container_request(c, non_zero)?;
        let during_init = if c.restart_policy.as_deref() == Some("Always") {
            total = add(total, request);
            sidecars = add(sidecars, request);
            sidecars
        } else {
            add(request, sidecars)
        };
        init_max = max(init_max, during_init);
    }
    total = max(total, init_max);
    if let Some(overhead) = spec.overhead.as_ref() {
        total = add(total, resources_of(overhead)?);
    }
    Ok(Resources { pods: 0, ..total })
}

fn container_request(c: &Container, non_zero: bool) -> Result<Resources, QuantityError> {
    let resources = c.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    let pick = |name: &str| requests.and_then(|r| r.get(name)).or_else(|| limits.and_then(|l| l.get(name)));
    let milli_cpu = match pick("cpu") {
        Some(q) => parse_quantity_milli(&q.0)?,
        None if non_zero => DEFAULT_MILLI_CPU_REQUEST,
        None => 0,
    };
    let memory = match pick("memory") {
        Some(q) => parse_quantity(&q.0)?,
        None if non_zero => DEFAULT_MEMORY_REQUEST,
        None => 0,
    };
    Ok(Resources { milli_cpu, memory, pods: 0 })
}

fn resources_of(list: &BTreeMap<String, Quantity>) -> Result<Resources, QuantityError> {
    let milli_cpu = list.get("cpu").map(|q| parse_quantity_milli(&q.0)).transpose()?.unwrap_or(0);
    let memory = list.get("memory").map(|q| parse_quantity(&q.0)).transpose()?.unwrap_or(0);
    Ok(Resources { milli_cpu, memory, pods: 0 })
}

fn add(a: Resources, b: Resources) -> Resources {
    Resources {
        milli_cpu: a.milli_cpu.saturating_add(b.milli_cpu),
        memory: a.memory.saturating_add(b.memory),
        pods: a.pods.saturating_add(b.pods),
    }
}

fn max(a: Resources, b: Resources) -> Resources {
    Resources { milli_cpu: a.milli_cpu.max(b.milli_cpu), memory: a.memory.max(b.memory), pods: a.pods.max(b.pods) }
}

/// Host ports the pod asks for (containers and sidecars; `hostPort` > 0 only).
fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|&hp| hp > 0)?;
            let ip = p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "0.0.0.0".to_string());
            let protocol = p.protocol.clone().filter(|pr| !pr.is_empty()).unwrap_or_else(|| "TCP".to_string());
            Some(HostPort { ip, protocol, port })
        })
        .collect()
}

/// `HostPortInfo.CheckConflict`: same protocol and port, and either IP is 0.0.0.0 or they are equal.
fn port_conflicts(used: &[HostPort], want: &HostPort) -> bool {
    used.iter().any(|u| {
        u.port == want.port
            && u.protocol == want.protocol
            && (u.ip == want.ip || u.ip == "0.0.0.0" || want.ip == "0.0.0.0")
    })
}

/// `Toleration.ToleratesTaint`: effect (empty = all), key (empty = all), then `Exists`, or
/// `Equal` (the default) comparing values.
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

/// One node selector term: all its expressions and fields must hold; an empty term, or one with
/// an invalid requirement, matches nothing (as `nodeaffinity.NewLazyErrorNodeSelector`).
fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let labels_ok = expressions.iter().all(|r| label_requirement(r, &node.labels).unwrap_or(false));
    let fields_ok = fields.iter().all(|r| field_requirement(r, &node.name).unwrap_or(false));
    labels_ok && fields_ok
}

/// A label requirement; `None` when it is invalid (wrong number of values, unknown operator).
fn label_requirement(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> Option<bool> {
    let values = r.values.as_deref().unwrap_or_default();
    let value = labels.get(&r.key);
    match r.operator.as_str() {
        "In" if !values.is_empty() => Some(value.is_some_and(|v| values.contains(v))),
        "NotIn" if !values.is_empty() => Some(value.is_none_or(|v| !values.contains(v))),
        "Exists" if values.is_empty() => Some(value.is_some()),
        "DoesNotExist" if values.is_empty() => Some(value.is_none()),
        op @ ("Gt" | "Lt") if values.len() == 1 => {
            let bound: i64 = values.first()?.parse().ok()?;
            let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else { return Some(false) };
            Some(if op == "Gt" { actual > bound } else { actual < bound })
        }
        _ => None,
    }
}

/// A field requirement: only `metadata.name` with `In`/`NotIn` and exactly one value is valid.
fn field_requirement(r: &NodeSelectorRequirement, node_name: &str) -> Option<bool> {
    let values = r.values.as_deref().unwrap_or_default();
    if r.key != "metadata.name" || values.len() != 1 {
        return None;
    }
    let equal = values.first().is_some_and(|v| v == node_name);
    match r.operator.as_str() {
        "In" => Some(equal),
        "NotIn" => Some(!equal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Affinity, ContainerPort, NodeAffinity, NodeCondition, NodeSelector, NodeSpec, NodeStatus, PodSpec, PodStatus,
        ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use proptest::prelude::*;

    // --- builders ---

    fn node(name: &str) -> NodeB {
        NodeB(Node {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(qmap(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")])),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    struct NodeB(Node);
    impl NodeB {
        fn alloc(mut self, cpu: &str, mem: &str, pods: &str) -> Self {
            self.0.status.as_mut().unwrap().allocatable = Some(qmap(&[("cpu", cpu), ("memory", mem), ("pods", pods)]));
            self
        }
        fn label(mut self, k: &str, v: &str) -> Self {
            self.0.metadata.labels.get_or_insert_with(Default::default).insert(k.into(), v.into());
            self
        }
        fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
            let t = Taint { key: key.into(), value: Some(value.into()), effect: effect.into(), time_added: None };
            self.0.spec.as_mut().unwrap().taints.get_or_insert_with(Vec::new).push(t);
            self
        }
        fn cordoned(mut self) -> Self {
            self.0.spec.as_mut().unwrap().unschedulable = Some(true);
            self
        }
        fn ready(mut self, status: &str) -> Self {
            self.0.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = status.into();
            self
        }
    }

    fn qmap(entries: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        entries.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
    }

    struct PodB(Pod);
    fn pod(name: &str) -> PodB {
        PodB(Pod {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some("default".into()), ..Default::default() },
            spec: Some(PodSpec {
                containers: vec![Container { name: "c".into(), ..Default::default() }],
                ..Default::default()
            }),
            status: Some(PodStatus { phase: Some("Pending".into()), ..Default::default() }),
        })
    }
    impl PodB {
        fn spec(&mut self) -> &mut PodSpec {
            self.0.spec.as_mut().unwrap()
        }
        fn req(mut self, cpu: &str, mem: &str) -> Self {
            let mut r = Vec::new();
            if !cpu.is_empty() {
                r.push(("cpu", cpu));
            }
            if !mem.is_empty() {
                r.push(("memory", mem));
            }
            self.spec().containers[0].resources =
                Some(ResourceRequirements { requests: Some(qmap(&r)), ..Default::default() });
            self
        }
        fn on(mut self, node: &str) -> Self {
            self.spec().node_name = Some(node.into());
            self
        }
        fn phase(mut self, p: &str) -> Self {
            self.0.status.as_mut().unwrap().phase = Some(p.into());
            self
        }
        fn selector(mut self, k: &str, v: &str) -> Self {
            self.spec().node_selector.get_or_insert_with(Default::default).insert(k.into(), v.into());
            self
        }
        fn tolerate(mut self, key: &str, op: &str, value: &str, effect: &str) -> Self {
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let t = Toleration {
                key: opt(key),
                operator: opt(op),
                value: opt(value),
                effect: opt(effect),
                toleration_seconds: None,
            };
            self.spec().tolerations.get_or_insert_with(Vec::new).push(t);
            self
        }
        fn host_port(mut self, port: i32) -> Self {
            let p = ContainerPort { container_port: 80, host_port: Some(port), ..Default::default() };
            self.spec().containers[0].ports.get_or_insert_with(Vec::new).push(p);
            self
        }
        fn owner(mut self, uid: &str) -> Self {
            self.0.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "rs".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: None,
            }]);
            self
        }
        fn required(mut self, terms: Vec<NodeSelectorTerm>) -> Self {
            self.spec().affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
            self
        }
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn term(exprs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm { match_expressions: Some(exprs), match_fields: None }
    }

    fn run(nodes: Vec<NodeB>, bound: Vec<PodB>, p: PodB) -> Decision {
        let nodes: Vec<Node> = nodes.into_iter().map(|n| n.0).collect();
        let bound: Vec<Pod> = bound.into_iter().map(|p| p.0).collect();
        let mut infos = node_infos(&nodes, &bound);
        schedule(&p.0, &mut infos, &owner_counts(&bound))
    }

    // --- quantities ---

    #[test]
    fn quantities_round_up_like_kubernetes() {
        assert_eq!(parse_quantity_milli("100m"), Ok(100));
        assert_eq!(parse_quantity_milli("0.5"), Ok(500));
        assert_eq!(parse_quantity_milli("2"), Ok(2000));
        assert_eq!(parse_quantity_milli(".25"), Ok(250));
        assert_eq!(parse_quantity_milli("1.0001"), Ok(1001));
        assert_eq!(parse_quantity_milli("1u"), Ok(1));
        assert_eq!(parse_quantity("128Mi"), Ok(134_217_728));
        assert_eq!(parse_quantity("1G"), Ok(1_000_000_000));
        assert_eq!(parse_quantity("1e3"), Ok(1000));
        assert_eq!(parse_quantity("1E3"), Ok(1000));
        assert_eq!(parse_quantity("2E"), Ok(2_000_000_000_000_000_000));
        assert_eq!(parse_quantity("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(parse_quantity("0.5"), Ok(1));
        assert_eq!(parse_quantity("100m"), Ok(1));
        assert_eq!(parse_quantity("-1.5"), Ok(-1));
        assert_eq!(parse_quantity("+3k"), Ok(3000));
        assert_eq!(parse_quantity("0"), Ok(0));
        assert_eq!(parse_quantity("1e-3"), Ok(1));
    }

    #[test]
    fn bad_quantities_are_errors_not_panics() {
        assert_eq!(parse_quantity(""), Err(QuantityError::Empty));
        assert!(matches!(parse_quantity("abc"), Err(QuantityError::Number(_))));
        assert!(matches!(parse_quantity("1.2.3"), Err(QuantityError::Number(_))));
        assert!(matches!(parse_quantity("12Q"), Err(QuantityError::Suffix(_))));
        assert!(matches!(parse_quantity("1e"), Err(QuantityError::Suffix(_))));
        assert!(matches!(parse_quantity("9Ei"), Err(QuantityError::TooLarge(_))));
        assert!(matches!(parse_quantity("1e400"), Err(QuantityError::TooLarge(_))));
        assert_eq!(parse_quantity("1e-400"), Ok(1));
    }

    proptest! {
        #[test]
        fn quantity_parser_never_panics(s in "\\PC{0,24}") {
            let _ = parse_quantity(&s);
            let _ = parse_quantity_milli(&s);
        }

        #[test]
        fn integer_quantities_roundtrip(n in 0i64..1_000_000_000) {
            prop_assert_eq!(parse_quantity(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_quantity_milli(&format!("{n}m")), Ok(n));
            prop_assert_eq!(parse_quantity(&format!("{n}Ki")), Ok(n * 1024));
        }
    }

    // --- filters and messages ---

    #[test]
    fn failed_scheduling_message_matches_kubernetes() {
        let nodes = vec![
            node("cp").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
            node("w1").alloc("1", "8Gi", "110"),
            node("w2").alloc("1", "8Gi", "110"),
        ];
        let d = run(nodes, vec![], pod("big").req("2", "1Gi"));
        assert_eq!(
            d,
            Decision::Unschedulable(
                "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
                 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
                 2 No preemption victims found for incoming pod."
                    .into()
            )
        );
    }

    #[test]
    fn unresolvable_everywhere_says_preemption_not_helpful() {
        let d = run(vec![node("a"), node("b")], vec![], pod("p").selector("disk", "ssd"));
        assert_eq!(
            d,
            Decision::Unschedulable(
                "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. \
                 preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
                    .into()
            )
        );
    }

    #[test]
    fn preemption_policy_never_has_its_own_sentence() {
        let mut p = pod("p").req("8", "");
        p.spec().preemption_policy = Some("Never".into());
        let d = run(vec![node("a")], vec![], p);
        assert_eq!(
            d,
            Decision::Unschedulable(
                "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
                    .into()
            )
        );
    }

    #[test]
    fn one_node_reports_every_insufficient_resource() {
        let bound = vec![pod("x").req("", "").on("a")];
        let d = run(vec![node("a").alloc("1", "1Gi", "1")], bound, pod("p").req("2", "2Gi"));
        assert_eq!(
            d,
            Decision::Unschedulable(
                "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods. \
                 preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
                    .into()
            )
        );
    }

    #[test]
    fn pod_without_requests_still_takes_a_pod_slot() {
        let bound = vec![pod("x").on("a"), pod("y").on("a")];
        let d = run(vec![node("a").alloc("4", "8Gi", "2")], bound, pod("p"));
        assert!(matches!(d, Decision::Unschedulable(m) if m.contains("1 Too many pods")));
    }

    #[test]
    fn terminal_and_unbound_pods_do_not_count() {
        let bound = vec![pod("done").req("4", "").on("a").phase("Succeeded"), pod("pending").req("4", "")];
        assert_eq!(run(vec![node("a")], bound, pod("p").req("4", "")), Decision::Bind("a".into()));
    }

    #[test]
    fn init_containers_use_the_max_rule() {
        // Kubernetes' example: init 2cpu/1G and 2cpu/3G, containers 2cpu/1G + 1cpu/1G → 3 cpu, 3G.
        let mut p = pod("p");
        let c = |cpu: &str, mem: &str| Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(qmap(&[("cpu", cpu), ("memory", mem)])),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.spec().init_containers = Some(vec![c("2", "1G"), c("2", "3G")]);
        p.spec().containers = vec![c("2", "1G"), c("1", "1G")];
        assert_eq!(pod_request(&p.0, false), Ok(Resources { milli_cpu: 3000, memory: 3_000_000_000, pods: 0 }));
        // A 3 cpu / 3G node fits exactly; 2.9 cpu does not.
        assert_eq!(run(vec![node("a").alloc("3", "3G", "10")], vec![], PodB(p.0.clone())), Decision::Bind("a".into()));
        assert!(matches!(run(vec![node("a").alloc("2900m", "3G", "10")], vec![], p), Decision::Unschedulable(_)));
    }

    #[test]
    fn sidecars_add_to_the_sum() {
        let mut p = pod("p").req("1", "");
        let mut sidecar =
            Container { name: "proxy".into(), restart_policy: Some("Always".into()), ..Default::default() };
        sidecar.resources =
            Some(ResourceRequirements { requests: Some(qmap(&[("cpu", "500m")])), ..Default::default() });
        p.spec().init_containers = Some(vec![sidecar]);
        assert_eq!(pod_request(&p.0, false).map(|r| r.milli_cpu), Ok(1500));
    }

    #[test]
    fn limits_stand_in_for_missing_requests() {
        let mut p = pod("p");
        p.spec().containers[0].resources =
            Some(ResourceRequirements { limits: Some(qmap(&[("cpu", "3")])), ..Default::default() });
        assert!(
            matches!(run(vec![node("a").alloc("2", "1Gi", "10")], vec![], p), Decision::Unschedulable(m) if m.contains("Insufficient cpu"))
        );
    }

    #[test]
    fn invalid_request_is_reported_not_ignored() {
        let d = run(vec![node("a")], vec![], pod("p").req("lots", ""));
        assert!(matches!(d, Decision::Unschedulable(m) if m.starts_with("invalid resource request")));
    }

    #[test]
    fn not_ready_nodes_are_tainted_unless_tolerated() {
        let nodes = vec![node("down").ready("Unknown"), node("sick").ready("False")];
        let d = run(nodes, vec![], pod("p"));
        assert_eq!(
            d,
            Decision::Unschedulable(
                "0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, \
                 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. preemption: 0/2 nodes are available: \
                 2 Preemption is not helpful for scheduling."
                    .into()
            )
        );
        let daemon = pod("ds").tolerate("node.kubernetes.io/unreachable", "Exists", "", "NoSchedule");
        assert_eq!(run(vec![node("down").ready("Unknown")], vec![], daemon), Decision::Bind("down".into()));
    }

    #[test]
    fn cordoned_nodes_need_the_unschedulable_toleration() {
        let d = run(vec![node("a").cordoned()], vec![], pod("p"));
        assert!(matches!(d, Decision::Unschedulable(m) if m.contains("1 node(s) were unschedulable")));
        let p = pod("p").tolerate("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule");
        assert_eq!(run(vec![node("a").cordoned()], vec![], p), Decision::Bind("a".into()));
    }

    #[test]
    fn taint_toleration_rules() {
        let taint = Taint { key: "k".into(), value: Some("v".into()), effect: "NoSchedule".into(), time_added: None };
        let t = |key: &str, op: &str, value: &str, effect: &str| Toleration {
            key: (!key.is_empty()).then(|| key.into()),
            operator: (!op.is_empty()).then(|| op.into()),
            value: (!value.is_empty()).then(|| value.into()),
            effect: (!effect.is_empty()).then(|| effect.into()),
            toleration_seconds: None,
        };
        assert!(tolerates(&t("k", "Equal", "v", "NoSchedule"), &taint));
        assert!(tolerates(&t("k", "", "v", ""), &taint));
        assert!(tolerates(&t("k", "Exists", "", ""), &taint));
        assert!(tolerates(&t("", "Exists", "", ""), &taint));
        assert!(!tolerates(&t("k", "Equal", "w", ""), &taint));
        assert!(!tolerates(&t("k", "Exists", "", "NoExecute"), &taint));
        assert!(!tolerates(&t("other", "Exists", "", ""), &taint));
    }

    #[test]
    fn prefer_no_schedule_only_scores() {
        let nodes = vec![node("a").taint("gpu", "", "PreferNoSchedule"), node("b")];
        assert_eq!(run(nodes, vec![], pod("p")), Decision::Bind("b".into()));
        let nodes = vec![node("a").taint("gpu", "", "PreferNoSchedule")];
        assert_eq!(run(nodes, vec![], pod("p")), Decision::Bind("a".into()));
    }

    #[test]
    fn node_affinity_operators() {
        let nodes = || {
            vec![
                node("n1").label("zone", "a").label("cores", "4"),
                node("n2").label("zone", "b").label("cores", "16"),
                node("n3").label("cores", "x"),
            ]
        };
        let place = |terms| run(nodes(), vec![], pod("p").required(terms));
        assert_eq!(place(vec![term(vec![expr("zone", "In", &["b"])])]), Decision::Bind("n2".into()));
        assert_eq!(place(vec![term(vec![expr("cores", "Gt", &["8"])])]), Decision::Bind("n2".into()));
        assert_eq!(place(vec![term(vec![expr("cores", "Lt", &["8"])])]), Decision::Bind("n1".into()));
        assert_eq!(place(vec![term(vec![expr("zone", "DoesNotExist", &[])])]), Decision::Bind("n3".into()));
        assert_eq!(
            place(vec![term(vec![expr("zone", "Exists", &[]), expr("zone", "NotIn", &["a"])])]),
            Decision::Bind("n2".into())
        );
        // Terms are ORed: the first term matches nothing, the second n1.
        assert_eq!(
            place(vec![term(vec![expr("zone", "In", &["c"])]), term(vec![expr("zone", "In", &["a"])])]),
            Decision::Bind("n1".into())
        );
        // Invalid requirements and empty terms match nothing.
        assert!(matches!(place(vec![term(vec![expr("zone", "In", &[])])]), Decision::Unschedulable(_)));
        assert!(matches!(place(vec![term(vec![expr("cores", "Gt", &["x"])])]), Decision::Unschedulable(_)));
        assert!(matches!(place(vec![term(vec![])]), Decision::Unschedulable(_)));
        assert!(matches!(place(vec![]), Decision::Unschedulable(_)));
        // matchFields metadata.name.
        let by_name = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![expr("metadata.name", "In", &["n3"])]),
        };
        assert_eq!(place(vec![by_name]), Decision::Bind("n3".into()));
    }

    #[test]
    fn node_name_filter() {
        let mut p = pod("p");
        p.spec().node_name = Some("b".into());
        let d = run(vec![node("a"), node("b").cordoned()], vec![], p);
        assert!(
            matches!(d, Decision::Unschedulable(m) if m.contains("1 node(s) didn't match the requested node name") && m.contains("1 node(s) were unschedulable"))
        );
    }

    #[test]
    fn host_ports_conflict() {
        let bound = vec![pod("x").host_port(8080).on("a")];
        assert_eq!(run(vec![node("a"), node("b")], bound, pod("p").host_port(8080)), Decision::Bind("b".into()));
        let bound = vec![pod("x").host_port(8080).on("a")];
        let d = run(vec![node("a")], bound, pod("p").host_port(8080));
        assert!(
            matches!(d, Decision::Unschedulable(m) if m.contains("1 node(s) didn't have free ports for the requested pod ports"))
        );
        // Different protocol, or a specific IP that differs, does not conflict.
        let mut udp = pod("p").host_port(8080);
        udp.spec().containers[0].ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
        assert_eq!(run(vec![node("a")], vec![pod("x").host_port(8080).on("a")], udp), Decision::Bind("a".into()));
        let ports = vec![HostPort { ip: "10.0.0.1".into(), protocol: "TCP".into(), port: 80 }];
        assert!(!port_conflicts(&ports, &HostPort { ip: "10.0.0.2".into(), protocol: "TCP".into(), port: 80 }));
        assert!(port_conflicts(&ports, &HostPort { ip: "0.0.0.0".into(), protocol: "TCP".into(), port: 80 }));
    }

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let bound = vec![pod("x").req("3", "6Gi").on("a")];
        assert_eq!(run(vec![node("a"), node("b")], bound, pod("p").req("100m", "100Mi")), Decision::Bind("b".into()));
    }

    #[test]
    fn worked_scores() {
        // The LeastAllocated example in the doc comment.
        let n = NodeInfo {
            allocatable: Resources { milli_cpu: 4000, memory: 8 << 30, pods: 10 },
            non_zero_requested: Resources { milli_cpu: 1000, memory: 2 << 30, pods: 1 },
            requested: Resources { milli_cpu: 1000, memory: 2 << 30, pods: 1 },
            ..node_info(&node("n").0)
        };
        let pod_req = Resources { milli_cpu: 1000, memory: 2 << 30, pods: 0 };
        assert_eq!(least_allocated(pod_req, &n), 50);
        // Balanced: cpu 2000/4000 = 0.5, memory 4Gi/8Gi = 0.5 → 100; on an empty node with no memory
        // request, cpu 0.25 and memory 0 → (1 - 0.125) * 100 → 87.
        assert_eq!(balanced_allocation(pod_req, &n), 100);
        assert_eq!(
            balanced_allocation(Resources { memory: 0, ..pod_req }, &NodeInfo { requested: Resources::default(), ..n }),
            87
        );
        assert_eq!(normalize(vec![0, 1, 2], true), vec![100, 50, 0]);
        assert_eq!(normalize(vec![0, 0], true), vec![100, 100]);
        assert_eq!(normalize(vec![0, 0], false), vec![0, 0]);
    }

    #[test]
    fn large_clusters_score_a_rotating_sample_of_nodes() {
        assert_eq!(feasible_nodes_to_find(50), 50);
        assert_eq!(feasible_nodes_to_find(100), 100);
        assert_eq!(feasible_nodes_to_find(150), 100);
        assert_eq!(feasible_nodes_to_find(1_000), 420);
        assert_eq!(feasible_nodes_to_find(5_000), 500);
        assert_eq!(feasible_nodes_to_find(20_000), 1_000);

        let names: Vec<String> = (0..1_000).map(|i| format!("n{i:04}")).collect();
        let nodes: Vec<Node> = names.iter().map(|n| node(n).0).collect();
        let mut infos = node_infos(&nodes, &[]);
        let mut start = 0;
        let first = schedule_from(&pod("a").0, &mut infos, &HashMap::new(), &mut start);
        assert_eq!((first, start), (Decision::Bind("n0000".into()), 420));
        // The next decision looks at the next 420 nodes, then wraps around.
        let second = schedule_from(&pod("b").0, &mut infos, &HashMap::new(), &mut start);
        assert_eq!((second, start), (Decision::Bind("n0420".into()), 840));
        // (n0000 already holds pod a, so the least allocated node of this window wins.)
        let third = schedule_from(&pod("c").0, &mut infos, &HashMap::new(), &mut start);
        assert_eq!((third, start), (Decision::Bind("n0001".into()), 260));

        // A node that is the only one to fit is found wherever it is.
        let mut nodes: Vec<Node> = names.iter().map(|n| node(n).taint("dedicated", "x", "NoSchedule").0).collect();
        nodes[900] = node("n0900").0;
        let mut infos = node_infos(&nodes, &[]);
        let mut start = 0;
        assert_eq!(schedule_from(&pod("d").0, &mut infos, &HashMap::new(), &mut start), Decision::Bind("n0900".into()));
        assert_eq!(start, 0, "every node was looked at");
    }

    #[test]
    fn batch_spreads_pods_of_one_owner_and_accounts_resources() {
        let nodes: Vec<Node> = vec![node("a").0, node("b").0, node("c").0];
        let mut infos = node_infos(&nodes, &[]);
        let counts = HashMap::new();
        let mut placed = Vec::new();
        for i in 0..6 {
            match schedule(&pod(&format!("web-{i}")).req("100m", "64Mi").owner("rs-1").0, &mut infos, &counts) {
                Decision::Bind(n) => placed.push(n),
                other => panic!("unexpected {other:?}"),
            }
        }
        placed.sort();
        assert_eq!(placed, vec!["a", "a", "b", "b", "c", "c"]);
        assert!(infos.iter().all(|n| n.requested.milli_cpu == 200 && n.requested.pods == 2));
    }

    #[test]
    fn existing_owner_pods_push_new_ones_elsewhere() {
        let bound = vec![pod("web-0").owner("rs").on("a"), pod("web-1").owner("rs").on("a")];
        assert_eq!(run(vec![node("a"), node("b")], bound, pod("web-2").owner("rs")), Decision::Bind("b".into()));
    }

    #[test]
    fn ties_break_by_node_name() {
        assert_eq!(
            run(vec![node("zeta"), node("alpha"), node("mid")], vec![], pod("p")),
            Decision::Bind("alpha".into())
        );
    }

    #[test]
    fn no_nodes_and_gated_pods() {
        assert_eq!(
            run(vec![], vec![], pod("p")),
            Decision::Unschedulable("no nodes available to schedule pods".into())
        );
        let mut p = pod("p");
        p.spec().scheduling_gates = Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate { name: "wait".into() }]);
        assert!(
            matches!(run(vec![node("a")], vec![], p), Decision::Unschedulable(m) if m.contains("scheduling gates"))
        );
    }

    // --- properties ---

    #[derive(Debug, Clone)]
    struct GenNode {
        cpu: i64,
        mem_mi: i64,
        pods: i64,
        zone: u8,
        taint: Option<(u8, &'static str)>,
        cordoned: bool,
        ready: &'static str,
    }

    #[derive(Debug, Clone)]
    struct GenPod {
        cpu: Option<i64>,
        mem_mi: Option<i64>,
        zone: Option<u8>,
        tolerate: Option<u8>,
        tolerate_all: bool,
        host_port: Option<i32>,
        owner: Option<u8>,
    }

    fn gen_node() -> impl Strategy<Value = GenNode> {
        (
            0i64..4000,
            0i64..4096,
            0i64..6,
            0u8..3,
            proptest::option::of((
                0u8..3,
                prop_oneof![Just("NoSchedule"), Just("NoExecute"), Just("PreferNoSchedule")],
            )),
            proptest::bool::weighted(0.15),
            prop_oneof![4 => Just("True"), 1 => Just("False"), 1 => Just("Unknown")],
        )
            .prop_map(|(cpu, mem_mi, pods, zone, taint, cordoned, ready)| GenNode {
                cpu,
                mem_mi,
                pods,
                zone,
                taint,
                cordoned,
                ready,
            })
    }

    fn gen_pod() -> impl Strategy<Value = GenPod> {
        (
            proptest::option::of(0i64..1500),
            proptest::option::of(0i64..1500),
            proptest::option::of(0u8..3),
            proptest::option::of(0u8..3),
            proptest::bool::weighted(0.1),
            proptest::option::weighted(0.3, 8000i32..8003),
            proptest::option::of(0u8..2),
        )
            .prop_map(|(cpu, mem_mi, zone, tolerate, tolerate_all, host_port, owner)| GenPod {
                cpu,
                mem_mi,
                zone,
                tolerate,
                tolerate_all,
                host_port,
                owner,
            })
    }

    fn build_node(i: usize, g: &GenNode) -> Node {
        let mut b = node(&format!("n{i}"))
            .alloc(&format!("{}m", g.cpu), &format!("{}Mi", g.mem_mi), &g.pods.to_string())
            .label("zone", &g.zone.to_string())
            .ready(g.ready);
        if let Some((k, effect)) = g.taint {
            b = b.taint(&format!("t{k}"), "x", effect);
        }
        if g.cordoned {
            b = b.cordoned();
        }
        b.0
    }

    fn build_pod(i: usize, g: &GenPod) -> Pod {
        let mut b = pod(&format!("p{i}"));
        let cpu = g.cpu.map(|c| format!("{c}m")).unwrap_or_default();
        let mem = g.mem_mi.map(|m| format!("{m}Mi")).unwrap_or_default();
        b = b.req(&cpu, &mem);
        if let Some(z) = g.zone {
            b = b.selector("zone", &z.to_string());
        }
        if let Some(t) = g.tolerate {
            b = b.tolerate(&format!("t{t}"), "Equal", "x", "");
        }
        if g.tolerate_all {
            b = b.tolerate("", "Exists", "", "");
        }
        if let Some(p) = g.host_port {
            b = b.host_port(p);
        }
        if let Some(o) = g.owner {
            b = b.owner(&format!("owner-{o}"));
        }
        b.0
    }

    /// Independent restatement of the filters, from the raw objects.
    fn fits(pod: &Pod, node: &Node, already: &[&Pod]) -> bool {
        let spec = pod.spec.as_ref().unwrap();
        let tols = spec.tolerations.clone().unwrap_or_default();
        let tolerated = |key: &str, value: &str, effect: &str| {
            tols.iter().any(|t| {
                let key_ok = t.key.as_deref().is_none_or(|k| k == key);
                let effect_ok = t.effect.as_deref().is_none_or(|e| e == effect);
                let value_ok = t.operator.as_deref() == Some("Exists") || t.value.as_deref().unwrap_or("") == value;
                key_ok && effect_ok && value_ok
            })
        };
        let nspec = node.spec.as_ref().unwrap();
        if nspec.unschedulable == Some(true) && !tolerated("node.kubernetes.io/unschedulable", "", "NoSchedule") {
            return false;
        }
        for t in nspec.taints.iter().flatten() {
            if t.effect != "PreferNoSchedule" && !tolerated(&t.key, t.value.as_deref().unwrap_or(""), &t.effect) {
                return false;
            }
        }
        let status = node.status.as_ref().unwrap();
        match status.conditions.as_ref().unwrap()[0].status.as_str() {
            "True" => {}
            "False" if tolerated("node.kubernetes.io/not-ready", "", "NoSchedule") => {}
            "Unknown" if tolerated("node.kubernetes.io/unreachable", "", "NoSchedule") => {}
            _ => return false,
        }
        let labels = node.metadata.labels.clone().unwrap_or_default();
        if spec.node_selector.iter().flatten().any(|(k, v)| labels.get(k) != Some(v)) {
            return false;
        }
        let mine = host_ports(pod);
        if already.iter().any(|p| host_ports(p).iter().any(|u| mine.iter().any(|m| m.port == u.port))) {
            return false;
        }
        let alloc = status.allocatable.as_ref().unwrap();
        let cap_cpu = parse_quantity_milli(&alloc["cpu"].0).unwrap();
        let cap_mem = parse_quantity(&alloc["memory"].0).unwrap();
        let cap_pods = parse_quantity(&alloc["pods"].0).unwrap();
        let req = |p: &Pod| pod_request(p, false).unwrap();
        let used_cpu: i64 = already.iter().map(|p| req(p).milli_cpu).sum();
        let used_mem: i64 = already.iter().map(|p| req(p).memory).sum();
        let r = req(pod);
        (already.len() as i64) < cap_pods
            && (r.milli_cpu == 0 || used_cpu + r.milli_cpu <= cap_cpu)
            && (r.memory == 0 || used_mem + r.memory <= cap_mem)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Every bind passes every filter given the pods bound before it (so allocatable is never
        /// exceeded), and "unschedulable" is only said when no node fits.
        #[test]
        fn batch_scheduling_is_sound_and_complete(
            gen_nodes in proptest::collection::vec(gen_node(), 0..6),
            gen_pods in proptest::collection::vec(gen_pod(), 1..14),
        ) {
            let nodes: Vec<Node> = gen_nodes.iter().enumerate().map(|(i, g)| build_node(i, g)).collect();
            let pods: Vec<Pod> = gen_pods.iter().enumerate().map(|(i, g)| build_pod(i, g)).collect();
            let mut infos = node_infos(&nodes, &[]);
            let counts = HashMap::new();
            let mut placed: HashMap<String, Vec<&Pod>> = HashMap::new();
            for p in &pods {
                let decision = schedule(p, &mut infos, &counts);
                match decision {
                    Decision::Bind(name) => {
                        let n = nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name.as_str())).unwrap();
                        let already = placed.entry(name.clone()).or_default();
                        prop_assert!(fits(p, n, already), "bound {:?} to {} that does not fit", p.metadata.name, name);
                        already.push(p);
                    }
                    Decision::Unschedulable(msg) => {
                        for n in &nodes {
                            let already = placed.get(n.metadata.name.as_deref().unwrap()).cloned().unwrap_or_default();
                            prop_assert!(!fits(p, n, &already), "said {msg:?} but {:?} fits", n.metadata.name);
                        }
                        if !nodes.is_empty() {
                            let prefix = format!("0/{} nodes are available: ", nodes.len());
                            prop_assert!(msg.starts_with(&prefix), "{}", msg);
                        }
                    }
                }
            }
            for info in &infos {
                prop_assert!(info.requested.pods <= info.allocatable.pods);
                prop_assert!(info.requested.milli_cpu <= info.allocatable.milli_cpu);
                prop_assert!(info.requested.memory <= info.allocatable.memory);
            }
        }

        /// Same inputs, same answers (no hidden randomness or map-order dependence).
        #[test]
        fn scheduling_is_deterministic(
            gen_nodes in proptest::collection::vec(gen_node(), 1..5),
            gen_pods in proptest::collection::vec(gen_pod(), 1..8),
        ) {
            let nodes: Vec<Node> = gen_nodes.iter().enumerate().map(|(i, g)| build_node(i, g)).collect();
            let pods: Vec<Pod> = gen_pods.iter().enumerate().map(|(i, g)| build_pod(i, g)).collect();
            let go = || {
                let mut infos = node_infos(&nodes, &[]);
                pods.iter().map(|p| schedule(p, &mut infos, &HashMap::new())).collect::<Vec<_>>()
            };
            prop_assert_eq!(go(), go());
        }
    }
}
