//! One replica, wired together: storage recovery or bootstrap, the raft thread, the
//! peer port, the client port and the background duties (lease expiry, watch
//! catch-up, auto-compaction, publishing this member's address).
//!
//! ```text
//!  client port (--listen) ── etcd gRPC, health ──► EtcdApi ──► RaftHandle ─┐
//!  peer port (--peer-listen) ── raft stream ──────► PeerService ──────────┤
//!                                                                          ▼
//!                                             raft thread ──► StateMachine + WatchHub
//! ```

use crate::config::{self, Config};
use crate::etcd::{self, EtcdApi};
use crate::lease::Lessor;
use crate::raft::log::{Backend, DEFAULT_SEGMENT_BYTES, LogError, RaftLog};
use crate::raft::node::{self, Leadership, NodeOptions, ProposeError, RaftHandle, Role};
use crate::raft::transport::{GrpcTransport, PeerService};
use crate::store::StateMachine;
use crate::store::snapshot::DecodeError;
use crate::store::watch::{self, WatchHub};
use rk_proto::etcdserverpb::cluster_client::ClusterClient;
use rk_proto::etcdserverpb::{CompactionRequest, MemberAddRequest, MemberListRequest};
use rk_proto::store::internal_request::Op;
use rk_proto::store::{MemberAttributes, MemberInfo};
use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why a replica could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the snapshot in the data directory cannot be read: {0}")]
    Snapshot(#[from] DecodeError),
    #[error("raft refused to start: {0}")]
    Raft(#[from] raft::Error),
    #[error("cannot join the cluster through {addr}: {reason}")]
    Join { addr: String, reason: String },
    #[error("cannot use data directory {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },
    #[error("serving failed: {0}")]
    Serve(String),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error("this replica was removed from the cluster")]
    Removed,
    #[error(
        "raft storage failed, so this replica stopped: {0}. Fix the cause (e.g. free disk space) and \
         start it again: a write torn by the failure is cut off the log at start"
    )]
    Storage(String),
}

/// What a data directory records about its replica, so a restart with the wrong
/// `--id` is refused instead of corrupting the cluster.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
struct MemberFile {
    id: u64,
    cluster_id: u64,
}

fn read_member_file(dir: &Path) -> Result<Option<MemberFile>, ServerError> {
    let path = dir.join("member.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ServerError::DataDir { path, reason: format!("member.json is damaged: {e}") }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ServerError::DataDir { path, reason: e.to_string() }),
    }
}

fn write_member_file(dir: &Path, m: &MemberFile) -> Result<(), ServerError> {
    let path = dir.join("member.json");
    let err = |e: std::io::Error| ServerError::DataDir { path: path.clone(), reason: e.to_string() };
    let tmp = dir.join("member.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(m).unwrap_or_default()).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)
}

/// A stable 64-bit FNV-1a hash: the cluster id is derived from the founding
/// members, so every founding replica computes the same one.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Makes `log` (in `data_dir`) the log of founding member `id` of a new cluster of
/// `peers` whose first state is `state` (empty for a fresh cluster, a backup's for a
/// restore). Every founding member computes the same cluster id and first snapshot
/// from the same peers and state, so their logs agree from the start.
fn found(
    log: &RaftLog,
    data_dir: &Path,
    id: u64,
    peers: &[config::Peer],
    mut state: StateMachine,
) -> Result<StateMachine, ServerError> {
    if !peers.iter().any(|p| p.id == id) {
        return Err(ServerError::Config(format!("--peers does not include this replica's --id {id}")));
    }
    let spec: Vec<String> = peers.iter().map(|p| format!("{}={}", p.id, p.addr)).collect();
    state.cluster_id = fnv1a(spec.join(",").as_bytes());
    state.members = peers
        .iter()
        .map(|p| (p.id, MemberInfo { id: p.id, peer_urls: vec![p.addr.clone()], ..Default::default() }))
        .collect();
    state.removed.clear();
    let snap = node::founding_snapshot(&state);
    log.bootstrap(&snap)?;
    write_member_file(data_dir, &MemberFile { id, cluster_id: state.cluster_id })?;
    Ok(node::restore(&snap)?)
}

/// Makes `data_dir` the data directory of founding member `id` of a new cluster of
/// `peers` that starts from `state` (a restored backup). Refuses a directory that
/// already holds a replica's data.
pub fn found_data_dir(
    data_dir: &Path,
    id: u64,
    peers: &[config::Peer],
    state: StateMachine,
) -> Result<(), ServerError> {
    let in_use = |reason: &str| ServerError::DataDir { path: data_dir.to_path_buf(), reason: reason.into() };
    if read_member_file(data_dir)?.is_some() {
        return Err(in_use("it already belongs to a replica; restore into a new directory"));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| in_use(&e.to_string()))?;
    let backend = Backend::Disk { dir: data_dir.join("raft"), segment_bytes: DEFAULT_SEGMENT_BYTES };
    let (log, _) = RaftLog::open(&backend)?;
    if log.is_initialized() {
        return Err(in_use("it already holds a raft log; restore into a new directory"));
    }
    found(&log, data_dir, id, peers, state)?;
    log.sync()?;
    Ok(())
}

/// A running replica: handles for tests and for `main`.
pub struct Replica {
    pub raft: RaftHandle,
    pub client_addr: std::net::SocketAddr,
    pub peer_addr: std::net::SocketAddr,
    /// Where cluster DNS is served, if it is.
    pub dns_addr: Option<std::net::SocketAddr>,
}

/// `--dns-listen`, `--cluster-domain`, `--dns-upstream`, `--dns-ttl`: checked before
/// anything starts; `None` when DNS is off.
fn dns_options(config: &Config) -> Result<Option<crate::dns::DnsOptions>, ServerError> {
    let Some(listen) = &config.dns_listen else { return Ok(None) };
    let listen = config::parse_dns_listen(listen, config.listen).map_err(ServerError::Config)?;
    let domain = config::check_cluster_domain(&config.cluster_domain).map_err(ServerError::Config)?;
    let upstreams = crate::dns::upstreams(&config.dns_upstream).map_err(ServerError::Config)?;
    Ok(Some(crate::dns::DnsOptions { listen, domain, upstreams, ttl: config.dns_ttl }))
}

/// Runs one replica until `shutdown` completes (or the replica is removed).
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
    let (replica, done) = start(config).await?;
    tokio::select! {
        _ = shutdown => {}
        _ = wait_stopped(&replica.raft) => {}
    }
    let Leadership { removed, failure, .. } = replica.raft.leadership();
    let _ = replica.raft.send(node::Command::Stop);
    done.await;
    match failure {
        Some(why) => Err(ServerError::Storage(why)),
        None if removed => Err(ServerError::Removed),
        None => Ok(()),
    }
}

