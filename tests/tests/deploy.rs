//! The Compose deployment in `deploy/`: the image built by `deploy/build-image.sh`
//! from this build's binaries, `deploy/compose.yml` brought up as its own project
//! (three replicas and three nodes, each a container with its own address), a
//! Deployment spread over the nodes, then the leading replica's container and a node
//! container killed like machines: the API keeps answering, the running pods are kept,
//! the lost node's pods come back elsewhere, and when the node returns nothing runs twice.
//! Everything the test creates (containers, network, volumes, image) is removed at the
//! end, pass or fail.

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use rk_tests::wait_for;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `docker compose` (the plugin) if the CLI has it, else Debian's `docker-compose`.
fn compose_program() -> Vec<String> {
    let plugin = Command::new("docker").args(["compose", "version"]).output().is_ok_and(|o| o.status.success());
    if plugin { vec!["docker".into(), "compose".into()] } else { vec!["docker-compose".into()] }
}

/// One Compose project of `deploy/compose.yml`, torn down (with its volumes and the
/// image) when dropped.
struct Project {
    name: String,
    image: String,
    program: Vec<String>,
}

impl Project {
    fn compose(&self, args: &[&str]) -> Result<Output> {
        let file = repo().join("deploy/compose.yml");
        let out = Command::new(&self.program[0])
            .args(&self.program[1..])
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(&file)
            .args(args)
            .env("RK_IMAGE", &self.image)
            .env("RK_API_PORT_1", "0")
            .env("RK_API_PORT_2", "0")
            .env("RK_API_PORT_3", "0")
            .output()
            .with_context(|| format!("run {}", self.program.join(" ")))?;
        Ok(out)
    }

    fn compose_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.compose(args)?;
        ensure!(
            out.status.success(),
            "compose {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The host address a replica's client port is published on.
    fn api_url(&self, service: &str) -> Result<String> {
        let port = self.compose_ok(&["port", service, "2379"])?;
        let addr = port.trim();
        ensure!(!addr.is_empty(), "{service} publishes no client port");
        Ok(format!("https://{addr}"))
    }

    /// A client for `service`'s published client port, authenticated as the admin with
    /// the kubeconfig `rk-server certs kubeconfig` prints in that replica (as a user
    /// gets it).
    async fn client(&self, service: &str) -> Result<kube::Client> {
        let url = self.api_url(service)?;
        let text = self.compose_ok(&[
            "exec",
            "-T",
            service,
            "rk-server",
            "certs",
            "kubeconfig",
            "--pki-dir",
            "/etc/rk/keys/pki",
            "--server",
            &url,
            "--out",
            "-",
        ])?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&text)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    fn container(&self, service: &str) -> Result<String> {
        let id = self.compose_ok(&["ps", "-q", service])?;
        Ok(id.trim().to_string())
    }

    fn logs(&self) -> String {
        self.compose(&["logs", "--no-color", "--tail", "30"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans", "-t", "1"]);
        let _ = Command::new("docker").args(["image", "rm", "-f", &self.image]).output();
    }
}

/// The node and uid of a Running pod that is not being deleted.
fn running_on(p: &Pod) -> Option<(String, String)> {
    let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let live = p.metadata.deletion_timestamp.is_none();
    let node = p.spec.as_ref().and_then(|s| s.node_name.clone())?;
    (running && live).then(|| (node, p.metadata.uid.clone().unwrap_or_default()))
}

/// Node and uid of each Running pod of app=sleeper that is not being deleted, sorted.
async fn sleepers(pods: &Api<Pod>) -> Option<Vec<(String, String)>> {
    let list = pods.list(&ListParams::default().labels("app=sleeper")).await.ok()?;
    let mut found: Vec<(String, String)> = list.items.iter().filter_map(running_on).collect();
    found.sort();
    Some(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_cluster_survives_losing_a_replica_and_a_node() -> Result<()> {
    let project = Project {
        name: format!("rktest{}", std::process::id()),
        image: format!("rk-test-deploy:{}", std::process::id()),
        program: compose_program(),
    };
    let busybox = rk_tests::images::busybox_binary()?;
    let built = Command::new(repo().join("deploy/build-image.sh"))
        .arg("--bin-dir")
        .arg(rk_tests::bin_dir())
        .arg("--tag")
        .arg(&project.image)
        .arg("--busybox")
        .arg(&busybox)
        .output()?;
    ensure!(built.status.success(), "build-image.sh failed: {}", String::from_utf8_lossy(&built.stderr));
    project.compose_ok(&["up", "-d"])?;
    let result = scenario(&project).await;
    if result.is_err() {
        eprintln!("compose logs:\n{}", project.logs());
    }
    result
}

async fn scenario(project: &Project) -> Result<()> {
    let first = project.client("server-1").await?;
    // A client per replica, to ask each for its metrics.
    let mut replicas = Vec::new();
    for service in ["server-1", "server-2", "server-3"] {
        replicas.push((service, project.client(service).await?));
    }
    let nodes: Api<Node> = Api::all(first.clone());
    wait_for("three Ready nodes", Duration::from_secs(60), || async {
        let list = nodes.list(&ListParams::default()).await.ok()?;
        (list.items.iter().filter(|n| rk_tests::node_ready(n)).count() == 3).then_some(())
    })
    .await?;

    // Three pods; the scheduler spreads them over the nodes.
    let deployments: Api<Deployment> = Api::namespaced(first.clone(), "default");
    let sleeper: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sleeper"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "sleeper"}},
            "template": {
                "metadata": {"labels": {"app": "sleeper"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "sleep", "image": "busybox", "command": ["sleep", "3600"]}],
                },
            },
        },
    }))?;
    deployments.create(&PostParams::default(), &sleeper).await?;
    let pods: Api<Pod> = Api::namespaced(first.clone(), "default");
    let running = wait_for("three sleeper pods Running", Duration::from_secs(60), || async {
        sleepers(&pods).await.filter(|n| n.len() == 3)
    })
    .await?;

