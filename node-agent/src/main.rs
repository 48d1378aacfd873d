//! `rk-agent`: the node agent of rk. Parses flags, sets up logging and calls
//! [`rk_node_agent::run`]; everything else is in the library.

use clap::Parser;
use rk_node_agent::config::Config;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rk-agent: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The SIGTERM handler is installed now, not when `run` first waits on it: a
    // SIGTERM during start-up still stops the agent cleanly (its proxy removes its
    // nft table) instead of killing it.
    let shutdown = {
        let _context = runtime.enter();
        shutdown_signal()
    };
    match runtime.block_on(rk_node_agent::run(config, shutdown)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rk-agent: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C or SIGTERM. Pods keep running: a restarted agent adopts them.
/// Must be called inside the runtime (it registers the SIGTERM handler at once).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let term = async {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
}
