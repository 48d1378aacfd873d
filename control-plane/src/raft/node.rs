//! The raft node: one thread that owns the `RawNode`, ticks it, feeds it messages
//! and proposals, and runs the ready loop in raft-rs's documented order.
//!
//! ```text
//!  clients ──propose/read──►┐                     ┌──► transport (peers)
//!  transport ──messages────►│ command channel ──► │ ready loop (this thread)
//!  snapshot thread ─done───►┘                     └──► state machine + watch hub
//! ```
//!
//! Batching: the loop drains every queued command before it processes a ready,
//! so all proposals that arrived during the previous fsync share the next one
//! (group commit); throughput grows with the number of concurrent clients.

use super::log::{LogError, RaftLog};
use crate::store::snapshot;
use crate::store::watch::WatchHub;
use crate::store::{Applied, ApplyError, MemberChangeKind, StateMachine, Voters};
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::RwLock;
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType, Message, Snapshot};
use raft::{RawNode, SnapshotStatus, StateRole};
use rk_proto::store::{InternalRequest, MemberChange, MemberInfo};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Timing and snapshot settings of a raft node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: u64,
    /// One raft tick. Elections time out after `election_ticks` to twice that many
    /// ticks (randomised); leaders send heartbeats every `heartbeat_ticks`.
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Take a snapshot once this many entries were applied since the last one.
    pub snapshot_entries: u64,
    /// Entries kept in the log behind a snapshot, so followers slightly behind catch
    /// up from the log instead of receiving a whole snapshot.
    pub snapshot_catchup_entries: u64,
    /// Most proposals taken into one ready (one fsync).
    pub max_batch: usize,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            id: 1,
            tick: Duration::from_millis(20),
            election_ticks: 10,
            heartbeat_ticks: 1,
            snapshot_entries: 10_000,
            snapshot_catchup_entries: 5_000,
            max_batch: 4096,
        }
    }
}

impl NodeOptions {
    /// The shortest election timeout.
    pub fn election_timeout(&self) -> Duration {
        self.tick * self.election_ticks as u32
    }
}

/// Why a proposal or read did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// No leader is known right now; nothing was proposed, retrying is safe.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// The leader changed while the request was in flight: it may or may not have
    /// been applied.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("{0}")]
    Apply(#[from] ApplyError),
    #[error("etcdserver: {0}")]
    Rejected(String),
    /// This replica leads and another membership change is not applied yet; nothing
    /// was proposed, retrying is safe.
    #[error("etcdserver: another membership change is in progress")]
    ConfChangePending,
}

/// How long a membership change proposed through a follower may go unanswered
/// before it is proposed again (the leader drops one that arrives while another is
/// pending; a committed change applies within a few heartbeats).
const CONF_CHANGE_RETRY: Duration = Duration::from_secs(1);
/// How long to wait before proposing again when the leader says a change is pending.
const CONF_CHANGE_PENDING_WAIT: Duration = Duration::from_millis(20);

pub type ProposeResult = Result<Applied, ProposeError>;

/// Sends raft messages to other replicas. Must never block: a slow or dead peer
/// may lose messages (raft retries), but must not hold up the others.
pub trait Transport: Send + 'static {
    fn send(&self, msgs: Vec<Message>);
    /// The current members and their peer addresses.
    fn set_peers(&self, peers: Vec<(u64, String)>);
}

/// Requests to the raft thread.
pub enum Command {
    Propose {
        id: u64,
        data: Vec<u8>,
        reply: oneshot::Sender<ProposeResult>,
    },
    ConfChange {
        id: u64,
        change: ConfChange,
        reply: oneshot::Sender<ProposeResult>,
    },
    ReadIndex {
        reply: oneshot::Sender<Result<(), ProposeError>>,
    },
    Step(Box<Message>),
    Unreachable(u64),
    SnapshotStatus(u64, SnapshotStatus),
    /// A snapshot was written (and its data's size), or failed (size 0).
    SnapshotWritten(Box<Snapshot>, u64),
    TransferLeader(u64),
    Stop,
}

/// Who leads, as this replica sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leadership {
    pub leader: u64,
    pub term: u64,
    pub role: Role,
    /// This replica was removed from the cluster and has stopped.
    pub removed: bool,
    pub stopped: bool,
    /// Why the raft thread stopped on its own, if its storage failed (a full disk, an
    /// I/O error): the process must then exit with an error, not as if asked to stop.
    pub failure: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    Follower,
    Candidate,
    PreCandidate,
    Leader,
}

