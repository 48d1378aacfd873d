//! Test and benchmark support for rk: start real `rk-server` processes on loopback
//! and break them on purpose.
//!
//! - [`Cluster`]: a cluster of rk-server processes, each replica on its own loopback
//!   address (127.a.b.N), with its own data directory under a temporary folder;
//!   replicas can be killed (SIGKILL), restarted, isolated and joined.
//! - [`proxy::FaultProxy`]: the peer traffic to every replica passes through a proxy
//!   that can refuse connections from chosen addresses, which is how partitions are
//!   made without root privileges.
//! - [`Agent`]: `rk-agent` node processes started with [`Cluster::start_agent`], each
//!   on its own loopback address in the cluster's subnet (127.a.b.101, .102, …), told
//!   about every replica so they fail over like real nodes.
//! - [`wait_for`]: poll a condition until a deadline (tests never sleep blindly).
//!
//! Binaries are found next to the test executable (`target/<profile>/rk-server`),
//! or in `$RK_BIN_DIR`. Build them first: `cargo build --workspace --bins`.

pub mod history;
pub mod images;
pub mod kubectl;
pub mod proxy;

use anyhow::{Context, Result, bail, ensure};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;
pub const PROXY_PORT: u16 = 2381;

/// Where the project's binaries are.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("RK_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/<test-binary> → target/<profile>
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn binary(name: &str) -> Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.exists() {
        bail!("{} is missing; build the binaries first with `make build`", path.display());
    }
    Ok(path)
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fails unless `python3` has the official Kubernetes client (`pip install kubernetes`).
pub fn require_python_client() -> Result<()> {
    let has_client =
        Command::new("python3").args(["-c", "import kubernetes"]).output().is_ok_and(|o| o.status.success());
    ensure!(has_client, "the Python kubernetes client is missing: pip install kubernetes (.ci/run installs it)");
    Ok(())
}

/// `etcd_client::Client::connect`, with a panic inside it turned into an error: the
/// crate (0.17) unwraps a channel send while connecting, which has been seen to fail
/// when a connect races a replica going away.
pub async fn connect_etcd(endpoint: String, opts: etcd_client::ConnectOptions) -> Result<etcd_client::Client> {
    match tokio::spawn(async move { etcd_client::Client::connect([endpoint], Some(opts)).await }).await {
        Ok(client) => Ok(client?),
        Err(e) => bail!("connecting to etcd panicked: {e}"),
    }
}

/// Where a cluster CA's certificate is.
fn ca_cert_file(pki_dir: &Path) -> PathBuf {
    pki_dir.join("ca.crt")
}

/// A loopback network of its own for each cluster: 127.<a>.<b>.0/24 with `a` from
/// the process id and `b` from a per-process counter, so tests running in parallel
/// (threads or processes) never share addresses or ports.
fn next_subnet() -> (u8, u8) {
    static COUNTER: AtomicU8 = AtomicU8::new(0);
    let a = 100 + (std::process::id() % 100) as u8;
    let b = COUNTER.fetch_add(1, Ordering::Relaxed);
    (a, b)
}

/// Whether a Node's `Ready` condition is True.
pub fn node_ready(n: &k8s_openapi::api::core::v1::Node) -> bool {
    let conditions = n.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// How many nodes are Ready (0 if the list fails).
pub async fn ready_nodes(nodes: &kube::Api<k8s_openapi::api::core::v1::Node>) -> usize {
    let Ok(list) = nodes.list(&kube::api::ListParams::default()).await else { return 0 };
    list.items.iter().filter(|n| node_ready(n)).count()
}

/// Waits (30 s at most) until at least `count` nodes are Ready.
pub async fn wait_nodes_ready(nodes: &kube::Api<k8s_openapi::api::core::v1::Node>, count: usize) -> Result<()> {
    wait_for(&format!("{count} nodes Ready"), Duration::from_secs(30), || async {
        (ready_nodes(nodes).await >= count).then_some(())
    })
    .await
}

/// A plain HTTP/1.1 GET: (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await??;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw);
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).context("no HTTP status line")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

