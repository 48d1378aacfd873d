//! The Docker runtime: real containers through the Docker Engine API (bollard).
//!
//! A pod is laid out the way kubelet's dockershim laid it out:
//!
//! ```text
//!   network "rk-pods" (bridge, shared by every agent on this engine)
//!        |
//!   rk_POD_web_default_1a2b3c4d_0    pause container: owns the network namespace,
//!        ^        ^                  the pod IP (from the network's IPAM) and the hostname
//!        |        |
//!   rk_app_web_default_1a2b3c4d_0    app containers: network_mode "container:<sandbox id>",
//!   rk_log_web_default_1a2b3c4d_2    so they share the pod IP, localhost, hostname and /etc/hosts
//! ```
//!
//! Every container carries the labels of [`super::labels`] plus [`NODE_LABEL`]; the agent
//! finds (adopts) what it started before a restart with [`Runtime::list`] and
//! [`Runtime::list_sandboxes`], and several agents can share one engine (a local cluster)
//! because each only sees containers labelled with its own node name.
//!
//! There is no registry on the machines rk runs on, so the pause image is made here:
//! [`pause_elf`] writes a ~200-byte static x86_64 program and [`DockerRuntime::ensure_pause_image`]
//! imports it as `rk-pause:3` (`docker import` of an in-memory tar). [`DockerRuntime::build_busybox_image`]
//! does the same for a busybox binary, for tests and demos.
//!
//! Where to start reading: [`DockerRuntime::connect`], then `run_sandbox` and `start`.

use super::{
    ContainerConfig, ContainerInfo, DnsConfig, ExecSession, LogOptions, PodRef, Result, Runtime, RuntimeError, Sandbox,
    SandboxConfig, State, Stats, labels,
};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary, ExecConfig, HostConfig,
    NetworkCreateRequest, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, oneshot};

/// The pause image the runtime builds for itself when it is missing.
pub const PAUSE_IMAGE: &str = "rk-pause:3";
/// Label with the name of the node (agent) that started a container: agents sharing an
/// engine only list and adopt their own containers.
pub const NODE_LABEL: &str = "io.rk.node";
/// Prefix of the labels that keep [`ContainerConfig::annotations`].
pub const ANNOTATION_LABEL_PREFIX: &str = "io.rk.annotation.";
/// Label on the Docker network the runtime created.
pub const NETWORK_LABEL: &str = "io.rk.network";
/// The container name the sandbox carries in [`labels::CONTAINER`] (kubelet's `POD`).
const SANDBOX_CONTAINER_NAME: &str = "POD";
/// File written below [`SandboxConfig::pod_dir`] and bound at /etc/resolv.conf.
const RESOLV_CONF: &str = "resolv.conf";
/// The Docker client's own response timeout (seconds) for calls that return promptly.
const CALL_TIMEOUT_SECS: u64 = 120;

/// Serialises the check-then-import of the pause image across every runtime of this
/// process (a local cluster may run several agents in one process), so that it is imported
/// once. Agents in other processes may still race; that only leaves an unused 209-byte
/// image behind.
static PAUSE_IMPORT: Mutex<()> = Mutex::const_new(());

/// The Docker runtime of one node.
pub struct DockerRuntime {
    docker: Docker,
    /// Name of the Docker network pods get their IPs from.
    network: String,
    /// Id of that network: names can be ambiguous on engines that allow duplicates.
    network_id: String,
    /// Value of [`NODE_LABEL`] on everything this runtime starts.
    node: String,
    /// Where sandboxes route Service traffic, when not the engine's default way.
    service_route: Option<ServiceRoute>,
    /// The container whose network host-network pods share (the node's own, when the
    /// agent runs in one); None: the engine host's.
    host_network_container: Option<String>,
}

/// A route every pod sandbox adds for itself: `cidr` via `via`. The agent of a node
/// that is itself a container (the docker driver of `rkctl cluster up`) serves cluster
/// IPs in its container's network namespace, which pods' packets only pass when they
/// are routed there; the engine's default route leads to its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRoute {
    /// The cluster's Service range, `a.b.c.d/n`.
    pub cidr: String,
    /// The node's address on the pods' network.
    pub via: String,
    /// A static busybox at a path the engine can bind (the sandbox image has no `ip`).
    pub helper: PathBuf,
}

/// Where the route helper is bound in a sandbox. The name must be `busybox`: it picks
/// busybox's applet by the name it runs as.
const ROUTE_HELPER_PATH: &str = "/.rk/busybox";

/// The sandbox's command when it adds `r`: the route, then the pause program in the
/// shell's place. If the route cannot be added the sandbox exits at once rather than
/// run without it.
fn route_command(r: &ServiceRoute) -> Vec<String> {
    let script = format!("{ROUTE_HELPER_PATH} ip route replace \"$0\" via \"$1\" && exec /pause");
    [ROUTE_HELPER_PATH, "sh", "-c", &script, &r.cidr, &r.via].map(String::from).to_vec()
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime").field("network", &self.network).field("node", &self.node).finish()
    }
}

// === impl DockerRuntime: connection, network, images ===

impl DockerRuntime {
    /// Connects to the local engine (`DOCKER_HOST`, else /var/run/docker.sock), agrees on an
    /// API version, and makes sure the bridge network `network` exists (creating it if
    /// missing; other agents on the same engine may share it). `node_name` labels every
    /// container this runtime starts and scopes what it lists.
    pub async fn connect(network: &str, node_name: &str) -> Result<Self> {
        if network.is_empty() || node_name.is_empty() {
            return Err(RuntimeError::Other("the Docker network and the node name must not be empty".into()));
        }
        let docker = Docker::connect_with_defaults()
            .map_err(|e| RuntimeError::Other(format!("cannot reach the Docker engine: {e}")))?
            .with_timeout(Duration::from_secs(CALL_TIMEOUT_SECS))
            // bollard speaks the newest API by default; older engines (20.10 speaks 1.41)
            // refuse it, so step down to what the engine supports.
            .negotiate_version()
            .await
            .map_err(|e| RuntimeError::Other(format!("cannot reach the Docker engine: {e}")))?;
        let network_id = ensure_network(&docker, network).await?;
        Ok(Self {
            docker,
            network: network.to_string(),
            network_id,
            node: node_name.to_string(),
            service_route: None,
            host_network_container: None,
        })
    }

    /// Host-network pods made from now on share the network of container `name` (the
    /// node's, when the agent runs in a container of its own) instead of the engine
    /// host's; None: the host's.
    pub fn with_host_network_container(mut self, name: Option<String>) -> Self {
        self.host_network_container = name;
        self
    }

