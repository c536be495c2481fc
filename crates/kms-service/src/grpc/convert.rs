//! Conversions between kms.v1 protobuf messages and the domain model.
//! Prost types go no further into the service than this module and its
//! parent. Request conversions check what only the wire can get wrong
//! (enum numbers, the echoed `sequence`); the resource modules check the
//! rest.

use common::{identity::CallerIdentity, tags::ResourceQuery};
use proto::kms::v1 as pb;

use crate::{
    data::{CiphertextKind, DecryptData, EncryptData, ReEncrypt},
    datakeys::{CreateDatakey, DecryptDatakey, EncryptDatakey},
    domain::{
        self, EncryptionAlgorithm, GrantRecord, KeyId, KeyOrigin, KeyPage, KeyRecord, KeySpec, KeyState, KeyUsage,
        MacAlgorithm, MessageType, Rejection, SigningAlgorithm,
    },
    envelope::SecretBytes,
    grants::{CreateGrant, GrantPage},
    keys::{CreateKey, ListKeys, StateFilter},
    mac::MacRequest,
    rotation::RotationStatus,
    signing::Sign,
    store::{AliasRecord, Tag},
};

/// Domain spec of a proto spec; `None` for UNSPECIFIED.
pub fn spec_from_proto(value: i32) -> Result<Option<KeySpec>, Rejection> {
    use pb::KeySpec as P;
    let p = P::try_from(value).map_err(|_| Rejection::InvalidKeySpec)?;
    Ok(Some(match p {
        P::Unspecified => return Ok(None),
        P::Aes256 => KeySpec::Aes256,
        P::Sm4 => KeySpec::Sm4,
        P::Rsa2048 => KeySpec::Rsa2048,
        P::Rsa3072 => KeySpec::Rsa3072,
        P::Rsa4096 => KeySpec::Rsa4096,
        P::EcP256 => KeySpec::EcP256,
        P::EcP384 => KeySpec::EcP384,
        P::Secp256k1 => KeySpec::Secp256k1,
        P::Sm2 => KeySpec::Sm2,
        P::Ed25519 => KeySpec::Ed25519,
        P::Hmac256 => KeySpec::Hmac256,
        P::Hmac384 => KeySpec::Hmac384,
        P::Hmac512 => KeySpec::Hmac512,
        P::HmacSm3 => KeySpec::HmacSm3,
    }))
}

fn spec_to_proto(spec: KeySpec) -> pb::KeySpec {
    use pb::KeySpec as P;
    match spec {
        KeySpec::Aes256 => P::Aes256,
        KeySpec::Sm4 => P::Sm4,
        KeySpec::Rsa2048 => P::Rsa2048,
        KeySpec::Rsa3072 => P::Rsa3072,
        KeySpec::Rsa4096 => P::Rsa4096,
        KeySpec::EcP256 => P::EcP256,
        KeySpec::EcP384 => P::EcP384,
        KeySpec::Secp256k1 => P::Secp256k1,
        KeySpec::Sm2 => P::Sm2,
        KeySpec::Ed25519 => P::Ed25519,
        KeySpec::Hmac256 => P::Hmac256,
        KeySpec::Hmac384 => P::Hmac384,
        KeySpec::Hmac512 => P::Hmac512,
        KeySpec::HmacSm3 => P::HmacSm3,
    }
}

/// Domain usage of a proto usage; `None` for UNSPECIFIED.
pub fn usage_from_proto(value: i32) -> Result<Option<KeyUsage>, Rejection> {
    use pb::KeyUsage as P;
    match P::try_from(value).map_err(|_| Rejection::InvalidParameter("key_usage"))? {
        P::Unspecified => Ok(None),
        P::EncryptDecrypt => Ok(Some(KeyUsage::EncryptDecrypt)),
        P::SignVerify => Ok(Some(KeyUsage::SignVerify)),
        P::GenerateVerifyMac => Ok(Some(KeyUsage::GenerateVerifyMac)),
    }
}

fn usage_to_proto(usage: KeyUsage) -> pb::KeyUsage {
    match usage {
        KeyUsage::EncryptDecrypt => pb::KeyUsage::EncryptDecrypt,
        KeyUsage::SignVerify => pb::KeyUsage::SignVerify,
        KeyUsage::GenerateVerifyMac => pb::KeyUsage::GenerateVerifyMac,
    }
}

/// Domain origin of a proto origin; UNSPECIFIED means `kms`.
pub fn origin_from_proto(value: i32) -> Result<KeyOrigin, Rejection> {
    match pb::KeyOrigin::try_from(value).map_err(|_| Rejection::InvalidParameter("origin"))? {
        pb::KeyOrigin::Unspecified | pb::KeyOrigin::Kms => Ok(KeyOrigin::Kms),
        pb::KeyOrigin::External => Ok(KeyOrigin::External),
    }
}

