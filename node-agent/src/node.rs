//! Node registration and heartbeat: the Node object (capacity read from the host,
//! addresses, labels, taints, node info, conditions) and its Lease in
//! `kube-node-lease`, renewed every few seconds.

use crate::client::Client;
use serde_json::{Value, json};
use std::time::Duration;

/// What the agent knows about its machine.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub ip: String,
    pub labels: Vec<(String, String)>,
    pub taints: Vec<Value>,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub reserved_cpu_millis: u64,
    pub reserved_memory_bytes: u64,
    pub max_pods: u64,
    pub runtime_version: String,
    pub port: u16,
    pub lease_duration: Duration,
    /// Hollow nodes report fixed host facts and no pressure.
    pub hollow: bool,
}

/// Number of CPUs the host offers.
pub fn host_cpu_millis() -> u64 {
    std::thread::available_parallelism().map(|n| n.get() as u64 * 1000).unwrap_or(1000)
}

fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn host_memory_bytes() -> u64 {
    meminfo("MemTotal:").unwrap_or(1 << 30)
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// Node conditions from the host: memory, disk and PID pressure, and Ready.
pub fn conditions(data_dir: &std::path::Path, hollow: bool, now: &str) -> Vec<Value> {
    let cond = |kind: &str, status: bool, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": if status { "True" } else { "False" },
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        })
    };
    let memory_pressure = !hollow && meminfo("MemAvailable:").is_some_and(|a| a < 100 << 20);
    let disk_pressure = !hollow && disk_free_fraction(data_dir).is_some_and(|f| f < 0.05);
    let pid_pressure = !hollow && pid_pressure();
    vec![
        cond(
            "MemoryPressure",
            memory_pressure,
            if memory_pressure { "KubeletHasInsufficientMemory" } else { "KubeletHasSufficientMemory" },
            if memory_pressure { "available memory is below 100Mi" } else { "kubelet has sufficient memory available" },
        ),
        cond(
            "DiskPressure",
            disk_pressure,
            if disk_pressure { "KubeletHasDiskPressure" } else { "KubeletHasNoDiskPressure" },
            if disk_pressure {
                "less than 5% of the data directory's disk is free"
            } else {
                "kubelet has no disk pressure"
            },
        ),
        cond(
            "PIDPressure",
            pid_pressure,
            if pid_pressure { "KubeletHasInsufficientPID" } else { "KubeletHasSufficientPID" },
            if pid_pressure { "over 90% of process ids are in use" } else { "kubelet has sufficient PID available" },
        ),
        cond("Ready", true, "KubeletReady", "rk-agent is posting ready status"),
    ]
}

fn disk_free_fraction(dir: &std::path::Path) -> Option<f64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let total = st.blocks() as f64;
    (total > 0.0).then(|| st.blocks_available() as f64 / total)
}

fn pid_pressure() -> bool {
    let max: f64 = read_trim("/proc/sys/kernel/pid_max").parse().unwrap_or(0.0);
    let used = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
                .count()
        })
        .unwrap_or(0) as f64;
    max > 0.0 && used / max > 0.9
}

