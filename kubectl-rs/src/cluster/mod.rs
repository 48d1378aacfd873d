//! `rkctl cluster up|down|list|status`: local clusters in one command, like kind.
//!
//! ```text
//!  up ──► check flags ─► mkdir <state>/clusters/<name> (the lock; exists → refuse)
//!         ─► driver: plan addresses, start replicas, wait for the API, start nodes
//!         ─► wait for the nodes to register (and with --wait, to be Ready)
//!         ─► kubeconfig: cluster/user/context rk-<name>, current-context
//!         any failure ─► stop what started, keep the logs, remove the directory
//!  down ─► driver: stop nodes, their pods, replicas (verified pids only)
//!         ─► kubeconfig entries removed ─► directory removed
//! ```
//!
//! Parts: [`state`] (where clusters live, `cluster.json`), [`process`] (the process
//! driver: every replica and node a local process), [`docker`] (the docker driver:
//! every replica and node a container on a network of the cluster's own, pods
//! containers beside them), [`kubeconfig`] (merging and removing the `rk-<name>`
//! entries), [`progress`] (step lines and spinners).
//!
//! Drivers: a driver implements [`Driver`] (prepare, plan, start, check, stop,
//! is_running, pods) over the shared [`state::ClusterRecord`]; the orchestration
//! here (flags, the directory lock, waits, kubeconfig, clean-up, output) is shared.
//! [`driver_for`] picks one by name (`--driver`, or the `driver` of a record).

pub mod docker;
pub mod kubeconfig;
pub mod process;
pub mod progress;
pub mod state;

use crate::cli::{ClusterCommand, ClusterDriver, ClusterUpArgs, GlobalArgs};
use crate::client::{Client, Request};
use crate::tabwriter::TabWriter;
use progress::Progress;
use state::{ClusterRecord, ProcessRecord};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most nodes a local cluster may have: each is a process with a loopback address
/// 127.42.B.101 and up, so the /24 bounds it well above what a laptop runs.
pub const MAX_NODES: u32 = 100;
/// Without `--wait`, `up` still waits this long for every node to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);
/// `--wait` without a value.
pub const DEFAULT_WAIT: &str = "60s";
/// How often waits poll.
const POLL: Duration = Duration::from_millis(25);

/// What a cluster command can fail with; each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "invalid cluster name {0:?}: use at most 40 lower-case letters, digits and '-', starting and ending with a letter or digit"
    )]
    BadName(String),
    #[error("--replicas must be 1, 3 or 5 (raft needs an odd number of replicas for a majority), not {0}")]
    BadReplicas(u32),
    #[error("--nodes must be between 1 and {MAX_NODES}, not {0}")]
    BadNodes(u32),
    #[error("invalid --wait {0:?}: use a duration like 60s, 2m or 500ms")]
    BadWait(String),
    #[error("unknown driver {0:?} (known: process, docker)")]
    UnknownDriver(String),
    #[error("Docker does not answer: {0}; start the Docker daemon (or use --driver process)")]
    DockerUnavailable(String),
    #[error("docker {step} failed: {message}")]
    Docker { step: String, message: String },
    #[error("cannot build the image {image}: {0}", image = docker::IMAGE)]
    ImageBuild(String),
    #[error(
        "no static busybox for the image {image} ({0}); set RK_BUSYBOX to a static busybox binary (Debian: `apt-get download busybox-static`)",
        image = docker::IMAGE
    )]
    NoBusybox(String),
    #[error(
        "no free subnet 10.242.x.0/24 for the cluster's Docker network: every candidate overlaps a Docker network or another cluster; `docker network ls` shows them"
    )]
    NoSubnet,
    #[error(
        "cluster {0:?} already exists; `rkctl cluster status --name {0}` shows it, `rkctl cluster down --name {0}` deletes it"
    )]
    Exists(String),
    #[error("no cluster named {0:?}; `rkctl cluster list` shows the local clusters")]
    Unknown(String),
    #[error("cannot tell where to keep cluster state: set RK_STATE_DIR (or XDG_STATE_HOME or HOME)")]
    NoStateDir,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {reason} (remove that folder if no process of the cluster runs any more)")]
    BadRecord { path: PathBuf, reason: String },
    #[error(
        "cannot find {name} (looked in {looked}); build it with `cargo build --release --workspace --bins`, or set RK_BIN_DIR to the folder holding it"
    )]
    MissingBinary { name: String, looked: String },
    #[error("no free loopback subnet 127.42.x.0/24 for the cluster: every candidate has a port in use")]
    NoAddress,
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} exited while starting{status}: {last_line} (see {})", log.display())]
    Exited { what: String, status: String, last_line: String, log: PathBuf },
    #[error("timed out after {}s waiting for {what} (see {logs})", waited.as_secs())]
    Timeout { what: String, waited: Duration, logs: String },
    #[error("the API server: {0}")]
    Api(String),
    #[error("{cause}; the partly started cluster was removed{}", logs.as_ref().map(|l| format!(", its logs are kept in {}", l.display())).unwrap_or_default())]
    StartFailed { cause: String, logs: Option<PathBuf> },
    #[error("interrupted")]
    Interrupted,
    #[error("could not stop {0}; stop it by hand, then run `rkctl cluster down` again")]
    StillRunning(String),
    #[error(transparent)]
    Kubeconfig(#[from] crate::kubeconfig::KubeconfigError),
}

