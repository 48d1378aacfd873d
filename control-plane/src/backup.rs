//! Backups of the store, and new clusters restored from them.
//!
//! - [`snapshot_file`]: what a replica sends for etcd's `Maintenance.Snapshot` call
//!   (so `etcdctl snapshot save` works against rk as well as `rk-server snapshot save`).
//! - [`save`]: `rk-server snapshot save FILE`: streams that call into a file, checks
//!   it, and only then moves it into place.
//! - [`restore`]: `rk-server snapshot restore FILE --data-dir DIR --id N --peers …`:
//!   makes the data directory of a founding member of a *new* cluster whose store
//!   starts as the backup's (keys, history, revision, leases); the membership comes
//!   from `--peers`. Run it once per member, with the same file and `--peers`.
//!
//! The file is rk's own encoding of the state machine (`store/snapshot.rs`), followed
//! by the SHA-256 of those bytes, as etcd ends its snapshots with one. It is not an
//! etcd (bbolt) database: `etcdutl snapshot restore` cannot read it.

use crate::config::Peer;
use crate::store::snapshot::{self, DecodeError};
use crate::store::{StateMachine, Voters};
use rk_proto::etcdserverpb::SnapshotRequest;
use rk_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes of SHA-256 at the end of a snapshot file.
pub const DIGEST_BYTES: usize = 32;

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot reach {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("{endpoint} did not send a snapshot: {reason}")]
    Stream { endpoint: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path} is not a usable rk snapshot: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
}

/// What [`save`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub bytes: u64,
    /// The store revision the snapshot holds.
    pub revision: i64,
}

/// etcd's clients take a snapshot whose size is not a whole number of these (its
/// database pages) plus the digest for one without a digest, and refuse it.
const PAGE_BYTES: usize = 512;

/// The snapshot file's bytes for `sm`: its encoding, padded to whole pages, then
/// the SHA-256 of all that.
pub fn snapshot_file(sm: &StateMachine) -> Vec<u8> {
    let mut out = snapshot::encode(sm).to_vec();
    pad_to_pages(&mut out);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Appends a `padding` field (StoreSnapshot field 15, length-delimited) of zeros
/// so the encoding ends on a page boundary; decoders skip it like any field.
fn pad_to_pages(out: &mut Vec<u8>) {
    const KEY: u8 = (15 << 3) | 2;
    let mut target = (out.len() + 2).div_ceil(PAGE_BYTES) * PAGE_BYTES;
    loop {
        // A length L whose varint takes `width` bytes fills the page when
        // key + varint + L == target - len.
        for width in 1..=2 {
            let Some(len) = target.checked_sub(out.len() + 1 + width) else { continue };
            if prost::encoding::encoded_len_varint(len as u64) == width {
                out.push(KEY);
                prost::encoding::encode_varint(len as u64, out);
                out.resize(out.len() + len, 0);
                return;
            }
        }
        target += PAGE_BYTES;
    }
}

/// The state a snapshot file holds, after checking its digest.
pub fn read_snapshot(bytes: &[u8]) -> Result<StateMachine, String> {
    let Some(split) = bytes.len().checked_sub(DIGEST_BYTES) else {
        return Err(format!("{} bytes is too short to be a snapshot", bytes.len()));
    };
    let (data, digest) = bytes.split_at(split);
    if Sha256::digest(data).as_slice() != digest {
        return Err("its SHA-256 does not match its contents (truncated or damaged)".into());
    }
    snapshot::decode(data, Voters::default()).map_err(|e: DecodeError| e.to_string())
}

/// An endpoint with its scheme, for messages: `https://` unless it says otherwise.
fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") { endpoint.to_string() } else { format!("https://{endpoint}") }
}

