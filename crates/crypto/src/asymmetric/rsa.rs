//! RSA on aws-lc-rs: key generation, RSASSA-PSS and PKCS#1 v1.5
//! signatures over a message or a digest, RSAES-OAEP with SHA-1 or
//! SHA-256. aws-lc's RSA is constant-time and blinded; RustCrypto's `rsa`
//! crate is not used because its decryption has an open timing advisory
//! (RUSTSEC-2023-0071).

use aws_lc_rs::{
    digest,
    encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der},
    rsa::{
        KeyPair, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
        OaepPublicEncryptingKey, PrivateDecryptingKey,
    },
    signature::{self, KeyPair as _, RsaEncoding, RsaParameters, UnparsedPublicKey},
};

use super::{AsymmetricError, EncryptionScheme, Hash, KeyKind, Message, SigningScheme};
use crate::SecretBytes;

/// A new RSA key of `kind`, PKCS#8 DER.
pub fn generate(kind: KeyKind) -> Result<SecretBytes, AsymmetricError> {
    let size = match kind {
        KeyKind::Rsa2048 => KeySize::Rsa2048,
        KeyKind::Rsa3072 => KeySize::Rsa3072,
        KeyKind::Rsa4096 => KeySize::Rsa4096,
        _ => return Err(AsymmetricError::WrongScheme),
    };
    let pair = KeyPair::generate(size).map_err(|_| AsymmetricError::Generation)?;
    let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| AsymmetricError::Generation)?;
    Ok(SecretBytes::new(der.as_ref().to_vec()))
}

/// An RSA private key, for signing and for OAEP decryption.
pub struct RsaKey {
    kind: KeyKind,
    signing: KeyPair,
    decrypting: PrivateDecryptingKey,
    // Parsed once, so encryption does not parse the public key per call.
    encrypting: OaepPublicEncryptingKey,
    public_der: Vec<u8>,
}

impl RsaKey {
    /// Parses PKCS#8 DER of the size `kind` says.
    pub fn from_pkcs8(kind: KeyKind, der: &[u8]) -> Result<Self, AsymmetricError> {
        let signing = KeyPair::from_pkcs8(der).map_err(|_| AsymmetricError::MalformedKey)?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(der).map_err(|_| AsymmetricError::MalformedKey)?;
        let bits = match kind {
            KeyKind::Rsa2048 => 2048,
            KeyKind::Rsa3072 => 3072,
            KeyKind::Rsa4096 => 4096,
            _ => return Err(AsymmetricError::MalformedKey),
        };
        if decrypting.key_size_bits() != bits {
            return Err(AsymmetricError::MalformedKey);
        }
        let public: PublicKeyX509Der<'static> =
            signing.public_key().as_der().map_err(|_| AsymmetricError::MalformedKey)?;
        let encrypting =
            OaepPublicEncryptingKey::new(decrypting.public_key()).map_err(|_| AsymmetricError::MalformedKey)?;
        Ok(Self { kind, signing, decrypting, encrypting, public_der: public.as_ref().to_vec() })
    }

    /// The key's size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public_der.clone()
    }

    pub(super) fn sign(&self, scheme: SigningScheme, message: Message<'_>) -> Result<Vec<u8>, AsymmetricError> {
        let RsaAlgorithms { sign: encoding, hash, .. } = rsa_algorithms(scheme)?;
        let mut signature = vec![0u8; self.signing.public_modulus_len()];
        let signed = match message {
            Message::Raw(m) => self.signing.sign(encoding, &aws_lc_rs::rand::SystemRandom::new(), m, &mut signature),
            Message::Digest(d) => {
                let digest = imported_digest(hash, d)?;
                self.signing.sign_digest(encoding, &digest, &mut signature)
            }
        };
        signed.map_err(|_| AsymmetricError::Generation)?;
        Ok(signature)
    }

    pub(super) fn verify(
        &self, scheme: SigningScheme, message: Message<'_>, signature: &[u8],
    ) -> Result<bool, AsymmetricError> {
        let RsaAlgorithms { verify: params, hash, .. } = rsa_algorithms(scheme)?;
        let key = UnparsedPublicKey::new(params, &self.public_der);
        let verified = match message {
            Message::Raw(m) => key.verify(m, signature),
            Message::Digest(d) => key.verify_digest(&imported_digest(hash, d)?, signature),
        };
        Ok(verified.is_ok())
    }

    pub(super) fn max_plaintext(&self, scheme: EncryptionScheme) -> Result<usize, AsymmetricError> {
        let (_, hash_len) = oaep(scheme)?;
        // RFC 8017 §7.1.1: k - 2·hLen - 2.
        Ok(self.decrypting.key_size_bytes() - 2 * hash_len - 2)
    }

    pub(super) fn encrypt(&self, scheme: EncryptionScheme, plaintext: &[u8]) -> Result<Vec<u8>, AsymmetricError> {
        let (algorithm, _) = oaep(scheme)?;
        let mut out = vec![0u8; self.encrypting.ciphertext_size()];
        let len = self
            .encrypting
            .encrypt(algorithm, plaintext, &mut out, None)
            .map_err(|_| AsymmetricError::PlaintextTooLong)?
            .len();
        out.truncate(len);
        Ok(out)
    }

    pub(super) fn decrypt(&self, scheme: EncryptionScheme, ciphertext: &[u8]) -> Result<SecretBytes, AsymmetricError> {
        oaep_decrypt(self.decrypting.clone(), scheme, ciphertext)
    }
}

