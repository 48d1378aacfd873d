//! The agent's credentials from a kubeconfig (`rk-agent --kubeconfig FILE`, as the
//! kubelet's flag): the current context's server, the CA to verify it with, and a
//! client certificate or bearer token. `rk-server certs kubeconfig --user
//! system:node:<name> --group system:nodes` writes one.

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a kubeconfig gives the agent.
#[derive(Clone)]
pub struct Credentials {
    /// The current context's server URL.
    pub server: String,
    /// TLS settings: the CA to trust and the client certificate to present.
    pub tls: Arc<rustls::ClientConfig>,
    /// A bearer token, if the user has one instead of (or besides) a certificate.
    pub token: Option<String>,
    /// The client certificate `tls` presents, if any; renewing it replaces it here.
    pub cert: Option<Arc<ClientCert>>,
    /// The cluster CA (PEM): the agent's own port takes clients it signed.
    pub ca_pem: Vec<u8>,
}

/// The client certificate a TLS configuration presents, asked for at every handshake so
/// a renewed one is used from the next connection on, without a restart.
pub struct ClientCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: parking_lot::RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert").finish_non_exhaustive()
    }
}

impl ClientCert {
    fn new(provider: Arc<rustls::crypto::CryptoProvider>, cert: &[u8], key: &[u8]) -> Result<ClientCert, String> {
        let current = parking_lot::RwLock::new(Arc::new(certified_key(&provider, cert, key)?));
        Ok(ClientCert { provider, current })
    }

    /// Presents `cert` (PEM chain) with `key` (PEM) from the next handshake on.
    pub fn replace(&self, cert: &[u8], key: &[u8]) -> Result<(), String> {
        *self.current.write() = Arc::new(certified_key(&self.provider, cert, key)?);
        Ok(())
    }

    /// The certificate presented now (DER), first of its chain.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.current.read().cert.first().cloned()
    }
}

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A certificate chain and its key (both PEM), as rustls signs with them.
fn certified_key(provider: &rustls::crypto::CryptoProvider, cert: &[u8], key: &[u8]) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    if chain.is_empty() {
        return Err("the client certificate holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("the client key does not parse: {e}"))?;
    let signing = provider.key_provider.load_private_key(key).map_err(|e| format!("the client key: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| format!("the client key is not the certificate's: {e}"))?;
    Ok(certified)
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("server", &self.server).finish_non_exhaustive()
    }
}

/// Why a kubeconfig cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("kubeconfig {path}: {detail}")]
pub struct KubeconfigError {
    pub path: PathBuf,
    pub detail: String,
}

/// Reads the kubeconfig at `path`.
pub fn load(path: &Path) -> Result<Credentials, KubeconfigError> {
    let fail = |detail: String| KubeconfigError { path: path.to_path_buf(), detail };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let doc: Value = serde_norway::from_str(&text).map_err(|e| fail(format!("not YAML: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&doc, base).map_err(fail)
}

/// The entry called `name` in the list `doc[list]` (`clusters`, `users`, `contexts`).
fn named<'a>(doc: &'a Value, list: &str, name: &str) -> Result<&'a Value, String> {
    doc[list]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"].as_str() == Some(name)))
        .ok_or_else(|| format!("{list} has no entry named {name:?}"))
}

/// `<field>-data` (base64) or `<field>` (a file, relative to the kubeconfig's folder).
fn data_or_file(obj: &Value, field: &str, base: &Path) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine as _;
    if let Some(b64) = obj[format!("{field}-data")].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("{field}-data is not base64: {e}"))?;
        return Ok(Some(bytes));
    }
    match obj[field].as_str() {
        Some(file) => {
            let p = base.join(file);
            std::fs::read(&p).map(Some).map_err(|e| format!("cannot read {field} {}: {e}", p.display()))
        }
        None => Ok(None),
    }
}

fn parse(doc: &Value, base: &Path) -> Result<Credentials, String> {
    let context_name = doc["current-context"].as_str().ok_or("it has no current-context")?;
    let context = &named(doc, "contexts", context_name)?["context"];
    let cluster =
        &named(doc, "clusters", context["cluster"].as_str().ok_or("the context names no cluster")?)?["cluster"];
    let user = &named(doc, "users", context["user"].as_str().ok_or("the context names no user")?)?["user"];
    let server = cluster["server"].as_str().ok_or("the cluster has no server")?.trim_end_matches('/').to_string();
    let ca = data_or_file(cluster, "certificate-authority", base)?
        .ok_or("the cluster has no certificate-authority(-data): the agent verifies the API server")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.map_err(|e| format!("the CA does not parse: {e}"))?).map_err(|e| format!("the CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the certificate authority holds no certificate".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let cert = data_or_file(user, "client-certificate", base)?;
    let key = data_or_file(user, "client-key", base)?;
    // No ALPN here: the HTTP client sets it for the protocols it speaks.
    let (tls, client_cert) = match (cert, key) {
        (Some(cert), Some(key)) => {
            let client_cert = Arc::new(ClientCert::new(provider, &cert, &key)?);
            (builder.with_client_cert_resolver(client_cert.clone()), Some(client_cert))
        }
        (None, None) => (builder.with_no_client_auth(), None),
        _ => return Err("the user has a client certificate without its key, or a key without its certificate".into()),
    };
    let token = match (user["token"].as_str(), user["tokenFile"].as_str()) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(file)) => Some(
            std::fs::read_to_string(base.join(file))
                .map_err(|e| format!("cannot read tokenFile {file}: {e}"))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    Ok(Credentials { server, tls: Arc::new(tls), token, cert: client_cert, ca_pem: ca })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_kubeconfigs_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(&p, "apiVersion: v1\nkind: Config\n").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("current-context"));
        std::fs::write(
            &p,
            "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  \
             cluster: {server: 'https://x:1'}\nusers:\n- name: u\n  user: {}\n",
        )
        .unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("certificate-authority"));
        assert!(load(&dir.path().join("missing")).unwrap_err().to_string().contains("cannot read"));
    }
}
