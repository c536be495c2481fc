//! The secret lifecycle beyond create and read: listing, updates, deletion
//! with recovery, versions, stages and tags. Each operation validates
//! first, then makes one store call whose transaction re-checks the
//! secret's state under its row lock.

use common::identity::CallerIdentity;
use proto::csms::v1 as pb;

use crate::{
    convert,
    domain::{self, MAX_STAGES, MAX_TAGS, Rejection, SYSCURRENT, SYSPREVIOUS, SecretRecord},
    error::CsmsError,
    service::CsmsService,
    store::{SecretCheck, StageRecord},
};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

fn invalid(msg: impl Into<String>) -> Rejection {
    Rejection::InvalidParameter(msg.into())
}

/// Metadata and values may change only while the secret is enabled.
pub(crate) fn writable() -> SecretCheck {
    Box::new(|s: &SecretRecord| s.check_writable())
}

fn page_size(limit: u32) -> Result<u32, CsmsError> {
    match limit {
        0 => Ok(DEFAULT_PAGE),
        1..=MAX_PAGE => Ok(limit),
        _ => Err(invalid("limit must be 1-1000").into()),
    }
}

fn parse_number(version_id: &str) -> Result<i32, CsmsError> {
    domain::parse_version_id(version_id)?.ok_or(Rejection::ResourceNotFound("version").into())
}

fn stage_proto(stage: &StageRecord, secret_name: &str) -> pb::Stage {
    pb::Stage {
        name: stage.name.clone(),
        update_time_ms: stage.update_ms,
        secret_name: secret_name.to_owned(),
        version_id: format!("v{}", stage.version),
    }
}

fn validate_tag(tag: &pb::Tag) -> Result<(String, String), CsmsError> {
    domain::validate_tag_key(&tag.key)?;
    domain::validate_tag_value(&tag.value)?;
    Ok((tag.key.clone(), tag.value.clone()))
}

impl CsmsService {
    /// A secret by id: a malformed id cannot exist.
    async fn load_by_id(&self, caller: &CallerIdentity, id: &str) -> Result<SecretRecord, CsmsError> {
        if uuid::Uuid::parse_str(id).is_err() || id.len() != 36 {
            return Err(Rejection::ResourceNotFound("secret").into());
        }
        self.store.get_secret_by_id(&caller.project_id, id).await?.ok_or(Rejection::ResourceNotFound("secret").into())
    }

    pub(crate) async fn list_secrets(
        &self,
        caller: &CallerIdentity,
        req: pb::ListSecretsRequest,
    ) -> Result<pb::ListSecretsResponse, CsmsError> {
        let limit = page_size(req.limit)?;
        if !req.marker.is_empty() {
            domain::validate_name(&req.marker)?;
        }
        let marker = (!req.marker.is_empty()).then_some(req.marker.as_str());
        let event = (!req.event_name.is_empty()).then_some(req.event_name.as_str());
        let mut secrets = self.store.list_secrets(&caller.project_id, marker, limit + 1, event).await?;
        let more = secrets.len() > limit as usize;
        secrets.truncate(limit as usize);
        Ok(pb::ListSecretsResponse { secrets: secrets.iter().map(convert::secret_to_proto).collect(), more })
    }

    pub(crate) async fn update_secret(
        &self,
        caller: &CallerIdentity,
        req: pb::UpdateSecretRequest,
    ) -> Result<pb::SecretResponse, CsmsError> {
        self.load_secret(caller, &req.name).await?;
        if let Some(key) = &req.kms_key_id {
            if key.len() < 2 || key.len() > 64 {
                return Err(invalid("kms_key_id must be 2-64 characters").into());
            }
            // The key must be usable now: ask kms-service for a data key.
            self.kms.create_data_key(caller, key, b"opendew/csms/key-check").await?;
        }
        if req.description.as_ref().is_some_and(|d| d.len() > domain::MAX_DESCRIPTION_LEN) {
            return Err(invalid("description is limited to 2048 bytes").into());
        }
        if let Some(period) = &req.rotation_period {
            domain::validate_rotation_period(period)?;
        }
        if req.set_event_subscriptions
            && (req.event_subscriptions.len() > 1
                || req.event_subscriptions.iter().any(|e| e.is_empty() || e.len() > 32))
        {
            return Err(invalid("event_subscriptions takes at most one event name of 1-32 characters").into());
        }
        let change = Box::new(move |s: &mut SecretRecord| {
            s.state.check_value_access()?;
            if let Some(key) = req.kms_key_id {
                s.kms_key_id = key;
            }
            if let Some(description) = req.description {
                s.description = description;
            }
            if let Some(period) = req.rotation_period {
                s.rotation_period = period;
            }
            if let Some(auto) = req.auto_rotation {
                s.auto_rotation = auto;
            }
            if s.auto_rotation && s.rotation_period.is_empty() {
                return Err(invalid("rotation_period is required when auto_rotation is true"));
            }
            if req.set_event_subscriptions {
                s.event_subscriptions = req.event_subscriptions;
            }
            if let Some(urn) = req.rotation_func_urn {
                s.rotation_func_urn = urn;
            }
            s.update_ms = common::now_ms();
            s.next_rotation_ms = s.auto_rotation.then(|| s.update_ms + domain::period_ms(&s.rotation_period));
            Ok(())
        });
        let secret = self.store.update_secret(&caller.project_id, &req.name, change).await?;
        Ok(pb::SecretResponse { secret: Some(convert::secret_to_proto(&secret)) })
    }

