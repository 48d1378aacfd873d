//! RBAC: who may do what, from the Roles, ClusterRoles and their bindings in the store —
//! Kubernetes' RBAC authorizer (`plugin/pkg/auth/authorizer/rbac`), its request-info
//! parsing (`apiserver/pkg/endpoints/request`) and its bootstrap policy (the default
//! roles every cluster has: `cluster-admin`, `admin`, `edit`, `view` and the `system:`
//! roles every authenticated user gets).
//!
//! Every request is authorized as the user it proves it is ([`caller`]):
//! - a client certificate the cluster CA signed (its common name the user, its
//!   organizations the groups), checked in the TLS handshake (`tls.rs`, `pki.rs`);
//! - else a bearer token: a ServiceAccount token (`tokens.rs`) or a node's join token
//!   (`bootstrap.rs`);
//! - a request that **impersonates** someone (`kubectl --as jane --as-group dev`, the
//!   `Impersonate-User` and `Impersonate-Group` headers) needs RBAC's `impersonate`, and
//!   is then authorized as that user ([`layer`]);
//! - a request with no credentials gets 401 on a TLS connection unless its path is public
//!   (`/livez`, `/readyz`, `/healthz`, `/version`); on an `--insecure-dev` one it may do
//!   anything, and impersonate anyone.
//!
//! Nodes are held to their own objects by `nodeauth.rs` before RBAC; each client's share of
//! watches and requests in flight is kept by `limits.rs`. Access reviews (`kubectl auth
//! can-i [--as …]`, SubjectAccessReview) are answered from the same rules (`review.rs`).
//!
//! Start at [`Policy::authorize`].

use super::error::ApiError;
use super::rest::Api;
use super::store::Freshness;
use crate::tls::Conn;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Members of this group may do anything (Kubernetes' privileged group).
pub const MASTERS: &str = "system:masters";
/// The group node agents' certificates are in.
pub const NODES: &str = "system:nodes";
const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const ANONYMOUS: &str = "system:anonymous";
const SA_PREFIX: &str = "system:serviceaccount:";

/// A user and their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// The identity a request impersonates, if it does: `Impersonate-User` plus every
    /// `Impersonate-Group`, with the groups Kubernetes adds (`system:authenticated`; a
    /// service account's `system:serviceaccounts` and `system:serviceaccounts:<ns>`).
    pub fn impersonated(headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        let text = |v: &http::HeaderValue| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::BadRequest("impersonation headers must be text".into()))
        };
        let groups: Vec<String> = headers.get_all("impersonate-group").iter().map(text).collect::<Result<_, _>>()?;
        let Some(user) = headers.get("impersonate-user").map(text).transpose()? else {
            if !groups.is_empty() {
                return Err(ApiError::BadRequest(
                    "requested impersonation of groups without a user: add Impersonate-User (kubectl --as)".into(),
                ));
            }
            return Ok(None);
        };
        if user.is_empty() {
            return Err(ApiError::BadRequest("Impersonate-User is empty".into()));
        }
        Ok(Some(Identity::with_implied_groups(user, groups)))
    }

    pub(crate) fn with_implied_groups(user: String, mut groups: Vec<String>) -> Identity {
        let mut add = |g: String| {
            if !groups.contains(&g) {
                groups.push(g);
            }
        };
        if let Some(ns) = user.strip_prefix(SA_PREFIX).and_then(|rest| rest.split_once(':')).map(|(ns, _)| ns) {
            add("system:serviceaccounts".into());
            add(format!("system:serviceaccounts:{ns}"));
        }
        if user == ANONYMOUS {
            add(UNAUTHENTICATED.into());
        } else {
            add(AUTHENTICATED.into());
        }
        Identity { user, groups }
    }
}

/// What a request asks to do (Kubernetes' authorizer.Attributes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    /// For resource requests.
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// For requests to anything else (`/version`, `/apis`, `/healthz`): the path.
    pub path: Option<String>,
}

impl Attributes {
    /// The attributes of an HTTP request, as Kubernetes' RequestInfoFactory reads them.
    pub fn of_request(method: &Method, path: &str, query: &str) -> Attributes {
        let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let non_resource = || Attributes {
            verb: method.as_str().to_ascii_lowercase(),
            path: Some(path.to_string()),
            ..Default::default()
        };
        let (group, mut rest): (&str, &[&str]) = match segs.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (group, rest),
            _ => return non_resource(),
        };
        if rest.is_empty() {
            return non_resource();
        }
        let mut watch = false;
        if rest[0] == "watch" {
            watch = true;
            rest = &rest[1..];
        }
        let mut a = Attributes { api_group: group.to_string(), ..Default::default() };
        if rest.len() >= 2 && rest[0] == "namespaces" {
            a.namespace = rest[1].to_string();
            // `/namespaces/x` (and its `status` and `finalize`) is namespace x itself;
            // `/namespaces/x/pods` is in it.
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        a.resource = rest.first().map(|s| s.to_string()).unwrap_or_default();
        if let Some(name) = rest.get(1) {
            a.name = name.to_string();
        }
        if let Some(sub) = rest.get(2) {
            a.subresource = sub.to_string();
        }
        let named = !a.name.is_empty();
        watch = watch || query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
        a.verb = super::audit::verb_of(method, named, watch).to_string();
        a
    }

