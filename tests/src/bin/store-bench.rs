//! `store-bench`: rk's replicated store against etcd on the same machine, with the
//! same client.
//!
//! It starts a 3-replica rk cluster (through [`rk_tests::Cluster`]) and 3-member etcd
//! clusters (Debian's `/usr/bin/etcd`, default settings) on loopback, one after the
//! other, and measures:
//!
//! 1. durable put throughput and latency at several numbers of concurrent clients
//!    ([`put_step`]), with the `etcd-client` crate for both systems, plus the CPU and
//!    disk writes of the servers meanwhile;
//! 2. how long rk takes to acknowledge a write after its leader is SIGKILLed
//!    ([`failover_round`]);
//! 3. the resident memory of the server processes, idle and after the put benchmark.
//!
//! Peer traffic: the harness puts its fault-injection TCP proxy (running in this
//! process) in front of every rk peer port, and that costs rk some throughput. So that
//! both systems are measured alike, etcd's peer traffic goes through the same proxy
//! too; by default etcd is also measured once with direct peer traffic, for reference
//! (`--etcd-peers`).
//!
//! The result is a Markdown section on stdout (and in `--out FILE`) for BENCHMARKS.md;
//! progress goes to stderr. Every cluster is torn down (processes killed, temporary
//! directories removed) on success, on error and on Ctrl-C/SIGTERM.
//!
//! ```text
//! cargo build --release -p rk-control-plane --bin rk-server
//! cargo build --release -p rk-tests --bin store-bench
//! RK_BIN_DIR=target/release target/release/store-bench
//! ```
//!
//! Unlike the project's other binaries this one keeps its logic here: it is a
//! measuring tool that nothing else calls.

#[path = "../bench.rs"]
mod bench;

use anyhow::{Context, Result, anyhow, bail};
use bench::{
    EtcdCluster, MIB, ProcSample, clock_ticks_per_sec, default_threads, etcd_version, machine, machine_busy_ticks, mib,
    ms, parse_duration, progress, quantile, rk_pids, rk_version, rotate, rss_kib, settle_disk, shutdown_signal,
};
use clap::{Parser, ValueEnum};
use rk_tests::{Cluster, ClusterOptions};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

// === flags ===

/// Durable put throughput/latency of rk vs etcd, rk leader failover time and memory.
#[derive(Parser, Debug, Clone)]
#[command(name = "store-bench", about, long_about = None)]
struct Args {
    /// Measured time of each put step (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// Load before each measured step, not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,

    /// Numbers of concurrent clients, one put step each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    concurrency: Vec<usize>,

    /// Runs of the whole concurrency sweep; each step's figures pool all runs.
    #[arg(long, default_value_t = 1)]
    repeat: usize,

    /// Size of each value in bytes.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,

    /// Leader kills on rk (0 skips the failover measurement).
    #[arg(long, default_value_t = 20)]
    failovers: usize,

    /// How long a fresh cluster sits idle before its memory and CPU are read.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    idle: Duration,

    /// Benchmark rk only (same as --only rk).
    #[arg(long)]
    skip_etcd: bool,

    /// Benchmark one system only.
    #[arg(long, value_enum)]
    only: Option<System>,

    /// etcd's peer traffic: through the harness's proxy like rk's (`proxied`), straight
    /// (`direct`), or one cluster of each (`both`).
    #[arg(long, value_enum, default_value = "both")]
    etcd_peers: EtcdPeers,

    /// The etcd server binary (v3.4 or later).
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_bin: PathBuf,

