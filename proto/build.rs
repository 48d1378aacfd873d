//! Compiles the `.proto` files in this folder with protox (a pure-Rust protobuf
//! compiler), so building rk never needs `protoc` installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "etcd/mvccpb/kv.proto",
        "etcd/authpb/auth.proto",
        "etcd/etcdserverpb/rpc.proto",
        "rk/peer.proto",
        "rk/store.proto",
        "rk/resource.proto",
    ];
    let includes = ["etcd", "rk"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, includes)?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
