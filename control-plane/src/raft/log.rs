//! Raft's storage: the log, the hard state and the latest snapshot, in memory and
//! (for the disk backend) durable on disk.
//!
//! [`RaftLog`] implements `raft::Storage` from an in-memory copy of the log tail.
//! Every change also goes to the backend:
//! - [`Backend::Memory`]: nothing else (simulated-network tests);
//! - [`Backend::Disk`]: a write-ahead log of checksummed records in segment files,
//!   plus snapshot files. Appends are buffered and made durable by [`RaftLog::sync`]
//!   (one `fdatasync` for everything since the last one: group commit).
//!
//! On disk (`<data-dir>/raft/`):
//! ```text
//! wal/<seq:016x>.wal  records: [A5 'R'][type][0][len u32][crc32 u32][payload]
//!                     type 1 entries, 2 hard state, 3 "the log restarts after snapshot i"
//! snap/<index:016x>-<term:016x>.snap
//!                     [RKSNAP01][kind][index][term][conf len][conf][data len][data][crc32]
//! ```
//! Recovery reads the newest snapshot file, then replays every segment. A bad record
//! at the very end of the last segment is a torn write from a crash and is cut off;
//! a bad record anywhere else means the disk was corrupted, and opening fails with a
//! message naming the file and offset. Nothing damaged is ever served.

use bytes::Bytes;
use parking_lot::RwLock;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const REC_MAGIC: [u8; 2] = [0xA5, b'R'];
const REC_HEADER: usize = 12;
const REC_ENTRIES: u8 = 1;
const REC_HARD_STATE: u8 = 2;
const REC_SNAPSHOT_RESET: u8 = 3;
/// Largest record accepted when reading; anything bigger is corruption.
const MAX_RECORD: usize = 1 << 30;
const SNAP_MAGIC: &[u8; 8] = b"RKSNAP01";
const SNAP_LOCAL: u8 = 1;
const SNAP_INSTALLED: u8 = 2;
/// Start a new segment once the current one is this big.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Errors from raft's storage. Opening a damaged data directory fails with one of
/// these, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the raft log {path} is corrupt at byte {offset}: {what}; the data directory cannot be trusted: restore it from a backup, or remove this replica from the cluster and add it back with an empty data directory"
    )]
    Corrupt { path: PathBuf, offset: u64, what: String },
    #[error(
        "snapshot file {path} is corrupt ({what}); the data directory cannot be trusted: restore it from a backup, or remove this replica from the cluster and add it back with an empty data directory"
    )]
    CorruptSnapshot { path: PathBuf, what: String },
    #[error("encoding a raft record failed: {0}")]
    Encode(#[from] protobuf::ProtobufError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_path_buf(), source }
}

/// Where the log lives.
#[derive(Clone, Debug)]
pub enum Backend {
    Memory,
    Disk { dir: PathBuf, segment_bytes: u64 },
}

/// What opening found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The newest snapshot: the state machine to start from.
    pub snapshot: Option<Snapshot>,
    /// Bytes cut off the end of the last segment (a torn write), if any.
    pub truncated_tail: u64,
}

/// The raft storage handle. Clones share one log.
#[derive(Clone)]
pub struct RaftLog {
    core: Arc<RwLock<Core>>,
    /// Set when raft asked for a snapshot that the newest one cannot serve (it
    /// predates the recipient joining); the raft thread then takes a fresh one.
    want_snapshot: Arc<AtomicBool>,
}

struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the entry just before the first retained one.
    trunc_index: u64,
    trunc_term: u64,
    /// Metadata of the newest snapshot (index 0: none yet).
    snap_meta: SnapshotMetadata,
    /// Its data, when held in memory (memory backend, or recently read from disk).
    snap_data: Option<Bytes>,
    entries: VecDeque<Entry>,
    wal: Option<Wal>,
}

impl Core {
    fn empty() -> Self {
        Self {
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            trunc_index: 0,
            trunc_term: 0,
            snap_meta: SnapshotMetadata::default(),
            snap_data: None,
            entries: VecDeque::new(),
            wal: None,
        }
    }

    fn first_index(&self) -> u64 {
        self.trunc_index + 1
    }

    fn last_index(&self) -> u64 {
        self.trunc_index + self.entries.len() as u64
    }

    /// Appends with raft's rule: an entry at index `i` replaces the log from `i` on.
    fn append_in_memory(&mut self, entries: &[Entry]) -> Result<(), String> {
        let skip = entries.iter().take_while(|e| e.index <= self.trunc_index).count();
        let entries = &entries[skip..];
        let Some(first) = entries.first() else { return Ok(()) };
        if first.index > self.last_index() + 1 {
            return Err(format!("entry {} does not follow the log's last index {}", first.index, self.last_index()));
        }
        self.entries.truncate((first.index - self.first_index()) as usize);
        self.entries.extend(entries.iter().cloned());
        Ok(())
    }

