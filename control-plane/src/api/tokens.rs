//! ServiceAccount tokens: the TokenRequest API (`kubectl create token NAME`, the
//! `serviceaccounts/token` subresource) and bearer-token authentication.
//!
//! A token is a JWT signed with Ed25519 (`alg: EdDSA`) by a key derived from the
//! current secrets key ([`super::encryption::Keyring::sign_token`]), so every replica
//! signs and checks alike with nothing more to distribute, and a key rotation rotates
//! the token key (tokens of a pruned key stop working). Its claims are Kubernetes':
//! `iss`, `sub` (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`, `iat`, `nbf`, `jti`
//! and `kubernetes.io` (namespace, service account name and uid, and the bound object).
//! A token is accepted while it is unexpired, meant for the API server (its audience),
//! its ServiceAccount still exists with the same uid, and the object it is bound to (if
//! any) still exists with the same uid.

use super::error::{ApiError, FieldError};
use super::meta::{format_time, now_secs};
use super::rbac::Identity;
use super::registry;
use super::rest::Api;
use super::store::Freshness;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

/// The issuer, and the audience the API server accepts (kube-apiserver's defaults).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Tokens last this long unless the request says otherwise.
pub const DEFAULT_SECONDS: i64 = 3600;
const MIN_SECONDS: i64 = 600;
const MAX_SECONDS: i64 = 1 << 32;

fn invalid(name: &str, causes: Vec<FieldError>) -> ApiError {
    ApiError::Invalid { group: "authentication.k8s.io".into(), kind: "TokenRequest".into(), name: name.into(), causes }
}

/// Answers a TokenRequest for ServiceAccount `ns/name`: the request with its `status`
/// (`token`, `expirationTimestamp`) filled in.
pub async fn issue(api: &Api, ns: &str, name: &str, request: &Value) -> Result<Value, ApiError> {
    if let Some(kind) = request.get("kind").and_then(Value::as_str).filter(|k| *k != "TokenRequest") {
        return Err(ApiError::BadRequest(format!("expected a TokenRequest, got a {kind}")));
    }
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut causes = Vec::new();
    let seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_SECONDS,
        Some(v) => match v.as_i64() {
            Some(s) if s < MIN_SECONDS => {
                causes.push(FieldError::invalid(
                    "spec.expirationSeconds",
                    s,
                    "may not specify a duration less than 10 minutes",
                ));
                s
            }
            Some(s) if s > MAX_SECONDS => {
                causes.push(FieldError::invalid(
                    "spec.expirationSeconds",
                    s,
                    "may not specify a duration larger than 2^32 seconds",
                ));
                s
            }
            Some(s) => s,
            None => return Err(ApiError::BadRequest("spec.expirationSeconds must be an integer".into())),
        },
    };
    let audiences: Vec<String> = match spec.get("audiences").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect(),
        _ => vec![ISSUER.to_string()],
    };
    for (i, a) in audiences.iter().enumerate() {
        if a.is_empty() {
            causes.push(FieldError::required(format!("spec.audiences[{i}]")));
        }
    }
    if !causes.is_empty() {
        return Err(invalid(name, causes));
    }
    let accounts = registry::lookup("serviceaccounts").ok_or(ApiError::NoSuchResource)?;
    let account = api.get(accounts, Some(ns), name, Freshness::Latest).await?.object()?;
    let account_uid = account.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();

    let mut private = json!({"namespace": ns, "serviceaccount": {"name": name, "uid": account_uid}});
    let bound = spec.get("boundObjectRef").filter(|b| b.is_object());
    if let Some(b) = bound {
        let kind = b.get("kind").and_then(Value::as_str).unwrap_or("");
        let claim = match kind {
            "Pod" => "pod",
            "Secret" => "secret",
            other => {
                return Err(invalid(
                    name,
                    vec![FieldError::not_supported("spec.boundObjectRef.kind", other, &["Pod", "Secret"])],
                ));
            }
        };
        let obj_name = b.get("name").and_then(Value::as_str).unwrap_or("");
        let res = registry::lookup(claim).ok_or(ApiError::NoSuchResource)?;
        let obj = api.get(res, Some(ns), obj_name, Freshness::Latest).await?.object()?;
        let uid = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
        if let Some(want) = b.get("uid").and_then(Value::as_str).filter(|u| !u.is_empty() && *u != uid) {
            return Err(ApiError::Conflict {
                group: String::new(),
                resource: res.plural.into(),
                name: obj_name.into(),
                message: format!("the UID in the bound object reference ({want}) does not match the UID in record"),
            });
        }
        private[claim] = json!({"name": obj_name, "uid": uid});
    }

    let now = now_secs();
    let exp = now + seconds;
    let claims = json!({
        "iss": ISSUER,
        "sub": format!("system:serviceaccount:{ns}:{name}"),
        "aud": audiences,
        "exp": exp,
        "iat": now,
        "nbf": now,
        "jti": super::meta::new_uid(),
        "kubernetes.io": private,
    });
    let token = sign(&api.store.encryption.keyring(), &claims)?;
    let mut out = request.clone();
    if !out.is_object() {
        out = json!({});
    }
    out["apiVersion"] = json!("authentication.k8s.io/v1");
    out["kind"] = json!("TokenRequest");
    out["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": format_time(now)});
    out["spec"] = spec;
    out["spec"]["audiences"] = json!(claims["aud"]);
    out["spec"]["expirationSeconds"] = json!(seconds);
    out["status"] = json!({"token": token, "expirationTimestamp": format_time(exp)});
    Ok(out)
}

