//! The controller runtime: informers (watch-fed caches), a work queue, and the
//! loop that runs reconcilers on the raft leader only.
//!
//! ```text
//!  store ──watch──► Informer (cache) ──handlers──► WorkQueue ──► workers ──► Reconciler::reconcile
//!                                                     ▲   (dedup, one key at a time, backoff)   │
//!                                                     └──────────── requeue / retry ◄────────────┘
//! ```
//!
//! Handlers only enqueue keys; reconcilers read from the caches and write through
//! the API ([`Api`]), so they get validation and optimistic concurrency like any
//! client. While leading in term `t`, every write is fenced to `t`: once another
//! replica leads, nothing this one's controllers still send can take effect.

use crate::api::error::ApiError;
use crate::api::query::ListOptions;
use crate::api::registry::Resource;
use crate::api::rest::Api;
use crate::api::store::{Freshness, ObjectStore};
use crate::store::mvcc::KeyRange;
use crate::store::watch::{WatchMessage, WatchSpec};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use rk_proto::mvccpb::event::EventType;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Other(String),
}

/// What a reconcile asks for next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Action {
    /// Look again after this long even if nothing changes (a fallback requeue).
    pub requeue_after: Option<Duration>,
}

impl Action {
    pub fn requeue(after: Duration) -> Self {
        Self { requeue_after: Some(after) }
    }

    pub fn done() -> Self {
        Self::default()
    }
}

/// `namespace/name` (or just `name` for cluster-scoped objects).
pub type Key = String;

