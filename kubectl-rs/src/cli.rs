//! The command line: flags and subcommands, as kubectl spells them.

use crate::output::Format;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rkctl",
    version,
    about = "rkctl controls an rk cluster (a Kubernetes-compatible cluster manager)",
    after_help = "The cluster is chosen by the kubeconfig: --kubeconfig, else $KUBECONFIG, else ~/.kube/config."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Kubeconfig file to use (instead of $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (instead of its current-context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace for this request (instead of the context's, or "default").
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
    /// API server address, overriding the kubeconfig's (e.g. http://127.0.0.1:7443).
    #[arg(short = 's', long, global = true, value_name = "URL")]
    pub server: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update objects from files with server-side apply.
    Apply(ApplyArgs),
    /// List objects, or show some, as a table or as YAML/JSON.
    Get(GetArgs),
    /// Show objects in detail, with their events.
    Describe(DescribeArgs),
    /// Delete objects by name, by label selector, or as listed in files.
    Delete(DeleteArgs),
    /// Create an object from command-line arguments.
    #[command(subcommand)]
    Create(CreateCommand),
    /// Print the logs of a container in a pod (or in a pod of a deployment).
    Logs(LogsArgs),
    /// Run a command in a container.
    Exec(ExecArgs),
    /// Attach to a running container's own input and output.
    Attach(AttachArgs),
    /// Copy a file or directory to or from a container (which needs `tar`).
    Cp(CpArgs),
    /// Forward local ports to a pod (or to a pod of a deployment or service).
    PortForward(PortForwardArgs),
    /// Show CPU and memory use of nodes or pods (metrics.k8s.io).
    #[command(subcommand)]
    Top(TopCommand),
    /// Set the number of replicas of a deployment or replica set.
    Scale(ScaleArgs),
    /// Manage the rollout of a deployment: status, history, undo, restart, pause, resume.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Add, change or remove labels of objects.
    Label(MetaArgs),
    /// Add, change or remove annotations of objects.
    Annotate(MetaArgs),
    /// Change fields of an object with a strategic merge, JSON merge or JSON patch.
    Patch(PatchArgs),
    /// Edit an object in your editor (KUBE_EDITOR, EDITOR, else vi) and save it back.
    Edit(EditArgs),
    /// List the resource types the server serves.
    ApiResources(ApiResourcesArgs),
    /// Wait until objects meet a condition, are deleted or created, or a JSONPath
    /// expression has a value.
    Wait(WaitArgs),
    /// Show the addresses of the control plane and of the cluster's services.
    ClusterInfo,
    /// Print a shell completion script: rkctl completion bash|zsh|fish.
    Completion(CompletionArgs),
    /// Show the versions of rkctl and of the server.
    Version(VersionArgs),
    /// Show and change kubeconfig settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create, delete and inspect local clusters (like kind): up, down, list, status.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DryRun {
    /// Really do it.
    #[default]
    None,
    /// Ask the server to check and compute the result without storing it.
    Server,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// File, directory (its *.yaml, *.yml and *.json files) or "-" for standard input.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Also read the subdirectories of directories given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Take over fields other managers own instead of failing with a conflict.
    #[arg(long)]
    pub force_conflicts: bool,
    /// "server": have the server check and compute the result without storing it.
    #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
    pub dry_run: DryRun,
    /// Name recorded as the manager of the applied fields.
    #[arg(long, default_value = "rkctl", value_name = "NAME")]
    pub field_manager: String,
    /// Accepted for kubectl compatibility: rkctl always applies on the server.
    #[arg(long, hide = true)]
    pub server_side: bool,
    /// Print the applied objects (yaml, json, name, jsonpath=…, custom-columns=…)
    /// instead of "created"/"configured".
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// TYPE [NAME...], TYPE1,TYPE2, or TYPE/NAME ...; "all" for the common kinds.
    #[arg(value_name = "RESOURCE")]
    pub resources: Vec<String>,
    /// Output format: wide, yaml, json, name, jsonpath=TEMPLATE, jsonpath-file=FILE,
    /// jsonpath-as-json=TEMPLATE, custom-columns=SPEC or custom-columns-file=FILE.
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<Format>,
    /// With a JSONPath template: a field that is not there prints nothing (true) or
    /// is an error (false).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_missing_template_keys: bool,
    /// Label selector, e.g. app=web,tier!=db.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Field selector, e.g. metadata.name=web.
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing, keep printing changes until interrupted (Ctrl-C).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Add a LABELS column.
    #[arg(long)]
    pub show_labels: bool,
    /// Print names as kind/name even for a single kind.
    #[arg(long)]
    pub show_kind: bool,
    /// Leave out the header line.
    #[arg(long)]
    pub no_headers: bool,
    /// Keep metadata.managedFields in YAML and JSON output.
    #[arg(long)]
    pub show_managed_fields: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// TYPE [NAME...] or TYPE/NAME ...; without a name, every object of the type.
    #[arg(value_name = "RESOURCE", required = true)]
    pub resources: Vec<String>,
    /// Describe the objects matching this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Show the objects' events.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub show_events: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Cascade {
    /// Delete now; the garbage collector removes dependents afterwards.
    #[default]
    Background,
    /// Delete the dependents first.
    Foreground,
    /// Leave the dependents.
    Orphan,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// TYPE NAME..., TYPE/NAME ..., or TYPE with -l or --all.
    #[arg(value_name = "RESOURCE")]
    pub resources: Vec<String>,
    /// Delete the objects listed in a file, directory or "-" (standard input).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<String>,
    /// Also read the subdirectories of directories given with -f.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Delete the objects matching this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Delete every object of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Treat objects that do not exist as deleted.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// What happens to dependents (pods of a deployment, ...).
    #[arg(long, value_enum, default_value = "background", value_name = "POLICY")]
    pub cascade: Cascade,
    /// Wait until the objects are gone. Off by default (unlike kubectl): rkctl returns
    /// as soon as the server accepted the deletion.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// How long --wait waits, e.g. 30s, 2m.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub timeout: String,
    /// "server": have the server check the deletion without doing it.
    #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
    pub dry_run: DryRun,
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create a namespace.
    #[command(visible_alias = "ns")]
    Namespace {
        name: String,
        /// "server": have the server check the creation without doing it.
        #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
        dry_run: DryRun,
    },
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// POD, pod/NAME, or TYPE/NAME of a deployment, replica set, … (one of its pods).
    #[arg(value_name = "POD|TYPE/NAME")]
    pub target: String,
    /// Container name (default: the pod's default container, else its first).
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
    /// Keep streaming new lines until interrupted (Ctrl-C).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "N")]
    pub tail: i64,
    /// Only lines newer than this duration, e.g. 5s, 2m, 3h.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Prefix each line with its timestamp (RFC 3339).
    #[arg(long)]
    pub timestamps: bool,
    /// The previous (terminated) instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Stop after this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub limit_bytes: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// POD, pod/NAME, or TYPE/NAME of a deployment, replica set, … (one of its pods).
    #[arg(value_name = "POD|TYPE/NAME")]
    pub target: String,
    /// The command and its arguments, after "--".
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub io: StdioArgs,
}

/// The container and standard streams of `exec` and `attach`.
#[derive(Debug, Args)]
pub struct StdioArgs {
    /// Container name (default: the pod's default container, else its first).
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
    /// Pass standard input (to the command; with attach, to the container, which needs
    /// `stdin: true`).
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Accepted for kubectl compatibility; rkctl does not allocate terminals yet.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Print nothing but the container's own output (no "Defaulted container" notes).
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rkctl cp web-abc:/etc/hosts ./hosts        # from a container
  rkctl cp ./site dev/web-abc:/srv/site      # a directory into a pod of namespace dev")]
pub struct CpArgs {
    /// A local path, or POD:PATH / NAMESPACE/POD:PATH in a container.
    #[arg(value_name = "SRC")]
    pub src: String,
    /// A local path, or POD:PATH / NAMESPACE/POD:PATH in a container.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Container name (default: the pod's default container, else its first).
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// POD, pod/NAME, or TYPE/NAME of a deployment, replica set, … (one of its pods).
    #[arg(value_name = "POD|TYPE/NAME")]
    pub target: String,
    #[command(flatten)]
    pub io: StdioArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rkctl port-forward pod/web 8080:80        # localhost:8080 -> port 80 of pod web
  rkctl port-forward deploy/web :80         # any free local port
  rkctl port-forward svc/web 8443:https     # the Service's port, to its target port
  rkctl port-forward web 5000 6000 --address 0.0.0.0")]
pub struct PortForwardArgs {
    /// POD, pod/NAME, or TYPE/NAME of a deployment, service, … (one of its pods).
    #[arg(value_name = "POD|TYPE/NAME")]
    pub target: String,
    /// [LOCAL_PORT:]REMOTE_PORT: 8080:80, 80 (the same port locally), :80 (any free
    /// local port); a remote port may be a container port's name.
    #[arg(value_name = "[LOCAL:]REMOTE", required = true)]
    pub ports: Vec<String>,
    /// Addresses to listen on, comma-separated ("localhost" means 127.0.0.1 and ::1).
    #[arg(long, default_value = "localhost", value_name = "ADDRESSES")]
    pub address: Vec<String>,
    /// How long to wait for the pod to be running, e.g. 30s, 2m.
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    pub pod_running_timeout: String,
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// CPU and memory of nodes.
    #[command(visible_aliases = ["node", "no"])]
    Nodes {
        /// Only this node.
        name: Option<String>,
        /// Leave out the header line.
        #[arg(long)]
        no_headers: bool,
    },
    /// CPU and memory of pods (the sum of their containers).
    #[command(visible_aliases = ["pod", "po"])]
    Pods {
        /// Only this pod.
        name: Option<String>,
        /// Across all namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Label selector, e.g. app=web.
        #[arg(short = 'l', long, value_name = "SELECTOR")]
        selector: Option<String>,
        /// Leave out the header line.
        #[arg(long)]
        no_headers: bool,
    },
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// TYPE NAME or TYPE/NAME (deployments, replica sets, …).
    #[arg(value_name = "RESOURCE", required = true)]
    pub resources: Vec<String>,
    /// The new number of replicas.
    #[arg(long, required = true, allow_negative_numbers = true, value_name = "N")]
    pub replicas: i64,
    /// Only scale when the current number of replicas is this (a precondition).
    #[arg(long, value_name = "N")]
    pub current_replicas: Option<i64>,
}

/// `TYPE NAME` or `TYPE/NAME` of one deployment.
#[derive(Debug, Args)]
pub struct RolloutTarget {
    /// deployment/NAME, or deployment NAME.
    #[arg(value_name = "RESOURCE", required = true)]
    pub resources: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Wait for the rollout to finish, printing its progress.
    Status {
        #[command(flatten)]
        target: RolloutTarget,
        /// Keep watching until the rollout finishes (false: print the state once).
        #[arg(short = 'w', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        watch: bool,
        /// Give up after this long, e.g. 2m (0: wait forever).
        #[arg(long, default_value = "0s", value_name = "DURATION")]
        timeout: String,
    },
    /// List the revisions of the deployment.
    History {
        #[command(flatten)]
        target: RolloutTarget,
        /// Show the pod template of this revision.
        #[arg(long, default_value_t = 0, value_name = "N")]
        revision: i64,
    },
    /// Roll back to the previous revision (or --to-revision).
    Undo {
        #[command(flatten)]
        target: RolloutTarget,
        /// The revision to go back to (0: the previous one).
        #[arg(long, default_value_t = 0, value_name = "N")]
        to_revision: i64,
    },
    /// Replace every pod by starting a new rollout of the same template.
    Restart {
        #[command(flatten)]
        target: RolloutTarget,
    },
    /// Stop the controller from acting on changes to the deployment.
    Pause {
        #[command(flatten)]
        target: RolloutTarget,
    },
    /// Let a paused deployment roll out again.
    Resume {
        #[command(flatten)]
        target: RolloutTarget,
    },
}

#[derive(Debug, Args)]
pub struct MetaArgs {
    /// TYPE NAME… or TYPE/NAME…, then KEY=VALUE to set and KEY- to remove.
    #[arg(value_name = "RESOURCE KEY=VAL|KEY-", required = true)]
    pub args: Vec<String>,
    /// Replace values that are already set.
    #[arg(long)]
    pub overwrite: bool,
    /// Change every object of the type matching this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Change every object of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    /// "server": have the server check the change without storing it.
    #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
    pub dry_run: DryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum PatchType {
    /// Kubernetes strategic merge patch (lists merge by key, e.g. containers by name).
    #[default]
    Strategic,
    /// JSON merge patch (RFC 7386): lists are replaced.
    Merge,
    /// JSON patch (RFC 6902): a list of operations.
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rkctl edit deployment/web
  KUBE_EDITOR=nano rkctl edit svc web -n shop
  rkctl edit cm/settings -o json")]
pub struct EditArgs {
    /// TYPE NAME or TYPE/NAME.
    #[arg(value_name = "RESOURCE", required = true)]
    pub resources: Vec<String>,
    /// Open the object as yaml (the default) or json.
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// TYPE NAME or TYPE/NAME.
    #[arg(value_name = "RESOURCE", required = true)]
    pub resources: Vec<String>,
    /// The patch, as JSON or YAML.
    #[arg(short = 'p', long, value_name = "PATCH")]
    pub patch: Option<String>,
    /// Read the patch from this file.
    #[arg(long, value_name = "FILE")]
    pub patch_file: Option<PathBuf>,
    /// How the patch is applied.
    #[arg(long = "type", value_enum, default_value = "strategic", value_name = "TYPE")]
    pub patch_type: PatchType,
    /// Patch this subresource (status, scale) instead of the object.
    #[arg(long, value_name = "NAME")]
    pub subresource: Option<String>,
    /// "server": have the server check the change without storing it.
    #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
    pub dry_run: DryRun,
    /// Print the patched object (yaml, json, name, jsonpath=…, custom-columns=…)
    /// instead of "patched".
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rkctl wait --for=condition=Ready pod/web-1
  rkctl wait --for=condition=Available deploy --all --timeout=2m
  rkctl wait --for=jsonpath='{.status.phase}'=Running pod -l app=web
  rkctl wait --for=delete pod/web-1 --timeout=60s")]
pub struct WaitArgs {
    /// TYPE NAME..., TYPE/NAME ..., or TYPE with -l or --all.
    #[arg(value_name = "RESOURCE")]
    pub resources: Vec<String>,
    /// What to wait for: condition=NAME[=VALUE] (VALUE defaults to true), delete,
    /// create, or jsonpath='{EXPR}'[=VALUE].
    #[arg(long = "for", value_name = "CONDITION")]
    pub for_condition: Option<String>,
    /// Wait for the objects matching this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Field selector for -l/--all, e.g. status.phase=Pending.
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// Wait for every object of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// How long to wait for each object, e.g. 30s, 5m (0: look once; negative: a week).
    #[arg(long, default_value = "30s", value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: String,
}

/// Shells `rkctl completion` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  source <(rkctl completion bash)                     # bash, this shell only
  rkctl completion bash > /etc/bash_completion.d/rkctl
  rkctl completion zsh > \"${fpath[1]}/_rkctl\"         # zsh
  rkctl completion fish > ~/.config/fish/completions/rkctl.fish")]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish or powershell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: CompletionShell,
}

#[derive(Debug, Args)]
pub struct ApiResourcesArgs {
    /// Output format: wide or name.
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only the client's version; do not contact the server.
    #[arg(long)]
    pub client: bool,
    /// Output format: yaml or json.
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<Format>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Make a context the current one.
    UseContext { name: String },
    /// List the contexts (the current one is marked with *).
    GetContexts {
        /// Only this context.
        name: Option<String>,
        /// "name": print only the context names.
        #[arg(short = 'o', long, value_name = "FORMAT")]
        output: Option<Format>,
        /// Leave out the header line.
        #[arg(long)]
        no_headers: bool,
    },
    /// Print the current context's name.
    CurrentContext,
    /// Show the merged kubeconfig, with certificates and tokens hidden.
    View {
        /// Show certificates and tokens.
        #[arg(long)]
        raw: bool,
        /// Only what the current context uses.
        #[arg(long)]
        minify: bool,
        /// Output format: yaml (default), json or jsonpath=TEMPLATE.
        #[arg(short = 'o', long, value_name = "FORMAT")]
        output: Option<Format>,
    },
}

/// How a local cluster's replicas and nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ClusterDriver {
    /// Every replica and node is a process on this machine; pods are host processes.
    #[default]
    Process,
    /// Every replica and node a Docker container with its own address on a network of
    /// the cluster's; pods are Docker containers on that network.
    Docker,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create a local cluster and make it the kubeconfig's current context.
    Up(ClusterUpArgs),
    /// Delete a local cluster: its processes, pods, data and kubeconfig entries.
    #[command(visible_alias = "delete")]
    Down {
        /// The cluster's name.
        #[arg(long, default_value = "rk", value_name = "NAME")]
        name: String,
    },
    /// List the local clusters.
    #[command(visible_alias = "ls")]
    List,
    /// Show a local cluster's replicas (running, ready, leader) and nodes (Ready).
    Status {
        /// The cluster's name.
        #[arg(long, default_value = "rk", value_name = "NAME")]
        name: String,
    },
    /// Show when each replica's certificates (and the cluster CA) expire, and how often
    /// each was renewed.
    Certs {
        /// The cluster's name.
        #[arg(long, default_value = "rk", value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct ClusterUpArgs {
    /// The cluster's name (its kubeconfig context is rk-NAME).
    #[arg(long, default_value = "rk", value_name = "NAME")]
    pub name: String,
    /// Control-plane replicas: 1, 3 or 5.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub replicas: u32,
    /// Nodes (rk-agent processes or containers) that run pods.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub nodes: u32,
    /// How replicas and nodes run.
    #[arg(long, value_enum, default_value = "process", value_name = "DRIVER")]
    pub driver: ClusterDriver,
    /// Wait until every node is Ready, at most this long (--wait alone: 60s; 0: do not wait).
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = crate::cluster::DEFAULT_WAIT)]
    pub wait: Option<String>,
}

/// A command-line mistake as one line (clap's usage text would be several), with
/// a pointer to the help. `--help` and `--version` print normally.
pub fn usage_error(err: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = err.print();
        return std::process::ExitCode::SUCCESS;
    }
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = err.print();
        return std::process::ExitCode::from(1);
    }
    // `rkctl exec POD ls`: kubectl stopped accepting the command without "--" too.
    let args: Vec<String> = std::env::args().collect();
    if err.kind() == ErrorKind::UnknownArgument && args.iter().any(|a| a == "exec") && !args.iter().any(|a| a == "--") {
        crate::output::eprint_line(
            "error: the command to run goes after \"--\", e.g. rkctl exec POD -- ls -l (see 'rkctl exec --help')",
        );
        return std::process::ExitCode::from(1);
    }
    // The first paragraph says what is wrong (and lists the possible values).
    let rendered = err.render().to_string();
    let first: Vec<&str> = rendered
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let first = match first.join(" ") {
        t if t.is_empty() => "error: invalid arguments".to_string(),
        t if t.starts_with("error:") => t,
        t => format!("error: {t}"),
    };
    crate::output::eprint_line(&format!("{first} (see 'rkctl --help' or 'rkctl COMMAND --help')"));
    std::process::ExitCode::from(1)
}