async fn wait_stopped(raft: &RaftHandle) {
    let mut rx = raft.shared.leadership.clone();
    let _ = rx.wait_for(|l| l.stopped).await;
}

/// Starts a replica and returns once it serves; the returned future completes when
/// its raft thread has stopped.
pub async fn start(config: Config) -> Result<(Replica, impl Future<Output = ()>), ServerError> {
    let peers = config::parse_peers(&config.peers).map_err(ServerError::Config)?;
    if config.tick_ms == 0 || config.election_ticks <= config.heartbeat_ticks || config.heartbeat_ticks == 0 {
        return Err(ServerError::Config(
            "--tick-ms must be positive and --election-ticks larger than --heartbeat-ticks (at least 1)".into(),
        ));
    }
    let dns_opts = dns_options(&config)?;
    let client = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind { addr: config.listen.to_string(), source })?;
    let peer = TcpListener::bind(config.peer_listen)
        .await
        .map_err(|source| ServerError::Bind { addr: config.peer_listen.to_string(), source })?;
    let dns_listeners = match &dns_opts {
        Some(o) => Some(crate::dns::bind(o.listen).await.map_err(|e| ServerError::Config(e.to_string()))?),
        None => None,
    };
    let client_addr = client.local_addr().map_err(|e| ServerError::Serve(e.to_string()))?;
    let peer_addr = peer.local_addr().map_err(|e| ServerError::Serve(e.to_string()))?;
    let advertise_peer = config.advertise_peer.clone().unwrap_or_else(|| peer_addr.to_string());
    let advertise_client = config.advertise_client.clone().unwrap_or_else(|| client_addr.to_string());

    // The data directory: which replica it belongs to, and its raft log.
    let data_dir =
        config.data_dir.clone().unwrap_or_else(|| PathBuf::from(format!("rk-{}.data", config.id.unwrap_or(1))));
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| ServerError::DataDir { path: data_dir.clone(), reason: e.to_string() })?;
    let recorded = read_member_file(&data_dir)?;
    if let (Some(addr), Some(token), None) = (&config.join, &config.join_token, &recorded) {
        fetch_replica_credentials(&config, addr, token, &data_dir).await?;
    }
    let key_path = secrets_key_path(&config, &data_dir, recorded.is_some(), peers.len())?;
    let ranges = crate::api::alloc::Ranges::parse(&config.service_cluster_ip_range, &config.service_node_port_range)
        .map_err(ServerError::Config)?;
    let security = if config.insecure_dev {
        None
    } else {
        let ca = cluster_ca(&config, &data_dir, recorded.is_some(), peers.len())?;
        let (dns_names, ips) = client_port_names(&config, client_addr, &advertise_client, &ranges);
        let role = crate::pki::Role::ClientPort { dns_names, ips };
        Some(crate::pki::Credentials::issue(ca, role, config.cert_validity)?)
    };
    // rk's own calls to other replicas' client ports (joining) present this replica's
    // client port certificate, which is in `system:masters`.
    let api_dialer = crate::tls::Dialer {
        tls: security.as_ref().map(|c| c.client_config().map(Arc::new)).transpose()?,
        local_ip: None,
    };
    let backend = Backend::Disk { dir: data_dir.join("raft"), segment_bytes: DEFAULT_SEGMENT_BYTES };
    let (log, recovered) = RaftLog::open(&backend)?;
    if recovered.truncated_tail > 0 {
        tracing::warn!(bytes = recovered.truncated_tail, "cut a torn write off the end of the raft log");
    }

    let (id, sm) = match (&recovered.snapshot, &recorded) {
        (Some(snap), Some(member)) => {
            if config.id.is_some_and(|id| id != member.id) {
                return Err(ServerError::DataDir {
                    path: data_dir,
                    reason: format!("it belongs to member {}, not --id {}", member.id, config.id.unwrap_or(0)),
                });
            }
            (member.id, node::restore(snap)?)
        }
        _ if log.is_initialized() => {
            return Err(ServerError::DataDir { path: data_dir, reason: "member.json is missing".into() });
        }
        _ => match &config.join {
            Some(addr) => {
                // A member that joined but never received a snapshot keeps its id.
                let id = recorded.as_ref().map(|m| m.id).or(config.id);
                let (id, cluster_id, members) = join(addr, id, &advertise_peer, &api_dialer).await?;
                write_member_file(&data_dir, &MemberFile { id, cluster_id })?;
                let mut sm = StateMachine::new(cluster_id);
                sm.members = members.into_iter().map(|m| (m.id, m)).collect();
                (id, sm)
            }
            None => {
                let id = config.id.unwrap_or(1);
                let peers =
                    if peers.is_empty() { vec![config::Peer { id, addr: advertise_peer.clone() }] } else { peers };
                (id, found(&log, &data_dir, id, &peers, StateMachine::default())?)
            }
        },
    };

    let named = config.encryption_key_file.is_some();
    let encryption = Arc::new(secrets_keys(&key_path, named, &data_dir, recorded.is_some(), &sm)?);
    let opts = NodeOptions {
        id,
        tick: Duration::from_millis(config.tick_ms),
        election_ticks: config.election_ticks,
        heartbeat_ticks: config.heartbeat_ticks,
        snapshot_entries: config.snapshot_entries.max(1),
        snapshot_catchup_entries: config.snapshot_catchup_entries,
        ..Default::default()
    };
    // A lease must outlive an election: at least 1.5 election timeouts, in seconds.
    let min_ttl = ((opts.election_timeout().as_secs_f64() * 3.0).ceil() as i64).max(1);
    let hub = Arc::new(WatchHub::new());
    let channel = node::channel();
    let local_ip = Some(peer_addr.ip()).filter(|ip| !ip.is_unspecified());
    // Peers authenticate each other with certificates naming their replica ids.
    let peer_creds = security
        .as_ref()
        .map(|c| crate::pki::Credentials::issue(c.ca().clone(), crate::pki::Role::Peer { id }, config.cert_validity))
        .transpose()?;
    let peer_dialer =
        crate::tls::Dialer { tls: peer_creds.as_ref().map(|c| c.client_config().map(Arc::new)).transpose()?, local_ip };
    let transport = GrpcTransport::new(id, peer_dialer.clone(), tokio::runtime::Handle::current(), channel.0.clone());
    let cmd_tx = channel.0.clone();
    let request_timeout = Duration::from_millis(config.request_timeout_ms.max(100));
    let (raft, thread) = node::start(opts, log, sm, hub.clone(), transport, channel, request_timeout)?;
    let lessor = Lessor::new(raft.clone(), min_ttl, peer_dialer);

    tokio::spawn(watch::sync_loop(raft.shared.sm.clone(), hub));
    tokio::spawn(lessor.clone().run());
    tokio::spawn(auto_compact(raft.clone(), config.auto_compaction_retention));
    let name = config.name.clone().unwrap_or_else(|| format!("rk-{id}"));
    tokio::spawn(publish_attributes(raft.clone(), name, vec![advertise_client.clone()]));

    // Peer port.
    let peer_service = PeerService::new(id, cmd_tx, lessor.clone()).into_server();
    let peer_tls = peer_creds.as_ref().map(|c| c.server_config(true).map(Arc::new)).transpose()?;
    let peer_incoming = crate::tls::peer_incoming(peer, peer_tls);
    let mut stop_peer = raft.shared.leadership.clone();
    tokio::spawn(async move {
        let result = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(peer_service)
            .serve_with_incoming_shutdown(peer_incoming, async move {
                let _ = stop_peer.wait_for(|l| l.stopped).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "the peer port stopped serving");
        }
    });

    // Client port: gRPC and HTTP on one listener.
    let etcd_api = EtcdApi::new(raft.clone(), lessor, config.watch_progress_notify_interval);
    let api_options = crate::api::rest::ApiOptions {
        ranges,
        default_toleration_seconds: config.default_toleration_seconds,
        max_watches_per_client: config.max_watches_per_client,
        max_requests_in_flight_per_client: config.max_requests_in_flight_per_client,
        // In-cluster clients need TLS to use a token: no token volumes without it.
        mount_service_account_tokens: security.is_some(),
        agent_tls: security.as_ref().map(|c| c.agent_client_config().map(Arc::new)).transpose()?,
    };
    tokio::spawn(reload_keys(encryption.clone(), raft.shared.leadership.clone()));
    let kube = crate::api::rest::Api::new(crate::api::store::ObjectStore::new(raft.clone(), encryption), api_options);
    tokio::spawn(bootstrap_namespaces(kube.clone(), client_addr.port()));
    let certificates: Vec<Arc<crate::pki::Credentials>> = security.iter().chain(peer_creds.iter()).cloned().collect();
    let (renewed_tx, renewed_rx) = tokio::sync::mpsc::unbounded_channel();
    for creds in &certificates {
        let mut stopped = raft.shared.leadership.clone();
        let renewed_tx = renewed_tx.clone();
        let stop = async move {
            let _ = stopped.wait_for(|l| l.stopped).await;
        };
        tokio::spawn(creds.clone().renew_loop(stop, move |c| {
            let _ = renewed_tx.send((c.role().label(), c.not_after()));
        }));
    }
    tokio::spawn(renewal_events(kube.clone(), id, renewed_rx));
    let dns_addr = match (dns_listeners, dns_opts) {
        (Some(listeners), Some(opts)) => {
            let (stop_tx, stop) = tokio::sync::watch::channel(false);
            let mut stopped = raft.shared.leadership.clone();
            tokio::spawn(async move {
                let _ = stopped.wait_for(|l| l.stopped).await;
                let _ = stop_tx.send(true);
            });
            Some(crate::dns::serve(listeners, kube.clone(), opts, stop).local_addr)
        }
        _ => None,
    };
    let controller_opts = crate::controllers::ControllerOptions {
        node_monitor_grace: config.node_monitor_grace_period,
        root_ca: security.as_ref().map(|c| c.ca().cert_pem().to_string()),
        ..Default::default()
    };
    tokio::spawn(crate::controllers::run(kube.clone(), controller_opts));
    let resources = crate::api::grpc::server(kube.clone());
    let audit = match &config.audit_log_path {
        Some(p) if p.as_os_str() == "-" => None,
        path => {
            let path = path.clone().unwrap_or_else(|| data_dir.join("audit").join("audit.log"));
            let cfg = crate::api::audit::AuditConfig {
                path: path.clone(),
                max_bytes: config.audit_log_maxsize.max(1).saturating_mul(1024 * 1024),
                max_backups: config.audit_log_maxbackup,
            };
            let log = crate::api::audit::AuditLog::start(cfg).map_err(|e| ServerError::DataDir {
                path,
                reason: format!(
                    "cannot open the audit log: {e} (choose another with --audit-log-path, or `-` for none)"
                ),
            })?;
            Some(log)
        }
    };
    let kube = crate::api::ApiServer::with_audit(kube, advertise_client.clone(), audit, certificates);
    let router = client_router(etcd_api, resources).merge(crate::api::router(kube)).fallback(not_found);
    let client_tls = security.as_ref().map(|c| c.server_config(false).map(Arc::new)).transpose()?;
    let client = crate::tls::ClientListener::new(client, client_tls).map_err(|e| ServerError::Serve(e.to_string()))?;
    let mut stop_client = raft.shared.leadership.clone();
    tokio::spawn(async move {
        // Connect info: the client's address (for the audit log) and certificate.
        let service = router.into_make_service_with_connect_info::<crate::tls::Conn>();
        let serve = axum::serve(client, service).with_graceful_shutdown(async move {
            let _ = stop_client.wait_for(|l| l.stopped).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the client port stopped serving");
        }
    });

    let done = async move {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    };
    tracing::info!(id, %client_addr, %peer_addr, "rk-server replica started");
    match &security {
        None => tracing::warn!(
            "--insecure-dev: requests without credentials may do anything, and the client and peer ports are \
             plain TCP (no TLS): for local experiments only, never on a network others can reach"
        ),
        Some(creds) => tracing::info!(
            pki_dir = %creds.ca().dir().display(),
            "TLS on the client and peer ports; clients authenticate with certificates the cluster CA signed \
             or with bearer tokens (`rk-server certs kubeconfig` writes an admin kubeconfig)"
        ),
    }
    Ok((Replica { raft, client_addr, peer_addr, dns_addr }, done))
}

