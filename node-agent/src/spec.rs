//! Turning a pod spec into what a runtime needs: environment variables (values,
//! ConfigMap/Secret references, the downward API, `$(VAR)` expansion) and volumes
//! (emptyDir, configMap, secret, hostPath, downwardAPI, projected — including
//! ServiceAccount tokens, requested for the pod and renewed before they expire)
//! materialised as directories on the node.

use crate::client::{Client, ClientError};
use crate::runtime::Mount;
use base64::Engine;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Why a container's configuration cannot be built (`CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{kind} {name:?} not found")]
    Missing { kind: &'static str, name: String },
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    MissingKey { kind: &'static str, namespace: String, name: String, key: String },
    #[error("unsupported {0}")]
    Unsupported(String),
    #[error("cannot reach the API server to read {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot prepare volume {volume:?}: {detail}")]
    Volume { volume: String, detail: String },
}

/// ConfigMaps and Secrets read while building one pod (each read once).
#[derive(Default)]
pub struct Objects {
    cache: HashMap<(&'static str, String), Option<Value>>,
}

impl Objects {
    async fn get(
        &mut self,
        client: &Client,
        kind: &'static str,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, ConfigError> {
        if let Some(v) = self.cache.get(&(kind, name.to_string())) {
            return Ok(v.clone());
        }
        let v = match client.get(kind, Some(ns), name).await {
            Ok(v) => Some(v),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(ConfigError::Api { what: format!("{kind}/{name}"), source: e }),
        };
        self.cache.insert((kind, name.to_string()), v.clone());
        Ok(v)
    }

    /// The Services whose environment variables a pod in `ns` gets, as the kubelet picks
    /// them: `kubernetes` in `default` always, and with service links (the default) every
    /// Service of the pod's namespace, which wins over the former on a name clash.
    async fn services(&mut self, client: &Client, ns: &str, links: bool) -> Result<Vec<Value>, ConfigError> {
        let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
        if (ns != "default" || !links)
            && let Some(master) = self.get(client, "services", "default", "kubernetes").await?
        {
            by_name.insert("kubernetes".into(), master);
        }
        if links {
            let list = client
                .list("services", Some(ns), "")
                .await
                .map_err(|e| ConfigError::Api { what: format!("the services of namespace {ns}"), source: e })?;
            for svc in list["items"].as_array().into_iter().flatten() {
                if let Some(name) = svc.pointer("/metadata/name").and_then(Value::as_str) {
                    by_name.insert(name.to_string(), svc.clone());
                }
            }
        }
        Ok(by_name.into_values().collect())
    }

    /// The decoded data of a ConfigMap or Secret (Secret values are base64 in the API).
    async fn data(
        &mut self,
        client: &Client,
        kind: &'static str,
        ns: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ConfigError> {
        let Some(obj) = self.get(client, kind, ns, name).await? else { return Ok(None) };
        let mut out = BTreeMap::new();
        if let Some(map) = obj["data"].as_object() {
            for (k, v) in map {
                let s = v.as_str().unwrap_or("");
                let bytes = if kind == "secrets" {
                    base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default()
                } else {
                    s.as_bytes().to_vec()
                };
                out.insert(k.clone(), bytes);
            }
        }
        if let Some(map) = obj["binaryData"].as_object() {
            for (k, v) in map {
                out.insert(
                    k.clone(),
                    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).unwrap_or_default(),
                );
            }
        }
        Ok(Some(out))
    }
}

/// A downward-API field of the pod (`metadata.name`, `status.podIP`, …).
pub fn field_ref(pod: &Value, path: &str, pod_ip: &str, host_ip: &str) -> Option<String> {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).map(String::from);
    let subscript = |prefix: &str| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        let map = if prefix.contains("labels") { "/metadata/labels" } else { "/metadata/annotations" };
        pod.pointer(map)?.get(key)?.as_str().map(String::from)
    };
    match path {
        "metadata.name" => s("/metadata/name"),
        "metadata.namespace" => s("/metadata/namespace"),
        "metadata.uid" => s("/metadata/uid"),
        "spec.nodeName" => s("/spec/nodeName"),
        "spec.serviceAccountName" => s("/spec/serviceAccountName"),
        "status.podIP" => Some(pod_ip.to_string()),
        "status.podIPs" => Some(pod_ip.to_string()),
        "status.hostIP" | "status.hostIPs" => Some(host_ip.to_string()),
        "metadata.labels" | "metadata.annotations" => {
            let map = pod.pointer(&format!("/{}", path.replace('.', "/")))?.as_object()?;
            Some(map.iter().map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join("\n"))
        }
        _ => subscript("metadata.labels['").or_else(|| subscript("metadata.annotations['")),
    }
}

