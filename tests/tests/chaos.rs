//! Faults injected into a running 3-replica cluster while clients read, write and
//! compare-and-swap keys and a watcher follows them; afterwards the whole history is
//! checked for linearizability and the watch stream for order, gaps and duplicates
//! (see `rk_tests::history`).
//!
//! The faults: SIGKILL of the leader and restart, an isolated leader (every peer link
//! cut both ways), SIGSTOP/SIGCONT of the leader, and a cold restart of every replica
//! at once. `linearizable_through_docker_network_faults` runs the same workload against
//! replicas in containers on a Docker network, with network faults (see its section). `RK_CHAOS_SECONDS` sets how long faults are injected (default 20); the
//! summary line (faults, operations checked) is printed for RELIABILITY.md.
//!
//! `checker_catches_stale_reads` shows the checker is not vacuous: serializable reads
//! from an isolated follower are stale, and the checker must say so.
//!
//! The `crash_*` tests crash replicas at rk-server's crash points (before and after the
//! log fsync, after commit before apply, while saving, installing and compacting
//! snapshots) with `rk-server-failpoints`, which `make build` builds.

use anyhow::{Context, Result, bail, ensure};
use etcd_client::{Compare, CompareOp, EventType, GetOptions, Txn, TxnOp, WatchOptions};
use rk_tests::history::{self, Input, Op, Output};
use rk_tests::{Cluster, ClusterOptions};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const KEYS: usize = 4;
const CLIENTS: usize = 6;

/// Keys change every [`EPOCH`], so that a long run is many short histories per key
/// (the checker's work grows much faster than linearly with a key's history).
fn key(start: Instant, i: usize) -> String {
    format!("/chaos/e{}/k{i}", start.elapsed().as_secs() / EPOCH.as_secs())
}

const EPOCH: Duration = Duration::from_secs(30);

/// The TLS options of each started cluster's endpoints, so the workload's many
/// connections (which know only an endpoint) authenticate as that cluster's admin.
static TLS: parking_lot::Mutex<Vec<(String, etcd_client::TlsOptions)>> = parking_lot::Mutex::new(Vec::new());

/// Starts a cluster and registers its endpoints' credentials for [`connect`].
async fn start_cluster(opts: ClusterOptions) -> Result<Cluster> {
    let cluster = Cluster::start(opts).await?;
    if let Some(creds) = &cluster.admin {
        let mut tls = TLS.lock();
        for e in cluster.endpoints() {
            tls.retain(|(known, _)| *known != e);
            tls.push((e, creds.etcd_tls()));
        }
    }
    Ok(cluster)
}

async fn connect(endpoint: &str) -> Option<etcd_client::Client> {
    let tls = TLS.lock().iter().find(|(e, _)| e == endpoint).map(|(_, t)| t.clone());
    let opts = etcd_client::ConnectOptions::new();
    let opts = match tls {
        Some(t) => opts.with_tls(t),
        None => opts,
    };
    let opts = opts.with_connect_timeout(Duration::from_millis(500)).with_timeout(Duration::from_secs(2));
    rk_tests::connect_etcd(endpoint.to_string(), opts).await.ok()
}

