//! Test support for the workload controllers: object builders and a small cluster simulator that runs the
//! Deployment and ReplicaSet plans against each other (test-only).
//!
//! The simulator ([`Sim`]) plays API server, kubelet and both controllers: each [`Sim::step`] advances the
//! clock, lets pods become ready, syncs every ReplicaSet (fresh status), plans and applies one Deployment
//! sync, then syncs the ReplicaSets again so pods follow the new sizes. Deleted pods vanish at once.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, ReplicaSet, ReplicaSetSpec, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controllers::deployment::{self, DeploymentPlan};
use crate::controllers::podutil::{self, time_at};
use crate::controllers::replicaset;

pub const NS: &str = "default";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn controller_ref(kind: &str, api_version: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

// === pods ===

pub struct PodBuilder {
    pod: Pod,
}

impl PodBuilder {
    pub fn new(name: &str) -> Self {
        PodBuilder {
            pod: Pod {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(NS.into()),
                    uid: Some(format!("uid-{name}")),
                    ..ObjectMeta::default()
                },
                spec: Some(PodSpec::default()),
                status: Some(PodStatus { phase: Some("Pending".into()), ..PodStatus::default() }),
            },
        }
    }
    pub fn labels(mut self, pairs: &[(&str, &str)]) -> Self {
        self.pod.metadata.labels = Some(labels(pairs));
        self
    }
    pub fn owned_by_rs(mut self, name: &str, uid: &str) -> Self {
        self.pod.metadata.owner_references = Some(vec![controller_ref("ReplicaSet", "apps/v1", name, uid)]);
        self
    }
    pub fn on_node(mut self, node: &str) -> Self {
        self.pod.spec.get_or_insert_with(Default::default).node_name = Some(node.into());
        self
    }
    pub fn phase(mut self, phase: &str) -> Self {
        self.pod.status.get_or_insert_with(Default::default).phase = Some(phase.into());
        self
    }
    pub fn running(self) -> Self {
        self.phase("Running")
    }
    pub fn ready_since(mut self, t: i64) -> Self {
        let status = self.pod.status.get_or_insert_with(Default::default);
        status.conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(time_at(t)),
            ..PodCondition::default()
        }]);
        self
    }
    pub fn created(mut self, t: i64) -> Self {
        self.pod.metadata.creation_timestamp = Some(time_at(t));
        self
    }
    pub fn restarts(mut self, n: i32) -> Self {
        let status = self.pod.status.get_or_insert_with(Default::default);
        status.container_statuses = Some(vec![ContainerStatus { restart_count: n, ..ContainerStatus::default() }]);
        self
    }
    pub fn deletion_cost(mut self, cost: i32) -> Self {
        self.pod
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(podutil::POD_DELETION_COST_ANNOTATION.into(), cost.to_string());
        self
    }
    pub fn terminating(mut self, t: i64) -> Self {
        self.pod.metadata.deletion_timestamp = Some(time_at(t));
        self
    }
    pub fn build(self) -> Pod {
        self.pod
    }
}

// === replica sets (standalone, selector app=web) ===

pub struct RsBuilder {
    rs: ReplicaSet,
}

impl RsBuilder {
    pub fn new(name: &str, uid: &str) -> Self {
        let web = labels(&[("app", "web")]);
        RsBuilder {
            rs: ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(NS.into()),
                    uid: Some(uid.into()),
                    generation: Some(1),
                    ..ObjectMeta::default()
                },
                spec: Some(ReplicaSetSpec {
                    replicas: Some(1),
                    min_ready_seconds: None,
                    selector: LabelSelector { match_labels: Some(web.clone()), match_expressions: None },
                    template: Some(PodTemplateSpec {
                        metadata: Some(ObjectMeta { labels: Some(web), ..ObjectMeta::default() }),
                        spec: Some(PodSpec::default()),
                    }),
                }),
                status: None,
            },
        }
    }
    fn spec(&mut self) -> &mut ReplicaSetSpec {
        self.rs.spec.get_or_insert_with(Default::default)
    }
    pub fn replicas(mut self, n: i32) -> Self {
        self.spec().replicas = Some(n);
        self
    }
    pub fn min_ready_seconds(mut self, s: i32) -> Self {
        self.spec().min_ready_seconds = Some(s);
        self
    }
    pub fn generation(mut self, g: i64) -> Self {
        self.rs.metadata.generation = Some(g);
        self
    }
    pub fn deleting(mut self, t: i64) -> Self {
        self.rs.metadata.deletion_timestamp = Some(time_at(t));
        self
    }
    pub fn build(self) -> ReplicaSet {
        self.rs
    }
}

