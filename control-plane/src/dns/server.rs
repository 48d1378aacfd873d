//! The DNS wire side: a query's bytes → a response's bytes (hickory-proto does the
//! encoding), the UDP and TCP listeners, and forwarding to upstream nameservers.
//!
//! ```text
//!  UDP / TCP ──► Responder::respond ──► Index::lookup (cluster domain, PTRs we know)
//!                      │                      │
//!                      │                      └─ Elsewhere ──► forward to upstreams (or REFUSED)
//!                      └─ not a query, undecodable ──► dropped / FORMERR
//! ```
//!
//! Answers come from the zone snapshot alone, on the listener's task (no spawn, no
//! lock held across an await). Forwarding runs on its own tasks, at most
//! [`MAX_FORWARDS`] at once (more are answered SERVFAIL rather than queued).

use super::index::{Data, Index, Lookup, Rr, normalize_name};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};

/// Forwarded queries in flight at once.
pub const MAX_FORWARDS: usize = 512;
/// TCP connections served at once.
pub const MAX_TCP_CONNECTIONS: usize = 512;
/// An idle TCP connection is closed after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How long one upstream may take to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest UDP response we send (the DNS flag day 2020 size), whatever the
/// client's EDNS buffer says.
const MAX_UDP_PAYLOAD: usize = 1232;

/// The current zone: swapped whole by the zone task, read by every query.
pub type Zone = Arc<RwLock<Arc<Index>>>;

/// How a query arrived (UDP answers must fit the client's buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with one packet.
#[derive(Debug)]
pub enum Reply {
    /// Send these bytes back.
    Send(Vec<u8>),
    /// Not ours: forward the query; `servfail` is the answer if no upstream replies.
    Forward { servfail: Vec<u8> },
    /// Say nothing (a response, or garbage too short to have an id).
    Drop,
}

/// Turns queries into answers.
pub struct Responder {
    pub zone: Zone,
    /// Where names outside the cluster domain go; empty: they are REFUSED.
    pub upstreams: Vec<SocketAddr>,
    /// TTL of every record, and the SOA minimum (negative caching).
    pub ttl: u32,
    forwards: Arc<Semaphore>,
}

impl Responder {
    pub fn new(zone: Zone, upstreams: Vec<SocketAddr>, ttl: u32) -> Arc<Self> {
        Arc::new(Self { zone, upstreams, ttl, forwards: Arc::new(Semaphore::new(MAX_FORWARDS)) })
    }

