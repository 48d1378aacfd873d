//! Tests of the Docker runtime.
//!
//! The `unit_` tests need nothing. The `engine_` tests drive the real Docker engine
//! (socket /var/run/docker.sock or `DOCKER_HOST`) and fail if there is none. Each creates
//! its own network and node name and removes every container, network, image and
//! directory it made when it ends, also when it fails (the [`Cleanup`] guard).
//! They share two images that they leave in place: `rk-pause:3` (made by the runtime) and
//! `rk-test-busybox:1`, built from Debian's busybox-static, taken from `$RK_BUSYBOX` if
//! set, else fetched once with `apt-get download` into a cache folder under the temp dir.

use super::*;
use crate::runtime::Mount;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// === unit tests ===

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn unit_pause_elf_is_one_loadable_segment_that_loops_on_pause() {
    let elf = pause_elf();
    assert_eq!(elf.len(), 209);
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit");
    assert_eq!(u16::from_le_bytes([elf[16], elf[17]]), 2, "ET_EXEC");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 0x3e, "x86_64");
    let entry = u64_at(&elf, 24);
    assert_eq!(u64_at(&elf, 32), 64, "program header right after the ELF header");
    assert_eq!(u16::from_le_bytes([elf[56], elf[57]]), 1, "one program header");
    // The PT_LOAD maps the whole file at the base, so address = base + file offset.
    let ph = 64;
    assert_eq!(u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap()), 1, "PT_LOAD");
    assert_eq!(u32::from_le_bytes(elf[ph + 4..ph + 8].try_into().unwrap()), 5, "R+X");
    let vaddr = u64_at(&elf, ph + 16);
    assert_eq!(u64_at(&elf, ph + 32), elf.len() as u64, "filesz");
    let offset_of = |addr: u64| usize::try_from(addr - vaddr).unwrap();
    let code = offset_of(entry);
    assert_eq!(code, 120);
    assert_eq!(&elf[code..code + 5], &[0xb8, 13, 0, 0, 0], "first call: rt_sigaction");

    // The jump at the end of the loop lands on `mov eax, 34` (pause), followed by syscall.
    let jmp = code + 46;
    assert_eq!(elf[jmp], 0xeb);
    let target = (jmp + 2).checked_add_signed(isize::from(elf[jmp + 1] as i8)).unwrap();
    assert_eq!(&elf[target..target + 7], &[0xb8, 34, 0, 0, 0, 0x0f, 0x05]);

    // `lea rsi, [rip+rel]` points at the sigaction, whose handler calls exit_group(0).
    assert_eq!(&elf[code + 10..code + 13], &[0x48, 0x8d, 0x35]);
    let rel = i32::from_le_bytes(elf[code + 13..code + 17].try_into().unwrap());
    let act = (code + 17).checked_add_signed(rel as isize).unwrap();
    assert_eq!(act + 32, elf.len(), "the sigaction is the last 32 bytes");
    let handler = offset_of(u64_at(&elf, act));
    assert_eq!(&elf[handler..handler + 9], &[0xb8, 231, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
    assert_eq!(u64_at(&elf, act + 8), 0x0400_0000, "SA_RESTORER");
}

#[test]
fn unit_rfc3339_timestamps_of_the_engine() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
    assert_eq!(
        parse_rfc3339("2024-05-01T12:34:56.123456789Z"),
        Some(UNIX_EPOCH + Duration::new(1_714_566_896, 123_456_789))
    );
    assert_eq!(parse_rfc3339("2024-05-01T12:34:56.5Z"), Some(UNIX_EPOCH + Duration::new(1_714_566_896, 500_000_000)));
    assert_eq!(parse_rfc3339("2024-05-01T14:34:56+02:00"), Some(UNIX_EPOCH + Duration::from_secs(1_714_566_896)));
    // The engine's "never" and garbage.
    assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
    for bad in [
        "",
        "2024-05-01",
        "2024-13-01T00:00:00Z",
        "2024-05-01T12:34:56",
        "2024-05-01T12:34:56.Z",
        "x024-05-01T12:34:56Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}

#[test]
fn unit_image_references_get_a_tag() {
    assert_eq!(split_reference("busybox"), ("busybox", "latest"));
    assert_eq!(split_reference("rk-pause:3"), ("rk-pause", "3"));
    assert_eq!(split_reference("localhost:5000/app"), ("localhost:5000/app", "latest"));
    assert_eq!(split_reference("localhost:5000/team/app:v1"), ("localhost:5000/team/app", "v1"));
    assert_eq!(split_reference("app@sha256:abc"), ("app@sha256:abc", ""));
}

#[test]
fn unit_names_binds_and_resolv_conf() {
    let pod =
        PodRef { uid: "1a2b3c4d-5e6f-7080-9000-aabbccddeeff".into(), namespace: "default".into(), name: "web".into() };
    assert_eq!(container_name("app", &pod, 2), "rk_app_web_default_1a2b3c4d_2");

    assert_eq!(bind_spec(Path::new("/srv/data"), "/data", true).unwrap(), "/srv/data:/data:ro");
    assert_eq!(bind_spec(Path::new("/srv/data"), "/data", false).unwrap(), "/srv/data:/data");
    assert!(bind_spec(Path::new("data"), "/data", false).is_err(), "a relative source would be a named volume");
    assert!(bind_spec(Path::new("/a:b"), "/data", false).is_err());
    assert!(bind_spec(Path::new("/srv"), "data", false).is_err());

    let dns = DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["default.svc.cluster.local".into(), "svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    };
    assert_eq!(
        render_resolv_conf(&dns),
        "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
    );
    assert!(!dns_configured(&DnsConfig::default()));
}

#[test]
fn unit_working_set_subtracts_inactive_file_cache() {
    let v1 = HashMap::from([("total_inactive_file".to_string(), 300), ("cache".to_string(), 500)]);
    assert_eq!(working_set(1000, Some(&v1)), 700);
    let v2 = HashMap::from([("inactive_file".to_string(), 100)]);
    assert_eq!(working_set(1000, Some(&v2)), 900);
    assert_eq!(working_set(50, Some(&v2)), 0, "never below zero");
    assert_eq!(working_set(1000, None), 1000);
}

#[test]
fn unit_engine_states_map_to_runtime_states() {
    use bollard::models::ContainerState;
    let inspect = |state: ContainerState| ContainerInspectResponse { state: Some(state), ..Default::default() };
    let exited = |code: i64, oom: bool| {
        state_of(&inspect(ContainerState {
            status: Some(ContainerStateStatusEnum::EXITED),
            exit_code: Some(code),
            oom_killed: Some(oom),
            started_at: Some("2024-05-01T12:34:56Z".into()),
            finished_at: Some("2024-05-01T12:35:00Z".into()),
            ..Default::default()
        }))
    };
    assert_eq!(
        exited(3, false),
        State::Exited {
            exit_code: 3,
            reason: "Error".into(),
            started_at: Some(UNIX_EPOCH + Duration::from_secs(1_714_566_896)),
            finished_at: UNIX_EPOCH + Duration::from_secs(1_714_566_900),
        }
    );
    assert!(matches!(exited(0, false), State::Exited { reason, .. } if reason == "Completed"));
    assert!(matches!(exited(137, true), State::Exited { reason, .. } if reason == "OOMKilled"));
    // A container that exits at once can carry a FinishedAt a little before its StartedAt.
    let instant = state_of(&inspect(ContainerState {
        status: Some(ContainerStateStatusEnum::EXITED),
        exit_code: Some(3),
        started_at: Some("2024-05-01T12:34:56.200Z".into()),
        finished_at: Some("2024-05-01T12:34:56.100Z".into()),
        ..Default::default()
    }));
    let State::Exited { started_at: Some(started), finished_at, .. } = instant else { panic!("{instant:?}") };
    assert_eq!(finished_at, started);
    let created = inspect(ContainerState {
        status: Some(ContainerStateStatusEnum::CREATED),
        started_at: Some("0001-01-01T00:00:00Z".into()),
        ..Default::default()
    });
    assert_eq!(state_of(&created), State::Created);
    let running = inspect(ContainerState {
        status: Some(ContainerStateStatusEnum::RUNNING),
        started_at: Some("2024-05-01T12:34:56Z".into()),
        ..Default::default()
    });
    assert_eq!(state_of(&running), State::Running { started_at: UNIX_EPOCH + Duration::from_secs(1_714_566_896) });
    assert_eq!(state_of(&ContainerInspectResponse::default()), State::Unknown);
}

#[test]
fn unit_busybox_rootfs_has_the_binary_and_applet_links() {
    let tar_bytes = busybox_rootfs(b"not really busybox").unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut seen = HashMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap();
        let link = entry.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        seen.insert(path, (kind, mode, link, data));
    }
    let busybox = &seen["bin/busybox"];
    assert_eq!((busybox.0, busybox.1, &busybox.3[..]), (tar::EntryType::Regular, 0o755, &b"not really busybox"[..]));
    for applet in ["sh", "sleep", "httpd", "echo", "cat", "wget"] {
        let link = &seen[&format!("bin/{applet}")];
        assert_eq!((link.0, link.2.as_deref()), (tar::EntryType::Symlink, Some("busybox")), "{applet}");
    }
    assert_eq!(seen["tmp"].1, 0o1777);
    assert!(String::from_utf8_lossy(&seen["etc/passwd"].3).starts_with("root:x:0:0:"));
}

// === engine test support ===

const BUSYBOX_IMAGE: &str = "rk-test-busybox:1";
const DEADLINE: Duration = Duration::from_secs(30);

/// Removes what an engine test made, when the test ends however it ends. Drop runs the
/// removal on a thread with its own runtime, because the test's runtime may be the one
/// unwinding.
struct Cleanup {
    node: String,
    networks: Vec<String>,
    images: Vec<String>,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let node = self.node.clone();
        let networks = self.networks.clone();
        let images = self.images.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("cleanup runtime");
            rt.block_on(async move {
                let docker =
                    Docker::connect_with_defaults().expect("docker").negotiate_version().await.expect("docker");
                let filters = HashMap::from([("label".to_string(), vec![format!("{NODE_LABEL}={node}")])]);
                let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
                for c in docker.list_containers(Some(options)).await.unwrap_or_default() {
                    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
                    if let Some(id) = c.id
                        && let Err(e) = docker.remove_container(&id, Some(options)).await
                    {
                        eprintln!("cleanup: remove container {id}: {e}");
                    }
                }
                for image in images {
                    let _ =
                        docker.remove_image(&image, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
                }
                for network in networks {
                    // Every network of that name: a failed dedupe must not leak one.
                    let filters = HashMap::from([("name".to_string(), vec![network.clone()])]);
                    let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
                    for n in docker.list_networks(Some(options)).await.unwrap_or_default() {
                        if n.name.as_deref() == Some(network.as_str())
                            && let Some(id) = n.id
                            && let Err(e) = docker.remove_network(&id).await
                        {
                            eprintln!("cleanup: remove network {network}: {e}");
                        }
                    }
                }
            });
        });
        let _ = done.join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One engine test's world: a runtime on a network and node of its own.
struct TestEnv {
    rt: DockerRuntime,
    /// Test name, prefixed to pod names (container names are global to the engine).
    test: String,
    dir: PathBuf,
    cleanup: Cleanup,
}

static NEXT_UID: AtomicU64 = AtomicU64::new(0);

impl TestEnv {
    async fn new(test: &str) -> Self {
        let pid = std::process::id();
        let node = format!("t-{test}-{pid}");
        let network = format!("rk-t-{test}-{pid}");
        let dir = std::env::temp_dir().join(format!("rk-docker-test-{node}"));
        // The guard exists before anything is made.
        let cleanup = Cleanup { node: node.clone(), networks: vec![network.clone()], images: vec![], dir: dir.clone() };
        let rt = DockerRuntime::connect(&network, &node).await.expect("connect to the Docker engine");
        ensure_busybox_image(&rt).await;
        Self { rt, test: test.to_string(), dir, cleanup }
    }

    /// A pod of this test, with a fresh uid.
    fn pod(&self, name: &str) -> SandboxConfig {
        let n = NEXT_UID.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("{}-{name}", self.test.replace('_', "-"));
        SandboxConfig {
            pod: PodRef {
                uid: format!("{:08x}-{n:04x}-{}", nanos ^ std::process::id(), std::process::id()),
                namespace: "default".into(),
                name: name.clone(),
            },
            hostname: name.clone(),
            host_network: false,
            dns: DnsConfig::default(),
            pod_dir: self.dir.join(&name),
        }
    }
}

fn busybox(name: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        name: name.into(),
        image: BUSYBOX_IMAGE.into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        pull_policy: "IfNotPresent".into(),
        ..Default::default()
    }
}

/// A static busybox binary: `$RK_BUSYBOX`, else Debian's busybox-static, downloaded and
/// unpacked once into a cache folder.
fn busybox_path() -> PathBuf {
    if let Some(path) = std::env::var_os("RK_BUSYBOX") {
        return PathBuf::from(path);
    }
    let cache = std::env::temp_dir().join("rk-busybox-static");
    let binary = cache.join("bin/busybox");
    if binary.exists() {
        return binary;
    }
    let work = std::env::temp_dir().join(format!("rk-busybox-download-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let download = || {
        std::process::Command::new("apt-get")
            .args(["download", "busybox-static"])
            .current_dir(&work)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download() {
        // A machine whose package lists were never fetched.
        let _ = std::process::Command::new("apt-get").arg("update").status();
        assert!(download(), "cannot fetch busybox-static: set RK_BUSYBOX to a static busybox binary");
    }
    let deb = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("apt-get download left no .deb");
    let unpacked = work.join("root");
    let status = std::process::Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked).status().unwrap();
    assert!(status.success(), "dpkg-deb -x {}", deb.display());
    // Another test process may have won the race; either copy is fine.
    let _ = std::fs::rename(&unpacked, &cache);
    let _ = std::fs::remove_dir_all(&work);
    assert!(binary.exists(), "no bin/busybox in busybox-static");
    binary
}

static BUSYBOX_READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

async fn ensure_busybox_image(rt: &DockerRuntime) {
    BUSYBOX_READY
        .get_or_init(|| async {
            if rt.docker().inspect_image(BUSYBOX_IMAGE).await.is_ok() {
                return;
            }
            let path = tokio::task::spawn_blocking(busybox_path).await.unwrap();
            rt.build_busybox_image(BUSYBOX_IMAGE, &path).await.expect("build the busybox image");
        })
        .await;
}

/// Polls `check` until it gives a value or `DEADLINE` passes.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exited(rt: &DockerRuntime, id: &str) -> State {
    eventually("the container to exit", || async {
        let state = rt.state(id).await.unwrap();
        matches!(state, State::Exited { .. }).then_some(state)
    })
    .await
}

async fn running(rt: &DockerRuntime, id: &str) {
    eventually("the container to run", || async {
        matches!(rt.state(id).await.unwrap(), State::Running { .. }).then_some(())
    })
    .await
}

async fn all_logs(rt: &DockerRuntime, id: &str, opts: &LogOptions) -> String {
    let chunks: Vec<Bytes> = rt.logs(id, opts).await.unwrap().collect().await;
    String::from_utf8(chunks.concat()).unwrap()
}

/// Waits until the container's log contains `text`.
async fn logged(rt: &DockerRuntime, id: &str, text: &str) {
    eventually(&format!("{text:?} in the log"), || async {
        all_logs(rt, id, &LogOptions::default()).await.contains(text).then_some(())
    })
    .await
}

/// Runs `cmd` in `id`; returns (exit code, stdout, stderr).
async fn exec(rt: &DockerRuntime, id: &str, cmd: &[&str]) -> (i32, String, String) {
    let session = rt.exec(id, cmd.iter().map(|s| s.to_string()).collect(), false, false).await.unwrap();
    let output: Vec<(u8, Bytes)> = session.output.collect().await;
    let text = |fd: u8| {
        String::from_utf8(output.iter().filter(|(f, _)| *f == fd).flat_map(|(_, b)| b.to_vec()).collect()).unwrap()
    };
    let code = tokio::time::timeout(DEADLINE, session.exit).await.expect("exec exit").unwrap();
    (code, text(1), text(2))
}

/// One HTTP/1.0 GET from the test process; None until something answers.
async fn http_get(addr: &str) -> Option<String> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await.ok()?.ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut body)).await.ok()?.ok()?;
    Some(body)
}