/// Records each certificate renewal as an Event on the API's own Service
/// (`default/kubernetes`), so `kubectl get events` and `kubectl describe svc kubernetes`
/// show it.
async fn renewal_events(
    api: crate::api::rest::Api,
    id: u64,
    mut renewed: tokio::sync::mpsc::UnboundedReceiver<(&'static str, std::time::SystemTime)>,
) {
    let recorder = crate::controllers::events::Recorder::new(api.clone(), "rk-server");
    while let Some((label, not_after)) = renewed.recv().await {
        let Some(services) = crate::api::registry::lookup("services") else { continue };
        let service = api.get(services, Some("default"), "kubernetes", crate::api::store::Freshness::Any).await;
        let Ok(service) = service.and_then(|s| s.object()) else { continue };
        let message = format!(
            "replica {id} renewed its {label} certificate; the new one expires at {}",
            crate::pki::jiff_time(not_after)
        );
        recorder.record(&service, "Normal", "CertificateRenewed", &message).await;
    }
}

/// Fetches what a replica joining with a replica token lacks of the cluster's secrets
/// (the CA with its key, the secrets keys) from the member at `addr`, trusting that
/// member only through the CA the token pins. What is here already is kept; a CA that is
/// not the token's is refused.
async fn fetch_replica_credentials(
    config: &Config,
    addr: &str,
    token: &str,
    data_dir: &Path,
) -> Result<(), ServerError> {
    use crate::pki::Ca;
    let fail = |reason: String| ServerError::Join { addr: addr.to_string(), reason };
    let (hash, bearer) = rk_proto::join::parse(token).ok_or_else(|| {
        ServerError::Config(
            "--join-token: not a token `rk-server token create --replica` makes (rk1:<CA hash>:<id>.<secret>)".into(),
        )
    })?;
    let pki_dir = pki_dir_of(config, data_dir);
    let key_path = key_file_of(config, data_dir)?;
    let check_pin = |ca: &Ca| match crate::pki::ca_hash(ca.cert_pem())? {
        have if have.eq_ignore_ascii_case(hash) => Ok(()),
        _ => Err(ServerError::Config(format!(
            "the CA in {} is not the one the join token pins: give this replica an empty --pki-dir, or a \
             token of the cluster that CA belongs to",
            pki_dir.display()
        ))),
    };
    if Ca::exists(&pki_dir) && key_path.exists() {
        return check_pin(&Ca::load(&pki_dir)?);
    }
    let tls = rk_proto::join::client_config(hash).map_err(|e| fail(e.to_string()))?;
    let host_port = addr.split("://").last().unwrap_or(addr);
    let path = crate::api::bootstrap::REPLICA_CREDENTIALS_PATH;
    let (status, body) = crate::tls::post_json(
        host_port,
        crate::pki::API_SERVER_NAME,
        Arc::new(tls),
        path,
        bearer,
        &serde_json::json!({}),
    )
    .await
    .map_err(fail)?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(fail(format!("the member refused the join token ({status}): {message}")));
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
    let field = |k: &str| answer[k].as_str().ok_or_else(|| fail(format!("the answer lacks {k}")));
    check_pin(&Ca::install(&pki_dir, field("ca")?, field("caKey")?)?)?;
    crate::api::encryption::install_key_file(&key_path, field("encryptionKeys")?)
        .map_err(|e| ServerError::Config(e.to_string()))?;
    tracing::warn!(pki_dir = %pki_dir.display(), key_file = %key_path.display(),
        "received the cluster CA and the secrets keys with the join token; keep both private");
    Ok(())
}

/// The cluster CA's directory: `--pki-dir`, or `<data-dir>/pki`.
fn pki_dir_of(config: &Config, data_dir: &Path) -> PathBuf {
    config.pki_dir.clone().unwrap_or_else(|| data_dir.join("pki"))
}

/// The secrets key file: `--encryption-key-file`, or the one beside the data directory.
fn key_file_of(config: &Config, data_dir: &Path) -> Result<PathBuf, ServerError> {
    match &config.encryption_key_file {
        Some(p) => Ok(p.clone()),
        None => config::default_key_file(data_dir).map_err(ServerError::Config),
    }
}

/// In the data directory: the hash of the CA this replica serves with, so a restart that
/// finds another CA (or none) is refused instead of making certificates nobody trusts.
const CA_USED_FILE: &str = "cluster-ca.sha256";

/// The cluster CA, created when this replica may make it up: like the secrets key, a
/// joining replica or one of several founders that names no shared directory must not
/// (its certificates would not be trusted by the others), nor may a replica that served
/// with a CA before (its clients and peers trust that one), so those starts are refused
/// with what to do instead.
fn cluster_ca(
    config: &Config,
    data_dir: &Path,
    restarting: bool,
    founders: usize,
) -> Result<Arc<crate::pki::Ca>, ServerError> {
    use crate::pki::Ca;
    let named = config.pki_dir.is_some();
    let dir = pki_dir_of(config, data_dir);
    let used_file = data_dir.join(CA_USED_FILE);
    let used = std::fs::read_to_string(&used_file).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    if !Ca::exists(&dir) {
        if used.is_some() {
            return Err(ServerError::Config(format!(
                "the cluster CA this replica served with is missing from {}: put its ca.crt and ca.key back \
                 (from a backup, or from another member's PKI directory); a new CA would not be trusted by the \
                 other members nor by any client. To start over with a new CA on purpose, delete {}",
                dir.display(),
                used_file.display()
            )));
        }
        if config.join.is_some() && !restarting {
            return Err(ServerError::Config(format!(
                "the cluster CA is missing from {}: a joining replica needs the cluster's CA. Give it a replica \
                 token (`rk-server token create --replica`, then --join-token TOKEN), or copy ca.crt and ca.key \
                 from any member's PKI directory there (or name it with --pki-dir)",
                dir.display()
            )));
        }
        if !named && founders > 1 && !restarting {
            return Err(ServerError::Config(format!(
                "the founding members of a cluster must share one CA, and {} holds none: give every founding \
                 member the same --pki-dir (the first to start creates the CA there; on separate machines, \
                 start one replica first and copy its PKI directory to the others)",
                dir.display()
            )));
        }
    }
    let (ca, created) = Ca::load_or_create(&dir)?;
    if created {
        tracing::warn!(dir = %dir.display(), "created the cluster CA; its key (ca.key) signs every credential \
            of this cluster: keep it private");
    }
    let hash = crate::pki::ca_hash(ca.cert_pem())?;
    match used {
        Some(u) if u == hash => {}
        Some(_) => {
            return Err(ServerError::Config(format!(
                "the cluster CA in {} is not the one this replica served with: point --pki-dir at that one. To \
                 start over with this CA on purpose, delete {}",
                dir.display(),
                used_file.display()
            )));
        }
        None => {
            let tmp = data_dir.join(format!("{CA_USED_FILE}.tmp"));
            std::fs::write(&tmp, format!("{hash}\n"))
                .and_then(|()| std::fs::rename(&tmp, &used_file))
                .map_err(|e| ServerError::DataDir { path: data_dir.to_path_buf(), reason: e.to_string() })?;
        }
    }
    Ok(Arc::new(ca))
}

/// The names a replica's client port certificate carries: its listen address (every
/// local address when it listens on all of them), its advertised address, loopback,
/// the machine's host name, the `kubernetes` Service's names and IP, and `--tls-san`.
fn client_port_names(
    config: &Config,
    listen: std::net::SocketAddr,
    advertise: &str,
    ranges: &crate::api::alloc::Ranges,
) -> (Vec<String>, Vec<std::net::IpAddr>) {
    use std::net::IpAddr;
    let mut dns: Vec<String> = vec![
        "localhost".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        crate::pki::API_SERVER_NAME.into(),
        format!("{}.{}", crate::pki::API_SERVER_NAME, config.cluster_domain.trim_end_matches('.')),
    ];
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)];
    if listen.ip().is_unspecified() {
        if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
            for a in addrs {
                let ip = a.address.as_ref().and_then(|s| {
                    s.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                });
                ips.extend(ip);
            }
        }
    } else {
        ips.push(listen.ip());
    }
    if let Ok(first) = ranges.first().parse() {
        ips.push(first);
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            dns.push(host.to_string());
        }
    }
    let advertised = advertise.split("://").last().unwrap_or(advertise);
    let host = match advertised.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().to_string(),
        Err(_) => advertised.rsplit_once(':').map_or(advertised, |(h, _)| h).to_string(),
    };
    for name in std::iter::once(host).chain(config.tls_san.iter().cloned()) {
        let name = name.trim().trim_start_matches('[').trim_end_matches(']').to_string();
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) if !name.is_empty() => dns.push(name),
            Err(_) => {}
        }
    }
    // IPv6 link-local addresses carry a zone no certificate can name.
    ips.retain(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80));
    ips.sort();
    ips.dedup();
    dns.sort();
    dns.dedup();
    (dns, ips)
}