impl ClusterError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ClusterError::Io { path: path.to_path_buf(), source }
    }
}

// === drivers ===

/// What `up` is asked to create.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub replicas: u8,
    pub nodes: u8,
    /// Addresses other clusters' records hold (they may be stopped, but their
    /// subnet stays theirs).
    pub taken: Vec<String>,
}

/// What `stop` did.
#[derive(Debug, Default)]
pub struct Stopped {
    /// Replicas and nodes that were running.
    pub daemons: usize,
    /// Pod processes (or containers) that were running.
    pub pods: usize,
}

/// How a kind of cluster runs its replicas and nodes. Everything around it (flags,
/// the directory lock, waiting for nodes, the kubeconfig, clean-up after a failure,
/// output) is this module's, the same for every driver.
///
/// Crate-private: `async fn` in a public trait would promise callers nothing about
/// `Send`, and nothing outside rkctl implements drivers.
pub(crate) trait Driver {
    /// Checks what it needs (binaries, an engine) before anything is created.
    fn prepare(&mut self) -> Result<(), ClusterError>;
    /// Chooses addresses and folders and records them in `dir`; starts nothing.
    fn plan(&mut self, spec: &Spec, dir: &Path) -> Result<ClusterRecord, ClusterError>;
    /// Starts the replicas, waits until they serve the API, then starts the nodes,
    /// keeping the record in `dir` current after every start (so an interrupted
    /// `up` can be cleaned up).
    async fn start(&mut self, rec: &mut ClusterRecord, dir: &Path, progress: &Progress) -> Result<(), ClusterError>;
    /// Fails if something this instance started has exited; waits call it on
    /// every poll, so a crash ends the wait at once with the cause.
    fn check(&mut self) -> Result<(), ClusterError>;
    /// Stops every node, pod and replica of the cluster; fails if any still runs.
    async fn stop(&mut self, rec: &ClusterRecord) -> Result<Stopped, ClusterError>;
    /// Whether this replica or node still runs.
    fn is_running(&self, p: &ProcessRecord) -> bool;
    /// How many pods run on this node.
    fn pods(&self, node: &ProcessRecord) -> usize;
}

/// Any driver, chosen at run time (`Driver` has `async fn`s, so no `dyn Driver`).
#[derive(Debug)]
enum AnyDriver {
    Process(process::ProcessDriver),
    Docker(Box<docker::DockerDriver>),
}

/// The driver called `name` (from `--driver` or a cluster's record).
fn driver_for(name: &str) -> Result<AnyDriver, ClusterError> {
    match name {
        "process" => Ok(AnyDriver::Process(process::ProcessDriver::default())),
        "docker" => Ok(AnyDriver::Docker(Box::default())),
        other => Err(ClusterError::UnknownDriver(other.to_string())),
    }
}

impl Driver for AnyDriver {
    fn prepare(&mut self) -> Result<(), ClusterError> {
        match self {
            AnyDriver::Process(d) => d.prepare(),
            AnyDriver::Docker(d) => d.prepare(),
        }
    }

    fn plan(&mut self, spec: &Spec, dir: &Path) -> Result<ClusterRecord, ClusterError> {
        match self {
            AnyDriver::Process(d) => d.plan(spec, dir),
            AnyDriver::Docker(d) => d.plan(spec, dir),
        }
    }

    async fn start(&mut self, rec: &mut ClusterRecord, dir: &Path, progress: &Progress) -> Result<(), ClusterError> {
        match self {
            AnyDriver::Process(d) => d.start(rec, dir, progress).await,
            AnyDriver::Docker(d) => d.start(rec, dir, progress).await,
        }
    }

    fn check(&mut self) -> Result<(), ClusterError> {
        match self {
            AnyDriver::Process(d) => d.check(),
            AnyDriver::Docker(d) => d.check(),
        }
    }

    async fn stop(&mut self, rec: &ClusterRecord) -> Result<Stopped, ClusterError> {
        match self {
            AnyDriver::Process(d) => d.stop(rec).await,
            AnyDriver::Docker(d) => d.stop(rec).await,
        }
    }

    fn is_running(&self, p: &ProcessRecord) -> bool {
        match self {
            AnyDriver::Process(d) => d.is_running(p),
            AnyDriver::Docker(d) => d.is_running(p),
        }
    }

    fn pods(&self, node: &ProcessRecord) -> usize {
        match self {
            AnyDriver::Process(d) => d.pods(node),
            AnyDriver::Docker(d) => d.pods(node),
        }
    }
}

