//! The multi-version key space: every write creates a new revision, and every
//! retained version of every key can be read back at its revision.
//!
//! Semantics follow etcd's MVCC exactly, because real etcd clients read them:
//! - the store revision starts at 1 and is bumped once per write command (a txn
//!   with three puts is one revision with sub-revisions 0, 1, 2);
//! - per key: `create_revision` (revision of the put that created this incarnation),
//!   `mod_revision` (last write), `version` (writes since creation, reset by delete);
//! - a delete leaves a tombstone version so reads at older revisions still work;
//! - compaction at revision `c` drops every version superseded at or before `c`.
//!
//! Both maps are persistent (`imbl`), so cloning the whole space is O(1): a snapshot
//! is taken by cloning and serialised on another thread while applies go on.

use bytes::Bytes;
use imbl::OrdMap;
use rk_proto::mvccpb::{self, Event, KeyValue, event::EventType};
use std::ops::Bound;
use std::sync::Arc;

/// A point in the store's history: the command (`main`) and the change within it (`sub`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Self {
        Self { main, sub }
    }
}

/// One version of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub rev: Revision,
    pub create_revision: i64,
    pub version: i64,
    pub value: Bytes,
    pub lease: i64,
    /// A deletion marker: from `rev` on the key did not exist.
    pub tombstone: bool,
}

/// Every retained version of a key, oldest first; never empty while in the map.
/// Shared (`Arc`) so that copying a map node on write copies pointers, not histories.
pub type History = Arc<Vec<Version>>;

/// A key range as etcd encodes it: an empty `end` is the single key, `end == "\0"`
/// is every key `>= start`, anything else is the half-open range `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Bytes,
    pub end: Bytes,
}

impl KeyRange {
    pub fn new(start: impl Into<Bytes>, end: impl Into<Bytes>) -> Self {
        Self { start: start.into(), end: end.into() }
    }

    pub fn single(key: impl Into<Bytes>) -> Self {
        Self { start: key.into(), end: Bytes::new() }
    }

    /// The range of all keys with this prefix (etcd's `--prefix`).
    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        let start: Bytes = prefix.into();
        let end = prefix_end(&start);
        Self { start, end }
    }

    pub fn is_single(&self) -> bool {
        self.end.is_empty()
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        if self.is_single() {
            return key == &self.start[..];
        }
        if key < &self.start[..] {
            return false;
        }
        self.end[..] == [0] || key < &self.end[..]
    }

    /// Bounds for a `BTreeMap`-style range scan. `None` when the range is empty
    /// (e.g. `end <= start`), which etcd treats as matching nothing.
    fn bounds(&self) -> Option<(Bound<Bytes>, Bound<Bytes>)> {
        if self.is_single() {
            return Some((Bound::Included(self.start.clone()), Bound::Included(self.start.clone())));
        }
        if self.end[..] == [0] {
            return Some((Bound::Included(self.start.clone()), Bound::Unbounded));
        }
        if self.end <= self.start {
            return None;
        }
        Some((Bound::Included(self.start.clone()), Bound::Excluded(self.end.clone())))
    }
}

/// The smallest key greater than every key starting with `prefix` (etcd's
/// `GetPrefixRangeEnd`); `"\0"` (everything) when the prefix is all `0xff` or empty.
pub fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return Bytes::from(end);
        }
        end.pop();
    }
    Bytes::from_static(&[0])
}

/// Why a read or compaction at some revision cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevisionError {
    #[error("mvcc: required revision has been compacted")]
    Compacted { compact_revision: i64 },
    #[error("mvcc: required revision is a future revision")]
    Future,
}

/// Options of a range read, mirroring `RangeRequest` minus sorting (done by the caller).
#[derive(Clone, Debug, Default)]
pub struct RangeOptions {
    /// 0 or less: the current revision.
    pub revision: i64,
    /// 0: unlimited.
    pub limit: usize,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// Keys in range (after revision filters), ignoring `limit`.
    pub count: usize,
    /// The revision the read was served at.
    pub revision: i64,
}

