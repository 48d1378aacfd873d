//! The doing half of the controllers: each reads the caches, calls its pure
//! `plan` function, and carries the plan out through the API.

use super::events::Recorder;
use super::runtime::{Action, ControllerError, Informer, Key, Mirror, Reconciler, WorkQueue, split_key};
use super::{endpoints, gc, job, nodelifecycle, scheduler};
use crate::api::error::ApiError;
use crate::api::query::{DeleteOptions, WriteOptions};
use crate::api::registry::{self, Resource};
use crate::api::rest::{Api, Target};
use crate::api::store::Freshness;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn res(name: &str) -> Result<&'static Resource, ControllerError> {
    registry::lookup(name).ok_or_else(|| ControllerError::Other(format!("resource {name} is not served")))
}

fn now_secs() -> i64 {
    crate::api::meta::now_secs()
}

fn to_value<T: serde::Serialize>(t: &T) -> Result<Value, ControllerError> {
    serde_json::to_value(t).map_err(|e| ControllerError::Other(e.to_string()))
}

/// Ignores "already gone" and "someone else did it" answers, which a controller
/// racing the world expects.
fn tolerate(r: Result<impl Sized, ApiError>) -> Result<(), ControllerError> {
    match r {
        Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Replaces one part of an object with a compare-and-swap loop.
pub(super) async fn update_with(
    api: &Api,
    r: &'static Resource,
    ns: Option<&str>,
    name: &str,
    target: Target,
    manager: &str,
    f: impl Fn(&mut Value) + Send,
) -> Result<(), ControllerError> {
    tolerate(
        api.guaranteed_update(r, ns, name, target, &WriteOptions::default(), manager, false, |live| {
            let mut new = live.cloned().ok_or_else(|| ApiError::not_found(r, name))?;
            f(&mut new);
            Ok((new, false))
        })
        .await,
    )
}

// === scheduler ===

/// The scheduler: binds pending pods in batches (one decision pass, then the
/// bindings concurrently, so the store's group commit carries them together).
pub struct Scheduler {
    pub api: Api,
    pub pods: Arc<Mirror<Pod>>,
    pub nodes: Arc<Mirror<Node>>,
    pub queue: Arc<WorkQueue<Key>>,
    pub recorder: Arc<Recorder>,
    /// Pods bound by this scheduler that the cache does not show bound yet:
    /// counted on their node so a later batch does not overbook it.
    assumed: Mutex<HashMap<String, String>>,
    /// Where the next decision starts looking among the nodes (the sample of nodes
    /// scored rotates; see `scheduler::schedule_from`).
    next_start: Mutex<usize>,
    /// Pods that fit nowhere; tried again when nodes or pods change.
    unschedulable: Mutex<HashSet<Key>>,
    /// The last FailedScheduling message per pod, so repeats are not re-reported.
    reported: Mutex<HashMap<Key, String>>,
}

const BATCH: usize = 2048;
const BIND_CONCURRENCY: usize = 256;

impl Scheduler {
    pub fn new(
        api: Api,
        pods: Arc<Mirror<Pod>>,
        nodes: Arc<Mirror<Node>>,
        queue: Arc<WorkQueue<Key>>,
        recorder: Arc<Recorder>,
    ) -> Arc<Self> {
        Arc::new(Self {
            api,
            pods,
            nodes,
            queue,
            recorder,
            assumed: Mutex::new(HashMap::new()),
            next_start: Mutex::new(0),
            unschedulable: Mutex::new(HashSet::new()),
            reported: Mutex::new(HashMap::new()),
        })
    }

    /// Whether this scheduler should place `pod`.
    fn pending(pod: &Pod) -> bool {
        let spec = pod.spec.as_ref();
        spec.is_some_and(|s| s.node_name.as_deref().unwrap_or("").is_empty())
            && pod.metadata.deletion_timestamp.is_none()
            && spec.and_then(|s| s.scheduler_name.as_deref()).is_none_or(|n| n == "default-scheduler" || n.is_empty())
            && !matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
    }

    /// Nodes or pods changed: give unschedulable pods another chance.
    pub fn retry_unschedulable(&self) {
        let keys: Vec<Key> = self.unschedulable.lock().drain().collect();
        for k in keys {
            self.queue.add(k);
        }
    }

    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                k = self.queue.next() => k,
                _ = stop.changed() => return,
            };
            let Some(first) = first else { return };
            let mut keys = vec![first];
            while keys.len() < BATCH {
                match self.queue.try_next() {
                    Some(k) => keys.push(k),
                    None => break,
                }
            }
            self.schedule_batch(&keys).await;
            for k in &keys {
                self.queue.done(k);
            }
        }
    }

    async fn schedule_batch(&self, keys: &[Key]) {
        let mut batch: Vec<(Key, Arc<Pod>)> = keys
            .iter()
            .filter_map(|k| Some((k.clone(), self.pods.get(k)?)))
            .filter(|(_, p)| Self::pending(p))
            .collect();
        if batch.is_empty() {
            return;
        }
        // Higher priority first, then older first.
        batch.sort_by(|(_, a), (_, b)| {
            let pa = a.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
            let pb = b.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
            pb.cmp(&pa).then_with(|| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp))
        });
        let nodes = self.nodes.snapshot();
        let mut all: Vec<Pod> = self.pods.snapshot();
        {
            let mut assumed = self.assumed.lock();
            let present: HashMap<&str, &Pod> =
                all.iter().filter_map(|p| Some((p.metadata.uid.as_deref()?, p))).collect();
            // Forget assumptions the cache has caught up with (or that are moot).
            assumed.retain(|uid, _| {
                present
                    .get(uid.as_str())
                    .is_some_and(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("").is_empty())
            });
            for p in all.iter_mut() {
                if let Some(node) = p.metadata.uid.as_ref().and_then(|u| assumed.get(u))
                    && let Some(spec) = p.spec.as_mut()
                {
                    spec.node_name = Some(node.clone());
                }
            }
        }
        let mut infos = scheduler::node_infos(&nodes, &all);
        let owners = scheduler::owner_counts(&all);
        let mut binds = Vec::new();
        let mut next_start = *self.next_start.lock();
        for (key, pod) in batch {
            let decision = scheduler::schedule_from(&pod, &mut infos, &owners, &mut next_start);
            *self.next_start.lock() = next_start;
            match decision {
                scheduler::Decision::Bind(node) => {
                    if let Some(uid) = &pod.metadata.uid {
                        self.assumed.lock().insert(uid.clone(), node.clone());
                    }
                    self.unschedulable.lock().remove(&key);
                    self.reported.lock().remove(&key);
                    binds.push((key, pod, node));
                }
                scheduler::Decision::Unschedulable(message) => {
                    self.unschedulable.lock().insert(key.clone());
                    let fresh =
                        self.reported.lock().insert(key.clone(), message.clone()).as_deref() != Some(message.as_str());
                    if fresh {
                        self.report_unschedulable(&key, &pod, &message).await;
                    }
                }
            }
        }
        use futures::StreamExt;
        let results: Vec<(Key, Arc<Pod>, Result<(), ApiError>)> = futures::stream::iter(binds)
            .map(|(key, pod, node)| async move {
                let (ns, name) = split_key(&key);
                let binding = json!({
                    "apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name, "uid": pod.metadata.uid},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                });
                let r = self.api.bind(ns, name, &binding, &WriteOptions::default(), "default-scheduler").await.map(|_| ());
                if r.is_ok() {
                    let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": pod.metadata.uid}});
                    let ns = ns.unwrap_or("default");
                    self.recorder.record(&obj, "Normal", "Scheduled", &format!("Successfully assigned {ns}/{name} to {node}")).await;
                }
                (key, pod, r)
            })
            .buffer_unordered(BIND_CONCURRENCY)
            .collect()
            .await;
        for (key, pod, r) in results {
            match r {
                Ok(()) => {}
                // Already bound, or gone: nothing to do.
                Err(ApiError::Conflict { .. } | ApiError::NotFound { .. }) => {
                    if let Some(uid) = &pod.metadata.uid {
                        self.assumed.lock().remove(uid);
                    }
                }
                Err(e) => {
                    tracing::debug!(%key, error = %e, "binding failed; retrying");
                    if let Some(uid) = &pod.metadata.uid {
                        self.assumed.lock().remove(uid);
                    }
                    self.queue.retry(key);
                }
            }
        }
    }

    async fn report_unschedulable(&self, key: &str, pod: &Pod, message: &str) {
        let (ns, name) = split_key(key);
        let Ok(pods) = res("pods") else { return };
        let now = crate::api::meta::now();
        let msg = message.to_string();
        let _ = update_with(&self.api, pods, ns, name, Target::Status, "default-scheduler", move |p| {
            crate::api::rest::set_condition(p, "PodScheduled", "False", Some("Unschedulable"), Some(&msg), &now);
        })
        .await;
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": pod.metadata.uid}});
        self.recorder.record(&obj, "Warning", "FailedScheduling", message).await;
    }
}

