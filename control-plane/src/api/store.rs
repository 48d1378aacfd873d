//! Kubernetes objects in the replicated key-value store.
//!
//! Objects are stored as JSON under their registry key, with `metadata` as the first
//! field and no `resourceVersion`: the resource version *is* the key's mod revision,
//! and it is spliced into the bytes on the way out. That splice is a byte copy, so
//! large lists are served without parsing every object.
//!
//! Every write is one raft transaction that compares the key's revision first
//! (`create_revision == 0` to create, `mod_revision == rv` to update or delete), so
//! optimistic concurrency needs no read-then-write race.
//!
//! Secrets are sealed on the way in and opened on the way out ([`super::encryption`]):
//! every [`Stored`] made here holds plaintext, every value written is sealed.

use super::encryption::{Encryption, is_sealed_key};
use super::error::ApiError;
use crate::raft::node::RaftHandle;
use crate::store::Applied;
use bytes::Bytes;
use rk_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, compare, request_op, response_op,
};
use rk_proto::store::internal_request::Op;
use serde_json::Value;
use std::sync::Arc;

const META_PREFIX: &[u8] = b"{\"metadata\":{";

/// Serialises an object for storage: `metadata` first, `resourceVersion` dropped.
pub fn encode(obj: &Value) -> Result<Vec<u8>, ApiError> {
    let Value::Object(map) = obj else {
        return Err(ApiError::BadRequest("an object must be a JSON object".into()));
    };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"metadata\":");
    let mut meta = map.get("metadata").cloned().unwrap_or_else(|| Value::Object(Default::default()));
    if let Some(m) = meta.as_object_mut() {
        m.remove("resourceVersion");
    }
    serde_json::to_writer(&mut out, &meta).map_err(|e| ApiError::Internal(e.to_string()))?;
    for (k, v) in map.iter().filter(|(k, _)| *k != "metadata") {
        out.push(b',');
        serde_json::to_writer(&mut out, k).map_err(|e| ApiError::Internal(e.to_string()))?;
        out.push(b':');
        serde_json::to_writer(&mut out, v).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    out.push(b'}');
    Ok(out)
}

/// A stored object: its bytes and the revision that wrote them.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: Bytes,
    pub raw: Bytes,
    pub rev: i64,
}

impl Stored {
    /// The object with `metadata.resourceVersion` set.
    pub fn object(&self) -> Result<Value, ApiError> {
        let mut v: Value = serde_json::from_slice(&self.raw).map_err(|e| {
            ApiError::Internal(format!("stored object at {} is not JSON: {e}", String::from_utf8_lossy(&self.key)))
        })?;
        set_resource_version(&mut v, self.rev);
        Ok(v)
    }

    /// The object's JSON with `metadata.resourceVersion` set, without parsing it
    /// (falls back to parsing for objects not written by rk).
    pub fn json(&self) -> Result<Vec<u8>, ApiError> {
        if self.raw.starts_with(META_PREFIX) {
            let rv = format!("\"resourceVersion\":\"{}\"", self.rev);
            let rest = &self.raw[META_PREFIX.len()..];
            let mut out = Vec::with_capacity(self.raw.len() + rv.len() + 1);
            out.extend_from_slice(META_PREFIX);
            out.extend_from_slice(rv.as_bytes());
            if !rest.starts_with(b"}") {
                out.push(b',');
            }
            out.extend_from_slice(rest);
            return Ok(out);
        }
        serde_json::to_vec(&self.object()?).map_err(|e| ApiError::Internal(e.to_string()))
    }
}

pub fn set_resource_version(obj: &mut Value, rev: i64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    } else if let Some(map) = obj.as_object_mut() {
        map.insert("metadata".into(), serde_json::json!({ "resourceVersion": rev.to_string() }));
    }
}

/// How fresh a read must be (Kubernetes' `resourceVersion` semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// `resourceVersion` unset: the latest committed state (a raft ReadIndex).
    Latest,
    /// `resourceVersion="0"`: whatever this replica has.
    Any,
    /// `resourceVersionMatch=NotOlderThan` (or a plain version on get).
    NotOlderThan(i64),
    /// `resourceVersionMatch=Exact`: the state at exactly this revision.
    Exact(i64),
}

/// A page of a list.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Stored>,
    /// The revision the list was read at (the list's resourceVersion).
    pub revision: i64,
    /// Key to continue after, when more items remain.
    pub next: Option<Bytes>,
    /// Items not returned (for `remainingItemCount`), when known.
    pub remaining: Option<i64>,
}

/// The outcome of a compare-and-swap write.
#[derive(Debug)]
pub enum Written {
    /// Done, at this revision.
    Ok(i64),
    /// The compare failed; the current value (if any) is attached.
    Conflict(Option<Stored>),
    /// The object's compare held, but these claimed keys were taken.
    Taken(Vec<String>),
}

