//! Raft message bytes from the peer port: the structural check must refuse what
//! rust-protobuf cannot parse safely, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rk_control_plane::raft::wire::parse_message(data);
});