/// `$(VAR)` expansion as Kubernetes does it: known names are replaced, `$$` escapes,
/// unknown references stay as they are.
pub fn expand(input: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn resource_field(container: &Value, resource: &str, divisor: Option<&str>) -> Option<String> {
    let (section, name) = resource.split_once('.')?;
    let q = container.pointer(&format!("/resources/{section}/{name}"))?.as_str()?.to_string();
    let _ = divisor;
    Some(q)
}

/// The Docker-links-style variables Kubernetes gives every container for each Service
/// with a cluster IP (headless Services have none): `<NAME>_SERVICE_HOST`,
/// `<NAME>_SERVICE_PORT` (the first port), `<NAME>_SERVICE_PORT_<PORT NAME>`, and
/// `<NAME>_PORT`, `<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]`, with names upper-cased
/// and `-` turned into `_` (the kubelet's `envvars.FromServices`).
pub fn service_env(services: &[Value]) -> Vec<(String, String)> {
    let upper = |s: &str| s.replace('-', "_").to_uppercase();
    let mut out = Vec::new();
    for svc in services {
        let ip = svc.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let Some(name) = svc.pointer("/metadata/name").and_then(Value::as_str) else { continue };
        let ports: Vec<&Value> = svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten().collect();
        let Some(first) = ports.first() else { continue };
        let prefix = upper(name);
        let port_of = |p: &Value| p["port"].as_i64().unwrap_or(0).to_string();
        out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{prefix}_SERVICE_PORT"), port_of(first)));
        for p in &ports {
            if let Some(port_name) = p["name"].as_str().filter(|n| !n.is_empty()) {
                out.push((format!("{prefix}_SERVICE_PORT_{}", upper(port_name)), port_of(p)));
            }
        }
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
        for (i, p) in ports.iter().enumerate() {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            let port = port_of(p);
            let url = format!("{}://{host}:{port}", proto.to_lowercase());
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let base = format!("{prefix}_PORT_{port}_{}", proto.to_uppercase());
            out.push((base.clone(), url));
            out.push((format!("{base}_PROTO"), proto.to_lowercase()));
            out.push((format!("{base}_PORT"), port));
            out.push((format!("{base}_ADDR"), ip.to_string()));
        }
    }
    out
}

/// The environment of a container, in order (later entries win, as in Kubernetes).
pub async fn env(
    client: &Client,
    objects: &mut Objects,
    pod: &Value,
    container: &Value,
    pod_ip: &str,
    host_ip: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
    // Service variables come first, so that the container's own (later) win on a clash and
    // may refer to them with $(NAME), as with the kubelet.
    let links = pod.pointer("/spec/enableServiceLinks").and_then(Value::as_bool).unwrap_or(true);
    let mut vars: Vec<(String, String)> = service_env(&objects.services(client, ns, links).await?);
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or("");
        let (kind, r) = if from["configMapRef"].is_object() {
            ("configmaps", &from["configMapRef"])
        } else {
            ("secrets", &from["secretRef"])
        };
        let name = r["name"].as_str().unwrap_or("");
        let optional = r["optional"].as_bool().unwrap_or(false);
        match objects.data(client, kind, ns, name).await? {
            Some(data) => {
                for (k, v) in data {
                    vars.push((format!("{prefix}{k}"), String::from_utf8_lossy(&v).into_owned()));
                }
            }
            None if optional => {}
            None => {
                return Err(ConfigError::Missing {
                    kind: if kind == "secrets" { "secret" } else { "configmap" },
                    name: name.into(),
                });
            }
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or("").to_string();
        if let Some(v) = e["value"].as_str() {
            let expanded = expand(v, &vars);
            vars.push((name, expanded));
            continue;
        }
        let from = &e["valueFrom"];
        let value = if let Some(f) = from.get("fieldRef") {
            field_ref(pod, f["fieldPath"].as_str().unwrap_or(""), pod_ip, host_ip).unwrap_or_default()
        } else if let Some(r) = from.get("resourceFieldRef") {
            resource_field(container, r["resource"].as_str().unwrap_or(""), r["divisor"].as_str()).unwrap_or_default()
        } else {
            let (kind, r, label) = if from["configMapKeyRef"].is_object() {
                ("configmaps", &from["configMapKeyRef"], "configmap")
            } else if from["secretKeyRef"].is_object() {
                ("secrets", &from["secretKeyRef"], "secret")
            } else {
                vars.push((name, String::new()));
                continue;
            };
            let obj_name = r["name"].as_str().unwrap_or("");
            let key = r["key"].as_str().unwrap_or("");
            let optional = r["optional"].as_bool().unwrap_or(false);
            match objects.data(client, kind, ns, obj_name).await? {
                Some(data) => match data.get(key) {
                    Some(v) => String::from_utf8_lossy(v).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(ConfigError::MissingKey {
                            kind: label,
                            namespace: ns.into(),
                            name: obj_name.into(),
                            key: key.into(),
                        });
                    }
                },
                None if optional => continue,
                None => return Err(ConfigError::Missing { kind: label, name: obj_name.into() }),
            }
        };
        vars.push((name, value));
    }
    Ok(vars)
}

