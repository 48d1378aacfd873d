//! TLS on rk-server's two ports, and the dialer its own connections use.
//!
//! - [`ClientListener`]: the client port's listener for axum. With TLS it accepts TCP
//!   connections in a task of its own and shakes hands with each in a task of its own
//!   (a slow client never holds up the others), then hands over the stream with
//!   [`Conn`]: the client's address and, if it presented a certificate the cluster CA
//!   signed, who that certificate says it is.
//! - [`peer_incoming`]: the peer port's connections for tonic; every client must present
//!   a peer certificate, and the replica id it names rides on each request
//!   ([`PeerCert`]), so a peer can only speak for itself.
//! - [`Dialer`]: how a replica dials another one (peer port, or client port when
//!   joining): TCP from a chosen source address, then TLS verifying the name the other
//!   end's certificate must carry.
//!
//! `--insecure-dev` turns all of it off: plain TCP, for local experiments (and the
//! benchmarks that compare with a peer that runs without TLS).

use crate::api::rbac::Identity;
use crate::pki;
use axum::serve::{IncomingStream, Listener};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client connection's facts, for the handlers (axum's `ConnectInfo<Conn>`).
#[derive(Debug, Clone)]
pub struct Conn {
    pub addr: SocketAddr,
    /// Who the client's verified certificate names.
    pub identity: Option<Identity>,
    /// Whether the connection is TLS (so credentials are required).
    pub tls: bool,
}

/// axum asks this for each connection's `ConnectInfo`.
impl axum::extract::connect_info::Connected<IncomingStream<'_, ClientListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, ClientListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A stream that is plain TCP or TLS over it (`T`: the server or client side's).
pub enum Either<T> {
    Plain(TcpStream),
    Tls(Box<T>),
}

/// A client port stream.
pub type Stream = Either<tokio_rustls::server::TlsStream<TcpStream>>;

/// A stream this replica dialed.
pub type DialedStream = Either<tokio_rustls::client::TlsStream<TcpStream>>;

impl<T: AsyncRead + Unpin> AsyncRead for Either<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Either::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Either::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Either<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Either::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Either::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Either::Plain(s) => Pin::new(s).poll_flush(cx),
            Either::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Either::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Either::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Either::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Either::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Either::Plain(s) => s.is_write_vectored(),
            Either::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The client port's listener (see the module docs).
