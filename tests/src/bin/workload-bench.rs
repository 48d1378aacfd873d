//! `workload-bench`: controllers, scheduler and node agents end to end.
//!
//! ```text
//! cargo build --release --workspace --bins
//! RK_BIN_DIR=target/release target/release/workload-bench [--nodes 1000] [--replicas 10000] [--startup-pods 100] [--skip-scale]
//! ```
//!
//! 1. **Scale**: a 3-replica cluster and one `rk-agent --runtime hollow --count N`
//!    process (N simulated nodes). Time until every node is Ready, and the agent's
//!    memory per hollow node. Then one Deployment of R replicas: time from the create
//!    to every pod bound (seen by a watch on pods), the binding rate between the first
//!    and the last bind, and the time to all pods Running.
//! 2. **Pod startup latency** per runtime (process, and docker when it answers): P pods
//!    created 10 at a time on one real node; for each, from sending its create to the
//!    watch event showing it Ready. Nothing is pulled: docker pods run the locally built
//!    busybox image.
//! 3. **Idle agent memory**: VmRSS of a process-runtime agent with no pods, 5 s after
//!    its node became Ready.

// Shared with the other benchmarks, which use more of it than this one does.
#[allow(dead_code)]
#[path = "../bench.rs"]
mod bench;

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use rk_tests::{Cluster, ClusterOptions, wait_for};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "rk controllers, scheduler and agents under load")]
struct Args {
    /// Hollow nodes in the scale run.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Replicas of the scale run's Deployment.
    #[arg(long, default_value_t = 10_000)]
    replicas: usize,
    /// Pods per runtime in the startup-latency run.
    #[arg(long, default_value_t = 100)]
    startup_pods: usize,
    /// Skip the docker runtime even if Docker answers.
    #[arg(long)]
    skip_docker: bool,
    /// Skip the scale run's Deployment: measure only the hollow agent's memory with
    /// `--nodes` nodes (on one replica), then pod startup and idle agent memory.
    #[arg(long)]
    skip_scale: bool,
    /// The replicas' raft tick in the scale run (their election timeout is 10 to 20
    /// ticks); rk-server's default is 20 ms.
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
}

