//! `rkctl cluster up --driver docker` end to end: the real `rkctl` builds (or reuses)
//! the `rk-cluster:local` image, starts replicas and nodes as containers on a
//! network of the cluster's own, and the nodes run pods as containers of the same
//! engine. A Deployment of busybox web servers runs on it, is reached at its pod IPs,
//! survives a node being killed, and `cluster down` leaves no container, network,
//! folder or kubeconfig entry behind.
//!
//! Needs a running Docker Engine (the test fails, saying so, without one), and
//! `rk-server` and `rk-agent` next to `rkctl` (`cargo build --workspace --bins`).
//! The image's busybox comes from `$RK_BUSYBOX` or `apt-get download busybox-static`.
//!
//! Everything is named `rk-dtest-…` and labelled `io.rk.cluster=dtest-…`; the guard
//! runs `rkctl cluster down` and then removes by label whatever is left, even when
//! an assertion fails.

mod common;
use common::wait_until;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const RKCTL: &str = env!("CARGO_BIN_EXE_rkctl");

/// A temporary state directory and kubeconfig, and one docker cluster.
struct Env {
    dir: tempfile::TempDir,
    name: String,
}

impl Env {
    fn new(name: &str) -> Env {
        let docker = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
        assert!(
            docker.is_ok_and(|o| o.status.success()),
            "this test needs a running Docker Engine (`docker version` failed)"
        );
        let bin = Path::new(RKCTL).parent().unwrap();
        for b in ["rk-server", "rk-agent"] {
            assert!(bin.join(b).exists(), "{} is missing; run `cargo build --workspace --bins`", bin.join(b).display());
        }
        // Unique per run, so a leftover of a crashed run never meets this one.
        let name = format!("{name}-{}", std::process::id() % 100_000);
        Env { dir: tempfile::Builder::new().prefix("rk-dtest-").tempdir().unwrap(), name }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kube").join("config")
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("RK_STATE_DIR", self.state())
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .env_remove("RK_BIN_DIR")
            .env_remove("XDG_STATE_HOME");
        c
    }

    fn rkctl(&self, args: &[&str]) -> Run {
        Run::from(self.command(RKCTL, args).output().unwrap(), args)
    }

