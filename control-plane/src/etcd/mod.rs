//! The etcd v3 gRPC API, served by every replica on its client port.
//!
//! Each service is a thin layer over the replicated store: writes become raft
//! commands ([`crate::raft::node::RaftHandle::propose`]); reads wait for a ReadIndex
//! (linearizable, the default) or read the local state (`serializable`). Errors use
//! etcd's own gRPC codes and messages, which etcd clients recognise.
//!
//! - [`kv`]: Range, Put, DeleteRange, Txn, Compact
//! - [`watch`]: the bidirectional Watch stream
//! - [`lease`]: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases
//! - [`cluster`]: MemberList, MemberAdd, MemberRemove, MemberUpdate, MemberPromote
//! - [`maintenance`]: Status, Alarm, HashKV, Hash, MoveLeader, Defragment
//!
//! Calls rk does not implement (Auth, Maintenance.Snapshot, Downgrade) answer
//! `UNIMPLEMENTED` with a message saying so.

pub mod cluster;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod watch;

use crate::lease::{LeaseError, Lessor};
use crate::raft::node::{ProposeError, RaftHandle};
use crate::store::ApplyError;
use crate::store::mvcc::RevisionError;
use rk_proto::etcdserverpb::ResponseHeader;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;

/// etcd's default `--max-request-bytes`: larger requests are refused.
pub const MAX_REQUEST_BYTES: usize = 3 * 512 * 1024;
/// gRPC frames may exceed the request limit by this much (etcd allows the same),
/// so a request just over the limit gets etcd's clear "request is too large".
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// The etcd API of one replica; cheap to clone.
#[derive(Clone)]
pub struct EtcdApi {
    pub raft: RaftHandle,
    pub lessor: Arc<Lessor>,
    /// How often watches that asked for progress notifications get one.
    pub progress_interval: Duration,
}

impl EtcdApi {
    pub fn new(raft: RaftHandle, lessor: Arc<Lessor>, progress_interval: Duration) -> Self {
        Self { raft, lessor, progress_interval }
    }

    /// A response header for this replica at store revision `revision`.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        let cluster_id = self.raft.shared.sm.read().cluster_id;
        ResponseHeader { cluster_id, member_id: self.raft.shared.id, revision, raft_term: self.raft.leadership().term }
    }

    /// Completes a header a state machine answer carried (it knows the revision).
    pub fn fill(&self, header: &mut Option<ResponseHeader>) {
        let revision = header.as_ref().map_or(0, |h| h.revision);
        *header = Some(self.header(revision));
    }

    pub fn current_revision(&self) -> i64 {
        self.raft.shared.sm.read().mvcc.current_revision()
    }
}

/// Refuses requests over etcd's size limit with etcd's message.
pub fn check_size(len: usize) -> Result<(), Status> {
    if len > MAX_REQUEST_BYTES {
        return Err(Status::invalid_argument(format!(
            "etcdserver: request is too large ({len} bytes; the limit is {MAX_REQUEST_BYTES} bytes)"
        )));
    }
    Ok(())
}

pub fn apply_status(e: &ApplyError) -> Status {
    let msg = e.to_string();
    match e {
        ApplyError::DuplicateKey | ApplyError::KeyNotFound => Status::invalid_argument(msg),
        ApplyError::LeaseNotFound | ApplyError::MemberNotFound => Status::not_found(msg),
        ApplyError::LeaseExists | ApplyError::Fenced { .. } => Status::failed_precondition(msg),
        ApplyError::LeaseTtlTooLarge | ApplyError::Revision(_) => Status::out_of_range(msg),
    }
}

pub fn propose_status(e: ProposeError) -> Status {
    match &e {
        ProposeError::Apply(a) => apply_status(a),
        ProposeError::Rejected(_) => Status::failed_precondition(e.to_string()),
        ProposeError::Timeout => Status::unavailable(e.to_string()),
        ProposeError::NoLeader
        | ProposeError::LeaderChanged
        | ProposeError::Stopped
        | ProposeError::ConfChangePending => Status::unavailable(e.to_string()),
    }
}

pub fn revision_status(e: RevisionError) -> Status {
    apply_status(&ApplyError::Revision(e))
}

pub fn lease_status(e: LeaseError) -> Status {
    match e {
        LeaseError::NotFound => Status::not_found(e.to_string()),
        LeaseError::Raft(p) => propose_status(p),
        LeaseError::Forward(_) => Status::unavailable(e.to_string()),
    }
}