/// A client's credentials for a TLS cluster, as `rk-server certs issue` writes them.
#[derive(Clone, Debug)]
pub struct Creds {
    pub user: String,
    /// Where `ca.crt`, `<user>.crt` and `<user>.key` are.
    pub dir: PathBuf,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Creds {
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn cert_file(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.user.replace([':', '/'], "-")))
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.join(format!("{}.key", self.user.replace([':', '/'], "-")))
    }

    /// etcd-client options that authenticate with these credentials.
    pub fn etcd_tls(&self) -> etcd_client::TlsOptions {
        etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(&self.ca_pem))
            .identity(etcd_client::Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name("kubernetes.default.svc")
    }

    /// A rustls client configuration trusting the cluster CA and presenting this
    /// certificate (`None`: present none).
    pub fn rustls(&self, present: bool) -> Result<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes())?)?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        Ok(if present {
            let chain = vec![rustls::pki_types::CertificateDer::from_pem_slice(self.cert_pem.as_bytes())?];
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())?;
            builder.with_client_auth_cert(chain, key)?
        } else {
            builder.with_no_client_auth()
        })
    }
}

impl Creds {
    /// Like [`Creds::rustls`] with this certificate presented, but taking any server
    /// certificate: node agents serve self-signed ones, as kubelets do.
    pub fn rustls_to_agents(&self) -> Result<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let chain = vec![rustls::pki_types::CertificateDer::from_pem_slice(self.cert_pem.as_bytes())?];
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())?;
        Ok(rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(rk_proto::join::AnyServerCert::new(provider)))
            .with_client_auth_cert(chain, key)?)
    }
}

/// A byte stream to a server: plain TCP or TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Connects to `host` (`ip:port`), with TLS when `tls` is given (the server's
/// certificate verified for the name `kubernetes.default.svc`, which every replica's has).
pub async fn connect_io(host: &str, tls: Option<std::sync::Arc<rustls::ClientConfig>>) -> Result<Box<dyn Io>> {
    let tcp = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(host)).await??;
    let Some(tls) = tls else { return Ok(Box::new(tcp)) };
    let name = rustls::pki_types::ServerName::try_from("kubernetes.default.svc")?;
    let stream = tokio::time::timeout(Duration::from_secs(5), tokio_rustls::TlsConnector::from(tls).connect(name, tcp))
        .await??;
    Ok(Box::new(stream))
}

/// An HTTP/1.1 request over TLS to `addr` (verified against `tls`'s CA with the name
/// `kubernetes.default.svc`): (status code, body).
pub async fn https_request(
    addr: SocketAddr,
    tls: rustls::ClientConfig,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect_io(&addr.to_string(), Some(std::sync::Arc::new(tls))).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    // A server may end TLS without close_notify once it has answered; what arrived counts.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await?;
    let text = String::from_utf8_lossy(&raw);
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).context("no HTTP status line")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

/// Options for the replicas of a test cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub replicas: usize,
    pub snapshot_entries: u64,
    pub snapshot_catchup_entries: u64,
    pub tick_ms: u64,
    pub extra_args: Vec<String>,
    /// A backup (`rk-server snapshot save`) the founding replicas start from, through
    /// `rk-server snapshot restore`.
    pub restore_from: Option<PathBuf>,
    /// The server binary in the build's directory: `rk-server`, or `rk-server-failpoints`
    /// (built by `make build`) for tests that arm crash points.
    pub server_binary: &'static str,
    /// Environment variables every replica starts with (see [`Replica::env`]).
    pub env: Vec<(String, String)>,
    /// `--insecure-dev`: plain TCP and no authentication (benchmarks that compare with
    /// plain etcd, and the security benchmark's baseline). Tests run with TLS.
    pub insecure: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            replicas: 3,
            snapshot_entries: 10_000,
            snapshot_catchup_entries: 5_000,
            tick_ms: 20,
            extra_args: vec![],
            restore_from: None,
            server_binary: "rk-server",
            env: vec![],
            insecure: false,
        }
    }
}

