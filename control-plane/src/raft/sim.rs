//! A simulated network for consensus tests: real raft threads, in-process links
//! that can drop, delay, cut and isolate (raft-rs's `harness/network.rs` idea).

use super::log::RaftLog;
use super::node::{self, Command, NodeOptions, RaftHandle, Role, Transport};
use crate::store::StateMachine;
use crate::store::watch::WatchHub;
use crossbeam_channel::Sender;
use parking_lot::Mutex;
use raft::SnapshotStatus;
use raft::eraftpb::{Message, MessageType};
use rk_proto::etcdserverpb::{PutRequest, RangeRequest};
use rk_proto::store::MemberInfo;
use rk_proto::store::internal_request::Op;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct NetState {
    nodes: HashMap<u64, Sender<Command>>,
    /// Directed links that deliver nothing.
    cut: HashSet<(u64, u64)>,
    /// Fraction of messages lost, 0.0 to 1.0.
    drop_rate: f64,
    delay: Duration,
}

#[derive(Clone, Default)]
pub struct SimNet {
    state: Arc<Mutex<NetState>>,
}

impl SimNet {
    pub fn cut(&self, a: u64, b: u64) {
        let mut s = self.state.lock();
        s.cut.insert((a, b));
        s.cut.insert((b, a));
    }

    pub fn isolate(&self, id: u64) {
        let ids: Vec<u64> = self.state.lock().nodes.keys().copied().collect();
        for other in ids.into_iter().filter(|o| *o != id) {
            self.cut(id, other);
        }
    }

    pub fn heal(&self) {
        let mut s = self.state.lock();
        s.cut.clear();
        s.drop_rate = 0.0;
        s.delay = Duration::ZERO;
    }

    pub fn set_drop_rate(&self, rate: f64) {
        self.state.lock().drop_rate = rate;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    fn transport(&self, id: u64) -> SimTransport {
        SimTransport { id, net: self.clone() }
    }
}

pub struct SimTransport {
    id: u64,
    net: SimNet,
}

impl Transport for SimTransport {
    fn send(&self, msgs: Vec<Message>) {
        let (targets, me, drop_rate, delay) = {
            let s = self.net.state.lock();
            let targets: HashMap<u64, Sender<Command>> = msgs
                .iter()
                .filter(|m| !s.cut.contains(&(self.id, m.to)))
                .filter_map(|m| s.nodes.get(&m.to).map(|tx| (m.to, tx.clone())))
                .collect();
            (targets, s.nodes.get(&self.id).cloned(), s.drop_rate, s.delay)
        };
        for msg in msgs {
            let to = msg.to;
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            let delivered = match targets.get(&to) {
                Some(tx) if rand::random::<f64>() >= drop_rate => {
                    let tx = tx.clone();
                    if delay.is_zero() {
                        tx.send(Command::Step(Box::new(msg))).is_ok()
                    } else {
                        std::thread::spawn(move || {
                            std::thread::sleep(delay);
                            let _ = tx.send(Command::Step(Box::new(msg)));
                        });
                        true
                    }
                }
                _ => false,
            };
            if is_snapshot && let Some(me) = &me {
                let status = if delivered { SnapshotStatus::Finish } else { SnapshotStatus::Failure };
                let _ = me.send(Command::SnapshotStatus(to, status));
            }
        }
    }

