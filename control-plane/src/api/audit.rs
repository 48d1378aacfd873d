//! The audit log: one JSON line per request to the Kubernetes API, as kube-apiserver writes
//! them at level `Metadata` (`audit.k8s.io/v1` `Event`: who, from where, which verb on which
//! object, the answer's code, when). On by default in `<data-dir>/audit/audit.log`
//! (`--audit-log-path`, `-` for off), rotated at `--audit-log-maxsize` MiB keeping
//! `--audit-log-maxbackup` old files (`audit.log.1` is the newest), as kube-apiserver's
//! flags of the same names do.
//!
//! Requests never wait for the disk: [`layer`] hands each event to a writer thread through
//! a bounded queue; when the disk cannot keep up, events are dropped and counted (logged,
//! and in `rk_audit_events_dropped_total`) rather than slowing the API down.
//!
//! rk does not authenticate yet, so every event's user is `system:anonymous`.

use super::http::{PathTarget, Route, parse_path};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// Events waiting for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// The largest answer read for a created object's name.
const MAX_READ: u64 = 16 * 1024 * 1024;

/// Where and how much to keep.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// Rotate once the file reaches this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`audit.log.1` … `audit.log.N`).
    pub max_backups: usize,
}

/// A running audit log.
pub struct AuditLog {
    tx: SyncSender<Value>,
    dropped: AtomicU64,
    written: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens (creating its folder) the log and starts its writer thread.
    pub fn start(config: AuditConfig) -> std::io::Result<Arc<AuditLog>> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open(&config.path)?;
        let size = file.metadata()?.len();
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || write_loop(config, BufWriter::new(file), size, rx, counter))?;
        Ok(Arc::new(AuditLog { tx, dropped: AtomicU64::new(0), written }))
    }

    /// Queues one event; drops it (counted) when the writer is behind.
    pub fn record(&self, event: Value) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed).is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped.load(Ordering::Relaxed),
                        "audit log writer is behind; dropping audit events"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Events dropped so far (the writer was behind or had failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn write_loop(
    config: AuditConfig,
    mut out: BufWriter<File>,
    mut size: u64,
    rx: Receiver<Value>,
    written: Arc<AtomicU64>,
) {
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(event) = next {
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            if let Err(e) = out.write_all(&line) {
                tracing::error!(path = %config.path.display(), error = %e, "cannot write the audit log");
            } else {
                size += line.len() as u64;
                written.fetch_add(1, Ordering::Relaxed);
            }
            if size >= config.max_bytes {
                match rotate(&config, out) {
                    Ok(fresh) => {
                        out = fresh;
                        size = 0;
                    }
                    Err(e) => {
                        tracing::error!(path = %config.path.display(), error = %e, "cannot rotate the audit log; audit logging stops");
                        return;
                    }
                }
            }
            // Write what is queued in one go, then flush.
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            tracing::error!(path = %config.path.display(), error = %e, "cannot write the audit log");
        }
    }
}

/// `audit.log` → `audit.log.1` → … → `audit.log.N` (the oldest is removed); a new file.
fn rotate(config: &AuditConfig, mut out: BufWriter<File>) -> std::io::Result<BufWriter<File>> {
    out.flush()?;
    drop(out);
    let numbered = |n: usize| PathBuf::from(format!("{}.{n}", config.path.display()));
    if config.max_backups == 0 {
        std::fs::remove_file(&config.path)?;
    } else {
        let _ = std::fs::remove_file(numbered(config.max_backups));
        for n in (1..config.max_backups).rev() {
            if numbered(n).exists() {
                std::fs::rename(numbered(n), numbered(n + 1))?;
            }
        }
        std::fs::rename(&config.path, numbered(1))?;
    }
    Ok(BufWriter::new(open(&config.path)?))
}

/// The middleware: records every request to the Kubernetes API once its answer starts.
pub async fn layer(State(audit): State<Arc<AuditLog>>, req: Request, next: Next) -> Response {
    let received = super::meta::now_micro();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let source = req.extensions().get::<ConnectInfo<crate::tls::Conn>>().map(|c| c.0.addr.ip().to_string());
    let agent = req.headers().get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(String::from);
    let impersonated = super::rbac::Identity::impersonated(req.headers()).ok().flatten();
    let mut resp = next.run(req).await;
    // A create names its object in the body, not the path: take the name from the answer.
    // Only a complete answer of known size is read (never a stream), and it is put back
    // as it was.
    let mut created = None;
    let whole = axum::body::HttpBody::size_hint(resp.body()).exact().is_some_and(|n| n <= MAX_READ);
    if method == Method::POST && resp.status().is_success() && whole {
        let (parts, body) = resp.into_parts();
        match axum::body::to_bytes(body, MAX_READ as usize).await {
            Ok(bytes) => {
                created = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|o| o.pointer("/metadata/name").and_then(Value::as_str).map(String::from));
                resp = Response::from_parts(parts, axum::body::Body::from(bytes));
            }
            // The answer could not be read (it would have failed the client the same way).
            Err(e) => resp = super::error::ApiError::Internal(format!("cannot send the answer: {e}")).into_response(),
        }
    }
    let query = uri.query().unwrap_or("");
    // The path is parsed once for both the verb and the object.
    let target = match parse_path(uri.path()) {
        Ok(PathTarget::Resource(r)) => Some(r),
        _ => None,
    };
    let watch = query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
    let mut event = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": super::meta::new_uid(),
        // A watch's answer streams on; the event is written when it starts.
        "stage": if watch { "ResponseStarted" } else { "ResponseComplete" },
        "requestURI": uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "verb": verb(&method, target.as_ref(), watch),
        "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        "sourceIPs": source.into_iter().collect::<Vec<_>>(),
        "responseStatus": {"metadata": {}, "code": resp.status().as_u16()},
        "requestReceivedTimestamp": received,
        "stageTimestamp": super::meta::now_micro(),
    });
    if let Some(agent) = agent {
        event["userAgent"] = json!(agent);
    }
    // Whom the request acted as, as the RBAC layer left it on the answer: the token's
    // account is the user; an impersonated user is recorded as such.
    let acted_as = resp.extensions().get::<super::rbac::Identity>().cloned();
    if let Some(target) = impersonated {
        event["impersonatedUser"] = json!({"username": target.user, "groups": target.groups});
    } else if let Some(id) = acted_as {
        event["user"] = json!({"username": id.user, "groups": id.groups});
    }
    if let Some(mut obj) = target.as_ref().map(object_ref) {
        if let Some(name) = created.filter(|_| obj.get("name").is_none()) {
            obj["name"] = json!(name);
        }
        event["objectRef"] = obj;
    }
    audit.record(event);
    resp
}

