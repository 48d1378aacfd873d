//! Deployment controller: the pure decision half of Kubernetes' `pkg/controller/deployment`.
//!
//! [`plan`] runs one `syncDeployment` against an in-memory copy of the Deployment's ReplicaSets and reports
//! every write that sync would make, in the order Kubernetes makes them:
//!
//! ```text
//!   claim ReplicaSets (adopt matching orphans, release owned ones that stopped matching)
//!   being deleted?            -> status only
//!   pause / resume condition  (Progressing Unknown DeploymentPaused / DeploymentResumed)
//!   paused?                   -> sync: proportional scale only, trim history, status
//!   scaling event?            -> sync (desired-replicas annotation differs from spec.replicas)
//!   Recreate                  -> old RSs to 0, wait for old pods to go, create/scale the new RS
//!   RollingUpdate             -> create new RS, scale it up within maxSurge, scale old ones down
//!                                within maxUnavailable, trim history once complete, progress status
//! ```
//!
//! Where Kubernetes writes a ReplicaSet and then continues with the object the API server returned, the plan
//! continues with its in-memory copy; the effect of one plan is the effect of one conflict-free sync.
//! Fields the API server defaults are read with those defaults (replicas 1, RollingUpdate 25%/25%,
//! revisionHistoryLimit 10, progressDeadlineSeconds 600).

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::podutil::{self, Selector, SelectorError};

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// Label added to a Deployment's ReplicaSets (and so their pods) to keep template versions apart.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Deployment annotations never copied onto ReplicaSets.
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];
/// Kubernetes caps the revision-history annotation at about 100 revisions.
const MAX_REV_HISTORY_LENGTH_IN_CHARS: i64 = 2000;

// Condition types and reasons, with Kubernetes' spelling.
pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const REPLICA_SET_UPDATED_REASON: &str = "ReplicaSetUpdated";
pub const NEW_REPLICA_SET_REASON: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
pub const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
pub const PAUSED_DEPLOY_REASON: &str = "DeploymentPaused";
pub const RESUMED_DEPLOY_REASON: &str = "DeploymentResumed";
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

/// A change to an existing ReplicaSet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RsChange {
    pub name: String,
    /// The ReplicaSet's `spec.replicas` after the change (unchanged value when only annotations change).
    pub replicas: i32,
    /// Annotations to set (merged over the existing ones; nothing is removed).
    pub annotations: BTreeMap<String, String>,
    /// New `spec.minReadySeconds` when the new ReplicaSet has to follow the Deployment's.
    pub min_ready_seconds: Option<i32>,
    /// Set the Deployment as controller owner (adopting an orphan that matches the selector).
    pub adopt: bool,
    /// Remove the Deployment's owner reference (the ReplicaSet no longer matches the selector).
    pub release: bool,
}

/// Why a Deployment cannot be planned at all (the API server's validation should have refused it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    #[error("invalid label selector")]
    InvalidSelector(#[source] SelectorError),
    #[error("invalid {field} {value:?}: must be an integer or a percentage like \"25%\"")]
    InvalidIntOrPercent { field: &'static str, value: String },
    #[error("unsupported deployment strategy type {0:?}")]
    UnknownStrategy(String),
}

/// What one reconcile of a Deployment should do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentPlan {
    /// A new ReplicaSet to create for the current template (name "<deployment>-<hash>", label
    /// pod-template-hash=<hash> on the RS, its selector and template; annotations revision, desired-replicas,
    /// max-replicas; controller ownerRef with blockOwnerDeletion). None if it exists.
    pub create_rs: Option<ReplicaSet>,
    /// ReplicaSets to update: scaling, revision/desired-replicas/max-replicas annotations, adoption, release.
    pub update_rs: Vec<RsChange>,
    /// Old ReplicaSets beyond revisionHistoryLimit to delete (only those with 0 replicas and 0 status
    /// replicas, oldest revisions first).
    pub delete_rs: Vec<String>,
    /// Annotations to set on the Deployment (deployment.kubernetes.io/revision).
    pub deployment_annotations: BTreeMap<String, String>,
    /// New status if changed.
    pub status: Option<DeploymentStatus>,
    /// Events to record: (type Normal|Warning, reason, message).
    pub events: Vec<(String, String, String)>,
    /// Reconcile again after this many seconds (progress-deadline check, or retry after a hash collision).
    pub requeue_after: Option<i64>,
    /// Set when the Deployment is invalid; nothing else is planned then.
    pub error: Option<DeploymentError>,
}

// === template hash ===

/// Stable name suffix for a pod template: FNV-1a 32 over a canonical JSON of the template (keys sorted;
/// nulls, `[]` and `{}` dropped), then the collision count as 8 little-endian bytes if set, rendered like
/// Kubernetes' `rand.SafeEncodeString` of the decimal hash.
///
/// Example: a hash of 3_735_928_559 is the string "3735928559"; each digit byte b maps to
/// "bcdfghjklmnpqrstvwxz2456789"[b % 27], so '0'..'9' (48..57) become "456789bcdf" and the name suffix is
/// "7c79f6d99f": no vowels (no accidental words) and nothing easily misread.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut canonical = String::new();
    write_canonical(&normalized_template(template, false), &mut canonical);
    let mut hash = fnv1a32(0x811c_9dc5, canonical.as_bytes());
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv1a32(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

fn fnv1a32(mut hash: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes().map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()])).collect()
}

/// The template as JSON with empty values dropped, optionally without the pod-template-hash label: the
/// basis of both the hash and Kubernetes' `EqualIgnoreHash` (semantic equality treats nil and empty
/// slices and maps alike).
fn normalized_template(template: &PodTemplateSpec, strip_hash: bool) -> Value {
    let mut t = template.clone();
    if strip_hash && let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    serde_json::to_value(&t).ok().and_then(prune).unwrap_or(Value::Null)
}

fn prune(v: Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().map(|i| prune(i).unwrap_or(Value::Null)).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> =
                map.into_iter().filter_map(|(k, v)| prune(v).map(|v| (k, v))).collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        other => Some(other),
    }
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(k) {
                    write_canonical(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Kubernetes' `EqualIgnoreHash`: the templates are equal once the pod-template-hash label is ignored.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    normalized_template(a, true) == normalized_template(b, true)
}

// === maxSurge / maxUnavailable ===

/// Kubernetes' `GetScaledValueFromIntOrPercent`: an int as is, "N%" of `total` rounded up or down.
///
/// 25% of 10 is 2.5: 3 rounding up (maxSurge), 2 rounding down (maxUnavailable).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool, field: &'static str) -> Result<i32, DeploymentError> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let invalid = || DeploymentError::InvalidIntOrPercent { field, value: s.clone() };
            let percent: i64 = s.strip_suffix('%').ok_or_else(invalid)?.parse().map_err(|_| invalid())?;
            let scaled = percent.checked_mul(i64::from(total)).ok_or_else(invalid)?;
            let value = if round_up { -((-scaled).div_euclid(100)) } else { scaled.div_euclid(100) };
            i32::try_from(value).map_err(|_| invalid())
        }
    }
}

/// Kubernetes' `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable rounded down) for `desired`
/// replicas; when both come out 0, maxUnavailable becomes 1 so the rollout can move at all.
///
/// Worked examples:
/// - 10 desired, 25% / 25%: surge ceil(2.5) = 3, unavailable floor(2.5) = 2.
/// - 1 desired, surge 0%, unavailable 25%: floor(0.25) = 0 and 0 → unavailable 1 (old -1, then new +1).
/// - 3 desired, surge 1, unavailable 0: (1, 0): new +1, then old -1, repeated.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), DeploymentError> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true, "maxSurge")?;
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false, "maxUnavailable")?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

#[derive(Debug, Clone, PartialEq)]
enum Strategy {
    Recreate,
    /// Resolved for the current `spec.replicas`.
    RollingUpdate {
        max_surge: i32,
        max_unavailable: i32,
    },
}

fn resolve_strategy(d: &Deployment, replicas: i32) -> Result<Strategy, DeploymentError> {
    let strategy = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
    match strategy.and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") {
        "Recreate" => Ok(Strategy::Recreate),
        "RollingUpdate" => {
            let default = IntOrString::String("25%".into());
            let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
            let surge = rolling.and_then(|r| r.max_surge.as_ref()).unwrap_or(&default);
            let unavailable = rolling.and_then(|r| r.max_unavailable.as_ref()).unwrap_or(&default);
            let (max_surge, unavailable) = resolve_fenceposts(Some(surge), Some(unavailable), replicas)?;
            // Kubernetes' MaxUnavailable: 0 for 0 replicas, never more than the replicas. Validation keeps
            // both non-negative; clamping keeps the arithmetic below from overflowing if it did not.
            let max_unavailable = if replicas == 0 { 0 } else { unavailable.clamp(0, replicas) };
            let max_surge = max_surge.max(0);
            Ok(Strategy::RollingUpdate { max_surge, max_unavailable })
        }
        other => Err(DeploymentError::UnknownStrategy(other.to_string())),
    }
}

// === plan ===

/// Plan one sync of `d`, given all ReplicaSets and all pods of its namespace, at `now` (unix seconds).
pub fn plan(d: &Deployment, rss: &[ReplicaSet], pods: &[Pod], now: i64) -> DeploymentPlan {
    let mut out = DeploymentPlan::default();
    let Some(spec) = d.spec.as_ref() else {
        return out;
    };
    if podutil::selector_is_empty(&spec.selector) {
        out.events.push((
            "Warning".into(),
            "SelectingAll".into(),
            "This deployment is selecting all pods. A non-empty selector is required.".into(),
        ));
        let generation = d.metadata.generation.unwrap_or(0);
        let mut status = d.status.clone().unwrap_or_default();
        if status.observed_generation.unwrap_or(0) < generation {
            status.observed_generation = Some(generation);
            out.status = Some(status);
        }
        return out;
    }
    let selector = match Selector::parse(&spec.selector) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(DeploymentError::InvalidSelector(e));
            return out;
        }
    };
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let strategy = match resolve_strategy(d, replicas) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };

    let mut planner = Planner::new(d, replicas, strategy, rss, now);
    planner.claim_replica_sets(rss, &selector);
    let collided = planner.run(pods, &selector).is_err();
    planner.finish(collided)
}

