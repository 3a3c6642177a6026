//! Compiles `proto/*.proto` with protox (pure Rust: no `protoc` on the machine) and
//! generates tonic code with madsim-tonic-build, which emits both the real and the
//! simulated (`OUT_DIR/sim/`) variants.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/datanode.proto",
        "proto/raft.proto",
        "proto/meta.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds_path = out_dir.join("shale_descriptor.bin");
    std::fs::write(&fds_path, prost::Message::encode_to_vec(&fds))?;
    tonic_build::configure()
        .file_descriptor_set_path(&fds_path)
        .skip_protoc_run()
        .bytes(["."])
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}
