//! PATCH as the Kubernetes API server applies it to built-in types.
//!
//! Three content types, three functions:
//! - `application/json-patch+json` → [`json_patch()`] (RFC 6902, via the `json-patch` crate);
//! - `application/merge-patch+json` → [`merge_patch`] (RFC 7386);
//! - `application/strategic-merge-patch+json` → [`strategic_merge_patch`].
//!
//! Strategic merge patch follows `apimachinery/pkg/util/strategicpatch/patch.go`
//! (`mergeMap`, `mergeSlice`, `normalizeElementOrder`) step by step, including its
//! ordering rules: items named in the patch come first in patch order, the server's
//! other items keep their relative order and slot in behind the patch items they
//! preceded on the server. So adding a container through a patch puts it *first*, as
//! `kubectl patch` does against a real cluster.
//!
//! Where the Go code would leave directive keys (`$patch`, `$setElementOrder/...`) or
//! nulls inside a value that is new to the object, and rely on decoding into Go types to
//! drop them, this module processes the new value against an empty original instead: the
//! stored JSON never contains directives.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::schema::{self, ListDef, Node, PatchStrategy};

/// Kubernetes refuses JSON patches with more operations than this (413).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Why a patch could not be applied. [`PatchError::status_code`] gives the HTTP status the
/// API server should answer with.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("error decoding JSON patch: {source}")]
    DecodeJsonPatch {
        #[source]
        source: serde_json::Error,
    },
    #[error("The allowed maximum operations in a JSON patch is {max}, got {count}")]
    TooManyOperations { count: usize, max: usize },
    /// One JSON patch operation failed; nothing was applied. `message` is worded as
    /// Kubernetes words it and names the operation and its path.
    #[error("{message}")]
    JsonPatchOperation { index: usize, op: &'static str, path: String, message: String },
    #[error("{what} must be a JSON object")]
    NotAnObject { what: &'static str },
    #[error("{}invalid patch format of primitive list", at(.path))]
    PrimitiveListFormat { path: String },
    #[error("{}invalid patch format of retainKeys", at(.path))]
    RetainKeysFormat { path: String },
    #[error("{}invalid patch format of setElementOrder list", at(.path))]
    SetElementOrderFormat { path: String },
    #[error("{}patch content doesn't match retainKeys list", at(.path))]
    RetainKeysMismatch { path: String },
    #[error("{}lists of lists are not supported", at(.path))]
    ListOfLists { path: String },
    #[error("{}list element types are not identical", at(.path))]
    MixedListElements { path: String },
    #[error("{}no elements in any of the given slices", at(.path))]
    NoListElements { path: String },
    #[error("{}map: {item} does not contain declared merge key: {key}", at(.path))]
    MissingMergeKey { path: String, key: String, item: String },
    #[error("{}cannot merge lists of objects without a merge key", at(.path))]
    NoMergeKey { path: String },
    #[error("{}unknown patch type: {directive} in map: {map}", at(.path))]
    UnknownDirective { path: String, directive: String, map: String },
    #[error("{}merging lists cannot yet be specified in the patch", at(.path))]
    ListMergeDirective { path: String },
    #[error("{}expected a {expected}, but received a {actual}", at(.path))]
    TypeMismatch { path: String, expected: &'static str, actual: &'static str },
    #[error("{}the order in patch list {patch} doesn't match $setElementOrder list {order}", at(.path))]
    SetElementOrderMismatch { path: String, patch: String, order: String },
}

/// Prefixes an error message with the field it concerns, when there is one.
fn at(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!("{path}: ") }
}

impl PatchError {
    /// The HTTP status Kubernetes answers with. Malformed directive syntax and undecodable
    /// patches are 400; a patch that is well-formed but cannot apply to this object is
    /// 422. (Kubernetes itself answers some of the latter, e.g. a missing merge key, with
    /// a 500; a client error deserves a 4xx.)
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::DecodeJsonPatch { .. }
            | PatchError::NotAnObject { .. }
            | PatchError::PrimitiveListFormat { .. }
            | PatchError::RetainKeysFormat { .. }
            | PatchError::SetElementOrderFormat { .. } => 400,
            PatchError::TooManyOperations { .. } => 413,
            _ => 422,
        }
    }

    /// The `reason` of the Kubernetes `Status` object that goes with [`status_code`](Self::status_code).
    pub fn reason(&self) -> &'static str {
        match self.status_code() {
            400 => "BadRequest",
            413 => "RequestEntityTooLarge",
            _ => "Invalid",
        }
    }
}

// === JSON patch and JSON merge patch ===

