//! Server-side printed tables (`meta.k8s.io/v1` `Table`) and how kubectl lays them
//! out: upper-case headers, priority-1 columns only with `-o wide`, a NAMESPACE column
//! first with `-A`, LABELS last with `--show-labels`, `kind/` before names when
//! several kinds are printed, and kubectl's tabwriter for the spacing.

use crate::tabwriter::TabWriter;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub format: String,
    pub priority: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<Value>,
    /// `PartialObjectMetadata` (or the object) the row was printed from.
    pub object: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub resource_version: Option<String>,
}

impl Table {
    /// Reads a `Table`. A plain object or list (a server without server-side printing)
    /// becomes kubectl's fallback table: NAME and AGE.
    pub fn from_json(v: &Value, now: jiff::Timestamp) -> Table {
        let resource_version = v.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
        if v.get("kind").and_then(Value::as_str) != Some("Table") {
            return Self::fallback(v, now, resource_version);
        }
        let columns = v
            .get("columnDefinitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| Column {
                name: c.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                format: c.get("format").and_then(Value::as_str).unwrap_or("").to_string(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            })
            .collect();
        let rows = v
            .get("rows")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| Row {
                cells: r.get("cells").and_then(Value::as_array).cloned().unwrap_or_default(),
                object: r.get("object").filter(|o| !o.is_null()).cloned(),
            })
            .collect();
        Table { columns, rows, resource_version }
    }

    fn fallback(v: &Value, now: jiff::Timestamp, resource_version: Option<String>) -> Table {
        let items: Vec<Value> = match v.get("items").and_then(Value::as_array) {
            Some(items) => items.clone(),
            None if v.is_object() => vec![v.clone()],
            None => Vec::new(),
        };
        let columns = vec![
            Column { name: "Name".into(), format: "name".into(), priority: 0 },
            Column { name: "Age".into(), format: String::new(), priority: 0 },
        ];
        let rows = items
            .into_iter()
            .map(|item| {
                let name = item.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
                let created = item
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .and_then(crate::human::parse_time);
                let age = Value::String(crate::human::age(created, now));
                Row { cells: vec![name, age], object: Some(item) }
            })
            .collect();
        Table { columns, rows, resource_version }
    }

    /// Index of the name column (`format: name`, else the one called Name).
    fn name_column(&self) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.format == "name")
            .or_else(|| self.columns.iter().position(|c| c.name.eq_ignore_ascii_case("name")))
    }
}

/// How to lay a table out.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub wide: bool,
    /// `-A` on a namespaced resource.
    pub namespace_column: bool,
    pub show_labels: bool,
    /// `deployment.apps`, to print names as `deployment.apps/web`.
    pub kind_prefix: Option<String>,
    pub no_headers: bool,
}

impl Layout {
    /// The header line's cells.
    pub fn header(&self, t: &Table) -> Vec<String> {
        let mut cells = Vec::new();
        if self.namespace_column {
            cells.push("NAMESPACE".to_string());
        }
        cells.extend(t.columns.iter().filter(|c| self.shows(c)).map(|c| c.name.to_uppercase()));
        if self.show_labels {
            cells.push("LABELS".to_string());
        }
        cells
    }

    fn shows(&self, c: &Column) -> bool {
        self.wide || c.priority == 0
    }

    /// One row's cells.
    pub fn row(&self, t: &Table, row: &Row) -> Vec<String> {
        let meta = row.object.as_ref().and_then(|o| o.get("metadata"));
        let mut cells = Vec::new();
        if self.namespace_column {
            cells.push(meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("").to_string());
        }
        let name_col = t.name_column();
        for (i, col) in t.columns.iter().enumerate() {
            if !self.shows(col) {
                continue;
            }
            let mut text = row.cells.get(i).map(cell_text).unwrap_or_default();
            if Some(i) == name_col
                && let Some(prefix) = &self.kind_prefix
            {
                text = format!("{prefix}/{text}");
            }
            cells.push(text);
        }
        if self.show_labels {
            cells.push(labels_text(meta.and_then(|m| m.get("labels"))));
        }
        cells
    }

    /// The table as text: header (unless `no_headers`) and rows, through `w`.
    pub fn render(&self, t: &Table, w: &mut TabWriter, with_header: bool) -> String {
        if with_header && !self.no_headers {
            w.write(&line(&self.header(t)));
        }
        for r in &t.rows {
            w.write(&line(&self.row(t, r)));
        }
        w.flush()
    }
}

fn line(cells: &[String]) -> String {
    let mut s = cells.join("\t");
    s.push('\n');
    s
}

