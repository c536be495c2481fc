//! Per-message keys derived from long-lived key material.
//!
//! AES-GCM with random 96-bit nonces is safe for about 2^32 messages per
//! key; a master key serving 10k encryptions a second reaches that in
//! days. So the newer ciphertext formats never seal under the material
//! itself: each message draws a fresh 128-bit salt and seals under
//!
//! ```text
//! HKDF-Expand-SHA256(PRK = material, info = context ‖ salt, L = 32)
//! ```
//!
//! (RFC 5869 §2.3; the material is 32 uniformly random bytes, so it is a
//! valid pseudorandom key and the extract step adds nothing). A derived key
//! seals one message, still with a random nonce, so a repeated (key, nonce)
//! pair needs a salt collision *and* a nonce collision: about 2^112
//! messages per material, not 2^32.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{
    AeadKey,
    aead::{KEY_LEN, KeyLengthError, SM4_KEY_LEN},
};

/// Length of the per-message salt.
pub const SALT_LEN: usize = 16;

/// A fresh random salt.
pub fn fresh_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    crate::secret::fill_random(&mut salt);
    salt
}

/// The one-message key for `salt` under `material`, separated by
/// `context` (each format names its own, so a key derived for one format
/// never serves another).
pub fn message_key(material: &[u8], context: &[u8], salt: &[u8; SALT_LEN]) -> Result<AeadKey, KeyLengthError> {
    if material.len() != KEY_LEN {
        return Err(KeyLengthError(material.len()));
    }
    let prk = Hkdf::<Sha256>::from_prk(material).map_err(|_| KeyLengthError(material.len()))?;
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // `expand_multi_info` hashes the two parts as one info string without
    // building it in a buffer.
    prk.expand_multi_info(&[context, salt], okm.as_mut()).expect("32 bytes is below HKDF-SHA256's 8160-byte limit");
    AeadKey::new(okm.as_ref())
}

/// The one-message SM4-GCM key for `salt` under 16 bytes of SM4
/// `material`: HKDF-Expand over HMAC-SM3 (the SM suite end to end),
/// `info = context ‖ salt`, 16 bytes.
pub fn sm4_message_key(material: &[u8], context: &[u8], salt: &[u8; SALT_LEN]) -> Result<AeadKey, KeyLengthError> {
    if material.len() != SM4_KEY_LEN {
        return Err(KeyLengthError(material.len()));
    }
    // HKDF-Expand's PRK must be at least a hash long; SM4 material is 16
    // bytes, so the extract step (HMAC-SM3 with an empty salt) makes it one.
    let prk = Hkdf::<sm3::Sm3>::new(None, material);
    let mut okm = Zeroizing::new([0u8; SM4_KEY_LEN]);
    prk.expand_multi_info(&[context, salt], okm.as_mut()).expect("16 bytes is below HKDF-SM3's limit");
    AeadKey::sm4(okm.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 test case 1's PRK and OKM: `from_prk` plus expand is
    /// HKDF-Expand exactly.
    #[test]
    fn expand_matches_rfc_5869() {
        let prk = hex::decode("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::from_prk(&prk).unwrap().expand_multi_info(&[&info[..4], &info[4..]], &mut okm).unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn keys_differ_by_salt_and_context_and_need_32_bytes_of_material() {
        let material = [9u8; 32];
        let (a, b) = ([1u8; SALT_LEN], [2u8; SALT_LEN]);
        let sealed = message_key(&material, b"ctx", &a).unwrap().seal(b"msg", b"");
        assert_eq!(message_key(&material, b"ctx", &a).unwrap().open(&sealed, b"").unwrap().expose(), b"msg");
        assert!(message_key(&material, b"ctx", &b).unwrap().open(&sealed, b"").is_err());
        assert!(message_key(&material, b"other", &a).unwrap().open(&sealed, b"").is_err());
        assert!(message_key(&[9u8; 31], b"ctx", &a).is_err());
        let sm4 = sm4_message_key(&[9u8; 16], b"ctx", &a).unwrap().seal(b"msg", b"");
        assert_eq!(sm4_message_key(&[9u8; 16], b"ctx", &a).unwrap().open(&sm4, b"").unwrap().expose(), b"msg");
        assert!(sm4_message_key(&[9u8; 16], b"ctx", &b).unwrap().open(&sm4, b"").is_err());
        assert!(message_key(&material, b"ctx", &a).unwrap().open(&sm4, b"").is_err());
        assert!(sm4_message_key(&[9u8; 32], b"ctx", &a).is_err());
        assert_ne!(fresh_salt(), fresh_salt());
    }
}
