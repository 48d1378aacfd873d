//! Cluster DNS: every replica can answer for the cluster domain (`cluster.local`)
//! from its own copy of the store, and forwards other names to the host's
//! nameservers.
//!
//! ```text
//!  store ──watch──► Informers (services, endpoints, pods) ──► typed Mirrors
//!                          │ any change                            │
//!                          ▼                                       ▼
//!                    zone task: Index::build(services, endpoints, pods) ──► Zone (Arc swap)
//!                                                                              │ read per query
//!  UDP/TCP --dns-listen ──► server::Responder::respond ◄───────────────────────┘
//!                                   └── other names ──► upstreams (resolv.conf / --dns-upstream)
//! ```
//!
//! - [`index`]: the zone in memory and the pure name → answer logic (start there).
//! - [`server`]: wire format (hickory-proto), listeners, forwarding.
//!
//! Queries never read the store: the zone is rebuilt after changes (coalesced, so
//! a burst of changes costs one rebuild) and swapped in whole. Followers follow
//! their local store like the leader, so every replica serves the same names,
//! each at most a replication delay behind.
//!
//! hickory-proto (the protocol crate under hickory-server) encodes and decodes
//! messages; the serving loop is ours because the zone is not a zone file but an
//! index rebuilt from watches, and because it lets us decide exactly what a broken
//! packet gets (nothing or FORMERR) and keeps the hot path free of allocation-heavy
//! layers.

pub mod index;
pub mod server;

use crate::api::registry;
use crate::api::rest::Api;
use crate::controllers::runtime::{Informer, Mirror};
use index::Index;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use parking_lot::RwLock;
use server::{Responder, Zone};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, watch};

/// Default TTL of cluster records (CoreDNS's kubernetes plugin uses 5 s too).
pub const DEFAULT_TTL: u32 = 5;

/// Settings of the DNS server.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// Where to serve (UDP and TCP on the same address).
    pub listen: SocketAddr,
    /// The cluster domain, e.g. `cluster.local`.
    pub domain: String,
    /// Nameservers for everything else; empty: such queries are REFUSED.
    pub upstreams: Vec<SocketAddr>,
    /// TTL of every answer (and of negative answers).
    pub ttl: u32,
}

/// Why the DNS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen for DNS on {addr} ({proto}): {source}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A running DNS server.
pub struct Dns {
    /// The UDP and TCP address actually bound (port 0 picks one).
    pub local_addr: SocketAddr,
    pub zone: Zone,
}

/// The bound DNS sockets, not yet serving: a replica binds them before it starts
/// anything else, so a busy port fails the start cleanly.
pub struct Listeners {
    udp: UdpSocket,
    tcp: TcpListener,
    pub local_addr: SocketAddr,
}

/// Binds UDP and TCP on `listen` (with port 0, the same free port for both).
pub async fn bind(listen: SocketAddr) -> Result<Listeners, DnsError> {
    let udp = UdpSocket::bind(listen).await.map_err(|source| DnsError::Bind { addr: listen, proto: "udp", source })?;
    let local_addr = udp.local_addr().unwrap_or(listen);
    let tcp = TcpListener::bind(local_addr).await.map_err(|source| DnsError::Bind {
        addr: local_addr,
        proto: "tcp",
        source,
    })?;
    Ok(Listeners { udp, tcp, local_addr })
}

/// Serves DNS on `listeners` until `stop` turns true; `opts.listen` is ignored.
pub fn serve(listeners: Listeners, api: Api, opts: DnsOptions, stop: watch::Receiver<bool>) -> Dns {
    let Listeners { udp, tcp, local_addr } = listeners;
    let upstreams = server::without_self(opts.upstreams.clone(), local_addr);
    let zone: Zone = Arc::new(RwLock::new(Arc::new(Index::empty(&opts.domain))));
    tokio::spawn(maintain_zone(api, opts.domain.clone(), zone.clone(), stop.clone()));
    let responder = Responder::new(zone.clone(), upstreams.clone(), opts.ttl);
    let udp = Arc::new(udp);
    // Two receivers on one socket: one per core of the machines rk is sized for.
    for _ in 0..2 {
        tokio::spawn(server::serve_udp(udp.clone(), responder.clone(), stop.clone()));
    }
    tokio::spawn(server::serve_tcp(tcp, responder, stop));
    tracing::info!(%local_addr, domain = %opts.domain, ?upstreams, "serving cluster DNS");
    Dns { local_addr, zone }
}

