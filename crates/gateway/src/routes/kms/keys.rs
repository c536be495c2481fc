//! Key lifecycle: create, describe, list, enable/disable, deletion and its
//! cancellation, alias and description (kms-api.md §2).

use axum::Json;
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;

use super::{KmsCall, KmsResult, kms_status, reason, wire_name, wire_value};
use crate::routes::ApiRoute;

pub(super) fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/v1.0/{project_id}/kms/create-key", create_key),
        ApiRoute::post("/v1.0/{project_id}/kms/describe-key", describe_key).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/list-keys", list_keys).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/enable-key", enable_key),
        ApiRoute::post("/v1.0/{project_id}/kms/disable-key", disable_key),
        ApiRoute::post("/v1.0/{project_id}/kms/schedule-key-deletion", schedule_key_deletion),
        ApiRoute::post("/v1.0/{project_id}/kms/cancel-key-deletion", cancel_key_deletion),
        ApiRoute::post("/v1.0/{project_id}/kms/update-key-alias", update_key_alias),
        ApiRoute::post("/v1.0/{project_id}/kms/update-key-description", update_key_description),
    ]
}

/// `{"key_info": …}`, the envelope of most key answers.
#[derive(Debug, Serialize)]
pub struct KeyInfo<T> {
    /// The answer.
    pub key_info: T,
}

/// The `KeyDetails` object: every number and boolean as a string.
#[derive(Debug, Serialize)]
pub struct KeyDetails {
    key_id: String,
    domain_id: String,
    key_alias: String,
    realm: String,
    key_spec: &'static str,
    key_usage: &'static str,
    key_description: String,
    creation_date: String,
    scheduled_deletion_date: String,
    key_state: String,
    default_key_flag: &'static str,
    key_type: &'static str,
    expiration_time: String,
    origin: &'static str,
    key_rotation_enabled: String,
    sys_enterprise_project_id: String,
    keystore_id: &'static str,
}

impl From<pb::Key> for KeyDetails {
    fn from(key: pb::Key) -> Self {
        let ms_string = |ms: Option<i64>| ms.map(|v| v.to_string()).unwrap_or_default();
        Self {
            key_spec: wire_name::<pb::KeySpec>(key.key_spec, "AES_256"),
            key_usage: wire_name::<pb::KeyUsage>(key.key_usage, "ENCRYPT_DECRYPT"),
            origin: if key.origin() == pb::KeyOrigin::External { "external" } else { "kms" },
            creation_date: key.creation_date_ms.to_string(),
            scheduled_deletion_date: ms_string(key.scheduled_deletion_date_ms),
            key_state: key.key_state.to_string(),
            default_key_flag: if key.default_key { "1" } else { "0" },
            key_type: "1",
            expiration_time: ms_string(key.expiration_time_ms),
            key_rotation_enabled: key.key_rotation_enabled.to_string(),
            keystore_id: "0",
            key_id: key.key_id,
            domain_id: key.domain_id,
            key_alias: key.key_alias,
            realm: key.realm,
            key_description: key.key_description,
            sys_enterprise_project_id: key.enterprise_project_id,
        }
    }
}

/// What create-key answers.
#[derive(Debug, Serialize)]
pub struct CreatedKey {
    key_id: String,
    domain_id: String,
    region_id: String,
}

/// `POST /v1.0/{project_id}/kms/create-key`.
pub async fn create_key(call: KmsCall) -> KmsResult<KeyInfo<CreatedKey>> {
    let key_spec = match call.opt("key_spec")? {
        None => pb::KeySpec::Unspecified,
        Some(name) => wire_value(&name, R::InvalidKeySpec)?,
    };
    let key_usage = match call.opt("key_usage")? {
        None => pb::KeyUsage::Unspecified,
        Some(name) => wire_value(&name, R::InvalidParameter)?,
    };
    let origin = match call.opt("origin")?.as_deref() {
        None | Some("kms") => pb::KeyOrigin::Kms,
        Some("external") => pb::KeyOrigin::External,
        Some(_) => return Err(reason(R::InvalidParameter)),
    };
    // Only the default keystore exists here; dedicated keystores are Tier 3.
    if !matches!(call.opt("keystore_id")?.as_deref(), None | Some("") | Some("0")) {
        return Err(reason(R::InvalidParameter));
    }
    call.opt("vm_id")?;
    let request = pb::CreateKeyRequest {
        key_alias: call.required("key_alias")?,
        key_spec: key_spec as i32,
        key_usage: key_usage as i32,
        key_description: call.text("key_description")?,
        origin: origin as i32,
        enterprise_project_id: call.text("enterprise_project_id")?,
        sequence: call.sequence()?,
    };
    let key = call.kms().create_key(call.request(request)).await.map_err(kms_status)?.into_inner().key;
    let key = key.unwrap_or_default();
    Ok(Json(KeyInfo { key_info: CreatedKey { key_id: key.key_id, domain_id: key.domain_id, region_id: key.realm } }))
}

/// `POST /v1.0/{project_id}/kms/describe-key`.
pub async fn describe_key(call: KmsCall) -> KmsResult<KeyInfo<KeyDetails>> {
    let request = pb::DescribeKeyRequest { key_id: call.text("key_id")?, sequence: call.sequence()? };
    let key = call.kms().describe_key(call.request(request)).await.map_err(kms_status)?.into_inner().key;
    Ok(Json(KeyInfo { key_info: key.unwrap_or_default().into() }))
}

/// What list-keys answers.
#[derive(Debug, Serialize)]
pub struct KeyList {
    keys: Vec<String>,
    key_details: Vec<KeyDetails>,
    next_marker: String,
    truncated: String,
    total: u64,
}

