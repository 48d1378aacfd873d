//! The cluster's PKI: one certificate authority per cluster, and the certificates it
//! issues to replicas, nodes and users.
//!
//! - [`Ca`]: the cluster CA, `ca.crt` and `ca.key` in the PKI directory (`--pki-dir`).
//!   The first founding replica creates it ([`Ca::load_or_create`]); every replica
//!   issues its own certificates from it at start and again before they expire.
//! - [`Leaf`] and [`Ca::issue`]: what a certificate names. Client certificates follow
//!   Kubernetes' convention: the subject's common name is the user, each organization
//!   a group ([`identity_of`] reads them back).
//! - [`Credentials`]: a replica's current certificate and key, which rustls asks for at
//!   every handshake; [`Credentials::renew_loop`] replaces them well before they expire,
//!   so a cluster that runs for years never serves an expired certificate and renewal
//!   needs no restart.
//! - [`server_config`] / [`client_config`]: rustls configurations (ring provider, TLS 1.2
//!   and 1.3 with rustls' modern suites only).
//!
//! Names: a replica's client port certificate is valid for its addresses, `localhost`
//! and the `kubernetes` Service names ([`API_SERVER_NAME`] is the one rk's own tools
//! verify); its peer certificate names `replica-<id>.rk-peers` ([`peer_name`]), which
//! both ends of a peer connection check.

use crate::api::rbac::Identity;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The name every replica's client port certificate carries, which rk's own clients
/// (joining replicas, `rk-server snapshot save`, …) verify: any address can reach a
/// replica, but this name is always in its certificate.
pub const API_SERVER_NAME: &str = "kubernetes.default.svc";

/// How long the CA is valid; replicas re-issue their own certificates, never the CA.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Leaf certificates start this much in the past, so a peer whose clock is a little
/// behind still accepts them.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Why a certificate could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable {what}: {detail}")]
    Invalid { path: PathBuf, what: &'static str, detail: String },
    #[error("cannot issue a certificate: {0}")]
    Issue(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    #[error(
        "a certificate can name at most two groups, and {0} were given: bind roles to the user (or to \
         fewer groups) instead"
    )]
    TooManyGroups(usize),
}

/// organizationName's object identifier: a client certificate's groups.
const ORGANIZATION_OID: &[u64] = &[2, 5, 4, 10];

/// The cluster CA.
pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    key: KeyPair,
    not_after: SystemTime,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("dir", &self.dir).field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

/// What a certificate names and what it may be used for.
#[derive(Debug, Clone, Default)]
pub struct Leaf {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub server: bool,
    pub client: bool,
    pub validity: Duration,
}

/// A certificate just issued, PEM-encoded, and when it expires.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: SystemTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

/// The peer certificate name of replica `id`.
pub fn peer_name(id: u64) -> String {
    format!("replica-{id}.rk-peers")
}

/// The replica id a peer certificate names, if it names one.
pub fn replica_of(name: &str) -> Option<u64> {
    name.strip_prefix("replica-")?.strip_suffix(".rk-peers")?.parse().ok()
}