/// The admin kubeconfig `up` has `rk-server certs kubeconfig` write into the cluster's
/// folder (the CA and a `system:masters` certificate); rkctl's own calls use it.
pub const ADMIN_KUBECONFIG: &str = "admin.kubeconfig";

/// A client for one replica at `url`, with short timeouts (a replica that does not
/// answer at once is retried rather than waited on), authenticated with the admin
/// kubeconfig in the cluster's folder `dir`.
pub async fn api_client(dir: &Path, url: &str) -> Result<Client, ClusterError> {
    let uri: http::Uri = url.parse().map_err(|e| ClusterError::Api(format!("invalid address {url:?}: {e}")))?;
    let admin = dir.join(ADMIN_KUBECONFIG);
    let mut config = if admin.exists() {
        let kc = kube::config::Kubeconfig::read_from(&admin)
            .map_err(|e| ClusterError::Api(format!("{}: {e}", admin.display())))?;
        let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| ClusterError::Api(format!("{}: {e}", admin.display())))?;
        config.cluster_url = uri;
        config
    } else {
        kube::Config::new(uri)
    };
    config.connect_timeout = Some(Duration::from_secs(1));
    config.read_timeout = Some(Duration::from_secs(3));
    Client::new(config).map_err(|e| ClusterError::Api(e.line()))
}

/// Once the first replica has made the cluster CA (`ca_file` appears), has `rk-server
/// certs kubeconfig` (the user's own way to credentials) issue the admin kubeconfig,
/// written into `dir`, and each node's, written into its data folder
/// (`<data>/kubeconfig`). `certs` runs `rk-server certs ARGS…` where the CA is (the
/// local binary, or `docker exec` in a replica container) and returns what it printed.
pub async fn issue_credentials(
    ca_file: &Path,
    certs: &dyn Fn(&[String]) -> Result<String, ClusterError>,
    dir: &Path,
    rec: &ClusterRecord,
    alive: &mut dyn FnMut() -> Result<(), ClusterError>,
) -> Result<(), ClusterError> {
    wait(CA_TIMEOUT, "the cluster CA", "replica-1.log", alive, || async { ca_file.exists() }).await?;
    let issue = |user: &str, group: &str, servers: String, out: &Path| -> Result<(), ClusterError> {
        let args = ["kubeconfig", "--user", user, "--group", group, "--server", &servers, "--name", &rec.context];
        let text = certs(&args.map(String::from))?;
        write_private(out, &text)
    };
    issue("admin", "system:masters", node_servers(rec, 0), &dir.join(ADMIN_KUBECONFIG))?;
    for (k, n) in rec.nodes.iter().enumerate() {
        std::fs::create_dir_all(&n.data_dir).map_err(|e| ClusterError::io(&n.data_dir, e))?;
        issue(&format!("system:node:{}", n.name), "system:nodes", node_servers(rec, k), &node_kubeconfig(n))?;
    }
    Ok(())
}

/// How long the first replica may take to make the cluster CA.
const CA_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `text` to `path`, readable by its owner only (it holds a private key).
fn write_private(path: &Path, text: &str) -> Result<(), ClusterError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ClusterError::io(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| ClusterError::io(path, e))
}

