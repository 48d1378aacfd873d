//! `-o custom-columns=NAME:.metadata.name,NODE:.spec.nodeName` and
//! `-o custom-columns-file=FILE`: a table whose cells are JSONPath expressions, as
//! kubectl prints it (aligned by its tabwriter, `<none>` for a cell with no value,
//! several values joined by commas, Go's `%v` for maps and lists).

use crate::jsonpath::{self, JsonPathError, Template};
use crate::tabwriter::TabWriter;
use serde_json::Value;

/// A custom-columns spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnsError {
    #[error("custom-columns format specified but no custom columns given")]
    Empty,
    #[error("unexpected custom-columns spec: {0}, expected <header>:<json-path-expr>")]
    BadSpec(String),
    #[error(
        "unexpected path string {0:?}, expected a 'name1.name2' or '.name1.name2' or '{{name1.name2}}' or '{{.name1.name2}}'"
    )]
    BadPath(String),
    #[error(
        "invalid template, missing {0} line. Expected format is one line of space separated headers, one line of space separated column specs."
    )]
    MissingLine(&'static str),
    #[error("number of headers ({headers}) and field specifications ({specs}) don't match")]
    CountMismatch { headers: usize, specs: usize },
    #[error("error parsing column {header:?} ({spec}): {source}")]
    Parse {
        header: String,
        spec: String,
        #[source]
        source: JsonPathError,
    },
    #[error("error executing column {header:?} ({spec}): {source}")]
    Execute {
        header: String,
        spec: String,
        #[source]
        source: JsonPathError,
    },
}

#[derive(Debug, Clone)]
struct Column {
    header: String,
    /// The expression as a template, `{.metadata.name}` (for messages).
    spec: String,
    template: Template,
}

/// The columns of a custom-columns table.
#[derive(Debug, Clone)]
pub struct Columns {
    columns: Vec<Column>,
}

