//! The `csms.v1.SecretsManagerService` gRPC adapter: each RPC reads the
//! caller, converts the request ([`convert`]), calls the resource module and
//! converts the answer back. No rule lives here. The access layer
//! (`common::grpc::access`) has already opened the call's span with the
//! gateway's request id.

use common::{grpc::errors::ServiceError, identity::CallerIdentity};
use proto::csms::v1::{self as pb, secrets_manager_service_server::SecretsManagerService};
use tonic::{Request, Response, Status};

use crate::{
    domain::{Page, SecretRecord},
    error::CsmsError,
    service::CsmsService,
};

/// The caller and the message.
fn parts<T>(request: Request<T>) -> Result<(CallerIdentity, T), CsmsError> {
    let caller = CallerIdentity::read_from(request.metadata())?;
    Ok((caller, request.into_inner()))
}

fn secret(secret: SecretRecord) -> Response<pb::SecretResponse> {
    Response::new(pb::SecretResponse { secret: Some(convert::secret_to_proto(&secret)) })
}

fn metadata(version: &crate::domain::VersionRecord, name: &str) -> Response<pb::VersionMetadataResponse> {
    Response::new(pb::VersionMetadataResponse { metadata: Some(convert::version_metadata_to_proto(version, name)) })
}

fn empty(_: ()) -> Response<pb::Empty> {
    Response::new(pb::Empty {})
}

#[tonic::async_trait]
impl SecretsManagerService for CsmsService {
    async fn create_secret(
        &self, request: Request<pb::CreateSecretRequest>,
    ) -> Result<Response<pb::CreateSecretResponse>, Status> {
        let (caller, req) = parts(request)?;
        let s = CsmsService::create_secret(self, &caller, convert::new_secret(req)).await?;
        Ok(Response::new(pb::CreateSecretResponse { secret: Some(convert::secret_to_proto(&s)) }))
    }

    async fn show_secret(
        &self, request: Request<pb::ShowSecretRequest>,
    ) -> Result<Response<pb::ShowSecretResponse>, Status> {
        let (caller, req) = parts(request)?;
        let s = self.readable_secret(&caller, &req.name).await?.secret;
        Ok(Response::new(pb::ShowSecretResponse { secret: Some(convert::secret_to_proto(&s)) }))
    }

