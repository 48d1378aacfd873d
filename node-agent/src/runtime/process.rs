//! Containers as host processes, like Nomad's `raw_exec`: no images, no isolation,
//! the host's network. A container is its command run directly by the agent, in a
//! process group of its own so that a stop reaches everything it started.
//!
//! # Layout on disk
//!
//! ```text
//! <root>/pods/<pod uid>/
//!     sandbox.json                        pod ref and hostname
//!     containers/<name>-<attempt>/
//!         state.json                      pid, process start time, pod ref, env, working dir
//!         exit.json                       exit code, reason, finish time (once known)
//!         stdout.log   stdout.log.idx     stdout and stderr, and when each byte was seen
//!         stdout.log.1 stdout.log.1.idx   the rotated generation(s)
//!         rootfs/<mount path> -> <host path>
//! ```
//!
//! A container's id is `<pod uid>_<name>_<attempt>`; the disk layout is the only
//! record, so a new agent on the same root finds everything a previous one started.
//!
//! # Exit codes and adoption
//!
//! Only a process's parent can learn its exit status, so there are two cases:
//!
//! - **Started by this agent.** The agent spawns the command directly (no shell or
//!   supervisor in between, so signals reach the command unchanged) and a supervisor
//!   task waits on it. The exit code (`128 + signal` when a signal ended it, as Docker
//!   reports) is written to `exit.json` before it is published in memory.
//! - **Adopted.** After an agent restart the process's parent is gone (it was
//!   re-parented to init), so no one can wait on it. A process listed in `state.json`
//!   counts as running while `/proc/<pid>/stat` shows the same process start time
//!   (guarding against pid reuse) and is not a zombie. A supervisor task polls that
//!   and, when the process is gone, records an *inferred* exit: `143` or `137` when
//!   the last thing that happened to it was our SIGTERM or SIGKILL, else `-1` with
//!   reason `Unknown`. A process found already gone (no `exit.json`) is recorded the
//!   same way, with the time it was found as its finish time.
//!
//! Adoption happens lazily, on the first call that names the container (`list`
//! names all of them, so an agent's first relist adopts everything).
//!
//! When a container's main process exits, whatever is left in its process group is
//! killed, as a container's other processes die with its init process.
//!
//! # Output and logs
//!
//! The command's stdout and stderr are the same `O_APPEND` file, so output keeps
//! flowing while no agent runs (a pipe to the agent would break the process with
//! SIGPIPE when the agent restarts). The price is that lines carry no timestamp, so
//! the supervisor records every [`SUPERVISE_INTERVAL`] how far the file had grown
//! (`stdout.log.idx`); a line's time is when it was first seen, at most one interval
//! late (output written while no agent ran gets the file's modification time).
//! `since` filters by those times, then `tail_lines` keeps the last lines; `follow`
//! polls every [`FOLLOW_INTERVAL`] and ends once the container has exited.
//! Rotation is copy-and-truncate: when the log and its index exceed
//! [`LogRotation::max_bytes`] the file is copied to `stdout.log.1` and truncated in
//! place. Output written between the copy and the truncation is lost, as with
//! logrotate's `copytruncate`.
//!
//! # Mounts
//!
//! A host process cannot see mounts at arbitrary paths, so each mount becomes a
//! symlink `rootfs/<container path>` → host path, and the command gets
//! `RK_ROOT=<container dir>/rootfs`: a command reads its volume at
//! `$RK_ROOT/<mountPath>`; absolute paths refer to the host. `readOnly` is not
//! enforced.
//!
//! # Simplified
//!
//! - No resource limits are enforced (setting rlimits needs a `pre_exec` hook, which is
//!   `unsafe`); CPU and memory are only reported by [`Runtime::stats`].
//! - The sandbox is only a directory: the pod uses the node's network, hostname and
//!   resolver; the pod's DNS settings are not applied.
//! - Containers get no stdin and no tty; `exec` with a tty runs without one.
//! - If the agent dies between spawning a process and writing its `state.json`
//!   (microseconds), that process is not adopted.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{self, BoxStream, StreamExt};
use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::{
    ContainerConfig, ContainerInfo, ExecSession, LogOptions, Mount, PodRef, Result, Runtime, RuntimeError, Sandbox,
    SandboxConfig, State, Stats,
};

const SANDBOX_FILE: &str = "sandbox.json";
const STATE_FILE: &str = "state.json";
const EXIT_FILE: &str = "exit.json";
const LOG_FILE: &str = "stdout.log";
const ROOTFS_DIR: &str = "rootfs";

/// How often a container's supervisor indexes its log and (adopted) checks that the
/// process still runs. Bounds how late a log line's time is.
pub const SUPERVISE_INTERVAL: Duration = Duration::from_millis(200);
/// How often a following log stream looks for new output.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);
/// How often `stop` checks whether the process group is gone.
const STOP_POLL: Duration = Duration::from_millis(50);
/// How long processes may take to die after SIGKILL before `stop` gives up.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// Exit code of a process whose exit status nobody could collect.
pub const UNKNOWN_EXIT_CODE: i32 = -1;

const NO_COMMAND: &str = "the process runtime needs a command (images are not supported)";

/// When a container's log is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    /// Rotate once the log and its time index together are larger than this.
    pub max_bytes: u64,
    /// Files kept, the current one included (the kubelet's `containerLogMaxFiles`);
    /// 1 truncates without keeping a copy.
    pub max_files: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        Self { max_bytes: 10 * 1024 * 1024, max_files: 2 }
    }
}

/// The process runtime. Cheap to share behind an `Arc`; all state is on disk plus one
/// supervisor task per running container.
pub struct ProcessRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    node_name: String,
    host_ip: Option<String>,
    rotation: LogRotation,
    /// Containers with a supervisor in this agent, by id. An entry is made when a
    /// container is started or adopted and dropped when it is removed; looking a
    /// container up here first is what keeps two supervisors from watching one process.
    tracked: Mutex<HashMap<ContainerId, Arc<Tracked>>>,
    /// Ids being started right now, so that two concurrent starts of one container
    /// cannot both spawn it.
    starting: Mutex<HashSet<ContainerId>>,
}

impl ProcessRuntime {
    /// A runtime keeping its state below `root`. `host_ip` is reported as every
    /// sandbox's IP (pods share the node's network); `None` leaves the caller to use
    /// the node's address.
    pub fn new(root: PathBuf, node_name: &str, host_ip: Option<String>) -> Self {
        // RK_ROOT must be absolute to be usable from any working directory.
        let root = std::path::absolute(&root).unwrap_or(root);
        Self {
            inner: Arc::new(Inner {
                root,
                node_name: node_name.to_string(),
                host_ip,
                rotation: LogRotation::default(),
                tracked: Mutex::new(HashMap::new()),
                starting: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Replaces the default rotation (10 MiB, 2 files). Call before starting containers.
    pub fn with_log_rotation(mut self, rotation: LogRotation) -> Self {
        let rotation = LogRotation { max_bytes: rotation.max_bytes.max(1), max_files: rotation.max_files.max(1) };
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.rotation = rotation,
            None => tracing::warn!("log rotation can only be changed before the runtime is shared"),
        }
        self
    }

    /// The directory this runtime keeps its state in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }
}

// === container ids ===

/// `<pod uid>_<name>_<attempt>`. Neither part may contain `_`, `/` or `.`, which
/// keeps the id unambiguous and every path derived from it below the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ContainerId {
    pod_uid: String,
    name: String,
    attempt: u32,
}

impl ContainerId {
    fn parse(id: &str) -> Result<Self> {
        let mut parts = id.split('_');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(uid), Some(name), Some(attempt), None) if valid_segment(uid) && valid_segment(name) => {
                let attempt = attempt.parse().map_err(|_| RuntimeError::NotFound(id.to_string()))?;
                Ok(Self { pod_uid: uid.to_string(), name: name.to_string(), attempt })
            }
            _ => Err(RuntimeError::NotFound(id.to_string())),
        }
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}_{}", self.pod_uid, self.name, self.attempt)
    }
}

/// Pod uids and container names become path components and id parts.
fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

// === records on disk ===

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PodRecord {
    uid: String,
    namespace: String,
    name: String,
}

impl From<&PodRef> for PodRecord {
    fn from(p: &PodRef) -> Self {
        Self { uid: p.uid.clone(), namespace: p.namespace.clone(), name: p.name.clone() }
    }
}

