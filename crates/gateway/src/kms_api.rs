//! KMS routes (`/v1.0/{project_id}/kms/...`): Huawei's stringly-typed JSON
//! (kms-api.md §1.6) in, kms.v1 gRPC calls out.

use std::sync::Arc;

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
};
use http::HeaderMap;
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde_json::{Value, json};

use crate::{
    AppState,
    auth::Caller,
    error::{ApiError, KmsFault},
    json::{BodyError, JsonBody},
};
use common::identity::CallerIdentity;

type KmsResult = Result<Json<Value>, ApiError>;

fn body_error(e: BodyError) -> ApiError {
    ApiError::kms(match e {
        BodyError::ContentType => KmsFault::BadContentType,
        BodyError::Malformed | BodyError::WrongType(_) => KmsFault::MalformedJson,
    })
}

fn reason(r: R) -> ApiError {
    ApiError::kms(KmsFault::Service(r))
}

/// Authorises the path's project and parses the body.
fn prepare(
    app: &AppState,
    caller: &Caller,
    project_id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(CallerIdentity, JsonBody), ApiError> {
    let identity = caller.for_project(app, project_id).ok_or(ApiError::kms(KmsFault::ProjectMismatch))?;
    let body = JsonBody::parse(headers, body).map_err(body_error)?;
    Ok((identity, body))
}

/// Huawei spelling → proto spec (`None` for unknown names).
pub fn spec_from_huawei(s: &str) -> Option<pb::KeySpec> {
    use pb::KeySpec as S;
    Some(match s {
        "AES_256" => S::Aes256,
        "SM4" => S::Sm4,
        "RSA_2048" => S::Rsa2048,
        "RSA_3072" => S::Rsa3072,
        "RSA_4096" => S::Rsa4096,
        "EC_P256" => S::EcP256,
        "EC_P384" => S::EcP384,
        "SECP256K1" => S::Secp256k1,
        "SM2" => S::Sm2,
        "ED25519" => S::Ed25519,
        "HMAC_256" => S::Hmac256,
        "HMAC_384" => S::Hmac384,
        "HMAC_512" => S::Hmac512,
        "HMAC_SM3" => S::HmacSm3,
        _ => return None,
    })
}

fn spec_to_huawei(spec: pb::KeySpec) -> &'static str {
    use pb::KeySpec as S;
    match spec {
        S::Unspecified | S::Aes256 => "AES_256",
        S::Sm4 => "SM4",
        S::Rsa2048 => "RSA_2048",
        S::Rsa3072 => "RSA_3072",
        S::Rsa4096 => "RSA_4096",
        S::EcP256 => "EC_P256",
        S::EcP384 => "EC_P384",
        S::Secp256k1 => "SECP256K1",
        S::Sm2 => "SM2",
        S::Ed25519 => "ED25519",
        S::Hmac256 => "HMAC_256",
        S::Hmac384 => "HMAC_384",
        S::Hmac512 => "HMAC_512",
        S::HmacSm3 => "HMAC_SM3",
    }
}

fn usage_to_huawei(usage: pb::KeyUsage) -> &'static str {
    match usage {
        pb::KeyUsage::Unspecified | pb::KeyUsage::EncryptDecrypt => "ENCRYPT_DECRYPT",
        pb::KeyUsage::SignVerify => "SIGN_VERIFY",
        pb::KeyUsage::GenerateVerifyMac => "GENERATE_VERIFY_MAC",
    }
}

fn ms_string(ms: Option<i64>) -> String {
    ms.map(|v| v.to_string()).unwrap_or_default()
}

/// The `KeyDetails` object: every number and boolean as a string.
pub fn key_details(key: &pb::Key) -> Value {
    json!({
        "key_id": key.key_id,
        "domain_id": key.domain_id,
        "key_alias": key.key_alias,
        "realm": key.realm,
        "key_spec": spec_to_huawei(key.key_spec()),
        "key_usage": usage_to_huawei(key.key_usage()),
        "key_description": key.key_description,
        "creation_date": key.creation_date_ms.to_string(),
        "scheduled_deletion_date": ms_string(key.scheduled_deletion_date_ms),
        "key_state": key.key_state.to_string(),
        "default_key_flag": if key.default_key { "1" } else { "0" },
        "key_type": "1",
        "expiration_time": ms_string(key.expiration_time_ms),
        "origin": if key.origin() == pb::KeyOrigin::External { "external" } else { "kms" },
        "key_rotation_enabled": key.key_rotation_enabled.to_string(),
        "sys_enterprise_project_id": key.enterprise_project_id,
        "keystore_id": "0",
    })
}

