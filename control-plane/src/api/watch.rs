//! Kubernetes watches: a chunked stream of `{"type": …, "object": …}` lines fed by
//! the store's watch hub.
//!
//! Started without a resourceVersion (or with "0") a watch first sends the current
//! objects as synthetic `ADDED` events and then everything after that list's
//! revision; started from a version it sends what happened after it, or a `410`
//! `ERROR` event if that history was compacted. With selectors, an object that
//! starts matching arrives as `ADDED` and one that stops matching as `DELETED`,
//! as in Kubernetes.

use super::error::ApiError;
use super::query::ListOptions;
use super::registry::Resource;
use super::rest::{Api, Filter};
use super::store::{Freshness, ObjectStore, Stored};
use super::table;
use crate::store::mvcc::KeyRange;
use crate::store::watch::{WatchMessage, WatchSpec};
use bytes::Bytes;
use rk_proto::mvccpb::event::EventType;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// Events buffered per watch before it falls back to catching up from history.
const BUFFER: usize = 1024;

/// How objects are rendered in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    Object,
    /// Server-side printing (`kubectl get -w`): each object as a one-row Table.
    Table(table::IncludeObject),
}

/// Settings of a watch stream.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub bookmark_interval: Duration,
    pub default_timeout: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self { bookmark_interval: Duration::from_secs(10), default_timeout: Duration::from_secs(1800) }
    }
}

fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// Renders an event's object (as stored bytes or a value).
struct Renderer {
    res: &'static Resource,
    render: Render,
    sent_columns: bool,
}

impl Renderer {
    fn object(&mut self, stored: &Stored) -> Result<Vec<u8>, ApiError> {
        match self.render {
            Render::Object => stored.json(),
            Render::Table(include) => self.table(&stored.object()?, include),
        }
    }

    fn value(&mut self, obj: &Value) -> Result<Vec<u8>, ApiError> {
        match self.render {
            Render::Object => serde_json::to_vec(obj).map_err(|e| ApiError::Internal(e.to_string())),
            Render::Table(include) => self.table(obj, include),
        }
    }

    fn table(&mut self, obj: &Value, include: table::IncludeObject) -> Result<Vec<u8>, ApiError> {
        let mut t = table::table_for(self.res.kind, std::slice::from_ref(obj), super::meta::now_secs(), include);
        if self.sent_columns {
            // Kubernetes sends the column definitions with the first event only.
            t["columnDefinitions"] = json!([]);
        }
        self.sent_columns = true;
        serde_json::to_vec(&t).map_err(|e| ApiError::Internal(e.to_string()))
    }
}

fn error_event(status: &ApiError) -> Bytes {
    line("ERROR", &serde_json::to_vec(&status.status()).unwrap_or_default())
}

