//! The state every csms-service operation shares. The operations live in one
//! module per resource ([`crate::secrets`], [`crate::versions`],
//! [`crate::stages`], [`crate::tags`], [`crate::backup`], [`crate::events`],
//! [`crate::rotation`], [`crate::batch`]), over domain types;
//! [`crate::grpc`] adapts them to `csms.v1`.

use std::sync::Arc;

use crate::{config::CsmsJobs, kms::KmsClient, store::SecretStore};

/// Shared state of the service.
#[derive(Debug)]
pub struct CsmsService {
    pub(crate) store: Arc<dyn SecretStore>,
    pub(crate) kms: KmsClient,
    pub(crate) secret_quota: u64,
    pub(crate) jobs: CsmsJobs,
    /// Woken after a write that may have fired an event, so that the
    /// delivery task takes the record at once rather than at its next tick.
    pub(crate) deliveries: Arc<tokio::sync::Notify>,
}

impl CsmsService {
    /// A service over `store`, sealing with data keys from `kms`.
    pub fn new(store: Arc<dyn SecretStore>, kms: KmsClient, secret_quota: u64, jobs: CsmsJobs) -> Self {
        Self { store, kms, secret_quota, jobs, deliveries: Arc::new(tokio::sync::Notify::new()) }
    }

    /// Tells the delivery task that a record may be waiting.
    pub(crate) fn wake_deliveries(&self) {
        self.deliveries.notify_one();
    }
}
