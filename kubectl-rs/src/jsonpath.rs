//! kubectl's JSONPath templates (`-o jsonpath=…`, and the cells of `-o custom-columns`).
//!
//! This is not plain JSONPath: a template is text with `{…}` actions in it, and the
//! actions have kubectl's own rules, which this module follows (client-go's
//! `util/jsonpath`), so that a template copied from a kubectl guide prints the same:
//!
//! ```text
//!  text{.metadata.name}          text outside braces is printed as it is
//!  {.items[*].metadata.name}     every match of one action, separated by spaces
//!  {range .items[*]}…{end}       the actions in between, once per match
//!  {"\t"}  {'\n'}                quoted literals (Go escapes)
//!  [0]  [-1]  [1:3]  [::2]  [*]  indexes and slices
//!  [0,2]  ['a','b']              unions
//!  [?(@.status.phase=="Running")] filters: == != < > <= >=, or just [?(@.x)] (exists)
//!  ..image  .*                   recursive descent, wildcard
//!  .metadata.labels.app\.kubernetes\.io/name   a backslash escapes a dot
//! ```
//!
//! Parsing ([`Template::parse`]) turns the text into [`Item`]s (`range … end` nested);
//! executing ([`Template::execute`]) walks them over a JSON value. One action yields a
//! list of values; a list is printed space-separated, objects and arrays as compact JSON
//! (Go's `encoding/json`: sorted keys, `<>&` escaped), everything else as Go's `fmt`
//! prints it. Maps are walked in sorted key order (Go's order is random).

use serde_json::Value;
use std::borrow::Cow;

/// Why a template could not be parsed or executed: the reason in kubectl's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// The template text is malformed.
    #[error("{0}")]
    Parse(String),
    /// The template is well formed but does not fit the data.
    #[error("{0}")]
    Execute(String),
}

fn parse_err(text: impl Into<String>) -> JsonPathError {
    JsonPathError::Parse(text.into())
}

fn exec_err(text: impl Into<String>) -> JsonPathError {
    JsonPathError::Execute(text.into())
}

// === Syntax ===

/// One part of an action: `{.items[0].name}` is `[Field(items), Array, Field(name)]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Field(String),
    /// `[start:end:step]`; see [`Param`].
    Array([Param; 3]),
    Filter {
        left: Vec<Node>,
        right: Vec<Node>,
        op: String,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Wildcard,
    Recursive,
    Union(Vec<Vec<Node>>),
    /// `range`, `end`; any other word is an error when executed, as in kubectl.
    Identifier(String),
}

/// One bound of a slice. `[2]` is `2:3`, with the end *derived* (so `[-1]` becomes
/// `len-1:len` rather than the empty `len-1:0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Param {
    pub value: i64,
    pub known: bool,
    pub derived: bool,
}

/// A template after parsing: text, actions, and `range` blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Text(String),
    Action(Vec<Node>),
    /// `{range EXPR}BODY{end}`; a range never closed runs to the end of the template.
    Range {
        expr: Vec<Node>,
        body: Vec<Item>,
    },
    /// An `{end}` with no `{range}` before it: an error when executed, as in kubectl.
    StrayEnd,
}

/// A parsed template, ready to run over objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    items: Vec<Item>,
    /// Missing fields give no value instead of an error (kubectl's
    /// `--allow-missing-template-keys`, on by default).
    allow_missing: bool,
}

/// The scanner: kubectl's parser, on byte positions of the template text.
struct Parser<'t> {
    input: &'t str,
    pos: usize,
    start: usize,
    /// Width of the last character read, for `backup`.
    width: usize,
}

/// The top level of a template: text and actions (each action a list of nodes).
enum Top {
    Text(String),
    Action(Vec<Node>),
}

impl<'t> Parser<'t> {
    fn new(input: &'t str) -> Self {
        Parser { input, pos: 0, start: 0, width: 0 }
    }

