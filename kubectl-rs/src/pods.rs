//! Which pod and container `logs` and `exec` talk to: `POD`, `pod/NAME`, or
//! `TYPE/NAME` of anything with a pod selector (a Deployment, ReplicaSet, Job,
//! Service, …), where one of its pods is chosen the way kubectl chooses
//! (`podutils.ByLogging`: scheduled, running, ready, longest ready, most restarts,
//! oldest).

use crate::Session;
use crate::client::Request;
use crate::error::Error;
use crate::human::parse_time;
use serde_json::Value;
use std::cmp::Ordering;

/// The pod `arg` names (fetched), announcing on stderr which one was chosen when a
/// workload has several.
pub async fn pick(s: &Session, arg: &str, verb: &str) -> Result<Value, Error> {
    let (kind, name) = match arg.split_once('/') {
        Some((k, n)) if !k.is_empty() && !n.is_empty() => (Some(k), n),
        Some(_) => {
            return Err(Error::Usage(format!("{arg:?} is not of the form POD or TYPE/NAME, e.g. deploy/web")));
        }
        None => (None, arg),
    };
    let pods = s.discovery().await?.resolve("pods")?.clone();
    let res = match kind {
        None => pods.clone(),
        Some(k) => s.discovery().await?.resolve(k)?.clone(),
    };
    if res == pods {
        return s.client.json(Request::get(pods.object_path(Some(&s.namespace), name))).await;
    }
    let obj = s.client.json(Request::get(res.object_path(Some(&s.namespace), name))).await?;
    let Some(selector) = selector_of(&obj) else {
        return Err(Error::Usage(format!(
            "cannot {verb} {}/{name}: it has no pod selector; name a pod or a workload (deploy/NAME, rs/NAME, job/NAME)",
            res.kind_group()
        )));
    };
    let list =
        s.client.json(Request::get(pods.collection_path(Some(&s.namespace))).query("labelSelector", &selector)).await?;
    let mut items: Vec<Value> = list.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    // Pods on their way out are never chosen.
    items.retain(|p| p.pointer("/metadata/deletionTimestamp").is_none());
    items.sort_by(by_logging);
    let count = items.len();
    let Some(first) = items.into_iter().next() else {
        return Err(Error::Usage(format!(
            "{}/{name} has no pods (selector {selector}); check it with \"rkctl get pods -l {selector}\"",
            res.kind_group()
        )));
    };
    if count > 1 {
        crate::output::eprint_line(&format!("Found {count} pods, using pod/{}", str_at(&first, "/metadata/name")));
    }
    Ok(first)
}

/// An object's pod selector as a label selector string: `spec.selector` of a
/// workload (`matchLabels`/`matchExpressions`) or of a Service (a plain map).
pub fn selector_of(obj: &Value) -> Option<String> {
    let sel = obj.pointer("/spec/selector").filter(|v| v.is_object())?;
    let text = if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() {
        crate::describe::selector_string(Some(sel))
    } else {
        let mut pairs: Vec<String> =
            sel.as_object()?.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
        pairs.sort();
        pairs.join(",")
    };
    (!text.is_empty() && text != "<none>").then_some(text)
}