    /// Attributes from an access review's `spec.resourceAttributes` or
    /// `spec.nonResourceAttributes`.
    pub fn of_review(spec: &Value) -> Attributes {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        if let Some(non) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
            return Attributes { verb: s(non, "verb"), path: Some(s(non, "path")), ..Default::default() };
        }
        let r = &spec["resourceAttributes"];
        Attributes {
            verb: s(r, "verb"),
            api_group: s(r, "group"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            namespace: s(r, "namespace"),
            name: s(r, "name"),
            path: None,
        }
    }

    /// Kubernetes' Forbidden message for these attributes.
    pub fn forbidden(&self, user: &str) -> ApiError {
        let Some(path) = &self.path else {
            let resource = if self.subresource.is_empty() {
                self.resource.clone()
            } else {
                format!("{}/{}", self.resource, self.subresource)
            };
            // The object is named by its resource; the subresource only in the detail.
            let qualified = if self.api_group.is_empty() {
                self.resource.clone()
            } else {
                format!("{}.{}", self.resource, self.api_group)
            };
            let object = if self.name.is_empty() { qualified } else { format!("{} \"{}\"", qualified, self.name) };
            let scope = if self.namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace \"{}\"", self.namespace)
            };
            return ApiError::Forbidden(format!(
                "{object} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
                self.verb, self.api_group
            ));
        };
        ApiError::Forbidden(format!("forbidden: User \"{user}\" cannot {} path \"{path}\"", self.verb))
    }

    /// [`Attributes::forbidden`] with the reason an authorizer gave (Kubernetes appends
    /// it after a colon).
    pub fn forbidden_because(&self, user: &str, why: &str) -> ApiError {
        match self.forbidden(user) {
            ApiError::Forbidden(message) => ApiError::Forbidden(format!("{message}: {why}")),
            other => other,
        }
    }
}

/// The outcome of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Which binding allowed it (empty when denied, as in Kubernetes).
    pub reason: String,
}

struct Binding {
    /// `RoleBinding "ns/x"` or `ClusterRoleBinding "x"`, for reasons.
    describe: String,
    /// The binding's namespace; empty for a ClusterRoleBinding.
    namespace: String,
    role: RoleRef,
    subjects: Vec<Subject>,
}

/// The RBAC objects of the cluster at one moment.
#[derive(Default)]
pub struct Policy {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    bindings: Vec<Binding>,
}

/// A rule granted to an identity in some scope, with where it came from.
pub struct Grant<'a> {
    pub rule: &'a PolicyRule,
    pub reason: String,
}

/// The last [`Policy`] read, with the state of the RBAC objects it was read from, so
/// requests read and decode the RBAC objects only after they change.
#[derive(Default)]
pub struct PolicyCache {
    last: parking_lot::Mutex<Option<(Fingerprint, std::sync::Arc<Policy>)>>,
}

/// How many RBAC objects there are, and the newest revision among them.
type Fingerprint = (usize, i64);

/// The state of the RBAC objects in this replica's store: how many, and the newest
/// revision among them. Any create or update raises the revision; a delete lowers the count.
fn fingerprint(api: &Api) -> Fingerprint {
    let range =
        crate::store::mvcc::KeyRange::prefix(bytes::Bytes::from_static(b"/registry/rbac.authorization.k8s.io/"));
    let view = api.store.raft.shared.sm.read().mvcc.clone();
    match view.scan(&range, 0) {
        Ok(scan) => scan.fold((0, 0), |(n, max), (_, _, rev)| (n + 1, max.max(rev))),
        // Unreadable: a fingerprint no state has, so nothing is served from the cache.
        Err(_) => (usize::MAX, -1),
    }
}

impl Policy {
    /// The RBAC objects this replica has (Kubernetes' authorizer reads from a cache too),
    /// read again only when they changed.
    pub async fn load(api: &Api) -> Result<std::sync::Arc<Policy>, ApiError> {
        let fp = fingerprint(api);
        if let Some((seen, policy)) = api.rbac.last.lock().as_ref()
            && *seen == fp
        {
            return Ok(policy.clone());
        }
        let policy = std::sync::Arc::new(Self::read(api).await?);
        if fp.0 != usize::MAX {
            *api.rbac.last.lock() = Some((fp, policy.clone()));
        }
        Ok(policy)
    }

