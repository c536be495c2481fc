//! batch-import-secrets (csms-api.md §3.3): each element is created exactly
//! as create-secret would create it, one after another, each in its own
//! transaction. A refused element is reported and never stops the others;
//! the quota is checked per element, so a batch cannot go past it.

use common::identity::CallerIdentity;
use proto::limits::MAX_BATCH_IMPORT;

use crate::{
    error::CsmsError,
    secrets::{NewSecret, invalid},
    service::CsmsService,
};

/// The outcome of one element.
#[derive(Debug)]
pub struct Imported {
    /// The element's name, as given.
    pub name: String,
    /// Why it was not created.
    pub error: Option<CsmsError>,
}

impl CsmsService {
    /// Creates each secret of the batch, in order.
    pub async fn batch_import(
        &self, caller: &CallerIdentity, secrets: Vec<NewSecret>,
    ) -> Result<Vec<Imported>, CsmsError> {
        if secrets.is_empty() || secrets.len() > MAX_BATCH_IMPORT {
            return Err(invalid(format!("secrets takes 1-{MAX_BATCH_IMPORT} elements")).into());
        }
        let mut outcomes = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let name = secret.name.clone();
            let error = self.create_secret(caller, secret).await.err();
            outcomes.push(Imported { name, error });
        }
        let created = outcomes.iter().filter(|o| o.error.is_none()).count();
        tracing::info!(project_id = %caller.project_id, created, failed = outcomes.len() - created, "batch import");
        Ok(outcomes)
    }
}