fn ready_condition(conditions: Option<&Vec<k8s_openapi::api::core::v1::PodCondition>>) -> bool {
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Memory of one hollow agent holding `--nodes` nodes and no pods, on a one-replica
/// control plane (which always keeps its leader), 10 s after every node is Ready.
async fn hollow_memory_run(args: &Args) -> Result<()> {
    bench::progress(format!("hollow memory: 1 replica, {} hollow nodes", args.nodes));
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let started = Instant::now();
    let count = args.nodes.to_string();
    let agent = cluster.start_agent("hollow", &["--count", &count])?;
    let c = cluster.kube_client(0).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    wait_for("all hollow nodes Ready", Duration::from_secs(300), || async {
        (rk_tests::ready_nodes(&nodes).await >= args.nodes).then_some(())
    })
    .await?;
    let ready = started.elapsed();
    let settle = Instant::now() + Duration::from_secs(10);
    wait_for("10 s of idling", Duration::from_secs(20), || async { (Instant::now() >= settle).then_some(()) }).await?;
    let pid = cluster.agents[agent].pid().context("agent has no pid")?;
    let rss = bench::rss_kib(pid)?;
    println!("\n### Hollow nodes: {} in one `rk-agent --runtime hollow` process\n", args.nodes);
    println!("| nodes | all Ready after | agent RSS | per node |\n|---:|---:|---:|---:|");
    println!(
        "| {} | {:.1} s | {:.0} MiB | {:.0} KiB |",
        args.nodes,
        ready.as_secs_f64(),
        bench::mib(rss),
        rss as f64 / args.nodes.max(1) as f64
    );
    Ok(())
}

async fn scale_run(args: &Args) -> Result<()> {
    bench::progress(format!("scale: 3 replicas (raft tick {} ms), {} hollow nodes", args.tick_ms, args.nodes));
    let mut cluster =
        Cluster::start(ClusterOptions { replicas: 3, tick_ms: args.tick_ms, ..Default::default() }).await?;
    let nodes_started = Instant::now();
    let count = args.nodes.to_string();
    let agent = cluster.start_agent(
        "hollow",
        &["--count", &count, "--capacity-cpu-millis", "32000", "--capacity-memory-mib", "131072", "--max-pods", "250"],
    )?;
    let c = cluster.kube_client(0).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    wait_for("all hollow nodes Ready", Duration::from_secs(300), || async {
        (rk_tests::ready_nodes(&nodes).await >= args.nodes).then_some(())
    })
    .await?;
    let nodes_ready = nodes_started.elapsed();
    let agent_pid = cluster.agents[agent].pid().context("agent has no pid")?;
    let agent_rss = bench::rss_kib(agent_pid)?;

    // Watch pods from the current revision, then create the Deployment.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let rv = pods.list(&ListParams::default().limit(1)).await?.metadata.resource_version.unwrap_or_default();
    let mut events = pods.watch(&WatchParams::default().timeout(290), &rv).await?.boxed();
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "scale"},
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": {"app": "scale"}},
            "template": {"metadata": {"labels": {"app": "scale"}}, "spec": {"containers": [{
                "name": "app", "image": "registry.local/app:1",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}},
        },
    }))?;
    let t0 = Instant::now();
    deploys.create(&PostParams::default(), &deployment).await?;
    let mut bound: HashSet<String> = HashSet::new();
    let mut running: HashSet<String> = HashSet::new();
    let (mut first_bind, mut last_bind, mut all_running) = (None, None, None);
    let deadline = t0 + Duration::from_secs(280);
    while running.len() < args.replicas {
        let ev = tokio::time::timeout_at(deadline.into(), events.try_next())
            .await
            .with_context(|| format!("{} bound, {} running when time ran out", bound.len(), running.len()))??;
        let pod = match ev {
            Some(WatchEvent::Added(p)) | Some(WatchEvent::Modified(p)) => p,
            Some(_) => continue,
            None => bail!("the pod watch ended"),
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() && bound.insert(name.clone()) {
            let now = t0.elapsed();
            first_bind.get_or_insert(now);
            last_bind = Some(now);
        }
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && running.insert(name) {
            all_running = Some(t0.elapsed());
        }
    }
    let (first, last) = (first_bind.unwrap_or_default(), last_bind.unwrap_or_default());
    let rate = args.replicas as f64 / (last - first).as_secs_f64().max(1e-9);
    let rss =
        cluster.replicas.iter().filter_map(|r| r.pid()).map(|p| bench::rss_kib(p).unwrap_or(0)).collect::<Vec<_>>();

    println!("\n### Scale: {} replicas on {} hollow nodes, 3 control-plane replicas\n", args.replicas, args.nodes);
    println!("| measure | value |\n|---|---:|");
    println!("| {} hollow nodes Ready after agent start | {:.2} s |", args.nodes, nodes_ready.as_secs_f64());
    println!("| hollow agent RSS with {} nodes, no pods | {:.1} MiB |", args.nodes, bench::mib(agent_rss));
    println!("| memory per hollow node | {:.0} KiB |", agent_rss as f64 / args.nodes as f64);
    println!("| create → first pod bound | {:.0} ms |", bench::ms(first));
    println!("| create → all {} pods bound | {:.2} s |", args.replicas, last.as_secs_f64());
    println!("| binding rate, first to last bind | {rate:.0} pods/s |");
    println!("| create → all pods Running | {:.2} s |", all_running.unwrap_or_default().as_secs_f64());
    println!(
        "| control-plane replica RSS after | {} |",
        rss.iter().map(|k| format!("{:.0} MiB", bench::mib(*k))).collect::<Vec<_>>().join(" / ")
    );
    if let Ok(pid) = cluster.agents[agent].pid().context("agent") {
        println!("| hollow agent RSS with {} pods | {:.1} MiB |", args.replicas, bench::mib(bench::rss_kib(pid)?));
    }
    Ok(())
}