/// Where the secrets key file is. Starts that would need keys this replica cannot make up
/// are refused here, before it joins anything.
fn secrets_key_path(
    config: &Config,
    data_dir: &Path,
    restarting: bool,
    founders: usize,
) -> Result<PathBuf, ServerError> {
    let named = config.encryption_key_file.is_some();
    let path = key_file_of(config, data_dir)?;
    if !path.exists() && !restarting {
        // A fresh key here would make every Secret of a running cluster unreadable on this
        // replica, or give founding replicas different keys: refuse, and say what to do.
        if config.join.is_some() {
            return Err(ServerError::Config(format!(
                "the secrets encryption key file {} is missing: a joining replica needs the cluster's keys. \
                 Give it a replica token (`rk-server token create --replica`, then --join-token TOKEN), or copy \
                 the key file of any member there (or name it with --encryption-key-file)",
                path.display()
            )));
        }
        if !named && founders > 1 {
            return Err(ServerError::Config(format!(
                "the founding members of a cluster must share their secrets encryption keys, and {} does not \
                 exist: give every founding member the same --encryption-key-file (the first to start creates \
                 it if missing; on separate machines, create it on one with `rk-server secrets create-key \
                 --encryption-key-file FILE` and copy it to the others)",
                path.display()
            )));
        }
    }
    Ok(path)
}

