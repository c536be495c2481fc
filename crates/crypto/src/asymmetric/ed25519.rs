//! Ed25519 with `ed25519-dalek`: pure Ed25519 (RFC 8032 §5.1, the message
//! itself) and Ed25519ph (the same with `dom2(1, "")` over SHA-512 of the
//! message, which a caller may hash itself and send as a digest).

use digest_next::{FixedOutput, HashMarker, Output, OutputSizeUser, Update, consts::U64};
use ed25519_dalek::{
    Digest, Sha512, Signature, SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey},
};

use super::{AsymmetricError, Message, SigningScheme};
use crate::SecretBytes;

/// A new key, PKCS#8 DER (RFC 8410).
pub fn generate() -> Result<SecretBytes, AsymmetricError> {
    let seed = SecretBytes::random(32);
    let seed: &[u8; 32] = seed.expose().try_into().expect("32 bytes");
    let key = SigningKey::from_bytes(seed);
    let der = key.to_pkcs8_der().map_err(|_| AsymmetricError::Generation)?;
    Ok(SecretBytes::new(der.as_bytes().to_vec()))
}

/// An Ed25519 private key (dalek wipes it on drop).
pub struct Ed25519Key(SigningKey);

/// A SHA-512 value the caller computed, handed to dalek's pre-hashed
/// signing as the finished hash it expects (its `finalize` is all dalek
/// asks of it).
#[derive(Clone)]
struct Prehashed([u8; 64]);

impl Default for Prehashed {
    fn default() -> Self {
        Prehashed([0; 64])
    }
}

impl HashMarker for Prehashed {}

impl OutputSizeUser for Prehashed {
    type OutputSize = U64;
}

impl Update for Prehashed {
    fn update(&mut self, _data: &[u8]) {
        unreachable!("a finished digest is not updated")
    }
}

impl FixedOutput for Prehashed {
    fn finalize_into(self, out: &mut Output<Self>) {
        out.copy_from_slice(&self.0);
    }
}

impl Ed25519Key {
    /// Parses PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, AsymmetricError> {
        SigningKey::from_pkcs8_der(der).map(Ed25519Key).map_err(|_| AsymmetricError::MalformedKey)
    }

    /// DER SubjectPublicKeyInfo (id-Ed25519).
    pub fn public_key_der(&self) -> Vec<u8> {
        self.0.verifying_key().to_public_key_der().expect("an in-memory public key encodes").as_bytes().to_vec()
    }

    fn prehash(message: Message<'_>) -> Prehashed {
        let mut out = [0u8; 64];
        match message {
            Message::Digest(d) => out.copy_from_slice(d),
            Message::Raw(m) => out.copy_from_slice(&Sha512::digest(m)),
        }
        Prehashed(out)
    }

    pub(super) fn sign(&self, scheme: SigningScheme, message: Message<'_>) -> Result<Vec<u8>, AsymmetricError> {
        let signature = match (scheme, message) {
            (SigningScheme::Ed25519, Message::Raw(m)) => ed25519_dalek::Signer::sign(&self.0, m),
            (SigningScheme::Ed25519Ph, message) => {
                self.0.sign_prehashed(Self::prehash(message), None).map_err(|_| AsymmetricError::Generation)?
            }
            (SigningScheme::Ed25519, Message::Digest(_)) => return Err(AsymmetricError::DigestNotAllowed),
            _ => return Err(AsymmetricError::WrongScheme),
        };
        Ok(signature.to_bytes().to_vec())
    }

    pub(super) fn verify(
        &self, scheme: SigningScheme, message: Message<'_>, signature: &[u8],
    ) -> Result<bool, AsymmetricError> {
        let Ok(signature) = Signature::from_slice(signature) else {
            return match scheme {
                SigningScheme::Ed25519 | SigningScheme::Ed25519Ph => Ok(false),
                _ => Err(AsymmetricError::WrongScheme),
            };
        };
        let key = self.0.verifying_key();
        Ok(match (scheme, message) {
            // Strict verification: no small-order keys or non-canonical
            // encodings (what RFC 8032 §5.1.7 and OpenSSL accept).
            (SigningScheme::Ed25519, Message::Raw(m)) => key.verify_strict(m, &signature).is_ok(),
            (SigningScheme::Ed25519Ph, message) => {
                key.verify_prehashed_strict(Self::prehash(message), None, &signature).is_ok()
            }
            (SigningScheme::Ed25519, Message::Digest(_)) => return Err(AsymmetricError::DigestNotAllowed),
            _ => return Err(AsymmetricError::WrongScheme),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1 TEST 2 (pure) and §7.3 (Ed25519ph, "abc").
    #[test]
    fn rfc_8032_vectors() {
        let key = |seed: &str| {
            let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
            Ed25519Key(SigningKey::from_bytes(&seed))
        };
        let pure = key("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        assert_eq!(
            hex::encode(pure.0.verifying_key().to_bytes()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        let sig = pure.sign(SigningScheme::Ed25519, Message::Raw(&[0x72])).unwrap();
        assert_eq!(
            hex::encode(&sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
        let ph = key("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
        let sig = ph.sign(SigningScheme::Ed25519Ph, Message::Raw(b"abc")).unwrap();
        assert_eq!(
            hex::encode(&sig),
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
             31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
        );
        let digest = Sha512::digest(b"abc");
        assert_eq!(ph.sign(SigningScheme::Ed25519Ph, Message::Digest(&digest)).unwrap(), sig);
        assert_eq!(ph.verify(SigningScheme::Ed25519Ph, Message::Raw(b"abc"), &sig), Ok(true));
        assert_eq!(ph.verify(SigningScheme::Ed25519, Message::Raw(b"abc"), &sig), Ok(false));
    }
}
