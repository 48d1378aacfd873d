//! `rkctl port-forward POD|TYPE/NAME [LOCAL:]REMOTE…`: listens on local ports and
//! carries each connection to the pod over the API server's `pods/portforward`
//! WebSocket (`v4.channel.k8s.io`, the protocol the node agent serves).
//!
//! One WebSocket is one connection: the first frame on the data channel (0) and on
//! the error channel (1) is the port number, then channel 0 carries the bytes both
//! ways and channel 1 an error from the node. For `svc/NAME` the remote port is the
//! Service's port, translated to the chosen pod's target port as kubectl does; named
//! ports are looked up among the pod's container ports.

use crate::Session;
use crate::cli::PortForwardArgs;
use crate::client::{Client, Request};
use crate::error::Error;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use rk_proto::portforward::{self as protocol, OnePort, Received};

/// One `[LOCAL:]REMOTE` argument; `local` None picks a free port, `remote` may be a
/// port name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    local: Option<u16>,
    remote: String,
}

fn parse_spec(arg: &str) -> Result<Spec, Error> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "invalid port {arg:?}: {why}; give [LOCAL_PORT:]REMOTE_PORT, e.g. 8080:80, 80 or :80 (any free local port)"
        ))
    };
    let (local, remote) = match arg.split_once(':') {
        Some((l, r)) => (l, r),
        None => (arg, arg),
    };
    if remote.is_empty() {
        return Err(bad("the remote port is missing"));
    }
    if let Ok(n) = remote.parse::<u32>()
        && !(1..=65535).contains(&n)
    {
        return Err(bad("the remote port must be 1-65535"));
    }
    let local = if local.is_empty() || (arg.contains(':') && local == "0") {
        None
    } else {
        match local.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ if !arg.contains(':') => return Err(bad("a port name needs a local port, e.g. 8080:http")),
            _ => return Err(bad("the local port must be 1-65535")),
        }
    };
    Ok(Spec { local, remote: remote.to_string() })
}

/// The number of a port a container of `pod` names `name`.
fn named_port(pod: &Value, name: &str) -> Option<u16> {
    pod.pointer("/spec/containers")?.as_array()?.iter().find_map(|c| {
        c["ports"].as_array()?.iter().find(|p| p["name"] == name)?["containerPort"].as_u64()?.try_into().ok()
    })
}

/// The pod port a remote port of the command line means: for a Service, its port's
/// `targetPort` (a number, or a name among the pod's container ports); for anything
/// else, the number or a container port's name.
fn remote_port(pod: &Value, service: Option<&Value>, remote: &str) -> Result<u16, Error> {
    let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let by_name = |name: &str| {
        named_port(pod, name)
            .ok_or_else(|| Error::Usage(format!("pod {pod_name:?} does not have a named port {name:?}")))
    };
    let Some(svc) = service else {
        return match remote.parse::<u16>() {
            Ok(n) => Ok(n),
            Err(_) => by_name(remote),
        };
    };
    let svc_name = svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let ports = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let found = match remote.parse::<u64>() {
        Ok(n) => ports.iter().find(|p| p["port"].as_u64() == Some(n)),
        Err(_) => ports.iter().find(|p| p["name"] == remote),
    }
    .ok_or_else(|| Error::Usage(format!("service {svc_name:?} does not have a service port {remote}")))?;
    match &found["targetPort"] {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|&n| n > 0),
        Value::String(name) if !name.is_empty() => return by_name(name),
        _ => None,
    }
    .or_else(|| found["port"].as_u64().and_then(|n| u16::try_from(n).ok()))
    .ok_or_else(|| Error::Usage(format!("service {svc_name:?} has a port without a number")))
}

