//! The real kubectl against rk: kubectl 1.32 (which sends protobuf bodies for typed
//! creates) and the oldest installed, 1.27.

use anyhow::{Result, ensure};
use rk_tests::kubectl::Kubectl;
use rk_tests::{Cluster, ClusterOptions};
use std::time::Duration;

const MANIFEST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - {name: GREETING, value: hello}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  labels: {app: web}
data:
  index.html: "<h1>hello</h1>"
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
"#;

async fn drive(minor: u32) -> Result<()> {
    let cluster = Cluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    let k = Kubectl::new(minor, cluster.kubeconfig(1)?)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("app.yaml");
    let file_s = file.to_string_lossy().to_string();
    std::fs::write(&file, MANIFEST)?;

    // Client-side apply: created, then unchanged, then configured after an edit.
    let out = k.ok(&["apply", "-f", &file_s]).await?;
    ensure!(out.contains("deployment.apps/web created"), "{out}");
    ensure!(out.contains("configmap/cfg created") && out.contains("service/web created"), "{out}");
    let out = k.ok(&["apply", "-f", &file_s]).await?;
    ensure!(out.matches("unchanged").count() == 3, "{out}");
    std::fs::write(&file, MANIFEST.replace("replicas: 3", "replicas: 4").replace("<h1>hello</h1>", "<h1>hi</h1>"))?;
    let out = k.ok(&["apply", "-f", &file_s]).await?;
    ensure!(out.contains("deployment.apps/web configured"), "{out}");
    ensure!(out.contains("configmap/cfg configured") && out.contains("service/web unchanged"), "{out}");
    // Server-side apply of the same manifest.
    let out = k.ok(&["apply", "--server-side", "-f", &file_s]).await?;
    ensure!(out.contains("deployment.apps/web serverside-applied"), "{out}");

    // get: tables, wide, yaml, -A, -l.
    let out = k.ok(&["get", "deployments"]).await?;
    let header: Vec<&str> = out.lines().next().unwrap_or("").split_whitespace().collect();
    ensure!(header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], "{out}");
    ensure!(out.lines().nth(1).is_some_and(|l| l.starts_with("web ") && l.contains("0/4")), "{out}");
    let out = k.ok(&["get", "deploy", "-o", "wide"]).await?;
    ensure!(out.contains("CONTAINERS") && out.contains("nginx:1.25") && out.contains("app=web"), "{out}");
    let out = k.ok(&["get", "deploy", "web", "-o", "yaml"]).await?;
    ensure!(out.contains("replicas: 4") && out.contains("generation: 2"), "{out}");
    ensure!(out.contains("maxSurge: 25%") && out.contains("protocol: TCP"), "defaults missing: {out}");
    let out = k.ok(&["get", "configmaps", "-A"]).await?;
    ensure!(out.starts_with("NAMESPACE") && out.contains("default ") && out.contains("cfg"), "{out}");
    let out = k.ok(&["get", "cm", "-l", "app=web", "-o", "name"]).await?;
    ensure!(out.trim() == "configmap/cfg", "{out}");
    let out = k.ok(&["get", "svc", "web"]).await?;
    ensure!(out.contains("ClusterIP") && out.contains("80/TCP"), "{out}");

    // get -w: stays open and prints new objects as they come.
    let (mut watch, mut lines) = k.spawn(&["get", "configmaps", "-w"])?;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut created = false;
    while !seen.contains("watched") {
        ensure!(tokio::time::Instant::now() < deadline, "kubectl get -w printed only: {seen}");
        match tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await {
            Ok(Ok(Some(line))) => seen.push_str(&format!("{line}\n")),
            Ok(Ok(None)) => anyhow::bail!("kubectl get -w exited: {seen}"),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) if !created && seen.contains("cfg") => {
                k.ok(&["create", "configmap", "watched", "--from-literal=a=b"]).await?;
                created = true;
            }
            Err(_) => {}
        }
    }
    let _ = watch.kill().await;

    // describe shows what the API defaulted.
    let out = k.ok(&["describe", "deployment", "web"]).await?;
    ensure!(out.contains("Name:") && out.contains("web"), "{out}");
    ensure!(out.contains("RollingUpdate") && out.contains("80/TCP") && out.contains("GREETING"), "{out}");

    // scale through the scale subresource.
    let out = k.ok(&["scale", "deployment", "web", "--replicas=2"]).await?;
    ensure!(out.contains("deployment.apps/web scaled"), "{out}");
    let out = k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await?;
    ensure!(out.trim() == "2", "{out}");

    // Typed create commands (protobuf bodies on 1.32+).
    let out = k.ok(&["create", "configmap", "literal", "--from-literal=k=v", "--from-literal=x=y"]).await?;
    ensure!(out.contains("configmap/literal created"), "{out}");
    let out = k.ok(&["get", "cm", "literal", "-o", "jsonpath={.data.x}"]).await?;
    ensure!(out == "y", "{out}");
    let out = k.ok(&["create", "secret", "generic", "creds", "--from-literal=password=hunter2"]).await?;
    ensure!(out.contains("secret/creds created"), "{out}");
    let out = k.ok(&["get", "secret", "creds", "-o", "jsonpath={.type} {.data.password}"]).await?;
    ensure!(out == "Opaque aHVudGVyMg==", "{out}");
    let out = k.run(&["create", "configmap", "literal", "--from-literal=k=v"], None).await?;
    ensure!(out.code == 1 && out.stderr.contains("already exists"), "{out:?}");
    // Workload generators: the object must come out as kubectl built it.
    let out = k
        .ok(&["create", "deployment", "gen", "--image=busybox", "--replicas=0", "--port=8080", "--", "sleep", "9"])
        .await?;
    ensure!(out.contains("deployment.apps/gen created"), "{out}");
    let out = k
        .ok(&["get", "deploy", "gen", "-o", "jsonpath={.spec.replicas} {.spec.selector.matchLabels.app} {.spec.template.spec.containers[0].command} {.spec.template.spec.containers[0].ports[0].containerPort}"])
        .await?;
    ensure!(out == r#"0 gen ["sleep","9"] 8080"#, "{out}");
    let out = k.ok(&["create", "service", "nodeport", "gen", "--tcp=8080:http"]).await?;
    ensure!(out.contains("service/gen created"), "{out}");
    let out = k.ok(&["get", "svc", "gen", "-o", "jsonpath={.spec.type} {.spec.ports[0].targetPort}"]).await?;
    ensure!(out == "NodePort http", "{out}");
    let out = k.ok(&["create", "job", "gen", "--image=busybox", "--", "echo", "hi"]).await?;
    ensure!(out.contains("job.batch/gen created"), "{out}");
    let out = k.ok(&["create", "ingress", "gen", "--class=rk", "--rule=a.example.com/x*=gen:80,tls=sec"]).await?;
    ensure!(out.contains("ingress.networking.k8s.io/gen created"), "{out}");
    let out = k
        .ok(&[
            "get",
            "ingress",
            "gen",
            "-o",
            "jsonpath={.spec.rules[0].http.paths[0].pathType} {.spec.tls[0].secretName}",
        ])
        .await?;
    ensure!(out == "Prefix sec", "{out}");
    k.ok(&["delete", "deployment,service,job,ingress", "gen"]).await?;

    // Errors are kubectl's usual lines.
    let out = k.run(&["get", "deploy", "nope"], None).await?;
    ensure!(
        out.code == 1 && out.stderr.contains("Error from server (NotFound): deployments.apps \"nope\" not found"),
        "{out:?}"
    );
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n";
    let out = k.run(&["apply", "-f", "-"], Some(bad)).await?;
    ensure!(out.code == 1 && out.stderr.contains("metadata.name: Invalid value"), "{out:?}");
    let unknown = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: u}\ndatta: {a: b}\n";
    let out = k.run(&["apply", "-f", "-"], Some(unknown)).await?;
    ensure!(out.code == 1 && out.stderr.contains("unknown field \"datta\""), "{out:?}");

    // Access reviews as the admin of the kubeconfig (a client certificate in
    // system:masters; 1.32 sends the reviews as protobuf; 1.27 asks
    // authentication.k8s.io/v1beta1 for whoami).
    let out = k.ok(&["auth", "can-i", "delete", "deployments", "-n", "kube-system"]).await?;
    ensure!(out.trim() == "yes", "{out}");
    let out = k.ok(&["auth", "can-i", "get", "/healthz"]).await?;
    ensure!(out.trim() == "yes", "{out}");
    let out = k.ok(&["auth", "can-i", "--list"]).await?;
    ensure!(out.lines().nth(1).is_some_and(|l| l.starts_with("*.*")), "{out}");
    let out = k.ok(&["auth", "whoami"]).await?;
    ensure!(out.contains("admin") && out.contains("system:masters"), "{out}");

    // RBAC: the default roles exist, a binding grants one, and a request that impersonates
    // a user (`--as`) is authorized as that user, reviews included.
    let out = k.ok(&["get", "clusterroles"]).await?;
    for role in ["cluster-admin", "admin", "edit", "view", "system:basic-user"] {
        ensure!(out.lines().any(|l| l.split_whitespace().next() == Some(role)), "{role} missing: {out}");
    }
    k.ok(&["create", "namespace", "dev"]).await?;
    // Every namespace gets a `default` ServiceAccount, and gets it back when it is deleted.
    let uid_of_default = || async {
        let out = k.run(&["get", "serviceaccount", "default", "-n", "dev", "-o", "jsonpath={.metadata.uid}"], None);
        out.await.ok().filter(|o| o.code == 0 && !o.stdout.is_empty()).map(|o| o.stdout)
    };
    let first = rk_tests::wait_for("the default ServiceAccount", Duration::from_secs(10), uid_of_default).await?;
    k.ok(&["delete", "serviceaccount", "default", "-n", "dev"]).await?;
    rk_tests::wait_for("a new default ServiceAccount", Duration::from_secs(10), || async {
        uid_of_default().await.filter(|uid| *uid != first)
    })
    .await?;
    let out =
        k.ok(&["create", "rolebinding", "jane-view", "--clusterrole", "view", "--user", "jane", "-n", "dev"]).await?;
    ensure!(out.contains("rolebinding.rbac.authorization.k8s.io/jane-view created"), "{out}");
    k.ok(&["create", "role", "cm-writer", "--verb", "create,get", "--resource", "configmaps", "-n", "dev"]).await?;
    k.ok(&["create", "rolebinding", "ops-cm", "--role", "cm-writer", "--group", "ops", "-n", "dev"]).await?;
    let out = k.ok(&["get", "rolebindings", "-n", "dev", "-o", "wide"]).await?;
    ensure!(
        out.lines().any(|l| l.starts_with("jane-view") && l.contains("ClusterRole/view") && l.contains("jane")),
        "{out}"
    );
    // `can-i` answers on stdout and exits 1 for "no".
    async fn can(k: &Kubectl, args: &[&str]) -> Result<String> {
        Ok(k.run(args, None).await?.stdout.trim().to_string())
    }
    ensure!(can(&k, &["auth", "can-i", "list", "pods", "-n", "dev", "--as", "jane"]).await? == "yes");
    ensure!(can(&k, &["auth", "can-i", "list", "pods", "-n", "kube-system", "--as", "jane"]).await? == "no");
    ensure!(can(&k, &["auth", "can-i", "create", "pods", "-n", "dev", "--as", "jane"]).await? == "no");
    ensure!(can(&k, &["auth", "can-i", "get", "secrets", "-n", "dev", "--as", "jane"]).await? == "no");
    ensure!(
        can(&k, &["auth", "can-i", "create", "configmaps", "-n", "dev", "--as", "sam", "--as-group", "ops"]).await?
            == "yes"
    );
    ensure!(
        can(&k, &["auth", "can-i", "delete", "nodes", "--as", "root", "--as-group", "system:masters"]).await? == "yes"
    );
    let out = k.ok(&["auth", "can-i", "--list", "-n", "dev", "--as", "jane"]).await?;
    ensure!(out.lines().any(|l| l.starts_with("pods ") && l.contains("[get list watch]")), "{out}");
    let out = k.ok(&["auth", "whoami", "--as", "jane"]).await?;
    ensure!(out.contains("jane") && out.contains("system:authenticated"), "{out}");
    // The impersonated requests themselves.
    k.ok(&["get", "pods", "-n", "dev", "--as", "jane"]).await?;
    let out = k.run(&["create", "configmap", "x", "-n", "dev", "--as", "jane"], None).await?;
    ensure!(
        out.code == 1
            && out.stderr.contains(
                "configmaps is forbidden: User \"jane\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"dev\""
            ),
        "{out:?}"
    );
    // The refusal is audited, with whom the request impersonated.
    let audit = cluster.replicas[1].data_dir.join("audit").join("audit.log");
    rk_tests::wait_for("the refused request in the audit log", Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&audit).ok()?;
        text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(|e| {
            e["impersonatedUser"]["username"] == "jane" && e["verb"] == "create" && e["responseStatus"]["code"] == 403
        })
    })
    .await?;
    k.ok(&["create", "configmap", "x", "-n", "dev", "--as", "sam", "--as-group", "ops"]).await?;
    let out = k.run(&["get", "configmaps", "-n", "kube-system", "--as", "sam", "--as-group", "ops"], None).await?;
    ensure!(out.code == 1 && out.stderr.contains("Forbidden"), "{out:?}");
    // `kubectl create token` (a TokenRequest; protobuf from 1.32). kubectl sends no token over
    // plain HTTP, so what a token may do is tested in api.rs.
    k.ok(&["create", "serviceaccount", "bot", "-n", "dev"]).await?;
    let token = k.ok(&["create", "token", "bot", "-n", "dev", "--duration", "20m"]).await?.trim().to_string();
    ensure!(token.split('.').count() == 3, "{token}");
    let out = k.run(&["create", "token", "bot", "-n", "dev", "--duration", "1m"], None).await?;
    ensure!(out.code == 1 && out.stderr.contains("may not specify a duration less than 10 minutes"), "{out:?}");
    let out = k.run(&["create", "token", "nobody", "-n", "dev"], None).await?;
    ensure!(out.code == 1 && out.stderr.contains("not found"), "{out:?}");

    // roleRef is immutable, as in Kubernetes.
    let out = k
        .run(&["patch", "rolebinding", "jane-view", "-n", "dev", "-p", r#"{"roleRef":{"name":"edit"}}"#], None)
        .await?;
    ensure!(out.code == 1 && out.stderr.contains("cannot change roleRef"), "{out:?}");

    // delete -f removes everything it names.
    let out = k.ok(&["delete", "-f", &file_s]).await?;
    ensure!(out.contains("deployment.apps \"web\" deleted") && out.contains("configmap \"cfg\" deleted"), "{out}");
    let out = k.run(&["get", "deployments"], None).await?;
    ensure!(out.stderr.contains("No resources found"), "{out:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_32_drives_rk() -> Result<()> {
    drive(32).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27_drives_rk() -> Result<()> {
    drive(27).await
}
