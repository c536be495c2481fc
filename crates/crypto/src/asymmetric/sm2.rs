//! SM2 (GB/T 32918) with RustCrypto's `sm2`: SM2DSA over SM3 with the
//! default user id `1234567812345678`, DER signatures, and SM2 public-key
//! encryption in the C1C3C2 order, ASN.1 DER encoded (GM/T 0009).
//!
//! The stored form is the 32-byte secret scalar. In memory the key is a
//! `SecretKey`, which zeroizes on drop; the signing and decrypting values
//! the `sm2` crate needs are built from it for one call (they carry no
//! wiping of their own).

use sm2::{
    PublicKey, SecretKey,
    dsa::{
        Signature, SigningKey, VerifyingKey,
        signature::{
            Signer, Verifier,
            hazmat::{PrehashSigner, PrehashVerifier},
        },
    },
    elliptic_curve::common::getrandom::SysRng,
    pkcs8::EncodePublicKey,
    pke::{DecryptingKey, EncryptingKey, Mode},
};

use super::{AsymmetricError, Message, SigningScheme};
use crate::SecretBytes;

/// The user id GB/T 32918.2 and GM/T 0009 name as the default.
pub const DEFAULT_USER_ID: &str = "1234567812345678";

/// The longest plaintext SM2 encryption takes here (the ciphertext is 97
/// bytes plus DER framing longer, inside decrypt-data's limit).
pub const MAX_PLAINTEXT: usize = 4096;

/// A new key's 32-byte scalar.
pub fn generate() -> Result<SecretBytes, AsymmetricError> {
    for _ in 0..64 {
        let scalar = SecretBytes::random(32);
        if SecretKey::from_slice(scalar.expose()).is_ok() {
            return Ok(scalar);
        }
    }
    Err(AsymmetricError::Generation)
}

/// An SM2 private key.
pub struct Sm2Key {
    secret: SecretKey,
    verifying: VerifyingKey,
}

impl Sm2Key {
    /// Parses a stored 32-byte scalar.
    pub fn from_scalar(bytes: &[u8]) -> Result<Self, AsymmetricError> {
        let secret = SecretKey::from_slice(bytes).map_err(|_| AsymmetricError::MalformedKey)?;
        let verifying =
            VerifyingKey::new(DEFAULT_USER_ID, secret.public_key()).map_err(|_| AsymmetricError::MalformedKey)?;
        Ok(Self { secret, verifying })
    }

    fn public(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// DER SubjectPublicKeyInfo (id-ecPublicKey, curve OID
    /// 1.2.156.10197.1.301).
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public().to_public_key_der().expect("an in-memory public key encodes").as_bytes().to_vec()
    }

    pub(super) fn sign(&self, scheme: SigningScheme, message: Message<'_>) -> Result<Vec<u8>, AsymmetricError> {
        if scheme != SigningScheme::Sm2Sm3 {
            return Err(AsymmetricError::WrongScheme);
        }
        let key = SigningKey::new(DEFAULT_USER_ID, &self.secret).map_err(|_| AsymmetricError::MalformedKey)?;
        let signature: Signature = match message {
            Message::Raw(m) => key.try_sign(m),
            Message::Digest(e) => key.sign_prehash(e),
        }
        .map_err(|_| AsymmetricError::Generation)?;
        Ok(signature.to_der().to_vec())
    }

    pub(super) fn verify(
        &self, scheme: SigningScheme, message: Message<'_>, signature: &[u8],
    ) -> Result<bool, AsymmetricError> {
        if scheme != SigningScheme::Sm2Sm3 {
            return Err(AsymmetricError::WrongScheme);
        }
        let Ok(signature) = Signature::from_der(signature) else { return Ok(false) };
        Ok(match message {
            Message::Raw(m) => self.verifying.verify(m, &signature).is_ok(),
            Message::Digest(e) => self.verifying.verify_prehash(e, &signature).is_ok(),
        })
    }

    pub(super) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, AsymmetricError> {
        EncryptingKey::new_with_mode(self.public(), Mode::C1C3C2)
            .encrypt_der(&mut SysRng, plaintext)
            .map_err(|_| AsymmetricError::Generation)
    }

    pub(super) fn decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, AsymmetricError> {
        DecryptingKey::new_with_mode(self.secret.to_nonzero_scalar(), Mode::C1C3C2)
            .decrypt_der(ciphertext)
            .map(SecretBytes::new)
            .map_err(|_| AsymmetricError::DecryptFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GB/T 32918.2's curve with its published key: the public key is the
    /// standard's, and a signature made here verifies under it; the
    /// standard's own signature of "message digest" verifies too.
    #[test]
    fn gbt_32918_sample_key_and_signature() {
        let d = hex::decode("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8").unwrap();
        let key = Sm2Key::from_scalar(&d).unwrap();
        let point = key.public().to_sec1_bytes();
        assert_eq!(
            hex::encode_upper(&point[1..]),
            "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020\
             CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
        );
        let r = hex::decode("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3").unwrap();
        let s = hex::decode("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA").unwrap();
        let r: [u8; 32] = r.try_into().unwrap();
        let s: [u8; 32] = s.try_into().unwrap();
        let standard = Signature::from_scalars(r, s).unwrap().to_der().to_vec();
        assert_eq!(key.verify(SigningScheme::Sm2Sm3, Message::Raw(b"message digest"), &standard), Ok(true));
        assert_eq!(key.verify(SigningScheme::Sm2Sm3, Message::Raw(b"message digesT"), &standard), Ok(false));
        let ours = key.sign(SigningScheme::Sm2Sm3, Message::Raw(b"message digest")).unwrap();
        assert_eq!(key.verify(SigningScheme::Sm2Sm3, Message::Raw(b"message digest"), &ours), Ok(true));
    }
}
