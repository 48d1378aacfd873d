//! The resource arguments of `get`, `describe` and `delete`: `TYPE [NAME...]`,
//! `TYPE1,TYPE2 [NAME...]`, `TYPE/NAME ...`, and `all` for the `all` category.

use crate::discovery::{ApiResource, Discovery};
use crate::error::Error;

/// Objects of one resource type: the named ones, or all (`names` empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub res: ApiResource,
    pub names: Vec<String>,
}

/// What the arguments ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    pub targets: Vec<Target>,
    /// More than one type was asked for (names then print as `kind/name`).
    pub several_kinds: bool,
}

impl Targets {
    pub fn has_names(&self) -> bool {
        self.targets.iter().any(|t| !t.names.is_empty())
    }
}

/// Parses resource arguments; `verb` words the errors.
pub fn parse(discovery: &Discovery, args: &[String], verb: &str) -> Result<Targets, Error> {
    let Some(first) = args.first() else {
        return Err(Error::Usage(format!(
            "you must specify the type of resource to {verb}, e.g. \"rkctl {verb} pods\"; \"rkctl api-resources\" lists the types"
        )));
    };
    if args.iter().any(|a| a.contains('/')) {
        let mut targets: Vec<Target> = Vec::new();
        for arg in args {
            let Some((kind, name)) = arg.split_once('/') else {
                return Err(Error::Usage(format!(
                    "there is no need to give a resource type as a separate argument when passing arguments in TYPE/NAME form: {arg:?}"
                )));
            };
            if kind.is_empty() || name.is_empty() {
                return Err(Error::Usage(format!("{arg:?} is not of the form TYPE/NAME")));
            }
            let res = discovery.resolve(kind)?.clone();
            match targets.iter_mut().find(|t| t.res == res) {
                Some(t) => t.names.push(name.to_string()),
                None => targets.push(Target { res, names: vec![name.to_string()] }),
            }
        }
        let several_kinds = targets.len() > 1;
        return Ok(Targets { targets, several_kinds });
    }
    let names: Vec<String> = args[1..].to_vec();
    let mut targets: Vec<Target> = Vec::new();
    let mut several_kinds = false;
    for kind in first.split(',').filter(|k| !k.is_empty()) {
        let found: Vec<ApiResource> = if kind == "all" {
            several_kinds = true;
            discovery.category("all").into_iter().cloned().collect()
        } else {
            vec![discovery.resolve(kind)?.clone()]
        };
        for res in found {
            if !targets.iter().any(|t| t.res == res) {
                targets.push(Target { res, names: names.clone() });
            }
        }
    }
    several_kinds |= targets.len() > 1;
    Ok(Targets { targets, several_kinds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn discovery() -> Discovery {
        let doc = json!({"items":[
            {"metadata":{},"versions":[{"version":"v1","resources":[
                {"resource":"pods","responseKind":{"kind":"Pod"},"scope":"Namespaced","shortNames":["po"],"singularResource":"pod","categories":["all"]},
                {"resource":"services","responseKind":{"kind":"Service"},"scope":"Namespaced","shortNames":["svc"],"singularResource":"service","categories":["all"]},
                {"resource":"configmaps","responseKind":{"kind":"ConfigMap"},"scope":"Namespaced","shortNames":["cm"],"singularResource":"configmap"}]}]},
            {"metadata":{"name":"apps"},"versions":[{"version":"v1","resources":[
                {"resource":"deployments","responseKind":{"kind":"Deployment"},"scope":"Namespaced","shortNames":["deploy"],"singularResource":"deployment","categories":["all"]}]}]}]});
        Discovery { resources: crate::discovery::parse_aggregated(&doc) }
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn summary(t: &Targets) -> Vec<(String, Vec<String>)> {
        t.targets.iter().map(|t| (t.res.plural.clone(), t.names.clone())).collect()
    }

    #[test]
    fn type_and_names() {
        let d = discovery();
        let t = parse(&d, &args(&["deploy", "a", "b"]), "get").unwrap();
        assert_eq!(summary(&t), [("deployments".into(), vec!["a".into(), "b".into()])]);
        assert!(!t.several_kinds);
        let t = parse(&d, &args(&["cm,deploy"]), "get").unwrap();
        assert_eq!(summary(&t), [("configmaps".into(), vec![]), ("deployments".into(), vec![])]);
        assert!(t.several_kinds);
    }

    #[test]
    fn slash_form_groups_by_type() {
        let d = discovery();
        let t = parse(&d, &args(&["deploy/a", "cm/x", "deployments.apps/b"]), "get").unwrap();
        assert_eq!(
            summary(&t),
            [("deployments".into(), vec!["a".into(), "b".into()]), ("configmaps".into(), vec!["x".into()])]
        );
        assert!(parse(&d, &args(&["deploy/a", "b"]), "get").is_err());
        assert!(parse(&d, &args(&["deploy/"]), "get").is_err());
    }

    #[test]
    fn all_is_the_all_category() {
        let d = discovery();
        let t = parse(&d, &args(&["all"]), "get").unwrap();
        assert_eq!(
            summary(&t).iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["pods", "services", "deployments"]
        );
        assert!(t.several_kinds);
    }

    #[test]
    fn errors() {
        let d = discovery();
        assert!(matches!(parse(&d, &[], "get"), Err(Error::Usage(_))));
        assert_eq!(
            parse(&d, &args(&["depoy"]), "get").unwrap_err().line(),
            r#"error: the server doesn't have a resource type "depoy""#
        );
    }
}
