//! Ingress: an HTTP reverse proxy in the agent (`--ingress-listen`) routing by host
//! and path, per `networking.k8s.io/v1` Ingress rules, to a ready endpoint of the
//! backend Service.
//!
//! ```text
//!  client ─HTTP─► --ingress-listen ──► Routes::route(host, path) ──► backend Service port
//!                 (axum, any method)      (pure, rebuilt on every     │ ready endpoints,
//!                                          proxy sync)                │ round-robin
//!                                                                     ▼
//!                                               hyper client ─► pod ip:port (same path, Host kept)
//! ```
//!
//! Matching follows Kubernetes: a rule whose host equals the request's host beats a
//! wildcard host (`*.example.com` matches exactly one more label), which beats a
//! rule without host; within the chosen rules the longest matching path wins, `Exact`
//! before `Prefix` on a tie. `Prefix` matches whole path elements (`/foo` matches
//! `/foo` and `/foo/bar`, not `/foobar`); `ImplementationSpecific` is treated as
//! `Prefix`. No rule matches: the `defaultBackend` of an Ingress, else 404. A
//! backend without ready endpoints: 503.
//!
//! Requests go on with `X-Forwarded-For` (appended), `X-Forwarded-Proto` and
//! `X-Forwarded-Host` (set); an `Upgrade` (WebSocket) answered with 101 is spliced
//! both ways; bodies stream. TLS (`--ingress-tls-listen`) is [`super::ingress_tls`],
//! whose connections [`serve_tls`] hands to the same handler.

use super::model::{ServicePort, State};
use axum::body::Body;
use axum::extract::{ConnectInfo, State as AxState};
use http::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::RwLock;
use serde_json::Value;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a path is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathType {
    /// Ordered before Prefix: on equal length, Exact wins.
    Exact,
    Prefix,
}

/// One routable path of one Ingress rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// None: any host.
    pub host: Option<String>,
    pub path: String,
    pub path_type: PathType,
    pub backend: Backend,
}

/// A Service port as an Ingress names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    /// `port.number` or `port.name`.
    pub port: BackendPort,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendPort {
    Number(u16),
    Name(String),
}

fn backend_of(namespace: &str, b: &Value) -> Result<Backend, String> {
    let svc = &b["service"];
    let Some(name) = svc["name"].as_str().filter(|n| !n.is_empty()) else {
        return Err("backend without service.name (resource backends are not supported)".into());
    };
    let port = if let Some(n) = svc.pointer("/port/number").and_then(Value::as_u64) {
        BackendPort::Number(u16::try_from(n).map_err(|_| format!("service port {n} is out of range"))?)
    } else if let Some(n) = svc.pointer("/port/name").and_then(Value::as_str) {
        BackendPort::Name(n.to_string())
    } else {
        return Err(format!("backend service {name} has no port"));
    };
    Ok(Backend { namespace: namespace.to_string(), service: name.to_string(), port })
}

/// Whether Ingress `ing` is this agent's to serve: of `class`, or without a class
/// (`class` is the cluster's default).
pub fn serves(ing: &Value, class: &str) -> bool {
    let ing_class = ing
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        .or_else(|| ing.pointer("/metadata/annotations/kubernetes.io~1ingress.class").and_then(Value::as_str));
    ing_class.is_none_or(|c| c == class)
}

/// The routes and default backends of the Ingresses of `class` (or without a class,
/// when `class` is the default), and why some were skipped.
pub fn routes(state: &State, class: &str) -> (Vec<Route>, Vec<Backend>, Vec<String>) {
    let mut routes = Vec::new();
    let mut defaults = Vec::new();
    let mut skipped = Vec::new();
    for (key, ing) in &state.ingresses {
        let spec = &ing["spec"];
        if !serves(ing, class) {
            continue;
        }
        let ns = ing.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
        if spec.get("defaultBackend").is_some_and(|b| !b.is_null()) {
            match backend_of(ns, &spec["defaultBackend"]) {
                Ok(b) => defaults.push(b),
                Err(e) => skipped.push(format!("ingress {key}: default backend: {e}")),
            }
        }
        for rule in spec["rules"].as_array().into_iter().flatten() {
            let host = rule["host"].as_str().filter(|h| !h.is_empty()).map(str::to_ascii_lowercase);
            for p in rule.pointer("/http/paths").and_then(Value::as_array).into_iter().flatten() {
                let path = p["path"].as_str().unwrap_or("/").to_string();
                let path_type = match p["pathType"].as_str() {
                    Some("Exact") => PathType::Exact,
                    _ => PathType::Prefix,
                };
                if !path.starts_with('/') {
                    skipped.push(format!("ingress {key}: path {path:?} does not start with /"));
                    continue;
                }
                match backend_of(ns, &p["backend"]) {
                    Ok(backend) => routes.push(Route { host: host.clone(), path, path_type, backend }),
                    Err(e) => skipped.push(format!("ingress {key}: {e}")),
                }
            }
        }
    }
    (routes, defaults, skipped)
}