/// Applies an RFC 6902 JSON patch (`patch_bytes` is the request body) to `target`.
/// Either every operation applies or none does.
pub fn json_patch(target: &Value, patch_bytes: &[u8]) -> Result<Value, PatchError> {
    let patch: json_patch::Patch =
        serde_json::from_slice(patch_bytes).map_err(|source| PatchError::DecodeJsonPatch { source })?;
    if patch.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations { count: patch.0.len(), max: MAX_JSON_PATCH_OPERATIONS });
    }
    let mut doc = target.clone();
    json_patch::patch(&mut doc, &patch).map_err(|err| operation_error(&patch, &err))?;
    Ok(doc)
}

/// Words a failed operation the way Kubernetes' JSON patch library does, e.g.
/// `replace operation does not apply: doc is missing path: "/spec/foo": missing value`.
fn operation_error(patch: &json_patch::Patch, err: &json_patch::PatchError) -> PatchError {
    use json_patch::{PatchErrorKind, PatchOperation};

    let (op, path, from) = match patch.0.get(err.operation) {
        Some(PatchOperation::Add(o)) => ("add", o.path.to_string(), None),
        Some(PatchOperation::Remove(o)) => ("remove", o.path.to_string(), None),
        Some(PatchOperation::Replace(o)) => ("replace", o.path.to_string(), None),
        Some(PatchOperation::Move(o)) => ("move", o.path.to_string(), Some(o.from.to_string())),
        Some(PatchOperation::Copy(o)) => ("copy", o.path.to_string(), Some(o.from.to_string())),
        Some(PatchOperation::Test(o)) => ("test", o.path.to_string(), None),
        // The crate reports the index of an operation it ran, so this cannot happen; fall
        // back to its own path rather than panic.
        None => ("unknown", err.path.to_string(), None),
    };
    let message = match err.kind {
        PatchErrorKind::TestFailed => format!("testing value {path} failed: test failed"),
        PatchErrorKind::InvalidFromPointer => format!(
            "{op} operation does not apply: doc is missing from path: {:?}: missing value",
            from.as_deref().unwrap_or_default()
        ),
        PatchErrorKind::InvalidPointer => {
            format!("{op} operation does not apply: doc is missing path: {path:?}: missing value")
        }
        PatchErrorKind::CannotMoveInsideItself => format!(
            "{op} operation does not apply: cannot move {:?} into its own child {path:?}",
            from.as_deref().unwrap_or_default()
        ),
        // The crate's error kinds are non-exhaustive; word future ones generically.
        ref other => format!("{op} operation does not apply at {path:?}: {other}"),
    };
    PatchError::JsonPatchOperation { index: err.operation, op, path, message }
}

/// Applies an RFC 7386 JSON merge patch: objects merge, `null` deletes, anything else
/// (lists included) replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut doc = target.clone();
    json_patch::merge(&mut doc, patch);
    doc
}

// === Strategic merge patch ===

/// Applies a strategic merge patch to `target`, an object of `kind` in `api_version`.
///
/// Lists merge by the key [`schema`] records for them (or union, for lists of scalars
/// with the merge strategy) and are replaced otherwise; `null` deletes; the directives
/// `$patch: replace|delete`, `$retainKeys`, `$setElementOrder/<field>` and
/// `$deleteFromPrimitiveList/<field>` work as in Kubernetes. Kinds the schema does not
/// know merge objects and replace lists; see [`schema::is_known_kind`] to refuse them
/// instead, as Kubernetes does for custom resources.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    api_version: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    let Value::Object(original) = target else {
        return Err(PatchError::NotAnObject { what: "the object to patch" });
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject { what: "a strategic merge patch" });
    };
    let merged = merge_map(original.clone(), patch.clone(), schema::root(api_version, kind), Loc::ROOT)?;
    Ok(Value::Object(merged))
}

/// Where in the object the merge is, for error messages; rendered only on error.
#[derive(Clone, Copy)]
struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    key: Option<&'a str>,
}

impl<'a> Loc<'a> {
    const ROOT: Loc<'static> = Loc { parent: None, key: None };

    fn child<'b>(&'b self, key: &'b str) -> Loc<'b>
    where
        'a: 'b,
    {
        Loc { parent: Some(self), key: Some(key) }
    }

    fn render(&self) -> String {
        let mut keys = Vec::new();
        let mut cursor = Some(self);
        while let Some(loc) = cursor {
            keys.extend(loc.key);
            cursor = loc.parent;
        }
        keys.reverse();
        keys.join(".")
    }
}

/// The Go type a JSON value decodes to; values of different kinds never merge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    List,
    Map,
}

fn kind_of(value: &Value) -> Kind {
    match value {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_f64() => Kind::Float,
        Value::Number(_) => Kind::Int,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::List,
        Value::Object(_) => Kind::Map,
    }
}

