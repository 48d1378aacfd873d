//! Finding, merging and selecting kubeconfig files, the way kubectl does:
//!
//! - `--kubeconfig FILE`: only that file, which must exist.
//! - else `$KUBECONFIG`: a `:`-separated list; missing files are skipped, and for
//!   each name (cluster, user, context) and for `current-context` the first file that
//!   sets it wins.
//! - else `~/.kube/config`.
//!
//! Parsing, merging and turning the chosen context into connection settings (TLS
//! material, tokens, exec plugins) is kube-rs's [`Kubeconfig`] and
//! [`kube::Config::from_custom_kubeconfig`]; this module adds the file lookup, clear
//! errors, `config use-context`'s write-back and `config view`'s redaction.

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("cannot read kubeconfig {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("no kubeconfig found (looked at {looked}); set KUBECONFIG, pass --kubeconfig FILE, or pass --server URL")]
    NotFound { looked: String },
    #[error(
        "current-context is not set in the kubeconfig; choose one with `rkctl config use-context NAME` or pass --context"
    )]
    NoCurrentContext,
    #[error("context {0:?} does not exist in the kubeconfig; `rkctl config get-contexts` lists them")]
    NoSuchContext(String),
    #[error("cluster {cluster:?} of context {context:?} does not exist in the kubeconfig")]
    NoSuchCluster { context: String, cluster: String },
    #[error("cluster {0:?} has no server address in the kubeconfig")]
    NoServer(String),
    #[error("invalid API server address {url:?}: {reason}")]
    BadServer { url: String, reason: String },
    #[error("cannot use the kubeconfig: {0}")]
    Load(String),
    #[error("cannot write kubeconfig {path}: {reason}")]
    Write { path: String, reason: String },
}

/// The kubeconfig files in effect, merged.
#[derive(Debug, Clone, Default)]
pub struct Kubeconfigs {
    pub merged: Kubeconfig,
    /// The files considered, in precedence order (they need not exist).
    pub files: Vec<PathBuf>,
    /// `--kubeconfig`, when given.
    pub explicit: Option<PathBuf>,
    /// Whether any file was actually read.
    pub found: bool,
}

/// What a context points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub context: String,
    pub cluster: String,
    pub server: String,
    pub user: Option<String>,
    pub namespace: Option<String>,
}

/// Loads the kubeconfig from `--kubeconfig`, `$KUBECONFIG` or `~/.kube/config`.
pub fn load(explicit: Option<&Path>) -> Result<Kubeconfigs, KubeconfigError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    load_from(explicit, std::env::var_os("KUBECONFIG"), home)
}

/// [`load`] with its inputs spelled out (for tests).
pub fn load_from(
    explicit: Option<&Path>,
    env: Option<OsString>,
    home: Option<PathBuf>,
) -> Result<Kubeconfigs, KubeconfigError> {
    if let Some(path) = explicit {
        let merged = read(path)?;
        return Ok(Kubeconfigs {
            merged,
            files: vec![path.to_path_buf()],
            explicit: Some(path.to_path_buf()),
            found: true,
        });
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(env) = env.filter(|v| !v.is_empty()) {
        for p in std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()) {
            if !files.contains(&p) {
                files.push(p);
            }
        }
    }
    if files.is_empty()
        && let Some(home) = home
    {
        files.push(home.join(".kube").join("config"));
    }
    let mut merged = Kubeconfig::default();
    let mut found = false;
    for f in &files {
        if !f.exists() {
            continue;
        }
        found = true;
        merged = merged.merge(read(f)?).map_err(|e| KubeconfigError::Load(e.to_string()))?;
    }
    Ok(Kubeconfigs { merged, files, explicit: None, found })
}

fn read(path: &Path) -> Result<Kubeconfig, KubeconfigError> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(KubeconfigError::Read { path: path.display().to_string(), reason: e.to_string() });
    }
    Kubeconfig::read_from(path).map_err(|e| KubeconfigError::Read {
        path: path.display().to_string(),
        reason: match e {
            kube::config::KubeconfigError::Parse(p) => format!("not a valid kubeconfig: {p}"),
            other => other.to_string(),
        },
    })
}