/// Writes `files` (relative path → (bytes, mode)) into `dir` atomically: a new
/// timestamped directory, then the `..data` symlink swapped to it, as the kubelet
/// does, so readers never see half an update.
fn write_atomic(dir: &Path, files: &BTreeMap<String, (Vec<u8>, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    );
    let fresh = dir.join(&stamp);
    std::fs::create_dir_all(&fresh)?;
    for (rel, (bytes, mode)) in files {
        let rel = rel.trim_start_matches('/');
        if rel.split('/').any(|p| p == ".." || p.is_empty()) {
            continue;
        }
        let path = fresh.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))?;
    }
    let link_tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&link_tmp);
    std::os::unix::fs::symlink(&stamp, &link_tmp)?;
    std::fs::rename(&link_tmp, dir.join("..data"))?;
    // Top-level entries point through ..data, so they follow each swap.
    for rel in files.keys() {
        let top = rel.trim_start_matches('/').split('/').next().unwrap_or("");
        if top.is_empty() || top == ".." {
            continue;
        }
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{top}"), &link)?;
        }
    }
    // Old generations go.
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") && name != "..data" && name != stamp {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// A downwardAPI volume's (or projected source's) files.
fn downward_files(pod: &Value, d: &Value, mode: u32, pod_ip: &str, host_ip: &str) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut files = BTreeMap::new();
    for it in d["items"].as_array().into_iter().flatten() {
        let path = it["path"].as_str().unwrap_or("").to_string();
        let value =
            it["fieldRef"]["fieldPath"].as_str().and_then(|f| field_ref(pod, f, pod_ip, host_ip)).unwrap_or_default();
        files.insert(path, (value.into_bytes(), it["mode"].as_u64().map(|m| m as u32).unwrap_or(mode)));
    }
    files
}

