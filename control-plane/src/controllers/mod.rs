//! Controllers: desired state becomes actual state. They run inside `rk-server`,
//! on the raft leader only.
//!
//! - [`runtime`]: informers, the work queue, the worker loop.
//! - [`events`]: the event recorder.
//! - one module per controller; each is a pure `plan` function (unit- and
//!   property-tested without I/O) plus a small reconciler that reads the caches,
//!   calls `plan`, and carries the plan out through the API.
//!
//! [`run`] watches this replica's raft role: when it becomes leader in term `t` it
//! starts every controller with writes fenced to `t`; when it stops leading it stops
//! them before anything else happens (and the fence makes any write still in flight
//! fail).

pub mod act;
pub mod apiserver;
#[cfg(test)]
mod apps_testkit;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod job;
pub mod loadbalancer;
pub mod namespace;
pub mod nodelifecycle;
pub mod podutil;
pub mod reencrypt;
pub mod replicaset;
pub mod runtime;
pub mod scheduler;
pub mod serviceaccount;

use crate::api::registry;
use crate::api::rest::Api;
use crate::raft::node::Role;
use runtime::{Change, Informer, Key, Mirror, WorkQueue, key_of};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Settings of the controllers.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// A node whose lease is older than this is considered lost.
    pub node_monitor_grace: Duration,
    /// Workers per controller.
    pub workers: usize,
    /// Every key is reconciled at least this often.
    pub resync: Duration,
    /// The cluster CA's certificate (PEM), published in every namespace as ConfigMap
    /// `kube-root-ca.crt` (none with `--insecure-dev`).
    pub root_ca: Option<String>,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self { node_monitor_grace: Duration::from_secs(10), workers: 4, resync: Duration::from_secs(30), root_ca: None }
    }
}

/// What one leadership term runs.
struct Term {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    queues: Vec<Arc<WorkQueue<Key>>>,
}

fn informer(name: &str) -> Arc<Informer> {
    Informer::new(registry::lookup(name).unwrap_or(&registry::RESOURCES[0]))
}