/// In the data directory: the names (never the keys) of the secrets keys this replica
/// has used, so a restart without the key file is refused instead of making a new key.
const KEYS_USED_FILE: &str = "secrets-keys-used";

/// The keys Secrets are sealed with, from the key file at `path` (`named`: given with
/// `--encryption-key-file`). A missing file is created only when no other key can be in
/// use: not for a data directory that has used a key file before (Secrets in its log may
/// be sealed with it), nor for a restarted member of a cluster of several that does not
/// name a file all of them can share (a restored cluster that names one creates it).
fn secrets_keys(
    path: &Path,
    named: bool,
    data_dir: &Path,
    restarting: bool,
    sm: &StateMachine,
) -> Result<crate::api::encryption::Encryption, ServerError> {
    use crate::api::encryption::{Encryption, create_key_file};
    let used_file = data_dir.join(KEYS_USED_FILE);
    if !path.exists() {
        if restarting && !named && sm.members.len() > 1 {
            return Err(ServerError::Config(format!(
                "the secrets encryption key file {} is missing, and this replica belongs to a cluster of {} \
                 replicas: copy the key file of another member there, or give every replica the same \
                 --encryption-key-file",
                path.display(),
                sm.members.len()
            )));
        }
        if let Ok(used) = std::fs::read_to_string(&used_file) {
            let names: Vec<&str> = used.split_whitespace().collect();
            return Err(ServerError::Config(format!(
                "the secrets encryption key file {} is missing, and this data directory's Secrets may be \
                 encrypted with its keys ({}): put the key file back",
                path.display(),
                names.join(", ")
            )));
        }
        if create_key_file(path).map_err(|e| ServerError::Config(e.to_string()))? {
            tracing::warn!(path = %path.display(), "created a new secrets encryption key file; keep it out of the \
                data directory's backups and give every replica of this cluster the same file");
        }
    }
    let enc = Encryption::load(path).map_err(|e| ServerError::Config(e.to_string()))?;
    // Remember every key name seen (a rotation adds one); written aside and renamed.
    let mut names: Vec<String> =
        std::fs::read_to_string(&used_file).unwrap_or_default().split_whitespace().map(String::from).collect();
    for n in enc.keyring().names() {
        if !names.iter().any(|m| m == n) {
            names.push(n.to_string());
        }
    }
    let tmp = data_dir.join(format!("{KEYS_USED_FILE}.tmp"));
    let written = std::fs::write(&tmp, names.join("\n") + "\n").and_then(|_| std::fs::rename(&tmp, &used_file));
    if let Err(e) = written {
        return Err(ServerError::DataDir {
            path: data_dir.to_path_buf(),
            reason: format!("cannot write {KEYS_USED_FILE}: {e}"),
        });
    }
    tracing::info!(path = %path.display(), key = enc.keyring().write_key(), "secrets are encrypted at rest");
    Ok(enc)
}

