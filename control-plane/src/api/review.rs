//! Access reviews: `authorization.k8s.io/v1` SelfSubjectAccessReview, SelfSubjectRulesReview,
//! SubjectAccessReview and LocalSubjectAccessReview, and `authentication.k8s.io/v1`
//! SelfSubjectReview — what `kubectl auth can-i` (with `--list`) and `kubectl auth whoami` ask,
//! and what dashboards such as k9s ask before showing an action.
//!
//! rk does not authenticate requests yet: a request without credentials may do anything,
//! and a self review without impersonation says exactly that — allowed, with a reason that
//! says why — rather than 404, which kubectl reports as an error and tools take as "no
//! access". Reviews of someone (`kubectl auth can-i --as jane`, SubjectAccessReview) are
//! answered from RBAC ([`super::rbac`]), as kube-apiserver answers them. Reviews are never
//! stored: a create answers 201 with the review and its `status` filled in.

use super::body;
use super::error::{ApiError, FieldError};
use super::http::MAX_BODY;
use super::rbac::{Attributes, Identity, Policy};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// Why an unauthenticated caller's self review says yes, in its `reason`.
const REASON: &str = "rk does not authenticate requests yet: a request without credentials may do anything";

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
pub async fn handle(State(server): State<Arc<super::ApiServer>>, req: Request) -> Response {
    let conn = super::rbac::conn_of(&req);
    let caller = match super::rbac::caller(&server.api, req.headers(), conn.as_ref(), req.uri().path()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
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
                let policy = Policy::load(&server.api).await?;
                Ok((StatusCode::CREATED, review_of(kind, namespace.as_deref(), review, caller.as_ref(), &policy)?))
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
pub fn review_of(
    kind: &ReviewKind,
    namespace: Option<&str>,
    mut review: Value,
    caller: Option<&Identity>,
    policy: &Policy,
) -> Result<Value, ApiError> {
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
    review["status"] = decide(kind, &review["spec"], caller, policy);
    Ok(review)
}

/// The answer to a valid review: for the caller (`caller`: whom it impersonates; `None`:
/// the unauthenticated caller, who may do anything) or for the subject it names.
fn decide(kind: &ReviewKind, spec: &Value, caller: Option<&Identity>, policy: &Policy) -> Value {
    let access = |id: &Identity| {
        let d = policy.authorize(id, &Attributes::of_review(spec));
        json!({"allowed": d.allowed, "reason": d.reason})
    };
    match (kind.kind, caller) {
        ("SelfSubjectRulesReview", None) => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        ("SelfSubjectRulesReview", Some(id)) => rules_of(policy, id, spec["namespace"].as_str().unwrap_or("")),
        // Requests carry no credentials rk checks: Kubernetes' name for such a caller.
        ("SelfSubjectReview", None) => json!({
            "userInfo": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        }),
        ("SelfSubjectReview", Some(id)) => json!({"userInfo": {"username": id.user, "groups": id.groups}}),
        ("SelfSubjectAccessReview", None) => json!({"allowed": true, "reason": REASON}),
        ("SelfSubjectAccessReview", Some(id)) => access(id),
        _ => {
            // SubjectAccessReview, LocalSubjectAccessReview: exactly the user and groups given.
            let groups = spec["groups"].as_array().into_iter().flatten().filter_map(Value::as_str);
            let id = Identity {
                user: spec["user"].as_str().unwrap_or("").to_string(),
                groups: groups.map(String::from).collect(),
            };
            access(&id)
        }
    }
}

/// A SelfSubjectRulesReview's status: every rule `id` holds in `namespace`.
fn rules_of(policy: &Policy, id: &Identity, namespace: &str) -> Value {
    if id.groups.iter().any(|g| g == super::rbac::MASTERS) {
        return json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        });
    }
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for grant in policy.grants(id, namespace) {
        let r = grant.rule;
        if r.non_resource_urls.as_ref().is_some_and(|u| !u.is_empty()) {
            non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        } else {
            let mut rule = json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if let Some(names) = r.resource_names.as_ref().filter(|n| !n.is_empty()) {
                rule["resourceNames"] = json!(names);
            }
            resource_rules.push(rule);
        }
    }
    json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
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
        let out = review_of(kind("SelfSubjectAccessReview"), None, body, None, &Policy::default()).unwrap();
        assert_eq!(out["status"]["allowed"], true);
        assert_eq!(out["status"]["reason"], REASON);
        assert_eq!(out["spec"]["resourceAttributes"]["verb"], "create", "the spec comes back as sent");
    }

    #[test]
    fn reviews_of_someone_are_answered_from_rbac() {
        let policy = crate::api::rbac::tests_policy_with_view_for("jane", "dev");
        let ask = |verb: &str, ns: &str| json!({"spec": {"user": "jane", "resourceAttributes": {"namespace": ns, "verb": verb, "resource": "pods"}}});
        let out = review_of(kind("SubjectAccessReview"), None, ask("list", "dev"), None, &policy).unwrap();
        assert_eq!(out["status"]["allowed"], true, "{out}");
        let out = review_of(kind("SubjectAccessReview"), None, ask("create", "dev"), None, &policy).unwrap();
        assert_eq!(out["status"]["allowed"], false, "{out}");
        // The caller impersonating jane asks about itself.
        let jane = Identity { user: "jane".into(), groups: vec!["system:authenticated".into()] };
        let own = json!({"spec": {"resourceAttributes": {"namespace": "prod", "verb": "get", "resource": "pods"}}});
        let out = review_of(kind("SelfSubjectAccessReview"), None, own, Some(&jane), &policy).unwrap();
        assert_eq!(out["status"]["allowed"], false, "{out}");
        let rules = json!({"spec": {"namespace": "dev"}});
        let out = review_of(kind("SelfSubjectRulesReview"), None, rules, Some(&jane), &policy).unwrap();
        let listed = out["status"]["resourceRules"].as_array().unwrap();
        assert!(listed.iter().any(|r| r["resources"].as_array().unwrap().contains(&json!("pods"))), "{out}");
        let who = review_of(kind("SelfSubjectReview"), None, json!({}), Some(&jane), &policy).unwrap();
        assert_eq!(who["status"]["userInfo"]["username"], "jane");
    }

    #[test]
    fn attributes_are_exactly_one_of_two() {
        let k = kind("SelfSubjectAccessReview");
        let none = review_of(k, None, json!({"spec": {}}), None, &Policy::default()).unwrap_err().to_string();
        assert!(none.contains("spec.resourceAttributes"), "{none}");
        let both = json!({"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/"}}});
        let both = review_of(k, None, both, None, &Policy::default()).unwrap_err().to_string();
        assert!(both.contains("spec.nonResourceAttributes"), "{both}");
    }

    #[test]
    fn subject_reviews_need_a_subject_and_local_ones_their_namespace() {
        let sar = json!({"spec": {"resourceAttributes": {"verb": "get"}}});
        let e = review_of(kind("SubjectAccessReview"), None, sar, None, &Policy::default()).unwrap_err().to_string();
        assert!(e.contains("spec.user"), "{e}");
        let local = json!({"spec": {"user": "u", "resourceAttributes": {"namespace": "other", "verb": "get"}}});
        let e = review_of(kind("LocalSubjectAccessReview"), Some("ns"), local, None, &Policy::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("spec.resourceAttributes.namespace"), "{e}");
        let local = json!({"spec": {"user": "u", "resourceAttributes": {"namespace": "ns", "verb": "get"}}});
        let ok = review_of(kind("LocalSubjectAccessReview"), Some("ns"), local, None, &Policy::default()).unwrap();
        assert_eq!(ok["metadata"]["namespace"], "ns");
    }

    #[test]
    fn rules_reviews_need_a_namespace_and_list_everything() {
        let k = kind("SelfSubjectRulesReview");
        assert!(review_of(k, None, json!({"spec": {}}), None, &Policy::default()).is_err());
        let out = review_of(k, None, json!({"spec": {"namespace": "default"}}), None, &Policy::default()).unwrap();
        assert_eq!(out["status"]["resourceRules"][0]["verbs"], json!(["*"]));
        assert_eq!(out["status"]["incomplete"], false);
    }

    #[test]
    fn wrong_kinds_and_shapes_are_refused() {
        let k = kind("SelfSubjectAccessReview");
        assert!(matches!(review_of(k, None, json!([1]), None, &Policy::default()), Err(ApiError::BadRequest(_))));
        assert!(matches!(
            review_of(k, None, json!({"kind": "Pod"}), None, &Policy::default()),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            review_of(k, None, json!({"apiVersion": "v1"}), None, &Policy::default()),
            Err(ApiError::BadRequest(_))
        ));
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
