//! A small JSON client for the rk API: the handful of calls an agent makes (create,
//! get, put, merge-patch, delete, list, watch), over one pooled HTTP connection set.
//! Kept small on purpose: a hollow-node process runs thousands of agents on it.
//!
//! The client knows every control-plane replica it was given and talks to one at a
//! time; when that one cannot be reached (connect error, reset, timeout) the next
//! call goes to the next replica. Any replica serves every request (writes are
//! forwarded to the leader), so failing over needs no leader discovery.

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a Kubernetes Status.
    #[error("{reason}: {message}")]
    Api { code: u16, reason: String, message: String },
    #[error("cannot reach the API server at {server}: {detail}")]
    Transport { server: String, detail: String },
    #[error("the API server sent something that is not JSON: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn code(&self) -> u16 {
        match self {
            ClientError::Api { code, .. } => *code,
            _ => 0,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == 404
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, ClientError::Api { code: 409, reason, .. } if reason == "AlreadyExists")
    }

    pub fn is_conflict(&self) -> bool {
        self.code() == 409
    }
}

/// Resources the agent touches: plural → (API path prefix, namespaced).
fn base(resource: &str) -> (&'static str, bool) {
    match resource {
        "nodes" => ("/api/v1", false),
        "leases" => ("/apis/coordination.k8s.io/v1", true),
        "ingresses" => ("/apis/networking.k8s.io/v1", true),
        "pods" | "configmaps" | "secrets" | "events" | "services" | "endpoints" | "serviceaccounts" => {
            ("/api/v1", true)
        }
        _ => ("/api/v1", true),
    }
}

pub fn path(resource: &str, ns: Option<&str>, name: Option<&str>) -> String {
    let (prefix, namespaced) = base(resource);
    let mut p = String::from(prefix);
    if namespaced && let Some(ns) = ns {
        p.push_str(&format!("/namespaces/{ns}"));
    }
    p.push('/');
    p.push_str(resource);
    if let Some(n) = name {
        p.push('/');
        p.push_str(n);
    }
    p
}

type Body = http_body_util::Full<Bytes>;

/// The API client. Cheap to clone; clones share the choice of replica.
#[derive(Clone)]
pub struct Client {
    servers: Arc<Vec<String>>,
    /// Index into `servers` of the replica in use.
    current: Arc<AtomicUsize>,
    http: HyperClient<HttpsConnector<HttpConnector>, Body>,
    user_agent: String,
    /// `Authorization: Bearer …`, when the credentials are a token.
    authorization: Option<http::HeaderValue>,
}

/// An error with its causes: hyper's say only "client error (Connect)" at the top, and
/// the cause (a refused connection, a certificate that does not verify) is what helps.
fn error_chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source()).map(|e| e.to_string()).collect::<Vec<_>>().join(": ")
}

/// Splits a `--server` value (`http://a:2379,http://b:2379`) into base URLs.
pub fn parse_servers(servers: &str) -> Vec<String> {
    servers.split(',').map(|s| s.trim().trim_end_matches('/').to_string()).filter(|s| !s.is_empty()).collect()
}