// === deployments ===

pub fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels(&[("app", "web")])), ..ObjectMeta::default() }),
        spec: Some(PodSpec {
            containers: vec![Container { name: "web".into(), image: Some(image.into()), ..Container::default() }],
            ..PodSpec::default()
        }),
    }
}

pub struct DeploymentBuilder {
    d: Deployment,
}

impl DeploymentBuilder {
    pub fn new(name: &str) -> Self {
        DeploymentBuilder {
            d: Deployment {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(NS.into()),
                    uid: Some(format!("uid-{name}")),
                    generation: Some(1),
                    ..ObjectMeta::default()
                },
                spec: Some(DeploymentSpec {
                    replicas: Some(1),
                    selector: LabelSelector { match_labels: Some(labels(&[("app", "web")])), match_expressions: None },
                    template: template("nginx:1"),
                    ..DeploymentSpec::default()
                }),
                status: None,
            },
        }
    }
    pub fn spec(&mut self) -> &mut DeploymentSpec {
        self.d.spec.get_or_insert_with(Default::default)
    }
    pub fn replicas(mut self, n: i32) -> Self {
        self.spec().replicas = Some(n);
        self
    }
    pub fn image(mut self, image: &str) -> Self {
        self.spec().template = template(image);
        self
    }
    pub fn rolling(mut self, surge: IntOrString, unavailable: IntOrString) -> Self {
        self.spec().strategy = Some(DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(surge),
                max_unavailable: Some(unavailable),
            }),
        });
        self
    }
    pub fn recreate(mut self) -> Self {
        self.spec().strategy = Some(DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None });
        self
    }
    pub fn paused(mut self, paused: bool) -> Self {
        self.spec().paused = Some(paused);
        self
    }
    pub fn min_ready_seconds(mut self, s: i32) -> Self {
        self.spec().min_ready_seconds = Some(s);
        self
    }
    pub fn revision_history_limit(mut self, n: i32) -> Self {
        self.spec().revision_history_limit = Some(n);
        self
    }
    pub fn progress_deadline(mut self, s: i32) -> Self {
        self.spec().progress_deadline_seconds = Some(s);
        self
    }
    pub fn generation(mut self, g: i64) -> Self {
        self.d.metadata.generation = Some(g);
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.d.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(k.into(), v.into());
        self
    }
    pub fn build(self) -> Deployment {
        self.d
    }
}

/// A ReplicaSet as the Deployment controller would have made it for `image`, owned by `d`.
pub fn owned_rs(d: &Deployment, image: &str, replicas: i32, revision: i64, created: i64) -> ReplicaSet {
    let mut t = template(image);
    let hash = deployment::pod_template_hash(&t, None);
    let d_name = d.metadata.name.clone().unwrap_or_default();
    let name = format!("{d_name}-{hash}");
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.insert(deployment::POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    }
    let mut selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
    selector.match_labels.get_or_insert_with(BTreeMap::new).insert(deployment::POD_TEMPLATE_HASH_LABEL.into(), hash);
    let d_replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(NS.into()),
            uid: Some(format!("uid-{name}")),
            generation: Some(1),
            creation_timestamp: Some(time_at(created)),
            labels: t.metadata.as_ref().and_then(|m| m.labels.clone()),
            annotations: Some(labels(&[
                (deployment::REVISION_ANNOTATION, &revision.to_string()),
                (deployment::DESIRED_REPLICAS_ANNOTATION, &d_replicas.to_string()),
                (deployment::MAX_REPLICAS_ANNOTATION, &d_replicas.saturating_add(deployment_max_surge(d)).to_string()),
            ])),
            owner_references: Some(vec![podutil::new_controller_ref("apps/v1", "Deployment", &d.metadata)]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec { replicas: Some(replicas), min_ready_seconds: None, selector, template: Some(t) }),
        status: Some(k8s_openapi::api::apps::v1::ReplicaSetStatus {
            replicas,
            fully_labeled_replicas: Some(replicas),
            ready_replicas: Some(replicas),
            available_replicas: Some(replicas),
            observed_generation: Some(1),
            ..Default::default()
        }),
    }
}

/// Set an RS's observed pod counts.
pub fn with_status(mut rs: ReplicaSet, replicas: i32, available: i32) -> ReplicaSet {
    let status = rs.status.get_or_insert_with(Default::default);
    status.replicas = replicas;
    status.ready_replicas = Some(available);
    status.available_replicas = Some(available);
    rs
}

/// `MaxSurge(d)` for test expectations.
pub fn deployment_max_surge(d: &Deployment) -> i32 {
    fenceposts(d).0
}