    /// The engine's network mode for a host-network sandbox.
    fn host_network_mode(&self) -> String {
        match &self.host_network_container {
            Some(c) => format!("container:{c}"),
            None => "host".into(),
        }
    }

    /// Sandboxes made from now on add `route` (see [`ServiceRoute`]); None: they do not.
    pub fn with_service_route(mut self, route: Option<ServiceRoute>) -> Self {
        self.service_route = route;
        self
    }

    /// The bollard client, for callers that need an API call this runtime does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The Docker network pods are attached to.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The Linux bridge behind the pods' network: Docker names it `br-` and the
    /// first 12 characters of the network id (rk creates the network without a
    /// `com.docker.network.bridge.name` option).
    pub fn bridge_name(&self) -> String {
        format!("br-{}", self.network_id.get(..12).unwrap_or(&self.network_id))
    }

    /// The node name this runtime labels and lists containers by.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// Imports [`PAUSE_IMAGE`] unless the engine has it. Called by `run_sandbox`; an agent
    /// may call it at start-up to fail early.
    pub async fn ensure_pause_image(&self) -> Result<()> {
        let _one_import = PAUSE_IMPORT.lock().await;
        match self.docker.inspect_image(PAUSE_IMAGE).await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => self.import_pause_image(PAUSE_IMAGE).await,
            Err(e) => Err(RuntimeError::Other(format!("inspect image {PAUSE_IMAGE}: {e}"))),
        }
    }

    /// Imports the pause program ([`pause_elf`]) as image `tag`, with CMD ["/pause"].
    pub async fn import_pause_image(&self, tag: &str) -> Result<()> {
        // The program is x86_64 machine code; it runs where the engine runs, which is
        // not necessarily where the agent runs.
        let version =
            self.docker.version().await.map_err(|e| RuntimeError::Other(format!("query the engine's version: {e}")))?;
        if version.arch.as_deref() != Some("amd64") {
            return Err(RuntimeError::Unsupported("building the pause image on an engine that is not x86_64"));
        }
        let mut rootfs = RootfsTar::new();
        rootfs.file("pause", 0o755, &pause_elf()).map_err(tar_error)?;
        self.import_rootfs(tag, rootfs.finish().map_err(tar_error)?, &[r#"CMD ["/pause"]"#]).await
    }

    /// Builds image `tag` from a static busybox binary (Debian's busybox-static:
    /// `apt-get download busybox-static && dpkg-deb -x busybox-static_*.deb dir`, then
    /// `dir/bin/busybox`): /bin/busybox, a symlink per common applet, /etc/passwd, /tmp;
    /// CMD ["sh"]. No registry is needed.
    pub async fn build_busybox_image(&self, tag: &str, busybox_path: &Path) -> Result<()> {
        let busybox = tokio::fs::read(busybox_path)
            .await
            .map_err(|e| RuntimeError::Other(format!("read busybox binary {}: {e}", busybox_path.display())))?;
        let rootfs = busybox_rootfs(&busybox).map_err(tar_error)?;
        self.import_rootfs(
            tag,
            rootfs,
            &[r#"CMD ["sh"]"#, "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        )
        .await
    }

    /// `docker import`: makes image `tag` from a root filesystem tar, applying Dockerfile
    /// `changes` (CMD, ENV, ...).
    pub async fn import_rootfs(&self, tag: &str, rootfs_tar: Vec<u8>, changes: &[&str]) -> Result<()> {
        let (repo, image_tag) = split_reference(tag);
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repo)
            .tag(image_tag)
            .changes(changes.iter().map(|c| c.to_string()).collect())
            .build();
        self.docker
            .create_image(Some(options), Some(bollard::body_full(Bytes::from(rootfs_tar))), None)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| RuntimeError::Other(format!("import image {tag}: {e}")))?;
        tracing::info!(image = tag, "imported image");
        Ok(())
    }

    /// Makes sure `image` is present, pulling it when the policy allows.
    async fn ensure_image(&self, image: &str, pull_policy: &str) -> Result<()> {
        let present = match self.docker.inspect_image(image).await {
            Ok(_) => true,
            Err(e) if status_of(&e) == Some(404) => false,
            Err(e) => return Err(RuntimeError::Other(format!("inspect image {image}: {e}"))),
        };
        match (present, pull_policy) {
            (true, "Always") => {
                // "Always" pulls when a registry answers; with none (the usual case here)
                // the local image is what there is.
                if let Err(detail) = self.pull(image).await {
                    tracing::warn!(image, %detail, "pull failed; using the local image");
                }
                Ok(())
            }
            (true, _) => Ok(()),
            (false, "Never") => Err(RuntimeError::ImageNotFound {
                image: image.to_string(),
                detail: "the image is not present and the pull policy is Never".into(),
            }),
            (false, _) => self
                .pull(image)
                .await
                .map_err(|detail| RuntimeError::ImageNotFound { image: image.to_string(), detail }),
        }
    }

    /// Pulls `image`; the error is the engine's message.
    async fn pull(&self, image: &str) -> std::result::Result<(), String> {
        let (repo, tag) = split_reference(image);
        // An empty tag would pull every tag of the repository.
        let options = CreateImageOptionsBuilder::new().from_image(repo).tag(tag).build();
        let pulled = self.docker.create_image(Some(options), None, None).try_collect::<Vec<_>>().await;
        pulled.map(drop).map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError { message, .. } => message,
            bollard::errors::Error::DockerStreamError { error } => error,
            other => other.to_string(),
        })
    }
}

/// Finds or creates the bridge network `name`; returns its id.
///
/// The engine's duplicate-name check is not atomic: two agents creating the network at
/// the same moment can both succeed, and which one a later list shows as older depends on
/// when each create started, not on when each became visible. So agents on one host
/// (the common case: a local cluster) take a lock file per network name around the whole
/// find-or-create. Across hosts sharing an engine (not a setup rk makes) the fallback
/// still applies: after creating, list the networks of that name, keep the oldest and
/// delete ours if it lost.
async fn ensure_network(docker: &Docker, name: &str) -> Result<String> {
    let lock_path = std::env::temp_dir().join(format!("rk-docker-network-{name}.lock"));
    let _lock = tokio::task::spawn_blocking(move || -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| std::io::Error::from(e))
    })
    .await
    .map_err(|e| RuntimeError::Other(format!("lock for Docker network {name}: {e}")))?
    .map_err(|e| RuntimeError::Other(format!("lock for Docker network {name}: {e}")))?;
    if let Some(id) = oldest_network(docker, name).await? {
        return Ok(id);
    }
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        labels: Some(HashMap::from([(NETWORK_LABEL.to_string(), "true".to_string())])),
        ..Default::default()
    };
    let ours = match docker.create_network(request).await {
        Ok(created) => Some(created.id),
        // Newer engines refuse a duplicate name: someone else just made it.
        Err(e) if status_of(&e) == Some(409) => None,
        Err(e) => return Err(RuntimeError::Other(format!("create Docker network {name}: {e}"))),
    };
    let winner = oldest_network(docker, name)
        .await?
        .ok_or_else(|| RuntimeError::Other(format!("Docker network {name} vanished right after it was created")))?;
    if let Some(ours) = ours.filter(|ours| *ours != winner) {
        tracing::info!(network = name, "another agent created the same network first; removing ours");
        if let Err(e) = docker.remove_network(&ours).await {
            tracing::warn!(network = name, error = %e, "cannot remove the duplicate network");
        }
    }
    tracing::info!(network = name, id = %winner, "using Docker network");
    Ok(winner)
}

