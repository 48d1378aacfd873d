//! Table-driven decoding of workload kinds sent with protobuf bodies: what kubectl 1.32+
//! sends for `kubectl create deployment|job|service|ingress` (captured from kubectl 1.33
//! in the tests), and Pods from clients configured for protobuf (`kubectl run` and
//! `kubectl expose` send JSON, so the Pod table is checked by hand-built bodies only).
//!
//! Each message is a [`Schema`]: its fields by number, with the JSON name and how the value
//! becomes JSON ([`Kind`]). The tables follow the `generated.proto` files of k8s.io/api
//! (core/v1, apps/v1, batch/v1, networking/v1) and apimachinery; only the messages and fields
//! that a create needs are listed.
//!
//! Two rules keep the result equal to what the same object sent as JSON would be:
//! - **Presence.** Go encodes value fields (plain `int32`, `string`, structs) always, even when
//!   zero, and pointer fields only when set. A value field's zero is what `omitempty` JSON
//!   leaves out, so it is dropped; a pointer field ([`Field::ptr`]) is kept even when zero
//!   (`replicas: 0`, `emptyDir: {}`).
//! - **Nothing is lost silently.** A field this table does not know is skipped only when it
//!   carries a zero value (a value field the client did not set); any other unknown field is
//!   [`ProtobufError::UnsupportedField`], which the API answers with 415 so the client can
//!   send JSON instead. Status messages are skipped whole: a create ignores status.

use super::{ProtobufError, Reader, WIRE_LEN, WIRE_VARINT, object_meta};
use serde_json::{Map, Value};