    /// Also write the Markdown report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum System {
    Rk,
    Etcd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EtcdPeers {
    Proxied,
    Direct,
    Both,
}

// === main ===

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = check_args(&args) {
        eprintln!("store-bench: {e}");
        return ExitCode::from(2);
    }
    // The peer proxies (rk's from the harness, and etcd's) run as tasks of the runtime
    // that starts them. They get a runtime of their own (one thread) so that they are
    // not queued behind hundreds of client tasks; the load generator has the main one.
    let build = |threads: usize, name: &str| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).thread_name(name).enable_all().build()
    };
    let (main_rt, proxy_rt) = match (build(default_threads(), "bench"), build(1, "peer-proxy")) {
        (Ok(m), Ok(p)) => (m, p),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("store-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let proxy = proxy_rt.handle().clone();
    let result = main_rt.block_on(async move {
        tokio::select! {
            r = run(args, proxy) => r,
            s = shutdown_signal() => Err(anyhow!("{s}: stopped; the clusters were killed and their temporary directories removed")),
        }
    });
    // Dropping a runtime drops its tasks, and with them any cluster still being
    // started there (which kills its processes): wait for that, briefly.
    proxy_rt.shutdown_timeout(Duration::from_secs(10));
    main_rt.shutdown_timeout(Duration::from_secs(10));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_args(args: &Args) -> Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers, e.g. 1,16,64,256");
    }
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    if args.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    if args.skip_etcd && args.only == Some(System::Etcd) {
        bail!("--skip-etcd and --only etcd contradict each other");
    }
    Ok(())
}

// === the run ===

/// Everything measured on one cluster.
struct SystemReport {
    system: System,
    /// Whether peer traffic went through the harness's proxy.
    proxied: bool,
    version: String,
    idle: Idle,
    after_rss: Vec<u64>,
    /// Keys in the store after the put benchmark (warm-up puts included).
    keys: u64,
    /// One per number of clients, each pooling all runs (`--repeat`).
    steps: Vec<StepResult>,
    failover: Option<FailoverReport>,
}

impl SystemReport {
    fn new(system: System, proxied: bool, version: String) -> Self {
        SystemReport {
            system,
            proxied,
            version,
            idle: Idle::default(),
            after_rss: Vec::new(),
            keys: 0,
            steps: Vec::new(),
            failover: None,
        }
    }

    fn label(&self) -> &'static str {
        match (self.system, self.proxied) {
            (System::Rk, _) => "rk",
            (System::Etcd, true) => "etcd",
            (System::Etcd, false) => "etcd, direct peers",
        }
    }

    fn add_step(&mut self, run: StepResult) {
        self.keys += run.acked_total;
        match self.steps.iter_mut().find(|s| s.clients == run.clients) {
            Some(s) => s.merge(run),
            None => self.steps.push(run),
        }
    }
}

/// A fresh cluster left alone for `--idle`.
#[derive(Default)]
struct Idle {
    /// VmRSS of each member, KiB.
    rss: Vec<u64>,
    /// CPU of all members together, in cores.
    cpu: f64,
}

/// One cluster under test.
enum Target {
    Rk(Box<Cluster>),
    Etcd(EtcdCluster),
}

impl Target {
    fn pids(&mut self) -> Result<Vec<u32>> {
        match self {
            Target::Rk(c) => rk_pids(c),
            Target::Etcd(c) => c.pids(),
        }
    }

    /// The client endpoints, the leader's first.
    async fn endpoints_from_leader(&mut self) -> Result<Vec<String>> {
        Ok(match self {
            Target::Rk(c) => {
                let leader = c.wait_leader(Duration::from_secs(20)).await?;
                rotate(c.endpoints(), leader)
            }
            Target::Etcd(c) => {
                let leader = c.leader(Duration::from_secs(20)).await?;
                rotate(c.endpoints(), leader)
            }
        })
    }
}

