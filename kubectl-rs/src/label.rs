//! `rkctl label` and `rkctl annotate`: `TYPE NAME… KEY=VALUE… KEY-…` (or
//! `TYPE/NAME`, `-l SELECTOR`, `--all`). Each object is read, the change is checked
//! against it (a different existing value needs `--overwrite`), and only what
//! changes is sent, as a JSON merge patch of `metadata.labels` or
//! `metadata.annotations`.

use crate::Session;
use crate::cli::{DryRun, MetaArgs};
use crate::client::Request;
use crate::discovery::ApiResource;
use crate::error::Error;
use crate::output;
use http::Method;
use serde_json::{Map, Value, json};

/// Which map of `metadata` the command changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Labels,
    Annotations,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Labels => "labels",
            Field::Annotations => "annotations",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Field::Labels => "label",
            Field::Annotations => "annotation",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Field::Labels => "label",
            Field::Annotations => "annotate",
        }
    }
}

/// What the command line asks to change.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

/// Splits the arguments into resources and changes (`KEY=VALUE`, `KEY-`), and
/// checks the keys and (for labels) the values.
pub fn split_args(args: &[String], field: Field) -> Result<(Vec<String>, Changes), Error> {
    let is_change = |a: &str| a.contains('=') || a.ends_with('-');
    let first_change = args.iter().position(|a| is_change(a)).unwrap_or(args.len());
    let (resources, rest) = args.split_at(first_change);
    let mut changes = Changes::default();
    for arg in rest {
        if let Some((k, v)) = arg.split_once('=') {
            check_key(k, arg, field)?;
            if field == Field::Labels {
                check_label_value(v, arg)?;
            }
            changes.set.push((k.to_string(), v.to_string()));
        } else if let Some(k) = arg.strip_suffix('-') {
            check_key(k, arg, field)?;
            changes.remove.push(k.to_string());
        } else {
            return Err(Error::Usage(format!(
                "{arg:?} is neither KEY=VALUE nor KEY-: give the resources first, then the {} changes",
                field.singular()
            )));
        }
    }
    if changes.set.is_empty() && changes.remove.is_empty() {
        return Err(Error::Usage(format!(
            "at least one {} update is required, e.g. \"rkctl {} deploy/web tier=front\" (KEY- removes one)",
            field.singular(),
            field.verb()
        )));
    }
    let both: Vec<&str> =
        changes.remove.iter().filter(|k| changes.set.iter().any(|(s, _)| s == *k)).map(String::as_str).collect();
    if !both.is_empty() {
        return Err(Error::Usage(format!(
            "can not both modify and remove the following {}(s) in the same command: {}",
            field.singular(),
            both.join(", ")
        )));
    }
    Ok((resources.to_vec(), changes))
}

fn name_part_ok(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn prefix_ok(prefix: &str) -> bool {
    prefix.len() <= 253
        && prefix.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// A qualified name: `[prefix/]name`, as Kubernetes checks label and annotation keys.
fn check_key(key: &str, arg: &str, field: Field) -> Result<(), Error> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => prefix_ok(prefix) && name_part_ok(name),
        None => name_part_ok(key),
    };
    if ok {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "invalid {} spec {arg:?}: a key is an optional DNS prefix and \"/\", then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (e.g. app or example.com/tier)",
        field.singular()
    )))
}

fn check_label_value(value: &str, arg: &str) -> Result<(), Error> {
    if value.is_empty() || name_part_ok(value) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "invalid label spec {arg:?}: a value is empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    )))
}

/// How one object's map changes: the merge patch's content (`null` removes), and
/// the keys asked to be removed that were not there.
#[derive(Debug, PartialEq)]
struct Plan {
    patch: Map<String, Value>,
    missing: Vec<String>,
    /// Only removals changed anything (kubectl then says "unlabeled").
    only_removed: bool,
}