impl From<StateRole> for Role {
    fn from(r: StateRole) -> Self {
        match r {
            StateRole::Follower => Role::Follower,
            StateRole::Candidate => Role::Candidate,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Leader => Role::Leader,
        }
    }
}

/// State shared between the raft thread and everyone who reads the store.
pub struct Shared {
    pub id: u64,
    pub sm: Arc<RwLock<StateMachine>>,
    pub hub: Arc<WatchHub>,
    pub leadership: watch::Receiver<Leadership>,
    pub commit_index: AtomicU64,
    pub applied_index: AtomicU64,
    pub log: RaftLog,
    /// On the leader: how far each peer's log matches the leader's, refreshed
    /// every tick (empty elsewhere).
    pub progress: parking_lot::Mutex<HashMap<u64, u64>>,
}

/// A cheap handle to talk to the raft thread.
#[derive(Clone)]
pub struct RaftHandle {
    tx: Sender<Command>,
    pub shared: Arc<Shared>,
    next_id: Arc<AtomicU64>,
    pub request_timeout: Duration,
}

impl RaftHandle {
    fn next_request_id(&self) -> u64 {
        // The replica id in the top 16 bits keeps ids unique across replicas; the
        // counter started at a random point so a restart does not reuse recent ids.
        (self.shared.id << 48) | (self.next_id.fetch_add(1, Ordering::Relaxed) & ((1 << 48) - 1))
    }

    pub fn send(&self, cmd: Command) -> Result<(), ProposeError> {
        self.tx.send(cmd).map_err(|_| ProposeError::Stopped)
    }

    pub fn leadership(&self) -> Leadership {
        self.shared.leadership.borrow().clone()
    }