// === engine tests ===

#[tokio::test]
async fn engine_sandbox_gets_an_ip_on_the_network_and_is_found_again_by_uid() {
    let env = TestEnv::new("sandbox").await;
    let cfg = env.pod("web");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let ip = sandbox.ip.clone().expect("a pod IP");

    // The IP is the sandbox's endpoint on our network, handed out by its IPAM.
    let network = env.rt.docker().inspect_network(env.rt.network(), None).await.unwrap();
    let endpoint = &network.containers.unwrap()[&sandbox.id];
    assert_eq!(endpoint.ipv4_address.as_deref().and_then(|a| a.split('/').next()), Some(ip.as_str()));
    let inspect = env.rt.docker().inspect_container(&sandbox.id, None).await.unwrap();
    let config = inspect.config.unwrap();
    assert_eq!(config.hostname.as_deref(), Some(cfg.hostname.as_str()));
    assert_eq!(config.image.as_deref(), Some(PAUSE_IMAGE));
    let labels = config.labels.unwrap();
    assert_eq!(labels[labels::SANDBOX], "true");
    assert_eq!(labels[labels::POD_UID], cfg.pod.uid);
    assert_eq!(labels[NODE_LABEL], env.cleanup.node);

    // Asked again, the runtime finds the same sandbox by the pod's uid.
    assert_eq!(env.rt.run_sandbox(&cfg).await.unwrap(), sandbox);

    // A sandbox that died is replaced by a new one. The pause program exits at once on
    // SIGTERM, so a generous grace must not be waited out.
    let stopping = Instant::now();
    env.rt.stop(&sandbox.id, Duration::from_secs(30)).await.unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(10), "pause ignored SIGTERM: {:?}", stopping.elapsed());
    assert!(matches!(env.rt.state(&sandbox.id).await.unwrap(), State::Exited { exit_code: 0, .. }));
    let replaced = env.rt.run_sandbox(&cfg).await.unwrap();
    assert_ne!(replaced.id, sandbox.id);
    assert!(replaced.ip.is_some());
    assert!(matches!(env.rt.state(&sandbox.id).await, Err(RuntimeError::NotFound(_))));

    env.rt.remove_sandbox(&cfg.pod.uid).await.unwrap();
    assert!(matches!(env.rt.state(&replaced.id).await, Err(RuntimeError::NotFound(_))));
    assert!(env.rt.list_sandboxes().await.unwrap().is_empty());
    // Removing what is gone is fine.
    env.rt.remove_sandbox(&cfg.pod.uid).await.unwrap();
}