fn plan(current: &Map<String, Value>, changes: &Changes, overwrite: bool, field: Field) -> Result<Plan, Error> {
    let mut patch = Map::new();
    let mut conflicts = Vec::new();
    for (k, v) in &changes.set {
        match current.get(k).and_then(Value::as_str) {
            Some(old) if old == v => {}
            Some(old) if !overwrite => conflicts.push(format!("'{k}' already has a value ({old})")),
            _ => {
                patch.insert(k.clone(), json!(v));
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Usage(match field {
            Field::Labels => format!("{}, and --overwrite is false", conflicts.join(", ")),
            Field::Annotations => {
                format!("--overwrite is false but found the following declared annotation(s): {}", conflicts.join(", "))
            }
        }));
    }
    let only_removed = patch.is_empty();
    let mut missing = Vec::new();
    for k in &changes.remove {
        if current.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        } else {
            missing.push(k.clone());
        }
    }
    Ok(Plan { only_removed: only_removed && !patch.is_empty(), patch, missing })
}

pub async fn run(s: &Session, args: &MetaArgs, field: Field) -> Result<(), Error> {
    let (resources, changes) = split_args(&args.args, field)?;
    if resources.is_empty() {
        return Err(Error::Usage(format!(
            "you must specify the objects to {}, e.g. \"rkctl {} deploy/web app=web\"",
            field.verb(),
            field.verb()
        )));
    }
    let targets = crate::target::parse(s.discovery().await?, &resources, field.verb())?;
    let mut objects: Vec<(ApiResource, Value)> = Vec::new();
    let mut failures = 0;
    for t in &targets.targets {
        let ns = t.res.namespaced.then_some(s.namespace.as_str());
        if !t.names.is_empty() {
            if args.selector.is_some() || args.all {
                return Err(Error::Usage("-l and --all cannot be combined with object names".into()));
            }
            for name in &t.names {
                match s.client.json(Request::get(t.res.object_path(ns, name))).await {
                    Ok(obj) => objects.push((t.res.clone(), obj)),
                    Err(e) => {
                        output::eprint_line(&e.line());
                        failures += 1;
                    }
                }
            }
        } else if args.selector.is_some() || args.all {
            let req = Request::get(t.res.collection_path(ns)).query_opt("labelSelector", args.selector.as_deref());
            let list = s.client.json(req).await?;
            for item in list.get("items").and_then(Value::as_array).into_iter().flatten() {
                objects.push((t.res.clone(), item.clone()));
            }
        } else {
            return Err(Error::Usage(format!(
                "no name was given for {}; give names, -l SELECTOR or --all",
                t.res.qualified()
            )));
        }
    }
    if objects.is_empty() && failures == 0 {
        output::eprint_line("No resources found");
    }
    for (res, obj) in objects {
        let mut obj = obj;
        let mut attempt = 1;
        let result = loop {
            match change_one(s, args, field, &changes, &res, &obj).await {
                // The object moved between reading and writing (a controller wrote
                // its status): check the fresh version against --overwrite again.
                Err(e) if e.is_stale_version() && attempt < crate::patch::PINNED_ATTEMPTS => {
                    attempt += 1;
                    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                    let ns = res.namespaced.then_some(s.namespace.as_str());
                    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).or(ns);
                    match s.client.json(Request::get(res.object_path(ns, name))).await {
                        Ok(fresh) => obj = fresh,
                        Err(e) => break Err(e),
                    }
                }
                other => break other,
            }
        };
        if let Err(e) = result {
            output::eprint_line(&e.line());
            failures += 1;
        }
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

async fn change_one(
    s: &Session,
    args: &MetaArgs,
    field: Field,
    changes: &Changes,
    res: &ApiResource,
    obj: &Value,
) -> Result<(), Error> {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let empty = Map::new();
    let current = obj.pointer(&format!("/metadata/{}", field.key())).and_then(Value::as_object).unwrap_or(&empty);
    let plan = plan(current, changes, args.overwrite, field)?;
    // kubectl prints this on stdout, before the result line.
    for k in &plan.missing {
        output::print(&format!("{} {k:?} not found.\n", field.singular()));
    }
    let suffix = if args.dry_run == DryRun::Server { " (server dry run)" } else { "" };
    let who = output::name_of(res, name);
    if plan.patch.is_empty() {
        let msg = if field == Field::Labels { "not labeled" } else { "annotated" };
        output::print(&format!("{who} {msg}{suffix}\n"));
        return Ok(());
    }
    let ns = res.namespaced.then_some(s.namespace.as_str());
    let mut patch = json!({ "metadata": { field.key(): plan.patch } });
    // Only this version of the object was checked against --overwrite.
    if !args.overwrite
        && let Some(rv) = obj.pointer("/metadata/resourceVersion")
    {
        patch["metadata"]["resourceVersion"] = rv.clone();
    }
    let mut req = Request::new(Method::PATCH, res.object_path(ns, name)).body("application/merge-patch+json", &patch);
    if args.dry_run == DryRun::Server {
        req = req.query("dryRun", "All");
    }
    s.client.json(req).await?;
    let msg = match field {
        Field::Labels if plan.only_removed && !args.overwrite => "unlabeled",
        Field::Labels => "labeled",
        Field::Annotations => "annotated",
    };
    output::print(&format!("{who} {msg}{suffix}\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_split_into_resources_and_changes() {
        let (res, ch) = split_args(&args(&["deploy", "web", "a=1", "example.com/b=", "c-"]), Field::Labels).unwrap();
        assert_eq!(res, ["deploy", "web"]);
        assert_eq!(ch.set, [("a".to_string(), "1".to_string()), ("example.com/b".to_string(), String::new())]);
        assert_eq!(ch.remove, ["c"]);
        let err = |a: &[&str], f| split_args(&args(a), f).unwrap_err().line();
        assert!(err(&["deploy/web"], Field::Labels).starts_with("error: at least one label update is required"));
        assert!(err(&["deploy/web", "a=1", "web2"], Field::Labels).contains("neither KEY=VALUE nor KEY-"));
        assert!(err(&["deploy/web", "a b=1"], Field::Labels).starts_with("error: invalid label spec \"a b=1\""));
        assert!(err(&["deploy/web", "a=x y"], Field::Labels).starts_with("error: invalid label spec \"a=x y\""));
        // Annotation values are free text.
        assert!(split_args(&args(&["deploy/web", "note=x y!"]), Field::Annotations).is_ok());
        assert!(err(&["deploy/web", "a=1", "a-"], Field::Labels).contains("can not both modify and remove"));
    }

    #[test]
    fn plans_respect_overwrite() {
        let current: Map<String, Value> = serde_json::from_value(json!({"app": "web", "tier": "front"})).unwrap();
        let ch = |set: &[(&str, &str)], remove: &[&str]| Changes {
            set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            remove: remove.iter().map(|k| k.to_string()).collect(),
        };
        let p = plan(&current, &ch(&[("app", "web"), ("new", "1")], &["tier", "gone"]), false, Field::Labels).unwrap();
        assert_eq!(Value::Object(p.patch), json!({"new": "1", "tier": null}));
        assert_eq!(p.missing, ["gone"]);
        assert!(!p.only_removed);
        let e = plan(&current, &ch(&[("app", "api")], &[]), false, Field::Labels).unwrap_err();
        assert_eq!(e.line(), "error: 'app' already has a value (web), and --overwrite is false");
        let p = plan(&current, &ch(&[("app", "api")], &[]), true, Field::Labels).unwrap();
        assert_eq!(Value::Object(p.patch), json!({"app": "api"}));
        let p = plan(&current, &ch(&[], &["tier"]), false, Field::Labels).unwrap();
        assert!(p.only_removed);
    }
}
