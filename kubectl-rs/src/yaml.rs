//! YAML output written the way kubectl (go-yaml v2 behind `sigs.k8s.io/yaml`) writes
//! it, so that `rkctl get -o yaml` reads the same and round-trips through YAML 1.1
//! tools:
//!
//! - strings a YAML 1.1 reader would take for something else (`yes`, `on`, `NO`,
//!   `null`, `"30"`, `0x1F`, `1e3`, `2026-01-01`, `1:20`) are double-quoted;
//! - strings that cannot be plain for syntax reasons (`#x`, `a: b`, ` lead`) are
//!   single-quoted; strings with control characters are double-quoted with escapes;
//! - multi-line strings are literal blocks (`|`, `|-`, `|+`);
//! - long plain lines fold at spaces past column 80;
//! - sequences under a mapping key are not indented (`key:\n- a`).

use serde_json::Value;

const WIDTH: usize = 80;

/// The value as a YAML document (no `---`), ending with a newline.
pub fn to_string(value: &Value) -> String {
    let mut e = Emitter { out: String::new(), column: 0 };
    match value {
        Value::Object(m) if !m.is_empty() => e.mapping(value, 0),
        Value::Array(a) if !a.is_empty() => e.sequence(value, 0),
        scalar => {
            e.scalar(scalar, 0);
            e.newline();
        }
    }
    e.out
}

struct Emitter {
    out: String,
    /// Characters on the current line, for folding.
    column: usize,
}

impl Emitter {
    fn push(&mut self, s: &str) {
        for c in s.chars() {
            if c == '\n' {
                self.column = 0;
            } else {
                self.column += 1;
            }
        }
        self.out.push_str(s);
    }

    fn newline(&mut self) {
        self.push("\n");
    }

    fn indent(&mut self, n: usize) {
        self.push(&" ".repeat(n));
    }

    /// A block mapping whose keys start at column `indent` (the first key is written
    /// where the cursor is, e.g. after `- `).
    fn mapping(&mut self, v: &Value, indent: usize) {
        let Some(map) = v.as_object() else { return };
        for (i, (k, val)) in map.iter().enumerate() {
            if i > 0 {
                self.indent(indent);
            }
            self.key(k);
            self.value_after_key(val, indent);
        }
    }