    pub(crate) async fn delete_secret(
        &self,
        caller: &CallerIdentity,
        req: pb::SecretName,
    ) -> Result<pb::Empty, CsmsError> {
        self.load_secret(caller, &req.name).await?;
        if !self.store.delete_secret(&caller.project_id, &req.name).await? {
            return Err(Rejection::SecretNotFound.into());
        }
        tracing::info!(project_id = %caller.project_id, "secret deleted");
        Ok(pb::Empty {})
    }

    pub(crate) async fn schedule_deletion(
        &self,
        caller: &CallerIdentity,
        req: pb::ScheduleSecretDeletionRequest,
    ) -> Result<pb::SecretResponse, CsmsError> {
        let days = if req.recovery_window_in_days == 0 { 30 } else { req.recovery_window_in_days };
        if !(7..=30).contains(&days) {
            return Err(invalid("recovery_window_in_days must be 7-30").into());
        }
        self.load_secret(caller, &req.name).await?;
        let change = Box::new(move |s: &mut SecretRecord| s.schedule_deletion(common::now_ms(), days));
        let secret = self.store.update_secret(&caller.project_id, &req.name, change).await?;
        Ok(pb::SecretResponse { secret: Some(convert::secret_to_proto(&secret)) })
    }

    pub(crate) async fn restore(
        &self,
        caller: &CallerIdentity,
        req: pb::SecretName,
    ) -> Result<pb::SecretResponse, CsmsError> {
        self.load_secret(caller, &req.name).await?;
        let change = Box::new(|s: &mut SecretRecord| s.restore(common::now_ms()));
        let secret = self.store.update_secret(&caller.project_id, &req.name, change).await?;
        Ok(pb::SecretResponse { secret: Some(convert::secret_to_proto(&secret)) })
    }

    pub(crate) async fn create_version(
        &self,
        caller: &CallerIdentity,
        req: pb::CreateSecretVersionRequest,
    ) -> Result<pb::VersionMetadataResponse, CsmsError> {
        let secret = self.load_secret(caller, &req.name).await?;
        let (kind, value) = convert::value_from_proto(req.value)
            .ok_or_else(|| invalid("exactly one of secret_string and secret_binary is required"))?;
        let value = zeroize::Zeroizing::new(value);
        domain::validate_value(kind, &value)?;
        if req.version_stages.len() > MAX_STAGES {
            return Err(Rejection::TooManyStagesInRequest.into());
        }
        let mut stages = if req.version_stages.is_empty() { vec![SYSCURRENT.to_owned()] } else { req.version_stages };
        for stage in &stages {
            domain::validate_stage_name(stage)?;
        }
        stages.sort();
        stages.dedup();
        if let Some(expire) = req.expire_time_ms {
            domain::validate_expire_time(expire)?;
        }
        secret.state.check_value_access()?;
        let (secret, number) = self.store.reserve_version(&caller.project_id, &req.name, writable()).await?;
        let now = common::now_ms();
        let mut version = self.seal_version(caller, &secret.id, number, &secret.kms_key_id, kind, &value, now).await?;
        version.expire_ms = req.expire_time_ms;
        version.stages = stages;
        let stored = self.store.insert_version(&caller.project_id, &version, writable()).await?;
        tracing::info!(secret_id = %secret.id, version = number, "secret version created");
        Ok(pb::VersionMetadataResponse { metadata: Some(convert::version_metadata_to_proto(&stored, &secret.name)) })
    }