impl NodeSpec {
    /// The Node object this agent registers.
    pub fn object(&self, data_dir: &std::path::Path, now: &str) -> Value {
        let mut labels = serde_json::Map::new();
        labels.insert("kubernetes.io/hostname".into(), json!(self.name));
        labels.insert("kubernetes.io/os".into(), json!("linux"));
        labels.insert("kubernetes.io/arch".into(), json!(arch()));
        labels.insert("beta.kubernetes.io/os".into(), json!("linux"));
        labels.insert("beta.kubernetes.io/arch".into(), json!(arch()));
        for (k, v) in &self.labels {
            labels.insert(k.clone(), json!(v));
        }
        let allocatable_cpu = self.cpu_millis.saturating_sub(self.reserved_cpu_millis);
        let allocatable_mem = self.memory_bytes.saturating_sub(self.reserved_memory_bytes);
        let mut node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": self.name, "labels": labels },
            "spec": {},
            "status": self.status(data_dir, now),
        });
        node["status"]["allocatable"] = json!({
            "cpu": format!("{allocatable_cpu}m"),
            "memory": format!("{}Ki", allocatable_mem / 1024),
            "pods": self.max_pods.to_string(),
            "ephemeral-storage": "10Gi",
        });
        if !self.taints.is_empty() {
            node["spec"]["taints"] = json!(self.taints);
        }
        node
    }

    /// The Node's status (refreshed on every heartbeat).
    pub fn status(&self, data_dir: &std::path::Path, now: &str) -> Value {
        let allocatable_cpu = self.cpu_millis.saturating_sub(self.reserved_cpu_millis);
        let allocatable_mem = self.memory_bytes.saturating_sub(self.reserved_memory_bytes);
        let (kernel, machine_id, boot_id) = if self.hollow {
            ("hollow".to_string(), format!("hollow-{}", self.name), format!("hollow-{}", self.name))
        } else {
            (
                read_trim("/proc/sys/kernel/osrelease"),
                read_trim("/etc/machine-id"),
                read_trim("/proc/sys/kernel/random/boot_id"),
            )
        };
        json!({
            "capacity": {
                "cpu": format!("{}m", self.cpu_millis),
                "memory": format!("{}Ki", self.memory_bytes / 1024),
                "pods": self.max_pods.to_string(),
                "ephemeral-storage": "10Gi",
            },
            "allocatable": {
                "cpu": format!("{allocatable_cpu}m"),
                "memory": format!("{}Ki", allocatable_mem / 1024),
                "pods": self.max_pods.to_string(),
                "ephemeral-storage": "10Gi",
            },
            "addresses": [
                { "type": "InternalIP", "address": self.ip },
                { "type": "Hostname", "address": self.name },
            ],
            "conditions": conditions(data_dir, self.hollow, now),
            "daemonEndpoints": { "kubeletEndpoint": { "Port": self.port } },
            "nodeInfo": {
                "machineID": machine_id,
                "systemUUID": machine_id,
                "bootID": boot_id,
                "kernelVersion": kernel,
                "osImage": if self.hollow { "hollow".to_string() } else { os_image() },
                "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": format!("v1.33.0-rk+{}", env!("CARGO_PKG_VERSION")),
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": arch(),
            },
        })
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// Creates the Node (or refreshes an existing one's status and labels, keeping
/// taints others set) and its Lease.
pub async fn register(
    client: &Client,
    spec: &NodeSpec,
    data_dir: &std::path::Path,
) -> Result<(), crate::client::ClientError> {
    let now = crate::now();
    let node = spec.object(data_dir, &now);
    match client.create("nodes", None, &node).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {
            let patch = json!({ "metadata": { "labels": node["metadata"]["labels"] } });
            client.patch_merge("nodes", None, &spec.name, &patch).await?;
        }
        Err(e) => return Err(e),
    }
    client.patch_status_merge("nodes", None, &spec.name, &json!({ "status": spec.status(data_dir, &now) })).await?;
    renew_lease(client, spec).await
}

/// Renews (or creates) the node's Lease.
pub async fn renew_lease(client: &Client, spec: &NodeSpec) -> Result<(), crate::client::ClientError> {
    let now = crate::now_micro();
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": spec.name, "namespace": "kube-node-lease" },
        "spec": {
            "holderIdentity": spec.name,
            "leaseDurationSeconds": spec.lease_duration.as_secs().max(1),
            "renewTime": now,
        },
    });
    client.put("leases", Some("kube-node-lease"), &spec.name, &lease).await.map(|_| ())
}

/// An unchanged node status is still written this often (kubelet's
/// `nodeStatusReportFrequency`); the Lease is the heartbeat in between.
const STATUS_REPORT_FREQUENCY: Duration = Duration::from_secs(300);

/// Condition fields that change without the condition changing.
const CONDITION_TIMES: [&str; 2] = ["lastHeartbeatTime", "lastTransitionTime"];

/// Whether the server's node `current` already says everything `status` would
/// (heartbeat and transition times aside). Another writer, such as the node
/// lifecycle controller marking an unreachable node `Unknown`, makes it false.
fn reports_same(status: &Value, current: Option<&Value>) -> bool {
    let (Some(ours), Some(theirs)) = (status.as_object(), current.and_then(Value::as_object)) else { return false };
    let without_times = |c: &Value| {
        let mut c = c.clone();
        if let Some(m) = c.as_object_mut() {
            for t in CONDITION_TIMES {
                m.remove(t);
            }
        }
        c
    };
    ours.iter().all(|(key, value)| match (key.as_str(), value.as_array()) {
        ("conditions", Some(conditions)) => conditions.iter().all(|c| {
            let same_type = |t: &&Value| t.get("type") == c.get("type");
            let theirs = theirs.get("conditions").and_then(Value::as_array).and_then(|ts| ts.iter().find(same_type));
            theirs.is_some_and(|t| without_times(t) == without_times(c))
        }),
        _ => theirs.get(key) == Some(value),
    })
}

