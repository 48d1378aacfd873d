//! Ingress over TLS (`--ingress-tls-listen`): certificates from the
//! `kubernetes.io/tls` Secrets that Ingresses name in `spec.tls`, chosen per
//! connection by SNI, then the same routing as plain HTTP ([`super::ingress`]).
//!
//! ```text
//!  Ingress spec.tls ─► refs() ─► watch channel ─► refresh(): GET each Secret (on change
//!  (every sync)                                    and every 30 s) ─► Certs ─► SniResolver
//!  client ─TLS─► --ingress-tls-listen ─► rustls (SniResolver picks the key) ─► ingress::handle
//! ```
//!
//! Secrets are fetched one by one because a node may only `get` them (the API server's
//! node authorizer lets a node read a Secret an Ingress's `spec.tls` names, since every
//! node serves Ingress). A certificate is picked by the exact SNI host, then a
//! `*.domain` host of one more label, then a TLS entry without hosts (the default
//! certificate); with none the handshake fails with `unrecognized_name`. A Secret that
//! is missing or does not parse is logged and skipped; the others keep serving.

use super::model::State;
use crate::client::Client;
use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How often Secrets are fetched again (certificates are renewed in place).
const REFRESH: Duration = Duration::from_secs(30);

/// A Secret one Ingress names for TLS, and the hosts it covers (empty: any host).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TlsRef {
    pub namespace: String,
    pub secret: String,
    pub hosts: Vec<String>,
}

