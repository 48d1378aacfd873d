//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` requests.
//!
//! kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever
//! columns the server returns, so the columns, their order, the cell values and the
//! human-readable ages must be the ones kube-apiserver computes in
//! `pkg/printers/internalversion/printers.go`. This module ports those printers for the kinds rk
//! serves, reading the versioned JSON object directly instead of converting to internal types.
//!
//! ```text
//!   objects ──► printer for kind ──► rows { cells, conditions }
//!                  │                         │
//!   columns ◄──────┘        include_object ──┴──► row.object: null | PartialObjectMetadata | object
//! ```
//!
//! Like kube-apiserver, every table carries all columns, the `-o wide` ones included (priority
//! 1): kube-apiserver always prints with `Wide: true` and lets kubectl hide priority-1 columns.
//! Kinds without a printer get the apiserver's default convertor columns, `Name` and
//! `Created At`, which is what `kubectl get clusterroles` shows against a real cluster.

use serde_json::{Map, Value, json};

use super::selector::LabelSelector;

/// What each row's `object` holds (`?includeObject=`; kubectl asks for `Metadata` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `object: null`.
    None,
    /// A `PartialObjectMetadata` carrying the object's full `metadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; the empty string means the default.
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "None" => Some(IncludeObject::None),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// Builds the `Table` for `objects`, all of `kind`, as of `now_unix_secs`.
///
/// The returned `metadata` is empty; a list handler should copy `resourceVersion` (and
/// `continue`) into it, as kube-apiserver copies the list's metadata.
pub fn table_for(kind: &str, objects: &[Value], now_unix_secs: i64, include_object: IncludeObject) -> Value {
    let now = i128::from(now_unix_secs) * NANOS_PER_SECOND;
    let (columns, printer) = printer_for(kind);
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let printed = printer(object, now);
            let mut row = Map::new();
            row.insert("cells".to_string(), Value::Array(printed.cells));
            if let Some(conditions) = printed.conditions {
                row.insert("conditions".to_string(), conditions);
            }
            row.insert("object".to_string(), row_object(object, include_object));
            Value::Object(row)
        })
        .collect();
    let column_definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

/// Kubernetes' `duration.HumanDuration`: two or three significant figures, e.g. `45s`, `3m20s`,
/// `10m`, `3h5m`, `20h`, `5d3h`, `300d`, `2y100d`, `9y`. Negative durations of up to a second
/// (clock skew) print as `0s`; anything more negative prints `<invalid>`.
pub fn human_duration(seconds: i64) -> String {
    human_duration_nanos(i128::from(seconds) * NANOS_PER_SECOND)
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_MINUTE: i128 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i128 = 60 * NANOS_PER_MINUTE;

/// `HumanDuration` on nanoseconds, so sub-second timestamps truncate exactly as in Go.
fn human_duration_nanos(d: i128) -> String {
    let seconds = d / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / NANOS_PER_MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / NANOS_PER_HOUR;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{days}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

// === Columns ===

/// One `TableColumnDefinition`.
struct Column {
    name: &'static str,
    /// The OpenAPI type: `string`, `integer`, `boolean` or `date`.
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    /// 0 for default columns, 1 for the `-o wide` ones.
    priority: i32,
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column { name, kind, format: "", description, priority: 0 }
}

const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column { name, kind, format: "", description, priority: 1 }
}

const fn name_col() -> Column {
    Column { name: "Name", kind: "string", format: "name", description: doc::OBJECT_META_NAME, priority: 0 }
}

const fn age_col() -> Column {
    col("Age", "string", doc::OBJECT_META_CREATION)
}

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

/// Descriptions kube-apiserver takes from the API types' swagger docs. Copied from the OpenAPI
/// descriptions of the same fields (k8s-openapi 0.29, v1.33), which come from the same Go
/// comments. Deployment and ReplicaSet use apps/v1 text where Kubernetes quotes the older
/// extensions/v1beta1 wording; kubectl never prints descriptions.
mod doc {
    pub const OBJECT_META_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub const OBJECT_META_CREATION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    pub const POD_STATUS_POD_IP: &str =
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
    pub const POD_SPEC_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub const POD_STATUS_NOMINATED: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
    pub const POD_SPEC_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
    pub const RS_SPEC_REPLICAS: &str = "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub const RS_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub const RS_STATUS_READY: &str =
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.";
    pub const RS_SPEC_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const DEPLOY_STATUS_UPDATED: &str =
        "Total number of non-terminating pods targeted by this deployment that have the desired template spec.";
    pub const DEPLOY_STATUS_AVAILABLE: &str = "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.";
    pub const DEPLOY_SPEC_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";
    pub const JOB_STATUS_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
    pub const JOB_SPEC_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const SVC_SPEC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub const SVC_SPEC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SVC_SPEC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
    pub const SVC_SPEC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SVC_SPEC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
    pub const ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
    pub const NODE_INFO_KUBELET: &str = "Kubelet Version reported by the node.";
    pub const NODE_STATUS_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    pub const NODE_INFO_OS_IMAGE: &str =
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub const NODE_INFO_KERNEL: &str =
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub const NODE_INFO_RUNTIME: &str =
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
    pub const EVENT_LAST_TS: &str = "The time at which the most recent occurrence of this event was recorded.";
    pub const EVENT_TYPE: &str = "Type of this event (Normal, Warning), new types could be added in the future";
    pub const EVENT_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
    pub const EVENT_INVOLVED: &str = "The object that this event is about.";
    pub const OBJREF_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
    pub const EVENT_SOURCE: &str =
        "The component reporting this event. Should be a short machine understandable string.";
    pub const EVENT_MESSAGE: &str = "A human-readable description of the status of this operation.";
    pub const EVENT_FIRST_TS: &str =
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub const EVENT_COUNT: &str = "The number of times this event has occurred.";
    pub const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
    pub const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
    pub const CONFIGMAP_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
    pub const SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
    pub const BINDING_ROLE_REF: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
    pub const BINDING_SUBJECTS: &str = "Subjects holds references to the objects the role applies to.";
    pub const LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";
    pub const SLICE_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type.";
    pub const SLICE_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.";
    pub const SLICE_ENDPOINTS: &str =
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";
    pub const DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const DS_READY: &str = "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.";
    pub const DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
    pub const DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
    pub const POD_SPEC_NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
    pub const DS_SPEC_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const CJ_SCHEDULE: &str = "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
    pub const CJ_TIMEZONE: &str = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
    pub const CJ_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
    pub const CJ_ACTIVE: &str = "A list of pointers to currently running jobs.";
    pub const CJ_LAST_SCHEDULE: &str = "Information when was the last time the job was successfully scheduled.";
}

const POD_COLUMNS: &[Column] = &[
    name_col(),
    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", "The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    age_col(),
    wide("IP", "string", doc::POD_STATUS_POD_IP),
    wide("Node", "string", doc::POD_SPEC_NODE_NAME),
    wide("Nominated Node", "string", doc::POD_STATUS_NOMINATED),
    wide("Readiness Gates", "string", doc::POD_SPEC_READINESS_GATES),
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    name_col(),
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", doc::DEPLOY_STATUS_UPDATED),
    col("Available", "string", doc::DEPLOY_STATUS_AVAILABLE),
    age_col(),
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide("Selector", "string", doc::DEPLOY_SPEC_SELECTOR),
];

const REPLICA_SET_COLUMNS: &[Column] = &[
    name_col(),
    col("Desired", "integer", doc::RS_SPEC_REPLICAS),
    col("Current", "integer", doc::RS_STATUS_REPLICAS),
    col("Ready", "integer", doc::RS_STATUS_READY),
    age_col(),
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide("Selector", "string", doc::RS_SPEC_SELECTOR),
];

const STATEFUL_SET_COLUMNS: &[Column] = &[
    name_col(),
    col("Ready", "string", "Number of the pod with ready state"),
    age_col(),
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
];

const DAEMON_SET_COLUMNS: &[Column] = &[
    name_col(),
    col("Desired", "integer", doc::DS_DESIRED),
    col("Current", "integer", doc::DS_CURRENT),
    col("Ready", "integer", doc::DS_READY),
    col("Up-to-date", "integer", doc::DS_UPDATED),
    col("Available", "integer", doc::DS_AVAILABLE),
    col("Node Selector", "string", doc::POD_SPEC_NODE_SELECTOR),
    age_col(),
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide("Selector", "string", doc::DS_SPEC_SELECTOR),
];

const JOB_COLUMNS: &[Column] = &[
    name_col(),
    col("Status", "string", "Status of the job."),
    col("Completions", "string", doc::JOB_STATUS_SUCCEEDED),
    col("Duration", "string", "Time required to complete the job."),
    age_col(),
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide("Selector", "string", doc::JOB_SPEC_SELECTOR),
];

const CRON_JOB_COLUMNS: &[Column] = &[
    name_col(),
    col("Schedule", "string", doc::CJ_SCHEDULE),
    col("Timezone", "string", doc::CJ_TIMEZONE),
    col("Suspend", "boolean", doc::CJ_SUSPEND),
    col("Active", "integer", doc::CJ_ACTIVE),
    col("Last Schedule", "string", doc::CJ_LAST_SCHEDULE),
    age_col(),
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide("Selector", "string", doc::JOB_SPEC_SELECTOR),
];

const SERVICE_COLUMNS: &[Column] = &[
    name_col(),
    col("Type", "string", doc::SVC_SPEC_TYPE),
    col("Cluster-IP", "string", doc::SVC_SPEC_CLUSTER_IP),
    col("External-IP", "string", doc::SVC_SPEC_EXTERNAL_IPS),
    col("Port(s)", "string", doc::SVC_SPEC_PORTS),
    age_col(),
    wide("Selector", "string", doc::SVC_SPEC_SELECTOR),
];

const ENDPOINTS_COLUMNS: &[Column] = &[name_col(), col("Endpoints", "string", doc::ENDPOINTS_SUBSETS), age_col()];

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    name_col(),
    col("AddressType", "string", doc::SLICE_ADDRESS_TYPE),
    col("Ports", "string", doc::SLICE_PORTS),
    col("Endpoints", "string", doc::SLICE_ENDPOINTS),
    age_col(),
];