async fn run(args: Args, proxy: tokio::runtime::Handle) -> Result<()> {
    let rk_on = args.only.is_none_or(|s| s == System::Rk);
    let etcd_on = !args.skip_etcd && args.only.is_none_or(|s| s == System::Etcd);
    // Fail fast on missing binaries, before minutes of benchmarking.
    if rk_on {
        rk_tests::binary("rk-server")?;
    }
    if etcd_on && !args.etcd_bin.exists() {
        bail!(
            "{} is missing; install it with `apt-get install etcd-server` or pass --etcd-bin",
            args.etcd_bin.display()
        );
    }

    // All clusters run side by side and the put steps alternate between them, so that
    // a slow patch of the (shared, virtual) disk does not land on one system only.
    let mut benches: Vec<(Target, SystemReport)> = Vec::new();
    if rk_on {
        progress("starting a 3-replica rk cluster");
        // Started on the proxy runtime so that the harness's peer proxies live there.
        let cluster = proxy
            // --insecure-dev: etcd, the peer it is compared with, runs without TLS here too.
            .spawn(Cluster::start(ClusterOptions { insecure: true, ..Default::default() }))
            .await
            .context("the rk cluster start task failed")?
            .context("starting the rk cluster")?;
        progress(format!("rk cluster up in {}", cluster.dir().display()));
        benches.push((Target::Rk(Box::new(cluster)), SystemReport::new(System::Rk, true, rk_version())));
    }
    if etcd_on {
        let modes: &[bool] = match args.etcd_peers {
            EtcdPeers::Proxied => &[true],
            EtcdPeers::Direct => &[false],
            EtcdPeers::Both => &[true, false],
        };
        for (n, proxied) in modes.iter().enumerate() {
            let report = SystemReport::new(System::Etcd, *proxied, etcd_version(&args.etcd_bin));
            progress(format!("starting a 3-member etcd cluster ({})", report.label()));
            let peers = proxied.then_some(&proxy);
            let cluster = EtcdCluster::start(&args.etcd_bin, 3, peers, n as u8).await.context("etcd")?;
            progress(format!("etcd cluster up in {}", cluster.dir().display()));
            benches.push((Target::Etcd(cluster), report));
        }
    }

    progress(format!("all clusters idle for {:?}", args.idle));
    let pids: Vec<Vec<u32>> = benches.iter_mut().map(|(t, _)| t.pids()).collect::<Result<_>>()?;
    for ((_, report), idle) in benches.iter_mut().zip(idle(&pids, args.idle).await?) {
        report.idle = idle;
    }

    for run in 0..args.repeat {
        for (ci, &conc) in args.concurrency.iter().enumerate() {
            // Each system takes its turn first.
            let order: Vec<usize> = (0..benches.len()).map(|i| (i + run + ci) % benches.len()).collect();
            for i in order {
                let (target, report) = &mut benches[i];
                settle_disk().await;
                let pids = target.pids().with_context(|| report.label())?;
                let endpoints = target.endpoints_from_leader().await.with_context(|| report.label())?;
                let step = put_step(report.label(), &endpoints, &pids, conc, &args).await?;
                progress(step.summary(report.label()));
                report.add_step(step);
            }
        }
    }
    for (target, report) in &mut benches {
        report.after_rss = target.pids()?.iter().map(|p| rss_kib(*p)).collect::<Result<_>>()?;
    }

    // Failover on rk alone: the etcd clusters go first.
    let mut reports = Vec::new();
    let mut rk = None;
    for (target, report) in benches {
        match target {
            Target::Rk(c) => rk = Some((c, report)),
            Target::Etcd(c) => {
                drop(c);
                progress(format!("etcd cluster stopped ({})", report.label()));
                reports.push(report);
            }
        }
    }
    if let Some((mut cluster, mut report)) = rk {
        if args.failovers > 0 {
            report.failover = Some(failovers(&mut cluster, args.failovers).await);
        }
        drop(cluster);
        progress("rk cluster stopped");
        reports.insert(0, report);
    }

    let md = markdown(&args, &reports);
    print!("{md}");
    if let Some(path) = &args.out {
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
        progress(format!("report written to {}", path.display()));
    }
    Ok(())
}

