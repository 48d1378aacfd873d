//! Controllers and scheduler end to end: a real replicated control plane, simulated
//! (hollow) nodes in real `rk-agent` processes, and the real kubectl driving
//! Deployments through their whole life: scheduling by requests, rolling updates,
//! rollback, scaling, node loss, deletion and a leader failover mid-rollout.

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use rk_tests::kubectl::Kubectl;
use rk_tests::{Cluster, ClusterOptions, wait_for};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A Deployment of `replicas` pods asking for `cpu` each.
fn deployment(name: &str, replicas: i32, cpu: &str, version: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app", "image": format!("registry.local/{name}:{version}"),
                    "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}},
                }]},
            },
        },
    }))
    .unwrap_or_default()
}

/// Pods of app `name`, not being deleted.
async fn live_pods(pods: &Api<Pod>, name: &str) -> Result<Vec<Pod>> {
    let list = pods.list(&ListParams::default().labels(&format!("app={name}"))).await?;
    Ok(list.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect())
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref().and_then(|s| s.node_name.clone())
}

fn image_of(p: &Pod) -> String {
    p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default()
}

/// Waits until the Deployment has rolled out completely: every replica updated, ready
/// and available, old ReplicaSets at zero, and the controller has seen the spec.
async fn wait_rolled_out(deploys: &Api<Deployment>, name: &str, timeout: Duration) -> Result<Deployment> {
    wait_for(&format!("deployment {name} rolled out"), timeout, || async {
        let d = deploys.get(name).await.ok()?;
        let want = d.spec.as_ref()?.replicas.unwrap_or(1);
        let s = d.status.as_ref()?;
        let done = s.observed_generation >= d.metadata.generation
            && s.updated_replicas.unwrap_or(0) == want
            && s.replicas.unwrap_or(0) == want
            && s.available_replicas.unwrap_or(0) == want;
        done.then_some(d)
    })
    .await
}

