//! `rkctl wait`: block until objects reach a state, as `kubectl wait` does.
//!
//! ```text
//!  rkctl wait (TYPE NAME… | TYPE/NAME… | TYPE -l SELECTOR | TYPE --all)
//!      --for=condition=Ready[=VALUE] | --for=delete | --for=create
//!      | --for=jsonpath='{.status.phase}'[=VALUE]      [--timeout=30s]
//! ```
//!
//! Each object is watched on its own (a list narrowed to its name, then a watch
//! from that list's resourceVersion, started again whenever the server ends it), with
//! its own deadline, as kubectl does. Success prints `pod/x condition met`; a deadline
//! that passes prints `error: timed out waiting for the condition on pods/x`, and the
//! exit code is 1 when any object failed.
//!
//! Deciding ([`Condition::check`]) is pure and unit-tested; the watch loop around it
//! only fetches.

use crate::Session;
use crate::cli::WaitArgs;
use crate::client::Request;
use crate::discovery::ApiResource;
use crate::error::Error;
use crate::jsonpath::{self, Template};
use crate::output;
use crate::target;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// A `--for` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error(
        "unrecognized condition: {0:?}; use --for=condition=NAME[=VALUE], --for=delete, --for=create or --for=jsonpath='{{EXPR}}'=VALUE"
    )]
    Unrecognized(String),
    #[error("jsonpath expression cannot be empty")]
    EmptyJsonPath,
    #[error("jsonpath wait has to have a value after equal sign, like --for=jsonpath='{{.status.readyReplicas}}'=3")]
    EmptyJsonPathValue,
    #[error("invalid jsonpath in --for: {0}")]
    BadJsonPath(String),
    #[error("given jsonpath expression matches more than one value")]
    ManyValues,
    #[error("jsonpath leads to a nested object or list which is not supported")]
    Nested,
}

/// What `--for` waits for.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `condition=NAME[=VALUE]`: a `status.conditions` entry of type NAME whose status
    /// is VALUE (default `true`), both compared without regard to case.
    Status {
        name: String,
        value: String,
    },
    Delete,
    Create,
    /// `jsonpath=EXPR[=VALUE]`: EXPR gives VALUE, or (without one) gives anything.
    JsonPath {
        template: Template,
        value: Option<String>,
    },
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, WaitError> {
        let lower = text.to_lowercase();
        if lower == "delete" {
            return Ok(Condition::Delete);
        }
        if lower == "create" {
            return Ok(Condition::Create);
        }
        if let Some(rest) = text.strip_prefix("condition=").filter(|r| !r.is_empty()) {
            let (name, value) = rest.split_once('=').unwrap_or((rest, "true"));
            return Ok(Condition::Status { name: name.to_string(), value: value.to_string() });
        }
        if let Some(rest) = text.strip_prefix("jsonpath=") {
            let (expr, value) = split_jsonpath(rest);
            let spec = crate::columns::relaxed_path(expr).map_err(|e| WaitError::BadJsonPath(e.to_string()))?;
            if spec.is_empty() {
                return Err(WaitError::EmptyJsonPath);
            }
            let template = Template::parse(&spec).map_err(|e| WaitError::BadJsonPath(format!("{spec}: {e}")))?;
            let value = match value {
                None => None,
                Some(v) => {
                    let v = v.trim_matches(['\'', '"']);
                    if v.is_empty() {
                        return Err(WaitError::EmptyJsonPathValue);
                    }
                    Some(v.to_string())
                }
            };
            return Ok(Condition::JsonPath { template, value });
        }
        Err(WaitError::Unrecognized(text.to_string()))
    }

    /// Whether `obj` (`None`: the object does not exist) meets the condition.
    pub fn check(&self, obj: Option<&Value>) -> Result<bool, WaitError> {
        let Some(obj) = obj else {
            return Ok(matches!(self, Condition::Delete));
        };
        match self {
            Condition::Delete => Ok(false),
            Condition::Create => Ok(true),
            Condition::Status { name, value } => {
                let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
                let conditions = obj.pointer("/status/conditions").and_then(Value::as_array);
                Ok(conditions.into_iter().flatten().any(|c| {
                    let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
                    // A condition written for an older generation says nothing yet.
                    let current = match (c.get("observedGeneration").and_then(Value::as_i64), generation) {
                        (Some(seen), Some(want)) => seen >= want,
                        _ => true,
                    };
                    field("type").to_lowercase() == name.to_lowercase()
                        && field("status").to_lowercase() == value.to_lowercase()
                        && current
                }))
            }
            Condition::JsonPath { template, value } => {
                // A field not there yet is "not yet"; an expression that does not fit
                // the object (an index past the end) is "not yet" too, as in kubectl.
                let Ok(results) = template.find_results(obj) else { return Ok(false) };
                let found: Vec<&Value> = results.iter().flatten().map(|v| v.as_ref()).collect();
                match (found.as_slice(), value) {
                    ([], _) => Ok(false),
                    (_, None) => Ok(true),
                    ([one], Some(want)) => match one {
                        Value::Object(_) | Value::Array(_) => Err(WaitError::Nested),
                        v => Ok(jsonpath::to_text(v) == *want),
                    },
                    (_, Some(_)) => Err(WaitError::ManyValues),
                }
            }
        }
    }
}

