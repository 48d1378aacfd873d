//! The lease clock: when leases expire, and keeping them alive.
//!
//! Which leases exist (and their keys) is replicated state; *when* each expires is
//! not: only the leader keeps expiry times, on its own monotonic clock, and revokes
//! expired leases by proposing `LeaseRevoke` like any client. A new leader starts
//! every lease's clock afresh (etcd does the same), so a failover can extend a
//! lease by up to its TTL but never cut one short. Keep-alives and time-to-live
//! queries that reach a follower are forwarded to the leader over the peer port.

use crate::raft::node::{ProposeError, RaftHandle, Role};
use crate::raft::transport::LeaseForwarding;
use parking_lot::Mutex;
use rk_proto::etcdserverpb::LeaseRevokeRequest;
use rk_proto::peer::peer_client::PeerClient;
use rk_proto::peer::{LeaseRenewRequest, LeaseRenewResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse};
use rk_proto::store::internal_request::Op;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the leader looks for expired leases.
const CHECK_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("etcdserver: requested lease not found")]
    NotFound,
    #[error("{0}")]
    Raft(#[from] ProposeError),
    #[error("etcdserver: cannot reach the leader to renew the lease: {0}")]
    Forward(String),
}

/// Remaining and granted TTL of a lease, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeToLive {
    pub remaining: i64,
    pub granted: i64,
}

pub struct Lessor {
    raft: RaftHandle,
    /// Shortest TTL granted (a lease must outlive an election).
    pub min_ttl: i64,
    state: Mutex<ClockState>,
    /// Connections to the leader's peer port, by address.
    clients: Mutex<HashMap<String, PeerClient<tonic::transport::Channel>>>,
    /// How the leader's peer port is dialed (mutual TLS unless `--insecure-dev`).
    dialer: crate::tls::Dialer,
}

#[derive(Default)]
struct ClockState {
    /// The term in which this replica last became leader (0: not leading).
    leading_term: u64,
    expiries: HashMap<i64, Instant>,
    /// Revocations proposed but not yet applied.
    revoking: HashSet<i64>,
}

impl Lessor {
    pub fn new(raft: RaftHandle, min_ttl: i64, dialer: crate::tls::Dialer) -> Arc<Self> {
        Arc::new(Self { raft, min_ttl, state: Mutex::new(ClockState::default()), clients: Mutex::default(), dialer })
    }

