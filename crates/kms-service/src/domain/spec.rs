//! Key specs, usages and algorithms, and which pairings the API allows.

use crypto::asymmetric::{EncryptionScheme, KeyKind, SigningScheme};

use super::Rejection;

string_enum! {
    /// Key algorithm and size.
    KeySpec {
        /// AES-256-GCM.
        Aes256 = "AES_256",
        /// SM4 (GCM mode, for data and data keys).
        Sm4 = "SM4",
        /// RSA 2048.
        Rsa2048 = "RSA_2048",
        /// RSA 3072.
        Rsa3072 = "RSA_3072",
        /// RSA 4096.
        Rsa4096 = "RSA_4096",
        /// ECDSA P-256.
        EcP256 = "EC_P256",
        /// ECDSA P-384.
        EcP384 = "EC_P384",
        /// ECDSA secp256k1.
        Secp256k1 = "SECP256K1",
        /// SM2: SM2DSA or SM2 encryption.
        Sm2 = "SM2",
        /// Ed25519.
        Ed25519 = "ED25519",
        /// HMAC-SHA256.
        Hmac256 = "HMAC_256",
        /// HMAC-SHA384.
        Hmac384 = "HMAC_384",
        /// HMAC-SHA512.
        Hmac512 = "HMAC_512",
        /// HMAC-SM3.
        HmacSm3 = "HMAC_SM3",
    }
}

string_enum! {
    /// What a key may do.
    KeyUsage {
        /// Encrypt and decrypt.
        EncryptDecrypt = "ENCRYPT_DECRYPT",
        /// Sign and verify.
        SignVerify = "SIGN_VERIFY",
        /// Generate and verify MACs.
        GenerateVerifyMac = "GENERATE_VERIFY_MAC",
    }
}

string_enum! {
    /// Where the material comes from.
    KeyOrigin {
        /// Generated here.
        Kms = "kms",
        /// Imported by the user.
        External = "external",
    }
}

string_enum! {
    /// How imported material is wrapped (get-parameters-for-import).
    WrappingAlgorithm {
        /// RSA-OAEP with SHA-256 and MGF1-SHA-256.
        RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
        /// RSA-OAEP with SHA-1 and MGF1-SHA-1 (the older API's).
        RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
    }
}

string_enum! {
    /// sign and verify's `signing_algorithm` (kms-api.md §3.5).
    SigningAlgorithm {
        /// RSASSA-PSS with SHA-256.
        RsaPssSha256 = "RSASSA_PSS_SHA_256",
        /// RSASSA-PSS with SHA-384.
        RsaPssSha384 = "RSASSA_PSS_SHA_384",
        /// RSASSA-PSS with SHA-512.
        RsaPssSha512 = "RSASSA_PSS_SHA_512",
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        RsaPkcs1Sha256 = "RSASSA_PKCS1_V1_5_SHA_256",
        /// RSASSA-PKCS1-v1_5 with SHA-384.
        RsaPkcs1Sha384 = "RSASSA_PKCS1_V1_5_SHA_384",
        /// RSASSA-PKCS1-v1_5 with SHA-512.
        RsaPkcs1Sha512 = "RSASSA_PKCS1_V1_5_SHA_512",
        /// ECDSA with SHA-256.
        EcdsaSha256 = "ECDSA_SHA_256",
        /// ECDSA with SHA-384.
        EcdsaSha384 = "ECDSA_SHA_384",
        /// ECDSA with SHA-512.
        EcdsaSha512 = "ECDSA_SHA_512",
        /// SM2DSA over SM3.
        Sm2dsaSm3 = "SM2DSA_SM3",
        /// Pure Ed25519.
        Ed25519Sha512 = "ED25519_SHA_512",
        /// Ed25519ph.
        Ed25519PhSha512 = "ED25519_PH_SHA_512",
    }
}

string_enum! {
    /// What sign and verify's `message` is.
    MessageType {
        /// A digest made with the algorithm's hash (the default).
        Digest = "DIGEST",
        /// The message itself, hashed here.
        Raw = "RAW",
    }
}

string_enum! {
    /// generate-mac and verify-mac's `mac_algorithm` (kms-api.md §3.6).
    MacAlgorithm {
        /// HMAC-SHA-256.
        HmacSha256 = "HMAC_SHA_256",
        /// HMAC-SHA-384.
        HmacSha384 = "HMAC_SHA_384",
        /// HMAC-SHA-512.
        HmacSha512 = "HMAC_SHA_512",
        /// HMAC-SM3.
        HmacSm3 = "HMAC_SM3",
    }
}

