//! Cluster DNS on a real 3-replica cluster with a hollow node: Services (ClusterIP,
//! headless, named ports) and Pods created through the API, then asked for over UDP
//! and TCP with hickory-proto messages on plain sockets (and with `dig` when it is
//! installed, as an independent client): A, AAAA (NODATA), SRV, PTR, NXDOMAIN,
//! forwarding to an upstream, every replica answering, a deleted Service
//! disappearing, and malformed packets not hurting the server.

use anyhow::{Context, Result, bail, ensure};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use rk_tests::{Cluster, ClusterOptions, wait_for};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const DNS_PORT: u16 = 1053;
/// What the fake upstream answers for any A question.
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

fn query(name: &str, t: RecordType) -> Result<Vec<u8>> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name)?, t));
    Ok(m.to_vec()?)
}

/// One question over UDP (three tries: datagrams may be lost).
async fn udp(server: SocketAddr, name: &str, t: RecordType) -> Result<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let q = query(name, t)?;
    let id = u16::from_be_bytes([q[0], q[1]]);
    let mut buf = vec![0u8; 65535];
    for _ in 0..3 {
        sock.send_to(&q, server).await?;
        if let Ok(r) = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await {
            let m = Message::from_vec(&buf[..r?])?;
            ensure!(m.metadata.id == id, "reply to another query");
            return Ok(m);
        }
    }
    bail!("no UDP answer from {server} for {name} {t}")
}

/// One question over TCP (two-byte length prefix).
async fn tcp(server: SocketAddr, name: &str, t: RecordType) -> Result<Message> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(server)).await??;
    let q = query(name, t)?;
    s.write_all(&(q.len() as u16).to_be_bytes()).await?;
    s.write_all(&q).await?;
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_u16()).await??;
    let mut buf = vec![0u8; usize::from(n)];
    s.read_exact(&mut buf).await?;
    Ok(Message::from_vec(&buf)?)
}

fn addresses(m: &Message) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn srv_targets(m: &Message) -> Vec<(u16, String)> {
    let mut v: Vec<(u16, String)> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.port, s.target.to_ascii())),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn has_soa(records: &[Record]) -> bool {
    records.iter().any(|r| matches!(r.data, RData::SOA(_)))
}

/// A nameserver that answers every A question with [`UPSTREAM_ANSWER`], standing in
/// for the host's resolver.
async fn fake_upstream() -> Result<SocketAddr> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = sock.local_addr()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.metadata.recursion_available = true;
            r.queries = q.queries.clone();
            if let Some(question) = q.queries.first() {
                r.add_answer(Record::from_rdata(question.name().clone(), 60, RData::A(A(UPSTREAM_ANSWER))));
            }
            if let Ok(bytes) = r.to_vec() {
                let _ = sock.send_to(&bytes, peer).await;
            }
        }
    });
    Ok(addr)
}

