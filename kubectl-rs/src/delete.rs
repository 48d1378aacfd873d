//! `rkctl delete`: objects by name (`TYPE NAME...`, `TYPE/NAME`), by label selector
//! or `--all`, or as listed in files (`-f`). Each deletion is one `DELETE` with a
//! propagation policy (Background unless `--cascade` says otherwise); a missing
//! object is reported and the rest still deleted, and the exit code is 1 at the end.
//! `--wait` then watches until the objects are really gone.

use crate::Session;
use crate::cli::{Cascade, DeleteArgs, DryRun};
use crate::client::Request;
use crate::discovery::ApiResource;
use crate::error::Error;
use crate::manifest::{self, ManifestError};
use crate::output;
use crate::target;
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// One object to delete.
struct Victim {
    res: ApiResource,
    namespace: Option<String>,
    name: String,
    /// The manifest file it came from, for messages.
    source: Option<String>,
}

pub async fn run(s: &Session, args: &DeleteArgs) -> Result<(), Error> {
    if !args.files.is_empty() && !args.resources.is_empty() {
        return Err(Error::Usage("give either -f FILE or resource arguments, not both".into()));
    }
    let timeout = crate::human::parse_duration(&args.timeout)
        .ok_or_else(|| Error::Usage(format!("invalid --timeout {:?}; use a duration like 30s or 2m", args.timeout)))?;
    let discovery = s.discovery().await?;
    let mut failures = 0usize;
    let mut victims = Vec::new();
    if !args.files.is_empty() {
        if args.selector.is_some() || args.all {
            return Err(Error::Usage("-l and --all cannot be combined with -f".into()));
        }
        let manifests = manifest::read_all(&args.files, args.recursive, &mut crate::apply::read_stdin)?;
        if manifests.is_empty() {
            return Err(ManifestError::Empty { verb: "delete".into() }.into());
        }
        for m in &manifests {
            match crate::apply::resolve(discovery, m, &s.namespace) {
                Ok((res, namespace)) => victims.push(Victim {
                    res: res.clone(),
                    namespace,
                    name: m.name().to_string(),
                    source: Some(m.source.clone()),
                }),
                Err(e) => {
                    output::eprint_line(&e.line());
                    failures += 1;
                }
            }
        }
    } else {
        let targets = target::parse(discovery, &args.resources, "delete")?;
        for t in &targets.targets {
            let namespace = t.res.namespaced.then(|| s.namespace.clone());
            let names = if !t.names.is_empty() {
                if args.selector.is_some() || args.all {
                    return Err(Error::Usage("-l and --all cannot be combined with object names".into()));
                }
                t.names.clone()
            } else if args.selector.is_some() || args.all {
                let list = Request::get(t.res.collection_path(namespace.as_deref()))
                    .query_opt("labelSelector", args.selector.as_deref());
                let list = s.client.json(list).await?;
                let names: Vec<String> = list
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
                    .collect();
                names
            } else {
                return Err(Error::Usage(format!(
                    "no name was given for {}; give names, -l SELECTOR or --all",
                    t.res.qualified()
                )));
            };
            for name in names {
                victims.push(Victim { res: t.res.clone(), namespace: namespace.clone(), name, source: None });
            }
        }
        if victims.is_empty() {
            match targets.targets.iter().any(|t| t.res.namespaced) {
                true => output::eprint_line(&format!("No resources found in {} namespace.", s.namespace)),
                false => output::eprint_line("No resources found"),
            }
        }
    }

    let mut deleted = Vec::new();
    for v in victims {
        match delete_one(s, args, &v).await {
            Ok(Some(uid)) => deleted.push((v, uid)),
            Ok(None) => {}
            Err(e) => {
                output::eprint_line(&e.line());
                failures += 1;
            }
        }
    }
    if args.wait && args.dry_run == DryRun::None {
        for (v, uid) in &deleted {
            if let Err(e) = wait_gone(s, v, uid, timeout).await {
                output::eprint_line(&e.line());
                failures += 1;
            }
        }
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

/// Deletes one object and prints `deployment.apps "web" deleted`. Returns the
/// deleted object's uid (for `--wait`), or `None` when it did not exist and
/// `--ignore-not-found` was given.
async fn delete_one(s: &Session, args: &DeleteArgs, v: &Victim) -> Result<Option<String>, Error> {
    let policy = match args.cascade {
        Cascade::Background => "Background",
        Cascade::Foreground => "Foreground",
        Cascade::Orphan => "Orphan",
    };
    let mut req = Request::new(Method::DELETE, v.res.object_path(v.namespace.as_deref(), &v.name))
        .body("application/json", &json!({ "propagationPolicy": policy }));
    if args.dry_run == DryRun::Server {
        req = req.query("dryRun", "All");
    }
    match s.client.json(req).await {
        Ok(obj) => {
            let suffix = if args.dry_run == DryRun::Server { " (server dry run)" } else { "" };
            output::print(&format!("{} {:?} deleted{suffix}\n", v.res.kind_group(), v.name));
            // A deleted object comes back as itself, or (for most kinds) as a Status
            // whose details name its uid.
            let uid = obj.pointer("/metadata/uid").or_else(|| obj.pointer("/details/uid"));
            Ok(Some(uid.and_then(Value::as_str).unwrap_or("").to_string()))
        }
        Err(e) if e.is_not_found() && args.ignore_not_found => Ok(None),
        Err(e) => Err(match &v.source {
            Some(src) => e.context(format!("error when deleting {src:?}")),
            None => e,
        }),
    }
}

/// Waits until the object with `uid` is gone: done when a GET says 404 (or finds a
/// new object of the same name), else watches it for the `DELETED` event.
async fn wait_gone(s: &Session, v: &Victim, uid: &str, timeout: Duration) -> Result<(), Error> {
    let what = format!("{} {:?}", v.res.kind_group(), v.name);
    let wait = async {
        loop {
            let current = match s.client.json(Request::get(v.res.object_path(v.namespace.as_deref(), &v.name))).await {
                Err(e) if e.is_not_found() => return Ok(()),
                other => other?,
            };
            if current.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
                return Ok(());
            }
            let rv = current.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
            let req = Request::get(v.res.collection_path(v.namespace.as_deref()))
                .query("fieldSelector", format!("metadata.name={}", v.name))
                .query("resourceVersion", rv)
                .query("watch", "true");
            let mut lines = s.client.lines(req).await?;
            while let Some(line) = lines.next().await? {
                let event: Value = serde_json::from_slice(&line).unwrap_or_default();
                if event.get("type").and_then(Value::as_str) == Some("DELETED") {
                    return Ok(());
                }
            }
            // The server ended the watch; look again.
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout(format!(
            "timed out after {}s waiting for {what} to be deleted (it may still have finalizers); raise --timeout to wait longer",
            timeout.as_secs()
        ))),
    }
}