/// OAEP decryption of import material (kms-api.md §3.4) with a one-use
/// wrapping key given as PKCS#8 DER.
pub fn oaep_decrypt_with(
    pkcs8: &[u8], scheme: EncryptionScheme, ciphertext: &[u8],
) -> Result<SecretBytes, AsymmetricError> {
    let private = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| AsymmetricError::MalformedKey)?;
    oaep_decrypt(private, scheme, ciphertext)
}

/// RSAES-OAEP decryption into a zeroizing buffer; every failure is the same
/// [`AsymmetricError::DecryptFailed`].
fn oaep_decrypt(
    private: PrivateDecryptingKey, scheme: EncryptionScheme, ciphertext: &[u8],
) -> Result<SecretBytes, AsymmetricError> {
    let (algorithm, _) = oaep(scheme)?;
    let key = OaepPrivateDecryptingKey::new(private).map_err(|_| AsymmetricError::MalformedKey)?;
    let mut out = SecretBytes::new(vec![0u8; key.min_output_size()]);
    let len =
        key.decrypt(algorithm, ciphertext, out.expose_mut(), None).map_err(|_| AsymmetricError::DecryptFailed)?.len();
    out.truncate(len);
    Ok(out)
}

/// A fresh RSA-2048 key's PKCS#8 DER and its DER SubjectPublicKeyInfo (the
/// import wrapping key).
pub fn wrapping_key() -> Result<(SecretBytes, Vec<u8>), AsymmetricError> {
    let key = PrivateDecryptingKey::generate(KeySize::Rsa2048).map_err(|_| AsymmetricError::Generation)?;
    let private: Pkcs8V1Der<'static> = key.as_der().map_err(|_| AsymmetricError::Generation)?;
    let public: PublicKeyX509Der<'static> = key.public_key().as_der().map_err(|_| AsymmetricError::Generation)?;
    Ok((SecretBytes::new(private.as_ref().to_vec()), public.as_ref().to_vec()))
}

fn oaep(scheme: EncryptionScheme) -> Result<(&'static OaepAlgorithm, usize), AsymmetricError> {
    match scheme {
        EncryptionScheme::RsaOaepSha1 => Ok((&OAEP_SHA1_MGF1SHA1, 20)),
        EncryptionScheme::RsaOaepSha256 => Ok((&OAEP_SHA256_MGF1SHA256, 32)),
        EncryptionScheme::Sm2 => Err(AsymmetricError::WrongScheme),
    }
}

/// ring's algorithms for an RSA signing scheme: the encoding that signs,
/// the parameters that verify (any modulus from 2048 to 8192 bits), and the
/// hash; one table, so that signing and verifying cannot disagree.
struct RsaAlgorithms {
    sign: &'static dyn RsaEncoding,
    verify: &'static RsaParameters,
    hash: Hash,
}

fn rsa_algorithms(scheme: SigningScheme) -> Result<RsaAlgorithms, AsymmetricError> {
    use Hash::*;
    use SigningScheme::*;
    use signature as s;
    let (sign, verify, hash): (&'static dyn RsaEncoding, &'static RsaParameters, Hash) = match scheme {
        RsaPss(Sha256) => (&s::RSA_PSS_SHA256, &s::RSA_PSS_2048_8192_SHA256, Sha256),
        RsaPss(Sha384) => (&s::RSA_PSS_SHA384, &s::RSA_PSS_2048_8192_SHA384, Sha384),
        RsaPss(Sha512) => (&s::RSA_PSS_SHA512, &s::RSA_PSS_2048_8192_SHA512, Sha512),
        RsaPkcs1(Sha256) => (&s::RSA_PKCS1_SHA256, &s::RSA_PKCS1_2048_8192_SHA256, Sha256),
        RsaPkcs1(Sha384) => (&s::RSA_PKCS1_SHA384, &s::RSA_PKCS1_2048_8192_SHA384, Sha384),
        RsaPkcs1(Sha512) => (&s::RSA_PKCS1_SHA512, &s::RSA_PKCS1_2048_8192_SHA512, Sha512),
        _ => return Err(AsymmetricError::WrongScheme),
    };
    Ok(RsaAlgorithms { sign, verify, hash })
}

fn imported_digest(hash: Hash, bytes: &[u8]) -> Result<digest::Digest, AsymmetricError> {
    let algorithm = match hash {
        Hash::Sha256 => &digest::SHA256,
        Hash::Sha384 => &digest::SHA384,
        Hash::Sha512 => &digest::SHA512,
        Hash::Sm3 => return Err(AsymmetricError::WrongScheme),
    };
    digest::Digest::import_less_safe(bytes, algorithm).map_err(|_| AsymmetricError::DigestLength)
}