#[tokio::test]
async fn engine_service_route_leads_the_service_range_to_the_node() {
    let mut env = TestEnv::new("route").await;
    // Any address on the pods' network will do as the "node": the network's gateway.
    let network = env.rt.docker().inspect_network(env.rt.network(), None).await.unwrap();
    let gateway = network
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().find_map(|c| c.gateway))
        .expect("the network's gateway");
    let helper = tokio::task::spawn_blocking(busybox_path).await.unwrap();
    let route = ServiceRoute { cidr: "10.96.0.0/16".into(), via: gateway.clone(), helper };
    env.rt = env.rt.with_service_route(Some(route));
    let cfg = env.pod("routed");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    assert!(sandbox.ip.is_some());
    let id = env.rt.start(&sandbox, &cfg, &busybox("app", &["sleep", "600"])).await.unwrap();
    running(&env.rt, &id).await;
    let (code, routes, stderr) = exec(&env.rt, &id, &["ip", "route"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(routes.contains(&format!("10.96.0.0/16 via {gateway}")), "{routes}");
    // The sandbox kept NET_ADMIN to itself: the pod's containers cannot change routes.
    let (code, _, _) = exec(&env.rt, &id, &["ip", "route", "add", "10.97.0.0/16", "via", &gateway]).await;
    assert_ne!(code, 0, "an app container changed the pod's routes");
    // The sandbox's process is the pause program, which the shell became.
    let top = env.rt.docker().top_processes(&sandbox.id, None::<bollard::query_parameters::TopOptions>).await.unwrap();
    let commands: Vec<String> =
        top.processes.unwrap_or_default().into_iter().filter_map(|p| p.last().cloned()).collect();
    assert_eq!(commands, vec!["/pause".to_string()]);
}

#[tokio::test]
async fn engine_connect_in_pod_reaches_the_pods_loopback() {
    let env = TestEnv::new("netns").await;
    let cfg = env.pod("local");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let ip = sandbox.ip.clone().expect("a pod IP");
    let script = "mkdir -p /www && echo inside > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www";
    let id = env.rt.start(&sandbox, &cfg, &busybox("web", &["sh", "-c", script])).await.unwrap();
    running(&env.rt, &id).await;
    // A server on the pod's loopback: port-forward reaches it, as the kubelet's does.
    let body = eventually("the server on the pod's loopback", || async {
        let mut conn = env.rt.connect_in_pod(&sandbox, 8080).await.ok()?;
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
        let mut text = String::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut text)).await.ok()?.ok()?;
        Some(text)
    })
    .await;
    assert!(body.ends_with("inside\n"), "{body}");
    // It is not listening on the pod's IP: the connection above went through its loopback.
    assert!(tokio::net::TcpStream::connect(format!("{ip}:8080")).await.is_err());
    // Nothing listens on another port: the error names the port.
    let err = env.rt.connect_in_pod(&sandbox, 8081).await.expect_err("nothing on 8081");
    assert!(err.to_string().contains("localhost:8081 in the pod"), "{err}");
    // A host-network pod is reached on the node: the runtime says so.
    let host = Sandbox { id: sandbox.id.clone(), ip: None };
    assert!(matches!(env.rt.connect_in_pod(&host, 8080).await, Err(RuntimeError::Unsupported(_))));
}

