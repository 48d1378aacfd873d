//! Decoder for the Kubernetes protobuf wire format that kubectl 1.32+ sends on create.
//!
//! kubectl's typed generators (`kubectl create configmap|secret generic|secret docker-registry|
//! namespace|serviceaccount|deployment ...`) POST `Content-Type: application/vnd.kubernetes.protobuf`
//! instead of JSON. The body is:
//!
//! ```text
//!   "k8s\0"                      4-byte magic
//!   runtime.Unknown {            apimachinery/pkg/runtime/generated.proto
//!     1: typeMeta { 1: apiVersion, 2: kind }
//!     2: raw                     the object, e.g. core/v1 ConfigMap, itself a protobuf message
//!     3: contentEncoding         always empty from kubectl
//!     4: contentType             always empty from kubectl
//!   }
//! ```
//!
//! [`decode_object`] turns such a body into the JSON the same object would have been sent as,
//! so the rest of the API server only ever sees JSON. It understands core/v1 ConfigMap, Secret,
//! Namespace and ServiceAccount with the `ObjectMeta` fields a create carries (below), and
//! Pod, Service, apps/v1 Deployment, batch/v1 Job, networking/v1 Ingress and the rbac/v1
//! roles and bindings through the
//! field tables in `tables.rs`, decoded by `schema.rs`. Other kinds are rejected with
//! [`ProtobufError::UnsupportedKind`] so the handler can answer 415 and the client can retry
//! with JSON.
//!
//! The decoder is hand-written rather than generated because only a handful of messages matter,
//! and every malformed input must become an error: lengths are checked against the remaining
//! input before slicing, varints are limited to ten bytes, unknown fields are skipped by wire
//! type without recursing, and message nesting is bounded by [`MAX_DEPTH`].

use serde_json::{Map, Value};

mod schema;
mod tables;

