//! Faults injected into a running 3-replica cluster while clients read, write and
//! compare-and-swap keys and a watcher follows them; afterwards the whole history is
//! checked for linearizability and the watch stream for order, gaps and duplicates
//! (see `rk_tests::history`).
//!
//! The faults: SIGKILL of the leader and restart, an isolated leader (every peer link
//! cut both ways), SIGSTOP/SIGCONT of the leader, and a cold restart of every replica
//! at once. `RK_CHAOS_SECONDS` sets how long faults are injected (default 20); the
//! summary line (faults, operations checked) is printed for RELIABILITY.md.
//!
//! `checker_catches_stale_reads` shows the checker is not vacuous: serializable reads
//! from an isolated follower are stale, and the checker must say so.

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

async fn connect(endpoint: &str) -> Option<etcd_client::Client> {
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(2));
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
    let mut cluster = Cluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    let endpoints = cluster.endpoints();
    let start = Instant::now();
    let from = {
        let mut c = connect(&endpoints[0]).await.context("connect")?;
        c.get("/chaos/", Some(GetOptions::new().with_prefix())).await?.header().map(|h| h.revision()).unwrap_or(0)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> =
        (0..CLIENTS).map(|i| tokio::spawn(client(i, endpoints.clone(), start, stop.clone()))).collect();
    let watch = tokio::spawn(watcher(endpoints.clone(), from, stop.clone()));

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
    stop.store(true, Ordering::Relaxed);
    eprintln!("chaos: faults over; collecting the clients' histories");

    let mut ops = Vec::new();
    let mut acked = Vec::new();
    let mut maybe = HashSet::new();
    for c in clients {
        let rec = c.await?;
        ops.extend(rec.ops);
        acked.extend(rec.acked);
        maybe.extend(rec.unknown_keys);
    }
    // Final reads of every key, after everything settled.
    let mut c = connect(&endpoints[0]).await.context("connect for the final reads")?;
    let call = now(start);
    let r = c.get("/chaos/", Some(GetOptions::new().with_prefix())).await?;
    let ret = now(start);
    for kv in r.kvs() {
        let (k, v) = (String::from_utf8_lossy(kv.key()).to_string(), String::from_utf8_lossy(kv.value()).to_string());
        ops.push(Op { client: 99, key: k, input: Input::Get, output: Output::Read(Some(v)), call, ret });
    }
    eprintln!("chaos: waiting for the watcher");
    let received = watch.await?;
    eprintln!("chaos: checking {} operations", ops.len());

    let writes = acked.len();
    let checked = match history::check(&ops) {
        Ok(n) => n,
        Err(v) => bail!("{v}"),
    };
    if let Err(v) = history::check_watch(&received, &acked, &maybe, from) {
        bail!("watch violation: {v:?}");
    }
    eprintln!(
        "chaos: {} faults, {checked} operations checked ({writes} acknowledged writes), {} watch events, 0 violations",
        faults.len(),
        received.len(),
    );
    for kind in ["kill -9 leader", "isolate leader", "pause leader", "kill -9 all"] {
        let mut ms: Vec<u128> = faults.iter().filter(|(k, _)| *k == kind).map(|(_, d)| d.as_millis()).collect();
        ms.sort_unstable();
        if let (Some(max), false) = (ms.last(), ms.is_empty()) {
            eprintln!("chaos: {kind}: {} times, recovery p50 {} ms, max {max} ms", ms.len(), ms[ms.len() / 2]);
        }
    }
    ensure!(faults.len() >= 4, "only {} faults injected", faults.len());
    ensure!(writes > 50, "only {writes} writes were acknowledged: the workload hardly ran");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checker_catches_stale_reads() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
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
