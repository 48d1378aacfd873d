//! Userspace mode: the agent itself accepts TCP connections for Services and copies
//! bytes to a ready endpoint (`tokio::io::copy_bidirectional`).
//!
//! ```text
//!  client ─► node-ip:nodePort ──────────────┐
//!  host process ─► clusterIP:port           │ listener per service port
//!     └─(nft output DNAT, if nft works)─► node-ip:<ephemeral proxy port>
//!                                            ▼
//!                              Balancer: ClientIP affinity, else round-robin;
//!                              an endpoint that refuses is skipped for the next one
//! ```
//!
//! This is the shape of kube-proxy's old userspace mode (one proxy port per service
//! port, cluster IP traffic redirected to it). UDP service ports get a UDP socket the
//! same way: each client address is a session with its own socket towards the endpoint
//! picked for it, replies go back from the service's socket, and a session ends after
//! [`UDP_IDLE`] without replies or when its endpoint is no longer ready. Throughput
//! against a direct connection: `examples/proxy-bench.rs`, results in BENCHMARKS.md.

use super::model::{Protocol, ServicePort};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Buffer per direction of a proxied connection. With tokio's default (8 KiB) the
/// proxy moved about 530 MiB/s in `examples/proxy-bench.rs`, with 64 KiB 1,200 to
/// 1,500 MiB/s (BENCHMARKS.md); 128 KiB per connection
/// is a small price for that.
const COPY_BUFFER: usize = 64 * 1024;

/// How long connecting to one endpoint may take before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A UDP session with no reply for this long ends (kube-proxy's userspace mode used
/// 250 ms; conntrack keeps unreplied UDP 30 s): the client's next datagram starts a
/// new one, balanced again.
pub const UDP_IDLE: Duration = Duration::from_secs(30);

/// Picks an endpoint per connection: a client with a live affinity entry keeps its
/// endpoint while that endpoint is ready; everyone else goes round-robin.
#[derive(Debug, Default)]
pub struct Balancer {
    endpoints: Vec<SocketAddrV4>,
    next: usize,
    affinity: Option<Duration>,
    /// Client address → (its endpoint, last time it was used).
    sticky: HashMap<IpAddr, (SocketAddrV4, Instant)>,
}

impl Balancer {
    /// New endpoints or affinity: sticky clients of endpoints that are gone lose
    /// their entry (their next connection is balanced again).
    pub fn update(&mut self, endpoints: &[SocketAddrV4], affinity: Option<Duration>) {
        self.endpoints = endpoints.to_vec();
        self.affinity = affinity;
        if affinity.is_none() {
            self.sticky.clear();
        }
        let eps = &self.endpoints;
        self.sticky.retain(|_, (ep, _)| eps.contains(ep));
    }

    pub fn endpoints(&self) -> &[SocketAddrV4] {
        &self.endpoints
    }

    /// The endpoint for a new connection from `client`, not one of `failed`.
    pub fn pick(&mut self, client: IpAddr, now: Instant, failed: &[SocketAddrV4]) -> Option<SocketAddrV4> {
        if let Some(timeout) = self.affinity {
            if let Some((ep, used)) = self.sticky.get(&client).copied()
                && now.saturating_duration_since(used) < timeout
                && !failed.contains(&ep)
                && self.endpoints.contains(&ep)
            {
                self.sticky.insert(client, (ep, now));
                return Some(ep);
            }
            // Bound the table: forget clients idle past the timeout.
            if self.sticky.len() > 4096 {
                self.sticky.retain(|_, (_, used)| now.saturating_duration_since(*used) < timeout);
            }
        }
        let n = self.endpoints.len();
        for _ in 0..n {
            let ep = self.endpoints[self.next % n];
            self.next = (self.next + 1) % n;
            if !failed.contains(&ep) {
                if self.affinity.is_some() {
                    self.sticky.insert(client, (ep, now));
                }
                return Some(ep);
            }
        }
        None
    }
}

/// What a listener serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    /// The proxy port behind a cluster IP (an ephemeral port on the node IP).
    ClusterIp,
    NodePort(u16),
    /// A LoadBalancer Service's own port, at the node's address.
    LoadBalancer(u16),
}

struct Listener {
    balancer: Arc<Mutex<Balancer>>,
    local: SocketAddrV4,
    task: tokio::task::JoinHandle<()>,
}

/// The listeners of one node, reconciled with the service ports on every sync.
pub struct Userspace {
    node_ip: Ipv4Addr,
    /// (service port key, kind) → listener.
    listeners: HashMap<(String, Kind), Listener>,
    /// Ports already logged as not served (bind failures), to log them once.
    warned: HashSet<String>,
}

