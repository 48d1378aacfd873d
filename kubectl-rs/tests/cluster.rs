//! `rkctl cluster up|down|list|status` end to end: the real `rkctl` binary starts
//! real `rk-server` and `rk-agent` processes (process driver), in a temporary state
//! directory and a temporary kubeconfig, and every test tears its cluster down
//! (a guard runs `rkctl cluster down` even when an assertion fails).
//!
//! Needs `rk-server` and `rk-agent` next to `rkctl`: `cargo build --workspace --bins`.
//! The demo manifest needs `python3` on the host (its pods are host processes);
//! the kubectl check needs `kubectl` on PATH.

mod common;
use common::wait_until;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const RKCTL: &str = env!("CARGO_BIN_EXE_rkctl");

/// A temporary state directory and kubeconfig, and the cluster names to delete.
struct Env {
    dir: tempfile::TempDir,
    names: Vec<String>,
}

impl Env {
    fn new() -> Env {
        let bin = Path::new(RKCTL).parent().unwrap();
        for b in ["rk-server", "rk-agent"] {
            assert!(
                bin.join(b).exists(),
                "{} is missing; build the binaries first with `cargo build --workspace --bins`",
                bin.join(b).display()
            );
        }
        Env { dir: tempfile::Builder::new().prefix("rk-cluster-test-").tempdir().unwrap(), names: vec![] }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kube").join("config")
    }

    /// A command with this environment: its own state dir, kubeconfig and HOME (so
    /// nothing of the user's is read or written), and no RK_BIN_DIR from outside.
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

    /// `cluster up`, remembering the name so the guard deletes it.
    fn up(&mut self, name: &str, args: &[&str]) -> Run {
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_string());
        }
        let mut all = vec!["cluster", "up", "--name", name];
        all.extend_from_slice(args);
        self.rkctl(&all)
    }

    fn record(&self, name: &str) -> Value {
        let path = self.state().join("clusters").join(name).join("cluster.json");
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.names) {
            let out = self.command(RKCTL, &["cluster", "down", "--name", &name]).output();
            if let Ok(o) = out
                && !o.status.success()
            {
                eprintln!("cleanup: rkctl cluster down --name {name} failed: {}", String::from_utf8_lossy(&o.stderr));
            }
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

    /// Exit code 1 and exactly one line on stderr (the error), which is returned.
    fn fails_with_one_line(self) -> String {
        assert_eq!(self.code, Some(1), "rkctl {} should fail:\n{}\n{}", self.args, self.stdout, self.stderr);
        let errors: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "one error line expected from rkctl {}:\n{}", self.args, self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        errors[0].to_string()
    }
}

/// Whether `pid` is a live (not zombie) process that started at `ticks`.
fn alive(pid: i64, ticks: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some((_, rest)) = stat.rsplit_once(')') else { return false };
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.first().is_some_and(|s| *s != "Z" && *s != "X") && f.get(19).and_then(|t| t.parse().ok()) == Some(ticks)
}

/// Every (pid, start ticks) of the cluster: its daemons from `cluster.json`, its pods
/// from the process runtime's `state.json` files.
fn processes(env: &Env, name: &str) -> Vec<(String, i64, u64)> {
    let rec = env.record(name);
    let mut out = Vec::new();
    for p in rec["replicas"].as_array().unwrap().iter().chain(rec["nodes"].as_array().unwrap()) {
        out.push((
            p["name"].as_str().unwrap().to_string(),
            p["pid"].as_i64().unwrap(),
            p["start_ticks"].as_u64().unwrap(),
        ));
        let pods = Path::new(p["data_dir"].as_str().unwrap()).join("process/pods");
        for pod in std::fs::read_dir(pods).into_iter().flatten().flatten() {
            for c in std::fs::read_dir(pod.path().join("containers")).into_iter().flatten().flatten() {
                if let Ok(text) = std::fs::read_to_string(c.path().join("state.json")) {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    out.push((
                        format!("pod {}", c.file_name().to_string_lossy()),
                        v["pid"].as_i64().unwrap(),
                        v["proc_start_ticks"].as_u64().unwrap(),
                    ));
                }
            }
        }
    }
    out
}

/// `GET path` on `ip:8080`, with optional extra header; (status line, body).
fn http_get(ip: &str, path: &str, header: &str) -> Option<(String, String)> {
    http_get_at(ip, 8080, path, header)
}

