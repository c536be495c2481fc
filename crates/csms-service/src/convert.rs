//! Conversions between csms.v1 protobuf messages and the domain model.

use proto::csms::v1 as pb;

use crate::domain::{SecretRecord, SecretState, ValueKind, VersionRecord};

/// The proto view of a secret.
pub fn secret_to_proto(s: &SecretRecord) -> pb::Secret {
    pb::Secret {
        id: s.id.clone(),
        name: s.name.clone(),
        state: match s.state {
            SecretState::Enabled => pb::SecretState::Enabled,
            SecretState::Disabled => pb::SecretState::Disabled,
            SecretState::PendingDelete => pb::SecretState::PendingDelete,
            SecretState::Frozen => pb::SecretState::Frozen,
        } as i32,
        kms_key_id: s.kms_key_id.clone(),
        description: s.description.clone(),
        create_time_ms: s.create_ms,
        update_time_ms: s.update_ms,
        scheduled_delete_time_ms: s.scheduled_delete_ms,
        secret_type: s.secret_type.clone(),
        auto_rotation: s.auto_rotation,
        rotation_period: s.rotation_period.clone(),
        rotation_config: s.rotation_config.clone(),
        rotation_time_ms: s.rotation_ms,
        next_rotation_time_ms: s.next_rotation_ms,
        event_subscriptions: s.event_subscriptions.clone(),
        enterprise_project_id: s.enterprise_project_id.clone(),
        rotation_func_urn: s.rotation_func_urn.clone(),
    }
}

/// The proto view of a version's metadata.
pub fn version_metadata_to_proto(v: &VersionRecord, secret_name: &str) -> pb::VersionMetadata {
    pb::VersionMetadata {
        id: v.id(),
        create_time_ms: v.create_ms,
        expire_time_ms: v.expire_ms,
        kms_key_id: v.kms_key_id.clone(),
        secret_name: secret_name.to_owned(),
        version_stages: v.stages.clone(),
    }
}

/// Splits a proto value into kind and bytes; `None` when absent.
pub fn value_from_proto(value: Option<pb::SecretValue>) -> Option<(ValueKind, Vec<u8>)> {
    match value?.value? {
        pb::secret_value::Value::Text(text) => Some((ValueKind::Text, text.into_bytes())),
        pb::secret_value::Value::Binary(bytes) => Some((ValueKind::Binary, bytes)),
    }
}

/// Builds a proto value from opened plaintext.
pub fn value_to_proto(kind: ValueKind, plaintext: &[u8]) -> Result<pb::SecretValue, std::str::Utf8Error> {
    Ok(pb::SecretValue {
        value: Some(match kind {
            ValueKind::Text => pb::secret_value::Value::Text(std::str::from_utf8(plaintext)?.to_owned()),
            ValueKind::Binary => pb::secret_value::Value::Binary(plaintext.to_vec()),
        }),
    })
}