/// The four bytes that start every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of a Kubernetes protobuf body.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The deepest message nesting the decoder follows. The deepest known path is
/// Deployment → spec → template → PodSpec → Container → env → valueFrom → configMapKeyRef (8)
/// and a probe's httpGet port (IntOrString) at the same depth; anything deeper is not a
/// message this module understands, so the bound only guards against bugs and hostile
/// input, not against valid input.
pub const MAX_DEPTH: usize = 12;

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the Kubernetes magic prefix \"k8s\\x00\"")]
    MissingMagic,
    /// A length or value runs past the end of its enclosing message.
    #[error("truncated protobuf data in {message}")]
    Truncated { message: &'static str },
    /// A varint is longer than ten bytes or overflows 64 bits.
    #[error("malformed protobuf varint in {message}")]
    MalformedVarint { message: &'static str },
    /// A field key with field number 0 or above 2^29-1.
    #[error("invalid protobuf field number {field} in {message}")]
    InvalidFieldNumber { message: &'static str, field: u64 },
    /// Groups (wire types 3 and 4) or an undefined wire type (6 and 7).
    #[error("unsupported protobuf wire type {wire_type} for field {field} in {message}")]
    UnsupportedWireType { message: &'static str, field: u32, wire_type: u8 },
    /// A known field arrived with a different wire type than its schema type uses.
    #[error("field {field} of {message} has wire type {wire_type}, expected {expected}")]
    WrongWireType { message: &'static str, field: u32, wire_type: u8, expected: u8 },
    /// A string field holds invalid UTF-8; JSON cannot carry it without changing it.
    #[error("field {field} of {message} is not valid UTF-8")]
    InvalidUtf8 { message: &'static str, field: &'static str },
    /// Messages nested deeper than [`MAX_DEPTH`].
    #[error("protobuf messages nested deeper than {max}")]
    TooDeep { max: usize },
    /// The envelope names a kind this decoder does not understand.
    #[error("cannot decode {kind} ({api_version}) from protobuf; send it as application/json")]
    UnsupportedKind { api_version: String, kind: String },
    /// A field the decoder's tables do not know, holding a value that would otherwise be lost.
    #[error("cannot decode field {field} of {message} from protobuf; send the object as application/json")]
    UnsupportedField { message: &'static str, field: u32 },
    /// The envelope declares a content encoding (such as gzip) for `raw`.
    #[error("unsupported contentEncoding {0:?} in protobuf envelope")]
    UnsupportedContentEncoding(String),
    /// The envelope declares that `raw` is not protobuf.
    #[error("unsupported contentType {0:?} in protobuf envelope")]
    UnsupportedContentType(String),
}

/// The decoded `runtime.Unknown` envelope.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unknown {
    /// `typeMeta.apiVersion`, e.g. `v1` or `apps/v1`.
    pub api_version: String,
    /// `typeMeta.kind`, e.g. `ConfigMap`.
    pub kind: String,
    /// The encoded object.
    pub raw: Vec<u8>,
    /// Empty unless `raw` is compressed.
    pub content_encoding: String,
    /// Empty (meaning protobuf) unless `raw` is something else.
    pub content_type: String,
}

/// Checks the magic prefix and decodes the `runtime.Unknown` envelope.
pub fn decode_unknown(body: &[u8]) -> Result<Unknown, ProtobufError> {
    let payload = body.strip_prefix(MAGIC.as_slice()).ok_or(ProtobufError::MissingMagic)?;
    let mut reader = Reader::new(payload, "runtime.Unknown", 0)?;
    let mut unknown = Unknown::default();
    while let Some((field, wire_type)) = reader.next_key()? {
        match field {
            1 => {
                let mut type_meta = reader.message(field, wire_type, "runtime.TypeMeta")?;
                while let Some((field, wire_type)) = type_meta.next_key()? {
                    match field {
                        1 => unknown.api_version = type_meta.string(field, wire_type, "apiVersion")?,
                        2 => unknown.kind = type_meta.string(field, wire_type, "kind")?,
                        _ => type_meta.skip(field, wire_type)?,
                    }
                }
            }
            2 => unknown.raw = reader.bytes(field, wire_type)?.to_vec(),
            3 => unknown.content_encoding = reader.string(field, wire_type, "contentEncoding")?,
            4 => unknown.content_type = reader.string(field, wire_type, "contentType")?,
            _ => reader.skip(field, wire_type)?,
        }
    }
    Ok(unknown)
}

/// Decodes one encoded message at a nesting depth into JSON fields.
type MessageDecoder = fn(&[u8], usize) -> Result<Map<String, Value>, ProtobufError>;

/// Decodes a whole request body (magic, envelope and object) into the object's JSON form,
/// including `apiVersion` and `kind` from the envelope.
pub fn decode_object(body: &[u8]) -> Result<Value, ProtobufError> {
    let unknown = decode_unknown(body)?;
    if !unknown.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedContentEncoding(unknown.content_encoding));
    }
    if !unknown.content_type.is_empty() && unknown.content_type != CONTENT_TYPE {
        return Err(ProtobufError::UnsupportedContentType(unknown.content_type));
    }
    let decoder: MessageDecoder = match (unknown.api_version.as_str(), unknown.kind.as_str()) {
        ("v1", "ConfigMap") => config_map,
        ("v1", "Secret") => secret,
        ("v1", "Namespace") => namespace,
        ("v1", "ServiceAccount") => service_account,
        ("v1", "Pod") => |raw, depth| schema::decode(&tables::POD, raw, depth),
        ("v1", "Service") => |raw, depth| schema::decode(&tables::SERVICE, raw, depth),
        ("apps/v1", "Deployment") => |raw, depth| schema::decode(&tables::DEPLOYMENT, raw, depth),
        ("batch/v1", "Job") => |raw, depth| schema::decode(&tables::JOB, raw, depth),
        ("networking.k8s.io/v1", "Ingress") => |raw, depth| schema::decode(&tables::INGRESS, raw, depth),
        ("authentication.k8s.io/v1", "TokenRequest") => |raw, depth| schema::decode(&tables::TOKEN_REQUEST, raw, depth),
        ("rbac.authorization.k8s.io/v1", "Role") => |raw, depth| schema::decode(&tables::ROLE, raw, depth),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            |raw, depth| schema::decode(&tables::CLUSTER_ROLE, raw, depth)
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            |raw, depth| schema::decode(&tables::ROLE_BINDING, raw, depth)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            |raw, depth| schema::decode(&tables::CLUSTER_ROLE_BINDING, raw, depth)
        }
        // What `kubectl auth can-i` and `kubectl auth whoami` send (see `api::review`).
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            |raw, depth| schema::decode(&tables::SELF_SUBJECT_ACCESS_REVIEW, raw, depth)
        }
        ("authorization.k8s.io/v1", "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            |raw, depth| schema::decode(&tables::SUBJECT_ACCESS_REVIEW, raw, depth)
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => {
            |raw, depth| schema::decode(&tables::SELF_SUBJECT_RULES_REVIEW, raw, depth)
        }
        ("authentication.k8s.io/v1" | "authentication.k8s.io/v1beta1", "SelfSubjectReview") => {
            |raw, depth| schema::decode(&tables::SELF_SUBJECT_REVIEW, raw, depth)
        }
        _ => {
            return Err(ProtobufError::UnsupportedKind { api_version: unknown.api_version, kind: unknown.kind });
        }
    };
    let fields = decoder(&unknown.raw, 1)?;
    let mut object = Map::new();
    object.insert("apiVersion".to_string(), Value::String(unknown.api_version));
    object.insert("kind".to_string(), Value::String(unknown.kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

/// Decodes an encoded core/v1 `ConfigMap` (the `raw` of the envelope) without `apiVersion` and
/// `kind`.
pub fn decode_config_map(raw: &[u8]) -> Result<Value, ProtobufError> {
    config_map(raw, 0).map(Value::Object)
}

/// Decodes an encoded core/v1 `Secret` without `apiVersion` and `kind`.
pub fn decode_secret(raw: &[u8]) -> Result<Value, ProtobufError> {
    secret(raw, 0).map(Value::Object)
}

/// Decodes an encoded meta/v1 `ObjectMeta`.
pub fn decode_object_meta(raw: &[u8]) -> Result<Value, ProtobufError> {
    let mut reader = Reader::new(raw, "ObjectMeta", 0)?;
    object_meta(&mut reader).map(Value::Object)
}

// === Messages ===
//
// Field numbers follow staging/src/k8s.io/api/core/v1/generated.proto and
// apimachinery/pkg/apis/meta/v1/generated.proto. The JSON follows Go's encoding/json output for
// the same Go struct: `omitempty` fields are left out when empty, `[]byte` becomes base64.

/// core/v1 ConfigMap: metadata=1, data=2, binaryData=3, immutable=4.
fn config_map(raw: &[u8], depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    let mut reader = Reader::new(raw, "ConfigMap", depth)?;
    let mut out = Map::new();
    let mut data = Map::new();
    let mut binary_data = Map::new();
    while let Some((field, wire_type)) = reader.next_key()? {
        match field {
            1 => {
                let mut meta = reader.message(field, wire_type, "ObjectMeta")?;
                out.insert("metadata".to_string(), Value::Object(object_meta(&mut meta)?));
            }
            2 => {
                let (key, value) = reader.string_map_entry(field, wire_type, "ConfigMap.data")?;
                data.insert(key, Value::String(value));
            }
            3 => {
                let (key, value) = reader.bytes_map_entry(field, wire_type, "ConfigMap.binaryData")?;
                binary_data.insert(key, Value::String(base64_encode(&value)));
            }
            4 => {
                out.insert("immutable".to_string(), Value::Bool(reader.bool(field, wire_type)?));
            }
            _ => reader.skip(field, wire_type)?,
        }
    }
    insert_non_empty(&mut out, "data", data);
    insert_non_empty(&mut out, "binaryData", binary_data);
    Ok(out)
}

/// core/v1 Secret: metadata=1, data=2, type=3, stringData=4, immutable=5.
fn secret(raw: &[u8], depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    let mut reader = Reader::new(raw, "Secret", depth)?;
    let mut out = Map::new();
    let mut data = Map::new();
    let mut string_data = Map::new();
    while let Some((field, wire_type)) = reader.next_key()? {
        match field {
            1 => {
                let mut meta = reader.message(field, wire_type, "ObjectMeta")?;
                out.insert("metadata".to_string(), Value::Object(object_meta(&mut meta)?));
            }
            2 => {
                let (key, value) = reader.bytes_map_entry(field, wire_type, "Secret.data")?;
                data.insert(key, Value::String(base64_encode(&value)));
            }
            3 => {
                let secret_type = reader.string(field, wire_type, "type")?;
                insert_non_empty_string(&mut out, "type", secret_type);
            }
            4 => {
                let (key, value) = reader.string_map_entry(field, wire_type, "Secret.stringData")?;
                string_data.insert(key, Value::String(value));
            }
            5 => {
                out.insert("immutable".to_string(), Value::Bool(reader.bool(field, wire_type)?));
            }
            _ => reader.skip(field, wire_type)?,
        }
    }
    insert_non_empty(&mut out, "data", data);
    insert_non_empty(&mut out, "stringData", string_data);
    Ok(out)
}

/// core/v1 Namespace: metadata=1, spec=2 {finalizers=1}, status=3 {phase=1}.
fn namespace(raw: &[u8], depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    let mut reader = Reader::new(raw, "Namespace", depth)?;
    let mut out = Map::new();
    let mut spec = Map::new();
    let mut status = Map::new();
    while let Some((field, wire_type)) = reader.next_key()? {
        match field {
            1 => {
                let mut meta = reader.message(field, wire_type, "ObjectMeta")?;
                out.insert("metadata".to_string(), Value::Object(object_meta(&mut meta)?));
            }
            2 => {
                let mut spec_reader = reader.message(field, wire_type, "NamespaceSpec")?;
                let mut finalizers = Vec::new();
                while let Some((field, wire_type)) = spec_reader.next_key()? {
                    match field {
                        1 => finalizers.push(Value::String(spec_reader.string(field, wire_type, "finalizers")?)),
                        _ => spec_reader.skip(field, wire_type)?,
                    }
                }
                if !finalizers.is_empty() {
                    spec.insert("finalizers".to_string(), Value::Array(finalizers));
                }
            }
            3 => {
                // Status is ignored on create, but decode the phase for round-trip fidelity.
                let mut status_reader = reader.message(field, wire_type, "NamespaceStatus")?;
                while let Some((field, wire_type)) = status_reader.next_key()? {
                    match field {
                        1 => {
                            let phase = status_reader.string(field, wire_type, "phase")?;
                            insert_non_empty_string(&mut status, "phase", phase);
                        }
                        _ => status_reader.skip(field, wire_type)?,
                    }
                }
            }
            _ => reader.skip(field, wire_type)?,
        }
    }
    // Go encodes the non-pointer spec and status structs even when they are empty.
    out.insert("spec".to_string(), Value::Object(spec));
    out.insert("status".to_string(), Value::Object(status));
    Ok(out)
}

/// core/v1 ServiceAccount: metadata=1, secrets=2 (ObjectReference), imagePullSecrets=3
/// (LocalObjectReference), automountServiceAccountToken=4.
fn service_account(raw: &[u8], depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    let mut reader = Reader::new(raw, "ServiceAccount", depth)?;
    let mut out = Map::new();
    let mut secrets = Vec::new();
    let mut image_pull_secrets = Vec::new();
    while let Some((field, wire_type)) = reader.next_key()? {
        match field {
            1 => {
                let mut meta = reader.message(field, wire_type, "ObjectMeta")?;
                out.insert("metadata".to_string(), Value::Object(object_meta(&mut meta)?));
            }
            2 => {
                let mut reference = reader.message(field, wire_type, "ObjectReference")?;
                secrets.push(Value::Object(object_reference(&mut reference)?));
            }
            3 => {
                let mut reference = reader.message(field, wire_type, "LocalObjectReference")?;
                let mut local = Map::new();
                while let Some((field, wire_type)) = reference.next_key()? {
                    match field {
                        1 => {
                            let name = reference.string(field, wire_type, "name")?;
                            insert_non_empty_string(&mut local, "name", name);
                        }
                        _ => reference.skip(field, wire_type)?,
                    }
                }
                image_pull_secrets.push(Value::Object(local));
            }
            4 => {
                let automount = reader.bool(field, wire_type)?;
                out.insert("automountServiceAccountToken".to_string(), Value::Bool(automount));
            }
            _ => reader.skip(field, wire_type)?,
        }
    }
    if !secrets.is_empty() {
        out.insert("secrets".to_string(), Value::Array(secrets));
    }
    if !image_pull_secrets.is_empty() {
        out.insert("imagePullSecrets".to_string(), Value::Array(image_pull_secrets));
    }
    Ok(out)
}

/// core/v1 ObjectReference: kind=1, namespace=2, name=3, uid=4, apiVersion=5,
/// resourceVersion=6, fieldPath=7; every JSON field is omitempty.
fn object_reference(reader: &mut Reader<'_>) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    while let Some((field, wire_type)) = reader.next_key()? {
        let name = match field {
            1 => "kind",
            2 => "namespace",
            3 => "name",
            4 => "uid",
            5 => "apiVersion",
            6 => "resourceVersion",
            7 => "fieldPath",
            _ => {
                reader.skip(field, wire_type)?;
                continue;
            }
        };
        let value = reader.string(field, wire_type, name)?;
        insert_non_empty_string(&mut out, name, value);
    }
    Ok(out)
}

/// meta/v1 ObjectMeta: name=1, generateName=2, namespace=3, selfLink=4, uid=5,
/// resourceVersion=6, generation=7, creationTimestamp=8, deletionTimestamp=9,
/// deletionGracePeriodSeconds=10, labels=11, annotations=12, ownerReferences=13,
/// finalizers=14. managedFields (17) is skipped: the server recomputes it on every write.
fn object_meta(reader: &mut Reader<'_>) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut owner_references = Vec::new();
    let mut finalizers = Vec::new();
    while let Some((field, wire_type)) = reader.next_key()? {
        match field {
            1..=6 => {
                let name =
                    ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion"][(field - 1) as usize];
                let value = reader.string(field, wire_type, name)?;
                insert_non_empty_string(&mut out, name, value);
            }
            7 => {
                let generation = reader.varint_field(field, wire_type)? as i64;
                if generation != 0 {
                    out.insert("generation".to_string(), Value::from(generation));
                }
            }
            8 | 9 => {
                let name = if field == 8 { "creationTimestamp" } else { "deletionTimestamp" };
                let mut time = reader.message(field, wire_type, "Time")?;
                // A zero creationTimestamp is what every client sends; Go prints it as null.
                if let Some(formatted) = time_field(&mut time)? {
                    out.insert(name.to_string(), Value::String(formatted));
                }
            }
            10 => {
                let seconds = reader.varint_field(field, wire_type)? as i64;
                out.insert("deletionGracePeriodSeconds".to_string(), Value::from(seconds));
            }
            11 => {
                let (key, value) = reader.string_map_entry(field, wire_type, "ObjectMeta.labels")?;
                labels.insert(key, Value::String(value));
            }
            12 => {
                let (key, value) = reader.string_map_entry(field, wire_type, "ObjectMeta.annotations")?;
                annotations.insert(key, Value::String(value));
            }
            13 => {
                let mut reference = reader.message(field, wire_type, "OwnerReference")?;
                owner_references.push(Value::Object(owner_reference(&mut reference)?));
            }
            14 => finalizers.push(Value::String(reader.string(field, wire_type, "finalizers")?)),
            _ => reader.skip(field, wire_type)?,
        }
    }
    insert_non_empty(&mut out, "labels", labels);
    insert_non_empty(&mut out, "annotations", annotations);
    if !owner_references.is_empty() {
        out.insert("ownerReferences".to_string(), Value::Array(owner_references));
    }
    if !finalizers.is_empty() {
        out.insert("finalizers".to_string(), Value::Array(finalizers));
    }
    Ok(out)
}

/// meta/v1 OwnerReference: kind=1, name=3, uid=4, apiVersion=5, controller=6,
/// blockOwnerDeletion=7. The four strings are always present in Go's JSON; the bools only when
/// set.
fn owner_reference(reader: &mut Reader<'_>) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    for name in ["apiVersion", "kind", "name", "uid"] {
        out.insert(name.to_string(), Value::String(String::new()));
    }
    while let Some((field, wire_type)) = reader.next_key()? {
        match field {
            1 => {
                out.insert("kind".to_string(), Value::String(reader.string(field, wire_type, "kind")?));
            }
            3 => {
                out.insert("name".to_string(), Value::String(reader.string(field, wire_type, "name")?));
            }
            4 => {
                out.insert("uid".to_string(), Value::String(reader.string(field, wire_type, "uid")?));
            }
            5 => {
                let api_version = reader.string(field, wire_type, "apiVersion")?;
                out.insert("apiVersion".to_string(), Value::String(api_version));
            }
            6 => {
                out.insert("controller".to_string(), Value::Bool(reader.bool(field, wire_type)?));
            }
            7 => {
                out.insert("blockOwnerDeletion".to_string(), Value::Bool(reader.bool(field, wire_type)?));
            }
            _ => reader.skip(field, wire_type)?,
        }
    }
    Ok(out)
}

/// meta/v1 Time {seconds=1, nanos=2} as RFC 3339 in UTC at second precision, the way
/// `metav1.Time` marshals; `None` for the zero time.
fn time_field(reader: &mut Reader<'_>) -> Result<Option<String>, ProtobufError> {
    let mut seconds: i64 = 0;
    let mut nanos: i64 = 0;
    while let Some((field, wire_type)) = reader.next_key()? {
        match field {
            1 => seconds = reader.varint_field(field, wire_type)? as i64,
            // int32 on the wire is sign-extended to 64 bits; truncating recovers it.
            2 => nanos = i64::from(reader.varint_field(field, wire_type)? as i32),
            _ => reader.skip(field, wire_type)?,
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(None);
    }
    Ok(Some(format_rfc3339(seconds)))
}

fn insert_non_empty(out: &mut Map<String, Value>, name: &str, map: Map<String, Value>) {
    if !map.is_empty() {
        out.insert(name.to_string(), Value::Object(map));
    }
}

fn insert_non_empty_string(out: &mut Map<String, Value>, name: &str, value: String) {
    if !value.is_empty() {
        out.insert(name.to_string(), Value::String(value));
    }
}

// === Wire format ===

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// A cursor over one message's bytes. `message` names the message for error reports.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
    /// How many messages enclose this one; checked against [`MAX_DEPTH`] on every descent.
    depth: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], message: &'static str, depth: usize) -> Result<Self, ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep { max: MAX_DEPTH });
        }
        Ok(Reader { buf, pos: 0, message, depth })
    }

    fn truncated(&self) -> ProtobufError {
        ProtobufError::Truncated { message: self.message }
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or_else(|| self.truncated())?;
            self.pos += 1;
            // The tenth byte may only contribute the 64th bit.
            if i == 9 && byte > 1 {
                return Err(ProtobufError::MalformedVarint { message: self.message });
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::MalformedVarint { message: self.message })
    }

    /// The next field key, or `None` at the end of the message.
    fn next_key(&mut self) -> Result<Option<(u32, u8)>, ProtobufError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(ProtobufError::InvalidFieldNumber { message: self.message, field });
        }
        // Both conversions are lossless: field < 2^29 and the wire type is three bits.
        Ok(Some((field as u32, (key & 7) as u8)))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ProtobufError> {
        let end = self.pos.checked_add(len).filter(|&end| end <= self.buf.len()).ok_or_else(|| self.truncated())?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn expect(&self, field: u32, wire_type: u8, expected: u8) -> Result<(), ProtobufError> {
        if wire_type == expected {
            Ok(())
        } else {
            Err(ProtobufError::WrongWireType { message: self.message, field, wire_type, expected })
        }
    }

    fn bytes(&mut self, field: u32, wire_type: u8) -> Result<&'a [u8], ProtobufError> {
        self.expect(field, wire_type, WIRE_LEN)?;
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.truncated())?;
        self.take(len)
    }

    fn string(&mut self, field: u32, wire_type: u8, name: &'static str) -> Result<String, ProtobufError> {
        let bytes = self.bytes(field, wire_type)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 { message: self.message, field: name })
    }

    fn varint_field(&mut self, field: u32, wire_type: u8) -> Result<u64, ProtobufError> {
        self.expect(field, wire_type, WIRE_VARINT)?;
        self.varint()
    }

    fn bool(&mut self, field: u32, wire_type: u8) -> Result<bool, ProtobufError> {
        Ok(self.varint_field(field, wire_type)? != 0)
    }

    /// A length-delimited field holding an embedded message, one level deeper.
    fn message(&mut self, field: u32, wire_type: u8, message: &'static str) -> Result<Reader<'a>, ProtobufError> {
        let bytes = self.bytes(field, wire_type)?;
        Reader::new(bytes, message, self.depth + 1)
    }

    /// A `map<string, V>` entry: key=1, value=2, either possibly absent (then empty).
    fn map_entry(
        &mut self,
        field: u32,
        wire_type: u8,
        message: &'static str,
    ) -> Result<(String, &'a [u8]), ProtobufError> {
        let mut entry = self.message(field, wire_type, message)?;
        let mut key = String::new();
        let mut value: &'a [u8] = &[];
        while let Some((field, wire_type)) = entry.next_key()? {
            match field {
                1 => key = entry.string(field, wire_type, "key")?,
                2 => value = entry.bytes(field, wire_type)?,
                _ => entry.skip(field, wire_type)?,
            }
        }
        Ok((key, value))
    }

    fn string_map_entry(
        &mut self,
        field: u32,
        wire_type: u8,
        message: &'static str,
    ) -> Result<(String, String), ProtobufError> {
        let (key, value) = self.map_entry(field, wire_type, message)?;
        let value =
            String::from_utf8(value.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 { message, field: "value" })?;
        Ok((key, value))
    }

    fn bytes_map_entry(
        &mut self,
        field: u32,
        wire_type: u8,
        message: &'static str,
    ) -> Result<(String, Vec<u8>), ProtobufError> {
        let (key, value) = self.map_entry(field, wire_type, message)?;
        Ok((key, value.to_vec()))
    }

    /// Skips a field this decoder does not need, by wire type and without recursion.
    fn skip(&mut self, field: u32, wire_type: u8) -> Result<(), ProtobufError> {
        match wire_type {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8).map(drop),
            WIRE_LEN => self.bytes(field, wire_type).map(drop),
            WIRE_FIXED32 => self.take(4).map(drop),
            _ => Err(ProtobufError::UnsupportedWireType { message: self.message, field, wire_type }),
        }
    }
}

