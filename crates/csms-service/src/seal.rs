//! Sealing secret values with a per-version data key (AES-256-GCM).
//!
//! Both AADs bind the value to its place: the data key's AAD (checked by
//! kms-service) names project, secret and version; the value's AAD adds the
//! value kind. A version copied onto another secret or version fails to open.

use crypto::{AeadKey, SecretBytes};

use crate::{domain::ValueKind, error::CsmsError};

/// AAD for the data key of one version, checked by kms-service.
pub fn data_key_aad(project_id: &str, secret_id: &str, version: i32) -> Vec<u8> {
    format!("opendew/csms/dek/v1|{project_id}|{secret_id}|v{version}").into_bytes()
}

fn value_aad(project_id: &str, secret_id: &str, version: i32, kind: ValueKind) -> Vec<u8> {
    format!("opendew/csms/value/v1|{project_id}|{secret_id}|v{version}|{}", kind.as_str()).into_bytes()
}

fn cipher(data_key: &[u8]) -> Result<AeadKey, CsmsError> {
    AeadKey::new(data_key).map_err(|_| CsmsError::Internal("data key is not 32 bytes".into()))
}

/// Seals `value`; returns nonce ‖ ciphertext ‖ tag.
pub fn seal(
    data_key: &[u8], project_id: &str, secret_id: &str, version: i32, kind: ValueKind, value: &[u8],
) -> Result<Vec<u8>, CsmsError> {
    Ok(cipher(data_key)?.seal(value, &value_aad(project_id, secret_id, version, kind)))
}

/// Opens a value sealed by [`seal`].
pub fn open(
    data_key: &[u8], project_id: &str, secret_id: &str, version: i32, kind: ValueKind, sealed: &[u8],
) -> Result<SecretBytes, CsmsError> {
    let cipher = cipher(data_key)?;
    if sealed.len() < crypto::aead::OVERHEAD {
        return Err(CsmsError::Internal(format!("stored value of secret {secret_id} v{version} is truncated")));
    }
    cipher
        .open(sealed, &value_aad(project_id, secret_id, version, kind))
        .map_err(|_| CsmsError::Internal(format!("stored value of secret {secret_id} v{version} failed to open")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_to_their_place() {
        let key = [7u8; 32];
        let sealed = seal(&key, "p", "s", 1, ValueKind::Text, b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(open(&key, "p", "s", 1, ValueKind::Text, &sealed).unwrap().expose(), b"hunter2");
        assert!(open(&key, "p", "s", 2, ValueKind::Text, &sealed).is_err());
        assert!(open(&key, "p", "t", 1, ValueKind::Text, &sealed).is_err());
        assert!(open(&key, "q", "s", 1, ValueKind::Text, &sealed).is_err());
        assert!(open(&key, "p", "s", 1, ValueKind::Binary, &sealed).is_err());
    }
}
