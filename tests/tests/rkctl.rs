//! rkctl against a cluster whose pods really run (one `process`-runtime node agent):
//! `rollout status` following a rollout to the end, `logs` (of a Deployment, `-f`,
//! `--tail`, `--timestamps`), `exec` (exit codes, stderr, stdin with `-i`),
//! `port-forward` (to a pod and to a Service's target port, also with the real
//! kubectl: 1.30's SPDY and 1.33's SPDY tunnelled in a WebSocket), kubectl 1.27's exec
//! over SPDY and its `cp` (over exec), and `top`. The tests that need no running pods are in `kubectl-rs/tests/cli.rs`.
//!
//! Needs the binaries: `cargo build -p rk-control-plane -p rk-node-agent -p rk-kubectl --bins`.

use anyhow::{Context, Result, ensure};
use rk_tests::{Cluster, ClusterOptions, wait_for};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// One rkctl run's result.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

struct Rkctl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Rkctl {
    fn new(cluster: &Cluster) -> Result<Self> {
        Ok(Self { bin: rk_tests::binary("rkctl")?, kubeconfig: cluster.kubeconfig(0)?, home: tempfile::tempdir()? })
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs rkctl to completion (90 s at most), feeding `stdin` (then closing it).
    async fn run(&self, args: &[&str], stdin: &str) -> Result<Out> {
        let mut child = self.command(args).spawn()?;
        let mut input = child.stdin.take().context("stdin")?;
        input.write_all(stdin.as_bytes()).await?;
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
            .await
            .with_context(|| format!("rkctl {args:?} did not finish in 90 s"))??;
        Ok(Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn ok(&self, args: &[&str]) -> Result<Out> {
        let out = self.run(args, "").await?;
        ensure!(out.code == 0, "rkctl {args:?} exited {}:\n{}{}", out.code, out.stdout, out.stderr);
        Ok(out)
    }
}

const TICKER: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: ticker}
spec:
  replicas: 2
  selector: {matchLabels: {app: ticker}}
  template:
    metadata: {labels: {app: ticker}}
    spec:
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'echo started $GREETING; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done']
        env: [{name: GREETING, value: hello}]
";

/// Starts a one-replica cluster with one process-runtime node, Ready.
async fn cluster() -> Result<(Cluster, Rkctl)> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    cluster.start_agent("process", &[])?;
    let rk = Rkctl::new(&cluster)?;
    wait_for("the node Ready", Duration::from_secs(30), || async {
        let out = rk.run(&["get", "nodes", "--no-headers"], "").await.ok()?;
        out.stdout.contains(" Ready ").then_some(())
    })
    .await?;
    Ok((cluster, rk))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_logs_exec_top_on_a_real_node() -> Result<()> {
    let (_cluster, rk) = cluster().await?;
    let out = rk.run(&["apply", "-f", "-"], TICKER).await?;
    ensure!(out.code == 0, "{out:?}");

    // rollout status follows the rollout to its end: progress lines, then success.
    let out = rk.ok(&["rollout", "status", "deploy/ticker", "--timeout", "60s"]).await?;
    ensure!(out.stdout.ends_with("deployment \"ticker\" successfully rolled out\n"), "{out:?}");
    ensure!(
        out.stdout.lines().rev().skip(1).all(|l| l.starts_with("Waiting for deployment")),
        "unexpected progress lines: {out:?}"
    );

    // logs of a Deployment: one of its pods, announced on stderr.
    let out = wait_for("the first log lines", Duration::from_secs(20), || async {
        let out = rk.ok(&["logs", "deploy/ticker"]).await.ok()?;
        out.stdout.contains("tick 2").then_some(out)
    })
    .await?;
    ensure!(out.stdout.starts_with("started hello\ntick 1\n"), "{out:?}");
    ensure!(out.stderr.starts_with("Found 2 pods, using pod/ticker-"), "{out:?}");
    let pod = out.stderr.trim().rsplit("pod/").next().context("pod name")?.to_string();

    let out = rk.ok(&["logs", &pod, "--tail", "2"]).await?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(lines.len() == 2 && lines.iter().all(|l| l.starts_with("tick ")), "{out:?}");
    let out = rk.ok(&["logs", &pod, "--tail=1", "--timestamps"]).await?;
    let (stamp, text) = out.stdout.trim_end().split_once(' ').context("a timestamp")?;
    ensure!(stamp.parse::<jiff_like::Stamp>().is_ok() && text.starts_with("tick "), "{out:?}");

    // logs -f keeps streaming.
    let mut follow = rk.command(&["logs", "-f", "--tail=1", &pod]).spawn()?;
    let mut lines = tokio::io::BufReader::new(follow.stdout.take().context("stdout")?).lines();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line()).await.context("logs -f stalled")??;
        seen.push(line.with_context(|| format!("logs -f ended early after {seen:?}"))?);
    }
    ensure!(follow.try_wait()?.is_none(), "logs -f exited by itself");
    // Ctrl-C ends it, successfully.
    let pid = follow.id().context("logs -f pid")?.to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status()?;
    let status =
        tokio::time::timeout(Duration::from_secs(10), follow.wait()).await.context("logs -f ignored Ctrl-C")??;
    ensure!(status.code() == Some(0), "logs -f after Ctrl-C: {status:?}");
    let numbers: Vec<u64> = seen.iter().filter_map(|l| l.strip_prefix("tick ")?.parse().ok()).collect();
    ensure!(numbers.len() == 4 && numbers.windows(2).all(|w| w[1] == w[0] + 1), "logs -f streamed {seen:?}");

    // exec: stdout, stderr and the exit code come back.
    let out =
        rk.run(&["exec", "deploy/ticker", "--", "sh", "-c", "echo out $GREETING; echo err >&2; exit 3"], "").await?;
    ensure!(out.code == 3, "{out:?}");
    ensure!(out.stdout == "out hello\n", "{out:?}");
    ensure!(out.stderr.contains("err\n") && out.stderr.ends_with("command terminated with exit code 3\n"), "{out:?}");
    let out = rk.ok(&["exec", &pod, "--", "true"]).await?;
    ensure!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    // -i: standard input reaches the command, and its end too (cat exits).
    let out = rk.run(&["exec", "-i", &pod, "--", "cat"], "line one\nline two\n").await?;
    ensure!(out.code == 0 && out.stdout == "line one\nline two\n", "{out:?}");
    // Without -i the command's standard input is empty.
    let out = rk.run(&["exec", &pod, "--", "sh", "-c", "wc -c"], "ignored\n").await?;
    ensure!(out.code == 0 && out.stdout.trim() == "0", "{out:?}");
    let out = rk.run(&["exec", &pod, "-c", "nope", "--", "true"], "").await?;
    ensure!(out.code == 1 && out.stderr.starts_with("error: container nope is not valid for pod "), "{out:?}");

    // --since: only the recent lines (the pod has logged for 3 s by then).
    wait_for("3 s of ticks", Duration::from_secs(20), || async {
        let out = rk.ok(&["logs", &pod]).await.ok()?;
        (out.stdout.lines().count() > 16).then_some(())
    })
    .await?;
    let out = rk.ok(&["logs", &pod, "--since", "1s"]).await?;
    let recent = out.stdout.lines().count();
    ensure!((1..=8).contains(&recent) && !out.stdout.contains("started"), "{out:?}");

    // top: the agents' measurements through metrics.k8s.io.
    let out = wait_for("rkctl top pods", Duration::from_secs(30), || async {
        let out = rk.ok(&["top", "pods"]).await.ok()?;
        (out.stdout.matches("ticker-").count() == 2).then_some(out)
    })
    .await?;
    let mut lines = out.stdout.lines();
    ensure!(
        lines.next().is_some_and(|h| h.starts_with("NAME ") && h.contains("   CPU(cores)   MEMORY(bytes)")),
        "{out:?}"
    );
    ensure!(lines.all(|l| l.starts_with("ticker-") && l.contains("m ") && l.trim_end().ends_with("Mi")), "{out:?}");
    let out = rk.ok(&["top", "pods", "-A", "--no-headers"]).await?;
    ensure!(out.stdout.lines().all(|l| l.starts_with("default ")), "{out:?}");
    let out = rk.ok(&["top", "nodes"]).await?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(lines.len() == 2, "{out:?}");
    ensure!(
        lines[0].starts_with("NAME ") && lines[0].contains("CPU(cores)   CPU(%)   MEMORY(bytes)   MEMORY(%)"),
        "{out:?}"
    );
    ensure!(lines[1].starts_with("node-0 ") && lines[1].contains('%') && lines[1].contains("Mi "), "{out:?}");

    // A new template rolls out again; rollout status follows it to the end.
    rk.ok(&[
        "patch",
        "deploy/ticker",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/env/0/value","value":"again"}]"#,
    ])
    .await?;
    let out = rk.ok(&["rollout", "status", "deploy/ticker", "--timeout", "60s"]).await?;
    ensure!(out.stdout.ends_with("deployment \"ticker\" successfully rolled out\n"), "{out:?}");
    let out = wait_for("the new pods' logs", Duration::from_secs(20), || async {
        let out = rk.ok(&["logs", "deploy/ticker"]).await.ok()?;
        out.stdout.starts_with("started again\n").then_some(out)
    })
    .await;
    ensure!(out.is_ok(), "{out:?}");
    Ok(())
}