/// Object storage over the raft store.
#[derive(Clone)]
pub struct ObjectStore {
    pub raft: RaftHandle,
    /// Raft term writes are fenced to (0: none); see `RaftHandle::propose_fenced`.
    pub fence: u64,
    /// The keys Secrets are sealed with.
    pub encryption: Arc<Encryption>,
}

impl ObjectStore {
    /// A store whose Secrets are sealed with `encryption`'s keys.
    pub fn new(raft: RaftHandle, encryption: Arc<Encryption>) -> Self {
        Self { raft, fence: 0, encryption }
    }

    /// The same store, with every write fenced to raft term `term`.
    pub fn fenced(&self, term: u64) -> Self {
        Self { raft: self.raft.clone(), fence: term, encryption: self.encryption.clone() }
    }

    /// A stored value as an object's bytes: opened if it is a sealed Secret.
    pub fn stored(&self, key: &Bytes, raw: &Bytes, rev: i64) -> Result<Stored, ApiError> {
        let raw = if is_sealed_key(key) {
            match self.encryption.keyring().open(key, raw).map_err(|e| ApiError::Internal(e.to_string()))? {
                std::borrow::Cow::Borrowed(_) => raw.clone(),
                std::borrow::Cow::Owned(plain) => Bytes::from(plain),
            }
        } else {
            raw.clone()
        };
        Ok(Stored { key: key.clone(), raw, rev })
    }