#[tokio::test]
async fn engine_attach_carries_a_containers_own_stdio() {
    let env = TestEnv::new("attach").await;
    let cfg = env.pod("reader");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let mut c = busybox("sh", &["sh", "-c", "while read l; do echo \"got $l\"; echo \"err $l\" >&2; done; echo bye"]);
    c.stdin = true;
    c.stdin_once = true;
    let id = env.rt.start(&sandbox, &cfg, &c).await.unwrap();
    running(&env.rt, &id).await;
    let mut session = env.rt.attach(&id, true).await.unwrap();
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"one\n").await.unwrap();
    let mut seen: Vec<(u8, Bytes)> = Vec::new();
    while !seen.iter().any(|(ch, b)| *ch == 2 && b.as_ref() == b"err one\n") || !seen.iter().any(|(ch, _)| *ch == 1) {
        let next = tokio::time::timeout(DEADLINE, session.output.next()).await.expect("output").expect("more output");
        seen.push(next);
    }
    assert!(seen.contains(&(1, Bytes::from_static(b"got one\n"))), "{seen:?}");
    // stdinOnce: the client closing stdin closes the container's; the loop ends and
    // so does the session, successfully.
    stdin.shutdown().await.unwrap();
    drop(stdin);
    let rest: Vec<(u8, Bytes)> = tokio::time::timeout(DEADLINE, session.output.collect()).await.unwrap();
    assert!(rest.contains(&(1, Bytes::from_static(b"bye\n"))), "{rest:?}");
    assert_eq!(tokio::time::timeout(DEADLINE, session.exit).await.unwrap().unwrap(), 0);
    eventually("the container to exit", || async {
        matches!(env.rt.state(&id).await.unwrap(), State::Exited { exit_code: 0, .. }).then_some(())
    })
    .await;
    // Nothing to attach to any more.
    assert!(env.rt.attach(&id, false).await.is_err());
}