/// The backends of the served Ingresses that no Service port in `ports` matches
/// (the Service is missing, headless, or has no such port): requests routed to them
/// are answered 503. Keyed by the Ingress's `namespace/name`, in a stable order.
pub fn missing_backends(state: &State, class: &str, ports: &[ServicePort]) -> Vec<(String, Backend)> {
    let mut out = Vec::new();
    for (key, ing) in &state.ingresses {
        if !serves(ing, class) {
            continue;
        }
        let ns = ing.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
        let spec = &ing["spec"];
        let rule_backends = spec["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r.pointer("/http/paths").and_then(Value::as_array).into_iter().flatten())
            .map(|p| &p["backend"]);
        let default = spec.get("defaultBackend").filter(|b| !b.is_null());
        for b in default.into_iter().chain(rule_backends) {
            if let Ok(backend) = backend_of(ns, b)
                && port_endpoints(ports, &backend).is_none()
                && !out.iter().any(|(k, known)| k == key && *known == backend)
            {
                out.push((key.clone(), backend));
            }
        }
    }
    out
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.port {
            BackendPort::Number(n) => write!(f, "{}/{}:{n}", self.namespace, self.service),
            BackendPort::Name(n) => write!(f, "{}/{}:{n}", self.namespace, self.service),
        }
    }
}

/// Whether `host` (lower case, no port) matches a rule's host; the rank of the
/// match (2 exact, 1 wildcard, 0 any host).
fn host_rank(rule: Option<&str>, host: &str) -> Option<u8> {
    match rule {
        None => Some(0),
        Some(h) if h == host => Some(2),
        Some(h) => {
            let suffix = h.strip_prefix("*.")?;
            let (first, rest) = host.split_once('.')?;
            (!first.is_empty() && rest == suffix).then_some(1)
        }
    }
}

fn path_matches(route: &Route, path: &str) -> bool {
    match route.path_type {
        PathType::Exact => route.path == path,
        PathType::Prefix => {
            let prefix = route.path.trim_end_matches('/');
            prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

/// The backend for a request to `host` (port stripped) and `path`.
pub fn route<'a>(routes: &'a [Route], defaults: &'a [Backend], host: &str, path: &str) -> Option<&'a Backend> {
    let host = host.to_ascii_lowercase();
    let best = routes
        .iter()
        .filter_map(|r| Some((host_rank(r.host.as_deref(), &host)?, r)))
        .filter(|(_, r)| path_matches(r, path))
        // Highest host rank, then longest path, then Exact before Prefix.
        .max_by(|(ha, a), (hb, b)| {
            (ha, a.path.len(), std::cmp::Reverse(a.path_type)).cmp(&(hb, b.path.len(), std::cmp::Reverse(b.path_type)))
        });
    best.map(|(_, r)| &r.backend).or(defaults.first())
}

/// The routing table the HTTP handler reads, swapped whole on every sync.
#[derive(Default)]
pub struct Table {
    routes: Vec<Route>,
    defaults: Vec<Backend>,
    /// Service ports with ready endpoints, to resolve backends.
    ports: Vec<ServicePort>,
}

impl Table {
    pub fn new(routes: Vec<Route>, defaults: Vec<Backend>, ports: Vec<ServicePort>) -> Self {
        Self { routes, defaults, ports }
    }

    /// The ready endpoints of `backend` (None: no such Service port).
    pub fn endpoints(&self, b: &Backend) -> Option<&[SocketAddrV4]> {
        port_endpoints(&self.ports, b)
    }
}

/// The ready endpoints of the Service port in `ports` that `b` names (None: none does).
fn port_endpoints<'a>(ports: &'a [ServicePort], b: &Backend) -> Option<&'a [SocketAddrV4]> {
    ports
        .iter()
        .find(|p| {
            p.namespace == b.namespace
                && p.name == b.service
                && match &b.port {
                    BackendPort::Number(n) => p.port == *n,
                    BackendPort::Name(n) => p.port_name == *n,
                }
        })
        .map(|p| p.endpoints.as_slice())
}

/// What the ingress server shares.
pub struct Ingress {
    pub table: RwLock<Table>,
    next: AtomicUsize,
    client: HyperClient<HttpConnector, Body>,
}

impl Ingress {
    pub fn new() -> Arc<Self> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(std::time::Duration::from_secs(2)));
        // A proxy forwards small writes as they come: Nagle would hold them back.
        http.set_nodelay(true);
        Arc::new(Self {
            table: RwLock::new(Table::default()),
            next: AtomicUsize::new(0),
            client: HyperClient::builder(TokioExecutor::new()).build(http),
        })
    }
}