    /// Waits until some leader is known, or the deadline passes.
    async fn wait_for_leader(&self, deadline: tokio::time::Instant) -> Result<(), ProposeError> {
        let mut rx = self.shared.leadership.clone();
        let wait = rx.wait_for(|l| l.leader != 0 || l.stopped);
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(Ok(l)) if l.stopped => Err(ProposeError::Stopped),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ProposeError::Stopped),
            Err(_) => Err(ProposeError::Timeout),
        }
    }

    /// Replicates one command and returns its result once this replica applied it.
    /// Retries while no leader is known (nothing was proposed then) until the
    /// request timeout.
    pub async fn propose(&self, op: rk_proto::store::internal_request::Op) -> ProposeResult {
        self.propose_fenced(op, 0).await
    }

    /// Like [`propose`](Self::propose), but the command only applies if it was
    /// appended by a leader of term `fence` (0: no fence). A controller that started
    /// leading in term `fence` uses this so nothing it writes after losing the
    /// leadership can take effect.
    pub async fn propose_fenced(&self, op: rk_proto::store::internal_request::Op, fence: u64) -> ProposeResult {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut req = InternalRequest { id: 0, op: Some(op), fence_term: fence };
        loop {
            req.id = self.next_request_id();
            let (reply, rx) = oneshot::channel();
            self.send(Command::Propose { id: req.id, data: req.encode_to_vec(), reply })?;
            match tokio::time::timeout_at(deadline, rx).await {
                Err(_) => return Err(ProposeError::Timeout),
                Ok(Err(_)) => return Err(ProposeError::Stopped),
                Ok(Ok(Err(ProposeError::NoLeader))) => {
                    self.wait_for_leader(deadline).await?;
                    // A leader was just elected; give followers a moment to learn it.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(Ok(result)) => return result,
            }
        }
    }

    /// Proposes a membership change and waits until it is applied here.
    ///
    /// Raft allows one unapplied membership change at a time, and raft-rs turns a
    /// second one into an empty entry without telling anyone, so a change proposed
    /// while another is pending (a joining replica promoting itself while an operator
    /// removes another) is retried: at once when the leader is this replica and says
    /// so, after [`CONF_CHANGE_RETRY`] when a follower forwarded it. Every attempt
    /// carries the same request id, so whichever attempt applies first answers, and a
    /// duplicate that applies later is refused by the membership checks and changes
    /// nothing.
    pub async fn conf_change(
        &self,
        change_type: ConfChangeType,
        node: u64,
        member: Option<MemberInfo>,
    ) -> ProposeResult {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let id = self.next_request_id();
        let mut cc = ConfChange::default();
        cc.set_change_type(change_type);
        cc.node_id = node;
        cc.context = Bytes::from(MemberChange { member, request_id: id }.encode_to_vec());
        loop {
            let (reply, rx) = oneshot::channel();
            self.send(Command::ConfChange { id, change: cc.clone(), reply })?;
            let attempt = deadline.min(tokio::time::Instant::now() + CONF_CHANGE_RETRY);
            match tokio::time::timeout_at(attempt, rx).await {
                Err(_) if attempt == deadline => return Err(ProposeError::Timeout),
                // Possibly dropped by the leader; the same change again.
                Err(_) => {}
                Ok(Err(_)) => return Err(ProposeError::Stopped),
                Ok(Ok(Err(ProposeError::NoLeader))) => self.wait_for_leader(deadline).await?,
                Ok(Ok(Err(ProposeError::ConfChangePending))) => {
                    if tokio::time::Instant::now() + CONF_CHANGE_PENDING_WAIT >= deadline {
                        return Err(ProposeError::Timeout);
                    }
                    tokio::time::sleep(CONF_CHANGE_PENDING_WAIT).await;
                }
                Ok(Ok(result)) => return result,
            }
        }
    }

    /// On the leader: whether a learner's log is close enough to the leader's to be
    /// promoted without stalling the quorum (etcd's 90% rule).
    pub fn learner_caught_up(&self, id: u64) -> bool {
        let commit = self.shared.commit_index.load(Ordering::Relaxed);
        let matched = self.shared.progress.lock().get(&id).copied().unwrap_or(0);
        matched * 10 >= commit * 9
    }

    /// Waits until this replica has applied everything committed before the call
    /// (raft's ReadIndex): a read served after this is linearizable.
    pub async fn read_index(&self) -> Result<(), ProposeError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        loop {
            let (reply, rx) = oneshot::channel();
            self.send(Command::ReadIndex { reply })?;
            match tokio::time::timeout_at(deadline, rx).await {
                Err(_) => return Err(ProposeError::Timeout),
                Ok(Err(_)) => return Err(ProposeError::Stopped),
                Ok(Ok(Err(ProposeError::NoLeader))) => self.wait_for_leader(deadline).await?,
                Ok(Ok(result)) => return result,
            }
        }
    }
}

/// A client waiting for a linearizable read to become safe.
type ReadWaiter = oneshot::Sender<Result<(), ProposeError>>;

struct Waiter {
    reply: oneshot::Sender<ProposeResult>,
    /// The term when proposed: once an entry of a later term is applied, this
    /// proposal can no longer be applied in its own term (see `fail_stale_waiters`).
    term: u64,
}

/// The raft thread's state.
struct Node<T: Transport> {
    raw: RawNode<RaftLog>,
    log: RaftLog,
    opts: NodeOptions,
    shared: Arc<Shared>,
    leadership_tx: watch::Sender<Leadership>,
    transport: T,
    inbox: Receiver<Command>,
    /// For the snapshot thread to report back.
    self_tx: Sender<Command>,
    waiters: HashMap<u64, Waiter>,
    /// Reads not yet sent to raft; sent as one ReadIndex per loop iteration.
    pending_reads: Vec<ReadWaiter>,
    /// ReadIndex requests raft has not answered, by context.
    inflight_reads: HashMap<u64, (Instant, Vec<ReadWaiter>)>,
    /// Reads whose index is known, waiting for the apply to reach it.
    ready_reads: Vec<(u64, Vec<ReadWaiter>)>,
    next_read_ctx: u64,
    applied_term: u64,
    snapshot_in_progress: bool,
    /// Entry bytes appended since the last snapshot, and that snapshot's size: a new
    /// snapshot waits until the log grew by half its size, so writing snapshots never
    /// costs more than about twice writing the log, however large the store.
    log_bytes_since_snapshot: u64,
    last_snapshot_bytes: u64,
    removed: bool,
    /// Set when storage failed (see [`Leadership::failure`]).
    failure: Option<String>,
}