const CONFIG_MAP_COLUMNS: &[Column] = &[name_col(), col("Data", "string", doc::CONFIGMAP_DATA), age_col()];

const SECRET_COLUMNS: &[Column] =
    &[name_col(), col("Type", "string", doc::SECRET_TYPE), col("Data", "string", doc::SECRET_DATA), age_col()];

const NAMESPACE_COLUMNS: &[Column] = &[name_col(), col("Status", "string", "The status of the namespace"), age_col()];

const NODE_COLUMNS: &[Column] = &[
    name_col(),
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    age_col(),
    col("Version", "string", doc::NODE_INFO_KUBELET),
    wide("Internal-IP", "string", doc::NODE_STATUS_ADDRESSES),
    wide("External-IP", "string", doc::NODE_STATUS_ADDRESSES),
    wide("OS-Image", "string", doc::NODE_INFO_OS_IMAGE),
    wide("Kernel-Version", "string", doc::NODE_INFO_KERNEL),
    wide("Container-Runtime", "string", doc::NODE_INFO_RUNTIME),
];

const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", doc::EVENT_LAST_TS),
    col("Type", "string", doc::EVENT_TYPE),
    col("Reason", "string", doc::EVENT_REASON),
    col("Object", "string", doc::EVENT_INVOLVED),
    wide("Subobject", "string", doc::OBJREF_FIELD_PATH),
    wide("Source", "string", doc::EVENT_SOURCE),
    col("Message", "string", doc::EVENT_MESSAGE),
    wide("First Seen", "string", doc::EVENT_FIRST_TS),
    wide("Count", "string", doc::EVENT_COUNT),
    Column { name: "Name", kind: "string", format: "name", description: doc::OBJECT_META_NAME, priority: 1 },
];

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[name_col(), col("Secrets", "string", doc::SA_SECRETS), age_col()];

const LEASE_COLUMNS: &[Column] = &[name_col(), col("Holder", "string", doc::LEASE_HOLDER), age_col()];

const INGRESS_COLUMNS: &[Column] = &[
    name_col(),
    col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
    col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
    col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
    col("Ports", "string", "Ports of TLS configurations that open"),
    age_col(),
];

/// `rest.defaultTableConvertor`, used by kube-apiserver for kinds without a printer.
const DEFAULT_COLUMNS: &[Column] = &[name_col(), col("Created At", "date", doc::OBJECT_META_CREATION)];
const BINDING_COLUMNS: &[Column] = &[
    name_col(),
    col("Role", "string", doc::BINDING_ROLE_REF),
    age_col(),
    wide("Users", "string", doc::BINDING_SUBJECTS),
    wide("Groups", "string", doc::BINDING_SUBJECTS),
    wide("ServiceAccounts", "string", doc::BINDING_SUBJECTS),
];

// === Printers ===

/// One printed row: the cells, and the row conditions kube-apiserver adds for finished pods.
struct Printed {
    cells: Vec<Value>,
    conditions: Option<Value>,
}

impl From<Vec<Value>> for Printed {
    fn from(cells: Vec<Value>) -> Self {
        Printed { cells, conditions: None }
    }
}

type Printer = fn(&Value, i128) -> Printed;

fn printer_for(kind: &str) -> (&'static [Column], Printer) {
    match kind {
        "Pod" => (POD_COLUMNS, print_pod),
        "Deployment" => (DEPLOYMENT_COLUMNS, print_deployment),
        "ReplicaSet" => (REPLICA_SET_COLUMNS, print_replica_set),
        "StatefulSet" => (STATEFUL_SET_COLUMNS, print_stateful_set),
        "DaemonSet" => (DAEMON_SET_COLUMNS, print_daemon_set),
        "Job" => (JOB_COLUMNS, print_job),
        "CronJob" => (CRON_JOB_COLUMNS, print_cron_job),
        "Service" => (SERVICE_COLUMNS, print_service),
        "Endpoints" => (ENDPOINTS_COLUMNS, print_endpoints),
        "EndpointSlice" => (ENDPOINT_SLICE_COLUMNS, print_endpoint_slice),
        "ConfigMap" => (CONFIG_MAP_COLUMNS, print_config_map),
        "Secret" => (SECRET_COLUMNS, print_secret),
        "Namespace" => (NAMESPACE_COLUMNS, print_namespace),
        "Node" => (NODE_COLUMNS, print_node),
        "Event" => (EVENT_COLUMNS, print_event),
        "ServiceAccount" => (SERVICE_ACCOUNT_COLUMNS, print_service_account),
        "Lease" => (LEASE_COLUMNS, print_lease),
        "RoleBinding" | "ClusterRoleBinding" => (BINDING_COLUMNS, print_binding),
        "Ingress" => (INGRESS_COLUMNS, print_ingress),
        _ => (DEFAULT_COLUMNS, print_default),
    }
}

