//! The docker driver: every `rk-server` replica and every `rk-agent` node of a local
//! cluster is a container of its own, with its own address and hostname on a Docker
//! network made for the cluster, so a node can be stopped, paused or disconnected
//! like a machine (`docker stop|pause|network disconnect rk-NAME-node-1`).
//!
//! ```text
//!  network rk-NAME-net  10.242.B.0/24 (bridge; the host reaches every address)
//!   .11 rk-NAME-replica-1 ─┐ rk-server, raft on :2380, API :2379, DNS :53
//!   .12 rk-NAME-replica-2 ─┤
//!   .13 rk-NAME-replica-3 ─┘
//!   .21 rk-NAME-node-1    ── rk-agent --runtime docker ─┐ /var/run/docker.sock
//!   .22 rk-NAME-node-2    ── …                          │ (the host's engine)
//!   .128–.254 pods: rk_POD_…, rk_app_…  ◄───────────────┘ sibling containers
//! ```
//!
//! Pods are containers of the host's engine, started by the agents through its
//! socket, on the cluster's network (their IPs come from the network's upper half),
//! so pods on different nodes and the host reach each other directly. Because they
//! are siblings, not children, of their node's container, stopping a node stops its
//! agent but not its pods (as a machine whose kubelet died; the control plane still
//! marks the node NotReady and replaces its pods elsewhere). The agent writes pod
//! files (resolv.conf, volumes) under its data directory and hands their paths to
//! the engine, so each node's data directory is bound at the same path inside its
//! container as on the host.
//!
//! Services: pods route the Service range to their node (`rk-agent
//! --pod-service-route`), whose container has `NET_ADMIN` and IP forwarding, and
//! whose agent DNATs cluster IPs with the `nft` copied into the image from the host
//! (docs/services.md).
//!
//! Everything made here carries [`CLUSTER_LABEL`]`=NAME`; pods carry the agent's
//! `io.rk.node=NAME-node-K`. `down` finds all of it by those labels, so it works from
//! the record alone, even after `up` crashed halfway.
//!
//! The image ([`IMAGE`]) is made here with no registry, as `deploy/build-image.sh`
//! does: the `rk-server` and `rk-agent` this `rkctl` would run, the shared libraries
//! they link, a static busybox, imported with `docker import`. It carries a
//! fingerprint of the binaries (size and modification time) and is rebuilt when they
//! change.
//!
//! The engine is driven through the `docker` command: every step is one command a
//! user could run by hand, and its error is the engine's own message.

use super::progress::Progress;
use super::state::{ClusterRecord, IngressPorts, ProcessRecord, Role};
use super::{ClusterError, Driver, Spec, Stopped, api_client, wait_replicas_ready};
use std::cell::OnceCell;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Label on every container and network of a cluster, with the cluster's name.
pub const CLUSTER_LABEL: &str = "io.rk.cluster";
/// Label saying what a cluster's container is: `replica` or `node`.
pub const ROLE_LABEL: &str = "io.rk.cluster.role";
/// The label the agent's docker runtime puts on pod containers, with its node's name
/// (`node-agent/src/runtime/docker.rs`, `NODE_LABEL`).
pub const POD_NODE_LABEL: &str = "io.rk.node";
/// The label on a pod's sandbox (pause) container: one per pod.
const SANDBOX_LABEL: &str = "io.rk.sandbox";
/// The image replicas and nodes run.
pub const IMAGE: &str = "rk-cluster:local";
/// Label of [`IMAGE`] holding the fingerprint of the binaries inside.
const FINGERPRINT_LABEL: &str = "io.rk.binaries";
/// The first two octets of every cluster's subnet (10.242.B.0/24).
const SUBNET: (u8, u8) = (10, 242);
/// Replica K has address .(10+K), node K .(20+K); pods get .128 and up.
const REPLICA_BASE: u8 = 10;
const NODE_BASE: u8 = 20;
const POD_RANGE: &str = "128/25";
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;
pub const NODE_PORT: u16 = 10250;
/// Cluster DNS, on every replica's address (a container may bind port 53).
pub const DNS_PORT: u16 = 53;
/// The Service range of rk-server (its `--service-cluster-ip-range` default), which
/// pods route to their node (`rk-agent --pod-service-route`).
const SERVICE_RANGE: &str = "10.96.0.0/16";
/// How long the API may take to answer after the replicas start.
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `check` asks the engine whether the containers still run (each ask is
/// a `docker ps`; the waits poll far more often).
const CHECK_EVERY: Duration = Duration::from_millis(500);

// === names and addresses (pure) ===

/// The container of replica or node `k` (from 1).
pub fn container_name(cluster: &str, role: Role, k: usize) -> String {
    match role {
        Role::Replica => format!("rk-{cluster}-replica-{k}"),
        Role::Node => format!("rk-{cluster}-node-{k}"),
    }
}

/// The cluster's Docker network. (Not `rk-NAME`: a cluster called `pods` would take
/// the agent's default network `rk-pods`.)
pub fn network_name(cluster: &str) -> String {
    format!("rk-{cluster}-net")
}

fn replica_ip(b: u8, id: u8) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET.0, SUBNET.1, b, REPLICA_BASE + id)
}

fn node_ip(b: u8, k: u8) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET.0, SUBNET.1, b, NODE_BASE + k)
}

fn subnet(b: u8) -> String {
    format!("{}.{}.{b}.0/24", SUBNET.0, SUBNET.1)
}

/// `a.b.c.d/n` as (network address, prefix length); IPv6 and junk give None.
fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (ip, len) = s.trim().split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, len))
}

/// Whether two IPv4 subnets share an address.
fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a.0 & mask == b.0 & mask
}

