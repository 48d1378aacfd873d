//! What the benchmark binaries (`store-bench`, `api-bench`) share: a 3-member etcd
//! cluster to compare with ([`EtcdCluster`]), process and machine counters from
//! /proc ([`ProcSample`], [`rss_kib`], [`machine`]), versions for the report, and the
//! small pieces every run needs (flags, progress lines, Ctrl-C, quantiles).
//!
//! Each binary includes this file as its own `bench` module (`#[path]`), rather than
//! through the `rk_tests` library, so that [`progress`] and the etcd cluster token can
//! name the binary with `CARGO_BIN_NAME`, and so that the library used by the
//! integration tests does not carry benchmark code.

use anyhow::{Context, Result, bail};
use rk_tests::Cluster;
use rk_tests::proxy::FaultProxy;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// === flags, progress, signals ===

/// Parses `300ms`, `10s`, `1.5s`, `5m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a duration; use e.g. 500ms, 10s or 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?} has an unknown unit; use ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a valid duration"))
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Completes on Ctrl-C or SIGTERM, naming the signal.
pub async fn shutdown_signal() -> &'static str {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term => "terminated",
    }
}

/// One line on stderr, with the seconds since the first line: to tell which step
/// overlapped something else on the machine.
pub fn progress(msg: impl AsRef<str>) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("{} [{t:6.1}s]: {}", env!("CARGO_BIN_NAME"), msg.as_ref());
}

// === clusters and samples ===

/// The process ids of rk's replicas; fails, with the tail of its log, if one is not
/// running.
pub fn rk_pids(cluster: &mut Cluster) -> Result<Vec<u32>> {
    let mut pids = Vec::new();
    for r in &mut cluster.replicas {
        match (r.is_running(), r.pid()) {
            (true, Some(pid)) => pids.push(pid),
            _ => bail!("rk replica {} is not running; its log:\n{}", r.id, tail(&r.log(), 30)),
        }
    }
    Ok(pids)
}

/// `v` starting at index `first`: worker `w` talks to `v[(first + w) % len]`.
pub fn rotate(mut v: Vec<String>, first: usize) -> Vec<String> {
    let n = v.len().max(1);
    v.rotate_left(first % n);
    v
}

/// The `q` quantile of sorted microsecond samples (nearest rank).
pub fn quantile(sorted_us: &[u32], q: f64) -> Duration {
    if sorted_us.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    Duration::from_micros(sorted_us[rank - 1] as u64)
}

/// Flushes what earlier steps left in the page cache, so that it is not written back
/// (and waited for by fsync) during the next system's step.
pub async fn settle_disk() {
    let _ = tokio::process::Command::new("sync").status().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
}

// === etcd cluster ===

/// A 3-member etcd cluster on loopback addresses of its own (127.<200+pid%50>.<n>.M,
/// ports 22379-22381, so never rk's 127.<100..199>.x.M:2379-2381), each member with
/// its own data directory in a temporary folder. Dropping it kills the members and
/// removes the folder.
pub struct EtcdCluster {
    members: Vec<EtcdMember>,
    /// Proxies in front of the peer ports, when peer traffic is proxied; dropping one
    /// stops it.
    _proxies: Vec<FaultProxy>,
    dir: tempfile::TempDir,
}

struct EtcdMember {
    name: String,
    client: String,
    log_path: PathBuf,
    child: Option<Child>,
}

const ETCD_CLIENT_PORT: u16 = 22379;
const ETCD_PEER_PORT: u16 = 22380;
const ETCD_PROXY_PORT: u16 = 22381;

impl EtcdCluster {
    pub async fn start(
        bin: &Path,
        size: usize,
        peer_proxy: Option<&tokio::runtime::Handle>,
        n: u8,
    ) -> Result<EtcdCluster> {
        let dir = tempfile::Builder::new().prefix("rk-bench-etcd-").tempdir()?;
        let a = 200 + (std::process::id() % 50) as u8;
        let ip = |m: usize| IpAddr::V4(Ipv4Addr::new(127, a, n, m as u8 + 1));
        let mut proxies = Vec::new();
        if let Some(rt) = peer_proxy {
            for m in 0..size {
                let (listen, target) =
                    (SocketAddr::new(ip(m), ETCD_PROXY_PORT), SocketAddr::new(ip(m), ETCD_PEER_PORT));
                let p = rt.spawn(FaultProxy::start(listen, target)).await.context("the proxy start task failed")?;
                proxies.push(p.with_context(|| format!("starting a peer proxy on {listen}"))?);
            }
        }
        let advertised_port = if peer_proxy.is_some() { ETCD_PROXY_PORT } else { ETCD_PEER_PORT };
        let initial: Vec<String> =
            (0..size).map(|m| format!("e{}=http://{}:{advertised_port}", m + 1, ip(m))).collect();
        let initial = initial.join(",");
        let mut cluster = EtcdCluster { members: Vec::new(), _proxies: proxies, dir };
        for m in 0..size {
            let name = format!("e{}", m + 1);
            let client = format!("http://{}:{ETCD_CLIENT_PORT}", ip(m));
            let log_path = cluster.dir.path().join(format!("{name}.log"));
            let log = std::fs::File::create(&log_path)?;
            let child = Command::new(bin)
                .arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(cluster.dir.path().join(format!("{name}.data")))
                .arg("--listen-client-urls")
                .arg(&client)
                .arg("--advertise-client-urls")
                .arg(&client)
                .arg("--listen-peer-urls")
                .arg(format!("http://{}:{ETCD_PEER_PORT}", ip(m)))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://{}:{advertised_port}", ip(m)))
                .arg("--initial-cluster")
                .arg(&initial)
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--initial-cluster-token")
                .arg(format!("rk-{}-{}-{n}", env!("CARGO_BIN_NAME"), std::process::id()))
                .arg("--logger")
                .arg("zap")
                .arg("--log-outputs")
                .arg("stderr")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            cluster.members.push(EtcdMember { name, client, log_path, child: Some(child) });
        }
        cluster.leader(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.clone()).collect()
    }