/// The scheme a request came in with (a request extension the TLS listener sets;
/// absent: `http`), for `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy)]
pub struct Scheme(pub &'static str);

fn status(code: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(format!("{msg}\n")));
    *r.status_mut() = code;
    r
}

async fn handle(
    AxState(ing): AxState<Arc<Ingress>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request<Body>,
) -> Response<Body> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(String::from)
        .or_else(|| req.uri().host().map(String::from))
        .unwrap_or_default();
    let forwarded_host = host.clone();
    let host = strip_port(&host).to_string();
    let path = req.uri().path().to_string();
    let endpoint = {
        let table = ing.table.read();
        let Some(backend) = route(&table.routes, &table.defaults, &host, &path) else {
            return status(StatusCode::NOT_FOUND, "no ingress rule matches");
        };
        match table.endpoints(backend) {
            Some(eps) if !eps.is_empty() => eps[ing.next.fetch_add(1, Ordering::Relaxed) % eps.len()],
            _ => {
                return status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("no ready endpoints for {}/{}", backend.namespace, backend.service),
                );
            }
        }
    };
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    match format!("http://{endpoint}{pq}").parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return status(StatusCode::BAD_REQUEST, "bad request path"),
    }
    let scheme = req.extensions().get::<Scheme>().map_or("http", |s| s.0);
    let headers = req.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&peer.ip().to_string()) {
        headers.append("x-forwarded-for", v);
    }
    // Set, not appended: what a client claims about the scheme and host is not passed on.
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static(scheme));
    match http::HeaderValue::from_str(&forwarded_host) {
        Ok(v) if !forwarded_host.is_empty() => headers.insert("x-forwarded-host", v),
        _ => headers.remove("x-forwarded-host"),
    };
    // A WebSocket (or other Upgrade): once the backend agrees (101), both upgraded
    // connections are spliced.
    let client_upgrade = req.headers().contains_key(http::header::UPGRADE).then(|| hyper::upgrade::on(&mut req));
    match ing.client.request(req).await {
        Ok(mut resp) => {
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS
                && let Some(client_upgrade) = client_upgrade
            {
                let backend_upgrade = hyper::upgrade::on(&mut resp);
                tokio::spawn(async move {
                    let (Ok(client), Ok(backend)) = tokio::join!(client_upgrade, backend_upgrade) else {
                        return tracing::debug!(endpoint = %endpoint, "an ingress upgrade did not complete");
                    };
                    let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                });
            }
            resp.map(Body::new)
        }
        Err(e) => {
            tracing::debug!(endpoint = %endpoint, error = %e, "ingress backend failed");
            status(StatusCode::BAD_GATEWAY, "the backend did not answer")
        }
    }
}

/// `host[:port]` or `[v6]:port` → the host (an IPv6 literal keeps its brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.split_once(':').map_or(host, |(h, _)| h)
}

