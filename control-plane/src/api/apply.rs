//! Server-side apply and `metadata.managedFields`, after Kubernetes' field manager
//! (`apiserver/pkg/endpoints/handlers/fieldmanager`) and structured-merge-diff
//! (`sigs.k8s.io/structured-merge-diff`: `fieldpath`, `typed`, `merge`).
//!
//! Every write records who owns which fields:
//!
//! ```text
//!   apply(live, config, manager)                 record_update(old, new, manager)
//!     │ merge config into live (by schema)          │
//!     │ prune fields this applier dropped           │
//!     ├──── diff live → result ─────────────────────┤
//!     │ others owning a changed field: conflict     │ others lose changed and removed fields
//!     │   (or, with force, lose it)                 │ the writer gains the changed ones
//!     └ the applier owns exactly its config         └ (operation "Update")
//! ```
//!
//! A field set is a set of [`FieldPath`]s, serialised as FieldsV1 exactly as Kubernetes
//! writes it: `f:<field>`, `k:{"name":"nginx"}` for items of map-lists (keys sorted),
//! `v:"value"` for set items, and `.` when a path with children is itself owned.
//!
//! Status is never tracked: for writes to the main resource Kubernetes resets status to
//! its old value (the registry strategies copy it back), and the field manager ignores
//! it; apply drops `status` from the configuration for the same reason.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde_json::{Map, Value};

use super::schema::{self, ListDef, ListType, Node};

/// The manager Kubernetes credits with an object's existing fields when the object is
/// first applied to but has no managed fields (it predates field tracking, or a client
/// reset them).
pub const BEFORE_FIRST_APPLY_MANAGER: &str = "before-first-apply";

/// Fields the field manager never records, whoever sets them (`stripmeta.go`). They are
/// exact paths: `metadata` itself is stripped, its other children are not.
const STRIPPED_PATHS: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

// === Errors ===

/// Why an apply was refused. [`ApplyError::status_code`] gives the HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Fields in the configuration are owned by other managers with other values.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    #[error("the apply configuration must be a JSON object")]
    NotAnObject,
    #[error("the live object must be a JSON object")]
    LiveNotAnObject,
    #[error("{field} must be set in an apply configuration")]
    MissingTypeMeta { field: &'static str },
    #[error("Incorrect version specified in apply patch. Specified patch version: {specified}, expected: {expected}")]
    VersionMismatch { specified: String, expected: String },
    #[error("the kind in the apply configuration ({specified}) does not match the object's kind ({expected})")]
    KindMismatch { specified: String, expected: String },
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsSet,
    /// The configuration does not fit the schema: a map-list item without its key, or
    /// two items with the same key.
    #[error("{message}")]
    InvalidObject { message: String },
    #[error("failed to decode managed fields: {message}")]
    InvalidManagedFields { message: String },
}

impl ApplyError {
    /// The HTTP status Kubernetes answers with. (For [`ApplyError::InvalidObject`]
    /// Kubernetes answers 500; the configuration is at fault, so rk says 422.)
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::InvalidObject { .. } => 422,
            ApplyError::LiveNotAnObject | ApplyError::InvalidManagedFields { .. } => 500,
            _ => 400,
        }
    }

    /// The `reason` of the Kubernetes `Status` object that goes with the status code.
    pub fn reason(&self) -> &'static str {
        match self.status_code() {
            409 => "Conflict",
            422 => "Invalid",
            500 => "InternalError",
            _ => "BadRequest",
        }
    }
}

/// One field the configuration sets to a value another manager owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name, e.g. `kubectl-client-side-apply`.
    pub manager: String,
    pub operation: Operation,
    /// The other manager's API version; empty for appliers, whose version Kubernetes
    /// leaves out of conflict messages.
    pub api_version: String,
    pub subresource: String,
    /// The contested field as Kubernetes prints it, e.g. `.spec.replicas` or
    /// `.spec.template.spec.containers[name="nginx"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as Kubernetes describes it: `"kubectl-client-side-apply" using
    /// apps/v1` for an updater, `"kubectl"` for an applier.
    pub fn manager_description(&self) -> String {
        self.key().describe()
    }

    /// The message of this conflict's `StatusCause` (type `FieldManagerConflict`).
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }

    fn key(&self) -> ManagerKey {
        ManagerKey {
            manager: self.manager.clone(),
            operation: self.operation,
            api_version: self.api_version.clone(),
            subresource: self.subresource.clone(),
        }
    }
}

/// Kubernetes' `getConflictMessage`.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with {}: {}", only.manager_description(), only.field);
    }
    let mut by_manager: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
    for conflict in conflicts {
        let key = conflict.key();
        by_manager.entry(key.identifier()).or_insert_with(|| (key.describe(), Vec::new())).1.push(&conflict.field);
    }
    let mut lines = Vec::new();
    for (description, fields) in by_manager.values() {
        lines.push(format!("conflicts with {description}:"));
        lines.extend(fields.iter().map(|field| format!("- {field}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

// === Field paths and sets ===

/// One step of a [`FieldPath`].
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A struct field or map key: `f:name`, printed `.name`.
    Field(String),
    /// An item of a map-list by its key fields, sorted by name: `k:{"name":"x"}`,
    /// printed `[name="x"]`.
    Key(Vec<(String, Value)>),
    /// An item of a set by value: `v:"x"`, printed `[="x"]`.
    Value(Value),
    /// An item of a list without keys, by position: `i:0`, printed `[0]`.
    Index(usize),
}

impl PathElement {
    /// The element as a FieldsV1 object key.
    pub fn token(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => format!("k:{}", key_json(fields)),
            PathElement::Value(value) => format!("v:{}", canonical_json(value)),
            PathElement::Index(index) => format!("i:{index}"),
        }
    }

    /// Parses a FieldsV1 object key.
    pub fn from_token(token: &str) -> Result<PathElement, String> {
        let Some((prefix, rest)) = token.split_once(':') else {
            return Err(format!("invalid field path element {token:?}: no type prefix"));
        };
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(map)) => {
                    let mut fields: Vec<(String, Value)> = map.into_iter().collect();
                    fields.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(PathElement::Key(fields))
                }
                _ => Err(format!("invalid key in field path element {token:?}")),
            },
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|err| format!("invalid value in field path element {token:?}: {err}")),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|err| format!("invalid index in field path element {token:?}: {err}")),
            _ => Err(format!("invalid field path element {token:?}: unknown type prefix {prefix:?}")),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }
}

/// Ordered like structured-merge-diff orders path elements (fields, then keys, values,
/// indexes; key values compared as values, so port 80 sorts before 443), which fixes the
/// order of conflicts in messages.
impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((name_a, value_a), (name_b, value_b)) in a.iter().zip(b) {
                    let order = name_a.cmp(name_b).then_with(|| value_cmp(value_a, value_b));
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value_cmp(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// Equality must agree with the ordering (1 and 1.0 are the same key).
impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> =
                    fields.iter().map(|(name, value)| format!("{name}={}", value_text(value))).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(value) => write!(f, "[={}]", value_text(value)),
            PathElement::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path to a field, list item or set item, printed as Kubernetes prints it in
/// conflict messages (`.spec.ports[port=80,protocol="TCP"].targetPort`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<PathElement>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|element| write!(f, "{element}"))
    }
}

type PathSet = BTreeSet<FieldPath>;

/// A set of owned fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet(PathSet);

impl FieldSet {
    /// The fields an apply of `object` claims (structured-merge-diff's `ToFieldSet`):
    /// every leaf, every list or set item, and every empty or null value.
    pub fn from_object(object: &Value, api_version: &str, kind: &str) -> Result<FieldSet, ApplyError> {
        field_set(object, schema::root(api_version, kind)).map(FieldSet).map_err(|message| ApplyError::InvalidObject {
            message: format!("failed to create typed patch object ({}): {message}", gvk_text(api_version, kind)),
        })
    }

