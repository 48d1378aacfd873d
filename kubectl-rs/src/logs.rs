//! `rkctl logs [-f] [--tail N] [--since D] [--timestamps] [-p] [-c C] POD|TYPE/NAME`:
//! one `GET …/pods/NAME/log` whose body is copied to stdout as it arrives (with
//! `-f` the server keeps the stream open until the container ends; Ctrl-C then ends
//! rkctl with exit code 0).

use crate::Session;
use crate::cli::LogsArgs;
use crate::client::Request;
use crate::error::Error;
use http_body_util::BodyExt;
use serde_json::Value;

pub async fn run(s: &Session, args: &LogsArgs) -> Result<(), Error> {
    let since = match &args.since {
        Some(text) => Some(crate::human::parse_duration(text).filter(|d| !d.is_zero()).ok_or_else(|| {
            Error::Usage(format!("invalid --since {text:?}; use a positive duration like 30s, 5m or 2h"))
        })?),
        None => None,
    };
    if args.tail < -1 {
        return Err(Error::Usage(format!("invalid --tail {}; use a number of lines, or -1 for all", args.tail)));
    }
    let pod = crate::pods::pick(s, &args.target, "get logs of").await?;
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let container = crate::pods::container(&pod, args.container.as_deref(), false)?;
    let mut req =
        Request::get(format!("{}/log", s.discovery().await?.resolve("pods")?.object_path(Some(&s.namespace), &name)))
            .query("container", &container)
            .accept("*/*");
    if args.follow {
        req = req.query("follow", "true");
    }
    if args.tail >= 0 {
        req = req.query("tailLines", args.tail.to_string());
    }
    if let Some(d) = since {
        // Whole seconds, rounded up, as kubectl sends them.
        req = req.query("sinceSeconds", d.as_secs_f64().ceil().max(1.0).to_string());
    }
    if args.timestamps {
        req = req.query("timestamps", "true");
    }
    if args.previous {
        req = req.query("previous", "true");
    }
    if let Some(n) = args.limit_bytes {
        req = req.query("limitBytes", n.to_string());
    }
    let resp = s.client.send(req).await?;
    let mut body = resp.into_body();
    let copy = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Transport {
                server: s.client.server().to_string(),
                reason: format!("the log stream broke: {}", crate::client::transport_reason(&e)),
            })?;
            if let Ok(data) = frame.into_data() {
                crate::output::print_bytes(&data);
            }
        }
        Ok(())
    };
    // Ctrl-C ends `-f` successfully, as it ends `get -w`.
    tokio::select! {
        result = copy => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