impl Client {
    /// A client for the replicas in `servers` (comma-separated base URLs): `https://`
    /// ones with `credentials` (a kubeconfig's CA, client certificate or token),
    /// `http://` ones (`--insecure-dev` replicas) in plain.
    pub fn new(
        servers: &str,
        user_agent: &str,
        credentials: Option<&crate::kubeconfig::Credentials>,
    ) -> Result<Self, ClientError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.enforce_http(false);
        let mut tls = match credentials {
            Some(c) => (*c.tls).clone(),
            // No CA to verify with: `https://` servers then fail to verify, saying so.
            None => rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| ClientError::Transport { server: servers.to_string(), detail: e.to_string() })?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        // hyper-rustls offers the HTTP versions enabled below, and refuses a config that
        // already names some.
        tls.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        let authorization = credentials
            .and_then(|c| c.token.as_ref())
            .and_then(|t| http::HeaderValue::from_str(&format!("Bearer {t}")).ok());
        let http =
            HyperClient::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        let mut list = parse_servers(servers);
        if list.is_empty() {
            // Requests then fail with a transport error naming the empty server.
            list.push(String::new());
        }
        Ok(Self {
            servers: Arc::new(list),
            current: Arc::new(AtomicUsize::new(0)),
            http,
            user_agent: user_agent.to_string(),
            authorization,
        })
    }

    /// The replica requests go to now.
    pub fn server(&self) -> String {
        let i = self.current.load(Ordering::Relaxed) % self.servers.len();
        self.servers[i].clone()
    }

    /// Moves on from `failed` to the next replica, unless another caller already did.
    fn fail_over(&self, failed: &str) {
        let i = self.current.load(Ordering::Relaxed);
        if self.servers.len() > 1 && self.servers[i % self.servers.len()] == failed {
            let _ =
                self.current.compare_exchange(i, (i + 1) % self.servers.len(), Ordering::Relaxed, Ordering::Relaxed);
            tracing::warn!(from = failed, to = %self.server(), "API server unreachable; trying the next replica");
        }
    }

    fn transport(&self, server: &str, detail: impl ToString) -> ClientError {
        self.fail_over(server);
        ClientError::Transport { server: server.to_string(), detail: detail.to_string() }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
        let server = self.server();
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{server}{path}"))
            .header("content-type", content_type)
            .header("accept", "application/json")
            .header("user-agent", &self.user_agent);
        if let Some(auth) = &self.authorization {
            req = req.header(http::header::AUTHORIZATION, auth);
        }
        let req = req
            .body(Body::new(Bytes::from(bytes)))
            .map_err(|e| ClientError::Transport { server: server.clone(), detail: e.to_string() })?;
        self.http.request(req).await.map_err(|e| self.transport(&server, error_chain(&e)))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let server = self.server();
        let resp = tokio::time::timeout(Duration::from_secs(30), self.send(method, path, content_type, body))
            .await
            .map_err(|_| self.transport(&server, "timed out"))??;
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map_err(|e| self.transport(&server, e))?.to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))?
        };
        if status.is_success() {
            return Ok(value);
        }
        Err(api_error(status, &value))
    }

    pub async fn get(&self, resource: &str, ns: Option<&str>, name: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, &path(resource, ns, Some(name)), "application/json", None).await
    }

    pub async fn list(&self, resource: &str, ns: Option<&str>, query: &str) -> Result<Value, ClientError> {
        let p = format!("{}?{query}", path(resource, ns, None));
        self.call(Method::GET, &p, "application/json", None).await
    }

    pub async fn create(&self, resource: &str, ns: Option<&str>, obj: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, &path(resource, ns, None), "application/json", Some(obj)).await
    }

    /// POST `body` to `path` (an API path outside the resources, such as
    /// `/rk/v1/node-certificate`).
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, path, "application/json", Some(body)).await
    }

    /// POST to a subresource (`serviceaccounts/<name>/token`, …).
    pub async fn create_subresource(
        &self,
        resource: &str,
        ns: Option<&str>,
        name: &str,
        sub: &str,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        let p = format!("{}/{sub}", path(resource, ns, Some(name)));
        self.call(Method::POST, &p, "application/json", Some(obj)).await
    }

    pub async fn put(&self, resource: &str, ns: Option<&str>, name: &str, obj: &Value) -> Result<Value, ClientError> {
        self.call(Method::PUT, &path(resource, ns, Some(name)), "application/json", Some(obj)).await
    }

    pub async fn patch_merge(
        &self,
        resource: &str,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClientError> {
        self.call(Method::PATCH, &path(resource, ns, Some(name)), "application/merge-patch+json", Some(patch)).await
    }

    pub async fn patch_status_merge(
        &self,
        resource: &str,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClientError> {
        let p = format!("{}/status", path(resource, ns, Some(name)));
        self.call(Method::PATCH, &p, "application/merge-patch+json", Some(patch)).await
    }

    pub async fn delete(
        &self,
        resource: &str,
        ns: Option<&str>,
        name: &str,
        options: &Value,
    ) -> Result<Value, ClientError> {
        self.call(Method::DELETE, &path(resource, ns, Some(name)), "application/json", Some(options)).await
    }

    /// Starts a watch; yields `(type, object)` until the server ends the stream.
    pub async fn watch(
        &self,
        resource: &str,
        ns: Option<&str>,
        query: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<(String, Value), ClientError>>, ClientError> {
        let p = format!("{}?watch=true&allowWatchBookmarks=true&{query}", path(resource, ns, None));
        let resp = self.send(Method::GET, &p, "application/json", None).await?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(api_error(status, &value));
        }
        let server = self.server();
        let body = resp.into_body().into_data_stream();
        let stream =
            futures::stream::unfold((body, Vec::<u8>::new(), server), |(mut body, mut buf, server)| async move {
                loop {
                    if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let parsed = serde_json::from_slice::<Value>(&line)
                            .map_err(|e| ClientError::Decode(e.to_string()))
                            .map(|mut v| (v["type"].as_str().unwrap_or("").to_string(), v["object"].take()));
                        return Some((parsed, (body, buf, server)));
                    }
                    match body.next().await {
                        Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                        Some(Err(e)) => {
                            return Some((
                                Err(ClientError::Transport { server: server.clone(), detail: e.to_string() }),
                                (body, Vec::new(), server),
                            ));
                        }
                        None => return None,
                    }
                }
            });
        Ok(stream.boxed())
    }
}

fn api_error(status: StatusCode, value: &Value) -> ClientError {
    ClientError::Api {
        code: status.as_u16(),
        reason: value["reason"].as_str().unwrap_or(status.canonical_reason().unwrap_or("Error")).to_string(),
        message: value["message"].as_str().map(String::from).unwrap_or_else(|| value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(path("pods", Some("default"), Some("p")), "/api/v1/namespaces/default/pods/p");
        assert_eq!(path("nodes", Some("ignored"), Some("n1")), "/api/v1/nodes/n1");
        assert_eq!(
            path("leases", Some("kube-node-lease"), Some("n1")),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
        );
        assert_eq!(path("pods", None, None), "/api/v1/pods");
    }
}
