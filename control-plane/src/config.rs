//! `rk-server`'s command line.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One replica of the rk control plane.
///
/// With no `--peers` and no `--join`, rk-server starts a single-replica cluster.
/// A three-replica cluster on one machine:
///
///   rk-server --id 1 --data-dir d1 --listen 127.0.0.1:2379 --peer-listen 127.0.0.1:2380 \
///     --peers 1=127.0.0.1:2380,2=127.0.0.1:2382,3=127.0.0.1:2384
///
/// (and the same with ids 2 and 3 and their own ports). Add a replica to a running
/// cluster with `--join` and the client address of any member.
///
/// Backups: `rk-server snapshot save FILE` and `rk-server snapshot restore FILE …`
/// (see `rk-server snapshot --help`).
#[derive(Parser, Debug, Clone)]
#[command(name = "rk-server", version, about = "One replica of the rk control plane", long_about)]
pub struct Config {
    /// This replica's id (1-65535). Defaults to 1 for a new cluster, to the id recorded
    /// in the data directory on restart, and to the next free id with --join.
    #[arg(long)]
    pub id: Option<u64>,

    /// Human-readable name shown by `etcdctl member list` (default: rk-<id>).
    #[arg(long)]
    pub name: Option<String>,

    /// Where the raft log and snapshots live (default: ./rk-<id>.data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Client address: the etcd v3 gRPC API and the Kubernetes REST API.
    #[arg(long, default_value = "127.0.0.1:2379")]
    pub listen: SocketAddr,

    /// Client address other members and clients should use (default: --listen).
    #[arg(long)]
    pub advertise_client: Option<String>,

    /// Peer address: raft traffic between replicas.
    #[arg(long, default_value = "127.0.0.1:2380")]
    pub peer_listen: SocketAddr,

    /// Peer address other members should dial (default: --peer-listen).
    #[arg(long)]
    pub advertise_peer: Option<String>,

    /// The founding members of a new cluster: id=host:port of each peer port,
    /// comma-separated, this replica included. Ignored once the data directory exists.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,

    /// Join a running cluster through the client address of any member (host:port).
    #[arg(long)]
    pub join: Option<String>,

