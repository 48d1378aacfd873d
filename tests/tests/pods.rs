//! Pods end to end on real node agents: the process runtime (host processes) and the
//! docker runtime (containers of a locally built busybox image), through the API and
//! the real kubectl: env and files from ConfigMaps and Secrets, logs (-f), exec, top,
//! crash loops, liveness and readiness probes, graceful deletion, agent restarts, and
//! pod specs a runtime cannot honour.

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use rk_tests::kubectl::Kubectl;
use rk_tests::{Cluster, ClusterOptions, wait_for};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

fn from_json<T: for<'de> k8s_openapi::serde::Deserialize<'de>>(v: Value) -> Result<T> {
    Ok(serde_json::from_value(v)?)
}

/// A one-replica cluster with one node agent of `runtime`, Ready.
async fn cluster_with_node(runtime: &str) -> Result<(Cluster, kube::Client)> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    cluster.start_agent(runtime, &[])?;
    let c = cluster.kube_client(0).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    rk_tests::wait_nodes_ready(&nodes, 1).await?;
    Ok((cluster, c))
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn phase(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default()
}

/// The first container's status.
fn container(p: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerStatus> {
    p.status.as_ref()?.container_statuses.as_ref()?.first()
}

async fn wait_pod<T>(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&Pod) -> Option<T>,
) -> Result<T> {
    let last = std::sync::Mutex::new(None);
    let got = wait_for(&format!("pod {name}: {what}"), timeout, || async {
        let p = pods.get(name).await.ok()?;
        let r = check(&p);
        if let Ok(mut l) = last.lock() {
            *l = p.status.clone();
        }
        r
    })
    .await;
    let last = last.lock().ok().and_then(|l| serde_json::to_string(&*l).ok()).unwrap_or_default();
    got.with_context(|| format!("last status of {name}: {last}"))
}

async fn events_for(c: &kube::Client, name: &str) -> Result<Vec<Event>> {
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let list = events.list(&ListParams::default().fields(&format!("involvedObject.name={name}"))).await?;
    Ok(list.items)
}

/// Process runtime: env from a ConfigMap and a Secret, a ConfigMap volume, logs and
/// `logs -f`, exec with exit codes, top — through the real kubectl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_pod_env_files_logs_exec_top() -> Result<()> {
    let (cluster, c) = cluster_with_node("process").await?;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    cms.create(
        &PostParams::default(),
        &from_json(json!({"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}}))?,
    )
    .await?;
    secrets
        .create(
            &PostParams::default(),
            &from_json(json!({"metadata": {"name": "sec"}, "stringData": {"token": "s3cret"}}))?,
        )
        .await?;
    let pod = json!({
        "metadata": {"name": "app"},
        "spec": {
            "containers": [{
                "name": "main", "image": "busybox",
                "command": ["sh", "-c", "echo env=$GREETING/$TOKEN; echo file=$(cat $RK_ROOT/etc/cfg/greeting); \
                            i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"],
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
                ],
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}],
            }],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
        },
    });
    pods.create(&PostParams::default(), &from_json(pod)?).await?;
    wait_pod(&pods, "app", "Ready", Duration::from_secs(30), |p| ready(p).then_some(())).await?;

    let k = Kubectl::new(32, cluster.kubeconfig(0)?)?;
    let logs = wait_for("the pod's first lines", Duration::from_secs(10), || async {
        let out = k.ok(&["logs", "app"]).await.ok()?;
        out.contains("tick 1").then_some(out)
    })
    .await?;
    ensure!(logs.contains("env=hello/s3cret") && logs.contains("file=hello"), "{logs}");

    // logs -f keeps streaming new lines.
    let (mut follow, mut lines) = k.spawn(&["logs", "-f", "--tail=1", "app"])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line()).await.context("logs -f stalled")??;
        seen.push(line.with_context(|| format!("logs -f ended early after {seen:?}"))?);
    }
    let _ = follow.kill().await;
    ensure!(seen.iter().all(|l| l.starts_with("tick ")), "logs -f streamed {seen:?}");

    // exec: output and the exit code come back.
    let out = k.ok(&["exec", "app", "--", "sh", "-c", "echo in-pod $GREETING"]).await?;
    ensure!(out.trim() == "in-pod hello", "exec said {out:?}");
    // Service variables, as the kubelet sets them (the API's own Service here).
    let out = k.ok(&["exec", "app", "--", "sh", "-c", "echo $KUBERNETES_SERVICE_HOST $KUBERNETES_PORT"]).await?;
    ensure!(out.trim() == "10.96.0.1 tcp://10.96.0.1:443", "service variables: {out:?}");
    let failed = k.run(&["exec", "app", "--", "sh", "-c", "exit 3"], None).await?;
    ensure!(failed.code == 3, "exec exit code {:?}: {}", failed.code, failed.stderr);

    // top: the agent's measurements reach kubectl through metrics.k8s.io.
    let top = wait_for("kubectl top pods", Duration::from_secs(30), || async {
        let out = k.ok(&["top", "pods"]).await.ok()?;
        out.contains("app").then_some(out)
    })
    .await?;
    ensure!(top.contains("CPU(cores)") && top.contains("MEMORY(bytes)"), "{top}");
    Ok(())
}

