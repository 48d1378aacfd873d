//! `rkctl get`: tables printed by the server (kubectl's columns), or the objects as
//! YAML, JSON or names; `-w` keeps printing changes from a watch. Also
//! `rkctl api-resources`.

use crate::cli::{ApiResourcesArgs, GetArgs};
use crate::client::{ACCEPT_JSON, ACCEPT_TABLE, Request};
use crate::error::Error;
use crate::output::{self, Format, PrintOptions, Printer};
use crate::table::{Layout, Table};
use crate::tabwriter::TabWriter;
use crate::target::{self, Target};
use crate::{Session, discovery::ApiResource};
use serde_json::Value;

pub async fn run(s: &Session, args: &GetArgs) -> Result<(), Error> {
    let discovery = s.discovery().await?;
    let targets = target::parse(discovery, &args.resources, "get")?;
    if targets.has_names() && (args.selector.is_some() || args.field_selector.is_some()) {
        return Err(Error::Usage("label and field selectors cannot be combined with object names".into()));
    }
    if args.all_namespaces && targets.targets.iter().any(|t| !t.names.is_empty() && t.res.namespaced) {
        return Err(Error::Usage(
            "a resource cannot be retrieved by name across all namespaces; drop -A or the names".into(),
        ));
    }
    let namespace = (!args.all_namespaces).then_some(s.namespace.as_str());
    let printer = match &args.output {
        Some(format) => Printer::new(format, print_options(args))?,
        None => None,
    };
    if args.watch {
        let [t] = targets.targets.as_slice() else {
            return Err(Error::Usage("watch is only supported on one resource type at a time".into()));
        };
        if t.names.len() > 1 {
            return Err(Error::Usage("watch is only supported on one object or on a whole collection".into()));
        }
        return watch(s, args, t, namespace, printer).await;
    }
    match printer {
        None => tables(s, args, &targets, namespace).await,
        Some(printer) => objects(s, args, &targets, namespace, &printer).await,
    }
}

fn print_options(args: &GetArgs) -> PrintOptions {
    PrintOptions { no_headers: args.no_headers, allow_missing_keys: args.allow_missing_template_keys }
}

/// The request listing a resource's objects, with the selectors from the flags.
fn list_request(res: &ApiResource, args: &GetArgs, namespace: Option<&str>, accept: &'static str) -> Request {
    Request::get(res.collection_path(namespace))
        .accept(accept)
        .query_opt("labelSelector", args.selector.as_deref())
        .query_opt("fieldSelector", args.field_selector.as_deref())
}

/// Namespace of objects of `res` (cluster-scoped ones have none).
fn ns_for<'a>(res: &ApiResource, namespace: Option<&'a str>) -> Option<&'a str> {
    namespace.filter(|_| res.namespaced)
}

/// Failures of single objects; printed after the output, as kubectl prints them.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn report(&mut self, e: Error) {
        self.0.push(e.line());
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn result(self) -> Result<(), Error> {
        for line in &self.0 {
            output::eprint_line(line);
        }
        if self.0.is_empty() { Ok(()) } else { Err(Error::Partial(self.0.len())) }
    }
}

fn layout_for(args: &GetArgs, res: &ApiResource, several_kinds: bool) -> Layout {
    Layout {
        wide: args.output == Some(Format::Wide),
        namespace_column: args.all_namespaces && res.namespaced,
        show_labels: args.show_labels,
        kind_prefix: (several_kinds || args.show_kind).then(|| res.kind_group()),
        no_headers: args.no_headers,
    }
}

/// Fetches one target as a table: the list, or each named object (rows merged).
async fn fetch_table(
    s: &Session,
    args: &GetArgs,
    t: &Target,
    namespace: Option<&str>,
    failures: &mut Failures,
) -> Result<Table, Error> {
    let now = jiff::Timestamp::now();
    let ns = ns_for(&t.res, namespace);
    if t.names.is_empty() {
        let v = s.client.json(list_request(&t.res, args, namespace, ACCEPT_TABLE)).await?;
        return Ok(Table::from_json(&v, now));
    }
    let mut merged = Table::default();
    for name in &t.names {
        let req = Request::get(t.res.object_path(Some(ns.unwrap_or(&s.namespace)), name)).accept(ACCEPT_TABLE);
        match s.client.json(req).await {
            Ok(v) => {
                let one = Table::from_json(&v, now);
                if merged.columns.is_empty() {
                    merged.columns = one.columns;
                }
                merged.rows.extend(one.rows);
            }
            Err(e) => failures.report(e),
        }
    }
    Ok(merged)
}

