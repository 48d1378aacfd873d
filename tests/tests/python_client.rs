//! The official Kubernetes Python client (`pip install kubernetes`) against a real
//! 3-replica cluster with hollow nodes: `tests/python/k8s_client.py` drives typed
//! and dynamic clients, watches, patches, server-side apply, subresources, deletes
//! and error answers, and fails on the first difference from kube-apiserver.

use anyhow::{Context, Result, ensure};
use rk_tests::{Cluster, ClusterOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_kubernetes_client_works_against_rk() -> Result<()> {
    rk_tests::require_python_client()?;
    let mut cluster = Cluster::start(ClusterOptions::default()).await?;
    cluster.start_agent("hollow", &["--count", "3"])?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/k8s_client.py");
    let run =
        tokio::process::Command::new("python3").arg(&script).arg(cluster.kubeconfig(1)?).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(120), run).await.context("the Python client test hung")??;
    ensure!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim_end().ends_with("ok"),
        "k8s_client.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
