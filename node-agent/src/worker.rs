//! One pod's worker: drives the runtime toward the pod's spec and reports status.
//!
//! Each sync: (deletion? → terminate gracefully, confirm) → sandbox → volumes →
//! init containers, in order, each to completion → app containers (start, probe,
//! restart per restartPolicy with back-off) → status, written only when it changed.
//! The worker keeps going when the API server is unreachable (static stability):
//! the pod keeps running and probing, and status is written once it is back.

use crate::probe::Probe;
use crate::runtime::{ContainerConfig, LogOptions, Runtime, RuntimeError, Sandbox, SandboxConfig, State};
use crate::spec::{self, ConfigError, Objects};
use crate::{Ctx, Events};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Back-off between restarts: 10 s doubling to 5 minutes, reset after 10 minutes
/// of running (the kubelet's numbers).
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// ConfigMap and Secret volumes are refreshed this often.
const VOLUME_REFRESH: Duration = Duration::from_secs(10);

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    jiff::Timestamp::from_second(secs).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// What the worker knows of one container.
#[derive(Debug)]
struct Run {
    name: String,
    spec: Value,
    id: Option<String>,
    attempt: u32,
    restarts: u32,
    state: State,
    /// The previous run's end (`lastState`).
    last: Option<State>,
    /// Why it is not running, when it is not (`waiting.reason`, `waiting.message`).
    waiting: Option<(String, String)>,
    backoff: Duration,
    not_before: Option<Instant>,
    started_at: Option<Instant>,
    startup: Option<Probe>,
    liveness: Option<Probe>,
    readiness: Option<Probe>,
    ready: bool,
    image: String,
}

impl Run {
    fn new(spec: &Value) -> Self {
        Self {
            name: spec["name"].as_str().unwrap_or("").to_string(),
            spec: spec.clone(),
            id: None,
            attempt: 0,
            restarts: 0,
            state: State::Unknown,
            last: None,
            waiting: Some(("ContainerCreating".into(), String::new())),
            backoff: Duration::ZERO,
            not_before: None,
            started_at: None,
            startup: None,
            liveness: None,
            readiness: None,
            ready: false,
            image: spec["image"].as_str().unwrap_or("").to_string(),
        }
    }

    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    fn exit_code(&self) -> Option<i32> {
        match &self.state {
            State::Exited { exit_code, .. } => Some(*exit_code),
            _ => None,
        }
    }

    fn reset_probes(&mut self, now: Instant) {
        let p = |k: &str| self.spec.get(k).filter(|v| v.is_object()).map(|v| Probe::new(v, now));
        self.startup = p("startupProbe");
        self.liveness = p("livenessProbe");
        self.readiness = p("readinessProbe");
    }

    fn started(&self) -> bool {
        self.running() && self.startup.as_ref().is_none_or(|p| p.passing == Some(true))
    }

    fn status_json(&self, runtime: &str) -> Value {
        let state = |s: &State, current: bool| -> Value {
            match s {
                State::Running { started_at } => json!({"running": {"startedAt": rfc3339(*started_at)}}),
                State::Exited { exit_code, reason, started_at, finished_at } => {
                    let mut t = json!({"exitCode": exit_code, "reason": reason, "finishedAt": rfc3339(*finished_at)});
                    if let Some(s) = started_at {
                        t["startedAt"] = json!(rfc3339(*s));
                    }
                    if let Some(id) = &self.id {
                        t["containerID"] = json!(format!("{runtime}://{id}"));
                    }
                    json!({"terminated": t})
                }
                _ if current => json!({"waiting": {"reason": "ContainerCreating"}}),
                _ => json!({}),
            }
        };
        let current = match (&self.waiting, &self.state) {
            (Some((reason, message)), _) if !self.running() => {
                let mut w = json!({"reason": reason});
                if !message.is_empty() {
                    w["message"] = json!(message);
                }
                json!({"waiting": w})
            }
            (_, s) => state(s, true),
        };
        let mut out = json!({
            "name": self.name,
            "state": current,
            "lastState": self.last.as_ref().map(|l| state(l, false)).unwrap_or(json!({})),
            "ready": self.ready,
            "restartCount": self.restarts,
            "image": self.image,
            "imageID": "",
            "started": self.started(),
        });
        if let Some(id) = &self.id {
            out["containerID"] = json!(format!("{runtime}://{id}"));
        }
        out
    }
}

