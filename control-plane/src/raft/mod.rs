//! Consensus: raft-rs driven by one thread per replica, a durable log, and a peer
//! transport over gRPC.
//!
//! - [`log`]: raft's storage (log, hard state, snapshots) in memory or on disk.
//! - [`node`]: the raft thread and its ready loop; [`node::RaftHandle`] is how the
//!   rest of the server proposes commands and asks for linearizable reads.
//! - [`transport`]: sends batched raft messages to peers over gRPC streams and
//!   receives them; one queue per peer so a slow peer never blocks the others.
//! - [`wire`]: checks raft message bytes before rust-protobuf parses them.
//! - [`sim`] (tests): an in-process network with drops, delays and partitions.
//!
//! Start reading at `node::Node::on_ready`.

pub mod log;
pub mod node;
pub mod transport;
pub mod wire;

#[cfg(test)]
mod sim;

/// Forwards raft-rs's `slog` records to `tracing`, so one subscriber sees all logs.
pub(crate) struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let msg = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::error!(target: "raft", "{msg}"),
            slog::Level::Warning => tracing::warn!(target: "raft", "{msg}"),
            slog::Level::Info => tracing::debug!(target: "raft", "{msg}"),
            slog::Level::Debug | slog::Level::Trace => tracing::trace!(target: "raft", "{msg}"),
        }
        Ok(())
    }
}