#[test]
fn unit_route_command_adds_the_route_then_becomes_pause() {
    let r = ServiceRoute { cidr: "10.96.0.0/16".into(), via: "10.242.0.21".into(), helper: "/x/busybox".into() };
    assert_eq!(
        route_command(&r),
        [
            "/.rk/busybox",
            "sh",
            "-c",
            "/.rk/busybox ip route replace \"$0\" via \"$1\" && exec /pause",
            "10.96.0.0/16",
            "10.242.0.21"
        ]
    );
}

#[tokio::test]
async fn engine_pause_image_is_built_from_memory_and_runs() {
    let mut env = TestEnv::new("pause").await;
    let tag = format!("rk-pause-test:{}", std::process::id());
    env.cleanup.images.push(tag.clone());
    env.rt.import_pause_image(&tag).await.unwrap();
    let image = env.rt.docker().inspect_image(&tag).await.unwrap();
    assert_eq!(image.config.unwrap().cmd, Some(vec!["/pause".to_string()]));
    assert_eq!(image.architecture.as_deref(), Some("amd64"));

    let labels = HashMap::from([(NODE_LABEL.to_string(), env.cleanup.node.clone())]);
    let body = ContainerCreateBody { image: Some(tag.clone()), labels: Some(labels), ..Default::default() };
    let id = env
        .rt
        .docker()
        .create_container(None::<bollard::query_parameters::CreateContainerOptions>, body)
        .await
        .unwrap()
        .id;
    env.rt.docker().start_container(&id, None).await.unwrap();
    running(&env.rt, &id).await;
    // It sleeps in pause(2) (syscall 34), not spinning or gone: the engine runs on this
    // host, so its process is visible here.
    let pid = env.rt.docker().inspect_container(&id, None).await.unwrap().state.unwrap().pid.unwrap();
    eventually("the pause process to block in pause(2)", || async {
        let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        syscall.starts_with("34 ").then_some(())
    })
    .await;
    let stopping = Instant::now();
    env.rt.stop(&id, Duration::from_secs(30)).await.unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(10));
    assert!(matches!(env.rt.state(&id).await.unwrap(), State::Exited { exit_code: 0, .. }));
}