/// [`bind`] then [`serve`].
pub async fn start(api: Api, opts: DnsOptions, stop: watch::Receiver<bool>) -> Result<Dns, DnsError> {
    let listeners = bind(opts.listen).await?;
    Ok(serve(listeners, api, opts, stop))
}

/// The upstream nameservers `--dns-upstream` asks for: the entries given, none for
/// `none`, or the host's /etc/resolv.conf when empty.
pub fn upstreams(flag: &[String]) -> Result<Vec<SocketAddr>, String> {
    let entries: Vec<&str> = flag.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    match entries.as_slice() {
        [] => {
            Ok(std::fs::read_to_string("/etc/resolv.conf").map(|t| server::parse_resolv_conf(&t)).unwrap_or_default())
        }
        ["none"] => Ok(Vec::new()),
        list => list.iter().map(|e| server::parse_upstream(e)).collect(),
    }
}

/// Keeps `zone` equal to what the store says, until `stop`.
async fn maintain_zone(api: Api, domain: String, zone: Zone, mut stop: watch::Receiver<bool>) {
    let informer = |name: &str| registry::lookup(name).map(Informer::new);
    let (Some(svc_inf), Some(ep_inf), Some(pod_inf)) = (informer("services"), informer("endpoints"), informer("pods"))
    else {
        tracing::error!("the registry lacks services, endpoints or pods; cluster DNS stays empty");
        return;
    };
    let services = Mirror::<Service>::attach(&svc_inf);
    let endpoints = Mirror::<Endpoints>::attach(&ep_inf);
    let pods = Mirror::<Pod>::attach(&pod_inf);
    let changed = Arc::new(Notify::new());
    for inf in [&svc_inf, &ep_inf, &pod_inf] {
        let c = changed.clone();
        inf.on_change(move |_| c.notify_one());
        tokio::spawn(inf.clone().run(api.clone(), stop.clone()));
    }
    // Serve an empty zone until the first lists are in, not a partial one.
    for inf in [&svc_inf, &ep_inf, &pod_inf] {
        tokio::select! {
            _ = inf.wait_synced() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
    // The serial only has to grow; seconds since the epoch also grow across restarts.
    let mut serial =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs() as u32);
    loop {
        serial = serial.wrapping_add(1);
        let (s, e, p) = (services.list(), endpoints.list(), pods.list());
        let index =
            Index::build(&domain, serial, s.iter().map(|v| &**v), e.iter().map(|v| &**v), p.iter().map(|v| &**v));
        tracing::debug!(names = index.len(), serial, "cluster DNS zone rebuilt");
        *zone.write() = Arc::new(index);
        tokio::select! {
            _ = changed.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // Changes come in bursts (a rollout touches pods, endpoints and slices):
        // take them in one rebuild. This bounds rebuilds to 20 a second.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};
    use serde_json::json;

    async fn ask(addr: SocketAddr, name: &str, t: RecordType) -> Message {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut q = Message::query();
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        sock.send_to(&q.to_vec().unwrap(), addr).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf)).await.unwrap().unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    }

    #[tokio::test]
    async fn the_zone_follows_the_store() {
        let api = crate::testing::api().await;
        let (stop_tx, stop) = watch::channel(false);
        let opts = DnsOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            domain: "cluster.local".into(),
            upstreams: vec![],
            ttl: 5,
        };
        let dns = start(api.clone(), opts, stop).await.unwrap();
        let res = registry::lookup("services").unwrap();
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                         "spec": {"ports": [{"name": "http", "port": 80}]}});
        let created = api.create(res, Some("default"), svc, &Default::default(), "t").await.unwrap();
        let ip = created.object.pointer("/spec/clusterIP").and_then(|v| v.as_str()).unwrap().to_string();
        let name = "web.default.svc.cluster.local.";
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let m = ask(dns.local_addr, name, RecordType::A).await;
            if let Some(r) = m.answers.first() {
                assert_eq!(r.data, RData::A(hickory_proto::rr::rdata::A(ip.parse().unwrap())));
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the Service never appeared in DNS");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        api.delete(res, Some("default"), "web", &Default::default()).await.unwrap();
        loop {
            let m = ask(dns.local_addr, name, RecordType::A).await;
            if m.metadata.response_code == ResponseCode::NXDomain {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the deleted Service stayed in DNS");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop_tx.send(true);
    }
}