pub fn key_of(obj: &Value) -> Key {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

// === work queue ===

struct QueueState<K> {
    queue: VecDeque<K>,
    /// Keys waiting in `queue` (so adding again is a no-op).
    queued: HashSet<K>,
    /// Keys a worker holds; a key added meanwhile waits in `dirty` until `done`.
    processing: HashSet<K>,
    dirty: HashSet<K>,
    failures: HashMap<K, u32>,
    shut: bool,
}

/// A queue of keys that deduplicates, never hands the same key to two workers at
/// once, and retries failures with exponential backoff (10 ms doubling to 30 s).
pub struct WorkQueue<K> {
    state: Mutex<QueueState<K>>,
    notify: Notify,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<K> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(QueueState {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
                failures: HashMap::new(),
                shut: false,
            }),
            notify: Notify::new(),
        })
    }

    pub fn add(&self, key: K) {
        let mut s = self.state.lock();
        if s.shut {
            return;
        }
        if s.processing.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn add_after(self: &Arc<Self>, key: K, after: Duration) {
        if after.is_zero() {
            return self.add(key);
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            q.add(key);
        });
    }

    /// Adds the key again after a backoff that grows with its consecutive failures.
    pub fn retry(self: &Arc<Self>, key: K) {
        let n = {
            let mut s = self.state.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let backoff = Duration::from_millis(10).saturating_mul(1 << n.min(12)).min(Duration::from_secs(30));
        self.add_after(key, backoff);
    }

    /// Clears the failure count after a success.
    pub fn forget(&self, key: &K) {
        self.state.lock().failures.remove(key);
    }

    /// The next key; `None` once the queue is shut down.
    pub async fn next(&self) -> Option<K> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock();
                if s.shut {
                    return None;
                }
                if let Some(key) = s.queue.pop_front() {
                    s.queued.remove(&key);
                    s.processing.insert(key.clone());
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// The next key if one is waiting, without waiting (to take batches).
    pub fn try_next(&self) -> Option<K> {
        let mut s = self.state.lock();
        let key = s.queue.pop_front()?;
        s.queued.remove(&key);
        s.processing.insert(key.clone());
        Some(key)
    }

    /// A worker finished `key`; if it changed meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let mut s = self.state.lock();
        s.processing.remove(key);
        if s.dirty.remove(key) && s.queued.insert(key.clone()) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn shutdown(&self) {
        self.state.lock().shut = true;
        self.notify.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// === informer ===

/// A change an informer saw.
#[derive(Debug, Clone)]
pub enum Change {
    Added(Arc<Value>),
    Modified { old: Arc<Value>, new: Arc<Value> },
    Deleted(Arc<Value>),
}

impl Change {
    pub fn object(&self) -> &Value {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Modified { new, .. } => new,
        }
    }
}

type Handler = Box<dyn Fn(&Change) + Send + Sync>;

/// A cache of every object of one resource, kept current by a watch (list, then
/// watch from the list's revision; relist when the history was compacted).
pub struct Informer {
    pub res: &'static Resource,
    cache: RwLock<BTreeMap<Key, Arc<Value>>>,
    handlers: RwLock<Vec<Handler>>,
    synced: watch::Sender<bool>,
}

impl Informer {
    pub fn new(res: &'static Resource) -> Arc<Self> {
        Arc::new(Self {
            res,
            cache: RwLock::new(BTreeMap::new()),
            handlers: RwLock::new(Vec::new()),
            synced: watch::channel(false).0,
        })
    }

    pub fn on_change(&self, f: impl Fn(&Change) + Send + Sync + 'static) {
        self.handlers.write().push(Box::new(f));
    }

    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.cache.read().get(key).cloned()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<Value>> {
        self.cache.read().values().cloned().collect()
    }

    /// Cached objects of one namespace.
    pub fn list_namespace(&self, ns: &str) -> Vec<Arc<Value>> {
        let from = format!("{ns}/");
        let to = format!("{ns}0"); // '0' sorts right after '/'
        self.cache.read().range(from..to).map(|(_, v)| v.clone()).collect()
    }

    pub fn keys(&self) -> Vec<Key> {
        self.cache.read().keys().cloned().collect()
    }

    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn emit(&self, change: Change) {
        for h in self.handlers.read().iter() {
            h(&change);
        }
    }

    /// Replaces the cache with a fresh list, emitting the differences.
    fn replace(&self, items: Vec<Value>) {
        let fresh: BTreeMap<Key, Arc<Value>> = items.into_iter().map(|v| (key_of(&v), Arc::new(v))).collect();
        let old = std::mem::replace(&mut *self.cache.write(), fresh.clone());
        for (k, v) in &fresh {
            match old.get(k) {
                None => self.emit(Change::Added(v.clone())),
                Some(o) if o.pointer("/metadata/resourceVersion") != v.pointer("/metadata/resourceVersion") => {
                    self.emit(Change::Modified { old: o.clone(), new: v.clone() })
                }
                Some(_) => {}
            }
        }
        for (k, v) in old {
            if !fresh.contains_key(&k) {
                self.emit(Change::Deleted(v));
            }
        }
    }

    fn apply_event(&self, store: &ObjectStore, e: &rk_proto::mvccpb::Event) {
        let Some(kv) = &e.kv else { return };
        if e.r#type == EventType::Delete as i32 {
            let Some(prev) = &e.prev_kv else { return };
            let Ok(mut obj) = store.stored(&prev.key, &prev.value, prev.mod_revision).and_then(|s| s.object()) else {
                return;
            };
            crate::api::store::set_resource_version(&mut obj, kv.mod_revision);
            let key = key_of(&obj);
            self.cache.write().remove(&key);
            self.emit(Change::Deleted(Arc::new(obj)));
            return;
        }
        let Ok(obj) = store.stored(&kv.key, &kv.value, kv.mod_revision).and_then(|s| s.object()) else { return };
        let obj = Arc::new(obj);
        let key = key_of(&obj);
        let old = self.cache.write().insert(key, obj.clone());
        match old {
            Some(old) => self.emit(Change::Modified { old, new: obj }),
            None => self.emit(Change::Added(obj)),
        }
    }

    /// Keeps the cache current until `stop` turns true.
    pub async fn run(self: Arc<Self>, api: Api, mut stop: watch::Receiver<bool>) {
        let prefix = self.res.prefix(None);
        'relist: loop {
            if *stop.borrow() {
                return;
            }
            let listed = api.list(self.res, None, &ListOptions::default(), Freshness::Latest).await;
            let result = match listed {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(resource = self.res.plural, error = %e, "informer list failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue 'relist,
                        _ = stop.changed() => return,
                    }
                }
            };
            let items: Vec<Value> = result.page.items.iter().filter_map(|s| s.object().ok()).collect();
            self.replace(items);
            self.synced.send_replace(true);
            let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
            let hub = api.store.raft.shared.hub.clone();
            let spec = WatchSpec {
                range: KeyRange::prefix(Bytes::from(prefix.clone())),
                start_revision: result.page.revision + 1,
                prev_kv: true,
                no_put: false,
                no_delete: false,
                watch_id: 0,
            };
            let registered = {
                let sm = api.store.raft.shared.sm.read();
                hub.watch(&sm, spec, tx)
            };
            let Ok(watch_key) = registered else { continue 'relist };
            loop {
                tokio::select! {
                    _ = stop.changed() => {
                        hub.cancel(watch_key);
                        return;
                    }
                    msg = rx.recv() => match msg {
                        Some((_, WatchMessage::Events { events, .. })) => {
                            for e in &events {
                                self.apply_event(&api.store, e);
                            }
                        }
                        Some((_, WatchMessage::Progress { .. })) => {}
                        Some((_, WatchMessage::Compacted { .. })) | None => {
                            hub.cancel(watch_key);
                            continue 'relist;
                        }
                    }
                }
            }
        }
    }
}

// === typed mirrors ===

/// A typed copy of an informer's cache, converted once per change (controllers'
/// decision functions work on k8s-openapi types).
pub struct Mirror<T> {
    map: RwLock<BTreeMap<Key, Arc<T>>>,
}