impl Ca {
    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join("ca.crt")
    }

    pub fn key_path(dir: &Path) -> PathBuf {
        dir.join("ca.key")
    }

    /// Whether `dir` holds a CA.
    pub fn exists(dir: &Path) -> bool {
        Self::cert_path(dir).exists() && Self::key_path(dir).exists()
    }

    /// Reads the CA in `dir`.
    pub fn load(dir: &Path) -> Result<Ca, PkiError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| PkiError::Read { path: path.clone(), source })
        };
        let cert_path = Self::cert_path(dir);
        let cert_pem = read(cert_path.clone())?;
        let key_path = Self::key_path(dir);
        let key = KeyPair::from_pem(&read(key_path.clone())?).map_err(|e| PkiError::Invalid {
            path: key_path,
            what: "CA key",
            detail: e.to_string(),
        })?;
        let invalid = |detail: String| PkiError::Invalid { path: cert_path.clone(), what: "CA certificate", detail };
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let not_after = not_after(&der).map_err(invalid)?;
        // The key must be the certificate's: issuing with another key makes certificates
        // nothing verifies.
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|e| invalid(e.to_string()))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(invalid("ca.key is not the key of this certificate".into()));
        }
        Ok(Ca { dir: dir.to_path_buf(), cert_pem, key, not_after })
    }

    /// Reads the CA in `dir`, or creates one there if there is none; `true` when it was
    /// created. Replicas starting together race here: the CA is written to a directory
    /// of its own and renamed into place, so exactly one CA wins and every replica loads
    /// that one.
    pub fn load_or_create(dir: &Path) -> Result<(Ca, bool), PkiError> {
        if Self::exists(dir) {
            return Ok((Self::load(dir)?, false));
        }
        let created = Self::place(dir, || {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name.push(DnType::CommonName, "rk-ca");
            params.distinguished_name.push(DnType::OrganizationName, "rk");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages =
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            let now = SystemTime::now();
            params.not_before = (now - BACKDATE).into();
            params.not_after = (now + CA_VALIDITY).into();
            let cert = params.self_signed(&key)?;
            Ok((cert.pem(), key.serialize_pem()))
        })?;
        Ok((Self::load(dir)?, created))
    }

    /// Keeps in `dir` the cluster's CA received from a member (a replica joining with a
    /// token), unless a CA is there already; returns the CA `dir` then holds.
    pub fn install(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<Ca, PkiError> {
        Self::place(dir, || Ok((cert_pem.to_string(), key_pem.to_string())))?;
        Self::load(dir)
    }

    /// Writes the CA `make` gives (certificate, key) to a directory of its own, checks
    /// it loads, and renames it to `dir`; `false` when another process filled `dir` first.
    fn place(dir: &Path, make: impl FnOnce() -> Result<(String, String), PkiError>) -> Result<bool, PkiError> {
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Write { path, source }
        };
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "pki".into());
        let tmp = parent.join(format!(".{name}.tmp-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir(&tmp).map_err(write_err(&tmp))?;
        let written = make().and_then(|(cert, key)| {
            write_private(&Self::key_path(&tmp), &key)?;
            std::fs::write(Self::cert_path(&tmp), cert).map_err(write_err(&Self::cert_path(&tmp)))?;
            Self::load(&tmp).map(drop)
        });
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        // Renaming onto a missing or empty directory succeeds; onto one another replica
        // filled first, it fails, and that replica's CA is the cluster's.
        match std::fs::rename(&tmp, dir) {
            Ok(()) => Ok(true),
            Err(_) if Self::exists(dir) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(false)
            }
            Err(source) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(PkiError::Write { path: dir.to_path_buf(), source })
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PEM-encoded: only for a replica joining with a token, which
    /// needs it to issue its own certificates as every replica does.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The CA certificate as rustls' trust anchor.
    pub fn roots(&self) -> Result<rustls::RootCertStore, PkiError> {
        roots_of(self.cert_pem.as_bytes())
    }

    /// The parameters of a certificate for `leaf`, and when it expires.
    fn leaf_params(&self, leaf: &Leaf) -> Result<(CertificateParams, SystemTime), PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, leaf.common_name.as_str());
        // rcgen keeps one value per attribute type, so the second group is written as the
        // same attribute (organizationName, 2.5.4.10) under its numeric name; a third
        // cannot be written at all.
        match leaf.organizations.as_slice() {
            [] => {}
            [one] => params.distinguished_name.push(DnType::OrganizationName, one.as_str()),
            [one, two] => {
                params.distinguished_name.push(DnType::OrganizationName, one.as_str());
                params.distinguished_name.push(DnType::CustomDnType(ORGANIZATION_OID.to_vec()), two.as_str());
            }
            more => return Err(PkiError::TooManyGroups(more.len())),
        }
        for name in &leaf.dns_names {
            params.subject_alt_names.push(SanType::DnsName(name.as_str().try_into()?));
        }
        params.subject_alt_names.extend(leaf.ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        if leaf.server {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if leaf.client {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        // Never past the CA's own end: a verifier would refuse the rest anyway.
        let not_after = (now + leaf.validity).min(self.not_after);
        params.not_before = (now - BACKDATE).into();
        params.not_after = not_after.into();
        Ok((params, not_after))
    }

    /// Issues a certificate for `leaf`, with a new key.
    pub fn issue(&self, leaf: &Leaf) -> Result<Issued, PkiError> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let key = KeyPair::generate()?;
        let (params, not_after) = self.leaf_params(leaf)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), not_after })
    }

    /// Signs the key of a certificate signing request (PEM; its signature is checked)
    /// with what `leaf` says, whatever the request asked for; returns the certificate.
    pub fn sign_request(&self, csr_pem: &str, leaf: &Leaf) -> Result<String, PkiError> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
        csr.params = self.leaf_params(leaf)?.0;
        Ok(csr.signed_by(&issuer)?.pem())
    }
}