    async fn list_secrets(
        &self, request: Request<pb::ListSecretsRequest>,
    ) -> Result<Response<pb::ListSecretsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let page = CsmsService::list_secrets(self, &caller, req.limit, &req.marker, &req.event_name).await?;
        let secrets = page.items.iter().map(convert::secret_to_proto).collect();
        Ok(Response::new(pb::ListSecretsResponse { secrets, more: page.more }))
    }

    async fn update_secret(
        &self, request: Request<pb::UpdateSecretRequest>,
    ) -> Result<Response<pb::SecretResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (name, change) = convert::secret_change(req);
        Ok(secret(CsmsService::update_secret(self, &caller, &name, change).await?))
    }

    async fn delete_secret(&self, request: Request<pb::SecretName>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        Ok(empty(CsmsService::delete_secret(self, &caller, &req.name).await?))
    }

    async fn schedule_secret_deletion(
        &self, request: Request<pb::ScheduleSecretDeletionRequest>,
    ) -> Result<Response<pb::SecretResponse>, Status> {
        let (caller, req) = parts(request)?;
        Ok(secret(self.schedule_deletion(&caller, &req.name, req.recovery_window_in_days).await?))
    }

    async fn restore_secret(&self, request: Request<pb::SecretName>) -> Result<Response<pb::SecretResponse>, Status> {
        let (caller, req) = parts(request)?;
        Ok(secret(CsmsService::restore_secret(self, &caller, &req.name).await?))
    }

    async fn create_secret_version(
        &self, request: Request<pb::CreateSecretVersionRequest>,
    ) -> Result<Response<pb::VersionMetadataResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (name, version) = convert::new_version(req);
        Ok(metadata(&self.create_version(&caller, &name, version).await?, &name))
    }

    async fn list_secret_versions(
        &self, request: Request<pb::ListSecretVersionsRequest>,
    ) -> Result<Response<pb::ListSecretVersionsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let Page { items, more } = self.list_versions(&caller, &req.name, req.limit, &req.marker).await?;
        let versions = items.iter().map(|v| convert::version_metadata_to_proto(v, &req.name)).collect();
        Ok(Response::new(pb::ListSecretVersionsResponse { versions, more }))
    }

    async fn show_secret_version(
        &self, request: Request<pb::ShowSecretVersionRequest>,
    ) -> Result<Response<pb::ShowSecretVersionResponse>, Status> {
        let (caller, req) = parts(request)?;
        let opened = self.show_version(&caller, &req.name, &req.version_id).await?;
        Ok(Response::new(pb::ShowSecretVersionResponse {
            metadata: Some(convert::version_metadata_to_proto(&opened.version, &req.name)),
            value: Some(convert::value_to_proto(opened.version.kind, opened.value.expose())),
        }))
    }

    async fn update_version(
        &self, request: Request<pb::UpdateVersionRequest>,
    ) -> Result<Response<pb::VersionMetadataResponse>, Status> {
        let (caller, req) = parts(request)?;
        let version =
            CsmsService::update_version(self, &caller, &req.name, &req.version_id, req.expire_time_ms).await?;
        Ok(metadata(&version, &req.name))
    }

    async fn show_secret_stage(&self, request: Request<pb::StageRef>) -> Result<Response<pb::StageResponse>, Status> {
        let (caller, req) = parts(request)?;
        let stage = self.show_stage(&caller, &req.name, &req.stage).await?;
        Ok(Response::new(convert::stage_to_proto(&stage, &req.name)))
    }

    async fn update_secret_stage(
        &self, request: Request<pb::UpdateSecretStageRequest>,
    ) -> Result<Response<pb::StageResponse>, Status> {
        let (caller, req) = parts(request)?;
        let stage = self.update_stage(&caller, &req.name, &req.stage, &req.version_id).await?;
        Ok(Response::new(convert::stage_to_proto(&stage, &req.name)))
    }

    async fn delete_secret_stage(&self, request: Request<pb::StageRef>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        Ok(empty(self.delete_stage(&caller, &req.name, &req.stage).await?))
    }

    async fn create_secret_tag(&self, request: Request<pb::SecretTagRequest>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        let tag = req.tag.map(|t| (t.key, t.value));
        Ok(empty(self.create_tag(&caller, &req.secret_id, tag).await?))
    }

    async fn delete_secret_tag(
        &self, request: Request<pb::DeleteSecretTagRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        Ok(empty(self.delete_tag(&caller, &req.secret_id, &req.key).await?))
    }

    async fn list_secret_tags(&self, request: Request<pb::SecretId>) -> Result<Response<pb::TagsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let tags = self.list_tags(&caller, &req.secret_id).await?;
        Ok(Response::new(pb::TagsResponse { tags: convert::tags_to_proto(tags) }))
    }

    async fn batch_create_or_delete_tags(
        &self, request: Request<pb::BatchTagsRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        let tags = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
        Ok(empty(self.batch_tags(&caller, &req.secret_id, &req.action, tags).await?))
    }

    async fn list_resource_instances(
        &self, request: Request<pb::ResourceInstancesRequest>,
    ) -> Result<Response<pb::ResourceInstancesResponse>, Status> {
        let (caller, req) = parts(request)?;
        let found = self.resource_instances(&caller, convert::resource_query(req)).await?;
        let resources = found
            .resources
            .into_iter()
            .map(|(s, tags)| pb::Resource {
                secret: Some(convert::secret_to_proto(&s)),
                tags: convert::tags_to_proto(tags),
            })
            .collect();
        Ok(Response::new(pb::ResourceInstancesResponse { resources, total_count: found.total_count }))
    }

    async fn list_project_secrets_tags(
        &self, request: Request<pb::Empty>,
    ) -> Result<Response<pb::ProjectTagsResponse>, Status> {
        let (caller, _) = parts(request)?;
        let tags = self.project_tags(&caller).await?;
        let tags = tags.into_iter().map(|(key, values)| pb::TagValues { key, values }).collect();
        Ok(Response::new(pb::ProjectTagsResponse { tags }))
    }

    async fn download_secret_blob(&self, request: Request<pb::SecretName>) -> Result<Response<pb::SecretBlob>, Status> {
        let (caller, req) = parts(request)?;
        Ok(Response::new(pb::SecretBlob { blob: self.backup(&caller, &req.name).await? }))
    }

    async fn upload_secret_blob(
        &self, request: Request<pb::SecretBlob>,
    ) -> Result<Response<pb::SecretResponse>, Status> {
        let (caller, req) = parts(request)?;
        Ok(secret(self.restore_backup(&caller, &req.blob).await?))
    }

    async fn generate_random_password(
        &self, request: Request<pb::GeneratePasswordRequest>,
    ) -> Result<Response<pb::GeneratePasswordResponse>, Status> {
        let (_, req) = parts(request)?;
        let password = crate::password::generate(&convert::password_policy(req))?;
        Ok(Response::new(pb::GeneratePasswordResponse { password }))
    }

    async fn create_secret_event(
        &self, request: Request<pb::CreateSecretEventRequest>,
    ) -> Result<Response<pb::EventResponse>, Status> {
        let (caller, req) = parts(request)?;
        let event = self.create_event(&caller, convert::new_event(req)).await?;
        Ok(event_response(&event))
    }

    async fn list_secret_events(
        &self, request: Request<pb::ListSecretEventsRequest>,
    ) -> Result<Response<pb::ListSecretEventsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let Page { items, more } = self.list_events(&caller, req.limit, &req.marker).await?;
        let events = items.iter().map(convert::event_to_proto).collect();
        Ok(Response::new(pb::ListSecretEventsResponse { events, more }))
    }

    async fn show_secret_event(&self, request: Request<pb::EventName>) -> Result<Response<pb::EventResponse>, Status> {
        let (caller, req) = parts(request)?;
        Ok(event_response(&self.show_event(&caller, &req.name).await?))
    }

    async fn update_secret_event(
        &self, request: Request<pb::UpdateSecretEventRequest>,
    ) -> Result<Response<pb::EventResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (name, change) = convert::event_change(req);
        Ok(event_response(&self.update_event(&caller, &name, change).await?))
    }

    async fn delete_secret_event(&self, request: Request<pb::EventName>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        Ok(empty(self.delete_event(&caller, &req.name).await?))
    }

    async fn list_notification_records(
        &self, request: Request<pb::ListNotificationRecordsRequest>,
    ) -> Result<Response<pb::ListNotificationRecordsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let Page { items, more } = self.list_notifications(&caller, req.limit, &req.marker).await?;
        let records = items.into_iter().map(convert::record_to_proto).collect();
        Ok(Response::new(pb::ListNotificationRecordsResponse { records, more }))
    }

    async fn rotate_secret(
        &self, request: Request<pb::SecretName>,
    ) -> Result<Response<pb::RotateSecretResponse>, Status> {
        let (caller, req) = parts(request)?;
        let rotated = CsmsService::rotate_secret(self, &caller, &req.name).await?;
        Ok(Response::new(pb::RotateSecretResponse {
            secret_name: req.name,
            rotation_task_id: rotated.task.id,
            version_id: rotated.version.map(|v| v.id()),
            task_status: rotated.task.status.as_str().to_owned(),
        }))
    }

    async fn list_secret_tasks(
        &self, request: Request<pb::ListSecretTasksRequest>,
    ) -> Result<Response<pb::ListSecretTasksResponse>, Status> {
        let (caller, req) = parts(request)?;
        let filter = convert::task_filter(&req).map_err(CsmsError::from)?;
        let (total, Page { items, more }) = self.list_tasks(&caller, filter, req.limit, req.marker).await?;
        let tasks = items.into_iter().map(convert::task_to_proto).collect();
        Ok(Response::new(pb::ListSecretTasksResponse { total, tasks, more }))
    }

    async fn batch_import_secrets(
        &self, request: Request<pb::BatchImportSecretsRequest>,
    ) -> Result<Response<pb::BatchImportSecretsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let secrets = req.secrets.into_iter().map(convert::new_secret).collect();
        let results = self
            .batch_import(&caller, secrets)
            .await?
            .into_iter()
            .map(|o| match o.error {
                None => pb::BatchImportResult { name: o.name, created: true, reason: 0, message: String::new() },
                Some(e) => pb::BatchImportResult {
                    name: o.name,
                    created: false,
                    reason: e.reason() as i32,
                    message: e.public_message(),
                },
            })
            .collect();
        Ok(Response::new(pb::BatchImportSecretsResponse { results }))
    }

    async fn create_grant(&self, request: Request<pb::GrantRequest>) -> Result<Response<pb::GrantResponse>, Status> {
        let (caller, req) = parts(request)?;
        Ok(grant_response(&CsmsService::create_grant(self, &caller, convert::grant_request(req)).await?))
    }

    async fn list_grants(&self, request: Request<pb::GrantsOf>) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (secret, grants) = CsmsService::list_grants(self, &caller, &req.resource_id).await?;
        Ok(Response::new(pb::ListGrantsResponse {
            secret: Some(convert::secret_to_proto(&secret)),
            grants: grants.iter().map(convert::grant_to_proto).collect(),
        }))
    }

    async fn update_grant(&self, request: Request<pb::GrantRequest>) -> Result<Response<pb::GrantResponse>, Status> {
        let (caller, req) = parts(request)?;
        let resource_id = req.resource_id.clone();
        Ok(grant_response(&CsmsService::update_grant(self, &caller, &resource_id, convert::grant_request(req)).await?))
    }

    async fn delete_grant(&self, request: Request<pb::DeleteGrantRequest>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        Ok(empty(CsmsService::delete_grant(self, &caller, &req.resource_id, req.grantee_id.as_deref()).await?))
    }

    async fn create_agency(
        &self, request: Request<pb::AgencyRequest>,
    ) -> Result<Response<pb::AgenciesResponse>, Status> {
        let (caller, req) = parts(request)?;
        let agencies = self
            .create_agencies(&caller, &req.secret_type)
            .await?
            .into_iter()
            .map(|(agency_name, agency_id)| pb::Agency { agency_name, agency_id })
            .collect();
        Ok(Response::new(pb::AgenciesResponse { agencies }))
    }

    async fn show_agency(&self, request: Request<pb::AgencyRequest>) -> Result<Response<pb::AgencyGranted>, Status> {
        let (caller, req) = parts(request)?;
        Ok(Response::new(pb::AgencyGranted { granted: self.agencies_granted(&caller, &req.secret_type).await? }))
    }

    async fn show_secrets_config(&self, request: Request<pb::Empty>) -> Result<Response<pb::SecretsConfig>, Status> {
        let (caller, _) = parts(request)?;
        let on = self.checking_strength(&caller).await?;
        Ok(Response::new(pb::SecretsConfig { checking_secret_strength: on }))
    }

    async fn update_secrets_config(
        &self, request: Request<pb::SecretsConfig>,
    ) -> Result<Response<pb::SecretsConfig>, Status> {
        let (caller, req) = parts(request)?;
        let on = self.set_checking_strength(&caller, req.checking_secret_strength).await?;
        Ok(Response::new(pb::SecretsConfig { checking_secret_strength: on }))
    }

    async fn check_secret(
        &self, request: Request<pb::CheckSecretRequest>,
    ) -> Result<Response<pb::CheckSecretResponse>, Status> {
        use crate::checker::Subject;
        let (caller, req) = parts(request)?;
        let subject = match req.subject {
            Some(pb::check_secret_request::Subject::Value(v)) => Subject::Value(zeroize::Zeroizing::new(v)),
            Some(pb::check_secret_request::Subject::SecretName(name)) => {
                Subject::Stored { name, version_id: req.version_id }
            }
            None => {
                return Err(CsmsError::from(crate::secrets::invalid(
                    "data needs secret_string (a value) or secret_name (a stored secret)",
                ))
                .into());
            }
        };
        let v = self.check_secret(&caller, &req.r#type, subject).await?;
        Ok(Response::new(pb::CheckSecretResponse {
            r#type: req.r#type,
            strength: v.strength.to_owned(),
            score: u32::from(v.score),
            length: v.length as u32,
            warning: v.warning,
            suggestions: v.suggestions,
        }))
    }
}

