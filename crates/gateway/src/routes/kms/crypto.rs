//! Data keys, data encryption and random bytes (kms-api.md §3): binary out
//! as upper-case hex (Base64 for encrypt-data), plaintexts zeroized once
//! written into the answer.

use axum::Json;
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use crypto::SecretString;
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;
use zeroize::Zeroizing;

use super::{KmsCall, KmsResult, kms_status, reason, upper_hex, wire_name, wire_value};
use crate::{
    error::{ApiError, KmsFault},
    routes::ApiRoute,
};

pub(super) fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/v1.0/{project_id}/kms/create-datakey", create_datakey).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/create-datakey-without-plaintext", create_datakey_without_plaintext)
            .replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/encrypt-datakey", encrypt_datakey).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/decrypt-datakey", decrypt_datakey).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/encrypt-data", encrypt_data).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/decrypt-data", decrypt_data).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/re-encrypt", re_encrypt).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/gen-random", gen_random).replayable(),
    ]
}

/// Bits of a create-datakey request: `datakey_length` wins over `key_spec`,
/// but a `key_spec` that is sent is checked either way (`KMS.1902`).
fn datakey_bits(call: &KmsCall) -> Result<u32, ApiError> {
    let spec_bits = match call.opt("key_spec")?.as_deref() {
        None | Some("AES_256") | Some("HMAC_256") | Some("HMAC_SM3") => 256,
        Some("AES_128") | Some("SM4") => 128,
        Some("HMAC_384") => 384,
        Some("HMAC_512") => 512,
        Some(_) => return Err(ApiError::Kms { fault: KmsFault::DatakeySpec, detail: String::new() }),
    };
    match call.opt("datakey_length")? {
        None => Ok(spec_bits),
        // 0 means "default" on the gRPC API, but is out of range here.
        Some(length) => match length.trim().parse::<u32>() {
            Ok(0) | Err(_) => Err(reason(R::DatakeyLengthOutOfRange)),
            Ok(bits) => Ok(bits),
        },
    }
}

async fn create(call: &KmsCall, without_plaintext: bool) -> Result<pb::CreateDatakeyResponse, ApiError> {
    call.opt("pin")?;
    call.opt("pin_type")?;
    let request = pb::CreateDatakeyRequest {
        key_id: call.text("key_id")?,
        datakey_length_bits: datakey_bits(call)?,
        additional_authenticated_data: call.aad()?,
        without_plaintext,
        sequence: call.sequence()?,
    };
    Ok(call.kms().create_datakey(call.request(request)).await.map_err(kms_status)?.into_inner())
}

/// What create-datakey answers (`plain_text` only with the plaintext).
#[derive(Debug, Serialize)]
pub struct Datakey {
    key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    plain_text: Option<SecretString>,
    cipher_text: String,
}

/// `POST /v1.0/{project_id}/kms/create-datakey`.
pub async fn create_datakey(call: KmsCall) -> KmsResult<Datakey> {
    let r = create(&call, false).await?;
    let plaintext = Zeroizing::new(r.plaintext);
    Ok(Json(Datakey {
        key_id: r.key_id,
        plain_text: Some(SecretString::new(upper_hex(&plaintext))),
        cipher_text: upper_hex(&r.ciphertext),
    }))
}

/// `POST /v1.0/{project_id}/kms/create-datakey-without-plaintext`.
pub async fn create_datakey_without_plaintext(call: KmsCall) -> KmsResult<Datakey> {
    let r = create(&call, true).await?;
    Ok(Json(Datakey { key_id: r.key_id, plain_text: None, cipher_text: upper_hex(&r.ciphertext) }))
}

/// What encrypt-datakey answers.
#[derive(Debug, Serialize)]
pub struct EncryptedDatakey {
    key_id: String,
    cipher_text: String,
    datakey_length: String,
}

