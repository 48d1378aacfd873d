//! The resource registry: every kind rk serves, with its group, version, plural
//! name, scope, short names, verbs and subresources — the facts discovery, routing
//! and storage all need. Storage keys are `/registry/<group>/<resource>/<ns>/<name>`
//! (`core` for the empty group; no namespace segment for cluster-scoped kinds).

/// One served resource (a kind at a group/version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Plural, lower-case: the URL segment (`deployments`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Member of the `all` category (what `kubectl get all` lists).
    pub in_all: bool,
    /// Served subresources.
    pub subresources: &'static [Subresource],
    /// Whether spec changes bump `metadata.generation`.
    pub has_spec: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    Binding,
    Eviction,
    Log,
    Exec,
    /// `pods/attach`: a session with a running container's own stdio.
    Attach,
    /// `pods/portforward`: a WebSocket spliced through to the node agent.
    PortForward,
    Finalize,
    /// `serviceaccounts/token`: TokenRequest.
    Token,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Finalize => "finalize",
            Subresource::Token => "token",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "status" => Subresource::Status,
            "scale" => Subresource::Scale,
            "binding" => Subresource::Binding,
            "eviction" => Subresource::Eviction,
            "log" => Subresource::Log,
            "exec" => Subresource::Exec,
            "attach" => Subresource::Attach,
            "portforward" => Subresource::PortForward,
            "finalize" => Subresource::Finalize,
            "token" => Subresource::Token,
            _ => return None,
        })
    }

    /// (kind, group, version, verbs) as discovery lists them.
    pub fn discovery(self, res: &Resource) -> (&'static str, &'static str, &'static str, &'static [&'static str]) {
        match self {
            Subresource::Status => (res.kind, res.group, res.version, &["get", "patch", "update"]),
            Subresource::Scale => ("Scale", "autoscaling", "v1", &["get", "patch", "update"]),
            Subresource::Binding => ("Binding", "", "v1", &["create"]),
            Subresource::Eviction => ("Eviction", "policy", "v1", &["create"]),
            Subresource::Log => ("Pod", "", "v1", &["get"]),
            Subresource::Exec => ("PodExecOptions", "", "v1", &["create", "get"]),
            Subresource::Attach => ("PodAttachOptions", "", "v1", &["create", "get"]),
            Subresource::PortForward => ("PodPortForwardOptions", "", "v1", &["create", "get"]),
            Subresource::Finalize => ("Namespace", "", "v1", &["update"]),
            Subresource::Token => ("TokenRequest", "authentication.k8s.io", "v1", &["create"]),
        }
    }
}

/// Verbs every resource supports.
pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `deployments.apps`, `pods`: how Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    fn group_segment(&self) -> &'static str {
        if self.group.is_empty() { "core" } else { self.group }
    }

    /// The storage prefix of all objects of this resource (in one namespace, if given).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("/registry/{}/{}/{}/", self.group_segment(), self.plural, ns),
            None => format!("/registry/{}/{}/", self.group_segment(), self.plural),
        }
    }

    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("/registry/{}/{}/{}/{}", self.group_segment(), self.plural, ns, name),
            None => format!("/registry/{}/{}/{}", self.group_segment(), self.plural, name),
        }
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, ns = $ns:expr, short = [$($s:expr),*], all = $all:expr, sub = [$($sub:ident),*], spec = $spec:expr) => {
        Resource {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: &[$($s),*],
            in_all: $all,
            subresources: &[$(Subresource::$sub),*],
            has_spec: $spec,
        }
    };
}

/// Everything rk serves.
pub static RESOURCES: &[Resource] = &[
    res!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        ns = false,
        short = ["ns"],
        all = false,
        sub = [Status, Finalize],
        spec = true
    ),
    res!("", "v1", "Node", "nodes", "node", ns = false, short = ["no"], all = false, sub = [Status], spec = true),
    res!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        ns = true,
        short = ["po"],
        all = true,
        sub = [Status, Binding, Eviction, Log, Exec, Attach, PortForward],
        spec = true
    ),
    res!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        ns = true,
        short = ["svc"],
        all = true,
        sub = [Status],
        spec = true
    ),
    res!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        ns = true,
        short = ["ep"],
        all = false,
        sub = [],
        spec = false
    ),
    res!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        ns = true,
        short = ["cm"],
        all = false,
        sub = [],
        spec = false
    ),
    res!("", "v1", "Secret", "secrets", "secret", ns = true, short = [], all = false, sub = [], spec = false),
    res!("", "v1", "Event", "events", "event", ns = true, short = ["ev"], all = false, sub = [], spec = false),
    res!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        ns = true,
        short = ["sa"],
        all = false,
        sub = [Token],
        spec = false
    ),
    res!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        ns = true,
        short = ["deploy"],
        all = true,
        sub = [Status, Scale],
        spec = true
    ),
    res!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        ns = true,
        short = ["rs"],
        all = true,
        sub = [Status, Scale],
        spec = true
    ),
    res!("batch", "v1", "Job", "jobs", "job", ns = true, short = [], all = true, sub = [Status], spec = true),
    res!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        ns = true,
        short = [],
        all = false,
        sub = [],
        spec = true
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        ns = true,
        short = ["ing"],
        all = false,
        sub = [Status],
        spec = true
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        ns = true,
        short = [],
        all = false,
        sub = [],
        spec = false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        ns = true,
        short = [],
        all = false,
        sub = [],
        spec = false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        ns = false,
        short = [],
        all = false,
        sub = [],
        spec = false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        ns = false,
        short = [],
        all = false,
        sub = [],
        spec = false
    ),
    res!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        ns = true,
        short = [],
        all = false,
        sub = [],
        spec = false
    ),
];

/// The resource served at `group/version` under `plural`.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of an object's `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Finds a resource by any name a user may type: plural, singular, kind, short
/// name, optionally qualified with its group (`deployments.apps`).
pub fn lookup(name: &str) -> Option<&'static Resource> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((b, g)) => (b.to_string(), Some(g.to_string())),
        None => (lower.clone(), None),
    };
    RESOURCES.iter().find(|r| {
        group.as_deref().is_none_or(|g| g == r.group || (g == "core" && r.group.is_empty()))
            && (r.plural == base
                || r.singular == base
                || r.kind.eq_ignore_ascii_case(&base)
                || r.short_names.contains(&base.as_str()))
    })
}

/// Group versions served, in discovery order (core first, then groups by name).
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_lookup() {
        let deploy = lookup("deploy").unwrap();
        assert_eq!(deploy.kind, "Deployment");
        assert_eq!(deploy.key(Some("default"), "web"), "/registry/apps/deployments/default/web");
        assert_eq!(lookup("pods").unwrap().key(Some("ns"), "p"), "/registry/core/pods/ns/p");
        assert_eq!(lookup("ns").unwrap().key(Some("ignored"), "kube-system"), "/registry/core/namespaces/kube-system");
        assert_eq!(lookup("deployments.apps").unwrap().plural, "deployments");
        assert_eq!(lookup("Ingress").unwrap().group, "networking.k8s.io");
        assert!(lookup("deployments.batch").is_none());
        assert_eq!(by_kind("apps/v1", "ReplicaSet").unwrap().plural, "replicasets");
        assert_eq!(by_kind("v1", "ConfigMap").unwrap().qualified(), "configmaps");
        // A prefix never matches a longer name: "/pods/default/" is not a prefix of
        // "/pods/default-2/x".
        assert!(
            !lookup("pods")
                .unwrap()
                .key(Some("default-2"), "x")
                .starts_with(&lookup("pods").unwrap().prefix(Some("default")))
        );
    }
}