    fn rest(&self) -> &'t str {
        &self.input[self.pos..]
    }

    fn next(&mut self) -> Option<char> {
        match self.rest().chars().next() {
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                Some(c)
            }
            None => {
                self.width = 0;
                None
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn backup(&mut self) {
        self.pos -= self.width;
        self.width = 0;
    }

    fn consume(&mut self) -> &'t str {
        let text = &self.input[self.start..self.pos];
        self.start = self.pos;
        text
    }

    /// Text and `{…}` actions, to the end of the input.
    fn parse_top(&mut self) -> Result<Vec<Top>, JsonPathError> {
        let mut top = Vec::new();
        loop {
            if self.rest().starts_with('{') {
                if self.pos > self.start {
                    top.push(Top::Text(self.consume().to_string()));
                }
                self.pos += 1;
                self.consume();
                top.push(Top::Action(self.parse_action()?));
                continue;
            }
            if self.next().is_none() {
                break;
            }
        }
        if self.pos > self.start {
            top.push(Top::Text(self.consume().to_string()));
        }
        Ok(top)
    }

    /// The inside of one action, up to and including its `}`.
    fn parse_action(&mut self) -> Result<Vec<Node>, JsonPathError> {
        let mut cur = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                self.pos += 1;
                self.consume();
                return Ok(cur);
            }
            if rest.starts_with("[?(") {
                cur.push(self.parse_filter()?);
                continue;
            }
            if rest.starts_with("..") {
                if matches!(cur.last(), Some(Node::Recursive)) {
                    return Err(parse_err("invalid multiple recursive descent"));
                }
                self.pos += 2;
                self.consume();
                cur.push(Node::Recursive);
                if self.peek().is_some_and(is_alphanumeric) {
                    cur.push(self.parse_field()?);
                }
                continue;
            }
            match self.next() {
                None | Some('\r' | '\n') => return Err(parse_err("unclosed action")),
                Some(' ' | '@' | '$') => {
                    self.consume();
                }
                Some('[') => cur.push(self.parse_array()?),
                Some(q @ ('"' | '\'')) => cur.push(self.parse_quote(q)?),
                Some('.') => cur.push(self.parse_field()?),
                Some(c) if c == '+' || c == '-' || c.is_numeric() => {
                    self.backup();
                    cur.push(self.parse_number()?);
                }
                Some(c) if is_alphanumeric(c) => {
                    self.backup();
                    cur.push(self.parse_identifier());
                }
                Some(c) => return Err(parse_err(format!("unrecognized character in action: {}", go_rune(c)))),
            }
        }
    }

    /// A word: `range`, `end`, `true`, `false` (anything else fails when executed).
    fn parse_identifier(&mut self) -> Node {
        while let Some(c) = self.next() {
            if is_terminator(c) {
                self.backup();
                break;
            }
        }
        match self.consume() {
            "true" => Node::Bool(true),
            "false" => Node::Bool(false),
            word => Node::Identifier(word.to_string()),
        }
    }

    /// `.name` (the dot already read), up to the next unescaped terminator.
    fn parse_field(&mut self) -> Result<Node, JsonPathError> {
        self.consume();
        loop {
            match self.next() {
                Some('\\') => {
                    self.next();
                }
                Some(c) if is_terminator(c) => {
                    self.backup();
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        let value = self.consume();
        Ok(if value == "*" { Node::Wildcard } else { Node::Field(value.replace('\\', "")) })
    }

    fn parse_number(&mut self) -> Result<Node, JsonPathError> {
        if matches!(self.peek(), Some('+' | '-')) {
            self.next();
        }
        while let Some(c) = self.next() {
            if c != '.' && !c.is_numeric() {
                self.backup();
                break;
            }
        }
        let text = self.consume();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Node::Int(i));
        }
        // Go's ParseFloat takes "+1.5" too; Rust's parse does as well.
        match text.parse::<f64>() {
            Ok(f) if text.chars().any(|c| c.is_ascii_digit()) => Ok(Node::Float(f)),
            _ => Err(parse_err(format!("cannot parse number {text}"))),
        }
    }

    /// `"…"` or `'…'` (the quote already read), with Go's escapes.
    fn parse_quote(&mut self, quote: char) -> Result<Node, JsonPathError> {
        loop {
            match self.next() {
                None | Some('\n') => return Err(parse_err("unterminated quoted string")),
                Some(c) if c == quote && self.input.as_bytes()[self.pos - 2] != b'\\' => break,
                Some(_) => {}
            }
        }
        let raw = self.consume();
        unquote(raw).map(Node::Text).map_err(|()| parse_err(format!("unquote string {raw} error invalid syntax")))
    }

    /// `[…]` (the `[` already read): an index, a slice, a union or `'key'`.
    fn parse_array(&mut self) -> Result<Node, JsonPathError> {
        loop {
            match self.next() {
                None | Some('\n') => return Err(parse_err("unterminated array")),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let raw = self.consume();
        let mut text = &raw[1..raw.len() - 1];
        if text == "*" {
            text = ":";
        }
        if text.contains(',') {
            let mut members = Vec::new();
            for part in text.split(',') {
                members.push(parse_fragment(&format!("[{}]", part.trim_matches(' ')))?);
            }
            return Ok(Node::Union(members));
        }
        if let Some(key) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')).filter(|k| !k.contains('\'')) {
            // kubectl reads ['key'] as .key (so a dot inside still splits the key).
            let mut nodes = parse_fragment(&format!(".{key}"))?;
            return Ok(if nodes.len() == 1 { nodes.remove(0) } else { chain(nodes) });
        }
        parse_slice(text).map(Node::Array)
    }

    /// `[?(LEFT OP RIGHT)]` or `[?(PATH)]`.
    fn parse_filter(&mut self) -> Result<Node, JsonPathError> {
        self.pos += 3;
        self.consume();
        let (mut begin, mut end, mut pair) = (false, false, '"');
        loop {
            match self.next() {
                None | Some('\n') => return Err(parse_err("unterminated filter")),
                Some(c @ ('"' | '\'')) => {
                    if !begin {
                        begin = true;
                        pair = c;
                        continue;
                    }
                    if self.input.as_bytes()[self.pos - 2] != b'\\' && c == pair {
                        end = true;
                    }
                }
                Some(')') if begin == end => break,
                Some(_) => {}
            }
        }
        if self.next() != Some(']') {
            return Err(parse_err("unclosed array expect ]"));
        }
        let raw = self.consume();
        let text = &raw[..raw.len() - 2];
        match split_comparison(text) {
            None => Ok(Node::Filter { left: parse_fragment(text)?, right: Vec::new(), op: "exists".into() }),
            Some((left, op, right)) => {
                Ok(Node::Filter { left: parse_fragment(left)?, right: parse_fragment(right)?, op: op.to_string() })
            }
        }
    }
}

