//! The REST front: URL routing, content negotiation (JSON, YAML, Table, protobuf
//! bodies), and the mapping of HTTP verbs onto [`Api`](super::rest::Api).
//!
//! ```text
//! /api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
//! /apis/{group}/{version}[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
//! ```

use super::error::ApiError;
use super::query::{self, DeleteOptions, ListOptions, WriteOptions};
use super::registry::{self, Resource, Subresource};
use super::rest::{PatchKind, ScaleChange, Target};
use super::store::Stored;
use super::watch::{self, Render};
use super::{ApiServer, body, table};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest request body accepted (Kubernetes' default).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// A parsed API path.
#[derive(Debug, PartialEq)]
pub struct Route {
    pub res: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<Subresource>,
    /// The legacy `/watch/` path prefix.
    pub watch: bool,
}

/// What a path names: a discovery document of one group version, or a resource.
#[derive(Debug, PartialEq)]
pub enum PathTarget {
    GroupVersion(&'static str, &'static str),
    Resource(Route),
}

pub fn parse_path(path: &str) -> Result<PathTarget, ApiError> {
    let not_found = || ApiError::NoSuchResource;
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found()),
    };
    let known = registry::RESOURCES.iter().find(|r| r.group == group && r.version == version);
    let Some(any) = known else { return Err(not_found()) };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let res_of = |plural: &str| registry::by_plural(group, version, plural).ok_or_else(not_found);
    let sub_of = |res: &Resource, s: &str| -> Result<Subresource, ApiError> {
        Subresource::from_name(s).filter(|s| res.has(*s)).ok_or_else(not_found)
    };
    let route = match rest {
        [] => return Ok(PathTarget::GroupVersion(any.group, any.version)),
        ["namespaces", ns, plural] if registry::by_plural(group, version, plural).is_some() => {
            Route { res: res_of(plural)?, namespace: Some(ns.to_string()), name: None, sub: None, watch }
        }
        ["namespaces", ns, plural, name] => Route {
            res: res_of(plural)?,
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
            sub: None,
            watch,
        },
        ["namespaces", ns, plural, name, sub] => {
            let res = res_of(plural)?;
            Route {
                res,
                namespace: Some(ns.to_string()),
                name: Some(name.to_string()),
                sub: Some(sub_of(res, sub)?),
                watch,
            }
        }
        [plural] => Route { res: res_of(plural)?, namespace: None, name: None, sub: None, watch },
        [plural, name] => {
            Route { res: res_of(plural)?, namespace: None, name: Some(name.to_string()), sub: None, watch }
        }
        [plural, name, sub] => {
            let res = res_of(plural)?;
            Route { res, namespace: None, name: Some(name.to_string()), sub: Some(sub_of(res, sub)?), watch }
        }
        _ => return Err(not_found()),
    };
    if route.res.namespaced && route.name.is_some() && route.namespace.is_none() {
        // A namespaced object needs its namespace in the path.
        return Err(not_found());
    }
    if !route.res.namespaced && route.namespace.is_some() && route.res.plural != "namespaces" {
        return Err(not_found());
    }
    Ok(PathTarget::Resource(route))
}

/// What the client accepts in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    Yaml,
    Table(table::IncludeObject),
}

pub fn accept(headers: &HeaderMap, q: &std::collections::HashMap<String, String>) -> Result<Accept, ApiError> {
    let raw = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let include = match q.get("includeObject").map(String::as_str) {
        Some("Object") => table::IncludeObject::Object,
        Some("None") => table::IncludeObject::None,
        _ => table::IncludeObject::Metadata,
    };
    let mut fallback = None;
    for part in raw.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        let params: Vec<(&str, &str)> = params.filter_map(|p| p.split_once('=')).collect();
        let as_ = params.iter().find(|(k, _)| *k == "as").map(|(_, v)| *v);
        let g = params.iter().find(|(k, _)| *k == "g").map(|(_, v)| *v);
        match (media, as_) {
            ("application/json", Some("Table")) if g == Some("meta.k8s.io") => return Ok(Accept::Table(include)),
            ("application/json", None) | ("*/*", _) | ("application/*", _) => {
                fallback.get_or_insert(Accept::Json);
            }
            ("application/yaml", None) => {
                fallback.get_or_insert(Accept::Yaml);
            }
            _ => {}
        }
    }
    fallback.ok_or_else(|| {
        ApiError::NotAcceptable(format!(
            "only the following media types are accepted: application/json, application/yaml, \
             application/json;as=Table;v=v1;g=meta.k8s.io (got {raw})"
        ))
    })
}