    async fn read(api: &Api) -> Result<Policy, ApiError> {
        let mut policy = Policy::default();
        let objects = |plural: &'static str| async move {
            let res = super::registry::by_plural("rbac.authorization.k8s.io", "v1", plural)
                .ok_or_else(|| ApiError::Internal(format!("{plural} are not registered")))?;
            let listed = api.list(res, None, &Default::default(), Freshness::Any).await?;
            listed.page.items.iter().map(|s| s.object()).collect::<Result<Vec<Value>, ApiError>>()
        };
        for v in objects("roles").await? {
            let r: Role = typed(v)?;
            let key = (r.metadata.namespace.unwrap_or_default(), r.metadata.name.unwrap_or_default());
            policy.roles.insert(key, r.rules.unwrap_or_default());
        }
        for v in objects("clusterroles").await? {
            let r: ClusterRole = typed(v)?;
            policy.cluster_roles.insert(r.metadata.name.unwrap_or_default(), r.rules.unwrap_or_default());
        }
        for v in objects("clusterrolebindings").await? {
            let b: ClusterRoleBinding = typed(v)?;
            policy.bindings.push(Binding {
                describe: format!("ClusterRoleBinding \"{}\"", b.metadata.name.unwrap_or_default()),
                namespace: String::new(),
                role: b.role_ref,
                subjects: b.subjects.unwrap_or_default(),
            });
        }
        for v in objects("rolebindings").await? {
            let b: RoleBinding = typed(v)?;
            let ns = b.metadata.namespace.unwrap_or_default();
            policy.bindings.push(Binding {
                describe: format!("RoleBinding \"{ns}/{}\"", b.metadata.name.unwrap_or_default()),
                namespace: ns,
                role: b.role_ref,
                subjects: b.subjects.unwrap_or_default(),
            });
        }
        Ok(policy)
    }

    /// The bindings that apply to `id` in `namespace` (cluster-wide ones included; with an
    /// empty namespace, only those), each with the subject that names `id` and its rules.
    fn matching<'a>(
        &'a self,
        id: &'a Identity,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a Binding, &'a Subject, &'a [PolicyRule])> + 'a {
        self.bindings.iter().filter_map(move |b| {
            if !b.namespace.is_empty() && b.namespace != namespace {
                return None;
            }
            let subject = b.subjects.iter().find(|s| applies_to(s, id, &b.namespace))?;
            let rules = match b.role.kind.as_str() {
                "ClusterRole" => self.cluster_roles.get(&b.role.name),
                "Role" if !b.namespace.is_empty() => self.roles.get(&(b.namespace.clone(), b.role.name.clone())),
                _ => None,
            }?;
            Some((b, subject, rules.as_slice()))
        })
    }

    fn reason(b: &Binding, subject: &Subject) -> String {
        format!(
            "RBAC: allowed by {} of {} \"{}\" to {} \"{}\"",
            b.describe, b.role.kind, b.role.name, subject.kind, subject.name
        )
    }

    /// Every rule `id` holds in `namespace` (cluster-wide ones included; with an empty
    /// namespace, only the cluster-wide ones).
    pub fn grants<'a>(&'a self, id: &'a Identity, namespace: &'a str) -> Vec<Grant<'a>> {
        self.matching(id, namespace)
            .flat_map(|(b, subject, rules)| {
                rules.iter().map(move |rule| Grant { rule, reason: Self::reason(b, subject) })
            })
            .collect()
    }

    /// Whether `id` may do `attrs`.
    pub fn authorize(&self, id: &Identity, attrs: &Attributes) -> Decision {
        if id.groups.iter().any(|g| g == MASTERS) {
            return Decision { allowed: true, reason: format!("RBAC: allowed by membership of group \"{MASTERS}\"") };
        }
        let allowing =
            self.matching(id, &attrs.namespace).find(|(_, _, rules)| rules.iter().any(|r| rule_allows(r, attrs)));
        match allowing {
            Some((b, subject, _)) => Decision { allowed: true, reason: Self::reason(b, subject) },
            None => Decision { allowed: false, reason: String::new() },
        }
    }
}

/// appliesTo: does `subject` of a binding in `namespace` name `id`?
fn applies_to(subject: &Subject, id: &Identity, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => subject.name == id.user,
        "Group" => id.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = subject.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
            !ns.is_empty()
                && id.user.strip_prefix(SA_PREFIX).and_then(|r| r.split_once(':')) == Some((ns, &subject.name))
        }
        _ => false,
    }
}

fn has(list: &Option<Vec<String>>, want: &str) -> bool {
    list.iter().flatten().any(|v| v == want)
}

/// RuleAllows: verbs, then groups, resources and names, or non-resource URLs.
pub fn rule_allows(rule: &PolicyRule, a: &Attributes) -> bool {
    if !rule.verbs.iter().any(|v| v == "*" || *v == a.verb) {
        return false;
    }
    if let Some(path) = &a.path {
        return rule
            .non_resource_urls
            .iter()
            .flatten()
            .any(|u| u == "*" || u == path || u.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix)));
    }
    if !(has(&rule.api_groups, "*") || has(&rule.api_groups, &a.api_group)) {
        return false;
    }
    let combined =
        if a.subresource.is_empty() { a.resource.clone() } else { format!("{}/{}", a.resource, a.subresource) };
    let resource_ok = rule.resources.iter().flatten().any(|r| {
        r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && r.strip_prefix("*/").is_some_and(|sub| sub == a.subresource))
    });
    if !resource_ok {
        return false;
    }
    let names = rule.resource_names.as_deref().unwrap_or_default();
    names.is_empty() || names.contains(&a.name)
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The connection a request came on (its client certificate's identity, whether TLS).
pub fn conn_of(req: &Request) -> Option<Conn> {
    req.extensions().get::<ConnectInfo<Conn>>().map(|c| c.0.clone())
}

/// Paths anyone may read without credentials (Kubernetes' `system:public-info-viewer`,
/// and etcd's health check).
const PUBLIC_PATHS: &[&str] = &["/livez", "/readyz", "/healthz", "/version", "/version/", "/health"];

/// Whether `path` is one anyone may read without credentials.
pub fn is_public(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path) || path.starts_with("/livez/") || path.starts_with("/readyz/")
}

