//! The Service data path end to end: real `rk-server` and `rk-agent` processes, HTTP
//! from this host to cluster IPs and node ports.
//!
//! - docker runtime, nftables mode: a cluster IP and a node port reach every replica;
//!   a pod deleted mid-traffic stops getting new connections within 1 s and no
//!   request fails after that; ClientIP affinity; odd Services and Endpoints do not
//!   upset the agent; a cleanly stopped agent removes its table.
//! - process runtime, userspace mode: node ports on both nodes and the cluster IP
//!   reach both pods; Ingress routes by host (and answers 503 for a backend without
//!   endpoints); the same deletion check.
//!
//! Each test gives its control plane a service range of its own (from the test
//! process id), so clusters of tests running side by side never share cluster IPs on
//! this host's netfilter.

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use rk_tests::{Cluster, ClusterOptions, wait_for};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn from_json<T: for<'de> k8s_openapi::serde::Deserialize<'de>>(v: Value) -> Result<T> {
    Ok(serde_json::from_value(v)?)
}

/// A one-replica control plane whose Services get cluster IPs from a /24 of their
/// own: `10.(128 + pid / 256 % 64).(pid % 256).0/24`, unique among test processes
/// running at once.
async fn cluster() -> Result<Cluster> {
    // Say what is missing rather than fail later on an unreachable cluster IP.
    ensure!(
        std::process::Command::new("nft").args(["list", "tables"]).output().is_ok_and(|o| o.status.success()),
        "these tests need the nft program (package nftables) and root (CAP_NET_ADMIN), as rk-agent's proxy does"
    );
    let pid = std::process::id();
    let range = format!("10.{}.{}.0/24", 128 + (pid / 256) % 64, pid % 256);
    Cluster::start(ClusterOptions {
        replicas: 1,
        extra_args: vec!["--service-cluster-ip-range".into(), range],
        ..Default::default()
    })
    .await
}

/// GET / over HTTP/1.0 on a new connection; the body, trimmed.
async fn http_get(addr: &str) -> Result<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .context("connect timed out")??;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await.context("read timed out")??;
    let text = String::from_utf8_lossy(&out).to_string();
    ensure!(text.starts_with("HTTP/1.") && text.contains(" 200 "), "not a 200: {text:?}");
    Ok(text.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string())
}

/// GET / with `Host: host`; the status code and the trimmed body.
async fn http_request(addr: &str, host: &str) -> Result<(u16, String)> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .context("connect timed out")??;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await.context("read timed out")??;
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).context("no status line")?;
    Ok((code, text.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string()))
}

/// Makes Service `web` (port 80) a LoadBalancer: its status must list every node's
/// address (what `kubectl get svc` shows as EXTERNAL-IP), and its own port must
/// answer there, from every pod in `names`.
async fn becomes_a_load_balancer(services: &Api<Service>, cluster: &Cluster, names: &BTreeSet<String>) -> Result<()> {
    let lb = json!({"spec": {"type": "LoadBalancer"}});
    services.patch("web", &PatchParams::default(), &Patch::Merge(&lb)).await?;
    let mut want_ips: Vec<String> = cluster.agents.iter().map(|a| a.ip.to_string()).collect();
    want_ips.sort();
    wait_for("the LoadBalancer's addresses in its status", Duration::from_secs(20), || async {
        let svc = services.get("web").await.ok()?;
        let got: Vec<String> = svc.status?.load_balancer?.ingress?.into_iter().filter_map(|i| i.ip).collect();
        (got == want_ips).then_some(())
    })
    .await?;
    for agent in &cluster.agents {
        wait_all_answer(&format!("{}:80", agent.ip), names).await?;
    }
    Ok(())
}

/// One HTTPS request with SNI `sni`, trusting only `cert`: (status, body).
async fn https_request(
    addr: &str,
    sni: &'static str,
    cert: rustls::pki_types::CertificateDer<'static>,
) -> Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .context("connect timed out")??;
    let name = rustls::pki_types::ServerName::try_from(sni)?;
    let mut s = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp),
    )
    .await
    .context("handshake timed out")?
    .context("TLS handshake")?;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = Vec::new();
    // The server may end without close_notify after Connection: close; what was read counts.
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let code =
        text.split(' ').nth(1).and_then(|c| c.parse().ok()).with_context(|| format!("no status line: {text:?}"))?;
    Ok((code, text.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string()))
}