    /// Answers one packet. Never panics on any input.
    pub fn respond(&self, packet: &[u8], transport: Transport) -> Reply {
        // Too short for a header, or itself a response: answering could start a loop.
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            return Reply::Drop;
        }
        let request = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable DNS query; answering FORMERR");
                return Reply::Send(formerr(packet));
            }
        };
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.checking_disabled = request.metadata.checking_disabled;
        response.metadata.recursion_available = !self.upstreams.is_empty();
        response.queries = request.queries.clone();
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(MAX_UDP_PAYLOAD as u16);
            response.edns = Some(edns);
        }
        let limit = match transport {
            Transport::Tcp => usize::from(u16::MAX),
            Transport::Udp => {
                request.edns.as_ref().map_or(512, |e| usize::from(e.max_payload())).clamp(512, MAX_UDP_PAYLOAD)
            }
        };
        if request.metadata.op_code != OpCode::Query {
            response.metadata.response_code = ResponseCode::NotImp;
            return Reply::Send(encode(response, limit));
        }
        let [query] = request.queries.as_slice() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return Reply::Send(encode(response, limit));
        };
        let name = normalize_name(&query.name().to_ascii());
        let zone = self.zone.read().clone();
        if query.query_class() != DNSClass::IN {
            if zone.in_domain(&name) || self.upstreams.is_empty() {
                response.metadata.response_code = ResponseCode::Refused;
                return Reply::Send(encode(response, limit));
            }
            return self.forward_reply(response, limit);
        }
        match zone.lookup(&name, query.query_type()) {
            Lookup::Found { answers, additionals } => {
                response.metadata.authoritative = true;
                for rr in answers {
                    if let Some(r) = self.record(&zone, query.name().clone(), rr.data) {
                        response.answers.push(r);
                    }
                }
                for rr in additionals {
                    if let Some(r) = self.named_record(&zone, &rr) {
                        response.additionals.push(r);
                    }
                }
            }
            Lookup::NoData => {
                response.metadata.authoritative = true;
                response.authorities.extend(self.soa(&zone));
            }
            Lookup::NxDomain => {
                response.metadata.authoritative = true;
                response.metadata.response_code = ResponseCode::NXDomain;
                response.authorities.extend(self.soa(&zone));
            }
            Lookup::Elsewhere if self.upstreams.is_empty() => {
                response.metadata.response_code = ResponseCode::Refused;
            }
            Lookup::Elsewhere => return self.forward_reply(response, limit),
        }
        Reply::Send(encode(response, limit))
    }

    fn forward_reply(&self, mut response: Message, limit: usize) -> Reply {
        response.metadata.response_code = ResponseCode::ServFail;
        Reply::Forward { servfail: encode(response, limit) }
    }

    fn named_record(&self, zone: &Index, rr: &Rr) -> Option<Record> {
        let name = fqdn(&rr.name)?;
        self.record(zone, name, rr.data.clone())
    }

    fn record(&self, zone: &Index, name: Name, data: Data) -> Option<Record> {
        let rdata = match data {
            Data::A(ip) => RData::A(A(ip)),
            Data::Aaaa(ip) => RData::AAAA(AAAA(ip)),
            Data::Srv(s) => RData::SRV(SRV::new(s.priority, s.weight, s.port, fqdn(&s.target)?)),
            Data::Ptr(p) => RData::PTR(PTR(fqdn(&p)?)),
            Data::Cname(c) => RData::CNAME(CNAME(fqdn(&c)?)),
            Data::Soa => return self.soa(zone),
        };
        Some(Record::from_rdata(name, self.ttl, rdata))
    }

    /// The zone's SOA record (for the apex, and in the authority section of
    /// negative answers; its minimum bounds how long they are cached).
    fn soa(&self, zone: &Index) -> Option<Record> {
        let apex = fqdn(&zone.domain)?;
        let mname = fqdn(&format!("ns.dns.{}", zone.domain))?;
        let rname = fqdn(&format!("hostmaster.{}", zone.domain))?;
        let soa = SOA::new(mname, rname, zone.serial, 7200, 1800, 86400, self.ttl);
        Some(Record::from_rdata(apex, self.ttl, RData::SOA(soa)))
    }

    /// Sends `packet` to each upstream in turn until one answers; the reply carries
    /// the client's id. Over UDP a truncated reply is passed on as it is (the
    /// client retries over TCP, and then so do we).
    pub async fn forward(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let client_id = [*packet.first()?, *packet.get(1)?];
        for upstream in &self.upstreams {
            let id: u16 = rand::random();
            let mut query = packet.to_vec();
            query[..2].copy_from_slice(&id.to_be_bytes());
            let attempt: Attempt<'_> = match transport {
                Transport::Udp => Box::pin(forward_udp(*upstream, &query, id)),
                Transport::Tcp => Box::pin(forward_tcp(*upstream, &query, id)),
            };
            match tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
                Ok(Ok(mut reply)) => {
                    reply[..2].copy_from_slice(&client_id);
                    return Some(reply);
                }
                Ok(Err(e)) => tracing::debug!(%upstream, error = %e, "upstream nameserver failed"),
                Err(_) => tracing::debug!(%upstream, "upstream nameserver timed out"),
            }
        }
        None
    }
}

type Attempt<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<u8>>> + Send + 'a>>;

async fn forward_udp(upstream: SocketAddr, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let local = if upstream.is_ipv4() {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Only the reply to this query (a connected socket only hears the upstream).
        if n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn forward_tcp(upstream: SocketAddr, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len()).map_err(|_| std::io::Error::other("query too long"))?;
    let mut out = Vec::with_capacity(query.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(query);
    stream.write_all(&out).await?;
    let n = usize::from(stream.read_u16().await?);
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).await?;
    if n < 12 || buf[..2] != id.to_be_bytes() {
        return Err(std::io::Error::other("the upstream's reply does not match the query"));
    }
    Ok(buf)
}

/// A name as hickory wants it: absolute (trailing dot).
fn fqdn(name: &str) -> Option<Name> {
    Name::from_ascii(format!("{name}.")).ok()
}

/// Encodes `response`; over UDP, a response that does not fit loses its
/// additionals, then its answers (with TC set, so the client asks again over TCP).
fn encode(mut response: Message, limit: usize) -> Vec<u8> {
    if let Ok(bytes) = response.to_vec()
        && bytes.len() <= limit
    {
        return bytes;
    }
    response.additionals.clear();
    if let Ok(bytes) = response.to_vec()
        && bytes.len() <= limit
    {
        return bytes;
    }
    let mut truncated = response.truncate();
    truncated.metadata.message_type = MessageType::Response;
    truncated.to_vec().unwrap_or_else(|_| header_only(response.metadata.id, 0, ResponseCode::ServFail))
}

/// FORMERR for a query that does not decode: the request's id and opcode, no question.
fn formerr(packet: &[u8]) -> Vec<u8> {
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    header_only(id, (packet[2] >> 3) & 0x0f, ResponseCode::FormErr)
}

/// A bare response header (RFC 1035 4.1.1): QR set, the opcode, the rcode, no records.
fn header_only(id: u16, opcode: u8, rcode: ResponseCode) -> Vec<u8> {
    let mut h = vec![0u8; 12];
    h[..2].copy_from_slice(&id.to_be_bytes());
    h[2] = 0x80 | (opcode << 3);
    h[3] = rcode.low();
    h
}

// === listeners ===

/// Serves UDP queries on `socket` until `stop` turns true. Several of these may
/// share one socket (each takes the next datagram).
pub async fn serve_udp(socket: Arc<UdpSocket>, responder: Arc<Responder>, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        match responder.respond(&buf[..n], Transport::Udp) {
            Reply::Send(bytes) => {
                let _ = socket.send_to(&bytes, peer).await;
            }
            Reply::Forward { servfail } => {
                let Ok(permit) = responder.forwards.clone().try_acquire_owned() else {
                    let _ = socket.send_to(&servfail, peer).await;
                    continue;
                };
                let (socket, responder, packet) = (socket.clone(), responder.clone(), buf[..n].to_vec());
                tokio::spawn(async move {
                    let reply = responder.forward(&packet, Transport::Udp).await.unwrap_or(servfail);
                    let _ = socket.send_to(&reply, peer).await;
                    drop(permit);
                });
            }
            Reply::Drop => {}
        }
    }
}

