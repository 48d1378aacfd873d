//! The verbs on objects — get, list, create, update, patch, apply, delete — with
//! Kubernetes' object semantics. HTTP, gRPC and the in-process controllers all call
//! these, so every client goes through the same defaulting, validation, admission
//! and optimistic concurrency.
//!
//! Every write is a read followed by a compare-and-swap on the key's revision
//! ([`Api::guaranteed_update`]); a lost race is retried with fresh state unless the
//! client pinned a `resourceVersion`, in which case it gets `409 Conflict`.

use super::error::{ApiError, FieldError};
use super::query::{DeleteOptions, FieldValidation, ListOptions, WriteOptions};
use super::registry::{self, Resource, Subresource};
use super::store::{self, Freshness, ObjectStore, Page, Stored, Written};
use super::{alloc, apply, kinds, meta, patch, selector};
use base64::Engine;
use serde_json::{Map, Value, json};

/// How many times a write retries after losing a compare-and-swap race.
const MAX_RETRIES: usize = 16;

/// Settings that shape admission.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Where Services get cluster IPs and node ports.
    pub ranges: super::alloc::Ranges,
    /// Seconds pods tolerate their node being unreachable or not ready before they
    /// are evicted (Kubernetes' DefaultTolerationSeconds admission; 300 there, shorter
    /// here so failed nodes' pods are replaced quickly).
    pub default_toleration_seconds: i64,
    /// Watches one client may hold open on this replica (see `limits`).
    pub max_watches_per_client: usize,
    /// Other requests one client may have in flight on this replica.
    pub max_requests_in_flight_per_client: usize,
    /// Kubernetes' ServiceAccount admission: pods get a projected token volume (token,
    /// `ca.crt`, namespace) at `/var/run/secrets/kubernetes.io/serviceaccount`.
    pub mount_service_account_tokens: bool,
    /// How this replica dials node agents: TLS presenting its own credentials, or plain
    /// TCP (`--insecure-dev`, whose agents serve plain HTTP).
    pub agent_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            ranges: Default::default(),
            default_toleration_seconds: 5,
            max_watches_per_client: super::limits::DEFAULT_MAX_WATCHES,
            max_requests_in_flight_per_client: super::limits::DEFAULT_MAX_IN_FLIGHT,
            mount_service_account_tokens: false,
            agent_tls: None,
        }
    }
}

/// The result of a write: the object as stored, and warnings for the client.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub object: Value,
    /// True when the write created the object (HTTP 201).
    pub created: bool,
    pub warnings: Vec<String>,
}

/// The kind of patch in a PATCH request's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        Some(match base {
            "application/json-patch+json" => PatchKind::Json,
            "application/merge-patch+json" => PatchKind::Merge,
            "application/strategic-merge-patch+json" => PatchKind::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
            _ => return None,
        })
    }
}

/// Where a write lands: the object itself, or one of its subresources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Main,
    Status,
    /// Spec and status in one write: only for the API server's own subresources
    /// (binding), never reachable from a client's PUT or PATCH.
    MainAndStatus,
}

/// The API's verbs over the object store.
#[derive(Clone)]
pub struct Api {
    pub store: ObjectStore,
    pub options: ApiOptions,
    /// The RBAC policy last read (see `rbac::Policy::load`).
    pub rbac: std::sync::Arc<super::rbac::PolicyCache>,
    /// Bearer tokens recently verified (see `tokens::authenticate`).
    pub tokens: std::sync::Arc<super::tokens::TokenCache>,
    /// Each client's open watches and requests in flight (see `limits`).
    pub limits: std::sync::Arc<super::limits::ClientLimits>,
}

fn namespace_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace").and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable_meta(),
    }
}

/// `meta_mut` just made `metadata` an object; this path cannot be reached.
#[cold]
fn unreachable_meta() -> &'static mut Map<String, Value> {
    Box::leak(Box::new(Map::new()))
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn parse_rv(obj: &Value) -> Result<Option<i64>, ApiError> {
    match obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("metadata.resourceVersion: Invalid value: {s:?}"))),
    }
}