string_enum! {
    /// encrypt-data, decrypt-data and re-encrypt's `encryption_algorithm`.
    EncryptionAlgorithm {
        /// The key's symmetric cipher (AES-256-GCM or SM4-GCM).
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        /// RSAES-OAEP with SHA-1 (decrypting old ciphertexts; re-encrypt).
        RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
        /// RSAES-OAEP with SHA-256.
        RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
        /// SM2 encryption.
        Sm2Encrypt = "SM2_ENCRYPT",
    }
}

/// Longest message sign, verify and the MAC operations take, in bytes
/// (decoded): sign/verify documents "< 4096", the MAC operations 1–4096.
pub const MAX_SIGN_MESSAGE_LEN: usize = 4095;
/// Longest MAC message, bytes.
pub const MAX_MAC_MESSAGE_LEN: usize = 4096;

impl SigningAlgorithm {
    /// The scheme this algorithm is with a key of `spec`, or why the pair
    /// is refused (`KMS.0332`). RSA keys take the six RSA algorithms;
    /// EC_P256 ECDSA with SHA-256 or SHA-512, EC_P384 with SHA-384 or
    /// SHA-512 (FIPS 186-5 truncates the longer digest), SECP256K1 with
    /// SHA-256; SM2 keys SM2DSA; Ed25519 keys both Ed25519 algorithms.
    pub fn scheme_for(self, spec: KeySpec) -> Result<SigningScheme, Rejection> {
        use KeySpec as K;
        use SigningAlgorithm as A;
        use crypto::asymmetric::Hash::*;
        let rsa = matches!(spec, K::Rsa2048 | K::Rsa3072 | K::Rsa4096);
        Ok(match (self, spec) {
            (A::RsaPssSha256, _) if rsa => SigningScheme::RsaPss(Sha256),
            (A::RsaPssSha384, _) if rsa => SigningScheme::RsaPss(Sha384),
            (A::RsaPssSha512, _) if rsa => SigningScheme::RsaPss(Sha512),
            (A::RsaPkcs1Sha256, _) if rsa => SigningScheme::RsaPkcs1(Sha256),
            (A::RsaPkcs1Sha384, _) if rsa => SigningScheme::RsaPkcs1(Sha384),
            (A::RsaPkcs1Sha512, _) if rsa => SigningScheme::RsaPkcs1(Sha512),
            (A::EcdsaSha256, K::EcP256 | K::Secp256k1) => SigningScheme::Ecdsa(Sha256),
            (A::EcdsaSha384, K::EcP384) => SigningScheme::Ecdsa(Sha384),
            (A::EcdsaSha512, K::EcP256 | K::EcP384) => SigningScheme::Ecdsa(Sha512),
            (A::Sm2dsaSm3, K::Sm2) => SigningScheme::Sm2Sm3,
            (A::Ed25519Sha512, K::Ed25519) => SigningScheme::Ed25519,
            (A::Ed25519PhSha512, K::Ed25519) => SigningScheme::Ed25519Ph,
            _ => return Err(Rejection::SigningAlgorithmMismatch),
        })
    }
}

impl MacAlgorithm {
    /// The hash of this algorithm, which must be the one of the key's spec
    /// (an HMAC_256 key computes HMAC-SHA-256 only).
    pub fn hash_for(self, spec: KeySpec) -> Result<crypto::asymmetric::Hash, Rejection> {
        use crypto::asymmetric::Hash;
        match (self, spec) {
            (MacAlgorithm::HmacSha256, KeySpec::Hmac256) => Ok(Hash::Sha256),
            (MacAlgorithm::HmacSha384, KeySpec::Hmac384) => Ok(Hash::Sha384),
            (MacAlgorithm::HmacSha512, KeySpec::Hmac512) => Ok(Hash::Sha512),
            (MacAlgorithm::HmacSm3, KeySpec::HmacSm3) => Ok(Hash::Sm3),
            _ => Err(Rejection::InvalidParameter("mac_algorithm")),
        }
    }
}