/// Who a request acts as: the user its client certificate names (verified in the TLS
/// handshake), else the ServiceAccount its bearer token proves (a bad token is
/// `Unauthorized`); or whom it impersonates, if the caller may (an authenticated caller
/// needs RBAC's `impersonate` on those users, groups or service accounts). `None` for a
/// request without credentials: refused on a TLS connection unless its path is public,
/// allowed everything on an `--insecure-dev` one (where a caller without credentials may
/// also impersonate anyone).
pub async fn caller(
    api: &Api,
    headers: &HeaderMap,
    conn: Option<&Conn>,
    path: &str,
) -> Result<Option<Identity>, ApiError> {
    // Client certificates first, then tokens: kube-apiserver's order.
    let authenticated = match (conn.and_then(|c| c.identity.as_ref()), bearer(headers)) {
        (Some(cert), _) => Some(cert.clone()),
        (None, Some(token)) if super::bootstrap::is_bootstrap_token(token) => {
            Some(super::bootstrap::authenticate(api, token).await?)
        }
        (None, Some(token)) => Some(super::tokens::authenticate(api, token).await?),
        (None, None) => None,
    };
    if authenticated.is_none() && conn.is_some_and(|c| c.tls) && !is_public(path) {
        tracing::debug!(path, "refused a request without credentials");
        return Err(ApiError::Unauthorized);
    }
    let Some(target) = Identity::impersonated(headers)? else { return Ok(authenticated) };
    let Some(who) = authenticated else { return Ok(Some(target)) };
    let policy = Policy::load(api).await?;
    let mut asks = Vec::new();
    match target.user.strip_prefix(SA_PREFIX).and_then(|rest| rest.split_once(':')) {
        Some((ns, name)) => asks.push(("serviceaccounts", ns.to_string(), name.to_string())),
        None => asks.push(("users", String::new(), target.user.clone())),
    }
    for g in headers.get_all("impersonate-group").iter().filter_map(|v| v.to_str().ok()) {
        asks.push(("groups", String::new(), g.to_string()));
    }
    for (resource, namespace, name) in asks {
        let attrs =
            Attributes { verb: "impersonate".into(), resource: resource.into(), namespace, name, ..Default::default() };
        if !policy.authorize(&who, &attrs).allowed {
            return Err(attrs.forbidden(&who.user));
        }
    }
    Ok(Some(target))
}

/// The middleware: a request with credentials or impersonation is served only if RBAC
/// allows the user it acts as to make it. That user rides on the answer's extensions for
/// the audit log.
pub async fn layer(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    let conn = conn_of(&req);
    let attrs = Attributes::of_request(req.method(), req.uri().path(), req.uri().query().unwrap_or(""));
    let id = match caller(&api, req.headers(), conn.as_ref(), req.uri().path()).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            let client = conn.map_or_else(|| "anonymous".to_string(), |c| c.addr.ip().to_string());
            return limited(&api, &client, &attrs, next.run(req)).await;
        }
        Err(e) => return e.into_response(),
    };
    let policy = match Policy::load(&api).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // Nodes are held to their own objects first (Node authorizer, NodeRestriction).
    if let Some(node) = super::nodeauth::node_of(&id) {
        match super::nodeauth::decide(&api, node, &attrs).await {
            Ok(None) => {}
            Ok(Some(why)) => return attrs.forbidden_because(&id.user, &why).into_response(),
            Err(e) => return e.into_response(),
        }
        if super::nodeauth::inspects_body(&attrs) {
            let (parts, body) = req.into_parts();
            let limit = super::http::MAX_BODY;
            let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
                return ApiError::TooLarge(format!("Request entity too large: limit is {limit}")).into_response();
            };
            let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let admitted = match super::body::decode(content_type, &bytes) {
                Ok(value) => super::nodeauth::admit_body(&api, node, &attrs, &value).await,
                Err(e) => Err(e),
            };
            match admitted {
                Ok(None) => {}
                Ok(Some(why)) => return attrs.forbidden_because(&id.user, &why).into_response(),
                Err(e) => return e.into_response(),
            }
            req = Request::from_parts(parts, axum::body::Body::from(bytes));
        }
    }
    let mut resp = if policy.authorize(&id, &attrs).allowed {
        // Handlers that answer differently per caller (certificates) read it here.
        req.extensions_mut().insert(id.clone());
        limited(&api, &id.user, &attrs, next.run(req)).await
    } else {
        attrs.forbidden(&id.user).into_response()
    };
    resp.extensions_mut().insert(id);
    resp
}