// === node lifecycle ===

/// Marks nodes whose lease ran out as unknown, taints them, and evicts their pods
/// once the pods' tolerations run out; untaints nodes that come back.
pub struct NodeLifecycle {
    pub api: Api,
    pub nodes: Arc<Mirror<Node>>,
    pub leases: Arc<Mirror<Lease>>,
    pub pods: Arc<Mirror<Pod>>,
    pub grace: Duration,
    pub recorder: Arc<Recorder>,
}

impl NodeLifecycle {
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // Give nodes one grace period after a leader change to show their leases.
        let since = now_secs();
        let mut interval = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.once(since).await {
                tracing::debug!(error = %e, "node lifecycle pass failed");
            }
        }
    }

    async fn once(&self, since: i64) -> Result<(), ControllerError> {
        let nodes = self.nodes.snapshot();
        let leases: Vec<Lease> = self.leases.snapshot_namespace("kube-node-lease");
        let pods = self.pods.snapshot();
        let now = now_secs();
        let plan = nodelifecycle::plan_since(&nodes, &leases, &pods, now, self.grace.as_secs() as i64, since);
        let node_res = res("nodes")?;
        let pod_res = res("pods")?;
        let by_name: HashMap<String, &Node> =
            nodes.iter().filter_map(|n| Some((n.metadata.name.clone()?, n))).collect();
        for name in &plan.mark_unknown {
            let Some(node) = by_name.get(name) else { continue };
            let conditions = to_value(&nodelifecycle::unknown_conditions(node, now))?;
            update_with(&self.api, node_res, None, name, Target::Status, "node-controller", move |n| {
                n["status"]["conditions"] = conditions.clone();
            })
            .await?;
            let obj = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": node.metadata.uid}});
            self.recorder
                .record(&obj, "Normal", "NodeNotReady", &format!("Node {name} status is now: NodeNotReady"))
                .await;
        }
        let lifecycle_keys = ["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"];
        for (names, taint) in [
            (&plan.add_unreachable_taint, nodelifecycle::unreachable_taint(now)),
            (&plan.add_not_ready_taint, nodelifecycle::not_ready_taint(now)),
        ] {
            let t = to_value(&taint)?;
            for name in names {
                let t = t.clone();
                update_with(&self.api, node_res, None, name, Target::Main, "node-controller", move |n| {
                    let mut taints: Vec<Value> = n
                        .pointer("/spec/taints")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|x| {
                            !(lifecycle_keys.contains(&x["key"].as_str().unwrap_or("")) && x["effect"] == "NoExecute")
                        })
                        .collect();
                    taints.push(t.clone());
                    n["spec"]["taints"] = json!(taints);
                })
                .await?;
            }
        }
        for name in &plan.remove_taints {
            update_with(&self.api, node_res, None, name, Target::Main, "node-controller", |n| {
                if let Some(taints) = n.pointer_mut("/spec/taints").and_then(Value::as_array_mut) {
                    taints.retain(|x| !lifecycle_keys.contains(&x["key"].as_str().unwrap_or("")));
                }
            })
            .await?;
        }
        for (ns, name) in &plan.evict {
            let r = self.api.delete(pod_res, Some(ns), name, &DeleteOptions::default()).await;
            if r.is_ok() {
                let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}});
                self.recorder
                    .record(&obj, "Normal", "TaintManagerEviction", &format!("Marking for deletion Pod {ns}/{name}"))
                    .await;
            }
            tolerate(r)?;
        }
        let now_s = crate::api::meta::now();
        for (ns, name) in &plan.mark_pods_not_ready {
            let now_s = now_s.clone();
            update_with(&self.api, pod_res, Some(ns), name, Target::Status, "node-controller", move |p| {
                crate::api::rest::set_condition(p, "Ready", "False", Some("NodeNotReady"), None, &now_s);
            })
            .await?;
        }
        Ok(())
    }
}

