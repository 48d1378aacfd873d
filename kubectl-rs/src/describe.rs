//! `rkctl describe`: an object in detail, laid out like kubectl's describers, then
//! its events.
//!
//! Pod, Deployment, ReplicaSet, Service, ConfigMap, Secret (value sizes, never the
//! values), Namespace and Node have their own layouts; every other kind gets the
//! generic one (name, namespace, labels, annotations, then the rest of the object as
//! indented `Field:  value` text). Everything is written as tab-separated text and
//! aligned by [`TabWriter`] exactly as kubectl's `tabwriter` aligns it; the events
//! table is aligned on its own, as kubectl flushes before it.
//!
//! Events are found as kubectl finds them: `GET events` with the field selector
//! `involvedObject.name=…,involvedObject.namespace=…,involvedObject.uid=…`.

use crate::Session;
use crate::cli::DescribeArgs;
use crate::client::Request;
use crate::discovery::ApiResource;
use crate::error::Error;
use crate::human::{age, parse_time, rfc1123z};
use crate::output;
use crate::quantity::Quantity;
use crate::tabwriter::TabWriter;
use crate::target;
use jiff::Timestamp;
use serde_json::{Map, Value};
use std::fmt::Write as _;

pub async fn run(s: &Session, args: &DescribeArgs) -> Result<(), Error> {
    let discovery = s.discovery().await?;
    let targets = target::parse(discovery, &args.resources, "describe")?;
    if targets.has_names() && args.selector.is_some() {
        return Err(Error::Usage("a label selector cannot be combined with object names".into()));
    }
    let mut failures = 0usize;
    let mut printed = 0usize;
    for t in &targets.targets {
        let ns = t.res.namespaced.then_some(s.namespace.as_str());
        let mut objects = Vec::new();
        if t.names.is_empty() {
            let req = Request::get(t.res.collection_path(ns)).query_opt("labelSelector", args.selector.as_deref());
            let list = s.client.json(req).await?;
            objects.extend(list.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
        } else {
            for name in &t.names {
                match s.client.json(Request::get(t.res.object_path(ns, name))).await {
                    Ok(obj) => objects.push(obj),
                    Err(e) => {
                        output::eprint_line(&e.line());
                        failures += 1;
                    }
                }
            }
        }
        for obj in objects {
            let text = describe(s, &t.res, &obj, args.show_events).await;
            output::print(&if printed > 0 { format!("\n\n{text}") } else { text });
            printed += 1;
        }
    }
    if printed == 0 && failures == 0 {
        if targets.targets.iter().any(|t| t.res.namespaced) {
            output::eprint_line(&format!("No resources found in {} namespace.", s.namespace));
        } else {
            output::eprint_line("No resources found");
        }
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

/// Describes one object (fetching what its layout needs: ReplicaSets of a
/// Deployment, pods of a ReplicaSet or Node, EndpointSlices of a Service, events).
pub async fn describe(s: &Session, res: &ApiResource, obj: &Value, show_events: bool) -> String {
    let now = Timestamp::now();
    let ns = str_at(obj, "/metadata/namespace");
    let mut d = Doc::default();
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => pod(&mut d, obj, now),
        ("apps", "Deployment") => {
            let selector = selector_string(obj.pointer("/spec/selector"));
            let rs = list(s, "/apis/apps/v1", ns, "replicasets", Some(&selector), None).await;
            deployment(&mut d, obj, &rs)
        }
        ("apps", "ReplicaSet") => {
            let selector = selector_string(obj.pointer("/spec/selector"));
            let pods = list(s, "/api/v1", ns, "pods", Some(&selector), None).await;
            replica_set(&mut d, obj, &pods)
        }
        ("", "Service") => {
            let by_service = format!("kubernetes.io/service-name={}", str_at(obj, "/metadata/name"));
            let slices = list(s, "/apis/discovery.k8s.io/v1", ns, "endpointslices", Some(&by_service), None).await;
            service(&mut d, obj, &slices)
        }
        ("", "ConfigMap") => config_map(&mut d, obj),
        ("", "Secret") => secret(&mut d, obj),
        ("", "Namespace") => namespace(&mut d, obj),
        ("", "Node") => {
            let on_node = format!(
                "spec.nodeName={},status.phase!=Succeeded,status.phase!=Failed",
                escape_field(str_at(obj, "/metadata/name"))
            );
            let pods = list(s, "/api/v1", "", "pods", None, Some(&on_node)).await;
            let lease_path = format!(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}",
                str_at(obj, "/metadata/name")
            );
            let lease = s.client.json(Request::get(lease_path)).await.map_err(|e| match e.status() {
                Some(st) => st.full_message(),
                None => e.to_string(),
            });
            node(&mut d, obj, &pods, lease.as_ref(), now)
        }
        _ => generic(&mut d, obj),
    }
    let events = if show_events { Some(events_of(s, res, obj).await) } else { None };
    d.finish(events.as_deref(), now)
}

/// A best-effort list for a describer's extras; a failure only means less detail.
async fn list(
    s: &Session,
    base: &str,
    ns: &str,
    plural: &str,
    labels: Option<&str>,
    fields: Option<&str>,
) -> Vec<Value> {
    let path = if ns.is_empty() { format!("{base}/{plural}") } else { format!("{base}/namespaces/{ns}/{plural}") };
    let req = Request::get(path).query_opt("labelSelector", labels).query_opt("fieldSelector", fields);
    match s.client.json(req).await {
        Ok(v) => v.get("items").and_then(Value::as_array).cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The object's events, oldest first.
async fn events_of(s: &Session, res: &ApiResource, obj: &Value) -> Vec<Value> {
    let ns = str_at(obj, "/metadata/namespace");
    let selector = format!(
        "involvedObject.name={},involvedObject.namespace={},involvedObject.uid={}",
        escape_field(str_at(obj, "/metadata/name")),
        escape_field(ns),
        escape_field(str_at(obj, "/metadata/uid"))
    );
    let mut events = list(s, "/api/v1", ns, "events", None, Some(&selector)).await;
    if res.group.is_empty() && res.kind == "Node" {
        // The kubelet records node events with the node's name as its uid.
        let name = escape_field(str_at(obj, "/metadata/name"));
        let by_name = format!("involvedObject.name={name},involvedObject.namespace=,involvedObject.uid={name}");
        events.extend(list(s, "/api/v1", ns, "events", None, Some(&by_name)).await);
    }
    events.sort_by_key(event_time);
    events
}

/// Escapes a field selector value (`,`, `=` and `\`).
fn escape_field(v: &str) -> String {
    v.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=")
}

fn event_time(e: &Value) -> Option<Timestamp> {
    ["/lastTimestamp", "/eventTime", "/firstTimestamp", "/metadata/creationTimestamp"]
        .iter()
        .find_map(|p| e.pointer(p).and_then(Value::as_str).and_then(parse_time))
}

// === The document ===

/// Tab-separated text in kubectl's `PrefixWriter` levels (two spaces each).
#[derive(Default)]
struct Doc {
    text: String,
}

impl Doc {
    fn w(&mut self, level: usize, text: &str) {
        for _ in 0..level {
            self.text.push_str("  ");
        }
        self.text.push_str(text);
    }

    /// `Title:\tvalue` on its own line.
    fn kv(&mut self, level: usize, key: &str, value: impl std::fmt::Display) {
        self.w(level, &format!("{key}:\t{value}\n"));
    }

    /// kubectl's `printLabelsMultiline`: sorted `k=v`, one per line, or `<none>`.
    fn labels(&mut self, title: &str, labels: Option<&Value>) {
        self.w(0, &format!("{title}:\t"));
        let mut pairs: Vec<(String, String)> = labels
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        if pairs.is_empty() {
            self.text.push_str("<none>\n");
            return;
        }
        pairs.sort();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                self.text.push('\t');
            }
            let _ = writeln!(self.text, "{k}={v}");
        }
    }

    /// kubectl's `printAnnotationsMultiline`: `key: value`, long or multi-line values
    /// on their own indented lines; the last-applied-configuration is left out.
    fn annotations(&mut self, title: &str, annotations: Option<&Value>) {
        const MAX: usize = 140;
        self.w(0, &format!("{title}:\t"));
        let mut pairs: Vec<(&String, &str)> = annotations
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
            .map(|(k, v)| (k, v.as_str().unwrap_or("")))
            .collect();
        if pairs.is_empty() {
            self.text.push_str("<none>\n");
            return;
        }
        pairs.sort();
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            if i > 0 {
                self.text.push('\t');
            }
            let v = v.strip_suffix('\n').unwrap_or(v);
            if v.len() + k.len() + 2 > MAX || v.contains('\n') {
                let _ = writeln!(self.text, "{k}:");
                for line in v.split('\n') {
                    let short: String = if line.len() > MAX - 2 {
                        format!("{}...", line.chars().take(MAX - 2).collect::<String>())
                    } else {
                        line.to_string()
                    };
                    let _ = writeln!(self.text, "\t  {short}");
                }
            } else {
                let _ = writeln!(self.text, "{k}: {v}");
            }
        }
    }

    /// Aligns the text, then appends the events table (aligned on its own).
    fn finish(mut self, events: Option<&[Value]>, now: Timestamp) -> String {
        if let Some([]) = events {
            self.w(0, "Events:\t<none>\n");
        }
        let mut w = TabWriter::for_describe();
        w.write(&self.text);
        let mut out = w.flush();
        if let Some(events) = events.filter(|e| !e.is_empty()) {
            let mut t =
                String::from("Events:\n  Type\tReason\tAge\tFrom\tMessage\n  ----\t------\t----\t----\t-------\n");
            for e in events {
                let _ = writeln!(
                    t,
                    "  {}\t{}\t{}\t{}\t{}",
                    str_at(e, "/type"),
                    str_at(e, "/reason"),
                    event_interval(e, now),
                    event_source(e),
                    str_at(e, "/message").trim().replace('\n', " ")
                );
            }
            let mut w = TabWriter::for_describe();
            w.write(&t);
            out.push_str(&w.flush());
        }
        out
    }
}