impl EncryptionAlgorithm {
    /// The public-key scheme this algorithm is with a key of `spec`:
    /// RSA keys take RSAES-OAEP (SHA-256, or SHA-1), SM2 keys SM2_ENCRYPT.
    pub fn scheme_for(self, spec: KeySpec) -> Result<EncryptionScheme, Rejection> {
        let rsa = matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096);
        match self {
            EncryptionAlgorithm::RsaesOaepSha256 if rsa => Ok(EncryptionScheme::RsaOaepSha256),
            EncryptionAlgorithm::RsaesOaepSha1 if rsa => Ok(EncryptionScheme::RsaOaepSha1),
            EncryptionAlgorithm::Sm2Encrypt if spec == KeySpec::Sm2 => Ok(EncryptionScheme::Sm2),
            _ => Err(Rejection::AsymmetricAlgorithmMismatch),
        }
    }
}

/// The family of a spec, which decides the allowed usages and operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFamily {
    /// AES, SM4.
    Symmetric,
    /// RSA, SM2: may encrypt or sign.
    AsymmetricEncryptOrSign,
    /// EC curves, Ed25519: sign only.
    AsymmetricSignOnly,
    /// HMAC keys.
    Hmac,
}

impl KeySpec {
    /// The spec's family.
    pub fn family(self) -> SpecFamily {
        use KeySpec::*;
        match self {
            Aes256 | Sm4 => SpecFamily::Symmetric,
            Rsa2048 | Rsa3072 | Rsa4096 | Sm2 => SpecFamily::AsymmetricEncryptOrSign,
            EcP256 | EcP384 | Secp256k1 | Ed25519 => SpecFamily::AsymmetricSignOnly,
            Hmac256 | Hmac384 | Hmac512 | HmacSm3 => SpecFamily::Hmac,
        }
    }

    /// Length in bytes of random material, for the symmetric and HMAC
    /// specs; `None` for asymmetric specs, whose material is a key pair
    /// ([`KeySpec::asymmetric_kind`]).
    pub fn material_len(self) -> Option<usize> {
        match self {
            KeySpec::Aes256 | KeySpec::Hmac256 | KeySpec::HmacSm3 => Some(32),
            KeySpec::Sm4 => Some(16),
            KeySpec::Hmac384 => Some(48),
            KeySpec::Hmac512 => Some(64),
            _ => None,
        }
    }

    /// The key-pair type of an asymmetric spec.
    pub fn asymmetric_kind(self) -> Option<KeyKind> {
        Some(match self {
            KeySpec::Rsa2048 => KeyKind::Rsa2048,
            KeySpec::Rsa3072 => KeyKind::Rsa3072,
            KeySpec::Rsa4096 => KeyKind::Rsa4096,
            KeySpec::EcP256 => KeyKind::P256,
            KeySpec::EcP384 => KeyKind::P384,
            KeySpec::Secp256k1 => KeyKind::Secp256k1,
            KeySpec::Sm2 => KeyKind::Sm2,
            KeySpec::Ed25519 => KeyKind::Ed25519,
            _ => return None,
        })
    }

    /// The usage a key of this spec gets when none is given.
    pub fn default_usage(self) -> KeyUsage {
        match self.family() {
            SpecFamily::Symmetric => KeyUsage::EncryptDecrypt,
            SpecFamily::AsymmetricEncryptOrSign | SpecFamily::AsymmetricSignOnly => KeyUsage::SignVerify,
            SpecFamily::Hmac => KeyUsage::GenerateVerifyMac,
        }
    }

    /// Checks a spec/usage pairing against the documented rules.
    pub fn check_usage(self, usage: KeyUsage) -> Result<(), Rejection> {
        match (self.family(), usage) {
            (SpecFamily::Symmetric, KeyUsage::EncryptDecrypt)
            | (SpecFamily::AsymmetricEncryptOrSign, KeyUsage::EncryptDecrypt | KeyUsage::SignVerify)
            | (SpecFamily::AsymmetricSignOnly, KeyUsage::SignVerify)
            | (SpecFamily::Hmac, KeyUsage::GenerateVerifyMac) => Ok(()),
            (SpecFamily::Symmetric, KeyUsage::SignVerify) => Err(Rejection::SymmetricCannotSign),
            (SpecFamily::AsymmetricSignOnly, KeyUsage::EncryptDecrypt) => Err(Rejection::EcCannotEncrypt),
            _ => Err(Rejection::InvalidParameter("key_usage")),
        }
    }
}
