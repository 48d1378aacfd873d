//! The peer transport: raft messages between replicas over gRPC (the `rk.peer.v1.Peer`
//! service on each replica's peer port).
//!
//! Sending: one task and one bounded queue per peer. The raft thread only ever
//! `try_send`s into a queue, so a slow or dead peer costs it nothing; when a queue
//! is full its messages are dropped and raft is told the peer is unreachable (raft
//! resends what matters). Each task keeps one long-lived client stream open and
//! writes batches: everything queued is taken at once, so many messages share one
//! HTTP/2 frame. Broken connections are redialled with capped exponential backoff.
//! Snapshots go over a separate unary call so the sender learns whether they
//! arrived (raft must be told) and heartbeats are not stuck behind them.
//!
//! Receiving: every message is checked structurally ([`super::wire`]) before it is
//! parsed, must name this replica as `to` and the stream's sender as `from`;
//! anything else closes the stream. Garbage never reaches raft.

use super::node::Command;
use super::wire;
use crate::tls::{Dialer, PeerCert};
use crossbeam_channel::Sender as CmdSender;
use parking_lot::Mutex;
use protobuf::Message as _;
use raft::SnapshotStatus;
use raft::eraftpb::{Message, MessageType};
use rk_proto::peer::peer_client::PeerClient;
use rk_proto::peer::{RaftAck, RaftBatch};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 8192;
/// Most messages written in one batch.
const MAX_BATCH: usize = 1024;
/// How long a peer link may make no progress (connecting, or taking the next
/// batch) before it is redialled.
const LINK_STALL: Duration = Duration::from_secs(2);
/// Largest message accepted on the peer port (snapshots are big).
pub const MAX_PEER_MESSAGE: usize = 1 << 30;

struct PeerLink {
    addr: String,
    queue: mpsc::Sender<Message>,
}

/// The sending half: implements [`super::node::Transport`].
pub struct GrpcTransport {
    id: u64,
    /// How peers are dialed: from the peer port's own address, so a replica on a
    /// multi-homed host (or its own loopback address) is seen by peers as the address
    /// it advertises; with mutual TLS unless `--insecure-dev`.
    dialer: Dialer,
    runtime: tokio::runtime::Handle,
    node: CmdSender<Command>,
    addrs: Mutex<HashMap<u64, String>>,
    links: Mutex<HashMap<u64, PeerLink>>,
}

impl GrpcTransport {
    pub fn new(id: u64, dialer: Dialer, runtime: tokio::runtime::Handle, node: CmdSender<Command>) -> Self {
        Self { id, dialer, runtime, node, addrs: Mutex::new(HashMap::new()), links: Mutex::new(HashMap::new()) }
    }

    fn link(&self, to: u64) -> Option<mpsc::Sender<Message>> {
        let addr = self.addrs.lock().get(&to).cloned()?;
        let mut links = self.links.lock();
        if let Some(link) = links.get(&to)
            && link.addr == addr
            && !link.queue.is_closed()
        {
            return Some(link.queue.clone());
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        self.runtime.spawn(peer_task(self.id, self.dialer.clone(), to, addr.clone(), rx, self.node.clone()));
        links.insert(to, PeerLink { addr, queue: tx.clone() });
        Some(tx)
    }
}

impl super::node::Transport for GrpcTransport {
    fn send(&self, msgs: Vec<Message>) {
        for msg in msgs {
            let to = msg.to;
            let is_snapshot = msg.get_msg_type() == MessageType::MsgSnapshot;
            let Some(queue) = self.link(to) else {
                if is_snapshot {
                    let _ = self.node.send(Command::SnapshotStatus(to, SnapshotStatus::Failure));
                }
                continue;
            };
            if queue.try_send(msg).is_err() {
                // Full (or the task just died): drop it; raft probes again.
                let _ = self.node.send(Command::Unreachable(to));
                if is_snapshot {
                    let _ = self.node.send(Command::SnapshotStatus(to, SnapshotStatus::Failure));
                }
            }
        }
    }