/// Content type of server-side printed responses.
pub const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn respond(code: StatusCode, accept: Accept, value: &Value, warnings: &[String]) -> Response {
    let is_table = value.get("kind").and_then(Value::as_str) == Some("Table");
    let (ct, bytes) = match accept {
        Accept::Yaml => {
            ("application/yaml", serde_norway::to_string(value).map(String::into_bytes).unwrap_or_default())
        }
        Accept::Table(_) if is_table => (TABLE_CONTENT_TYPE, serde_json::to_vec(value).unwrap_or_default()),
        _ => ("application/json", serde_json::to_vec(value).unwrap_or_default()),
    };
    let mut resp = (code, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    add_warnings(&mut resp, warnings);
    resp
}

fn add_warnings(resp: &mut Response, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
}

fn json_bytes(code: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = (code, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The field manager of a request: `fieldManager`, or the user agent's program name
/// (Kubernetes' default).
fn manager(headers: &HeaderMap, opts: &WriteOptions) -> String {
    if let Some(m) = &opts.field_manager {
        return m.clone();
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
    ua.split('/').next().unwrap_or("unknown").chars().take(128).collect()
}

/// Renders one stored object for the client.
fn render_one(res: &Resource, stored: &Stored, accept: Accept) -> Result<Response, ApiError> {
    match accept {
        Accept::Json => Ok(json_bytes(StatusCode::OK, stored.json()?)),
        Accept::Yaml => Ok(respond(StatusCode::OK, accept, &stored.object()?, &[])),
        Accept::Table(include) => {
            let t = table::table_for(res.kind, &[stored.object()?], super::meta::now_secs(), include);
            Ok(respond(StatusCode::OK, accept, &with_rv(t, stored.rev), &[]))
        }
    }
}

fn with_rv(mut table: Value, rev: i64) -> Value {
    table["metadata"]["resourceVersion"] = json!(rev.to_string());
    table
}

fn render_value(res: &Resource, code: StatusCode, obj: &Value, accept: Accept, warnings: &[String]) -> Response {
    match accept {
        Accept::Table(include) => {
            let t = table::table_for(res.kind, std::slice::from_ref(obj), super::meta::now_secs(), include);
            respond(code, accept, &t, warnings)
        }
        _ => respond(code, accept, obj, warnings),
    }
}

/// Reads the request body within the size limit.
async fn read_body(req: Request) -> Result<(HeaderMap, bytes::Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge(format!("Request entity too large: limit is {MAX_BODY}")))?;
    Ok((parts.headers, bytes))
}

/// The entry point for every `/api/...` and `/apis/...` request.
pub async fn dispatch(State(server): State<Arc<ApiServer>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let q = query::parse(req.uri().query());
    let started = std::time::Instant::now();
    let (resp, resource, verb) = match handle(&server, req, &method, &path, &q).await {
        Ok((resp, resource, verb)) => (resp, resource, verb),
        Err((e, resource, verb)) => (e.into_response(), resource, verb),
    };
    server.metrics.observe(verb, resource, resp.status().as_u16(), started.elapsed());
    resp
}

type Handled = Result<(Response, &'static str, &'static str), (ApiError, &'static str, &'static str)>;

async fn handle(
    server: &ApiServer,
    req: Request,
    method: &Method,
    path: &str,
    q: &std::collections::HashMap<String, String>,
) -> Handled {
    let target = parse_path(path).map_err(|e| (e, "", "unknown"))?;
    let route = match target {
        PathTarget::GroupVersion(group, version) => {
            return Ok((super::discovery::resource_list_response(group, version), "", "discovery"));
        }
        PathTarget::Resource(r) => r,
    };
    let resource = route.res.plural;
    let verb = verb_of(method, &route, q);
    let result = serve(server, req, method, route, q).await;
    result.map(|r| (r, resource, verb)).map_err(|e| (e, resource, verb))
}

fn verb_of(method: &Method, route: &Route, q: &std::collections::HashMap<String, String>) -> &'static str {
    let watching = route.watch || q.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method.as_str(), route.name.is_some()) {
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

async fn serve(
    server: &ApiServer,
    req: Request,
    method: &Method,
    route: Route,
    q: &std::collections::HashMap<String, String>,
) -> Result<Response, ApiError> {
    let api = &server.api;
    let res = route.res;
    let ns = route.namespace.as_deref();
    let name = route.name.clone();
    let headers = req.headers().clone();
    let accept = accept(&headers, q)?;
    match (method, name, route.sub) {
        // --- collections ---
        (&Method::GET, None, None) => {
            let opts = ListOptions::from_query(q)?;
            if opts.watch || route.watch {
                let render = match accept {
                    Accept::Table(i) => Render::Table(i),
                    _ => Render::Object,
                };
                let rx = watch::start(api, res, ns, &opts, render, &server.watch_settings).await?;
                let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
                let mut resp = Response::new(Body::from_stream(stream));
                let ct = if matches!(render, Render::Table(_)) { TABLE_CONTENT_TYPE } else { "application/json" };
                resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
                return Ok(resp);
            }
            let freshness = query::freshness(q)?;
            let result = api.list(res, ns, &opts, freshness).await?;
            list_response(res, result, accept)
        }
        (&Method::POST, None, None) => {
            let opts = WriteOptions::from_query(q)?;
            let manager = manager(&headers, &opts);
            let (headers, bytes) = read_body(req).await?;
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let obj = body::decode(ct, &bytes)?;
            let out = api.create(res, ns.or(Some("default")).filter(|_| res.namespaced), obj, &opts, &manager).await?;
            let code = if opts.dry_run { StatusCode::OK } else { StatusCode::CREATED };
            Ok(render_value(res, code, &out.object, accept, &out.warnings))
        }
        (&Method::DELETE, None, None) => {
            let list = ListOptions::from_query(q)?;
            let mut opts = DeleteOptions::from_query(q)?;
            let (_, bytes) = read_body(req).await?;
            if !bytes.is_empty() {
                opts.merge_body(&body::parse_yaml_or_json(&bytes)?)?;
            }
            let deleted = api.delete_collection(res, ns, &list, &opts).await?;
            let list = json!({
                "kind": res.list_kind(),
                "apiVersion": res.api_version(),
                "metadata": {},
                "items": deleted,
            });
            Ok(respond(StatusCode::OK, Accept::Json, &list, &[]))
        }
        // --- single objects ---
        (&Method::GET, Some(name), None) => {
            let freshness = query::freshness(q)?;
            let stored = api.get(res, ns, &name, freshness).await?;
            render_one(res, &stored, accept)
        }
        (&Method::PUT, Some(name), None) | (&Method::PUT, Some(name), Some(Subresource::Status)) => {
            let opts = WriteOptions::from_query(q)?;
            let manager = manager(&headers, &opts);
            let target = if route.sub == Some(Subresource::Status) { Target::Status } else { Target::Main };
            let (headers, bytes) = read_body(req).await?;
            let obj = body::decode(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &bytes)?;
            let out = api.update(res, ns, &name, obj, target, &opts, &manager).await?;
            let code = if out.created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(render_value(res, code, &out.object, accept, &out.warnings))
        }
        (&Method::PATCH, Some(name), None) | (&Method::PATCH, Some(name), Some(Subresource::Status)) => {
            let opts = WriteOptions::from_query(q)?;
            let manager = manager(&headers, &opts);
            let target = if route.sub == Some(Subresource::Status) { Target::Status } else { Target::Main };
            let (headers, bytes) = read_body(req).await?;
            let kind = patch_kind(&headers)?;
            let out = api.patch(res, ns, &name, kind, &bytes, target, &opts, &manager).await?;
            let code = if out.created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(render_value(res, code, &out.object, accept, &out.warnings))
        }
        (&Method::DELETE, Some(name), None) => {
            let mut opts = DeleteOptions::from_query(q)?;
            let (_, bytes) = read_body(req).await?;
            if !bytes.is_empty() {
                opts.merge_body(&body::parse_yaml_or_json(&bytes)?)?;
            }
            let (obj, gone) = api.delete_reporting(res, ns, &name, &opts).await?;
            Ok(respond(StatusCode::OK, Accept::Json, &deleted_answer(res, obj, gone), &[]))
        }
        // --- subresources ---
        (&Method::GET, Some(name), Some(Subresource::Status)) => {
            let stored = api.get(res, ns, &name, query::freshness(q)?).await?;
            render_one(res, &stored, accept)
        }
        (&Method::GET, Some(name), Some(Subresource::Scale)) => {
            let stored = api.get(res, ns, &name, query::freshness(q)?).await?;
            let scale = super::rest::Api::scale_of(&stored.object()?);
            Ok(respond(StatusCode::OK, Accept::Json, &scale, &[]))
        }
        (&Method::PUT, Some(name), Some(Subresource::Scale)) => {
            let opts = WriteOptions::from_query(q)?;
            let manager = manager(&headers, &opts);
            let (headers, bytes) = read_body(req).await?;
            let obj = body::decode(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &bytes)?;
            let scale = api.update_scale(res, ns, &name, ScaleChange::Replace(&obj), &opts, &manager).await?;
            Ok(respond(StatusCode::OK, Accept::Json, &scale, &[]))
        }
        (&Method::PATCH, Some(name), Some(Subresource::Scale)) => {
            let opts = WriteOptions::from_query(q)?;
            let manager = manager(&headers, &opts);
            let (headers, bytes) = read_body(req).await?;
            let kind = patch_kind(&headers)?;
            if kind == PatchKind::Apply {
                return Err(ApiError::UnsupportedMediaType("server-side apply is not supported on scale".into()));
            }
            let scale = api.update_scale(res, ns, &name, ScaleChange::Patch(kind, &bytes), &opts, &manager).await?;
            Ok(respond(StatusCode::OK, Accept::Json, &scale, &[]))
        }
        (&Method::POST, Some(name), Some(Subresource::Binding)) => {
            let opts = WriteOptions::from_query(q)?;
            let manager = manager(&headers, &opts);
            let (headers, bytes) = read_body(req).await?;
            let binding = body::decode(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &bytes)?;
            let status = api.bind(ns, &name, &binding, &opts, &manager).await?;
            Ok(respond(StatusCode::CREATED, Accept::Json, &status, &[]))
        }
        (&Method::POST, Some(name), Some(Subresource::Token)) => {
            let (headers, bytes) = read_body(req).await?;
            let request = body::decode(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &bytes)?;
            let answer = super::tokens::issue(api, ns.unwrap_or("default"), &name, &request).await?;
            Ok(respond(StatusCode::CREATED, Accept::Json, &answer, &[]))
        }
        (&Method::POST, Some(name), Some(Subresource::Eviction)) => {
            let (headers, bytes) = read_body(req).await?;
            let eviction = body::decode(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &bytes)?;
            let mut opts = DeleteOptions::default();
            if let Some(d) = eviction.get("deleteOptions") {
                opts.merge_body(d)?;
            }
            api.delete(res, ns, &name, &opts).await?;
            let status =
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
            Ok(respond(StatusCode::CREATED, Accept::Json, &status, &[]))
        }
        (&Method::PUT, Some(name), Some(Subresource::Finalize)) => {
            let opts = WriteOptions::from_query(q)?;
            let manager = manager(&headers, &opts);
            let (headers, bytes) = read_body(req).await?;
            let obj = body::decode(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &bytes)?;
            let finalizers = obj.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            let out = api
                .guaranteed_update(res, None, &name, Target::Main, &opts, &manager, false, |live| {
                    let mut new = live.cloned().ok_or_else(|| ApiError::not_found(res, &name))?;
                    new["spec"]["finalizers"] = finalizers.clone();
                    Ok((new, false))
                })
                .await?;
            Ok(respond(StatusCode::OK, Accept::Json, &out.object, &[]))
        }
        (&Method::GET, Some(name), Some(Subresource::Log)) => {
            super::proxy::logs(api, ns.unwrap_or("default"), &name, req.uri().query()).await
        }
        (&Method::GET | &Method::POST, Some(name), Some(Subresource::Exec)) => {
            super::proxy::remote_command(api, ns.unwrap_or("default"), &name, req, super::proxy::RemoteCommand::Exec)
                .await
        }
        (&Method::GET | &Method::POST, Some(name), Some(Subresource::Attach)) => {
            super::proxy::remote_command(api, ns.unwrap_or("default"), &name, req, super::proxy::RemoteCommand::Attach)
                .await
        }
        (&Method::GET | &Method::POST, Some(name), Some(Subresource::PortForward)) => {
            super::proxy::port_forward(api, ns.unwrap_or("default"), &name, req).await
        }
        _ => Err(ApiError::MethodNotAllowed(format!("{method} is not supported on this resource path"))),
    }
}

fn patch_kind(headers: &HeaderMap) -> Result<PatchKind, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    PatchKind::from_content_type(ct).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
             application/strategic-merge-patch+json (got {ct:?})"
        ))
    })
}

