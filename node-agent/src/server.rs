//! The agent's HTTP endpoints, reached by the API server on behalf of clients:
//! container logs, exec and attach (WebSocket, `v5.channel.k8s.io` / `v4.channel.k8s.io`), port
//! forwarding ([`crate::portforward`]) and resource usage for `metrics.k8s.io`.
//!
//! An agent with credentials serves them over TLS ([`serve_tls`]) with a self-signed
//! certificate (as the kubelet does by default), and takes only clients whose
//! certificate the cluster CA signed for `system:masters` (the API server's replicas,
//! and admins): a node's or a user's credentials cannot exec into pods through it. An
//! agent without credentials (an `--insecure-dev` cluster) serves plain HTTP.

use crate::pods::Registry;
use crate::runtime::{ContainerInfo, ExecSession, LogOptions, Runtime, State};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncWriteExt;

pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{ns}/{pod}/{container}", get(logs))
        .route("/exec/{ns}/{pod}/{container}", get(exec))
        .route("/attach/{ns}/{pod}/{container}", get(attach))
        .route("/portForward/{ns}/{pod}", get(port_forward))
        .route("/stats/summary", get(summary))
        .with_state(registry)
}

/// The TLS settings of the agent's port: a self-signed certificate naming `names` (IP
/// addresses or DNS names), and client certificates required, signed by the CA in
/// `ca_pem`.
pub fn tls_config(ca_pem: &[u8], names: &[String]) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.map_err(|e| format!("the CA does not parse: {e}"))?).map_err(|e| format!("the CA: {e}"))?;
    }
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("rk-agent@{}", names.first().map_or("", |n| n)));
    for name in names.iter().filter(|n| !n.is_empty()) {
        let san = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName(name.as_str().try_into().map_err(|e: rcgen::Error| e.to_string())?),
        };
        params.subject_alt_names.push(san);
    }
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Whether a client certificate (which the CA signed: the handshake checked) names the
/// group `system:masters`.
fn is_master(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der).is_ok_and(|(_, cert)| {
        cert.subject().iter_organization().any(|o| o.as_str().is_ok_and(|g| g == "system:masters"))
    })
}

/// Serves `router` on `listener` over TLS (`tls`, from [`tls_config`]): each connection's
/// handshake runs in its own task, and a client outside `system:masters` gets 403 to
/// everything.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let forbidden = Router::new().fallback(|| async {
        error(StatusCode::FORBIDDEN, "the node agent serves only the API server (system:masters)".into())
    });
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: say so, and keep serving.
                tracing::warn!(error = %e, "cannot accept a connection on the agent's port");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, router, forbidden) = (acceptor.clone(), router.clone(), forbidden.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed on the agent's port"),
                Err(_) => return,
            };
            let master = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).is_some_and(|c| is_master(c));
            let service = hyper_util::service::TowerToHyperService::new(if master { router } else { forbidden });
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service).await;
        });
    }
}

fn error(code: StatusCode, message: String) -> Response {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
        "reason": match code { StatusCode::NOT_FOUND => "NotFound", StatusCode::FORBIDDEN => "Forbidden", _ => "BadRequest" },
        "code": code.as_u16()});
    (code, [("content-type", "application/json")], status.to_string()).into_response()
}

fn runtime(registry: &Registry) -> Option<Arc<dyn Runtime>> {
    registry.runtime.lock().clone()
}

