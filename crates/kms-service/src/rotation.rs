//! Key rotation (kms-api.md §3.1): switching automatic rotation on and off,
//! its interval, its status, rotation on demand, and the background task
//! that rotates keys whose period has ended.
//!
//! A rotation is one [`KeyRecord::rotate`] transition run by the store on
//! the locked row together with the insert of the new material version
//! (`Materials::rotate_key`). New ciphertexts name the newest version;
//! every earlier version stays, so every earlier ciphertext still opens.
//! Because the transition re-checks "due" on the locked row, replicas that
//! race for one due key rotate it once: the winner starts the next period,
//! the others find it not due and write nothing.

use common::identity::CallerIdentity;

use crate::{
    domain::{self, KeyId, KeyRecord, Rejection, Rotation},
    envelope::SecretBytes,
    error::KmsError,
    service::KmsService,
    store::WrapMaterial,
};

/// get-key-rotation-status.
#[derive(Debug, Clone)]
pub struct RotationStatus {
    /// The key, as stored.
    pub key: KeyRecord,
    /// (version, creation ms) of every material version, oldest first.
    pub materials: Vec<(i32, i64)>,
}

/// Keys rotated per run of the background task (the rest wait for the
/// next run, oldest period first).
const ROTATIONS_PER_RUN: u32 = 100;

impl KmsService {
    /// enable-key-rotation: the first automatic rotation is one interval
    /// from now.
    pub async fn enable_rotation(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        let now = common::now_ms();
        self.mutate(caller, self.resolve(caller, key_id).await?, Box::new(move |key| key.enable_rotation(now))).await
    }

    /// disable-key-rotation.
    pub async fn disable_rotation(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        self.mutate(caller, self.resolve(caller, key_id).await?, Box::new(|key| key.disable_rotation())).await
    }

    /// update-key-rotation-interval, in days.
    pub async fn update_rotation_interval(
        &self, caller: &CallerIdentity, key_id: &str, days: u32,
    ) -> Result<KeyRecord, KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        if !domain::ROTATION_INTERVAL_RANGE.contains(&days) {
            return Err(Rejection::InvalidRotationInterval.into());
        }
        self.mutate(caller, key_id, Box::new(move |key| key.set_rotation_interval(days))).await
    }

    /// get-key-rotation-status: the key's rotation fields and its material
    /// versions, read from the database (never the cache).
    pub async fn rotation_status(&self, caller: &CallerIdentity, key_id: &str) -> Result<RotationStatus, KmsError> {
        let key = self.load_key(caller, key_id).await?;
        let materials = self.store.material_versions(key.key_id).await?;
        Ok(RotationStatus { key, materials })
    }

    /// rotate-on-demand: new material now; the automatic schedule is left
    /// as it is.
    pub async fn rotate_on_demand(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        let key = self.rotate(&caller.project_id, key_id, Rotation::OnDemand, common::now_ms()).await?;
        tracing::info!(%key_id, version = ?key.material_version, "key rotated on demand");
        Ok(key)
    }

    /// One run of the background task: rotates the keys due at `now_ms`
    /// (days of `day_ms` milliseconds) and returns those this replica
    /// rotated. A key another replica rotated first is skipped.
    pub async fn rotate_due(&self, now_ms: i64, day_ms: i64) -> Result<Vec<KeyId>, KmsError> {
        let mut rotated = Vec::new();
        for (project_id, key_id) in self.store.due_rotations(now_ms, day_ms, ROTATIONS_PER_RUN).await? {
            match self.rotate(&project_id, key_id, Rotation::Scheduled { day_ms }, now_ms).await {
                Ok(key) => {
                    tracing::info!(%key_id, version = ?key.material_version, "key rotated on schedule");
                    rotated.push(key_id);
                }
                // Another replica won, or the key changed since the query.
                Err(KmsError::Rejected(_) | KmsError::KeyNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(rotated)
    }

    /// Runs a rotation on the locked row with fresh material for the new
    /// version (see `KmsService::mutate`).
    async fn rotate(
        &self, project_id: &str, key_id: KeyId, kind: Rotation, now_ms: i64,
    ) -> Result<KeyRecord, KmsError> {
        let root = self.root.clone();
        let wrap: WrapMaterial = Box::new(move |key| {
            let len = key.spec.material_len().ok_or(Rejection::InvalidKeySpec)?;
            let version = key.material_version.ok_or(Rejection::KeyPendingImport)?;
            Ok(root.wrap_material(&SecretBytes::random(len), key.key_id, version, &key.project_id))
        });
        self.mutate_in(project_id, key_id, Box::new(move |key| key.rotate(now_ms, kind)), Some(wrap)).await
    }
}
