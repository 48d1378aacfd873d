//! `rkctl edit TYPE NAME` (or `TYPE/NAME`): the object opens in an editor
//! (`KUBE_EDITOR`, `EDITOR`, else `vi`), as YAML or JSON (`-o json`), and what is saved
//! goes back to the server, as kubectl edit does:
//!
//! - the change is sent as a JSON merge patch computed from the object as it was opened
//!   ([`merge_diff`]): only the fields the user changed, so what controllers wrote
//!   meanwhile stays (a `resourceVersion` the user edits becomes a precondition);
//! - a file saved unchanged, or emptied, cancels ("Edit cancelled, no changes made.");
//! - when the server refuses the change, the editor opens again with the error as
//!   comments on top and the edit kept; saved again without a change, the edit is kept
//!   in a file and the error is the command's.

use crate::Session;
use crate::cli::EditArgs;
use crate::client::Request;
use crate::error::Error;
use crate::output;
use http::Method;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

const HEADER: &str = "# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
";

pub async fn run(s: &Session, args: &EditArgs) -> Result<(), Error> {
    let json = match args.output.as_deref() {
        None | Some("yaml") => false,
        Some("json") => true,
        Some(other) => {
            return Err(Error::Usage(format!("edit opens objects as yaml or json, not {other:?} (-o yaml|json)")));
        }
    };
    let targets = crate::target::parse(s.discovery().await?, &args.resources, "edit")?;
    let mut failures = 0;
    for t in &targets.targets {
        if t.names.is_empty() {
            return Err(Error::Usage(format!(
                "no name was given for {}; use \"rkctl edit {}/NAME\"",
                t.res.qualified(),
                t.res.singular
            )));
        }
        let ns = t.res.namespaced.then_some(s.namespace.as_str());
        for name in &t.names {
            let path = t.res.object_path(ns, name);
            match edit_one(s, &path, json).await {
                Ok(Outcome::Edited) => output::print(&format!("{} edited\n", output::name_of(&t.res, name))),
                Ok(Outcome::Unchanged) => output::eprint_line("Edit cancelled, no changes made."),
                Err(e) => {
                    output::eprint_line(&e.line());
                    failures += 1;
                }
            }
        }
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

enum Outcome {
    Edited,
    Unchanged,
}

async fn edit_one(s: &Session, path: &str, json: bool) -> Result<Outcome, Error> {
    let mut original = s.client.json(Request::get(path)).await?;
    output::hide_managed_fields(&mut original);
    let render = |v: &Value| if json { output::to_json(v) } else { output::to_yaml(v) };
    let file = EditFile::new(if json { "json" } else { "yaml" });
    let mut text = format!("{HEADER}{}", render(&original));
    // The last edit the server refused, and why.
    let mut refused: Option<(Value, Error)> = None;
    loop {
        std::fs::write(&file.path, &text).map_err(|e| file.error("write", e))?;
        run_editor(&file.path)?;
        let saved = std::fs::read_to_string(&file.path).map_err(|e| file.error("read", e))?;
        let body: String = saved.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
        if body.trim().is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let edited: Value = match serde_json::from_str(&body).or_else(|_| serde_norway::from_str(&body)) {
            Ok(v) => v,
            Err(e) => {
                // Reopened with what is wrong, the edit kept.
                text = format!("{HEADER}# error: the edited file does not parse: {e}\n#\n{body}\n");
                refused = None;
                continue;
            }
        };
        if edited == original {
            return Ok(Outcome::Unchanged);
        }
        // Saved again as the server refused it: give up, keeping the edit.
        if refused.as_ref().is_some_and(|(last, _)| *last == edited)
            && let Some((_, err)) = refused.take()
        {
            let kept = keep_copy(&body, json)?;
            output::eprint_line(&format!("error: A copy of your changes has been stored to \"{}\"", kept.display()));
            return Err(err);
        }
        // Only what the user changed: controllers' writes meanwhile (status, other
        // fields) are kept, as kubectl's two-way patch keeps them.
        let patch = merge_diff(&original, &edited).unwrap_or(Value::Object(Map::new()));
        let req = Request::new(Method::PATCH, path)
            .body("application/merge-patch+json", &patch)
            .query("fieldManager", "rkctl-edit");
        match s.client.json(req).await {
            Ok(_) => return Ok(Outcome::Edited),
            Err(e @ Error::Server(_)) => {
                let why: String = e.line().lines().map(|l| format!("# {l}\n")).collect();
                text = format!("{HEADER}{why}#\n{body}\n");
                refused = Some((edited, e));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The JSON merge patch (RFC 7386) that turns `from` into `to`: changed and added
/// fields, `null` for removed ones, lists replaced whole. `None` when they are equal.
pub fn merge_diff(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = Map::new();
            for (k, old) in a {
                match b.get(k) {
                    None => {
                        patch.insert(k.clone(), Value::Null);
                    }
                    Some(new) => {
                        if let Some(d) = merge_diff(old, new) {
                            patch.insert(k.clone(), d);
                        }
                    }
                }
            }
            for (k, new) in b {
                if !a.contains_key(k) {
                    patch.insert(k.clone(), new.clone());
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (a, b) if a == b => None,
        (_, b) => Some(b.clone()),
    }
}

/// Runs the user's editor on `path` and waits for it, with the terminal.
fn run_editor(path: &Path) -> Result<(), Error> {
    let editor = ["KUBE_EDITOR", "EDITOR"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    // Through the shell, as kubectl does, so `EDITOR="code --wait"` works.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| Error::Usage(format!("cannot start the editor {editor:?}: {e}; set KUBE_EDITOR or EDITOR")))?;
    if !status.success() {
        return Err(Error::Usage(format!(
            "the editor {editor:?} exited with {status}; nothing was changed (set KUBE_EDITOR or EDITOR to choose another)"
        )));
    }
    Ok(())
}

/// The refused edit, kept where the user can find it.
fn keep_copy(body: &str, json: bool) -> Result<PathBuf, Error> {
    let path = temp_path("kept", if json { "json" } else { "yaml" });
    std::fs::write(&path, body)
        .map_err(|e| Error::Usage(format!("cannot keep a copy of your changes in {}: {e}", path.display())))?;
    Ok(path)
}

/// A new file name in the temporary directory: `rkctl-<what>-<pid>-<nanos>.<ext>`.
fn temp_path(what: &str, ext: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("rkctl-{what}-{}-{nanos}.{ext}", std::process::id()))
}

/// The temporary file the editor opens, removed afterwards.
struct EditFile {
    path: PathBuf,
}

impl EditFile {
    fn new(ext: &str) -> EditFile {
        EditFile { path: temp_path("edit", ext) }
    }

    fn error(&self, what: &str, e: std::io::Error) -> Error {
        Error::Usage(format!("cannot {what} the file to edit, {}: {e}", self.path.display()))
    }
}

impl Drop for EditFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_diffs_carry_only_the_change() {
        let from = json!({"a": 1, "b": {"c": 2, "d": [1, 2]}, "gone": true});
        let to = json!({"a": 1, "b": {"c": 3, "d": [1, 2, 3]}, "new": "x"});
        assert_eq!(merge_diff(&from, &to), Some(json!({"b": {"c": 3, "d": [1, 2, 3]}, "gone": null, "new": "x"})));
        assert_eq!(merge_diff(&from, &from), None);
        assert_eq!(merge_diff(&json!({"a": {"b": 1}}), &json!({"a": 5})), Some(json!({"a": 5})));
    }
}
