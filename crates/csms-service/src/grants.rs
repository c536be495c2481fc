//! Grants (csms-api.md §3.4): a project shares one of its secrets with a
//! user of any account, who may then read it (show it, list its versions,
//! read a version) by naming the secret's id where a name goes, under the
//! user's own project path. Everything else stays the owner's.
//!
//! Tenancy stays the first wall: a secret is found in the caller's project
//! by name first; only a name that is not there and is a secret id is
//! looked up as a grant to the caller's user, checked here (never by the
//! gateway alone) on every read. Without an active grant the answer is the
//! one for a secret that does not exist.

use common::identity::CallerIdentity;

use crate::{
    domain::{
        Rejection, SecretRecord,
        grants::{GrantRecord, parse_validity, validate_grantee},
    },
    error::CsmsError,
    secrets::invalid,
    service::CsmsService,
};

/// A create- or update-grant request (GrantSecretReqBody).
#[derive(Debug, Default)]
pub struct GrantRequest {
    /// The secret's id.
    pub resource_id: String,
    /// `SECRET` (secret groups do not exist here).
    pub resource_type: String,
    /// `"0"`: a user (user groups do not exist here).
    pub grantee_type: String,
    /// The user's id.
    pub grantee_target_id: String,
    /// `YYYY-MM-DD`, the last day of the grant.
    pub validity_time: Option<String>,
}

/// A secret a caller may read, and the identity that reads it: the
/// caller's own, or, through a grant, the owner project's with the
/// caller's user (kms-service then finds the secret's key in its project).
#[derive(Debug)]
pub struct Readable {
    /// The secret.
    pub secret: SecretRecord,
    /// Who opens its versions.
    pub reader: CallerIdentity,
}

impl GrantRequest {
    /// The checked grantee and validity (ms).
    fn checked(&self, now_ms: i64) -> Result<(String, Option<i64>), Rejection> {
        if !(1..=64).contains(&self.resource_id.len()) {
            return Err(invalid("resource_id must be 1-64 characters"));
        }
        match self.resource_type.as_str() {
            "SECRET" => {}
            "GROUP" => return Err(invalid("type GROUP is not supported: secret groups do not exist here")),
            _ => return Err(invalid("type must be SECRET or GROUP")),
        }
        match self.grantee_type.as_str() {
            "0" => {}
            "2" => return Err(invalid("grantee_type 2 (user group) is not supported: user groups do not exist here")),
            _ => return Err(invalid("grantee_type must be 0 (user) or 2 (user group)")),
        }
        validate_grantee(&self.grantee_target_id)?;
        let validity = self.validity_time.as_deref().map(|d| parse_validity(d, now_ms)).transpose()?;
        Ok((self.grantee_target_id.clone(), validity))
    }
}

impl CsmsService {
    /// create-grants: shares the project's secret `resource_id` with a user
    /// (again: updates that grant's validity).
    pub async fn create_grant(&self, caller: &CallerIdentity, req: GrantRequest) -> Result<GrantRecord, CsmsError> {
        let now = common::now_ms();
        let (grantee, validity_ms) = req.checked(now)?;
        let secret = self.secret_by_id(caller, &req.resource_id).await?;
        if grantee == caller.user_id {
            return Err(invalid("a secret cannot be granted to its own project's caller").into());
        }
        let grant = GrantRecord {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: caller.project_id.clone(),
            secret_id: secret.id.clone(),
            grantee_id: grantee,
            create_ms: now,
            update_ms: now,
            validity_ms,
        };
        let stored = self.store.put_grant(&grant).await?;
        tracing::info!(secret_id = %secret.id, grant_id = %stored.id, "secret granted");
        Ok(stored)
    }

    /// list-grants: the project's secret `resource_id` and its grants.
    pub async fn list_grants(
        &self, caller: &CallerIdentity, resource_id: &str,
    ) -> Result<(SecretRecord, Vec<GrantRecord>), CsmsError> {
        let secret = self.secret_by_id(caller, resource_id).await?;
        let grants = self.store.grants_of(&secret.id).await?;
        Ok((secret, grants))
    }

    /// update-grant: the validity of the grant of `resource_id` to the
    /// request's grantee.
    pub async fn update_grant(
        &self, caller: &CallerIdentity, resource_id: &str, req: GrantRequest,
    ) -> Result<GrantRecord, CsmsError> {
        let now = common::now_ms();
        let (grantee, validity_ms) = req.checked(now)?;
        if req.resource_id != resource_id {
            return Err(invalid("resource_id in the body must be the query's").into());
        }
        let secret = self.secret_by_id(caller, resource_id).await?;
        Ok(self.store.update_grant(&secret.id, &grantee, validity_ms, now).await?)
    }

    /// delete-grant: the grant of `resource_id` to `grantee`, or all of
    /// its grants. Reads through a deleted grant stop at once: every read
    /// checks the grant.
    pub async fn delete_grant(
        &self, caller: &CallerIdentity, resource_id: &str, grantee: Option<&str>,
    ) -> Result<(), CsmsError> {
        if grantee.is_some_and(|g| g.is_empty() || g.len() > 64) {
            return Err(invalid("grantee_user must be 1-64 characters").into());
        }
        let secret = self.secret_by_id(caller, resource_id).await?;
        let deleted = self.store.delete_grants(&secret.id, grantee).await?;
        if grantee.is_some() && deleted == 0 {
            return Err(Rejection::ResourceNotFound("grant").into());
        }
        tracing::info!(secret_id = %secret.id, deleted, "secret grants deleted");
        Ok(())
    }

    /// The secret a read names: the caller's own by name, or one granted to
    /// the caller's user by id.
    pub async fn readable_secret(&self, caller: &CallerIdentity, name: &str) -> Result<Readable, CsmsError> {
        match self.show_secret(caller, name).await {
            Ok(secret) => Ok(Readable { secret, reader: caller.clone() }),
            Err(CsmsError::Rejected(Rejection::SecretNotFound)) => {
                self.granted(caller, name).await?.ok_or(Rejection::SecretNotFound.into())
            }
            Err(e) => Err(e),
        }
    }

    /// The secret with id `id` when it is granted to the caller's user now.
    pub(crate) async fn granted(&self, caller: &CallerIdentity, id: &str) -> Result<Option<Readable>, CsmsError> {
        if caller.user_id.is_empty() || id.len() != 36 || uuid::Uuid::parse_str(id).is_err() {
            return Ok(None);
        }
        let Some(secret) = self.store.granted_secret(id, &caller.user_id, common::now_ms()).await? else {
            return Ok(None);
        };
        let reader = CallerIdentity {
            domain_id: caller.domain_id.clone(),
            project_id: secret.project_id.clone(),
            user_id: caller.user_id.clone(),
            request_id: caller.request_id.clone(),
        };
        tracing::info!(secret_id = %secret.id, user_id = %caller.user_id, "secret read through a grant");
        Ok(Some(Readable { secret, reader }))
    }
}
