//! Grants (kms-api.md §3.3): the key's owner lets a user, or every user of
//! a domain, use one key for some operations from the grantee's own
//! project; the grantee names the key by id. Enforced where every
//! operation finds its key (`KmsService::cached_key`, `load_key_for`): a
//! key of another project is found only through a grant allowing that very
//! operation. Grants are cached with their key and a change to them
//! invalidates it everywhere, so a revoke or retire takes effect within the
//! bound a disable does.

use common::identity::CallerIdentity;

use crate::{
    domain::{self, GrantOperation, GrantRecord, KeyState, PrincipalType, Rejection},
    error::KmsError,
    service::{KmsService, principal},
    store::GrantLimits,
};

/// create-grant, as the domain sees it.
#[derive(Debug, Clone, Default)]
pub struct CreateGrant {
    /// The key (an id, or an alias of the caller's project).
    pub key_id: String,
    /// A user id or domain id.
    pub grantee: String,
    /// "user" (default) or "domain".
    pub grantee_type: String,
    /// Operation names.
    pub operations: Vec<String>,
    /// Optional name.
    pub name: String,
    /// Optional retiring principal.
    pub retiring_principal: String,
}

/// One page of grants.
#[derive(Debug)]
pub struct GrantPage {
    /// Oldest first.
    pub grants: Vec<GrantRecord>,
    /// How many in all.
    pub total: u64,
    /// Offset of the next page, when there is one.
    pub next_offset: Option<u64>,
}

fn page_limit(limit: Option<u32>) -> Result<u32, KmsError> {
    match limit {
        None => Ok(domain::MAX_GRANT_PAGE),
        Some(n @ 1..) if n <= domain::MAX_GRANT_PAGE => Ok(n),
        Some(_) => Err(Rejection::InvalidLimit.into()),
    }
}

fn page(all: Vec<GrantRecord>, offset: u64, limit: u32) -> GrantPage {
    let total = all.len() as u64;
    let grants: Vec<_> = all.into_iter().skip(offset as usize).take(limit as usize).collect();
    let end = offset.saturating_add(grants.len() as u64);
    GrantPage { grants, total, next_offset: (end < total).then_some(end) }
}

impl KmsService {
    /// create-grant: by the key's owner, or by a grantee allowed to
    /// create grants, who may pass on no more than it holds.
    pub async fn create_grant(&self, caller: &CallerIdentity, req: CreateGrant) -> Result<String, KmsError> {
        domain::validate_principal(&req.grantee)?;
        let grantee_type = match req.grantee_type.as_str() {
            "" => PrincipalType::User,
            other => PrincipalType::parse(other).ok_or(Rejection::InvalidParameter("grantee_principal_type"))?,
        };
        if req.operations.is_empty() {
            return Err(Rejection::MissingParameter("operations").into());
        }
        let mut operations = Vec::new();
        for name in &req.operations {
            let op = GrantOperation::parse(name).ok_or(Rejection::InvalidParameter("operations"))?;
            if !operations.contains(&op) {
                operations.push(op);
            }
        }
        if operations == [GrantOperation::CreateGrant] {
            return Err(Rejection::GrantOnlyCreateGrant.into());
        }
        let retiring = (!req.retiring_principal.is_empty()).then_some(req.retiring_principal);
        if let Some(r) = &retiring {
            domain::validate_principal(r)?;
        }
        domain::validate_grant_name(&req.name)?;
        let key = self.load_key_for(caller, &req.key_id, Some(GrantOperation::CreateGrant)).await?;
        if key.project_id != caller.project_id {
            // A re-grant: within what the caller's own grants allow.
            let mine: Vec<GrantOperation> = self
                .store
                .grants_of(key.key_id)
                .await?
                .into_iter()
                .filter(|g| g.names(principal(caller)))
                .flat_map(|g| g.operations)
                .collect();
            if !operations.iter().all(|op| mine.contains(op)) {
                return Err(Rejection::NoPermission.into());
            }
        }
        let grant = GrantRecord {
            grant_id: hex::encode(rand::random::<[u8; 32]>()),
            key_id: key.key_id,
            project_id: key.project_id.clone(),
            grantee: req.grantee,
            grantee_type,
            operations,
            issuing_principal: caller.user_id.clone(),
            retiring_principal: retiring,
            name: req.name,
            creation_ms: common::now_ms(),
        };
        let check = Box::new(|key: &mut domain::KeyRecord| {
            if key.default_key {
                return Err(Rejection::DefaultKeyForbidden);
            }
            if key.state == KeyState::PendingDeletion {
                return Err(Rejection::KeyPendingDeletion);
            }
            Ok(())
        });
        let limits = GrantLimits { per_key: domain::MAX_GRANTS_PER_KEY, per_project: domain::MAX_GRANTS_PER_PROJECT };
        let result = self.store.create_grant(&grant, check, limits).await;
        self.forget(grant.key_id);
        result.map_err(KmsError::from)?;
        tracing::info!(key_id = %grant.key_id, grant_id = %grant.grant_id, grantee = %grant.grantee, "grant created");
        Ok(grant.grant_id)
    }

