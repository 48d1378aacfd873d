//! Secrets encrypted at rest.
//!
//! Every Secret is sealed with XChaCha20-Poly1305 before it reaches the raft log, the
//! snapshots or a backup, and opened again on the way out. The stored value is
//!
//! ```text
//! k8s:enc:xchacha20poly1305:v1:<key name>:<24-byte random nonce><ciphertext and tag>
//! ```
//!
//! (the shape of Kubernetes' own encryption providers), with the object's storage key
//! as associated data, so a sealed value copied under another key does not open.
//! XChaCha20's 192-bit nonces are drawn at random: with that many bits two seals never
//! share a nonce in practice, however many replicas seal with the same key and however
//! often they restart, which a counter or a 96-bit random nonce cannot promise.
//!
//! The keys live in a key file outside the data directory (so a copy of the data
//! directory or a snapshot holds no key): one base64 key of 32 bytes per line, `#`
//! comments. The first key seals; every key opens. A key's name is the first 8 bytes
//! of its SHA-256, in hex: it says which key sealed a value without revealing it.
//!
//! Each key also yields (HKDF-SHA256) the Ed25519 key that signs ServiceAccount tokens
//! ([`Keyring::sign_token`], used by `tokens.rs`): one file, shared by every replica,
//! serves both, and a rotation rotates both.
//!
//! [`Encryption`] holds the keys in use and re-reads the file when it changes;
//! [`rotate_key`] puts a fresh key first, and the leader then re-seals every Secret
//! with it (`controllers::reencrypt`). Values that do not start with the prefix are
//! read as they are: Secrets written before encryption was on (or through the raw
//! etcd API) still read, and the leader seals them on its next pass.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Where Secrets live in the store.
pub const SECRETS_PREFIX: &str = "/registry/core/secrets/";
/// What every sealed value starts with.
const MAGIC: &[u8] = b"k8s:enc:xchacha20poly1305:v1:";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
/// A key name: 16 hex digits.
const NAME_LEN: usize = 16;

/// What can go wrong with the key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the secrets encryption key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the secrets encryption key file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the secrets encryption key file {path}, line {line}, is not a key: expected the base64 of \
         {KEY_LEN} random bytes (`rk-server secrets rotate-key` writes one)"
    )]
    BadKey { path: PathBuf, line: usize },
    #[error("the secrets encryption key file {path} holds no key")]
    Empty { path: PathBuf },
}

/// Why a value does not seal or open. The messages name keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error(
        "the Secret at {key} was encrypted with key {name}, which is not in the key file (it holds {known}); \
         every replica must use the same key file, and a rotated-out key must stay in it until \
         every Secret is re-encrypted"
    )]
    UnknownKey { key: String, name: String, known: String },
    #[error("the Secret at {key} is encrypted but cannot be decrypted with key {name}: it is damaged or was moved")]
    Damaged { key: String, name: String },
    #[error("the Secret at {key} is encrypted but its stored value is cut short")]
    Truncated { key: String },
    #[error("the Secret at {key} is too large to encrypt")]
    TooLarge { key: String },
}

struct Key {
    name: String,
    cipher: XChaCha20Poly1305,
    /// The Ed25519 key ServiceAccount tokens are signed with, derived from this key
    /// (HKDF-SHA256), so the one key file every replica shares serves both purposes and
    /// a rotation rotates the token key too. (`None` only if the derivation failed, which
    /// ring documents as impossible for these lengths: tokens are then refused, never
    /// signed with a weaker key.)
    signer: Option<ring::signature::Ed25519KeyPair>,
}

/// HKDF output length for an Ed25519 seed.
struct SeedLen;

impl ring::hkdf::KeyType for SeedLen {
    fn len(&self) -> usize {
        32
    }
}

fn token_signer(raw: &[u8; KEY_LEN]) -> Option<ring::signature::Ed25519KeyPair> {
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"rk secrets key file").extract(raw);
    let mut seed = [0u8; 32];
    prk.expand(&[b"rk serviceaccount token signing key v1"], SeedLen).ok()?.fill(&mut seed).ok()?;
    ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).ok()
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("Key").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The keys in use: the first seals, all open.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<Key>,
}

