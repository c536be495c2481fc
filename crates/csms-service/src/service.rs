//! The `csms.v1.SecretsManagerService` implementation.

use std::sync::Arc;

use common::identity::CallerIdentity;
use proto::csms::v1::{self as pb, secrets_manager_service_server::SecretsManagerService};
use tonic::{Request, Response, Status};

use crate::{
    convert,
    domain::{self, Rejection, SYSCURRENT, SecretRecord, SecretState, VersionRecord},
    error::CsmsError,
    kms::KmsClient,
    seal,
    store::{CreateSecretError, SecretStore},
};

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

    async fn create_secret(
        &self,
        caller: &CallerIdentity,
        req: pb::CreateSecretRequest,
    ) -> Result<pb::Secret, CsmsError> {
        let invalid = |m: &str| Rejection::InvalidParameter(m.to_owned());
        domain::validate_name(&req.name)?;
        let (kind, value) = convert::value_from_proto(req.value)
            .ok_or_else(|| invalid("exactly one of secret_string and secret_binary is required"))?;
        // The value is wiped from memory once sealed.
        let value = zeroize::Zeroizing::new(value);
        domain::validate_value(kind, &value)?;
        if req.description.len() > domain::MAX_DESCRIPTION_LEN {
            return Err(invalid("description is limited to 2048 bytes").into());
        }
        if !req.kms_key_id.is_empty() {
            domain::validate_kms_key_id(&req.kms_key_id)?;
        }
        let secret_type = if req.secret_type.is_empty() { "COMMON".to_owned() } else { req.secret_type };
        if !matches!(secret_type.as_str(), "COMMON" | "RDS-FG" | "GaussDB-FG") {
            return Err(invalid("secret_type must be COMMON, RDS-FG or GaussDB-FG").into());
        }
        if req.auto_rotation && req.rotation_period.is_empty() {
            return Err(invalid("rotation_period is required when auto_rotation is true").into());
        }
        if !req.rotation_period.is_empty() {
            domain::validate_rotation_period(&req.rotation_period)?;
        }
        if secret_type != "COMMON" && req.rotation_config.is_empty() {
            return Err(invalid("rotation_config is required for RDS-FG and GaussDB-FG secrets").into());
        }
        if req.rotation_config.chars().count() > 1024 {
            return Err(invalid("rotation_config is limited to 1024 characters").into());
        }
        if req.event_subscriptions.len() > 1 || req.event_subscriptions.iter().any(|e| e.is_empty() || e.len() > 32) {
            return Err(invalid("event_subscriptions takes at most one event name of 1-32 characters").into());
        }
        if req.enterprise_project_id.len() > 36 {
            return Err(invalid("enterprise_project_id is limited to 36 characters").into());
        }
        // Cheap early refusal; the unique constraint settles races.
        if self.store.get_secret(&caller.project_id, &req.name).await?.is_some() {
            return Err(CsmsError::DuplicateName);
        }

        let kms_key_id =
            if req.kms_key_id.is_empty() { self.kms.default_key_id(caller).await? } else { req.kms_key_id };
        let now = common::now_ms();
        let secret = SecretRecord {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: caller.project_id.clone(),
            name: req.name,
            state: SecretState::Enabled,
            kms_key_id: kms_key_id.clone(),
            description: req.description,
            secret_type,
            auto_rotation: req.auto_rotation,
            next_rotation_ms: if req.auto_rotation {
                Some(now + domain::period_ms(&req.rotation_period))
            } else {
                None
            },
            rotation_period: req.rotation_period,
            rotation_config: req.rotation_config,
            event_subscriptions: req.event_subscriptions,
            enterprise_project_id: if req.enterprise_project_id.is_empty() {
                "0".to_owned()
            } else {
                req.enterprise_project_id
            },
            rotation_func_urn: req.rotation_func_urn,
            create_ms: now,
            update_ms: now,
            scheduled_delete_ms: None,
            rotation_ms: None,
            state_before_delete: None,
        };
        let mut first = self.seal_version(caller, &secret.id, 1, &kms_key_id, kind, &value, now).await?;
        first.stages = vec![SYSCURRENT.to_owned()];
        self.store.create_secret(&secret, &[first], self.secret_quota).await.map_err(|e| match e {
            CreateSecretError::NameTaken => CsmsError::DuplicateName,
            CreateSecretError::QuotaExceeded => CsmsError::SecretQuotaExceeded(self.secret_quota),
            CreateSecretError::Store(e) => e.into(),
        })?;
        tracing::info!(secret_id = %secret.id, project_id = %secret.project_id, "secret created");
        Ok(convert::secret_to_proto(&secret))
    }

    /// Seals one version's value with a fresh data key from kms-service;
    /// the plaintext data key is wiped before this returns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn seal_version(
        &self,
        caller: &CallerIdentity,
        secret_id: &str,
        number: i32,
        kms_key_id: &str,
        kind: domain::ValueKind,
        value: &[u8],
        now: i64,
    ) -> Result<VersionRecord, CsmsError> {
        let aad = seal::data_key_aad(&caller.project_id, secret_id, number);
        let data_key = self.kms.create_data_key(caller, kms_key_id, &aad).await?;
        let ciphertext = seal::seal(&data_key.plaintext, &caller.project_id, secret_id, number, kind, value)?;
        Ok(VersionRecord {
            secret_id: secret_id.to_owned(),
            number,
            kms_key_id: kms_key_id.to_owned(),
            kind,
            wrapped_dek: data_key.ciphertext,
            ciphertext,
            create_ms: now,
            expire_ms: None,
            stages: Vec::new(),
        })
    }

    /// Opens one stored version's value.
    pub(crate) async fn open_version(
        &self,
        caller: &CallerIdentity,
        version: &VersionRecord,
    ) -> Result<crypto::SecretBytes, CsmsError> {
        let aad = seal::data_key_aad(&caller.project_id, &version.secret_id, version.number);
        let data_key = self.kms.decrypt_data_key(caller, &version.kms_key_id, &version.wrapped_dek, &aad).await?;
        seal::open(&data_key, &caller.project_id, &version.secret_id, version.number, version.kind, &version.ciphertext)
    }

    pub(crate) async fn load_secret(&self, caller: &CallerIdentity, name: &str) -> Result<SecretRecord, CsmsError> {
        // A name that breaks the naming rule cannot exist.
        if domain::validate_name(name).is_err() {
            return Err(Rejection::SecretNotFound.into());
        }
        self.store.get_secret(&caller.project_id, name).await?.ok_or(Rejection::SecretNotFound.into())
    }

    async fn show_secret_version(
        &self,
        caller: &CallerIdentity,
        req: pb::ShowSecretVersionRequest,
    ) -> Result<pb::ShowSecretVersionResponse, CsmsError> {
        if domain::validate_name(&req.name).is_err() {
            return Err(Rejection::SecretNotFound.into());
        }
        let wanted = domain::parse_version_id(&req.version_id)?;
        // One database round trip for the secret and the version.
        let (stage, number) = match wanted {
            Some(n) => (None, Some(n)),
            None => (Some(SYSCURRENT), None),
        };
        let (secret, version) = self
            .store
            .read_secret_version(&caller.project_id, &req.name, stage, number)
            .await?
            .ok_or(Rejection::SecretNotFound)?;
        secret.state.check_value_access()?;
        let version = version.ok_or(Rejection::ResourceNotFound("version"))?;
        let plaintext = self.open_version(caller, &version).await?;
        let value = convert::value_to_proto(version.kind, plaintext.expose())
            .map_err(|_| CsmsError::Internal(format!("text value of secret {} is not UTF-8", secret.id)))?;
        Ok(pb::ShowSecretVersionResponse {
            metadata: Some(convert::version_metadata_to_proto(&version, &secret.name)),
            value: Some(value),
        })
    }
}