    /// list-grants: the owner's view of a key's grants.
    pub async fn list_grants(
        &self, caller: &CallerIdentity, key_id: &str, limit: Option<u32>, offset: u64,
    ) -> Result<GrantPage, KmsError> {
        let limit = page_limit(limit)?;
        let key = self.load_key(caller, key_id).await?;
        Ok(page(self.store.grants_of(key.key_id).await?, offset, limit))
    }

    /// revoke-grant: by the key's owner.
    pub async fn revoke_grant(&self, caller: &CallerIdentity, key_id: &str, grant_id: &str) -> Result<(), KmsError> {
        let grant_id = domain::parse_grant_id(grant_id)?;
        let key = self.load_key(caller, key_id).await?;
        let grant = self.store.find_grant(&grant_id).await?.ok_or(Rejection::InvalidGrantId)?;
        if grant.key_id != key.key_id {
            // Another project's grant is as unknown as an absent one.
            return Err(if grant.project_id == caller.project_id {
                Rejection::GrantKeyMismatch
            } else {
                Rejection::InvalidGrantId
            }
            .into());
        }
        self.delete_grant(&grant).await
    }

    /// retire-grant: by the issuer, the retiring principal, or a grantee
    /// allowed to retire. Someone with no part in the grant learns nothing
    /// of it (an unknown grant); a part without the right is refused.
    pub async fn retire_grant(&self, caller: &CallerIdentity, key_id: &str, grant_id: &str) -> Result<(), KmsError> {
        let grant_id = domain::parse_grant_id(grant_id)?;
        let key_id = domain::parse_key_id(key_id)?;
        let grant = self.store.find_grant(&grant_id).await?.ok_or(Rejection::InvalidGrantId)?;
        let who = principal(caller);
        let involved = grant.project_id == caller.project_id
            || grant.names(who)
            || grant.issuing_principal == caller.user_id
            || grant.retiring_principal.as_deref().is_some_and(|r| r == caller.user_id || r == caller.domain_id);
        if !involved {
            return Err(Rejection::InvalidGrantId.into());
        }
        if grant.key_id != key_id {
            return Err(Rejection::GrantKeyMismatch.into());
        }
        if !grant.retirable_by(who) {
            return Err(Rejection::NoPermission.into());
        }
        self.delete_grant(&grant).await
    }

    async fn delete_grant(&self, grant: &GrantRecord) -> Result<(), KmsError> {
        let deleted = self.store.delete_grant(grant).await;
        self.forget(grant.key_id);
        if !deleted? {
            return Err(Rejection::InvalidGrantId.into());
        }
        tracing::info!(key_id = %grant.key_id, grant_id = %grant.grant_id, "grant removed");
        Ok(())
    }

    /// list-retirable-grants: the grants naming the caller (its user or its
    /// domain) as retiring principal.
    pub async fn list_retirable_grants(
        &self, caller: &CallerIdentity, limit: Option<u32>, offset: u64,
    ) -> Result<GrantPage, KmsError> {
        let limit = page_limit(limit)?;
        if i64::try_from(offset).is_err() {
            return Err(Rejection::InvalidMarker.into());
        }
        let principals = [caller.user_id.as_str(), caller.domain_id.as_str()];
        let (grants, total) = self.store.retirable_grants(&principals, offset, limit).await?;
        let end = offset.saturating_add(grants.len() as u64);
        Ok(GrantPage { grants, total, next_offset: (end < total).then_some(end) })
    }
}