/// Crash loops back off, a failing liveness probe restarts, a failing readiness
/// probe keeps the pod out of Ready, deletion honours the grace period, and a
/// command that cannot run is a clear status and event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_pod_restarts_probes_and_grace() -> Result<()> {
    let (mut cluster, c) = cluster_with_node("process").await?;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let dir = tempfile::tempdir()?;
    let flag = |name: &str| dir.path().join(name).display().to_string();
    let sh = |name: &str, script: &str, extra: Value| -> Result<Pod> {
        let mut container = json!({"name": "main", "image": "busybox", "command": ["sh", "-c", script]});
        if let (Some(c), Some(e)) = (container.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        from_json(
            json!({"metadata": {"name": name}, "spec": {"containers": [container], "terminationGracePeriodSeconds": 3}}),
        )
    };
    let pp = PostParams::default();
    pods.create(&pp, &sh("crash", "echo boom; exit 3", json!({}))?).await?;
    std::fs::write(flag("alive"), "")?;
    let live_probe = json!({"livenessProbe": {
        "exec": {"command": ["test", "-f", flag("alive")]}, "periodSeconds": 1, "failureThreshold": 2}});
    pods.create(&pp, &sh("liveness", "while true; do sleep 0.1; done", live_probe)?).await?;
    let ready_probe =
        json!({"readinessProbe": {"exec": {"command": ["test", "-f", flag("ready")]}, "periodSeconds": 1}});
    pods.create(&pp, &sh("readiness", "while true; do sleep 0.1; done", ready_probe)?).await?;
    pods.create(&pp, &sh("stubborn", "trap '' TERM; while true; do sleep 0.1; done", json!({}))?).await?;
    pods.create(&pp, &sh("polite", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done", json!({}))?).await?;
    let missing = json!({"metadata": {"name": "missing"}, "spec": {"containers": [
        {"name": "main", "image": "busybox", "command": ["/nonexistent/bin/app"]}]}});
    pods.create(&pp, &from_json(missing)?).await?;

    // The crash loop: restarts, backs off, keeps the last exit code.
    wait_pod(&pods, "crash", "CrashLoopBackOff", Duration::from_secs(60), |p| {
        let s = container(p)?;
        let waiting = s.state.as_ref()?.waiting.as_ref()?.reason.as_deref() == Some("CrashLoopBackOff");
        let last = s.last_state.as_ref()?.terminated.as_ref()?.exit_code == 3;
        (waiting && last && s.restart_count >= 1).then_some(())
    })
    .await?;

    // Readiness: running but not Ready until the probe passes.
    wait_pod(&pods, "readiness", "Running", Duration::from_secs(30), |p| (phase(p) == "Running").then_some(())).await?;
    let p = pods.get("readiness").await?;
    ensure!(!ready(&p), "Ready before its probe passed");
    std::fs::write(flag("ready"), "")?;
    wait_pod(&pods, "readiness", "Ready", Duration::from_secs(30), |p| ready(p).then_some(())).await?;
    std::fs::remove_file(flag("ready"))?;
    wait_pod(&pods, "readiness", "not Ready again", Duration::from_secs(30), |p| (!ready(p)).then_some(())).await?;

    // Liveness: healthy, then failing → killed and restarted.
    wait_pod(&pods, "liveness", "Ready", Duration::from_secs(30), |p| ready(p).then_some(())).await?;
    std::fs::remove_file(flag("alive"))?;
    wait_pod(&pods, "liveness", "restarted", Duration::from_secs(30), |p| {
        (container(p)?.restart_count >= 1).then_some(())
    })
    .await?;
    let events = events_for(&c, "liveness").await?;
    ensure!(
        events.iter().any(|e| e.reason.as_deref() == Some("Unhealthy")),
        "no Unhealthy event: {:?}",
        events.iter().map(|e| e.reason.clone()).collect::<Vec<_>>()
    );

    // A command that does not exist: a clear waiting reason and a Failed event.
    let why = wait_pod(&pods, "missing", "a start error", Duration::from_secs(30), |p| {
        let w = container(p)?.state.as_ref()?.waiting.as_ref()?;
        let msg = format!("{} {}", w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default());
        msg.contains("/nonexistent/bin/app").then_some(msg)
    })
    .await?;
    ensure!(why.contains("Error") || why.contains("BackOff"), "{why}");
    let events = events_for(&c, "missing").await?;
    ensure!(events.iter().any(|e| e.reason.as_deref() == Some("Failed")), "no Failed event for missing");

    // Graceful deletion: the polite pod exits on SIGTERM at once; the stubborn one
    // ignores it and is killed when its 3 s run out, not before.
    for name in ["polite", "stubborn"] {
        wait_pod(&pods, name, "Running", Duration::from_secs(30), |p| (phase(p) == "Running").then_some(())).await?;
    }
    let t0 = Instant::now();
    pods.delete("polite", &DeleteParams::default()).await?;
    pods.delete("stubborn", &DeleteParams::default()).await?;
    wait_for("polite gone", Duration::from_secs(10), || async {
        pods.get_opt("polite").await.ok()?.is_none().then_some(())
    })
    .await?;
    let polite_gone = t0.elapsed();
    wait_for("stubborn gone", Duration::from_secs(20), || async {
        pods.get_opt("stubborn").await.ok()?.is_none().then_some(())
    })
    .await?;
    let stubborn_gone = t0.elapsed();
    ensure!(
        stubborn_gone >= Duration::from_millis(2900),
        "stubborn pod gone after {stubborn_gone:?}, before its grace"
    );
    ensure!(polite_gone < stubborn_gone, "polite {polite_gone:?} vs stubborn {stubborn_gone:?}");
    ensure!(cluster.agents[0].is_running(), "the agent died:\n{}", cluster.agents[0].log());
    Ok(())
}

/// Killing the agent leaves its pods running; a restarted agent adopts them (same
/// container, no restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_agent_restart_adopts_running_pods() -> Result<()> {
    let (mut cluster, c) = cluster_with_node("process").await?;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    // A marker in the command line finds the process on the host.
    let marker = format!("rk-adopt-{}", std::process::id());
    let pod = json!({"metadata": {"name": "keep"}, "spec": {"containers": [
        {"name": "main", "image": "busybox", "command": ["sh", "-c", "while true; do sleep 0.1; done", &marker]}]}});
    pods.create(&PostParams::default(), &from_json(pod)?).await?;
    let id = wait_pod(&pods, "keep", "Ready", Duration::from_secs(30), |p| {
        ready(p).then(|| container(p).and_then(|s| s.container_id.clone())).flatten()
    })
    .await?;
    let pid = pid_with(&marker).context("the pod's process is not running")?;

    // The agent dies: the pod's process does not.
    cluster.agents[0].kill();
    ensure!(pid_with(&marker) == Some(pid), "the pod's process died with the agent");
    cluster.restart_agent(0)?;
    // The new agent keeps the same container, without a restart…
    let after = wait_pod(&pods, "keep", "Ready under the new agent", Duration::from_secs(30), |p| {
        let s = container(p)?;
        (ready(p) && s.container_id.as_deref() == Some(&id)).then_some(s.restart_count)
    })
    .await?;
    ensure!(after == 0, "the pod restarted {after} times across an agent restart");
    ensure!(pid_with(&marker) == Some(pid), "the pod's process was replaced");
    // …and owns it: deleting the pod stops the process the old agent started.
    pods.delete("keep", &DeleteParams::default()).await?;
    wait_for("keep gone", Duration::from_secs(20), || async {
        pods.get_opt("keep").await.ok()?.is_none().then_some(())
    })
    .await?;
    wait_for("the adopted process stopped", Duration::from_secs(10), || async {
        pid_with(&marker).is_none().then_some(())
    })
    .await?;
    Ok(())
}

/// Agent restarts under load: the node's agent is killed -9 twice while a Deployment
/// rolls out on it; afterwards there are exactly the desired pods, none restarted, and
/// exactly one process per pod (nothing started twice, nothing of the old pods left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_agent_restarts_during_a_rollout_lose_and_duplicate_nothing() -> Result<()> {
    let (mut cluster, c) = cluster_with_node("process").await?;
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let marker = format!("rk-busy-{}", std::process::id());
    let replicas = 6;
    let deploy = |version: &str| {
        json!({"metadata": {"name": "busy"}, "spec": {
            "replicas": replicas, "minReadySeconds": 1,
            "strategy": {"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}},
            "selector": {"matchLabels": {"app": "busy"}},
            "template": {"metadata": {"labels": {"app": "busy"}, "annotations": {"version": version}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "busybox",
                    "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    // $(POD_NAME) is expanded by the agent: each process names its pod.
                    "command": ["sh", "-c", "while true; do sleep 0.2; done", format!("{marker}-$(POD_NAME)")]}]}}}})
    };
    deploys.create(&PostParams::default(), &from_json(deploy("v1"))?).await?;
    let rolled_out = |version: &'static str| {
        let (deploys, pods) = (deploys.clone(), pods.clone());
        async move {
            let d = deploys.get("busy").await.ok()?;
            let st = d.status?;
            let done = d.metadata.generation == st.observed_generation
                && st.updated_replicas == Some(replicas)
                && st.available_replicas == Some(replicas)
                && st.replicas == Some(replicas);
            let live: Vec<Pod> = pods
                .list(&ListParams::default().labels("app=busy"))
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let current = live.iter().all(|p| {
                p.metadata.annotations.as_ref().and_then(|a| a.get("version")).map(String::as_str) == Some(version)
            });
            (done && current && live.len() == replicas as usize && live.iter().all(ready)).then_some(live)
        }
    };
    wait_for("v1 rolled out", Duration::from_secs(60), || rolled_out("v1")).await?;

    // v2 rolls out; the agent dies twice on the way and comes back each time.
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"version": "v2"}}}}});
    deploys.patch("busy", &kube::api::PatchParams::default(), &kube::api::Patch::Strategic(patch)).await?;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        cluster.agents[0].kill();
        tokio::time::sleep(Duration::from_millis(700)).await;
        cluster.restart_agent(0)?;
    }
    let live = wait_for("v2 rolled out", Duration::from_secs(90), || rolled_out("v2")).await?;
    for p in &live {
        let restarts = container(p).map_or(0, |s| s.restart_count);
        ensure!(restarts == 0, "pod {:?} restarted {restarts} times", p.metadata.name);
    }
    // Exactly one process per live pod (the old pods' processes stopped with them).
    let names: Vec<String> = live.iter().filter_map(|p| p.metadata.name.clone()).collect();
    let processes = wait_for("one process per pod and no other", Duration::from_secs(30), || async {
        let found = processes_with(&marker);
        let one_each =
            names.iter().all(|n| found.iter().filter(|c| c.ends_with(&format!("{marker}-{n}"))).count() == 1);
        (one_each && found.len() == names.len()).then_some(found)
    })
    .await;
    ensure!(processes.is_ok(), "pods {names:?}, processes {:?}", processes_with(&marker));
    Ok(())
}

