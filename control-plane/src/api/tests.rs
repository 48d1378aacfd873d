//! The HTTP API driven in-process: the router is built by [`super::router`] and fed
//! requests with `oneshot`, over a one-replica store. No sockets.

use super::{ApiServer, router};
use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

async fn server() -> Arc<ApiServer> {
    ApiServer::new(crate::testing::api().await, "127.0.0.1:6443".into())
}

struct Reply {
    code: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

async fn call(s: &Arc<ApiServer>, method: &str, uri: &str, ct: &str, body: Value, accept: &str) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if !ct.is_empty() {
        req = req.header("content-type", ct);
    }
    if !accept.is_empty() {
        req = req.header("accept", accept);
    }
    let bytes = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
    let resp = router(s.clone()).oneshot(req.body(Body::from(bytes)).unwrap()).await.unwrap();
    let code = resp.status();
    let headers = resp.headers().clone();
    let raw = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&raw).unwrap_or_else(|_| json!(String::from_utf8_lossy(&raw)));
    Reply { code, headers, body }
}

async fn get(s: &Arc<ApiServer>, uri: &str) -> Reply {
    call(s, "GET", uri, "", Value::Null, "").await
}

async fn post(s: &Arc<ApiServer>, uri: &str, body: Value) -> Reply {
    call(s, "POST", uri, "application/json", body, "").await
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "busybox"}
                ]}
            }
        }
    })
}

const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn create_get_update_with_kubernetes_metadata_semantics() {
    let s = server().await;
    let r = post(&s, DEPLOYS, deployment("web")).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    let d = r.body;
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(d["metadata"]["creationTimestamp"].is_string());
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    let rv = d["metadata"]["resourceVersion"].as_str().unwrap().to_string();

    // A label change is not a spec change: generation stays.
    let mut changed = d.clone();
    changed["metadata"]["labels"]["tier"] = json!("front");
    let r = call(&s, "PUT", &format!("{DEPLOYS}/web"), "application/json", changed, "").await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["metadata"]["generation"], 1);
    // A spec change bumps it; status sent to the main resource is ignored.
    let mut changed = r.body.clone();
    changed["spec"]["replicas"] = json!(5);
    changed["status"] = json!({"replicas": 99});
    let r = call(&s, "PUT", &format!("{DEPLOYS}/web"), "application/json", changed, "").await;
    assert_eq!(r.body["metadata"]["generation"], 2);
    assert!(r.body.get("status").is_none() || r.body["status"]["replicas"] != 99);
    // A stale resourceVersion conflicts.
    let mut stale = d.clone();
    stale["metadata"]["resourceVersion"] = json!(rv);
    let r = call(&s, "PUT", &format!("{DEPLOYS}/web"), "application/json", stale, "").await;
    assert_eq!(r.code, StatusCode::CONFLICT);
    assert_eq!(r.body["reason"], "Conflict");
    // Creating it again conflicts too.
    let r = post(&s, DEPLOYS, deployment("web")).await;
    assert_eq!((r.code, r.body["reason"].as_str()), (StatusCode::CONFLICT, Some("AlreadyExists")));
    // The status subresource changes only the status.
    let mut st = get(&s, &format!("{DEPLOYS}/web")).await.body;
    st["status"] = json!({"observedGeneration": 2, "replicas": 3});
    st["spec"]["replicas"] = json!(7);
    let r = call(&s, "PUT", &format!("{DEPLOYS}/web/status"), "application/json", st, "").await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["status"]["replicas"].clone(), r.body["spec"]["replicas"].clone()), (json!(3), json!(5)));
}

