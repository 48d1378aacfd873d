//! Writing for people and scripts: stdout/stderr, and objects as YAML, JSON,
//! `kind.group/name`, JSONPath templates or custom columns, the way kubectl prints
//! them. [`Format`] is what `-o` says; [`Printer`] is that format made ready to use.

use crate::columns::{self, Columns, ColumnsError};
use crate::discovery::ApiResource;
use crate::jsonpath::{JsonPathError, Template};
use crate::tabwriter::TabWriter;
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;

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

/// Output formats for objects (`-o`). The template formats carry their template,
/// or the file that holds it; [`Printer::new`] compiles them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The table, with the extra (priority 1) columns.
    Wide,
    Yaml,
    Json,
    /// `kind.group/name` only.
    Name,
    /// `jsonpath=TEMPLATE`: kubectl's JSONPath template (see [`crate::jsonpath`]).
    JsonPath(String),
    /// `jsonpath-file=FILE`: the template is in FILE.
    JsonPathFile(PathBuf),
    /// `jsonpath-as-json=TEMPLATE`: each action's values as a JSON array.
    JsonPathAsJson(String),
    /// `custom-columns=HEADER:PATH,...` (see [`crate::columns`]).
    CustomColumns(String),
    /// `custom-columns-file=FILE`: a line of headers, then a line of paths.
    CustomColumnsFile(PathBuf),
}

/// The `-o` values, for help and messages.
pub const FORMATS: &str = "wide, yaml, json, name, jsonpath=TEMPLATE, jsonpath-file=FILE, \
                           jsonpath-as-json=TEMPLATE, custom-columns=SPEC, custom-columns-file=FILE";

impl std::str::FromStr for Format {
    type Err = String;

    /// `json`, `jsonpath={.metadata.name}`, `custom-columns=NAME:.metadata.name`, …
    /// A template format without `=` parses (with an empty template) so that the
    /// error names what is missing, as kubectl's does.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || {
            format!("unable to match a printer suitable for the output format {text:?}, allowed formats are: {FORMATS}")
        };
        let (name, arg) = match text.split_once('=') {
            Some((name, arg)) => (name, arg.to_string()),
            None => (text, String::new()),
        };
        Ok(match name {
            "wide" | "yaml" | "json" | "name" if text.contains('=') => return Err(unknown()),
            "wide" => Format::Wide,
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            "name" => Format::Name,
            "jsonpath" => Format::JsonPath(arg),
            "jsonpath-file" => Format::JsonPathFile(arg.into()),
            "jsonpath-as-json" => Format::JsonPathAsJson(arg),
            "custom-columns" => Format::CustomColumns(arg),
            "custom-columns-file" => Format::CustomColumnsFile(arg.into()),
            _ => return Err(unknown()),
        })
    }
}

/// The format as `-o` spells it.
impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Format::Wide => f.write_str("wide"),
            Format::Yaml => f.write_str("yaml"),
            Format::Json => f.write_str("json"),
            Format::Name => f.write_str("name"),
            Format::JsonPath(t) => write!(f, "jsonpath={t}"),
            Format::JsonPathFile(p) => write!(f, "jsonpath-file={}", p.display()),
            Format::JsonPathAsJson(t) => write!(f, "jsonpath-as-json={t}"),
            Format::CustomColumns(s) => write!(f, "custom-columns={s}"),
            Format::CustomColumnsFile(p) => write!(f, "custom-columns-file={}", p.display()),
        }
    }
}

/// A `-o` format that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("template format specified but no template given")]
    NoTemplate,
    #[error("error reading {what} {}: {source}", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("error parsing jsonpath {template}, {source}")]
    JsonPathParse {
        template: String,
        #[source]
        source: JsonPathError,
    },
    #[error("error executing jsonpath {template:?}: Error executing template: {source}")]
    JsonPathExecute {
        template: String,
        #[source]
        source: JsonPathError,
    },
    #[error(transparent)]
    Columns(#[from] ColumnsError),
    #[error("--output {format} is not supported by {command}; use {supported}")]
    Unsupported { format: String, command: &'static str, supported: &'static str },
}

