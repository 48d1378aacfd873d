//! `rk-server`: one replica of the rk control plane. Parses flags, sets up logging
//! and calls [`rk_control_plane::server::run`]; everything else is in the library.

use clap::Parser;
use rk_control_plane::api::encryption;
use rk_control_plane::config::{
    CertsArgs, CertsCommand, Config, SecretsArgs, SecretsCommand, SnapshotArgs, SnapshotCommand, TokenArgs,
    TokenCommand,
};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "snapshot") {
        return snapshot(SnapshotArgs::parse_from(std::env::args_os().skip(1)));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "secrets") {
        return secrets(SecretsArgs::parse_from(std::env::args_os().skip(1)));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "certs") {
        return certs(CertsArgs::parse_from(std::env::args_os().skip(1)));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "token") {
        return token(TokenArgs::parse_from(std::env::args_os().skip(1)));
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
        SnapshotCommand::Save { endpoint, file, pki } => {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rk-server: cannot start the async runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let pki = pki.dir().ok();
            runtime.block_on(rk_control_plane::backup::save(&endpoint, &file, pki.as_deref())).map(|saved| {
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
    report(result)
}

/// `rk-server secrets rotate-key|status|prune-keys`.
fn secrets(args: SecretsArgs) -> std::process::ExitCode {
    let result = match args.command {
        SecretsCommand::CreateKey(key) => key.path().and_then(|path| match encryption::create_key_file(&path) {
            Ok(true) => Ok(format!(
                "wrote {} (readable by its owner only); give every replica of the cluster a copy",
                path.display()
            )),
            Ok(false) => Err(format!("{} exists; rotate its key with `rk-server secrets rotate-key`", path.display())),
            Err(e) => Err(e.to_string()),
        }),
        SecretsCommand::RotateKey(key) => key.path().and_then(|path| {
            encryption::rotate_key(&path).map_err(|e| e.to_string()).map(|name| {
                format!(
                    "key {name} now encrypts ({}); running replicas pick it up within seconds and the leader \
                     re-encrypts every Secret with it. Give every replica this file; see progress with \
                     `rk-server secrets status`",
                    path.display()
                )
            })
        }),
        SecretsCommand::Status { key, endpoint } => key.path().and_then(|path| {
            let ring = encryption::Encryption::load(&path).map_err(|e| e.to_string())?.keyring();
            let usage = block_on(encryption::key_usage(&endpoint, key.pki().as_deref()))?;
            let mut out =
                format!("key file {}: keys {} (the first encrypts)\n", path.display(), ring.names().join(", "));
            for (name, count) in &usage {
                let what = match name {
                    Some(n) if n == ring.write_key() => format!("key {n} (current)"),
                    Some(n) if ring.names().contains(&n.as_str()) => format!("key {n} (older; re-encryption pending)"),
                    Some(n) => format!("key {n} (NOT in the key file: these Secrets cannot be read)"),
                    None => "no key (written before encryption; re-encryption pending)".into(),
                };
                out.push_str(&format!("{count} Secret(s) encrypted with {what}\n"));
            }
            if usage.is_empty() {
                out.push_str("no Secrets\n");
            }
            Ok(out.trim_end().to_string())
        }),
        SecretsCommand::PruneKeys { key, endpoint } => key.path().and_then(|path| {
            let ring = encryption::Encryption::load(&path).map_err(|e| e.to_string())?.keyring();
            let usage = block_on(encryption::key_usage(&endpoint, key.pki().as_deref()))?;
            let pending: usize =
                usage.iter().filter(|(n, _)| n.as_deref() != Some(ring.write_key())).map(|(_, c)| c).sum();
            if pending > 0 {
                return Err(format!(
                    "{pending} Secret(s) are not yet encrypted with the current key {}; wait for the leader to \
                     re-encrypt them (`rk-server secrets status`) and try again",
                    ring.write_key()
                ));
            }
            encryption::prune_keys(&path).map_err(|e| e.to_string()).map(|dropped| {
                if dropped.is_empty() {
                    "nothing to prune".to_string()
                } else {
                    format!("dropped keys {}", dropped.join(", "))
                }
            })
        }),
    };
    report(result)
}

/// `rk-server certs kubeconfig|issue|status`.
fn certs(args: CertsArgs) -> std::process::ExitCode {
    use rk_control_plane::pki::{Ca, Leaf, write_private};
    let issue = |pki: &rk_control_plane::config::PkiArgs, subject: &rk_control_plane::config::SubjectArgs| {
        let ca = Ca::load(&pki.dir()?).map_err(|e| e.to_string())?;
        if subject.user.is_empty() {
            return Err("--user must not be empty".to_string());
        }
        let leaf = Leaf {
            common_name: subject.user.clone(),
            organizations: subject.groups.iter().filter(|g| !g.is_empty()).cloned().collect(),
            client: true,
            validity: subject.validity,
            ..Default::default()
        };
        let issued = ca.issue(&leaf).map_err(|e| e.to_string())?;
        Ok((ca, issued))
    };
    let result = match args.command {
        CertsCommand::Kubeconfig { pki, subject, server, out, name } => issue(&pki, &subject).and_then(|(ca, cert)| {
            let text = rk_control_plane::pki::kubeconfig(&name, &server, ca.cert_pem(), &cert);
            if out.as_os_str() == "-" {
                print!("{text}");
                return Ok(String::new());
            }
            write_private(&out, &text).map_err(|e| e.to_string())?;
            Ok(format!("wrote {} for user {} (groups {})", out.display(), subject.user, subject.groups.join(",")))
        }),
        CertsCommand::Issue { pki, subject, out_dir } => issue(&pki, &subject).and_then(|(ca, cert)| {
            std::fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
            let file = subject.user.replace([':', '/'], "-");
            let (crt, key) = (out_dir.join(format!("{file}.crt")), out_dir.join(format!("{file}.key")));
            std::fs::write(&crt, &cert.cert_pem).map_err(|e| format!("cannot write {}: {e}", crt.display()))?;
            write_private(&key, &cert.key_pem).map_err(|e| e.to_string())?;
            let ca_out = out_dir.join("ca.crt");
            std::fs::write(&ca_out, ca.cert_pem()).map_err(|e| format!("cannot write {}: {e}", ca_out.display()))?;
            Ok(format!("wrote {}, {} and {}", crt.display(), key.display(), ca_out.display()))
        }),
        CertsCommand::Status { pki } => pki.dir().and_then(|dir| {
            let ca = Ca::load(&dir).map_err(|e| e.to_string())?;
            let expires = jiff::Timestamp::try_from(ca.not_after()).map(|t| t.to_string()).unwrap_or_default();
            let days =
                ca.not_after().duration_since(std::time::SystemTime::now()).unwrap_or_default().as_secs() / 86400;
            Ok(format!(
                "CA {}: expires {expires} ({days} days left); replicas renew their own certificates",
                dir.display()
            ))
        }),
    };
    match result {
        Ok(s) if s.is_empty() => std::process::ExitCode::SUCCESS,
        other => report(other),
    }
}

/// `rk-server token create`: a join token's Secret, made through a running replica.
fn token(args: TokenArgs) -> std::process::ExitCode {
    use rk_control_plane::api::bootstrap;
    let TokenCommand::Create { pki, endpoint, ttl, description, replica } = args.command;
    let result = pki.dir().and_then(|dir| {
        let ca_path = rk_control_plane::pki::Ca::cert_path(&dir);
        let ca = std::fs::read_to_string(&ca_path).map_err(|e| format!("cannot read {}: {e}", ca_path.display()))?;
        let (id, secret) = bootstrap::new_token();
        let token = bootstrap::join_token(&ca, &id, &secret).map_err(|e| e.to_string())?;
        let groups: &[&str] = if replica { &[bootstrap::REPLICAS] } else { &[] };
        let obj = bootstrap::secret_object(&id, &secret, ttl, &description, groups);
        block_on(async {
            use rk_proto::resources::resources_client::ResourcesClient;
            use rk_proto::resources::{CreateRequest, ResourceRef};
            let channel = rk_control_plane::tls::tool_channel(&endpoint, Some(&dir)).await?;
            let request = CreateRequest {
                r#ref: Some(ResourceRef {
                    resource: "secrets".into(),
                    namespace: "kube-system".into(),
                    name: String::new(),
                }),
                json: serde_json::to_vec(&obj).map_err(|e| e.to_string())?.into(),
                options: None,
            };
            ResourcesClient::new(channel).create(request).await.map_err(|s| s.message().to_string())?;
            Ok(())
        })?;
        let endpoint = endpoint.trim_start_matches("https://");
        let usage = if replica {
            format!("on a new replica: rk-server --join {endpoint} --join-token TOKEN --data-dir DIR …")
        } else {
            format!("on a new node: rk-agent --join TOKEN --server https://{endpoint} --name NODE …")
        };
        Ok(format!("{token}\n(valid for {}; {usage})", humantime(ttl)))
    });
    report(result)
}

/// `1h30m`-style text for a duration.
fn humantime(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Prints a subcommand's summary, or its error as one line, and the exit code for it.
fn report<E: std::fmt::Display>(result: Result<String, E>) -> std::process::ExitCode {
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

fn block_on<T>(f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(f)
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