/// The new ReplicaSet's name would clash with an existing ReplicaSet of another template: the sync stops
/// after bumping `status.collisionCount`, which changes the hash next time.
struct HashCollision;

/// A ReplicaSet as the sync sees it: the observed object with this sync's changes applied.
#[derive(Debug, Clone)]
struct WorkRs {
    rs: ReplicaSet,
    /// The observed object; `None` for the ReplicaSet this plan creates.
    original: Option<ReplicaSet>,
    /// Creation time used for ordering (`now` for the one being created).
    created: Option<Time>,
    adopt: bool,
}

impl WorkRs {
    fn name(&self) -> &str {
        self.rs.metadata.name.as_deref().unwrap_or("")
    }
    /// `spec.replicas` (API default 1); counts are never negative once validated, clamp to be sure.
    fn replicas(&self) -> i32 {
        self.rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
    }
    fn set_replicas(&mut self, n: i32) {
        self.rs.spec.get_or_insert_with(Default::default).replicas = Some(n);
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        self.rs.metadata.annotations.as_ref()?.get(key).map(String::as_str)
    }
    fn annotations_mut(&mut self) -> &mut BTreeMap<String, String> {
        self.rs.metadata.annotations.get_or_insert_with(BTreeMap::new)
    }
    fn status_replicas(&self) -> i32 {
        self.rs.status.as_ref().map_or(0, |s| s.replicas).max(0)
    }
    fn status_available(&self) -> i32 {
        self.rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0).max(0)
    }
    fn status_ready(&self) -> i32 {
        self.rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0).max(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.rs.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }
    /// `deployment.kubernetes.io/revision`: 0 when absent, an error when unparsable.
    fn revision(&self) -> Result<i64, ()> {
        self.annotation(REVISION_ANNOTATION).map_or(Ok(0), |v| v.parse().map_err(|_| ()))
    }
    fn int_annotation(&self, key: &str) -> Option<i32> {
        self.annotation(key)?.parse().ok()
    }
    fn is_deleting(&self) -> bool {
        podutil::is_deleting(&self.rs.metadata)
    }
}

/// The ReplicaSets as they stood when the sync chose its new and old ones; the status is computed from
/// these, as Kubernetes computes it from the objects it listed, not from its own updates.
struct Snapshot {
    all: Vec<WorkRs>,
    new: Option<WorkRs>,
}

struct Planner<'a> {
    d: &'a Deployment,
    now: i64,
    name: String,
    replicas: i32,
    strategy: Strategy,
    /// `MaxSurge(d)`: 0 for Recreate.
    max_surge: i32,
    /// `MaxUnavailable(d)`: 0 for Recreate.
    max_unavailable: i32,
    /// `progressDeadlineSeconds`, `None` when the Deployment has no deadline (MaxInt32).
    progress_deadline: Option<i32>,
    template: PodTemplateSpec,
    /// The template normalized for `equal_ignore_hash`, computed once.
    template_key: Value,
    /// Working copy of the Deployment's status: conditions set on the way (pause, new RS) and collisionCount.
    status: DeploymentStatus,
    /// Working copy of the Deployment's annotations (revision).
    annotations: BTreeMap<String, String>,
    /// The ReplicaSets this Deployment controls after claiming, plus the one being created.
    rss: Vec<WorkRs>,
    /// Names of every ReplicaSet in the namespace (a new name must not clash).
    taken_names: HashSet<String>,
    released: Vec<RsChange>,
    events: Vec<(String, String, String)>,
    delete_rs: Vec<String>,
    final_status: Option<DeploymentStatus>,
    requeue_after: Option<i64>,
}

impl<'a> Planner<'a> {
    fn new(d: &'a Deployment, replicas: i32, strategy: Strategy, rss: &[ReplicaSet], now: i64) -> Self {
        let spec = d.spec.clone().unwrap_or_default();
        let (max_surge, max_unavailable) = match strategy {
            Strategy::Recreate => (0, 0),
            Strategy::RollingUpdate { max_surge, max_unavailable } => (max_surge, max_unavailable),
        };
        let progress_deadline = match spec.progress_deadline_seconds {
            Some(i32::MAX) => None,
            Some(s) => Some(s),
            None => Some(DEFAULT_PROGRESS_DEADLINE_SECONDS),
        };
        Planner {
            d,
            now,
            name: d.metadata.name.clone().unwrap_or_default(),
            replicas,
            strategy,
            max_surge,
            max_unavailable,
            progress_deadline,
            template_key: normalized_template(&spec.template, true),
            template: spec.template,
            status: d.status.clone().unwrap_or_default(),
            annotations: d.metadata.annotations.clone().unwrap_or_default(),
            rss: Vec::new(),
            taken_names: rss.iter().filter_map(|rs| rs.metadata.name.clone()).collect(),
            released: Vec::new(),
            events: Vec::new(),
            delete_rs: Vec::new(),
            final_status: None,
            requeue_after: None,
        }
    }

