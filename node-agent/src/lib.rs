//! rk-agent: the node agent of rk (its kubelet).
//!
//! ```text
//!  API server ──pods bound here (list+watch)──► pods.rs (PodManager)
//!                                                 │ one worker per pod
//!                                                 ▼
//!                                              worker.rs ──► runtime/ (docker | process | hollow)
//!                                                 │  spec.rs (env, volumes)   probe.rs
//!                                                 └──► pod status, events
//!  node.rs: Node registration, Lease heartbeat     server.rs: logs, exec, port-forward (portforward.rs), stats
//!  API server ──services, endpoints (list+watch)──► proxy/ (Service data path: nftables | userspace)
//! ```
//!
//! Start reading at [`run`], then `worker.rs`.

#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod join;
pub mod kubeconfig;
pub mod node;
pub mod pods;
pub mod portforward;
pub mod probe;
pub mod proxy;
pub mod runtime;
pub mod server;
pub mod spec;
pub mod worker;

use client::Client;
use config::{Config, RuntimeKind};
use parking_lot::Mutex;
use runtime::DnsConfig;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot start the {runtime} runtime: {source}")]
    Runtime {
        runtime: &'static str,
        #[source]
        source: runtime::RuntimeError,
    },
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the service proxy: {0}")]
    Proxy(#[source] proxy::ProxyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// The current time as Kubernetes writes it.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// MicroTime (Lease renewTime).
pub fn now_micro() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

type EventKey = (String, String, String);

/// Events the agent records about pods and Ingresses (aggregated like Kubernetes' recorder).
#[derive(Clone)]
pub struct Events {
    client: Client,
    node: String,
    /// (pod uid, reason, message) → the event recording it (namespace, name).
    seen: Arc<Mutex<HashMap<EventKey, (String, String)>>>,
}

impl Events {
    pub fn new(client: Client, node: String) -> Self {
        Self { client, node, seen: Arc::default() }
    }

    pub async fn normal(&self, pod: &Value, reason: &str, message: &str) {
        self.record(pod, ("v1", "Pod"), "kubelet", "Normal", reason, message).await;
    }

    pub async fn warning(&self, pod: &Value, reason: &str, message: &str) {
        self.record(pod, ("v1", "Pod"), "kubelet", "Warning", reason, message).await;
    }

    /// A Warning about `obj`, an object of `(apiVersion, kind)` (list items carry neither),
    /// from `component` (the events' `source.component`).
    pub async fn warning_on(&self, obj: &Value, of: (&str, &str), component: &str, reason: &str, message: &str) {
        self.record(obj, of, component, "Warning", reason, message).await;
    }

    async fn record(
        &self,
        obj: &Value,
        (api_version, object_kind): (&str, &str),
        component: &str,
        kind: &str,
        reason: &str,
        message: &str,
    ) {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
        let (ns, name, uid) = (s("/metadata/namespace"), s("/metadata/name"), s("/metadata/uid"));
        let now = now();
        let key = (uid.clone(), reason.to_string(), message.to_string());
        let known = self.seen.lock().get(&key).cloned();
        if let Some((ev_ns, ev_name)) = known
            && let Ok(ev) = self.client.get("events", Some(&ev_ns), &ev_name).await
        {
            let patch = json!({"count": ev["count"].as_i64().unwrap_or(1) + 1, "lastTimestamp": now});
            if self.client.patch_merge("events", Some(&ev_ns), &ev_name, &patch).await.is_ok() {
                return;
            }
        }
        let ev_name = format!("{name}.{:x}", rand::random::<u64>() >> 8);
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": ev_name, "namespace": ns},
            "involvedObject": {"apiVersion": api_version, "kind": object_kind, "name": name, "namespace": ns, "uid": uid},
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component, "host": self.node},
            "reportingComponent": component,
            "reportingInstance": self.node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        match self.client.create("events", Some(&ns), &event).await {
            Ok(_) => {
                let mut seen = self.seen.lock();
                if seen.len() > 2048 {
                    seen.clear();
                }
                seen.insert(key, (ns, ev_name));
            }
            Err(e) => tracing::debug!(error = %e, "could not record an event"),
        }
    }
}

/// What every worker of one node shares.
pub struct Ctx {
    pub client: Client,
    pub node: String,
    pub node_ip: String,
    pub data_dir: PathBuf,
    pub cluster_dns: Option<String>,
    pub cluster_domain: String,
    pub events: Events,
}

