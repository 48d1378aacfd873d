//! Request bodies: JSON, YAML, and the Kubernetes protobuf envelope (which kubectl
//! 1.32+ uses for `kubectl create configmap|secret`).

use super::error::ApiError;
use super::protobuf;
use serde_json::Value;

/// Parses YAML or JSON (JSON is YAML) into a JSON value. Only one document.
pub fn parse_yaml_or_json(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    serde_norway::from_slice::<Value>(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid YAML or JSON: {e}")))
}

/// Decodes a request body according to its content type.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    let base = content_type.and_then(|c| c.split(';').next()).map(str::trim).unwrap_or("application/json");
    match base {
        "application/json" | "" | "*/*" | "text/plain" => serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml_or_json(body),
        "application/vnd.kubernetes.protobuf" => protobuf::decode_object(body).map_err(|e| match e {
            protobuf::ProtobufError::UnsupportedKind { .. } | protobuf::ProtobufError::UnsupportedField { .. } => {
                // The message already says to send JSON instead.
                ApiError::UnsupportedMediaType(e.to_string())
            }
            e => ApiError::BadRequest(format!("cannot decode the protobuf body: {e}")),
        }),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, \
             application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let y = decode(Some("application/yaml"), b"kind: ConfigMap\ndata:\n  a: b\n").unwrap();
        assert_eq!(y["data"]["a"], "b");
        let j = decode(Some("application/json; charset=utf-8"), br#"{"kind":"X"}"#).unwrap();
        assert_eq!(j["kind"], "X");
        assert!(matches!(decode(Some("application/json"), b"{oops"), Err(ApiError::BadRequest(_))));
        assert!(matches!(decode(Some("image/png"), b"x"), Err(ApiError::UnsupportedMediaType(_))));
        assert!(matches!(decode(Some("application/vnd.kubernetes.protobuf"), b"junk"), Err(ApiError::BadRequest(_))));
    }
}
