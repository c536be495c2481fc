//! Key rotation (kms-api.md §3.1). Unlike KeyDetails, these answers carry
//! real JSON booleans and integers where the SDK's models say so.

use axum::Json;
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;

use super::{KmsCall, KmsResult, kms_status, reason};
use crate::routes::ApiRoute;

pub(super) fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/v1.0/{project_id}/kms/enable-key-rotation", enable_key_rotation),
        ApiRoute::post("/v1.0/{project_id}/kms/disable-key-rotation", disable_key_rotation),
        ApiRoute::post("/v1.0/{project_id}/kms/get-key-rotation-status", get_key_rotation_status).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/update-key-rotation-interval", update_key_rotation_interval),
        ApiRoute::post("/v1.0/{project_id}/kms/rotate-on-demand", rotate_on_demand).acts_each_time(),
    ]
}

/// The documented empty answer.
#[derive(Debug, Serialize)]
pub struct Empty {}

fn key_request(call: &KmsCall) -> Result<tonic::Request<pb::KeyRequest>, crate::error::ApiError> {
    Ok(call.request(pb::KeyRequest { key_id: call.required("key_id")?, sequence: call.sequence()? }))
}

/// `POST /v1.0/{project_id}/kms/enable-key-rotation`: `{}`.
pub async fn enable_key_rotation(call: KmsCall) -> KmsResult<Empty> {
    call.kms().enable_key_rotation(key_request(&call)?).await.map_err(kms_status)?;
    Ok(Json(Empty {}))
}

/// `POST /v1.0/{project_id}/kms/disable-key-rotation`: `{}`.
pub async fn disable_key_rotation(call: KmsCall) -> KmsResult<Empty> {
    call.kms().disable_key_rotation(key_request(&call)?).await.map_err(kms_status)?;
    Ok(Json(Empty {}))
}

/// One material version in the rotation status.
#[derive(Debug, Serialize)]
pub struct KeyMaterial {
    material_id: String,
    charge_id: &'static str,
    create_time: String,
    expiration_time: &'static str,
    /// 2: enabled (every version still decrypts).
    state: u8,
}

/// What get-key-rotation-status answers.
#[derive(Debug, Serialize)]
pub struct RotationStatus {
    key_rotation_enabled: bool,
    rotation_interval: u32,
    last_rotation_time: String,
    number_of_rotations: u32,
    key_materials: Vec<KeyMaterial>,
}

/// `POST /v1.0/{project_id}/kms/get-key-rotation-status`.
pub async fn get_key_rotation_status(call: KmsCall) -> KmsResult<RotationStatus> {
    let s = call.kms().get_key_rotation_status(key_request(&call)?).await.map_err(kms_status)?.into_inner();
    Ok(Json(RotationStatus {
        key_rotation_enabled: s.key_rotation_enabled,
        rotation_interval: s.rotation_interval_days,
        last_rotation_time: s.last_rotation_time_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        number_of_rotations: s.number_of_rotations,
        key_materials: s
            .key_materials
            .into_iter()
            .map(|m| KeyMaterial {
                material_id: m.material_id,
                charge_id: "",
                create_time: m.create_time_ms.to_string(),
                expiration_time: "",
                state: 2,
            })
            .collect(),
    }))
}

/// `POST /v1.0/{project_id}/kms/update-key-rotation-interval`: `{}`.
/// `rotation_interval` is a JSON integer (a numeric string is accepted).
pub async fn update_key_rotation_interval(call: KmsCall) -> KmsResult<Empty> {
    let days = call.int("rotation_interval", R::InvalidRotationInterval)?.ok_or_else(|| reason(R::MissingParameter))?;
    let request = pb::UpdateKeyRotationIntervalRequest {
        key_id: call.required("key_id")?,
        // Out of u32 is out of 30-365 too; the range is kms-service's.
        rotation_interval_days: u32::try_from(days).unwrap_or(u32::MAX),
        sequence: call.sequence()?,
    };
    call.kms().update_key_rotation_interval(call.request(request)).await.map_err(kms_status)?;
    Ok(Json(Empty {}))
}

/// What rotate-on-demand answers.
#[derive(Debug, Serialize)]
pub struct Rotated {
    key_id: String,
}

/// `POST /v1.0/{project_id}/kms/rotate-on-demand` (no `sequence`).
pub async fn rotate_on_demand(call: KmsCall) -> KmsResult<Rotated> {
    let request = pb::KeyRequest { key_id: call.required("key_id")?, sequence: String::new() };
    let key = call.kms().rotate_key(call.request(request)).await.map_err(kms_status)?.into_inner().key;
    Ok(Json(Rotated { key_id: key.unwrap_or_default().key_id }))
}
