//! Backups (download-secret-blob) and restores (upload-secret-blob).
//!
//! Format, documented in docs/secret-backup-format.md:
//! `opendew-secret-backup-v1:` + Base64 of a JSON envelope
//! `{"key": <kms key id>, "dek": <Base64 data-key ciphertext>, "data": <Base64 nonce ‖ AES-256-GCM ciphertext>}`.
//! The data key comes from kms-service under the secret's master key with
//! the AAD `opendew/csms/backup/v1|<project id>`, so only this deployment's
//! kms-service, asked as the same project, can open it; the payload's AAD
//! repeats the project and names the key, so a tampered or foreign blob is
//! refused. The payload holds the secret's metadata and every version's
//! value and stages; values are re-sealed with fresh data keys on restore.

use base64::{Engine, engine::general_purpose::STANDARD};
use common::identity::CallerIdentity;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{
    domain::{self, Rejection, SecretRecord, ValueKind, VersionRecord},
    error::CsmsError,
    secrets::writable,
    service::CsmsService,
};

const PREFIX: &str = "opendew-secret-backup-v1:";
/// Largest blob accepted, in characters.
pub const MAX_BLOB_LEN: usize = 5_242_880;
/// Largest gRPC message carrying a blob (a restore's request, a backup's
/// answer), with room for its other fields.
pub const MAX_MESSAGE: usize = MAX_BLOB_LEN + 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Envelope {
    key: String,
    dek: String,
    data: String,
}

#[derive(Serialize, Deserialize)]
struct BackupSecret {
    name: String,
    description: String,
    secret_type: String,
    auto_rotation: bool,
    rotation_period: String,
    rotation_config: String,
    event_subscriptions: Vec<String>,
    enterprise_project_id: String,
    rotation_func_urn: String,
    kms_key_id: String,
    create_ms: i64,
    versions: Vec<BackupVersion>,
}

#[derive(Serialize, Deserialize)]
struct BackupVersion {
    number: i32,
    binary: bool,
    value: String,
    create_ms: i64,
    expire_ms: Option<i64>,
    stages: Vec<String>,
}

/// Highest version number a restore accepts: far above any real secret's,
/// far below where the per-secret counter would overflow.
const MAX_RESTORED_VERSION: i32 = 1 << 24;

/// A backup blob's outer layers, decoded but not yet opened.
#[derive(Debug)]
pub struct SealedBackup {
    /// The kms key id the data key is sealed under.
    pub key: String,
    /// The data-key ciphertext.
    pub wrapped: Vec<u8>,
    /// `nonce ‖ AES-GCM(payload) ‖ tag`.
    pub sealed: Vec<u8>,
}

impl SealedBackup {
    /// Strips the prefix and decodes the envelope; any fault is "not a
    /// backup" (fuzzed: `crates/fuzz`, target `backup_blob`).
    pub fn parse(blob: &str) -> Result<Self, CsmsError> {
        if blob.is_empty() || blob.len() > MAX_BLOB_LEN {
            return Err(Rejection::InvalidParameter("secret_blob must be 1-5242880 characters".into()).into());
        }
        let encoded = blob.strip_prefix(PREFIX).ok_or_else(refused)?;
        let envelope: Envelope =
            serde_json::from_slice(&STANDARD.decode(encoded.trim()).map_err(|_| refused())?).map_err(|_| refused())?;
        domain::validate_kms_key_id(&envelope.key).map_err(|_| refused())?;
        let wrapped = STANDARD.decode(&envelope.dek).map_err(|_| refused())?;
        let sealed = STANDARD.decode(&envelope.data).map_err(|_| refused())?;
        Ok(Self { key: envelope.key, wrapped, sealed })
    }
}

/// Parses and validates an opened payload (what a restore trusts no
/// further than a create); the fuzz target `backup_blob` calls it on
/// arbitrary bytes. Returns the secret's name and version count.
pub fn check_payload(payload: &[u8]) -> Result<(String, usize), CsmsError> {
    let backup = BackupSecret::parse(payload)?;
    Ok((backup.name, backup.versions.len()))
}

impl BackupSecret {
    fn parse(payload: &[u8]) -> Result<Self, CsmsError> {
        let backup: BackupSecret = serde_json::from_slice(payload).map_err(|_| refused())?;
        backup.validate()?;
        Ok(backup)
    }