/// The id of the oldest network called exactly `name` (the engine's name filter also
/// matches substrings).
async fn oldest_network(docker: &Docker, name: &str) -> Result<Option<String>> {
    let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(|e| RuntimeError::Other(format!("list Docker networks: {e}")))?;
    let mut same: Vec<(SystemTime, String)> = networks
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name))
        .filter_map(|n| {
            let created = n.created.as_deref().and_then(parse_rfc3339).unwrap_or(UNIX_EPOCH);
            Some((created, n.id?))
        })
        .collect();
    same.sort();
    Ok(same.into_iter().next().map(|(_, id)| id))
}

// === impl DockerRuntime: helpers of the trait methods ===

impl DockerRuntime {
    /// Labels every container of `pod` carries.
    fn pod_labels(&self, pod: &PodRef, container: &str, attempt: u32) -> HashMap<String, String> {
        HashMap::from([
            (labels::POD_UID.to_string(), pod.uid.clone()),
            (labels::POD_NAME.to_string(), pod.name.clone()),
            (labels::POD_NAMESPACE.to_string(), pod.namespace.clone()),
            (labels::CONTAINER.to_string(), container.to_string()),
            (labels::ATTEMPT.to_string(), attempt.to_string()),
            (NODE_LABEL.to_string(), self.node.clone()),
        ])
    }

    /// Every container of this node with all of `label_filters` (`key` or `key=value`).
    async fn list_labelled(&self, label_filters: &[String]) -> Result<Vec<ContainerSummary>> {
        let mut wanted = vec![format!("{NODE_LABEL}={}", self.node)];
        wanted.extend_from_slice(label_filters);
        let filters = HashMap::from([("label".to_string(), wanted)]);
        self.docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
            .await
            .map_err(|e| RuntimeError::Other(format!("list containers: {e}")))
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse> {
        self.docker.inspect_container(id, None).await.map_err(|e| container_error(e, id, "inspect container"))
    }

    /// Removes a container (killing it if it runs); a container already gone is fine.
    async fn force_remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 404: already gone; 409: "removal already in progress" (another call got there first).
            Err(e) if matches!(status_of(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(RuntimeError::Other(format!("remove container {id}: {e}"))),
        }
    }

    /// The pod IP of a sandbox as the engine reports it (None: host network or not running).
    fn sandbox_ip(&self, inspect: &ContainerInspectResponse) -> Option<String> {
        let networks = inspect.network_settings.as_ref()?.networks.as_ref()?;
        endpoint_ip(networks, &self.network_id, &self.network)
    }

    /// Creates and starts the sandbox (pause) container of `cfg`.
    async fn create_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox> {
        self.ensure_pause_image().await?;
        let name = container_name(SANDBOX_CONTAINER_NAME, &cfg.pod, 0);
        let mut labels = self.pod_labels(&cfg.pod, SANDBOX_CONTAINER_NAME, 0);
        labels.insert(labels::SANDBOX.to_string(), "true".into());
        let hostname = if cfg.hostname.is_empty() { cfg.pod.name.clone() } else { cfg.hostname.clone() };
        // Host-network pods share the node's routes as they are.
        let route = self.service_route.as_ref().filter(|_| !cfg.host_network);
        let route_bind = match route {
            Some(r) => Some(bind_spec(&r.helper, ROUTE_HELPER_PATH, true).map_err(RuntimeError::Sandbox)?),
            None => None,
        };
        let body = ContainerCreateBody {
            image: Some(PAUSE_IMAGE.into()),
            entrypoint: route.map(route_command),
            // The engine refuses a hostname on host-network containers; those pods have the node's.
            hostname: (!cfg.host_network).then_some(hostname),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(if cfg.host_network { self.host_network_mode() } else { self.network_id.clone() }),
                restart_policy: Some(no_restart()),
                // Adding a route needs NET_ADMIN, in the pod's own network namespace
                // only; the pod's containers do not get it.
                cap_add: route.map(|_| vec!["NET_ADMIN".to_string()]),
                binds: route_bind.map(|b| vec![b]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
            .await
            .map_err(|e| RuntimeError::Sandbox(format!("create container {name}: {}", engine_message(e))))?;
        let id = created.id;
        let started = async {
            self.docker
                .start_container(&id, None)
                .await
                .map_err(|e| RuntimeError::Sandbox(format!("start container {name}: {}", engine_message(e))))?;
            let inspect = self.inspect(&id).await?;
            let ip = self.sandbox_ip(&inspect);
            if !cfg.host_network && ip.is_none() {
                return Err(RuntimeError::Sandbox(format!(
                    "sandbox {name} got no IP address on network {}",
                    self.network
                )));
            }
            Ok(Sandbox { id: id.clone(), ip })
        }
        .await;
        if started.is_err() {
            // Leave nothing half-made behind: the agent will ask again.
            if let Err(e) = self.force_remove(&id).await {
                tracing::warn!(container = %id, error = %e, "cannot remove a sandbox that failed to start");
            }
        }
        started
    }
}

/// Connects to `port` on the loopback of the network namespace of process `pid` (a
/// sandbox's pause program), IPv4 first, then IPv6, as containerd does for the
/// kubelet. Call it on a thread that ends afterwards: it moves the thread into that
/// namespace.
///
/// `pid` is the engine's view. An agent in another PID namespace (inside a container
/// of its own) sees another process under that number, or none; only a process that
/// is a pause program is entered, anything else is `Unsupported` (the caller then
/// uses the pod's IP). Entering needs CAP_SYS_ADMIN, which a root agent on the host has.
fn connect_in_netns(pid: i64, port: u16) -> Result<std::net::TcpStream> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    if !cmdline.starts_with(b"/pause\0") {
        return Err(RuntimeError::Unsupported("the sandbox's process is not visible from this agent"));
    }
    let ns = std::fs::File::open(proc.join("ns/net"))
        .map_err(|_| RuntimeError::Unsupported("the sandbox's network namespace is not visible from this agent"))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|_| RuntimeError::Unsupported("entering a pod's network namespace (needs CAP_SYS_ADMIN)"))?;
    let connect = |ip: std::net::IpAddr| std::net::TcpStream::connect_timeout(&(ip, port).into(), PORT_CONNECT_TIMEOUT);
    connect(std::net::Ipv4Addr::LOCALHOST.into())
        .or_else(|v4| connect(std::net::Ipv6Addr::LOCALHOST.into()).map_err(|_| v4))
        .map_err(|e| RuntimeError::Other(format!("localhost:{port} in the pod: {e}")))
}

/// How long a connection into a pod may take to be made.
const PORT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// No restarts by the engine: the agent restarts containers itself, counting attempts.
fn no_restart() -> RestartPolicy {
    RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None }
}