/// How one field's value becomes JSON.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Str,
    I32,
    I64,
    Bool,
    /// A nested message.
    Msg(&'static Schema),
    /// A nested message whose fields JSON puts into the parent (Go's `json:",inline"`).
    Inline(&'static Schema),
    /// `resource.Quantity`.
    Quantity,
    /// `map<string, string>`.
    StrMap,
    /// `map<string, resource.Quantity>`.
    QuantityMap,
    /// `intstr.IntOrString`.
    IntOrString,
    /// `meta/v1.ObjectMeta`.
    Meta,
    /// Decoded for well-formedness and left out (status on create).
    Ignore,
}

/// One field of a message.
#[derive(Clone, Copy)]
pub(super) struct Field {
    pub num: u32,
    pub name: &'static str,
    pub kind: Kind,
    /// `repeated` on the wire, a JSON array.
    pub repeated: bool,
    /// A Go pointer: present means set, even when zero.
    pub ptr: bool,
}

/// One message: its name (for errors) and its fields.
pub(super) struct Schema {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// A value field.
pub(super) const fn f(num: u32, name: &'static str, kind: Kind) -> Field {
    Field { num, name, kind, repeated: false, ptr: false }
}

/// A pointer field: kept when present, even with a zero value.
pub(super) const fn p(num: u32, name: &'static str, kind: Kind) -> Field {
    Field { num, name, kind, repeated: false, ptr: true }
}

/// A repeated field.
pub(super) const fn r(num: u32, name: &'static str, kind: Kind) -> Field {
    Field { num, name, kind, repeated: true, ptr: false }
}

/// Decodes one message of `schema` into JSON fields.
pub(super) fn decode(schema: &'static Schema, raw: &[u8], depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    let mut reader = Reader::new(raw, schema.name, depth)?;
    message(schema, &mut reader)
}

fn message(schema: &'static Schema, reader: &mut Reader<'_>) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    let mut arrays: Map<String, Value> = Map::new();
    let mut maps: Map<String, Value> = Map::new();
    while let Some((num, wire_type)) = reader.next_key()? {
        let Some(field) = schema.fields.iter().find(|f| f.num == num) else {
            unknown(schema, reader, num, wire_type)?;
            continue;
        };
        match field.kind {
            Kind::StrMap | Kind::QuantityMap => {
                let (key, value) = map_entry(field, reader, num, wire_type)?;
                let entry = maps.entry(field.name.to_string()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(key, value);
                }
            }
            Kind::Inline(schema) => {
                let mut nested = reader.message(num, wire_type, schema.name)?;
                out.extend(message(schema, &mut nested)?);
            }
            _ => {
                let value = scalar(field, reader, num, wire_type)?;
                if field.repeated {
                    let entry = arrays.entry(field.name.to_string()).or_insert_with(|| Value::Array(Vec::new()));
                    if let (Value::Array(a), Some(v)) = (entry, value) {
                        a.push(v);
                    }
                } else if let Some(v) = value
                    && (field.ptr || !is_zero(&v))
                {
                    out.insert(field.name.to_string(), v);
                } else {
                    // A later occurrence of a field replaces an earlier one (protobuf's
                    // last-one-wins), also when the later one is a zero.
                    out.remove(field.name);
                }
            }
        }
    }
    out.extend(arrays);
    out.extend(maps);
    Ok(out)
}

/// One value of a non-map field; `None` for ignored ones.
fn scalar(field: &Field, reader: &mut Reader<'_>, num: u32, wire_type: u8) -> Result<Option<Value>, ProtobufError> {
    Ok(Some(match field.kind {
        Kind::Str => Value::String(reader.string(num, wire_type, field.name)?),
        // int32 is sign-extended to 64 bits on the wire; truncating recovers it.
        Kind::I32 => Value::from(reader.varint_field(num, wire_type)? as i32),
        Kind::I64 => Value::from(reader.varint_field(num, wire_type)? as i64),
        Kind::Bool => Value::Bool(reader.bool(num, wire_type)?),
        Kind::Msg(schema) => {
            let mut nested = reader.message(num, wire_type, schema.name)?;
            Value::Object(message(schema, &mut nested)?)
        }
        Kind::Quantity => Value::String(quantity(&mut reader.message(num, wire_type, "Quantity")?)?),
        Kind::IntOrString => int_or_string(&mut reader.message(num, wire_type, "IntOrString")?)?,
        Kind::Meta => Value::Object(object_meta(&mut reader.message(num, wire_type, "ObjectMeta")?)?),
        Kind::Ignore => {
            reader.skip(num, wire_type)?;
            return Ok(None);
        }
        // The caller decodes these itself; a table that routes one here is refused.
        Kind::StrMap | Kind::QuantityMap | Kind::Inline(_) => {
            return Err(ProtobufError::UnsupportedField { message: field.name, field: num });
        }
    }))
}

fn map_entry(
    field: &Field,
    reader: &mut Reader<'_>,
    num: u32,
    wire_type: u8,
) -> Result<(String, Value), ProtobufError> {
    match field.kind {
        Kind::QuantityMap => {
            let (key, raw) = reader.map_entry(num, wire_type, "map<string, Quantity>")?;
            let text = quantity(&mut Reader::new(raw, "Quantity", reader.depth + 2)?)?;
            Ok((key, Value::String(text)))
        }
        _ => {
            let (key, value) = reader.string_map_entry(num, wire_type, field.name)?;
            Ok((key, Value::String(value)))
        }
    }
}

/// `resource.Quantity`: string=1, its canonical text.
fn quantity(reader: &mut Reader<'_>) -> Result<String, ProtobufError> {
    let mut text = String::new();
    while let Some((num, wire_type)) = reader.next_key()? {
        match num {
            1 => text = reader.string(num, wire_type, "string")?,
            _ => reader.skip(num, wire_type)?,
        }
    }
    Ok(text)
}

/// `intstr.IntOrString`: type=1 (0 int, 1 string), intVal=2, strVal=3.
fn int_or_string(reader: &mut Reader<'_>) -> Result<Value, ProtobufError> {
    let (mut is_string, mut int_val, mut str_val) = (false, 0i32, String::new());
    while let Some((num, wire_type)) = reader.next_key()? {
        match num {
            1 => is_string = reader.varint_field(num, wire_type)? == 1,
            2 => int_val = reader.varint_field(num, wire_type)? as i32,
            3 => str_val = reader.string(num, wire_type, "strVal")?,
            _ => reader.skip(num, wire_type)?,
        }
    }
    Ok(if is_string { Value::String(str_val) } else { Value::from(int_val) })
}

/// A field the table does not know: fine when it holds a zero (a Go value field the client
/// left unset), an error otherwise, so that nothing the client sent is dropped unnoticed.
fn unknown(schema: &Schema, reader: &mut Reader<'_>, num: u32, wire_type: u8) -> Result<(), ProtobufError> {
    let zero = match wire_type {
        WIRE_VARINT => reader.varint()? == 0,
        WIRE_LEN => reader.bytes(num, wire_type)?.is_empty(),
        _ => {
            reader.skip(num, wire_type)?;
            false
        }
    };
    if zero { Ok(()) } else { Err(ProtobufError::UnsupportedField { message: schema.name, field: num }) }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
    }
}
