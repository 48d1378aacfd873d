//! The replicated state machine: an MVCC key-value store with etcd's semantics,
//! its leases, and the cluster's membership.
//!
//! Every replica applies the same committed raft entries in the same order to its
//! own [`StateMachine`], so `apply` must be deterministic: nothing here may read a
//! clock, a random number or local configuration. Whatever needs those (lease ids,
//! lease expiry, member ids) is decided by the proposer and carried in the entry.
//!
//! Layout:
//! - [`mvcc`]: the multi-version key space (revisions, ranges, compaction, history).
//! - [`watch`]: the watcher hub that streams committed events to watchers.
//! - [`snapshot`]: encoding the whole state machine into a raft snapshot and back.
//! - this file: [`StateMachine`] and `apply` (put, delete, txn, compaction, leases,
//!   membership), with etcd's error messages.

pub mod mvcc;
pub mod snapshot;
pub mod watch;

use bytes::Bytes;
use imbl::{OrdMap, OrdSet};
use mvcc::{KeyRange, Mvcc, RangeOptions, RevisionError, WriteTxn};
use rk_proto::etcdserverpb::{
    self as pb, CompactionRequest, CompactionResponse, Compare, DeleteRangeRequest, DeleteRangeResponse,
    LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse, compare, request_op,
    response_op,
};
use rk_proto::mvccpb::{Event, KeyValue};
use rk_proto::store::{InternalRequest, MemberAttributes, MemberInfo, internal_request::Op};
use std::collections::{BTreeMap, BTreeSet};

/// Largest lease TTL etcd accepts (seconds).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// Errors a command can fail with when applied. Messages are etcd's own, because
/// etcd clients match on them (e.g. `etcd-client` and etcdctl print them verbatim).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: {0}")]
    Revision(#[from] RevisionError),
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: the proposer lost its leadership (term {fence}) before this write committed")]
    Fenced { fence: u64 },
}

/// One lease: its granted TTL and the keys attached to it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lease {
    pub ttl: i64,
    pub keys: OrdSet<Bytes>,
}

/// What an applied command answers (the header is filled in by the caller).
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    /// Member attributes published, or a membership change applied.
    Members,
    /// An entry with no command (raft's own empty entries).
    Nothing,
}

pub type ApplyResult = Result<Applied, ApplyError>;

/// Raft's view of who votes, kept with the state so snapshots carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Voters {
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

/// The whole replicated state. Cheap to clone (persistent maps), which is how
/// snapshots are taken without stopping applies.
#[derive(Clone, Debug, Default)]
pub struct StateMachine {
    pub cluster_id: u64,
    pub mvcc: Mvcc,
    pub leases: OrdMap<i64, Lease>,
    pub members: BTreeMap<u64, MemberInfo>,
    /// Ids of removed members: raft forbids reusing them.
    pub removed: BTreeSet<u64>,
    pub voters: Voters,
    /// Index and term of the last applied raft entry.
    pub applied_index: u64,
    pub applied_term: u64,
}

impl StateMachine {
    pub fn new(cluster_id: u64) -> Self {
        Self { cluster_id, ..Default::default() }
    }

    pub fn header(&self) -> ResponseHeader {
        ResponseHeader { revision: self.mvcc.current_revision(), ..Default::default() }
    }

