//! Conversions between kms.v1 protobuf messages and the domain model.
//! Prost types go no further into the service than this module and its
//! parent. Request conversions check what only the wire can get wrong
//! (enum numbers, the echoed `sequence`); the resource modules check the
//! rest.

use common::{identity::CallerIdentity, tags::ResourceQuery};
use proto::{kms::v1 as pb, wire::WireName};

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

/// The domain value of a proto enum number, through Huawei's spelling,
/// which both sides share (`proto::wire::WireName`, the domain's `string_enum!`);
/// `None` for UNSPECIFIED, `bad` for numbers outside the enum.
fn from_wire<P, D>(value: i32, parse: fn(&str) -> Option<D>, bad: Rejection) -> Result<Option<D>, Rejection>
where
    P: WireName + TryFrom<i32>,
{
    let Ok(value) = P::try_from(value) else { return Err(bad) };
    match value.huawei_name() {
        None => Ok(None),
        Some(name) => parse(name).map(Some).ok_or(bad),
    }
}

/// The proto number of a domain value (spelled as Huawei does).
fn to_wire<P: WireName + Into<i32>>(name: &str) -> i32 {
    // Every domain value has its proto twin: `every_domain_value_is_on_the_wire`.
    P::from_huawei_name(name).map_or(0, Into::into)
}

/// Domain spec of a proto spec; `None` for UNSPECIFIED.
pub fn spec_from_proto(value: i32) -> Result<Option<KeySpec>, Rejection> {
    from_wire::<pb::KeySpec, _>(value, KeySpec::parse, Rejection::InvalidKeySpec)
}

/// Domain usage of a proto usage; `None` for UNSPECIFIED.
pub fn usage_from_proto(value: i32) -> Result<Option<KeyUsage>, Rejection> {
    from_wire::<pb::KeyUsage, _>(value, KeyUsage::parse, Rejection::InvalidParameter("key_usage"))
}

/// Domain origin of a proto origin; UNSPECIFIED means `kms`. (The domain
/// stores Huawei's lower-case spelling, the proto name is upper case.)
pub fn origin_from_proto(value: i32) -> Result<KeyOrigin, Rejection> {
    let parse = |name: &str| KeyOrigin::parse(&name.to_ascii_lowercase());
    Ok(from_wire::<pb::KeyOrigin, _>(value, parse, Rejection::InvalidParameter("origin"))?.unwrap_or(KeyOrigin::Kms))
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
        key_spec: to_wire::<pb::KeySpec>(key.spec.as_str()),
        key_usage: to_wire::<pb::KeyUsage>(key.usage.as_str()),
        key_description: key.description.clone(),
        creation_date_ms: key.creation_ms,
        scheduled_deletion_date_ms: key.scheduled_deletion_ms,
        key_state: state_to_proto(key.state) as i32,
        default_key: key.default_key,
        origin: to_wire::<pb::KeyOrigin>(&key.origin.as_str().to_ascii_uppercase()),
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
    let bad = Rejection::InvalidParameter("encryption_algorithm");
    Ok(from_wire::<pb::EncryptionAlgorithm, _>(value, EncryptionAlgorithm::parse, bad)?
        .unwrap_or(EncryptionAlgorithm::SymmetricDefault))
}

fn signing_algorithm_from_proto(value: i32) -> Result<Option<SigningAlgorithm>, Rejection> {
    let bad = Rejection::InvalidParameter("signing_algorithm");
    from_wire::<pb::SigningAlgorithm, _>(value, SigningAlgorithm::parse, bad)
}

fn message_type_from_proto(value: i32) -> Result<MessageType, Rejection> {
    let bad = Rejection::InvalidParameter("message_type");
    Ok(from_wire::<pb::MessageType, _>(value, MessageType::parse, bad)?.unwrap_or(MessageType::Digest))
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
    let bad = Rejection::InvalidParameter("mac_algorithm");
    let algorithm = from_wire::<pb::MacAlgorithm, _>(algorithm, MacAlgorithm::parse, bad)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Both directions of every wire enum, so that a value added on one
    /// side only fails here instead of answering UNSPECIFIED.
    #[test]
    fn every_domain_value_is_on_the_wire() {
        fn both_ways<P: WireName + TryFrom<i32> + Into<i32>, D: Copy + PartialEq + std::fmt::Debug>(
            all: &[D], name: fn(D) -> &'static str, parse: fn(&str) -> Option<D>,
        ) {
            for &value in all {
                let number = to_wire::<P>(name(value));
                assert_ne!(number, 0, "{value:?} has no proto value");
                assert_eq!(from_wire::<P, D>(number, parse, Rejection::InvalidKeySpec), Ok(Some(value)));
            }
            let wire = (1..).take_while(|n| P::try_from(*n).is_ok()).count();
            assert_eq!(wire, all.len(), "the proto enum has values the domain lacks");
        }
        both_ways::<pb::KeySpec, _>(KeySpec::ALL, KeySpec::as_str, KeySpec::parse);
        both_ways::<pb::KeyUsage, _>(KeyUsage::ALL, KeyUsage::as_str, KeyUsage::parse);
        both_ways::<pb::SigningAlgorithm, _>(SigningAlgorithm::ALL, SigningAlgorithm::as_str, SigningAlgorithm::parse);
        both_ways::<pb::MessageType, _>(MessageType::ALL, MessageType::as_str, MessageType::parse);
        both_ways::<pb::MacAlgorithm, _>(MacAlgorithm::ALL, MacAlgorithm::as_str, MacAlgorithm::parse);
        let algorithms = EncryptionAlgorithm::ALL;
        both_ways::<pb::EncryptionAlgorithm, _>(algorithms, EncryptionAlgorithm::as_str, EncryptionAlgorithm::parse);
        for &origin in KeyOrigin::ALL {
            let number = to_wire::<pb::KeyOrigin>(&origin.as_str().to_ascii_uppercase());
            assert_eq!(origin_from_proto(number), Ok(origin));
        }
    }
}