    fn record(&self) -> Value {
        let path = self.state().join("clusters").join(&self.name).join("cluster.json");
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn label(&self) -> String {
        format!("label=io.rk.cluster={}", self.name)
    }

    /// The names of the containers labelled with this cluster.
    fn containers(&self) -> Vec<String> {
        lines(&docker(&["ps", "--all", "--filter", &self.label(), "--format", "{{.Names}}"]))
    }

    /// The pod containers the agents of this cluster started.
    fn pod_containers(&self) -> Vec<String> {
        let all = docker(&[
            "ps",
            "--all",
            "--filter",
            "label=io.rk.node",
            "--format",
            "{{.Names}}\t{{.Label \"io.rk.node\"}}",
        ]);
        let prefix = format!("{}-node-", self.name);
        lines(&all)
            .into_iter()
            .filter_map(|l| {
                let (name, node) = l.split_once('\t')?;
                node.strip_prefix(&prefix)
                    .is_some_and(|k| k.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| name.to_string())
            })
            .collect()
    }

    fn networks(&self) -> Vec<String> {
        lines(&docker(&["network", "ls", "--filter", &self.label(), "--format", "{{.Name}}"]))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let out = self.command(RKCTL, &["cluster", "down", "--name", &self.name]).output();
        if let Ok(o) = out
            && !o.status.success()
        {
            eprintln!("cleanup: rkctl cluster down failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        // Whatever `down` missed (or all of it, if rkctl is broken).
        let mut leftovers = self.pod_containers();
        leftovers.extend(self.containers());
        if !leftovers.is_empty() {
            eprintln!("cleanup: removing leftover containers {leftovers:?}");
            let mut args = vec!["rm", "--force"];
            args.extend(leftovers.iter().map(String::as_str));
            let _ = Command::new("docker").args(&args).output();
        }
        for n in self.networks() {
            eprintln!("cleanup: removing leftover network {n}");
            let _ = Command::new("docker").args(["network", "rm", &n]).output();
        }
    }
}

#[derive(Debug)]
struct Run {
    args: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(o: Output, args: &[&str]) -> Run {
        Run {
            args: args.join(" "),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "rkctl {} failed:\n{}\n{}", self.args, self.stdout, self.stderr);
        self
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// GET http://ip:port/ from the host; the body on a 200.
fn http_get(ip: &str, port: u16) -> Option<String> {
    http_get_host(ip, port, ip)
}

/// GET / from ip:port with `Host: host`; the body on a 200.
fn http_get_host(ip: &str, port: u16, host: &str) -> Option<String> {
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    // busybox httpd answers HTTP/1.1 even to 1.0.
    (head.starts_with("HTTP/1.") && head.split_whitespace().nth(1) == Some("200")).then(|| body.trim().to_string())
}

/// A Deployment of busybox web servers answering with their hostname (the pod's
/// name), in the cluster's own image: the only local image with busybox in it.
const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: rk-cluster:local
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

/// (name, phase, ready, pod IP, node) of the `web` pods.
fn web_pods(env: &Env) -> Vec<(String, String, bool, String, String)> {
    let out = env.rkctl(&["get", "pods", "-l", "app=web", "-o", "json"]);
    if out.code != Some(0) {
        return vec![];
    }
    let list: Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&p["metadata"]["name"]),
                s(&p["status"]["phase"]),
                ready,
                s(&p["status"]["podIP"]),
                s(&p["spec"]["nodeName"]),
            )
        })
        .collect()
}

/// Four ready pods, on nodes in `nodes`, each answering at its IP with its name.
fn four_serving_pods(env: &Env, nodes: &[String], timeout: Duration) -> Vec<(String, String, bool, String, String)> {
    wait_until("4 web pods Running, Ready and serving at their pod IPs", timeout, || {
        let pods = web_pods(env);
        let ok = pods.len() == 4
            && pods.iter().all(|(name, phase, ready, ip, node)| {
                phase == "Running"
                    && *ready
                    && nodes.contains(node)
                    && !ip.is_empty()
                    && http_get(ip, 8080).as_deref() == Some(name.as_str())
            });
        ok.then_some(pods)
    })
}

#[test]
fn docker_cluster_runs_pods_on_its_network_survives_a_node_loss_and_leaves_nothing() {
    let env = Env::new("dtest");
    let name = env.name.clone();
    let started = Instant::now();
    let up = env
        .rkctl(&["cluster", "up", "--name", &name, "--driver", "docker", "--replicas", "3", "--nodes", "2", "--wait"])
        .ok();
    eprintln!("cluster up (3 replicas, 2 nodes, --wait) took {:.1}s", started.elapsed().as_secs_f64());
    assert!(up.stdout.contains(&format!("Cluster {name:?} is up")), "{}", up.stdout);
    assert!(up.stdout.contains(&format!("rk-{name}-net")), "the summary names the network: {}", up.stdout);
    for step in ["Starting the control plane (3 replica containers", "Starting 2 node containers", "Waiting"] {
        assert!(up.stderr.contains(step), "progress shows {step:?}: {}", up.stderr);
    }

    // Five containers, each at its recorded address on the cluster's network.
    let rec = env.record();
    assert_eq!(rec["driver"], "docker");
    let network = format!("rk-{name}-net");
    assert_eq!(env.networks(), vec![network.clone()]);
    let mut containers = env.containers();
    containers.sort();
    let mut want: Vec<String> = (1..=2).map(|k| format!("rk-{name}-node-{k}")).collect();
    want.extend((1..=3).map(|k| format!("rk-{name}-replica-{k}")));
    assert_eq!(containers, want);
    for p in rec["replicas"].as_array().unwrap().iter().chain(rec["nodes"].as_array().unwrap()) {
        let container = p["container"].as_str().unwrap();
        let ip = docker(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
            container,
        ]);
        assert_eq!(ip.trim(), p["ip"].as_str().unwrap(), "{container}");
    }

    // The kubeconfig context works at once, and both nodes are Ready.
    let nodes = env.rkctl(&["get", "nodes", "--no-headers"]).ok();
    assert_eq!(
        nodes.stdout.lines().filter(|l| l.split_whitespace().nth(1) == Some("Ready")).count(),
        2,
        "{}",
        nodes.stdout
    );

