//! `rk-agent --join TOKEN`: a new node gets its own credentials from a join token
//! (`rk-server token create`), with nothing copied by hand.
//!
//! The token is `rk1:<sha256 of the cluster CA>:<id>.<secret>`. The agent connects to
//! the server trusting only a chain that holds a CA with that hash (replicas send their
//! CA with their certificate), so the token's secret never goes to an impostor; it
//! sends a certificate signing request for `system:node:<name>` with the token as its
//! bearer token, and gets back a certificate the CA signed. The CA, the certificate and
//! the key it made are kept as `<data-dir>/kubeconfig` (0600); a restarted agent uses
//! that file and needs the token no more.

use crate::client::{Client, ClientError};
use crate::kubeconfig::{self, Credentials};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the join token is not one `rk-server token create` makes (rk1:<CA hash>:<id>.<secret>)")]
    BadToken,
    #[error("cannot get the node's certificate from the API server: {0}")]
    Api(#[from] ClientError),
    #[error("the API server's answer lacks {0}")]
    Answer(&'static str),
    #[error("cannot make the node's key: {0}")]
    Key(#[from] rcgen::Error),
    #[error(transparent)]
    Kubeconfig(#[from] kubeconfig::KubeconfigError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// The node's credentials: from `<data-dir>/kubeconfig` when an earlier join wrote it,
/// else by joining through `servers` with `token`.
pub async fn credentials(token: &str, servers: &str, node: &str, data_dir: &Path) -> Result<Credentials, JoinError> {
    let path = data_dir.join("kubeconfig");
    if path.exists() {
        return Ok(kubeconfig::load(&path)?);
    }
    let (hash, bearer) = parse(token).ok_or(JoinError::BadToken)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pinned = PinnedCa { hash: hash.to_string(), provider: provider.clone() };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| JoinError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(pinned))
        .with_no_client_auth();
    let server = crate::client::parse_servers(servers).into_iter().next().unwrap_or_default();
    let joining = Credentials { server: server.clone(), tls: Arc::new(tls), token: Some(bearer.to_string()) };
    let client = Client::new(servers, &format!("rk-agent/{} (join)", env!("CARGO_PKG_VERSION")), Some(&joining))?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("system:node:{node}"));
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
    let csr = params.serialize_request(&key)?.pem()?;
    let answer = client.post("/rk/v1/node-certificate", &json!({"nodeName": node, "csr": csr})).await?;
    let cert = answer["certificate"].as_str().ok_or(JoinError::Answer("a certificate"))?;
    let ca = answer["ca"].as_str().ok_or(JoinError::Answer("the CA"))?;
    write_kubeconfig(&path, &server, ca, cert, &key.serialize_pem())?;
    tracing::info!(node, path = %path.display(), "joined the cluster: the node's credentials are kept in its data directory");
    Ok(kubeconfig::load(&path)?)
}

/// `(CA hash, bearer token)` of a join token.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.trim().strip_prefix("rk1:")?;
    let (hash, bearer) = rest.split_once(':')?;
    let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    let (id, secret) = bearer.split_once('.')?;
    let shape = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (hex && shape(id, 6) && shape(secret, 16)).then_some((hash, bearer))
}

/// A kubeconfig (JSON, which is YAML) with everything embedded, readable by its owner only.
fn write_kubeconfig(path: &Path, server: &str, ca: &str, cert: &str, key: &str) -> Result<(), JoinError> {
    use base64::Engine as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let doc = json!({"apiVersion": "v1", "kind": "Config", "current-context": "rk",
        "clusters": [{"name": "rk", "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": "rk", "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "rk", "context": {"cluster": "rk", "user": "rk"}}]});
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let err = |source| JoinError::Write { path: path.to_path_buf(), source };
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Trusts a server whose chain holds a CA with the pinned hash, and whose certificate
/// that CA signed for the name dialed.
#[derive(Debug)]
struct PinnedCa {
    hash: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates.iter().find(|c| sha256_hex(c.as_ref()) == self.hash).ok_or_else(|| {
            rustls::Error::General("the server's certificate chain holds no CA with the join token's hash".into())
        })?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_parse_only_in_their_shape() {
        let hash = "a".repeat(64);
        let good = format!("rk1:{hash}:abcdef.0123456789abcdef");
        assert_eq!(parse(&good), Some((hash.as_str(), "abcdef.0123456789abcdef")));
        for bad in [
            "abcdef.0123456789abcdef".to_string(),
            format!("rk1:{}:abcdef.0123456789abcdef", "a".repeat(63)),
            format!("rk1:{hash}:abcdef"),
            format!("rk1:{hash}:ABCDEF.0123456789abcdef"),
            format!("rk2:{hash}:abcdef.0123456789abcdef"),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