    fn reset_to_snapshot(&mut self, meta: &SnapshotMetadata) {
        self.entries.clear();
        self.trunc_index = meta.index;
        self.trunc_term = meta.term;
        self.snap_meta = meta.clone();
        self.conf_state = meta.get_conf_state().clone();
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.hard_state.term = self.hard_state.term.max(meta.term);
    }
}

impl RaftLog {
    /// A log that lives only in memory.
    pub fn memory() -> Self {
        Self { core: Arc::new(RwLock::new(Core::empty())), want_snapshot: Arc::default() }
    }

    /// Opens (or creates) the log for `backend`, recovering what is on disk.
    pub fn open(backend: &Backend) -> Result<(Self, Recovered), LogError> {
        match backend {
            Backend::Memory => Ok((Self::memory(), Recovered::default())),
            Backend::Disk { dir, segment_bytes } => {
                let (core, recovered) = open_disk(dir, *segment_bytes)?;
                Ok((Self { core: Arc::new(RwLock::new(core)), want_snapshot: Arc::default() }, recovered))
            }
        }
    }

    /// Whether this log was ever initialised (bootstrapped, or given a snapshot).
    pub fn is_initialized(&self) -> bool {
        let c = self.core.read();
        c.trunc_index > 0 || !c.entries.is_empty() || c.hard_state.term > 0
    }

    pub fn hard_state(&self) -> HardState {
        self.core.read().hard_state.clone()
    }

    pub fn conf_state(&self) -> ConfState {
        self.core.read().conf_state.clone()
    }

    /// Index of the newest snapshot (0 if none).
    pub fn snapshot_index(&self) -> u64 {
        self.core.read().snap_meta.index
    }

    pub fn first_index(&self) -> u64 {
        self.core.read().first_index()
    }

    pub fn last_index(&self) -> u64 {
        self.core.read().last_index()
    }