    /// Runs forever: on the leader, revokes leases whose time is up.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for id in self.expired() {
                let me = self.clone();
                tokio::spawn(async move {
                    let result = me.raft.propose(Op::LeaseRevoke(LeaseRevokeRequest { id })).await;
                    if let Err(e) = &result
                        && !matches!(e, ProposeError::Apply(_))
                    {
                        tracing::debug!(lease = id, error = %e, "revoking an expired lease failed; will retry");
                    }
                    me.state.lock().revoking.remove(&id);
                });
            }
        }
    }

    /// Leases past their time, if this replica leads. Also starts the clock of
    /// leases it has not seen yet, and forgets leases that are gone.
    fn expired(&self) -> Vec<i64> {
        let leadership = self.raft.leadership();
        let mut st = self.state.lock();
        if leadership.role != Role::Leader {
            st.leading_term = 0;
            st.expiries.clear();
            return Vec::new();
        }
        if st.leading_term != leadership.term {
            // Newly leading: every lease gets its full TTL from now.
            st.leading_term = leadership.term;
            st.expiries.clear();
        }
        let now = Instant::now();
        let sm = self.raft.shared.sm.read();
        let mut out = Vec::new();
        st.expiries.retain(|id, _| sm.leases.contains_key(id));
        for (id, lease) in sm.leases.iter() {
            let ttl = Duration::from_secs(lease.ttl.max(0) as u64);
            let expiry = *st.expiries.entry(*id).or_insert(now + ttl);
            if expiry <= now && !st.revoking.contains(id) {
                out.push(*id);
            }
        }
        for id in &out {
            st.revoking.insert(*id);
        }
        out
    }

    /// Restarts a lease's clock on the leader; answers the granted TTL.
    async fn renew_here(&self, id: i64) -> Result<i64, LeaseError> {
        // Confirms leadership and that this replica has applied everything
        // committed, so a lease granted a moment ago is known here.
        self.raft.read_index().await?;
        let ttl = self.raft.shared.sm.read().lease(id).map(|l| l.ttl).ok_or(LeaseError::NotFound)?;
        let mut st = self.state.lock();
        if st.revoking.contains(&id) {
            return Err(LeaseError::NotFound);
        }
        st.expiries.insert(id, Instant::now() + Duration::from_secs(ttl.max(0) as u64));
        Ok(ttl)
    }

    fn time_to_live_here(&self, id: i64) -> Result<TimeToLive, LeaseError> {
        let granted = self.raft.shared.sm.read().lease(id).map(|l| l.ttl).ok_or(LeaseError::NotFound)?;
        let st = self.state.lock();
        let remaining = match st.expiries.get(&id) {
            Some(at) => at.saturating_duration_since(Instant::now()).as_secs_f64().ceil() as i64,
            None => granted,
        };
        Ok(TimeToLive { remaining, granted })
    }

    /// Starts the clock of a lease just granted through this replica (when leading).
    pub fn granted(&self, id: i64, ttl: i64) {
        if self.raft.leadership().role == Role::Leader {
            self.state.lock().expiries.insert(id, Instant::now() + Duration::from_secs(ttl.max(0) as u64));
        }
    }

    async fn leader_client(&self) -> Result<PeerClient<tonic::transport::Channel>, LeaseError> {
        let leader = self.raft.leadership().leader;
        if leader == 0 {
            return Err(ProposeError::NoLeader.into());
        }
        let addr = {
            let sm = self.raft.shared.sm.read();
            sm.members.get(&leader).and_then(|m| m.peer_urls.first().cloned())
        }
        .ok_or_else(|| LeaseError::Forward(format!("no address known for leader {leader}")))?;
        if let Some(c) = self.clients.lock().get(&addr) {
            return Ok(c.clone());
        }
        let client = crate::raft::transport::connect(&addr, leader, &self.dialer)
            .await
            .map_err(|e| LeaseError::Forward(e.to_string()))?;
        self.clients.lock().insert(addr, client.clone());
        Ok(client)
    }

    /// Keeps a lease alive: on the leader directly, elsewhere through the leader.
    pub async fn renew(&self, id: i64) -> Result<i64, LeaseError> {
        for _ in 0..3 {
            if self.raft.leadership().role == Role::Leader {
                return self.renew_here(id).await;
            }
            let mut client = self.leader_client().await?;
            let resp = client
                .lease_renew(LeaseRenewRequest { id })
                .await
                .map_err(|e| LeaseError::Forward(e.message().to_string()))?;
            let resp = resp.into_inner();
            if resp.not_leader {
                // Leadership moved under us; look again.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            return if resp.ttl > 0 { Ok(resp.ttl) } else { Err(LeaseError::NotFound) };
        }
        Err(ProposeError::LeaderChanged.into())
    }

    pub async fn time_to_live(&self, id: i64) -> Result<TimeToLive, LeaseError> {
        for _ in 0..3 {
            if self.raft.leadership().role == Role::Leader {
                self.raft.read_index().await?;
                return self.time_to_live_here(id);
            }
            let mut client = self.leader_client().await?;
            let resp = client
                .lease_time_to_live(LeaseTimeToLiveRequest { id })
                .await
                .map_err(|e| LeaseError::Forward(e.message().to_string()))?
                .into_inner();
            if resp.not_leader {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            return if resp.found {
                Ok(TimeToLive { remaining: resp.ttl, granted: resp.granted_ttl })
            } else {
                Err(LeaseError::NotFound)
            };
        }
        Err(ProposeError::LeaderChanged.into())
    }
}

#[tonic::async_trait]
impl LeaseForwarding for Lessor {
    async fn renew(&self, id: i64) -> LeaseRenewResponse {
        if self.raft.leadership().role != Role::Leader {
            return LeaseRenewResponse { ttl: 0, not_leader: true };
        }
        match self.renew_here(id).await {
            Ok(ttl) => LeaseRenewResponse { ttl, not_leader: false },
            Err(LeaseError::NotFound) => LeaseRenewResponse { ttl: 0, not_leader: false },
            Err(_) => LeaseRenewResponse { ttl: 0, not_leader: true },
        }
    }

    async fn time_to_live(&self, id: i64) -> LeaseTimeToLiveResponse {
        if self.raft.leadership().role != Role::Leader {
            return LeaseTimeToLiveResponse { not_leader: true, ..Default::default() };
        }
        if self.raft.read_index().await.is_err() {
            return LeaseTimeToLiveResponse { not_leader: true, ..Default::default() };
        }
        match self.time_to_live_here(id) {
            Ok(t) => {
                LeaseTimeToLiveResponse { found: true, ttl: t.remaining, granted_ttl: t.granted, not_leader: false }
            }
            Err(_) => LeaseTimeToLiveResponse::default(),
        }
    }
}
