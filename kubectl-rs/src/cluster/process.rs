//! The process driver: every `rk-server` replica and every `rk-agent` node of a local
//! cluster is a process on this machine, each on a loopback address of its own in a
//! /24 picked for the cluster (replicas at `.1`–`.5`, nodes at `.101` on), so every
//! process keeps the standard ports (2379 client, 2380 peer, 10250 node) and several
//! clusters never collide. Nodes run pods with `rk-agent --runtime process` (pods are
//! host processes).
//!
//! ```text
//!  127.42.B.1:2379 ── replica-1 ─┐ raft on :2380            127.42.B.101 rk-node-1
//!  127.42.B.2:2379 ── replica-2 ─┼──────────────   ◄──────  127.42.B.102 rk-node-2 …
//!  127.42.B.3:2379 ── replica-3 ─┘ DNS on a free port        (each told every replica)
//! ```
//!
//! Daemons outlive `rkctl`: each is started in a process group of its own (so Ctrl-C
//! or a terminal's hang-up, which reach the foreground group, do not reach it), with
//! no stdin and its output appended to `<name>.log` in the cluster's directory.
//! (`setsid` would also drop the controlling terminal, but needs an `unsafe`
//! `pre_exec` hook, which this workspace forbids; with stdin closed and output in
//! files the terminal is never touched.)
//!
//! Processes are only ever signalled after checking they are still the ones started:
//! same kernel start time (pids are reused), not a zombie, and for daemons the
//! command line still names their data directory.

use super::progress::Progress;
use super::state::{ClusterRecord, IngressPorts, ProcessRecord, Role};
use super::{ClusterError, Driver, Spec, Stopped, api_client, wait_replicas_ready};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The second octet of every local cluster's subnet (127.42.B.0/24). rk's own tests
/// use 127.77.*, and 127.100–199.* (tests/src/lib.rs), so these never collide.
const SUBNET_OCTET: u8 = 42;
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;
pub const NODE_PORT: u16 = 10250;
/// How long the API may take to answer after the replicas start (an election
/// takes well under a second; this covers a loaded machine).
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// How long daemons get to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long pods get after SIGTERM (Kubernetes gives 30 s; a local cluster being
/// deleted should not make its user wait that long).
pub const POD_GRACE: Duration = Duration::from_secs(5);
/// How often `stop` checks whether processes are gone.
const POLL: Duration = Duration::from_millis(25);

// === the driver ===

/// The process driver, for one command. `up` uses one instance from `prepare` to
/// the end, so it can tell a started process's exit status while it waits.
#[derive(Debug, Default)]
pub struct ProcessDriver {
    bins: Option<Binaries>,
    started: Started,
}

impl Driver for ProcessDriver {
    fn prepare(&mut self) -> Result<(), ClusterError> {
        self.bins = Some(Binaries::find()?);
        Ok(())
    }

    fn plan(&mut self, spec: &Spec, dir: &Path) -> Result<ClusterRecord, ClusterError> {
        plan(spec, dir)
    }

    async fn start(&mut self, rec: &mut ClusterRecord, dir: &Path, progress: &Progress) -> Result<(), ClusterError> {
        let bins = match &self.bins {
            Some(b) => b.clone(),
            None => Binaries::find()?,
        };
        start(rec, &bins, dir, progress, &mut self.started).await
    }

    fn check(&mut self) -> Result<(), ClusterError> {
        self.started.check()
    }

    async fn stop(&mut self, rec: &ClusterRecord) -> Result<Stopped, ClusterError> {
        let stopped = stop(rec).await;
        // What this rkctl started and just stopped: collect their exit statuses.
        self.started.reap();
        stopped
    }

    fn is_running(&self, p: &ProcessRecord) -> bool {
        is_running(p)
    }

    fn pods(&self, node: &ProcessRecord) -> usize {
        pod_processes(&node.data_dir).len()
    }
}

