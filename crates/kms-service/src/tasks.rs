//! The background loops every replica runs: scheduled rotation, the
//! expiry of imported material, and the purge of keys past their deletion
//! date. Each re-checks on the locked row, so replicas need not
//! coordinate.

use std::sync::Arc;

use common::purge::JobNames;
use tokio_util::sync::CancellationToken;

use crate::{cache, error::KmsError, service, store::KeyStore};

/// Runs `work` with the database's clock, which every replica shares, as
/// a [`common::purge::spawn_job`].
fn spawn_due<F, Fut>(
    service: Arc<service::KmsService>, interval: std::time::Duration, shutdown: CancellationToken, names: JobNames,
    work: F,
) where
    F: Fn(Arc<service::KmsService>, i64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<usize, KmsError>> + Send,
{
    let work = Arc::new(work);
    common::purge::spawn_job(interval, shutdown, names, move || {
        let (service, work) = (service.clone(), work.clone());
        async move {
            let now_ms = service.store.clock_ms().await.map_err(KmsError::from)?;
            work(service, now_ms).await.map(|done| done as u64)
        }
    });
}

/// Rotates keys whose automatic rotation is due. Every replica runs it;
/// each rotation re-checks "due" on the locked row, so a key is rotated
/// once per period whichever replica gets there first (see `rotation`).
pub(crate) fn spawn_rotation(
    service: Arc<service::KmsService>, interval: std::time::Duration, day_ms: i64, shutdown: CancellationToken,
) {
    let names = JobNames::counted(
        "opendew_kms_rotation_runs_total",
        "opendew_kms_keys_rotated_total",
        "scheduled key rotation",
    );
    spawn_due(service, interval, shutdown, names, move |service, now_ms| async move {
        service.rotate_due(now_ms, day_ms).await.map(|rotated| rotated.len())
    });
}

/// Deletes imported material past its expiry (the key goes back to pending
/// import). Safe on several replicas: each deletion re-checks the expiry on
/// the locked row.
pub(crate) fn spawn_import_expiry(
    service: Arc<service::KmsService>, interval: std::time::Duration, shutdown: CancellationToken,
) {
    let names = JobNames {
        runs_metric: None,
        done_metric: "opendew_kms_imports_expired_total",
        what: "imported material expiry",
    };
    common::purge::spawn_job(interval, shutdown, names, move || {
        let service = service.clone();
        async move {
            let now_ms = service.store.clock_ms().await.map_err(KmsError::from)?;
            service.expire_imports(now_ms).await.map(|expired| expired.len() as u64)
        }
    });
}

/// Deletes keys past their scheduled deletion date, with their material,
/// and forgets them in this replica's cache.
pub(crate) fn spawn_purge(
    store: Arc<dyn KeyStore>, cache: Arc<cache::KeyCache>, interval: std::time::Duration, shutdown: CancellationToken,
) {
    let names = JobNames::counted("opendew_kms_purge_runs_total", "opendew_kms_keys_purged_total", "key purge");
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
