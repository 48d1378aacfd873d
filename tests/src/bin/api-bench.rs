//! `api-bench`: rk's Kubernetes REST API under load, with etcd's put throughput on
//! the same machine as the floor to compare creates with.
//!
//! It starts a 3-replica rk cluster (through [`rk_tests::Cluster`]) and, unless
//! `--skip-etcd`, a 3-member etcd cluster (Debian's `/usr/bin/etcd`, default settings,
//! peer traffic through the same proxy as rk's: see `store-bench`) on loopback, and
//! measures with a plain HTTP/1.1 client (hyper, one keep-alive connection per client
//! task, the clients spread round-robin over the replicas, starting at the leader):
//!
//! 1. `POST` of 1 KiB ConfigMaps at several numbers of clients, each step next to an
//!    etcd put step of 1 KiB values at the same number of clients ([`load_step`]);
//! 2. `GET` of one ConfigMap by name and `GET` of the collection with `?limit=500`,
//!    both linearizable (no `resourceVersion`), the list both in `default` (which the
//!    create steps filled) and in a namespace of 1,000 ConfigMaps;
//! 3. the full list of 10,000 pods, as JSON and as a Table ([`big_list`]);
//! 4. how long a change takes to reach a watch on another replica ([`watch_round`]).
//!
//! The result is a Markdown section on stdout (and in `--out FILE`); progress goes to
//! stderr. Every cluster is torn down (processes killed, temporary directories
//! removed) on success, on error and on Ctrl-C/SIGTERM.
//!
//! ```text
//! cargo build --release -p rk-control-plane --bin rk-server
//! cargo build --release -p rk-tests --bin api-bench
//! RK_BIN_DIR=target/release target/release/api-bench
//! ```
//!
//! Like `store-bench`, this measuring tool keeps its logic here: nothing else calls it.

#[path = "../bench.rs"]
mod bench;

use anyhow::{Context, Result, anyhow, bail};
use bench::{
    EtcdCluster, MIB, ProcSample, clock_ticks_per_sec, default_threads, etcd_version, machine, machine_busy_ticks, mib,
    ms, parse_duration, progress, quantile, rk_pids, rk_version, rotate, rss_kib, settle_disk, shutdown_signal,
};
use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rk_tests::{Cluster, ClusterOptions};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

// === flags ===

/// rk's Kubernetes API: create throughput vs etcd puts, gets, lists, a big pod list and
/// watch latency.
#[derive(Parser, Debug, Clone)]
#[command(name = "api-bench", about, long_about = None)]
struct Args {
    /// Measured time of each load step (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// Load before each measured step, not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,

    /// Numbers of concurrent clients, one step of each kind each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,

    /// Pods to create for the full-list measurement (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    pods: usize,

    /// Concurrent clients creating those pods.
    #[arg(long, default_value_t = 64)]
    pod_clients: usize,

    /// Timed requests of the full pod list, per format.
    #[arg(long, default_value_t = 20)]
    list_requests: usize,

    /// Changes timed per watch placement (0 skips the watch measurement).
    #[arg(long, default_value_t = 1000)]
    watch_events: usize,

    /// Size of each ConfigMap's data and of each etcd value, in bytes.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,

    /// Do not start etcd (no put floor to compare creates with).
    #[arg(long)]
    skip_etcd: bool,

    /// The etcd server binary (v3.4 or later).
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_bin: PathBuf,

    /// Also write the Markdown report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn check_args(args: &Args) -> Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers, e.g. 1,16,64");
    }
    if args.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    if args.pods > 0 && (args.pod_clients == 0 || args.list_requests == 0) {
        bail!("--pod-clients and --list-requests must be at least 1 (or pass --pods 0 to skip the pod list)");
    }
    Ok(())
}

