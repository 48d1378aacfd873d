//! What the API server fetches from node agents on a client's behalf: pod logs,
//! exec and port-forward sessions (WebSocket upgrades spliced through to the agent), and the
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
    Ok((node_agent(api, &obj, pod).await?, container))
}

/// The agent of the node the pod `obj` (named `pod`) is bound to.
async fn node_agent(api: &Api, obj: &Value, pod: &str) -> Result<String, ApiError> {
    let node = obj.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::BadRequest(format!("pod {pod} is not scheduled to a node yet")));
    }
    agent_address(api, node).await
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

fn is_websocket(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// The two remote-command subresources: both carry stdin/stdout/stderr (and resize)
/// over the same protocols, to a new process (`exec`) or a running container's own
/// (`attach`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCommand {
    Exec,
    Attach,
}

impl RemoteCommand {
    fn name(self) -> &'static str {
        match self {
            RemoteCommand::Exec => "exec",
            RemoteCommand::Attach => "attach",
        }
    }
}

/// `pods/exec` and `pods/attach`: WebSocket upgrades (kubectl 1.30+, client
/// libraries) are spliced through to the agent, which speaks the protocol; kubectl's
/// SPDY (up to 1.29) ends here ([`super::spdy::exec`]), carried to the agent over a
/// WebSocket.
pub async fn remote_command(
    api: &Api,
    ns: &str,
    pod: &str,
    req: Request,
    what: RemoteCommand,
) -> Result<Response, ApiError> {
    let name = what.name();
    let spdy = is_spdy(&req);
    if !is_websocket(&req) && !spdy {
        return Err(ApiError::BadRequest(format!(
            "{name} needs an upgrade: a WebSocket (v5.channel.k8s.io, as kubectl 1.30+ sends) or SPDY/3.1"
        )));
    }
    // The remote command protocol rk speaks over SPDY (the kubelet's newest).
    const REMOTE_COMMAND: &str = "v4.channel.k8s.io";
    if spdy && !stream_protocols(&req).contains(&REMOTE_COMMAND) {
        return Err(ApiError::BadRequest(format!(
            "{name} over SPDY speaks the stream protocol {REMOTE_COMMAND}; the client offered {:?}",
            stream_protocols(&req)
        )));
    }
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let q = query::parse(Some(&raw_query));
    let (addr, container) = locate(api, ns, pod, q.get("container").map(String::as_str)).await?;
    let path = format!("/{name}/{ns}/{pod}/{container}?{raw_query}");
    if !spdy {
        return splice(api, &addr, &path, name, req).await;
    }
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
    let streams = super::spdy::ExecStreams {
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr"),
        tty: flag("tty"),
    };
    let api = api.clone();
    let connect: super::spdy::ExecConnect = Box::pin(async move { agent_exec(&api, &addr, &path).await });
    spdy_upgrade(req, false, REMOTE_COMMAND, super::spdy::exec(streams, connect))
}

fn is_spdy(req: &Request) -> bool {
    req.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|u| u.eq_ignore_ascii_case("SPDY/3.1"))
}

/// The stream protocols a SPDY client offers (`X-Stream-Protocol-Version`).
fn stream_protocols(req: &Request) -> Vec<&str> {
    req.headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim))
        .collect()
}

/// The WebSocket subprotocols of port forwarding (the kubelet's).
use rk_proto::portforward::PROTOCOLS as PORT_FORWARD_PROTOCOLS;
/// kubectl 1.31+: SPDY carried in a WebSocket's binary messages.
const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol of a plain SPDY upgrade (`X-Stream-Protocol-Version`).
const PORT_FORWARD_STREAM_PROTOCOL: &str = "portforward.k8s.io";

/// How a port-forward client talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `v4.channel.k8s.io` WebSockets (client libraries, rkctl): spliced to the agent.
    Channels,
    /// kubectl's SPDY over a plain HTTP upgrade (kubectl up to 1.30).
    Spdy,
    /// kubectl's SPDY tunnelled in a WebSocket (kubectl 1.31+).
    SpdyTunnel,
}

fn transport(req: &Request) -> Result<Transport, ApiError> {
    if is_spdy(req) {
        let versions = stream_protocols(req);
        if !versions.contains(&PORT_FORWARD_STREAM_PROTOCOL) {
            return Err(ApiError::BadRequest(format!(
                "port-forward speaks the stream protocol {PORT_FORWARD_STREAM_PROTOCOL}; the client offered {versions:?}"
            )));
        }
        return Ok(Transport::Spdy);
    }
    if !is_websocket(req) {
        return Err(ApiError::BadRequest(
            "port-forward needs an upgrade: a WebSocket (v4.channel.k8s.io, or SPDY/3.1+portforward.k8s.io) or SPDY/3.1"
                .into(),
        ));
    }
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect();
    // No subprotocol at all means the binary one, as the kubelet takes it.
    if offered.is_empty() || offered.iter().any(|p| PORT_FORWARD_PROTOCOLS.contains(&p.as_str())) {
        Ok(Transport::Channels)
    } else if offered.iter().any(|p| p == SPDY_TUNNEL) {
        Ok(Transport::SpdyTunnel)
    } else {
        Err(ApiError::BadRequest(format!(
            "none of the offered WebSocket subprotocols ({}) is served for port-forward; rk serves {}, {} and {SPDY_TUNNEL}",
            offered.join(", "),
            PORT_FORWARD_PROTOCOLS[0],
            PORT_FORWARD_PROTOCOLS[1]
        )))
    }
}