/// Starts every controller for one term of leadership.
fn start(api: Api, opts: &ControllerOptions) -> Term {
    let (stop, stop_rx) = watch::channel(false);
    // Turns true once every informer below has listed. No controller decides anything before:
    // from a half-filled cache the ReplicaSet controller would create pods that exist and the
    // garbage collector would delete pods whose ReplicaSet it has not seen yet (Kubernetes'
    // WaitForCacheSync). It matters on every leader change, not only at start.
    let (ready_tx, ready) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut queues = Vec::new();
    let recorder = |component: &'static str| Arc::new(events::Recorder::new(api.clone(), component));

    // Informers, and typed mirrors attached before any handler that enqueues.
    let names = [
        "namespaces",
        "pods",
        "nodes",
        "leases",
        "services",
        "endpoints",
        "endpointslices",
        "jobs",
        "replicasets",
        "deployments",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "ingresses",
    ];
    let inf: std::collections::HashMap<&str, Arc<Informer>> = names.iter().map(|n| (*n, informer(n))).collect();
    let pods = Mirror::<k8s_openapi::api::core::v1::Pod>::attach(&inf["pods"]);
    let nodes = Mirror::<k8s_openapi::api::core::v1::Node>::attach(&inf["nodes"]);
    let leases = Mirror::<k8s_openapi::api::coordination::v1::Lease>::attach(&inf["leases"]);
    let services = Mirror::<k8s_openapi::api::core::v1::Service>::attach(&inf["services"]);
    let jobs = Mirror::<k8s_openapi::api::batch::v1::Job>::attach(&inf["jobs"]);
    let rss = Mirror::<k8s_openapi::api::apps::v1::ReplicaSet>::attach(&inf["replicasets"]);
    let deployments = Mirror::<k8s_openapi::api::apps::v1::Deployment>::attach(&inf["deployments"]);

    // Namespaces.
    let ns_queue = WorkQueue::new();
    {
        let q = ns_queue.clone();
        inf["namespaces"].on_change(move |c| q.add(key_of(c.object())));
    }
    let ns_ctl = Arc::new(namespace::NamespaceController { api: api.clone(), namespaces: inf["namespaces"].clone() });
    tasks.spawn(after_sync(ready.clone(), runtime::run_workers(ns_ctl, ns_queue.clone(), 1)));
    tasks.spawn(runtime::resync(inf["namespaces"].clone(), ns_queue.clone(), opts.resync, stop_rx.clone()));
    queues.push(ns_queue);

    // Scheduler.
    let sched_queue = WorkQueue::new();
    let sched = act::Scheduler::new(
        api.clone(),
        pods.clone(),
        nodes.clone(),
        sched_queue.clone(),
        recorder("default-scheduler"),
    );
    {
        let (q, s) = (sched_queue.clone(), sched.clone());
        inf["pods"].on_change(move |c| match c {
            Change::Deleted(_) => s.retry_unschedulable(),
            _ => {
                let p = c.object();
                let unbound = p.pointer("/spec/nodeName").and_then(|v| v.as_str()).unwrap_or("").is_empty();
                if unbound && p.pointer("/metadata/deletionTimestamp").is_none() {
                    q.add(key_of(p));
                }
            }
        });
        let s = sched.clone();
        inf["nodes"].on_change(move |_| s.retry_unschedulable());
    }
    tasks.spawn(after_sync(ready.clone(), sched.clone().run(stop_rx.clone())));
    tasks.spawn(runtime::resync(inf["pods"].clone(), sched_queue.clone(), opts.resync, stop_rx.clone()));
    queues.push(sched_queue);

    // Node lifecycle.
    let lifecycle = Arc::new(act::NodeLifecycle {
        api: api.clone(),
        nodes: nodes.clone(),
        leases,
        pods: pods.clone(),
        grace: opts.node_monitor_grace,
        recorder: recorder("node-controller"),
    });
    tasks.spawn(after_sync(ready.clone(), lifecycle.run(stop_rx.clone())));

    // Every namespace's `default` ServiceAccount: made when the namespace appears, made
    // again when deleted.
    let sa_queue = WorkQueue::new();
    {
        let q = sa_queue.clone();
        inf["namespaces"].on_change(move |c| q.add(key_of(c.object())));
        let q = sa_queue.clone();
        inf["serviceaccounts"].on_change(move |c| {
            if let Change::Deleted(sa) = c
                && sa.pointer("/metadata/name").and_then(|v| v.as_str()) == Some(serviceaccount::DEFAULT)
                && let Some(ns) = sa.pointer("/metadata/namespace").and_then(|v| v.as_str())
            {
                q.add(ns.to_string());
            }
        });
    }
    let sa_ctl = Arc::new(serviceaccount::ServiceAccountController {
        api: api.clone(),
        namespaces: inf["namespaces"].clone(),
        accounts: inf["serviceaccounts"].clone(),
        root_ca: opts.root_ca.clone(),
    });
    tasks.spawn(after_sync(ready.clone(), runtime::run_workers(sa_ctl, sa_queue.clone(), 1)));
    tasks.spawn(runtime::resync(inf["namespaces"].clone(), sa_queue.clone(), opts.resync, stop_rx.clone()));
    queues.push(sa_queue);

    // status.loadBalancer of LoadBalancer Services and Ingresses: the nodes serving them.
    let lb_queue = WorkQueue::new();
    let lb_ctl = Arc::new(loadbalancer::LoadBalancerController {
        api: api.clone(),
        services: inf["services"].clone(),
        ingresses: inf["ingresses"].clone(),
        nodes: inf["nodes"].clone(),
    });
    {
        let q = lb_queue.clone();
        inf["services"].on_change(move |c| q.add(format!("services/{}", key_of(c.object()))));
        let q = lb_queue.clone();
        inf["ingresses"].on_change(move |c| q.add(format!("ingresses/{}", key_of(c.object()))));
        // Heartbeats change nodes all the time; only a change of what the addresses
        // come from requeues the load balancers.
        let (q, ctl) = (lb_queue.clone(), lb_ctl.clone());
        inf["nodes"].on_change(move |c| {
            if let Change::Modified { old, new } = c
                && loadbalancer::node_view(old) == loadbalancer::node_view(new)
            {
                return;
            }
            ctl.all_keys().into_iter().for_each(|k| q.add(k));
        });
    }
    tasks.spawn(after_sync(ready.clone(), runtime::run_workers(lb_ctl, lb_queue.clone(), 1)));
    queues.push(lb_queue);

    // The API's own Service's endpoints: the replicas.
    tasks.spawn(apiserver::run(api.clone(), stop_rx.clone()));

    // Secrets sealed with an older key are re-encrypted with the current one.
    tasks.spawn(reencrypt::run(api.clone(), stop_rx.clone()));

    // Garbage collector: any change to an owner or dependent wakes it.
    let dirty = Arc::new(tokio::sync::Notify::new());
    let gc_informers: Vec<Arc<Informer>> =
        names.iter().filter(|n| **n != "namespaces" && **n != "leases").map(|n| inf[n].clone()).collect();
    for i in &gc_informers {
        let d = dirty.clone();
        i.on_change(move |_| d.notify_one());
    }
    let collector = Arc::new(act::GarbageCollector { api: api.clone(), informers: gc_informers, dirty: dirty.clone() });
    tasks.spawn(after_sync(ready.clone(), collector.run(stop_rx.clone())));

    // ReplicaSets: their own changes, and their pods'.
    let rs_queue = WorkQueue::new();
    let rs_expectations = Arc::new(act::PodExpectations::default());
    {
        let q = rs_queue.clone();
        inf["replicasets"].on_change(move |c| q.add(key_of(c.object())));
        let (q, all_rs, exp) = (rs_queue.clone(), rss.clone(), rs_expectations.clone());
        inf["pods"].on_change(move |c| {
            if let Some(k) = act::owner_key(c.object(), "ReplicaSet") {
                exp.observe(&k, c);
                q.add(k);
            }
            // An orphan may match some ReplicaSet: let them all look (adoption).
            if let Change::Added(p) = c
                && p.pointer("/metadata/ownerReferences").is_none()
            {
                let ns = p.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or("");
                for rs in all_rs.list_namespace(ns) {
                    if let Some(name) = &rs.metadata.name {
                        q.add(format!("{ns}/{name}"));
                    }
                }
            }
        });
    }
    let rs_ctl = Arc::new(act::ReplicaSetController {
        api: api.clone(),
        rss: rss.clone(),
        pods: pods.clone(),
        expectations: rs_expectations,
        recorder: recorder("replicaset-controller"),
    });
    tasks.spawn(after_sync(ready.clone(), runtime::run_workers(rs_ctl, rs_queue.clone(), opts.workers)));
    tasks.spawn(runtime::resync(inf["replicasets"].clone(), rs_queue.clone(), opts.resync, stop_rx.clone()));
    queues.push(rs_queue);

    // Deployments: their own changes, their ReplicaSets' and their pods'.
    let d_queue = WorkQueue::new();
    {
        let q = d_queue.clone();
        inf["deployments"].on_change(move |c| q.add(key_of(c.object())));
        let q = d_queue.clone();
        inf["replicasets"].on_change(move |c| {
            if let Some(k) = act::owner_key(c.object(), "Deployment") {
                q.add(k);
            }
        });
        let (q, rss2) = (d_queue.clone(), rss.clone());
        inf["pods"].on_change(move |c| {
            // Pod readiness moves a rollout forward: wake the pod's Deployment.
            if let Some(rs_key) = act::owner_key(c.object(), "ReplicaSet")
                && let Some(rs) = rss2.get(&rs_key)
                && let Some(owner) = rs
                    .metadata
                    .owner_references
                    .as_ref()
                    .and_then(|o| o.iter().find(|r| r.controller == Some(true) && r.kind == "Deployment"))
            {
                let ns = rs.metadata.namespace.clone().unwrap_or_default();
                q.add(format!("{ns}/{}", owner.name));
            }
        });
    }
    let d_ctl = Arc::new(act::DeploymentController {
        api: api.clone(),
        deployments,
        rss,
        pods: pods.clone(),
        expectations: Arc::default(),
        recorder: recorder("deployment-controller"),
    });
    tasks.spawn(after_sync(ready.clone(), runtime::run_workers(d_ctl, d_queue.clone(), opts.workers)));
    tasks.spawn(runtime::resync(inf["deployments"].clone(), d_queue.clone(), opts.resync, stop_rx.clone()));
    queues.push(d_queue);

    // Jobs.
    let job_queue = WorkQueue::new();
    {
        let q = job_queue.clone();
        inf["jobs"].on_change(move |c| q.add(key_of(c.object())));
        let q = job_queue.clone();
        inf["pods"].on_change(move |c| {
            if let Some(k) = act::owner_key(c.object(), "Job") {
                q.add(k);
            }
        });
    }
    let job_ctl = Arc::new(act::JobController {
        api: api.clone(),
        jobs,
        pods: pods.clone(),
        recorder: recorder("job-controller"),
    });
    tasks.spawn(after_sync(ready.clone(), runtime::run_workers(job_ctl, job_queue.clone(), opts.workers)));
    tasks.spawn(runtime::resync(inf["jobs"].clone(), job_queue.clone(), opts.resync, stop_rx.clone()));
    queues.push(job_queue);

    // Endpoints and EndpointSlices.
    let ep_queue = WorkQueue::new();
    {
        let q = ep_queue.clone();
        inf["services"].on_change(move |c| q.add(key_of(c.object())));
        let (q, svcs) = (ep_queue.clone(), services.clone());
        inf["pods"].on_change(move |c| {
            for k in act::services_for(&svcs, c.object()) {
                q.add(k);
            }
        });
    }
    let ep_ctl = Arc::new(act::EndpointsController {
        api: api.clone(),
        services,
        pods: pods.clone(),
        endpoints: inf["endpoints"].clone(),
        slices: inf["endpointslices"].clone(),
    });
    tasks.spawn(after_sync(ready.clone(), runtime::run_workers(ep_ctl, ep_queue.clone(), opts.workers)));
    tasks.spawn(runtime::resync(inf["services"].clone(), ep_queue.clone(), opts.resync, stop_rx.clone()));
    queues.push(ep_queue);

    for i in inf.values() {
        tasks.spawn(i.clone().run(api.clone(), stop_rx.clone()));
    }
    {
        let all: Vec<Arc<Informer>> = inf.values().cloned().collect();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = async { for i in &all { i.wait_synced().await } } => { ready_tx.send_replace(true); }
                // Dropping the sender releases the waiting controllers, which then end.
                _ = stop.changed() => {}
            }
        });
    }
    Term { stop, tasks, queues }
}

