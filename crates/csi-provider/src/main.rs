//! `opendew-csi-provider`: see the library.

use clap::Parser;

/// Secrets Store CSI Driver provider backed by opendew (CSMS secrets as files).
#[derive(Debug, Parser)]
#[command(name = "opendew-csi-provider", version)]
struct Args {
    #[command(flatten)]
    provider: csi_provider::ProviderConfig,
    #[command(flatten)]
    log: common::telemetry::LogConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    common::telemetry::init(&args.log);
    let shutdown = common::binary::shutdown_on_signal();
    csi_provider::serve(args.provider, shutdown).await
}