/// The files of one source of a projected volume.
async fn projected_source(
    client: &Client,
    objects: &mut Objects,
    pod: &Value,
    src: &Value,
    mode: u32,
    pod_ip: &str,
    host_ip: &str,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, ConfigError> {
    let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
    if let Some(c) = src.get("configMap").or_else(|| src.get("secret")) {
        let (kind, what) =
            if src.get("secret").is_some() { ("secrets", "secret") } else { ("configmaps", "configmap") };
        let obj_name = c["name"].as_str().unwrap_or("");
        return match objects.data(client, kind, ns, obj_name).await? {
            Some(data) => Ok(projected_files(&data, c["items"].as_array(), mode)),
            None if c["optional"].as_bool().unwrap_or(false) => Ok(BTreeMap::new()),
            None => Err(ConfigError::Missing { kind: what, name: obj_name.into() }),
        };
    }
    if let Some(d) = src.get("downwardAPI") {
        return Ok(downward_files(pod, d, mode, pod_ip, host_ip));
    }
    if let Some(t) = src.get("serviceAccountToken") {
        let path = t["path"].as_str().unwrap_or("token").to_string();
        let token = service_account_token(client, pod, t).await?;
        return Ok(BTreeMap::from([(path, (token.into_bytes(), mode))]));
    }
    let kind = src.as_object().and_then(|m| m.keys().next().cloned()).unwrap_or_default();
    Err(ConfigError::Unsupported(format!("projected volume source {kind:?}")))
}

/// Tokens issued for pods: (pod uid, audience, seconds) → (token, when to renew it).
type TokenKey = (String, String, i64);
static TOKENS: std::sync::LazyLock<parking_lot::Mutex<HashMap<TokenKey, (String, std::time::Instant)>>> =
    std::sync::LazyLock::new(Default::default);

/// A token for the pod's ServiceAccount, bound to the pod (TokenRequest), as a projected
/// `serviceAccountToken` source asks: reused until 80% of its life has passed, as the
/// kubelet does.
async fn service_account_token(client: &Client, pod: &Value, source: &Value) -> Result<String, ConfigError> {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let (ns, name, uid) = (s("/metadata/namespace"), s("/metadata/name"), s("/metadata/uid"));
    let account = Some(s("/spec/serviceAccountName")).filter(|a| !a.is_empty()).unwrap_or_else(|| "default".into());
    let audience = source["audience"].as_str().unwrap_or("").to_string();
    let seconds = source["expirationSeconds"].as_i64().unwrap_or(3600).max(600);
    let key = (uid.clone(), audience.clone(), seconds);
    let now = std::time::Instant::now();
    if let Some((token, renew_at)) = TOKENS.lock().get(&key)
        && *renew_at > now
    {
        return Ok(token.clone());
    }
    let mut spec = serde_json::json!({"expirationSeconds": seconds,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}});
    if !audience.is_empty() {
        spec["audiences"] = serde_json::json!([audience]);
    }
    let request = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
    let answer = client
        .create_subresource("serviceaccounts", Some(&ns), &account, "token", &request)
        .await
        .map_err(|e| ConfigError::Api { what: format!("a token for service account {ns}/{account}"), source: e })?;
    let token = answer.pointer("/status/token").and_then(Value::as_str).unwrap_or("").to_string();
    if token.is_empty() {
        return Err(ConfigError::Unsupported(format!("a TokenRequest answer without a token for {ns}/{account}")));
    }
    let renew_at = now + std::time::Duration::from_secs(seconds as u64 * 4 / 5);
    let mut tokens = TOKENS.lock();
    // Tokens of pods long gone are dropped as new ones come.
    tokens.retain(|_, (_, at)| *at + std::time::Duration::from_secs(3600) > now);
    tokens.insert(key, (token.clone(), renew_at));
    Ok(token)
}