/// Runs `work` once the term's caches are synced (see `ready` in [`start`]); returns without
/// running it when the term ends first.
async fn after_sync<F: std::future::Future>(mut ready: watch::Receiver<bool>, work: F) {
    if ready.wait_for(|synced| *synced).await.is_ok() {
        work.await;
    }
}

/// Runs the controllers whenever this replica leads, until the replica stops.
pub async fn run(api: Api, opts: ControllerOptions) {
    let mut leadership = api.store.raft.shared.leadership.clone();
    loop {
        let term = {
            let Ok(l) = leadership.wait_for(|l| l.role == Role::Leader || l.stopped).await else { return };
            if l.stopped {
                return;
            }
            l.term
        };
        tracing::info!(term, "leading: starting controllers");
        let mut running = start(api.fenced(term), &opts);
        let _ = leadership.wait_for(|l| l.role != Role::Leader || l.term != term || l.stopped).await;
        tracing::info!(term, "no longer leading: stopping controllers");
        let _ = running.stop.send(true);
        for q in &running.queues {
            q.shutdown();
        }
        // Workers finish the key in hand; their writes are fenced to `term` anyway.
        let _ =
            tokio::time::timeout(Duration::from_secs(5), async { while running.tasks.join_next().await.is_some() {} })
                .await;
        running.tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn deleting_a_namespace_deletes_its_content_then_itself() {
        let api = crate::testing::api().await;
        tokio::spawn(run(api.clone(), ControllerOptions::default()));
        let ns = registry::lookup("namespaces").unwrap();
        let cms = registry::lookup("configmaps").unwrap();
        api.create(ns, None, json!({"metadata": {"name": "doomed"}}), &Default::default(), "t").await.unwrap();
        for i in 0..3 {
            let cm = json!({"metadata": {"name": format!("c{i}")}});
            api.create(cms, Some("doomed"), cm, &Default::default(), "t").await.unwrap();
        }
        api.delete(ns, None, "doomed", &Default::default()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let gone = api.get(ns, None, "doomed", crate::api::store::Freshness::Latest).await.is_err();
            if gone {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the namespace was never deleted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left =
            api.list(cms, Some("doomed"), &Default::default(), crate::api::store::Freshness::Latest).await.unwrap();
        assert!(left.page.items.is_empty());
    }
}