// === impl Runtime for DockerRuntime ===

#[tonic::async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn version(&self) -> Result<String> {
        let version =
            self.docker.version().await.map_err(|e| RuntimeError::Other(format!("query the engine's version: {e}")))?;
        Ok(format!("docker://{}", version.version.unwrap_or_default()))
    }

    /// Finds the pod's running sandbox or creates one. A sandbox that is not running any
    /// more (its namespace is gone) is removed and replaced: the returned id then differs,
    /// which tells the agent to restart the pod's containers in the new one.
    async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox> {
        if cfg.pod.uid.is_empty() {
            return Err(RuntimeError::Sandbox("the pod has no uid".into()));
        }
        write_resolv_conf(&cfg.pod_dir, &cfg.dns).await.map_err(RuntimeError::Sandbox)?;
        let existing = self
            .list_labelled(&[format!("{}=true", labels::SANDBOX), format!("{}={}", labels::POD_UID, cfg.pod.uid)])
            .await?;
        for summary in existing {
            let Some(id) = summary.id else { continue };
            let inspect = self.inspect(&id).await?;
            let running = inspect.state.as_ref().and_then(|s| s.running).unwrap_or(false);
            if running {
                return Ok(Sandbox { ip: self.sandbox_ip(&inspect), id });
            }
            tracing::info!(pod = %cfg.pod.name, sandbox = %id, "sandbox is not running; replacing it");
            self.force_remove(&id).await?;
        }
        self.create_sandbox(cfg).await
    }

    async fn remove_sandbox(&self, pod_uid: &str) -> Result<()> {
        let all = self.list_labelled(&[format!("{}={pod_uid}", labels::POD_UID)]).await?;
        // App containers first: they live in the sandbox's network namespace.
        let (sandboxes, apps): (Vec<_>, Vec<_>) = all.into_iter().partition(is_sandbox);
        for summary in apps.into_iter().chain(sandboxes) {
            if let Some(id) = summary.id {
                self.force_remove(&id).await?;
            }
        }
        Ok(())
    }

    /// Every sandbox of this node, running or not (`ip` is None for host-network sandboxes
    /// and for sandboxes that are not running), so that the agent can also collect the
    /// dead ones of pods that are gone.
    async fn list_sandboxes(&self) -> Result<Vec<(PodRef, Sandbox)>> {
        let summaries = self.list_labelled(&[format!("{}=true", labels::SANDBOX)]).await?;
        Ok(summaries
            .into_iter()
            .filter_map(|s| {
                let pod = pod_ref(s.labels.as_ref()?);
                let ip = s
                    .network_settings
                    .as_ref()
                    .and_then(|n| n.networks.as_ref())
                    .and_then(|networks| endpoint_ip(networks, &self.network_id, &self.network));
                Some((pod, Sandbox { id: s.id?, ip }))
            })
            .collect())
    }

    async fn start(&self, sandbox: &Sandbox, cfg: &SandboxConfig, c: &ContainerConfig) -> Result<String> {
        if sandbox.id.is_empty() {
            return Err(RuntimeError::Start("the pod has no sandbox".into()));
        }
        self.ensure_image(&c.image, &c.pull_policy).await?;
        let body = self.container_body(sandbox, cfg, c).await?;
        let name = container_name(&c.name, &cfg.pod, c.attempt);
        let id = self.create_named(&name, &cfg.pod, body).await?;
        if let Err(e) = self.docker.start_container(&id, None).await {
            // E.g. "exec: \"nope\": executable file not found in $PATH". The container
            // never ran; removing it keeps the name free for the next attempt.
            if let Err(e) = self.force_remove(&id).await {
                tracing::warn!(container = %id, error = %e, "cannot remove a container that failed to start");
            }
            return Err(RuntimeError::Start(engine_message(e)));
        }
        Ok(id)
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        // The engine sends SIGTERM (the image's stop signal), waits `t` whole seconds,
        // then SIGKILLs; the call returns when the container is down, so the client must
        // wait longer than the grace period.
        let t = grace.as_secs().saturating_add(u64::from(grace.subsec_nanos() > 0));
        let docker = self.docker.clone().with_timeout(Duration::from_secs(t.saturating_add(CALL_TIMEOUT_SECS)));
        let options = StopContainerOptionsBuilder::new().t(i32::try_from(t).unwrap_or(i32::MAX)).build();
        // 304 (already stopped) counts as success in bollard.
        docker.stop_container(id, Some(options)).await.map_err(|e| container_error(e, id, "stop container"))
    }

    async fn remove(&self, id: &str) -> Result<()> {
        self.force_remove(id).await
    }

    async fn state(&self, id: &str) -> Result<State> {
        Ok(state_of(&self.inspect(id).await?))
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>> {
        let summaries = self.list_labelled(&[labels::POD_UID.to_string()]).await?;
        let apps: Vec<ContainerSummary> = summaries.into_iter().filter(|s| !is_sandbox(s)).collect();
        // The summary has no exit code nor times, so each container is inspected; a few
        // at a time to bound the load on the engine.
        let infos = futures::stream::iter(apps)
            .map(|summary| async move {
                let id = summary.id?;
                let labels = summary.labels.unwrap_or_default();
                let state = match self.inspect(&id).await {
                    Ok(inspect) => state_of(&inspect),
                    // Removed between the list and the inspect.
                    Err(RuntimeError::NotFound(_)) => return None,
                    Err(e) => {
                        tracing::warn!(container = %id, error = %e, "cannot inspect container");
                        State::Unknown
                    }
                };
                Some(ContainerInfo {
                    id,
                    pod: pod_ref(&labels),
                    container: labels.get(labels::CONTAINER).cloned().unwrap_or_default(),
                    attempt: labels.get(labels::ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0),
                    image: summary.image.unwrap_or_default(),
                    state,
                })
            })
            .buffer_unordered(8)
            .filter_map(futures::future::ready)
            .collect()
            .await;
        Ok(infos)
    }

    async fn logs(&self, id: &str, opts: &LogOptions) -> Result<BoxStream<'static, Bytes>> {
        // The log stream reports a missing container only as its first item; ask first
        // so that the caller gets NotFound rather than an empty log.
        self.inspect(id).await?;
        let since = opts
            .since
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
            .unwrap_or(0);
        let options = LogsOptionsBuilder::new()
            .follow(opts.follow)
            .stdout(true)
            .stderr(true)
            .since(since)
            .timestamps(opts.timestamps)
            .tail(&opts.tail_lines.map_or_else(|| "all".to_string(), |n| n.to_string()))
            .build();
        let id = id.to_string();
        let stream = self.docker.logs(&id, Some(options)).scan((), move |(), item| {
            futures::future::ready(match item {
                // bollard has split Docker's 8-byte frame headers off; what is left is the
                // bytes the container wrote, stdout and stderr interleaved as written.
                Ok(output) => Some(output.into_bytes()),
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "log stream ended with an error");
                    None
                }
            })
        });
        Ok(stream.boxed())
    }

    async fn exec(&self, id: &str, cmd: Vec<String>, tty: bool, stdin: bool) -> Result<ExecSession> {
        if cmd.is_empty() {
            return Err(RuntimeError::Other("exec needs a command".into()));
        }
        let config = ExecConfig {
            attach_stdin: Some(stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(tty),
            cmd: Some(cmd),
            ..Default::default()
        };
        let exec_id =
            self.docker.create_exec(id, config).await.map_err(|e| container_error(e, id, "create exec in"))?.id;
        let started = self
            .docker
            .start_exec(&exec_id, Some(StartExecOptions { detach: false, tty, output_capacity: None }))
            .await
            .map_err(|e| RuntimeError::Other(format!("start exec in {id}: {}", engine_message(e))))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(RuntimeError::Other(format!("exec in {id} did not attach")));
        };
        let (ended_tx, ended_rx) = oneshot::channel();
        let output = NotifyOnEnd { inner: channels(output), ended: Some(ended_tx) }.boxed();
        let docker = self.docker.clone();
        let exit = async move { exec_exit_code(&docker, &exec_id, ended_rx).await }.boxed();
        Ok(ExecSession { stdin: stdin.then(|| Box::new(input) as Box<_>), output, exit })
    }

    async fn attach(&self, id: &str, stdin: bool) -> Result<ExecSession> {
        match self.state(id).await? {
            State::Running { .. } => {}
            _ => return Err(RuntimeError::Other(format!("container {id} is not running"))),
        }
        let options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdin(stdin)
            .stdout(true)
            .stderr(true)
            .logs(false)
            .build();
        let attached =
            self.docker.attach_container(id, Some(options)).await.map_err(|e| container_error(e, id, "attach to"))?;
        let (ended_tx, ended_rx) = oneshot::channel();
        let output = NotifyOnEnd { inner: channels(attached.output), ended: Some(ended_tx) }.boxed();
        let exit = async move {
            let _ = ended_rx.await;
            Ok(0)
        }
        .boxed();
        Ok(ExecSession { stdin: stdin.then(|| Box::new(attached.input) as Box<_>), output, exit })
    }

    async fn stats(&self, id: &str) -> Result<Stats> {
        let options = StatsOptionsBuilder::new().stream(false).one_shot(true).build();
        let stats = self
            .docker
            .stats(id, Some(options))
            .next()
            .await
            .ok_or_else(|| RuntimeError::Other(format!("the engine sent no stats for {id}")))?
            .map_err(|e| container_error(e, id, "stats of"))?;
        let cpu_nanos = stats.cpu_stats.and_then(|c| c.cpu_usage).and_then(|u| u.total_usage).unwrap_or(0);
        let memory_bytes = stats.memory_stats.map_or(0, |m| working_set(m.usage.unwrap_or(0), m.stats.as_ref()));
        Ok(Stats { cpu_nanos, memory_bytes })
    }
    async fn connect_in_pod(&self, sandbox: &Sandbox, port: u16) -> Result<tokio::net::TcpStream> {
        if sandbox.ip.is_none() {
            return Err(RuntimeError::Unsupported("a host-network pod is reached on the node's loopback"));
        }
        let inspect = self.inspect(&sandbox.id).await?;
        let pid = inspect
            .state
            .and_then(|s| s.pid)
            .filter(|p| *p > 0)
            .ok_or_else(|| RuntimeError::NotFound(format!("sandbox {} is not running", sandbox.id)))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        // setns moves the calling thread for good, so a thread of its own, which ends
        // once the socket exists: a socket stays in the namespace it was made in.
        std::thread::Builder::new()
            .name("pod-netns-connect".into())
            .spawn(move || {
                let _ = tx.send(connect_in_netns(pid, port));
            })
            .map_err(|e| RuntimeError::Other(format!("cannot start a thread: {e}")))?;
        let stream = rx.await.map_err(|_| RuntimeError::Other("the connecting thread ended early".into()))??;
        stream.set_nonblocking(true).map_err(|e| RuntimeError::Other(format!("socket: {e}")))?;
        tokio::net::TcpStream::from_std(stream).map_err(|e| RuntimeError::Other(format!("socket: {e}")))
    }
}

