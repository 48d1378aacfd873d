//! A hand-written mini-schema of the Kubernetes built-in types rk serves.
//!
//! Kubernetes drives strategic merge patch from Go struct tags (`patchStrategy`,
//! `patchMergeKey`) and server-side apply from the OpenAPI list/map/struct markers
//! (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `structType=atomic`,
//! `mapType=atomic`). rk has no Go types, so this module records exactly those facts for
//! the fields that need them, transcribed from `staging/src/k8s.io/api/*/types.go` and
//! `apimachinery/pkg/apis/meta/v1/types.go`.
//!
//! Only fields whose behaviour differs from the fallback need an entry. The fallback for
//! any field or kind not listed here is [`Node::Untyped`]: objects merge key by key, lists
//! are replaced whole (atomic). That is what Kubernetes does for lists without markers,
//! and for custom resources under JSON merge patch.
//!
//! Start at [`root`] (a kind's top-level node) or [`lookup`] (a node by field path).

/// How the value at some field is shaped and merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// A leaf: string, number, bool, quantity, int-or-string, timestamp.
    Scalar,
    /// A Go struct, named so that types can refer to each other in any order; resolve
    /// it with [`struct_def`].
    Struct(&'static str),
    /// A `map[string]X` (labels, annotations, resource lists, ConfigMap data).
    Map(&'static MapDef),
    /// A Go slice.
    List(&'static ListDef),
    /// Anything the schema does not describe: objects merge recursively, lists replace.
    Untyped,
}

/// A Go struct: its fields that need more than the fallback, and whether server-side
/// apply treats it as one indivisible value (`+structType=atomic`).
#[derive(Debug, PartialEq, Eq)]
pub struct StructDef {
    pub name: &'static str,
    /// `+structType=atomic`: the struct is owned and replaced as a whole by apply.
    pub atomic: bool,
    pub fields: &'static [Field],
}

/// One field of a struct.
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    /// The JSON name.
    pub name: &'static str,
    pub node: Node,
    /// Go always serialises this field, even in a zero-valued object: a non-pointer
    /// struct, or a slice without `omitempty` (PodSpec.containers). Kubernetes computes
    /// Update ownership by diffing Go-serialised objects, so such a field never appears
    /// or disappears as a whole and its own path never lands in an Update's field set
    /// (`f:spec` has no `.` entry, while a new `f:labels` or `f:ports` does).
    pub always_serialized: bool,
    /// `patchStrategy:"retainKeys"` on a struct field (DeploymentSpec.strategy). Only a
    /// client building a patch acts on it; the server just honours `$retainKeys`.
    pub retain_keys: bool,
}

/// A `map[string]X`.
#[derive(Debug, PartialEq, Eq)]
pub struct MapDef {
    pub values: Node,
    /// `+mapType=atomic` (PodSpec.nodeSelector, ServiceSpec.selector).
    pub atomic: bool,
}

/// A Go slice and the two, independent, ways Kubernetes merges it.
#[derive(Debug, PartialEq, Eq)]
pub struct ListDef {
    pub items: Node,
    /// Strategic merge patch behaviour (Go struct tags).
    pub patch: PatchStrategy,
    /// Server-side apply behaviour (OpenAPI `x-kubernetes-list-type`).
    pub list_type: ListType,
}

/// `patchStrategy` / `patchMergeKey` struct tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchStrategy {
    /// No tag: the patch's list replaces the live list.
    Replace,
    /// `patchStrategy:"merge"`: lists of objects merge by `key`; lists of scalars
    /// (`key: None`, e.g. finalizers) are unioned.
    Merge {
        key: Option<&'static str>,
        /// `patchStrategy:"merge,retainKeys"` (PodSpec.volumes).
        retain_keys: bool,
    },
}

/// `x-kubernetes-list-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Owned and replaced as a whole.
    Atomic,
    /// Scalars, each owned separately, keyed by value (`v:"x"` in managed fields).
    Set,
    /// Objects keyed by `keys` (`k:{"name":"x"}`). A key missing from an item takes its
    /// default from `defaults` (Kubernetes' `+default` marker, e.g. protocol "TCP").
    Map { keys: &'static [&'static str], defaults: &'static [(&'static str, &'static str)] },
}

impl Node {
    /// The node of a child `key` of an object at this node, and whether `key` is a
    /// declared struct field (map keys and scalars are not).
    pub fn child(self, key: &str) -> Node {
        self.child_field(key).0
    }

    /// Like [`Node::child`], plus the declaring [`Field`] when there is one.
    pub fn child_field(self, key: &str) -> (Node, Option<&'static Field>) {
        match self {
            Node::Struct(name) => match struct_def(name).and_then(|def| def.fields.iter().find(|f| f.name == key)) {
                Some(field) => (field.node, Some(field)),
                None => (Node::Untyped, None),
            },
            Node::Map(def) => (def.values, None),
            _ => (Node::Untyped, None),
        }
    }