/// Runs `bin certs ARGS…` and returns what it printed, or its error as one line.
pub fn run_certs(bin: &Path, prefix: &[String], args: &[String]) -> Result<String, ClusterError> {
    let output = std::process::Command::new(bin)
        .args(prefix)
        .arg("certs")
        .args(args)
        .args(["--out", "-"])
        .output()
        .map_err(|e| ClusterError::io(bin, e))?;
    if !output.status.success() {
        return Err(ClusterError::Api(format!(
            "rk-server certs failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Where a node's kubeconfig is: in its data folder (which the docker driver mounts at
/// the same path).
pub fn node_kubeconfig(n: &ProcessRecord) -> PathBuf {
    n.data_dir.join("kubeconfig")
}

/// The agent flags serving Ingress on `ip` (plain HTTP and TLS).
pub fn ingress_args(ip: &str, ports: state::IngressPorts) -> [String; 4] {
    [
        "--ingress-listen".into(),
        format!("{ip}:{}", ports.http),
        "--ingress-tls-listen".into(),
        format!("{ip}:{}", ports.https),
    ]
}

/// The replicas' API URLs, comma-separated, starting with replica `k % replicas`: each
/// node starts with a different one (spreading the watches) and fails over to the others.
pub fn node_servers(rec: &ClusterRecord, k: usize) -> String {
    let urls: Vec<String> = rec.replicas.iter().map(|r| format!("https://{}:{}", r.ip, r.port)).collect();
    (0..urls.len()).map(|j| urls[(k + j) % urls.len()].clone()).collect::<Vec<_>>().join(",")
}

/// Polls `check` until it holds, failing early when `alive` reports that something
/// started has exited, or after `timeout` (naming `logs` to look at).
/// Waits until every replica answers `/readyz` (a raft leader and a quorum), failing at
/// once when `alive` reports a process that died; `logs` says where to look on a timeout.
pub async fn wait_replicas_ready(
    timeout: Duration,
    clients: &[Client],
    logs: &str,
    alive: &mut dyn FnMut() -> Result<(), ClusterError>,
) -> Result<(), ClusterError> {
    wait(timeout, "every replica to serve the API (a raft leader and a quorum)", logs, alive, || async {
        for c in clients {
            if c.send(crate::client::Request::get("/readyz")).await.is_err() {
                return false;
            }
        }
        true
    })
    .await
}

pub async fn wait<F, Fut>(
    timeout: Duration,
    what: &str,
    logs: &str,
    alive: &mut dyn FnMut() -> Result<(), ClusterError>,
    mut check: F,
) -> Result<(), ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        alive()?;
        if check().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::Timeout { what: what.to_string(), waited: timeout, logs: logs.to_string() });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Moves the cluster's logs out of `dir` (which is about to be removed) into a new
/// folder under the temporary directory, and returns that folder.
fn keep_logs(name: &str, dir: &Path) -> Option<PathBuf> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let to = std::env::temp_dir().join(format!("rk-cluster-{name}-logs-{stamp}"));
    std::fs::create_dir_all(&to).ok()?;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let target = to.join(entry.file_name());
            // A rename fails across file systems; copying is enough then.
            if std::fs::rename(&path, &target).is_err() {
                let _ = std::fs::copy(&path, &target);
            }
        }
    }
    Some(to)
}

pub async fn run(g: &GlobalArgs, cmd: &ClusterCommand) -> Result<(), ClusterError> {
    match cmd {
        ClusterCommand::Up(args) => up(g, args).await,
        ClusterCommand::Down { name } => down(g, name).await,
        ClusterCommand::List => list(),
        ClusterCommand::Status { name } => status(name).await,
        ClusterCommand::Certs { name } => certs(name).await,
    }
}

/// Cluster names become directory names, node names (`<name>-node-1`) and a
/// kubeconfig context (`rk-<name>`): a DNS label keeps all three valid.
pub fn check_name(name: &str) -> Result<(), ClusterError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok { Ok(()) } else { Err(ClusterError::BadName(name.to_string())) }
}

fn cluster_dir(name: &str) -> Result<PathBuf, ClusterError> {
    check_name(name)?;
    Ok(state::clusters_dir()?.join(name))
}

// === up ===

async fn up(g: &GlobalArgs, args: &ClusterUpArgs) -> Result<(), ClusterError> {
    check_name(&args.name)?;
    if ![1, 3, 5].contains(&args.replicas) {
        return Err(ClusterError::BadReplicas(args.replicas));
    }
    if !(1..=MAX_NODES).contains(&args.nodes) {
        return Err(ClusterError::BadNodes(args.nodes));
    }
    // As kind's --wait: a duration, and 0 means do not wait.
    let wait = match &args.wait {
        Some(w) => Some(crate::human::parse_duration(w).ok_or_else(|| ClusterError::BadWait(w.clone()))?),
        None => None,
    }
    .filter(|d| !d.is_zero());
    let mut driver = driver_for(driver_name(args.driver))?;
    // Before anything is created: a missing binary should leave nothing behind, and
    // the kubeconfig must be usable.
    driver.prepare()?;
    let kc = match g.kubeconfig.as_deref() {
        // As kind: `--kubeconfig FILE` names where to write, and may not exist yet.
        Some(path) if !path.exists() => crate::kubeconfig::Kubeconfigs {
            files: vec![path.to_path_buf()],
            explicit: Some(path.to_path_buf()),
            ..Default::default()
        },
        explicit => crate::kubeconfig::load(explicit)?,
    };

    let clusters = state::clusters_dir()?;
    std::fs::create_dir_all(&clusters).map_err(|e| ClusterError::io(&clusters, e))?;
    // Subnets other clusters hold (read before this one's directory exists).
    let taken: Vec<String> =
        state::list(&clusters).into_iter().filter_map(|(_, r)| r.ok()).flat_map(|r| r.replicas).map(|p| p.ip).collect();
    let dir = clusters.join(&args.name);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(ClusterError::Exists(args.name.clone())),
        Err(e) => return Err(ClusterError::io(&dir, e)),
    }

    let started_at = Instant::now();
    let progress = Progress::detect();
    progress.line(&format!("Creating cluster {:?} ({} driver) ...", args.name, driver_name(args.driver)));
    let spec = Spec { name: args.name.clone(), replicas: args.replicas as u8, nodes: args.nodes as u8, taken };
    let mut rec = None;
    // Ctrl-C does not reach the daemons (they have process groups of their own), so
    // an interrupted `up` cleans up like a failed one instead of leaving them.
    let result = tokio::select! {
        r = create(&mut driver, &spec, &kc, &dir, wait, &progress, &mut rec) => r,
        _ = tokio::signal::ctrl_c() => Err(ClusterError::Interrupted),
    };
    let rec = match (result, rec) {
        (Ok(()), Some(rec)) => rec,
        (result, rec) => {
            let cause = result.err().map_or_else(|| "the cluster was not planned".to_string(), |e| e.to_string());
            return Err(clean_up_failed(&mut driver, &args.name, &dir, rec.as_ref(), &kc, cause).await);
        }
    };
    summary(&rec, &dir, started_at.elapsed()).await;
    Ok(())
}

