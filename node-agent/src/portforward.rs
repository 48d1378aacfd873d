//! Port forwarding into pods over a WebSocket, as the kubelet serves it
//! (`v4.channel.k8s.io`, or `v4.base64.channel.k8s.io` in text frames).
//!
//! A request names its ports (`?ports=8080&ports=9090` or `?ports=8080,9090`). Port
//! `i` gets two channels: `2i` carries the connection's bytes both ways, `2i+1`
//! carries an error message from the agent. Both channels first carry the port
//! number (two bytes, little endian) so a client can tell them apart. One WebSocket
//! is one TCP connection per port: clients open a new one for each connection they
//! forward. Like the kubelet, the agent connects to the pod's loopback inside the
//! pod's network namespace where the runtime can enter it (docker, with the agent on
//! the host), so servers listening on 127.0.0.1 in the pod are reached too; elsewhere
//! to the pod's IP (the node's loopback for host-network pods).

use crate::runtime::{Runtime, RuntimeError, Sandbox};
use axum::extract::ws::{Message, WebSocket};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The subprotocols served, binary first (the one clients prefer).
pub use rk_proto::portforward::PROTOCOLS;

/// The most ports one request may ask for: channels are numbered in one byte, two
/// per port.
const MAX_PORTS: usize = 127;

/// The ports a request asks for: every `ports` value, each a comma-separated list
/// of numbers from 1 to 65535. An error names the bad value.
pub fn parse_ports(raw_query: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for pair in raw_query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "ports" {
            continue;
        }
        let v = crate::server::percent_decode(v);
        if v.is_empty() {
            return Err("query parameter \"ports\" cannot be empty".into());
        }
        for p in v.split(',') {
            match p.trim().parse::<u16>() {
                Ok(0) => return Err(format!("port {p:?} must be > 0")),
                Ok(n) => ports.push(n),
                Err(_) => return Err(format!("unable to parse {p:?} as a port")),
            }
        }
    }
    if ports.is_empty() {
        return Err("query parameter \"ports\" is required".into());
    }
    // Two channels a port, numbered in one byte.
    if ports.len() > MAX_PORTS {
        return Err(format!("at most {MAX_PORTS} ports can be forwarded at once, not {}", ports.len()));
    }
    Ok(ports)
}

/// One frame of `data` on channel `ch`, in the negotiated encoding.
fn frame(base64: bool, ch: u8, data: &[u8]) -> Message {
    if base64 {
        let mut text = String::with_capacity(1 + data.len() * 4 / 3 + 4);
        text.push(char::from(b'0' + ch));
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
        Message::Text(text.into())
    } else {
        Message::Binary(rk_proto::channel_frame(ch, data).into())
    }
}

/// The channel and payload of a frame from the client; None for control frames and
/// frames that do not decode (which the kubelet drops too).
fn unframe(msg: Message) -> Option<(u8, Vec<u8>)> {
    match msg {
        Message::Binary(b) => b.split_first().map(|(&ch, rest)| (ch, rest.to_vec())),
        Message::Text(t) => {
            let t = t.as_str();
            let (first, rest) = t.as_bytes().split_first()?;
            let ch = first.checked_sub(b'0')?;
            let data = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
            Some((ch, data))
        }
        _ => None,
    }
}

/// The pod a port-forward reaches.
#[derive(Clone)]
pub struct Target {
    pub rt: Arc<dyn Runtime>,
    pub sandbox: Sandbox,
    /// The pod's IP (bracketed if IPv6), or the node's loopback for a host-network
    /// pod: where connections go when the runtime cannot make them inside the pod.
    pub ip: String,
}

impl Target {
    /// A connection to `port` of the pod; the error is the message for the client.
    async fn connect(&self, port: u16) -> Result<tokio::net::TcpStream, String> {
        match self.rt.connect_in_pod(&self.sandbox, port).await {
            Ok(conn) => return Ok(conn),
            Err(RuntimeError::Unsupported(why)) => tracing::debug!(why, "port-forward to the pod's IP"),
            // "localhost:PORT in the pod: <why>"
            Err(RuntimeError::Other(why)) => return Err(format!("error forwarding to {why}")),
            Err(e) => return Err(format!("error forwarding port {port}: {e}")),
        }
        let addr = format!("{}:{port}", self.ip);
        match tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(format!("error forwarding to {addr}: {e}")),
            Err(_) => Err(format!("error forwarding to {addr}: no connection within 10 s")),
        }
    }
}

