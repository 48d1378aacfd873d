//! What the fuzz targets run (`control-plane/fuzz`, under libFuzzer with `make
//! fuzz-quick`), and a test that replays every input of their committed corpora, so
//! `make test` catches a regression on any input the fuzzers once found interesting
//! without needing the fuzzer. Errors are fine on any input; a panic or a hang is a bug.
//!
//! - [`decode`]: request bodies of every content type, then everything the API does to a
//!   decoded object before storing it (defaulting, validation, unknown fields).
//! - [`patch`]: the four PATCH kinds on arbitrary objects and patches.
//! - [`raft_wire`]: raft message bytes from the peer port: the structural check must
//!   refuse what rust-protobuf cannot parse safely.

use crate::api::{apply, body, kinds, patch as patches, registry};
use serde_json::{Value, json};

const TYPES: &[&str] = &["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];

/// The first byte picks the content type and the kind; the rest is the body.
pub fn decode(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let ct = TYPES[selector as usize % TYPES.len()];
    let Ok(mut obj) = body::decode(Some(ct), rest) else { return };
    let res = &registry::RESOURCES[selector as usize % registry::RESOURCES.len()];
    let _ = kinds::unknown_fields(res.kind, &obj);
    if kinds::default(res.kind, &mut obj).is_ok() {
        let _ = kinds::validate_create(res.kind, &obj);
        let _ = kinds::validate_update(res.kind, &obj, &obj);
    }
}

/// A target object and a patch, separated by a NUL byte.
pub fn patch(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\u{0}').unwrap_or((&text, "{}"));
    let Ok(target) = serde_json::from_str::<Value>(a) else { return };
    let _ = patches::json_patch(&target, b.as_bytes());
    let Ok(p) = serde_json::from_str::<Value>(b) else { return };
    let _ = patches::merge_patch(&target, &p);
    for (api_version, kind) in [("apps/v1", "Deployment"), ("v1", "Pod"), ("v1", "Service"), ("v1", "ConfigMap")] {
        let _ = patches::strategic_merge_patch(&target, &p, api_version, kind);
        let mut config = p.clone();
        if config.is_object() {
            config["apiVersion"] = json!(api_version);
            config["kind"] = json!(kind);
        }
        let _ = apply::apply(Some(&target), &config, "fuzz", false, "2026-01-01T00:00:00Z");
        let _ = apply::record_update(Some(&target), &p, "fuzz", "2026-01-01T00:00:00Z");
    }
}

/// Bytes as they arrive on the peer port.
pub fn raft_wire(data: &[u8]) {
    let _ = crate::raft::wire::parse_message(data);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Runs `target` on every file of `corpus/<name>`; returns how many there were.
    fn replay(name: &str, target: fn(&[u8])) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a corpus entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            target(&data);
            n += 1;
        }
        n
    }

    #[test]
    fn the_decode_corpus_replays_without_a_panic() {
        assert!(replay("decode", super::decode) > 100);
    }

    #[test]
    fn the_patch_corpus_replays_without_a_panic() {
        assert!(replay("patch", super::patch) > 100);
    }

    #[test]
    fn the_raft_wire_corpus_replays_without_a_panic() {
        assert!(replay("raft_wire", super::raft_wire) > 100);
    }
}