/// Serves DNS over TCP (RFC 7766: two-byte length, several queries per
/// connection) until `stop` turns true.
pub async fn serve_tcp(listener: TcpListener, responder: Arc<Responder>, mut stop: watch::Receiver<bool>) {
    let connections = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "DNS TCP accept failed");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else { continue };
        let (responder, stop) = (responder.clone(), stop.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(3600), tcp_connection(stream, responder, stop)).await;
            drop(permit);
        });
    }
}

async fn tcp_connection(mut stream: TcpStream, responder: Arc<Responder>, stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    loop {
        if *stop.borrow() {
            return;
        }
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else { return };
        let mut packet = vec![0u8; usize::from(len)];
        if !matches!(tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet)).await, Ok(Ok(_))) {
            return;
        }
        let reply = match responder.respond(&packet, Transport::Tcp) {
            Reply::Send(bytes) => bytes,
            Reply::Forward { servfail } => responder.forward(&packet, Transport::Tcp).await.unwrap_or(servfail),
            Reply::Drop => continue,
        };
        let Ok(n) = u16::try_from(reply.len()) else { return };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&reply);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

// === upstreams ===

/// The `nameserver` lines of a resolv.conf, port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // Drop an IPv6 zone (`fe80::1%eth0`): std cannot parse it.
            let ip = words.next()?.split('%').next()?;
            Some(SocketAddr::new(ip.parse().ok()?, 53))
        })
        .collect()
}

/// Parses `--dns-upstream` entries: `IP` or `IP:PORT` (IPv6: `[IP]:PORT`).
pub fn parse_upstream(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("--dns-upstream entry {s:?} is not IP or IP:PORT"))
}

/// Docker's resolver inside a container on a user-defined network. The engine's NAT
/// rules in the container's namespace send its port 53 to a port of the engine's
/// own, so it is never this server even when this server listens on 0.0.0.0:53.
const DOCKER_EMBEDDED_DNS: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11));

