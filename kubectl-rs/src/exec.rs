//! `rkctl exec [-i] [-c C] POD|TYPE/NAME -- CMD ARGS…`: runs a command in a
//! container over a WebSocket (`v5.channel.k8s.io`, else `v4.channel.k8s.io`).
//! `rkctl attach [-i] [-c C] POD|TYPE/NAME` joins a running container's own stdio
//! the same way (`pods/attach`; with `-i` the container needs `stdin: true`).
//!
//! Every binary message starts with a channel byte: 0 stdin (to the server),
//! 1 stdout, 2 stderr, 3 the final `Status` (success, or `NonZeroExitCode` with
//! the code in its causes), and in v5 255 to close a stream (`[255, 0]` closes
//! stdin, so a command reading its input sees the end of it). rkctl exits with the
//! remote command's exit code.

use crate::Session;
use crate::cli::{AttachArgs, ExecArgs};
use crate::client::Request;
use crate::error::{Error, Status};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";

pub async fn run(s: &Session, args: &ExecArgs) -> Result<(), Error> {
    if args.command.is_empty() {
        return Err(Error::Usage(
            "you must specify at least one command for the container, after \"--\", e.g. rkctl exec web -- ls /".into(),
        ));
    }
    let (name, container) =
        running_container(s, &args.target, args.io.container.as_deref(), args.io.quiet, "exec into").await?;
    let path = format!("{}/exec", s.discovery().await?.resolve("pods")?.object_path(Some(&s.namespace), &name));
    let mut req = Request::get(path).query("container", &container);
    for c in &args.command {
        req = req.query("command", c);
    }
    let input = if args.io.stdin { Input::Stdin } else { Input::None };
    session(s, req, input, Sink::Print, "exec").await
}

/// `rkctl attach`: the container's own stdin (with `-i`), stdout and stderr, until
/// the container's output ends (it exited) or stdin ends and the container reads no more.
pub async fn attach(s: &Session, args: &AttachArgs) -> Result<(), Error> {
    let (name, container) =
        running_container(s, &args.target, args.io.container.as_deref(), args.io.quiet, "attach to").await?;
    let path = format!("{}/attach", s.discovery().await?.resolve("pods")?.object_path(Some(&s.namespace), &name));
    let req = Request::get(path).query("container", &container);
    let input = if args.io.stdin { Input::Stdin } else { Input::None };
    session(s, req, input, Sink::Print, "attach").await
}

/// Runs `command` in container `container` of pod `pod` (in the session's namespace)
/// with `input` as its standard input, its standard output to `output` (its standard
/// error is printed): how `rkctl cp` runs `tar`.
pub(crate) async fn run_with(
    s: &Session,
    pod: &str,
    container: Option<&str>,
    command: &[&str],
    input: Input,
    output: Sink,
) -> Result<(), Error> {
    let (name, container) = running_container(s, pod, container, true, "copy files with").await?;
    let path = format!("{}/exec", s.discovery().await?.resolve("pods")?.object_path(Some(&s.namespace), &name));
    let mut req = Request::get(path).query("container", &container);
    for c in command {
        req = req.query("command", *c);
    }
    session(s, req, input, output, "exec").await
}

/// Where a session's standard input comes from.
pub(crate) enum Input {
    None,
    /// This process's standard input.
    Stdin,
    /// These chunks; the end of the channel closes the remote side's input.
    Chunks(tokio::sync::mpsc::Receiver<Vec<u8>>),
}

/// Where a session's standard output goes.
pub(crate) enum Sink {
    /// This process's standard output.
    Print,
    /// These chunks (the receiver going away drops the rest).
    Chunks(tokio::sync::mpsc::Sender<Vec<u8>>),
}

/// The pod `target` names and its container `wanted` (else the default one); a pod
/// that already finished is refused with `what` ("exec into", "attach to").
async fn running_container(
    s: &Session,
    target: &str,
    wanted: Option<&str>,
    quiet: bool,
    what: &str,
) -> Result<(String, String), Error> {
    let pod = crate::pods::pick(s, target, what).await?;
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Error::Usage(format!("cannot {what} a container in a completed pod; current phase is {phase}")));
    }
    Ok((name, crate::pods::container(&pod, wanted, quiet)?))
}