impl Kubeconfigs {
    /// The context to use: `--context`, else `current-context`.
    pub fn context_name(&self, context: Option<&str>) -> Result<String, KubeconfigError> {
        if let Some(c) = context {
            return Ok(c.to_string());
        }
        match self.merged.current_context.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Ok(c.to_string()),
            None if !self.found => Err(self.not_found()),
            None => Err(KubeconfigError::NoCurrentContext),
        }
    }

    fn not_found(&self) -> KubeconfigError {
        let looked: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        KubeconfigError::NotFound {
            looked: if looked.is_empty() { "$KUBECONFIG and ~/.kube/config".into() } else { looked.join(", ") },
        }
    }

    /// Resolves a context to its cluster, user and namespace.
    pub fn select(&self, context: Option<&str>) -> Result<Selection, KubeconfigError> {
        let name = self.context_name(context)?;
        let ctx = self
            .merged
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.clone())
            .ok_or_else(|| KubeconfigError::NoSuchContext(name.clone()))?;
        let cluster =
            self.merged.clusters.iter().find(|c| c.name == ctx.cluster).and_then(|c| c.cluster.clone()).ok_or_else(
                || KubeconfigError::NoSuchCluster { context: name.clone(), cluster: ctx.cluster.clone() },
            )?;
        let server =
            cluster.server.filter(|s| !s.is_empty()).ok_or_else(|| KubeconfigError::NoServer(ctx.cluster.clone()))?;
        Ok(Selection {
            context: name,
            cluster: ctx.cluster,
            server,
            user: ctx.user,
            namespace: ctx.namespace.filter(|n| !n.is_empty()),
        })
    }

    /// Connection settings for a context, through kube-rs (so certificates, tokens
    /// and exec plugins in the kubeconfig are honoured).
    pub async fn client_config(&self, context: Option<&str>) -> Result<kube::Config, KubeconfigError> {
        let selection = self.select(context)?;
        let options = KubeConfigOptions { context: Some(selection.context.clone()), cluster: None, user: None };
        kube::Config::from_custom_kubeconfig(self.merged.clone(), &options).await.map_err(|e| match e {
            kube::config::KubeconfigError::ParseClusterUrl(err) => {
                KubeconfigError::BadServer { url: selection.server.clone(), reason: err.to_string() }
            }
            other => KubeconfigError::Load(other.to_string()),
        })
    }

    /// The file `config use-context` writes, by client-go's rules: `--kubeconfig`;
    /// else the first existing file that sets `current-context`; else the only file,
    /// the first existing one, or the last one.
    pub fn file_for_current_context(&self) -> Option<PathBuf> {
        if let Some(e) = &self.explicit {
            return Some(e.clone());
        }
        for f in self.files.iter().filter(|f| f.exists()) {
            let sets_it = std::fs::read_to_string(f)
                .ok()
                .and_then(|t| serde_norway::from_str::<Value>(&t).ok())
                .and_then(|v| v.get("current-context").and_then(Value::as_str).map(|s| !s.is_empty()))
                .unwrap_or(false);
            if sets_it {
                return Some(f.clone());
            }
        }
        if self.files.len() == 1 {
            return self.files.first().cloned();
        }
        self.files.iter().find(|f| f.exists()).or(self.files.last()).cloned()
    }

    /// `config use-context NAME`: checks the context exists and records it as
    /// `current-context`, keeping the rest of the file as it was.
    pub fn use_context(&self, name: &str) -> Result<PathBuf, KubeconfigError> {
        if !self.merged.contexts.iter().any(|c| c.name == name) {
            return Err(KubeconfigError::NoSuchContext(name.to_string()));
        }
        let path = self.file_for_current_context().ok_or_else(|| self.not_found())?;
        let write_err = |reason: String| KubeconfigError::Write { path: path.display().to_string(), reason };
        // Written back the way kubectl writes kubeconfigs (its YAML style); comments
        // in the file are not kept, as with kubectl.
        let mut doc: Value = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => {
                serde_norway::from_str(&text).map_err(|e| write_err(format!("it is not valid YAML: {e}")))?
            }
            _ => json!({ "apiVersion": "v1", "kind": "Config" }),
        };
        let map = doc.as_object_mut().ok_or_else(|| write_err("it is not a YAML mapping".into()))?;
        map.insert("current-context".into(), Value::String(name.to_string()));
        let text = crate::yaml::to_string(&doc);
        std::fs::write(&path, text).map_err(|e| write_err(e.to_string()))?;
        Ok(path)
    }

    /// `config view`: the merged kubeconfig as kubectl shows it. Unless `raw`,
    /// certificate data reads `DATA+OMITTED` and tokens and passwords `REDACTED`.
    /// With `minify`, only what the current (or given) context uses.
    pub fn view(&self, raw: bool, minify: bool, context: Option<&str>) -> Result<Value, KubeconfigError> {
        let mut v = serde_json::to_value(&self.merged).map_err(|e| KubeconfigError::Load(e.to_string()))?;
        if minify {
            let sel = self.select(context)?;
            let keep = |list: &mut Value, name: &str| {
                if let Some(items) = list.as_array_mut() {
                    items.retain(|i| i.get("name").and_then(Value::as_str) == Some(name));
                }
            };
            keep(&mut v["contexts"], &sel.context);
            keep(&mut v["clusters"], &sel.cluster);
            keep(&mut v["users"], sel.user.as_deref().unwrap_or(""));
            v["current-context"] = json!(sel.context);
        }
        for list in ["clusters", "contexts", "users"] {
            for item in v[list].as_array_mut().into_iter().flatten() {
                drop_nulls(item);
            }
        }
        // kubectl always shows a context's user, empty when there is none.
        for c in v["contexts"].as_array_mut().into_iter().flatten() {
            if let Some(ctx) = c.get_mut("context").and_then(Value::as_object_mut) {
                ctx.entry("user").or_insert(json!(""));
            }
        }
        let obj = v.as_object_mut().ok_or_else(|| KubeconfigError::Load("kubeconfig is not a mapping".into()))?;
        obj.entry("apiVersion").or_insert(json!("v1"));
        obj.entry("kind").or_insert(json!("Config"));
        obj.entry("preferences").or_insert(json!({}));
        obj.entry("current-context").or_insert(json!(""));
        for list in ["clusters", "contexts", "users"] {
            if obj.get(list).and_then(Value::as_array).is_some_and(Vec::is_empty) {
                obj.insert(list.into(), Value::Null);
            }
        }
        if !raw {
            redact(&mut v);
        }
        Ok(v)
    }
}