    /// Parses a `fieldsV1` value.
    pub fn from_fields_v1(fields: &Value) -> Result<FieldSet, String> {
        let mut out = PathSet::new();
        parse_fields_v1(fields, &mut Vec::new(), &mut out)?;
        Ok(FieldSet(out))
    }

    /// Serialises the set as a `fieldsV1` value.
    pub fn to_fields_v1(&self) -> Value {
        fields_v1(&self.0)
    }

    pub fn contains(&self, path: &FieldPath) -> bool {
        self.0.contains(path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &FieldPath> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Go's `GroupVersionKind.String()`: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
fn gvk_text(api_version: &str, kind: &str) -> String {
    if api_version.contains('/') {
        format!("{api_version}, Kind={kind}")
    } else {
        format!("/{api_version}, Kind={kind}")
    }
}

fn fields_v1(set: &PathSet) -> Value {
    #[derive(Default)]
    struct Trie {
        member: bool,
        children: BTreeMap<String, Trie>,
    }

    fn render(trie: &Trie) -> Value {
        let mut map = Map::new();
        if trie.member && !trie.children.is_empty() {
            map.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (token, child) in &trie.children {
            map.insert(token.clone(), render(child));
        }
        Value::Object(map)
    }

    let mut root = Trie::default();
    for path in set {
        let mut node = &mut root;
        for element in &path.0 {
            node = node.children.entry(element.token()).or_default();
        }
        node.member = true;
    }
    render(&root)
}

fn parse_fields_v1(value: &Value, path: &mut Vec<PathElement>, out: &mut PathSet) -> Result<(), String> {
    let Value::Object(map) = value else {
        return Err(format!("fieldsV1 must be made of objects, found {value} at {}", FieldPath(path.clone())));
    };
    for (token, child) in map {
        if token == "." {
            if !path.is_empty() {
                out.insert(FieldPath(path.clone()));
            }
            continue;
        }
        path.push(PathElement::from_token(token)?);
        if child.as_object().is_some_and(Map::is_empty) {
            out.insert(FieldPath(path.clone()));
        } else {
            parse_fields_v1(child, path, out)?;
        }
        path.pop();
    }
    Ok(())
}

// === Values: canonical text and ordering ===

/// JSON with object keys sorted, whatever map ordering serde_json was built with, so a
/// key always serialises to the same `k:` token.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> =
                entries.iter().map(|(key, value)| format!("{}:{}", json_string(key), canonical_json(value))).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

fn json_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

fn key_json(fields: &[(String, Value)]) -> String {
    let parts: Vec<String> =
        fields.iter().map(|(name, value)| format!("{}:{}", json_string(name), canonical_json(value))).collect();
    format!("{{{}}}", parts.join(","))
}

/// structured-merge-diff's `value.ToString`: strings quoted, everything else as JSON.
fn value_text(value: &Value) -> String {
    canonical_json(value)
}

/// structured-merge-diff's `value.Compare`: numbers (compared numerically) < strings <
/// bools < lists < maps < null.
fn value_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(value: &Value) -> u8 {
        match value {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x.cmp(&y),
            (_, _, Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (item_x, item_y) in x.iter().zip(y) {
                let order = value_cmp(item_x, item_y);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(_), Value::Object(_)) => canonical_json(a).cmp(&canonical_json(b)),
        _ => rank(a).cmp(&rank(b)),
    }
}

// === Walking values by schema ===

/// How apply walks a value at some node.
enum Shape<'v> {
    /// Owned and compared as one value: scalars, atomic structs/maps/lists, or a value
    /// whose JSON kind does not match the schema.
    Leaf,
    /// Field by field.
    Fields(&'v Map<String, Value>),
    /// Item by item, keyed as `def` says.
    Items(&'static ListDef, &'v [Value]),
}

fn shape(node: Node, value: &Value) -> Shape<'_> {
    match (node, value) {
        (Node::Struct(_) | Node::Map(_) | Node::Untyped, Value::Object(map)) if !node.is_atomic() => Shape::Fields(map),
        (Node::List(def), Value::Array(items)) if def.list_type != ListType::Atomic => Shape::Items(def, items),
        _ => Shape::Leaf,
    }
}

/// What apply needs to know about a child key of an object at `node`.
struct Child {
    node: Node,
    /// A struct field rather than a map key (structured-merge-diff's "named field"):
    /// apply claims the paths of map keys but not of struct fields.
    named: bool,
    /// The field's own path may appear in an Update's changes; see
    /// [`schema::Field::always_serialized`].
    tracks_presence: bool,
}

fn child_of(node: Node, key: &str) -> Child {
    match node {
        Node::Struct(_) => {
            let (node, field) = node.child_field(key);
            Child { node, named: true, tracks_presence: !field.is_some_and(|field| field.always_serialized) }
        }
        Node::Map(def) => Child { node: def.values, named: false, tracks_presence: true },
        // Unknown objects are handled like structs whose fields are all declared.
        _ => Child { node: Node::Untyped, named: true, tracks_presence: true },
    }
}

/// The path element of a list item: its key fields (with defaults) for map-lists, its
/// value for sets.
fn item_element(item: &Value, def: &ListDef, index: usize) -> Result<PathElement, String> {
    match def.list_type {
        ListType::Set => Ok(PathElement::Value(item.clone())),
        ListType::Atomic => Ok(PathElement::Index(index)),
        ListType::Map { keys, defaults } => {
            let map = match item {
                Value::Object(map) => map,
                Value::Null => return Err("associative list with keys may not have a null element".to_string()),
                _ => return Err("associative list with keys may not have non-map elements".to_string()),
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match (map.get(*key), defaults.iter().find(|(name, _)| name == key)) {
                    (Some(value), _) => value.clone(),
                    (None, Some((_, default))) => Value::String((*default).to_string()),
                    (None, None) => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                        ));
                    }
                };
                fields.push(((*key).to_string(), value));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
    }
}

/// Keys every item of a list, or `None` when some item cannot be keyed (then the list is
/// handled as one value). Later duplicates of a key are reported separately.
fn key_items<'v>(def: &ListDef, items: &'v [Value]) -> Option<Vec<(PathElement, &'v Value)>> {
    items.iter().enumerate().map(|(index, item)| item_element(item, def, index).ok().map(|key| (key, item))).collect()
}

/// structured-merge-diff's `ToFieldSet`, validating map-list keys on the way.
fn field_set(value: &Value, node: Node) -> Result<PathSet, String> {
    let mut out = PathSet::new();
    collect_fields(value, node, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn collect_fields(value: &Value, node: Node, path: &mut Vec<PathElement>, out: &mut PathSet) -> Result<(), String> {
    match shape(node, value) {
        Shape::Leaf => {
            out.insert(FieldPath(path.clone()));
        }
        Shape::Fields(map) => {
            for (key, child_value) in map {
                let child = child_of(node, key);
                path.push(PathElement::Field(key.clone()));
                collect_fields(child_value, child.node, path, out)?;
                let empty = child_value.is_null() || child_value.as_object().is_some_and(Map::is_empty);
                if empty || !child.named {
                    out.insert(FieldPath(path.clone()));
                }
                path.pop();
            }
        }
        Shape::Items(def, items) => {
            let mut seen = BTreeSet::new();
            for (index, item) in items.iter().enumerate() {
                let element = item_element(item, def, index)
                    .map_err(|err| format!("{}: element {index}: {err}", FieldPath(path.clone())))?;
                if !seen.insert(element.clone()) {
                    return Err(format!("{}: duplicate entries for key {element}", FieldPath(path.clone())));
                }
                path.push(element);
                collect_fields(item, def.items, path, out)?;
                out.insert(FieldPath(path.clone()));
                path.pop();
            }
        }
    }
    Ok(())
}

/// Removes nulls from objects, as decoding into Go types would.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// structured-merge-diff's `Merge` (the configuration wins): objects merge field by
/// field, map-lists and sets item by item, everything else is replaced. A null in the
/// configuration unsets the field (`None`), as it would in a Go object.
fn merge_values(live: Option<&Value>, config: &Value, node: Node) -> Option<Value> {
    if config.is_null() {
        return None;
    }
    let Some(live) = live else { return Some(without_nulls(config)) };
    match (shape(node, live), shape(node, config)) {
        (Shape::Fields(live_map), Shape::Fields(config_map)) => {
            let mut out = live_map.clone();
            for (key, config_value) in config_map {
                match merge_values(live_map.get(key), config_value, child_of(node, key).node) {
                    Some(value) => out.insert(key.clone(), value),
                    None => out.remove(key),
                };
            }
            Some(Value::Object(out))
        }
        (Shape::Items(def, live_items), Shape::Items(_, config_items)) => {
            Some(merge_items(def, live_items, config_items).unwrap_or_else(|| without_nulls(config)))
        }
        _ => Some(without_nulls(config)),
    }
}

/// Merges two keyed lists the way structured-merge-diff orders them: the configuration's
/// order wins for the items both have, and live-only items keep their place relative to
/// the items around them. `None` when a live item cannot be keyed.
fn merge_items(def: &ListDef, live: &[Value], config: &[Value]) -> Option<Value> {
    let live_keys = key_items(def, live)?;
    let config_keys = key_items(def, config)?;

    // A key repeated in the live list has no single item to merge with: the
    // configuration's item replaces all of them.
    let mut live_by_key: BTreeMap<&PathElement, Option<&Value>> = BTreeMap::new();
    for (key, item) in &live_keys {
        live_by_key.entry(key).and_modify(|seen| *seen = None).or_insert(Some(*item));
    }
    let config_by_key: BTreeMap<&PathElement, &Value> =
        config_keys.iter().rev().map(|(key, item)| (key, *item)).collect();

    let mut shared: VecDeque<&PathElement> =
        config_keys.iter().map(|(key, _)| key).filter(|key| live_by_key.contains_key(key)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_config: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(live.len().max(config.len()));

    let merge_item = |key: &PathElement, config_item: &Value| {
        merge_values(live_by_key.get(key).copied().flatten(), config_item, def.items)
    };

    let (mut l, mut c) = (0, 0);
    while l < live_keys.len() || c < config_keys.len() {
        if l < live_keys.len() && c < config_keys.len() {
            let key = &live_keys[l].0;
            if *key == config_keys[c].0 {
                merged_config.insert(key);
                out.extend(merge_item(key, config_keys[c].1));
                l += 1;
                c += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if config_by_key.contains_key(key) && next_shared.is_some_and(|next| next != key) {
                // Shared with the configuration, but not the one due in this round.
                l += 1;
                continue;
            }
        }
        if l < live_keys.len() {
            let key = &live_keys[l].0;
            if !config_by_key.contains_key(key) {
                out.push(live_keys[l].1.clone());
                l += 1;
                continue;
            }
            if merged_config.contains(key) {
                l += 1;
                continue;
            }
        }
        if c < config_keys.len() {
            let (key, config_item) = &config_keys[c];
            merged_config.insert(key);
            out.extend(merge_item(key, config_item));
            c += 1;
            if next_shared == Some(key) {
                next_shared = shared.pop_front();
            }
        }
    }
    Some(Value::Array(out))
}

/// What changed between two objects, as field paths (structured-merge-diff's
/// `Comparison`).
#[derive(Debug, Default)]
struct Comparison {
    added: PathSet,
    removed: PathSet,
    modified: PathSet,
}

/// Compares the value at `path`; returns whether it was compared as a leaf, in which case
/// the caller must not also record it as an added or removed container.
fn compare(
    old: Option<&Value>,
    new: Option<&Value>,
    node: Node,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) -> bool {
    let old_shape = old.map(|value| shape(node, value));
    let new_shape = new.map(|value| shape(node, value));

    // Both sides (where present) are objects to walk field by field, and not both empty:
    // an empty object on both sides is compared as a leaf, keeping `{}` apart from
    // absent.
    if let (Some(old_map), Some(new_map)) = (as_fields(&old_shape), as_fields(&new_shape))
        && !(old_map.is_none_or(Map::is_empty) && new_map.is_none_or(Map::is_empty))
    {
        compare_fields(old_map, new_map, node, path, out);
        return false;
    }

    if let (Some(old_items), Some(new_items)) = (as_items(&old_shape), as_items(&new_shape)) {
        let def = old_items.or(new_items).map(|(def, _)| def);
        let old_list = old_items.map_or(&[][..], |(_, items)| items);
        let new_list = new_items.map_or(&[][..], |(_, items)| items);
        if let Some(def) = def
            && !(old_list.is_empty() && new_list.is_empty())
            && compare_items(def, old_list, new_list, path, out).is_some()
        {
            return false;
        }
    }

    match (old, new) {
        (None, Some(_)) => {
            out.added.insert(FieldPath(path.clone()));
        }
        (Some(_), None) => {
            out.removed.insert(FieldPath(path.clone()));
        }
        (Some(a), Some(b)) if a != b => {
            out.modified.insert(FieldPath(path.clone()));
        }
        _ => {}
    }
    true
}

/// `Some(None)` for an absent side, `Some(Some(map))` for an object walked field by
/// field, `None` for anything else.
fn as_fields<'v>(shape: &Option<Shape<'v>>) -> Option<Option<&'v Map<String, Value>>> {
    match shape {
        None => Some(None),
        Some(Shape::Fields(map)) => Some(Some(*map)),
        Some(_) => None,
    }
}

/// Like [`as_fields`], for keyed lists.
fn as_items<'v>(shape: &Option<Shape<'v>>) -> Option<Option<(&'static ListDef, &'v [Value])>> {
    match shape {
        None => Some(None),
        Some(Shape::Items(def, items)) => Some(Some((*def, *items))),
        Some(_) => None,
    }
}

fn compare_fields(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    node: Node,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    let keys: BTreeSet<&String> = old.into_iter().chain(new).flat_map(|map| map.keys()).collect();
    for key in keys {
        let child = child_of(node, key);
        let (old_value, new_value) = (old.and_then(|m| m.get(key)), new.and_then(|m| m.get(key)));
        path.push(PathElement::Field(key.clone()));
        let leaf = compare(old_value, new_value, child.node, path, out);
        if !leaf && child.tracks_presence {
            if old_value.is_none() {
                out.added.insert(FieldPath(path.clone()));
            } else if new_value.is_none() {
                out.removed.insert(FieldPath(path.clone()));
            }
        }
        path.pop();
    }
}

/// `None` when an item cannot be keyed; the caller then compares the list as a leaf.
fn compare_items(
    def: &ListDef,
    old: &[Value],
    new: &[Value],
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) -> Option<()> {
    let old_keys = key_items(def, old)?;
    let new_keys = key_items(def, new)?;
    // Repeated keys are ignored after their first item.
    let mut old_by_key: BTreeMap<&PathElement, &Value> = BTreeMap::new();
    for (key, item) in &old_keys {
        old_by_key.entry(key).or_insert(item);
    }
    let mut new_seen: BTreeSet<&PathElement> = BTreeSet::new();
    for (key, item) in &new_keys {
        if !new_seen.insert(key) {
            continue;
        }
        let old_item = old_by_key.get(key).copied();
        path.push(key.clone());
        let leaf = compare(old_item, Some(item), def.items, path, out);
        if !leaf && old_item.is_none() {
            out.added.insert(FieldPath(path.clone()));
        }
        path.pop();
    }
    for (key, item) in old_by_key {
        if new_seen.contains(key) {
            continue;
        }
        path.push(key.clone());
        if !compare(Some(item), None, def.items, path, out) {
            out.removed.insert(FieldPath(path.clone()));
        }
        path.pop();
    }
    Some(())
}

/// Compares two whole objects, leaving out what the field manager never tracks.
fn compare_objects(old: &Value, new: &Value, node: Node) -> Comparison {
    let mut out = Comparison::default();
    compare(Some(old), Some(new), node, &mut Vec::new(), &mut out);
    for set in [&mut out.added, &mut out.removed, &mut out.modified] {
        set.retain(|path| !is_ignored(path));
    }
    out
}

fn is_ignored(path: &FieldPath) -> bool {
    let names: Vec<&str> = path
        .0
        .iter()
        .map_while(|element| match element {
            PathElement::Field(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let under = |prefix: &[&str]| names.len() >= prefix.len() && names[..prefix.len()] == *prefix;
    under(&["status"])
        || under(&["metadata", "managedFields"])
        || (names.len() == path.0.len() && STRIPPED_PATHS.contains(&names.as_slice()))
}

fn without_ignored(set: &PathSet) -> PathSet {
    set.iter().filter(|path| !is_ignored(path)).cloned().collect()
}

/// Adds the struct fields above every path (structured-merge-diff's
/// `EnsureNamedFieldsAreMembers`), so that "nobody owns anything under `spec.strategy`
/// any more" shows up as `spec.strategy` being unowned.
fn with_named_parents(set: &PathSet, root: Node) -> PathSet {
    let mut out = set.clone();
    for path in set {
        let mut node = root;
        for (depth, element) in path.0.iter().enumerate() {
            node = match element {
                PathElement::Field(key) => {
                    let child = child_of(node, key);
                    if child.named && depth + 1 < path.0.len() {
                        out.insert(FieldPath(path.0[..=depth].to_vec()));
                    }
                    child.node
                }
                _ => node.items(),
            };
        }
    }
    out
}

/// Removes the value at `path`; a map or list left empty by the removal goes too, as
/// `omitempty` would drop it from a Go object. Returns whether anything was removed.
fn remove_path(value: &mut Value, path: &[PathElement], node: Node) -> bool {
    let Some((first, rest)) = path.split_first() else { return false };
    match (first, value) {
        (PathElement::Field(key), Value::Object(map)) => {
            if rest.is_empty() {
                return map.remove(key).is_some();
            }
            let Some(inner) = map.get_mut(key) else { return false };
            let removed = remove_path(inner, rest, child_of(node, key).node);
            let emptied = match inner {
                Value::Object(m) => m.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => false,
            };
            if removed && emptied {
                map.remove(key);
            }
            removed
        }
        (element, Value::Array(items)) => {
            let matches = |index: usize, item: &Value| match (element, node.list()) {
                (PathElement::Index(wanted), _) => index == *wanted,
                (PathElement::Field(_), _) | (_, None) => false,
                (_, Some(def)) => item_element(item, def, index).is_ok_and(|key| key == *element),
            };
            if rest.is_empty() {
                let before = items.len();
                let mut index = 0;
                items.retain(|item| {
                    let keep = !matches(index, item);
                    index += 1;
                    keep
                });
                return items.len() != before;
            }
            match items.iter().enumerate().position(|(index, item)| matches(index, item)) {
                Some(position) => remove_path(&mut items[position], rest, node.items()),
                None => false,
            }
        }
        _ => false,
    }
}

// === Managers ===

/// `managedFields[].operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// What makes two managedFields entries the same manager (Kubernetes'
/// `BuildManagerIdentifier`): an applier is one manager whatever API version it used,
/// an updater is one per API version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ManagerKey {
    manager: String,
    operation: Operation,
    /// Empty for appliers.
    api_version: String,
    subresource: String,
}

impl ManagerKey {
    fn applier(manager: &str) -> ManagerKey {
        ManagerKey {
            manager: manager.to_string(),
            operation: Operation::Apply,
            api_version: String::new(),
            subresource: String::new(),
        }
    }

    fn updater(manager: &str, api_version: &str) -> ManagerKey {
        ManagerKey {
            manager: manager.to_string(),
            operation: Operation::Update,
            api_version: api_version.to_string(),
            subresource: String::new(),
        }
    }

    /// The identifier Kubernetes sorts conflicts by: the entry's identity fields as Go
    /// marshals them, in field order, empty ones omitted.
    fn identifier(&self) -> String {
        let mut parts = Vec::new();
        if !self.manager.is_empty() {
            parts.push(format!("\"manager\":{}", json_string(&self.manager)));
        }
        parts.push(format!("\"operation\":{}", json_string(self.operation.as_str())));
        if !self.api_version.is_empty() {
            parts.push(format!("\"apiVersion\":{}", json_string(&self.api_version)));
        }
        if !self.subresource.is_empty() {
            parts.push(format!("\"subresource\":{}", json_string(&self.subresource)));
        }
        format!("{{{}}}", parts.join(","))
    }

    /// Kubernetes' `printManager`.
    fn describe(&self) -> String {
        let mut text = json_string(&self.manager);
        if !self.subresource.is_empty() {
            text = format!("{text} with subresource {}", json_string(&self.subresource));
        }
        if self.operation == Operation::Update {
            text = format!("{text} using {}", self.api_version);
        }
        text
    }
}

#[derive(Clone, Debug)]
struct Entry {
    set: PathSet,
    api_version: String,
    time: Option<String>,
}

type Managers = BTreeMap<ManagerKey, Entry>;

fn managed_fields_of(object: &Value) -> Option<&Value> {
    object.get("metadata").and_then(|metadata| metadata.get("managedFields"))
}

fn strip_managed_fields(object: &mut Value) {
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        metadata.remove("managedFields");
    }
}

/// `managedFields: [{}]` is how a client asks for the managed fields to be cleared.
fn is_reset(managed_fields: Option<&Value>) -> bool {
    matches!(managed_fields, Some(Value::Array(entries)) if entries.len() == 1 && entries[0] == Value::Object(Map::new()))
}

fn decode_managed_fields(managed_fields: Option<&Value>) -> Result<Managers, String> {
    let entries = match managed_fields {
        None | Some(Value::Null) => return Ok(Managers::new()),
        Some(Value::Array(entries)) => entries,
        Some(other) => return Err(format!("metadata.managedFields must be a list, found {other}")),
    };
    let mut managers = Managers::new();
    for entry in entries {
        let Value::Object(entry) = entry else {
            return Err(format!("managed fields entry must be an object, found {entry}"));
        };
        let text = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let operation = match entry.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(format!("unknown managed fields operation {other:?}")),
        };
        if let Some(fields_type) = entry.get("fieldsType").and_then(Value::as_str)
            && fields_type != "FieldsV1"
        {
            return Err(format!("only fieldsType FieldsV1 is supported, found {fields_type:?}"));
        }
        let set = match entry.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)?.0,
            None => PathSet::new(),
        };
        let api_version = text("apiVersion");
        let key = ManagerKey {
            manager: text("manager"),
            operation,
            api_version: if operation == Operation::Apply { String::new() } else { api_version.clone() },
            subresource: text("subresource"),
        };
        let time = entry.get("time").and_then(Value::as_str).map(str::to_string);
        managers.entry(key).and_modify(|existing| existing.set.extend(set.iter().cloned())).or_insert(Entry {
            set,
            api_version,
            time,
        });
    }
    Ok(managers)
}

/// Encodes the entries in Kubernetes' order: appliers first, then by time (RFC 3339
/// strings in UTC, as Kubernetes writes them, sort by time), manager, version,
/// subresource.
fn encode_managed_fields(managers: &Managers) -> Vec<Value> {
    let mut entries: Vec<(&ManagerKey, &Entry)> = managers.iter().filter(|(_, entry)| !entry.set.is_empty()).collect();
    entries.sort_by(|(a_key, a), (b_key, b)| {
        a_key
            .operation
            .cmp(&b_key.operation)
            .then_with(|| a.time.as_deref().unwrap_or_default().cmp(b.time.as_deref().unwrap_or_default()))
            .then_with(|| a_key.manager.cmp(&b_key.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a_key.subresource.cmp(&b_key.subresource))
    });
    entries
        .into_iter()
        .map(|(key, entry)| {
            let mut out = Map::new();
            out.insert("manager".to_string(), Value::String(key.manager.clone()));
            out.insert("operation".to_string(), Value::String(key.operation.as_str().to_string()));
            out.insert("apiVersion".to_string(), Value::String(entry.api_version.clone()));
            if let Some(time) = &entry.time {
                out.insert("time".to_string(), Value::String(time.clone()));
            }
            out.insert("fieldsType".to_string(), Value::String("FieldsV1".to_string()));
            out.insert("fieldsV1".to_string(), fields_v1(&entry.set));
            if !key.subresource.is_empty() {
                out.insert("subresource".to_string(), Value::String(key.subresource.clone()));
            }
            Value::Object(out)
        })
        .collect()
}

fn set_managed_fields(object: &mut Value, managers: &Managers) {
    let encoded = encode_managed_fields(managers);
    let Value::Object(root) = object else { return };
    let metadata = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(metadata) = metadata {
        if encoded.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".to_string(), Value::Array(encoded));
        }
    }
}

/// A non-apply write by `manager` (the core of structured-merge-diff's `Update`): the
/// fields it changed or added become its own and nobody else's; fields it removed are
/// nobody's.
fn record_changes(
    mut managers: Managers,
    old: &Value,
    new: &Value,
    node: Node,
    manager: &str,
    api_version: &str,
    now: &str,
) -> Managers {
    let comparison = compare_objects(old, new, node);
    let changed: PathSet = comparison.added.union(&comparison.modified).cloned().collect();
    for entry in managers.values_mut() {
        entry.set.retain(|path| !changed.contains(path) && !comparison.removed.contains(path));
    }
    // An update that changed nothing leaves the writer's entry (and its time) alone.
    if !changed.is_empty() {
        let entry = managers.entry(ManagerKey::updater(manager, api_version)).or_insert_with(|| Entry {
            set: PathSet::new(),
            api_version: api_version.to_string(),
            time: None,
        });
        entry.set.extend(changed);
        entry.time = Some(now.to_string());
    }
    managers.retain(|_, entry| !entry.set.is_empty());
    managers
}

// === Public operations ===

/// Server-side apply of `config` by `manager` to `live` (`None` to create). Returns the
/// new object with `metadata.managedFields` updated, or the conflicts that stop the
/// apply unless `force` is set (which moves the contested fields to `manager`). `now` is
/// the RFC 3339 timestamp recorded for the write.
///
/// System metadata in `config` (`resourceVersion`, `uid`, ...) is merged like any other
/// field and never owned; the API server must still check or reset it, as for updates.
pub fn apply(live: Option<&Value>, config: &Value, manager: &str, force: bool, now: &str) -> Result<Value, ApplyError> {
    let Value::Object(config_map) = config else { return Err(ApplyError::NotAnObject) };
    let type_meta = |field: &'static str| {
        config_map
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(ApplyError::MissingTypeMeta { field })
    };
    let api_version = type_meta("apiVersion")?;
    let kind = type_meta("kind")?;
    if managed_fields_of(config).is_some_and(|fields| !fields.is_null()) {
        return Err(ApplyError::ManagedFieldsSet);
    }