impl From<PodRecord> for PodRef {
    fn from(p: PodRecord) -> Self {
        Self { uid: p.uid, namespace: p.namespace, name: p.name }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SandboxRecord {
    pod: PodRecord,
    hostname: String,
    node: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ContainerRecord {
    pod: PodRecord,
    container: String,
    attempt: u32,
    image: String,
    /// The main process; also its process group id.
    pid: i32,
    /// Field 22 of `/proc/<pid>/stat` when it was started: a pid with another start
    /// time is a different process that reused the number.
    proc_start_ticks: u64,
    started_at_unix_ns: u64,
    /// The environment and working directory the command got; `exec` reuses them.
    env: Vec<(String, String)>,
    working_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ExitRecord {
    exit_code: i32,
    reason: String,
    finished_at_unix_ns: u64,
}

impl ExitRecord {
    fn new(exit_code: i32, reason: &str) -> Self {
        Self { exit_code, reason: reason.to_string(), finished_at_unix_ns: unix_ns(SystemTime::now()) }
    }

    fn from_code(exit_code: i32) -> Self {
        Self::new(exit_code, if exit_code == 0 { "Completed" } else { "Error" })
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(0)
}

fn from_unix_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Written to a temporary file and renamed, so a reader (or an agent that crashed
/// mid-write) never sees half a record.
fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    // The state holds the container's environment, which may hold secrets.
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(&data)?;
    drop(file);
    fs::rename(&tmp, path)
}

/// `Ok(None)` when the file does not exist.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map(Some).map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn other(context: impl std::fmt::Display, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Other(format!("{context}: {e}"))
}

/// Poisoning only means another thread panicked mid-update; the maps stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs filesystem work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| other("runtime task failed", e))?
}

// === /proc ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    state: char,
    pgrp: i32,
    /// utime + stime + cutime + cstime: the time of reaped children counts too, so
    /// the group's total does not drop when a child exits.
    cpu_ticks: u64,
    start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and
/// parentheses, so the fields are counted from its last `)`.
fn parse_proc_stat(s: &str) -> Option<ProcStat> {
    let rest = s.get(s.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        cpu_ticks: num(14)? + num(15)? + num(16)? + num(17)?,
        start_ticks: num(22)?,
    })
}

fn read_proc_stat(pid: i32) -> Option<ProcStat> {
    parse_proc_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` is still the process that was started with `start_ticks`.
fn process_alive(pid: i32, start_ticks: u64) -> bool {
    read_proc_stat(pid).is_some_and(|s| s.start_ticks == start_ticks && !matches!(s.state, 'Z' | 'X'))
}

/// Live (non-zombie) members of a process group.
fn group_members(pgid: i32) -> Vec<(i32, ProcStat)> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, read_proc_stat(pid)?)))
        .filter(|(_, s)| s.pgrp == pgid && !matches!(s.state, 'Z' | 'X'))
        .collect()
}

fn rss_bytes(pid: i32) -> u64 {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn clock_ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        // USER_HZ is 100 on every Linux architecture in use.
        _ => 100,
    }
}

/// Signals a container's process group. Refuses the groups that a corrupt
/// `state.json` could name and that must never be hit: none, init's, the agent's.
///
/// A group with no live member is left alone: once its last process is gone the
/// number is free, and a new process (with pids wrapping at 32768 that happens within
/// minutes on a busy machine) may lead a group of the same number — a test runner's,
/// a shell's. While a member lives the kernel does not hand the number out again.
fn signal_group(pgid: i32, sig: Signal) -> Result<()> {
    if pgid <= 1 || Pid::from_raw(pgid) == nix::unistd::getpgrp() {
        return Err(RuntimeError::Other(format!("refusing to signal process group {pgid}")));
    }
    if group_members(pgid).is_empty() {
        return Ok(());
    }
    match signal::killpg(Pid::from_raw(pgid), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(other(format_args!("cannot send {sig} to process group {pgid}"), e)),
    }
}

fn exit_code(status: &ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(UNKNOWN_EXIT_CODE)
}

// === supervision ===

/// A container with a supervisor in this agent.
struct Tracked {
    dir: PathBuf,
    /// Main process and process group id.
    pid: i32,
    started_at: SystemTime,
    /// `None` while the main process runs. The supervisor writes `exit.json` before
    /// publishing here, so whoever sees `Some` also finds the file.
    exit: watch::Sender<Option<ExitRecord>>,
    /// The last signal `stop` sent. Read only by an adopted process's supervisor,
    /// which cannot wait on the process: it is the best evidence of how it ended.
    /// Set before the signal is sent, so an exit it causes always sees it.
    last_signal: Mutex<Option<Signal>>,
    /// The log's time index and rotation. Log readers take the lock so that they
    /// never read the log while it is being rotated.
    logs: Mutex<LogIndexer>,
}

impl Tracked {
    fn state(&self) -> State {
        match &*self.exit.borrow() {
            None => State::Running { started_at: self.started_at },
            Some(e) => exited(e, Some(self.started_at)),
        }
    }

    fn running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    fn signal(&self, sig: Signal) -> Result<()> {
        *lock(&self.last_signal) = Some(sig);
        signal_group(self.pid, sig)
    }

    /// Waits until the main process's exit is recorded and nothing is left in its
    /// process group; false if that takes longer than `timeout`.
    async fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let mut exit = self.exit.subscribe();
        if tokio::time::timeout_at(deadline, exit.wait_for(Option::is_some)).await.is_err() {
            return false;
        }
        let pgid = self.pid;
        loop {
            let empty = tokio::task::spawn_blocking(move || group_members(pgid).is_empty()).await.unwrap_or(false);
            if empty {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(STOP_POLL).await;
        }
    }
}

/// `now + d`, for any `d` a caller may pass (`Duration::MAX` included).
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

fn exited(e: &ExitRecord, started_at: Option<SystemTime>) -> State {
    State::Exited {
        exit_code: e.exit_code,
        reason: e.reason.clone(),
        started_at,
        finished_at: from_unix_ns(e.finished_at_unix_ns),
    }
}

/// Watches one container until its main process ends: waits on it when this agent
/// is its parent (`child`), else polls `/proc`. Indexes and rotates the log meanwhile.
async fn supervise(t: Arc<Tracked>, child: Option<Child>, start_ticks: u64) {
    let mut tick = tokio::time::interval(SUPERVISE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let exit = match child {
        Some(mut child) => loop {
            tokio::select! {
                status = child.wait() => break match status {
                    Ok(status) => ExitRecord::from_code(exit_code(&status)),
                    Err(e) => {
                        tracing::warn!(dir = %t.dir.display(), error = %e, "cannot wait for a container process");
                        ExitRecord::new(UNKNOWN_EXIT_CODE, "Unknown")
                    }
                },
                _ = tick.tick() => poll_logs(&t).await,
            }
        },
        None => loop {
            tick.tick().await;
            poll_logs(&t).await;
            let pid = t.pid;
            let alive = tokio::task::spawn_blocking(move || process_alive(pid, start_ticks)).await.unwrap_or(true);
            if !alive {
                break inferred_exit(*lock(&t.last_signal));
            }
        },
    };
    // The rest of the group dies with the main process, as a container's processes
    // die with its init. The group id cannot have been reused while members remain.
    if let Err(e) = signal_group(t.pid, Signal::SIGKILL) {
        tracing::warn!(dir = %t.dir.display(), error = %e, "cannot kill what is left of a container");
    }
    poll_logs(&t).await;
    let path = t.dir.join(EXIT_FILE);
    let record = exit.clone();
    match tokio::task::spawn_blocking(move || write_json_atomic(&path, &record)).await {
        Ok(Ok(())) => {}
        // The container was removed meanwhile; nobody will ask.
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
        Ok(Err(e)) => tracing::warn!(dir = %t.dir.display(), error = %e, "cannot record a container's exit"),
        Err(e) => tracing::warn!(error = %e, "cannot record a container's exit"),
    }
    tracing::info!(dir = %t.dir.display(), exit_code = exit.exit_code, "container exited");
    t.exit.send_replace(Some(exit));
}

/// The exit of a process this agent could not wait on.
fn inferred_exit(last_signal: Option<Signal>) -> ExitRecord {
    match last_signal {
        Some(sig @ (Signal::SIGTERM | Signal::SIGKILL)) => ExitRecord::from_code(128 + sig as i32),
        _ => ExitRecord::new(UNKNOWN_EXIT_CODE, "Unknown"),
    }
}

async fn poll_logs(t: &Arc<Tracked>) {
    let t = t.clone();
    let res = tokio::task::spawn_blocking(move || lock(&t.logs).poll()).await;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot index or rotate a container log"),
        Err(e) => tracing::warn!(error = %e, "cannot index or rotate a container log"),
    }
}

// === logs ===

fn log_path(dir: &Path, generation: u32) -> PathBuf {
    match generation {
        0 => dir.join(LOG_FILE),
        n => dir.join(format!("{LOG_FILE}.{n}")),
    }
}

fn index_path(dir: &Path, generation: u32) -> PathBuf {
    let mut p = log_path(dir, generation).into_os_string();
    p.push(".idx");
    PathBuf::from(p)
}

/// Records when the log grew and rotates it. Each index line is `<offset> <unix ns>`:
/// the log's first `<offset>` bytes had been written by then.
struct LogIndexer {
    dir: PathBuf,
    rotation: LogRotation,
    /// Log length the index covers.
    indexed_len: u64,
    /// Rotations done; a following reader that sees this change knows its offset
    /// now points into `stdout.log.1`.
    rotations: u64,
    /// The next index entry covers output written while no agent watched; it gets
    /// the file's modification time rather than the time it was noticed.
    catching_up: bool,
}

impl LogIndexer {
    fn open(dir: &Path, rotation: LogRotation, catching_up: bool) -> Self {
        let indexed_len = read_index(&index_path(dir, 0)).last().map_or(0, |(off, _)| *off);
        Self { dir: dir.to_path_buf(), rotation, indexed_len, rotations: 0, catching_up }
    }

    fn poll(&mut self) -> io::Result<()> {
        let log = log_path(&self.dir, 0);
        let meta = match fs::metadata(&log) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let idx = index_path(&self.dir, 0);
        if meta.len() < self.indexed_len {
            // Truncated by someone else: what the index said no longer applies.
            fs::write(&idx, b"")?;
            self.indexed_len = 0;
        }
        let idx_len = fs::metadata(&idx).map_or(0, |m| m.len());
        if meta.len() + idx_len > self.rotation.max_bytes {
            return self.rotate();
        }
        if meta.len() > self.indexed_len {
            let time = match self.catching_up {
                true => meta.modified().unwrap_or_else(|_| SystemTime::now()),
                false => SystemTime::now(),
            };
            append_index(&idx, meta.len(), time)?;
            self.indexed_len = meta.len();
        }
        self.catching_up = false;
        Ok(())
    }

    /// Copy-and-truncate: the process keeps its `O_APPEND` file descriptor, and its
    /// next write lands at the start of the emptied file.
    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.max_files.max(1);
        for n in (1..keep.saturating_sub(1)).rev() {
            rename_if_exists(&log_path(&self.dir, n), &log_path(&self.dir, n + 1))?;
            rename_if_exists(&index_path(&self.dir, n), &index_path(&self.dir, n + 1))?;
        }
        let (log, idx) = (log_path(&self.dir, 0), index_path(&self.dir, 0));
        if keep >= 2 {
            let copied = fs::copy(&log, log_path(&self.dir, 1))?;
            let mut index = match fs::read(&idx) {
                Ok(data) => data,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            index.extend_from_slice(index_line(copied, SystemTime::now()).as_bytes());
            fs::write(index_path(&self.dir, 1), index)?;
        }
        fs::OpenOptions::new().write(true).open(&log)?.set_len(0)?;
        fs::write(&idx, b"")?;
        self.indexed_len = 0;
        self.rotations += 1;
        Ok(())
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn index_line(offset: u64, time: SystemTime) -> String {
    format!("{offset} {}\n", unix_ns(time))
}

fn append_index(path: &Path, offset: u64, time: SystemTime) -> io::Result<()> {
    fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(index_line(offset, time).as_bytes())
}

/// Entries in file order (offsets grow); malformed lines are skipped.
fn read_index(path: &Path) -> Vec<(u64, SystemTime)> {
    let Ok(text) = fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let (off, ns) = l.split_once(' ')?;
            Some((off.parse().ok()?, from_unix_ns(ns.parse().ok()?)))
        })
        .collect()
}

/// One line of output and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogLine {
    time: SystemTime,
    /// With its `\n`, except for a last line still being written.
    text: Vec<u8>,
}

/// What one read of a log generation found.
struct Chunk {
    lines: Vec<LogLine>,
    /// Offset after the last complete line.
    end: u64,
    /// Bytes after it (a line still being written).
    partial: Option<LogLine>,
}

/// Reads generation `n` from `from`. A line's time is the first index entry that
/// covers its end; lines not indexed yet get `unindexed`.
fn read_generation(dir: &Path, n: u32, from: u64, unindexed: SystemTime) -> io::Result<Chunk> {
    let mut data = Vec::new();
    match fs::File::open(log_path(dir, n)) {
        Ok(mut f) => {
            f.seek(SeekFrom::Start(from))?;
            f.read_to_end(&mut data)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let index = read_index(&index_path(dir, n));
    let time_at = |end: u64| {
        let i = index.partition_point(|(off, _)| *off < end);
        index.get(i).map_or(unindexed, |(_, t)| *t)
    };
    let mut lines = Vec::new();
    let mut pos = 0usize;
    while let Some(nl) = data[pos..].iter().position(|b| *b == b'\n') {
        let end = pos + nl + 1;
        lines.push(LogLine { time: time_at(from + end as u64), text: data[pos..end].to_vec() });
        pos = end;
    }
    let partial =
        (pos < data.len()).then(|| LogLine { time: time_at(from + data.len() as u64), text: data[pos..].to_vec() });
    Ok(Chunk { lines, end: from + pos as u64, partial })
}

/// Every line on disk, oldest generation first; with `include_partial`, the line
/// still being written too. Returns the lines and the offset in the current file
/// after the last line returned.
fn read_all(dir: &Path, max_files: u32, include_partial: bool) -> io::Result<(Vec<LogLine>, u64)> {
    let now = SystemTime::now();
    let mut lines = Vec::new();
    for n in (1..max_files.max(1)).rev() {
        let chunk = read_generation(dir, n, 0, now)?;
        lines.extend(chunk.lines);
        // A rotated generation is complete even if it ends mid-line.
        lines.extend(chunk.partial);
    }
    let chunk = read_generation(dir, 0, 0, now)?;
    lines.extend(chunk.lines);
    let mut end = chunk.end;
    if include_partial && let Some(p) = chunk.partial {
        end += p.text.len() as u64;
        lines.push(p);
    }
    Ok((lines, end))
}

fn render(lines: Vec<LogLine>, opts: &LogOptions) -> Option<Bytes> {
    let mut out = Vec::new();
    for line in lines.into_iter().filter(|l| opts.since.is_none_or(|s| l.time >= s)) {
        if opts.timestamps {
            out.extend_from_slice(format_timestamp(line.time).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&line.text);
    }
    (!out.is_empty()).then(|| Bytes::from(out))
}

fn tail(mut lines: Vec<LogLine>, opts: &LogOptions) -> Vec<LogLine> {
    if let Some(since) = opts.since {
        lines.retain(|l| l.time >= since);
    }
    if let Some(n) = opts.tail_lines {
        let keep = usize::try_from(n).unwrap_or(usize::MAX);
        lines.drain(..lines.len().saturating_sub(keep));
    }
    lines
}

/// A following log stream's position.
struct Follow {
    t: Arc<Tracked>,
    opts: LogOptions,
    /// Start of the first byte not yet sent, in the current file.
    offset: u64,
    /// The indexer's rotation count that `offset` belongs to.
    rotations: u64,
    done: bool,
}

impl Follow {
    /// New lines since the last call; at the end (the process exited), the last
    /// partial line too.
    fn read(&mut self, last: bool) -> io::Result<Vec<LogLine>> {
        let logs = lock(&self.t.logs);
        let now = SystemTime::now();
        let mut lines = Vec::new();
        if logs.rotations != self.rotations {
            // Our offset belongs to the file that is now `stdout.log.1`; its rest
            // comes first. (After more than one rotation that is gone too.)
            if logs.rotations == self.rotations + 1 {
                let chunk = read_generation(&self.t.dir, 1, self.offset, now)?;
                lines.extend(chunk.lines);
                lines.extend(chunk.partial);
            }
            self.offset = 0;
            self.rotations = logs.rotations;
        }
        let chunk = read_generation(&self.t.dir, 0, self.offset, now)?;
        lines.extend(chunk.lines);
        self.offset = chunk.end;
        if last && let Some(p) = chunk.partial {
            self.offset += p.text.len() as u64;
            lines.push(p);
        }
        Ok(lines)
    }
}

fn follow_stream(f: Follow) -> BoxStream<'static, Bytes> {
    stream::unfold(f, |mut f| async move {
        loop {
            if f.done {
                return None;
            }
            // Checked before reading: once the process has exited, this read gets
            // everything it wrote.
            let last = !f.t.running();
            let (res, back) = match tokio::task::spawn_blocking(move || (f.read(last), f)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "log reader failed");
                    return None;
                }
            };
            f = back;
            match res {
                Ok(lines) => {
                    f.done = last;
                    if let Some(bytes) = render(lines, &f.opts) {
                        return Some((bytes, f));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a container log");
                    return None;
                }
            }
            if !f.done {
                tokio::time::sleep(FOLLOW_INTERVAL).await;
            }
        }
    })
    .boxed()
}

/// RFC 3339 in UTC with nanoseconds, as `kubectl logs --timestamps` shows.
pub(crate) fn format_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

// === preparing a start ===

/// What a container's process is started with.
struct Prepared {
    dir: PathBuf,
    log: fs::File,
    env: Vec<(String, String)>,
    working_dir: PathBuf,
}

/// Makes the container directory, its rootfs links and log file.
fn prepare(dir: &Path, c: &ContainerConfig) -> Result<Prepared> {
    let start_err = |what: &str, e: io::Error| RuntimeError::Start(format!("{what} {}: {e}", dir.display()));
    let rootfs = dir.join(ROOTFS_DIR);
    fs::create_dir_all(&rootfs).map_err(|e| start_err("cannot create", e))?;
    for m in &c.mounts {
        link_mount(&rootfs, m)?;
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_FILE))
        .map_err(|e| start_err("cannot open the log in", e))?;

    let mut env = Vec::with_capacity(c.env.len() + 2);
    for (k, v) in &c.env {
        if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
            return Err(RuntimeError::Start(format!("invalid environment variable {k:?}")));
        }
        if k != "RK_ROOT" {
            env.push((k.clone(), v.clone()));
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        let path = std::env::var("PATH")
            .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        env.push(("PATH".into(), path));
    }
    env.push(("RK_ROOT".into(), rootfs.to_string_lossy().into_owned()));

    // The image's working dir means nothing on the host unless it happens to exist.
    let working_dir = match &c.working_dir {
        Some(wd) if Path::new(wd).is_absolute() && Path::new(wd).is_dir() => PathBuf::from(wd),
        _ => dir.to_path_buf(),
    };
    Ok(Prepared { dir: dir.to_path_buf(), log, env, working_dir })
}

/// `rootfs/<container path>` → host path. Refuses paths that would leave the rootfs
/// or pass through another mount's link (which would create directories on the host).
fn link_mount(rootfs: &Path, m: &Mount) -> Result<()> {
    let bad = |why: &str| RuntimeError::Start(format!("cannot mount at {:?}: {why}", m.container_path));
    let path = Path::new(&m.container_path);
    if !path.is_absolute() {
        return Err(bad("the path must be absolute"));
    }
    let mut link = rootfs.to_path_buf();
    let mut parts = path.components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir)).peekable();
    if parts.peek().is_none() {
        return Err(bad("cannot mount over the root"));
    }
    while let Some(part) = parts.next() {
        let Component::Normal(name) = part else { return Err(bad("the path must not contain '..'")) };
        link.push(name);
        let meta = fs::symlink_metadata(&link);
        if parts.peek().is_some() {
            match meta {
                Ok(m) if m.file_type().is_symlink() => return Err(bad("it is inside another mount")),
                Ok(_) => {}
                Err(_) => fs::create_dir(&link).map_err(|e| bad(&e.to_string()))?,
            }
        } else {
            match meta {
                Ok(m) if m.file_type().is_symlink() => fs::remove_file(&link).map_err(|e| bad(&e.to_string()))?,
                Ok(_) => return Err(bad("another mount is below it")),
                Err(_) => {}
            }
        }
    }
    std::os::unix::fs::symlink(&m.host_path, &link).map_err(|e| bad(&e.to_string()))
}

// === the runtime ===

/// A container found on disk and how far along it is.
enum Status {
    Live(Arc<Tracked>),
    Done(ExitRecord),
}

impl Inner {
    fn pods_dir(&self) -> PathBuf {
        self.root.join("pods")
    }

    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods_dir().join(uid)
    }

    fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.pod_dir(&id.pod_uid).join("containers").join(format!("{}-{}", id.name, id.attempt))
    }

    /// Reads a container's record and its state, adopting a running process that no
    /// supervisor watches yet. Must run where `tokio::spawn` works.
    fn lookup(&self, id: &ContainerId) -> Result<(ContainerRecord, Status)> {
        let dir = self.container_dir(id);
        let record: ContainerRecord = read_json(&dir.join(STATE_FILE))
            .map_err(|e| other(format_args!("cannot read the state of container {id}"), e))?
            .ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
        // Held across the checks below so that only one caller adopts a process.
        let mut tracked = lock(&self.tracked);
        if let Some(t) = tracked.get(id) {
            return Ok((record, Status::Live(t.clone())));
        }
        let exit_path = dir.join(EXIT_FILE);
        if let Some(exit) = read_json::<ExitRecord>(&exit_path)
            .map_err(|e| other(format_args!("cannot read the exit of container {id}"), e))?
        {
            return Ok((record, Status::Done(exit)));
        }
        if record.pid > 1 && process_alive(record.pid, record.proc_start_ticks) {
            tracing::info!(node = %self.node_name, container = %id, pid = record.pid, "adopting a running container");
            let t = Arc::new(Tracked {
                dir: dir.clone(),
                pid: record.pid,
                started_at: from_unix_ns(record.started_at_unix_ns),
                exit: watch::Sender::new(None),
                last_signal: Mutex::new(None),
                logs: Mutex::new(LogIndexer::open(&dir, self.rotation, true)),
            });
            tracked.insert(id.clone(), t.clone());
            tokio::spawn(supervise(t.clone(), None, record.proc_start_ticks));
            return Ok((record, Status::Live(t)));
        }
        // It ended while no agent watched it: nobody knows how.
        let exit = ExitRecord::new(UNKNOWN_EXIT_CODE, "Unknown");
        write_json_atomic(&exit_path, &exit).map_err(|e| other(format_args!("cannot record container {id}"), e))?;
        Ok((record, Status::Done(exit)))
    }

    fn state_of(record: &ContainerRecord, status: &Status) -> State {
        match status {
            Status::Live(t) => t.state(),
            Status::Done(e) => exited(e, Some(from_unix_ns(record.started_at_unix_ns))),
        }
    }

    /// Every container directory with a record, as ids.
    fn container_ids(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerId>> {
        let pods: Vec<String> = match pod_uid {
            Some(uid) => vec![uid.to_string()],
            None => read_dir_names(&self.pods_dir())?,
        };
        let mut ids = Vec::new();
        for uid in pods.into_iter().filter(|u| valid_segment(u)) {
            for dir in read_dir_names(&self.pod_dir(&uid).join("containers"))? {
                let Some((name, attempt)) = dir.rsplit_once('-') else { continue };
                let Ok(attempt) = attempt.parse() else { continue };
                if valid_segment(name) {
                    ids.push(ContainerId { pod_uid: uid.clone(), name: name.to_string(), attempt });
                }
            }
        }
        Ok(ids)
    }

    fn start(&self, sandbox: &Sandbox, cfg: &SandboxConfig, c: &ContainerConfig) -> Result<String> {
        if c.command.is_empty() {
            return Err(RuntimeError::Start(NO_COMMAND.to_string()));
        }
        if !valid_segment(&cfg.pod.uid) {
            return Err(RuntimeError::Start(format!("invalid pod uid {:?}", cfg.pod.uid)));
        }
        if !valid_segment(&c.name) {
            return Err(RuntimeError::Start(format!("invalid container name {:?}", c.name)));
        }
        if sandbox.id != cfg.pod.uid || !self.pod_dir(&cfg.pod.uid).join(SANDBOX_FILE).exists() {
            return Err(RuntimeError::Start(format!("pod {} has no sandbox {:?}", cfg.pod.uid, sandbox.id)));
        }
        let id = ContainerId { pod_uid: cfg.pod.uid.clone(), name: c.name.clone(), attempt: c.attempt };
        let _claim = StartClaim::new(&self.starting, &id)?;

        let dir = self.container_dir(&id);
        if dir.join(STATE_FILE).exists() {
            // Started before (perhaps by a previous agent): starting it twice would
            // run the command twice.
            let (_, status) = self.lookup(&id)?;
            return match status {
                Status::Live(t) if t.running() => Ok(id.to_string()),
                _ => Err(RuntimeError::Start(format!("container {id} already ran; start a new attempt"))),
            };
        }
        let prepared = prepare(&dir, c);
        let prepared = prepared.inspect_err(|_| remove_quietly(&dir))?;
        self.spawn(&id, cfg, c, prepared).inspect_err(|_| remove_quietly(&dir))
    }

    fn spawn(&self, id: &ContainerId, cfg: &SandboxConfig, c: &ContainerConfig, p: Prepared) -> Result<String> {
        let out = p.log.try_clone().map_err(|e| RuntimeError::Start(format!("cannot share the log: {e}")))?;
        let program = &c.command[0];
        let mut cmd = Command::new(program);
        cmd.args(&c.command[1..])
            .args(&c.args)
            .env_clear()
            .envs(p.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&p.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(p.log))
            // Its own group: stop reaches what it forks, and a signal to the
            // agent's group (Ctrl-C on a terminal) does not reach it.
            .process_group(0)
            // It must outlive this agent to be adopted by the next one.
            .kill_on_drop(false);
        let started_at = SystemTime::now();
        let child = cmd.spawn().map_err(|e| RuntimeError::Start(format!("cannot run {program:?}: {e}")))?;
        let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
            return Err(RuntimeError::Start(format!("{program:?} exited at once")));
        };
        // Not reaped before `supervise` waits on it, so /proc still has it even if it
        // has already exited.
        let start_ticks = read_proc_stat(pid).map_or(0, |s| s.start_ticks);
        let record = ContainerRecord {
            pod: (&cfg.pod).into(),
            container: c.name.clone(),
            attempt: c.attempt,
            image: c.image.clone(),
            pid,
            proc_start_ticks: start_ticks,
            started_at_unix_ns: unix_ns(started_at),
            env: p.env,
            working_dir: p.working_dir,
        };
        if let Err(e) = write_json_atomic(&p.dir.join(STATE_FILE), &record) {
            // Without a record no agent could find it again.
            let _ = signal_group(pid, Signal::SIGKILL);
            return Err(RuntimeError::Start(format!("cannot record container {id}: {e}")));
        }
        let t = Arc::new(Tracked {
            dir: p.dir.clone(),
            pid,
            started_at,
            exit: watch::Sender::new(None),
            last_signal: Mutex::new(None),
            logs: Mutex::new(LogIndexer::open(&p.dir, self.rotation, false)),
        });
        lock(&self.tracked).insert(id.clone(), t.clone());
        tokio::spawn(supervise(t, Some(child), start_ticks));
        tracing::info!(node = %self.node_name, container = %id, pid, "started a container process");
        Ok(id.to_string())
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(other(format_args!("cannot list {}", dir.display()), e)),
    }
}

fn remove_quietly(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot clean up a container directory");
    }
}

/// Marks a container id as being started until dropped.
struct StartClaim<'a> {
    set: &'a Mutex<HashSet<ContainerId>>,
    id: ContainerId,
}

impl<'a> StartClaim<'a> {
    fn new(set: &'a Mutex<HashSet<ContainerId>>, id: &ContainerId) -> Result<Self> {
        if !lock(set).insert(id.clone()) {
            return Err(RuntimeError::Start(format!("container {id} is already being started")));
        }
        Ok(Self { set, id: id.clone() })
    }
}

impl Drop for StartClaim<'_> {
    fn drop(&mut self) {
        lock(self.set).remove(&self.id);
    }
}

impl ProcessRuntime {
    async fn lookup(&self, id: &ContainerId) -> Result<(ContainerRecord, Status)> {
        let (inner, id) = (self.inner.clone(), id.clone());
        blocking(move || inner.lookup(&id)).await
    }

    /// Kills a container's processes at once and waits for them to be gone.
    async fn kill(&self, id: &ContainerId, t: &Tracked) -> Result<()> {
        if t.running() {
            t.signal(Signal::SIGKILL)?;
        }
        match t.wait_gone(KILL_TIMEOUT).await {
            true => Ok(()),
            false => Err(RuntimeError::Other(format!("the processes of container {id} survived SIGKILL"))),
        }
    }

    /// Kills (if running) and deletes one container.
    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        match self.lookup(id).await {
            Ok((_, Status::Live(t))) => self.kill(id, &t).await?,
            Ok((_, Status::Done(_))) | Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        lock(&self.inner.tracked).remove(id);
        let dir = self.inner.container_dir(id);
        blocking(move || match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(other(format_args!("cannot remove {}", dir.display()), e))
            }
            _ => Ok(()),
        })
        .await
    }
}

#[tonic::async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn version(&self) -> Result<String> {
        Ok(format!("process://{}", env!("CARGO_PKG_VERSION")))
    }

    async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox> {
        if !valid_segment(&cfg.pod.uid) {
            return Err(RuntimeError::Sandbox(format!("invalid pod uid {:?}", cfg.pod.uid)));
        }
        let dir = self.inner.pod_dir(&cfg.pod.uid);
        let record = SandboxRecord {
            pod: (&cfg.pod).into(),
            hostname: cfg.hostname.clone(),
            node: self.inner.node_name.clone(),
        };
        blocking(move || {
            let sandbox_err = |e: io::Error| RuntimeError::Sandbox(format!("{}: {e}", dir.display()));
            fs::create_dir_all(dir.join("containers")).map_err(sandbox_err)?;
            let path = dir.join(SANDBOX_FILE);
            if !path.exists() {
                write_json_atomic(&path, &record).map_err(sandbox_err)?;
            }
            Ok(())
        })
        .await?;
        Ok(Sandbox { id: cfg.pod.uid.clone(), ip: self.inner.host_ip.clone() })
    }

    async fn remove_sandbox(&self, pod_uid: &str) -> Result<()> {
        if !valid_segment(pod_uid) {
            return Err(RuntimeError::NotFound(pod_uid.to_string()));
        }
        let (inner, uid) = (self.inner.clone(), pod_uid.to_string());
        for id in blocking(move || inner.container_ids(Some(&uid))).await? {
            self.remove_container(&id).await?;
        }
        let dir = self.inner.pod_dir(pod_uid);
        blocking(move || match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(other(format_args!("cannot remove {}", dir.display()), e))
            }
            _ => Ok(()),
        })
        .await
    }

    async fn list_sandboxes(&self) -> Result<Vec<(PodRef, Sandbox)>> {
        let inner = self.inner.clone();
        blocking(move || {
            let mut out = Vec::new();
            for uid in read_dir_names(&inner.pods_dir())?.into_iter().filter(|u| valid_segment(u)) {
                match read_json::<SandboxRecord>(&inner.pod_dir(&uid).join(SANDBOX_FILE)) {
                    Ok(Some(rec)) => out.push((rec.pod.into(), Sandbox { id: uid, ip: inner.host_ip.clone() })),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(pod = %uid, error = %e, "skipping an unreadable sandbox"),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn start(&self, sandbox: &Sandbox, cfg: &SandboxConfig, c: &ContainerConfig) -> Result<String> {
        let inner = self.inner.clone();
        let (sandbox, cfg, c) = (sandbox.clone(), cfg.clone(), c.clone());
        blocking(move || inner.start(&sandbox, &cfg, &c)).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let id = ContainerId::parse(id)?;
        let (_, status) = self.lookup(&id).await?;
        let Status::Live(t) = status else { return Ok(()) };
        if !t.running() {
            return Ok(());
        }
        t.signal(Signal::SIGTERM)?;
        if t.wait_gone(grace).await {
            return Ok(());
        }
        tracing::info!(container = %id, ?grace, "container outlived its grace period; killing it");
        self.kill(&id, &t).await
    }

    async fn remove(&self, id: &str) -> Result<()> {
        match ContainerId::parse(id) {
            Ok(id) => self.remove_container(&id).await,
            // Nothing with that id can exist.
            Err(_) => Ok(()),
        }
    }

    async fn state(&self, id: &str) -> Result<State> {
        let (record, status) = self.lookup(&ContainerId::parse(id)?).await?;
        Ok(Inner::state_of(&record, &status))
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>> {
        let inner = self.inner.clone();
        blocking(move || {
            let mut out = Vec::new();
            for id in inner.container_ids(None)? {
                match inner.lookup(&id) {
                    Ok((record, status)) => out.push(ContainerInfo {
                        id: id.to_string(),
                        state: Inner::state_of(&record, &status),
                        pod: record.pod.into(),
                        container: record.container,
                        attempt: record.attempt,
                        image: record.image,
                    }),
                    // A directory whose start failed half-way, or a record gone bad:
                    // one container must not hide the others.
                    Err(RuntimeError::NotFound(_)) => {}
                    Err(e) => tracing::warn!(container = %id, error = %e, "skipping a container"),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn logs(&self, id: &str, opts: &LogOptions) -> Result<BoxStream<'static, Bytes>> {
        let id = ContainerId::parse(id)?;
        let (_, status) = self.lookup(&id).await?;
        let dir = self.inner.container_dir(&id);
        let max_files = self.inner.rotation.max_files;
        let opts = opts.clone();
        match status {
            Status::Live(t) if opts.follow && t.running() => {
                let t2 = t.clone();
                let (lines, offset, rotations) = blocking(move || {
                    let logs = lock(&t2.logs);
                    let (lines, offset) = read_all(&t2.dir, max_files, false)
                        .map_err(|e| other(format_args!("cannot read the log of {}", t2.dir.display()), e))?;
                    Ok((lines, offset, logs.rotations))
                })
                .await?;
                let first = render(tail(lines, &opts), &opts);
                let rest = follow_stream(Follow { t, opts, offset, rotations, done: false });
                Ok(stream::iter(first).chain(rest).boxed())
            }
            status => {
                let lines = blocking(move || {
                    // Not while the log is being rotated.
                    let _guard = match &status {
                        Status::Live(t) => Some(lock(&t.logs)),
                        Status::Done(_) => None,
                    };
                    read_all(&dir, max_files, true)
                        .map(|(lines, _)| lines)
                        .map_err(|e| other(format_args!("cannot read the log of {}", dir.display()), e))
                })
                .await?;
                Ok(stream::iter(render(tail(lines, &opts), &opts)).boxed())
            }
        }
    }

    async fn exec(&self, id: &str, cmd: Vec<String>, _tty: bool, stdin: bool) -> Result<ExecSession> {
        let cid = ContainerId::parse(id)?;
        let (record, status) = self.lookup(&cid).await?;
        let t = match status {
            Status::Live(t) if t.running() => t,
            _ => return Err(RuntimeError::Other(format!("container {id} is not running"))),
        };
        let Some(program) = cmd.first() else {
            return Err(RuntimeError::Other("exec needs a command".to_string()));
        };
        let build = |group: i32| {
            let mut c = Command::new(program);
            c.args(&cmd[1..])
                .env_clear()
                .envs(record.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&record.working_dir)
                .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(group)
                // A session nobody holds any more should not leave its command behind.
                .kill_on_drop(true);
            c
        };
        // In the container's group, so stopping the container ends it too. A group
        // made by a previous agent is in another session and cannot be joined.
        let mut child = match build(t.pid).spawn() {
            Err(e) if e.raw_os_error() == Some(Errno::EPERM as i32) => build(0).spawn(),
            spawned => spawned,
        }
        .map_err(|e| other(format_args!("cannot run {program:?} in container {id}"), e))?;
        let stdin = child.stdin.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>);
        let output = match (child.stdout.take(), child.stderr.take()) {
            (Some(out), Some(err)) => stream::select(chunks(out, 1), chunks(err, 2)).boxed(),
            _ => return Err(RuntimeError::Other("exec lost its output pipes".to_string())),
        };
        let exit =
            async move { child.wait().await.map(|s| exit_code(&s)).map_err(|e| other("exec failed", e)) }.boxed();
        Ok(ExecSession { stdin, output, exit })
    }

    async fn stats(&self, id: &str) -> Result<Stats> {
        let (_, status) = self.lookup(&ContainerId::parse(id)?).await?;
        let Status::Live(t) = status else { return Ok(Stats::default()) };
        if !t.running() {
            return Ok(Stats::default());
        }
        let pgid = t.pid;
        blocking(move || {
            let per_second = clock_ticks_per_second();
            let mut stats = Stats::default();
            for (pid, stat) in group_members(pgid) {
                stats.cpu_nanos += stat.cpu_ticks.saturating_mul(1_000_000_000) / per_second;
                stats.memory_bytes += rss_bytes(pid);
            }
            Ok(stats)
        })
        .await
    }
}

/// A pipe as a stream of tagged chunks, ending at EOF.
fn chunks<R: AsyncRead + Unpin + Send + 'static>(reader: R, tag: u8) -> BoxStream<'static, (u8, Bytes)> {
    stream::unfold(reader, move |mut r| async move {
        let mut buf = vec![0u8; 8192];
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(((tag, Bytes::from(buf)), r))
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use tokio::io::AsyncWriteExt;

    /// How long any condition may take before a test fails.
    const DEADLINE: Duration = Duration::from_secs(20);

    /// Polls `check` until it yields a value; fails the test after [`DEADLINE`].
    async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    struct Node {
        rt: ProcessRuntime,
        sandbox: Sandbox,
        cfg: SandboxConfig,
        /// A directory for the test's own files (gates, pid files).
        scratch: PathBuf,
        _tmp: tempfile::TempDir,
    }

    /// A failed test must not leave its containers running.
    impl Drop for Node {
        fn drop(&mut self) {
            for t in lock(&self.rt.inner.tracked).values() {
                let _ = signal_group(t.pid, Signal::SIGKILL);
            }
        }
    }

    fn pod(uid: &str) -> SandboxConfig {
        SandboxConfig {
            pod: PodRef { uid: uid.into(), namespace: "default".into(), name: format!("pod-{uid}") },
            hostname: "web".into(),
            ..Default::default()
        }
    }

    async fn node_with(rotation: LogRotation) -> Node {
        let tmp = tempfile::tempdir().expect("tempdir");
        let scratch = tmp.path().join("scratch");
        fs::create_dir(&scratch).expect("scratch dir");
        let rt =
            ProcessRuntime::new(tmp.path().join("root"), "n1", Some("127.0.0.1".into())).with_log_rotation(rotation);
        let cfg = pod("uid-1");
        let sandbox = rt.run_sandbox(&cfg).await.expect("sandbox");
        Node { rt, sandbox, cfg, scratch, _tmp: tmp }
    }

    async fn node() -> Node {
        node_with(LogRotation::default()).await
    }

    /// A container running `script` with `sh -c`, with `$SCRATCH` set.
    fn shell(n: &Node, name: &str, script: &str) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image: "ignored".into(),
            command: vec!["sh".into(), "-c".into()],
            args: vec![script.into()],
            env: vec![("SCRATCH".into(), n.scratch.to_string_lossy().into_owned())],
            ..Default::default()
        }
    }

    async fn start(n: &Node, c: &ContainerConfig) -> String {
        n.rt.start(&n.sandbox, &n.cfg, c).await.expect("start")
    }

    fn touch(n: &Node, name: &str) {
        fs::write(n.scratch.join(name), b"").expect("gate file");
    }

    /// A script fragment that waits for the test to create `$SCRATCH/<gate>`.
    fn wait_gate(gate: &str) -> String {
        format!("while [ ! -f \"$SCRATCH/{gate}\" ]; do sleep 0.02; done")
    }

    async fn exit_of(rt: &ProcessRuntime, id: &str) -> (i32, String) {
        eventually("the container to exit", || async {
            match rt.state(id).await.expect("state") {
                State::Exited { exit_code, reason, .. } => Some((exit_code, reason)),
                _ => None,
            }
        })
        .await
    }

    async fn log_text(rt: &ProcessRuntime, id: &str, opts: LogOptions) -> String {
        let chunks: Vec<Bytes> = rt.logs(id, &opts).await.expect("logs").collect().await;
        String::from_utf8(chunks.concat()).expect("utf-8 log")
    }

    async fn wait_log(rt: &ProcessRuntime, id: &str, needle: &str) {
        eventually(&format!("{needle:?} in the log"), || async {
            log_text(rt, id, LogOptions::default()).await.contains(needle).then_some(())
        })
        .await
    }

    fn tracked(rt: &ProcessRuntime, id: &str) -> Arc<Tracked> {
        let id = ContainerId::parse(id).expect("id");
        lock(&rt.inner.tracked).get(&id).cloned().expect("tracked container")
    }

    fn pids_in(n: &Node, file: &str) -> Vec<i32> {
        let text = fs::read_to_string(n.scratch.join(file)).expect("pid file");
        text.split_whitespace().map(|p| p.parse().expect("pid")).collect()
    }

    fn pid_alive(pid: i32) -> bool {
        read_proc_stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
    }

    async fn wait_dead(pid: i32) {
        eventually(&format!("process {pid} to die"), || async { (!pid_alive(pid)).then_some(()) }).await
    }

    // === starting and exit codes ===

    #[tokio::test]
    async fn exit_codes_and_states_are_recorded() {
        let n = node().await;
        let script = format!("{}; exit 3", wait_gate("go"));
        let id = start(&n, &shell(&n, "app", &script)).await;
        assert_eq!(id, "uid-1_app_0");
        assert!(matches!(n.rt.state(&id).await.unwrap(), State::Running { .. }));
        let listed = n.rt.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].pod.clone(), listed[0].container.as_str()), (n.cfg.pod.clone(), "app"));
        assert_eq!(listed[0].image, "ignored");

        touch(&n, "go");
        assert_eq!(exit_of(&n.rt, &id).await, (3, "Error".into()));
        let State::Exited { started_at, finished_at, .. } = n.rt.state(&id).await.unwrap() else {
            panic!("not exited")
        };
        assert!(started_at.is_some_and(|s| s <= finished_at));

        let ok = ContainerConfig { name: "ok".into(), command: vec!["true".into()], ..Default::default() };
        let id = start(&n, &ok).await;
        assert_eq!(exit_of(&n.rt, &id).await, (0, "Completed".into()));

        // Killed by a signal: 128 + the signal, as Docker reports it.
        let id = start(&n, &shell(&n, "killed", "kill -9 $$")).await;
        assert_eq!(exit_of(&n.rt, &id).await, (137, "Error".into()));
    }

    #[tokio::test]
    async fn a_command_is_required_and_must_exist() {
        let n = node().await;
        let none = ContainerConfig { name: "img".into(), image: "nginx".into(), ..Default::default() };
        match n.rt.start(&n.sandbox, &n.cfg, &none).await {
            Err(RuntimeError::Start(msg)) => assert_eq!(msg, NO_COMMAND),
            other => panic!("expected a start error, got {other:?}"),
        }
        let missing =
            ContainerConfig { name: "bad".into(), command: vec!["/no/such/binary".into()], ..Default::default() };
        assert!(matches!(n.rt.start(&n.sandbox, &n.cfg, &missing).await, Err(RuntimeError::Start(_))));
        // A failed start leaves nothing behind to list or adopt.
        assert!(n.rt.list().await.unwrap().is_empty());
        assert!(!n.rt.root().join("pods/uid-1/containers/bad-0").exists());

        let bad_name = ContainerConfig { name: "../x".into(), command: vec!["true".into()], ..Default::default() };
        assert!(matches!(n.rt.start(&n.sandbox, &n.cfg, &bad_name).await, Err(RuntimeError::Start(_))));
        assert!(matches!(n.rt.state("../../etc").await, Err(RuntimeError::NotFound(_))));
        assert!(matches!(n.rt.state("uid-1_nope_0").await, Err(RuntimeError::NotFound(_))));
    }

    #[tokio::test]
    async fn starting_a_running_container_again_returns_it() {
        let n = node().await;
        let c = shell(&n, "app", &wait_gate("go"));
        let id = start(&n, &c).await;
        let pid = tracked(&n.rt, &id).pid;
        assert_eq!(start(&n, &c).await, id);
        assert_eq!(tracked(&n.rt, &id).pid, pid, "the command ran twice");
        touch(&n, "go");
        exit_of(&n.rt, &id).await;
        assert!(matches!(n.rt.start(&n.sandbox, &n.cfg, &c).await, Err(RuntimeError::Start(_))));
    }

    // === stopping ===

    #[tokio::test]
    async fn stop_lets_a_process_that_handles_sigterm_exit() {
        let n = node().await;
        let script = "trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 0.05; done";
        let id = start(&n, &shell(&n, "app", script)).await;
        wait_log(&n.rt, &id, "ready").await;
        let began = Instant::now();
        // Any grace period, however long, is waited out only as long as the process runs.
        n.rt.stop(&id, Duration::MAX).await.unwrap();
        assert!(began.elapsed() < Duration::from_secs(10), "waited for the grace period: {:?}", began.elapsed());
        assert_eq!(exit_of(&n.rt, &id).await, (7, "Error".into()));
        wait_log(&n.rt, &id, "bye").await;
        // Stopping what has stopped is fine.
        n.rt.stop(&id, Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn stop_kills_a_process_that_ignores_sigterm_after_the_grace_period() {
        let n = node().await;
        let script = "trap '' TERM; echo ready; while :; do sleep 0.05; done";
        let id = start(&n, &shell(&n, "app", script)).await;
        wait_log(&n.rt, &id, "ready").await;
        let grace = Duration::from_millis(800);
        let began = Instant::now();
        n.rt.stop(&id, grace).await.unwrap();
        assert!(began.elapsed() >= grace, "killed before the grace period ended");
        assert!(began.elapsed() < Duration::from_secs(10));
        assert_eq!(exit_of(&n.rt, &id).await, (137, "Error".into()));
    }

    #[tokio::test]
    async fn stop_reaches_the_whole_process_group() {
        let n = node().await;
        // The children inherit the ignored SIGTERM: only SIGKILL to the group ends them.
        let script = "trap '' TERM; sleep 1000 & echo $! > \"$SCRATCH/pids\"; sleep 1000 & echo $! >> \"$SCRATCH/pids\"; \
                      echo ready; wait";
        let id = start(&n, &shell(&n, "app", script)).await;
        wait_log(&n.rt, &id, "ready").await;
        let children = pids_in(&n, "pids");
        assert_eq!(children.len(), 2);
        assert!(children.iter().all(|p| pid_alive(*p)));
        n.rt.stop(&id, Duration::from_millis(300)).await.unwrap();
        for pid in children {
            assert!(!pid_alive(pid), "child {pid} survived the stop");
        }
    }

    #[tokio::test]
    async fn what_is_left_dies_with_the_main_process() {
        let n = node().await;
        let id = start(&n, &shell(&n, "app", "sleep 1000 & echo $! > \"$SCRATCH/pids\"; exit 0")).await;
        assert_eq!(exit_of(&n.rt, &id).await, (0, "Completed".into()));
        let pids = pids_in(&n, "pids");
        wait_dead(pids[0]).await;
    }

    // === logs ===

    #[tokio::test]
    async fn logs_support_tail_timestamps_and_since() {
        let n = node().await;
        let script = format!("echo one; echo two >&2; echo three; {}; echo four", wait_gate("go"));
        let id = start(&n, &shell(&n, "app", &script)).await;
        wait_log(&n.rt, &id, "three").await;
        assert_eq!(log_text(&n.rt, &id, LogOptions::default()).await, "one\ntwo\nthree\n");
        let tail = LogOptions { tail_lines: Some(2), ..Default::default() };
        assert_eq!(log_text(&n.rt, &id, tail).await, "two\nthree\n");
        let none = LogOptions { tail_lines: Some(0), ..Default::default() };
        assert_eq!(log_text(&n.rt, &id, none).await, "");

        let stamped = log_text(&n.rt, &id, LogOptions { timestamps: true, ..Default::default() }).await;
        let lines: Vec<&str> = stamped.lines().collect();
        assert_eq!(lines.len(), 3);
        for (line, word) in lines.iter().zip(["one", "two", "three"]) {
            let (ts, text) = line.split_once(' ').expect("timestamp prefix");
            assert_eq!(text, word);
            assert_eq!(ts.len(), "2024-01-01T00:00:00.000000000Z".len(), "{ts}");
            assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        }

        // Make sure the first lines carry a time before `since`, then write one after it.
        lock(&tracked(&n.rt, &id).logs).poll().unwrap();
        let since = SystemTime::now();
        touch(&n, "go");
        exit_of(&n.rt, &id).await;
        let opts = LogOptions { since: Some(since), ..Default::default() };
        assert_eq!(log_text(&n.rt, &id, opts).await, "four\n");
    }

    #[tokio::test]
    async fn follow_streams_new_lines_until_the_container_exits() {
        let n = node().await;
        let script = format!("echo first; {}; echo second; printf 'no newline'", wait_gate("go"));
        let id = start(&n, &shell(&n, "app", &script)).await;
        wait_log(&n.rt, &id, "first").await;
        let mut logs = n.rt.logs(&id, &LogOptions { follow: true, ..Default::default() }).await.unwrap();
        let first = tokio::time::timeout(DEADLINE, logs.next()).await.expect("first chunk").expect("open stream");
        assert_eq!(first, Bytes::from_static(b"first\n"));
        touch(&n, "go");
        let rest: Vec<Bytes> = tokio::time::timeout(DEADLINE, logs.collect()).await.expect("the stream to end");
        assert_eq!(rest.concat(), b"second\nno newline");
    }

    #[tokio::test]
    async fn logs_rotate_by_size_and_keep_max_files() {
        let n = node_with(LogRotation { max_bytes: 4096, max_files: 2 }).await;
        // 100 lines are 3200 bytes: "a" and "b" together pass the limit, so the first
        // rotation happens after all of "a"; "c" alone passes it again.
        let lines = |prefix: &str, count: u32| {
            format!(
                "i=0; while [ $i -lt {count} ]; do printf '{prefix} %04d xxxxxxxxxxxxxxxxxxxxxxxx\\n' $i; i=$((i+1)); done"
            )
        };
        let script = format!(
            "{}; {}; {}; {}; {}",
            lines("a", 100),
            lines("b", 100),
            wait_gate("go"),
            lines("c", 160),
            wait_gate("end")
        );
        let id = start(&n, &shell(&n, "app", &script)).await;
        let t = tracked(&n.rt, &id);
        eventually("a first rotation", || async { (lock(&t.logs).rotations >= 1).then_some(()) }).await;
        touch(&n, "go");
        eventually("a second rotation", || async { (lock(&t.logs).rotations >= 2).then_some(()) }).await;
        wait_log(&n.rt, &id, "c 0159").await;

        let text = log_text(&n.rt, &id, LogOptions::default()).await;
        assert!(!text.contains("a 0000"), "the oldest generation was kept");
        assert!(text.ends_with("c 0159 xxxxxxxxxxxxxxxxxxxxxxxx\n"));
        let dir = n.rt.inner.container_dir(&ContainerId::parse(&id).unwrap());
        assert!(dir.join("stdout.log.1").exists());
        assert!(!dir.join("stdout.log.2").exists());
        let tail = LogOptions { tail_lines: Some(1), ..Default::default() };
        assert_eq!(log_text(&n.rt, &id, tail).await, "c 0159 xxxxxxxxxxxxxxxxxxxxxxxx\n");
        touch(&n, "end");
        exit_of(&n.rt, &id).await;
    }

    #[test]
    fn line_times_come_from_the_index() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(LOG_FILE), b"a\nb\nc\npart").unwrap();
        let (t1, t2) = (from_unix_ns(1_000), from_unix_ns(2_000));
        append_index(&index_path(tmp.path(), 0), 2, t1).unwrap();
        append_index(&index_path(tmp.path(), 0), 6, t2).unwrap();
        let unindexed = from_unix_ns(3_000);
        let chunk = read_generation(tmp.path(), 0, 0, unindexed).unwrap();
        let times: Vec<SystemTime> = chunk.lines.iter().map(|l| l.time).collect();
        assert_eq!(times, vec![t1, t2, t2]);
        assert_eq!(chunk.end, 6);
        assert_eq!(chunk.partial, Some(LogLine { time: unindexed, text: b"part".to_vec() }));
        // Reading on from an offset keeps the offsets absolute.
        let chunk = read_generation(tmp.path(), 0, 2, unindexed).unwrap();
        assert_eq!(chunk.lines[0], LogLine { time: t2, text: b"b\n".to_vec() });
    }

    #[test]
    fn timestamps_are_rfc3339_with_nanoseconds() {
        assert_eq!(format_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 5);
        assert_eq!(format_timestamp(t), "2024-02-29T12:34:56.000000005Z");
        assert_eq!(format_timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn proc_stat_parsing_survives_odd_command_names() {
        let line = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 123456 1000 10";
        let s = parse_proc_stat(line).unwrap();
        assert_eq!(s, ProcStat { state: 'S', pgrp: 4242, cpu_ticks: 13, start_ticks: 123456 });
        assert_eq!(parse_proc_stat("garbage"), None);
        let own = read_proc_stat(std::process::id() as i32).unwrap();
        assert!(own.start_ticks > 0);
    }

    // === exec, mounts, stats ===

    #[tokio::test]
    async fn exec_runs_with_the_container_env_and_dir() {
        let n = node().await;
        let mut c = shell(&n, "app", "sleep 1000");
        c.env.push(("FOO".into(), "bar".into()));
        let id = start(&n, &c).await;
        let dir = n.rt.inner.container_dir(&ContainerId::parse(&id).unwrap());

        let cmd = vec!["sh".into(), "-c".into(), "echo $FOO; pwd; echo oops >&2; exit 5".into()];
        let session = n.rt.exec(&id, cmd, false, false).await.unwrap();
        assert!(session.stdin.is_none());
        let output: Vec<(u8, Bytes)> = session.output.collect().await;
        let tagged =
            |tag| output.iter().filter(|(t, _)| *t == tag).map(|(_, b)| b.clone()).collect::<Vec<_>>().concat();
        assert_eq!(String::from_utf8(tagged(1)).unwrap(), format!("bar\n{}\n", dir.display()));
        assert_eq!(tagged(2), b"oops\n");
        assert_eq!(session.exit.await.unwrap(), 5);

        let mut session = n.rt.exec(&id, vec!["cat".into()], false, true).await.unwrap();
        let mut stdin = session.stdin.take().expect("stdin");
        stdin.write_all(b"hello").await.unwrap();
        drop(stdin);
        let output: Vec<(u8, Bytes)> = session.output.collect().await;
        assert_eq!(output.into_iter().map(|(_, b)| b).collect::<Vec<_>>().concat(), b"hello");
        assert_eq!(session.exit.await.unwrap(), 0);

        // An exec'd command is part of the container: stopping it ends the command.
        let cmd = vec!["sh".into(), "-c".into(), "echo $$; exec sleep 1000".into()];
        let mut session = n.rt.exec(&id, cmd, false, false).await.unwrap();
        let (_, pid) = session.output.next().await.expect("pid");
        let pid: i32 = String::from_utf8_lossy(&pid).trim().parse().unwrap();
        n.rt.stop(&id, Duration::from_secs(5)).await.unwrap();
        assert!(!pid_alive(pid), "the exec'd command survived the stop");
        assert_eq!(session.exit.await.unwrap(), 143);

        assert!(n.rt.exec(&id, vec!["true".into()], false, false).await.is_err(), "exec into a stopped container");
    }

    #[tokio::test]
    async fn mounts_are_links_below_rk_root() {
        let n = node().await;
        let vol = n.scratch.join("vol");
        fs::create_dir(&vol).unwrap();
        fs::write(vol.join("data.txt"), b"hello from the volume\n").unwrap();
        let mount = |path: &str| Mount { host_path: vol.clone(), container_path: path.into(), read_only: true };
        let mut c = shell(&n, "app", "cat \"$RK_ROOT/data/vol/data.txt\"; echo \"path=$PATH\"");
        c.mounts = vec![mount("/data/vol")];
        let id = start(&n, &c).await;
        exit_of(&n.rt, &id).await;
        let text = log_text(&n.rt, &id, LogOptions::default()).await;
        assert!(text.starts_with("hello from the volume\npath=/"), "{text}");

        for bad in
            [vec![mount("data")], vec![mount("/a/../../etc")], vec![mount("/d"), mount("/d/e")], vec![mount("/")]]
        {
            let mut c = shell(&n, "bad", "true");
            c.mounts = bad.clone();
            let res = n.rt.start(&n.sandbox, &n.cfg, &c).await;
            assert!(matches!(res, Err(RuntimeError::Start(_))), "{bad:?}: {res:?}");
        }
        assert!(!vol.join("e").exists(), "a nested mount wrote into the host directory");
    }

    #[tokio::test]
    async fn stats_sum_the_process_group() {
        let n = node().await;
        // A shell spinning, and a child: CPU time is counted in clock ticks (10 ms), so
        // wait until some is, rather than for a fixed amount of work (20,000 loop rounds
        // once took less than a tick).
        let script = "sleep 1000 & echo started; while true; do :; done";
        let id = start(&n, &shell(&n, "app", script)).await;
        wait_log(&n.rt, &id, "started").await;
        let stats = eventually("CPU time counted", || async {
            let s = n.rt.stats(&id).await.ok()?;
            (s.cpu_nanos > 0).then_some(s)
        })
        .await;
        assert!(stats.memory_bytes > 0, "{stats:?}");
        n.rt.stop(&id, Duration::from_secs(5)).await.unwrap();
        assert_eq!(n.rt.stats(&id).await.unwrap(), Stats::default());
    }

    // === sandboxes ===

    #[tokio::test]
    async fn sandboxes_use_the_host_ip_and_removal_kills_their_containers() {
        let n = node().await;
        assert_eq!(n.sandbox, Sandbox { id: "uid-1".into(), ip: Some("127.0.0.1".into()) });
        assert_eq!(n.rt.run_sandbox(&n.cfg).await.unwrap(), n.sandbox, "run_sandbox is idempotent");
        assert_eq!(n.rt.list_sandboxes().await.unwrap(), vec![(n.cfg.pod.clone(), n.sandbox.clone())]);
        assert!(n.rt.version().await.unwrap().starts_with("process://"));
        assert!(matches!(n.rt.run_sandbox(&pod("a/b")).await, Err(RuntimeError::Sandbox(_))));

        let id = start(&n, &shell(&n, "app", "echo $$ > \"$SCRATCH/pids\"; trap '' TERM; sleep 1000")).await;
        // The shell creates the file before it writes to it: wait for a whole pid.
        let pid: i32 = eventually("the pid file", || async {
            fs::read_to_string(n.scratch.join("pids")).ok().and_then(|s| s.trim().parse().ok())
        })
        .await;
        n.rt.remove_sandbox("uid-1").await.unwrap();
        assert!(!pid_alive(pid));
        assert!(n.rt.list().await.unwrap().is_empty());
        assert!(n.rt.list_sandboxes().await.unwrap().is_empty());
        assert!(matches!(n.rt.state(&id).await, Err(RuntimeError::NotFound(_))));
        n.rt.remove_sandbox("uid-1").await.unwrap();
        n.rt.remove(&id).await.unwrap();
    }

    // === adoption ===

    fn tokio_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
    }

    /// A restarted agent: the first runtime (and its tokio runtime, with every
    /// supervisor) is gone; a second one on the same root finds the processes.
    #[test]
    fn a_new_runtime_adopts_running_containers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let cfg = pod("uid-1");
        let spin = "echo hello; while :; do sleep 0.05; done";
        let c = |name: &str| ContainerConfig {
            name: name.into(),
            image: "img".into(),
            command: vec!["sh".into(), "-c".into(), spin.into()],
            ..Default::default()
        };

        let first = tokio_runtime();
        let (live, dead, before) = first.block_on(async {
            let rt = ProcessRuntime::new(root.clone(), "n1", None);
            let sandbox = rt.run_sandbox(&cfg).await.unwrap();
            let live = rt.start(&sandbox, &cfg, &c("live")).await.unwrap();
            let dead = rt.start(&sandbox, &cfg, &c("dead")).await.unwrap();
            wait_log(&rt, &live, "hello").await;
            let before = rt.state(&live).await.unwrap();
            (live, dead, before)
        });
        drop(first);

        let second = tokio_runtime();
        second.block_on(async {
            let rt = ProcessRuntime::new(root.clone(), "n1", None);
            // One container ends while no agent runs.
            let dead_pid = read_json::<ContainerRecord>(
                &rt.inner.container_dir(&ContainerId::parse(&dead).unwrap()).join(STATE_FILE),
            )
            .unwrap()
            .unwrap()
            .pid;
            signal_group(dead_pid, Signal::SIGKILL).unwrap();
            wait_dead(dead_pid).await;

            let listed = rt.list().await.unwrap();
            assert_eq!(listed.len(), 2);
            let find = |id: &str| listed.iter().find(|c| c.id == id).expect("listed").clone();
            assert_eq!(find(&live).state, before, "same process, same start time");
            assert_eq!((find(&live).pod, find(&live).attempt, find(&live).image.as_str()), (cfg.pod.clone(), 0, "img"));
            match find(&dead).state {
                State::Exited { exit_code, reason, .. } => {
                    assert_eq!((exit_code, reason.as_str()), (UNKNOWN_EXIT_CODE, "Unknown"))
                }
                other => panic!("expected the dead container to have exited, got {other:?}"),
            }

            let sandbox = Sandbox { id: "uid-1".into(), ip: None };
            assert_eq!(rt.start(&sandbox, &cfg, &c("live")).await.unwrap(), live, "started twice");
            assert!(log_text(&rt, &live, LogOptions::default()).await.starts_with("hello\n"));
            assert!(rt.stats(&live).await.unwrap().memory_bytes > 0);

            let pid = tracked(&rt, &live).pid;
            rt.stop(&live, Duration::from_secs(5)).await.unwrap();
            assert!(!pid_alive(pid));
            // Nobody could wait on it; the SIGTERM it was sent is the best evidence.
            assert_eq!(exit_of(&rt, &live).await, (143, "Error".into()));
            rt.remove_sandbox("uid-1").await.unwrap();
        });
    }

    #[tokio::test]
    async fn a_reused_pid_is_not_adopted() {
        let n = node().await;
        let id = ContainerId { pod_uid: "uid-1".into(), name: "old".into(), attempt: 0 };
        let dir = n.rt.inner.container_dir(&id);
        fs::create_dir_all(&dir).unwrap();
        let me = std::process::id() as i32;
        let ticks = read_proc_stat(me).unwrap().start_ticks;
        let mut record = ContainerRecord {
            pod: (&n.cfg.pod).into(),
            container: "old".into(),
            attempt: 0,
            image: String::new(),
            pid: me,
            // This pid now belongs to a process started at another time.
            proc_start_ticks: ticks + 1,
            started_at_unix_ns: 0,
            env: Vec::new(),
            working_dir: dir.clone(),
        };
        write_json_atomic(&dir.join(STATE_FILE), &record).unwrap();
        let state = n.rt.state(&id.to_string()).await.unwrap();
        assert!(matches!(state, State::Exited { exit_code: UNKNOWN_EXIT_CODE, .. }), "{state:?}");

        // A record naming init is never trusted, even with the right start time.
        let id = ContainerId { name: "init".into(), ..id };
        let dir = n.rt.inner.container_dir(&id);
        fs::create_dir_all(&dir).unwrap();
        record.pid = 1;
        record.proc_start_ticks = read_proc_stat(1).map_or(0, |s| s.start_ticks);
        write_json_atomic(&dir.join(STATE_FILE), &record).unwrap();
        assert!(matches!(n.rt.state(&id.to_string()).await.unwrap(), State::Exited { .. }));
        n.rt.stop(&id.to_string(), Duration::from_secs(1)).await.unwrap();
    }
}
