//! `rkctl scale TYPE/NAME --replicas N`: a merge patch of the `scale` subresource,
//! so it works for every kind that has one (Deployments, ReplicaSets, …).

use crate::Session;
use crate::cli::ScaleArgs;
use crate::client::Request;
use crate::error::Error;
use crate::output;
use http::Method;
use serde_json::{Value, json};

pub async fn run(s: &Session, args: &ScaleArgs) -> Result<(), Error> {
    if args.replicas < 0 {
        return Err(Error::Usage(format!(
            "invalid --replicas {}: the number of replicas must be 0 or more",
            args.replicas
        )));
    }
    let targets = crate::target::parse(s.discovery().await?, &args.resources, "scale")?;
    let mut failures = 0;
    for t in &targets.targets {
        if t.names.is_empty() {
            return Err(Error::Usage(format!(
                "no name was given for {}; use \"rkctl scale {}/NAME --replicas N\"",
                t.res.qualified(),
                t.res.singular
            )));
        }
        for name in &t.names {
            let path = format!("{}/scale", t.res.object_path(Some(&s.namespace), name));
            match scale_one(s, &path, args).await {
                Ok(()) => output::print(&format!("{} scaled\n", output::name_of(&t.res, name))),
                Err(e) => {
                    output::eprint_line(&e.line());
                    failures += 1;
                }
            }
        }
    }
    if failures > 0 { Err(Error::Partial(failures)) } else { Ok(()) }
}

async fn scale_one(s: &Session, path: &str, args: &ScaleArgs) -> Result<(), Error> {
    let mut attempt = 1;
    loop {
        let mut patch = json!({ "spec": { "replicas": args.replicas } });
        if let Some(want) = args.current_replicas {
            let current = s.client.json(Request::get(path)).await?;
            let now = current.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
            if now != want {
                return Err(Error::Usage(format!(
                    "Expected replicas to be {want}, was {now}; nothing was changed (drop --current-replicas to scale anyway)"
                )));
            }
            // The precondition holds only for this version of the object.
            if let Some(rv) = current.pointer("/metadata/resourceVersion") {
                patch["metadata"] = json!({ "resourceVersion": rv });
            }
        }
        match s.client.json(Request::new(Method::PATCH, path).body("application/merge-patch+json", &patch)).await {
            // Someone else (a controller writing status) moved the object between
            // the check and the write: check again, as kubectl scale does.
            Err(e) if e.is_stale_version() && attempt < crate::patch::PINNED_ATTEMPTS => attempt += 1,
            result => return result.map(|_| ()),
        }
    }
}
