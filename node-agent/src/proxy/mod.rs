//! The Service data path of a node (rk's kube-proxy): traffic to a Service's cluster
//! IP, or to a node port on this node, reaches one of the Service's ready endpoints.
//!
//! ```text
//!  API server ─list+watch services, endpoints─► State (model.rs)
//!                                                 │ any change: debounce 50 ms
//!                                                 ▼
//!                                     service ports + ready endpoints (pure)
//!                      ┌──────────────────────────┴──────────────────────────┐
//!   nftables (docker runtime)                          userspace (process runtime)
//!   nft.rs: render the node's table, apply it           userspace.rs: listeners per
//!   with `nft -f -` in one transaction                  service port, TCP copied to an
//!                                                       endpoint; cluster IPs DNATed to
//!                                                       them by a small nft table
//!   ingress.rs (with --ingress-listen): HTTP reverse proxy, routes rebuilt on every sync
//!   ingress_tls.rs (with --ingress-tls-listen): the same over TLS, certificates by SNI
//! ```
//!
//! Which mode runs where, and why, is in `docs/services.md`. Start reading at
//! [`start`].

pub mod ingress;
pub mod ingress_tls;
pub mod model;
pub mod nft;
pub mod userspace;

use crate::client::Client;
use futures::StreamExt;
use model::State;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

/// How the agent routes Service traffic (`--proxy-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyMode {
    /// nftables for the docker runtime, userspace for the process runtime, off for hollow nodes.
    Auto,
    /// Kernel NAT rules in an nftables table of this node's own.
    Nftables,
    /// The agent accepts TCP connections itself and forwards them.
    Userspace,
    /// No Service data path on this node.
    Off,
}

/// Why the proxy could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot run nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft rejected the rule set: {0}")]
    Apply(String),
    #[error("the node IP {0:?} is not an IPv4 address; the proxy handles IPv4 only")]
    NodeIp(String),
    #[error("cannot listen for Ingress on {addr}: {source}")]
    IngressListen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The `source.component` of the events the Ingress records.
const INGRESS_COMPONENT: &str = "rk-ingress";

/// What the proxy of one node needs to know.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `Nftables`, `Userspace` or `Off` (already resolved from `Auto`); with `Off`
    /// only Ingress is served.
    pub mode: ProxyMode,
    pub node: String,
    pub node_ip: String,
    /// Docker runtime: the pods' bridge, whose ports get hairpin mode so a pod can
    /// reach itself through its own Service.
    pub bridge: Option<String>,
    /// Masquerade every connection to a cluster IP (kube-proxy's `--masquerade-all`):
    /// needed where pods' Service traffic is routed through the node
    /// (`--pod-service-route`), so the endpoint's replies come back through it.
    pub masquerade_all: bool,
    /// Serve Ingress here.
    pub ingress_listen: Option<std::net::SocketAddr>,
    /// Serve Ingress over TLS here (certificates from the Ingresses' `spec.tls`).
    pub ingress_tls_listen: Option<std::net::SocketAddr>,
    pub ingress_class: String,
}