/// The key space. Cheap to clone (persistent maps).
#[derive(Clone, Debug)]
pub struct Mvcc {
    keys: OrdMap<Bytes, History>,
    /// Revision → key for every retained version, so watchers that fall behind can
    /// replay history in revision order without scanning every key.
    revs: OrdMap<Revision, Bytes>,
    current: i64,
    compacted: i64,
}

impl Default for Mvcc {
    fn default() -> Self {
        Self::new()
    }
}

impl Mvcc {
    /// An empty store at revision 1, as a fresh etcd starts.
    pub fn new() -> Self {
        Self { keys: OrdMap::new(), revs: OrdMap::new(), current: 1, compacted: 0 }
    }

    pub fn current_revision(&self) -> i64 {
        self.current
    }

    pub fn compact_revision(&self) -> i64 {
        self.compacted
    }

    /// Number of live keys at the current revision.
    pub fn key_count(&self) -> usize {
        self.keys.values().filter(|h| h.last().is_some_and(|v| !v.tombstone)).count()
    }

    /// Approximate bytes held (keys and values of all retained versions).
    pub fn approximate_size(&self) -> usize {
        self.keys.iter().map(|(k, h)| h.iter().map(|v| k.len() + v.value.len() + 48).sum::<usize>()).sum()
    }

    fn check_read_revision(&self, rev: i64) -> Result<i64, RevisionError> {
        if rev <= 0 {
            return Ok(self.current);
        }
        if rev > self.current {
            return Err(RevisionError::Future);
        }
        if rev < self.compacted {
            return Err(RevisionError::Compacted { compact_revision: self.compacted });
        }
        Ok(rev)
    }