impl Ctx {
    /// resolv.conf settings of a pod in `namespace` (Kubernetes' ClusterFirst).
    pub fn dns_for(&self, namespace: &str) -> DnsConfig {
        let d = &self.cluster_domain;
        match &self.cluster_dns {
            Some(server) => DnsConfig {
                servers: vec![server.clone()],
                searches: vec![format!("{namespace}.svc.{d}"), format!("svc.{d}"), d.clone()],
                options: vec!["ndots:5".into()],
            },
            None => DnsConfig::default(),
        }
    }
}

fn docker_answers() -> bool {
    std::os::unix::net::UnixStream::connect("/var/run/docker.sock").is_ok()
}

/// The address this machine uses to reach the API server: a good default for
/// the node's InternalIP.
fn local_ip_towards(servers: &str) -> Option<String> {
    let server = client::parse_servers(servers).into_iter().next()?;
    let hostport = server.split("://").nth(1).unwrap_or(&server).split('/').next()?;
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport).ok()?.next()?;
    sock.connect(addr).ok()?;
    Some(sock.local_addr().ok()?.ip().to_string())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_else(|_| "node".into())
}

/// Runs the agent until `shutdown` completes. Pods keep running after it stops;
/// a restarted agent adopts them.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<(), AgentError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| AgentError::DataDir { path: config.data_dir.clone(), source })?;
    let kind = config.runtime.unwrap_or(if docker_answers() { RuntimeKind::Docker } else { RuntimeKind::Process });
    if config.count > 1 && kind != RuntimeKind::Hollow {
        return Err(AgentError::Config("--count above 1 needs --runtime hollow".into()));
    }
    let base_name = config.name.clone().unwrap_or_else(hostname);
    let credentials = match (&config.kubeconfig, &config.join) {
        (Some(path), _) => Some(kubeconfig::load(path).map_err(|e| AgentError::Config(e.to_string()))?),
        (None, Some(token)) => {
            let servers = config
                .server
                .as_deref()
                .ok_or_else(|| AgentError::Config("--join needs --server: the API server to join through".into()))?;
            let joined = join::credentials(token, servers, &base_name, &config.data_dir).await;
            Some(joined.map_err(|e| AgentError::Config(e.to_string()))?)
        }
        (None, None) => None,
    };
    let servers = match (&config.server, &credentials) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => c.server.clone(),
        (None, None) => String::new(),
    };
    let node_ip = config.node_ip.clone().or_else(|| local_ip_towards(&servers)).unwrap_or_else(|| "127.0.0.1".into());
    if client::parse_servers(&servers).is_empty() {
        return Err(AgentError::Config(
            "say where the API server is: --server https://10.0.0.1:2379 (several comma-separated), or \
             --kubeconfig FILE"
                .into(),
        ));
    }
    if credentials.is_none() && client::parse_servers(&servers).iter().any(|s| s.starts_with("https://")) {
        return Err(AgentError::Config(
            "an https:// API server needs the node's credentials: --kubeconfig FILE (`rk-server certs kubeconfig \
             --user system:node:<name> --group system:nodes` writes one)"
                .into(),
        ));
    }
    let mut labels = Vec::new();
    for l in &config.node_labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| AgentError::Config(format!("--node-labels entry {l:?} must be key=value")))?;
        labels.push((k.to_string(), v.to_string()));
    }
    let taints = config
        .register_with_taints
        .iter()
        .map(|t| config::parse_taint(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(AgentError::Config)?;
    let client = Client::new(&servers, &format!("rk-agent/{}", env!("CARGO_PKG_VERSION")), credentials.as_ref())
        .map_err(|e| AgentError::Config(e.to_string()))?;
    // Credentials a join got are the agent's to keep fresh (a --kubeconfig is its owner's).
    if config.kubeconfig.is_none()
        && config.join.is_some()
        && let Some(c) = &credentials
        && let Some(cert) = c.cert.clone()
    {
        let path = config.data_dir.join("kubeconfig");
        tokio::spawn(join::renew_loop(client.clone(), cert, path, c.server.clone(), base_name.clone()));
    }
    let mode = proxy_mode(config.proxy_mode, kind).await?;
    let service_route = service_route(&config, kind, mode, &node_ip)?;
    // What this node serves, for the control plane's load-balancer status (written
    // as "false" too, so a restart without it takes it back: labels are merged).
    let serves = |yes: bool| if yes { "true" } else { "false" }.to_string();
    labels.push((SERVICE_PROXY_LABEL.into(), serves(mode.is_some_and(|m| m != proxy::ProxyMode::Off))));
    labels.push((INGRESS_LABEL.into(), serves(config.ingress_listen.is_some() || config.ingress_tls_listen.is_some())));
    let registry = Arc::new(pods::Registry::default());
    let mut managers = HashMap::new();
    // The docker runtime's bridge, for the proxy's hairpin setting.
    let mut bridge = None;
    let names: Vec<String> = if config.count > 1 {
        (0..config.count).map(|i| format!("{base_name}-{i}")).collect()
    } else {
        vec![base_name.clone()]
    };
    for (i, name) in names.iter().enumerate() {
        let rt: Arc<dyn runtime::Runtime> = match kind {
            RuntimeKind::Docker => {
                let docker = runtime::docker::DockerRuntime::connect(&config.docker_network, name)
                    .await
                    .map_err(|source| AgentError::Runtime { runtime: "docker", source })?;
                bridge = Some(docker.bridge_name());
                Arc::new(
                    docker
                        .with_service_route(service_route.clone())
                        .with_host_network_container(config.host_network_container.clone()),
                )
            }
            RuntimeKind::Process => Arc::new(runtime::process::ProcessRuntime::new(
                config.data_dir.join("process"),
                name,
                Some(node_ip.clone()),
            )),
            RuntimeKind::Hollow => {
                // One /24 of fake pod IPs per hollow node.
                let cidr = format!("10.{}.{}.0/24", 244 + i / 256, i % 256);
                Arc::new(
                    runtime::hollow::HollowRuntime::new(name, &cidr)
                        .map_err(|e| AgentError::Config(format!("hollow node {name}: {e}")))?,
                )
            }
        };
        let version = rt.version().await.unwrap_or_else(|_| format!("{}://unknown", rt.name()));
        let hollow = kind == RuntimeKind::Hollow;
        let spec = node::NodeSpec {
            name: name.clone(),
            ip: node_ip.clone(),
            labels: labels.clone(),
            taints: taints.clone(),
            cpu_millis: config.capacity_cpu_millis.unwrap_or_else(node::host_cpu_millis),
            memory_bytes: config.capacity_memory_mib.map(|m| m << 20).unwrap_or_else(node::host_memory_bytes),
            reserved_cpu_millis: config.reserved_cpu_millis,
            reserved_memory_bytes: config.reserved_memory_mib << 20,
            max_pods: config.max_pods,
            runtime_version: version,
            port: config.listen.port(),
            lease_duration: (config.lease_renew_interval * 5).max(Duration::from_secs(10)),
            hollow,
        };
        tokio::spawn(node::heartbeat(client.clone(), spec, config.data_dir.clone(), config.lease_renew_interval));
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            node: name.clone(),
            node_ip: node_ip.clone(),
            data_dir: config.data_dir.join("nodes").join(name),
            cluster_dns: config.cluster_dns.clone(),
            cluster_domain: config.cluster_domain.clone(),
            events: Events::new(client.clone(), name.clone()),
        });
        if i == 0 {
            *registry.runtime.lock() = Some(rt.clone());
        }
        managers.insert(name.clone(), pods::PodManager::new(ctx, rt, registry.clone()).await);
    }
    let selector = if names.len() == 1 { format!("spec.nodeName={}", names[0]) } else { "spec.nodeName!=".to_string() };
    tokio::spawn(pods::run_source(client.clone(), selector, managers));
    let proxy = if mode.is_some() || config.ingress_listen.is_some() || config.ingress_tls_listen.is_some() {
        let cfg = proxy::ProxyConfig {
            mode: mode.unwrap_or(proxy::ProxyMode::Off),
            node: base_name.clone(),
            node_ip: node_ip.clone(),
            bridge,
            // Pods' Service traffic comes through this node and leaves by the way it
            // came; replies must come back the same way.
            masquerade_all: service_route.is_some(),
            ingress_listen: config.ingress_listen,
            ingress_tls_listen: config.ingress_tls_listen,
            ingress_class: config.ingress_class.clone(),
        };
        Some(proxy::start(client.clone(), cfg).await.map_err(AgentError::Proxy)?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Listen { addr: config.listen.to_string(), source })?;
    let app = server::router(registry);
    // With credentials, the agent's port is TLS for the API server only (see `server`).
    let tls = match &credentials {
        Some(c) => {
            let names = [node_ip.clone(), base_name.clone(), hostname(), "localhost".into()];
            Some(
                server::tls_config(&c.ca_pem, &names)
                    .map_err(|e| AgentError::Config(format!("the agent's port: {e}")))?,
            )
        }
        None => None,
    };
    let serve = async move {
        match tls {
            Some(tls) => server::serve_tls(listener, app, tls).await,
            None => axum::serve(listener, app.into_make_service()).await,
        }
    };
    tracing::info!(nodes = names.len(), runtime = ?kind, "rk-agent started");
    tokio::select! {
        _ = shutdown => {}
        r = serve => if let Err(e) = r { tracing::error!(error = %e, "the agent's HTTP server stopped") },
    }
    if let Some(p) = proxy {
        p.stop().await;
    }
    Ok(())
}

