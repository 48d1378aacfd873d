//! Join tokens, as `rk-server token create` prints them: `rk1:<CA hash>:<id>.<secret>`.
//!
//! The hash is the SHA-256 of the cluster CA certificate's DER, in hex; `<id>.<secret>`
//! is a Kubernetes bootstrap token, sent as a bearer token. A joiner (`rk-agent --join`,
//! `rk-server --join-token`) knows nothing of the cluster but the token, so it trusts
//! the server it dials only through [`PinnedCa`]: the chain the server presents must
//! hold a CA with the token's hash, and that CA must have signed the server's
//! certificate for the name dialed. The token's secret therefore never reaches an
//! impostor. ([`AnyServerCert`], which vouches for no name, is here for the same
//! components' other dials: node agents serve self-signed certificates.)

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;

/// `(CA hash, bearer token)` of a join token, if it has a join token's shape.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.trim().strip_prefix("rk1:")?;
    let (hash, bearer) = rest.split_once(':')?;
    let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && is_bootstrap_token(bearer)).then_some((hash, bearer))
}

/// Whether `token` has a bootstrap token's shape: `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn is_bootstrap_token(token: &str) -> bool {
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    token.split_once('.').is_some_and(|(id, secret)| ok(id, 6) && ok(secret, 16))
}

/// The SHA-256 of `der`, in lowercase hex: a CA's pin.
pub fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// A TLS client configuration that trusts only servers whose chain holds the CA with
/// `hash` (see the module docs), and presents no client certificate.
pub fn client_config(hash: &str) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pinned = PinnedCa { hash: hash.to_ascii_lowercase(), signatures: AnyServerCert::new(provider.clone()) };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(pinned))
        .with_no_client_auth())
}

/// Trusts a server whose chain holds a CA with the pinned hash, and whose certificate
/// that CA signed for the name dialed.
#[derive(Debug)]
pub struct PinnedCa {
    hash: String,
    signatures: AnyServerCert,
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
        let provider = self.signatures.provider.clone();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
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
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

/// Takes any server certificate, but checks the handshake's signatures with it: for
/// servers nothing vouches for, such as node agents' self-signed certificates (which
/// kube-apiserver also takes without `--kubelet-certificate-authority`).
#[derive(Debug)]
pub struct AnyServerCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl AnyServerCert {
    pub fn new(provider: Arc<rustls::crypto::CryptoProvider>) -> AnyServerCert {
        AnyServerCert { provider }
    }
}

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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

    #[test]
    fn bootstrap_tokens_have_kubernetes_shape() {
        for bad in ["", "abcdef", "abcdef.", "ABCDEF.0123456789abcdef", "abcde.0123456789abcdef", "eyJh.b.c"] {
            assert!(!is_bootstrap_token(bad), "{bad}");
        }
        assert!(is_bootstrap_token("abcdef.0123456789abcdef"));
    }
}
