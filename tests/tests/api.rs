//! The Kubernetes API on a real 3-replica cluster, through a second real client (the
//! `kube` crate) and raw HTTP for bad input.

use anyhow::{Context, Result, ensure};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use rk_tests::{Cluster, ClusterOptions};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "data": {"v": value},
    }))
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_lists_watches_patches_and_sees_writes_from_every_replica() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let apis: Vec<Api<ConfigMap>> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(Api::namespaced(cluster.kube_client(i).await?, "default"));
        }
        v
    };
    // A watch on replica 0 from now on.
    let list = apis[0].list(&ListParams::default()).await?;
    let rv = list.metadata.resource_version.clone().context("list has no resourceVersion")?;
    let mut events = apis[0].watch(&WatchParams::default(), &rv).await?.boxed();

    // Writes through replica 2 are visible on all replicas at once (linearizable reads).
    for i in 0..20 {
        apis[2].create(&PostParams::default(), &cm(&format!("c{i}"), "1")).await?;
    }
    for api in &apis {
        let got = api.list(&ListParams::default().labels("app=demo")).await?;
        ensure!(got.items.len() == 20, "a replica sees {} of 20", got.items.len());
    }
    // Patches: merge, then server-side apply, through replica 1.
    apis[1].patch("c0", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "merged"}}))).await?;
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"v": "applied", "w": "x"}});
    // c1's value belongs to its creator: applying another value is a conflict…
    let conflict = apis[1].patch("c1", &PatchParams::apply("tester"), &Patch::Apply(&apply)).await;
    ensure!(matches!(&conflict, Err(kube::Error::Api(s)) if s.code == 409), "{conflict:?}");
    // …unless the applier forces it.
    let applied = apis[1].patch("c1", &PatchParams::apply("tester").force(), &Patch::Apply(&apply)).await?;
    ensure!(applied.data.as_ref().and_then(|d| d.get("w")).map(String::as_str) == Some("x"));
    let managers: Vec<String> =
        applied.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect();
    ensure!(managers.contains(&"tester".to_string()), "managedFields: {managers:?}");

    // The watch saw every change once, in order: 20 adds and 2 modifications.
    let mut seen = Vec::new();
    while seen.len() < 22 {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next()).await?.context("watch ended")?;
        match ev {
            Some(WatchEvent::Added(o)) | Some(WatchEvent::Modified(o)) => {
                let rv: i64 = o.metadata.resource_version.as_deref().unwrap_or("0").parse()?;
                seen.push(rv);
            }
            Some(WatchEvent::Bookmark(_)) => {}
            other => anyhow::bail!("unexpected watch event {other:?}"),
        }
    }
    ensure!(seen.windows(2).all(|w| w[0] < w[1]), "events out of order: {seen:?}");

    // The watcher runtime (what controllers use) also works: list + watch.
    let stream = kube::runtime::watcher(apis[0].clone(), kube::runtime::watcher::Config::default());
    let first = tokio::time::timeout(Duration::from_secs(10), stream.boxed().try_next()).await??;
    ensure!(first.is_some());

    // The API's own Service leads to the three replicas (Endpoints and EndpointSlice).
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> =
        Api::namespaced(cluster.kube_client(0).await?, "default");
    let want: Vec<String> = cluster.replicas.iter().map(|r| r.client_addr().ip().to_string()).collect();
    let port = i32::from(cluster.replicas[0].client_addr().port());
    rk_tests::wait_for("the kubernetes Endpoints", Duration::from_secs(20), || async {
        let ep = endpoints.get("kubernetes").await.ok()?;
        let subset = ep.subsets?.into_iter().next()?;
        let mut ips: Vec<String> = subset.addresses?.into_iter().map(|a| a.ip).collect();
        ips.sort();
        let mut want = want.clone();
        want.sort();
        (ips == want && subset.ports?.first()?.port == port).then_some(())
    })
    .await?;
    let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
        Api::namespaced(cluster.kube_client(0).await?, "default");
    let slice = slices.get("kubernetes").await?;
    ensure!(slice.endpoints.len() == 3, "{slice:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_with_one_resource_version_one_wins_the_rest_conflict() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let api: Api<ConfigMap> = Api::namespaced(cluster.kube_client(0).await?, "default");
    let created = api.create(&PostParams::default(), &cm("race", "0")).await?;
    let mut tasks = Vec::new();
    for i in 0..9 {
        let mut obj = created.clone();
        obj.data = Some(BTreeMap::from([("v".to_string(), format!("writer-{i}"))]));
        let api: Api<ConfigMap> = Api::namespaced(cluster.kube_client(i % 3).await?, "default");
        tasks.push(tokio::spawn(async move { api.replace("race", &PostParams::default(), &obj).await }));
    }
    let (mut won, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await? {
            Ok(_) => won += 1,
            Err(kube::Error::Api(s)) if s.code == 409 => conflicts += 1,
            Err(e) => anyhow::bail!("unexpected error: {e}"),
        }
    }
    ensure!((won, conflicts) == (1, 8), "won {won}, conflicts {conflicts}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_status_never_a_500() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let base = cluster.api_url(0);
    let http = HttpClient::new(&cluster);
    let cms = format!("{base}/api/v1/namespaces/default/configmaps");
    // (what, url, content type, body, expected code, message fragment)
    type Case<'a> = (&'a str, String, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("malformed JSON", cms.clone(), "application/json", b"{\"kind\": ".to_vec(), 400, "not valid JSON"),
        ("malformed YAML", cms.clone(), "application/yaml", b"kind: [unclosed".to_vec(), 400, "not valid YAML"),
        (
            "wrong apiVersion",
            cms.clone(),
            "application/json",
            br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"a"}}"#.to_vec(),
            400,
            "does not match the expected API version",
        ),
        (
            "wrong kind",
            cms.clone(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}"#.to_vec(),
            400,
            "does not match the expected kind",
        ),
        (
            "invalid name",
            cms.clone(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_OK"}}"#.to_vec(),
            422,
            "metadata.name: Invalid value",
        ),
        (
            "missing name",
            cms.clone(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#.to_vec(),
            422,
            "name or generateName is required",
        ),
        (
            "wrong field type",
            cms.clone(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":5}}"#.to_vec(),
            400,
            "cannot unmarshal",
        ),
        (
            "unknown field, strict",
            format!("{cms}?fieldValidation=Strict"),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"dta":{}}"#.to_vec(),
            400,
            "unknown field \"dta\"",
        ),
        ("oversized body", cms.clone(), "application/json", vec![b' '; 4 * 1024 * 1024], 413, "too large"),
        ("unknown content type", cms.clone(), "image/png", b"x".to_vec(), 415, "unknown format"),
        (
            "garbage protobuf",
            cms.clone(),
            "application/vnd.kubernetes.protobuf",
            b"k8s\0\xff\xff\xff".to_vec(),
            400,
            "protobuf",
        ),
        (
            "missing namespace",
            format!("{base}/api/v1/namespaces/nope/configmaps"),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#.to_vec(),
            404,
            "namespaces \"nope\" not found",
        ),
        (
            "access review without attributes",
            format!("{base}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
            "application/json",
            br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{}}"#.to_vec(),
            422,
            "spec.resourceAttributes",
        ),
        ("bad label selector", format!("{cms}?labelSelector=a%20in%20(b"), "", vec![], 400, ""),
        (
            "unknown resource",
            format!("{base}/apis/storage.k8s.io/v1/storageclasses"),
            "",
            vec![],
            404,
            "the server could not find the requested resource",
        ),
        (
            "bad json patch",
            format!("{cms}/nothing"),
            "application/json-patch+json",
            b"[{\"op\":\"frob\"}]".to_vec(),
            404,
            "not found",
        ),
    ];
    for (what, url, ct, body, code, needle) in cases {
        let (status, text) = if body.is_empty() && ct.is_empty() {
            http.get(&url).await?
        } else if ct.contains("patch") {
            http.send("PATCH", &url, ct, body).await?
        } else {
            http.send("POST", &url, ct, body).await?
        };
        ensure!(status == code, "{what}: expected {code}, got {status}: {text}");
        let status_obj: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{what}: not a Status: {text}"))?;
        ensure!(status_obj["kind"] == "Status" && status_obj["code"] == code, "{what}: {text}");
        let message = status_obj["message"].as_str().unwrap_or("");
        ensure!(message.contains(needle), "{what}: message lacks {needle:?}: {text}");
    }
    // A JSON patch that cannot apply to an existing object is a 4xx too.
    http.send(
        "POST",
        &cms,
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"p"}}"#.to_vec(),
    )
    .await?;
    let (status, text) = http
        .send(
            "PATCH",
            &format!("{cms}/p"),
            "application/json-patch+json",
            br#"[{"op":"replace","path":"/nope/x","value":1}]"#.to_vec(),
        )
        .await?;
    ensure!((400..500).contains(&status), "{status}: {text}");
    // The server still works.
    let (status, _) = http.get(&format!("{cms}/p")).await?;
    ensure!(status == 200);
    // A path nobody serves is kube-apiserver's plain 404, not a gRPC answer; the
    // discovery roots answer with a trailing slash too (the Python client asks so).
    let (status, text) = http.get(&format!("{base}/no/such/path")).await?;
    ensure!(status == 404 && text.contains("404 page not found"), "{status}: {text}");
    for path in ["/version/", "/api/", "/apis/"] {
        let (status, text) = http.get(&format!("{base}{path}")).await?;
        ensure!(status == 200 && text.starts_with('{'), "{path}: {status}: {text}");
    }
    // Deleting a ConfigMap answers with a Success Status naming it (a pod would come
    // back as itself).
    let (status, text) = http.send("DELETE", &format!("{cms}/p"), "", Vec::new()).await?;
    let answer: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
    ensure!(status == 200 && answer["kind"] == "Status" && answer["status"] == "Success", "{status}: {text}");
    ensure!(answer["details"]["name"] == "p" && answer["details"]["kind"] == "configmaps", "{text}");
    ensure!(answer["details"]["uid"].as_str().is_some_and(|u| !u.is_empty()), "{text}");
    Ok(())
}