    /// With --join: a replica token (`rk-server token create --replica`) from which this
    /// replica gets the cluster CA and the secrets encryption keys it lacks, checking the
    /// member it asks against the CA the token pins. Not needed once they are here.
    #[arg(
        long,
        env = "RK_REPLICA_JOIN_TOKEN",
        value_name = "TOKEN",
        requires = "join",
        conflicts_with = "insecure_dev",
        hide_env_values = true
    )]
    pub join_token: Option<String>,

    /// Length of one raft tick in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub tick_ms: u64,

    /// Election timeout in ticks (randomised between this and twice this). The default,
    /// 10 ticks of 20 ms, suits a LAN; raise both on slow networks.
    #[arg(long, default_value_t = 10)]
    pub election_ticks: usize,

    /// Heartbeat interval in ticks.
    #[arg(long, default_value_t = 1)]
    pub heartbeat_ticks: usize,

    /// Take a snapshot of the store after this many applied raft entries; it bounds the log.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_entries: u64,

    /// Raft entries kept behind a snapshot so slow followers catch up from the log.
    #[arg(long, default_value_t = 5_000)]
    pub snapshot_catchup_entries: u64,

    /// How long a write or linearizable read may wait for the cluster, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub request_timeout_ms: u64,

    /// Compact the store's history older than this (e.g. 5m, 1h; 0 turns it off).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub auto_compaction_retention: Duration,

    /// Interval of progress notifications for watches that ask for them.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub watch_progress_notify_interval: Duration,

    /// A node whose lease has not been renewed for this long is marked unreachable
    /// and its pods are evicted once their tolerations run out.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,

    /// Seconds new pods tolerate an unreachable or not-ready node before eviction
    /// (added to pods that do not say otherwise; Kubernetes uses 300).
    #[arg(long, default_value_t = 5)]
    pub default_toleration_seconds: i64,

    /// Where Services get their cluster IPs (the first address is the `kubernetes` Service's).
    #[arg(long, default_value = "10.96.0.0/16")]
    pub service_cluster_ip_range: String,

    /// Where NodePort Services get their ports.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// Serve cluster DNS on this address, UDP and TCP (off unless given). `:PORT`
    /// means the --listen address's IP, e.g. `--dns-listen :53`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub dns_listen: Option<String>,

    /// The cluster's DNS domain: Services are `<svc>.<ns>.svc.<domain>`.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,

    /// Nameservers (IP or IP:PORT, comma-separated) for names outside the cluster
    /// domain; default: the host's /etc/resolv.conf; `none`: refuse such names.
    #[arg(long, value_delimiter = ',', value_name = "IP[:PORT]")]
    pub dns_upstream: Vec<String>,

    /// TTL of cluster DNS answers, in seconds (negative answers too).
    #[arg(long, default_value_t = crate::dns::DEFAULT_TTL)]
    pub dns_ttl: u32,

    /// Log level (error, warn, info, debug, trace) or a tracing filter; RUST_LOG wins.
    #[arg(long, default_value = "warn")]
    pub log_level: String,

    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,

    /// The audit log of the Kubernetes API: one JSON line (audit.k8s.io/v1 Event, level
    /// Metadata) per request. Default: <data-dir>/audit/audit.log; `-` turns it off.
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,

    /// Rotate the audit log when it reaches this many MiB.
    #[arg(long, default_value_t = 100)]
    pub audit_log_maxsize: u64,

    /// Rotated audit logs to keep.
    #[arg(long, default_value_t = 5)]
    pub audit_log_maxbackup: usize,

    /// The key file Secrets are encrypted with at rest (XChaCha20-Poly1305): one base64
    /// key per line, the first encrypts, all decrypt; re-read when it changes. Keep it out
    /// of the data directory; every replica needs the same keys. Default: beside the data
    /// directory, `<data-dir>.secrets-key`. Created when missing, except by a replica that
    /// joins (it needs the cluster's keys: --join-token fetches them) or by one of several founding
    /// members that does not name it (they must share one: give each the same file).
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,

    /// The cluster CA's directory (`ca.crt`, `ca.key`). Default: `<data-dir>/pki`. The
    /// first replica of a new cluster creates the CA there; founding members of a cluster
    /// of several must name one directory they share (the first to start creates it), and
    /// a joining replica needs a copy of it (--join-token fetches one). Every replica issues its own certificates
    /// from it, and renews them before they expire.
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,

    /// Extra names (DNS names or IP addresses) for this replica's client port certificate,
    /// comma-separated: the names clients reach it by, besides its listen and advertise
    /// addresses, `localhost` and the `kubernetes` Service names.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub tls_san: Vec<String>,

    /// How long the certificates this replica issues itself are valid; each is replaced
    /// once two thirds of that have passed, without a restart.
    #[arg(long, default_value = "8760h", value_parser = parse_duration, hide = true)]
    pub cert_validity: Duration,

    /// Watches one client (a user, or an address without credentials) may hold open on
    /// this replica; more are refused with 429 TooManyRequests.
    #[arg(long, default_value_t = crate::api::limits::DEFAULT_MAX_WATCHES)]
    pub max_watches_per_client: usize,

    /// Other API requests one client may have in flight on this replica; more are
    /// refused with 429 TooManyRequests (and Retry-After), so one client cannot starve
    /// the others.
    #[arg(long, default_value_t = crate::api::limits::DEFAULT_MAX_IN_FLIGHT)]
    pub max_requests_in_flight_per_client: usize,

    /// For local experiments only: plain TCP on both ports (no TLS) and no authentication
    /// (every request may do anything). Said in a warning on every start.
    #[arg(long)]
    pub insecure_dev: bool,
}