// === binaries ===

/// The `rk-server` and `rk-agent` executables to run.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub server: PathBuf,
    pub agent: PathBuf,
}

impl Binaries {
    /// Each from `$RK_BIN_DIR`, else next to this `rkctl`, else `PATH`.
    pub fn find() -> Result<Binaries, ClusterError> {
        Ok(Binaries { server: find_binary("rk-server")?, agent: find_binary("rk-agent")? })
    }
}

fn find_binary(name: &str) -> Result<PathBuf, ClusterError> {
    let mut looked = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("RK_BIN_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        dirs.push(dir);
    }
    for dir in dirs {
        let path = dir.join(name);
        if is_executable(&path) {
            return Ok(path);
        }
        looked.push(dir.display().to_string());
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let path = dir.join(name);
        if is_executable(&path) {
            return Ok(path);
        }
    }
    looked.push("PATH".into());
    Err(ClusterError::MissingBinary { name: name.to_string(), looked: looked.join(", ") })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// === addresses ===

fn replica_ip(b: u8, id: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, SUBNET_OCTET, b, id)
}

fn node_ip(b: u8, k: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, SUBNET_OCTET, b, 100 + k)
}

/// Picks the cluster's subnet: the third octet starts from a hash of the name (so a
/// cluster usually gets the same addresses each time) and moves on past subnets
/// another cluster's record claims or where any port the cluster needs is taken.
fn pick_subnet(spec: &Spec) -> Result<u8, ClusterError> {
    let taken = &spec.taken;
    let hash = spec.name.bytes().fold(7u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)));
    for i in 0..250u32 {
        let b = ((hash + i) % 250) as u8 + 1;
        let prefix = format!("127.{SUBNET_OCTET}.{b}.");
        if taken.iter().any(|ip| ip.starts_with(&prefix)) {
            continue;
        }
        let replicas =
            (1..=spec.replicas).flat_map(|id| [(replica_ip(b, id), CLIENT_PORT), (replica_ip(b, id), PEER_PORT)]);
        let nodes = (1..=spec.nodes).map(|k| (node_ip(b, k), NODE_PORT));
        if replicas.chain(nodes).all(|(ip, port)| TcpListener::bind((ip, port)).is_ok()) {
            return Ok(b);
        }
    }
    Err(ClusterError::NoAddress)
}

/// The port a node on `ip` serves Ingress on: `preferred` (80, 443) when it can bind
/// it (as root, with nothing else there), else a free one. (Released again before
/// rk-agent binds it, as with [`free_dns_port`].)
fn ingress_port(ip: Ipv4Addr, preferred: u16) -> Result<u16, ClusterError> {
    if TcpListener::bind((ip, preferred)).is_ok() {
        return Ok(preferred);
    }
    let any = TcpListener::bind((ip, 0)).map_err(|e| ClusterError::io(Path::new(&ip.to_string()), e))?;
    Ok(any.local_addr().map_err(|e| ClusterError::io(Path::new(&ip.to_string()), e))?.port())
}

