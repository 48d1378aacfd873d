//! The real `etcdctl` (Debian's etcd-client package) against a 3-replica rk cluster.

use anyhow::{Context, Result, bail};
use rk_tests::{Cluster, ClusterOptions, wait_for};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// etcdctl for `cluster`'s `endpoints`, with the admin's client certificate.
fn etcdctl(cluster: &Cluster, endpoints: &str) -> Result<Command> {
    let bin =
        which("etcdctl").context("etcdctl is not installed (apt-get install etcd-client); .ci/run installs it")?;
    let mut cmd = Command::new(bin);
    cmd.env("ETCDCTL_API", "3").arg("--endpoints").arg(endpoints).arg("--command-timeout=10s");
    if let Some(c) = &cluster.admin {
        cmd.arg("--cacert").arg(c.ca_file()).arg("--cert").arg(c.cert_file()).arg("--key").arg(c.key_file());
    }
    Ok(cmd)
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.exists())
}

async fn run(cluster: &Cluster, endpoints: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut cmd = etcdctl(cluster, endpoints)?;
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let Some(input) = stdin {
        child.stdin.take().context("stdin")?.write_all(input.as_bytes()).await?;
    } else {
        drop(child.stdin.take());
    }
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await??;
    if !out.status.success() {
        bail!(
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_works_against_rk() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let all = cluster.endpoints().join(",");
    let one = cluster.replicas[1].endpoint();

    // put / get --prefix / del
    assert_eq!(run(&cluster, &all, &["put", "app/a", "1"], None).await?.trim(), "OK");
    assert_eq!(run(&cluster, &one, &["put", "app/b", "2"], None).await?.trim(), "OK");
    assert_eq!(run(&cluster, &all, &["get", "app/", "--prefix"], None).await?, "app/a\n1\napp/b\n2\n");
    assert_eq!(
        run(&cluster, &all, &["get", "app/", "--prefix", "--keys-only"], None).await?.split_whitespace().count(),
        2
    );
    assert_eq!(run(&cluster, &all, &["del", "app/a"], None).await?.trim(), "1");
    assert_eq!(run(&cluster, &all, &["get", "app/a"], None).await?, "");

    // watch: start it, write, read what it prints.
    let mut watch = etcdctl(&cluster, &one)?;
    watch.args(["watch", "w/", "--prefix"]).stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    let mut watch = watch.spawn()?;
    let mut lines = BufReader::new(watch.stdout.take().context("watch stdout")?).lines();
    // The watch is registered once etcdctl connects; write until it reports events.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    while !seen.contains(&"DELETE".to_string()) {
        if tokio::time::Instant::now() > deadline {
            bail!("etcdctl watch printed only {seen:?}");
        }
        n += 1;
        run(&cluster, &all, &["put", "w/k", &format!("v{n}")], None).await?;
        if n >= 3 {
            run(&cluster, &all, &["del", "w/k"], None).await?;
        }
        while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await {
            seen.push(line);
        }
    }
    assert!(seen.windows(2).any(|w| w == ["PUT", "w/k"]), "{seen:?}");
    let _ = watch.kill().await;

    // txn: compare-and-swap in etcdctl's interactive syntax.
    run(&cluster, &all, &["put", "cas", "old"], None).await?;
    let out =
        run(&cluster, &all, &["txn"], Some("value(\"cas\") = \"old\"\n\nput cas new\n\nput cas other\n\n")).await?;
    assert!(out.starts_with("SUCCESS"), "{out}");
    assert_eq!(run(&cluster, &all, &["get", "cas", "--print-value-only"], None).await?.trim(), "new");
    let out =
        run(&cluster, &all, &["txn"], Some("value(\"cas\") = \"old\"\n\nput cas new2\n\nput cas other\n\n")).await?;
    assert!(out.starts_with("FAILURE"), "{out}");
    assert_eq!(run(&cluster, &all, &["get", "cas", "--print-value-only"], None).await?.trim(), "other");

    // lease grant / put --lease / keep-alive --once / timetolive
    let out = run(&cluster, &all, &["lease", "grant", "30"], None).await?;
    let id = out.split_whitespace().nth(1).context("lease id")?.to_string();
    run(&cluster, &all, &["put", "leased", "v", "--lease", &id], None).await?;
    let out = run(&cluster, &one, &["lease", "keep-alive", "--once", &id], None).await?;
    assert!(out.contains("keepalived with TTL(30)"), "{out}");
    let out = run(&cluster, &all, &["lease", "timetolive", &id, "--keys"], None).await?;
    assert!(out.contains("attached keys([leased])"), "{out}");
    run(&cluster, &all, &["lease", "revoke", &id], None).await?;
    assert_eq!(run(&cluster, &all, &["get", "leased"], None).await?, "");

    // member list / endpoint status
    let out = run(&cluster, &all, &["member", "list"], None).await?;
    assert_eq!(out.lines().count(), 3, "{out}");
    let c = &cluster;
    let status = wait_for("every endpoint to report a leader", Duration::from_secs(10), || {
        let all = all.clone();
        async move {
            let out = run(c, &all, &["endpoint", "status", "-w", "json"], None).await.ok()?;
            (out.matches("\"leader\":").count() == 3 && !out.contains("\"leader\":0")).then_some(out)
        }
    })
    .await?;
    assert!(status.contains("\"raft_term\""), "{status}");
    let health = run(&cluster, &all, &["endpoint", "health"], None).await;
    // etcdctl 3.4's health check reads a key; it must succeed on every replica.
    assert!(health.is_ok(), "{health:?}");
    Ok(())
}

/// `rk-server snapshot save` and `etcdctl snapshot save` back up a running cluster;
/// `rk-server snapshot restore` makes a new cluster that starts with the backup's
/// keys and history and goes on from its revision. Damaged files and used data
/// directories are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_restore_into_a_new_cluster_with_their_history() -> Result<()> {
    let source = Cluster::start(ClusterOptions::default()).await?;
    let mut c = source.client(1).await?;
    for i in 0..50 {
        c.put(format!("b/{i}"), i.to_string(), None).await?;
    }
    let before_change = c.put("b/0", "changed", None).await?.header().map(|h| h.revision()).unwrap_or(0) - 1;
    c.delete("b/1", None).await?;
    let backup_revision = c.put("b/last", "x", None).await?.header().map(|h| h.revision()).unwrap_or(0);

    let dir = tempfile::tempdir()?;
    let rk_file = dir.path().join("rk.backup");
    let rk_server = rk_tests::binary("rk-server")?;
    let endpoint = source.endpoints()[2].clone();
    let out = std::process::Command::new(&rk_server)
        .args(["snapshot", "save", "--endpoint", &endpoint])
        .arg("--pki-dir")
        .arg(source.pki_dir())
        .arg(&rk_file)
        .output()?;
    let said = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "snapshot save: {}", String::from_utf8_lossy(&out.stderr));
    // Saved through a follower or the leader alike: everything acknowledged is in it.
    anyhow::ensure!(said.contains("at revision"), "{said}");
    let etcdctl_file = dir.path().join("etcdctl.backup");
    run(&source, &endpoint, &["snapshot", "save", etcdctl_file.to_str().context("path")?], None).await?;

    let restored =
        Cluster::start(ClusterOptions { restore_from: Some(etcdctl_file.clone()), ..Default::default() }).await?;
    let mut r = restored.client(0).await?;
    let got = |resp: etcd_client::GetResponse| resp.kvs().first().map(|kv| kv.value_str().unwrap_or("").to_string());
    anyhow::ensure!(got(r.get("b/0", None).await?).as_deref() == Some("changed"));
    anyhow::ensure!(got(r.get("b/1", None).await?).is_none(), "a deleted key came back");
    anyhow::ensure!(got(r.get("b/49", None).await?).as_deref() == Some("49"));
    let old = r.get("b/0", Some(etcd_client::GetOptions::new().with_revision(before_change))).await?;
    anyhow::ensure!(got(old).as_deref() == Some("0"), "the history was not restored");
    let next = r.put("b/new", "y", None).await?.header().map(|h| h.revision()).unwrap_or(0);
    anyhow::ensure!(next > backup_revision, "a write after the restore got revision {next} <= {backup_revision}");
    let members = run(&restored, &restored.endpoints()[0], &["member", "list"], None).await?;
    anyhow::ensure!(members.lines().count() == 3, "{members}");

    let restore = |file: &std::path::Path, data_dir: &std::path::Path| {
        std::process::Command::new(&rk_server)
            .args(["snapshot", "restore"])
            .arg(file)
            .arg("--data-dir")
            .arg(data_dir)
            .output()
    };
    // rk-server's own file restores as well as etcdctl's...
    let out = restore(&rk_file, &dir.path().join("from-rk"))?;
    anyhow::ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // ...and a damaged one is refused.
    let mut damaged = std::fs::read(&rk_file)?;
    damaged[10] ^= 0xff;
    std::fs::write(&rk_file, damaged)?;
    let target = dir.path().join("from-damaged");
    let out = restore(&rk_file, &target)?;
    let err = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(!out.status.success() && err.contains("SHA-256"), "{err}");
    anyhow::ensure!(!target.join("member.json").exists(), "a refused restore left a data directory");
    // A data directory that already holds a replica is never overwritten.
    let out = restore(&etcdctl_file, &restored.replicas[0].data_dir)?;
    let err = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(!out.status.success() && err.contains("already belongs to a replica"), "{err}");
    Ok(())
}
