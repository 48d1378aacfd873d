//! Scheduler decisions per second, in process, no I/O: `cargo bench -p rk-control-plane
//! --bench scheduler`. For 1,000 and 5,000 nodes it schedules a batch of pending pods
//! the way the scheduler controller does (one `schedule` call per pod against the same
//! node view, each bind accounted before the next pod), and prints decisions per second
//! and the latency distribution of single decisions.
//!
//! Nodes: 4 CPU / 16 GiB / 110 pods each, a zone label on every node, 1 in 10 tainted
//! with PreferNoSchedule. Pods: 100m CPU / 128 MiB, owned by one of 10 ReplicaSets (so
//! owner spreading counts), half with a preferred zone affinity, so every scoring plugin
//! does work. Each node count is measured on a fresh view.

use k8s_openapi::api::core::v1::{Node, Pod};
use rk_control_plane::controllers::scheduler::{self, Decision};
use serde_json::json;
use std::time::Instant;

fn node(i: usize) -> Node {
    let mut taints = vec![];
    if i.is_multiple_of(10) {
        taints.push(json!({"key": "spot", "value": "true", "effect": "PreferNoSchedule"}));
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("node-{i}"), "labels": {
            "kubernetes.io/hostname": format!("node-{i}"), "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
        "spec": {"taints": taints},
        "status": {
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))
    .expect("a valid node")
}

fn pod(i: usize) -> Pod {
    let mut spec = json!({"containers": [{"name": "app", "image": "app:1",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]});
    if i.is_multiple_of(2) {
        spec["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 10, "preference": {"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-1"]}]}}]}});
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("pod-{i}"), "namespace": "default", "uid": format!("uid-{i}"),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("rs-{}", i % 10),
                "uid": format!("rs-uid-{}", i % 10), "controller": true}]},
        "spec": spec,
    }))
    .expect("a valid pod")
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is ignored.
    println!("| nodes | pods | decisions/s | p50 µs | p99 µs | max µs | unschedulable |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (nodes_n, pods_n) in [(1_000, 20_000), (5_000, 20_000)] {
        let nodes: Vec<Node> = (0..nodes_n).map(node).collect();
        let pods: Vec<Pod> = (0..pods_n).map(pod).collect();
        let mut view = scheduler::node_infos(&nodes, &[]);
        let owners = scheduler::owner_counts(&[]);
        let mut lat = Vec::with_capacity(pods_n);
        let mut unschedulable = 0;
        let mut next_start = 0;
        let start = Instant::now();
        for p in &pods {
            let t = Instant::now();
            match scheduler::schedule_from(p, &mut view, &owners, &mut next_start) {
                Decision::Bind(_) => {}
                Decision::Unschedulable(_) => unschedulable += 1,
            }
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let secs = start.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        println!(
            "| {nodes_n} | {pods_n} | {:.0} | {:.0} | {:.0} | {:.0} | {unschedulable} |",
            pods_n as f64 / secs,
            quantile(&lat, 0.5),
            quantile(&lat, 0.99),
            lat.last().copied().unwrap_or(0.0)
        );
    }
}