/// A continue token, as Kubernetes encodes it (base64 of a small JSON document).
fn encode_continue(rev: i64, after: &[u8], prefix: &str) -> String {
    let start = String::from_utf8_lossy(&after[prefix.len().min(after.len())..]).into_owned() + "\u{0}";
    let doc = json!({ "v": "meta.k8s.io/v1", "rv": rev, "start": start });
    base64::engine::general_purpose::URL_SAFE.encode(doc.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(i64, Vec<u8>), ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad("not base64"))?;
    let doc: Value = serde_json::from_slice(&raw).map_err(|_| bad("not JSON"))?;
    if doc["v"] != "meta.k8s.io/v1" {
        return Err(bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"));
    }
    let rev = doc["rv"].as_i64().filter(|r| *r > 0).ok_or_else(|| bad("missing resource version"))?;
    let start = doc["start"].as_str().ok_or_else(|| bad("missing start key"))?;
    let start = start.strip_suffix('\u{0}').unwrap_or(start);
    if start.contains("..") || start.starts_with('/') {
        return Err(bad("start key is outside the list"));
    }
    Ok((rev, format!("{prefix}{start}").into_bytes()))
}

/// Selectors of a list or watch, ready to test objects.
pub struct Filter {
    labels: Option<selector::LabelSelector>,
    fields: Option<selector::FieldSelector>,
    kind: &'static str,
}

impl Filter {
    pub fn new(res: &Resource, opts: &ListOptions) -> Result<Self, ApiError> {
        let labels = match &opts.label_selector {
            Some(s) => Some(selector::LabelSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?),
            None => None,
        };
        let fields = match &opts.field_selector {
            Some(s) => {
                let f = selector::FieldSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                // Refuse unsupported fields up front (even for an empty list), as Kubernetes does.
                f.validate_for_kind(res.kind).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                Some(f)
            }
            None => None,
        };
        Ok(Self { labels, fields, kind: res.kind })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    pub fn matches(&self, obj: &Value) -> Result<bool, ApiError> {
        if let Some(l) = &self.labels {
            let empty = Map::new();
            let labels = obj.pointer("/metadata/labels").and_then(Value::as_object).unwrap_or(&empty);
            if !l.matches(labels) {
                return Ok(false);
            }
        }
        if let Some(f) = &self.fields
            && !f.matches(obj, self.kind).map_err(|e| ApiError::BadRequest(e.to_string()))?
        {
            return Ok(false);
        }
        Ok(true)
    }

    pub fn matches_stored(&self, s: &Stored) -> Result<bool, ApiError> {
        if self.is_empty() {
            return Ok(true);
        }
        self.matches(&s.object()?)
    }
}

/// A page of a list, with what the list metadata needs.
pub struct ListResult {
    pub page: Page,
    pub continue_token: Option<String>,
}

impl Api {
    pub fn new(store: ObjectStore, options: ApiOptions) -> Self {
        let limits = std::sync::Arc::new(super::limits::ClientLimits::new(
            options.max_watches_per_client,
            options.max_requests_in_flight_per_client,
        ));
        Self { store, options, rbac: Default::default(), tokens: Default::default(), limits }
    }

    /// The same API with every write fenced to raft term `term` (for controllers).
    pub fn fenced(&self, term: u64) -> Self {
        Self {
            store: self.store.fenced(term),
            options: self.options.clone(),
            rbac: self.rbac.clone(),
            tokens: self.tokens.clone(),
            limits: self.limits.clone(),
        }
    }

    // === reads ===

    pub async fn get(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        freshness: Freshness,
    ) -> Result<Stored, ApiError> {
        self.store.get(&res.key(ns, name), freshness).await?.ok_or_else(|| ApiError::not_found(res, name))
    }

    pub async fn list(
        &self,
        res: &Resource,
        ns: Option<&str>,
        opts: &ListOptions,
        freshness: Freshness,
    ) -> Result<ListResult, ApiError> {
        let prefix = res.prefix(ns);
        let filter = Filter::new(res, opts)?;
        let (freshness, after) = match &opts.continue_token {
            Some(token) => {
                let (rev, after) = decode_continue(token, &prefix)?;
                (Freshness::Exact(rev), Some(after))
            }
            None => (freshness, None),
        };
        let page = self
            .store
            .list(&prefix, freshness, after.as_deref(), opts.limit, |s| filter.matches_stored(s))
            .await
            .map_err(|e| match (&e, &opts.continue_token) {
                (ApiError::Expired(_), Some(_)) => ApiError::Expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start \
                     a new list without the continue parameter."
                        .into(),
                ),
                _ => e,
            })?;
        let mut page = page;
        if filter.labels.is_some() || filter.fields.is_some() {
            // As in Kubernetes: with a selector the count of what is left is unknown
            // (counting it would mean filtering everything), so it is left out.
            page.remaining = None;
        }
        let continue_token = page.next.as_ref().map(|k| encode_continue(page.revision, k, &prefix));
        Ok(ListResult { page, continue_token })
    }

    // === create ===

    /// Makes sure `obj` names this resource's apiVersion and kind (filling them in
    /// when absent).
    fn check_type(res: &Resource, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::BadRequest("the request body must be a JSON or YAML object".into()));
        }
        let want = res.api_version();
        match obj.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => obj["apiVersion"] = json!(want),
            Some(v) if v == want => {}
            Some(v) => {
                return Err(ApiError::BadRequest(format!(
                    "the API version in the data ({v}) does not match the expected API version ({want})"
                )));
            }
        }
        match obj.get("kind").and_then(Value::as_str) {
            None | Some("") => obj["kind"] = json!(res.kind),
            Some(k) if k == res.kind => {}
            Some(k) => {
                return Err(ApiError::BadRequest(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    res.kind
                )));
            }
        }
        Ok(())
    }

    fn check_namespace_field(res: &Resource, ns: Option<&str>, obj: &mut Value) -> Result<(), ApiError> {
        let meta = meta_mut(obj);
        if res.namespaced {
            let url_ns = ns.unwrap_or("default");
            match meta.get("namespace").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                Some(body_ns) if body_ns != url_ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(url_ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        Ok(())
    }

    /// Namespaced objects may only be created in a namespace that exists and is
    /// not being deleted (Kubernetes' NamespaceLifecycle admission).
    async fn check_namespace_exists(&self, res: &Resource, ns: &str) -> Result<(), ApiError> {
        let ns_res = registry::lookup("namespaces").ok_or_else(|| ApiError::Internal("no namespaces".into()))?;
        let found = self.store.get(&ns_res.key(None, ns), Freshness::Any).await?;
        let Some(found) = found else {
            return Err(ApiError::not_found(ns_res, ns));
        };
        let obj = found.object()?;
        if obj.pointer("/metadata/deletionTimestamp").is_some() && res.kind != "Event" {
            return Err(ApiError::Forbidden(format!(
                "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                res.qualified(),
                name_of(&obj)
            )));
        }
        Ok(())
    }

    /// Unknown fields under `fieldValidation`: an error (Strict) or warnings (Warn).
    fn field_validation(res: &Resource, obj: &Value, mode: FieldValidation) -> Result<Vec<String>, ApiError> {
        if mode == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        let unknown = kinds::unknown_fields(res.kind, obj);
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        let msgs: Vec<String> = unknown.iter().map(|f| format!("unknown field {f:?}")).collect();
        match mode {
            FieldValidation::Strict => Err(ApiError::BadRequest(format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
                msgs.join(", "),
                kind = res.kind,
                version = res.version,
            ))),
            _ => Ok(msgs),
        }
    }

    fn validate_meta(res: &Resource, obj: &Value, errs: &mut Vec<FieldError>) {
        let name = name_of(obj);
        if name.is_empty() {
            errs.push(FieldError {
                detail: "name or generateName is required".into(),
                ..FieldError::required("metadata.name")
            });
        } else {
            for e in kinds::name_rule(res.kind)(name) {
                errs.push(FieldError::invalid("metadata.name", name, e));
            }
        }
        if let Some(m) = obj.get("metadata") {
            meta::validate_labels_and_annotations(m, errs);
            for (i, f) in finalizers(obj).iter().enumerate() {
                for e in meta::qualified_name(f) {
                    errs.push(FieldError::invalid(format!("metadata.finalizers[{i}]"), f, e));
                }
            }
        }
    }

    /// Kubernetes' ServiceAccount admission: a pod runs as `default` unless it names an
    /// account, and unless the pod or its account opts out
    /// (`automountServiceAccountToken: false`) or a container already mounts something
    /// there, every container gets the account's credentials at
    /// `/var/run/secrets/kubernetes.io/serviceaccount` from a projected volume
    /// `kube-api-access-<random>`: a token bound to the pod (an hour, refreshed by the
    /// node), the cluster CA (`ca.crt`) and the namespace.
    async fn mount_service_account_token(&self, pod: &mut Value) -> Result<(), ApiError> {
        const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
        let ns = namespace_of(pod).unwrap_or("default").to_string();
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
        let account = match spec.get("serviceAccountName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(a) => a.to_string(),
            None => {
                let a = spec.get("serviceAccount").and_then(Value::as_str).filter(|s| !s.is_empty());
                a.unwrap_or("default").to_string()
            }
        };
        spec.insert("serviceAccountName".into(), json!(account));
        spec.insert("serviceAccount".into(), json!(account));
        let opted_out = match spec.get("automountServiceAccountToken").and_then(Value::as_bool) {
            Some(v) => !v,
            None => {
                let sa = super::registry::lookup("serviceaccounts");
                let sa = match sa {
                    Some(res) => self.get(res, Some(&ns), &account, Freshness::Any).await.ok(),
                    None => None,
                };
                let sa = sa.map(|s| s.object()).transpose()?;
                sa.and_then(|s| s["automountServiceAccountToken"].as_bool()) == Some(false)
            }
        };
        let containers = ["initContainers", "containers"];
        let mounted =
            containers.iter().flat_map(|k| spec.get(*k).and_then(Value::as_array).into_iter().flatten()).any(|c| {
                c["volumeMounts"].as_array().into_iter().flatten().any(|m| m["mountPath"].as_str() == Some(MOUNT))
            });
        if opted_out || mounted {
            return Ok(());
        }
        let name = format!("kube-api-access-{}", meta::random_suffix());
        let volume = json!({"name": name, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": crate::controllers::serviceaccount::ROOT_CA_CONFIGMAP,
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}});
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(list) = volumes.as_array_mut() {
            list.push(volume);
        }
        for k in containers {
            for c in spec.get_mut(k).and_then(Value::as_array_mut).into_iter().flatten() {
                let Some(c) = c.as_object_mut() else { continue };
                let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
                if let Some(list) = mounts.as_array_mut() {
                    list.push(json!({"name": name, "mountPath": MOUNT, "readOnly": true}));
                }
            }
        }
        Ok(())
    }

    /// Kubernetes' DefaultTolerationSeconds admission: pods tolerate an unreachable
    /// or not-ready node for a while before being evicted.
    fn default_tolerations(&self, pod: &mut Value) {
        let seconds = self.options.default_toleration_seconds;
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
        let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
        let Some(list) = tolerations.as_array_mut() else { return };
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            let present = list.iter().any(|t| {
                (t["key"] == key || (t["key"].is_null() && t["operator"] == "Exists"))
                    && (t["effect"].is_null() || t["effect"] == "NoExecute")
            });
            if !present {
                list.push(
                    json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}),
                );
            }
        }
    }

    /// Creates an object.
    pub async fn create(
        &self,
        res: &Resource,
        ns: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
        manager: &str,
    ) -> Result<Outcome, ApiError> {
        self.create_owned(res, ns, obj, opts, Ownership::Update(manager)).await
    }

    async fn create_owned(
        &self,
        res: &Resource,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        ownership: Ownership<'_>,
    ) -> Result<Outcome, ApiError> {
        Self::check_type(res, &mut obj)?;
        Self::check_namespace_field(res, ns, &mut obj)?;
        let warnings = Self::field_validation(res, &obj, opts.field_validation)?;
        {
            let meta = meta_mut(&mut obj);
            let has_name = meta.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
            if !has_name && let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                let name = format!("{prefix}{}", meta::random_suffix());
                meta.insert("name".into(), json!(name));
            }
        }
        let namespace = namespace_of(&obj).map(String::from);
        if res.namespaced
            && let Some(ns) = &namespace
        {
            self.check_namespace_exists(res, ns).await?;
        }
        let now = meta::now();
        {
            let meta = meta_mut(&mut obj);
            for k in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
                meta.remove(k);
            }
            meta.insert("uid".into(), json!(meta::new_uid()));
            meta.insert("creationTimestamp".into(), json!(now));
            if res.has_spec {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        if res.kind == "Pod" {
            self.default_tolerations(&mut obj);
            if self.options.mount_service_account_tokens {
                self.mount_service_account_token(&mut obj).await?;
            }
        }
        kinds::default(res.kind, &mut obj)?;
        let mut errs = Vec::new();
        Self::validate_meta(res, &obj, &mut errs);
        errs.extend(kinds::validate_create(res.kind, &obj));
        if !errs.is_empty() {
            return Err(ApiError::invalid(res, name_of(&obj), errs));
        }
        if let Ownership::Update(manager) = ownership {
            let managed = apply::record_update(None, &obj, manager, &now);
            meta_mut(&mut obj).insert("managedFields".into(), managed);
        }
        self.store_new(res, namespace.as_deref(), obj, opts.dry_run, warnings).await
    }

    async fn store_new(
        &self,
        res: &Resource,
        ns: Option<&str>,
        mut obj: Value,
        dry_run: bool,
        warnings: Vec<String>,
    ) -> Result<Outcome, ApiError> {
        let name = name_of(&obj).to_string();
        if dry_run {
            // Nothing is written, but the answer must still say whether it would conflict.
            if self.store.get(&res.key(ns, &name), Freshness::Any).await?.is_some() {
                return Err(ApiError::already_exists(res, &name));
            }
            return Ok(Outcome { object: obj, created: true, warnings });
        }
        if res.kind != "Service" {
            return match self.store.create(&res.key(ns, &name), store::encode(&obj)?).await? {
                Written::Ok(rev) => {
                    store::set_resource_version(&mut obj, rev);
                    Ok(Outcome { object: obj, created: true, warnings })
                }
                Written::Conflict(_) | Written::Taken(_) => Err(ApiError::already_exists(res, &name)),
            };
        }
        // Services claim their cluster IP and node ports in the same transaction.
        for _ in 0..MAX_RETRIES {
            let mut candidate = obj.clone();
            let (side, explicit) = alloc::plan(&mut candidate, None, &self.options.ranges, &self.allocated())
                .map_err(|errs| ApiError::invalid(res, &name, errs))?;
            match self.store.create_with(&res.key(ns, &name), store::encode(&candidate)?, &side).await? {
                Written::Ok(rev) => {
                    store::set_resource_version(&mut candidate, rev);
                    return Ok(Outcome { object: candidate, created: true, warnings });
                }
                Written::Conflict(_) => return Err(ApiError::already_exists(res, &name)),
                Written::Taken(keys) => {
                    if let Some(k) = keys.iter().find(|k| explicit.contains(*k)) {
                        return Err(ApiError::invalid(res, &name, vec![alloc_clash(k)]));
                    }
                }
            }
        }
        Err(ApiError::Unavailable("could not allocate addresses for the service; retry".into()))
    }

    /// Allocation keys currently held (cluster IPs and node ports).
    fn allocated(&self) -> std::collections::HashSet<String> {
        let mut keys: std::collections::HashSet<String> = self.store.keys_under(alloc::IP_PREFIX).into_iter().collect();
        keys.extend(self.store.keys_under(alloc::PORT_PREFIX));
        keys
    }

    // === update ===

    /// Turns a desired object into what is stored: system metadata kept from the old
    /// object, defaults, validation, generation, and what the target may change.
    fn finalize_update(
        &self,
        res: &Resource,
        old: &Value,
        mut new: Value,
        target: Target,
        manager: &str,
        managed_by_apply: bool,
    ) -> Result<Value, ApiError> {
        Self::check_type(res, &mut new)?;
        let name = name_of(old).to_string();
        if name_of(&new) != name && !name_of(&new).is_empty() {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&new)
            )));
        }
        if target == Target::Status {
            // A status write changes the status only.
            let mut merged = old.clone();
            merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            if merged["status"].is_null()
                && let Some(m) = merged.as_object_mut()
            {
                m.remove("status");
            }
            new = merged;
        } else if res.has(Subresource::Status) && target == Target::Main {
            // The main resource cannot change the status (it has its own endpoint).
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        {
            let old_meta = old.get("metadata").cloned().unwrap_or_default();
            let meta = meta_mut(&mut new);
            meta.insert("name".into(), json!(name));
            for k in [
                "uid",
                "creationTimestamp",
                "namespace",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
            meta.remove("resourceVersion");
            meta.remove("selfLink");
            if old_meta.get("deletionTimestamp").is_some() {
                // Once deletion started, finalizers may only be removed.
                let old_f = finalizers(old);
                let new_f = finalizers(&new);
                if let Some(added) = new_f.iter().find(|f| !old_f.contains(f)) {
                    return Err(ApiError::invalid(
                        res,
                        &name,
                        vec![FieldError::forbidden(
                            "metadata.finalizers",
                            format!(
                                "no new finalizers can be added if the object is being deleted, found new finalizers [{added:?}]"
                            ),
                        )],
                    ));
                }
            }
        }
        kinds::default(res.kind, &mut new)?;
        let mut errs = Vec::new();
        Self::validate_meta(res, &new, &mut errs);
        errs.extend(kinds::validate_update(res.kind, old, &new));
        if !errs.is_empty() {
            return Err(ApiError::invalid(res, &name, errs));
        }
        if res.has_spec && target != Target::Status && old.get("spec") != new.get("spec") {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if !managed_by_apply {
            let managed = apply::record_update(Some(old), &new, manager, &meta::now());
            meta_mut(&mut new).insert("managedFields".into(), managed);
        }
        Ok(new)
    }

    /// Whether two versions of an object differ in anything but bookkeeping.
    fn same(old: &Value, new: &Value) -> bool {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                m.remove("managedFields");
            }
            v
        };
        strip(old) == strip(new)
    }

    /// Reads the object, asks `mutate` for its new state, and writes it with a
    /// compare-and-swap; retries on a lost race unless `precondition` pins the
    /// version. `mutate` gets the current object (None if absent) and returns the
    /// desired one plus whether it already carries its managedFields (apply).
    #[allow(clippy::too_many_arguments)]
    pub async fn guaranteed_update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        target: Target,
        opts: &WriteOptions,
        manager: &str,
        allow_create: bool,
        mut mutate: impl FnMut(Option<&Value>) -> Result<(Value, bool), ApiError>,
    ) -> Result<Outcome, ApiError> {
        let key = res.key(ns, name);
        for attempt in 0..MAX_RETRIES {
            // This replica's state first (the write is a compare-and-swap, so a stale read
            // only costs a retry); but a follower may not yet have applied what the client
            // has seen (its create, a newer version), so 404 and 409 are only answered from
            // the latest state.
            let freshness = if attempt == 0 { Freshness::Any } else { Freshness::Latest };
            let current = self.store.get(&key, freshness).await?;
            let Some(current) = current else {
                if attempt == 0 {
                    continue;
                }
                if !allow_create {
                    return Err(ApiError::not_found(res, name));
                }
                let (desired, _) = mutate(None)?;
                if parse_rv(&desired)?.is_some() {
                    // A client that names a version expects the object to exist.
                    return Err(ApiError::not_found(res, name));
                }
                let mut desired = desired;
                if name_of(&desired).is_empty() {
                    meta_mut(&mut desired).insert("name".into(), json!(name));
                }
                return self.create(res, ns, desired, opts, manager).await;
            };
            let old = current.object()?;
            let (desired, by_apply) = mutate(Some(&old))?;
            let precondition = parse_rv(&desired)?;
            if let Some(rv) = precondition
                && rv != current.rev
            {
                if rv > current.rev && attempt == 0 {
                    continue;
                }
                return Err(ApiError::conflict(res, name));
            }
            let warnings = Self::field_validation(res, &desired, opts.field_validation)?;
            let mut new = self.finalize_update(res, &old, desired, target, manager, by_apply)?;
            if Self::same(&old, &new) {
                return Ok(Outcome { object: old, created: false, warnings });
            }
            if opts.dry_run {
                store::set_resource_version(&mut new, current.rev);
                return Ok(Outcome { object: new, created: false, warnings });
            }
            // The last finalizer of an object being deleted is gone: delete it now.
            let finished = new.pointer("/metadata/deletionTimestamp").is_some()
                && finalizers(&new).is_empty()
                && !(res.kind == "Namespace" && Self::namespace_has_finalizers(&new))
                && !(res.kind == "Pod" && Self::pod_grace_pending(&new));
            let mut explicit = std::collections::HashSet::new();
            let side = if res.kind != "Service" {
                store::Side::default()
            } else if finished {
                store::Side { claim: vec![], release: alloc::held_by(&old) }
            } else {
                let (side, e) = alloc::plan(&mut new, Some(&old), &self.options.ranges, &self.allocated())
                    .map_err(|errs| ApiError::invalid(res, name, errs))?;
                explicit = e;
                side
            };
            let written = if finished {
                self.store.delete_with(&key, current.rev, &side).await?
            } else {
                self.store.update_with(&key, store::encode(&new)?, current.rev, &side).await?
            };
            match written {
                Written::Ok(rev) => {
                    store::set_resource_version(&mut new, rev);
                    return Ok(Outcome { object: new, created: false, warnings });
                }
                Written::Conflict(_) if precondition.is_some() => return Err(ApiError::conflict(res, name)),
                Written::Conflict(_) => continue,
                Written::Taken(keys) => {
                    if let Some(k) = keys.iter().find(|k| explicit.contains(*k)) {
                        return Err(ApiError::invalid(res, name, vec![alloc_clash(k)]));
                    }
                    continue;
                }
            }
        }
        Err(ApiError::conflict(res, name))
    }

    fn namespace_has_finalizers(ns: &Value) -> bool {
        ns.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
    }

    /// A bound pod being deleted gracefully waits for its node to confirm.
    fn pod_grace_pending(pod: &Value) -> bool {
        pod.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) > 0
            && pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty())
    }

    /// PUT: replaces the object (or its status).
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        body: Value,
        target: Target,
        opts: &WriteOptions,
        manager: &str,
    ) -> Result<Outcome, ApiError> {
        let mut body = body;
        Self::check_type(res, &mut body)?;
        if target == Target::Main {
            Self::check_namespace_field(res, ns, &mut body)?;
        }
        let allow_create = matches!(res.kind, "Endpoints" | "Lease" | "EndpointSlice") && target == Target::Main;
        self.guaranteed_update(res, ns, name, target, opts, manager, allow_create, |_| Ok((body.clone(), false))).await
    }

    /// PATCH with any of the four patch types.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        target: Target,
        opts: &WriteOptions,
        manager: &str,
    ) -> Result<Outcome, ApiError> {
        let parse_json = || -> Result<Value, ApiError> {
            serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the patch is not valid JSON: {e}")))
        };
        match kind {
            PatchKind::Apply => {
                let config: Value = super::body::parse_yaml_or_json(body)?;
                let Some(manager) = opts.field_manager.clone() else {
                    return Err(ApiError::BadRequest(
                        "PATCH requests with the apply content type must set fieldManager".into(),
                    ));
                };
                if target == Target::Main {
                    let mut c = config.clone();
                    Self::check_type(res, &mut c)?;
                    if name_of(&c) != name {
                        return Err(ApiError::BadRequest(format!(
                            "the name of the object ({}) does not match the name on the URL ({name})",
                            name_of(&c)
                        )));
                    }
                }
                let force = opts.force;
                let now = meta::now();
                let created_config = config.clone();
                let outcome = self
                    .guaranteed_update(res, ns, name, target, opts, &manager, false, |live| {
                        let live = live.ok_or_else(|| ApiError::not_found(res, name))?;
                        let applied = apply::apply(Some(live), &config, &manager, force, &now)
                            .map_err(|e| apply_error(res, name, e))?;
                        // Unpinned applies retry a lost race like other patches.
                        Ok((without_stale_rv(live, applied), true))
                    })
                    .await;
                match outcome {
                    Err(ApiError::NotFound { .. }) if target == Target::Main => {
                        // Apply creates what does not exist yet, owned by the applier.
                        let obj = apply::apply(None, &created_config, &manager, force, &now)
                            .map_err(|e| apply_error(res, name, e))?;
                        self.create_owned(res, ns, obj, opts, Ownership::Keep).await
                    }
                    other => other,
                }
            }
            PatchKind::Json => {
                self.guaranteed_update(res, ns, name, target, opts, manager, false, |live| {
                    let live = live.ok_or_else(|| ApiError::not_found(res, name))?;
                    let patched = patch::json_patch(live, body).map_err(|e| patch_error(res, name, e))?;
                    Ok((without_stale_rv(live, patched), false))
                })
                .await
            }
            PatchKind::Merge => {
                let p = parse_json()?;
                self.guaranteed_update(res, ns, name, target, opts, manager, false, |live| {
                    let live = live.ok_or_else(|| ApiError::not_found(res, name))?;
                    Ok((without_stale_rv(live, patch::merge_patch(live, &p)), false))
                })
                .await
            }
            PatchKind::Strategic => {
                let p = parse_json()?;
                let api_version = res.api_version();
                self.guaranteed_update(res, ns, name, target, opts, manager, false, |live| {
                    let live = live.ok_or_else(|| ApiError::not_found(res, name))?;
                    let patched = patch::strategic_merge_patch(live, &p, &api_version, res.kind)
                        .map_err(|e| patch_error(res, name, e))?;
                    Ok((without_stale_rv(live, patched), false))
                })
                .await
            }
        }
    }

    // === delete ===

    /// Deletes an object, or starts its deletion (finalizers, graceful pods,
    /// namespaces). Returns the object as it is afterwards.
    pub async fn delete(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        self.delete_reporting(res, ns, name, opts).await.map(|(obj, _)| obj)
    }

    /// [`Api::delete`], also saying whether the object is gone now (true) or only
    /// marked for deletion, waiting for finalizers or a pod's grace period (false).
    pub async fn delete_reporting(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, bool), ApiError> {
        // As kube-apiserver's NamespaceLifecycle admission: the namespaces every
        // cluster has cannot be deleted (readiness and the controllers count on them).
        if res.kind == "Namespace" && ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::Forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let key = res.key(ns, name);
        for _ in 0..MAX_RETRIES {
            let current = self.get(res, ns, name, Freshness::Any).await?;
            let mut obj = current.object()?;
            if let Some(uid) = &opts.precondition_uid {
                let have = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
                if have != uid {
                    return Err(ApiError::Conflict {
                        group: res.group.into(),
                        resource: res.qualified(),
                        name: name.into(),
                        message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"),
                    });
                }
            }
            if let Some(rv) = &opts.precondition_rv
                && *rv != current.rev.to_string()
            {
                return Err(ApiError::Conflict {
                    group: res.group.into(),
                    resource: res.qualified(),
                    name: name.into(),
                    message: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        current.rev
                    ),
                });
            }
            let now = meta::now();
            let mut changed = false;
            // Finalizers the propagation policy asks the garbage collector to run.
            let policy = opts.propagation_policy.as_deref().unwrap_or("Background");
            let wanted = match policy {
                "Orphan" => Some("orphan"),
                "Foreground" => Some("foregroundDeletion"),
                _ => None,
            };
            let mut fins = finalizers(&obj);
            if let Some(f) = wanted
                && !fins.iter().any(|x| x == f)
            {
                fins.push(f.to_string());
                meta_mut(&mut obj).insert("finalizers".into(), json!(fins));
                changed = true;
            }
            let being_deleted = obj.pointer("/metadata/deletionTimestamp").is_some();
            let graceful_pod =
                if res.kind == "Pod" { Self::pod_needs_grace(&obj, opts.grace_period_seconds) } else { None };
            let namespace_pending = res.kind == "Namespace" && Self::namespace_has_finalizers(&obj);
            let write = if !fins.is_empty() || graceful_pod.is_some() || namespace_pending {
                let meta = meta_mut(&mut obj);
                if !being_deleted {
                    let grace = graceful_pod.unwrap_or(0);
                    let at = if grace > 0 { meta::format_time(meta::now_secs() + grace) } else { now.clone() };
                    meta.insert("deletionTimestamp".into(), json!(at));
                    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                    changed = true;
                } else if let Some(grace) = graceful_pod {
                    // A second delete may shorten the grace period, never extend it.
                    let current = meta.get("deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0);
                    if grace < current {
                        meta.insert("deletionTimestamp".into(), json!(meta::format_time(meta::now_secs() + grace)));
                        meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                        changed = true;
                    }
                }
                if res.kind == "Namespace" && obj.pointer("/status/phase") != Some(&json!("Terminating")) {
                    obj["status"]["phase"] = json!("Terminating");
                    changed = true;
                }
                if res.has_spec && changed && res.kind != "Pod" && res.kind != "Namespace" {
                    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
                    meta_mut(&mut obj).insert("generation".into(), json!(generation + 1));
                }
                Some(changed)
            } else {
                None
            };
            if opts.dry_run {
                return Ok((obj, write.is_none()));
            }
            let release = if res.kind == "Service" { alloc::held_by(&obj) } else { Vec::new() };
            let written = match write {
                Some(false) => return Ok((obj, false)),
                Some(true) => self.store.update(&key, store::encode(&obj)?, current.rev).await?,
                None => self.store.delete_with(&key, current.rev, &store::Side { claim: vec![], release }).await?,
            };
            match written {
                Written::Ok(rev) => {
                    if write.is_some() {
                        store::set_resource_version(&mut obj, rev);
                    }
                    return Ok((obj, write.is_none()));
                }
                Written::Conflict(None) => return Err(ApiError::not_found(res, name)),
                Written::Conflict(Some(_)) if opts.precondition_rv.is_some() => {
                    return Err(ApiError::conflict(res, name));
                }
                Written::Conflict(Some(_)) | Written::Taken(_) => continue,
            }
        }
        Err(ApiError::conflict(res, name))
    }

    /// The grace period a pod's deletion must wait for, if any: only pods bound to
    /// a node and still running get one (the node agent confirms their end).
    fn pod_needs_grace(pod: &Value, requested: Option<i64>) -> Option<i64> {
        let bound = pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
        let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
        if !bound || phase == "Succeeded" || phase == "Failed" {
            return None;
        }
        let grace = requested
            .or_else(|| pod.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
            .unwrap_or(30);
        (grace > 0).then_some(grace)
    }

    /// deletecollection: deletes every object matching the selectors.
    pub async fn delete_collection(
        &self,
        res: &Resource,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let result = self.list(res, ns, list, Freshness::Latest).await?;
        let mut out = Vec::new();
        for item in result.page.items {
            let obj = item.object()?;
            let item_ns = namespace_of(&obj).map(String::from);
            match self.delete(res, item_ns.as_deref(), name_of(&obj), opts).await {
                Ok(v) => out.push(v),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    // === subresources ===

    /// `pods/binding`: assigns a pod to a node, once.
    pub async fn bind(
        &self,
        ns: Option<&str>,
        pod: &str,
        binding: &Value,
        opts: &WriteOptions,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let res = registry::lookup("pods").ok_or_else(|| ApiError::Internal("no pods".into()))?;
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::invalid(res, pod, vec![FieldError::required("target.name")]))?
            .to_string();
        let uid = binding.pointer("/metadata/uid").and_then(Value::as_str).map(String::from);
        let annotations = binding.pointer("/metadata/annotations").cloned();
        let now = meta::now();
        self.guaranteed_update(res, ns, pod, Target::MainAndStatus, opts, manager, false, |live| {
            let live = live.ok_or_else(|| ApiError::not_found(res, pod))?;
            if let Some(uid) = &uid
                && live.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
            {
                return Err(ApiError::Conflict {
                    group: String::new(),
                    resource: "pods".into(),
                    name: pod.into(),
                    message: "the UID in the binding does not match the pod".into(),
                });
            }
            if let Some(current) = live.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                return Err(ApiError::Conflict {
                    group: String::new(),
                    resource: "pods".into(),
                    name: pod.into(),
                    message: format!("pod {pod} is already assigned to node {current:?}"),
                });
            }
            if live.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::Conflict {
                    group: String::new(),
                    resource: "pods".into(),
                    name: pod.into(),
                    message: format!("pod {pod} is being deleted, cannot be assigned to a host"),
                });
            }
            let mut new = live.clone();
            new["spec"]["nodeName"] = json!(node);
            if let Some(Value::Object(extra)) = &annotations {
                let meta = meta_mut(&mut new);
                let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = ann.as_object_mut() {
                    for (k, v) in extra {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
            // One write: the node and the PodScheduled condition together.
            set_condition(&mut new, "PodScheduled", "True", None, None, &now);
            Ok((new, false))
        })
        .await?;
        Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
    }

    /// The `scale` subresource's view of a Deployment or ReplicaSet.
    pub fn scale_of(obj: &Value) -> Value {
        let selector = obj
            .pointer("/spec/selector")
            .map(|s| {
                selector::LabelSelector::from_label_selector_json(s).map(|l| l.to_query_string()).unwrap_or_default()
            })
            .unwrap_or_default();
        let mut meta = json!({});
        for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            if let Some(v) = obj.pointer(&format!("/metadata/{k}")) {
                meta[k] = v.clone();
            }
        }
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": meta,
            "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1)) },
            "status": {
                "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
                "selector": selector,
            },
        })
    }

    /// PUT or PATCH on `scale`: changes `spec.replicas` only.
    pub async fn update_scale(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        change: ScaleChange<'_>,
        opts: &WriteOptions,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let out = self
            .guaranteed_update(res, ns, name, Target::Main, opts, manager, false, |live| {
                let live = live.ok_or_else(|| ApiError::not_found(res, name))?;
                let scale = Self::scale_of(live);
                let new_scale = match &change {
                    ScaleChange::Replace(v) => (*v).clone(),
                    // A patch pins a version only if it names one (else a lost race
                    // with a status write is retried, not answered with 409).
                    ScaleChange::Patch(kind, body) => without_stale_rv(
                        &scale,
                        match kind {
                            PatchKind::Json => {
                                patch::json_patch(&scale, body).map_err(|e| patch_error(res, name, e))?
                            }
                            _ => {
                                let p: Value = serde_json::from_slice(body)
                                    .map_err(|e| ApiError::BadRequest(format!("the patch is not valid JSON: {e}")))?;
                                patch::merge_patch(&scale, &p)
                            }
                        },
                    ),
                };
                let replicas = new_scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
                if replicas < 0 {
                    return Err(ApiError::Invalid {
                        group: "autoscaling".into(),
                        kind: "Scale".into(),
                        name: name.into(),
                        causes: vec![FieldError::invalid(
                            "spec.replicas",
                            replicas,
                            "must be greater than or equal to 0",
                        )],
                    });
                }
                let mut new = live.clone();
                new["spec"]["replicas"] = json!(replicas);
                if let Some(rv) = new_scale.pointer("/metadata/resourceVersion") {
                    new["metadata"]["resourceVersion"] = rv.clone();
                } else if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                Ok((new, false))
            })
            .await?;
        Ok(Self::scale_of(&out.object))
    }
}