/// `pods/portforward`: `v4.channel.k8s.io` WebSockets are spliced through to the
/// agent like exec; kubectl's SPDY sessions end here ([`super::spdy`]), each of
/// their connections carried to the agent over a WebSocket of its own.
pub async fn port_forward(api: &Api, ns: &str, pod: &str, req: Request) -> Result<Response, ApiError> {
    let transport = transport(&req)?;
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let pods = registry::lookup("pods").ok_or_else(|| ApiError::Internal("no pods".into()))?;
    let obj = api.get(pods, Some(ns), pod, Freshness::Any).await?.object()?;
    let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
    if phase != "Running" {
        return Err(ApiError::BadRequest(format!("pod {pod} is not running (phase {phase})")));
    }
    let addr = node_agent(api, &obj, pod).await?;
    if transport == Transport::Channels {
        return splice(api, &addr, &format!("/portForward/{ns}/{pod}?{raw_query}"), "port-forward", req).await;
    }
    let connect: super::spdy::Connect = {
        let (api, ns, pod) = (api.clone(), ns.to_string(), pod.to_string());
        Arc::new(move |port| {
            let (api, addr, path) = (api.clone(), addr.clone(), format!("/portForward/{ns}/{pod}?ports={port}"));
            Box::pin(async move { agent_forward(&api, &addr, &path).await })
        })
    };
    spdy_upgrade(
        req,
        transport == Transport::SpdyTunnel,
        PORT_FORWARD_STREAM_PROTOCOL,
        super::spdy::port_forward(connect),
    )
}

/// Answers a SPDY upgrade with 101 (plain, or a WebSocket carrying SPDY in its binary
/// messages when `tunnel`), and runs the session with `app` on the connection.
fn spdy_upgrade(
    mut req: Request,
    tunnel: bool,
    stream_protocol: &'static str,
    app: super::spdy::App,
) -> Result<Response, ApiError> {
    let upgrade = hyper::upgrade::on(&mut req);
    let (from_client_tx, from_client) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let (to_client, mut to_client_rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let resp = if tunnel {
        let key = req.headers().get(header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes()).unwrap_or_default();
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, tokio_tungstenite::tungstenite::handshake::derive_accept_key(key))
            .header(header::SEC_WEBSOCKET_PROTOCOL, format!("SPDY/3.1+{stream_protocol}"))
    } else {
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "SPDY/3.1")
            .header("x-stream-protocol-version", stream_protocol)
    };
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "a SPDY upgrade failed");
                return;
            }
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let session = super::spdy::serve(from_client, to_client, app);
        let result = if !tunnel {
            let (mut rd, mut wr) = tokio::io::split(io);
            // Reads until the client closes, even after the session ended: closing
            // with unread bytes would reset the connection and lose the last frames.
            let reader = async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let _ = from_client_tx.send(bytes::Bytes::copy_from_slice(&buf[..n])).await;
                }
            };
            let writer = async move {
                while let Some(b) = to_client_rx.recv().await {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                let _ = wr.shutdown().await;
            };
            finish(session, writer, reader).await
        } else {
            use futures::{SinkExt, StreamExt};
            use tokio_tungstenite::tungstenite::Message;
            let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                io,
                tokio_tungstenite::tungstenite::protocol::Role::Server,
                None,
            )
            .await;
            let (mut sink, mut stream) = ws.split();
            let reader = async move {
                while let Some(Ok(msg)) = stream.next().await {
                    match msg {
                        Message::Binary(b) => {
                            let _ = from_client_tx.send(b).await;
                        }
                        Message::Close(_) => break,
                        _ => {}
                    }
                }
            };
            let writer = async move {
                while let Some(b) = to_client_rx.recv().await {
                    if sink.send(Message::Binary(b)).await.is_err() {
                        break;
                    }
                }
                let _ = sink.close().await;
            };
            finish(session, writer, reader).await
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "a SPDY session ended with a protocol error");
        }
    });
    resp.body(Body::empty()).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Runs a SPDY session with its connection's writer and reader; once the session
/// and the writer are done, gives the client 5 s to close (the reader drains until
/// then) before the connection is dropped.
async fn finish(
    session: impl std::future::Future<Output = Result<(), super::spdy::SpdyError>>,
    writer: impl std::future::Future<Output = ()>,
    reader: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), super::spdy::SpdyError> {
    let mut reader = tokio::spawn(reader);
    let (result, _) = tokio::join!(session, writer);
    if tokio::time::timeout(Duration::from_secs(5), &mut reader).await.is_err() {
        reader.abort();
    }
    result
}