/// The pin of a CA certificate (PEM): the SHA-256 of its DER, in hex, as join tokens
/// carry it.
pub fn ca_hash(ca_pem: &str) -> Result<String, PkiError> {
    let der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| PkiError::Tls(format!("the CA certificate does not parse: {e}")))?;
    Ok(rk_proto::join::sha256_hex(der.as_ref()))
}

/// Writes a file only its owner may read.
pub fn write_private(path: &Path, text: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| PkiError::Write { path: path.to_path_buf(), source };
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

/// A trust store holding the certificates of a PEM bundle.
pub fn roots_of(pem: &[u8]) -> Result<rustls::RootCertStore, PkiError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| PkiError::Tls(format!("a CA certificate does not parse: {e}")))?;
        roots.add(cert).map_err(|e| PkiError::Tls(format!("a CA certificate is not usable: {e}")))?;
    }
    if roots.is_empty() {
        return Err(PkiError::Tls("no CA certificate given".into()));
    }
    Ok(roots)
}

/// When a certificate expires.
pub fn not_after(der: &CertificateDer<'_>) -> Result<SystemTime, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let secs = cert.validity().not_after.timestamp();
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}

/// Who a verified client certificate says its holder is: the subject's common name is
/// the user, each organization a group (Kubernetes' x509 authenticator).
pub fn identity_of(der: &CertificateDer<'_>) -> Option<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    if user.is_empty() {
        return None;
    }
    let groups = subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
    Some(Identity::with_implied_groups(user, groups))
}

/// The DNS names a certificate's subjectAltName lists.
pub fn dns_names_of(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return vec![] };
    let Ok(Some(san)) = cert.subject_alternative_name() else { return vec![] };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate and key in rustls' form.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, PkiError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::Tls(format!("a certificate does not parse: {e}")))?;
    if chain.is_empty() {
        return Err(PkiError::Tls("no certificate given".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| PkiError::Tls(format!("a private key does not parse: {e}")))?;
    let signing = provider().key_provider.load_private_key(key).map_err(|e| PkiError::Tls(e.to_string()))?;
    Ok(CertifiedKey::new(chain, signing))
}

/// What a replica issues itself: its client port certificate (also a client certificate
/// in `system:masters`, for the calls it makes to other replicas' client ports) or its
/// peer certificate.
#[derive(Debug, Clone)]
pub enum Role {
    ClientPort { dns_names: Vec<String>, ips: Vec<IpAddr> },
    Peer { id: u64 },
}

impl Role {
    /// The certificate's name in metrics, logs and events.
    pub fn label(&self) -> &'static str {
        match self {
            Role::ClientPort { .. } => "client-port",
            Role::Peer { .. } => "peer",
        }
    }

    fn leaf(&self, validity: Duration) -> Leaf {
        match self {
            Role::ClientPort { dns_names, ips } => Leaf {
                common_name: "system:rk-server".into(),
                organizations: vec![crate::api::rbac::MASTERS.into()],
                dns_names: dns_names.clone(),
                ips: ips.clone(),
                server: true,
                client: true,
                validity,
            },
            Role::Peer { id } => Leaf {
                common_name: peer_name(*id),
                organizations: vec!["rk:peers".into()],
                dns_names: vec![peer_name(*id)],
                ips: vec![],
                server: true,
                client: true,
                validity,
            },
        }
    }
}

