//! Requests to the API server. The transport (TLS, tokens, exec plugins, proxies) is
//! kube-rs's [`kube::Client`]; on top of it this module builds paths and query
//! strings, turns error responses into [`Status`](crate::error::Status) errors and
//! unreachable servers into one clear line, prints the server's `Warning` headers,
//! and reads watch streams line by line.

use crate::error::{Error, Status};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::Value;

/// Plain objects and lists.
pub const ACCEPT_JSON: &str = "application/json";
/// Server-side printed tables, falling back to plain JSON (what kubectl sends).
pub const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
/// Server-side apply.
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// One request to the API server.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    accept: &'static str,
    body: Option<(&'static str, Vec<u8>)>,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), query: Vec::new(), accept: ACCEPT_JSON, body: None }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_string(), value.into()));
        self
    }

    /// Adds the parameter only when a value is given.
    pub fn query_opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) if !v.is_empty() => self.query(key, v),
            _ => self,
        }
    }

    pub fn accept(mut self, accept: &'static str) -> Self {
        self.accept = accept;
        self
    }

    pub fn body(mut self, content_type: &'static str, value: &Value) -> Self {
        self.body = Some((content_type, serde_json::to_vec(value).unwrap_or_default()));
        self
    }

    /// The path and query, percent-encoded.
    pub fn uri(&self) -> String {
        let mut uri = self.path.clone();
        for (i, (k, v)) in self.query.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(&encode(k));
            uri.push('=');
            uri.push_str(&encode(v));
        }
        uri
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A WebSocket over the API server connection (`exec`).
pub type WebSocket = tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// A connection to one API server.
#[derive(Clone)]
pub struct Client {
    http: kube::Client,
    /// The server's address, for error messages.
    server: String,
}

impl Client {
    pub fn new(mut config: kube::Config) -> Result<Self, Error> {
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let agent =
            format!("rkctl/{} ({}/{})", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH);
        if let Ok(v) = HeaderValue::from_str(&agent) {
            config.headers.push((header::USER_AGENT, v));
        }
        let http = kube::Client::try_from(config).map_err(|e| transport_error(&server, &e))?;
        Ok(Self { http, server })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends a request; an error status becomes [`Error::Server`].
    pub async fn send(&self, req: Request) -> Result<http::Response<Body>, Error> {
        let uri = req.uri();
        let mut builder =
            http::Request::builder().method(req.method.clone()).uri(&uri).header(header::ACCEPT, req.accept);
        let body = match req.body {
            Some((ct, bytes)) => {
                builder = builder.header(header::CONTENT_TYPE, ct);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let request = builder
            .body(body)
            .map_err(|e| Error::Usage(format!("cannot build a request for {uri}: {e}; check the names given")))?;
        let resp = self.http.send(request).await.map_err(|e| transport_error(&self.server, &e))?;
        print_warnings(resp.headers());
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.into_body().collect_bytes().await.unwrap_or_default();
        Err(error_from(&req.method, &uri, status, &bytes))
    }

    /// Sends a request and parses the JSON answer.
    pub async fn json(&self, req: Request) -> Result<Value, Error> {
        self.json_with_code(req).await.map(|(_, v)| v)
    }

    /// Like [`json`](Self::json), with the HTTP status (201 Created vs 200 OK).
    pub async fn json_with_code(&self, req: Request) -> Result<(StatusCode, Value), Error> {
        let what = format!("{} {}", req.method, req.path);
        let resp = self.send(req).await?;
        let code = resp.status();
        let bytes = resp.into_body().collect_bytes().await.map_err(|e| Error::Transport {
            server: self.server.clone(),
            reason: format!("the connection broke while reading the answer: {}", transport_reason(&e)),
        })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
            what,
            code: code.as_u16(),
            detail: e.to_string(),
        })?;
        Ok((code, value))
    }

    /// Opens a WebSocket (`pods/exec`) through kube-rs's connection (so TLS and
    /// credentials are the same as for every other request), offering `protocols`
    /// in order of preference. Returns the socket and the protocol the server chose.
    pub async fn websocket(&self, req: Request, protocols: &[&str]) -> Result<(WebSocket, String), Error> {
        use tokio_tungstenite::tungstenite::handshake::client::generate_key;
        use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        let uri = req.uri();
        let key = generate_key();
        let request = http::Request::builder()
            .method(Method::GET)
            .uri(&uri)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, &key)
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocols.join(", "))
            .body(Body::empty())
            .map_err(|e| Error::Usage(format!("cannot build a request for {uri}: {e}; check the names given")))?;
        let resp = self.http.send(request).await.map_err(|e| transport_error(&self.server, &e))?;
        print_warnings(resp.headers());
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let bytes = resp.into_body().collect_bytes().await.unwrap_or_default();
            return Err(error_from(&Method::GET, &uri, status, &bytes));
        }
        let accept = resp.headers().get(header::SEC_WEBSOCKET_ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        if accept != derive_accept_key(key.as_bytes()) {
            return Err(Error::Transport {
                server: self.server.clone(),
                reason: format!("{uri}: the WebSocket handshake answer does not match the request"),
            });
        }
        let protocol =
            resp.headers().get(header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let upgraded = hyper::upgrade::on(resp).await.map_err(|e| transport_error(&self.server, &e))?;
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        Ok((ws, protocol))
    }

    /// Starts a streaming request (a watch) and reads it line by line.
    pub async fn lines(&self, req: Request) -> Result<Lines, Error> {
        let resp = self.send(req).await?;
        Ok(Lines { body: resp.into_body(), buf: Vec::new(), done: false, server: self.server.clone() })
    }
}

