//! `rkctl top nodes|pods`: CPU and memory use from `metrics.k8s.io`, printed as
//! kubectl prints it (millicores, MiB, and for nodes the share of allocatable).

use crate::Session;
use crate::cli::TopCommand;
use crate::client::Request;
use crate::error::Error;
use crate::quantity::Quantity;
use crate::tabwriter::TabWriter;
use serde_json::Value;

const METRICS: &str = "/apis/metrics.k8s.io/v1beta1";

pub async fn run(s: &Session, cmd: &TopCommand) -> Result<(), Error> {
    match cmd {
        TopCommand::Nodes { name, no_headers } => nodes(s, name.as_deref(), *no_headers).await,
        TopCommand::Pods { name, all_namespaces, selector, no_headers } => {
            pods(s, name.as_deref(), *all_namespaces, selector.as_deref(), *no_headers).await
        }
    }
}

/// A metrics request; a missing metrics API reads as kubectl says it.
async fn metrics(s: &Session, req: Request) -> Result<Value, Error> {
    let result = s.client.json(req).await;
    if let Err(e) = &result
        && e.is_not_found()
        && s.client.json(Request::get(METRICS)).await.is_err()
    {
        return Err(Error::Usage(
            "Metrics API not available; rk-server serves it from its node agents: is this an rk cluster?".into(),
        ));
    }
    result
}

fn items(v: &Value) -> Vec<Value> {
    match v.get("items").and_then(Value::as_array) {
        Some(a) => a.clone(),
        None if v.get("metadata").is_some() => vec![v.clone()],
        None => Vec::new(),
    }
}

fn usage(v: &Value, resource: &str) -> Quantity {
    v.pointer(&format!("/usage/{resource}")).and_then(Quantity::from_json).unwrap_or_default()
}

fn cpu_text(q: &Quantity) -> String {
    format!("{}m", q.milli_value())
}

fn memory_text(q: &Quantity) -> String {
    format!("{}Mi", q.value() / (1024 * 1024))
}

fn percent(used: &Quantity, of: Option<&Quantity>) -> String {
    match of.map(Quantity::milli_value).filter(|&m| m > 0) {
        Some(total) => format!("{}%", (used.milli_value() as f64 / total as f64 * 100.0) as i64),
        None => "<unknown>".into(),
    }
}

async fn nodes(s: &Session, name: Option<&str>, no_headers: bool) -> Result<(), Error> {
    let path = match name {
        Some(n) => format!("{METRICS}/nodes/{}", crate::client::encode(n)),
        None => format!("{METRICS}/nodes"),
    };
    let metrics = items(&metrics(s, Request::get(path)).await?);
    let node_res = s.discovery().await?.resolve("nodes")?.clone();
    let nodes = match name {
        Some(n) => vec![s.client.json(Request::get(node_res.object_path(None, n))).await?],
        None => items(&s.client.json(Request::get(node_res.collection_path(None))).await?),
    };
    if nodes.is_empty() {
        crate::output::eprint_line("No resources found");
        return Ok(());
    }
    let mut w = TabWriter::for_tables();
    if !no_headers {
        w.write("NAME\tCPU(cores)\tCPU(%)\tMEMORY(bytes)\tMEMORY(%)\t\n");
    }
    let mut missing = Vec::new();
    for node in &nodes {
        let node_name = node.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let Some(m) = metrics.iter().find(|m| m.pointer("/metadata/name").and_then(Value::as_str) == Some(node_name))
        else {
            missing.push(node_name.to_string());
            continue;
        };
        let alloc = |r: &str| node.pointer(&format!("/status/allocatable/{r}")).and_then(Quantity::from_json);
        let (cpu, mem) = (usage(m, "cpu"), usage(m, "memory"));
        w.write(&format!(
            "{node_name}\t{}\t{}\t{}\t{}\t\n",
            cpu_text(&cpu),
            percent(&cpu, alloc("cpu").as_ref()),
            memory_text(&mem),
            percent(&mem, alloc("memory").as_ref())
        ));
    }
    // Nodes whose agent did not answer, as kubectl shows them.
    for n in missing {
        w.write(&format!("{n}\t<unknown>\t<unknown>\t<unknown>\t<unknown>\t\n"));
    }
    crate::output::print(&w.flush());
    Ok(())
}

async fn pods(
    s: &Session,
    name: Option<&str>,
    all_namespaces: bool,
    selector: Option<&str>,
    no_headers: bool,
) -> Result<(), Error> {
    let ns = crate::client::encode(&s.namespace);
    let path = match (name, all_namespaces) {
        (Some(n), _) => format!("{METRICS}/namespaces/{ns}/pods/{}", crate::client::encode(n)),
        (None, true) => format!("{METRICS}/pods"),
        (None, false) => format!("{METRICS}/namespaces/{ns}/pods"),
    };
    let list = items(&metrics(s, Request::get(path).query_opt("labelSelector", selector)).await?);
    if list.is_empty() {
        // Pods that exist but have no numbers yet are not "no resources".
        let pods = s.discovery().await?.resolve("pods")?.clone();
        let req = Request::get(pods.collection_path((!all_namespaces).then_some(s.namespace.as_str())))
            .query_opt("labelSelector", selector)
            .query("limit", "1");
        if !items(&s.client.json(req).await?).is_empty() {
            return Err(Error::Usage(
                "metrics not available yet; node agents report usage every few seconds, try again shortly".into(),
            ));
        }
        match all_namespaces {
            true => crate::output::eprint_line("No resources found"),
            false => crate::output::eprint_line(&format!("No resources found in {} namespace.", s.namespace)),
        }
        return Ok(());
    }
    let mut w = TabWriter::for_tables();
    if !no_headers {
        if all_namespaces {
            w.write("NAMESPACE\t");
        }
        w.write("NAME\tCPU(cores)\tMEMORY(bytes)\t\n");
    }
    for m in &list {
        let mut cpu = Quantity::default();
        let mut mem = Quantity::default();
        for c in m.get("containers").and_then(Value::as_array).into_iter().flatten() {
            cpu = cpu + usage(c, "cpu");
            mem = mem + usage(c, "memory");
        }
        if all_namespaces {
            w.write(&format!("{}\t", m.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")));
        }
        w.write(&format!(
            "{}\t{}\t{}\t\n",
            m.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""),
            cpu_text(&cpu),
            memory_text(&mem)
        ));
    }
    crate::output::print(&w.flush());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_kubectl() {
        let q = |t: &str| Quantity::parse(t).unwrap();
        assert_eq!(cpu_text(&q("250000000n")), "250m");
        assert_eq!(memory_text(&q("204800Ki")), "200Mi");
        assert_eq!(percent(&q("500m"), Some(&q("2"))), "25%");
        assert_eq!(percent(&q("1Gi"), None), "<unknown>");
    }
}
