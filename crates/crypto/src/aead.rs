//! AES-256-GCM (and, for SM4 keys, SM4-GCM: GCM over the SM4 block
//! cipher, RFC 8998) with a fresh random 96-bit nonce per message and
//! caller-supplied associated data.
//!
//! The sealed form is `nonce (12) ‖ ciphertext ‖ tag (16)`, the layout
//! every opendew format embeds (docs/ciphertext-format.md,
//! docs/secret-backup-format.md). Opening never says why it failed: a
//! wrong key, a wrong AAD, a flipped bit and a truncation all look alike.

use aes_gcm::{
    Aes256Gcm, AesGcm, Nonce,
    aead::{AeadInPlace, KeyInit, consts::U12},
};

use crate::SecretBytes;

/// Nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a plaintext: nonce and tag.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// SM4 key length in bytes.
pub const SM4_KEY_LEN: usize = 16;

/// SM4 in GCM mode with a 96-bit nonce (RFC 8998's SM4-GCM).
type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

/// An AES-256-GCM or SM4-GCM key, ready to seal and open. The AES schedule
/// is wiped on drop (aes-gcm's `zeroize` feature) and `Debug` never shows
/// either.
#[derive(Clone)]
pub struct AeadKey(Cipher);

// AES-256-GCM is the hot path and stays inline (a per-message key costs no
// allocation); the rarer SM4 schedule is boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Cipher {
    Aes(Aes256Gcm),
    Sm4(Box<Sm4Gcm>),
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

/// The key is not [`KEY_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an AES-256-GCM key is 32 bytes, not {0}")]
pub struct KeyLengthError(pub usize);

/// A sealed blob did not open: wrong key, wrong associated data, tampered
/// or truncated. Deliberately without detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ciphertext does not open")]
pub struct OpenError;

impl AeadKey {
    /// An AES-256-GCM key from exactly 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, KeyLengthError> {
        Aes256Gcm::new_from_slice(key).map(|k| Self(Cipher::Aes(k))).map_err(|_| KeyLengthError(key.len()))
    }

    /// An SM4-GCM key from exactly 16 bytes.
    pub fn sm4(key: &[u8]) -> Result<Self, KeyLengthError> {
        Sm4Gcm::new_from_slice(key).map(|k| Self(Cipher::Sm4(Box::new(k)))).map_err(|_| KeyLengthError(key.len()))
    }

    /// Seals `plaintext` bound to `aad`: `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        self.seal_into(&mut out, plaintext, aad);
        out
    }

    /// Appends the sealed form of `plaintext` to `out`, so that formats
    /// with a header build their blob in one allocation. `aad` is
    /// whatever the caller binds, often including that header.
    pub fn seal_into(&self, out: &mut Vec<u8>, plaintext: &[u8], aad: &[u8]) {
        let mut nonce = [0u8; NONCE_LEN];
        crate::secret::fill_random(&mut nonce);
        out.reserve(OVERHEAD + plaintext.len());
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let nonce = Nonce::from_slice(&nonce);
        let tag = match &self.0 {
            Cipher::Aes(k) => k.encrypt_in_place_detached(nonce, aad, &mut out[start..]),
            Cipher::Sm4(k) => k.encrypt_in_place_detached(nonce, aad, &mut out[start..]),
        }
        .expect("GCM encryption of an in-memory buffer below 64 GiB cannot fail");
        out.extend_from_slice(&tag);
    }

    /// Opens what [`AeadKey::seal`] produced under the same key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<SecretBytes, OpenError> {
        if sealed.len() < OVERHEAD {
            return Err(OpenError);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        // The plaintext is decrypted in a zeroizing buffer, so a failed
        // open leaves nothing behind either.
        let mut plain = SecretBytes::new(body.to_vec());
        let nonce = Nonce::from_slice(nonce);
        match &self.0 {
            Cipher::Aes(k) => k.decrypt_in_place_detached(nonce, aad, plain.expose_mut(), tag.into()),
            Cipher::Sm4(k) => k.decrypt_in_place_detached(nonce, aad, plain.expose_mut(), tag.into()),
        }
        .map_err(|_| OpenError)?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_its_key_and_aad() {
        let key = AeadKey::new(&[7; 32]).unwrap();
        let sealed = key.seal(b"hunter2", b"place");
        assert_eq!(sealed.len(), 7 + OVERHEAD);
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key.open(&sealed, b"place").unwrap().expose(), b"hunter2");
        assert_eq!(key.open(&sealed, b"other"), Err(OpenError));
        assert_eq!(AeadKey::new(&[8; 32]).unwrap().open(&sealed, b"place"), Err(OpenError));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(key.open(&bad, b"place"), Err(OpenError), "bit flip at {i}");
        }
        for len in 0..sealed.len() {
            assert_eq!(key.open(&sealed[..len], b"place"), Err(OpenError), "truncated to {len}");
        }
    }

    #[test]
    fn nonces_differ_and_empty_plaintexts_work() {
        let key = AeadKey::new(&[1; 32]).unwrap();
        let (a, b) = (key.seal(b"", b""), key.seal(b"", b""));
        assert_ne!(a, b);
        assert_eq!(key.open(&a, b"").unwrap().expose(), b"");
    }

    #[test]
    fn seal_into_appends_after_a_header() {
        let key = AeadKey::new(&[2; 32]).unwrap();
        let mut blob = b"HEAD".to_vec();
        key.seal_into(&mut blob, b"body", b"HEAD");
        assert_eq!(&blob[..4], b"HEAD");
        assert_eq!(key.open(&blob[4..], b"HEAD").unwrap().expose(), b"body");
    }

    /// RFC 8998 appendix A.1: SM4-GCM with its key, nonce, AAD and
    /// plaintext gives the published ciphertext and tag.
    #[test]
    fn sm4_gcm_matches_rfc_8998() {
        let key = AeadKey::sm4(&hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap()).unwrap();
        let nonce = hex::decode("00001234567800000000ABCD").unwrap();
        let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").unwrap();
        let plain = hex::decode(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD\
             EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        )
        .unwrap();
        let mut sealed = nonce.clone();
        let Cipher::Sm4(k) = &key.0 else { unreachable!() };
        let mut body = plain.clone();
        let tag = k.encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut body).unwrap();
        assert_eq!(
            hex::encode_upper(&body),
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735\
             D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        );
        assert_eq!(hex::encode_upper(tag), "83DE3541E4C2B58177E065A9BF7B62EC");
        sealed.extend_from_slice(&body);
        sealed.extend_from_slice(&tag);
        assert_eq!(key.open(&sealed, &aad).unwrap().expose(), &plain[..]);
        assert_eq!(key.open(&sealed, b"other"), Err(OpenError));
        assert!(AeadKey::sm4(&[0; 32]).is_err());
    }

    #[test]
    fn keys_are_32_bytes() {
        assert_eq!(AeadKey::new(&[0; 31]).unwrap_err(), KeyLengthError(31));
        assert!(format!("{:?}", AeadKey::new(&[9; 32]).unwrap()).contains("redacted"));
    }
}