/// `10s`, or `3m (x4 over 10m)` for a repeated event.
fn event_interval(e: &Value, now: Timestamp) -> String {
    let ts = |p: &str| e.pointer(p).and_then(Value::as_str).and_then(parse_time);
    let first = age(ts("/eventTime").or_else(|| ts("/firstTimestamp")), now);
    if let Some(count) = e.pointer("/series/count").and_then(Value::as_i64) {
        return format!("{} (x{count} over {first})", age(ts("/series/lastObservedTime"), now));
    }
    match e.get("count").and_then(Value::as_i64) {
        Some(count) if count > 1 => format!("{} (x{count} over {first})", age(ts("/lastTimestamp"), now)),
        _ => first,
    }
}

fn event_source(e: &Value) -> String {
    let component = str_at(e, "/source/component");
    if component.is_empty() { str_at(e, "/reportingComponent").to_string() } else { component.to_string() }
}

// === Helpers ===

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

/// A scalar as Go's `%v` prints it.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            format!("map[{}]", m.iter().map(|(k, v)| format!("{k}:{}", go_value(v))).collect::<Vec<_>>().join(" "))
        }
        other => other.to_string(),
    }
}

fn timestamp(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).and_then(Value::as_str).and_then(parse_time).map(rfc1123z)
}

/// `metav1.FormatLabelSelector`: `app=web,tier in (a,b),!x`, or `<none>`.
pub fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| s.is_object()) else { return "<none>".into() };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.get("matchLabels").and_then(Value::as_object).into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = str_at(e, "/key").to_string();
        let mut values: Vec<&str> = arr(e, "/values").iter().filter_map(Value::as_str).collect();
        values.sort();
        let text = match str_at(e, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        };
        reqs.push((key, text));
    }
    reqs.sort();
    let joined: Vec<String> = reqs.into_iter().map(|(_, t)| t).collect();
    if joined.is_empty() { "<none>".into() } else { joined.join(",") }
}

/// `labels.FormatLabels`: `a=b,c=d` sorted, or `<none>`.
fn format_labels(map: Option<&Value>) -> String {
    crate::table::labels_text(map)
}

fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<nil>".into(),
    }
}

/// `Kind/name` of the controlling owner.
fn controller(obj: &Value) -> Option<String> {
    arr(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|o| format!("{}/{}", str_at(o, "/kind"), str_at(o, "/name")))
}

fn head(d: &mut Doc, obj: &Value, with_namespace: bool) {
    d.kv(0, "Name", str_at(obj, "/metadata/name"));
    if with_namespace {
        d.kv(0, "Namespace", str_at(obj, "/metadata/namespace"));
    }
}

// === Pods and pod templates ===

fn pod(d: &mut Doc, p: &Value, now: Timestamp) {
    head(d, p, true);
    if let Some(prio) = p.pointer("/spec/priority").and_then(Value::as_i64) {
        d.kv(0, "Priority", prio);
    }
    for (key, ptr) in
        [("Priority Class Name", "/spec/priorityClassName"), ("Runtime Class Name", "/spec/runtimeClassName")]
    {
        if !str_at(p, ptr).is_empty() {
            d.kv(0, key, str_at(p, ptr));
        }
    }
    if !str_at(p, "/spec/serviceAccountName").is_empty() {
        d.kv(0, "Service Account", str_at(p, "/spec/serviceAccountName"));
    }
    match str_at(p, "/spec/nodeName") {
        "" => d.kv(0, "Node", "<none>"),
        node => d.kv(0, "Node", format!("{node}/{}", str_at(p, "/status/hostIP"))),
    }
    if let Some(t) = timestamp(p, "/status/startTime") {
        d.kv(0, "Start Time", t);
    }
    d.labels("Labels", p.pointer("/metadata/labels"));
    d.annotations("Annotations", p.pointer("/metadata/annotations"));
    let phase = str_at(p, "/status/phase");
    let deleting = p.pointer("/metadata/deletionTimestamp").and_then(Value::as_str).and_then(parse_time);
    match deleting {
        Some(ts) if phase != "Failed" && phase != "Succeeded" => {
            d.kv(0, "Status", format!("Terminating (lasts {})", age(Some(ts), now)));
            d.kv(0, "Termination Grace Period", format!("{}s", int_at(p, "/metadata/deletionGracePeriodSeconds")));
        }
        _ => d.kv(0, "Status", phase),
    }
    for (key, ptr) in [("Reason", "/status/reason"), ("Message", "/status/message")] {
        if !str_at(p, ptr).is_empty() {
            d.kv(0, key, str_at(p, ptr));
        }
    }
    d.kv(0, "IP", str_at(p, "/status/podIP"));
    let ips = arr(p, "/status/podIPs");
    if ips.is_empty() {
        d.kv(0, "IPs", "<none>");
    } else {
        d.w(0, "IPs:\n");
        for ip in ips {
            d.kv(1, "IP", str_at(ip, "/ip"));
        }
    }
    if let Some(c) = controller(p) {
        d.kv(0, "Controlled By", c);
    }
    if !str_at(p, "/status/nominatedNodeName").is_empty() {
        d.kv(0, "NominatedNodeName", str_at(p, "/status/nominatedNodeName"));
    }
    let statuses = |ptr: &str| -> Vec<Value> { arr(p, ptr).to_vec() };
    if !arr(p, "/spec/initContainers").is_empty() {
        containers(
            d,
            "Init Containers",
            arr(p, "/spec/initContainers"),
            Some(&statuses("/status/initContainerStatuses")),
            "",
        );
    }
    containers(d, "Containers", arr(p, "/spec/containers"), Some(&statuses("/status/containerStatuses")), "");
    let conditions = arr(p, "/status/conditions");
    if !conditions.is_empty() {
        d.w(0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            d.w(1, &format!("{} \t{} \n", str_at(c, "/type"), str_at(c, "/status")));
        }
    }
    volumes(d, arr(p, "/spec/volumes"), "");
    let qos = match str_at(p, "/status/qosClass") {
        "" => qos_class(p),
        q => q.to_string(),
    };
    d.kv(0, "QoS Class", qos);
    d.labels("Node-Selectors", p.pointer("/spec/nodeSelector"));
    tolerations(d, "Tolerations", arr(p, "/spec/tolerations"));
}