    fn spec(&self) -> Option<&k8s_openapi::api::apps::v1::DeploymentSpec> {
        self.d.spec.as_ref()
    }
    fn paused(&self) -> bool {
        self.spec().and_then(|s| s.paused).unwrap_or(false)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }
    fn generation(&self) -> i64 {
        self.d.metadata.generation.unwrap_or(0)
    }
    fn original_status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }
    fn event(&mut self, type_: &str, reason: &str, message: String) {
        self.events.push((type_.into(), reason.into(), message));
    }

    /// Kubernetes' `ClaimReplicaSets`: keep owned matching ones, adopt matching orphans (unless either side
    /// is being deleted), release owned ones that stopped matching (unless the Deployment is being deleted).
    fn claim_replica_sets(&mut self, rss: &[ReplicaSet], selector: &Selector) {
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        let deleting = podutil::is_deleting(&self.d.metadata);
        for rs in rss.iter().filter(|rs| podutil::same_namespace(&self.d.metadata, &rs.metadata)) {
            let matches = selector.matches(rs.metadata.labels.as_ref());
            let work = |adopt| WorkRs {
                rs: rs.clone(),
                original: Some(rs.clone()),
                created: rs.metadata.creation_timestamp.clone(),
                adopt,
            };
            match podutil::controller_of(&rs.metadata) {
                Some(owner) if owner.uid != uid => {}
                Some(_) if matches => self.rss.push(work(false)),
                Some(_) if !deleting => self.released.push(RsChange {
                    name: rs.metadata.name.clone().unwrap_or_default(),
                    replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    release: true,
                    ..RsChange::default()
                }),
                Some(_) => {}
                None if matches && !deleting && !podutil::is_deleting(&rs.metadata) => self.rss.push(work(true)),
                None => {}
            }
        }
    }

    fn run(&mut self, pods: &[Pod], selector: &Selector) -> Result<(), HashCollision> {
        if podutil::is_deleting(&self.d.metadata) {
            return self.sync_status_only();
        }
        self.check_paused_conditions();
        if self.paused() {
            return self.sync();
        }
        if self.is_scaling_event()? {
            return self.sync();
        }
        match self.strategy {
            Strategy::Recreate => self.rollout_recreate(pods, selector),
            Strategy::RollingUpdate { .. } => self.rollout_rolling(),
        }
    }

    // --- ordering helpers ---

    /// Indices sorted oldest first (creation time, then name): `ReplicaSetsByCreationTimestamp`.
    fn by_creation(&self, mut idx: Vec<usize>) -> Vec<usize> {
        idx.sort_by(|&a, &b| {
            podutil::cmp_time(self.rss[a].created.as_ref(), self.rss[b].created.as_ref())
                .then_with(|| self.rss[a].name().cmp(self.rss[b].name()))
        });
        idx
    }

    fn active(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().copied().filter(|&i| self.rss[i].replicas() > 0).collect()
    }

    fn sum_replicas(&self, idx: &[usize]) -> i32 {
        sat_sum(idx.iter().map(|&i| self.rss[i].replicas()))
    }

    fn snapshot(&self, new: Option<usize>, old: &[usize]) -> Snapshot {
        let mut all: Vec<WorkRs> = old.iter().map(|&i| self.rss[i].clone()).collect();
        all.extend(new.map(|i| self.rss[i].clone()));
        Snapshot { all, new: new.map(|i| self.rss[i].clone()) }
    }

    // --- new / old ReplicaSets and revisions ---

    /// Kubernetes' `getAllReplicaSetsAndSyncRevision`: find the new ReplicaSet (oldest one whose template
    /// equals the Deployment's ignoring the hash label) and the old ones; bring the new one's revision to
    /// max(old revisions) + 1 (this is what makes `rollout undo` give the old ReplicaSet a fresh revision),
    /// copy the Deployment's annotations onto it, and mirror its revision on the Deployment. With `create`,
    /// create the new ReplicaSet when there is none.
    fn get_all_and_sync_revision(&mut self, create: bool) -> Result<(Option<usize>, Vec<usize>), HashCollision> {
        let order = self.by_creation((0..self.rss.len()).collect());
        let new = order
            .iter()
            .copied()
            .find(|&i| self.rss[i].template().is_some_and(|t| normalized_template(t, true) == self.template_key));
        let old: Vec<usize> = order.into_iter().filter(|&i| Some(i) != new).collect();
        let max_old_revision = old.iter().filter_map(|&i| self.rss[i].revision().ok()).max().unwrap_or(0).max(0);
        let new_revision = max_old_revision.saturating_add(1);

        if let Some(n) = new {
            let annotations_updated = self.set_new_rs_annotations(n, new_revision, true);
            if annotations_updated || self.rss[n].min_ready_seconds() != self.min_ready_seconds() {
                let mrs = self.spec().and_then(|s| s.min_ready_seconds);
                self.rss[n].rs.spec.get_or_insert_with(Default::default).min_ready_seconds = mrs;
            }
            let revision = self.rss[n].annotation(REVISION_ANNOTATION).unwrap_or("").to_string();
            self.set_deployment_revision(&revision);
            if self.progress_deadline.is_some() && self.condition(PROGRESSING).is_none() {
                let msg = format!("Found new replica set {}", go_quote(self.rss[n].name()));
                self.set_condition(PROGRESSING, "True", FOUND_NEW_RS_REASON, msg);
            }
            return Ok((Some(n), old));
        }
        if !create {
            return Ok((None, old));
        }
        let n = self.create_new_rs(&old, new_revision)?;
        Ok((Some(n), old))
    }

    fn create_new_rs(&mut self, old: &[usize], new_revision: i64) -> Result<usize, HashCollision> {
        let hash = pod_template_hash(&self.template, self.status.collision_count);
        let name = format!("{}-{}", self.name, hash);
        if self.taken_names.contains(&name) {
            // Another template already has this name: bump collisionCount and try a new hash next sync.
            let count = self.status.collision_count.unwrap_or(0);
            self.status.collision_count = Some(count.wrapping_add(1));
            return Err(HashCollision);
        }
        let mut template = self.template.clone();
        let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        meta.labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let labels = meta.labels.clone();
        let mut selector = self.spec().map(|s| s.selector.clone()).unwrap_or_default();
        selector.match_labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH_LABEL.into(), hash);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.d.metadata.namespace.clone(),
                labels,
                owner_references: Some(vec![podutil::new_controller_ref("apps/v1", "Deployment", &self.d.metadata)]),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: self.spec().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        self.rss.push(WorkRs { rs, original: None, created: Some(podutil::time_at(self.now)), adopt: false });
        let n = self.rss.len() - 1;
        let mut all = old.to_vec();
        all.push(n);
        let replicas = self.new_rs_new_replicas(&all, n);
        self.rss[n].set_replicas(replicas);
        self.set_new_rs_annotations(n, new_revision, false);
        if replicas > 0 {
            self.event("Normal", "ScalingReplicaSet", format!("Scaled up replica set {name} from 0 to {replicas}"));
        }
        self.set_deployment_revision(&new_revision.to_string());
        if self.progress_deadline.is_some() {
            let msg = format!("Created new replica set {}", go_quote(&name));
            self.set_condition(PROGRESSING, "True", NEW_REPLICA_SET_REASON, msg);
        }
        Ok(n)
    }

    /// Kubernetes' `SetNewReplicaSetAnnotations`; true if any annotation changed.
    fn set_new_rs_annotations(&mut self, n: usize, new_revision: i64, exists: bool) -> bool {
        let mut changed = false;
        let copy: Vec<(String, String)> = self
            .annotations
            .iter()
            .filter(|(k, _)| !ANNOTATIONS_TO_SKIP.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let work = &mut self.rss[n];
        for (k, v) in copy {
            if work.annotation(&k) != Some(v.as_str()) {
                work.annotations_mut().insert(k, v);
                changed = true;
            }
        }
        let old_revision = work.annotation(REVISION_ANNOTATION).map(str::to_string);
        let old_revision_int = match old_revision.as_deref().map(str::parse::<i64>) {
            None => 0,
            Some(Ok(v)) => v,
            // Kubernetes leaves an unparsable revision alone.
            Some(Err(_)) if old_revision.as_deref() != Some("") => return changed,
            Some(Err(_)) => 0,
        };
        if old_revision_int < new_revision {
            work.annotations_mut().insert(REVISION_ANNOTATION.into(), new_revision.to_string());
            changed = true;
            // Rolling back to this ReplicaSet: remember the revisions it served before.
            if let Some(old_revision) = old_revision {
                append_revision_history(work.annotations_mut(), &old_revision);
            }
        }
        if !exists {
            let (desired, max) = (self.replicas, self.replicas.saturating_add(self.max_surge));
            changed |= set_replicas_annotations(&mut self.rss[n], desired, max);
        }
        changed
    }

    fn set_deployment_revision(&mut self, revision: &str) {
        if self.annotations.get(REVISION_ANNOTATION).map_or("", String::as_str) != revision {
            self.annotations.insert(REVISION_ANNOTATION.into(), revision.into());
        }
    }

    /// Kubernetes' `NewRSNewReplicas`: how big the new ReplicaSet may be now.
    ///
    /// RollingUpdate, 10 replicas, maxSurge 3: at most 13 pods. Old RS at 10, new at 0 → new may grow by
    /// min(13 - 10, 10 - 0) = 3. Recreate: straight to `replicas`.
    fn new_rs_new_replicas(&self, all: &[usize], n: usize) -> i32 {
        match self.strategy {
            Strategy::Recreate => self.replicas,
            Strategy::RollingUpdate { max_surge, .. } => {
                let current = self.sum_replicas(all);
                let max_total = self.replicas.saturating_add(max_surge);
                let new_replicas = self.rss[n].replicas();
                if current >= max_total {
                    return new_replicas;
                }
                let scale_up = max_total.saturating_sub(current).min(self.replicas.saturating_sub(new_replicas));
                new_replicas.saturating_add(scale_up)
            }
        }
    }

    // --- scaling ---

    /// Kubernetes' `scaleReplicaSet`: set size and the desired/max-replicas annotations; an event when the
    /// size changes. Returns whether the size changed.
    fn scale_replica_set(&mut self, i: usize, new_scale: i32) -> bool {
        let old_scale = self.rss[i].replicas();
        let (desired, max) = (self.replicas, self.replicas.saturating_add(self.max_surge));
        let size_changed = old_scale != new_scale;
        let annotations_changed = set_replicas_annotations(&mut self.rss[i], desired, max);
        if size_changed || annotations_changed {
            self.rss[i].set_replicas(new_scale);
        }
        if size_changed {
            let op = if old_scale < new_scale { "up" } else { "down" };
            let name = self.rss[i].name().to_string();
            let msg = format!("Scaled {op} replica set {name} from {old_scale} to {new_scale}");
            self.event("Normal", "ScalingReplicaSet", msg);
        }
        size_changed
    }

    /// Kubernetes' `scaleReplicaSetAndRecordEvent`: nothing at all when the size is already right.
    fn scale_and_record(&mut self, i: usize, new_scale: i32) -> bool {
        self.rss[i].replicas() != new_scale && self.scale_replica_set(i, new_scale)
    }

    fn is_scaling_event(&mut self) -> Result<bool, HashCollision> {
        let (new, old) = self.get_all_and_sync_revision(false)?;
        let mut all = old;
        all.extend(new);
        let replicas = self.replicas;
        Ok(self
            .active(&all)
            .iter()
            .any(|&i| self.rss[i].int_annotation(DESIRED_REPLICAS_ANNOTATION).is_some_and(|d| d != replicas)))
    }

    /// Kubernetes' `sync`: used while paused and on scaling events.
    fn sync(&mut self) -> Result<(), HashCollision> {
        let (new, old) = self.get_all_and_sync_revision(false)?;
        let snapshot = self.snapshot(new, &old);
        self.scale(new, &old);
        if self.paused() {
            self.cleanup(&old);
        }
        self.final_status = Some(self.calculate_status(&snapshot));
        Ok(())
    }

    fn sync_status_only(&mut self) -> Result<(), HashCollision> {
        let (new, old) = self.get_all_and_sync_revision(false)?;
        let snapshot = self.snapshot(new, &old);
        self.final_status = Some(self.calculate_status(&snapshot));
        Ok(())
    }

    /// Kubernetes' `scale`: a lone active ReplicaSet takes `replicas`; a saturated new one lets the old ones
    /// go; otherwise (RollingUpdate) the change is spread over the active ReplicaSets in proportion to their
    /// size, so a scale-up never speeds up a rollout that may be bad.
    ///
    /// Worked example (Kubernetes' docs): 10 replicas, maxSurge 3, mid-rollout old = 8, new = 5 (both
    /// annotated max-replicas 13). Scaled to 15, so up to 18 pods: 5 to add. Largest first:
    /// old 8 × 18 / 13 = 11.08 → 11 (+3), new 5 × 18 / 13 = 6.92 → 7 (+2); 3 + 2 = 5, nothing left over.
    fn scale(&mut self, new: Option<usize>, old: &[usize]) {
        if let Some(target) = self.find_active_or_latest(new, old) {
            // Kubernetes returns here without touching anything when the size is already right. If the
            // desired-replicas annotation is stale (e.g. scaled 41 → 17 → 15 while the RS sat at 15), every
            // later sync is again a "scaling event" that does nothing, and the rollout never completes nor
            // trims history (kubernetes/kubernetes#138036, #138840, both open). Like those fixes, refresh the
            // annotations even when the size matches; no event, since nothing is scaled.
            self.scale_replica_set(target, self.replicas);
            return;
        }
        if let Some(n) = new
            && self.is_saturated(n)
        {
            for i in self.active(old) {
                self.scale_and_record(i, 0);
            }
            return;
        }
        let Strategy::RollingUpdate { max_surge, .. } = self.strategy else {
            return;
        };
        let mut all: Vec<usize> = old.to_vec();
        all.extend(new);
        let mut all = self.active(&all);
        let all_replicas = self.sum_replicas(&all);
        let allowed = if self.replicas > 0 { self.replicas.saturating_add(max_surge) } else { 0 };
        let to_add = allowed.saturating_sub(all_replicas);
        // Biggest first; equal sizes: newest first when growing, oldest first when shrinking.
        let newest_first = to_add > 0;
        if to_add != 0 {
            all.sort_by(|&a, &b| {
                let by_size = self.rss[b].replicas().cmp(&self.rss[a].replicas());
                let by_age = podutil::cmp_time(self.rss[a].created.as_ref(), self.rss[b].created.as_ref())
                    .then_with(|| self.rss[a].name().cmp(self.rss[b].name()));
                by_size.then(if newest_first { by_age.reverse() } else { by_age })
            });
        }
        let mut added = 0;
        let mut sizes = Vec::with_capacity(all.len());
        for &i in &all {
            if to_add == 0 {
                sizes.push(self.rss[i].replicas());
                continue;
            }
            let proportion = self.proportion(i, to_add, added);
            sizes.push(self.rss[i].replicas().saturating_add(proportion));
            added = added.saturating_add(proportion);
        }
        for (k, &i) in all.iter().enumerate() {
            let mut size = sizes[k];
            if k == 0 && to_add != 0 {
                // Leftovers from rounding go to the biggest ReplicaSet.
                size = size.saturating_add(to_add.saturating_sub(added)).max(0);
            }
            self.scale_replica_set(i, size);
        }
    }

    /// Kubernetes' `FindActiveOrLatest`: the only active ReplicaSet, or the newest one when none is active;
    /// `None` when several are active.
    fn find_active_or_latest(&self, new: Option<usize>, old: &[usize]) -> Option<usize> {
        if new.is_none() && old.is_empty() {
            return None;
        }
        let mut newest_first = self.by_creation(old.to_vec());
        newest_first.reverse();
        let mut candidates = newest_first.clone();
        candidates.extend(new);
        let active = self.active(&candidates);
        match active.len() {
            0 => new.or(newest_first.first().copied()),
            1 => Some(active[0]),
            _ => None,
        }
    }

    fn is_saturated(&self, n: usize) -> bool {
        let rs = &self.rss[n];
        rs.int_annotation(DESIRED_REPLICAS_ANNOTATION) == Some(self.replicas)
            && rs.replicas() == self.replicas
            && rs.status_available() == self.replicas
    }

    /// Kubernetes' `GetProportion`: this ReplicaSet's share of `to_add`, never beyond what is left.
    fn proportion(&self, i: usize, to_add: i32, added: i32) -> i32 {
        if self.rss[i].replicas() == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.replica_set_fraction(i);
        let allowed = to_add.saturating_sub(added);
        if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
    }

    /// Kubernetes' `getReplicaSetFraction`: rs × (replicas + maxSurge) / max-replicas annotation, rounded
    /// half away from zero, minus the current size. Scaling to 0 takes everything.
    fn replica_set_fraction(&self, i: usize) -> i32 {
        let size = self.rss[i].replicas();
        if self.replicas == 0 {
            return -size;
        }
        let deployment_replicas = self.replicas.saturating_add(self.max_surge);
        let annotated = self.rss[i]
            .int_annotation(MAX_REPLICAS_ANNOTATION)
            .unwrap_or_else(|| self.original_status().replicas.unwrap_or(0));
        if annotated <= 0 {
            // Kubernetes would divide by zero here; claiming no share leaves it to the leftover rule.
            return 0;
        }
        let new_size = (f64::from(size) * f64::from(deployment_replicas)) / f64::from(annotated);
        (new_size.round() as i32).saturating_sub(size)
    }

    // --- rolling update ---

    fn rollout_rolling(&mut self) -> Result<(), HashCollision> {
        let (new, old) = self.get_all_and_sync_revision(true)?;
        let Some(new) = new else {
            return Ok(());
        };
        let snapshot = self.snapshot(Some(new), &old);
        let mut all = old.clone();
        all.push(new);

        if self.reconcile_new_replica_set(&all, new) {
            self.sync_rollout_status(&snapshot);
            return Ok(());
        }
        let active_old = self.active(&old);
        if self.reconcile_old_replica_sets(&all, &active_old, new) {
            self.sync_rollout_status(&snapshot);
            return Ok(());
        }
        if self.deployment_complete(&self.original_status()) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(&snapshot);
        Ok(())
    }

    fn reconcile_new_replica_set(&mut self, all: &[usize], new: usize) -> bool {
        let current = self.rss[new].replicas();
        if current == self.replicas {
            return false;
        }
        if current > self.replicas {
            return self.scale_and_record(new, self.replicas);
        }
        let target = self.new_rs_new_replicas(all, new);
        self.scale_and_record(new, target)
    }

    /// Kubernetes' `reconcileOldReplicaSets`.
    ///
    /// maxScaledDown = allPods − minAvailable − newRSUnavailable. Example: 10 replicas, maxUnavailable 2,
    /// maxSurge 3; old 10 (all available), new scaled to 3 (none available yet): 13 − 8 − 3 = 2, so up to 2
    /// old pods may go now. Unhealthy old pods go first (they cost no availability), then old pods while
    /// more than minAvailable pods are available.
    fn reconcile_old_replica_sets(&mut self, all: &[usize], old: &[usize], new: usize) -> bool {
        if self.sum_replicas(old) == 0 {
            return false;
        }
        let all_pods = self.sum_replicas(all);
        let min_available = self.replicas.saturating_sub(self.max_unavailable);
        let new_unavailable = self.rss[new].replicas().saturating_sub(self.rss[new].status_available());
        let max_scaled_down = all_pods.saturating_sub(min_available).saturating_sub(new_unavailable);
        if max_scaled_down <= 0 {
            return false;
        }
        let old = self.by_creation(old.to_vec());
        let Some(cleaned) = self.cleanup_unhealthy_replicas(&old, max_scaled_down) else {
            // Kubernetes gives up on this round (the ReplicaSets it already shrank stay shrunk).
            return false;
        };
        let scaled = self.scale_down_old_for_rolling_update(&old, new);
        cleaned.saturating_add(scaled) > 0
    }

    /// Shrink old ReplicaSets by their unavailable pods (their pods are deleted not-ready first), at most
    /// `max_cleanup` in total. `None` where Kubernetes hits its "invalid request" error (an old ReplicaSet
    /// reporting more available pods than it wants).
    fn cleanup_unhealthy_replicas(&mut self, old: &[usize], max_cleanup: i32) -> Option<i32> {
        let mut total = 0;
        for &i in old {
            if total >= max_cleanup {
                break;
            }
            let (replicas, available) = (self.rss[i].replicas(), self.rss[i].status_available());
            if replicas == 0 || replicas == available {
                continue;
            }
            let count = max_cleanup.saturating_sub(total).min(replicas.saturating_sub(available));
            let target = replicas.saturating_sub(count);
            if target > replicas {
                return None;
            }
            self.scale_and_record(i, target);
            total = total.saturating_add(count);
        }
        Some(total)
    }

    /// Scale old ReplicaSets down (oldest first) by as many pods as are available beyond minAvailable,
    /// counting the new ReplicaSet and the still-active old ones.
    fn scale_down_old_for_rolling_update(&mut self, old: &[usize], new: usize) -> i32 {
        let min_available = self.replicas.saturating_sub(self.max_unavailable);
        let mut counted = old.to_vec();
        counted.push(new);
        let available = sat_sum(counted.iter().map(|&i| self.rss[i].status_available()));
        if available <= min_available {
            return 0;
        }
        let total = available.saturating_sub(min_available);
        let mut scaled = 0;
        for &i in old {
            if scaled >= total {
                break;
            }
            let replicas = self.rss[i].replicas();
            if replicas == 0 {
                continue;
            }
            let count = replicas.min(total.saturating_sub(scaled));
            self.scale_and_record(i, replicas.saturating_sub(count));
            scaled = scaled.saturating_add(count);
        }
        scaled
    }

    // --- recreate ---

    fn rollout_recreate(&mut self, pods: &[Pod], selector: &Selector) -> Result<(), HashCollision> {
        let (mut new, mut old) = self.get_all_and_sync_revision(false)?;
        let mut snapshot = self.snapshot(new, &old);
        let mut scaled_down = false;
        for i in self.active(&old) {
            scaled_down |= self.scale_and_record(i, 0);
        }
        if scaled_down || self.old_pods_running(new, &old, pods, selector) {
            self.sync_rollout_status(&snapshot);
            return Ok(());
        }
        if new.is_none() {
            (new, old) = self.get_all_and_sync_revision(true)?;
            snapshot = self.snapshot(new, &old);
        }
        if let Some(n) = new {
            self.scale_and_record(n, self.replicas);
        }
        if self.deployment_complete(&self.original_status()) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(&snapshot);
        Ok(())
    }

    /// Old ReplicaSets still report pods, or a pod of an old ReplicaSet has not finished (terminating pods
    /// count: Recreate waits until they are gone).
    fn old_pods_running(&self, new: Option<usize>, old: &[usize], pods: &[Pod], selector: &Selector) -> bool {
        if sat_sum(old.iter().map(|&i| self.rss[i].status_replicas())) > 0 {
            return true;
        }
        let new_uid = new.and_then(|n| self.rss[n].rs.metadata.uid.clone());
        let old_uids: HashSet<&str> = self
            .rss
            .iter()
            .filter_map(|w| w.rs.metadata.uid.as_deref())
            .filter(|uid| !uid.is_empty() && Some(*uid) != new_uid.as_deref())
            .collect();
        pods.iter().any(|p| {
            let phase = podutil::pod_phase(p);
            podutil::same_namespace(&self.d.metadata, &p.metadata)
                && selector.matches(p.metadata.labels.as_ref())
                && podutil::controller_of(&p.metadata).is_some_and(|o| old_uids.contains(o.uid.as_str()))
                && phase != "Failed"
                && phase != "Succeeded"
        })
    }

    // --- history ---

    /// Kubernetes' `cleanupDeployment`: delete the oldest-revision old ReplicaSets beyond
    /// revisionHistoryLimit, skipping any that still have (or want) pods or whose spec is not yet observed.
    fn cleanup(&mut self, old: &[usize]) {
        let limit = match self.spec().and_then(|s| s.revision_history_limit) {
            Some(i32::MAX) => return,
            Some(l) => l,
            None => DEFAULT_REVISION_HISTORY_LIMIT,
        };
        let cleanable: Vec<usize> = old.iter().copied().filter(|&i| !self.rss[i].is_deleting()).collect();
        let diff = i64::try_from(cleanable.len()).unwrap_or(i64::MAX) - i64::from(limit);
        if diff <= 0 {
            return;
        }
        let by_revision = podutil::merge_sort_by(cleanable, |&a, &b| {
            let (ra, rb) = (self.rss[a].revision(), self.rss[b].revision());
            match (ra, rb) {
                (Ok(x), Ok(y)) if x != y => x < y,
                _ => {
                    podutil::cmp_time(self.rss[a].created.as_ref(), self.rss[b].created.as_ref())
                        .then_with(|| self.rss[a].name().cmp(self.rss[b].name()))
                        == std::cmp::Ordering::Less
                }
            }
        });
        for &i in by_revision.iter().take(usize::try_from(diff).unwrap_or(usize::MAX)) {
            let rs = &self.rss[i];
            let generation = rs.rs.metadata.generation.unwrap_or(0);
            let observed = rs.rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            if rs.status_replicas() != 0 || rs.replicas() != 0 || generation > observed || rs.is_deleting() {
                continue;
            }
            self.delete_rs.push(rs.name().to_string());
        }
    }

    // --- status ---

    fn condition(&self, type_: &str) -> Option<&DeploymentCondition> {
        find_condition(&self.status, type_)
    }

    fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: String) {
        let cond = new_condition(type_, status, reason, message, self.now);
        set_condition(&mut self.status, cond);
    }

    /// Kubernetes' `checkPausedConditions`: mark pausing and resuming with an Unknown Progressing condition
    /// so that time spent paused never counts against the progress deadline.
    fn check_paused_conditions(&mut self) {
        if self.progress_deadline.is_none() {
            return;
        }
        let reason = self.condition(PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(TIMED_OUT_REASON) {
            return;
        }
        let paused_condition = reason.as_deref() == Some(PAUSED_DEPLOY_REASON);
        if self.paused() && !paused_condition {
            self.set_condition(PROGRESSING, "Unknown", PAUSED_DEPLOY_REASON, "Deployment is paused".into());
        } else if !self.paused() && paused_condition {
            self.set_condition(PROGRESSING, "Unknown", RESUMED_DEPLOY_REASON, "Deployment is resumed".into());
        }
    }

    /// Kubernetes' `calculateStatus`: counts from the ReplicaSets' statuses and the Available condition.
    fn calculate_status(&self, snapshot: &Snapshot) -> DeploymentStatus {
        let available = sat_sum(snapshot.all.iter().map(WorkRs::status_available));
        let total = sat_sum(snapshot.all.iter().map(WorkRs::replicas));
        let ready = sat_sum(snapshot.all.iter().map(WorkRs::status_ready));
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: Some(sat_sum(snapshot.all.iter().map(WorkRs::status_replicas))),
            updated_replicas: Some(snapshot.new.as_ref().map_or(0, WorkRs::status_replicas)),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            unavailable_replicas: Some(total.saturating_sub(available).max(0)),
            collision_count: self.status.collision_count,
            conditions: self.status.conditions.clone(),
            terminating_replicas: None,
        };
        let cond = if available >= self.replicas.saturating_sub(self.max_unavailable) {
            new_condition(
                AVAILABLE,
                "True",
                MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.",
                self.now,
            )
        } else {
            let msg = "Deployment does not have minimum availability.";
            new_condition(AVAILABLE, "False", MINIMUM_REPLICAS_UNAVAILABLE, msg, self.now)
        };
        set_condition(&mut status, cond);
        status
    }

    fn deployment_complete(&self, status: &DeploymentStatus) -> bool {
        let r = Some(self.replicas);
        status.updated_replicas.or(Some(0)) == r
            && status.replicas.or(Some(0)) == r
            && status.available_replicas.or(Some(0)) == r
            && status.observed_generation.unwrap_or(0) >= self.generation()
    }

    /// Kubernetes' `syncRolloutStatus`: the status plus the Progressing condition (complete, progressing,
    /// or timed out) and ReplicaFailure promoted from the ReplicaSets.
    fn sync_rollout_status(&mut self, snapshot: &Snapshot) {
        let mut status = self.calculate_status(snapshot);
        if self.progress_deadline.is_none() {
            remove_condition(&mut status, PROGRESSING);
        }
        let current = self.condition(PROGRESSING).cloned();
        let complete_before = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE_REASON);
        if let Some(deadline) = self.progress_deadline
            && !complete_before
        {
            let subject = match &snapshot.new {
                Some(rs) => format!("ReplicaSet {}", go_quote(rs.name())),
                None => format!("Deployment {}", go_quote(&self.name)),
            };
            if self.deployment_complete(&status) {
                let msg = format!("{subject} has successfully progressed.");
                set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON, msg, self.now));
            } else if deployment_progressing(&self.original_status(), &status) {
                let msg = format!("{subject} is progressing.");
                let mut cond = new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED_REASON, msg, self.now);
                // Progress refreshes lastUpdateTime even with an unchanged reason (the deadline counts from it).
                if let Some(c) = &current {
                    if c.status == "True" {
                        cond.last_transition_time = c.last_transition_time.clone();
                    }
                    remove_condition(&mut status, PROGRESSING);
                }
                set_condition(&mut status, cond);
            } else if self.timed_out(&status, deadline) {
                let msg = format!("{subject} has timed out progressing.");
                set_condition(&mut status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON, msg, self.now));
            }
        }
        match replica_failure(snapshot) {
            Some(cond) => set_condition(&mut status, cond),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        self.requeue_after = self.requeue_for_progress_check(&status);
        self.final_status = Some(status);
    }

    /// Kubernetes' `DeploymentTimedOut`: no progress recorded for longer than the deadline.
    /// lastUpdateTime 10:00:00, deadline 600 s: timed out from 10:10:01 on (strictly after 10:10:00).
    fn timed_out(&self, status: &DeploymentStatus, deadline: i32) -> bool {
        let Some(cond) = find_condition(status, PROGRESSING) else {
            return false;
        };
        match cond.reason.as_deref() {
            Some(NEW_RS_AVAILABLE_REASON) => false,
            Some(TIMED_OUT_REASON) => true,
            _ => {
                let from = cond.last_update_time.as_ref().map_or(0, |t| t.0.as_nanosecond());
                from + i128::from(deadline) * 1_000_000_000 < i128::from(self.now) * 1_000_000_000
            }
        }
    }

    /// Kubernetes' `requeueStuckDeployment`: look again when the deadline would pass.
    /// Updated at 10:00:00, deadline 600 s, now 10:03:00: 420 s (+1 against clock skew).
    fn requeue_for_progress_check(&self, status: &DeploymentStatus) -> Option<i64> {
        let deadline = self.progress_deadline?;
        let cond = find_condition(status, PROGRESSING)?;
        if self.deployment_complete(status) || cond.reason.as_deref() == Some(TIMED_OUT_REASON) {
            return None;
        }
        let from = cond.last_update_time.as_ref().map_or(0, |t| t.0.as_nanosecond());
        let after = from + i128::from(deadline) * 1_000_000_000 - i128::from(self.now) * 1_000_000_000;
        if after < 1_000_000_000 {
            return Some(1);
        }
        Some(i64::try_from(after / 1_000_000_000 + 1).unwrap_or(i64::MAX))
    }

    // --- output ---

    fn finish(self, collided: bool) -> DeploymentPlan {
        let mut out = DeploymentPlan { events: self.events, delete_rs: self.delete_rs, ..DeploymentPlan::default() };
        for work in &self.rss {
            let Some(original) = &work.original else {
                out.create_rs = Some(work.rs.clone());
                continue;
            };
            if let Some(change) = rs_change(work, original) {
                out.update_rs.push(change);
            }
        }
        out.update_rs.extend(self.released);

        let status = if collided { Some(self.status) } else { self.final_status };
        let observed = self.d.status.clone().unwrap_or_default();
        out.status = status.filter(|s| normalize(s) != normalize(&observed));

        let old_revision = self.d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION));
        if let Some(revision) = self.annotations.get(REVISION_ANNOTATION)
            && Some(revision) != old_revision
        {
            out.deployment_annotations.insert(REVISION_ANNOTATION.into(), revision.clone());
        }
        out.requeue_after = if collided { Some(1) } else { self.requeue_after };
        out
    }
}