/// Sends requests to `addr` until every name in `want` has answered.
async fn wait_all_answer(addr: &str, want: &BTreeSet<String>) -> Result<()> {
    let seen = parking_lot::Mutex::new(BTreeSet::new());
    let requests = parking_lot::Mutex::new(0u32);
    wait_for(&format!("every one of {want:?} answering on {addr}"), Duration::from_secs(30), || async {
        *requests.lock() += 1;
        if let Ok(body) = http_get(addr).await {
            seen.lock().insert(body);
        }
        (seen.lock().is_superset(want)).then_some(())
    })
    .await
    .with_context(|| format!("answered so far: {:?}", seen.lock()))?;
    let seen = seen.into_inner();
    ensure!(seen == *want, "{addr} was answered by something else too: {seen:?}");
    eprintln!("{addr}: all {} endpoints answered within {} requests", want.len(), requests.into_inner());
    Ok(())
}

/// Ready endpoint IPs of Service `name`.
async fn ready_ips(endpoints: &Api<Endpoints>, name: &str) -> Option<BTreeSet<String>> {
    let e = endpoints.get(name).await.ok()?;
    Some(
        e.subsets.unwrap_or_default().into_iter().flat_map(|s| s.addresses.unwrap_or_default()).map(|a| a.ip).collect(),
    )
}

/// Names of the ready pods labelled app=web, by pod IP.
async fn ready_web_pods(pods: &Api<Pod>) -> Result<BTreeMap<String, String>> {
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| Some((p.status?.pod_ip?, p.metadata.name?)))
        .collect())
}

/// One request of [`Traffic`]: when it started and who answered (or the error).
type Sample = (Instant, Result<String, String>);

/// Requests to one address, one after another (a new connection each), until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    /// Requests answered so far.
    ok: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Traffic {
    /// Starts sending and returns once 10 requests were answered.
    async fn start(addr: String) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let (flag, answered) = (stop.clone(), ok.clone());
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            // Paces the load (about 50 connections a second), so two cores shared with
            // the cluster keep up; it does not wait for any state.
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                let at = Instant::now();
                let r = http_get(&addr).await.map_err(|e| e.to_string());
                if r.is_ok() {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                samples.push((at, r));
            }
            samples
        });
        let traffic = Self { stop, ok, task };
        wait_for("traffic flowing", Duration::from_secs(10), || async {
            (traffic.ok.load(Ordering::Relaxed) >= 10).then_some(())
        })
        .await?;
        Ok(traffic)
    }

    async fn finish(self) -> Result<Vec<Sample>> {
        self.stop.store(true, Ordering::Relaxed);
        Ok(self.task.await?)
    }
}

/// Checks the traffic around deleting pod `gone` at `deleted`: after 1 s, no request
/// failed and none reached `gone`.
fn check_deletion(samples: &[Sample], deleted: Instant, gone: &str) -> Result<()> {
    let settle = deleted + Duration::from_secs(1);
    let before = samples.iter().filter(|(at, _)| *at < deleted).count();
    let after: Vec<&Sample> = samples.iter().filter(|(at, _)| *at >= settle).collect();
    let early_failures = samples.iter().filter(|(at, r)| *at >= deleted && *at < settle && r.is_err()).count();
    let failed: Vec<String> = after
        .iter()
        .filter_map(|(at, r)| r.as_ref().err().map(|e| format!("+{:?}: {e}", at.duration_since(deleted))))
        .collect();
    let to_gone = after.iter().filter(|(_, r)| r.as_deref() == Ok(gone)).count();
    let last_from_gone = samples
        .iter()
        .filter(|(at, r)| *at >= deleted && r.as_deref() == Ok(gone))
        .map(|(at, _)| at.duration_since(deleted))
        .max();
    eprintln!(
        "deletion of {gone}: {before} requests before, {early_failures} failed in the first second, {} after 1 s \
         ({} failed, {to_gone} answered by {gone}); last connection to {gone} started at +{last_from_gone:?}",
        after.len(),
        failed.len()
    );
    ensure!(after.len() >= 20, "too few requests after the deletion to judge: {}", after.len());
    ensure!(failed.is_empty(), "requests failed more than 1 s after the pod was deleted: {failed:?}");
    ensure!(to_gone == 0, "{to_gone} new connections reached the deleted pod {gone} more than 1 s after deletion");
    Ok(())
}

