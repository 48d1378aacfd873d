//! Container runtimes behind one small trait. A pod is a *sandbox* (the network
//! namespace and pod IP the pod's containers share) plus its containers.
//!
//! - [`docker`]: real containers through the Docker Engine API.
//! - [`process`]: containers as host processes (like Nomad's raw_exec).
//! - [`hollow`]: simulated containers for scale tests.
//!
//! Every container a runtime starts carries the pod's uid, namespace and name and
//! the container's name and attempt, so an agent that restarts can find (and adopt)
//! what is already running instead of starting it twice.

pub mod docker;
pub mod hollow;
pub mod process;

use bytes::Bytes;
use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Why a runtime call failed. The variants map to pod status reasons.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The image is not present and cannot be pulled (`ErrImagePull`).
    #[error("image {image:?} is not present on this node and cannot be pulled: {detail}")]
    ImageNotFound { image: String, detail: String },
    /// The command could not be started (`RunContainerError` / `StartError`).
    #[error("cannot start the container: {0}")]
    Start(String),
    /// A sandbox could not be made (`CreatePodSandboxError`).
    #[error("cannot create the pod sandbox: {0}")]
    Sandbox(String),
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("the runtime does not support {0}")]
    Unsupported(&'static str),
    #[error("container runtime error: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// Identity of the pod a sandbox or container belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRef {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

/// DNS settings written to the pod's resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// What a sandbox needs.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    pub pod: PodRef,
    pub hostname: String,
    pub host_network: bool,
    pub dns: DnsConfig,
    /// Per-pod directory on the node (volumes, logs, resolv.conf live below it).
    pub pod_dir: std::path::PathBuf,
}

/// A running sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sandbox {
    pub id: String,
    /// The pod's IP; None for host-network pods (they use the node's).
    pub ip: Option<String>,
}

/// A bind of a node directory or file into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host_path: std::path::PathBuf,
    pub container_path: String,
    pub read_only: bool,
}

/// What a container needs.
#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    pub name: String,
    pub image: String,
    /// The entrypoint (Kubernetes `command`); empty: the image's.
    pub command: Vec<String>,
    /// Kubernetes `args`; empty: the image's.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub cpu_limit_millis: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    /// How many times this container was started before (0 for the first start).
    pub attempt: u32,
    pub tty: bool,
    /// Keep stdin open for clients that attach (Kubernetes `stdin`).
    pub stdin: bool,
    /// Close stdin when the first attached client leaves (Kubernetes `stdinOnce`).
    pub stdin_once: bool,
    /// `Always` pulls before starting when a registry answers; `Never` never pulls.
    pub pull_policy: String,
    /// Extra annotations the runtime should keep with the container (hollow: crash plans).
    pub annotations: BTreeMap<String, String>,
}

/// A container's state as the runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Created,
    Running { started_at: SystemTime },
    Exited { exit_code: i32, reason: String, started_at: Option<SystemTime>, finished_at: SystemTime },
    Unknown,
}

/// A container found by [`Runtime::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub pod: PodRef,
    pub container: String,
    pub attempt: u32,
    pub image: String,
    pub state: State,
}

/// Options of a log read (Kubernetes' pod log options).
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub since: Option<SystemTime>,
    pub timestamps: bool,
}

/// An exec session's streams.
pub struct ExecSession {
    pub stdin: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    pub output: BoxStream<'static, (u8, Bytes)>,
    /// Resolves to the exit code once the command ends.
    pub exit: futures::future::BoxFuture<'static, Result<i32>>,
}

/// Resource usage of a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Total CPU time used, in nanoseconds (a counter).
    pub cpu_nanos: u64,
    /// Working-set memory in bytes.
    pub memory_bytes: u64,
}

/// One container runtime.
#[tonic::async_trait]
pub trait Runtime: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// E.g. "docker://28.2.2" (shown as the node's containerRuntimeVersion).
    async fn version(&self) -> Result<String>;
    /// Creates (or finds, by pod uid) the pod's sandbox.
    async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox>;
    /// Removes the sandbox of a pod and everything left in it.
    async fn remove_sandbox(&self, pod_uid: &str) -> Result<()>;
    /// Sandboxes that exist on this node, by pod.
    async fn list_sandboxes(&self) -> Result<Vec<(PodRef, Sandbox)>>;
    /// Creates and starts a container in a sandbox; returns its id.
    async fn start(&self, sandbox: &Sandbox, cfg: &SandboxConfig, c: &ContainerConfig) -> Result<String>;
    /// SIGTERM, then SIGKILL after `grace`.
    async fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    async fn remove(&self, id: &str) -> Result<()>;
    async fn state(&self, id: &str) -> Result<State>;
    /// Every container of rk's on this node.
    async fn list(&self) -> Result<Vec<ContainerInfo>>;
    async fn logs(&self, id: &str, opts: &LogOptions) -> Result<BoxStream<'static, Bytes>>;
    async fn exec(&self, id: &str, cmd: Vec<String>, tty: bool, stdin: bool) -> Result<ExecSession>;
    async fn stats(&self, id: &str) -> Result<Stats>;
    /// A TCP connection to `port` on the pod's loopback, made inside the pod's network
    /// namespace, as the kubelet's port-forward makes it (so a server listening on
    /// 127.0.0.1 in the pod is reached too). `Unsupported` where this runtime cannot
    /// enter the namespace; port-forward then connects to the pod's IP.
    /// A session with a running container's own stdin, stdout and stderr (`kubectl
    /// attach`). It ends when the container's output ends; its exit resolves to 0 then,
    /// since attach reports success whatever the container's exit code, as the kubelet
    /// does.
    async fn attach(&self, _id: &str, _stdin: bool) -> Result<ExecSession> {
        Err(RuntimeError::Unsupported("attach"))
    }
    async fn connect_in_pod(&self, _sandbox: &Sandbox, _port: u16) -> Result<tokio::net::TcpStream> {
        Err(RuntimeError::Unsupported("connecting inside a pod's network namespace"))
    }
}

/// Labels (or equivalent records) every runtime attaches to what it starts.
pub mod labels {
    pub const POD_UID: &str = "io.rk.pod.uid";
    pub const POD_NAME: &str = "io.rk.pod.name";
    pub const POD_NAMESPACE: &str = "io.rk.pod.namespace";
    pub const CONTAINER: &str = "io.rk.container.name";
    pub const ATTEMPT: &str = "io.rk.container.attempt";
    pub const SANDBOX: &str = "io.rk.sandbox";
}