fn rs_change(work: &WorkRs, original: &ReplicaSet) -> Option<RsChange> {
    let before = original.metadata.annotations.clone().unwrap_or_default();
    let annotations: BTreeMap<String, String> = work
        .rs
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let old_replicas = original.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let old_mrs = original.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let min_ready_seconds = (work.min_ready_seconds() != old_mrs).then_some(work.min_ready_seconds());
    let changed = work.replicas() != old_replicas || !annotations.is_empty() || min_ready_seconds.is_some();
    (changed || work.adopt).then(|| RsChange {
        name: work.name().to_string(),
        replicas: work.replicas(),
        annotations,
        min_ready_seconds,
        adopt: work.adopt,
        release: false,
    })
}

/// Kubernetes' `SetReplicasAnnotations`; true if either annotation changed.
fn set_replicas_annotations(work: &mut WorkRs, desired: i32, max: i32) -> bool {
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS_ANNOTATION, desired), (MAX_REPLICAS_ANNOTATION, max)] {
        let value = value.to_string();
        if work.annotation(key) != Some(value.as_str()) {
            work.annotations_mut().insert(key.into(), value);
            changed = true;
        }
    }
    changed
}

/// Append `old_revision` to the comma-separated revision-history annotation, dropping the oldest entries
/// to stay within 2000 characters.
fn append_revision_history(annotations: &mut BTreeMap<String, String>, old_revision: &str) {
    let history = annotations.get(REVISION_HISTORY_ANNOTATION).cloned().unwrap_or_default();
    let entries: Vec<&str> = history.split(',').collect();
    if entries.first().is_none_or(|e| e.is_empty()) {
        annotations.insert(REVISION_HISTORY_ANNOTATION.into(), old_revision.into());
        return;
    }
    let mut total = len_i64(&history) + len_i64(old_revision) + 1;
    let mut start = 0;
    while total > MAX_REV_HISTORY_LENGTH_IN_CHARS && start < entries.len() {
        total -= len_i64(entries[start]) + 1;
        start += 1;
    }
    if total <= MAX_REV_HISTORY_LENGTH_IN_CHARS {
        let mut kept = entries[start..].to_vec();
        kept.push(old_revision);
        annotations.insert(REVISION_HISTORY_ANNOTATION.into(), kept.join(","));
    }
}