pub struct ClientListener {
    local: SocketAddr,
    accepted: tokio::sync::mpsc::Receiver<(Stream, Conn)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ClientListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClientListener {
    /// Serves `tcp` with TLS when `tls` is given, plain otherwise.
    pub fn new(tcp: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> io::Result<ClientListener> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = tokio::sync::mpsc::channel(64);
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(ClientListener { local, accepted, task })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    tx: tokio::sync::mpsc::Sender<(Stream, Conn)>,
) {
    loop {
        let (socket, addr) = match tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait, as axum's own loop does.
                tracing::debug!(error = %e, "accepting a client connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small requests and replies must not wait for Nagle's algorithm.
        let _ = socket.set_nodelay(true);
        let Some(acceptor) = acceptor.clone() else {
            if tx.send((Either::Plain(socket), Conn { addr, identity: None, tls: false })).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(client = %addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(client = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let identity = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(pki::identity_of);
            let _ = tx.send((Either::Tls(Box::new(stream)), Conn { addr, identity, tls: true })).await;
        });
    }
}

impl Listener for ClientListener {
    type Io = Stream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Conn { addr: self.local, identity: None, tls: false })
    }
}

/// The replica a peer connection's certificate names (a request extension on the
/// peer port); `None` on an `--insecure-dev` peer port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCert(pub Option<u64>);

/// A peer port stream with the replica its certificate names.
pub struct PeerStream {
    inner: Stream,
    replica: Option<u64>,
}

impl tonic::transport::server::Connected for PeerStream {
    type ConnectInfo = PeerCert;

    fn connect_info(&self) -> PeerCert {
        PeerCert(self.replica)
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The peer port's connections, for tonic's `serve_with_incoming`. With TLS, a client
/// must present a certificate the cluster CA signed that names a replica; anything else
/// is dropped in the handshake, before a byte of it is parsed as protobuf.
pub fn peer_incoming(
    tcp: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> impl futures::Stream<Item = Result<PeerStream, io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<PeerStream, io::Error>>(16);
    let listener = ClientListener::new(tcp, tls);
    tokio::spawn(async move {
        let mut listener = match listener {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        loop {
            let (inner, conn) = tokio::select! {
                c = listener.accept() => c,
                _ = tx.closed() => return,
            };
            let replica = match &inner {
                Either::Plain(_) => None,
                Either::Tls(s) => {
                    let names = s
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(pki::dns_names_of)
                        .unwrap_or_default();
                    match names.iter().find_map(|n| pki::replica_of(n)) {
                        Some(id) => Some(id),
                        None => {
                            tracing::warn!(from = %conn.addr, "refused a peer connection whose certificate names no replica");
                            continue;
                        }
                    }
                }
            };
            if tx.send(Ok(PeerStream { inner, replica })).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// How a replica dials other replicas: from `local_ip` when given, with TLS when
/// `tls` is given.
#[derive(Clone)]
pub struct Dialer {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub local_ip: Option<IpAddr>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer").field("tls", &self.tls.is_some()).field("local_ip", &self.local_ip).finish()
    }
}

impl Dialer {
    /// Plain TCP from anywhere.
    pub fn plain() -> Dialer {
        Dialer { tls: None, local_ip: None }
    }

    /// A tonic channel to `addr` (`host:port` or a URL), whose certificate must name
    /// `server_name`.
    pub async fn channel(
        &self,
        endpoint: tonic::transport::Endpoint,
        server_name: &str,
    ) -> Result<tonic::transport::Channel, tonic::transport::Error> {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string());
        let this = self.clone();
        let connector = tower::service_fn(move |uri: http::Uri| {
            let this = this.clone();
            let name = name.clone();
            async move {
                let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
                let port = uri.port_u16().unwrap_or(80);
                let target = tokio::net::lookup_host((host.as_str(), port))
                    .await?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")))?;
                let socket =
                    if target.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
                if let Some(ip) = this.local_ip.filter(|ip| ip.is_ipv4() == target.is_ipv4()) {
                    socket.bind(SocketAddr::new(ip, 0))?;
                }
                socket.set_nodelay(true)?;
                let tcp = socket.connect(target).await?;
                let stream: DialedStream = match &this.tls {
                    None => Either::Plain(tcp),
                    Some(config) => {
                        let name = name.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                        let tls = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await?;
                        Either::Tls(Box::new(tls))
                    }
                };
                Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        endpoint.connect_with_connector(connector).await
    }
}

/// A channel to a replica's client port for rk's own command-line tools, run where the
/// cluster CA is (`pki_dir`): TLS, presenting a short-lived `system:masters` certificate
/// issued from it. An `http://` endpoint (an `--insecure-dev` replica) is dialed in
/// plain TCP.
pub async fn tool_channel(
    endpoint: &str,
    pki_dir: Option<&std::path::Path>,
) -> Result<tonic::transport::Channel, String> {
    let plain = endpoint.starts_with("http://");
    let host_port = endpoint.trim_start_matches("http://").trim_start_matches("https://");
    let url = format!("http://{host_port}");
    let dialer = if plain {
        Dialer::plain()
    } else {
        let dir = pki_dir.ok_or_else(|| {
            format!(
                "{endpoint} is served over TLS: say where the cluster CA is with --pki-dir DIR (or --data-dir), \
                 or use http://{host_port} for an --insecure-dev replica"
            )
        })?;
        let config = pki::admin_client_config(dir).map_err(|e| e.to_string())?;
        Dialer { tls: Some(Arc::new(config)), local_ip: None }
    };
    let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| format!("{endpoint}: {e}"))?
        .connect_timeout(Duration::from_secs(5));
    dialer.channel(endpoint, pki::API_SERVER_NAME).await.map_err(|e| format!("cannot reach {host_port}: {}", chain(&e)))
}

/// One HTTPS `POST` of `body` (JSON) with a bearer token to `addr` (`host:port`), whose
/// certificate must name `server_name` as `tls` verifies it: the answer's status and
/// body. For joining, before this replica has credentials of its own.
pub async fn post_json(
    addr: &str,
    server_name: &str,
    tls: Arc<rustls::ClientConfig>,
    path: &str,
    bearer: &str,
    body: &serde_json::Value,
) -> Result<(http::StatusCode, bytes::Bytes), String> {
    use http_body_util::BodyExt as _;
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("cannot connect: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = http::Request::post(path)
            .header(http::header::HOST, addr)
            .header(http::header::AUTHORIZATION, format!("Bearer {bearer}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, bytes))
    };
    tokio::time::timeout(Duration::from_secs(30), connect).await.map_err(|_| "no answer within 30 s".to_string())?
}

/// An error with its causes (tonic's transport errors say little at the top).
pub fn chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source()).map(|e| e.to_string()).collect::<Vec<_>>().join(": ")
}