// === main ===

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = check_args(&args) {
        eprintln!("api-bench: {e}");
        return ExitCode::from(2);
    }
    // As in store-bench: the peer proxies get a runtime (one thread) of their own so
    // that they are not queued behind the client tasks.
    let build = |threads: usize, name: &str| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).thread_name(name).enable_all().build()
    };
    let (main_rt, proxy_rt) = match (build(default_threads(), "bench"), build(1, "peer-proxy")) {
        (Ok(m), Ok(p)) => (m, p),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("api-bench: cannot start the async runtime: {e}");
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
    proxy_rt.shutdown_timeout(Duration::from_secs(10));
    main_rt.shutdown_timeout(Duration::from_secs(10));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("api-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// === the run ===

/// Everything measured, for the report.
#[derive(Default)]
struct Report {
    rk_version: String,
    etcd_version: Option<String>,
    /// Create and put steps, in the order they ran.
    writes: Vec<StepResult>,
    /// Get and list steps.
    reads: Vec<StepResult>,
    /// ConfigMaps in the namespace while the reads ran.
    configmaps: usize,
    pods: Option<PodsReport>,
    watches: Vec<WatchRound>,
    /// VmRSS of each replica at the end, KiB.
    rss_end: Vec<u64>,
}

async fn run(args: Args, proxy: tokio::runtime::Handle) -> Result<()> {
    rk_tests::binary("rk-server")?;
    if !args.skip_etcd && !args.etcd_bin.exists() {
        bail!(
            "{} is missing; install it with `apt-get install etcd-server`, pass --etcd-bin, or --skip-etcd",
            args.etcd_bin.display()
        );
    }
    let mut report = Report { rk_version: rk_version(), ..Default::default() };

    progress("starting a 3-replica rk cluster");
    // Started on the proxy runtime so that the harness's peer proxies live there.
    let mut cluster = proxy
        // --insecure-dev: etcd, the peer it is compared with, runs without TLS here too.
        .spawn(Cluster::start(ClusterOptions { insecure: true, ..Default::default() }))
        .await
        .context("the rk cluster start task failed")?
        .context("starting the rk cluster")?;
    let pids = rk_pids(&mut cluster)?;
    progress(format!("rk cluster up in {} (pids {pids:?})", cluster.dir().display()));
    match measure(&args, &proxy, &mut cluster, &mut report).await {
        Ok(()) => {}
        // What rk logged last often says why (the folder goes with the cluster).
        Err(e) => bail!("{e:#}\n\nThe end of each rk replica's log:\n{}", log_tails(&cluster, 15)),
    }
    report.rss_end = rk_pids(&mut cluster)?.iter().map(|p| rss_kib(*p)).collect::<Result<_>>()?;
    drop(cluster);
    progress("rk cluster stopped");

    let md = markdown(&args, &report);
    print!("{md}");
    if let Some(path) = &args.out {
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
        progress(format!("report written to {}", path.display()));
    }
    Ok(())
}

/// Everything measured on the rk cluster, and on etcd next to it.
async fn measure(
    args: &Args,
    proxy: &tokio::runtime::Handle,
    cluster: &mut Cluster,
    report: &mut Report,
) -> Result<()> {
    wait_api_ready(cluster).await?;
    let etcd_on = !args.skip_etcd;
    let mut etcd = None;
    if etcd_on {
        progress("starting a 3-member etcd cluster (peer traffic through the same proxy as rk's)");
        let c = EtcdCluster::start(&args.etcd_bin, 3, Some(proxy), 0).await.context("etcd")?;
        progress(format!("etcd cluster up in {}", c.dir().display()));
        report.etcd_version = Some(etcd_version(&args.etcd_bin));
        etcd = Some(c);
    }

    // 1. Creates next to etcd puts. The two alternate, each taking its turn first, so
    //    that a slow patch of the (shared, virtual) disk does not land on one only.
    for (ci, &clients) in args.concurrency.iter().enumerate() {
        let mut order = vec![Op::Create];
        if etcd.is_some() {
            order.insert(ci % 2, Op::EtcdPut);
        }
        for op in order {
            settle_disk().await;
            let step = match (op, etcd.as_mut()) {
                (Op::EtcdPut, Some(e)) => {
                    let leader = e.leader(Duration::from_secs(20)).await?;
                    let step = load_step(op, &rotate(e.endpoints(), leader), &e.pids()?, clients, args).await?;
                    progress(step.summary());
                    step
                }
                _ => rk_step(cluster, op, clients, args).await?,
            };
            report.writes.push(step);
        }
    }
    if let Some(e) = etcd.take() {
        drop(e);
        progress("etcd cluster stopped");
    }

    // 2. Reads.
    let (endpoints, _) = rk_endpoints(cluster).await?;
    create_read_targets(&endpoints[0], args.value_size).await?;
    report.configmaps = count_configmaps(&endpoints[0], "default").await?;
    progress(format!("{} ConfigMaps in namespace default", report.configmaps));
    for op in [Op::Get, Op::List, Op::ListSmall] {
        for &clients in &args.concurrency {
            let step = rk_step(cluster, op, clients, args).await?;
            report.reads.push(step);
        }
    }

    // 3. The full list of many pods.
    if args.pods > 0 {
        report.pods = Some(big_list(cluster, args).await?);
    }

    // 4. Watch latency: through a follower and through the leader.
    if args.watch_events > 0 {
        let leader = cluster.wait_leader(LEADER_TIMEOUT).await?;
        let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
        let placements = [
            ("follower", f1, "leader", leader),
            ("leader", leader, "follower", f1),
            ("follower", f2, "another follower", f1),
        ];
        for (round, (watch_role, watch_i, write_role, write_i)) in placements.into_iter().enumerate() {
            let label = format!("watch on {watch_role}, writes via {write_role}");
            let r = watch_round(
                &label,
                &cluster.replicas[watch_i].endpoint(),
                &cluster.replicas[write_i].endpoint(),
                round,
                args.watch_events,
                args.value_size,
            )
            .await?;
            progress(r.summary());
            report.watches.push(r);
        }
    }
    Ok(())
}

/// How long the replicas may take to agree on a leader before a step.
const LEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// rk's client addresses, the leader's first, and the replicas' process ids.
async fn rk_endpoints(cluster: &mut Cluster) -> Result<(Vec<String>, Vec<u32>)> {
    let leader = cluster.wait_leader(LEADER_TIMEOUT).await.context("before a step")?;
    Ok((rotate(cluster.endpoints(), leader), rk_pids(cluster)?))
}

/// The highest raft term any replica reports (a term that moves during a step means
/// an election happened, which a healthy cluster under load should not need).
async fn rk_term(cluster: &Cluster) -> Option<u64> {
    let mut terms = Vec::new();
    for i in 0..cluster.replicas.len() {
        terms.extend(cluster.status(i).await.map(|(_, term)| term));
    }
    terms.into_iter().max()
}

/// A load step on rk, with the raft term before and after.
async fn rk_step(cluster: &mut Cluster, op: Op, clients: usize, args: &Args) -> Result<StepResult> {
    let (endpoints, pids) = rk_endpoints(cluster).await?;
    let before = rk_term(cluster).await;
    let mut step = load_step(op, &endpoints, &pids, clients, args).await?;
    step.terms = before.zip(rk_term(cluster).await);
    progress(step.summary());
    Ok(step)
}

/// The last `lines` lines of each replica's log.
fn log_tails(cluster: &Cluster, lines: usize) -> String {
    let tails: Vec<String> = cluster
        .replicas
        .iter()
        .map(|r| format!("--- replica {} ---\n{}", r.id, bench::tail(&r.log(), lines)))
        .collect();
    tails.join("\n")
}

/// Waits until every replica answers `/readyz` and has the `default` namespace (which
/// rk-server creates shortly after it first has a leader).
async fn wait_api_ready(cluster: &Cluster) -> Result<()> {
    for r in &cluster.replicas {
        let ep = r.endpoint();
        rk_tests::wait_for(&format!("the API of replica {} at {ep}", r.id), Duration::from_secs(30), || async {
            let mut c = Http::connect(&ep).await.ok()?;
            let ready = c.call(Method::GET, "/readyz", None).await.ok()?;
            let ns = c.call(Method::GET, "/api/v1/namespaces/default", None).await.ok()?;
            (ready.status == StatusCode::OK && ns.status == StatusCode::OK).then_some(())
        })
        .await?;
    }
    Ok(())
}

// === HTTP client ===

/// A whole request gives up after this (and counts as an error).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One keep-alive HTTP/1.1 connection to one replica, used by one task.
struct Http {
    addr: String,
    sender: http1::SendRequest<Full<Bytes>>,
}

/// A response, read to its end.
struct Reply {
    status: StatusCode,
    body: Bytes,
    /// When the status line and headers arrived. rk renders a response whole before
    /// it sends the headers, so up to here is mostly the server's time, and the rest
    /// is the transfer of the body.
    headers_at: Instant,
}

impl Http {
    async fn connect(addr: &str) -> Result<Http> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connecting to {addr}: no answer within 5 s"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            http1::handshake(TokioIo::new(stream)).await.with_context(|| format!("HTTP handshake with {addr}"))?;
        // The connection's I/O runs as a task of its own until either side closes it.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Http { addr: addr.to_string(), sender })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<Request<Full<Bytes>>> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.addr)
            .header(header::USER_AGENT, "api-bench")
            .header(header::ACCEPT, accept.unwrap_or("application/json"));
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        Ok(b.body(Full::new(body.unwrap_or_default()))?)
    }

    /// Sends a request and returns as soon as the response's headers are in.
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<hyper::Response<Incoming>> {
        self.sender.ready().await.with_context(|| format!("the connection to {} is closed", self.addr))?;
        self.sender.send_request(req).await.with_context(|| format!("request to {}", self.addr))
    }

    /// A request and its whole response, within [`REQUEST_TIMEOUT`].
    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<Reply> {
        let req = self.request(method, path, accept, body)?;
        let addr = self.addr.clone();
        let whole = async {
            let resp = self.send(req).await?;
            let headers_at = Instant::now();
            let status = resp.status();
            let body = resp.into_body().collect().await.with_context(|| format!("reading a response from {addr}"))?;
            Ok(Reply { status, body: body.to_bytes(), headers_at })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, whole)
            .await
            .map_err(|_| anyhow!("no whole answer from {addr} within {REQUEST_TIMEOUT:?}"))?
    }

    async fn call(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Reply> {
        self.exchange(method, path, None, body).await
    }
}

impl Reply {
    /// Fails unless the status is `want`, with the server's message.
    fn expect(self, want: StatusCode) -> Result<Reply> {
        if self.status == want {
            return Ok(self);
        }
        let message = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned());
        bail!("HTTP {} (wanted {want}): {message}", self.status)
    }

    fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).context("the response is not JSON")
    }
}