    /// A block sequence whose dashes are at column `indent`.
    fn sequence(&mut self, v: &Value, indent: usize) {
        let Some(items) = v.as_array() else { return };
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.indent(indent);
            }
            self.push("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.mapping(item, indent + 2),
                Value::Array(a) if !a.is_empty() => self.sequence(item, indent + 2),
                scalar => {
                    self.scalar(scalar, indent + 2);
                    self.newline();
                }
            }
        }
    }

    fn key(&mut self, k: &str) {
        let text = match style(k) {
            Style::Plain => k.to_string(),
            Style::Single => single_quoted(k),
            // A key cannot be a block scalar.
            Style::Double | Style::Literal => double_quoted(k),
        };
        self.push(&text);
        self.push(":");
    }

    /// What follows `key:` for a mapping at `indent`.
    fn value_after_key(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                self.newline();
                self.indent(indent + 2);
                self.mapping(v, indent + 2);
            }
            Value::Array(a) if !a.is_empty() => {
                self.newline();
                self.indent(indent);
                self.sequence(v, indent);
            }
            scalar => {
                self.push(" ");
                self.scalar(scalar, indent + 2);
                self.newline();
            }
        }
    }

    /// A scalar at the cursor; continuation lines (folds, block lines) at `indent`.
    fn scalar(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Null => self.push("null"),
            Value::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Value::Number(n) => self.push(&n.to_string()),
            Value::Object(_) => self.push("{}"),
            Value::Array(_) => self.push("[]"),
            Value::String(s) => match style(s) {
                Style::Plain => self.folded(s, indent),
                Style::Single => {
                    let q = single_quoted(s);
                    self.folded_quoted(&q, indent);
                }
                Style::Double => self.push(&double_quoted(s)),
                Style::Literal => self.literal(s, indent),
            },
        }
    }

    /// A plain scalar, breaking at a single space once past the width (go-yaml's
    /// `write_plain_scalar`).
    fn folded(&mut self, s: &str, indent: usize) {
        let chars: Vec<char> = s.chars().collect();
        let mut prev_space = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if !prev_space && self.column > WIDTH && !next_space {
                    self.newline();
                    self.indent(indent);
                } else {
                    self.push(" ");
                }
                prev_space = true;
            } else {
                let mut buf = [0u8; 4];
                self.push(c.encode_utf8(&mut buf));
                prev_space = false;
            }
        }
    }

    /// A single-quoted scalar (already quoted), folded like go-yaml's
    /// `write_single_quoted`: not at the first or last character.
    fn folded_quoted(&mut self, q: &str, indent: usize) {
        let chars: Vec<char> = q.chars().collect();
        let mut prev_space = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                let inner = i > 1 && i + 2 < chars.len();
                if !prev_space && self.column > WIDTH && inner && !next_space {
                    self.newline();
                    self.indent(indent);
                } else {
                    self.push(" ");
                }
                prev_space = true;
            } else {
                let mut buf = [0u8; 4];
                self.push(c.encode_utf8(&mut buf));
                prev_space = false;
            }
        }
    }

    /// A literal block: `|`, `|-` (no final newline) or `|+` (several), with an
    /// indentation indicator when the text starts with a space.
    fn literal(&mut self, s: &str, indent: usize) {
        let mut header = String::from("|");
        if s.starts_with(' ') {
            header.push('2');
        }
        if !s.ends_with('\n') {
            header.push('-');
        } else if s.ends_with("\n\n") || s == "\n" {
            header.push('+');
        }
        self.push(&header);
        let body = s.strip_suffix('\n').unwrap_or(s);
        for line in body.split('\n') {
            self.newline();
            if !line.is_empty() {
                self.indent(indent);
                self.push(line);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml's choice: double quotes for text that would read as another type, a
/// literal block for multi-line text it can hold, plain when the syntax allows,
/// else single quotes, and double quotes for anything with control characters.
fn style(s: &str) -> Style {
    let special = s.chars().any(|c| !printable(c));
    if s.contains('\n') {
        let trailing_space_before_break = s.contains(" \n") || s.ends_with(' ');
        let other_specials = s.chars().any(|c| c != '\n' && !printable(c));
        return if trailing_space_before_break || other_specials { Style::Double } else { Style::Literal };
    }
    if special || resolves_to_non_string(s) {
        return Style::Double;
    }
    if plain_allowed(s) { Style::Plain } else { Style::Single }
}

/// Characters go-yaml writes as they are (with `unicode` on): not control characters
/// (a tab is one), nor a BOM.
fn printable(c: char) -> bool {
    match c {
        '\n' => true,
        '\u{feff}' => false,
        c => !c.is_control(),
    }
}

/// Whether a plain scalar is syntactically possible (go-yaml's `analyze_scalar` for
/// block context).
fn plain_allowed(s: &str) -> bool {
    if s.is_empty() || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    let blank_after = |i: usize| chars.get(i + 1).is_none_or(|c| *c == ' ');
    for (i, &c) in chars.iter().enumerate() {
        if i == 0 {
            if matches!(
                c,
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`'
            ) {
                return false;
            }
            if matches!(c, '?' | ':' | '-') && blank_after(i) {
                return false;
            }
        } else {
            if c == ':' && blank_after(i) {
                return false;
            }
            if c == '#' && chars[i - 1] == ' ' {
                return false;
            }
        }
    }
    true
}

/// YAML 1.1 as go-yaml v2 resolves plain scalars: booleans, nulls, numbers in all
/// their spellings, timestamps, base-60 numbers and the merge key.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no", "No", "NO", "false",
        "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf",
        ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let Some(first) = s.chars().next() else { return true };
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return false;
    }
    if first.is_ascii_digit() && is_timestamp(s) {
        return true;
    }
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    is_go_int(&plain) || is_yaml_float(&plain) || is_base60(s)
}

/// Go's `strconv.ParseInt(s, 0, 64)` syntax: sign, then `0x`, `0o`, `0b`, a leading
/// `0` (octal) or decimal digits.
fn is_go_int(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let all = |t: &str, f: fn(char) -> bool| !t.is_empty() && t.chars().all(f);
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return all(h, |c| c.is_ascii_hexdigit());
    }
    if let Some(o) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        return all(o, |c| ('0'..='7').contains(&c));
    }
    if let Some(b) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        return all(b, |c| c == '0' || c == '1');
    }
    if s.len() > 1 && s.starts_with('0') {
        return all(&s[1..], |c| ('0'..='7').contains(&c));
    }
    all(s, |c| c.is_ascii_digit())
}

/// go-yaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exp_ok
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$` (sexagesimal, e.g. `1:20`).
fn is_base60(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (body, frac) = match s.split_once('.') {
        Some((b, f)) => (b, Some(f)),
        None => (s, None),
    };
    let mut parts = body.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok =
        head.starts_with(|c: char| c.is_ascii_digit()) && head.chars().all(|c| c.is_ascii_digit() || c == '_');
    let rest: Vec<&str> = parts.collect();
    let rest_ok = !rest.is_empty()
        && rest.iter().all(|p| {
            let b = p.as_bytes();
            match b {
                [d] => d.is_ascii_digit(),
                [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
                _ => false,
            }
        });
    let frac_ok = frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit() || c == '_'));
    head_ok && rest_ok && frac_ok
}

/// go-yaml's timestamp forms: `2006-1-2`, `2006-1-2T15:4:5[.frac][Z|±07:00]`,
/// `2006-1-2 15:4:5[.frac]` (`t` also allowed as the separator).
fn is_timestamp(s: &str) -> bool {
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some((&s[i..i + 1], &s[i + 1..]))),
        None => (s, None),
    };
    let nums = |t: &str, sep: char, max_first: usize| -> bool {
        let parts: Vec<&str> = t.split(sep).collect();
        parts.len() == 3
            && parts.iter().enumerate().all(|(i, p)| {
                let max = if i == 0 { max_first } else { 2 };
                !p.is_empty() && p.len() <= max && p.chars().all(|c| c.is_ascii_digit())
            })
    };
    if !(date.len() >= 8
        && date.as_bytes()[4] == b'-'
        && nums(date, '-', 4)
        && date.split('-').next().map(str::len) == Some(4))
    {
        return false;
    }
    let Some((sep, time)) = time else { return true };
    // The time, with optional fraction, and a zone only after T/t.
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, ""),
    };
    if sep == " " && !zone.is_empty() {
        return false;
    }
    let clock =
        clock.split_once('.').map_or(clock, |(c, f)| if f.chars().all(|d| d.is_ascii_digit()) { c } else { "x" });
    let zone_ok = zone.is_empty()
        || zone == "Z"
        || (zone.len() == 6
            && zone.as_bytes()[3] == b':'
            && zone[1..3].chars().chain(zone[4..].chars()).all(|c| c.is_ascii_digit()));
    nums(clock, ':', 2) && zone_ok
}

fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !printable(c) && (c as u32) <= 0xff => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if !printable(c) && (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if !printable(c) => out.push_str(&format!("\\U{:08X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoting_matches_kubectl() {
        // Each pair is what kubectl 1.33 printed for the string as an annotation value.
        let cases = [
            ("", "\"\""),
            ("true", "\"true\""),
            ("1.5", "\"1.5\""),
            ("yes", "\"yes\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("2026-01-01", "\"2026-01-01\""),
            ("2026-11-25T12:18:02Z", "\"2026-11-25T12:18:02Z\""),
            ("30", "\"30\""),
            ("0x10", "\"0x10\""),
            ("1e3", "\"1e3\""),
            ("NO", "\"NO\""),
            ("on", "\"on\""),
            ("1:20", "\"1:20\""),
            ("#x", "'#x'"),
            ("a: b", "'a: b'"),
            ("- x", "'- x'"),
            (" lead", "' lead'"),
            ("trail ", "'trail '"),
            ("@at", "'@at'"),
            ("it's", "it's"),
            ("say \"hi\"", "say \"hi\""),
            ("{x}", "'{x}'"),
            ("*", "'*'"),
            ("tab\there", "\"tab\\there\""),
            ("ünï", "ünï"),
            ("%p", "'%p'"),
            ("app=web", "app=web"),
            ("nginx:1.25", "nginx:1.25"),
            ("http://x/y#z", "http://x/y#z"),
            ("v1.33.0-rk", "v1.33.0-rk"),
            ("1.2.3", "1.2.3"),
            ("-1", "\"-1\""),
            ("+12", "\"+12\""),
            (".5", "\".5\""),
            ("10.0.0.1", "10.0.0.1"),
            ("25%", "25%"),
            ("08", "\"08\""),
        ];
        for (s, want) in cases {
            assert_eq!(to_string(&json!(s)), format!("{want}\n"), "{s:?}");
        }
    }

    #[test]
    fn keys_that_read_as_booleans_are_quoted() {
        let v = json!({"n": "it's", "y": "on", "app.kubernetes.io/name": "web"});
        assert_eq!(to_string(&v), "app.kubernetes.io/name: web\n\"n\": it's\n\"y\": \"on\"\n");
    }

    #[test]
    fn structure_like_kubectl() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [{"metadata": {"name": "a", "labels": {}}, "spec": {"ports": [{"port": 80}], "list": [[1, 2], []]}}],
            "metadata": {"resourceVersion": ""},
            "empty": null
        });
        assert_eq!(
            to_string(&v),
            "apiVersion: v1\nempty: null\nitems:\n- metadata:\n    labels: {}\n    name: a\n  spec:\n    list:\n    - - 1\n      - 2\n    - []\n    ports:\n    - port: 80\nkind: List\nmetadata:\n  resourceVersion: \"\"\n"
        );
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let v = json!({"data": {"script": "#!/bin/sh\necho \"hi\"\n", "noend": "a\nb", "keep": "x\n\n", "lead": "  indented\nline\n", "blank": "a\n\nb\n"}});
        assert_eq!(
            to_string(&v),
            "data:\n  blank: |\n    a\n\n    b\n  keep: |+\n    x\n\n  lead: |2\n      indented\n    line\n  noend: |-\n    a\n    b\n  script: |\n    #!/bin/sh\n    echo \"hi\"\n"
        );
        // A space before a line break cannot be kept in a block: double quotes.
        assert_eq!(to_string(&json!("a \nb")), "\"a \\nb\"\n");
    }

    #[test]
    fn long_lines_fold_past_80_columns() {
        let long = format!("{} {} {}", "a".repeat(89), "b".repeat(45), "c".repeat(18));
        let v = json!({"data": {"long": long}});
        // kubectl printed exactly this for the same ConfigMap.
        assert_eq!(
            to_string(&v),
            format!("data:\n  long: {}\n    {} {}\n", "a".repeat(89), "b".repeat(45), "c".repeat(18))
        );
    }
}