/// Kubernetes' QoS class from requests and limits.
fn qos_class(p: &Value) -> String {
    let all: Vec<&Value> = arr(p, "/spec/containers").iter().chain(arr(p, "/spec/initContainers")).collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        if limits.is_some_and(|l| !l.is_empty()) || requests.is_some_and(|r| !r.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort".into(),
        (true, true) => "Guaranteed".into(),
        (true, false) => "Burstable".into(),
    }
}

/// A pod template as `describe` prints it (`rollout history --revision`).
pub fn pod_template_text(t: Option<&Value>) -> String {
    let mut d = Doc::default();
    pod_template(&mut d, t);
    let mut w = TabWriter::for_describe();
    w.write(&d.text);
    w.flush()
}

/// kubectl's `DescribePodTemplate`.
fn pod_template(d: &mut Doc, t: Option<&Value>) {
    d.w(0, "Pod Template:\n");
    let Some(t) = t else {
        d.w(1, "<unset>");
        return;
    };
    d.labels("  Labels", t.pointer("/metadata/labels"));
    if t.pointer("/metadata/annotations").and_then(Value::as_object).is_some_and(|a| !a.is_empty()) {
        d.annotations("  Annotations", t.pointer("/metadata/annotations"));
    }
    if !str_at(t, "/spec/serviceAccountName").is_empty() {
        d.kv(1, "Service Account", str_at(t, "/spec/serviceAccountName"));
    }
    if !arr(t, "/spec/initContainers").is_empty() {
        containers(d, "Init Containers", arr(t, "/spec/initContainers"), None, "  ");
    }
    containers(d, "Containers", arr(t, "/spec/containers"), None, "  ");
    volumes(d, arr(t, "/spec/volumes"), "  ");
    if !str_at(t, "/spec/priorityClassName").is_empty() {
        d.kv(1, "Priority Class Name", str_at(t, "/spec/priorityClassName"));
    }
    d.labels("  Node-Selectors", t.pointer("/spec/nodeSelector"));
    tolerations(d, "  Tolerations", arr(t, "/spec/tolerations"));
}