/// A tiny HTTP/1.1 client for sending exactly the bytes a test wants: over TLS with
/// the admin's certificate (or none, for token tests) on a TLS cluster.
struct HttpClient {
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl HttpClient {
    /// Authenticated as the cluster's admin.
    fn new(cluster: &Cluster) -> Self {
        Self { tls: cluster.admin.as_ref().map(|c| std::sync::Arc::new(c.rustls(true).expect("admin TLS config"))) }
    }

    /// With no client certificate: only what a request's own headers (a token) prove.
    fn without_cert(cluster: &Cluster) -> Self {
        Self { tls: cluster.admin.as_ref().map(|c| std::sync::Arc::new(c.rustls(false).expect("TLS config"))) }
    }

    async fn get(&self, url: &str) -> Result<(u16, String)> {
        self.send("GET", url, "", Vec::new()).await
    }

    async fn get_owned(&self, url: String) -> Result<(u16, String)> {
        self.get(&url).await
    }

    async fn send_owned(&self, method: &str, url: String, content_type: &str, body: Vec<u8>) -> Result<(u16, String)> {
        self.send(method, &url, content_type, body).await
    }

    async fn send(&self, method: &str, url: &str, content_type: &str, body: Vec<u8>) -> Result<(u16, String)> {
        self.send_with(method, url, content_type, &[], body).await
    }

    async fn send_with(
        &self,
        method: &str,
        url: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).context("http(s) URL")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut stream = rk_tests::connect_io(host, self.tls.clone()).await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !content_type.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        // The server may answer (413) before the whole body is read.
        let _ = stream.write_all(&body).await;
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status: u16 = text.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        // Undo chunked encoding, if any: take the JSON object in the body.
        let body = match (body.find('{'), body.rfind('}')) {
            (Some(a), Some(b)) if a < b => body[a..=b].to_string(),
            _ => body,
        };
        Ok((status, body))
    }
}

/// Every request to the Kubernetes API lands in the replica's audit log as an
/// audit.k8s.io/v1 Event: verb, object (a create's name taken from the answer), answer
/// code and client address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_written_to_the_audit_log() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let client = cluster.kube_client(0).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "audited"}, "data": {"a": "b"}}))?;
    cms.create(&PostParams::default(), &cm).await?;
    let missing = cms.get("not-there").await;
    ensure!(missing.is_err(), "{missing:?}");
    let path = cluster.replicas[0].data_dir.join("audit").join("audit.log");
    let events = rk_tests::wait_for("the audit events", Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&path).ok()?;
        let events: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let wanted =
            |verb: &str, name: &str| events.iter().any(|e| e["verb"] == verb && e["objectRef"]["name"] == name);
        (wanted("create", "audited") && wanted("get", "not-there")).then_some(events)
    })
    .await?;
    let created =
        events.iter().find(|e| e["verb"] == "create" && e["objectRef"]["name"] == "audited").context("create")?;
    ensure!(created["kind"] == "Event" && created["apiVersion"] == "audit.k8s.io/v1", "{created}");
    ensure!(
        created["objectRef"]["resource"] == "configmaps" && created["objectRef"]["namespace"] == "default",
        "{created}"
    );
    ensure!(created["responseStatus"]["code"] == 201, "{created}");
    ensure!(
        created["stage"] == "ResponseComplete" && created["requestURI"] == "/api/v1/namespaces/default/configmaps?",
        "{created}"
    );
    ensure!(created["sourceIPs"][0].as_str().is_some_and(|ip| ip.starts_with("127.")), "{created}");
    ensure!(created["user"]["username"] == "admin", "{created}");
    let got = events.iter().find(|e| e["verb"] == "get" && e["objectRef"]["name"] == "not-there").context("get")?;
    ensure!(got["responseStatus"]["code"] == 404, "{got}");
    Ok(())
}

