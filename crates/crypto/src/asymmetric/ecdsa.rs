//! ECDSA on NIST P-256, P-384 and secp256k1 with RustCrypto's curves.
//!
//! Nonces are RFC 6979's (deterministic, so a weak generator cannot leak
//! the key through them); signatures are DER `SEQUENCE { r, s }`. Every
//! SHA-2 digest works on every curve (FIPS 186-5 truncates a longer digest
//! to the order's length); which digests a key spec may use is the
//! service's rule. secp256k1 signatures are made low-S; a high-S signature
//! made elsewhere is equally valid ECDSA and verifies.

// The three curves share one `ecdsa`, `signature` and `pkcs8`: these
// traits serve all of them.
use p256::{
    ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier},
    pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey},
};

use super::{AsymmetricError, KeyKind, Message, SigningScheme, digest_of};
use crate::SecretBytes;

/// An ECDSA private key on one of the three curves.
pub enum EcdsaKey {
    /// P-256.
    P256(p256::ecdsa::SigningKey),
    /// P-384.
    P384(p384::ecdsa::SigningKey),
    /// secp256k1.
    K256(k256::ecdsa::SigningKey),
}

/// Runs `$body` with `$key` bound to whichever curve's key `$self` holds
/// and `$curve` naming that curve's crate.
macro_rules! on_curve {
    ($self:expr, |$key:ident, $curve:ident| $body:expr) => {
        match $self {
            EcdsaKey::P256($key) => {
                #[allow(unused_imports)]
                use p256 as $curve;
                $body
            }
            EcdsaKey::P384($key) => {
                #[allow(unused_imports)]
                use p384 as $curve;
                $body
            }
            EcdsaKey::K256($key) => {
                #[allow(unused_imports)]
                use k256 as $curve;
                $body
            }
        }
    };
}

/// A new key of `kind`, PKCS#8 DER. The scalar is drawn from the system
/// generator and redrawn in the (negligible) case it is not below the
/// order.
pub fn generate(kind: KeyKind) -> Result<SecretBytes, AsymmetricError> {
    let len = match kind {
        KeyKind::P256 | KeyKind::Secp256k1 => 32,
        KeyKind::P384 => 48,
        _ => return Err(AsymmetricError::WrongScheme),
    };
    for _ in 0..64 {
        let scalar = SecretBytes::random(len);
        let key = match kind {
            KeyKind::P256 => p256::ecdsa::SigningKey::from_slice(scalar.expose()).map(EcdsaKey::P256),
            KeyKind::P384 => p384::ecdsa::SigningKey::from_slice(scalar.expose()).map(EcdsaKey::P384),
            _ => k256::ecdsa::SigningKey::from_slice(scalar.expose()).map(EcdsaKey::K256),
        };
        if let Ok(key) = key {
            let der = on_curve!(&key, |k, c| k.to_pkcs8_der()).map_err(|_| AsymmetricError::Generation)?;
            return Ok(SecretBytes::new(der.as_bytes().to_vec()));
        }
    }
    Err(AsymmetricError::Generation)
}

impl EcdsaKey {
    /// Parses PKCS#8 DER of the curve `kind` names.
    pub fn from_pkcs8(kind: KeyKind, der: &[u8]) -> Result<Self, AsymmetricError> {
        let key = match kind {
            KeyKind::P256 => p256::ecdsa::SigningKey::from_pkcs8_der(der).map(EcdsaKey::P256),
            KeyKind::P384 => p384::ecdsa::SigningKey::from_pkcs8_der(der).map(EcdsaKey::P384),
            KeyKind::Secp256k1 => k256::ecdsa::SigningKey::from_pkcs8_der(der).map(EcdsaKey::K256),
            _ => return Err(AsymmetricError::MalformedKey),
        };
        key.map_err(|_| AsymmetricError::MalformedKey)
    }

    /// The curve.
    pub fn kind(&self) -> KeyKind {
        match self {
            EcdsaKey::P256(_) => KeyKind::P256,
            EcdsaKey::P384(_) => KeyKind::P384,
            EcdsaKey::K256(_) => KeyKind::Secp256k1,
        }
    }

    /// DER SubjectPublicKeyInfo (id-ecPublicKey with the curve's OID,
    /// uncompressed point).
    pub fn public_key_der(&self) -> Vec<u8> {
        on_curve!(self, |k, c| k.verifying_key().to_public_key_der())
            .expect("an in-memory public key encodes")
            .as_bytes()
            .to_vec()
    }

    pub(super) fn sign(&self, scheme: SigningScheme, message: Message<'_>) -> Result<Vec<u8>, AsymmetricError> {
        let SigningScheme::Ecdsa(hash) = scheme else { return Err(AsymmetricError::WrongScheme) };
        let digest = digest_of(hash, message);
        on_curve!(self, |k, c| {
            let signature: c::ecdsa::Signature = k.sign_prehash(&digest).map_err(|_| AsymmetricError::Generation)?;
            Ok(signature.normalize_s().to_der().as_bytes().to_vec())
        })
    }

    pub(super) fn verify(
        &self, scheme: SigningScheme, message: Message<'_>, signature: &[u8],
    ) -> Result<bool, AsymmetricError> {
        let SigningScheme::Ecdsa(hash) = scheme else { return Err(AsymmetricError::WrongScheme) };
        let digest = digest_of(hash, message);
        Ok(on_curve!(self, |k, c| {
            match c::ecdsa::Signature::from_der(signature) {
                Ok(sig) => k.verifying_key().verify_prehash(&digest, &sig.normalize_s()).is_ok(),
                Err(_) => false,
            }
        }))
    }
}
