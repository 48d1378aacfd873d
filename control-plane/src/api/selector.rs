//! Label and field selectors, parsed and matched the way kube-apiserver does it.
//!
//! Two selector languages reach the API server:
//!
//! - **Label selectors** (`?labelSelector=app=web,tier in (fe,be),!canary`) and the structured
//!   `metav1.LabelSelector` (`matchLabels` + `matchExpressions`) found in Deployment, ReplicaSet,
//!   Job and friends. Both become a [`LabelSelector`]: a conjunction of [`Requirement`]s sorted by
//!   key. The grammar, the validation of keys and values, and every error message follow
//!   `k8s.io/apimachinery/pkg/labels/selector.go`, because kubectl users see those messages
//!   verbatim and scripts grep for them.
//! - **Field selectors** (`?fieldSelector=spec.nodeName=n1,status.phase!=Failed`). Only `=`, `==`
//!   and `!=` exist, values may escape `\`, `,` and `=` with a backslash, and each kind supports a
//!   fixed list of field labels; see [`FieldSelector::validate_for_kind`].
//!
//! Matching never fails for label selectors. Field selectors fail for an unsupported field label,
//! and callers should validate before listing so that an empty list still reports the error, as
//! Kubernetes does.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::Value;

/// Why a selector could not be parsed, converted or applied.
///
/// Each message is the text kube-apiserver puts in the `Status` of its 400 response, so the API
/// layer can forward `to_string()` unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The `labelSelector` string is not valid selector syntax, or names an invalid key or value.
    #[error("{message}")]
    ParseLabelSelector { message: String },
    /// A `metav1.LabelSelector` object could not be turned into a selector (bad operator, bad
    /// key or value, wrong number of values, or a malformed JSON shape).
    #[error("{message}")]
    ConvertLabelSelector { message: String },
    /// The `fieldSelector` string is not valid selector syntax.
    #[error("{message}")]
    ParseFieldSelector { message: String },
    /// The field selector names a field label the kind does not support.
    #[error("{message}")]
    UnsupportedFieldLabel { message: String },
}

// === Label selectors ===

/// The comparison a [`Requirement`] applies to one label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`; also true when the label is absent.
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`; also true when the label is absent.
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5` (integer comparison; accepted by the string grammar but not by `matchExpressions`).
    GreaterThan,
    /// `key<5`
    LessThan,
}

