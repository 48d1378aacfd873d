//! Raft message bytes from the peer port (see `rk_control_plane::fuzzing::raft_wire`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rk_control_plane::fuzzing::raft_wire(data));