    /// The value to store for an object's bytes: sealed if it is a Secret.
    fn sealed(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>, ApiError> {
        if !is_sealed_key(key.as_bytes()) {
            return Ok(value);
        }
        self.encryption.keyring().seal(key.as_bytes(), &value).map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Secrets not sealed with the key that seals now (sealed with an older key, or
    /// not at all), with their revisions: what a key rotation must re-encrypt.
    pub fn stale_secrets(&self) -> Vec<(Bytes, i64)> {
        let ring = self.encryption.keyring();
        let current = ring.write_key();
        let range =
            crate::store::mvcc::KeyRange::prefix(Bytes::from_static(super::encryption::SECRETS_PREFIX.as_bytes()));
        let view = self.raft.shared.sm.read().mvcc.clone();
        let Ok(scan) = view.scan(&range, 0) else { return Vec::new() };
        scan.filter(|(_, raw, _)| super::encryption::Keyring::sealed_with(raw) != Some(current))
            .map(|(key, _, rev)| (key.clone(), rev))
            .collect()
    }

    /// Waits until reads at `freshness` can be served from this replica; returns the
    /// revision to read at (0: the current one).
    async fn ready_for(&self, freshness: Freshness) -> Result<i64, ApiError> {
        match freshness {
            Freshness::Latest => {
                self.raft.read_index().await?;
                Ok(0)
            }
            Freshness::Any => Ok(0),
            Freshness::NotOlderThan(rv) => {
                if self.current_revision() < rv {
                    self.raft.read_index().await?;
                    if self.current_revision() < rv {
                        return Err(ApiError::Timeout(format!(
                            "Too large resource version: {rv}, current: {}",
                            self.current_revision()
                        )));
                    }
                }
                Ok(0)
            }
            Freshness::Exact(rv) => {
                if self.current_revision() < rv {
                    self.raft.read_index().await?;
                }
                Ok(rv)
            }
        }
    }

    pub fn current_revision(&self) -> i64 {
        self.raft.shared.sm.read().mvcc.current_revision()
    }

    pub async fn get(&self, key: &str, freshness: Freshness) -> Result<Option<Stored>, ApiError> {
        let at = self.ready_for(freshness).await?;
        let req = RangeRequest { key: Bytes::copy_from_slice(key.as_bytes()), revision: at, ..Default::default() };
        let sm = self.raft.shared.sm.read();
        let resp = sm.range(&req).map_err(revision_error)?;
        drop(sm);
        resp.kvs.into_iter().next().map(|kv| self.stored(&kv.key, &kv.value, kv.mod_revision)).transpose()
    }

    /// Reads up to `limit` objects (0: all) under `prefix`, starting after `after`,
    /// keeping only those `keep` accepts (selectors are applied here so a page holds
    /// `limit` *matching* objects, as in Kubernetes).
    pub async fn list(
        &self,
        prefix: &str,
        freshness: Freshness,
        after: Option<&[u8]>,
        limit: usize,
        keep: impl Fn(&Stored) -> Result<bool, ApiError>,
    ) -> Result<Page, ApiError> {
        let at = self.ready_for(freshness).await?;
        let start = match after {
            Some(k) => {
                let mut s = k.to_vec();
                s.push(0);
                Bytes::from(s)
            }
            None => Bytes::copy_from_slice(prefix.as_bytes()),
        };
        let end = crate::store::mvcc::prefix_end(prefix.as_bytes());
        let range = crate::store::mvcc::KeyRange::new(start, end);
        // Take a frozen view under the lock (O(1)) and scan it after letting go, so a
        // big list never holds up the apply loop; stop as soon as the page is full.
        let view = self.raft.shared.sm.read().mvcc.clone();
        let revision = if at > 0 { at } else { view.current_revision() };
        let mut page = Page { revision, ..Default::default() };
        let mut scan = view.scan(&range, at)?;
        for (key, raw, rev) in scan.by_ref() {
            let item = self.stored(key, raw, rev)?;
            if !keep(&item)? {
                continue;
            }
            if limit > 0 && page.items.len() == limit {
                page.next = page.items.last().map(|s| s.key.clone());
                // This item and everything after it; only counting, no copies.
                page.remaining = Some(1 + scan.count() as i64);
                break;
            }
            page.items.push(item);
        }
        Ok(page)
    }

    fn compare(key: &str, target: compare::CompareTarget, union: compare::TargetUnion) -> Compare {
        Compare {
            result: compare::CompareResult::Equal as i32,
            target: target as i32,
            key: Bytes::copy_from_slice(key.as_bytes()),
            target_union: Some(union),
            range_end: Bytes::new(),
        }
    }

    fn read_op(key: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                ..Default::default()
            })),
        }
    }

    fn put_op(key: &str, value: Vec<u8>) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::from(value),
                ..Default::default()
            })),
        }
    }

    fn delete_op(key: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                ..Default::default()
            })),
        }
    }

    /// One transaction: the object's compare-and-swap plus the side claims that
    /// must be free and the releases that go with it.
    async fn write(&self, key: &str, main: Main, side: &Side) -> Result<Written, ApiError> {
        use compare::{CompareTarget, TargetUnion};
        let (guard, op) = match main {
            Main::Create(v) => (
                Self::compare(key, CompareTarget::Create, TargetUnion::CreateRevision(0)),
                Self::put_op(key, self.sealed(key, v)?),
            ),
            Main::Update(v, rev) => (
                Self::compare(key, CompareTarget::Mod, TargetUnion::ModRevision(rev)),
                Self::put_op(key, self.sealed(key, v)?),
            ),
            Main::Delete(rev) => {
                (Self::compare(key, CompareTarget::Mod, TargetUnion::ModRevision(rev)), Self::delete_op(key))
            }
        };
        let creating = guard.target == CompareTarget::Create as i32;
        let expected = match &guard.target_union {
            Some(TargetUnion::ModRevision(r)) => *r,
            _ => 0,
        };
        let mut compares = vec![guard];
        let mut success = vec![op];
        let mut failure = vec![Self::read_op(key)];
        for (k, v) in &side.claim {
            compares.push(Self::compare(k, CompareTarget::Create, TargetUnion::CreateRevision(0)));
            success.push(Self::put_op(k, v.clone()));
            failure.push(Self::read_op(k));
        }
        for k in &side.release {
            success.push(Self::delete_op(k));
        }
        let txn = TxnRequest { compare: compares, success, failure };
        match self.raft.propose_fenced(Op::Txn(txn), self.fence).await? {
            Applied::Txn(resp) => {
                let rev = resp.header.map_or(0, |h| h.revision);
                if resp.succeeded {
                    return Ok(Written::Ok(rev));
                }
                let mut found: Vec<Option<Stored>> = resp
                    .responses
                    .into_iter()
                    .map(|r| match r.response {
                        Some(response_op::Response::ResponseRange(range)) => range
                            .kvs
                            .into_iter()
                            .next()
                            .map(|kv| self.stored(&kv.key, &kv.value, kv.mod_revision))
                            .transpose(),
                        _ => Ok(None),
                    })
                    .collect::<Result<_, _>>()?;
                let current = if found.is_empty() { None } else { found.remove(0) };
                let main_ok =
                    if creating { current.is_none() } else { current.as_ref().is_some_and(|c| c.rev == expected) };
                if main_ok {
                    let taken = side
                        .claim
                        .iter()
                        .zip(found)
                        .filter(|(_, f)| f.is_some())
                        .map(|((k, _), _)| k.clone())
                        .collect();
                    return Ok(Written::Taken(taken));
                }
                Ok(Written::Conflict(current))
            }
            other => Err(ApiError::Internal(format!("the store answered a transaction with {other:?}"))),
        }
    }

    /// Writes `value` at `key` if nothing is there.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<Written, ApiError> {
        self.write(key, Main::Create(value), &Side::default()).await
    }

    pub async fn create_with(&self, key: &str, value: Vec<u8>, side: &Side) -> Result<Written, ApiError> {
        self.write(key, Main::Create(value), side).await
    }

    /// Replaces the value at `key` if it is still at revision `expected`.
    pub async fn update(&self, key: &str, value: Vec<u8>, expected: i64) -> Result<Written, ApiError> {
        self.write(key, Main::Update(value, expected), &Side::default()).await
    }

    pub async fn update_with(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: i64,
        side: &Side,
    ) -> Result<Written, ApiError> {
        self.write(key, Main::Update(value, expected), side).await
    }

    /// Deletes `key` if it is still at revision `expected`.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<Written, ApiError> {
        self.write(key, Main::Delete(expected), &Side::default()).await
    }

    pub async fn delete_with(&self, key: &str, expected: i64, side: &Side) -> Result<Written, ApiError> {
        self.write(key, Main::Delete(expected), side).await
    }

    /// Writes the Secret at `key` back unchanged if it is still at revision `rev`, which
    /// seals it with the current key; false if it changed or went meanwhile.
    pub async fn reseal(&self, key: &Bytes, rev: i64) -> Result<bool, ApiError> {
        let k = String::from_utf8_lossy(key).into_owned();
        let Some(current) = self.get(&k, Freshness::Any).await? else { return Ok(false) };
        if current.rev != rev {
            return Ok(false);
        }
        Ok(matches!(self.update(&k, current.raw.to_vec(), rev).await?, Written::Ok(_)))
    }

    /// Keys under `prefix` (allocation tables).
    pub fn keys_under(&self, prefix: &str) -> Vec<String> {
        let range = crate::store::mvcc::KeyRange::prefix(Bytes::copy_from_slice(prefix.as_bytes()));
        let sm = self.raft.shared.sm.read();
        sm.mvcc.live_keys(&range).into_iter().map(|k| String::from_utf8_lossy(&k).into_owned()).collect()
    }
}

