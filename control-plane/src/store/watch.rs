//! The watcher hub: streams committed events to watchers, every event exactly once
//! and in revision order, however fast or slow the watcher reads.
//!
//! A watcher is either *synced* (it has seen everything up to the current revision
//! and receives new events as they are applied) or *unsynced* (it is behind: it
//! started from an old revision, or its channel was full). Unsynced watchers are
//! caught up from the store's history by [`sync_loop`], which then marks them synced.
//!
//! Ordering argument: the apply thread calls [`WatchHub::notify`] while it holds the
//! state machine's write lock, and the catch-up takes the state machine's read lock
//! before the hub's lock. So a catch-up and an apply never interleave: when a
//! watcher is marked synced its `next_rev` is exactly one past the current revision,
//! and the next notify delivers from there. Lock order is always state machine, then hub.

use super::StateMachine;
use super::mvcc::{KeyRange, RevisionError};
use parking_lot::{Mutex, RwLock};
use rk_proto::mvccpb::{Event, event::EventType};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Most events a catch-up step reads for one watcher before moving to the next.
const CATCH_UP_BATCH: usize = 1000;

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchMessage {
    /// Events of one or more revisions, in order; `revision` is the store revision
    /// the batch brings the watcher up to.
    Events { events: Vec<Event>, revision: i64 },
    /// The watcher's next revision was compacted away; the watch is over.
    Compacted { compact_revision: i64 },
    /// Everything up to `revision` has been delivered (a progress notification).
    Progress { revision: i64 },
}

/// Identifies a watcher in the hub (unique per hub).
pub type WatcherKey = u64;

/// Where a watcher's messages go: a channel shared by all watches of one client
/// stream, each message tagged with the stream-local watch id.
pub type WatchSender = mpsc::Sender<(i64, WatchMessage)>;

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub range: KeyRange,
    /// First revision to deliver; 0 or less means "from now on".
    pub start_revision: i64,
    pub prev_kv: bool,
    pub no_put: bool,
    pub no_delete: bool,
    /// The id the client knows this watch by (echoed in every message).
    pub watch_id: i64,
}

struct Watcher {
    spec: WatchSpec,
    /// First revision not yet delivered.
    next_rev: i64,
    synced: bool,
    tx: WatchSender,
}

impl Watcher {
    fn wants(&self, e: &Event) -> bool {
        let Some(kv) = &e.kv else { return false };
        if kv.mod_revision < self.next_rev || !self.spec.range.contains(&kv.key) {
            return false;
        }
        let is_put = e.r#type == EventType::Put as i32;
        !(is_put && self.spec.no_put || !is_put && self.spec.no_delete)
    }

    fn shape(&self, e: &Event) -> Event {
        let mut e = e.clone();
        if !self.spec.prev_kv {
            e.prev_kv = None;
        }
        e
    }
}

#[derive(Default)]
struct HubInner {
    next_key: WatcherKey,
    watchers: HashMap<WatcherKey, Watcher>,
    unsynced: usize,
}

/// All watchers of one replica.
#[derive(Default)]
pub struct WatchHub {
    inner: Mutex<HubInner>,
    /// Wakes the catch-up loop when a watcher falls behind.
    wake: Notify,
}