impl DockerRuntime {
    /// The create request of an app container.
    async fn container_body(
        &self,
        sandbox: &Sandbox,
        cfg: &SandboxConfig,
        c: &ContainerConfig,
    ) -> Result<ContainerCreateBody> {
        let mut binds = Vec::with_capacity(c.mounts.len() + 1);
        for m in &c.mounts {
            binds.push(bind_spec(&m.host_path, &m.container_path, m.read_only).map_err(RuntimeError::Start)?);
        }
        if dns_configured(&cfg.dns) {
            // Written by run_sandbox; written again in case the pod directory was cleaned
            // since (an adopted sandbox after the node rebooted).
            let path = cfg.pod_dir.join(RESOLV_CONF);
            if tokio::fs::metadata(&path).await.is_err() {
                write_resolv_conf(&cfg.pod_dir, &cfg.dns).await.map_err(RuntimeError::Start)?;
            }
            binds.push(bind_spec(&path, "/etc/resolv.conf", true).map_err(RuntimeError::Start)?);
        }
        let mut labels = self.pod_labels(&cfg.pod, &c.name, c.attempt);
        labels.extend(c.annotations.iter().map(|(k, v)| (format!("{ANNOTATION_LABEL_PREFIX}{k}"), v.clone())));
        let memory = match c.memory_limit_bytes {
            Some(bytes) => Some(
                i64::try_from(bytes).map_err(|_| RuntimeError::Start(format!("memory limit {bytes} is too large")))?,
            ),
            None => None,
        };
        // 1 CPU = 1000 millicores = 1e9 nano-CPUs.
        let nano_cpus = match c.cpu_limit_millis {
            Some(millis) => Some(
                millis
                    .checked_mul(1_000_000)
                    .and_then(|n| i64::try_from(n).ok())
                    .ok_or_else(|| RuntimeError::Start(format!("cpu limit {millis}m is too large")))?,
            ),
            None => None,
        };
        Ok(ContainerCreateBody {
            image: Some(c.image.clone()),
            // Kubernetes' command replaces the entrypoint and, given alone, also drops the
            // image's CMD; the engine does the same when Entrypoint is set and Cmd is not.
            entrypoint: (!c.command.is_empty()).then(|| c.command.clone()),
            cmd: (!c.args.is_empty()).then(|| c.args.clone()),
            env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: c.working_dir.clone(),
            tty: Some(c.tty),
            open_stdin: Some(c.stdin),
            stdin_once: Some(c.stdin_once),
            labels: Some(labels),
            host_config: Some(HostConfig {
                // Joining the sandbox's namespace also shares its hostname, /etc/hosts and
                // (unless bound above) /etc/resolv.conf.
                network_mode: Some(format!("container:{}", sandbox.id)),
                binds: Some(binds),
                memory,
                nano_cpus,
                restart_policy: Some(no_restart()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// Creates container `name`. A leftover of the same name (an attempt whose container
    /// the agent never removed, e.g. across an agent restart) is removed first if it is
    /// this pod's and not running.
    async fn create_named(&self, name: &str, pod: &PodRef, body: ContainerCreateBody) -> Result<String> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        match self.docker.create_container(Some(options.clone()), body.clone()).await {
            Ok(created) => return Ok(created.id),
            Err(e) if status_of(&e) == Some(409) => {}
            Err(e) => return Err(RuntimeError::Start(format!("create container {name}: {}", engine_message(e)))),
        }
        let old = self.inspect(name).await?;
        let old_labels = old.config.as_ref().and_then(|c| c.labels.as_ref());
        let same_pod = old_labels.is_some_and(|l| {
            l.get(labels::POD_UID) == Some(&pod.uid)
                && l.get(NODE_LABEL).map(String::as_str) == Some(self.node.as_str())
        });
        let running = old.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        if !same_pod || running {
            return Err(RuntimeError::Start(format!("a container named {name} already exists")));
        }
        self.force_remove(name).await?;
        self.docker
            .create_container(Some(options), body)
            .await
            .map(|created| created.id)
            .map_err(|e| RuntimeError::Start(format!("create container {name}: {}", engine_message(e))))
    }
}

// === exec plumbing ===

/// The engine's multiplexed output as remote-command channels: 1 stdout (and a TTY's
/// output), 2 stderr.
fn channels(
    output: impl futures::Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send + 'static,
) -> BoxStream<'static, (u8, Bytes)> {
    output
        .filter_map(|item| {
            futures::future::ready(match item {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => Some((1, message)),
                Ok(LogOutput::StdErr { message }) => Some((2, message)),
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "the engine's output ended with an error");
                    None
                }
            })
        })
        .boxed()
}

/// Passes a stream through and says (once) when it ended or was dropped, so that the exit
/// future looks at the exec's state as soon as the output is done.
struct NotifyOnEnd<S> {
    inner: S,
    ended: Option<oneshot::Sender<()>>,
}

impl<S: futures::Stream + Unpin> futures::Stream for NotifyOnEnd<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let next = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(None) = next
            && let Some(ended) = self.ended.take()
        {
            let _ = ended.send(());
        }
        next
    }
}