    pub(crate) async fn list_versions(
        &self,
        caller: &CallerIdentity,
        req: pb::ListSecretVersionsRequest,
    ) -> Result<pb::ListSecretVersionsResponse, CsmsError> {
        let secret = self.load_secret(caller, &req.name).await?;
        let limit = page_size(req.limit)?;
        let after = match req.marker.as_str() {
            "" => None,
            marker => Some(
                domain::parse_version_id(marker)
                    .map_err(|_| invalid("marker must be a version id"))?
                    .ok_or_else(|| invalid("marker must be a version id"))?,
            ),
        };
        let mut versions = self.store.list_versions(&secret.id, after, limit + 1).await?;
        let more = versions.len() > limit as usize;
        versions.truncate(limit as usize);
        Ok(pb::ListSecretVersionsResponse {
            versions: versions.iter().map(|v| convert::version_metadata_to_proto(v, &secret.name)).collect(),
            more,
        })
    }

    pub(crate) async fn update_version(
        &self,
        caller: &CallerIdentity,
        req: pb::UpdateVersionRequest,
    ) -> Result<pb::VersionMetadataResponse, CsmsError> {
        let secret = self.load_secret(caller, &req.name).await?;
        let expire = req.expire_time_ms.ok_or_else(|| invalid("expire_time is required"))?;
        domain::validate_expire_time(expire)?;
        let number = match domain::parse_version_id(&req.version_id)? {
            Some(n) => n,
            None => {
                self.store
                    .get_version_by_stage(&secret.id, SYSCURRENT)
                    .await?
                    .ok_or(Rejection::ResourceNotFound("version"))?
                    .number
            }
        };
        let version =
            self.store.set_version_expiry(&caller.project_id, &req.name, number, Some(expire), writable()).await?;
        Ok(pb::VersionMetadataResponse { metadata: Some(convert::version_metadata_to_proto(&version, &secret.name)) })
    }

    pub(crate) async fn show_stage(
        &self,
        caller: &CallerIdentity,
        req: pb::StageRef,
    ) -> Result<pb::StageResponse, CsmsError> {
        let secret = self.load_secret(caller, &req.name).await?;
        if domain::validate_stage_name(&req.stage).is_err() {
            return Err(Rejection::ResourceNotFound("stage").into());
        }
        let stage = self.store.get_stage(&secret.id, &req.stage).await?.ok_or(Rejection::ResourceNotFound("stage"))?;
        Ok(pb::StageResponse { stage: Some(stage_proto(&stage, &secret.name)) })
    }

    pub(crate) async fn update_stage(
        &self,
        caller: &CallerIdentity,
        req: pb::UpdateSecretStageRequest,
    ) -> Result<pb::StageResponse, CsmsError> {
        let secret = self.load_secret(caller, &req.name).await?;
        domain::validate_stage_name(&req.stage)?;
        if req.version_id.is_empty() {
            return Err(invalid("version_id is required").into());
        }
        let number = parse_number(&req.version_id)?;
        let stage = self.store.set_stage(&caller.project_id, &req.name, &req.stage, number, writable()).await?;
        Ok(pb::StageResponse { stage: Some(stage_proto(&stage, &secret.name)) })
    }

    pub(crate) async fn delete_stage(
        &self,
        caller: &CallerIdentity,
        req: pb::StageRef,
    ) -> Result<pb::Empty, CsmsError> {
        self.load_secret(caller, &req.name).await?;
        if req.stage == SYSCURRENT || req.stage == SYSPREVIOUS {
            return Err(Rejection::SystemStage.into());
        }
        if domain::validate_stage_name(&req.stage).is_err() {
            return Err(Rejection::ResourceNotFound("stage").into());
        }
        self.store.delete_stage(&caller.project_id, &req.name, &req.stage, writable()).await?;
        Ok(pb::Empty {})
    }

    pub(crate) async fn create_tag(
        &self,
        caller: &CallerIdentity,
        req: pb::SecretTagRequest,
    ) -> Result<pb::Empty, CsmsError> {
        self.load_by_id(caller, &req.secret_id).await?;
        let tag = validate_tag(&req.tag.ok_or_else(|| invalid("tag is required"))?)?;
        self.store.put_tags(&caller.project_id, &req.secret_id, &[tag], writable()).await?;
        Ok(pb::Empty {})
    }

    pub(crate) async fn delete_tag(
        &self,
        caller: &CallerIdentity,
        req: pb::DeleteSecretTagRequest,
    ) -> Result<pb::Empty, CsmsError> {
        self.load_by_id(caller, &req.secret_id).await?;
        if req.key.is_empty() || req.key.chars().count() > 255 {
            return Err(Rejection::ResourceNotFound("tag").into());
        }
        self.store.delete_tags(&caller.project_id, &req.secret_id, &[req.key], true, writable()).await?;
        Ok(pb::Empty {})
    }

