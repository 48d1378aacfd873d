//! etcd's Cluster service: membership changes go through raft configuration
//! changes; the member list is replicated state.
//!
//! Member ids: etcd picks random 64-bit ids; rk gives the next unused small
//! number, so ids stay readable (`rk-server --id 4`). A joining `rk-server` may ask
//! for a specific id with the `x-rk-member-id` request header.

use super::{EtcdApi, propose_status};
use crate::raft::node::{ProposeError, Role};
use raft::eraftpb::ConfChangeType;
use rk_proto::etcdserverpb::cluster_server::{Cluster, ClusterServer};
use rk_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse, MemberPromoteRequest,
    MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse,
};
use rk_proto::store::internal_request::Op;
use rk_proto::store::{MemberInfo, MemberPeerUrls};
use tonic::{Request, Response, Status};

/// Request header a joining replica uses to ask for its member id.
pub const MEMBER_ID_HEADER: &str = "x-rk-member-id";

pub fn server(api: EtcdApi) -> ClusterServer<EtcdApi> {
    ClusterServer::new(api)
}

fn to_member(m: &MemberInfo) -> Member {
    Member {
        id: m.id,
        name: m.name.clone(),
        peer_ur_ls: m.peer_urls.clone(),
        client_ur_ls: m.client_urls.clone(),
        is_learner: m.is_learner,
    }
}

fn check_urls(urls: &[String]) -> Result<(), Status> {
    if urls.is_empty() {
        return Err(Status::invalid_argument("etcdserver: member peer URLs are not provided"));
    }
    for u in urls {
        let hostport = u.strip_prefix("http://").or_else(|| u.strip_prefix("https://")).unwrap_or(u);
        if hostport.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
            return Err(Status::invalid_argument(format!(
                "etcdserver: peer URL {u:?} is not valid; use host:port or http://host:port"
            )));
        }
    }
    Ok(())
}

impl EtcdApi {
    fn members(&self) -> Vec<Member> {
        self.raft.shared.sm.read().members.values().map(to_member).collect()
    }
}

#[tonic::async_trait]
impl Cluster for EtcdApi {
    async fn member_add(&self, request: Request<MemberAddRequest>) -> Result<Response<MemberAddResponse>, Status> {
        let wanted_id = match request.metadata().get(MEMBER_ID_HEADER) {
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|id| *id > 0 && *id < (1 << 16))
                    .ok_or_else(|| {
                        Status::invalid_argument(format!("{MEMBER_ID_HEADER} must be a number from 1 to 65535"))
                    })?,
            ),
            None => None,
        };
        let req = request.into_inner();
        check_urls(&req.peer_ur_ls)?;
        self.raft.read_index().await.map_err(propose_status)?;
        let id = {
            let sm = self.raft.shared.sm.read();
            if sm.members.values().any(|m| m.peer_urls.iter().any(|u| req.peer_ur_ls.contains(u))) {
                return Err(Status::failed_precondition("etcdserver: Peer URLs already exists"));
            }
            match wanted_id {
                Some(id) if sm.members.contains_key(&id) => {
                    return Err(Status::failed_precondition("etcdserver: member ID already exist"));
                }
                Some(id) if sm.removed.contains(&id) => {
                    return Err(Status::failed_precondition(
                        "etcdserver: member ID was used by a removed member and cannot be reused",
                    ));
                }
                Some(id) => id,
                None => sm.members.keys().chain(sm.removed.iter()).max().copied().unwrap_or(0) + 1,
            }
        };
        let member =
            MemberInfo { id, peer_urls: req.peer_ur_ls.clone(), is_learner: req.is_learner, ..Default::default() };
        let change = if req.is_learner { ConfChangeType::AddLearnerNode } else { ConfChangeType::AddNode };
        self.raft.conf_change(change, id, Some(member.clone())).await.map_err(propose_status)?;
        Ok(Response::new(MemberAddResponse {
            header: Some(self.header(self.current_revision())),
            member: Some(to_member(&member)),
            members: self.members(),
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let id = request.into_inner().id;
        self.raft.read_index().await.map_err(propose_status)?;
        if !self.raft.shared.sm.read().members.contains_key(&id) {
            return Err(Status::not_found("etcdserver: member not found"));
        }
        // Removing the leader leaves the cluster leaderless for an election timeout
        // and loses writes in flight to it; hand leadership over first.
        if self.raft.leadership().leader == id {
            let target = {
                let sm = self.raft.shared.sm.read();
                let me = self.raft.shared.id;
                let voters = &sm.voters.voters;
                if me != id && voters.contains(&me) { Some(me) } else { voters.iter().copied().find(|v| *v != id) }
            };
            if let Some(target) = target {
                let _ = self.raft.send(crate::raft::node::Command::TransferLeader(target));
                let mut rx = self.raft.shared.leadership.clone();
                let wait = self.raft.request_timeout.min(std::time::Duration::from_secs(2));
                let _ = tokio::time::timeout(wait, rx.wait_for(|l| l.leader != id && l.leader != 0)).await;
            }
        }
        match self.raft.conf_change(ConfChangeType::RemoveNode, id, None).await {
            Ok(_) => {}
            // Removing this replica itself: it applied the change and stopped.
            Err(ProposeError::Stopped) if id == self.raft.shared.id => {}
            Err(e) => return Err(propose_status(e)),
        }
        Ok(Response::new(MemberRemoveResponse {
            header: Some(self.header(self.current_revision())),
            members: self.members(),
        }))
    }

    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let req = request.into_inner();
        check_urls(&req.peer_ur_ls)?;
        self.raft
            .propose(Op::MemberPeerUrls(MemberPeerUrls { id: req.id, peer_urls: req.peer_ur_ls }))
            .await
            .map_err(propose_status)?;
        Ok(Response::new(MemberUpdateResponse {
            header: Some(self.header(self.current_revision())),
            members: self.members(),
        }))
    }

    async fn member_list(&self, request: Request<MemberListRequest>) -> Result<Response<MemberListResponse>, Status> {
        if request.into_inner().linearizable {
            self.raft.read_index().await.map_err(propose_status)?;
        }
        Ok(Response::new(MemberListResponse {
            header: Some(self.header(self.current_revision())),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let id = request.into_inner().id;
        self.raft.read_index().await.map_err(propose_status)?;
        let member = self.raft.shared.sm.read().members.get(&id).cloned();
        let Some(member) = member else { return Err(Status::not_found("etcdserver: member not found")) };
        if !member.is_learner {
            return Err(Status::failed_precondition("etcdserver: can only promote a learner member"));
        }
        // Promoting a learner that is far behind would stall the cluster's quorum.
        // The leader knows how far behind it is; elsewhere the joining replica itself
        // waits until it has caught up before it asks (see `server::join`).
        if self.raft.leadership().role == Role::Leader && !self.raft.learner_caught_up(id) {
            return Err(Status::failed_precondition(
                "etcdserver: can only promote a learner member which is in sync with leader",
            ));
        }
        self.raft.conf_change(ConfChangeType::AddNode, id, Some(member)).await.map_err(propose_status)?;
        Ok(Response::new(MemberPromoteResponse {
            header: Some(self.header(self.current_revision())),
            members: self.members(),
        }))
    }
}