/// `{.status.phase}=Running` → (`{.status.phase}`, `Running`): the value starts
/// after the `=` that follows the expression's closing brace (a filter inside the
/// braces may hold `==`).
fn split_jsonpath(text: &str) -> (&str, Option<&str>) {
    if text.starts_with('{')
        && let Some(close) = text.find('}')
    {
        let (expr, rest) = text.split_at(close + 1);
        return match rest.strip_prefix('=') {
            Some(v) => (expr, Some(v)),
            None if rest.is_empty() => (expr, None),
            // Text after the braces that is not `=VALUE`: let the parser judge it whole.
            None => (text, None),
        };
    }
    match text.split_once('=') {
        Some((e, v)) => (e, Some(v)),
        None => (text, None),
    }
}

/// `30s`, `2m`; `0` means look once; a negative duration means a week (kubectl's rule).
fn parse_timeout(text: &str) -> Result<Duration, Error> {
    if text.trim_start().starts_with('-') {
        return Ok(Duration::from_secs(7 * 24 * 3600));
    }
    crate::human::parse_duration(text)
        .ok_or_else(|| Error::Usage(format!("invalid --timeout {text:?}; use a duration like 30s or 2m")))
}

/// One object to wait for.
struct Waited {
    res: ApiResource,
    namespace: Option<String>,
    name: String,
}

