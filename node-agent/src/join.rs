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
//!
//! [`renew_loop`] replaces that certificate once two thirds of its life are gone, asking
//! with the one it holds (a node may ask for its own name only), and keeps the new one in
//! the same file: an agent that runs for years never presents an expired certificate.

use crate::client::{Client, ClientError};
use crate::kubeconfig::{self, Credentials};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    let (hash, bearer) = rk_proto::join::parse(token).ok_or(JoinError::BadToken)?;
    let tls = rk_proto::join::client_config(hash).map_err(|e| JoinError::Tls(e.to_string()))?;
    let server = crate::client::parse_servers(servers).into_iter().next().unwrap_or_default();
    let joining = Credentials {
        server: server.clone(),
        tls: Arc::new(tls),
        token: Some(bearer.to_string()),
        cert: None,
        ca_pem: vec![],
    };
    let client = Client::new(servers, &format!("rk-agent/{} (join)", env!("CARGO_PKG_VERSION")), Some(&joining))?;
    let issued = request_certificate(&client, node).await?;
    write_kubeconfig(&path, &server, &issued.ca, &issued.cert, &issued.key)?;
    tracing::info!(node, path = %path.display(), "joined the cluster: the node's credentials are kept in its data directory");
    Ok(kubeconfig::load(&path)?)
}

/// A certificate the cluster CA signed for `system:node:<node>`, its new key, and the CA
/// (all PEM).
struct IssuedCert {
    cert: String,
    key: String,
    ca: String,
}

/// Asks the API server, as `client` authenticates, to sign a new key for `node`.
async fn request_certificate(client: &Client, node: &str) -> Result<IssuedCert, JoinError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("system:node:{node}"));
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
    let csr = params.serialize_request(&key)?.pem()?;
    let answer = client.post(NODE_CERTIFICATE_PATH, &json!({"nodeName": node, "csr": csr})).await?;
    let cert = answer["certificate"].as_str().ok_or(JoinError::Answer("a certificate"))?;
    let ca = answer["ca"].as_str().ok_or(JoinError::Answer("the CA"))?;
    Ok(IssuedCert { cert: cert.to_string(), key: key.serialize_pem(), ca: ca.to_string() })
}

const NODE_CERTIFICATE_PATH: &str = "/rk/v1/node-certificate";

/// When `der` stops being valid, and when it is due for renewal (two thirds into its life).
fn renewal_times(der: &[u8]) -> Option<(SystemTime, SystemTime)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let at = |t: x509_parser::time::ASN1Time| {
        let secs = u64::try_from(t.timestamp()).unwrap_or(0);
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    };
    let (start, end) = (at(cert.validity().not_before), at(cert.validity().not_after));
    let life = end.duration_since(start).unwrap_or_default();
    Some((end, start + life * 2 / 3))
}

/// Renews the node's certificate (`cert`, kept in the kubeconfig at `path` with the API
/// server's URL `server`) whenever two thirds of its life are gone, through `client`,
/// which presents it. Runs until the agent stops; a failure is retried a minute later (sooner for short lifetimes), and
/// said in the log with how long the current certificate has left.
pub async fn renew_loop(
    client: Client,
    cert: Arc<kubeconfig::ClientCert>,
    path: PathBuf,
    server: String,
    node: String,
) {
    loop {
        let Some((expires, due)) = cert.leaf().and_then(|der| renewal_times(der.as_ref())) else {
            tracing::error!(path = %path.display(), "the node's certificate does not parse: it cannot be renewed");
            return;
        };
        let life = expires.duration_since(due).unwrap_or_default() * 3;
        tokio::time::sleep(due.duration_since(SystemTime::now()).unwrap_or_default()).await;
        let renewed = async {
            let issued = request_certificate(&client, &node).await?;
            write_kubeconfig(&path, &server, &issued.ca, &issued.cert, &issued.key)?;
            cert.replace(issued.cert.as_bytes(), issued.key.as_bytes()).map_err(JoinError::Tls)
        };
        match renewed.await {
            Ok(()) => tracing::info!(node, path = %path.display(), "renewed the node's certificate"),
            Err(e) => {
                let left = expires.duration_since(SystemTime::now()).unwrap_or_default();
                tracing::warn!(node, error = %e, left_secs = left.as_secs(), "cannot renew the node's certificate; retrying");
                tokio::time::sleep((life / 20).clamp(Duration::from_millis(200), Duration::from_secs(60))).await;
            }
        }
    }
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