fn containers(d: &mut Doc, label: &str, list: &[Value], statuses: Option<&[Value]>, space: &str) {
    let none = if list.is_empty() { " <none>" } else { "" };
    d.w(0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in list {
        let name = str_at(c, "/name");
        let status = statuses.and_then(|s| s.iter().find(|st| str_at(st, "/name") == name));
        d.w(1, &format!("{name_indent}{name}:\n"));
        if let Some(st) = status {
            d.kv(2, "Container ID", str_at(st, "/containerID"));
        }
        d.kv(2, "Image", str_at(c, "/image"));
        if let Some(st) = status {
            d.kv(2, "Image ID", str_at(st, "/imageID"));
        }
        let ports = arr(c, "/ports");
        let proto = |p: &Value| str_at(p, "/protocol").to_string();
        let container_ports: Vec<String> =
            ports.iter().map(|p| format!("{}/{}", int_at(p, "/containerPort"), proto(p))).collect();
        let host_ports: Vec<String> =
            ports.iter().map(|p| format!("{}/{}", int_at(p, "/hostPort"), proto(p))).collect();
        if container_ports.len() > 1 {
            d.kv(2, "Ports", container_ports.join(", "));
        } else {
            d.kv(2, "Port", or_none(&container_ports.join(", ")));
        }
        if host_ports.len() > 1 {
            d.kv(2, "Host Ports", host_ports.join(", "));
        } else {
            d.kv(2, "Host Port", or_none(&host_ports.join(", ")));
        }
        for (key, ptr) in [("Command", "/command"), ("Args", "/args")] {
            let items = arr(c, ptr);
            if !items.is_empty() {
                d.w(2, &format!("{key}:\n"));
                for item in items {
                    for line in item.as_str().unwrap_or("").split('\n') {
                        d.w(3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            container_state(d, "State", st.get("state"));
            if st.pointer("/lastState/terminated").is_some() {
                container_state(d, "Last State", st.get("lastState"));
            }
            let ready = st.get("ready").and_then(Value::as_bool).unwrap_or(false);
            d.kv(2, "Ready", if ready { "True" } else { "False" });
            d.kv(2, "Restart Count", int_at(st, "/restartCount"));
        }
        for (key, ptr) in [("Limits", "/resources/limits"), ("Requests", "/resources/requests")] {
            if let Some(map) = c.pointer(ptr).and_then(Value::as_object).filter(|m| !m.is_empty()) {
                d.w(2, &format!("{key}:\n"));
                for (name, q) in map {
                    d.kv(3, name, go_value(q));
                }
            }
        }
        for (key, ptr) in
            [("Liveness", "/livenessProbe"), ("Readiness", "/readinessProbe"), ("Startup", "/startupProbe")]
        {
            if let Some(probe) = c.get(&ptr[1..]) {
                d.kv(2, key, describe_probe(probe));
            }
        }
        env_from(d, arr(c, "/envFrom"));
        env(d, arr(c, "/env"));
        mounts(d, arr(c, "/volumeMounts"));
    }
}

fn container_state(d: &mut Doc, title: &str, state: Option<&Value>) {
    let state = state.cloned().unwrap_or_default();
    if let Some(r) = state.get("running") {
        d.kv(2, title, "Running");
        d.kv(3, "Started", timestamp(r, "/startedAt").unwrap_or_default());
    } else if let Some(w) = state.get("waiting") {
        d.kv(2, title, "Waiting");
        if !str_at(w, "/reason").is_empty() {
            d.kv(3, "Reason", str_at(w, "/reason"));
        }
    } else if let Some(t) = state.get("terminated") {
        d.kv(2, title, "Terminated");
        for (key, ptr) in [("Reason", "/reason"), ("Message", "/message")] {
            if !str_at(t, ptr).is_empty() {
                d.kv(3, key, str_at(t, ptr));
            }
        }
        d.kv(3, "Exit Code", int_at(t, "/exitCode"));
        if int_at(t, "/signal") > 0 {
            d.kv(3, "Signal", int_at(t, "/signal"));
        }
        d.kv(3, "Started", timestamp(t, "/startedAt").unwrap_or_default());
        d.kv(3, "Finished", timestamp(t, "/finishedAt").unwrap_or_default());
    } else {
        d.kv(2, title, "Waiting");
    }
}

/// `http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3`.
fn describe_probe(p: &Value) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        int_at(p, "/initialDelaySeconds"),
        p.get("timeoutSeconds").and_then(Value::as_i64).unwrap_or(1),
        p.get("periodSeconds").and_then(Value::as_i64).unwrap_or(10),
        p.get("successThreshold").and_then(Value::as_i64).unwrap_or(1),
        p.get("failureThreshold").and_then(Value::as_i64).unwrap_or(3),
    );
    if let Some(e) = p.get("exec") {
        let cmd: Vec<String> = arr(e, "/command").iter().map(go_value).collect();
        return format!("exec [{}] {attrs}", cmd.join(" "));
    }
    if let Some(h) = p.get("httpGet") {
        let scheme = match str_at(h, "/scheme") {
            "" => "http".to_string(),
            s => s.to_lowercase(),
        };
        let port = int_or_string(h.get("port"));
        return format!("http-get {scheme}://{}:{port}{} {attrs}", str_at(h, "/host"), str_at(h, "/path"));
    }
    if let Some(t) = p.get("tcpSocket") {
        return format!("tcp-socket {}:{} {attrs}", str_at(t, "/host"), int_or_string(t.get("port")));
    }
    if let Some(g) = p.get("grpc") {
        return format!("grpc <pod>:{} {} {attrs}", int_at(g, "/port"), str_at(g, "/service"));
    }
    format!("unknown {attrs}")
}

fn env_from(d: &mut Doc, list: &[Value]) {
    if list.is_empty() {
        return;
    }
    d.w(2, "Environment Variables from:\n");
    for e in list {
        let (from, r) = match (e.get("configMapRef"), e.get("secretRef")) {
            (Some(r), _) => ("ConfigMap", r),
            (None, Some(r)) => ("Secret", r),
            _ => ("", &Value::Null),
        };
        let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
        match str_at(e, "/prefix") {
            "" => d.w(3, &format!("{}\t{from}\tOptional: {optional}\n", str_at(r, "/name"))),
            prefix => d.w(3, &format!("{}\t{from} with prefix '{prefix}'\tOptional: {optional}\n", str_at(r, "/name"))),
        }
    }
}

fn env(d: &mut Doc, list: &[Value]) {
    if list.is_empty() {
        d.w(2, "Environment:\t<none>\n");
        return;
    }
    d.w(2, "Environment:\n");
    for e in list {
        let name = str_at(e, "/name");
        let Some(from) = e.get("valueFrom") else {
            for (i, line) in str_at(e, "/value").split('\n').enumerate() {
                if i == 0 {
                    d.w(3, &format!("{name}:\t{line}\n"));
                } else {
                    d.w(3, &format!("\t{line}\n"));
                }
            }
            continue;
        };
        let optional = |r: &Value| r.get("optional").and_then(Value::as_bool).unwrap_or(false);
        if let Some(f) = from.get("fieldRef") {
            d.w(3, &format!("{name}:\t ({}:{})\n", str_at(f, "/apiVersion"), str_at(f, "/fieldPath")));
        } else if let Some(r) = from.get("resourceFieldRef") {
            d.w(3, &format!("{name}:\t ({})\n", str_at(r, "/resource")));
        } else if let Some(r) = from.get("secretKeyRef") {
            d.w(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    str_at(r, "/key"),
                    str_at(r, "/name"),
                    optional(r)
                ),
            );
        } else if let Some(r) = from.get("configMapKeyRef") {
            d.w(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    str_at(r, "/key"),
                    str_at(r, "/name"),
                    optional(r)
                ),
            );
        }
    }
}

fn mounts(d: &mut Doc, list: &[Value]) {
    if list.is_empty() {
        d.w(2, "Mounts:\t<none>\n");
        return;
    }
    d.w(2, "Mounts:\n");
    let mut list = list.to_vec();
    list.sort_by(|a, b| str_at(a, "/mountPath").cmp(str_at(b, "/mountPath")));
    for m in &list {
        let mut flags =
            vec![if m.get("readOnly").and_then(Value::as_bool).unwrap_or(false) { "ro" } else { "rw" }.to_string()];
        if !str_at(m, "/subPath").is_empty() {
            flags.push(format!("path={:?}", str_at(m, "/subPath")));
        }
        d.w(3, &format!("{} from {} ({})\n", str_at(m, "/mountPath"), str_at(m, "/name"), flags.join(",")));
    }
}

fn volumes(d: &mut Doc, list: &[Value], space: &str) {
    if list.is_empty() {
        d.w(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    d.w(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in list {
        d.w(1, &format!("{name_indent}{}:\n", str_at(v, "/name")));
        let optional = |s: &Value| s.get("optional").and_then(Value::as_bool).unwrap_or(false);
        if let Some(h) = v.get("hostPath") {
            d.kv(2, "Type", "HostPath (bare host directory volume)");
            d.kv(2, "Path", str_at(h, "/path"));
            d.kv(2, "HostPathType", or_none(str_at(h, "/type")));
        } else if let Some(e) = v.get("emptyDir") {
            d.kv(2, "Type", "EmptyDir (a temporary directory that shares a pod's lifetime)");
            d.kv(2, "Medium", str_at(e, "/medium"));
            d.kv(2, "SizeLimit", e.get("sizeLimit").map(go_value).unwrap_or_else(|| "<unset>".into()));
        } else if let Some(s) = v.get("secret") {
            d.kv(2, "Type", "Secret (a volume populated by a Secret)");
            d.kv(2, "SecretName", str_at(s, "/secretName"));
            d.kv(2, "Optional", optional(s));
        } else if let Some(c) = v.get("configMap") {
            d.kv(2, "Type", "ConfigMap (a volume populated by a ConfigMap)");
            d.kv(2, "Name", str_at(c, "/name"));
            d.kv(2, "Optional", optional(c));
        } else if let Some(c) = v.get("persistentVolumeClaim") {
            d.kv(2, "Type", "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)");
            d.kv(2, "ClaimName", str_at(c, "/claimName"));
            d.kv(2, "ReadOnly", c.get("readOnly").and_then(Value::as_bool).unwrap_or(false));
        } else if let Some(p) = v.get("projected") {
            d.kv(2, "Type", "Projected (a volume that contains injected data from multiple sources)");
            for src in arr(p, "/sources") {
                if let Some(s) = src.get("secret") {
                    d.kv(2, "SecretName", str_at(s, "/name"));
                    d.kv(2, "Optional", optional(s));
                } else if src.get("downwardAPI").is_some() {
                    d.kv(2, "DownwardAPI", "true");
                } else if let Some(c) = src.get("configMap") {
                    d.kv(2, "ConfigMapName", str_at(c, "/name"));
                    d.kv(2, "Optional", optional(c));
                } else if let Some(t) = src.get("serviceAccountToken") {
                    d.kv(2, "TokenExpirationSeconds", int_at(t, "/expirationSeconds"));
                }
            }
        } else if let Some(dw) = v.get("downwardAPI") {
            d.kv(2, "Type", "DownwardAPI (a volume populated by information about the pod)");
            d.w(2, "Items:\n");
            for item in arr(dw, "/items") {
                let from = match item.get("fieldRef") {
                    Some(f) => str_at(f, "/fieldPath"),
                    None => str_at(item, "/resourceFieldRef/resource"),
                };
                d.w(3, &format!("{from} -> {}\n", str_at(item, "/path")));
            }
        } else {
            d.w(2, "<unknown>\n");
        }
    }
}

fn tolerations(d: &mut Doc, title: &str, list: &[Value]) {
    d.w(0, &format!("{title}:\t"));
    if list.is_empty() {
        d.text.push_str("<none>\n");
        return;
    }
    let mut list = list.to_vec();
    list.sort_by(|a, b| str_at(a, "/key").cmp(str_at(b, "/key")));
    for (i, t) in list.iter().enumerate() {
        if i > 0 {
            d.text.push('\t');
        }
        let (key, value, effect) = (str_at(t, "/key"), str_at(t, "/value"), str_at(t, "/effect"));
        let mut s = key.to_string();
        if !value.is_empty() {
            s.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            s.push_str(&format!(":{effect}"));
        }
        if str_at(t, "/operator") == "Exists" && value.is_empty() {
            s.push_str(if key.is_empty() && effect.is_empty() { "op=Exists" } else { " op=Exists" });
        }
        if let Some(secs) = t.get("tolerationSeconds").and_then(Value::as_i64) {
            s.push_str(&format!(" for {secs}s"));
        }
        d.text.push_str(&s);
        d.text.push('\n');
    }
}

// === Workloads ===

fn deployment(d: &mut Doc, obj: &Value, replica_sets: &[Value]) {
    head(d, obj, true);
    d.kv(0, "CreationTimestamp", timestamp(obj, "/metadata/creationTimestamp").unwrap_or_default());
    d.labels("Labels", obj.pointer("/metadata/labels"));
    d.annotations("Annotations", obj.pointer("/metadata/annotations"));
    d.kv(0, "Selector", selector_string(obj.pointer("/spec/selector")));
    let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    d.kv(
        0,
        "Replicas",
        format!(
            "{replicas} desired | {} updated | {} total | {} available | {} unavailable",
            int_at(obj, "/status/updatedReplicas"),
            int_at(obj, "/status/replicas"),
            int_at(obj, "/status/availableReplicas"),
            int_at(obj, "/status/unavailableReplicas")
        ),
    );
    d.kv(0, "StrategyType", str_at(obj, "/spec/strategy/type"));
    d.kv(0, "MinReadySeconds", int_at(obj, "/spec/minReadySeconds"));
    if let Some(ru) = obj.pointer("/spec/strategy/rollingUpdate") {
        d.kv(
            0,
            "RollingUpdateStrategy",
            format!(
                "{} max unavailable, {} max surge",
                int_or_string(ru.get("maxUnavailable")),
                int_or_string(ru.get("maxSurge"))
            ),
        );
    }
    pod_template(d, obj.pointer("/spec/template"));
    workload_conditions(d, obj);
    // The ReplicaSets this deployment controls; the new one has its template.
    let uid = str_at(obj, "/metadata/uid");
    let owned: Vec<&Value> = replica_sets
        .iter()
        .filter(|rs| {
            arr(rs, "/metadata/ownerReferences")
                .iter()
                .any(|o| str_at(o, "/uid") == uid && o.get("controller").and_then(Value::as_bool) == Some(true))
        })
        .collect();
    if !owned.is_empty() {
        let template = obj.pointer("/spec/template").map(without_hash);
        let (new, old): (Vec<&Value>, Vec<&Value>) =
            owned.into_iter().partition(|rs| rs.pointer("/spec/template").map(without_hash) == template);
        d.kv(0, "OldReplicaSets", replica_sets_text(&old));
        d.kv(0, "NewReplicaSet", replica_sets_text(&new[..new.len().min(1)]));
    }
}

/// A pod template without the `pod-template-hash` label the controller adds.
fn without_hash(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove("pod-template-hash");
    }
    t
}

/// `web-7d9 (2/2 replicas created)`, comma-separated, or `<none>`.
fn replica_sets_text(list: &[&Value]) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                str_at(rs, "/metadata/name"),
                int_at(rs, "/status/replicas"),
                rs.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
            )
        })
        .collect();
    if parts.is_empty() { "<none>".into() } else { parts.join(", ") }
}