/// Standard base64 with padding, as Go's encoding/json writes `[]byte`.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `time.Unix(seconds, 0).UTC().Format(time.RFC3339)`.
fn format_rfc3339(seconds: i64) -> String {
    super::table::format_rfc3339(i128::from(seconds) * 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Bodies captured from kubectl v1.32.5 POSTing to a fake API server
    /// (`KUBECONFIG=... kubectl create ...`), hex-encoded.
    mod fixtures {
        /// `kubectl create configmap x --from-literal=a=b`
        pub const CONFIGMAP_LITERAL: &str = "6b3873000a0f0a0276311209436f6e6669674d6170121b0a110a017812001a0022002a0032003800420012060a01611201621a002200";
        /// `kubectl create secret generic s --from-literal=k=v`
        pub const SECRET_LITERAL: &str = "6b3873000a0c0a0276311206536563726574121d0a110a017312001a0022002a0032003800420012060a016b1201761a001a002200";
        /// `kubectl create configmap multi --from-literal=z=1 --from-literal=a=2 --from-file=text.txt
        /// --from-file=bin.dat -n other` (bin.dat is `00 01 ff fe " binary"`)
        pub const CONFIGMAP_FILES: &str = "6b3873000a0f0a0276311209436f6e6669674d6170125e0a1a0a056d756c746912001a056f7468657222002a0032003800420012060a016112013212180a08746578742e747874120c68656c6c6f0a776f726c640a12060a017a1201311a160a0762696e2e646174120b0001fffe2062696e6172791a002200";
        /// `kubectl create secret generic typed --type=example.com/custom --from-literal=user=admin
        /// --from-literal=pass='p@ss w0rd' --from-file=bin.dat`
        pub const SECRET_TYPED: &str = "6b3873000a0c0a027631120653656372657412650a150a05747970656412001a0022002a0032003800420012160a0762696e2e646174120b0001fffe2062696e61727912110a04706173731209704073732077307264120d0a0475736572120561646d696e1a126578616d706c652e636f6d2f637573746f6d1a002200";
        /// `kubectl create configmap hashed --from-literal=a=b --append-hash`
        pub const CONFIGMAP_HASHED: &str = "6b3873000a0f0a0276311209436f6e6669674d6170122b0a210a116861736865642d34646b396d37646d6d6712001a0022002a0032003800420012060a01611201621a002200";
        /// `kubectl create secret docker-registry reg --docker-server=r.io --docker-username=u
        /// --docker-password=p`
        pub const SECRET_DOCKER: &str = "6b3873000a0c0a0276311206536563726574128c010a130a0372656712001a0022002a0032003800420012550a112e646f636b6572636f6e6669676a736f6e12407b226175746873223a7b22722e696f223a7b22757365726e616d65223a2275222c2270617373776f7264223a2270222c2261757468223a2264547077227d7d7d1a1e6b756265726e657465732e696f2f646f636b6572636f6e6669676a736f6e1a002200";
        /// `kubectl create namespace nn`
        pub const NAMESPACE: &str = "6b3873000a0f0a02763112094e616d657370616365121a0a120a026e6e12001a0022002a0032003800420012001a020a001a002200";
        /// `kubectl create serviceaccount sa`
        pub const SERVICE_ACCOUNT: &str =
            "6b3873000a140a027631120e536572766963654163636f756e7412140a120a02736112001a0022002a003200380042001a002200";
        /// `kubectl create deployment web --image=busybox --replicas=3 --port=8080 -- sh -c 'httpd -f -p 8080'`
        /// (kubectl v1.33)
        pub const DEPLOYMENT_WEB: &str = "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412d8010a1f0a0377656212001a0022002a003200380042005a0a0a03617070120377656212a6010803120c0a0a0a0361707012037765621a8b010a1c0a0012001a0022002a003200380042005a0a0a036170701203776562126b124d0a0762757379626f78120762757379626f781a0273681a022d631a106874747064202d66202d7020383038302a00320b0a00100018903f22002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200";
        /// `kubectl create deployment zero --image=nginx --replicas=0` (v1.33)
        pub const DEPLOYMENT_ZERO: &str = "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412af010a210a047a65726f12001a0022002a003200380042005a0b0a0361707012047a65726f127c0800120d0a0b0a0361707012047a65726f1a610a1d0a0012001a0022002a003200380042005a0b0a0361707012047a65726f124012220a056e67696e7812056e67696e782a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200";
        /// `kubectl create service nodeport np --tcp=8080:http --node-port=30080` (v1.33)
        pub const SERVICE_NODEPORT: &str = "6b3873000a0d0a027631120753657276696365126d0a1d0a026e7012001a0022002a003200380042005a090a0361707012026e7012480a230a09383038302d68747470120354435018903f220a080110001a04687474702880eb0112090a0361707012026e701a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200";
        /// `kubectl create job j1 --image=busybox -- echo hi` (v1.33)
        pub const JOB: &str = "6b3873000a0f0a0862617463682f763112034a6f621284010a120a026a3112001a0022002a00320038004200126432620a100a0012001a0022002a00320038004200124e122b0a026a31120762757379626f781a046563686f1a0268692a0042006a007200800100880100900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a082000280030003a001a002200";
        /// `kubectl create ingress ing --class=rk --rule="a.example.com/x*=web:80,tls=sec"
        /// --default-backend=web:80` (v1.33)
        pub const INGRESS: &str = "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e677265737312760a130a03696e6712001a0022002a00320038004200125b0a0d220b0a0377656212040a00105012140a0d612e6578616d706c652e636f6d12037365631a300a0d612e6578616d706c652e636f6d121f0a1d0a1b0a022f78120d220b0a0377656212040a0010501a065072656669782202726b1a020a001a002200";
        /// `kubectl create deployment d --image=nginx`
        pub const DEPLOYMENT: &str = "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412a3010a1b0a016412001a0022002a003200380042005a080a0361707012016412760801120a0a080a036170701201641a5e0a1a0a0012001a0022002a003200380042005a080a03617070120164124012220a056e67696e7812056e67696e782a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200";
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("valid hex")).collect()
    }

    fn decode(fixture: &str) -> Value {
        decode_object(&hex(fixture)).expect("fixture decodes")
    }

    // --- a minimal encoder, to build inputs kubectl never sends ---

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn len_field(field: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(field) << 3 | 2, &mut out);
        varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out
    }

    fn varint_field(field: u32, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(field) << 3, &mut out);
        varint(value, &mut out);
        out
    }

    fn entry(field: u32, key: &str, value: &[u8]) -> Vec<u8> {
        len_field(field, &[len_field(1, key.as_bytes()), len_field(2, value)].concat())
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [len_field(1, api_version.as_bytes()), len_field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), len_field(1, &type_meta), len_field(2, raw), len_field(3, b""), len_field(4, b"")].concat()
    }

    // --- captured kubectl bodies ---

    #[test]
    fn configmap_from_literal() {
        assert_eq!(
            decode(fixtures::CONFIGMAP_LITERAL),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn secret_from_literal_is_base64_in_json() {
        assert_eq!(
            decode(fixtures::SECRET_LITERAL),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}})
        );
    }

    #[test]
    fn configmap_with_files_namespace_and_binary_data() {
        assert_eq!(
            decode(fixtures::CONFIGMAP_FILES),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "multi", "namespace": "other"},
                "data": {"a": "2", "z": "1", "text.txt": "hello\nworld\n"},
                "binaryData": {"bin.dat": "AAH//iBiaW5hcnk="},
            })
        );
    }

    #[test]
    fn typed_secret_with_binary_file() {
        assert_eq!(
            decode(fixtures::SECRET_TYPED),
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "typed"},
                "type": "example.com/custom",
                "data": {"bin.dat": "AAH//iBiaW5hcnk=", "pass": "cEBzcyB3MHJk", "user": "YWRtaW4="},
            })
        );
    }

    #[test]
    fn hashed_configmap_and_docker_registry_secret() {
        assert_eq!(decode(fixtures::CONFIGMAP_HASHED)["metadata"]["name"], "hashed-4dk9m7dmmg");
        let docker = decode(fixtures::SECRET_DOCKER);
        assert_eq!(docker["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(
            docker["data"][".dockerconfigjson"],
            base64_encode(br#"{"auths":{"r.io":{"username":"u","password":"p","auth":"dTpw"}}}"#)
        );
    }

    #[test]
    fn namespace_and_service_account() {
        assert_eq!(
            decode(fixtures::NAMESPACE),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nn"}, "spec": {}, "status": {}})
        );
        assert_eq!(
            decode(fixtures::SERVICE_ACCOUNT),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}})
        );
    }

    #[test]
    fn deployments_from_kubectl_create() {
        assert_eq!(
            decode(fixtures::DEPLOYMENT),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "labels": {"app": "d"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}})
        );
        assert_eq!(
            decode(fixtures::DEPLOYMENT_WEB)["spec"],
            json!({"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "busybox", "image": "busybox",
                        "command": ["sh", "-c", "httpd -f -p 8080"], "ports": [{"containerPort": 8080}]}]}}})
        );
        // replicas is a pointer: an explicit 0 stays, it does not become the default 1.
        assert_eq!(decode(fixtures::DEPLOYMENT_ZERO)["spec"]["replicas"], json!(0));
    }

    #[test]
    fn services_jobs_and_ingresses_from_kubectl_create() {
        assert_eq!(
            decode(fixtures::SERVICE_NODEPORT),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "np", "labels": {"app": "np"}},
                "spec": {"type": "NodePort", "selector": {"app": "np"},
                    "ports": [{"name": "8080-http", "protocol": "TCP", "port": 8080, "targetPort": "http",
                        "nodePort": 30080}]}})
        );
        assert_eq!(
            decode(fixtures::JOB),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j1"},
                "spec": {"template": {"spec": {"containers": [{"name": "j1", "image": "busybox",
                    "command": ["echo", "hi"]}], "restartPolicy": "Never"}}}})
        );
        let service = json!({"name": "web", "port": {"number": 80}});
        assert_eq!(
            decode(fixtures::INGRESS),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
                "spec": {"ingressClassName": "rk", "defaultBackend": {"service": service},
                    "rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/x", "pathType": "Prefix",
                        "backend": {"service": service}}]}}],
                    "tls": [{"hosts": ["a.example.com"], "secretName": "sec"}]}})
        );
    }

    #[test]
    fn pointer_fields_keep_zeros_value_fields_drop_them_and_unknown_fields_are_refused() {
        // Pod{spec: PodSpec{containers: [Container{name: "c", stdin: false}],
        //     terminationGracePeriodSeconds: 0, hostNetwork: false,
        //     volumes: [Volume{name: "v", emptyDir: {}}]}}
        let container = [len_field(1, b"c"), varint_field(16, 0)].concat();
        let volume = [len_field(1, b"v"), len_field(2, &len_field(2, b""))].concat();
        let spec = [len_field(2, &container), varint_field(4, 0), varint_field(11, 0), len_field(1, &volume)].concat();
        let pod = [len_field(1, &len_field(1, b"p")), len_field(2, &spec)].concat();
        assert_eq!(
            decode_object(&envelope("v1", "Pod", &pod)).expect("pod"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c"}], "terminationGracePeriodSeconds": 0,
                    "volumes": [{"name": "v", "emptyDir": {}}]}})
        );
        // A field the tables do not know: ignored when zero, refused (never dropped) when set.
        let with_unknown = |value: u64| {
            let container = [len_field(1, b"c"), varint_field(99, value)].concat();
            let pod = len_field(2, &len_field(2, &container));
            decode_object(&envelope("v1", "Pod", &pod))
        };
        assert!(with_unknown(0).is_ok());
        assert_eq!(with_unknown(1), Err(ProtobufError::UnsupportedField { message: "Container", field: 99 }));
        // Inline messages: ConfigMapKeySelector's name sits in the selector itself.
        let selector = [len_field(1, &len_field(1, b"cm")), len_field(2, b"k")].concat();
        let env = [len_field(1, b"E"), len_field(3, &len_field(3, &selector))].concat();
        let container = [len_field(1, b"c"), len_field(7, &env)].concat();
        let pod = len_field(2, &len_field(2, &container));
        assert_eq!(
            decode_object(&envelope("v1", "Pod", &pod)).expect("pod")["spec"]["containers"][0]["env"],
            json!([{"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}])
        );
    }

    #[test]
    fn other_kinds_are_still_refused() {
        let body = envelope("apps/v1", "StatefulSet", &len_field(1, &len_field(1, b"s")));
        assert_eq!(
            decode_object(&body),
            Err(ProtobufError::UnsupportedKind { api_version: "apps/v1".to_string(), kind: "StatefulSet".to_string() })
        );
    }

    // --- fields kubectl's generators never set ---

    #[test]
    fn object_meta_with_every_create_field() {
        let owner = [
            len_field(5, b"apps/v1"),
            len_field(1, b"ReplicaSet"),
            len_field(3, b"web-abc"),
            len_field(4, b"uid-1"),
            varint_field(6, 1),
            varint_field(7, 0),
        ]
        .concat();
        let meta = [
            len_field(1, b"cfg"),
            len_field(2, b"cfg-"),
            len_field(3, b"prod"),
            len_field(5, b"1234"),
            len_field(6, b"42"),
            varint_field(7, 3),
            len_field(8, &[varint_field(1, 1_704_067_200), varint_field(2, 500)].concat()),
            len_field(9, &varint_field(1, 1_704_067_260)),
            varint_field(10, 30),
            entry(11, "app", b"web"),
            entry(11, "tier", b"fe"),
            entry(12, "note", b"hello, world"),
            len_field(13, &owner),
            len_field(14, b"example.com/cleanup"),
            len_field(14, b"kubernetes"),
            len_field(17, b"\x0a\x03abc"),
        ]
        .concat();
        let raw = [len_field(1, &meta), entry(2, "k", b"v"), varint_field(4, 1)].concat();
        let decoded = decode_object(&envelope("v1", "ConfigMap", &raw)).expect("decodes");
        assert_eq!(
            decoded,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "cfg", "generateName": "cfg-", "namespace": "prod", "uid": "1234",
                    "resourceVersion": "42", "generation": 3,
                    "creationTimestamp": "2024-01-01T00:00:00Z", "deletionTimestamp": "2024-01-01T00:01:00Z",
                    "deletionGracePeriodSeconds": 30,
                    "labels": {"app": "web", "tier": "fe"},
                    "annotations": {"note": "hello, world"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                         "uid": "uid-1", "controller": true, "blockOwnerDeletion": false}],
                    "finalizers": ["example.com/cleanup", "kubernetes"],
                },
                "data": {"k": "v"},
                "immutable": true,
            })
        );
    }

    #[test]
    fn secret_string_data_and_immutable() {
        let raw = [
            len_field(1, &len_field(1, b"s")),
            entry(4, "password", b"hunter2"),
            len_field(3, b"Opaque"),
            varint_field(5, 0),
        ]
        .concat();
        assert_eq!(
            decode_object(&envelope("v1", "Secret", &raw)).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "stringData": {"password": "hunter2"}, "type": "Opaque", "immutable": false})
        );
    }

    #[test]
    fn service_account_references_and_namespace_finalizers() {
        let reference = [len_field(1, b"Secret"), len_field(3, b"token"), len_field(7, b"")].concat();
        let raw = [
            len_field(1, &len_field(1, b"builder")),
            len_field(2, &reference),
            len_field(3, &len_field(1, b"registry")),
            varint_field(4, 0),
        ]
        .concat();
        assert_eq!(
            decode_object(&envelope("v1", "ServiceAccount", &raw)).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"},
                   "secrets": [{"kind": "Secret", "name": "token"}],
                   "imagePullSecrets": [{"name": "registry"}],
                   "automountServiceAccountToken": false})
        );
        let raw = [
            len_field(1, &len_field(1, b"team")),
            len_field(2, &len_field(1, b"kubernetes")),
            len_field(3, &len_field(1, b"Active")),
        ]
        .concat();
        assert_eq!(
            decode_object(&envelope("v1", "Namespace", &raw)).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        );
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let mut fixed64 = Vec::new();
        varint(99 << 3 | 1, &mut fixed64);
        fixed64.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut fixed32 = Vec::new();
        varint(98 << 3 | 5, &mut fixed32);
        fixed32.extend_from_slice(&[1, 2, 3, 4]);
        let meta = [len_field(1, b"x"), varint_field(50, 7), len_field(51, b"junk"), fixed64.clone()].concat();
        let raw = [len_field(1, &meta), fixed32, varint_field(100, u64::MAX), entry(2, "a", b"b"), fixed64].concat();
        assert_eq!(
            decode_object(&envelope("v1", "ConfigMap", &raw)).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn map_entries_with_missing_parts_and_duplicate_keys() {
        let raw = [
            len_field(2, &len_field(1, b"only-key")),
            len_field(2, &len_field(2, b"only-value")),
            entry(2, "dup", b"first"),
            entry(2, "dup", b"second"),
        ]
        .concat();
        assert_eq!(
            decode_config_map(&raw).expect("decodes"),
            json!({"data": {"only-key": "", "": "only-value", "dup": "second"}})
        );
    }

    // --- malformed input ---

    #[test]
    fn envelope_errors() {
        assert_eq!(decode_object(b""), Err(ProtobufError::MissingMagic));
        assert_eq!(decode_object(b"{\"kind\":\"ConfigMap\"}"), Err(ProtobufError::MissingMagic));
        assert_eq!(
            decode_object(b"k8s\0"),
            Err(ProtobufError::UnsupportedKind { api_version: String::new(), kind: String::new() })
        );
        let gzip = [
            MAGIC.to_vec(),
            len_field(1, &[len_field(1, b"v1"), len_field(2, b"ConfigMap")].concat()),
            len_field(3, b"gzip"),
        ]
        .concat();
        assert_eq!(decode_object(&gzip), Err(ProtobufError::UnsupportedContentEncoding("gzip".to_string())));
        let json_raw = [
            MAGIC.to_vec(),
            len_field(1, &[len_field(1, b"v1"), len_field(2, b"ConfigMap")].concat()),
            len_field(4, b"application/json"),
        ]
        .concat();
        assert_eq!(
            decode_object(&json_raw),
            Err(ProtobufError::UnsupportedContentType("application/json".to_string()))
        );
        let explicit = [
            MAGIC.to_vec(),
            len_field(1, &[len_field(1, b"v1"), len_field(2, b"ConfigMap")].concat()),
            len_field(4, CONTENT_TYPE.as_bytes()),
        ]
        .concat();
        assert!(decode_object(&explicit).is_ok());
    }

    #[test]
    fn wire_level_errors() {
        let cm = |raw: &[u8]| decode_object(&envelope("v1", "ConfigMap", raw));
        // A length running past the end of the message.
        assert_eq!(cm(&[0x0a, 0x05, 0x0a]), Err(ProtobufError::Truncated { message: "ConfigMap" }));
        // An eleven-byte varint.
        let long = [vec![0x38], vec![0xff; 10], vec![0x01]].concat();
        assert_eq!(cm(&len_field(1, &long)), Err(ProtobufError::MalformedVarint { message: "ObjectMeta" }));
        // A tenth byte that would overflow 64 bits.
        let overflow = [vec![0x38], vec![0xff; 9], vec![0x02]].concat();
        assert_eq!(cm(&len_field(1, &overflow)), Err(ProtobufError::MalformedVarint { message: "ObjectMeta" }));
        // Field number 0.
        assert_eq!(cm(&[0x00, 0x00]), Err(ProtobufError::InvalidFieldNumber { message: "ConfigMap", field: 0 }));
        // A group, which Kubernetes never encodes, in an unknown field and in a known one.
        assert_eq!(
            cm(&[0x4b]),
            Err(ProtobufError::UnsupportedWireType { message: "ConfigMap", field: 9, wire_type: 3 })
        );
        assert_eq!(
            cm(&[0x0b]),
            Err(ProtobufError::WrongWireType { message: "ConfigMap", field: 1, wire_type: 3, expected: 2 })
        );
        // metadata sent as a varint.
        assert_eq!(
            cm(&[0x08, 0x01]),
            Err(ProtobufError::WrongWireType { message: "ConfigMap", field: 1, wire_type: 0, expected: 2 })
        );
        // Invalid UTF-8 in a string field and in a string map value.
        assert_eq!(
            cm(&len_field(1, &len_field(1, &[0xff, 0xfe]))),
            Err(ProtobufError::InvalidUtf8 { message: "ObjectMeta", field: "name" })
        );
        assert_eq!(
            cm(&entry(2, "k", &[0xc3])),
            Err(ProtobufError::InvalidUtf8 { message: "ConfigMap.data", field: "value" })
        );
        // A length larger than usize/the buffer.
        let mut huge = vec![0x0a];
        varint(u64::MAX, &mut huge);
        assert_eq!(cm(&huge), Err(ProtobufError::Truncated { message: "ConfigMap" }));
    }

    #[test]
    fn depth_is_bounded() {
        assert!(Reader::new(b"", "x", MAX_DEPTH).is_ok());
        assert_eq!(Reader::new(b"", "x", MAX_DEPTH + 1).err(), Some(ProtobufError::TooDeep { max: MAX_DEPTH }));
        let nested = len_field(1, b"");
        let mut reader = Reader::new(&nested, "x", MAX_DEPTH).expect("at the limit");
        let (field, wire_type) = reader.next_key().expect("key").expect("field");
        assert_eq!(reader.message(field, wire_type, "y").err(), Some(ProtobufError::TooDeep { max: MAX_DEPTH }));
    }

    #[test]
    fn every_truncation_of_every_fixture_is_an_error_not_a_panic() {
        let all = [
            fixtures::CONFIGMAP_LITERAL,
            fixtures::SECRET_LITERAL,
            fixtures::CONFIGMAP_FILES,
            fixtures::SECRET_TYPED,
            fixtures::CONFIGMAP_HASHED,
            fixtures::SECRET_DOCKER,
            fixtures::NAMESPACE,
            fixtures::SERVICE_ACCOUNT,
            fixtures::DEPLOYMENT,
            fixtures::DEPLOYMENT_WEB,
            fixtures::DEPLOYMENT_ZERO,
            fixtures::SERVICE_NODEPORT,
            fixtures::JOB,
            fixtures::INGRESS,
        ];
        for fixture in all {
            let body = hex(fixture);
            // A cut between two envelope fields leaves a shorter but well-formed body, so only
            // require that no cut panics...
            for cut in 0..body.len() {
                let _ = decode_object(&body[..cut]);
            }
            // ...and that every cut inside the `raw` field is reported. The envelope is
            // magic, typeMeta (one-byte length at offset 5), raw, then `1a 00 22 00`.
            let raw_key = 4 + 2 + usize::from(body[5]);
            assert_eq!(body[raw_key], 0x12, "raw field follows typeMeta");
            for cut in raw_key + 1..body.len() - 4 {
                assert!(decode_object(&body[..cut]).is_err(), "cut at {cut} of {fixture} decoded");
            }
        }
    }

    #[test]
    fn random_mutations_never_panic() {
        // A fixed xorshift generator keeps the test deterministic without a rand dependency.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [hex(fixtures::CONFIGMAP_FILES), hex(fixtures::SECRET_TYPED), hex(fixtures::NAMESPACE)];
        for round in 0..3000 {
            let mut body = seeds[round % seeds.len()].clone();
            for _ in 0..(next() % 4 + 1) {
                let index = 4 + (next() as usize) % (body.len() - 4);
                body[index] = next() as u8;
            }
            let _ = decode_object(&body);
        }
    }

    #[test]
    fn base64_and_time_helpers() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