/// A ConfigMap with one data entry of `value`.
fn configmap(name: &str, value: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"value":"{value}"}}}}"#
    ))
}

/// The smallest valid pod: one container with a name and an image.
fn pod(name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"app","image":"registry.k8s.io/pause:3.10"}}]}}}}"#
    ))
}

fn value_of_size(n: usize) -> String {
    (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";
/// ConfigMaps the get step reads, one after another.
const GET_TARGETS: usize = 100;
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
/// A namespace that holds only a few ConfigMaps, for [`Op::ListSmall`].
const SMALL_NAMESPACE: &str = "bench-small";
const SMALL_CONFIGMAPS: &str = "/api/v1/namespaces/bench-small/configmaps";
const SMALL_NAMESPACE_SIZE: usize = 1000;

// === load steps ===

/// What a load step does, once per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// etcd: put of a new key (the floor for creates).
    EtcdPut,
    /// `POST` of a new ConfigMap.
    Create,
    /// `GET` of one ConfigMap by name.
    Get,
    /// `GET` of the ConfigMap collection with `?limit=500`.
    List,
    /// The same in a namespace of [`SMALL_NAMESPACE_SIZE`] ConfigMaps: what a page
    /// costs when the collection is small.
    ListSmall,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::EtcdPut => "etcd put",
            Op::Create => "rk REST create",
            Op::Get => "rk REST get",
            Op::List => "rk REST list limit=500",
            Op::ListSmall => "rk REST list limit=500, small namespace",
        }
    }
}

/// Where a step's figures come from, measured over its window.
#[derive(Default, Clone, Copy)]
struct Usage {
    /// Cores the three servers used.
    server_cpu: f64,
    /// What the three servers sent to the block layer, MiB/s.
    server_disk: f64,
    /// Cores this process used (clients and peer proxies).
    bench_cpu: f64,
    /// Cores the whole machine was busy (/proc/stat): servers, bench, kernel, anything else.
    machine_cpu: f64,
}

/// Counters at one instant, to take a [`Usage`] between two.
struct Counters {
    servers: Option<ProcSample>,
    me: Option<ProcSample>,
    machine: Option<u64>,
}

impl Counters {
    fn read(server_pids: &[u32]) -> Counters {
        Counters {
            servers: ProcSample::read(server_pids),
            me: ProcSample::read(&[std::process::id()]),
            machine: machine_busy_ticks(),
        }
    }

    fn usage_since(&self, earlier: &Counters, secs: f64) -> Usage {
        let cores = |a: &Option<ProcSample>, b: &Option<ProcSample>| match (a, b) {
            (Some(a), Some(b)) => b.cpu_cores_since(a, secs),
            _ => f64::NAN,
        };
        Usage {
            server_cpu: cores(&earlier.servers, &self.servers),
            server_disk: match (&earlier.servers, &self.servers) {
                (Some(a), Some(b)) => b.write_bytes.saturating_sub(a.write_bytes) as f64 / MIB / secs,
                _ => f64::NAN,
            },
            bench_cpu: cores(&earlier.me, &self.me),
            machine_cpu: match (earlier.machine, self.machine) {
                (Some(a), Some(b)) => b.saturating_sub(a) as f64 / clock_ticks_per_sec() / secs,
                _ => f64::NAN,
            },
        }
    }
}

