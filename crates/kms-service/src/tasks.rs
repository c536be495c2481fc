//! The background loops every replica runs: scheduled rotation, the
//! expiry of imported material, and the purge of keys past their deletion
//! date. Each re-checks on the locked row, so replicas need not
//! coordinate.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{cache, service, store::KeyStore};

/// Rotates keys whose automatic rotation is due. Every replica runs it;
/// each rotation re-checks "due" on the locked row, so a key is rotated
/// once per period whichever replica gets there first (see `rotation`).
pub(crate) fn spawn_rotation(
    service: Arc<service::KmsService>, interval: std::time::Duration, day_ms: i64, shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = common::Ticker::new(interval, shutdown);
        while ticks.next().await {
            // Due by the database's clock, which every replica shares.
            let result = match service.store.clock_ms().await {
                Ok(now_ms) => service.rotate_due(now_ms, day_ms).await,
                Err(e) => Err(e.into()),
            };
            let outcome = if result.is_ok() { "ok" } else { "error" };
            metrics::counter!("opendew_kms_rotation_runs_total", "result" => outcome).increment(1);
            match result {
                Ok(rotated) => metrics::counter!("opendew_kms_keys_rotated_total").increment(rotated.len() as u64),
                Err(e) => tracing::warn!(error = %e, "scheduled key rotation failed; retrying next interval"),
            }
        }
    });
}

/// Deletes imported material past its expiry (the key goes back to pending
/// import). Safe on several replicas: each deletion re-checks the expiry on
/// the locked row.
pub(crate) fn spawn_import_expiry(
    service: Arc<service::KmsService>, interval: std::time::Duration, shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = common::Ticker::new(interval, shutdown);
        while ticks.next().await {
            let result = match service.store.clock_ms().await {
                Ok(now_ms) => service.expire_imports(now_ms).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(expired) => metrics::counter!("opendew_kms_imports_expired_total").increment(expired.len() as u64),
                Err(e) => tracing::warn!(error = %e, "expiring imported key material failed; retrying next interval"),
            }
        }
    });
}

/// Deletes keys past their scheduled deletion date, with their material,
/// and forgets them in this replica's cache.
pub(crate) fn spawn_purge(
    store: Arc<dyn KeyStore>, cache: Arc<cache::KeyCache>, interval: std::time::Duration, shutdown: CancellationToken,
) {
    let names = common::purge::PurgeNames {
        runs_metric: "opendew_kms_purge_runs_total",
        purged_metric: "opendew_kms_keys_purged_total",
        what: "key",
    };
    let purge = move || {
        let store = store.clone();
        // Due by the database's clock, which every replica shares.
        async move { store.purge_due(store.clock_ms().await?).await }
    };
    common::purge::spawn(interval, shutdown, names, purge, move |key_id| {
        cache.invalidate(key_id);
        tracing::info!(%key_id, "key deleted after its scheduled date; material destroyed");
    });
}