/// The steps of `up` after its directory exists. `rec` is set as soon as there is
/// a record, so a failure can clean up what it lists.
async fn create(
    driver: &mut impl Driver,
    spec: &Spec,
    kc: &crate::kubeconfig::Kubeconfigs,
    dir: &Path,
    wait_ready: Option<Duration>,
    progress: &Progress,
    out: &mut Option<ClusterRecord>,
) -> Result<(), ClusterError> {
    let rec = out.insert(driver.plan(spec, dir)?);
    driver.start(rec, dir, progress).await?;

    let api = api_client(dir, &rec.api).await?;
    let names: Vec<String> = rec.nodes.iter().map(|n| n.name.clone()).collect();
    let step = progress.step(format!("Waiting for {} node{} to register", names.len(), plural(names.len())));
    wait(REGISTER_TIMEOUT, "the nodes to register", "node-N.log", &mut || driver.check(), || async {
        node_conditions(&api, &names).await.is_some_and(|c| c.iter().all(Option::is_some))
    })
    .await?;
    step.done();

    let step = progress.step(format!("Writing kubeconfig context {:?}", rec.context));
    let admin = dir.join(ADMIN_KUBECONFIG);
    let path = kubeconfig::add(kc, &rec.context, &rec.api, admin.exists().then_some(admin.as_path()))?;
    rec.kubeconfig = Some(path);
    rec.save(dir)?;
    step.done();

    if let Some(timeout) = wait_ready {
        let step = progress.step(format!(
            "Waiting ≤ {} for the nodes to be Ready",
            crate::human::human_duration(timeout.as_secs() as i64)
        ));
        wait(timeout, "the nodes to be Ready", "node-N.log", &mut || driver.check(), || async {
            node_conditions(&api, &names).await.is_some_and(|c| c.iter().all(|r| r.as_deref() == Some("True")))
        })
        .await?;
        step.done();
    }
    rec.complete = true;
    rec.save(dir)
}

/// After a failed `up`: stops what was started, removes the kubeconfig entries and
/// the directory, and keeps the logs elsewhere so the error can point at them.
async fn clean_up_failed(
    driver: &mut impl Driver,
    name: &str,
    dir: &Path,
    rec: Option<&ClusterRecord>,
    kc: &crate::kubeconfig::Kubeconfigs,
    cause: String,
) -> ClusterError {
    let mut cause = cause;
    if let Some(rec) = rec {
        if let Err(e) = driver.stop(rec).await {
            cause = format!("{cause}; cleaning up failed too: {e}");
        }
        if rec.kubeconfig.is_some()
            && let Err(e) = kubeconfig::remove(&kubeconfig_files(kc, rec), &rec.context)
        {
            cause = format!("{cause}; removing its kubeconfig entries failed: {e}");
        }
    }
    let logs = keep_logs(name, dir);
    if let Err(e) = std::fs::remove_dir_all(dir) {
        cause = format!("{cause}; removing {} failed: {e}", dir.display());
    }
    ClusterError::StartFailed { cause, logs }
}

/// The files a cluster's kubeconfig entries may be in: the one `up` wrote, and
/// every file of the kubeconfig in effect now (as kind's delete does).
fn kubeconfig_files(kc: &crate::kubeconfig::Kubeconfigs, rec: &ClusterRecord) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = rec.kubeconfig.iter().cloned().collect();
    for f in &kc.files {
        if !files.contains(f) {
            files.push(f.clone());
        }
    }
    files
}

/// Each node's Ready status (`None` while it has not registered), or `None` when
/// the API does not answer.
async fn node_conditions(api: &Client, names: &[String]) -> Option<Vec<Option<String>>> {
    let list = api.json(Request::get("/api/v1/nodes")).await.ok()?;
    let items = list["items"].as_array()?;
    Some(
        names
            .iter()
            .map(|name| {
                let node = items.iter().find(|n| n["metadata"]["name"].as_str() == Some(name))?;
                let ready = node["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready");
                Some(ready.and_then(|c| c["status"].as_str()).unwrap_or("Unknown").to_string())
            })
            .collect(),
    )
}

