//! `rkctl patch TYPE/NAME -p PATCH [--type strategic|merge|json]`: the patch (JSON
//! or YAML, from `-p` or `--patch-file`) goes to the server as it is, with the
//! content type of its kind; the server does the patching.

use crate::Session;
use crate::cli::{DryRun, PatchArgs, PatchType};
use crate::client::Request;
use crate::error::Error;
use crate::output::{self, Format, PrintOptions, Printer};
use http::Method;
use serde_json::Value;

/// The patch text as JSON. YAML is accepted too (JSON is YAML).
pub fn parse_patch(text: &str, kind: PatchType) -> Result<Value, Error> {
    let shown: String = text.chars().take(80).collect();
    let value: Value = serde_json::from_str(text).or_else(|_| serde_norway::from_str(text)).map_err(|e| {
        Error::Usage(format!(
            "unable to parse the patch {shown:?}: {e}; give JSON (or YAML), e.g. -p '{{\"spec\":{{\"replicas\":2}}}}'"
        ))
    })?;
    match (kind, &value) {
        (PatchType::Json, Value::Array(_)) => Ok(value),
        (PatchType::Json, _) => Err(Error::Usage(format!(
            "a JSON patch (--type json) is a list of operations, e.g. '[{{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":2}}]', not {shown:?}"
        ))),
        (_, Value::Object(_)) => Ok(value),
        _ => Err(Error::Usage(format!(
            "a {} patch is a JSON object, e.g. '{{\"spec\":{{\"replicas\":2}}}}', not {shown:?} (a list of operations needs --type json)",
            if kind == PatchType::Merge { "merge" } else { "strategic merge" }
        ))),
    }
}

fn content_type(kind: PatchType) -> &'static str {
    match kind {
        PatchType::Strategic => "application/strategic-merge-patch+json",
        PatchType::Merge => "application/merge-patch+json",
        PatchType::Json => "application/json-patch+json",
    }
}