/// Pod startup latency on one real node of `runtime`; also the idle agent's memory.
async fn startup_run(args: &Args, runtime: &str) -> Result<()> {
    bench::progress(format!("startup: {} pods on the {runtime} runtime", args.startup_pods));
    let image = if runtime == "docker" {
        tokio::task::spawn_blocking(rk_tests::images::ensure_busybox_image).await??.to_string()
    } else {
        "busybox".to_string()
    };
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let agent = cluster.start_agent(runtime, &["--max-pods", "250"])?;
    let c = cluster.kube_client(0).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    wait_for("the node Ready", Duration::from_secs(60), || async {
        (rk_tests::ready_nodes(&nodes).await >= 1).then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await; // let the agent settle before measuring idle memory
    let idle_rss = bench::rss_kib(cluster.agents[agent].pid().context("agent has no pid")?)?;

    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let rv = pods.list(&ListParams::default().limit(1)).await?.metadata.resource_version.unwrap_or_default();
    let mut events = pods.watch(&WatchParams::default().timeout(290), &rv).await?.boxed();
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut latencies_us: Vec<u32> = Vec::new();
    let mut created = 0;
    let deadline = Instant::now() + Duration::from_secs(280);
    while latencies_us.len() < args.startup_pods {
        // Keep at most 10 pods starting at once.
        while created < args.startup_pods && created - latencies_us.len() < 10 {
            let name = format!("start-{created}");
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                    "name": "app", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]},
            }))?;
            sent.insert(name, Instant::now());
            pods.create(&PostParams::default(), &pod).await?;
            created += 1;
        }
        let ev = tokio::time::timeout_at(deadline.into(), events.try_next()).await.context("pods did not start")??;
        let Some(WatchEvent::Added(p) | WatchEvent::Modified(p)) = ev else { continue };
        let name = p.metadata.name.clone().unwrap_or_default();
        if ready_condition(p.status.as_ref().and_then(|s| s.conditions.as_ref()))
            && let Some(t) = sent.remove(&name)
        {
            latencies_us.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
    }
    latencies_us.sort_unstable();
    println!("\n### Pod startup, {runtime} runtime: {} pods, at most 10 starting at once\n", args.startup_pods);
    println!("| runtime | pods | p50 ms | p99 ms | max ms | idle agent RSS |\n|---|---:|---:|---:|---:|---:|");
    println!(
        "| {runtime} | {} | {:.0} | {:.0} | {:.0} | {:.1} MiB |",
        latencies_us.len(),
        bench::ms(bench::quantile(&latencies_us, 0.5)),
        bench::ms(bench::quantile(&latencies_us, 0.99)),
        bench::ms(bench::quantile(&latencies_us, 1.0)),
        bench::mib(idle_rss)
    );
    // Leave nothing running: delete the pods and wait for the agent to stop them.
    pods.delete_collection(&DeleteParams::default(), &ListParams::default()).await?;
    wait_for("pods stopped", Duration::from_secs(120), || async {
        pods.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let m = bench::machine();
    println!("## Workloads: controllers, scheduler and node agents\n");
    println!(
        "- Command: `RK_BIN_DIR=target/release target/release/workload-bench --nodes {} --replicas {} --startup-pods {} --tick-ms {}`",
        args.nodes, args.replicas, args.startup_pods, args.tick_ms
    );
    println!("- Machine: {} CPUs ({}), {:.1} GiB memory, Linux {}", m.cpus, m.cpu_model, m.mem_gib, m.kernel);
    println!("- rk: {}", bench::rk_version());
    if args.skip_scale {
        hollow_memory_run(&args).await?;
    } else {
        scale_run(&args).await?;
    }
    startup_run(&args, "process").await?;
    let docker = !args.skip_docker
        && std::process::Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if docker {
        startup_run(&args, "docker").await?;
    }
    Ok(())
}