/// Where the secrets key file of a data directory is when `--encryption-key-file` is
/// not given: beside the directory, so a copy of the directory does not carry it.
pub fn default_key_file(data_dir: &std::path::Path) -> Result<PathBuf, String> {
    let abs = std::path::absolute(data_dir).map_err(|e| format!("cannot resolve {}: {e}", data_dir.display()))?;
    let abs: PathBuf = abs.components().collect();
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => Ok(parent.join(format!("{}.secrets-key", name.to_string_lossy()))),
        _ => Err(format!(
            "the data directory {} has no parent to keep the secrets key file in; pass --encryption-key-file",
            data_dir.display()
        )),
    }
}

/// The CA directory: `--pki-dir`, or `<data-dir>/pki`.
pub fn pki_dir_of(pki_dir: &Option<PathBuf>, data_dir: &Option<PathBuf>) -> Option<PathBuf> {
    pki_dir.clone().or_else(|| data_dir.as_ref().map(|d| d.join("pki")))
}

/// `rk-server token …`: join tokens for new nodes and replicas.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "rk-server token",
    about = "Make join tokens: `rk-agent --join TOKEN` gets a node its credentials, `rk-server --join-token TOKEN` \
             a new replica"
)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// Make a join token, valid for --ttl: `rk-agent --join TOKEN --server URL` uses it to
    /// check the server (the token pins the cluster CA) and get the node's certificate;
    /// with --replica, `rk-server --join ADDR --join-token TOKEN` also uses it to get the
    /// cluster CA and the secrets keys for a new replica.
    Create {
        #[command(flatten)]
        pki: PkiArgs,
        /// Client address of any replica.
        #[arg(long, default_value = "127.0.0.1:2379")]
        endpoint: String,
        /// How long the token works (e.g. 30m, 24h).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: Duration,
        /// Why it was made (kept with the token).
        #[arg(long, default_value = "made by rk-server token create")]
        description: String,
        /// A token for a new replica: it also gives the cluster CA's key and the secrets
        /// encryption keys (everything a replica holds), so keep its --ttl short.
        #[arg(long)]
        replica: bool,
    },
}

/// `rk-server certs …`: credentials from the cluster CA.
#[derive(Parser, Debug, Clone)]
#[command(name = "rk-server certs", about = "Issue credentials from the cluster CA, and show when certificates expire")]
pub struct CertsArgs {
    #[command(subcommand)]
    pub command: CertsCommand,
}

/// Which CA: `--pki-dir`, or the default one of `--data-dir`.
#[derive(clap::Args, Debug, Clone)]
pub struct PkiArgs {
    /// The cluster CA's directory (`ca.crt`, `ca.key`).
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
    /// A replica's data directory (its CA is in `<data-dir>/pki` by default).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl PkiArgs {
    pub fn dir(&self) -> Result<PathBuf, String> {
        pki_dir_of(&self.pki_dir, &self.data_dir)
            .ok_or_else(|| "say which CA: --pki-dir DIR or --data-dir DIR".to_string())
    }
}