    /// A restored payload passes the rules a create and its versions pass:
    /// a blob is sealed under a key the tenant can use, so its contents are
    /// input like any other (issue #15, finding 9).
    fn validate(&self) -> Result<(), CsmsError> {
        let invalid = |m: &str| CsmsError::from(Rejection::InvalidParameter(m.to_owned()));
        domain::validate_name(&self.name)?;
        if self.description.len() > domain::MAX_DESCRIPTION_LEN {
            return Err(invalid("description is limited to 2048 bytes"));
        }
        if !matches!(self.secret_type.as_str(), "COMMON" | "RDS-FG" | "GaussDB-FG") {
            return Err(invalid("secret_type must be COMMON, RDS-FG or GaussDB-FG"));
        }
        if !self.rotation_period.is_empty() {
            domain::validate_rotation_period(&self.rotation_period)?;
        }
        if self.versions.is_empty() || self.versions.len() > domain::MAX_VERSIONS {
            return Err(invalid("a backup holds 1-20 versions"));
        }
        let mut numbers = std::collections::HashSet::new();
        let mut stages = std::collections::HashSet::new();
        for v in &self.versions {
            if !(1..=MAX_RESTORED_VERSION).contains(&v.number) || !numbers.insert(v.number) {
                return Err(invalid("backup version numbers must be distinct, 1-16777216"));
            }
            for stage in &v.stages {
                domain::validate_stage_name(stage)?;
                if !stages.insert(stage.as_str()) {
                    return Err(invalid("a stage names one version"));
                }
            }
        }
        if stages.len() > domain::MAX_STAGES {
            return Err(Rejection::StageLimit.into());
        }
        Ok(())
    }
}

fn aad(project_id: &str) -> Vec<u8> {
    format!("opendew/csms/backup/v1|{project_id}").into_bytes()
}

fn refused() -> CsmsError {
    Rejection::InvalidParameter("secret_blob is not a valid backup for this project".into()).into()
}

impl CsmsService {
    /// The secret `name` with every version, sealed into a blob only this
    /// project can restore.
    pub async fn backup(&self, caller: &CallerIdentity, name: &str) -> Result<String, CsmsError> {
        let secret = self.show_secret(caller, name).await?;
        writable()(&secret)?;
        let versions = self.store.list_versions(&secret.id, None, u32::MAX).await?;
        let mut backup_versions = Vec::with_capacity(versions.len());
        for version in &versions {
            let value = self.open_version(caller, version).await?;
            backup_versions.push(BackupVersion {
                number: version.number,
                binary: version.kind == ValueKind::Binary,
                value: STANDARD.encode(value.expose()),
                create_ms: version.create_ms,
                expire_ms: version.expire_ms,
                stages: version.stages.clone(),
            });
        }
        let payload = Zeroizing::new(
            serde_json::to_vec(&BackupSecret {
                name: secret.name.clone(),
                description: secret.description.clone(),
                secret_type: secret.secret_type.clone(),
                auto_rotation: secret.auto_rotation,
                rotation_period: secret.rotation_period.clone(),
                rotation_config: secret.rotation_config.clone(),
                event_subscriptions: secret.event_subscriptions.clone(),
                enterprise_project_id: secret.enterprise_project_id.clone(),
                rotation_func_urn: secret.rotation_func_urn.clone(),
                kms_key_id: secret.kms_key_id.clone(),
                create_ms: secret.create_ms,
                versions: backup_versions,
            })
            .map_err(|e| CsmsError::Internal(format!("encoding a backup: {e}")))?,
        );
        let aad = aad(&caller.project_id);
        let data_key = self.kms.create_data_key(caller, &secret.kms_key_id, &aad).await?;
        let cipher =
            crypto::AeadKey::new(&data_key.plaintext).map_err(|_| CsmsError::Internal("data key size".into()))?;
        let payload_aad = [aad.as_slice(), b"|", secret.kms_key_id.as_bytes()].concat();
        let sealed = cipher.seal(&payload, &payload_aad);
        let envelope = Envelope {
            key: secret.kms_key_id.clone(),
            dek: STANDARD.encode(&data_key.ciphertext),
            data: STANDARD.encode(sealed),
        };
        let json = serde_json::to_vec(&envelope).map_err(|e| CsmsError::Internal(format!("encoding a backup: {e}")))?;
        let blob = format!("{PREFIX}{}", STANDARD.encode(json));
        if blob.len() > MAX_BLOB_LEN {
            return Err(CsmsError::Internal("backup exceeds the 5 MiB blob limit".into()));
        }
        tracing::info!(secret_id = %secret.id, versions = versions.len(), "secret backed up");
        Ok(blob)
    }

