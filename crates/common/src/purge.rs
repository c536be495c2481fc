//! Background loops: the [`Ticker`] every task runs on, [`spawn_job`],
//! which every loop of both services is (rotation, expiry, purge), and the
//! purge loop (every replica deletes, by the database's clock, what is past
//! its deletion date; deletions are idempotent and re-checked on the locked
//! row, so replicas need not coordinate).

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

/// What a background job is called in metrics and logs.
#[derive(Debug, Clone, Copy)]
pub struct JobNames {
    /// Counter of runs, labelled `result` ok or error (none for jobs that
    /// count only their work).
    pub runs_metric: Option<&'static str>,
    /// Counter of what each run did (keys rotated, secrets purged, …).
    pub done_metric: &'static str,
    /// What the job is, for the warning a failed run logs ("key purge").
    pub what: &'static str,
}

impl JobNames {
    /// A job whose runs are counted in `runs_metric` and its work in
    /// `done_metric`.
    pub const fn counted(runs_metric: &'static str, done_metric: &'static str, what: &'static str) -> Self {
        Self { runs_metric: Some(runs_metric), done_metric, what }
    }

    /// A job that counts only its work.
    pub const fn quiet(done_metric: &'static str, what: &'static str) -> Self {
        Self { runs_metric: None, done_metric, what }
    }
}

/// Runs `job` every `interval` until `shutdown`, counting runs and what
/// each did; a failed run is logged and retried at the next interval.
/// Every background loop of both services is one of these: each replica
/// runs them all, and each unit of work re-checks on its locked row, so
/// replicas need not coordinate.
pub fn spawn_job<F, Fut, E>(interval: Duration, shutdown: CancellationToken, names: JobNames, job: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<u64, E>> + Send,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        let mut ticks = Ticker::new(interval, shutdown);
        while ticks.next().await {
            let result = job().await;
            if let Some(runs) = names.runs_metric {
                let outcome = if result.is_ok() { "ok" } else { "error" };
                metrics::counter!(runs, "result" => outcome).increment(1);
            }
            match result {
                Ok(done) => metrics::counter!(names.done_metric).increment(done),
                Err(e) => tracing::warn!(error = %e, job = names.what, "background job failed; retrying next interval"),
            }
        }
    });
}

/// Runs `purge` (which reads the database's clock and deletes what is due
/// at it) as a [`spawn_job`], handing each deleted id to `deleted`.
pub fn spawn<Id, F, Fut>(
    interval: Duration, shutdown: CancellationToken, names: JobNames, purge: F,
    deleted: impl Fn(Id) + Send + Sync + 'static,
) where
    Id: Send + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Id>, StoreError>> + Send,
{
    let (purge, deleted) = (std::sync::Arc::new(purge), std::sync::Arc::new(deleted));
    spawn_job(interval, shutdown, names, move || {
        let (purge, deleted) = (purge.clone(), deleted.clone());
        async move {
            let gone = purge().await?;
            let count = gone.len() as u64;
            gone.into_iter().for_each(|id| deleted(id));
            Ok::<_, StoreError>(count)
        }
    });
}