    /// Appends entries (buffered: durable after [`sync`](Self::sync)).
    pub fn append(&self, entries: &[Entry]) -> Result<(), LogError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut c = self.core.write();
        let last = c.last_index();
        c.append_in_memory(entries).map_err(|what| LogError::Corrupt {
            path: PathBuf::from("<append>"),
            offset: last,
            what,
        })?;
        if let Some(wal) = &mut c.wal {
            wal.write_entries(entries)?;
        }
        Ok(())
    }

    /// Records the hard state (buffered: durable after [`sync`](Self::sync)).
    pub fn set_hard_state(&self, hs: &HardState) -> Result<(), LogError> {
        let mut c = self.core.write();
        if &c.hard_state == hs {
            return Ok(());
        }
        if let Some(wal) = &mut c.wal {
            wal.write_record(REC_HARD_STATE, &hs.write_to_bytes()?)?;
        }
        c.hard_state = hs.clone();
        Ok(())
    }

    /// Moves the commit index (a light ready carries only that).
    pub fn set_commit(&self, commit: u64) -> Result<(), LogError> {
        let mut hs = self.hard_state();
        if hs.commit == commit {
            return Ok(());
        }
        hs.commit = commit;
        self.set_hard_state(&hs)
    }

    /// Records the voters after an applied membership change (persisted through the
    /// next snapshot; replaying the log re-applies the change after a restart).
    pub fn set_conf_state(&self, cs: ConfState) {
        self.core.write().conf_state = cs;
    }

    /// Makes everything written so far durable: one fsync, however much was buffered.
    pub fn sync(&self) -> Result<(), LogError> {
        let mut c = self.core.write();
        let hs = c.hard_state.clone();
        match &mut c.wal {
            Some(wal) => wal.sync(&hs),
            None => Ok(()),
        }
    }

    /// Installs a snapshot from the leader: it replaces the whole log. Durable when
    /// this returns (snapshot file first, then a WAL record saying the log restarts
    /// after it).
    pub fn install_snapshot(&self, snap: &Snapshot) -> Result<(), LogError> {
        self.install(snap, SNAP_INSTALLED)
    }

    /// The first state of a founding member: a snapshot holding the initial state
    /// machine and voters. Every founding member writes the same one, so their logs
    /// agree from the start, and anyone joining later must start from a snapshot.
    pub fn bootstrap(&self, snap: &Snapshot) -> Result<(), LogError> {
        self.install(snap, SNAP_LOCAL)
    }

    fn install(&self, snap: &Snapshot, kind: u8) -> Result<(), LogError> {
        let meta = snap.get_metadata();
        let mut c = self.core.write();
        if let Some(wal) = &mut c.wal {
            write_snapshot_file(&wal.snap_dir(), snap, kind, None)?;
            let mut payload = Vec::with_capacity(16);
            payload.extend_from_slice(&meta.index.to_le_bytes());
            payload.extend_from_slice(&meta.term.to_le_bytes());
            wal.write_record(REC_SNAPSHOT_RESET, &payload)?;
            if kind == SNAP_INSTALLED {
                crate::failpoint::hit("snapshot-install");
            }
        }
        c.reset_to_snapshot(meta);
        c.snap_data = Some(snap.data.clone());
        let hs = c.hard_state.clone();
        if let Some(wal) = &mut c.wal {
            wal.write_record(REC_HARD_STATE, &hs.write_to_bytes()?)?;
            wal.sync(&hs)?;
            wal.drop_old(meta.index)?;
        }
        Ok(())
    }

    /// Where snapshot files go (disk backend only).
    pub fn snapshot_dir(&self) -> Option<PathBuf> {
        self.core.read().wal.as_ref().map(Wal::snap_dir)
    }

    /// Records a snapshot of the local state machine and drops log entries before
    /// `keep_from`; later entries stay, so followers a little behind catch up from the
    /// log rather than a whole snapshot. For the disk backend the caller has already
    /// written the file with [`write_local_snapshot`] (off the raft thread).
    pub fn compact_to_snapshot(&self, snap: &Snapshot, keep_from: u64) -> Result<(), LogError> {
        let meta = snap.get_metadata();
        let mut c = self.core.write();
        if meta.index <= c.snap_meta.index {
            return Ok(());
        }
        c.snap_meta = meta.clone();
        c.snap_data = if c.wal.is_some() { None } else { Some(snap.data.clone()) };
        // Drop entries in (trunc, compact]; `compact` never passes the snapshot.
        let compact = keep_from.saturating_sub(1).min(meta.index);
        if compact > c.trunc_index {
            let drop = ((compact - c.trunc_index) as usize).min(c.entries.len());
            if let Some(last) = c.entries.drain(..drop).last() {
                c.trunc_index = last.index;
                c.trunc_term = last.term;
            }
        }
        let trunc = c.trunc_index;
        if let Some(wal) = &mut c.wal {
            wal.drop_old(trunc)?;
            crate::failpoint::hit("log-compact");
            prune_snapshots(&wal.snap_dir(), meta.index)?;
        }
        Ok(())
    }

    /// The newest snapshot with its data (read from disk if not in memory).
    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        let (meta, data, dir) = {
            let c = self.core.read();
            if c.snap_meta.index == 0 {
                return Ok(None);
            }
            (c.snap_meta.clone(), c.snap_data.clone(), c.wal.as_ref().map(Wal::snap_dir))
        };
        if let Some(data) = data {
            let mut s = Snapshot::default();
            s.set_metadata(meta);
            s.data = data;
            return Ok(Some(s));
        }
        let Some(dir) = dir else { return Ok(None) };
        let path = dir.join(snapshot_file_name(meta.index, meta.term));
        let (snap, _) = read_snapshot_file(&path)?;
        let mut c = self.core.write();
        if c.snap_meta.index == meta.index {
            c.snap_data = Some(snap.data.clone());
        }
        Ok(Some(snap))
    }

    /// Whether raft asked for a fresher snapshot than the newest one (and clears it).
    pub fn take_snapshot_request(&self) -> bool {
        self.want_snapshot.swap(false, Ordering::Relaxed)
    }

    /// Lets go of snapshot data held in memory (it stays on disk).
    pub fn release_snapshot_data(&self) {
        let mut c = self.core.write();
        if c.wal.is_some() {
            c.snap_data = None;
        }
    }

    /// Bytes the log's files take on disk (0 for the memory backend).
    pub fn disk_size(&self) -> u64 {
        let c = self.core.read();
        let Some(wal) = &c.wal else { return 0 };
        let mut total = 0;
        for dir in [wal.dir.join("wal"), wal.snap_dir()] {
            if let Ok(rd) = fs::read_dir(dir) {
                total += rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum::<u64>();
            }
        }
        total
    }
}