/// The TLS entries of the Ingresses of `class` (or without a class, as in
/// [`super::ingress::routes`]), in a stable order.
pub fn refs(state: &State, class: &str) -> Vec<TlsRef> {
    let mut out = Vec::new();
    for ing in state.ingresses.values() {
        if !super::ingress::serves(ing, class) {
            continue;
        }
        let ns = ing.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
        for tls in ing.pointer("/spec/tls").and_then(Value::as_array).into_iter().flatten() {
            let Some(secret) = tls["secretName"].as_str().filter(|s| !s.is_empty()) else { continue };
            let hosts = tls["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|h| !h.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
            out.push(TlsRef { namespace: ns.to_string(), secret: secret.to_string(), hosts });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The certificate chain and key of a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`,
/// PEM, base64 in `data`).
pub fn certified_key(secret: &Value) -> Result<CertifiedKey, String> {
    use base64::Engine;
    let field = |k: &str| -> Result<Vec<u8>, String> {
        let b64 = secret["data"][k].as_str().ok_or_else(|| format!("has no data[{k:?}]"))?;
        base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("data[{k:?}] is not base64: {e}"))
    };
    let crt = field("tls.crt")?;
    let key = field("tls.key")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&crt)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt is not PEM certificates: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| format!("tls.key is not a PEM private key: {e}"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("tls.key is not a key rustls can sign with: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| format!("tls.key does not belong to the certificate in tls.crt: {e}"))?;
    Ok(certified)
}

/// The certificates to serve, by host.
#[derive(Debug, Default, Clone)]
pub struct Certs {
    /// Exact hosts and `*.domain` wildcards, lower case.
    by_host: HashMap<String, Arc<CertifiedKey>>,
    /// From a TLS entry without hosts.
    default: Option<Arc<CertifiedKey>>,
}

impl Certs {
    /// Builds the table from the refs and what their Secrets gave (the first entry
    /// naming a host wins, as refs are sorted: stable across refreshes).
    pub fn new(refs: &[TlsRef], keys: &BTreeMap<(String, String), Arc<CertifiedKey>>) -> Self {
        let mut certs = Certs::default();
        for r in refs {
            let Some(key) = keys.get(&(r.namespace.clone(), r.secret.clone())) else { continue };
            if r.hosts.is_empty() {
                certs.default.get_or_insert_with(|| key.clone());
            }
            for h in &r.hosts {
                certs.by_host.entry(h.clone()).or_insert_with(|| key.clone());
            }
        }
        certs
    }

    /// The certificate for SNI name `sni`.
    pub fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni.map(str::to_ascii_lowercase) {
            if let Some(k) = self.by_host.get(&name) {
                return Some(k.clone());
            }
            if let Some((_, rest)) = name.split_once('.')
                && let Some(k) = self.by_host.get(&format!("*.{rest}"))
            {
                return Some(k.clone());
            }
        }
        self.default.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty() && self.default.is_none()
    }
}

/// rustls' view of [`Certs`], swapped whole on every refresh.
#[derive(Debug, Default)]
pub struct SniResolver {
    certs: RwLock<Certs>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certs.read().pick(hello.server_name())
    }
}

/// The server configuration: certificates from `resolver`, HTTP/2 and HTTP/1.1.
pub fn server_config(resolver: Arc<SniResolver>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // ring's provider supports the default protocol versions; this cannot fail.
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .unwrap_or_else(|_| rustls::ServerConfig::builder());
    let mut config = builder.with_no_client_auth().with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Keeps `resolver` filled from the Secrets `refs` names: on every change of the refs
/// and every [`REFRESH`]. Runs until aborted.
pub async fn refresh(client: Client, mut refs: tokio::sync::watch::Receiver<Vec<TlsRef>>, resolver: Arc<SniResolver>) {
    // What each Secret last failed with, so a broken one is logged once, not every 30 s.
    let mut failures: HashMap<(String, String), String> = HashMap::new();
    loop {
        let wanted = refs.borrow_and_update().clone();
        let mut keys = BTreeMap::new();
        for r in &wanted {
            let id = (r.namespace.clone(), r.secret.clone());
            if keys.contains_key(&id) {
                continue;
            }
            let result = match client.get("secrets", Some(&r.namespace), &r.secret).await {
                Ok(secret) => certified_key(&secret),
                Err(e) => Err(format!("cannot be read: {e}")),
            };
            match result {
                Ok(key) => {
                    failures.remove(&id);
                    keys.insert(id, Arc::new(key));
                }
                Err(why) => {
                    if failures.get(&id) != Some(&why) {
                        tracing::warn!(namespace = %r.namespace, secret = %r.secret, reason = %why,
                            "ingress TLS: skipping this Secret");
                        failures.insert(id, why);
                    }
                }
            }
        }
        *resolver.certs.write() = Certs::new(&wanted, &keys);
        tokio::select! {
            changed = refs.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tls_secret(hosts: &[&str]) -> Value {
        use base64::Engine;
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        json!({"type": "kubernetes.io/tls", "data": {"tls.crt": b64(cert.pem()), "tls.key": b64(key.serialize_pem())}})
    }

    #[test]
    fn secrets_parse_or_say_what_is_wrong() {
        assert!(certified_key(&tls_secret(&["a.example"])).is_ok());
        let err = |v: Value| certified_key(&v).err().unwrap_or_default();
        assert!(err(json!({"data": {}})).contains("tls.crt"));
        assert!(err(json!({"data": {"tls.crt": "%%%", "tls.key": ""}})).contains("not base64"));
        assert!(err(json!({"data": {"tls.crt": "", "tls.key": ""}})).contains("no certificate"));
        // A key from another certificate.
        let mut mixed = tls_secret(&["a.example"]);
        mixed["data"]["tls.key"] = tls_secret(&["b.example"])["data"]["tls.key"].clone();
        assert!(err(mixed).contains("does not belong"));
    }

    #[test]
    fn certificates_are_picked_by_exact_host_then_wildcard_then_default() {
        let key = |h: &str| Arc::new(certified_key(&tls_secret(&[h])).expect("key"));
        let refs = vec![
            TlsRef { namespace: "a".into(), secret: "exact".into(), hosts: vec!["www.example.com".into()] },
            TlsRef { namespace: "a".into(), secret: "wild".into(), hosts: vec!["*.example.com".into()] },
            TlsRef { namespace: "a".into(), secret: "missing".into(), hosts: vec!["gone.other.org".into()] },
        ];
        let mut keys = BTreeMap::new();
        let (exact, wild) = (key("www.example.com"), key("*.example.com"));
        keys.insert(("a".to_string(), "exact".to_string()), exact.clone());
        keys.insert(("a".to_string(), "wild".to_string()), wild.clone());
        let certs = Certs::new(&refs, &keys);
        let same = |a: Option<Arc<CertifiedKey>>, b: &Arc<CertifiedKey>| a.is_some_and(|a| Arc::ptr_eq(&a, b));
        assert!(same(certs.pick(Some("WWW.example.com")), &exact));
        assert!(same(certs.pick(Some("api.example.com")), &wild));
        assert!(certs.pick(Some("a.b.example.com")).is_none(), "a wildcard covers one label");
        assert!(certs.pick(Some("gone.other.org")).is_none(), "its Secret did not load");
        assert!(certs.pick(None).is_none());
        let mut with_default = refs.clone();
        with_default.push(TlsRef { namespace: "a".into(), secret: "exact".into(), hosts: vec![] });
        let certs = Certs::new(&with_default, &keys);
        assert!(same(certs.pick(Some("other.org")), &exact));
        assert!(same(certs.pick(None), &exact));
    }

    #[test]
    fn refs_follow_the_class_and_skip_entries_without_a_secret() {
        let mut state = State::default();
        let ing = |name: &str, class: Option<&str>, tls: Value| {
            let mut v = json!({"metadata": {"name": name, "namespace": "web"}, "spec": {"tls": tls}});
            if let Some(c) = class {
                v["spec"]["ingressClassName"] = json!(c);
            }
            v
        };
        state.ingresses.insert("web/a".into(), ing("a", None, json!([{"hosts": ["A.example"], "secretName": "s1"}])));
        state.ingresses.insert("web/b".into(), ing("b", Some("other"), json!([{"secretName": "s2"}])));
        state
            .ingresses
            .insert("web/c".into(), ing("c", Some("rk"), json!([{"hosts": ["c.example"]}, {"secretName": "s3"}])));
        let got = refs(&state, "rk");
        assert_eq!(
            got,
            vec![
                TlsRef { namespace: "web".into(), secret: "s1".into(), hosts: vec!["a.example".into()] },
                TlsRef { namespace: "web".into(), secret: "s3".into(), hosts: vec![] },
            ]
        );
    }
}