/// Re-reads the secrets key file every few seconds, so a rotation reaches a running
/// replica; stops with the replica.
async fn reload_keys(
    encryption: Arc<crate::api::encryption::Encryption>,
    mut leadership: tokio::sync::watch::Receiver<Leadership>,
) {
    let mut last_error = String::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = leadership.wait_for(|l| l.stopped) => return,
        }
        match encryption.reload() {
            Ok(true) => {
                last_error.clear();
                tracing::info!(key = encryption.keyring().write_key(), "secrets encryption keys changed");
            }
            Ok(false) => last_error.clear(),
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    tracing::error!(error = %e, "cannot re-read the secrets encryption keys; the keys in use stay");
                    last_error = e;
                }
            }
        }
    }
}

/// The client port's routes: the etcd gRPC services and plain HTTP health checks.
fn client_router(
    api: EtcdApi,
    resources: rk_proto::resources::resources_server::ResourcesServer<crate::api::grpc::ResourceService>,
) -> axum::Router {
    let grpc = tonic::service::Routes::new(etcd::kv::server(api.clone()))
        .add_service(resources)
        .add_service(etcd::watch::server(api.clone()))
        .add_service(etcd::lease::server(api.clone()))
        .add_service(etcd::cluster::server(api.clone()))
        .add_service(etcd::maintenance::server(api.clone()))
        .into_axum_router()
        .layer(axum::middleware::from_fn(grpc_auth));
    let health = api.raft.clone();
    grpc.route(
        "/health",
        axum::routing::get(move || {
            let raft = health.clone();
            async move {
                // etcd's health check: healthy when a linearizable read succeeds.
                match raft.read_index().await {
                    Ok(()) => (http::StatusCode::OK, r#"{"health":"true","reason":""}"#.to_string()),
                    Err(e) => (
                        http::StatusCode::SERVICE_UNAVAILABLE,
                        serde_json::json!({"health": "false", "reason": e.to_string()}).to_string(),
                    ),
                }
            }
        }),
    )
}

/// The etcd API (and rk's gRPC API) read and write the store beneath every check the
/// REST API makes, so on a TLS connection they need a client certificate in
/// `system:masters`, as etcd needs a client certificate its CA signed.
async fn grpc_auth(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let conn = req.extensions().get::<axum::extract::ConnectInfo<crate::tls::Conn>>().map(|c| c.0.clone());
    let Some(conn) = conn.filter(|c| c.tls) else { return next.run(req).await };
    match &conn.identity {
        Some(id) if id.groups.iter().any(|g| g == crate::api::rbac::MASTERS) => next.run(req).await,
        Some(id) => tonic::Status::permission_denied(format!(
            "{} may not use the etcd API: it needs a client certificate in group {}",
            id.user,
            crate::api::rbac::MASTERS
        ))
        .into_http::<axum::body::Body>()
        .into_response(),
        None => tonic::Status::unauthenticated(
            "the etcd API needs a client certificate the cluster CA signed (etcdctl --cacert --cert --key)",
        )
        .into_http::<axum::body::Body>()
        .into_response(),
    }
}

/// What no route serves: a gRPC call to a service rk does not have gets gRPC's
/// `UNIMPLEMENTED`; anything else gets kube-apiserver's plain 404 (not a gRPC
/// answer an HTTP client cannot read).
async fn not_found(req: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::unimplemented(format!("rk does not serve {}", req.uri().path())).into_http();
    }
    (http::StatusCode::NOT_FOUND, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], "404 page not found\n")
        .into_response()
}