/// The list filter of a proto state; UNSPECIFIED is every state.
pub fn state_from_proto(value: i32) -> Result<StateFilter, Rejection> {
    use pb::KeyState as P;
    match P::try_from(value).map_err(|_| Rejection::InvalidParameter("key_state"))? {
        P::Unspecified => Ok(StateFilter::Any),
        P::Enabled => Ok(StateFilter::Only(KeyState::Enabled)),
        P::Disabled => Ok(StateFilter::Only(KeyState::Disabled)),
        P::PendingDeletion => Ok(StateFilter::Only(KeyState::PendingDeletion)),
        P::PendingImport => Ok(StateFilter::Only(KeyState::PendingImport)),
        // Never produced by this service: such a filter matches nothing.
        P::PendingActivation => Ok(StateFilter::Nothing),
    }
}

fn state_to_proto(state: KeyState) -> pb::KeyState {
    match state {
        KeyState::Enabled => pb::KeyState::Enabled,
        KeyState::Disabled => pb::KeyState::Disabled,
        KeyState::PendingDeletion => pb::KeyState::PendingDeletion,
        KeyState::PendingImport => pb::KeyState::PendingImport,
    }
}

/// The proto view of a key.
pub fn key_to_proto(key: &KeyRecord, realm: &str) -> pb::Key {
    pb::Key {
        key_id: key.key_id.to_string(),
        domain_id: key.domain_id.clone(),
        project_id: key.project_id.clone(),
        key_alias: key.alias.clone(),
        realm: realm.to_owned(),
        key_spec: spec_to_proto(key.spec) as i32,
        key_usage: usage_to_proto(key.usage) as i32,
        key_description: key.description.clone(),
        creation_date_ms: key.creation_ms,
        scheduled_deletion_date_ms: key.scheduled_deletion_ms,
        key_state: state_to_proto(key.state) as i32,
        default_key: key.default_key,
        origin: match key.origin {
            KeyOrigin::Kms => pb::KeyOrigin::Kms,
            KeyOrigin::External => pb::KeyOrigin::External,
        } as i32,
        key_rotation_enabled: key.rotation_enabled,
        enterprise_project_id: key.enterprise_project_id.clone(),
        expiration_time_ms: key.expiration_ms,
        material_version: key.material_version,
    }
}

/// A material version's id: a UUID derived from the key id and the
/// version, so that it is stable without being stored.
fn material_id(key_id: KeyId, version: i32) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new().chain_update(key_id.0.as_bytes()).chain_update(version.to_be_bytes()).finalize();
    let bytes: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string()
}

pub fn rotation_to_proto(status: &RotationStatus) -> pb::KeyRotationStatus {
    let key = &status.key;
    pb::KeyRotationStatus {
        key_rotation_enabled: key.rotation_enabled,
        rotation_interval_days: key.rotation_interval_days,
        last_rotation_time_ms: key.last_rotation_ms,
        number_of_rotations: key.rotations,
        key_materials: status
            .materials
            .iter()
            .map(|&(version, create_time_ms)| pb::KeyMaterial {
                material_id: material_id(key.key_id, version),
                version,
                create_time_ms,
                current: key.material_version == Some(version),
            })
            .collect(),
    }
}

pub fn alias_to_proto(alias: &AliasRecord, caller: &CallerIdentity, realm: &str) -> pb::Alias {
    pb::Alias {
        alias: alias.alias.clone(),
        key_id: alias.key_id.to_string(),
        domain_id: caller.domain_id.clone(),
        alias_urn: format!("kms:{realm}:{}:alias:{}", caller.domain_id, alias.alias),
        create_time_ms: alias.create_ms,
        update_time_ms: alias.update_ms,
    }
}

pub fn tag_from_proto(tag: pb::KeyTag) -> Tag {
    (tag.key, tag.value)
}

pub fn tags_to_proto(tags: Vec<Tag>) -> Vec<pb::KeyTag> {
    tags.into_iter().map(|(key, value)| pb::KeyTag { key, value }).collect()
}

pub fn create_grant(req: pb::CreateGrantRequest) -> CreateGrant {
    CreateGrant {
        key_id: req.key_id,
        grantee: req.grantee_principal,
        grantee_type: req.grantee_principal_type,
        operations: req.operations,
        name: req.name,
        retiring_principal: req.retiring_principal,
    }
}

