//! `rkctl rollout status|history|undo|restart|pause|resume deploy/NAME`, as kubectl
//! does them for Deployments:
//!
//! - `status` watches the Deployment and prints a line each time its progress
//!   changes (kubectl's `DeploymentStatusViewer` wording); it ends with 0 when the
//!   rollout is complete, and with 1 on `--timeout` or when the controller reports
//!   `ProgressDeadlineExceeded`.
//! - `history` and `undo` read the Deployment's ReplicaSets (those it controls, by
//!   owner uid) and their `deployment.kubernetes.io/revision` annotations; `undo`
//!   copies a revision's pod template back with a JSON patch, as kubectl does.
//! - `restart`, `pause` and `resume` are merge patches of the Deployment.

use crate::Session;
use crate::cli::{RolloutCommand, RolloutTarget};
use crate::client::Request;
use crate::discovery::ApiResource;
use crate::error::Error;
use crate::output;
use http::Method;
use serde_json::{Map, Value, json};
use std::time::Duration;

const REVISION: &str = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// Deployment annotations `undo` keeps rather than taking the ReplicaSet's.
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

pub async fn run(s: &Session, cmd: &RolloutCommand) -> Result<(), Error> {
    let (verb, target) = match cmd {
        RolloutCommand::Status { target, .. } => ("status", target),
        RolloutCommand::History { target, .. } => ("history", target),
        RolloutCommand::Undo { target, .. } => ("undo", target),
        RolloutCommand::Restart { target } => ("restart", target),
        RolloutCommand::Pause { target } => ("pause", target),
        RolloutCommand::Resume { target } => ("resume", target),
    };
    let deployments = resolve(s, target, verb).await?;
    if verb == "status" && deployments.len() > 1 {
        return Err(Error::Usage("rollout status watches one deployment at a time; name only one".into()));
    }
    let mut failures = 0;
    for (res, name) in &deployments {
        let result = match cmd {
            RolloutCommand::Status { watch, timeout, .. } => {
                let timeout = crate::human::parse_duration(timeout).ok_or_else(|| {
                    Error::Usage(format!(
                        "invalid --timeout {timeout:?}; use a duration like 30s or 5m (0 waits forever)"
                    ))
                })?;
                return status(s, res, name, *watch, timeout).await;
            }
            RolloutCommand::History { revision, .. } => history(s, res, name, *revision).await,
            RolloutCommand::Undo { to_revision, .. } => undo(s, res, name, *to_revision).await,
            RolloutCommand::Restart { .. } => restart(s, res, name).await,
            RolloutCommand::Pause { .. } => set_paused(s, res, name, true).await,
            RolloutCommand::Resume { .. } => set_paused(s, res, name, false).await,
        };
        if let Err(e) = result {
            output::eprint_line(&e.line());
            failures += 1;
        }
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

/// The Deployments named on the command line.
async fn resolve(s: &Session, target: &RolloutTarget, verb: &str) -> Result<Vec<(ApiResource, String)>, Error> {
    let targets = crate::target::parse(s.discovery().await?, &target.resources, &format!("rollout {verb}"))?;
    let mut out = Vec::new();
    for t in targets.targets {
        if (t.res.group.as_str(), t.res.kind.as_str()) != ("apps", "Deployment") {
            return Err(Error::Usage(format!(
                "rollout {verb} is implemented for deployments only, not {}; use deployment/NAME",
                t.res.qualified()
            )));
        }
        if t.names.is_empty() {
            return Err(Error::Usage(format!(
                "no deployment name was given; use \"rkctl rollout {verb} deployment/NAME\""
            )));
        }
        for n in t.names {
            out.push((t.res.clone(), n));
        }
    }
    Ok(out)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

// === status ===

/// Where a rollout stands, in kubectl's words.
#[derive(Debug, PartialEq)]
enum Progress {
    Waiting(String),
    Done(String),
    Failed(String),
}

/// kubectl's `DeploymentStatusViewer.Status`.
fn progress(d: &Value) -> Progress {
    let name = str_at(d, "/metadata/name");
    if int_at(d, "/metadata/generation") > int_at(d, "/status/observedGeneration") {
        return Progress::Waiting("Waiting for deployment spec update to be observed...".into());
    }
    let timed_out = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    if timed_out {
        return Progress::Failed(format!(
            "deployment {name:?} exceeded its progress deadline; see why with \"rkctl describe deployment {name}\""
        ));
    }
    let desired = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let updated = int_at(d, "/status/updatedReplicas");
    let total = int_at(d, "/status/replicas");
    let available = int_at(d, "/status/availableReplicas");
    if updated < desired {
        return Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if total > updated {
        return Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            total - updated
        ));
    }
    if available < updated {
        return Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Progress::Done(format!("deployment {name:?} successfully rolled out"))
}

async fn status(s: &Session, res: &ApiResource, name: &str, watch: bool, timeout: Duration) -> Result<(), Error> {
    let follow = async {
        let mut last = String::new();
        // Prints a new state; returns whether the rollout ended.
        let mut show = |d: &Value| -> Result<bool, Error> {
            match progress(d) {
                Progress::Done(msg) => {
                    output::print(&format!("{msg}\n"));
                    Ok(true)
                }
                Progress::Failed(msg) => Err(Error::Usage(msg)),
                Progress::Waiting(msg) => {
                    if msg != last {
                        output::print(&format!("{msg}\n"));
                        last = msg;
                    }
                    Ok(!watch)
                }
            }
        };
        loop {
            let d = s.client.json(Request::get(res.object_path(Some(&s.namespace), name))).await?;
            if show(&d)? {
                return Ok(());
            }
            let req = Request::get(res.collection_path(Some(&s.namespace)))
                .query("fieldSelector", format!("metadata.name={name}"))
                .query("resourceVersion", str_at(&d, "/metadata/resourceVersion"))
                .query("watch", "true");
            let mut lines = s.client.lines(req).await?;
            while let Some(line) = lines.next().await? {
                let event: Value = serde_json::from_slice(&line).unwrap_or_default();
                match event.get("type").and_then(Value::as_str) {
                    Some("ADDED" | "MODIFIED") if show(&event["object"])? => return Ok(()),
                    Some("DELETED") => {
                        return Err(Error::Usage(format!(
                            "deployment {name:?} was deleted while waiting for its rollout"
                        )));
                    }
                    // An expired resourceVersion (ERROR) or a bookmark: read it again.
                    Some("ERROR") => break,
                    _ => {}
                }
            }
        }
    };
    if timeout.is_zero() {
        return follow.await;
    }
    match tokio::time::timeout(timeout, follow).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout(format!(
            "timed out after {} waiting for deployment {name:?} to finish rolling out; raise --timeout, or see why with \"rkctl describe deployment {name}\"",
            crate::human::human_duration(timeout.as_secs() as i64)
        ))),
    }
}

// === history and undo ===

/// The ReplicaSets `d` controls, with their revisions, oldest revision first.
async fn revisions(s: &Session, d: &Value) -> Result<Vec<(i64, Value)>, Error> {
    let uid = str_at(d, "/metadata/uid");
    let rs_res = s.discovery().await?.resolve("replicasets.apps")?.clone();
    let mut req = Request::get(rs_res.collection_path(Some(&s.namespace)));
    if let Some(sel) = crate::pods::selector_of(d) {
        req = req.query("labelSelector", sel);
    }
    let list = s.client.json(req).await?;
    let mut out: Vec<(i64, Value)> = list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|o| o["uid"] == uid && o["controller"] == true)
        })
        .filter_map(|rs| {
            let rev = rs.pointer("/metadata/annotations")?.get(REVISION)?.as_str()?.parse::<i64>().ok()?;
            Some((rev, rs.clone()))
        })
        .collect();
    out.sort_by_key(|(r, _)| *r);
    Ok(out)
}

