//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact.

use super::{EtcdApi, apply_status, check_size, propose_status};
use crate::store::{self, Applied};
use prost::Message as _;
use rk_proto::etcdserverpb::kv_server::{Kv, KvServer};
use rk_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, TxnRequest, TxnResponse, request_op,
};
use rk_proto::store::internal_request::Op;
use tonic::{Request, Response, Status};

pub fn server(api: EtcdApi) -> KvServer<EtcdApi> {
    KvServer::new(api)
        .max_decoding_message_size(super::MAX_REQUEST_BYTES + super::GRPC_OVERHEAD_BYTES)
        .max_encoding_message_size(usize::MAX)
}

fn unexpected(what: &str) -> Status {
    Status::internal(format!("the store answered a {what} with something else"))
}

fn check_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("etcdserver: key is not provided"));
    }
    Ok(())
}

/// Whether a txn only reads (then it needs no raft round, only a ReadIndex).
fn read_only(ops: &[RequestOp]) -> bool {
    ops.iter().all(|op| match &op.request {
        Some(request_op::Request::RequestRange(_)) | None => true,
        Some(request_op::Request::RequestTxn(t)) => read_only(&t.success) && read_only(&t.failure),
        _ => false,
    })
}

fn check_ops(ops: &[RequestOp]) -> Result<(), Status> {
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestPut(p)) => check_key(&p.key)?,
            Some(request_op::Request::RequestDeleteRange(d)) => check_key(&d.key)?,
            Some(request_op::Request::RequestRange(r)) => check_key(&r.key)?,
            Some(request_op::Request::RequestTxn(t)) => {
                check_ops(&t.success)?;
                check_ops(&t.failure)?;
            }
            None => {}
        }
    }
    Ok(())
}

impl EtcdApi {
    /// A range, linearizable unless the request asks for a serializable read.
    pub async fn range(&self, req: &RangeRequest) -> Result<RangeResponse, Status> {
        check_key(&req.key)?;
        if !req.serializable {
            self.raft.read_index().await.map_err(propose_status)?;
        }
        // Clone the key space (O(1), persistent maps) and read it unlocked: a large
        // range must not hold up the apply loop.
        let mvcc = self.raft.shared.sm.read().mvcc.clone();
        let current = mvcc.current_revision();
        let mut resp = crate::store::range(&mvcc, req, current).map_err(|e| apply_status(&e))?;
        self.fill(&mut resp.header);
        Ok(resp)
    }
}

#[tonic::async_trait]
impl Kv for EtcdApi {
    async fn range(&self, request: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let req = request.into_inner();
        EtcdApi::range(self, &req).await.map(Response::new)
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let req = request.into_inner();
        check_key(&req.key)?;
        check_size(req.encoded_len())?;
        match self.raft.propose(Op::Put(req)).await.map_err(propose_status)? {
            Applied::Put(mut resp) => {
                self.fill(&mut resp.header);
                Ok(Response::new(resp))
            }
            _ => Err(unexpected("put")),
        }
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let req = request.into_inner();
        check_key(&req.key)?;
        match self.raft.propose(Op::DeleteRange(req)).await.map_err(propose_status)? {
            Applied::DeleteRange(mut resp) => {
                self.fill(&mut resp.header);
                Ok(Response::new(resp))
            }
            _ => Err(unexpected("delete")),
        }
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let req = request.into_inner();
        check_size(req.encoded_len())?;
        check_ops(&req.success)?;
        check_ops(&req.failure)?;
        let applied = if read_only(&req.success) && read_only(&req.failure) {
            // Evaluate on a private copy of the state (O(1) to clone): a read-only txn
            // changes nothing, so no raft round is needed, only a ReadIndex.
            let serializable = req
                .success
                .iter()
                .chain(&req.failure)
                .all(|op| matches!(&op.request, Some(request_op::Request::RequestRange(r)) if r.serializable))
                && !(req.success.is_empty() && req.failure.is_empty());
            if !serializable {
                self.raft.read_index().await.map_err(propose_status)?;
            }
            let mut copy = self.raft.shared.sm.read().clone();
            copy.apply(&store::command(0, Op::Txn(req)), 0).0.map_err(|e| apply_status(&e))?
        } else {
            self.raft.propose(Op::Txn(req)).await.map_err(propose_status)?
        };
        match applied {
            Applied::Txn(mut resp) => {
                self.fill(&mut resp.header);
                Ok(Response::new(resp))
            }
            _ => Err(unexpected("txn")),
        }
    }

    async fn compact(&self, request: Request<CompactionRequest>) -> Result<Response<CompactionResponse>, Status> {
        let req = request.into_inner();
        match self.raft.propose(Op::Compaction(req)).await.map_err(propose_status)? {
            Applied::Compaction(mut resp) => {
                self.fill(&mut resp.header);
                Ok(Response::new(resp))
            }
            _ => Err(unexpected("compaction")),
        }
    }
}
