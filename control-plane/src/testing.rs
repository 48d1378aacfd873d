//! Test support: a single in-process replica (memory log, no network) with the
//! Kubernetes API on top, so API and controller tests need no sockets.

use crate::api::rest::{Api, ApiOptions};
use crate::api::store::ObjectStore;
use crate::raft::log::RaftLog;
use crate::raft::node::{self, NodeOptions, RaftHandle, Transport};
use crate::store::watch::{self, WatchHub};
use raft::eraftpb::Message;
use rk_proto::store::MemberInfo;
use std::sync::Arc;
use std::time::Duration;

/// A replica alone: it never has anyone to send to.
struct Alone;

impl Transport for Alone {
    fn send(&self, _msgs: Vec<Message>) {}
    fn set_peers(&self, _peers: Vec<(u64, String)>) {}
}

/// Starts a one-replica store and waits until it leads; returns its handle.
pub async fn single_replica() -> RaftHandle {
    let member = MemberInfo { id: 1, name: "test".into(), peer_urls: vec!["memory".into()], ..Default::default() };
    let snap = node::initial_snapshot(1, &[member]);
    let log = RaftLog::memory();
    log.bootstrap(&snap).expect("a memory log accepts its bootstrap snapshot");
    let sm = node::restore(&snap).expect("the bootstrap snapshot decodes");
    let hub = Arc::new(WatchHub::new());
    let opts = NodeOptions { tick: Duration::from_millis(5), ..Default::default() };
    let (raft, _thread) =
        node::start(opts, log, sm, hub.clone(), Alone, node::channel(), Duration::from_secs(5)).expect("raft starts");
    tokio::spawn(watch::sync_loop(raft.shared.sm.clone(), hub));
    let mut rx = raft.shared.leadership.clone();
    let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|l| l.role == node::Role::Leader)).await;
    raft
}

/// A one-replica store with the Kubernetes API and the default namespaces.
pub async fn api() -> Api {
    let raft = single_replica().await;
    let encryption = std::sync::Arc::new(crate::api::encryption::Encryption::ephemeral());
    let api = Api::new(ObjectStore::new(raft, encryption), ApiOptions::default());
    let res = crate::api::registry::lookup("namespaces").expect("namespaces are served");
    for ns in ["default", "kube-system", "kube-node-lease"] {
        let obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        api.create(res, None, obj, &Default::default(), "test").await.expect("creating a default namespace");
    }
    api
}