/// Forwards `ports` of the pod `target` over `socket` until every port's connection
/// ended (the pod closed it, or it failed) or the client went away.
pub async fn bridge(socket: WebSocket, base64: bool, target: Target, ports: Vec<u16>) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    // Every frame goes through one writer, so the ports' tasks never interleave
    // inside a frame; it ends when all senders are gone.
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            if sink.send(msg).await.is_err() {
                return;
            }
        }
        let close = axum::extract::ws::CloseFrame { code: 1000, reason: "".into() };
        let _ = sink.send(Message::Close(Some(close))).await;
    });

    let mut inputs = Vec::with_capacity(ports.len());
    let mut tasks = Vec::with_capacity(ports.len());
    for (i, &port) in ports.iter().enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let header = port.to_le_bytes();
        for ch in [data_ch, err_ch] {
            if out_tx.send(frame(base64, ch, &header)).await.is_err() {
                return;
            }
        }
        // What the client sends waits here while the connection is being made.
        let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
        inputs.push(in_tx);
        tasks.push(tokio::spawn(forward(out_tx.clone(), base64, (data_ch, err_ch), target.clone(), port, in_rx)));
    }
    drop(out_tx);

    let reader = async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            let Some((ch, data)) = unframe(msg) else { continue };
            // Only data channels take input; a frame for an error channel or for
            // a port not asked for is dropped, as the kubelet drops it.
            if ch % 2 == 0
                && let Some(tx) = inputs.get(usize::from(ch / 2))
                && !data.is_empty()
            {
                let _ = tx.send(data).await;
            }
        }
    };
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let client_left = tokio::select! {
        // The client left: its connections into the pod end with it.
        _ = reader => {
            aborts.iter().for_each(|a| a.abort());
            true
        }
        _ = futures::future::join_all(tasks) => false,
    };
    let _ = writer.await;
    if !client_left {
        crate::server::drain(&mut stream).await;
    }
}

/// One port: connects to `port` of the pod, then copies both ways; a failure is
/// reported on the error channel.
async fn forward(
    out: mpsc::Sender<Message>,
    base64: bool,
    (data_ch, err_ch): (u8, u8),
    target: Target,
    port: u16,
    mut input: mpsc::Receiver<Vec<u8>>,
) {
    let conn = match target.connect(port).await {
        Ok(c) => c,
        Err(msg) => {
            let _ = out.send(frame(base64, err_ch, msg.as_bytes())).await;
            return;
        }
    };
    let addr = conn.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| format!("port {port}"));
    let (mut from_pod, mut to_pod) = conn.into_split();
    let upstream = async move {
        while let Some(data) = input.recv().await {
            if to_pod.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to_pod.shutdown().await;
        // Keep the half open for reading: the pod may still answer.
        std::future::pending::<()>().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if out.send(frame(base64, data_ch, &buf[..n])).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let msg = format!("error reading from {addr}: {e}");
                    let _ = out.send(frame(base64, err_ch, msg.as_bytes())).await;
                    break;
                }
            }
        }
    };
    // The pod closing its side ends the forward (as the kubelet's copy does).
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_as_the_kubelet_parses_them() {
        assert_eq!(parse_ports("ports=8080"), Ok(vec![8080]));
        assert_eq!(parse_ports("ports=80&ports=443"), Ok(vec![80, 443]));
        assert_eq!(parse_ports("ports=80%2C443&x=1"), Ok(vec![80, 443]));
        assert_eq!(parse_ports("x=1"), Err("query parameter \"ports\" is required".to_string()));
        assert_eq!(parse_ports(""), Err("query parameter \"ports\" is required".to_string()));
        assert_eq!(parse_ports("ports="), Err("query parameter \"ports\" cannot be empty".to_string()));
        assert_eq!(parse_ports("ports=0"), Err("port \"0\" must be > 0".to_string()));
        assert_eq!(parse_ports("ports=70000"), Err("unable to parse \"70000\" as a port".to_string()));
        assert_eq!(parse_ports("ports=http"), Err("unable to parse \"http\" as a port".to_string()));
        let many = vec!["1"; 128].join(",");
        assert_eq!(
            parse_ports(&format!("ports={many}")).unwrap_err(),
            "at most 127 ports can be forwarded at once, not 128"
        );
    }

    #[test]
    fn frames_round_trip_in_both_encodings() {
        for base64 in [false, true] {
            let msg = frame(base64, 3, b"\x00hello\xff");
            assert_eq!(unframe(msg), Some((3, b"\x00hello\xff".to_vec())), "base64={base64}");
        }
        assert_eq!(frame(true, 1, b"ab"), Message::Text("1YWI=".into()));
        assert_eq!(frame(false, 0, &8080u16.to_le_bytes()), Message::Binary(vec![0, 0x90, 0x1f].into()));
        // Nothing that fails to decode reaches a port.
        assert_eq!(unframe(Message::Text("0***".into())), None);
        assert_eq!(unframe(Message::Text("".into())), None);
        assert_eq!(unframe(Message::Text("éAA==".into())), None, "a multi-byte first character is no channel");
        assert_eq!(unframe(Message::Binary(Vec::new().into())), None);
        assert_eq!(unframe(Message::Ping(Vec::new().into())), None);
    }
}
