//! Turning a stored `serde_json::Value` into a k8s-openapi struct and back, the way
//! Kubernetes' decoder does: `null` means "unset", unknown fields are dropped, and a
//! body of the wrong shape is a 400 whose message names the field, like
//! `json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32`.
//!
//! serde reports *what* went wrong but not *where*. The place is found by replaying
//! the decode on truncated copies of the body: serde stops at the first bad value it
//! meets, so within an object (or array) the culprit is the first member whose
//! presence brings the original error back. That costs a few dozen decodes, only on
//! the error path.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One step of a path into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Why a body could not be decoded: Kubernetes' wording, without the
/// `<Kind> in version "v1" cannot be handled as a <Kind>: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// A copy of `v` with every `null` object member removed (Kubernetes treats an
/// explicit null as "not set") and, at the top level, without `apiVersion` and
/// `kind`, which k8s-openapi insists match its own constants: the caller has
/// already routed the object by its kind, and serializing puts them back.
pub fn prepare(v: &Value) -> Value {
    let mut out = strip_nulls(v);
    if let Some(m) = out.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    out
}

pub fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Decodes a prepared body, explaining a failure like Kubernetes does.
pub fn decode<T: DeserializeOwned>(kind: &str, raw: &Value) -> Result<T, DecodeError> {
    T::deserialize(raw).map_err(|e| DecodeError(explain::<T>(kind, raw, &e.to_string())))
}

/// Serializes a typed object (k8s-openapi's serializers only fail on impossible
/// timestamps).
pub fn encode<T: Serialize>(typed: &T) -> Result<Value, DecodeError> {
    serde_json::to_value(typed).map_err(|e| DecodeError(format!("cannot encode the object: {e}")))
}

fn attempt<T: DeserializeOwned>(v: &Value) -> Option<String> {
    T::deserialize(v).err().map(|e| e.to_string())
}

pub fn get<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

fn get_mut<'a>(root: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.get_mut(i),
    })
}

/// A copy of `root` with the node at `path` replaced.
fn replaced(root: &Value, path: &[Seg], with: Value) -> Value {
    let mut copy = root.clone();
    if let Some(slot) = get_mut(&mut copy, path) {
        *slot = with;
    }
    copy
}

/// The path of the value the decoder first choked on.
fn locate<T: DeserializeOwned>(root: &Value, target: &str) -> Vec<Seg> {
    let mut path = Vec::new();
    loop {
        let Some(node) = get(root, &path) else { return path };
        let step = match node {
            Value::Object(m) => {
                let keys: Vec<&String> = m.keys().collect();
                (0..=keys.len())
                    .find_map(|n| {
                        let prefix: Map<String, Value> =
                            m.iter().take(n).map(|(k, v)| (k.clone(), v.clone())).collect();
                        let trial = replaced(root, &path, Value::Object(prefix));
                        (attempt::<T>(&trial).as_deref() == Some(target))
                            .then(|| n.checked_sub(1).map(|i| Seg::Key(keys[i].clone())))
                    })
                    .flatten()
            }
            Value::Array(a) => (0..=a.len())
                .find_map(|n| {
                    let trial = replaced(root, &path, Value::Array(a[..n].to_vec()));
                    (attempt::<T>(&trial).as_deref() == Some(target)).then(|| n.checked_sub(1).map(Seg::Index))
                })
                .flatten(),
            _ => None,
        };
        match step {
            Some(seg) => path.push(seg),
            // Even without members the error is there (or no member brings it back):
            // this node itself is the culprit.
            None => return path,
        }
    }
}

/// What the decoder expects at `path` (a struct name like `PodSpec`, or serde's
/// words like `a string`), found by putting a `true` there.
fn expected_at<T: DeserializeOwned>(root: &Value, path: &[Seg], kind: &str) -> Option<String> {
    if path.is_empty() {
        return Some(kind.to_string());
    }
    let msg = attempt::<T>(&replaced(root, path, Value::Bool(true)))?;
    expected_of(&msg)
}

fn expected_of(msg: &str) -> Option<String> {
    msg.rsplit_once(", expected ").map(|(_, e)| e.to_string())
}

/// The Go type Kubernetes would name for what serde calls `expected`.
fn go_type<T: DeserializeOwned>(root: &Value, path: &[Seg], expected: &str) -> String {
    go_type_at::<T>(root, path, expected, 0)
}

