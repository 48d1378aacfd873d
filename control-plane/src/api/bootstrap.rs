//! Join tokens: how a new node gets its credentials without anyone copying a secret by
//! hand (Kubernetes' bootstrap tokens and TLS bootstrapping, in one step).
//!
//! - `rk-server token create` ([`create`]) stores a Secret `kube-system/bootstrap-token-<id>`
//!   of type `bootstrap.kubernetes.io/token` (token id, secret, expiration) and prints
//!   the join token: `rk1:<sha256 of the CA certificate>:<id>.<secret>`.
//! - A request bearing `<id>.<secret>` ([`authenticate`]) acts as
//!   `system:bootstrap:<id>` in `system:bootstrappers` until the token expires or its
//!   Secret is deleted; RBAC lets that group do one thing: [`node_certificate`].
//! - `POST /rk/v1/node-certificate` ([`node_certificate`]) takes a certificate signing
//!   request and a node name, and answers a client certificate for
//!   `system:node:<name>` in `system:nodes`, signed by the cluster CA, with the CA.
//!   A node renews its certificate the same way, authenticated by the one it holds (it
//!   may only ask for its own name).
//! - A replica token (`rk-server token create --replica`) also carries the group
//!   `system:bootstrappers:rk:replicas` (Kubernetes' `auth-extra-groups`), which may
//!   `POST /rk/v1/replica-credentials` ([`replica_credentials`]): the cluster CA (with its
//!   key) and the secrets encryption keys, which a new replica needs to serve as every
//!   member does (`rk-server --join ADDR --join-token TOKEN`).
//! - The joiner trusts the server only if the chain it presents holds a CA whose hash is
//!   the token's (replicas send their CA with their certificate), so the token is never
//!   sent to an impostor ([`rk_proto::join`]).

use super::error::ApiError;
use super::rbac::Identity;
use super::registry;
use super::rest::Api;
use super::store::Freshness;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The group join tokens authenticate as.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";
/// The extra group of replica tokens.
pub const REPLICAS: &str = "system:bootstrappers:rk:replicas";
/// What a join token's holder (and a node renewing its certificate) may POST to.
pub const NODE_CERTIFICATE_PATH: &str = "/rk/v1/node-certificate";
/// What a replica token's holder may POST to.
pub const REPLICA_CREDENTIALS_PATH: &str = "/rk/v1/replica-credentials";
/// How long node certificates are valid when this replica has no certificates of its
/// own to take the lifetime from.
const NODE_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

pub use rk_proto::join::is_bootstrap_token;

/// A new random token `(id, secret)`.
pub fn new_token() -> (String, String) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let pick = |n: usize| (0..n).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
    (pick(6), pick(16))
}

/// The join token a node is given: the CA's hash pins the server, `<id>.<secret>` is
/// the bearer token.
pub fn join_token(ca_pem: &str, id: &str, secret: &str) -> Result<String, crate::pki::PkiError> {
    Ok(format!("rk1:{}:{id}.{secret}", crate::pki::ca_hash(ca_pem)?))
}

/// The Secret a token lives in; `extra_groups` (each `system:bootstrappers:…`) are
/// groups its holder is in besides `system:bootstrappers`.
pub fn secret_object(id: &str, secret: &str, ttl: Duration, description: &str, extra_groups: &[&str]) -> Value {
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(ttl.as_secs() as i64))
        .unwrap_or(jiff::Timestamp::MAX);
    let mut obj = json!({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "stringData": {"token-id": id, "token-secret": secret, "expiration": expires.to_string(),
                       "usage-bootstrap-authentication": "true", "description": description}});
    if !extra_groups.is_empty() {
        obj["stringData"]["auth-extra-groups"] = extra_groups.join(",").into();
    }
    obj
}

fn refuse(why: &str) -> ApiError {
    tracing::info!(reason = why, "refused a join token");
    ApiError::Unauthorized
}

/// Who a join token `<id>.<secret>` proves its bearer is, if its Secret exists, matches
/// and has not expired.
pub async fn authenticate(api: &Api, token: &str) -> Result<Identity, ApiError> {
    let (id, secret) = token.split_once('.').ok_or_else(|| refuse("not a join token"))?;
    let res = registry::lookup("secrets").ok_or(ApiError::NoSuchResource)?;
    let stored = match api.get(res, Some("kube-system"), &format!("bootstrap-token-{id}"), Freshness::Any).await {
        Ok(s) => s.object()?,
        Err(ApiError::NotFound { .. }) => return Err(refuse("no such token")),
        Err(e) => return Err(e),
    };
    let field = |k: &str| {
        let b64 = stored.pointer(&format!("/data/{k}")).and_then(Value::as_str).unwrap_or("");
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    };
    if stored["type"] != "bootstrap.kubernetes.io/token" || field("token-id") != id {
        return Err(refuse("not a bootstrap token Secret"));
    }
    // Compared in constant time: the secret is what the token proves.
    let want = field("token-secret");
    let same =
        want.len() == secret.len() && want.bytes().zip(secret.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same || field("usage-bootstrap-authentication") != "true" {
        return Err(refuse("wrong secret, or not for authentication"));
    }
    let expiration = field("expiration");
    if !expiration.is_empty() {
        let expired = expiration.parse::<jiff::Timestamp>().map(|t| t <= jiff::Timestamp::now()).unwrap_or(true);
        if expired {
            return Err(refuse("expired"));
        }
    }
    // Kubernetes' rule: extra groups must be in the bootstrappers' namespace, so a token
    // cannot make its holder an admin.
    let mut groups = vec![BOOTSTRAPPERS.to_string()];
    for g in field("auth-extra-groups").split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if !g.starts_with("system:bootstrappers:") {
            return Err(refuse("an extra group outside system:bootstrappers:"));
        }
        groups.push(g.to_string());
    }
    Ok(Identity::with_implied_groups(format!("system:bootstrap:{id}"), groups))
}

