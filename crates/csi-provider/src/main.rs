//! `opendew-csi-provider`: see the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let about = "Secrets Store CSI Driver provider backed by opendew (CSMS secrets as files).";
    common::binary::run_agent("opendew-csi-provider", about, csi_provider::serve).await
}