/// `depth` bounds the probing of nested lists and maps (`[][]string` is as deep
/// as Kubernetes types go).
fn go_type_at<T: DeserializeOwned>(root: &Value, path: &[Seg], expected: &str, depth: u32) -> String {
    let inner = |probe: Value| {
        let msg = attempt::<T>(&replaced(root, path, probe))?;
        let e = expected_of(&msg)?;
        // The probe must fail inside itself, not where it was put.
        (depth < 3 && e != expected).then(|| go_type_at::<T>(root, path, &e, depth + 1))
    };
    match expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => {
            let signed = expected.starts_with('i');
            format!("{}int{}", if signed { "" } else { "u" }, &expected[1..])
        }
        "f32" | "f64" => format!("float{}", &expected[1..]),
        "a string" => "string".into(),
        "a boolean" => "bool".into(),
        "a base64-encoded string" => "[]uint8".into(),
        "a 32-bit integer" | "IntOrString" => "intstr.IntOrString".into(),
        "Quantity" => "resource.Quantity".into(),
        "a sequence" => {
            let elem = inner(Value::Array(vec![Value::Bool(true)])).unwrap_or_else(|| "interface {}".into());
            format!("[]{elem}")
        }
        "a map" => {
            let one = Value::Object(Map::from_iter([("k".to_string(), Value::Bool(true))]));
            let val = inner(one).unwrap_or_else(|| "interface {}".into());
            format!("map[string]{val}")
        }
        s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()) => format!("v1.{s}"),
        other => other.to_string(),
    }
}

/// How Go's decoder names the JSON value it could not place.
fn go_value(v: &Value, expected_int: bool) -> String {
    match v {
        Value::String(_) => "string".into(),
        Value::Number(n) if expected_int => format!("number {n}"),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
        Value::Null => "null".into(),
    }
}

/// Renders a path the way Kubernetes prints field paths (`a.b[0].c`).
pub fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn explain<T: DeserializeOwned>(kind: &str, root: &Value, msg: &str) -> String {
    let path = locate::<T>(root, msg);
    let Some(culprit) = get(root, &path) else { return msg.to_string() };
    let Some(expected) = expected_of(msg) else {
        // Not a type mismatch (a bad base64 string, say): keep serde's words.
        return format!("{msg} (field {})", display_path(&path));
    };
    if path.is_empty() {
        return format!("json: cannot unmarshal {} into Go value of type v1.{kind}", go_value(culprit, false));
    }
    // Go names the struct holding the innermost struct field and the JSON names of
    // all struct fields on the way; array indices and map keys are not fields.
    let mut owner = kind.to_string();
    let mut fields: Vec<&str> = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        if let Seg::Key(k) = seg {
            let container = expected_at::<T>(root, &path[..i], kind).unwrap_or_default();
            if container != "a map" {
                owner = container;
                fields.push(k);
            }
        }
    }
    let int = matches!(expected.as_str(), "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64");
    format!(
        "json: cannot unmarshal {} into Go struct field {owner}.{} of type {}",
        go_value(culprit, int && culprit.is_number()),
        fields.join("."),
        go_type::<T>(root, &path, &expected)
    )
}

/// Removes from `out` what the typed round trip added on its own: fields the body
/// did not have that k8s-openapi fills with a zero value because its type is not
/// optional (`metadata: {}`, `selector: {}`, `name: ""`), unless defaulting then
/// changed them. Kubernetes would have left them unset, and validation must still
/// see them as missing.
pub fn drop_artifacts(raw: &Value, plain: &Value, out: &mut Value) {
    let mut added = Vec::new();
    collect_added(raw, plain, &mut Vec::new(), &mut added);
    for (path, value) in added {
        // apiVersion and kind are always written back.
        if matches!(path.as_slice(), [Seg::Key(k)] if k == "apiVersion" || k == "kind") {
            continue;
        }
        if get(out, &path) != Some(&value) {
            continue;
        }
        let Some((last, parent)) = path.split_last() else { continue };
        if let (Some(Value::Object(m)), Seg::Key(k)) = (get_mut(out, parent), last) {
            m.remove(k);
        }
    }
}