/// The nodes of `text` read as the inside of one action.
fn parse_fragment(text: &str) -> Result<Vec<Node>, JsonPathError> {
    let full = format!("{{{text}}}");
    let mut p = Parser::new(&full);
    let mut top = p.parse_top()?;
    match top.drain(..).next() {
        Some(Top::Action(nodes)) => Ok(nodes),
        _ => Ok(Vec::new()),
    }
}

/// Several nodes in the place of one: a one-member union evaluates them in order.
fn chain(nodes: Vec<Node>) -> Node {
    Node::Union(vec![nodes])
}

/// kubectl's filter split: `^([^!<>=]+)([!<>=]+)(.+?)$`.
fn split_comparison(text: &str) -> Option<(&str, &str, &str)> {
    let is_op = |c: char| matches!(c, '!' | '<' | '>' | '=');
    let left_end = text.find(['!', '<', '>', '='])?;
    if left_end == 0 {
        return None;
    }
    let rest = &text[left_end..];
    let op_len = rest.find(|c: char| !is_op(c)).unwrap_or(rest.len());
    if op_len == rest.len() {
        return None;
    }
    Some((&text[..left_end], &rest[..op_len], &rest[op_len..]))
}

/// `start:end:step`, kubectl's `^(-?[\d]*)(:-?[\d]*)?(:-?[\d]*)?$`.
fn parse_slice(text: &str) -> Result<[Param; 3], JsonPathError> {
    let invalid = || parse_err(format!("invalid array index {text}"));
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return Err(invalid());
    }
    let well_formed = |p: &str| {
        let digits = p.strip_prefix('-').unwrap_or(p);
        digits.chars().all(|c| c.is_ascii_digit())
    };
    if !parts.iter().all(|p| well_formed(p)) {
        return Err(invalid());
    }
    let mut params = [Param::default(); 3];
    for i in 0..3 {
        // The start is given when not empty; an end or step when its colon is there
        // (an empty one after the colon means "not given").
        let given = if i == 0 { !parts[0].is_empty() } else { parts.len() > i };
        if given {
            let p = parts[i];
            if !p.is_empty() {
                params[i].known = true;
                params[i].value = p.parse().map_err(|_| parse_err(format!("array index {p} is not a number")))?;
            }
        } else if i == 1 {
            // A missing end is start+1: [2] is 2:3.
            params[1] = Param { value: params[0].value.saturating_add(1), known: true, derived: true };
        }
    }
    Ok(params)
}

fn is_terminator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// A character as Go's `%#U` prints it: `U+0025 '%'`.
fn go_rune(c: char) -> String {
    format!("U+{:04X} '{c}'", c as u32)
}

/// Go's `strconv.Unquote`, also for single-quoted strings of any length.
fn unquote(raw: &str) -> Result<String, ()> {
    let mut chars = raw.chars();
    let quote = chars.next().ok_or(())?;
    if raw.len() < 2 || !raw.ends_with(quote) || !matches!(quote, '"' | '\'') {
        return Err(());
    }
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains('\\') && !inner.contains(quote) {
        return Ok(inner.to_string());
    }
    let mut out = String::new();
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c == quote {
            return Err(());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next().ok_or(())?;
        let hex = |it: &mut std::iter::Peekable<std::str::Chars>, n: usize| -> Result<u32, ()> {
            let digits: String = (0..n).map(|_| it.next().ok_or(())).collect::<Result<_, _>>()?;
            u32::from_str_radix(&digits, 16).map_err(|_| ())
        };
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '\'' | '"' if e == quote => out.push(e),
            'x' => out.push(char::from_u32(hex(&mut it, 2)?).ok_or(())?),
            'u' => out.push(char::from_u32(hex(&mut it, 4)?).ok_or(())?),
            'U' => out.push(char::from_u32(hex(&mut it, 8)?).ok_or(())?),
            '0'..='7' => {
                let mut v = e.to_digit(8).ok_or(())?;
                for _ in 0..2 {
                    v = v * 8 + it.next().and_then(|d| d.to_digit(8)).ok_or(())?;
                }
                out.push(char::from_u32(v).filter(|_| v <= 255).ok_or(())?);
            }
            _ => return Err(()),
        }
    }
    Ok(out)
}

