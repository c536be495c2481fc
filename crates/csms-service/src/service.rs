//! The state every csms-service operation shares. The operations live in one
//! module per resource ([`crate::secrets`], [`crate::versions`],
//! [`crate::stages`], [`crate::tags`], [`crate::backup`], [`crate::events`],
//! [`crate::rotation`], [`crate::batch`]), over domain types;
//! [`crate::grpc`] adapts them to `csms.v1`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{cache::ReadCache, config::CsmsJobs, domain::SecretRecord, kms::KmsClient, store::SecretStore};

/// Shared state of the service.
#[derive(Debug)]
pub struct CsmsService {
    pub(crate) store: Arc<dyn SecretStore>,
    pub(crate) kms: KmsClient,
    pub(crate) secret_quota: u64,
    /// Events per project.
    pub(crate) event_quota: u64,
    pub(crate) jobs: CsmsJobs,
    /// Woken after a write that may have fired an event, so that the
    /// delivery task takes the record at once rather than at its next tick.
    pub(crate) deliveries: Arc<tokio::sync::Notify>,
    /// The read path's memory, kept current by the store's change feed.
    pub(crate) reads: Arc<ReadCache>,
    /// list-secrets pages, trusted under the read cache's epoch
    /// (common::pages).
    pub(crate) pages: common::pages::PageCache<crate::domain::PageQuery, crate::domain::Page<SecretRecord>>,
    /// Opens registered database instances (`None`: no key configured).
    pub(crate) instance_key: Option<crate::instances::InstanceKey>,
    /// Rotations in flight per database instance (project, id).
    pub(crate) instance_slots: crate::databases::InstanceSlots,
}

impl CsmsService {
    /// A service over `store`, sealing with data keys from `kms`. Starts
    /// the store's change feed into the read cache (until `shutdown`): the
    /// one way a service is made, so no cache ever runs without its
    /// invalidation.
    pub async fn new(
        store: Arc<dyn SecretStore>, kms: KmsClient, secret_quota: u64, jobs: CsmsJobs, shutdown: &CancellationToken,
    ) -> Result<Self, common::db::StoreError> {
        let reads = Arc::new(ReadCache::default());
        let feed = reads.clone();
        store.watch(Arc::new(move |event| feed.apply(event)), shutdown.clone()).await?;
        reads.spawn_sweeper(std::time::Duration::from_secs(1), shutdown.clone());
        let pages = common::pages::PageCache::new(
            common::pages::PAGE_ROWS,
            common::pages::PAGE_TTL,
            |page: &crate::domain::Page<SecretRecord>| u32::try_from(page.items.len()).unwrap_or(u32::MAX),
        );
        let deliveries = Arc::new(tokio::sync::Notify::new());
        let instance_slots = crate::databases::InstanceSlots::new(jobs.rotations_per_instance);
        let event_quota = jobs.event_quota;
        Ok(Self {
            store,
            kms,
            secret_quota,
            event_quota,
            jobs,
            deliveries,
            reads,
            pages,
            instance_key: None,
            instance_slots,
        })
    }

    /// The service opening database instances with `key`.
    pub fn with_instance_key(mut self, key: Option<crate::instances::InstanceKey>) -> Self {
        self.instance_key = key;
        self
    }

    /// Tells the delivery task that a record may be waiting.
    pub(crate) fn wake_deliveries(&self) {
        self.deliveries.notify_one();
    }
}
