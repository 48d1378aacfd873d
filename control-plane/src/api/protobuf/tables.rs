//! Field tables for the kinds `schema.rs` decodes. Numbers and JSON names follow the
//! `generated.proto` files of k8s.io/api (core/v1, apps/v1, batch/v1, networking/v1) and
//! apimachinery (meta/v1, intstr, resource); `p(..)` marks fields that are Go pointers. Fields
//! not listed here are refused when set (see `schema.rs`), never dropped.

use super::schema::Kind::{Bool, I32, I64, Ignore, Inline, IntOrString, Meta, Msg, Quantity, QuantityMap, Str, StrMap};
use super::schema::{Schema, f, p, r};

// === meta/v1 ===

static LABEL_SELECTOR: Schema = Schema {
    name: "LabelSelector",
    fields: &[f(1, "matchLabels", StrMap), r(2, "matchExpressions", Msg(&LABEL_SELECTOR_REQUIREMENT))],
};

static LABEL_SELECTOR_REQUIREMENT: Schema = Schema {
    name: "LabelSelectorRequirement",
    fields: &[f(1, "key", Str), f(2, "operator", Str), r(3, "values", Str)],
};

// === core/v1: pods ===

pub(super) static POD: Schema =
    Schema { name: "Pod", fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&POD_SPEC)), f(3, "status", Ignore)] };

static POD_TEMPLATE_SPEC: Schema =
    Schema { name: "PodTemplateSpec", fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&POD_SPEC))] };