/// The command lines (NUL as space) of the live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| {
            e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let zombie = std::fs::read_to_string(e.path().join("stat")).ok()?.contains(") Z ");
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_string();
            (!zombie && text.contains(marker)).then_some(text)
        })
        .collect()
}

/// The pid of the process whose command line contains `marker`.
fn pid_with(marker: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let zombie = std::fs::read_to_string(e.path().join("stat")).ok()?.contains(") Z ");
        (!zombie && String::from_utf8_lossy(&cmdline).contains(marker)).then_some(pid)
    })
}

/// GET / over plain HTTP/1.0; the body.
async fn http_get(addr: &str) -> Result<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await??;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await??;
    let text = String::from_utf8_lossy(&out).to_string();
    ensure!(text.starts_with("HTTP/1.") && text.contains(" 200 "), "{text}");
    Ok(text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// Docker runtime: a Deployment of busybox httpd serving a page from a ConfigMap
/// answers on every pod IP; exec, port-forward (kubectl 1.32), logs, crash loop and a
/// missing image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_deployment_serves_on_pod_ips() -> Result<()> {
    let image = tokio::task::spawn_blocking(rk_tests::images::ensure_busybox_image).await??;
    let (cluster, c) = cluster_with_node("docker").await?;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    cms.create(
        &PostParams::default(),
        &from_json(json!({"metadata": {"name": "page"}, "data": {"index.html": "hello from rk"}}))?,
    )
    .await?;
    let deploy = json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    // httpd is PID 1 and ignores SIGTERM (no handler), as in Kubernetes:
                    // a short grace keeps the test short.
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "httpd", "image": image, "imagePullPolicy": "Never",
                        "command": ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                        "volumeMounts": [{"name": "page", "mountPath": "/www"}],
                    }],
                    "volumes": [{"name": "page", "configMap": {"name": "page"}}],
                },
            },
        },
    });
    deploys.create(&PostParams::default(), &from_json(deploy)?).await?;
    let ips = wait_for("two ready web pods with IPs", Duration::from_secs(60), || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        let ips: Vec<String> =
            list.items.iter().filter(|p| ready(p)).filter_map(|p| p.status.as_ref()?.pod_ip.clone()).collect();
        (ips.len() == 2).then_some(ips)
    })
    .await?;
    for ip in &ips {
        let body = http_get(&format!("{ip}:8080")).await?;
        ensure!(body.contains("hello from rk"), "{ip} served {body:?}");
    }

    let k = Kubectl::new(32, cluster.kubeconfig(0)?)?;
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    let name = list.items[0].metadata.name.clone().context("pod without a name")?;
    let out = k.ok(&["exec", &name, "--", "cat", "/www/index.html"]).await?;
    ensure!(out.contains("hello from rk"), "{out}");
    let failed = k.run(&["exec", &name, "--", "sh", "-c", "exit 7"], None).await?;
    ensure!(failed.code == 7, "exec exit code {:?}", failed.code);
    // port-forward reaches the pod's IP on the docker network through the agent.
    let mut forward = k.command(&["port-forward", &name, ":8080"]).spawn()?;
    let mut lines = tokio::io::BufReader::new(forward.stdout.take().context("stdout")?).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??.context("no output")?;
    let local = first
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|r| r.strip_suffix(" -> 8080"))
        .with_context(|| format!("{first:?}"))?;
    let body = http_get(&format!("127.0.0.1:{local}")).await?;
    ensure!(body.contains("hello from rk"), "through port-forward: {body:?}");
    drop(lines);
    let _ = forward.start_kill();

    // attach: `kubectl run -i --rm` makes a pod with stdin open, attaches to it, feeds
    // it kubectl's input, deletes it and exits with its container's code. Over the
    // WebSocket (1.32) and kubectl 1.27's SPDY.
    for (minor, pod) in [(32, "run-ws"), (27, "run-spdy")] {
        let kv = Kubectl::new(minor, cluster.kubeconfig(0)?)?;
        let image_arg = format!("--image={image}");
        let script = "read x; echo \"read: $x\"; exit 3";
        let args = [
            "run",
            pod,
            "-i",
            "--rm",
            "--restart=Never",
            &image_arg,
            "--image-pull-policy=Never",
            "--",
            "sh",
            "-c",
            script,
        ];
        let out = kv.run(&args, Some("typed\n")).await?;
        ensure!(out.code == 3 && out.stdout.contains("read: typed"), "kubectl 1.{minor} run -i: {out:?}");
    }
    // rkctl attach -i feeds a running container's stdin and shows its output.
    let reader = json!({"metadata": {"name": "reader"}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
        {"name": "main", "image": image, "imagePullPolicy": "Never", "stdin": true, "stdinOnce": true,
         "command": ["sh", "-c", "read x; echo \"got $x\"; sleep 600"]}]}});
    pods.create(&PostParams::default(), &from_json(reader)?).await?;
    wait_pod(&pods, "reader", "Running", Duration::from_secs(30), |p| ready(p).then_some(())).await?;
    let home = tempfile::tempdir()?;
    let mut attach = tokio::process::Command::new(rk_tests::binary("rkctl")?)
        .args(["attach", "-i", "reader"])
        .env("KUBECONFIG", cluster.kubeconfig(0)?)
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    attach.stdin.take().context("stdin")?.write_all(b"hello\n").await?;
    let mut lines = tokio::io::BufReader::new(attach.stdout.take().context("stdout")?).lines();
    let got = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??;
    ensure!(got.as_deref() == Some("got hello"), "rkctl attach printed {got:?}");
    drop(lines);
    let _ = attach.start_kill();

    let logs = k.ok(&["logs", &name]).await?;
    ensure!(logs.contains("GET /") || logs.contains("response:200"), "httpd -v logged nothing: {logs:?}");

    // A crashing container and an image that is not there.
    let crash = json!({"metadata": {"name": "crash"}, "spec": {"containers": [
        {"name": "main", "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", "exit 4"]}]}});
    pods.create(&PostParams::default(), &from_json(crash)?).await?;
    let absent = json!({"metadata": {"name": "absent"}, "spec": {"containers": [
        {"name": "main", "image": "rk-test-no-such-image:0", "imagePullPolicy": "Never"}]}});
    pods.create(&PostParams::default(), &from_json(absent)?).await?;
    wait_pod(&pods, "crash", "CrashLoopBackOff", Duration::from_secs(60), |p| {
        let s = container(p)?;
        let waiting = s.state.as_ref()?.waiting.as_ref()?.reason.as_deref() == Some("CrashLoopBackOff");
        (waiting && s.last_state.as_ref()?.terminated.as_ref()?.exit_code == 4).then_some(())
    })
    .await?;
    let reason = wait_pod(&pods, "absent", "an image error", Duration::from_secs(30), |p| {
        container(p)?.state.as_ref()?.waiting.as_ref()?.reason.clone()
    })
    .await?;
    ensure!(reason == "ErrImageNeverPull" || reason.contains("Image"), "waiting reason {reason}");

    // Delete: the containers go.
    deploys.delete("web", &DeleteParams::default()).await?;
    for name in ["crash", "absent", "reader"] {
        pods.delete(name, &DeleteParams::default()).await?;
    }
    let node = cluster.agents[0].name.clone();
    wait_for("no containers left on the node", Duration::from_secs(60), || async {
        let out = tokio::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=io.rk.node={node}")])
            .output()
            .await
            .ok()?;
        out.stdout.iter().all(u8::is_ascii_whitespace).then_some(())
    })
    .await?;
    Ok(())
}