fn sat_sum(values: impl Iterator<Item = i32>) -> i32 {
    values.fold(0, i32::saturating_add)
}

fn len_i64(s: &str) -> i64 {
    i64::try_from(s.len()).unwrap_or(i64::MAX)
}

/// Kubernetes' `DeploymentProgressing`: more updated, ready or available pods, or fewer old ones.
fn deployment_progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas).saturating_sub(n(old.updated_replicas));
    let new_old = n(new.replicas).saturating_sub(n(new.updated_replicas));
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// The new ReplicaSet's ReplicaFailure condition, else the first old one's, as a Deployment condition.
fn replica_failure(snapshot: &Snapshot) -> Option<DeploymentCondition> {
    let failure =
        |w: &WorkRs| w.rs.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == REPLICA_FAILURE).cloned();
    let cond = snapshot.new.as_ref().and_then(failure).or_else(|| snapshot.all.iter().find_map(failure))?;
    Some(DeploymentCondition {
        type_: cond.type_,
        status: cond.status,
        last_update_time: cond.last_transition_time.clone(),
        last_transition_time: cond.last_transition_time,
        reason: cond.reason,
        message: cond.message,
    })
}

fn find_condition<'s>(status: &'s DeploymentStatus, type_: &str) -> Option<&'s DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn new_condition(type_: &str, status: &str, reason: &str, message: impl Into<String>, now: i64) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(podutil::time_at(now)),
        last_transition_time: Some(podutil::time_at(now)),
    }
}