/// Nanoseconds since `start`.
fn now(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What one client recorded: its operations and the revisions of its acknowledged writes.
#[derive(Default)]
struct Record {
    ops: Vec<Op>,
    acked: Vec<(i64, String)>,
    unknown_keys: HashSet<String>,
}

/// One client: random operations on random keys against one replica (reconnecting
/// when it is gone) until `stop`.
async fn client(id: usize, endpoints: Vec<String>, start: Instant, stop: Arc<AtomicBool>) -> Record {
    let mut rec = Record::default();
    let mut conn: Option<etcd_client::Client> = None;
    let mut n = 0u64;
    let mut last_seen: HashMap<String, Option<String>> = HashMap::new();
    let mut ep = id % endpoints.len();
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            conn = connect(&endpoints[ep]).await;
            if conn.is_none() {
                ep = (ep + 1) % endpoints.len();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        };
        n += 1;
        let k_name = key(start, (n as usize * 7 + id) % KEYS);
        let value = format!("c{id}-{n}");
        let call = now(start);
        let (input, result) = match n % 3 {
            0 => {
                let r = c.put(k_name.as_str(), value.as_str(), None).await;
                (Input::Put(Some(value.clone())), r.map(|r| (Output::Written, r.header().map(|h| h.revision()))))
            }
            1 => {
                let r = c.get(k_name.as_str(), None).await;
                let read = r.map(|r| {
                    let v = r.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).to_string());
                    (Output::Read(v), None)
                });
                (Input::Get, read)
            }
            _ => {
                let expect = last_seen.get(&k_name).cloned().flatten();
                let cmp = match &expect {
                    Some(v) => Compare::value(k_name.as_str(), CompareOp::Equal, v.as_str()),
                    None => Compare::create_revision(k_name.as_str(), CompareOp::Equal, 0),
                };
                // On failure the transaction reads the key, so the history knows what it saw.
                let txn = Txn::new()
                    .when([cmp])
                    .and_then([TxnOp::put(k_name.as_str(), value.as_str(), None)])
                    .or_else([TxnOp::get(k_name.as_str(), None)]);
                let r = c.txn(txn).await;
                let swapped = r.map(|r| {
                    if r.succeeded() {
                        return (Output::Swapped(true), r.header().map(|h| h.revision()));
                    }
                    let seen = r.op_responses().into_iter().find_map(|op| match op {
                        etcd_client::TxnOpResponse::Get(g) => {
                            Some(g.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).to_string()))
                        }
                        _ => None,
                    });
                    (Output::Unswapped(seen.flatten()), None)
                });
                (Input::Cas { expect, new: Some(value.clone()) }, swapped)
            }
        };
        let ret = now(start);
        match result {
            Ok((output, revision)) => {
                if let Output::Read(v) | Output::Unswapped(v) = &output {
                    last_seen.insert(k_name.clone(), v.clone());
                }
                if let Some(rev) = revision {
                    rec.acked.push((rev, k_name.clone()));
                    last_seen.insert(k_name.clone(), Some(value));
                }
                rec.ops.push(Op { client: id, key: k_name, input, output, call, ret });
            }
            Err(_) => {
                // A failed read changed nothing and can be left out; a failed write
                // may or may not have happened.
                if input != Input::Get {
                    rec.unknown_keys.insert(k_name.clone());
                    rec.ops.push(Op { client: id, key: k_name, input, output: Output::Unknown, call, ret });
                }
                conn = None;
                ep = (ep + 1) % endpoints.len();
            }
        }
    }
    rec
}

