//! Writing for people and scripts: stdout/stderr, and objects as YAML, JSON or
//! `kind.group/name`, the way kubectl prints them.

use crate::discovery::ApiResource;
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Write;

/// Writes to stdout. A closed pipe (`rkctl get pods | head -1`) ends the program
/// quietly, as it ends kubectl.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// Writes raw bytes (a log stream, a command's output) to stdout, like [`print`].
pub fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// Writes raw bytes to stderr.
pub fn eprint_bytes(bytes: &[u8]) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(bytes).and_then(|()| err.flush());
}

/// Writes one line to stderr.
pub fn eprint_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// A `Warning` from the server.
pub fn warn(text: &str) {
    eprint_line(&format!("Warning: {text}"));
}

/// Output formats for objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The table, with the extra (priority 1) columns.
    Wide,
    Yaml,
    Json,
    /// `kind.group/name` only.
    Name,
}

/// YAML as kubectl writes it (see [`crate::yaml`]).
pub fn to_yaml(value: &Value) -> String {
    crate::yaml::to_string(value)
}

/// JSON as kubectl writes it: four spaces of indentation and a final newline.
pub fn to_json(value: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if value.serialize(&mut ser).is_err() {
        return String::new();
    }
    let mut text = String::from_utf8(buf).unwrap_or_default();
    text.push('\n');
    text
}

/// A list of objects as kubectl prints several: `kind: List`.
pub fn list(items: Vec<Value>) -> Value {
    json!({ "apiVersion": "v1", "items": items, "kind": "List", "metadata": { "resourceVersion": "" } })
}

/// Drops `metadata.managedFields`, which kubectl hides unless asked.
pub fn hide_managed_fields(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// `deployment.apps/web`.
pub fn name_of(res: &ApiResource, name: &str) -> String {
    format!("{}/{}", res.kind_group(), name)
}

/// Prints objects in a machine format: one object as itself, several as a `List`.
/// Each item comes with its `kind.group` (for `-o name`).
pub fn objects(format: Format, mut items: Vec<(String, Value)>, single: bool) {
    match format {
        Format::Name => {
            let mut text = String::new();
            for (kind, item) in &items {
                let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                text.push_str(&format!("{kind}/{name}\n"));
            }
            print(&text);
        }
        Format::Yaml | Format::Json => {
            let value = if single && items.len() == 1 {
                items.remove(0).1
            } else {
                list(items.into_iter().map(|(_, v)| v).collect())
            };
            print(&if format == Format::Yaml { to_yaml(&value) } else { to_json(&value) });
        }
        Format::Wide => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_four_spaces_and_sorted_keys() {
        let v = json!({"kind": "X", "apiVersion": "v1", "metadata": {"name": "a"}});
        assert_eq!(
            to_json(&v),
            "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"X\",\n    \"metadata\": {\n        \"name\": \"a\"\n    }\n}\n"
        );
    }

    #[test]
    fn yaml_lists_are_not_indented() {
        let v = list(vec![json!({"kind": "ConfigMap", "metadata": {"name": "a"}})]);
        assert_eq!(
            to_yaml(&v),
            "apiVersion: v1\nitems:\n- kind: ConfigMap\n  metadata:\n    name: a\nkind: List\nmetadata:\n  resourceVersion: \"\"\n"
        );
    }
}