/// The lines of a streamed response (one JSON watch event per line).
pub struct Lines {
    body: Body,
    buf: Vec<u8>,
    done: bool,
    server: String,
}

impl Lines {
    /// The next non-empty line, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(Bytes::copy_from_slice(line)));
            }
            if self.done {
                let rest = std::mem::take(&mut self.buf);
                let rest = rest.trim_ascii();
                return Ok(if rest.is_empty() { None } else { Some(Bytes::copy_from_slice(rest)) });
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return Err(Error::Transport {
                        server: self.server.clone(),
                        reason: format!("the watch stream broke: {}", transport_reason(&e)),
                    });
                }
            }
        }
    }
}

/// An error response as an [`Error`]: the server's `Status` when the body is one.
fn error_from(method: &Method, uri: &str, code: StatusCode, body: &[u8]) -> Error {
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && (v.get("kind").and_then(Value::as_str) == Some("Status") || v.get("reason").is_some())
        && let Ok(mut status) = serde_json::from_value::<Status>(v)
    {
        if status.code == 0 {
            status.code = code.as_u16();
        }
        return Error::server(status);
    }
    let text = String::from_utf8_lossy(body);
    let text = crate::error::one_line(text.trim());
    let detail: String = if text.is_empty() {
        code.canonical_reason().unwrap_or("no body").to_string()
    } else {
        text.chars().take(300).collect()
    };
    let reason = match code {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        _ => "",
    };
    if reason.is_empty() {
        return Error::BadResponse { what: format!("{method} {uri}"), code: code.as_u16(), detail };
    }
    Error::server(Status { message: detail, reason: reason.into(), code: code.as_u16(), ..Default::default() })
}

/// `Warning: 299 - "text"` headers, printed as kubectl does.
fn print_warnings(headers: &http::HeaderMap) {
    for v in headers.get_all("warning") {
        let Ok(v) = v.to_str() else { continue };
        crate::output::warn(&warning_text(v));
    }
}

fn warning_text(header: &str) -> String {
    // `<code> <agent> "<text>"`; the text is a quoted string with `\"` escapes.
    let rest = header.splitn(3, ' ').nth(2).unwrap_or(header).trim();
    match rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => rest.to_string(),
    }
}

/// A failed exchange as an error: [`Error::Unreachable`] when no connection could be
/// made (refused, timed out, unknown host), else [`Error::Transport`].
pub fn transport_error(server: &str, err: &(dyn std::error::Error + 'static)) -> Error {
    let mut reason = transport_reason(err);
    if reason.contains("InvalidContentType") || reason.contains("certificate") || reason.contains("handshake") {
        if reason.contains("InvalidContentType") {
            reason.push_str(" (the server does not seem to speak TLS; is its address http:// rather than https://?)");
        }
        return Error::Transport { server: server.to_string(), reason: format!("TLS handshake failed: {reason}") };
    }
    let mut connect = false;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            connect |= matches!(
                io.kind(),
                ConnectionRefused
                    | TimedOut
                    | ConnectionReset
                    | NotConnected
                    | AddrNotAvailable
                    | HostUnreachable
                    | NetworkUnreachable
            );
        }
        let text = e.to_string();
        connect |=
            text.contains("tcp connect error") || text.contains("dns error") || text.contains("client error (Connect)");
        cur = e.source();
    }
    if connect {
        Error::Unreachable { server: server.to_string(), reason }
    } else {
        Error::Transport { server: server.to_string(), reason }
    }
}

/// Why a request did not get an answer, in a few words: the innermost cause, with
/// "connection refused" spelled as people know it.
pub fn transport_reason(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::TimedOut => return "connection timed out".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset by the server".into(),
                _ => {}
            }
        }
        let text = e.to_string();
        if !text.is_empty() {
            innermost = text;
        }
        cur = e.source();
    }
    innermost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        let r = Request::get("/api/v1/namespaces/default/pods")
            .query("labelSelector", "app=web,tier in (a, b)")
            .query_opt("fieldSelector", None)
            .query("limit", "500");
        assert_eq!(
            r.uri(),
            "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28a%2C%20b%29&limit=500"
        );
    }

    #[test]
    fn error_bodies_become_statuses() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"x\" not found","reason":"NotFound","code":404}"#;
        let e = error_from(&Method::GET, "/x", StatusCode::NOT_FOUND, body);
        assert!(e.is_not_found());
        assert_eq!(e.line(), r#"Error from server (NotFound): configmaps "x" not found"#);
        let e = error_from(&Method::GET, "/x", StatusCode::BAD_GATEWAY, b"<html>\n<body>bad gateway</body>\n</html>");
        assert_eq!(
            e.line(),
            "error: the server answered GET /x with HTTP 502 and a body rkctl cannot read: <html>; <body>bad gateway</body>; </html>"
        );
        let e = error_from(&Method::GET, "/x", StatusCode::NOT_FOUND, b"404 page not found");
        assert_eq!(e.line(), "Error from server (NotFound): 404 page not found");
    }

    #[test]
    fn warnings_are_unquoted() {
        assert_eq!(warning_text(r#"299 - "unknown field \"spec.foo\"""#), r#"unknown field "spec.foo""#);
        assert_eq!(warning_text("299 - plain"), "plain");
    }

    #[test]
    fn refused_connections_read_plainly() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        assert_eq!(transport_reason(&io), "connection refused");
    }
}
