//! Where local clusters live on disk, and the record each one keeps.
//!
//! ```text
//! $RK_STATE_DIR (else $XDG_STATE_HOME/rk, else ~/.local/state/rk)
//!   clusters/<name>/
//!     cluster.json        this module's [`ClusterRecord`]: driver, addresses, processes
//!     replica-<id>/       an rk-server's data directory; replica-<id>.log its output
//!                         (docker driver: bound at /var/lib/rk in its container;
//!                         the log is written from `docker logs` when `up` fails)
//!     node-<k>/           an rk-agent's data directory (pods, volumes, pod logs);
//!                         node-<k>.log its output (docker driver: bound at the
//!                         same path in its container)
//! ```
//!
//! The directory is the cluster's lock: `up` creates it with `mkdir` (which fails when
//! it exists), so two `up`s of one name cannot both proceed. The record is rewritten
//! after every process start, so a `down` after an interrupted `up` still finds every
//! process that was started.

use super::ClusterError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file in a cluster's directory that describes it.
pub const RECORD_FILE: &str = "cluster.json";

/// The folder holding every cluster's directory.
pub fn clusters_dir() -> Result<PathBuf, ClusterError> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = env("RK_STATE_DIR")
        .or_else(|| env("XDG_STATE_HOME").map(|d| d.join("rk")))
        .or_else(|| env("HOME").map(|h| h.join(".local").join("state").join("rk")))
        .ok_or(ClusterError::NoStateDir)?;
    Ok(base.join("clusters"))
}

/// What a process of the cluster is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An `rk-server` replica.
    Replica,
    /// An `rk-agent` node.
    Node,
}

/// One process of the cluster, and enough to recognise it later: a pid alone is not
/// (pids are reused, and pid_max may be as low as 32768), so the kernel's start time
/// of the process is kept beside it and both must match before it is signalled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessRecord {
    pub role: Role,
    /// `replica-1`, or the Node's name (`rk-node-1`).
    pub name: String,
    /// Its own loopback address.
    pub ip: String,
    /// The client port (replicas) or the logs/exec port (nodes).
    pub port: u16,
    /// Replicas: where this replica serves cluster DNS (UDP and TCP).
    #[serde(default)]
    pub dns: Option<String>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// Zero until it was started.
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat`: when it started, in clock ticks since boot.
    pub start_ticks: u64,
    /// Docker driver: the container it runs in (pid and start ticks stay zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Nodes: where its agent serves Ingress, on its address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressPorts>,
}

/// The ports a node serves Ingress on (plain HTTP and TLS).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngressPorts {
    pub http: u16,
    pub https: u16,
}

/// A local cluster, as `cluster.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterRecord {
    pub name: String,
    /// `process` or `docker`.
    pub driver: String,
    /// The API server URL the kubeconfig points at (replica 1's).
    pub api: String,
    /// Where cluster DNS answers (replica 1's; every replica serves it on its address).
    pub dns: String,
    /// The kubeconfig context (and cluster and user) `up` wrote.
    pub context: String,
    /// The kubeconfig file that context was written to, once written.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Set when `up` finished; a cluster without it is being created (or `up` was
    /// interrupted).
    #[serde(default)]
    pub complete: bool,
    /// Docker driver: the cluster's Docker network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    pub replicas: Vec<ProcessRecord>,
    pub nodes: Vec<ProcessRecord>,
}

impl ClusterRecord {
    /// Replicas, then nodes.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessRecord> {
        self.replicas.iter().chain(&self.nodes)
    }

    /// Writes `cluster.json` in `dir` (to a temporary file first, so a reader never
    /// sees half a record).
    pub fn save(&self, dir: &Path) -> Result<(), ClusterError> {
        let path = dir.join(RECORD_FILE);
        let tmp = dir.join(format!(".{RECORD_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(|e| ClusterError::io(&path, std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)).map_err(|e| ClusterError::io(&path, e))
    }

    pub fn load(dir: &Path) -> Result<ClusterRecord, ClusterError> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| ClusterError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| ClusterError::BadRecord { path, reason: e.to_string() })
    }
}

/// Every cluster directory under `clusters`, by name, with its record (or why it
/// could not be read).
pub fn list(clusters: &Path) -> Vec<(String, Result<ClusterRecord, ClusterError>)> {
    let mut out: Vec<_> = std::fs::read_dir(clusters)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok().map(|n| (n, e.path())))
        .map(|(name, dir)| (name, ClusterRecord::load(&dir)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let rec = ClusterRecord {
            name: "a".into(),
            driver: "process".into(),
            api: "http://127.42.1.1:2379".into(),
            dns: "127.42.1.1:5353".into(),
            context: "rk-a".into(),
            kubeconfig: None,
            complete: false,
            network: None,
            replicas: vec![ProcessRecord {
                role: Role::Replica,
                name: "replica-1".into(),
                ip: "127.42.1.1".into(),
                port: 2379,
                dns: None,
                data_dir: dir.path().join("a/replica-1"),
                log: dir.path().join("a/replica-1.log"),
                pid: 12,
                start_ticks: 34,
                container: None,
                ingress: None,
            }],
            nodes: vec![],
        };
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::create_dir_all(dir.path().join("broken")).unwrap();
        rec.save(&dir.path().join("a")).unwrap();
        assert_eq!(ClusterRecord::load(&dir.path().join("a")).unwrap(), rec);
        let all = list(dir.path());
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, "a");
        assert!(all[0].1.is_ok());
        assert_eq!(all[1].0, "broken");
        assert!(all[1].1.is_err(), "a directory without a record is listed, with its error");
    }
}