/// (maxSurge, maxUnavailable) as the controller resolves them; (0, 0) for Recreate.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let spec = d.spec.as_ref().cloned().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let strategy = spec.strategy.unwrap_or_default();
    if strategy.type_.as_deref() == Some("Recreate") {
        return (0, 0);
    }
    let default = IntOrString::String("25%".into());
    let ru = strategy.rolling_update.unwrap_or_default();
    let (s, u) = deployment::resolve_fenceposts(
        Some(ru.max_surge.as_ref().unwrap_or(&default)),
        Some(ru.max_unavailable.as_ref().unwrap_or(&default)),
        replicas,
    )
    .unwrap_or((0, 1));
    (s, if replicas == 0 { 0 } else { u.min(replicas) })
}

// === simulator ===

pub struct Sim {
    pub d: Deployment,
    pub rss: Vec<ReplicaSet>,
    pub pods: Vec<Pod>,
    pub now: i64,
    /// When each not-yet-ready pod becomes ready.
    ready_at: HashMap<String, i64>,
    counter: u64,
    seed: u64,
    /// Upper bound (seconds) of the random delay before a new pod turns ready.
    pub max_ready_delay: i64,
    /// Seconds a deleted pod stays around terminating (deletionTimestamp set) before it is gone.
    pub termination_grace: i64,
    /// When each terminating pod disappears.
    gone_at: HashMap<String, i64>,
    pub events: Vec<(String, String, String)>,
    /// Every revision number ever handed to a ReplicaSet, in order.
    pub revisions_seen: Vec<i64>,
}

