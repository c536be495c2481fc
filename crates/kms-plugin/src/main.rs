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
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        stop.cancel();
    });
    kms_plugin::serve(args.plugin, shutdown).await
}
