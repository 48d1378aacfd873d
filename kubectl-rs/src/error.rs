//! The errors a command can end with. Every one renders as one line ([`Error::line`]):
//! `Error from server (Reason): …` for a `Status` the server sent, as kubectl prints
//! it, and `error: …` with a hint for everything rkctl found wrong itself.

use serde::Deserialize;
use std::fmt;

/// A Kubernetes `Status` object (the body of every API error).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Status {
    /// `Success` or `Failure`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub details: Option<StatusDetails>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct StatusDetails {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub causes: Vec<StatusCause>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct StatusCause {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub field: String,
}

impl Status {
    pub fn is_not_found(&self) -> bool {
        self.code == 404 || self.reason == "NotFound"
    }

    /// The message, with the causes appended when the message does not already
    /// carry them (kubectl would otherwise print only "… is invalid").
    pub fn full_message(&self) -> String {
        let mut msg = self.message.trim().to_string();
        let missing: Vec<String> = self
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .filter(|c| !c.message.is_empty() && !msg.contains(&c.message))
            .map(|c| if c.field.is_empty() { c.message.clone() } else { format!("{}: {}", c.field, c.message) })
            .collect();
        if !missing.is_empty() {
            if msg.is_empty() {
                msg = missing.join(", ");
            } else {
                msg = format!("{msg}: [{}]", missing.join(", "));
            }
        }
        if msg.is_empty() {
            msg = format!("the server answered HTTP {}", self.code);
        }
        msg
    }
}

/// A server error as kubectl prints it, optionally with what rkctl was doing
/// (`error when deleting "web.yaml"`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
    pub status: Status,
    pub context: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Error from server")?;
        if !self.status.reason.is_empty() {
            write!(f, " ({})", self.status.reason)?;
        }
        f.write_str(": ")?;
        if let Some(c) = &self.context {
            write!(f, "{c}: ")?;
        }
        f.write_str(&self.status.full_message())?;
        if self.status.reason == "Conflict" && self.status.message.starts_with("Apply failed") {
            f.write_str(" (rerun with --force-conflicts to take these fields over)")?;
        }
        Ok(())
    }
}

/// What a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible; caught before any request.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Kubeconfig(#[from] crate::kubeconfig::KubeconfigError),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// A `-o` format that cannot be used (a bad template, an unreadable file).
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    #[error(transparent)]
    Columns(#[from] crate::columns::ColumnsError),
    #[error(transparent)]
    Wait(#[from] crate::wait::WaitError),
    #[error("cannot reach the API server at {server}: {reason} (is the cluster running? check your kubeconfig)")]
    Unreachable { server: String, reason: String },
    /// The connection was made (or never tried) but the exchange failed: TLS,
    /// credentials plugins, a broken stream.
    #[error("the request to the API server at {server} failed: {reason}")]
    Transport { server: String, reason: String },
    /// Boxed: the `Status` is large, and errors travel through every `Result`.
    #[error("{0}")]
    Server(Box<ServerError>),
    #[error("the server answered {what} with HTTP {code} and a body rkctl cannot read: {detail}")]
    BadResponse { what: String, code: u16, detail: String },
    #[error("the server doesn't have a resource type {0:?}")]
    UnknownResource(String),
    #[error(
        "no matches for kind {kind:?} in version {api_version:?}{}; check apiVersion and kind against `rkctl api-resources`",
        from.as_ref().map(|f| format!(" (in {f})")).unwrap_or_default()
    )]
    UnknownKind { kind: String, api_version: String, from: Option<String> },
    /// Waiting for a state (`delete --wait`, `wait`) took longer than allowed.
    #[error("{0}")]
    Timeout(String),
    /// Several objects failed; each was already reported on its own line.
    #[error("{0} of the requested operations failed")]
    Partial(usize),
    /// The command ends with this exit code (`exec` passes on the remote command's);
    /// the message, when not empty, is printed as it is.
    #[error("{message}")]
    Exit { code: u8, message: String },
}

impl Error {
    pub fn server(status: Status) -> Self {
        Error::Server(Box::new(ServerError { status, context: None }))
    }

    /// The status of a server error.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Server(s) => Some(&s.status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status().is_some_and(Status::is_not_found)
    }

    /// A write refused because the object moved past the resourceVersion it was
    /// pinned to (not an apply's field-ownership conflict, which names its fields).
    pub fn is_stale_version(&self) -> bool {
        self.status().is_some_and(|st| {
            st.code == 409 && st.reason == "Conflict" && st.details.as_ref().is_none_or(|d| d.causes.is_empty())
        })
    }

    /// Adds what rkctl was doing to a server error (`error when deleting "x.yaml"`).
    pub fn context(self, context: impl Into<String>) -> Self {
        match self {
            Error::Server(mut s) => {
                s.context = Some(context.into());
                Error::Server(s)
            }
            other => other,
        }
    }

    /// The error as the one line a user sees on stderr.
    pub fn line(&self) -> String {
        let text = match self {
            Error::Server(s) => s.to_string(),
            Error::Exit { message, .. } => message.clone(),
            other => format!("error: {other}"),
        };
        one_line(&text)
    }
}

/// Folds a multi-line message into one line.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('\n').map(str::trim_end).filter(|p| !p.trim().is_empty()).enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(if i > 0 { part.trim_start() } else { part });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> Status {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn not_found_prints_like_kubectl() {
        let s = status(
            r#"{"kind":"Status","status":"Failure","message":"deployments.apps \"x\" not found","reason":"NotFound","details":{"name":"x","group":"apps","kind":"deployments"},"code":404}"#,
        );
        assert!(s.is_not_found());
        assert_eq!(Error::server(s.clone()).line(), r#"Error from server (NotFound): deployments.apps "x" not found"#);
        assert_eq!(
            Error::server(s).context(r#"error when deleting "web.yaml""#).line(),
            r#"Error from server (NotFound): error when deleting "web.yaml": deployments.apps "x" not found"#
        );
    }

    #[test]
    fn invalid_keeps_causes_the_message_lacks() {
        let with = status(
            r#"{"message":"Deployment \"bad\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0]","reason":"Invalid","code":422,
                "details":{"causes":[{"reason":"FieldValueInvalid","message":"Invalid value: -1: must be greater than or equal to 0","field":"spec.replicas"}]}}"#,
        );
        assert_eq!(
            Error::server(with).line(),
            r#"Error from server (Invalid): Deployment "bad" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0]"#
        );
        let without = status(
            r#"{"message":"Deployment \"bad\" is invalid","reason":"Invalid","code":422,
                "details":{"causes":[{"message":"Required value","field":"spec.template.spec.containers[0].image"}]}}"#,
        );
        assert_eq!(
            Error::server(without).line(),
            r#"Error from server (Invalid): Deployment "bad" is invalid: [spec.template.spec.containers[0].image: Required value]"#
        );
    }

    #[test]
    fn client_errors_are_one_line() {
        assert_eq!(
            Error::UnknownResource("depoy".into()).line(),
            r#"error: the server doesn't have a resource type "depoy""#
        );
        assert_eq!(Error::Usage("a\n  b\n".into()).line(), "error: a; b");
    }
}