impl Sim {
    pub fn new(d: Deployment, seed: u64) -> Self {
        Sim {
            d,
            rss: Vec::new(),
            pods: Vec::new(),
            now: 1_700_000_000,
            ready_at: HashMap::new(),
            counter: 0,
            seed,
            max_ready_delay: 3,
            termination_grace: 0,
            gone_at: HashMap::new(),
            events: Vec::new(),
            revisions_seen: Vec::new(),
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift: deterministic per seed.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    pub fn spec_mut(&mut self) -> &mut DeploymentSpec {
        let generation = self.d.metadata.generation.unwrap_or(0);
        self.d.metadata.generation = Some(generation + 1);
        self.d.spec.get_or_insert_with(Default::default)
    }

    /// One round: clock, kubelet, ReplicaSet controller, Deployment controller, ReplicaSet controller.
    pub fn step(&mut self) -> DeploymentPlan {
        self.now += 1;
        self.kubelet();
        self.sync_replica_sets();
        let plan = deployment::plan(&self.d, &self.rss, &self.pods, self.now);
        self.apply(&plan);
        self.sync_replica_sets();
        plan
    }

    fn kubelet(&mut self) {
        let now = self.now;
        let gone_at = &self.gone_at;
        self.pods.retain(|p| gone_at.get(p.metadata.name.as_deref().unwrap_or("")).is_none_or(|t| *t > now));
        for pod in &mut self.pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if self.ready_at.get(&name).is_some_and(|t| *t <= now) {
                self.ready_at.remove(&name);
                let status = pod.status.get_or_insert_with(Default::default);
                status.phase = Some("Running".into());
                status.conditions = Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(time_at(now)),
                    ..PodCondition::default()
                }]);
            }
        }
    }

    pub fn sync_replica_sets(&mut self) {
        for i in 0..self.rss.len() {
            let rs = self.rss[i].clone();
            let p = replicaset::plan(&rs, &self.pods, self.now, replicaset::DEFAULT_BURST_REPLICAS);
            let rs_name = rs.metadata.name.clone().unwrap_or_default();
            let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
            for name in &p.adopt {
                if let Some(pod) = self.pods.iter_mut().find(|x| x.metadata.name.as_deref() == Some(name)) {
                    pod.metadata.owner_references =
                        Some(vec![controller_ref("ReplicaSet", "apps/v1", &rs_name, &rs_uid)]);
                }
            }
            for name in &p.release {
                if let Some(pod) = self.pods.iter_mut().find(|x| x.metadata.name.as_deref() == Some(name)) {
                    pod.metadata.owner_references = None;
                }
            }
            for name in &p.delete {
                self.delete_pod(name);
            }
            for _ in 0..p.create {
                self.counter += 1;
                let name = format!("{rs_name}-{}", self.counter);
                let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
                let delay = (self.next_random() % (self.max_ready_delay as u64 + 1)) as i64;
                self.ready_at.insert(name.clone(), self.now + delay);
                let node = format!("node-{}", self.counter % 3);
                self.pods.push(Pod {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(NS.into()),
                        uid: Some(format!("uid-{name}")),
                        creation_timestamp: Some(time_at(self.now)),
                        labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                        owner_references: Some(vec![controller_ref("ReplicaSet", "apps/v1", &rs_name, &rs_uid)]),
                        ..ObjectMeta::default()
                    },
                    spec: Some(PodSpec { node_name: Some(node), ..template.spec.unwrap_or_default() }),
                    status: Some(PodStatus { phase: Some("Pending".into()), ..PodStatus::default() }),
                });
            }
            if let Some(status) = p.status {
                self.rss[i].status = Some(status);
            }
        }
    }

    fn delete_pod(&mut self, name: &str) {
        if self.termination_grace <= 0 {
            self.pods.retain(|x| x.metadata.name.as_deref() != Some(name));
            return;
        }
        if let Some(pod) = self.pods.iter_mut().find(|x| x.metadata.name.as_deref() == Some(name)) {
            pod.metadata.deletion_timestamp = Some(time_at(self.now));
            self.gone_at.insert(name.to_string(), self.now + self.termination_grace);
        }
    }

    pub fn apply(&mut self, plan: &DeploymentPlan) {
        assert_eq!(plan.error, None, "unexpected plan error");
        self.events.extend(plan.events.iter().cloned());
        if let Some(rs) = &plan.create_rs {
            let mut rs = rs.clone();
            let name = rs.metadata.name.clone().unwrap_or_default();
            assert!(!self.rss.iter().any(|r| r.metadata.name.as_deref() == Some(name.as_str())), "RS name clash");
            rs.metadata.uid = Some(format!("uid-{name}"));
            rs.metadata.creation_timestamp = Some(time_at(self.now));
            rs.metadata.generation = Some(1);
            self.note_revision(&rs);
            self.rss.push(rs);
        }
        for change in &plan.update_rs {
            let Some(rs) = self.rss.iter_mut().find(|r| r.metadata.name.as_deref() == Some(change.name.as_str()))
            else {
                panic!("update of unknown RS {}", change.name);
            };
            let before_revision =
                rs.metadata.annotations.as_ref().and_then(|a| a.get(deployment::REVISION_ANNOTATION)).cloned();
            let spec = rs.spec.get_or_insert_with(Default::default);
            let mut spec_changed = spec.replicas != Some(change.replicas);
            spec.replicas = Some(change.replicas);
            if let Some(mrs) = change.min_ready_seconds {
                spec_changed |= spec.min_ready_seconds.unwrap_or(0) != mrs;
                spec.min_ready_seconds = Some(mrs);
            }
            if spec_changed {
                rs.metadata.generation = Some(rs.metadata.generation.unwrap_or(0) + 1);
            }
            rs.metadata.annotations.get_or_insert_with(BTreeMap::new).extend(change.annotations.clone());
            if change.adopt {
                rs.metadata.owner_references =
                    Some(vec![podutil::new_controller_ref("apps/v1", "Deployment", &self.d.metadata)]);
            }
            if change.release {
                rs.metadata.owner_references = None;
            }
            let after_revision =
                rs.metadata.annotations.as_ref().and_then(|a| a.get(deployment::REVISION_ANNOTATION)).cloned();
            if after_revision != before_revision {
                let rs = rs.clone();
                self.note_revision(&rs);
            }
        }
        for name in &plan.delete_rs {
            let rs = self.rss.iter().find(|r| r.metadata.name.as_deref() == Some(name.as_str())).cloned();
            let Some(rs) = rs else { panic!("delete of unknown RS {name}") };
            assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(0), "deleted RS {name} still wants pods");
            assert_eq!(rs.status.as_ref().map(|s| s.replicas), Some(0), "deleted RS {name} still has pods");
            self.rss.retain(|r| r.metadata.name.as_deref() != Some(name.as_str()));
        }
        if !plan.deployment_annotations.is_empty() {
            self.d.metadata.annotations.get_or_insert_with(BTreeMap::new).extend(plan.deployment_annotations.clone());
        }
        if let Some(status) = &plan.status {
            self.d.status = Some(status.clone());
        }
    }

    /// A revision handed to `rs` must be above every revision on the other live ReplicaSets. (Not above
    /// every revision ever seen: like Kubernetes, the next revision is max(live old revisions) + 1, so a
    /// number can come back after history cleanup deleted the ReplicaSet that held it.)
    fn note_revision(&mut self, rs: &ReplicaSet) {
        let revision =
            |r: &ReplicaSet| r.metadata.annotations.as_ref()?.get(deployment::REVISION_ANNOTATION)?.parse::<i64>().ok();
        let Some(r) = revision(rs) else { return };
        let others: Vec<i64> =
            self.rss.iter().filter(|o| o.metadata.name != rs.metadata.name).filter_map(revision).collect();
        assert!(others.iter().all(|o| *o < r), "revision {r} not above live revisions {others:?}");
        self.revisions_seen.push(r);
    }

    pub fn replicas(&self) -> i32 {
        self.d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    /// Active pods controlled by one of the simulated ReplicaSets.
    pub fn active_pods(&self) -> Vec<&Pod> {
        let uids: Vec<&str> = self.rss.iter().filter_map(|rs| rs.metadata.uid.as_deref()).collect();
        self.pods
            .iter()
            .filter(|p| podutil::is_pod_active(p))
            .filter(|p| podutil::controller_of(&p.metadata).is_some_and(|o| uids.contains(&o.uid.as_str())))
            .collect()
    }

    /// Pods that belong to someone else: labelled like ours but controlled by another ReplicaSet, and an
    /// orphan with other labels. No plan may touch them.
    pub fn add_foreign_pods(&mut self) -> Vec<Pod> {
        let foreign = vec![
            PodBuilder::new("foreign-1").labels(&[("app", "web")]).owned_by_rs("other", "uid-other").running().build(),
            PodBuilder::new("foreign-2").labels(&[("app", "web")]).owned_by_rs("other", "uid-other").build(),
            PodBuilder::new("orphan-db").labels(&[("app", "db")]).running().build(),
        ];
        self.pods.extend(foreign.iter().cloned());
        foreign
    }

    /// The given pods are still there, unchanged.
    pub fn untouched(&self, pods: &[Pod]) -> bool {
        pods.iter().all(|x| self.pods.iter().any(|p| p == x))
    }

    pub fn available_pods(&self) -> usize {
        let mrs = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
        self.active_pods().iter().filter(|p| podutil::is_pod_available(p, mrs, self.now)).count()
    }

    /// The ReplicaSet whose template is the Deployment's.
    pub fn new_rs(&self) -> Option<&ReplicaSet> {
        let t = &self.d.spec.as_ref()?.template;
        self.rss.iter().find(|rs| {
            rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|x| deployment::equal_ignore_hash(x, t))
        })
    }

    /// How many ReplicaSets currently have pods.
    pub fn rss_with_pods(&self) -> usize {
        self.rss
            .iter()
            .filter(|rs| {
                let uid = rs.metadata.uid.clone().unwrap_or_default();
                self.pods.iter().any(|p| podutil::is_controlled_by(&p.metadata, &uid))
            })
            .count()
    }

    /// The Deployment reports a finished rollout, as `kubectl rollout status` reads it.
    pub fn rollout_complete(&self) -> bool {
        let Some(status) = &self.d.status else { return false };
        let r = Some(self.replicas());
        let n = |v: Option<i32>| Some(v.unwrap_or(0));
        status.observed_generation >= self.d.metadata.generation
            && n(status.updated_replicas) == r
            && n(status.replicas) == r
            && n(status.available_replicas) == r
    }
}