/// The addresses `--address` names ("localhost": the IPv4 and IPv6 loopbacks).
fn addresses(args: &[String]) -> Result<Vec<(String, bool)>, Error> {
    let mut out = Vec::new();
    for a in args.iter().flat_map(|a| a.split(',')).map(str::trim).filter(|a| !a.is_empty()) {
        if a == "localhost" {
            // The IPv6 loopback is optional: a machine without IPv6 still forwards.
            out.push(("127.0.0.1".to_string(), true));
            out.push(("::1".to_string(), false));
        } else if a.parse::<std::net::IpAddr>().is_ok() {
            out.push((a.to_string(), true));
        } else {
            return Err(Error::Usage(format!("--address {a:?} is not an IP address or \"localhost\"")));
        }
    }
    if out.is_empty() {
        return Err(Error::Usage("--address needs at least one address, e.g. --address 127.0.0.1".into()));
    }
    Ok(out)
}

pub async fn run(s: &Session, args: &PortForwardArgs) -> Result<(), Error> {
    let specs = args.ports.iter().map(|p| parse_spec(p)).collect::<Result<Vec<_>, _>>()?;
    let addrs = addresses(&args.address)?;
    let timeout = crate::human::parse_duration(&args.pod_running_timeout).ok_or_else(|| {
        Error::Usage(format!("--pod-running-timeout {:?} is not a duration, e.g. 1m", args.pod_running_timeout))
    })?;

    let service = match args.target.split_once('/') {
        Some((kind, name)) if s.discovery().await?.resolve(kind)?.kind == "Service" => {
            let svcs = s.discovery().await?.resolve(kind)?.clone();
            Some(s.client.json(Request::get(svcs.object_path(Some(&s.namespace), name))).await?)
        }
        _ => None,
    };
    // kubectl waits for the pod to run, then forwards to it for as long as it lives.
    let deadline = Instant::now() + timeout;
    let pod = loop {
        let pod = crate::pods::pick(s, &args.target, "port-forward to").await?;
        let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending").to_string();
        match phase.as_str() {
            "Running" => break pod,
            "Pending" if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(500)).await,
            _ => {
                return Err(Error::Usage(format!(
                    "unable to forward port because pod is not running. Current status={phase}"
                )));
            }
        }
    };
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let path = format!("{}/portforward", s.discovery().await?.resolve("pods")?.object_path(Some(&s.namespace), &name));

    let mut listeners = Vec::new();
    for spec in &specs {
        let remote = remote_port(&pod, service.as_ref(), &spec.remote)?;
        // Every address listens on the same local port: the first bind picks it
        // when none was given.
        let mut local = spec.local.unwrap_or(0);
        for (addr, required) in &addrs {
            match TcpListener::bind((addr.as_str(), local)).await {
                Ok(l) => {
                    local = l.local_addr().map(|a| a.port()).unwrap_or(local);
                    let shown = if addr.contains(':') { format!("[{addr}]") } else { addr.clone() };
                    say(&format!("Forwarding from {shown}:{local} -> {remote}"));
                    listeners.push((l, local, remote));
                }
                Err(e) if *required => {
                    return Err(Error::Usage(format!(
                        "unable to listen on {addr}:{local}: {e}; choose another local port, e.g. :{remote} for any free one"
                    )));
                }
                Err(_) => {}
            }
        }
    }

    let mut accepts = futures::stream::select_all(listeners.into_iter().map(|(l, local, remote)| {
        Box::pin(futures::stream::unfold(l, move |l| async move {
            let conn = l.accept().await.map(|(c, _)| c);
            Some(((conn, local, remote), l))
        }))
    }));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            next = accepts.next() => {
                let Some((conn, local, remote)) = next else { return Ok(()) };
                let conn = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        crate::output::eprint_line(&format!("error accepting a connection on port {local}: {e}"));
                        continue;
                    }
                };
                say(&format!("Handling connection for {local}"));
                let (client, path) = (s.client.clone(), path.clone());
                tokio::spawn(async move {
                    if let Err(e) = forward(&client, &path, remote, conn).await {
                        crate::output::eprint_line(&format!("an error occurred forwarding {local} -> {remote}: {e}"));
                    }
                });
            }
        }
    }
}

