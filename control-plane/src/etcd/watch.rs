//! etcd's Watch service: one bidirectional stream carries many watches.
//!
//! Each stream has one task that owns its watches. Events reach it from the
//! [`WatchHub`](crate::store::watch::WatchHub) through one bounded channel; client
//! requests (create, cancel, progress) arrive on the gRPC stream. Because the same
//! task answers "created" before it reads any event, a client always sees a watch's
//! creation before its first event.

use super::EtcdApi;
use crate::store::mvcc::{KeyRange, RevisionError};
use crate::store::watch::{WatchMessage, WatchSpec, WatcherKey};
use futures::Stream;
use prost::Message as _;
use rk_proto::etcdserverpb::watch_create_request::FilterType;
use rk_proto::etcdserverpb::watch_server::{Watch, WatchServer};
use rk_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse, watch_request};
use rk_proto::mvccpb::Event;
use std::collections::HashMap;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Events buffered per stream before its watchers fall back to catch-up mode.
const STREAM_BUFFER: usize = 1024;
/// etcd's progress responses carry this watch id (they cover the whole stream).
const PROGRESS_WATCH_ID: i64 = -1;

pub fn server(api: EtcdApi) -> WatchServer<EtcdApi> {
    WatchServer::new(api).max_decoding_message_size(super::MAX_REQUEST_BYTES + super::GRPC_OVERHEAD_BYTES)
}

struct StreamWatch {
    key: WatcherKey,
    progress_notify: bool,
    fragment: bool,
}

struct WatchStream {
    api: EtcdApi,
    watches: HashMap<i64, StreamWatch>,
    next_id: i64,
    events: mpsc::Sender<(i64, WatchMessage)>,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
}

impl WatchStream {
    async fn send(&self, resp: WatchResponse) -> bool {
        self.out.send(Ok(resp)).await.is_ok()
    }

    async fn create(&mut self, req: WatchCreateRequest) -> bool {
        let watch_id = if req.watch_id != 0 {
            if self.watches.contains_key(&req.watch_id) {
                return self
                    .send(WatchResponse {
                        header: Some(self.api.header(self.api.current_revision())),
                        watch_id: req.watch_id,
                        created: true,
                        canceled: true,
                        cancel_reason: "etcdserver: duplicate watch ID".into(),
                        ..Default::default()
                    })
                    .await;
            }
            req.watch_id
        } else {
            while self.watches.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id
        };
        if req.key.is_empty() {
            return self
                .send(WatchResponse {
                    header: Some(self.api.header(self.api.current_revision())),
                    watch_id,
                    created: true,
                    canceled: true,
                    cancel_reason: "etcdserver: key is not provided".into(),
                    ..Default::default()
                })
                .await;
        }
        let spec = WatchSpec {
            range: KeyRange::new(req.key.clone(), req.range_end.clone()),
            start_revision: req.start_revision,
            prev_kv: req.prev_kv,
            no_put: req.filters.contains(&(FilterType::Noput as i32)),
            no_delete: req.filters.contains(&(FilterType::Nodelete as i32)),
            watch_id,
        };
        let (registered, revision) = {
            let sm = self.api.raft.shared.sm.read();
            (self.api.raft.shared.hub.watch(&sm, spec, self.events.clone()), sm.mvcc.current_revision())
        };
        let mut resp =
            WatchResponse { header: Some(self.api.header(revision)), watch_id, created: true, ..Default::default() };
        match registered {
            Ok(key) => {
                self.watches.insert(
                    watch_id,
                    StreamWatch { key, progress_notify: req.progress_notify, fragment: req.fragment },
                );
            }
            Err(RevisionError::Compacted { compact_revision }) => {
                resp.canceled = true;
                resp.compact_revision = compact_revision;
                resp.cancel_reason = "etcdserver: mvcc: required revision has been compacted".into();
            }
            Err(RevisionError::Future) => {
                resp.canceled = true;
                resp.cancel_reason = "etcdserver: mvcc: required revision is a future revision".into();
            }
        }
        if resp.watch_id == self.next_id {
            self.next_id += 1;
        }
        self.send(resp).await
    }

    async fn cancel(&mut self, watch_id: i64) -> bool {
        if let Some(w) = self.watches.remove(&watch_id) {
            self.api.raft.shared.hub.cancel(w.key);
            return self
                .send(WatchResponse {
                    header: Some(self.api.header(self.api.current_revision())),
                    watch_id,
                    canceled: true,
                    ..Default::default()
                })
                .await;
        }
        true
    }