fn grant_response(grant: &crate::domain::grants::GrantRecord) -> Response<pb::GrantResponse> {
    Response::new(pb::GrantResponse { grant: Some(convert::grant_to_proto(grant)) })
}

fn event_response(event: &crate::domain::events::EventRecord) -> Response<pb::EventResponse> {
    Response::new(pb::EventResponse { event: Some(convert::event_to_proto(event)) })
}

pub mod convert {
    //! Conversions between csms.v1 protobuf messages and the domain model.

    use proto::csms::v1 as pb;

    use crate::{
        domain::{
            Rejection, SecretRecord, SecretState, ValueKind, VersionRecord,
            events::{EventRecord, NotificationRecord, NotificationTarget, TaskFilter, TaskRecord, TaskStatus},
        },
        events::{EventChange, NewEvent},
        password::PasswordPolicy,
        secrets::{NewSecret, NewValue, SecretChange},
        store::StageRecord,
        tags::{ResourceQuery, Tag},
        versions::NewVersion,
    };

    /// The proto view of a secret.
    pub fn secret_to_proto(s: &SecretRecord) -> pb::Secret {
        pb::Secret {
            id: s.id.clone(),
            name: s.name.clone(),
            state: match s.state {
                SecretState::Enabled => pb::SecretState::Enabled,
                SecretState::Disabled => pb::SecretState::Disabled,
                SecretState::PendingDelete => pb::SecretState::PendingDelete,
                SecretState::Frozen => pb::SecretState::Frozen,
            } as i32,
            kms_key_id: s.kms_key_id.clone(),
            description: s.description.clone(),
            create_time_ms: s.create_ms,
            update_time_ms: s.update_ms,
            scheduled_delete_time_ms: s.scheduled_delete_ms,
            secret_type: s.secret_type.clone(),
            auto_rotation: s.auto_rotation,
            rotation_period: s.rotation_period.clone(),
            rotation_config: s.rotation_config.clone(),
            rotation_time_ms: s.rotation_ms,
            next_rotation_time_ms: s.next_rotation_ms,
            event_subscriptions: s.event_subscriptions.clone(),
            enterprise_project_id: s.enterprise_project_id.clone(),
            rotation_func_urn: s.rotation_func_urn.clone(),
        }
    }