/// A progress line on stdout. Unlike other commands, a closed stdout does not end
/// a forward (`rkctl port-forward … | head -1` keeps forwarding): the connections
/// matter, the lines do not.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Carries one local connection to `remote` on the pod over its own WebSocket.
async fn forward(client: &Client, path: &str, remote: u16, conn: TcpStream) -> Result<(), String> {
    let req = Request::get(path.to_string()).query("ports", remote.to_string());
    let (ws, _) = client.websocket(req, &protocol::PROTOCOLS[..1]).await.map_err(|e| e.line())?;
    let (mut sink, mut stream) = ws.split();
    let (mut from_local, mut to_local) = conn.into_split();
    let upstream = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_local.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink.send(Message::Binary(protocol::data_message(0, &buf[..n]).into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        // v4 has no way to close one direction: keep the socket open for the answer.
        std::future::pending::<()>().await;
    };
    let downstream = async {
        let mut port = OnePort::default();
        let mut error = Vec::new();
        while let Some(msg) = stream.next().await {
            let data = match msg {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                // A message from the node says more than the broken connection.
                Err(_) if !error.is_empty() => break,
                Err(e) => return Err(format!("the connection to the pod broke: {e}")),
            };
            match port.receive(&data) {
                Received::Data(d) => {
                    to_local.write_all(d).await.map_err(|e| format!("writing to the local connection: {e}"))?
                }
                Received::Error(e) => error.extend_from_slice(e),
                Received::Nothing => {}
            }
        }
        let _ = to_local.shutdown().await;
        if error.is_empty() { Ok(()) } else { Err(String::from_utf8_lossy(&error).into_owned()) }
    };
    tokio::select! {
        _ = upstream => Ok(()),
        r = downstream => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_specs_read_as_kubectl_reads_them() {
        let spec = |l: Option<u16>, r: &str| Spec { local: l, remote: r.into() };
        assert_eq!(parse_spec("8080:80").unwrap(), spec(Some(8080), "80"));
        assert_eq!(parse_spec("80").unwrap(), spec(Some(80), "80"));
        assert_eq!(parse_spec(":80").unwrap(), spec(None, "80"));
        assert_eq!(parse_spec("0:80").unwrap(), spec(None, "80"));
        assert_eq!(parse_spec("8080:http").unwrap(), spec(Some(8080), "http"));
        for bad in ["http", "8080:", "99999:80", "80:0", "80:70000", "x:80"] {
            let e = parse_spec(bad).unwrap_err().line();
            assert!(e.starts_with(&format!("error: invalid port {bad:?}: ")), "{bad}: {e}");
        }
    }

    #[test]
    fn remote_ports_follow_services_and_port_names() {
        let pod = json!({"metadata": {"name": "web-1"}, "spec": {"containers": [
            {"name": "a", "ports": [{"name": "metrics", "containerPort": 9090}]},
            {"name": "b", "ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(remote_port(&pod, None, "81").unwrap(), 81);
        assert_eq!(remote_port(&pod, None, "http").unwrap(), 8080);
        assert_eq!(
            remote_port(&pod, None, "grpc").unwrap_err().line(),
            "error: pod \"web-1\" does not have a named port \"grpc\""
        );
        let svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [
            {"name": "web", "port": 80, "targetPort": "http"},
            {"name": "m", "port": 9000, "targetPort": 9090},
            {"name": "same", "port": 7000}]}});
        assert_eq!(remote_port(&pod, Some(&svc), "80").unwrap(), 8080);
        assert_eq!(remote_port(&pod, Some(&svc), "web").unwrap(), 8080);
        assert_eq!(remote_port(&pod, Some(&svc), "9000").unwrap(), 9090);
        assert_eq!(remote_port(&pod, Some(&svc), "7000").unwrap(), 7000);
        assert_eq!(
            remote_port(&pod, Some(&svc), "8080").unwrap_err().line(),
            "error: service \"web\" does not have a service port 8080"
        );
    }

    #[test]
    fn addresses_expand_localhost() {
        let a = addresses(&["localhost".into()]).unwrap();
        assert_eq!(a, vec![("127.0.0.1".to_string(), true), ("::1".to_string(), false)]);
        let a = addresses(&["127.0.0.2,::1".into()]).unwrap();
        assert_eq!(a, vec![("127.0.0.2".to_string(), true), ("::1".to_string(), true)]);
        assert!(addresses(&["example.com".into()]).unwrap_err().line().contains("not an IP address"));
    }
}
