//! The pod manager: watches the pods bound to this node and keeps one worker per
//! pod. After a restart it first asks the runtime what is already running, so
//! workers adopt those containers instead of starting them again; containers of
//! pods no longer bound here are removed only once the API confirmed it.

use crate::Ctx;
use crate::client::Client;
use crate::runtime::{ContainerInfo, Runtime};
use crate::worker::Worker;
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A running worker, reachable for updates, logs and exec.
struct Handle {
    updates: watch::Sender<Option<Value>>,
    /// namespace/name, for the agent's log and exec endpoints.
    key: String,
}

/// Where workers live, shared with the agent's HTTP server.
#[derive(Default)]
pub struct Registry {
    by_uid: Mutex<HashMap<String, Handle>>,
    /// Container ids by (namespace/name, container), refreshed from the workers'
    /// pods (a container may have been restarted: ask the runtime's list).
    pub runtime: Mutex<Option<Arc<dyn Runtime>>>,
}

impl Registry {
    pub fn pod_key_to_uid(&self, key: &str) -> Option<String> {
        self.by_uid.lock().iter().find(|(_, h)| h.key == key).map(|(u, _)| u.clone())
    }

    pub fn len(&self) -> usize {
        self.by_uid.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct PodManager {
    pub ctx: Arc<Ctx>,
    pub runtime: Arc<dyn Runtime>,
    pub registry: Arc<Registry>,
    /// Containers found at start-up, by pod uid, waiting for their pods' workers.
    found: Mutex<HashMap<String, Vec<ContainerInfo>>>,
    /// Until the first successful list nothing is removed (the API may be down).
    listed: Mutex<bool>,
}

fn uid_of(pod: &Value) -> String {
    pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string()
}

fn key_of(pod: &Value) -> String {
    let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    format!("{ns}/{name}")
}

impl PodManager {
    pub async fn new(ctx: Arc<Ctx>, runtime: Arc<dyn Runtime>, registry: Arc<Registry>) -> Arc<Self> {
        *registry.runtime.lock() = Some(runtime.clone());
        let mut found: HashMap<String, Vec<ContainerInfo>> = HashMap::new();
        match runtime.list().await {
            Ok(list) => {
                for c in list {
                    found.entry(c.pod.uid.clone()).or_default().push(c);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list existing containers; none will be adopted"),
        }
        if !found.is_empty() {
            tracing::info!(pods = found.len(), "found running pods from before; adopting them");
        }
        Arc::new(Self { ctx, runtime, registry, found: Mutex::new(found), listed: Mutex::new(false) })
    }

    /// A pod bound to this node was added or changed.
    pub fn upsert(&self, pod: Value) {
        let uid = uid_of(&pod);
        if uid.is_empty() {
            return;
        }
        let mut workers = self.registry.by_uid.lock();
        if let Some(h) = workers.get(&uid) {
            h.updates.send_replace(Some(pod));
            return;
        }
        let adopted = self.found.lock().remove(&uid).unwrap_or_default();
        let (tx, rx) = watch::channel(Some(pod.clone()));
        workers.insert(uid.clone(), Handle { updates: tx, key: key_of(&pod) });
        let worker = Worker::new(self.ctx.clone(), self.runtime.clone(), pod, adopted);
        let registry = self.registry.clone();
        tokio::spawn(async move {
            worker.run(rx).await;
            registry.by_uid.lock().remove(&uid);
        });
    }

    /// A pod was removed from the API (or unbound): its worker stops it now.
    pub fn remove(&self, uid: &str) {
        if let Some(h) = self.registry.by_uid.lock().get(uid) {
            h.updates.send_replace(None);
        }
    }

    /// After a (re)list: pods with workers that the list does not have are gone;
    /// containers found at start-up whose pods are not bound here are removed.
    async fn reconcile_list(&self, present: &[String]) {
        let stale: Vec<String> = self.registry.by_uid.lock().keys().filter(|u| !present.contains(u)).cloned().collect();
        for uid in stale {
            self.remove(&uid);
        }
        *self.listed.lock() = true;
        let orphans: Vec<(String, Vec<ContainerInfo>)> = self.found.lock().drain().collect();
        for (uid, containers) in orphans {
            if present.contains(&uid) {
                continue;
            }
            tracing::info!(pod_uid = uid, "removing containers of a pod no longer bound to this node");
            for c in containers {
                let _ = self.runtime.stop(&c.id, Duration::from_secs(1)).await;
                let _ = self.runtime.remove(&c.id).await;
            }
            let _ = self.runtime.remove_sandbox(&uid).await;
        }
    }
}

/// Feeds pod managers from one list+watch. `managers` maps node name → manager;
/// one watch can serve many hollow nodes.
pub async fn run_source(client: Client, field_selector: String, managers: HashMap<String, Arc<PodManager>>) {
    let query = format!("fieldSelector={}", crate::urlencode(&field_selector));
    let mut backoff = Duration::from_millis(200);
    loop {
        let list = match client.list("pods", None, &query).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list this node's pods; running pods keep running");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0").to_string();
        let mut present: HashMap<String, Vec<String>> = HashMap::new();
        for pod in list["items"].as_array().into_iter().flatten() {
            let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
            if let Some(m) = managers.get(node) {
                present.entry(node.to_string()).or_default().push(uid_of(pod));
                m.upsert(pod.clone());
            }
        }
        for (node, m) in &managers {
            m.reconcile_list(present.get(node).map(Vec::as_slice).unwrap_or(&[])).await;
        }
        let watch_query = format!("{query}&resourceVersion={rv}");
        let mut events = match client.watch("pods", None, &watch_query).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "pod watch failed; listing again");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        while let Some(ev) = events.next().await {
            let Ok((kind, pod)) = ev else { break };
            let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").to_string();
            match kind.as_str() {
                "ADDED" | "MODIFIED" => {
                    if let Some(m) = managers.get(&node) {
                        m.upsert(pod);
                    }
                }
                "DELETED" => {
                    if let Some(m) = managers.get(&node) {
                        m.remove(&uid_of(&pod));
                    }
                }
                "ERROR" => break,
                _ => {}
            }
        }
    }
}