/// Who a client certificate names.
#[derive(clap::Args, Debug, Clone)]
pub struct SubjectArgs {
    /// The user (the certificate's common name). `system:node:<name>` with group
    /// `system:nodes` makes a node agent's credentials.
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// Groups (the certificate's organizations), comma-separated or repeated; at most
    /// two. `system:masters` may do anything.
    #[arg(long = "group", value_delimiter = ',', default_value = "system:masters")]
    pub groups: Vec<String>,
    /// How long the certificate is valid (e.g. 24h; default one year).
    #[arg(long, default_value = "8760h", value_parser = parse_duration)]
    pub validity: Duration,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum CertsCommand {
    /// Write a kubeconfig with the CA and a new client certificate embedded: what
    /// kubectl, rkctl, client libraries and `rk-agent --kubeconfig` read.
    Kubeconfig {
        #[command(flatten)]
        pki: PkiArgs,
        #[command(flatten)]
        subject: SubjectArgs,
        /// The API server's URLs, comma-separated (the first is the kubeconfig's server).
        #[arg(long, value_delimiter = ',', required = true)]
        server: Vec<String>,
        /// Where to write it (mode 0600); `-` prints it.
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// The kubeconfig's cluster, user and context name.
        #[arg(long, default_value = "rk")]
        name: String,
    },
    /// Write `<user>.crt`, `<user>.key` and `ca.crt` into a directory (for etcdctl's
    /// --cert, --key and --cacert, or curl's).
    Issue {
        #[command(flatten)]
        pki: PkiArgs,
        #[command(flatten)]
        subject: SubjectArgs,
        /// The directory to write them into (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Show when the CA expires.
    Status {
        #[command(flatten)]
        pki: PkiArgs,
    },
}

/// `rk-server secrets …`: the keys Secrets are encrypted with at rest.
#[derive(Parser, Debug, Clone)]
#[command(name = "rk-server secrets", about = "Manage the keys Secrets are encrypted with at rest")]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SecretsCommand {
    /// Write a new key file with one fresh key (refused if the file exists). Copy it to
    /// every replica's `--encryption-key-file` before they first start.
    CreateKey(KeyFileArgs),
    /// Put a fresh key first in the key file: running replicas pick it up within seconds
    /// and the leader re-encrypts every Secret with it in the background. The old keys stay
    /// (they still decrypt) until `prune-keys`. Every replica must see the new file.
    RotateKey(KeyFileArgs),
    /// Show which key each Secret in a running cluster is encrypted with.
    Status {
        #[command(flatten)]
        key: KeyFileArgs,
        /// Client address of any member.
        #[arg(long, default_value = "127.0.0.1:2379")]
        endpoint: String,
    },
    /// Drop every key but the first from the key file, once `status` shows that no
    /// Secret needs them (checked first).
    PruneKeys {
        #[command(flatten)]
        key: KeyFileArgs,
        /// Client address of any member.
        #[arg(long, default_value = "127.0.0.1:2379")]
        endpoint: String,
    },
}

/// Which key file: `--encryption-key-file`, or the default one of `--data-dir`.
#[derive(clap::Args, Debug, Clone)]
pub struct KeyFileArgs {
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// The replica's data directory (its key file sits beside it by default).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The cluster CA's directory, for the calls to a running replica (default:
    /// `<data-dir>/pki`; not needed for an `http://` endpoint of an `--insecure-dev` one).
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
}

impl KeyFileArgs {
    /// The CA directory rk's tools dial running replicas with, if one is named.
    pub fn pki(&self) -> Option<PathBuf> {
        pki_dir_of(&self.pki_dir, &self.data_dir)
    }

    pub fn path(&self) -> Result<PathBuf, String> {
        match (&self.encryption_key_file, &self.data_dir) {
            (Some(f), _) => Ok(f.clone()),
            (None, Some(d)) => default_key_file(d),
            (None, None) => Err("say which key file: --encryption-key-file FILE or --data-dir DIR".into()),
        }
    }
}

/// Parses `300ms`, `10s`, `5m`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration; use e.g. 500ms, 10s, 5m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?} has an unknown unit; use ms, s, m or h")),
    }
}

/// Resolves `--dns-listen`: `ADDR:PORT`, or `:PORT` on the IP of `listen`.
pub fn parse_dns_listen(value: &str, listen: SocketAddr) -> Result<SocketAddr, String> {
    let bad = || format!("--dns-listen {value:?} must be ADDR:PORT or :PORT, e.g. 10.0.0.1:53 or :53");
    match value.strip_prefix(':') {
        Some(port) => Ok(SocketAddr::new(listen.ip(), port.parse().map_err(|_| bad())?)),
        None => value.parse().map_err(|_| bad()),
    }
}

/// Checks a cluster domain: DNS labels of letters, digits and `-`, e.g. `cluster.local`.
pub fn check_cluster_domain(domain: &str) -> Result<String, String> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 200
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok { Ok(d) } else { Err(format!("--cluster-domain {domain:?} is not a DNS name like cluster.local")) }
}

/// A parsed `--peers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    pub addr: String,
}