impl Columns {
    /// `HEADER:PATH,HEADER:PATH…` (`-o custom-columns=`).
    pub fn from_spec(spec: &str) -> Result<Columns, ColumnsError> {
        if spec.is_empty() {
            return Err(ColumnsError::Empty);
        }
        let pairs = spec
            .split(',')
            .map(|part| part.split_once(':').ok_or_else(|| ColumnsError::BadSpec(part.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Self::build(pairs)
    }

    /// A file with a line of headers and a line of paths, separated by blanks
    /// (`-o custom-columns-file=`).
    pub fn from_file_text(text: &str) -> Result<Columns, ColumnsError> {
        let mut lines = text.lines();
        let headers: Vec<&str> = lines.next().ok_or(ColumnsError::MissingLine("header"))?.split_whitespace().collect();
        let specs: Vec<&str> = lines.next().ok_or(ColumnsError::MissingLine("spec"))?.split_whitespace().collect();
        if headers.len() != specs.len() {
            return Err(ColumnsError::CountMismatch { headers: headers.len(), specs: specs.len() });
        }
        Self::build(headers.into_iter().zip(specs).collect())
    }

    fn build(pairs: Vec<(&str, &str)>) -> Result<Columns, ColumnsError> {
        let mut columns = Vec::new();
        for (header, path) in pairs {
            let spec = relaxed_path(path)?;
            let template = Template::parse(&spec).map_err(|source| ColumnsError::Parse {
                header: header.to_string(),
                spec: spec.clone(),
                source,
            })?;
            columns.push(Column { header: header.to_string(), spec, template });
        }
        Ok(Columns { columns })
    }

    /// The header line (tab-separated, for a [`TabWriter`]).
    pub fn header_line(&self) -> String {
        let headers: Vec<&str> = self.columns.iter().map(|c| c.header.as_str()).collect();
        format!("{}\n", headers.join("\t"))
    }

    /// One object's row (tab-separated, for a [`TabWriter`]).
    pub fn row(&self, obj: &Value) -> Result<String, ColumnsError> {
        let mut cells = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let results = c.template.find_results(obj).map_err(|source| ColumnsError::Execute {
                header: c.header.clone(),
                spec: c.spec.clone(),
                source,
            })?;
            let values: Vec<String> = results.iter().flatten().map(|v| jsonpath::go_fmt(v)).collect();
            let empty = results.first().is_none_or(Vec::is_empty);
            cells.push(if empty { "<none>".to_string() } else { values.join(",") });
        }
        Ok(format!("{}\n", cells.join("\t")))
    }

    /// The table for one object, or for each item of a `List`.
    pub fn render(&self, value: &Value, with_header: bool, w: &mut TabWriter) -> Result<String, ColumnsError> {
        if with_header {
            w.write(&self.header_line());
        }
        for obj in objects_of(value) {
            w.write(&self.row(obj)?);
        }
        Ok(w.flush())
    }
}

/// The items of a list (`kind: …List` with `items`), else the value itself.
pub fn objects_of(value: &Value) -> Vec<&Value> {
    let is_list = value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"));
    match value.get("items").and_then(Value::as_array) {
        Some(items) if is_list => items.iter().collect(),
        _ => vec![value],
    }
}

/// kubectl's relaxed column paths: `.a.b`, `a.b`, `{a.b}` and `{.a.b}` all mean
/// `{.a.b}`.
pub fn relaxed_path(path: &str) -> Result<String, ColumnsError> {
    if path.is_empty() {
        return Ok(String::new());
    }
    let inner = match path.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        Some(inner) => inner,
        None => path,
    };
    if inner.is_empty() || inner.contains(['{', '}']) {
        return Err(ColumnsError::BadPath(path.to_string()));
    }
    // `.` alone stays `.` (the optional dot needs something after it).
    let field = inner.strip_prefix('.').filter(|f| !f.is_empty()).unwrap_or(inner);
    Ok(format!("{{.{field}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(c: &Columns, v: &Value, header: bool) -> String {
        c.render(v, header, &mut TabWriter::for_tables()).unwrap()
    }

    #[test]
    fn columns_align_with_none_for_missing_values() {
        let list = json!({"kind": "List", "items": [
            {"metadata": {"name": "web-1", "labels": {"a": "1", "b": "2"}}, "spec": {"nodeName": "node-1", "containers": [{"image": "x"}, {"image": "y"}]}},
            {"metadata": {"name": "w2"}, "spec": {"containers": []}}]});
        let c = Columns::from_spec(
            "NAME:.metadata.name,NODE:.spec.nodeName,IMAGES:.spec.containers[*].image,LABELS:metadata.labels",
        )
        .unwrap();
        assert_eq!(
            table(&c, &list, true),
            "NAME    NODE     IMAGES   LABELS\n\
             web-1   node-1   x,y      map[a:1 b:2]\n\
             w2      <none>   <none>   <none>\n"
        );
        assert_eq!(
            table(&c, &list, false),
            "web-1   node-1   x,y      map[a:1 b:2]\nw2      <none>   <none>   <none>\n"
        );
        // One object is one row.
        let one = Columns::from_spec("N:{.metadata.name}").unwrap();
        assert_eq!(table(&one, &json!({"kind": "Pod", "metadata": {"name": "p"}}), true), "N\np\n");
    }

    #[test]
    fn relaxed_paths() {
        for p in ["a.b", ".a.b", "{a.b}", "{.a.b}"] {
            assert_eq!(relaxed_path(p).unwrap(), "{.a.b}", "{p}");
        }
        assert_eq!(relaxed_path("").unwrap(), "");
        assert!(matches!(relaxed_path("{a}.b}"), Err(ColumnsError::BadPath(_))));
        assert!(matches!(relaxed_path("{}"), Err(ColumnsError::BadPath(_))));
    }

    #[test]
    fn bad_specs_are_errors() {
        assert_eq!(Columns::from_spec("").unwrap_err(), ColumnsError::Empty);
        assert_eq!(
            Columns::from_spec("NAME:.metadata.name,NODE").unwrap_err().to_string(),
            "unexpected custom-columns spec: NODE, expected <header>:<json-path-expr>"
        );
        assert_eq!(
            Columns::from_spec("X:.a[").unwrap_err().to_string(),
            "error parsing column \"X\" ({.a[}): unterminated array"
        );
        let c = Columns::from_spec("X:.kind[0]").unwrap();
        assert_eq!(
            c.row(&json!({"kind": "Pod"})).unwrap_err().to_string(),
            "error executing column \"X\" ({.kind[0]}): string is not array or slice"
        );
    }

    #[test]
    fn file_form() {
        let c = Columns::from_file_text("NAME   PHASE\n.metadata.name  {.status.phase}\n").unwrap();
        assert_eq!(
            table(&c, &json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}}), true),
            "NAME   PHASE\np      Running\n"
        );
        assert_eq!(Columns::from_file_text("").unwrap_err(), ColumnsError::MissingLine("header"));
        assert_eq!(Columns::from_file_text("A B\n").unwrap_err(), ColumnsError::MissingLine("spec"));
        assert_eq!(
            Columns::from_file_text("A B\n.a\n").unwrap_err(),
            ColumnsError::CountMismatch { headers: 2, specs: 1 }
        );
    }
}