fn key_name(raw: &[u8]) -> String {
    Sha256::digest(raw)[..NAME_LEN / 2].iter().map(|b| format!("{b:02x}")).collect()
}

impl Keyring {
    fn from_raw(raw_keys: &[[u8; KEY_LEN]]) -> Self {
        let keys = raw_keys
            .iter()
            .map(|k| Key { name: key_name(k), cipher: XChaCha20Poly1305::new(k.into()), signer: token_signer(k) })
            .collect();
        Self { keys }
    }

    /// A keyring of one fresh key that lives only in memory (tests, in-process replicas).
    pub fn ephemeral() -> Self {
        Self::from_raw(&[rand::random()])
    }

    /// Parses a key file's text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, KeyFileError> {
        let mut raw = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || KeyFileError::BadKey { path: path.to_path_buf(), line: i + 1 };
            let bytes = B64.decode(line).map_err(|_| bad())?;
            let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| bad())?;
            raw.push(key);
        }
        if raw.is_empty() {
            return Err(KeyFileError::Empty { path: path.to_path_buf() });
        }
        Ok(Self::from_raw(&raw))
    }

    /// The name of the key that seals.
    pub fn write_key(&self) -> &str {
        &self.keys[0].name
    }

    /// The names of all keys, the sealing one first.
    pub fn names(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.name.as_str()).collect()
    }

    /// Seals `plaintext`, stored under `key`, with the first key.
    pub fn seal(&self, key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptError> {
        let k = &self.keys[0];
        let nonce: [u8; NONCE_LEN] = rand::random();
        // XChaCha20-Poly1305 refuses only messages beyond 256 GiB.
        let sealed = k
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: key })
            .map_err(|_| CryptError::TooLarge { key: String::from_utf8_lossy(key).into_owned() })?;
        let mut out = Vec::with_capacity(MAGIC.len() + NAME_LEN + 1 + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(k.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Signs `message` with the current key's token key: (key name, signature).
    pub fn sign_token(&self, message: &[u8]) -> Option<(&str, Vec<u8>)> {
        let k = &self.keys[0];
        Some((&k.name, k.signer.as_ref()?.sign(message).as_ref().to_vec()))
    }

    /// Checks a token signature made by the token key of key `name`; false if that key
    /// is not in the keyring or the signature does not match.
    pub fn verify_token(&self, name: &str, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature::KeyPair;
        let Some(signer) = self.keys.iter().find(|k| k.name == name).and_then(|k| k.signer.as_ref()) else {
            return false;
        };
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, signer.public_key().as_ref())
            .verify(message, signature)
            .is_ok()
    }

    /// The key name a stored value was sealed with, if it is sealed.
    pub fn sealed_with(value: &[u8]) -> Option<&str> {
        let rest = value.strip_prefix(MAGIC)?;
        let name = rest.get(..NAME_LEN)?;
        std::str::from_utf8(name).ok()
    }

    /// Opens a stored value; values that are not sealed come back as they are.
    pub fn open<'a>(&self, key: &[u8], value: &'a [u8]) -> Result<Cow<'a, [u8]>, CryptError> {
        let Some(rest) = value.strip_prefix(MAGIC) else { return Ok(Cow::Borrowed(value)) };
        let key_str = || String::from_utf8_lossy(key).into_owned();
        if rest.len() < NAME_LEN + 1 + NONCE_LEN || rest[NAME_LEN] != b':' {
            return Err(CryptError::Truncated { key: key_str() });
        }
        let name = String::from_utf8_lossy(&rest[..NAME_LEN]).into_owned();
        let Some(k) = self.keys.iter().find(|k| k.name == name) else {
            return Err(CryptError::UnknownKey { key: key_str(), name, known: self.names().join(", ") });
        };
        let (nonce, sealed) = rest[NAME_LEN + 1..].split_at(NONCE_LEN);
        k.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: key })
            .map(Cow::Owned)
            .map_err(|_| CryptError::Damaged { key: key_str(), name })
    }
}