impl raft::Storage for RaftLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let c = self.core.read();
        Ok(RaftState::new(c.hard_state.clone(), c.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let c = self.core.read();
        if low < c.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > c.last_index() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let lo = (low - c.first_index()) as usize;
        let hi = (high - c.first_index()) as usize;
        let mut out: Vec<Entry> = c.entries.range(lo..hi).cloned().collect();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let c = self.core.read();
        if idx == c.trunc_index {
            return Ok(c.trunc_term);
        }
        if idx < c.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match c.entries.get((idx - c.first_index()) as usize) {
            Some(e) => Ok(e.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.core.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.core.read().last_index())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let unavailable = || {
            self.want_snapshot.store(true, Ordering::Relaxed);
            Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
        };
        match self.latest_snapshot() {
            Ok(Some(s)) if s.get_metadata().index >= request_index => {
                // A replica refuses a snapshot whose configuration does not include it
                // (it joined after the snapshot was taken): make a fresh one.
                let cs = s.get_metadata().get_conf_state();
                if cs.voters.contains(&to) || cs.learners.contains(&to) { Ok(s) } else { unavailable() }
            }
            Ok(_) => unavailable(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the latest snapshot");
                Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
            }
        }
    }
}

// === the write-ahead log ===

struct Wal {
    /// `<data-dir>/raft`.
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    path: PathBuf,
    seq: u64,
    /// Bytes written to the current segment (buffered or not).
    size: u64,
    /// Records not yet written to the file.
    buf: Vec<u8>,
    /// Closed segments and the highest entry index each holds (0: none).
    closed: Vec<(PathBuf, u64)>,
    /// Highest entry index in the current segment.
    current_max: u64,
}

impl Wal {
    fn snap_dir(&self) -> PathBuf {
        self.dir.join("snap")
    }

    fn write_record(&mut self, kind: u8, payload: &[u8]) -> Result<(), LogError> {
        encode_record(&mut self.buf, kind, payload);
        self.size += (REC_HEADER + payload.len()) as u64;
        Ok(())
    }

    fn write_entries(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        let mut payload = Vec::with_capacity(entries.iter().map(|e| e.data.len() + 32).sum());
        for e in entries {
            let bytes = e.write_to_bytes()?;
            payload.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            payload.extend_from_slice(&bytes);
            self.current_max = self.current_max.max(e.index);
        }
        self.write_record(REC_ENTRIES, &payload)
    }

    /// Writes the buffer and fsyncs; rolls to a new segment when this one is full.
    fn sync(&mut self, hs: &HardState) -> Result<(), LogError> {
        // A bug the crash tests must catch (test builds only; see crate::failpoint).
        if !self.buf.is_empty() && crate::failpoint::planted_skip("lazy-sync", 1000) {
            return Ok(());
        }
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(io_err(&self.path))?;
            self.buf.clear();
            self.file.sync_data().map_err(io_err(&self.path))?;
        }
        if self.size >= self.segment_bytes {
            self.roll(hs)?;
        }
        Ok(())
    }

    fn roll(&mut self, hs: &HardState) -> Result<(), LogError> {
        let seq = self.seq + 1;
        let path = self.dir.join("wal").join(segment_name(seq));
        let file = create_segment(&path)?;
        let old_path = std::mem::replace(&mut self.path, path);
        self.closed.push((old_path, self.current_max));
        self.file = file;
        self.seq = seq;
        self.size = 0;
        self.current_max = 0;
        // Every segment starts with the hard state, so dropping older segments
        // never loses it.
        self.write_record(REC_HARD_STATE, &hs.write_to_bytes()?)?;
        self.file.write_all(&self.buf).map_err(io_err(&self.path))?;
        self.buf.clear();
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// Deletes closed segments holding only entries at or before `index`.
    fn drop_old(&mut self, index: u64) -> Result<(), LogError> {
        // Segments are in order, so once one must stay, all later ones stay too
        // (an older segment's "restart after snapshot" record must not outlive
        // the entries it discards).
        let keep_from = self.closed.iter().position(|(_, max)| *max > index).unwrap_or(self.closed.len());
        for (path, _) in self.closed.drain(..keep_from) {
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(())
    }
}

fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

fn snapshot_file_name(index: u64, term: u64) -> String {
    format!("{index:016x}-{term:016x}.snap")
}

fn create_segment(path: &Path) -> Result<File, LogError> {
    let file = OpenOptions::new().create_new(true).append(true).open(path).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

fn encode_record(buf: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = payload.len() as u32;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    buf.extend_from_slice(&REC_MAGIC);
    buf.push(kind);
    buf.push(0);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&hasher.finalize().to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Decodes the record at `data[at..]`: `Ok(Some((kind, payload, next)))`, `Ok(None)`
/// at the clean end, `Err(reason)` for a damaged record.
/// One decoded record: its type, its payload, and where the next record starts.
type Record<'a> = (u8, &'a [u8], usize);

fn decode_record(data: &[u8], at: usize) -> Result<Option<Record<'_>>, String> {
    let rest = &data[at..];
    if rest.is_empty() {
        return Ok(None);
    }
    if rest.len() < REC_HEADER {
        return Err("truncated record header".into());
    }
    if rest[..2] != REC_MAGIC {
        return Err("bad record marker".into());
    }
    let kind = rest[2];
    let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    let crc = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
    if len > MAX_RECORD {
        return Err(format!("record length {len} is impossible"));
    }
    if rest.len() < REC_HEADER + len {
        return Err("truncated record".into());
    }
    let payload = &rest[REC_HEADER..REC_HEADER + len];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(&(len as u32).to_le_bytes());
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err("checksum mismatch".into());
    }
    Ok(Some((kind, payload, at + REC_HEADER + len)))
}

/// Whether any intact record starts after `from` (then a bad record before it is
/// corruption, not a torn tail).
fn intact_record_after(data: &[u8], from: usize) -> bool {
    (from + 1..data.len().saturating_sub(REC_HEADER - 1))
        .filter(|&i| data[i..i + 2] == REC_MAGIC)
        .any(|i| matches!(decode_record(data, i), Ok(Some((k, _, _))) if (1..=3).contains(&k)))
}

fn decode_entries(payload: &[u8]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let Some(len_bytes) = payload.get(at..at + 4) else { return Err("truncated entry length".into()) };
        let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let bytes = payload.get(at + 4..at + 4 + len).ok_or("truncated entry")?;
        let mut e = Entry::default();
        e.merge_from_bytes(bytes).map_err(|e| format!("undecodable entry: {e}"))?;
        out.push(e);
        at += 4 + len;
    }
    Ok(out)
}