/// Whether `nft` runs here with the rights to change the ruleset.
pub async fn nft_usable() -> bool {
    tokio::process::Command::new("nft")
        .args(["list", "tables"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Runs `script` through `nft -f -`: one transaction, all or nothing.
pub async fn nft_apply(script: &str) -> Result<(), ProxyError> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(ProxyError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await.map_err(ProxyError::Spawn)?;
    }
    let out = child.wait_with_output().await.map_err(ProxyError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ProxyError::Apply(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

/// A running proxy; [`ProxyHandle::stop`] removes what it programmed.
pub struct ProxyHandle {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl ProxyHandle {
    /// Stops syncing, closes userspace listeners and deletes the node's nft table.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(Duration::from_secs(10), self.done).await.is_err() {
            tracing::warn!("the proxy did not clean up within 10 s");
        }
    }
}

/// Starts the proxy of one node.
pub async fn start(client: Client, cfg: ProxyConfig) -> Result<ProxyHandle, ProxyError> {
    let node_ip: Ipv4Addr = cfg.node_ip.parse().map_err(|_| ProxyError::NodeIp(cfg.node_ip.clone()))?;
    let state = Arc::new(Mutex::new(State::default()));
    let changed = Arc::new(Notify::new());
    let listed = Arc::new(Mutex::new(BTreeSet::new()));
    let mut kinds = vec!["services", "endpoints"];
    let mut ingress = None;
    let mut tls_refs = None;
    let mut servers = Vec::new();
    if cfg.ingress_listen.is_some() || cfg.ingress_tls_listen.is_some() {
        let ing = ingress::Ingress::new();
        kinds.push("ingresses");
        if let Some(addr) = cfg.ingress_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ProxyError::IngressListen { addr, source })?;
            tracing::info!(listen = %addr, class = %cfg.ingress_class, "serving Ingress");
            servers.push(tokio::spawn(ingress::serve(listener, ing.clone())));
        }
        if let Some(addr) = cfg.ingress_tls_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ProxyError::IngressListen { addr, source })?;
            let resolver = Arc::new(ingress_tls::SniResolver::default());
            let (refs_tx, refs_rx) = tokio::sync::watch::channel(Vec::new());
            tracing::info!(listen = %addr, class = %cfg.ingress_class, "serving Ingress over TLS");
            servers.push(tokio::spawn(ingress_tls::refresh(client.clone(), refs_rx, resolver.clone())));
            let tls = ingress_tls::server_config(resolver);
            servers.push(tokio::spawn(ingress::serve_tls(listener, ing.clone(), tls)));
            tls_refs = Some(refs_tx);
        }
        ingress = Some(ing);
    }
    let wanted = kinds.len();
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = kinds
        .into_iter()
        .map(|k| tokio::spawn(watch_kind(client.clone(), k, state.clone(), changed.clone(), listed.clone())))
        .collect();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let done = tokio::spawn(async move {
        let mut syncer = Syncer::new(cfg, node_ip).await;
        syncer.events = Some(crate::Events::new(client.clone(), syncer.cfg.node.clone()));
        syncer.ingress = ingress;
        syncer.tls_refs = tls_refs;
        tasks.extend(servers);
        syncer.run(state, changed, listed, wanted, stop_rx).await;
        for t in tasks {
            t.abort();
        }
        syncer.cleanup().await;
    });
    Ok(ProxyHandle { stop: stop_tx, done })
}

/// The map of `state` that `resource` fills.
fn map_of<'a>(state: &'a mut State, resource: &str) -> &'a mut std::collections::BTreeMap<String, Value> {
    match resource {
        "services" => &mut state.services,
        "ingresses" => &mut state.ingresses,
        _ => &mut state.endpoints,
    }
}

/// Keeps `state`'s map of `resource` equal to the API's, by list then watch, again
/// after every error or end of stream.
async fn watch_kind(
    client: Client,
    resource: &'static str,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    listed: Arc<Mutex<BTreeSet<&'static str>>>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let list = match client.list(resource, None, "").await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(resource, error = %e, "proxy: cannot list; routing stays as it was");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0").to_string();
        {
            let mut s = state.lock();
            let map = map_of(&mut s, resource);
            map.clear();
            for item in list["items"].as_array().into_iter().flatten() {
                if let Some(key) = model::object_key(item) {
                    map.insert(key, item.clone());
                }
            }
        }
        listed.lock().insert(resource);
        changed.notify_one();
        let mut events = match client.watch(resource, None, &format!("resourceVersion={rv}")).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(resource, error = %e, "proxy: watch failed; listing again");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        while let Some(ev) = events.next().await {
            let Ok((kind, obj)) = ev else { break };
            let Some(key) = model::object_key(&obj) else { continue };
            let mut s = state.lock();
            match kind.as_str() {
                "ADDED" | "MODIFIED" => {
                    map_of(&mut s, resource).insert(key, obj);
                }
                "DELETED" => {
                    map_of(&mut s, resource).remove(&key);
                }
                "ERROR" => break,
                _ => continue,
            }
            drop(s);
            changed.notify_one();
        }
    }
}