    /// The live keys of `range` as of `revision` (0: the current one), lazily, in key
    /// order: (key, value, mod revision), shared rather than copied. Meant for a
    /// clone of the store taken under the state machine's lock (O(1): persistent
    /// maps) and scanned after letting go, so a list of a hundred thousand keys never
    /// stalls the apply loop, and with it raft heartbeats.
    pub fn scan<'a>(
        &'a self,
        range: &KeyRange,
        revision: i64,
    ) -> Result<impl Iterator<Item = (&'a Bytes, &'a Bytes, i64)> + 'a, RevisionError> {
        let at = self.check_read_revision(revision)?;
        let iter = range.bounds().into_iter().flat_map(move |(lo, hi)| self.keys.range((lo, hi)));
        Ok(iter.filter_map(move |(key, history)| {
            let v = Self::visible(history, at)?;
            Some((key, &v.value, v.rev.main))
        }))
    }

    /// The version of `key` visible at revision `at`, if the key existed then.
    fn visible(history: &History, at: i64) -> Option<&Version> {
        let idx = history.partition_point(|v| v.rev.main <= at);
        let v = history.get(idx.checked_sub(1)?)?;
        (!v.tombstone).then_some(v)
    }

    /// The live version of `key` at the current revision.
    pub fn get(&self, key: &[u8]) -> Option<KeyValue> {
        let history = self.keys.get(key)?;
        let v = history.last().filter(|v| !v.tombstone)?;
        Some(to_kv(key, v, false))
    }

    pub fn range(&self, range: &KeyRange, opts: &RangeOptions) -> Result<RangeResult, RevisionError> {
        let at = self.check_read_revision(opts.revision)?;
        let mut result = RangeResult { revision: self.current, ..Default::default() };
        let Some((lo, hi)) = range.bounds() else {
            return Ok(result);
        };
        for (key, history) in self.keys.range((lo, hi)) {
            let Some(v) = Self::visible(history, at) else { continue };
            if (opts.min_mod_revision > 0 && v.rev.main < opts.min_mod_revision)
                || (opts.max_mod_revision > 0 && v.rev.main > opts.max_mod_revision)
                || (opts.min_create_revision > 0 && v.create_revision < opts.min_create_revision)
                || (opts.max_create_revision > 0 && v.create_revision > opts.max_create_revision)
            {
                continue;
            }
            result.count += 1;
            if opts.count_only || (opts.limit > 0 && result.kvs.len() >= opts.limit) {
                continue;
            }
            result.kvs.push(to_kv(key, v, opts.keys_only));
        }
        Ok(result)
    }

    /// Live keys in `range` at the current revision (used by deletes and lease revokes).
    pub fn live_keys(&self, range: &KeyRange) -> Vec<Bytes> {
        let Some((lo, hi)) = range.bounds() else { return Vec::new() };
        self.keys
            .range((lo, hi))
            .filter(|(_, h)| h.last().is_some_and(|v| !v.tombstone))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Starts a write command. Every change made through the returned handle carries
    /// revision `current + 1`; the store revision only moves if something changed.
    pub fn write(&mut self) -> WriteTxn<'_> {
        let main = self.current + 1;
        WriteTxn { mvcc: self, main, sub: 0, events: Vec::new() }
    }

    /// Drops every version superseded at or before `rev` (etcd's compaction). Returns
    /// the number of versions removed.
    pub fn compact(&mut self, rev: i64) -> Result<usize, RevisionError> {
        if rev > self.current {
            return Err(RevisionError::Future);
        }
        if rev <= self.compacted {
            return Err(RevisionError::Compacted { compact_revision: self.compacted });
        }
        let mut removed = 0;
        // Only keys with a version older than `rev` can lose anything; find them through
        // the revision index instead of scanning the whole key space.
        let stale: Vec<(Revision, Bytes)> =
            self.revs.range(..Revision::new(rev, 0)).map(|(r, k)| (*r, k.clone())).collect();
        let mut touched: Vec<Bytes> = stale.iter().map(|(_, k)| k.clone()).collect();
        touched.sort();
        touched.dedup();
        for key in touched {
            let Some(history) = self.keys.get_mut(&key) else { continue };
            // Keep the newest version at or before `rev` unless it is a tombstone.
            let keep_from = match history.partition_point(|v| v.rev.main <= rev) {
                0 => 0,
                n if history[n - 1].tombstone => n,
                n => n - 1,
            };
            removed += keep_from;
            if keep_from > 0 {
                Arc::make_mut(history).drain(..keep_from);
            }
            if history.is_empty() {
                self.keys.remove(&key);
            }
        }
        for (r, _) in stale {
            self.revs.remove(&r);
        }
        self.compacted = rev;
        Ok(removed)
    }

    /// Every event with revision `>= from` whose key is in `range`, in revision order,
    /// at most `limit` of them (a watcher catching up). Events come with `prev_kv` when
    /// asked for and when the previous version is still retained.
    pub fn events_since(
        &self,
        range: &KeyRange,
        from: i64,
        limit: usize,
        with_prev: bool,
    ) -> Result<Vec<Event>, RevisionError> {
        if from < self.compacted {
            return Err(RevisionError::Compacted { compact_revision: self.compacted });
        }
        let mut out = Vec::new();
        for (rev, key) in self.revs.range(Revision::new(from.max(1), 0)..) {
            if out.len() >= limit {
                break;
            }
            if !range.contains(key) {
                continue;
            }
            let Some(history) = self.keys.get(key) else { continue };
            let idx = history.partition_point(|v| v.rev < *rev);
            let Some(v) = history.get(idx).filter(|v| v.rev == *rev) else { continue };
            let prev = if with_prev && idx > 0 {
                Some(&history[idx - 1]).filter(|p| !p.tombstone).map(|p| to_kv(key, p, false))
            } else {
                None
            };
            out.push(event_of(key, v, prev));
        }
        Ok(out)
    }

    // === snapshot support ===

    pub(crate) fn histories(&self) -> impl Iterator<Item = (&Bytes, &History)> {
        self.keys.iter()
    }

    /// Rebuilds a store from its parts (a decoded snapshot). Histories must be
    /// sorted oldest first; the revision index is derived from them.
    pub(crate) fn from_parts(
        histories: impl IntoIterator<Item = (Bytes, Vec<Version>)>,
        current: i64,
        compacted: i64,
    ) -> Self {
        let mut keys = OrdMap::new();
        let mut revs = OrdMap::new();
        for (key, history) in histories {
            if history.is_empty() {
                continue;
            }
            for v in &history {
                if v.rev.main >= compacted {
                    revs.insert(v.rev, key.clone());
                }
            }
            keys.insert(key, Arc::new(history));
        }
        Self { keys, revs, current, compacted }
    }
}