    async fn progress(&self) -> bool {
        // Only a stream whose watches are all caught up may be told it is current.
        if !self.api.raft.shared.hub.all_synced(&self.events) {
            return true;
        }
        self.send(WatchResponse {
            header: Some(self.api.header(self.api.current_revision())),
            watch_id: PROGRESS_WATCH_ID,
            ..Default::default()
        })
        .await
    }

    async fn periodic_progress(&self) -> bool {
        let revision = self.api.current_revision();
        for (id, w) in &self.watches {
            if w.progress_notify && self.api.raft.shared.hub.is_synced(w.key) {
                let resp =
                    WatchResponse { header: Some(self.api.header(revision)), watch_id: *id, ..Default::default() };
                if !self.send(resp).await {
                    return false;
                }
            }
        }
        true
    }

    async fn deliver(&mut self, watch_id: i64, msg: WatchMessage) -> bool {
        let Some(w) = self.watches.get(&watch_id) else { return true };
        match msg {
            WatchMessage::Events { events, revision } => {
                let header = Some(self.api.header(revision));
                if w.fragment {
                    for (chunk, more) in fragments(events) {
                        let resp =
                            WatchResponse { header, watch_id, fragment: more, events: chunk, ..Default::default() };
                        if !self.send(resp).await {
                            return false;
                        }
                    }
                    true
                } else {
                    self.send(WatchResponse { header, watch_id, events, ..Default::default() }).await
                }
            }
            WatchMessage::Progress { revision } => {
                self.send(WatchResponse { header: Some(self.api.header(revision)), watch_id, ..Default::default() })
                    .await
            }
            WatchMessage::Compacted { compact_revision } => {
                self.watches.remove(&watch_id);
                self.send(WatchResponse {
                    header: Some(self.api.header(self.api.current_revision())),
                    watch_id,
                    canceled: true,
                    compact_revision,
                    cancel_reason: "etcdserver: mvcc: required revision has been compacted".into(),
                    ..Default::default()
                })
                .await
            }
        }
    }

    fn close(&mut self) {
        for (_, w) in self.watches.drain() {
            self.api.raft.shared.hub.cancel(w.key);
        }
    }
}

/// Splits events into responses under the request size limit; every chunk but the
/// last is marked as a fragment (etcd's `fragment` option).
fn fragments(events: Vec<Event>) -> Vec<(Vec<Event>, bool)> {
    let mut out: Vec<(Vec<Event>, bool)> = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for e in events {
        let len = e.encoded_len();
        if !current.is_empty() && size + len > super::MAX_REQUEST_BYTES {
            out.push((std::mem::take(&mut current), true));
            size = 0;
        }
        size += len;
        current.push(e);
    }
    out.push((current, false));
    out
}

type WatchResponseStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for EtcdApi {
    type WatchStream = WatchResponseStream;

    async fn watch(&self, request: Request<Streaming<WatchRequest>>) -> Result<Response<Self::WatchStream>, Status> {
        let mut incoming = request.into_inner();
        let (out, out_rx) = mpsc::channel(STREAM_BUFFER);
        let (events, mut events_rx) = mpsc::channel(STREAM_BUFFER);
        let mut stream = WatchStream { api: self.clone(), watches: HashMap::new(), next_id: 0, events, out };
        let interval = self.progress_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                let alive = tokio::select! {
                    req = incoming.next() => match req {
                        Some(Ok(WatchRequest { request_union: Some(r) })) => match r {
                            watch_request::RequestUnion::CreateRequest(c) => stream.create(c).await,
                            watch_request::RequestUnion::CancelRequest(c) => stream.cancel(c.watch_id).await,
                            watch_request::RequestUnion::ProgressRequest(_) => stream.progress().await,
                        },
                        Some(Ok(WatchRequest { request_union: None })) => true,
                        // Client went away or the stream broke.
                        Some(Err(_)) | None => false,
                    },
                    Some((id, msg)) = events_rx.recv() => stream.deliver(id, msg).await,
                    _ = ticker.tick() => stream.periodic_progress().await,
                    _ = stream.out.closed() => false,
                };
                if !alive {
                    break;
                }
            }
            stream.close();
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx)) as WatchResponseStream))
    }
}