/// Leaves fresh clusters alone for `wait`, then reads the memory of each member and
/// the CPU each cluster used. `pids`: the members of each cluster.
async fn idle(pids: &[Vec<u32>], wait: Duration) -> Result<Vec<Idle>> {
    // Skip the first second: start-up work (opening files, the first election).
    let settle = Duration::from_secs(1).min(wait);
    tokio::time::sleep(settle).await;
    let before: Vec<Option<ProcSample>> = pids.iter().map(|p| ProcSample::read(p)).collect();
    tokio::time::sleep(wait - settle).await;
    let secs = (wait - settle).as_secs_f64();
    let mut out = Vec::new();
    for (p, before) in pids.iter().zip(before) {
        let cpu = match (before, ProcSample::read(p)) {
            (Some(a), Some(b)) if secs > 0.0 => b.cpu_cores_since(&a, secs),
            _ => f64::NAN,
        };
        out.push(Idle { rss: p.iter().map(|p| rss_kib(*p)).collect::<Result<_>>()?, cpu });
    }
    Ok(out)
}

/// `rounds` leader kills in a row; stops at the first round that fails.
async fn failovers(cluster: &mut Cluster, rounds: usize) -> FailoverReport {
    let mut report = FailoverReport { rounds: Vec::new(), failure: None };
    for round in 1..=rounds {
        match failover_round(cluster, round).await {
            Ok(r) => {
                progress(format!(
                    "failover {round}/{rounds}: killed replica {}, first write acknowledged after {:.0} ms by replica {}",
                    r.killed,
                    ms(r.elapsed),
                    r.acked_by
                ));
                report.rounds.push(r);
            }
            Err(e) => {
                progress(format!("failover {round}: {e:#}"));
                report.failure = Some(format!("round {round}: {e:#}"));
                break;
            }
        }
    }
    report
}

// === put benchmark ===

/// The put steps at one number of clients: one run, or several merged.
struct StepResult {
    clients: usize,
    /// Measured time, all runs together.
    window: Duration,
    /// Latency of every put acknowledged within a measured window, sorted.
    latencies_us: Vec<u32>,
    /// Puts per second of each run.
    run_rates: Vec<f64>,
    /// Puts acknowledged in all, warm-up included (each one a new key).
    acked_total: u64,
    /// Puts that failed within the measured windows (they have no latency).
    errors: u64,
    /// The first error message seen, warm-up included.
    first_error: Option<String>,
    /// CPU seconds used by the server processes within the windows.
    server_cpu_secs: f64,
    /// Bytes the server processes sent to the block device within the windows.
    server_disk_bytes: f64,
    /// CPU seconds used by this process (clients, peer proxies) within the windows.
    bench_cpu_secs: f64,
    /// CPU seconds the whole machine was busy within the windows (/proc/stat).
    machine_cpu_secs: f64,
}

impl StepResult {
    fn merge(&mut self, other: StepResult) {
        self.window += other.window;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
        self.run_rates.extend(other.run_rates);
        self.acked_total += other.acked_total;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.server_cpu_secs += other.server_cpu_secs;
        self.server_disk_bytes += other.server_disk_bytes;
        self.bench_cpu_secs += other.bench_cpu_secs;
        self.machine_cpu_secs += other.machine_cpu_secs;
    }

    fn ops_per_sec(&self) -> f64 {
        self.latencies_us.len() as f64 / self.window.as_secs_f64()
    }

    fn p(&self, q: f64) -> Duration {
        quantile(&self.latencies_us, q)
    }

    /// Cores (1.0 = one core busy all the time).
    fn server_cpu(&self) -> f64 {
        self.server_cpu_secs / self.window.as_secs_f64()
    }

    fn bench_cpu(&self) -> f64 {
        self.bench_cpu_secs / self.window.as_secs_f64()
    }