enum Main {
    Create(Vec<u8>),
    Update(Vec<u8>, i64),
    Delete(i64),
}

/// Keys a write takes (they must be free) and keys it gives back, in the same
/// transaction as the object itself: how ClusterIPs and node ports are allocated
/// without two replicas ever handing out the same one.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub claim: Vec<(String, Vec<u8>)>,
    pub release: Vec<String>,
}

impl Side {
    pub fn is_empty(&self) -> bool {
        self.claim.is_empty() && self.release.is_empty()
    }
}

fn revision_error(e: crate::store::ApplyError) -> ApiError {
    match e {
        crate::store::ApplyError::Revision(crate::store::mvcc::RevisionError::Compacted { compact_revision }) => {
            ApiError::Expired(format!(
                "The resourceVersion for the provided list is too old (compacted at {compact_revision})"
            ))
        }
        crate::store::ApplyError::Revision(crate::store::mvcc::RevisionError::Future) => {
            ApiError::Timeout("Too large resource version".into())
        }
        other => ApiError::Internal(other.to_string()),
    }
}

impl From<crate::store::mvcc::RevisionError> for ApiError {
    fn from(e: crate::store::mvcc::RevisionError) -> Self {
        revision_error(crate::store::ApplyError::Revision(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encoding_puts_metadata_first_and_splices_the_resource_version() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "resourceVersion": "9"}, "data": {"a": "b"}});
        let raw = encode(&obj).unwrap();
        assert!(raw.starts_with(b"{\"metadata\":{\"name\":\"x\"}"));
        let stored = Stored { key: Bytes::from_static(b"k"), raw: Bytes::from(raw), rev: 42 };
        let spliced: Value = serde_json::from_slice(&stored.json().unwrap()).unwrap();
        assert_eq!(spliced["metadata"]["resourceVersion"], "42");
        assert_eq!(spliced["data"]["a"], "b");
        assert_eq!(stored.object().unwrap(), spliced);
        // Empty metadata: no stray comma.
        let empty = Stored { key: Bytes::new(), raw: Bytes::from(encode(&json!({"kind": "X"})).unwrap()), rev: 3 };
        let v: Value = serde_json::from_slice(&empty.json().unwrap()).unwrap();
        assert_eq!(v, json!({"metadata": {"resourceVersion": "3"}, "kind": "X"}));
        // Objects written by someone else still come out right.
        let foreign =
            Stored { key: Bytes::new(), raw: Bytes::from_static(b"{\"kind\":\"X\",\"metadata\":{}}"), rev: 5 };
        let v: Value = serde_json::from_slice(&foreign.json().unwrap()).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "5");
    }
}
