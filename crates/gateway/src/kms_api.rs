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
    caller::Caller,
    error::{ApiError, KmsFault},
    json::{BodyError, JsonBody},
    state::AppState,
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

/// Everything the key-level handlers share: authorise, parse, and the
/// parsed body's fields with Huawei's error for each kind of problem.
struct KmsCall {
    identity: CallerIdentity,
    body: JsonBody,
}

impl KmsCall {
    fn new(
        app: &AppState,
        caller: &Caller,
        project_id: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, ApiError> {
        let (identity, body) = prepare(app, caller, project_id, headers, body)?;
        Ok(Self { identity, body })
    }

    /// An optional string field (numbers accepted).
    fn opt(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        self.body.string(name).map_err(body_error)
    }

    /// An optional string field, empty when absent.
    fn text(&self, name: &'static str) -> Result<String, ApiError> {
        Ok(self.opt(name)?.unwrap_or_default())
    }

    /// A required field: absent → `KMS.0204`.
    fn required(&self, name: &'static str) -> Result<String, ApiError> {
        self.opt(name)?.ok_or_else(|| reason(R::MissingParameter))
    }

    /// A required unsigned number sent as a string; unparsable → `bad`.
    fn number(&self, name: &'static str, bad: R) -> Result<u32, ApiError> {
        self.required(name)?.trim().parse::<u32>().map_err(|_| reason(bad))
    }

    fn aad(&self) -> Result<Vec<u8>, ApiError> {
        Ok(self.text("additional_authenticated_data")?.into_bytes())
    }
}

fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn kms_status(s: tonic::Status) -> ApiError {
    ApiError::from_kms_status(s)
}

macro_rules! kms_handler {
    ($(#[$doc:meta])* $name:ident, |$app:ident, $call:ident| $body:expr) => {
        $(#[$doc])*
        pub async fn $name(
            State($app): State<Arc<AppState>>,
            Extension(caller): Extension<Caller>,
            Path(project_id): Path<String>,
            headers: HeaderMap,
            body: Bytes,
        ) -> KmsResult {
            let $call = KmsCall::new(&$app, &caller, &project_id, &headers, &body)?;
            $body
        }
    };
}

fn key_request(call: &KmsCall) -> Result<pb::KeyRequest, ApiError> {
    Ok(pb::KeyRequest { key_id: call.text("key_id")?, sequence: call.text("sequence")? })
}

fn state_info(key: Option<pb::Key>) -> Value {
    let key = key.unwrap_or_default();
    json!({"key_id": key.key_id, "key_state": key.key_state.to_string()})
}

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/enable-key`.
    enable_key,
    |app, call| {
        let request = call.identity.request(key_request(&call)?);
        let key = app.kms.clone().enable_key(request).await.map_err(kms_status)?.into_inner().key;
        Ok(Json(json!({ "key_info": state_info(key) })))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/disable-key`.
    disable_key,
    |app, call| {
        let request = call.identity.request(key_request(&call)?);
        let key = app.kms.clone().disable_key(request).await.map_err(kms_status)?.into_inner().key;
        Ok(Json(json!({ "key_info": state_info(key) })))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/schedule-key-deletion` (answer at top level).
    schedule_key_deletion,
    |app, call| {
        let request = pb::ScheduleKeyDeletionRequest {
            key_id: call.text("key_id")?,
            pending_days: call.number("pending_days", R::InvalidPendingDays)?,
            sequence: call.text("sequence")?,
        };
        let key =
            app.kms.clone().schedule_key_deletion(call.identity.request(request)).await.map_err(kms_status)?.into_inner().key;
        Ok(Json(state_info(key)))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/cancel-key-deletion` (answer at top level).
    cancel_key_deletion,
    |app, call| {
        let request = call.identity.request(key_request(&call)?);
        let key = app.kms.clone().cancel_key_deletion(request).await.map_err(kms_status)?.into_inner().key;
        Ok(Json(state_info(key)))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/update-key-alias`.
    update_key_alias,
    |app, call| {
        let request = pb::UpdateKeyAliasRequest {
            key_id: call.text("key_id")?,
            key_alias: call.required("key_alias")?,
            sequence: call.text("sequence")?,
        };
        let key = app
            .kms
            .clone()
            .update_key_alias(call.identity.request(request))
            .await
            .map_err(kms_status)?
            .into_inner()
            .key
            .unwrap_or_default();
        Ok(Json(json!({"key_info": {"key_id": key.key_id, "key_alias": key.key_alias}})))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/update-key-description`.
    update_key_description,
    |app, call| {
        let request = pb::UpdateKeyDescriptionRequest {
            key_id: call.text("key_id")?,
            key_description: call.required("key_description")?,
            sequence: call.text("sequence")?,
        };
        let key = app
            .kms
            .clone()
            .update_key_description(call.identity.request(request))
            .await
            .map_err(kms_status)?
            .into_inner()
            .key
            .unwrap_or_default();
        Ok(Json(json!({"key_info": {"key_id": key.key_id, "key_description": key.key_description}})))
    }
);

/// Bits of a create-datakey request: `datakey_length` wins over `key_spec`.
fn datakey_bits(call: &KmsCall) -> Result<u32, ApiError> {
    if let Some(length) = call.opt("datakey_length")? {
        // 0 means "default" on the gRPC API, but is out of range here.
        return match length.trim().parse::<u32>() {
            Ok(0) | Err(_) => Err(reason(R::DatakeyLengthOutOfRange)),
            Ok(bits) => Ok(bits),
        };
    }
    match call.opt("key_spec")?.as_deref() {
        None | Some("AES_256") | Some("HMAC_256") | Some("HMAC_SM3") => Ok(256),
        Some("AES_128") | Some("SM4") => Ok(128),
        Some("HMAC_384") => Ok(384),
        Some("HMAC_512") => Ok(512),
        Some(_) => Err(ApiError::Kms { fault: KmsFault::DatakeySpec, detail: String::new() }),
    }
}

async fn create_datakey_call(
    app: &AppState,
    call: &KmsCall,
    without_plaintext: bool,
) -> Result<pb::CreateDatakeyResponse, ApiError> {
    call.opt("pin")?;
    call.opt("pin_type")?;
    let request = pb::CreateDatakeyRequest {
        key_id: call.text("key_id")?,
        datakey_length_bits: datakey_bits(call)?,
        additional_authenticated_data: call.aad()?,
        without_plaintext,
        sequence: call.text("sequence")?,
    };
    Ok(app.kms.clone().create_datakey(call.identity.request(request)).await.map_err(kms_status)?.into_inner())
}

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/create-datakey`.
    create_datakey,
    |app, call| {
        let r = create_datakey_call(&app, &call, false).await?;
        Ok(Json(json!({"key_id": r.key_id, "plain_text": upper_hex(&r.plaintext), "cipher_text": upper_hex(&r.ciphertext)})))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/create-datakey-without-plaintext`.
    create_datakey_without_plaintext,
    |app, call| {
        let r = create_datakey_call(&app, &call, true).await?;
        Ok(Json(json!({"key_id": r.key_id, "cipher_text": upper_hex(&r.ciphertext)})))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/encrypt-datakey`: `plain_text` is hex of
    /// the data key followed by its SHA-256.
    encrypt_datakey,
    |app, call| {
        let plain = call.required("plain_text")?;
        let plaintext_with_digest = zeroize::Zeroizing::new(
            hex::decode(plain.trim()).map_err(|_| reason(R::InvalidDatakeyPlaintext))?,
        );
        let request = pb::EncryptDatakeyRequest {
            key_id: call.text("key_id")?,
            plaintext_with_digest: plaintext_with_digest.to_vec(),
            datakey_length: call.number("datakey_plain_length", R::InvalidDatakeyPlainLength)?,
            additional_authenticated_data: call.aad()?,
            sequence: call.text("sequence")?,
        };
        let r = app.kms.clone().encrypt_datakey(call.identity.request(request)).await.map_err(kms_status)?.into_inner();
        Ok(Json(json!({
            "key_id": r.key_id,
            "cipher_text": upper_hex(&r.ciphertext),
            "datakey_length": r.datakey_length.to_string(),
        })))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/decrypt-datakey`.
    decrypt_datakey,
    |app, call| {
        let ciphertext = hex::decode(call.required("cipher_text")?.trim()).map_err(|_| reason(R::InvalidCiphertext))?;
        let request = pb::DecryptDatakeyRequest {
            key_id: call.text("key_id")?,
            ciphertext,
            additional_authenticated_data: call.aad()?,
            expected_length: call.number("datakey_cipher_length", R::InvalidDatakeyCipherLength)?,
            sequence: call.text("sequence")?,
        };
        let expected = request.expected_length;
        if expected == 0 {
            return Err(reason(R::InvalidDatakeyCipherLength));
        }
        let r = app.kms.clone().decrypt_datakey(call.identity.request(request)).await.map_err(kms_status)?.into_inner();
        let plaintext = zeroize::Zeroizing::new(r.plaintext);
        Ok(Json(json!({
            "data_key": upper_hex(&plaintext),
            "datakey_length": plaintext.len().to_string(),
            "datakey_dgst": upper_hex(&r.digest),
        })))
    }
);

fn encryption_algorithm(call: &KmsCall) -> Result<pb::EncryptionAlgorithm, ApiError> {
    Ok(match call.opt("encryption_algorithm")?.as_deref() {
        None | Some("") => pb::EncryptionAlgorithm::Unspecified,
        Some("SYMMETRIC_DEFAULT") => pb::EncryptionAlgorithm::SymmetricDefault,
        Some("RSAES_OAEP_SHA_256") => pb::EncryptionAlgorithm::RsaesOaepSha256,
        Some("SM2_ENCRYPT") => pb::EncryptionAlgorithm::Sm2Encrypt,
        Some(_) => return Err(reason(R::InvalidParameter)),
    })
}

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/encrypt-data`: Base64 ciphertext out.
    encrypt_data,
    |app, call| {
        use base64::Engine;
        let request = pb::EncryptDataRequest {
            key_id: call.text("key_id")?,
            plaintext: call.required("plain_text")?.into_bytes(),
            encryption_algorithm: encryption_algorithm(&call)? as i32,
            additional_authenticated_data: call.aad()?,
            sequence: call.text("sequence")?,
        };
        let r = app.kms.clone().encrypt_data(call.identity.request(request)).await.map_err(kms_status)?.into_inner();
        Ok(Json(json!({
            "key_id": r.key_id,
            "cipher_text": base64::engine::general_purpose::STANDARD.encode(&r.ciphertext),
        })))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/decrypt-data`: the ciphertext names its key.
    decrypt_data,
    |app, call| {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let ciphertext = engine.decode(call.required("cipher_text")?.trim()).map_err(|_| reason(R::InvalidCiphertext))?;
        let request = pb::DecryptDataRequest {
            ciphertext,
            key_id: call.text("key_id")?,
            encryption_algorithm: encryption_algorithm(&call)? as i32,
            additional_authenticated_data: call.aad()?,
            sequence: call.text("sequence")?,
        };
        let r = app.kms.clone().decrypt_data(call.identity.request(request)).await.map_err(kms_status)?.into_inner();
        let plaintext = zeroize::Zeroizing::new(r.plaintext);
        Ok(Json(json!({
            "key_id": r.key_id,
            "plain_text": String::from_utf8_lossy(&plaintext),
            "plain_text_base64": engine.encode(&*plaintext),
        })))
    }
);

kms_handler!(
    /// `POST /v1.0/{project_id}/kms/gen-random`.
    gen_random,
    |app, call| {
        let request = pb::GenerateRandomRequest {
            length_bits: call.number("random_data_length", R::RandomLengthOutOfRange)?,
            sequence: call.text("sequence")?,
        };
        let r = app.kms.clone().generate_random(call.identity.request(request)).await.map_err(kms_status)?.into_inner();
        Ok(Json(json!({ "random_data": upper_hex(&r.random) })))
    }
);

async fn quotas(app: &AppState, call: &KmsCall) -> Result<pb::GetQuotasResponse, ApiError> {
    Ok(app
        .kms
        .clone()
        .get_quotas(call.identity.request(pb::GetQuotasRequest {}))
        .await
        .map_err(kms_status)?
        .into_inner())
}

/// Grants are not implemented yet; their quota is reported as documented.
const GRANTS_PER_KEY_QUOTA: u64 = 100;

kms_handler!(
    /// `GET /v1.0/{project_id}/kms/user-quotas`.
    user_quotas,
    |app, call| {
        let q = quotas(&app, &call).await?;
        Ok(Json(json!({"quotas": {"resources": [
            {"type": "CMK", "used": q.keys_used, "quota": q.keys_quota},
            {"type": "grant_per_CMK", "used": 0, "quota": GRANTS_PER_KEY_QUOTA},
        ]}})))
    }
);

kms_handler!(
    /// `GET /v1.0/{project_id}/kms/user-instances`.
    user_instances,
    |app, call| {
        let q = quotas(&app, &call).await?;
        Ok(Json(json!({ "instance_num": q.keys_used })))
    }
);

/// The one API version, as `GET /` and `GET /v1.0` describe it.
fn version_detail(headers: &HeaderMap) -> Value {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    json!({
        "id": "v1.0",
        "links": [{"href": format!("{scheme}://{host}/v1.0/"), "rel": "self"}],
        "version": "",
        "status": "CURRENT",
        "updated": "2016-10-29T02:00:00Z",
        "min_version": "",
    })
}

/// `GET /`: the API versions (no authentication needed).
pub async fn versions(headers: HeaderMap) -> Json<Value> {
    Json(json!({ "versions": [version_detail(&headers)] }))
}

/// `GET /{version_id}`: one API version.
pub async fn version(Path(version_id): Path<String>, headers: HeaderMap) -> KmsResult {
    if version_id != "v1.0" {
        return Err(ApiError::kms(KmsFault::UnknownVersion));
    }
    Ok(Json(json!({ "version": version_detail(&headers) })))
}
