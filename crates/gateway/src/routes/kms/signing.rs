//! Asymmetric keys and MAC keys (kms-api.md §3.5, §3.6): get-publickey,
//! sign, verify, generate-mac, verify-mac. Messages and signatures travel
//! as Base64, MACs as hex (lower-case out, either case in); `signature_valid`
//! is a string and `mac_valid` a JSON boolean, as the SDK's models say.

use axum::Json;
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;

use super::{KmsCall, KmsResult, kms_status, reason, wire_name, wire_value};
use crate::{error::ApiError, routes::ApiRoute};

pub(super) fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/v1.0/{project_id}/kms/get-publickey", get_public_key).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/sign", sign).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/verify", verify).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/generate-mac", generate_mac).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/verify-mac", verify_mac).replayable(),
    ]
}

/// A Base64 field; malformed → `KMS.0308`.
fn base64_field(call: &KmsCall, name: &'static str) -> Result<Vec<u8>, ApiError> {
    BASE64.decode(call.required(name)?.trim()).map_err(|_| reason(R::InvalidParameter))
}

fn signing_request(call: &KmsCall) -> Result<pb::SignRequest, ApiError> {
    let name = call.required("signing_algorithm")?;
    let algorithm: pb::SigningAlgorithm = wire_value(&name, R::SigningAlgorithmMismatch)?;
    let message_type = match call.opt("message_type")?.as_deref() {
        None | Some("") => pb::MessageType::Digest,
        Some(name) => wire_value(name, R::InvalidParameter)?,
    };
    Ok(pb::SignRequest {
        key_id: call.text("key_id")?,
        message: base64_field(call, "message")?,
        signing_algorithm: algorithm as i32,
        message_type: message_type as i32,
        sequence: call.sequence()?,
    })
}

/// What get-publickey answers.
#[derive(Debug, Serialize)]
pub struct PublicKey {
    key_id: String,
    public_key: String,
}

/// `POST /v1.0/{project_id}/kms/get-publickey`.
pub async fn get_public_key(call: KmsCall) -> KmsResult<PublicKey> {
    let request = pb::KeyRequest { key_id: call.text("key_id")?, sequence: call.sequence()? };
    let r = call.kms().get_public_key(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(PublicKey { key_id: r.key_id, public_key: r.public_key }))
}

/// What sign answers.
#[derive(Debug, Serialize)]
pub struct Signature {
    key_id: String,
    signature: String,
}

/// `POST /v1.0/{project_id}/kms/sign`.
pub async fn sign(call: KmsCall) -> KmsResult<Signature> {
    let request = signing_request(&call)?;
    let r = call.kms().sign(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(Signature { key_id: r.key_id, signature: BASE64.encode(&r.signature) }))
}

/// What verify answers (`"true"`/`"false"`, a string).
#[derive(Debug, Serialize)]
pub struct Verification {
    key_id: String,
    signature_valid: String,
}

/// `POST /v1.0/{project_id}/kms/verify`: a well-formed wrong signature is
/// `"false"`, not an error.
pub async fn verify(call: KmsCall) -> KmsResult<Verification> {
    let sign = signing_request(&call)?;
    let request = pb::VerifyRequest {
        key_id: sign.key_id,
        message: sign.message,
        signing_algorithm: sign.signing_algorithm,
        message_type: sign.message_type,
        signature: base64_field(&call, "signature")?,
        sequence: sign.sequence,
    };
    let r = call.kms().verify(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(Verification { key_id: r.key_id, signature_valid: r.signature_valid.to_string() }))
}

fn mac_algorithm(call: &KmsCall) -> Result<pb::MacAlgorithm, ApiError> {
    let name = call.required("mac_algorithm")?;
    wire_value(&name, R::InvalidParameter)
}

fn mac_algorithm_name(value: i32) -> String {
    wire_name::<pb::MacAlgorithm>(value, "").to_owned()
}

/// What generate-mac answers.
#[derive(Debug, Serialize)]
pub struct Mac {
    key_id: String,
    mac_algorithm: String,
    mac: String,
}

/// `POST /v1.0/{project_id}/kms/generate-mac`: the MAC in lower-case hex.
pub async fn generate_mac(call: KmsCall) -> KmsResult<Mac> {
    let request = pb::MacRequest {
        key_id: call.text("key_id")?,
        mac_algorithm: mac_algorithm(&call)? as i32,
        message: base64_field(&call, "message")?,
    };
    let r = call.kms().generate_mac(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(Mac { key_id: r.key_id, mac_algorithm: mac_algorithm_name(r.mac_algorithm), mac: hex::encode(&r.mac) }))
}

/// What verify-mac answers (`mac_valid` a JSON boolean).
#[derive(Debug, Serialize)]
pub struct MacVerification {
    key_id: String,
    mac_algorithm: String,
    mac_valid: bool,
}

/// `POST /v1.0/{project_id}/kms/verify-mac`.
pub async fn verify_mac(call: KmsCall) -> KmsResult<MacVerification> {
    let request = pb::VerifyMacRequest {
        key_id: call.text("key_id")?,
        mac_algorithm: mac_algorithm(&call)? as i32,
        message: base64_field(&call, "message")?,
        mac: hex::decode(call.required("mac")?.trim()).map_err(|_| reason(R::InvalidParameter))?,
    };
    let r = call.kms().verify_mac(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(MacVerification {
        key_id: r.key_id,
        mac_algorithm: mac_algorithm_name(r.mac_algorithm),
        mac_valid: r.mac_valid,
    }))
}