/// Waits for an exec to finish and returns its exit code.
///
/// The engine has no "wait" for execs, so this polls `inspect_exec`: right away, whenever
/// the output stream ends (usually the moment the command exits), and otherwise at a
/// backed-off interval, which covers callers that never drain the output and commands whose
/// children keep the output open after they exit.
async fn exec_exit_code(docker: &Docker, exec_id: &str, mut output_ended: oneshot::Receiver<()>) -> Result<i32> {
    let mut interval = Duration::from_millis(50);
    let mut output_open = true;
    loop {
        let inspect = docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| RuntimeError::Other(format!("inspect exec {exec_id}: {e}")))?;
        // Before the process starts, `running` is false and there is no exit code yet.
        if inspect.running == Some(false)
            && let Some(code) = inspect.exit_code
        {
            return Ok(i32::try_from(code).unwrap_or(-1));
        }
        if output_open {
            tokio::select! {
                // Ok: ended; Err: the stream was dropped. Either way it is no signal any more.
                _ = &mut output_ended => output_open = false,
                () = tokio::time::sleep(interval) => {}
            }
        } else {
            tokio::time::sleep(interval).await;
        }
        interval = (interval * 2).min(Duration::from_secs(1));
    }
}

// === pure helpers (unit-tested) ===

/// kubelet's container name: `rk_<container>_<pod>_<namespace>_<uid8>_<attempt>`.
pub fn container_name(container: &str, pod: &PodRef, attempt: u32) -> String {
    let uid8: String = pod.uid.chars().take(8).collect();
    format!("rk_{container}_{}_{}_{uid8}_{attempt}", pod.name, pod.namespace)
}

/// Splits an image reference into repository and tag, defaulting the tag to `latest`
/// (a digest reference keeps its digest in the repository part, which the engine accepts).
pub fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    // A colon before the last slash is a registry port ("localhost:5000/app").
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => (&image[..last_slash + colon], &image[last_slash + colon + 1..]),
        None => (image, "latest"),
    }
}

/// `host:container[:ro]` for the engine's Binds list.
fn bind_spec(host_path: &Path, container_path: &str, read_only: bool) -> std::result::Result<String, String> {
    let host = host_path.to_str().ok_or_else(|| format!("mount source {} is not UTF-8", host_path.display()))?;
    // A relative source would silently become a named volume; a colon would split the spec.
    if !host_path.is_absolute()
        || host.contains(':')
        || container_path.contains(':')
        || !container_path.starts_with('/')
    {
        return Err(format!("cannot bind {host} at {container_path}: paths must be absolute and contain no ':'"));
    }
    Ok(if read_only { format!("{host}:{container_path}:ro") } else { format!("{host}:{container_path}") })
}

fn dns_configured(dns: &DnsConfig) -> bool {
    !(dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty())
}