fn nft_table(table: &str) -> Option<String> {
    let out = std::process::Command::new("nft").args(["list", "table", "ip", table]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// Docker runtime, nftables mode: cluster IP and node port reach every replica; a pod
/// deleted mid-traffic; ClientIP affinity; odd objects; cleanup on a clean stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_nftables_cluster_ip_node_port_deletion_affinity() -> Result<()> {
    let image = tokio::task::spawn_blocking(rk_tests::images::ensure_busybox_image).await??;
    let mut cluster = cluster().await?;
    let k = cluster.start_agent("docker", &[])?;
    let c = cluster.kube_client(0).await?;
    rk_tests::wait_nodes_ready(&Api::all(c.clone()), 1).await?;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let services: Api<Service> = Api::namespaced(c.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(c.clone(), "default");
    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(c.clone(), "default");
    let deploy = json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    // httpd is PID 1 and ignores SIGTERM: a deleted pod keeps serving
                    // for its grace period, as a real server draining would.
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "httpd", "image": image, "imagePullPolicy": "Never",
                        "command": ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                    }],
                },
            },
        },
    });
    deploys.create(&PostParams::default(), &from_json(deploy)?).await?;
    let svc = json!({
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    });
    let svc = services.create(&PostParams::default(), &from_json(svc)?).await?;
    let spec = svc.spec.context("service without spec")?;
    let cluster_ip = spec.cluster_ip.context("no cluster IP")?;
    let node_port = spec.ports.as_ref().and_then(|p| p.first()?.node_port).context("no node port")?;

    // Odd objects the proxy must survive: a selector-less Service whose hand-written
    // Endpoints have a subset without ports and an address without an IP's port, and
    // an SCTP port (not proxied).
    let odd = json!({"metadata": {"name": "odd"}, "spec": {"ports": [
        {"name": "a", "port": 81}, {"name": "b", "port": 82, "protocol": "SCTP"}]}});
    services.create(&PostParams::default(), &from_json(odd)?).await?;
    let odd_eps = json!({"metadata": {"name": "odd"}, "subsets": [
        {"addresses": [{"ip": "198.51.100.7"}]},
        {"addresses": [{"ip": "198.51.100.8"}], "ports": [{"name": "zz", "port": 9}]}]});
    if let Err(e) = endpoints.create(&PostParams::default(), &from_json(odd_eps)?).await {
        eprintln!("the API refused the odd Endpoints (fine, the odd Service remains): {e}");
    }

    let by_ip = wait_for("3 ready endpoints", Duration::from_secs(90), || async {
        let pods_by_ip = ready_web_pods(&pods).await.ok()?;
        let ips = ready_ips(&endpoints, "web").await?;
        (ips.len() == 3 && pods_by_ip.len() == 3 && ips.iter().all(|ip| pods_by_ip.contains_key(ip)))
            .then_some(pods_by_ip)
    })
    .await?;
    let names: BTreeSet<String> = by_ip.values().cloned().collect();
    let table = cluster.agents[k].proxy_table();
    let node_ip = cluster.agents[k].ip;

    // Cluster IP and node port, from this host: every replica answers.
    let vip = format!("{cluster_ip}:80");
    wait_all_answer(&vip, &names).await?;

    becomes_a_load_balancer(&services, &cluster, &names).await?;
    wait_all_answer(&format!("{node_ip}:{node_port}"), &names).await?;
    let rules = nft_table(&table).with_context(|| format!("no nft table {table}"))?;
    ensure!(rules.contains("numgen random mod 3"), "{rules}");
    ensure!(rules.contains(&format!("ip daddr {cluster_ip} tcp dport 80")), "{rules}");
    // The odd Service has no usable endpoints: its port 81 is rejected, not routed.
    let odd_ip = services.get("odd").await?.spec.and_then(|s| s.cluster_ip).context("odd has no cluster IP")?;
    ensure!(rules.contains(&format!("{odd_ip} . tcp . 81")), "{rules}");
    let refused = tokio::net::TcpStream::connect(format!("{odd_ip}:81")).await;
    ensure!(refused.is_err(), "a port without endpoints accepted a connection");

    // From inside a pod: the cluster IP reaches other pods and, through the hairpin
    // path (masquerade + the bridge port's hairpin mode), the pod itself.
    let me = names.iter().next().context("no pod")?.clone();
    let container = {
        let out = std::process::Command::new("docker")
            .args(["ps", "-q", "--filter", &format!("name=rk_httpd_{me}_")])
            .output()?;
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    ensure!(!container.is_empty() && !container.contains('\n'), "container of {me}: {container:?}");
    let from_pod = parking_lot::Mutex::new(BTreeSet::new());
    wait_for(&format!("{me} reaching itself and another pod via {vip}"), Duration::from_secs(30), || async {
        let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {cluster_ip} 80");
        let out = tokio::process::Command::new("docker")
            .args(["exec", &container, "sh", "-c", &script])
            .output()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(body) = text.split("\r\n\r\n").nth(1) {
            from_pod.lock().insert(body.trim().to_string());
        }
        let seen = from_pod.lock();
        (seen.contains(&me) && seen.len() >= 2).then_some(())
    })
    .await
    .with_context(|| format!("seen from {me}: {:?}", from_pod.lock()))?;

    // Delete one pod while traffic flows through the cluster IP.
    let traffic = Traffic::start(vip.clone()).await?;
    let gone = names.iter().next().context("no pod")?.clone();
    let deleted = Instant::now();
    pods.delete(&gone, &DeleteParams::default()).await?;
    wait_for("the replacement ready and 3 s of traffic", Duration::from_secs(60), || async {
        let pods_by_ip = ready_web_pods(&pods).await.ok()?;
        let ips = ready_ips(&endpoints, "web").await?;
        let replaced = ips.len() == 3 && !pods_by_ip.values().any(|n| *n == gone);
        (replaced && deleted.elapsed() > Duration::from_secs(3)).then_some(())
    })
    .await?;
    check_deletion(&traffic.finish().await?, deleted, &gone)?;

    // ClientIP affinity: once the rules have it, this host always gets one pod.
    let patch = json!({"spec": {"sessionAffinity": "ClientIP"}});
    services.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    wait_for("session affinity in the rules", Duration::from_secs(10), || async {
        nft_table(&table)?.contains("update @aff_").then_some(())
    })
    .await?;
    let mut answers = BTreeSet::new();
    for _ in 0..30 {
        answers.insert(http_get(&vip).await?);
    }
    ensure!(answers.len() == 1, "with ClientIP affinity one client reached several pods: {answers:?}");

    // A killed agent leaves its rules: Services keep working while it is down; a
    // restarted agent replaces the table in one transaction and keeps them working.
    ensure!(cluster.agents[k].is_running(), "the agent died:\n{}", cluster.agents[k].log());
    cluster.agents[k].kill();
    ensure!(nft_table(&table).is_some(), "the table went away with a killed agent");
    http_get(&vip).await.context("the cluster IP while the agent is down")?;
    cluster.restart_agent(k)?;
    wait_for("the restarted agent's table", Duration::from_secs(30), || async {
        // The log is appended to across restarts: a second start, then a table built.
        let log = cluster.agents[k].log();
        let started = log.rfind("service proxy started")?;
        let restarted = log.matches("service proxy started").count() >= 2;
        (restarted && log.rfind("nft table built")? > started).then_some(())
    })
    .await?;
    for _ in 0..10 {
        http_get(&vip).await.context("the cluster IP after the agent restarted")?;
    }

    // A clean stop removes the table.
    let pid = cluster.agents[k].pid().context("agent pid")?;
    let pid = i32::try_from(pid).context("pid")?;
    // A positive pid: this one process, never a group.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM)?;
    let agent = &mut cluster.agents[k];
    wait_for("the agent to exit", Duration::from_secs(20), || {
        let exited = !agent.is_running();
        async move { exited.then_some(()) }
    })
    .await?;
    ensure!(nft_table(&table).is_none(), "the table {table} is still there after a clean stop");
    Ok(())
}

