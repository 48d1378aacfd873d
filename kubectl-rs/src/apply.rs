//! `rkctl apply -f`: server-side apply of every object in the files
//! (`PATCH` with `application/apply-patch+yaml`, field manager `rkctl`).
//!
//! kubectl's server-side apply prints `serverside-applied` for everything; rkctl
//! reads the object first so it can say what happened, as client-side apply does:
//! `created` (it did not exist), `configured` (its resourceVersion moved — or, in a
//! server dry run, which never moves it, its content would change) or `unchanged`.

use crate::Session;
use crate::cli::{ApplyArgs, DryRun};
use crate::client::{APPLY_PATCH, Request};
use crate::discovery::{ApiResource, Discovery};
use crate::error::Error;
use crate::manifest::{self, Manifest, ManifestError};
use crate::output::{self, PrintOptions, Printer};
use http::Method;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

pub async fn run(s: &Session, args: &ApplyArgs) -> Result<(), Error> {
    let manifests = manifest::read_all(&args.files, args.recursive, &mut read_stdin)?;
    if manifests.is_empty() {
        return Err(ManifestError::Empty { verb: "apply".into() }.into());
    }
    // A bad -o template fails here, before anything is changed.
    let printer = match &args.output {
        Some(format) => Printer::new(format, PrintOptions::default())?,
        None => None,
    };
    let discovery = s.discovery().await?;
    let mut failures = 0;
    let mut applied: Vec<(String, Value)> = Vec::new();
    for m in &manifests {
        match apply_one(s, discovery, args, m).await {
            Ok((res, outcome, mut obj)) => {
                let name = output::name_of(res, m.name());
                match printer {
                    None => {
                        let suffix = if args.dry_run == DryRun::Server { " (server dry run)" } else { "" };
                        output::print(&format!("{name} {}{suffix}\n", outcome.word()));
                    }
                    Some(_) => {
                        output::hide_managed_fields(&mut obj);
                        applied.push((res.kind_group(), obj));
                    }
                }
            }
            Err(e) => {
                output::eprint_line(&e.line());
                failures += 1;
            }
        }
    }
    if let Some(printer) = &printer {
        let single = applied.len() == 1;
        output::objects(printer, applied, single)?;
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

pub fn read_stdin() -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(text)
}

/// The resource of a manifest's object, and the namespace it goes to: the file's,
/// else `-n`/the context's; none for cluster-scoped kinds.
pub fn resolve<'d>(
    discovery: &'d Discovery,
    m: &Manifest,
    default_namespace: &str,
) -> Result<(&'d ApiResource, Option<String>), Error> {
    let res = discovery.by_kind(m.api_version(), m.kind()).ok_or_else(|| Error::UnknownKind {
        kind: m.kind().to_string(),
        api_version: m.api_version().to_string(),
        from: Some(m.source.clone()),
    })?;
    let ns = res.namespaced.then(|| m.namespace().unwrap_or(default_namespace).to_string());
    Ok((res, ns))
}

async fn apply_one<'d>(
    s: &Session,
    discovery: &'d Discovery,
    args: &ApplyArgs,
    m: &Manifest,
) -> Result<(&'d ApiResource, Outcome, Value), Error> {
    let (res, ns) = resolve(discovery, m, &s.namespace)?;
    let mut obj = m.object.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        match &ns {
            Some(ns) => {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
            None => {
                meta.remove("namespace");
            }
        }
    }
    let path = res.object_path(ns.as_deref(), m.name());
    let context = format!("error when applying {:?}", m.source);
    // The configuration is pinned to the version read first (unless it names one
    // itself), so "unchanged" means this apply changed nothing even while a
    // controller keeps writing the object's status; a lost race reads again.
    let mut attempt = 1;
    let (before, after) = loop {
        let before = match s.client.json(Request::get(&path)).await {
            Ok(v) => Some(v),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.context(context)),
        };
        let pinned = before
            .as_ref()
            .and_then(|b| b.pointer("/metadata/resourceVersion"))
            .and_then(|rv| crate::patch::pin_version(&obj, rv));
        let mut req = Request::new(Method::PATCH, &path)
            .body(APPLY_PATCH, pinned.as_ref().unwrap_or(&obj))
            .query("fieldManager", &args.field_manager)
            .query("fieldValidation", "Strict")
            .query("force", args.force_conflicts.to_string());
        if args.dry_run == DryRun::Server {
            req = req.query("dryRun", "All");
        }
        match s.client.json(req).await {
            Err(e) if pinned.is_some() && e.is_stale_version() && attempt < crate::patch::PINNED_ATTEMPTS => {
                attempt += 1
            }
            result => break (before, result.map_err(|e| e.context(context))?),
        }
    };
    let outcome = match &before {
        None => Outcome::Created,
        Some(before) if changed(before, &after) => Outcome::Configured,
        Some(_) => Outcome::Unchanged,
    };
    Ok((res, outcome, after))
}

/// Whether applying changed the object: its resourceVersion moved, or (a dry run
/// keeps the old resourceVersion) its content differs, bookkeeping aside.
pub fn changed(before: &Value, after: &Value) -> bool {
    let rv = |v: &Value| v.pointer("/metadata/resourceVersion").cloned();
    if rv(before) != rv(after) {
        return true;
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
            meta.remove("resourceVersion");
        }
        v
    };
    strip(before) != strip(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn change_detection() {
        let before = json!({"metadata": {"name": "a", "resourceVersion": "5", "managedFields": [{"time": "t1"}]}, "spec": {"replicas": 2}});
        let same = json!({"metadata": {"name": "a", "resourceVersion": "5", "managedFields": [{"time": "t2"}]}, "spec": {"replicas": 2}});
        assert!(!changed(&before, &same));
        let moved = json!({"metadata": {"name": "a", "resourceVersion": "6"}, "spec": {"replicas": 2}});
        assert!(changed(&before, &moved));
        // A server dry run answers with the old resourceVersion and the new content.
        let dry = json!({"metadata": {"name": "a", "resourceVersion": "5"}, "spec": {"replicas": 3}});
        assert!(changed(&before, &dry));
    }
}