/// A write command in progress: all changes share one main revision.
pub struct WriteTxn<'a> {
    mvcc: &'a mut Mvcc,
    main: i64,
    sub: i64,
    events: Vec<Event>,
}

impl WriteTxn<'_> {
    /// The revision this command's changes carry.
    pub fn revision(&self) -> i64 {
        self.main
    }

    pub fn store(&self) -> &Mvcc {
        self.mvcc
    }

    /// Reads see this command's earlier changes (etcd txn semantics).
    pub fn get(&self, key: &[u8]) -> Option<KeyValue> {
        self.mvcc.get(key)
    }

    pub fn range(&self, range: &KeyRange, opts: &RangeOptions) -> Result<RangeResult, RevisionError> {
        let mut r = self.mvcc.range(range, opts)?;
        r.revision = self.current_revision();
        Ok(r)
    }

    /// The store revision as seen inside this command.
    pub fn current_revision(&self) -> i64 {
        if self.sub > 0 { self.main } else { self.mvcc.current }
    }

    /// Writes `key`; returns the previous live version.
    pub fn put(&mut self, key: Bytes, value: Bytes, lease: i64) -> Option<KeyValue> {
        let rev = Revision::new(self.main, self.sub);
        self.sub += 1;
        let history = self.mvcc.keys.entry(key.clone()).or_default();
        let prev = history.last().filter(|v| !v.tombstone).cloned();
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (self.main, 1),
        };
        let v = Version { rev, create_revision, version, value, lease, tombstone: false };
        let prev_kv = prev.as_ref().map(|p| to_kv(&key, p, false));
        self.events.push(event_of(&key, &v, prev_kv.clone()));
        Arc::make_mut(history).push(v);
        self.mvcc.revs.insert(rev, key);
        self.mvcc.current = self.main;
        prev_kv
    }

    /// Deletes `key` if it is live; returns the deleted version.
    pub fn delete(&mut self, key: &Bytes) -> Option<KeyValue> {
        let history = self.mvcc.keys.get_mut(key)?;
        let prev = history.last().filter(|v| !v.tombstone)?.clone();
        let rev = Revision::new(self.main, self.sub);
        self.sub += 1;
        let v = Version { rev, create_revision: 0, version: 0, value: Bytes::new(), lease: 0, tombstone: true };
        let prev_kv = to_kv(key, &prev, false);
        self.events.push(event_of(key, &v, Some(prev_kv.clone())));
        Arc::make_mut(history).push(v);
        self.mvcc.revs.insert(rev, key.clone());
        self.mvcc.current = self.main;
        Some(prev_kv)
    }

    /// Ends the command, returning the events it produced in revision order.
    pub fn finish(self) -> Vec<Event> {
        self.events
    }
}

/// The client-visible form of a version.
pub fn to_kv(key: &[u8], v: &Version, keys_only: bool) -> KeyValue {
    KeyValue {
        key: Bytes::copy_from_slice(key),
        create_revision: v.create_revision,
        mod_revision: v.rev.main,
        version: v.version,
        value: if keys_only { Bytes::new() } else { v.value.clone() },
        lease: v.lease,
    }
}