/// The container of a pod by name: the newest attempt, or the one before (`previous`).
async fn find(
    rt: &dyn Runtime,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<ContainerInfo, Response> {
    let list = rt.list().await.map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut matching: Vec<ContainerInfo> =
        list.into_iter().filter(|c| c.pod.namespace == ns && c.pod.name == pod && c.container == container).collect();
    matching.sort_by_key(|c| c.attempt);
    let found =
        if previous { matching.len().checked_sub(2).and_then(|i| matching.get(i).cloned()) } else { matching.pop() };
    found.ok_or_else(|| {
        let what = if previous { "previous terminated container" } else { "container" };
        error(StatusCode::BAD_REQUEST, format!("{what} {container:?} in pod {pod:?} not found"))
    })
}

async fn logs(
    AxState(registry): AxState<Arc<Registry>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(rt) = runtime(&registry) else { return error(StatusCode::SERVICE_UNAVAILABLE, "no runtime".into()) };
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
    let c = match find(rt.as_ref(), &ns, &pod, &container, flag("previous")).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if matches!(c.state, State::Created | State::Unknown) {
        return error(StatusCode::BAD_REQUEST, format!("container {container:?} in pod {pod:?} is waiting to start"));
    }
    let opts = LogOptions {
        follow: flag("follow"),
        tail_lines: q.get("tailLines").and_then(|t| t.parse().ok()),
        since: q
            .get("sinceSeconds")
            .and_then(|s| s.parse::<u64>().ok())
            .map(|s| SystemTime::now() - Duration::from_secs(s)),
        timestamps: flag("timestamps"),
    };
    match rt.logs(&c.id, &opts).await {
        Ok(stream) => {
            let body = Body::from_stream(stream.map(Ok::<Bytes, std::io::Error>));
            ([("content-type", "text/plain")], body).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn exec(
    AxState(registry): AxState<Arc<Registry>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(rt) = runtime(&registry) else { return error(StatusCode::SERVICE_UNAVAILABLE, "no runtime".into()) };
    // `command` repeats, so parse the raw query.
    let mut command = Vec::new();
    let (mut stdin, mut tty) = (false, false);
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "command" => command.push(v),
            "stdin" => stdin = v == "true" || v == "1",
            "tty" => tty = v == "true" || v == "1",
            _ => {}
        }
    }
    if command.is_empty() {
        return error(StatusCode::BAD_REQUEST, "you must specify at least 1 command".into());
    }
    let c = match find(rt.as_ref(), &ns, &pod, &container, false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let start = async move { rt.exec(&c.id, command, tty, stdin).await }.boxed();
    ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]).on_upgrade(move |socket| bridge(socket, start))
}

/// `attach`: the container's own stdio over the exec protocol.
async fn attach(
    AxState(registry): AxState<Arc<Registry>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(rt) = runtime(&registry) else { return error(StatusCode::SERVICE_UNAVAILABLE, "no runtime".into()) };
    let stdin = q.get("stdin").is_some_and(|v| v == "true" || v == "1");
    let c = match find(rt.as_ref(), &ns, &pod, &container, false).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !matches!(c.state, State::Running { .. }) {
        return error(StatusCode::BAD_REQUEST, format!("container {container:?} in pod {pod:?} is not running"));
    }
    let start = async move { rt.attach(&c.id, stdin).await }.boxed();
    ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]).on_upgrade(move |socket| bridge(socket, start))
}

/// `portForward`: the pod's ports over a WebSocket ([`crate::portforward`]).
async fn port_forward(
    AxState(registry): AxState<Arc<Registry>>,
    Path((ns, pod)): Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(rt) = runtime(&registry) else { return error(StatusCode::SERVICE_UNAVAILABLE, "no runtime".into()) };
    let ports = match crate::portforward::parse_ports(query.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let sandboxes = match rt.list_sandboxes().await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let Some((_, sandbox)) = sandboxes.into_iter().find(|(p, _)| p.namespace == ns && p.name == pod) else {
        return error(StatusCode::NOT_FOUND, format!("pod {pod:?} in namespace {ns:?} is not running on this node"));
    };
    // A host-network pod listens on the node itself.
    let ip = match sandbox.ip.clone() {
        Some(ip) if ip.contains(':') => format!("[{ip}]"),
        Some(ip) => ip,
        None => "127.0.0.1".into(),
    };
    let ws = ws.protocols(crate::portforward::PROTOCOLS);
    let base64 = ws.selected_protocol().is_some_and(|p| p.as_bytes() == crate::portforward::PROTOCOLS[1].as_bytes());
    let target = crate::portforward::Target { rt, sandbox, ip };
    ws.on_upgrade(move |socket| crate::portforward::bridge(socket, base64, target, ports))
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Bytes, not a &str slice: `%` followed by a multi-byte character must not
        // split it (slicing the str there would panic).
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(x) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Carries an exec or attach session (made by `start`) over the WebSocket: channel
/// 0 stdin, 1 stdout, 2 stderr, 3 the final Status, 255 close-stdin (v5).
async fn bridge(socket: WebSocket, start: futures::future::BoxFuture<'static, crate::runtime::Result<ExecSession>>) {
    let (mut tx, mut rx) = socket.split();
    let session = match start.await {
        Ok(s) => s,
        Err(e) => {
            let status =
                json!({"metadata": {}, "status": "Failure", "message": e.to_string(), "reason": "InternalError"});
            let _ = tx.send(Message::Binary(rk_proto::channel_frame(3, status.to_string().as_bytes()).into())).await;
            let _ = tx.send(normal_close()).await;
            return;
        }
    };
    let mut input = session.stdin;
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Binary(data) = msg
                && let Some((&ch, rest)) = data.split_first()
            {
                match ch {
                    0 => {
                        if let Some(w) = input.as_mut()
                            && w.write_all(rest).await.is_err()
                        {
                            input = None;
                        }
                    }
                    255 if rest.first() == Some(&0) => {
                        if let Some(mut w) = input.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                    _ => {}
                }
            }
        }
    });
    let mut output = session.output;
    while let Some((ch, data)) = output.next().await {
        if tx.send(Message::Binary(rk_proto::channel_frame(ch, &data).into())).await.is_err() {
            break;
        }
    }
    let status = match session.exit.await {
        Ok(0) => json!({"metadata": {}, "status": "Success"}),
        Ok(code) => json!({"metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}}),
        Err(e) => json!({"metadata": {}, "status": "Failure", "message": e.to_string(), "reason": "InternalError"}),
    };
    let _ = tx.send(Message::Binary(rk_proto::channel_frame(3, status.to_string().as_bytes()).into())).await;
    let _ = tx.send(normal_close()).await;
    // The reader ends with the client's close (see `drain`); a client that never
    // closes is cut off.
    if tokio::time::timeout(DRAIN, &mut reader).await.is_err() {
        reader.abort();
    }
}

/// How long a finished session waits for the client's close.
const DRAIN: Duration = Duration::from_secs(5);

/// Reads what the client still sends until its close (or [`DRAIN`] passes), after
/// this side sent its own. Closing a socket with unread bytes in it makes the kernel
/// reset the connection, and the peer can lose the last messages sent before.
pub(crate) async fn drain(stream: &mut futures::stream::SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(DRAIN, async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// A close frame with status 1000: clients treat a close without a code as an error.
fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame { code: 1000, reason: "".into() }))
}

fn proc_stat_cpu_nanos() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else { return 0 };
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system (irq softirq steal): busy ticks, USER_HZ = 100.
    let busy: u64 = fields.iter().take(3).sum::<u64>() + fields.iter().skip(5).take(3).sum::<u64>();
    busy * 10_000_000
}