/// True for storage keys whose values are sealed.
pub fn is_sealed_key(key: &[u8]) -> bool {
    key.starts_with(SECRETS_PREFIX.as_bytes())
}

/// The keys one replica uses, re-read from the key file when it changes.
#[derive(Debug)]
pub struct Encryption {
    path: Option<PathBuf>,
    ring: RwLock<Arc<Keyring>>,
    /// The file's modification time and length when last read.
    seen: Mutex<Option<(SystemTime, u64)>>,
}

impl Encryption {
    /// Keys that live only in memory.
    pub fn ephemeral() -> Self {
        Self { path: None, ring: RwLock::new(Arc::new(Keyring::ephemeral())), seen: Mutex::new(None) }
    }

    /// Reads the key file at `path`.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let (ring, stamp) = read_key_file(path)?;
        Ok(Self { path: Some(path.to_path_buf()), ring: RwLock::new(Arc::new(ring)), seen: Mutex::new(stamp) })
    }

    /// The keys in use now.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.ring.read().clone()
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Re-reads the key file if it changed since the last read; true if the keys did.
    /// A file that became unreadable or holds no valid key is an error and the keys in
    /// use stay.
    pub fn reload(&self) -> Result<bool, KeyFileError> {
        let Some(path) = &self.path else { return Ok(false) };
        let stamp = file_stamp(path).map_err(|source| KeyFileError::Read { path: path.clone(), source })?;
        if *self.seen.lock() == Some(stamp) {
            return Ok(false);
        }
        let (ring, stamp) = read_key_file(path)?;
        let changed = ring.names() != self.keyring().names();
        *self.ring.write() = Arc::new(ring);
        *self.seen.lock() = stamp;
        Ok(changed)
    }
}

fn file_stamp(path: &Path) -> std::io::Result<(SystemTime, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified()?, m.len()))
}

fn read_key_file(path: &Path) -> Result<(Keyring, Option<(SystemTime, u64)>), KeyFileError> {
    let stamp = file_stamp(path).ok();
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read { path: path.into(), source })?;
    Ok((Keyring::parse(&text, path)?, stamp))
}

const HEADER: &str = "# rk secrets encryption keys. The first key encrypts; every key decrypts.\n\
                      # Keep this file out of the data directory and its backups, readable by rk-server only.\n\
                      # Every replica of a cluster needs the same keys. Rotate with `rk-server secrets rotate-key`.\n";

fn new_key_line() -> String {
    let key: [u8; KEY_LEN] = rand::random();
    B64.encode(key)
}

/// Writes `text` to a fresh file beside `path`, readable by its owner only, synced.
fn write_private_temp(path: &Path, text: &str) -> Result<PathBuf, KeyFileError> {
    let err = |source| KeyFileError::Write { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{:016x}.tmp", rand::random::<u64>()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(err)?;
    let written = f.write_all(text.as_bytes()).and_then(|_| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(tmp)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Best effort: the rename or link is durable once the directory is synced.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

/// Creates a key file with one fresh key unless one exists; true if it created it.
/// Safe when several replicas sharing the file start at once: the file appears whole
/// (written aside, then linked into place) and only the first link wins.
pub fn create_key_file(path: &Path) -> Result<bool, KeyFileError> {
    install_key_file(path, &format!("{HEADER}{}\n", new_key_line()))
}

/// Writes the key file `text` (checked first) to `path` unless a file is there already
/// (a replica joining with a token keeps the cluster's keys so); `true` when written.
pub fn install_key_file(path: &Path, text: &str) -> Result<bool, KeyFileError> {
    if path.exists() {
        return Ok(false);
    }
    Keyring::parse(text, path)?;
    let tmp = write_private_temp(path, text)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(path);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(KeyFileError::Write { path: path.to_path_buf(), source }),
    }
}

/// Puts a fresh key first in the key file (it encrypts from now on) and keeps the old
/// ones after it (they still decrypt). Returns the new key's name.
pub fn rotate_key(path: &Path) -> Result<String, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read { path: path.into(), source })?;
    Keyring::parse(&text, path)?;
    let line = new_key_line();
    let keys: String = text.lines().filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#')).fold(
        String::new(),
        |mut acc, l| {
            acc.push_str(l.trim());
            acc.push('\n');
            acc
        },
    );
    let tmp = write_private_temp(path, &format!("{HEADER}{line}\n{keys}"))?;
    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(KeyFileError::Write { path: path.to_path_buf(), source });
    }
    sync_dir(path);
    let ring = Keyring::parse(&format!("{line}\n"), path)?;
    Ok(ring.write_key().to_string())
}