    fn set_peers(&self, peers: Vec<(u64, String)>) {
        let peers: HashMap<u64, String> = peers.into_iter().filter(|(id, _)| *id != self.id).collect();
        // Links to removed peers or to peers at a new address end with their queues.
        self.links.lock().retain(|id, link| peers.get(id) == Some(&link.addr));
        *self.addrs.lock() = peers;
    }
}

fn endpoint_uri(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// A client for replica `to`'s peer port at `addr`; with TLS, its certificate must
/// name that replica.
pub async fn connect(
    addr: &str,
    to: u64,
    dialer: &Dialer,
) -> Result<PeerClient<tonic::transport::Channel>, tonic::transport::Error> {
    let endpoint = tonic::transport::Endpoint::from_shared(endpoint_uri(addr))?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5));
    let channel = dialer.channel(endpoint, &crate::pki::peer_name(to)).await?;
    Ok(PeerClient::new(channel).max_encoding_message_size(MAX_PEER_MESSAGE).max_decoding_message_size(MAX_PEER_MESSAGE))
}

/// Sends everything queued for one peer, for as long as the queue lives.
async fn peer_task(
    from: u64,
    dialer: Dialer,
    to: u64,
    addr: String,
    mut queue: mpsc::Receiver<Message>,
    node: CmdSender<Command>,
) {
    let mut backoff = Duration::from_millis(20);
    'reconnect: loop {
        // The whole connect, not just TCP: a peer that accepts connections but never
        // answers the HTTP/2 handshake (a paused process, a half-open path) must not
        // hold this link forever.
        let connected = match tokio::time::timeout(LINK_STALL, connect(&addr, to, &dialer)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no HTTP/2 handshake within {LINK_STALL:?}")),
        };
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(peer = to, %addr, error = %e, "peer unreachable");
                let _ = node.send(Command::Unreachable(to));
                // Drop what queued up meanwhile (raft resends), but keep snapshots honest.
                let deadline = tokio::time::sleep(backoff);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = &mut deadline => break,
                        msg = queue.recv() => match msg {
                            None => return,
                            Some(m) if m.get_msg_type() == MessageType::MsgSnapshot => {
                                let _ = node.send(Command::SnapshotStatus(to, SnapshotStatus::Failure));
                            }
                            Some(_) => {}
                        }
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        let (batches, rx) = mpsc::channel::<RaftBatch>(16);
        let mut stream_client = client.clone();
        let call = tokio::spawn(async move { stream_client.raft(ReceiverStream::new(rx)).await });
        loop {
            let Some(first) = queue.recv().await else {
                drop(batches);
                let _ = call.await;
                return;
            };
            let mut msgs = vec![first];
            while msgs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
            let mut batch = RaftBatch { from, messages: Vec::with_capacity(msgs.len()) };
            for m in msgs {
                if m.get_msg_type() == MessageType::MsgSnapshot {
                    tokio::spawn(send_snapshot(client.clone(), from, m, node.clone()));
                    continue;
                }
                match m.write_to_bytes() {
                    Ok(bytes) => batch.messages.push(bytes.into()),
                    Err(e) => tracing::error!(error = %e, "cannot encode a raft message"),
                }
            }
            if batch.messages.is_empty() {
                continue;
            }
            // A stream that takes nothing for this long is as good as broken (its
            // buffer is full and the call is stuck): start over rather than wait.
            let sent = tokio::time::timeout(LINK_STALL, batches.send(batch)).await;
            if !matches!(sent, Ok(Ok(()))) || call.is_finished() {
                tracing::debug!(peer = to, "raft stream to peer broke or stalled; reconnecting");
                call.abort();
                let _ = node.send(Command::Unreachable(to));
                continue 'reconnect;
            }
        }
    }
}

