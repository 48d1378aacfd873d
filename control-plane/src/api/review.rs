//! Access reviews: `authorization.k8s.io/v1` SelfSubjectAccessReview, SelfSubjectRulesReview,
//! SubjectAccessReview and LocalSubjectAccessReview, and `authentication.k8s.io/v1`
//! SelfSubjectReview — what `kubectl auth can-i` (with `--list`) and `kubectl auth whoami` ask,
//! and what dashboards such as k9s ask before showing an action.
//!
//! rk does not authenticate or authorize requests yet: every request is served as it comes.
//! These reviews say exactly that — allowed, with a reason that says why — rather than 404,
//! which kubectl reports as an error and tools take as "no access". When authorization
//! arrives, [`decide`] is the one place that changes. Reviews are never stored: a create
//! answers 201 with the review and its `status` filled in, as kube-apiserver does.

use super::body;
use super::error::{ApiError, FieldError};
use super::http::MAX_BODY;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Why every review says yes, in the reviews' `reason`.
const REASON: &str = "rk does not authorize requests yet: every request is allowed";

/// One review kind rk answers.
pub struct ReviewKind {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
}

pub static KINDS: &[ReviewKind] = &[
    ReviewKind {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "localsubjectaccessreviews",
        kind: "LocalSubjectAccessReview",
        namespaced: true,
    },
    ReviewKind {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
    },
    ReviewKind {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        kind: "SelfSubjectRulesReview",
        namespaced: false,
    },
    ReviewKind {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "subjectaccessreviews",
        kind: "SubjectAccessReview",
        namespaced: false,
    },
    ReviewKind {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
        namespaced: false,
    },
    // kubectl 1.27 and 1.28 ask for the beta (served by Kubernetes until 1.29).
    ReviewKind {
        group: "authentication.k8s.io",
        version: "v1beta1",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
        namespaced: false,
    },
];

/// The group versions of [`KINDS`], each once, preferred version first within a group.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

/// The groups of [`KINDS`], each once with its versions (preferred first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (g, v) in group_versions() {
        match out.iter_mut().find(|(group, _)| *group == g) {
            Some((_, versions)) => versions.push(v),
            None => out.push((g, vec![v])),
        }
    }
    out
}