/// Turns states into data-path changes, one at a time.
struct Syncer {
    cfg: ProxyConfig,
    nft: bool,
    opts: nft::Options,
    /// The rule set the kernel has, as far as we know (None: unknown, reset next time).
    applied: Option<nft::Ruleset>,
    /// Whether our table may exist (so stopping deletes it).
    touched: bool,
    userspace: Option<userspace::Userspace>,
    /// What was last logged as skipped, to log changes only.
    skipped: Vec<String>,
    /// With --ingress-listen: the routing table to refresh on every sync.
    ingress: Option<Arc<ingress::Ingress>>,
    /// With --ingress-tls-listen: where the Ingresses' TLS Secrets are announced.
    tls_refs: Option<tokio::sync::watch::Sender<Vec<ingress_tls::TlsRef>>>,
    /// Ingress backends without a Service port, already reported in an Event.
    missing: Vec<(String, ingress::Backend)>,
    events: Option<crate::Events>,
}

/// Waits after a change for more to arrive, so a burst costs one sync.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// Syncs this often even without changes, to retry a node port that could not be
/// bound. (A rule set nft refused is retried after 1 s. The kernel's table is not
/// read back: a table changed by hand is only repaired by the next real change.)
const RESYNC: Duration = Duration::from_secs(30);

impl Syncer {
    async fn new(cfg: ProxyConfig, node_ip: Ipv4Addr) -> Self {
        let nft = nft_usable().await;
        let opts = nft::Options {
            table: nft::table_name(&cfg.node, &cfg.node_ip),
            node_ip: Some(node_ip),
            masquerade_all: cfg.masquerade_all,
            reserved_ports: [cfg.ingress_listen, cfg.ingress_tls_listen]
                .into_iter()
                .flatten()
                .filter(|a| a.ip().is_unspecified() || a.ip() == std::net::IpAddr::V4(node_ip))
                .map(|a| a.port())
                .collect(),
        };
        let userspace = (cfg.mode == ProxyMode::Userspace).then(|| userspace::Userspace::new(node_ip));
        match (cfg.mode, nft) {
            (ProxyMode::Nftables, _) if node_ip.is_loopback() => enable_route_localnet(),
            (ProxyMode::Userspace, false) => tracing::warn!(
                "nft is not usable here (not installed, or no CAP_NET_ADMIN): node ports are served, \
                 but cluster IPs are not reachable from this node"
            ),
            _ => {}
        }
        tracing::info!(mode = ?cfg.mode, table = %opts.table, "service proxy started");
        // Mode off (Ingress only): never touch nft.
        let nft = nft && cfg.mode != ProxyMode::Off;
        Self {
            cfg,
            nft,
            opts,
            applied: None,
            touched: false,
            userspace,
            skipped: Vec::new(),
            ingress: None,
            tls_refs: None,
            missing: Vec::new(),
            events: None,
        }
    }