/// Streams a snapshot from `endpoint` into `path` (through `path.part`, synced, and
/// checked before it is renamed into place, so a failed save never leaves a file
/// that looks like a backup).
/// `pki_dir`: the cluster CA, to authenticate to a TLS replica.
pub async fn save(endpoint: &str, path: &Path, pki_dir: Option<&Path>) -> Result<Saved, BackupError> {
    let url = endpoint_url(endpoint);
    let channel = crate::tls::tool_channel(endpoint, pki_dir)
        .await
        .map_err(|reason| BackupError::Connect { endpoint: url.clone(), reason })?;
    let stream_err = |reason: String| BackupError::Stream { endpoint: url.clone(), reason };
    let mut client = MaintenanceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let mut stream =
        client.snapshot(SnapshotRequest {}).await.map_err(|s| stream_err(s.message().into()))?.into_inner();
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let io = |p: &Path, e: std::io::Error| BackupError::Io { path: p.to_path_buf(), reason: e.to_string() };
    let mut file = std::fs::File::create(&part).map_err(|e| io(&part, e))?;
    let mut bytes = Vec::new();
    let result = async {
        while let Some(msg) = stream.message().await.map_err(|s| stream_err(s.message().into()))? {
            bytes.extend_from_slice(&msg.blob);
            if msg.remaining_bytes == 0 {
                break;
            }
        }
        let state = read_snapshot(&bytes)
            .map_err(|reason| BackupError::Invalid { path: part.clone(), reason: format!("as received: {reason}") })?;
        file.write_all(&bytes).map_err(|e| io(&part, e))?;
        file.sync_all().map_err(|e| io(&part, e))?;
        std::fs::rename(&part, path).map_err(|e| io(path, e))?;
        Ok(Saved { bytes: bytes.len() as u64, revision: state.mvcc.current_revision() })
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// Makes `data_dir` the data directory of founding member `id` of a new cluster of
/// `peers` whose store starts as the snapshot in `file`.
pub fn restore(file: &Path, data_dir: &Path, id: u64, peers: &[Peer]) -> Result<i64, BackupError> {
    let bytes = std::fs::read(file).map_err(|e| BackupError::Io { path: file.to_path_buf(), reason: e.to_string() })?;
    let state = read_snapshot(&bytes).map_err(|reason| BackupError::Invalid { path: file.to_path_buf(), reason })?;
    let revision = state.mvcc.current_revision();
    crate::server::found_data_dir(data_dir, id, peers, state)?;
    Ok(revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_file_round_trips_and_damage_is_caught() {
        let mut sm = StateMachine::new(9);
        let mut w = sm.mvcc.write();
        w.put(bytes::Bytes::from_static(b"k"), bytes::Bytes::from_static(b"v"), 0);
        w.finish();
        let file = snapshot_file(&sm);
        let back = read_snapshot(&file).expect("round trip");
        assert_eq!(back.mvcc.current_revision(), sm.mvcc.current_revision());

        let mut flipped = file.clone();
        flipped[3] ^= 0xff;
        assert!(read_snapshot(&flipped).unwrap_err().contains("SHA-256"));
        assert!(read_snapshot(&file[..file.len() - 1]).is_err());
        assert!(read_snapshot(b"short").unwrap_err().contains("too short"));
    }

    #[test]
    fn files_are_whole_pages_plus_the_digest_whatever_the_size() {
        for len in [0usize, 1, 125, 126, 127, 128, 509, 510, 511, 512, 513, 1000, 16_383, 16_384, 70_000] {
            let mut data = vec![0x08; len.min(1)];
            data.resize(len, 0);
            pad_to_pages(&mut data);
            assert_eq!(data.len() % PAGE_BYTES, 0, "from {len}");
            assert!(data.len() >= len + 2 && data.len() < len + 2 + 2 * PAGE_BYTES, "from {len}: {}", data.len());
        }
        let file = snapshot_file(&StateMachine::new(1));
        assert_eq!(file.len() % PAGE_BYTES, DIGEST_BYTES);
    }

    #[test]
    fn endpoints_get_a_scheme() {
        assert_eq!(endpoint_url("127.0.0.1:2379"), "https://127.0.0.1:2379");
        assert_eq!(endpoint_url("https://a:1"), "https://a:1");
    }
}