/// Serves the ingress over TLS on `listener` until the task is aborted.
pub async fn serve_tls(listener: tokio::net::TcpListener, ing: Arc<Ingress>, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = axum::Router::new().fallback(handle).with_state(ing);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: say so, and keep serving.
                tracing::warn!(error = %e, "cannot accept an ingress TLS connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "ingress TLS handshake failed"),
                Err(_) => return,
            };
            let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(Scheme("https"));
                tower::ServiceExt::oneshot(app.clone(), req.map(Body::new))
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).await;
        });
    }
}

/// Serves the ingress on `listener` until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, ing: Arc<Ingress>) {
    use axum::serve::ListenerExt;
    let app = axum::Router::new().fallback(handle).with_state(ing);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
        tracing::error!(error = %e, "the ingress server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Service default/web's unnamed TCP port 80, with `endpoints`.
    fn web_port(endpoints: Vec<SocketAddrV4>) -> ServicePort {
        ServicePort {
            namespace: "default".into(),
            name: "web".into(),
            port_name: String::new(),
            protocol: super::super::model::Protocol::Tcp,
            cluster_ip: None,
            port: 80,
            node_port: None,
            load_balancer: false,
            affinity_seconds: None,
            endpoints,
        }
    }

    /// A backend on loopback: a request with `Upgrade` gets 101 and then its bytes
    /// echoed; any other gets 200 with the request's head as the body.
    async fn backend() -> SocketAddrV4 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = match listener.local_addr().expect("addr") {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        };
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let head = read_head(&mut conn).await;
                    if head.to_ascii_lowercase().contains("\r\nupgrade: ") {
                        let _ = conn
                            .write_all(
                                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
                            )
                            .await;
                        let (mut r, mut w) = conn.split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                    } else {
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
                            head.len()
                        );
                        let _ = conn.write_all(reply.as_bytes()).await;
                    }
                });
            }
        });
        addr
    }

    /// Reads up to the end of an HTTP head.
    async fn read_head(conn: &mut tokio::net::TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).await.is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    #[tokio::test]
    async fn forwarded_headers_are_set_and_upgrades_are_spliced() {
        let endpoint = backend().await;
        let ing = Ingress::new();
        let web = Backend { namespace: "default".into(), service: "web".into(), port: BackendPort::Number(80) };
        let port = web_port(vec![endpoint]);
        let route = Route { host: None, path: "/".into(), path_type: PathType::Prefix, backend: web };
        *ing.table.write() = Table::new(vec![route], vec![], vec![port]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve(listener, ing));

        // A client's own X-Forwarded-Proto is replaced; X-Forwarded-For is appended to.
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = "GET /x HTTP/1.1\r\nHost: app.example:8080\r\nX-Forwarded-Proto: https\r\n\
                       X-Forwarded-For: 10.9.9.9\r\nConnection: close\r\n\r\n";
        conn.write_all(request.as_bytes()).await.expect("write");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.expect("read");
        let seen = reply.to_ascii_lowercase();
        assert!(seen.starts_with("http/1.1 200"), "{reply}");
        assert!(seen.contains("x-forwarded-proto: http\r\n") && !seen.contains("x-forwarded-proto: https"), "{reply}");
        assert!(seen.contains("x-forwarded-host: app.example:8080\r\n"), "{reply}");
        assert!(
            seen.contains("x-forwarded-for: 10.9.9.9\r\n") && seen.contains("x-forwarded-for: 127.0.0.1\r\n"),
            "{reply}"
        );

        // An upgrade: 101 from the backend, then bytes both ways.
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        conn.write_all(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
            .await
            .expect("write");
        let head = read_head(&mut conn).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        for word in [&b"ping"[..], b"pong"] {
            conn.write_all(word).await.expect("write");
            let mut back = [0u8; 4];
            tokio::time::timeout(std::time::Duration::from_secs(5), conn.read_exact(&mut back))
                .await
                .expect("echo in time")
                .expect("echo");
            assert_eq!(&back, word);
        }
        server.abort();
    }

    fn state(ingresses: Vec<Value>) -> State {
        let mut s = State::default();
        for (i, ing) in ingresses.into_iter().enumerate() {
            s.ingresses.insert(format!("default/i{i}"), ing);
        }
        s
    }

    fn b(svc: &str, port: u16) -> Value {
        json!({"service": {"name": svc, "port": {"number": port}}})
    }

    fn name(r: Option<&Backend>) -> Option<&str> {
        r.map(|b| b.service.as_str())
    }

    #[test]
    fn host_and_path_precedence() {
        let s = state(vec![json!({
            "metadata": {"namespace": "default", "name": "i"},
            "spec": {
                "defaultBackend": b("fallback", 80),
                "rules": [
                    {"host": "a.test", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": b("a-root", 80)},
                        {"path": "/api", "pathType": "Prefix", "backend": b("a-api", 80)},
                        {"path": "/api", "pathType": "Exact", "backend": b("a-api-exact", 80)},
                    ]}},
                    {"host": "*.wild.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": b("wild", 80)}]}},
                    {"http": {"paths": [{"path": "/b", "pathType": "Prefix", "backend": b("any-b", 80)}]}},
                ],
            },
        })]);
        let (routes, defaults, skipped) = routes(&s, "rk");
        assert!(skipped.is_empty(), "{skipped:?}");
        let r = |host: &str, path: &str| name(route(&routes, &defaults, host, path)).map(String::from);
        assert_eq!(r("a.test", "/").as_deref(), Some("a-root"));
        assert_eq!(r("A.TEST", "/x").as_deref(), Some("a-root"));
        assert_eq!(r("a.test", "/api").as_deref(), Some("a-api-exact"));
        assert_eq!(r("a.test", "/api/v1").as_deref(), Some("a-api"));
        assert_eq!(r("a.test", "/apix").as_deref(), Some("a-root"), "prefixes match whole elements");
        assert_eq!(r("x.wild.test", "/").as_deref(), Some("wild"));
        assert_eq!(r("x.y.wild.test", "/").as_deref(), Some("fallback"), "a wildcard covers one label");
        assert_eq!(r("other", "/b/c").as_deref(), Some("any-b"));
        assert_eq!(r("other", "/c").as_deref(), Some("fallback"));
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("a.test:8080"), "a.test");
        assert_eq!(strip_port("a.test"), "a.test");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn backends_without_a_service_port_are_found_once() {
        let s = state(vec![
            json!({"metadata": {"namespace": "default"}, "spec": {"defaultBackend": b("gone", 80), "rules": [
                {"http": {"paths": [
                    {"path": "/a", "backend": b("web", 80)},
                    {"path": "/b", "backend": b("web", 81)},
                    {"path": "/c", "backend": b("gone", 80)},
                ]}},
            ]}}),
            json!({"metadata": {"namespace": "default"}, "spec": {"ingressClassName": "nginx", "defaultBackend": b("x", 80)}}),
        ]);
        let web = web_port(vec![]);
        let missing: Vec<String> =
            missing_backends(&s, "rk", &[web]).into_iter().map(|(k, b)| format!("{k} {b}")).collect();
        // No endpoints is not missing; another class's Ingress is not ours.
        assert_eq!(missing, ["default/i0 default/gone:80", "default/i0 default/web:81"]);
    }

    #[test]
    fn classes_and_bad_rules() {
        let s = state(vec![
            json!({"metadata": {"namespace": "default"}, "spec": {"ingressClassName": "nginx", "defaultBackend": b("x", 80)}}),
            json!({"metadata": {"namespace": "default"}, "spec": {"rules": [
                {"http": {"paths": [
                    {"path": "nope", "backend": b("x", 80)},
                    {"path": "/r", "backend": {"resource": {"kind": "Bucket", "name": "b"}}},
                    {"path": "/p", "backend": {"service": {"name": "s", "port": {"number": 70000}}}},
                    {"path": "/ok", "backend": {"service": {"name": "s", "port": {"name": "http"}}}},
                ]}},
                {"host": "h"},
                "junk",
            ]}}),
        ]);
        let (routes, defaults, skipped) = routes(&s, "rk");
        assert!(defaults.is_empty(), "another class's Ingress is not served");
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].backend.port, BackendPort::Name("http".into()));
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert_eq!(route(&routes, &defaults, "h", "/"), None);
    }
}