/// Every file under `dir` (data directories, logs, snapshots) that holds `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle)) {
                found.push(path);
            }
        }
    }
    found
}

/// Secrets reach the raft log, the snapshots and the etcd API only encrypted, read back
/// in plaintext on every replica (gets, lists, watches), and a key rotation re-encrypts
/// every one of them, even one written around the API in plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_encrypted_at_rest_and_a_key_rotation_re_encrypts_them() -> Result<()> {
    use base64::Engine;
    use k8s_openapi::api::core::v1::Secret;
    const SEALED: &[u8] = b"k8s:enc:xchacha20poly1305:v1:";
    const PREFIX: &str = "/registry/core/secrets/default/";
    // Small snapshots, so the state machine's snapshots are on disk too.
    let cluster = Cluster::start(ClusterOptions { snapshot_entries: 20, ..Default::default() }).await?;
    let apis: Vec<Api<Secret>> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(Api::namespaced(cluster.kube_client(i).await?, "default"));
        }
        v
    };
    let marker = format!("plaintext-{:016x}", rand::random::<u64>());
    let value = |i: usize| format!("{marker}-{i:02}");
    let list = apis[1].list(&ListParams::default()).await?;
    let rv = list.metadata.resource_version.clone().context("list has no resourceVersion")?;
    let mut events = apis[1].watch(&WatchParams::default(), &rv).await?.boxed();
    const N: usize = 30;
    for i in 0..N {
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": format!("s{i}")},
            "stringData": {"password": value(i)},
        }))?;
        apis[i % 3].create(&PostParams::default(), &s).await?;
    }
    let password = |s: &Secret| {
        s.data.as_ref().and_then(|d| d.get("password")).map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    let check_reads = |what: &'static str, count: usize| {
        let apis = apis.clone();
        async move {
            for (r, api) in apis.iter().enumerate() {
                let got = api.list(&ListParams::default()).await?;
                ensure!(got.items.len() == count, "{what}: replica {r} lists {} Secrets", got.items.len());
                for i in 0..N {
                    let s = api.get(&format!("s{i}")).await?;
                    ensure!(password(&s) == Some(value(i)), "{what}: replica {r} reads s{i} as {:?}", password(&s));
                }
            }
            Ok(())
        }
    };
    check_reads("after writing", N).await?;
    // A watch hands out the plaintext too.
    let mut watched = 0;
    while watched < N {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await?? {
            Some(WatchEvent::Added(s)) => {
                let i: usize = s.metadata.name.as_deref().unwrap_or("").trim_start_matches('s').parse()?;
                ensure!(password(&s) == Some(value(i)), "the watch shows s{i} as {:?}", password(&s));
                watched += 1;
            }
            Some(WatchEvent::Bookmark(_)) => {}
            other => anyhow::bail!("unexpected watch event {other:?}"),
        }
    }
    // Through the etcd API every Secret is ciphertext…
    let mut etcd = cluster.client(0).await?;
    let stored = etcd.get(PREFIX, Some(etcd_client::GetOptions::new().with_prefix())).await?;
    ensure!(stored.kvs().len() == N, "etcd holds {} Secrets", stored.kvs().len());
    for kv in stored.kvs() {
        ensure!(kv.value().starts_with(SEALED), "{} is stored as {:?}", kv.key_str()?, &kv.value()[..20]);
    }
    // …and no file of any replica (log, snapshots, audit log, server log) holds a value,
    // plain or in the base64 the object carries it in.
    let b64 = base64::engine::general_purpose::STANDARD.encode(value(7));
    for needle in [value(7), b64] {
        let found = files_holding(cluster.dir(), needle.as_bytes());
        ensure!(found.is_empty(), "{needle} is in {found:?}");
    }
    // (The search does find what is there: every replica's log holds the Secrets' keys.)
    let holders = files_holding(cluster.dir(), b"/registry/core/secrets/default/s29");
    ensure!(holders.len() >= 3, "the Secrets' keys are in only {holders:?}");

    // A Secret written around the API, in plaintext, still reads.
    let raw = json!({"metadata": {"name": "raw", "namespace": "default", "uid": "u-raw",
        "creationTimestamp": "2026-01-01T00:00:00Z"}, "apiVersion": "v1", "kind": "Secret",
        "type": "Opaque", "data": {"password": base64::engine::general_purpose::STANDARD.encode("raw-value")}});
    etcd.put(format!("{PREFIX}raw"), serde_json::to_vec(&raw)?, None).await?;

    // Rotation: a new key first in the file; the leader re-encrypts everything with it.
    let out = std::process::Command::new(rk_tests::binary("rk-server")?)
        .args(["secrets", "rotate-key", "--encryption-key-file"])
        .arg(cluster.key_file())
        .output()?;
    ensure!(out.status.success(), "rotate-key: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let new_key = said.split_whitespace().nth(1).context("rotate-key names no key")?.to_string();
    let mut resealed = SEALED.to_vec();
    resealed.extend_from_slice(format!("{new_key}:").as_bytes());
    rk_tests::wait_for("every Secret re-encrypted with the new key", Duration::from_secs(30), || {
        let (mut etcd, resealed) = (etcd.clone(), resealed.clone());
        async move {
            let kvs = etcd.get(PREFIX, Some(etcd_client::GetOptions::new().with_prefix())).await.ok()?;
            (kvs.kvs().len() == N + 1 && kvs.kvs().iter().all(|kv| kv.value().starts_with(&resealed))).then_some(())
        }
    })
    .await?;
    check_reads("after the rotation", N + 1).await?;
    for api in &apis {
        let s = api.get("raw").await?;
        ensure!(password(&s).as_deref() == Some("raw-value"), "{:?}", password(&s));
    }
    let status = |cmd: &str| {
        std::process::Command::new(rk_tests::binary("rk-server")?)
            .args(["secrets", cmd, "--encryption-key-file"])
            .arg(cluster.key_file())
            .args(["--endpoint", &cluster.replicas[2].endpoint()])
            .arg("--pki-dir")
            .arg(cluster.pki_dir())
            .output()
            .map_err(anyhow::Error::from)
    };
    let out = status("status")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && text.contains(&format!("{} Secret(s) encrypted with key {new_key} (current)", N + 1)),
        "{text}"
    );
    // Pruning the old key leaves every Secret readable, and new ones are written.
    let out = status("prune-keys")?;
    ensure!(out.status.success(), "prune-keys: {}", String::from_utf8_lossy(&out.stderr));
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "late"}, "stringData": {"password": "late"}}))?;
    apis[0].create(&PostParams::default(), &s).await?;
    check_reads("after pruning", N + 2).await?;
    for api in &apis {
        ensure!(password(&api.get("late").await?).as_deref() == Some("late"));
    }
    Ok(())
}