    let mut live_object = match live {
        None => Value::Object(Map::new()),
        Some(Value::Object(live_map)) => {
            if let Some(expected) = live_map.get("apiVersion").and_then(Value::as_str)
                && expected != api_version
            {
                return Err(ApplyError::VersionMismatch {
                    specified: api_version.to_string(),
                    expected: expected.to_string(),
                });
            }
            if let Some(expected) = live_map.get("kind").and_then(Value::as_str)
                && expected != kind
            {
                return Err(ApplyError::KindMismatch { specified: kind.to_string(), expected: expected.to_string() });
            }
            Value::Object(live_map.clone())
        }
        Some(_) => return Err(ApplyError::LiveNotAnObject),
    };
    let mut managers = decode_managed_fields(managed_fields_of(&live_object))
        .map_err(|message| ApplyError::InvalidManagedFields { message })?;
    strip_managed_fields(&mut live_object);
    let node = schema::root(api_version, kind);

    // Apply to the main resource neither changes nor owns status (see the module docs).
    let mut config = config.clone();
    if let Value::Object(config_map) = &mut config {
        config_map.remove("status");
    }

    if live.is_some() && managers.is_empty() {
        // Credit the existing fields to someone, so that this apply conflicts with them
        // rather than silently taking them over.
        managers = record_changes(
            managers,
            &Value::Object(Map::new()),
            &live_object,
            node,
            BEFORE_FIRST_APPLY_MANAGER,
            api_version,
            now,
        );
    }