fn event_of(key: &[u8], v: &Version, prev_kv: Option<KeyValue>) -> Event {
    if v.tombstone {
        // etcd's delete events carry only the key and the deletion revision.
        Event {
            r#type: EventType::Delete as i32,
            kv: Some(mvccpb::KeyValue {
                key: Bytes::copy_from_slice(key),
                mod_revision: v.rev.main,
                ..Default::default()
            }),
            prev_kv,
        }
    } else {
        Event { r#type: EventType::Put as i32, kv: Some(to_kv(key, v, false)), prev_kv }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn put(m: &mut Mvcc, k: &str, v: &str) -> i64 {
        let mut w = m.write();
        w.put(b(k), b(v), 0);
        let rev = w.revision();
        w.finish();
        rev
    }

    fn del(m: &mut Mvcc, k: &str) -> bool {
        let mut w = m.write();
        let gone = w.delete(&b(k)).is_some();
        w.finish();
        gone
    }

    fn get_at(m: &Mvcc, k: &str, rev: i64) -> Result<Option<String>, RevisionError> {
        let r = m.range(&KeyRange::single(b(k)), &RangeOptions { revision: rev, ..Default::default() })?;
        Ok(r.kvs.first().map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
    }

    #[test]
    fn revisions_versions_and_create_revision_follow_etcd() {
        let mut m = Mvcc::new();
        assert_eq!(m.current_revision(), 1);
        assert_eq!(put(&mut m, "a", "1"), 2);
        assert_eq!(put(&mut m, "a", "2"), 3);
        let kv = m.get(b"a").unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
        assert!(del(&mut m, "a"));
        assert_eq!(m.current_revision(), 4);
        assert!(m.get(b"a").is_none());
        // Deleting a missing key changes nothing and does not bump the revision.
        assert!(!del(&mut m, "a"));
        assert_eq!(m.current_revision(), 4);
        assert_eq!(put(&mut m, "a", "3"), 5);
        let kv = m.get(b"a").unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
    }

    #[test]
    fn reads_at_past_revisions_see_the_past() {
        let mut m = Mvcc::new();
        put(&mut m, "k", "v1"); // 2
        put(&mut m, "k", "v2"); // 3
        del(&mut m, "k"); // 4
        assert_eq!(get_at(&m, "k", 1).unwrap(), None);
        assert_eq!(get_at(&m, "k", 2).unwrap().as_deref(), Some("v1"));
        assert_eq!(get_at(&m, "k", 3).unwrap().as_deref(), Some("v2"));
        assert_eq!(get_at(&m, "k", 4).unwrap(), None);
        assert_eq!(get_at(&m, "k", 5), Err(RevisionError::Future));
    }

    #[test]
    fn compaction_keeps_the_visible_version_and_refuses_older_reads() {
        let mut m = Mvcc::new();
        put(&mut m, "a", "1"); // 2
        put(&mut m, "a", "2"); // 3
        put(&mut m, "b", "1"); // 4
        del(&mut m, "b"); // 5
        put(&mut m, "a", "3"); // 6
        m.compact(5).unwrap();
        assert_eq!(get_at(&m, "a", 4), Err(RevisionError::Compacted { compact_revision: 5 }));
        assert_eq!(get_at(&m, "a", 5).unwrap().as_deref(), Some("2"));
        assert_eq!(get_at(&m, "a", 6).unwrap().as_deref(), Some("3"));
        assert_eq!(get_at(&m, "b", 5).unwrap(), None);
        // "b" was deleted at or before the compaction point: it is gone entirely.
        assert!(m.histories().all(|(k, _)| &k[..] != b"b"));
        assert_eq!(m.compact(5), Err(RevisionError::Compacted { compact_revision: 5 }));
        assert_eq!(m.compact(7), Err(RevisionError::Future));
        // As in etcd, a tombstone at the compaction revision goes with the key.
        let events = m.events_since(&KeyRange::new(b(""), Bytes::from_static(&[0])), 5, 100, false).unwrap();
        assert_eq!(events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision).collect::<Vec<_>>(), vec![6]);
        assert!(m.events_since(&KeyRange::single(b("a")), 4, 100, false).is_err());
    }

    #[test]
    fn ranges_prefixes_limits_and_counts() {
        let mut m = Mvcc::new();
        for k in ["a/1", "a/2", "a/3", "b/1"] {
            put(&mut m, k, "x");
        }
        let r = m.range(&KeyRange::prefix(b("a/")), &RangeOptions::default()).unwrap();
        assert_eq!(r.count, 3);
        let r = m.range(&KeyRange::prefix(b("a/")), &RangeOptions { limit: 2, ..Default::default() }).unwrap();
        assert_eq!((r.kvs.len(), r.count), (2, 3));
        let r = m.range(&KeyRange::new(b("a/2"), Bytes::from_static(&[0])), &RangeOptions::default()).unwrap();
        assert_eq!(r.count, 3);
        let r = m.range(&KeyRange::new(Bytes::from_static(&[0]), Bytes::from_static(&[0])), &RangeOptions::default());
        assert_eq!(r.unwrap().count, 4);
        let r = m.range(&KeyRange::new(b("b"), b("a")), &RangeOptions::default()).unwrap();
        assert_eq!(r.count, 0);
        let r = m.range(&KeyRange::prefix(b("")), &RangeOptions { count_only: true, ..Default::default() }).unwrap();
        assert_eq!((r.kvs.len(), r.count), (0, 4));
        let r = m.range(&KeyRange::prefix(b("a/")), &RangeOptions { keys_only: true, ..Default::default() });
        assert!(r.unwrap().kvs.iter().all(|kv| kv.value.is_empty()));
        let r = m.range(&KeyRange::prefix(b("")), &RangeOptions { min_mod_revision: 4, ..Default::default() });
        assert_eq!(r.unwrap().count, 2);
    }

    #[test]
    fn prefix_end_matches_etcd() {
        assert_eq!(&prefix_end(b"a")[..], b"b");
        assert_eq!(&prefix_end(b"a\xff")[..], b"b");
        assert_eq!(&prefix_end(b"\xff\xff")[..], b"\0");
        assert_eq!(&prefix_end(b"")[..], b"\0");
    }

    #[test]
    fn one_command_is_one_revision_with_ordered_sub_revisions() {
        let mut m = Mvcc::new();
        let mut w = m.write();
        w.put(b("x"), b("1"), 0);
        w.put(b("y"), b("1"), 0);
        let events = w.finish();
        assert_eq!(events.len(), 2);
        assert_eq!(m.current_revision(), 2);
        let events = m.events_since(&KeyRange::prefix(b("")), 0, 10, false).unwrap();
        let keys: Vec<_> = events.iter().map(|e| e.kv.as_ref().unwrap().key.clone()).collect();
        assert_eq!(keys, vec![b("x"), b("y")]);
    }

    #[test]
    fn scan_of_a_clone_sees_its_revision_not_later_writes() {
        let mut m = Mvcc::new();
        for (k, v) in [("a/1", "x"), ("a/2", "y"), ("b/1", "z")] {
            let mut w = m.write();
            w.put(b(k), b(v), 0);
            w.finish();
        }
        let frozen = m.clone();
        let mut w = m.write();
        w.delete(&b("a/1"));
        w.put(b("a/3"), b("w"), 0);
        w.finish();
        let got: Vec<_> =
            frozen.scan(&KeyRange::prefix(b("a/")), 0).unwrap().map(|(k, v, r)| (k.clone(), v.clone(), r)).collect();
        assert_eq!(got, vec![(b("a/1"), b("x"), 2), (b("a/2"), b("y"), 3)]);
        // An older revision of the live store: a/2 did not exist yet at revision 2.
        let at2: Vec<_> = m.scan(&KeyRange::prefix(b("a/")), 2).unwrap().map(|(k, ..)| k.clone()).collect();
        assert_eq!(at2, vec![b("a/1")]);
        assert!(matches!(m.scan(&KeyRange::prefix(b("a/")), 99).map(|_| ()), Err(RevisionError::Future)));
    }

    #[test]
    fn clones_are_isolated_snapshots() {
        let mut m = Mvcc::new();
        put(&mut m, "k", "old");
        let frozen = m.clone();
        put(&mut m, "k", "new");
        assert_eq!(&frozen.get(b"k").unwrap().value[..], b"old");
        assert_eq!(&m.get(b"k").unwrap().value[..], b"new");
    }

    #[test]
    fn events_carry_prev_kv_when_asked() {
        let mut m = Mvcc::new();
        put(&mut m, "k", "1");
        put(&mut m, "k", "2");
        del(&mut m, "k");
        let ev = m.events_since(&KeyRange::single(b("k")), 3, 10, true).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(&ev[0].prev_kv.as_ref().unwrap().value[..], b"1");
        assert_eq!(ev[1].r#type, EventType::Delete as i32);
        assert_eq!(&ev[1].prev_kv.as_ref().unwrap().value[..], b"2");
    }
}