    // `up` again: one clear line, nothing touched.
    let again = env.rkctl(&["cluster", "up", "--name", &name, "--driver", "docker"]);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains(&format!("cluster {name:?} already exists")), "{}", again.stderr);

    // Pods are containers on the cluster's network, reachable from the host.
    let manifest = env.dir.path().join("web.yaml");
    std::fs::write(&manifest, WEB).unwrap();
    env.rkctl(&["apply", "-f", manifest.to_str().unwrap()]).ok();
    let node_names: Vec<String> = (1..=2).map(|k| format!("{name}-node-{k}")).collect();
    let pods = four_serving_pods(&env, &node_names, Duration::from_secs(60));
    assert!(env.pod_containers().len() >= 8, "a sandbox and an app container per pod: {:?}", env.pod_containers());
    let sandbox_net = docker(&[
        "ps",
        "--filter",
        "label=io.rk.sandbox=true",
        "--filter",
        &format!("network={network}"),
        "--format",
        "{{.Label \"io.rk.node\"}}",
    ]);
    assert_eq!(lines(&sandbox_net).iter().filter(|n| node_names.contains(n)).count(), 4, "{sandbox_net}");

    // Pod to pod across the network, through exec (API server → node agent → engine).
    let (from, other_ip) = (&pods[0].0, &pods[3].3);
    let exec = env.rkctl(&["exec", from, "--", "wget", "-qO-", &format!("http://{other_ip}:8080/")]).ok();
    assert_eq!(exec.stdout.trim(), pods[3].0, "pod {from} reached pod {} at {other_ip}", pods[3].0);

    // Cluster DNS from a pod: the Service's name resolves to its cluster IP.
    let cluster_ip = env.rkctl(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]).ok().stdout;
    let lookup = env.rkctl(&["exec", from, "--", "nslookup", "web.default.svc.cluster.local"]).ok();
    assert!(!cluster_ip.is_empty() && lookup.stdout.contains(cluster_ip.trim()), "{cluster_ip}: {}", lookup.stdout);
    // Pods on both nodes reach the Service by name: cluster DNS, then the cluster IP,
    // which pods route to their node, whose agent DNATs it to a ready pod.
    let pod_names: Vec<&str> = pods.iter().map(|p| p.0.as_str()).collect();
    let mut from_nodes: Vec<&(String, String, bool, String, String)> = Vec::new();
    for node in &node_names {
        from_nodes.extend(pods.iter().find(|p| &p.4 == node));
    }
    assert_eq!(from_nodes.len(), 2, "a pod on each node: {pods:?}");
    for pod in from_nodes {
        let answer = wait_until("a pod to reach the Service's cluster IP", Duration::from_secs(20), || {
            let run = env.rkctl(&["exec", &pod.0, "--", "timeout", "5", "wget", "-qO-", "http://web/"]);
            let body = run.stdout.trim().to_string();
            (run.code == Some(0) && pod_names.contains(&body.as_str())).then_some(body)
        });
        eprintln!("{} on {} reached {answer} through the cluster IP", pod.0, pod.4);
    }
    // A host-network pod has its node's address, as on a machine (it shares the node
    // container's network, not the engine host's).
    let host_pod = env.dir.path().join("host.yaml");
    std::fs::write(
        &host_pod,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: on-node}}\nspec:\n  hostNetwork: true\n  nodeName: {}\n  \
             terminationGracePeriodSeconds: 1\n  containers:\n  - name: sh\n    image: rk-cluster:local\n    \
             imagePullPolicy: Never\n    command: [sleep, \"600\"]\n",
            node_names[0]
        ),
    )
    .unwrap();
    env.rkctl(&["apply", "-f", host_pod.to_str().unwrap()]).ok();
    env.rkctl(&["wait", "--for=condition=Ready", "pod/on-node", "--timeout=60s"]).ok();
    let node1_ip = rec["nodes"][0]["ip"].as_str().unwrap().to_string();
    let addrs = env.rkctl(&["exec", "on-node", "--", "ip", "-4", "addr"]).ok().stdout;
    assert!(addrs.contains(&format!("inet {node1_ip}/")), "{addrs}");
    let pod_ip = env.rkctl(&["get", "pod", "on-node", "-o", "jsonpath={.status.podIP}"]).ok().stdout;
    assert_eq!(pod_ip.trim(), node1_ip);
    env.rkctl(&["delete", "pod", "on-node"]).ok();

    // The Service's node port answers at a node's address, from the host.
    let node_ip = rec["nodes"][0]["ip"].as_str().unwrap().to_string();
    wait_until("the node port to answer", Duration::from_secs(20), || {
        http_get(&node_ip, 30080).filter(|body| pod_names.contains(&body.as_str()))
    });
    // And the Ingress on port 80 of every node, by host.
    for node in rec["nodes"].as_array().unwrap() {
        let ip = node["ip"].as_str().unwrap();
        wait_until("the Ingress to answer", Duration::from_secs(20), || {
            http_get_host(ip, 80, "web.test").filter(|body| pod_names.contains(&body.as_str()))
        });
    }

    // Kill a node like a machine: its pods are replaced on the other node.
    let victim = format!("{name}-node-2");
    docker(&["kill", &format!("rk-{victim}")]);
    let status = env.rkctl(&["cluster", "status", "--name", &name]).ok();
    let row = status.stdout.lines().find(|l| l.starts_with(&victim)).unwrap_or_default().to_string();
    assert!(row.contains(&format!("rk-{victim}")) && row.split_whitespace().nth(3) == Some("no"), "{}", status.stdout);
    let survivor = vec![format!("{name}-node-1")];
    four_serving_pods(&env, &survivor, Duration::from_secs(90));

    // Down removes everything: containers (also the killed node's orphaned pods),
    // the network, the folder, the kubeconfig entries.
    let down = env.rkctl(&["cluster", "down", "--name", &name]).ok();
    assert!(down.stdout.contains("Deleted cluster"), "{}", down.stdout);
    assert_eq!(env.containers(), Vec::<String>::new());
    assert_eq!(env.pod_containers(), Vec::<String>::new());
    assert_eq!(env.networks(), Vec::<String>::new());
    assert!(!env.state().join("clusters").join(&name).exists());
    let kubeconfig = std::fs::read_to_string(env.kubeconfig()).unwrap_or_default();
    assert!(!kubeconfig.contains(&format!("rk-{name}")), "{kubeconfig}");
}