/// The raft thread's command channel. Made before the node starts, because the
/// transport needs the sending half to report back.
pub fn channel() -> (Sender<Command>, Receiver<Command>) {
    crossbeam_channel::unbounded()
}

/// Starts the raft thread. The log and state machine must already be recovered
/// (or bootstrapped); `sm.applied_index` is where applying resumes.
pub fn start<T: Transport>(
    opts: NodeOptions,
    log: RaftLog,
    sm: StateMachine,
    hub: Arc<WatchHub>,
    transport: T,
    (tx, inbox): (Sender<Command>, Receiver<Command>),
    request_timeout: Duration,
) -> Result<(RaftHandle, std::thread::JoinHandle<()>), raft::Error> {
    let applied = sm.applied_index;
    let applied_term = sm.applied_term;
    let config = raft::Config {
        id: opts.id,
        election_tick: opts.election_ticks,
        heartbeat_tick: opts.heartbeat_ticks,
        applied,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        read_only_option: raft::ReadOnlyOption::Safe,
        ..Default::default()
    };
    config.validate()?;
    let logger = slog::Logger::root(super::TracingDrain, slog::o!("raft_id" => opts.id));
    let raw = RawNode::new(&config, log.clone(), &logger)?;
    let (leadership_tx, leadership_rx) = watch::channel(Leadership::default());
    let shared = Arc::new(Shared {
        id: opts.id,
        sm: Arc::new(RwLock::new(sm)),
        hub,
        leadership: leadership_rx,
        commit_index: AtomicU64::new(log.hard_state().commit),
        applied_index: AtomicU64::new(applied),
        log: log.clone(),
        progress: parking_lot::Mutex::new(HashMap::new()),
    });
    transport.set_peers(peer_list(&shared.sm.read()));
    let handle = RaftHandle {
        tx: tx.clone(),
        shared: shared.clone(),
        next_id: Arc::new(AtomicU64::new(rand::random::<u64>() >> 16)),
        request_timeout,
    };
    let mut node = Node {
        raw,
        log,
        opts,
        shared,
        leadership_tx,
        transport,
        inbox,
        self_tx: tx,
        waiters: HashMap::new(),
        pending_reads: Vec::new(),
        inflight_reads: HashMap::new(),
        ready_reads: Vec::new(),
        next_read_ctx: 1,
        applied_term,
        snapshot_in_progress: false,
        log_bytes_since_snapshot: 0,
        last_snapshot_bytes: 0,
        removed: false,
        failure: None,
    };
    let thread = std::thread::Builder::new()
        .name(format!("raft-{}", node.opts.id))
        .spawn(move || node.run())
        .map_err(raft::Error::Io)?;
    Ok((handle, thread))
}

fn peer_list(sm: &StateMachine) -> Vec<(u64, String)> {
    sm.members.values().filter_map(|m| m.peer_urls.first().map(|u| (m.id, u.clone()))).collect()
}