static POD_SPEC: Schema = Schema {
    name: "PodSpec",
    fields: &[
        r(1, "volumes", Msg(&VOLUME)),
        r(20, "initContainers", Msg(&CONTAINER)),
        r(2, "containers", Msg(&CONTAINER)),
        f(3, "restartPolicy", Str),
        p(4, "terminationGracePeriodSeconds", I64),
        p(5, "activeDeadlineSeconds", I64),
        f(6, "dnsPolicy", Str),
        f(7, "nodeSelector", StrMap),
        f(8, "serviceAccountName", Str),
        f(9, "serviceAccount", Str),
        p(21, "automountServiceAccountToken", Bool),
        f(10, "nodeName", Str),
        f(11, "hostNetwork", Bool),
        f(12, "hostPID", Bool),
        f(13, "hostIPC", Bool),
        r(15, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", Str),
        f(17, "subdomain", Str),
        f(19, "schedulerName", Str),
        r(22, "tolerations", Msg(&TOLERATION)),
        f(24, "priorityClassName", Str),
        p(25, "priority", I32),
        p(30, "enableServiceLinks", Bool),
        p(31, "preemptionPolicy", Str),
    ],
};

static CONTAINER: Schema = Schema {
    name: "Container",
    fields: &[
        f(1, "name", Str),
        f(2, "image", Str),
        r(3, "command", Str),
        r(4, "args", Str),
        f(5, "workingDir", Str),
        r(6, "ports", Msg(&CONTAINER_PORT)),
        r(19, "envFrom", Msg(&ENV_FROM_SOURCE)),
        r(7, "env", Msg(&ENV_VAR)),
        f(8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        p(24, "restartPolicy", Str),
        r(9, "volumeMounts", Msg(&VOLUME_MOUNT)),
        p(10, "livenessProbe", Msg(&PROBE)),
        p(11, "readinessProbe", Msg(&PROBE)),
        p(22, "startupProbe", Msg(&PROBE)),
        p(12, "lifecycle", Msg(&LIFECYCLE)),
        f(13, "terminationMessagePath", Str),
        f(20, "terminationMessagePolicy", Str),
        f(14, "imagePullPolicy", Str),
        f(16, "stdin", Bool),
        f(17, "stdinOnce", Bool),
        f(18, "tty", Bool),
    ],
};

static CONTAINER_PORT: Schema = Schema {
    name: "ContainerPort",
    fields: &[
        f(1, "name", Str),
        f(2, "hostPort", I32),
        f(3, "containerPort", I32),
        f(4, "protocol", Str),
        f(5, "hostIP", Str),
    ],
};

static ENV_VAR: Schema = Schema {
    name: "EnvVar",
    fields: &[f(1, "name", Str), f(2, "value", Str), p(3, "valueFrom", Msg(&ENV_VAR_SOURCE))],
};

static ENV_VAR_SOURCE: Schema = Schema {
    name: "EnvVarSource",
    fields: &[
        p(1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        p(2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        p(3, "configMapKeyRef", Msg(&KEY_SELECTOR)),
        p(4, "secretKeyRef", Msg(&KEY_SELECTOR)),
    ],
};

static OBJECT_FIELD_SELECTOR: Schema =
    Schema { name: "ObjectFieldSelector", fields: &[f(1, "apiVersion", Str), f(2, "fieldPath", Str)] };

static RESOURCE_FIELD_SELECTOR: Schema = Schema {
    name: "ResourceFieldSelector",
    fields: &[f(1, "containerName", Str), f(2, "resource", Str), f(3, "divisor", Quantity)],
};

/// ConfigMapKeySelector and SecretKeySelector have the same fields.
static KEY_SELECTOR: Schema = Schema {
    name: "KeySelector",
    fields: &[f(1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)), f(2, "key", Str), p(3, "optional", Bool)],
};

static LOCAL_OBJECT_REFERENCE: Schema = Schema { name: "LocalObjectReference", fields: &[f(1, "name", Str)] };

static ENV_FROM_SOURCE: Schema = Schema {
    name: "EnvFromSource",
    fields: &[f(1, "prefix", Str), p(2, "configMapRef", Msg(&ENV_SOURCE)), p(3, "secretRef", Msg(&ENV_SOURCE))],
};

/// ConfigMapEnvSource and SecretEnvSource have the same fields.
static ENV_SOURCE: Schema = Schema {
    name: "EnvSource",
    fields: &[f(1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)), p(2, "optional", Bool)],
};

static RESOURCE_REQUIREMENTS: Schema =
    Schema { name: "ResourceRequirements", fields: &[f(1, "limits", QuantityMap), f(2, "requests", QuantityMap)] };

static VOLUME_MOUNT: Schema = Schema {
    name: "VolumeMount",
    fields: &[
        f(1, "name", Str),
        f(2, "readOnly", Bool),
        f(3, "mountPath", Str),
        f(4, "subPath", Str),
        p(5, "mountPropagation", Str),
        f(6, "subPathExpr", Str),
    ],
};

static VOLUME: Schema =
    Schema { name: "Volume", fields: &[f(1, "name", Str), f(2, "volumeSource", Inline(&VOLUME_SOURCE))] };

static VOLUME_SOURCE: Schema = Schema {
    name: "VolumeSource",
    fields: &[
        p(1, "hostPath", Msg(&HOST_PATH)),
        p(2, "emptyDir", Msg(&EMPTY_DIR)),
        p(6, "secret", Msg(&SECRET_VOLUME)),
        p(10, "persistentVolumeClaim", Msg(&PVC_VOLUME)),
        p(16, "downwardAPI", Msg(&DOWNWARD_API_VOLUME)),
        p(19, "configMap", Msg(&CONFIG_MAP_VOLUME)),
    ],
};

static HOST_PATH: Schema = Schema { name: "HostPathVolumeSource", fields: &[f(1, "path", Str), p(2, "type", Str)] };

static EMPTY_DIR: Schema =
    Schema { name: "EmptyDirVolumeSource", fields: &[f(1, "medium", Str), p(2, "sizeLimit", Quantity)] };

static SECRET_VOLUME: Schema = Schema {
    name: "SecretVolumeSource",
    fields: &[
        f(1, "secretName", Str),
        r(2, "items", Msg(&KEY_TO_PATH)),
        p(3, "defaultMode", I32),
        p(4, "optional", Bool),
    ],
};

static CONFIG_MAP_VOLUME: Schema = Schema {
    name: "ConfigMapVolumeSource",
    fields: &[
        f(1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)),
        r(2, "items", Msg(&KEY_TO_PATH)),
        p(3, "defaultMode", I32),
        p(4, "optional", Bool),
    ],
};

static KEY_TO_PATH: Schema =
    Schema { name: "KeyToPath", fields: &[f(1, "key", Str), f(2, "path", Str), p(3, "mode", I32)] };

static PVC_VOLUME: Schema =
    Schema { name: "PersistentVolumeClaimVolumeSource", fields: &[f(1, "claimName", Str), f(2, "readOnly", Bool)] };

static DOWNWARD_API_VOLUME: Schema = Schema {
    name: "DownwardAPIVolumeSource",
    fields: &[r(1, "items", Msg(&DOWNWARD_API_FILE)), p(2, "defaultMode", I32)],
};

static DOWNWARD_API_FILE: Schema = Schema {
    name: "DownwardAPIVolumeFile",
    fields: &[
        f(1, "path", Str),
        p(2, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        p(3, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        p(4, "mode", I32),
    ],
};

static PROBE: Schema = Schema {
    name: "Probe",
    fields: &[
        f(1, "handler", Inline(&PROBE_HANDLER)),
        f(2, "initialDelaySeconds", I32),
        f(3, "timeoutSeconds", I32),
        f(4, "periodSeconds", I32),
        f(5, "successThreshold", I32),
        f(6, "failureThreshold", I32),
        p(7, "terminationGracePeriodSeconds", I64),
    ],
};

static PROBE_HANDLER: Schema = Schema {
    name: "ProbeHandler",
    fields: &[
        p(1, "exec", Msg(&EXEC_ACTION)),
        p(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        p(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        p(4, "grpc", Msg(&GRPC_ACTION)),
    ],
};

static EXEC_ACTION: Schema = Schema { name: "ExecAction", fields: &[r(1, "command", Str)] };

static HTTP_GET_ACTION: Schema = Schema {
    name: "HTTPGetAction",
    fields: &[
        f(1, "path", Str),
        f(2, "port", IntOrString),
        f(3, "host", Str),
        f(4, "scheme", Str),
        r(5, "httpHeaders", Msg(&HTTP_HEADER)),
    ],
};

static HTTP_HEADER: Schema = Schema { name: "HTTPHeader", fields: &[f(1, "name", Str), f(2, "value", Str)] };

static TCP_SOCKET_ACTION: Schema =
    Schema { name: "TCPSocketAction", fields: &[f(1, "port", IntOrString), f(2, "host", Str)] };

static GRPC_ACTION: Schema = Schema { name: "GRPCAction", fields: &[f(1, "port", I32), p(2, "service", Str)] };

static LIFECYCLE: Schema = Schema {
    name: "Lifecycle",
    fields: &[p(1, "postStart", Msg(&LIFECYCLE_HANDLER)), p(2, "preStop", Msg(&LIFECYCLE_HANDLER))],
};

static LIFECYCLE_HANDLER: Schema = Schema {
    name: "LifecycleHandler",
    fields: &[
        p(1, "exec", Msg(&EXEC_ACTION)),
        p(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        p(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        p(4, "sleep", Msg(&SLEEP_ACTION)),
    ],
};

static SLEEP_ACTION: Schema = Schema { name: "SleepAction", fields: &[f(1, "seconds", I64)] };

static TOLERATION: Schema = Schema {
    name: "Toleration",
    fields: &[
        f(1, "key", Str),
        f(2, "operator", Str),
        f(3, "value", Str),
        f(4, "effect", Str),
        p(5, "tolerationSeconds", I64),
    ],
};

// === core/v1: services ===

pub(super) static SERVICE: Schema = Schema {
    name: "Service",
    fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&SERVICE_SPEC)), f(3, "status", Ignore)],
};

static SERVICE_SPEC: Schema = Schema {
    name: "ServiceSpec",
    fields: &[
        r(1, "ports", Msg(&SERVICE_PORT)),
        f(2, "selector", StrMap),
        f(3, "clusterIP", Str),
        r(18, "clusterIPs", Str),
        f(4, "type", Str),
        r(5, "externalIPs", Str),
        f(7, "sessionAffinity", Str),
        f(8, "loadBalancerIP", Str),
        r(9, "loadBalancerSourceRanges", Str),
        f(10, "externalName", Str),
        f(11, "externalTrafficPolicy", Str),
        f(12, "healthCheckNodePort", I32),
        f(13, "publishNotReadyAddresses", Bool),
        p(14, "sessionAffinityConfig", Msg(&SESSION_AFFINITY_CONFIG)),
        r(19, "ipFamilies", Str),
        p(17, "ipFamilyPolicy", Str),
        p(20, "allocateLoadBalancerNodePorts", Bool),
        p(21, "loadBalancerClass", Str),
        p(22, "internalTrafficPolicy", Str),
    ],
};

static SERVICE_PORT: Schema = Schema {
    name: "ServicePort",
    fields: &[
        f(1, "name", Str),
        f(2, "protocol", Str),
        p(6, "appProtocol", Str),
        f(3, "port", I32),
        f(4, "targetPort", IntOrString),
        f(5, "nodePort", I32),
    ],
};

static SESSION_AFFINITY_CONFIG: Schema =
    Schema { name: "SessionAffinityConfig", fields: &[p(1, "clientIP", Msg(&CLIENT_IP_CONFIG))] };

static CLIENT_IP_CONFIG: Schema = Schema { name: "ClientIPConfig", fields: &[p(1, "timeoutSeconds", I32)] };

// === apps/v1 ===

pub(super) static DEPLOYMENT: Schema = Schema {
    name: "Deployment",
    fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&DEPLOYMENT_SPEC)), f(3, "status", Ignore)],
};

static DEPLOYMENT_SPEC: Schema = Schema {
    name: "DeploymentSpec",
    fields: &[
        p(1, "replicas", I32),
        p(2, "selector", Msg(&LABEL_SELECTOR)),
        f(3, "template", Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", I32),
        p(6, "revisionHistoryLimit", I32),
        f(7, "paused", Bool),
        p(9, "progressDeadlineSeconds", I32),
    ],
};

static DEPLOYMENT_STRATEGY: Schema = Schema {
    name: "DeploymentStrategy",
    fields: &[f(1, "type", Str), p(2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT))],
};

static ROLLING_UPDATE_DEPLOYMENT: Schema = Schema {
    name: "RollingUpdateDeployment",
    fields: &[p(1, "maxUnavailable", IntOrString), p(2, "maxSurge", IntOrString)],
};

// === batch/v1 ===

pub(super) static JOB: Schema =
    Schema { name: "Job", fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&JOB_SPEC)), f(3, "status", Ignore)] };

