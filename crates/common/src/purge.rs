//! Background loops: the [`Ticker`] every task runs on, and the purge
//! loop both services run (every replica deletes, by the database's
//! clock, what is past its deletion date; deletions are idempotent and
//! re-checked on the locked row, so replicas need not coordinate).

use std::{future::Future, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::db::StoreError;

/// The loop of every background task: a tick every `interval` (the first
/// at once, late ticks delayed rather than bunched) until `shutdown`.
#[derive(Debug)]
pub struct Ticker {
    tick: tokio::time::Interval,
    shutdown: CancellationToken,
}

impl Ticker {
    /// Ticks every `interval` until `shutdown` is cancelled.
    pub fn new(interval: std::time::Duration, shutdown: CancellationToken) -> Self {
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

/// What a service's purge loop is called in metrics and logs.
#[derive(Debug, Clone, Copy)]
pub struct PurgeNames {
    /// Counter of runs, labelled `result` ok or error.
    pub runs_metric: &'static str,
    /// Counter of what was deleted.
    pub purged_metric: &'static str,
    /// What is purged, for the warning a failed run logs ("key", "secret").
    pub what: &'static str,
}

/// Runs `purge` (which reads the database's clock and deletes what is due
/// at it) every `interval` until `shutdown`, counting runs and deletions
/// and handing each deleted id to `deleted`. A failed run is logged and
/// retried at the next interval.
pub fn spawn<Id, F, Fut>(
    interval: Duration, shutdown: CancellationToken, names: PurgeNames, purge: F, deleted: impl Fn(Id) + Send + 'static,
) where
    Id: Send + 'static,
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<Id>, StoreError>> + Send,
{
    tokio::spawn(async move {
        let mut ticks = Ticker::new(interval, shutdown);
        while ticks.next().await {
            let result = purge().await;
            let outcome = if result.is_ok() { "ok" } else { "error" };
            metrics::counter!(names.runs_metric, "result" => outcome).increment(1);
            match result {
                Ok(gone) => {
                    metrics::counter!(names.purged_metric).increment(gone.len() as u64);
                    gone.into_iter().for_each(&deleted);
                }
                Err(e) => tracing::warn!(error = %e, what = names.what, "purge failed; retrying next interval"),
            }
        }
    });
}