/// Drops every key but the first from the key file, once nothing needs them. Returns
/// the names of the keys dropped.
pub fn prune_keys(path: &Path) -> Result<Vec<String>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read { path: path.into(), source })?;
    let ring = Keyring::parse(&text, path)?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| KeyFileError::Empty { path: path.to_path_buf() })?;
    let tmp = write_private_temp(path, &format!("{HEADER}{first}\n"))?;
    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(KeyFileError::Write { path: path.to_path_buf(), source });
    }
    sync_dir(path);
    Ok(ring.names().into_iter().skip(1).map(String::from).collect())
}

/// How many Secrets in a running cluster are sealed with each key (`None`: not sealed),
/// read through the etcd API at `endpoint`.
/// `pki_dir`: the cluster CA, to authenticate to a TLS replica.
pub async fn key_usage(
    endpoint: &str,
    pki_dir: Option<&std::path::Path>,
) -> Result<std::collections::BTreeMap<Option<String>, usize>, String> {
    use rk_proto::etcdserverpb::RangeRequest;
    use rk_proto::etcdserverpb::kv_client::KvClient;
    let url = endpoint.to_string();
    let channel = crate::tls::tool_channel(endpoint, pki_dir).await?;
    let mut client = KvClient::new(channel).max_decoding_message_size(256 * 1024 * 1024);
    let prefix = bytes::Bytes::from_static(SECRETS_PREFIX.as_bytes());
    let end = crate::store::mvcc::prefix_end(&prefix);
    let mut usage = std::collections::BTreeMap::new();
    let mut start = prefix;
    loop {
        let req = RangeRequest { key: start.clone(), range_end: end.clone(), limit: 500, ..Default::default() };
        let resp = client.range(req).await.map_err(|s| format!("{url}: {}", s.message()))?.into_inner();
        for kv in &resp.kvs {
            *usage.entry(Keyring::sealed_with(&kv.value).map(String::from)).or_insert(0) += 1;
        }
        match resp.kvs.last() {
            Some(last) if resp.more => {
                let mut next = last.key.to_vec();
                next.push(0);
                start = bytes::Bytes::from(next);
            }
            _ => return Ok(usage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"/registry/core/secrets/default/db";

    #[test]
    fn sealed_values_open_and_hide_the_plaintext() {
        let ring = Keyring::ephemeral();
        let plain = br#"{"data":{"password":"aHVudGVyMg=="}}"#;
        let sealed = ring.seal(KEY, plain).unwrap();
        assert!(sealed.starts_with(MAGIC));
        assert_eq!(Keyring::sealed_with(&sealed), Some(ring.write_key()));
        assert!(!sealed.windows(8).any(|w| w == b"aHVudGVy"), "the plaintext shows through");
        assert_eq!(ring.open(KEY, &sealed).unwrap().as_ref(), plain);
        // Two seals of one value differ (fresh nonces).
        assert_ne!(ring.seal(KEY, plain).unwrap(), sealed);
    }

    #[test]
    fn token_keys_come_from_the_file_keys_and_rotate_with_them() {
        let ring = Keyring::ephemeral();
        let (name, sig) = ring.sign_token(b"claims").unwrap();
        assert_eq!(name, ring.write_key());
        assert!(ring.verify_token(name, b"claims", &sig));
        assert!(!ring.verify_token(name, b"claimz", &sig));
        assert!(!Keyring::ephemeral().verify_token(name, b"claims", &sig), "another key file");
        // The same key file gives the same token key (every replica signs alike).
        let raw: [u8; KEY_LEN] = rand::random();
        let (a, b) = (Keyring::from_raw(&[raw]), Keyring::from_raw(&[raw]));
        let (name, sig) = a.sign_token(b"x").unwrap();
        assert!(b.verify_token(name, b"x", &sig));
    }

    #[test]
    fn unsealed_values_read_as_they_are() {
        let ring = Keyring::ephemeral();
        assert!(matches!(ring.open(KEY, b"{}").unwrap(), Cow::Borrowed(b"{}")));
        assert_eq!(Keyring::sealed_with(b"{}"), None);
    }

    #[test]
    fn a_value_moved_damaged_cut_or_sealed_with_an_unknown_key_does_not_open() {
        let ring = Keyring::ephemeral();
        let sealed = ring.seal(KEY, b"secret").unwrap();
        assert!(matches!(ring.open(b"/registry/core/secrets/default/other", &sealed), Err(CryptError::Damaged { .. })));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(ring.open(KEY, &flipped), Err(CryptError::Damaged { .. })));
        assert!(matches!(ring.open(KEY, &sealed[..MAGIC.len() + 20]), Err(CryptError::Truncated { .. })));
        let other = Keyring::ephemeral();
        let e = other.open(KEY, &sealed).unwrap_err();
        assert!(matches!(e, CryptError::UnknownKey { .. }));
        let msg = e.to_string();
        assert!(msg.contains(ring.write_key()) && msg.contains(other.write_key()), "{msg}");
    }

    #[test]
    fn key_files_are_created_once_rotated_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("secrets.key");
        assert!(create_key_file(&path).unwrap());
        assert!(!create_key_file(&path).unwrap(), "an existing file is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let enc = Encryption::load(&path).unwrap();
        let first = enc.keyring();
        let sealed = first.seal(KEY, b"v1").unwrap();

        let new = rotate_key(&path).unwrap();
        assert!(enc.reload().unwrap(), "the rotation is picked up");
        let ring = enc.keyring();
        assert_eq!(ring.names(), vec![new.as_str(), first.write_key()]);
        assert_eq!(ring.open(KEY, &sealed).unwrap().as_ref(), b"v1", "old keys still open");
        assert!(!enc.reload().unwrap(), "nothing changed");

        assert_eq!(prune_keys(&path).unwrap(), vec![first.write_key().to_string()]);
        enc.reload().unwrap();
        assert_eq!(enc.keyring().names(), vec![new.as_str()]);
        // Nothing but the temp-free key file is left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn bad_key_files_are_refused_with_the_line() {
        let path = Path::new("k");
        assert!(matches!(Keyring::parse("# only a comment\n", path), Err(KeyFileError::Empty { .. })));
        let short = format!("# c\n{}\n", B64.encode([1u8; 16]));
        match Keyring::parse(&short, path) {
            Err(KeyFileError::BadKey { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(Keyring::parse("not base64!\n", path), Err(KeyFileError::BadKey { line: 1, .. })));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k");
        std::fs::write(&file, "garbage\n").unwrap();
        assert!(Encryption::load(&file).is_err());
        // A broken edit keeps the keys in use.
        create_key_file(&dir.path().join("good")).unwrap();
        let enc = Encryption::load(&dir.path().join("good")).unwrap();
        let names: Vec<String> = enc.keyring().names().into_iter().map(String::from).collect();
        std::fs::write(dir.path().join("good"), "garbage, and longer than before\n").unwrap();
        assert!(enc.reload().is_err());
        assert_eq!(enc.keyring().names(), names);
    }
}
