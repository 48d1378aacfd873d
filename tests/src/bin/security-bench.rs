//! `security-bench`: what rk's security costs on the Kubernetes REST API, measured in
//! one run on two single-replica clusters:
//!
//! - **`--insecure-dev`** (plain HTTP, no credentials, everything allowed) against the
//!   default **TLS + authentication + RBAC + audit**, with two kinds of credentials: the
//!   admin's client certificate (`system:masters`) and a ServiceAccount token bound to
//!   `cluster-admin` (signature, claims and the account checked on each request). Every
//!   request is authorized by RBAC; none is refused.
//! - **encryption at rest**: 1 KiB Secrets (sealed with XChaCha20-Poly1305 on write,
//!   opened on read) next to 1 KiB ConfigMaps (stored as they are).
//!
//! Each step runs `--clients` keep-alive HTTP/1.1 connections for a warm-up and then a
//! measured window; the audit log is on throughout (the default). The result is a
//! Markdown section on stdout (and in `--out FILE`); progress goes to stderr.
//!
//! ```text
//! cargo build --release -p rk-control-plane --bin rk-server
//! cargo build --release -p rk-tests --bin security-bench
//! RK_BIN_DIR=target/release target/release/security-bench
//! ```

// Only a few of the shared helpers are used here.
#[allow(dead_code)]
#[path = "../bench.rs"]
mod bench;

use anyhow::{Context, Result, bail};
use bench::{machine, progress, rk_version};
use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rk_tests::{Cluster, ClusterOptions};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What rk's token authentication, RBAC and encryption at rest cost on the REST API.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// Concurrent clients (one keep-alive connection each).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Measured window of each step.
    #[arg(long, default_value = "5s", value_parser = bench::parse_duration)]
    duration: Duration,
    /// Warm-up before each window.
    #[arg(long, default_value = "1s", value_parser = bench::parse_duration)]
    warmup: Duration,
    /// Bytes of data in each ConfigMap and Secret.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Also write the Markdown result here.
    #[arg(long)]
    out: Option<PathBuf>,
}

const NS: &str = "/api/v1/namespaces/default";
const TARGETS: usize = 100;

/// How a client reaches a cluster: TLS settings (none for `--insecure-dev`) and a
/// bearer token.
#[derive(Clone)]
struct Auth {
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<Arc<String>>,
}

/// One keep-alive HTTP/1.1 connection.
struct Http {
    send: http1::SendRequest<Full<Bytes>>,
    host: String,
    token: Option<Arc<String>>,
}