    /// Recreates a backed-up secret under a new id.
    pub async fn restore_backup(&self, caller: &CallerIdentity, blob: &str) -> Result<SecretRecord, CsmsError> {
        let SealedBackup { key, wrapped, sealed } = SealedBackup::parse(blob)?;
        let aad = aad(&caller.project_id);
        // Another project's blob names a key this project cannot see, or
        // fails its AAD: both are "not a backup for this project".
        let data_key = self.kms.decrypt_data_key(caller, &key, &wrapped, &aad).await.map_err(|e| match e {
            CsmsError::KmsKeyUnusable(_) => refused(),
            other => other,
        })?;
        let cipher = crypto::AeadKey::new(&data_key).map_err(|_| refused())?;
        let payload_aad = [aad.as_slice(), b"|", key.as_bytes()].concat();
        let payload = cipher.open(&sealed, &payload_aad).map_err(|_| refused())?;
        let backup = BackupSecret::parse(payload.expose())?;
        if self.store.get_secret(&caller.project_id, &backup.name).await?.is_some() {
            return Err(CsmsError::DuplicateName);
        }
        let now = common::now_ms();
        let secret = SecretRecord {
            description: backup.description,
            secret_type: backup.secret_type,
            auto_rotation: backup.auto_rotation,
            next_rotation_ms: backup.auto_rotation.then(|| now + domain::period_ms(&backup.rotation_period)),
            rotation_period: backup.rotation_period,
            rotation_config: backup.rotation_config,
            event_subscriptions: backup.event_subscriptions,
            enterprise_project_id: backup.enterprise_project_id,
            rotation_func_urn: backup.rotation_func_urn,
            create_ms: backup.create_ms,
            ..SecretRecord::new(&caller.project_id, backup.name, backup.kms_key_id, now)
        };
        let mut versions = Vec::with_capacity(backup.versions.len());
        for v in backup.versions {
            let kind = if v.binary { ValueKind::Binary } else { ValueKind::Text };
            let value = Zeroizing::new(STANDARD.decode(&v.value).map_err(|_| refused())?);
            let mut version: VersionRecord =
                self.seal_version(caller, &secret.id, v.number, &secret.kms_key_id, kind, &value, v.create_ms).await?;
            version.expire_ms = v.expire_ms;
            version.stages = v.stages;
            versions.push(version);
        }
        if versions.is_empty() {
            return Err(refused());
        }
        self.insert_secret(&secret, &versions, &crate::store::Effects::default()).await?;
        tracing::info!(secret_id = %secret.id, versions = versions.len(), "secret restored from backup");
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(versions: Vec<BackupVersion>) -> BackupSecret {
        BackupSecret {
            name: "db-password".into(),
            description: String::new(),
            secret_type: "COMMON".into(),
            auto_rotation: false,
            rotation_period: String::new(),
            rotation_config: String::new(),
            event_subscriptions: Vec::new(),
            enterprise_project_id: "0".into(),
            rotation_func_urn: String::new(),
            kms_key_id: "k".into(),
            create_ms: 0,
            versions,
        }
    }

    fn version(number: i32, stages: &[&str]) -> BackupVersion {
        let stages = stages.iter().map(|s| (*s).to_owned()).collect();
        BackupVersion { number, binary: false, value: String::new(), create_ms: 0, expire_ms: None, stages }
    }

    /// Before, only the name was checked: a crafted blob could bring bad
    /// stage names, a stage on two versions, more than 20 versions and
    /// numbers up to i32::MAX (then an overflow of the version counter).
    #[test]
    fn restored_payloads_pass_the_create_rules() {
        assert!(backup(vec![version(1, &["SYSPREVIOUS"]), version(2, &["SYSCURRENT"])]).validate().is_ok());
        assert!(backup(vec![version(1, &["bad stage!"])]).validate().is_err());
        assert!(backup(vec![version(1, &["SYSCURRENT"]), version(2, &["SYSCURRENT"])]).validate().is_err());
        assert!(backup(vec![version(i32::MAX, &["SYSCURRENT"])]).validate().is_err());
        assert!(backup(vec![version(3, &[]), version(3, &["SYSCURRENT"])]).validate().is_err());
        assert!(backup((1..=21).map(|n| version(n, &[])).collect()).validate().is_err());
        assert!(backup(Vec::new()).validate().is_err());
        let too_many: Vec<String> = (0..13).map(|i| format!("S{i}")).collect();
        let many = too_many.iter().map(String::as_str).collect::<Vec<_>>();
        assert!(backup(vec![version(1, &many)]).validate().is_err());
        let mut wrong_type = backup(vec![version(1, &[])]);
        wrong_type.secret_type = "ROOT".into();
        assert!(wrong_type.validate().is_err());
    }
}
