//! The Kubernetes-compatible API server, served on every replica's client port next
//! to the etcd gRPC API.
//!
//! ```text
//!  HTTP request ─► http.rs (route, negotiate) ─► rest.rs (verbs: defaulting, validation,
//!                                                admission, concurrency) ─► store.rs ─► raft
//!                   │                              ├─ kinds/   per-kind defaults + validation
//!                   │                              ├─ patch.rs, apply.rs (PATCH, server-side apply)
//!                   │                              └─ selector.rs (label/field selectors)
//!                   ├─ watch.rs   chunked watch streams from the store's watch hub
//!                   ├─ table.rs   server-side printing (kubectl's columns)
//!                   ├─ proxy.rs   logs, exec, port-forward through node agents (spdy.rs: kubectl's
//!                   │             SPDY port-forward), metrics.k8s.io
//!                   └─ discovery.rs, openapi.rs, metrics.rs
//! ```
//!
//! Every request first passes audit.rs (the audit log) and rbac.rs: who it is (a client
//! certificate, a token from tokens.rs, impersonation), then whether RBAC (and, for
//! nodes, nodeauth.rs) allows it.
//!
//! Start reading at [`rest::Api`]; [`router`] is the HTTP surface.

pub mod alloc;
pub mod audit;
pub mod body;
pub mod bootstrap;
pub mod discovery;
pub mod encryption;
pub mod error;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod meta;
pub mod metrics;
pub mod nodeauth;
pub mod openapi;
pub mod proxy;
pub mod query;
pub mod rbac;
pub mod registry;
pub mod rest;
pub mod review;
pub mod store;
pub mod tokens;
pub mod watch;

pub mod apply;
pub mod kinds;
pub mod patch;
pub mod protobuf;
pub mod schema;
pub mod selector;
pub mod spdy;
pub mod table;

#[cfg(test)]
mod tests;

use ::http::{HeaderValue, StatusCode, header};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// Everything the HTTP handlers share.
pub struct ApiServer {
    pub api: rest::Api,
    pub metrics: metrics::Metrics,
    pub watch_settings: watch::WatchSettings,
    /// Address clients should use (shown in `/api`'s serverAddressByClientCIDRs).
    pub advertise: String,
    /// Where every request is recorded, unless audit logging is off.
    pub audit: Option<Arc<audit::AuditLog>>,
    /// This replica's certificates, for `/metrics` (none with `--insecure-dev`).
    pub certificates: Vec<Arc<crate::pki::Credentials>>,
}

impl ApiServer {
    pub fn new(api: rest::Api, advertise: String) -> Arc<Self> {
        Self::with_audit(api, advertise, None, vec![])
    }

    pub fn with_audit(
        api: rest::Api,
        advertise: String,
        audit: Option<Arc<audit::AuditLog>>,
        certificates: Vec<Arc<crate::pki::Credentials>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            api,
            metrics: Default::default(),
            watch_settings: Default::default(),
            advertise,
            audit,
            certificates,
        })
    }
}

fn plain(code: StatusCode, body: &'static str) -> Response {
    let mut r = (code, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// `/readyz`, `/healthz`: ready once this replica can confirm it serves current
/// data (a ReadIndex succeeds) and the bootstrap namespaces and default roles exist. (`/livez` only
/// says the process answers.)
async fn ready(State(server): State<Arc<ApiServer>>) -> Response {
    if server.api.store.raft.read_index().await.is_err() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "[-]etcd failed: no quorum\nreadyz check failed");
    }
    // As kube-apiserver's bootstrap-controller hook: not ready before the namespaces
    // every cluster has exist (requests in `default` would get 404s).
    let namespaces = registry::lookup("namespaces");
    let bootstrapped = match namespaces {
        Some(res) => server.api.get(res, None, "default", store::Freshness::Any).await.is_ok(),
        None => false,
    };
    if !bootstrapped {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]poststarthook/bootstrap-namespaces failed: not finished\nreadyz check failed",
        );
    }
    // Nor before the default roles exist (the last one made stands for all): a token's
    // first request would be refused discovery.
    let roles_made = match registry::lookup("clusterrolebindings") {
        Some(res) => server.api.get(res, None, "system:public-info-viewer", store::Freshness::Any).await.is_ok(),
        None => false,
    };
    if roles_made {
        plain(StatusCode::OK, "ok")
    } else {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]poststarthook/rbac/bootstrap-roles failed: not finished\nreadyz check failed",
        )
    }
}

