//! Request bodies of every content type, then everything the API does to a decoded
//! object before storing it: defaulting, validation, unknown-field detection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rk_control_plane::api::{body, kinds, registry};

const TYPES: &[&str] = &["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let ct = TYPES[selector as usize % TYPES.len()];
    let Ok(mut obj) = body::decode(Some(ct), rest) else { return };
    let res = &registry::RESOURCES[selector as usize % registry::RESOURCES.len()];
    let _ = kinds::unknown_fields(res.kind, &obj);
    if kinds::default(res.kind, &mut obj).is_ok() {
        let _ = kinds::validate_create(res.kind, &obj);
        let _ = kinds::validate_update(res.kind, &obj, &obj);
    }
});
