//! etcd's Maintenance service: Status (what `etcdctl endpoint status` shows), alarms,
//! hashes for consistency checks, leadership transfer, and snapshots for backups.

use super::{EtcdApi, propose_status, revision_status};
use crate::raft::node::{Command, Role};
use crate::store::mvcc::{KeyRange, RangeOptions};
use futures::Stream;
use rk_proto::etcdserverpb::maintenance_server::{Maintenance, MaintenanceServer};
use rk_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, DowngradeRequest, DowngradeResponse,
    HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse, SnapshotRequest,
    SnapshotResponse, StatusRequest, StatusResponse, alarm_request::AlarmAction,
};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Bytes of snapshot per streamed message (etcd sends 32 KiB chunks).
const SNAPSHOT_CHUNK: usize = 32 * 1024;

/// The etcd API version rk speaks; clients use it to pick features.
pub const ETCD_API_VERSION: &str = "3.5.0";

pub fn server(api: EtcdApi) -> MaintenanceServer<EtcdApi> {
    MaintenanceServer::new(api)
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

impl EtcdApi {
    /// crc32 over every key's versions up to `revision` (0: current): equal on
    /// replicas that applied the same history. Not etcd's byte-level backend hash.
    fn hash_kv(&self, revision: i64) -> Result<(u32, i64, i64), Status> {
        let sm = self.raft.shared.sm.read();
        let at = if revision <= 0 { sm.mvcc.current_revision() } else { revision };
        let opts = RangeOptions { revision: at, ..Default::default() };
        let all = KeyRange::new(bytes::Bytes::from_static(&[0]), bytes::Bytes::from_static(&[0]));
        let result = sm.mvcc.range(&all, &opts).map_err(revision_status)?;
        let mut h = crc32fast::Hasher::new();
        for kv in &result.kvs {
            h.update(&kv.key);
            h.update(&kv.value);
            h.update(&kv.mod_revision.to_le_bytes());
            h.update(&kv.create_revision.to_le_bytes());
            h.update(&kv.version.to_le_bytes());
            h.update(&kv.lease.to_le_bytes());
        }
        Ok((h.finalize(), sm.mvcc.compact_revision(), at))
    }
}

#[tonic::async_trait]
impl Maintenance for EtcdApi {
    async fn alarm(&self, request: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        match AlarmAction::try_from(request.into_inner().action) {
            // rk raises no alarms (no space quota, no corruption alarm: a corrupt
            // replica refuses to start instead).
            Ok(AlarmAction::Get) | Ok(AlarmAction::Deactivate) => {
                Ok(Response::new(AlarmResponse { header: Some(self.header(self.current_revision())), alarms: vec![] }))
            }
            _ => Err(Status::unimplemented("rk does not support raising alarms by hand")),
        }
    }

    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let shared = &self.raft.shared;
        let leadership = self.raft.leadership();
        let (in_use, is_learner) = {
            let sm = shared.sm.read();
            (sm.mvcc.approximate_size() as i64, sm.voters.learners.contains(&shared.id))
        };
        Ok(Response::new(StatusResponse {
            header: Some(self.header(self.current_revision())),
            version: ETCD_API_VERSION.into(),
            db_size: shared.log.disk_size() as i64,
            leader: leadership.leader,
            raft_index: shared.commit_index.load(Ordering::Relaxed),
            raft_term: leadership.term,
            raft_applied_index: shared.applied_index.load(Ordering::Relaxed),
            errors: if leadership.leader == 0 { vec!["etcdserver: no leader".into()] } else { vec![] },
            db_size_in_use: in_use,
            is_learner,
            ..Default::default()
        }))
    }

    async fn defragment(&self, _request: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        // The store lives in memory and the raft log is trimmed by snapshots, so there
        // is no backend file to defragment: the call succeeds with nothing to do.
        Ok(Response::new(DefragmentResponse { header: Some(self.header(self.current_revision())) }))
    }

    async fn hash(&self, _request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let (hash, _, rev) = self.hash_kv(0)?;
        Ok(Response::new(HashResponse { header: Some(self.header(rev)), hash }))
    }

    async fn hash_kv(&self, request: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        let (hash, compact_revision, rev) = EtcdApi::hash_kv(self, request.into_inner().revision)?;
        Ok(Response::new(HashKvResponse { header: Some(self.header(rev)), hash, compact_revision, hash_revision: rev }))
    }

    type SnapshotStream = SnapshotStream;

    /// The whole store as of a linearizable point (everything committed before the
    /// call), in rk's snapshot format with etcd's SHA-256 trailer; see
    /// [`crate::backup`]. The state is cloned (persistent maps, so cheaply) and
    /// encoded off the async threads, so applies never wait for a backup.
    async fn snapshot(&self, _request: Request<SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        self.raft.read_index().await.map_err(propose_status)?;
        let sm = self.raft.shared.sm.read().clone();
        let revision = sm.mvcc.current_revision();
        let file = tokio::task::spawn_blocking(move || crate::backup::snapshot_file(&sm))
            .await
            .map_err(|e| Status::internal(format!("encoding the snapshot failed: {e}")))?;
        let header = self.header(revision);
        let total = file.len();
        let file = bytes::Bytes::from(file);
        let chunks: Vec<Result<SnapshotResponse, Status>> = (0..total.div_ceil(SNAPSHOT_CHUNK).max(1))
            .map(|i| {
                let start = i * SNAPSHOT_CHUNK;
                let end = (start + SNAPSHOT_CHUNK).min(total);
                Ok(SnapshotResponse {
                    header: Some(header),
                    remaining_bytes: (total - end) as u64,
                    blob: file.slice(start..end),
                    version: ETCD_API_VERSION.into(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks)) as SnapshotStream))
    }

    async fn move_leader(&self, request: Request<MoveLeaderRequest>) -> Result<Response<MoveLeaderResponse>, Status> {
        let target = request.into_inner().target_id;
        if self.raft.leadership().role != Role::Leader {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        if !self.raft.shared.sm.read().voters.voters.contains(&target) {
            return Err(Status::failed_precondition("etcdserver: bad leader transferee"));
        }
        self.raft.send(Command::TransferLeader(target)).map_err(propose_status)?;
        let mut rx = self.raft.shared.leadership.clone();
        let moved = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|l| l.leader == target)).await;
        match moved {
            Ok(Ok(_)) => Ok(Response::new(MoveLeaderResponse { header: Some(self.header(self.current_revision())) })),
            _ => Err(Status::unavailable("etcdserver: request timed out, leader transfer took too long")),
        }
    }

    async fn downgrade(&self, _request: Request<DowngradeRequest>) -> Result<Response<DowngradeResponse>, Status> {
        Err(Status::unimplemented("rk has no cluster version downgrades"))
    }
}