    /// The proto view of a version's metadata.
    pub fn version_metadata_to_proto(v: &VersionRecord, secret_name: &str) -> pb::VersionMetadata {
        pb::VersionMetadata {
            id: v.id(),
            create_time_ms: v.create_ms,
            expire_time_ms: v.expire_ms,
            kms_key_id: v.kms_key_id.clone(),
            secret_name: secret_name.to_owned(),
            version_stages: v.stages.clone(),
        }
    }

    /// A request's value (`None` when absent); the bytes are wiped when the
    /// request is done with them.
    pub fn value_from_proto(value: Option<pb::SecretValue>) -> Option<NewValue> {
        let (kind, bytes) = match value?.value? {
            pb::secret_value::Value::Text(text) => (ValueKind::Text, text.into_bytes()),
            pb::secret_value::Value::Binary(bytes) => (ValueKind::Binary, bytes),
        };
        Some(NewValue { kind, bytes: crypto::SecretBytes::new(bytes) })
    }

    /// The proto view of an opened value (text the service checked is UTF-8).
    pub fn value_to_proto(kind: ValueKind, plaintext: &[u8]) -> pb::SecretValue {
        pb::SecretValue {
            value: Some(match kind {
                ValueKind::Text => pb::secret_value::Value::Text(String::from_utf8_lossy(plaintext).into_owned()),
                ValueKind::Binary => pb::secret_value::Value::Binary(plaintext.to_vec()),
            }),
        }
    }

