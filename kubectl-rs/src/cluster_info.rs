//! `rkctl cluster-info`: where the control plane answers, and the cluster's add-on
//! services, as `kubectl cluster-info` finds them: the Services in `kube-system`
//! (or `-n`) labelled `kubernetes.io/cluster-service=true`, each printed with its
//! API-server proxy address.
//!
//! rk's cluster DNS is served by the replicas themselves (`rk-server --dns-listen`)
//! and published in no Service, so on a plain rk cluster only the control plane line
//! appears; a cluster that labels a DNS Service (as kubeadm does `kube-dns`) shows it.

use crate::Session;
use crate::cli::GlobalArgs;
use crate::client::Request;
use crate::error::Error;
use serde_json::Value;

pub async fn run(s: &Session, g: &GlobalArgs) -> Result<(), Error> {
    let namespace = g.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or("kube-system");
    let req = Request::get(format!("/api/v1/namespaces/{}/services", crate::client::encode(namespace)))
        .query("labelSelector", "kubernetes.io/cluster-service=true");
    let list = s.client.json(req).await?;
    let services = list.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    crate::output::print(&render(s.client.server(), &services));
    Ok(())
}

/// The text: one `NAME is running at URL` line per service, after the control
/// plane's, then kubectl's closing hint.
pub fn render(server: &str, services: &[Value]) -> String {
    let server = server.trim_end_matches('/');
    let mut text = format!("Kubernetes control plane is running at {server}\n");
    for svc in services {
        let field = |p: &str| svc.pointer(p).and_then(Value::as_str).unwrap_or("");
        let name = field("/metadata/name");
        let ports: Vec<&Value> = svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten().collect();
        let port_number = |p: &Value| p.get("port").and_then(Value::as_i64).unwrap_or(0);
        let link = match svc.pointer("/status/loadBalancer/ingress/0") {
            // A load balancer: its address, one URL per port.
            Some(ingress) => {
                let host = ingress.get("ip").and_then(Value::as_str).filter(|ip| !ip.is_empty());
                let host = host.or_else(|| ingress.get("hostname").and_then(Value::as_str)).unwrap_or("");
                ports.iter().map(|p| format!("http://{host}:{} ", port_number(p))).collect::<String>()
            }
            // Otherwise the API server's proxy: services/[SCHEME:]NAME[:PORTNAME]/proxy.
            None => {
                let mut target = name.to_string();
                if let Some(p) = ports.first() {
                    let port_name = p.get("name").and_then(Value::as_str).unwrap_or("");
                    let https = port_name == "https" || port_number(p) == 443;
                    target = match (https, port_name.is_empty()) {
                        (false, true) => target,
                        (false, false) => format!("{name}:{port_name}"),
                        (true, _) => format!("https:{name}:{port_name}"),
                    };
                }
                format!("{server}/api/v1/namespaces/{}/services/{target}/proxy", field("/metadata/namespace"))
            }
        };
        let shown =
            svc.pointer("/metadata/labels/kubernetes.io~1name").and_then(Value::as_str).filter(|n| !n.is_empty());
        text.push_str(&format!("{} is running at {link}\n", shown.unwrap_or(name)));
    }
    text.push_str(
        "\nTo further debug and diagnose cluster problems, use 'rkctl describe' and 'rkctl get events -A'.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_plane_only() {
        assert_eq!(
            render("http://127.0.0.1:7443/", &[]),
            "Kubernetes control plane is running at http://127.0.0.1:7443\n\n\
             To further debug and diagnose cluster problems, use 'rkctl describe' and 'rkctl get events -A'.\n"
        );
    }

    #[test]
    fn services_as_kubectl_links_them() {
        let dns = json!({"metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"kubernetes.io/name": "CoreDNS"}},
                         "spec": {"ports": [{"name": "dns", "port": 53}, {"name": "dns-tcp", "port": 53}]}});
        let dash =
            json!({"metadata": {"name": "dash", "namespace": "kube-system"}, "spec": {"ports": [{"port": 443}]}});
        let lb = json!({"metadata": {"name": "lb", "namespace": "kube-system"}, "spec": {"ports": [{"port": 80}, {"port": 81}]},
                        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        let text = render("https://h:6443", &[dns, dash, lb]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "CoreDNS is running at https://h:6443/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"
        );
        assert_eq!(
            lines[2],
            "dash is running at https://h:6443/api/v1/namespaces/kube-system/services/https:dash:/proxy"
        );
        assert_eq!(lines[3], "lb is running at http://1.2.3.4:80 http://1.2.3.4:81 ");
    }
}