/// Serves `run` within `client`'s share (`limits`): a watch holds its slot for as long
/// as its stream is open, any other request while it is answered.
async fn limited(
    api: &Api,
    client: &str,
    attrs: &Attributes,
    run: impl std::future::Future<Output = Response>,
) -> Response {
    use super::limits::Kind;
    let kind = if attrs.verb == "watch" { Kind::Watch } else { Kind::Request };
    let slot = match api.limits.acquire(client, kind) {
        Ok(slot) => slot,
        Err(e) => return e.into_response(),
    };
    let resp = run.await;
    if kind == Kind::Request {
        return resp;
    }
    use futures::StreamExt;
    resp.map(|body| {
        axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _held = &slot;
            chunk
        }))
    })
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Internal(format!("a stored RBAC object does not decode: {e}")))
}

// === the bootstrap policy ===

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

/// What `view` may read: everything namespaced but Secrets and RBAC (Kubernetes'
/// bootstrap `view`, for the kinds rk serves and those it may serve).
fn view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(READ, &["autoscaling"], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        rule(READ, &["batch"], &["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
        rule(READ, &["policy"], &["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(READ, &["networking.k8s.io"], &["ingresses", "ingresses/status", "networkpolicies"]),
        rule(READ, &["coordination.k8s.io"], &["leases"]),
    ]
}

/// What `edit` may also change (and read Secrets).
fn edit_rules() -> Vec<Value> {
    let mut rules = view_rules();
    rules.extend([
        rule(&["impersonate"], &[""], &["serviceaccounts"]),
        rule(WRITE, &[""], &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
        rule(&["create"], &[""], &["pods/eviction", "serviceaccounts/token"]),
        rule(
            WRITE,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        // Read on the escalating resources: exec and port-forward arrive as WebSocket
        // GETs, authorized as `get`.
        rule(READ, &[""], &["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"]),
        rule(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
        rule(WRITE, &["networking.k8s.io"], &["ingresses", "networkpolicies"]),
        rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
        rule(WRITE, &["discovery.k8s.io"], &["endpointslices"]),
        rule(WRITE, &["coordination.k8s.io"], &["leases"]),
    ]);
    rules
}

/// What `admin` may also do: grant access within a namespace.
fn admin_rules() -> Vec<Value> {
    let mut rules = edit_rules();
    rules.extend([
        rule(&["create"], &["authorization.k8s.io"], &["localsubjectaccessreviews"]),
        rule(&[READ, WRITE].concat(), &["rbac.authorization.k8s.io"], &["rolebindings", "roles"]),
    ]);
    rules
}

/// What a node agent does (Kubernetes' bootstrap `system:node` role, for what rk
/// serves): register and update its Node and Lease, read what its pods need, report pod
/// status and events.
fn node_rules() -> Vec<Value> {
    vec![
        rule(&[READ, &["create", "delete", "patch", "update"]].concat(), &[""], &["nodes"]),
        rule(&["patch", "update"], &[""], &["nodes/status"]),
        rule(&[READ, &["create", "delete"]].concat(), &[""], &["pods"]),
        rule(&["patch", "update"], &[""], &["pods/status"]),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(
            READ,
            &[""],
            &["configmaps", "secrets", "services", "endpoints", "persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["get"], &[""], &["serviceaccounts"]),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(&[READ, &["create", "patch", "update"]].concat(), &["", "events.k8s.io"], &["events"]),
        rule(&[READ, &["create", "delete", "patch", "update"]].concat(), &["coordination.k8s.io"], &["leases"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(READ, &["networking.k8s.io"], &["ingresses", "ingressclasses"]),
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(&["create"], &["authorization.k8s.io"], &["subjectaccessreviews", "localsubjectaccessreviews"]),
        // Renewing its own certificate (the handler holds a node to its own name).
        url_rule(&["post"], &[super::bootstrap::NODE_CERTIFICATE_PATH]),
    ]
}

/// The default ClusterRoles and ClusterRoleBindings (Kubernetes' bootstrap policy).
pub fn bootstrap_objects() -> Vec<Value> {
    let meta = |name: &str| {
        json!({"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
               "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
    };
    let role = |name: &str, rules: Vec<Value>| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name), "rules": rules});
    let binding = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
            .collect();
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(name),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": subjects})
    };
    let everything = vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])];
    let reviews = vec![
        rule(&["create"], &["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
        rule(&["create"], &["authentication.k8s.io"], &["selfsubjectreviews"]),
    ];
    let public = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    let discovery = [&["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*"][..], &public[..]].concat();
    vec![
        role("cluster-admin", everything),
        role("admin", admin_rules()),
        role("edit", edit_rules()),
        role("view", view_rules()),
        role("system:basic-user", reviews),
        role("system:discovery", vec![url_rule(&["get"], &discovery)]),
        role("system:public-info-viewer", vec![url_rule(&["get"], &public)]),
        role("system:node", node_rules()),
        role("system:node-bootstrapper", vec![url_rule(&["post"], &[super::bootstrap::NODE_CERTIFICATE_PATH])]),
        role("rk:replica-bootstrapper", vec![url_rule(&["post"], &[super::bootstrap::REPLICA_CREDENTIALS_PATH])]),
        binding("cluster-admin", &[MASTERS]),
        // Kubernetes leaves `system:node` unbound and restricts nodes with its Node
        // authorizer; until rk has one, nodes get the role through their group.
        binding("system:node", &[NODES]),
        binding("system:node-bootstrapper", &[super::bootstrap::BOOTSTRAPPERS]),
        binding("rk:replica-bootstrapper", &[super::bootstrap::REPLICAS]),
        binding("system:basic-user", &[AUTHENTICATED]),
        binding("system:discovery", &[AUTHENTICATED]),
        binding("system:public-info-viewer", &[AUTHENTICATED, UNAUTHENTICATED]),
    ]
}

/// Creates the bootstrap policy objects that do not exist, and, as kube-apiserver does
/// at start, adds to existing ones what this version's policy has and they lack (rules of
/// ClusterRoles, subjects of ClusterRoleBindings), unless their
/// `rbac.authorization.kubernetes.io/autoupdate` annotation is `false`. Nothing is taken
/// away, so what an admin added stays; a cluster upgraded to a version whose roles grant
/// more gets it.
pub async fn bootstrap(api: &Api) -> Result<(), ApiError> {
    for obj in bootstrap_objects() {
        let kind = obj["kind"].as_str().unwrap_or_default();
        let Some(res) = super::registry::by_kind("rbac.authorization.k8s.io/v1", kind) else { continue };
        match api.create(res, None, obj.clone(), &Default::default(), "rk-server").await {
            Ok(_) => {}
            Err(ApiError::AlreadyExists { .. }) => {
                let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                let current = api.get(res, None, name, Freshness::Latest).await?.object()?;
                if let Some(updated) = reconciled(&current, &obj) {
                    tracing::info!(kind, name, "added this version's bootstrap policy to an existing object");
                    let outcome = api
                        .update(res, None, name, updated, super::rest::Target::Main, &Default::default(), "rk-server")
                        .await;
                    match outcome {
                        // Someone else changed it meanwhile: the next start reconciles it.
                        Ok(_) | Err(ApiError::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `current` with what `wanted` (the bootstrap version) has and it lacks, if anything,
/// and if its annotation lets it be updated.
fn reconciled(current: &Value, wanted: &Value) -> Option<Value> {
    let annotation = current.pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate");
    if annotation.and_then(Value::as_str) == Some("false") {
        return None;
    }
    // Compared as the typed objects, so how a rule was written down does not matter.
    fn typed_eq<T: serde::de::DeserializeOwned + PartialEq>(a: &Value, b: &Value) -> bool {
        match (serde_json::from_value::<T>(a.clone()), serde_json::from_value::<T>(b.clone())) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        }
    }
    let (field, same): (&str, fn(&Value, &Value) -> bool) = match wanted["kind"].as_str() {
        Some("ClusterRole") => ("rules", typed_eq::<PolicyRule>),
        Some("ClusterRoleBinding") => ("subjects", typed_eq::<Subject>),
        _ => return None,
    };
    let have = current[field].as_array().cloned().unwrap_or_default();
    let missing: Vec<Value> =
        wanted[field].as_array().into_iter().flatten().filter(|w| !have.iter().any(|h| same(h, w))).cloned().collect();
    if missing.is_empty() {
        return None;
    }
    let mut updated = current.clone();
    updated[field] = Value::Array(have.into_iter().chain(missing).collect());
    Some(updated)
}

/// The bootstrap policy plus ClusterRole `view` bound to `user` in `namespace` (for tests).
#[cfg(test)]
pub fn tests_policy_with_view_for(user: &str, namespace: &str) -> Policy {
    let mut objects = bootstrap_objects();
    objects.push(json!({"kind": "RoleBinding", "metadata": {"name": "view", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}]}));
    tests::policy(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_policy_adds_what_existing_objects_lack_and_keeps_the_rest() {
        let objects = bootstrap_objects();
        let node = objects.iter().find(|o| o["metadata"]["name"] == "system:node" && o["kind"] == "ClusterRole");
        let wanted = node.unwrap().clone();
        assert_eq!(reconciled(&wanted, &wanted), None, "nothing missing");
        // An older version's role, with a rule an admin added.
        let mut older = wanted.clone();
        let extra = json!({"apiGroups": ["x.io"], "resources": ["things"], "verbs": ["get"]});
        older["rules"] = json!([wanted["rules"][0].clone(), extra.clone()]);
        let updated = reconciled(&older, &wanted).unwrap();
        let rules = updated["rules"].as_array().unwrap();
        assert!(rules.contains(&extra), "the admin's rule stays");
        for r in wanted["rules"].as_array().unwrap() {
            assert!(rules.contains(r), "{r} added");
        }
        older["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = json!("false");
        assert_eq!(reconciled(&older, &wanted), None, "autoupdate=false is left alone");
    }

    fn id(user: &str, groups: &[&str]) -> Identity {
        Identity::with_implied_groups(user.into(), groups.iter().map(|g| g.to_string()).collect())
    }

    fn attrs(method: Method, path: &str) -> Attributes {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Attributes::of_request(&method, path, query)
    }

    pub(super) fn policy(objects: Vec<Value>) -> Policy {
        let mut p = Policy::default();
        for o in objects {
            let ns = o.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
            let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
            match o["kind"].as_str().unwrap_or("") {
                "ClusterRole" | "Role" => {
                    let rules: Vec<PolicyRule> = serde_json::from_value(o["rules"].clone()).unwrap();
                    if o["kind"] == "Role" {
                        p.roles.insert((ns, name), rules);
                    } else {
                        p.cluster_roles.insert(name, rules);
                    }
                }
                _ => p.bindings.push(Binding {
                    describe: format!("{} \"{name}\"", o["kind"].as_str().unwrap_or("")),
                    namespace: ns,
                    role: serde_json::from_value(o["roleRef"].clone()).unwrap(),
                    subjects: serde_json::from_value(o["subjects"].clone()).unwrap(),
                }),
            }
        }
        p
    }

    #[tokio::test]
    async fn the_policy_is_read_again_only_after_rbac_objects_change() {
        let api = crate::testing::api().await;
        bootstrap(&api).await.unwrap();
        let first = Policy::load(&api).await.unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &Policy::load(&api).await.unwrap()), "served from the cache");
        let jane = id("jane", &[]);
        let list_pods = attrs(Method::GET, "/api/v1/namespaces/default/pods");
        assert!(!first.authorize(&jane, &list_pods).allowed);
        let res = super::super::registry::by_kind("rbac.authorization.k8s.io/v1", "RoleBinding").unwrap();
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "jane-view", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"}]});
        api.create(res, Some("default"), binding, &Default::default(), "test").await.unwrap();
        let second = Policy::load(&api).await.unwrap();
        assert!(second.authorize(&jane, &list_pods).allowed, "a new binding is seen at once");
        api.delete(res, Some("default"), "jane-view", &Default::default()).await.unwrap();
        assert!(!Policy::load(&api).await.unwrap().authorize(&jane, &list_pods).allowed, "and its deletion");
    }

    #[test]
    fn requests_are_read_as_kubernetes_reads_them() {
        let a = attrs(Method::GET, "/api/v1/namespaces/default/pods");
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str(), a.name.as_str()),
            ("list", "pods", "default", "")
        );
        let a = attrs(Method::GET, "/api/v1/namespaces/default/pods?watch=true");
        assert_eq!(a.verb, "watch");
        let a = attrs(Method::GET, "/api/v1/watch/namespaces/default/pods");
        assert_eq!((a.verb.as_str(), a.resource.as_str()), ("watch", "pods"));
        let a = attrs(Method::POST, "/api/v1/namespaces/default/pods/web/exec");
        assert_eq!((a.verb.as_str(), a.name.as_str(), a.subresource.as_str()), ("create", "web", "exec"));
        let a = attrs(Method::PATCH, "/apis/apps/v1/namespaces/ns/deployments/web/scale");
        assert_eq!(
            (a.api_group.as_str(), a.resource.as_str(), a.subresource.as_str()),
            ("apps", "deployments", "scale")
        );
        let a = attrs(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("get", "namespaces", "kube-system", "kube-system")
        );
        let a = attrs(Method::PUT, "/api/v1/namespaces/kube-system/finalize");
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.name.as_str(), a.subresource.as_str()),
            ("update", "namespaces", "kube-system", "finalize")
        );
        let a = attrs(Method::DELETE, "/api/v1/namespaces/ns/configmaps");
        assert_eq!(a.verb, "deletecollection");
        let a = attrs(Method::GET, "/api/v1/nodes");
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("list", ""));
        let a = attrs(Method::GET, "/apis/apps/v1");
        assert_eq!((a.verb.as_str(), a.path.as_deref()), ("get", Some("/apis/apps/v1")));
        assert_eq!(attrs(Method::GET, "/version").path.as_deref(), Some("/version"));
    }

    #[test]
    fn impersonation_headers_make_an_identity() {
        let mut h = HeaderMap::new();
        assert_eq!(Identity::impersonated(&h).unwrap(), None);
        h.append("impersonate-group", "dev".parse().unwrap());
        assert!(Identity::impersonated(&h).is_err(), "groups without a user");
        h.insert("impersonate-user", "system:serviceaccount:ns:bot".parse().unwrap());
        let id = Identity::impersonated(&h).unwrap().unwrap();
        assert_eq!(
            id.groups,
            vec!["dev", "system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"]
        );
    }

    #[test]
    fn the_default_roles_say_what_kubernetes_says() {
        let p = policy(bootstrap_objects());
        let jane = id("jane", &[]);
        let root = id("root", &[MASTERS]);
        let ask = |who: &Identity, m: Method, path: &str| p.authorize(who, &attrs(m, path)).allowed;
        assert!(ask(&root, Method::DELETE, "/api/v1/nodes/n1"));
        // Any authenticated user may discover the API and review itself, nothing more.
        assert!(ask(&jane, Method::GET, "/apis/apps/v1"));
        assert!(ask(&jane, Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"));
        assert!(!ask(&jane, Method::GET, "/api/v1/namespaces/default/pods"));
        assert!(!ask(&jane, Method::GET, "/metrics"));
        let decision = p.authorize(&root, &attrs(Method::GET, "/metrics"));
        assert!(decision.allowed && decision.reason.contains("system:masters"), "{decision:?}");
    }

    #[test]
    fn bindings_grant_their_roles_in_their_scope() {
        let mut objects = bootstrap_objects();
        objects.push(json!({"kind": "RoleBinding", "metadata": {"name": "jane-view", "namespace": "dev"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"}]}));
        objects.push(json!({"kind": "Role", "metadata": {"name": "one-secret", "namespace": "dev"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["db"]}]}));
        objects.push(json!({"kind": "RoleBinding", "metadata": {"name": "bot-secret", "namespace": "dev"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "one-secret"},
            "subjects": [{"kind": "ServiceAccount", "apiGroup": "", "name": "bot"}]}));
        objects.push(json!({"kind": "ClusterRoleBinding", "metadata": {"name": "ops-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ops"}]}));
        let p = policy(objects);
        let ask = |who: &Identity, m: Method, path: &str| p.authorize(who, &attrs(m, path)).allowed;
        let jane = id("jane", &[]);
        assert!(ask(&jane, Method::GET, "/api/v1/namespaces/dev/pods"));
        assert!(ask(&jane, Method::GET, "/api/v1/namespaces/dev/pods/web/log"));
        assert!(!ask(&jane, Method::GET, "/api/v1/namespaces/prod/pods"), "only in the binding's namespace");
        assert!(!ask(&jane, Method::POST, "/api/v1/namespaces/dev/pods"), "view cannot create");
        assert!(!ask(&jane, Method::GET, "/api/v1/namespaces/dev/secrets"), "view cannot read secrets");
        assert!(!ask(&jane, Method::POST, "/api/v1/namespaces/dev/pods/web/exec"), "nor exec");
        let decision = p.authorize(&jane, &attrs(Method::GET, "/api/v1/namespaces/dev/pods"));
        assert_eq!(
            decision.reason,
            "RBAC: allowed by RoleBinding \"jane-view\" of ClusterRole \"view\" to User \"jane\""
        );

        let bot = id("system:serviceaccount:dev:bot", &[]);
        assert!(ask(&bot, Method::GET, "/api/v1/namespaces/dev/secrets/db"));
        assert!(!ask(&bot, Method::GET, "/api/v1/namespaces/dev/secrets/other"), "resourceNames");
        assert!(!ask(&bot, Method::GET, "/api/v1/namespaces/dev/secrets"), "a list has no name");
        assert!(!ask(&id("system:serviceaccount:prod:bot", &[]), Method::GET, "/api/v1/namespaces/dev/secrets/db"));

        let ops = id("sam", &["ops"]);
        assert!(ask(&ops, Method::POST, "/apis/apps/v1/namespaces/any/deployments"));
        assert!(ask(&ops, Method::PATCH, "/apis/apps/v1/namespaces/any/deployments/web/scale"));
        assert!(!ask(&ops, Method::POST, "/apis/rbac.authorization.k8s.io/v1/namespaces/any/roles"));
        assert!(!ask(&ops, Method::GET, "/api/v1/nodes"), "nodes are not namespaced: edit does not reach them");
        // exec and port-forward come as WebSocket GETs (verb get) or POSTs (create).
        for sub in ["exec", "portforward"] {
            let path = format!("/api/v1/namespaces/any/pods/web/{sub}");
            assert!(ask(&ops, Method::GET, &path) && ask(&ops, Method::POST, &path), "{sub}");
            assert!(!ask(&jane, Method::GET, &path.replace("any", "dev")), "view cannot {sub}");
        }
    }

    #[test]
    fn rules_match_subresources_wildcards_and_url_prefixes() {
        let r: PolicyRule =
            serde_json::from_value(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/status"]})).unwrap();
        let mut a = Attributes {
            verb: "get".into(),
            resource: "pods".into(),
            subresource: "status".into(),
            ..Default::default()
        };
        assert!(rule_allows(&r, &a));
        a.subresource = "log".into();
        assert!(!rule_allows(&r, &a));
        let r: PolicyRule = serde_json::from_value(json!({"verbs": ["*"], "nonResourceURLs": ["/apis/*"]})).unwrap();
        let path = |p: &str| Attributes { verb: "get".into(), path: Some(p.into()), ..Default::default() };
        assert!(rule_allows(&r, &path("/apis/apps/v1")));
        assert!(!rule_allows(&r, &path("/api/v1")));
    }

    #[test]
    fn forbidden_messages_are_kubernetes_own() {
        let a = attrs(Method::GET, "/api/v1/namespaces/default/pods");
        assert_eq!(
            a.forbidden("jane").to_string(),
            "pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let a = attrs(Method::POST, "/apis/apps/v1/namespaces/default/deployments/web/scale");
        assert!(a.forbidden("jane").to_string().starts_with(
            "deployments.apps \"web\" is forbidden: User \"jane\" cannot create resource \"deployments/scale\" in API group \"apps\""
        ), "{}", a.forbidden("jane"));
        assert_eq!(
            attrs(Method::GET, "/api/v1/nodes").forbidden("jane").to_string(),
            "nodes is forbidden: User \"jane\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
        assert_eq!(
            attrs(Method::GET, "/metrics").forbidden("jane").to_string(),
            "forbidden: User \"jane\" cannot get path \"/metrics\""
        );
    }
}