    /// Applies one replicated command. Returns the answer and the events it produced
    /// (for the watcher hub). A failed command changes nothing.
    /// `term` is the term of the raft entry carrying the command (for fencing).
    pub fn apply(&mut self, req: &InternalRequest, term: u64) -> (ApplyResult, Vec<Event>) {
        if req.fence_term != 0 && req.fence_term != term {
            return (Err(ApplyError::Fenced { fence: req.fence_term }), Vec::new());
        }
        let Some(op) = &req.op else { return (Ok(Applied::Nothing), Vec::new()) };
        match op {
            Op::Put(put) => self.write(|sm, w| sm.put(w, put).map(Applied::Put)),
            Op::DeleteRange(del) => self.write(|sm, w| Ok(Applied::DeleteRange(sm.delete_range(w, del)))),
            Op::Txn(txn) => self.write(|sm, w| sm.txn(w, txn).map(Applied::Txn)),
            Op::Compaction(c) => (self.compact(c), Vec::new()),
            Op::LeaseGrant(g) => (self.lease_grant(g), Vec::new()),
            Op::LeaseRevoke(r) => self.write(|sm, w| sm.lease_revoke(w, r).map(Applied::LeaseRevoke)),
            Op::MemberAttributes(a) => {
                self.set_member_attributes(a);
                (Ok(Applied::Members), Vec::new())
            }
            Op::MemberPeerUrls(u) => match self.members.get_mut(&u.id) {
                Some(m) => {
                    m.peer_urls = u.peer_urls.clone();
                    (Ok(Applied::Members), Vec::new())
                }
                None => (Err(ApplyError::MemberNotFound), Vec::new()),
            },
        }
    }

    /// Runs `f` as one write command; on error nothing it did is kept.
    fn write(&mut self, f: impl FnOnce(&mut LeaseBook, &mut WriteTxn<'_>) -> ApplyResult) -> (ApplyResult, Vec<Event>) {
        // Validation happens before any change, so on error the clones are simply
        // dropped; on success they replace the originals. Cloning is O(1).
        let mut mvcc = self.mvcc.clone();
        let mut book = LeaseBook { leases: self.leases.clone() };
        let mut w = mvcc.write();
        let result = f(&mut book, &mut w);
        let rev = w.current_revision();
        let events = w.finish();
        match result {
            Ok(mut applied) => {
                self.mvcc = mvcc;
                self.leases = book.leases;
                set_header_revision(&mut applied, rev);
                (Ok(applied), events)
            }
            Err(e) => (Err(e), Vec::new()),
        }
    }

    fn compact(&mut self, c: &CompactionRequest) -> ApplyResult {
        self.mvcc.compact(c.revision)?;
        Ok(Applied::Compaction(CompactionResponse { header: Some(self.header()) }))
    }

    fn lease_grant(&mut self, g: &LeaseGrantRequest) -> ApplyResult {
        if g.ttl > MAX_LEASE_TTL {
            return Err(ApplyError::LeaseTtlTooLarge);
        }
        if self.leases.contains_key(&g.id) {
            return Err(ApplyError::LeaseExists);
        }
        self.leases.insert(g.id, Lease { ttl: g.ttl, keys: OrdSet::new() });
        Ok(Applied::LeaseGrant(LeaseGrantResponse {
            header: Some(self.header()),
            id: g.id,
            ttl: g.ttl,
            error: String::new(),
        }))
    }

    fn set_member_attributes(&mut self, a: &MemberAttributes) {
        if let Some(m) = self.members.get_mut(&a.id) {
            m.name = a.name.clone();
            m.client_urls = a.client_urls.clone();
        }
    }

    /// Records a membership change that raft has applied (`ConfChange`).
    pub fn apply_member_change(&mut self, change: MemberChangeKind, member: Option<MemberInfo>, id: u64) {
        match change {
            MemberChangeKind::Add | MemberChangeKind::AddLearner => {
                let learner = change == MemberChangeKind::AddLearner;
                let entry = self.members.entry(id).or_insert_with(|| {
                    let mut m = member.clone().unwrap_or_default();
                    m.id = id;
                    m
                });
                entry.is_learner = learner;
                if let Some(m) = member.filter(|m| !m.peer_urls.is_empty()) {
                    entry.peer_urls = m.peer_urls;
                }
            }
            MemberChangeKind::Remove => {
                self.members.remove(&id);
                self.removed.insert(id);
            }
        }
    }

    /// Range read at the current state (serializable unless the caller waited for a
    /// read index first).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, ApplyError> {
        range(&self.mvcc, req, self.mvcc.current_revision())
    }