/// An exec session at the node agent: a `v5.channel.k8s.io` WebSocket to `path`,
/// as the SPDY session wants it ((channel, bytes) both ways).
async fn agent_exec(api: &Api, addr: &str, path: &str) -> Result<super::spdy::ExecSession, String> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ws = agent_websocket(api, addr, path, "v5.channel.k8s.io").await?;
    let (mut sink, mut stream) = ws.split();
    let (input, mut input_rx) = tokio::sync::mpsc::channel::<(u8, bytes::Bytes)>(16);
    let (output_tx, output) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let upstream = async move {
            while let Some((ch, b)) = input_rx.recv().await {
                if sink.send(Message::Binary(rk_proto::channel_frame(ch, &b).into())).await.is_err() {
                    return;
                }
            }
        };
        let downstream = async move {
            while let Some(Ok(msg)) = stream.next().await {
                let data = match msg {
                    Message::Binary(b) => b,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if let Some((&ch, rest)) = data.split_first()
                    && output_tx.send((ch, bytes::Bytes::copy_from_slice(rest))).await.is_err()
                {
                    return;
                }
            }
        };
        // The command's end (the agent closes) ends the session.
        tokio::select! {
            _ = downstream => {}
            _ = async { upstream.await; std::future::pending::<()>().await } => {}
        }
    });
    Ok(super::spdy::ExecSession { input, output })
}

/// A WebSocket to the node agent at `addr` for `path`, offering `protocol`.
async fn agent_websocket(
    api: &Api,
    addr: &str,
    path: &str,
    protocol: &'static str,
) -> Result<tokio_tungstenite::WebSocketStream<crate::tls::DialedStream>, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let stream = dial_agent(api, addr).await.map_err(|e| e.to_string())?;
    let mut request = format!("ws://{addr}{path}").into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    let (ws, _) =
        tokio_tungstenite::client_async(request, stream).await.map_err(|e| format!("the node agent at {addr}: {e}"))?;
    Ok(ws)
}

/// One connection to a pod's port through its node agent: a `v4.channel.k8s.io`
/// WebSocket to `path` (which names one port), as the SPDY session wants it.
async fn agent_forward(api: &Api, addr: &str, path: &str) -> Result<super::spdy::Forward, String> {
    use futures::{SinkExt, StreamExt};
    use rk_proto::portforward;
    use tokio_tungstenite::tungstenite::Message;
    let ws = agent_websocket(api, addr, path, PORT_FORWARD_PROTOCOLS[0]).await?;
    let (mut sink, mut stream) = ws.split();
    let (input, mut input_rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let (output_tx, output) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let upstream = async move {
            while let Some(b) = input_rx.recv().await {
                if sink.send(Message::Binary(portforward::data_message(0, &b).into())).await.is_err() {
                    return;
                }
            }
            // The client is done: closing the WebSocket ends the pod connection.
            let _ = sink.close().await;
        };
        let downstream = async move {
            let mut port = portforward::OnePort::default();
            let mut error = Vec::new();
            while let Some(Ok(msg)) = stream.next().await {
                let data = match msg {
                    Message::Binary(b) => b,
                    Message::Close(_) => break,
                    _ => continue,
                };
                match port.receive(&data) {
                    portforward::Received::Data(d) => {
                        if output_tx.send(Ok(bytes::Bytes::copy_from_slice(d))).await.is_err() {
                            return;
                        }
                    }
                    portforward::Received::Error(e) => error.extend_from_slice(e),
                    portforward::Received::Nothing => {}
                }
            }
            if !error.is_empty() {
                let _ = output_tx.send(Err(String::from_utf8_lossy(&error).into_owned())).await;
            }
        };
        // The pod's side ending ends the connection; the client's side ending
        // closes the WebSocket, and the agent then ends the pod's side.
        tokio::join!(upstream, downstream);
    });
    Ok(super::spdy::Forward { input, output })
}

/// Sends the client's WebSocket handshake to the agent at `addr` as `GET path`; on
/// the agent's 101 answers 101 and splices the two connections' bytes.
async fn splice(api: &Api, addr: &str, path: &str, what: &str, mut req: Request) -> Result<Response, ApiError> {
    let mut stream = dial_agent(api, addr).await?;
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
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
            .map_err(|_| ApiError::Unavailable(format!("the node agent did not answer the {what} request")))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if n == 0 {
            return Err(ApiError::Unavailable(format!("the node agent closed the {what} connection")));
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
            if client.write_all(&leftover).await.is_err() {
                return;
            }
            // Each direction on its own, ending with a clean close (TLS close_notify):
            // copy_bidirectional gives up on both at the first error of either, which
            // cut off the agent's last messages (an error, the final Status) when the
            // client's writes to a finished session failed.
            let (mut client_rd, mut client_wr) = tokio::io::split(client);
            let (mut agent_rd, mut agent_wr) = tokio::io::split(stream);
            let up = async {
                let _ = tokio::io::copy(&mut client_rd, &mut agent_wr).await;
                let _ = agent_wr.shutdown().await;
            };
            let down = async {
                let _ = tokio::io::copy(&mut agent_rd, &mut client_wr).await;
                let _ = client_wr.shutdown().await;
            };
            tokio::join!(up, down);
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