/// Apply → scheduled across nodes by requests → rolling update within surge and
/// unavailability bounds → kubectl rollout status/history/undo/restart → scale →
/// describe with events → delete cascades to everything owned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_life_with_kubectl_on_hollow_nodes() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    // Three hollow nodes with 1 CPU each (900m allocatable after the 100m reserve):
    // two pods of 400m fit on a node, a third does not.
    cluster
        .start_agent("hollow", &["--count", "3", "--capacity-cpu-millis", "1000", "--capacity-memory-mib", "4096"])?;
    let c = cluster.kube_client(0).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    rk_tests::wait_nodes_ready(&nodes, 3).await?;

    let k = Kubectl::new(32, cluster.kubeconfig(1)?)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, serde_norway::to_string(&deployment("web", 6, "400m", "v1"))?)?;
    let out = k.ok(&["apply", "-f", &file.to_string_lossy()]).await?;
    ensure!(out.contains("deployment.apps/web created"), "{out}");
    let out = k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]).await?;
    ensure!(out.contains("successfully rolled out"), "{out}");

    // Requests decide placement: exactly two pods per node.
    let placed = live_pods(&pods, "web").await?;
    ensure!(placed.len() == 6, "{} pods", placed.len());
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for p in &placed {
        *per_node.entry(node_of(p).context("pod not bound")?).or_default() += 1;
    }
    ensure!(per_node.len() == 3 && per_node.values().all(|n| *n == 2), "placement {per_node:?}");

    // One more replica cannot fit: it stays Pending with a FailedScheduling event.
    k.ok(&["scale", "deployment/web", "--replicas=7"]).await?;
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let why = wait_for("a FailedScheduling event", Duration::from_secs(30), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| e.reason.as_deref() == Some("FailedScheduling")).and_then(|e| e.message)
    })
    .await?;
    ensure!(why.contains("Insufficient cpu"), "FailedScheduling says {why:?}");
    k.ok(&["scale", "deployment/web", "--replicas=4"]).await?;
    wait_rolled_out(&deploys, "web", Duration::from_secs(30)).await?;
    ensure!(live_pods(&pods, "web").await?.len() == 4);

    // Rolling update with maxSurge 1, maxUnavailable 0: sample the pods all the way
    // through; never more than 5, never fewer than 4 ready.
    let out = k.ok(&["set", "image", "deployment/web", "app=registry.local/web:v2"]).await?;
    ensure!(out.contains("image updated"), "{out}");
    let started = Instant::now();
    loop {
        let live = live_pods(&pods, "web").await?;
        let ready = live.iter().filter(|p| is_ready(p)).count();
        ensure!(live.len() <= 5, "{} pods during the rollout (max 4 + surge 1)", live.len());
        ensure!(ready >= 4 || live.len() < 4, "only {ready} ready pods during the rollout (min 4)");
        if live.len() == 4 && live.iter().all(|p| image_of(p).ends_with(":v2") && is_ready(p)) {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("rollout to v2 did not finish: {:?}", live.iter().map(image_of).collect::<Vec<_>>());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let out = k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]).await?;
    ensure!(out.contains("successfully rolled out"), "{out}");
    let out = k.ok(&["rollout", "history", "deployment/web"]).await?;
    ensure!(out.contains("REVISION") && out.contains('1') && out.contains('2'), "{out}");

    // Undo: back to v1, as revision 3; the v1 ReplicaSet is reused, not copied.
    let out = k.ok(&["rollout", "undo", "deployment/web"]).await?;
    ensure!(out.contains("rolled back"), "{out}");
    let d = wait_rolled_out(&deploys, "web", Duration::from_secs(60)).await?;
    let image = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map(|s| s.containers[0].image.clone());
    ensure!(image == Some(Some("registry.local/web:v1".into())), "after undo: {image:?}");
    let revision = d.metadata.annotations.unwrap_or_default().get("deployment.kubernetes.io/revision").cloned();
    ensure!(revision.as_deref() == Some("3"), "revision after undo {revision:?}");
    let sets = rss.list(&ListParams::default().labels("app=web")).await?.items;
    ensure!(sets.len() == 2, "{} ReplicaSets after undo (v1 reused)", sets.len());
    let live = wait_for("four v1 pods", Duration::from_secs(30), || async {
        let live = live_pods(&pods, "web").await.ok()?;
        (live.len() == 4 && live.iter().all(|p| image_of(p).ends_with(":v1"))).then_some(live)
    })
    .await?;

    // Restart: a new ReplicaSet and new pods, same image.
    k.ok(&["rollout", "restart", "deployment/web"]).await?;
    let before: BTreeSet<String> = live.iter().filter_map(|p| p.metadata.name.clone()).collect();
    wait_for("restarted pods", Duration::from_secs(60), || async {
        let live = live_pods(&pods, "web").await.ok()?;
        let names: BTreeSet<String> = live.iter().filter_map(|p| p.metadata.name.clone()).collect();
        (live.len() == 4 && names.is_disjoint(&before) && live.iter().all(is_ready)).then_some(())
    })
    .await?;

    // Scale down: the surplus pods go, the rest stay.
    k.ok(&["scale", "deployment/web", "--replicas=2"]).await?;
    wait_for("two pods", Duration::from_secs(30), || async {
        let all = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        (all.items.len() == 2).then_some(())
    })
    .await?;

    // describe shows the Deployment's events.
    let out = k.ok(&["describe", "deployment", "web"]).await?;
    ensure!(out.contains("ScalingReplicaSet"), "describe shows no events:\n{out}");

    // Delete: ReplicaSets and pods follow (background propagation).
    k.ok(&["delete", "deployment", "web"]).await?;
    wait_for("everything owned by web gone", Duration::from_secs(30), || async {
        let sets = rss.list(&ListParams::default().labels("app=web")).await.ok()?;
        let all = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        (sets.items.is_empty() && all.items.is_empty()).then_some(())
    })
    .await?;
    Ok(())
}

/// A node stops heartbeating: after the grace period it is NotReady/Unknown, its pods
/// are evicted once the default toleration runs out, and replacements run elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_a_dead_node_are_replaced_elsewhere() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let doomed = cluster.start_agent("hollow", &["--count", "2"])?;
    let c = cluster.kube_client(0).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    rk_tests::wait_nodes_ready(&nodes, 2).await?;
    deploys.create(&PostParams::default(), &deployment("app", 4, "100m", "v1")).await?;
    wait_rolled_out(&deploys, "app", Duration::from_secs(30)).await?;

    // A second agent joins; then the first one dies with both of its nodes.
    cluster.start_agent("hollow", &["--count", "2"])?;
    rk_tests::wait_nodes_ready(&nodes, 4).await?;
    let dead: BTreeSet<String> = ["node-0-0", "node-0-1"].iter().map(|s| s.to_string()).collect();
    let died = Instant::now();
    cluster.agents[doomed].kill();

    wait_for("replacement pods on live nodes", Duration::from_secs(60), || async {
        let live = live_pods(&pods, "app").await.ok()?;
        let elsewhere = live.iter().filter(|p| is_ready(p) && node_of(p).is_some_and(|n| !dead.contains(&n))).count();
        (elsewhere == 4).then_some(())
    })
    .await?;
    eprintln!("pods replaced {:?} after the node died", died.elapsed());
    for name in &dead {
        let n = nodes.get(name).await?;
        let ready = n.status.and_then(|s| s.conditions).unwrap_or_default().into_iter().find(|c| c.type_ == "Ready");
        ensure!(ready.is_some_and(|c| c.status == "Unknown"), "{name} is not Unknown");
        let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
        ensure!(taints.iter().any(|t| t.key == "node.kubernetes.io/unreachable"), "{name} taints {taints:?}");
    }
    Ok(())
}

