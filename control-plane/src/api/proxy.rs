//! What the API server fetches from node agents on a client's behalf: pod logs,
//! exec sessions (a WebSocket upgrade spliced through to the agent), and the
//! `metrics.k8s.io` API built from the agents' usage summaries.
//!
//! Agents serve TLS and take only clients in `system:masters`: this replica dials them
//! presenting its own client port certificate ([`dial_agent`]), except with
//! `--insecure-dev`, where both sides speak plain HTTP.

use super::error::ApiError;
use super::registry;
use super::rest::Api;
use super::store::Freshness;
use super::{ApiServer, query};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where a node's agent listens, from its Node object.
async fn agent_address(api: &Api, node: &str) -> Result<String, ApiError> {
    let nodes = registry::lookup("nodes").ok_or_else(|| ApiError::Internal("no nodes".into()))?;
    let obj = api.get(nodes, None, node, Freshness::Any).await?.object()?;
    let ip = obj
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .ok_or_else(|| ApiError::Unavailable(format!("node {node:?} has not reported an address")))?;
    let port = obj.pointer("/status/daemonEndpoints/kubeletEndpoint/Port").and_then(Value::as_u64).unwrap_or(10250);
    Ok(if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") })
}

/// The pod, its node's agent, and the container a request names (or the default).
async fn locate(api: &Api, ns: &str, pod: &str, container: Option<&str>) -> Result<(String, String), ApiError> {
    let pods = registry::lookup("pods").ok_or_else(|| ApiError::Internal("no pods".into()))?;
    let obj = api.get(pods, Some(ns), pod, Freshness::Any).await?.object()?;
    let names: Vec<String> = obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|c| c["name"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    let all: Vec<String> = obj
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|c| c["name"].as_str().map(String::from)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(names.iter().cloned())
        .collect();
    let default = obj.pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container").and_then(Value::as_str);
    let container = match container.filter(|c| !c.is_empty()).or(default) {
        Some(c) if all.iter().any(|n| n == c) => c.to_string(),
        Some(c) => return Err(ApiError::BadRequest(format!("container {c} is not valid for pod {pod}"))),
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {pod}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let node = obj.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::BadRequest(format!("pod {pod} is not scheduled to a node yet")));
    }
    Ok((agent_address(api, node).await?, container))
}

fn pass_query(q: &std::collections::HashMap<String, String>, keys: &[&str]) -> String {
    keys.iter().filter_map(|k| q.get(*k).map(|v| format!("{k}={}", urlencode(v)))).collect::<Vec<_>>().join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A connection to the node agent at `addr` (`ip:port`): TLS with this replica's
/// credentials, or plain TCP for an `--insecure-dev` replica.
async fn dial_agent(api: &Api, addr: &str) -> Result<crate::tls::DialedStream, ApiError> {
    let unreachable = |e: String| ApiError::Unavailable(format!("cannot reach the node agent at {addr}: {e}"));
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| unreachable("no connection within 10 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let Some(tls) = &api.options.agent_tls else { return Ok(crate::tls::Either::Plain(tcp)) };
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| unreachable(e.to_string()))?;
    let stream =
        tokio::time::timeout(Duration::from_secs(10), tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp))
            .await
            .map_err(|_| unreachable("no TLS handshake within 10 s".into()))?
            .map_err(|e| unreachable(format!("TLS: {e}")))?;
    Ok(crate::tls::Either::Tls(Box::new(stream)))
}

/// `GET path` from the node agent at `addr`; the answer's body streams on.
async fn agent_get(
    api: &Api,
    addr: &str,
    path: &str,
    timeout: Duration,
) -> Result<http::Response<hyper::body::Incoming>, ApiError> {
    let stream = dial_agent(api, addr).await?;
    let unreachable = |e: String| ApiError::Unavailable(format!("the node agent at {addr}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(header::HOST, addr)
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::time::timeout(timeout, sender.send_request(req))
        .await
        .map_err(|_| unreachable("did not answer".into()))?
        .map_err(|e| unreachable(e.to_string()))
}

/// `pods/log`: streams the agent's answer through.
pub async fn logs(api: &Api, ns: &str, pod: &str, raw_query: Option<&str>) -> Result<Response, ApiError> {
    let q = query::parse(raw_query);
    let (addr, container) = locate(api, ns, pod, q.get("container").map(String::as_str)).await?;
    let params = pass_query(&q, &["follow", "tailLines", "sinceSeconds", "timestamps", "previous", "limitBytes"]);
    let path = format!("/containerLogs/{ns}/{pod}/{container}?{params}");
    let resp = agent_get(api, &addr, &path, Duration::from_secs(10)).await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let msg =
            v["message"].as_str().map(String::from).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(ApiError::BadRequest(msg));
    }
    let mut out = Response::new(Body::new(resp.into_body()));
    out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(out)
}

/// `pods/exec` (and `attach`-style) WebSocket upgrades: the agent does the
/// protocol; the API server forwards the handshake and then splices the bytes.
pub async fn exec(api: &Api, ns: &str, pod: &str, mut req: Request) -> Result<Response, ApiError> {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        return Err(ApiError::BadRequest(
            "exec needs a WebSocket upgrade (v5.channel.k8s.io); kubectl 1.30+ uses it by default, 1.29 with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true; SPDY is not supported"
                .into(),
        ));
    }
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let q = query::parse(Some(&raw_query));
    let (addr, container) = locate(api, ns, pod, q.get("container").map(String::as_str)).await?;
    let mut stream = dial_agent(api, &addr).await?;
    let mut head = format!("GET /exec/{ns}/{pod}/{container}?{raw_query} HTTP/1.1\r\nHost: {addr}\r\n");
    for name in ["upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"] {
        for v in req.headers().get_all(name) {
            head.push_str(&format!("{name}: {}\r\n", v.to_str().unwrap_or("")));
        }
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // Read the agent's response head.
    let mut buf = Vec::new();
    let end = loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .map_err(|_| ApiError::Unavailable("the node agent did not answer the exec request".into()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if n == 0 {
            return Err(ApiError::Unavailable("the node agent closed the exec connection".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(ApiError::Unavailable("the node agent sent an oversized answer".into()));
        }
    };
    let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let leftover = buf[end..].to_vec();
    let code: u16 = head_text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    if code != 101 {
        let body = String::from_utf8_lossy(&leftover).into_owned();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        return Err(ApiError::BadRequest(v["message"].as_str().map(String::from).unwrap_or(body)));
    }
    let mut resp = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for line in head_text.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if ["upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol"].contains(&k.as_str()) {
                resp = resp.header(k, v.trim());
            }
        }
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut client = hyper_util::rt::TokioIo::new(upgraded);
            if client.write_all(&leftover).await.is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut stream).await;
            }
        }
    });
    resp.body(Body::empty()).map_err(|e| ApiError::Internal(e.to_string()))
}