/// A replica that served with a CA refuses to restart without it or with another one
/// (a new CA would be trusted by no peer and no client), and starts once it is back.
#[test]
fn a_replica_refuses_a_missing_or_different_ca() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (data, pki) = (dir.path().join("data"), dir.path().join("pki"));
    let start = |wait_ready: bool| -> Result<(bool, String)> {
        let mut child = std::process::Command::new(rk_tests::binary("rk-server")?)
            .arg("--data-dir")
            .arg(&data)
            .arg("--pki-dir")
            .arg(&pki)
            .args(["--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--log-level", "info"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        // A refused start exits at once; a good one keeps running until killed.
        let deadline = std::time::Instant::now() + Duration::from_secs(if wait_ready { 3 } else { 10 });
        while std::time::Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                let out = child.wait_with_output()?;
                return Ok((false, String::from_utf8_lossy(&out.stderr).into_owned()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill()?;
        let out = child.wait_with_output()?;
        Ok((true, String::from_utf8_lossy(&out.stderr).into_owned()))
    };
    let (ran, err) = start(true)?;
    ensure!(ran && pki.join("ca.crt").exists(), "the first start: {err}");
    ensure!(data.join("cluster-ca.sha256").exists(), "the CA's hash is recorded");
    let kept = dir.path().join("kept");
    std::fs::rename(&pki, &kept)?;
    let (ran, err) = start(false)?;
    ensure!(!ran && err.contains("the cluster CA this replica served with is missing"), "{err}");
    ensure!(!pki.join("ca.crt").exists(), "no new CA was made");
    rk_control_plane::pki::Ca::load_or_create(&pki)?;
    let (ran, err) = start(false)?;
    ensure!(!ran && err.contains("is not the one this replica served with"), "{err}");
    std::fs::remove_dir_all(&pki)?;
    std::fs::rename(&kept, &pki)?;
    let (ran, err) = start(true)?;
    ensure!(ran, "with its CA back: {err}");
    Ok(())
}

/// A replica that joins without the cluster's key file refuses to start, and says why.
#[test]
fn a_joining_replica_without_the_key_file_refuses_to_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = std::process::Command::new(rk_tests::binary("rk-server")?)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--encryption-key-file")
        .arg(dir.path().join("missing.key"))
        .args(["--join", "127.0.0.1:9", "--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success() && err.contains("a joining replica needs the cluster's keys"), "{err}");
    ensure!(!dir.path().join("missing.key").exists());
    Ok(())
}

async fn post_json(http: &HttpClient, base: &str, path: &str, body: serde_json::Value) -> Result<(u16, String)> {
    http.send("POST", &format!("{base}{path}"), "application/json", serde_json::to_vec(&body)?).await
}

/// A token for ServiceAccount `default/bot`, through the TokenRequest API.
async fn issue_token(http: &HttpClient, base: &str) -> Result<String> {
    let (code, text) =
        post_json(http, base, "/api/v1/namespaces/default/serviceaccounts/bot/token", json!({"spec": {}})).await?;
    ensure!(code == 201, "{code} {text}");
    let answer: serde_json::Value = serde_json::from_str(&text)?;
    ensure!(answer["kind"] == "TokenRequest" && answer["spec"]["expirationSeconds"] == 3600, "{answer}");
    Ok(answer["status"]["token"].as_str().context("no token")?.to_string())
}

/// The `message` of a Status answer.
fn message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_default()
}

/// A request with `token` as its bearer token (a POST creates a ConfigMap).
async fn with_token(http: &HttpClient, base: &str, method: &str, path: &str, token: &str) -> Result<(u16, String)> {
    let auth = format!("Bearer {token}");
    let body = if method == "POST" { br#"{"metadata":{"name":"made-by-bot"}}"#.to_vec() } else { Vec::new() };
    http.send_with(method, &format!("{base}{path}"), "application/json", &[("Authorization", &auth)], body).await
}

/// ServiceAccount tokens authenticate: a request with one acts as the account, allowed
/// only what RBAC grants it; a bad or forged token is 401 on every path; a token dies with
/// its account and with the key that signed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_authenticate_and_rbac_decides() -> Result<()> {
    const CMS: &str = "/api/v1/namespaces/default/configmaps";
    let cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let base = cluster.api_url(0);
    let base = base.as_str();
    let admin = HttpClient::new(&cluster);
    let admin = &admin;
    let http = HttpClient::without_cert(&cluster);
    let http = &http;
    let (code, _) =
        post_json(admin, base, "/api/v1/namespaces/default/serviceaccounts", json!({"metadata": {"name": "bot"}}))
            .await?;
    ensure!(code == 201, "{code}");
    let token = issue_token(admin, base).await?;
    // Only discovery and self reviews until a binding grants more.
    let (code, text) = with_token(http, base, "GET", CMS, &token).await?;
    ensure!(code == 403 && message(&text).contains("User \"system:serviceaccount:default:bot\" cannot list"), "{text}");
    let (code, _) = with_token(http, base, "GET", "/apis", &token).await?;
    ensure!(code == 200, "discovery: {code}");
    let (code, text) =
        with_token(http, base, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", &token).await?;
    ensure!(code == 201 && text.contains("system:serviceaccount:default:bot"), "whoami: {code} {text}");
    let binding = json!({"metadata": {"name": "bot-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}]});
    let (code, text) =
        post_json(admin, base, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", binding).await?;
    ensure!(code == 201, "{code} {text}");
    let (code, _) = with_token(http, base, "GET", CMS, &token).await?;
    ensure!(code == 200, "view lists: {code}");
    let (code, text) = with_token(http, base, "POST", CMS, &token).await?;
    ensure!(code == 403 && message(&text).contains("cannot create resource \"configmaps\""), "{code} {text}");
    let (code, _) = with_token(http, base, "GET", "/api/v1/namespaces/default/secrets", &token).await?;
    ensure!(code == 403, "view reads no Secrets: {code}");
    // The token cannot impersonate (it has no `impersonate`).
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str()), ("Impersonate-User", "admin")];
    let (code, text) = http.send_with("GET", &format!("{base}{CMS}"), "", &headers, vec![]).await?;
    ensure!(code == 403 && message(&text).contains("cannot impersonate resource \"users\""), "{code} {text}");

    // Bad tokens: 401 Unauthorized on every path, /version included.
    let mut forged = token.clone();
    let last = forged.pop();
    forged.push(if last == Some('A') { 'B' } else { 'A' });
    for bad in ["garbage", forged.as_str()] {
        for path in [CMS, "/version"] {
            let (code, text) = with_token(http, base, "GET", path, bad).await?;
            ensure!(code == 401 && text.contains("\"reason\":\"Unauthorized\""), "{path}: {code} {text}");
        }
    }

    // A token of a rotated-out key dies once the key is pruned; a new token works.
    let rk_server = rk_tests::binary("rk-server")?;
    let secrets = |args: &[&str]| -> Result<()> {
        let out = std::process::Command::new(&rk_server)
            .arg("secrets")
            .args(args)
            .arg("--encryption-key-file")
            .arg(cluster.key_file())
            .output()?;
        ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    secrets(&["rotate-key"])?;
    let old_kid = token.split('.').next().unwrap_or("").to_string();
    let fresh = rk_tests::wait_for("a token of the new key", Duration::from_secs(10), || {
        let old_kid = old_kid.clone();
        async move {
            let t = issue_token(admin, base).await.ok()?;
            (t.split('.').next() != Some(old_kid.as_str())).then_some(t)
        }
    })
    .await?;
    let (code, _) = with_token(http, base, "GET", CMS, &token).await?;
    ensure!(code == 200, "the old key still verifies: {code}");
    let pki_dir = cluster.pki_dir().display().to_string();
    secrets(&["prune-keys", "--endpoint", &cluster.replicas[0].endpoint(), "--pki-dir", &pki_dir])?;
    rk_tests::wait_for("the old token refused", Duration::from_secs(10), || {
        let token = token.clone();
        async move {
            let (code, _) = with_token(http, base, "GET", CMS, &token).await.ok()?;
            (code == 401).then_some(())
        }
    })
    .await?;
    let (code, _) = with_token(http, base, "GET", CMS, &fresh).await?;
    ensure!(code == 200, "the new token: {code}");

    // The account's deletion ends its tokens.
    let url = format!("{base}/api/v1/namespaces/default/serviceaccounts/bot");
    let (code, _) = admin.send("DELETE", &url, "", Vec::new()).await?;
    ensure!(code == 200, "{code}");
    let (code, _) = with_token(http, base, "GET", CMS, &fresh).await?;
    ensure!(code == 401, "a deleted account's token: {code}");
    // An account made again under the same name is another account (another uid).
    let (code, text) =
        post_json(admin, base, "/api/v1/namespaces/default/serviceaccounts", json!({"metadata": {"name": "bot"}}))
            .await?;
    ensure!(code == 201, "{code} {text}");
    let (code, _) = with_token(http, base, "GET", CMS, &fresh).await?;
    ensure!(code == 401, "the old account's token, for the new account: {code}");
    Ok(())
}

/// A restarted replica whose key file is gone refuses to start rather than make a new
/// key its Secrets were not encrypted with, and starts again once the file is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_the_key_its_secrets_need_refuses_to_start() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let base = cluster.api_url(0);
    let http = HttpClient::new(&cluster);
    let body = br#"{"metadata":{"name":"db"},"stringData":{"password":"p"}}"#.to_vec();
    let (code, text) =
        http.send("POST", &format!("{base}/api/v1/namespaces/default/secrets"), "application/json", body).await?;
    ensure!(code == 201, "{code} {text}");
    cluster.kill(0);
    let key_file = cluster.key_file();
    let kept = cluster.dir().join("kept.key");
    std::fs::rename(&key_file, &kept)?;
    cluster.spawn(0)?;
    let status = rk_tests::wait_for("the replica to exit", Duration::from_secs(20), || {
        let status = cluster.replicas[0].exit_status();
        async move { status }
    })
    .await?;
    ensure!(!status.success(), "{status}");
    let log = cluster.replicas[0].log();
    ensure!(log.contains("this data directory's Secrets may be encrypted with its keys"), "{log}");
    ensure!(!key_file.exists(), "no new key was made");
    std::fs::rename(&kept, &key_file)?;
    cluster.spawn(0)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let (code, text) = rk_tests::wait_for("the Secret", Duration::from_secs(20), || async {
        http.get(&format!("{base}/api/v1/namespaces/default/secrets/db")).await.ok().filter(|(c, _)| *c == 200)
    })
    .await?;
    ensure!(code == 200 && text.contains("\"password\":\"cA==\""), "{text}");
    Ok(())
}

/// A client configuration presenting `cert` (PEM) and trusting `ca` (PEM).
fn tls_with(ca: &str, cert: Option<(&str, &str)>) -> Result<std::sync::Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes())?)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match cert {
        Some((c, k)) => builder.with_client_auth_cert(
            vec![rustls::pki_types::CertificateDer::from_pem_slice(c.as_bytes())?],
            rustls::pki_types::PrivateKeyDer::from_pem_slice(k.as_bytes())?,
        )?,
        None => builder.with_no_client_auth(),
    };
    Ok(std::sync::Arc::new(config))
}

/// The client port: TLS only; requests without credentials get 401 except the public
/// health and version paths; a certificate from another CA fails the handshake; a user's
/// certificate is authorized by RBAC (its user and groups); the etcd API needs a client
/// certificate in system:masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_port_needs_tls_and_credentials() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let admin = cluster.admin.clone().context("a TLS cluster has an admin")?;
    let base = cluster.api_url(0);
    let addr = cluster.replicas[0].client_addr();

    // No credentials: 401 as a Status, except the public paths.
    let anonymous = HttpClient { tls: Some(tls_with(&admin.ca_pem, None)?) };
    let (code, text) = anonymous.get(&format!("{base}/api/v1/namespaces/default/configmaps")).await?;
    ensure!(code == 401 && text.contains("\"reason\":\"Unauthorized\""), "{code} {text}");
    let (code, _) = anonymous.get(&format!("{base}/apis")).await?;
    ensure!(code == 401, "discovery without credentials: {code}");
    for path in ["/livez", "/readyz", "/healthz", "/version"] {
        let (code, _) = anonymous.get(&format!("{base}{path}")).await?;
        ensure!(code == 200, "{path} without credentials: {code}");
    }
    // Plain HTTP gets no answer from a TLS port.
    let plain = rk_tests::http_get(addr, "/version").await;
    ensure!(!matches!(plain, Ok((200, _))), "plain HTTP was answered: {plain:?}");

    // A certificate from another CA: the handshake fails (the client is told no more).
    let other = tempfile::tempdir()?;
    let (foreign, _) = rk_control_plane::pki::Ca::load_or_create(&other.path().join("pki"))?;
    let leaf = rk_control_plane::pki::Leaf {
        common_name: "admin".into(),
        organizations: vec!["system:masters".into()],
        client: true,
        validity: Duration::from_secs(600),
        ..Default::default()
    };
    let forged = foreign.issue(&leaf)?;
    let stranger = HttpClient { tls: Some(tls_with(&admin.ca_pem, Some((&forged.cert_pem, &forged.key_pem)))?) };
    let refused = stranger.get(&format!("{base}/api/v1/namespaces")).await;
    ensure!(!matches!(refused, Ok((200, _))), "a foreign CA's certificate was accepted: {refused:?}");
    // And a server the client does not trust is refused by the client.
    let untrusting = HttpClient { tls: Some(tls_with(foreign.cert_pem(), None)?) };
    ensure!(untrusting.get(&format!("{base}/version")).await.is_err(), "a server outside the trusted CA answered");

    // A user's certificate: RBAC decides. `view` in default reads but cannot create.
    let jane = cluster.issue_creds("jane", &["dev"])?;
    let as_jane = HttpClient { tls: Some(std::sync::Arc::new(jane.rustls(true)?)) };
    let cms = format!("{base}/api/v1/namespaces/default/configmaps");
    let (code, text) = as_jane.get(&cms).await?;
    ensure!(code == 403 && message(&text).contains("User \"jane\" cannot list"), "{code} {text}");
    let binding = json!({"metadata": {"name": "dev-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "Group", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"}]});
    let (code, text) = post_json(
        &HttpClient::new(&cluster),
        &base,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        binding,
    )
    .await?;
    ensure!(code == 201, "{code} {text}");
    let (code, _) = as_jane.get(&cms).await?;
    ensure!(code == 200, "a view user lists: {code}");
    let (code, text) =
        post_json(&as_jane, &base, "/api/v1/namespaces/default/configmaps", json!({"metadata": {"name": "x"}})).await?;
    ensure!(code == 403 && message(&text).contains("cannot create resource \"configmaps\""), "{code} {text}");
    // kubectl, as jane, through a kubeconfig with her certificate.
    let k = rk_tests::kubectl::Kubectl::new(32, cluster.kubeconfig_as(0, Some(&jane))?)?;
    let out = k.ok(&["auth", "can-i", "create", "configmaps"]).await;
    ensure!(out.is_err(), "can-i create says yes for a view user: {out:?}");
    let out = k.ok(&["auth", "can-i", "list", "configmaps"]).await?;
    ensure!(out.trim() == "yes", "{out}");
    let out = k.ok(&["auth", "whoami"]).await?;
    ensure!(out.contains("jane") && out.contains("dev"), "{out}");

    // etcd: no certificate is UNAUTHENTICATED; a user outside system:masters is refused.
    let opts = etcd_client::ConnectOptions::new().with_tls(
        etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(&admin.ca_pem))
            .domain_name("kubernetes.default.svc"),
    );
    let mut etcd = rk_tests::connect_etcd(cluster.replicas[0].endpoint(), opts).await?;
    let err = etcd.get("a", None).await.map(|_| ()).unwrap_err().to_string();
    ensure!(err.contains("client certificate"), "{err}");
    let opts = etcd_client::ConnectOptions::new().with_tls(jane.etcd_tls());
    let mut etcd = rk_tests::connect_etcd(cluster.replicas[0].endpoint(), opts).await?;
    let err = etcd.get("a", None).await.map(|_| ()).unwrap_err().to_string();
    ensure!(err.contains("jane may not use the etcd API"), "{err}");
    let mut etcd = cluster.client(0).await?;
    etcd.get("a", None).await?;
    Ok(())
}