impl Http {
    async fn connect(endpoint: &str, auth: &Auth) -> Result<Http> {
        let io = rk_tests::connect_io(endpoint, auth.tls.clone())
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        let (send, conn) = http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Http { send, host: endpoint.to_string(), token: auth.token.clone() })
    }

    async fn call(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send.ready().await?;
        let resp = self.send.send_request(req.body(Full::new(body.unwrap_or_default()))?).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    async fn expect(&mut self, method: Method, path: &str, body: Option<Bytes>, want: StatusCode) -> Result<Bytes> {
        let (status, bytes) = self.call(method, path, body).await?;
        if status != want {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
        }
    }

    fn body(self, name: &str, value: &str) -> Bytes {
        use base64::Engine;
        Bytes::from(match self {
            Kind::ConfigMap => format!(r#"{{"metadata":{{"name":"{name}"}},"data":{{"v":"{value}"}}}}"#),
            Kind::Secret => {
                // `data` holds base64: a 1 KiB value is 1 KiB once decoded.
                let b64 = base64::engine::general_purpose::STANDARD.encode(value);
                format!(r#"{{"metadata":{{"name":"{name}"}},"data":{{"v":"{b64}"}}}}"#)
            }
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Get(Kind),
    Create(Kind),
}

impl Op {
    fn label(self) -> String {
        match self {
            Op::Get(k) => format!("GET one {}", k.plural().trim_end_matches('s')),
            Op::Create(k) => format!("POST {}", k.plural()),
        }
    }
}

/// Requests per second of `op` over `clients` connections.
async fn step(endpoint: &str, op: Op, auth: &Auth, who: &str, args: &Args, value: &Arc<String>) -> Result<f64> {
    static STEPS: AtomicUsize = AtomicUsize::new(0);
    let step = STEPS.fetch_add(1, Ordering::Relaxed);
    progress(format!("{} {who}: {} clients", op.label(), args.clients));
    let start = Instant::now();
    let (from, to) = (start + args.warmup, start + args.warmup + args.duration);
    let mut tasks = Vec::new();
    for w in 0..args.clients {
        let mut c = Http::connect(endpoint, auth).await?;
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let (mut done, mut n) = (0u64, 0usize);
            while Instant::now() < to {
                let result = match op {
                    Op::Get(k) => {
                        let path = format!("{NS}/{}/get-{:03}", k.plural(), n % TARGETS);
                        c.expect(Method::GET, &path, None, StatusCode::OK).await
                    }
                    Op::Create(k) => {
                        let name = format!("s{step}-w{w}-{n}");
                        let path = format!("{NS}/{}", k.plural());
                        c.expect(Method::POST, &path, Some(k.body(&name, &value)), StatusCode::CREATED).await
                    }
                };
                result?;
                n += 1;
                let now = Instant::now();
                if now >= from && now <= to {
                    done += 1;
                }
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / args.duration.as_secs_f64())
}

/// Objects the GET steps read, in both clusters.
async fn seed(endpoint: &str, auth: &Auth, value: &str) -> Result<()> {
    let mut admin = Http::connect(endpoint, auth).await?;
    for kind in [Kind::ConfigMap, Kind::Secret] {
        for i in 0..TARGETS {
            let path = format!("{NS}/{}", kind.plural());
            admin
                .expect(Method::POST, &path, Some(kind.body(&format!("get-{i:03}"), value)), StatusCode::CREATED)
                .await?;
        }
    }
    Ok(())
}

/// A ServiceAccount token bound to `cluster-admin`, asked for as `admin`.
async fn admin_token(endpoint: &str, admin: &Auth) -> Result<Arc<String>> {
    let mut admin = Http::connect(endpoint, admin).await?;
    admin
        .expect(
            Method::POST,
            &format!("{NS}/serviceaccounts"),
            Some(Bytes::from(r#"{"metadata":{"name":"bench"}}"#)),
            StatusCode::CREATED,
        )
        .await?;
    let binding = r#"{"metadata":{"name":"bench-admin"},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
        "subjects":[{"kind":"ServiceAccount","name":"bench","namespace":"default"}]}"#;
    admin
        .expect(
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            Some(Bytes::from(binding)),
            StatusCode::CREATED,
        )
        .await?;
    let answer = admin
        .expect(
            Method::POST,
            &format!("{NS}/serviceaccounts/bench/token"),
            Some(Bytes::from("{}")),
            StatusCode::CREATED,
        )
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&answer)?;
    Ok(Arc::new(answer["status"]["token"].as_str().context("no token in the answer")?.to_string()))
}

async fn run(args: &Args) -> Result<String> {
    progress("starting a 1-replica --insecure-dev cluster and a 1-replica TLS cluster");
    let insecure = Cluster::start(ClusterOptions { replicas: 1, insecure: true, ..Default::default() }).await?;
    let secure = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let plain_ep = insecure.replicas[0].client_addr().to_string();
    let tls_ep = secure.replicas[0].client_addr().to_string();
    let creds = secure.admin.as_ref().context("the TLS cluster has no admin credentials")?;
    let plain = Auth { tls: None, token: None };
    let cert = Auth { tls: Some(Arc::new(creds.rustls(true)?)), token: None };
    let token = Auth { tls: Some(Arc::new(creds.rustls(false)?)), token: Some(admin_token(&tls_ep, &cert).await?) };
    let value = Arc::new("x".repeat(args.value_size));
    seed(&plain_ep, &plain, &value).await?;
    seed(&tls_ep, &cert, &value).await?;

    let ops = [Op::Get(Kind::ConfigMap), Op::Get(Kind::Secret), Op::Create(Kind::ConfigMap), Op::Create(Kind::Secret)];
    let mut rows = Vec::new();
    for op in ops {
        let a = step(&plain_ep, op, &plain, "--insecure-dev", args, &value).await?;
        let c = step(&tls_ep, op, &cert, "TLS + client certificate", args, &value).await?;
        let t = step(&tls_ep, op, &token, "TLS + token", args, &value).await?;
        rows.push((op, a, c, t));
    }

    let m = machine();
    let mut s = String::new();
    let bin_dir = std::env::var("RK_BIN_DIR").map(|d| format!("RK_BIN_DIR={d} ")).unwrap_or_default();
    let cmd: Vec<String> = std::env::args().collect();
    writeln!(s, "## Security costs on the REST API\n")?;
    writeln!(s, "- Command: `{bin_dir}{}`", cmd.join(" "))?;
    writeln!(
        s,
        "- Machine: {} CPUs ({}), {:.1} GiB memory, Linux {}; data on {}",
        m.cpus, m.cpu_model, m.mem_gib, m.kernel, m.tmp_fs
    )?;
    writeln!(s, "- rk: {}", rk_version())?;
    writeln!(s)?;
    writeln!(
        s,
        "Two single-replica clusters in one run, audit log on in both; {} clients (keep-alive HTTP/1.1, TLS \
         sessions set up once per connection), {:?} warm-up and {:?} measured per step; {} B values.",
        args.clients, args.warmup, args.duration, args.value_size
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "| Request | --insecure-dev (/s) | TLS + client cert + RBAC (/s) | TLS + token + RBAC (/s) | cert / insecure | \
         token / insecure |"
    )?;
    writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: |")?;
    for (op, a, c, t) in &rows {
        let ratio = |x: f64| x / a.max(f64::MIN_POSITIVE);
        writeln!(s, "| {} | {a:.0} | {c:.0} | {t:.0} | {:.2} | {:.2} |", op.label(), ratio(*c), ratio(*t))?;
    }
    writeln!(s)?;
    let find = |want: &str| rows.iter().find(|(op, ..)| op.label() == want).map(|(_, a, ..)| *a).unwrap_or(0.0);
    let get_ratio = find("GET one secret") / find("GET one configmap").max(f64::MIN_POSITIVE);
    let post_ratio = find("POST secrets") / find("POST configmaps").max(f64::MIN_POSITIVE);
    writeln!(
        s,
        "Encryption at rest (Secrets against ConfigMaps of the same size, --insecure-dev cluster): \
         GET {get_ratio:.2}×, POST {post_ratio:.2}×."
    )?;
    drop((insecure, secure));
    Ok(s)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("security-bench: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print!("{report}");
            if let Some(out) = &args.out
                && let Err(e) = std::fs::write(out, &report)
            {
                eprintln!("security-bench: cannot write {}: {e}", out.display());
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("security-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