/// Groups top-level actions into `range … end` blocks.
fn structure(top: Vec<Top>) -> Vec<Item> {
    fn is_word(n: &Node, word: &str) -> bool {
        matches!(n, Node::Identifier(w) if w == word)
    }
    fn block(it: &mut std::vec::IntoIter<Top>, in_range: bool) -> Vec<Item> {
        let mut items = Vec::new();
        while let Some(t) = it.next() {
            match t {
                Top::Text(s) => items.push(Item::Text(s)),
                Top::Action(nodes) if nodes.iter().any(|n| is_word(n, "end")) => {
                    if in_range {
                        return items;
                    }
                    items.push(Item::StrayEnd);
                }
                Top::Action(nodes) if nodes.iter().any(|n| is_word(n, "range")) => {
                    let expr = nodes.into_iter().filter(|n| !is_word(n, "range")).collect();
                    let body = block(it, true);
                    items.push(Item::Range { expr, body });
                }
                Top::Action(nodes) => items.push(Item::Action(nodes)),
            }
        }
        items
    }
    block(&mut top.into_iter(), false)
}

// === Execution ===

/// A value found by a template: part of the data, or made by the template
/// (a literal, a byte of a string).
pub type Found<'a> = Cow<'a, Value>;

impl Template {
    /// Parses a template; missing keys are allowed (kubectl's default for printing).
    pub fn parse(text: &str) -> Result<Template, JsonPathError> {
        let top = Parser::new(text).parse_top()?;
        Ok(Template { items: structure(top), allow_missing: true })
    }

    /// Whether a field that is not there yields nothing (true) or fails (false).
    pub fn allow_missing_keys(mut self, allow: bool) -> Self {
        self.allow_missing = allow;
        self
    }

