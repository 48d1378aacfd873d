//! A local cluster's kubeconfig entries, added and removed the way kind does it: a
//! cluster, a user and a context all named `rk-<name>`, merged into the kubeconfig
//! kubectl would use (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`),
//! with `current-context` set so `rkctl` and `kubectl` use the new cluster at once.
//! Other entries in the file are kept; the file is rewritten whole, in kubectl's
//! style (as `kubectl config` does, comments are not kept).
//!
//! Writers take `<file>.lock` (created exclusively, as client-go's lock is), so two
//! `up`s at once cannot lose each other's entries.

use crate::kubeconfig::{KubeconfigError, Kubeconfigs};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a writer waits for another's lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Adds (or replaces) the entries of context `name` pointing at `server`, makes it
/// the current context, and returns the file written. `credentials` is a kubeconfig
/// (`rk-server certs kubeconfig`'s) whose CA, client certificate and key are embedded
/// in the new entries; without one the user has no credentials (`--insecure-dev`).
pub fn add(kc: &Kubeconfigs, name: &str, server: &str, credentials: Option<&Path>) -> Result<PathBuf, KubeconfigError> {
    let path = kc.file_for_current_context().ok_or_else(|| KubeconfigError::Write {
        path: "~/.kube/config".into(),
        reason: "no kubeconfig location (set HOME or KUBECONFIG, or pass --kubeconfig)".into(),
    })?;
    let (mut cluster, mut user) = (json!({"server": server}), json!({}));
    if let Some(file) = credentials {
        let bad = |reason: String| KubeconfigError::Write { path: file.display().to_string(), reason };
        let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
        let doc: Value = serde_norway::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let ca = &doc["clusters"][0]["cluster"]["certificate-authority-data"];
        let from = &doc["users"][0]["user"];
        if !ca.is_string() || !from["client-certificate-data"].is_string() || !from["client-key-data"].is_string() {
            return Err(bad("it lacks the CA, client certificate or key data".into()));
        }
        cluster["certificate-authority-data"] = ca.clone();
        user = json!({"client-certificate-data": from["client-certificate-data"], "client-key-data": from["client-key-data"]});
    }
    edit(&path, |doc| {
        upsert(doc, "clusters", json!({"name": name, "cluster": cluster}));
        upsert(doc, "users", json!({"name": name, "user": user}));
        upsert(doc, "contexts", json!({"name": name, "context": {"cluster": name, "user": name}}));
        doc.insert("current-context".into(), json!(name));
        true
    })?;
    Ok(path)
}

/// Removes the entries named `name` from each file that has them (and unsets
/// `current-context` where it names them, as kind does). Returns the files changed.
pub fn remove(files: &[PathBuf], name: &str) -> Result<Vec<PathBuf>, KubeconfigError> {
    let mut changed = Vec::new();
    for path in files.iter().filter(|p| p.exists()) {
        let did = edit(path, |doc| {
            let mut did = false;
            for list in ["clusters", "users", "contexts"] {
                if let Some(items) = doc.get_mut(list).and_then(Value::as_array_mut) {
                    let before = items.len();
                    items.retain(|i| i.get("name").and_then(Value::as_str) != Some(name));
                    did |= items.len() != before;
                }
            }
            if doc.get("current-context").and_then(Value::as_str) == Some(name) {
                doc.insert("current-context".into(), json!(""));
                did = true;
            }
            did
        })?;
        if did {
            changed.push(path.clone());
        }
    }
    Ok(changed)
}

/// Whether any of `files` still has an entry named `name`.
pub fn mentions(files: &[PathBuf], name: &str) -> bool {
    files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).any(|text| {
        let Ok(doc) = serde_norway::from_str::<Value>(&text) else { return false };
        ["clusters", "users", "contexts"].iter().any(|list| {
            doc.get(list)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| i.get("name").and_then(Value::as_str) == Some(name)))
        }) || doc.get("current-context").and_then(Value::as_str) == Some(name)
    })
}