fn pod_ip(p: &Pod) -> Option<IpAddr> {
    let ready = p.status.as_ref()?.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    p.status.as_ref()?.pod_ip.as_deref()?.parse().ok().filter(|_| ready)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_dns_answers_services_pods_ptr_and_forwards_the_rest() -> Result<()> {
    let upstream = fake_upstream().await?;
    let extra_args =
        vec!["--dns-listen".to_string(), format!(":{DNS_PORT}"), "--dns-upstream".to_string(), upstream.to_string()];
    let mut cluster = Cluster::start(ClusterOptions { replicas: 3, extra_args, ..Default::default() }).await?;
    cluster.start_agent("hollow", &[])?;
    let dns = SocketAddr::new(cluster.replicas[0].ip, DNS_PORT);
    let c = cluster.kube_client(0).await?;
    let services: Api<Service> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");

    let svc = |v: serde_json::Value| serde_json::from_value::<Service>(v).context("a Service");
    let web = services
        .create(
            &PostParams::default(),
            &svc(json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080},
                    {"name": "metrics", "port": 9090, "protocol": "UDP"}]},
            }))?,
        )
        .await?;
    let web_ip: IpAddr = web.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).context("no cluster IP")?.parse()?;
    services
        .create(
            &PostParams::default(),
            &svc(json!({
                "metadata": {"name": "db"},
                "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]},
            }))?,
        )
        .await?;
    let pod = |name: &str, app: &str, extra: serde_json::Value| {
        let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value::<Pod>(json!({"metadata": {"name": name, "labels": {"app": app}}, "spec": spec}))
    };
    pods.create(&PostParams::default(), &pod("web-1", "web", json!({}))?).await?;
    pods.create(&PostParams::default(), &pod("db-0", "db", json!({"hostname": "db-0", "subdomain": "db"}))?).await?;
    pods.create(&PostParams::default(), &pod("db-1", "db", json!({}))?).await?;
    let mut ips = Vec::new();
    for name in ["web-1", "db-0", "db-1"] {
        let ip = wait_for(&format!("pod {name} ready with an IP"), Duration::from_secs(60), || async {
            pods.get(name).await.ok().as_ref().and_then(pod_ip)
        })
        .await?;
        ips.push(ip);
    }
    let (web1_ip, db0_ip, db1_ip) = (ips[0], ips[1], ips[2]);

    // A → the cluster IP, over UDP and TCP; the case of the question is kept.
    let m = wait_for("web in DNS", Duration::from_secs(20), || async {
        udp(dns, "web.default.svc.cluster.local.", RecordType::A).await.ok().filter(|m| !m.answers.is_empty())
    })
    .await?;
    ensure!(m.metadata.authoritative && m.metadata.response_code == ResponseCode::NoError, "{m:?}");
    ensure!(addresses(&m) == [web_ip], "web: {:?} != {web_ip}", addresses(&m));
    ensure!(m.answers[0].ttl <= 5, "TTL {}", m.answers[0].ttl);
    let m = tcp(dns, "WEB.default.svc.Cluster.Local.", RecordType::A).await?;
    ensure!(addresses(&m) == [web_ip], "over TCP: {m:?}");
    ensure!(m.answers[0].name.to_ascii() == "WEB.default.svc.Cluster.Local.", "{:?}", m.answers[0].name);

    // AAAA of a v4-only name: NODATA (NOERROR, no answer, SOA in authority).
    let m = udp(dns, "web.default.svc.cluster.local.", RecordType::AAAA).await?;
    ensure!(m.metadata.response_code == ResponseCode::NoError && m.answers.is_empty(), "{m:?}");
    ensure!(has_soa(&m.authorities), "no SOA in a NODATA answer: {m:?}");

    // Unknown names inside the domain: NXDOMAIN with the SOA.
    let m = udp(dns, "nope.default.svc.cluster.local.", RecordType::A).await?;
    ensure!(m.metadata.response_code == ResponseCode::NXDomain && has_soa(&m.authorities), "{m:?}");

    // SRV of named ports, with the target's address as an additional record.
    let m = udp(dns, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV).await?;
    ensure!(srv_targets(&m) == [(80, "web.default.svc.cluster.local.".to_string())], "{m:?}");
    let extra: Vec<&Record> = m.additionals.iter().filter(|r| matches!(r.data, RData::A(_))).collect();
    ensure!(extra.len() == 1 && extra[0].data == RData::A(A(web_ip.to_string().parse()?)), "{m:?}");
    let m = tcp(dns, "_metrics._udp.web.default.svc.cluster.local.", RecordType::SRV).await?;
    ensure!(srv_targets(&m) == [(9090, "web.default.svc.cluster.local.".to_string())], "{m:?}");

    // Headless: every ready endpoint; SRV per endpoint, named by hostname or dashed IP.
    let mut want = vec![db0_ip, db1_ip];
    want.sort();
    let m = wait_for("both db endpoints in DNS", Duration::from_secs(20), || async {
        udp(dns, "db.default.svc.cluster.local.", RecordType::A).await.ok().filter(|m| addresses(m) == want)
    })
    .await?;
    ensure!(m.metadata.authoritative, "{m:?}");
    let m = udp(dns, "db-0.db.default.svc.cluster.local.", RecordType::A).await?;
    ensure!(addresses(&m) == [db0_ip], "db-0: {m:?}");
    let dashed = |ip: IpAddr| ip.to_string().replace('.', "-");
    let m = udp(dns, "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV).await?;
    let mut want_srv = vec![
        (5432, "db-0.db.default.svc.cluster.local.".to_string()),
        (5432, format!("{}.db.default.svc.cluster.local.", dashed(db1_ip))),
    ];
    want_srv.sort();
    ensure!(srv_targets(&m) == want_srv, "{m:?}");
    ensure!(m.additionals.iter().filter(|r| matches!(r.data, RData::A(_))).count() == 2, "{m:?}");

    // Pods by dashed IP. (The waits above were for Services and Endpoints; the pod's own
    // record comes from the pod watch, which may be a moment behind them.)
    let pod_name = format!("{}.default.pod.cluster.local.", dashed(web1_ip));
    let m = wait_for("web-1's pod record", Duration::from_secs(5), || async {
        udp(dns, &pod_name, RecordType::A).await.ok().filter(|m| addresses(m) == [web1_ip])
    })
    .await;
    ensure!(m.is_ok(), "pod A: {:?}", udp(dns, &pod_name, RecordType::A).await);

    // PTR: the cluster IP names the Service; a headless endpoint names itself.
    let rev = |ip: IpAddr| {
        let o: Vec<String> = ip.to_string().split('.').rev().map(str::to_string).collect();
        format!("{}.in-addr.arpa.", o.join("."))
    };
    let ptr = |m: &Message| -> Vec<String> {
        m.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.to_ascii()),
                _ => None,
            })
            .collect()
    };
    let m = udp(dns, &rev(web_ip), RecordType::PTR).await?;
    ensure!(ptr(&m) == ["web.default.svc.cluster.local."], "PTR of the cluster IP: {m:?}");
    let m = tcp(dns, &rev(db0_ip), RecordType::PTR).await?;
    ensure!(ptr(&m) == ["db-0.db.default.svc.cluster.local."], "PTR of an endpoint: {m:?}");

    // Other names go to the upstream nameserver.
    let m = udp(dns, "example.test.", RecordType::A).await?;
    ensure!(addresses(&m) == [IpAddr::V4(UPSTREAM_ANSWER)] && !m.metadata.authoritative, "forwarded: {m:?}");

    // Every replica answers (followers from their own copy of the store).
    for (i, r) in cluster.replicas.iter().enumerate().skip(1) {
        let at = SocketAddr::new(r.ip, DNS_PORT);
        wait_for(&format!("replica {i} answering for web"), Duration::from_secs(20), || async {
            udp(at, "web.default.svc.cluster.local.", RecordType::A).await.ok().filter(|m| addresses(m) == [web_ip])
        })
        .await?;
    }

    // An independent client, when installed (Debian package dnsutils).
    if let Some(out) = dig(dns, &["web.default.svc.cluster.local", "A", "+short"]).await {
        ensure!(out.trim() == web_ip.to_string(), "dig: {out}");
        let out =
            dig(dns, &["_pg._tcp.db.default.svc.cluster.local", "SRV", "+short", "+tcp"]).await.unwrap_or_default();
        ensure!(out.lines().count() == 2 && out.contains("db-0.db.default.svc.cluster.local."), "dig +tcp: {out}");
        let out = dig(dns, &["nope.default.svc.cluster.local", "A"]).await.unwrap_or_default();
        ensure!(out.contains("status: NXDOMAIN"), "dig: {out}");
    } else {
        eprintln!("dig is not installed (Debian package dnsutils): skipping the checks with an independent client");
    }

    // Malformed packets: no answer or FORMERR, and the server goes on answering.
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 3],
        vec![0x12, 0x34, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        // A name whose compression pointer points at itself.
        vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1],
        (0..600u32).map(|i| (i * 7919 % 251) as u8).collect(),
    ];
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    for g in &garbage {
        sock.send_to(g, dns).await?;
    }
    let mut buf = vec![0u8; 4096];
    // The self-referencing name is answered FORMERR (the others may be dropped).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let formerr = loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .context("no FORMERR for the looping name")??;
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.id == 0xabcd
        {
            break m;
        }
    };
    ensure!(formerr.metadata.response_code == ResponseCode::FormErr, "{formerr:?}");
    // Over TCP: a length prefix promising more than is sent, then hanging up.
    let mut s = TcpStream::connect(dns).await?;
    s.write_all(&[0x01, 0x00, 0xde, 0xad]).await?;
    drop(s);
    let m = tcp(dns, "web.default.svc.cluster.local.", RecordType::A).await?;
    ensure!(addresses(&m) == [web_ip], "after garbage (TCP): {m:?}");
    let m = udp(dns, "web.default.svc.cluster.local.", RecordType::A).await?;
    ensure!(addresses(&m) == [web_ip], "after garbage (UDP): {m:?}");

    // A deleted Service disappears from every replica.
    services.delete("web", &DeleteParams::default()).await?;
    for (i, r) in cluster.replicas.iter().enumerate() {
        let at = SocketAddr::new(r.ip, DNS_PORT);
        wait_for(&format!("web gone from replica {i}"), Duration::from_secs(20), || async {
            let m = udp(at, "web.default.svc.cluster.local.", RecordType::A).await.ok()?;
            (m.metadata.response_code == ResponseCode::NXDomain).then_some(())
        })
        .await?;
    }
    let running = cluster.running();
    ensure!(running.len() == 3, "a replica died: {running:?}\n{}", cluster.logs());
    Ok(())
}

/// Runs `dig @server -p port ARGS`; `None` when dig is not installed.
async fn dig(server: SocketAddr, args: &[&str]) -> Option<String> {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=2", "+tries=2"])
        .args(args)
        .output()
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