pub fn grant_to_proto(g: GrantRecord) -> pb::Grant {
    pb::Grant {
        grant_id: g.grant_id,
        key_id: g.key_id.to_string(),
        grantee_principal: g.grantee,
        grantee_principal_type: g.grantee_type.as_str().to_owned(),
        operations: g.operations.iter().map(|op| op.as_str().to_owned()).collect(),
        issuing_principal: g.issuing_principal,
        retiring_principal: g.retiring_principal.unwrap_or_default(),
        name: g.name,
        creation_date_ms: g.creation_ms,
    }
}

pub fn grant_page_to_proto(page: GrantPage) -> pb::ListGrantsResponse {
    pb::ListGrantsResponse {
        grants: page.grants.into_iter().map(grant_to_proto).collect(),
        total: page.total,
        next_offset: page.next_offset,
    }
}

pub fn keys_by_tags(req: pb::KeysByTagsRequest) -> ResourceQuery {
    ResourceQuery {
        action: req.action,
        limit: req.limit,
        offset: req.offset,
        tags: req.tags.into_iter().map(|t| (t.key, t.values)).collect(),
        name_contains: req.name_contains,
    }
}

/// The proto view of a page of keys.
pub fn key_page_to_proto(page: &KeyPage, realm: &str) -> pb::ListKeysResponse {
    pb::ListKeysResponse {
        keys: page.keys.iter().map(|k| key_to_proto(k, realm)).collect(),
        total: page.total,
        next_offset: page.next_offset,
    }
}

fn algorithm_from_proto(value: i32) -> Result<EncryptionAlgorithm, Rejection> {
    use pb::EncryptionAlgorithm as P;
    Ok(match P::try_from(value).map_err(|_| Rejection::InvalidParameter("encryption_algorithm"))? {
        P::Unspecified | P::SymmetricDefault => EncryptionAlgorithm::SymmetricDefault,
        P::RsaesOaepSha256 => EncryptionAlgorithm::RsaesOaepSha256,
        P::RsaesOaepSha1 => EncryptionAlgorithm::RsaesOaepSha1,
        P::Sm2Encrypt => EncryptionAlgorithm::Sm2Encrypt,
    })
}

fn signing_algorithm_from_proto(value: i32) -> Result<Option<SigningAlgorithm>, Rejection> {
    use SigningAlgorithm as A;
    use pb::SigningAlgorithm as P;
    Ok(Some(match P::try_from(value).map_err(|_| Rejection::InvalidParameter("signing_algorithm"))? {
        P::Unspecified => return Ok(None),
        P::RsassaPssSha256 => A::RsaPssSha256,
        P::RsassaPssSha384 => A::RsaPssSha384,
        P::RsassaPssSha512 => A::RsaPssSha512,
        P::RsassaPkcs1V15Sha256 => A::RsaPkcs1Sha256,
        P::RsassaPkcs1V15Sha384 => A::RsaPkcs1Sha384,
        P::RsassaPkcs1V15Sha512 => A::RsaPkcs1Sha512,
        P::EcdsaSha256 => A::EcdsaSha256,
        P::EcdsaSha384 => A::EcdsaSha384,
        P::EcdsaSha512 => A::EcdsaSha512,
        P::Sm2dsaSm3 => A::Sm2dsaSm3,
        P::Ed25519Sha512 => A::Ed25519Sha512,
        P::Ed25519PhSha512 => A::Ed25519PhSha512,
    }))
}

fn message_type_from_proto(value: i32) -> Result<MessageType, Rejection> {
    use pb::MessageType as P;
    Ok(match P::try_from(value).map_err(|_| Rejection::InvalidParameter("message_type"))? {
        P::Unspecified | P::Digest => MessageType::Digest,
        P::Raw => MessageType::Raw,
    })
}

/// sign.
pub fn sign(req: pb::SignRequest) -> Result<Sign, Rejection> {
    domain::validate_sequence(&req.sequence)?;
    Ok(Sign {
        key_id: req.key_id,
        message: req.message,
        algorithm: signing_algorithm_from_proto(req.signing_algorithm)?,
        message_type: message_type_from_proto(req.message_type)?,
    })
}

/// verify: the request as a sign request, and the signature.
pub fn verify(req: pb::VerifyRequest) -> Result<(Sign, Vec<u8>), Rejection> {
    domain::validate_sequence(&req.sequence)?;
    let sign = Sign {
        key_id: req.key_id,
        message: req.message,
        algorithm: signing_algorithm_from_proto(req.signing_algorithm)?,
        message_type: message_type_from_proto(req.message_type)?,
    };
    Ok((sign, req.signature))
}