/// Replaces the item of `list` with the same name, or appends it.
fn upsert(doc: &mut serde_json::Map<String, Value>, list: &str, item: Value) {
    let entry = doc.entry(list).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    let Some(items) = entry.as_array_mut() else { return };
    match items.iter_mut().find(|i| i.get("name") == item.get("name")) {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
}

/// Reads `path` (an absent or empty file is an empty kubeconfig), lets `change`
/// edit it, and writes it back if it says it changed something (returned).
fn edit(
    path: &Path,
    change: impl FnOnce(&mut serde_json::Map<String, Value>) -> bool,
) -> Result<bool, KubeconfigError> {
    let write_err = |reason: String| KubeconfigError::Write { path: path.display().to_string(), reason };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_err(format!("cannot create its folder: {e}")))?;
    }
    let _lock = Lock::take(path).map_err(write_err)?;
    let mut doc: Value = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            serde_norway::from_str(&text).map_err(|e| write_err(format!("it is not valid YAML: {e}")))?
        }
        Ok(_) => json!({}),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(write_err(e.to_string())),
    };
    let map = doc.as_object_mut().ok_or_else(|| write_err("it is not a YAML mapping".into()))?;
    if !change(map) {
        return Ok(false);
    }
    map.entry("apiVersion").or_insert(json!("v1"));
    map.entry("kind").or_insert(json!("Config"));
    map.entry("preferences").or_insert(json!({}));
    let text = crate::yaml::to_string(&doc);
    // Through a temporary file: kubectl running meanwhile never reads half a file.
    // Owner-only, as kubectl creates kubeconfigs (they may hold credentials).
    let tmp = path.with_file_name(format!(
        ".{}.rk-tmp",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| write_err(e.to_string()))?;
        f.write_all(text.as_bytes()).map_err(|e| write_err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write_err(e.to_string())
    })?;
    Ok(true)
}

/// `<file>.lock`, held while the file is read, changed and written.
struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Result<Lock, String> {
        let lock = PathBuf::from(format!("{}.lock", path.display()));
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(_) => return Ok(Lock(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(format!(
                        "{} is held by another writer (delete it if no kubectl or rkctl is running)",
                        lock.display()
                    ));
                }
                Err(e) => return Err(format!("cannot create {}: {e}", lock.display())),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::load_from;

    #[test]
    fn add_keeps_other_entries_and_remove_undoes_it() {
        let dir = tempfile::tempdir().unwrap();
        let other = "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: \"https://10.0.0.1:6443\"}\n\
                     contexts:\n- name: prod\n  context: {cluster: prod, user: admin}\nusers:\n- name: admin\n  user: {token: t}\n\
                     current-context: prod\n";
        let file = dir.path().join("config");
        std::fs::write(&file, other).unwrap();
        let kc = load_from(None, Some(file.clone().into_os_string()), None).unwrap();
        assert_eq!(add(&kc, "rk-a", "http://127.42.0.1:2379", None).unwrap(), file);

        let kc = load_from(None, Some(file.clone().into_os_string()), None).unwrap();
        let sel = kc.select(None).unwrap();
        assert_eq!((sel.context.as_str(), sel.server.as_str()), ("rk-a", "http://127.42.0.1:2379"));
        assert_eq!(kc.select(Some("prod")).unwrap().server, "https://10.0.0.1:6443");
        // Adding again replaces rather than duplicates.
        add(&kc, "rk-a", "http://127.42.0.9:2379", None).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.matches("name: rk-a").count(), 3, "{text}");
        assert!(text.contains("127.42.0.9"), "{text}");
        assert!(mentions(std::slice::from_ref(&file), "rk-a"));

        assert_eq!(remove(std::slice::from_ref(&file), "rk-a").unwrap(), vec![file.clone()]);
        assert!(!mentions(std::slice::from_ref(&file), "rk-a"));
        let kc = load_from(None, Some(file.clone().into_os_string()), None).unwrap();
        assert!(matches!(kc.select(None), Err(KubeconfigError::NoCurrentContext)));
        assert_eq!(kc.select(Some("prod")).unwrap().server, "https://10.0.0.1:6443");
        assert!(remove(std::slice::from_ref(&file), "rk-a").unwrap().is_empty(), "removing twice changes nothing");
        assert!(!dir.path().join("config.lock").exists());
    }

    #[test]
    fn add_creates_a_missing_file_and_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("home/.kube/config");
        let kc = load_from(None, None, Some(dir.path().join("home"))).unwrap();
        assert_eq!(add(&kc, "rk-rk", "http://127.42.0.1:2379", None).unwrap(), file);
        let kc = load_from(None, None, Some(dir.path().join("home"))).unwrap();
        assert_eq!(kc.select(None).unwrap().context, "rk-rk");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
