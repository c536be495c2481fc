//! Secret versions: create, list, show (with the opened value), expiry;
//! and the sealing of each version's value under its own data key.

use common::identity::CallerIdentity;

use crate::{
    cache::Selector,
    domain::{
        self, MAX_STAGES, Page, Rejection, SYSCURRENT, SecretRecord, ValueKind, VersionRecord,
        events::{EventType, Notice},
    },
    error::CsmsError,
    seal,
    secrets::{NewValue, invalid, page_size, writable, writable_unchanged},
    service::CsmsService,
    store::Effects,
};

/// A create-secret-version request.
#[derive(Debug, Default)]
pub struct NewVersion {
    /// Required.
    pub value: Option<NewValue>,
    /// Stages to move onto the new version (empty: `SYSCURRENT`).
    pub stages: Vec<String>,
    /// When the version expires, ms.
    pub expire_ms: Option<i64>,
}

/// A version with its opened value.
#[derive(Debug)]
pub struct OpenedVersion {
    /// The version.
    pub version: VersionRecord,
    /// Its plaintext, wiped when dropped.
    pub value: crypto::SecretBytes,
}

impl CsmsService {
    /// Adds a version to the secret `name`.
    pub async fn create_version(
        &self, caller: &CallerIdentity, name: &str, req: NewVersion,
    ) -> Result<VersionRecord, CsmsError> {
        let secret = self.show_secret(caller, name).await?;
        let value = req.value.ok_or_else(|| invalid("exactly one of secret_string and secret_binary is required"))?;
        domain::validate_value(value.kind, value.bytes.expose())?;
        if req.stages.len() > MAX_STAGES {
            return Err(Rejection::TooManyStagesInRequest.into());
        }
        let mut stages = if req.stages.is_empty() { vec![SYSCURRENT.to_owned()] } else { req.stages };
        for stage in &stages {
            domain::validate_user_stage(stage)?;
        }
        stages.sort();
        stages.dedup();
        if let Some(expire) = req.expire_ms {
            domain::validate_expire_time(expire)?;
        }
        secret.state.check_value_access()?;
        self.refuse_weak(caller, &value).await?;
        let (secret, number) = self.store.reserve_version(&caller.project_id, name, writable()).await?;
        let now = common::now_ms();
        let mut version = self
            .seal_version(caller, &secret.id, number, &secret.kms_key_id, value.kind, value.bytes.expose(), now)
            .await?;
        version.expire_ms = req.expire_ms;
        version.stages = stages;
        let created = Effects::notices([Notice::version(EventType::VersionCreated, number, version.expire_ms)]);
        let stored = self.store.insert_version(&caller.project_id, &version, writable_unchanged(), &created).await?;
        self.wake_deliveries();
        tracing::info!(secret_id = %secret.id, version = number, "secret version created");
        Ok(stored)
    }