// === garbage collector ===

/// Deletes dependents whose owners are gone, runs foreground deletion and
/// orphaning (ownerReferences, `foregroundDeletion` and `orphan` finalizers).
pub struct GarbageCollector {
    pub api: Api,
    pub informers: Vec<Arc<Informer>>,
    pub dirty: Arc<tokio::sync::Notify>,
}

impl GarbageCollector {
    /// The dependents (keys of `absent`) with an owner that the caches missed but the store still
    /// holds. The plan comes from several caches, each at its own revision: a pod's cache may
    /// show a pod whose ReplicaSet the other cache has not seen yet. Like Kubernetes'
    /// `isDangling`, each owner is read live (once per pass) before anything is collected.
    async fn owners_still_there(
        &self,
        absent: &[(gc::ObjectKey, Vec<gc::ObjectKey>)],
    ) -> Result<HashSet<gc::ObjectKey>, ControllerError> {
        let mut exists: HashMap<&gc::ObjectKey, bool> = HashMap::new();
        let mut unsure = HashSet::new();
        for (dependent, owners) in absent {
            for owner in owners {
                let there = match exists.get(owner) {
                    Some(there) => *there,
                    None => {
                        let there = match registry::by_kind(&owner.api_version, &owner.kind) {
                            // A kind rk does not serve cannot have an object.
                            None => false,
                            Some(r) => {
                                match self.api.get(r, owner.namespace.as_deref(), &owner.name, Freshness::Latest).await
                                {
                                    Ok(stored) => {
                                        let o = stored.object()?;
                                        o.pointer("/metadata/uid").and_then(Value::as_str) == Some(&owner.uid)
                                    }
                                    Err(ApiError::NotFound { .. }) => false,
                                    Err(e) => return Err(e.into()),
                                }
                            }
                        };
                        exists.insert(owner, there);
                        there
                    }
                };
                if there {
                    unsure.insert(dependent.clone());
                }
            }
        }
        Ok(unsure)
    }

    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.dirty.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                _ = stop.changed() => return,
            }
            // Let a burst of changes settle into one pass.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Err(e) = self.once().await {
                tracing::debug!(error = %e, "garbage collection pass failed");
                self.dirty.notify_one();
            }
        }
    }

    async fn once(&self) -> Result<(), ControllerError> {
        let mut objects = Vec::new();
        for inf in &self.informers {
            for obj in inf.list() {
                let Ok(meta) = serde_json::from_value(obj["metadata"].clone()) else { continue };
                objects.push(gc::ObjectRef::from_meta(&inf.res.api_version(), inf.res.kind, &meta));
            }
        }
        let plan = gc::plan(&objects);
        let find = |k: &gc::ObjectKey| registry::by_kind(&k.api_version, &k.kind);
        let unsure = self.owners_still_there(&plan.absent_owners).await?;
        if !unsure.is_empty() {
            // A cache lags the store; its watch event will wake another pass.
            tracing::debug!(objects = unsure.len(), "garbage collection: owners missing from the cache still exist");
        }
        for (key, prop) in &plan.delete {
            if unsure.contains(key) {
                continue;
            }
            let Some(r) = find(key) else { continue };
            let opts = DeleteOptions {
                propagation_policy: Some(
                    match prop {
                        gc::Propagation::Foreground => "Foreground",
                        gc::Propagation::Orphan => "Orphan",
                        gc::Propagation::Background => "Background",
                    }
                    .into(),
                ),
                precondition_uid: Some(key.uid.clone()),
                ..Default::default()
            };
            match self.api.delete(r, key.namespace.as_deref(), &key.name, &opts).await {
                Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for (key, uids) in &plan.remove_owner_refs {
            if unsure.contains(key) {
                continue;
            }
            let Some(r) = find(key) else { continue };
            let uids = uids.clone();
            update_with(
                &self.api,
                r,
                key.namespace.as_deref(),
                &key.name,
                Target::Main,
                "garbage-collector",
                move |o| {
                    if let Some(refs) = o.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                        refs.retain(|x| !uids.iter().any(|u| x["uid"] == u.as_str()));
                    }
                },
            )
            .await?;
        }
        for key in &plan.unblock_owner_refs {
            let Some(r) = find(key) else { continue };
            update_with(&self.api, r, key.namespace.as_deref(), &key.name, Target::Main, "garbage-collector", |o| {
                if let Some(refs) = o.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                    for x in refs {
                        x["blockOwnerDeletion"] = json!(false);
                    }
                }
            })
            .await?;
        }
        for (key, finalizer) in &plan.remove_finalizer {
            let Some(r) = find(key) else { continue };
            let f = finalizer.clone();
            update_with(
                &self.api,
                r,
                key.namespace.as_deref(),
                &key.name,
                Target::Main,
                "garbage-collector",
                move |o| {
                    if let Some(fins) = o.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                        fins.retain(|x| x != f.as_str());
                    }
                },
            )
            .await?;
        }
        Ok(())
    }
}