/// The pod's resolv.conf.
pub fn render_resolv_conf(dns: &DnsConfig) -> String {
    let mut out = String::new();
    for server in &dns.servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.searches.is_empty() {
        out.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

/// Writes `pod_dir/resolv.conf` when the pod has DNS settings (without any, containers keep
/// the engine's resolv.conf).
async fn write_resolv_conf(pod_dir: &Path, dns: &DnsConfig) -> std::result::Result<(), String> {
    if !dns_configured(dns) {
        return Ok(());
    }
    if !pod_dir.is_absolute() {
        return Err(format!("the pod directory {} is not an absolute path", pod_dir.display()));
    }
    let path: PathBuf = pod_dir.join(RESOLV_CONF);
    tokio::fs::create_dir_all(pod_dir).await.map_err(|e| format!("create {}: {e}", pod_dir.display()))?;
    tokio::fs::write(&path, render_resolv_conf(dns)).await.map_err(|e| format!("write {}: {e}", path.display()))
}

fn is_sandbox(summary: &ContainerSummary) -> bool {
    summary.labels.as_ref().and_then(|l| l.get(labels::SANDBOX)).is_some_and(|v| v == "true")
}

fn pod_ref(labels: &HashMap<String, String>) -> PodRef {
    let get = |key: &str| labels.get(key).cloned().unwrap_or_default();
    PodRef { uid: get(labels::POD_UID), namespace: get(labels::POD_NAMESPACE), name: get(labels::POD_NAME) }
}

/// The IP of the endpoint on our network, found by id (names may be ambiguous), else by name.
fn endpoint_ip(
    networks: &HashMap<String, bollard::models::EndpointSettings>,
    network_id: &str,
    network: &str,
) -> Option<String> {
    networks
        .values()
        .find(|e| e.network_id.as_deref() == Some(network_id))
        .or_else(|| networks.get(network))
        .and_then(|e| e.ip_address.clone())
        .filter(|ip| !ip.is_empty())
}

/// Maps the engine's view of a container to [`State`].
fn state_of(inspect: &ContainerInspectResponse) -> State {
    let Some(state) = inspect.state.as_ref() else { return State::Unknown };
    let started_at = state.started_at.as_deref().and_then(parse_rfc3339);
    match state.status {
        Some(ContainerStateStatusEnum::CREATED) => State::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING,
        ) => {
            // The engine always sets StartedAt on a running container; the epoch only
            // stands in should it ever not.
            State::Running { started_at: started_at.unwrap_or(UNIX_EPOCH) }
        }
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
            let exit_code = state.exit_code.and_then(|c| i32::try_from(c).ok()).unwrap_or(-1);
            let reason = if state.oom_killed == Some(true) {
                "OOMKilled"
            } else if exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            let finished_at = state.finished_at.as_deref().and_then(parse_rfc3339).unwrap_or(UNIX_EPOCH);
            // The engine stamps StartedAt when its start call completes and FinishedAt
            // from the exit event, so a container that exits at once can show a finish
            // before its start; a status never says so.
            let finished_at = started_at.map_or(finished_at, |s| finished_at.max(s));
            State::Exited { exit_code, reason: reason.to_string(), started_at, finished_at }
        }
        _ => State::Unknown,
    }
}

/// Working-set memory as kubelet computes it: usage less the inactive file cache (the
/// kernel can drop that page cache without the process noticing). cgroup v1 reports it as
/// `total_inactive_file`, cgroup v2 as `inactive_file`.
pub fn working_set(usage: u64, stats: Option<&HashMap<String, u64>>) -> u64 {
    let inactive =
        stats.and_then(|s| s.get("total_inactive_file").or_else(|| s.get("inactive_file"))).copied().unwrap_or(0);
    usage.saturating_sub(inactive)
}

/// Parses the engine's RFC 3339 timestamps ("2024-05-01T12:34:56.123456789Z"). The engine's
/// "never" ("0001-01-01T00:00:00Z") and anything else before 1970 gives None.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Keep nanosecond precision; further digits are dropped.
        for (i, c) in fraction.bytes().take(digits).enumerate() {
            if i < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
        }
        nanos *= 10u32.pow(9u32.saturating_sub(u32::try_from(digits).unwrap_or(9)));
        rest = &fraction[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

// === errors ===

fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words, without bollard's wrapping.
fn engine_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

/// NotFound for a 404 on container `id`, else Other with the step that failed.
fn container_error(e: bollard::errors::Error, id: &str, step: &str) -> RuntimeError {
    if status_of(&e) == Some(404) {
        RuntimeError::NotFound(id.to_string())
    } else {
        RuntimeError::Other(format!("{step} {id}: {}", engine_message(e)))
    }
}

fn tar_error(e: std::io::Error) -> RuntimeError {
    RuntimeError::Other(format!("build an image tar in memory: {e}"))
}

// === images built in memory ===

/// A root filesystem tar under construction (owner root, fixed mtime so that the same
/// input gives the same bytes).
struct RootfsTar {
    builder: tar::Builder<Vec<u8>>,
}

impl RootfsTar {
    fn new() -> Self {
        Self { builder: tar::Builder::new(Vec::new()) }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    }

    fn dir(&mut self, path: &str, mode: u32) -> std::io::Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, mode, 0);
        self.builder.append_data(&mut header, path, std::io::empty())
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.builder.append_data(&mut header, path, data)
    }

    fn symlink(&mut self, path: &str, target: &str) -> std::io::Result<()> {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.builder.append_link(&mut header, path, target)
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        self.builder.into_inner()
    }
}

/// The busybox applets that get a /bin symlink in [`busybox_rootfs`].
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh",
    "ash",
    "sleep",
    "httpd",
    "echo",
    "cat",
    "wget",
    "ls",
    "env",
    "hostname",
    "id",
    "ps",
    "kill",
    "mkdir",
    "rm",
    "touch",
    "true",
    "false",
    "test",
    "[",
    "printf",
    "grep",
    "nc",
    "head",
    "tail",
    "date",
    "uname",
    "nslookup",
    "sed",
    "awk",
    "tr",
    "wc",
    "cut",
    "sort",
    "yes",
    "timeout",
    "seq",
    "which",
    "whoami",
    "chmod",
    "cp",
    "mv",
    "ln",
    "find",
    "xargs",
    "expr",
    "basename",
    "dirname",
    "pwd",
    "readlink",
    "stat",
    "tee",
    "ip",
    "ifconfig",
    "netstat",
    "mount",
    "df",
    "du",
    "dd",
    "md5sum",
    "sha256sum",
    "vi",
    "less",
    "ping",
    "top",
    "free",
    "uptime",
    "nproc",
];