/// The 422 cause for an address or port someone else holds.
fn alloc_clash(key: &str) -> FieldError {
    match key.strip_prefix(alloc::PORT_PREFIX) {
        Some(port) => FieldError::invalid("spec.ports[0].nodePort", port, "provided port is already allocated"),
        None => {
            let ip = key.strip_prefix(alloc::IP_PREFIX).unwrap_or(key);
            FieldError::invalid(
                "spec.clusterIPs",
                format!("[{ip}]"),
                format!("failed to allocate IP {ip}: provided IP is already allocated"),
            )
        }
    }
}

/// Who owns the fields of a new object.
enum Ownership<'a> {
    /// Recorded as an `Update` by this manager.
    Update(&'a str),
    /// Already recorded in the object (by server-side apply).
    Keep,
}

/// A change to the scale subresource.
pub enum ScaleChange<'a> {
    Replace(&'a Value),
    Patch(PatchKind, &'a [u8]),
}

/// A patch must not carry a resourceVersion it did not ask for: patch results
/// start from the live object, so drop the live version unless the patch set one.
fn without_stale_rv(live: &Value, mut patched: Value) -> Value {
    let live_rv = live.pointer("/metadata/resourceVersion");
    if patched.pointer("/metadata/resourceVersion") == live_rv
        && let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.remove("resourceVersion");
    }
    patched
}