static JOB_SPEC: Schema = Schema {
    name: "JobSpec",
    fields: &[
        p(1, "parallelism", I32),
        p(2, "completions", I32),
        p(3, "activeDeadlineSeconds", I64),
        p(7, "backoffLimit", I32),
        p(12, "backoffLimitPerIndex", I32),
        p(13, "maxFailedIndexes", I32),
        p(4, "selector", Msg(&LABEL_SELECTOR)),
        p(5, "manualSelector", Bool),
        f(6, "template", Msg(&POD_TEMPLATE_SPEC)),
        p(8, "ttlSecondsAfterFinished", I32),
        p(9, "completionMode", Str),
        p(10, "suspend", Bool),
        p(14, "podReplacementPolicy", Str),
    ],
};

// === networking/v1 ===

pub(super) static INGRESS: Schema = Schema {
    name: "Ingress",
    fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&INGRESS_SPEC)), f(3, "status", Ignore)],
};

static INGRESS_SPEC: Schema = Schema {
    name: "IngressSpec",
    fields: &[
        p(4, "ingressClassName", Str),
        p(1, "defaultBackend", Msg(&INGRESS_BACKEND)),
        r(2, "tls", Msg(&INGRESS_TLS)),
        r(3, "rules", Msg(&INGRESS_RULE)),
    ],
};

