//! End-to-end tests of the `rkctl` binary against a real `rk-server`.
//!
//! Each test starts its own single-replica rk-server (found next to the test
//! executable, `target/<profile>/rk-server`; build it first with
//! `cargo build -p rk-control-plane --bin rk-server`) on a loopback address of its own
//! (127.77.x.y, derived from the process id, so parallel test processes never share
//! one), with a temporary data directory, waits until it serves with a deadline, and
//! kills it when the test ends. rkctl runs with the admin kubeconfig `rk-server certs
//! kubeconfig` writes (TLS, a client certificate), and a temporary HOME so the user's
//! own `~/.kube/config` never leaks in.

mod common;
use common::wait_until;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

const RKCTL: &str = env!("CARGO_BIN_EXE_rkctl");

/// How long a server gets to become ready.
const READY_DEADLINE: Duration = Duration::from_secs(60);

fn rk_server_binary() -> PathBuf {
    if let Ok(dir) = std::env::var("RK_BIN_DIR") {
        return PathBuf::from(dir).join("rk-server");
    }
    // target/<profile>/deps/cli-<hash> → target/<profile>/rk-server
    let exe = std::env::current_exe().expect("test executable path");
    let mut dir = exe.parent().expect("test executable directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("rk-server")
}

/// A loopback address no other test process uses: 127.77.<pid-derived>.<pid-derived>,
/// with a per-process port counter for the servers of one process.
fn next_address() -> (String, u16) {
    static PORT: AtomicU16 = AtomicU16::new(7443);
    let pid = std::process::id();
    let ip = format!("127.77.{}.{}", (pid / 250) % 250, pid % 250 + 1);
    (ip, PORT.fetch_add(2, Ordering::Relaxed))
}

/// One rk-server process, killed on drop.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    /// `ip:port` of the client port.
    addr: String,
}

impl Server {
    fn start() -> Server {
        let bin = rk_server_binary();
        assert!(
            bin.exists(),
            "{} is missing; build it first: cargo build -p rk-control-plane --bin rk-server",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let (ip, port) = next_address();
        let addr = format!("{ip}:{port}");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = Command::new(&bin)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", &addr, "--peer-listen", &format!("{ip}:{}", port + 1)])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rk-server");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut server = Server { child, dir, kubeconfig, addr: addr.clone() };
        server.write_kubeconfig(&addr);
        server.wait_ready(&addr);
        server
    }