impl WatchHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a watcher. The caller holds the state machine (read or write) so the
    /// registration is ordered against applies. Fails if `start_revision` is compacted.
    pub fn watch(&self, sm: &StateMachine, spec: WatchSpec, tx: WatchSender) -> Result<WatcherKey, RevisionError> {
        let current = sm.mvcc.current_revision();
        let (next_rev, synced) = if spec.start_revision <= 0 {
            (current + 1, true)
        } else if spec.start_revision > current {
            (spec.start_revision, true)
        } else {
            let compacted = sm.mvcc.compact_revision();
            if spec.start_revision < compacted {
                return Err(RevisionError::Compacted { compact_revision: compacted });
            }
            (spec.start_revision, false)
        };
        let mut inner = self.inner.lock();
        let key = inner.next_key;
        inner.next_key += 1;
        if !synced {
            inner.unsynced += 1;
        }
        inner.watchers.insert(key, Watcher { spec, next_rev, synced, tx });
        drop(inner);
        if !synced {
            self.wake.notify_one();
        }
        Ok(key)
    }

    pub fn cancel(&self, key: WatcherKey) -> bool {
        let mut inner = self.inner.lock();
        match inner.watchers.remove(&key) {
            Some(w) => {
                if !w.synced {
                    inner.unsynced -= 1;
                }
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().watchers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivers the events of freshly applied commands (in revision order) to synced
    /// watchers. Called by the apply thread while it holds the state machine's write
    /// lock; `revision` is the store revision after these events.
    pub fn notify(&self, events: &[Event], revision: i64) {
        if events.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        let mut fell_behind = 0;
        inner.watchers.retain(|_, w| {
            if !w.synced {
                return true;
            }
            let batch: Vec<Event> = events.iter().filter(|e| w.wants(e)).map(|e| w.shape(e)).collect();
            if batch.is_empty() {
                return true;
            }
            let first = batch[0].kv.as_ref().map_or(revision, |kv| kv.mod_revision);
            match w.tx.try_send((w.spec.watch_id, WatchMessage::Events { events: batch, revision })) {
                Ok(()) => {
                    w.next_rev = revision + 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // The reader is slow: stop pushing and let the catch-up loop replay
                    // from history once it has room, from the first undelivered event.
                    w.next_rev = first;
                    w.synced = false;
                    fell_behind += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        inner.unsynced += fell_behind;
        drop(inner);
        if fell_behind > 0 {
            self.wake.notify_one();
        }
    }

    /// After a snapshot replaced the state wholesale, every watcher must be caught up
    /// from the new history (or told it was compacted).
    pub fn resync_all(&self) {
        let mut inner = self.inner.lock();
        for w in inner.watchers.values_mut() {
            w.synced = false;
        }
        inner.unsynced = inner.watchers.len();
        drop(inner);
        self.wake.notify_one();
    }

    /// Sends a progress notification to the watchers selected by `filter` that are
    /// synced (a behind watcher must not be told it is up to date).
    pub fn progress(&self, sm: &StateMachine, filter: impl Fn(&WatchSender) -> bool) {
        let revision = sm.mvcc.current_revision();
        let inner = self.inner.lock();
        for w in inner.watchers.values().filter(|w| w.synced && filter(&w.tx)) {
            let _ = w.tx.try_send((w.spec.watch_id, WatchMessage::Progress { revision }));
        }
    }

    /// Whether a watcher is caught up (unknown watchers are not).
    pub fn is_synced(&self, key: WatcherKey) -> bool {
        self.inner.lock().watchers.get(&key).is_some_and(|w| w.synced)
    }

    /// Whether every watcher feeding `tx` is synced (etcd answers a progress request
    /// only then).
    pub fn all_synced(&self, tx: &WatchSender) -> bool {
        self.inner.lock().watchers.values().filter(|w| w.tx.same_channel(tx)).all(|w| w.synced)
    }

    /// One catch-up pass over unsynced watchers. Returns true when some watcher is
    /// still behind (its channel was full): the caller should come back soon.
    pub fn catch_up(&self, sm: &StateMachine) -> bool {
        let current = sm.mvcc.current_revision();
        let mut inner = self.inner.lock();
        if inner.unsynced == 0 {
            return false;
        }
        let mut still_behind = 0;
        let mut done = Vec::new();
        for (key, w) in inner.watchers.iter_mut().filter(|(_, w)| !w.synced) {
            loop {
                let capacity = w.tx.capacity();
                if capacity == 0 {
                    still_behind += 1;
                    break;
                }
                let events = match sm.mvcc.events_since(&w.spec.range, w.next_rev, CATCH_UP_BATCH, w.spec.prev_kv) {
                    Ok(ev) => ev,
                    Err(RevisionError::Compacted { compact_revision }) => {
                        let _ = w.tx.try_send((w.spec.watch_id, WatchMessage::Compacted { compact_revision }));
                        done.push(*key);
                        break;
                    }
                    Err(RevisionError::Future) => Vec::new(),
                };
                let complete = events.len() < CATCH_UP_BATCH;
                let mut batch: Vec<Event> = events.iter().filter(|e| w.wants(e)).cloned().collect();
                // A full batch may end in the middle of a revision: hold back that last
                // revision so a revision is never split across two messages.
                let upto = if complete {
                    current
                } else {
                    let last = batch.last().and_then(|e| e.kv.as_ref()).map_or(current, |kv| kv.mod_revision);
                    let held = batch.iter().rposition(|e| e.kv.as_ref().is_some_and(|kv| kv.mod_revision < last));
                    match held {
                        Some(i) => {
                            batch.truncate(i + 1);
                            last - 1
                        }
                        // One revision larger than the batch: send it whole.
                        None => {
                            batch = sm
                                .mvcc
                                .events_since(&w.spec.range, last, usize::MAX, w.spec.prev_kv)
                                .unwrap_or_default()
                                .into_iter()
                                .filter(|e| e.kv.as_ref().is_some_and(|kv| kv.mod_revision == last) && w.wants(e))
                                .collect();
                            last
                        }
                    }
                };
                if !batch.is_empty() {
                    let msg = WatchMessage::Events { events: batch, revision: upto };
                    if w.tx.try_send((w.spec.watch_id, msg)).is_err() {
                        still_behind += 1;
                        break;
                    }
                }
                // Never backwards: a watcher that asked for a revision this replica has
                // not reached yet (a client that moved here from a replica further ahead)
                // keeps waiting for it. Lowering it to `current + 1` here, after a snapshot
                // install made every watcher catch up, once sent a client revisions it had
                // already seen (the crash tests' watch checker caught it).
                w.next_rev = w.next_rev.max(upto + 1);
                if complete || upto >= current {
                    w.synced = true;
                    break;
                }
            }
        }
        for key in done {
            inner.watchers.remove(&key);
        }
        inner.unsynced = inner.watchers.values().filter(|w| !w.synced).count();
        inner.watchers.retain(|_, w| !w.tx.is_closed());
        still_behind > 0
    }
}

/// Runs forever: catches up unsynced watchers whenever one falls behind, and polls
/// while a reader is too slow to take more.
pub async fn sync_loop(sm: Arc<RwLock<StateMachine>>, hub: Arc<WatchHub>) {
    loop {
        let again = {
            let sm = sm.read();
            hub.catch_up(&sm)
        };
        if again {
            tokio::select! {
                _ = hub.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        } else {
            hub.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mvcc::KeyRange;
    use bytes::Bytes;

    fn put(sm: &mut StateMachine, hub: &WatchHub, k: &str, v: &str) {
        let mut w = sm.mvcc.write();
        w.put(Bytes::copy_from_slice(k.as_bytes()), Bytes::copy_from_slice(v.as_bytes()), 0);
        let events = w.finish();
        hub.notify(&events, sm.mvcc.current_revision());
    }

    fn spec(prefix: &str, start: i64) -> WatchSpec {
        WatchSpec {
            range: KeyRange::prefix(Bytes::copy_from_slice(prefix.as_bytes())),
            start_revision: start,
            prev_kv: false,
            no_put: false,
            no_delete: false,
            watch_id: 1,
        }
    }

    fn revisions(rx: &mut mpsc::Receiver<(i64, WatchMessage)>) -> Vec<i64> {
        let mut out = Vec::new();
        while let Ok((_, msg)) = rx.try_recv() {
            if let WatchMessage::Events { events, .. } = msg {
                out.extend(events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision));
            }
        }
        out
    }

    #[test]
    fn historical_watch_then_live_events_without_gaps_or_duplicates() {
        let mut sm = StateMachine::new(1);
        let hub = WatchHub::new();
        for i in 0..5 {
            put(&mut sm, &hub, "a/k", &i.to_string()); // revisions 2..=6
        }
        let (tx, mut rx) = mpsc::channel(16);
        hub.watch(&sm, spec("a/", 3), tx).unwrap();
        // A live event before the catch-up ran must not be delivered out of order.
        put(&mut sm, &hub, "a/k", "x"); // 7
        assert!(!hub.catch_up(&sm));
        put(&mut sm, &hub, "a/k", "y"); // 8
        put(&mut sm, &hub, "b/k", "z"); // 9: other prefix
        assert_eq!(revisions(&mut rx), vec![3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_slow_reader_falls_behind_and_is_caught_up_in_order() {
        let mut sm = StateMachine::new(1);
        let hub = WatchHub::new();
        let (tx, mut rx) = mpsc::channel(2);
        hub.watch(&sm, spec("", 0), tx).unwrap();
        for i in 0..10 {
            put(&mut sm, &hub, "k", &i.to_string()); // 2..=11
        }
        let mut seen = revisions(&mut rx);
        while hub.catch_up(&sm) || !seen.ends_with(&[11]) {
            seen.extend(revisions(&mut rx));
        }
        seen.extend(revisions(&mut rx));
        assert_eq!(seen, (2..=11).collect::<Vec<_>>());
        put(&mut sm, &hub, "k", "live"); // 12
        assert_eq!(revisions(&mut rx), vec![12]);
    }

    #[test]
    fn compacted_start_is_refused_and_lagging_watcher_told() {
        let mut sm = StateMachine::new(1);
        let hub = WatchHub::new();
        for i in 0..5 {
            put(&mut sm, &hub, "k", &i.to_string());
        }
        sm.mvcc.compact(4).unwrap();
        let (tx, _rx) = mpsc::channel(4);
        assert_eq!(hub.watch(&sm, spec("", 2), tx).unwrap_err(), RevisionError::Compacted { compact_revision: 4 });
    }

    #[test]
    fn future_start_revision_waits_for_that_revision() {
        let mut sm = StateMachine::new(1);
        let hub = WatchHub::new();
        let (tx, mut rx) = mpsc::channel(8);
        hub.watch(&sm, spec("", 4), tx).unwrap();
        for i in 0..4 {
            put(&mut sm, &hub, "k", &i.to_string()); // 2..=5
        }
        assert_eq!(revisions(&mut rx), vec![4, 5]);
    }

    #[test]
    fn a_future_watcher_made_to_catch_up_still_waits_for_its_revision() {
        let mut sm = StateMachine::new(1);
        let hub = WatchHub::new();
        let (tx, mut rx) = mpsc::channel(8);
        hub.watch(&sm, spec("", 6), tx).unwrap();
        put(&mut sm, &hub, "k", "0"); // 2
        // A snapshot install makes every watcher catch up from the store's history.
        hub.resync_all();
        assert!(!hub.catch_up(&sm));
        for i in 1..6 {
            put(&mut sm, &hub, "k", &i.to_string()); // 3..=7
        }
        assert_eq!(revisions(&mut rx), vec![6, 7]);
    }

    #[test]
    fn filters_and_prev_kv() {
        let mut sm = StateMachine::new(1);
        let hub = WatchHub::new();
        let (tx, mut rx) = mpsc::channel(8);
        let mut s = spec("", 0);
        s.no_put = true;
        s.prev_kv = true;
        hub.watch(&sm, s, tx).unwrap();
        put(&mut sm, &hub, "k", "v");
        let mut w = sm.mvcc.write();
        w.delete(&Bytes::from_static(b"k"));
        let events = w.finish();
        hub.notify(&events, sm.mvcc.current_revision());
        let (_, WatchMessage::Events { events, .. }) = rx.try_recv().unwrap() else { panic!() };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].r#type, EventType::Delete as i32);
        assert_eq!(&events[0].prev_kv.as_ref().unwrap().value[..], b"v");
        assert!(rx.try_recv().is_err());
    }
}