static INGRESS_BACKEND: Schema = Schema {
    name: "IngressBackend",
    fields: &[p(4, "service", Msg(&INGRESS_SERVICE_BACKEND)), p(3, "resource", Msg(&TYPED_LOCAL_OBJECT_REFERENCE))],
};

static INGRESS_SERVICE_BACKEND: Schema =
    Schema { name: "IngressServiceBackend", fields: &[f(1, "name", Str), f(2, "port", Msg(&SERVICE_BACKEND_PORT))] };

static SERVICE_BACKEND_PORT: Schema =
    Schema { name: "ServiceBackendPort", fields: &[f(1, "name", Str), f(2, "number", I32)] };

static TYPED_LOCAL_OBJECT_REFERENCE: Schema = Schema {
    name: "TypedLocalObjectReference",
    fields: &[p(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)],
};

static INGRESS_RULE: Schema =
    Schema { name: "IngressRule", fields: &[f(1, "host", Str), f(2, "ingressRuleValue", Inline(&INGRESS_RULE_VALUE))] };

static INGRESS_RULE_VALUE: Schema =
    Schema { name: "IngressRuleValue", fields: &[p(1, "http", Msg(&HTTP_INGRESS_RULE_VALUE))] };

static HTTP_INGRESS_RULE_VALUE: Schema =
    Schema { name: "HTTPIngressRuleValue", fields: &[r(1, "paths", Msg(&HTTP_INGRESS_PATH))] };