/// `POST /v1.0/{project_id}/kms/create-key`.
pub async fn create_key(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> KmsResult {
    let (identity, body) = prepare(&app, &caller, &project_id, &headers, &body)?;
    let s = |name| body.string(name).map_err(body_error);
    let key_spec = match s("key_spec")? {
        None => pb::KeySpec::Unspecified,
        Some(name) => spec_from_huawei(&name).ok_or_else(|| reason(R::InvalidKeySpec))?,
    };
    let key_usage = match s("key_usage")?.as_deref() {
        None => pb::KeyUsage::Unspecified,
        Some("ENCRYPT_DECRYPT") => pb::KeyUsage::EncryptDecrypt,
        Some("SIGN_VERIFY") => pb::KeyUsage::SignVerify,
        Some("GENERATE_VERIFY_MAC") => pb::KeyUsage::GenerateVerifyMac,
        Some(_) => return Err(reason(R::InvalidParameter)),
    };
    let origin = match s("origin")?.as_deref() {
        None | Some("kms") => pb::KeyOrigin::Kms,
        Some("external") => pb::KeyOrigin::External,
        Some(_) => return Err(reason(R::InvalidParameter)),
    };
    // Only the default keystore exists here; dedicated keystores are Tier 3.
    if !matches!(s("keystore_id")?.as_deref(), None | Some("") | Some("0")) {
        return Err(reason(R::InvalidParameter));
    }
    s("vm_id")?;
    let request = pb::CreateKeyRequest {
        key_alias: s("key_alias")?.unwrap_or_default(),
        key_spec: key_spec as i32,
        key_usage: key_usage as i32,
        key_description: s("key_description")?.unwrap_or_default(),
        origin: origin as i32,
        enterprise_project_id: s("enterprise_project_id")?.unwrap_or_default(),
        sequence: s("sequence")?.unwrap_or_default(),
    };
    let key = app
        .kms
        .clone()
        .create_key(identity.request(request))
        .await
        .map_err(ApiError::from_kms_status)?
        .into_inner()
        .key
        .unwrap_or_default();
    Ok(Json(json!({"key_info": {"key_id": key.key_id, "domain_id": key.domain_id, "region_id": key.realm}})))
}

/// `POST /v1.0/{project_id}/kms/describe-key`.
pub async fn describe_key(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> KmsResult {
    let (identity, body) = prepare(&app, &caller, &project_id, &headers, &body)?;
    let request = pb::DescribeKeyRequest {
        key_id: body.string("key_id").map_err(body_error)?.unwrap_or_default(),
        sequence: body.string("sequence").map_err(body_error)?.unwrap_or_default(),
    };
    let key = app
        .kms
        .clone()
        .describe_key(identity.request(request))
        .await
        .map_err(ApiError::from_kms_status)?
        .into_inner()
        .key
        .unwrap_or_default();
    Ok(Json(json!({"key_info": key_details(&key)})))
}

/// `POST /v1.0/{project_id}/kms/list-keys`.
pub async fn list_keys(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> KmsResult {
    let (identity, body) = prepare(&app, &caller, &project_id, &headers, &body)?;
    let s = |name| body.string(name).map_err(body_error);
    let limit = match s("limit")? {
        None => 0,
        Some(text) => match text.parse::<u32>() {
            Ok(n @ 1..=2000) => n,
            _ => return Err(reason(R::InvalidLimit)),
        },
    };
    let offset = match s("marker")? {
        None => 0,
        Some(text) if text.is_empty() => 0,
        Some(text) => text.parse::<u64>().map_err(|_| reason(R::InvalidMarker))?,
    };
    let key_state = match s("key_state")? {
        None => 0,
        Some(text) => match text.as_str() {
            "1" | "2" | "3" | "4" | "5" => text.parse::<i32>().unwrap_or(0),
            _ => return Err(reason(R::InvalidParameter)),
        },
    };
    let (key_spec, all_specs) = match s("key_spec")?.as_deref() {
        None => (pb::KeySpec::Aes256, false),
        Some("ALL") => (pb::KeySpec::Unspecified, true),
        Some(name) => (spec_from_huawei(name).ok_or_else(|| reason(R::InvalidKeySpec))?, false),
    };
    let request = pb::ListKeysRequest {
        limit,
        offset,
        key_state,
        key_spec: key_spec as i32,
        all_specs,
        sequence: s("sequence")?.unwrap_or_default(),
    };
    let page =
        app.kms.clone().list_keys(identity.request(request)).await.map_err(ApiError::from_kms_status)?.into_inner();
    Ok(Json(json!({
        "keys": page.keys.iter().map(|k| k.key_id.clone()).collect::<Vec<_>>(),
        "key_details": page.keys.iter().map(key_details).collect::<Vec<_>>(),
        "next_marker": page.next_offset.map(|o| o.to_string()).unwrap_or_default(),
        "truncated": page.next_offset.is_some().to_string(),
        "total": page.total,
    })))
}