/// `POST /v1.0/{project_id}/kms/encrypt-datakey`: `plain_text` is hex of the
/// data key followed by its SHA-256.
pub async fn encrypt_datakey(call: KmsCall) -> KmsResult<EncryptedDatakey> {
    let plain = Zeroizing::new(call.required("plain_text")?);
    let plaintext_with_digest =
        Zeroizing::new(hex::decode(plain.trim()).map_err(|_| reason(R::InvalidDatakeyPlaintext))?);
    let request = pb::EncryptDatakeyRequest {
        key_id: call.text("key_id")?,
        plaintext_with_digest: plaintext_with_digest.to_vec(),
        datakey_length: call.number("datakey_plain_length", R::InvalidDatakeyPlainLength)?,
        additional_authenticated_data: call.aad()?,
        sequence: call.sequence()?,
    };
    let r = call.kms().encrypt_datakey(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(EncryptedDatakey {
        key_id: r.key_id,
        cipher_text: upper_hex(&r.ciphertext),
        datakey_length: r.datakey_length.to_string(),
    }))
}

/// What decrypt-datakey answers.
#[derive(Debug, Serialize)]
pub struct DecryptedDatakey {
    data_key: SecretString,
    datakey_length: String,
    datakey_dgst: String,
}

/// `POST /v1.0/{project_id}/kms/decrypt-datakey`.
pub async fn decrypt_datakey(call: KmsCall) -> KmsResult<DecryptedDatakey> {
    let ciphertext = hex::decode(call.required("cipher_text")?.trim()).map_err(|_| reason(R::InvalidCiphertext))?;
    let request = pb::DecryptDatakeyRequest {
        key_id: call.text("key_id")?,
        ciphertext,
        additional_authenticated_data: call.aad()?,
        expected_length: call.number("datakey_cipher_length", R::InvalidDatakeyCipherLength)?,
        sequence: call.sequence()?,
    };
    if request.expected_length == 0 {
        return Err(reason(R::InvalidDatakeyCipherLength));
    }
    let r = call.kms().decrypt_datakey(call.request(request)).await.map_err(kms_status)?.into_inner();
    let plaintext = Zeroizing::new(r.plaintext);
    Ok(Json(DecryptedDatakey {
        data_key: SecretString::new(upper_hex(&plaintext)),
        datakey_length: plaintext.len().to_string(),
        datakey_dgst: upper_hex(&r.digest),
    }))
}

fn algorithm_field(call: &KmsCall, name: &'static str) -> Result<pb::EncryptionAlgorithm, ApiError> {
    match call.opt(name)?.as_deref() {
        None | Some("") => Ok(pb::EncryptionAlgorithm::Unspecified),
        Some(text) => wire_value(text, R::InvalidParameter),
    }
}

fn algorithm_name(value: i32) -> String {
    wire_name::<pb::EncryptionAlgorithm>(value, "SYMMETRIC_DEFAULT").to_owned()
}

fn encryption_algorithm(call: &KmsCall) -> Result<pb::EncryptionAlgorithm, ApiError> {
    algorithm_field(call, "encryption_algorithm")
}

/// An AAD field other than `additional_authenticated_data`, under the same
/// rule as [`KmsCall::aad`].
fn named_aad(call: &KmsCall, name: &'static str) -> Result<Vec<u8>, ApiError> {
    let aad = call.text(name)?.into_bytes();
    if aad.starts_with(super::RESERVED_AAD_PREFIX) {
        return Err(reason(R::InvalidParameter));
    }
    Ok(aad)
}

/// What re-encrypt answers.
#[derive(Debug, Serialize)]
pub struct ReEncrypted {
    key_id: String,
    source_key_id: String,
    source_encryption_algorithm: String,
    destination_encryption_algorithm: String,
    cipher_text: String,
}