/// The container to use: `wanted`, else the `kubectl.kubernetes.io/default-container`
/// annotation, else the first one (saying so on stderr when there are several,
/// as kubectl does, unless `quiet`).
pub fn container(pod: &Value, wanted: Option<&str>, quiet: bool) -> Result<String, Error> {
    let names = |p: &str| -> Vec<String> {
        pod.pointer(p)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    let main = names("/spec/containers");
    let init = names("/spec/initContainers");
    let pod_name = str_at(pod, "/metadata/name");
    if let Some(w) = wanted.filter(|w| !w.is_empty()) {
        if main.iter().chain(&init).any(|n| n == w) {
            return Ok(w.to_string());
        }
        let mut all = main.clone();
        all.extend(init.iter().cloned());
        return Err(Error::Usage(format!(
            "container {w} is not valid for pod {pod_name}; choose one of: {}",
            all.join(", ")
        )));
    }
    let annotated = pod
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
        .and_then(Value::as_str)
        .filter(|a| main.iter().any(|n| n == a));
    if let Some(a) = annotated {
        return Ok(a.to_string());
    }
    let Some(first) = main.first() else {
        return Err(Error::Usage(format!("pod {pod_name} has no containers")));
    };
    if main.len() + init.len() > 1 && !quiet {
        let mut all: Vec<String> = main.clone();
        all.extend(init.iter().map(|n| format!("{n} (init)")));
        crate::output::eprint_line(&format!("Defaulted container {first:?} out of: {}", all.join(", ")));
    }
    Ok(first.clone())
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn ready_since(p: &Value) -> Option<Option<jiff::Timestamp>> {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .map(|c| c.get("lastTransitionTime").and_then(Value::as_str).and_then(parse_time))
}

fn max_restarts(p: &Value) -> i64 {
    p.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .max()
        .unwrap_or(0)
}

/// kubectl's `podutils.ByLogging`: the pod to prefer sorts first.
pub fn by_logging(a: &Value, b: &Value) -> Ordering {
    // 1. Scheduled before unscheduled.
    let (na, nb) = (str_at(a, "/spec/nodeName"), str_at(b, "/spec/nodeName"));
    if na.is_empty() != nb.is_empty() {
        return if na.is_empty() { Ordering::Greater } else { Ordering::Less };
    }
    // 2. Running < Unknown < Pending (and the rest).
    let rank = |p: &Value| match str_at(p, "/status/phase") {
        "Running" => 0,
        "Unknown" => 1,
        "Pending" => 2,
        _ => 3,
    };
    match rank(a).cmp(&rank(b)) {
        Ordering::Equal => {}
        o => return o,
    }
    // 3. Ready before not ready; 4. ready for longer first.
    match (ready_since(a), ready_since(b)) {
        (Some(_), None) => return Ordering::Less,
        (None, Some(_)) => return Ordering::Greater,
        (Some(ta), Some(tb)) if ta != tb => {
            return match (ta, tb) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
        }
        _ => {}
    }
    // 5. More restarts first.
    match max_restarts(b).cmp(&max_restarts(a)) {
        Ordering::Equal => {}
        o => return o,
    }
    // 6. Older first.
    let created = |p: &Value| p.pointer("/metadata/creationTimestamp").and_then(Value::as_str).and_then(parse_time);
    match (created(a), created(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<&str>, created: &str) -> Value {
        let conditions: Vec<Value> =
            ready_at.map(|t| json!({"type": "Ready", "status": "True", "lastTransitionTime": t})).into_iter().collect();
        json!({"metadata": {"name": name, "creationTimestamp": created},
               "spec": {"nodeName": node, "containers": [{"name": "a"}, {"name": "b"}]},
               "status": {"phase": phase, "conditions": conditions}})
    }

    #[test]
    fn prefers_scheduled_running_ready_pods() {
        let mut pods = [
            pod("unscheduled", "", "Pending", None, "2026-01-01T00:00:00Z"),
            pod("pending", "n1", "Pending", None, "2026-01-01T00:00:00Z"),
            pod("running", "n1", "Running", None, "2026-01-01T00:00:00Z"),
            pod("ready-late", "n1", "Running", Some("2026-01-01T00:05:00Z"), "2026-01-01T00:00:00Z"),
            pod("ready-early", "n1", "Running", Some("2026-01-01T00:01:00Z"), "2026-01-01T00:00:00Z"),
        ];
        pods.sort_by(by_logging);
        let names: Vec<&str> = pods.iter().map(|p| str_at(p, "/metadata/name")).collect();
        assert_eq!(names, ["ready-early", "ready-late", "running", "pending", "unscheduled"]);
    }

    #[test]
    fn selectors_of_workloads_and_services() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}});
        assert_eq!(selector_of(&d).as_deref(), Some("app=web,tier=front"));
        let svc = json!({"spec": {"selector": {"app": "web"}}});
        assert_eq!(selector_of(&svc).as_deref(), Some("app=web"));
        assert_eq!(selector_of(&json!({"spec": {}})), None);
    }

    #[test]
    fn containers_default_to_the_annotation_or_the_first() {
        let mut p = pod("p", "n1", "Running", None, "2026-01-01T00:00:00Z");
        assert_eq!(container(&p, None, true).unwrap(), "a");
        assert_eq!(container(&p, Some("b"), true).unwrap(), "b");
        assert_eq!(
            container(&p, Some("c"), true).unwrap_err().line(),
            "error: container c is not valid for pod p; choose one of: a, b"
        );
        p["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/default-container": "b"});
        assert_eq!(container(&p, None, true).unwrap(), "b");
    }
}