/// The worker of one pod.
pub struct Worker {
    ctx: Arc<Ctx>,
    runtime: Arc<dyn Runtime>,
    pod: Value,
    uid: String,
    sandbox: Option<Sandbox>,
    sandbox_cfg: SandboxConfig,
    init: Vec<Run>,
    apps: Vec<Run>,
    init_done: bool,
    volumes: HashMap<String, PathBuf>,
    volumes_at: Option<Instant>,
    pod_error: Option<(String, String)>,
    last_status: Value,
    events: Events,
}

impl Worker {
    /// A worker for `pod`; `adopted` are containers of this pod found running when
    /// the agent started.
    pub fn new(
        ctx: Arc<Ctx>,
        runtime: Arc<dyn Runtime>,
        pod: Value,
        adopted: Vec<crate::runtime::ContainerInfo>,
    ) -> Self {
        let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
        let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_string();
        let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        let pod_dir = ctx.data_dir.join("pods").join(&uid);
        let hostname = pod.pointer("/spec/hostname").and_then(Value::as_str).unwrap_or(&name).to_string();
        let sandbox_cfg = SandboxConfig {
            pod: crate::runtime::PodRef { uid: uid.clone(), namespace: ns.clone(), name },
            hostname,
            host_network: pod.pointer("/spec/hostNetwork").and_then(Value::as_bool).unwrap_or(false),
            dns: ctx.dns_for(&ns),
            pod_dir,
        };
        let runs = |key: &str| -> Vec<Run> {
            pod.pointer(&format!("/spec/{key}")).and_then(Value::as_array).into_iter().flatten().map(Run::new).collect()
        };
        let mut w = Self {
            events: ctx.events.clone(),
            init: runs("initContainers"),
            apps: runs("containers"),
            ctx,
            runtime,
            pod,
            uid,
            sandbox: None,
            sandbox_cfg,
            init_done: false,
            volumes: HashMap::new(),
            volumes_at: None,
            pod_error: None,
            last_status: Value::Null,
        };
        w.adopt(adopted);
        w
    }

    /// Takes over containers a previous agent started, so nothing runs twice.
    fn adopt(&mut self, found: Vec<crate::runtime::ContainerInfo>) {
        let now = Instant::now();
        let mut any_app = false;
        for run in self.init.iter_mut().chain(self.apps.iter_mut()) {
            if let Some(c) = found.iter().filter(|c| c.container == run.name).max_by_key(|c| c.attempt) {
                run.id = Some(c.id.clone());
                run.attempt = c.attempt;
                run.restarts = c.attempt;
                run.state = c.state.clone();
                run.waiting = None;
                if run.running() {
                    run.started_at = Some(now);
                    run.reset_probes(now);
                }
            }
        }
        for run in &self.apps {
            any_app |= run.id.is_some();
        }
        // App containers exist only after every init container succeeded.
        self.init_done = any_app || self.init.is_empty();
    }

    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The container id of a container by name (for logs and exec).
    pub fn container_id(&self, name: &str) -> Option<String> {
        self.apps.iter().chain(self.init.iter()).find(|r| r.name == name).and_then(|r| r.id.clone())
    }

    fn restart_policy(&self) -> &str {
        self.pod.pointer("/spec/restartPolicy").and_then(Value::as_str).unwrap_or("Always")
    }

    fn pod_ip(&self) -> String {
        self.sandbox.as_ref().and_then(|s| s.ip.clone()).unwrap_or_else(|| self.ctx.node_ip.clone())
    }