/// A process-runtime pod on `node` serving its name over HTTP on its IP, port 8080,
/// with busybox at `bb`.
fn pod_spec(node: &str, bb: &str) -> Value {
    json!({
        "nodeName": node,
        "terminationGracePeriodSeconds": 2,
        "containers": [{
            "name": "httpd", "image": "busybox",
            "command": [bb, "sh", "-c", format!(
                "mkdir -p $RK_ROOT/www && echo $POD_NAME > $RK_ROOT/www/index.html && \
                 exec {bb} httpd -f -p $POD_IP:8080 -h $RK_ROOT/www")],
            "env": [
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
        }],
    })
}

/// Addresses added to `lo` for the life of a test, removed on drop.
struct LoopbackAddrs(Vec<String>);

impl LoopbackAddrs {
    fn add(addrs: &[String]) -> Result<Self> {
        let mut added = Self(Vec::new());
        for a in addrs {
            let ok =
                std::process::Command::new("ip").args(["addr", "add", &format!("{a}/32"), "dev", "lo"]).status()?;
            ensure!(ok.success(), "ip addr add {a}/32 dev lo failed");
            added.0.push(a.clone());
        }
        Ok(added)
    }
}

impl Drop for LoopbackAddrs {
    fn drop(&mut self) {
        for a in &self.0 {
            let _ = std::process::Command::new("ip").args(["addr", "del", &format!("{a}/32"), "dev", "lo"]).status();
        }
    }
}

/// Process runtime, userspace mode: two nodes each run one pod on their own node IP;
/// node ports on both nodes and the cluster IP reach both; deleting one pod.
///
/// Process pods have their node's IP, and the API refuses loopback endpoint addresses
/// (as Kubernetes does), so the two nodes get non-loopback addresses of their own on
/// `lo`: `10.(192 + pid / 256 % 64).(pid % 256).{1,2}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_userspace_node_ports_cluster_ip_deletion() -> Result<()> {
    let busybox = tokio::task::spawn_blocking(rk_tests::images::busybox_binary).await??;
    let bb = busybox.display().to_string();
    let pid = std::process::id();
    let ips: Vec<String> = (1..=2).map(|i| format!("10.{}.{}.{i}", 192 + (pid / 256) % 64, pid % 256)).collect();
    let _addrs = LoopbackAddrs::add(&ips)?;
    let mut cluster = cluster().await?;
    let ingress_addr = format!("{}:8088", ips[0]);
    let ingress_tls_addr = format!("{}:8443", ips[0]);
    cluster.start_agent(
        "process",
        &["--node-ip", &ips[0], "--ingress-listen", &ingress_addr, "--ingress-tls-listen", &ingress_tls_addr],
    )?;
    cluster.start_agent("process", &["--node-ip", &ips[1]])?;
    let c = cluster.kube_client(0).await?;
    rk_tests::wait_nodes_ready(&Api::all(c.clone()), 2).await?;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let services: Api<Service> = Api::namespaced(c.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(c.clone(), "default");
    for i in 0..2 {
        let pod = json!({
            "metadata": {"name": format!("web-{i}"), "labels": {"app": "web", "idx": i.to_string()}},
            "spec": pod_spec(&cluster.agents[i].name, &bb),
        });
        pods.create(&PostParams::default(), &from_json(pod)?).await?;
    }
    let svc = json!({
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    });
    let svc = services.create(&PostParams::default(), &from_json(svc)?).await?;
    let spec = svc.spec.context("service without spec")?;
    let cluster_ip = spec.cluster_ip.context("no cluster IP")?;
    let node_port = spec.ports.as_ref().and_then(|p| p.first()?.node_port).context("no node port")?;
    wait_for("2 ready endpoints", Duration::from_secs(60), || async {
        (ready_ips(&endpoints, "web").await?.len() == 2).then_some(())
    })
    .await?;
    let names: BTreeSet<String> = ["web-0".to_string(), "web-1".to_string()].into();
    for agent in &cluster.agents {
        wait_all_answer(&format!("{}:{node_port}", agent.ip), &names).await?;
    }
    let vip = format!("{cluster_ip}:80");
    wait_all_answer(&vip, &names).await?;

    becomes_a_load_balancer(&services, &cluster, &names).await?;

    // Ingress on node 0: host one.test → Service "one" (web-0 only), host
    // empty.test → a Service without endpoints (503), anything else → "web".
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> = Api::namespaced(c.clone(), "default");
    for (name, selector) in [("one", json!({"app": "web", "idx": "0"})), ("empty", json!({"app": "none"}))] {
        let svc = json!({"metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
        services.create(&PostParams::default(), &from_json(svc)?).await?;
    }
    let backend = |svc: &str| json!({"service": {"name": svc, "port": {"number": 80}}});
    let ing = json!({"metadata": {"name": "web"}, "spec": {"rules": [
        {"host": "one.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("one")}]}},
        {"host": "empty.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("empty")}]}},
        {"host": "missing.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("nosuch")}]}},
        {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("web")}]}},
    ]}});
    ingresses.create(&PostParams::default(), &from_json(ing)?).await?;
    // Only node 0 serves Ingress: its address is the Ingress's.
    wait_for("the Ingress's address in its status", Duration::from_secs(20), || async {
        let ing = ingresses.get("web").await.ok()?;
        let got: Vec<String> = ing.status?.load_balancer?.ingress?.into_iter().filter_map(|i| i.ip).collect();
        (got == [ips[0].clone()]).then_some(())
    })
    .await?;
    wait_for("Service one's endpoint", Duration::from_secs(30), || async {
        (ready_ips(&endpoints, "one").await?.len() == 1).then_some(())
    })
    .await?;
    let by_host = |host: &'static str| {
        let addr = ingress_addr.clone();
        async move { http_request(&addr, host).await }
    };
    wait_for("the ingress routing one.test", Duration::from_secs(30), || async {
        (by_host("one.test").await.ok()?.1 == "web-0").then_some(())
    })
    .await?;
    for _ in 0..6 {
        let (code, body) = by_host("one.test").await?;
        ensure!(code == 200 && body == "web-0", "one.test answered {code} {body:?}");
    }
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        let (code, body) = by_host("www.test").await?;
        ensure!(code == 200, "www.test answered {code} {body:?}");
        seen.insert(body);
    }
    ensure!(seen == names, "the catch-all rule reached {seen:?}");
    let (code, body) = by_host("empty.test").await?;
    ensure!(code == 503, "a backend without endpoints answered {code} {body:?}");
    // A backend Service that does not exist: 503, and a Warning event on the Ingress.
    let (code, body) = by_host("missing.test").await?;
    ensure!(code == 503, "a missing backend Service answered {code} {body:?}");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(c.clone(), "default");
    wait_for("a ServiceNotFound event on the Ingress", Duration::from_secs(20), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("ServiceNotFound")
                    && e.involved_object.kind.as_deref() == Some("Ingress")
                    && e.involved_object.name.as_deref() == Some("web")
                    && e.message.as_deref().is_some_and(|m| m.contains("default/nosuch:80"))
            })
            .map(|_| ())
    })
    .await?;

    // Ingress over TLS: a kubernetes.io/tls Secret per host, picked by SNI; the node
    // reads the Secrets because the Ingress names them (node authorization).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.clone(), "default");
    let mut certs = Vec::new();
    for (name, host) in [("one-tls", "one.test"), ("wild-tls", "*.wild.test")] {
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec![host.to_string()])?.self_signed(&key)?;
        let secret = json!({"metadata": {"name": name}, "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": cert.pem(), "tls.key": key.serialize_pem()}});
        secrets.create(&PostParams::default(), &from_json(secret)?).await?;
        certs.push(cert.der().clone());
    }
    let tls = json!({"spec": {"tls": [
        {"hosts": ["one.test"], "secretName": "one-tls"},
        {"hosts": ["*.wild.test"], "secretName": "wild-tls"},
    ]}});
    ingresses.patch("web", &PatchParams::default(), &Patch::Merge(&tls)).await?;
    let over_tls = |sni: &'static str, cert: rustls::pki_types::CertificateDer<'static>| {
        let addr = ingress_tls_addr.clone();
        async move { https_request(&addr, sni, cert).await }
    };
    wait_for("the ingress serving one.test over TLS", Duration::from_secs(30), || async {
        (over_tls("one.test", certs[0].clone()).await.ok()?.1 == "web-0").then_some(())
    })
    .await?;
    // The wildcard's certificate for a name under it, and the catch-all rule behind it.
    let (code, body) = over_tls("www.wild.test", certs[1].clone()).await?;
    ensure!(code == 200 && names.contains(&body), "www.wild.test over TLS answered {code} {body:?}");
    // A name no certificate covers: the handshake fails.
    let err = over_tls("nothing.test", certs[0].clone()).await.expect_err("no certificate for nothing.test");
    ensure!(format!("{err:#}").contains("handshake"), "{err:#}");

    let traffic = Traffic::start(vip.clone()).await?;
    let deleted = Instant::now();
    pods.delete("web-1", &DeleteParams::default()).await?;
    wait_for("web-1 out of the endpoints and 3 s of traffic", Duration::from_secs(30), || async {
        let ips = ready_ips(&endpoints, "web").await?;
        (ips.len() == 1 && deleted.elapsed() > Duration::from_secs(3)).then_some(())
    })
    .await?;
    check_deletion(&traffic.finish().await?, deleted, "web-1")?;

    // ClientIP affinity in userspace mode: a node port keeps sending this host to one
    // pod (web-0 is the only one left, so first bring web-1 back).
    let web1 = json!({"metadata": {"name": "web-1b", "labels": {"app": "web"}}, "spec": pod_spec(&cluster.agents[1].name, &bb)});
    pods.create(&PostParams::default(), &from_json(web1)?).await?;
    wait_for("2 ready endpoints again", Duration::from_secs(30), || async {
        (ready_ips(&endpoints, "web").await?.len() == 2).then_some(())
    })
    .await?;
    let node_port_addr = format!("{}:{node_port}", cluster.agents[0].ip);
    wait_all_answer(&node_port_addr, &["web-0".to_string(), "web-1b".to_string()].into()).await?;
    let patch = json!({"spec": {"sessionAffinity": "ClientIP"}});
    services.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    wait_for("affinity: 10 answers in a row from one pod", Duration::from_secs(15), || async {
        let mut seen = BTreeSet::new();
        for _ in 0..10 {
            seen.insert(http_get(&node_port_addr).await.ok()?);
        }
        (seen.len() == 1).then_some(())
    })
    .await?;
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.insert(http_get(&node_port_addr).await?);
    }
    ensure!(seen.len() == 1, "with ClientIP affinity this host reached {seen:?}");

    // UDP: an echo pod (python3 on the host, as the process runtime runs it) behind a
    // UDP Service, reached through its node port and its cluster IP.
    let echo = json!({"metadata": {"name": "echo", "labels": {"app": "echo"}}, "spec": {
        "nodeName": cluster.agents[0].name, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "echo", "image": "python", "command": ["python3", "-c",
            "import os, socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind((os.environ['POD_IP'], 9053))\n\
             while True:\n    d, a = s.recvfrom(2048)\n    s.sendto(b'echo:' + d, a)\n"],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}]}});
    pods.create(&PostParams::default(), &from_json(echo)?).await?;
    let udp = json!({"metadata": {"name": "echo"}, "spec": {"type": "NodePort", "selector": {"app": "echo"},
        "ports": [{"port": 53, "targetPort": 9053, "protocol": "UDP"}]}});
    let udp = services.create(&PostParams::default(), &from_json(udp)?).await?;
    let udp_spec = udp.spec.context("service without spec")?;
    let udp_ip = udp_spec.cluster_ip.context("no cluster IP")?;
    let udp_port = udp_spec.ports.as_ref().and_then(|p| p.first()?.node_port).context("no node port")?;
    for target in [format!("{}:{udp_port}", cluster.agents[1].ip), format!("{udp_ip}:53")] {
        let answer = wait_for(&format!("a UDP echo through {target}"), Duration::from_secs(30), || {
            let target = target.clone();
            async move {
                let s = tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok()?;
                s.send_to(b"ping", &target).await.ok()?;
                let mut buf = [0u8; 64];
                let n = tokio::time::timeout(Duration::from_millis(500), s.recv(&mut buf)).await.ok()?.ok()?;
                Some(String::from_utf8_lossy(&buf[..n]).to_string())
            }
        })
        .await?;
        ensure!(answer == "echo:ping", "{target} answered {answer:?}");
    }
    for (i, agent) in cluster.agents.iter_mut().enumerate() {
        ensure!(agent.is_running(), "agent {i} died:\n{}", agent.log());
    }
    Ok(())
}