/// Node label: this node's service proxy serves LoadBalancer Services' ports at its
/// address (the control plane lists such nodes in the Services' status).
pub const SERVICE_PROXY_LABEL: &str = "node.rk.io/service-proxy";
/// Node label: this node serves Ingress (listed in the Ingresses' status).
pub const INGRESS_LABEL: &str = "node.rk.io/ingress";

/// The route pod sandboxes get from `--pod-service-route`, its helper copied where
/// the engine can bind it; None when not asked for, or when the proxy does not run in
/// nftables mode (nothing here would serve the cluster IPs; a warning says so).
fn service_route(
    config: &Config,
    kind: RuntimeKind,
    mode: Option<proxy::ProxyMode>,
    node_ip: &str,
) -> Result<Option<runtime::docker::ServiceRoute>, AgentError> {
    let Some(cidr) = &config.pod_service_route else { return Ok(None) };
    if kind != RuntimeKind::Docker {
        return Err(AgentError::Config("--pod-service-route needs the docker runtime".into()));
    }
    if !is_ipv4_cidr(cidr) {
        return Err(AgentError::Config(format!(
            "--pod-service-route {cidr:?} is not an IPv4 range such as 10.96.0.0/16"
        )));
    }
    let via: std::net::Ipv4Addr = node_ip.parse().map_err(|_| {
        AgentError::Config(format!("--pod-service-route needs an IPv4 node address (--node-ip), not {node_ip:?}"))
    })?;
    if mode != Some(proxy::ProxyMode::Nftables) {
        tracing::warn!(
            "--pod-service-route is ignored: the service proxy does not run in nftables mode, so nothing on this \
             node would serve cluster IPs"
        );
        return Ok(None);
    }
    let data_dir = |source| AgentError::DataDir { path: config.data_dir.clone(), source };
    let dir = std::path::absolute(config.data_dir.join("bin")).map_err(data_dir)?;
    std::fs::create_dir_all(&dir).map_err(data_dir)?;
    // A new file renamed into place: sandboxes that bound the old one keep it intact.
    let helper = dir.join("busybox");
    let tmp = dir.join(".busybox.tmp");
    std::fs::copy(&config.route_helper, &tmp).map_err(|e| {
        AgentError::Config(format!("--route-helper {}: cannot copy it: {e}", config.route_helper.display()))
    })?;
    std::fs::rename(&tmp, &helper).map_err(data_dir)?;
    Ok(Some(runtime::docker::ServiceRoute { cidr: cidr.clone(), via: via.to_string(), helper }))
}