fn caller<T>(request: &Request<T>) -> Result<CallerIdentity, CsmsError> {
    let caller = CallerIdentity::read_from(request.metadata())?;
    tracing::Span::current().record("request_id", caller.request_id.as_str());
    Ok(caller)
}

#[tonic::async_trait]
impl SecretsManagerService for CsmsService {
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn create_secret(
        &self,
        request: Request<pb::CreateSecretRequest>,
    ) -> Result<Response<pb::CreateSecretResponse>, Status> {
        let caller = caller(&request)?;
        let secret = CsmsService::create_secret(self, &caller, request.into_inner()).await?;
        Ok(Response::new(pb::CreateSecretResponse { secret: Some(secret) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn list_secrets(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Result<Response<pb::ListSecretsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::list_secrets(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn update_secret(
        &self,
        request: Request<pb::UpdateSecretRequest>,
    ) -> Result<Response<pb::SecretResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::update_secret(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn delete_secret(&self, request: Request<pb::SecretName>) -> Result<Response<pb::Empty>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::delete_secret(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn schedule_secret_deletion(
        &self,
        request: Request<pb::ScheduleSecretDeletionRequest>,
    ) -> Result<Response<pb::SecretResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::schedule_deletion(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn restore_secret(&self, request: Request<pb::SecretName>) -> Result<Response<pb::SecretResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::restore(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn create_secret_version(
        &self,
        request: Request<pb::CreateSecretVersionRequest>,
    ) -> Result<Response<pb::VersionMetadataResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::create_version(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn list_secret_versions(
        &self,
        request: Request<pb::ListSecretVersionsRequest>,
    ) -> Result<Response<pb::ListSecretVersionsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::list_versions(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn update_version(
        &self,
        request: Request<pb::UpdateVersionRequest>,
    ) -> Result<Response<pb::VersionMetadataResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::update_version(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn show_secret_stage(&self, request: Request<pb::StageRef>) -> Result<Response<pb::StageResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::show_stage(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn update_secret_stage(
        &self,
        request: Request<pb::UpdateSecretStageRequest>,
    ) -> Result<Response<pb::StageResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::update_stage(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn delete_secret_stage(&self, request: Request<pb::StageRef>) -> Result<Response<pb::Empty>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::delete_stage(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn create_secret_tag(&self, request: Request<pb::SecretTagRequest>) -> Result<Response<pb::Empty>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::create_tag(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn delete_secret_tag(
        &self,
        request: Request<pb::DeleteSecretTagRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::delete_tag(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn list_secret_tags(&self, request: Request<pb::SecretId>) -> Result<Response<pb::TagsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::list_tags(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn batch_create_or_delete_tags(
        &self,
        request: Request<pb::BatchTagsRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::batch_tags(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn list_resource_instances(
        &self,
        request: Request<pb::ResourceInstancesRequest>,
    ) -> Result<Response<pb::ResourceInstancesResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::resource_instances(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn download_secret_blob(&self, request: Request<pb::SecretName>) -> Result<Response<pb::SecretBlob>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::backup(self, &caller, request.into_inner()).await?))
    }
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn upload_secret_blob(
        &self,
        request: Request<pb::SecretBlob>,
    ) -> Result<Response<pb::SecretResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::restore_backup(self, &caller, request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn list_project_secrets_tags(
        &self,
        request: Request<pb::Empty>,
    ) -> Result<Response<pb::ProjectTagsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(self.project_tags(&caller).await?))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn generate_random_password(
        &self,
        request: Request<pb::GeneratePasswordRequest>,
    ) -> Result<Response<pb::GeneratePasswordResponse>, Status> {
        caller(&request)?;
        let password = crate::password::generate(request.get_ref())?;
        Ok(Response::new(pb::GeneratePasswordResponse { password }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn show_secret(
        &self,
        request: Request<pb::ShowSecretRequest>,
    ) -> Result<Response<pb::ShowSecretResponse>, Status> {
        let caller = caller(&request)?;
        let secret = self.load_secret(&caller, &request.get_ref().name).await?;
        Ok(Response::new(pb::ShowSecretResponse { secret: Some(convert::secret_to_proto(&secret)) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn show_secret_version(
        &self,
        request: Request<pb::ShowSecretVersionRequest>,
    ) -> Result<Response<pb::ShowSecretVersionResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(CsmsService::show_secret_version(self, &caller, request.into_inner()).await?))
    }
}