/// `/apis` entry (APIGroup) of a review group.
pub fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions.clone(), "preferredVersion": versions.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis/<group>/<version>` of a review group: its APIResourceList.
pub fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            json!({"name": k.plural, "singularName": k.kind.to_lowercase(), "namespaced": k.namespaced,
                   "kind": k.kind, "verbs": ["create"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/{version}"),
           "resources": resources})
}

/// A review group in aggregated discovery (`apidiscovery.k8s.io`).
pub fn discovery_group(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(_, version)| {
            let resources: Vec<Value> = KINDS
                .iter()
                .filter(|k| k.group == group && k.version == version)
                .map(|k| {
                    json!({
                        "resource": k.plural,
                        "responseKind": {"group": group, "version": version, "kind": k.kind},
                        "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": k.kind.to_lowercase(),
                        "verbs": ["create"],
                    })
                })
                .collect();
            json!({"version": version, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
}

/// Everything under `/apis/authorization.k8s.io` and `/apis/authentication.k8s.io`.
pub async fn handle(req: Request) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let content_type =
        req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
    let result = async {
        let target = parse(&path)?;
        match (target, method) {
            (Target::Group(group), Method::GET) => Ok((StatusCode::OK, group_doc(group))),
            (Target::GroupVersion(group, version), Method::GET) => Ok((StatusCode::OK, resource_list(group, version))),
            (Target::Kind(kind, namespace), Method::POST) => {
                let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
                    .await
                    .map_err(|_| ApiError::TooLarge(format!("Request entity too large: limit is {MAX_BODY}")))?;
                let review = body::decode(content_type.as_deref(), &bytes)?;
                Ok((StatusCode::CREATED, review_of(kind, namespace.as_deref(), review)?))
            }
            (Target::Kind(kind, _), m) => Err(ApiError::MethodNotAllowed(format!(
                "{m} is not supported on {}: reviews are only created (POST)",
                kind.plural
            ))),
            (_, m) => Err(ApiError::MethodNotAllowed(format!("{m} is not supported on {path}"))),
        }
    }
    .await;
    match result {
        Ok((code, v)) => (code, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

enum Target {
    Group(&'static str),
    GroupVersion(&'static str, &'static str),
    Kind(&'static ReviewKind, Option<String>),
}

fn parse(path: &str) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let find = |group: &str, version: &str, plural: &str, namespaced: bool| {
        KINDS
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural && k.namespaced == namespaced)
            .ok_or(ApiError::NoSuchResource)
    };
    match segs.as_slice() {
        ["apis", g] => groups().into_iter().find(|(group, _)| group == g).map(|(g, _)| Target::Group(g)),
        ["apis", g, v] => {
            group_versions().into_iter().find(|gv| *gv == (*g, *v)).map(|(g, v)| Target::GroupVersion(g, v))
        }
        ["apis", g, v, plural] => return find(g, v, plural, false).map(|k| Target::Kind(k, None)),
        ["apis", g, v, "namespaces", ns, plural] => {
            return find(g, v, plural, true).map(|k| Target::Kind(k, Some(ns.to_string())));
        }
        _ => None,
    }
    .ok_or(ApiError::NoSuchResource)
}

/// `/apis/<group>`: the APIGroup document.
fn group_doc(group: &str) -> Value {
    let mut doc = api_group(group);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    doc
}

/// The review `body` answered: validated as kube-apiserver validates it, `status` filled in.
pub fn review_of(kind: &ReviewKind, namespace: Option<&str>, mut review: Value) -> Result<Value, ApiError> {
    if !review.is_object() {
        return Err(ApiError::BadRequest(format!("a {} must be a JSON object", kind.kind)));
    }
    let api_version = format!("{}/{}", kind.group, kind.version);
    if let Some(k) = review.get("kind").and_then(Value::as_str).filter(|k| *k != kind.kind) {
        return Err(ApiError::BadRequest(format!(
            "the kind in the body ({k}) does not match the path ({})",
            kind.kind
        )));
    }
    if let Some(v) = review.get("apiVersion").and_then(Value::as_str).filter(|v| **v != api_version) {
        return Err(ApiError::BadRequest(format!(
            "the API version in the body ({v}) does not match the path ({api_version})"
        )));
    }
    let causes = validate(kind, namespace, &review);
    if !causes.is_empty() {
        return Err(ApiError::Invalid {
            group: kind.group.to_string(),
            kind: kind.kind.to_string(),
            name: String::new(),
            causes,
        });
    }
    review["apiVersion"] = json!(api_version);
    review["kind"] = json!(kind.kind);
    if !review["metadata"].is_object() {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    if let Some(ns) = namespace {
        review["metadata"]["namespace"] = json!(ns);
    }
    review["status"] = decide(kind);
    Ok(review)
}

/// The answer to a valid review. Every request is allowed (see the module docs).
fn decide(kind: &ReviewKind) -> Value {
    match kind.kind {
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        // Requests carry no credentials rk checks: Kubernetes' name for such a caller.
        "SelfSubjectReview" => json!({
            "userInfo": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        }),
        _ => json!({"allowed": true, "reason": REASON}),
    }
}

/// kube-apiserver's validation of a review (pkg/apis/authorization/validation).
fn validate(kind: &ReviewKind, namespace: Option<&str>, review: &Value) -> Vec<FieldError> {
    let spec = &review["spec"];
    let present = |v: &Value| !v.is_null();
    let mut causes = Vec::new();
    let one_of_attributes = |causes: &mut Vec<FieldError>| {
        let (res, non) = (&spec["resourceAttributes"], &spec["nonResourceAttributes"]);
        if present(res) && present(non) {
            causes.push(FieldError::invalid(
                "spec.nonResourceAttributes",
                non,
                "cannot be specified in combination with resourceAttributes",
            ));
        } else if !present(res) && !present(non) {
            causes.push(FieldError::invalid(
                "spec.resourceAttributes",
                "null",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        }
    };
    match kind.kind {
        "SelfSubjectAccessReview" => one_of_attributes(&mut causes),
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            one_of_attributes(&mut causes);
            let user = spec["user"].as_str().unwrap_or("");
            let groups = spec["groups"].as_array().is_some_and(|g| !g.is_empty());
            if user.is_empty() && !groups {
                causes.push(FieldError::invalid("spec.user", "", "at least one of user or group must be specified"));
            }
            if kind.kind == "LocalSubjectAccessReview" {
                if present(&spec["nonResourceAttributes"]) {
                    causes.push(FieldError::invalid(
                        "spec.nonResourceAttributes",
                        &spec["nonResourceAttributes"],
                        "disallowed on this kind of request",
                    ));
                }
                let asked = spec.pointer("/resourceAttributes/namespace").and_then(Value::as_str).unwrap_or("");
                if present(&spec["resourceAttributes"]) && Some(asked) != namespace {
                    causes.push(FieldError::invalid(
                        "spec.resourceAttributes.namespace",
                        asked,
                        "must match metadata.namespace",
                    ));
                }
            }
        }
        "SelfSubjectRulesReview" if spec["namespace"].as_str().unwrap_or("").is_empty() => {
            causes.push(FieldError::required("spec.namespace"));
        }
        _ => {}
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> &'static ReviewKind {
        KINDS.iter().find(|k| k.kind == name).unwrap()
    }

    #[test]
    fn a_self_access_review_is_allowed_and_says_why() {
        let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}}});
        let out = review_of(kind("SelfSubjectAccessReview"), None, body).unwrap();
        assert_eq!(out["status"]["allowed"], true);
        assert_eq!(out["status"]["reason"], REASON);
        assert_eq!(out["spec"]["resourceAttributes"]["verb"], "create", "the spec comes back as sent");
    }

    #[test]
    fn attributes_are_exactly_one_of_two() {
        let k = kind("SelfSubjectAccessReview");
        let none = review_of(k, None, json!({"spec": {}})).unwrap_err().to_string();
        assert!(none.contains("spec.resourceAttributes"), "{none}");
        let both = json!({"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/"}}});
        let both = review_of(k, None, both).unwrap_err().to_string();
        assert!(both.contains("spec.nonResourceAttributes"), "{both}");
    }

    #[test]
    fn subject_reviews_need_a_subject_and_local_ones_their_namespace() {
        let sar = json!({"spec": {"resourceAttributes": {"verb": "get"}}});
        let e = review_of(kind("SubjectAccessReview"), None, sar).unwrap_err().to_string();
        assert!(e.contains("spec.user"), "{e}");
        let local = json!({"spec": {"user": "u", "resourceAttributes": {"namespace": "other", "verb": "get"}}});
        let e = review_of(kind("LocalSubjectAccessReview"), Some("ns"), local).unwrap_err().to_string();
        assert!(e.contains("spec.resourceAttributes.namespace"), "{e}");
        let local = json!({"spec": {"user": "u", "resourceAttributes": {"namespace": "ns", "verb": "get"}}});
        let ok = review_of(kind("LocalSubjectAccessReview"), Some("ns"), local).unwrap();
        assert_eq!(ok["metadata"]["namespace"], "ns");
    }

    #[test]
    fn rules_reviews_need_a_namespace_and_list_everything() {
        let k = kind("SelfSubjectRulesReview");
        assert!(review_of(k, None, json!({"spec": {}})).is_err());
        let out = review_of(k, None, json!({"spec": {"namespace": "default"}})).unwrap();
        assert_eq!(out["status"]["resourceRules"][0]["verbs"], json!(["*"]));
        assert_eq!(out["status"]["incomplete"], false);
    }

    #[test]
    fn wrong_kinds_and_shapes_are_refused() {
        let k = kind("SelfSubjectAccessReview");
        assert!(matches!(review_of(k, None, json!([1])), Err(ApiError::BadRequest(_))));
        assert!(matches!(review_of(k, None, json!({"kind": "Pod"})), Err(ApiError::BadRequest(_))));
        assert!(matches!(review_of(k, None, json!({"apiVersion": "v1"})), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn paths() {
        assert!(matches!(parse("/apis/authorization.k8s.io"), Ok(Target::Group("authorization.k8s.io"))));
        assert!(matches!(parse("/apis/authentication.k8s.io/v1"), Ok(Target::GroupVersion(_, "v1"))));
        assert!(matches!(parse("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"), Ok(Target::Kind(_, None))));
        assert!(matches!(
            parse("/apis/authorization.k8s.io/v1/namespaces/x/localsubjectaccessreviews"),
            Ok(Target::Kind(_, Some(_)))
        ));
        assert!(parse("/apis/authorization.k8s.io/v1/namespaces/x/selfsubjectaccessreviews").is_err());
        assert!(matches!(parse("/apis/authorization.k8s.io/v2"), Err(ApiError::NoSuchResource)));
        assert!(matches!(parse("/apis/authorization.k8s.io/v1/pods"), Err(ApiError::NoSuchResource)));
    }
}
