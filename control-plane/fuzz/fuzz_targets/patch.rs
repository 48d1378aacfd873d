//! The four PATCH kinds on arbitrary objects and patches (see
//! `rk_control_plane::fuzzing::patch`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rk_control_plane::fuzzing::patch(data));