/// A list response: items spliced as stored bytes, so a large list is not re-parsed.
fn list_response(res: &Resource, result: super::rest::ListResult, accept: Accept) -> Result<Response, ApiError> {
    let mut meta = json!({ "resourceVersion": result.page.revision.to_string() });
    if let Some(c) = &result.continue_token {
        meta["continue"] = json!(c);
        if let Some(r) = result.page.remaining {
            meta["remainingItemCount"] = json!(r);
        }
    }
    match accept {
        Accept::Table(include) => {
            let objects: Vec<Value> = result.page.items.iter().map(Stored::object).collect::<Result<_, _>>()?;
            let mut t = table::table_for(res.kind, &objects, super::meta::now_secs(), include);
            t["metadata"] = meta;
            Ok(respond(StatusCode::OK, accept, &t, &[]))
        }
        Accept::Yaml => {
            let items: Vec<Value> = result.page.items.iter().map(Stored::object).collect::<Result<_, _>>()?;
            let list =
                json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": meta, "items": items});
            Ok(respond(StatusCode::OK, accept, &list, &[]))
        }
        Accept::Json => {
            let mut out = Vec::with_capacity(result.page.items.iter().map(|s| s.raw.len() + 32).sum::<usize>() + 256);
            out.extend_from_slice(b"{\"kind\":");
            out.extend_from_slice(serde_json::to_string(&res.list_kind()).unwrap_or_default().as_bytes());
            out.extend_from_slice(b",\"apiVersion\":");
            out.extend_from_slice(serde_json::to_string(&res.api_version()).unwrap_or_default().as_bytes());
            out.extend_from_slice(b",\"metadata\":");
            out.extend_from_slice(meta.to_string().as_bytes());
            out.extend_from_slice(b",\"items\":[");
            for (i, item) in result.page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&item.json()?);
            }
            out.extend_from_slice(b"]}");
            Ok(json_bytes(StatusCode::OK, out))
        }
    }
}