/// Sets (or updates) a condition in `obj.status.conditions`, keeping the
/// transition time when the status did not change.
pub fn set_condition(
    obj: &mut Value,
    kind: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
    now: &str,
) {
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    let conds = obj["status"].as_object_mut().map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(list)) = conds else { return };
    let mut cond = json!({ "type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now });
    if let Some(r) = reason {
        cond["reason"] = json!(r);
    }
    if let Some(m) = message {
        cond["message"] = json!(m);
    }
    match list.iter_mut().find(|c| c["type"] == kind) {
        Some(existing) => {
            if existing["status"] == status {
                cond["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = cond;
        }
        None => list.push(cond),
    }
}

fn patch_error(res: &Resource, name: &str, e: patch::PatchError) -> ApiError {
    match e.status_code() {
        422 => ApiError::Invalid {
            group: res.group.into(),
            kind: res.kind.into(),
            name: name.into(),
            causes: vec![FieldError { detail: e.to_string(), ..FieldError::forbidden("patch", "") }],
        },
        413 => ApiError::TooLarge(e.to_string()),
        _ => ApiError::BadRequest(e.to_string()),
    }
}

fn apply_error(res: &Resource, name: &str, e: apply::ApplyError) -> ApiError {
    match &e {
        apply::ApplyError::Conflicts(conflicts) => {
            let causes = conflicts.iter().map(|c| (c.field.clone(), c.cause_message())).collect();
            ApiError::ApplyConflict { message: e.to_string(), causes }
        }
        _ if e.status_code() == 422 => ApiError::Invalid {
            group: res.group.into(),
            kind: res.kind.into(),
            name: name.into(),
            causes: vec![FieldError::invalid("", "", e.to_string())],
        },
        _ if e.status_code() >= 500 => ApiError::Internal(e.to_string()),
        _ => ApiError::BadRequest(e.to_string()),
    }
}