    let config_set = field_set(&config, node).map_err(|message| ApplyError::InvalidObject {
        message: format!("failed to create typed patch object ({}): {message}", gvk_text(api_version, kind)),
    })?;
    let mut merged = merge_values(Some(&live_object), &config, node).unwrap_or_else(|| Value::Object(Map::new()));

    // Fields this applier set last time but not now are removed, unless someone (this
    // configuration included) still owns them.
    let key = ManagerKey::applier(manager);
    if let Some(last) = managers.get(&key).map(|entry| &entry.set).filter(|set| !set.is_empty()) {
        let mut owned = config_set.clone();
        for (other, entry) in &managers {
            if *other != key {
                owned.extend(entry.set.iter().cloned());
            }
        }
        let owned = with_named_parents(&owned, node);
        // Never untracked fields: a configuration without `metadata` must not take the
        // object's name and uid with it.
        for path in with_named_parents(last, node).difference(&owned).filter(|path| !is_ignored(path)) {
            remove_path(&mut merged, &path.0, node);
        }
    }

    let comparison = compare_objects(&live_object, &merged, node);
    let changed: PathSet = comparison.added.union(&comparison.modified).cloned().collect();
    let mut conflicts: Vec<(String, FieldPath, Conflict)> = Vec::new();
    for (other, entry) in &managers {
        if *other == key {
            continue;
        }
        for path in entry.set.intersection(&changed) {
            conflicts.push((
                other.identifier(),
                path.clone(),
                Conflict {
                    manager: other.manager.clone(),
                    operation: other.operation,
                    api_version: other.api_version.clone(),
                    subresource: other.subresource.clone(),
                    field: path.to_string(),
                },
            ));
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        return Err(ApplyError::Conflicts(conflicts.into_iter().map(|(_, _, conflict)| conflict).collect()));
    }
    for (other, entry) in &mut managers {
        if *other != key {
            entry.set.retain(|path| !changed.contains(path) && !comparison.removed.contains(path));
        }
    }

    // Kubernetes stamps the time only when the object changed.
    let object_changed = live_object != merged;
    let time = match managers.get(&key).and_then(|entry| entry.time.clone()) {
        Some(previous) if !object_changed => previous,
        _ => now.to_string(),
    };
    managers.insert(
        key,
        Entry { set: without_ignored(&config_set), api_version: api_version.to_string(), time: Some(time) },
    );
    managers.retain(|_, entry| !entry.set.is_empty());
    set_managed_fields(&mut merged, &managers);
    Ok(merged)
}

/// The `metadata.managedFields` after a non-apply write (create, update, any patch) by
/// `manager` that turns `old` (`None` for a create) into `new`.
///
/// Fields the write added or changed become `manager`'s (an "Update" entry for `new`'s
/// apiVersion) and are taken from every other entry; removed fields leave every entry;
/// unchanged fields keep their owners; emptied entries are dropped. Like Kubernetes, the
/// starting point is `new`'s own managedFields when the client sent any (`[{}]` clears
/// them), else `old`'s; and an existing object without managed fields stays untracked.
pub fn record_update(old: Option<&Value>, new: &Value, manager: &str, now: &str) -> Value {
    if !new.is_object() {
        return Value::Array(Vec::new());
    }
    let requested = managed_fields_of(new);
    let managers = if is_reset(requested) {
        Managers::new()
    } else {
        match decode_managed_fields(requested) {
            Ok(managers) if !managers.is_empty() => managers,
            // Clients that do not know managedFields drop them; keep the stored ones
            // rather than forgetting every owner. Undecodable ones count as none.
            _ => old.and_then(|old| decode_managed_fields(managed_fields_of(old)).ok()).unwrap_or_default(),
        }
    };
    if old.is_some() && managers.is_empty() {
        return Value::Array(Vec::new());
    }

    let text = |name: &str| new.get(name).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let mut old_object = old.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    strip_managed_fields(&mut old_object);
    let mut new_object = new.clone();
    strip_managed_fields(&mut new_object);

    let managers =
        record_changes(managers, &old_object, &new_object, schema::root(api_version, kind), manager, api_version, now);
    Value::Array(encode_managed_fields(&managers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: &str = "2024-05-01T10:00:00Z";
    const T1: &str = "2024-05-01T11:00:00Z";
    const T2: &str = "2024-05-01T12:00:00Z";

    fn deployment(replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}
                }
            }
        })
    }

    fn applied(live: Option<&Value>, config: &Value, manager: &str, force: bool, now: &str) -> Value {
        match apply(live, config, manager, force, now) {
            Ok(object) => object,
            Err(err) => panic!("apply by {manager} failed: {err}"),
        }
    }

    fn entries(object: &Value) -> Vec<Value> {
        managed_fields_of(object).and_then(Value::as_array).cloned().unwrap_or_default()
    }

    /// The fieldsV1 of `manager`'s entry with `operation`.
    fn fields_of(managed_fields: &[Value], manager: &str, operation: &str) -> Option<Value> {
        managed_fields
            .iter()
            .find(|entry| entry["manager"] == manager && entry["operation"] == operation)
            .map(|entry| entry["fieldsV1"].clone())
    }

    fn owns(managed_fields: &[Value], manager: &str, operation: &str, path: &str) -> bool {
        let Some(fields) = fields_of(managed_fields, manager, operation) else { return false };
        let Ok(set) = FieldSet::from_fields_v1(&fields) else { return false };
        set.paths().any(|owned| owned.to_string() == path)
    }

    fn conflicts_of(result: Result<Value, ApplyError>) -> Vec<Conflict> {
        match result {
            Err(ApplyError::Conflicts(conflicts)) => conflicts,
            Err(other) => panic!("expected conflicts, got {other}"),
            Ok(object) => panic!("expected conflicts, got {object}"),
        }
    }

    // --- FieldsV1 encoding ---

    #[test]
    fn apply_records_fields_v1_exactly_as_kubernetes_writes_it() {
        let out = applied(None, &deployment(3), "kubectl", false, T0);
        let managed = entries(&out);
        assert_eq!(managed.len(), 1);
        assert_eq!(
            managed[0],
            json!({
                "manager": "kubectl",
                "operation": "Apply",
                "apiVersion": "apps/v1",
                "time": T0,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:replicas": {},
                        // LabelSelector is an atomic struct: owned as one leaf.
                        "f:selector": {},
                        "f:template": {
                            "f:metadata": {"f:labels": {"f:app": {}}},
                            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                    ".": {},
                                    "f:containerPort": {}
                                }}
                            }}}
                        }
                    }
                }
            })
        );
        // The object itself is the configuration.
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["metadata"]["name"], "nginx");
    }

    #[test]
    fn fields_v1_round_trips_and_canonicalises_keys() {
        let fields = json!({
            "f:metadata": {"f:finalizers": {"v:\"example.com/x\"": {}}, "f:labels": {".": {}, "f:a": {}}},
            "f:spec": {"f:ports": {"k:{\"protocol\":\"TCP\",\"port\":80}": {".": {}, "f:port": {}}}}
        });
        let set = FieldSet::from_fields_v1(&fields).unwrap_or_else(|e| panic!("{e}"));
        let printed: Vec<String> = set.paths().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                ".metadata.finalizers[=\"example.com/x\"]",
                ".metadata.labels",
                ".metadata.labels.a",
                ".spec.ports[port=80,protocol=\"TCP\"]",
                ".spec.ports[port=80,protocol=\"TCP\"].port",
            ]
        );
        // Re-encoding sorts the key fields as Kubernetes does.
        let encoded = set.to_fields_v1();
        assert!(encoded["f:spec"]["f:ports"].get("k:{\"port\":80,\"protocol\":\"TCP\"}").is_some(), "{encoded}");
        assert_eq!(FieldSet::from_fields_v1(&encoded), Ok(set));
        assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_err());
    }

    #[test]
    fn set_items_and_map_keys_are_owned_individually() {
        let config = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "finalizers": ["example.com/a"]},
            "data": {"k": "v", "empty": ""}
        });
        let out = applied(None, &config, "m", false, T0);
        assert_eq!(
            fields_of(&entries(&out), "m", "Apply"),
            Some(
                json!({"f:data": {"f:empty": {}, "f:k": {}}, "f:metadata": {"f:finalizers": {"v:\"example.com/a\"": {}}}})
            )
        );
    }

    // --- Conflicts ---

    /// A Deployment created by client-side `kubectl apply` (an Update by
    /// `kubectl-client-side-apply`), then applied server-side with another replica
    /// count, as in the Kubernetes server-side apply docs.
    #[test]
    fn conflict_with_an_updater_uses_the_kubernetes_message() {
        let mut created = deployment(2);
        created["metadata"]["managedFields"] = record_update(None, &created, "kubectl-client-side-apply", T0);

        let err = match apply(Some(&created), &deployment(3), "kubectl", false, T1) {
            Err(err) => err,
            Ok(object) => panic!("apply unexpectedly succeeded: {object}"),
        };
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
        );
        assert_eq!((err.status_code(), err.reason()), (409, "Conflict"));
        let ApplyError::Conflicts(conflicts) = err else { panic!("not a conflict error") };
        assert_eq!(conflicts[0].cause_message(), r#"conflict with "kubectl-client-side-apply" using apps/v1"#);
    }

    #[test]
    fn force_moves_ownership_to_the_applier() {
        let mut created = deployment(2);
        created["metadata"]["managedFields"] = record_update(None, &created, "kubectl-client-side-apply", T0);

        let out = applied(Some(&created), &deployment(3), "kubectl", true, T1);
        assert_eq!(out["spec"]["replicas"], 3);
        let managed = entries(&out);
        assert!(owns(&managed, "kubectl", "Apply", ".spec.replicas"));
        assert!(!owns(&managed, "kubectl-client-side-apply", "Update", ".spec.replicas"));
        // Fields both set to the same value stay shared.
        assert!(owns(
            &managed,
            "kubectl-client-side-apply",
            "Update",
            ".spec.template.spec.containers[name=\"nginx\"].image"
        ));
        assert!(owns(&managed, "kubectl", "Apply", ".spec.template.spec.containers[name=\"nginx\"].image"));
    }

    #[test]
    fn two_appliers_conflict_and_the_message_lists_each_manager() {
        let first = applied(None, &deployment(1), "alice", false, T0);
        let mut config = deployment(5);
        config["metadata"]["labels"]["app"] = json!("web");
        config["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
        let conflicts = conflicts_of(apply(Some(&first), &config, "bob", false, T1));
        let fields: Vec<&str> = conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [".metadata.labels.app", ".spec.replicas", ".spec.template.spec.containers[name=\"nginx\"].image"]
        );
        assert_eq!(
            ApplyError::Conflicts(conflicts).to_string(),
            "Apply failed with 3 conflicts: conflicts with \"alice\":\n\
             - .metadata.labels.app\n\
             - .spec.replicas\n\
             - .spec.template.spec.containers[name=\"nginx\"].image"
        );
    }

    #[test]
    fn applying_the_same_value_shares_ownership_without_conflict() {
        let first = applied(None, &deployment(2), "alice", false, T0);
        let second = applied(Some(&first), &deployment(2), "bob", false, T1);
        let managed = entries(&second);
        assert!(owns(&managed, "alice", "Apply", ".spec.replicas"));
        assert!(owns(&managed, "bob", "Apply", ".spec.replicas"));
        // Appliers come first, ordered by time.
        let managers: Vec<&Value> = managed.iter().map(|entry| &entry["manager"]).collect();
        assert_eq!(managers, [&json!("alice"), &json!("bob")]);
    }

    // --- Removing what an applier dropped ---

    #[test]
    fn fields_dropped_from_the_config_are_removed_unless_someone_else_owns_them() {
        let mut config = deployment(2);
        config["metadata"]["labels"]["tier"] = json!("web");
        config["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
        let first = applied(None, &config, "alice", false, T0);

        // Bob also sets the tier label, to the same value.
        let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "labels": {"tier": "web"}}});
        let shared = applied(Some(&first), &bob, "bob", false, T1);

        // Alice drops the label and the env var.
        let out = applied(Some(&shared), &deployment(2), "alice", false, T2);
        assert_eq!(out["metadata"]["labels"], json!({"app": "nginx", "tier": "web"}), "bob still owns tier");
        let container = &out["spec"]["template"]["spec"]["containers"][0];
        assert!(container.get("env").is_none(), "env was only alice's: {container}");
        assert!(!owns(&entries(&out), "alice", "Apply", ".metadata.labels.tier"));
    }

    #[test]
    fn map_list_items_merge_by_key_and_each_applier_keeps_its_own() {
        let alice = applied(None, &deployment(1), "alice", false, T0);
        let sidecar = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"},
            "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy"}]}}}
        });
        let both = applied(Some(&alice), &sidecar, "bob", false, T1);
        let names: Vec<&Value> = both["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, [&json!("nginx"), &json!("sidecar")]);
        assert!(owns(&entries(&both), "bob", "Apply", ".spec.template.spec.containers[name=\"sidecar\"]"));

        // Bob withdraws his container; alice's stays.
        let mut withdrawn = sidecar.clone();
        withdrawn["spec"]["template"]["spec"]["containers"] = json!([]);
        let out = applied(Some(&both), &withdrawn, "bob", false, T2);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            deployment(1)["spec"]["template"]["spec"]["containers"]
        );
    }

    #[test]
    fn sets_union_per_owner() {
        let config = |finalizers: Value| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "finalizers": finalizers}});
        let a = applied(None, &config(json!(["a.example/x"])), "a", false, T0);
        let ab = applied(Some(&a), &config(json!(["b.example/y"])), "b", false, T1);
        assert_eq!(ab["metadata"]["finalizers"], json!(["a.example/x", "b.example/y"]));
        let b_only = applied(Some(&ab), &config(json!([])), "a", false, T2);
        assert_eq!(b_only["metadata"]["finalizers"], json!(["b.example/y"]));
    }

    #[test]
    fn atomic_lists_are_replaced_whole_and_conflict_as_one_field() {
        let with = |tolerations: Value| {
            let mut d = deployment(1);
            d["spec"]["template"]["spec"]["tolerations"] = tolerations;
            d
        };
        let first = applied(None, &with(json!([{"key": "a", "operator": "Exists"}])), "alice", false, T0);
        assert!(owns(&entries(&first), "alice", "Apply", ".spec.template.spec.tolerations"));

        let conflicts =
            conflicts_of(apply(Some(&first), &with(json!([{"key": "b", "operator": "Exists"}])), "bob", false, T1));
        let fields: Vec<&str> = conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, [".spec.template.spec.tolerations"]);

        let forced = applied(Some(&first), &with(json!([{"key": "b", "operator": "Exists"}])), "bob", true, T1);
        assert_eq!(forced["spec"]["template"]["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
    }

    #[test]
    fn reapplying_the_same_config_is_a_no_op_that_keeps_the_time() {
        let first = applied(None, &deployment(2), "kubectl", false, T0);
        let again = applied(Some(&first), &deployment(2), "kubectl", false, T1);
        assert_eq!(again, first);
    }

    #[test]
    fn the_configs_order_wins_for_items_it_lists() {
        let with = |names: &[&str]| {
            let mut d = deployment(1);
            d["spec"]["template"]["spec"]["containers"] =
                Value::Array(names.iter().map(|name| json!({"name": name, "image": "busybox"})).collect());
            d
        };
        let first = applied(None, &with(&["a", "b"]), "kubectl", false, T0);
        let out = applied(Some(&first), &with(&["b", "a"]), "kubectl", false, T1);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            with(&["b", "a"])["spec"]["template"]["spec"]["containers"]
        );
    }

    #[test]
    fn dropping_metadata_from_the_config_keeps_the_objects_identity() {
        let labelled = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"a": "1"}}, "data": {"k": "v"}});
        let first = applied(None, &labelled, "m", false, T0);
        let out = applied(
            Some(&first),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}),
            "m",
            false,
            T1,
        );
        assert_eq!(out["metadata"]["name"], "cm");
        assert!(out["metadata"].get("labels").is_none(), "{out}");
    }

    // --- Updates ---

    #[test]
    fn an_update_adding_a_probe_owns_it_with_dot_entries_but_not_for_value_structs() {
        let mut created = deployment(1);
        created["spec"]["strategy"] = json!({"type": "RollingUpdate"});
        created["metadata"]["managedFields"] = record_update(None, &created, "creator", T0);
        let mut edited = created.clone();
        edited["spec"]["strategy"]["type"] = json!("Recreate");
        edited["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] =
            json!({"httpGet": {"path": "/healthz", "port": 80}});
        let managed = record_update(Some(&created), &edited, "editor", T1);
        let managed = managed.as_array().cloned().unwrap_or_default();
        assert_eq!(
            fields_of(&managed, "editor", "Update"),
            Some(json!({"f:spec": {
                "f:strategy": {"f:type": {}},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                    "f:livenessProbe": {".": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}}}
                }}}}
            }}))
        );
        assert!(!owns(&managed, "creator", "Update", ".spec.strategy.type"));
    }

    #[test]
    fn an_update_takes_the_fields_it_changes() {
        let applied_once = applied(None, &deployment(2), "kubectl", false, T0);
        let mut scaled = applied_once.clone();
        scaled["spec"]["replicas"] = json!(5);
        let managed = record_update(Some(&applied_once), &scaled, "kube-controller-manager", T1);
        let managed = managed.as_array().cloned().unwrap_or_default();
        assert!(!owns(&managed, "kubectl", "Apply", ".spec.replicas"));
        assert!(owns(&managed, "kube-controller-manager", "Update", ".spec.replicas"));
        assert!(owns(&managed, "kubectl", "Apply", ".metadata.labels.app"), "unchanged fields keep their owner");
        assert_eq!(
            fields_of(&managed, "kube-controller-manager", "Update"),
            Some(json!({"f:spec": {"f:replicas": {}}}))
        );
        // Updaters sort after appliers.
        assert_eq!(managed[1]["operation"], "Update");
        assert_eq!(managed[1]["time"], T1);
    }

    #[test]
    fn an_update_on_create_owns_everything_with_kubernetes_dot_entries() {
        let created = deployment(1);
        let managed = record_update(None, &created, "kubectl-create", T0);
        assert_eq!(
            managed,
            json!([{
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": T0,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    // A newly set map gets its own `.`; struct fields (always present in
                    // Go objects) do not.
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:replicas": {},
                        "f:selector": {},
                        "f:template": {
                            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {
                                    ".": {},
                                    "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
                                }
                            }}}
                        }
                    }
                }
            }])
        );
    }

    #[test]
    fn removed_fields_leave_every_owner_and_empty_entries_are_dropped() {
        let mut created = deployment(1);
        created["metadata"]["managedFields"] = record_update(None, &created, "creator", T0);
        let mut labelled = created.clone();
        labelled["metadata"]["labels"]["team"] = json!("a");
        labelled["metadata"]["managedFields"] = record_update(Some(&created), &labelled, "labeller", T1);

        let mut unlabelled = labelled.clone();
        if let Some(labels) = unlabelled["metadata"]["labels"].as_object_mut() {
            labels.remove("team");
        }
        let managed = record_update(Some(&labelled), &unlabelled, "janitor", T2);
        let managed = managed.as_array().cloned().unwrap_or_default();
        let managers: Vec<&Value> = managed.iter().map(|entry| &entry["manager"]).collect();
        // The labeller owned only the label: its entry is gone. The janitor changed
        // nothing it could own (it only removed), so it has no entry either.
        assert_eq!(managers, [&json!("creator")]);
    }

    #[test]
    fn an_update_that_changes_nothing_keeps_the_writers_time() {
        let mut created = deployment(1);
        created["metadata"]["managedFields"] = record_update(None, &created, "writer", T0);
        let managed = record_update(Some(&created), &created, "writer", T1);
        assert_eq!(managed[0]["time"], T0);
    }

    #[test]
    fn clients_can_reset_managed_fields_and_untracked_objects_stay_untracked() {
        let mut created = deployment(1);
        created["metadata"]["managedFields"] = record_update(None, &created, "writer", T0);
        let mut reset = created.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        reset["spec"]["replicas"] = json!(2);
        assert_eq!(record_update(Some(&created), &reset, "writer", T1), json!([]));

        // A client that drops managedFields does not wipe them.
        let mut dropped = created.clone();
        if let Some(metadata) = dropped["metadata"].as_object_mut() {
            metadata.remove("managedFields");
        }
        dropped["spec"]["replicas"] = json!(3);
        let managed = record_update(Some(&created), &dropped, "scaler", T1);
        let managed = managed.as_array().cloned().unwrap_or_default();
        assert!(owns(&managed, "writer", "Update", ".metadata.labels.app"));
        assert!(owns(&managed, "scaler", "Update", ".spec.replicas"));
    }

    // --- What is never tracked ---

    #[test]
    fn status_and_system_metadata_are_never_tracked() {
        let mut config = deployment(1);
        config["status"] = json!({"replicas": 7});
        config["metadata"]["uid"] = json!("1234");
        let mut live = deployment(1);
        live["status"] = json!({"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]});

        let out = applied(Some(&live), &config, "kubectl", false, T0);
        assert_eq!(out["status"], live["status"], "apply to the main resource leaves status alone");
        let fields = fields_of(&entries(&out), "kubectl", "Apply").unwrap_or_default();
        assert!(fields.get("f:status").is_none(), "{fields}");
        for system_field in ["f:name", "f:namespace", "f:uid"] {
            assert!(fields["f:metadata"].get(system_field).is_none(), "{system_field} tracked: {fields}");
        }

        let mut updated = out.clone();
        updated["status"]["replicas"] = json!(3);
        updated["metadata"]["resourceVersion"] = json!("42");
        let managed = record_update(Some(&out), &updated, "kubelet", T1);
        assert!(fields_of(managed.as_array().map_or(&[][..], Vec::as_slice), "kubelet", "Update").is_none());
    }

    #[test]
    fn first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
        let live = deployment(2);
        let conflicts = conflicts_of(apply(Some(&live), &deployment(4), "kubectl", false, T0));
        assert_eq!(conflicts[0].manager, BEFORE_FIRST_APPLY_MANAGER);
        assert_eq!(conflicts[0].field, ".spec.replicas");
    }

    // --- Invalid input ---

    #[test]
    fn invalid_configurations_are_refused() {
        let mut config = deployment(1);
        config["metadata"]["managedFields"] = json!([]);
        assert!(matches!(apply(None, &config, "m", false, T0), Err(ApplyError::ManagedFieldsSet)));

        let mut config = deployment(1);
        config["spec"]["template"]["spec"]["containers"] = json!([{"image": "nginx"}]);
        let Err(err) = apply(None, &config, "m", false, T0) else { panic!("container without a name applied") };
        assert_eq!(
            err.to_string(),
            "failed to create typed patch object (apps/v1, Kind=Deployment): .spec.template.spec.containers: \
             element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
        );
        assert_eq!(err.status_code(), 422);

        let mut config = deployment(1);
        config["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
        let Err(err) = apply(None, &config, "m", false, T0) else { panic!("duplicate containers applied") };
        assert!(
            err.to_string().ends_with(".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"),
            "{err}"
        );

        let Err(err) =
            apply(Some(&deployment(1)), &json!({"apiVersion": "apps/v2", "kind": "Deployment"}), "m", false, T0)
        else {
            panic!("version mismatch applied")
        };
        assert_eq!(
            err.to_string(),
            "Incorrect version specified in apply patch. Specified patch version: apps/v2, expected: apps/v1"
        );
        assert!(matches!(
            apply(None, &json!({"kind": "Pod"}), "m", false, T0),
            Err(ApplyError::MissingTypeMeta { field: "apiVersion" })
        ));
    }

    #[test]
    fn unknown_kinds_merge_objects_and_replace_lists() {
        let config = |items: Value| {
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                "spec": {"items": items, "size": 1}
            })
        };
        let first = applied(None, &config(json!([1, 2])), "a", false, T0);
        assert_eq!(fields_of(&entries(&first), "a", "Apply"), Some(json!({"f:spec": {"f:items": {}, "f:size": {}}})));
        let second = applied(Some(&first), &config(json!([3])), "a", false, T1);
        assert_eq!(second["spec"]["items"], json!([3]));
    }

    #[test]
    fn service_ports_key_on_port_and_defaulted_protocol() {
        let config = json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]}
        });
        let out = applied(None, &config, "m", false, T0);
        let managed = entries(&out);
        assert!(owns(&managed, "m", "Apply", ".spec.ports[port=80,protocol=\"TCP\"].targetPort"));
        assert!(owns(&managed, "m", "Apply", ".spec.ports[port=53,protocol=\"UDP\"]"));
    }
}