impl<T: Transport> Node<T> {
    fn run(&mut self) {
        let mut next_tick = Instant::now() + self.opts.tick;
        let mut last_sweep = Instant::now();
        loop {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(timeout) {
                Ok(cmd) => {
                    if !self.handle(cmd) {
                        break;
                    }
                    // Take everything else already queued: one ready (and one fsync)
                    // for all of it.
                    let mut taken = 1;
                    while taken < self.opts.max_batch {
                        match self.inbox.try_recv() {
                            Ok(cmd) => {
                                if !self.handle(cmd) {
                                    return self.shutdown();
                                }
                                taken += 1;
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => return self.shutdown(),
                        }
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                next_tick = now + self.opts.tick;
                self.publish_progress();
                self.retry_stale_reads(now);
                if now.duration_since(last_sweep) > Duration::from_secs(1) {
                    // Clients that gave up no longer need an answer.
                    self.waiters.retain(|_, w| !w.reply.is_closed());
                    last_sweep = now;
                }
            }
            self.issue_reads();
            if let Err(e) = self.on_ready() {
                tracing::error!(error = %e, "raft storage failed; stopping this replica");
                self.failure = Some(e.to_string());
                break;
            }
            if self.removed {
                tracing::warn!("this replica was removed from the cluster; stopping");
                break;
            }
        }
        self.shutdown();
    }

    fn shutdown(&mut self) {
        for (_, w) in self.waiters.drain() {
            let _ = w.reply.send(Err(ProposeError::Stopped));
        }
        for r in self.pending_reads.drain(..) {
            let _ = r.send(Err(ProposeError::Stopped));
        }
        self.leadership_tx.send_modify(|l| {
            l.stopped = true;
            l.removed = self.removed;
            l.failure = self.failure.take();
            l.leader = 0;
        });
    }

    /// Handles one command; false means stop.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Propose { id, data, reply } => {
                if !self.leader_known() {
                    let _ = reply.send(Err(ProposeError::NoLeader));
                    return true;
                }
                match self.raw.propose(Vec::new(), data) {
                    Ok(()) => {
                        self.waiters.insert(id, Waiter { reply, term: self.raw.raft.term });
                    }
                    Err(raft::Error::ProposalDropped) => {
                        let _ = reply.send(Err(ProposeError::NoLeader));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ProposeError::Rejected(e.to_string())));
                    }
                }
            }
            Command::ConfChange { id, change, reply } => {
                if !self.leader_known() {
                    let _ = reply.send(Err(ProposeError::NoLeader));
                    return true;
                }
                if self.raw.raft.state == StateRole::Leader && self.raw.raft.has_pending_conf() {
                    let _ = reply.send(Err(ProposeError::ConfChangePending));
                    return true;
                }
                match self.raw.propose_conf_change(Vec::new(), change) {
                    Ok(()) => {
                        self.waiters.insert(id, Waiter { reply, term: self.raw.raft.term });
                    }
                    Err(raft::Error::ProposalDropped) => {
                        let _ = reply.send(Err(ProposeError::NoLeader));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ProposeError::Rejected(e.to_string())));
                    }
                }
            }
            Command::ReadIndex { reply } => self.pending_reads.push(reply),
            Command::Step(msg) => {
                // Messages from unknown peers or stale terms are raft's to ignore.
                if let Err(e) = self.raw.step(*msg) {
                    tracing::debug!(error = %e, "raft ignored a message");
                }
            }
            Command::Unreachable(id) => self.raw.report_unreachable(id),
            Command::SnapshotStatus(id, status) => self.raw.report_snapshot(id, status),
            Command::SnapshotWritten(snap, size) => {
                self.snapshot_in_progress = false;
                if size > 0 {
                    self.last_snapshot_bytes = size;
                    self.log_bytes_since_snapshot = 0;
                }
                let index = snap.get_metadata().index;
                let keep_from = index.saturating_sub(self.opts.snapshot_catchup_entries).max(1);
                if let Err(e) = self.log.compact_to_snapshot(&snap, keep_from) {
                    tracing::error!(error = %e, "cannot compact the raft log after a snapshot");
                } else {
                    tracing::info!(index, "snapshot taken; raft log compacted");
                }
            }
            Command::TransferLeader(to) => self.raw.transfer_leader(to),
            Command::Stop => return false,
        }
        true
    }

    fn publish_progress(&mut self) {
        let mut progress = self.shared.progress.lock();
        progress.clear();
        if self.raw.raft.state == StateRole::Leader {
            progress.extend(self.raw.raft.prs().iter().map(|(id, p)| (*id, p.matched)));
        }
    }

    /// Whether a leader is known that is still a member: after the leader's own
    /// removal is applied, proposals forwarded to it would be lost, so callers wait
    /// for the next election instead.
    fn leader_known(&self) -> bool {
        let leader = self.raw.raft.leader_id;
        leader != 0 && self.raw.raft.prs().conf().voters().contains(leader)
    }

    /// Sends the reads gathered since the last iteration as one ReadIndex.
    fn issue_reads(&mut self) {
        if self.pending_reads.is_empty() {
            return;
        }
        if !self.leader_known() {
            for r in self.pending_reads.drain(..) {
                let _ = r.send(Err(ProposeError::NoLeader));
            }
            return;
        }
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        self.raw.read_index(ctx.to_be_bytes().to_vec());
        let batch = std::mem::take(&mut self.pending_reads);
        self.inflight_reads.insert(ctx, (Instant::now(), batch));
    }

    /// Raft drops a ReadIndex when leadership moves; ask again after an election
    /// timeout (the caller's own deadline bounds the wait).
    fn retry_stale_reads(&mut self, now: Instant) {
        let timeout = self.opts.election_timeout();
        let stale: Vec<u64> = self
            .inflight_reads
            .iter()
            .filter(|(_, (at, _))| now.duration_since(*at) > timeout)
            .map(|(k, _)| *k)
            .collect();
        for ctx in stale {
            if let Some((_, batch)) = self.inflight_reads.remove(&ctx) {
                self.pending_reads.extend(batch.into_iter().filter(|r| !r.is_closed()));
            }
        }
    }

    fn on_ready(&mut self) -> Result<(), LogError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        if let Some(ss) = ready.ss() {
            let (leader, role) = (ss.leader_id, Role::from(ss.raft_state));
            let term = self.raw.raft.term;
            self.leadership_tx.send_if_modified(|l| {
                let changed = l.leader != leader || l.role != role || l.term != term;
                l.leader = leader;
                l.role = role;
                l.term = term;
                changed
            });
            if leader != 0 {
                tracing::debug!(leader, term, ?role, "leadership changed");
            }
        }
        // 1. Messages a leader can send before persisting.
        if !ready.messages().is_empty() {
            self.transport.send(ready.take_messages());
        }
        // 2. A snapshot from the leader replaces everything.
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot().clone())?;
        }
        // 3. Apply what is committed.
        let committed = ready.take_committed_entries();
        self.apply_entries(committed);
        // 4 and 5. Persist new entries and the hard state, with one fsync.
        if !ready.entries().is_empty() {
            self.log_bytes_since_snapshot += ready.entries().iter().map(|e| e.data.len() as u64 + 16).sum::<u64>();
            self.log.append(ready.entries())?;
        }
        if let Some(hs) = ready.hs() {
            self.log.set_hard_state(hs)?;
        }
        crate::failpoint::hit("log-before-sync");
        self.log.sync()?;
        crate::failpoint::hit("log-after-sync");
        // Reads whose index is now known.
        for rs in ready.take_read_states() {
            self.read_state(rs.request_ctx.as_ref(), rs.index);
        }
        // 6. Messages that had to wait for persistence (votes, acks).
        if !ready.persisted_messages().is_empty() {
            self.transport.send(ready.take_persisted_messages());
        }
        // 7. Advance, and handle what that released.
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.log.set_commit(commit)?;
        }
        if !light.messages().is_empty() {
            self.transport.send(light.take_messages());
        }
        self.apply_entries(light.take_committed_entries());
        self.raw.advance_apply();
        self.shared.commit_index.store(self.raw.raft.raft_log.committed, Ordering::Relaxed);
        self.release_reads();
        self.maybe_snapshot();
        Ok(())
    }

    fn read_state(&mut self, ctx: &[u8], index: u64) {
        let Ok(ctx) = <[u8; 8]>::try_from(ctx).map(u64::from_be_bytes) else { return };
        if let Some((_, batch)) = self.inflight_reads.remove(&ctx) {
            self.ready_reads.push((index, batch));
        }
    }

    fn release_reads(&mut self) {
        let applied = self.shared.applied_index.load(Ordering::Relaxed);
        self.ready_reads.retain_mut(|(index, batch)| {
            if *index > applied {
                return true;
            }
            for r in batch.drain(..) {
                let _ = r.send(Ok(()));
            }
            false
        });
    }

    fn install_snapshot(&mut self, snap: Snapshot) -> Result<(), LogError> {
        let meta = snap.get_metadata().clone();
        let sm = match restore(&snap) {
            Ok(sm) => sm,
            Err(e) => {
                // The leader sent bytes we cannot read; keep our state and let raft
                // retry rather than install something we cannot serve.
                tracing::error!(error = %e, "refusing a snapshot that does not decode");
                return Ok(());
            }
        };
        self.log.install_snapshot(&snap)?;
        self.log.release_snapshot_data();
        self.applied_term = meta.term;
        let peers = peer_list(&sm);
        {
            let mut guard = self.shared.sm.write();
            *guard = sm;
            // Watchers must replay from the new history (or learn it was compacted).
            self.shared.hub.resync_all();
        }
        self.transport.set_peers(peers);
        self.shared.applied_index.store(meta.index, Ordering::Relaxed);
        // Whatever this replica proposed is either inside the snapshot or lost; it
        // cannot tell which.
        for (_, w) in self.waiters.drain() {
            let _ = w.reply.send(Err(ProposeError::LeaderChanged));
        }
        tracing::info!(index = meta.index, term = meta.term, "installed a snapshot from the leader");
        Ok(())
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) {
        let Some(last) = entries.last() else { return };
        crate::failpoint::hit("apply-before");
        let (last_index, last_term) = (last.index, last.term);
        let mut members_changed = false;
        {
            let sm_lock = self.shared.sm.clone();
            let mut sm = sm_lock.write();
            let mut events = Vec::new();
            for entry in entries {
                if entry.index <= sm.applied_index {
                    continue;
                }
                match entry.get_entry_type() {
                    EntryType::EntryNormal if entry.data.is_empty() => {}
                    EntryType::EntryNormal => match InternalRequest::decode(&entry.data[..]) {
                        Ok(req) => {
                            let (result, evs) = sm.apply(&req, entry.term);
                            events.extend(evs);
                            if let Some(w) = self.waiters.remove(&req.id) {
                                let _ = w.reply.send(result.map_err(ProposeError::Apply));
                            }
                        }
                        Err(e) => tracing::error!(index = entry.index, error = %e, "skipping an undecodable entry"),
                    },
                    EntryType::EntryConfChange => {
                        members_changed |= self.apply_conf_change(&mut sm, &entry);
                    }
                    EntryType::EntryConfChangeV2 => {
                        tracing::error!(index = entry.index, "skipping an unsupported joint configuration change");
                    }
                }
                sm.applied_index = entry.index;
                sm.applied_term = entry.term;
            }
            let revision = sm.mvcc.current_revision();
            self.shared.hub.notify(&events, revision);
            if members_changed {
                self.transport.set_peers(peer_list(&sm));
            }
        }
        self.applied_term = last_term;
        self.shared.applied_index.store(last_index, Ordering::Relaxed);
        self.fail_stale_waiters(last_term);
    }

    /// A proposal made in term `t` that was not applied by the time an entry of a
    /// later term is applied can only ever be applied in that later term if some
    /// replica re-forwarded it; this replica stops waiting and reports the outcome
    /// as unknown, so clients learn of a failover quickly instead of timing out.
    fn fail_stale_waiters(&mut self, applied_term: u64) {
        if self.waiters.values().all(|w| w.term >= applied_term) {
            return;
        }
        let stale: Vec<u64> = self.waiters.iter().filter(|(_, w)| w.term < applied_term).map(|(id, _)| *id).collect();
        for id in stale {
            if let Some(w) = self.waiters.remove(&id) {
                let _ = w.reply.send(Err(ProposeError::LeaderChanged));
            }
        }
    }

    /// Applies a membership change. Returns whether the member list changed.
    fn apply_conf_change(&mut self, sm: &mut StateMachine, entry: &Entry) -> bool {
        let mut cc = ConfChange::default();
        if let Err(e) = cc.merge_from_bytes(&entry.data) {
            tracing::error!(index = entry.index, error = %e, "skipping an undecodable configuration change");
            return false;
        }
        let ctx = MemberChange::decode(&cc.context[..]).unwrap_or_default();
        let node = cc.node_id;
        let kind = match cc.get_change_type() {
            ConfChangeType::AddNode => MemberChangeKind::Add,
            ConfChangeType::AddLearnerNode => MemberChangeKind::AddLearner,
            ConfChangeType::RemoveNode => MemberChangeKind::Remove,
        };
        // The same checks on every replica, from replicated state only, so all
        // replicas accept or refuse the change alike.
        let refusal = match kind {
            _ if node == 0 => Some("member id 0 is not valid"),
            _ if sm.removed.contains(&node) => Some("membership: ID removed"),
            MemberChangeKind::Add if sm.members.get(&node).is_some_and(|m| !m.is_learner) => {
                Some("membership: ID exists")
            }
            MemberChangeKind::AddLearner if sm.members.contains_key(&node) => Some("membership: ID exists"),
            MemberChangeKind::Remove if !sm.members.contains_key(&node) => Some("membership: member not found"),
            _ => None,
        };
        let waiter = self.waiters.remove(&ctx.request_id);
        if let Some(reason) = refusal {
            if let Some(w) = waiter {
                let _ = w.reply.send(Err(ProposeError::Rejected(reason.to_string())));
            }
            return false;
        }
        match self.raw.apply_conf_change(&cc) {
            Ok(cs) => {
                self.log.set_conf_state(cs.clone());
                sm.voters = Voters { voters: cs.voters.clone(), learners: cs.learners.clone() };
                sm.apply_member_change(kind, ctx.member, node);
                if kind == MemberChangeKind::Remove && node == self.opts.id {
                    self.removed = true;
                }
                if kind == MemberChangeKind::Remove && node == self.raw.raft.leader_id {
                    // The leader is gone; say so until the next election names one.
                    self.leadership_tx.send_modify(|l| l.leader = 0);
                }
                if let Some(w) = waiter {
                    let _ = w.reply.send(Ok(Applied::Members));
                }
                tracing::info!(node, ?kind, voters = ?cs.voters, learners = ?cs.learners, "membership changed");
                true
            }
            Err(e) => {
                if let Some(w) = waiter {
                    let _ = w.reply.send(Err(ProposeError::Rejected(e.to_string())));
                }
                false
            }
        }
    }

    /// Starts a snapshot on another thread once enough was applied since the last.
    fn maybe_snapshot(&mut self) {
        let applied = self.shared.applied_index.load(Ordering::Relaxed);
        if self.snapshot_in_progress || applied <= self.log.snapshot_index() {
            return;
        }
        let due = applied >= self.log.snapshot_index() + self.opts.snapshot_entries
            && self.log_bytes_since_snapshot >= self.last_snapshot_bytes / 2;
        if !due && !self.log.take_snapshot_request() {
            return;
        }
        self.snapshot_in_progress = true;
        // Cloning is O(1): the persistent maps share structure until changed.
        let image = self.shared.sm.read().clone();
        let conf_state = self.log.conf_state();
        let dir: Option<PathBuf> = self.log.snapshot_dir();
        let tx = self.self_tx.clone();
        let spawned = std::thread::Builder::new().name("snapshot".into()).spawn(move || {
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = image.applied_index;
            snap.mut_metadata().term = image.applied_term;
            snap.mut_metadata().set_conf_state(conf_state);
            snap.data = snapshot::encode(&image);
            let size = snap.data.len() as u64;
            drop(image);
            if let Some(dir) = dir {
                if let Err(e) = super::log::write_local_snapshot(&dir, &snap) {
                    tracing::error!(error = %e, "writing a snapshot failed");
                    let _ = tx.send(Command::SnapshotWritten(Box::default(), 0));
                    return;
                }
                // The file has it; do not keep a second copy in memory.
                snap.data = Bytes::new();
            }
            let _ = tx.send(Command::SnapshotWritten(Box::new(snap), size));
        });
        if spawned.is_err() {
            self.snapshot_in_progress = false;
        }
    }
}

