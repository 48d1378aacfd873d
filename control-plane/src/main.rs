//! `rk-server`: one replica of the rk control plane. Parses flags, sets up logging
//! and calls [`rk_control_plane::server::run`]; everything else is in the library.

use clap::Parser;
use rk_control_plane::config::{Config, SnapshotArgs, SnapshotCommand};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "snapshot") {
        return snapshot(SnapshotArgs::parse_from(std::env::args_os().skip(1)));
    }
    let config = Config::parse();
    if let Err(e) = rk_control_plane::failpoint::init() {
        eprintln!("rk-server: {e}");
        return std::process::ExitCode::from(2);
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rk-server: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(rk_control_plane::server::run(config, shutdown_signal()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rk-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `rk-server snapshot save|restore`.
fn snapshot(args: SnapshotArgs) -> std::process::ExitCode {
    let result = match args.command {
        SnapshotCommand::Save { endpoint, file } => {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rk-server: cannot start the async runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            runtime.block_on(rk_control_plane::backup::save(&endpoint, &file)).map(|saved| {
                format!("saved {} bytes at revision {} to {}", saved.bytes, saved.revision, file.display())
            })
        }
        SnapshotCommand::Restore { file, data_dir, id, peers, advertise_peer } => {
            let peers = if peers.is_empty() { vec![format!("{id}={advertise_peer}")] } else { peers };
            match rk_control_plane::config::parse_peers(&peers) {
                Ok(peers) => rk_control_plane::backup::restore(&file, &data_dir, id, &peers).map(|revision| {
                    format!(
                        "restored revision {revision} into {} for member {id}; start it with: rk-server --id {id} --data-dir {} …",
                        data_dir.display(),
                        data_dir.display()
                    )
                }),
                Err(e) => {
                    eprintln!("rk-server: {e}");
                    return std::process::ExitCode::from(2);
                }
            }
        }
    };
    match result {
        Ok(summary) => {
            println!("{summary}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rk-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