/// Follows every chaos key from `from`, resuming on another replica after an error.
async fn watcher(endpoints: Vec<String>, from: i64, stop: Arc<AtomicBool>) -> Vec<(i64, String)> {
    let mut got: Vec<(i64, String)> = Vec::new();
    let mut ep = 0;
    let mut next = from + 1;
    // Keep going a little after `stop` so the last writes arrive.
    let mut drain_until: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + Duration::from_secs(5));
            if Instant::now() > until {
                return got;
            }
        }
        let Some(mut c) = connect(&endpoints[ep]).await else {
            ep = (ep + 1) % endpoints.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let opts = WatchOptions::new().with_prefix().with_start_revision(next);
        let Ok((_w, mut stream)) = c.watch("/chaos/", Some(opts)).await else {
            ep = (ep + 1) % endpoints.len();
            continue;
        };
        loop {
            let msg = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
            match msg {
                Ok(Ok(Some(resp))) => {
                    for ev in resp.events() {
                        if let (EventType::Put, Some(kv)) = (ev.event_type(), ev.kv()) {
                            got.push((kv.mod_revision(), String::from_utf8_lossy(kv.key()).to_string()));
                            next = kv.mod_revision() + 1;
                        }
                    }
                }
                Ok(_) => break, // error or end: resume elsewhere
                Err(_) => {
                    // Half a second of silence after the clients stopped: all delivered
                    // (a missing write is then the checker's to find).
                    if stop.load(Ordering::Relaxed) {
                        let until = *drain_until.get_or_insert_with(|| Instant::now() + Duration::from_secs(5));
                        if Instant::now() > until - Duration::from_millis(4500) {
                            return got;
                        }
                    }
                }
            }
        }
        ep = (ep + 1) % endpoints.len();
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_through_kills_partitions_and_pauses() -> Result<()> {
    let seconds: u64 = std::env::var("RK_CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut cluster = start_cluster(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    let endpoints = cluster.endpoints();
    let w = Workload::start(&endpoints).await?;

    let mut faults: Vec<(&str, Duration)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut round = 0;
    while Instant::now() < deadline {
        let leader = cluster.wait_leader(Duration::from_secs(20)).await.context("no leader between faults")?;
        let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
        // Recovery time: from the fault to a leader agreed on by the replicas that can
        // still agree (for a cold restart: from the restart).
        let (kind, recovery) = match round % 4 {
            0 => {
                let t0 = Instant::now();
                cluster.kill(leader);
                cluster
                    .wait_leader_among(&others, Duration::from_secs(20))
                    .await
                    .context("no new leader after kill -9 of the leader")?;
                let took = t0.elapsed();
                cluster.restart(leader)?;
                ("kill -9 leader", took)
            }
            1 => {
                let t0 = Instant::now();
                cluster.isolate(leader);
                cluster
                    .wait_leader_among(&others, Duration::from_secs(20))
                    .await
                    .context("no new leader beside the isolated one")?;
                let took = t0.elapsed();
                tokio::time::sleep(Duration::from_millis(500)).await; // the old leader stays cut off a while
                cluster.heal();
                ("isolate leader", took)
            }
            2 => {
                let pid = cluster.replicas[leader].pid().context("leader pid")?;
                let t0 = Instant::now();
                signal(pid, "STOP");
                let found = cluster.wait_leader_among(&others, Duration::from_secs(20)).await;
                let took = t0.elapsed();
                signal(pid, "CONT");
                found.context("no new leader while the old one was paused")?;
                ("pause leader", took)
            }
            _ => {
                for i in 0..3 {
                    cluster.kill(i);
                }
                let t0 = Instant::now();
                for i in 0..3 {
                    cluster.restart(i)?;
                }
                cluster.wait_leader(Duration::from_secs(20)).await.context("no leader after a cold restart")?;
                ("kill -9 all", t0.elapsed())
            }
        };
        // Everyone back and agreeing before the next fault.
        cluster.wait_leader(Duration::from_secs(20)).await.with_context(|| format!("no leader after {kind}"))?;
        faults.push((kind, recovery));
        eprintln!("chaos: {kind}: a leader again after {recovery:?}");
        round += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    cluster.heal();
    cluster.wait_leader(Duration::from_secs(20)).await?;
    eprintln!("chaos: faults over; collecting the clients' histories");
    let checked = w.finish(&endpoints).await?;
    report("chaos", &faults, &checked)
}

/// Prints the summary (faults, what was checked) and one line per kind of fault (in
/// the order first injected: how often, recovery median and maximum); fails if the
/// run was too short to mean anything.
fn report(prefix: &str, faults: &[(&str, Duration)], checked: &Checked) -> Result<()> {
    eprintln!(
        "{prefix}: {} faults, {} operations checked ({} acknowledged writes), {} watch events, 0 violations",
        faults.len(),
        checked.operations,
        checked.writes,
        checked.watch_events,
    );
    let mut kinds: Vec<&str> = Vec::new();
    for (k, _) in faults {
        if !kinds.contains(k) {
            kinds.push(k);
        }
    }
    for kind in kinds {
        let mut ms: Vec<u128> = faults.iter().filter(|(k, _)| *k == kind).map(|(_, d)| d.as_millis()).collect();
        ms.sort_unstable();
        if let Some(max) = ms.last() {
            eprintln!("{prefix}: {kind}: {} times, recovery p50 {} ms, max {max} ms", ms.len(), ms[ms.len() / 2]);
        }
    }
    ensure!(faults.len() >= 4, "only {} faults injected", faults.len());
    ensure!(checked.writes > 50, "only {} writes were acknowledged: the workload hardly ran", checked.writes);
    Ok(())
}

/// What [`verify`] checked.
struct Checked {
    operations: usize,
    writes: usize,
    watch_events: usize,
}

/// Collects the clients' histories (after `stop` was set), adds a final read of every key
/// (a key an acknowledged write created and that is gone reads as absent), waits for the
/// watcher, and checks linearizability and the watch guarantees.
async fn verify(
    endpoints: &[String],
    start: Instant,
    from: i64,
    clients: Vec<tokio::task::JoinHandle<Record>>,
    watch: tokio::task::JoinHandle<Vec<(i64, String)>>,
) -> Result<Checked> {
    let mut ops = Vec::new();
    let mut acked = Vec::new();
    let mut maybe = HashSet::new();
    for c in clients {
        let rec = c.await?;
        ops.extend(rec.ops);
        acked.extend(rec.acked);
        maybe.extend(rec.unknown_keys);
    }
    // Final reads of every key, after everything settled (through any replica that
    // answers: a cluster just restarted may still be electing).
    let call = now(start);
    let r = rk_tests::wait_for("the final reads", Duration::from_secs(20), || async {
        for e in endpoints {
            if let Some(mut c) = connect(e).await
                && let Ok(r) = c.get("/chaos/", Some(GetOptions::new().with_prefix())).await
            {
                return Some(r);
            }
        }
        None
    })
    .await?;
    let ret = now(start);
    let mut present = HashSet::new();
    for kv in r.kvs() {
        let (k, v) = (String::from_utf8_lossy(kv.key()).to_string(), String::from_utf8_lossy(kv.value()).to_string());
        present.insert(k.clone());
        ops.push(Op { client: 99, key: k, input: Input::Get, output: Output::Read(Some(v)), call, ret });
    }
    let written: HashSet<&String> = acked.iter().map(|(_, k)| k).collect();
    for k in written.into_iter().filter(|k| !present.contains(*k)) {
        ops.push(Op { client: 99, key: k.clone(), input: Input::Get, output: Output::Read(None), call, ret });
    }
    eprintln!("chaos: waiting for the watcher");
    let received = watch.await?;
    eprintln!("chaos: checking {} operations", ops.len());
    let operations = match history::check(&ops) {
        Ok(n) => n,
        Err(v) => bail!("{v}"),
    };
    if let Err(v) = history::check_watch(&received, &acked, &maybe, from) {
        bail!("watch violation: {v:?}");
    }
    Ok(Checked { operations, writes: acked.len(), watch_events: received.len() })
}

/// The store's revision now: where a watcher of the test's keys starts.
async fn revision_now(endpoint: &str) -> Result<i64> {
    let mut c = connect(endpoint).await.context("connect")?;
    let r = c.get("/chaos/", Some(GetOptions::new().with_prefix())).await?;
    Ok(r.header().map(|h| h.revision()).unwrap_or(0))
}

// === crash points ===
//
// rk-server-failpoints (`make build`) crashes on purpose at a point named in
// `RK_FAILPOINTS` (control-plane/src/failpoint.rs). Each test below arms one point on every
// replica while the workload runs. The first replica to crash there shows it fired (exit
// code 86); the others are then killed -9 as well (a cold crash of the whole cluster
// right after the point), all restart disarmed, and the history must still be
// linearizable with every acknowledged write kept.

const FAILPOINT_EXIT: i32 = 86;

fn armed(point: &str, count: u64) -> ClusterOptions {
    ClusterOptions {
        replicas: 3,
        // Small, so snapshots and compactions happen within seconds of writes.
        snapshot_entries: 200,
        snapshot_catchup_entries: 50,
        server_binary: "rk-server-failpoints",
        env: vec![("RK_FAILPOINTS".into(), format!("{point}={count}"))],
        ..Default::default()
    }
}

/// The clients and the watcher, running until [`Workload::finish`].
struct Workload {
    start: Instant,
    from: i64,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Record>>,
    watch: tokio::task::JoinHandle<Vec<(i64, String)>>,
}

impl Workload {
    async fn start(endpoints: &[String]) -> Result<Workload> {
        let start = Instant::now();
        // From any replica that answers (a test may have stopped some).
        let mut from = None;
        for e in endpoints {
            if let Ok(r) = revision_now(e).await {
                from = Some(r);
                break;
            }
        }
        let from = from.context("no replica answers")?;
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..CLIENTS).map(|i| tokio::spawn(client(i, endpoints.to_vec(), start, stop.clone()))).collect();
        let watch = tokio::spawn(watcher(endpoints.to_vec(), from, stop.clone()));
        Ok(Workload { start, from, stop, clients, watch })
    }

    /// Stops the clients (if not yet) and checks everything they and the watcher saw.
    async fn finish(self, endpoints: &[String]) -> Result<Checked> {
        self.stop.store(true, Ordering::Relaxed);
        verify(endpoints, self.start, self.from, self.clients, self.watch).await
    }
}

/// Kills every replica (-9), disarms its failpoints and bugs, and starts it again.
fn cold_restart_disarmed(cluster: &mut Cluster) -> Result<()> {
    for i in 0..cluster.replicas.len() {
        cluster.kill(i);
        cluster.replicas[i].env.clear();
    }
    for i in 0..cluster.replicas.len() {
        cluster.restart(i)?;
    }
    Ok(())
}

/// Which replica crashed at the failpoint, once one did.
fn crashed_at_point(cluster: &mut Cluster) -> Option<usize> {
    (0..cluster.replicas.len())
        .find(|i| cluster.replicas[*i].exit_status().and_then(|s| s.code()) == Some(FAILPOINT_EXIT))
}

async fn crash_at(point: &str, count: u64) -> Result<()> {
    let mut cluster = start_cluster(armed(point, count)).await?;
    let endpoints = cluster.endpoints();
    let w = Workload::start(&endpoints).await?;

    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(i) = crashed_at_point(&mut cluster) {
            break i;
        }
        ensure!(Instant::now() < deadline, "no replica reached failpoint {point} (pass {count}) within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let log = cluster.replicas[victim].log();
    ensure!(log.contains(&format!("failpoint {point}: crashing on purpose")), "replica {victim} log:\n{log}");
    cold_restart_disarmed(&mut cluster)?;
    cluster.wait_leader(Duration::from_secs(20)).await.context("no leader after restarting disarmed")?;
    // The recovered cluster takes writes again; then stop and check.
    wait_write(&endpoints).await?;
    let checked = w.finish(&endpoints).await?;
    eprintln!(
        "crash point {point}: replica {victim} crashed there; {} operations checked ({} acknowledged writes), 0 violations",
        checked.operations, checked.writes
    );
    ensure!(checked.writes > 20, "only {} writes were acknowledged", checked.writes);
    Ok(())
}

/// Waits until the cluster takes a write through one of `endpoints`.
async fn wait_write(endpoints: &[String]) -> Result<()> {
    rk_tests::wait_for("a write after recovery", Duration::from_secs(20), || async {
        for e in endpoints {
            if let Some(mut c) = connect(e).await
                && c.put("/probe/after-recovery", "x", None).await.is_ok()
            {
                return Some(());
            }
        }
        None
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_before_the_log_fsync() -> Result<()> {
    crash_at("log-before-sync", 400).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_after_the_log_fsync_before_acknowledging() -> Result<()> {
    crash_at("log-after-sync", 400).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_after_commit_before_apply() -> Result<()> {
    crash_at("apply-before", 300).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_while_saving_a_snapshot() -> Result<()> {
    crash_at("snapshot-save", 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_while_compacting_the_log() -> Result<()> {
    crash_at("log-compact", 1).await
}

/// The crash tests are not vacuous: rk-server-failpoints with a planted bug that makes the
/// raft log durable on one sync in 1000 (but acknowledges every time) loses acknowledged
/// writes when the whole cluster is killed, and the checks must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checks_catch_a_server_that_acknowledges_before_its_log_is_durable() -> Result<()> {
    // The failpoints binary with a bug planted and no crash point armed, and snapshots
    // too rare to happen here (a snapshot makes what it holds durable, bug or not).
    let opts = ClusterOptions {
        server_binary: "rk-server-failpoints",
        env: vec![("RK_PLANTED_BUGS".into(), "lazy-sync".into())],
        ..Default::default()
    };
    let mut cluster = start_cluster(opts).await?;
    let endpoints = cluster.endpoints();
    let w = Workload::start(&endpoints).await?;
    // Enough acknowledged writes that some sit in the unsynced tails.
    let probe = endpoints[0].clone();
    rk_tests::wait_for("200 revisions of client writes", Duration::from_secs(30), || async {
        (revision_now(&probe).await.ok()? >= w.from + 200).then_some(())
    })
    .await?;
    // The clients stop with the crash, so the first thing to read the keys again is the
    // final read, which a lost write cannot escape (a client's blind put after the
    // restart could otherwise overwrite the evidence).
    w.stop.store(true, Ordering::Relaxed);
    cold_restart_disarmed(&mut cluster)?;
    cluster.wait_leader(Duration::from_secs(20)).await.context("no leader after the cold restart")?;
    match w.finish(&endpoints).await {
        Ok(c) => bail!(
            "the checks passed a server that acknowledged writes it had not made durable \
             ({} operations, {} acknowledged writes)",
            c.operations,
            c.writes
        ),
        Err(e) if e.to_string().contains("not linearizable") || e.to_string().contains("watch violation") => {
            eprintln!("planted bug lazy-sync caught: {e}");
            Ok(())
        }
        Err(e) => Err(e.context("the checks could not run")),
    }
}

/// A follower that was down while the log moved past it gets a snapshot from the leader,
/// and crashes installing it; restarted, it still catches up and agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_while_installing_a_snapshot() -> Result<()> {
    let mut opts = armed("snapshot-install", 1);
    opts.env.clear();
    let mut cluster = start_cluster(opts).await?;
    let endpoints = cluster.endpoints();
    let leader = cluster.wait_leader(Duration::from_secs(20)).await?;
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    // Far more entries than a snapshot holds back: the follower can only catch up from one.
    let mut c = connect(&endpoints[leader]).await.context("connect to the leader")?;
    for i in 0..600 {
        c.put(format!("/fill/{i:04}"), "x".repeat(64), None).await?;
    }
    let w = Workload::start(&endpoints).await?;

    cluster.replicas[follower].env = vec![("RK_FAILPOINTS".into(), "snapshot-install=1".into())];
    cluster.restart(follower)?;
    rk_tests::wait_for("the follower to crash installing the snapshot", Duration::from_secs(60), || {
        let code = cluster.replicas[follower].exit_status().and_then(|s| s.code());
        async move { (code == Some(FAILPOINT_EXIT)).then_some(()) }
    })
    .await?;
    cluster.replicas[follower].env.clear();
    cluster.restart(follower)?;
    // It catches up: a serializable read on it sees the last fill key.
    let follower_endpoint = endpoints[follower].clone();
    rk_tests::wait_for("the follower to catch up", Duration::from_secs(30), || async {
        let mut c = connect(&follower_endpoint).await?;
        let r = c.get("/fill/0599", Some(GetOptions::new().with_serializable())).await.ok()?;
        (!r.kvs().is_empty()).then_some(())
    })
    .await?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let checked = w.finish(&endpoints).await?;
    eprintln!(
        "crash point snapshot-install: {} operations checked ({} acknowledged writes), 0 violations",
        checked.operations, checked.writes
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checker_catches_stale_reads() -> Result<()> {
    let cluster = start_cluster(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    let leader = cluster.wait_leader_among(&[0, 1, 2], Duration::from_secs(10)).await?;
    let follower = (leader + 1) % 3;
    let start = Instant::now();
    let mut lc = cluster.client(leader).await?;
    let mut fc = cluster.client(follower).await?;
    let mut ops = Vec::new();
    let mut record = |input, output, call, ret| ops.push(Op { client: 0, key: "/k".into(), input, output, call, ret });

    let call = now(start);
    lc.put("/k", "old", None).await?;
    record(Input::Put(Some("old".into())), Output::Written, call, now(start));
    // Let the follower apply "old", then cut it off and write "new" on the majority.
    rk_tests::wait_for("the follower has the old value", Duration::from_secs(10), || async {
        let r = fc.clone().get("/k", Some(GetOptions::new().with_serializable())).await.ok()?;
        (r.kvs().first()?.value() == b"old").then_some(())
    })
    .await?;
    cluster.isolate(follower);
    let call = now(start);
    lc.put("/k", "new", None).await?;
    record(Input::Put(Some("new".into())), Output::Written, call, now(start));
    // A serializable read on the cut-off follower answers from its stale state.
    let call = now(start);
    let r = fc.get("/k", Some(GetOptions::new().with_serializable())).await?;
    let seen = r.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).to_string());
    record(Input::Get, Output::Read(seen.clone()), call, now(start));
    ensure!(seen.as_deref() == Some("old"), "the isolated follower served {seen:?}");
    let violation = history::check(&ops).err().context("the checker accepted a stale read")?;
    ensure!(violation.ops.len() == 3, "{violation}");
    // The default (linearizable) read on the cut-off follower refuses instead.
    let linearizable = tokio::time::timeout(Duration::from_secs(8), fc.get("/k", None)).await;
    ensure!(!matches!(linearizable, Ok(Ok(_))), "a linearizable read succeeded on an isolated follower");
    Ok(())
}

// === containers on a Docker network ===
//
// The same workload and checks against a 3-replica control plane of containers on a
// Docker network of its own (`rkctl cluster up --driver docker`), with faults a
// network can have: the leader's container disconnected from the network, packet loss
// both ways at the leader (nftables, run from the host inside the container's network
// namespace), an asymmetric partition (the leader drops what one follower sends it),
// and the leader's container paused (cgroup freezer).

/// A docker-driver cluster made by `rkctl cluster up`, removed (`down`) on drop.
struct DockerCluster {
    dir: tempfile::TempDir,
    name: String,
    network: String,
    /// (container, address) of each replica.
    replicas: Vec<(String, String)>,
}

impl DockerCluster {
    fn rkctl(&self, args: &[&str]) -> Result<std::process::Output> {
        Ok(std::process::Command::new(rk_tests::binary("rkctl")?)
            .args(args)
            .env("RK_STATE_DIR", self.dir.path().join("state"))
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .env_remove("RK_BIN_DIR")
            .env_remove("XDG_STATE_HOME")
            .output()?)
    }

    async fn up(name: &str) -> Result<DockerCluster> {
        remove_leftovers(name)?;
        let dir = tempfile::Builder::new().prefix("rk-chaos-docker-").tempdir()?;
        let name = format!("{name}-{}", std::process::id() % 100_000);
        let mut c = DockerCluster { dir, name, network: String::new(), replicas: Vec::new() };
        let out = c.rkctl(&["cluster", "up", "--name", &c.name, "--driver", "docker", "--replicas", "3", "--wait"])?;
        ensure!(
            out.status.success(),
            "rkctl cluster up: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let folder = c.dir.path().join("state/clusters").join(&c.name);
        let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("cluster.json"))?)?;
        c.network = rec["network"].as_str().context("no network in the record")?.to_string();
        for r in rec["replicas"].as_array().context("no replicas")? {
            let container = r["container"].as_str().context("replica without container")?.to_string();
            c.replicas.push((container, r["ip"].as_str().context("replica without ip")?.to_string()));
        }
        // The admin credentials `up` wrote, for the workload's etcd connections.
        let kubeconfig: serde_json::Value = serde_norway::from_slice(&std::fs::read(folder.join("admin.kubeconfig"))?)?;
        let pem = |v: &serde_json::Value| -> Result<String> {
            use base64::Engine;
            let b64 = v.as_str().context("missing credential in admin.kubeconfig")?;
            Ok(String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64)?)?)
        };
        let ca = pem(&kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"])?;
        let cert = pem(&kubeconfig["users"][0]["user"]["client-certificate-data"])?;
        let key = pem(&kubeconfig["users"][0]["user"]["client-key-data"])?;
        let tls = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(&ca))
            .identity(etcd_client::Identity::from_pem(&cert, &key))
            .domain_name("kubernetes.default.svc");
        let mut known = TLS.lock();
        for e in c.endpoints() {
            known.retain(|(k, _)| *k != e);
            known.push((e, tls.clone()));
        }
        Ok(c)
    }

    fn endpoints(&self) -> Vec<String> {
        self.replicas.iter().map(|(_, ip)| format!("https://{ip}:2379")).collect()
    }

    fn pid(&self, i: usize) -> Result<String> {
        Ok(docker(&["inspect", "--format", "{{.State.Pid}}", &self.replicas[i].0])?.trim().to_string())
    }

    /// Runs `args` inside replica `i`'s network namespace (from the host: the image has no tc).
    fn in_netns(&self, i: usize, args: &[&str]) -> Result<()> {
        let pid = self.pid(i)?;
        let out = std::process::Command::new("nsenter").args(["-t", &pid, "-n"]).args(args).output()?;
        ensure!(out.status.success(), "nsenter {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// The leader that every reachable replica among `among` agrees on, if any.
    async fn leader_among(&self, among: &[usize]) -> Option<usize> {
        let endpoints = self.endpoints();
        let mut ids = HashMap::new();
        let mut leaders = HashSet::new();
        for &i in among {
            let mut c = connect(&endpoints[i]).await?;
            let s = tokio::time::timeout(Duration::from_secs(1), c.status()).await.ok()?.ok()?;
            ids.insert(s.header()?.member_id(), i);
            leaders.insert(s.leader());
        }
        let leader = *leaders.iter().next()?;
        (leaders.len() == 1 && leader != 0).then(|| ids.get(&leader).copied()).flatten()
    }

    async fn wait_leader_among(&self, among: &[usize], timeout: Duration) -> Result<usize> {
        rk_tests::wait_for("a leader the replicas agree on", timeout, || self.leader_among(among)).await
    }
}

impl Drop for DockerCluster {
    fn drop(&mut self) {
        match self.rkctl(&["cluster", "down", "--name", &self.name]) {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("rkctl cluster down: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("rkctl cluster down: {e}"),
        }
    }
}

/// Removes what a run of this test that was killed (a timeout, say) left behind: the
/// containers and networks of clusters named `<name>-<pid>`, where no process `<pid>`
/// runs any more. (Only one cluster test runs at a time, see .config/nextest.toml.)
fn remove_leftovers(name: &str) -> Result<()> {
    let dead = |cluster: &str| {
        cluster
            .strip_prefix(&format!("{name}-"))
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    };
    let listed =
        docker(&["ps", "-a", "--filter", "label=io.rk.cluster", "--format", "{{.ID}} {{.Label \"io.rk.cluster\"}}"])?;
    for line in listed.lines() {
        if let Some((id, cluster)) = line.split_once(' ')
            && dead(cluster)
        {
            docker(&["rm", "-f", id])?;
            // Its pods: the node's containers carry io.rk.node=<cluster>-node-<k>.
            let pods = docker(&["ps", "-aq", "--filter", &format!("label=io.rk.node={cluster}-node-1")])?;
            for pod in pods.split_whitespace() {
                docker(&["rm", "-f", pod])?;
            }
        }
    }
    let networks = docker(&["network", "ls", "--format", "{{.Name}}"])?;
    for net in networks.lines() {
        if let Some(cluster) = net.strip_prefix("rk-").and_then(|n| n.strip_suffix("-net"))
            && dead(cluster)
        {
            docker(&["network", "rm", net])?;
        }
    }
    Ok(())
}

fn docker(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("docker").args(args).output()?;
    ensure!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_through_docker_network_faults() -> Result<()> {
    let seconds: u64 = std::env::var("RK_CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let cluster = DockerCluster::up("chaos").await?;
    let all = [0, 1, 2];
    cluster.wait_leader_among(&all, Duration::from_secs(30)).await?;
    let endpoints = cluster.endpoints();
    let w = Workload::start(&endpoints).await?;
    let mut faults: Vec<(&str, Duration)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut round = 0;
    while Instant::now() < deadline {
        let leader =
            cluster.wait_leader_among(&all, Duration::from_secs(20)).await.context("no leader between faults")?;
        let others: Vec<usize> = all.iter().copied().filter(|i| *i != leader).collect();
        let (container, ip) = cluster.replicas[leader].clone();
        let t0 = Instant::now();
        // Recovery: for a fault that takes the leader away, from the fault to a new
        // leader among the others; for loss and the asymmetric partition (the leader
        // may keep leading), from the end of the fault to a leader all agree on.
        let (kind, failover) = match round % 4 {
            0 => {
                docker(&["network", "disconnect", &cluster.network, &container])?;
                let found = cluster.wait_leader_among(&others, Duration::from_secs(20)).await;
                let failover = t0.elapsed();
                tokio::time::sleep(Duration::from_millis(500)).await;
                docker(&["network", "connect", "--ip", &ip, &cluster.network, &container])?;
                found.context("no new leader beside the disconnected one")?;
                ("disconnect leader", Some(failover))
            }
            1 => {
                // Loss both ways (the VMs this runs on have no netem for delay).
                let rules = "table ip rk_chaos_loss { \
                    chain input { type filter hook input priority 0; numgen random mod 100 < 20 drop; }; \
                    chain output { type filter hook output priority 0; numgen random mod 100 < 20 drop; }; }";
                cluster.in_netns(leader, &["nft", rules])?;
                tokio::time::sleep(Duration::from_secs(3)).await;
                cluster.in_netns(leader, &["nft", "delete table ip rk_chaos_loss"])?;
                ("20% packet loss on the leader", None)
            }
            2 => {
                let from = &cluster.replicas[others[0]].1;
                let rules = format!(
                    "table ip rk_chaos {{ chain input {{ type filter hook input priority 0; ip saddr {from} drop; }}; }}"
                );
                cluster.in_netns(leader, &["nft", &rules])?;
                tokio::time::sleep(Duration::from_secs(3)).await;
                cluster.in_netns(leader, &["nft", "delete table ip rk_chaos"])?;
                ("asymmetric partition", None)
            }
            _ => {
                docker(&["pause", &container])?;
                let found = cluster.wait_leader_among(&others, Duration::from_secs(20)).await;
                let failover = t0.elapsed();
                docker(&["unpause", &container])?;
                found.context("no new leader while the old one was paused")?;
                ("pause leader container", Some(failover))
            }
        };
        let healed = Instant::now();
        cluster
            .wait_leader_among(&all, Duration::from_secs(20))
            .await
            .with_context(|| format!("no leader after {kind}"))?;
        faults.push((kind, failover.unwrap_or_else(|| healed.elapsed())));
        eprintln!("chaos (docker): {kind}: done after {:?}", t0.elapsed());
        round += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("chaos (docker): faults over; collecting the clients' histories");
    let checked = w.finish(&endpoints).await?;
    report("chaos (docker)", &faults, &checked)
}