/// The first raft snapshot of a new cluster (index 1, term 1): its founding members
/// as voters, and a state machine that knows them. Every founding replica builds the
/// same bytes from the same `--peers`, so their logs agree from the start.
pub fn initial_snapshot(cluster_id: u64, members: &[MemberInfo]) -> Snapshot {
    let mut sm = StateMachine::new(cluster_id);
    for m in members {
        sm.members.insert(m.id, m.clone());
    }
    founding_snapshot(&sm)
}

/// The first snapshot of a new cluster whose state starts as `sm` (empty, or a
/// restored backup): index 1, term 1, every member of `sm` a voter.
pub fn founding_snapshot(sm: &StateMachine) -> Snapshot {
    let mut snap = Snapshot::default();
    snap.mut_metadata().index = 1;
    snap.mut_metadata().term = 1;
    snap.mut_metadata().mut_conf_state().voters = sm.members.keys().copied().collect();
    snap.data = snapshot::encode(sm);
    snap
}

/// The state machine a snapshot holds, positioned at the snapshot's index.
pub fn restore(snap: &Snapshot) -> Result<StateMachine, snapshot::DecodeError> {
    let meta = snap.get_metadata();
    let cs = meta.get_conf_state();
    let mut sm = snapshot::decode(&snap.data, Voters { voters: cs.voters.clone(), learners: cs.learners.clone() })?;
    sm.applied_index = meta.index;
    sm.applied_term = meta.term;
    Ok(sm)
}