/// The third octet of the cluster's subnet: from a hash of the name (so a cluster
/// usually gets the same addresses each time), moving on past subnets that other
/// clusters' records hold (`taken` addresses) or that overlap a Docker network
/// (`in_use` subnets).
pub fn pick_subnet(name: &str, taken: &[String], in_use: &[String]) -> Option<u8> {
    let hash = name.bytes().fold(7u32, |h, c| h.wrapping_mul(31).wrapping_add(u32::from(c)));
    let in_use: Vec<(u32, u8)> = in_use.iter().filter_map(|s| parse_cidr(s)).collect();
    (0..250u32).map(|i| ((hash + i) % 250) as u8 + 1).find(|&b| {
        let prefix = format!("{}.{}.{b}.", SUBNET.0, SUBNET.1);
        let ours = (u32::from(Ipv4Addr::new(SUBNET.0, SUBNET.1, b, 0)), 24);
        !taken.iter().any(|ip| ip.starts_with(&prefix)) && !in_use.iter().any(|n| overlaps(*n, ours))
    })
}

/// `docker run` arguments of replica `i` (from 0) of `rec`.
pub fn replica_run_args(rec: &ClusterRecord, network: &str, image: &str, i: usize) -> Vec<String> {
    let r = &rec.replicas[i];
    let peers: Vec<String> =
        rec.replicas.iter().enumerate().map(|(j, r)| format!("{}={}:{PEER_PORT}", j + 1, r.ip)).collect();
    let mut args = run_prefix(rec, network, r, "replica");
    args.extend([
        "--volume".into(),
        format!("{}:/var/lib/rk", r.data_dir.display()),
        // Every replica shares the secrets key file (the first to start creates it).
        "--volume".into(),
        format!("{}:{KEYS_MOUNT}", keys_dir(r).display()),
        image.into(),
    ]);
    args.extend(
        [
            "rk-server",
            "--id",
            &(i + 1).to_string(),
            "--data-dir",
            "/var/lib/rk",
            "--listen",
            &format!("0.0.0.0:{CLIENT_PORT}"),
            "--advertise-client",
            &format!("{}:{CLIENT_PORT}", r.ip),
            "--peer-listen",
            &format!("0.0.0.0:{PEER_PORT}"),
            "--advertise-peer",
            &format!("{}:{PEER_PORT}", r.ip),
            "--peers",
            &peers.join(","),
            "--dns-listen",
            &format!("0.0.0.0:{DNS_PORT}"),
            "--encryption-key-file",
            &format!("{KEYS_MOUNT}/secrets.key"),
            "--pki-dir",
            &format!("{KEYS_MOUNT}/pki"),
            "--log-level",
            "info",
        ]
        .map(String::from),
    );
    args
}

/// Where replica containers see the cluster's secrets key folder.
const KEYS_MOUNT: &str = "/etc/rk/keys";

/// The cluster's secrets key folder on the host: beside the data folders, not in one.
fn keys_dir(r: &ProcessRecord) -> PathBuf {
    r.data_dir.parent().unwrap_or(Path::new(".")).join("keys")
}

/// `docker run` arguments of node `k` (from 0) of `rec`.
pub fn node_run_args(rec: &ClusterRecord, network: &str, image: &str, socket: &Path, k: usize) -> Vec<String> {
    let n = &rec.nodes[k];
    let servers = super::node_servers(rec, k);
    let kubeconfig = super::node_kubeconfig(n).display().to_string();
    let data = n.data_dir.display().to_string();
    let container = n.container.clone().unwrap_or_default();
    let mut args = run_prefix(rec, network, n, "node");
    args.extend([
        // Pods send their Service traffic to the node (see the agent's
        // --pod-service-route), whose agent DNATs it with nftables and forwards it.
        "--cap-add".into(),
        "NET_ADMIN".into(),
        "--sysctl".into(),
        "net.ipv4.ip_forward=1".into(),
        "--volume".into(),
        format!("{}:/var/run/docker.sock", socket.display()),
        // The same path inside as outside: the agent gives the engine paths of pod
        // files (resolv.conf, volumes) under it.
        "--volume".into(),
        format!("{data}:{data}"),
        image.into(),
    ]);
    let dns = rec.replicas.first().map(|r| r.ip.clone()).unwrap_or_default();
    args.extend(
        [
            "rk-agent",
            "--server",
            &servers,
            "--kubeconfig",
            &kubeconfig,
            "--name",
            &n.name,
            "--runtime",
            "docker",
            "--docker-network",
            network,
            "--node-ip",
            &n.ip,
            "--listen",
            &format!("0.0.0.0:{NODE_PORT}"),
            "--data-dir",
            &data,
            "--cluster-dns",
            &dns,
            "--pod-service-route",
            SERVICE_RANGE,
            // Host-network pods share the node container's network, as on a machine.
            "--host-network-container",
            &container,
            "--log-level",
            "info",
        ]
        .map(String::from),
    );
    if let Some(ports) = n.ingress {
        args.extend(super::ingress_args("0.0.0.0", ports));
    }
    args
}

/// What every container's `docker run` starts with.
fn run_prefix(rec: &ClusterRecord, network: &str, p: &ProcessRecord, role: &str) -> Vec<String> {
    let container = p.container.clone().unwrap_or_default();
    // Hostnames as the node names: `<cluster>-node-1`, `<cluster>-replica-1`.
    let hostname = match p.role {
        Role::Node => p.name.clone(),
        Role::Replica => format!("{}-{}", rec.name, p.name),
    };
    [
        "run",
        "--detach",
        "--name",
        &container,
        "--hostname",
        &hostname,
        "--network",
        network,
        "--ip",
        &p.ip,
        "--label",
        &format!("{CLUSTER_LABEL}={}", rec.name),
        "--label",
        &format!("{ROLE_LABEL}={role}"),
        // Logs are read with `docker logs` and kept in files on failure: no colours.
        "--env",
        "NO_COLOR=1",
    ]
    .map(String::from)
    .to_vec()
}

