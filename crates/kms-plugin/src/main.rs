//! `opendew-kms-plugin`: see the library.

use clap::Parser;

/// Kubernetes KMS v2 plugin backed by opendew.
#[derive(Debug, Parser)]
#[command(name = "opendew-kms-plugin", version)]
struct Args {
    #[command(flatten)]
    plugin: kms_plugin::PluginConfig,
    #[command(flatten)]
    log: common::telemetry::LogConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    common::telemetry::init(&args.log);
    let shutdown = common::binary::shutdown_on_signal();
    kms_plugin::serve(args.plugin, shutdown).await
}