/// Carries one remote-command session (`what`: exec or attach) of `req`: standard
/// input from `input`, output to `output` and our standard error, and the final status
/// as rkctl's exit.
async fn session(s: &Session, req: Request, input: Input, output: Sink, what: &str) -> Result<(), Error> {
    let mut req = req;
    if !matches!(input, Input::None) {
        req = req.query("stdin", "true");
    }
    req = req.query("stdout", "true").query("stderr", "true");
    let (ws, protocol) = s.client.websocket(req, &[V5, V4]).await?;
    let can_close_stdin = protocol == V5;
    let (mut sink, mut stream) = ws.split();

    // Standard input is read on a thread of its own: a blocking read cannot be
    // cancelled, and the thread must not keep the program alive once the command ended.
    let mut input = match input {
        Input::None => None,
        Input::Chunks(rx) => Some(rx),
        Input::Stdin => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
            std::thread::spawn(move || {
                use std::io::Read;
                let mut stdin = std::io::stdin().lock();
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match stdin.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            Some(rx)
        }
    };

    let broken = |e: &dyn std::error::Error| Error::Transport {
        server: s.client.server().to_string(),
        reason: format!("the {what} stream broke: {e}"),
    };
    let mut status: Option<Status> = None;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Err(e)) => return Err(broken(&e)),
                Some(Ok(Message::Binary(data))) => match data.split_first() {
                    Some((&1, out)) => match &output {
                        Sink::Print => crate::output::print_bytes(out),
                        Sink::Chunks(tx) => {
                            let _ = tx.send(out.to_vec()).await;
                        }
                    },
                    Some((&2, out)) => crate::output::eprint_bytes(out),
                    Some((&3, text)) => status = Some(serde_json::from_slice(text).unwrap_or_else(|_| Status {
                        message: String::from_utf8_lossy(text).into_owned(),
                        ..Default::default()
                    })),
                    _ => {}
                },
                Some(Ok(_)) => {}
            },
            chunk = recv(&mut input) => match chunk {
                Some(bytes) => {
                    sink.send(Message::Binary(rk_proto::channel_frame(0, &bytes).into())).await.map_err(|e| broken(&e))?;
                }
                None => {
                    input = None;
                    if can_close_stdin {
                        sink.send(Message::Binary(vec![255u8, 0].into())).await.map_err(|e| broken(&e))?;
                    }
                }
            },
        }
    }
    let _ = sink.close().await;
    let Some(status) = status else {
        return Err(Error::Transport {
            server: s.client.server().to_string(),
            reason: format!("the {what} stream ended before its final status arrived"),
        });
    };
    exit_of(&status)
}

/// The next chunk of standard input; never resolves when there is none.
async fn recv(input: &mut Option<tokio::sync::mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How the command ended, as rkctl's own result.
fn exit_of(status: &Status) -> Result<(), Error> {
    if status.status == "Success" {
        return Ok(());
    }
    if status.reason == "NonZeroExitCode" {
        let code = status
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .find(|c| c.reason == "ExitCode")
            .and_then(|c| c.message.parse::<i64>().ok())
            .unwrap_or(1);
        return Err(Error::Exit {
            code: code.clamp(1, 255) as u8,
            message: format!("command terminated with exit code {code}"),
        });
    }
    Err(Error::Exit { code: 1, message: format!("error: {}", crate::error::one_line(&status.full_message())) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> Status {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn exit_codes_come_from_the_status() {
        assert!(exit_of(&status(r#"{"metadata":{},"status":"Success"}"#)).is_ok());
        let e = exit_of(&status(
            r#"{"status":"Failure","message":"command terminated with non-zero exit code: exit status 3",
                "reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#,
        ))
        .unwrap_err();
        assert!(matches!(&e, Error::Exit { code: 3, message } if message == "command terminated with exit code 3"));
        let e = exit_of(&status(r#"{"status":"Failure","message":"no such file: nope","reason":"InternalError"}"#))
            .unwrap_err();
        assert!(matches!(&e, Error::Exit { code: 1, message } if message == "error: no such file: nope"));
    }
}