/// One load step: one kind of request at one number of clients.
struct StepResult {
    op: Op,
    clients: usize,
    window: Duration,
    /// Latency of every request that succeeded inside the measured window, sorted.
    latencies_us: Vec<u32>,
    /// Response bytes of those requests (HTTP bodies; 0 for etcd).
    bytes: u64,
    /// Requests that failed inside the window.
    errors: u64,
    /// The first error seen, warm-up included.
    first_error: Option<String>,
    usage: Usage,
    /// rk's raft term before and after the step.
    terms: Option<(u64, u64)>,
}

impl StepResult {
    fn ops_per_sec(&self) -> f64 {
        self.latencies_us.len() as f64 / self.window.as_secs_f64()
    }

    fn p(&self, q: f64) -> Duration {
        quantile(&self.latencies_us, q)
    }

    fn avg_kib(&self) -> f64 {
        self.bytes as f64 / 1024.0 / self.latencies_us.len().max(1) as f64
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "{} {:>3} clients: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors, server CPU {:.2} \
             cores, bench CPU {:.2} cores, machine CPU {:.2} cores",
            self.op.label(),
            self.clients,
            self.ops_per_sec(),
            ms(self.p(0.5)),
            ms(self.p(0.99)),
            ms(self.p(1.0)),
            self.errors,
            self.usage.server_cpu,
            self.usage.bench_cpu,
            self.usage.machine_cpu
        );
        if let Some((a, b)) = self.terms.filter(|(a, b)| a != b) {
            let _ = write!(s, "; raft term {a} → {b} (an election)");
        }
        if let Some(e) = &self.first_error {
            let _ = write!(s, "; first error: {e}");
        }
        s
    }
}

/// One client of a load step: its connection and what it has done.
struct Worker {
    op: Op,
    conn: Conn,
    /// Makes names and keys unique: `<step>-<worker>`.
    tag: String,
    value: Arc<String>,
    n: u64,
}

enum Conn {
    /// Boxed: an etcd client is several times the size of an HTTP connection.
    Etcd(Box<etcd_client::Client>),
    /// `None` after a failed request, until the next one reconnects.
    Http(Option<Http>, String),
}

impl Worker {
    /// One request; the number of response bytes.
    async fn once(&mut self) -> Result<u64> {
        let n = self.n;
        self.n += 1;
        let (http, addr) = match &mut self.conn {
            Conn::Etcd(c) => {
                let key = format!("bench/{}/{n:09}", self.tag);
                c.put(key, self.value.as_bytes(), None).await?;
                return Ok(0);
            }
            Conn::Http(h, addr) => (h, addr),
        };
        if http.is_none() {
            *http = Some(Http::connect(addr).await?);
        }
        let Some(c) = http.as_mut() else { bail!("not connected to {addr}") };
        let reply = match self.op {
            Op::Create => {
                let body = configmap(&format!("c{}-{n}", self.tag), &self.value);
                c.call(Method::POST, CONFIGMAPS, Some(body)).await.map(|r| r.expect(StatusCode::CREATED))
            }
            Op::Get => {
                let path = format!("{CONFIGMAPS}/get-{:03}", n as usize % GET_TARGETS);
                c.call(Method::GET, &path, None).await.map(|r| r.expect(StatusCode::OK))
            }
            Op::List | Op::ListSmall => {
                let path = if self.op == Op::List { CONFIGMAPS } else { SMALL_CONFIGMAPS };
                c.call(Method::GET, &format!("{path}?limit=500"), None).await.map(|r| r.expect(StatusCode::OK))
            }
            Op::EtcdPut => bail!("an etcd put on an HTTP connection"),
        };
        match reply {
            Ok(r) => Ok(r?.body.len() as u64),
            Err(e) => {
                // The connection may be mid-request: start afresh next time.
                *http = None;
                Err(e)
            }
        }
    }
}

/// Runs `clients` workers, worker `w` on its own connection to
/// `endpoints[w % endpoints.len()]`, each doing `op` one request after another:
/// `args.warmup` unmeasured, then `args.duration` measured. A request counts when it
/// completes inside the measured window.
async fn load_step(
    op: Op,
    endpoints: &[String],
    server_pids: &[u32],
    clients: usize,
    args: &Args,
) -> Result<StepResult> {
    progress(format!("{}: {clients} clients, {:?} warm-up + {:?}", op.label(), args.warmup, args.duration));
    // Names stay unique across steps.
    static STEPS: AtomicUsize = AtomicUsize::new(0);
    let step = STEPS.fetch_add(1, Ordering::Relaxed);
    let value = Arc::new(value_of_size(args.value_size));
    let mut workers = Vec::with_capacity(clients);
    for w in 0..clients {
        let ep = &endpoints[w % endpoints.len()];
        let conn = if op == Op::EtcdPut {
            let opts = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(2))
                .with_timeout(Duration::from_secs(10));
            let c =
                etcd_client::Client::connect([ep], Some(opts)).await.with_context(|| format!("connecting to {ep}"))?;
            Conn::Etcd(Box::new(c))
        } else {
            Conn::Http(Some(Http::connect(ep).await?), ep.clone())
        };
        workers.push(Worker { op, conn, tag: format!("{step}-{w}"), value: value.clone(), n: 0 });
    }
    let start = Instant::now();
    let window_start = start + args.warmup;
    let window_end = window_start + args.duration;
    let mut tasks = Vec::with_capacity(clients);
    for mut worker in workers {
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut bytes, mut errors, mut first_error) = (Vec::new(), 0u64, 0u64, None);
            while Instant::now() < window_end {
                let began = Instant::now();
                let res = worker.once().await;
                let done = Instant::now();
                let counted = done >= window_start && done <= window_end;
                match res {
                    Ok(b) if counted => {
                        lat.push((done - began).as_micros().min(u32::MAX as u128) as u32);
                        bytes += b;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        errors += u64::from(counted);
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        // Do not spin on a refused connection.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (lat, bytes, errors, first_error)
        }));
    }
    tokio::time::sleep_until(window_start.into()).await;
    let before = Counters::read(server_pids);
    tokio::time::sleep_until(window_end.into()).await;
    let usage = Counters::read(server_pids).usage_since(&before, args.duration.as_secs_f64());
    let mut result = StepResult {
        op,
        clients,
        window: args.duration,
        latencies_us: Vec::new(),
        bytes: 0,
        errors: 0,
        first_error: None,
        usage,
        terms: None,
    };
    for t in tasks {
        let (lat, bytes, errors, first_error) = t.await.context("a load worker failed")?;
        result.latencies_us.extend(lat);
        result.bytes += bytes;
        result.errors += errors;
        if result.first_error.is_none() {
            result.first_error = first_error;
        }
    }
    // A step in which nothing succeeded is a result too (0/s); the report shows it
    // with its first error.
    if result.latencies_us.is_empty() && result.first_error.is_none() {
        result.first_error = Some(format!("no request completed within the {:?} window", args.duration));
    }
    result.latencies_us.sort_unstable();
    Ok(result)
}