/// In-cluster clients work as in Kubernetes: every pod gets its ServiceAccount's token,
/// the cluster CA and its namespace at /var/run/secrets/kubernetes.io/serviceaccount, and
/// the official Python client's in-cluster configuration reaches the API through the
/// `kubernetes` Service's cluster IP over TLS, allowed what RBAC grants the account.
/// (The process runtime puts volumes under `$RK_ROOT`, so the script names the files.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_reaches_the_api_with_its_service_account_token() -> Result<()> {
    rk_tests::require_python_client()?;
    let (cluster, c) = cluster_with_node("process").await?;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    cms.create(&PostParams::default(), &from_json(json!({"metadata": {"name": "marker"}}))?).await?;
    // The account may read ConfigMaps, nothing more.
    let admin = cluster.kubeconfig(0)?;
    let k = Kubectl::new(32, admin)?;
    k.ok(&["create", "rolebinding", "sa-view", "--clusterrole", "view", "--serviceaccount", "default:default"]).await?;
    let script = r#"
import os, sys
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader
sa = os.environ.get("RK_ROOT", "") + "/var/run/secrets/kubernetes.io/serviceaccount"
InClusterConfigLoader(token_filename=sa + "/token", cert_filename=sa + "/ca.crt").load_and_set()
ns = open(sa + "/namespace").read()
api = client.CoreV1Api()
names = [c.metadata.name for c in api.list_namespaced_config_map(ns).items]
try:
    api.list_namespaced_secret(ns)
    print("secrets readable")