/// Go's name for the type, as Kubernetes' "expected a X, but received a Y" errors print it.
fn go_type_name(value: &Value) -> &'static str {
    match kind_of(value) {
        Kind::Null => "<nil>",
        Kind::Bool => "bool",
        Kind::Int => "int64",
        Kind::Float => "float64",
        Kind::String => "string",
        Kind::List => "[]interface {}",
        Kind::Map => "map[string]interface {}",
    }
}

const GO_LIST: &str = "[]interface {}";
const GO_MAP: &str = "map[string]interface {}";

/// `mergeMap`: merges `patch` into `original`, both objects at `node`.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    node: Node,
    loc: Loc<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.remove(DIRECTIVE_MARKER);
                Ok(without_nulls_map(patch))
            }
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(PatchError::UnknownDirective {
                path: loc.render(),
                directive: directive_text(directive),
                map: Value::Object(patch.clone()).to_string(),
            }),
        };
    }

    apply_retain_keys(&mut original, &mut patch, loc)?;
    merge_set_element_order(&mut original, &mut patch, node, loc)?;

    for (patch_key, patch_value) in patch {
        let (key, is_delete_list) = match patch_key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            Some(rest) => match rest.strip_prefix('/') {
                Some(field) => (field.to_string(), true),
                None => return Err(PatchError::PrimitiveListFormat { path: loc.render() }),
            },
            None => (patch_key, false),
        };
        let child_loc = loc.child(&key);

        // IgnoreUnmatchedNulls: a null deletes the key, and a null for a missing key
        // is dropped rather than stored.
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }

        let child = node.child(&key);
        let Some(current) = original.get_mut(&key) else {
            if !is_delete_list {
                let value = new_value(patch_value, child, child_loc)?;
                original.insert(key, value);
            }
            continue;
        };

        if kind_of(current) != kind_of(&patch_value) {
            if !is_delete_list {
                *current = new_value(patch_value, child, child_loc)?;
            }
            continue;
        }

        *current = match (current.take(), patch_value) {
            (Value::Object(current_map), Value::Object(patch_map)) => {
                Value::Object(merge_map(current_map, patch_map, child, child_loc)?)
            }
            (Value::Array(current_list), Value::Array(patch_list)) => {
                Value::Array(merge_slice_handler(current_list, patch_list, child, is_delete_list, child_loc)?)
            }
            (_, scalar) => scalar,
        };
    }
    Ok(original)
}

fn directive_text(directive: &Value) -> String {
    directive.as_str().map_or_else(|| directive.to_string(), str::to_string)
}

/// A patch value for a key the object does not have yet: processed against an empty
/// original so that directives and nulls inside it never reach storage.
fn new_value(value: Value, node: Node, loc: Loc<'_>) -> Result<Value, PatchError> {
    match value {
        Value::Object(map) => Ok(Value::Object(merge_map(Map::new(), map, node, loc)?)),
        Value::Array(list) => Ok(Value::Array(merge_slice_handler(Vec::new(), list, node, false, loc)?)),
        scalar => Ok(scalar),
    }
}

fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(without_nulls_map(map)),
        Value::Array(list) => Value::Array(list.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn without_nulls_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect()
}

/// `applyRetainKeysDirective`: drops the original's keys that `$retainKeys` does not list,
/// after checking that the patch itself only sets listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    loc: Loc<'_>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::RetainKeysFormat { path: loc.render() });
    };
    let retained = |key: &str| retain.iter().any(|item| item.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(key) {
            return Err(PatchError::RetainKeysMismatch { path: loc.render() });
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// `mergePatchIntoOriginal`: merges each list that has a `$setElementOrder/<field>`
/// directive and orders it: the listed items in the directive's order, the server's
/// other items in their old relative order.
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    node: Node,
    loc: Loc<'_>,
) -> Result<(), PatchError> {
    let directive_keys: Vec<String> =
        patch.keys().filter(|key| key.starts_with(SET_ELEMENT_ORDER_PREFIX)).cloned().collect();
    for directive_key in directive_keys {
        let Some(order) = patch.remove(&directive_key) else { continue };
        let Value::Array(order) = order else {
            return Err(PatchError::TypeMismatch {
                path: loc.render(),
                expected: GO_LIST,
                actual: go_type_name(&order),
            });
        };
        let field = match directive_key[SET_ELEMENT_ORDER_PREFIX.len()..].strip_prefix('/') {
            Some(field) => field.to_string(),
            None => return Err(PatchError::SetElementOrderFormat { path: loc.render() }),
        };
        let field_loc = loc.child(&field);
        let original_list = optional_list(original.get(&field), field_loc)?;
        let patch_list = optional_list(patch.get(&field), field_loc)?;
        let child = node.child(&field);
        let merge_key = merge_key_of(child);

        validate_patch_with_set_order_list(patch_list.as_deref().unwrap_or_default(), &order, merge_key, field_loc)?;

        let merged = match (&original_list, &patch_list) {
            (Some(current), None) => current.clone(),
            (None, Some(patched)) => merge_slice_handler(Vec::new(), patched.clone(), child, false, field_loc)?,
            (Some(current), Some(patched)) => {
                merge_slice_handler(current.clone(), patched.clone(), child, false, field_loc)?
            }
            (None, None) => continue,
        };

        let (patch_items, server_only) = partition_by_presence(merged, &order, merge_key, field_loc)?;
        let server_order = original_list.unwrap_or_default();
        let kind = element_kind(&[&server_order, patch_list.as_deref().unwrap_or_default()], field_loc)?;
        let ordered =
            normalize_element_order(patch_items, server_only, &order, &server_order, merge_key, kind, field_loc)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.remove(&field);
    }
    Ok(())
}

fn optional_list(value: Option<&Value>, loc: Loc<'_>) -> Result<Option<Vec<Value>>, PatchError> {
    match value {
        None => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list.clone())),
        Some(other) => {
            Err(PatchError::TypeMismatch { path: loc.render(), expected: GO_LIST, actual: go_type_name(other) })
        }
    }
}