    // The leading replica dies like a machine: the API answers through the others, and the
    // controllers move to a new leader, which must take over the running pods, not replace
    // them (a new leader that acted on caches it had not filled yet once deleted them all).
    let leader = wait_for("a leader among the replicas", Duration::from_secs(30), || async {
        for (service, c) in &replicas {
            let req = http::Request::get("/metrics").body(Vec::new()).ok()?;
            let metrics = c.request_text(req).await.ok()?;
            if metrics.lines().any(|l| l.starts_with("rk_raft_is_leader") && l.ends_with(" 1")) {
                return Some(*service);
            }
        }
        None
    })
    .await?;
    let survivor = if leader == "server-1" { "server-2" } else { "server-1" };
    let killed = Command::new("docker").args(["kill", &project.container(leader)?]).output()?;
    ensure!(killed.status.success(), "docker kill {leader}: {}", String::from_utf8_lossy(&killed.stderr));
    let other = project.client(survivor).await?;
    let pods: Api<Pod> = Api::namespaced(other.clone(), "default");
    let nodes: Api<Node> = Api::all(other.clone());
    wait_for("a write through a survivor after the leader died", Duration::from_secs(30), || async {
        // A write needs the new leader, whose controllers then start.
        let marker = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "failover-marker"}});
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(other.clone(), "default");
        let cm = serde_json::from_value(marker).ok()?;
        match cms.create(&PostParams::default(), &cm).await {
            Ok(_) => Some(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Some(()),
            Err(_) => None,
        }
    })
    .await?;
    nodes.list(&ListParams::default()).await?;
    let after_failover = wait_for("the sleeper pods seen through a survivor", Duration::from_secs(30), || async {
        sleepers(&pods).await.filter(|n| n.len() == 3)
    })
    .await?;
    ensure!(after_failover == running, "the pods changed over the failover: {running:?} became {after_failover:?}");

    // A node dies like a machine: its pod is replaced on the nodes left.
    let victim = running.first().map(|(node, _)| node.clone()).context("no pod to lose")?;
    let victim_container = project.container(&victim)?;
    let killed = Command::new("docker").args(["kill", &victim_container]).output()?;
    ensure!(killed.status.success(), "docker kill {victim}: {}", String::from_utf8_lossy(&killed.stderr));
    let lost_at = Instant::now();
    let after = wait_for("three sleeper pods Running off the lost node", Duration::from_secs(90), || async {
        let list = pods.list(&ListParams::default().labels("app=sleeper")).await.ok()?;
        let elsewhere: Vec<(String, String)> =
            list.items.iter().filter_map(running_on).filter(|(n, _)| *n != victim).collect();
        (elsewhere.len() == 3).then_some(elsewhere)
    })
    .await?;
    eprintln!("node {victim} lost: its pod replaced in {:?} (now on {after:?})", lost_at.elapsed());
    // By now the new leader has run every controller many times: the pods on the nodes left
    // are still the ones from before the failover.
    let replaced: Vec<_> = running.iter().filter(|(node, _)| *node != victim).filter(|p| !after.contains(p)).collect();
    ensure!(replaced.is_empty(), "pods on the surviving nodes were replaced: {replaced:?}; now {after:?}");

    // The lost machine comes back: it rejoins as Ready and runs nothing twice.
    let started = Command::new("docker").args(["start", &victim_container]).output()?;
    ensure!(started.status.success(), "docker start {victim}: {}", String::from_utf8_lossy(&started.stderr));
    wait_for("the lost node Ready again", Duration::from_secs(60), || async {
        let n = nodes.get(&victim).await.ok()?;
        rk_tests::node_ready(&n).then_some(())
    })
    .await?;
    let list = pods.list(&ListParams::default().labels("app=sleeper")).await?;
    let live: Vec<_> = list.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
    ensure!(live.len() == 3, "{} sleeper pods after the node came back", live.len());
    let now = sleepers(&pods).await.context("list pods")?;
    let mut before = after.clone();
    before.sort();
    ensure!(now == before, "the pods changed when the node came back: {before:?} became {now:?}");
    Ok(())
}