// === jobs ===

pub struct JobController {
    pub api: Api,
    pub jobs: Arc<Mirror<Job>>,
    pub pods: Arc<Mirror<Pod>>,
    pub recorder: Arc<Recorder>,
}

pub fn controller_uid(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<&str> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true)).map(|r| r.uid.as_str())
}

#[tonic::async_trait]
impl Reconciler for JobController {
    fn name(&self) -> &'static str {
        "job-controller"
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ControllerError> {
        let Some(job) = self.jobs.get(key) else { return Ok(Action::done()) };
        let (ns, name) = split_key(key);
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let pods: Vec<Pod> = self
            .pods
            .list_namespace(ns.unwrap_or("default"))
            .into_iter()
            .filter(|p| controller_uid(&p.metadata) == Some(uid.as_str()))
            .map(|p| (*p).clone())
            .collect();
        let plan = job::plan(&job, &pods, now_secs());
        let job_res = res("jobs")?;
        let pod_res = res("pods")?;
        if plan.delete_job {
            let opts = DeleteOptions { propagation_policy: Some("Background".into()), ..Default::default() };
            tolerate(self.api.delete(job_res, ns, name, &opts).await)?;
            return Ok(Action::done());
        }
        let job_obj = to_value(&*job)?;
        let mut creates: Vec<Option<i32>> = plan.create_indexes.iter().map(|i| Some(*i)).collect();
        creates.extend(std::iter::repeat_n(None, plan.create));
        for index in creates {
            let pod = to_value(&job::pod_for(&job, index))?;
            match self.api.create(pod_res, ns, pod, &WriteOptions::default(), "job-controller").await {
                Ok(out) => {
                    let pname = out.object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
                    self.recorder
                        .record(&job_obj, "Normal", "SuccessfulCreate", &format!("Created pod: {pname}"))
                        .await;
                }
                Err(e) => {
                    self.recorder.record(&job_obj, "Warning", "FailedCreate", &format!("Error creating: {e}")).await;
                    return Err(e.into());
                }
            }
        }
        for pod in &plan.delete {
            tolerate(self.api.delete(pod_res, ns, pod, &DeleteOptions::default()).await)?;
            self.recorder.record(&job_obj, "Normal", "SuccessfulDelete", &format!("Deleted pod: {pod}")).await;
        }
        if let Some(status) = &plan.status {
            let status = to_value(status)?;
            let before = job.status.as_ref().map(to_value).transpose()?;
            if before.as_ref() != Some(&status) {
                let finished = |s: &Value, t: &str| {
                    s["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == t && c["status"] == "True"))
                };
                let completed =
                    finished(&status, "Complete") && !before.as_ref().is_some_and(|b| finished(b, "Complete"));
                let failed = finished(&status, "Failed") && !before.as_ref().is_some_and(|b| finished(b, "Failed"));
                update_with(&self.api, job_res, ns, name, Target::Status, "job-controller", move |j| {
                    j["status"] = status.clone();
                })
                .await?;
                if completed {
                    self.recorder.record(&job_obj, "Normal", "Completed", "Job completed").await;
                }
                if failed {
                    self.recorder
                        .record(
                            &job_obj,
                            "Warning",
                            "BackoffLimitExceeded",
                            "Job has reached the specified backoff limit",
                        )
                        .await;
                }
            }
        }
        Ok(match plan.requeue_after {
            Some(s) => Action::requeue(Duration::from_secs(s.max(0) as u64)),
            None => Action::requeue(Duration::from_secs(30)),
        })
    }
}

// === endpoints ===

pub struct EndpointsController {
    pub api: Api,
    pub services: Arc<Mirror<Service>>,
    pub pods: Arc<Mirror<Pod>>,
    pub endpoints: Arc<Informer>,
    pub slices: Arc<Informer>,
}

impl EndpointsController {
    /// Creates or replaces `obj` unless it already holds the same content.
    async fn upsert(
        &self,
        r: &'static Resource,
        ns: &str,
        mut obj: Value,
        current: Option<Arc<Value>>,
        content: &[&str],
    ) -> Result<(), ControllerError> {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        match current {
            None => tolerate(self.api.create(r, Some(ns), obj, &WriteOptions::default(), "endpoint-controller").await),
            Some(cur) => {
                let same = content.iter().all(|k| cur.get(*k) == obj.get(*k))
                    && cur.pointer("/metadata/labels") == obj.pointer("/metadata/labels");
                if same {
                    return Ok(());
                }
                obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
                match self
                    .api
                    .update(r, Some(ns), &name, obj, Target::Main, &WriteOptions::default(), "endpoint-controller")
                    .await
                {
                    Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoint-controller"
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ControllerError> {
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or("default");
        let ep_res = res("endpoints")?;
        let slice_res = res("endpointslices")?;
        let mine = |obj: &Value| {
            obj.pointer("/metadata/labels/kubernetes.io~1service-name").and_then(Value::as_str) == Some(name)
                && obj.pointer("/metadata/labels/endpointslice.kubernetes.io~1managed-by").and_then(Value::as_str)
                    == Some("endpointslice-controller.k8s.io")
        };
        let Some(service) = self.services.get(key) else {
            // The service is gone: so are its endpoints and slices.
            tolerate(self.api.delete(ep_res, Some(ns), name, &DeleteOptions::default()).await)?;
            for s in self.slices.list_namespace(ns).into_iter().filter(|s| mine(s)) {
                let sname = s.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
                tolerate(self.api.delete(slice_res, Some(ns), &sname, &DeleteOptions::default()).await)?;
            }
            return Ok(Action::done());
        };
        let pods: Vec<Pod> = self.pods.snapshot_namespace(ns);
        let Some(plan) = endpoints::plan(&service, &pods) else { return Ok(Action::done()) };
        let ep = to_value(&plan.endpoints)?;
        self.upsert(ep_res, ns, ep, self.endpoints.get(key), &["subsets"]).await?;
        let mut wanted = HashSet::new();
        for slice in &plan.slices {
            let v = to_value(slice)?;
            let sname = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
            wanted.insert(sname.clone());
            let current = self.slices.get(&format!("{ns}/{sname}"));
            self.upsert(slice_res, ns, v, current, &["endpoints", "ports", "addressType"]).await?;
        }
        for s in self.slices.list_namespace(ns).into_iter().filter(|s| mine(s)) {
            let sname = s.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
            if !wanted.contains(&sname) {
                tolerate(self.api.delete(slice_res, Some(ns), &sname, &DeleteOptions::default()).await)?;
            }
        }
        Ok(Action::done())
    }
}

/// Services in `ns` whose selector may cover `pod` (all of the namespace's
/// services with a selector: cheap to over-approximate, the plan decides).
pub fn services_for(services: &Mirror<Service>, pod: &Value) -> Vec<Key> {
    let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
    services
        .list_namespace(ns)
        .into_iter()
        .filter(|s| s.spec.as_ref().and_then(|sp| sp.selector.as_ref()).is_some())
        .filter_map(|s| Some(format!("{ns}/{}", s.metadata.name.as_deref()?)))
        .collect()
}

/// The key of the controller (kind `kind`) owning `obj`, if any.
pub fn owner_key(obj: &Value, kind: &str) -> Option<Key> {
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str)?;
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true && r["kind"] == kind)
        .and_then(|r| r["name"].as_str())
        .map(|n| format!("{ns}/{n}"))
}

/// Re-reads the store instead of the cache (for readers that must not act on a
/// stale view).
pub async fn fresh(api: &Api, r: &'static Resource, key: &str) -> Result<Option<Value>, ControllerError> {
    let (ns, name) = split_key(key);
    match api.get(r, ns, name, Freshness::Latest).await {
        Ok(s) => Ok(Some(s.object()?)),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

// === expectations ===

/// What a controller created or deleted that its cache has not shown yet. Until
/// the cache catches up, the controller waits instead of acting on a stale view
/// (which would create or delete twice). Kubernetes' "expectations".
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<Key, Pending>>,
}

struct Pending {
    created: HashSet<Key>,
    deleted: HashSet<Key>,
    since: std::time::Instant,
}

/// How long to trust expectations before acting anyway (a missed event). These are met
/// by *seeing* the object in the cache, so one created and deleted again before the
/// controller looks is never seen; a long timeout would then stall the owner. The
/// Deployment controller uses them for ReplicaSets, whose names are fixed by the template
/// hash (creating one twice is a harmless AlreadyExists); pods, whose names are generated,
/// use the event-counting [`PodExpectations`].
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(30);

impl Expectations {
    pub fn expect(&self, owner: &str, created: impl IntoIterator<Item = Key>, deleted: impl IntoIterator<Item = Key>) {
        let mut map = self.pending.lock();
        let p = map.entry(owner.to_string()).or_insert_with(|| Pending {
            created: HashSet::new(),
            deleted: HashSet::new(),
            since: std::time::Instant::now(),
        });
        p.created.extend(created);
        p.deleted.extend(deleted);
        p.since = std::time::Instant::now();
    }

    /// Whether `owner`'s earlier writes are all visible; `seen` says whether a key
    /// is present (and not being deleted) in the cache.
    pub fn satisfied(&self, owner: &str, seen: impl Fn(&str) -> bool) -> bool {
        let mut map = self.pending.lock();
        let Some(p) = map.get_mut(owner) else { return true };
        p.created.retain(|k| !seen(k));
        p.deleted.retain(|k| seen(k));
        if (p.created.is_empty() && p.deleted.is_empty()) || p.since.elapsed() > EXPECTATION_TIMEOUT {
            map.remove(owner);
            return true;
        }
        false
    }
}

/// How long the ReplicaSet controller trusts its pod expectations before acting anyway
/// (Kubernetes' `ExpectationsTimeout`): only a watch event that never comes holds it that long.
const POD_EXPECTATION_TIMEOUT: Duration = Duration::from_secs(300);

/// The ReplicaSet controller's expectations, as Kubernetes keeps them: the number of pod
/// creations not yet observed, and the pods whose deletion is not yet observed. The pod
/// informer's events settle them: an added pod settles one creation whatever became of it
/// afterwards, so a pod created and deleted again before the controller looks cannot hold its
/// ReplicaSet, and a cache that trails the store far behind holds it instead of letting it
/// create twice. Every creation is expected before it is sent (its event may come before the
/// answer), and one that fails is settled at once.
#[derive(Default)]
pub struct PodExpectations {
    pending: Mutex<HashMap<Key, PodPending>>,
}

struct PodPending {
    adds: i64,
    deletes: HashSet<Key>,
    since: std::time::Instant,
}

impl PodExpectations {
    fn entry<R>(&self, owner: &str, f: impl FnOnce(&mut PodPending) -> R) -> R {
        let mut map = self.pending.lock();
        let p = map.entry(owner.to_string()).or_insert_with(|| PodPending {
            adds: 0,
            deletes: HashSet::new(),
            since: std::time::Instant::now(),
        });
        p.since = std::time::Instant::now();
        f(p)
    }

    pub fn expect_creations(&self, owner: &str, n: usize) {
        self.entry(owner, |p| p.adds += n as i64);
    }

    pub fn expect_deletions(&self, owner: &str, pods: impl IntoIterator<Item = Key>) {
        let mut pods = pods.into_iter().peekable();
        if pods.peek().is_some() {
            self.entry(owner, |p| p.deletes.extend(pods));
        }
    }

    pub fn creation_observed(&self, owner: &str) {
        if let Some(p) = self.pending.lock().get_mut(owner) {
            p.adds -= 1;
        }
    }

    pub fn deletion_observed(&self, owner: &str, pod: &str) {
        if let Some(p) = self.pending.lock().get_mut(owner) {
            p.deletes.remove(pod);
        }
    }

    /// Settles expectations from one pod informer event: a pod added, deleted, or marked for
    /// deletion, owned by `owner`.
    pub fn observe(&self, owner: &str, change: &super::runtime::Change) {
        use super::runtime::Change;
        let marked = |o: &Value| o.pointer("/metadata/deletionTimestamp").is_some();
        match change {
            Change::Added(p) => {
                self.creation_observed(owner);
                if marked(p) {
                    self.deletion_observed(owner, &super::runtime::key_of(p));
                }
            }
            Change::Deleted(p) => self.deletion_observed(owner, &super::runtime::key_of(p)),
            Change::Modified { old, new } if !marked(old) && marked(new) => {
                self.deletion_observed(owner, &super::runtime::key_of(new))
            }
            Change::Modified { .. } => {}
        }
    }

    /// Whether `owner`'s earlier creations and deletions have all been observed (or waited for
    /// too long).
    pub fn satisfied(&self, owner: &str) -> bool {
        let mut map = self.pending.lock();
        let Some(p) = map.get(owner) else { return true };
        let done = p.adds <= 0 && p.deletes.is_empty();
        if done || p.since.elapsed() > POD_EXPECTATION_TIMEOUT {
            if !done {
                tracing::warn!(%owner, creations = p.adds, deletions = p.deletes.len(), "pod events not seen in time; acting anyway");
            }
            map.remove(owner);
            return true;
        }
        false
    }
}

// === replica sets ===

pub struct ReplicaSetController {
    pub api: Api,
    pub rss: Arc<Mirror<k8s_openapi::api::apps::v1::ReplicaSet>>,
    pub pods: Arc<Mirror<Pod>>,
    pub expectations: Arc<PodExpectations>,
    pub recorder: Arc<Recorder>,
}

#[tonic::async_trait]
impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ControllerError> {
        let Some(rs) = self.rss.get(key) else { return Ok(Action::done()) };
        if !self.expectations.satisfied(key) {
            // The informer's events for the earlier writes will queue this key again.
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        let (ns, _) = split_key(key);
        let ns = ns.unwrap_or("default");
        let pods = self.pods.snapshot_namespace(ns);
        let plan = super::replicaset::plan(&rs, &pods, now_secs(), super::replicaset::DEFAULT_BURST_REPLICAS);
        let pod_res = res("pods")?;
        let rs_obj = to_value(&*rs)?;
        let owner = to_value(&super::podutil::new_controller_ref("apps/v1", "ReplicaSet", &rs.metadata))?;
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        for name in &plan.adopt {
            let owner = owner.clone();
            update_with(&self.api, pod_res, Some(ns), name, Target::Main, "replicaset-controller", move |p| {
                let refs =
                    p["metadata"].as_object_mut().map(|m| m.entry("ownerReferences").or_insert_with(|| json!([])));
                if let Some(Value::Array(refs)) = refs
                    && !refs.iter().any(|r| r["controller"] == true)
                {
                    refs.push(owner.clone());
                }
            })
            .await?;
        }
        for name in &plan.release {
            let uid = uid.clone();
            update_with(&self.api, pod_res, Some(ns), name, Target::Main, "replicaset-controller", move |p| {
                if let Some(refs) = p.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                    refs.retain(|r| r["uid"] != uid.as_str());
                }
            })
            .await?;
        }
        // Creates in slow-start batches (1, 2, 4, …): a template that cannot be
        // created fails after one attempt, not after hundreds.
        let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        let mut remaining = plan.create;
        let mut batch = 1usize;
        let mut created_keys = Vec::new();
        let mut failure = None;
        let write_opts = WriteOptions::default();
        while remaining > 0 && failure.is_none() {
            let n = batch.min(remaining);
            let mut futs = Vec::with_capacity(n);
            for _ in 0..n {
                let mut pod = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": to_value(&template.metadata.clone().unwrap_or_default())?,
                    "spec": to_value(&template.spec.clone().unwrap_or_default())?,
                });
                pod["metadata"]["generateName"] = json!(format!("{rs_name}-"));
                pod["metadata"]["namespace"] = json!(ns);
                pod["metadata"]["ownerReferences"] = json!([owner.clone()]);
                if let Some(m) = pod["metadata"].as_object_mut() {
                    m.remove("name");
                }
                futs.push(self.api.create(pod_res, Some(ns), pod, &write_opts, "replicaset-controller"));
            }
            self.expectations.expect_creations(key, n);
            for r in futures::future::join_all(futs).await {
                match r {
                    Ok(out) => {
                        let name =
                            out.object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
                        created_keys.push(format!("{ns}/{name}"));
                    }
                    Err(e) => {
                        // As Kubernetes: a failed create (even one whose outcome is unknown)
                        // is settled now; if it did land, its event settles nothing more.
                        self.expectations.creation_observed(key);
                        failure = Some(e);
                    }
                }
            }
            remaining -= n;
            batch *= 2;
        }
        if !created_keys.is_empty() {
            let names: Vec<&str> = created_keys.iter().map(|k| k.split('/').nth(1).unwrap_or("")).collect();
            for n in names.iter().take(10) {
                self.recorder.record(&rs_obj, "Normal", "SuccessfulCreate", &format!("Created pod: {n}")).await;
            }
        }
        self.expectations.expect_deletions(key, plan.delete.iter().map(|name| format!("{ns}/{name}")));
        for name in &plan.delete {
            match self.api.delete(pod_res, Some(ns), name, &DeleteOptions::default()).await {
                Ok(_) => {
                    self.recorder.record(&rs_obj, "Normal", "SuccessfulDelete", &format!("Deleted pod: {name}")).await;
                }
                Err(e) => {
                    // Gone already, or not deleted: no event to wait for.
                    self.expectations.deletion_observed(key, &format!("{ns}/{name}"));
                    if !matches!(e, ApiError::NotFound { .. }) {
                        failure = Some(e);
                    }
                }
            }
        }
        let status = match &failure {
            Some(e) => {
                self.recorder.record(&rs_obj, "Warning", "FailedCreate", &format!("Error creating: {e}")).await;
                super::replicaset::status_after_failure(&rs, &pods, now_secs(), &e.to_string())
            }
            None => plan.status.clone(),
        };
        if let Some(status) = status {
            let status = to_value(&status)?;
            let rs_res = res("replicasets")?;
            let name = rs.metadata.name.clone().unwrap_or_default();
            update_with(&self.api, rs_res, Some(ns), &name, Target::Status, "replicaset-controller", move |r| {
                r["status"] = status.clone();
            })
            .await?;
        }
        if let Some(e) = failure {
            return Err(e.into());
        }
        Ok(match plan.requeue_after {
            Some(s) => Action::requeue(Duration::from_secs(s.max(1) as u64)),
            None => Action::done(),
        })
    }
}

// === deployments ===

pub struct DeploymentController {
    pub api: Api,
    pub deployments: Arc<Mirror<k8s_openapi::api::apps::v1::Deployment>>,
    pub rss: Arc<Mirror<k8s_openapi::api::apps::v1::ReplicaSet>>,
    pub pods: Arc<Mirror<Pod>>,
    pub expectations: Arc<Expectations>,
    pub recorder: Arc<Recorder>,
}

#[tonic::async_trait]
impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ControllerError> {
        let Some(d) = self.deployments.get(key) else { return Ok(Action::done()) };
        let seen = |k: &str| self.rss.get(k).is_some_and(|r| r.metadata.deletion_timestamp.is_none());
        if !self.expectations.satisfied(key, seen) {
            return Ok(Action::requeue(Duration::from_millis(100)));
        }
        if d.metadata.deletion_timestamp.is_some() {
            return Ok(Action::done());
        }
        let (ns, name) = split_key(key);
        let ns = ns.unwrap_or("default");
        let rss = self.rss.snapshot_namespace(ns);
        let pods = self.pods.snapshot_namespace(ns);
        let plan = super::deployment::plan(&d, &rss, &pods, now_secs());
        let d_obj = to_value(&*d)?;
        if let Some(err) = &plan.error {
            self.recorder.record(&d_obj, "Warning", "InvalidDeployment", &err.to_string()).await;
            return Ok(Action::done());
        }
        let rs_res = res("replicasets")?;
        let d_res = res("deployments")?;
        if let Some(new_rs) = &plan.create_rs {
            let obj = to_value(new_rs)?;
            let rs_name = new_rs.metadata.name.clone().unwrap_or_default();
            match self.api.create(rs_res, Some(ns), obj, &WriteOptions::default(), "deployment-controller").await {
                Ok(_) => self.expectations.expect(key, vec![format!("{ns}/{rs_name}")], Vec::new()),
                Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let owner = to_value(&super::podutil::new_controller_ref("apps/v1", "Deployment", &d.metadata))?;
        let uid = d.metadata.uid.clone().unwrap_or_default();
        for change in &plan.update_rs {
            let change = change.clone();
            let (owner, uid) = (owner.clone(), uid.clone());
            update_with(
                &self.api,
                rs_res,
                Some(ns),
                &change.name.clone(),
                Target::Main,
                "deployment-controller",
                move |r| {
                    r["spec"]["replicas"] = json!(change.replicas);
                    if let Some(m) = change.min_ready_seconds {
                        r["spec"]["minReadySeconds"] = json!(m);
                    }
                    if !change.annotations.is_empty() {
                        let meta = r["metadata"].as_object_mut();
                        if let Some(meta) = meta {
                            let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                            for (k, v) in &change.annotations {
                                ann[k] = json!(v);
                            }
                        }
                    }
                    if change.adopt {
                        let refs = r["metadata"]
                            .as_object_mut()
                            .map(|m| m.entry("ownerReferences").or_insert_with(|| json!([])));
                        if let Some(Value::Array(refs)) = refs
                            && !refs.iter().any(|x| x["controller"] == true)
                        {
                            refs.push(owner.clone());
                        }
                    }
                    if change.release
                        && let Some(refs) = r.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut)
                    {
                        refs.retain(|x| x["uid"] != uid.as_str());
                    }
                },
            )
            .await?;
        }
        for rs_name in &plan.delete_rs {
            let opts = DeleteOptions { propagation_policy: Some("Background".into()), ..Default::default() };
            tolerate(self.api.delete(rs_res, Some(ns), rs_name, &opts).await)?;
        }
        if !plan.deployment_annotations.is_empty() {
            let ann = plan.deployment_annotations.clone();
            let current = d.metadata.annotations.clone().unwrap_or_default();
            if ann.iter().any(|(k, v)| current.get(k) != Some(v)) {
                update_with(&self.api, d_res, Some(ns), name, Target::Main, "deployment-controller", move |o| {
                    if let Some(meta) = o["metadata"].as_object_mut() {
                        let a = meta.entry("annotations").or_insert_with(|| json!({}));
                        for (k, v) in &ann {
                            a[k] = json!(v);
                        }
                    }
                })
                .await?;
            }
        }
        if let Some(status) = &plan.status {
            let status = to_value(status)?;
            update_with(&self.api, d_res, Some(ns), name, Target::Status, "deployment-controller", move |o| {
                o["status"] = status.clone();
            })
            .await?;
        }
        for (kind, reason, message) in &plan.events {
            self.recorder.record(&d_obj, kind, reason, message).await;
        }
        Ok(match plan.requeue_after {
            Some(s) => Action::requeue(Duration::from_secs(s.max(1) as u64)),
            None => Action::done(),
        })
    }
}