async fn tables(s: &Session, args: &GetArgs, targets: &target::Targets, namespace: Option<&str>) -> Result<(), Error> {
    let mut failures = Failures::default();
    let mut printed = false;
    for t in &targets.targets {
        let table = match fetch_table(s, args, t, namespace, &mut failures).await {
            Ok(table) => table,
            Err(e) if targets.targets.len() > 1 => {
                failures.report(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        if table.rows.is_empty() {
            continue;
        }
        let layout = layout_for(args, &t.res, targets.several_kinds);
        let text = layout.render(&table, &mut TabWriter::for_tables(), true);
        output::print(&if printed { format!("\n{text}") } else { text });
        printed = true;
    }
    if !printed && failures.is_empty() {
        no_resources(targets.targets.iter().map(|t| &t.res), namespace);
    }
    failures.result()
}

/// "No resources found in default namespace." on stderr, as kubectl says it.
fn no_resources<'a>(mut resources: impl Iterator<Item = &'a ApiResource>, namespace: Option<&str>) {
    match namespace {
        Some(ns) if resources.any(|r| r.namespaced) => {
            output::eprint_line(&format!("No resources found in {ns} namespace."))
        }
        _ => output::eprint_line("No resources found"),
    }
}

/// Fills in `apiVersion` and `kind`, which list items may leave out.
fn with_type(mut item: Value, res: &ApiResource) -> Value {
    if let Some(obj) = item.as_object_mut() {
        obj.entry("apiVersion").or_insert_with(|| Value::String(res.api_version()));
        obj.entry("kind").or_insert_with(|| Value::String(res.kind.clone()));
    }
    item
}

async fn objects(
    s: &Session,
    args: &GetArgs,
    targets: &target::Targets,
    namespace: Option<&str>,
    printer: &Printer,
) -> Result<(), Error> {
    let mut failures = Failures::default();
    let mut items: Vec<(String, Value)> = Vec::new();
    for t in &targets.targets {
        let ns = ns_for(&t.res, namespace);
        if t.names.is_empty() {
            let list = match s.client.json(list_request(&t.res, args, namespace, ACCEPT_JSON)).await {
                Ok(list) => list,
                Err(e) if targets.targets.len() > 1 => {
                    failures.report(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for item in list.get("items").and_then(Value::as_array).cloned().unwrap_or_default() {
                items.push((t.res.kind_group(), with_type(item, &t.res)));
            }
        } else {
            for name in &t.names {
                let req = Request::get(t.res.object_path(Some(ns.unwrap_or(&s.namespace)), name));
                match s.client.json(req).await {
                    Ok(obj) => items.push((t.res.kind_group(), with_type(obj, &t.res))),
                    Err(e) => failures.report(e),
                }
            }
        }
    }
    if !args.show_managed_fields {
        for (_, item) in &mut items {
            output::hide_managed_fields(item);
        }
    }
    let single = targets.targets.len() == 1 && targets.targets[0].names.len() == 1;
    if items.is_empty() && matches!(printer, Printer::Name) && failures.is_empty() {
        no_resources(targets.targets.iter().map(|t| &t.res), namespace);
    } else if !(items.is_empty() && single) {
        output::objects(printer, items, single)?;
    }
    failures.result()
}

/// `get -w`: the list, then every change, until Ctrl-C. A stream the server closes
/// (its timeout) is resumed from the last version seen; one whose version has been
/// compacted away (410 Gone) starts over with a fresh list.
async fn watch(
    s: &Session,
    args: &GetArgs,
    t: &Target,
    namespace: Option<&str>,
    printer: Option<Printer>,
) -> Result<(), Error> {
    let mut w = Watcher {
        args,
        res: &t.res,
        table_mode: printer.is_none(),
        printer,
        layout: layout_for(args, &t.res, args.show_kind),
        writer: TabWriter::for_tables().remember_widths(),
        columns: Vec::new(),
        header_printed: false,
    };
    let accept = if w.table_mode { ACCEPT_TABLE } else { ACCEPT_JSON };
    // One object is watched as the collection narrowed to its name.
    let base = || match t.names.first() {
        Some(name) => Request::get(t.res.collection_path(Some(ns_for(&t.res, namespace).unwrap_or(&s.namespace))))
            .accept(accept)
            .query("fieldSelector", format!("metadata.name={name}")),
        None => list_request(&t.res, args, namespace, accept),
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut rv: Option<String> = None;
    loop {
        let from = match &rv {
            Some(rv) => rv.clone(),
            None => {
                let list = tokio::select! {
                    l = s.client.json(base()) => l?,
                    _ = &mut ctrl_c => return Ok(()),
                };
                w.print_list(&list, namespace)?;
                list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string()
            }
        };
        rv = Some(from.clone());
        let req = base().query("watch", "true").query("resourceVersion", from).query("allowWatchBookmarks", "true");
        let mut lines = tokio::select! {
            r = s.client.lines(req) => r?,
            _ = &mut ctrl_c => return Ok(()),
        };
        loop {
            let line = tokio::select! {
                l = lines.next() => l?,
                _ = &mut ctrl_c => return Ok(()),
            };
            let Some(line) = line else { break };
            let Ok(event) = serde_json::from_slice::<Value>(&line) else { continue };
            let object = event.get("object").cloned().unwrap_or(Value::Null);
            match event.get("type").and_then(Value::as_str).unwrap_or("") {
                "ERROR" => {
                    let status: crate::error::Status = serde_json::from_value(object).unwrap_or_default();
                    if status.code == 410 || status.reason == "Expired" || status.reason == "Gone" {
                        rv = None;
                        break;
                    }
                    return Err(Error::server(status));
                }
                "BOOKMARK" => {
                    if let Some(v) = object.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                        rv = Some(v.to_string());
                    }
                }
                _ => {
                    if let Some(v) = w.print_event(object)? {
                        rv = Some(v);
                    }
                }
            }
        }
    }
}

/// What `get -w` has printed so far.
struct Watcher<'a> {
    args: &'a GetArgs,
    res: &'a ApiResource,
    table_mode: bool,
    /// The `-o` printer when not printing tables.
    printer: Option<Printer>,
    layout: Layout,
    /// Keeps the columns under the header as rows arrive.
    writer: TabWriter,
    /// The server sends the column definitions with the first event only.
    columns: Vec<crate::table::Column>,
    header_printed: bool,
}

impl Watcher<'_> {
    fn print_list(&mut self, list: &Value, namespace: Option<&str>) -> Result<(), Error> {
        if !self.table_mode {
            for item in list.get("items").and_then(Value::as_array).cloned().unwrap_or_default() {
                self.print_object(with_type(item, self.res))?;
            }
            return Ok(());
        }
        let table = Table::from_json(list, jiff::Timestamp::now());
        if !table.columns.is_empty() {
            self.columns = table.columns.clone();
        }
        if table.rows.is_empty() {
            if !self.header_printed {
                no_resources(std::iter::once(self.res), namespace);
            }
            return Ok(());
        }
        output::print(&self.layout.render(&table, &mut self.writer, !self.header_printed));
        self.header_printed = true;
        Ok(())
    }

    /// Prints one watch event's object; returns its resourceVersion.
    fn print_event(&mut self, object: Value) -> Result<Option<String>, Error> {
        if !self.table_mode {
            let rv = object.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
            self.print_object(with_type(object, self.res))?;
            return Ok(rv);
        }
        let mut table = Table::from_json(&object, jiff::Timestamp::now());
        if table.columns.is_empty() {
            table.columns = self.columns.clone();
        } else {
            self.columns = table.columns.clone();
        }
        let rv = table
            .rows
            .last()
            .and_then(|r| r.object.as_ref())
            .and_then(|o| o.pointer("/metadata/resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_string);
        output::print(&self.layout.render(&table, &mut self.writer, !self.header_printed));
        self.header_printed = true;
        Ok(rv.or(table.resource_version))
    }

    fn print_object(&mut self, mut obj: Value) -> Result<(), Error> {
        if !self.args.show_managed_fields {
            output::hide_managed_fields(&mut obj);
        }
        match &self.printer {
            Some(Printer::Yaml) => output::print(&format!("---\n{}", output::to_yaml(&obj))),
            Some(Printer::Name) => output::print(&format!(
                "{}\n",
                output::name_of(self.res, obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""))
            )),
            // Rows stay under the header printed with the first one.
            Some(Printer::Columns { columns, no_headers }) => {
                let with_header = !no_headers && !self.header_printed;
                output::print(&columns.render(&obj, with_header, &mut self.writer)?);
                self.header_printed = true;
            }
            Some(printer) => output::print(&printer.render(&obj)?),
            None => {}
        }
        Ok(())
    }
}

/// `rkctl api-resources`: NAME SHORTNAMES APIVERSION NAMESPACED KIND.
pub async fn api_resources(s: &Session, args: &ApiResourcesArgs) -> Result<(), Error> {
    let discovery = s.discovery().await?;
    let mut resources: Vec<&ApiResource> = discovery.resources.iter().filter(|r| r.preferred).collect();
    resources.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural)));
    if let Some(f) = args.output.as_ref().filter(|f| !matches!(f, Format::Name | Format::Wide)) {
        let supported = "-o wide or -o name";
        return Err(
            output::OutputError::Unsupported { format: f.to_string(), command: "api-resources", supported }.into()
        );
    }
    if args.output == Some(Format::Name) {
        let text: String = resources.iter().map(|r| format!("{}\n", r.qualified())).collect();
        output::print(&text);
        return Ok(());
    }
    let wide = args.output == Some(Format::Wide);
    let mut w = TabWriter::for_tables();
    w.write(if wide {
        "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND\tVERBS\tCATEGORIES\n"
    } else {
        "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND\n"
    });
    for r in resources {
        let mut line =
            format!("{}\t{}\t{}\t{}\t{}", r.plural, r.short_names.join(","), r.api_version(), r.namespaced, r.kind);
        if wide {
            line.push_str(&format!("\t[{}]\t{}", r.verbs.join(" "), r.categories.join(",")));
        }
        line.push('\n');
        w.write(&line);
    }
    output::print(&w.flush());
    Ok(())
}