static HTTP_INGRESS_PATH: Schema = Schema {
    name: "HTTPIngressPath",
    fields: &[f(1, "path", Str), p(3, "pathType", Str), f(2, "backend", Msg(&INGRESS_BACKEND))],
};

static INGRESS_TLS: Schema = Schema { name: "IngressTLS", fields: &[r(1, "hosts", Str), f(2, "secretName", Str)] };

// === authorization/v1 and authentication/v1: access reviews ===

pub(super) static SELF_SUBJECT_ACCESS_REVIEW: Schema = Schema {
    name: "SelfSubjectAccessReview",
    fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)), f(3, "status", Ignore)],
};

static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Schema = Schema {
    name: "SelfSubjectAccessReviewSpec",
    fields: &[
        p(1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        p(2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
    ],
};

pub(super) static SUBJECT_ACCESS_REVIEW: Schema = Schema {
    name: "SubjectAccessReview",
    fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&SUBJECT_ACCESS_REVIEW_SPEC)), f(3, "status", Ignore)],
};

static SUBJECT_ACCESS_REVIEW_SPEC: Schema = Schema {
    name: "SubjectAccessReviewSpec",
    fields: &[
        p(1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        p(2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
        f(3, "user", Str),
        r(4, "groups", Str),
        f(6, "uid", Str),
    ],
};

static RESOURCE_ATTRIBUTES: Schema = Schema {
    name: "ResourceAttributes",
    fields: &[
        f(1, "namespace", Str),
        f(2, "verb", Str),
        f(3, "group", Str),
        f(4, "version", Str),
        f(5, "resource", Str),
        f(6, "subresource", Str),
        f(7, "name", Str),
        p(8, "fieldSelector", Msg(&FIELD_SELECTOR_ATTRIBUTES)),
        p(9, "labelSelector", Msg(&LABEL_SELECTOR_ATTRIBUTES)),
    ],
};

static FIELD_SELECTOR_ATTRIBUTES: Schema = Schema {
    name: "FieldSelectorAttributes",
    fields: &[f(1, "rawSelector", Str), r(2, "requirements", Msg(&FIELD_SELECTOR_REQUIREMENT))],
};

static FIELD_SELECTOR_REQUIREMENT: Schema = Schema {
    name: "FieldSelectorRequirement",
    fields: &[f(1, "key", Str), f(2, "operator", Str), r(3, "values", Str)],
};

static LABEL_SELECTOR_ATTRIBUTES: Schema = Schema {
    name: "LabelSelectorAttributes",
    fields: &[f(1, "rawSelector", Str), r(2, "requirements", Msg(&LABEL_SELECTOR_REQUIREMENT))],
};

static NON_RESOURCE_ATTRIBUTES: Schema =
    Schema { name: "NonResourceAttributes", fields: &[f(1, "path", Str), f(2, "verb", Str)] };

pub(super) static SELF_SUBJECT_RULES_REVIEW: Schema = Schema {
    name: "SelfSubjectRulesReview",
    fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&SELF_SUBJECT_RULES_REVIEW_SPEC)), f(3, "status", Ignore)],
};