/// The merge key of a list node, or "" (Go's empty merge key) for anything else.
fn merge_key_of(node: Node) -> &'static str {
    match node.list() {
        Some(ListDef { patch: PatchStrategy::Merge { key: Some(key), .. }, .. }) => key,
        _ => "",
    }
}

/// `validatePatchWithSetOrderList`: the patch's items must appear in `$setElementOrder`
/// in the same relative order.
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
    loc: Loc<'_>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch_list.iter().collect()
    } else {
        let mut kept = Vec::new();
        for item in patch_list {
            let Value::Object(map) = item else {
                return Err(PatchError::TypeMismatch {
                    path: loc.render(),
                    expected: GO_MAP,
                    actual: go_type_name(item),
                });
            };
            if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE) {
                kept.push(item);
            }
        }
        kept
    };

    let (mut patch_index, mut order_index) = (0, 0);
    while patch_index < non_delete.len() && order_index < order.len() {
        if non_delete[patch_index].get(DIRECTIVE_MARKER).is_some() {
            patch_index += 1;
            continue;
        }
        if merge_key_value_equal(non_delete[patch_index], &order[order_index], merge_key, loc)? {
            patch_index += 1;
        }
        order_index += 1;
    }
    if patch_index < non_delete.len() && order_index >= order.len() {
        return Err(PatchError::SetElementOrderMismatch {
            path: loc.render(),
            patch: Value::Array(patch_list.to_vec()).to_string(),
            order: Value::Array(order.to_vec()).to_string(),
        });
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str, loc: Loc<'_>) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let left_key = merge_key_value(left, merge_key, loc)?;
    let right_key = merge_key_value(right, merge_key, loc)?;
    Ok(left_key == right_key)
}

fn merge_key_value<'v>(item: &'v Value, merge_key: &str, loc: Loc<'_>) -> Result<&'v Value, PatchError> {
    let Value::Object(map) = item else {
        return Err(PatchError::TypeMismatch { path: loc.render(), expected: GO_MAP, actual: go_type_name(item) });
    };
    map.get(merge_key).ok_or_else(|| PatchError::MissingMergeKey {
        path: loc.render(),
        key: merge_key.to_string(),
        item: item.to_string(),
    })
}

/// `mergeSliceHandler`: lists with the merge strategy merge; others are replaced.
fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    node: Node,
    is_delete_list: bool,
    loc: Loc<'_>,
) -> Result<Vec<Value>, PatchError> {
    match node.list() {
        Some(def @ ListDef { patch: PatchStrategy::Merge { key, .. }, .. }) => {
            merge_slice(original, patch, def.items, key.unwrap_or_default(), is_delete_list, loc)
        }
        // Replace strategy. For `$deleteFromPrimitiveList` on such a list Kubernetes, too,
        // replaces the list with the deletion list.
        _ => Ok(patch.into_iter().map(without_nulls).collect()),
    }
}

/// `mergeSlice`: merges two lists that have the merge strategy.
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    items: Node,
    merge_key: &str,
    is_delete_list: bool,
    loc: Loc<'_>,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch], loc)?;

    let (original, patch, merged) = if kind != Kind::Map {
        if is_delete_list {
            return Ok(original.into_iter().filter(|item| !patch.contains(item)).collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(&patch) {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(PatchError::NoMergeKey { path: loc.render() });
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key, loc)?;
        let merged = merge_slice_without_special_elements(original.clone(), &patch, merge_key, items, loc)?;
        (original, patch, merged)
    };

    let (patch_items, server_only) = partition_by_presence(merged, &patch, merge_key, loc)?;
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind, loc)
}

