//! Simulated containers for scale tests: thousands of nodes and their pods in one
//! process. Nothing runs. A container is a start time and a *plan*; its state is
//! computed from the two whenever it is asked for, so a container costs about a
//! hundred bytes and no task or timer.
//!
//! A container runs until it is stopped, unless its annotations (the pod's, passed
//! in [`ContainerConfig::annotations`]) plan otherwise:
//!
//! | annotation                         | effect                                               |
//! |------------------------------------|------------------------------------------------------|
//! | `rk.io/hollow-crash-after-seconds` | exits after that long with the exit code (default 1) |
//! | `rk.io/hollow-run-seconds`         | exits after that long with the exit code (default 0) |
//! | `rk.io/hollow-exit-code`           | the exit code of either plan; alone it does nothing  |
//! | `rk.io/hollow-start-error`         | the start fails with this message                    |
//!
//! Seconds may be fractional. With both durations set, the crash wins. A stopped
//! container exits at once with 143 (as a process ended by SIGTERM), whatever the
//! grace period. Sandboxes get IPs from the pod CIDR given to [`HollowRuntime::new`].
//!
//! Container ids are `hollow-<n>`, unique within one runtime. Times come from
//! tokio's clock, so tests can run plans with paused time.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::process::format_timestamp;
use super::{
    ContainerConfig, ContainerInfo, ExecSession, LogOptions, PodRef, Result, Runtime, RuntimeError, Sandbox,
    SandboxConfig, State, Stats,
};

/// Exit after this many seconds with [`EXIT_CODE`] (default 1).
pub const CRASH_AFTER_SECONDS: &str = "rk.io/hollow-crash-after-seconds";
/// Exit after this many seconds with [`EXIT_CODE`] (default 0).
pub const RUN_SECONDS: &str = "rk.io/hollow-run-seconds";
/// The exit code of a planned exit.
pub const EXIT_CODE: &str = "rk.io/hollow-exit-code";
/// Fail the start with this message.
pub const START_ERROR: &str = "rk.io/hollow-start-error";

/// Exit code of a stopped container: 128 + SIGTERM.
const STOPPED_EXIT_CODE: i32 = 143;
/// Synthetic usage of a running container: 1% of a core and this much memory.
const CPU_SHARE_DIVISOR: u32 = 100;
const MEMORY_BYTES: u64 = 4 * 1024 * 1024;

/// Why a [`HollowRuntime`] cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum HollowError {
    #[error("invalid pod CIDR {cidr:?}: {why} (expected e.g. 10.244.1.0/24)")]
    PodCidr { cidr: String, why: &'static str },
}

/// The hollow runtime of one simulated node.
pub struct HollowRuntime {
    node_name: String,
    cidr: PodCidr,
    /// A tokio instant and the wall-clock time it stands for: containers keep only
    /// instants (which paused-time tests move) and report wall-clock times from them.
    clock: (Instant, SystemTime),
    /// Shared with following log streams, which re-read their container's end.
    state: Arc<Mutex<Inner>>,
    /// Bumped whenever a container is stopped or removed. Following log streams
    /// watch it, so no container needs a notifier of its own.
    changes: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    sandboxes: HashMap<Arc<str>, HollowSandbox>,
    containers: HashMap<u64, HollowContainer>,
    next_container: u64,
    /// Next never-used host offset in the CIDR; released offsets are reused first.
    next_ip: u32,
    free_ips: Vec<u32>,
    /// One copy of each image name, shared by every container that uses it.
    images: HashSet<Arc<str>>,
}

struct HollowSandbox {
    pod: Arc<PodRef>,
    /// Host offset in the pod CIDR; `None` for host-network pods.
    ip: Option<u32>,
}

/// Kept small on purpose (a test asserts the size): one per simulated container.
struct HollowContainer {
    /// Shared with the sandbox and the pod's other containers.
    pod: Arc<PodRef>,
    name: Box<str>,
    image: Arc<str>,
    attempt: u32,
    started: Instant,
    /// When (after the start) it exits by itself, and with what code.
    plan: Option<(Duration, i32)>,
    /// When it was stopped, if it was stopped before its plan ended it.
    stopped: Option<Instant>,
}