impl Userspace {
    pub fn new(node_ip: Ipv4Addr) -> Self {
        Self { node_ip, listeners: HashMap::new(), warned: HashSet::new() }
    }

    /// Opens, updates and closes listeners to match `ports`. Returns the proxy port
    /// of every service port whose cluster IP should be redirected to it.
    pub async fn sync(&mut self, ports: &[ServicePort]) -> Vec<(ServicePort, SocketAddrV4)> {
        let mut wanted: HashSet<(String, Kind)> = HashSet::new();
        let mut redirects = Vec::new();
        for sp in ports {
            let affinity = sp.affinity_seconds.map(|s| Duration::from_secs(u64::from(s)));
            let mut kinds = Vec::new();
            if sp.cluster_ip.is_some() {
                kinds.push(Kind::ClusterIp);
            }
            if let Some(np) = sp.node_port {
                kinds.push(Kind::NodePort(np));
            }
            if sp.load_balancer {
                kinds.push(Kind::LoadBalancer(sp.port));
            }
            for kind in kinds {
                let key = (format!("{} {:?}", sp.key(), sp.protocol), kind.clone());
                if let Some(l) = self.listeners.get(&key) {
                    l.balancer.lock().update(&sp.endpoints, affinity);
                } else {
                    let port = match kind {
                        Kind::ClusterIp => 0,
                        Kind::NodePort(np) | Kind::LoadBalancer(np) => np,
                    };
                    let addr = SocketAddrV4::new(self.node_ip, port);
                    let balancer = Arc::new(Mutex::new(Balancer::default()));
                    balancer.lock().update(&sp.endpoints, affinity);
                    let bound = if sp.protocol == Protocol::Udp {
                        UdpSocket::bind(addr).await.map(|socket| {
                            let local = socket.local_addr();
                            (local, tokio::spawn(serve_udp(socket, balancer.clone(), sp.key())))
                        })
                    } else {
                        TcpListener::bind(addr).await.map(|listener| {
                            let local = listener.local_addr();
                            (local, tokio::spawn(serve(listener, balancer.clone(), sp.key())))
                        })
                    };
                    match bound {
                        Ok((local, task)) => {
                            let local = match local {
                                Ok(SocketAddr::V4(a)) => a,
                                _ => addr,
                            };
                            tracing::info!(service = %sp.key(), listen = %local, "userspace proxy listening");
                            self.warned.remove(&format!("bind {key:?}"));
                            self.listeners.insert(key.clone(), Listener { balancer, local, task });
                        }
                        Err(e) => {
                            // Retried on the next sync (a periodic resync runs too).
                            if self.warned.insert(format!("bind {key:?}")) {
                                tracing::warn!(service = %sp.key(), addr = %addr, error = %e, "cannot listen for a service port");
                            }
                            continue;
                        }
                    }
                }
                wanted.insert(key.clone());
                if kind == Kind::ClusterIp
                    && let Some(l) = self.listeners.get(&key)
                {
                    redirects.push((sp.clone(), l.local));
                }
            }
        }
        self.listeners.retain(|key, l| {
            let keep = wanted.contains(key);
            if !keep {
                tracing::info!(service = %key.0, listen = %l.local, "userspace proxy closing");
                l.task.abort();
            }
            keep
        });
        redirects
    }

    /// Closes every listener (connections already proxied run to their end).
    pub fn stop(&mut self) {
        for (_, l) in self.listeners.drain() {
            l.task.abort();
        }
    }
}