/// Kubernetes' `SetDeploymentCondition`: no-op when status and reason are unchanged; keeps the transition
/// time when only the reason changes; the condition moves to the end of the list.
fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = find_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// The status with unset counts read as 0, so an omitted zero and an explicit zero compare equal.
fn normalize(s: &DeploymentStatus) -> DeploymentStatus {
    let n = |v: Option<i32>| Some(v.unwrap_or(0));
    DeploymentStatus {
        observed_generation: Some(s.observed_generation.unwrap_or(0)),
        replicas: n(s.replicas),
        updated_replicas: n(s.updated_replicas),
        ready_replicas: n(s.ready_replicas),
        available_replicas: n(s.available_replicas),
        unavailable_replicas: n(s.unavailable_replicas),
        terminating_replicas: s.terminating_replicas,
        collision_count: s.collision_count,
        conditions: Some(s.conditions.clone().unwrap_or_default()),
    }
}

/// Go's `%q` for the names that appear in messages (DNS names need no escapes beyond these).
fn go_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::apps_testkit::{DeploymentBuilder, PodBuilder, owned_rs, template, with_status};
    use k8s_openapi::api::apps::v1::ReplicaSetStatus;

    const NOW: i64 = 1_700_000_000;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    fn ann<'r>(rs: &'r ReplicaSet, key: &str) -> Option<&'r str> {
        rs.metadata.annotations.as_ref()?.get(key).map(String::as_str)
    }

    fn cond<'s>(status: &'s DeploymentStatus, type_: &str) -> &'s DeploymentCondition {
        find_condition(status, type_).unwrap_or_else(|| panic!("no {type_} condition in {status:?}"))
    }

    /// The object the API server would store for a ReplicaSet the plan created.
    fn stored(rs: &ReplicaSet, created: i64) -> ReplicaSet {
        let mut rs = rs.clone();
        let name = rs.metadata.name.clone().unwrap_or_default();
        rs.metadata.uid = Some(format!("uid-{name}"));
        rs.metadata.creation_timestamp = Some(podutil::time_at(created));
        rs.metadata.generation = Some(1);
        rs.status = Some(ReplicaSetStatus { replicas: 0, observed_generation: Some(1), ..Default::default() });
        rs
    }

    fn change<'p>(plan: &'p DeploymentPlan, name: &str) -> &'p RsChange {
        plan.update_rs.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no change for {name}: {plan:?}"))
    }

    fn rs_name(rs: &ReplicaSet) -> String {
        rs.metadata.name.clone().unwrap_or_default()
    }

    #[test]
    fn fenceposts_worked_examples() {
        // 10 replicas, 25% / 25%: surge ceil(2.5) = 3, unavailable floor(2.5) = 2.
        assert_eq!(resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10), Ok((3, 2)));
        // 1 replica, 0% / 25%: both round to 0, so maxUnavailable becomes 1.
        assert_eq!(resolve_fenceposts(Some(&pct("0%")), Some(&pct("25%")), 1), Ok((0, 1)));
        assert_eq!(resolve_fenceposts(Some(&IntOrString::Int(1)), Some(&IntOrString::Int(0)), 3), Ok((1, 0)));
        // 5 replicas, 30%: 1.5 → surge 2, unavailable 1.
        assert_eq!(resolve_fenceposts(Some(&pct("30%")), Some(&pct("30%")), 5), Ok((2, 1)));
        assert!(matches!(
            resolve_fenceposts(Some(&pct("25")), None, 4),
            Err(DeploymentError::InvalidIntOrPercent { field: "maxSurge", .. })
        ));
        let d = DeploymentBuilder::new("web").rolling(pct("abc%"), pct("1%")).build();
        assert!(matches!(plan(&d, &[], &[], NOW).error, Some(DeploymentError::InvalidIntOrPercent { .. })));
    }

    #[test]
    fn hash_is_stable_and_collision_count_changes_it() {
        let t = template("nginx:1");
        let h = pod_template_hash(&t, None);
        assert_eq!(h, pod_template_hash(&t.clone(), None));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)), "{h}");
        assert!((1..=10).contains(&h.len()));
        assert_ne!(h, pod_template_hash(&template("nginx:2"), None));
        assert_ne!(h, pod_template_hash(&t, Some(1)));
        assert_ne!(pod_template_hash(&t, Some(1)), pod_template_hash(&t, Some(2)));
        // Pinned so that an accidental change to the canonical form (which would roll every Deployment)
        // fails here.
        assert_eq!(h, "75f67448f4");
        // Empty maps/lists and nulls do not change the hash (nor equality).
        let mut with_empties = t.clone();
        with_empties.metadata.as_mut().unwrap().annotations = Some(BTreeMap::new());
        with_empties.spec.as_mut().unwrap().volumes = Some(vec![]);
        assert_eq!(pod_template_hash(&with_empties, None), h);
        assert!(equal_ignore_hash(&t, &with_empties));
    }

    #[test]
    fn fnv_and_safe_encoding_match_their_references() {
        // FNV-1a 32 reference vectors.
        assert_eq!(fnv1a32(0x811c_9dc5, b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(0x811c_9dc5, b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(0x811c_9dc5, b"foobar"), 0xbf9c_f968);
        assert_eq!(safe_encode("3735928559"), "7c79f6d99f");
    }

    #[test]
    fn equal_ignore_hash_ignores_only_the_hash_label() {
        let t = template("nginx:1");
        let mut hashed = t.clone();
        hashed.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert(POD_TEMPLATE_HASH_LABEL.into(), "x".into());
        assert!(equal_ignore_hash(&t, &hashed));
        let mut relabeled = t.clone();
        relabeled.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert("tier".into(), "x".into());
        assert!(!equal_ignore_hash(&t, &relabeled));
    }

    #[test]
    fn new_deployment_creates_first_replica_set() {
        let d = DeploymentBuilder::new("web").replicas(3).annotation("team", "blue").build();
        let p = plan(&d, &[], &[], NOW);
        let rs = p.create_rs.clone().expect("a new ReplicaSet");
        let hash = pod_template_hash(&template("nginx:1"), None);
        let name = format!("web-{hash}");
        assert_eq!(rs_name(&rs), name);
        assert_eq!(rs.metadata.labels.as_ref().unwrap().get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
        let spec = rs.spec.as_ref().unwrap();
        assert_eq!(spec.selector.match_labels.as_ref().unwrap().get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
        let tl = spec.template.as_ref().unwrap().metadata.as_ref().unwrap().labels.as_ref().unwrap();
        assert_eq!((tl.get("app").map(String::as_str), tl.get(POD_TEMPLATE_HASH_LABEL)), (Some("web"), Some(&hash)));
        // 3 replicas, 25% surge: ceil(0.75) = 1, so max-replicas 4; from nothing it may go straight to 3.
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(ann(&rs, REVISION_ANNOTATION), Some("1"));
        assert_eq!(ann(&rs, DESIRED_REPLICAS_ANNOTATION), Some("3"));
        assert_eq!(ann(&rs, MAX_REPLICAS_ANNOTATION), Some("4"));
        assert_eq!(ann(&rs, "team"), Some("blue"));
        let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Deployment", "uid-web"));
        assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));

        assert_eq!(
            p.events,
            vec![("Normal".into(), "ScalingReplicaSet".into(), format!("Scaled up replica set {name} from 0 to 3"))]
        );
        assert_eq!(p.deployment_annotations.get(REVISION_ANNOTATION).map(String::as_str), Some("1"));
        let status = p.status.clone().unwrap();
        assert_eq!((status.observed_generation, status.updated_replicas, status.replicas), (Some(1), Some(0), Some(0)));
        let progressing = cond(&status, PROGRESSING);
        assert_eq!(progressing.reason.as_deref(), Some(NEW_REPLICA_SET_REASON));
        assert_eq!(progressing.message.clone().unwrap(), format!("Created new replica set \"{name}\""));
        let available = cond(&status, AVAILABLE);
        assert_eq!(
            (available.status.as_str(), available.reason.as_deref()),
            ("False", Some(MINIMUM_REPLICAS_UNAVAILABLE))
        );
        assert_eq!(p.requeue_after, Some(601));
    }

    #[test]
    fn rolling_update_surges_then_scales_old_down() {
        let d = DeploymentBuilder::new("web")
            .replicas(10)
            .rolling(IntOrString::Int(3), IntOrString::Int(2))
            .image("nginx:2")
            .build();
        let old = owned_rs(&d, "nginx:1", 10, 1, NOW - 1000);
        let old_name = rs_name(&old);

        // Up to 13 pods: the new ReplicaSet starts at min(13 - 10, 10) = 3. In the same sync, with 13 pods
        // wanted, minAvailable 8 and the 3 new ones unavailable, 13 - 8 - 3 = 2 old pods may go.
        let first = plan(&d, std::slice::from_ref(&old), &[], NOW);
        let new = first.create_rs.clone().unwrap();
        let new_name = rs_name(&new);
        assert_eq!(new.spec.as_ref().unwrap().replicas, Some(3));
        assert_eq!(ann(&new, REVISION_ANNOTATION), Some("2"));
        assert_eq!(change(&first, &old_name).replicas, 8);
        let scaling = |m: String| ("Normal".to_string(), "ScalingReplicaSet".to_string(), m);
        assert_eq!(
            first.events,
            vec![
                scaling(format!("Scaled up replica set {new_name} from 0 to 3")),
                scaling(format!("Scaled down replica set {old_name} from 10 to 8")),
            ]
        );
        let status = first.status.unwrap();
        assert_eq!(
            (status.replicas, status.updated_replicas, status.available_replicas),
            (Some(10), Some(0), Some(10))
        );
        // Unavailable counts wanted-but-not-available pods of the ReplicaSets as listed: 13 wanted, 10 available.
        assert_eq!(status.unavailable_replicas, Some(3));

        // Next sync: old at 8, new at 3 (none available): 11 pods, so the new one may grow to 5.
        let mut old8 = with_status(old.clone(), 8, 8);
        old8.spec.as_mut().unwrap().replicas = Some(8);
        let new = stored(&new, NOW);
        let second = plan(&d, &[old8.clone(), new.clone()], &[], NOW + 1);
        assert!(second.create_rs.is_none());
        assert_eq!(second.update_rs.len(), 1);
        assert_eq!(change(&second, &new_name).replicas, 5);

        // Then 13 pods with 5 new ones unavailable: 13 - 8 - 5 = 0, nothing moves until they become available.
        let mut new5 = with_status(new.clone(), 5, 0);
        new5.spec.as_mut().unwrap().replicas = Some(5);
        let third = plan(&d, &[old8.clone(), new5.clone()], &[], NOW + 2);
        assert!(third.update_rs.is_empty() && third.events.is_empty());

        // 3 of them available: 13 - 8 - 2 = 3 may go, and 8 + 3 = 11 available - 8 minimum = 3: old 8 → 5.
        let new5 = with_status(new5, 5, 3);
        let fourth = plan(&d, &[old8, new5], &[], NOW + 3);
        assert_eq!(change(&fourth, &old_name).replicas, 5);
    }

    #[test]
    fn proportional_scaling_mid_rollout() {
        // Kubernetes' docs example: 10 replicas, maxSurge 3, maxUnavailable 2, mid-rollout old 8 + new 5,
        // then scaled to 15: 5 more pods, 3 to the old ReplicaSet and 2 to the new one.
        let before = DeploymentBuilder::new("web")
            .replicas(10)
            .rolling(IntOrString::Int(3), IntOrString::Int(2))
            .image("nginx:2")
            .build();
        let old = with_status(owned_rs(&before, "nginx:1", 8, 1, NOW - 100), 8, 8);
        let new = with_status(owned_rs(&before, "nginx:2", 5, 2, NOW - 50), 5, 0);
        let d = DeploymentBuilder::new("web")
            .replicas(15)
            .rolling(IntOrString::Int(3), IntOrString::Int(2))
            .image("nginx:2")
            .generation(2)
            .build();
        let p = plan(&d, &[old.clone(), new.clone()], &[], NOW);
        let (co, cn) = (change(&p, &rs_name(&old)), change(&p, &rs_name(&new)));
        assert_eq!((co.replicas, cn.replicas), (11, 7));
        for c in [co, cn] {
            assert_eq!(c.annotations.get(DESIRED_REPLICAS_ANNOTATION).map(String::as_str), Some("15"));
            assert_eq!(c.annotations.get(MAX_REPLICAS_ANNOTATION).map(String::as_str), Some("18"));
        }
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.events[0].2, format!("Scaled up replica set {} from 8 to 11", rs_name(&old)));

        // Scaling back to 10 shrinks proportionally, oldest first on ties: 18 → 13 (5 fewer):
        // old 11 × 13/18 = 7.94 → 8 (−3), new 7 × 13/18 = 5.06 → 5 (−2).
        let mut old11 = old.clone();
        old11.spec.as_mut().unwrap().replicas = Some(11);
        let mut new7 = new.clone();
        new7.spec.as_mut().unwrap().replicas = Some(7);
        for rs in [&mut old11, &mut new7] {
            let a = rs.metadata.annotations.as_mut().unwrap();
            a.insert(DESIRED_REPLICAS_ANNOTATION.into(), "15".into());
            a.insert(MAX_REPLICAS_ANNOTATION.into(), "18".into());
        }
        let back = DeploymentBuilder::new("web")
            .replicas(10)
            .rolling(IntOrString::Int(3), IntOrString::Int(2))
            .image("nginx:2")
            .generation(3)
            .build();
        let p = plan(&back, &[old11, new7], &[], NOW);
        assert_eq!((change(&p, &rs_name(&old)).replicas, change(&p, &rs_name(&new)).replicas), (8, 5));
    }

    #[test]
    fn lone_active_replica_set_takes_the_new_size() {
        let before = DeploymentBuilder::new("web").replicas(3).build();
        let rs = owned_rs(&before, "nginx:1", 3, 1, NOW - 100);
        let d = DeploymentBuilder::new("web").replicas(7).generation(2).build();
        let p = plan(&d, std::slice::from_ref(&rs), &[], NOW);
        let c = change(&p, &rs_name(&rs));
        assert_eq!(c.replicas, 7);
        assert_eq!(c.annotations.get(DESIRED_REPLICAS_ANNOTATION).map(String::as_str), Some("7"));
        assert_eq!(c.annotations.get(MAX_REPLICAS_ANNOTATION).map(String::as_str), Some("9"));
    }

    #[test]
    fn stale_desired_annotation_on_right_sized_rs_is_refreshed() {
        // The lone active ReplicaSet already has 15 pods, but its annotation still says 17: Kubernetes would
        // call this a scaling event forever without fixing anything.
        let d = DeploymentBuilder::new("web")
            .replicas(15)
            .rolling(IntOrString::Int(1), IntOrString::Int(5))
            .generation(5)
            .build();
        let mut rs = owned_rs(&d, "nginx:1", 15, 2, NOW - 100);
        rs.metadata.annotations.as_mut().unwrap().insert(DESIRED_REPLICAS_ANNOTATION.into(), "17".into());
        let p = plan(&d, std::slice::from_ref(&rs), &[], NOW);
        let c = change(&p, &rs_name(&rs));
        assert_eq!(c.replicas, 15);
        assert_eq!(c.annotations.get(DESIRED_REPLICAS_ANNOTATION).map(String::as_str), Some("15"));
        assert!(p.events.is_empty());

        // With the annotation fixed the next sync is an ordinary rollout sync that reports completion.
        rs.metadata.annotations.as_mut().unwrap().insert(DESIRED_REPLICAS_ANNOTATION.into(), "15".into());
        let mut d2 = d.clone();
        d2.status = p.status;
        let next = plan(&d2, &[rs], &[], NOW + 1);
        let progressing = cond(next.status.as_ref().unwrap(), PROGRESSING);
        assert_eq!(progressing.reason.as_deref(), Some(NEW_RS_AVAILABLE_REASON));
    }

    #[test]
    fn rollout_undo_gives_the_old_replica_set_the_next_revision() {
        let d = DeploymentBuilder::new("web").replicas(3).image("nginx:2").build();
        let v1 = owned_rs(&d, "nginx:1", 0, 1, NOW - 200);
        let v2 = owned_rs(&d, "nginx:2", 3, 2, NOW - 100);
        // `kubectl rollout undo`: the template goes back to nginx:1.
        let undone =
            DeploymentBuilder::new("web").replicas(3).image("nginx:1").annotation("team", "red").generation(2).build();
        let p = plan(&undone, &[with_status(v1.clone(), 0, 0), v2.clone()], &[], NOW);
        assert!(p.create_rs.is_none());
        let c = change(&p, &rs_name(&v1));
        assert_eq!(c.annotations.get(REVISION_ANNOTATION).map(String::as_str), Some("3"));
        assert_eq!(c.annotations.get(REVISION_HISTORY_ANNOTATION).map(String::as_str), Some("1"));
        assert_eq!(c.annotations.get("team").map(String::as_str), Some("red"));
        // 3 + surge 1 = 4 pods allowed, 3 exist: the old-new ReplicaSet grows by 1.
        assert_eq!(c.replicas, 1);
        assert_eq!(p.deployment_annotations.get(REVISION_ANNOTATION).map(String::as_str), Some("3"));
        // Found again, and the pods it already counts are progress.
        let status = p.status.unwrap();
        let progressing = cond(&status, PROGRESSING);
        assert_eq!(progressing.reason.as_deref(), Some(REPLICA_SET_UPDATED_REASON));
        assert_eq!(progressing.message.clone().unwrap(), format!("ReplicaSet \"{}\" is progressing.", rs_name(&v1)));
    }

    #[test]
    fn recreate_scales_old_down_waits_for_pods_then_creates() {
        let d = DeploymentBuilder::new("web").replicas(2).recreate().image("nginx:2").build();
        let old = owned_rs(&d, "nginx:1", 2, 1, NOW - 100);
        let old_name = rs_name(&old);
        let first = plan(&d, std::slice::from_ref(&old), &[], NOW);
        assert_eq!(change(&first, &old_name).replicas, 0);
        assert!(first.create_rs.is_none());

        // Old RS scaled to 0 but one of its pods is still terminating: keep waiting.
        let mut old0 = with_status(old.clone(), 0, 0);
        old0.spec.as_mut().unwrap().replicas = Some(0);
        let old_uid = old.metadata.uid.clone().unwrap();
        let dying = PodBuilder::new("old-pod")
            .labels(&[("app", "web")])
            .owned_by_rs(&old_name, &old_uid)
            .running()
            .terminating(NOW)
            .build();
        let waiting = plan(&d, &[old0.clone()], &[dying], NOW + 1);
        assert!(waiting.create_rs.is_none() && waiting.update_rs.is_empty());

        // Gone: the new ReplicaSet starts at full size.
        let go = plan(&d, &[old0], &[], NOW + 2);
        let new = go.create_rs.unwrap();
        assert_eq!(new.spec.as_ref().unwrap().replicas, Some(2));
        assert_eq!(ann(&new, MAX_REPLICAS_ANNOTATION), Some("2"));
    }

    #[test]
    fn paused_deployment_scales_but_does_not_roll_out() {
        let d = DeploymentBuilder::new("web").replicas(3).image("nginx:2").paused(true).build();
        let rs = owned_rs(&d, "nginx:1", 3, 1, NOW - 100);
        let p = plan(&d, std::slice::from_ref(&rs), &[], NOW);
        assert!(p.create_rs.is_none() && p.update_rs.is_empty());
        let progressing = cond(p.status.as_ref().unwrap(), PROGRESSING).clone();
        assert_eq!(
            (progressing.status.as_str(), progressing.reason.as_deref()),
            ("Unknown", Some(PAUSED_DEPLOY_REASON))
        );
        assert_eq!(progressing.message.as_deref(), Some("Deployment is paused"));

        let mut paused = DeploymentBuilder::new("web").replicas(5).image("nginx:2").paused(true).generation(2).build();
        paused.status = p.status.clone();
        let scaled = plan(&paused, std::slice::from_ref(&rs), &[], NOW + 1);
        assert!(scaled.create_rs.is_none());
        assert_eq!(change(&scaled, &rs_name(&rs)).replicas, 5);

        let mut resumed = DeploymentBuilder::new("web").replicas(3).image("nginx:2").generation(3).build();
        resumed.status = p.status;
        let r = plan(&resumed, &[rs], &[], NOW + 2);
        assert!(r.create_rs.is_some());
        // Resumed, then the new ReplicaSet's creation takes over the Progressing condition.
        let progressing = cond(r.status.as_ref().unwrap(), PROGRESSING);
        assert_eq!(
            (progressing.status.as_str(), progressing.reason.as_deref()),
            ("True", Some(NEW_REPLICA_SET_REASON))
        );
    }

    #[test]
    fn progress_deadline_exceeded_and_requeue_before_it() {
        let base = DeploymentBuilder::new("web").replicas(2).image("nginx:2").progress_deadline(60);
        let d0 = base.build();
        let old = owned_rs(&d0, "nginx:1", 2, 1, NOW - 1000);
        let new = with_status(owned_rs(&d0, "nginx:2", 1, 2, NOW - 500), 1, 0);
        let new_name = rs_name(&new);
        // 2 + 1 surge = 3 pods: nothing can move while the new pod is unavailable.
        let stuck_status = |updated_at: i64| DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(3),
            updated_replicas: Some(1),
            ready_replicas: Some(2),
            available_replicas: Some(2),
            unavailable_replicas: Some(1),
            conditions: Some(vec![
                new_condition(
                    AVAILABLE,
                    "True",
                    MINIMUM_REPLICAS_AVAILABLE,
                    "Deployment has minimum availability.",
                    updated_at,
                ),
                new_condition(
                    PROGRESSING,
                    "True",
                    REPLICA_SET_UPDATED_REASON,
                    format!("ReplicaSet \"{new_name}\" is progressing."),
                    updated_at,
                ),
            ]),
            ..Default::default()
        };
        let mut d = d0.clone();
        d.status = Some(stuck_status(NOW - 30));
        let p = plan(&d, &[old.clone(), new.clone()], &[], NOW);
        assert_eq!(p.status, None);
        // Updated 30 s ago, 60 s deadline: look again in 30 s (+1).
        assert_eq!(p.requeue_after, Some(31));

        d.status = Some(stuck_status(NOW - 61));
        let p = plan(&d, &[old, new], &[], NOW);
        let progressing = cond(p.status.as_ref().unwrap(), PROGRESSING);
        assert_eq!((progressing.status.as_str(), progressing.reason.as_deref()), ("False", Some(TIMED_OUT_REASON)));
        assert_eq!(
            progressing.message.clone().unwrap(),
            format!("ReplicaSet \"{new_name}\" has timed out progressing.")
        );
        assert_eq!(p.requeue_after, None);
    }

    #[test]
    fn progress_refreshes_update_time_but_keeps_transition_time() {
        let d0 = DeploymentBuilder::new("web").replicas(2).image("nginx:2").build();
        let old = with_status(owned_rs(&d0, "nginx:1", 1, 1, NOW - 1000), 1, 1);
        let new = with_status(owned_rs(&d0, "nginx:2", 2, 2, NOW - 500), 2, 1);
        let mut d = d0.clone();
        d.status = Some(DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(3),
            updated_replicas: Some(2),
            available_replicas: Some(1),
            ready_replicas: Some(1),
            conditions: Some(vec![new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED_REASON, "x", NOW - 100)]),
            ..Default::default()
        });
        // One more pod became available: progress.
        let p = plan(&d, &[old, new], &[], NOW);
        let progressing = cond(p.status.as_ref().unwrap(), PROGRESSING);
        assert_eq!(progressing.last_update_time, Some(podutil::time_at(NOW)));
        assert_eq!(progressing.last_transition_time, Some(podutil::time_at(NOW - 100)));
    }

    #[test]
    fn complete_rollout_reports_available_and_trims_history() {
        let d0 = DeploymentBuilder::new("web").replicas(3).image("nginx:9").revision_history_limit(2).build();
        let mut rss: Vec<ReplicaSet> =
            (1..=4).map(|i| with_status(owned_rs(&d0, &format!("nginx:{i}"), 0, i, NOW - 1000 + i), 0, 0)).collect();
        let new = owned_rs(&d0, "nginx:9", 3, 5, NOW - 10);
        rss.push(new.clone());
        let mut d = d0.clone();
        d.metadata.annotations = Some(BTreeMap::from([(REVISION_ANNOTATION.to_string(), "5".to_string())]));
        d.status = Some(DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(3),
            updated_replicas: Some(3),
            available_replicas: Some(3),
            ready_replicas: Some(3),
            ..Default::default()
        });
        let p = plan(&d, &rss, &[], NOW);
        assert_eq!(p.delete_rs, vec![rs_name(&rss[0]), rs_name(&rss[1])]);
        let status = p.status.unwrap();
        let progressing = cond(&status, PROGRESSING);
        assert_eq!(progressing.reason.as_deref(), Some(NEW_RS_AVAILABLE_REASON));
        assert_eq!(
            progressing.message.clone().unwrap(),
            format!("ReplicaSet \"{}\" has successfully progressed.", rs_name(&new))
        );
        assert_eq!(cond(&status, AVAILABLE).status, "True");
        assert!(p.deployment_annotations.is_empty());
    }

    #[test]
    fn plan_is_idempotent_once_applied() {
        let d0 = DeploymentBuilder::new("web").replicas(3).build();
        let rs = owned_rs(&d0, "nginx:1", 3, 1, NOW - 100);
        let mut d = d0.clone();
        d.metadata.annotations = Some(BTreeMap::from([(REVISION_ANNOTATION.to_string(), "1".to_string())]));
        let p = plan(&d, std::slice::from_ref(&rs), &[], NOW);
        d.status = p.status.clone();
        let again = plan(&d, &[rs], &[], NOW + 5);
        assert_eq!(again, DeploymentPlan::default());
    }

    #[test]
    fn hash_collision_bumps_collision_count() {
        let d = DeploymentBuilder::new("web").replicas(1).build();
        let name = format!("web-{}", pod_template_hash(&template("nginx:1"), None));
        // Someone else's ReplicaSet already has the name the new one would get.
        let mut squatter = owned_rs(&d, "busybox", 1, 1, NOW - 10);
        squatter.metadata.name = Some(name.clone());
        squatter.metadata.owner_references = None;
        squatter.metadata.labels = Some(BTreeMap::from([("app".to_string(), "other".to_string())]));
        let p = plan(&d, std::slice::from_ref(&squatter), &[], NOW);
        assert!(p.create_rs.is_none());
        assert_eq!(p.status.as_ref().unwrap().collision_count, Some(1));
        assert_eq!(p.requeue_after, Some(1));

        let mut d1 = d.clone();
        d1.status = p.status;
        let retry = plan(&d1, &[squatter], &[], NOW + 1);
        let created = retry.create_rs.unwrap();
        assert_eq!(rs_name(&created), format!("web-{}", pod_template_hash(&template("nginx:1"), Some(1))));
    }

    #[test]
    fn adopts_matching_orphans_and_releases_strays() {
        let d = DeploymentBuilder::new("web").replicas(2).build();
        let mut orphan = owned_rs(&d, "nginx:1", 2, 1, NOW - 10);
        orphan.metadata.owner_references = None;
        let mut stray = owned_rs(&d, "nginx:0", 0, 1, NOW - 20);
        stray.metadata.labels = Some(BTreeMap::from([("app".to_string(), "db".to_string())]));
        let mut foreign = owned_rs(&d, "nginx:5", 1, 1, NOW - 30);
        foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "someone-else".into();
        let p = plan(&d, &[orphan.clone(), stray.clone(), foreign.clone()], &[], NOW);
        assert!(p.create_rs.is_none(), "the adopted orphan is the new ReplicaSet");
        assert!(change(&p, &rs_name(&orphan)).adopt);
        assert!(change(&p, &rs_name(&stray)).release);
        assert!(p.update_rs.iter().all(|c| c.name != rs_name(&foreign)));
    }

    #[test]
    fn selecting_everything_is_refused() {
        let mut d = DeploymentBuilder::new("web").generation(3).build();
        d.spec.as_mut().unwrap().selector = Default::default();
        let p = plan(&d, &[], &[], NOW);
        assert_eq!(p.events[0].1, "SelectingAll");
        assert_eq!(p.status.unwrap().observed_generation, Some(3));
        assert!(p.create_rs.is_none());
    }

    #[test]
    fn deleting_deployment_only_reports_status() {
        let mut d = DeploymentBuilder::new("web").replicas(5).image("nginx:2").build();
        d.metadata.deletion_timestamp = Some(podutil::time_at(NOW));
        let rs = owned_rs(&d, "nginx:1", 3, 1, NOW - 100);
        let p = plan(&d, &[rs], &[], NOW);
        assert!(p.create_rs.is_none() && p.update_rs.is_empty() && p.delete_rs.is_empty());
        assert_eq!(p.status.unwrap().replicas, Some(3));
    }

    #[test]
    fn new_replica_set_follows_min_ready_seconds() {
        let d = DeploymentBuilder::new("web").replicas(1).min_ready_seconds(7).build();
        let rs = owned_rs(&d, "nginx:1", 1, 1, NOW - 100);
        let p = plan(&d, std::slice::from_ref(&rs), &[], NOW);
        assert_eq!(change(&p, &rs_name(&rs)).min_ready_seconds, Some(7));
    }

    #[test]
    fn revision_history_is_capped() {
        let mut a = BTreeMap::new();
        append_revision_history(&mut a, "1");
        append_revision_history(&mut a, "2");
        assert_eq!(a.get(REVISION_HISTORY_ANNOTATION).map(String::as_str), Some("1,2"));
        let long: Vec<String> = (0..600).map(|i| i.to_string()).collect();
        a.insert(REVISION_HISTORY_ANNOTATION.into(), long.join(","));
        append_revision_history(&mut a, "600");
        let h = a.get(REVISION_HISTORY_ANNOTATION).unwrap();
        assert!(h.len() <= 2000 && h.ends_with(",600") && !h.starts_with("0,"));
    }
}
