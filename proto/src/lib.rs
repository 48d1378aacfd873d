//! Wire definitions for rk, generated at build time from the `.proto` files beside
//! this crate (with protox, so no `protoc` is needed).
//!
//! - [`etcdserverpb`], [`mvccpb`], [`authpb`]: the etcd v3 API, written from its public
//!   wire definitions so real etcd clients (etcdctl, `etcd-client`) talk to rk-server.
//! - [`peer`]: the replica-to-replica service (raft transport, lease forwarding).
//! - [`store`]: rk-server's own durable records (raft entry payloads, snapshots).
//! - [`resources`]: the rk resource API (Kubernetes objects over gRPC).
//! - [`join`]: join tokens (`rk1:<CA hash>:<id>.<secret>`) and the TLS verifier that
//!   trusts a server only through the CA a token pins; `rk-agent --join` and
//!   `rk-server --join-token` both use it.
//! - [`portforward`]: the port-forward WebSocket protocol's channels, shared by the
//!   node agent, the API server and rkctl; [`channel_frame`] builds the binary messages
//!   of every `*.channel.k8s.io` protocol (exec, attach, port-forward).

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod join;
pub mod portforward;

/// A binary message of a `*.channel.k8s.io` WebSocket protocol (exec, attach,
/// port-forward): the channel's number, then `data`.
pub fn channel_frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out
}

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub mod authpb {
    tonic::include_proto!("authpb");
}

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// rk's own packages, nested as their proto package names say (`rk.peer.v1`), so
/// generated cross-package paths resolve.
pub mod rk {
    pub mod peer {
        pub mod v1 {
            tonic::include_proto!("rk.peer.v1");
        }
    }
    pub mod store {
        pub mod v1 {
            tonic::include_proto!("rk.store.v1");
        }
    }
    pub mod api {
        pub mod v1 {
            tonic::include_proto!("rk.api.v1");
        }
    }
}

pub use rk::api::v1 as resources;

pub use rk::peer::v1 as peer;
pub use rk::store::v1 as store;
