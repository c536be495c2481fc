//! Prometheus metrics: one recorder per process, served as text on its own
//! port (`--metrics-listen`), so scraping never competes with the API port.
//!
//! Names follow Prometheus conventions: `opendew_` prefix, `_total` for
//! counters, `_seconds` for durations. Labels never carry ids, names or
//! anything a caller chose, so their number stays bounded.

use std::{net::SocketAddr, sync::OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Metrics settings shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics on this address (e.g. 0.0.0.0:9090); off when unset.
    #[arg(long = "metrics-listen", env = "OPENDEW_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls reuse it).
pub fn recorder() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
            .expect("static buckets are valid")
            .build_recorder();
        let render = handle.handle();
        // Another recorder may already be installed (tests); keep ours for rendering.
        let _ = metrics::set_global_recorder(handle);
        render
    })
}

/// Serves `/metrics` on `addr` until `shutdown`; returns the bound address.
pub async fn serve(addr: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let handle = recorder();
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move { ([("content-type", "text/plain; version=0.0.4")], handle.render()) }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    });
    tracing::info!(addr = %bound, "metrics listening");
    Ok(bound)
}

/// Starts the metrics endpoint when configured.
pub async fn start(config: &MetricsConfig, shutdown: CancellationToken) -> anyhow::Result<Option<SocketAddr>> {
    recorder();
    match config.metrics_listen {
        Some(addr) => Ok(Some(serve(addr, shutdown).await?)),
        None => Ok(None),
    }
}