/// Removes `null` fields (unset options kube-rs serializes as null).
fn drop_nulls(v: &mut Value) {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, val| !val.is_null());
        for val in map.values_mut() {
            drop_nulls(val);
        }
    } else if let Some(items) = v.as_array_mut() {
        items.iter_mut().for_each(drop_nulls);
    }
}

/// Hides credentials the way `kubectl config view` does.
fn redact(v: &mut Value) {
    for c in v["clusters"].as_array_mut().into_iter().flatten() {
        if let Some(data) = c.pointer_mut("/cluster/certificate-authority-data") {
            *data = json!("DATA+OMITTED");
        }
    }
    for u in v["users"].as_array_mut().into_iter().flatten() {
        let Some(user) = u.get_mut("user").and_then(Value::as_object_mut) else { continue };
        for key in ["client-certificate-data", "client-key-data"] {
            if let Some(data) = user.get_mut(key) {
                *data = json!("DATA+OMITTED");
            }
        }
        for key in ["token", "password"] {
            if let Some(data) = user.get_mut(key) {
                *data = json!("REDACTED");
            }
        }
        if let Some(cfg) =
            user.get_mut("auth-provider").and_then(|a| a.get_mut("config")).and_then(Value::as_object_mut)
        {
            for (k, val) in cfg.iter_mut() {
                if k.contains("token") || k.contains("secret") {
                    *val = json!("REDACTED");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: rk
  cluster: {server: "http://127.0.0.1:7443", certificate-authority-data: "Zm9v"}
contexts:
- name: rk
  context: {cluster: rk, user: admin, namespace: apps}
- name: other
  context: {cluster: missing}
users:
- name: admin
  user: {token: s3cret, client-key-data: "YmFy"}
current-context: rk
"#;
    const B: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: rk
  cluster: {server: "http://10.9.9.9:1"}
- name: b
  cluster: {server: "http://127.0.0.2:7443"}
contexts:
- name: b
  context: {cluster: b}
current-context: b
"#;

    fn files(dir: &Path) -> (PathBuf, PathBuf) {
        let a = dir.join("a");
        let b = dir.join("b");
        std::fs::write(&a, A).unwrap();
        std::fs::write(&b, B).unwrap();
        (a, b)
    }

    fn env(paths: &[&Path]) -> Option<OsString> {
        Some(std::env::join_paths(paths).unwrap())
    }

    #[test]
    fn first_file_wins_and_missing_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = files(dir.path());
        let missing = dir.path().join("nope");
        let kc = load_from(None, env(&[&missing, &a, &b]), None).unwrap();
        let sel = kc.select(None).unwrap();
        assert_eq!(sel.context, "rk");
        assert_eq!(sel.server, "http://127.0.0.1:7443", "the first file's cluster \"rk\" wins");
        assert_eq!(sel.namespace.as_deref(), Some("apps"));
        assert_eq!(kc.select(Some("b")).unwrap().server, "http://127.0.0.2:7443");
        // The other order: b's current-context and b's "rk" cluster win.
        let kc = load_from(None, env(&[&b, &a]), None).unwrap();
        assert_eq!(kc.select(None).unwrap().context, "b");
        assert_eq!(kc.select(Some("rk")).unwrap().server, "http://10.9.9.9:1");
    }

    #[test]
    fn explicit_file_home_default_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = files(dir.path());
        let kc = load_from(Some(&b), env(&[&a]), None).unwrap();
        assert_eq!(kc.select(None).unwrap().context, "b", "--kubeconfig beats KUBECONFIG");
        assert!(matches!(load_from(Some(&dir.path().join("x")), None, None), Err(KubeconfigError::Read { .. })));

        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".kube")).unwrap();
        let kc = load_from(None, None, Some(home.clone())).unwrap();
        assert!(matches!(kc.select(None), Err(KubeconfigError::NotFound { .. })));
        std::fs::copy(&a, home.join(".kube/config")).unwrap();
        let kc = load_from(None, Some(OsString::new()), Some(home)).unwrap();
        assert_eq!(kc.select(None).unwrap().context, "rk", "an empty KUBECONFIG means ~/.kube/config");

        let kc = load_from(Some(&a), None, None).unwrap();
        assert!(matches!(kc.select(Some("zzz")), Err(KubeconfigError::NoSuchContext(n)) if n == "zzz"));
        assert!(matches!(kc.select(Some("other")), Err(KubeconfigError::NoSuchCluster { .. })));
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "clusters: [").unwrap();
        assert!(matches!(load_from(Some(&garbage), None, None), Err(KubeconfigError::Read { .. })));
    }

    #[test]
    fn use_context_writes_the_file_that_sets_current_context() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = files(dir.path());
        let no_current = dir.path().join("c");
        std::fs::write(&no_current, "apiVersion: v1\nkind: Config\n").unwrap();
        let kc = load_from(None, env(&[&no_current, &b, &a]), None).unwrap();
        assert_eq!(kc.use_context("rk").unwrap(), b);
        let kc = load_from(None, env(&[&no_current, &b, &a]), None).unwrap();
        assert_eq!(kc.select(None).unwrap().context, "rk");
        // The rest of the file is kept.
        assert!(std::fs::read_to_string(&b).unwrap().contains("127.0.0.2:7443"));
        assert!(matches!(kc.use_context("nope"), Err(KubeconfigError::NoSuchContext(_))));
    }

    #[test]
    fn view_redacts_and_minifies() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = files(dir.path());
        let kc = load_from(Some(&a), None, None).unwrap();
        let v = kc.view(false, false, None).unwrap();
        assert_eq!(v["users"][0]["user"]["token"], "REDACTED");
        assert_eq!(v["users"][0]["user"]["client-key-data"], "DATA+OMITTED");
        assert_eq!(v["clusters"][0]["cluster"]["certificate-authority-data"], "DATA+OMITTED");
        assert_eq!(v["preferences"], json!({}));
        assert_eq!(v["contexts"].as_array().unwrap().len(), 2);
        let raw = kc.view(true, true, None).unwrap();
        assert_eq!(raw["users"][0]["user"]["token"], "s3cret");
        assert_eq!(raw["contexts"].as_array().unwrap().len(), 1);
    }
}