    pub(crate) async fn list_tags(
        &self,
        caller: &CallerIdentity,
        req: pb::SecretId,
    ) -> Result<pb::TagsResponse, CsmsError> {
        let secret = self.load_by_id(caller, &req.secret_id).await?;
        let tags = self.store.list_tags(&secret.id).await?;
        Ok(pb::TagsResponse { tags: tags.into_iter().map(|(key, value)| pb::Tag { key, value }).collect() })
    }

    pub(crate) async fn project_tags(&self, caller: &CallerIdentity) -> Result<pb::ProjectTagsResponse, CsmsError> {
        let mut by_key: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
        for (_, tags) in self.store.secrets_with_tags(&caller.project_id).await? {
            for (key, value) in tags {
                by_key.entry(key).or_default().insert(value);
            }
        }
        Ok(pb::ProjectTagsResponse {
            tags: by_key
                .into_iter()
                .map(|(key, values)| pb::TagValues { key, values: values.into_iter().collect() })
                .collect(),
        })
    }

    pub(crate) async fn batch_tags(
        &self,
        caller: &CallerIdentity,
        req: pb::BatchTagsRequest,
    ) -> Result<pb::Empty, CsmsError> {
        self.load_by_id(caller, &req.secret_id).await?;
        if req.tags.is_empty() || req.tags.len() > MAX_TAGS {
            return Err(invalid("tags takes 1-20 items").into());
        }
        match req.action.as_str() {
            "create" => {
                let tags = req.tags.iter().map(validate_tag).collect::<Result<Vec<_>, _>>()?;
                self.store.put_tags(&caller.project_id, &req.secret_id, &tags, writable()).await?;
            }
            "delete" => {
                let keys = req
                    .tags
                    .iter()
                    .map(|t| domain::validate_tag_key(&t.key).map(|_| t.key.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                self.store.delete_tags(&caller.project_id, &req.secret_id, &keys, false, writable()).await?;
            }
            _ => return Err(invalid("action must be create or delete").into()),
        }
        Ok(pb::Empty {})
    }

    pub(crate) async fn resource_instances(
        &self,
        caller: &CallerIdentity,
        req: pb::ResourceInstancesRequest,
    ) -> Result<pb::ResourceInstancesResponse, CsmsError> {
        let count_only = match req.action.as_str() {
            "filter" => false,
            "count" => true,
            _ => return Err(invalid("action must be filter or count").into()),
        };
        let limit = match req.limit {
            0 => 10,
            1..=1000 => req.limit,
            _ => return Err(invalid("limit must be 1-1000").into()),
        };
        if req.tags.len() > 10 {
            return Err(invalid("at most 10 tag filters").into());
        }
        for filter in &req.tags {
            domain::validate_tag_key(&filter.key)?;
            let distinct: std::collections::HashSet<_> = filter.values.iter().collect();
            if filter.values.len() > 10 || distinct.len() != filter.values.len() {
                return Err(invalid("a tag filter takes at most 10 distinct values").into());
            }
        }
        let name = req.name_contains.as_ref().map(|n| n.to_lowercase());
        if name.as_ref().is_some_and(|n| n.chars().count() > 255) {
            return Err(invalid("matches value is limited to 255 characters").into());
        }
        let matching: Vec<_> =
            self.store
                .secrets_with_tags(&caller.project_id)
                .await?
                .into_iter()
                .filter(|(secret, tags)| {
                    let tags_match = req.tags.iter().all(|f| {
                        tags.iter().any(|(k, v)| *k == f.key && (f.values.is_empty() || f.values.contains(v)))
                    });
                    // An empty name match returns nothing, as documented.
                    let name_match =
                        name.as_ref().is_none_or(|n| !n.is_empty() && secret.name.to_lowercase().contains(n.as_str()));
                    tags_match && name_match
                })
                .collect();
        let total_count = matching.len() as u64;
        let resources = if count_only {
            Vec::new()
        } else {
            matching
                .into_iter()
                .skip(req.offset as usize)
                .take(limit as usize)
                .map(|(secret, tags)| pb::Resource {
                    secret: Some(convert::secret_to_proto(&secret)),
                    tags: tags.into_iter().map(|(key, value)| pb::Tag { key, value }).collect(),
                })
                .collect()
        };
        Ok(pb::ResourceInstancesResponse { resources, total_count })
    }
}