/// One replica process.
pub struct Replica {
    pub id: u64,
    pub ip: IpAddr,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    /// Environment variables for this replica's next start (e.g. `RK_FAILPOINTS`).
    pub env: Vec<(String, String)>,
}

impl Replica {
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, CLIENT_PORT)
    }

    pub fn endpoint(&self) -> String {
        self.client_addr().to_string()
    }

    /// The address peers dial: the fault proxy in front of the peer port.
    pub fn advertised_peer(&self) -> String {
        SocketAddr::new(self.ip, PROXY_PORT).to_string()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The process id, while a process has been started (it may have exited since).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// One `rk-agent` process: a node of the cluster.
pub struct Agent {
    /// The Node's name.
    pub name: String,
    /// The node's address (`--node-ip`); the agent serves logs/exec on port 10250 there.
    pub ip: IpAddr,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    args: Vec<String>,
    /// Docker runtime: what it started is removed when the agent is dropped.
    docker: bool,
    child: Option<Child>,
}

impl Agent {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The process id, while a process has been started (it may have exited since).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        let mut cmd = Command::new(binary("rk-agent")?);
        cmd.args(&self.args).stdin(Stdio::null()).stdout(Stdio::from(log.try_clone()?)).stderr(Stdio::from(log));
        self.child = Some(cmd.spawn().context("starting rk-agent")?);
        Ok(())
    }

    /// SIGKILL, as when a machine dies. Pods of the process runtime keep running (they
    /// are in their own process groups), like containers outliving a crashed kubelet;
    /// [`Agent::kill_pods`] ends them too.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every process the process runtime started for this node (a dead machine
    /// takes its containers with it).
    pub fn kill_pods(&self) {
        let root = self.data_dir.join("process").join("pods");
        for state in glob_states(&root) {
            if let Ok(text) = std::fs::read_to_string(&state)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(pid) = v["pid"].as_i64()
                && let Some(ticks) = v["proc_start_ticks"].as_u64()
                && leads_its_group_since(pid, ticks)
            {
                // The container runs in its own process group led by `pid`; checked
                // above, so a reused pid (or a 0 or 1) is never signalled. Not through
                // the `kill` program: procps-ng 4.0.2 (Debian 12) reads `kill -KILL
                // -1596` as process group -1, i.e. every process on the machine.
                if let Ok(pid) = i32::try_from(pid) {
                    let _ =
                        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }
}

/// Whether process `pid` still is the one started at `start_ticks` (field 22 of
/// `/proc/<pid>/stat`) and leads its own process group.
fn leads_its_group_since(pid: i64, start_ticks: u64) -> bool {
    if pid <= 1 || i64::from(std::process::id()) == pid {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The command name (field 2) is in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else { return false };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.get(2).and_then(|g| g.parse::<i64>().ok()) == Some(pid)
        && fields.get(19).and_then(|t| t.parse::<u64>().ok()) == Some(start_ticks)
}

/// `<root>/<pod uid>/containers/<name>/state.json` files of the process runtime.
fn glob_states(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pod in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for c in std::fs::read_dir(pod.path().join("containers")).into_iter().flatten().flatten() {
            let state = c.path().join("state.json");
            if state.exists() {
                out.push(state);
            }
        }
    }
    out
}

impl Agent {
    /// Docker runtime: removes every container this node started and its network
    /// (the network goes once no other node of the cluster uses it).
    fn remove_containers(&self) {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=io.rk.node={}", self.name)])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let ids: Vec<&str> = out.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(["rm", "-f", "-v"]).args(&ids).stdout(Stdio::null()).status();
        }
        if let Some(i) = self.args.iter().position(|a| a == "--docker-network")
            && let Some(net) = self.args.get(i + 1)
        {
            let _ = Command::new("docker")
                .args(["network", "rm", net])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Agent {
    /// The nftables table of this node's service proxy (see `rk_node_agent::proxy::nft`).
    pub fn proxy_table(&self) -> String {
        rk_node_agent::proxy::nft::table_name(&self.name, &self.ip.to_string())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        self.kill_pods();
        if self.docker {
            self.remove_containers();
        }
        // A killed agent cannot remove its service proxy's table; an agent that never
        // made one makes nft fail here, which is fine.
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.proxy_table()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A cluster of rk-server processes on loopback. Dropping it kills them all.
pub struct Cluster {
    pub replicas: Vec<Replica>,
    pub agents: Vec<Agent>,
    pub proxies: Vec<proxy::FaultProxy>,
    pub opts: ClusterOptions,
    /// The admin's credentials (`system:masters`), once the cluster CA exists; `None`
    /// for an `--insecure-dev` cluster.
    pub admin: Option<Creds>,
    subnet: (u8, u8),
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `opts.replicas` founding replicas and waits for a leader.
    pub async fn start(opts: ClusterOptions) -> Result<Cluster> {
        let subnet = next_subnet();
        let dir = tempfile::Builder::new().prefix("rk-test-").tempdir()?;
        let mut cluster = Cluster {
            replicas: Vec::new(),
            agents: Vec::new(),
            proxies: Vec::new(),
            opts: opts.clone(),
            admin: None,
            subnet,
            dir,
        };
        for i in 0..opts.replicas {
            cluster.add_replica_slot(i as u64 + 1).await?;
        }
        let peers: Vec<String> = cluster.replicas.iter().map(|r| format!("{}={}", r.id, r.advertised_peer())).collect();
        let peers = peers.join(",");
        if let Some(backup) = &opts.restore_from {
            for r in &cluster.replicas {
                let out = Command::new(binary("rk-server")?)
                    .args(["snapshot", "restore"])
                    .arg(backup)
                    .arg("--data-dir")
                    .arg(&r.data_dir)
                    .args(["--id", &r.id.to_string(), "--peers", &peers])
                    .output()?;
                ensure!(
                    out.status.success(),
                    "rk-server snapshot restore failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        for i in 0..cluster.replicas.len() {
            let args = vec!["--peers".to_string(), peers.clone()];
            cluster.replicas[i].extra = args;
            cluster.spawn(i)?;
        }
        if !opts.insecure {
            // The first replica creates the cluster CA; the admin's certificate comes
            // from it, as `rk-server certs issue` gives it to a user.
            let ca = ca_cert_file(&cluster.pki_dir());
            wait_for("the cluster CA", Duration::from_secs(20), || async { ca.exists().then_some(()) }).await?;
            cluster.admin = Some(cluster.issue_creds("admin", &["system:masters"])?);
        }
        cluster.wait_leader(Duration::from_secs(20)).await?;
        // Every replica's API is ready (its bootstrap namespaces exist), so tests
        // never race the server's own start-up writes.
        for i in 0..cluster.replicas.len() {
            let c = &cluster;
            wait_for("the API's /readyz", Duration::from_secs(20), || async move {
                c.get(i, "/readyz").await.ok().filter(|(code, _)| *code == 200).map(|_| ())
            })
            .await?;
        }
        Ok(cluster)
    }

    /// The cluster CA's directory, shared by the founding replicas.
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// Credentials for `user` in `groups`, issued from the cluster CA with `rk-server
    /// certs issue`.
    pub fn issue_creds(&self, user: &str, groups: &[&str]) -> Result<Creds> {
        let dir = self.dir.path().join(format!("creds-{}", user.replace([':', '/'], "-")));
        let out = Command::new(binary("rk-server")?)
            .args(["certs", "issue", "--user", user, "--group", &groups.join(",")])
            .arg("--pki-dir")
            .arg(self.pki_dir())
            .arg("--out-dir")
            .arg(&dir)
            .output()?;
        ensure!(out.status.success(), "rk-server certs issue failed: {}", String::from_utf8_lossy(&out.stderr));
        let file = user.replace([':', '/'], "-");
        let read = |name: String| std::fs::read_to_string(dir.join(&name)).with_context(|| name.clone());
        Ok(Creds {
            user: user.to_string(),
            ca_pem: read("ca.crt".into())?,
            cert_pem: read(format!("{file}.crt"))?,
            key_pem: read(format!("{file}.key"))?,
            dir,
        })
    }

    /// A GET of `path` on replica `i`'s client port as the admin (plain HTTP on an
    /// `--insecure-dev` cluster): (status code, body).
    pub async fn get(&self, i: usize, path: &str) -> Result<(u16, String)> {
        let addr = self.replicas[i].client_addr();
        match &self.admin {
            Some(creds) => https_request(addr, creds.rustls(true)?, "GET", path, &[]).await,
            None => http_get(addr, path).await,
        }
    }

    /// etcd-client options for this cluster (TLS with the admin's certificate).
    pub fn etcd_options(&self) -> etcd_client::ConnectOptions {
        let opts = etcd_client::ConnectOptions::new();
        match &self.admin {
            Some(creds) => opts.with_tls(creds.etcd_tls()),
            None => opts,
        }
    }

    /// `https` or `http` (an `--insecure-dev` cluster).
    pub fn scheme(&self) -> &'static str {
        if self.opts.insecure { "http" } else { "https" }
    }

    fn ip(&self, id: u64) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, self.subnet.0, self.subnet.1, id as u8))
    }

    async fn add_replica_slot(&mut self, id: u64) -> Result<usize> {
        let ip = self.ip(id);
        let data_dir = self.dir.path().join(format!("r{id}"));
        let log_path = self.dir.path().join(format!("r{id}.log"));
        let proxy = proxy::FaultProxy::start(SocketAddr::new(ip, PROXY_PORT), SocketAddr::new(ip, PEER_PORT)).await?;
        self.proxies.push(proxy);
        self.replicas.push(Replica {
            id,
            ip,
            data_dir,
            log_path,
            child: None,
            extra: vec![],
            env: self.opts.env.clone(),
        });
        Ok(self.replicas.len() - 1)
    }

    /// Starts (or restarts) replica `i`'s process.
    /// The secrets encryption key file every replica shares (the first to start makes it).
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("secrets.key")
    }

    pub fn spawn(&mut self, i: usize) -> Result<()> {
        let bin = binary(self.opts.server_binary)?;
        let key_file = self.key_file();
        let pki_dir = self.pki_dir().display().to_string();
        let o = &self.opts;
        let r = &mut self.replicas[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&r.log_path)?;
        let mut cmd = Command::new(bin);
        cmd.arg("--id")
            .arg(r.id.to_string())
            .arg("--data-dir")
            .arg(&r.data_dir)
            .arg("--listen")
            .arg(SocketAddr::new(r.ip, CLIENT_PORT).to_string())
            .arg("--peer-listen")
            .arg(SocketAddr::new(r.ip, PEER_PORT).to_string())
            .arg("--advertise-peer")
            .arg(r.advertised_peer())
            .arg("--tick-ms")
            .arg(o.tick_ms.to_string())
            .arg("--snapshot-entries")
            .arg(o.snapshot_entries.to_string())
            .arg("--snapshot-catchup-entries")
            .arg(o.snapshot_catchup_entries.to_string())
            .arg("--log-level")
            .arg("info")
            // A replica given its own files (one joining with a token) keeps them.
            .args(if r.extra.iter().any(|a| a == "--encryption-key-file") {
                vec![]
            } else {
                vec!["--encryption-key-file".into(), key_file.display().to_string()]
            })
            .args(match (o.insecure, r.extra.iter().any(|a| a == "--pki-dir")) {
                (true, _) => vec!["--insecure-dev".into()],
                (false, true) => vec![],
                (false, false) => vec!["--pki-dir".into(), pki_dir],
            })
            .args(&r.extra)
            .args(&o.extra_args)
            .envs(r.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        r.child = Some(cmd.spawn().context("starting rk-server")?);
        Ok(())
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.replicas[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a killed replica again with the same data directory.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i);
        self.spawn(i)
    }

    /// Adds a new replica to the running cluster with `rk-server --join`.
    pub async fn join_new(&mut self) -> Result<usize> {
        let id = self.replicas.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        let i = self.add_replica_slot(id).await?;
        let running = self.running();
        let via = running.first().map(|i| self.replicas[*i].endpoint()).context("no running replica")?;
        self.replicas[i].extra = vec!["--join".into(), via];
        self.spawn(i)?;
        Ok(i)
    }

    /// Adds a new replica with `rk-server --join ADDR --join-token TOKEN` and a PKI
    /// directory and secrets key file of its own, both missing: it gets them with the token.
    pub async fn join_new_with_token(&mut self, token: &str) -> Result<usize> {
        let id = self.replicas.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        let i = self.add_replica_slot(id).await?;
        let running = self.running();
        let via = running.first().map(|i| self.replicas[*i].endpoint()).context("no running replica")?;
        let (pki, keys) = self.own_secrets(i);
        self.replicas[i].extra = vec![
            "--join".into(),
            via,
            "--join-token".into(),
            token.into(),
            "--pki-dir".into(),
            pki.display().to_string(),
            "--encryption-key-file".into(),
            keys.display().to_string(),
        ];
        self.spawn(i)?;
        Ok(i)
    }

    /// Where replica `i` keeps its own PKI directory and secrets key file when it has
    /// its own (see [`Cluster::join_new_with_token`]).
    pub fn own_secrets(&self, i: usize) -> (PathBuf, PathBuf) {
        let id = self.replicas[i].id;
        (self.dir.path().join(format!("r{id}-pki")), self.dir.path().join(format!("r{id}.secrets-key")))
    }

    pub fn running(&mut self) -> Vec<usize> {
        (0..self.replicas.len()).filter(|i| self.replicas[*i].is_running()).collect()
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.endpoint()).collect()
    }

    /// A client for one replica only.
    pub async fn client(&self, i: usize) -> Result<etcd_client::Client> {
        let opts =
            self.etcd_options().with_connect_timeout(Duration::from_secs(2)).with_timeout(Duration::from_secs(10));
        connect_etcd(self.replicas[i].endpoint(), opts).await
    }

    /// Replica `i`'s own view: (leader id, raft term), if it answers.
    pub async fn status(&self, i: usize) -> Option<(u64, u64)> {
        let opts =
            self.etcd_options().with_connect_timeout(Duration::from_secs(1)).with_timeout(Duration::from_secs(1));
        let mut c = connect_etcd(self.replicas[i].endpoint(), opts).await.ok()?;
        let s = c.status().await.ok()?;
        Some((s.leader(), s.raft_term()))
    }

    /// Waits until all running replicas agree on a leader; returns its index.
    pub async fn wait_leader(&mut self, timeout: Duration) -> Result<usize> {
        let running = self.running();
        self.wait_leader_among(&running, timeout).await
    }

    /// Waits until the given replicas agree on one leader among them.
    pub async fn wait_leader_among(&self, among: &[usize], timeout: Duration) -> Result<usize> {
        let ids: Vec<u64> = among.iter().map(|i| self.replicas[*i].id).collect();
        // What each replica said last (leader, term), for the error if they never agree.
        let last = parking_lot::Mutex::new(vec![None; among.len()]);
        let found = wait_for("an agreed leader", timeout, || async {
            let mut views = Vec::new();
            for (k, i) in among.iter().enumerate() {
                let view = self.status(*i).await;
                last.lock()[k] = view;
                views.push(view?);
            }
            let (leader, term) = views[0];
            (leader != 0 && ids.contains(&leader) && views.iter().all(|v| *v == (leader, term))).then_some(leader)
        })
        .await
        .with_context(|| format!("replicas {ids:?} last said (leader, term) {:?}", last.lock()))?;
        self.replicas.iter().position(|r| r.id == found).context("leader is not a known replica")
    }

    /// Cuts replica `i` off from every other replica (both directions); clients can
    /// still reach it.
    pub fn isolate(&self, i: usize) {
        let ip = self.replicas[i].ip;
        self.proxies[i].set_down(true);
        for (j, p) in self.proxies.iter().enumerate() {
            if j != i {
                p.block(ip);
            }
        }
    }

    pub fn heal(&self) {
        for p in &self.proxies {
            p.set_down(false);
            p.unblock_all();
        }
    }

    /// Everything the replicas and agents logged, for failure messages.
    pub fn logs(&self) -> String {
        let replicas = self.replicas.iter().map(|r| format!("=== replica {} ===\n{}", r.id, r.log()));
        let agents = self.agents.iter().map(|a| format!("=== agent {} ===\n{}", a.name, a.log()));
        replicas.chain(agents).collect::<Vec<_>>().join("\n")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a kubeconfig whose current context talks to replica `i` as the admin.
    pub fn kubeconfig(&self, i: usize) -> Result<PathBuf> {
        self.kubeconfig_as(i, self.admin.as_ref())
    }

    /// Writes a kubeconfig whose current context talks to replica `i` with `creds`
    /// (the CA, certificate and key by file, as users often have them).
    pub fn kubeconfig_as(&self, i: usize, creds: Option<&Creds>) -> Result<PathBuf> {
        let user = creds.map_or("anonymous".to_string(), |c| c.user.replace([':', '/'], "-"));
        let path = self.dir.path().join(format!("kubeconfig-{i}-{user}"));
        let server = self.api_url(i);
        let (ca, user) = match creds {
            Some(c) => (
                format!("\n    certificate-authority: {}", c.ca_file().display()),
                format!(
                    "\n    client-certificate: {}\n    client-key: {}",
                    c.cert_file().display(),
                    c.key_file().display()
                ),
            ),
            None => (String::new(), " {}".to_string()),
        };
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: rk\n  cluster:\n    server: {server}{ca}\n\
                 contexts:\n- name: rk\n  context:\n    cluster: rk\n    user: rk\n    namespace: default\n\
                 current-context: rk\nusers:\n- name: rk\n  user:{user}\n"
            ),
        )?;
        Ok(path)
    }

    /// A `kube` client for replica `i`'s API (through [`Cluster::kubeconfig`]).
    pub async fn kube_client(&self, i: usize) -> Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig(i)?)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Starts a node agent with the given runtime (`process`, `hollow` or `docker`) and
    /// extra flags; returns its index in `agents`. It is named `node-<k>` and talks to
    /// every replica, starting with replica `k % replicas`.
    pub fn start_agent(&mut self, runtime: &str, extra: &[&str]) -> Result<usize> {
        let k = self.agents.len();
        let mut ip = IpAddr::V4(Ipv4Addr::new(127, self.subnet.0, self.subnet.1, 101 + k as u8));
        // `--node-ip IP` in `extra` replaces the loopback address (which the API refuses
        // as an endpoint address, as Kubernetes does); the agent also listens there.
        let mut extra: Vec<&str> = extra.to_vec();
        if let Some(i) = extra.iter().position(|a| *a == "--node-ip")
            && let Some(given) = extra.get(i + 1)
        {
            ip = given.parse().with_context(|| format!("--node-ip {given}"))?;
            extra.drain(i..=i + 1);
        }
        // Docker runtimes on one engine see each other's containers, told apart by node
        // name: make those names unique to this cluster.
        let name = if runtime == "docker" {
            format!("t{}x{}-node-{k}", self.subnet.0, self.subnet.1)
        } else {
            format!("node-{k}")
        };
        let n = self.replicas.len();
        let servers: Vec<String> = (0..n).map(|j| self.api_url((k + j) % n)).collect();
        // The node's own credentials, as a user gives them: `rk-server certs kubeconfig`.
        // A hollow agent plays many nodes with one certificate, so it cannot be one node's
        // (the node authorizer would hold it to that name): it is in system:nodes, and
        // RBAC's system:node role is what it may do.
        let user = if runtime == "hollow" { format!("rk:hollow-nodes:{name}") } else { format!("system:node:{name}") };
        // An agent told to `--join` with a token gets its credentials itself.
        let joins = extra.contains(&"--join");
        let kubeconfig = if self.opts.insecure || joins {
            None
        } else {
            let path = self.dir.path().join(format!("{name}.kubeconfig"));
            let out = Command::new(binary("rk-server")?)
                .args(["certs", "kubeconfig", "--user", &user, "--group", "system:nodes"])
                .arg("--pki-dir")
                .arg(self.pki_dir())
                .arg("--server")
                .arg(servers.join(","))
                .arg("--out")
                .arg(&path)
                .output()?;
            ensure!(
                out.status.success(),
                "rk-server certs kubeconfig failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(path)
        };
        let data_dir = self.dir.path().join(&name);
        let log_path = self.dir.path().join(format!("{name}.log"));
        let mut args: Vec<String> = vec![
            "--server".into(),
            servers.join(","),
            "--name".into(),
            name.clone(),
            "--runtime".into(),
            runtime.into(),
            "--node-ip".into(),
            ip.to_string(),
            "--listen".into(),
            SocketAddr::new(ip, 10250).to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--lease-renew-interval".into(),
            "1s".into(),
            "--log-level".into(),
            "info".into(),
        ];
        if let Some(path) = kubeconfig {
            args.extend(["--kubeconfig".to_string(), path.display().to_string()]);
        }
        if runtime == "docker" {
            args.extend(["--docker-network".to_string(), format!("rk-test-{}-{}", self.subnet.0, self.subnet.1)]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let docker = runtime == "docker";
        let mut agent = Agent { name, ip, data_dir, log_path, args, docker, child: None };
        agent.spawn()?;
        self.agents.push(agent);
        Ok(k)
    }

    /// A join token from `rk-server token create` (valid for `ttl`, e.g. `10m`).
    pub fn join_token(&self, ttl: &str) -> Result<String> {
        self.join_token_with(ttl, &[])
    }

    /// A join token from `rk-server token create` with `flags` (e.g. `--replica`).
    pub fn join_token_with(&self, ttl: &str, flags: &[&str]) -> Result<String> {
        let out = Command::new(binary("rk-server")?)
            .args(["token", "create", "--ttl", ttl, "--endpoint", &self.replicas[0].endpoint()])
            .args(flags)
            .arg("--pki-dir")
            .arg(self.pki_dir())
            .output()?;
        ensure!(out.status.success(), "rk-server token create failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().next().context("rk-server token create printed nothing")?.to_string())
    }

    /// Starts a killed agent again with the same data directory (it adopts its pods).
    pub fn restart_agent(&mut self, k: usize) -> Result<()> {
        self.agents[k].kill();
        self.agents[k].spawn()
    }

    /// The base URL of replica `i`'s Kubernetes API.
    pub fn api_url(&self, i: usize) -> String {
        format!("{}://{}", self.scheme(), self.replicas[i].endpoint())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Agents first (their drop ends their pods), while the API is still up.
        // Logs go to stderr on a panic, or always with RK_TEST_LOGS set (a test that
        // returns an error does not panic).
        let show = std::thread::panicking() || std::env::var_os("RK_TEST_LOGS").is_some();
        let logs = if show { self.logs() } else { String::new() };
        self.agents.clear();
        for i in 0..self.replicas.len() {
            self.kill(i);
        }
        if show {
            eprintln!("{logs}");
        }
    }
}