/// Whether an `io.rk.node` value is a node of `cluster` (`<cluster>-node-<k>`).
/// Exact, not a prefix: cluster `a-node-1`'s nodes (`a-node-1-node-1`) are not `a`'s.
pub fn is_cluster_node(cluster: &str, node: &str) -> bool {
    node.strip_prefix(cluster)
        .and_then(|rest| rest.strip_prefix("-node-"))
        .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
}

/// Plans the cluster (subnet, addresses, containers, folders) and records it in
/// `dir`, without creating anything.
pub fn plan(spec: &Spec, dir: &Path, in_use: &[String]) -> Result<ClusterRecord, ClusterError> {
    let b = pick_subnet(&spec.name, &spec.taken, in_use).ok_or(ClusterError::NoSubnet)?;
    let proc = |role, k: u8, name: String, ip: Ipv4Addr, port| {
        let file = match role {
            Role::Replica => format!("replica-{k}"),
            Role::Node => format!("node-{k}"),
        };
        ProcessRecord {
            role,
            data_dir: dir.join(&file),
            log: dir.join(format!("{file}.log")),
            name,
            ip: ip.to_string(),
            port,
            dns: (role == Role::Replica).then(|| format!("{ip}:{DNS_PORT}")),
            pid: 0,
            start_ticks: 0,
            container: Some(container_name(&spec.name, role, usize::from(k))),
            // Each node has an address of its own, where 80 and 443 are free.
            ingress: (role == Role::Node).then_some(IngressPorts { http: 80, https: 443 }),
        }
    };
    let replicas: Vec<ProcessRecord> = (1..=spec.replicas)
        .map(|id| proc(Role::Replica, id, format!("replica-{id}"), replica_ip(b, id), CLIENT_PORT))
        .collect();
    let nodes = (1..=spec.nodes)
        .map(|k| proc(Role::Node, k, format!("{}-node-{k}", spec.name), node_ip(b, k), NODE_PORT))
        .collect();
    let rec = ClusterRecord {
        name: spec.name.clone(),
        driver: "docker".into(),
        api: format!("https://{}:{CLIENT_PORT}", replica_ip(b, 1)),
        dns: format!("{}:{DNS_PORT}", replica_ip(b, 1)),
        context: format!("rk-{}", spec.name),
        kubeconfig: None,
        complete: false,
        network: Some(network_name(&spec.name)),
        replicas,
        nodes,
    };
    rec.save(dir)?;
    Ok(rec)
}

// === the docker command ===

/// Runs `docker ARGS` and returns its standard output; a failure is the engine's
/// first line of complaint.
fn docker<S: AsRef<std::ffi::OsStr>>(step: &str, args: &[S]) -> Result<String, ClusterError> {
    let out = Command::new("docker").args(args).stdin(Stdio::null()).output().map_err(not_installed)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let message = first_line(&out.stderr);
    if message.contains("Cannot connect to the Docker daemon") {
        return Err(ClusterError::DockerUnavailable(message));
    }
    Err(ClusterError::Docker { step: step.to_string(), message })
}

fn not_installed(e: std::io::Error) -> ClusterError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ClusterError::DockerUnavailable("the docker command is not installed".into())
    } else {
        ClusterError::Spawn { what: "docker".into(), source: e }
    }
}

/// The first non-empty line of an engine message, without the CLI's "Error
/// response from daemon: " preamble.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("(no message)");
    line.strip_prefix("Error response from daemon: ").unwrap_or(line).to_string()
}

/// Starts several `docker` commands at once and waits for all; fails with the first
/// failure (after every one has ended).
fn docker_all(step: &str, runs: &[Vec<String>]) -> Result<(), ClusterError> {
    let children: Vec<Child> = runs
        .iter()
        .map(|args| {
            Command::new("docker")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(not_installed)
        })
        .collect::<Result<_, _>>()?;
    let mut first_err = None;
    for child in children {
        let out = child.wait_with_output().map_err(|e| ClusterError::Spawn { what: "docker".into(), source: e })?;
        if !out.status.success() && first_err.is_none() {
            first_err = Some(ClusterError::Docker { step: step.to_string(), message: first_line(&out.stderr) });
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Whether the engine answers; the error says what to do when it does not.
fn check_engine() -> Result<(), ClusterError> {
    match docker("version", &["version", "--format", "{{.Server.Version}}"]) {
        Ok(_) => Ok(()),
        Err(ClusterError::Docker { message, .. }) => Err(ClusterError::DockerUnavailable(message)),
        Err(e) => Err(e),
    }
}

/// The engine's socket on this machine, bound into nodes so agents start pods.
fn engine_socket() -> Result<PathBuf, ClusterError> {
    let path = match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => match host.strip_prefix("unix://") {
            Some(path) => PathBuf::from(path),
            None => {
                return Err(ClusterError::DockerUnavailable(format!(
                    "DOCKER_HOST={host} is not a local socket; nodes need the engine's unix socket to start pods"
                )));
            }
        },
        _ => PathBuf::from("/var/run/docker.sock"),
    };
    Ok(path)
}

/// Names and states (`running`, `exited`, `paused`, …) of the containers with
/// `label` (`key` or `key=value`).
fn container_states(label: &str) -> Result<HashMap<String, String>, ClusterError> {
    let out = docker(
        "ps",
        &["ps", "--all", "--no-trunc", "--filter", &format!("label={label}"), "--format", "{{.Names}}\t{{.State}}"],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, state)| (name.to_string(), state.to_string()))
        .collect())
}

/// Every pod container of the cluster's nodes: (id, node, is a sandbox, running).
fn pod_containers(cluster: &str, nodes: &[String]) -> Result<Vec<(String, String, bool, bool)>, ClusterError> {
    let out = docker(
        "ps",
        &[
            "ps",
            "--all",
            "--no-trunc",
            "--filter",
            &format!("label={POD_NODE_LABEL}"),
            "--format",
            &format!(
                "{{{{.ID}}}}\t{{{{.Label \"{POD_NODE_LABEL}\"}}}}\t{{{{.Label \"{SANDBOX_LABEL}\"}}}}\t{{{{.State}}}}"
            ),
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (id, node) = (f.first()?, f.get(1)?);
            (nodes.iter().any(|n| n == node) || is_cluster_node(cluster, node))
                .then(|| (id.to_string(), node.to_string(), f.get(2) == Some(&"true"), f.get(3) == Some(&"running")))
        })
        .collect())
}