async fn serve(listener: TcpListener, balancer: Arc<Mutex<Balancer>>, service: String) {
    loop {
        let (conn, client) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(service, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let balancer = balancer.clone();
        let service = service.clone();
        tokio::spawn(async move {
            if let Err(e) = forward(conn, client, &balancer).await {
                tracing::debug!(service, client = %client, error = %e, "proxied connection ended with an error");
            }
        });
    }
}

/// One client's UDP session: the socket towards its endpoint.
struct UdpSession {
    endpoint: SocketAddrV4,
    upstream: Arc<UdpSocket>,
}

type UdpSessions = Arc<Mutex<HashMap<SocketAddr, UdpSession>>>;

/// Serves one UDP service port: datagrams from each client go to the endpoint of its
/// session (opened on its first datagram), replies go back from this socket.
async fn serve_udp(socket: UdpSocket, balancer: Arc<Mutex<Balancer>>, service: String) {
    let socket = Arc::new(socket);
    let sessions: UdpSessions = Arc::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(service, error = %e, "udp receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let existing = {
            let mut map = sessions.lock();
            // A session whose endpoint is no longer ready ends here; the next is balanced.
            if map.get(&client).is_some_and(|s| !balancer.lock().endpoints().contains(&s.endpoint)) {
                map.remove(&client);
            }
            map.get(&client).map(|s| s.upstream.clone())
        };
        let upstream = match existing {
            Some(u) => u,
            None => {
                // No ready endpoint: the datagram is dropped, as kube-proxy does.
                let Some(endpoint) = balancer.lock().pick(client.ip(), Instant::now(), &[]) else { continue };
                let Ok(up) = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)).await else {
                    continue;
                };
                if let Err(e) = up.connect(endpoint).await {
                    tracing::debug!(service, endpoint = %endpoint, error = %e, "udp endpoint unusable");
                    continue;
                }
                let up = Arc::new(up);
                sessions.lock().insert(client, UdpSession { endpoint, upstream: up.clone() });
                tokio::spawn(udp_replies(up.clone(), socket.clone(), client, sessions.clone()));
                up
            }
        };
        if let Err(e) = upstream.send(&buf[..n]).await {
            tracing::debug!(service, client = %client, error = %e, "udp send to endpoint failed");
        }
    }
}

/// Relays an endpoint's replies to the client until the session idles out or fails.
async fn udp_replies(upstream: Arc<UdpSocket>, socket: Arc<UdpSocket>, client: SocketAddr, sessions: UdpSessions) {
    let mut buf = vec![0u8; 64 * 1024];
    // Until idle, or the endpoint refuses (ICMP port unreachable): then the session ends.
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)).await {
        let _ = socket.send_to(&buf[..n], client).await;
    }
    let mut map = sessions.lock();
    if map.get(&client).is_some_and(|s| Arc::ptr_eq(&s.upstream, &upstream)) {
        map.remove(&client);
    }
}