/// Leaves out upstreams that are this server itself: forwarding to ourselves would
/// send a query round in circles.
pub fn without_self(upstreams: Vec<SocketAddr>, listen: SocketAddr) -> Vec<SocketAddr> {
    upstreams
        .into_iter()
        .filter(|u| {
            let same_port = u.port() == listen.port();
            let same_ip = u.ip() == listen.ip()
                || (listen.ip().is_unspecified()
                    && (u.ip().is_loopback() || u.ip().is_unspecified())
                    && u.ip() != DOCKER_EMBEDDED_DNS);
            let is_self = same_port && same_ip;
            if is_self {
                tracing::warn!(upstream = %u, "not forwarding DNS queries to this server itself");
            }
            !is_self
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;
    use k8s_openapi::api::core::v1::Service;

    fn responder(upstreams: Vec<SocketAddr>) -> Arc<Responder> {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}]},
        }))
        .unwrap();
        let index = Index::build("cluster.local", 42, [&svc], [], []);
        Responder::new(Arc::new(RwLock::new(Arc::new(index))), upstreams, 5)
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    fn reply(r: Reply) -> Message {
        match r {
            Reply::Send(b) => Message::from_vec(&b).unwrap(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn answers_keep_the_question_s_case_and_id() {
        let r = responder(vec![]);
        let m = reply(r.respond(&query("Web.Default.SVC.cluster.local.", RecordType::A), Transport::Udp));
        assert_eq!(m.metadata.id, 0x1234);
        assert!(m.metadata.authoritative);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].name.to_ascii(), "Web.Default.SVC.cluster.local.");
        assert_eq!(m.answers[0].ttl, 5);
        assert_eq!(m.answers[0].data, RData::A(A("10.96.0.10".parse().unwrap())));
    }

    #[test]
    fn negative_answers_carry_the_soa() {
        let r = responder(vec![]);
        let m = reply(r.respond(&query("web.default.svc.cluster.local.", RecordType::AAAA), Transport::Udp));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert!(matches!(&m.authorities[0].data, RData::SOA(s) if s.serial == 42));
        let m = reply(r.respond(&query("gone.default.svc.cluster.local.", RecordType::A), Transport::Tcp));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities.len(), 1);
    }

    #[test]
    fn srv_answers_list_the_target_address() {
        let r = responder(vec![]);
        let m = reply(r.respond(&query("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV), Transport::Udp));
        assert!(
            matches!(&m.answers[0].data, RData::SRV(s) if s.port == 80 && s.target.to_ascii() == "web.default.svc.cluster.local.")
        );
        assert_eq!(m.additionals.len(), 1);
    }

    #[test]
    fn other_names_are_refused_without_upstreams_and_forwarded_with() {
        let m = reply(responder(vec![]).respond(&query("example.com.", RecordType::A), Transport::Udp));
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(!m.metadata.recursion_available);
        let up = responder(vec!["192.0.2.1:53".parse().unwrap()]);
        assert!(matches!(up.respond(&query("example.com.", RecordType::A), Transport::Udp), Reply::Forward { .. }));
    }

    #[test]
    fn garbage_never_panics() {
        let r = responder(vec![]);
        // Too short, or a response: silence.
        assert!(matches!(r.respond(&[1, 2, 3], Transport::Udp), Reply::Drop));
        let mut resp = query("web.default.svc.cluster.local.", RecordType::A);
        resp[2] |= 0x80;
        assert!(matches!(r.respond(&resp, Transport::Udp), Reply::Drop));
        // A header that promises records that are not there: FORMERR with its id.
        let mut bad = query("web.default.svc.cluster.local.", RecordType::A);
        bad[5] = 9; // QDCOUNT = 9
        let m = reply(r.respond(&bad, Transport::Udp));
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        // Every prefix and many byte flips of a good query.
        let good = query("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
        for n in 0..good.len() {
            let _ = r.respond(&good[..n], Transport::Udp);
        }
        for i in 0..good.len() {
            for v in [0u8, 0x3f, 0xc0, 0xff] {
                let mut p = good.clone();
                p[i] = v;
                let _ = r.respond(&p, Transport::Tcp);
            }
        }
    }

    proptest::proptest! {
        /// Any bytes at all, and any mutation of a real query: an answer or
        /// silence, never a panic.
        #[test]
        fn arbitrary_packets_never_panic(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            flips in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..8),
        ) {
            let r = responder(vec![]);
            let _ = r.respond(&noise, Transport::Udp);
            let mut q = query("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
            for (i, v) in flips {
                let n = q.len();
                q[i % n] = v;
            }
            if let Reply::Send(bytes) = r.respond(&q, Transport::Udp) {
                proptest::prop_assert!(bytes.len() <= 512);
            }
        }
    }

    #[test]
    fn upstream_lists() {
        let ups = parse_resolv_conf("# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver bad\n");
        assert_eq!(ups, ["10.0.0.1:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]);
        assert_eq!(parse_upstream("1.1.1.1").unwrap(), "1.1.1.1:53".parse().unwrap());
        assert_eq!(parse_upstream("1.1.1.1:5353").unwrap(), "1.1.1.1:5353".parse().unwrap());
        assert!(parse_upstream("dns.example").is_err());
        let listen: SocketAddr = "0.0.0.0:53".parse().unwrap();
        let kept = without_self(vec!["127.0.0.1:53".parse().unwrap(), "10.0.0.1:53".parse().unwrap()], listen);
        assert_eq!(kept, ["10.0.0.1:53".parse().unwrap()]);
        // Docker's embedded resolver is the engine's, however this server listens.
        let docker: SocketAddr = "127.0.0.11:53".parse().unwrap();
        assert_eq!(without_self(vec![docker], listen), [docker]);
        let listen: SocketAddr = "10.0.0.1:53".parse().unwrap();
        assert!(without_self(vec![listen], listen).is_empty());
    }
}