// === the image ===

/// A fingerprint of the binaries an image would hold: their paths, sizes and
/// modification times (FNV-1a; hashing the contents would read hundreds of MB on
/// every `up`).
fn fingerprint(files: &[&Path]) -> Result<String, ClusterError> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in files {
        let m = std::fs::metadata(f).map_err(|e| ClusterError::io(f, e))?;
        let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
        feed(f.as_os_str().as_encoded_bytes());
        feed(&m.len().to_le_bytes());
        feed(&mtime.as_nanos().to_le_bytes());
    }
    Ok(format!("{h:016x}"))
}

/// The fingerprint label of the image `tag`, or None when the engine lacks it.
fn image_fingerprint(tag: &str) -> Option<String> {
    docker(
        "image inspect",
        &["image", "inspect", "--format", &format!("{{{{index .Config.Labels \"{FINGERPRINT_LABEL}\"}}}}"), tag],
    )
    .ok()
    .map(|s| s.trim().to_string())
}

/// A static busybox: `$RK_BUSYBOX`, else the cache the tests and
/// `deploy/build-image.sh` share, else Debian's busybox-static fetched with
/// `apt-get download` into that cache.
fn busybox() -> Result<PathBuf, ClusterError> {
    if let Some(path) = std::env::var_os("RK_BUSYBOX").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ClusterError::NoBusybox(format!("RK_BUSYBOX={} is not a file", path.display())))
        };
    }
    let cache = std::env::temp_dir().join("rk-busybox-static");
    let binary = cache.join("bin/busybox");
    if binary.is_file() {
        return Ok(binary);
    }
    let work = std::env::temp_dir().join(format!("rk-busybox-download-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| ClusterError::io(&work, e))?;
    let download = || {
        Command::new("apt-get")
            .args(["download", "busybox-static"])
            .current_dir(&work)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let fetched = download()
        || (Command::new("apt-get").arg("update").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
            && download());
    let result = (|| {
        if !fetched {
            return Err(ClusterError::NoBusybox("`apt-get download busybox-static` failed".into()));
        }
        let deb = std::fs::read_dir(&work)
            .map_err(|e| ClusterError::io(&work, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .ok_or_else(|| ClusterError::NoBusybox("apt-get download left no .deb".into()))?;
        let root = work.join("root");
        let ok = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root).status().is_ok_and(|s| s.success());
        if !ok {
            return Err(ClusterError::NoBusybox(format!("dpkg-deb -x {} failed", deb.display())));
        }
        // Another rkctl or test may have won the race; either copy is fine.
        let _ = std::fs::rename(&root, &cache);
        if binary.is_file() {
            Ok(binary.clone())
        } else {
            Err(ClusterError::NoBusybox("busybox-static has no bin/busybox".into()))
        }
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The shared libraries `bin` links, by the paths the loader finds them at.
fn linked_libraries(bin: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let out = Command::new("ldd").arg(bin).output().map_err(|e| {
        ClusterError::ImageBuild(format!("cannot run ldd (needed to find the libraries of {}): {e}", bin.display()))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and "/lib64/ld-linux-x86-64.so.2 (0x…)".
    Ok(text
        .lines()
        .filter_map(|l| match l.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next().filter(|p| p.starts_with('/')),
            None => l.split_whitespace().next().filter(|p| p.starts_with('/')),
        })
        .map(PathBuf::from)
        .collect())
}

/// What building [`IMAGE`] needs, when the engine lacks it or has it from other
/// binaries; None when it is current.
fn image_to_build(bins: &super::process::Binaries) -> Result<Option<ImagePlan>, ClusterError> {
    let nft = host_program("nft");
    let mut files = vec![bins.server.as_path(), bins.agent.as_path()];
    files.extend(nft.as_deref());
    let fingerprint = fingerprint(&files)?;
    if image_fingerprint(IMAGE).as_deref() == Some(fingerprint.as_str()) {
        return Ok(None);
    }
    Ok(Some(ImagePlan { fingerprint, busybox: busybox()?, nft }))
}

/// An image to build: the binaries' fingerprint, the busybox to put in, and the
/// host's `nft` when it has one.
#[derive(Debug, Clone)]
struct ImagePlan {
    fingerprint: String,
    busybox: PathBuf,
    nft: Option<PathBuf>,
}

/// Where `name` is installed on this machine: on PATH, or in the sbin folders that a
/// user's PATH often lacks.
fn host_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Builds [`IMAGE`] from `bins`, showing it as a step.
fn build(bins: &super::process::Binaries, plan: &ImagePlan, progress: &Progress) -> Result<(), ClusterError> {
    if plan.nft.is_none() {
        progress.line(
            " ! nft is not installed here, so the image gets none: pods will not reach cluster IPs (node ports \
             work); install nftables, and the next `rkctl cluster up` rebuilds the image",
        );
    }
    let step = progress.step(format!(
        "Building image {IMAGE} from {} (first time, or the binaries changed)",
        bins.server.parent().unwrap_or(Path::new("/")).display()
    ));
    let work = std::env::temp_dir().join(format!("rk-cluster-image-{}", std::process::id()));
    let previous = docker("image inspect", &["image", "inspect", "--format", "{{.Id}}", IMAGE]).ok();
    let result = build_image(bins, plan, &work);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    // The image of older binaries lost its tag: remove it rather than leave it
    // dangling (the engine refuses while a cluster still runs it, which is fine).
    if let Some(old) = previous.map(|id| id.trim().to_string()).filter(|id| !id.is_empty()) {
        let _ = docker("rmi", &["image", "rm", &old]);
    }
    step.done();
    Ok(())
}

fn build_image(bins: &super::process::Binaries, plan: &ImagePlan, work: &Path) -> Result<(), ClusterError> {
    let (fp, busybox) = (&plan.fingerprint, plan.busybox.as_path());
    let root = work.join("root");
    let io = |p: &Path, e| ClusterError::io(p, e);
    for d in ["bin", "usr/local/bin", "etc", "tmp", "var/lib/rk", "var/lib/rk-agent", "root", "var/run"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| io(&root.join(d), e))?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let tmp = root.join("tmp");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).map_err(|e| io(&tmp, e))?;
    }
    // nft: the agents' service proxy programs their nodes' Service rules with it.
    for bin in [&bins.server, &bins.agent].into_iter().chain(plan.nft.as_ref()) {
        let name = bin.file_name().unwrap_or_default();
        let to = root.join("usr/local/bin").join(name);
        // Debug info is most of a debug build's size and nothing a container needs;
        // without objcopy the binary goes in as it is.
        let stripped = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(bin)
            .arg(&to)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(bin, &to).map_err(|e| io(&to, e))?;
        }
        for lib in linked_libraries(bin)? {
            let to = root.join(lib.strip_prefix("/").unwrap_or(&lib));
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            std::fs::copy(&lib, &to).map_err(|e| io(&lib, e))?;
        }
    }
    let bb = root.join("bin/busybox");
    std::fs::copy(busybox, &bb).map_err(|e| io(busybox, e))?;
    let applets = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| ClusterError::NoBusybox(format!("cannot run {}: {e}", busybox.display())))?;
    for applet in String::from_utf8_lossy(&applets.stdout).lines().map(str::trim) {
        if !applet.is_empty() && applet != "busybox" && !applet.contains('/') {
            let link = root.join("bin").join(applet);
            let _ = std::os::unix::fs::symlink("busybox", &link);
        }
    }
    let files = [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
        ("etc/group", "root:x:0:\n"),
        ("etc/nsswitch.conf", "hosts: files dns\n"),
    ];
    for (path, text) in files {
        std::fs::write(root.join(path), text).map_err(|e| io(&root.join(path), e))?;
    }

    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| ClusterError::ImageBuild(format!("cannot run tar: {e}")))?;
    let tar_out = tar.stdout.take().ok_or_else(|| ClusterError::ImageBuild("tar has no output".into()))?;
    let import = Command::new("docker")
        .args(["import", "--change", "ENV PATH=/usr/local/bin:/bin", "--change", "WORKDIR /", "--change"])
        .arg(format!("LABEL {FINGERPRINT_LABEL}={fp}"))
        .args(["-", IMAGE])
        .stdin(Stdio::from(tar_out))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(not_installed)?;
    let tar_ok = tar.wait().is_ok_and(|s| s.success());
    if !import.status.success() {
        return Err(ClusterError::ImageBuild(format!("docker import: {}", first_line(&import.stderr))));
    }
    if !tar_ok {
        return Err(ClusterError::ImageBuild(format!("tar of {} failed", root.display())));
    }
    Ok(())
}

/// The subnets of every Docker network (IPv4 ones; others are skipped by the planner).
fn subnets_in_use() -> Result<Vec<String>, ClusterError> {
    let ids = docker("network ls", &["network", "ls", "--quiet"])?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut args = vec!["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"];
    args.extend(ids);
    // A network removed between the two commands makes inspect fail; the planner
    // then has one subnet fewer to avoid, and `network create` still refuses overlaps.
    let out = docker("network inspect", &args).unwrap_or_default();
    Ok(out.split_whitespace().map(String::from).collect())
}

// === the driver ===

/// The docker driver, for one command.
#[derive(Debug, Default)]
pub struct DockerDriver {
    bins: Option<super::process::Binaries>,
    /// Set by `prepare` when the image must be built (so a missing busybox is
    /// reported before anything is created); `start` builds it.
    image: Option<ImagePlan>,
    /// The cluster `start` is creating, and the containers it started (to notice one
    /// exiting while `up` waits).
    started: Option<(String, Vec<ProcessRecord>)>,
    /// When `check` last asked the engine.
    checked: Option<Instant>,
    /// Container states, read once per command for `is_running`.
    states: OnceCell<HashMap<String, String>>,
    /// Running pods per node, read once per command for `pods`.
    pods: OnceCell<HashMap<String, usize>>,
}

impl Driver for DockerDriver {
    fn prepare(&mut self) -> Result<(), ClusterError> {
        check_engine()?;
        engine_socket()?;
        let bins = super::process::Binaries::find()?;
        self.image = image_to_build(&bins)?;
        self.bins = Some(bins);
        Ok(())
    }

    fn plan(&mut self, spec: &Spec, dir: &Path) -> Result<ClusterRecord, ClusterError> {
        plan(spec, dir, &subnets_in_use()?)
    }

    async fn start(&mut self, rec: &mut ClusterRecord, dir: &Path, progress: &Progress) -> Result<(), ClusterError> {
        let (bins, image) = match &self.bins {
            Some(b) => (b.clone(), self.image.take()),
            None => {
                let bins = super::process::Binaries::find()?;
                let image = image_to_build(&bins)?;
                (bins, image)
            }
        };
        if let Some(plan) = image {
            build(&bins, &plan, progress)?;
        }
        let network = rec.network.clone().unwrap_or_else(|| network_name(&rec.name));
        let b = rec.replicas[0].ip.parse::<Ipv4Addr>().map_err(|_| ClusterError::NoSubnet)?.octets()[2];

        let step = progress.step(format!("Creating network {network} ({})", subnet(b)));
        docker(
            "network create",
            &[
                "network",
                "create",
                "--driver",
                "bridge",
                "--subnet",
                &subnet(b),
                "--ip-range",
                &format!("{}.{}.{b}.{POD_RANGE}", SUBNET.0, SUBNET.1),
                "--label",
                &format!("{CLUSTER_LABEL}={}", rec.name),
                &network,
            ],
        )?;
        step.done();

        for p in rec.processes() {
            // Made by rkctl (so its owner) rather than by the engine on binding: a root-owned
            // file in a folder this user owns can still be removed by `down`.
            std::fs::create_dir_all(&p.data_dir).map_err(|e| ClusterError::io(&p.data_dir, e))?;
        }
        for r in &rec.replicas {
            std::fs::create_dir_all(keys_dir(r)).map_err(|e| ClusterError::io(&keys_dir(r), e))?;
        }
        self.started = Some((rec.name.clone(), rec.replicas.clone()));
        let step = progress.step(format!(
            "Starting the control plane ({} replica container{} on {})",
            rec.replicas.len(),
            if rec.replicas.len() == 1 { "" } else { "s" },
            rec.replicas.iter().map(|r| r.ip.as_str()).collect::<Vec<_>>().join(", ")
        ));
        let runs: Vec<Vec<String>> =
            (0..rec.replicas.len()).map(|i| replica_run_args(rec, &network, IMAGE, i)).collect();
        docker_all("run (replica)", &runs)?;
        // Credentials from the CA the first replica made, by `rk-server certs` in its
        // container (the CA's files belong to the container's root).
        let first = container_name(&rec.name, Role::Replica, 1);
        let exec = ["exec".to_string(), first.clone(), "rk-server".to_string()];
        let certs = |args: &[String]| {
            let args: Vec<String> =
                args.iter().cloned().chain(["--pki-dir".into(), format!("{KEYS_MOUNT}/pki")]).collect();
            super::run_certs(Path::new("docker"), &exec, &args)
        };
        let ca = keys_dir(&rec.replicas[0]).join("pki").join("ca.crt");
        super::issue_credentials(&ca, &certs, dir, rec, &mut || self.check()).await?;
        let mut clients = Vec::new();
        for r in &rec.replicas {
            clients.push(api_client(dir, &format!("https://{}:{}", r.ip, r.port)).await?);
        }
        let logs = format!("docker logs {}", container_name(&rec.name, Role::Replica, 1));
        wait_replicas_ready(API_TIMEOUT, &clients, &logs, &mut || self.check()).await?;
        step.done();

        let socket = engine_socket()?;
        let step = progress.step(format!(
            "Starting {} node container{} (pods run as containers on {network})",
            rec.nodes.len(),
            if rec.nodes.len() == 1 { "" } else { "s" }
        ));
        if let Some((_, started)) = &mut self.started {
            started.extend(rec.nodes.iter().cloned());
        }
        let runs: Vec<Vec<String>> =
            (0..rec.nodes.len()).map(|k| node_run_args(rec, &network, IMAGE, &socket, k)).collect();
        docker_all("run (node)", &runs)?;
        step.done();
        rec.save(dir)
    }

    fn check(&mut self) -> Result<(), ClusterError> {
        let Some((cluster, started)) = &self.started else { return Ok(()) };
        if self.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return Ok(());
        }
        self.checked = Some(Instant::now());
        let states = container_states(&format!("{CLUSTER_LABEL}={cluster}"))?;
        for p in started {
            let Some(name) = &p.container else { continue };
            match states.get(name).map(String::as_str) {
                Some("running" | "created" | "restarting") => {}
                state => {
                    let status = docker("inspect", &["inspect", "--format", "{{.State.ExitCode}}", name])
                        .map(|c| format!(" (exit code {})", c.trim()))
                        .unwrap_or_else(|_| format!(" ({})", state.unwrap_or("gone")));
                    save_logs(p);
                    return Err(ClusterError::Exited {
                        what: format!("container {name}"),
                        status,
                        last_line: super::process::last_line(&p.log),
                        log: p.log.file_name().map(PathBuf::from).unwrap_or_default(),
                    });
                }
            }
        }
        Ok(())
    }

    async fn stop(&mut self, rec: &ClusterRecord) -> Result<Stopped, ClusterError> {
        // After a failed `up`, the containers' logs go where the error points.
        if self.started.is_some() {
            for p in rec.processes() {
                save_logs(p);
            }
        }
        let stopped = stop(rec)?;
        remove_data_as_root(rec)?;
        Ok(stopped)
    }

    fn is_running(&self, p: &ProcessRecord) -> bool {
        let states = self.states.get_or_init(|| container_states(CLUSTER_LABEL).unwrap_or_default());
        p.container.as_ref().and_then(|c| states.get(c)).is_some_and(|s| s == "running")
    }

    fn pods(&self, node: &ProcessRecord) -> usize {
        let pods = self.pods.get_or_init(|| {
            let out = docker(
                "ps",
                &[
                    "ps",
                    "--filter",
                    &format!("label={SANDBOX_LABEL}=true"),
                    "--format",
                    &format!("{{{{.Label \"{POD_NODE_LABEL}\"}}}}"),
                ],
            )
            .unwrap_or_default();
            let mut counts = HashMap::new();
            for node in out.lines() {
                *counts.entry(node.to_string()).or_insert(0) += 1;
            }
            counts
        });
        pods.get(&node.name).copied().unwrap_or(0)
    }
}

/// Writes a container's `docker logs` to its log file in the cluster's directory
/// (best effort: the directory may be gone).
fn save_logs(p: &ProcessRecord) {
    let Some(name) = &p.container else { return };
    if !p.log.parent().is_some_and(Path::exists) {
        return;
    }
    if let Ok(file) = std::fs::File::create(&p.log)
        && let Ok(err) = file.try_clone()
    {
        let _ = Command::new("docker").args(["logs", name]).stdout(file).stderr(err).status();
    }
}

/// Removes the cluster's containers and network: nodes first (so no agent starts a
/// pod again), then the pods, then the replicas, then the network. Everything is
/// found by label as well as by the record, so what an interrupted `up` created is
/// found too. Fails if anything is left.
fn stop(rec: &ClusterRecord) -> Result<Stopped, ClusterError> {
    let mut out = Stopped::default();
    let label = format!("{CLUSTER_LABEL}={}", rec.name);
    let states = container_states(&label)?;
    let node_names: Vec<String> = rec.nodes.iter().map(|n| n.name.clone()).collect();
    let with_role = |role: Role| -> Vec<String> {
        let recorded = if role == Role::Replica { &rec.replicas } else { &rec.nodes };
        let mut names: Vec<String> =
            recorded.iter().filter_map(|p| p.container.clone()).filter(|c| states.contains_key(c)).collect();
        let prefix = container_name(&rec.name, role, 0);
        let prefix = prefix.trim_end_matches('0');
        for name in states.keys() {
            if name.strip_prefix(prefix).is_some_and(|k| k.bytes().all(|b| b.is_ascii_digit())) && !names.contains(name)
            {
                names.push(name.clone());
            }
        }
        names
    };
    let running = |names: &[String]| names.iter().filter(|n| states.get(*n).is_some_and(|s| s == "running")).count();

    let nodes = with_role(Role::Node);
    out.daemons += running(&nodes);
    remove_containers(&nodes)?;

    let pods = pod_containers(&rec.name, &node_names)?;
    out.pods = pods.iter().filter(|(_, _, sandbox, running)| *sandbox && *running).count();
    let ids: Vec<String> = pods.iter().map(|(id, ..)| id.clone()).collect();
    remove_containers(&ids)?;

    let replicas = with_role(Role::Replica);
    out.daemons += running(&replicas);
    remove_containers(&replicas)?;

    // Anything else labelled with the cluster (a container a newer rkctl added).
    let rest: Vec<String> = container_states(&label)?.into_keys().collect();
    remove_containers(&rest)?;

    let networks = docker("network ls", &["network", "ls", "--quiet", "--filter", &format!("label={label}")])?;
    let networks: Vec<&str> = networks.split_whitespace().collect();
    if !networks.is_empty() {
        let mut args = vec!["network", "rm"];
        args.extend(&networks);
        docker("network rm", &args)?;
    }

    let mut left: Vec<String> = container_states(&label)?.into_keys().collect();
    left.extend(
        pod_containers(&rec.name, &node_names)?
            .into_iter()
            .map(|(id, node, ..)| format!("pod container {} of {node}", id.get(..12).unwrap_or(&id))),
    );
    if left.is_empty() { Ok(out) } else { Err(ClusterError::StillRunning(left.join(", "))) }
}

/// Empties the cluster's data folders from inside a container, when `rkctl` is not
/// root: the containers ran as root and left root-owned files there (pod volumes,
/// raft logs) that this user could not remove. Root removes them itself.
fn remove_data_as_root(rec: &ClusterRecord) -> Result<(), ClusterError> {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let dirs: Vec<&PathBuf> = rec.processes().map(|p| &p.data_dir).filter(|d| d.exists()).collect();
    if root || dirs.is_empty() || image_fingerprint(IMAGE).is_none() {
        return Ok(());
    }
    let mut args = vec!["run".to_string(), "--rm".into(), "--network".into(), "none".into()];
    for (i, d) in dirs.iter().enumerate() {
        args.extend(["--volume".into(), format!("{}:/data/{i}", d.display())]);
    }
    args.extend([IMAGE.into(), "sh".into(), "-c".into(), "rm -rf /data/*/* /data/*/.[!.]*".into()]);
    docker("run (removing root-owned data)", &args).map(|_| ())
}

/// `docker rm --force` (kills at once: the cluster is being deleted).
fn remove_containers(names: &[String]) -> Result<(), ClusterError> {
    if names.is_empty() {
        return Ok(());
    }
    let mut args = vec!["rm".to_string(), "--force".into(), "--volumes".into()];
    args.extend(names.iter().cloned());
    match docker("rm", &args) {
        Ok(_) => Ok(()),
        // One already gone (removed by hand, or an agent removing a pod) is fine.
        Err(ClusterError::Docker { message, .. }) if message.contains("No such container") => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, replicas: u8, nodes: u8) -> Spec {
        Spec { name: name.into(), replicas, nodes, taken: vec![] }
    }

    #[test]
    fn names_carry_the_cluster() {
        assert_eq!(container_name("dev", Role::Replica, 2), "rk-dev-replica-2");
        assert_eq!(container_name("dev", Role::Node, 10), "rk-dev-node-10");
        assert_eq!(network_name("pods"), "rk-pods-net", "never the agent's default network rk-pods");
        assert!(is_cluster_node("a", "a-node-1"));
        assert!(is_cluster_node("a", "a-node-12"));
        assert!(!is_cluster_node("a", "a-node-1-node-1"), "another cluster's node");
        assert!(!is_cluster_node("a", "a-node-"));
        assert!(!is_cluster_node("a", "ab-node-1"));
        assert!(!is_cluster_node("a-node-1", "a-node-1"));
    }

    #[test]
    fn subnets_avoid_records_and_docker_networks() {
        let b = pick_subnet("x", &[], &[]).unwrap();
        let again = pick_subnet("x", &[], &[]).unwrap();
        assert_eq!(b, again, "the same name gets the same subnet");
        let taken = vec![format!("10.242.{b}.11")];
        let other = pick_subnet("x", &taken, &[]).unwrap();
        assert_ne!(b, other);
        // A Docker network 10.242.0.0/16 covers all of them.
        assert_eq!(pick_subnet("x", &[], &["10.242.0.0/16".into()]), None);
        // One that overlaps only b's /24 pushes it on; IPv6 and junk are ignored.
        let in_use = vec![format!("10.242.{b}.128/25"), "fd00::/64".into(), "junk".into()];
        assert_eq!(pick_subnet("x", &[], &in_use), Some(other));
        assert!(!overlaps(parse_cidr("172.17.0.0/16").unwrap(), parse_cidr("10.242.1.0/24").unwrap()));
        assert!(overlaps(parse_cidr("10.0.0.0/8").unwrap(), parse_cidr("10.242.1.0/24").unwrap()));
    }

    #[test]
    fn plan_gives_every_container_an_address_a_name_and_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let rec = plan(&spec("dev", 3, 2), dir.path(), &[]).unwrap();
        let b = rec.replicas[0].ip.parse::<Ipv4Addr>().unwrap().octets()[2];
        assert_eq!(rec.driver, "docker");
        assert_eq!(rec.api, format!("https://10.242.{b}.11:2379"));
        assert_eq!(rec.dns, format!("10.242.{b}.11:53"));
        assert_eq!(rec.network.as_deref(), Some("rk-dev-net"));
        let ips: Vec<&str> = rec.processes().map(|p| p.ip.as_str()).collect();
        let want: Vec<String> = ["11", "12", "13", "21", "22"].iter().map(|h| format!("10.242.{b}.{h}")).collect();
        assert_eq!(ips, want);
        assert_eq!(rec.nodes[1].name, "dev-node-2");
        assert_eq!(rec.nodes[1].container.as_deref(), Some("rk-dev-node-2"));
        assert_eq!(rec.nodes[1].data_dir, dir.path().join("node-2"));
        assert_eq!(rec.replicas[2].container.as_deref(), Some("rk-dev-replica-3"));
        assert_eq!(ClusterRecord::load(dir.path()).unwrap(), rec, "the plan is recorded before anything starts");
    }

    #[test]
    fn replicas_know_their_peers_and_serve_dns() {
        let dir = tempfile::tempdir().unwrap();
        let rec = plan(&spec("dev", 3, 1), dir.path(), &[]).unwrap();
        let args = replica_run_args(&rec, "rk-dev-net", IMAGE, 1).join(" ");
        let ip = |i: usize| rec.replicas[i].ip.clone();
        assert!(
            args.starts_with("run --detach --name rk-dev-replica-2 --hostname dev-replica-2 --network rk-dev-net"),
            "{args}"
        );
        assert!(args.contains(&format!("--ip {}", ip(1))), "{args}");
        assert!(args.contains(&format!("--label {CLUSTER_LABEL}=dev")), "{args}");
        assert!(args.contains("--pki-dir /etc/rk/keys/pki"), "one CA for the replicas: {args}");
        assert!(
            args.contains(&format!(
                "{}:/var/lib/rk --volume {}:/etc/rk/keys rk-cluster:local rk-server --id 2",
                dir.path().join("replica-2").display(),
                dir.path().join("keys").display()
            )),
            "{args}"
        );
        assert!(args.contains("--encryption-key-file /etc/rk/keys/secrets.key"), "{args}");
        assert!(args.contains(&format!("--peers 1={}:2380,2={}:2380,3={}:2380", ip(0), ip(1), ip(2))), "{args}");
        assert!(args.contains(&format!("--advertise-client {}:2379", ip(1))), "{args}");
        assert!(args.contains("--dns-listen 0.0.0.0:53"), "{args}");
    }

    #[test]
    fn nodes_run_pods_on_the_cluster_network_through_the_host_engine() {
        let dir = tempfile::tempdir().unwrap();
        let rec = plan(&spec("dev", 3, 2), dir.path(), &[]).unwrap();
        let args = node_run_args(&rec, "rk-dev-net", IMAGE, Path::new("/var/run/docker.sock"), 1);
        let text = args.join(" ");
        let data = dir.path().join("node-2").display().to_string();
        assert!(text.contains("--volume /var/run/docker.sock:/var/run/docker.sock"), "{text}");
        assert!(text.contains(&format!("--volume {data}:{data}")), "same path inside and out: {text}");
        assert!(text.contains("--runtime docker --docker-network rk-dev-net"), "{text}");
        assert!(text.contains(&format!("--node-ip {}", rec.nodes[1].ip)), "{text}");
        assert!(text.contains(&format!("--kubeconfig {data}/kubeconfig")), "its own credentials: {text}");
        assert!(text.contains(&format!("--cluster-dns {}", rec.replicas[0].ip)), "{text}");
        assert!(text.contains("--cap-add NET_ADMIN --sysctl net.ipv4.ip_forward=1"), "{text}");
        assert!(text.contains("--pod-service-route 10.96.0.0/16"), "{text}");
        assert!(text.contains("--host-network-container rk-dev-node-2"), "{text}");
        assert!(text.contains("--ingress-listen 0.0.0.0:80 --ingress-tls-listen 0.0.0.0:443"), "{text}");
        assert!(text.contains(&format!("--label {ROLE_LABEL}=node")), "{text}");
        // Node 2 starts with replica 2, then the others.
        let servers = &args[args.iter().position(|a| a == "--server").unwrap() + 1];
        let r = |i: usize| format!("https://{}:2379", rec.replicas[i].ip);
        assert_eq!(servers, &format!("{},{},{}", r(1), r(2), r(0)));
    }

    #[test]
    fn engine_messages_lose_the_cli_preamble() {
        assert_eq!(
            first_line(b"\nError response from daemon: Pool overlaps with other one on this address space\n"),
            "Pool overlaps with other one on this address space"
        );
        assert_eq!(first_line(b""), "(no message)");
    }

    #[test]
    fn fingerprints_follow_the_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "one").unwrap();
        let first = fingerprint(&[&a]).unwrap();
        assert_eq!(first, fingerprint(&[&a]).unwrap());
        std::fs::write(&a, "three").unwrap();
        assert_ne!(first, fingerprint(&[&a]).unwrap(), "a rebuilt binary means a new image");
        assert!(fingerprint(&[&dir.path().join("missing")]).is_err());
    }
}
