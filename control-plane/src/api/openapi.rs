//! OpenAPI documents, as much as kubectl needs (see docs/kubectl-compat.md §4):
//!
//! - `/openapi/v2`: kubectl 1.27/1.28 refuse to `apply` unless this answers 200, and
//!   parse it as protobuf. It is served as a minimal protobuf document *without*
//!   definitions on purpose: with partial definitions kubectl would compute
//!   client-side-apply patches from them instead of from its built-in types.
//! - `/openapi/v3` and `/openapi/v3/<group-version>`: the served paths with their
//!   operations, `x-kubernetes-group-version-kind` and query parameters (kubectl
//!   looks for `fieldValidation` on the PATCH operation to decide that the server
//!   validates), and a schema entry per kind.

use super::registry::{self, RESOURCES, Resource};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

/// `Document{swagger:"2.0", info{title:"Kubernetes", version:"v1.33.0"}}` in protobuf.
fn v2_document() -> Vec<u8> {
    let version = super::discovery::KUBE_GIT_VERSION.split('-').next().unwrap_or("v1.33.0");
    let mut info = Vec::new();
    info.push(0x0a);
    info.push(10);
    info.extend_from_slice(b"Kubernetes");
    info.push(0x12);
    info.push(version.len() as u8);
    info.extend_from_slice(version.as_bytes());
    let mut doc = vec![0x0a, 3];
    doc.extend_from_slice(b"2.0");
    doc.push(0x12);
    doc.push(info.len() as u8);
    doc.extend(info);
    doc
}

pub async fn v2() -> Response {
    let mut r = (StatusCode::OK, v2_document()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    );
    r
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The hash part of a document URL: changes whenever what rk serves changes.
fn hash(doc: &Value) -> String {
    format!("{:08X}", crc32fast::hash(doc.to_string().as_bytes()))
}

pub async fn v3_index() -> Response {
    let mut paths = Map::new();
    let mut gvs: Vec<(&str, &str)> = vec![("", "v1")];
    gvs.extend(registry::groups());
    for (g, v) in gvs {
        let doc = group_version_document(g, v);
        let p = gv_path(g, v);
        paths.insert(p.clone(), json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc)) }));
    }
    axum::Json(json!({ "paths": paths })).into_response()
}

pub async fn v3_document(req: Request) -> Response {
    let path = req.uri().path().trim_start_matches("/openapi/v3/").trim_matches('/');
    let gv: Vec<&str> = path.split('/').collect();
    let (g, v) = match gv.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return (StatusCode::NOT_FOUND, "no such OpenAPI document").into_response(),
    };
    if !RESOURCES.iter().any(|r| r.group == g && r.version == v) {
        return (StatusCode::NOT_FOUND, "no such OpenAPI document").into_response();
    }
    axum::Json(group_version_document(g, v)).into_response()
}

fn schema_name(r: &Resource) -> String {
    let group = match r.group {
        "" => "core",
        "networking.k8s.io" => "networking",
        "coordination.k8s.io" => "coordination",
        "discovery.k8s.io" => "discovery",
        "rbac.authorization.k8s.io" => "rbac",
        g => g,
    };
    format!("io.k8s.api.{group}.{}.{}", r.version, r.kind)
}

fn param(name: &str, ty: &str) -> Value {
    json!({ "name": name, "in": "query", "schema": { "type": ty }, "uniqueItems": true })
}

fn operation(r: &Resource, action: &str, params: &[(&str, &str)]) -> Value {
    let gvk = json!({ "group": r.group, "version": r.version, "kind": r.kind });
    json!({
        "operationId": format!("{action}{}", r.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": params.iter().map(|(n, t)| param(n, t)).collect::<Vec<_>>(),
        "responses": { "200": { "description": "OK" } },
    })
}

const LIST_PARAMS: &[(&str, &str)] = &[
    ("allowWatchBookmarks", "boolean"),
    ("continue", "string"),
    ("fieldSelector", "string"),
    ("labelSelector", "string"),
    ("limit", "integer"),
    ("resourceVersion", "string"),
    ("resourceVersionMatch", "string"),
    ("sendInitialEvents", "boolean"),
    ("timeoutSeconds", "integer"),
    ("watch", "boolean"),
];
const WRITE_PARAMS: &[(&str, &str)] =
    &[("dryRun", "string"), ("fieldManager", "string"), ("fieldValidation", "string")];
const PATCH_PARAMS: &[(&str, &str)] =
    &[("dryRun", "string"), ("fieldManager", "string"), ("fieldValidation", "string"), ("force", "boolean")];
const DELETE_PARAMS: &[(&str, &str)] =
    &[("dryRun", "string"), ("gracePeriodSeconds", "integer"), ("propagationPolicy", "string")];

/// The OpenAPI v3 document of one group version.
pub fn group_version_document(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        let base = format!("/{}", gv_path(group, version));
        let collection = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        let item = format!("{collection}/{{name}}");
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(r, "list", LIST_PARAMS),
                "post": operation(r, "post", WRITE_PARAMS),
                "delete": operation(r, "deletecollection", DELETE_PARAMS),
            }),
        );
        paths.insert(
            item.clone(),
            json!({
                "get": operation(r, "get", &[("resourceVersion", "string")]),
                "put": operation(r, "put", WRITE_PARAMS),
                "patch": operation(r, "patch", PATCH_PARAMS),
                "delete": operation(r, "delete", DELETE_PARAMS),
            }),
        );
        for sub in
            r.subresources.iter().filter(|s| matches!(s, registry::Subresource::Status | registry::Subresource::Scale))
        {
            paths.insert(
                format!("{item}/{}", sub.name()),
                json!({
                    "get": operation(r, "get", &[]),
                    "put": operation(r, "put", WRITE_PARAMS),
                    "patch": operation(r, "patch", PATCH_PARAMS),
                }),
            );
        }
        schemas.insert(
            schema_name(r),
            json!({
                "description": format!("{} (served by rk; field-level schemas are not published yet)", r.kind),
                "type": "object",
                "x-kubernetes-group-version-kind": [{ "group": r.group, "kind": r.kind, "version": r.version }],
                "properties": {
                    "apiVersion": { "type": "string", "description": "APIVersion defines the versioned schema of this representation of an object." },
                    "kind": { "type": "string", "description": "Kind is a string value representing the REST resource this object represents." },
                    "metadata": { "type": "object", "description": "Standard object's metadata." },
                    "spec": { "type": "object" },
                    "status": { "type": "object" },
                },
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": super::discovery::KUBE_GIT_VERSION },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_is_the_documented_protobuf() {
        let doc = v2_document();
        assert_eq!(&doc[..5], &[0x0a, 0x03, b'2', b'.', b'0']);
        assert_eq!(doc[5], 0x12);
        assert_eq!(doc[6] as usize, doc.len() - 7);
    }

    #[test]
    fn patch_operations_advertise_field_validation() {
        let doc = group_version_document("apps", "v1");
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation"));
        assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
    }
}