except ApiException as e:
    print("secrets refused", e.status)
print("in-cluster", ns, "marker" in names, os.environ["KUBERNETES_SERVICE_HOST"])
"#;
    // The leader lists the replicas in the `kubernetes` Endpoints within seconds of
    // starting, and the node's proxy follows: wait until the cluster IP answers (the
    // pod is a host process, so the host's own connection takes its path).
    let tls = cluster.admin.clone().context("admin")?.rustls(false)?;
    wait_for("the kubernetes Service's cluster IP to answer", Duration::from_secs(30), || {
        let tls = tls.clone();
        async move {
            let (code, _) =
                rk_tests::https_request("10.96.0.1:443".parse().ok()?, tls, "GET", "/version", &[]).await.ok()?;
            (code == 200).then_some(())
        }
    })
    .await?;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let pod: Pod = from_json(json!({"metadata": {"name": "in-cluster"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "py", "image": "python", "command": ["python3", "-c", script]}]}}))?;
    let created = pods.create(&PostParams::default(), &pod).await?;
    // ServiceAccount admission: the default account and its token volume.
    let spec = created.spec.clone().context("spec")?;
    ensure!(spec.service_account_name.as_deref() == Some("default"), "{spec:?}");
    let mounts = spec.containers[0].volume_mounts.clone().unwrap_or_default();
    ensure!(
        mounts.iter().any(|m| m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount"
            && m.name.starts_with("kube-api-access-")),
        "{mounts:?}"
    );
    let done = wait_pod(&pods, "in-cluster", "finished", Duration::from_secs(60), |p| {
        matches!(phase(p).as_str(), "Succeeded" | "Failed").then(|| phase(p))
    })
    .await?;
    let logs = pods.logs("in-cluster", &Default::default()).await?;
    ensure!(done == "Succeeded", "the in-cluster client failed:\n{logs}\n{}", cluster.logs());
    ensure!(logs.contains("in-cluster default True 10.96.0.1"), "{logs}");
    ensure!(logs.contains("secrets refused 403"), "{logs}");
    Ok(())
}