/// The Kubernetes verb of a request (`list` and `watch` for collections, `deletecollection`);
/// `target` is the resource its path names, if any.
pub fn verb(method: &Method, target: Option<&Route>, watch: bool) -> &'static str {
    let named = match target {
        Some(r) if r.watch => return "watch",
        Some(r) => r.name.is_some(),
        None => true,
    };
    verb_of(method, named, watch)
}

/// The Kubernetes verb of an HTTP method on a named object or a collection.
pub fn verb_of(method: &Method, named: bool, watch: bool) -> &'static str {
    match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

/// The object a resource path names, as an audit `objectRef`.
pub fn object_ref(r: &Route) -> Value {
    let mut o = json!({"resource": r.res.plural, "apiGroup": r.res.group, "apiVersion": r.res.version});
    if r.res.plural == "namespaces" {
        // `/api/v1/namespaces/x` names namespace x itself.
        if let Some(ns) = r.namespace.as_deref().or(r.name.as_deref()) {
            o["name"] = json!(ns);
        }
    } else {
        if let Some(ns) = &r.namespace {
            o["namespace"] = json!(ns);
        }
        if let Some(name) = &r.name {
            o["name"] = json!(name);
        }
    }
    if let Some(sub) = r.sub {
        o["subresource"] = json!(sub.name());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resource a path names, as the middleware parses it.
    fn route(path: &str) -> Option<Route> {
        match parse_path(path) {
            Ok(PathTarget::Resource(r)) => Some(r),
            _ => None,
        }
    }

    fn verb_of(method: Method, path: &str, watch: bool) -> &'static str {
        verb(&method, route(path).as_ref(), watch)
    }

    #[test]
    fn verbs_and_objects() {
        assert_eq!(verb_of(Method::GET, "/api/v1/namespaces/default/pods", false), "list");
        assert_eq!(verb_of(Method::GET, "/api/v1/namespaces/default/pods", true), "watch");
        assert_eq!(verb_of(Method::GET, "/api/v1/watch/namespaces/default/pods", false), "watch");
        assert_eq!(verb_of(Method::GET, "/api/v1/namespaces/default/pods/p", false), "get");
        assert_eq!(verb_of(Method::POST, "/api/v1/namespaces/default/pods", false), "create");
        assert_eq!(verb_of(Method::DELETE, "/api/v1/namespaces/default/pods", false), "deletecollection");
        assert_eq!(verb_of(Method::DELETE, "/apis/apps/v1/namespaces/x/deployments/web", false), "delete");
        assert_eq!(verb_of(Method::PATCH, "/apis/apps/v1/namespaces/x/deployments/web/scale", false), "patch");
        assert_eq!(verb_of(Method::GET, "/version", false), "get");
        let o = object_ref(&route("/apis/apps/v1/namespaces/x/deployments/web/scale").unwrap());
        assert_eq!(
            o,
            json!({"resource": "deployments", "apiGroup": "apps", "apiVersion": "v1", "namespace": "x",
                   "name": "web", "subresource": "scale"})
        );
        let ns = object_ref(&route("/api/v1/namespaces/kube-system").unwrap());
        assert_eq!(ns["name"], "kube-system");
        assert!(ns.get("namespace").is_none());
        assert!(route("/version").is_none());
    }

    #[test]
    fn writes_lines_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit/audit.log");
        let log = AuditLog::start(AuditConfig { path: path.clone(), max_bytes: 300, max_backups: 2 }).unwrap();
        for i in 0..20 {
            log.record(json!({"n": i, "pad": "x".repeat(50)}));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while log.written() < 20 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(log.written(), 20);
        assert_eq!(log.dropped(), 0);
        let backup = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
        assert!(backup(1).exists() && backup(2).exists() && !backup(3).exists(), "two rotated files kept");
        // Every kept line is whole JSON; oldest file first, the events are the newest ones
        // in order (the last may have been rotated away from audit.log already).
        let kept: Vec<i64> = [backup(2), backup(1), path.clone()]
            .iter()
            .flat_map(|p| std::fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect::<Vec<_>>())
            .map(|l| serde_json::from_str::<Value>(&l).unwrap()["n"].as_i64().unwrap())
            .collect();
        assert!(!kept.is_empty() && kept.last() == Some(&19), "{kept:?}");
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
    }
}