/// `POST /v1.0/{project_id}/kms/list-keys`.
pub async fn list_keys(call: KmsCall) -> KmsResult<KeyList> {
    // The range is kms-service's to check; the wire's is a number.
    let limit = match call.opt("limit")? {
        None => None,
        Some(text) => Some(text.parse::<u32>().map_err(|_| reason(R::InvalidLimit))?),
    };
    let offset = match call.opt("marker")? {
        None => 0,
        Some(text) if text.is_empty() => 0,
        Some(text) => text.parse::<u64>().map_err(|_| reason(R::InvalidMarker))?,
    };
    let key_state = match call.opt("key_state")? {
        None => 0,
        Some(text) => match text.as_str() {
            "1" | "2" | "3" | "4" | "5" => text.parse::<i32>().unwrap_or(0),
            _ => return Err(reason(R::InvalidParameter)),
        },
    };
    let (key_spec, all_specs) = match call.opt("key_spec")?.as_deref() {
        None => (pb::KeySpec::Aes256, false),
        Some("ALL") => (pb::KeySpec::Unspecified, true),
        Some(name) => (wire_value(name, R::InvalidKeySpec)?, false),
    };
    let request = pb::ListKeysRequest {
        limit,
        offset,
        key_state,
        key_spec: key_spec as i32,
        all_specs,
        sequence: call.sequence()?,
    };
    let page = call.kms().list_keys(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(KeyList {
        keys: page.keys.iter().map(|k| k.key_id.clone()).collect(),
        next_marker: page.next_offset.map(|o| o.to_string()).unwrap_or_default(),
        truncated: page.next_offset.is_some().to_string(),
        total: page.total,
        key_details: page.keys.into_iter().map(KeyDetails::from).collect(),
    }))
}

/// A key's id and state, as the state changes answer.
#[derive(Debug, Serialize)]
pub struct KeyState {
    key_id: String,
    key_state: String,
}

impl From<Option<pb::Key>> for KeyState {
    fn from(key: Option<pb::Key>) -> Self {
        let key = key.unwrap_or_default();
        Self { key_id: key.key_id, key_state: key.key_state.to_string() }
    }
}

fn key_request(call: &KmsCall) -> Result<tonic::Request<pb::KeyRequest>, crate::error::ApiError> {
    Ok(call.request(pb::KeyRequest { key_id: call.text("key_id")?, sequence: call.sequence()? }))
}

/// `POST /v1.0/{project_id}/kms/enable-key`.
pub async fn enable_key(call: KmsCall) -> KmsResult<KeyInfo<KeyState>> {
    let key = call.kms().enable_key(key_request(&call)?).await.map_err(kms_status)?.into_inner().key;
    Ok(Json(KeyInfo { key_info: key.into() }))
}

/// `POST /v1.0/{project_id}/kms/disable-key`.
pub async fn disable_key(call: KmsCall) -> KmsResult<KeyInfo<KeyState>> {
    let key = call.kms().disable_key(key_request(&call)?).await.map_err(kms_status)?.into_inner().key;
    Ok(Json(KeyInfo { key_info: key.into() }))
}

/// `POST /v1.0/{project_id}/kms/schedule-key-deletion` (answer at top level).
pub async fn schedule_key_deletion(call: KmsCall) -> KmsResult<KeyState> {
    let request = pb::ScheduleKeyDeletionRequest {
        key_id: call.text("key_id")?,
        pending_days: call.number("pending_days", R::InvalidPendingDays)?,
        sequence: call.sequence()?,
    };
    let key = call.kms().schedule_key_deletion(call.request(request)).await.map_err(kms_status)?.into_inner().key;
    Ok(Json(key.into()))
}

/// `POST /v1.0/{project_id}/kms/cancel-key-deletion` (answer at top level).
pub async fn cancel_key_deletion(call: KmsCall) -> KmsResult<KeyState> {
    let key = call.kms().cancel_key_deletion(key_request(&call)?).await.map_err(kms_status)?.into_inner().key;
    Ok(Json(key.into()))
}

/// What update-key-alias answers.
#[derive(Debug, Serialize)]
pub struct KeyAlias {
    key_id: String,
    key_alias: String,
}

/// `POST /v1.0/{project_id}/kms/update-key-alias`.
pub async fn update_key_alias(call: KmsCall) -> KmsResult<KeyInfo<KeyAlias>> {
    let request = pb::UpdateKeyAliasRequest {
        key_id: call.text("key_id")?,
        key_alias: call.required("key_alias")?,
        sequence: call.sequence()?,
    };
    let key = call.kms().update_key_alias(call.request(request)).await.map_err(kms_status)?.into_inner().key;
    let key = key.unwrap_or_default();
    Ok(Json(KeyInfo { key_info: KeyAlias { key_id: key.key_id, key_alias: key.key_alias } }))
}

/// What update-key-description answers.
#[derive(Debug, Serialize)]
pub struct KeyDescription {
    key_id: String,
    key_description: String,
}

/// `POST /v1.0/{project_id}/kms/update-key-description`.
pub async fn update_key_description(call: KmsCall) -> KmsResult<KeyInfo<KeyDescription>> {
    let request = pb::UpdateKeyDescriptionRequest {
        key_id: call.text("key_id")?,
        key_description: call.required("key_description")?,
        sequence: call.sequence()?,
    };
    let key = call.kms().update_key_description(call.request(request)).await.map_err(kms_status)?.into_inner().key;
    let key = key.unwrap_or_default();
    Ok(Json(KeyInfo { key_info: KeyDescription { key_id: key.key_id, key_description: key.key_description } }))
}