fn workload_conditions(d: &mut Doc, obj: &Value) {
    let conditions = arr(obj, "/status/conditions");
    if conditions.is_empty() {
        return;
    }
    d.w(0, "Conditions:\n  Type\tStatus\tReason\n");
    d.w(1, "----\t------\t------\n");
    for c in conditions {
        d.w(1, &format!("{} \t{}\t{}\n", str_at(c, "/type"), str_at(c, "/status"), str_at(c, "/reason")));
    }
}

fn replica_set(d: &mut Doc, obj: &Value, pods: &[Value]) {
    head(d, obj, true);
    d.kv(0, "Selector", selector_string(obj.pointer("/spec/selector")));
    d.labels("Labels", obj.pointer("/metadata/labels"));
    d.annotations("Annotations", obj.pointer("/metadata/annotations"));
    if let Some(c) = controller(obj) {
        d.kv(0, "Controlled By", c);
    }
    let desired = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    d.kv(0, "Replicas", format!("{} current / {desired} desired", int_at(obj, "/status/replicas")));
    let uid = str_at(obj, "/metadata/uid");
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for p in pods.iter().filter(|p| arr(p, "/metadata/ownerReferences").iter().any(|o| str_at(o, "/uid") == uid)) {
        match str_at(p, "/status/phase") {
            "Running" => running += 1,
            "Succeeded" => succeeded += 1,
            "Failed" => failed += 1,
            _ => waiting += 1,
        }
    }
    d.kv(0, "Pods Status", format!("{running} Running / {waiting} Waiting / {succeeded} Succeeded / {failed} Failed"));
    pod_template(d, obj.pointer("/spec/template"));
    workload_conditions(d, obj);
}

// === Services, config, namespaces, nodes ===