/// The ConfigMaps `get-000`… that the get step reads, and the small namespace.
async fn create_read_targets(endpoint: &str, value_size: usize) -> Result<()> {
    let mut c = Http::connect(endpoint).await?;
    let value = value_of_size(value_size);
    let ns =
        Bytes::from(format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{SMALL_NAMESPACE}"}}}}"#));
    c.call(Method::POST, "/api/v1/namespaces", Some(ns))
        .await
        .and_then(|r| r.expect(StatusCode::CREATED))
        .with_context(|| format!("creating namespace {SMALL_NAMESPACE}"))?;
    let targets = (0..GET_TARGETS).map(|i| (CONFIGMAPS, format!("get-{i:03}")));
    let small = (0..SMALL_NAMESPACE_SIZE).map(|i| (SMALL_CONFIGMAPS, format!("small-{i:04}")));
    for (path, name) in targets.chain(small) {
        c.call(Method::POST, path, Some(configmap(&name, &value)))
            .await
            .and_then(|r| r.expect(StatusCode::CREATED))
            .with_context(|| format!("creating ConfigMap {name}"))?;
    }
    Ok(())
}

/// ConfigMaps in a namespace, from one list page's `remainingItemCount`.
async fn count_configmaps(endpoint: &str, ns: &str) -> Result<usize> {
    let mut c = Http::connect(endpoint).await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps?limit=1");
    let v = c.call(Method::GET, &path, None).await?.expect(StatusCode::OK)?.json()?;
    let items = v["items"].as_array().map_or(0, Vec::len);
    let remaining = v.pointer("/metadata/remainingItemCount").and_then(Value::as_u64).unwrap_or(0);
    Ok(items + remaining as usize)
}

// === the full list of many pods ===

struct PodsReport {
    created: usize,
    create_secs: f64,
    create_errors: usize,
    first_error: Option<String>,
    /// One per format: JSON, then Table.
    lists: Vec<ListTiming>,
    /// VmRSS of each replica once the pods exist, KiB.
    rss: Vec<u64>,
}

struct ListTiming {
    format: &'static str,
    /// Whole request (until the last body byte), sorted.
    total_us: Vec<u32>,
    /// Until the response headers, sorted.
    headers_us: Vec<u32>,
    bytes: usize,
    /// Items (JSON) or rows (Table) in the untimed first response.
    items: usize,
    /// Server CPU (three replicas) per request, in core-milliseconds.
    server_cpu_ms: f64,
}

/// Creates `args.pods` pods with `args.pod_clients` clients, then times the full list
/// as JSON and as a Table, each request on the next replica in turn.
async fn big_list(cluster: &mut Cluster, args: &Args) -> Result<PodsReport> {
    let (endpoints, pids) = rk_endpoints(cluster).await?;
    progress(format!("creating {} pods with {} clients", args.pods, args.pod_clients));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.pod_clients {
        let ep = endpoints[w % endpoints.len()].clone();
        let next = next.clone();
        let total = args.pods;
        tasks.push(tokio::spawn(async move {
            let (mut created, mut errors, mut first_error) = (0usize, 0usize, None::<String>);
            let mut conn: Option<Http> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let name = format!("pod-{i:05}");
                // A failed attempt may still have been applied: a retry that finds the
                // pod there counts it as created.
                for attempt in 0..3 {
                    let res = async {
                        if conn.is_none() {
                            conn = Some(Http::connect(&ep).await?);
                        }
                        let c = conn.as_mut().context("not connected")?;
                        c.call(Method::POST, PODS, Some(pod(&name))).await
                    }
                    .await;
                    match res {
                        Ok(r) if r.status == StatusCode::CREATED => {
                            created += 1;
                            break;
                        }
                        Ok(r) if r.status == StatusCode::CONFLICT && attempt > 0 => {
                            created += 1;
                            break;
                        }
                        Ok(r) => {
                            errors += 1;
                            if let Err(e) = r.expect(StatusCode::CREATED) {
                                first_error.get_or_insert_with(|| format!("{e:#}"));
                            }
                        }
                        Err(e) => {
                            errors += 1;
                            conn = None;
                            first_error.get_or_insert_with(|| format!("{e:#}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
            (created, errors, first_error)
        }));
    }
    let (mut created, mut create_errors, mut first_error) = (0, 0, None);
    for t in tasks {
        let (c, e, f) = t.await.context("a pod-creating worker failed")?;
        created += c;
        create_errors += e;
        first_error = first_error.or(f);
    }
    let create_secs = started.elapsed().as_secs_f64();
    progress(format!(
        "{created} pods created in {create_secs:.1} s ({:.0}/s), {create_errors} failed attempts",
        created as f64 / create_secs
    ));
    if created == 0 {
        bail!("no pod could be created; first error: {}", first_error.as_deref().unwrap_or("none"));
    }
    let rss = pids.iter().map(|p| rss_kib(*p)).collect::<Result<_>>()?;

    let mut lists = Vec::new();
    for (format, accept) in [("JSON", "application/json"), ("Table", TABLE)] {
        let t = time_list(&endpoints, &pids, format, accept, args.list_requests).await?;
        progress(format!(
            "full pod list as {format}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.1} MiB, {} items",
            ms(quantile(&t.total_us, 0.5)),
            ms(quantile(&t.total_us, 0.99)),
            ms(quantile(&t.total_us, 1.0)),
            t.bytes as f64 / MIB,
            t.items
        ));
        lists.push(t);
    }
    Ok(PodsReport { created, create_secs, create_errors, first_error, lists, rss })
}

async fn time_list(
    endpoints: &[String],
    pids: &[u32],
    format: &'static str,
    accept: &str,
    requests: usize,
) -> Result<ListTiming> {
    let mut conns = Vec::new();
    for ep in endpoints {
        conns.push(Http::connect(ep).await?);
    }
    // One untimed request per replica first: it checks the answer and warms the
    // connections.
    let mut items = 0;
    for c in &mut conns {
        let reply = c
            .exchange(Method::GET, PODS, Some(accept), None)
            .await?
            .expect(StatusCode::OK)
            .with_context(|| format!("listing pods as {format} from {}", c.addr))?;
        let v = reply.json()?;
        let key = if format == "Table" { "rows" } else { "items" };
        items = v[key].as_array().map_or(0, Vec::len);
    }
    let (mut total_us, mut headers_us, mut bytes) = (Vec::new(), Vec::new(), 0);
    let before = Counters::read(pids);
    let started = Instant::now();
    for i in 0..requests {
        let c = &mut conns[i % endpoints.len()];
        let began = Instant::now();
        let reply = c.exchange(Method::GET, PODS, Some(accept), None).await?.expect(StatusCode::OK)?;
        let done = Instant::now();
        total_us.push((done - began).as_micros().min(u32::MAX as u128) as u32);
        headers_us.push((reply.headers_at - began).as_micros().min(u32::MAX as u128) as u32);
        bytes = reply.body.len();
    }
    let secs = started.elapsed().as_secs_f64();
    let usage = Counters::read(pids).usage_since(&before, secs);
    total_us.sort_unstable();
    headers_us.sort_unstable();
    Ok(ListTiming {
        format,
        total_us,
        headers_us,
        bytes,
        items,
        server_cpu_ms: usage.server_cpu * secs * 1000.0 / requests as f64,
    })
}

// === watch latency ===

/// A change gives up waiting for its watch event after this (and counts as missed).
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Changes made before the timed ones, not counted.
const WATCH_WARMUP: usize = 20;

struct WatchRound {
    label: String,
    /// The write request (start to response), sorted.
    write_us: Vec<u32>,
    /// From the start of the write to the event on the watch, sorted.
    start_to_event_us: Vec<u32>,
    /// From the write's response to the event (negative: the event came first), sorted.
    response_to_event_us: Vec<i64>,
    missed: usize,
}

impl WatchRound {
    fn summary(&self) -> String {
        format!(
            "{}: {} changes, response→event p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; write start→event p50 {:.2} \
             ms, p99 {:.2} ms; {} missed",
            self.label,
            self.write_us.len(),
            signed_ms(&self.response_to_event_us, 0.5),
            signed_ms(&self.response_to_event_us, 0.99),
            signed_ms(&self.response_to_event_us, 1.0),
            ms(quantile(&self.start_to_event_us, 0.5)),
            ms(quantile(&self.start_to_event_us, 0.99)),
            self.missed
        )
    }
}

/// The `q` quantile (nearest rank) of sorted signed microseconds, in ms.
fn signed_ms(sorted_us: &[i64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

/// Opens a watch on ConfigMaps at `watch_ep` from the current revision, then creates
/// ConfigMaps through `write_ep` one at a time, each after the previous one's event
/// arrived, and times when each event arrives.
async fn watch_round(
    label: &str,
    watch_ep: &str,
    write_ep: &str,
    round: usize,
    events: usize,
    value_size: usize,
) -> Result<WatchRound> {
    progress(format!("{label}: {WATCH_WARMUP} + {events} changes"));
    let mut watcher = Http::connect(watch_ep).await?;
    let list = watcher.call(Method::GET, &format!("{CONFIGMAPS}?limit=1"), None).await?.expect(StatusCode::OK)?;
    let rv = list.json()?.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
    if rv.is_empty() {
        bail!("the ConfigMap list from {watch_ep} has no resourceVersion");
    }
    let path = format!("{CONFIGMAPS}?watch=true&resourceVersion={rv}&timeoutSeconds=3600");
    let req = watcher.request(Method::GET, &path, None, None)?;
    let resp = tokio::time::timeout(REQUEST_TIMEOUT, watcher.send(req)).await.map_err(|_| anyhow!("no watch"))??;
    if resp.status() != StatusCode::OK {
        bail!("the watch at {watch_ep} answered HTTP {}", resp.status());
    }
    // The reader stamps each chunk as it arrives and passes on (type, name, when).
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, String, Instant)>();
    let mut body = resp.into_body();
    let reader = tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let at = Instant::now();
            let Ok(data) = frame.into_data() else { continue };
            buf.extend_from_slice(&data);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let v: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
                let kind = v["type"].as_str().unwrap_or("?").to_string();
                let name = v.pointer("/object/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
                let what =
                    if kind == "ERROR" { v["object"]["message"].as_str().unwrap_or("").to_string() } else { name };
                if tx.send((kind, what, at)).is_err() {
                    return;
                }
            }
        }
    });
    let result = async {
        let mut writer = Http::connect(write_ep).await?;
        let value = value_of_size(value_size);
        let mut r = WatchRound {
            label: label.to_string(),
            write_us: Vec::new(),
            start_to_event_us: Vec::new(),
            response_to_event_us: Vec::new(),
            missed: 0,
        };
        for i in 0..WATCH_WARMUP + events {
            let name = format!("watch-{round}-{i:05}");
            let began = Instant::now();
            writer
                .call(Method::POST, CONFIGMAPS, Some(configmap(&name, &value)))
                .await
                .and_then(|r| r.expect(StatusCode::CREATED))
                .with_context(|| format!("creating ConfigMap {name} through {write_ep}"))?;
            let done = Instant::now();
            let arrived = loop {
                match tokio::time::timeout_at((done + EVENT_TIMEOUT).into(), rx.recv()).await {
                    Ok(Some((kind, what, at))) if kind == "ADDED" && what == name => break Some(at),
                    Ok(Some((kind, what, _))) if kind == "ERROR" => bail!("the watch at {watch_ep} failed: {what}"),
                    Ok(Some(_)) => {}
                    Ok(None) => bail!("the watch at {watch_ep} ended after {} changes", i),
                    Err(_) => break None,
                }
            };
            if i < WATCH_WARMUP {
                continue;
            }
            let Some(at) = arrived else {
                r.missed += 1;
                continue;
            };
            let us = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
            r.write_us.push(us(done - began));
            r.start_to_event_us.push(us(at - began));
            r.response_to_event_us.push(if at >= done {
                (at - done).as_micros() as i64
            } else {
                -((done - at).as_micros() as i64)
            });
        }
        r.write_us.sort_unstable();
        r.start_to_event_us.sort_unstable();
        r.response_to_event_us.sort_unstable();
        Ok(r)
    }
    .await;
    reader.abort();
    result
}

// === report ===

fn markdown(args: &Args, r: &Report) -> String {
    let m = machine();
    let mut s = String::new();
    let cmd: Vec<String> = std::env::args().collect();
    let bin_dir = std::env::var("RK_BIN_DIR").map(|d| format!("RK_BIN_DIR={d} ")).unwrap_or_default();
    let _ = writeln!(s, "## Kubernetes API: rk\n");
    let _ = writeln!(s, "- Command: `{bin_dir}{}`", cmd.join(" "));
    let _ = writeln!(
        s,
        "- Machine: {} CPUs ({}), {:.1} GiB memory, Linux {}; data on {}",
        m.cpus, m.cpu_model, m.mem_gib, m.kernel, m.tmp_fs
    );
    let _ = writeln!(s, "- rk: {}; 3 replicas with the harness's defaults", r.rk_version);
    if let Some(v) = &r.etcd_version {
        let _ = writeln!(
            s,
            "- etcd: {v}; 3 members, default flags (fsync on); its peer traffic goes through the same fault-injection \
             proxy (in the bench process) as rk's"
        );
    }
    let _ = writeln!(
        s,
        "- Load: HTTP/1.1 with hyper, one keep-alive connection per client task (TCP_NODELAY), `etcd-client` 0.17 \
         for etcd; client w talks to member (L + w) mod 3 where L is the leader (1 client talks to the leader); one \
         request at a time per client; {} s warm-up, then {} s measured per step; a request counts when it completes \
         inside the window. Reads are linearizable (no resourceVersion). The clients share the machine's {} CPUs \
         with the servers: server CPU is the three members together, bench CPU this process (clients and peer \
         proxies), machine CPU all busy time in /proc/stat ({} cores at most).",
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64(),
        m.cpus,
        m.cpus
    );
    let _ = writeln!(s);

    if !r.writes.is_empty() {
        let _ = writeln!(s, "### Creates vs etcd puts\n");
        let _ = writeln!(
            s,
            "`POST {CONFIGMAPS}` of a ConfigMap with {} B of data (unique names), against etcd puts of {} B values \
             (unique keys).\n",
            args.value_size, args.value_size
        );
        step_table(&mut s, &r.writes, false);
        let creates = r.writes.iter().filter(|st| st.op == Op::Create);
        let ratios: Vec<String> = creates
            .filter_map(|c| {
                let p = r.writes.iter().find(|p| p.op == Op::EtcdPut && p.clients == c.clients)?;
                Some(format!(
                    "| {} | {:.0} | {:.0} | {:.2}× | {:.2}× | {:.2}× |",
                    c.clients,
                    c.ops_per_sec(),
                    p.ops_per_sec(),
                    c.ops_per_sec() / p.ops_per_sec(),
                    ms(c.p(0.5)) / ms(p.p(0.5)),
                    ms(c.p(0.99)) / ms(p.p(0.99))
                ))
            })
            .collect();
        if !ratios.is_empty() {
            let _ = writeln!(
                s,
                "REST creates / etcd puts (throughput: above 1 is better for rk; latency: below 1 is better for rk):\n"
            );
            let _ = writeln!(s, "| clients | creates/s | etcd puts/s | throughput ratio | p50 ratio | p99 ratio |");
            let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|");
            let _ = writeln!(s, "{}\n", ratios.join("\n"));
        }
        let at64 = |op: Op| r.writes.iter().find(|st| st.op == op && st.clients == 64);
        let _ = match (at64(Op::Create), at64(Op::EtcdPut)) {
            (Some(c), Some(p)) => {
                let ratio = c.ops_per_sec() / p.ops_per_sec();
                writeln!(
                    s,
                    "Target: REST creates ≥ 1.0× etcd puts at 64 clients — **{}** ({ratio:.2}×).\n",
                    if ratio >= 1.0 { "met" } else { "not met" }
                )
            }
            _ => writeln!(s, "Target: REST creates ≥ 1.0× etcd puts at 64 clients — not measured in this run.\n"),
        };
    }

    if !r.reads.is_empty() {
        let _ = writeln!(s, "### Gets and lists\n");
        let _ = writeln!(
            s,
            "Get: `GET {CONFIGMAPS}/get-NNN`, {GET_TARGETS} ConfigMaps in turn. List: `GET {CONFIGMAPS}?limit=500` \
             (the first page); `default` held {} ConfigMaps of {} B data (those of the create steps). Small \
             namespace: the same list in `{SMALL_NAMESPACE}`, which holds {SMALL_NAMESPACE_SIZE} such ConfigMaps.\n",
            r.configmaps, args.value_size
        );
        step_table(&mut s, &r.reads, true);
    }

    if let Some(p) = &r.pods {
        let _ = writeln!(s, "### List of {} pods\n", p.created);
        let _ = writeln!(
            s,
            "{} pods (one container: name and image) created in {:.1} s by {} clients ({:.0} pods/s, {} failed \
             attempts). Then `GET {PODS}` (no limit, linearizable), {} timed requests per format, one at a time, each \
             on the next replica (after one untimed request to each). Headers = until the response headers arrived \
             (rk renders the whole body first); server CPU = the three replicas' CPU time per request.\n",
            p.created,
            p.create_secs,
            args.pod_clients,
            p.created as f64 / p.create_secs,
            p.create_errors,
            args.list_requests
        );
        let _ = writeln!(
            s,
            "| format | requests | p50 ms | p99 ms | max ms | headers p50 ms | server CPU ms/request | response MiB | items |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for l in &p.lists {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} |",
                l.format,
                l.total_us.len(),
                ms(quantile(&l.total_us, 0.5)),
                ms(quantile(&l.total_us, 0.99)),
                ms(quantile(&l.total_us, 1.0)),
                ms(quantile(&l.headers_us, 0.5)),
                l.server_cpu_ms,
                l.bytes as f64 / MIB,
                l.items
            );
        }
        let _ = writeln!(s);
        if let Some(json) = p.lists.iter().find(|l| l.format == "JSON") {
            let p99 = ms(quantile(&json.total_us, 0.99));
            let _ = writeln!(
                s,
                "Target: list of 10,000 pods ≤ 200 ms — **{}** (JSON p50 {:.0} ms, p99 {p99:.0} ms{}).\n",
                if p99 <= 200.0 && p.created >= 10_000 { "met" } else { "not met" },
                ms(quantile(&json.total_us, 0.5)),
                if p.created < 10_000 { format!("; only {} pods", p.created) } else { String::new() }
            );
        }
        let cells: Vec<String> = p.rss.iter().map(|k| format!("{:.0}", mib(*k))).collect();
        let _ = writeln!(s, "Replica memory (VmRSS) with the pods stored: {} MiB.\n", cells.join(" / "));
        if let Some(e) = &p.first_error {
            let _ = writeln!(s, "First pod creation error: `{e}`\n");
        }
    }

    if !r.watches.is_empty() {
        let _ = writeln!(s, "### Watch latency\n");
        let _ = writeln!(
            s,
            "A watch on ConfigMaps (`?watch=true&resourceVersion=<current>`) on one replica; a client on another \
             replica creates ConfigMaps one at a time, each once the previous one's event arrived ({} untimed \
             first). Response→event: from the write's response to the event on the watch (negative: the event came \
             first); start→event: from sending the write.\n",
            WATCH_WARMUP
        );
        let _ = writeln!(
            s,
            "| placement | changes | response→event p50 ms | p99 ms | max ms | start→event p50 ms | p99 ms | max ms | write p50 ms | missed |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for w in &r.watches {
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                w.label,
                w.write_us.len(),
                signed_ms(&w.response_to_event_us, 0.5),
                signed_ms(&w.response_to_event_us, 0.99),
                signed_ms(&w.response_to_event_us, 1.0),
                ms(quantile(&w.start_to_event_us, 0.5)),
                ms(quantile(&w.start_to_event_us, 0.99)),
                ms(quantile(&w.start_to_event_us, 1.0)),
                ms(quantile(&w.write_us, 0.5)),
                w.missed
            );
        }
        let worst = r.watches.iter().map(|w| signed_ms(&w.response_to_event_us, 0.99)).fold(f64::MIN, f64::max);
        let missed: usize = r.watches.iter().map(|w| w.missed).sum();
        let _ = writeln!(
            s,
            "\nTarget: a change reaches a watch in ≤ 10 ms p99 — **{}** (worst placement: response→event p99 \
             {worst:.2} ms{}).\n",
            if worst <= 10.0 && missed == 0 { "met" } else { "not met" },
            if missed > 0 {
                format!(", {missed} changes never arrived within {EVENT_TIMEOUT:?}")
            } else {
                String::new()
            }
        );
    }

    if !r.rss_end.is_empty() {
        let cells: Vec<String> = r.rss_end.iter().map(|k| format!("{:.0}", mib(*k))).collect();
        let _ = writeln!(s, "Replica memory (VmRSS) at the end: {} MiB.\n", cells.join(" / "));
    }

    let elections: Vec<String> = r
        .writes
        .iter()
        .chain(&r.reads)
        .filter_map(|st| {
            let (a, b) = st.terms.filter(|(a, b)| a != b)?;
            Some(format!("- {}, {} clients: raft term {a} → {b}", st.op.label(), st.clients))
        })
        .collect();
    if !elections.is_empty() {
        let _ = writeln!(s, "Elections during steps (rk's raft term moved):\n\n{}\n", elections.join("\n"));
    }
    let errors: Vec<String> = r
        .writes
        .iter()
        .chain(&r.reads)
        .filter_map(|st| st.first_error.as_ref().map(|e| format!("- {}, {} clients: `{e}`", st.op.label(), st.clients)))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(s, "First error of each step that had one (warm-up included):\n\n{}\n", errors.join("\n"));
    }
    s
}

/// A table of load steps; `sizes`: with the average response size.
fn step_table(s: &mut String, steps: &[StepResult], sizes: bool) {
    let size_h = if sizes { " avg response KiB |" } else { "" };
    let size_d = if sizes { "---:|" } else { "" };
    let _ = writeln!(
        s,
        "| request | clients | req/s | p50 ms | p99 ms | max ms | errors |{size_h} server CPU (cores) | server disk MiB/s | bench CPU (cores) | machine CPU (cores) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|{size_d}---:|---:|---:|---:|");
    for st in steps {
        let size = if sizes { format!(" {:.1} |", st.avg_kib()) } else { String::new() };
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} |{size} {:.2} | {:.1} | {:.2} | {:.2} |",
            st.op.label(),
            st.clients,
            st.ops_per_sec(),
            ms(st.p(0.5)),
            ms(st.p(0.99)),
            ms(st.p(1.0)),
            st.errors,
            st.usage.server_cpu,
            st.usage.server_disk,
            st.usage.bench_cpu,
            st.usage.machine_cpu
        );
    }
    let _ = writeln!(s);
}