    /// The secret's versions after `marker` (a version id), newest last.
    pub async fn list_versions(
        &self, caller: &CallerIdentity, name: &str, limit: Option<u32>, marker: &str,
    ) -> Result<Page<VersionRecord>, CsmsError> {
        let secret = self.readable_secret(caller, name).await?.secret;
        let limit = page_size(limit)?;
        // The spec's pattern: `v[0-9]{1,10}` (a number past every version
        // is a page past the end) or `latest` (the SYSCURRENT version).
        let bad = || invalid("marker must be v<number> (1-10 digits) or latest");
        let after = match marker {
            "" => None,
            "latest" => self.store.get_version_by_stage(&secret.id, SYSCURRENT).await?.map(|v| v.number),
            marker => {
                let digits = marker.strip_prefix('v').filter(|d| (1..=10).contains(&d.len())).ok_or_else(bad)?;
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad().into());
                }
                Some(digits.parse::<i64>().map_err(|_| bad())?.min(i64::from(i32::MAX)) as i32)
            }
        };
        Ok(Page::cut(self.store.list_versions(&secret.id, after, limit + 1).await?, limit))
    }

    /// Sets a version's expiry (`latest` names the `SYSCURRENT` version).
    pub async fn update_version(
        &self, caller: &CallerIdentity, name: &str, version_id: &str, expire_ms: Option<i64>,
    ) -> Result<VersionRecord, CsmsError> {
        let secret = self.show_secret(caller, name).await?;
        let expire = expire_ms.ok_or_else(|| invalid("expire_time is required"))?;
        domain::validate_expire_time(expire)?;
        let number = match domain::parse_version_id(version_id)? {
            Some(n) => n,
            None => {
                self.store
                    .get_version_by_stage(&secret.id, SYSCURRENT)
                    .await?
                    .ok_or(Rejection::ResourceNotFound("version"))?
                    .number
            }
        };
        Ok(self.store.set_version_expiry(&caller.project_id, name, number, Some(expire), writable()).await?)
    }

    /// A version and its value: by id, or `latest` for `SYSCURRENT`, in one
    /// database round trip for the secret and the version.
    pub async fn show_version(
        &self, caller: &CallerIdentity, name: &str, version_id: &str,
    ) -> Result<OpenedVersion, CsmsError> {
        if domain::validate_name(name).is_err() {
            return Err(Rejection::SecretNotFound.into());
        }
        let (stage, number, selector) = match domain::parse_version_id(version_id)? {
            Some(n) => (None, Some(n), Selector::Number(n)),
            None => (Some(SYSCURRENT), None, Selector::Current),
        };
        // The caller's own secret, from the read cache when nothing changed
        // since it was loaded (docs/design/secrets.md, "Secret read cache").
        if let Some(hit) = self.reads.get(&caller.project_id, name, selector) {
            return self.opened(caller, &hit.secret, hit.version.clone()).await;
        }
        let epoch = self.reads.epoch();
        match self.store.read_secret_version(&caller.project_id, name, stage, number).await? {
            Some((secret, Some(version))) => {
                let read = self.reads.insert(&caller.project_id, name, selector, secret, version, epoch);
                self.opened(caller, &read.secret, read.version.clone()).await
            }
            Some((secret, None)) => {
                secret.state.check_value_access()?;
                Err(Rejection::ResourceNotFound("version").into())
            }
            // Not the caller's: a secret granted to the caller's user? (Not
            // cached: the grant is checked on every read.)
            None => {
                let granted = self.granted(caller, name).await?.ok_or(Rejection::SecretNotFound)?;
                let (secret, version) = self
                    .store
                    .read_secret_version(&granted.secret.project_id, &granted.secret.name, stage, number)
                    .await?
                    .ok_or(Rejection::SecretNotFound)?;
                secret.state.check_value_access()?;
                let version = version.ok_or(Rejection::ResourceNotFound("version"))?;
                self.opened(&granted.reader, &secret, version).await
            }
        }
    }

    /// A readable secret's version with its value opened as `reader`.
    async fn opened(
        &self, reader: &CallerIdentity, secret: &SecretRecord, version: VersionRecord,
    ) -> Result<OpenedVersion, CsmsError> {
        secret.state.check_value_access()?;
        let value = self.open_version(reader, &version).await?;
        if version.kind == ValueKind::Text && std::str::from_utf8(value.expose()).is_err() {
            return Err(CsmsError::Internal(format!("text value of secret {} is not UTF-8", secret.id)));
        }
        Ok(OpenedVersion { version, value })
    }

    /// Seals one version's value with a fresh data key from kms-service;
    /// the plaintext data key is wiped before this returns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn seal_version(
        &self, caller: &CallerIdentity, secret_id: &str, number: i32, kms_key_id: &str, kind: ValueKind, value: &[u8],
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
        &self, caller: &CallerIdentity, version: &VersionRecord,
    ) -> Result<crypto::SecretBytes, CsmsError> {
        // A data key kms-service unwrapped for this version under a second
        // ago is used again (see `cache::DATA_KEY_TTL`); the value's own
        // authentication binds it to this project, secret and version.
        let data_key = match self.reads.data_key(&version.secret_id, version.number) {
            Some(key) => key,
            None => {
                let aad = seal::data_key_aad(&caller.project_id, &version.secret_id, version.number);
                let key = self.kms.decrypt_data_key(caller, &version.kms_key_id, &version.wrapped_dek, &aad).await?;
                let key = std::sync::Arc::new(key);
                self.reads.keep_data_key(&version.secret_id, version.number, key.clone());
                key
            }
        };
        seal::open(&data_key, &caller.project_id, &version.secret_id, version.number, version.kind, &version.ciphertext)
    }
}
