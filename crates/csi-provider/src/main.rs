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
    csi_provider::serve(args.provider, shutdown).await
}