pub async fn run(s: &Session, args: &WaitArgs) -> Result<(), Error> {
    let Some(for_text) = args.for_condition.as_deref() else {
        return Err(WaitError::Unrecognized(String::new()).into());
    };
    let cond = Condition::parse(for_text)?;
    let timeout = parse_timeout(&args.timeout)?;
    let discovery = s.discovery().await?;
    let targets = target::parse(discovery, &args.resources, "wait")?;
    let by_name = targets.has_names();
    if by_name && (args.selector.is_some() || args.all) {
        return Err(Error::Usage("-l and --all cannot be combined with object names".into()));
    }
    if !by_name && args.selector.is_none() && !args.all && !args.all_namespaces {
        return Err(Error::Usage(
            "give the objects to wait for: TYPE NAME, TYPE/NAME, or TYPE with -l SELECTOR or --all".into(),
        ));
    }
    let namespace = (!args.all_namespaces).then(|| s.namespace.clone());
    let mut waited = Vec::new();
    for t in &targets.targets {
        let ns = namespace.clone().filter(|_| t.res.namespaced);
        if by_name {
            let ns = ns.or_else(|| t.res.namespaced.then(|| s.namespace.clone()));
            for name in &t.names {
                waited.push(Waited { res: t.res.clone(), namespace: ns.clone(), name: name.clone() });
            }
            continue;
        }
        let list = Request::get(t.res.collection_path(ns.as_deref()))
            .query_opt("labelSelector", args.selector.as_deref())
            .query_opt("fieldSelector", args.field_selector.as_deref());
        for item in s.client.json(list).await?.get("items").and_then(Value::as_array).into_iter().flatten() {
            let field = |p: &str| item.pointer(p).and_then(Value::as_str).map(str::to_string);
            if let Some(name) = field("/metadata/name") {
                waited.push(Waited { res: t.res.clone(), namespace: field("/metadata/namespace"), name });
            }
        }
    }
    if waited.is_empty() && !matches!(cond, Condition::Delete) {
        return Err(Error::Usage("no matching resources found".into()));
    }
    let mut failures = 0;
    for w in &waited {
        match wait_one(s, w, &cond, timeout).await {
            Ok(true) => output::print(&format!("{} condition met\n", output::name_of(&w.res, &w.name))),
            Ok(false) => {}
            Err(e) => {
                output::eprint_line(&e.line());
                failures += 1;
            }
        }
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

/// Waits for one object until `timeout` has passed. `Ok(false)`: nothing to report
/// (waiting for the deletion of an object that was not there, as kubectl has it).
async fn wait_one(s: &Session, w: &Waited, cond: &Condition, timeout: Duration) -> Result<bool, Error> {
    let deadline = Instant::now() + timeout;
    let (obj, _) = fetch(s, w).await?;
    if obj.is_none() {
        match cond {
            Condition::Delete => return Ok(false),
            Condition::Create => {}
            // A named object that is not there: the server's NotFound, as kubectl says it.
            _ => {
                s.client.json(Request::get(w.res.object_path(w.namespace.as_deref(), &w.name))).await?;
            }
        }
    }
    let what = format!("{}/{}", w.res.plural, w.name);
    // --timeout=0: one look.
    if timeout.is_zero() {
        return match cond.check(obj.as_ref())? {
            true => Ok(true),
            false => Err(Error::Exit { code: 1, message: format!("condition not met for {what}") }),
        };
    }
    match tokio::time::timeout_at(deadline, watch_until(s, w, cond)).await {
        Ok(result) => result.map(|()| true),
        Err(_) => Err(Error::Timeout(format!("timed out waiting for the condition on {what}"))),
    }
}

/// The object (if it exists) and the resourceVersion to watch from.
async fn fetch(s: &Session, w: &Waited) -> Result<(Option<Value>, String), Error> {
    let req = Request::get(w.res.collection_path(w.namespace.as_deref()))
        .query("fieldSelector", format!("metadata.name={}", w.name));
    let list = s.client.json(req).await?;
    let obj = list.get("items").and_then(Value::as_array).and_then(|items| items.first()).cloned();
    let rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
    Ok((obj, rv))
}

/// Looks at the object, then watches it until the condition holds.
async fn watch_until(s: &Session, w: &Waited, cond: &Condition) -> Result<(), Error> {
    loop {
        let (obj, rv) = fetch(s, w).await?;
        if cond.check(obj.as_ref())? {
            return Ok(());
        }
        let req = Request::get(w.res.collection_path(w.namespace.as_deref()))
            .query("fieldSelector", format!("metadata.name={}", w.name))
            .query("resourceVersion", rv)
            .query("watch", "true");
        let mut lines = s.client.lines(req).await?;
        while let Some(line) = lines.next().await? {
            let Ok(event) = serde_json::from_slice::<Value>(&line) else { continue };
            let object = event.get("object");
            let met = match event.get("type").and_then(Value::as_str).unwrap_or("") {
                "ADDED" | "MODIFIED" => cond.check(object)?,
                "DELETED" => cond.check(None)?,
                // 410 Gone or another error: look again with a fresh list.
                "ERROR" => break,
                _ => false,
            };
            if met {
                return Ok(());
            }
        }
        // The server ended the watch (its timeout); a short pause keeps a server that
        // ends every watch at once from being asked in a tight loop.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(phase: &str, ready: &str) -> Value {
        json!({"metadata": {"name": "p", "generation": 2},
               "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}], "replicas": 3}})
    }

    #[test]
    fn conditions() {
        let c = Condition::parse("condition=Ready").unwrap();
        assert!(c.check(Some(&pod("Running", "True"))).unwrap());
        assert!(!c.check(Some(&pod("Running", "False"))).unwrap());
        assert!(!c.check(None).unwrap());
        let c = Condition::parse("condition=ready=FALSE").unwrap();
        assert!(c.check(Some(&pod("Pending", "False"))).unwrap());
        // A condition observed for an older generation does not count yet.
        let mut old = pod("Running", "True");
        old["status"]["conditions"][0]["observedGeneration"] = json!(1);
        assert!(!Condition::parse("condition=Ready").unwrap().check(Some(&old)).unwrap());
    }

    #[test]
    fn delete_and_create() {
        let d = Condition::parse("delete").unwrap();
        assert!(d.check(None).unwrap() && !d.check(Some(&pod("Running", "True"))).unwrap());
        let c = Condition::parse("create").unwrap();
        assert!(!c.check(None).unwrap() && c.check(Some(&pod("Running", "True"))).unwrap());
    }

    #[test]
    fn jsonpath_conditions() {
        let c = Condition::parse("jsonpath={.status.phase}=Running").unwrap();
        assert!(c.check(Some(&pod("Running", "True"))).unwrap());
        assert!(!c.check(Some(&pod("Pending", "True"))).unwrap());
        let c = Condition::parse("jsonpath=.status.replicas='3'").unwrap();
        assert!(c.check(Some(&pod("Pending", "True"))).unwrap());
        let c = Condition::parse(r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}=True"#).unwrap();
        assert!(c.check(Some(&pod("Running", "True"))).unwrap());
        // Without a value: the field exists.
        let c = Condition::parse("jsonpath={.status.phase}").unwrap();
        assert!(c.check(Some(&pod("x", "y"))).unwrap());
        assert!(!c.check(Some(&json!({"status": {}}))).unwrap());
        let c = Condition::parse("jsonpath={.status}=x").unwrap();
        assert_eq!(c.check(Some(&pod("Running", "True"))).unwrap_err(), WaitError::Nested);
        let c = Condition::parse("jsonpath={.status.conditions[*].type}=x").unwrap();
        let two = json!({"status": {"conditions": [{"type": "a"}, {"type": "b"}]}});
        assert_eq!(c.check(Some(&two)).unwrap_err(), WaitError::ManyValues);
    }

    #[test]
    fn bad_conditions() {
        assert_eq!(Condition::parse("foo").unwrap_err(), WaitError::Unrecognized("foo".into()));
        assert_eq!(Condition::parse("condition=").unwrap_err(), WaitError::Unrecognized("condition=".into()));
        assert_eq!(Condition::parse("jsonpath=").unwrap_err(), WaitError::EmptyJsonPath);
        assert_eq!(Condition::parse("jsonpath={.a}=").unwrap_err(), WaitError::EmptyJsonPathValue);
        assert!(matches!(Condition::parse("jsonpath={.a[}=1"), Err(WaitError::BadJsonPath(_))));
        assert_eq!(
            WaitError::EmptyJsonPathValue.to_string(),
            "jsonpath wait has to have a value after equal sign, like --for=jsonpath='{.status.readyReplicas}'=3"
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_timeout("-1s").unwrap(), Duration::from_secs(7 * 24 * 3600));
        assert!(parse_timeout("soon").is_err());
    }
}