static SELF_SUBJECT_RULES_REVIEW_SPEC: Schema =
    Schema { name: "SelfSubjectRulesReviewSpec", fields: &[f(1, "namespace", Str)] };

pub(super) static SELF_SUBJECT_REVIEW: Schema =
    Schema { name: "SelfSubjectReview", fields: &[f(1, "metadata", Meta), f(2, "status", Ignore)] };

// === rbac/v1 ===

static POLICY_RULE: Schema = Schema {
    name: "PolicyRule",
    fields: &[
        r(1, "verbs", Str),
        r(2, "apiGroups", Str),
        r(3, "resources", Str),
        r(4, "resourceNames", Str),
        r(5, "nonResourceURLs", Str),
    ],
};

static AGGREGATION_RULE: Schema =
    Schema { name: "AggregationRule", fields: &[r(1, "clusterRoleSelectors", Msg(&LABEL_SELECTOR))] };

static SUBJECT: Schema = Schema {
    name: "Subject",
    fields: &[f(1, "kind", Str), f(2, "apiGroup", Str), f(3, "name", Str), f(4, "namespace", Str)],
};

static ROLE_REF: Schema =
    Schema { name: "RoleRef", fields: &[f(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)] };

pub(super) static ROLE: Schema =
    Schema { name: "Role", fields: &[f(1, "metadata", Meta), r(2, "rules", Msg(&POLICY_RULE))] };

pub(super) static CLUSTER_ROLE: Schema = Schema {
    name: "ClusterRole",
    fields: &[
        f(1, "metadata", Meta),
        r(2, "rules", Msg(&POLICY_RULE)),
        p(3, "aggregationRule", Msg(&AGGREGATION_RULE)),
    ],
};

pub(super) static ROLE_BINDING: Schema = Schema {
    name: "RoleBinding",
    fields: &[f(1, "metadata", Meta), r(2, "subjects", Msg(&SUBJECT)), f(3, "roleRef", Msg(&ROLE_REF))],
};

pub(super) static CLUSTER_ROLE_BINDING: Schema = Schema {
    name: "ClusterRoleBinding",
    fields: &[f(1, "metadata", Meta), r(2, "subjects", Msg(&SUBJECT)), f(3, "roleRef", Msg(&ROLE_REF))],
};

// === authentication/v1 ===

static BOUND_OBJECT_REFERENCE: Schema = Schema {
    name: "BoundObjectReference",
    fields: &[f(1, "kind", Str), f(2, "apiVersion", Str), f(3, "name", Str), f(4, "uid", Str)],
};

static TOKEN_REQUEST_SPEC: Schema = Schema {
    name: "TokenRequestSpec",
    fields: &[
        r(1, "audiences", Str),
        p(3, "boundObjectRef", Msg(&BOUND_OBJECT_REFERENCE)),
        p(4, "expirationSeconds", I64),
    ],
};

/// What `kubectl create token` sends (`serviceaccounts/token`).
pub(super) static TOKEN_REQUEST: Schema = Schema {
    name: "TokenRequest",
    fields: &[f(1, "metadata", Meta), f(2, "spec", Msg(&TOKEN_REQUEST_SPEC)), f(3, "status", Ignore)],
};
