//! `rkctl`: the command-line client of rk, for people who know kubectl. It speaks the
//! Kubernetes REST API that `rk-server` serves, reads kubeconfig files like kubectl,
//! and prints what kubectl prints (tables aligned the same way, the same messages).
//!
//! This binary only parses the command line and calls [`rk_kubectl::run`]; the rest
//! is the `rk_kubectl` library.
//!
//! # Layout
//!
//! ```text
//!  main.rs ─ cli.rs (flags) ─► lib.rs run(): Session = kubeconfig + client + discovery
//!                                 │
//!     one module per verb:  apply.rs  get.rs  describe.rs  delete.rs  create.rs
//!                           version.rs  config.rs (kubeconfig only, no server)
//!                           logs.rs  exec.rs (WebSocket)  top.rs  scale.rs  rollout.rs
//!                           label.rs (label and annotate)  patch.rs  edit.rs ($EDITOR)
//!                           wait.rs  cluster_info.rs  completion.rs (clap_complete)
//!                           cluster/ (cluster up|down|list|status: local clusters)
//!                                 │
//!     shared parts:  kubeconfig.rs  find/merge/select kubeconfigs (kube-rs underneath)
//!                    client.rs      HTTP via kube::Client; Status errors; watch lines
//!                    discovery.rs   /api + /apis (aggregated); "deploy" → deployments.apps
//!                    target.rs      TYPE NAME / TYPE/NAME / all arguments
//!                    manifest.rs    -f files, dirs, stdin; multi-document YAML, Lists
//!                    table.rs       server-side Tables → kubectl's columns
//!                    tabwriter.rs   Go's tabwriter (kubectl's alignment)
//!                    output.rs      -o formats: yaml/json/name, templates; human.rs ages
//!                    jsonpath.rs    kubectl's JSONPath templates ({range}, filters, ..)
//!                    columns.rs     -o custom-columns
//!                    pods.rs        the pod and container logs/exec use (deploy/NAME → a pod)
//!                    error.rs       every failure as one line
//! ```
//!
//! Start reading at `lib.rs` (`run` and `Session`), then `get.rs`.
//!
//! Exit codes: 0 when everything worked, 1 when anything failed (each failure is one
//! line on stderr: `Error from server (Reason): …` or `error: …`); `exec` exits with
//! the remote command's code.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    match rk_kubectl::cli::Cli::try_parse() {
        Ok(cli) => rk_kubectl::run(cli),
        Err(e) => rk_kubectl::cli::usage_error(e),
    }
}