#[tokio::test]
async fn engine_exit_code_logs_and_state() {
    let env = TestEnv::new("exit").await;
    let cfg = env.pod("job");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let mut c = busybox("job", &["sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    c.attempt = 1;
    let id = env.rt.start(&sandbox, &cfg, &c).await.unwrap();
    let inspect = env.rt.docker().inspect_container(&id, None).await.unwrap();
    assert_eq!(inspect.name.as_deref(), Some(format!("/{}", container_name("job", &cfg.pod, 1)).as_str()));
    let host_config = inspect.host_config.unwrap();
    assert_eq!(host_config.network_mode, Some(format!("container:{}", sandbox.id)));
    assert_eq!(host_config.restart_policy.and_then(|p| p.name), Some(RestartPolicyNameEnum::NO));

    let State::Exited { exit_code, reason, started_at, finished_at } = exited(&env.rt, &id).await else {
        unreachable!("exited() returns only Exited")
    };
    assert_eq!((exit_code, reason.as_str()), (3, "Error"));
    let started_at = started_at.expect("a start time");
    assert!(started_at <= finished_at);
    assert!(SystemTime::now().duration_since(started_at).unwrap() < Duration::from_secs(120));

    // stdout and stderr merged, frame headers gone.
    let log = all_logs(&env.rt, &id, &LogOptions::default()).await;
    assert!(log == "hi\noops\n" || log == "oops\nhi\n", "{log:?}");
    let last = all_logs(&env.rt, &id, &LogOptions { tail_lines: Some(1), ..Default::default() }).await;
    assert_eq!(last.lines().count(), 1, "{last:?}");
    let stamped = all_logs(&env.rt, &id, &LogOptions { timestamps: true, ..Default::default() }).await;
    for line in stamped.lines() {
        let (stamp, _) = line.split_once(' ').unwrap();
        assert!(parse_rfc3339(stamp).is_some(), "{line:?}");
    }
    let later = SystemTime::now() + Duration::from_secs(3600);
    assert_eq!(all_logs(&env.rt, &id, &LogOptions { since: Some(later), ..Default::default() }).await, "");

    let ok = env.rt.start(&sandbox, &cfg, &busybox("ok", &["true"])).await.unwrap();
    assert!(matches!(exited(&env.rt, &ok).await, State::Exited { exit_code: 0, reason, .. } if reason == "Completed"));

    env.rt.remove(&id).await.unwrap();
    assert!(matches!(env.rt.state(&id).await, Err(RuntimeError::NotFound(_))));
    assert!(matches!(env.rt.logs(&id, &LogOptions::default()).await, Err(RuntimeError::NotFound(_))));
    env.rt.remove(&id).await.unwrap();
}

#[tokio::test]
async fn engine_logs_follow_until_the_container_stops() {
    let env = TestEnv::new("follow").await;
    let cfg = env.pod("talker");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let c = busybox(
        "talker",
        &["sh", "-c", "echo one; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo two; exec sleep 600"],
    );
    let id = env.rt.start(&sandbox, &cfg, &c).await.unwrap();
    let mut follow = env.rt.logs(&id, &LogOptions { follow: true, ..Default::default() }).await.unwrap();
    let first = tokio::time::timeout(DEADLINE, follow.next()).await.unwrap().unwrap();
    assert_eq!(first, "one\n");
    // Output written after the stream opened arrives on it.
    assert_eq!(exec(&env.rt, &id, &["touch", "/tmp/go"]).await.0, 0);
    let second = tokio::time::timeout(DEADLINE, follow.next()).await.unwrap().unwrap();
    assert_eq!(second, "two\n");
    env.rt.stop(&id, Duration::ZERO).await.unwrap();
    assert_eq!(
        tokio::time::timeout(DEADLINE, follow.next()).await.unwrap(),
        None,
        "the stream ends with the container"
    );
}

#[tokio::test]
async fn engine_httpd_in_a_pod_answers_on_the_pod_ip() {
    let env = TestEnv::new("httpd").await;
    let cfg = env.pod("web");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let ip = sandbox.ip.clone().unwrap();
    let server = busybox(
        "httpd",
        &["sh", "-c", "mkdir -p /www && echo hello-from-the-pod > /www/index.html && exec httpd -f -p 8080 -h /www"],
    );
    env.rt.start(&sandbox, &cfg, &server).await.unwrap();

    // From the node: the bridge network is routed on the host.
    let addr = format!("{ip}:8080");
    let reply = eventually("httpd to answer on the pod IP", || http_get(&addr)).await;
    assert!(reply.contains("hello-from-the-pod"), "{reply}");

    // From a second container of the same pod, over localhost: they share the namespace.
    let sidecar = busybox("sidecar", &["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]);
    let sidecar = env.rt.start(&sandbox, &cfg, &sidecar).await.unwrap();
    assert!(matches!(exited(&env.rt, &sidecar).await, State::Exited { exit_code: 0, .. }));
    assert_eq!(all_logs(&env.rt, &sidecar, &LogOptions::default()).await, "hello-from-the-pod\n");

    // From another pod, across the network.
    let other_cfg = env.pod("client");
    let other = env.rt.run_sandbox(&other_cfg).await.unwrap();
    assert_ne!(other.ip, sandbox.ip);
    let client = busybox("client", &["wget", "-q", "-O", "-", &format!("http://{ip}:8080/")]);
    let client = env.rt.start(&other, &other_cfg, &client).await.unwrap();
    assert!(matches!(exited(&env.rt, &client).await, State::Exited { exit_code: 0, .. }));
    assert_eq!(all_logs(&env.rt, &client, &LogOptions::default()).await, "hello-from-the-pod\n");
}

#[tokio::test]
async fn engine_env_mounts_limits_dns_and_exec() {
    let env = TestEnv::new("exec").await;
    let mut cfg = env.pod("app");
    cfg.dns = DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["default.svc.cluster.local".into(), "svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    };
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let data = cfg.pod_dir.join("data");
    let config = cfg.pod_dir.join("config");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("settings"), "mode=test\n").unwrap();
    let mut c = busybox("app", &["sleep", "600"]);
    c.env = vec![("GREETING".into(), "hello world".into())];
    c.working_dir = Some("/data".into());
    c.mounts = vec![
        Mount { host_path: data.clone(), container_path: "/data".into(), read_only: false },
        Mount { host_path: config.clone(), container_path: "/config".into(), read_only: true },
    ];
    c.memory_limit_bytes = Some(64 << 20);
    c.cpu_limit_millis = Some(500);
    c.annotations = BTreeMap::from([("rk.io/note".to_string(), "kept".to_string())]);
    let id = env.rt.start(&sandbox, &cfg, &c).await.unwrap();
    running(&env.rt, &id).await;

    let inspect = env.rt.docker().inspect_container(&id, None).await.unwrap();
    let host_config = inspect.host_config.unwrap();
    assert_eq!(host_config.memory, Some(64 << 20));
    assert_eq!(host_config.nano_cpus, Some(500_000_000));
    assert_eq!(inspect.config.unwrap().labels.unwrap()[&format!("{ANNOTATION_LABEL_PREFIX}rk.io/note")], "kept");

    assert_eq!(exec(&env.rt, &id, &["cat", "/etc/hostname"]).await, (0, format!("{}\n", cfg.hostname), String::new()));
    assert_eq!(exec(&env.rt, &id, &["sh", "-c", "echo $GREETING"]).await.1, "hello world\n");
    assert_eq!(exec(&env.rt, &id, &["pwd"]).await.1, "/data\n");
    assert_eq!(exec(&env.rt, &id, &["cat", "/config/settings"]).await.1, "mode=test\n");
    assert_eq!(exec(&env.rt, &id, &["cat", "/etc/resolv.conf"]).await.1, render_resolv_conf(&cfg.dns));
    // Writes to the rw mount land on the node; the ro mount refuses them.
    assert_eq!(exec(&env.rt, &id, &["sh", "-c", "echo from-the-container > /data/out"]).await.0, 0);
    assert_eq!(std::fs::read_to_string(data.join("out")).unwrap(), "from-the-container\n");
    let (code, _, stderr) = exec(&env.rt, &id, &["touch", "/config/nope"]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("Read-only"), "{stderr}");
    // Exit codes and stderr of the command come back tagged.
    assert_eq!(
        exec(&env.rt, &id, &["sh", "-c", "echo out; echo err >&2; exit 5"]).await,
        (5, "out\n".into(), "err\n".into())
    );

    // stdin is forwarded and its end closes the command's input.
    let mut session = env.rt.exec(&id, vec!["cat".into()], false, true).await.unwrap();
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"ping\n").await.unwrap();
    stdin.shutdown().await.unwrap();
    let echoed: Vec<(u8, Bytes)> = tokio::time::timeout(DEADLINE, session.output.collect()).await.unwrap();
    assert_eq!(echoed, vec![(1, Bytes::from_static(b"ping\n"))]);
    assert_eq!(tokio::time::timeout(DEADLINE, session.exit).await.unwrap().unwrap(), 0);

    // Exec in a container that is not there.
    assert!(matches!(
        env.rt.exec("rk-no-such-container", vec!["true".into()], false, false).await,
        Err(RuntimeError::NotFound(_))
    ));

    // One-shot stats: the shell and the execs used some CPU; memory is in use, below the limit.
    let stats = env.rt.stats(&id).await.unwrap();
    assert!(stats.cpu_nanos > 0, "{stats:?}");
    assert!(stats.memory_bytes > 0 && stats.memory_bytes < 64 << 20, "{stats:?}");
}

#[tokio::test]
async fn engine_stop_sends_sigterm_then_sigkill_after_the_grace_period() {
    let env = TestEnv::new("stop").await;
    let cfg = env.pod("stopper");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let polite = busybox("polite", &["sh", "-c", "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done"]);
    let stubborn = busybox("stubborn", &["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"]);
    let polite = env.rt.start(&sandbox, &cfg, &polite).await.unwrap();
    let stubborn = env.rt.start(&sandbox, &cfg, &stubborn).await.unwrap();
    logged(&env.rt, &polite, "ready").await;
    logged(&env.rt, &stubborn, "ready").await;

    // SIGTERM first: the trap's exit code shows it, long before the grace ends.
    let stopping = Instant::now();
    env.rt.stop(&polite, Duration::from_secs(60)).await.unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(15), "{:?}", stopping.elapsed());
    assert!(matches!(env.rt.state(&polite).await.unwrap(), State::Exited { exit_code: 7, .. }));

    // SIGKILL once the grace is over, not before.
    let stopping = Instant::now();
    env.rt.stop(&stubborn, Duration::from_millis(1500)).await.unwrap();
    let took = stopping.elapsed();
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(15), "{took:?}");
    assert!(matches!(env.rt.state(&stubborn).await.unwrap(), State::Exited { exit_code: 137, .. }));

    // Stopping a stopped container, or one that is gone.
    env.rt.stop(&stubborn, Duration::from_secs(1)).await.unwrap();
    assert!(matches!(env.rt.stop("rk-no-such-container", Duration::ZERO).await, Err(RuntimeError::NotFound(_))));
}

#[tokio::test]
async fn engine_missing_image_and_bad_command_fail_with_their_reasons() {
    let env = TestEnv::new("errors").await;
    let cfg = env.pod("broken");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();

    let mut missing = busybox("missing", &["true"]);
    missing.image = "rk-no-such-image:1".into();
    match env.rt.start(&sandbox, &cfg, &missing).await {
        // The engine's own words about the failed pull.
        Err(RuntimeError::ImageNotFound { image, detail }) => {
            assert_eq!(image, "rk-no-such-image:1");
            assert!(!detail.is_empty());
        }
        other => panic!("expected ImageNotFound, got {other:?}"),
    }
    missing.pull_policy = "Never".into();
    assert!(matches!(env.rt.start(&sandbox, &cfg, &missing).await, Err(RuntimeError::ImageNotFound { .. })));
    // "Always" with a local image and no registry uses the local image.
    let mut always = busybox("always", &["true"]);
    always.pull_policy = "Always".into();
    let always = env.rt.start(&sandbox, &cfg, &always).await.unwrap();
    assert!(matches!(exited(&env.rt, &always).await, State::Exited { exit_code: 0, .. }));

    match env.rt.start(&sandbox, &cfg, &busybox("bad", &["/no/such/program"])).await {
        Err(RuntimeError::Start(message)) => {
            assert!(message.contains("/no/such/program") && message.contains("no such file"), "{message}")
        }
        other => panic!("expected a Start error, got {other:?}"),
    }
    // The failed container is not left behind, so the same attempt can be tried again.
    let names: Vec<String> = env.rt.list().await.unwrap().into_iter().map(|c| c.container).collect();
    assert_eq!(names, vec!["always".to_string()]);
    match env.rt.start(&sandbox, &cfg, &busybox("bad", &["/no/such/program"])).await {
        Err(RuntimeError::Start(_)) => {}
        other => panic!("expected a Start error, got {other:?}"),
    }
    // A leftover of the same name and attempt (not removed by the agent) is replaced.
    let again = env.rt.start(&sandbox, &cfg, &busybox("always", &["true"])).await.unwrap();
    assert_ne!(again, always);
    assert!(matches!(env.rt.state(&always).await, Err(RuntimeError::NotFound(_))));
}

#[tokio::test]
async fn engine_list_and_list_sandboxes_adopt_by_labels() {
    let env = TestEnv::new("adopt").await;
    let cfg = env.pod("kept");
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    let mut c = busybox("server", &["sleep", "600"]);
    c.attempt = 2;
    let id = env.rt.start(&sandbox, &cfg, &c).await.unwrap();
    running(&env.rt, &id).await;

    // A restarted agent: a new runtime, same network and node name.
    let restarted = DockerRuntime::connect(env.rt.network(), env.rt.node_name()).await.unwrap();
    let sandboxes = restarted.list_sandboxes().await.unwrap();
    assert_eq!(sandboxes, vec![(cfg.pod.clone(), sandbox.clone())]);
    let listed = restarted.list().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let info = &listed[0];
    assert_eq!(
        (info.id.as_str(), &info.pod, info.container.as_str(), info.attempt),
        (id.as_str(), &cfg.pod, "server", 2)
    );
    assert_eq!(info.image, BUSYBOX_IMAGE);
    assert!(matches!(info.state, State::Running { .. }));
    // It finds the running sandbox rather than making a second one.
    assert_eq!(restarted.run_sandbox(&cfg).await.unwrap(), sandbox);

    // Another node's agent on the same engine sees none of it.
    let other_node = Cleanup {
        node: format!("{}-other", env.cleanup.node),
        networks: vec![],
        images: vec![],
        dir: env.dir.join("other"),
    };
    let other = DockerRuntime::connect(env.rt.network(), &other_node.node).await.unwrap();
    assert!(other.list().await.unwrap().is_empty());
    assert!(other.list_sandboxes().await.unwrap().is_empty());
    other.remove_sandbox(&cfg.pod.uid).await.unwrap();
    assert!(matches!(env.rt.state(&id).await.unwrap(), State::Running { .. }), "another node removed our pod");

    restarted.remove_sandbox(&cfg.pod.uid).await.unwrap();
    assert!(env.rt.list().await.unwrap().is_empty());
    assert!(env.rt.list_sandboxes().await.unwrap().is_empty());
}

#[tokio::test]
async fn engine_host_network_pod_uses_the_node_network() {
    let env = TestEnv::new("hostnet").await;
    let mut cfg = env.pod("node-local");
    cfg.host_network = true;
    let sandbox = env.rt.run_sandbox(&cfg).await.unwrap();
    assert_eq!(sandbox.ip, None);
    let inspect = env.rt.docker().inspect_container(&sandbox.id, None).await.unwrap();
    assert_eq!(inspect.host_config.unwrap().network_mode.as_deref(), Some("host"));
    assert_eq!(env.rt.list_sandboxes().await.unwrap(), vec![(cfg.pod.clone(), sandbox.clone())]);

    // A server in the pod listens on the node's own loopback.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = busybox(
        "httpd",
        &[
            "sh",
            "-c",
            &format!(
                "mkdir -p /www && echo on-the-node > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www"
            ),
        ],
    );
    env.rt.start(&sandbox, &cfg, &server).await.unwrap();
    let addr = format!("127.0.0.1:{port}");
    let reply = eventually("httpd on the node's loopback", || http_get(&addr)).await;
    assert!(reply.contains("on-the-node"), "{reply}");
}