/// Creates the namespaces and the `kubernetes` Service every Kubernetes cluster
/// has, once a leader is known.
/// Every replica tries; the store's compare-and-swap makes all but one a no-op.
async fn bootstrap_namespaces(api: crate::api::rest::Api, client_port: u16) {
    use crate::api::error::ApiError;
    let Some(res) = crate::api::registry::lookup("namespaces") else { return };
    let opts = crate::api::query::WriteOptions::default();
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        loop {
            if api.store.raft.leadership().stopped {
                return;
            }
            let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            match api.create(res, None, ns, &opts, "rk-server").await {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => break,
                Err(e) => {
                    tracing::debug!(namespace = name, error = %e, "cannot create a default namespace yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    // The default roles (cluster-admin, admin, edit, view, the system: ones).
    loop {
        if api.store.raft.leadership().stopped {
            return;
        }
        match crate::api::rbac::bootstrap(&api).await {
            Ok(()) => break,
            Err(e) => {
                tracing::debug!(error = %e, "cannot create the default roles yet; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    // The API's own Service, `kubernetes.default`, at the first address of the
    // service range, as every Kubernetes cluster has it (in-cluster clients and DNS
    // look for it). Its endpoints are the replicas (`controllers::apiserver`).
    let Some(services) = crate::api::registry::lookup("services") else { return };
    let svc = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": api.options.ranges.first(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": client_port}]},
    });
    loop {
        if api.store.raft.leadership().stopped {
            return;
        }
        match api.create(services, Some("default"), svc.clone(), &opts, "rk-server").await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => return,
            Err(e @ ApiError::Invalid { .. }) => {
                // Another replica may have just created it (its address is then taken).
                let exists = api
                    .get(services, Some("default"), "kubernetes", crate::api::store::Freshness::Latest)
                    .await
                    .is_ok();
                if !exists {
                    tracing::warn!(error = %e, "cannot create the kubernetes Service");
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot create the kubernetes Service yet; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Asks a running cluster to add this replica; returns its id, the cluster id and
/// the member list (so it can talk to its peers until the leader's snapshot arrives).
async fn join(
    addr: &str,
    id: Option<u64>,
    peer_url: &str,
    dialer: &crate::tls::Dialer,
) -> Result<(u64, u64, Vec<MemberInfo>), ServerError> {
    let fail = |reason: String| ServerError::Join { addr: addr.to_string(), reason };
    let uri = if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") };
    let endpoint = tonic::transport::Endpoint::from_shared(uri)
        .map_err(|e| fail(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30));
    let channel = dialer
        .channel(endpoint, crate::pki::API_SERVER_NAME)
        .await
        .map_err(|e| fail(format!("{}; is a member listening there?", crate::tls::chain(&e))))?;
    let mut client = ClusterClient::new(channel);
    let to_info = |m: &rk_proto::etcdserverpb::Member| MemberInfo {
        id: m.id,
        name: m.name.clone(),
        peer_urls: m.peer_ur_ls.clone(),
        client_urls: m.client_ur_ls.clone(),
        is_learner: m.is_learner,
    };
    // Added before (a restart after a crash, or `etcdctl member add`): reuse it.
    let list = client
        .member_list(MemberListRequest { linearizable: true })
        .await
        .map_err(|e| fail(e.message().to_string()))?
        .into_inner();
    let cluster_id = list.header.as_ref().map_or(0, |h| h.cluster_id);
    if let Some(m) = list.members.iter().find(|m| m.peer_ur_ls.iter().any(|u| u == peer_url)) {
        if id.is_some_and(|id| id != m.id) {
            return Err(fail(format!("{peer_url} is already member {}, not --id {}", m.id, id.unwrap_or(0))));
        }
        return Ok((m.id, cluster_id, list.members.iter().map(to_info).collect()));
    }
    let mut request =
        tonic::Request::new(MemberAddRequest { peer_ur_ls: vec![peer_url.to_string()], is_learner: false });
    if let Some(id) = id {
        let value = id.to_string().parse().map_err(|_| fail("bad id".into()))?;
        request.metadata_mut().insert(etcd::cluster::MEMBER_ID_HEADER, value);
    }
    let added = client.member_add(request).await.map_err(|e| fail(e.message().to_string()))?.into_inner();
    let member = added.member.ok_or_else(|| fail("the cluster did not say which id it gave us".into()))?;
    tracing::info!(id = member.id, "joined the cluster; waiting for the leader's snapshot");
    Ok((member.id, cluster_id, added.members.iter().map(to_info).collect()))
}

/// Publishes this replica's name and client address (for `member list`) once a
/// leader is known, and again whenever they differ from the replicated record.
async fn publish_attributes(raft: RaftHandle, name: String, client_urls: Vec<String>) {
    loop {
        let current = raft.shared.sm.read().members.get(&raft.shared.id).cloned();
        match current {
            Some(m) if m.name == name && m.client_urls == client_urls => return,
            Some(_) => {
                let attrs =
                    MemberAttributes { id: raft.shared.id, name: name.clone(), client_urls: client_urls.clone() };
                match raft.propose(Op::MemberAttributes(attrs)).await {
                    Ok(_) => return,
                    Err(ProposeError::Stopped) => return,
                    Err(e) => tracing::debug!(error = %e, "publishing member attributes failed; retrying"),
                }
            }
            // Not a member (yet): a joining replica waits for its snapshot.
            None if raft.leadership().stopped => return,
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// On the leader, compacts history older than `retention` (etcd's periodic mode):
/// samples the revision every tenth of the retention, and compacts to the newest
/// sample that is at least `retention` old.
async fn auto_compact(raft: RaftHandle, retention: Duration) {
    if retention.is_zero() {
        return;
    }
    let step = (retention / 10).max(Duration::from_millis(100));
    let mut samples: VecDeque<(tokio::time::Instant, i64)> = VecDeque::new();
    let mut tick = tokio::time::interval(step);
    loop {
        tick.tick().await;
        let leadership = raft.leadership();
        if leadership.stopped {
            return;
        }
        let now = tokio::time::Instant::now();
        let (rev, compacted) = {
            let sm = raft.shared.sm.read();
            (sm.mvcc.current_revision(), sm.mvcc.compact_revision())
        };
        samples.push_back((now, rev));
        let mut target = None;
        while let Some((at, r)) = samples.front().copied() {
            if now.duration_since(at) < retention {
                break;
            }
            target = Some(r);
            samples.pop_front();
        }
        if leadership.role != Role::Leader {
            continue;
        }
        if let Some(target) = target.filter(|t| *t > compacted) {
            match raft.propose(Op::Compaction(CompactionRequest { revision: target, physical: false })).await {
                Ok(_) => tracing::info!(revision = target, "auto-compacted the store's history"),
                Err(e) => tracing::debug!(error = %e, "auto-compaction failed; will retry"),
            }
        }
    }
}
