//! The state every csms-service operation shares. The operations live in one
//! module per resource ([`crate::secrets`], [`crate::versions`],
//! [`crate::stages`], [`crate::tags`], [`crate::backup`]), over domain types;
//! [`crate::grpc`] adapts them to `csms.v1`.

use std::sync::Arc;

use crate::{kms::KmsClient, store::SecretStore};

/// Shared state of the service.
#[derive(Debug)]
pub struct CsmsService {
    pub(crate) store: Arc<dyn SecretStore>,
    pub(crate) kms: KmsClient,
    pub(crate) secret_quota: u64,
}

impl CsmsService {
    /// A service over `store`, sealing with data keys from `kms`.
    pub fn new(store: Arc<dyn SecretStore>, kms: KmsClient, secret_quota: u64) -> Self {
        Self { store, kms, secret_quota }
    }
}
