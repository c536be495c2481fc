//! Plumbing shared by opendew's services.
//!
//! Nothing here knows about keys, secrets or HTTP: it is the glue every
//! service needs in the same shape (caller identity on gRPC metadata,
//! database URLs, serving gRPC with health and reflection, telemetry).

pub mod binary;
pub mod db;
pub mod grpc;
pub mod identity;
pub mod metrics;
pub mod telemetry;

/// Milliseconds since the Unix epoch, the unit every opendew timestamp uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A token cancelled on SIGINT or SIGTERM: the one shutdown signal every
/// binary passes to its servers.
pub fn shutdown_on_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("install SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    token
}

/// The loop of every background task: a tick every `interval` (the first
/// at once, late ticks delayed rather than bunched) until `shutdown`.
#[derive(Debug)]
pub struct Ticker {
    tick: tokio::time::Interval,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Ticker {
    /// Ticks every `interval` until `shutdown` is cancelled.
    pub fn new(interval: std::time::Duration, shutdown: tokio_util::sync::CancellationToken) -> Self {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { tick, shutdown }
    }

    /// Waits for the next tick; false once shutdown has begun.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = self.tick.tick() => true,
        }
    }
}

/// How long a stopping process waits for in-flight requests.
#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownConfig {
    /// Seconds to let in-flight requests finish after SIGTERM before exiting anyway.
    #[arg(long = "shutdown-grace-seconds", env = "OPENDEW_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
}

/// Waits for a server task; once `shutdown` fires, waits at most the grace
/// period for it to drain. A drain that runs out of time is logged, and the
/// process still exits cleanly: in-flight work past the grace is abandoned,
/// which is what the orchestrator's own kill would do a moment later.
pub async fn run_until_stopped(
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    shutdown: tokio_util::sync::CancellationToken,
    config: &ShutdownConfig,
) -> anyhow::Result<()> {
    let grace = std::time::Duration::from_secs(config.shutdown_grace_seconds);
    tokio::select! {
        result = task => result?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_seconds = config.shutdown_grace_seconds, "in-flight requests did not finish in time; exiting");
            Ok(())
        }
    }
}