fn bookmark(res: &Resource, revision: i64, initial_events_end: bool) -> Bytes {
    let mut meta = json!({ "resourceVersion": revision.to_string() });
    if initial_events_end {
        meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    let obj = json!({ "kind": res.kind, "apiVersion": res.api_version(), "metadata": meta });
    line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
}

/// Starts a watch; the returned channel yields the stream's lines until the watch
/// ends (timeout, client gone, or compaction).
pub async fn start(
    api: &Api,
    res: &'static Resource,
    ns: Option<&str>,
    opts: &ListOptions,
    render: Render,
    settings: &WatchSettings,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let filter = Filter::new(res, opts)?;
    let prefix = res.prefix(ns);
    let rv = opts.resource_version.as_deref().unwrap_or("");
    let (out, out_rx) = mpsc::channel::<Bytes>(256);
    let mut renderer = Renderer { res, render, sent_columns: false };

    // Where the live stream starts, and what to send before it.
    let mut initial: Vec<Bytes> = Vec::new();
    let initial_list = rv.is_empty() || rv == "0" || opts.send_initial_events;
    let start_rev = if initial_list {
        let freshness = match rv {
            "" => Freshness::Latest,
            "0" => Freshness::Any,
            v => Freshness::NotOlderThan(
                v.parse().map_err(|_| ApiError::BadRequest(format!("invalid resource version: {v:?}")))?,
            ),
        };
        let page = api.store.list(&prefix, freshness, None, 0, |s| filter.matches_stored(s)).await?;
        for item in &page.items {
            initial.push(line("ADDED", &renderer.object(item)?));
        }
        if opts.send_initial_events && opts.allow_bookmarks {
            initial.push(bookmark(res, page.revision, true));
        }
        page.revision + 1
    } else {
        let v: i64 = rv.parse().map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))?;
        v + 1
    };

    let (events, mut events_rx) = mpsc::channel(BUFFER);
    let hub = api.store.raft.shared.hub.clone();
    let spec = WatchSpec {
        range: KeyRange::prefix(Bytes::from(prefix.clone())),
        start_revision: start_rev,
        prev_kv: true,
        no_put: false,
        no_delete: false,
        watch_id: 0,
    };
    let registered = {
        let sm = api.store.raft.shared.sm.read();
        hub.watch(&sm, spec, events.clone())
    };
    let key = match registered {
        Ok(key) => key,
        Err(crate::store::mvcc::RevisionError::Compacted { compact_revision }) => {
            // Kubernetes answers 200 and then a 410 ERROR event.
            let gone = ApiError::Expired(format!("too old resource version: {} ({compact_revision})", start_rev - 1));
            let _ = out.send(error_event(&gone)).await;
            return Ok(out_rx);
        }
        Err(e) => return Err(e.into()),
    };

    let timeout = opts.timeout_seconds.map(Duration::from_secs).unwrap_or_else(|| {
        // Spread reconnects of many clients over time, as Kubernetes does.
        let base = settings.default_timeout;
        base + Duration::from_secs(rand::random_range(0..=base.as_secs().max(1)))
    });
    let bookmarks = opts.allow_bookmarks;
    let interval = settings.bookmark_interval;
    let sm = api.store.raft.shared.sm.clone();
    let store = api.store.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        for l in initial {
            if out.send(l).await.is_err() {
                hub.cancel(key);
                return;
            }
        }
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = out.closed() => break,
                _ = ticker.tick(), if bookmarks => {
                    let sm = sm.read();
                    hub.progress(&sm, |tx| tx.same_channel(&events));
                }
                msg = events_rx.recv() => {
                    let Some((_, msg)) = msg else { break };
                    let lines = match msg {
                        WatchMessage::Events { events, .. } => {
                            let mut lines = Vec::new();
                            for e in events {
                                match convert(&store, &mut renderer, &filter, &e) {
                                    Ok(Some(l)) => lines.push(l),
                                    Ok(None) => {}
                                    Err(err) => lines.push(error_event(&err)),
                                }
                            }
                            lines
                        }
                        WatchMessage::Progress { revision } => {
                            if bookmarks { vec![bookmark(res, revision, false)] } else { vec![] }
                        }
                        WatchMessage::Compacted { compact_revision } => {
                            let gone = ApiError::Expired(format!("too old resource version: {} ({compact_revision})", start_rev - 1));
                            let _ = out.send(error_event(&gone)).await;
                            break;
                        }
                    };
                    let mut closed = false;
                    for l in lines {
                        if out.send(l).await.is_err() {
                            closed = true;
                            break;
                        }
                    }
                    if closed {
                        break;
                    }
                }
            }
        }
        hub.cancel(key);
    });
    Ok(out_rx)
}

/// One store event as a watch line, or nothing if the selectors hide it.
fn convert(
    store: &ObjectStore,
    r: &mut Renderer,
    filter: &Filter,
    e: &rk_proto::mvccpb::Event,
) -> Result<Option<Bytes>, ApiError> {
    let Some(kv) = &e.kv else { return Ok(None) };
    let prev = e.prev_kv.as_ref().map(|p| store.stored(&p.key, &p.value, p.mod_revision)).transpose()?;
    if e.r#type == EventType::Delete as i32 {
        let Some(prev) = prev else { return Ok(None) };
        let mut obj = prev.object()?;
        if !filter.matches(&obj)? {
            return Ok(None);
        }
        // A deleted object carries the revision of its deletion.
        super::store::set_resource_version(&mut obj, kv.mod_revision);
        return Ok(Some(line("DELETED", &r.value(&obj)?)));
    }
    let now = store.stored(&kv.key, &kv.value, kv.mod_revision)?;
    if filter.is_empty() {
        let kind = if prev.is_some() { "MODIFIED" } else { "ADDED" };
        return Ok(Some(line(kind, &r.object(&now)?)));
    }
    let obj = now.object()?;
    let matches_now = filter.matches(&obj)?;
    let matched_before = match &prev {
        Some(p) => filter.matches(&p.object()?)?,
        None => false,
    };
    let kind = match (matched_before, matches_now) {
        (false, true) => "ADDED",
        (true, true) => "MODIFIED",
        (true, false) => "DELETED",
        (false, false) => return Ok(None),
    };
    Ok(Some(line(kind, &r.value(&obj)?)))
}