impl Operator {
    /// The operator's name as Kubernetes spells it in `selection.Operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One condition on one label key. Construct through [`LabelSelector::parse`] or
/// [`LabelSelector::from_label_selector_json`], which validate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// In the order given; the string parser hands them over sorted and de-duplicated.
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, validating it with Kubernetes' rules (`labels.NewRequirement`).
    ///
    /// Errors are reported against the field paths `key` and `values[i][key]`, and several errors
    /// are aggregated as `[first, second]`, exactly as Go's `field.ErrorList.ToAggregate` prints.
    fn new(key: &str, operator: Operator, values: Vec<String>, values_were_nil: bool) -> Result<Self, String> {
        let mut errors: Vec<String> = Vec::new();
        if let Err(detail) = validate_label_key(key) {
            errors.push(field_invalid("key", &go_quote(key), &detail));
        }
        let bad_values = || go_string_slice(&values, values_were_nil);
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errors.push(field_invalid(
                        "values",
                        &bad_values(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errors.push(field_invalid(
                        "values",
                        &bad_values(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errors.push(field_invalid(
                        "values",
                        &bad_values(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(field_invalid(
                        "values",
                        &bad_values(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errors.push(field_invalid(
                            &format!("values[{i}]"),
                            &go_quote(value),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, value) in values.iter().enumerate() {
            if let Err(detail) = validate_label_value(value) {
                errors.push(field_invalid(&format!("values[{i}][{key}]"), &go_quote(value), &detail));
            }
        }
        if errors.is_empty() {
            Ok(Requirement { key: key.to_string(), operator, values })
        } else {
            Err(aggregate(errors))
        }
    }

    /// The label key this requirement tests.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The comparison applied.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values compared against, in the order given.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this requirement (`labels.Requirement.Matches`).
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => labels.get(&self.key).is_some_and(has_value),
            Operator::NotIn | Operator::NotEquals => labels.get(&self.key).is_none_or(|v| !has_value(v)),
            Operator::Exists => labels.get(&self.key).is_some(),
            Operator::DoesNotExist => labels.get(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                // A label value or bound that is not an integer never matches, as in Kubernetes.
                let Some(actual) = labels.get(&self.key).and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [bound] = self.values.as_slice() else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan { actual > bound } else { actual < bound }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// Kubernetes' canonical form: `!k`, `k`, `k=v`, `k in (a,b)` with multiple values sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set_based = matches!(self.operator, Operator::In | Operator::NotIn);
        if set_based {
            f.write_str("(")?;
        }
        if let [only] = self.values.as_slice() {
            f.write_str(only)?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            f.write_str(&sorted.join(","))?;
        }
        if set_based {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Read access to a set of labels, so one selector can test `metadata.labels` straight from JSON
/// as well as typed maps.
pub trait Labels {
    /// The value of `key`, if the label is present.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Labels for serde_json::Map<String, Value> {
    fn get(&self, key: &str) -> Option<&str> {
        // Label values are always strings once validated; anything else cannot equal a value.
        serde_json::Map::get(self, key).and_then(Value::as_str)
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// A conjunction of label requirements, sorted by key as Kubernetes keeps them.
///
/// Besides the parsed forms there are two special selectors: [`LabelSelector::everything`] (the
/// empty selector, matching all objects) and [`LabelSelector::nothing`] (what a *missing*
/// `metav1.LabelSelector` converts to, matching no object).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Set only for [`LabelSelector::nothing`]; a nil selector in a spec must select nothing
    /// rather than everything, or a controller would adopt every pod in the namespace.
    matches_nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every set of labels (an empty `labelSelector`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no set of labels (`labels.Nothing()`).
    pub fn nothing() -> Self {
        LabelSelector { requirements: Vec::new(), matches_nothing: true }
    }

    /// Parses a `labelSelector` query string (`labels.Parse`).
    ///
    /// Grammar: comma-separated requirements, each `[!]key`, `key (=|==|!=) value`,
    /// `key (in|notin) (v1,v2)` or `key (>|<) integer`; whitespace separates tokens.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser::new(selector);
        let mut requirements = parser.parse().map_err(|message| SelectorError::ParseLabelSelector { message })?;
        // Stable sort so equal keys keep their written order, which makes `to_query_string`
        // deterministic.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements, matches_nothing: false })
    }

    /// Converts a `metav1.LabelSelector` JSON object (`metav1.LabelSelectorAsSelector`).
    ///
    /// `null` yields [`LabelSelector::nothing`]; `{}` yields [`LabelSelector::everything`].
    pub fn from_label_selector_json(selector: &Value) -> Result<Self, SelectorError> {
        let invalid = |message: String| SelectorError::ConvertLabelSelector { message };
        let object = match selector {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(object) => object,
            other => {
                return Err(invalid(format!("label selector must be an object, got {}", json_type_name(other))));
            }
        };
        let match_labels = match object.get("matchLabels") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(invalid(format!("matchLabels must be an object, got {}", json_type_name(other))));
            }
        };
        let match_expressions = match object.get("matchExpressions") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => Some(list),
            Some(other) => {
                return Err(invalid(format!("matchExpressions must be an array, got {}", json_type_name(other))));
            }
        };
        let label_count = match_labels.map_or(0, |m| m.len());
        let expression_count = match_expressions.map_or(0, |e| e.len());
        if label_count + expression_count == 0 {
            return Ok(LabelSelector::everything());
        }

        let mut requirements = Vec::with_capacity(label_count + expression_count);
        for (key, value) in match_labels.into_iter().flatten() {
            let Some(value) = value.as_str() else {
                return Err(invalid(format!("matchLabels[{key}] must be a string, got {}", json_type_name(value))));
            };
            requirements
                .push(Requirement::new(key, Operator::Equals, vec![value.to_string()], false).map_err(invalid)?);
        }
        for (index, expression) in match_expressions.into_iter().flatten().enumerate() {
            let Some(expression) = expression.as_object() else {
                return Err(invalid(format!("matchExpressions[{index}] must be an object")));
            };
            let key = expression.get("key").and_then(Value::as_str).unwrap_or_default();
            let operator_name = expression.get("operator").and_then(Value::as_str).unwrap_or_default();
            let operator = match operator_name {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(invalid(format!("{} is not a valid label selector operator", go_quote(other)))),
            };
            // Go copies the values with `append([]string(nil), ...)`, so an absent or empty list
            // is reported as `[]string(nil)`.
            let values = match expression.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(values)) => {
                    let mut strings = Vec::with_capacity(values.len());
                    for value in values {
                        let Some(value) = value.as_str() else {
                            return Err(invalid(format!("matchExpressions[{index}].values must be strings")));
                        };
                        strings.push(value.to_string());
                    }
                    strings
                }
                Some(_) => return Err(invalid(format!("matchExpressions[{index}].values must be an array"))),
            };
            let values_were_nil = values.is_empty();
            requirements.push(Requirement::new(key, operator, values, values_were_nil).map_err(invalid)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements, matches_nothing: false })
    }

    /// A selector requiring every `key=value` of the map (`labels.SelectorFromSet`), as used for
    /// a Service's `spec.selector`. Like Kubernetes it does not validate: the map was validated
    /// when the object was stored.
    pub fn from_set<'a, I>(labels: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut requirements: Vec<Requirement> = labels
            .into_iter()
            .map(|(k, v)| Requirement { key: k.to_string(), operator: Operator::Equals, values: vec![v.to_string()] })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements, matches_nothing: false }
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.matches_nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Applies the selector to an object's `metadata.labels` (absent labels are an empty set).
    pub fn matches_object(&self, object: &Value) -> bool {
        match object.pointer("/metadata/labels").and_then(Value::as_object) {
            Some(labels) => self.matches(labels),
            None => self.matches(&serde_json::Map::new()),
        }
    }

    /// True for the selector that does not restrict anything.
    pub fn is_empty(&self) -> bool {
        !self.matches_nothing && self.requirements.is_empty()
    }

    /// True for [`LabelSelector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.matches_nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The value a selector pins `key` to with `=`, `==` or a one-element `in`, if any
    /// (`RequiresExactMatch`); lets a caller answer from an index instead of scanning.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == key)?;
        match (requirement.operator, requirement.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [only]) => Some(only),
            _ => None,
        }
    }

    /// The canonical query-string form, as `kubectl` and `kubectl get -o wide` print a selector.
    /// Both [`LabelSelector::everything`] and [`LabelSelector::nothing`] print as `""`.
    pub fn to_query_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

// --- lexer and parser (a port of the state machine in labels/selector.go) ---

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword_token(literal: &str) -> Option<Token> {
    Some(match literal {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// Returns the next byte, or 0 at the end. Like the Go lexer, a NUL byte in the input also
    /// reads as the end; `pos` only advances over real bytes so `unread` stays in bounds.
    fn read(&mut self) -> u8 {
        match self.input.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(ch) { self.scan_special_symbol() } else { self.scan_identifier_or_keyword() }
    }

    fn scan_identifier_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut end = start;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            end = self.pos;
        }
        // Every delimiter is ASCII, so `start..end` always falls on UTF-8 boundaries.
        let literal = self.input.get(start..end).unwrap_or_default().to_string();
        match keyword_token(&literal) {
            Some(token) => (token, literal),
            None => (Token::Identifier, literal),
        }
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special_symbol(ch) {
                self.unread();
                break;
            }
            let buffer = self.input.get(start..self.pos).unwrap_or_default();
            if let Some(token) = keyword_token(buffer) {
                last = Some((token, self.pos));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some((token, end)) => (token, self.input.get(start..end).unwrap_or_default().to_string()),
            None => {
                let buffer = self.input.get(start..self.pos).unwrap_or_default();
                (Token::Error, format!("error expected: keyword found '{buffer}'"))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    /// `in` and `notin` are ordinary identifiers where a key or value is expected.
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

/// Result of reading a key: the unary operator if the requirement ends there.
type KeyAndOperator = (String, Option<Operator>);

impl Parser {
    fn new(selector: &str) -> Self {
        let mut lexer = Lexer { input: selector, pos: 0 };
        let mut items = Vec::new();
        loop {
            let (token, literal) = lexer.lex();
            items.push((token, literal));
            if token == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, index: usize, context: Context) -> (Token, String) {
        // The last item is always EndOfString, so reading past it keeps answering end-of-string
        // instead of running off the slice.
        let (token, literal) =
            self.items.get(index).or_else(|| self.items.last()).cloned().unwrap_or((Token::EndOfString, String::new()));
        match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        self.item(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.item(self.position, context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement =
                        self.parse_requirement().map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, next_literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!("found '{next_literal}', expected: identifier after ','"));
                            }
                        }
                        _ => return Err(format!("found '{literal}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => return Err(format!("found '{literal}', expected: !, identifier, or 'end of string'")),
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, unary) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = unary {
            return Requirement::new(&key, operator, Vec::new(), false);
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, operator, values, false)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<KeyAndOperator, String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        if let Err(detail) = validate_label_key(&literal) {
            // The parser has no field path, and Go prints a nil path as "<nil>".
            return Err(field_invalid("<nil>", &go_quote(&literal), &detail));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{literal}', expected: in, notin, =, ==, !=, gt, lt")),
        })
    }

    /// `( v1, v2 )` — returns the values sorted and de-duplicated, like Go's `sets.String.List`.
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    // Go reports the token seen *before* the list here; keep that quirk.
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{literal}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    set.insert(literal);
                    let (next, next_literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => return Err(format!("found '{next_literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    // An empty slot — `(,a)`, `(a,,b)` or `(a,)` — stands for the empty value.
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set.into_iter().collect());
                    }
                    if next == Token::Comma {
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(vec![literal])
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

// --- validation of keys and values (k8s.io/apimachinery/pkg/util/validation) ---

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// `RegexError` from util/validation: the message, examples, and the regex shown to the user.
fn regex_error(message: &str, regex: &str, examples: &[&str]) -> String {
    let mut out = format!("{message} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{example}', "));
    }
    out.push_str(&format!("regex used for validation is '{regex}')"));
    out
}

fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn is_dns1123_subdomain(s: &str) -> bool {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        let lower_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                lower_alnum(first) && lower_alnum(last) && bytes.iter().all(|b| lower_alnum(b) || *b == b'-')
            }
            _ => false,
        }
    };
    s.split('.').all(label_ok)
}

/// `IsQualifiedName`: errors joined with "; ", as `validateLabelKey` reports them.
fn validate_label_key(key: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > DNS1123_SUBDOMAIN_MAX {
                    errors.push(format!("prefix part {}", max_len_error(DNS1123_SUBDOMAIN_MAX)));
                }
                if !is_dns1123_subdomain(prefix) {
                    errors.push(format!(
                        "prefix part {}",
                        regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, &["example.com"])
                    ));
                }
            }
            *name
        }
        _ => {
            return Err(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errors.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// `IsValidLabelValue`.
fn validate_label_value(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errors.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// `field.Invalid(path, value, detail).Error()`; `value` is already formatted the Go way.
fn field_invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {value}: {detail}")
}

/// `utilerrors.NewAggregate(...).Error()` after `ToAggregate`'s de-duplication.
fn aggregate(errors: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::with_capacity(errors.len());
    for error in errors {
        if !unique.contains(&error) {
            unique.push(error);
        }
    }
    match unique.as_slice() {
        [only] => only.clone(),
        _ => format!("[{}]", unique.join(", ")),
    }
}

/// Go's `%q` for a string (`strconv.Quote`).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` for a `[]string`.
fn go_string_slice(values: &[String], nil: bool) -> String {
    if nil && values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// === Field selectors ===

/// One `field=value` or `field!=value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    field: String,
    value: String,
    /// True for `!=`.
    negated: bool,
}

impl FieldRequirement {
    /// The field label, e.g. `spec.nodeName`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The unescaped value compared against.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// True for `!=`, false for `=` and `==`.
    pub fn is_negated(&self) -> bool {
        self.negated
    }
}

/// A conjunction of field terms (`fields.ParseSelector`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// Sorted by the raw term text, as Kubernetes sorts them before building the selector.
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The empty selector, matching every object.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses a `fieldSelector` query string.
    ///
    /// Terms are separated by unescaped commas; the first `!=`, `==` or `=` in a term splits it
    /// (field labels cannot be escaped); values may contain `\\`, `\,` and `\=`, and no other
    /// escape and no unescaped `,` or `=`.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, raw_value)) = split_term(part) else {
                return Err(SelectorError::ParseFieldSelector {
                    message: format!("invalid selector: '{selector}'; can't understand '{part}'"),
                });
            };
            let value = unescape_field_value(raw_value)?;
            terms.push(FieldRequirement { field: field.to_string(), value, negated: operator == "!=" });
        }
        Ok(FieldSelector { terms })
    }

    /// The terms in canonical (sorted) order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value a `field=value` term pins `field` to, if any; lets the API server answer
    /// `spec.nodeName=n1` from an index.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms.iter().find(|t| !t.negated && t.field == field).map(|t| t.value.as_str())
    }

    /// Checks every field label against the kind's supported list, with the kind's own error
    /// message. Call this before listing: Kubernetes rejects an unsupported label even when no
    /// object would be tested.
    pub fn validate_for_kind(&self, kind: &str) -> Result<(), SelectorError> {
        for term in &self.terms {
            convert_field_label(kind, &term.field)?;
        }
        Ok(())
    }

    /// Whether `object` (of `kind`, e.g. `"Pod"`) satisfies every term. A field the object does
    /// not set compares as the empty string, so `spec.nodeName=` selects unscheduled pods.
    pub fn matches(&self, object: &Value, kind: &str) -> Result<bool, SelectorError> {
        for term in &self.terms {
            let field = convert_field_label(kind, &term.field)?;
            let actual = selectable_field(object, kind, field);
            if (actual == term.value) == term.negated {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The canonical query-string form, values re-escaped.
    pub fn to_query_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if term.negated { "!=" } else { "=" };
            write!(f, "{}{op}{}", term.field, escape_field_value(&term.value))?;
        }
        Ok(())
    }
}

/// Escapes `\`, `,` and `=` so an arbitrary string can be used as a field selector value
/// (`fields.EscapeValue`), e.g. by the node agent building `spec.nodeName=<node>`.
pub fn escape_field_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits on commas that are not escaped; the backslashes stay in the terms. Slicing is at
/// `char_indices` positions of ASCII commas, so it always falls on character boundaries.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Finds the first operator in `term`; at one position `!=` wins over `==`, which wins over `=`.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

fn unescape_field_value(raw: &str) -> Result<String, SelectorError> {
    let parse_error = |message: String| SelectorError::ParseFieldSelector { message };
    let mut out = String::with_capacity(raw.len());
    let mut in_slash = false;
    for c in raw.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(parse_error(format!("invalid field selector: invalid escape sequence: \\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Go formats the rune with %v, which prints its code point number.
            ',' | '=' => {
                return Err(parse_error(format!("invalid field selector: unescaped character in value: {}", c as u32)));
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(parse_error("invalid field selector: invalid escape sequence: \\".to_string()));
    }
    Ok(out)
}

/// Maps a field label to the one that is compared, or rejects it with the message the kind's
/// conversion function uses (`AddFieldLabelConversionFunc` in pkg/apis/*/v1/conversion.go).
fn convert_field_label<'a>(kind: &str, label: &'a str) -> Result<&'a str, SelectorError> {
    let core_error = || SelectorError::UnsupportedFieldLabel { message: format!("field label not supported: {label}") };
    match kind {
        "Pod" => match label {
            "metadata.name"
            | "metadata.namespace"
            | "spec.nodeName"
            | "spec.restartPolicy"
            | "spec.schedulerName"
            | "spec.serviceAccountName"
            | "spec.hostNetwork"
            | "status.phase"
            | "status.podIP"
            | "status.nominatedNodeName" => Ok(label),
            // Kept for old v1 clients, exactly as Kubernetes does.
            "spec.host" => Ok("spec.nodeName"),
            _ => Err(core_error()),
        },
        "Node" => match label {
            "metadata.name" | "spec.unschedulable" => Ok(label),
            _ => Err(core_error()),
        },
        "Event" => match label {
            "involvedObject.kind"
            | "involvedObject.namespace"
            | "involvedObject.name"
            | "involvedObject.uid"
            | "involvedObject.apiVersion"
            | "involvedObject.resourceVersion"
            | "involvedObject.fieldPath"
            | "reason"
            | "reportingComponent"
            | "source"
            | "type"
            | "metadata.namespace"
            | "metadata.name" => Ok(label),
            _ => Err(core_error()),
        },
        "Namespace" => match label {
            "status.phase" | "metadata.name" => Ok(label),
            _ => Err(core_error()),
        },
        "Secret" => match label {
            "type" | "metadata.namespace" | "metadata.name" => Ok(label),
            _ => Err(core_error()),
        },
        "Service" => match label {
            "metadata.namespace" | "metadata.name" | "spec.clusterIP" | "spec.type" => Ok(label),
            _ => Err(core_error()),
        },
        "ReplicationController" | "ReplicaSet" => match label {
            "metadata.name" | "metadata.namespace" | "status.replicas" => Ok(label),
            _ => Err(core_error()),
        },
        "Job" => match label {
            "metadata.name" | "metadata.namespace" | "status.successful" => Ok(label),
            _ => Err(SelectorError::UnsupportedFieldLabel {
                message: format!("field label {} not supported for batchv1.Job", go_quote(label)),
            }),
        },
        // `runtime.DefaultMetaV1FieldSelectorConversion`, used by every other kind.
        _ => match label {
            "metadata.name" | "metadata.namespace" => Ok(label),
            _ => Err(SelectorError::UnsupportedFieldLabel {
                message: format!(
                    "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                    go_quote(label)
                ),
            }),
        },
    }
}

/// The value of an already-converted field label, as the kind's `ToSelectableFields` computes
/// it from the versioned object. Absent fields read as "".
fn selectable_field(object: &Value, kind: &str, field: &str) -> String {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string();
    let integer = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0).to_string();
    let boolean = |pointer: &str| object.pointer(pointer).and_then(Value::as_bool).unwrap_or(false).to_string();
    match (kind, field) {
        (_, "metadata.name") => text("/metadata/name"),
        (_, "metadata.namespace") => text("/metadata/namespace"),
        ("Pod", "spec.nodeName") => text("/spec/nodeName"),
        ("Pod", "spec.restartPolicy") => text("/spec/restartPolicy"),
        ("Pod", "spec.schedulerName") => text("/spec/schedulerName"),
        ("Pod", "spec.serviceAccountName") => text("/spec/serviceAccountName"),
        ("Pod", "spec.hostNetwork") => boolean("/spec/hostNetwork"),
        ("Pod", "status.phase") => text("/status/phase"),
        // The internal pod keeps only `podIPs`; a v1 object may carry just the legacy `podIP`.
        ("Pod", "status.podIP") => match object.pointer("/status/podIPs/0/ip").and_then(Value::as_str) {
            Some(ip) => ip.to_string(),
            None => text("/status/podIP"),
        },
        ("Pod", "status.nominatedNodeName") => text("/status/nominatedNodeName"),
        ("Node", "spec.unschedulable") => boolean("/spec/unschedulable"),
        ("Namespace", "status.phase") => text("/status/phase"),
        ("Secret", "type") => text("/type"),
        ("Service", "spec.clusterIP") => text("/spec/clusterIP"),
        ("Service", "spec.type") => text("/spec/type"),
        ("ReplicationController" | "ReplicaSet", "status.replicas") => integer("/status/replicas"),
        ("Job", "status.successful") => integer("/status/succeeded"),
        ("Event", field) => event_field(object, field),
        _ => String::new(),
    }
}

/// Event fields, read from either core/v1 or events.k8s.io/v1 field names.
fn event_field(object: &Value, field: &str) -> String {
    let first = |pointers: &[&str]| {
        pointers
            .iter()
            .find_map(|p| object.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()))
            .unwrap_or_default()
            .to_string()
    };
    match field.strip_prefix("involvedObject.") {
        Some(sub) => first(&[&format!("/involvedObject/{sub}"), &format!("/regarding/{sub}")]),
        None => match field {
            "reason" => first(&["/reason"]),
            "type" => first(&["/type"]),
            "reportingComponent" => first(&["/reportingComponent", "/reportingController"]),
            // Events written through the new API carry no source.component; Kubernetes falls
            // back to the reporting controller so `source=` keeps working for them.
            "source" => first(&[
                "/source/component",
                "/deprecatedSource/component",
                "/reportingComponent",
                "/reportingController",
            ]),
            _ => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn parse_err(selector: &str) -> String {
        match LabelSelector::parse(selector) {
            Ok(s) => panic!("{selector:?} parsed as {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    const NAME_PART_REGEX_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    // --- label selector parsing ---

    #[test]
    fn parses_every_valid_form_from_kubernetes_tests() {
        let valid = [
            "",
            "x=a,y=b,z=c",
            "x!=a,y=b",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
            "x in (a,b)",
            "x notin (a)",
            "x in (,a)",
            "x in (a,,b)",
            "x in ()",
            "x in (a),y",
            "  x  ==  a  ",
            "notin=in",
            "in in (notin)",
            "x=a,y!=b,z in (h,i,j),k notin (a),!w,m",
            "example.com/app=web",
        ];
        for selector in valid {
            assert!(LabelSelector::parse(selector).is_ok(), "{selector:?} should parse");
        }
    }

    #[test]
    fn rejects_every_invalid_form_from_kubernetes_tests() {
        let invalid = [
            "x=a||y=b",
            "x==a==b",
            "!x=a",
            "x<a",
            "x=a,",
            "x in (a",
            "x in a)",
            "x notin",
            ",x=a",
            "x in",
            "x in (a b)",
            "!",
            "x y",
            "x=a y=b",
        ];
        for selector in invalid {
            assert!(LabelSelector::parse(selector).is_err(), "{selector:?} should not parse");
        }
    }

    #[test]
    fn syntax_errors_use_kubernetes_messages() {
        assert_eq!(parse_err("x=a,"), "found '', expected: identifier after ','");
        assert_eq!(parse_err("x y"), "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt");
        assert_eq!(parse_err("x=a y=b"), "found 'y', expected: ',' or 'end of string'");
        assert_eq!(parse_err(",x"), "found ',', expected: !, identifier, or 'end of string'");
        assert_eq!(parse_err("x in a"), "unable to parse requirement: found 'a' expected: '('");
        assert_eq!(parse_err("x in (a"), "unable to parse requirement: found '', expected: ',' or ')'");
        assert_eq!(parse_err("x in (=)"), "unable to parse requirement: found '=', expected: ',', ')' or identifier");
        assert_eq!(parse_err("!"), "unable to parse requirement: found '', expected: identifier");
        assert_eq!(parse_err("x==a==b"), "found '==', expected: ',' or 'end of string'");
    }

    #[test]
    fn exact_value_may_be_empty_before_end_or_comma() {
        let s = LabelSelector::parse("x ==").expect("x == is x equals empty");
        assert_eq!(s.requirements()[0].values(), &[String::new()]);
        assert!(s.matches(&labels(&[("x", "")])));
        assert!(!s.matches(&labels(&[("x", "a")])));
    }

    #[test]
    fn invalid_key_reports_nil_path_like_the_api_server() {
        assert_eq!(
            parse_err("-x=a"),
            format!("unable to parse requirement: <nil>: Invalid value: \"-x\": {NAME_PART_REGEX_MSG}")
        );
        assert_eq!(
            parse_err("a/b/c"),
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        assert_eq!(
            parse_err("Example.com/x"),
            "unable to parse requirement: <nil>: Invalid value: \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(
            parse_err("/x"),
            "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must be non-empty"
        );
        let long = "a".repeat(64);
        assert_eq!(
            parse_err(&long),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be no more than 63 characters"
            )
        );
    }

    #[test]
    fn invalid_value_reports_values_path() {
        assert_eq!(
            parse_err("app=-bad"),
            "unable to parse requirement: values[0][app]: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        let long = "v".repeat(64);
        assert!(parse_err(&format!("app={long}")).contains("must be no more than 63 characters"));
        assert_eq!(
            parse_err("x>a"),
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn set_values_are_sorted_deduplicated_and_empty_slots_kept() {
        let s = LabelSelector::parse("x in (b,a,b)").expect("valid");
        assert_eq!(s.requirements()[0].values(), &["a".to_string(), "b".to_string()]);
        let s = LabelSelector::parse("x in (,a)").expect("valid");
        assert_eq!(s.requirements()[0].values(), &[String::new(), "a".to_string()]);
        let s = LabelSelector::parse("x in ()").expect("valid");
        assert_eq!(s.requirements()[0].values(), &[String::new()]);
    }

    #[test]
    fn keywords_are_identifiers_where_values_are_expected() {
        let s = LabelSelector::parse("in in (notin)").expect("valid");
        assert_eq!(s.requirements()[0].key(), "in");
        assert_eq!(s.requirements()[0].operator(), Operator::In);
        assert!(s.matches(&labels(&[("in", "notin")])));
    }

    #[test]
    fn requirements_sorted_by_key_and_printed_canonically() {
        let s = LabelSelector::parse("z notin (b,a), !w, y, x==a, v!=q, n>3").expect("valid");
        assert_eq!(s.to_query_string(), "n>3,v!=q,!w,x==a,y,z notin (a,b)");
        // The canonical form parses back to the same selector.
        assert_eq!(LabelSelector::parse(&s.to_query_string()).expect("round trip"), s);
    }

    // --- label selector matching ---

    #[test]
    fn matching_semantics_follow_kubernetes() {
        let l = labels(&[("app", "web"), ("tier", "fe"), ("n", "7")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (db,web)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("missing in (web)", false),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!tier", false),
            ("n>6", true),
            ("n>7", false),
            ("n<8", true),
            ("app>1", false),
            ("missing<1", false),
            ("app=web,tier=fe", true),
            ("app=web,tier=be", false),
        ];
        for (selector, want) in cases {
            let s = LabelSelector::parse(selector).expect("valid selector");
            assert_eq!(s.matches(&l), want, "{selector}");
        }
    }

    #[test]
    fn matches_json_label_maps_and_objects() {
        let s = LabelSelector::parse("app=web").expect("valid");
        let map = json!({"app": "web"});
        assert!(s.matches(map.as_object().expect("object")));
        assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(LabelSelector::parse("!app").expect("valid").matches_object(&json!({"metadata": {}})));
        let hash: HashMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert!(s.matches(&hash));
    }

    #[test]
    fn everything_and_nothing() {
        let l = labels(&[("a", "b")]);
        assert!(LabelSelector::everything().matches(&l));
        assert!(LabelSelector::everything().is_empty());
        assert!(!LabelSelector::nothing().matches(&l));
        assert!(!LabelSelector::nothing().is_empty());
        assert_eq!(LabelSelector::nothing().to_query_string(), "");
    }

    #[test]
    fn requires_exact_match_only_for_single_equality() {
        let s = LabelSelector::parse("a=1,b in (2),c in (3,4),d!=5").expect("valid");
        assert_eq!(s.requires_exact_match("a"), Some("1"));
        assert_eq!(s.requires_exact_match("b"), Some("2"));
        assert_eq!(s.requires_exact_match("c"), None);
        assert_eq!(s.requires_exact_match("d"), None);
        assert_eq!(s.requires_exact_match("zz"), None);
    }

    #[test]
    fn from_set_builds_equality_selector() {
        let s = LabelSelector::from_set([("b", "2"), ("a", "1")]);
        assert_eq!(s.to_query_string(), "a=1,b=2");
        assert!(s.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
        assert!(!s.matches(&labels(&[("a", "1")])));
    }

    // --- metav1.LabelSelector ---

    #[test]
    fn converts_match_labels_and_expressions() {
        let s = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "track", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .expect("valid selector");
        assert_eq!(s.to_query_string(), "app=web,!canary,env notin (prod),tier in (be,fe),track");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("track", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("track", "x"), ("canary", "y")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("track", "x"), ("env", "prod")])));
    }

    #[test]
    fn null_selects_nothing_and_empty_selects_everything() {
        let l = labels(&[("a", "b")]);
        assert!(!LabelSelector::from_label_selector_json(&Value::Null).expect("null ok").matches(&l));
        assert!(LabelSelector::from_label_selector_json(&json!({})).expect("{} ok").matches(&l));
        assert!(
            LabelSelector::from_label_selector_json(&json!({"matchLabels": {}, "matchExpressions": []}))
                .expect("empty ok")
                .is_empty()
        );
    }

    #[test]
    fn conversion_errors_use_kubernetes_messages() {
        let err = |v: Value| LabelSelector::from_label_selector_json(&v).expect_err("should fail").to_string();
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Seriously"}]})),
            "\"Seriously\" is not a valid label selector operator"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
        );
        assert_eq!(
            err(json!({"matchLabels": {"-a": "b"}})),
            format!("key: Invalid value: \"-a\": {NAME_PART_REGEX_MSG}")
        );
        // Two independent problems are aggregated in brackets.
        assert_eq!(
            err(json!({"matchExpressions": [{"key": "-a", "operator": "In"}]})),
            format!(
                "[key: Invalid value: \"-a\": {NAME_PART_REGEX_MSG}, values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty]"
            )
        );
        assert!(err(json!("app=web")).contains("must be an object"));
        assert!(err(json!({"matchLabels": {"a": 1}})).contains("must be a string"));
        assert!(err(json!({"matchExpressions": {}})).contains("must be an array"));
    }

    // --- field selectors ---

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "prod"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default"},
            "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}]}
        })
    }

    #[test]
    fn field_selector_parses_operators_and_sorts_terms() {
        let s = FieldSelector::parse("status.phase!=Failed,spec.nodeName==n1,metadata.name=web-1").expect("valid");
        assert_eq!(s.to_query_string(), "metadata.name=web-1,spec.nodeName=n1,status.phase!=Failed");
        assert_eq!(s.requires_exact_match("spec.nodeName"), Some("n1"));
        assert_eq!(s.requires_exact_match("status.phase"), None);
        assert!(FieldSelector::parse("").expect("empty ok").is_empty());
        assert!(FieldSelector::parse(",,").expect("empty terms skipped").is_empty());
    }

    #[test]
    fn field_selector_escaping() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,metadata.namespace=x").expect("valid");
        assert_eq!(s.requirements()[0].value(), r"a,b=c\d");
        assert_eq!(s.to_query_string(), r"metadata.name=a\,b\=c\\d,metadata.namespace=x");
        assert_eq!(escape_field_value(r"a,b=c\d"), r"a\,b\=c\\d");
        let parsed = FieldSelector::parse(&format!("metadata.name={}", escape_field_value("x=y,z"))).expect("valid");
        assert_eq!(parsed.requirements()[0].value(), "x=y,z");
    }

    #[test]
    fn field_selector_errors_use_kubernetes_messages() {
        let err = |s: &str| FieldSelector::parse(s).expect_err("should fail").to_string();
        assert_eq!(err("abc"), "invalid selector: 'abc'; can't understand 'abc'");
        assert_eq!(err("a=b,c"), "invalid selector: 'a=b,c'; can't understand 'c'");
        assert_eq!(err(r"a=b\x"), r"invalid field selector: invalid escape sequence: \x");
        assert_eq!(err(r"a=b\"), r"invalid field selector: invalid escape sequence: \");
        assert_eq!(err("a=b=c"), "invalid field selector: unescaped character in value: 61");
    }

    #[test]
    fn first_operator_splits_the_term() {
        let s = FieldSelector::parse("a!b=c").expect("valid");
        assert_eq!(s.requirements()[0].field(), "a!b");
        let s = FieldSelector::parse("a!=b").expect("valid");
        assert!(s.requirements()[0].is_negated());
        // `!=` is found first, leaving an unescaped `=` in the value.
        assert_eq!(
            FieldSelector::parse("a!==b").expect_err("unescaped =").to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn pod_field_selectors_match() {
        let p = pod();
        let cases = [
            ("spec.nodeName=n1", true),
            ("spec.nodeName=n2", false),
            ("spec.nodeName!=n2", true),
            ("spec.host=n1", true),
            ("status.phase=Running,metadata.namespace=prod", true),
            ("status.podIP=10.0.0.9", true),
            ("spec.hostNetwork=false", true),
            ("spec.restartPolicy=Always", true),
            ("spec.schedulerName=default-scheduler", true),
            ("spec.serviceAccountName=default", true),
            ("status.nominatedNodeName=", true),
            ("metadata.name=web-1", true),
        ];
        for (selector, want) in cases {
            let s = FieldSelector::parse(selector).expect("valid");
            assert_eq!(s.matches(&p, "Pod").expect("supported"), want, "{selector}");
        }
        let unscheduled = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(FieldSelector::parse("spec.nodeName=").expect("valid").matches(&unscheduled, "Pod").expect("ok"));
    }

    #[test]
    fn unsupported_field_labels_use_each_kinds_message() {
        let check = |kind: &str, selector: &str| {
            FieldSelector::parse(selector).expect("valid").validate_for_kind(kind).map_err(|e| e.to_string())
        };
        assert_eq!(check("Pod", "spec.foo=x"), Err("field label not supported: spec.foo".to_string()));
        assert_eq!(
            check("Node", "metadata.namespace=x"),
            Err("field label not supported: metadata.namespace".to_string())
        );
        assert_eq!(
            check("Namespace", "metadata.namespace=x"),
            Err("field label not supported: metadata.namespace".to_string())
        );
        assert_eq!(
            check("Job", "status.succeeded=1"),
            Err("field label \"status.succeeded\" not supported for batchv1.Job".to_string())
        );
        assert_eq!(
            check("ConfigMap", "data.x=1"),
            Err("\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".to_string())
        );
        assert_eq!(check("ConfigMap", "metadata.name=x,metadata.namespace=y"), Ok(()));
        assert_eq!(check("Secret", "type=Opaque"), Ok(()));
        assert_eq!(check("Service", "spec.type=ClusterIP"), Ok(()));
        // matches() reports the same error rather than silently matching nothing.
        let err = FieldSelector::parse("spec.foo=x").expect("valid").matches(&pod(), "Pod");
        assert!(matches!(err, Err(SelectorError::UnsupportedFieldLabel { .. })));
    }

    #[test]
    fn other_kinds_field_values() {
        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        let sel = |s: &str| FieldSelector::parse(s).expect("valid");
        assert!(sel("spec.unschedulable=true").matches(&node, "Node").expect("ok"));
        assert!(sel("spec.unschedulable=false").matches(&json!({"spec": {}}), "Node").expect("ok"));
        let ns = json!({"metadata": {"name": "prod"}, "status": {"phase": "Terminating"}});
        assert!(sel("status.phase=Terminating").matches(&ns, "Namespace").expect("ok"));
        let secret = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls"});
        assert!(sel("type=kubernetes.io/tls").matches(&secret, "Secret").expect("ok"));
        let rs = json!({"metadata": {"name": "r"}, "status": {"replicas": 3}});
        assert!(sel("status.replicas=3").matches(&rs, "ReplicaSet").expect("ok"));
        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}});
        assert!(sel("status.successful=2").matches(&job, "Job").expect("ok"));
        assert!(sel("status.successful=0").matches(&json!({}), "Job").expect("ok"));
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.10"}});
        assert!(sel("spec.type=NodePort,spec.clusterIP=10.96.0.10").matches(&svc, "Service").expect("ok"));
    }

    #[test]
    fn event_field_values_cover_core_and_events_api() {
        let core = json!({
            "metadata": {"name": "e1", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "d", "uid": "u1",
                               "apiVersion": "v1", "resourceVersion": "5", "fieldPath": "spec.containers{c}"},
            "reason": "Pulled", "type": "Normal", "source": {"component": "kubelet"},
            "reportingComponent": "kubelet"
        });
        let sel = |s: &str| FieldSelector::parse(s).expect("valid");
        for s in [
            "involvedObject.kind=Pod",
            "involvedObject.name=web-1",
            "involvedObject.namespace=d",
            "involvedObject.uid=u1",
            "involvedObject.apiVersion=v1",
            "involvedObject.resourceVersion=5",
            "involvedObject.fieldPath=spec.containers{c}",
            "reason=Pulled",
            "type=Normal",
            "source=kubelet",
            "reportingComponent=kubelet",
        ] {
            assert!(sel(s).matches(&core, "Event").expect("supported"), "{s}");
        }
        let new_api = json!({
            "metadata": {"name": "e2"}, "regarding": {"kind": "Node", "name": "n1"},
            "reportingController": "scheduler", "reason": "Scheduled"
        });
        assert!(sel("involvedObject.kind=Node,source=scheduler").matches(&new_api, "Event").expect("ok"));
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }

    #[test]
    fn lexer_never_panics_on_odd_input() {
        for input in
            ["(", ")", "!!", "!=!", "==", "x in ((", "x in (a,)", "\0", "x\0y", "é=ü", "x=é", "a b c d", ">", "<<"]
        {
            let _ = LabelSelector::parse(input);
            let _ = FieldSelector::parse(input);
        }
        assert!(LabelSelector::parse("x in (a,)").expect("valid").matches(&labels(&[("x", "")])));
    }
}