/// `sliceElementType`: every element of every list must have the same kind, and not be
/// a list.
fn element_kind(lists: &[&[Value]], loc: Loc<'_>) -> Result<Kind, PatchError> {
    let mut seen: Option<Kind> = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let kind = kind_of(item);
        match seen {
            None if kind == Kind::List => return Err(PatchError::ListOfLists { path: loc.render() }),
            None => seen = Some(kind),
            Some(previous) if previous != kind => return Err(PatchError::MixedListElements { path: loc.render() }),
            Some(_) => {}
        }
    }
    seen.ok_or_else(|| PatchError::NoListElements { path: loc.render() })
}

/// `mergeSliceWithSpecialElements`: carries out `$patch: delete` items against the
/// original and `$patch: replace` (the patch's other items become the whole list).
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
    loc: Loc<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE_MARKER) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let key_value = merge_key_value(&item, merge_key, loc)?;
                original.retain(|candidate| candidate.get(merge_key) != Some(key_value));
            }
            // Keep going: any other `$patch` items must still be pruned.
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => return Err(PatchError::ListMergeDirective { path: loc.render() }),
            _ => {
                return Err(PatchError::UnknownDirective {
                    path: loc.render(),
                    directive: directive_text(directive),
                    map: item.to_string(),
                });
            }
        }
    }
    if replace { Ok((plain, Vec::new())) } else { Ok((original, plain)) }
}

/// `mergeSliceWithoutSpecialElements`: merges each patch item into the original item
/// with the same merge key, or appends it.
fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    items: Node,
    loc: Loc<'_>,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let key_value = merge_key_value(item, merge_key, loc)?;
        let Value::Object(patch_map) = item else { continue };
        match original.iter().position(|candidate| candidate.get(merge_key) == Some(key_value)) {
            Some(position) => {
                let current = match original[position].take() {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                original[position] = Value::Object(merge_map(current, patch_map.clone(), items, loc)?);
            }
            None => original.push(new_value(item.clone(), items, loc)?),
        }
    }
    Ok(original)
}

/// Splits `merged` into the items named by `present_in` (by merge key, or by value for
/// scalars) and the rest.
fn partition_by_presence(
    merged: Vec<Value>,
    present_in: &[Value],
    merge_key: &str,
    loc: Loc<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut named = Vec::new();
    let mut others = Vec::new();
    for item in merged {
        let present = if merge_key.is_empty() {
            present_in.contains(&item)
        } else {
            let key_value = merge_key_value(&item, merge_key, loc)?;
            present_in.iter().any(|candidate| candidate.get(merge_key) == Some(key_value))
        };
        if present { named.push(item) } else { others.push(item) }
    }
    Ok((named, others))
}

/// `normalizeElementOrder`: sorts the patch's items by `patch_order` and the server-only
/// items by `server_order`, then interleaves them.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
    loc: Loc<'_>,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind, loc)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind, loc)?;
    Ok(merge_sorted_slice(server_only, patch_items, server_order, merge_key, kind))
}

/// `normalizeSliceOrder`: a stable sort by position in `order`. Go's comparator answers
/// "less" whenever either item is missing from `order`; insertion sort with the same
/// comparator reproduces Go's result (sort.SliceStable insertion-sorts blocks of 20).
fn normalize_slice_order(
    mut to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: Kind,
    loc: Loc<'_>,
) -> Result<Vec<Value>, PatchError> {
    let mut to_delete = Vec::new();
    if kind == Kind::Map {
        for item in to_sort.iter().chain(order) {
            merge_key_value(item, merge_key, loc)?;
        }
        let (kept, deleted): (Vec<Value>, Vec<Value>) = to_sort
            .into_iter()
            .partition(|item| item.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE));
        to_sort = kept;
        to_delete = deleted;
    }
    let less = |a: &Value, b: &Value| match (position(order, a, merge_key, kind), position(order, b, merge_key, kind)) {
        (Some(i), Some(j)) => i < j,
        _ => true,
    };
    for i in 1..to_sort.len() {
        let mut j = i;
        while j > 0 && less(&to_sort[j], &to_sort[j - 1]) {
            to_sort.swap(j, j - 1);
            j -= 1;
        }
    }
    to_sort.extend(to_delete);
    Ok(to_sort)
}

/// `index`: where `item` sits in `list`, matching maps by merge key and scalars by value.
fn position(list: &[Value], item: &Value, merge_key: &str, kind: Kind) -> Option<usize> {
    if kind == Kind::Map {
        let wanted = item.get(merge_key);
        list.iter().position(|candidate| candidate.get(merge_key) == wanted)
    } else {
        list.iter().position(|candidate| candidate == item)
    }
}