/// Keeps the server's `lastTransitionTime` for conditions whose status did not
/// change (it is when the status last changed, not when it was last written).
fn keep_transition_times(status: &mut Value, current: Option<&Value>) {
    let theirs = current.and_then(|c| c.get("conditions")).and_then(Value::as_array).cloned().unwrap_or_default();
    let Some(ours) = status.get_mut("conditions").and_then(Value::as_array_mut) else { return };
    for c in ours.iter_mut() {
        let same = theirs.iter().find(|t| t.get("type") == c.get("type") && t.get("status") == c.get("status"));
        if let (Some(at), Some(m)) = (same.and_then(|t| t.get("lastTransitionTime")).cloned(), c.as_object_mut()) {
            m.insert("lastTransitionTime".into(), at);
        }
    }
}

/// Renews the lease every `interval`; every tenth time also looks at the node
/// status and writes it when it changed (or every [`STATUS_REPORT_FREQUENCY`]), as
/// kubelet does: a thousand nodes rewriting an unchanged status every few seconds
/// is most of a control plane's write load. Runs forever. Failures (the control
/// plane is unreachable) are logged and retried: pods keep running meanwhile.
pub async fn heartbeat(client: Client, spec: NodeSpec, data_dir: std::path::PathBuf, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    let mut registered = false;
    // When this agent last wrote the node status.
    let mut reported: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        let result = if !registered {
            reported = None;
            register(&client, &spec, &data_dir).await
        } else if n.is_multiple_of(10) {
            let mut status = spec.status(&data_dir, &crate::now());
            // A read, not a write: what the server holds now.
            let current = client.get("nodes", None, &spec.name).await.ok();
            let current_status = current.as_ref().and_then(|n| n.get("status"));
            let recent = reported.is_some_and(|at| at.elapsed() < STATUS_REPORT_FREQUENCY);
            if recent && reports_same(&status, current_status) {
                renew_lease(&client, &spec).await
            } else {
                keep_transition_times(&mut status, current_status);
                match client.patch_status_merge("nodes", None, &spec.name, &json!({ "status": status })).await {
                    Ok(_) => {
                        reported = Some(std::time::Instant::now());
                        renew_lease(&client, &spec).await
                    }
                    Err(e) if e.is_not_found() => {
                        registered = false;
                        Err(e)
                    }
                    Err(e) => Err(e),
                }
            }
        } else {
            renew_lease(&client, &spec).await
        };
        match result {
            Ok(()) => registered = true,
            Err(e) => tracing::warn!(node = spec.name, error = %e, "node heartbeat failed; pods keep running"),
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_written_only_when_the_server_says_something_else() {
        let ready = |status: &str, t: &str| {
            json!({"capacity": {"pods": "110"}, "conditions": [
                {"type": "Ready", "status": status, "lastHeartbeatTime": t, "lastTransitionTime": t}]})
        };
        let server = json!({"capacity": {"pods": "110"}, "addresses": [], "conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "t0", "lastTransitionTime": "t0"},
            {"type": "NetworkUnavailable", "status": "False"}]});
        // Only older: nothing to write (fields only the server has do not count).
        assert!(reports_same(&ready("True", "t9"), Some(&server)));
        // The node lifecycle controller marked it Unknown: write it back.
        let unknown = json!({"capacity": {"pods": "110"}, "conditions": [{"type": "Ready", "status": "Unknown"}]});
        assert!(!reports_same(&ready("True", "t9"), Some(&unknown)));
        assert!(!reports_same(&json!({"capacity": {"pods": "100"}}), Some(&server)));
        assert!(!reports_same(&ready("True", "t9"), None));
        // A written status keeps the time its Ready status last changed...
        let mut status = ready("True", "t9");
        keep_transition_times(&mut status, Some(&server));
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "t0");
        // ...unless it changed now.
        let mut status = ready("False", "t9");
        keep_transition_times(&mut status, Some(&server));
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "t9");
    }

    #[test]
    fn node_object_shape() {
        let spec = NodeSpec {
            name: "n1".into(),
            ip: "10.0.0.5".into(),
            labels: vec![("zone".into(), "a".into())],
            taints: vec![json!({"key": "gpu", "effect": "NoSchedule"})],
            cpu_millis: 4000,
            memory_bytes: 8 << 30,
            reserved_cpu_millis: 100,
            reserved_memory_bytes: 256 << 20,
            max_pods: 110,
            runtime_version: "hollow://0.1".into(),
            port: 10250,
            lease_duration: Duration::from_secs(10),
            hollow: true,
        };
        let n = spec.object(std::path::Path::new("/tmp"), "2026-01-01T00:00:00Z");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "n1");
        assert_eq!(n["metadata"]["labels"]["zone"], "a");
        assert_eq!(n["status"]["allocatable"]["cpu"], "3900m");
        assert_eq!(n["status"]["capacity"]["pods"], "110");
        assert_eq!(n["spec"]["taints"][0]["key"], "gpu");
        let ready = n["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
    }
}
