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
//! backend without ready endpoints: 503. TLS is not served (plain HTTP only).

use super::model::{ServicePort, State};
use axum::body::Body;
use axum::extract::{ConnectInfo, State as AxState};
use http::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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

/// The routes and default backends of the Ingresses of `class` (or without a class,
/// when `class` is the default), and why some were skipped.
pub fn routes(state: &State, class: &str) -> (Vec<Route>, Vec<Backend>, Vec<String>) {
    let mut routes = Vec::new();
    let mut defaults = Vec::new();
    let mut skipped = Vec::new();
    for (key, ing) in &state.ingresses {
        let spec = &ing["spec"];
        let ing_class = spec["ingressClassName"]
            .as_str()
            .or_else(|| ing.pointer("/metadata/annotations/kubernetes.io~1ingress.class").and_then(Value::as_str));
        if ing_class.is_some_and(|c| c != class) {
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
        self.ports
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
        Arc::new(Self {
            table: RwLock::new(Table::default()),
            next: AtomicUsize::new(0),
            client: HyperClient::builder(TokioExecutor::new()).build(http),
        })
    }
}

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
    if let Ok(v) = http::HeaderValue::from_str(&peer.ip().to_string()) {
        req.headers_mut().append("x-forwarded-for", v);
    }
    match ing.client.request(req).await {
        Ok(resp) => resp.map(Body::new),
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

/// Serves the ingress on `listener` until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, ing: Arc<Ingress>) {
    let app = axum::Router::new().fallback(handle).with_state(ing);
    if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
        tracing::error!(error = %e, "the ingress server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