/// Replicas renew their certificates before they expire, without a restart and without
/// a pause: with certificates that live 6 s (renewed after 4 s), fresh connections keep
/// succeeding, to every replica, for three lifetimes, and they see new certificates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_renew_while_the_cluster_serves() -> Result<()> {
    let opts = ClusterOptions { extra_args: vec!["--cert-validity".into(), "6s".into()], ..Default::default() };
    let cluster = Cluster::start(opts).await?;
    let admin = cluster.admin.clone().context("a TLS cluster has an admin")?;
    let tls = std::sync::Arc::new(admin.rustls(true)?);
    // The serving certificate a fresh connection to replica `i` is shown.
    let served = |i: usize| {
        let (addr, tls) = (cluster.replicas[i].client_addr(), tls.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = rustls::pki_types::ServerName::try_from("kubernetes.default.svc")?;
            let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await?;
            let cert = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).context("no certificate")?;
            anyhow::Ok(cert.as_ref().to_vec())
        }
    };
    let first = served(0).await?;
    let start = std::time::Instant::now();
    let mut n = 0;
    let mut seen = std::collections::HashSet::new();
    while start.elapsed() < Duration::from_secs(18) {
        for i in 0..cluster.replicas.len() {
            // A new connection each time: each one checks the certificate served now.
            let mut etcd = cluster.client(i).await.with_context(|| format!("connecting to replica {i} at {n}"))?;
            etcd.put(format!("renewal/{n}"), "x", None).await.with_context(|| format!("write {n} via replica {i}"))?;
            let cms: Api<ConfigMap> = Api::namespaced(cluster.kube_client(i).await?, "default");
            cms.list(&ListParams::default()).await.with_context(|| format!("list {n} via replica {i}"))?;
            seen.insert(served(i).await?);
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure!(served(0).await? != first, "replica 1 still serves its first certificate");
    // Three replicas, each renewed at least twice in 18 s.
    ensure!(seen.len() >= 9, "only {} distinct serving certificates in 18 s", seen.len());
    for r in &cluster.replicas {
        let renewals = r.log().matches("renewed this replica's certificate").count();
        ensure!(renewals >= 4, "replica {} renewed {renewals} times (client and peer certificates)", r.id);
    }
    // Peers kept talking throughout: the cluster still has one leader and takes writes.
    let mut etcd = cluster.client(0).await?;
    etcd.put("renewal/after", "y", None).await?;
    // Renewals are counted in /metrics and recorded as events on the API's Service.
    let (_, metrics) = cluster.get(0, "/metrics").await?;
    let renewals = |label: &str| {
        let prefix = format!("rk_certificate_renewals_total{{certificate=\"{label}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse::<u64>().ok())
    };
    ensure!(renewals("client-port").is_some_and(|n| n >= 2) && renewals("peer").is_some_and(|n| n >= 2), "{metrics}");
    ensure!(metrics.contains("rk_certificate_expiry_timestamp_seconds{certificate=\"ca\"}"), "{metrics}");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(cluster.kube_client(0).await?, "default");
    let renewed = rk_tests::wait_for("CertificateRenewed events", Duration::from_secs(10), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        let found: Vec<_> =
            list.items.into_iter().filter(|e| e.reason.as_deref() == Some("CertificateRenewed")).collect();
        (!found.is_empty()).then_some(found)
    })
    .await?;
    ensure!(renewed.iter().all(|e| e.involved_object.name.as_deref() == Some("kubernetes")), "{renewed:?}");
    Ok(())
}

/// Node authorization: a node's certificate reads only the Secrets and ConfigMaps of pods
/// bound to it, and writes only its own Node, its own Lease and its own pods' status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_credentials_reach_only_their_own_pods_objects() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let base = cluster.api_url(0);
    let admin = HttpClient::new(&cluster);
    let ns = "/api/v1/namespaces/default";
    for (node, secret, cm) in [("node-a", "a-secret", "a-config"), ("node-b", "b-secret", "b-config")] {
        let (code, text) = post_json(&admin, &base, "/api/v1/nodes", json!({"metadata": {"name": node}})).await?;
        ensure!(code == 201, "{code} {text}");
        let (code, text) =
            post_json(&admin, &base, &format!("{ns}/secrets"), json!({"metadata": {"name": secret}})).await?;
        ensure!(code == 201, "{code} {text}");
        let (code, text) =
            post_json(&admin, &base, &format!("{ns}/configmaps"), json!({"metadata": {"name": cm}})).await?;
        ensure!(code == 201, "{code} {text}");
        let pod = json!({"metadata": {"name": format!("{node}-pod")}, "spec": {
            "nodeName": node,
            "volumes": [{"name": "s", "secret": {"secretName": secret}}],
            "containers": [{"name": "c", "image": "busybox",
                "envFrom": [{"configMapRef": {"name": cm}}]}]}});
        let (code, text) = post_json(&admin, &base, &format!("{ns}/pods"), pod).await?;
        ensure!(code == 201, "{code} {text}");
    }
    let a = cluster.issue_creds("system:node:node-a", &["system:nodes"])?;
    let as_a = HttpClient { tls: Some(std::sync::Arc::new(a.rustls(true)?)) };
    let get = |path: String| as_a.get_owned(format!("{base}{path}"));
    // Its own pod's Secret and ConfigMap: yes. The other node's: no, and no listing.
    let (code, text) = get(format!("{ns}/secrets/a-secret")).await?;
    ensure!(code == 200, "own pod's Secret: {code} {text}");
    let (code, _) = get(format!("{ns}/configmaps/a-config")).await?;
    ensure!(code == 200, "own pod's ConfigMap: {code}");
    let (code, text) = get(format!("{ns}/secrets/b-secret")).await?;
    ensure!(
        code == 403 && message(&text).contains("no relationship found between node 'node-a' and this object"),
        "{code} {text}"
    );
    let (code, _) = get(format!("{ns}/configmaps/b-config")).await?;
    ensure!(code == 403, "another node's pod's ConfigMap: {code}");
    // A Secret an Ingress names for TLS: every node may get it (each can serve Ingress).
    let (code, text) =
        post_json(&admin, &base, &format!("{ns}/secrets"), json!({"metadata": {"name": "web-tls"}})).await?;
    ensure!(code == 201, "{code} {text}");
    let (code, _) = get(format!("{ns}/secrets/web-tls")).await?;
    ensure!(code == 403, "a Secret no Ingress names yet: {code}");
    let ingress = json!({"metadata": {"name": "web"}, "spec": {
        "tls": [{"hosts": ["web.example"], "secretName": "web-tls"}],
        "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}});
    let (code, text) =
        post_json(&admin, &base, "/apis/networking.k8s.io/v1/namespaces/default/ingresses", ingress).await?;
    ensure!(code == 201, "{code} {text}");
    let (code, text) = get(format!("{ns}/secrets/web-tls")).await?;
    ensure!(code == 200, "a Secret an Ingress names for TLS: {code} {text}");
    let (code, _) = get(format!("{ns}/secrets")).await?;
    ensure!(code == 403, "listing Secrets: {code}");
    // Pods and Nodes may be read; only its own may be written.
    let (code, _) = get(format!("{ns}/pods/node-b-pod")).await?;
    ensure!(code == 200, "reading a pod: {code}");
    let patch = |path: String, body: serde_json::Value| {
        as_a.send_owned("PATCH", format!("{base}{path}"), "application/merge-patch+json", body.to_string().into_bytes())
    };
    let status = json!({"status": {"phase": "Running"}});
    let (code, text) = patch(format!("{ns}/pods/node-a-pod/status"), status.clone()).await?;
    ensure!(code == 200, "own pod's status: {code} {text}");
    let (code, text) = patch(format!("{ns}/pods/node-b-pod/status"), status).await?;
    ensure!(code == 403 && message(&text).contains("may only modify pods bound to it"), "{code} {text}");
    let labels = json!({"metadata": {"labels": {"x": "y"}}});
    let (code, text) = patch("/api/v1/nodes/node-a".into(), labels.clone()).await?;
    ensure!(code == 200, "own Node: {code} {text}");
    let (code, text) = patch("/api/v1/nodes/node-b".into(), labels).await?;
    ensure!(code == 403 && message(&text).contains("may only modify its own Node"), "{code} {text}");
    let lease = |name: &str| json!({"metadata": {"name": name}, "spec": {"holderIdentity": name}});
    let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    let (code, text) = post_json(&as_a, &base, leases, lease("node-a")).await?;
    ensure!(code == 201, "own Lease: {code} {text}");
    let (code, _) = as_a
        .send("PUT", &format!("{base}{leases}/node-b"), "application/json", lease("node-b").to_string().into_bytes())
        .await?;
    ensure!(code == 403, "another node's Lease: {code}");
    // NodeRestriction reads bodies: a Node registers under its own name only, and asks for
    // ServiceAccount tokens bound to its own pods, running as that account, only.
    let (code, text) = post_json(&as_a, &base, "/api/v1/nodes", json!({"metadata": {"name": "node-c"}})).await?;
    ensure!(code == 403 && message(&text).contains("may only register a Node named 'node-a'"), "{code} {text}");
    let (code, text) =
        post_json(&admin, &base, &format!("{ns}/serviceaccounts"), json!({"metadata": {"name": "bot"}})).await?;
    ensure!(code == 201, "{code} {text}");
    let token_for = |account: &str, pod: &str| {
        let body = json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod}}});
        let path = format!("{ns}/serviceaccounts/{account}/token");
        let (as_a, base) = (&as_a, &base);
        async move { post_json(as_a, base, &path, body).await }
    };
    // (The `default` account is made by a controller: wait for it.)
    rk_tests::wait_for("a token for its own pod", Duration::from_secs(10), || async {
        token_for("default", "node-a-pod").await.ok().filter(|(code, _)| *code == 201)
    })
    .await?;
    let (code, text) = token_for("default", "node-b-pod").await?;
    ensure!(code == 403 && message(&text).contains("only request tokens for pods bound to it"), "{code} {text}");
    let (code, text) = token_for("bot", "node-a-pod").await?;
    ensure!(code == 403 && message(&text).contains("runs as service account 'default'"), "{code} {text}");
    let unbound = json!({"spec": {"audiences": ["x"]}});
    let (code, text) = post_json(&as_a, &base, &format!("{ns}/serviceaccounts/default/token"), unbound).await?;
    ensure!(code == 403 && message(&text).contains("only request tokens bound to pods"), "{code} {text}");
    // A node may renew its own certificate, and no other node's.
    let csr = {
        let key = rcgen::KeyPair::generate()?;
        rcgen::CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?.pem()?
    };
    let (code, text) =
        post_json(&as_a, &base, "/rk/v1/node-certificate", json!({"nodeName": "node-a", "csr": csr})).await?;
    ensure!(code == 201 && text.contains("BEGIN CERTIFICATE"), "own certificate: {code} {text}");
    let (code, text) =
        post_json(&as_a, &base, "/rk/v1/node-certificate", json!({"nodeName": "node-b", "csr": csr})).await?;
    ensure!(code == 403 && message(&text).contains("only renew its own certificate"), "{code} {text}");
    Ok(())
}

