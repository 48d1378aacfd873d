//! The API server's one error type. Every failure renders as a Kubernetes `Status`
//! object with the HTTP code, `reason` and `details` kubectl and client libraries
//! expect; internal detail is logged, not sent.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};
use std::fmt;

/// Kubernetes' field error kinds (`field.ErrorType`), which set both the cause's
/// `reason` and the wording of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    Duplicate,
    NotSupported,
    Forbidden,
    TooLong,
    NotFound,
}

/// One bad field, e.g. `spec.containers[0].image: Required value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    /// The offending value, as Kubernetes quotes it (absent for Required/Forbidden).
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>) -> Self {
        Self { field: field.into(), kind: FieldErrorKind::Required, value: None, detail: String::new() }
    }

    pub fn invalid(field: impl Into<String>, value: impl fmt::Display, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorKind::Invalid,
            value: Some(value.to_string()),
            detail: detail.into(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorKind::Duplicate,
            value: Some(value.to_string()),
            detail: String::new(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: impl fmt::Display, supported: &[&str]) -> Self {
        let list = supported.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
        Self {
            field: field.into(),
            kind: FieldErrorKind::NotSupported,
            value: Some(value.to_string()),
            detail: format!("supported values: {list}"),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { field: field.into(), kind: FieldErrorKind::Forbidden, value: None, detail: detail.into() }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorKind::TooLong,
            value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::NotFound => "FieldValueNotFound",
        }
    }

    /// The cause message without the field path (`Required value`, `Invalid value: "x": why`).
    fn message(&self) -> String {
        let head = match self.kind {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::NotFound => "Not found",
        };
        let mut out = head.to_string();
        if let Some(v) = &self.value {
            // Go's %#v: strings quoted; numbers, booleans and composite values not.
            let bare = v.parse::<f64>().is_ok()
                || v == "true"
                || v == "false"
                || v.starts_with("map[")
                || v.starts_with("[]")
                || v.starts_with('{');
            if bare {
                out.push_str(&format!(": {v}"));
            } else {
                out.push_str(&format!(": {v:?}"));
            }
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// What a request can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{resource} {name:?} not found")]
    NotFound { group: String, resource: String, name: String },
    /// The path names no resource rk serves (an unknown group, version or kind).
    #[error("the server could not find the requested resource")]
    NoSuchResource,
    #[error("{resource} {name:?} already exists")]
    AlreadyExists { group: String, resource: String, name: String },
    #[error("Operation cannot be fulfilled on {resource} {name:?}: {message}")]
    Conflict { group: String, resource: String, name: String, message: String },
    /// Server-side apply found fields owned by other managers: (field, message).
    #[error("{message}")]
    ApplyConflict { message: String, causes: Vec<(String, String)> },
    #[error("{}", invalid_message(kind, group, name, causes))]
    Invalid { group: String, kind: String, name: String, causes: Vec<FieldError> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Forbidden(String),
    /// The request's credentials are not valid (a bad or expired token). The message stays
    /// `Unauthorized`, as in Kubernetes: why is logged, never told to the caller.
    #[error("Unauthorized")]
    Unauthorized,
    /// A resource version or continue token older than the compacted history.
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Timeout(String),
    /// A client over its share (open watches, requests in flight); answered with
    /// `Retry-After`, as kube-apiserver's 429s are.
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

fn invalid_message(kind: &str, group: &str, name: &str, causes: &[FieldError]) -> String {
    // Kubernetes names the kind with its group: `Deployment.apps "web" is invalid`.
    let kind = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
    let list: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
    match list.as_slice() {
        [one] => format!("{kind} {name:?} is invalid: {one}"),
        _ => format!("{kind} {name:?} is invalid: [{}]", list.join(", ")),
    }
}

impl ApiError {
    pub fn not_found(res: &super::registry::Resource, name: &str) -> Self {
        Self::NotFound { group: res.group.into(), resource: res.qualified(), name: name.into() }
    }

    pub fn already_exists(res: &super::registry::Resource, name: &str) -> Self {
        Self::AlreadyExists { group: res.group.into(), resource: res.qualified(), name: name.into() }
    }

    pub fn conflict(res: &super::registry::Resource, name: &str) -> Self {
        Self::Conflict {
            group: res.group.into(),
            resource: res.qualified(),
            name: name.into(),
            message: "the object has been modified; please apply your changes to the latest version and try again"
                .into(),
        }
    }

    pub fn invalid(res: &super::registry::Resource, name: &str, causes: Vec<FieldError>) -> Self {
        Self::Invalid { group: res.group.into(), kind: res.kind.into(), name: name.into(), causes }
    }

    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchResource => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Expired(_) => StatusCode::GONE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchResource => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Expired(_) => "Expired",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::Timeout(_) => "Timeout",
            ApiError::TooManyRequests(_) => "TooManyRequests",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound { group, resource, name }
            | ApiError::AlreadyExists { group, resource, name }
            | ApiError::Conflict { group, resource, name, .. } => {
                // details.kind is the plural resource name, without the group.
                let plural = resource.split('.').next().unwrap_or(resource);
                let mut d = json!({ "name": name, "kind": plural });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::ApplyConflict { causes, .. } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|(field, message)| json!({ "reason": "FieldManagerConflict", "message": message, "field": field }))
                    .collect();
                Some(json!({ "causes": causes }))
            }
            ApiError::Invalid { group, kind, name, causes } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({ "reason": c.reason(), "message": c.message(), "field": c.field }))
                    .collect();
                let mut d = json!({ "name": name, "kind": kind, "causes": causes });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::NoSuchResource => Some(json!({})),
            ApiError::TooManyRequests(_) => Some(json!({"retryAfterSeconds": 1})),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

impl From<crate::raft::node::ProposeError> for ApiError {
    fn from(e: crate::raft::node::ProposeError) -> Self {
        use crate::raft::node::ProposeError as P;
        match e {
            P::Timeout => ApiError::Timeout(
                "the store did not answer in time (no quorum?); the request may or may not have been applied".into(),
            ),
            P::LeaderChanged => ApiError::Unavailable(
                "the store's leader changed while handling the request; it may or may not have been applied".into(),
            ),
            P::NoLeader => ApiError::Unavailable("the store has no leader at the moment; retry shortly".into()),
            P::Stopped => ApiError::Unavailable("this replica is shutting down".into()),
            P::ConfChangePending => {
                ApiError::Unavailable("a membership change of the store is in progress; retry shortly".into())
            }
            P::Apply(crate::store::ApplyError::Fenced { .. }) => {
                ApiError::Unavailable("this replica lost its leadership; the write was not applied".into())
            }
            P::Apply(a) => ApiError::Internal(format!("the store refused a write: {a}")),
            P::Rejected(m) => ApiError::Internal(format!("the store refused a write: {m}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, ApiError::Internal(_)) {
            tracing::error!(error = %self, "internal error answering an API request");
        }
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut resp = (self.code(), [(http::header::CONTENT_TYPE, "application/json")], body).into_response();
        if matches!(self, ApiError::TooManyRequests(_)) {
            resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry;

    #[test]
    fn statuses_look_like_kubernetes() {
        let deploy = registry::lookup("deployments").unwrap();
        let s = ApiError::not_found(deploy, "web").status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["details"], json!({"name": "web", "kind": "deployments", "group": "apps"}));
        assert_eq!(s["code"], 404);
        let pod = registry::lookup("pods").unwrap();
        let e = ApiError::invalid(
            pod,
            "p",
            vec![
                FieldError::required("spec.containers[0].image"),
                FieldError::not_supported("spec.restartPolicy", "Sometimes", &["Always", "OnFailure", "Never"]),
            ],
        );
        let s = e.status();
        assert_eq!(s["code"], 422);
        assert_eq!(
            s["message"],
            "Pod \"p\" is invalid: [spec.containers[0].image: Required value, spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"]"
        );
        assert_eq!(s["details"]["causes"][0]["field"], "spec.containers[0].image");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
        let c = ApiError::conflict(pod, "p").status();
        assert_eq!(c["reason"], "Conflict");
        assert!(c["message"].as_str().unwrap().starts_with("Operation cannot be fulfilled on pods \"p\""));
    }
}
