//! `rk-agent`'s command line.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// Real containers through the local Docker Engine.
    Docker,
    /// Containers as host processes (no images, no isolation, host network).
    Process,
    /// Simulated containers, for scale tests.
    Hollow,
}

/// The node agent of rk: registers this machine as a Node and runs the pods the
/// scheduler binds to it.
#[derive(Parser, Debug, Clone)]
#[command(name = "rk-agent", version, about = "The node agent of rk", long_about)]
pub struct Config {
    /// URL of the API server, e.g. https://10.0.0.1:2379; several control-plane replicas
    /// comma-separated, and the agent fails over between them. Default: the kubeconfig's
    /// server.
    #[arg(long, env = "RK_SERVER")]
    pub server: Option<String>,

    /// The node's credentials: a kubeconfig with the cluster CA and a client certificate
    /// for `system:node:<name>` in group `system:nodes` (`rk-server certs kubeconfig`
    /// writes one). Without it the agent can only talk to `--insecure-dev` replicas.
    #[arg(long, env = "RK_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// A join token (`rk-server token create`): with --server, the agent checks the
    /// server against the CA the token pins, gets its own certificate and keeps its
    /// credentials as `<data-dir>/kubeconfig` (used from then on; the token is then no
    /// longer needed).
    #[arg(long, env = "RK_JOIN_TOKEN", value_name = "TOKEN", conflicts_with = "kubeconfig")]
    pub join: Option<String>,

    /// Node name (default: the host name).
    #[arg(long)]
    pub name: Option<String>,

    /// Container runtime (default: docker when a Docker socket answers, else process).
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeKind>,

    /// Hollow runtime only: how many nodes this process simulates (named NAME-0 … NAME-(N-1)).
    #[arg(long, default_value_t = 1)]
    pub count: usize,

    /// Where pod directories, volumes and process-runtime logs live.
    #[arg(long, default_value = "/var/lib/rk-agent")]
    pub data_dir: PathBuf,

    /// The node's address as other machines reach it (default: the address used to reach the server).
    #[arg(long)]
    pub node_ip: Option<String>,

    /// Where the agent serves logs, exec and metrics to the API server.
    #[arg(long, default_value = "0.0.0.0:10250")]
    pub listen: SocketAddr,

    /// Extra node labels, key=value,…
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,

    /// Taints to register with, key[=value]:Effect,…
    #[arg(long, value_delimiter = ',')]
    pub register_with_taints: Vec<String>,

    /// CPU held back from pods, in millicores.
    #[arg(long, default_value_t = 100)]
    pub reserved_cpu_millis: u64,

    /// Memory held back from pods, in MiB.
    #[arg(long, default_value_t = 256)]
    pub reserved_memory_mib: u64,

    /// Most pods this node runs.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u64,

    /// CPU and memory to report instead of the host's (e.g. for hollow nodes): millicores.
    #[arg(long)]
    pub capacity_cpu_millis: Option<u64>,

    /// Memory to report instead of the host's, in MiB.
    #[arg(long)]
    pub capacity_memory_mib: Option<u64>,

    /// How often the node's Lease is renewed.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub lease_renew_interval: Duration,

    /// Docker runtime: the network pods join.
    #[arg(long, default_value = "rk-pods")]
    pub docker_network: String,

    /// Cluster DNS server written to pods' resolv.conf (default: the host's resolvers).
    #[arg(long)]
    pub cluster_dns: Option<String>,

    /// Cluster domain for pods' DNS search path.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,

    /// Service data path: auto (nftables with the docker runtime, userspace with the
    /// process runtime, off for hollow nodes), nftables, userspace or off.
    #[arg(long, value_enum, default_value_t = crate::proxy::ProxyMode::Auto)]
    pub proxy_mode: crate::proxy::ProxyMode,

    /// Docker runtime, for an agent in a container of its own (the docker driver of
    /// `rkctl cluster up`): pod sandboxes route this range (the cluster's Service
    /// CIDR) to `--node-ip`, where this agent's nftables rules serve cluster IPs;
    /// otherwise pods send that traffic to the engine's host, which has no rules for
    /// it. Needs nftables mode, CAP_NET_ADMIN and IP forwarding where the agent runs,
    /// and `--route-helper`.
    #[arg(long, value_name = "CIDR")]
    pub pod_service_route: Option<String>,

    /// Docker runtime, for an agent in a container of its own: host-network pods share
    /// this container's network (the node's address and hostname) instead of the
    /// engine host's.
    #[arg(long, value_name = "CONTAINER")]
    pub host_network_container: Option<String>,

    /// For `--pod-service-route`: a static busybox the sandboxes add their route with
    /// (copied under --data-dir, which the engine must see at the same path, and bound
    /// read-only into each sandbox).
    #[arg(long, default_value = "/bin/busybox")]
    pub route_helper: PathBuf,

    /// Serve Ingress (plain HTTP) on this address, e.g. 0.0.0.0:80; off by default.
    #[arg(long)]
    pub ingress_listen: Option<SocketAddr>,

    /// Serve Ingress over TLS on this address, e.g. 0.0.0.0:443, with the certificates
    /// of the Ingresses' `spec.tls` Secrets (picked by SNI); off by default.
    #[arg(long)]
    pub ingress_tls_listen: Option<SocketAddr>,

    /// The IngressClass this agent serves; Ingresses without a class are served too.
    #[arg(long, default_value = "rk")]
    pub ingress_class: String,

    /// Log level or tracing filter; RUST_LOG wins.
    #[arg(long, default_value = "warn")]
    pub log_level: String,
}

/// Parses `300ms`, `10s`, `5m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration; use e.g. 500ms, 10s or 5m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?} has an unknown unit; use ms, s or m")),
    }
}

/// A parsed `--register-with-taints` entry.
pub fn parse_taint(s: &str) -> Result<serde_json::Value, String> {
    let (kv, effect) = s.rsplit_once(':').ok_or_else(|| format!("taint {s:?} must look like key[=value]:Effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(format!("taint {s:?}: the effect must be NoSchedule, PreferNoSchedule or NoExecute"));
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if key.is_empty() {
        return Err(format!("taint {s:?} has no key"));
    }
    let mut t = serde_json::json!({"key": key, "effect": effect});
    if !value.is_empty() {
        t["value"] = serde_json::json!(value);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints() {
        assert_eq!(parse_taint("gpu=yes:NoSchedule").unwrap()["value"], "yes");
        assert_eq!(parse_taint("dedicated:NoExecute").unwrap()["key"], "dedicated");
        assert!(parse_taint("x:Sometimes").is_err());
        assert!(parse_taint("novalue").is_err());
    }
}