async fn summary(rec: &ClusterRecord, dir: &Path, took: Duration) {
    let api = api_client(dir, &rec.api).await.ok();
    let names: Vec<String> = rec.nodes.iter().map(|n| n.name.clone()).collect();
    let ready = match &api {
        Some(api) => node_conditions(api, &names).await.unwrap_or_default(),
        None => vec![],
    };
    let kubeconfig = rec.kubeconfig.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let mut out = format!("Set kubectl context to {:?} (in {kubeconfig})\n\n", rec.context);
    out += &format!("Cluster {:?} is up ({:.1}s):\n", rec.name, took.as_secs_f64());
    let replicas: Vec<&str> = rec.replicas.iter().map(|r| r.ip.as_str()).collect();
    out += &format!(
        "  API server  {} ({} replica{}: {})\n",
        rec.api,
        replicas.len(),
        plural(replicas.len()),
        replicas.join(", ")
    );
    let (dns_ip, dns_port) = rec.dns.rsplit_once(':').unwrap_or((&rec.dns, "53"));
    out += &format!(
        "  DNS         {} (zone cluster.local: dig @{dns_ip} -p {dns_port} SERVICE.NAMESPACE.svc.cluster.local)\n",
        rec.dns
    );
    let docker = rec.driver == "docker";
    for (i, n) in rec.nodes.iter().enumerate() {
        let state = match ready.get(i).cloned().flatten().as_deref() {
            Some("True") => "Ready",
            Some(_) => "NotReady",
            None => "not registered",
        };
        let label = if i == 0 { "Nodes" } else { "" };
        let how = match &n.container {
            Some(c) if docker => format!("container {c}, pods are docker containers"),
            _ => "process runtime".to_string(),
        };
        out += &format!("  {label:<11} {} ({}, {how}) {state}\n", n.name, n.ip);
    }
    if let Some((n, ports)) = rec.nodes.first().and_then(|n| Some((n, n.ingress?))) {
        let more = if rec.nodes.len() > 1 { " (and on every node's address)" } else { "" };
        out += &format!(
            "  Ingress     http://{ip}:{} and https://{ip}:{}{more}, Ingresses of class rk or none\n",
            ports.http,
            ports.https,
            ip = n.ip
        );
    }
    if docker {
        let network = rec.network.as_deref().unwrap_or("-");
        out += &format!("  Network     {network} (every replica, node and pod has an address on it)\n");
        out += &format!(
            "  Logs        docker logs {} (and the other containers: docker ps --filter label={}={})\n\n",
            rec.replicas.first().and_then(|r| r.container.as_deref()).unwrap_or("-"),
            docker::CLUSTER_LABEL,
            rec.name
        );
    } else {
        out += &format!("  Logs        {}/*.log\n\n", dir.display());
    }
    out += "You can now use your cluster with:\n\n";
    out += "  rkctl get nodes\n";
    if docker {
        // No registry: pods need images the engine already has.
        out +=
            &format!("  rkctl apply -f FILE   (pod images must be local, e.g. {}, which has busybox)\n", docker::IMAGE);
    } else {
        out += "  rkctl apply -f manifests/demo.yml\n";
    }
    out += &format!("  kubectl get nodes --context {}\n\n", rec.context);
    if let Some(node) = rec.nodes.first().and_then(|n| n.container.as_deref()).filter(|_| docker) {
        out += &format!(
            "Fail a node like a machine: docker stop|pause {node}, or docker network disconnect {} {node}\n(its agent stops; its pods are containers beside it and keep running until `down`)\n\n",
            rec.network.as_deref().unwrap_or("-")
        );
    }
    out += &format!("Delete it with: rkctl cluster down --name {}\n", rec.name);
    crate::output::print(&out);
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

// === down ===

async fn down(g: &GlobalArgs, name: &str) -> Result<(), ClusterError> {
    let dir = cluster_dir(name)?;
    if !dir.exists() {
        // As `kind delete cluster`: deleting what is not there is not an error.
        crate::output::eprint_line(&format!(
            "No cluster named {name:?}; nothing to delete (`rkctl cluster list` shows the local clusters)"
        ));
        return Ok(());
    }
    let rec = ClusterRecord::load(&dir)?;
    let mut driver = driver_for(&rec.driver)?;
    let progress = Progress::detect();
    progress.line(&format!("Deleting cluster {name:?} ..."));
    let step = progress.step(format!(
        "Stopping {} replica{}, {} node{} and their pods",
        rec.replicas.len(),
        plural(rec.replicas.len()),
        rec.nodes.len(),
        plural(rec.nodes.len())
    ));
    let stopped = driver.stop(&rec).await?;
    step.done();
    // Kubeconfig entries go even if `up` never recorded writing them (it may have
    // been interrupted right after): `rk-<name>` is this cluster's name there.
    let kc = crate::kubeconfig::load(g.kubeconfig.as_deref()).unwrap_or_default();
    let step = progress.step(format!("Removing kubeconfig context {:?}", rec.context));
    kubeconfig::remove(&kubeconfig_files(&kc, &rec), &rec.context)?;
    step.done();
    let step = progress.step(format!("Removing {}", dir.display()));
    std::fs::remove_dir_all(&dir).map_err(|e| ClusterError::io(&dir, e))?;
    step.done();
    let text = if rec.driver == "docker" {
        format!(
            "Deleted cluster {name:?} ({} running container{} and {} running pod{} removed, with the network {})\n",
            stopped.daemons,
            plural(stopped.daemons),
            stopped.pods,
            plural(stopped.pods),
            rec.network.as_deref().unwrap_or("-")
        )
    } else {
        format!(
            "Deleted cluster {name:?} ({} process{}, {} pod process{} stopped)\n",
            stopped.daemons,
            if stopped.daemons == 1 { "" } else { "es" },
            stopped.pods,
            if stopped.pods == 1 { "" } else { "es" }
        )
    };
    crate::output::print(&text);
    Ok(())
}

// === list ===

fn list() -> Result<(), ClusterError> {
    let clusters = state::list(&state::clusters_dir()?);
    if clusters.is_empty() {
        crate::output::eprint_line("No local clusters (`rkctl cluster up` creates one).");
        return Ok(());
    }
    let mut tw = TabWriter::for_tables();
    tw.write("NAME\tDRIVER\tREPLICAS\tNODES\tSTATUS\n");
    for (name, rec) in clusters {
        match rec {
            Ok(rec) => {
                let total = rec.replicas.len() + rec.nodes.len();
                let running = match driver_for(&rec.driver) {
                    Ok(d) => rec.processes().filter(|p| d.is_running(p)).count(),
                    Err(_) => 0,
                };
                let status = match (running, rec.complete) {
                    (_, false) => format!("Incomplete ({running}/{total} processes running)"),
                    (r, true) if r == total => "Running".to_string(),
                    (0, true) => "Stopped".to_string(),
                    (r, true) => format!("Degraded ({r}/{total} processes running)"),
                };
                tw.write(&format!("{name}\t{}\t{}\t{}\t{status}\n", rec.driver, rec.replicas.len(), rec.nodes.len()));
            }
            Err(_) => {
                tw.write(&format!("{name}\t<unknown>\t<unknown>\t<unknown>\tUnreadable (no valid cluster.json)\n"))
            }
        }
    }
    crate::output::print(&tw.flush());
    Ok(())
}

// === status ===

async fn status(name: &str) -> Result<(), ClusterError> {
    let dir = cluster_dir(name)?;
    if !dir.exists() {
        return Err(ClusterError::Unknown(name.to_string()));
    }
    let rec = ClusterRecord::load(&dir)?;
    let driver = driver_for(&rec.driver)?;
    let mut out = format!(
        "Cluster {:?} ({} driver{}): API {}, DNS {}, context {:?}\n\n",
        rec.name,
        rec.driver,
        if rec.complete { "" } else { ", incomplete: `up` did not finish" },
        rec.api,
        rec.dns,
        rec.context
    );
    // Where each runs: a pid (process driver) or a container (docker driver).
    let docker = rec.driver == "docker";
    let whereabouts = |p: &ProcessRecord| match &p.container {
        Some(c) if docker => c.clone(),
        _ => p.pid.to_string(),
    };
    let column = if docker { "CONTAINER" } else { "PID" };
    let mut tw = TabWriter::for_tables();
    tw.write(&format!("REPLICA\tADDRESS\t{column}\tRUNNING\tREADY\tLEADER\tDNS\n"));
    for r in &rec.replicas {
        let running = driver.is_running(r);
        let (ready, leader) =
            if running { replica_health(&dir, &format!("https://{}:{}", r.ip, r.port)).await } else { ("-", "-") };
        tw.write(&format!(
            "{}\t{}:{}\t{}\t{}\t{ready}\t{leader}\t{}\n",
            r.name,
            r.ip,
            r.port,
            whereabouts(r),
            yes_no(running),
            r.dns.as_deref().unwrap_or("-")
        ));
    }
    out += &tw.flush();
    out.push('\n');
    // Node readiness is what the control plane says, from any replica that answers.
    let names: Vec<String> = rec.nodes.iter().map(|n| n.name.clone()).collect();
    let mut conditions = None;
    for r in rec.replicas.iter().filter(|r| driver.is_running(r)) {
        if let Ok(api) = api_client(&dir, &format!("https://{}:{}", r.ip, r.port)).await
            && let Some(c) = node_conditions(&api, &names).await
        {
            conditions = Some(c);
            break;
        }
    }
    let mut tw = TabWriter::for_tables();
    tw.write(&format!("NODE\tADDRESS\t{column}\tRUNNING\tREADY\tPODS\n"));
    for (i, n) in rec.nodes.iter().enumerate() {
        let ready = match &conditions {
            None => "unknown (no API)".to_string(),
            Some(c) => c.get(i).cloned().flatten().unwrap_or_else(|| "not registered".into()),
        };
        tw.write(&format!(
            "{}\t{}:{}\t{}\t{}\t{ready}\t{}\n",
            n.name,
            n.ip,
            n.port,
            whereabouts(n),
            yes_no(driver.is_running(n)),
            driver.pods(n)
        ));
    }
    out += &tw.flush();
    crate::output::print(&out);
    Ok(())
}

fn driver_name(d: ClusterDriver) -> &'static str {
    match d {
        ClusterDriver::Process => "process",
        ClusterDriver::Docker => "docker",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

// === certs ===

/// `cluster certs`: each running replica's certificates, from its `/metrics`
/// (`rk_certificate_expiry_timestamp_seconds`, `rk_certificate_renewals_total`).
async fn certs(name: &str) -> Result<(), ClusterError> {
    let dir = cluster_dir(name)?;
    if !dir.exists() {
        return Err(ClusterError::Unknown(name.to_string()));
    }
    let rec = ClusterRecord::load(&dir)?;
    let driver = driver_for(&rec.driver)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let mut tw = TabWriter::for_tables();
    tw.write("REPLICA\tCERTIFICATE\tEXPIRES\tLEFT\tRENEWALS\n");
    let mut answered = 0;
    for r in rec.replicas.iter().filter(|r| driver.is_running(r)) {
        let Ok(c) = api_client(&dir, &format!("https://{}:{}", r.ip, r.port)).await else { continue };
        let Some(metrics) = replica_metrics(&c).await else { continue };
        let rows = certificate_rows(&metrics);
        if rows.is_empty() {
            continue;
        }
        answered += 1;
        for (cert, expires, renewals) in rows {
            let when = jiff::Timestamp::from_second(expires).map(|t| t.to_string()).unwrap_or_else(|_| "-".into());
            let left = if expires > now { crate::human::human_duration(expires - now) } else { "EXPIRED".into() };
            let renewals = renewals.map_or_else(|| "-".to_string(), |n| n.to_string());
            tw.write(&format!("{}\t{cert}\t{when}\t{left}\t{renewals}\n", r.name));
        }
    }
    if answered == 0 {
        return Err(ClusterError::Api(format!(
            "no replica of {name:?} reported certificates (is it running, and not --insecure-dev?)"
        )));
    }
    crate::output::print(&tw.flush());
    Ok(())
}

/// (certificate, expiry in Unix seconds, renewals) from a replica's metrics text.
fn certificate_rows(metrics: &str) -> Vec<(String, i64, Option<u64>)> {
    let value = |line: &str, metric: &str| -> Option<(String, String)> {
        let rest = line.strip_prefix(metric)?.strip_prefix("{certificate=\"")?;
        let (label, rest) = rest.split_once("\"}")?;
        Some((label.to_string(), rest.trim().to_string()))
    };
    let renewals: Vec<(String, u64)> = metrics
        .lines()
        .filter_map(|l| value(l, "rk_certificate_renewals_total"))
        .filter_map(|(c, v)| Some((c, v.parse().ok()?)))
        .collect();
    metrics
        .lines()
        .filter_map(|l| value(l, "rk_certificate_expiry_timestamp_seconds"))
        .filter_map(|(c, v)| {
            let n = renewals.iter().find(|(r, _)| *r == c).map(|(_, n)| *n);
            Some((c, v.parse().ok()?, n))
        })
        .collect()
}

/// (ready, leader) of one replica: `/readyz`, and `rk_raft_is_leader` from `/metrics`.
async fn replica_health(dir: &Path, url: &str) -> (&'static str, &'static str) {
    let Ok(c) = api_client(dir, url).await else { return ("-", "-") };
    let ready = yes_no(c.send(Request::get("/readyz")).await.is_ok());
    let metrics = replica_metrics(&c).await.unwrap_or_default();
    let leader = match metrics.lines().find_map(|l| l.strip_prefix("rk_raft_is_leader ")) {
        Some(v) if v.trim() == "1" => "yes",
        Some(_) => "no",
        None => "-",
    };
    (ready, leader)
}

/// A replica's `/metrics` text, if it answers.
async fn replica_metrics(c: &Client) -> Option<String> {
    use http_body_util::BodyExt;
    let resp = c.send(Request::get("/metrics").accept("text/plain")).await.ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_rows_come_from_the_metrics() {
        let metrics = "# HELP x\nrk_certificate_expiry_timestamp_seconds{certificate=\"ca\"} 2000000000\n\
                       rk_certificate_expiry_timestamp_seconds{certificate=\"peer\"} 1900000000\n\
                       rk_certificate_renewals_total{certificate=\"peer\"} 3\nrk_raft_is_leader 1\n";
        assert_eq!(
            certificate_rows(metrics),
            vec![("ca".to_string(), 2_000_000_000, None), ("peer".to_string(), 1_900_000_000, Some(3))]
        );
        assert!(certificate_rows("rk_raft_is_leader 1\n").is_empty());
    }

    #[test]
    fn names_are_dns_labels() {
        for ok in ["rk", "a", "dev-2", "x0"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "../x", &"a".repeat(41)] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid cluster name"), "{err}");
        }
    }
}