/// A new replica joins with a replica token (`rk-server token create --replica`), with
/// neither the CA nor the secrets keys copied to it by hand: it fetches both from a
/// member it checks against the CA the token pins, and serves the Secrets written before
/// it came. A node's join token is not enough for that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_joins_with_a_token() -> Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    use std::os::unix::fs::PermissionsExt;
    let mut cluster = Cluster::start(ClusterOptions { replicas: 1, ..Default::default() }).await?;
    let secrets: Api<Secret> = Api::namespaced(cluster.kube_client(0).await?, "default");
    let before: Secret = serde_json::from_value(
        json!({"metadata": {"name": "before"}, "stringData": {"k": "written-before-the-join"}}),
    )?;
    secrets.create(&PostParams::default(), &before).await?;

    let node_token = cluster.join_token("10m")?;
    let refused = cluster.join_new_with_token(&node_token).await?;
    let replica = &mut cluster.replicas[refused];
    let log = rk_tests::wait_for("the replica with a node's token to give up", Duration::from_secs(20), || {
        let exited = !replica.is_running();
        let log = replica.log();
        async move { exited.then_some(log) }
    })
    .await?;
    ensure!(log.contains("refused the join token") && log.contains("403"), "{log}");
    let (pki, keys) = cluster.own_secrets(refused);
    ensure!(!pki.join("ca.key").exists() && !keys.exists(), "a refused join left secrets behind");

    let token = cluster.join_token_with("10m", &["--replica"])?;
    let new = cluster.join_new_with_token(&token).await?;
    let got = rk_tests::wait_for("the new replica to serve the Secret", Duration::from_secs(30), || async {
        let client = cluster.kube_client(new).await.ok()?;
        Api::<Secret>::namespaced(client, "default").get("before").await.ok()
    })
    .await
    .with_context(|| cluster.logs())?;
    let value = got.data.and_then(|d| d.get("k").cloned()).context("the Secret has no data")?;
    ensure!(value.0 == b"written-before-the-join", "{:?}", String::from_utf8_lossy(&value.0));
    // What it holds is the cluster's, kept private.
    let (pki, keys) = cluster.own_secrets(new);
    ensure!(std::fs::read(pki.join("ca.crt"))? == std::fs::read(cluster.pki_dir().join("ca.crt"))?, "another CA");
    ensure!(std::fs::read(&keys)? == std::fs::read(cluster.key_file())?, "other secrets keys");
    for private in [pki.join("ca.key"), keys] {
        ensure!(std::fs::metadata(&private)?.permissions().mode() & 0o777 == 0o600, "{}", private.display());
    }
    let mut c = cluster.client(0).await?;
    ensure!(c.member_list().await?.members().len() == 2, "the new replica is a member");
    // A restart needs the token no more (it is deleted here): what it fetched is used.
    let id = token.rsplit(':').next().and_then(|b| b.split('.').next()).context("token id")?;
    let system: Api<Secret> = Api::namespaced(cluster.kube_client(0).await?, "kube-system");
    system.delete(&format!("bootstrap-token-{id}"), &Default::default()).await?;
    cluster.restart(new)?;
    rk_tests::wait_for("the restarted replica to serve", Duration::from_secs(30), || async {
        let client = cluster.kube_client(new).await.ok()?;
        Api::<Secret>::namespaced(client, "default").get("before").await.ok()
    })
    .await
    .with_context(|| cluster.logs())?;
    Ok(())
}