fn sign(ring: &super::encryption::Keyring, claims: &Value) -> Result<String, ApiError> {
    let cannot = || ApiError::Internal("cannot sign the token".into());
    let header = json!({"alg": "EdDSA", "kid": ring.write_key(), "typ": "JWT"});
    let head = B64URL.encode(header.to_string());
    let body = B64URL.encode(claims.to_string());
    let signed = format!("{head}.{body}");
    let (_, sig) = ring.sign_token(signed.as_bytes()).ok_or_else(cannot)?;
    Ok(format!("{signed}.{}", B64URL.encode(sig)))
}

/// Why a token was refused (logged, never sent: the caller only hears `Unauthorized`).
fn refuse(why: &str) -> ApiError {
    tracing::info!(reason = why, "refused a bearer token");
    ApiError::Unauthorized
}

/// The claims of a token whose signature, issuer, audience and lifetime check out.
fn verified_claims(ring: &super::encryption::Keyring, token: &str, now: i64) -> Result<Value, ApiError> {
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(refuse("not a JWT"));
    };
    let decode = |s: &str| B64URL.decode(s).map_err(|_| refuse("not base64url"));
    let header: Value = serde_json::from_slice(&decode(head)?).map_err(|_| refuse("header is not JSON"))?;
    if header["alg"] != "EdDSA" {
        return Err(refuse("not an EdDSA token"));
    }
    let kid = header["kid"].as_str().unwrap_or("");
    let signed_len = head.len() + 1 + body.len();
    if !ring.verify_token(kid, &token.as_bytes()[..signed_len], &decode(sig)?) {
        return Err(refuse("bad signature, or signed with a key no longer in the key file"));
    }
    let claims: Value = serde_json::from_slice(&decode(body)?).map_err(|_| refuse("claims are not JSON"))?;
    if claims["iss"] != ISSUER {
        return Err(refuse("another issuer"));
    }
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !audiences.contains(&ISSUER) {
        return Err(refuse("not meant for the API server"));
    }
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let nbf = claims["nbf"].as_i64().unwrap_or(0);
    // A minute of leeway for clocks of different replicas, as Kubernetes allows.
    if now >= exp + 60 || now + 60 < nbf {
        return Err(refuse("expired or not yet valid"));
    }
    Ok(claims)
}