/// A replica's current certificate for one role, handed to rustls at every handshake
/// (as server and as client) and replaced by [`Credentials::renew_loop`].
pub struct Credentials {
    ca: Arc<Ca>,
    role: Role,
    validity: Duration,
    current: parking_lot::RwLock<(Arc<CertifiedKey>, SystemTime)>,
    renewals: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("role", &self.role).field("not_after", &self.not_after()).finish()
    }
}

impl Credentials {
    /// Issues the first certificate of `role`, valid for `validity`.
    pub fn issue(ca: Arc<Ca>, role: Role, validity: Duration) -> Result<Arc<Credentials>, PkiError> {
        let first = Self::make(&ca, &role, validity)?;
        Ok(Arc::new(Credentials {
            ca,
            role,
            validity,
            current: parking_lot::RwLock::new(first),
            renewals: Default::default(),
        }))
    }

    fn make(ca: &Ca, role: &Role, validity: Duration) -> Result<(Arc<CertifiedKey>, SystemTime), PkiError> {
        let issued = ca.issue(&role.leaf(validity))?;
        // The CA goes with the certificate, so a client holding only the CA's hash (a
        // joining node) can check whom it talks to.
        let chain = format!("{}{}", issued.cert_pem, ca.cert_pem);
        Ok((Arc::new(certified_key(&chain, &issued.key_pem)?), issued.not_after))
    }

    pub fn ca(&self) -> &Arc<Ca> {
        &self.ca
    }

    pub fn not_after(&self) -> SystemTime {
        self.current.read().1
    }

    /// How long each of these certificates is valid (`--cert-validity`).
    pub fn validity(&self) -> Duration {
        self.validity
    }

    /// How many times the certificate was replaced since start.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// When the certificate should be replaced: once two thirds of its life are gone.
    fn renew_at(&self) -> SystemTime {
        self.not_after() - self.validity / 3
    }