    /// create-secret.
    pub fn new_secret(r: pb::CreateSecretRequest) -> NewSecret {
        NewSecret {
            name: r.name,
            kms_key_id: r.kms_key_id,
            description: r.description,
            value: value_from_proto(r.value),
            secret_type: r.secret_type,
            auto_rotation: r.auto_rotation,
            rotation_period: r.rotation_period,
            rotation_config: r.rotation_config,
            event_subscriptions: r.event_subscriptions,
            enterprise_project_id: r.enterprise_project_id,
            rotation_func_urn: r.rotation_func_urn,
        }
    }

    /// update-secret: the name and the change.
    pub fn secret_change(r: pb::UpdateSecretRequest) -> (String, SecretChange) {
        let change = SecretChange {
            kms_key_id: r.kms_key_id,
            description: r.description,
            auto_rotation: r.auto_rotation,
            rotation_period: r.rotation_period,
            event_subscriptions: r.set_event_subscriptions.then_some(r.event_subscriptions),
            rotation_func_urn: r.rotation_func_urn,
        };
        (r.name, change)
    }

    /// create-secret-version: the name and the version.
    pub fn new_version(r: pb::CreateSecretVersionRequest) -> (String, NewVersion) {
        (r.name, NewVersion { value: value_from_proto(r.value), stages: r.version_stages, expire_ms: r.expire_time_ms })
    }

