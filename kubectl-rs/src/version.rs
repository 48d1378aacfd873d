//! `rkctl version`: rkctl's version and the server's `/version`.

use crate::Session;
use crate::cli::{GlobalArgs, VersionArgs};
use crate::client::Request;
use crate::error::Error;
use crate::output::{self, Format};
use serde_json::{Value, json};

pub async fn run(g: &GlobalArgs, args: &VersionArgs) -> Result<(), Error> {
    let client = json!({
        "gitVersion": format!("v{}", env!("CARGO_PKG_VERSION")),
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    });
    let server =
        if args.client { None } else { Some(Session::connect(g).await?.client.json(Request::get("/version")).await?) };
    match &args.output {
        Some(Format::Yaml) | Some(Format::Json) => {
            let mut v = json!({ "clientVersion": client });
            if let Some(server) = &server {
                v["serverVersion"] = server.clone();
            }
            output::print(&if args.output == Some(Format::Yaml) { output::to_yaml(&v) } else { output::to_json(&v) });
        }
        Some(other) => {
            return Err(Error::Usage(format!("--output {other} is not supported here; use yaml or json")));
        }
        None => {
            let mut text = format!("Client Version: {}\n", client["gitVersion"].as_str().unwrap_or(""));
            if let Some(server) = &server {
                let version = server.get("gitVersion").and_then(Value::as_str).unwrap_or("unknown");
                text.push_str(&format!("Server Version: {version}\n"));
            }
            output::print(&text);
        }
    }
    Ok(())
}