    /// The values each top-level part yields, in order (a `range` yields its body's
    /// parts once per match): kubectl's `FindResults`.
    pub fn find_results<'a>(&self, data: &'a Value) -> Result<Vec<Vec<Found<'a>>>, JsonPathError> {
        let mut out = Vec::new();
        self.run_block(&self.items, data, &mut out)?;
        Ok(out)
    }

    fn run_block<'a>(
        &self,
        items: &[Item],
        data: &'a Value,
        out: &mut Vec<Vec<Found<'a>>>,
    ) -> Result<(), JsonPathError> {
        for item in items {
            match item {
                Item::Text(t) => out.push(vec![Cow::Owned(Value::String(t.clone()))]),
                Item::Action(nodes) => out.push(self.eval_list(vec![Cow::Borrowed(data)], nodes)?),
                Item::StrayEnd => return Err(exec_err("not in range, nothing to end")),
                Item::Range { expr, body } => {
                    for value in self.eval_list(vec![Cow::Borrowed(data)], expr)? {
                        match value {
                            Cow::Borrowed(v) => self.run_block(body, v, out)?,
                            // A made value (a literal) has no lifetime to lend; run on a copy.
                            Cow::Owned(v) => {
                                let mut inner = Vec::new();
                                self.run_block(body, &v, &mut inner)?;
                                out.extend(
                                    inner
                                        .into_iter()
                                        .map(|r| r.into_iter().map(|f| Cow::Owned(f.into_owned())).collect()),
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs the template and returns what kubectl would print.
    pub fn execute(&self, data: &Value) -> Result<String, JsonPathError> {
        let mut text = String::new();
        for results in self.find_results(data)? {
            for (i, v) in results.iter().enumerate() {
                if i > 0 {
                    text.push(' ');
                }
                text.push_str(&to_text(v));
            }
        }
        Ok(text)
    }

    /// `-o jsonpath-as-json`: each part's values as an indented JSON array.
    pub fn execute_as_json(&self, data: &Value) -> Result<String, JsonPathError> {
        let mut text = String::new();
        for results in self.find_results(data)? {
            let array = Value::Array(results.into_iter().map(Cow::into_owned).collect());
            text.push_str(&go_json(&array, Some("    ")));
            text.push('\n');
        }
        Ok(text)
    }

    fn eval_list<'a>(&self, mut cur: Vec<Found<'a>>, nodes: &[Node]) -> Result<Vec<Found<'a>>, JsonPathError> {
        for node in nodes {
            cur = self.eval(cur, node)?;
        }
        Ok(cur)
    }

    fn eval<'a>(&self, input: Vec<Found<'a>>, node: &Node) -> Result<Vec<Found<'a>>, JsonPathError> {
        let per_input = |v: Value| vec![Cow::Owned(v); input.len()];
        match node {
            Node::Text(t) => Ok(vec![Cow::Owned(Value::String(t.clone()))]),
            Node::Int(i) => Ok(per_input(Value::from(*i))),
            Node::Float(f) => Ok(per_input(serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null))),
            Node::Bool(b) => Ok(per_input(Value::Bool(*b))),
            Node::Field(name) => self.eval_field(input, name),
            Node::Array(params) => eval_array(input, params),
            Node::Filter { left, right, op } => self.eval_filter(input, left, right, op),
            Node::Wildcard => Ok(input.into_iter().flat_map(children).collect()),
            Node::Recursive => Ok(recursive(input)),
            Node::Union(members) => {
                let mut out = Vec::new();
                for m in members {
                    out.extend(self.eval_list(input.clone(), m)?);
                }
                Ok(out)
            }
            Node::Identifier(word) => Err(exec_err(format!("unrecognized identifier {word}"))),
        }
    }

    fn eval_field<'a>(&self, input: Vec<Found<'a>>, name: &str) -> Result<Vec<Found<'a>>, JsonPathError> {
        if input.is_empty() {
            return Ok(input);
        }
        let mut out = Vec::new();
        for v in input {
            match v {
                Cow::Borrowed(Value::Object(map)) => out.extend(map.get(name).map(Cow::Borrowed)),
                Cow::Owned(Value::Object(mut map)) => out.extend(map.remove(name).map(Cow::Owned)),
                _ => {}
            }
        }
        if out.is_empty() && !self.allow_missing {
            return Err(exec_err(format!("{name} is not found")));
        }
        Ok(out)
    }

    fn eval_filter<'a>(
        &self,
        input: Vec<Found<'a>>,
        left: &[Node],
        right: &[Node],
        op: &str,
    ) -> Result<Vec<Found<'a>>, JsonPathError> {
        let mut out = Vec::new();
        for v in input {
            let elements: Vec<Found<'a>> = match v {
                Cow::Borrowed(Value::Array(a)) => a.iter().map(Cow::Borrowed).collect(),
                Cow::Owned(Value::Array(a)) => a.into_iter().map(Cow::Owned).collect(),
                other => {
                    return Err(exec_err(format!("{} is not array or slice and cannot be filtered", go_fmt(&other))));
                }
            };
            for e in elements {
                let lefts = self.eval_list(vec![e.clone()], left);
                if op == "exists" {
                    if lefts.is_ok_and(|l| !l.is_empty()) {
                        out.push(e);
                    }
                    continue;
                }
                let lefts = lefts?;
                match lefts.len() {
                    0 => continue,
                    1 => {}
                    _ => return Err(exec_err("can only compare one element at a time")),
                }
                let rights = self.eval_list(vec![e.clone()], right)?;
                match rights.len() {
                    0 => continue,
                    1 => {}
                    _ => return Err(exec_err("can only compare one element at a time")),
                }
                if compare(&lefts[0], &rights[0], op)? {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }
}