async fn history(s: &Session, res: &ApiResource, name: &str, revision: i64) -> Result<(), Error> {
    let d = s.client.json(Request::get(res.object_path(Some(&s.namespace), name))).await?;
    let revs = revisions(s, &d).await?;
    let who = output::name_of(res, name);
    if revision > 0 {
        let Some((_, rs)) = revs.iter().find(|(r, _)| *r == revision) else {
            return Err(Error::Usage(format!(
                "unable to find revision {revision} of {who}; \"rkctl rollout history {who}\" lists the revisions"
            )));
        };
        let template = rs.pointer("/spec/template").map(without_hash);
        output::print(&format!(
            "{who} with revision #{revision}\n{}\n",
            crate::describe::pod_template_text(template.as_ref())
        ));
        return Ok(());
    }
    if revs.is_empty() {
        output::print(&format!("No rollout history found in {who}\n"));
        return Ok(());
    }
    output::print(&format!("{who} \n{}\n", history_table(&revs)));
    Ok(())
}

/// `REVISION  CHANGE-CAUSE` rows (kubectl's tabwriter: padding 2).
fn history_table(revs: &[(i64, Value)]) -> String {
    let mut w = crate::tabwriter::TabWriter::new(0, 2);
    w.write("REVISION\tCHANGE-CAUSE\n");
    for (rev, rs) in revs {
        let cause = rs.pointer("/metadata/annotations").and_then(|a| a.get(CHANGE_CAUSE)).and_then(Value::as_str);
        w.write(&format!("{rev}\t{}\n", cause.filter(|c| !c.is_empty()).unwrap_or("<none>")));
    }
    w.flush()
}