fn node_memory_working_set() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let get = |k: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    get("MemTotal:").saturating_sub(get("MemAvailable:"))
}

/// Node and per-container CPU (rate over a short window) and memory.
async fn summary(AxState(registry): AxState<Arc<Registry>>) -> Response {
    let Some(rt) = runtime(&registry) else { return error(StatusCode::SERVICE_UNAVAILABLE, "no runtime".into()) };
    let containers: Vec<ContainerInfo> =
        rt.list().await.unwrap_or_default().into_iter().filter(|c| matches!(c.state, State::Running { .. })).collect();
    let sample = |rt: Arc<dyn Runtime>, cs: Vec<ContainerInfo>| async move {
        let mut out = HashMap::new();
        for c in cs {
            if let Ok(s) = rt.stats(&c.id).await {
                out.insert(c.id.clone(), s);
            }
        }
        out
    };
    let t0 = Instant::now();
    let node0 = proc_stat_cpu_nanos();
    let first = sample(rt.clone(), containers.clone()).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = sample(rt.clone(), containers.clone()).await;
    let node1 = proc_stat_cpu_nanos();
    let secs = t0.elapsed().as_secs_f64().max(0.001);
    let rate = |a: u64, b: u64| ((b.saturating_sub(a)) as f64 / secs) as u64;
    let mut pods: HashMap<(String, String, String), Vec<Value>> = HashMap::new();
    for c in &containers {
        let (Some(a), Some(b)) = (first.get(&c.id), second.get(&c.id)) else { continue };
        pods.entry((c.pod.namespace.clone(), c.pod.name.clone(), c.pod.uid.clone())).or_default().push(json!({
            "name": c.container,
            "cpu": {"usageNanoCores": rate(a.cpu_nanos, b.cpu_nanos), "usageCoreNanoSeconds": b.cpu_nanos},
            "memory": {"workingSetBytes": b.memory_bytes},
        }));
    }
    let now = crate::now();
    let body = json!({
        "node": {
            "cpu": {"time": now, "usageNanoCores": rate(node0, node1), "usageCoreNanoSeconds": node1},
            "memory": {"time": now, "workingSetBytes": node_memory_working_set()},
        },
        "pods": pods.into_iter().map(|((ns, name, uid), containers)| json!({
            "podRef": {"namespace": ns, "name": name, "uid": uid},
            "containers": containers,
        })).collect::<Vec<_>>(),
        "window": format!("{}ms", (secs * 1000.0) as u64),
        "timestamp": now,
    });
    axum::Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("ls%20-l"), "ls -l");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        // A `%` before a multi-byte character is kept as it is, never a panic.
        assert_eq!(percent_decode("%aé"), "%aé");
        assert_eq!(percent_decode("%é"), "%é");
    }
}