/// Slices every array of the input (`[start:end:step]`).
fn eval_array<'a>(input: Vec<Found<'a>>, params: &[Param; 3]) -> Result<Vec<Found<'a>>, JsonPathError> {
    let mut out = Vec::new();
    for v in input {
        let len = match v.as_ref() {
            Value::Null => continue,
            Value::Array(a) => a.len() as i64,
            other => return Err(exec_err(format!("{} is not array or slice", go_type(other)))),
        };
        let mut p = *params;
        if !p[0].known {
            p[0].value = 0;
        }
        if p[0].value < 0 {
            p[0].value = p[0].value.saturating_add(len);
        }
        if !p[1].known {
            p[1].value = len;
        }
        if p[1].value < 0 || (p[1].value == 0 && p[1].derived) {
            p[1].value = p[1].value.saturating_add(len);
        }
        if p[1].value == p[0].value {
            return Ok(out);
        }
        if p[0].value >= len || p[0].value < 0 {
            return Err(exec_err(format!("array index out of bounds: index {}, length {len}", p[0].value)));
        }
        if p[1].value > len || p[1].value < 0 {
            return Err(exec_err(format!(
                "array index out of bounds: index {}, length {len}",
                p[1].value.saturating_sub(1)
            )));
        }
        if p[0].value > p[1].value {
            return Err(exec_err(format!("starting index {} is greater than ending index {}", p[0].value, p[1].value)));
        }
        let step = if p[2].known {
            if p[2].value <= 0 {
                return Err(exec_err("step must be > 0"));
            }
            p[2].value as usize
        } else {
            1
        };
        let (from, to) = (p[0].value as usize, p[1].value as usize);
        match v {
            Cow::Borrowed(Value::Array(a)) => out.extend(a[from..to].iter().step_by(step).map(Cow::Borrowed)),
            Cow::Owned(Value::Array(a)) => {
                out.extend(a.into_iter().skip(from).take(to - from).step_by(step).map(Cow::Owned))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The members of a value (`.*`): an object's values, an array's elements, a
/// string's bytes (as kubectl has it).
fn children(v: Found<'_>) -> Vec<Found<'_>> {
    match v {
        Cow::Borrowed(Value::Object(m)) => m.values().map(Cow::Borrowed).collect(),
        Cow::Borrowed(Value::Array(a)) => a.iter().map(Cow::Borrowed).collect(),
        Cow::Owned(Value::Object(m)) => m.into_iter().map(|(_, v)| Cow::Owned(v)).collect(),
        Cow::Owned(Value::Array(a)) => a.into_iter().map(Cow::Owned).collect(),
        v => match v.as_ref() {
            Value::String(s) => s.bytes().map(|b| Cow::Owned(Value::from(b))).collect(),
            _ => Vec::new(),
        },
    }
}

/// `..`: every value that has members, each followed by its descendants.
fn recursive(input: Vec<Found<'_>>) -> Vec<Found<'_>> {
    let mut out = Vec::new();
    for v in input {
        let kids = children(v.clone());
        if !kids.is_empty() {
            out.push(v);
            out.extend(recursive(kids));
        }
    }
    out
}

/// A filter's comparison, with Go templates' typing: numbers of one kind, strings,
/// booleans (equality only); anything else is an error.
fn compare(left: &Value, right: &Value, op: &str) -> Result<bool, JsonPathError> {
    use std::cmp::Ordering;
    #[derive(PartialEq)]
    enum Kind {
        Bool,
        Int,
        Uint,
        Float,
        Str,
    }
    let kind = |v: &Value| match v {
        Value::Bool(_) => Ok(Kind::Bool),
        Value::Number(n) if n.is_i64() => Ok(Kind::Int),
        Value::Number(n) if n.is_u64() => Ok(Kind::Uint),
        Value::Number(_) => Ok(Kind::Float),
        Value::String(_) => Ok(Kind::Str),
        _ => Err(exec_err("invalid type for comparison")),
    };
    let (kl, kr) = (kind(left)?, kind(right)?);
    let ordering: Option<Ordering> = match (left, right) {
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => match (&kl, &kr) {
            (Kind::Float, Kind::Float) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
            (Kind::Float, _) | (_, Kind::Float) => None,
            _ => {
                let (a, b) = (a.as_i128(), b.as_i128());
                a.zip(b).map(|(a, b)| a.cmp(&b))
            }
        },
        _ => None,
    };
    let same_kind = kl == kr || matches!((&kl, &kr), (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int));
    let Some(ord) = ordering.filter(|_| same_kind) else {
        return Err(exec_err("incompatible types for comparison"));
    };
    if kl == Kind::Bool && !matches!(op, "==" | "!=") {
        return Err(exec_err("invalid type for comparison"));
    }
    Ok(match op {
        "==" => ord == Ordering::Equal,
        "!=" => ord != Ordering::Equal,
        "<" => ord == Ordering::Less,
        ">" => ord == Ordering::Greater,
        "<=" => ord != Ordering::Greater,
        ">=" => ord != Ordering::Less,
        other => return Err(exec_err(format!("unrecognized filter operator {other}"))),
    })
}

// === Printing values as kubectl does ===

/// One found value as `-o jsonpath` prints it: objects and arrays as compact JSON,
/// `null` as `null`, everything else as Go's `fmt.Print` does.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => go_json(v, None),
        Value::Null => "null".into(),
        other => go_fmt(other),
    }
}

/// Go's `fmt` `%v` of a decoded JSON value: `map[a:1 b:x]`, `[x y]`, `<nil>`.
pub fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n, false),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            format!("map[{}]", m.iter().map(|(k, v)| format!("{k}:{}", go_fmt(v))).collect::<Vec<_>>().join(" "))
        }
    }
}

/// The Go type name of a decoded JSON value (for kubectl's messages).
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A number as Go prints it: integers as they are; floats with `%v` (`1e+06`,
/// `0.5`) or, in JSON, as `encoding/json` writes them (`1000000`, `1e+21`).
fn go_number(n: &serde_json::Number, json: bool) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        return "0".into();
    }
    let abs = f.abs();
    // encoding/json: 'f' for 1e-6 <= |f| < 1e21; fmt's %v: %g with the shortest
    // digits, which uses the exponent form below 1e-4 and from 1e6 on (1e+06).
    let exponent_form = if json {
        !(1e-6..1e21).contains(&abs)
    } else {
        let exp = shortest_exp(f);
        !(-4..6).contains(&exp)
    };
    if exponent_form {
        let s = format!("{f:e}"); // like "1.5e-7"
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        if json {
            return format!("{mantissa}e{sign}{}", exp.abs());
        }
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// The decimal exponent of a float's shortest form.
fn shortest_exp(f: f64) -> i32 {
    let s = format!("{f:e}");
    s.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0)
}