    /// The node of this list's items; `Untyped` when this is not a list.
    pub fn items(self) -> Node {
        match self {
            Node::List(def) => def.items,
            _ => Node::Untyped,
        }
    }

    /// The list definition, when this node is a list.
    pub fn list(self) -> Option<&'static ListDef> {
        match self {
            Node::List(def) => Some(def),
            _ => None,
        }
    }

    /// Whether server-side apply owns this value as a whole rather than field by field.
    /// Untyped lists are atomic: Kubernetes lists without markers are.
    pub fn is_atomic(self) -> bool {
        match self {
            Node::Scalar => true,
            Node::Struct(name) => struct_def(name).is_some_and(|def| def.atomic),
            Node::Map(def) => def.atomic,
            Node::List(def) => def.list_type == ListType::Atomic,
            Node::Untyped => false,
        }
    }
}

/// The top-level node for objects of `kind` in `api_version`. Unknown kinds get a node
/// that knows only `metadata` (ObjectMeta is the same for every kind); everything else
/// under it falls back to [`Node::Untyped`].
pub fn root(api_version: &str, kind: &str) -> Node {
    Node::Struct(kind_struct(api_version, kind).unwrap_or("Object"))
}

/// Whether the schema describes `kind` in `api_version`. Kubernetes refuses strategic
/// merge patch for kinds it has no Go type for (415); the API server can use this to do
/// the same for custom resources.
pub fn is_known_kind(api_version: &str, kind: &str) -> bool {
    kind_struct(api_version, kind).is_some()
}

/// The node at `path` (JSON field names) under the root of `kind`. A list is
/// transparent: a name after a list node addresses a field of its items, so
/// `["spec", "containers", "ports"]` is Container.ports. Map values are reached by any
/// key (`["metadata", "labels", "app"]`).
pub fn lookup(api_version: &str, kind: &str, path: &[&str]) -> Node {
    path.iter().fold(root(api_version, kind), |node, segment| match node {
        Node::List(def) => def.items.child(segment),
        other => other.child(segment),
    })
}

fn kind_struct(api_version: &str, kind: &str) -> Option<&'static str> {
    let name = match (api_version, kind) {
        ("v1", "Pod") => "Pod",
        ("v1", "Service") => "Service",
        ("v1", "Endpoints") => "Endpoints",
        ("v1", "ConfigMap") => "ConfigMap",
        ("v1", "Secret") => "Secret",
        ("v1", "Namespace") => "Namespace",
        ("v1", "Node") => "NodeObject",
        ("v1", "Event") => "Event",
        ("v1", "ServiceAccount") => "ServiceAccount",
        ("apps/v1", "Deployment") => "Deployment",
        ("apps/v1", "ReplicaSet") => "ReplicaSet",
        ("batch/v1", "Job") => "Job",
        ("networking.k8s.io/v1", "Ingress") => "Ingress",
        ("coordination.k8s.io/v1", "Lease") => "Lease",
        ("discovery.k8s.io/v1", "EndpointSlice") => "EndpointSlice",
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") => "RbacObject",
        _ => return None,
    };
    Some(name)
}

// === Definition helpers ===
//
// Macros rather than const fns: every definition stays a plain constant expression, so
// the nested `&ListDef { .. }` references are promoted to 'static.

macro_rules! scalar {
    ($name:literal) => {
        Field { name: $name, node: Node::Scalar, always_serialized: false, retain_keys: false }
    };
}

/// A field of any node that Go omits when empty (pointer, `omitempty` slice or map).
macro_rules! field {
    ($name:literal, $node:expr) => {
        Field { name: $name, node: $node, always_serialized: false, retain_keys: false }
    };
}

/// A pointer-to-struct field (`*Probe`): absent when unset.
macro_rules! ptr {
    ($name:literal, $ty:literal) => {
        field!($name, Node::Struct($ty))
    };
}

/// A non-pointer struct field (`Spec PodSpec`): always serialised by Go.
macro_rules! value {
    ($name:literal, $ty:literal) => {
        Field { name: $name, node: Node::Struct($ty), always_serialized: true, retain_keys: false }
    };
}

const STRING_MAP: Node = Node::Map(&MapDef { values: Node::Scalar, atomic: false });
const ATOMIC_STRING_MAP: Node = Node::Map(&MapDef { values: Node::Scalar, atomic: true });
const ATOMIC_SCALARS: Node =
    Node::List(&ListDef { items: Node::Scalar, patch: PatchStrategy::Replace, list_type: ListType::Atomic });
