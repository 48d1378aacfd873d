"""The official Kubernetes Python client against rk: typed and dynamic clients,
watches, patches of every kind, server-side apply, subresources and errors.

    python3 tests/python/k8s_client.py KUBECONFIG

Exits non-zero with the failing step on the first difference from what
kube-apiserver would answer. Run by tests/tests/python_client.rs.
"""

import sys
import threading

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException


def main(kubeconfig):
    # The kubeconfig's CA and client certificate: TLS and x509 authentication, as
    # against any cluster.
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    api = client.ApiClient(cfg)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

    assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    groups = [g.name for g in client.ApisApi(api).get_api_versions().groups]
    assert "apps" in groups and "batch" in groups, groups
    assert "default" in [n.metadata.name for n in core.list_namespace().items]
    # Every cluster has the API's own Service at the first service address.
    assert core.read_namespaced_service("kubernetes", "default").spec.cluster_ip == "10.96.0.1"

    ns = "py"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", labels={"a": "b"}), data={"k": "v"})
    created = core.create_namespaced_config_map(ns, cm)
    assert created.metadata.uid and created.metadata.resource_version
    expect_error(409, "AlreadyExists", lambda: core.create_namespaced_config_map(ns, cm))
    bad = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Bad_Name"))
    expect_error(422, "Invalid", lambda: core.create_namespaced_config_map(ns, bad))
    expect_error(404, "NotFound", lambda: core.read_namespaced_config_map("nope", ns))
    patched = core.patch_namespaced_config_map("cfg", ns, {"data": {"k2": "v2"}})
    assert patched.data == {"k": "v", "k2": "v2"}, patched.data
    stale = core.read_namespaced_config_map("cfg", ns)
    fresh = core.read_namespaced_config_map("cfg", ns)
    fresh.data["k3"] = "v3"
    core.replace_namespaced_config_map("cfg", ns, fresh)
    stale.data["k"] = "lost update"
    expect_error(409, "Conflict", lambda: core.replace_namespaced_config_map("cfg", ns, stale))
    assert len(core.list_namespaced_config_map(ns, label_selector="a=b").items) == 1

    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"p": "w"})
    core.create_namespaced_secret(ns, secret)
    assert core.read_namespaced_secret("s", ns).data == {"p": "dw=="}

    # A Deployment runs on the hollow nodes; a watch sees its pods become Running.
    container = client.V1Container(name="c", image="nginx:1", ports=[client.V1ContainerPort(container_port=80)])
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=3,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}), spec=client.V1PodSpec(containers=[container])
            ),
        ),
    )
    apps.create_namespaced_deployment(ns, dep)
    running = set()
    w = watch.Watch()

    def follow():
        for ev in w.stream(core.list_namespaced_pod, ns, timeout_seconds=30):
            if ev["object"].status.phase == "Running":
                running.add(ev["object"].metadata.name)
            if len(running) >= 3:
                w.stop()

    t = threading.Thread(target=follow)
    t.start()
    t.join(35)
    assert len(running) >= 3, running
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment_scale("web", ns).spec.replicas == 5
    assert apps.read_namespaced_deployment_status("web", ns).status is not None

    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80)], type="NodePort"),
    )
    svc = core.create_namespaced_service(ns, svc)
    assert svc.spec.cluster_ip and 30000 <= svc.spec.ports[0].node_port <= 32767

    page = core.list_namespaced_pod(ns, limit=2)
    assert len(page.items) == 2 and page.metadata._continue, page.metadata

    # The dynamic client: discovery, server-side apply, merge and JSON patches.
    dyn = dynamic.DynamicClient(api)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn", "namespace": ns}, "data": {"a": "1"}}
    cms.server_side_apply(body=body, field_manager="py")
    body["data"] = {"b": "2"}
    applied = cms.server_side_apply(body=body, field_manager="other", force_conflicts=True)
    assert applied.data.to_dict() == {"a": "1", "b": "2"}, applied.data
    merged = cms.patch(body={"data": {"c": "3"}}, name="dyn", namespace=ns, content_type="application/merge-patch+json")
    assert merged.data["c"] == "3"
    ops = [{"op": "add", "path": "/data/d", "value": "4"}]
    jsoned = cms.patch(body=ops, name="dyn", namespace=ns, content_type="application/json-patch+json")
    assert jsoned.data["d"] == "4"

    # Deletes answer as kube-apiserver's do: a Status for most kinds.
    # (This client version hands the answer back as a plain dict.)
    status = core.delete_namespaced_config_map("dyn", ns)
    assert status["kind"] == "Status" and status["status"] == "Success", status
    assert status["details"]["name"] == "dyn" and status["details"]["kind"] == "configmaps", status
    apps.delete_namespaced_deployment("web", ns, propagation_policy="Foreground")
    core.delete_collection_namespaced_config_map(ns)
    core.delete_namespace(ns)
    print("ok")


def expect_error(code, reason, call):
    try:
        call()
    except ApiException as e:
        assert e.status == code and reason in (e.body or ""), (e.status, e.body)
        return
    raise AssertionError(f"expected {code} {reason}")


if __name__ == "__main__":
    main(sys.argv[1])