    /// Seconds the lease was granted for, and its attached keys.
    pub fn lease(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }
}

/// The kinds of raft membership change rk applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChangeKind {
    Add,
    AddLearner,
    Remove,
}

fn set_header_revision(applied: &mut Applied, rev: i64) {
    let header = Some(ResponseHeader { revision: rev, ..Default::default() });
    match applied {
        Applied::Put(r) => r.header = header,
        Applied::DeleteRange(r) => r.header = header,
        Applied::Txn(r) => r.header = header,
        Applied::LeaseRevoke(r) => r.header = header,
        _ => {}
    }
}

/// The lease table while a write command runs: attaching and detaching keys.
struct LeaseBook {
    leases: OrdMap<i64, Lease>,
}

impl LeaseBook {
    fn attach(&mut self, lease: i64, key: &Bytes) {
        if lease != 0
            && let Some(l) = self.leases.get_mut(&lease)
        {
            l.keys.insert(key.clone());
        }
    }

    fn detach(&mut self, lease: i64, key: &Bytes) {
        if lease != 0
            && let Some(l) = self.leases.get_mut(&lease)
        {
            l.keys.remove(key);
        }
    }

    fn put(&mut self, w: &mut WriteTxn<'_>, req: &PutRequest) -> Result<PutResponse, ApplyError> {
        let prev = w.get(&req.key);
        let (value, lease) = match (&prev, req.ignore_value, req.ignore_lease) {
            (None, true, _) | (None, _, true) => return Err(ApplyError::KeyNotFound),
            (Some(p), iv, il) => {
                (if iv { p.value.clone() } else { req.value.clone() }, if il { p.lease } else { req.lease })
            }
            (None, false, false) => (req.value.clone(), req.lease),
        };
        if lease != 0 && !self.leases.contains_key(&lease) {
            return Err(ApplyError::LeaseNotFound);
        }
        if let Some(p) = &prev {
            self.detach(p.lease, &req.key);
        }
        self.attach(lease, &req.key);
        w.put(req.key.clone(), value, lease);
        Ok(PutResponse { header: None, prev_kv: if req.prev_kv { prev } else { None } })
    }

    fn delete_range(&mut self, w: &mut WriteTxn<'_>, req: &DeleteRangeRequest) -> DeleteRangeResponse {
        let range = KeyRange::new(req.key.clone(), req.range_end.clone());
        let keys = w.store().live_keys(&range);
        let mut resp = DeleteRangeResponse { deleted: keys.len() as i64, ..Default::default() };
        for key in keys {
            if let Some(prev) = w.delete(&key) {
                self.detach(prev.lease, &key);
                if req.prev_kv {
                    resp.prev_kvs.push(prev);
                }
            }
        }
        resp
    }

    fn lease_revoke(
        &mut self,
        w: &mut WriteTxn<'_>,
        req: &LeaseRevokeRequest,
    ) -> Result<LeaseRevokeResponse, ApplyError> {
        let lease = self.leases.remove(&req.id).ok_or(ApplyError::LeaseNotFound)?;
        for key in lease.keys.iter() {
            w.delete(key);
        }
        Ok(LeaseRevokeResponse { header: None })
    }