    /// The proto view of a stage of secret `secret_name`.
    pub fn stage_to_proto(stage: &StageRecord, secret_name: &str) -> pb::StageResponse {
        pb::StageResponse {
            stage: Some(pb::Stage {
                name: stage.name.clone(),
                update_time_ms: stage.update_ms,
                secret_name: secret_name.to_owned(),
                version_id: format!("v{}", stage.version),
            }),
        }
    }

    /// The proto view of tags.
    pub fn tags_to_proto(tags: Vec<Tag>) -> Vec<pb::Tag> {
        tags.into_iter().map(|(key, value)| pb::Tag { key, value }).collect()
    }

    /// The resource query.
    pub fn resource_query(r: pb::ResourceInstancesRequest) -> ResourceQuery {
        // The wire's 0 is "not given"; the gateway refused an offset sent
        // with `count`.
        let count = r.action == "count";
        ResourceQuery {
            action: r.action,
            limit: r.limit,
            offset: (!count).then_some(r.offset),
            tags: r.tags.into_iter().map(|t| (t.key, t.values)).collect(),
            name_contains: r.name_contains,
        }
    }

    /// The password rules.
    pub fn password_policy(r: pb::GeneratePasswordRequest) -> PasswordPolicy {
        PasswordPolicy {
            length: r.length,
            exclude_characters: r.exclude_characters,
            exclude_lowercase: r.exclude_lowercase,
            exclude_uppercase: r.exclude_uppercase,
            exclude_numbers: r.exclude_numbers,
            exclude_punctuation: r.exclude_punctuation,
            include_space: r.include_space,
            require_each_included_type: r.require_each_included_type,
        }
    }

    fn target_from_proto(t: pb::NotificationTarget) -> NotificationTarget {
        NotificationTarget { target_type: t.target_type, target_id: t.target_id, target_name: t.target_name }
    }