    fn set_peers(&self, _peers: Vec<(u64, String)>) {}
}

pub struct SimCluster {
    pub net: SimNet,
    pub nodes: HashMap<u64, RaftHandle>,
    opts: NodeOptions,
}

pub fn fast_options(id: u64) -> NodeOptions {
    NodeOptions {
        id,
        tick: Duration::from_millis(10),
        election_ticks: 10,
        heartbeat_ticks: 1,
        snapshot_entries: 10_000,
        snapshot_catchup_entries: 10,
        max_batch: 1024,
    }
}

fn member(id: u64) -> MemberInfo {
    MemberInfo { id, name: format!("n{id}"), peer_urls: vec![format!("sim://{id}")], ..Default::default() }
}

impl SimCluster {
    pub fn new(n: u64, tweak: impl Fn(&mut NodeOptions)) -> Self {
        let net = SimNet::default();
        let members: Vec<MemberInfo> = (1..=n).map(member).collect();
        let snap = node::initial_snapshot(7, &members);
        let mut opts = fast_options(0);
        tweak(&mut opts);
        let mut cluster = SimCluster { net, nodes: HashMap::new(), opts };
        for id in 1..=n {
            let log = RaftLog::memory();
            log.bootstrap(&snap).unwrap();
            let sm = node::restore(&snap).unwrap();
            cluster.start_node(id, log, sm);
        }
        cluster
    }

    fn start_node(&mut self, id: u64, log: RaftLog, sm: StateMachine) {
        let (tx, rx) = node::channel();
        self.net.state.lock().nodes.insert(id, tx.clone());
        let opts = NodeOptions { id, ..self.opts.clone() };
        let (handle, _thread) = node::start(
            opts,
            log,
            sm,
            Arc::new(WatchHub::new()),
            self.net.transport(id),
            (tx, rx),
            Duration::from_millis(1500),
        )
        .unwrap();
        self.nodes.insert(id, handle);
    }

    /// Starts an empty replica that will be given a snapshot once added.
    pub fn start_empty(&mut self, id: u64) {
        self.start_node(id, RaftLog::memory(), StateMachine::default());
    }

    pub fn stop(&mut self, id: u64) {
        if let Some(h) = self.nodes.remove(&id) {
            let _ = h.send(Command::Stop);
        }
        self.net.state.lock().nodes.remove(&id);
    }

    /// The leader that the given replicas agree on.
    pub async fn leader_among(&self, ids: &[u64]) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let views: Vec<_> = ids.iter().map(|id| self.nodes[id].leadership()).collect();
            if let Some(l) = views.iter().find(|l| l.role == Role::Leader)
                && views.iter().all(|v| v.leader == l.leader && v.term == l.term)
            {
                return l.leader;
            }
            assert!(Instant::now() < deadline, "no agreed leader among {ids:?}: {views:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn leader(&self) -> u64 {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        self.leader_among(&ids).await
    }

    pub async fn put(&self, via: u64, key: &str, value: &str) -> Result<(), node::ProposeError> {
        let op =
            Op::Put(PutRequest { key: key.to_string().into(), value: value.to_string().into(), ..Default::default() });
        self.nodes[&via].propose(op).await.map(|_| ())
    }