    /// CPU the whole machine used: the servers, this process, the kernel's work for
    /// them (filesystem journal, loopback network) and anything else running.
    fn machine_cpu(&self) -> f64 {
        self.machine_cpu_secs / self.window.as_secs_f64()
    }

    fn disk_mib_s(&self) -> f64 {
        self.server_disk_bytes / MIB / self.window.as_secs_f64()
    }

    fn summary(&self, label: &str) -> String {
        format!(
            "{label} {:>3} clients: {:.0} puts/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors, \
             server CPU {:.2} cores, disk {:.1} MiB/s, bench CPU {:.2} cores, machine CPU {:.2} cores",
            self.clients,
            self.ops_per_sec(),
            ms(self.p(0.5)),
            ms(self.p(0.99)),
            ms(self.p(1.0)),
            self.errors,
            self.server_cpu(),
            self.disk_mib_s(),
            self.bench_cpu(),
            self.machine_cpu()
        )
    }
}

/// What one worker saw.
#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    acked_total: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `clients` workers, worker `w` on its own connection to `endpoints[w % 3]`,
/// each putting unique keys one after another: `args.warmup` unmeasured, then
/// `args.duration` measured. A put counts when it completes inside the measured window.
async fn put_step(
    label: &str,
    endpoints: &[String],
    server_pids: &[u32],
    clients: usize,
    args: &Args,
) -> Result<StepResult> {
    progress(format!("{label}: {clients} clients, {:?} warm-up + {:?}", args.warmup, args.duration));
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(10));
    let mut conns = Vec::with_capacity(clients);
    for w in 0..clients {
        let ep = &endpoints[w % endpoints.len()];
        let c = etcd_client::Client::connect([ep], Some(opts.clone()))
            .await
            .with_context(|| format!("connecting to {label} at {ep}"))?;
        conns.push(c);
    }
    // Keys stay unique across steps, even when a concurrency is given twice.
    static STEPS: AtomicUsize = AtomicUsize::new(0);
    let step = STEPS.fetch_add(1, Ordering::Relaxed);
    let value: Arc<Vec<u8>> = Arc::new((0..args.value_size).map(|i| b'a' + (i % 26) as u8).collect());
    let start = Instant::now();
    let window_start = start + args.warmup;
    let window_end = window_start + args.duration;
    let mut tasks = Vec::with_capacity(clients);
    for (w, mut c) in conns.into_iter().enumerate() {
        let value = value.clone();
        let prefix = format!("bench/{step}/w{w}/");
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerResult::default();
            let mut n = 0u64;
            while Instant::now() < window_end {
                let key = format!("{prefix}{n:09}");
                n += 1;
                let began = Instant::now();
                let res = c.put(key, value.as_slice(), None).await;
                let done = Instant::now();
                let counted = done >= window_start && done <= window_end;
                match res {
                    Ok(_) => {
                        out.acked_total += 1;
                        if counted {
                            out.latencies_us.push((done - began).as_micros().min(u32::MAX as u128) as u32);
                        }
                    }
                    Err(e) => {
                        if counted {
                            out.errors += 1;
                        }
                        out.first_error.get_or_insert_with(|| e.to_string());
                        // Do not spin on a refused connection.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            out
        }));
    }
    // Server CPU and disk over the measured window only.
    let me = [std::process::id()];
    tokio::time::sleep_until(window_start.into()).await;
    let before = (ProcSample::read(server_pids), ProcSample::read(&me), machine_busy_ticks());
    tokio::time::sleep_until(window_end.into()).await;
    let after = (ProcSample::read(server_pids), ProcSample::read(&me), machine_busy_ticks());
    let mut lat = Vec::new();
    let (mut errors, mut acked_total) = (0, 0);
    let mut first_error = None;
    for t in tasks {
        let r = t.await.context("a put worker failed")?;
        lat.extend(r.latencies_us);
        errors += r.errors;
        acked_total += r.acked_total;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    if lat.is_empty() {
        bail!(
            "{label}: no put was acknowledged with {clients} clients in {:?}; first error: {}",
            args.duration,
            first_error.as_deref().unwrap_or("none (every put took longer than the window)")
        );
    }
    lat.sort_unstable();
    let secs = args.duration.as_secs_f64();
    let cpu_secs = |a: &Option<ProcSample>, b: &Option<ProcSample>| match (a, b) {
        (Some(a), Some(b)) => b.cpu_cores_since(a, 1.0),
        _ => f64::NAN,
    };
    let server_disk_bytes = match (&before.0, &after.0) {
        (Some(a), Some(b)) => b.write_bytes.saturating_sub(a.write_bytes) as f64,
        _ => f64::NAN,
    };
    Ok(StepResult {
        clients,
        window: args.duration,
        run_rates: vec![lat.len() as f64 / secs],
        latencies_us: lat,
        acked_total,
        errors,
        first_error,
        server_cpu_secs: cpu_secs(&before.0, &after.0),
        server_disk_bytes,
        bench_cpu_secs: cpu_secs(&before.1, &after.1),
        machine_cpu_secs: match (before.2, after.2) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / clock_ticks_per_sec(),
            _ => f64::NAN,
        },
    })
}