/// Tokens whose signature and claims were checked recently, by their SHA-256, so a
/// client that sends the same token with every request pays for the signature check
/// once. What can change is still checked on every use: the signing key must still be
/// in the key file, the token unexpired, and its account (and bound object) present.
/// Those objects are read on every use too; what they say (uid, being deleted) is
/// remembered per revision, so an unchanged account is not decoded again.
#[derive(Default)]
pub struct TokenCache {
    verified: parking_lot::Mutex<std::collections::HashMap<[u8; 32], Verified>>,
    objects: parking_lot::Mutex<std::collections::HashMap<bytes::Bytes, ObjectState>>,
}

/// What a token's account or bound object was at one revision.
#[derive(Clone)]
struct ObjectState {
    rev: i64,
    uid: std::sync::Arc<str>,
    deleting: bool,
}

#[derive(Clone)]
struct Verified {
    kid: String,
    exp: i64,
    claims: std::sync::Arc<Value>,
}

/// At most this many tokens are remembered; the cache starts over when full.
const CACHED_TOKENS: usize = 4096;

impl TokenCache {
    fn claims(
        &self,
        ring: &super::encryption::Keyring,
        token: &str,
        now: i64,
    ) -> Result<std::sync::Arc<Value>, ApiError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let hit = self.verified.lock().get(&digest).cloned();
        if let Some(v) = hit {
            if now >= v.exp + 60 {
                return Err(refuse("expired"));
            }
            if ring.names().contains(&v.kid.as_str()) {
                return Ok(v.claims);
            }
            return Err(refuse("signed with a key no longer in the key file"));
        }
        let claims = std::sync::Arc::new(verified_claims(ring, token, now)?);
        let kid = token
            .split('.')
            .next()
            .and_then(|h| B64URL.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .and_then(|h| h["kid"].as_str().map(String::from))
            .unwrap_or_default();
        let exp = claims["exp"].as_i64().unwrap_or(0);
        let mut cache = self.verified.lock();
        if cache.len() >= CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(digest, Verified { kid, exp, claims: claims.clone() });
        Ok(claims)
    }

    /// The uid of stored object `s`, and whether it is being deleted.
    fn object_state(&self, s: &super::store::Stored) -> Result<ObjectState, ApiError> {
        if let Some(known) = self.objects.lock().get(&s.key).filter(|o| o.rev == s.rev) {
            return Ok(known.clone());
        }
        #[derive(serde::Deserialize)]
        struct Object {
            metadata: Meta,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            #[serde(default)]
            uid: String,
            #[serde(rename = "deletionTimestamp")]
            deletion_timestamp: Option<serde::de::IgnoredAny>,
        }
        let o: Object = serde_json::from_slice(&s.raw).map_err(|e| {
            ApiError::Internal(format!("stored object at {} is not JSON: {e}", String::from_utf8_lossy(&s.key)))
        })?;
        let state =
            ObjectState { rev: s.rev, uid: o.metadata.uid.into(), deleting: o.metadata.deletion_timestamp.is_some() };
        let mut objects = self.objects.lock();
        if objects.len() >= CACHED_TOKENS {
            objects.clear();
        }
        objects.insert(s.key.clone(), state.clone());
        Ok(state)
    }
}