/// Parses `--peers`, refusing duplicates and bad entries with a message that says
/// what is wrong.
pub fn parse_peers(entries: &[String]) -> Result<Vec<Peer>, String> {
    let mut peers: Vec<Peer> = Vec::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let (id, addr) = entry
            .split_once('=')
            .ok_or_else(|| format!("--peers entry {entry:?} must look like ID=HOST:PORT, e.g. 1=10.0.0.1:2380"))?;
        let id: u64 = id
            .parse()
            .ok()
            .filter(|id| *id > 0 && *id < (1 << 16))
            .ok_or_else(|| format!("--peers entry {entry:?}: the id must be a number from 1 to 65535"))?;
        let hostport = addr.strip_prefix("http://").unwrap_or(addr);
        if hostport
            .rsplit_once(':')
            .and_then(|(h, p)| (!h.is_empty()).then(|| p.parse::<u16>().ok()))
            .flatten()
            .is_none()
        {
            return Err(format!("--peers entry {entry:?}: {addr:?} is not HOST:PORT"));
        }
        if peers.iter().any(|p| p.id == id) {
            return Err(format!("--peers names id {id} twice"));
        }
        if peers.iter().any(|p| p.addr == hostport) {
            return Err(format!("--peers names address {hostport} twice"));
        }
        peers.push(Peer { id, addr: hostport.to_string() });
    }
    peers.sort_by_key(|p| p.id);
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn dns_flags() {
        let listen: SocketAddr = "10.0.0.1:2379".parse().unwrap();
        assert_eq!(parse_dns_listen(":53", listen), Ok("10.0.0.1:53".parse().unwrap()));
        assert_eq!(parse_dns_listen("0.0.0.0:5353", listen), Ok("0.0.0.0:5353".parse().unwrap()));
        assert!(parse_dns_listen("53", listen).is_err());
        assert!(parse_dns_listen(":x", listen).is_err());
        assert_eq!(check_cluster_domain("Cluster.Local."), Ok("cluster.local".into()));
        assert!(check_cluster_domain("bad..domain").is_err());
        assert!(check_cluster_domain("-x.local").is_err());
    }

    #[test]
    fn peers() {
        let p = parse_peers(&["2=127.0.0.1:2382".into(), "1=http://127.0.0.1:2380".into()]).unwrap();
        assert_eq!(p[0], Peer { id: 1, addr: "127.0.0.1:2380".into() });
        assert!(parse_peers(&["1=a:1".into(), "1=b:2".into()]).unwrap_err().contains("twice"));
        assert!(parse_peers(&["x=a:1".into()]).unwrap_err().contains("id"));
        assert!(parse_peers(&["1=a".into()]).unwrap_err().contains("HOST:PORT"));
        assert!(parse_peers(&["1".into()]).unwrap_err().contains("ID=HOST:PORT"));
        assert!(parse_peers(&["0=a:1".into()]).is_err());
    }
}

/// `rk-server snapshot …`: backups of the store and new clusters restored from them.
#[derive(Parser, Debug, Clone)]
#[command(name = "rk-server snapshot", version, about = "Back up the store, or restore a backup into a new cluster")]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SnapshotCommand {
    /// Save the store of a running cluster to FILE (everything committed before the
    /// call; `etcdctl snapshot save` makes the same file).
    Save {
        /// Client address of any replica (`http://…` for an `--insecure-dev` one).
        #[arg(long, default_value = "127.0.0.1:2379")]
        endpoint: String,
        file: PathBuf,
        /// The cluster CA's directory: the save authenticates with a certificate it
        /// issues (default: `<data-dir>/pki`).
        #[command(flatten)]
        pki: PkiArgs,
    },
    /// Make the data directory of a founding member of a new cluster whose store starts
    /// as FILE's. Run it for every member with the same FILE and --peers, then start
    /// each replica with its --data-dir and --id.
    Restore {
        file: PathBuf,
        /// The new replica's data directory (must not hold a replica yet).
        #[arg(long)]
        data_dir: PathBuf,
        /// The new replica's id.
        #[arg(long, default_value_t = 1)]
        id: u64,
        /// The new cluster's members, id=host:port of each peer port (default: this
        /// replica alone at --advertise-peer).
        #[arg(long, value_delimiter = ',')]
        peers: Vec<String>,
        /// This replica's peer address when --peers is not given.
        #[arg(long, default_value = "127.0.0.1:2380")]
        advertise_peer: String,
    },
}