    /// Replaces the certificate with a new one now.
    pub fn renew(&self) -> Result<(), PkiError> {
        let next = Self::make(&self.ca, &self.role, self.validity)?;
        *self.current.write() = next;
        self.renewals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A client configuration trusting the CA and presenting these credentials (for
    /// dialing other replicas).
    pub fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, PkiError> {
        client_config(self.ca.roots()?, Some(self.clone()))
    }

    /// A server configuration presenting these credentials; `required`: clients must
    /// present a certificate the CA signed (the peer port).
    pub fn server_config(self: &Arc<Self>, required: bool) -> Result<rustls::ServerConfig, PkiError> {
        server_config(self.clone(), self.ca.roots()?, required)
    }

    pub fn role(&self) -> &Role {
        &self.role
    }

    /// A client configuration for dialing node agents (logs, exec, usage), presenting
    /// these credentials (`system:masters`, which agents require). As kube-apiserver does
    /// without `--kubelet-certificate-authority`, it takes the agent's self-signed serving
    /// certificate without asking who signed it; the handshake still proves the agent
    /// holds that certificate's key.
    pub fn agent_client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, PkiError> {
        let provider = provider();
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| PkiError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(rk_proto::join::AnyServerCert::new(provider)))
            .with_client_cert_resolver(self.clone());
        // Exec is an HTTP/1.1 upgrade.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Renews the certificate whenever two thirds of its life are gone, until `stop`
    /// completes, and calls `renewed` after each renewal. A failure is retried a minute
    /// later (or sooner for short lifetimes).
    pub async fn renew_loop(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()>,
        renewed: impl Fn(&Credentials) + Send,
    ) {
        let retry = (self.validity / 20).clamp(Duration::from_millis(200), Duration::from_secs(60));
        tokio::pin!(stop);
        loop {
            let wait = self.renew_at().duration_since(SystemTime::now()).unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut stop => return,
            }
            match self.renew() {
                Ok(()) => {
                    tracing::info!(certificate = self.role.label(), not_after = %jiff_time(self.not_after()),
                        "renewed this replica's certificate");
                    renewed(&self);
                }
                Err(e) => {
                    tracing::error!(error = %e, certificate = self.role.label(),
                        "cannot renew this replica's certificate; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = &mut stop => return,
                    }
                }
            }
        }
    }
}

/// Prometheus lines for `certs` (and their CA): when each expires, and how often each
/// was renewed since start.
pub fn render_metrics(certs: &[Arc<Credentials>]) -> String {
    use std::fmt::Write as _;
    let Some(first) = certs.first() else { return String::new() };
    let unix = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut out = String::from(
        "# HELP rk_certificate_expiry_timestamp_seconds When a certificate this replica uses expires (Unix time).\n\
         # TYPE rk_certificate_expiry_timestamp_seconds gauge\n",
    );
    let _ =
        writeln!(out, "rk_certificate_expiry_timestamp_seconds{{certificate=\"ca\"}} {}", unix(first.ca.not_after()));
    for c in certs {
        let _ = writeln!(
            out,
            "rk_certificate_expiry_timestamp_seconds{{certificate=\"{}\"}} {}",
            c.role.label(),
            unix(c.not_after())
        );
    }
    out.push_str(
        "# HELP rk_certificate_renewals_total Certificates this replica renewed since it started.\n\
         # TYPE rk_certificate_renewals_total counter\n",
    );
    for c in certs {
        let _ = writeln!(out, "rk_certificate_renewals_total{{certificate=\"{}\"}} {}", c.role.label(), c.renewals());
    }
    out
}

/// A time as RFC 3339 (what logs and events show).
pub fn jiff_time(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).map(|t| t.to_string()).unwrap_or_default()
}

impl rustls::server::ResolvesServerCert for Credentials {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().0.clone())
    }
}

