//! The four PATCH kinds on arbitrary objects and patches: errors are fine, panics
//! and hangs are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rk_control_plane::api::{apply, patch};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\u{0}').unwrap_or((&text, "{}"));
    let Ok(target) = serde_json::from_str::<Value>(a) else { return };
    let _ = patch::json_patch(&target, b.as_bytes());
    let Ok(p) = serde_json::from_str::<Value>(b) else { return };
    let _ = patch::merge_patch(&target, &p);
    for (api_version, kind) in [("apps/v1", "Deployment"), ("v1", "Pod"), ("v1", "Service"), ("v1", "ConfigMap")] {
        let _ = patch::strategic_merge_patch(&target, &p, api_version, kind);
        let mut config = p.clone();
        if config.is_object() {
            config["apiVersion"] = json!(api_version);
            config["kind"] = json!(kind);
        }
        let _ = apply::apply(Some(&target), &config, "fuzz", false, "2026-01-01T00:00:00Z");
        let _ = apply::record_update(Some(&target), &p, "fuzz", "2026-01-01T00:00:00Z");
    }
});