/// JSON as Go's `encoding/json` writes it: keys sorted, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped; compact, or indented with `indent` (`json.MarshalIndent`).
pub fn go_json(v: &Value, indent: Option<&str>) -> String {
    let mut out = String::new();
    write_json(&mut out, v, indent, 0);
    out
}

fn write_json(out: &mut String, v: &Value, indent: Option<&str>, depth: usize) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(ind);
            }
        }
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n, true)),
        Value::String(s) => write_json_string(out, s),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_json(out, e, indent, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_json_string(out, k);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, e, indent, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(template: &str, data: &Value) -> String {
        Template::parse(template).unwrap_or_else(|e| panic!("{template}: {e}")).execute(data).unwrap()
    }

    fn pods() -> Value {
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
            {"metadata": {"name": "web-1", "labels": {"app": "web", "app.kubernetes.io/name": "w"}},
             "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx:1.25"}, {"name": "s", "image": "busybox"}]},
             "status": {"phase": "Running", "restarts": 2}},
            {"metadata": {"name": "web-2", "labels": {"app": "web"}},
             "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]},
             "status": {"phase": "Pending", "restarts": 0}}
        ]})
    }

    #[test]
    fn fields_lists_and_literals() {
        let d = pods();
        assert_eq!(run("{.items[0].metadata.name}", &d), "web-1");
        assert_eq!(run("{.items[*].metadata.name}", &d), "web-1 web-2");
        assert_eq!(run("names: {.items[*].metadata.name}{\"\\n\"}", &d), "names: web-1 web-2\n");
        assert_eq!(run("{.kind}{'\\t'}{.apiVersion}", &d), "List\tv1");
        assert_eq!(run("{$.kind}", &d), "List");
        assert_eq!(run("{.items[0].status.restarts}", &d), "2");
        // Objects and arrays print as compact JSON with sorted keys.
        assert_eq!(run("{.items[1].metadata.labels}", &d), r#"{"app":"web"}"#);
        assert_eq!(run("{.items[1].spec.containers[*].name}", &d), "c");
        // A missing key prints nothing (kubectl's --allow-missing-template-keys).
        assert_eq!(run("[{.items[0].nope}]", &d), "[]");
        assert_eq!(run("{.metadata.resourceVersion}|", &d), "|");
        // Text outside braces is printed as it is, backslashes too.
        assert_eq!(run("a\\nb", &d), "a\\nb");
    }

    #[test]
    fn range_and_nested_range() {
        let d = pods();
        assert_eq!(
            run("{range .items[*]}{.metadata.name}{\"\\t\"}{.status.phase}{\"\\n\"}{end}", &d),
            "web-1\tRunning\nweb-2\tPending\n"
        );
        assert_eq!(
            run("{range .items[*]}{.metadata.name}:{range .spec.containers[*]} {.image}{end};{end}", &d),
            "web-1: nginx:1.25 busybox;web-2: nginx:1.25;"
        );
        // A range over nothing prints nothing; text after it still prints.
        assert_eq!(run("{range .items[5:5]}x{end}done", &d), "done");
        // A range never closed runs to the end.
        assert_eq!(run("{range .items[*]}{.metadata.name},", &d), "web-1,web-2,");
    }

    #[test]
    fn indexes_slices_and_unions() {
        let d = json!({"a": [0, 1, 2, 3, 4]});
        assert_eq!(run("{.a[-1]}", &d), "4");
        assert_eq!(run("{.a[1:3]}", &d), "1 2");
        assert_eq!(run("{.a[::2]}", &d), "0 2 4");
        assert_eq!(run("{.a[:2]}", &d), "0 1");
        assert_eq!(run("{.a[*]}", &d), "0 1 2 3 4");
        assert_eq!(run("{.a[0,4]}", &d), "0 4");
        assert_eq!(run("{.a}", &d), "[0,1,2,3,4]");
        let d = pods();
        assert_eq!(
            run("{.items[0].metadata['name','labels']}", &d),
            r#"web-1 {"app":"web","app.kubernetes.io/name":"w"}"#
        );
        assert_eq!(run("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}", &d), "w");
    }

    #[test]
    fn filters() {
        let d = pods();
        assert_eq!(run(r#"{.items[?(@.status.phase=="Running")].metadata.name}"#, &d), "web-1");
        assert_eq!(run("{.items[?(@.status.phase!='Running')].metadata.name}", &d), "web-2");
        assert_eq!(run("{.items[?(@.status.restarts>1)].metadata.name}", &d), "web-1");
        assert_eq!(run("{.items[?(@.status.restarts<=2)].metadata.name}", &d), "web-1 web-2");
        assert_eq!(run("{.items[?(@.spec.nodeName)].metadata.name}", &d), "web-1");
        assert_eq!(run("{.items[0].spec.containers[?(@.name==\"s\")].image}", &d), "busybox");
        let e = Template::parse("{.items[?(@.status.restarts==\"2\")].metadata.name}").unwrap().execute(&d);
        assert_eq!(e, Err(exec_err("incompatible types for comparison")));
        let e = Template::parse("{.items[?(@.metadata==1)]}").unwrap().execute(&d);
        assert_eq!(e, Err(exec_err("invalid type for comparison")));
    }

    #[test]
    fn recursive_descent_and_wildcard() {
        let d = pods();
        assert_eq!(run("{..image}", &d), "nginx:1.25 busybox nginx:1.25");
        assert_eq!(run("{.items[1].metadata.labels.*}", &d), "web");
        assert_eq!(run("{..phase}", &d), "Running Pending");
    }

    #[test]
    fn printing_like_go() {
        assert_eq!(run("{.a}", &json!({"a": null})), "null");
        // `{.}` is the field named "" (kubectl prints nothing for it).
        assert_eq!(run("{.}", &json!({"a": 1})), "");
        assert_eq!(run("{.a}", &json!({"a": 1.5})), "1.5");
        assert_eq!(run("{.a}", &json!({"a": 1e6})), "1e+06");
        assert_eq!(run("{.a}", &json!({"a": true})), "true");
        assert_eq!(
            run("{.a}", &json!({"a": {"x": "<&>", "y": [1.0e6]}})),
            r#"{"x":"\u003c\u0026\u003e","y":[1000000]}"#
        );
        assert_eq!(go_fmt(&json!({"b": [1, "x"], "a": null})), "map[a:<nil> b:[1 x]]");
        let t = Template::parse("{.a[*]}{.b}").unwrap();
        assert_eq!(
            t.execute_as_json(&json!({"a": [1, 2], "b": "x"})).unwrap(),
            "[\n    1,\n    2\n]\n[\n    \"x\"\n]\n"
        );
    }

    #[test]
    fn missing_keys_can_be_errors() {
        let t = Template::parse("{.items[0].nope}").unwrap().allow_missing_keys(false);
        assert_eq!(t.execute(&pods()), Err(exec_err("nope is not found")));
    }

    #[test]
    fn malformed_templates_are_errors_not_panics() {
        let cases = [
            ("{.items[0}", "unterminated array"),
            ("{.items", "unclosed action"),
            ("{", "unclosed action"),
            ("{.a[x]}", "invalid array index x"),
            ("{.a[1:2:3:4]}", "invalid array index 1:2:3:4"),
            ("{\"abc}", "unterminated quoted string"),
            ("{.a[?(@.b==1}", "unterminated filter"),
            ("{.a[?(@.b==1)x}", "unclosed array expect ]"),
            ("{%}", "unrecognized character in action: U+0025 '%'"),
            ("{....a}", "invalid multiple recursive descent"),
            ("{.a\n}", "unclosed action"),
            ("{1.2.3}", "cannot parse number 1.2.3"),
            ("{.a[?(@.b=~\"x\")]}", "unrecognized character in action: U+007E '~'"),
            ("{\"\\q\"}", "unquote string \"\\q\" error invalid syntax"),
        ];
        for (template, want) in cases {
            assert_eq!(Template::parse(template), Err(parse_err(want)), "{template}");
        }
        let d = pods();
        let exec = [
            ("{.kind[0]}", "string is not array or slice"),
            ("{.items[7]}", "array index out of bounds: index 7, length 2"),
            ("{.items[1:0]}", "starting index 1 is greater than ending index 0"),
            ("{.items[0::0]}", "step must be > 0"),
            ("{end}", "not in range, nothing to end"),
            ("{.items[-9223372036854775808:]}", "array index out of bounds: index -9223372036854775806, length 2"),
            ("{metadata.name}", "unrecognized identifier metadata"),
            ("{.kind[?(@.x)]}", "List is not array or slice and cannot be filtered"),
            ("{.items[?(@.spec.containers[*].name==\"c\")]}", "can only compare one element at a time"),
        ];
        for (template, want) in exec {
            assert_eq!(Template::parse(template).unwrap().execute(&d), Err(exec_err(want)), "{template}");
        }
    }

    #[test]
    fn any_input_parses_or_fails_cleanly() {
        // Indexes at the ends of i64 do not overflow.
        assert_eq!(Template::parse("{.items[9223372036854775807]}").unwrap().execute(&pods()), Ok(String::new()));
        // Every prefix of tricky templates: never a panic.
        let tricky = r#"{range .items[?(@.a=="x)]\"")]}{..b['c','d'][-1:][::2]}{"\u00e9\x41\101"}{end}é{.€}"#;
        for end in (0..=tricky.len()).filter(|i| tricky.is_char_boundary(*i)) {
            if let Ok(t) = Template::parse(&tricky[..end]) {
                let _ = t.execute(&pods());
            }
        }
    }
}