/// The identity a bearer token proves, or `Unauthorized`.
pub async fn authenticate(api: &Api, token: &str) -> Result<Identity, ApiError> {
    let claims = api.tokens.claims(&api.store.encryption.keyring(), token, now_secs())?;
    let private = &claims["kubernetes.io"];
    let ns = private["namespace"].as_str().unwrap_or("");
    let account = private["serviceaccount"]["name"].as_str().unwrap_or("");
    let account_uid = private["serviceaccount"]["uid"].as_str().unwrap_or("");
    if claims["sub"].as_str() != Some(format!("system:serviceaccount:{ns}:{account}").as_str()) {
        return Err(refuse("subject and service account disagree"));
    }
    // The account, and the object the token is bound to, must still be the same ones.
    let still_there = |plural: &'static str, name: String, uid: String| async move {
        let res = registry::lookup(plural).ok_or(ApiError::NoSuchResource)?;
        match api.get(res, Some(ns), &name, Freshness::Any).await {
            Ok(s) => {
                let state = api.tokens.object_state(&s)?;
                if *state.uid == *uid && !state.deleting {
                    Ok(())
                } else {
                    Err(refuse("its object was replaced or is being deleted"))
                }
            }
            Err(ApiError::NotFound { .. }) => Err(refuse("its object is gone")),
            Err(e) => Err(e),
        }
    };
    still_there("serviceaccounts", account.to_string(), account_uid.to_string()).await?;
    for (claim, plural) in [("pod", "pods"), ("secret", "secrets")] {
        if let Some(b) = private.get(claim).filter(|b| b.is_object()) {
            let name = b["name"].as_str().unwrap_or("").to_string();
            still_there(plural, name, b["uid"].as_str().unwrap_or("").to_string()).await?;
        }
    }
    let user = format!("system:serviceaccount:{ns}:{account}");
    Ok(Identity {
        user,
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::encryption::Keyring;

    fn claims(exp: i64) -> Value {
        json!({"iss": ISSUER, "sub": "system:serviceaccount:ns:bot", "aud": [ISSUER], "exp": exp, "nbf": 0,
               "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "bot", "uid": "u1"}}})
    }

    #[test]
    fn signed_tokens_verify_until_they_expire() {
        let ring = Keyring::ephemeral();
        let token = sign(&ring, &claims(1_000)).unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(verified_claims(&ring, &token, 900).unwrap()["sub"], "system:serviceaccount:ns:bot");
        assert!(verified_claims(&ring, &token, 1_000).is_ok(), "a minute of leeway");
        assert!(matches!(verified_claims(&ring, &token, 1_061), Err(ApiError::Unauthorized)));
    }

    #[test]
    fn remembered_tokens_still_expire_and_die_with_their_key() {
        let cache = TokenCache::default();
        let ring = Keyring::ephemeral();
        let token = sign(&ring, &claims(1_000)).unwrap();
        assert!(cache.claims(&ring, &token, 0).is_ok());
        assert!(cache.claims(&ring, &token, 900).is_ok(), "from the cache");
        assert!(cache.claims(&ring, &token, 1_061).is_err(), "expired, though remembered");
        assert!(cache.claims(&Keyring::ephemeral(), &token, 0).is_err(), "its key is gone");
        assert!(cache.claims(&ring, "garbage", 0).is_err());
    }

    #[test]
    fn forged_tampered_or_foreign_tokens_are_refused() {
        let ring = Keyring::ephemeral();
        let token = sign(&ring, &claims(i64::MAX / 2)).unwrap();
        // Another key file signed it.
        let foreign = sign(&Keyring::ephemeral(), &claims(i64::MAX / 2)).unwrap();
        assert!(verified_claims(&ring, &foreign, 0).is_err());
        // Claims changed after signing (another account).
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(i64::MAX / 2);
        c["sub"] = json!("system:serviceaccount:kube-system:admin");
        let forged = format!("{}.{}.{}", parts[0], B64URL.encode(c.to_string()), parts[2]);
        assert!(verified_claims(&ring, &forged, 0).is_err());
        // An unsigned token.
        let none = format!("{}.{}.", B64URL.encode(r#"{"alg":"none"}"#), parts[1]);
        assert!(verified_claims(&ring, &none, 0).is_err());
        // Another audience.
        let mut c = claims(i64::MAX / 2);
        c["aud"] = json!(["vault"]);
        assert!(verified_claims(&ring, &sign(&ring, &c).unwrap(), 0).is_err());
        for junk in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(verified_claims(&ring, junk, 0).is_err(), "{junk}");
        }
    }
}