impl rustls::client::ResolvesClientCert for Credentials {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client certificate for rustls, fixed (a tool's or an agent's own).
#[derive(Debug)]
pub struct FixedCert(pub Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// ALPN: HTTP/2 first (gRPC needs it), then HTTP/1.1.
fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// A server configuration presenting `cert`, verifying client certificates against
/// `roots`: `required` makes a client certificate mandatory (the peer port); otherwise a
/// client may come without one and authenticate another way (the client port).
pub fn server_config(
    cert: Arc<dyn rustls::server::ResolvesServerCert>,
    roots: rustls::RootCertStore,
    required: bool,
) -> Result<rustls::ServerConfig, PkiError> {
    let provider = provider();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = if required { verifier } else { verifier.allow_unauthenticated() };
    let verifier = verifier.build().map_err(|e| PkiError::Tls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.alpn_protocols = alpn();
    Ok(config)
}

/// A client configuration trusting `roots` and presenting `cert` when there is one.
pub fn client_config(
    roots: rustls::RootCertStore,
    cert: Option<Arc<dyn rustls::client::ResolvesClientCert>>,
) -> Result<rustls::ClientConfig, PkiError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(c) => builder.with_client_cert_resolver(c),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn();
    Ok(config)
}

/// A client configuration for rk's own tools on a machine holding the CA: it trusts
/// the CA and presents a short-lived `system:masters` certificate issued just now.
pub fn admin_client_config(pki_dir: &Path) -> Result<rustls::ClientConfig, PkiError> {
    let ca = Ca::load(pki_dir)?;
    let leaf = Leaf {
        common_name: "system:rk-admin".into(),
        organizations: vec![crate::api::rbac::MASTERS.into()],
        client: true,
        validity: Duration::from_secs(3600),
        ..Default::default()
    };
    let issued = ca.issue(&leaf)?;
    let cert = Arc::new(FixedCert(Arc::new(certified_key(&issued.cert_pem, &issued.key_pem)?)));
    client_config(ca.roots()?, Some(cert))
}

/// A kubeconfig for `servers[0]` with the CA and `cert` embedded, all named `name`.
pub fn kubeconfig(name: &str, servers: &[String], ca_pem: &str, cert: &Issued) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let server = servers.first().map(String::as_str).unwrap_or("https://127.0.0.1:2379");
    let server = if server.contains("://") { server.to_string() } else { format!("https://{server}") };
    // Every value is base64 or a string we quote (JSON is YAML) unless it is plainly
    // safe, as URLs usually are: kubectl writes them bare.
    let plain = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || ":/.-_[]@".contains(c)) && !s.starts_with('[')
    };
    let quote = |s: String| if plain(&s) { s } else { serde_json::Value::String(s).to_string() };
    let name = quote(name.to_string());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    \
         user: {name}\n    namespace: default\ncurrent-context: {name}\nusers:\n- name: {name}\n  user:\n    \
         client-certificate-data: {crt}\n    client-key-data: {key}\n",
        server = quote(server),
        ca = b64(ca_pem),
        crt = b64(&cert.cert_pem),
        key = b64(&cert.key_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_issues_certificates_that_name_users_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let (ca, created) = Ca::load_or_create(&pki).unwrap();
        assert!(created);
        let (again, created) = Ca::load_or_create(&pki).unwrap();
        assert!(!created);
        assert_eq!(ca.cert_pem(), again.cert_pem());
        let leaf = Leaf {
            common_name: "jane".into(),
            organizations: vec!["dev".into(), "ops".into()],
            client: true,
            validity: Duration::from_secs(60),
            ..Default::default()
        };
        let issued = ca.issue(&leaf).unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let id = identity_of(&der).unwrap();
        assert_eq!(id.user, "jane");
        assert!(id.groups.iter().any(|g| g == "dev") && id.groups.iter().any(|g| g == "ops"), "{id:?}");
        assert!(id.groups.iter().any(|g| g == "system:authenticated"), "{id:?}");
        let left = not_after(&der).unwrap().duration_since(SystemTime::now()).unwrap();
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50), "{left:?}");
        let three = Leaf { organizations: vec!["a".into(), "b".into(), "c".into()], ..leaf };
        assert!(matches!(ca.issue(&three), Err(PkiError::TooManyGroups(3))));
    }

    #[test]
    fn a_ca_with_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        Ca::load_or_create(&a).unwrap();
        Ca::load_or_create(&b).unwrap();
        std::fs::copy(Ca::key_path(&b), Ca::key_path(&a)).unwrap();
        let err = Ca::load(&a).unwrap_err().to_string();
        assert!(err.contains("not the key of this certificate"), "{err}");
        std::fs::write(Ca::cert_path(&b), "garbage").unwrap();
        assert!(Ca::load(&b).is_err());
    }

    #[test]
    fn peer_names_carry_replica_ids() {
        assert_eq!(replica_of(&peer_name(42)), Some(42));
        assert_eq!(replica_of("replica-x.rk-peers"), None);
        assert_eq!(replica_of("kubernetes"), None);
    }

    #[test]
    fn credentials_renew_to_a_new_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = Ca::load_or_create(&dir.path().join("pki")).unwrap();
        let creds = Credentials::issue(Arc::new(ca), Role::Peer { id: 3 }, Duration::from_secs(30)).unwrap();
        let before = creds.current.read().0.cert[0].clone();
        assert_eq!(dns_names_of(&before), vec![peer_name(3)]);
        creds.renew().unwrap();
        assert_ne!(creds.current.read().0.cert[0], before);
        assert_eq!(creds.renewals(), 1);
    }
}