/// `POST /rk/v1/node-certificate` with `{"nodeName": N, "csr": PEM}`: a certificate for
/// `system:node:N` in `system:nodes` for the CSR's key, and the CA, as
/// `{"certificate": PEM, "ca": PEM}`. Only join tokens' holders (RBAC grants the path
/// to `system:bootstrappers`), nodes renewing their own certificate and the cluster's
/// admins may ask.
pub async fn node_certificate(State(server): State<Arc<super::ApiServer>>, req: Request) -> Response {
    match issue(&server, req).await {
        Ok(v) => (http::StatusCode::CREATED, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn issue(server: &super::ApiServer, req: Request) -> Result<Value, ApiError> {
    let ca = ca_of(server)?;
    let caller = req.extensions().get::<Identity>().cloned();
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::TooLarge("a certificate request is at most 64 KiB".into()))?;
    let body: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let node = body["nodeName"].as_str().unwrap_or("");
    let mut errs = Vec::new();
    if node.is_empty() {
        errs.push(super::error::FieldError::required("nodeName"));
    } else {
        for e in super::meta::dns1123_subdomain(node) {
            errs.push(super::error::FieldError::invalid("nodeName", node, &e));
        }
    }
    let csr = body["csr"].as_str().unwrap_or("");
    if csr.is_empty() {
        errs.push(super::error::FieldError::required("csr"));
    }
    if !errs.is_empty() {
        return Err(ApiError::Invalid {
            group: String::new(),
            kind: "NodeCertificate".into(),
            name: node.into(),
            causes: errs,
        });
    }
    // A node renewing its certificate gets one for its own name only.
    if let Some(own) = caller.as_ref().and_then(super::nodeauth::node_of)
        && own != node
    {
        return Err(ApiError::Forbidden(format!(
            "node '{own}' may only renew its own certificate, not node '{node}''s"
        )));
    }
    // Node certificates live as long as the replicas' own (`--cert-validity`).
    let validity = server.certificates.first().map_or(NODE_CERT_VALIDITY, |c| c.validity());
    let leaf = crate::pki::Leaf {
        common_name: format!("system:node:{node}"),
        organizations: vec![super::rbac::NODES.into()],
        client: true,
        validity,
        ..Default::default()
    };
    let cert = ca.sign_request(csr, &leaf).map_err(|e| ApiError::BadRequest(format!("csr: {e}")))?;
    let by = caller.map_or_else(|| "?".to_string(), |c| c.user);
    tracing::info!(node, by, "issued a node certificate");
    Ok(json!({"certificate": cert, "ca": ca.cert_pem()}))
}

fn ca_of(server: &super::ApiServer) -> Result<Arc<crate::pki::Ca>, ApiError> {
    server.certificates.first().map(|c| c.ca().clone()).ok_or_else(|| {
        ApiError::BadRequest("this replica runs with --insecure-dev: it has no CA to issue certificates from".into())
    })
}

/// `POST /rk/v1/replica-credentials`: what a new replica needs besides its data, as
/// `{"ca": PEM, "caKey": PEM, "encryptionKeys": key file text}`: the cluster CA, with
/// which it issues its own certificates, and the secrets keys, without which it could
/// not read a Secret. Only replica tokens' holders (RBAC grants the path to
/// `system:bootstrappers:rk:replicas`) and the cluster's admins may ask. The answer is
/// never logged (the audit log records requests' metadata only).
pub async fn replica_credentials(State(server): State<Arc<super::ApiServer>>, req: Request) -> Response {
    let by = req.extensions().get::<Identity>().map_or_else(|| "?".to_string(), |c| c.user.clone());
    let answer = || {
        let ca = ca_of(&server)?;
        let encryption = &server.api.store.encryption;
        let path = encryption.path().ok_or_else(|| {
            ApiError::BadRequest("this replica keeps its secrets keys in memory only: it has no key file".into())
        })?;
        let keys = std::fs::read_to_string(path)
            .map_err(|e| ApiError::Internal(format!("cannot read the secrets key file {}: {e}", path.display())))?;
        tracing::warn!(by, "gave the cluster CA and the secrets keys to a joining replica");
        Ok::<_, ApiError>(json!({"ca": ca.cert_pem(), "caKey": ca.key_pem(), "encryptionKeys": keys}))
    };
    match answer() {
        Ok(v) => (http::StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_have_kubernetes_shape() {
        let (id, secret) = new_token();
        assert!(is_bootstrap_token(&format!("{id}.{secret}")));
    }

    #[test]
    fn token_secrets_expire_in_the_future() {
        let s = secret_object("abcdef", "0123456789abcdef", Duration::from_secs(600), "test", &[]);
        let exp: jiff::Timestamp = s["stringData"]["expiration"].as_str().unwrap().parse().unwrap();
        assert!(exp > jiff::Timestamp::now());
        assert_eq!(s["metadata"]["name"], "bootstrap-token-abcdef");
        assert!(s["stringData"].get("auth-extra-groups").is_none());
        let replica = secret_object("abcdef", "0123456789abcdef", Duration::from_secs(600), "r", &[REPLICAS]);
        assert_eq!(replica["stringData"]["auth-extra-groups"], REPLICAS);
    }
}