impl<T: serde::de::DeserializeOwned + Send + Sync + 'static> Mirror<T> {
    /// Follows `informer`. Attach mirrors before any handler that enqueues work,
    /// so a reconcile always sees the change that triggered it.
    pub fn attach(informer: &Informer) -> Arc<Self> {
        let m = Arc::new(Self { map: RwLock::new(BTreeMap::new()) });
        let mirror = m.clone();
        informer.on_change(move |c| {
            let key = key_of(c.object());
            match c {
                Change::Deleted(_) => {
                    mirror.map.write().remove(&key);
                }
                _ => match serde_json::from_value::<T>(c.object().clone()) {
                    Ok(t) => {
                        mirror.map.write().insert(key, Arc::new(t));
                    }
                    Err(e) => tracing::debug!(%key, error = %e, "an object does not decode as its kind; ignored"),
                },
            }
        });
        m
    }

    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        self.map.read().get(key).cloned()
    }

    pub fn list(&self) -> Vec<Arc<T>> {
        self.map.read().values().cloned().collect()
    }

    pub fn list_namespace(&self, ns: &str) -> Vec<Arc<T>> {
        let from = format!("{ns}/");
        let to = format!("{ns}0");
        self.map.read().range(from..to).map(|(_, v)| v.clone()).collect()
    }

    /// Owned copies, for decision functions that take slices.
    pub fn snapshot(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.map.read().values().map(|v| (**v).clone()).collect()
    }

    pub fn snapshot_namespace(&self, ns: &str) -> Vec<T>
    where
        T: Clone,
    {
        self.list_namespace(ns).into_iter().map(|v| (*v).clone()).collect()
    }
}

// === reconcilers ===

/// One controller's decision loop for one key.
#[tonic::async_trait]
pub trait Reconciler: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn reconcile(&self, key: &Key) -> Result<Action, ControllerError>;
}

/// Runs `workers` workers over `queue` until the queue shuts down; a periodic
/// resync re-adds every key of `resync_from` so nothing is missed for long.
pub async fn run_workers<R: Reconciler>(reconciler: Arc<R>, queue: Arc<WorkQueue<Key>>, workers: usize) {
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let r = reconciler.clone();
        let q = queue.clone();
        handles.push(tokio::spawn(async move {
            while let Some(key) = q.next().await {
                match r.reconcile(&key).await {
                    Ok(action) => {
                        q.forget(&key);
                        if let Some(after) = action.requeue_after {
                            q.add_after(key.clone(), after);
                        }
                    }
                    Err(e) => {
                        // Conflicts are normal (someone wrote first); log the rest.
                        match &e {
                            ControllerError::Api(ApiError::Conflict { .. } | ApiError::NotFound { .. }) => {
                                tracing::debug!(controller = r.name(), %key, error = %e, "reconcile raced; retrying")
                            }
                            _ => tracing::warn!(controller = r.name(), %key, error = %e, "reconcile failed; retrying"),
                        }
                        q.retry(key.clone());
                    }
                }
                q.done(&key);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

/// Re-adds every cached key to the queue every `period` (level-triggered safety net).
pub async fn resync(
    informer: Arc<Informer>,
    queue: Arc<WorkQueue<Key>>,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        for k in informer.keys() {
            queue.add(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_dedups_and_never_hands_out_a_key_twice_at_once() {
        let q = WorkQueue::<String>::new();
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        let a = q.next().await.unwrap();
        assert_eq!(a, "a");
        // Added while being processed: held back until done.
        q.add("a".into());
        let b = q.next().await.unwrap();
        assert_eq!(b, "b");
        assert!(q.is_empty());
        q.done(&a);
        assert_eq!(q.next().await.unwrap(), "a");
        q.shutdown();
        assert!(q.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off() {
        let q = WorkQueue::<String>::new();
        q.add("k".into());
        let k = q.next().await.unwrap();
        q.retry(k.clone());
        q.done(&k);
        tokio::time::advance(Duration::from_millis(5)).await;
        assert!(q.is_empty(), "retried too early");
        tokio::time::advance(Duration::from_millis(30)).await;
        tokio::task::yield_now().await;
        assert_eq!(q.len(), 1);
    }

    #[tokio::test]
    async fn an_informer_lists_then_follows_the_store() {
        let api = crate::testing::api().await;
        let res = crate::api::registry::lookup("configmaps").unwrap();
        let cm = |n: &str| serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}});
        api.create(res, Some("default"), cm("before"), &Default::default(), "t").await.unwrap();
        let inf = Informer::new(res);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        inf.on_change(move |c| {
            let kind = match c {
                Change::Added(_) => "added",
                Change::Modified { .. } => "modified",
                Change::Deleted(_) => "deleted",
            };
            s.lock().push(format!("{kind} {}", key_of(c.object())));
        });
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(inf.clone().run(api.clone(), stop));
        inf.wait_synced().await;
        api.create(res, Some("default"), cm("after"), &Default::default(), "t").await.unwrap();
        api.delete(res, Some("default"), "before", &Default::default()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while seen.lock().len() < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*seen.lock(), ["added default/before", "added default/after", "deleted default/before"]);
        assert_eq!(inf.list_namespace("default").len(), 1);
        let _ = stop_tx.send(true);
    }
}