// === metrics.k8s.io ===

fn cpu(nano: u64) -> String {
    format!("{nano}n")
}

fn memory(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// Usage summaries of every node that reports an address, fetched concurrently.
async fn summaries(api: &Api) -> Result<Vec<(String, Value)>, ApiError> {
    let nodes = registry::lookup("nodes").ok_or_else(|| ApiError::Internal("no nodes".into()))?;
    let list = api.list(nodes, None, &Default::default(), Freshness::Any).await?;
    let mut tasks = Vec::new();
    for item in &list.page.items {
        let node = item.object()?;
        let name = node.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        let api = api.clone();
        tasks.push(async move {
            let addr = agent_address(&api, &name).await.ok()?;
            let resp = agent_get(&api, &addr, "/stats/summary", Duration::from_secs(3)).await.ok()?;
            let body =
                tokio::time::timeout(Duration::from_secs(3), resp.into_body().collect()).await.ok()?.ok()?.to_bytes();
            Some((name, serde_json::from_slice::<Value>(&body).ok()?))
        });
    }
    Ok(futures::future::join_all(tasks).await.into_iter().flatten().collect())
}

/// `/apis/metrics.k8s.io/v1beta1/...`: node and pod usage (what `kubectl top` reads).
pub async fn metrics_api(State(server): State<Arc<ApiServer>>, req: Request) -> Response {
    let path = req.uri().path().trim_start_matches("/apis/metrics.k8s.io").trim_matches('/').to_string();
    let raw_query = req.uri().query().map(String::from);
    drop(req);
    let segs: Vec<&str> = path.split('/').collect();
    let result = async {
        let now = super::meta::now();
        match segs.as_slice() {
            ["v1beta1"] => Ok(metrics_discovery()),
            ["v1beta1", "nodes", rest @ ..] => {
                let sums = summaries(&server.api).await?;
                let items: Vec<Value> = sums
                    .iter()
                    .filter(|(n, _)| rest.first().is_none_or(|want| n == want))
                    .map(|(name, s)| {
                        json!({
                            "metadata": {"name": name, "creationTimestamp": now},
                            "timestamp": s["timestamp"], "window": s["window"],
                            "usage": {
                                "cpu": cpu(s.pointer("/node/cpu/usageNanoCores").and_then(Value::as_u64).unwrap_or(0)),
                                "memory": memory(s.pointer("/node/memory/workingSetBytes").and_then(Value::as_u64).unwrap_or(0)),
                            },
                        })
                    })
                    .collect();
                single_or_list("NodeMetrics", rest.first().copied(), items)
            }
            ["v1beta1", rest @ ..] => {
                let (ns, name) = match rest {
                    ["pods"] => (None, None),
                    ["namespaces", ns, "pods"] => (Some(*ns), None),
                    ["namespaces", ns, "pods", name] => (Some(*ns), Some(*name)),
                    _ => return Err(ApiError::NotFound { group: "metrics.k8s.io".into(), resource: path.clone(), name: String::new() }),
                };
                let q = query::parse(raw_query.as_deref());
                let selector = match q.get("labelSelector") {
                    Some(s) => Some(super::selector::LabelSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?),
                    None => None,
                };
                let pods_res = registry::lookup("pods").ok_or_else(|| ApiError::Internal("no pods".into()))?;
                let sums = summaries(&server.api).await?;
                let mut items = Vec::new();
                for (_, s) in &sums {
                    for p in s["pods"].as_array().into_iter().flatten() {
                        let pns = p.pointer("/podRef/namespace").and_then(Value::as_str).unwrap_or("");
                        let pname = p.pointer("/podRef/name").and_then(Value::as_str).unwrap_or("");
                        if ns.is_some_and(|n| n != pns) || name.is_some_and(|n| n != pname) {
                            continue;
                        }
                        if let Some(sel) = &selector {
                            let Ok(pod) = server.api.get(pods_res, Some(pns), pname, Freshness::Any).await else { continue };
                            let pod = pod.object()?;
                            let empty = serde_json::Map::new();
                            if !sel.matches(pod.pointer("/metadata/labels").and_then(Value::as_object).unwrap_or(&empty)) {
                                continue;
                            }
                        }
                        let containers: Vec<Value> = p["containers"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|c| json!({"name": c["name"], "usage": {
                                "cpu": cpu(c.pointer("/cpu/usageNanoCores").and_then(Value::as_u64).unwrap_or(0)),
                                "memory": memory(c.pointer("/memory/workingSetBytes").and_then(Value::as_u64).unwrap_or(0)),
                            }}))
                            .collect();
                        items.push(json!({
                            "metadata": {"name": pname, "namespace": pns, "creationTimestamp": now},
                            "timestamp": s["timestamp"], "window": s["window"], "containers": containers,
                        }));
                    }
                }
                single_or_list("PodMetrics", name, items)
            }
            _ => Err(ApiError::NotFound { group: "metrics.k8s.io".into(), resource: path.clone(), name: String::new() }),
        }
    }
    .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn single_or_list(kind: &str, name: Option<&str>, items: Vec<Value>) -> Result<Value, ApiError> {
    let api_version = "metrics.k8s.io/v1beta1";
    match name {
        Some(n) => {
            let mut item = items.into_iter().next().ok_or_else(|| ApiError::NotFound {
                group: "metrics.k8s.io".into(),
                resource: format!("{}.metrics.k8s.io", kind.to_lowercase().replace("metrics", "")),
                name: n.into(),
            })?;
            item["kind"] = json!(kind);
            item["apiVersion"] = json!(api_version);
            Ok(item)
        }
        None => Ok(json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": {}, "items": items})),
    }
}

pub fn metrics_discovery() -> Value {
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1",
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    })
}