#[cfg(test)]
mod rollout_props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Image(u8),
        Scale(i32),
        Pause,
        Resume,
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..4).prop_map(Op::Image),
            3 => (0i32..50).prop_map(Op::Scale),
            1 => Just(Op::Pause),
            2 => Just(Op::Resume),
            1 => Just(Op::Restart),
        ]
    }

    fn int_or_percent() -> impl Strategy<Value = IntOrString> {
        prop_oneof![
            (0i32..6).prop_map(IntOrString::Int),
            (0i32..=100).prop_map(|p| IntOrString::String(format!("{p}%")))
        ]
    }

    fn odd_int_or_string() -> impl Strategy<Value = IntOrString> {
        prop_oneof![
            any::<i32>().prop_map(IntOrString::Int),
            prop::sample::select(vec!["25%", "abc", "100%", "-10%", "99999999999%", "", "%", "250%"])
                .prop_map(|s| IntOrString::String(s.to_string())),
        ]
    }

    /// A ReplicaSet with arbitrary (possibly nonsensical) fields, built against a Deployment.
    #[derive(Debug, Clone)]
    struct OddRs {
        image: u8,
        replicas: Option<i32>,
        status: (i32, i32),
        revision: Option<&'static str>,
        desired: Option<&'static str>,
        max: Option<&'static str>,
        owner: u8,
        deleting: bool,
    }

    impl OddRs {
        fn build(&self, d: &Deployment, i: usize) -> ReplicaSet {
            let mut rs = owned_rs(d, &format!("nginx:{}", self.image), 1, 1, 1_700_000_000 - i as i64);
            rs.metadata.name = Some(format!("{}-{i}", rs.metadata.name.clone().unwrap_or_default()));
            rs.metadata.uid = Some(format!("uid-rs-{i}"));
            rs.spec.as_mut().unwrap().replicas = self.replicas;
            rs = with_status(rs, self.status.0, self.status.1);
            let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
            for (key, value) in [
                (deployment::REVISION_ANNOTATION, self.revision),
                (deployment::DESIRED_REPLICAS_ANNOTATION, self.desired),
                (deployment::MAX_REPLICAS_ANNOTATION, self.max),
            ] {
                match value {
                    Some(v) => a.insert(key.to_string(), v.to_string()),
                    None => a.remove(key),
                };
            }
            match self.owner {
                0 => {}
                1 => rs.metadata.owner_references = None,
                _ => rs.metadata.owner_references.as_mut().unwrap()[0].uid = "someone-else".into(),
            }
            if self.deleting {
                rs.metadata.deletion_timestamp = Some(time_at(1_700_000_000));
            }
            rs
        }
    }

    fn odd_rs() -> impl Strategy<Value = OddRs> {
        let text = || {
            prop::option::of(prop::sample::select(vec![
                "1",
                "2",
                "0",
                "-3",
                "abc",
                "",
                "99999999999999999999",
                "2147483647",
            ]))
        };
        let count = || prop_oneof![Just(i32::MAX), Just(i32::MIN), -2i32..40];
        (0u8..3, prop::option::of(count()), (count(), count()), text(), text(), text(), 0u8..3, any::<bool>()).prop_map(
            |(image, replicas, status, revision, desired, max, owner, deleting)| OddRs {
                image,
                replicas,
                status,
                revision,
                desired,
                max,
                owner,
                deleting,
            },
        )
    }

    fn is_zero(v: &IntOrString) -> bool {
        matches!(v, IntOrString::Int(0)) || matches!(v, IntOrString::String(s) if s == "0%")
    }

    fn apply_op(sim: &mut Sim, op: &Op) {
        let now = sim.now;
        match op {
            Op::Image(i) => sim.spec_mut().template = template(&format!("nginx:{i}")),
            Op::Scale(n) => sim.spec_mut().replicas = Some(*n),
            Op::Pause => sim.spec_mut().paused = Some(true),
            Op::Resume => sim.spec_mut().paused = Some(false),
            // `kubectl rollout restart`: a template annotation change.
            Op::Restart => {
                let meta = sim.spec_mut().template.metadata.get_or_insert_with(Default::default);
                meta.annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert("kubectl.kubernetes.io/restartedAt".into(), now.to_string());
            }
        }
    }

    /// The checks that must hold after every step of a RollingUpdate.
    fn check_rolling_step(sim: &Sim, available_budget_applies: bool) -> Result<(), TestCaseError> {
        let (surge, unavailable) = fenceposts(&sim.d);
        let replicas = sim.replicas();
        let total = sim.active_pods().len() as i32;
        prop_assert!(total <= replicas + surge, "{total} pods > {replicas} + surge {surge}");
        if available_budget_applies {
            let available = sim.available_pods() as i32;
            prop_assert!(
                available >= replicas - unavailable,
                "{available} available < {replicas} - maxUnavailable {unavailable}"
            );
        }
        Ok(())
    }

    /// Run until the Deployment is complete and quiet, then check the end state.
    fn converge(sim: &mut Sim, per_step: impl Fn(&Sim) -> Result<(), TestCaseError>) -> Result<(), TestCaseError> {
        if sim.d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
            apply_op(sim, &Op::Resume);
        }
        let mut quiet = 0;
        for _ in 0..400 {
            let plan = sim.step();
            per_step(sim)?;
            let idle = plan.create_rs.is_none()
                && plan.update_rs.is_empty()
                && plan.delete_rs.is_empty()
                && plan.status.is_none();
            quiet = if idle && sim.rollout_complete() { quiet + 1 } else { 0 };
            if quiet >= 3 {
                break;
            }
        }
        prop_assert!(sim.rollout_complete(), "rollout did not complete: {:?}", sim.d.status);
        let replicas = sim.replicas() as usize;
        let new_rs = sim.new_rs().cloned();
        prop_assert!(new_rs.is_some(), "no ReplicaSet for the current template");
        let new_rs = new_rs.unwrap_or_default();
        let new_uid = new_rs.metadata.uid.clone().unwrap_or_default();
        let pods = sim.active_pods();
        prop_assert_eq!(pods.len(), replicas);
        prop_assert!(pods.iter().all(|p| podutil::is_controlled_by(&p.metadata, &new_uid)), "old pods left");
        prop_assert_eq!(sim.available_pods(), replicas);
        // Revisions: unique, the new RS has the highest, the Deployment mirrors it.
        let mut revs: Vec<i64> = sim
            .rss
            .iter()
            .map(|rs| {
                rs.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(deployment::REVISION_ANNOTATION))
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(-1)
            })
            .collect();
        let new_rev: Option<&String> =
            new_rs.metadata.annotations.as_ref().and_then(|a| a.get(deployment::REVISION_ANNOTATION));
        prop_assert_eq!(new_rev.and_then(|r| r.parse::<i64>().ok()), revs.iter().copied().max());
        prop_assert_eq!(
            sim.d.metadata.annotations.as_ref().and_then(|a| a.get(deployment::REVISION_ANNOTATION)),
            new_rev
        );
        let n = revs.len();
        revs.sort_unstable();
        revs.dedup();
        prop_assert_eq!(revs.len(), n, "duplicate revisions");
        // History trimmed.
        let limit = sim.d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10) as usize;
        prop_assert!(sim.rss.len() - 1 <= limit, "{} old RSs kept, limit {limit}", sim.rss.len() - 1);
        // Conditions as `kubectl rollout status` and `kubectl get` read them.
        let conds = sim.d.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        let reason = |t: &str| conds.iter().find(|c| c.type_ == t).and_then(|c| c.reason.clone());
        prop_assert_eq!(reason(deployment::AVAILABLE), Some(deployment::MINIMUM_REPLICAS_AVAILABLE.to_string()));
        prop_assert_eq!(reason(deployment::PROGRESSING), Some(deployment::NEW_RS_AVAILABLE_REASON.to_string()));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whole RollingUpdate rollouts with template changes, scaling, restarts and pause/resume mid-rollout:
        /// never more than replicas + maxSurge pods, never fewer than replicas - maxUnavailable available once
        /// the Deployment has been complete since its last resize, and always converging to exactly
        /// `replicas` available pods of the current template with trimmed, increasing revisions.
        #[test]
        fn rolling_update_rollouts(
            replicas in 0i32..50,
            surge in int_or_percent(),
            unavailable in int_or_percent(),
            history in 0i32..4,
            ops in prop::collection::vec((0i32..10, op()), 0..10),
            ready_delay in 0i64..6,
            grace in 0i64..3,
            seed in 1u64..u64::MAX,
        ) {
            prop_assume!(!(is_zero(&surge) && is_zero(&unavailable)));
            let d = DeploymentBuilder::new("web").replicas(replicas).rolling(surge, unavailable).revision_history_limit(history).build();
            let mut sim = Sim::new(d, seed);
            sim.max_ready_delay = ready_delay;
            sim.termination_grace = grace;
            let foreign = sim.add_foreign_pods();
            let mut settled = false;
            for _ in 0..200 {
                sim.step();
                check_rolling_step(&sim, false)?;
                if sim.rollout_complete() { settled = true; break; }
            }
            prop_assert!(settled, "initial rollout did not complete");
            for (gap, op) in &ops {
                if matches!(op, Op::Scale(_)) { settled = false; }
                apply_op(&mut sim, op);
                for _ in 0..*gap {
                    sim.step();
                    check_rolling_step(&sim, settled)?;
                    if sim.rollout_complete() { settled = true; }
                }
            }
            // Resuming and converging involve no resize, so the availability budget keeps holding.
            let settled = std::cell::Cell::new(settled);
            converge(&mut sim, |s| {
                check_rolling_step(s, settled.get())?;
                settled.set(settled.get() || s.rollout_complete());
                Ok(())
            })?;
            prop_assert!(sim.events.iter().all(|(t, _, _)| t == "Normal"));
            prop_assert!(sim.untouched(&foreign), "a foreign pod was changed or deleted");
        }

        /// Recreate never runs two template versions at once (terminating pods included) and converges like
        /// RollingUpdate. Not while paused: a paused Deployment is only scaled, and Kubernetes' `scale` then
        /// sizes the latest ReplicaSet up whatever the strategy, even with old pods still terminating; so the
        /// check resumes once the pods that were terminating at resume time are gone.
        #[test]
        fn recreate_rollouts(
            replicas in 0i32..30,
            ops in prop::collection::vec((0i32..10, op()), 0..10),
            ready_delay in 0i64..6,
            grace in 0i64..4,
            seed in 1u64..u64::MAX,
        ) {
            let d = DeploymentBuilder::new("web").replicas(replicas).recreate().build();
            let mut sim = Sim::new(d, seed);
            sim.max_ready_delay = ready_delay;
            sim.termination_grace = grace;
            let foreign = sim.add_foreign_pods();
            let steps_unpaused = std::cell::Cell::new(i64::MAX / 2);
            let one_version = |s: &Sim| -> Result<(), TestCaseError> {
                let paused = s.d.spec.as_ref().and_then(|x| x.paused).unwrap_or(false);
                steps_unpaused.set(if paused { 0 } else { steps_unpaused.get() + 1 });
                if steps_unpaused.get() > grace + 1 {
                    prop_assert!(s.rss_with_pods() <= 1, "pods of {} ReplicaSets at once", s.rss_with_pods());
                    prop_assert!(s.active_pods().len() as i32 <= s.replicas(), "more pods than replicas");
                }
                Ok(())
            };
            for (gap, op) in &ops {
                apply_op(&mut sim, op);
                for _ in 0..*gap {
                    sim.step();
                    one_version(&sim)?;
                }
            }
            converge(&mut sim, one_version)?;
            prop_assert!(sim.untouched(&foreign), "a foreign pod was changed or deleted");
        }

        /// With minReadySeconds, availability lags readiness; rollouts still converge.
        #[test]
        fn min_ready_seconds_rollouts(
            replicas in 1i32..20,
            min_ready in 1i32..5,
            images in prop::collection::vec(0u8..3, 1..4),
            seed in 1u64..u64::MAX,
        ) {
            let d = DeploymentBuilder::new("web").replicas(replicas).min_ready_seconds(min_ready).build();
            let mut sim = Sim::new(d, seed);
            for image in images {
                for _ in 0..3 { sim.step(); }
                apply_op(&mut sim, &Op::Image(image));
            }
            converge(&mut sim, |_| Ok(()))?;
        }

        /// Neither planner panics, whatever the objects say: negative or huge counts, bad percentages,
        /// unparsable annotations, unknown strategies, objects being deleted, foreign owners.
        #[test]
        fn plans_never_panic_on_odd_inputs(
            replicas in prop_oneof![Just(i32::MAX), Just(i32::MIN), -3i32..60],
            surge in odd_int_or_string(),
            unavailable in odd_int_or_string(),
            strategy in prop::option::of(prop::sample::select(vec!["RollingUpdate", "Recreate", "Bogus"])),
            paused in any::<bool>(),
            deadline in prop::option::of(prop_oneof![Just(i32::MAX), Just(0), -5i32..700]),
            history in prop::option::of(prop_oneof![Just(i32::MAX), -3i32..5]),
            deleting in any::<bool>(),
            collision in prop::option::of(prop_oneof![Just(i32::MAX), Just(-1), 0i32..3]),
            rss in prop::collection::vec(odd_rs(), 0..5),
            now in prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(0i64), 1_600_000_000i64..1_800_000_000],
        ) {
            let mut b = DeploymentBuilder::new("web").replicas(replicas).paused(paused);
            b = match strategy {
                Some("Recreate") => b.recreate(),
                Some(other) => {
                    let mut b = b.rolling(surge, unavailable);
                    b.spec().strategy.as_mut().unwrap().type_ = Some(other.to_string());
                    b
                }
                None => b,
            };
            if let Some(dl) = deadline { b = b.progress_deadline(dl); }
            if let Some(h) = history { b = b.revision_history_limit(h); }
            let mut d = b.build();
            if deleting { d.metadata.deletion_timestamp = Some(time_at(1_700_000_000)); }
            d.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus { collision_count: collision, replicas: Some(replicas), ..Default::default() });
            let objects: Vec<ReplicaSet> = rss.iter().enumerate().map(|(i, f)| f.build(&d, i)).collect();
            let pods: Vec<Pod> = objects.iter().map(|rs| {
                let name = rs.metadata.name.clone().unwrap_or_default();
                let uid = rs.metadata.uid.clone().unwrap_or_default();
                PodBuilder::new(&format!("{name}-p")).labels(&[("app", "web")]).owned_by_rs(&name, &uid).running().ready_since(1_700_000_000).build()
            }).collect();
            let _ = deployment::plan(&d, &objects, &pods, now);
            for rs in &objects {
                let _ = replicaset::plan(rs, &pods, now, 3);
                let _ = replicaset::status_after_failure(rs, &pods, now, "boom");
            }
        }
    }
}