/// generate-mac and verify-mac.
pub fn mac(key_id: String, algorithm: i32, message: Vec<u8>) -> Result<MacRequest, Rejection> {
    use pb::MacAlgorithm as P;
    let algorithm = match P::try_from(algorithm).map_err(|_| Rejection::InvalidParameter("mac_algorithm"))? {
        P::Unspecified => None,
        P::HmacSha256 => Some(MacAlgorithm::HmacSha256),
        P::HmacSha384 => Some(MacAlgorithm::HmacSha384),
        P::HmacSha512 => Some(MacAlgorithm::HmacSha512),
        P::HmacSm3 => Some(MacAlgorithm::HmacSm3),
    };
    Ok(MacRequest { key_id, algorithm, message })
}

/// re-encrypt.
pub fn re_encrypt(req: pb::ReEncryptRequest) -> Result<ReEncrypt, Rejection> {
    use pb::CiphertextKind as P;
    let kind = match P::try_from(req.kind).map_err(|_| Rejection::InvalidCiphertext)? {
        P::Datakey => CiphertextKind::Datakey,
        P::Data => CiphertextKind::Data,
        P::Unspecified => return Err(Rejection::MissingParameter("cipher_text")),
    };
    Ok(ReEncrypt {
        ciphertext: req.ciphertext,
        kind,
        source_key_id: req.source_key_id,
        source_aad: req.source_additional_authenticated_data,
        source_algorithm: algorithm_from_proto(req.source_encryption_algorithm)?,
        destination_key_id: req.destination_key_id,
        destination_aad: req.destination_additional_authenticated_data,
        destination_algorithm: algorithm_from_proto(req.destination_encryption_algorithm)?,
        datakey_length: req.datakey_length,
    })
}

/// create-key.
pub fn create_key(req: pb::CreateKeyRequest) -> Result<CreateKey, Rejection> {
    domain::validate_sequence(&req.sequence)?;
    Ok(CreateKey {
        spec: spec_from_proto(req.key_spec)?,
        usage: usage_from_proto(req.key_usage)?,
        origin: origin_from_proto(req.origin)?,
        alias: req.key_alias,
        description: req.key_description,
        enterprise_project_id: req.enterprise_project_id,
    })
}

/// list-keys.
pub fn list_keys(req: pb::ListKeysRequest) -> Result<ListKeys, Rejection> {
    domain::validate_sequence(&req.sequence)?;
    Ok(ListKeys {
        limit: req.limit,
        offset: req.offset,
        state: state_from_proto(req.key_state)?,
        spec: if req.all_specs { None } else { spec_from_proto(req.key_spec)? },
        all_specs: req.all_specs,
    })
}

/// create-datakey.
pub fn create_datakey(req: pb::CreateDatakeyRequest) -> Result<CreateDatakey, Rejection> {
    domain::validate_sequence(&req.sequence)?;
    Ok(CreateDatakey {
        key_id: req.key_id,
        length_bits: req.datakey_length_bits,
        aad: req.additional_authenticated_data,
        without_plaintext: req.without_plaintext,
    })
}

/// encrypt-datakey.
pub fn encrypt_datakey(req: pb::EncryptDatakeyRequest) -> Result<EncryptDatakey, Rejection> {
    let plaintext_with_digest = SecretBytes::new(req.plaintext_with_digest);
    domain::validate_sequence(&req.sequence)?;
    Ok(EncryptDatakey {
        key_id: req.key_id,
        plaintext_with_digest,
        datakey_length: req.datakey_length,
        aad: req.additional_authenticated_data,
    })
}

/// decrypt-datakey.
pub fn decrypt_datakey(req: pb::DecryptDatakeyRequest) -> Result<DecryptDatakey, Rejection> {
    domain::validate_sequence(&req.sequence)?;
    Ok(DecryptDatakey {
        key_id: req.key_id,
        ciphertext: req.ciphertext,
        aad: req.additional_authenticated_data,
        expected_length: req.expected_length,
    })
}

/// encrypt-data.
pub fn encrypt_data(req: pb::EncryptDataRequest) -> Result<EncryptData, Rejection> {
    let plaintext = SecretBytes::new(req.plaintext);
    domain::validate_sequence(&req.sequence)?;
    Ok(EncryptData {
        key_id: req.key_id,
        plaintext,
        algorithm: algorithm_from_proto(req.encryption_algorithm)?,
        aad: req.additional_authenticated_data,
    })
}

/// decrypt-data.
pub fn decrypt_data(req: pb::DecryptDataRequest) -> Result<DecryptData, Rejection> {
    domain::validate_sequence(&req.sequence)?;
    Ok(DecryptData {
        ciphertext: req.ciphertext,
        key_id: req.key_id,
        algorithm: algorithm_from_proto(req.encryption_algorithm)?,
        aad: req.additional_authenticated_data,
    })
}
