//! `rkctl create namespace NAME`.

use crate::Session;
use crate::cli::{CreateCommand, DryRun};
use crate::client::Request;
use crate::error::Error;
use crate::output;
use http::Method;
use serde_json::json;

pub async fn run(s: &Session, cmd: &CreateCommand) -> Result<(), Error> {
    match cmd {
        CreateCommand::Namespace { name, dry_run } => {
            let body = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } });
            let mut req = Request::new(Method::POST, "/api/v1/namespaces")
                .body("application/json", &body)
                .query("fieldManager", "rkctl-create")
                .query("fieldValidation", "Strict");
            if *dry_run == DryRun::Server {
                req = req.query("dryRun", "All");
            }
            s.client.json(req).await?;
            let suffix = if *dry_run == DryRun::Server { " (server dry run)" } else { "" };
            output::print(&format!("namespace/{name} created{suffix}\n"));
            Ok(())
        }
    }
}