#[tokio::test]
async fn engine_agents_starting_together_share_one_network() {
    let pid = std::process::id();
    let network = format!("rk-t-shared-{pid}");
    let _cleanup = Cleanup {
        node: format!("t-shared-{pid}"),
        networks: vec![network.clone()],
        images: vec![],
        dir: std::env::temp_dir().join(format!("rk-docker-test-t-shared-{pid}")),
    };
    let (a, b) = tokio::join!(DockerRuntime::connect(&network, "node-a"), DockerRuntime::connect(&network, "node-b"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.network_id, b.network_id);
    let filters = HashMap::from([("name".to_string(), vec![network.clone()])]);
    let networks =
        a.docker().list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build())).await.unwrap();
    let same: Vec<_> = networks.iter().filter(|n| n.name.as_deref() == Some(network.as_str())).collect();
    assert_eq!(same.len(), 1, "{same:?}");
    assert_eq!(same[0].driver.as_deref(), Some("bridge"));
    // Connecting again reuses it.
    assert_eq!(DockerRuntime::connect(&network, "node-c").await.unwrap().network_id, a.network_id);

    let version = a.version().await.unwrap();
    assert!(
        version.strip_prefix("docker://").is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())),
        "{version}"
    );
    assert_eq!(a.name(), "docker");
}