/// A cell as kubectl prints it: strings up to their first line break (then `...`),
/// numbers and booleans as Go prints them, nothing for null.
pub fn cell_text(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => match s.find(['\n', '\r', '\x0c']) {
            Some(i) => format!("{}...", &s[..i]),
            None => s.clone(),
        },
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(cell_text).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            format!("map[{}]", map.iter().map(|(k, v)| format!("{k}:{}", cell_text(v))).collect::<Vec<_>>().join(" "))
        }
    };
    // A tab inside a cell would split it into two columns.
    text.replace('\t', " ")
}

/// `a=b,c=d` (sorted), or `<none>`.
pub fn labels_text(labels: Option<&Value>) -> String {
    let pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() { "<none>".into() } else { pairs.join(",") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What rk-server answered to `GET .../deployments` with the table Accept header
    /// (descriptions shortened).
    const CAPTURED: &str = r#"{"apiVersion":"meta.k8s.io/v1","columnDefinitions":[
        {"description":"Name","format":"name","name":"Name","priority":0,"type":"string"},
        {"description":"ready","format":"","name":"Ready","priority":0,"type":"string"},
        {"description":"","format":"","name":"Up-to-date","priority":0,"type":"string"},
        {"description":"","format":"","name":"Available","priority":0,"type":"string"},
        {"description":"","format":"","name":"Age","priority":0,"type":"string"},
        {"description":"","format":"","name":"Containers","priority":1,"type":"string"},
        {"description":"","format":"","name":"Images","priority":1,"type":"string"},
        {"description":"","format":"","name":"Selector","priority":1,"type":"string"}],
      "kind":"Table","metadata":{"resourceVersion":"6"},
      "rows":[{"cells":["web","0/2",0,0,"3s","nginx","nginx:1.25","app=web"],
               "object":{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":{"creationTimestamp":"2026-11-25T12:01:25Z","labels":{"app":"web","tier":"front"},"name":"web","namespace":"default"}}},
              {"cells":["api-server-long-name","2/2",2,2,"5d3h","api","rk/api:2","app=api"],
               "object":{"kind":"PartialObjectMetadata","metadata":{"name":"api-server-long-name","namespace":"prod"}}}]}"#;

    fn table() -> Table {
        Table::from_json(&serde_json::from_str(CAPTURED).unwrap(), jiff::Timestamp::UNIX_EPOCH)
    }

    fn render(layout: &Layout) -> String {
        layout.render(&table(), &mut TabWriter::for_tables(), true)
    }

    #[test]
    fn default_columns_aligned_like_kubectl() {
        assert_eq!(table().resource_version.as_deref(), Some("6"));
        assert_eq!(
            render(&Layout::default()),
            "NAME                   READY   UP-TO-DATE   AVAILABLE   AGE\n\
             web                    0/2     0            0           3s\n\
             api-server-long-name   2/2     2            2           5d3h\n"
        );
    }

    #[test]
    fn wide_all_namespaces_labels_and_kind() {
        let layout = Layout {
            wide: true,
            namespace_column: true,
            show_labels: true,
            kind_prefix: Some("deployment.apps".into()),
            no_headers: false,
        };
        assert_eq!(
            render(&layout),
            "NAMESPACE   NAME                                   READY   UP-TO-DATE   AVAILABLE   AGE    CONTAINERS   IMAGES       SELECTOR   LABELS\n\
             default     deployment.apps/web                    0/2     0            0           3s     nginx        nginx:1.25   app=web    app=web,tier=front\n\
             prod        deployment.apps/api-server-long-name   2/2     2            2           5d3h   api          rk/api:2     app=api    <none>\n"
        );
    }

    #[test]
    fn cells_print_like_go() {
        assert_eq!(cell_text(&json!(null)), "");
        assert_eq!(cell_text(&json!(3)), "3");
        assert_eq!(cell_text(&json!(true)), "true");
        assert_eq!(cell_text(&json!("a\nb")), "a...");
        assert_eq!(cell_text(&json!(["a", "b"])), "[a b]");
    }

    #[test]
    fn plain_lists_fall_back_to_name_and_age() {
        let list = json!({"kind":"ConfigMapList","metadata":{"resourceVersion":"9"},"items":[
            {"metadata":{"name":"a","creationTimestamp":"1970-01-01T00:00:00Z"}}]});
        let t = Table::from_json(&list, jiff::Timestamp::from_second(120).unwrap());
        assert_eq!(Layout::default().render(&t, &mut TabWriter::for_tables(), true), "NAME   AGE\na      2m\n");
    }
}