/// `patchStrategy:"merge"` + `+listType=set` on a list of strings (finalizers, podCIDRs).
const MERGE_SET: Node = Node::List(&ListDef {
    items: Node::Scalar,
    patch: PatchStrategy::Merge { key: None, retain_keys: false },
    list_type: ListType::Set,
});
/// `+listType=set` without a patch strategy.
const REPLACE_SET: Node =
    Node::List(&ListDef { items: Node::Scalar, patch: PatchStrategy::Replace, list_type: ListType::Set });

/// `+listType=atomic` (or no markers at all) on a list of structs.
macro_rules! atomic_list {
    ($ty:literal) => {
        Node::List(&ListDef { items: Node::Struct($ty), patch: PatchStrategy::Replace, list_type: ListType::Atomic })
    };
}

/// `patchStrategy:"merge" patchMergeKey:"<key>"` + `+listType=map` with `keys`.
macro_rules! merge_list {
    ($ty:literal, $key:literal, [$($k:literal),+]) => {
        merge_list!($ty, $key, [$($k),+], [], false)
    };
    ($ty:literal, $key:literal, [$($k:literal),+], [$(($dk:literal, $dv:literal)),*], $retain:literal) => {
        Node::List(&ListDef {
            items: Node::Struct($ty),
            patch: PatchStrategy::Merge { key: Some($key), retain_keys: $retain },
            list_type: ListType::Map { keys: &[$($k),+], defaults: &[$(($dk, $dv)),*] },
        })
    };
}

/// Declares every struct and the name → definition lookup in one place, so a name can
/// never be declared without being resolvable.
macro_rules! structs {
    ($($name:ident $({$atomic:ident})? [$($field:expr),* $(,)?])*) => {
        $(
            #[allow(non_upper_case_globals)]
            static $name: StructDef = StructDef {
                name: stringify!($name),
                atomic: structs!(@atomic $($atomic)?),
                fields: &[$($field),*],
            };
        )*

        /// The definition of the struct called `name` (as used in [`Node::Struct`]).
        pub fn struct_def(name: &str) -> Option<&'static StructDef> {
            match name {
                $(stringify!($name) => Some(&$name),)*
                _ => None,
            }
        }

        #[cfg(test)]
        const ALL_STRUCTS: &[&StructDef] = &[$(&$name),*];
    };
    (@atomic atomic) => { true };
    (@atomic) => { false };
}