/// The API server's routes.
pub fn router(server: Arc<ApiServer>) -> Router {
    let router = Router::new()
        // kube-apiserver answers these with and without a trailing slash (the Python
        // client asks for `/version/`).
        .route("/version", get(version))
        .route("/version/", get(version))
        .route("/api", get(core_root))
        .route("/api/", get(core_root))
        .route("/apis", get(groups_root))
        .route("/apis/", get(groups_root))
        .route(bootstrap::NODE_CERTIFICATE_PATH, axum::routing::post(bootstrap::node_certificate))
        .route(bootstrap::REPLICA_CREDENTIALS_PATH, axum::routing::post(bootstrap::replica_credentials))
        .route("/livez", get(|| async { plain(StatusCode::OK, "ok") }))
        .route("/readyz", get(ready))
        .route("/healthz", get(ready))
        .route(
            "/metrics",
            get(|State(s): State<Arc<ApiServer>>| async move {
                let mut text = s.metrics.render(&s.api.store.raft);
                if let Some(audit) = &s.audit {
                    text.push_str(
                        "# HELP rk_audit_events_dropped_total Audit events dropped because the writer was behind.\n",
                    );
                    text.push_str("# TYPE rk_audit_events_dropped_total counter\n");
                    text.push_str(&format!("rk_audit_events_dropped_total {}\n", audit.dropped()));
                }
                text.push_str(&crate::pki::render_metrics(&s.certificates));
                let mut r = text.into_response();
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
                r
            }),
        )
        .route("/openapi/v2", get(openapi::v2))
        .route("/openapi/v3", get(openapi::v3_index))
        .route("/openapi/v3/{*rest}", get(openapi::v3_document))
        .route("/apis/metrics.k8s.io/{*rest}", get(proxy::metrics_api))
        .route("/apis/authorization.k8s.io", get(review::handle))
        .route("/apis/authorization.k8s.io/{*rest}", axum::routing::any(review::handle))
        .route("/apis/authentication.k8s.io", get(review::handle))
        .route("/apis/authentication.k8s.io/{*rest}", axum::routing::any(review::handle))
        .route("/api/{*rest}", axum::routing::any(http::dispatch))
        .route("/apis/{*rest}", axum::routing::any(http::dispatch))
        .with_state(server.clone())
        // Inside the audit layer, so a refused request is audited too.
        .layer(axum::middleware::from_fn_with_state(server.api.clone(), rbac::layer));
    let router = match &server.audit {
        Some(log) => router.layer(axum::middleware::from_fn_with_state(log.clone(), audit::layer)),
        None => router,
    };
    router.layer(axum::middleware::map_response(no_cache))
}

async fn version() -> axum::Json<serde_json::Value> {
    axum::Json(discovery::version())
}

async fn core_root(State(s): State<Arc<ApiServer>>, req: Request) -> Response {
    discovery::root(req.headers(), true, &s.advertise)
}

async fn groups_root(State(s): State<Arc<ApiServer>>, req: Request) -> Response {
    discovery::root(req.headers(), false, &s.advertise)
}

/// Every answer says `Cache-Control: no-cache, private`, as kube-apiserver's do:
/// kubectl's HTTP cache (and the version-picking kubectl wrapper) would otherwise
/// reuse `/version` and discovery for an hour.
async fn no_cache(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    resp
}