/// A port free for both UDP and TCP on `ip`, for cluster DNS. (Released again
/// before rk-server binds it; another program taking it in between makes rk-server
/// fail to start, which `up` reports.)
fn free_dns_port(ip: Ipv4Addr) -> Result<u16, ClusterError> {
    for _ in 0..20 {
        let udp = UdpSocket::bind((ip, 0)).map_err(|e| ClusterError::io(Path::new(&ip.to_string()), e))?;
        let port = udp.local_addr().map_err(|e| ClusterError::io(Path::new(&ip.to_string()), e))?.port();
        if TcpListener::bind((ip, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(ClusterError::NoAddress)
}

// === process identity ===

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    pgid: i32,
    start_ticks: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    // Field 2, the command name, is in parentheses and may hold spaces or ')'.
    let (_, rest) = text.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        pgid: f.get(2)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` is still the live process that started at `start_ticks` (a zombie
/// has ended: only its exit status is left for its parent).
fn alive_since(pid: i32, start_ticks: u64) -> Option<Stat> {
    if pid <= 1 || pid == std::process::id() as i32 {
        return None;
    }
    stat(pid).filter(|s| s.start_ticks == start_ticks && !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// Whether the recorded daemon still runs: same start time, and its command line
/// still names its data directory.
pub fn is_running(p: &ProcessRecord) -> bool {
    if alive_since(p.pid, p.start_ticks).is_none() {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", p.pid)) else { return false };
    let dir = p.data_dir.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == dir)
}

/// The last non-empty line of a log, for error messages.
pub fn last_line(log: &Path) -> String {
    let text = std::fs::read(log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(nothing logged)");
    let line = strip_ansi(line);
    if line.chars().count() > 300 { format!("{}…", line.chars().take(300).collect::<String>()) } else { line }
}

/// Drops ANSI escape sequences (colours) and other control characters: the line
/// goes into a one-line error message.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final byte (a letter).
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

// === starting ===

/// Starts `bin` detached (see the module docs) with its output appended to `p.log`,
/// and records its pid and start time in `p`.
fn spawn(bin: &Path, args: &[String], p: &mut ProcessRecord) -> Result<Child, ClusterError> {
    use std::os::unix::process::CommandExt;
    let what = format!("{} {}", bin.file_name().unwrap_or_default().to_string_lossy(), p.name);
    let log =
        std::fs::OpenOptions::new().create(true).append(true).open(&p.log).map_err(|e| ClusterError::io(&p.log, e))?;
    let err = log.try_clone().map_err(|e| ClusterError::io(&p.log, e))?;
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        // Logs go to files: no colour codes in them (tracing-subscriber honours NO_COLOR).
        .env("NO_COLOR", "1")
        .process_group(0)
        .spawn()
        .map_err(|source| ClusterError::Spawn { what, source })?;
    p.pid = child.id() as i32;
    // The child is ours and not yet reaped, so /proc has it even if it already exited.
    p.start_ticks = stat(p.pid).map_or(0, |s| s.start_ticks);
    Ok(child)
}

/// The processes `start` started, to notice one exiting (with its exit status)
/// while `up` waits. They are not killed when this is dropped: they are the cluster.
#[derive(Debug, Default)]
struct Started {
    children: Vec<(String, PathBuf, Child)>,
}

impl Started {
    /// Fails if any started process has exited.
    fn check(&mut self) -> Result<(), ClusterError> {
        for (what, log, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ClusterError::Exited {
                    what: what.clone(),
                    status: format!(" ({status})"),
                    last_line: last_line(log),
                    log: log.file_name().map(PathBuf::from).unwrap_or_default(),
                });
            }
        }
        Ok(())
    }

    /// Collects the exit status of every child that has exited, so none stays a
    /// zombie while `rkctl` still runs.
    fn reap(&mut self) {
        for (_, _, child) in &mut self.children {
            let _ = child.try_wait();
        }
    }
}

/// Plans the cluster (addresses, directories) and records it in `dir`, without
/// starting anything.
fn plan(spec: &Spec, dir: &Path) -> Result<ClusterRecord, ClusterError> {
    let b = pick_subnet(spec)?;
    let proc = |role, name: String, ip: Ipv4Addr, port| ProcessRecord {
        role,
        data_dir: dir.join(&name),
        log: dir.join(format!("{name}.log")),
        name,
        ip: ip.to_string(),
        port,
        dns: None,
        pid: 0,
        start_ticks: 0,
        container: None,
        ingress: None,
    };
    let mut replicas: Vec<ProcessRecord> = (1..=spec.replicas)
        .map(|id| proc(Role::Replica, format!("replica-{id}"), replica_ip(b, id), CLIENT_PORT))
        .collect();
    for r in &mut replicas {
        let ip: Ipv4Addr = r.ip.parse().map_err(|_| ClusterError::NoAddress)?;
        r.dns = Some(SocketAddr::from((ip, free_dns_port(ip)?)).to_string());
    }
    // Node data directories are named by index, not by node name: a node's name
    // starts with the cluster's, which would repeat it in every path.
    let nodes = (1..=spec.nodes)
        .map(|k| {
            let ip = node_ip(b, k);
            let mut p = proc(Role::Node, format!("node-{k}"), ip, NODE_PORT);
            p.name = format!("{}-node-{k}", spec.name);
            p.ingress = Some(IngressPorts { http: ingress_port(ip, 80)?, https: ingress_port(ip, 443)? });
            Ok(p)
        })
        .collect::<Result<_, ClusterError>>()?;
    let rec = ClusterRecord {
        name: spec.name.clone(),
        driver: "process".into(),
        api: format!("https://{}:{CLIENT_PORT}", replica_ip(b, 1)),
        dns: replicas[0].dns.clone().unwrap_or_default(),
        context: format!("rk-{}", spec.name),
        kubeconfig: None,
        complete: false,
        network: None,
        replicas,
        nodes,
    };
    rec.save(dir)?;
    Ok(rec)
}

/// Starts the replicas, waits until every one serves the API, then starts the nodes.
/// The record in `dir` is rewritten after each start, so a later `down` finds
/// everything even if this is interrupted.
async fn start(
    rec: &mut ClusterRecord,
    bins: &Binaries,
    dir: &Path,
    progress: &Progress,
    started: &mut Started,
) -> Result<(), ClusterError> {
    let peers: Vec<String> =
        rec.replicas.iter().enumerate().map(|(i, r)| format!("{}={}:{PEER_PORT}", i + 1, r.ip)).collect();
    let peers = peers.join(",");

    let step = progress.step(format!(
        "Starting the control plane ({} replica{} on {})",
        rec.replicas.len(),
        if rec.replicas.len() == 1 { "" } else { "s" },
        rec.replicas.iter().map(|r| r.ip.as_str()).collect::<Vec<_>>().join(", ")
    ));
    for i in 0..rec.replicas.len() {
        let r = &rec.replicas[i];
        let mut args: Vec<String> = vec![
            "--id".into(),
            (i + 1).to_string(),
            "--data-dir".into(),
            r.data_dir.display().to_string(),
            "--listen".into(),
            format!("{}:{CLIENT_PORT}", r.ip),
            "--peer-listen".into(),
            format!("{}:{PEER_PORT}", r.ip),
            "--peers".into(),
            peers.clone(),
            // One key file and one CA for every replica: the first to start creates them.
            "--encryption-key-file".into(),
            dir.join("secrets.key").display().to_string(),
            "--pki-dir".into(),
            dir.join("pki").display().to_string(),
            "--log-level".into(),
            "info".into(),
        ];
        if let Some(dns) = &r.dns {
            args.extend(["--dns-listen".into(), dns.clone()]);
        }
        let child = spawn(&bins.server, &args, &mut rec.replicas[i])?;
        let r = &rec.replicas[i];
        started.children.push((format!("rk-server {}", r.name), r.log.clone(), child));
        rec.save(dir)?;
    }
    let pki = dir.join("pki");
    let pki_arg = ["--pki-dir".to_string(), pki.display().to_string()];
    let certs = |args: &[String]| {
        let args: Vec<String> = args.iter().chain(&pki_arg).cloned().collect();
        super::run_certs(&bins.server, &[], &args)
    };
    super::issue_credentials(&pki.join("ca.crt"), &certs, dir, rec, &mut || started.check()).await?;
    let mut clients = Vec::new();
    for r in &rec.replicas {
        clients.push(api_client(dir, &format!("https://{}:{}", r.ip, r.port)).await?);
    }
    wait_replicas_ready(API_TIMEOUT, &clients, "replica-N.log", &mut || started.check()).await?;
    step.done();

    let step =
        progress.step(format!("Starting {} node{}", rec.nodes.len(), if rec.nodes.len() == 1 { "" } else { "s" }));
    for k in 0..rec.nodes.len() {
        let n = &rec.nodes[k];
        let mut args: Vec<String> = vec![
            "--server".into(),
            super::node_servers(rec, k),
            "--kubeconfig".into(),
            super::node_kubeconfig(n).display().to_string(),
            "--name".into(),
            n.name.clone(),
            "--runtime".into(),
            "process".into(),
            "--node-ip".into(),
            n.ip.clone(),
            "--listen".into(),
            format!("{}:{}", n.ip, n.port),
            "--data-dir".into(),
            n.data_dir.display().to_string(),
            "--log-level".into(),
            "info".into(),
        ];
        if let Some(ports) = n.ingress {
            args.extend(super::ingress_args(&n.ip, ports));
        }
        let child = spawn(&bins.agent, &args, &mut rec.nodes[k])?;
        let n = &rec.nodes[k];
        started.children.push((format!("rk-agent {}", n.name), n.log.clone(), child));
        rec.save(dir)?;
    }
    step.done();
    Ok(())
}

// === stopping ===

/// Stops every process of the cluster: nodes first (so no agent restarts a pod
/// being stopped), then the pods they started, then the replicas. Each stage gets
/// SIGTERM and, after its grace period, SIGKILL. Fails if anything still runs.
async fn stop(rec: &ClusterRecord) -> Result<Stopped, ClusterError> {
    let mut out = Stopped::default();
    let mut left = Vec::new();
    let nodes: Vec<&ProcessRecord> = rec.nodes.iter().filter(|p| is_running(p)).collect();
    out.daemons += nodes.len();
    left.extend(stop_daemons(&nodes, STOP_GRACE).await);

    let pods: Vec<(i32, u64)> = rec.nodes.iter().flat_map(|n| pod_processes(&n.data_dir)).collect();
    out.pods = pods.len();
    let gone = |(pid, ticks): &(i32, u64)| !leads_group_since(*pid, *ticks);
    signal_and_wait(
        &pods,
        |(pid, _)| killpg(Pid::from_raw(*pid), Signal::SIGTERM),
        |(pid, _)| killpg(Pid::from_raw(*pid), Signal::SIGKILL),
        gone,
        POD_GRACE,
    )
    .await;
    left.extend(pods.iter().filter(|p| !gone(p)).map(|(pid, _)| format!("pod process group {pid}")));

    let replicas: Vec<&ProcessRecord> = rec.replicas.iter().filter(|p| is_running(p)).collect();
    out.daemons += replicas.len();
    left.extend(stop_daemons(&replicas, STOP_GRACE).await);
    if left.is_empty() { Ok(out) } else { Err(ClusterError::StillRunning(left.join(", "))) }
}

/// SIGTERM, then SIGKILL after `grace`; returns the names of those still running.
async fn stop_daemons(procs: &[&ProcessRecord], grace: Duration) -> Vec<String> {
    signal_and_wait(
        procs,
        |p| if is_running(p) { kill(Pid::from_raw(p.pid), Signal::SIGTERM) } else { Ok(()) },
        |p| if is_running(p) { kill(Pid::from_raw(p.pid), Signal::SIGKILL) } else { Ok(()) },
        |p| !is_running(p),
        grace,
    )
    .await;
    procs.iter().filter(|p| is_running(p)).map(|p| format!("{} (pid {})", p.name, p.pid)).collect()
}

/// Sends `term` to each, waits up to `grace` for all to be `gone`, then sends
/// `kill` to the rest and waits a little more.
async fn signal_and_wait<T>(
    items: &[T],
    term: impl Fn(&T) -> nix::Result<()>,
    kill: impl Fn(&T) -> nix::Result<()>,
    gone: impl Fn(&T) -> bool,
    grace: Duration,
) {
    // Errors are ignored: ESRCH means it is already gone, which `gone` sees.
    for i in items.iter().filter(|i| !gone(i)) {
        let _ = term(i);
    }
    let deadline = Instant::now() + grace;
    while items.iter().any(|i| !gone(i)) && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    for i in items.iter().filter(|i| !gone(i)) {
        let _ = kill(i);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while items.iter().any(|i| !gone(i)) && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `pid` is still the process started at `start_ticks` and leads its own
/// process group (as every container of the process runtime does).
fn leads_group_since(pid: i32, start_ticks: u64) -> bool {
    alive_since(pid, start_ticks).is_some_and(|s| s.pgid == pid)
}

/// The containers the process runtime of a node started and that still run, as
/// (pid, start ticks), from `<data>/process/pods/<uid>/containers/<c>/state.json`
/// (the runtime's own record; see `node-agent/src/runtime/process.rs`).
fn pod_processes(node_data: &Path) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    let pods = node_data.join("process").join("pods");
    for pod in std::fs::read_dir(pods).into_iter().flatten().flatten() {
        for c in std::fs::read_dir(pod.path().join("containers")).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(c.path().join("state.json")) else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let pid = v["pid"].as_i64().and_then(|p| i32::try_from(p).ok());
            if let (Some(pid), Some(ticks)) = (pid, v["proc_start_ticks"].as_u64())
                && leads_group_since(pid, ticks)
            {
                out.push((pid, ticks));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "4242 (rk server) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 3 0 987654 1 2 3";
        assert_eq!(parse_stat(line), Some(Stat { state: 'S', pgid: 4242, start_ticks: 987654 }));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn last_lines_lose_their_colours() {
        assert_eq!(strip_ansi("\x1b[2m2026\x1b[0m \x1b[33m WARN\x1b[0m x\ty"), "2026  WARN xy");
    }

    #[test]
    fn this_process_is_never_a_target() {
        let me = std::process::id() as i32;
        let ticks = stat(me).unwrap().start_ticks;
        assert!(alive_since(me, ticks).is_none(), "rkctl must never signal itself");
        assert!(alive_since(1, 0).is_none() && alive_since(0, 0).is_none() && alive_since(-1, 0).is_none());
    }

    #[test]
    fn a_reused_pid_is_not_ours() {
        let mut child = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pid = child.id() as i32;
        let ticks = stat(pid).unwrap().start_ticks;
        let dir = tempfile::tempdir().unwrap();
        let mut p = ProcessRecord {
            role: Role::Node,
            name: "n".into(),
            ip: "127.0.0.1".into(),
            port: 1,
            data_dir: dir.path().to_path_buf(),
            log: dir.path().join("n.log"),
            dns: None,
            pid,
            start_ticks: ticks,
            container: None,
            ingress: None,
        };
        assert!(!is_running(&p), "sleep's command line does not name the data directory");
        assert!(leads_group_since(pid, ticks));
        assert!(!leads_group_since(pid, ticks + 1), "another start time means another process");
        p.start_ticks = ticks + 1;
        assert!(!is_running(&p));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!leads_group_since(pid, ticks));
    }

    #[test]
    fn binaries_missing_name_where_rkctl_looked() {
        let err = find_binary("rk-no-such-binary").unwrap_err().to_string();
        assert!(err.contains("rk-no-such-binary") && err.contains("PATH") && err.contains("cargo build"), "{err}");
    }

    #[test]
    fn subnets_skip_taken_ones() {
        let mut spec = Spec { name: "x".into(), replicas: 1, nodes: 1, taken: vec![] };
        let b = pick_subnet(&spec).unwrap();
        spec.taken = vec![format!("127.{SUBNET_OCTET}.{b}.1")];
        let other = pick_subnet(&spec).unwrap();
        assert_ne!(b, other);
    }
}