    fn txn(&mut self, w: &mut WriteTxn<'_>, req: &TxnRequest) -> Result<TxnResponse, ApplyError> {
        check_txn_duplicates(req)?;
        let succeeded = req.compare.iter().all(|c| compare_holds(w, c));
        let ops = if succeeded { &req.success } else { &req.failure };
        // Validate puts before changing anything (etcd's checkRequestPut): a failed
        // check fails the whole txn.
        self.check_ops(w, ops)?;
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match &op.request {
                Some(request_op::Request::RequestRange(r)) => {
                    let mut resp = range(w.store(), r, w.current_revision())?;
                    resp.header = Some(ResponseHeader { revision: w.current_revision(), ..Default::default() });
                    response_op::Response::ResponseRange(resp)
                }
                Some(request_op::Request::RequestPut(p)) => response_op::Response::ResponsePut(self.put(w, p)?),
                Some(request_op::Request::RequestDeleteRange(d)) => {
                    response_op::Response::ResponseDeleteRange(self.delete_range(w, d))
                }
                Some(request_op::Request::RequestTxn(t)) => response_op::Response::ResponseTxn(self.txn(w, t)?),
                None => continue,
            };
            responses.push(ResponseOp { response: Some(response) });
        }
        let header = Some(ResponseHeader { revision: w.current_revision(), ..Default::default() });
        for r in &mut responses {
            match &mut r.response {
                Some(response_op::Response::ResponsePut(p)) => p.header = header,
                Some(response_op::Response::ResponseDeleteRange(d)) => d.header = header,
                _ => {}
            }
        }
        Ok(TxnResponse { header: None, succeeded, responses })
    }

    fn check_ops(&self, w: &WriteTxn<'_>, ops: &[RequestOp]) -> Result<(), ApplyError> {
        for op in ops {
            match &op.request {
                Some(request_op::Request::RequestPut(p)) => {
                    let prev = w.get(&p.key);
                    if (p.ignore_value || p.ignore_lease) && prev.is_none() {
                        return Err(ApplyError::KeyNotFound);
                    }
                    let lease = if p.ignore_lease { prev.map_or(0, |kv| kv.lease) } else { p.lease };
                    if lease != 0 && !self.leases.contains_key(&lease) {
                        return Err(ApplyError::LeaseNotFound);
                    }
                }
                Some(request_op::Request::RequestTxn(t)) => {
                    let ok = t.compare.iter().all(|c| compare_holds(w, c));
                    self.check_ops(w, if ok { &t.success } else { &t.failure })?;
                }
                Some(request_op::Request::RequestRange(r)) if r.revision > w.current_revision() => {
                    return Err(RevisionError::Future.into());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A range read served from `mvcc`, with etcd's sorting and `more` semantics.
pub fn range(mvcc: &Mvcc, req: &RangeRequest, current: i64) -> Result<RangeResponse, ApplyError> {
    use pb::range_request::{SortOrder, SortTarget};
    let mut order = SortOrder::try_from(req.sort_order).unwrap_or(SortOrder::None);
    let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
    // etcd: a sort target without an order means ascending.
    if order == SortOrder::None && target != SortTarget::Key {
        order = SortOrder::Ascend;
    }
    // Keys come out of the store in ascending key order already.
    let needs_sort = !(order == SortOrder::None || (order == SortOrder::Ascend && target == SortTarget::Key));
    let limit = usize::try_from(req.limit).unwrap_or(0);
    let opts = RangeOptions {
        revision: req.revision,
        limit: if needs_sort { 0 } else { limit },
        keys_only: req.keys_only,
        count_only: req.count_only,
        min_mod_revision: req.min_mod_revision,
        max_mod_revision: req.max_mod_revision,
        min_create_revision: req.min_create_revision,
        max_create_revision: req.max_create_revision,
    };
    let range = KeyRange::new(req.key.clone(), req.range_end.clone());
    let mut result = mvcc.range(&range, &opts)?;
    if needs_sort {
        let key_fn = |kv: &KeyValue| -> (i64, Bytes) {
            match target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, Bytes::new()),
                SortTarget::Create => (kv.create_revision, Bytes::new()),
                SortTarget::Mod => (kv.mod_revision, Bytes::new()),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        result.kvs.sort_by_key(key_fn);
        if order == SortOrder::Descend {
            result.kvs.reverse();
        }
        if limit > 0 {
            result.kvs.truncate(limit);
        }
    }
    let count = result.count as i64;
    Ok(RangeResponse {
        header: Some(ResponseHeader { revision: current, ..Default::default() }),
        more: !req.count_only && (result.kvs.len() as i64) < count,
        kvs: result.kvs,
        count,
    })
}

/// Whether a txn guard holds (etcd's `applyCompare`). A missing key compares as a
/// zero `KeyValue`, except for value comparisons, which then fail.
fn compare_holds(w: &WriteTxn<'_>, c: &Compare) -> bool {
    use compare::{CompareResult, CompareTarget, TargetUnion};
    let kvs: Vec<KeyValue> = if c.range_end.is_empty() {
        w.get(&c.key).into_iter().collect()
    } else {
        let range = KeyRange::new(c.key.clone(), c.range_end.clone());
        match w.range(&range, &RangeOptions::default()) {
            Ok(r) => r.kvs,
            Err(_) => return false,
        }
    };
    let target = CompareTarget::try_from(c.target).unwrap_or(CompareTarget::Version);
    let result = CompareResult::try_from(c.result).unwrap_or(CompareResult::Equal);
    let kvs = if kvs.is_empty() {
        if target == CompareTarget::Value {
            return false;
        }
        vec![KeyValue::default()]
    } else {
        kvs
    };
    kvs.iter().all(|kv| {
        let ord = match (&c.target_union, target) {
            (Some(TargetUnion::Version(v)), CompareTarget::Version) => kv.version.cmp(v),
            (Some(TargetUnion::CreateRevision(v)), CompareTarget::Create) => kv.create_revision.cmp(v),
            (Some(TargetUnion::ModRevision(v)), CompareTarget::Mod) => kv.mod_revision.cmp(v),
            (Some(TargetUnion::Value(v)), CompareTarget::Value) => kv.value[..].cmp(&v[..]),
            (Some(TargetUnion::Lease(v)), CompareTarget::Lease) => kv.lease.cmp(v),
            // etcd treats a missing operand as the zero value of the target.
            (None, CompareTarget::Value) => kv.value[..].cmp(&[][..]),
            (None, _) => match target {
                CompareTarget::Version => kv.version.cmp(&0),
                CompareTarget::Create => kv.create_revision.cmp(&0),
                CompareTarget::Mod => kv.mod_revision.cmp(&0),
                _ => kv.lease.cmp(&0),
            },
            // Operand of the wrong kind for the target: etcd fails the compare.
            _ => return false,
        };
        match result {
            CompareResult::Equal => ord.is_eq(),
            CompareResult::Greater => ord.is_gt(),
            CompareResult::Less => ord.is_lt(),
            CompareResult::NotEqual => ord.is_ne(),
        }
    })
}

/// etcd refuses a txn whose branch writes the same key twice or puts a key that
/// the same branch deletes.
fn check_txn_duplicates(req: &TxnRequest) -> Result<(), ApplyError> {
    for branch in [&req.success, &req.failure] {
        let mut puts = BTreeSet::new();
        let mut deletes = Vec::new();
        collect_writes(branch, &mut puts, &mut deletes)?;
        for key in &puts {
            if deletes.iter().any(|r: &KeyRange| r.contains(key)) {
                return Err(ApplyError::DuplicateKey);
            }
        }
    }
    Ok(())
}

fn collect_writes(
    ops: &[RequestOp],
    puts: &mut BTreeSet<Bytes>,
    deletes: &mut Vec<KeyRange>,
) -> Result<(), ApplyError> {
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestPut(p)) if !puts.insert(p.key.clone()) => {
                return Err(ApplyError::DuplicateKey);
            }
            Some(request_op::Request::RequestDeleteRange(d)) => {
                deletes.push(KeyRange::new(d.key.clone(), d.range_end.clone()));
            }
            Some(request_op::Request::RequestTxn(t)) => {
                // Only one of the nested branches runs, so they may overlap each other,
                // but neither may overlap the enclosing branch.
                let mut union = BTreeSet::new();
                for nested in [&t.success, &t.failure] {
                    let mut p = puts.clone();
                    collect_writes(nested, &mut p, deletes)?;
                    union.extend(p);
                }
                *puts = union;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Builds the command for a request (the proposer picks the id).
pub fn command(id: u64, op: Op) -> InternalRequest {
    InternalRequest { id, op: Some(op), fence_term: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn put_op(k: &str, v: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest { key: b(k), value: b(v), ..Default::default() })),
        }
    }

    fn apply(sm: &mut StateMachine, op: Op) -> ApplyResult {
        sm.apply(&command(1, op), 0).0
    }

    fn put(sm: &mut StateMachine, k: &str, v: &str, lease: i64) -> ApplyResult {
        apply(sm, Op::Put(PutRequest { key: b(k), value: b(v), lease, ..Default::default() }))
    }

    fn value(sm: &StateMachine, k: &str) -> Option<String> {
        sm.mvcc.get(k.as_bytes()).map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
    }

    #[test]
    fn txn_compare_and_swap_on_mod_revision() {
        let mut sm = StateMachine::new(1);
        put(&mut sm, "k", "v1", 0).unwrap();
        let rev = sm.mvcc.get(b"k").unwrap().mod_revision;
        let cas = |expected: i64, v: &str| TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Mod as i32,
                key: b("k"),
                target_union: Some(TargetUnion::ModRevision(expected)),
                range_end: Bytes::new(),
            }],
            success: vec![put_op("k", v)],
            failure: vec![],
        };
        let Ok(Applied::Txn(r)) = apply(&mut sm, Op::Txn(cas(rev, "v2"))) else { panic!() };
        assert!(r.succeeded);
        let Ok(Applied::Txn(r)) = apply(&mut sm, Op::Txn(cas(rev, "v3"))) else { panic!() };
        assert!(!r.succeeded, "a stale revision must lose");
        assert_eq!(value(&sm, "k").as_deref(), Some("v2"));
    }

    #[test]
    fn missing_key_compares_as_zero_but_value_compare_fails() {
        let mut sm = StateMachine::new(1);
        let create_if_absent = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Create as i32,
                key: b("k"),
                target_union: Some(TargetUnion::CreateRevision(0)),
                range_end: Bytes::new(),
            }],
            success: vec![put_op("k", "1")],
            failure: vec![],
        };
        let Ok(Applied::Txn(r)) = apply(&mut sm, Op::Txn(create_if_absent.clone())) else { panic!() };
        assert!(r.succeeded);
        let Ok(Applied::Txn(r)) = apply(&mut sm, Op::Txn(create_if_absent)) else { panic!() };
        assert!(!r.succeeded);
        let value_cmp = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::NotEqual as i32,
                target: CompareTarget::Value as i32,
                key: b("absent"),
                target_union: Some(TargetUnion::Value(b("x"))),
                range_end: Bytes::new(),
            }],
            ..Default::default()
        };
        let Ok(Applied::Txn(r)) = apply(&mut sm, Op::Txn(value_cmp)) else { panic!() };
        assert!(!r.succeeded);
    }

    #[test]
    fn txn_is_one_revision_and_rejects_duplicate_keys() {
        let mut sm = StateMachine::new(1);
        let txn = TxnRequest { success: vec![put_op("a", "1"), put_op("b", "1")], ..Default::default() };
        let (res, events) = sm.apply(&command(1, Op::Txn(txn)), 0);
        let Ok(Applied::Txn(r)) = res else { panic!() };
        assert_eq!(r.header.unwrap().revision, 2);
        assert_eq!(events.len(), 2);
        let dup = TxnRequest { success: vec![put_op("a", "1"), put_op("a", "2")], ..Default::default() };
        assert_eq!(apply(&mut sm, Op::Txn(dup)), Err(ApplyError::DuplicateKey));
        assert_eq!(sm.mvcc.current_revision(), 2);
    }

    #[test]
    fn failed_command_changes_nothing() {
        let mut sm = StateMachine::new(1);
        // The second put names a lease that does not exist: the first must not stick.
        let txn = TxnRequest {
            success: vec![
                put_op("a", "1"),
                RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: b("b"),
                        lease: 42,
                        ..Default::default()
                    })),
                },
            ],
            ..Default::default()
        };
        assert_eq!(apply(&mut sm, Op::Txn(txn)), Err(ApplyError::LeaseNotFound));
        assert_eq!(value(&sm, "a"), None);
        assert_eq!(sm.mvcc.current_revision(), 1);
        let ignore = PutRequest { key: b("x"), ignore_value: true, ..Default::default() };
        assert_eq!(apply(&mut sm, Op::Put(ignore)), Err(ApplyError::KeyNotFound));
    }

    #[test]
    fn revoking_a_lease_deletes_its_keys_in_one_revision() {
        let mut sm = StateMachine::new(1);
        apply(&mut sm, Op::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 7 })).unwrap();
        assert_eq!(apply(&mut sm, Op::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 7 })), Err(ApplyError::LeaseExists));
        put(&mut sm, "a", "1", 7).unwrap();
        put(&mut sm, "b", "1", 7).unwrap();
        put(&mut sm, "c", "1", 0).unwrap();
        // Re-putting "b" without the lease detaches it.
        put(&mut sm, "b", "2", 0).unwrap();
        assert_eq!(sm.lease(7).unwrap().keys.len(), 1);
        let before = sm.mvcc.current_revision();
        let (res, events) = sm.apply(&command(1, Op::LeaseRevoke(LeaseRevokeRequest { id: 7 })), 0);
        res.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(sm.mvcc.current_revision(), before + 1);
        assert_eq!(value(&sm, "a"), None);
        assert_eq!(value(&sm, "b").as_deref(), Some("2"));
        assert!(sm.lease(7).is_none());
        assert_eq!(apply(&mut sm, Op::LeaseRevoke(LeaseRevokeRequest { id: 7 })), Err(ApplyError::LeaseNotFound));
    }

    #[test]
    fn fenced_commands_apply_only_in_their_term() {
        let mut sm = StateMachine::new(1);
        let mut req = command(1, Op::Put(PutRequest { key: b("k"), value: b("v"), ..Default::default() }));
        req.fence_term = 5;
        assert_eq!(sm.apply(&req, 6).0, Err(ApplyError::Fenced { fence: 5 }));
        assert_eq!(value(&sm, "k"), None);
        assert!(sm.apply(&req, 5).0.is_ok());
        assert_eq!(value(&sm, "k").as_deref(), Some("v"));
    }

    #[test]
    fn sorted_ranges_with_limit_report_more() {
        let mut sm = StateMachine::new(1);
        for (k, v) in [("a", "3"), ("b", "1"), ("c", "2")] {
            put(&mut sm, k, v, 0).unwrap();
        }
        let req = RangeRequest {
            key: b("a"),
            range_end: b("z"),
            limit: 2,
            sort_order: pb::range_request::SortOrder::Descend as i32,
            sort_target: pb::range_request::SortTarget::Value as i32,
            ..Default::default()
        };
        let r = sm.range(&req).unwrap();
        let keys: Vec<_> = r.kvs.iter().map(|kv| kv.key.clone()).collect();
        assert_eq!(keys, vec![b("a"), b("c")]);
        assert!(r.more);
        assert_eq!(r.count, 3);
    }

    #[test]
    fn delete_range_reports_prev_kvs() {
        let mut sm = StateMachine::new(1);
        put(&mut sm, "p/1", "x", 0).unwrap();
        put(&mut sm, "p/2", "y", 0).unwrap();
        let del = DeleteRangeRequest { key: b("p/"), range_end: mvcc::prefix_end(b"p/"), prev_kv: true };
        let Ok(Applied::DeleteRange(r)) = apply(&mut sm, Op::DeleteRange(del)) else { panic!() };
        assert_eq!(r.deleted, 2);
        assert_eq!(r.prev_kvs.len(), 2);
        assert_eq!(r.header.unwrap().revision, 4);
    }
}