/// Connects to an endpoint (trying the next one when one refuses) and copies bytes
/// both ways until both sides are done.
async fn forward(mut conn: TcpStream, client: SocketAddr, balancer: &Mutex<Balancer>) -> std::io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut failed = Vec::new();
    loop {
        let Some(ep) = balancer.lock().pick(client.ip(), Instant::now(), &failed) else {
            // No ready endpoint: close, so the client sees the connection end at once
            // (kube-proxy rejects these).
            return Ok(());
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ep)).await {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                tokio::io::copy_bidirectional_with_sizes(&mut conn, &mut upstream, COPY_BUFFER, COPY_BUFFER).await?;
                return Ok(());
            }
            Ok(Err(e)) => tracing::debug!(endpoint = %ep, error = %e, "endpoint refused; trying another"),
            Err(_) => tracing::debug!(endpoint = %ep, "endpoint did not answer in time; trying another"),
        }
        failed.push(ep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(list: &[&str]) -> Vec<SocketAddrV4> {
        list.iter().map(|e| e.parse().expect("test address")).collect()
    }

    #[test]
    fn round_robin_skips_failed_endpoints() {
        let mut b = Balancer::default();
        b.update(&eps(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]), None);
        let c: IpAddr = "192.0.2.1".parse().expect("ip");
        let now = Instant::now();
        let picks: Vec<String> = (0..6).map(|_| b.pick(c, now, &[]).expect("endpoint").to_string()).collect();
        assert_eq!(picks, ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
        let all = eps(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
        assert_eq!(b.pick(c, now, &all[..2]), Some(all[2]));
        assert_eq!(b.pick(c, now, &all), None);
        b.update(&[], None);
        assert_eq!(b.pick(c, now, &[]), None);
    }

    #[test]
    fn client_ip_affinity_sticks_until_timeout_or_endpoint_gone() {
        let mut b = Balancer::default();
        let list = eps(&["10.0.0.1:80", "10.0.0.2:80"]);
        b.update(&list, Some(Duration::from_secs(10)));
        let (c1, c2): (IpAddr, IpAddr) = ("192.0.2.1".parse().expect("ip"), "192.0.2.2".parse().expect("ip"));
        let t0 = Instant::now();
        let first = b.pick(c1, t0, &[]).expect("endpoint");
        let other = b.pick(c2, t0, &[]).expect("endpoint");
        assert_ne!(first, other, "a second client is balanced");
        for i in 0..5 {
            assert_eq!(b.pick(c1, t0 + Duration::from_secs(i), &[]), Some(first));
        }
        // Idle past the timeout: balanced again (round-robin continues).
        let later = t0 + Duration::from_secs(30);
        assert_eq!(b.pick(c1, later, &[]), Some(list[0]));
        // Its endpoint gone: moved to a ready one and sticks there.
        b.update(&list[1..], Some(Duration::from_secs(10)));
        let moved = b.pick(c1, later, &[]).expect("endpoint");
        assert_eq!(moved, list[1]);
        assert_eq!(b.pick(c1, later, &[]), Some(list[1]));
        // A sticky endpoint that refuses is not retried.
        assert_eq!(b.pick(c1, later, &[list[1]]), None);
    }

    #[tokio::test]
    async fn forwards_udp_per_client_session_and_follows_endpoints() {
        // Two UDP backends answering every datagram with their name and the payload.
        let mut backends = Vec::new();
        for name in ["a", "b"] {
            let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            let SocketAddr::V4(addr) = s.local_addr().expect("addr") else { panic!("v4") };
            backends.push(addr);
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                while let Ok((n, from)) = s.recv_from(&mut buf).await {
                    let reply = format!("{name}:{}", String::from_utf8_lossy(&buf[..n]));
                    let _ = s.send_to(reply.as_bytes(), from).await;
                }
            });
        }
        let mut sp = ServicePort {
            namespace: "default".into(),
            name: "dns".into(),
            port_name: String::new(),
            protocol: Protocol::Udp,
            cluster_ip: Some(Ipv4Addr::new(10, 96, 0, 53)),
            port: 53,
            node_port: None,
            load_balancer: false,
            affinity_seconds: None,
            endpoints: backends.clone(),
        };
        let mut us = Userspace::new(Ipv4Addr::LOCALHOST);
        let redirects = us.sync(std::slice::from_ref(&sp)).await;
        assert_eq!(redirects.len(), 1, "a UDP port is served and its cluster IP redirected");
        let proxy = redirects[0].1;
        let ask = |client: Arc<UdpSocket>, msg: &'static str| async move {
            client.send_to(msg.as_bytes(), proxy).await.expect("send");
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
                .await
                .expect("a reply in time")
                .expect("recv");
            String::from_utf8_lossy(&buf[..n]).to_string()
        };
        // One client keeps its endpoint; two clients are spread over both.
        let c1 = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let c2 = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let first = ask(c1.clone(), "x").await;
        assert_eq!(ask(c1.clone(), "y").await[..2], first[..2], "a session sticks to its endpoint");
        let other = ask(c2.clone(), "z").await;
        assert_ne!(first[..1], other[..1], "the second client goes to the other endpoint");
        assert!(first.ends_with(":x") && other.ends_with(":z"));
        // c1's endpoint stops being ready: its next datagram goes to the other one.
        let kept = if first.starts_with('a') { backends[1] } else { backends[0] };
        sp.endpoints = vec![kept];
        us.sync(std::slice::from_ref(&sp)).await;
        let moved = ask(c1.clone(), "w").await;
        assert_ne!(moved[..1], first[..1], "{moved}");
        assert!(us.sync(&[]).await.is_empty());
    }

    #[tokio::test]
    async fn forwards_tcp_to_endpoints_and_closes_listeners() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Two echo-ish backends answering with their name.
        let mut backends = Vec::new();
        for name in ["a", "b"] {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let SocketAddr::V4(addr) = l.local_addr().expect("addr") else { panic!("v4") };
            backends.push(addr);
            tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    let _ = s.write_all(name.as_bytes()).await;
                }
            });
        }
        let sp = ServicePort {
            namespace: "default".into(),
            name: "web".into(),
            port_name: String::new(),
            protocol: Protocol::Tcp,
            cluster_ip: Some(Ipv4Addr::new(10, 96, 0, 10)),
            port: 80,
            node_port: None,
            load_balancer: false,
            affinity_seconds: None,
            endpoints: backends.clone(),
        };
        let mut us = Userspace::new(Ipv4Addr::LOCALHOST);
        let redirects = us.sync(std::slice::from_ref(&sp)).await;
        assert_eq!(redirects.len(), 1);
        let proxy = redirects[0].1;
        let mut seen = HashSet::new();
        for _ in 0..4 {
            let mut s = TcpStream::connect(proxy).await.expect("connect to the proxy");
            let mut got = String::new();
            s.read_to_string(&mut got).await.expect("read");
            seen.insert(got);
        }
        assert_eq!(seen, HashSet::from(["a".to_string(), "b".to_string()]));
        assert!(us.sync(&[]).await.is_empty());
        tokio::task::yield_now().await;
        // The listener is closed: nothing accepts there any more.
        let refused = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if TcpStream::connect(proxy).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(refused.is_ok(), "listener still open after its service port went away");
    }
}