/// A pod template without the `pod-template-hash` label the controller adds.
fn without_hash(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove("pod-template-hash");
    }
    t
}

/// The revision `undo` goes back to: `to` when given, else the one before the latest.
fn pick_revision(revs: &[(i64, Value)], to: i64, who: &str) -> Result<(i64, Value), Error> {
    if to > 0 {
        return revs.iter().find(|(r, _)| *r == to).cloned().ok_or_else(|| {
            Error::Usage(format!(
                "unable to find specified revision {to} in history; \"rkctl rollout history {who}\" lists them"
            ))
        });
    }
    match revs {
        [.., previous, _latest] => Ok(previous.clone()),
        _ => {
            Err(Error::Usage(format!("no rollout history found for {who}: there is no earlier revision to go back to")))
        }
    }
}

async fn undo(s: &Session, res: &ApiResource, name: &str, to: i64) -> Result<(), Error> {
    let d = s.client.json(Request::get(res.object_path(Some(&s.namespace), name))).await?;
    let who = output::name_of(res, name);
    if d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Err(Error::Usage(format!(
            "you cannot rollback a paused deployment; resume it first with \"rkctl rollout resume {who}\" and try again"
        )));
    }
    let revs = revisions(s, &d).await?;
    let (rev, rs) = pick_revision(&revs, to, &who)?;
    let template = rs.pointer("/spec/template").map(without_hash).unwrap_or_default();
    if Some(&template) == d.pointer("/spec/template").map(without_hash).as_ref() {
        output::print(&format!("{who} skipped rollback (current template already matches revision {rev})\n"));
        return Ok(());
    }
    // The Deployment keeps its own bookkeeping annotations and takes the rest
    // (a change-cause, for instance) from the revision.
    let mut annotations = Map::new();
    let empty = Map::new();
    let own = d.pointer("/metadata/annotations").and_then(Value::as_object).unwrap_or(&empty);
    for k in ANNOTATIONS_TO_SKIP {
        if let Some(v) = own.get(k) {
            annotations.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in rs.pointer("/metadata/annotations").and_then(Value::as_object).unwrap_or(&empty) {
        if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    let req = Request::new(Method::PATCH, res.object_path(Some(&s.namespace), name))
        .body("application/json-patch+json", &patch);
    s.client.json(req).await.map_err(|e| e.context(format!("failed restoring revision {rev}")))?;
    output::print(&format!("{who} rolled back\n"));
    Ok(())
}

// === restart, pause, resume ===

async fn merge_patch(s: &Session, res: &ApiResource, name: &str, patch: Value) -> Result<(), Error> {
    let req = Request::new(Method::PATCH, res.object_path(Some(&s.namespace), name))
        .body("application/merge-patch+json", &patch);
    s.client.json(req).await.map(|_| ())
}

async fn restart(s: &Session, res: &ApiResource, name: &str) -> Result<(), Error> {
    let d = s.client.json(Request::get(res.object_path(Some(&s.namespace), name))).await?;
    if d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Err(Error::Usage(format!(
            "{} {name:?} can't restart paused deployment (run \"rkctl rollout resume {}\" first)",
            res.qualified(),
            output::name_of(res, name)
        )));
    }
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let patch =
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
    merge_patch(s, res, name, patch).await?;
    output::print(&format!("{} restarted\n", output::name_of(res, name)));
    Ok(())
}

async fn set_paused(s: &Session, res: &ApiResource, name: &str, pause: bool) -> Result<(), Error> {
    let d = s.client.json(Request::get(res.object_path(Some(&s.namespace), name))).await?;
    let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let who = output::name_of(res, name);
    match (pause, paused) {
        (true, true) => Err(Error::Usage(format!(
            "{} {name:?} is already paused; \"rkctl rollout resume {who}\" resumes it",
            res.qualified()
        ))),
        (false, false) => Err(Error::Usage(format!("{} {name:?} is not paused", res.qualified()))),
        _ => {
            let value = if pause { json!(true) } else { Value::Null };
            merge_patch(s, res, name, json!({"spec": {"paused": value}})).await?;
            output::print(&format!("{who} {}\n", if pause { "paused" } else { "resumed" }));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(generation: i64, observed: i64, status: Value) -> Value {
        let mut st = status;
        st["observedGeneration"] = json!(observed);
        json!({"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": 3}, "status": st})
    }

    #[test]
    fn progress_reads_like_kubectl() {
        let w = |s: &str| Progress::Waiting(s.to_string());
        assert_eq!(progress(&deploy(2, 1, json!({}))), w("Waiting for deployment spec update to be observed..."));
        assert_eq!(
            progress(&deploy(2, 2, json!({"updatedReplicas": 1, "replicas": 3}))),
            w("Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...")
        );
        assert_eq!(
            progress(&deploy(2, 2, json!({"updatedReplicas": 3, "replicas": 4}))),
            w("Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...")
        );
        assert_eq!(
            progress(&deploy(2, 2, json!({"updatedReplicas": 3, "replicas": 3, "availableReplicas": 2}))),
            w("Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available...")
        );
        assert_eq!(
            progress(&deploy(2, 2, json!({"updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}))),
            Progress::Done("deployment \"web\" successfully rolled out".into())
        );
        let stuck = deploy(
            2,
            2,
            json!({"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert!(
            matches!(progress(&stuck), Progress::Failed(m) if m.starts_with("deployment \"web\" exceeded its progress deadline"))
        );
    }

    #[test]
    fn history_and_revisions() {
        let rs = |cause: Option<&str>| match cause {
            Some(c) => json!({"metadata": {"annotations": {CHANGE_CAUSE: c}}}),
            None => json!({"metadata": {}}),
        };
        let revs = vec![(1, rs(None)), (2, rs(Some("kubectl set image"))), (10, rs(None))];
        assert_eq!(
            history_table(&revs),
            "REVISION  CHANGE-CAUSE\n1         <none>\n2         kubectl set image\n10        <none>\n"
        );
        assert_eq!(pick_revision(&revs, 0, "d").unwrap().0, 2);
        assert_eq!(pick_revision(&revs, 1, "d").unwrap().0, 1);
        assert!(
            pick_revision(&revs, 5, "d").unwrap_err().line().starts_with("error: unable to find specified revision 5")
        );
        assert!(pick_revision(&revs[..1], 0, "d").is_err());
    }
}