structs! {
    // --- Top-level kinds ---
    Object [scalar!("apiVersion"), scalar!("kind"), value!("metadata", "ObjectMeta")]
    Pod [value!("metadata", "ObjectMeta"), value!("spec", "PodSpec"), value!("status", "PodStatus")]
    Service [value!("metadata", "ObjectMeta"), value!("spec", "ServiceSpec"), value!("status", "ServiceStatus")]
    Endpoints [value!("metadata", "ObjectMeta"), field!("subsets", atomic_list!("EndpointSubset"))]
    ConfigMap [value!("metadata", "ObjectMeta"), field!("data", STRING_MAP), field!("binaryData", STRING_MAP)]
    Secret [value!("metadata", "ObjectMeta"), field!("data", STRING_MAP), field!("stringData", STRING_MAP)]
    Namespace [value!("metadata", "ObjectMeta"), value!("spec", "NamespaceSpec"), value!("status", "NamespaceStatus")]
    NodeObject [value!("metadata", "ObjectMeta"), value!("spec", "NodeSpec"), value!("status", "NodeStatus")]
    Event [
        value!("metadata", "ObjectMeta"),
        value!("involvedObject", "ObjectReference"),
        value!("source", "EventSource"),
        ptr!("series", "EventSeries"),
        ptr!("related", "ObjectReference"),
    ]
    ServiceAccount [
        value!("metadata", "ObjectMeta"),
        field!("secrets", merge_list!("ObjectReference", "name", ["name"])),
        field!("imagePullSecrets", atomic_list!("LocalObjectReference")),
    ]
    Deployment [value!("metadata", "ObjectMeta"), value!("spec", "DeploymentSpec"), value!("status", "DeploymentStatus")]
    ReplicaSet [value!("metadata", "ObjectMeta"), value!("spec", "ReplicaSetSpec"), value!("status", "ReplicaSetStatus")]
    Job [value!("metadata", "ObjectMeta"), value!("spec", "JobSpec"), value!("status", "JobStatus")]
    Ingress [value!("metadata", "ObjectMeta"), value!("spec", "IngressSpec"), value!("status", "IngressStatus")]
    Lease [value!("metadata", "ObjectMeta"), value!("spec", "LeaseSpec")]
    // Role, ClusterRole, RoleBinding, ClusterRoleBinding: `rules` and `subjects` have no
    // list markers (atomic), `roleRef` is a plain struct.
    RbacObject [value!("metadata", "ObjectMeta")]
    EndpointSlice [
        value!("metadata", "ObjectMeta"),
        // `json:"endpoints"` / `json:"ports"` have no omitempty.
        Field { name: "endpoints", node: atomic_list!("Endpoint"), always_serialized: true, retain_keys: false },
        Field { name: "ports", node: atomic_list!("EndpointPort"), always_serialized: true, retain_keys: false },
    ]

    // --- meta/v1 ---
    ObjectMeta [
        field!("labels", STRING_MAP),
        field!("annotations", STRING_MAP),
        field!("finalizers", MERGE_SET),
        field!("ownerReferences", merge_list!("OwnerReference", "uid", ["uid"])),
        field!("managedFields", atomic_list!("ManagedFieldsEntry")),
    ]
    OwnerReference {atomic} []
    ManagedFieldsEntry []
    LabelSelector {atomic} [field!("matchLabels", STRING_MAP), field!("matchExpressions", atomic_list!("LabelSelectorRequirement"))]
    LabelSelectorRequirement [field!("values", ATOMIC_SCALARS)]
    Condition []

    // --- core/v1: pods ---
    PodTemplateSpec [value!("metadata", "ObjectMeta"), value!("spec", "PodSpec")]
    PodSpec [
        field!("volumes", merge_list!("Volume", "name", ["name"], [], true)),
        field!("initContainers", merge_list!("Container", "name", ["name"])),
        // `json:"containers"` has no omitempty.
        Field { name: "containers", node: merge_list!("Container", "name", ["name"]), always_serialized: true, retain_keys: false },
        field!("ephemeralContainers", merge_list!("Container", "name", ["name"])),
        field!("nodeSelector", ATOMIC_STRING_MAP),
        ptr!("securityContext", "PodSecurityContext"),
        field!("imagePullSecrets", merge_list!("LocalObjectReference", "name", ["name"])),
        ptr!("affinity", "Affinity"),
        field!("tolerations", atomic_list!("Toleration")),
        field!("hostAliases", merge_list!("HostAlias", "ip", ["ip"])),
        ptr!("dnsConfig", "PodDNSConfig"),
        field!("readinessGates", atomic_list!("PodReadinessGate")),
        field!("overhead", STRING_MAP),
        field!("topologySpreadConstraints", merge_list!("TopologySpreadConstraint", "topologyKey", ["topologyKey", "whenUnsatisfiable"])),
        ptr!("os", "PodOS"),
        field!("schedulingGates", merge_list!("PodSchedulingGate", "name", ["name"])),
        field!("resourceClaims", merge_list!("PodResourceClaim", "name", ["name"], [], true)),
    ]
    // Also serves EphemeralContainer: its extra field (targetContainerName) is a scalar.
    Container [
        field!("command", ATOMIC_SCALARS),
        field!("args", ATOMIC_SCALARS),
        field!("ports", merge_list!("ContainerPort", "containerPort", ["containerPort", "protocol"], [("protocol", "TCP")], false)),
        field!("envFrom", atomic_list!("EnvFromSource")),
        field!("env", merge_list!("EnvVar", "name", ["name"])),
        value!("resources", "ResourceRequirements"),
        field!("resizePolicy", atomic_list!("ContainerResizePolicy")),
        field!("volumeMounts", merge_list!("VolumeMount", "mountPath", ["mountPath"])),
        field!("volumeDevices", merge_list!("VolumeDevice", "devicePath", ["devicePath"])),
        ptr!("livenessProbe", "Probe"),
        ptr!("readinessProbe", "Probe"),
        ptr!("startupProbe", "Probe"),
        ptr!("lifecycle", "Lifecycle"),
        ptr!("securityContext", "SecurityContext"),
    ]
    ContainerPort []
    VolumeMount []
    VolumeDevice []
    ContainerResizePolicy []
    EnvVar [ptr!("valueFrom", "EnvVarSource")]
    EnvVarSource [
        ptr!("fieldRef", "ObjectFieldSelector"),
        ptr!("resourceFieldRef", "ResourceFieldSelector"),
        ptr!("configMapKeyRef", "ConfigMapKeySelector"),
        ptr!("secretKeyRef", "SecretKeySelector"),
    ]
    ObjectFieldSelector {atomic} []
    ResourceFieldSelector {atomic} []
    ConfigMapKeySelector {atomic} []
    SecretKeySelector {atomic} []
    EnvFromSource [ptr!("configMapRef", "ConfigMapEnvSource"), ptr!("secretRef", "SecretEnvSource")]
    ConfigMapEnvSource []
    SecretEnvSource []
    ResourceRequirements [
        field!("limits", STRING_MAP),
        field!("requests", STRING_MAP),
        // `+listType=map +listMapKey=name` without a patch strategy.
        field!("claims", Node::List(&ListDef {
            items: Node::Struct("ResourceClaim"),
            patch: PatchStrategy::Replace,
            list_type: ListType::Map { keys: &["name"], defaults: &[] },
        })),
    ]
    ResourceClaim []
    Probe [
        ptr!("exec", "ExecAction"),
        ptr!("httpGet", "HTTPGetAction"),
        ptr!("tcpSocket", "TCPSocketAction"),
        ptr!("grpc", "GRPCAction"),
    ]
    ExecAction [field!("command", ATOMIC_SCALARS)]
    HTTPGetAction [field!("httpHeaders", atomic_list!("HTTPHeader"))]
    HTTPHeader []
    TCPSocketAction []
    GRPCAction []
    Lifecycle [ptr!("postStart", "LifecycleHandler"), ptr!("preStop", "LifecycleHandler")]
    LifecycleHandler [
        ptr!("exec", "ExecAction"),
        ptr!("httpGet", "HTTPGetAction"),
        ptr!("tcpSocket", "TCPSocketAction"),
        ptr!("sleep", "SleepAction"),
    ]
    SleepAction []
    SecurityContext [
        ptr!("capabilities", "Capabilities"),
        ptr!("seLinuxOptions", "SELinuxOptions"),
        ptr!("windowsOptions", "WindowsSecurityContextOptions"),
        ptr!("seccompProfile", "SeccompProfile"),
        ptr!("appArmorProfile", "AppArmorProfile"),
    ]
    Capabilities [field!("add", ATOMIC_SCALARS), field!("drop", ATOMIC_SCALARS)]
    SELinuxOptions []
    WindowsSecurityContextOptions []
    SeccompProfile []
    AppArmorProfile []
    PodSecurityContext [
        ptr!("seLinuxOptions", "SELinuxOptions"),
        ptr!("windowsOptions", "WindowsSecurityContextOptions"),
        field!("supplementalGroups", ATOMIC_SCALARS),
        field!("sysctls", atomic_list!("Sysctl")),
        ptr!("seccompProfile", "SeccompProfile"),
        ptr!("appArmorProfile", "AppArmorProfile"),
    ]
    Sysctl []
    // Every volume source is a pointer; the ones not listed fall back to Untyped, which
    // tracks presence the same way.
    Volume [
        ptr!("hostPath", "HostPathVolumeSource"),
        ptr!("emptyDir", "EmptyDirVolumeSource"),
        ptr!("secret", "SecretVolumeSource"),
        ptr!("configMap", "ConfigMapVolumeSource"),
        ptr!("persistentVolumeClaim", "PersistentVolumeClaimVolumeSource"),
        ptr!("projected", "ProjectedVolumeSource"),
        ptr!("downwardAPI", "DownwardAPIVolumeSource"),
        ptr!("csi", "CSIVolumeSource"),
    ]
    HostPathVolumeSource []
    EmptyDirVolumeSource []
    PersistentVolumeClaimVolumeSource []
    SecretVolumeSource [field!("items", atomic_list!("KeyToPath"))]
    ConfigMapVolumeSource [field!("items", atomic_list!("KeyToPath"))]
    KeyToPath []
    ProjectedVolumeSource [field!("sources", atomic_list!("VolumeProjection"))]
    VolumeProjection []
    DownwardAPIVolumeSource [field!("items", atomic_list!("DownwardAPIVolumeFile"))]
    DownwardAPIVolumeFile []
    CSIVolumeSource [field!("volumeAttributes", STRING_MAP), ptr!("nodePublishSecretRef", "LocalObjectReference")]
    LocalObjectReference {atomic} []
    Toleration []
    HostAlias [field!("hostnames", ATOMIC_SCALARS)]
    PodDNSConfig [
        field!("nameservers", ATOMIC_SCALARS),
        field!("searches", ATOMIC_SCALARS),
        field!("options", atomic_list!("PodDNSConfigOption")),
    ]
    PodDNSConfigOption []
    PodReadinessGate []
    PodOS []
    PodSchedulingGate []
    PodResourceClaim []
    TopologySpreadConstraint [ptr!("labelSelector", "LabelSelector"), field!("matchLabelKeys", ATOMIC_SCALARS)]
    Affinity [ptr!("nodeAffinity", "NodeAffinity"), ptr!("podAffinity", "PodAffinity"), ptr!("podAntiAffinity", "PodAffinity")]
    NodeAffinity [
        ptr!("requiredDuringSchedulingIgnoredDuringExecution", "NodeSelector"),
        field!("preferredDuringSchedulingIgnoredDuringExecution", atomic_list!("PreferredSchedulingTerm")),
    ]
    NodeSelector {atomic} [field!("nodeSelectorTerms", atomic_list!("NodeSelectorTerm"))]
    NodeSelectorTerm {atomic} []
    PreferredSchedulingTerm []
    // PodAntiAffinity has the same shape.
    PodAffinity [
        field!("requiredDuringSchedulingIgnoredDuringExecution", atomic_list!("PodAffinityTerm")),
        field!("preferredDuringSchedulingIgnoredDuringExecution", atomic_list!("WeightedPodAffinityTerm")),
    ]
    PodAffinityTerm []
    WeightedPodAffinityTerm []
    PodStatus [
        field!("conditions", merge_list!("PodCondition", "type", ["type"])),
        // patchStrategy merge by ip, but `+listType=atomic`.
        field!("hostIPs", Node::List(&ListDef {
            items: Node::Struct("HostIP"),
            patch: PatchStrategy::Merge { key: Some("ip"), retain_keys: false },
            list_type: ListType::Atomic,
        })),
        field!("podIPs", merge_list!("PodIP", "ip", ["ip"])),
        field!("initContainerStatuses", atomic_list!("ContainerStatus")),
        field!("containerStatuses", atomic_list!("ContainerStatus")),
        field!("ephemeralContainerStatuses", atomic_list!("ContainerStatus")),
        field!("resourceClaimStatuses", merge_list!("PodResourceClaimStatus", "name", ["name"], [], true)),
    ]
    PodCondition []
    HostIP []
    PodIP []
    ContainerStatus []
    PodResourceClaimStatus []

    // --- core/v1: services, endpoints, config ---
    ServiceSpec [
        field!("ports", merge_list!("ServicePort", "port", ["port", "protocol"], [("protocol", "TCP")], false)),
        field!("selector", ATOMIC_STRING_MAP),
        field!("clusterIPs", ATOMIC_SCALARS),
        field!("externalIPs", ATOMIC_SCALARS),
        field!("loadBalancerSourceRanges", ATOMIC_SCALARS),
        field!("ipFamilies", ATOMIC_SCALARS),
        ptr!("sessionAffinityConfig", "SessionAffinityConfig"),
    ]
    ServicePort []
    SessionAffinityConfig [ptr!("clientIP", "ClientIPConfig")]
    ClientIPConfig []
    ServiceStatus [value!("loadBalancer", "LoadBalancerStatus"), field!("conditions", merge_list!("Condition", "type", ["type"]))]
    LoadBalancerStatus [field!("ingress", atomic_list!("LoadBalancerIngress"))]
    LoadBalancerIngress []
    EndpointSubset [
        field!("addresses", atomic_list!("EndpointAddress")),
        field!("notReadyAddresses", atomic_list!("EndpointAddress")),
        field!("ports", atomic_list!("EndpointPortV1")),
    ]
    EndpointAddress {atomic} []
    EndpointPortV1 {atomic} []
    ObjectReference {atomic} []
    EventSource []
    EventSeries []

    // --- core/v1: namespaces, nodes ---
    NamespaceSpec [field!("finalizers", ATOMIC_SCALARS)]
    NamespaceStatus [field!("conditions", merge_list!("NamespaceCondition", "type", ["type"]))]
    NamespaceCondition []
    NodeSpec [
        field!("podCIDRs", MERGE_SET),
        field!("taints", atomic_list!("Taint")),
        ptr!("configSource", "NodeConfigSource"),
    ]
    Taint []
    NodeConfigSource []
    NodeStatus [
        field!("capacity", STRING_MAP),
        field!("allocatable", STRING_MAP),
        field!("conditions", merge_list!("NodeCondition", "type", ["type"])),
        field!("addresses", merge_list!("NodeAddress", "type", ["type"])),
        value!("daemonEndpoints", "NodeDaemonEndpoints"),
        value!("nodeInfo", "NodeSystemInfo"),
        field!("images", atomic_list!("ContainerImage")),
        field!("volumesInUse", ATOMIC_SCALARS),
        field!("volumesAttached", atomic_list!("AttachedVolume")),
        ptr!("config", "NodeConfigStatus"),
    ]
    NodeCondition []
    NodeAddress []
    NodeDaemonEndpoints [value!("kubeletEndpoint", "DaemonEndpoint")]
    DaemonEndpoint []
    NodeSystemInfo []
    ContainerImage []
    AttachedVolume []
    NodeConfigStatus []

    // --- apps/v1 ---
    DeploymentSpec [
        ptr!("selector", "LabelSelector"),
        value!("template", "PodTemplateSpec"),
        Field { name: "strategy", node: Node::Struct("DeploymentStrategy"), always_serialized: true, retain_keys: true },
    ]
    DeploymentStrategy [ptr!("rollingUpdate", "RollingUpdateDeployment")]
    RollingUpdateDeployment []
    DeploymentStatus [field!("conditions", merge_list!("DeploymentCondition", "type", ["type"]))]
    DeploymentCondition []
    ReplicaSetSpec [ptr!("selector", "LabelSelector"), value!("template", "PodTemplateSpec")]
    ReplicaSetStatus [field!("conditions", merge_list!("ReplicaSetCondition", "type", ["type"]))]
    ReplicaSetCondition []

    // --- batch/v1 ---
    JobSpec [
        ptr!("podFailurePolicy", "PodFailurePolicy"),
        ptr!("successPolicy", "SuccessPolicy"),
        ptr!("selector", "LabelSelector"),
        value!("template", "PodTemplateSpec"),
    ]
    PodFailurePolicy [field!("rules", atomic_list!("PodFailurePolicyRule"))]
    PodFailurePolicyRule []
    SuccessPolicy [field!("rules", atomic_list!("SuccessPolicyRule"))]
    SuccessPolicyRule []
    JobStatus [
        // patchStrategy merge by type, but `+listType=atomic`.
        field!("conditions", Node::List(&ListDef {
            items: Node::Struct("JobCondition"),
            patch: PatchStrategy::Merge { key: Some("type"), retain_keys: false },
            list_type: ListType::Atomic,
        })),
        ptr!("uncountedTerminatedPods", "UncountedTerminatedPods"),
    ]
    JobCondition []
    UncountedTerminatedPods [field!("succeeded", REPLACE_SET), field!("failed", REPLACE_SET)]

    // --- networking.k8s.io/v1 ---
    IngressSpec [
        ptr!("defaultBackend", "IngressBackend"),
        field!("tls", atomic_list!("IngressTLS")),
        field!("rules", atomic_list!("IngressRule")),
    ]
    IngressBackend [ptr!("service", "IngressServiceBackend"), ptr!("resource", "TypedLocalObjectReference")]
    IngressServiceBackend [value!("port", "ServiceBackendPort")]
    ServiceBackendPort []
    TypedLocalObjectReference {atomic} []
    IngressTLS [field!("hosts", ATOMIC_SCALARS)]
    IngressRule []
    IngressStatus [value!("loadBalancer", "IngressLoadBalancerStatus")]
    IngressLoadBalancerStatus [field!("ingress", atomic_list!("IngressLoadBalancerIngress"))]
    IngressLoadBalancerIngress []

    // --- coordination.k8s.io/v1 ---
    LeaseSpec []

    // --- discovery.k8s.io/v1 ---
    Endpoint [
        field!("addresses", REPLACE_SET),
        value!("conditions", "EndpointConditions"),
        ptr!("targetRef", "ObjectReference"),
        field!("deprecatedTopology", STRING_MAP),
        ptr!("hints", "EndpointHints"),
    ]
    EndpointConditions []
    EndpointHints [field!("forZones", atomic_list!("ForZone"))]
    ForZone []
    EndpointPort []
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(api_version: &str, kind: &str, path: &[&str]) -> &'static ListDef {
        match lookup(api_version, kind, path) {
            Node::List(def) => def,
            other => panic!("{path:?} is {other:?}, not a list"),
        }
    }

    fn merge_key(def: &ListDef) -> Option<&'static str> {
        match def.patch {
            PatchStrategy::Merge { key, .. } => key,
            PatchStrategy::Replace => None,
        }
    }

    fn map_keys(def: &ListDef) -> Vec<&'static str> {
        match def.list_type {
            ListType::Map { keys, .. } => keys.to_vec(),
            _ => Vec::new(),
        }
    }

    /// A dangling `Node::Struct("Name")` would silently degrade to Untyped.
    #[test]
    fn every_referenced_struct_is_defined() {
        fn check(node: Node, from: &str) {
            match node {
                Node::Struct(name) => assert!(struct_def(name).is_some(), "{from} refers to undefined {name}"),
                Node::List(def) => check(def.items, from),
                Node::Map(def) => check(def.values, from),
                Node::Scalar | Node::Untyped => {}
            }
        }
        for def in ALL_STRUCTS {
            for field in def.fields {
                check(field.node, &format!("{}.{}", def.name, field.name));
            }
        }
    }

    #[test]
    fn containers_merge_by_name_and_are_a_map_list() {
        for path in [&["spec", "containers"][..], &["spec", "initContainers"], &["spec", "ephemeralContainers"]] {
            let def = list("v1", "Pod", path);
            assert_eq!(merge_key(def), Some("name"), "{path:?}");
            assert_eq!(map_keys(def), ["name"], "{path:?}");
        }
        let template = list("apps/v1", "Deployment", &["spec", "template", "spec", "containers"]);
        assert_eq!(merge_key(template), Some("name"));
    }

    #[test]
    fn container_ports_merge_by_container_port_and_key_on_port_and_protocol() {
        let def = list("v1", "Pod", &["spec", "containers", "ports"]);
        assert_eq!(merge_key(def), Some("containerPort"));
        assert_eq!(
            def.list_type,
            ListType::Map { keys: &["containerPort", "protocol"], defaults: &[("protocol", "TCP")] }
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let def = list("v1", "Service", &["spec", "ports"]);
        assert_eq!(merge_key(def), Some("port"));
        assert_eq!(map_keys(def), ["port", "protocol"]);
    }

    #[test]
    fn container_list_fields() {
        assert_eq!(merge_key(list("v1", "Pod", &["spec", "containers", "env"])), Some("name"));
        assert_eq!(merge_key(list("v1", "Pod", &["spec", "containers", "volumeMounts"])), Some("mountPath"));
        assert_eq!(list("v1", "Pod", &["spec", "containers", "envFrom"]).list_type, ListType::Atomic);
        assert_eq!(list("v1", "Pod", &["spec", "containers", "command"]).patch, PatchStrategy::Replace);
    }

    #[test]
    fn pod_spec_list_fields() {
        let volumes = list("v1", "Pod", &["spec", "volumes"]);
        assert_eq!(volumes.patch, PatchStrategy::Merge { key: Some("name"), retain_keys: true });
        let tolerations = list("v1", "Pod", &["spec", "tolerations"]);
        assert_eq!((tolerations.patch, tolerations.list_type), (PatchStrategy::Replace, ListType::Atomic));
        assert_eq!(merge_key(list("v1", "Pod", &["spec", "imagePullSecrets"])), Some("name"));
        assert_eq!(merge_key(list("v1", "Pod", &["spec", "hostAliases"])), Some("ip"));
        let spread = list("v1", "Pod", &["spec", "topologySpreadConstraints"]);
        assert_eq!(merge_key(spread), Some("topologyKey"));
        assert_eq!(map_keys(spread), ["topologyKey", "whenUnsatisfiable"]);
        assert!(lookup("v1", "Pod", &["spec", "nodeSelector"]).is_atomic());
    }

    #[test]
    fn metadata_lists() {
        let finalizers = list("v1", "ConfigMap", &["metadata", "finalizers"]);
        assert_eq!((merge_key(finalizers), finalizers.list_type), (None, ListType::Set));
        assert!(matches!(finalizers.patch, PatchStrategy::Merge { .. }));
        let owners = list("apps/v1", "ReplicaSet", &["metadata", "ownerReferences"]);
        assert_eq!(merge_key(owners), Some("uid"));
        assert!(owners.items.is_atomic());
        // Unknown kinds still know ObjectMeta.
        assert_eq!(merge_key(list("example.com/v1", "Widget", &["metadata", "ownerReferences"])), Some("uid"));
    }

    #[test]
    fn status_conditions_and_node_lists() {
        for (api_version, kind) in [("v1", "Pod"), ("v1", "Node"), ("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet")]
        {
            assert_eq!(merge_key(list(api_version, kind, &["status", "conditions"])), Some("type"), "{kind}");
        }
        let job = list("batch/v1", "Job", &["status", "conditions"]);
        assert_eq!((merge_key(job), job.list_type), (Some("type"), ListType::Atomic));
        assert_eq!(merge_key(list("v1", "Node", &["status", "addresses"])), Some("type"));
        assert_eq!(list("v1", "Node", &["spec", "taints"]).list_type, ListType::Atomic);
        assert_eq!(list("v1", "Node", &["spec", "podCIDRs"]).list_type, ListType::Set);
    }

    #[test]
    fn atomic_structs_and_retain_keys() {
        assert!(lookup("apps/v1", "Deployment", &["spec", "selector"]).is_atomic());
        assert!(!lookup("apps/v1", "Deployment", &["spec", "template"]).is_atomic());
        let (_, strategy) = lookup("apps/v1", "Deployment", &["spec"]).child_field("strategy");
        assert!(strategy.is_some_and(|f| f.retain_keys));
    }

    #[test]
    fn unknown_fields_and_kinds_fall_back_to_untyped() {
        assert_eq!(lookup("v1", "Pod", &["spec", "noSuchField"]), Node::Untyped);
        assert_eq!(lookup("example.com/v1", "Widget", &["spec", "items"]), Node::Untyped);
        assert!(!is_known_kind("example.com/v1", "Widget"));
        assert!(is_known_kind("discovery.k8s.io/v1", "EndpointSlice"));
        // The group matters: a Deployment in another group is not apps/v1's.
        assert!(!is_known_kind("extensions/v1beta1", "Deployment"));
        assert_eq!(lookup("v1", "ConfigMap", &["data", "any-key"]), Node::Scalar);
    }
}