fn service(d: &mut Doc, svc: &Value, slices: &[Value]) {
    head(d, svc, true);
    d.labels("Labels", svc.pointer("/metadata/labels"));
    d.annotations("Annotations", svc.pointer("/metadata/annotations"));
    d.kv(0, "Selector", format_labels(svc.pointer("/spec/selector")));
    d.kv(0, "Type", str_at(svc, "/spec/type"));
    if !str_at(svc, "/spec/ipFamilyPolicy").is_empty() {
        d.kv(0, "IP Family Policy", str_at(svc, "/spec/ipFamilyPolicy"));
    }
    let join = |ptr: &str| arr(svc, ptr).iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",");
    d.kv(0, "IP Families", or_none(&join("/spec/ipFamilies")));
    d.kv(0, "IP", str_at(svc, "/spec/clusterIP"));
    d.kv(0, "IPs", or_none(&join("/spec/clusterIPs")));
    if !arr(svc, "/spec/externalIPs").is_empty() {
        d.kv(0, "External IPs", join("/spec/externalIPs"));
    }
    if !str_at(svc, "/spec/loadBalancerIP").is_empty() {
        d.kv(0, "Desired LoadBalancer IP", str_at(svc, "/spec/loadBalancerIP"));
    }
    if !str_at(svc, "/spec/externalName").is_empty() {
        d.kv(0, "External Name", str_at(svc, "/spec/externalName"));
    }
    let ingress: Vec<String> = arr(svc, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| {
            if str_at(i, "/ip").is_empty() { str_at(i, "/hostname").to_string() } else { str_at(i, "/ip").to_string() }
        })
        .collect();
    if !ingress.is_empty() {
        d.kv(0, "LoadBalancer Ingress", ingress.join(", "));
    }
    for p in arr(svc, "/spec/ports") {
        let name = match str_at(p, "/name") {
            "" => "<unset>",
            n => n,
        };
        let proto = str_at(p, "/protocol");
        d.w(0, &format!("Port:\t{name}\t{}/{proto}\n", int_at(p, "/port")));
        d.kv(0, "TargetPort", format!("{}/{proto}", int_or_string(p.get("targetPort"))));
        if int_at(p, "/nodePort") != 0 {
            d.w(0, &format!("NodePort:\t{name}\t{}/{proto}\n", int_at(p, "/nodePort")));
        }
        d.kv(0, "Endpoints", endpoints_text(slices, str_at(p, "/name")));
    }
    d.kv(0, "Session Affinity", str_at(svc, "/spec/sessionAffinity"));
    if !str_at(svc, "/spec/externalTrafficPolicy").is_empty() {
        d.kv(0, "External Traffic Policy", str_at(svc, "/spec/externalTrafficPolicy"));
    }
    if !str_at(svc, "/spec/internalTrafficPolicy").is_empty() {
        d.kv(0, "Internal Traffic Policy", str_at(svc, "/spec/internalTrafficPolicy"));
    }
    if int_at(svc, "/spec/healthCheckNodePort") != 0 {
        d.kv(0, "HealthCheck NodePort", int_at(svc, "/spec/healthCheckNodePort"));
    }
}

/// kubectl's `formatEndpointSlices`: up to three ready `ip:port`, then `+ N more...`.
fn endpoints_text(slices: &[Value], port_name: &str) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    let mut count = 0;
    for slice in slices {
        let ports: Vec<&Value> = arr(slice, "/ports").iter().filter(|p| str_at(p, "/name") == port_name).collect();
        for ep in arr(slice, "/endpoints") {
            if ep.pointer("/conditions/ready").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let addr = arr(ep, "/addresses").first().and_then(Value::as_str).unwrap_or("");
            if arr(slice, "/ports").is_empty() {
                if list.len() < 3 {
                    list.push(addr.to_string());
                }
                count += 1;
            }
            for p in &ports {
                if list.len() < 3 {
                    let port = int_at(p, "/port");
                    list.push(if addr.contains(':') { format!("[{addr}]:{port}") } else { format!("{addr}:{port}") });
                }
                count += 1;
            }
        }
    }
    let text = list.join(",");
    if count > list.len() { format!("{text} + {} more...", count - list.len()) } else { text }
}

fn config_map(d: &mut Doc, cm: &Value) {
    head(d, cm, true);
    d.labels("Labels", cm.pointer("/metadata/labels"));
    d.annotations("Annotations", cm.pointer("/metadata/annotations"));
    d.w(0, "\nData\n====\n");
    for (k, v) in cm.get("data").and_then(Value::as_object).into_iter().flatten() {
        d.w(0, &format!("{k}:\n----\n"));
        d.w(0, &format!("{}\n", v.as_str().unwrap_or("")));
        d.w(0, "\n");
    }
    d.w(0, "\nBinaryData\n====\n");
    for (k, v) in cm.get("binaryData").and_then(Value::as_object).into_iter().flatten() {
        d.w(0, &format!("{k}: {} bytes\n", decoded_len(v)));
    }
    d.w(0, "\n");
}

fn decoded_len(v: &Value) -> usize {
    use base64::Engine as _;
    let text = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD.decode(text).map(|b| b.len()).unwrap_or(text.len())
}

fn secret(d: &mut Doc, s: &Value) {
    head(d, s, true);
    d.labels("Labels", s.pointer("/metadata/labels"));
    d.annotations("Annotations", s.pointer("/metadata/annotations"));
    d.w(0, &format!("\nType:\t{}\n", str_at(s, "/type")));
    d.w(0, "\nData\n====\n");
    let token_secret = str_at(s, "/type") == "kubernetes.io/service-account-token";
    for (k, v) in s.get("data").and_then(Value::as_object).into_iter().flatten() {
        if token_secret && k == "token" {
            use base64::Engine as _;
            let decoded =
                base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).unwrap_or_default();
            d.w(0, &format!("{k}:\t{}\n", String::from_utf8_lossy(&decoded)));
        } else {
            d.w(0, &format!("{k}:\t{} bytes\n", decoded_len(v)));
        }
    }
}

fn namespace(d: &mut Doc, ns: &Value) {
    head(d, ns, false);
    d.labels("Labels", ns.pointer("/metadata/labels"));
    d.annotations("Annotations", ns.pointer("/metadata/annotations"));
    d.kv(0, "Status", str_at(ns, "/status/phase"));
    let conditions = arr(ns, "/status/conditions");
    if !conditions.is_empty() {
        d.w(0, "Conditions:\n");
        d.w(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        d.w(1, "----\t------\t------------------\t------\t-------\n");
        for c in conditions {
            d.w(
                1,
                &format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    str_at(c, "/type"),
                    str_at(c, "/status"),
                    timestamp(c, "/lastTransitionTime").unwrap_or_default(),
                    str_at(c, "/reason"),
                    str_at(c, "/message")
                ),
            );
        }
    }
}

fn node(d: &mut Doc, n: &Value, pods: &[Value], lease: Result<&Value, &String>, now: Timestamp) {
    head(d, n, false);
    let mut roles: Vec<String> = n
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role.to_string()),
            _ if k == "kubernetes.io/role" => v.as_str().filter(|s| !s.is_empty()).map(str::to_string),
            _ => None,
        })
        .collect();
    roles.sort();
    roles.dedup();
    d.kv(0, "Roles", if roles.is_empty() { "<none>".into() } else { roles.join(",") });
    d.labels("Labels", n.pointer("/metadata/labels"));
    d.annotations("Annotations", n.pointer("/metadata/annotations"));
    d.kv(0, "CreationTimestamp", timestamp(n, "/metadata/creationTimestamp").unwrap_or_default());
    d.w(0, "Taints:\t");
    let taints = arr(n, "/spec/taints");
    if taints.is_empty() {
        d.text.push_str("<none>\n");
    }
    for (i, t) in taints.iter().enumerate() {
        if i > 0 {
            d.text.push('\t');
        }
        let value = if str_at(t, "/value").is_empty() { String::new() } else { format!("={}", str_at(t, "/value")) };
        let _ = writeln!(d.text, "{}{value}:{}", str_at(t, "/key"), str_at(t, "/effect"));
    }
    d.kv(0, "Unschedulable", n.pointer("/spec/unschedulable").and_then(Value::as_bool).unwrap_or(false));
    match lease {
        Ok(l) => {
            d.w(0, "Lease:\n");
            d.kv(1, "HolderIdentity", or_unset(str_at(l, "/spec/holderIdentity")));
            d.kv(1, "AcquireTime", timestamp(l, "/spec/acquireTime").unwrap_or_else(|| "<unset>".into()));
            d.kv(1, "RenewTime", timestamp(l, "/spec/renewTime").unwrap_or_else(|| "<unset>".into()));
        }
        Err(e) => d.kv(0, "Lease", format!("Failed to get lease: {e}")),
    }
    let conditions = arr(n, "/status/conditions");
    if !conditions.is_empty() {
        d.w(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n");
        d.w(1, "----\t------\t-----------------\t------------------\t------\t-------\n");
        for c in conditions {
            d.w(
                1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}\n",
                    str_at(c, "/type"),
                    str_at(c, "/status"),
                    timestamp(c, "/lastHeartbeatTime").unwrap_or_default(),
                    timestamp(c, "/lastTransitionTime").unwrap_or_default(),
                    str_at(c, "/reason"),
                    str_at(c, "/message")
                ),
            );
        }
    }
    d.w(0, "Addresses:\n");
    for a in arr(n, "/status/addresses") {
        d.kv(1, str_at(a, "/type"), str_at(a, "/address"));
    }
    for (title, ptr) in [("Capacity", "/status/capacity"), ("Allocatable", "/status/allocatable")] {
        if let Some(map) = n.pointer(ptr).and_then(Value::as_object).filter(|m| !m.is_empty()) {
            d.w(0, &format!("{title}:\n"));
            for (k, v) in map {
                d.w(0, &format!("  {k}:\t{}\n", go_value(v)));
            }
        }
    }
    d.w(0, "System Info:\n");
    for (key, field) in [
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
        ("Kube-Proxy Version", "kubeProxyVersion"),
    ] {
        d.w(0, &format!("  {key}:\t{}\n", str_at(n, &format!("/status/nodeInfo/{field}"))));
    }
    if !str_at(n, "/spec/podCIDR").is_empty() {
        d.kv(0, "PodCIDR", str_at(n, "/spec/podCIDR"));
    }
    let cidrs: Vec<&str> = arr(n, "/spec/podCIDRs").iter().filter_map(Value::as_str).collect();
    if !cidrs.is_empty() {
        d.kv(0, "PodCIDRs", cidrs.join(","));
    }
    if !str_at(n, "/spec/providerID").is_empty() {
        d.kv(0, "ProviderID", str_at(n, "/spec/providerID"));
    }
    node_resources(d, n, pods, now);
}

