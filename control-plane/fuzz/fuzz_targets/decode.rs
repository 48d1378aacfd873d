//! Request bodies of every content type, then everything the API does to a decoded
//! object before storing it (see `rk_control_plane::fuzzing::decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rk_control_plane::fuzzing::decode(data));