use tokio_stream::StreamExt as _;

/// What a DELETE answers, as kube-apiserver does: an object still waiting for its
/// finalizers or grace period comes back as it now is; one that is gone comes back
/// as a `Success` Status naming it, except for the kinds whose registries return
/// the deleted object itself (pods, services, service accounts, namespaces).
fn deleted_answer(res: &Resource, obj: Value, gone: bool) -> Value {
    const RETURN_DELETED_OBJECT: &[&str] = &["Pod", "Service", "ServiceAccount", "Namespace"];
    if !gone || RETURN_DELETED_OBJECT.contains(&res.kind) {
        return obj;
    }
    let meta = |field: &str| obj.pointer(&format!("/metadata/{field}")).cloned().unwrap_or(Value::Null);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        // kube-apiserver puts the resource (plural) in `kind` here.
        "details": {"name": meta("name"), "group": res.group, "kind": res.plural, "uid": meta("uid")},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Route {
        match parse_path(path).unwrap() {
            PathTarget::Resource(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths() {
        let r = route("/api/v1/namespaces/default/pods/web-1/status");
        assert_eq!(
            (r.res.plural, r.namespace.as_deref(), r.name.as_deref(), r.sub),
            ("pods", Some("default"), Some("web-1"), Some(Subresource::Status))
        );
        let r = route("/apis/apps/v1/deployments");
        assert_eq!((r.res.kind, r.namespace, r.name), ("Deployment", None, None));
        let r = route("/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.res.plural, r.namespace.as_deref(), r.name.as_deref()),
            ("namespaces", None, Some("kube-system"))
        );
        let r = route("/api/v1/namespaces/x/status");
        assert_eq!((r.res.plural, r.name.as_deref(), r.sub), ("namespaces", Some("x"), Some(Subresource::Status)));
        let r = route("/api/v1/watch/namespaces/default/pods");
        assert!(r.watch);
        assert_eq!(parse_path("/apis/apps/v1").unwrap(), PathTarget::GroupVersion("apps", "v1"));
        assert!(parse_path("/apis/apps/v2/deployments").is_err());
        assert!(parse_path("/api/v1/pods/x").is_err(), "a namespaced object needs a namespace");
        assert!(parse_path("/api/v1/namespaces/d/pods/x/bogus").is_err());
        assert!(parse_path("/api/v1/namespaces/d/nodes/x").is_err());
    }

    #[test]
    fn accept_headers() {
        let q = Default::default();
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert!(matches!(accept(&h, &q).unwrap(), Accept::Table(_)));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/vnd.kubernetes.protobuf, */*"));
        assert_eq!(accept(&h, &q).unwrap(), Accept::Json);
        h.insert(header::ACCEPT, HeaderValue::from_static("application/vnd.kubernetes.protobuf"));
        assert!(accept(&h, &q).is_err());
    }
}
