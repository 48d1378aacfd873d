//! etcd's Lease service.

use super::{EtcdApi, lease_status, propose_status};
use crate::store::{Applied, MAX_LEASE_TTL};
use futures::Stream;
use rk_proto::etcdserverpb::lease_server::{Lease, LeaseServer};
use rk_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
};
use rk_proto::store::internal_request::Op;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub fn server(api: EtcdApi) -> LeaseServer<EtcdApi> {
    LeaseServer::new(api)
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for EtcdApi {
    async fn lease_grant(&self, request: Request<LeaseGrantRequest>) -> Result<Response<LeaseGrantResponse>, Status> {
        let mut req = request.into_inner();
        if req.ttl > MAX_LEASE_TTL {
            return Err(Status::out_of_range("etcdserver: too large lease TTL"));
        }
        if req.id < 0 {
            return Err(Status::invalid_argument("etcdserver: lease ID must be positive"));
        }
        // The proposer decides what apply must not: the id and the minimum TTL.
        if req.id == 0 {
            req.id = (rand::random::<u64>() >> 1).max(1) as i64;
        }
        req.ttl = req.ttl.max(self.lessor.min_ttl);
        match self.raft.propose(Op::LeaseGrant(req)).await.map_err(propose_status)? {
            Applied::LeaseGrant(mut resp) => {
                self.lessor.granted(resp.id, resp.ttl);
                self.fill(&mut resp.header);
                Ok(Response::new(resp))
            }
            _ => Err(Status::internal("the store answered a lease grant with something else")),
        }
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        match self.raft.propose(Op::LeaseRevoke(request.into_inner())).await.map_err(propose_status)? {
            Applied::LeaseRevoke(mut resp) => {
                self.fill(&mut resp.header);
                Ok(Response::new(resp))
            }
            _ => Err(Status::internal("the store answered a lease revoke with something else")),
        }
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let api = self.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = incoming.next().await {
                // etcd answers TTL 0 for a lease that does not exist (any more).
                let ttl = match api.lessor.renew(req.id).await {
                    Ok(ttl) => ttl,
                    Err(crate::lease::LeaseError::NotFound) => 0,
                    Err(e) => {
                        let _ = tx.send(Err(lease_status(e))).await;
                        return;
                    }
                };
                let resp = LeaseKeepAliveResponse { header: Some(api.header(api.current_revision())), id: req.id, ttl };
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx)) as KeepAliveStream))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        let header = Some(self.header(self.current_revision()));
        match self.lessor.time_to_live(req.id).await {
            Ok(t) => {
                let keys = if req.keys {
                    let sm = self.raft.shared.sm.read();
                    sm.lease(req.id).map(|l| l.keys.iter().cloned().collect()).unwrap_or_default()
                } else {
                    Vec::new()
                };
                Ok(Response::new(LeaseTimeToLiveResponse {
                    header,
                    id: req.id,
                    ttl: t.remaining,
                    granted_ttl: t.granted,
                    keys,
                }))
            }
            // etcd reports a missing lease as TTL -1 ("already expired"), not an error.
            Err(crate::lease::LeaseError::NotFound) => {
                Ok(Response::new(LeaseTimeToLiveResponse { header, id: req.id, ttl: -1, granted_ttl: 0, keys: vec![] }))
            }
            Err(e) => Err(lease_status(e)),
        }
    }

    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.raft.read_index().await.map_err(propose_status)?;
        let sm = self.raft.shared.sm.read();
        let leases = sm.leases.keys().map(|id| LeaseStatus { id: *id }).collect();
        let header = Some(self.header(sm.mvcc.current_revision()));
        Ok(Response::new(LeaseLeasesResponse { header, leases }))
    }
}