/// How objects are printed for `-o` formats other than tables.
#[derive(Debug)]
pub enum Printer {
    Yaml,
    Json,
    Name,
    JsonPath { template: Template, raw: String, as_json: bool },
    Columns { columns: Columns, no_headers: bool },
}

/// Settings from flags beside `-o`.
#[derive(Debug, Clone, Copy)]
pub struct PrintOptions {
    /// `--no-headers` (custom columns).
    pub no_headers: bool,
    /// `--allow-missing-template-keys` (JSONPath): a missing field prints nothing.
    pub allow_missing_keys: bool,
}

impl Default for PrintOptions {
    fn default() -> Self {
        PrintOptions { no_headers: false, allow_missing_keys: true }
    }
}

impl Printer {
    /// The printer for `format`; `None` for tables (`wide`), which commands print
    /// themselves. Templates are read and parsed here, before any request.
    pub fn new(format: &Format, opts: PrintOptions) -> Result<Option<Printer>, OutputError> {
        let read = |what: &'static str, path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|source| OutputError::ReadFile { what, path: path.clone(), source })
        };
        let jsonpath = |raw: String, as_json: bool| -> Result<Option<Printer>, OutputError> {
            if raw.is_empty() {
                return Err(OutputError::NoTemplate);
            }
            let template = Template::parse(&raw)
                .map_err(|source| OutputError::JsonPathParse { template: raw.clone(), source })?
                .allow_missing_keys(opts.allow_missing_keys);
            Ok(Some(Printer::JsonPath { template, raw, as_json }))
        };
        let no_headers = opts.no_headers;
        Ok(match format {
            Format::Wide => None,
            Format::Yaml => Some(Printer::Yaml),
            Format::Json => Some(Printer::Json),
            Format::Name => Some(Printer::Name),
            Format::JsonPath(t) => return jsonpath(t.clone(), false),
            Format::JsonPathAsJson(t) => return jsonpath(t.clone(), true),
            Format::JsonPathFile(path) if path.as_os_str().is_empty() => return Err(OutputError::NoTemplate),
            Format::JsonPathFile(path) => return jsonpath(read("jsonpath template file", path)?, false),
            Format::CustomColumns(spec) => Some(Printer::Columns { columns: Columns::from_spec(spec)?, no_headers }),
            Format::CustomColumnsFile(path) if path.as_os_str().is_empty() => return Err(OutputError::NoTemplate),
            Format::CustomColumnsFile(path) => {
                let columns = Columns::from_file_text(&read("custom-columns file", path)?)?;
                Some(Printer::Columns { columns, no_headers })
            }
        })
    }

    /// One value (an object, or a `List`) as text.
    pub fn render(&self, value: &Value) -> Result<String, OutputError> {
        Ok(match self {
            Printer::Yaml => to_yaml(value),
            Printer::Json => to_json(value),
            Printer::Name => columns::objects_of(value)
                .into_iter()
                .map(|o| {
                    let kind = o.get("kind").and_then(Value::as_str).unwrap_or("").to_lowercase();
                    let group =
                        o.get("apiVersion").and_then(Value::as_str).and_then(|v| v.split_once('/')).map(|(g, _)| g);
                    let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                    match group {
                        Some(g) => format!("{kind}.{g}/{name}\n"),
                        None => format!("{kind}/{name}\n"),
                    }
                })
                .collect(),
            Printer::JsonPath { template, raw, as_json } => {
                let result = if *as_json { template.execute_as_json(value) } else { template.execute(value) };
                result.map_err(|source| OutputError::JsonPathExecute { template: raw.clone(), source })?
            }
            Printer::Columns { columns, no_headers } => {
                columns.render(value, !no_headers, &mut TabWriter::for_tables())?
            }
        })
    }
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
pub fn objects(printer: &Printer, mut items: Vec<(String, Value)>, single: bool) -> Result<(), OutputError> {
    if let Printer::Name = printer {
        let mut text = String::new();
        for (kind, item) in &items {
            let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            text.push_str(&format!("{kind}/{name}\n"));
        }
        print(&text);
        return Ok(());
    }
    let value =
        if single && items.len() == 1 { items.remove(0).1 } else { list(items.into_iter().map(|(_, v)| v).collect()) };
    print(&printer.render(&value)?);
    Ok(())
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
