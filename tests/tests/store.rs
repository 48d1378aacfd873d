//! The replicated store as real clients see it: rk-server processes on loopback,
//! driven by the `etcd-client` crate, killed and partitioned on purpose.

use anyhow::{Context, Result};
use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};
use rk_tests::{Cluster, ClusterOptions, wait_for};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

async fn get(c: &mut etcd_client::Client, key: &str, serializable: bool) -> Result<Option<String>> {
    let opts = serializable.then(|| GetOptions::new().with_serializable());
    let r = c.get(key, opts).await?;
    Ok(r.kvs().first().map(|kv| kv.value_str().unwrap_or_default().to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_replica_are_visible_on_all() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    for i in 0..3 {
        let mut c = cluster.client(i).await?;
        c.put(format!("via-{i}"), format!("v{i}"), None).await?;
    }
    for i in 0..3 {
        let mut c = cluster.client(i).await?;
        for j in 0..3 {
            // Linearizable reads see every acknowledged write, on every replica.
            assert_eq!(get(&mut c, &format!("via-{j}"), false).await?, Some(format!("v{j}")));
        }
    }
    let mut c = cluster.client(0).await?;
    let members = c.member_list().await?;
    assert_eq!(members.members().len(), 3);
    assert!(
        members.members().iter().all(|m| !m.client_urls().is_empty()) || {
            // Attributes are published shortly after start; give them a moment.
            wait_for("member attributes", Duration::from_secs(5), || async {
                let m = cluster.client(0).await.ok()?.member_list().await.ok()?;
                m.members().iter().all(|m| !m.client_urls().is_empty()).then_some(())
            })
            .await
            .is_ok()
        }
    );
    // A txn is one atomic compare-and-swap on every replica.
    let rev = c.get("via-0", None).await?.kvs()[0].mod_revision();
    let txn = Txn::new()
        .when([Compare::mod_revision("via-0", CompareOp::Equal, rev)])
        .and_then([TxnOp::put("via-0", "swapped", None)]);
    assert!(c.txn(txn.clone()).await?.succeeded());
    assert!(!c.txn(txn).await?.succeeded(), "a stale compare must fail");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions::default()).await?;
    let endpoints = cluster.endpoints();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let endpoints = endpoints.clone();
        let stop = stop.clone();
        let base_opts = cluster.etcd_options();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ep = &endpoints[(w + n as usize) % endpoints.len()];
                let opts = base_opts
                    .clone()
                    .with_connect_timeout(Duration::from_millis(300))
                    .with_timeout(Duration::from_secs(3));
                if let Ok(mut c) = etcd_client::Client::connect([ep], Some(opts)).await {
                    for _ in 0..20 {
                        let key = format!("load/{w}/{n}");
                        n += 1;
                        if c.put(key.clone(), "x", None).await.is_ok() {
                            acked.push(key);
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let leader = cluster.wait_leader(Duration::from_secs(5)).await?;
    cluster.kill(leader);
    // Writes resume under a new leader.
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader = cluster.wait_leader_among(&survivors, Duration::from_secs(10)).await?;
    assert_ne!(new_leader, leader);
    let mut c = cluster.client(new_leader).await?;
    wait_for("a write after failover", Duration::from_secs(10), || {
        let mut c = c.clone();
        async move { c.put("after-failover", "ok", None).await.ok() }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await?);
    }
    assert!(acked.len() > 50, "the load barely ran: {} acknowledged writes", acked.len());
    // Bring the old leader back: it must catch up, and every acknowledged write is there.
    cluster.restart(leader)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let all = c.get("load/", Some(GetOptions::new().with_prefix().with_keys_only())).await?;
    let present: HashSet<String> = all.kvs().iter().map(|kv| kv.key_str().unwrap_or_default().to_string()).collect();
    let lost: Vec<&String> = acked.iter().filter(|k| !present.contains(*k)).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let mut old = cluster.client(leader).await?;
    let last = acked.last().context("no writes")?;
    wait_for("the restarted replica to catch up", Duration::from_secs(20), || {
        let mut old = old.clone();
        let last = last.clone();
        async move { get(&mut old, &last, true).await.ok().flatten() }
    })
    .await?;
    assert_eq!(get(&mut old, "after-failover", false).await?.as_deref(), Some("ok"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_refuses_writes_and_linearizable_reads() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let mut lc = cluster.client(leader).await?;
    lc.put("k", "before", None).await?;
    // Isolate the leader itself: the worst case for stale reads.
    cluster.isolate(leader);
    let rest: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader = cluster.wait_leader_among(&rest, Duration::from_secs(10)).await?;
    let mut nc = cluster.client(new_leader).await?;
    nc.put("k", "after", None).await?;
    let mut old = cluster.client(leader).await?;
    let write = tokio::time::timeout(Duration::from_secs(8), old.put("k", "from-minority", None)).await;
    assert!(!matches!(write, Ok(Ok(_))), "the minority accepted a write");
    let read = tokio::time::timeout(Duration::from_secs(8), get(&mut old, "k", false)).await;
    assert!(!matches!(read, Ok(Ok(_))), "the minority served a linearizable read: {read:?}");
    // A serializable read is allowed to be stale, and is served locally.
    assert_eq!(get(&mut old, "k", true).await?.as_deref(), Some("before"));
    cluster.heal();
    wait_for("the old leader to catch up", Duration::from_secs(20), || {
        let mut old = old.clone();
        async move { (get(&mut old, "k", false).await.ok().flatten()?.as_str() == "after").then_some(()) }
    })
    .await?;
    assert_eq!(get(&mut nc, "k", false).await?.as_deref(), Some("after"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_killed_and_restarted_keeps_every_acknowledged_write() -> Result<()> {
    let mut cluster =
        Cluster::start(ClusterOptions { snapshot_entries: 150, snapshot_catchup_entries: 20, ..Default::default() })
            .await?;
    let mut c = cluster.client(0).await?;
    let mut expected = BTreeMap::new();
    for i in 0..400 {
        let (k, v) = (format!("cold/{i:04}"), format!("v{i}"));
        c.put(k.clone(), v.clone(), None).await?;
        expected.insert(k, v);
    }
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.spawn(i)?;
    }
    cluster.wait_leader(Duration::from_secs(20)).await?;
    for i in 0..3 {
        let mut c = cluster.client(i).await?;
        let got = c.get("cold/", Some(GetOptions::new().with_prefix())).await?;
        let got: BTreeMap<String, String> = got
            .kvs()
            .iter()
            .map(|kv| (kv.key_str().unwrap_or_default().into(), kv.value_str().unwrap_or_default().into()))
            .collect();
        assert_eq!(got, expected, "replica {i} after a cold restart");
    }
    Ok(())
}

/// A tmpfs mounted on a replica's data directory, unmounted when dropped (lazily: the
/// replica may still hold files open).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Result<SmallDisk> {
        std::fs::create_dir_all(dir)?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "this test needs root to mount a small tmpfs (mount said: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(SmallDisk(dir.to_path_buf()))
    }

    fn grow(&self, size: &str) -> Result<()> {
        let out =
            std::process::Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).output()?;
        anyhow::ensure!(out.status.success(), "remount: {}", String::from_utf8_lossy(&out.stderr).trim());
        Ok(())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// A follower whose disk fills up stops with a clear message (never serving or
/// acknowledging what it could not write), the others carry on, and once there is room
/// again it restarts, cuts off the torn write and catches up with every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_a_replica_cleanly_and_it_catches_up_when_space_returns() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let follower = (0..3).find(|i| *i != leader).context("no follower")?;
    // Move the follower's data onto an 8 MB disk.
    cluster.kill(follower);
    let data = cluster.replicas[follower].data_dir.clone();
    let saved = data.with_extension("saved");
    std::fs::rename(&data, &saved)?;
    let disk = SmallDisk::mount(&data, "8m")?;
    let copied = std::process::Command::new("cp").arg("-a").arg(saved.join(".")).arg(&data).status()?;
    anyhow::ensure!(copied.success(), "copy the data directory onto the small disk");
    cluster.spawn(follower)?;
    cluster.wait_leader(Duration::from_secs(10)).await?;

    // 32 KiB values until the follower's disk is full and it stops.
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let mut c = cluster.client(leader).await?;
    let value = "x".repeat(32 * 1024);
    let mut acked = 0;
    while cluster.replicas[follower].exit_status().is_none() {
        anyhow::ensure!(acked < 2000, "the follower still runs after {acked} writes of 32 KiB on an 8 MB disk");
        c.put(format!("full/{acked:05}"), value.as_str(), None).await?;
        acked += 1;
    }
    let status = cluster.replicas[follower].exit_status().context("exit status")?;
    anyhow::ensure!(!status.success(), "the follower exited with success on a full disk");
    let log = cluster.replicas[follower].log();
    anyhow::ensure!(
        log.contains("raft storage failed; stopping this replica") && log.contains("No space left on device"),
        "no clear message in the follower's log:\n{}",
        log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
    // The other two carry on.
    for i in 0..20 {
        c.put(format!("full/after-{i}"), "v", None).await?;
    }

    // Room again: it restarts on what it had and catches up.
    disk.grow("512m")?;
    cluster.spawn(follower)?;
    let mut f = cluster.client(follower).await?;
    let last = format!("full/{:05}", acked - 1);
    wait_for("the follower to catch up", Duration::from_secs(30), || {
        let mut f = f.clone();
        let last = last.clone();
        async move {
            get(&mut f, "full/after-19", true).await.ok().flatten()?;
            get(&mut f, &last, true).await.ok().flatten()
        }
    })
    .await?;
    let r = f.get("full/", Some(GetOptions::new().with_prefix().with_count_only().with_serializable())).await?;
    anyhow::ensure!(r.count() == (acked + 20) as i64, "the follower has {} of {} keys", r.count(), acked + 20);
    for i in 0..acked {
        let got = get(&mut f, &format!("full/{i:05}"), true).await?;
        anyhow::ensure!(got.as_deref() == Some(value.as_str()), "full/{i:05} is missing or damaged on the follower");
    }
    cluster.kill(follower);
    drop(disk);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_follower_catches_up_from_a_snapshot_after_restart() -> Result<()> {
    let mut cluster =
        Cluster::start(ClusterOptions { snapshot_entries: 100, snapshot_catchup_entries: 10, ..Default::default() })
            .await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let follower = (0..3).find(|i| *i != leader).context("no follower")?;
    cluster.kill(follower);
    let mut c = cluster.client(leader).await?;
    for i in 0..600 {
        c.put(format!("lag/{i}"), "v", None).await?;
    }
    cluster.spawn(follower)?;
    let mut f = cluster.client(follower).await?;
    wait_for("the follower to catch up", Duration::from_secs(20), || {
        let mut f = f.clone();
        async move { get(&mut f, "lag/599", true).await.ok().flatten() }
    })
    .await?;
    let count = f.get("lag/", Some(GetOptions::new().with_prefix().with_count_only().with_serializable())).await?;
    assert_eq!(count.count(), 600);
    assert!(cluster.replicas[follower].log().contains("installed a snapshot"), "the follower did not use a snapshot");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replica_joins_catches_up_and_a_member_is_removed() -> Result<()> {
    let mut cluster =
        Cluster::start(ClusterOptions { snapshot_entries: 100, snapshot_catchup_entries: 10, ..Default::default() })
            .await?;
    let mut c = cluster.client(0).await?;
    for i in 0..300 {
        c.put(format!("pre/{i}"), "v", None).await?;
    }
    let new = cluster.join_new().await?;
    wait_for("the new replica to serve", Duration::from_secs(20), || {
        let cluster = &cluster;
        async move {
            let mut n = cluster.client(new).await.ok()?;
            get(&mut n, "pre/299", true).await.ok().flatten()
        }
    })
    .await?;
    let members = c.member_list().await?;
    assert_eq!(members.members().len(), 4);
    // The new replica takes part: writes through it are replicated.
    let mut n = cluster.client(new).await?;
    n.put("from-new", "v", None).await?;
    assert_eq!(get(&mut c, "from-new", false).await?.as_deref(), Some("v"));
    // Replace: remove replica 1 (not necessarily the leader); it stops by itself.
    let removed_id = cluster.replicas[1].id;
    c.member_remove(removed_id).await?;
    assert_eq!(c.member_list().await?.members().len(), 3);
    wait_for("the removed replica to exit", Duration::from_secs(10), || {
        let exited = !cluster.replicas[1].is_running();
        async move { exited.then_some(()) }
    })
    .await?;
    let mut n = cluster.client(new).await?;
    n.put("after-remove", "v", None).await?;
    assert_eq!(get(&mut n, "after-remove", false).await?.as_deref(), Some("v"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_watch_sees_every_event_exactly_once_in_order() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let mut c = cluster.client(0).await?;
    let start = c.put("w/seed", "0", None).await?.header().map(|h| h.revision()).unwrap_or(0);
    // The revisions of the writer's own writes: the control plane inside rk-server
    // writes keys of its own (leases, bootstrap objects), so not every revision
    // after `start` is under w/.
    let writer = {
        let mut w = cluster.client(1).await?;
        tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..300 {
                let put = w.put(format!("w/{}", i % 17), i.to_string(), None).await?;
                revisions.push(put.header().map(|h| h.revision()).unwrap_or(0));
                if i % 50 == 0 {
                    let del = w.delete(format!("w/{}", i % 17), None).await?;
                    revisions.push(del.header().map(|h| h.revision()).unwrap_or(0));
                }
            }
            anyhow::Ok(revisions)
        })
    };
    // First watch: take some events, then drop it mid-stream.
    let mut seen: Vec<i64> = Vec::new();
    let mut wc = cluster.client(2).await?;
    let (_w, mut stream) =
        wc.watch("w/", Some(WatchOptions::new().with_prefix().with_start_revision(start + 1))).await?;
    while seen.len() < 100 {
        let msg = stream.message().await?.context("watch ended early")?;
        seen.extend(msg.events().iter().filter_map(|e| e.kv().map(|kv| kv.mod_revision())));
    }
    drop(stream);
    // Resume from the revision after the last one seen, on another replica.
    let resume = seen.last().copied().unwrap_or(start) + 1;
    let expected = writer.await??;
    let end = expected.last().copied().unwrap_or(0);
    let (_w2, mut stream) = c.watch("w/", Some(WatchOptions::new().with_prefix().with_start_revision(resume))).await?;
    while seen.last().copied().unwrap_or(0) < end {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.message()).await??.context("watch ended")?;
        seen.extend(msg.events().iter().filter_map(|e| e.kv().map(|kv| kv.mod_revision())));
    }
    assert!(expected.windows(2).all(|w| w[0] < w[1]) && expected[0] > start, "write revisions: {expected:?}");
    assert_eq!(seen, expected, "events missing, duplicated or out of order");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_with_a_clear_error() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let mut c = cluster.client(0).await?;
    let just_over = vec![b'x'; 1536 * 1024 + 10];
    let err = c.put("big", just_over, None).await.expect_err("a 1.5 MiB value must be refused");
    assert!(err.to_string().contains("request is too large"), "{err}");
    let way_over = vec![b'x'; 3 * 1024 * 1024];
    let err = c.put("big", way_over, None).await.expect_err("a 3 MiB value must be refused");
    assert!(err.to_string().to_lowercase().contains("too large"), "{err}");
    // The replica is fine afterwards, and nothing was stored.
    c.put("small", "ok", Some(PutOptions::new())).await?;
    assert_eq!(get(&mut c, "big", false).await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_peer_port_does_not_hurt_a_replica() -> Result<()> {
    use rk_proto_free::*;
    // An --insecure-dev peer port parses what arrives; a TLS one never lets these bytes
    // through its handshake (`peers_without_a_valid_certificate_cannot_send_raft_messages`).
    let cluster = Cluster::start(ClusterOptions { replicas: 1, insecure: true, ..Default::default() }).await?;
    let peer = std::net::SocketAddr::new(cluster.replicas[0].ip, rk_tests::PEER_PORT);
    // Raw bytes that are not HTTP/2 at all.
    send_raw(peer, &[0xde, 0xad, 0xbe, 0xef].repeat(10_000)).await;
    // A valid gRPC call whose raft messages are garbage, and one hiding a deep group.
    send_grpc_batch(peer, vec![vec![0xff; 64]]).await;
    send_grpc_batch(peer, vec![[0xa3u8, 0x01].repeat(50_000)]).await;
    let mut c = cluster.client(0).await?;
    c.put("still", "alive", None).await?;
    assert_eq!(get(&mut c, "still", false).await?.as_deref(), Some("alive"));
    Ok(())
}

/// The peer port is mutual TLS: plain connections, certificates of another CA, CA-signed
/// certificates that name no replica, and a replica's certificate used to speak for
/// another replica are all refused before a raft message is stepped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_a_valid_certificate_cannot_send_raft_messages() -> Result<()> {
    use rk_control_plane::pki::{self, Ca, Leaf};
    let cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let peer = std::net::SocketAddr::new(cluster.replicas[0].ip, rk_tests::PEER_PORT);
    let ca = Ca::load(&cluster.pki_dir())?;
    // A raft heartbeat (MsgHeartbeat to replica 1) as raft-rs encodes it: bytes a real
    // replica would step, so only the certificate checks can stop them.
    let heartbeat = vec![0x08, 0x08, 0x10, 0x01, 0x18, 0x01];
    let dial = |tls: Option<rustls::ClientConfig>| async move {
        let dialer = rk_control_plane::tls::Dialer { tls: tls.map(std::sync::Arc::new), local_ip: None };
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{peer}"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5));
        anyhow::Ok(dialer.channel(endpoint, &pki::peer_name(1)).await?)
    };
    // A client trusting the cluster CA (so it talks to the replica) presenting a
    // certificate `issuer` made for `leaf`.
    let client_cert = |issuer: &Ca, leaf: Leaf| -> Result<rustls::ClientConfig> {
        let issued = issuer.issue(&leaf)?;
        let cert = pki::FixedCert(std::sync::Arc::new(pki::certified_key(&issued.cert_pem, &issued.key_pem)?));
        Ok(pki::client_config(ca.roots()?, Some(std::sync::Arc::new(cert)))?)
    };
    let peer_leaf = |id: u64| Leaf {
        common_name: pki::peer_name(id),
        dns_names: vec![pki::peer_name(id)],
        client: true,
        server: true,
        validity: Duration::from_secs(600),
        ..Default::default()
    };

    // Plain TCP: no TLS handshake, no answer.
    if let Ok(channel) = dial(None).await {
        let sent = rk_proto_free::send_batch(channel, 2, vec![heartbeat.clone()]).await;
        anyhow::ensure!(sent.is_err(), "plain gRPC reached the peer port");
    }
    // Another CA's replica certificate: the handshake fails.
    let other = tempfile::tempdir()?;
    let (foreign, _) = Ca::load_or_create(&other.path().join("pki"))?;
    if let Ok(channel) = dial(Some(client_cert(&foreign, peer_leaf(2))?)).await {
        let sent = rk_proto_free::send_batch(channel, 2, vec![heartbeat.clone()]).await;
        anyhow::ensure!(sent.is_err(), "a foreign CA's certificate reached the peer port");
    }
    // The cluster CA's client certificate for a user (no replica name): dropped.
    let user = Leaf {
        common_name: "admin".into(),
        organizations: vec!["system:masters".into()],
        client: true,
        validity: Duration::from_secs(600),
        ..Default::default()
    };
    if let Ok(channel) = dial(Some(client_cert(&ca, user)?)).await {
        let sent = rk_proto_free::send_batch(channel, 2, vec![heartbeat.clone()]).await;
        anyhow::ensure!(sent.is_err(), "a user's certificate reached the peer port");
    }
    // Replica 7's certificate speaking as replica 2: PERMISSION_DENIED.
    let channel = dial(Some(client_cert(&ca, peer_leaf(7))?)).await?;
    let sent = rk_proto_free::send_batch(channel, 2, vec![heartbeat.clone()]).await;
    let status = sent.err().context("replica 7 spoke as replica 2")?;
    anyhow::ensure!(status.code() == tonic::Code::PermissionDenied, "{status:?}");
    anyhow::ensure!(status.message().contains("names replica 7"), "{status:?}");

    // The replica never noticed.
    let mut c = cluster.client(0).await?;
    c.put("still", "alive", None).await?;
    assert_eq!(get(&mut c, "still", false).await?.as_deref(), Some("alive"));
    let log = cluster.replicas[0].log();
    anyhow::ensure!(log.contains("certificate names no replica"), "{log}");
    Ok(())
}

/// Minimal raw clients for the peer port, written here so the test does not depend
/// on rk's own transport code to produce the bad input.
mod rk_proto_free {
    use tokio::io::AsyncWriteExt;

    pub async fn send_raw(addr: std::net::SocketAddr, bytes: &[u8]) {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let _ = s.write_all(bytes).await;
            let _ = s.shutdown().await;
        }
    }

    /// Sends one `rk.peer.v1.Peer/Raft` call carrying a `RaftBatch{from: 9, messages}`.
    pub async fn send_grpc_batch(addr: std::net::SocketAddr, messages: Vec<Vec<u8>>) {
        let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else { return };
        let Ok(channel) = channel.connect().await else { return };
        let _ = send_batch(channel, 9, messages).await;
    }

    /// One `rk.peer.v1.Peer/Raft` call on `channel` carrying `RaftBatch{from, messages}`
    /// (`from` below 128); the call's status.
    pub async fn send_batch(
        channel: tonic::transport::Channel,
        from: u8,
        messages: Vec<Vec<u8>>,
    ) -> Result<(), tonic::Status> {
        let mut batch = vec![0x08, from];
        for m in messages {
            batch.push(0x12);
            let mut n = m.len();
            while n >= 0x80 {
                batch.push((n as u8) | 0x80);
                n >>= 7;
            }
            batch.push(n as u8);
            batch.extend(m);
        }
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(batch.len() as u32).to_be_bytes());
        frame.extend(batch);
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/rk.peer.v1.Peer/Raft");
        let body = futures::stream::iter(vec![bytes::Bytes::from(frame)]);
        client
            .client_streaming::<_, bytes::Bytes, bytes::Bytes, _>(tonic::Request::new(body), path, RawCodec)
            .await
            .map(|_| ())
    }

    /// Passes bytes through untouched (the frame is built by hand above).
    #[derive(Clone, Default)]
    pub struct RawCodec;

    impl tonic::codec::Codec for RawCodec {
        type Encode = bytes::Bytes;
        type Decode = bytes::Bytes;
        type Encoder = RawCodec;
        type Decoder = RawCodec;
        fn encoder(&mut self) -> Self::Encoder {
            RawCodec
        }
        fn decoder(&mut self) -> Self::Decoder {
            RawCodec
        }
    }

    impl tonic::codec::Encoder for RawCodec {
        type Item = bytes::Bytes;
        type Error = tonic::Status;
        fn encode(&mut self, item: bytes::Bytes, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
            use bytes::BufMut;
            // tonic adds the gRPC frame header itself; strip ours.
            dst.put_slice(&item[5..]);
            Ok(())
        }
    }

    impl tonic::codec::Decoder for RawCodec {
        type Item = bytes::Bytes;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<bytes::Bytes>, tonic::Status> {
            use bytes::Buf;
            Ok(Some(src.copy_to_bytes(src.remaining())))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_data_directory_is_refused_with_a_clear_message() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let mut c = cluster.client(0).await?;
    for i in 0..50 {
        c.put(format!("c/{i}"), "v".repeat(100), None).await?;
    }
    cluster.kill(0);
    // Flip a byte in the middle of the largest WAL segment.
    let wal = cluster.replicas[0].data_dir.join("raft/wal");
    let seg = std::fs::read_dir(&wal)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .context("no segment")?;
    let mut data = std::fs::read(&seg)?;
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    std::fs::write(&seg, data)?;
    cluster.spawn(0)?;
    let status = wait_for("rk-server to refuse to start", Duration::from_secs(10), || {
        let status = cluster.replicas[0].exit_status();
        async move { status }
    })
    .await?;
    assert!(!status.success());
    let log = cluster.replicas[0].log();
    assert!(log.contains("corrupt"), "no clear message in: {log}");
    assert!(!log.contains("panicked"), "rk-server panicked: {log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_and_keep_alives_keep_them() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let mut c = cluster.client(1).await?;
    let short = c.lease_grant(2, None).await?.id();
    let long = c.lease_grant(2, None).await?.id();
    c.put("lease/short", "v", Some(PutOptions::new().with_lease(short))).await?;
    c.put("lease/long", "v", Some(PutOptions::new().with_lease(long))).await?;
    // Keep one alive through a follower (forwarded to the leader).
    let (mut keeper, mut responses) = c.lease_keep_alive(long).await?;
    let keep = tokio::spawn(async move {
        for _ in 0..8 {
            if keeper.keep_alive().await.is_err() || responses.message().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    wait_for("the short lease to expire", Duration::from_secs(10), || {
        let mut c = c.clone();
        async move { get(&mut c, "lease/short", false).await.ok()?.is_none().then_some(()) }
    })
    .await?;
    assert_eq!(get(&mut c, "lease/long", false).await?.as_deref(), Some("v"));
    let ttl = c.lease_time_to_live(short, None).await?;
    assert_eq!(ttl.ttl(), -1);
    keep.await?;
    Ok(())
}