/// The leader dies in the middle of a rolling update: a new leader's controllers
/// finish it, with exactly the desired pods in the end (none duplicated, none lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_survives_a_leader_failover() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    cluster.start_agent("hollow", &["--count", "3"])?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let other = (leader + 1) % 3;
    let c = cluster.kube_client(other).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    rk_tests::wait_nodes_ready(&nodes, 3).await?;
    deploys.create(&PostParams::default(), &deployment("svc", 10, "10m", "v1")).await?;
    wait_rolled_out(&deploys, "svc", Duration::from_secs(60)).await?;

    // Start the rollout, let it get going, then kill the leader.
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.local/svc:v2"}]}}}});
    deploys.patch("svc", &PatchParams::default(), &Patch::Strategic(patch)).await?;
    wait_for("the rollout under way", Duration::from_secs(30), || async {
        let live = live_pods(&pods, "svc").await.ok()?;
        live.iter().any(|p| image_of(p).ends_with(":v2")).then_some(())
    })
    .await?;
    cluster.kill(leader);
    rolled_out_to_v2(&deploys, &pods, "svc", 10).await
}

/// Waits for `name`'s rollout to finish, then checks it has exactly `replicas` pods, all
/// ready on image `:v2`, all of one ReplicaSet (no duplicates, nothing left behind).
async fn rolled_out_to_v2(deploys: &Api<Deployment>, pods: &Api<Pod>, name: &str, replicas: usize) -> Result<()> {
    let d = wait_rolled_out(deploys, name, Duration::from_secs(90)).await?;
    let live = live_pods(pods, name).await?;
    ensure!(
        live.len() == replicas && live.iter().all(|p| image_of(p).ends_with(":v2") && is_ready(p)),
        "{} pods {:?}",
        live.len(),
        live.iter().map(image_of).collect::<Vec<_>>()
    );
    ensure!(d.status.and_then(|s| s.replicas) == Some(replicas as i32));
    let owners: BTreeSet<String> =
        live.iter().filter_map(|p| p.metadata.owner_references.as_ref()?.first().map(|o| o.name.clone())).collect();
    ensure!(owners.len() == 1, "pods owned by {owners:?}");
    Ok(())
}

/// Every replica of the control plane restarted in turn (kill, start, back serving)
/// while a slowed-down rolling update runs: the rollout still completes with exactly
/// the desired pods, all new, in one ReplicaSet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_survives_a_rolling_restart_of_the_control_plane() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    cluster.start_agent("hollow", &["--count", "3"])?;
    let c = cluster.kube_client(0).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    rk_tests::wait_nodes_ready(&nodes, 3).await?;
    let mut d = deployment("roll", 10, "10m", "v1");
    // Each step of the rollout waits 2 s for its new pods to count as available, so the
    // restarts below happen while it is under way.
    if let Some(spec) = d.spec.as_mut() {
        spec.min_ready_seconds = Some(2);
    }
    deploys.create(&PostParams::default(), &d).await?;
    wait_rolled_out(&deploys, "roll", Duration::from_secs(60)).await?;

    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.local/roll:v2"}]}}}});
    deploys.patch("roll", &PatchParams::default(), &Patch::Strategic(patch)).await?;
    for i in 0..3 {
        cluster.restart(i)?;
        let c = &cluster;
        wait_for("the restarted replica serving", Duration::from_secs(20), || async move {
            let (code, _) = c.get(i, "/readyz").await.ok()?;
            (code == 200).then_some(())
        })
        .await?;
        cluster.wait_leader(Duration::from_secs(20)).await?;
    }
    rolled_out_to_v2(&deploys, &pods, "roll", 10).await
}
