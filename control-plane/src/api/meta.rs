//! Object metadata as Kubernetes defines it: names, labels and annotations with
//! their validation rules and messages, uids, timestamps and `generateName`.

use super::error::FieldError;
use serde_json::Value;

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters. Returns the problems.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(format!("must be no more than {DNS1123_LABEL_MAX} characters"));
    }
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && is_alnum_lower(b[0])
        && is_alnum_lower(b[b.len() - 1])
        && b.iter().all(|c| is_alnum_lower(*c) || *c == b'-');
    if !ok {
        errs.push(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start \
             and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                .into(),
        );
    }
    errs
}

/// Lower-case RFC 1123 subdomain: labels joined by dots, at most 253 characters.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {DNS1123_SUBDOMAIN_MAX} characters"));
    }
    let ok = !value.is_empty()
        && value.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && is_alnum_lower(b[0])
                && is_alnum_lower(b[b.len() - 1])
                && b.iter().all(|c| is_alnum_lower(*c) || *c == b'-')
        });
    if !ok {
        errs.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must \
             start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .into(),
        );
    }
    errs
}

/// RFC 1035 label (Service names): must start with a letter.
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(format!("must be no more than {DNS1123_LABEL_MAX} characters"));
    }
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_alnum_lower(b[b.len() - 1])
        && b.iter().all(|c| is_alnum_lower(*c) || *c == b'-');
    if !ok {
        errs.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic \
             character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for \
             validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .into(),
        );
    }
    errs
}

fn qualified_name_part(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain.
pub fn qualified_name(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".into());
        } else {
            errs.extend(dns1123_subdomain(p).into_iter().map(|e| format!("prefix part {e}")));
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".into());
    } else if !qualified_name_part(name) || name.contains('/') {
        errs.push(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
             '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
                .into(),
        );
    }
    errs
}

/// A label value: empty, or up to 63 characters like a qualified name part.
pub fn label_value(value: &str) -> Vec<String> {
    if value.is_empty() || qualified_name_part(value) {
        return Vec::new();
    }
    if value.len() > 63 {
        return vec!["must be no more than 63 characters".into()];
    }
    vec![
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must \
         start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for \
         validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            .into(),
    ]
}

/// Validates `metadata.labels` and `metadata.annotations` of an object.
pub fn validate_labels_and_annotations(meta: &Value, errs: &mut Vec<FieldError>) {
    if let Some(labels) = meta.get("labels") {
        match labels.as_object() {
            Some(map) => {
                for (k, v) in map {
                    for e in qualified_name(k) {
                        errs.push(FieldError::invalid("metadata.labels", k, e));
                    }
                    match v.as_str() {
                        Some(s) => {
                            for e in label_value(s) {
                                errs.push(FieldError::invalid(format!("metadata.labels.{k}"), s, e));
                            }
                        }
                        None => errs.push(FieldError::invalid(format!("metadata.labels.{k}"), v, "must be a string")),
                    }
                }
            }
            None if labels.is_null() => {}
            None => errs.push(FieldError::invalid("metadata.labels", labels, "must be a map of strings")),
        }
    }
    if let Some(ann) = meta.get("annotations") {
        match ann.as_object() {
            Some(map) => {
                let mut total = 0;
                for (k, v) in map {
                    for e in qualified_name(&k.to_ascii_lowercase()) {
                        errs.push(FieldError::invalid("metadata.annotations", k, e));
                    }
                    match v.as_str() {
                        Some(s) => total += k.len() + s.len(),
                        None => {
                            errs.push(FieldError::invalid(format!("metadata.annotations.{k}"), v, "must be a string"))
                        }
                    }
                }
                if total > TOTAL_ANNOTATION_SIZE {
                    errs.push(FieldError::too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE));
                }
            }
            None if ann.is_null() => {}
            None => errs.push(FieldError::invalid("metadata.annotations", ann, "must be a map of strings")),
        }
    }
}

/// A random (version 4) UUID, as Kubernetes uses for `metadata.uid`.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// `generateName` suffix: 5 characters from Kubernetes' alphabet (no vowels, no
/// look-alike digits, so generated names never spell words).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

/// The current time as Kubernetes writes it (RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now as a Kubernetes `MicroTime` (RFC 3339 with microseconds).
pub fn now_micro() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// RFC 3339 of a Unix time in seconds.
pub fn format_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(|_| now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_label("web-1").is_empty());
        assert!(!dns1123_label("Web").is_empty());
        assert!(!dns1123_label("-web").is_empty());
        assert!(!dns1123_label(&"a".repeat(64)).is_empty());
        assert!(dns1123_subdomain("a.b-c.d").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(!dns1035_label("1abc").is_empty());
        assert!(dns1035_label("abc1").is_empty());
    }

    #[test]
    fn labels() {
        assert!(qualified_name("app").is_empty());
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name("bad key").is_empty());
        assert!(!qualified_name("/x").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2_3").is_empty());
        assert!(!label_value("no spaces").is_empty());
        let mut errs = Vec::new();
        validate_labels_and_annotations(&serde_json::json!({"labels": {"ok": "x", "b@d": "y"}}), &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.labels");
    }

    #[test]
    fn uids_and_times() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uid());
        assert_eq!(random_suffix().len(), 5);
        let t = now();
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
        assert_eq!(format_time(parse_time(&t).unwrap()), t);
    }
}