fn http_get_at(ip: &str, port: u16, path: &str, header: &str) -> Option<(String, String)> {
    let mut s =
        std::net::TcpStream::connect_timeout(&format!("{ip}:{port}").parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n{header}\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn kubeconfig_text(env: &Env) -> String {
    std::fs::read_to_string(env.kubeconfig()).unwrap_or_default()
}

#[test]
fn up_apply_demo_status_and_down_leave_nothing_behind() {
    let mut env = Env::new();
    let name = "e2e";

    let up = env.up(name, &["--replicas", "3", "--nodes", "2", "--wait"]).ok();
    assert!(up.stdout.contains("Cluster \"e2e\" is up"), "{}", up.stdout);
    assert!(up.stdout.contains("Set kubectl context to \"rk-e2e\""), "{}", up.stdout);
    assert!(up.stdout.contains("DNS "), "{}", up.stdout);
    assert!(up.stdout.contains("Ingress     http://"), "{}", up.stdout);
    assert_eq!(up.stdout.matches(") Ready").count(), 2, "both nodes are Ready in the summary:\n{}", up.stdout);
    // Not a terminal here: plain step lines, no spinner control codes.
    assert!(up.stderr.contains(" ✓ Starting the control plane (3 replicas"), "{}", up.stderr);
    assert!(!up.stderr.contains('\x1b'), "{:?}", up.stderr);

    // The kubeconfig's current context is the new cluster, for rkctl and kubectl.
    let nodes = env.rkctl(&["get", "nodes"]).ok().stdout;
    for n in ["e2e-node-1", "e2e-node-2"] {
        let line = nodes.lines().find(|l| l.starts_with(n)).unwrap_or_else(|| panic!("{n} missing:\n{nodes}"));
        assert!(line.split_whitespace().nth(1) == Some("Ready"), "{line}");
    }
    let kubectl = env.command("kubectl", &["get", "nodes", "--context", "rk-e2e"]).output();
    let kubectl = kubectl.expect("kubectl must be on PATH for this test");
    let text = String::from_utf8_lossy(&kubectl.stdout);
    assert!(kubectl.status.success(), "kubectl get nodes: {}", String::from_utf8_lossy(&kubectl.stderr));
    assert_eq!(text.lines().filter(|l| l.contains(" Ready ")).count(), 2, "{text}");

    // The demo runs on the process runtime: 3 pods Running and Ready, serving the
    // ConfigMap's page, and the Secret's token as env.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/demo.yml");
    let applied = env.rkctl(&["apply", "-f", demo.to_str().unwrap()]).ok().stdout;
    assert!(applied.contains("deployment.apps/demo created"), "{applied}");
    let pods: Vec<Value> = wait_until("3 demo pods Running and Ready", Duration::from_secs(60), || {
        let out = env.rkctl(&["get", "pods", "-l", "app=demo", "-o", "json"]);
        let list: Value = serde_json::from_str(&out.stdout).ok()?;
        let items = list["items"].as_array()?.clone();
        let ready = |p: &Value| {
            p["status"]["phase"] == "Running"
                && p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        };
        (items.len() == 3 && items.iter().all(ready)).then_some(items)
    });
    let table = env.rkctl(&["get", "pods"]).ok().stdout;
    assert_eq!(table.lines().filter(|l| l.contains("Running")).count(), 3, "{table}");
    let ip = pods[0]["status"]["podIP"].as_str().unwrap().to_string();
    let (status, page) = http_get(&ip, "/", "").expect("the demo answers on its pod IP");
    assert!(status.contains("200") && page.contains("Hello from rk"), "{status}\n{page}");
    let (status, _) = http_get(&ip, "/admin", "").unwrap();
    assert!(status.contains("401"), "{status}");
    let (status, body) = http_get(&ip, "/admin", "Authorization: Bearer change-me-3f9a1c\r\n").unwrap();
    assert!(status.contains("200") && body.contains("hello, admin"), "{status} {body}");
    // Through the Service: its Endpoints list the pods' loopback addresses and the
    // nodes' userspace proxies forward the cluster IP to them.
    let svc: Value = serde_json::from_str(&env.rkctl(&["get", "svc", "demo", "-o", "json"]).ok().stdout).unwrap();
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    let page = wait_until("the demo through its cluster IP", Duration::from_secs(20), || {
        http_get_at(&cluster_ip, 80, "/", "").filter(|(status, _)| status.contains("200")).map(|(_, body)| body)
    });
    assert!(page.contains("Hello from rk"), "{page}");
    // Through Ingress `demo`, on every node, at the address and port the record gives.
    let rec = env.record(name);
    for node in rec["nodes"].as_array().unwrap() {
        let (ip, port) = (node["ip"].as_str().unwrap(), node["ingress"]["http"].as_u64().unwrap() as u16);
        let who = wait_until("the demo through the Ingress", Duration::from_secs(20), || {
            http_get_at(ip, port, "/whoami", "").filter(|(status, _)| status.contains("200")).map(|(_, body)| body)
        });
        assert!(who.contains("demo-"), "{ip}:{port}/whoami answered {who:?}");
    }

    // list and status.
    let list = env.rkctl(&["cluster", "list"]).ok().stdout;
    assert!(list.starts_with("NAME"), "{list}");
    let row: Vec<&str> = list.lines().find(|l| l.starts_with("e2e ")).unwrap().split_whitespace().collect();
    assert_eq!(row, ["e2e", "process", "3", "2", "Running"], "{list}");
    // Retried briefly: an election in progress would show no leader for a moment.
    let status = wait_until("status to show 3 ready replicas and one leader", Duration::from_secs(10), || {
        let status = env.rkctl(&["cluster", "status", "--name", name]).ok().stdout;
        let replicas: Vec<Vec<&str>> =
            status.lines().filter(|l| l.starts_with("replica-")).map(|l| l.split_whitespace().collect()).collect();
        let ok = replicas.len() == 3
            && replicas.iter().all(|r| r[3] == "yes" && r[4] == "yes")
            && replicas.iter().filter(|r| r[5] == "yes").count() == 1;
        ok.then_some(status)
    });
    let nodes: Vec<Vec<&str>> =
        status.lines().filter(|l| l.starts_with("e2e-node-")).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(nodes.len(), 2, "{status}");
    assert!(nodes.iter().all(|n| n[3] == "yes" && n[4] == "True"), "{status}");
    assert_eq!(nodes.iter().map(|n| n[5].parse::<usize>().unwrap()).sum::<usize>(), 3, "3 pod processes:\n{status}");

    // Certificates: the CA and each replica's two, with their expiry, none renewed yet.
    let certs = env.rkctl(&["cluster", "certs", "--name", name]).ok().stdout;
    let rows: Vec<Vec<&str>> = certs.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 9, "3 replicas × (ca, client-port, peer):\n{certs}");
    for kind in ["ca", "client-port", "peer"] {
        assert_eq!(rows.iter().filter(|r| r[1] == kind).count(), 3, "{certs}");
    }
    assert!(rows.iter().filter(|r| r[1] != "ca").all(|r| r[4] == "0"), "{certs}");
    // The kubeconfig entry carries the CA and the admin's certificate.
    let kubeconfig = std::fs::read_to_string(env.kubeconfig()).unwrap();
    assert!(
        kubeconfig.contains("certificate-authority-data") && kubeconfig.contains("client-key-data"),
        "{kubeconfig}"
    );

    // `up` again: one line, exit 1, nothing disturbed.
    let before = processes(&env, name);
    let err = env.up(name, &["--replicas", "3", "--nodes", "2"]).fails_with_one_line();
    assert!(err.contains("cluster \"e2e\" already exists"), "{err}");
    assert_eq!(processes(&env, name), before);
    assert!(before.iter().all(|(_, pid, ticks)| alive(*pid, *ticks)), "{before:?}");
    assert_eq!(before.len(), 3 + 2 + 3, "3 replicas, 2 nodes, 3 pods: {before:?}");

    // down: every process (daemons and pods) gone, the directory and the
    // kubeconfig entries too.
    let down = env.rkctl(&["cluster", "down", "--name", name]).ok();
    assert!(down.stdout.contains("Deleted cluster \"e2e\""), "{}", down.stdout);
    let left: Vec<_> = before.iter().filter(|(_, pid, ticks)| alive(*pid, *ticks)).collect();
    assert!(left.is_empty(), "still running after down: {left:?}");
    assert!(!env.state().join("clusters").join(name).exists());
    let kc = kubeconfig_text(&env);
    assert!(!kc.contains("rk-e2e"), "{kc}");
    let list = env.rkctl(&["cluster", "list"]).ok();
    assert!(list.stdout.is_empty() && list.stderr.contains("No local clusters"), "{list:?}");
    // A second down is harmless.
    let again = env.rkctl(&["cluster", "down", "--name", name]).ok();
    assert!(again.stderr.contains("No cluster named \"e2e\""), "{}", again.stderr);
}

#[test]
fn a_node_that_fails_to_start_is_cleaned_up_with_its_log_kept() {
    let mut env = Env::new();
    // rk-agent is a script that fails at once; rk-server is the real one.
    let bin = fake_agent(&env, "echo 'cannot register: no such thing' >&2\nexit 3");

    env.names.push("broken".into());
    let mut cmd = env.command(RKCTL, &["cluster", "up", "--name", "broken", "--nodes", "2"]);
    let out = Run::from(cmd.env("RK_BIN_DIR", &bin).output().unwrap(), &["cluster", "up", "--name", "broken"]);
    let err = out.fails_with_one_line();
    // Both nodes fail at once; the error names whichever was seen first.
    let k = ["1", "2"]
        .into_iter()
        .find(|k| err.contains(&format!("rk-agent broken-node-{k} exited while starting (exit status: 3)")))
        .unwrap_or_else(|| panic!("no failed node named: {err}"));
    assert!(err.contains("cannot register: no such thing"), "{err}");
    let logs = err.split("its logs are kept in ").nth(1).expect("the error names where the logs are");
    let logs = PathBuf::from(logs.trim());
    assert!(std::fs::read_to_string(logs.join(format!("node-{k}.log"))).unwrap().contains("cannot register"));
    assert!(logs.join("replica-1.log").exists());
    std::fs::remove_dir_all(&logs).unwrap();
    // Nothing is left: no directory, no kubeconfig entry, and the replica is stopped.
    assert!(!env.state().join("clusters").join("broken").exists());
    assert!(!kubeconfig_text(&env).contains("rk-broken"));
    let ps = Command::new("ps").args(["-eo", "stat=,args="]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    let state = env.state().join("clusters/broken").display().to_string();
    let running: Vec<&str> = ps.lines().filter(|l| l.contains(&state) && !l.starts_with('Z')).collect();
    assert!(running.is_empty(), "{running:?}");
}

/// A bin folder with the real rk-server and a fake rk-agent running `script`.
fn fake_agent(env: &Env, script: &str) -> PathBuf {
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(Path::new(RKCTL).parent().unwrap().join("rk-server"), bin.join("rk-server")).unwrap();
    std::fs::write(bin.join("rk-agent"), format!("#!/bin/sh\n{script}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("rk-agent"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn an_interrupted_up_cleans_up() {
    let mut env = Env::new();
    // Nodes that never register keep `up` waiting until it is interrupted.
    let bin = fake_agent(&env, "while :; do sleep 1; done");
    env.names.push("intr".into());
    let child = env
        .command(RKCTL, &["cluster", "up", "--name", "intr", "--replicas", "3", "--nodes", "2"])
        .env("RK_BIN_DIR", &bin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the nodes to be started", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(env.state().join("clusters/intr/cluster.json")).ok()?;
        let rec: Value = serde_json::from_str(&text).ok()?;
        rec["nodes"].as_array()?.iter().all(|n| n["pid"].as_i64() > Some(0)).then_some(())
    });
    let daemons = processes(&env, "intr");
    assert_eq!(daemons.len(), 5, "{daemons:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let out = Run::from(out, &["cluster", "up", "--name", "intr"]);
    let err = out.fails_with_one_line();
    assert!(err.starts_with("error: interrupted; the partly started cluster was removed"), "{err}");
    if let Some(logs) = err.split("its logs are kept in ").nth(1) {
        std::fs::remove_dir_all(logs.trim()).unwrap();
    }
    let left: Vec<_> = daemons.iter().filter(|(_, pid, ticks)| alive(*pid, *ticks)).collect();
    assert!(left.is_empty(), "still running after an interrupted up: {left:?}");
    assert!(!env.state().join("clusters/intr").exists());
    assert!(!kubeconfig_text(&env).contains("rk-intr"));
}

#[test]
fn bad_input_is_one_line_and_creates_nothing() {
    let env = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (&["cluster", "up", "--replicas", "2"], "--replicas must be 1, 3 or 5"),
        (&["cluster", "up", "--nodes", "0"], "--nodes must be between 1 and 100"),
        (&["cluster", "up", "--name", "Bad_Name"], "invalid cluster name \"Bad_Name\""),
        (&["cluster", "up", "--driver", "docker", "--replicas", "4"], "--replicas must be 1, 3 or 5"),
        (&["cluster", "up", "--wait", "soon"], "invalid --wait \"soon\""),
        (&["cluster", "up", "--driver", "vm"], "invalid value 'vm' for '--driver"),
        (&["cluster", "status", "--name", "ghost"], "no cluster named \"ghost\""),
        (&["cluster", "down", "--name", "../x"], "invalid cluster name"),
    ];
    for (args, want) in cases {
        let err = env.rkctl(args).fails_with_one_line();
        assert!(err.contains(want), "rkctl {}: {err}", args.join(" "));
    }
    let down = env.rkctl(&["cluster", "down", "--name", "ghost"]).ok();
    assert!(down.stderr.contains("No cluster named \"ghost\"; nothing to delete"), "{}", down.stderr);

    // rkctl alone, without rk-server and rk-agent beside it or on PATH.
    let lonely = env.dir.path().join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    std::fs::copy(RKCTL, lonely.join("rkctl")).unwrap();
    let mut cmd = env.command(lonely.join("rkctl").to_str().unwrap(), &["cluster", "up"]);
    let out = Run::from(cmd.env("PATH", "/usr/bin:/bin").output().unwrap(), &["cluster", "up"]);
    let err = out.fails_with_one_line();
    assert!(err.contains("cannot find rk-server") && err.contains("cargo build"), "{err}");

    assert!(!env.state().join("clusters").join("rk").exists(), "bad input left a cluster directory");
    assert!(!env.kubeconfig().exists(), "bad input wrote a kubeconfig");
}