/// Opens a watch on ConfigMaps over its own connection and reads the answer's head:
/// (status code, the head, the open stream).
async fn open_watch(
    addr: std::net::SocketAddr,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<(u16, String, Box<dyn rk_tests::Io>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = rk_tests::connect_io(&addr.to_string(), Some(tls)).await?;
    let head = format!("GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await??;
        ensure!(n == 1, "the connection closed before the answer's head ended: {:?}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).context("no status line")?;
    Ok((code, head, stream))
}

/// One client over its share of watches gets 429 TooManyRequests with Retry-After; other
/// clients are not held back, and a closed watch gives its slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_share_of_watches_gets_429_and_others_do_not() -> Result<()> {
    let opts = ClusterOptions {
        replicas: 1,
        extra_args: vec!["--max-watches-per-client".into(), "2".into()],
        ..Default::default()
    };
    let cluster = Cluster::start(opts).await?;
    let addr = cluster.replicas[0].client_addr();
    let greedy = std::sync::Arc::new(cluster.issue_creds("greedy", &["system:masters"])?.rustls(true)?);
    let (c1, _, first) = open_watch(addr, greedy.clone()).await?;
    let (c2, _, _second) = open_watch(addr, greedy.clone()).await?;
    ensure!((c1, c2) == (200, 200), "{c1} {c2}");
    let (code, head, _) = open_watch(addr, greedy.clone()).await?;
    ensure!(code == 429 && head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    // The admin is another client: its watches go through.
    let admin = std::sync::Arc::new(cluster.admin.clone().context("admin")?.rustls(true)?);
    let (code, _, _admin_watch) = open_watch(addr, admin).await?;
    ensure!(code == 200, "another client's watch: {code}");
    // Closing a watch frees its slot, once the server notices the connection is gone (the
    // next event it sends there fails): write until then.
    drop(first);
    let http = HttpClient::new(&cluster);
    let base = cluster.api_url(0);
    let n = std::sync::atomic::AtomicUsize::new(0);
    rk_tests::wait_for("a freed watch slot", Duration::from_secs(10), || {
        let (greedy, http, base, n) = (greedy.clone(), &http, &base, &n);
        async move {
            let name = format!("poke-{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let cm = json!({"metadata": {"name": name}});
            post_json(http, base, "/api/v1/namespaces/default/configmaps", cm).await.ok()?;
            let (code, _, stream) = open_watch(addr, greedy).await.ok()?;
            (code == 200).then_some(stream)
        }
    })
    .await?;
    Ok(())
}