fn projected_files(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<Value>>,
    default_mode: u32,
) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut files = BTreeMap::new();
    match items {
        Some(items) => {
            for it in items {
                let key = it["key"].as_str().unwrap_or("");
                if let Some(bytes) = data.get(key) {
                    let path = it["path"].as_str().unwrap_or(key).to_string();
                    let mode = it["mode"].as_u64().map(|m| m as u32).unwrap_or(default_mode);
                    files.insert(path, (bytes.clone(), mode));
                }
            }
        }
        None => {
            for (k, v) in data {
                files.insert(k.clone(), (v.clone(), default_mode));
            }
        }
    }
    files
}

/// Creates (or refreshes) every volume of the pod under `pod_dir/volumes/<name>`;
/// returns each volume's host path by name.
pub async fn volumes(
    client: &Client,
    objects: &mut Objects,
    pod: &Value,
    pod_dir: &Path,
    pod_ip: &str,
    host_ip: &str,
) -> Result<HashMap<String, PathBuf>, ConfigError> {
    let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
    let mut out = HashMap::new();
    for v in pod.pointer("/spec/volumes").and_then(Value::as_array).into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let dir = pod_dir.join("volumes").join(&name);
        let io = |e: std::io::Error| ConfigError::Volume { volume: name.clone(), detail: e.to_string() };
        if v.get("emptyDir").is_some() {
            std::fs::create_dir_all(&dir).map_err(io)?;
        } else if let Some(h) = v.get("hostPath") {
            let path = PathBuf::from(h["path"].as_str().unwrap_or(""));
            match h["type"].as_str().unwrap_or("") {
                "DirectoryOrCreate" => std::fs::create_dir_all(&path).map_err(io)?,
                "FileOrCreate" if !path.exists() => std::fs::write(&path, b"").map_err(io)?,
                "Directory" | "File" | "Socket" | "CharDevice" | "BlockDevice" if !path.exists() => {
                    return Err(ConfigError::Volume {
                        volume: name,
                        detail: format!("hostPath {} does not exist", path.display()),
                    });
                }
                _ => {}
            }
            out.insert(name, path);
            continue;
        } else if let Some(c) = v.get("configMap").or_else(|| v.get("secret")) {
            let is_secret = v.get("secret").is_some();
            let kind = if is_secret { "secrets" } else { "configmaps" };
            let obj_name = c[if is_secret { "secretName" } else { "name" }].as_str().unwrap_or("");
            let optional = c["optional"].as_bool().unwrap_or(false);
            let mode = c["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            let data = match objects.data(client, kind, ns, obj_name).await? {
                Some(d) => d,
                None if optional => BTreeMap::new(),
                None => {
                    return Err(ConfigError::Missing {
                        kind: if is_secret { "secret" } else { "configmap" },
                        name: obj_name.into(),
                    });
                }
            };
            write_atomic(&dir, &projected_files(&data, c["items"].as_array(), mode)).map_err(io)?;
        } else if let Some(d) = v.get("downwardAPI") {
            let mode = d["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            write_atomic(&dir, &downward_files(pod, d, mode, pod_ip, host_ip)).map_err(io)?;
        } else if let Some(p) = v.get("projected") {
            let mode = p["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            let mut files = BTreeMap::new();
            for src in p["sources"].as_array().into_iter().flatten() {
                files.extend(projected_source(client, objects, pod, src, mode, pod_ip, host_ip).await?);
            }
            write_atomic(&dir, &files).map_err(io)?;
        } else {
            let kind = v.as_object().and_then(|m| m.keys().find(|k| *k != "name").cloned()).unwrap_or_default();
            return Err(ConfigError::Unsupported(format!(
                "volume type {kind:?} (volume {name:?}); rk supports emptyDir, configMap, secret, hostPath, \
                 downwardAPI and projected"
            )));
        }
        out.insert(name, dir);
    }
    Ok(out)
}

/// The mounts of one container, from its volumeMounts and the pod's volumes.
pub fn mounts(container: &Value, volumes: &HashMap<String, PathBuf>) -> Result<Vec<Mount>, ConfigError> {
    let mut out = Vec::new();
    for m in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or("");
        let Some(host) = volumes.get(name) else {
            return Err(ConfigError::Volume {
                volume: name.into(),
                detail: "no volume of that name in the pod".into(),
            });
        };
        let mut host_path = host.clone();
        if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
            if sub.split('/').any(|p| p == "..") {
                return Err(ConfigError::Volume {
                    volume: name.into(),
                    detail: format!("subPath {sub:?} may not contain '..'"),
                });
            }
            host_path = host_path.join(sub);
        }
        out.push(Mount {
            host_path,
            container_path: m["mountPath"].as_str().unwrap_or("").to_string(),
            read_only: m["readOnly"].as_bool().unwrap_or(false),
        });
    }
    Ok(out)
}