fn collect_added(raw: &Value, plain: &Value, path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, Value)>) {
    match (raw, plain) {
        (Value::Object(r), Value::Object(p)) => {
            for (k, pv) in p {
                path.push(Seg::Key(k.clone()));
                match r.get(k) {
                    Some(rv) => collect_added(rv, pv, path, out),
                    None => out.push((path.clone(), pv.clone())),
                }
                path.pop();
            }
        }
        (Value::Array(r), Value::Array(p)) => {
            for (i, (rv, pv)) in r.iter().zip(p).enumerate() {
                path.push(Seg::Index(i));
                collect_added(rv, pv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Fields of `raw` that the typed round trip `plain` dropped: the unknown fields.
pub fn collect_dropped(raw: &Value, plain: &Value, path: &mut Vec<Seg>, out: &mut Vec<String>) {
    match (raw, plain) {
        (Value::Object(r), Value::Object(p)) => {
            for (k, rv) in r {
                path.push(Seg::Key(k.clone()));
                match p.get(k) {
                    Some(pv) => collect_dropped(rv, pv, path, out),
                    None if rv.is_null() => {}
                    None => out.push(display_path(path)),
                }
                path.pop();
            }
        }
        (Value::Array(r), Value::Array(p)) => {
            for (i, (rv, pv)) in r.iter().zip(p).enumerate() {
                path.push(Seg::Index(i));
                collect_dropped(rv, pv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Go's standard base64 decoding (which tolerates line breaks and non-zero
/// trailing bits, unlike the `base64` crate's strict mode), failing with Go's
/// message. Returns the canonical re-encoding so the strict decoder accepts it.
pub fn go_base64(s: &str) -> Result<String, String> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let corrupt = |at: usize| Err(format!("illegal base64 data at input byte {at}"));
    let src = s.as_bytes();
    let mut bytes = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    loop {
        let mut quantum = [0u32; 4];
        let mut j = 0;
        let mut len = 4;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(reencode(&bytes));
                }
                return corrupt(si - j);
            }
            let c = src[si];
            si += 1;
            if let Some(v) = val(c) {
                quantum[j] = v;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' || j < 2 {
                return corrupt(si - 1);
            }
            // Padding: "==" after two symbols, "=" after three, then nothing but
            // line breaks.
            if j == 2 {
                while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                    si += 1;
                }
                if si == src.len() {
                    return corrupt(src.len());
                }
                if src[si] != b'=' {
                    return corrupt(si - 1);
                }
                si += 1;
            }
            while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                si += 1;
            }
            if si < src.len() {
                return corrupt(si);
            }
            len = j;
            break;
        }
        let n = (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6) | quantum[3];
        let out = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        bytes.extend_from_slice(&out[..len - 1]);
        if len < 4 {
            return Ok(reencode(&bytes));
        }
    }
}

fn reencode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    #[test]
    fn names_the_field_like_kubernetes() {
        let body = prepare(&json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}, {"containerPort": "80"}]}]}
        }));
        let err = decode::<Pod>("Pod", &body).unwrap_err();
        assert_eq!(
            err.0,
            "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"
        );
        let body = prepare(&json!({"spec": {"template": {"spec": {"containers": {"name": "a"}}}}}));
        assert_eq!(
            decode::<Deployment>("Deployment", &body).unwrap_err().0,
            "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container"
        );
        let body = prepare(&json!({"metadata": {"labels": {"a": 1}}}));
        assert_eq!(
            decode::<Pod>("Pod", &body).unwrap_err().0,
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
        );
        let body = prepare(&json!({"spec": {"replicas": 1.5}}));
        assert_eq!(
            decode::<Deployment>("Deployment", &body).unwrap_err().0,
            "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        let body = prepare(&json!({"spec": "x"}));
        assert_eq!(
            decode::<Pod>("Pod", &body).unwrap_err().0,
            "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"
        );
    }

    #[test]
    fn nulls_are_unset_and_artifacts_are_dropped() {
        let raw = prepare(
            &json!({"apiVersion": "v1", "kind": "Pod", "spec": {"nodeName": null, "containers": [{"image": "x"}]}}),
        );
        let pod: Pod = decode("Pod", &raw).unwrap();
        let plain = encode(&pod).unwrap();
        let mut out = plain.clone();
        drop_artifacts(&raw, &plain, &mut out);
        // Container.name and metadata are required in k8s-openapi, not in the body.
        assert_eq!(out, json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"image": "x"}]}}));
    }

    #[test]
    fn finds_dropped_fields() {
        let raw = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "imagee": "x"}], "x": null}, "extra": 1});
        let pod: Pod = decode("Pod", &prepare(&raw)).unwrap();
        let mut out = Vec::new();
        let mut plain = encode(&pod).unwrap();
        plain["kind"] = json!("Pod");
        collect_dropped(&raw, &plain, &mut Vec::new(), &mut out);
        assert_eq!(out, vec!["extra".to_string(), "spec.containers[0].imagee".to_string()]);
    }

    #[test]
    fn base64_like_go() {
        assert_eq!(go_base64("aGVsbG8=").unwrap(), "aGVsbG8=");
        assert_eq!(go_base64("aGVs\nbG8=").unwrap(), "aGVsbG8=");
        assert_eq!(go_base64("").unwrap(), "");
        assert_eq!(go_base64("aGVsbG8").unwrap_err(), "illegal base64 data at input byte 4");
        assert_eq!(go_base64("aGV!bG8=").unwrap_err(), "illegal base64 data at input byte 3");
        assert_eq!(go_base64("aGVsbG8=x").unwrap_err(), "illegal base64 data at input byte 8");
        // Non-zero trailing bits are tolerated and re-encoded canonically.
        assert_eq!(go_base64("aGVsbG9=").unwrap(), "aGVsbG8=");
    }
}