/// `mergeSortedSlice`: interleaves server-only items (`left`) with patch items
/// (`right`). A server item goes first only when the patch item also existed on the
/// server, later than it; items new to the server therefore lead.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (position(server_order, l, merge_key, kind), position(server_order, r, merge_key, kind)) {
                    (Some(li), Some(ri)) => li.cmp(&ri) == Ordering::Less,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(target: Value, patch: Value, api_version: &str, kind: &str) -> Value {
        match strategic_merge_patch(&target, &patch, api_version, kind) {
            Ok(value) => value,
            Err(err) => panic!("patch failed: {err}"),
        }
    }

    fn smp_err(target: Value, patch: Value, api_version: &str, kind: &str) -> PatchError {
        match strategic_merge_patch(&target, &patch, api_version, kind) {
            Ok(value) => panic!("patch unexpectedly applied: {value}"),
            Err(err) => err,
        }
    }

    /// The Deployment from the Kubernetes docs' "Update API Objects in Place Using
    /// kubectl patch" task.
    fn patch_demo() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "patch-demo"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {
                        "containers": [{"name": "patch-demo-ctr", "image": "nginx"}],
                        "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}]
                    }
                }
            }
        })
    }

    fn containers(deployment: &Value) -> &Value {
        &deployment["spec"]["template"]["spec"]["containers"]
    }

    // --- JSON patch ---

    #[test]
    fn json_patch_applies_operations_in_order() {
        let target = json!({"spec": {"replicas": 1, "paused": true}});
        let patch = br#"[
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "remove", "path": "/spec/paused"},
            {"op": "add", "path": "/metadata", "value": {"labels": {"a": "b"}}}
        ]"#;
        let out = json_patch(&target, patch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, json!({"spec": {"replicas": 3}, "metadata": {"labels": {"a": "b"}}}));
    }

    #[test]
    fn json_patch_failure_names_the_operation_and_path() {
        let target = json!({"spec": {"replicas": 1}});
        let patch = br#"[
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/template/spec", "value": {}}
        ]"#;
        let Err(err) = json_patch(&target, patch) else { panic!("patch unexpectedly applied") };
        assert_eq!(
            err.to_string(),
            r#"replace operation does not apply: doc is missing path: "/spec/template/spec": missing value"#
        );
        assert!(matches!(err, PatchError::JsonPatchOperation { index: 1, op: "replace", .. }));
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn json_patch_test_failure_and_decode_errors() {
        let target = json!({"spec": {"replicas": 1}});
        let Err(err) = json_patch(&target, br#"[{"op": "test", "path": "/spec/replicas", "value": 5}]"#) else {
            panic!("test op unexpectedly passed")
        };
        assert_eq!(err.to_string(), "testing value /spec/replicas failed: test failed");

        let Err(err) = json_patch(&target, br#"{"op": "add"}"#) else { panic!("object accepted as JSON patch") };
        assert_eq!(err.status_code(), 400);

        let Err(err) = json_patch(&target, br#"[{"op": "move", "from": "/nope", "path": "/x"}]"#) else {
            panic!("move from a missing path applied")
        };
        assert_eq!(
            err.to_string(),
            r#"move operation does not apply: doc is missing from path: "/nope": missing value"#
        );
    }

    #[test]
    fn json_patch_refuses_too_many_operations() {
        let ops = vec![json!({"op": "test", "path": "/a", "value": 1}); MAX_JSON_PATCH_OPERATIONS + 1];
        let body = Value::Array(ops).to_string();
        let Err(err) = json_patch(&json!({"a": 1}), body.as_bytes()) else { panic!("oversized patch applied") };
        assert_eq!(err.status_code(), 413);
        assert_eq!(err.to_string(), "The allowed maximum operations in a JSON patch is 10000, got 10001");
    }

    // --- JSON merge patch ---

    #[test]
    fn merge_patch_deletes_with_null_and_replaces_lists() {
        let target = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "a"}]}});
        let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"containers": [{"name": "b"}]}});
        assert_eq!(
            merge_patch(&target, &patch),
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"containers": [{"name": "b"}]}})
        );
    }

    // --- Strategic merge patch: the kubectl patch task from the Kubernetes docs ---

    #[test]
    fn docs_example_adds_a_container_by_name_and_it_comes_first() {
        let patch =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}});
        let out = smp(patch_demo(), patch, "apps/v1", "Deployment");
        assert_eq!(
            containers(&out),
            &json!([{"name": "patch-demo-ctr-2", "image": "redis"}, {"name": "patch-demo-ctr", "image": "nginx"}])
        );
        // Untouched fields survive.
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn docs_example_tolerations_have_no_strategy_and_are_replaced() {
        let patch = json!({"spec": {"template": {"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}});
        let out = smp(patch_demo(), patch, "apps/v1", "Deployment");
        assert_eq!(
            out["spec"]["template"]["spec"]["tolerations"],
            json!([{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}])
        );
    }

    #[test]
    fn docs_example_retain_keys_clears_the_other_strategy_fields() {
        let mut target = patch_demo();
        target["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "30%"}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = smp(target, patch, "apps/v1", "Deployment");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn merging_an_existing_container_keeps_list_order_and_merges_env_by_name() {
        let mut target = patch_demo();
        target["spec"]["template"]["spec"]["containers"] = json!([
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}
        ]);
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "Y", "value": "20"}, {"name": "Z", "value": "3"}]}
        ]}}}});
        let out = smp(target, patch, "apps/v1", "Deployment");
        assert_eq!(
            containers(&out),
            &json!([
                {"name": "a", "image": "a:1", "env": [
                    {"name": "X", "value": "1"}, {"name": "Y", "value": "20"}, {"name": "Z", "value": "3"}
                ]},
                {"name": "b", "image": "b:1"}
            ])
        );
    }

    #[test]
    fn ports_merge_by_container_port_and_service_ports_by_port() {
        let pod = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]}});
        let patch =
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}});
        let out = smp(pod, patch, "v1", "Pod");
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "name": "http", "hostPort": 8080}])
        );

        let service = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}});
        let patch = json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}});
        let out = smp(service, patch, "v1", "Service");
        assert_eq!(out["spec"]["ports"], json!([{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 9443}]));
    }

    #[test]
    fn status_conditions_merge_by_type() {
        let node = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}
        ]}});
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let out = smp(node, patch, "v1", "Node");
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}])
        );
    }

    #[test]
    fn null_deletes_a_field() {
        let out = smp(
            patch_demo(),
            json!({"spec": {"replicas": null}, "metadata": {"labels": null}}),
            "apps/v1",
            "Deployment",
        );
        assert!(out["spec"].get("replicas").is_none());
        // A null for an absent key is dropped, not stored.
        assert!(out["metadata"].get("labels").is_none());
    }

    // --- Directives ---

    #[test]
    fn patch_delete_in_a_list_removes_the_item_by_merge_key() {
        let mut target = patch_demo();
        target["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]);
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}}});
        let out = smp(target, patch, "apps/v1", "Deployment");
        assert_eq!(containers(&out), &json!([{"name": "b", "image": "b"}]));
    }

    #[test]
    fn patch_replace_in_a_list_replaces_it_whole() {
        let mut target = patch_demo();
        target["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]);
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "c"}, {"$patch": "replace"}
        ]}}}});
        let out = smp(target, patch, "apps/v1", "Deployment");
        assert_eq!(containers(&out), &json!([{"name": "c", "image": "c"}]));
    }

    #[test]
    fn patch_replace_and_delete_in_a_map() {
        let target = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}});
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}, "data": {"$patch": "delete"}});
        let out = smp(target, patch, "v1", "ConfigMap");
        assert_eq!(out, json!({"metadata": {"labels": {"c": "3"}}, "data": {}}));
    }

    #[test]
    fn patch_merge_directive_is_refused_like_kubernetes() {
        let err = smp_err(json!({"data": {"a": "b"}}), json!({"data": {"$patch": "merge"}}), "v1", "ConfigMap");
        assert_eq!(err.to_string(), r#"data: unknown patch type: merge in map: {"$patch":"merge"}"#);
        let err = smp_err(
            patch_demo(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "x", "$patch": "merge"}]}}}}),
            "apps/v1",
            "Deployment",
        );
        assert_eq!(
            err.to_string(),
            "spec.template.spec.containers: merging lists cannot yet be specified in the patch"
        );
    }

    #[test]
    fn set_element_order_reorders_containers() {
        let mut target = patch_demo();
        target["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}, {"name": "c", "image": "c"}]);
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a:2"}]
        }}}});
        let out = smp(target, patch, "apps/v1", "Deployment");
        assert_eq!(
            containers(&out),
            &json!([{"name": "c", "image": "c"}, {"name": "a", "image": "a:2"}, {"name": "b", "image": "b"}])
        );
    }

    #[test]
    fn set_element_order_keeps_server_only_items_in_place() {
        let target = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch = json!({"metadata": {"$setElementOrder/finalizers": ["c", "a"]}});
        let out = smp(target, patch, "v1", "ConfigMap");
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c", "a"]));
    }

    #[test]
    fn set_element_order_must_agree_with_the_patch_list() {
        let target = json!({"metadata": {"finalizers": ["a", "b"]}});
        let patch = json!({"metadata": {"$setElementOrder/finalizers": ["a", "b"], "finalizers": ["b", "a"]}});
        let err = smp_err(target, patch, "v1", "ConfigMap");
        assert!(matches!(err, PatchError::SetElementOrderMismatch { .. }), "{err}");
    }

    #[test]
    fn retain_keys_in_volumes_drops_the_old_volume_source() {
        let pod = json!({"spec": {"volumes": [
            {"name": "data", "hostPath": {"path": "/srv"}},
            {"name": "cache", "emptyDir": {}}
        ]}});
        let patch = json!({"spec": {"volumes": [
            {"name": "data", "$retainKeys": ["emptyDir", "name"], "emptyDir": {"medium": "Memory"}}
        ]}});
        let out = smp(pod, patch, "v1", "Pod");
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "cache", "emptyDir": {}}])
        );
    }

    #[test]
    fn retain_keys_must_cover_the_patch() {
        let target = json!({"spec": {"strategy": {"type": "RollingUpdate"}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}});
        let err = smp_err(target.clone(), patch, "apps/v1", "Deployment");
        assert_eq!(err.to_string(), "spec.strategy: patch content doesn't match retainKeys list");
        assert_eq!(err.status_code(), 422);

        let err = smp_err(target, json!({"spec": {"strategy": {"$retainKeys": "type"}}}), "apps/v1", "Deployment");
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn finalizers_union_and_delete_from_primitive_list() {
        let target = json!({"metadata": {"finalizers": ["a", "b"]}});
        // Items new to the server lead; a server item stays ahead of patch items that
        // followed it on the server.
        let out = smp(target.clone(), json!({"metadata": {"finalizers": ["c"]}}), "v1", "Namespace");
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = smp(target.clone(), json!({"metadata": {"finalizers": ["b", "c"]}}), "v1", "Namespace");
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));

        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        let out = smp(target.clone(), patch, "v1", "Namespace");
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));

        // Deleting from a list the object lacks does not create it.
        let out = smp(
            json!({"metadata": {}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            "v1",
            "Namespace",
        );
        assert_eq!(out, json!({"metadata": {}}));

        let err = smp_err(target, json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}), "v1", "Namespace");
        assert_eq!(err.status_code(), 400);
        assert_eq!(err.to_string(), "metadata: invalid patch format of primitive list");
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let target = json!({"metadata": {"ownerReferences": [{"uid": "1", "kind": "ReplicaSet", "name": "a"}]}});
        let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "kind": "ReplicaSet", "name": "b"}]}});
        let out = smp(target, patch, "v1", "Pod");
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "2", "kind": "ReplicaSet", "name": "b"}, {"uid": "1", "kind": "ReplicaSet", "name": "a"}])
        );
    }

    // --- Errors and fallbacks ---

    #[test]
    fn missing_merge_key_names_the_field() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "redis"}]}}}});
        let err = smp_err(patch_demo(), patch, "apps/v1", "Deployment");
        assert_eq!(
            err.to_string(),
            r#"spec.template.spec.containers: map: {"image":"redis"} does not contain declared merge key: name"#
        );
        assert_eq!((err.status_code(), err.reason()), (422, "Invalid"));
    }

    #[test]
    fn lists_of_lists_and_mixed_lists_are_refused() {
        let err = smp_err(
            json!({"metadata": {"finalizers": ["a"]}}),
            json!({"metadata": {"finalizers": [["b"]]}}),
            "v1",
            "Pod",
        );
        assert!(matches!(err, PatchError::MixedListElements { .. }), "{err}");
        let err = smp_err(
            json!({"metadata": {"finalizers": [["a"]]}}),
            json!({"metadata": {"finalizers": [["b"]]}}),
            "v1",
            "Pod",
        );
        assert!(matches!(err, PatchError::ListOfLists { .. }), "{err}");
    }

    #[test]
    fn unknown_kinds_merge_maps_and_replace_lists() {
        let target = json!({"spec": {"size": 1, "items": [{"name": "a"}], "nested": {"x": 1}}});
        let patch = json!({"spec": {"items": [{"name": "b"}], "nested": {"y": 2}}});
        let out = smp(target, patch, "example.com/v1", "Widget");
        assert_eq!(out, json!({"spec": {"size": 1, "items": [{"name": "b"}], "nested": {"x": 1, "y": 2}}}));
    }

    #[test]
    fn new_values_never_carry_directives_or_nulls() {
        let target = json!({"spec": {"template": {"spec": {}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a", "command": null},
            {"name": "gone", "$patch": "delete"}
        ]}}}});
        let out = smp(target, patch, "apps/v1", "Deployment");
        assert_eq!(containers(&out), &json!([{"name": "a", "image": "a"}]));
    }

    #[test]
    fn non_objects_are_refused() {
        let err = smp_err(json!({}), json!([1]), "v1", "Pod");
        assert_eq!(err.status_code(), 400);
        let err = smp_err(json!([]), json!({}), "v1", "Pod");
        assert_eq!(err.to_string(), "the object to patch must be a JSON object");
    }
}
