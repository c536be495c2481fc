//! Master keys as kms-service understands them, independent of protobuf
//! and SQL. Names of enum values are the strings stored in the database.

use std::{fmt, str::FromStr};

use crate::error::KmsError;

/// A master key's id: a random UUID v4, written in lower case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub uuid::Uuid);

impl KeyId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl Default for KeyId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for KeyId {
    type Err = KmsError;

    /// Accepts exactly Huawei's key-id form: 36 characters, lower-case,
    /// hyphenated (`^[0-9a-z]{8}-…-[0-9a-z]{12}$` restricted to hex).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shaped = s.len() == 36
            && s.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        if !shaped {
            return Err(KmsError::InvalidKeyId);
        }
        uuid::Uuid::parse_str(s).map(Self).map_err(|_| KmsError::InvalidKeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The stored (and wire) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the stored spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

string_enum! {
    /// Key algorithm and size.
    KeySpec {
        /// AES-256-GCM.
        Aes256 = "AES_256",
        /// SM4 (not supported yet).
        Sm4 = "SM4",
        /// RSA 2048 (not supported yet).
        Rsa2048 = "RSA_2048",
        /// RSA 3072 (not supported yet).
        Rsa3072 = "RSA_3072",
        /// RSA 4096 (not supported yet).
        Rsa4096 = "RSA_4096",
        /// ECDSA P-256 (not supported yet).
        EcP256 = "EC_P256",
        /// ECDSA P-384 (not supported yet).
        EcP384 = "EC_P384",
        /// ECDSA secp256k1 (not supported yet).
        Secp256k1 = "SECP256K1",
        /// SM2 (not supported yet).
        Sm2 = "SM2",
        /// Ed25519 (not supported yet).
        Ed25519 = "ED25519",
        /// HMAC-SHA256.
        Hmac256 = "HMAC_256",
        /// HMAC-SHA384.
        Hmac384 = "HMAC_384",
        /// HMAC-SHA512.
        Hmac512 = "HMAC_512",
        /// HMAC-SM3 (not supported yet).
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

    /// Material length in bytes, for the specs this build can generate;
    /// `None` for specs refused as unsupported.
    pub fn material_len(self) -> Option<usize> {
        match self {
            KeySpec::Aes256 | KeySpec::Hmac256 => Some(32),
            KeySpec::Hmac384 => Some(48),
            KeySpec::Hmac512 => Some(64),
            _ => None,
        }
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
    pub fn check_usage(self, usage: KeyUsage) -> Result<(), KmsError> {
        match (self.family(), usage) {
            (SpecFamily::Symmetric, KeyUsage::EncryptDecrypt)
            | (SpecFamily::AsymmetricEncryptOrSign, KeyUsage::EncryptDecrypt | KeyUsage::SignVerify)
            | (SpecFamily::AsymmetricSignOnly, KeyUsage::SignVerify)
            | (SpecFamily::Hmac, KeyUsage::GenerateVerifyMac) => Ok(()),
            (SpecFamily::Symmetric, KeyUsage::SignVerify) => Err(KmsError::SymmetricCannotSign),
            (SpecFamily::AsymmetricSignOnly, KeyUsage::EncryptDecrypt) => Err(KmsError::EcCannotEncrypt),
            _ => Err(KmsError::InvalidParameter("key_usage")),
        }
    }
}

/// Lifecycle state; the numbers are Huawei's `key_state` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Usable.
    Enabled = 2,
    /// Kept, but refuses cryptographic use.
    Disabled = 3,
    /// Waiting for its deletion date.
    PendingDeletion = 4,
    /// External key waiting for its material.
    PendingImport = 5,
}

impl KeyState {
    /// From the stored number.
    pub fn from_i32(n: i32) -> Option<Self> {
        match n {
            2 => Some(Self::Enabled),
            3 => Some(Self::Disabled),
            4 => Some(Self::PendingDeletion),
            5 => Some(Self::PendingImport),
            _ => None,
        }
    }

    /// Why a key in this state cannot be used for cryptography, if it cannot.
    pub fn check_usable(self) -> Result<(), KmsError> {
        match self {
            Self::Enabled => Ok(()),
            Self::Disabled => Err(KmsError::KeyDisabled),
            Self::PendingDeletion => Err(KmsError::KeyPendingDeletion),
            Self::PendingImport => Err(KmsError::KeyPendingImport),
        }
    }
}

/// A master key's metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Key id.
    pub key_id: KeyId,
    /// Owning project.
    pub project_id: String,
    /// Owning domain (account).
    pub domain_id: String,
    /// Alias, unique per project.
    pub alias: String,
    /// Free text, at most 255 characters.
    pub description: String,
    /// Algorithm.
    pub spec: KeySpec,
    /// Allowed use.
    pub usage: KeyUsage,
    /// Material origin.
    pub origin: KeyOrigin,
    /// Lifecycle state.
    pub state: KeyState,
    /// Service default key (alias ending in `/default`).
    pub default_key: bool,
    /// Enterprise project id, "0" by default.
    pub enterprise_project_id: String,
    /// Rotation switched on.
    pub rotation_enabled: bool,
    /// Creation time, ms.
    pub creation_ms: i64,
    /// Deletion date while pending deletion, ms.
    pub scheduled_deletion_ms: Option<i64>,
    /// Expiry of imported material, ms.
    pub expiration_ms: Option<i64>,
    /// Newest material version; `None` while there is no material.
    pub material_version: Option<i32>,
}

/// Maximum alias length.
pub const MAX_ALIAS_LEN: usize = 255;
/// Maximum description length, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 255;

/// Validates a user-chosen alias: `^[a-zA-Z0-9:/_-]{1,255}$`, not ending
/// in `/default` (those belong to services).
pub fn validate_user_alias(alias: &str) -> Result<(), KmsError> {
    let charset_ok = alias.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'));
    if alias.is_empty() || alias.len() > MAX_ALIAS_LEN || !charset_ok || alias.ends_with("/default") {
        return Err(KmsError::InvalidAlias);
    }
    Ok(())
}

/// Validates the optional `sequence`: 36 characters when present.
pub fn validate_sequence(sequence: &str) -> Result<(), KmsError> {
    if sequence.is_empty() || sequence.chars().count() == 36 { Ok(()) } else { Err(KmsError::InvalidSequence) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_must_be_lower_case_uuids() {
        assert!("3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90".parse::<KeyId>().is_ok());
        assert!("3F1C2A7E-5B4D-4E8F-9A01-6C2D8E4B7F90".parse::<KeyId>().is_err());
        assert!("3f1c2a7e5b4d4e8f9a016c2d8e4b7f90".parse::<KeyId>().is_err());
        assert!("".parse::<KeyId>().is_err());
    }

    #[test]
    fn aliases_follow_the_documented_rule() {
        assert!(validate_user_alias("orders-db").is_ok());
        assert!(validate_user_alias("a:b/c_d-e").is_ok());
        assert!(validate_user_alias(&"a".repeat(255)).is_ok());
        assert!(validate_user_alias(&"a".repeat(256)).is_err());
        assert!(validate_user_alias("").is_err());
        assert!(validate_user_alias("has space").is_err());
        assert!(validate_user_alias("csms/default").is_err());
        assert!(validate_user_alias("ünïcode").is_err());
    }

    #[test]
    fn spec_usage_pairings() {
        assert!(KeySpec::Aes256.check_usage(KeyUsage::EncryptDecrypt).is_ok());
        assert!(matches!(KeySpec::Aes256.check_usage(KeyUsage::SignVerify), Err(KmsError::SymmetricCannotSign)));
        assert!(matches!(KeySpec::EcP256.check_usage(KeyUsage::EncryptDecrypt), Err(KmsError::EcCannotEncrypt)));
        assert!(KeySpec::Hmac256.check_usage(KeyUsage::GenerateVerifyMac).is_ok());
        assert!(KeySpec::Hmac256.check_usage(KeyUsage::EncryptDecrypt).is_err());
    }
}