/// kubectl's `describeNodeResource`: each pod's requests and limits as a share of
/// what the node can allocate, then the totals.
fn node_resources(d: &mut Doc, n: &Value, pods: &[Value], now: Timestamp) {
    let running: Vec<&Value> =
        pods.iter().filter(|p| !matches!(str_at(p, "/status/phase"), "Succeeded" | "Failed")).collect();
    let allocatable = match n.pointer("/status/allocatable").and_then(Value::as_object).filter(|m| !m.is_empty()) {
        Some(a) => a.clone(),
        None => n.pointer("/status/capacity").and_then(Value::as_object).cloned().unwrap_or_default(),
    };
    let alloc = |r: &str| allocatable.get(r).and_then(Quantity::from_json).unwrap_or_default();
    let (cpu, memory) = (alloc("cpu"), alloc("memory"));
    d.w(0, &format!("Non-terminated Pods:\t({} in total)\n", running.len()));
    d.w(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n");
    d.w(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n");
    let mut total_requests = std::collections::BTreeMap::<String, Quantity>::new();
    let mut total_limits = std::collections::BTreeMap::<String, Quantity>::new();
    for p in &running {
        let (requests, limits) = pod_requests_and_limits(p);
        let get = |m: &std::collections::BTreeMap<String, Quantity>, r: &str| m.get(r).copied().unwrap_or_default();
        let (cr, cl, mr, ml) =
            (get(&requests, "cpu"), get(&limits, "cpu"), get(&requests, "memory"), get(&limits, "memory"));
        let created = p.pointer("/metadata/creationTimestamp").and_then(Value::as_str).and_then(parse_time);
        d.w(
            1,
            &format!(
                "{}\t{}\t\t{cr} ({}%)\t{cl} ({}%)\t{mr} ({}%)\t{ml} ({}%)\t{}\n",
                str_at(p, "/metadata/namespace"),
                str_at(p, "/metadata/name"),
                cpu.percent_of(&cr, true),
                cpu.percent_of(&cl, true),
                memory.percent_of(&mr, false),
                memory.percent_of(&ml, false),
                age(created, now)
            ),
        );
        for (totals, part) in [(&mut total_requests, requests), (&mut total_limits, limits)] {
            for (r, q) in part {
                let sum = totals.get(&r).copied().map_or(q, |t| t + q);
                totals.insert(r, sum);
            }
        }
    }
    d.w(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n");
    d.w(1, "Resource\tRequests\tLimits\n");
    d.w(1, "--------\t--------\t------\n");
    let total = |m: &std::collections::BTreeMap<String, Quantity>, r: &str| m.get(r).copied().unwrap_or_default();
    let mut shown: Vec<String> = vec!["cpu".into(), "memory".into(), "ephemeral-storage".into()];
    let mut hugepages: Vec<&String> = allocatable.keys().filter(|k| k.starts_with("hugepages-")).collect();
    hugepages.sort();
    shown.extend(hugepages.into_iter().cloned());
    for r in &shown {
        let (req, lim, of) = (total(&total_requests, r), total(&total_limits, r), alloc(r));
        let milli = r == "cpu";
        d.w(1, &format!("{r}\t{req} ({}%)\t{lim} ({}%)\n", of.percent_of(&req, milli), of.percent_of(&lim, milli)));
    }
    // Extended resources (e.g. nvidia.com/gpu): no percentages.
    let mut extended: Vec<&String> = allocatable
        .keys()
        .filter(|k| k.contains('/') && !k.starts_with("kubernetes.io/") && !k.starts_with("requests."))
        .collect();
    extended.sort();
    for r in extended {
        d.w(1, &format!("{r}\t{}\t{}\n", total(&total_requests, r), total(&total_limits, r)));
    }
}

/// A pod's requests and limits: its containers added up, and each init container
/// taken if it alone asks for more.
fn pod_requests_and_limits(
    p: &Value,
) -> (std::collections::BTreeMap<String, Quantity>, std::collections::BTreeMap<String, Quantity>) {
    let mut requests = std::collections::BTreeMap::new();
    let mut limits = std::collections::BTreeMap::new();
    let read = |c: &Value, which: &str| -> Vec<(String, Quantity)> {
        c.pointer(&format!("/resources/{which}"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Quantity::from_json(v).map(|q| (k.clone(), q)))
            .collect()
    };
    for c in arr(p, "/spec/containers") {
        for (m, which) in [(&mut requests, "requests"), (&mut limits, "limits")] {
            for (r, q) in read(c, which) {
                let sum = m.get(&r).copied().map_or(q, |t: Quantity| t + q);
                m.insert(r, sum);
            }
        }
    }
    for c in arr(p, "/spec/initContainers") {
        for (m, which) in [(&mut requests, "requests"), (&mut limits, "limits")] {
            for (r, q) in read(c, which) {
                let max = m.get(&r).copied().map_or(q, |t: Quantity| t.max(q));
                m.insert(r, max);
            }
        }
    }
    (requests, limits)
}

fn or_unset(s: &str) -> &str {
    if s.is_empty() { "<unset>" } else { s }
}

// === Any other kind ===

/// kubectl's generic describer: the metadata, then every other field of the
/// object, sorted, with labels made from the field names (`apiVersion` →
/// `API Version`).
fn generic(d: &mut Doc, obj: &Value) {
    head(d, obj, true);
    d.labels("Labels", obj.pointer("/metadata/labels"));
    d.annotations("Annotations", obj.pointer("/metadata/annotations"));
    let skip = [
        ".metadata.managedFields",
        ".metadata.name",
        ".metadata.namespace",
        ".metadata.labels",
        ".metadata.annotations",
    ];
    if let Some(map) = obj.as_object() {
        unstructured(d, 0, map, "", &skip);
    }
}

fn unstructured(d: &mut Doc, level: usize, content: &Map<String, Value>, prefix: &str, skip: &[&str]) {
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for field in fields {
        let path = format!("{prefix}.{field}");
        if skip.contains(&path.as_str()) {
            continue;
        }
        match &content[field] {
            Value::Object(m) => {
                d.w(level, &format!("{}:\n", smart_label(field)));
                unstructured(d, level + 1, m, &path, skip);
            }
            Value::Array(items) => {
                d.w(level, &format!("{}:\n", smart_label(field)));
                for item in items {
                    match item {
                        Value::Object(m) => unstructured(d, level + 1, m, &path, skip),
                        other => d.w(level + 1, &format!("{}\n", go_value(other))),
                    }
                }
            }
            scalar => d.w(level, &format!("{}:\t{}\n", smart_label(field), go_value(scalar))),
        }
    }
}

/// `creationTimestamp` → `Creation Timestamp`, `uid` → `UID`; names with other
/// characters than letters and `-` stay as they are.
pub fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    const ACRONYMS: [&str; 5] = ["API", "URL", "UID", "OSB", "GUID"];
    camel_split(field)
        .into_iter()
        .map(|part| {
            let upper = part.to_uppercase();
            if ACRONYMS.contains(&upper.as_str()) {
                upper
            } else {
                let mut c = part.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().chain(c).collect(),
                    None => String::new(),
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits camelCase words as `github.com/fatih/camelcase` does: runs of lower case,
/// upper case, digits and other characters, where the last capital of an upper-case
/// run starts the following lower-case word (`HTTPServer` → `HTTP`, `Server`).
fn camel_split(s: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_numeric() {
            3
        } else {
            4
        }
    }
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in s.chars() {
        let k = class(c);
        if k == last
            && let Some(run) = runs.last_mut()
        {
            run.push(c);
        } else {
            runs.push(vec![c]);
        }
        last = k;
    }
    for i in 0..runs.len().saturating_sub(1) {
        if class(runs[i][0]) == 2
            && class(runs[i + 1][0]) == 1
            && let Some(c) = runs[i].pop()
        {
            runs[i + 1].insert(0, c);
        }
    }
    runs.into_iter().filter(|r| !r.is_empty()).map(|r| r.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        parse_time("2026-11-25T12:10:00Z").unwrap()
    }

    #[test]
    fn deployment_matches_kubectl_layout() {
        let deploy = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "creationTimestamp": "2026-11-25T12:01:25Z", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "minReadySeconds": 0,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                        {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}
        });
        let mut d = Doc::default();
        deployment(&mut d, &deploy, &[]);
        let text = d.finish(Some(&[]), now());
        // What kubectl 1.33 printed for the same object (the timestamp aside).
        let created = rfc1123z(parse_time("2026-11-25T12:01:25Z").unwrap());
        let want = format!(
            "Name:                   web
Namespace:              default
CreationTimestamp:      {created}
Labels:                 app=web
Annotations:            <none>
Selector:               app=web
Replicas:               2 desired | 0 updated | 0 total | 0 available | 0 unavailable
StrategyType:           RollingUpdate
MinReadySeconds:        0
RollingUpdateStrategy:  25% max unavailable, 25% max surge
Pod Template:
  Labels:  app=web
  Containers:
   nginx:
    Image:         nginx:1.25
    Port:          80/TCP
    Host Port:     0/TCP
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Events:            <none>
"
        );
        assert_eq!(text, want);
    }

    #[test]
    fn events_table_sorted_and_aligned_apart() {
        let cm = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"}});
        let mut d = Doc::default();
        config_map(&mut d, &cm);
        let events = vec![
            json!({"type": "Normal", "reason": "Created", "firstTimestamp": "2026-11-25T12:09:50Z", "lastTimestamp": "2026-11-25T12:09:50Z", "source": {"component": "rk"}, "message": "made it\n"}),
            json!({"type": "Warning", "reason": "BackOff", "count": 4, "firstTimestamp": "2026-11-25T12:00:00Z", "lastTimestamp": "2026-11-25T12:07:00Z", "reportingComponent": "kubelet", "message": "again"}),
        ];
        let text = d.finish(Some(&events), now());
        assert!(text.starts_with("Name:         c\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\n\nData\n====\nk:\n----\nv\n\n\nBinaryData\n====\n\n"), "{text}");
        assert!(
            text.ends_with(
                "Events:\n  Type     Reason   Age               From     Message\n  ----     ------   ----              ----     -------\n  Normal   Created  10s               rk       made it\n  Warning  BackOff  3m (x4 over 10m)  kubelet  again\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn secrets_show_sizes_not_values() {
        let s = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "Opaque", "data": {"password": "aHVudGVyMg=="}});
        let mut d = Doc::default();
        secret(&mut d, &s);
        let text = d.finish(None, now());
        assert!(text.contains("password:  7 bytes"), "{text}");
        assert!(!text.contains("hunter2") && !text.contains("aHVudGVyMg"));
    }

    #[test]
    fn generic_layout_and_labels() {
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("holderIdentity"), "Holder Identity");
        assert_eq!(smart_label("x.y"), "x.y");
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": "default", "uid": "u", "managedFields": [{"manager": "x"}]},
            "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}});
        let mut d = Doc::default();
        generic(&mut d, &lease);
        let text = d.finish(Some(&[]), now());
        assert_eq!(
            text,
            "Name:         l\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\nAPI Version:  coordination.k8s.io/v1\nKind:         Lease\nMetadata:\n  UID:  u\nSpec:\n  Holder Identity:         me\n  Lease Duration Seconds:  15\nEvents:                    <none>\n"
        );
    }

    #[test]
    fn selectors_format_like_metav1() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]}, {"key": "canary", "operator": "DoesNotExist"}]});
        // Sorted by key, as labels.Selector sorts its requirements.
        assert_eq!(selector_string(Some(&sel)), "app=web,!canary,tier in (a,b)");
        assert_eq!(selector_string(None), "<none>");
    }

    #[test]
    fn pod_with_status() {
        let pod_json = json!({
            "metadata": {"name": "web-1", "namespace": "default", "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": true, "uid": "x"}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "busybox", "args": ["sleep", "3600"],
                     "resources": {"limits": {"cpu": "1", "memory": "64Mi"}},
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}]},
            "status": {"phase": "Running", "hostIP": "10.0.0.5", "podIP": "10.1.0.7", "podIPs": [{"ip": "10.1.0.7"}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "app", "ready": true, "restartCount": 2, "containerID": "rk://1", "imageID": "sha",
                           "state": {"running": {"startedAt": "2026-11-25T12:00:00Z"}}}]}
        });
        let mut d = Doc::default();
        pod(&mut d, &pod_json, now());
        let text = d.finish(Some(&[]), now());
        for want in [
            "Node:         n1/10.0.0.5\n",
            "Controlled By:  ReplicaSet/web-abc\n",
            "    State:          Running\n",
            "    Ready:          True\n",
            "    Restart Count:  2\n",
            "      cpu:        1\n",
            "    Readiness:    http-get http://:8080/ready delay=0s timeout=1s period=10s #success=1 #failure=3\n",
            "  Ready          True \n",
            "QoS Class:       Guaranteed\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