    /// Runs until the pod is gone. `updates` carries new versions of the pod object;
    /// it closes when the pod was deleted from the API (then containers are killed).
    pub async fn run(mut self, mut updates: watch::Receiver<Option<Value>>) {
        loop {
            let next = self.sync().await;
            let Some(wait) = next else { return };
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() {
                        // The manager is gone: the agent is shutting down. Leave pods running.
                        return;
                    }
                    let update = updates.borrow_and_update().clone();
                    match update {
                        Some(pod) => self.update(pod),
                        None => {
                            // Removed from the API without us confirming: stop now.
                            self.terminate(Duration::ZERO).await;
                            return;
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn update(&mut self, pod: Value) {
        // Only images of containers may change in a pod's spec; take them.
        for run in self.init.iter_mut().chain(self.apps.iter_mut()) {
            let key = if self
                .pod
                .pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|c| c["name"] == run.name.as_str()))
            {
                "initContainers"
            } else {
                "containers"
            };
            if let Some(c) = pod
                .pointer(&format!("/spec/{key}"))
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|c| c["name"] == run.name.as_str()))
            {
                run.spec = c.clone();
            }
        }
        self.pod = pod;
    }

    /// One sync; returns how long to wait before the next (None: the worker is done).
    async fn sync(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if self.pod.pointer("/metadata/deletionTimestamp").is_some() {
            let grace =
                self.pod.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30).max(0);
            self.terminate(Duration::from_secs(grace as u64)).await;
            self.confirm_deletion().await;
            return None;
        }
        let phase = self.pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("").to_string();
        if phase == "Succeeded" || phase == "Failed" {
            // A finished pod stays finished; only the status may need writing.
            self.write_status(&phase).await;
            return Some(Duration::from_secs(30));
        }
        if self.sandbox.is_none() {
            match self.runtime.run_sandbox(&self.sandbox_cfg).await {
                Ok(s) => self.sandbox = Some(s),
                Err(e) => {
                    self.pod_error = Some(("CreatePodSandboxError".into(), e.to_string()));
                    self.events
                        .warning(&self.pod, "FailedCreatePodSandBox", &format!("Failed to create pod sandbox: {e}"))
                        .await;
                    self.write_status("Pending").await;
                    return Some(Duration::from_secs(5));
                }
            }
        }
        if self.volumes_at.is_none_or(|t| now.duration_since(t) >= VOLUME_REFRESH) {
            let mut objects = Objects::default();
            let pod_ip = self.pod_ip();
            let dir = self.sandbox_cfg.pod_dir.clone();
            match spec::volumes(&self.ctx.client, &mut objects, &self.pod, &dir, &pod_ip, &self.ctx.node_ip).await {
                Ok(v) => {
                    self.volumes = v;
                    self.volumes_at = Some(now);
                    self.pod_error = None;
                }
                Err(ConfigError::Api { .. }) if self.volumes_at.is_some() => {
                    // Unreachable API: keep the volumes as they are.
                }
                Err(e) => {
                    let first = self.volumes_at.is_none();
                    if first {
                        self.pod_error = Some(("FailedMount".into(), e.to_string()));
                        self.events.warning(&self.pod, "FailedMount", &e.to_string()).await;
                        self.write_status("Pending").await;
                        return Some(Duration::from_secs(5));
                    }
                }
            }
        }
        let mut wait = Duration::from_secs(1);
        // Init containers, in order, each to completion.
        if !self.init_done {
            let mut i = 0;
            while i < self.init.len() {
                self.refresh(i, true).await;
                let policy = self.restart_policy().to_string();
                match self.init[i].exit_code() {
                    Some(0) => {
                        i += 1;
                        continue;
                    }
                    Some(_) if policy == "Never" => {
                        self.write_status("Failed").await;
                        return Some(Duration::from_secs(30));
                    }
                    _ if self.init[i].running() => break,
                    _ => {
                        self.start(i, true).await;
                        break;
                    }
                }
            }
            if i == self.init.len() {
                self.init_done = true;
            }
        }
        if self.init_done {
            for i in 0..self.apps.len() {
                self.refresh(i, false).await;
                let run = &self.apps[i];
                let exited = run.exit_code();
                let restart = match (exited, self.restart_policy()) {
                    (None, _) => !run.running(),
                    (Some(_), "Always") => true,
                    (Some(code), "OnFailure") => code != 0,
                    _ => false,
                };
                if restart {
                    self.start(i, false).await;
                } else if self.apps[i].running() {
                    self.probe(i, now).await;
                }
                if let Some(nb) = self.apps[i].not_before {
                    wait = wait.min(nb.saturating_duration_since(Instant::now()).max(Duration::from_millis(100)));
                }
            }
        }
        let phase = self.phase();
        self.write_status(&phase).await;
        Some(wait)
    }

    /// Reads a container's state from the runtime, noting exits.
    async fn refresh(&mut self, i: usize, init: bool) {
        let run = if init { &mut self.init[i] } else { &mut self.apps[i] };
        let Some(id) = run.id.clone() else { return };
        match self.runtime.state(&id).await {
            Ok(state) => {
                if run.running() && matches!(state, State::Exited { .. }) {
                    run.ready = false;
                    if let State::Exited { exit_code, .. } = &state
                        && *exit_code != 0
                    {
                        let msg = format!("Container {} exited with code {exit_code}", run.name);
                        let pod = self.pod.clone();
                        self.events
                            .warning(
                                &pod,
                                "BackOff",
                                &format!("Back-off restarting failed container {}: {msg}", run.name),
                            )
                            .await;
                    }
                }
                run.state = state;
            }
            Err(RuntimeError::NotFound(_)) => {
                // Removed behind our back: start it again.
                run.state = State::Unknown;
                run.id = None;
            }
            Err(e) => tracing::debug!(container = run.name, error = %e, "cannot read container state"),
        }
    }

    /// Starts (or restarts, after its back-off) a container.
    async fn start(&mut self, i: usize, init: bool) {
        let now = Instant::now();
        {
            let run = if init { &mut self.init[i] } else { &mut self.apps[i] };
            if let Some(nb) = run.not_before
                && now < nb
            {
                if run.id.is_some() {
                    run.waiting = Some((
                        "CrashLoopBackOff".into(),
                        format!(
                            "back-off {}s restarting failed container={} pod={}",
                            run.backoff.as_secs(),
                            run.name,
                            self.sandbox_cfg.pod.name
                        ),
                    ));
                }
                return;
            }
        }
        let Some(sandbox) = self.sandbox.clone() else { return };
        let pod_ip = self.pod_ip();
        let container = if init { self.init[i].spec.clone() } else { self.apps[i].spec.clone() };
        let mut objects = Objects::default();
        let config = async {
            let env =
                spec::env(&self.ctx.client, &mut objects, &self.pod, &container, &pod_ip, &self.ctx.node_ip).await?;
            let mounts = spec::mounts(&container, &self.volumes)?;
            Ok::<_, ConfigError>((env, mounts))
        }
        .await;
        let (env, mounts) = match config {
            Ok(v) => v,
            Err(e) => {
                let run = if init { &mut self.init[i] } else { &mut self.apps[i] };
                run.waiting = Some(("CreateContainerConfigError".into(), e.to_string()));
                let pod = self.pod.clone();
                self.events.warning(&pod, "Failed", &format!("Error: {e}")).await;
                return;
            }
        };
        let strings = |k: &str| -> Vec<String> {
            container[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .map(|s| spec::expand(s, &env))
                .collect()
        };
        let annotations = self
            .pod
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        let run = if init { &mut self.init[i] } else { &mut self.apps[i] };
        let attempt = if run.id.is_some() { run.attempt + 1 } else { run.attempt };
        let cfg = ContainerConfig {
            name: run.name.clone(),
            image: run.image.clone(),
            command: strings("command"),
            args: strings("args"),
            env: env.clone(),
            working_dir: container["workingDir"].as_str().map(String::from),
            mounts,
            cpu_limit_millis: container
                .pointer("/resources/limits/cpu")
                .and_then(Value::as_str)
                .and_then(spec::cpu_millis),
            memory_limit_bytes: container
                .pointer("/resources/limits/memory")
                .and_then(Value::as_str)
                .and_then(spec::memory_bytes),
            attempt,
            tty: container["tty"].as_bool().unwrap_or(false),
            stdin: container["stdin"].as_bool().unwrap_or(false),
            stdin_once: container["stdinOnce"].as_bool().unwrap_or(false),
            pull_policy: container["imagePullPolicy"].as_str().unwrap_or("IfNotPresent").to_string(),
            annotations,
        };
        // The previous run is kept as lastState and removed.
        if let Some(old) = run.id.take() {
            run.last = Some(run.state.clone());
            run.restarts += 1;
            let _ = self.runtime.remove(&old).await;
        }
        let result = self.runtime.start(&sandbox, &self.sandbox_cfg, &cfg).await;
        let run = if init { &mut self.init[i] } else { &mut self.apps[i] };
        run.attempt = attempt;
        match result {
            Ok(id) => {
                run.id = Some(id);
                run.waiting = None;
                run.state = State::Running { started_at: SystemTime::now() };
                run.started_at = Some(now);
                // Back-off doubles for quick crashes and resets after a long run.
                run.backoff = if run.backoff.is_zero() { BACKOFF_BASE } else { (run.backoff * 2).min(BACKOFF_MAX) };
                run.not_before = Some(now + run.backoff);
                run.reset_probes(now);
                let (name, image) = (run.name.clone(), run.image.clone());
                let pod = self.pod.clone();
                self.events.normal(&pod, "Started", &format!("Started container {name} ({image})")).await;
            }
            Err(e) => {
                let reason = match &e {
                    RuntimeError::ImageNotFound { .. } => {
                        if run.waiting.as_ref().is_some_and(|(r, _)| r == "ErrImagePull" || r == "ImagePullBackOff") {
                            "ImagePullBackOff"
                        } else {
                            "ErrImagePull"
                        }
                    }
                    RuntimeError::Start(_) => "RunContainerError",
                    _ => "CreateContainerError",
                };
                run.waiting = Some((reason.into(), e.to_string()));
                run.backoff = if run.backoff.is_zero() { BACKOFF_BASE } else { (run.backoff * 2).min(BACKOFF_MAX) };
                run.not_before = Some(now + run.backoff);
                run.state = State::Unknown;
                let pod = self.pod.clone();
                self.events.warning(&pod, "Failed", &format!("Error: {e}")).await;
            }
        }
    }

    /// Runs the probes that are due; a failed liveness probe restarts the container.
    async fn probe(&mut self, i: usize, now: Instant) {
        let pod_ip = self.pod_ip();
        let runtime = self.runtime.clone();
        let run = &mut self.apps[i];
        let Some(id) = run.id.clone() else { return };
        if run.started_at.is_some_and(|s| now.duration_since(s) >= BACKOFF_RESET) {
            run.backoff = Duration::ZERO;
            run.not_before = None;
        }
        if let Some(p) = run.startup.as_mut()
            && p.passing != Some(true)
        {
            if p.due(now) {
                let (ok, msg) = p.run(runtime.as_ref(), &id, &run.spec, &pod_ip).await;
                if p.record(ok, msg.clone(), now) == Some(false) {
                    let name = run.name.clone();
                    let _ = runtime.stop(&id, Duration::from_secs(1)).await;
                    let pod = self.pod.clone();
                    self.events.warning(&pod, "Unhealthy", &format!("Startup probe failed: {msg}")).await;
                    self.events
                        .normal(&pod, "Killing", &format!("Container {name} failed startup probe, will be restarted"))
                        .await;
                }
            }
            run.ready = false;
            return;
        }
        if let Some(p) = run.liveness.as_mut()
            && p.due(now)
        {
            let (ok, msg) = p.run(runtime.as_ref(), &id, &run.spec, &pod_ip).await;
            if !ok {
                let pod = self.pod.clone();
                self.events.warning(&pod, "Unhealthy", &format!("Liveness probe failed: {msg}")).await;
            }
            if p.record(ok, msg, now) == Some(false) {
                let name = run.name.clone();
                let grace =
                    self.pod.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_u64).unwrap_or(30);
                let pod = self.pod.clone();
                self.events
                    .normal(&pod, "Killing", &format!("Container {name} failed liveness probe, will be restarted"))
                    .await;
                let _ = runtime.stop(&id, Duration::from_secs(grace)).await;
                let run = &mut self.apps[i];
                run.liveness = None;
                run.ready = false;
                return;
            }
        }
        let run = &mut self.apps[i];
        match run.readiness.as_mut() {
            None => run.ready = run.started(),
            Some(p) => {
                if p.due(now) {
                    let (ok, msg) = p.run(runtime.as_ref(), &id, &run.spec, &pod_ip).await;
                    let before = p.passing;
                    let after = p.record(ok, msg.clone(), now);
                    if !ok && before != Some(false) && after == Some(false) {
                        let pod = self.pod.clone();
                        self.events.warning(&pod, "Unhealthy", &format!("Readiness probe failed: {msg}")).await;
                    }
                    run.ready = after == Some(true);
                }
            }
        }
    }

    /// The pod's phase from its containers (Kubernetes' rules).
    fn phase(&self) -> String {
        if !self.init_done {
            return "Pending".into();
        }
        let policy = self.restart_policy();
        let mut running = 0;
        let mut waiting = 0;
        let mut succeeded = 0;
        let mut failed = 0;
        for r in &self.apps {
            match (&r.state, r.exit_code()) {
                (State::Running { .. }, _) => running += 1,
                (_, Some(0)) if policy != "Always" => succeeded += 1,
                (_, Some(_)) if policy == "Never" => failed += 1,
                (_, Some(_)) if policy == "OnFailure" => running += 1,
                (_, Some(_)) => running += 1,
                _ => waiting += 1,
            }
        }
        if waiting > 0 && running == 0 && succeeded == 0 && failed == 0 {
            return "Pending".into();
        }
        if waiting > 0 || running > 0 {
            return "Running".into();
        }
        if failed > 0 {
            return "Failed".into();
        }
        "Succeeded".into()
    }

    async fn write_status(&mut self, phase: &str) {
        let runtime = self.runtime.name();
        let ready = self.init_done && !self.apps.is_empty() && self.apps.iter().all(|r| r.ready);
        let now = crate::now();
        let cond = |kind: &str, ok: bool, reason: Option<&str>| {
            let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            c
        };
        let mut conditions = vec![
            cond("PodReadyToStartContainers", self.sandbox.is_some(), None),
            cond("Initialized", self.init_done, (!self.init_done).then_some("ContainersNotInitialized")),
            cond("Ready", ready, (!ready).then_some("ContainersNotReady")),
            cond("ContainersReady", ready, (!ready).then_some("ContainersNotReady")),
            cond("PodScheduled", true, None),
        ];
        // Transition times only move when a condition's status changes.
        if let Some(old) = self.pod.pointer("/status/conditions").and_then(Value::as_array) {
            for c in &mut conditions {
                if let Some(o) = old.iter().find(|o| o["type"] == c["type"])
                    && o["status"] == c["status"]
                {
                    c["lastTransitionTime"] = o["lastTransitionTime"].clone();
                }
            }
        }
        let pod_ip = self.pod_ip();
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.ctx.node_ip,
            "hostIPs": [{"ip": self.ctx.node_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": self.pod.pointer("/status/startTime").cloned().unwrap_or(json!(now)),
            "containerStatuses": self.apps.iter().map(|r| r.status_json(runtime)).collect::<Vec<_>>(),
            "qosClass": self.pod.pointer("/status/qosClass").cloned().unwrap_or(json!("BestEffort")),
        });
        if !self.init.is_empty() {
            status["initContainerStatuses"] =
                json!(self.init.iter().map(|r| r.status_json(runtime)).collect::<Vec<_>>());
        }
        if let Some((reason, message)) = &self.pod_error {
            status["reason"] = json!(reason);
            status["message"] = json!(message);
        }
        if self.sandbox.is_none() {
            for k in ["podIP", "podIPs"] {
                if let Some(m) = status.as_object_mut() {
                    m.remove(k);
                }
            }
        }
        let comparable = |s: &Value| {
            let mut s = s.clone();
            // Heartbeat-only differences do not warrant a write.
            if let Some(conds) = s["conditions"].as_array_mut() {
                for c in conds {
                    c["lastTransitionTime"] = Value::Null;
                }
            }
            s
        };
        if comparable(&status) == comparable(&self.last_status) {
            return;
        }
        let ns = self.sandbox_cfg.pod.namespace.clone();
        let name = self.sandbox_cfg.pod.name.clone();
        match self.ctx.client.patch_status_merge("pods", Some(&ns), &name, &json!({"status": status})).await {
            Ok(updated) => {
                self.last_status = status;
                if let Some(s) = updated.get("status") {
                    self.pod["status"] = s.clone();
                }
            }
            Err(e) => tracing::debug!(pod = name, error = %e, "cannot write pod status yet"),
        }
    }

    /// Runs preStop hooks, stops every container within the grace period, removes
    /// the sandbox and the pod's files.
    async fn terminate(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let ids: Vec<(String, Value)> =
            self.apps.iter().chain(self.init.iter()).filter_map(|r| Some((r.id.clone()?, r.spec.clone()))).collect();
        let pod_ip = self.pod_ip();
        let runtime = self.runtime.clone();
        let stops = ids.into_iter().map(|(id, spec)| {
            let runtime = runtime.clone();
            let pod_ip = pod_ip.clone();
            async move {
                if let Some(pre) = spec.pointer("/lifecycle/preStop").filter(|p| p.is_object()) {
                    // A preStop hook is run like a probe, within the grace period.
                    let mut hook = pre.clone();
                    hook["timeoutSeconds"] = json!(grace.as_secs().max(1));
                    let hook = Probe::new(&hook, Instant::now());
                    let _ =
                        tokio::time::timeout_at(deadline.into(), hook.run(runtime.as_ref(), &id, &spec, &pod_ip)).await;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = runtime.stop(&id, left).await;
                let _ = runtime.remove(&id).await;
            }
        });
        futures::future::join_all(stops).await;
        let _ = self.runtime.remove_sandbox(&self.uid).await;
        let _ = std::fs::remove_dir_all(&self.sandbox_cfg.pod_dir);
        self.sandbox = None;
        for r in self.apps.iter_mut().chain(self.init.iter_mut()) {
            r.id = None;
        }
    }

    /// Tells the API server the pod is gone from this node (grace period 0).
    async fn confirm_deletion(&self) {
        let opts = json!({"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}});
        let ns = &self.sandbox_cfg.pod.namespace;
        let name = &self.sandbox_cfg.pod.name;
        for attempt in 0..30u32 {
            match self.ctx.client.delete("pods", Some(ns), name, &opts).await {
                Ok(_) => return,
                Err(e) if e.is_not_found() || e.is_conflict() => return,
                Err(e) => {
                    tracing::debug!(pod = name, error = %e, "cannot confirm pod deletion yet");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1).min(10))).await;
                }
            }
        }
    }

    /// Logs of a container (for the agent's log endpoint).
    pub async fn logs(
        &self,
        container: &str,
        opts: &LogOptions,
        previous: bool,
    ) -> Result<futures::stream::BoxStream<'static, bytes::Bytes>, RuntimeError> {
        let _ = previous;
        let id = self.container_id(container).ok_or_else(|| RuntimeError::NotFound(container.to_string()))?;
        self.runtime.logs(&id, opts).await
    }
}