impl HollowContainer {
    /// When it exited (or will exit, by plan), and with what code.
    fn end(&self) -> Option<(Instant, i32)> {
        // A plan too far out to be represented never ends.
        let planned = self.plan.and_then(|(after, code)| Some((self.started.checked_add(after)?, code)));
        match (planned, self.stopped) {
            (Some(p), Some(s)) if p.0 <= s => Some(p),
            (_, Some(s)) => Some((s, STOPPED_EXIT_CODE)),
            (p, None) => p,
        }
    }

    fn exit_at(&self, now: Instant) -> Option<(Instant, i32)> {
        self.end().filter(|(at, _)| *at <= now)
    }
}

/// The pod CIDR sandbox IPs come from.
#[derive(Debug, Clone, Copy)]
struct PodCidr {
    network: u32,
    size: u32,
}

impl PodCidr {
    fn parse(cidr: &str) -> std::result::Result<Self, HollowError> {
        let bad = |why| HollowError::PodCidr { cidr: cidr.to_string(), why };
        let (addr, prefix) = cidr.split_once('/').ok_or_else(|| bad("no prefix length"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u32 = prefix.parse().map_err(|_| bad("the prefix length is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be between 8 and 30"));
        }
        let size = 1u32 << (32 - prefix);
        Ok(Self { network: u32::from(addr) & !(size - 1), size })
    }

    /// Host offsets handed out: not the network address, not `.1` (the gateway
    /// on a bridge), not the broadcast address.
    const FIRST: u32 = 2;

    fn last(&self) -> u32 {
        self.size - 2
    }

    fn addr(&self, offset: u32) -> String {
        Ipv4Addr::from(self.network + offset).to_string()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only means another thread panicked mid-update; the maps stay usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn container_id(key: u64) -> String {
    format!("hollow-{key}")
}

fn parse_id(id: &str) -> Result<u64> {
    id.strip_prefix("hollow-").and_then(|k| k.parse().ok()).ok_or_else(|| RuntimeError::NotFound(id.to_string()))
}

fn parse_seconds(annotations: &std::collections::BTreeMap<String, String>, key: &str) -> Result<Option<Duration>> {
    let Some(v) = annotations.get(key) else { return Ok(None) };
    v.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(Some)
        .ok_or_else(|| RuntimeError::Start(format!("annotation {key}: {v:?} is not a number of seconds")))
}

/// The plan a container's annotations describe.
fn plan(c: &ContainerConfig) -> Result<Option<(Duration, i32)>> {
    if let Some(msg) = c.annotations.get(START_ERROR) {
        return Err(RuntimeError::Start(msg.clone()));
    }
    let code = match c.annotations.get(EXIT_CODE) {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<i32>()
                .map_err(|_| RuntimeError::Start(format!("annotation {EXIT_CODE}: {v:?} is not an exit code")))?,
        ),
    };
    let crash = parse_seconds(&c.annotations, CRASH_AFTER_SECONDS)?;
    let run = parse_seconds(&c.annotations, RUN_SECONDS)?;
    Ok(match (crash, run) {
        (Some(after), _) => Some((after, code.unwrap_or(1))),
        (None, Some(after)) => Some((after, code.unwrap_or(0))),
        (None, None) => None,
    })
}

impl HollowRuntime {
    /// A runtime for node `node_name` whose sandboxes get IPs from `pod_cidr`
    /// (e.g. `10.244.3.0/24`; give each simulated node its own).
    pub fn new(node_name: &str, pod_cidr: &str) -> std::result::Result<Self, HollowError> {
        Ok(Self {
            node_name: node_name.to_string(),
            cidr: PodCidr::parse(pod_cidr)?,
            clock: (Instant::now(), SystemTime::now()),
            state: Arc::new(Mutex::new(Inner { next_ip: PodCidr::FIRST, ..Default::default() })),
            changes: watch::Sender::new(0),
        })
    }

    /// The wall-clock time of a tokio instant.
    fn wall(&self, at: Instant) -> SystemTime {
        let (base, wall) = self.clock;
        match at.checked_duration_since(base) {
            Some(d) => wall.checked_add(d).unwrap_or(wall),
            None => wall.checked_sub(base.duration_since(at)).unwrap_or(wall),
        }
    }

    fn state_of(&self, c: &HollowContainer, now: Instant) -> State {
        let started_at = self.wall(c.started);
        match c.exit_at(now) {
            None => State::Running { started_at },
            Some((at, code)) => State::Exited {
                exit_code: code,
                reason: if code == 0 { "Completed" } else { "Error" }.to_string(),
                started_at: Some(started_at),
                finished_at: self.wall(at),
            },
        }
    }

    fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The one log line of a container, if it exists, and its time.
    fn log_of(&self, key: u64) -> Option<(String, SystemTime)> {
        let inner = lock(&self.state);
        let c = inner.containers.get(&key)?;
        Some((format!("hollow container {} started\n", c.name), self.wall(c.started)))
    }
}

#[tonic::async_trait]
impl Runtime for HollowRuntime {
    fn name(&self) -> &'static str {
        "hollow"
    }

    async fn version(&self) -> Result<String> {
        Ok(format!("hollow://{}", env!("CARGO_PKG_VERSION")))
    }

    async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox> {
        let mut inner = lock(&self.state);
        if let Some(s) = inner.sandboxes.get(cfg.pod.uid.as_str()) {
            return Ok(Sandbox { id: cfg.pod.uid.clone(), ip: s.ip.map(|o| self.cidr.addr(o)) });
        }
        let ip = match cfg.host_network {
            true => None,
            false => Some(match inner.free_ips.pop() {
                Some(offset) => offset,
                None if inner.next_ip <= self.cidr.last() => {
                    inner.next_ip += 1;
                    inner.next_ip - 1
                }
                None => {
                    return Err(RuntimeError::Sandbox(format!(
                        "node {}: no free IP left in its pod CIDR",
                        self.node_name
                    )));
                }
            }),
        };
        let uid: Arc<str> = cfg.pod.uid.as_str().into();
        inner.sandboxes.insert(uid, HollowSandbox { pod: Arc::new(cfg.pod.clone()), ip });
        Ok(Sandbox { id: cfg.pod.uid.clone(), ip: ip.map(|o| self.cidr.addr(o)) })
    }

    async fn remove_sandbox(&self, pod_uid: &str) -> Result<()> {
        let mut inner = lock(&self.state);
        if let Some(s) = inner.sandboxes.remove(pod_uid) {
            inner.free_ips.extend(s.ip);
            inner.containers.retain(|_, c| c.pod.uid != pod_uid);
            drop(inner);
            self.bump();
        }
        Ok(())
    }

    async fn list_sandboxes(&self) -> Result<Vec<(PodRef, Sandbox)>> {
        let inner = lock(&self.state);
        Ok(inner
            .sandboxes
            .iter()
            .map(|(uid, s)| ((*s.pod).clone(), Sandbox { id: uid.to_string(), ip: s.ip.map(|o| self.cidr.addr(o)) }))
            .collect())
    }

    async fn start(&self, sandbox: &Sandbox, cfg: &SandboxConfig, c: &ContainerConfig) -> Result<String> {
        let plan = plan(c)?;
        let now = Instant::now();
        let mut inner = lock(&self.state);
        let pod = match inner.sandboxes.get(sandbox.id.as_str()) {
            Some(s) if sandbox.id == cfg.pod.uid => s.pod.clone(),
            _ => return Err(RuntimeError::Start(format!("pod {} has no sandbox {:?}", cfg.pod.uid, sandbox.id))),
        };
        let existing =
            inner.containers.iter().find(|(_, x)| x.pod.uid == pod.uid && *x.name == *c.name && x.attempt == c.attempt);
        if let Some((key, x)) = existing {
            // Started before: starting it again would run it twice.
            return match x.exit_at(now) {
                None => Ok(container_id(*key)),
                Some(_) => Err(RuntimeError::Start(format!("container {} already ran; start a new attempt", c.name))),
            };
        }
        let image = match inner.images.get(c.image.as_str()) {
            Some(image) => image.clone(),
            None => {
                let image: Arc<str> = c.image.as_str().into();
                inner.images.insert(image.clone());
                image
            }
        };
        let key = inner.next_container;
        inner.next_container += 1;
        let container = HollowContainer {
            pod,
            name: c.name.as_str().into(),
            image,
            attempt: c.attempt,
            started: now,
            plan,
            stopped: None,
        };
        inner.containers.insert(key, container);
        Ok(container_id(key))
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Result<()> {
        let key = parse_id(id)?;
        let now = Instant::now();
        let mut inner = lock(&self.state);
        let c = inner.containers.get_mut(&key).ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
        if c.exit_at(now).is_none() {
            c.stopped = Some(now);
            drop(inner);
            self.bump();
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let Ok(key) = parse_id(id) else { return Ok(()) };
        if lock(&self.state).containers.remove(&key).is_some() {
            self.bump();
        }
        Ok(())
    }

    async fn state(&self, id: &str) -> Result<State> {
        let key = parse_id(id)?;
        let inner = lock(&self.state);
        let c = inner.containers.get(&key).ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
        Ok(self.state_of(c, Instant::now()))
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>> {
        let now = Instant::now();
        let inner = lock(&self.state);
        Ok(inner
            .containers
            .iter()
            .map(|(key, c)| ContainerInfo {
                id: container_id(*key),
                pod: (*c.pod).clone(),
                container: c.name.to_string(),
                attempt: c.attempt,
                image: c.image.to_string(),
                state: self.state_of(c, now),
            })
            .collect())
    }

    async fn logs(&self, id: &str, opts: &LogOptions) -> Result<BoxStream<'static, Bytes>> {
        let key = parse_id(id)?;
        let (line, started_at) = self.log_of(key).ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
        let shown = opts.tail_lines != Some(0) && opts.since.is_none_or(|s| started_at >= s);
        let line = match (shown, opts.timestamps) {
            (false, _) => None,
            (true, false) => Some(Bytes::from(line)),
            (true, true) => Some(Bytes::from(format!("{} {line}", format_timestamp(started_at)))),
        };
        let first = stream::iter(line);
        if !opts.follow {
            return Ok(first.boxed());
        }
        // Follow: nothing more is ever written; the stream ends when the container
        // exits or is removed. The end is re-read whenever some container is stopped
        // or removed, and otherwise awaited as a timer.
        let mut changes = self.changes.subscribe();
        let state = self.state.clone();
        let end_of = move || lock(&state).containers.get(&key).map(|c| c.end().map(|(at, _)| at));
        let ended = async move {
            // Read after subscribing, so no change between the two goes unseen.
            while let Some(end) = end_of() {
                let planned = async {
                    match end {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = planned => return,
                }
            }
        };
        Ok(first.chain(stream::once(ended).filter_map(|()| async { None })).boxed())
    }

    async fn exec(&self, id: &str, cmd: Vec<String>, _tty: bool, stdin: bool) -> Result<ExecSession> {
        if !matches!(self.state(id).await?, State::Running { .. }) {
            return Err(RuntimeError::Other(format!("container {id} is not running")));
        }
        if cmd.is_empty() {
            return Err(RuntimeError::Other("exec needs a command".to_string()));
        }
        let stdin = stdin.then(|| Box::new(tokio::io::sink()) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>);
        Ok(ExecSession {
            stdin,
            output: stream::iter([(1u8, Bytes::from_static(b"hollow\n"))]).boxed(),
            exit: async { Ok(0) }.boxed(),
        })
    }

    async fn stats(&self, id: &str) -> Result<Stats> {
        let key = parse_id(id)?;
        let now = Instant::now();
        let inner = lock(&self.state);
        let c = inner.containers.get(&key).ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
        if c.exit_at(now).is_some() {
            return Ok(Stats::default());
        }
        let ran = now.saturating_duration_since(c.started) / CPU_SHARE_DIVISOR;
        Ok(Stats { cpu_nanos: u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX), memory_bytes: MEMORY_BYTES })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pod(uid: &str) -> SandboxConfig {
        SandboxConfig {
            pod: PodRef { uid: uid.into(), namespace: "default".into(), name: format!("pod-{uid}") },
            ..Default::default()
        }
    }

    fn container(name: &str, annotations: &[(&str, &str)]) -> ContainerConfig {
        let annotations: BTreeMap<String, String> =
            annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ContainerConfig { name: name.into(), image: "nginx".into(), annotations, ..Default::default() }
    }

    /// A runtime with one sandbox for pod `p1`.
    async fn node() -> (HollowRuntime, Sandbox, SandboxConfig) {
        let rt = HollowRuntime::new("hollow-1", "10.244.3.0/24").unwrap();
        let cfg = pod("p1");
        let sandbox = rt.run_sandbox(&cfg).await.unwrap();
        (rt, sandbox, cfg)
    }

    async fn exit_of(rt: &HollowRuntime, id: &str) -> Option<(i32, String, Duration)> {
        match rt.state(id).await.unwrap() {
            State::Exited { exit_code, reason, started_at: Some(s), finished_at } => {
                Some((exit_code, reason, finished_at.duration_since(s).unwrap()))
            }
            State::Running { .. } => None,
            other => panic!("unexpected state {other:?}"),
        }
    }

    async fn log_text(rt: &HollowRuntime, id: &str, opts: LogOptions) -> String {
        let chunks: Vec<Bytes> = rt.logs(id, &opts).await.unwrap().collect().await;
        String::from_utf8(chunks.concat()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_container_runs_until_it_is_stopped() {
        let (rt, sandbox, cfg) = node().await;
        let id = rt.start(&sandbox, &cfg, &container("web", &[])).await.unwrap();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(exit_of(&rt, &id).await, None);
        rt.stop(&id, Duration::from_secs(30)).await.unwrap();
        let exit = Some((143, "Error".to_string(), Duration::from_secs(3600)));
        assert_eq!(exit_of(&rt, &id).await, exit);
        // A second stop changes nothing.
        tokio::time::advance(Duration::from_secs(10)).await;
        rt.stop(&id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(exit_of(&rt, &id).await, exit);
    }

    #[tokio::test(start_paused = true)]
    async fn a_crash_plan_exits_with_its_code() {
        let (rt, sandbox, cfg) = node().await;
        let plan = [(CRASH_AFTER_SECONDS, "5"), (EXIT_CODE, "2")];
        let crash = rt.start(&sandbox, &cfg, &container("crash", &plan)).await.unwrap();
        let default = rt.start(&sandbox, &cfg, &container("default", &[(CRASH_AFTER_SECONDS, "1.5")])).await.unwrap();
        tokio::time::advance(Duration::from_millis(4900)).await;
        assert_eq!(exit_of(&rt, &crash).await, None);
        assert_eq!(exit_of(&rt, &default).await, Some((1, "Error".into(), Duration::from_millis(1500))));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(exit_of(&rt, &crash).await, Some((2, "Error".into(), Duration::from_secs(5))));
        // Stopping what has exited keeps its exit.
        rt.stop(&crash, Duration::from_secs(1)).await.unwrap();
        assert_eq!(exit_of(&rt, &crash).await, Some((2, "Error".into(), Duration::from_secs(5))));
        // The same attempt cannot run again.
        assert!(matches!(rt.start(&sandbox, &cfg, &container("crash", &plan)).await, Err(RuntimeError::Start(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_plan_completes() {
        let (rt, sandbox, cfg) = node().await;
        let done = rt.start(&sandbox, &cfg, &container("job", &[(RUN_SECONDS, "3")])).await.unwrap();
        let coded = [(RUN_SECONDS, "3"), (EXIT_CODE, "4")];
        let coded = rt.start(&sandbox, &cfg, &container("coded", &coded)).await.unwrap();
        let code_only = rt.start(&sandbox, &cfg, &container("forever", &[(EXIT_CODE, "0")])).await.unwrap();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(exit_of(&rt, &done).await, Some((0, "Completed".into(), Duration::from_secs(3))));
        assert_eq!(exit_of(&rt, &coded).await, Some((4, "Error".into(), Duration::from_secs(3))));
        assert_eq!(exit_of(&rt, &code_only).await, None, "an exit code alone plans nothing");
        let far = rt.start(&sandbox, &cfg, &container("far", &[(RUN_SECONDS, "1e19")])).await.unwrap();
        assert_eq!(exit_of(&rt, &far).await, None, "a plan beyond the clock's range never ends");
    }

    #[tokio::test(start_paused = true)]
    async fn bad_plans_and_planned_start_errors_fail_the_start() {
        let (rt, sandbox, cfg) = node().await;
        for bad in [
            vec![(CRASH_AFTER_SECONDS, "soon")],
            vec![(RUN_SECONDS, "-1")],
            vec![(RUN_SECONDS, "inf")],
            vec![(CRASH_AFTER_SECONDS, "1"), (EXIT_CODE, "1.5")],
        ] {
            let res = rt.start(&sandbox, &cfg, &container("bad", &bad)).await;
            assert!(matches!(res, Err(RuntimeError::Start(_))), "{bad:?}: {res:?}");
        }
        match rt.start(&sandbox, &cfg, &container("bad", &[(START_ERROR, "exec format error")])).await {
            Err(RuntimeError::Start(msg)) => assert_eq!(msg, "exec format error"),
            other => panic!("expected a start error, got {other:?}"),
        }
        let elsewhere = Sandbox { id: "nope".into(), ip: None };
        assert!(matches!(rt.start(&elsewhere, &pod("nope"), &container("c", &[])).await, Err(RuntimeError::Start(_))));
        assert!(rt.list().await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn sandboxes_get_unique_ips_from_the_pod_cidr() {
        let rt = HollowRuntime::new("hollow-1", "10.244.3.7/24").unwrap();
        let a = rt.run_sandbox(&pod("a")).await.unwrap();
        let b = rt.run_sandbox(&pod("b")).await.unwrap();
        assert_eq!(a.ip.as_deref(), Some("10.244.3.2"));
        assert_eq!(b.ip.as_deref(), Some("10.244.3.3"));
        assert_eq!(rt.run_sandbox(&pod("a")).await.unwrap(), a, "run_sandbox is idempotent");
        let host = rt.run_sandbox(&SandboxConfig { host_network: true, ..pod("h") }).await.unwrap();
        assert_eq!(host.ip, None);
        assert_eq!(rt.list_sandboxes().await.unwrap().len(), 3);

        // A removed sandbox's IP (and containers) are gone; the IP is used again.
        let id = rt.start(&a, &pod("a"), &container("c", &[])).await.unwrap();
        rt.remove_sandbox("a").await.unwrap();
        assert!(matches!(rt.state(&id).await, Err(RuntimeError::NotFound(_))));
        assert_eq!(rt.run_sandbox(&pod("c")).await.unwrap().ip.as_deref(), Some("10.244.3.2"));

        // A /30 has one address to give.
        let small = HollowRuntime::new("hollow-2", "10.244.4.0/30").unwrap();
        assert_eq!(small.run_sandbox(&pod("x")).await.unwrap().ip.as_deref(), Some("10.244.4.2"));
        assert!(matches!(small.run_sandbox(&pod("y")).await, Err(RuntimeError::Sandbox(_))));

        for bad in ["10.244.0.0", "10.244.0.0/33", "10.244.0.0/4", "nope/24", "10.244.0.0/x"] {
            assert!(HollowRuntime::new("n", bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn logs_hold_one_line_per_start() {
        let (rt, sandbox, cfg) = node().await;
        let id = rt.start(&sandbox, &cfg, &container("web", &[])).await.unwrap();
        let State::Running { started_at } = rt.state(&id).await.unwrap() else { panic!("not running") };
        assert_eq!(log_text(&rt, &id, LogOptions::default()).await, "hollow container web started\n");
        let stamped = log_text(&rt, &id, LogOptions { timestamps: true, ..Default::default() }).await;
        assert_eq!(stamped, format!("{} hollow container web started\n", format_timestamp(started_at)));
        assert_eq!(log_text(&rt, &id, LogOptions { tail_lines: Some(0), ..Default::default() }).await, "");
        let later = started_at + Duration::from_secs(1);
        assert_eq!(log_text(&rt, &id, LogOptions { since: Some(later), ..Default::default() }).await, "");
        assert!(matches!(rt.logs("hollow-99", &LogOptions::default()).await, Err(RuntimeError::NotFound(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn following_logs_ends_when_the_container_exits() {
        let (rt, sandbox, cfg) = node().await;
        let follow = LogOptions { follow: true, ..Default::default() };

        // By plan: the stream waits for the planned exit (paused time jumps to it).
        let crash = rt.start(&sandbox, &cfg, &container("crash", &[(CRASH_AFTER_SECONDS, "60")])).await.unwrap();
        let began = Instant::now();
        assert_eq!(log_text(&rt, &crash, follow.clone()).await, "hollow container crash started\n");
        assert_eq!(began.elapsed(), Duration::from_secs(60));

        // By a stop.
        let web = rt.start(&sandbox, &cfg, &container("web", &[])).await.unwrap();
        let mut logs = rt.logs(&web, &follow).await.unwrap();
        assert_eq!(logs.next().await.unwrap(), Bytes::from_static(b"hollow container web started\n"));
        let mut end = Box::pin(logs.next());
        assert!(futures::poll!(&mut end).is_pending());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(futures::poll!(&mut end).is_pending(), "ended while the container runs");
        rt.stop(&web, Duration::from_secs(1)).await.unwrap();
        assert_eq!(end.await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn exec_and_stats_are_synthetic() {
        let (rt, sandbox, cfg) = node().await;
        let id = rt.start(&sandbox, &cfg, &container("web", &[])).await.unwrap();
        let session = rt.exec(&id, vec!["ls".into()], false, true).await.unwrap();
        assert!(session.stdin.is_some());
        let output: Vec<(u8, Bytes)> = session.output.collect().await;
        assert_eq!(output, vec![(1, Bytes::from_static(b"hollow\n"))]);
        assert_eq!(session.exit.await.unwrap(), 0);

        tokio::time::advance(Duration::from_secs(100)).await;
        let stats = rt.stats(&id).await.unwrap();
        assert_eq!(stats, Stats { cpu_nanos: 1_000_000_000, memory_bytes: MEMORY_BYTES });
        rt.stop(&id, Duration::ZERO).await.unwrap();
        assert_eq!(rt.stats(&id).await.unwrap(), Stats::default());
        assert!(rt.exec(&id, vec!["ls".into()], false, false).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn list_start_and_remove() {
        let (rt, sandbox, cfg) = node().await;
        let c = container("web", &[]);
        let id = rt.start(&sandbox, &cfg, &c).await.unwrap();
        assert_eq!(rt.start(&sandbox, &cfg, &c).await.unwrap(), id, "started twice");
        let next = rt.start(&sandbox, &cfg, &ContainerConfig { attempt: 1, ..c.clone() }).await.unwrap();
        assert_ne!(next, id);
        let mut listed = rt.list().await.unwrap();
        listed.sort_by_key(|c| c.attempt);
        assert_eq!(listed.len(), 2);
        assert_eq!(
            (listed[0].pod.clone(), listed[0].container.as_str(), listed[0].image.as_str()),
            (cfg.pod.clone(), "web", "nginx")
        );
        assert_eq!(listed[1].attempt, 1);
        rt.remove(&id).await.unwrap();
        rt.remove(&id).await.unwrap();
        assert_eq!(rt.list().await.unwrap().len(), 1);
        assert!(rt.version().await.unwrap().starts_with("hollow://"));
    }

    /// Thousands of nodes × pods live in one process.
    #[test]
    fn a_container_stays_small() {
        assert!(std::mem::size_of::<HollowContainer>() <= 128, "{}", std::mem::size_of::<HollowContainer>());
    }
}