    async fn run(
        &mut self,
        state: Arc<Mutex<State>>,
        changed: Arc<Notify>,
        listed: Arc<Mutex<BTreeSet<&'static str>>>,
        wanted: usize,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        loop {
            let mut failed = false;
            // Until every kind was listed once, a sync would drop every Service
            // without Endpoints (or the reverse) for a moment.
            if listed.lock().len() == wanted {
                let snapshot = state.lock().clone();
                if let Err(e) = self.sync(&snapshot).await {
                    tracing::error!(table = %self.opts.table, error = %e, "service proxy sync failed; retrying in 1 s");
                    failed = true;
                }
            }
            let wait = if failed { Duration::from_secs(1) } else { RESYNC };
            tokio::select! {
                _ = &mut stop => return,
                _ = changed.notified() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn sync(&mut self, state: &State) -> Result<(), ProxyError> {
        let (ports, mut skipped) = state.service_ports();
        if let Some(ing) = &self.ingress {
            let (routes, defaults, why) = ingress::routes(state, &self.cfg.ingress_class);
            skipped.extend(why);
            *ing.table.write() = ingress::Table::new(routes, defaults, ports.clone());
            let missing = ingress::missing_backends(state, &self.cfg.ingress_class, &ports);
            for (key, backend) in missing.iter().filter(|m| !self.missing.contains(m)) {
                let message =
                    format!("backend Service {backend} not found (or headless): its requests are answered 503");
                tracing::warn!(ingress = %key, %backend, "ingress backend without a Service port");
                if let (Some(events), Some(obj)) = (&self.events, state.ingresses.get(key)) {
                    let (events, obj) = (events.clone(), obj.clone());
                    tokio::spawn(async move {
                        events
                            .warning_on(
                                &obj,
                                ("networking.k8s.io/v1", "Ingress"),
                                INGRESS_COMPONENT,
                                "ServiceNotFound",
                                &message,
                            )
                            .await;
                    });
                }
            }
            self.missing = missing;
        }
        if let Some(tx) = &self.tls_refs {
            let refs = ingress_tls::refs(state, &self.cfg.ingress_class);
            tx.send_if_modified(|current| {
                let changed = *current != refs;
                if changed {
                    *current = refs;
                }
                changed
            });
        }
        if skipped != self.skipped {
            for why in skipped.iter().filter(|w| !self.skipped.contains(w)) {
                tracing::warn!(reason = %why, "not proxied");
            }
            self.skipped = skipped;
        }
        if self.cfg.mode == ProxyMode::Off {
            return Ok(());
        }
        let targets: Vec<(model::ServicePort, nft::Target)> = match &mut self.userspace {
            Some(us) => us.sync(&ports).await.into_iter().map(|(sp, to)| (sp, nft::Target::Redirect(to))).collect(),
            None => ports.into_iter().map(|sp| (sp, nft::Target::Endpoints)).collect(),
        };
        if !self.nft {
            return Ok(());
        }
        if let Some(bridge) = &self.cfg.bridge {
            set_hairpin(bridge);
        }
        let next = nft::render(&self.opts, &targets);
        if self.applied.as_ref() == Some(&next) {
            return Ok(());
        }
        let script = nft::transaction(self.applied.as_ref(), &next);
        self.touched = true;
        match nft_apply(&script).await {
            Ok(()) => {
                if self.applied.is_none() {
                    tracing::info!(table = %self.opts.table, service_ports = targets.len(), "nft table built");
                } else {
                    tracing::debug!(table = %self.opts.table, service_ports = targets.len(), "nft table updated");
                }
                self.applied = Some(next);
                Ok(())
            }
            Err(e) => {
                // Start from scratch next time: the table's contents are unknown.
                self.applied = None;
                tracing::debug!(script, "the nft script that failed");
                Err(e)
            }
        }
    }

    async fn cleanup(&mut self) {
        if let Some(us) = &mut self.userspace {
            us.stop();
        }
        if self.touched {
            match nft_apply(&nft::cleanup(&self.opts.table)).await {
                Ok(()) => tracing::info!(table = %self.opts.table, "removed the service proxy's nft table"),
                Err(e) => tracing::warn!(table = %self.opts.table, error = %e, "cannot remove the nft table"),
            }
        }
    }
}

/// Node ports on a loopback node IP (local clusters) are DNATed to pods with a
/// 127/8 source, which the kernel only routes off `lo` with route_localnet (as
/// kube-proxy sets it for localhost node ports). Left on at exit: other agents on
/// the host may rely on it.
fn enable_route_localnet() {
    let path = "/proc/sys/net/ipv4/conf/all/route_localnet";
    match std::fs::write(path, "1") {
        Ok(()) => tracing::info!("set net.ipv4.conf.all.route_localnet=1 for node ports on a loopback node IP"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot set route_localnet; node ports on a loopback node IP will not work")
        }
    }
}

/// Puts every port of `bridge` in hairpin mode: a pod whose Service connection is
/// DNATed back to itself gets the frame sent back out the port it came in on
/// (kubelet's `hairpin-veth` mode). New pods' ports are picked up on the next sync,
/// which their endpoints becoming ready triggers.
fn set_hairpin(bridge: &str) {
    let dir = std::path::Path::new("/sys/class/net").join(bridge).join("brif");
    let Ok(ports) = std::fs::read_dir(&dir) else {
        tracing::debug!(bridge, "no such bridge; hairpin mode not set");
        return;
    };
    for port in ports.flatten() {
        let path = port.path().join("hairpin_mode");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
            continue;
        }
        if let Err(e) = std::fs::write(&path, "1") {
            tracing::debug!(path = %path.display(), error = %e, "cannot set hairpin mode");
        }
    }
}