/// A pod answering each connection with "echo:" and what it read, on a named port.
fn echo_manifest(port: u16) -> String {
    format!(
        "\
apiVersion: v1
kind: Pod
metadata: {{name: echo, labels: {{app: echo}}}}
spec:
  containers:
  - name: main
    image: python
    command:
    - python3
    - -c
    - |
      import socket
      s = socket.socket()
      s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      s.bind((\"0.0.0.0\", {port}))
      s.listen(8)
      while True:
          c, _ = s.accept()
          c.sendall(b\"echo:\" + c.recv(100))
          c.close()
    ports: [{{name: echo, containerPort: {port}}}]
    readinessProbe: {{tcpSocket: {{port: echo}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  selector: {{app: echo}}
  ports: [{{name: web, port: 80, targetPort: echo}}]
"
    )
}

/// Spawns a port-forward command (rkctl's or kubectl's) and waits until it prints
/// where it listens; returns the process, its output lines, and the local port.
/// Keep the lines while it runs: kubectl dies when its stdout is closed.
async fn listening(
    mut cmd: tokio::process::Command,
) -> Result<(tokio::process::Child, tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>, u16)> {
    let mut child = cmd.spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("port-forward printed nothing in 30 s")??
        .context("port-forward ended before listening")?;
    let port = first
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(p, _)| p.parse().ok())
        .with_context(|| format!("unexpected first line {first:?}"))?;
    Ok((child, lines, port))
}

async fn port_forward(
    rk: &Rkctl,
    args: &[&str],
) -> Result<(tokio::process::Child, tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>, u16)> {
    listening(rk.command(&[&["port-forward"][..], args].concat())).await
}

/// One connection through a forward: sends `text`, returns all it got back.
async fn exchange(port: u16, text: &str) -> Result<String> {
    use tokio::io::AsyncReadExt;
    let what = || format!("sending {text:?} through local port {port}");
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.with_context(what)?;
    conn.write_all(text.as_bytes()).await.with_context(what)?;
    let mut got = String::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_string(&mut got))
        .await
        .with_context(|| format!("no answer to {text:?}"))?
        .with_context(what)?;
    Ok(got)
}

/// Requires `text` to come back echoed through the forward `child` listens for on
/// `port`; on failure stops the forward and tells what it said.
async fn echoes(child: &mut tokio::process::Child, port: u16, text: &str) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let got = exchange(port, text).await;
    if got.as_ref().is_ok_and(|g| *g == format!("echo:{text}")) {
        return Ok(());
    }
    let _ = child.start_kill();
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), stderr.read_to_string(&mut said)).await;
    }
    let got = match got {
        Ok(g) => format!("{g:?}"),
        Err(e) => format!("{e:#}"),
    };
    anyhow::bail!("{text:?} through the forward: {got}; the forward said {said:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_exec_over_spdy_and_cp_reach_a_pod() -> Result<()> {
    let (_cluster, rk) = cluster().await?;
    // A free port for the pod: the process runtime shares the node's network.
    let pod_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let out = rk.run(&["apply", "-f", "-"], &echo_manifest(pod_port)).await?;
    ensure!(out.code == 0, "{out:?}");
    rk.ok(&["wait", "--for=condition=Ready", "pod/echo", "--timeout=60s"]).await?;
    // attach: the process runtime cannot; one clear line says so.
    let out = rk.run(&["attach", "echo"], "").await?;
    ensure!(out.code == 1 && out.stderr.contains("does not support attach"), "{out:?}");
    ensure!(out.stderr.trim().lines().count() == 1, "{out:?}");

    // To the pod: every connection is its own, both directions carry bytes.
    let (mut child, mut lines, local) = port_forward(&rk, &["pod/echo", &format!(":{pod_port}")]).await?;
    for word in ["one", "two"] {
        echoes(&mut child, local, word).await?;
        // (The IPv6 loopback's "Forwarding from [::1]…" may come first.)
        let line = loop {
            let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await??;
            if !line.as_deref().is_some_and(|l| l.starts_with("Forwarding from [::1]:")) {
                break line;
            }
        };
        ensure!(line.as_deref() == Some(&format!("Handling connection for {local}")[..]), "{line:?}");
    }
    // Ctrl-C ends it, successfully.
    let pid = child.id().context("pid")?.to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status()?;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.context("ignored Ctrl-C")??;
    ensure!(status.code() == Some(0), "port-forward after Ctrl-C: {status:?}");

    // To a Service: its port 80 means the pod's port named "echo".
    let (mut child, _lines, local) = port_forward(&rk, &["svc/echo", ":80"]).await?;
    echoes(&mut child, local, "svc").await?;

    // A port nobody listens on: the connection closes and the error is told.
    let mut child = rk.command(&["port-forward", "pod/echo", ":1"]).spawn()?;
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().context("stderr")?).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), stdout.next_line()).await??.context("no output")?;
    let local: u16 = first
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|r| r.strip_suffix(" -> 1"))
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("{first:?}"))?;
    ensure!(exchange(local, "x").await?.is_empty());
    let err = tokio::time::timeout(Duration::from_secs(10), stderr.next_line()).await??.context("no error")?;
    ensure!(err.starts_with(&format!("an error occurred forwarding {local} -> 1: error forwarding to ")), "{err}");

    // The real kubectl: 1.30 speaks SPDY, 1.33 SPDY tunnelled in a WebSocket; rk
    // carries both to the agent.
    for minor in [30, 33] {
        let k = rk_tests::kubectl::Kubectl::new(minor, rk.kubeconfig.clone())?;
        let (mut child, _lines, local) = listening(k.command(&["port-forward", "svc/echo", ":80"])).await?;
        for word in ["a", "b"] {
            echoes(&mut child, local, &format!("kubectl 1.{minor} {word}")).await?;
        }
    }

    // kubectl 1.27 execs over SPDY: stdout, stderr, the exit code, stdin to its end.
    let k = rk_tests::kubectl::Kubectl::new(27, rk.kubeconfig.clone())?;
    let out = k.run(&["exec", "echo", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], None).await?;
    ensure!(out.code == 3 && out.stdout == "out\n", "{out:?}");
    ensure!(out.stderr == "err\ncommand terminated with exit code 3\n", "{out:?}");
    let out = k.run(&["exec", "-i", "echo", "--", "cat"], Some("line one\nline two\n")).await?;
    ensure!(out.code == 0 && out.stdout == "line one\nline two\n", "{out:?}");
    // kubectl cp works over exec (tar in the container; the process runtime's
    // containers see the node's files).
    let dir = tempfile::tempdir()?;
    let (src, dst) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    std::fs::write(&src, "copied through exec\n")?;
    k.ok(&["cp", &src.to_string_lossy(), &format!("echo:{}", dst.to_string_lossy())]).await?;
    ensure!(std::fs::read_to_string(&dst)? == "copied through exec\n");
    // rkctl cp: a directory into the container and back (the process runtime's
    // container is the node, so its side is a folder here too).
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub"))?;
    std::fs::write(tree.join("a.txt"), "alpha\n")?;
    std::fs::write(tree.join("sub/b.txt"), "beta\n")?;
    let in_pod = dir.path().join("in-pod");
    rk.ok(&["cp", &tree.to_string_lossy(), &format!("echo:{}", in_pod.to_string_lossy())]).await?;
    ensure!(std::fs::read_to_string(in_pod.join("sub/b.txt"))? == "beta\n");
    let back = dir.path().join("back");
    rk.ok(&["cp", &format!("default/echo:{}", in_pod.to_string_lossy()), &back.to_string_lossy()]).await?;
    ensure!(std::fs::read_to_string(back.join("a.txt"))? == "alpha\n");
    ensure!(std::fs::read_to_string(back.join("sub/b.txt"))? == "beta\n");
    let out = rk.run(&["cp", "here", "there"], "").await?;
    ensure!(out.code == 1 && out.stderr.contains("one of SRC and DEST must be in a container"), "{out:?}");
    let out = rk.run(&["cp", "echo:/no/such/file", &dir.path().join("x").to_string_lossy()], "").await?;
    ensure!(out.code != 0 && out.stderr.contains("No such file"), "{out:?}");

    // Bad arguments are one clear line each, before anything listens.
    let out = rk.run(&["port-forward", "pod/echo", "http"], "").await?;
    ensure!(out.code == 1 && out.stderr.contains("a port name needs a local port"), "{out:?}");
    let out = rk.run(&["port-forward", "svc/echo", ":81"], "").await?;
    ensure!(out.stderr == "error: service \"echo\" does not have a service port 81\n", "{out:?}");
    let out = rk.run(&["port-forward", "pod/nope", ":80"], "").await?;
    ensure!(out.code == 1 && out.stderr.contains("pods \"nope\" not found"), "{out:?}");
    Ok(())
}

/// A tiny RFC 3339 check for `--timestamps` (the tests crate has no date library).
mod jiff_like {
    pub struct Stamp;

    impl std::str::FromStr for Stamp {
        type Err = ();

        fn from_str(s: &str) -> Result<Self, ()> {
            let b = s.as_bytes();
            let ok = b.len() >= 20
                && b[..4].iter().all(u8::is_ascii_digit)
                && b[4] == b'-'
                && b[10] == b'T'
                && (s.ends_with('Z') || s.contains('+'));
            if ok { Ok(Stamp) } else { Err(()) }
        }
    }
}