/// Whether `s` is an IPv4 range written `a.b.c.d/n`.
fn is_ipv4_cidr(s: &str) -> bool {
    s.split_once('/')
        .is_some_and(|(ip, bits)| ip.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32))
}

/// The proxy mode this node runs, from `--proxy-mode` and the runtime; None: off.
/// Why each runtime gets its mode is in docs/services.md.
async fn proxy_mode(wanted: proxy::ProxyMode, runtime: RuntimeKind) -> Result<Option<proxy::ProxyMode>, AgentError> {
    use proxy::ProxyMode as M;
    Ok(match (wanted, runtime) {
        (M::Off, _) | (M::Auto, RuntimeKind::Hollow) => None,
        (M::Nftables | M::Userspace, RuntimeKind::Hollow) => {
            return Err(AgentError::Config("--proxy-mode: hollow nodes have no data path; use off or auto".into()));
        }
        (M::Nftables, _) => {
            if !proxy::nft_usable().await {
                return Err(AgentError::Config(
                    "--proxy-mode nftables needs the nft program and CAP_NET_ADMIN (`nft list tables` failed)".into(),
                ));
            }
            Some(M::Nftables)
        }
        (M::Auto, RuntimeKind::Docker) => {
            if proxy::nft_usable().await {
                Some(M::Nftables)
            } else {
                tracing::warn!(
                    "nft is not usable (not installed, or no CAP_NET_ADMIN): the service proxy runs in userspace \
                     mode, serving node ports only; pods cannot reach cluster IPs"
                );
                Some(M::Userspace)
            }
        }
        (M::Auto | M::Userspace, _) => Some(M::Userspace),
    })
}
