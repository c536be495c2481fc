//! `opendew-kms-plugin`: see the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let about = "Kubernetes KMS v2 plugin backed by opendew.";
    common::binary::run_agent("opendew-kms-plugin", about, kms_plugin::serve).await
}