async fn send_snapshot(
    mut client: PeerClient<tonic::transport::Channel>,
    from: u64,
    msg: Message,
    node: CmdSender<Command>,
) {
    let to = msg.to;
    let status = match msg.write_to_bytes() {
        Ok(bytes) => match client.snapshot(RaftBatch { from, messages: vec![bytes.into()] }).await {
            Ok(_) => SnapshotStatus::Finish,
            Err(e) => {
                tracing::warn!(peer = to, error = %e, "sending a snapshot failed");
                SnapshotStatus::Failure
            }
        },
        Err(_) => SnapshotStatus::Failure,
    };
    let _ = node.send(Command::SnapshotStatus(to, status));
}

/// Serves lease calls forwarded from followers (implemented by the lessor).
#[tonic::async_trait]
pub trait LeaseForwarding: Send + Sync + 'static {
    async fn renew(&self, id: i64) -> rk_proto::peer::LeaseRenewResponse;
    async fn time_to_live(&self, id: i64) -> rk_proto::peer::LeaseTimeToLiveResponse;
}

/// The receiving half: the `Peer` gRPC service.
pub struct PeerService {
    id: u64,
    node: CmdSender<Command>,
    leases: Arc<dyn LeaseForwarding>,
}

impl PeerService {
    pub fn new(id: u64, node: CmdSender<Command>, leases: Arc<dyn LeaseForwarding>) -> Self {
        Self { id, node, leases }
    }

    pub fn into_server(self) -> rk_proto::peer::peer_server::PeerServer<Self> {
        rk_proto::peer::peer_server::PeerServer::new(self)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE)
    }

    /// Checks that a batch comes from the replica the connection's certificate names
    /// (on a TLS peer port; an `--insecure-dev` one has no certificates to check).
    fn check_sender(cert: Option<PeerCert>, from: u64) -> Result<(), Status> {
        match cert {
            Some(PeerCert(Some(id))) if id != from => Err(Status::permission_denied(format!(
                "a replica whose certificate names replica {id} sent raft messages as replica {from}"
            ))),
            _ => Ok(()),
        }
    }

    fn deliver(&self, batch: RaftBatch) -> Result<(), Status> {
        for bytes in batch.messages {
            let msg = wire::parse_message(&bytes).map_err(|e| Status::invalid_argument(e.to_string()))?;
            if msg.from != batch.from || msg.to != self.id {
                return Err(Status::invalid_argument(format!(
                    "raft message from {} to {} arrived at replica {} on a stream from {}",
                    msg.from, msg.to, self.id, batch.from
                )));
            }
            self.node.send(Command::Step(Box::new(msg))).map_err(|_| Status::unavailable("replica is stopping"))?;
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl rk_proto::peer::peer_server::Peer for PeerService {
    async fn raft(&self, request: Request<Streaming<RaftBatch>>) -> Result<Response<RaftAck>, Status> {
        let cert = request.extensions().get::<PeerCert>().copied();
        let mut stream = request.into_inner();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if let Err(status) = Self::check_sender(cert, batch.from).and_then(|()| self.deliver(batch)) {
                tracing::warn!(error = %status.message(), "closing a peer stream that sent a bad raft message");
                return Err(status);
            }
        }
        Ok(Response::new(RaftAck {}))
    }

    async fn snapshot(&self, request: Request<RaftBatch>) -> Result<Response<RaftAck>, Status> {
        Self::check_sender(request.extensions().get::<PeerCert>().copied(), request.get_ref().from)?;
        self.deliver(request.into_inner())?;
        Ok(Response::new(RaftAck {}))
    }

    async fn lease_renew(
        &self,
        request: Request<rk_proto::peer::LeaseRenewRequest>,
    ) -> Result<Response<rk_proto::peer::LeaseRenewResponse>, Status> {
        Ok(Response::new(self.leases.renew(request.into_inner().id).await))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<rk_proto::peer::LeaseTimeToLiveRequest>,
    ) -> Result<Response<rk_proto::peer::LeaseTimeToLiveResponse>, Status> {
        Ok(Response::new(self.leases.time_to_live(request.into_inner().id).await))
    }
}
