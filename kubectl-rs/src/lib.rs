//! `rkctl`, the command-line client of rk, as a library: the binary (`main.rs`)
//! parses the command line and calls [`run`]. See `main.rs` for the layout.

pub mod apply;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod cluster_info;
pub mod columns;
pub mod completion;
pub mod config;
pub mod cp;
pub mod create;
pub mod delete;
pub mod describe;
pub mod discovery;
pub mod edit;
pub mod error;
pub mod exec;
pub mod get;
pub mod human;
pub mod jsonpath;
pub mod kubeconfig;
pub mod label;
pub mod logs;
pub mod manifest;
pub mod output;
pub mod patch;
pub mod pods;
pub mod portforward;
pub mod quantity;
pub mod rollout;
pub mod scale;
pub mod table;
pub mod tabwriter;
pub mod target;
pub mod top;
pub mod version;
pub mod wait;
pub mod yaml;

use cli::{Cli, Command, GlobalArgs};
use client::Client;
use discovery::Discovery;
use error::Error;
use std::process::ExitCode;

/// Runs one command and reports how it ended: errors are printed here, as one line
/// each, and turn into exit code 1.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            output::eprint_line(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // Each failure was already printed as it happened.
        Err(Error::Partial(_)) => ExitCode::from(1),
        Err(Error::Exit { code, message }) => {
            if !message.is_empty() {
                output::eprint_line(&message);
            }
            ExitCode::from(code)
        }
        Err(e) => {
            output::eprint_line(&e.line());
            ExitCode::from(1)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), Error> {
    let g = &cli.global;
    match &cli.command {
        Command::Config(cmd) => config::run(g, cmd),
        Command::Cluster(cmd) => cluster::run(g, cmd).await.map_err(Error::from),
        Command::Version(args) => version::run(g, args).await,
        Command::Apply(args) => apply::run(&Session::connect(g).await?, args).await,
        Command::Get(args) => get::run(&Session::connect(g).await?, args).await,
        Command::Describe(args) => describe::run(&Session::connect(g).await?, args).await,
        Command::Delete(args) => delete::run(&Session::connect(g).await?, args).await,
        Command::Create(cmd) => create::run(&Session::connect(g).await?, cmd).await,
        Command::Logs(args) => logs::run(&Session::connect(g).await?, args).await,
        Command::Exec(args) => exec::run(&Session::connect(g).await?, args).await,
        Command::Attach(args) => exec::attach(&Session::connect(g).await?, args).await,
        Command::Cp(args) => cp::run(Session::connect(g).await?, args).await,
        Command::PortForward(args) => portforward::run(&Session::connect(g).await?, args).await,
        Command::Top(cmd) => top::run(&Session::connect(g).await?, cmd).await,
        Command::Scale(args) => scale::run(&Session::connect(g).await?, args).await,
        Command::Rollout(cmd) => rollout::run(&Session::connect(g).await?, cmd).await,
        Command::Label(args) => label::run(&Session::connect(g).await?, args, label::Field::Labels).await,
        Command::Annotate(args) => label::run(&Session::connect(g).await?, args, label::Field::Annotations).await,
        Command::Patch(args) => patch::run(&Session::connect(g).await?, args).await,
        Command::Edit(args) => edit::run(&Session::connect(g).await?, args).await,
        Command::ApiResources(args) => get::api_resources(&Session::connect(g).await?, args).await,
        Command::Wait(args) => wait::run(&Session::connect(g).await?, args).await,
        Command::ClusterInfo => cluster_info::run(&Session::connect(g).await?, g).await,
        Command::Completion(args) => completion::run(args),
    }
}

/// A connection to the cluster the kubeconfig (and flags) point at.
pub struct Session {
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// Fetched on first use; many commands need it, `version` does not.
    discovery: tokio::sync::OnceCell<Discovery>,
}

impl Session {
    pub async fn connect(g: &GlobalArgs) -> Result<Session, Error> {
        let (config, context_namespace) = client_config(g).await?;
        let namespace = g
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .or(context_namespace)
            .unwrap_or_else(|| "default".to_string());
        Ok(Session { client: Client::new(config)?, namespace, discovery: tokio::sync::OnceCell::new() })
    }

    pub async fn discovery(&self) -> Result<&Discovery, Error> {
        self.discovery.get_or_try_init(|| Discovery::fetch(&self.client)).await
    }
}

/// kube-rs connection settings from the kubeconfig, `--context` and `--server`,
/// with the context's namespace.
async fn client_config(g: &GlobalArgs) -> Result<(kube::Config, Option<String>), Error> {
    let server_url = |url: &str| -> Result<http::Uri, Error> {
        url.parse::<http::Uri>().ok().filter(|u| u.scheme().is_some() && u.authority().is_some()).ok_or_else(|| {
            Error::Kubeconfig(kubeconfig::KubeconfigError::BadServer {
                url: url.to_string(),
                reason: "expected an address like http://127.0.0.1:7443".into(),
            })
        })
    };
    let kc = kubeconfig::load(g.kubeconfig.as_deref());
    let Some(server) = &g.server else {
        let kc = kc?;
        let selection = kc.select(g.context.as_deref())?;
        let config = kc.client_config(g.context.as_deref()).await?;
        return Ok((config, selection.namespace));
    };
    // --server: use the kubeconfig's credentials when there is one, else none.
    let uri = server_url(server)?;
    if let Ok(kc) = kc
        && let Ok(selection) = kc.select(g.context.as_deref())
        && let Ok(mut config) = kc.client_config(g.context.as_deref()).await
    {
        config.cluster_url = uri;
        return Ok((config, selection.namespace));
    }
    Ok((kube::Config::new(uri), None))
}
