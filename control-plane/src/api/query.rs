//! Query parameters of API requests (`ListOptions`, `GetOptions`, `CreateOptions`,
//! `PatchOptions`, `DeleteOptions`) parsed with Kubernetes' rules and messages.

use super::error::ApiError;
use super::store::Freshness;
use std::collections::HashMap;

/// The raw query string as a map (last value wins, like Go's `Get`).
pub fn parse(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

/// Percent-decoding (`+` is a space in query strings).
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn bool_param(q: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!("invalid value {other:?} for {name}: must be true or false"))),
    }
}

fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid value {v:?} for {name}: not an integer"))),
    }
}

/// `resourceVersion` (+ `resourceVersionMatch`) as a read freshness.
pub fn freshness(q: &HashMap<String, String>) -> Result<Freshness, ApiError> {
    let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let parsed = || -> Result<i64, ApiError> {
        rv.parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))
    };
    match q.get("resourceVersionMatch").map(String::as_str).unwrap_or("") {
        "" => match rv {
            "" => Ok(Freshness::Latest),
            "0" => Ok(Freshness::Any),
            _ => Ok(Freshness::NotOlderThan(parsed()?)),
        },
        "NotOlderThan" => {
            if rv.is_empty() {
                return Err(ApiError::BadRequest(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
                ));
            }
            Ok(match parsed()? {
                0 => Freshness::Any,
                v => Freshness::NotOlderThan(v),
            })
        }
        "Exact" => match parsed()? {
            0 => Err(ApiError::BadRequest(
                "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"".into(),
            )),
            v => Ok(Freshness::Exact(v)),
        },
        other => Err(ApiError::BadRequest(format!(
            "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

/// Options of list and watch requests.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub watch: bool,
    pub allow_bookmarks: bool,
    pub timeout_seconds: Option<u64>,
    pub resource_version: Option<String>,
    pub send_initial_events: bool,
}

impl ListOptions {
    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let limit = int_param(q, "limit")?.unwrap_or(0);
        if limit < 0 {
            return Err(ApiError::BadRequest("limit must not be negative".into()));
        }
        Ok(Self {
            label_selector: q.get("labelSelector").filter(|s| !s.is_empty()).cloned(),
            field_selector: q.get("fieldSelector").filter(|s| !s.is_empty()).cloned(),
            limit: limit as usize,
            continue_token: q.get("continue").filter(|s| !s.is_empty()).cloned(),
            watch: bool_param(q, "watch")?,
            allow_bookmarks: bool_param(q, "allowWatchBookmarks")?,
            timeout_seconds: int_param(q, "timeoutSeconds")?.map(|t| t.max(0) as u64),
            resource_version: q.get("resourceVersion").cloned(),
            send_initial_events: bool_param(q, "sendInitialEvents")?,
        })
    }
}

/// How unknown fields in a request body are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    /// Drop them, and say so in a `Warning` header (the API's default).
    #[default]
    Warn,
    /// Refuse the request.
    Strict,
}

/// Options of create, update and patch requests.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    pub force: bool,
}

impl WriteOptions {
    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let dry_run = match q.get("dryRun").map(String::as_str) {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid dry run value: Unsupported value: {other:?}: supported values: \"All\""
                )));
            }
        };
        let field_validation = match q.get("fieldValidation").map(String::as_str) {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid field validation directive: {other:?}; use Ignore, Warn or Strict"
                )));
            }
        };
        let field_manager = q.get("fieldManager").filter(|s| !s.is_empty()).cloned();
        if let Some(m) = &field_manager
            && (m.len() > 128 || m.chars().any(|c| c.is_control()))
        {
            return Err(ApiError::BadRequest("fieldManager must be at most 128 printable characters".into()));
        }
        Ok(Self { dry_run, field_manager, field_validation, force: bool_param(q, "force")? })
    }
}

/// Options of delete requests (query parameters; a `DeleteOptions` body may add more).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

impl DeleteOptions {
    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let w = WriteOptions::from_query(q)?;
        let mut opts = Self {
            grace_period_seconds: int_param(q, "gracePeriodSeconds")?,
            propagation_policy: q.get("propagationPolicy").filter(|s| !s.is_empty()).cloned(),
            dry_run: w.dry_run,
            ..Default::default()
        };
        if bool_param(q, "orphanDependents")? {
            opts.propagation_policy.get_or_insert_with(|| "Orphan".into());
        }
        Ok(opts)
    }

    /// Merges a `DeleteOptions` body (kubectl sends one).
    pub fn merge_body(&mut self, body: &serde_json::Value) -> Result<(), ApiError> {
        if let Some(g) = body.get("gracePeriodSeconds").and_then(|v| v.as_i64()) {
            self.grace_period_seconds = Some(g);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(|v| v.as_str()) {
            self.propagation_policy = Some(p.to_string());
        }
        if body.get("orphanDependents").and_then(|v| v.as_bool()) == Some(true) {
            self.propagation_policy.get_or_insert_with(|| "Orphan".into());
        }
        if let Some(d) = body.get("dryRun").and_then(|v| v.as_array()) {
            self.dry_run |= d.iter().any(|x| x == "All");
        }
        if let Some(pre) = body.get("preconditions") {
            self.precondition_uid = pre.get("uid").and_then(|v| v.as_str()).map(String::from);
            self.precondition_rv = pre.get("resourceVersion").and_then(|v| v.as_str()).map(String::from);
        }
        match self.propagation_policy.as_deref() {
            None | Some("Orphan") | Some("Background") | Some("Foreground") => Ok(()),
            Some(other) => Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=5&watch=1"));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        let l = ListOptions::from_query(&q).unwrap();
        assert_eq!(l.limit, 5);
        assert!(l.watch);
        assert!(ListOptions::from_query(&parse(Some("limit=x"))).is_err());
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn resource_version_semantics() {
        assert_eq!(freshness(&parse(None)).unwrap(), Freshness::Latest);
        assert_eq!(freshness(&parse(Some("resourceVersion=0"))).unwrap(), Freshness::Any);
        assert_eq!(freshness(&parse(Some("resourceVersion=7"))).unwrap(), Freshness::NotOlderThan(7));
        assert_eq!(
            freshness(&parse(Some("resourceVersion=7&resourceVersionMatch=Exact"))).unwrap(),
            Freshness::Exact(7)
        );
        assert!(freshness(&parse(Some("resourceVersion=abc"))).is_err());
        assert!(freshness(&parse(Some("resourceVersionMatch=Exact"))).is_err());
    }
}
