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
//! - The joining agent trusts the server only if the chain it presents holds a CA whose
//!   hash is the token's (replicas send their CA with their certificate), so the token
//!   is never sent to an impostor.

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
/// What a join token's holder may POST to.
pub const NODE_CERTIFICATE_PATH: &str = "/rk/v1/node-certificate";
/// How long node certificates issued to joiners are valid.
const NODE_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Whether `token` has a bootstrap token's shape: `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn is_bootstrap_token(token: &str) -> bool {
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    token.split_once('.').is_some_and(|(id, secret)| ok(id, 6) && ok(secret, 16))
}

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

/// The Secret a token lives in.
pub fn secret_object(id: &str, secret: &str, ttl: Duration, description: &str) -> Value {
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(ttl.as_secs() as i64))
        .unwrap_or(jiff::Timestamp::MAX);
    json!({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "stringData": {"token-id": id, "token-secret": secret, "expiration": expires.to_string(),
                       "usage-bootstrap-authentication": "true", "description": description}})
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
    Ok(Identity::with_implied_groups(format!("system:bootstrap:{id}"), vec![BOOTSTRAPPERS.to_string()]))
}

/// `POST /rk/v1/node-certificate` with `{"nodeName": N, "csr": PEM}`: a certificate for
/// `system:node:N` in `system:nodes` for the CSR's key, and the CA, as
/// `{"certificate": PEM, "ca": PEM}`. Only join tokens' holders (RBAC grants the path
/// to `system:bootstrappers`) and the cluster's admins may ask.
pub async fn node_certificate(State(server): State<Arc<super::ApiServer>>, req: Request) -> Response {
    match issue(&server, req).await {
        Ok(v) => (http::StatusCode::CREATED, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn issue(server: &super::ApiServer, req: Request) -> Result<Value, ApiError> {
    let ca = server.certificates.first().map(|c| c.ca().clone()).ok_or_else(|| {
        ApiError::BadRequest("this replica runs with --insecure-dev: it has no CA to issue certificates from".into())
    })?;
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
    let leaf = crate::pki::Leaf {
        common_name: format!("system:node:{node}"),
        organizations: vec![super::rbac::NODES.into()],
        client: true,
        validity: NODE_CERT_VALIDITY,
        ..Default::default()
    };
    let cert = ca.sign_request(csr, &leaf).map_err(|e| ApiError::BadRequest(format!("csr: {e}")))?;
    tracing::info!(node, "issued a node certificate to a join token's holder");
    Ok(json!({"certificate": cert, "ca": ca.cert_pem()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_kubernetes_shape() {
        let (id, secret) = new_token();
        assert!(is_bootstrap_token(&format!("{id}.{secret}")));
        for bad in ["", "abcdef", "abcdef.", "ABCDEF.0123456789abcdef", "abcde.0123456789abcdef", "eyJh.b.c"] {
            assert!(!is_bootstrap_token(bad), "{bad}");
        }
        assert!(is_bootstrap_token("abcdef.0123456789abcdef"));
    }

    #[test]
    fn token_secrets_expire_in_the_future() {
        let s = secret_object("abcdef", "0123456789abcdef", Duration::from_secs(600), "test");
        let exp: jiff::Timestamp = s["stringData"]["expiration"].as_str().unwrap().parse().unwrap();
        assert!(exp > jiff::Timestamp::now());
        assert_eq!(s["metadata"]["name"], "bootstrap-token-abcdef");
    }
}
