//! The background loops every replica runs: scheduled rotation, the
//! expiry watcher and the purge of secrets past their recovery window
//! (notification delivery has its own loop, `delivery`). Each re-checks on
//! the locked row, so replicas need not coordinate.

use std::sync::Arc;

use common::purge::JobNames;
use tokio_util::sync::CancellationToken;

use crate::{service::CsmsService, store::SecretStore};

/// Rotates the secrets whose automatic rotation is due, by the database's
/// clock (see [`CsmsService::rotate_due`]).
pub(crate) fn spawn_rotation(service: Arc<CsmsService>, interval: std::time::Duration, shutdown: CancellationToken) {
    let names = JobNames::counted(
        "opendew_csms_rotation_runs_total",
        "opendew_csms_secrets_rotated_total",
        "scheduled secret rotation",
    );
    common::purge::spawn_job(interval, shutdown, names, move || {
        let service = service.clone();
        async move { service.rotate_due(service.store.clock_ms().await?).await.map(|n| n as u64) }
    });
}

/// Fires `SECRET_VERSION_EXPIRED` for versions whose expiry has come; each
/// firing is re-checked on the locked secret and marked, so it happens once
/// per expiry setting.
pub(crate) fn spawn_expiry_watcher(
    service: Arc<CsmsService>, interval: std::time::Duration, shutdown: CancellationToken,
) {
    let names =
        JobNames { runs_metric: None, done_metric: "opendew_csms_expiries_fired_total", what: "expiry watcher" };
    common::purge::spawn_job(interval, shutdown, names, move || {
        let service = service.clone();
        async move { service.fire_expiries().await }
    });
}

/// Deletes notification records past their retention (three months,
/// [`crate::events::RECORD_RETENTION_MS`]), a thousand at a time: they are
/// purged, not only hidden from the list.
pub(crate) fn spawn_record_purge(
    store: Arc<dyn SecretStore>, interval: std::time::Duration, shutdown: CancellationToken,
) {
    let names = JobNames::quiet("opendew_csms_notification_records_purged_total", "notification record purge");
    common::purge::spawn_job(interval, shutdown, names, move || {
        let store = store.clone();
        async move {
            let before = store.clock_ms().await? - crate::events::RECORD_RETENTION_MS;
            let mut purged = 0;
            loop {
                let n = store.purge_notifications(before, 1_000).await?;
                purged += n;
                if n < 1_000 {
                    return Ok::<u64, crate::store::StoreError>(purged);
                }
            }
        }
    });
}

/// Deletes secrets whose scheduled deletion time has passed, with all their
/// versions (firing SECRET_DELETED); each deletion is re-checked on the
/// locked row, so it fires once.
pub(crate) fn spawn_purge(store: Arc<dyn SecretStore>, interval: std::time::Duration, shutdown: CancellationToken) {
    let names = JobNames::counted("opendew_csms_purge_runs_total", "opendew_csms_secrets_purged_total", "secret purge");
    let purge = move || {
        let store = store.clone();
        // Due by the database's clock, which every replica shares.
        async move { store.purge_due(store.clock_ms().await?).await }
    };
    common::purge::spawn(interval, shutdown, names, purge, |secret_id| {
        tracing::info!(%secret_id, "secret deleted after its recovery window");
    });
}