    /// The temporary folder holding the members' data directories and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pids(&mut self) -> Result<Vec<u32>> {
        let mut pids = Vec::new();
        for m in &mut self.members {
            match m.child.as_mut().map(|c| (c.id(), c.try_wait())) {
                Some((pid, Ok(None))) => pids.push(pid),
                _ => bail!(
                    "etcd member {} is not running; its log:\n{}",
                    m.name,
                    tail(&std::fs::read_to_string(&m.log_path).unwrap_or_default(), 30)
                ),
            }
        }
        Ok(pids)
    }

    /// Waits until every member names the same leader; returns its index.
    pub async fn leader(&mut self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pids()?; // fails at once if a member died
            if let Some(i) = self.agreed_leader().await {
                return Ok(i);
            }
            if Instant::now() > deadline {
                bail!("the etcd members did not agree on a leader within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn agreed_leader(&self) -> Option<usize> {
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(500))
            .with_timeout(Duration::from_millis(500));
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for m in &self.members {
            let mut c = etcd_client::Client::connect([&m.client], Some(opts.clone())).await.ok()?;
            let s = c.status().await.ok()?;
            ids.push(s.header()?.member_id());
            leaders.push(s.leader());
        }
        let leader = *leaders.first()?;
        if leader == 0 || leaders.iter().any(|l| *l != leader) {
            return None;
        }
        ids.iter().position(|id| *id == leader)
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // `dir` is removed when the TempDir drops, after this.
    }
}

// === /proc, versions, machine ===

pub const MIB: f64 = 1024.0 * 1024.0;

/// Resident memory of a process in KiB (`VmRSS` in /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// Counters of a set of processes, summed.
pub struct ProcSample {
    /// utime + stime, in clock ticks (/proc/<pid>/stat).
    pub cpu_ticks: u64,
    /// Bytes sent to the block layer (/proc/<pid>/io `write_bytes`).
    pub write_bytes: u64,
}

impl ProcSample {
    /// None if a process's counters cannot be read (it exited, or no permission).
    pub fn read(pids: &[u32]) -> Option<ProcSample> {
        let mut s = ProcSample { cpu_ticks: 0, write_bytes: 0 };
        for pid in pids {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name (field 2) may contain spaces; the fields after it do not.
            let rest = &stat[stat.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // `rest` starts at field 3 (state); utime is field 14, stime field 15.
            s.cpu_ticks += f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
            s.write_bytes += io.lines().find_map(|l| l.strip_prefix("write_bytes:"))?.trim().parse::<u64>().ok()?;
        }
        Some(s)
    }

    pub fn cpu_cores_since(&self, earlier: &ProcSample, secs: f64) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / clock_ticks_per_sec() / secs
    }
}

/// Clock ticks all CPUs together spent busy since boot (/proc/stat: user, nice,
/// system, irq, softirq and steal; not idle or iowait).
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    Some([0, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum())
}

pub fn clock_ticks_per_sec() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| command_output("getconf", &["CLK_TCK"]).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0))
}

pub fn command_output(cmd: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).stdin(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `rk-server --version`, when the binary was built, and the commit of the git work
/// tree the binary sits in (`target/release` of a checkout), if it is in one.
pub fn rk_version() -> String {
    let Ok(bin) = rk_tests::binary("rk-server") else { return "rk-server (not found)".into() };
    let mut v = command_output(&bin, &["--version"]).unwrap_or_else(|| "rk-server (unknown version)".into());
    let bin_path = bin.to_string_lossy();
    if let Some(built) = command_output("date", &["-u", "-r", &bin_path, "+%Y-%m-%d %H:%M UTC"]) {
        let _ = write!(v, ", binary built {built}");
    }
    let dir = bin.parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_else(|| ".".into());
    if let Some(commit) = command_output("git", &["-C", &dir, "rev-parse", "--short", "HEAD"]) {
        let dirty = command_output("git", &["-C", &dir, "status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty());
        let _ = write!(v, " in a checkout of commit {commit}{}", if dirty { " with uncommitted changes" } else { "" });
    }
    v
}

pub fn etcd_version(bin: &Path) -> String {
    command_output(bin, &["--version"])
        .and_then(|s| s.lines().next().map(|l| l.replace("etcd Version:", "etcd").trim().to_string()))
        .unwrap_or_else(|| "etcd (unknown version)".into())
}

pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub tmp_fs: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpus: default_threads(),
        cpu_model,
        mem_gib: mem_kib / (1024.0 * 1024.0),
        kernel: command_output("uname", &["-r"]).unwrap_or_else(|| "unknown".into()),
        tmp_fs: tmp_filesystem(),
    }
}

/// The filesystem type and device under the temporary directory, where both systems
/// keep their data (and fsync).
pub fn tmp_filesystem() -> String {
    let tmp = std::env::temp_dir();
    let tmp = tmp.canonicalize().unwrap_or(tmp);
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, mnt, fs) = (*f.first()?, *f.get(1)?, *f.get(2)?);
            tmp.starts_with(mnt).then(|| (mnt.len(), format!("{} ({fs} on {dev})", tmp.display())))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, s)| s)
        .unwrap_or_else(|| tmp.display().to_string())
}

pub fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