/// The agent's port (logs, exec, usage) is TLS and serves only the API server and admins
/// (`system:masters`): plain HTTP and clients without a certificate get no answer, a
/// node's or a user's certificate gets 403; `kubectl logs` and `top` through the API work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_port_serves_only_the_api_server() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let k = cluster.start_agent("process", &[])?;
    let c = cluster.kube_client(0).await?;
    rk_tests::wait_nodes_ready(&Api::<Node>::all(c.clone()), 1).await.with_context(|| cluster.logs())?;
    let addr = std::net::SocketAddr::new(cluster.agents[k].ip, 10250);
    let plain = rk_tests::http_get(addr, "/healthz").await;
    ensure!(!matches!(plain, Ok((200, _))), "plain HTTP answered: {plain:?}");
    let admin = cluster.admin.clone().context("a TLS cluster has an admin")?;
    let without_cert = rk_tests::https_request(addr, admin.rustls(false)?, "GET", "/healthz", &[]).await;
    ensure!(without_cert.is_err(), "a client without a certificate got {without_cert:?}");
    let (code, _) = rk_tests::https_request(addr, admin.rustls_to_agents()?, "GET", "/healthz", &[]).await?;
    ensure!(code == 200, "the admin: {code}");
    let node = cluster.issue_creds("system:node:node-0", &["system:nodes"])?;
    let user = cluster.issue_creds("alice", &[])?;
    for (who, creds) in [("a node", node), ("a user", user)] {
        let (code, text) =
            rk_tests::https_request(addr, creds.rustls_to_agents()?, "GET", "/containerLogs/default/p/c", &[]).await?;
        ensure!(code == 403 && text.contains("system:masters"), "{who}: {code} {text}");
    }
    // Through the API server, which presents its own certificate, logs flow.
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "hello"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo hello from the agent"]}]}}))?;
    pods.create(&PostParams::default(), &pod).await?;
    let logs = wait_for("the pod's log through the API", Duration::from_secs(30), || async {
        pods.logs("hello", &Default::default()).await.ok().filter(|l| l.contains("hello from the agent"))
    })
    .await
    .with_context(|| cluster.logs())?;
    ensure!(logs.contains("hello from the agent"), "{logs}");
    Ok(())
}