    /// Once the server has made its CA, has `rk-server certs kubeconfig` write the
    /// admin's kubeconfig (the CA and a client certificate, as a user gets them).
    fn write_kubeconfig(&mut self, addr: &str) {
        let ca = self.dir.path().join("data/pki/ca.crt");
        let deadline = Instant::now() + READY_DEADLINE;
        while !ca.exists() {
            if let Some(status) = self.child.try_wait().expect("poll rk-server") {
                panic!("rk-server exited early ({status}); its log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "rk-server made no CA in {READY_DEADLINE:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new(rk_server_binary())
            .args(["certs", "kubeconfig", "--name", "test", "--server", &format!("https://{addr}")])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--out")
            .arg(&self.kubeconfig)
            .output()
            .expect("run rk-server certs kubeconfig");
        assert!(out.status.success(), "rk-server certs kubeconfig: {}", String::from_utf8_lossy(&out.stderr));
        // The same credentials as files, for requests made without rkctl.
        let out = Command::new(rk_server_binary())
            .args(["certs", "issue"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--out-dir")
            .arg(self.dir.path().join("creds"))
            .output()
            .expect("run rk-server certs issue");
        assert!(out.status.success(), "rk-server certs issue: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn wait_ready(&mut self, addr: &str) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll rk-server") {
                panic!("rk-server exited early ({status}); its log:\n{}", self.log());
            }
            if self.readyz() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rk-server at {addr} not ready after {READY_DEADLINE:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's `/metrics`, asked over TLS with the admin's certificate (empty if
    /// the request fails).
    fn metrics(&self) -> String {
        use rustls::pki_types::pem::PemObject;
        let creds = self.dir.path().join("creds");
        let pem = |name: &str| std::fs::read(creds.join(name)).expect("credentials written at start");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from_pem_slice(&pem("ca.crt")).expect("CA")).expect("CA");
        let config = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![rustls::pki_types::CertificateDer::from_pem_slice(&pem("admin.crt")).expect("cert")],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem("admin.key")).expect("key"),
            )
            .expect("client certificate");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("TLS client");
        let Ok(tcp) = TcpStream::connect(&self.addr) else { return String::new() };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let ask = format!("GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
        if tls.write_all(ask.as_bytes()).is_err() {
            return String::new();
        }
        let mut resp = Vec::new();
        let _ = tls.read_to_end(&mut resp);
        String::from_utf8_lossy(&resp).into_owned()
    }

    /// The API answers over TLS and its bootstrap namespaces exist (what `/readyz`
    /// waits for), asked through rkctl with the admin's kubeconfig.
    fn readyz(&self) -> bool {
        self.command(&["get", "namespace", "kube-system", "-o", "name"]).output().is_ok_and(|o| o.status.success())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A directory for the test's manifests.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write manifest");
        p.display().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(RKCTL);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn rkctl(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run rkctl"))
    }

    fn rkctl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self.command(args).stdin(Stdio::piped()).spawn().expect("run rkctl");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        Run::from(child.wait_with_output().expect("wait rkctl"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one rkctl run printed.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "rkctl failed:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    fn failed(self) -> Self {
        assert_eq!(
            self.code, 1,
            "rkctl should have failed with exit code 1:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

const APP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels: {app: web}
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
";

#[test]
fn apply_get_describe_delete() {
    let s = Server::start();
    let app = s.write("app.yaml", APP);

    // apply: created, then unchanged, then configured after an edit.
    let r = s.rkctl(&["apply", "-f", &app]).ok();
    assert_eq!(r.stdout, "configmap/web-config created\ndeployment.apps/web created\n");
    let r = s.rkctl(&["apply", "-f", &app]).ok();
    assert_eq!(r.stdout, "configmap/web-config unchanged\ndeployment.apps/web unchanged\n");
    s.write("app.yaml", &APP.replace("replicas: 2", "replicas: 3"));
    let r = s.rkctl(&["apply", "-f", &app, "--dry-run=server"]).ok();
    assert_eq!(
        r.stdout,
        "configmap/web-config unchanged (server dry run)\ndeployment.apps/web configured (server dry run)\n"
    );
    let r = s.rkctl(&["apply", "-f", &app]).ok();
    assert_eq!(r.stdout, "configmap/web-config unchanged\ndeployment.apps/web configured\n");

    // get: the server's table, aligned like kubectl's.
    let r = s.rkctl(&["get", "deploy"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "NAME   READY   UP-TO-DATE   AVAILABLE   AGE", "{}", r.stdout);
    // No node runs the pods, so none is ready (the controllers do create them).
    assert!(lines[1].starts_with("web    0/3     "), "{}", r.stdout);
    assert_eq!(lines.len(), 2);
    let r = s.rkctl(&["get", "deployments.apps", "web", "-o", "wide"]).ok();
    assert!(
        r.stdout.starts_with("NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES       SELECTOR\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("   nginx        nginx:1.25   app=web\n"), "{}", r.stdout);

    // -o yaml / json / name.
    let r = s.rkctl(&["get", "deploy/web", "-o", "yaml"]).ok();
    assert!(r.stdout.starts_with("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"), "{}", r.stdout);
    assert!(r.stdout.contains("  replicas: 3\n") && !r.stdout.contains("managedFields"), "{}", r.stdout);
    // Every namespace also holds the cluster CA's ConfigMap, kube-root-ca.crt (as in
    // Kubernetes), first by name.
    let r = s.rkctl(&["get", "cm", "-o", "json"]).ok();
    let list: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "kube-root-ca.crt");
    assert_eq!(list["items"][1]["metadata"]["name"], "web-config");
    assert_eq!(list["items"][1]["data"]["greeting"], "hello");
    assert!(r.stdout.starts_with("{\n    \"apiVersion\": \"v1\",\n"), "kubectl's four-space JSON: {}", r.stdout);
    let r = s.rkctl(&["get", "deploy,cm", "-o", "name"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web\nconfigmap/kube-root-ca.crt\nconfigmap/web-config\n");

    // -l selects; an empty result says so on stderr.
    let r = s.rkctl(&["get", "deploy", "-l", "tier=front", "-o", "name"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web\n");
    let r = s.rkctl(&["get", "deploy", "-l", "tier=back"]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", "No resources found in default namespace.\n"));

    // -A adds the NAMESPACE column; several kinds print kind/name.
    let r = s.rkctl(&["get", "deploy,cm", "-A"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE   NAME                  READY"), "{}", r.stdout);
    assert!(lines[1].starts_with("default     deployment.apps/web   0/3"), "{}", r.stdout);
    assert_eq!(lines[2], "", "a blank line between the kinds' tables");
    // Every namespace has its kube-root-ca.crt, which widens the ConfigMaps' columns.
    let header: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(header, ["NAMESPACE", "NAME", "DATA", "AGE"], "{}", r.stdout);
    let rows: Vec<Vec<&str>> = lines[4..].iter().map(|l| l.split_whitespace().take(3).collect()).collect();
    assert!(rows.contains(&vec!["default", "configmap/web-config", "1"]), "{}", r.stdout);
    assert!(rows.contains(&vec!["kube-system", "configmap/kube-root-ca.crt", "1"]), "{}", r.stdout);
    let r = s.rkctl(&["get", "all"]).ok();
    assert!(r.stdout.contains("deployment.apps/web   0/3"), "{}", r.stdout);

    // describe: kubectl's layout, ending with the events.
    let r = s.rkctl(&["describe", "deployment", "web"]).ok();
    for want in [
        "Name:                   web\n",
        "Namespace:              default\n",
        "Labels:                 app=web\n                        tier=front\n",
        // (Controllers create the pods; no node runs them, so none is available.)
        "Replicas:               3 desired | ",
        "0 available",
        "RollingUpdateStrategy:  25% max unavailable, 25% max surge\n",
        "  Containers:\n   nginx:\n    Image:         nginx:1.25\n    Port:          80/TCP\n",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in:\n{}", r.stdout);
    }
    // The controllers' events (scaling the new ReplicaSet) end the description.
    assert!(r.stdout.contains("\nEvents:"), "{}", r.stdout);
    let r = s.rkctl(&["describe", "cm/web-config"]).ok();
    assert!(r.stdout.contains("Data\n====\ngreeting:\n----\nhello\n"), "{}", r.stdout);

    // delete -f removes both; afterwards nothing is left.
    let r = s.rkctl(&["delete", "-f", &app]).ok();
    assert_eq!(r.stdout, "configmap \"web-config\" deleted\ndeployment.apps \"web\" deleted\n");
    let r = s.rkctl(&["get", "deploy,cm", "--field-selector=metadata.name!=kube-root-ca.crt"]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", "No resources found in default namespace.\n"));
}

#[test]
fn namespaces_and_events() {
    let s = Server::start();
    let r = s.rkctl(&["create", "namespace", "team-a"]).ok();
    assert_eq!(r.stdout, "namespace/team-a created\n");
    let r = s.rkctl(&["create", "namespace", "team-a"]).failed();
    assert_eq!(r.stderr_lines(), [r#"Error from server (AlreadyExists): namespaces "team-a" already exists"#]);
    let r = s.rkctl(&["get", "ns", "team-a", "--no-headers"]).ok();
    assert!(r.stdout.starts_with("team-a   Active   "), "{}", r.stdout);

    // The file's namespace wins over -n; without one, -n is used.
    let cms = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
               apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: default}\n";
    let r = s.rkctl_stdin(&["apply", "-n", "team-a", "-f", "-"], cms).ok();
    assert_eq!(r.stdout, "configmap/a created\nconfigmap/b created\n");
    let r = s.rkctl(&["get", "cm", "-A", "--no-headers"]).ok();
    let rows: Vec<Vec<&str>> = r.stdout.lines().map(|l| l.split_whitespace().take(2).collect()).collect();
    assert!(rows.contains(&vec!["team-a", "a"]) && rows.contains(&vec!["default", "b"]), "{}", r.stdout);
    let r = s.rkctl(&["get", "cm", "a", "-n", "team-a", "-o", "name"]).ok();
    assert_eq!(r.stdout, "configmap/a\n");

    // describe shows the object's events, and only its own.
    let uid = {
        let r = s.rkctl(&["get", "cm", "a", "-n", "team-a", "-o", "json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
        v["metadata"]["uid"].as_str().expect("uid").to_string()
    };
    let now = "2026-01-01T00:00:00Z";
    let events = format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: a.1, namespace: team-a}}\n\
         involvedObject: {{apiVersion: v1, kind: ConfigMap, name: a, namespace: team-a, uid: \"{uid}\"}}\n\
         type: Normal\nreason: Checked\nmessage: looks fine\nsource: {{component: tester}}\n\
         firstTimestamp: \"{now}\"\nlastTimestamp: \"{now}\"\ncount: 1\n---\n\
         apiVersion: v1\nkind: Event\nmetadata: {{name: b.1, namespace: team-a}}\n\
         involvedObject: {{apiVersion: v1, kind: ConfigMap, name: b, namespace: team-a, uid: other}}\n\
         type: Warning\nreason: Unrelated\nmessage: not about a\nsource: {{component: tester}}\n"
    );
    s.rkctl_stdin(&["apply", "-f", "-"], &events).ok();
    let r = s.rkctl(&["describe", "configmap", "a", "-n", "team-a"]).ok();
    let tail: Vec<&str> = r.stdout.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    assert_eq!(tail[0], "Events:");
    assert_eq!(tail[1].split_whitespace().collect::<Vec<_>>(), ["Type", "Reason", "Age", "From", "Message"]);
    assert!(tail[3].starts_with("  Normal  Checked  ") && tail[3].ends_with("  tester  looks fine"), "{}", r.stdout);
    assert!(!r.stdout.contains("Unrelated"), "{}", r.stdout);
}

#[test]
fn errors_are_one_line_with_exit_code_1() {
    let s = Server::start();

    // A manifest the server rejects: the Status with its causes, on one line.
    let bad = s.write(
        "bad.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  replicas: -1\n  \
         selector: {matchLabels: {app: bad}}\n  template:\n    metadata: {labels: {app: bad}}\n    \
         spec: {containers: [{name: c}]}\n",
    );
    let r = s.rkctl(&["apply", "-f", &bad]).failed();
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].starts_with(&format!("Error from server (Invalid): error when applying {bad:?}: ")),
        "{}",
        r.stderr
    );
    assert!(
        lines[0].contains("spec.replicas: Invalid value: -1") && lines[0].contains("image: Required value"),
        "{}",
        r.stderr
    );

    // A manifest that is not YAML.
    let r = s.rkctl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: [\n").failed();
    assert_eq!(r.stderr_lines().len(), 1);
    assert!(r.stderr.starts_with("error: error parsing STDIN: "), "{}", r.stderr);
    let r = s.rkctl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nmetadata: {name: x}\n").failed();
    assert_eq!(r.stderr, "error: error validating \"STDIN\": document 1: kind not set\n");

    // Unknown kinds and resource types.
    let r = s
        .rkctl_stdin(&["apply", "-f", "-"], "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
        .failed();
    assert!(
        r.stderr.starts_with("error: no matches for kind \"Widget\" in version \"example.com/v1\""),
        "{}",
        r.stderr
    );
    let r = s.rkctl(&["get", "depoy"]).failed();
    assert_eq!(r.stderr, "error: the server doesn't have a resource type \"depoy\"\n");

    // NotFound is reported and the other names are still deleted.
    s.rkctl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep-going}\n").ok();
    let r = s.rkctl(&["delete", "cm", "missing", "keep-going"]).failed();
    assert_eq!(r.stdout, "configmap \"keep-going\" deleted\n");
    assert_eq!(r.stderr, "Error from server (NotFound): configmaps \"missing\" not found\n");
    let r = s.rkctl(&["get", "cm", "missing"]).failed();
    assert_eq!(r.stderr, "Error from server (NotFound): configmaps \"missing\" not found\n");

    // Bad flags: one line and a pointer to the help.
    let r = s.rkctl(&["get", "pods", "--bogus"]).failed();
    assert_eq!(r.stderr_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: unexpected argument '--bogus' found"), "{}", r.stderr);
}

#[test]
fn unreachable_server_and_kubeconfig_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ip, port) = next_address();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: down\n  cluster: {{server: \"http://{ip}:{port}\"}}\n\
             - name: other\n  cluster: {{server: \"http://127.0.0.1:1\", certificate-authority-data: Zm9v}}\n\
             contexts:\n- name: down\n  context: {{cluster: down, user: me}}\n\
             - name: other\n  context: {{cluster: other, user: me, namespace: apps}}\n\
             users:\n- name: me\n  user: {{token: s3cret}}\ncurrent-context: down\n"
        ),
    )
    .expect("write kubeconfig");
    let run = |args: &[&str]| -> Run {
        Run::from(
            Command::new(RKCTL)
                .args(args)
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", dir.path())
                .output()
                .expect("run rkctl"),
        )
    };

    // Nothing listens there: one line naming the server, with a hint.
    let r = run(&["get", "pods"]).failed();
    assert_eq!(
        r.stderr,
        format!(
            "error: cannot reach the API server at http://{ip}:{port}: connection refused (is the cluster running? check your kubeconfig)\n"
        )
    );

    let r = run(&["config", "current-context"]).ok();
    assert_eq!(r.stdout, "down\n");
    let r = run(&["config", "get-contexts"]).ok();
    assert_eq!(
        r.stdout,
        "CURRENT   NAME    CLUSTER   AUTHINFO   NAMESPACE\n*         down    down      me         \n          other   other     me         apps\n"
    );
    let r = run(&["config", "use-context", "other"]).ok();
    assert_eq!(r.stdout, "Switched to context \"other\".\n");
    assert_eq!(run(&["config", "current-context"]).ok().stdout, "other\n");
    let r = run(&["config", "use-context", "nope"]).failed();
    assert_eq!(
        r.stderr,
        "error: context \"nope\" does not exist in the kubeconfig; `rkctl config get-contexts` lists them\n"
    );

    let r = run(&["config", "view"]).ok();
    assert!(r.stdout.contains("token: REDACTED") && !r.stdout.contains("s3cret"), "{}", r.stdout);
    assert!(r.stdout.contains("certificate-authority-data: DATA+OMITTED"), "{}", r.stdout);
    let r = run(&["config", "view", "--raw", "--minify"]).ok();
    assert!(r.stdout.contains("token: s3cret") && !r.stdout.contains("name: down"), "{}", r.stdout);

    let r = run(&["--kubeconfig", "/does/not/exist", "get", "pods"]).failed();
    assert!(r.stderr.starts_with("error: cannot read kubeconfig /does/not/exist: "), "{}", r.stderr);
}

#[test]
fn watch_prints_changes_until_interrupted() {
    let s = Server::start();
    let cm = |value: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: watched}}\ndata: {{v: \"{value}\"}}\n")
    };
    s.rkctl_stdin(&["apply", "-f", "-"], &cm("1")).ok();

    // (Without the namespace's kube-root-ca.crt, whose long name would widen the columns.)
    let mut child = s
        .command(&["get", "cm", "-w", "--field-selector=metadata.name!=kube-root-ca.crt"])
        .spawn()
        .expect("start rkctl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |what: &str| -> String {
        rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("no output line for {what} within 20s"))
    };
    assert_eq!(next_line("the header"), "NAME      DATA   AGE");
    assert!(next_line("the first row").starts_with("watched   1      "));

    // A change arrives as a new row; a new object too.
    s.rkctl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: second}\ndata: {a: b, c: d}\n",
    )
    .ok();
    let row = next_line("the new object");
    assert!(row.starts_with("second    2      "), "{row:?}");
    s.rkctl(&["delete", "cm", "watched"]).ok();
    let row = next_line("the deletion");
    assert!(row.starts_with("watched   1      "), "{row:?}");

    // Still streaming: it has not exited on its own.
    assert!(child.try_wait().expect("poll").is_none(), "rkctl get -w exited by itself");
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        assert!(Instant::now() < deadline, "rkctl get -w did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "Ctrl-C ends a watch successfully");
}

/// `rkctl get TYPE/NAME -o json`, parsed.
fn get_json(s: &Server, what: &str) -> serde_json::Value {
    serde_json::from_str(&s.rkctl(&["get", what, "-o", "json"]).ok().stdout).expect("JSON output")
}

#[test]
fn scale_and_rollout_history_undo_pause_resume_restart() {
    let s = Server::start();
    let app = s.write("app.yaml", APP);
    s.rkctl(&["apply", "-f", &app]).ok();

    // The controller makes revision 1; there is nothing before it to undo to.
    let history = wait_until("revision 1", Duration::from_secs(20), || {
        let r = s.rkctl(&["rollout", "history", "deploy/web"]);
        (r.code == 0 && r.stdout.contains("\n1 ")).then_some(r.stdout)
    });
    assert_eq!(history, "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n\n");
    let r = s.rkctl(&["rollout", "undo", "deployment", "web"]).failed();
    assert_eq!(
        r.stderr,
        "error: no rollout history found for deployment.apps/web: there is no earlier revision to go back to\n"
    );

    // scale: the scale subresource, with a precondition on the current count.
    let r = s.rkctl(&["scale", "deploy/web", "--replicas", "5"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web scaled\n");
    assert_eq!(get_json(&s, "deploy/web")["spec"]["replicas"], 5);
    let r = s.rkctl(&["scale", "deploy", "web", "--replicas", "3", "--current-replicas", "2"]).failed();
    assert_eq!(
        r.stderr,
        "error: Expected replicas to be 2, was 5; nothing was changed (drop --current-replicas to scale anyway)\n"
    );
    s.rkctl(&["scale", "deploy/web", "--replicas=3", "--current-replicas=5"]).ok();
    assert_eq!(get_json(&s, "deploy/web")["spec"]["replicas"], 3);
    let rs = wait_until("the ReplicaSet", Duration::from_secs(20), || {
        let out = s.rkctl(&["get", "rs", "-o", "name"]).ok().stdout;
        out.lines().next().map(str::to_string)
    });
    let r = s.rkctl(&["scale", &rs, "--replicas", "3"]).ok();
    assert_eq!(r.stdout, format!("{rs} scaled\n"));
    let r = s.rkctl(&["scale", "deploy/web", "--replicas", "-1"]).failed();
    assert_eq!(r.stderr, "error: invalid --replicas -1: the number of replicas must be 0 or more\n");
    let r = s.rkctl(&["scale", "deploy/nope", "--replicas", "1"]).failed();
    assert_eq!(r.stderr, "Error from server (NotFound): deployments.apps \"nope\" not found\n");
    let r = s.rkctl(&["scale", "deploy/web"]).failed();
    assert!(
        r.stderr.starts_with("error: the following required arguments were not provided: --replicas"),
        "{}",
        r.stderr
    );

    // A strategic merge patch changes the image (containers merge by name, so the
    // port stays); the same patch again changes nothing.
    let new_image = r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}}"#;
    let r = s.rkctl(&["patch", "deploy/web", "-p", new_image]).ok();
    assert_eq!(r.stdout, "deployment.apps/web patched\n");
    let d = get_json(&s, "deploy/web");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"], 80);
    let r = s.rkctl(&["patch", "deploy/web", "-p", new_image]).ok();
    assert_eq!(r.stdout, "deployment.apps/web patched (no change)\n");

    let history = wait_until("revision 2", Duration::from_secs(20), || {
        let out = s.rkctl(&["rollout", "history", "deploy/web"]).ok().stdout;
        out.contains("\n2 ").then_some(out)
    });
    assert_eq!(history, "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n");
    let r = s.rkctl(&["rollout", "history", "deploy/web", "--revision", "1"]).ok();
    assert!(r.stdout.starts_with("deployment.apps/web with revision #1\nPod Template:\n  Labels:"), "{}", r.stdout);
    assert!(
        r.stdout.contains("Image:         nginx:1.25\n") && !r.stdout.contains("pod-template-hash"),
        "{}",
        r.stdout
    );
    let r = s.rkctl(&["rollout", "history", "deploy/web", "--revision", "7"]).failed();
    assert!(r.stderr.starts_with("error: unable to find revision 7 of deployment.apps/web"), "{}", r.stderr);

    // undo goes back to revision 1's template, which becomes revision 3.
    let r = s.rkctl(&["rollout", "undo", "deploy/web"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web rolled back\n");
    assert_eq!(get_json(&s, "deploy/web")["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25");
    let history = wait_until("revision 3", Duration::from_secs(20), || {
        let out = s.rkctl(&["rollout", "history", "deploy/web"]).ok().stdout;
        out.contains("\n3 ").then_some(out)
    });
    assert_eq!(history, "deployment.apps/web \nREVISION  CHANGE-CAUSE\n2         <none>\n3         <none>\n\n");
    let r = s.rkctl(&["rollout", "undo", "deploy/web", "--to-revision", "3"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web skipped rollback (current template already matches revision 3)\n");
    let r = s.rkctl(&["rollout", "undo", "deploy/web", "--to-revision", "9"]).failed();
    assert_eq!(
        r.stderr,
        "error: unable to find specified revision 9 in history; \"rkctl rollout history deployment.apps/web\" lists them\n"
    );

    // pause / resume, and what a paused deployment refuses.
    let r = s.rkctl(&["rollout", "pause", "deploy/web"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web paused\n");
    assert_eq!(get_json(&s, "deploy/web")["spec"]["paused"], true);
    let r = s.rkctl(&["rollout", "pause", "deploy/web"]).failed();
    assert_eq!(
        r.stderr,
        "error: deployments.apps \"web\" is already paused; \"rkctl rollout resume deployment.apps/web\" resumes it\n"
    );
    let r = s.rkctl(&["rollout", "undo", "deploy/web"]).failed();
    assert!(r.stderr.starts_with("error: you cannot rollback a paused deployment; resume it first"), "{}", r.stderr);
    let r = s.rkctl(&["rollout", "restart", "deploy/web"]).failed();
    assert!(r.stderr.starts_with("error: deployments.apps \"web\" can't restart paused deployment"), "{}", r.stderr);
    let r = s.rkctl(&["rollout", "resume", "deploy/web"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web resumed\n");
    assert!(get_json(&s, "deploy/web")["spec"].get("paused").is_none_or(|p| p == false));
    let r = s.rkctl(&["rollout", "resume", "deploy/web"]).failed();
    assert_eq!(r.stderr, "error: deployments.apps \"web\" is not paused\n");

    // restart stamps the template, which starts a new revision.
    let r = s.rkctl(&["rollout", "restart", "deploy/web"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web restarted\n");
    let d = get_json(&s, "deploy/web");
    let stamp = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].as_str();
    assert!(stamp.is_some_and(|t| t.ends_with('Z') && t.len() == 20), "{d}");
    wait_until("revision 4", Duration::from_secs(20), || {
        s.rkctl(&["rollout", "history", "deploy/web"]).ok().stdout.contains("\n4 ").then_some(())
    });

    // status: no node runs the pods, so the rollout never completes.
    let r = s.rkctl(&["rollout", "status", "deploy/web", "--watch=false"]).ok();
    assert!(r.stdout.starts_with("Waiting for deployment"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    let r = s.rkctl(&["rollout", "status", "deploy/web", "--timeout", "1s"]).failed();
    assert!(r.stdout.starts_with("Waiting for deployment "), "{}", r.stdout);
    assert_eq!(
        r.stderr,
        "error: timed out after 1s waiting for deployment \"web\" to finish rolling out; raise --timeout, or see why with \"rkctl describe deployment web\"\n"
    );
    let r = s.rkctl(&["rollout", "status", "cm/web-config"]).failed();
    assert_eq!(
        r.stderr,
        "error: rollout status is implemented for deployments only, not configmaps; use deployment/NAME\n"
    );
    let r = s.rkctl(&["rollout", "status", "deploy/nope"]).failed();
    assert_eq!(r.stderr, "Error from server (NotFound): deployments.apps \"nope\" not found\n");
}

#[test]
fn rollout_status_fails_when_the_progress_deadline_passes() {
    let s = Server::start();
    // No node runs the pods, so no progress is made; the controller gives up after 2 s.
    let stuck = APP.replace("  replicas: 2\n", "  replicas: 2\n  progressDeadlineSeconds: 2\n");
    s.rkctl_stdin(&["apply", "-f", "-"], &stuck).ok();
    let started = Instant::now();
    let r = s.rkctl(&["rollout", "status", "deployment/web", "--timeout", "60s"]).failed();
    assert!(started.elapsed() < Duration::from_secs(50), "took {:?}", started.elapsed());
    assert!(r.stdout.contains("Waiting for deployment \"web\" rollout to finish: "), "{}", r.stdout);
    assert_eq!(
        r.stderr,
        "error: deployment \"web\" exceeded its progress deadline; see why with \"rkctl describe deployment web\"\n"
    );
}

#[test]
fn label_annotate_and_patch() {
    let s = Server::start();
    let app = s.write("app.yaml", APP);
    s.rkctl(&["apply", "-f", &app]).ok();
    let labels = |what: &str| get_json(&s, what)["metadata"]["labels"].clone();

    // label: a different value needs --overwrite; the same value changes nothing.
    let r = s.rkctl(&["label", "deploy", "web", "tier=back"]).failed();
    assert_eq!(r.stderr, "error: 'tier' already has a value (front), and --overwrite is false\n");
    let r = s.rkctl(&["label", "deploy", "web", "tier=back", "--overwrite"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web labeled\n");
    assert_eq!(labels("deploy/web")["tier"], "back");
    let r = s.rkctl(&["label", "deploy/web", "tier=back"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web not labeled\n");
    let r = s.rkctl(&["label", "deploy/web", "tier-"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web unlabeled\n");
    assert!(labels("deploy/web").get("tier").is_none());
    let r = s.rkctl(&["label", "deploy/web", "nope-"]).ok();
    // (kubectl says so on stdout too.)
    assert_eq!(r.stdout, "label \"nope\" not found.\ndeployment.apps/web not labeled\n");
    let r = s.rkctl(&["label", "cm", "-l", "app=web", "owner=team-a", "--dry-run=server"]).ok();
    assert_eq!(r.stdout, "configmap/web-config labeled (server dry run)\n");
    assert!(labels("cm/web-config").get("owner").is_none());
    let r = s.rkctl(&["label", "cm", "-l", "app=web", "owner=team-a"]).ok();
    assert_eq!(r.stdout, "configmap/web-config labeled\n");
    assert_eq!(labels("cm/web-config")["owner"], "team-a");

    // Bad label changes: one line, exit code 1, nothing sent.
    let r = s.rkctl(&["label", "deploy/web", "bad key=1"]).failed();
    assert!(r.stderr.starts_with("error: invalid label spec \"bad key=1\": "), "{}", r.stderr);
    assert_eq!(r.stderr_lines().len(), 1);
    let r = s.rkctl(&["label", "deploy/web"]).failed();
    assert!(r.stderr.starts_with("error: at least one label update is required"), "{}", r.stderr);
    let r = s.rkctl(&["label", "deploy/nope", "a=b"]).failed();
    assert_eq!(r.stderr, "Error from server (NotFound): deployments.apps \"nope\" not found\n");

    // annotate: free-text values; --overwrite to change one.
    let r = s.rkctl(&["annotate", "deploy/web", "note=hello world"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web annotated\n");
    let r = s.rkctl(&["annotate", "deploy/web", "note=bye"]).failed();
    assert_eq!(
        r.stderr,
        "error: --overwrite is false but found the following declared annotation(s): 'note' already has a value (hello world)\n"
    );
    s.rkctl(&["annotate", "deploy/web", "note=bye", "--overwrite"]).ok();
    assert_eq!(get_json(&s, "deploy/web")["metadata"]["annotations"]["note"], "bye");
    s.rkctl(&["annotate", "deploy/web", "note-"]).ok();
    assert!(get_json(&s, "deploy/web")["metadata"]["annotations"].get("note").is_none());

    // patch: merge and JSON patches; -o name; the server's errors on one line.
    let r = s.rkctl(&["patch", "cm", "web-config", "--type", "merge", "-p", r#"{"data":{"extra":"1"}}"#]).ok();
    assert_eq!(r.stdout, "configmap/web-config patched\n");
    assert_eq!(get_json(&s, "cm/web-config")["data"]["extra"], "1");
    let r = s
        .rkctl(&[
            "patch",
            "cm/web-config",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/data/extra"}]"#,
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(r.stdout, "configmap/web-config\n");
    assert!(get_json(&s, "cm/web-config")["data"].get("extra").is_none());
    let r = s.rkctl(&["patch", "cm/web-config", "-p", "data:\n  yaml: works\n"]).ok();
    assert_eq!(r.stdout, "configmap/web-config patched\n");
    let r = s
        .rkctl(&["patch", "cm/web-config", "--type=json", "-p", r#"[{"op":"remove","path":"/data/absent"}]"#])
        .failed();
    assert_eq!(r.stderr_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("Error from server"), "{}", r.stderr);
    let r = s.rkctl(&["patch", "cm/web-config"]).failed();
    assert_eq!(r.stderr, "error: must specify --patch (-p) or --patch-file containing the contents of the patch\n");
    let r = s.rkctl(&["patch", "cm/web-config", "-p", "{not json"]).failed();
    assert!(r.stderr.starts_with("error: unable to parse the patch \"{not json\": "), "{}", r.stderr);
    assert_eq!(r.stderr_lines().len(), 1, "{}", r.stderr);
    let r = s.rkctl(&["patch", "cm/nope", "-p", "{}"]).failed();
    assert_eq!(r.stderr, "Error from server (NotFound): configmaps \"nope\" not found\n");
}

/// `rkctl edit` with a scripted editor: a change is saved; no change, or an emptied file,
/// cancels; a change the server refuses reopens the editor with the error on top; the
/// same refused change saved again gives up, keeping a copy.
#[test]
fn edit_saves_through_the_editor_and_reopens_on_errors() {
    let s = Server::start();
    let app = s.write("app.yaml", APP);
    s.rkctl(&["apply", "-f", &app]).ok();
    let editor = |name: &str, script: &str| {
        let path = s.path(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write the editor");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        path.display().to_string()
    };
    let edit = |editor: &str, args: &[&str]| {
        let mut cmd = s.command(&[&["edit"], args].concat());
        cmd.env("KUBE_EDITOR", editor).env("EDITOR", "false");
        Run::from(cmd.output().expect("run rkctl"))
    };
    let replicas = || get_json(&s, "deploy/web")["spec"]["replicas"].clone();

    let r = edit(&editor("more.sh", r#"sed -i 's/replicas: 2/replicas: 3/' "$1""#), &["deploy/web"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web edited\n");
    assert_eq!(replicas(), 3);
    for (name, script) in [("same.sh", "true"), ("empty.sh", r#": > "$1""#)] {
        let r = edit(&editor(name, script), &["deployment", "web"]).ok();
        assert_eq!(r.stderr, "Edit cancelled, no changes made.\n", "{name}");
        assert_eq!(r.stdout, "", "{name}");
    }
    // JSON on request; comments on top either way.
    let seen = s.path("seen.json");
    let r = edit(&editor("json.sh", &format!(r#"cp "$1" {}"#, seen.display())), &["cm/web-config", "-o", "json"]).ok();
    assert_eq!(r.stderr, "Edit cancelled, no changes made.\n");
    let text = std::fs::read_to_string(&seen).expect("the editor saw the file");
    assert!(text.starts_with("# Please edit the object below."), "{text}");
    assert!(text.contains("\"greeting\": \"hello\""), "{text}");

    // Refused (replicas may not be negative): reopened with the error, then fixed.
    let errors = s.path("errors.txt");
    let fixing = editor(
        "fixing.sh",
        &format!(
            r#"if grep -q '^# Error from server' "$1"; then grep '^# Error' "$1" > {errors}; sed -i 's/replicas: -1/replicas: 4/' "$1"; else sed -i 's/replicas: 3/replicas: -1/' "$1"; fi"#,
            errors = errors.display()
        ),
    );
    let r = edit(&fixing, &["deploy/web"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web edited\n");
    assert_eq!(replicas(), 4);
    let shown = std::fs::read_to_string(&errors).expect("the editor was reopened with the error");
    assert!(shown.contains("Invalid") && shown.contains("spec.replicas"), "{shown}");
    // Refused, and saved again unchanged: the command fails, the edit is kept.
    let stubborn = editor("stubborn.sh", r#"sed -i 's/replicas: 4/replicas: -1/' "$1""#);
    let r = edit(&stubborn, &["deploy/web"]).failed();
    let lines = r.stderr_lines();
    assert!(lines[0].starts_with("error: A copy of your changes has been stored to \""), "{}", r.stderr);
    assert!(lines[1].starts_with("Error from server (Invalid)"), "{}", r.stderr);
    let kept = lines[0].split('"').nth(1).expect("the copy's path");
    assert!(std::fs::read_to_string(kept).expect("the copy").contains("replicas: -1"));
    let _ = std::fs::remove_file(kept);
    assert_eq!(replicas(), 4);
    // Bad use: no name, an unknown object, a failing editor.
    let r = s.rkctl(&["edit", "deploy"]).failed();
    assert!(r.stderr.starts_with("error: no name was given for deployments.apps"), "{}", r.stderr);
    let r = edit(&editor("noop.sh", "true"), &["deploy/nope"]).failed();
    assert_eq!(r.stderr, "Error from server (NotFound): deployments.apps \"nope\" not found\n");
    let r = edit(&editor("broken.sh", "exit 3"), &["deploy/web"]).failed();
    assert!(r.stderr.contains("exited with exit status: 3; nothing was changed"), "{}", r.stderr);
}

#[test]
fn logs_exec_and_top_without_running_pods() {
    let s = Server::start();
    let app = s.write("app.yaml", APP);
    s.rkctl(&["apply", "-f", &app]).ok();
    wait_until("the deployment's pods", Duration::from_secs(20), || {
        (s.rkctl(&["get", "pods", "-o", "name"]).ok().stdout.lines().count() == 2).then_some(())
    });

    // A Deployment picks one of its pods (saying which); none is on a node yet.
    let r = s.rkctl(&["logs", "deploy/web"]).failed();
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert!(lines[0].starts_with("Found 2 pods, using pod/web-"), "{}", r.stderr);
    assert!(lines[1].starts_with("Error from server (BadRequest): pod web-"), "{}", r.stderr);
    assert!(lines[1].ends_with(" is not scheduled to a node yet"), "{}", r.stderr);
    let r = s.rkctl(&["logs", "missing"]).failed();
    assert_eq!(r.stderr, "Error from server (NotFound): pods \"missing\" not found\n");
    let r = s.rkctl(&["logs", "cm/web-config"]).failed();
    assert_eq!(
        r.stderr,
        "error: cannot get logs of configmap/web-config: it has no pod selector; name a pod or a workload (deploy/NAME, rs/NAME, job/NAME)\n"
    );
    let r = s.rkctl(&["logs", "deploy/web", "-c", "sidecar"]).failed();
    let last = r.stderr_lines().last().copied().unwrap_or_default();
    assert!(last.starts_with("error: container sidecar is not valid for pod web-"), "{}", r.stderr);
    assert!(last.ends_with("; choose one of: nginx"), "{}", r.stderr);
    let r = s.rkctl(&["logs", "--since", "soon", "x"]).failed();
    assert_eq!(r.stderr, "error: invalid --since \"soon\"; use a positive duration like 30s, 5m or 2h\n");
    let r = s.rkctl(&["logs", "--tail", "-5", "x"]).failed();
    assert_eq!(r.stderr, "error: invalid --tail -5; use a number of lines, or -1 for all\n");

    let r = s.rkctl(&["exec", "deploy/web"]).failed();
    assert_eq!(
        r.stderr,
        "error: you must specify at least one command for the container, after \"--\", e.g. rkctl exec web -- ls /\n"
    );
    let r = s.rkctl(&["exec", "deploy/web", "ls", "-l"]).failed();
    assert_eq!(
        r.stderr,
        "error: the command to run goes after \"--\", e.g. rkctl exec POD -- ls -l (see 'rkctl exec --help')\n"
    );
    let r = s.rkctl(&["exec", "deploy/web", "--", "true"]).failed();
    assert!(r.stderr.contains("Error from server (BadRequest): pod web-"), "{}", r.stderr);

    // Pods exist but no agent reports numbers; no node at all is "no resources".
    let r = s.rkctl(&["top", "pods"]).failed();
    assert_eq!(
        r.stderr,
        "error: metrics not available yet; node agents report usage every few seconds, try again shortly\n"
    );
    let r = s.rkctl(&["top", "nodes"]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", "No resources found\n"));
    let r = s.rkctl(&["top", "pods", "-n", "empty"]).ok();
    assert_eq!(r.stderr, "No resources found in empty namespace.\n");
}

#[test]
fn jsonpath_and_custom_columns() {
    let s = Server::start();
    let app = s.write("app.yaml", APP);
    s.rkctl(&["apply", "-f", &app]).ok();
    s.rkctl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  labels: {app.kubernetes.io/name: o}\ndata: {x: \"<&>\"}\n",
    )
    .ok();

    // A list: the template applies to a List with items, as in kubectl.
    // (Without the namespace's kube-root-ca.crt, whose data is the cluster's CA.)
    const NOT_CA: &str = "--field-selector=metadata.name!=kube-root-ca.crt";
    let r = s.rkctl(&["get", "cm", NOT_CA, "-o", "jsonpath={.kind} {.items[*].metadata.name}"]).ok();
    assert_eq!(r.stdout, "List other web-config");
    let r = s
        .rkctl(&["get", "cm", NOT_CA, "-o", r#"jsonpath={range .items[*]}{.metadata.name}{"\t"}{.data}{"\n"}{end}"#])
        .ok();
    assert_eq!(r.stdout, "other\t{\"x\":\"\\u003c\\u0026\\u003e\"}\nweb-config\t{\"greeting\":\"hello\"}\n");
    // One object: the template applies to it.
    let r = s.rkctl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}/{..image}"]).ok();
    assert_eq!(r.stdout, "2/nginx:1.25");
    let r = s
        .rkctl(&[
            "get",
            "deploy/web",
            "-o",
            r#"jsonpath={.spec.template.spec.containers[?(@.name=="nginx")].ports[0].containerPort}"#,
        ])
        .ok();
    assert_eq!(r.stdout, "80");
    let r =
        s.rkctl(&["get", "cm", NOT_CA, "-o", r"jsonpath={.items[0].metadata.labels.app\.kubernetes\.io/name}"]).ok();
    assert_eq!(r.stdout, "o");
    // Missing fields print nothing, unless asked to fail.
    let r = s.rkctl(&["get", "cm/other", "-o", "jsonpath=[{.metadata.nope}]"]).ok();
    assert_eq!(r.stdout, "[]");
    let r = s.rkctl(&["get", "cm/other", "-o", "jsonpath={.nope}", "--allow-missing-template-keys=false"]).failed();
    assert_eq!(r.stderr, "error: error executing jsonpath \"{.nope}\": Error executing template: nope is not found\n");
    // A template from a file; JSON arrays per action.
    let file = s.write("t.jsonpath", "{.metadata.name}:{.data.greeting}\n");
    let r = s.rkctl(&["get", "cm", "web-config", "-o", &format!("jsonpath-file={file}")]).ok();
    assert_eq!(r.stdout, "web-config:hello\n");
    let r = s.rkctl(&["get", "cm", "web-config", "-o", "jsonpath-as-json={.metadata.name}"]).ok();
    assert_eq!(r.stdout, "[\n    \"web-config\"\n]\n");
    // -o jsonpath works for apply too.
    let r = s.rkctl(&["apply", "-f", &app, "-o", "jsonpath={.items[*].kind}"]).ok();
    assert_eq!(r.stdout, "ConfigMap Deployment");

    // Malformed templates: one line, exit code 1, and nothing sent or printed.
    for (template, want) in [
        ("jsonpath={.items[0}", "error: error parsing jsonpath {.items[0}, unterminated array\n"),
        ("jsonpath={.kind", "error: error parsing jsonpath {.kind, unclosed action\n"),
        ("jsonpath={%}", "error: error parsing jsonpath {%}, unrecognized character in action: U+0025 '%'\n"),
        ("jsonpath=", "error: template format specified but no template given\n"),
        (
            "jsonpath={.items[9]}",
            "error: error executing jsonpath \"{.items[9]}\": Error executing template: array index out of bounds: index 9, length 3\n",
        ),
        ("custom-columns=NAME", "error: unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>\n"),
        ("custom-columns=", "error: custom-columns format specified but no custom columns given\n"),
    ] {
        let r = s.rkctl(&["get", "cm", "-o", template]).failed();
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", want), "{template}");
    }
    let r = s.rkctl(&["get", "cm", "-o", "jsonpath-file=/does/not/exist"]).failed();
    assert!(r.stderr.starts_with("error: error reading jsonpath template file /does/not/exist: "), "{}", r.stderr);
    let r = s.rkctl(&["get", "cm", "-o", "yml"]).failed();
    assert_eq!(r.stderr_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("unable to match a printer suitable for the output format \"yml\""), "{}", r.stderr);

    // custom-columns: aligned like kubectl, <none> for what is missing, values of
    // several matches joined by commas, maps as Go prints them.
    let r = s
        .rkctl(&[
            "get",
            "deploy,cm",
            NOT_CA,
            "-o",
            "custom-columns=KIND:.kind,NAME:.metadata.name,REPLICAS:.spec.replicas,IMAGES:.spec.template.spec.containers[*].image",
        ])
        .ok();
    assert_eq!(
        r.stdout,
        "KIND         NAME         REPLICAS   IMAGES\n\
         Deployment   web          2          nginx:1.25\n\
         ConfigMap    other        <none>     <none>\n\
         ConfigMap    web-config   <none>     <none>\n"
    );
    let r = s.rkctl(&["get", "cm", "other", "-o", "custom-columns=N:metadata.name,D:{.data}", "--no-headers"]).ok();
    assert_eq!(r.stdout, "other   map[x:<&>]\n");
    let cols = s.write("cols.txt", "NAME      GREETING\n.metadata.name   .data.greeting\n");
    let r = s.rkctl(&["get", "cm", NOT_CA, "-o", &format!("custom-columns-file={cols}")]).ok();
    assert_eq!(r.stdout, "NAME         GREETING\nother        <none>\nweb-config   hello\n");
}

/// The server's open watches (its `rk_store_watchers` gauge): a waiter that has
/// opened its watch has also looked at the object first.
fn open_watchers(s: &Server) -> u64 {
    s.metrics()
        .lines()
        .find_map(|l| l.strip_prefix("rk_store_watchers "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `rkctl wait …` in the background; its output once it ends.
fn spawn_wait(s: &Server, args: &[&str]) -> std::sync::mpsc::Receiver<Run> {
    let child = s.command(args).spawn().expect("start rkctl wait");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Run::from(child.wait_with_output().expect("wait for rkctl wait")));
    });
    rx
}

#[test]
fn wait_for_conditions_deletion_and_jsonpath() {
    let s = Server::start();
    let cm = |v: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: w, labels: {{app: w}}}}\ndata: {{v: \"{v}\"}}\n")
    };
    // The watches the server holds open for itself. Its controllers act only once all
    // their informers watch, so once the deployment controller has written a condition
    // (seen here by polling, not watching) the count is settled. A waiter has looked at
    // its object once the server holds one more; a finished waiter's watch may take a
    // moment to close, so each step first waits for the count to come back down.
    let app = s.write("app.yaml", APP);
    s.rkctl(&["apply", "-f", &app]).ok();
    wait_until("the deployment controller at work", Duration::from_secs(30), || {
        let r = s.rkctl(&["get", "deploy/web", "-o", "jsonpath={.status.conditions[*].type}"]);
        r.stdout.contains("Progressing").then_some(())
    });
    let base = open_watchers(&s);
    let start_waiter = |args: &[&str]| {
        wait_until("earlier watches to close", Duration::from_secs(20), || (open_watchers(&s) <= base).then_some(()));
        let waiter = spawn_wait(&s, args);
        wait_until("the waiter's watch", Duration::from_secs(20), || (open_watchers(&s) > base).then_some(()));
        waiter
    };

    // --for=create: met once the object appears.
    let created = start_waiter(&["wait", "--for=create", "configmap/w", "--timeout=30s"]);
    s.rkctl_stdin(&["apply", "-f", "-"], &cm("1")).ok();
    let r = created.recv_timeout(Duration::from_secs(40)).expect("wait --for=create ends").ok();
    assert_eq!(r.stdout, "configmap/w condition met\n");

    // --for=jsonpath: met by a later change, seen through the watch.
    let changed = start_waiter(&["wait", "cm", "-l", "app=w", "--for=jsonpath={.data.v}=2", "--timeout=30s"]);
    s.rkctl_stdin(&["apply", "-f", "-"], &cm("2")).ok();
    let r = changed.recv_timeout(Duration::from_secs(40)).expect("wait --for=jsonpath ends").ok();
    assert_eq!(r.stdout, "configmap/w condition met\n");
    let r = s.rkctl(&["wait", "cm/w", "--for", "jsonpath={.data.v}=2", "--timeout=0"]).ok();
    assert_eq!(r.stdout, "configmap/w condition met\n");
    let r = s.rkctl(&["wait", "cm/w", "--for", "jsonpath={.data.v}=3", "--timeout=0"]).failed();
    assert_eq!(r.stderr, "condition not met for configmaps/w\n");

    // --for=delete: a finalizer holds the deleted object until the waiter watches;
    // it is met when the finalizer goes and the object with it.
    s.rkctl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\n",
    )
    .ok();
    s.rkctl(&["delete", "cm", "held"]).ok();
    let r = s.rkctl(&["wait", "--for=delete", "cm/held", "--timeout=1s"]).failed();
    assert_eq!(r.stderr, "error: timed out waiting for the condition on configmaps/held\n");
    let deleted = start_waiter(&["wait", "--for=delete", "cm/held", "--timeout=30s"]);
    s.rkctl(&["patch", "cm", "held", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]).ok();
    let r = deleted.recv_timeout(Duration::from_secs(40)).expect("wait --for=delete ends").ok();
    assert_eq!(r.stdout, "configmap/held condition met\n");
    // An object that is not there is deleted already: nothing to say, no error.
    let r = s.rkctl(&["wait", "--for=delete", "cm/held"]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));

    // Status conditions: the deployment controller reports Progressing=True, and no
    // node runs the pods, so Available stays False until the timeout.
    let r = s.rkctl(&["wait", "--for=condition=Progressing", "deploy/web", "--timeout=30s"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web condition met\n");
    let r = s.rkctl(&["wait", "--for=condition=Available", "deployments", "--all", "--timeout=1s"]).failed();
    assert_eq!(r.stderr, "error: timed out waiting for the condition on deployments/web\n");
    let r = s.rkctl(&["wait", "--for=condition=Available=false", "deploy/web", "--timeout=30s"]).ok();
    assert_eq!(r.stdout, "deployment.apps/web condition met\n");

    // Mistakes: one line each, exit code 1.
    let r = s.rkctl(&["wait", "--for=condition=Ready", "pod/nope"]).failed();
    assert_eq!(r.stderr, "Error from server (NotFound): pods \"nope\" not found\n");
    let r = s.rkctl(&["wait", "--for=condition=Ready", "pods", "-l", "app=nope"]).failed();
    assert_eq!(r.stderr, "error: no matching resources found\n");
    let r = s.rkctl(&["wait", "--for=ready", "deploy/web"]).failed();
    assert!(r.stderr.starts_with("error: unrecognized condition: \"ready\""), "{}", r.stderr);
    let r = s.rkctl(&["wait", "--for=jsonpath={.status.x}=", "deploy/web"]).failed();
    assert!(r.stderr.starts_with("error: jsonpath wait has to have a value after equal sign"), "{}", r.stderr);
    let r = s.rkctl(&["wait", "--for=delete", "deploy/web", "--timeout=soon"]).failed();
    assert_eq!(r.stderr, "error: invalid --timeout \"soon\"; use a duration like 30s or 2m\n");
    let r = s.rkctl(&["wait", "--for=delete", "deploy"]).failed();
    assert_eq!(r.stderr_lines().len(), 1, "{}", r.stderr);
}

#[test]
fn cluster_info_and_completion() {
    let s = Server::start();
    let r = s.rkctl(&["cluster-info"]).ok();
    let url = std::fs::read_to_string(&s.kubeconfig)
        .expect("kubeconfig")
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: ").map(str::to_string))
        .expect("server line");
    assert_eq!(r.stdout.lines().next(), Some(format!("Kubernetes control plane is running at {url}").as_str()));

    // A Service labelled as a cluster service is listed with its proxy address.
    s.rkctl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: kube-dns\n  namespace: kube-system\n  labels: {kubernetes.io/cluster-service: \"true\", kubernetes.io/name: CoreDNS}\n\
         spec:\n  selector: {k8s-app: kube-dns}\n  ports: [{name: dns, port: 53, protocol: UDP}]\n",
    )
    .ok();
    let r = s.rkctl(&["cluster-info"]).ok();
    assert_eq!(
        r.stdout.lines().nth(1),
        Some(format!("CoreDNS is running at {url}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy").as_str()),
        "{}",
        r.stdout
    );

    for (shell, marker) in [("bash", "complete -F _rkctl"), ("zsh", "#compdef rkctl"), ("fish", "complete -c rkctl")] {
        let r = s.rkctl(&["completion", shell]).ok();
        assert!(r.stdout.contains(marker) && r.stdout.contains("wait"), "{shell}: {}", &r.stdout[..200]);
    }
    let r = s.rkctl(&["completion", "tcsh"]).failed();
    assert_eq!(r.stderr_lines().len(), 1, "{}", r.stderr);
}