/// `true` when `kubectl`-style quantities for cpu ("500m", "2") parse; returns millicores.
pub fn cpu_millis(q: &str) -> Option<u64> {
    if let Some(m) = q.strip_suffix('m') {
        return m.parse().ok();
    }
    q.parse::<f64>().ok().map(|c| (c * 1000.0).round() as u64)
}

/// Memory quantities ("128Mi", "1G", "1e6", "500") in bytes.
pub fn memory_bytes(q: &str) -> Option<u64> {
    let units: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, mult) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|v| (v * mult) as u64);
        }
    }
    q.parse::<f64>().ok().map(|v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion() {
        let vars = vec![("A".to_string(), "1".to_string()), ("B".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$(C)-$$(A)-$", &vars), "1-x-$(C)-$(A)-$");
    }

    #[test]
    fn service_variables_as_the_kubelet_writes_them() {
        let svcs = vec![
            json!({"metadata": {"name": "kubernetes"}, "spec": {"clusterIP": "10.96.0.1",
                   "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}),
            json!({"metadata": {"name": "web-api"}, "spec": {"clusterIP": "10.96.3.4",
                   "ports": [{"port": 80, "protocol": "TCP"}, {"name": "dns-udp", "port": 53, "protocol": "UDP"}]}}),
            json!({"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
        ];
        let env: BTreeMap<String, String> = service_env(&svcs).into_iter().collect();
        let want = [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
            ("WEB_API_SERVICE_HOST", "10.96.3.4"),
            ("WEB_API_SERVICE_PORT", "80"),
            ("WEB_API_SERVICE_PORT_DNS_UDP", "53"),
            ("WEB_API_PORT", "tcp://10.96.3.4:80"),
            ("WEB_API_PORT_53_UDP", "udp://10.96.3.4:53"),
            ("WEB_API_PORT_53_UDP_PROTO", "udp"),
        ];
        for (k, v) in want {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(!env.keys().any(|k| k.starts_with("HEADLESS")), "a headless Service has no variables");
        assert_eq!(env.len(), 8 + 12);
    }

    #[test]
    fn downward_fields() {
        let pod =
            json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}}, "spec": {"nodeName": "n1"}});
        assert_eq!(field_ref(&pod, "metadata.name", "", "").as_deref(), Some("p"));
        assert_eq!(field_ref(&pod, "status.podIP", "10.0.0.9", "").as_deref(), Some("10.0.0.9"));
        assert_eq!(field_ref(&pod, "metadata.labels['app']", "", "").as_deref(), Some("web"));
        assert_eq!(field_ref(&pod, "spec.nodeName", "", "").as_deref(), Some("n1"));
    }

    #[test]
    fn atomic_volume_writes_swap_whole_generations() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = BTreeMap::new();
        files.insert("a.txt".to_string(), (b"one".to_vec(), 0o644));
        write_atomic(dir.path(), &files).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"one");
        files.insert("a.txt".to_string(), (b"two".to_vec(), 0o600));
        write_atomic(dir.path(), &files).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"two");
        let gens = std::fs::read_dir(dir.path()).unwrap().filter(|e| {
            let n = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            n.starts_with("..") && n != "..data"
        });
        assert_eq!(gens.count(), 1);
    }

    #[test]
    fn quantities() {
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(memory_bytes("128Mi"), Some(128 << 20));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("bogus"), None);
    }
}