    /// Reads `key` on `via` after a ReadIndex (linearizable).
    pub async fn get(&self, via: u64, key: &str) -> Result<Option<String>, node::ProposeError> {
        let h = &self.nodes[&via];
        h.read_index().await?;
        let sm = h.shared.sm.read();
        let r = sm.range(&RangeRequest { key: key.to_string().into(), ..Default::default() }).unwrap();
        Ok(r.kvs.first().map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
    }

    /// Waits until every listed replica's store holds `value` at `key`.
    pub async fn converge(&self, ids: &[u64], key: &str, value: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let done = ids.iter().all(|id| {
                let sm = self.nodes[id].shared.sm.read();
                sm.mvcc.get(key.as_bytes()).is_some_and(|kv| kv.value == value.as_bytes())
            });
            if done {
                return;
            }
            assert!(Instant::now() < deadline, "{key}={value} did not reach all of {ids:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::node::ProposeError;
    use crate::store::Applied;
    use raft::eraftpb::ConfChangeType;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn elects_a_leader_and_replicates_writes_through_any_replica() {
        let c = SimCluster::new(3, |_| {});
        c.leader().await;
        for via in 1..=3 {
            c.put(via, &format!("k{via}"), "v").await.unwrap();
        }
        for via in 1..=3 {
            c.converge(&[1, 2, 3], &format!("k{via}"), "v").await;
            assert_eq!(c.get(via, "k1").await.unwrap().as_deref(), Some("v"));
        }
        // Every replica applied the same history.
        let revs: Vec<i64> = (1..=3).map(|id| c.nodes[&id].shared.sm.read().mvcc.current_revision()).collect();
        assert!(revs.iter().all(|r| *r == revs[0]), "{revs:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_isolated_leader_cannot_write_or_serve_linearizable_reads() {
        let c = SimCluster::new(3, |_| {});
        let old = c.leader().await;
        c.put(old, "k", "before").await.unwrap();
        c.net.isolate(old);
        let rest: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
        let new = c.leader_among(&rest).await;
        assert_ne!(new, old);
        c.put(new, "k", "after").await.unwrap();
        // The old leader may still think it leads for a moment, but cannot commit or
        // confirm a read; it must not answer with the stale value.
        let write = c.put(old, "k", "lost").await;
        assert!(write.is_err(), "an isolated replica accepted a write: {write:?}");
        let read = c.get(old, "k").await;
        assert!(read.is_err(), "an isolated replica served a read: {read:?}");
        c.net.heal();
        c.converge(&[1, 2, 3], "k", "after").await;
        assert_eq!(c.get(old, "k").await.unwrap().as_deref(), Some("after"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_minority_partition_cannot_elect_but_the_majority_goes_on() {
        let c = SimCluster::new(5, |_| {});
        let leader = c.leader().await;
        let minority: Vec<u64> = (1..=5).filter(|id| *id != leader).take(2).collect();
        for m in &minority {
            c.net.isolate(*m);
        }
        c.net.cut(minority[0], minority[1]);
        let majority: Vec<u64> = (1..=5).filter(|id| !minority.contains(id)).collect();
        c.put(majority[0], "k", "v").await.unwrap();
        for m in &minority {
            assert_ne!(c.nodes[m].leadership().role, Role::Leader);
            assert!(c.put(*m, "x", "y").await.is_err());
        }
        c.net.heal();
        c.converge(&[1, 2, 3, 4, 5], "k", "v").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_commit_through_lossy_and_slow_links() {
        let c = SimCluster::new(3, |_| {});
        c.leader().await;
        c.net.set_drop_rate(0.2);
        c.net.set_delay(Duration::from_millis(5));
        let mut ok = 0;
        for i in 0..30 {
            let via = 1 + (i % 3);
            // Under loss a write may time out or see a leader change; retry.
            // A forwarded proposal that the network drops is lost for good; the
            // client sees a timeout and retries, as a real client would.
            for _ in 0..20 {
                match c.put(via, &format!("k{i}"), "v").await {
                    Ok(()) => {
                        ok += 1;
                        break;
                    }
                    Err(ProposeError::Timeout | ProposeError::LeaderChanged | ProposeError::NoLeader) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(ok, 30);
        c.net.heal();
        c.converge(&[1, 2, 3], "k29", "v").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lagging_replica_catches_up_from_a_snapshot() {
        let c = SimCluster::new(3, |o| {
            o.snapshot_entries = 20;
            o.snapshot_catchup_entries = 5;
        });
        let leader = c.leader().await;
        let lagger = (1..=3).find(|id| *id != leader).unwrap();
        c.net.isolate(lagger);
        let up: Vec<u64> = (1..=3).filter(|id| *id != lagger).collect();
        for i in 0..100 {
            c.put(leader, &format!("k{i}"), &i.to_string()).await.unwrap();
        }
        // The log behind the lagger is gone, so only a snapshot can catch it up.
        assert!(c.nodes[&leader].shared.log.first_index() > 10);
        c.net.heal();
        c.converge(&[lagger], "k99", "99").await;
        let first = c.nodes[&lagger].shared.sm.read().mvcc.get(b"k0").unwrap().value;
        assert_eq!(first, "0");
        c.converge(&up, "k99", "99").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_join_via_snapshot_and_leave() {
        let mut c = SimCluster::new(3, |o| o.snapshot_entries = 10);
        let leader = c.leader().await;
        for i in 0..30 {
            c.put(leader, &format!("k{i}"), "v").await.unwrap();
        }
        c.start_empty(4);
        let m4 = member(4);
        c.nodes[&leader].conf_change(ConfChangeType::AddNode, 4, Some(m4)).await.unwrap();
        c.converge(&[4], "k29", "v").await;
        c.put(4, "from-4", "v").await.unwrap();
        c.converge(&[1, 2, 3, 4], "from-4", "v").await;
        assert!(c.nodes[&1].shared.sm.read().members.contains_key(&4));
        // Remove a follower that is not the leader; the rest go on.
        let gone = (1..=3).find(|id| *id != leader).unwrap();
        c.nodes[&leader].conf_change(ConfChangeType::RemoveNode, gone, None).await.unwrap();
        c.stop(gone);
        c.put(leader, "after-remove", "v").await.unwrap();
        let left: Vec<u64> = (1..=4).filter(|id| *id != gone).collect();
        c.converge(&left, "after-remove", "v").await;
        // A removed id can never come back.
        let again = c.nodes[&leader].conf_change(ConfChangeType::AddNode, gone, Some(member(gone))).await;
        assert!(matches!(again, Err(ProposeError::Rejected(_))), "{again:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_membership_changes_all_apply() {
        // Raft takes one membership change at a time; the others must wait their turn,
        // whether proposed on the leader or forwarded by a follower, not vanish.
        let mut c = SimCluster::new(3, |_| {});
        let leader = c.leader().await;
        let follower = (1..=3).find(|id| *id != leader).unwrap();
        for id in [4, 5, 6] {
            c.start_empty(id);
        }
        let (a, b, d) = tokio::join!(
            c.nodes[&leader].conf_change(ConfChangeType::AddLearnerNode, 4, Some(member(4))),
            c.nodes[&follower].conf_change(ConfChangeType::AddLearnerNode, 5, Some(member(5))),
            c.nodes[&leader].conf_change(ConfChangeType::AddLearnerNode, 6, Some(member(6))),
        );
        for r in [a, b, d] {
            assert!(matches!(r, Ok(Applied::Members)), "{r:?}");
        }
        let (a, b) = tokio::join!(
            c.nodes[&follower].conf_change(ConfChangeType::AddNode, 4, Some(member(4))),
            c.nodes[&leader].conf_change(ConfChangeType::RemoveNode, 6, None),
        );
        assert!(matches!(a, Ok(Applied::Members)), "{a:?}");
        assert!(matches!(b, Ok(Applied::Members)), "{b:?}");
        let sm = c.nodes[&leader].shared.sm.read();
        assert!(sm.members.get(&4).is_some_and(|m| !m.is_learner));
        assert!(sm.members.get(&5).is_some_and(|m| m.is_learner));
        assert!(!sm.members.contains_key(&6) && sm.removed.contains(&6));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leadership_moves_when_the_leader_dies_and_no_acknowledged_write_is_lost() {
        let mut c = SimCluster::new(3, |_| {});
        let mut acked = Vec::new();
        for round in 0..3 {
            let leader = c.leader().await;
            for i in 0..20 {
                let key = format!("r{round}-{i}");
                if c.put(leader, &key, "v").await.is_ok() {
                    acked.push(key);
                }
            }
            if round < 2 {
                // Cut the leader off for good this round, then bring it back next.
                c.net.isolate(leader);
                let rest: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
                c.leader_among(&rest).await;
                c.net.heal();
            }
        }
        c.stop(0);
        let leader = c.leader().await;
        for key in &acked {
            assert_eq!(c.get(leader, key).await.unwrap().as_deref(), Some("v"), "lost {key}");
        }
    }
}