#[tokio::test]
async fn generate_name_secrets_and_validation_errors() {
    let s = server().await;
    let r = post(&s, CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "cfg-"}})).await;
    assert_eq!(r.code, StatusCode::CREATED);
    let name = r.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}, "data": {"a": "Yg=="}});
    let r = post(&s, "/api/v1/namespaces/default/secrets", secret).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"], json!({"a": "Yg==", "pw": "aHVudGVyMg=="}));
    assert!(r.body.get("stringData").is_none());
    assert_eq!(r.body["type"], "Opaque");
    let mut bad = deployment("bad");
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let r = post(&s, DEPLOYS, bad).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        r.body["details"]["causes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"spec.template.spec.containers[0].image"), "{fields:?}");
    assert!(fields.contains(&"spec.template.spec.restartPolicy"), "{fields:?}");
    // Dry run: validated, answered, not stored.
    let r = call(&s, "POST", &format!("{DEPLOYS}?dryRun=All"), "application/json", deployment("dry"), "").await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(get(&s, &format!("{DEPLOYS}/dry")).await.code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_paginate_consistently_and_selectors_filter() {
    let s = server().await;
    for i in 0..7 {
        let labels = if i % 2 == 0 { json!({"even": "yes"}) } else { json!({}) };
        post(&s, CMS, json!({"metadata": {"name": format!("c{i}"), "labels": labels}})).await;
    }
    let first = get(&s, &format!("{CMS}?limit=3")).await.body;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    assert_eq!(first["metadata"]["remainingItemCount"], 4);
    // A change between pages does not show up: the pages are one snapshot.
    post(&s, CMS, json!({"metadata": {"name": "c99"}})).await;
    let second = get(&s, &format!("{CMS}?limit=10&continue={token}")).await.body;
    let names: Vec<&str> =
        second["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["c3", "c4", "c5", "c6"]);
    assert_eq!(second["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"]);
    let even = get(&s, &format!("{CMS}?labelSelector=even%3Dyes")).await.body;
    assert_eq!(even["items"].as_array().unwrap().len(), 4);
    // With a selector the rest cannot be counted cheaply: no remainingItemCount.
    let even = get(&s, &format!("{CMS}?labelSelector=even%3Dyes&limit=2")).await.body;
    assert_eq!(even["items"].as_array().unwrap().len(), 2);
    assert!(even["metadata"]["continue"].is_string() && even["metadata"].get("remainingItemCount").is_none());
    let named = get(&s, &format!("{CMS}?fieldSelector=metadata.name%3Dc2")).await.body;
    assert_eq!(named["items"].as_array().unwrap().len(), 1);
    let r = get(&s, &format!("{CMS}?fieldSelector=spec.nodeName%3Dx")).await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = get(&s, &format!("{CMS}?continue=garbage")).await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn patches_of_every_kind() {
    let s = server().await;
    post(&s, DEPLOYS, deployment("web")).await;
    let uri = format!("{DEPLOYS}/web");
    // Strategic merge: containers merge by name, env by name.
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}}});
    let r = call(&s, "PATCH", &uri, "application/strategic-merge-patch+json", smp, "").await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    let c = &r.body["spec"]["template"]["spec"]["containers"];
    assert_eq!(c.as_array().unwrap().len(), 2);
    assert_eq!(c[0]["env"].as_array().unwrap().len(), 2, "{c}");
    // Delete one container by its merge key.
    let del = json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}});
    let r = call(&s, "PATCH", &uri, "application/strategic-merge-patch+json", del, "").await;
    assert_eq!(r.body["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
    // Merge patch replaces lists; JSON patch edits paths.
    let r = call(&s, "PATCH", &uri, "application/merge-patch+json", json!({"spec": {"replicas": 4}}), "").await;
    assert_eq!(r.body["spec"]["replicas"], 4);
    let jp = json!([{"op": "replace", "path": "/spec/replicas", "value": 2}, {"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}]);
    let r = call(&s, "PATCH", &uri, "application/json-patch+json", jp, "").await;
    assert_eq!(
        (r.body["spec"]["replicas"].clone(), r.body["metadata"]["annotations"]["x"].clone()),
        (json!(2), json!("y"))
    );
    // The scale subresource.
    let r = call(
        &s,
        "PATCH",
        &format!("{uri}/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 6}}),
        "",
    )
    .await;
    assert_eq!((r.body["kind"].clone(), r.body["spec"]["replicas"].clone()), (json!("Scale"), json!(6)));
    assert_eq!(r.body["status"]["selector"], "app=web");
    // Server-side apply creates, then conflicts with another owner, then forces.
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}});
    let r =
        call(&s, "PATCH", &format!("{CMS}/applied?fieldManager=one"), "application/apply-patch+yaml", cfg, "").await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "2"}});
    let r = call(
        &s,
        "PATCH",
        &format!("{CMS}/applied?fieldManager=two"),
        "application/apply-patch+yaml",
        other.clone(),
        "",
    )
    .await;
    assert_eq!(r.code, StatusCode::CONFLICT);
    assert_eq!(r.body["details"]["causes"][0]["field"], ".data.a");
    let r = call(
        &s,
        "PATCH",
        &format!("{CMS}/applied?fieldManager=two&force=true"),
        "application/apply-patch+yaml",
        other,
        "",
    )
    .await;
    assert_eq!((r.code, r.body["data"]["a"].clone()), (StatusCode::OK, json!("2")));
    // Appliers of different fields racing each other all land (a lost race is
    // retried, not reported as a conflict)...
    let racers = (0..8).map(|i| {
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {format!("k{i}"): "v"}});
        let uri = format!("{CMS}/applied?fieldManager=racer{i}");
        let s = &s;
        async move { call(s, "PATCH", &uri, "application/apply-patch+yaml", cfg, "").await }
    });
    for r in futures::future::join_all(racers).await {
        assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    }
    let live = get(&s, &format!("{CMS}/applied")).await.body;
    assert_eq!(live["data"].as_object().map(|d| d.len()), Some(9), "{live}");
    // ...while a configuration pinned to an old resourceVersion is refused.
    let stale = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied", "resourceVersion": "1"}, "data": {"a": "2"}});
    let r =
        call(&s, "PATCH", &format!("{CMS}/applied?fieldManager=two"), "application/apply-patch+yaml", stale, "").await;
    assert_eq!((r.code, r.body["reason"].clone()), (StatusCode::CONFLICT, json!("Conflict")), "{}", r.body);
    // A patch type nobody knows.
    let r = call(&s, "PATCH", &uri, "text/plain", json!({}), "").await;
    assert_eq!(r.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn deletion_honours_finalizers_grace_periods_and_propagation() {
    let s = server().await;
    // The namespaces every cluster has cannot be deleted.
    for ns in ["default", "kube-system", "kube-public"] {
        let r = call(&s, "DELETE", &format!("/api/v1/namespaces/{ns}"), "", Value::Null, "").await;
        assert_eq!(r.code, StatusCode::FORBIDDEN, "{}", r.body);
        assert_eq!(r.body["message"], format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted"));
    }
    post(&s, CMS, json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).await;
    let r = call(&s, "DELETE", &format!("{CMS}/held"), "", Value::Null, "").await;
    assert_eq!(r.code, StatusCode::OK);
    assert!(r.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(get(&s, &format!("{CMS}/held")).await.code, StatusCode::OK);
    // Removing the last finalizer completes the deletion.
    let r = call(
        &s,
        "PATCH",
        &format!("{CMS}/held"),
        "application/merge-patch+json",
        json!({"metadata": {"finalizers": null}}),
        "",
    )
    .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(get(&s, &format!("{CMS}/held")).await.code, StatusCode::NOT_FOUND);
    // Foreground propagation leaves the owner with the foregroundDeletion finalizer.
    post(&s, DEPLOYS, deployment("fg")).await;
    let r = call(
        &s,
        "DELETE",
        &format!("{DEPLOYS}/fg"),
        "application/json",
        json!({"propagationPolicy": "Foreground"}),
        "",
    )
    .await;
    assert_eq!(r.body["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    // A pod bound to a node waits for its node; an unbound one goes at once.
    let pods = "/api/v1/namespaces/default/pods";
    let pod =
        |name: &str| json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    post(&s, pods, pod("bound")).await;
    post(&s, pods, pod("free")).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"}, "target": {"kind": "Node", "name": "n1"}});
    let r = post(&s, &format!("{pods}/bound/binding"), binding.clone()).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert_eq!(post(&s, &format!("{pods}/bound/binding"), binding).await.code, StatusCode::CONFLICT);
    let bound = get(&s, &format!("{pods}/bound")).await.body;
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
    let r = call(&s, "DELETE", &format!("{pods}/bound"), "", Value::Null, "").await;
    assert_eq!(r.body["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(get(&s, &format!("{pods}/bound")).await.code, StatusCode::OK);
    call(&s, "DELETE", &format!("{pods}/free"), "", Value::Null, "").await;
    assert_eq!(get(&s, &format!("{pods}/free")).await.code, StatusCode::NOT_FOUND);
    // The node's confirmation (grace period 0) removes the bound pod.
    call(&s, "DELETE", &format!("{pods}/bound"), "application/json", json!({"gracePeriodSeconds": 0}), "").await;
    assert_eq!(get(&s, &format!("{pods}/bound")).await.code, StatusCode::NOT_FOUND);
    // New content in a terminating namespace is refused.
    post(&s, "/api/v1/namespaces", json!({"metadata": {"name": "going"}})).await;
    call(&s, "DELETE", "/api/v1/namespaces/going", "", Value::Null, "").await;
    let r = post(&s, "/api/v1/namespaces/going/configmaps", json!({"metadata": {"name": "x"}})).await;
    assert_eq!(r.code, StatusCode::FORBIDDEN, "{}", r.body);
}

#[tokio::test]
async fn watches_stream_changes_tables_and_expire() {
    let s = server().await;
    post(&s, CMS, json!({"metadata": {"name": "before"}})).await;
    let req = Request::builder().uri(format!("{CMS}?watch=true")).body(Body::empty()).unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    post(&s, CMS, json!({"metadata": {"name": "after"}})).await;
    call(&s, "DELETE", &format!("{CMS}/before"), "", Value::Null, "").await;
    let mut lines = String::new();
    use futures::StreamExt;
    while lines.lines().count() < 3 {
        let chunk =
            tokio::time::timeout(std::time::Duration::from_secs(5), body.next()).await.unwrap().unwrap().unwrap();
        lines.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["object"]["metadata"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(summary, [("ADDED", "before"), ("ADDED", "after"), ("DELETED", "before")]);
    assert_eq!(events[1]["object"]["kind"], "ConfigMap");
    // Tables, for kubectl get.
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let r = call(&s, "GET", CMS, "", Value::Null, table).await;
    assert_eq!(r.body["kind"], "Table");
    assert_eq!(r.body["columnDefinitions"][0]["format"], "name");
    assert_eq!(r.headers["content-type"], "application/json;as=Table;v=v1;g=meta.k8s.io");
    // Compacted history: 410 as an ERROR event.
    let rev = s.api.store.current_revision();
    s.api
        .store
        .raft
        .propose(rk_proto::store::internal_request::Op::Compaction(rk_proto::etcdserverpb::CompactionRequest {
            revision: rev,
            physical: false,
        }))
        .await
        .unwrap();
    let req = Request::builder().uri(format!("{CMS}?watch=true&resourceVersion=1")).body(Body::empty()).unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let raw = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let ev: Value = serde_json::from_slice(&raw[..raw.len() - 1]).unwrap();
    assert_eq!((ev["type"].as_str(), ev["object"]["code"].as_i64()), (Some("ERROR"), Some(410)));
}

#[tokio::test]
async fn discovery_version_and_openapi() {
    let s = server().await;
    let r = get(&s, "/version").await;
    assert_eq!((r.body["major"].as_str(), r.body["minor"].as_str()), (Some("1"), Some("33")));
    assert_eq!(r.headers["cache-control"], "no-cache, private");
    let aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = call(&s, "GET", "/apis", "", Value::Null, aggregated).await;
    assert_eq!(r.headers["content-type"], "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    assert!(r.body["items"].as_array().unwrap().iter().any(|g| g["metadata"]["name"] == "apps"));
    let r = get(&s, "/api/v1").await;
    assert!(r.body["resources"].as_array().unwrap().iter().any(|x| x["name"] == "pods/binding"));
    let r = get(&s, "/openapi/v3").await;
    let url = r.body["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap().to_string();
    let doc = get(&s, &url).await.body;
    assert!(doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"].is_object());
    assert_eq!(get(&s, "/openapi/v2").await.code, StatusCode::OK);
    assert_eq!(get(&s, "/apis/nope/v1/things").await.code, StatusCode::NOT_FOUND);
    let m = get(&s, "/metrics").await;
    assert!(m.body.as_str().unwrap().contains("apiserver_request_total"));
}

#[tokio::test]
async fn services_get_distinct_cluster_ips_and_node_ports_that_deletion_releases() {
    let s = server().await;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, node_port: Option<u16>| {
        let mut port = json!({"port": 80});
        if let Some(n) = node_port {
            port["nodePort"] = json!(n);
        }
        json!({"metadata": {"name": name}, "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [port]}})
    };
    let a = post(&s, svcs, svc("a", Some(30080))).await;
    assert_eq!(a.code, StatusCode::CREATED, "{}", a.body);
    let b = post(&s, svcs, svc("b", None)).await;
    assert_eq!(b.code, StatusCode::CREATED, "{}", b.body);
    assert_ne!(a.body["spec"]["clusterIP"], b.body["spec"]["clusterIP"]);
    assert!(a.body["spec"]["clusterIP"].as_str().unwrap().starts_with("10.96."));
    assert_eq!(a.body["spec"]["ports"][0]["nodePort"], 30080);
    let clash = post(&s, svcs, svc("c", Some(30080))).await;
    assert_eq!(clash.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", clash.body);
    assert!(clash.body["message"].as_str().unwrap().contains("already allocated"));
    let out_of_range = post(&s, svcs, svc("d", Some(80))).await;
    assert_eq!(out_of_range.code, StatusCode::UNPROCESSABLE_ENTITY);
    // Re-applying without the node port keeps it.
    let mut again = a.body.clone();
    again["spec"]["ports"][0].as_object_mut().unwrap().remove("nodePort");
    let r = call(&s, "PUT", &format!("{svcs}/a"), "application/json", again, "").await;
    assert_eq!(r.body["spec"]["ports"][0]["nodePort"], 30080, "{}", r.body);
    call(&s, "DELETE", &format!("{svcs}/a"), "", Value::Null, "").await;
    let reuse = post(&s, svcs, svc("c", Some(30080))).await;
    assert_eq!(reuse.code, StatusCode::CREATED, "deletion must release the port: {}", reuse.body);
}