    /// create-secret-event.
    pub fn new_event(r: pb::CreateSecretEventRequest) -> NewEvent {
        NewEvent {
            name: r.name,
            event_types: r.event_types,
            state: r.state,
            target: r.notification.map(target_from_proto),
        }
    }

    /// update-secret-event: the name and the change.
    pub fn event_change(r: pb::UpdateSecretEventRequest) -> (String, EventChange) {
        let change = EventChange {
            state: r.state,
            event_types: r.set_event_types.then_some(r.event_types),
            target: r.notification.map(target_from_proto),
        };
        (r.name, change)
    }

    /// The proto view of an event.
    pub fn event_to_proto(e: &EventRecord) -> pb::SecretEvent {
        pb::SecretEvent {
            name: e.name.clone(),
            event_id: e.id.clone(),
            event_types: e.event_types.iter().map(|t| t.as_str().to_owned()).collect(),
            state: e.state.as_str().to_owned(),
            create_time_ms: e.create_ms,
            update_time_ms: e.update_ms,
            notification: Some(pb::NotificationTarget {
                target_type: e.target.target_type.clone(),
                target_id: e.target.target_id.clone(),
                target_name: e.target.target_name.clone(),
            }),
        }
    }

    /// The proto view of a notification record.
    pub fn record_to_proto(r: NotificationRecord) -> pb::NotificationRecord {
        pb::NotificationRecord {
            id: r.id,
            event_name: r.event_name,
            trigger_event_type: r.event_type,
            create_time_ms: r.create_ms,
            secret_name: r.secret_name,
            secret_type: r.secret_type,
            notification_target_name: r.target_name,
            notification_target_id: r.target_id,
            notification_content: r.content,
            notification_status: r.status,
        }
    }

    /// The filters of list-secret-task.
    pub fn task_filter(r: &pb::ListSecretTasksRequest) -> Result<TaskFilter, Rejection> {
        let status = match r.status.as_deref() {
            None => None,
            Some(s) => Some(
                TaskStatus::parse(s)
                    .ok_or_else(|| Rejection::InvalidParameter("status must be SUCCESS or FAILED".into()))?,
            ),
        };
        Ok(TaskFilter { secret_name: r.secret_name.clone(), status, task_id: r.task_id.clone() })
    }

    /// The proto view of a task.
    pub fn task_to_proto(t: TaskRecord) -> pb::SecretTask {
        pb::SecretTask {
            task_id: t.id,
            secret_name: t.secret_name,
            rotation_func_urn: t.rotation_func_urn,
            task_status: t.status.as_str().to_owned(),
            operate_type: t.operate_type,
            task_time_ms: t.task_ms,
            attempt_nums: t.attempts,
            // Huawei's code is the gateway's to spell: the reason travels.
            task_error_reason: t.failure.map_or(pb::ErrorReason::Unspecified, |f| {
                <pb::ErrorReason as proto::wire::WireName>::from_huawei_name(f.as_str())
                    .unwrap_or(pb::ErrorReason::Internal)
            }) as i32,
            task_error_msg: t.error_msg,
        }
    }

    /// create-grants / update-grant.
    pub fn grant_request(r: pb::GrantRequest) -> crate::grants::GrantRequest {
        crate::grants::GrantRequest {
            resource_id: r.resource_id,
            resource_type: r.r#type,
            grantee_type: r.grantee_type,
            grantee_target_id: r.grantee_target_id,
            validity_time: r.validity_date,
        }
    }

    /// The proto view of a grant.
    pub fn grant_to_proto(g: &crate::domain::grants::GrantRecord) -> pb::Grant {
        pb::Grant {
            id: g.id.clone(),
            resource_id: g.secret_id.clone(),
            grantee_id: g.grantee_id.clone(),
            create_time_ms: g.create_ms,
            update_time_ms: g.update_ms,
            validity_time_ms: g.validity_ms,
        }
    }
}