pub async fn run(s: &Session, args: &PatchArgs) -> Result<(), Error> {
    let text = match (&args.patch, &args.patch_file) {
        (Some(_), Some(_)) => return Err(Error::Usage("give either -p PATCH or --patch-file FILE, not both".into())),
        (Some(p), None) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| Error::Usage(format!("cannot read the patch file {}: {e}", f.display())))?,
        (None, None) => {
            return Err(Error::Usage(
                "must specify --patch (-p) or --patch-file containing the contents of the patch".into(),
            ));
        }
    };
    if text.trim().is_empty() {
        return Err(Error::Usage(
            "the patch is empty; give the changes with -p, e.g. -p '{\"spec\":{\"replicas\":2}}'".into(),
        ));
    }
    let patch = parse_patch(&text, args.patch_type)?;
    if matches!(args.output, Some(Format::Wide)) {
        return Err(Error::Usage("patch prints -o yaml, json, name, jsonpath=… or custom-columns=…".into()));
    }
    let printer = match &args.output {
        Some(format) => Printer::new(format, PrintOptions::default())?,
        None => None,
    };
    let targets = crate::target::parse(s.discovery().await?, &args.resources, "patch")?;
    let mut failures = 0;
    for t in &targets.targets {
        if t.names.is_empty() {
            return Err(Error::Usage(format!(
                "no name was given for {}; use \"rkctl patch {}/NAME -p PATCH\"",
                t.res.qualified(),
                t.res.singular
            )));
        }
        let ns = t.res.namespaced.then_some(s.namespace.as_str());
        for name in &t.names {
            let mut path = t.res.object_path(ns, name);
            if let Some(sub) = &args.subresource {
                path = format!("{path}/{sub}");
            }
            let result = async {
                // The patch is pinned to the version read first, so "no change"
                // means this patch changed nothing, even while a controller keeps
                // writing the object's status; a lost race reads again.
                let mut attempt = 1;
                loop {
                    let before = s.client.json(Request::get(&path)).await?;
                    let pinned = before.pointer("/metadata/resourceVersion").and_then(|rv| pin_version(&patch, rv));
                    let mut req = Request::new(Method::PATCH, &path)
                        .body(content_type(args.patch_type), pinned.as_ref().unwrap_or(&patch))
                        .query("fieldManager", "rkctl-patch");
                    if args.dry_run == DryRun::Server {
                        req = req.query("dryRun", "All");
                    }
                    match s.client.json(req).await {
                        Err(e) if pinned.is_some() && e.is_stale_version() && attempt < PINNED_ATTEMPTS => attempt += 1,
                        result => return Ok::<_, Error>((before, result?)),
                    }
                }
            }
            .await;
            match result {
                Ok((before, mut after)) => {
                    if let Some(printer) = &printer {
                        output::hide_managed_fields(&mut after);
                        if let Err(e) = output::objects(printer, vec![(t.res.kind_group(), after)], true) {
                            output::eprint_line(&Error::from(e).line());
                            failures += 1;
                        }
                        continue;
                    }
                    let changed = before.pointer("/metadata/resourceVersion")
                        != after.pointer("/metadata/resourceVersion")
                        || (args.dry_run == DryRun::Server && strip_meta(&before) != strip_meta(&after));
                    let mut msg = if changed { "patched" } else { "patched (no change)" }.to_string();
                    if args.dry_run == DryRun::Server {
                        msg.push_str(" (server dry run)");
                    }
                    output::print(&format!("{} {msg}\n", output::name_of(&t.res, name)));
                }
                Err(e) => {
                    output::eprint_line(&e.line());
                    failures += 1;
                }
            }
        }
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

/// How often a patch pinned to the version it read is tried before the conflict
/// is reported (each try reads the object again).
pub const PINNED_ATTEMPTS: u32 = 5;

/// The patch made conditional on the object still being at `rv` (the server
/// answers 409 Conflict otherwise), or None when the patch names a version of its
/// own, which then stands as the user's precondition. A JSON patch gets an
/// operation setting the version, which the server treats the same way.
pub fn pin_version(patch: &Value, rv: &Value) -> Option<Value> {
    match patch {
        Value::Array(ops) => {
            let names_version = ops.iter().any(|op| {
                op.get("path").and_then(Value::as_str).is_some_and(|p| p.starts_with("/metadata/resourceVersion"))
            });
            let mut ops = ops.clone();
            ops.push(serde_json::json!({"op": "replace", "path": "/metadata/resourceVersion", "value": rv}));
            (!names_version).then_some(Value::Array(ops))
        }
        Value::Object(_) if patch.pointer("/metadata/resourceVersion").is_some() => None,
        Value::Object(_) => {
            let mut pinned = patch.clone();
            match pinned.get_mut("metadata") {
                Some(Value::Object(meta)) => {
                    meta.insert("resourceVersion".into(), rv.clone());
                }
                // Not an object: left for the server to refuse as the user wrote it.
                Some(_) => return None,
                None => pinned["metadata"] = serde_json::json!({ "resourceVersion": rv }),
            }
            Some(pinned)
        }
        _ => None,
    }
}

/// The object without the fields every write changes (for dry-run comparisons).
fn strip_meta(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation"] {
            m.remove(k);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_are_pinned_to_the_version_read_unless_they_name_one() {
        let rv = json!("7");
        assert_eq!(
            pin_version(&json!({"spec": {"replicas": 2}}), &rv),
            Some(json!({"spec": {"replicas": 2}, "metadata": {"resourceVersion": "7"}}))
        );
        assert_eq!(
            pin_version(&json!({"metadata": {"labels": {"a": "b"}}}), &rv),
            Some(json!({"metadata": {"labels": {"a": "b"}, "resourceVersion": "7"}}))
        );
        assert_eq!(pin_version(&json!({"metadata": {"resourceVersion": "3"}}), &rv), None);
        assert_eq!(pin_version(&json!({"metadata": "nonsense"}), &rv), None);
        let ops = json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]);
        assert_eq!(
            pin_version(&ops, &rv),
            Some(json!([
                {"op": "replace", "path": "/spec/replicas", "value": 2},
                {"op": "replace", "path": "/metadata/resourceVersion", "value": "7"}
            ]))
        );
        assert_eq!(pin_version(&json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "3"}]), &rv), None);
    }

    #[test]
    fn patches_parse_as_json_or_yaml() {
        assert_eq!(
            parse_patch(r#"{"spec":{"replicas":2}}"#, PatchType::Strategic).unwrap(),
            json!({"spec": {"replicas": 2}})
        );
        assert_eq!(parse_patch("spec:\n  replicas: 2\n", PatchType::Merge).unwrap(), json!({"spec": {"replicas": 2}}));
        assert!(parse_patch(r#"[{"op":"remove","path":"/a"}]"#, PatchType::Json).is_ok());
        let e = parse_patch(r#"{"op":"remove"}"#, PatchType::Json).unwrap_err().line();
        assert!(e.starts_with("error: a JSON patch (--type json) is a list of operations"), "{e}");
        let e = parse_patch(r#"[{"op":"remove"}]"#, PatchType::Merge).unwrap_err().line();
        assert!(e.contains("needs --type json"), "{e}");
        let e = parse_patch("{nope", PatchType::Strategic).unwrap_err().line();
        assert!(e.starts_with("error: unable to parse the patch \"{nope\""), "{e}");
    }
}