// === failover ===

struct FailoverRound {
    killed: u64,
    acked_by: u64,
    elapsed: Duration,
}

struct FailoverReport {
    rounds: Vec<FailoverRound>,
    /// Why the rounds stopped early, if they did.
    failure: Option<String>,
}

/// The longest a failover may take before the round counts as failed.
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);
/// Each write attempt during a failover gives up after this and is tried again.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);

/// Kills rk's leader and measures the time until a write is acknowledged by one of the
/// survivors; then restarts the killed replica and waits for all three to agree on a
/// leader.
async fn failover_round(cluster: &mut Cluster, round: usize) -> Result<FailoverRound> {
    let leader = cluster.wait_leader(Duration::from_secs(30)).await.context("waiting for a leader before the kill")?;
    let killed = cluster.replicas[leader].id;
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(200))
        .with_timeout(ATTEMPT_TIMEOUT);
    // One writer per survivor, connected before the kill as a running client would be.
    let mut survivors = Vec::new();
    for (i, r) in cluster.replicas.iter().enumerate() {
        if i != leader {
            let mut c = etcd_client::Client::connect([r.endpoint()], Some(opts.clone())).await?;
            c.status().await.with_context(|| format!("replica {} before the kill", r.id))?;
            survivors.push((r.id, c));
        }
    }
    let killed_at = Instant::now();
    cluster.kill(leader);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Instant)>(survivors.len());
    let mut writers = Vec::new();
    for (id, mut c) in survivors {
        let tx = tx.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                n += 1;
                let key = format!("failover/{round}/{id}/{n}");
                match tokio::time::timeout(ATTEMPT_TIMEOUT, c.put(key, "x", None)).await {
                    Ok(Ok(_)) => {
                        let _ = tx.send((id, Instant::now())).await;
                        return;
                    }
                    // Refused at once (no leader yet, connection reset): try again shortly.
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
                    Err(_) => {}
                }
            }
        }));
    }
    drop(tx);
    let first = tokio::time::timeout(FAILOVER_LIMIT, rx.recv()).await;
    for w in &writers {
        w.abort();
    }
    let Ok(Some((acked_by, at))) = first else {
        let _ = cluster.restart(leader);
        bail!("no write was acknowledged within {FAILOVER_LIMIT:?} after killing the leader (replica {killed})");
    };
    let elapsed = at - killed_at;
    cluster.restart(leader).with_context(|| format!("restarting replica {killed}"))?;
    cluster.wait_leader(Duration::from_secs(60)).await.with_context(|| {
        format!("waiting for all three replicas to agree on a leader after restarting replica {killed}")
    })?;
    Ok(FailoverRound { killed, acked_by, elapsed })
}

// === report ===

