//! Version stages: show, move and delete a named pointer to a version.
//! `SYSCURRENT` and `SYSPREVIOUS` are moved only by new versions;
//! `SYSPENDING` only by rotation.

use common::identity::CallerIdentity;

use crate::{
    domain::{self, Rejection, SYSCURRENT, SYSPENDING, SYSPREVIOUS},
    error::CsmsError,
    secrets::{invalid, writable},
    service::CsmsService,
    store::StageRecord,
};

impl CsmsService {
    /// The stage `stage` of secret `name`.
    pub async fn show_stage(&self, caller: &CallerIdentity, name: &str, stage: &str) -> Result<StageRecord, CsmsError> {
        let secret = self.show_secret(caller, name).await?;
        if domain::validate_stage_name(stage).is_err() {
            return Err(Rejection::ResourceNotFound("stage").into());
        }
        Ok(self.store.get_stage(&secret.id, stage).await?.ok_or(Rejection::ResourceNotFound("stage"))?)
    }

    /// Points `stage` at the version `version_id`.
    pub async fn update_stage(
        &self, caller: &CallerIdentity, name: &str, stage: &str, version_id: &str,
    ) -> Result<StageRecord, CsmsError> {
        self.show_secret(caller, name).await?;
        domain::validate_user_stage(stage)?;
        if version_id.is_empty() {
            return Err(invalid("version_id is required").into());
        }
        let number = domain::parse_version_id(version_id)?.ok_or(Rejection::ResourceNotFound("version"))?;
        Ok(self.store.set_stage(&caller.project_id, name, stage, number, writable()).await?)
    }

    /// Removes a user stage.
    pub async fn delete_stage(&self, caller: &CallerIdentity, name: &str, stage: &str) -> Result<(), CsmsError> {
        self.show_secret(caller, name).await?;
        if stage == SYSCURRENT || stage == SYSPREVIOUS || stage == SYSPENDING {
            return Err(Rejection::SystemStage.into());
        }
        if domain::validate_stage_name(stage).is_err() {
            return Err(Rejection::ResourceNotFound("stage").into());
        }
        self.store.delete_stage(&caller.project_id, name, stage, writable()).await?;
        Ok(())
    }
}