fn open_disk(dir: &Path, segment_bytes: u64) -> Result<(Core, Recovered), LogError> {
    let wal_dir = dir.join("wal");
    let snap_dir = dir.join("snap");
    for d in [dir, &wal_dir, &snap_dir] {
        fs::create_dir_all(d).map_err(io_err(d))?;
    }
    let mut core = Core::empty();
    let mut recovered = Recovered::default();

    // The newest snapshot is the base. Leftover temporary files are from a crash
    // mid-write and were never used.
    let mut snaps = Vec::new();
    for entry in fs::read_dir(&snap_dir).map_err(io_err(&snap_dir))? {
        let path = entry.map_err(io_err(&snap_dir))?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("tmp") => fs::remove_file(&path).map_err(io_err(&path))?,
            Some("snap") => snaps.push(path),
            _ => {}
        }
    }
    snaps.sort();
    let mut base_installed = false;
    if let Some(path) = snaps.last() {
        let (snap, kind) = read_snapshot_file(path)?;
        core.reset_to_snapshot(snap.get_metadata());
        base_installed = kind == SNAP_INSTALLED;
        recovered.snapshot = Some(snap);
    }
    let base = core.snap_meta.index;

    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(&wal_dir).map_err(io_err(&wal_dir))? {
        let path = entry.map_err(io_err(&wal_dir))?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| u64::from_str_radix(n, 16).ok());
        if let Some(seq) = seq {
            segments.push((seq, path));
        }
    }
    segments.sort();

    // An installed snapshot's entries are only those written after its reset
    // record; anything before belongs to the history the snapshot replaced.
    let mut seen_base_reset = !base_installed;
    let mut closed = Vec::new();
    let n = segments.len();
    for (i, (_, path)) in segments.iter().enumerate() {
        let mut data = Vec::new();
        File::open(path).and_then(|mut f| f.read_to_end(&mut data)).map_err(io_err(path))?;
        let mut at = 0;
        let mut max_index = 0;
        loop {
            match decode_record(&data, at) {
                Ok(None) => break,
                Ok(Some((kind, payload, next))) => {
                    let corrupt = |what: String| LogError::Corrupt { path: path.clone(), offset: at as u64, what };
                    match kind {
                        REC_ENTRIES => {
                            let entries = decode_entries(payload).map_err(corrupt)?;
                            max_index = entries.iter().map(|e| e.index).max().unwrap_or(0).max(max_index);
                            if seen_base_reset {
                                core.append_in_memory(&entries).map_err(corrupt)?;
                            }
                        }
                        REC_HARD_STATE => {
                            let mut hs = HardState::default();
                            hs.merge_from_bytes(payload).map_err(|e| corrupt(format!("bad hard state: {e}")))?;
                            core.hard_state = hs;
                        }
                        REC_SNAPSHOT_RESET => {
                            if payload.len() != 16 {
                                return Err(corrupt("bad snapshot record".into()));
                            }
                            let index = u64::from_le_bytes(payload[..8].try_into().unwrap_or_default());
                            if index > base {
                                return Err(corrupt(format!(
                                    "the log restarts after snapshot {index}, but the newest snapshot file is {base}"
                                )));
                            }
                            if index == base {
                                seen_base_reset = true;
                            }
                            // Everything before this record was replaced by a snapshot.
                            core.entries.clear();
                        }
                        other => return Err(corrupt(format!("unknown record type {other}"))),
                    }
                    at = next;
                }
                Err(what) => {
                    let last_segment = i + 1 == n;
                    if !last_segment || intact_record_after(&data, at) {
                        return Err(LogError::Corrupt { path: path.clone(), offset: at as u64, what });
                    }
                    // A torn write at the end: cut it off so new records follow good ones.
                    let cut = data.len() - at;
                    tracing::warn!(path = %path.display(), offset = at, bytes = cut, reason = %what, "truncating a torn write at the end of the raft log");
                    let f = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
                    f.set_len(at as u64).map_err(io_err(path))?;
                    f.sync_all().map_err(io_err(path))?;
                    recovered.truncated_tail = cut as u64;
                    break;
                }
            }
        }
        closed.push((path.clone(), max_index));
    }
    if !seen_base_reset {
        core.entries.clear();
    }
    // A hard state never says less than the snapshot it follows.
    core.hard_state.commit = core.hard_state.commit.max(base).min(core.last_index().max(base));
    core.hard_state.term = core.hard_state.term.max(core.snap_meta.term);

    // New records go to a fresh segment, so a recovered one is never appended to.
    let seq = segments.last().map_or(1, |(s, _)| s + 1);
    let path = wal_dir.join(segment_name(seq));
    let file = create_segment(&path)?;
    let mut wal = Wal {
        dir: dir.to_path_buf(),
        segment_bytes,
        file,
        path,
        seq,
        size: 0,
        buf: Vec::new(),
        closed,
        current_max: 0,
    };
    // The new segment starts with the hard state (see `Wal::roll`).
    let hs = core.hard_state.clone();
    wal.write_record(REC_HARD_STATE, &hs.write_to_bytes()?)?;
    wal.sync(&hs)?;
    core.wal = Some(wal);
    Ok((core, recovered))
}

