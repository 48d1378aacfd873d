//! Liveness, readiness and startup probes: httpGet, tcpSocket and exec, with
//! Kubernetes' timing (initialDelaySeconds, periodSeconds, timeoutSeconds) and
//! thresholds (successThreshold, failureThreshold).

use crate::runtime::Runtime;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One probe of one container, with its counters.
#[derive(Debug, Clone)]
pub struct Probe {
    pub spec: Value,
    pub next: Instant,
    successes: u32,
    failures: u32,
    /// The probe's verdict so far (None until it has one).
    pub passing: Option<bool>,
    pub last_message: String,
}

impl Probe {
    pub fn new(spec: &Value, started: Instant) -> Self {
        let delay = spec["initialDelaySeconds"].as_u64().unwrap_or(0);
        Self {
            spec: spec.clone(),
            next: started + Duration::from_secs(delay),
            successes: 0,
            failures: 0,
            passing: None,
            last_message: String::new(),
        }
    }

    pub fn period(&self) -> Duration {
        Duration::from_secs(self.spec["periodSeconds"].as_u64().unwrap_or(10).max(1))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.spec["timeoutSeconds"].as_u64().unwrap_or(1).max(1))
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Records one result and returns the (possibly new) verdict.
    pub fn record(&mut self, ok: bool, message: String, now: Instant) -> Option<bool> {
        self.next = now + self.period();
        self.last_message = message;
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= self.spec["successThreshold"].as_u64().unwrap_or(1).max(1) as u32 {
                self.passing = Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= self.spec["failureThreshold"].as_u64().unwrap_or(3).max(1) as u32 {
                self.passing = Some(false);
            }
        }
        self.passing
    }

    /// Runs the probe once against a container.
    pub async fn run(
        &self,
        runtime: &dyn Runtime,
        container_id: &str,
        container: &Value,
        pod_ip: &str,
    ) -> (bool, String) {
        let timeout = self.timeout();
        let spec = &self.spec;
        let port_of = |p: &Value| -> Option<u16> {
            match p {
                Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Value::String(name) => container["ports"]
                    .as_array()?
                    .iter()
                    .find(|cp| cp["name"] == name.as_str())
                    .and_then(|cp| cp["containerPort"].as_u64())
                    .and_then(|n| u16::try_from(n).ok()),
                _ => None,
            }
        };
        let fut = async {
            if let Some(h) = spec.get("httpGet") {
                let Some(port) = port_of(&h["port"]) else { return (false, "probe port is not valid".to_string()) };
                let host = h["host"].as_str().filter(|s| !s.is_empty()).unwrap_or(pod_ip);
                let path = h["path"].as_str().unwrap_or("/");
                http_get(host, port, path, h["httpHeaders"].as_array()).await
            } else if let Some(t) = spec.get("tcpSocket") {
                let Some(port) = port_of(&t["port"]) else { return (false, "probe port is not valid".to_string()) };
                let host = t["host"].as_str().filter(|s| !s.is_empty()).unwrap_or(pod_ip);
                match tokio::net::TcpStream::connect((host, port)).await {
                    Ok(_) => (true, String::new()),
                    Err(e) => (false, format!("dial tcp {host}:{port}: {e}")),
                }
            } else if let Some(e) = spec.get("exec") {
                let cmd: Vec<String> = e["command"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect();
                match runtime.exec(container_id, cmd, false, false).await {
                    Ok(session) => {
                        let out: Vec<u8> = futures::StreamExt::collect::<Vec<_>>(session.output)
                            .await
                            .into_iter()
                            .flat_map(|(_, b)| b.to_vec())
                            .collect();
                        match session.exit.await {
                            Ok(0) => (true, String::new()),
                            Ok(code) => {
                                (false, format!("command exited with {code}: {}", String::from_utf8_lossy(&out).trim()))
                            }
                            Err(e) => (false, e.to_string()),
                        }
                    }
                    Err(e) => (false, e.to_string()),
                }
            } else {
                (false, "the probe has no handler rk supports (httpGet, tcpSocket, exec)".to_string())
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => (false, format!("probe timed out after {}s", timeout.as_secs())),
        }
    }
}

/// A plain HTTP/1.1 GET: 200–399 is success, as in Kubernetes.
async fn http_get(host: &str, port: u16, path: &str, headers: Option<&Vec<Value>>) -> (bool, String) {
    let mut stream = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(s) => s,
        Err(e) => return (false, format!("Get \"http://{host}:{port}{path}\": dial tcp: {e}")),
    };
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for h in headers.into_iter().flatten() {
        req.push_str(&format!("{}: {}\r\n", h["name"].as_str().unwrap_or(""), h["value"].as_str().unwrap_or("")));
    }
    req.push_str("\r\n");
    if let Err(e) = stream.write_all(req.as_bytes()).await {
        return (false, e.to_string());
    }
    let mut buf = vec![0u8; 512];
    let n = stream.read(&mut buf).await.unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    let code: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    if (200..400).contains(&code) {
        (true, String::new())
    } else {
        (false, format!("HTTP probe failed with statuscode: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thresholds() {
        let now = Instant::now();
        let mut p = Probe::new(&json!({"failureThreshold": 2, "successThreshold": 2, "periodSeconds": 1}), now);
        assert_eq!(p.record(false, String::new(), now), None);
        assert_eq!(p.record(false, String::new(), now), Some(false));
        assert_eq!(p.record(true, String::new(), now), Some(false));
        assert_eq!(p.record(true, String::new(), now), Some(true));
        assert!(p.next > now);
    }

    #[tokio::test]
    async fn http_probe_against_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /healthz");
                let reply: &[u8] = if ok { b"HTTP/1.1 200 OK\r\n\r\n" } else { b"HTTP/1.1 500 Oops\r\n\r\n" };
                let _ = s.write_all(reply).await;
            }
        });
        assert!(http_get("127.0.0.1", port, "/healthz", None).await.0);
        let (ok, msg) = http_get("127.0.0.1", port, "/other", None).await;
        assert!(!ok && msg.contains("500"));
        assert!(!http_get("127.0.0.1", 1, "/", None).await.0);
    }
}
