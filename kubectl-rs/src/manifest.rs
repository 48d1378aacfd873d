//! Reading manifests for `apply -f` and `delete -f`: files, directories (their
//! `*.yaml`, `*.yml` and `*.json` files, sorted by name; `-R` descends) and `-` for
//! standard input. A file holds one or more YAML documents separated by `---`, or
//! JSON; `kind: List` (and any `…List` with `items`) is expanded into its items.

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("error parsing {source_name}: {reason}")]
    Parse { source_name: String, reason: String },
    #[error("error validating {source_name:?}: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error("no objects passed to {verb} (the files hold no YAML or JSON documents)")]
    Empty { verb: String },
}

/// One object from a manifest, with where it came from (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The file name as given, or `STDIN`.
    pub source: String,
    pub object: Value,
}

impl Manifest {
    pub fn api_version(&self) -> &str {
        self.object.get("apiVersion").and_then(Value::as_str).unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        self.object.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object.pointer("/metadata/namespace").and_then(Value::as_str).filter(|n| !n.is_empty())
    }
}

/// Reads every `-f` argument. `stdin` supplies the text for `-`.
pub fn read_all(
    args: &[String],
    recursive: bool,
    stdin: &mut dyn FnMut() -> std::io::Result<String>,
) -> Result<Vec<Manifest>, ManifestError> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            let text = stdin().map_err(|e| ManifestError::Read { path: "STDIN".into(), reason: e.to_string() })?;
            out.extend(parse("STDIN", &text)?);
            continue;
        }
        let path = Path::new(arg);
        let meta = std::fs::metadata(path).map_err(|e| ManifestError::Read {
            path: arg.clone(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or directory".into()
            } else {
                e.to_string()
            },
        })?;
        if meta.is_dir() {
            for file in manifest_files(path, recursive)? {
                let name = file.display().to_string();
                out.extend(parse(&name, &read_file(&file)?)?);
            }
        } else {
            out.extend(parse(arg, &read_file(path)?)?);
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path)
        .map_err(|e| ManifestError::Read { path: path.display().to_string(), reason: e.to_string() })
}

/// The manifest files of a directory, sorted by name.
fn manifest_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>, ManifestError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ManifestError::Read { path: dir.display().to_string(), reason: e.to_string() })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            if recursive {
                out.extend(manifest_files(&p, true)?);
            }
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Parses one file's text into objects: YAML documents (JSON is YAML too), empty
/// documents skipped, lists expanded, each checked for `apiVersion`, `kind` and a name.
pub fn parse(source: &str, text: &str) -> Result<Vec<Manifest>, ManifestError> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| ManifestError::Parse {
            source_name: source.to_string(),
            reason: format!("document {}: {e}", i + 1),
        })?;
        expand(source, i + 1, value, &mut out)?;
    }
    Ok(out)
}

fn expand(source: &str, doc: usize, value: Value, out: &mut Vec<Manifest>) -> Result<(), ManifestError> {
    let invalid = |reason: String| ManifestError::Invalid { source_name: source.to_string(), reason };
    match value {
        Value::Null => Ok(()),
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind.ends_with("List")
                && let Some(Value::Array(items)) = map.get("items")
            {
                for item in items.clone() {
                    expand(source, doc, item, out)?;
                }
                return Ok(());
            }
            let object = Value::Object(map);
            let m = Manifest { source: source.to_string(), object };
            let mut missing = Vec::new();
            if m.api_version().is_empty() {
                missing.push("apiVersion not set");
            }
            if m.kind().is_empty() {
                missing.push("kind not set");
            }
            if m.name().is_empty() {
                missing.push("metadata.name not set");
            }
            if !missing.is_empty() {
                return Err(invalid(format!("document {doc}: {}", missing.join(", "))));
            }
            out.push(m);
            Ok(())
        }
        other => Err(invalid(format!(
            "document {doc} is a {} where an object (a mapping with apiVersion, kind and metadata) was expected",
            match other {
                Value::Array(_) => "list",
                Value::String(_) => "string",
                _ => "scalar",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_with_empty_documents() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n---\n---\n# only a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\n  namespace: x\n";
        let ms = parse("f.yaml", text).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!((ms[0].kind(), ms[0].name(), ms[0].namespace()), ("ConfigMap", "a", None));
        assert_eq!((ms[1].api_version(), ms[1].name(), ms[1].namespace()), ("apps/v1", "b", Some("x")));
        assert_eq!(ms[0].object["data"]["k"], "v");
    }

    #[test]
    fn json_and_lists_are_expanded() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"ConfigMapList","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}]}]}"#;
        let names: Vec<String> = parse("l.json", text).unwrap().iter().map(|m| m.name().to_string()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn bad_documents_are_reported_with_their_file() {
        let err = parse("bad.yaml", "apiVersion: v1\nkind: [\n").unwrap_err();
        assert!(matches!(&err, ManifestError::Parse { source_name, .. } if source_name == "bad.yaml"), "{err}");
        let err = parse("bad.yaml", "apiVersion: v1\nmetadata: {name: x}\n").unwrap_err();
        assert_eq!(err.to_string(), r#"error validating "bad.yaml": document 1: kind not set"#);
        let err = parse("bad.yaml", "- a\n- b\n").unwrap_err();
        assert!(err.to_string().contains("is a list"), "{err}");
    }

    #[test]
    fn directories_hold_yaml_yml_and_json_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let cm = |n: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\n");
        std::fs::write(dir.path().join("b.yml"), cm("b")).unwrap();
        std::fs::write(dir.path().join("a.yaml"), cm("a")).unwrap();
        std::fs::write(dir.path().join("c.json"), r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#)
            .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/d.yaml"), cm("d")).unwrap();
        let arg = dir.path().display().to_string();
        let mut no_stdin = || -> std::io::Result<String> { unreachable!() };
        let names = |ms: Vec<Manifest>| ms.iter().map(|m| m.name().to_string()).collect::<Vec<_>>();
        assert_eq!(names(read_all(std::slice::from_ref(&arg), false, &mut no_stdin).unwrap()), ["a", "b", "c"]);
        assert_eq!(names(read_all(&[arg], true, &mut no_stdin).unwrap()), ["a", "b", "c", "d"]);
        let mut stdin = || Ok(cm("s"));
        let ms = read_all(&["-".to_string()], false, &mut stdin).unwrap();
        assert_eq!((ms[0].name(), ms[0].source.as_str()), ("s", "STDIN"));
        assert!(matches!(read_all(&["/no/such".into()], false, &mut no_stdin), Err(ManifestError::Read { .. })));
    }
}
