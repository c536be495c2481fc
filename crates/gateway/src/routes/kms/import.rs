//! Imported key material (kms-api.md §3.4): parameters, import, deletion.
//! Token, public key and wrapped material travel as standard Base64; the
//! expiry times are JSON integers in seconds.

use axum::Json;
use base64::Engine;
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;

use super::{KmsCall, KmsResult, kms_status, reason, rotation::Empty};
use crate::routes::ApiRoute;

pub(super) fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/v1.0/{project_id}/kms/get-parameters-for-import", get_parameters_for_import),
        ApiRoute::post("/v1.0/{project_id}/kms/import-key-material", import_key_material),
        ApiRoute::post("/v1.0/{project_id}/kms/delete-imported-key-material", delete_imported_key_material),
    ]
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Documented bounds of the Base64 fields (kms-api.md §3.4.2).
const TOKEN_CHARS: std::ops::RangeInclusive<usize> = 200..=6144;
const MATERIAL_CHARS: std::ops::RangeInclusive<usize> = 344..=360;

/// What get-parameters-for-import answers.
#[derive(Debug, Serialize)]
pub struct Parameters {
    key_id: String,
    import_token: String,
    expiration_time: i64,
    public_key: String,
}

/// `POST /v1.0/{project_id}/kms/get-parameters-for-import`.
pub async fn get_parameters_for_import(call: KmsCall) -> KmsResult<Parameters> {
    let request = pb::GetParametersForImportRequest {
        key_id: call.required("key_id")?,
        wrapping_algorithm: call.required("wrapping_algorithm")?,
        sequence: call.sequence()?,
    };
    let p = call.kms().get_parameters_for_import(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(Parameters {
        key_id: p.key_id,
        import_token: B64.encode(p.import_token),
        expiration_time: p.expiration_time_s,
        public_key: B64.encode(p.public_key),
    }))
}

/// `POST /v1.0/{project_id}/kms/import-key-material`: `{}`.
pub async fn import_key_material(call: KmsCall) -> KmsResult<Empty> {
    let token = call.required("import_token")?;
    if !TOKEN_CHARS.contains(&token.len()) {
        return Err(reason(R::ImportTokenInvalid));
    }
    let token = B64.decode(token.trim()).map_err(|_| reason(R::ImportTokenInvalid))?;
    let wrapped = call.required("encrypted_key_material")?;
    if !MATERIAL_CHARS.contains(&wrapped.len()) {
        return Err(reason(R::InvalidParameter));
    }
    let wrapped = B64.decode(wrapped.trim()).map_err(|_| reason(R::InvalidParameter))?;
    let request = pb::ImportKeyMaterialRequest {
        key_id: call.required("key_id")?,
        import_token: token,
        encrypted_key_material: wrapped,
        expiration_time_s: call.int("expiration_time", R::ExpirationNotFuture)?,
        sequence: call.sequence()?,
    };
    call.kms().import_key_material(call.request(request)).await.map_err(kms_status)?;
    Ok(Json(Empty {}))
}

/// `POST /v1.0/{project_id}/kms/delete-imported-key-material`: `{}`.
pub async fn delete_imported_key_material(call: KmsCall) -> KmsResult<Empty> {
    let request = pb::KeyRequest { key_id: call.required("key_id")?, sequence: call.sequence()? };
    call.kms().delete_imported_key_material(call.request(request)).await.map_err(kms_status)?;
    Ok(Json(Empty {}))
}