/// `POST /v1.0/{project_id}/kms/re-encrypt`: a data-key blob (hex) comes
/// back as a data-key blob in hex, anything else is read as Base64 and
/// comes back Base64. A Base64 ciphertext that is also even-length hex is
/// out of the question in practice: every opendew blob's first byte makes
/// its Base64 start with a letter outside `0-9A-F` or its hex start `0`.
pub async fn re_encrypt(call: KmsCall) -> KmsResult<ReEncrypted> {
    let text = call.required("cipher_text")?;
    let text = text.trim();
    let (kind, ciphertext) = match hex::decode(text) {
        Ok(bytes) if matches!(bytes.first(), Some(0x01 | 0x03 | 0x05)) => (pb::CiphertextKind::Datakey, bytes),
        _ => (pb::CiphertextKind::Data, BASE64.decode(text).map_err(|_| reason(R::InvalidCiphertext))?),
    };
    let datakey_length = match call.opt("datakey_cipher_length")? {
        None => None,
        Some(n) => Some(n.trim().parse::<u32>().map_err(|_| reason(R::InvalidDatakeyCipherLength))?),
    };
    let request = pb::ReEncryptRequest {
        ciphertext,
        kind: kind as i32,
        source_key_id: call.text("source_key_id")?,
        source_additional_authenticated_data: named_aad(&call, "source_additional_authenticated_data")?,
        source_encryption_algorithm: algorithm_field(&call, "source_encryption_algorithm")? as i32,
        destination_key_id: call.required("destination_key_id")?,
        destination_additional_authenticated_data: named_aad(&call, "destination_additional_authenticated_data")?,
        destination_encryption_algorithm: algorithm_field(&call, "destination_encryption_algorithm")? as i32,
        datakey_length,
    };
    let r = call.kms().re_encrypt(call.request(request)).await.map_err(kms_status)?.into_inner();
    let cipher_text = if r.kind == pb::CiphertextKind::Datakey as i32 {
        upper_hex(&r.ciphertext)
    } else {
        BASE64.encode(&r.ciphertext)
    };
    Ok(Json(ReEncrypted {
        key_id: r.key_id,
        source_key_id: r.source_key_id,
        source_encryption_algorithm: algorithm_name(r.source_encryption_algorithm),
        destination_encryption_algorithm: algorithm_name(r.destination_encryption_algorithm),
        cipher_text,
    }))
}

/// What encrypt-data answers.
#[derive(Debug, Serialize)]
pub struct EncryptedData {
    key_id: String,
    cipher_text: String,
}

/// `POST /v1.0/{project_id}/kms/encrypt-data`: Base64 ciphertext out.
pub async fn encrypt_data(call: KmsCall) -> KmsResult<EncryptedData> {
    let request = pb::EncryptDataRequest {
        key_id: call.text("key_id")?,
        plaintext: call.required("plain_text")?.into_bytes(),
        encryption_algorithm: encryption_algorithm(&call)? as i32,
        additional_authenticated_data: call.aad()?,
        sequence: call.sequence()?,
    };
    let r = call.kms().encrypt_data(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(EncryptedData { key_id: r.key_id, cipher_text: BASE64.encode(&r.ciphertext) }))
}

/// What decrypt-data answers: the plaintext as text and as Base64.
#[derive(Debug, Serialize)]
pub struct DecryptedData {
    key_id: String,
    plain_text: SecretString,
    plain_text_base64: SecretString,
}

/// `POST /v1.0/{project_id}/kms/decrypt-data`: the ciphertext names its key.
pub async fn decrypt_data(call: KmsCall) -> KmsResult<DecryptedData> {
    let ciphertext = BASE64.decode(call.required("cipher_text")?.trim()).map_err(|_| reason(R::InvalidCiphertext))?;
    let request = pb::DecryptDataRequest {
        ciphertext,
        key_id: call.text("key_id")?,
        encryption_algorithm: encryption_algorithm(&call)? as i32,
        additional_authenticated_data: call.aad()?,
        sequence: call.sequence()?,
    };
    let r = call.kms().decrypt_data(call.request(request)).await.map_err(kms_status)?.into_inner();
    let plaintext = Zeroizing::new(r.plaintext);
    Ok(Json(DecryptedData {
        key_id: r.key_id,
        plain_text: SecretString::new(String::from_utf8_lossy(&plaintext).into_owned()),
        plain_text_base64: SecretString::new(BASE64.encode(&*plaintext)),
    }))
}

/// What gen-random answers.
#[derive(Debug, Serialize)]
pub struct RandomData {
    random_data: String,
}

/// `POST /v1.0/{project_id}/kms/gen-random`.
pub async fn gen_random(call: KmsCall) -> KmsResult<RandomData> {
    let request = pb::GenerateRandomRequest {
        length_bits: call.number("random_data_length", R::RandomLengthOutOfRange)?,
        sequence: call.sequence()?,
    };
    let r = call.kms().generate_random(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(RandomData { random_data: upper_hex(&r.random) }))
}