/// A root filesystem with `busybox` at /bin/busybox, a symlink per [`BUSYBOX_APPLETS`]
/// entry, a minimal /etc/passwd and /etc/group, and /tmp.
pub fn busybox_rootfs(busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut rootfs = RootfsTar::new();
    for dir in ["bin", "etc", "root", "usr", "usr/bin", "var", "www"] {
        rootfs.dir(dir, 0o755)?;
    }
    rootfs.dir("tmp", 0o1777)?;
    rootfs.file("bin/busybox", 0o755, busybox)?;
    for applet in BUSYBOX_APPLETS {
        rootfs.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    rootfs.symlink("usr/bin/env", "../../bin/busybox")?;
    rootfs.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")?;
    rootfs.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    rootfs.finish()
}

// === the pause program ===

/// Where the kernel maps the pause program: the customary base of non-PIE x86_64
/// executables (page-aligned, above the zero page).
const PAUSE_BASE: u64 = 0x40_0000;
const ELF_HEADER_LEN: usize = 64;
const PROGRAM_HEADER_LEN: usize = 56;
/// File offset (and, since the whole file is mapped at [`PAUSE_BASE`], address offset)
/// of the first instruction.
const PAUSE_CODE_OFFSET: usize = ELF_HEADER_LEN + PROGRAM_HEADER_LEN;

/// The pause program: a static x86_64 Linux ELF executable of 209 bytes that sleeps in
/// `pause(2)` forever and exits 0 on SIGTERM or SIGINT, like Kubernetes' pause.
///
/// Layout: a 64-byte ELF header, one 56-byte `PT_LOAD` program header mapping the whole
/// file read+execute at 0x400000, then the code and its data:
///
/// ```text
/// off  bytes                  instruction
///  0   b8 0d 00 00 00         mov  eax, 13            ; rt_sigaction(
///  5   bf 0f 00 00 00         mov  edi, 15            ;   SIGTERM,
/// 10   48 8d 35 <rel32>       lea  rsi, [rip+act]     ;   &act,
/// 17   31 d2                  xor  edx, edx           ;   NULL,
/// 19   41 ba 08 00 00 00      mov  r10d, 8            ;   sizeof(sigset_t))
/// 25   0f 05                  syscall
/// 27   b8 0d 00 00 00         mov  eax, 13            ; rt_sigaction(SIGINT, ...): the
/// 32   bf 02 00 00 00         mov  edi, 2             ;   syscall keeps rsi, rdx, r10
/// 37   0f 05                  syscall                 ;   (it clobbers only rax, rcx, r11)
/// 39   b8 22 00 00 00   loop: mov  eax, 34            ; pause()
/// 44   0f 05                  syscall
/// 46   eb f7                  jmp  loop               ; -9: back to offset 39
/// 48   b8 e7 00 00 00   on_signal: mov eax, 231       ; exit_group(
/// 53   31 ff                  xor  edi, edi           ;   0)
/// 55   0f 05                  syscall
/// 57   act: struct sigaction { handler = on_signal, flags = SA_RESTORER,
///                               restorer = on_signal, mask = 0 }   (4 x u64)
/// ```
///
/// Why the handler: in a container the program is PID 1, and the kernel drops signals
/// that PID 1 has no handler for, so without one `docker stop` would always wait out the
/// grace period and SIGKILL. x86_64 requires `SA_RESTORER` with a restorer address;
/// the handler never returns, so the restorer is never used.
pub fn pause_elf() -> Vec<u8> {
    const SA_RESTORER: u64 = 0x0400_0000;
    const ON_SIGNAL: usize = 48;
    const ACT: usize = 57;
    const LEA_END: usize = 17;
    let on_signal_addr = PAUSE_BASE + (PAUSE_CODE_OFFSET + ON_SIGNAL) as u64;
    let act_rel = ((ACT - LEA_END) as u32).to_le_bytes();

    let mut code: Vec<u8> = Vec::with_capacity(ACT + 32);
    code.extend_from_slice(&[0xb8, 0x0d, 0, 0, 0]); // mov eax, 13 (rt_sigaction)
    code.extend_from_slice(&[0xbf, 0x0f, 0, 0, 0]); // mov edi, 15 (SIGTERM)
    code.extend_from_slice(&[0x48, 0x8d, 0x35]); // lea rsi, [rip + rel32]
    code.extend_from_slice(&act_rel);
    code.extend_from_slice(&[0x31, 0xd2]); // xor edx, edx
    code.extend_from_slice(&[0x41, 0xba, 0x08, 0, 0, 0]); // mov r10d, 8
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.extend_from_slice(&[0xb8, 0x0d, 0, 0, 0]); // mov eax, 13 (rt_sigaction)
    code.extend_from_slice(&[0xbf, 0x02, 0, 0, 0]); // mov edi, 2 (SIGINT)
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.extend_from_slice(&[0xb8, 0x22, 0, 0, 0]); // loop: mov eax, 34 (pause)
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.extend_from_slice(&[0xeb, 0xf7]); // jmp loop (rel8 -9)
    debug_assert_eq!(code.len(), ON_SIGNAL);
    code.extend_from_slice(&[0xb8, 0xe7, 0, 0, 0]); // on_signal: mov eax, 231 (exit_group)
    code.extend_from_slice(&[0x31, 0xff]); // xor edi, edi
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    debug_assert_eq!(code.len(), ACT);
    code.extend_from_slice(&on_signal_addr.to_le_bytes()); // act.sa_handler
    code.extend_from_slice(&SA_RESTORER.to_le_bytes()); // act.sa_flags
    code.extend_from_slice(&on_signal_addr.to_le_bytes()); // act.sa_restorer
    code.extend_from_slice(&0u64.to_le_bytes()); // act.sa_mask

    let file_len = (PAUSE_CODE_OFFSET + code.len()) as u64;
    let mut elf = Vec::with_capacity(PAUSE_CODE_OFFSET + code.len());
    // ELF header.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F']); // magic
    elf.push(2); // EI_CLASS: 64-bit
    elf.push(1); // EI_DATA: little-endian
    elf.push(1); // EI_VERSION: current
    elf.push(0); // EI_OSABI: System V
    elf.extend_from_slice(&[0; 8]); // EI_ABIVERSION + padding
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(PAUSE_BASE + PAUSE_CODE_OFFSET as u64).to_le_bytes()); // e_entry
    elf.extend_from_slice(&(ELF_HEADER_LEN as u64).to_le_bytes()); // e_phoff: right after this header
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&(ELF_HEADER_LEN as u16).to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&(PROGRAM_HEADER_LEN as u16).to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shentsize
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    // Program header: one PT_LOAD of the whole file.
    elf.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // p_flags: PF_R | PF_X
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&PAUSE_BASE.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&PAUSE_BASE.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&file_len.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&file_len.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align: a page
    debug_assert_eq!(elf.len(), PAUSE_CODE_OFFSET);
    elf.extend_from_slice(&code);
    elf
}

#[cfg(test)]
mod tests;