fn markdown(args: &Args, reports: &[SystemReport]) -> String {
    let m = machine();
    let mut s = String::new();
    let cmd: Vec<String> = std::env::args().collect();
    let bin_dir = std::env::var("RK_BIN_DIR").map(|d| format!("RK_BIN_DIR={d} ")).unwrap_or_default();
    let rk = reports.iter().find(|r| r.system == System::Rk);
    let etcd = reports.iter().find(|r| r.system == System::Etcd);

    let _ = writeln!(s, "## Store: rk vs etcd\n");
    let _ = writeln!(s, "- Command: `{bin_dir}{}`", cmd.join(" "));
    let _ = writeln!(
        s,
        "- Machine: {} CPUs ({}), {:.1} GiB memory, Linux {}; data of both systems on {}",
        m.cpus, m.cpu_model, m.mem_gib, m.kernel, m.tmp_fs
    );
    if let Some(r) = rk {
        let _ = writeln!(
            s,
            "- rk: {}; 3 replicas with the harness's defaults (= rk-server's: tick 20 ms, election 10–20 ticks, \
             heartbeat every tick, snapshot every 10,000 entries)",
            r.version
        );
    }
    if let Some(e) = etcd {
        let _ = writeln!(
            s,
            "- etcd: {}; 3 members, default flags (heartbeat 100 ms, election 1000 ms, snapshot-count 100,000, fsync on)",
            e.version
        );
    }
    let _ = writeln!(
        s,
        "- Peer traffic: rk's goes through the test harness's fault-injection TCP proxy, which runs in the bench \
         process; \"etcd\" rows go through the same proxy, \"etcd, direct peers\" rows do not."
    );
    let _ = writeln!(
        s,
        "- Load: `etcd-client` 0.17 for both systems; each client is one task with its own connection, client w talks \
         to member (L + w) mod 3 where L is the leader (so 1 client talks to the leader, and from 16 on a third of \
         the clients talk to each member); unique keys, {} B values, one put at a time per client; {} s warm-up, then \
         {} s measured per step; a put counts when acknowledged inside the measured window. The clients share the \
         machine's {} CPUs with the servers. Server CPU and disk writes are the sum over the 3 members \
         (/proc/<pid>/stat and /proc/<pid>/io), bench CPU is the benchmark process (clients and peer proxies), \
         machine CPU is all the machine's busy time (/proc/stat: servers, bench, the kernel's work for them, \
         and anything else running), {} cores at most.",
        args.value_size,
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64(),
        m.cpus,
        m.cpus
    );
    let _ = writeln!(s);

    if reports.iter().any(|r| !r.steps.is_empty()) {
        let _ = writeln!(s, "### Durable puts\n");
        let _ = writeln!(
            s,
            "| system | clients | puts/s | p50 ms | p99 ms | max ms | errors | server CPU (cores) | disk writes MiB/s | bench CPU (cores) | machine CPU (cores) |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in reports {
            for st in &r.steps {
                let rate = if st.run_rates.len() > 1 {
                    let lo = st.run_rates.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = st.run_rates.iter().copied().fold(0.0, f64::max);
                    format!("{:.0} ({lo:.0}–{hi:.0})", st.ops_per_sec())
                } else {
                    format!("{:.0}", st.ops_per_sec())
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {rate} | {:.2} | {:.2} | {:.1} | {} | {:.2} | {:.1} | {:.2} | {:.2} |",
                    r.label(),
                    st.clients,
                    ms(st.p(0.5)),
                    ms(st.p(0.99)),
                    ms(st.p(1.0)),
                    st.errors,
                    st.server_cpu(),
                    st.disk_mib_s(),
                    st.bench_cpu(),
                    st.machine_cpu()
                );
            }
        }
        let _ = writeln!(s);
        if let Some(rk) = rk {
            for e in reports.iter().filter(|r| r.system == System::Etcd) {
                let _ = writeln!(
                    s,
                    "rk / {} (puts/s: above 1 is better for rk; latency: below 1 is better for rk):\n",
                    e.label()
                );
                let _ = writeln!(s, "| clients | puts/s | p50 | p99 |");
                let _ = writeln!(s, "|---:|---:|---:|---:|");
                for a in &rk.steps {
                    if let Some(b) = e.steps.iter().find(|b| b.clients == a.clients) {
                        let _ = writeln!(
                            s,
                            "| {} | {:.2}× | {:.2}× | {:.2}× |",
                            a.clients,
                            a.ops_per_sec() / b.ops_per_sec(),
                            ms(a.p(0.5)) / ms(b.p(0.5)),
                            ms(a.p(0.99)) / ms(b.p(0.99))
                        );
                    }
                }
                let _ = writeln!(s);
            }
        }
        let errors: Vec<String> = reports
            .iter()
            .flat_map(|r| {
                r.steps.iter().filter_map(move |st| {
                    st.first_error
                        .as_ref()
                        .map(|e| format!("- {}, {} clients: first error: `{e}`", r.label(), st.clients))
                })
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(s, "Errors seen (warm-up included):\n\n{}\n", errors.join("\n"));
        }
    }

    if let Some((r, f)) = rk.and_then(|r| r.failover.as_ref().map(|f| (r, f))) {
        let _ = writeln!(s, "### rk leader failover\n");
        let _ = writeln!(
            s,
            "SIGKILL of the leader, then one writer per survivor (connected beforehand) retries a put as soon as the \
             previous one fails or passes {} ms; the time is from the kill to the first acknowledged put. The killed \
             replica is restarted and all three agree on a leader before the next round. The store holds the {} keys \
             of the put benchmark.\n",
            ATTEMPT_TIMEOUT.as_millis(),
            r.keys
        );
        let mut t: Vec<u32> = f.rounds.iter().map(|r| r.elapsed.as_micros().min(u32::MAX as u128) as u32).collect();
        t.sort_unstable();
        if !t.is_empty() {
            let _ = writeln!(s, "| rounds | median ms | p90 ms | min ms | max ms |");
            let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
                t.len(),
                ms(quantile(&t, 0.5)),
                ms(quantile(&t, 0.9)),
                ms(quantile(&t, 0.0)),
                ms(quantile(&t, 1.0))
            );
            let all: Vec<String> = f.rounds.iter().map(|r| format!("{:.0}", ms(r.elapsed))).collect();
            let _ = writeln!(s, "Each round, ms: {}\n", all.join(", "));
        }
        if let Some(e) = &f.failure {
            let _ = writeln!(s, "**The failover rounds stopped early:** {e}\n");
        }
    }

    if !reports.is_empty() {
        let _ = writeln!(s, "### Memory and idle CPU\n");
        let _ = writeln!(
            s,
            "VmRSS of each member (/proc/<pid>/status); idle CPU is all three members together, measured over the \
             idle period after its first second.\n"
        );
        let _ = writeln!(s, "| system | when | keys | member 1 MiB | member 2 MiB | member 3 MiB | CPU (cores) |");
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
        for r in reports {
            let rows = [
                (
                    format!("idle, ~{} s after start", args.idle.as_secs_f64()),
                    &r.idle.rss,
                    0,
                    format!("{:.3}", r.idle.cpu),
                ),
                ("after the put benchmark".to_string(), &r.after_rss, r.keys, "–".to_string()),
            ];
            for (when, rss, keys, cpu) in rows {
                if rss.is_empty() {
                    continue;
                }
                let cells: Vec<String> = rss.iter().map(|k| format!("{:.1}", mib(*k))).collect();
                let _ = writeln!(s, "| {} | {when} | {keys} | {} | {cpu} |", r.label(), cells.join(" | "));
            }
        }
        let _ = writeln!(s);
    }
    s
}