/// A node that joined with a token renews its own certificate before it expires (here
/// certificates live 6 s and are renewed after 4): the kubeconfig it keeps gets new
/// certificates, which the API server takes on fresh connections, and the agent,
/// restarted after its first certificate expired, goes on renewing its Lease with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_node_renews_its_certificate() -> Result<()> {
    let opts =
        ClusterOptions { replicas: 1, extra_args: vec!["--cert-validity".into(), "6s".into()], ..Default::default() };
    let mut cluster = Cluster::start(opts).await?;
    let token = cluster.join_token("10m")?;
    let k = cluster.start_agent("process", &["--join", &token])?;
    let nodes: Api<Node> = Api::all(cluster.kube_client(0).await?);
    rk_tests::wait_nodes_ready(&nodes, 1).await.with_context(|| cluster.logs())?;
    let kept = cluster.agents[k].data_dir.join("kubeconfig");
    let cert_in = |path: &std::path::Path| -> Option<String> {
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        doc.pointer("/users/0/user/client-certificate-data")?.as_str().map(String::from)
    };
    let first = cert_in(&kept).context("the agent kept no certificate")?;
    let mut seen = std::collections::HashSet::from([first]);
    rk_tests::wait_for("two renewals of the node's certificate", Duration::from_secs(20), || {
        seen.extend(cert_in(&kept));
        let done = seen.len() >= 3;
        async move { done.then_some(()) }
    })
    .await
    .with_context(|| cluster.agents[k].log())?;
    // The kept kubeconfig works on a fresh connection, as the node.
    let config =
        kube::Config::from_custom_kubeconfig(kube::config::Kubeconfig::read_from(&kept)?, &Default::default()).await?;
    let as_node: Api<Node> = Api::all(kube::Client::try_from(config)?);
    let name = cluster.agents[k].name.clone();
    as_node.get(&name).await.context("the node reads its own Node with its renewed certificate")?;
    // Restarted, the agent connects anew with what it kept, and renews its Lease.
    cluster.restart_agent(k)?;
    let lease = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}");
    let renew_time = || async {
        let (code, text) = cluster.get(0, &lease).await.ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok().filter(|_| code == 200)?;
        v.pointer("/spec/renewTime").and_then(|t| t.as_str()).map(String::from)
    };
    let mut times = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while times.len() < 3 {
        ensure!(
            Instant::now() < deadline,
            "the restarted agent renewed its Lease {} times: {}",
            times.len(),
            cluster.agents[k].log()
        );
        times.extend(renew_time().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = cluster.agents[k].log();
    ensure!(log.contains("renewed the node's certificate"), "{log}");
    Ok(())
}

/// Join tokens: `rk-server token create` makes one; `rk-agent --join TOKEN` checks the
/// server against the CA the token pins, gets its own node certificate, keeps it, and
/// registers. A deleted token, one with the wrong secret, an expired one, or one pinning
/// another CA gets nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_with_a_token() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let token = cluster.join_token("10m")?;
    ensure!(token.starts_with("rk1:"), "{token}");
    let good = cluster.start_agent("process", &["--join", &token])?;
    let c = cluster.kube_client(0).await?;
    let nodes: Api<Node> = Api::all(c.clone());
    rk_tests::wait_nodes_ready(&nodes, 1).await.with_context(|| cluster.logs())?;
    // Its credentials are kept, readable by the agent only, and name the node.
    let kept = cluster.agents[good].data_dir.join("kubeconfig");
    use std::os::unix::fs::PermissionsExt;
    ensure!(std::fs::metadata(&kept)?.permissions().mode() & 0o777 == 0o600, "{}", kept.display());
    let name = cluster.agents[good].name.clone();
    ensure!(nodes.get(&name).await.is_ok(), "node {name} registered");
    // A restart uses the kept credentials, even with a token that no longer works.
    let secrets: Api<Secret> = Api::namespaced(c.clone(), "kube-system");
    let id = token.rsplit(':').next().and_then(|b| b.split('.').next()).context("token id")?;
    secrets.delete(&format!("bootstrap-token-{id}"), &DeleteParams::default()).await?;
    cluster.restart_agent(good)?;
    rk_tests::wait_nodes_ready(&nodes, 1).await?;

    // Refused: a deleted token, a wrong secret, an expired token, a token pinning another CA.
    let fresh = cluster.join_token("10m")?;
    let (head, _) = fresh.rsplit_once('.').context("token")?;
    let wrong_secret = format!("{head}.0000000000000000");
    let expiring = cluster.join_token("1s")?;
    let other_ca = format!("rk1:{}:{}", "0".repeat(64), fresh.rsplit(':').next().context("token")?);
    // Wait (with a deadline) until the server itself refuses the 1 s token.
    let tls = cluster.admin.clone().context("admin")?.rustls(false)?;
    let bearer = format!("Bearer {}", expiring.rsplit(':').next().context("token")?);
    let addr = cluster.replicas[0].client_addr();
    wait_for("the short token to expire", Duration::from_secs(10), || {
        let (tls, bearer) = (tls.clone(), bearer.clone());
        async move {
            let headers = [("Authorization", bearer.as_str()), ("Content-Length", "0")];
            let (code, _) =
                rk_tests::https_request(addr, tls, "POST", "/rk/v1/node-certificate", &headers).await.ok()?;
            (code == 401).then_some(())
        }
    })
    .await?;
    for (bad, says) in [
        (&token, "Unauthorized"),
        (&wrong_secret, "Unauthorized"),
        (&expiring, "Unauthorized"),
        (&other_ca, "no CA with the join token's hash"),
    ] {
        let k = cluster.start_agent("process", &["--join", bad])?;
        let agent = &mut cluster.agents[k];
        let log = wait_for("the agent to give up", Duration::from_secs(20), || {
            let exited = !agent.is_running();
            let log = agent.log();
            async move { exited.then_some(log) }
        })
        .await?;
        ensure!(log.contains(says), "{bad}: {log}");
        ensure!(!agent.data_dir.join("kubeconfig").exists(), "{bad} left credentials");
    }
    Ok(())
}
