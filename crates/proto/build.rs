//! Compiles every proto of the workspace with protox, a pure-Rust compiler,
//! so a fresh machine builds without a system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["kms/v1/kms.proto", "csms/v1/csms.proto"];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("opendew_descriptor.bin"), prost::Message::encode_to_vec(&descriptors))?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(descriptors)?;
    // The Kubernetes plugin APIs opendew serves: compiled on their own, so
    // that the services' reflection lists only opendew's protos.
    let k8s = ["k8s/kms/v2/api.proto", "k8s/secrets-store/v1alpha1/service.proto"];
    for file in &k8s {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(k8s, [&root])?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(descriptors)?;
    Ok(())
}