/// Writes a snapshot of the local state machine to its file, durably (temporary
/// file, fsync, rename, fsync the directory). Runs off the raft thread.
pub fn write_local_snapshot(dir: &Path, snap: &Snapshot) -> Result<(), LogError> {
    write_snapshot_file(dir, snap, SNAP_LOCAL, Some("snapshot-save"))
}

/// Writes a snapshot file durably; `crash_point` is passed half way through the data.
fn write_snapshot_file(
    dir: &Path,
    snap: &Snapshot,
    kind: u8,
    crash_point: Option<&'static str>,
) -> Result<(), LogError> {
    /// Flush to disk every this many bytes: one huge fsync at the end would make the
    /// raft log's own small fsyncs wait behind it (they share the file system journal).
    const SYNC_EVERY: usize = 8 << 20;
    let meta = snap.get_metadata();
    let conf = meta.get_conf_state().write_to_bytes()?;
    let mut head = Vec::with_capacity(conf.len() + 64);
    head.extend_from_slice(SNAP_MAGIC);
    head.push(kind);
    head.extend_from_slice(&meta.index.to_le_bytes());
    head.extend_from_slice(&meta.term.to_le_bytes());
    head.extend_from_slice(&(conf.len() as u32).to_le_bytes());
    head.extend_from_slice(&conf);
    head.extend_from_slice(&(snap.data.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    let name = snapshot_file_name(meta.index, meta.term);
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&head).map_err(io_err(&tmp))?;
    let (first, second) = snap.data.split_at(snap.data.len() / 2);
    for (i, half) in [first, second].into_iter().enumerate() {
        if i == 1
            && let Some(point) = crash_point
        {
            crate::failpoint::hit(point);
        }
        for chunk in half.chunks(SYNC_EVERY) {
            crc.update(chunk);
            f.write_all(chunk).map_err(io_err(&tmp))?;
            f.sync_data().map_err(io_err(&tmp))?;
        }
    }
    f.write_all(&crc.finalize().to_le_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

fn read_snapshot_file(path: &Path) -> Result<(Snapshot, u8), LogError> {
    let data = fs::read(path).map_err(io_err(path))?;
    let bad = |what: &str| LogError::CorruptSnapshot { path: path.to_path_buf(), what: what.to_string() };
    if data.len() < 8 + 1 + 16 + 4 + 8 + 4 || &data[..8] != SNAP_MAGIC {
        return Err(bad("not an rk snapshot file"));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(bad("checksum mismatch"));
    }
    let u64_at = |at: usize| -> Option<u64> { Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?)) };
    let kind = body[8];
    let index = u64_at(9).ok_or_else(|| bad("truncated"))?;
    let term = u64_at(17).ok_or_else(|| bad("truncated"))?;
    let conf_len = u32::from_le_bytes(body[25..29].try_into().map_err(|_| bad("truncated"))?) as usize;
    let conf_bytes = body.get(29..29 + conf_len).ok_or_else(|| bad("truncated configuration"))?;
    let data_len = u64_at(29 + conf_len).ok_or_else(|| bad("truncated"))? as usize;
    let start = 29 + conf_len + 8;
    let payload = body.get(start..start + data_len).ok_or_else(|| bad("truncated data"))?;
    if start + data_len != body.len() {
        return Err(bad("trailing bytes"));
    }
    let mut conf = ConfState::default();
    conf.merge_from_bytes(conf_bytes).map_err(|_| bad("undecodable configuration"))?;
    let mut snap = Snapshot::default();
    let meta = snap.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(conf);
    snap.data = Bytes::copy_from_slice(payload);
    Ok((snap, kind))
}

/// Keeps the two newest snapshot files (the older one in case the newest is being
/// sent while it is replaced) and deletes the rest.
fn prune_snapshots(dir: &Path, newest: u64) -> Result<(), LogError> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    files.sort();
    let keep = 2;
    if files.len() > keep {
        for path in &files[..files.len() - keep] {
            // Never delete the snapshot we just recorded, whatever the names say.
            if !path.to_string_lossy().contains(&format!("{newest:016x}-")) {
                fs::remove_file(path).map_err(io_err(path))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The storage contract: every backend passes the same suite. Disk-only tests
    //! (reopen, torn tails, corruption) follow.
    use super::*;
    use raft::Storage;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, data: Bytes::from(format!("entry-{index}-{term}")), ..Default::default() }
    }

    fn snapshot(index: u64, term: u64, voters: &[u64]) -> Snapshot {
        let mut s = Snapshot::default();
        s.mut_metadata().index = index;
        s.mut_metadata().term = term;
        s.mut_metadata().mut_conf_state().voters = voters.to_vec();
        s.data = Bytes::from(format!("state-at-{index}"));
        s
    }

    /// The backends under test; the disk one lives in a temporary directory.
    fn backends() -> Vec<(Backend, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let disk = Backend::Disk { dir: dir.path().join("raft"), segment_bytes: 4096 };
        vec![(Backend::Memory, None), (disk, Some(dir))]
    }

    fn each_backend(test: impl Fn(&RaftLog)) {
        for (backend, _dir) in backends() {
            let (log, _) = RaftLog::open(&backend).unwrap();
            test(&log);
        }
    }

    #[test]
    fn contract_append_read_and_truncate() {
        each_backend(|log| {
            log.bootstrap(&snapshot(1, 1, &[1, 2, 3])).unwrap();
            assert_eq!((log.first_index(), log.last_index()), (2, 1));
            log.append(&(2..=10).map(|i| entry(i, 1)).collect::<Vec<_>>()).unwrap();
            log.sync().unwrap();
            assert_eq!(log.term(1).unwrap(), 1);
            assert_eq!(log.term(10).unwrap(), 1);
            assert!(matches!(log.term(11), Err(raft::Error::Store(StorageError::Unavailable))));
            assert!(matches!(log.term(0), Err(raft::Error::Store(StorageError::Compacted))));
            // A conflicting append replaces the tail.
            log.append(&[entry(6, 2), entry(7, 2)]).unwrap();
            assert_eq!(log.last_index(), 7);
            assert_eq!(log.term(6).unwrap(), 2);
            let got = log.entries(2, 8, None, GetEntriesContext::empty(false)).unwrap();
            assert_eq!(got.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>().len(), 6);
            assert_eq!(got[4].term, 2);
            // Size limits always return at least one entry.
            let one = log.entries(2, 8, Some(1), GetEntriesContext::empty(false)).unwrap();
            assert_eq!(one.len(), 1);
            assert!(log.entries(1, 3, None, GetEntriesContext::empty(false)).is_err());
            assert!(log.entries(2, 20, None, GetEntriesContext::empty(false)).is_err());
            assert!(log.append(&[entry(20, 3)]).is_err(), "a gap must be refused");
        });
    }

    #[test]
    fn contract_snapshot_compaction_keeps_a_tail() {
        each_backend(|log| {
            log.bootstrap(&snapshot(1, 1, &[1, 2])).unwrap();
            log.append(&(2..=100).map(|i| entry(i, 1)).collect::<Vec<_>>()).unwrap();
            log.sync().unwrap();
            let snap = snapshot(90, 1, &[1, 2]);
            if let Some(dir) = log.snapshot_dir() {
                write_local_snapshot(&dir, &snap).unwrap();
            }
            log.compact_to_snapshot(&snap, 50).unwrap();
            assert_eq!(log.first_index(), 50);
            assert_eq!(log.term(49).unwrap(), 1);
            assert!(log.term(48).is_err());
            let s = log.snapshot(0, 2).unwrap();
            assert_eq!(s.get_metadata().index, 90);
            assert_eq!(&s.data[..], b"state-at-90");
            assert!(log.snapshot(95, 2).is_err(), "a snapshot older than requested is unavailable");
            // A replica that joined after the snapshot cannot use it: ask for a new one.
            log.take_snapshot_request();
            assert!(log.snapshot(0, 3).is_err());
            assert!(log.take_snapshot_request());
        });
    }

    #[test]
    fn contract_install_snapshot_replaces_the_log() {
        each_backend(|log| {
            log.bootstrap(&snapshot(1, 1, &[1, 2])).unwrap();
            log.append(&(2..=5).map(|i| entry(i, 1)).collect::<Vec<_>>()).unwrap();
            log.install_snapshot(&snapshot(50, 3, &[1, 2, 3])).unwrap();
            assert_eq!((log.first_index(), log.last_index()), (51, 50));
            assert_eq!(log.term(50).unwrap(), 3);
            assert_eq!(log.conf_state().voters, vec![1, 2, 3]);
            assert!(log.hard_state().commit >= 50);
            log.append(&[entry(51, 3)]).unwrap();
            assert_eq!(log.last_index(), 51);
        });
    }

    fn disk(dir: &Path) -> Backend {
        Backend::Disk { dir: dir.join("raft"), segment_bytes: 4096 }
    }

    #[test]
    fn disk_reopen_recovers_synced_state_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = RaftLog::open(&disk(dir.path())).unwrap();
            log.bootstrap(&snapshot(1, 1, &[1, 2, 3])).unwrap();
            for i in 2..=300 {
                log.append(&[entry(i, 2)]).unwrap();
                let hs = HardState { term: 2, vote: 1, commit: i.saturating_sub(100), ..Default::default() };
                log.set_hard_state(&hs).unwrap();
                log.sync().unwrap();
            }
            log.append(&[entry(250, 3)]).unwrap(); // truncates 250..=300
            log.sync().unwrap();
        }
        let segments = fs::read_dir(dir.path().join("raft/wal")).unwrap().count();
        assert!(segments > 2, "the test must cross segment boundaries, got {segments}");
        let (log, rec) = RaftLog::open(&disk(dir.path())).unwrap();
        assert_eq!(rec.snapshot.unwrap().get_metadata().index, 1);
        assert_eq!(log.last_index(), 250);
        assert_eq!(log.term(250).unwrap(), 3);
        assert_eq!(log.term(249).unwrap(), 2);
        let hs = log.hard_state();
        assert_eq!((hs.term, hs.vote, hs.commit), (2, 1, 200));
        assert_eq!(log.conf_state().voters, vec![1, 2, 3]);
    }

    #[test]
    fn disk_compaction_deletes_old_segments_and_reopens_from_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = RaftLog::open(&disk(dir.path())).unwrap();
            log.bootstrap(&snapshot(1, 1, &[1])).unwrap();
            for i in 2..=400 {
                log.append(&[entry(i, 1)]).unwrap();
                log.sync().unwrap();
            }
            let snap = snapshot(380, 1, &[1]);
            write_local_snapshot(&log.snapshot_dir().unwrap(), &snap).unwrap();
            log.compact_to_snapshot(&snap, 370).unwrap();
        }
        let (log, rec) = RaftLog::open(&disk(dir.path())).unwrap();
        assert_eq!(rec.snapshot.unwrap().get_metadata().index, 380);
        assert_eq!(log.first_index(), 381);
        assert_eq!(log.last_index(), 400);
        let first_seg = fs::read_dir(dir.path().join("raft/wal"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .min()
            .unwrap();
        assert_ne!(first_seg.to_string_lossy(), segment_name(1), "old segments must be deleted");
    }

    #[test]
    fn disk_torn_tail_is_truncated_and_later_appends_survive() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = RaftLog::open(&disk(dir.path())).unwrap();
            log.bootstrap(&snapshot(1, 1, &[1])).unwrap();
            log.append(&[entry(2, 1), entry(3, 1)]).unwrap();
            log.sync().unwrap();
        }
        // Simulate a crash in the middle of writing the next record.
        let newest = newest_segment(dir.path());
        let mut half = Vec::new();
        encode_record(&mut half, REC_ENTRIES, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        half.truncate(10);
        OpenOptions::new().append(true).open(&newest).unwrap().write_all(&half).unwrap();
        {
            let (log, rec) = RaftLog::open(&disk(dir.path())).unwrap();
            assert_eq!(rec.truncated_tail, 10);
            assert_eq!(log.last_index(), 3);
            log.append(&[entry(4, 1)]).unwrap();
            log.sync().unwrap();
        }
        let (log, _) = RaftLog::open(&disk(dir.path())).unwrap();
        assert_eq!(log.last_index(), 4);
    }

    #[test]
    fn disk_corruption_in_the_middle_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = RaftLog::open(&disk(dir.path())).unwrap();
            log.bootstrap(&snapshot(1, 1, &[1])).unwrap();
            for i in 2..=20 {
                log.append(&[entry(i, 1)]).unwrap();
                log.sync().unwrap();
            }
        }
        let newest = newest_segment(dir.path());
        let mut data = fs::read(&newest).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        fs::write(&newest, data).unwrap();
        let err = RaftLog::open(&disk(dir.path())).err().expect("a corrupt log must not open");
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn disk_corrupt_snapshot_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = RaftLog::open(&disk(dir.path())).unwrap();
            log.bootstrap(&snapshot(1, 1, &[1])).unwrap();
        }
        let snap = fs::read_dir(dir.path().join("raft/snap")).unwrap().next().unwrap().unwrap().path();
        let mut data = fs::read(&snap).unwrap();
        let at = data.len() - 6;
        data[at] ^= 1;
        fs::write(&snap, data).unwrap();
        let err = RaftLog::open(&disk(dir.path())).err().expect("must refuse");
        assert!(matches!(err, LogError::CorruptSnapshot { .. }), "{err}");
    }

    #[test]
    fn disk_installed_snapshot_without_its_record_discards_the_replaced_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = RaftLog::open(&disk(dir.path())).unwrap();
            log.bootstrap(&snapshot(1, 1, &[1, 2])).unwrap();
            log.append(&(2..=10).map(|i| entry(i, 1)).collect::<Vec<_>>()).unwrap();
            log.sync().unwrap();
        }
        // A crash after the snapshot file was written but before its WAL record.
        write_snapshot_file(&dir.path().join("raft/snap"), &snapshot(5, 2, &[1, 2]), SNAP_INSTALLED, None).unwrap();
        let (log, _) = RaftLog::open(&disk(dir.path())).unwrap();
        assert_eq!((log.first_index(), log.last_index()), (6, 5));
        assert_eq!(log.term(5).unwrap(), 2);
    }

    fn newest_segment(dir: &Path) -> PathBuf {
        let mut segs: Vec<PathBuf> =
            fs::read_dir(dir.join("raft/wal")).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
        segs.sort();
        // The newest segment is the empty one opened last; the data is in the one before.
        segs.into_iter().rev().find(|p| fs::metadata(p).unwrap().len() > 40).unwrap()
    }
}
