//! rk-server: the replicated control plane of rk.
//!
//! Each replica is one `rk-server` process. Replicas agree on a log of commands with
//! raft (raft-rs) and apply it to an MVCC key-value store with etcd's semantics; the
//! store is served to clients over the etcd v3 gRPC API.
//!
//! Layout:
//! - [`store`]: the state machine (MVCC keys, leases, members) and its watch hub.
//! - [`raft`]: the raft thread, the durable log and the peer transport.
//! - [`controllers`]: controllers and the scheduler, running on the raft leader.
//! - [`lease`]: the leader's lease clock (expiry, keep-alive, forwarding).
//! - [`etcd`]: the etcd v3 gRPC services (KV, Watch, Lease, Cluster, Maintenance).
//! - [`api`]: the Kubernetes-compatible REST API (objects stored in the same store).
//! - [`dns`]: cluster DNS (`<svc>.<ns>.svc.cluster.local`), served by every replica.
//! - [`server`]: wiring it all together: [`server::run`] is what `rk-server` calls.
//! - [`pki`] and [`tls`]: the cluster CA, certificates, and TLS on both ports.
//! - [`config`]: command-line flags.
//! - [`failpoint`]: crash points for fault-injection tests (a cargo feature, off by default).
//! - [`fuzzing`]: what the fuzz targets run, and a replay of their corpora as tests.
//!
//! Start reading at [`server::run`], then [`raft::node`].

#![forbid(unsafe_code)]

pub mod api;
pub mod backup;
pub mod config;
pub mod controllers;
pub mod dns;
pub mod etcd;
pub mod failpoint;
pub mod fuzzing;
pub mod lease;
pub mod pki;
pub mod raft;
pub mod server;
pub mod store;
#[cfg(test)]
pub mod testing;
pub mod tls;