fn row_object(object: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => object.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

// --- JSON accessors: absent or mistyped fields read as Go's zero values ---

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn int(value: &Value, pointer: &str) -> i64 {
    value.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn flag(value: &Value, pointer: &str) -> bool {
    value.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

fn list<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn object_len(value: &Value, pointer: &str) -> usize {
    value.pointer(pointer).and_then(Value::as_object).map_or(0, Map::len)
}

fn is_set(value: &Value, pointer: &str) -> bool {
    value.pointer(pointer).is_some_and(|v| !v.is_null())
}

fn name(object: &Value) -> Value {
    Value::from(text(object, "/metadata/name"))
}

/// `translateTimestampSince`: the age of a timestamp, or `<unknown>` if unset.
fn since(object: &Value, pointer: &str, now: i128) -> String {
    match timestamp(object, pointer) {
        Some(t) => human_duration_nanos(now - t),
        None => "<unknown>".to_string(),
    }
}

fn age(object: &Value, now: i128) -> Value {
    Value::from(since(object, "/metadata/creationTimestamp", now))
}

/// A `metav1.Time`/`MicroTime` field in nanoseconds since the epoch; `None` when unset, null or
/// unparsable (Go's zero time).
fn timestamp(object: &Value, pointer: &str) -> Option<i128> {
    object.pointer(pointer).and_then(Value::as_str).and_then(parse_rfc3339)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into nanoseconds since the epoch.
fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut pos = 19;
    let mut nanos: i128 = 0;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        let fraction = b.get(start..pos)?;
        if fraction.is_empty() {
            return None;
        }
        for (i, d) in fraction.iter().take(9).enumerate() {
            nanos += i128::from(d - b'0') * 10i128.pow(8 - i as u32);
        }
    }
    let offset_seconds: i64 = match b.get(pos..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |x: &u8, y: &u8| -> Option<i64> {
                (x.is_ascii_digit() && y.is_ascii_digit()).then(|| i64::from((x - b'0') * 10 + (y - b'0')))
            };
            let offset = two(h1, h2)? * 3600 + two(m1, m2)? * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(i128::from(seconds) * NANOS_PER_SECOND + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `time.Time.UTC().Format(time.RFC3339)` of nanoseconds since the epoch.
pub(crate) fn format_rfc3339(nanos: i128) -> String {
    let seconds = i64::try_from(nanos.div_euclid(NANOS_PER_SECOND)).unwrap_or(0);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let rem = seconds.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `layoutContainerCells`: names and images, comma-joined.
fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// `labels.FormatLabels`: sorted `k=v` pairs, or `<none>`.
fn format_labels(object: &Value, pointer: &str) -> String {
    let Some(map) = object.pointer(pointer).and_then(Value::as_object) else {
        return "<none>".to_string();
    };
    let mut pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs.join(",")
}

/// `metav1.FormatLabelSelector`: `<none>` for a selector that prints empty, `<error>` for an
/// invalid one.
fn format_label_selector(object: &Value, pointer: &str) -> String {
    let selector = object.pointer(pointer).unwrap_or(&Value::Null);
    match LabelSelector::from_label_selector_json(selector) {
        Ok(s) if s.to_query_string().is_empty() => "<none>".to_string(),
        Ok(s) => s.to_query_string(),
        Err(_) => "<error>".to_string(),
    }
}

fn condition_status<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a str> {
    conditions.iter().find(|c| text(c, "/type") == kind).map(|c| text(c, "/status"))
}

// --- Pod ---

fn print_pod(pod: &Value, now: i128) -> Printed {
    let phase = text(pod, "/status/phase");
    let mut reason = phase.to_string();
    if !text(pod, "/status/reason").is_empty() {
        reason = text(pod, "/status/reason").to_string();
    }
    let conditions = list(pod, "/status/conditions");
    if conditions.iter().any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated") {
        reason = "SchedulingGated".to_string();
    }

    let row_conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed.",
        }])),
        _ => None,
    };

    // Sidecars (init containers with restartPolicy Always) count towards READY and RESTARTS.
    let init_specs = list(pod, "/spec/initContainers");
    let is_sidecar =
        |name: &str| init_specs.iter().any(|c| text(c, "/name") == name && text(c, "/restartPolicy") == "Always");
    let total = list(pod, "/spec/containers").len()
        + init_specs.iter().filter(|c| text(c, "/restartPolicy") == "Always").count();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<i128> = None;
    let mut last_sidecar_restart: Option<i128> = None;
    let later = |current: Option<i128>, candidate: Option<i128>| match (current, candidate) {
        (Some(c), Some(t)) if t > c => Some(t),
        (None, Some(t)) => Some(t),
        _ => current,
    };

    let init_statuses = list(pod, "/status/initContainerStatuses");
    let mut initializing = false;
    for (i, status) in init_statuses.iter().enumerate() {
        let count = int(status, "/restartCount");
        restarts += count;
        let finished = timestamp(status, "/lastState/terminated/finishedAt");
        if is_set(status, "/lastState/terminated") {
            last_restart = later(last_restart, finished);
        }
        let sidecar = is_sidecar(text(status, "/name"));
        if sidecar {
            sidecar_restarts += count;
            if is_set(status, "/lastState/terminated") {
                last_sidecar_restart = later(last_sidecar_restart, finished);
            }
        }
        let terminated = is_set(status, "/state/terminated");
        if terminated && int(status, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && flag(status, "/started") {
            if flag(status, "/ready") {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = text(status, "/state/waiting/reason");
        if terminated {
            let terminated_reason = text(status, "/state/terminated/reason");
            reason = if terminated_reason.is_empty() {
                let signal = int(status, "/state/terminated/signal");
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int(status, "/state/terminated/exitCode"))
                }
            } else {
                format!("Init:{terminated_reason}")
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = condition_status(conditions, "Initialized") == Some("True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(status, "/restartCount");
            if is_set(status, "/lastState/terminated") {
                last_restart = later(last_restart, timestamp(status, "/lastState/terminated/finishedAt"));
            }
            let waiting_reason = text(status, "/state/waiting/reason");
            let terminated = is_set(status, "/state/terminated");
            let terminated_reason = text(status, "/state/terminated/reason");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated && !terminated_reason.is_empty() {
                reason = terminated_reason.to_string();
            } else if terminated {
                let signal = int(status, "/state/terminated/signal");
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int(status, "/state/terminated/exitCode"))
                };
            } else if flag(status, "/ready") && is_set(status, "/state/running") {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" && has_running {
            reason = if condition_status(conditions, "Ready") == Some("True") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = is_set(pod, "/metadata/deletionTimestamp");
    if deleting && text(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration_nanos(now - t)),
        _ => restarts.to_string(),
    };

    let none_if_empty = |s: &str| if s.is_empty() { "<none>".to_string() } else { s.to_string() };
    let pod_ip = match pod.pointer("/status/podIPs/0/ip").and_then(Value::as_str) {
        Some(ip) => ip,
        None => text(pod, "/status/podIP"),
    };
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|gate| condition_status(conditions, text(gate, "/conditionType")) == Some("True"))
            .count();
        format!("{true_count}/{}", gates.len())
    };

    Printed {
        cells: vec![
            name(pod),
            Value::from(format!("{ready}/{total}")),
            Value::from(reason),
            Value::from(restarts_cell),
            age(pod, now),
            Value::from(none_if_empty(pod_ip)),
            Value::from(none_if_empty(text(pod, "/spec/nodeName"))),
            Value::from(none_if_empty(text(pod, "/status/nominatedNodeName"))),
            Value::from(readiness_gates),
        ],
        conditions: row_conditions,
    }
}

// --- workloads ---

/// `spec.replicas`, which the API server defaults to 1 before anything is stored.
fn desired_replicas(object: &Value) -> i64 {
    object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn print_deployment(deployment: &Value, now: i128) -> Printed {
    let (containers, images) = container_cells(list(deployment, "/spec/template/spec/containers"));
    let selector =
        match LabelSelector::from_label_selector_json(deployment.pointer("/spec/selector").unwrap_or(&Value::Null)) {
            Ok(s) => s.to_query_string(),
            Err(_) => "<invalid>".to_string(),
        };
    vec![
        name(deployment),
        Value::from(format!("{}/{}", int(deployment, "/status/readyReplicas"), desired_replicas(deployment))),
        Value::from(int(deployment, "/status/updatedReplicas")),
        Value::from(int(deployment, "/status/availableReplicas")),
        age(deployment, now),
        containers,
        images,
        Value::from(selector),
    ]
    .into()
}

fn print_replica_set(rs: &Value, now: i128) -> Printed {
    let (containers, images) = container_cells(list(rs, "/spec/template/spec/containers"));
    vec![
        name(rs),
        Value::from(desired_replicas(rs)),
        Value::from(int(rs, "/status/replicas")),
        Value::from(int(rs, "/status/readyReplicas")),
        age(rs, now),
        containers,
        images,
        Value::from(format_label_selector(rs, "/spec/selector")),
    ]
    .into()
}

fn print_stateful_set(sts: &Value, now: i128) -> Printed {
    let (containers, images) = container_cells(list(sts, "/spec/template/spec/containers"));
    vec![
        name(sts),
        Value::from(format!("{}/{}", int(sts, "/status/readyReplicas"), desired_replicas(sts))),
        age(sts, now),
        containers,
        images,
    ]
    .into()
}

fn print_daemon_set(ds: &Value, now: i128) -> Printed {
    let (containers, images) = container_cells(list(ds, "/spec/template/spec/containers"));
    vec![
        name(ds),
        Value::from(int(ds, "/status/desiredNumberScheduled")),
        Value::from(int(ds, "/status/currentNumberScheduled")),
        Value::from(int(ds, "/status/numberReady")),
        Value::from(int(ds, "/status/updatedNumberScheduled")),
        Value::from(int(ds, "/status/numberAvailable")),
        Value::from(format_labels(ds, "/spec/template/spec/nodeSelector")),
        age(ds, now),
        containers,
        images,
        Value::from(format_label_selector(ds, "/spec/selector")),
    ]
    .into()
}

fn print_job(job: &Value, now: i128) -> Printed {
    let succeeded = int(job, "/status/succeeded");
    let completions = match job.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => {
            let parallelism = int(job, "/spec/parallelism");
            if parallelism > 1 { format!("{succeeded}/1 of {parallelism}") } else { format!("{succeeded}/1") }
        }
    };
    let duration = match (timestamp(job, "/status/startTime"), timestamp(job, "/status/completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration_nanos(now - start),
        (Some(start), Some(end)) => human_duration_nanos(end - start),
    };
    let conditions = list(job, "/status/conditions");
    let has = |kind: &str| condition_status(conditions, kind) == Some("True");
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if is_set(job, "/metadata/deletionTimestamp") {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (containers, images) = container_cells(list(job, "/spec/template/spec/containers"));
    vec![
        name(job),
        Value::from(status),
        Value::from(completions),
        Value::from(duration),
        age(job, now),
        containers,
        images,
        Value::from(format_label_selector(job, "/spec/selector")),
    ]
    .into()
}

fn print_cron_job(cron_job: &Value, now: i128) -> Printed {
    let last_schedule = if is_set(cron_job, "/status/lastScheduleTime") {
        since(cron_job, "/status/lastScheduleTime", now)
    } else {
        "<none>".to_string()
    };
    let time_zone = cron_job.pointer("/spec/timeZone").and_then(Value::as_str).unwrap_or("<none>");
    let suspend = match cron_job.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let (containers, images) = container_cells(list(cron_job, "/spec/jobTemplate/spec/template/spec/containers"));
    vec![
        name(cron_job),
        Value::from(text(cron_job, "/spec/schedule")),
        Value::from(time_zone),
        Value::from(suspend),
        Value::from(list(cron_job, "/status/active").len()),
        Value::from(last_schedule),
        age(cron_job, now),
        containers,
        images,
        Value::from(format_label_selector(cron_job, "/spec/jobTemplate/spec/selector")),
    ]
    .into()
}

// --- networking ---

/// `loadBalancerStatusStringer` with `wide`: the sorted, de-duplicated ingress IPs/hostnames.
fn load_balancer_addresses(object: &Value, pointer: &str) -> String {
    let mut addresses: Vec<&str> = list(object, pointer)
        .iter()
        .filter_map(|ingress| {
            let ip = text(ingress, "/ip");
            let hostname = text(ingress, "/hostname");
            if !ip.is_empty() {
                Some(ip)
            } else if !hostname.is_empty() {
                Some(hostname)
            } else {
                None
            }
        })
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses.join(",")
}

fn print_service(service: &Value, now: i128) -> Printed {
    // The API server defaults an omitted type to ClusterIP before storing the object.
    let service_type = match text(service, "/spec/type") {
        "" => "ClusterIP",
        other => other,
    };
    let cluster_ip = match service.pointer("/spec/clusterIPs/0").and_then(Value::as_str) {
        Some(ip) => ip,
        None => text(service, "/spec/clusterIP"),
    };
    let cluster_ip = if cluster_ip.is_empty() { "<none>" } else { cluster_ip };
    let external_ips: Vec<&str> = list(service, "/spec/externalIPs").iter().filter_map(Value::as_str).collect();
    let external_ip = match service_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_addresses(service, "/status/loadBalancer/ingress");
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() { Vec::new() } else { lb.split(',').collect() };
                all.extend(external_ips.iter().copied());
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => text(service, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(service, "/spec/ports")
        .iter()
        .map(|port| {
            let protocol = match text(port, "/protocol") {
                "" => "TCP",
                other => other,
            };
            let node_port = int(port, "/nodePort");
            if node_port > 0 {
                format!("{}:{node_port}/{protocol}", int(port, "/port"))
            } else {
                format!("{}/{protocol}", int(port, "/port"))
            }
        })
        .collect();
    let ports = if ports.is_empty() { "<none>".to_string() } else { ports.join(",") };
    vec![
        name(service),
        Value::from(service_type),
        Value::from(cluster_ip),
        Value::from(external_ip),
        Value::from(ports),
        age(service, now),
        Value::from(format_labels(service, "/spec/selector")),
    ]
    .into()
}

/// `net.JoinHostPort`: brackets around IPv6 literals.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// `formatEndpoints` with all ports: at most three addresses, then `+ N more...`.
fn format_endpoints(endpoints: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list(endpoints, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = list(subset, "/addresses");
        let ports = list(subset, "/ports");
        if ports.is_empty() {
            // Headless services may have addresses without ports.
            count += addresses.len();
            for address in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(text(address, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(join_host_port(text(address, "/ip"), int(port, "/port")));
            }
        }
    }
    let joined = shown.join(",");
    if more { format!("{joined} + {} more...", count - MAX) } else { joined }
}

fn print_endpoints(endpoints: &Value, now: i128) -> Printed {
    vec![name(endpoints), Value::from(format_endpoints(endpoints)), age(endpoints, now)].into()
}

/// `listWithMoreString`.
fn list_with_more(shown: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - max)
    } else if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

fn print_endpoint_slice(slice: &Value, now: i128) -> Printed {
    const MAX: usize = 3;
    let (mut ports, mut more, mut count) = (Vec::new(), false, 0usize);
    for port in list(slice, "/ports") {
        if ports.len() < MAX {
            let label = match (port.get("port").and_then(Value::as_i64), port.get("name").and_then(Value::as_str)) {
                (Some(number), _) => number.to_string(),
                (None, Some(port_name)) => port_name.to_string(),
                (None, None) => "*".to_string(),
            };
            ports.push(label);
        } else if ports.len() == MAX {
            more = true;
        }
        count += 1;
    }
    let ports = list_with_more(&ports, more, count, MAX);

    let (mut addresses, mut more, mut count) = (Vec::new(), false, 0usize);
    for endpoint in list(slice, "/endpoints") {
        for address in list(endpoint, "/addresses") {
            if addresses.len() < MAX {
                addresses.push(address.as_str().unwrap_or_default().to_string());
            } else if addresses.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    let addresses = list_with_more(&addresses, more, count, MAX);
    vec![
        name(slice),
        Value::from(text(slice, "/addressType")),
        Value::from(ports),
        Value::from(addresses),
        age(slice, now),
    ]
    .into()
}

fn print_ingress(ingress: &Value, now: i128) -> Printed {
    const MAX: usize = 3;
    let class = ingress.pointer("/spec/ingressClassName").and_then(Value::as_str).unwrap_or("<none>");
    let rules = list(ingress, "/spec/rules");
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = text(rule, "/host");
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let ports = if list(ingress, "/spec/tls").is_empty() { "80" } else { "80, 443" };
    vec![
        name(ingress),
        Value::from(class),
        Value::from(hosts),
        Value::from(load_balancer_addresses(ingress, "/status/loadBalancer/ingress")),
        Value::from(ports),
        age(ingress, now),
    ]
    .into()
}

// --- configuration and cluster objects ---

fn print_config_map(config_map: &Value, now: i128) -> Printed {
    let entries = object_len(config_map, "/data") + object_len(config_map, "/binaryData");
    vec![name(config_map), Value::from(entries), age(config_map, now)].into()
}

fn print_secret(secret: &Value, now: i128) -> Printed {
    // The internal Secret merges write-only stringData into data, so count the union.
    let mut keys: Vec<&String> = Vec::new();
    for pointer in ["/data", "/stringData"] {
        if let Some(map) = secret.pointer(pointer).and_then(Value::as_object) {
            keys.extend(map.keys());
        }
    }
    keys.sort_unstable();
    keys.dedup();
    // Secrets are defaulted to Opaque before they are stored.
    let secret_type = match text(secret, "/type") {
        "" => "Opaque",
        other => other,
    };
    vec![name(secret), Value::from(secret_type), Value::from(keys.len()), age(secret, now)].into()
}

fn print_namespace(namespace: &Value, now: i128) -> Printed {
    // Namespaces are defaulted to phase Active.
    let phase = match text(namespace, "/status/phase") {
        "" => "Active",
        other => other,
    };
    vec![name(namespace), Value::from(phase), age(namespace, now)].into()
}

fn print_service_account(account: &Value, now: i128) -> Printed {
    vec![name(account), Value::from(list(account, "/secrets").len()), age(account, now)].into()
}

/// kube's printRoleBinding: the role as `Kind/name`, subjects by kind (service accounts
/// as `namespace/name`).
fn print_binding(binding: &Value, now: i128) -> Printed {
    let role = format!("{}/{}", text(binding, "/roleRef/kind"), text(binding, "/roleRef/name"));
    let subjects = list(binding, "/subjects");
    let of = |kind: &str| -> Vec<String> {
        subjects
            .iter()
            .filter(|s| text(s, "/kind") == kind)
            .map(|s| match kind {
                "ServiceAccount" => format!("{}/{}", text(s, "/namespace"), text(s, "/name")),
                _ => text(s, "/name").to_string(),
            })
            .collect()
    };
    vec![
        name(binding),
        Value::from(role),
        age(binding, now),
        Value::from(of("User").join(", ")),
        Value::from(of("Group").join(", ")),
        Value::from(of("ServiceAccount").join(", ")),
    ]
    .into()
}

fn print_lease(lease: &Value, now: i128) -> Printed {
    vec![name(lease), Value::from(text(lease, "/spec/holderIdentity")), age(lease, now)].into()
}

fn print_node(node: &Value, now: i128) -> Printed {
    let mut status: Vec<String> = Vec::new();
    // Only the Ready condition is reported; the last one of a type wins, as in Go's map.
    if let Some(ready) = list(node, "/status/conditions").iter().rev().find(|c| text(c, "/type") == "Ready") {
        status.push(if text(ready, "/status") == "True" { "Ready".to_string() } else { "NotReady".to_string() });
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if flag(node, "/spec/unschedulable") {
        status.push("SchedulingDisabled".to_string());
    }

    let mut roles: Vec<&str> = Vec::new();
    if let Some(labels) = node.pointer("/metadata/labels").and_then(Value::as_object) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role);
                }
            } else if key == "kubernetes.io/role" {
                let role = value.as_str().unwrap_or_default();
                if !role.is_empty() {
                    roles.push(role);
                }
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() { "<none>".to_string() } else { roles.join(",") };

    let address = |kind: &str| {
        list(node, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == kind)
            .map(|a| text(a, "/address").to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let unknown_if_empty = |pointer: &str| match text(node, pointer) {
        "" => "<unknown>".to_string(),
        other => other.to_string(),
    };
    vec![
        name(node),
        Value::from(status.join(",")),
        Value::from(roles),
        age(node, now),
        Value::from(text(node, "/status/nodeInfo/kubeletVersion")),
        Value::from(address("InternalIP")),
        Value::from(address("ExternalIP")),
        Value::from(unknown_if_empty("/status/nodeInfo/osImage")),
        Value::from(unknown_if_empty("/status/nodeInfo/kernelVersion")),
        Value::from(unknown_if_empty("/status/nodeInfo/containerRuntimeVersion")),
    ]
    .into()
}

/// Prints core/v1 and events.k8s.io/v1 events alike: kube-apiserver converts both to the
/// internal Event, whose fields the events API renames (`regarding`, `note`, `deprecated*`).
fn print_event(event: &Value, now: i128) -> Printed {
    let events_api = text(event, "/apiVersion").starts_with("events.k8s.io/");
    let field = |core: &str, new: &str| if events_api { new.to_string() } else { core.to_string() };
    let involved = field("/involvedObject", "/regarding");

    let first_seen = if is_set(event, &field("/firstTimestamp", "/deprecatedFirstTimestamp")) {
        since(event, &field("/firstTimestamp", "/deprecatedFirstTimestamp"), now)
    } else {
        since(event, "/eventTime", now)
    };
    let mut last_seen = if is_set(event, &field("/lastTimestamp", "/deprecatedLastTimestamp")) {
        since(event, &field("/lastTimestamp", "/deprecatedLastTimestamp"), now)
    } else {
        first_seen.clone()
    };
    let mut count = int(event, &field("/count", "/deprecatedCount"));
    if is_set(event, "/series") {
        last_seen = since(event, "/series/lastObservedTime", now);
        count = int(event, "/series/count");
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }

    let kind = text(event, &format!("{involved}/kind")).to_lowercase();
    let involved_name = text(event, &format!("{involved}/name"));
    let target = if involved_name.is_empty() { kind } else { format!("{kind}/{involved_name}") };

    let source = field("/source", "/deprecatedSource");
    let first_non_empty = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { a.to_string() };
    let component = first_non_empty(
        text(event, &format!("{source}/component")),
        text(event, &field("/reportingComponent", "/reportingController")),
    );
    let host = first_non_empty(text(event, &format!("{source}/host")), text(event, "/reportingInstance"));
    let source_cell = if host.is_empty() { component } else { format!("{component}, {host}") };

    vec![
        Value::from(last_seen),
        Value::from(text(event, "/type")),
        Value::from(text(event, "/reason")),
        Value::from(target),
        Value::from(text(event, &format!("{involved}/fieldPath"))),
        Value::from(source_cell),
        Value::from(text(event, &field("/message", "/note")).trim()),
        Value::from(first_seen),
        Value::from(count),
        name(event),
    ]
    .into()
}

/// `rest.defaultTableConvertor`: the name and the creation time in RFC 3339.
fn print_default(object: &Value, _now: i128) -> Printed {
    let created = timestamp(object, "/metadata/creationTimestamp").unwrap_or_else(|| {
        // Go's zero time, 0001-01-01T00:00:00Z.
        i128::from(days_from_civil(1, 1, 1)) * 86_400 * NANOS_PER_SECOND
    });
    vec![name(object), Value::from(format_rfc3339(created))].into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-01T00:00:00Z.
    const NOW: i64 = 1_704_067_200;

    fn ago(seconds: i64) -> String {
        format_rfc3339(i128::from(NOW - seconds) * NANOS_PER_SECOND)
    }

    fn meta(name: &str, created_ago: i64) -> Value {
        json!({"name": name, "namespace": "default", "uid": format!("uid-{name}"), "creationTimestamp": ago(created_ago)})
    }

    fn table(kind: &str, objects: &[Value]) -> Value {
        table_for(kind, objects, NOW, IncludeObject::Metadata)
    }

    fn cells(kind: &str, object: Value) -> Vec<Value> {
        let t = table(kind, &[object]);
        t["rows"][0]["cells"].as_array().expect("cells").clone()
    }

    fn column_names(kind: &str) -> Vec<(String, i64)> {
        table(kind, &[])["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| (c["name"].as_str().expect("name").to_string(), c["priority"].as_i64().expect("priority")))
            .collect()
    }

    fn names(columns: &[(&str, i64)]) -> Vec<(String, i64)> {
        columns.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    // --- HumanDuration ---

    #[test]
    fn human_duration_matches_kubernetes_table() {
        let cases: &[(i64, &str)] = &[
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (45, "45s"),
            (119, "119s"),
            (120, "2m"),
            (121, "2m1s"),
            (330, "5m30s"),
            (599, "9m59s"),
            (600, "10m"),
            (601, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 59 * 60, "47h"),
            (48 * 3600, "2d"),
            (5 * 86_400 + 3 * 3600, "5d3h"),
            (8 * 86_400 - 1, "7d23h"),
            (8 * 86_400, "8d"),
            (300 * 86_400, "300d"),
            (2 * 365 * 86_400 - 1, "729d"),
            (2 * 365 * 86_400, "2y"),
            ((2 * 365 + 100) * 86_400, "2y100d"),
            (8 * 365 * 86_400 - 1, "7y364d"),
            (8 * 365 * 86_400, "8y"),
            (20 * 365 * 86_400, "20y"),
        ];
        for (seconds, want) in cases {
            assert_eq!(human_duration(*seconds), *want, "{seconds}s");
        }
    }

    #[test]
    fn sub_second_timestamps_truncate_like_go() {
        // 1.5 s in the future is still within the tolerated skew; 2.5 s is not.
        assert_eq!(human_duration_nanos(-1_500_000_000), "0s");
        assert_eq!(human_duration_nanos(-2_500_000_000), "<invalid>");
        assert_eq!(human_duration_nanos(1_999_999_999), "1s");
    }

    #[test]
    fn rfc3339_parsing_and_formatting() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), Some(i128::from(NOW) * NANOS_PER_SECOND));
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00.250000Z"),
            Some(i128::from(NOW) * NANOS_PER_SECOND + 250_000_000)
        );
        assert_eq!(parse_rfc3339("2024-01-01T02:00:00+02:00"), Some(i128::from(NOW) * NANOS_PER_SECOND));
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56Z").map(format_rfc3339).as_deref(), Some("2024-02-29T12:34:56Z"));
        for bad in
            ["", "yesterday", "2024-01-01", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z"]
        {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(
            format_rfc3339(i128::from(days_from_civil(1, 1, 1)) * 86_400 * NANOS_PER_SECOND),
            "0001-01-01T00:00:00Z"
        );
    }

    // --- table shape ---

    #[test]
    fn table_envelope_and_column_definitions() {
        let t = table("ConfigMap", &[json!({"metadata": meta("cm", 30), "data": {"a": "1"}})]);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({}));
        let name = &t["columnDefinitions"][0];
        assert_eq!(name["name"], "Name");
        assert_eq!(name["type"], "string");
        assert_eq!(name["format"], "name");
        assert_eq!(name["priority"], 0);
        assert!(name["description"].as_str().expect("text").starts_with("Name must be unique within a namespace."));
        assert_eq!(t["columnDefinitions"][1]["format"], "");
        assert!(t["columnDefinitions"][2]["description"].as_str().expect("text").starts_with("CreationTimestamp is"));
    }

    #[test]
    fn include_object_variants() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm", 30), "data": {"a": "1"}});
        let with =
            |include| table_for("ConfigMap", std::slice::from_ref(&cm), NOW, include)["rows"][0]["object"].clone();
        assert_eq!(
            with(IncludeObject::Metadata),
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": cm["metadata"]})
        );
        assert_eq!(with(IncludeObject::Object), cm);
        assert_eq!(with(IncludeObject::None), Value::Null);
        assert_eq!(IncludeObject::from_query(""), Some(IncludeObject::Metadata));
        assert_eq!(IncludeObject::from_query("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::from_query("None"), Some(IncludeObject::None));
        assert_eq!(IncludeObject::from_query("all"), None);
    }

    #[test]
    fn every_row_has_one_cell_per_column() {
        let kinds = [
            "Pod",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "CronJob",
            "Service",
            "Endpoints",
            "EndpointSlice",
            "ConfigMap",
            "Secret",
            "Namespace",
            "Node",
            "Event",
            "ServiceAccount",
            "Lease",
            "Ingress",
            "ClusterRole",
        ];
        for kind in kinds {
            let t = table(kind, &[json!({"metadata": meta("x", 5)}), json!({})]);
            let columns = t["columnDefinitions"].as_array().expect("columns").len();
            for row in t["rows"].as_array().expect("rows") {
                assert_eq!(row["cells"].as_array().expect("cells").len(), columns, "{kind}");
            }
        }
    }

    // --- Pod ---

    fn pod(status: Value) -> Value {
        json!({
            "metadata": meta("web-1", 3600),
            "spec": {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "n1"},
            "status": status,
        })
    }

    fn running(name: &str, restarts: i64) -> Value {
        json!({"name": name, "ready": true, "restartCount": restarts, "state": {"running": {"startedAt": ago(60)}}})
    }

    #[test]
    fn pod_columns_match_kubectl() {
        assert_eq!(
            column_names("Pod"),
            names(&[
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1),
            ])
        );
    }

    #[test]
    fn running_pod_row() {
        let c = cells(
            "Pod",
            pod(json!({"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
                       "containerStatuses": [running("app", 0)]})),
        );
        assert_eq!(
            c,
            vec![
                json!("web-1"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("60m"),
                json!("10.0.0.5"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn restarts_show_time_since_last_termination() {
        let mut status = running("app", 3);
        status["lastState"] = json!({"terminated": {"exitCode": 1, "finishedAt": ago(300)}});
        let c = cells("Pod", pod(json!({"phase": "Running", "containerStatuses": [status]})));
        assert_eq!(c[3], "3 (5m ago)");
        // Without a termination time only the count is shown.
        let c = cells("Pod", pod(json!({"phase": "Running", "containerStatuses": [running("app", 2)]})));
        assert_eq!(c[3], "2");
    }

    #[test]
    fn crash_loop_back_off_and_terminated_reasons() {
        let waiting = json!({"name": "app", "ready": false, "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(90)}}});
        let c = cells("Pod", pod(json!({"phase": "Running", "containerStatuses": [waiting]})));
        assert_eq!(
            (c[1].clone(), c[2].clone(), c[3].clone()),
            (json!("0/1"), json!("CrashLoopBackOff"), json!("5 (90s ago)"))
        );

        let exit = |state: Value| {
            cells("Pod", pod(json!({"phase": "Running", "containerStatuses": [{"name": "app", "state": state}]})))[2]
                .clone()
        };
        assert_eq!(exit(json!({"terminated": {"exitCode": 0, "reason": "Completed"}})), "Completed");
        assert_eq!(exit(json!({"terminated": {"exitCode": 137}})), "ExitCode:137");
        assert_eq!(exit(json!({"terminated": {"exitCode": 0, "signal": 9}})), "Signal:9");
        assert_eq!(exit(json!({"waiting": {"reason": "ContainerCreating"}})), "ContainerCreating");
    }

    #[test]
    fn completed_container_beside_running_one() {
        let done = json!({"name": "job", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let status = |ready: &str| {
            json!({"phase": "Running", "containerStatuses": [running("app", 0), done.clone()],
                   "conditions": [{"type": "Ready", "status": ready}]})
        };
        assert_eq!(cells("Pod", pod(status("True")))[2], "Running");
        assert_eq!(cells("Pod", pod(status("False")))[2], "NotReady");
    }

    #[test]
    fn succeeded_and_failed_pods_get_row_conditions() {
        let done = json!({"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let t = table("Pod", &[pod(json!({"phase": "Succeeded", "containerStatuses": [done]}))]);
        assert_eq!(t["rows"][0]["cells"][2], "Completed");
        assert_eq!(
            t["rows"][0]["conditions"],
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
        );
        let t = table("Pod", &[pod(json!({"phase": "Failed", "reason": "Evicted"}))]);
        assert_eq!(t["rows"][0]["cells"][2], "Evicted");
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Failed");
        let t = table("Pod", &[pod(json!({"phase": "Running"}))]);
        assert!(t["rows"][0].get("conditions").is_none());
    }

    #[test]
    fn init_container_progress() {
        let base = |init_statuses: Value| {
            json!({
                "metadata": meta("p", 10),
                "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "app"}]},
                "status": {"phase": "Pending", "initContainerStatuses": init_statuses,
                           "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]},
            })
        };
        let done = json!({"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let running_init = json!({"name": "i2", "state": {"running": {}}});
        assert_eq!(cells("Pod", base(json!([done.clone(), running_init])))[2], "Init:1/2");
        let crash = json!({"name": "i2", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                           "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}});
        let c = cells("Pod", base(json!([done.clone(), crash])));
        assert_eq!((c[2].clone(), c[3].clone()), (json!("Init:CrashLoopBackOff"), json!("4 (30s ago)")));
        let failed = json!({"name": "i2", "state": {"terminated": {"exitCode": 2}}});
        assert_eq!(cells("Pod", base(json!([done.clone(), failed])))[2], "Init:ExitCode:2");
        let oom = json!({"name": "i2", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}});
        assert_eq!(cells("Pod", base(json!([done.clone(), oom])))[2], "Init:OOMKilled");
        let signalled = json!({"name": "i2", "state": {"terminated": {"exitCode": 1, "signal": 15}}});
        assert_eq!(cells("Pod", base(json!([done, signalled])))[2], "Init:Signal:15");
        // Waiting in PodInitializing is progress, not a reason.
        let waiting = json!({"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}});
        assert_eq!(cells("Pod", base(json!([waiting])))[2], "Init:0/2");
    }

    #[test]
    fn sidecar_init_containers_count_as_containers() {
        let p = json!({
            "metadata": meta("p", 10),
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                    "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(120)}}}],
                "containerStatuses": [running("app", 0)],
            },
        });
        let c = cells("Pod", p);
        assert_eq!((c[1].clone(), c[2].clone(), c[3].clone()), (json!("2/2"), json!("Running"), json!("1 (2m ago)")));
    }

    #[test]
    fn terminating_unknown_and_gated_pods() {
        let mut p = pod(json!({"phase": "Running", "containerStatuses": [running("app", 0)]}));
        p["metadata"]["deletionTimestamp"] = json!(ago(0));
        assert_eq!(cells("Pod", p.clone())[2], "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells("Pod", p.clone())[2], "Unknown");
        // A finished pod being deleted keeps its final status.
        let mut done = pod(json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
        done["metadata"]["deletionTimestamp"] = json!(ago(0));
        assert_eq!(cells("Pod", done)[2], "Completed");
        let gated = pod(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}));
        assert_eq!(cells("Pod", gated)[2], "SchedulingGated");
    }

    #[test]
    fn pod_wide_columns() {
        let mut p = pod(json!({"phase": "Pending", "nominatedNodeName": "n2",
            "conditions": [{"type": "example.com/gate", "status": "True"}]}));
        p["spec"]["nodeName"] = json!("");
        p["spec"]["readinessGates"] = json!([{"conditionType": "example.com/gate"}, {"conditionType": "other"}]);
        let c = cells("Pod", p);
        assert_eq!(&c[5..], &[json!("<none>"), json!("<none>"), json!("n2"), json!("1/2")]);
    }

    // --- workloads ---

    #[test]
    fn deployment_row() {
        assert_eq!(
            column_names("Deployment"),
            names(&[
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ])
        );
        let d = json!({
            "metadata": meta("web", 5 * 86_400),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        assert_eq!(
            cells("Deployment", d),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("5d"),
                json!("a,b"),
                json!("nginx:1,busybox"),
                json!("app=web")
            ]
        );
        let bad = json!({"metadata": meta("x", 1), "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}});
        let c = cells("Deployment", bad);
        assert_eq!((c[1].clone(), c[7].clone()), (json!("0/1"), json!("<invalid>")));
    }

    #[test]
    fn replica_set_row() {
        let rs = json!({
            "metadata": meta("web-abc", 90),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "abc"}},
                     "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}},
            "status": {"replicas": 2, "readyReplicas": 1},
        });
        assert_eq!(
            cells("ReplicaSet", rs),
            vec![
                json!("web-abc"),
                json!(2),
                json!(2),
                json!(1),
                json!("90s"),
                json!("a"),
                json!("nginx"),
                json!("app=web,pod-template-hash=abc")
            ]
        );
        let no_selector = cells("ReplicaSet", json!({"metadata": meta("r", 1)}));
        assert_eq!(no_selector[7], "<none>");
    }

    #[test]
    fn stateful_set_daemon_set_and_cron_job_rows() {
        let sts = json!({"metadata": meta("db", 60), "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert_eq!(cells("StatefulSet", sts)[..3], [json!("db"), json!("3/3"), json!("60s")]);
        let ds = json!({"metadata": meta("agent", 60),
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"spec": {"nodeSelector": {"os": "linux"}, "containers": [{"name": "a", "image": "i"}]}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                       "updatedNumberScheduled": 2, "numberAvailable": 1}});
        assert_eq!(
            cells("DaemonSet", ds),
            vec![
                json!("agent"),
                json!(2),
                json!(2),
                json!(1),
                json!(2),
                json!(1),
                json!("os=linux"),
                json!("60s"),
                json!("a"),
                json!("i"),
                json!("app=agent")
            ]
        );
        let cj = json!({"metadata": meta("nightly", 86_400 * 3),
            "spec": {"schedule": "0 3 * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}},
            "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(3600)}});
        assert_eq!(
            cells("CronJob", cj)[..7],
            [
                json!("nightly"),
                json!("0 3 * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("60m"),
                json!("3d")
            ]
        );
    }

    #[test]
    fn job_status_completions_and_duration() {
        assert_eq!(
            column_names("Job"),
            names(&[
                ("Name", 0),
                ("Status", 0),
                ("Completions", 0),
                ("Duration", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ])
        );
        let job = |spec: Value, status: Value| json!({"metadata": meta("j", 600), "spec": spec, "status": status});
        let c = cells(
            "Job",
            job(
                json!({"completions": 3}),
                json!({"succeeded": 3, "startTime": ago(600), "completionTime": ago(470),
                "conditions": [{"type": "Complete", "status": "True"}]}),
            ),
        );
        assert_eq!(c[1..5], [json!("Complete"), json!("3/3"), json!("2m10s"), json!("10m")]);
        let c = cells("Job", job(json!({"parallelism": 4}), json!({"succeeded": 1, "startTime": ago(30)})));
        assert_eq!(c[1..4], [json!("Running"), json!("1/1 of 4"), json!("30s")]);
        let c = cells("Job", job(json!({}), json!({})));
        assert_eq!(c[1..4], [json!("Running"), json!("0/1"), json!("")]);
        let failed = job(
            json!({"completions": 1}),
            json!({"conditions": [
            {"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}),
        );
        assert_eq!(cells("Job", failed)[1], "Failed");
        let suspended = job(json!({}), json!({"conditions": [{"type": "Suspended", "status": "True"}]}));
        assert_eq!(cells("Job", suspended)[1], "Suspended");
        let mut deleting = job(json!({}), json!({}));
        deleting["metadata"]["deletionTimestamp"] = json!(ago(0));
        assert_eq!(cells("Job", deleting)[1], "Terminating");
    }

    // --- networking ---

    #[test]
    fn service_rows() {
        assert_eq!(
            column_names("Service"),
            names(&[
                ("Name", 0),
                ("Type", 0),
                ("Cluster-IP", 0),
                ("External-IP", 0),
                ("Port(s)", 0),
                ("Age", 0),
                ("Selector", 1)
            ])
        );
        let svc = |spec: Value, status: Value| json!({"metadata": meta("s", 120), "spec": spec, "status": status});
        let c = cells(
            "Service",
            svc(
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                       "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                       "selector": {"k8s-app": "kube-dns", "a": "b"}}),
                json!({}),
            ),
        );
        assert_eq!(
            c,
            vec![
                json!("s"),
                json!("ClusterIP"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("53/UDP,53/TCP"),
                json!("2m"),
                json!("a=b,k8s-app=kube-dns")
            ]
        );
        let c = cells(
            "Service",
            svc(
                json!({"type": "NodePort", "clusterIP": "10.96.1.1",
            "ports": [{"port": 80, "nodePort": 30080}], "externalIPs": ["1.2.3.4"]}),
                json!({}),
            ),
        );
        assert_eq!(c[3..5], [json!("1.2.3.4"), json!("80:30080/TCP")]);
        let lb = |ingress: Value, external: Value| {
            cells(
                "Service",
                svc(
                    json!({"type": "LoadBalancer", "clusterIP": "10.0.0.1", "externalIPs": external}),
                    json!({"loadBalancer": {"ingress": ingress}}),
                ),
            )[3]
            .clone()
        };
        assert_eq!(lb(json!([]), json!([])), "<pending>");
        assert_eq!(lb(json!([{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}]), json!([])), "5.6.7.8,lb.example.com");
        assert_eq!(lb(json!([{"ip": "5.6.7.8"}]), json!(["1.1.1.1"])), "5.6.7.8,1.1.1.1");
        let c = cells("Service", svc(json!({"type": "ExternalName", "externalName": "db.example.com"}), json!({})));
        assert_eq!(c[1..5], [json!("ExternalName"), json!("<none>"), json!("db.example.com"), json!("<none>")]);
        // Omitted type is the ClusterIP default; headless shows its literal "None".
        let c = cells("Service", svc(json!({"clusterIP": "None", "ports": [{"port": 80}]}), json!({})));
        assert_eq!(c[1..5], [json!("ClusterIP"), json!("None"), json!("<none>"), json!("80/TCP")]);
        assert_eq!(cells("Service", svc(json!({"type": "Weird"}), json!({})))[3], "<unknown>");
    }

    #[test]
    fn endpoints_formatting() {
        let ep = |subsets: Value| cells("Endpoints", json!({"metadata": meta("e", 1), "subsets": subsets}))[1].clone();
        assert_eq!(ep(json!([])), "<none>");
        assert_eq!(ep(json!([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}])), "10.0.0.1:80");
        assert_eq!(ep(json!([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}])), "[fd00::1]:80");
        assert_eq!(ep(json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}])), "10.0.0.1,10.0.0.2");
        assert_eq!(
            ep(json!([{"addresses": [{"ip": "a"}, {"ip": "b"}, {"ip": "c"}], "ports": [{"port": 1}, {"port": 2}]}])),
            "a:1,b:1,c:1 + 3 more..."
        );
        assert_eq!(ep(json!([{"notReadyAddresses": [{"ip": "a"}], "ports": [{"port": 1}]}])), "");
    }

    #[test]
    fn endpoint_slice_formatting() {
        let slice = json!({"metadata": meta("s-abc", 10), "addressType": "IPv4",
            "ports": [{"port": 80, "name": "http"}, {"name": "dns"}, {}, {"port": 9}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]}]});
        assert_eq!(
            cells("EndpointSlice", slice),
            vec![
                json!("s-abc"),
                json!("IPv4"),
                json!("80,dns,* + 1 more..."),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."),
                json!("10s")
            ]
        );
        let empty = cells("EndpointSlice", json!({"metadata": meta("e", 1), "addressType": "IPv6"}));
        assert_eq!(empty[2..4], [json!("<unset>"), json!("<unset>")]);
    }

    #[test]
    fn ingress_row() {
        assert_eq!(
            column_names("Ingress"),
            names(&[("Name", 0), ("Class", 0), ("Hosts", 0), ("Address", 0), ("Ports", 0), ("Age", 0)])
        );
        let ing = json!({"metadata": meta("web", 60),
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                     "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c"}, {"host": "d"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}});
        assert_eq!(
            cells("Ingress", ing),
            vec![
                json!("web"),
                json!("nginx"),
                json!("a.example.com,b.example.com,c + 2 more..."),
                json!("9.9.9.9"),
                json!("80, 443"),
                json!("60s")
            ]
        );
        let bare = cells("Ingress", json!({"metadata": meta("x", 1), "spec": {"rules": [{}]}}));
        assert_eq!(bare[1..5], [json!("<none>"), json!("*"), json!(""), json!("80")]);
    }

    // --- configuration and cluster objects ---

    #[test]
    fn config_map_secret_namespace_service_account_lease() {
        let cm = json!({"metadata": meta("cm", 10), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(cells("ConfigMap", cm), vec![json!("cm"), json!(3), json!("10s")]);
        let secret =
            json!({"metadata": meta("s", 10), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(cells("Secret", secret), vec![json!("s"), json!("kubernetes.io/tls"), json!(2), json!("10s")]);
        let merged = json!({"metadata": meta("s", 10), "data": {"a": ""}, "stringData": {"a": "x", "b": "y"}});
        assert_eq!(cells("Secret", merged)[1..3], [json!("Opaque"), json!(2)]);
        let ns = json!({"metadata": meta("prod", 86_400 * 400), "status": {"phase": "Terminating"}});
        assert_eq!(cells("Namespace", ns), vec![json!("prod"), json!("Terminating"), json!("400d")]);
        assert_eq!(cells("Namespace", json!({"metadata": meta("x", 1)}))[1], "Active");
        let sa = json!({"metadata": meta("default", 10), "secrets": [{"name": "t"}]});
        assert_eq!(cells("ServiceAccount", sa), vec![json!("default"), json!(1), json!("10s")]);
        let lease = json!({"metadata": meta("kube-scheduler", 10), "spec": {"holderIdentity": "cp-1_abc"}});
        assert_eq!(cells("Lease", lease), vec![json!("kube-scheduler"), json!("cp-1_abc"), json!("10s")]);
        assert_eq!(cells("Lease", json!({"metadata": meta("l", 1), "spec": {}}))[1], "");
    }

    #[test]
    fn node_rows() {
        assert_eq!(
            column_names("Node"),
            names(&[
                ("Name", 0),
                ("Status", 0),
                ("Roles", 0),
                ("Age", 0),
                ("Version", 0),
                ("Internal-IP", 1),
                ("External-IP", 1),
                ("OS-Image", 1),
                ("Kernel-Version", 1),
                ("Container-Runtime", 1),
            ])
        );
        let node = json!({
            "metadata": {"name": "cp-1", "creationTimestamp": ago(86_400 * 30),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "",
                                    "kubernetes.io/role": "master", "other": "x"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "Hostname", "address": "cp-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.1.0", "containerRuntimeVersion": "rk://0.1.0"}},
        });
        assert_eq!(
            cells("Node", node),
            vec![
                json!("cp-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("30d"),
                json!("v1.33.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0"),
                json!("rk://0.1.0")
            ]
        );
        let fresh = cells(
            "Node",
            json!({"metadata": meta("n", 5), "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
        );
        assert_eq!(fresh[1..3], [json!("NotReady"), json!("<none>")]);
        assert_eq!(fresh[7..], [json!("<unknown>"), json!("<unknown>"), json!("<unknown>")]);
        assert_eq!(cells("Node", json!({"metadata": meta("n", 5)}))[1], "Unknown");
    }

    #[test]
    fn event_rows() {
        assert_eq!(
            column_names("Event"),
            names(&[
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1),
            ])
        );
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": meta("web-1.17a", 600),
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "type": "Warning", "message": "  Back-off restarting failed container \n",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ago(600), "lastTimestamp": ago(20), "count": 7,
        });
        assert_eq!(
            cells("Event", event),
            vec![
                json!("20s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-1"),
                json!("spec.containers{app}"),
                json!("kubelet, n1"),
                json!("Back-off restarting failed container"),
                json!("10m"),
                json!(7),
                json!("web-1.17a")
            ]
        );
        // New-style event: eventTime only, no count, reporting controller instead of source.
        let new_style = json!({
            "metadata": meta("e2", 30), "involvedObject": {"kind": "Node"}, "reason": "Starting", "type": "Normal",
            "eventTime": "2023-12-31T23:59:30.000000Z", "reportingComponent": "kube-proxy", "reportingInstance": "n1",
        });
        let c = cells("Event", new_style);
        assert_eq!(
            (c[0].clone(), c[3].clone(), c[5].clone(), c[7].clone(), c[8].clone()),
            (json!("30s"), json!("node"), json!("kube-proxy, n1"), json!("30s"), json!(1))
        );
        let series = json!({"metadata": meta("e3", 60), "involvedObject": {"kind": "Pod", "name": "p"},
            "eventTime": ago(600), "series": {"count": 4, "lastObservedTime": ago(5)}});
        let c = cells("Event", series);
        assert_eq!((c[0].clone(), c[8].clone()), (json!("5s"), json!(4)));
        let events_api = json!({"apiVersion": "events.k8s.io/v1", "metadata": meta("e4", 60),
            "regarding": {"kind": "Deployment", "name": "web"}, "note": "Scaled up", "reason": "ScalingReplicaSet",
            "type": "Normal", "reportingController": "deployment-controller", "eventTime": ago(60)});
        let c = cells("Event", events_api);
        assert_eq!(
            (c[3].clone(), c[5].clone(), c[6].clone()),
            (json!("deployment/web"), json!("deployment-controller"), json!("Scaled up"))
        );
    }

    #[test]
    fn missing_timestamps_print_unknown() {
        assert_eq!(cells("ConfigMap", json!({"metadata": {"name": "x"}}))[2], "<unknown>");
        assert_eq!(cells("ConfigMap", json!({"metadata": {"name": "x", "creationTimestamp": null}}))[2], "<unknown>");
        assert_eq!(
            cells("ConfigMap", json!({"metadata": {"name": "x", "creationTimestamp": ago(-60)}}))[2],
            "<invalid>"
        );
    }

    #[test]
    fn unknown_kinds_use_the_default_convertor() {
        assert_eq!(column_names("ClusterRole"), names(&[("Name", 0), ("Created At", 0)]));
        let t = table(
            "ClusterRole",
            &[json!({"metadata": {"name": "admin", "creationTimestamp": "2023-05-06T07:08:09Z"}})],
        );
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["rows"][0]["cells"], json!(["admin", "2023-05-06T07:08:09Z"]));
        let t = table("Widget", &[json!({"metadata": {"name": "w"}})]);
        assert_eq!(t["rows"][0]["cells"], json!(["w", "0001-01-01T00:00:00Z"]));
    }
}
