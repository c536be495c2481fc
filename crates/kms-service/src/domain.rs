//! Master keys as kms-service understands them, independent of protobuf
//! and SQL: the types, the documented rules, and the state transitions
//! next to the types they govern. Names of enum values are the strings
//! stored in the database.
//!
//! This module imports nothing else of the crate; every refusal it can
//! make is a [`Rejection`], which the store passes back unchanged and
//! `error` maps to gRPC.

use std::{fmt, str::FromStr};

use crypto::asymmetric::{EncryptionScheme, KeyKind, SigningScheme};

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
    type Err = Rejection;

    /// Accepts exactly Huawei's key-id form: 36 characters, lower-case,
    /// hyphenated (`^[0-9a-z]{8}-…-[0-9a-z]{12}$` restricted to hex).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shaped = s.len() == 36
            && s.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        if !shaped {
            return Err(Rejection::InvalidKeyId);
        }
        uuid::Uuid::parse_str(s).map(Self).map_err(|_| Rejection::InvalidKeyId)
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
    /// What a grant may let its grantee do (kms-api.md §3.3).
    GrantOperation {
        /// create-datakey.
        CreateDatakey = "create-datakey",
        /// create-datakey-without-plaintext.
        CreateDatakeyWithoutPlaintext = "create-datakey-without-plaintext",
        /// encrypt-datakey.
        EncryptDatakey = "encrypt-datakey",
        /// decrypt-datakey.
        DecryptDatakey = "decrypt-datakey",
        /// describe-key.
        DescribeKey = "describe-key",
        /// create-grant (re-granting at most the grantee's own operations).
        CreateGrant = "create-grant",
        /// retire-grant.
        RetireGrant = "retire-grant",
        /// encrypt-data.
        EncryptData = "encrypt-data",
        /// decrypt-data.
        DecryptData = "decrypt-data",
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

/// How long import parameters stay valid, in seconds.
pub const IMPORT_TOKEN_LIFETIME_S: i64 = 24 * 3600;

string_enum! {
    /// Whom a grant names.
    PrincipalType {
        /// An IAM user id.
        User = "user",
        /// A domain (account) id: every user of the domain.
        Domain = "domain",
    }
}

/// A grant on a key: its grantee may use the key for `operations`, in its
/// own project, as if it were its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// 64 lower-case hex characters.
    pub grant_id: String,
    /// The key.
    pub key_id: KeyId,
    /// The key's project.
    pub project_id: String,
    /// A user id or a domain id, per `grantee_type`.
    pub grantee: String,
    /// What `grantee` names.
    pub grantee_type: PrincipalType,
    /// Allowed operations, distinct, in the order given.
    pub operations: Vec<GrantOperation>,
    /// The user who created it.
    pub issuing_principal: String,
    /// The user (or domain) that may retire it, if any.
    pub retiring_principal: Option<String>,
    /// Optional name.
    pub name: String,
    /// Creation time, ms.
    pub creation_ms: i64,
}

/// Who is asking, as far as grants care.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The caller's user id.
    pub user_id: &'a str,
    /// The caller's domain id.
    pub domain_id: &'a str,
}

impl GrantRecord {
    /// The grant names this caller.
    pub fn names(&self, who: Principal<'_>) -> bool {
        match self.grantee_type {
            PrincipalType::User => self.grantee == who.user_id,
            PrincipalType::Domain => self.grantee == who.domain_id,
        }
    }

    /// The grant lets this caller do `op`.
    pub fn allows(&self, who: Principal<'_>, op: GrantOperation) -> bool {
        self.names(who) && self.operations.contains(&op)
    }

    /// retire-grant: the issuer, the retiring principal (a user or its
    /// domain), or a grantee allowed to retire.
    pub fn retirable_by(&self, who: Principal<'_>) -> bool {
        self.issuing_principal == who.user_id
            || self.retiring_principal.as_deref().is_some_and(|r| r == who.user_id || r == who.domain_id)
            || self.allows(who, GrantOperation::RetireGrant)
    }
}

/// A grant's id: 64 hex characters (either case; kept in lower case).
pub fn parse_grant_id(text: &str) -> Result<String, Rejection> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else if text.is_empty() {
        Err(Rejection::MissingParameter("grant_id"))
    } else {
        Err(Rejection::InvalidGrantId)
    }
}

/// A grantee or retiring principal: `^[a-zA-Z0-9]{1,64}$`.
pub fn validate_principal(text: &str) -> Result<(), Rejection> {
    if !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Rejection::InvalidPrincipal)
    }
}

/// A grant's name: `^[a-zA-Z0-9:/_-]{1,255}$` (empty when none).
pub fn validate_grant_name(name: &str) -> Result<(), Rejection> {
    let ok = name.len() <= MAX_ALIAS_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(Rejection::InvalidParameter("name")) }
}

/// Grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 100;
/// Grants over all keys of a project.
pub const MAX_GRANTS_PER_PROJECT: usize = 1000;
/// Largest page of list-grants and list-retirable-grants.
pub const MAX_GRANT_PAGE: u32 = 100;

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
    pub fn check_usable(self) -> Result<(), Rejection> {
        match self {
            Self::Enabled => Ok(()),
            Self::Disabled => Err(Rejection::KeyDisabled),
            Self::PendingDeletion => Err(Rejection::KeyPendingDeletion),
            Self::PendingImport => Err(Rejection::KeyPendingImport),
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
    /// Automatic rotation switched on.
    pub rotation_enabled: bool,
    /// Days between automatic rotations, 30 to 365.
    pub rotation_interval_days: u32,
    /// Start of the current automatic rotation period (when rotation was
    /// enabled, or the last automatic rotation); `None` while rotation is off.
    pub rotation_anchor_ms: Option<i64>,
    /// Time of the last rotation, automatic or on demand.
    pub last_rotation_ms: Option<i64>,
    /// Rotations performed, automatic and on demand.
    pub rotations: u32,
    /// A keyed digest of the material imported into an external key, kept
    /// after the material is deleted: only the same material may come back.
    pub import_digest: Option<Vec<u8>>,
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
pub fn validate_user_alias(alias: &str) -> Result<(), Rejection> {
    let charset_ok = alias.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'));
    if alias.is_empty() || alias.len() > MAX_ALIAS_LEN || !charset_ok || alias.ends_with("/default") {
        return Err(Rejection::InvalidAlias);
    }
    Ok(())
}

/// The alias API's names: `alias/` and 1-255 characters of
/// `[a-zA-Z0-9:/_-]` (the Terraform provider documents the prefix as
/// required, and it keeps alias references apart from key ids).
pub fn validate_alias_name(alias: &str) -> Result<(), Rejection> {
    let Some(name) = alias.strip_prefix(ALIAS_PREFIX) else { return Err(Rejection::InvalidAlias) };
    let charset_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'));
    if name.is_empty() || name.len() > MAX_ALIAS_LEN || !charset_ok || alias.ends_with("/default") {
        return Err(Rejection::InvalidAlias);
    }
    Ok(())
}

/// What every alias-API name starts with.
pub const ALIAS_PREFIX: &str = "alias/";
/// Aliases per key.
pub const MAX_ALIASES_PER_KEY: usize = 50;
/// Largest page of list-aliases.
pub const MAX_ALIAS_PAGE: u32 = 100;

/// How a request names a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyName {
    /// By id.
    Id(KeyId),
    /// By an alias of the alias API (`alias/name`, or its URN
    /// `kms:{region}:{domain}:alias:alias/name`).
    Alias(String),
}

impl KeyName {
    /// Parses a `key_id` field: a key id, an alias, or an alias URN.
    pub fn parse(text: &str) -> Result<Self, Rejection> {
        if text.is_empty() {
            return Err(Rejection::MissingParameter("key_id"));
        }
        let alias = match text.split_once(":alias:") {
            Some((head, alias)) if head.starts_with("kms:") => alias,
            _ => text,
        };
        if alias.starts_with(ALIAS_PREFIX) {
            validate_alias_name(alias).map_err(|_| Rejection::InvalidKeyId)?;
            return Ok(Self::Alias(alias.to_owned()));
        }
        text.parse().map(Self::Id)
    }
}

/// The tag rules of keys (kms-api.md §3.2): keys of 1-36 and values of
/// 0-43 characters, none of them a control character or `*<>\=`, at most
/// 20 tags per key.
pub const TAG_RULES: common::tags::TagRules = common::tags::TagRules {
    max_key_chars: 36,
    max_value_chars: 43,
    max_tags: 20,
    key_char: tag_char,
    value_char: tag_char,
    reserved_key_prefix: None,
    trimmed_keys: false,
};

fn tag_char(c: char) -> bool {
    !c.is_control() && !matches!(c, '*' | '<' | '>' | '\\' | '=')
}

/// Validates the optional `sequence`: 36 characters when present.
pub fn validate_sequence(sequence: &str) -> Result<(), Rejection> {
    if sequence.is_empty() || sequence.chars().count() == 36 { Ok(()) } else { Err(Rejection::InvalidSequence) }
}

/// Largest page of list-keys.
pub const MAX_LIST_LIMIT: u32 = 2000;
/// Largest additional authenticated data, in bytes.
pub const MAX_AAD_LEN: usize = 128;
/// Largest encrypt-data plaintext, in bytes.
pub const MAX_DATA_LEN: usize = 4096;
/// Data-key lengths accepted by encrypt-datakey and decrypt-datakey, in bytes.
pub const DATAKEY_LEN_RANGE: std::ops::RangeInclusive<u32> = 1..=1024;
/// Lengths of generated data keys and random data, in bits.
pub const RANDOM_BITS_RANGE: std::ops::RangeInclusive<u32> = 8..=8192;
/// Days between automatic rotations (update-key-rotation-interval).
pub const ROTATION_INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 30..=365;
/// The interval of a key whose rotation was never configured.
pub const DEFAULT_ROTATION_INTERVAL_DAYS: u32 = 365;
/// Scheduled deletion waits this many days (Huawei's `pending_days`).
pub const PENDING_DAYS_RANGE: std::ops::RangeInclusive<u32> = 7..=1096;
const DAY_MS: i64 = 86_400_000;

/// Checks caller-supplied additional authenticated data.
pub fn validate_aad(aad: &[u8]) -> Result<(), Rejection> {
    if aad.len() > MAX_AAD_LEN {
        return Err(Rejection::InvalidParameter("additional_authenticated_data"));
    }
    Ok(())
}

/// Checks a description: at most 255 characters.
pub fn validate_description(description: &str) -> Result<(), Rejection> {
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(Rejection::InvalidDescription);
    }
    Ok(())
}

/// Parses a required key id: absent and malformed are told apart.
pub fn parse_key_id(key_id: &str) -> Result<KeyId, Rejection> {
    if key_id.is_empty() {
        return Err(Rejection::MissingParameter("key_id"));
    }
    key_id.parse()
}

/// The state transitions of a key. Each checks the current state, changes
/// the record only when it may, and says why not otherwise; the store runs
/// them on the locked row, so a refused change writes nothing.
impl KeyRecord {
    /// Refuses changes to service default keys.
    fn not_default(&self) -> Result<(), Rejection> {
        if self.default_key { Err(Rejection::DefaultKeyForbidden) } else { Ok(()) }
    }

    /// Moves a user key from state `from` to `to`, or refuses with `refusal`.
    fn switch(&mut self, from: KeyState, to: KeyState, refusal: Rejection) -> Result<(), Rejection> {
        self.not_default()?;
        if self.state != from {
            return Err(refusal);
        }
        self.state = to;
        Ok(())
    }

    /// enable-key: only a disabled key.
    pub fn enable(&mut self) -> Result<(), Rejection> {
        self.switch(KeyState::Disabled, KeyState::Enabled, Rejection::KeyNotDisabled)
    }

    /// disable-key: only an enabled key.
    pub fn disable(&mut self) -> Result<(), Rejection> {
        self.switch(KeyState::Enabled, KeyState::Disabled, Rejection::KeyNotEnabled)
    }

    /// schedule-key-deletion, `pending_days` after `now_ms`.
    pub fn schedule_deletion(&mut self, now_ms: i64, pending_days: u32) -> Result<(), Rejection> {
        self.not_default()?;
        if self.state == KeyState::PendingDeletion {
            return Err(Rejection::KeyAlreadyPendingDeletion);
        }
        self.state = KeyState::PendingDeletion;
        self.scheduled_deletion_ms = Some(now_ms + i64::from(pending_days) * DAY_MS);
        Ok(())
    }

    /// cancel-key-deletion: back to disabled, as Huawei does.
    pub fn cancel_deletion(&mut self) -> Result<(), Rejection> {
        if self.state != KeyState::PendingDeletion {
            return Err(Rejection::KeyNotPendingDeletion);
        }
        self.state = KeyState::Disabled;
        self.scheduled_deletion_ms = None;
        Ok(())
    }

    /// Alias and description changes: not on default keys, not while
    /// pending deletion.
    fn check_renamable(&self) -> Result<(), Rejection> {
        self.not_default()?;
        if self.state == KeyState::PendingDeletion {
            return Err(Rejection::KeyPendingDeletion);
        }
        Ok(())
    }

    /// update-key-alias (the alias was validated by the caller).
    pub fn rename(&mut self, alias: String) -> Result<(), Rejection> {
        self.check_renamable()?;
        self.alias = alias;
        Ok(())
    }

    /// update-key-description.
    pub fn describe(&mut self, description: String) -> Result<(), Rejection> {
        self.check_renamable()?;
        self.description = description;
        Ok(())
    }

    /// Rotation applies to this key: a symmetric user key whose material
    /// was generated here (kms-api.md §3.1), not on its way out.
    fn check_rotatable(&self) -> Result<(), Rejection> {
        self.not_default()?;
        if self.origin == KeyOrigin::External {
            return Err(Rejection::ExternalCannotRotate);
        }
        match (self.spec.family(), self.spec) {
            (SpecFamily::Symmetric, _) => {}
            (_, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096) => return Err(Rejection::RsaCannotRotate),
            (SpecFamily::Hmac, _) => return Err(Rejection::HmacUnsupported),
            _ => return Err(Rejection::AsymmetricUnsupported),
        }
        if self.state == KeyState::PendingDeletion {
            return Err(Rejection::KeyPendingDeletion);
        }
        Ok(())
    }

    /// enable-key-rotation: the first period starts now.
    pub fn enable_rotation(&mut self, now_ms: i64) -> Result<(), Rejection> {
        self.check_rotatable()?;
        if self.rotation_enabled {
            return Err(Rejection::RotationNotDisabled);
        }
        self.rotation_enabled = true;
        self.rotation_anchor_ms = Some(now_ms);
        Ok(())
    }

    /// disable-key-rotation; the interval is kept for a later enable.
    pub fn disable_rotation(&mut self) -> Result<(), Rejection> {
        self.not_default()?;
        if !self.rotation_enabled {
            return Err(Rejection::RotationNotEnabled);
        }
        self.rotation_enabled = false;
        self.rotation_anchor_ms = None;
        Ok(())
    }

    /// update-key-rotation-interval (the range was checked by the caller):
    /// the current period ends `days` after it began.
    pub fn set_rotation_interval(&mut self, days: u32) -> Result<(), Rejection> {
        self.check_rotatable()?;
        if !self.rotation_enabled {
            return Err(Rejection::RotationNotEnabled);
        }
        self.rotation_interval_days = days;
        Ok(())
    }

    /// When the automatic rotation is due, with days of `day_ms`
    /// milliseconds (shortened only in tests).
    pub fn rotation_due_ms(&self, day_ms: i64) -> Option<i64> {
        let anchor = self.rotation_anchor_ms.filter(|_| self.rotation_enabled)?;
        Some(anchor.saturating_add(i64::from(self.rotation_interval_days).saturating_mul(day_ms)))
    }

    /// A new material version that new ciphertexts use; the earlier ones
    /// stay for decryption. On demand it leaves the automatic schedule
    /// alone; `Scheduled` rotates only an enabled key whose period has
    /// ended, and starts the next period.
    pub fn rotate(&mut self, now_ms: i64, kind: Rotation) -> Result<(), Rejection> {
        self.check_rotatable()?;
        self.state.check_usable()?;
        if let Rotation::Scheduled { day_ms } = kind {
            if self.rotation_due_ms(day_ms).is_none_or(|due| due > now_ms) {
                return Err(Rejection::RotationNotDue);
            }
            self.rotation_anchor_ms = Some(now_ms);
        }
        let version = self.material_version.ok_or(Rejection::KeyPendingImport)?;
        self.material_version = Some(version.checked_add(1).ok_or(Rejection::RotationNotDue)?);
        self.rotations = self.rotations.saturating_add(1);
        self.last_rotation_ms = Some(now_ms);
        Ok(())
    }

    /// Checks an external key waiting for its material (parameters and
    /// import).
    pub fn check_importable(&self) -> Result<(), Rejection> {
        if self.origin != KeyOrigin::External {
            return Err(Rejection::ExternalKeyRequired);
        }
        if self.state != KeyState::PendingImport {
            return Err(Rejection::KeyNotPendingImport);
        }
        Ok(())
    }

    /// import-key-material: the material (of `digest`, `material_len`
    /// bytes, which must be the spec's) becomes version 1 and the key is
    /// enabled. Once material was imported, only the same
    /// material may be imported again.
    pub fn import_material(
        &mut self,
        digest: Vec<u8>,
        expiration_ms: Option<i64>,
        material_len: usize,
    ) -> Result<(), Rejection> {
        self.check_importable()?;
        if self.spec.material_len() != Some(material_len) {
            return Err(Rejection::ImportMaterialLength);
        }
        if self.import_digest.as_ref().is_some_and(|d| *d != digest) {
            return Err(Rejection::DifferentMaterial);
        }
        self.state = KeyState::Enabled;
        self.material_version = Some(1);
        self.expiration_ms = expiration_ms;
        self.import_digest = Some(digest);
        Ok(())
    }

    /// delete-imported-key-material: the key waits for its material again
    /// and its ciphertexts stop opening until the same material is back.
    pub fn delete_imported_material(&mut self) -> Result<(), Rejection> {
        if self.origin != KeyOrigin::External {
            return Err(Rejection::ExternalKeyRequired);
        }
        if !matches!(self.state, KeyState::Enabled | KeyState::Disabled) {
            return Err(Rejection::MaterialNotDeletable);
        }
        self.state = KeyState::PendingImport;
        self.material_version = None;
        self.expiration_ms = None;
        Ok(())
    }

    /// The background task's deletion of material past its expiry (a no-op
    /// refusal when the expiry moved or the material is gone).
    pub fn expire_material(&mut self, now_ms: i64) -> Result<(), Rejection> {
        if self.expiration_ms.is_none_or(|e| e > now_ms) {
            return Err(Rejection::KeyNotPendingImport);
        }
        self.delete_imported_material()
    }

    /// Imported material past its expiry no longer works, even before the
    /// background task deletes it.
    pub fn check_not_expired(&self, now_ms: i64) -> Result<(), Rejection> {
        if self.expiration_ms.is_some_and(|e| e <= now_ms) { Err(Rejection::KeyPendingImport) } else { Ok(()) }
    }

    /// get-publickey: an asymmetric key (of either usage), usable.
    pub fn check_public_key(&self) -> Result<(), Rejection> {
        match self.spec.family() {
            SpecFamily::Symmetric => return Err(Rejection::SymmetricUnsupported),
            SpecFamily::Hmac => return Err(Rejection::HmacUnsupported),
            SpecFamily::AsymmetricEncryptOrSign | SpecFamily::AsymmetricSignOnly => {}
        }
        self.state.check_usable()
    }

    /// sign and verify: an asymmetric SIGN_VERIFY key, usable.
    pub fn check_signing_use(&self) -> Result<(), Rejection> {
        self.check_public_key()?;
        if self.usage != KeyUsage::SignVerify {
            return Err(Rejection::EncryptOnlyKey);
        }
        Ok(())
    }

    /// generate-mac and verify-mac: an HMAC key, usable.
    pub fn check_mac_use(&self) -> Result<(), Rejection> {
        match self.spec.family() {
            SpecFamily::Hmac => {}
            SpecFamily::Symmetric => return Err(Rejection::SymmetricUnsupported),
            SpecFamily::AsymmetricEncryptOrSign | SpecFamily::AsymmetricSignOnly => {
                return Err(Rejection::AsymmetricUnsupported);
            }
        }
        self.state.check_usable()
    }

    /// encrypt-data and decrypt-data with `algorithm`: the symmetric path
    /// (`None`) for symmetric keys and `SYMMETRIC_DEFAULT`, or the
    /// public-key scheme of an ENCRYPT_DECRYPT RSA or SM2 key; refusals as
    /// kms-api.md §2.14 lists them.
    pub fn data_scheme(&self, algorithm: EncryptionAlgorithm) -> Result<Option<EncryptionScheme>, Rejection> {
        let scheme = match self.spec.family() {
            SpecFamily::Symmetric if algorithm == EncryptionAlgorithm::SymmetricDefault => None,
            SpecFamily::Symmetric => return Err(Rejection::SymmetricAlgorithmMismatch),
            SpecFamily::Hmac => return Err(Rejection::HmacUnsupported),
            SpecFamily::AsymmetricSignOnly => return Err(Rejection::EcCannotEncrypt),
            SpecFamily::AsymmetricEncryptOrSign if self.usage == KeyUsage::SignVerify => {
                return Err(Rejection::SignOnlyKey);
            }
            SpecFamily::AsymmetricEncryptOrSign => Some(algorithm.scheme_for(self.spec)?),
        };
        self.state.check_usable()?;
        Ok(scheme)
    }

    /// Symmetric encryption is allowed: right family and usage, usable state.
    pub fn check_symmetric_use(&self) -> Result<(), Rejection> {
        match self.spec.family() {
            SpecFamily::Symmetric => {}
            SpecFamily::Hmac => return Err(Rejection::HmacUnsupported),
            SpecFamily::AsymmetricSignOnly => return Err(Rejection::EcCannotEncrypt),
            SpecFamily::AsymmetricEncryptOrSign if self.usage == KeyUsage::SignVerify => {
                return Err(Rejection::SignOnlyKey);
            }
            SpecFamily::AsymmetricEncryptOrSign => return Err(Rejection::AsymmetricUnsupported),
        }
        self.state.check_usable()
    }
}

/// Why a key is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// rotate-on-demand.
    OnDemand,
    /// The background task, with days of `day_ms` milliseconds.
    Scheduled {
        /// Length of a day.
        day_ms: i64,
    },
}

/// Why a request is refused by a rule of the domain: a malformed field, or
/// a key whose spec or state does not allow the operation. Messages never
/// contain key material, plaintext or AAD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A required request field is absent.
    #[error("missing required parameter `{0}`")]
    MissingParameter(&'static str),
    /// A field has a value outside its documented domain.
    #[error("invalid parameter `{0}`")]
    InvalidParameter(&'static str),
    /// `key_id` is not a lower-case UUID.
    #[error("invalid key id")]
    InvalidKeyId,
    /// `sequence` is not 36 characters.
    #[error("invalid sequence number")]
    InvalidSequence,
    /// The key is disabled.
    #[error("the key is disabled")]
    KeyDisabled,
    /// The key is scheduled for deletion.
    #[error("the key is pending deletion")]
    KeyPendingDeletion,
    /// The key has no material yet (external origin).
    #[error("the key is pending import of its material")]
    KeyPendingImport,
    /// Operation forbidden on a service default key.
    #[error("operation not allowed on a default master key")]
    DefaultKeyForbidden,
    /// Alias empty, too long, with bad characters, or ending in `/default`.
    #[error("invalid key alias")]
    InvalidAlias,
    /// Description longer than 255 characters.
    #[error("invalid key description")]
    InvalidDescription,
    /// Unknown or unsupported key spec.
    #[error("invalid or unsupported key spec")]
    InvalidKeySpec,
    /// EC keys cannot encrypt.
    #[error("EC keys cannot encrypt or decrypt")]
    EcCannotEncrypt,
    /// Symmetric keys cannot sign.
    #[error("symmetric keys cannot sign or verify")]
    SymmetricCannotSign,
    /// Page size out of range.
    #[error("invalid limit")]
    InvalidLimit,
    /// Page marker invalid.
    #[error("invalid marker")]
    InvalidMarker,
    /// Data-key length outside 8..=8192 bits.
    #[error("data key length must be 8 to 8192 bits")]
    DatakeyLengthOutOfRange,
    /// Data-key length not a whole number of bytes.
    #[error("data key length must be a multiple of 8 bits")]
    DatakeyLengthNotByteAligned,
    /// Operation needs a symmetric key.
    #[error("asymmetric keys do not support this operation")]
    AsymmetricUnsupported,
    /// Operation not available for HMAC keys.
    #[error("HMAC keys do not support this operation")]
    HmacUnsupported,
    /// Ciphertext malformed, tampered, for another key, or AAD mismatch.
    #[error("invalid ciphertext")]
    InvalidCiphertext,
    /// Decrypted data key length differs from the expected length.
    #[error("decrypted data key length does not match")]
    CiphertextLengthMismatch,
    /// enable-key on a key that is not disabled.
    #[error("the key is not disabled")]
    KeyNotDisabled,
    /// disable-key on a key that is not enabled.
    #[error("the key is not enabled")]
    KeyNotEnabled,
    /// pending_days outside 7..=1096.
    #[error("pending_days must be between 7 and 1096")]
    InvalidPendingDays,
    /// schedule-key-deletion on a key already pending deletion.
    #[error("the key is already pending deletion")]
    KeyAlreadyPendingDeletion,
    /// cancel-key-deletion on a key that is not pending deletion.
    #[error("the key is not pending deletion")]
    KeyNotPendingDeletion,
    /// encrypt-datakey plaintext is not hex or is empty.
    #[error("invalid data key plaintext")]
    InvalidDatakeyPlaintext,
    /// Data-key plaintext length outside 1..=1024 bytes.
    #[error("data key plaintext length must be 1 to 1024 bytes")]
    InvalidDatakeyPlainLength,
    /// The digest appended to a data key does not match it.
    #[error("the data key digest does not match")]
    DatakeyDigestMismatch,
    /// plaintext length differs from data key length + 32.
    #[error("plaintext length does not match the data key length")]
    DatakeyPlaintextLengthMismatch,
    /// datakey_cipher_length outside 1..=1024 bytes.
    #[error("data key cipher length must be 1 to 1024 bytes")]
    InvalidDatakeyCipherLength,
    /// An asymmetric algorithm asked of a symmetric key.
    #[error("the symmetric key does not support this encryption algorithm")]
    SymmetricAlgorithmMismatch,
    /// Encryption asked of a SIGN_VERIFY key.
    #[error("the key is for signing and verifying")]
    SignOnlyKey,
    /// random_data_length outside 8..=8192 bits.
    #[error("random data length must be 8 to 8192 bits")]
    RandomLengthOutOfRange,
    /// random_data_length not a whole number of bytes.
    #[error("random data length must be a multiple of 8 bits")]
    RandomLengthNotMultipleOf8,
    /// Keys with imported material are not rotated.
    #[error("external keys cannot be rotated")]
    ExternalCannotRotate,
    /// RSA keys are not rotated.
    #[error("RSA keys cannot be rotated")]
    RsaCannotRotate,
    /// enable-key-rotation when it is on.
    #[error("key rotation is not disabled")]
    RotationNotDisabled,
    /// disable-key-rotation or a new interval when rotation is off.
    #[error("key rotation is not enabled")]
    RotationNotEnabled,
    /// rotation_interval outside 30..=365 days.
    #[error("rotation_interval must be 30 to 365 days")]
    InvalidRotationInterval,
    /// A grant's operations are only create-grant.
    #[error("a grant needs an operation besides create-grant")]
    GrantOnlyCreateGrant,
    /// A grantee or retiring principal is malformed.
    #[error("invalid principal")]
    InvalidPrincipal,
    /// The key has the most grants it may have.
    #[error("the key has the maximum number of grants")]
    GrantQuota,
    /// The project has the most grants it may have.
    #[error("the project has the maximum number of grants")]
    GrantProjectQuota,
    /// The grant id is malformed or unknown.
    #[error("invalid grant id")]
    InvalidGrantId,
    /// The grant belongs to another key.
    #[error("the grant does not belong to this key")]
    GrantKeyMismatch,
    /// The caller may not do this to the grant.
    #[error("no access permission")]
    NoPermission,
    /// The operation needs an external key.
    #[error("external keys required")]
    ExternalKeyRequired,
    /// The key is not waiting for its material.
    #[error("the key is not pending import")]
    KeyNotPendingImport,
    /// The import token's time is up.
    #[error("the import token expired")]
    ImportTokenExpired,
    /// The material's expiry is not in the future.
    #[error("the expiration time must be in the future")]
    ExpirationNotFuture,
    /// The import token was issued for another key.
    #[error("the import token belongs to another key")]
    ImportTokenKeyMismatch,
    /// The unwrapped material is not 32 bytes.
    #[error("the imported material must be 32 bytes")]
    ImportMaterialLength,
    /// The import token does not open.
    #[error("the import token is invalid")]
    ImportTokenInvalid,
    /// Material other than the key's earlier material.
    #[error("only the key's earlier material may be imported again")]
    DifferentMaterial,
    /// delete-imported-key-material in a state without material.
    #[error("the key material is not enabled or disabled")]
    MaterialNotDeletable,
    /// The wrapped material does not unwrap with the token's key.
    #[error("the wrapped material does not decrypt")]
    UnwrapFailed,
    /// A tag request broke a tag rule.
    #[error("tag request refused: {0}")]
    Tag(common::tags::TagFault),
    /// A resource query named a `matches` key other than `resource_name`.
    #[error("invalid match key")]
    InvalidMatchKey,
    /// The alias does not exist in the project.
    #[error("the alias does not exist")]
    AliasNotFound,
    /// The key has the most aliases it may have.
    #[error("the key has the maximum number of aliases")]
    AliasLimit,
    /// Operation not available for AES and SM4 keys.
    #[error("the symmetric key does not support this operation")]
    SymmetricUnsupported,
    /// Signing asked of an ENCRYPT_DECRYPT key.
    #[error("the key is for encrypting and decrypting")]
    EncryptOnlyKey,
    /// The signing algorithm does not go with the key's spec.
    #[error("the key does not support this signing algorithm")]
    SigningAlgorithmMismatch,
    /// A DIGEST message whose length is not the algorithm's hash length.
    #[error("the digest length does not match the signing algorithm's hash")]
    DigestLengthMismatch,
    /// The encryption algorithm does not go with the asymmetric key.
    #[error("the asymmetric key does not support this encryption algorithm")]
    AsymmetricAlgorithmMismatch,
    /// The plaintext is longer than the key and algorithm encrypt.
    #[error("the plaintext is too long for the key")]
    PlaintextTooLong,
    /// An asymmetric ciphertext that does not decrypt.
    #[error("the ciphertext does not decrypt with the private key")]
    PrivateKeyDecryptFailed,
    /// The scheduled rotation is not due (another replica did it): the
    /// background task's own outcome, never a caller's.
    #[error("the key's rotation is not due")]
    RotationNotDue,
}

#[cfg(test)]
impl KeyRecord {
    /// An enabled AES-256 key of `project` with a new id, for tests.
    pub(crate) fn sample(project: &str, alias: &str) -> Self {
        KeyRecord {
            key_id: KeyId::new(),
            project_id: project.to_owned(),
            domain_id: "d".into(),
            alias: alias.to_owned(),
            description: String::new(),
            spec: KeySpec::Aes256,
            usage: KeyUsage::EncryptDecrypt,
            origin: KeyOrigin::Kms,
            state: KeyState::Enabled,
            default_key: false,
            enterprise_project_id: "0".into(),
            rotation_enabled: false,
            rotation_interval_days: DEFAULT_ROTATION_INTERVAL_DAYS,
            rotation_anchor_ms: None,
            last_rotation_ms: None,
            rotations: 0,
            import_digest: None,
            creation_ms: 0,
            scheduled_deletion_ms: None,
            expiration_ms: None,
            material_version: Some(1),
        }
    }
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
    fn transitions_refuse_without_changing_the_key() {
        let mut key = KeyRecord::sample("p", "a");
        assert_eq!(key.enable(), Err(Rejection::KeyNotDisabled));
        key.disable().unwrap();
        key.schedule_deletion(0, 7).unwrap();
        assert_eq!(key.scheduled_deletion_ms, Some(7 * DAY_MS));
        let before = key.clone();
        assert_eq!(key.rename("b".into()), Err(Rejection::KeyPendingDeletion));
        assert_eq!(key.schedule_deletion(0, 8), Err(Rejection::KeyAlreadyPendingDeletion));
        assert_eq!(key, before);
        key.cancel_deletion().unwrap();
        assert_eq!((key.state, key.scheduled_deletion_ms), (KeyState::Disabled, None));
        key.default_key = true;
        assert_eq!(key.enable(), Err(Rejection::DefaultKeyForbidden));
    }

    #[test]
    fn rotation_rotates_on_schedule_and_refuses_where_documented() {
        let mut key = KeyRecord::sample("p", "a");
        assert_eq!(key.disable_rotation(), Err(Rejection::RotationNotEnabled));
        assert_eq!(key.set_rotation_interval(90), Err(Rejection::RotationNotEnabled));
        key.enable_rotation(1_000).unwrap();
        assert_eq!(key.enable_rotation(1_000), Err(Rejection::RotationNotDisabled));
        key.set_rotation_interval(30).unwrap();
        let day = 10;
        assert_eq!(key.rotation_due_ms(day), Some(1_300));
        assert_eq!(key.rotate(1_299, Rotation::Scheduled { day_ms: day }), Err(Rejection::RotationNotDue));
        key.rotate(1_300, Rotation::Scheduled { day_ms: day }).unwrap();
        assert_eq!((key.material_version, key.rotations, key.rotation_due_ms(day)), (Some(2), 1, Some(1_600)));
        // On demand: a new version, the schedule untouched.
        key.rotate(1_400, Rotation::OnDemand).unwrap();
        assert_eq!((key.material_version, key.rotations, key.last_rotation_ms), (Some(3), 2, Some(1_400)));
        assert_eq!(key.rotation_due_ms(day), Some(1_600));
        key.disable().unwrap();
        assert_eq!(key.rotate(2_000, Rotation::OnDemand), Err(Rejection::KeyDisabled));

        let mut external = KeyRecord { origin: KeyOrigin::External, ..KeyRecord::sample("p", "e") };
        assert_eq!(external.enable_rotation(0), Err(Rejection::ExternalCannotRotate));
        let mut rsa = KeyRecord { spec: KeySpec::Rsa2048, ..KeyRecord::sample("p", "r") };
        assert_eq!(rsa.rotate(0, Rotation::OnDemand), Err(Rejection::RsaCannotRotate));
        let mut ec = KeyRecord { spec: KeySpec::EcP256, ..KeyRecord::sample("p", "c") };
        assert_eq!(ec.enable_rotation(0), Err(Rejection::AsymmetricUnsupported));
        let mut default = KeyRecord { default_key: true, ..KeyRecord::sample("p", "csms/default") };
        assert_eq!(default.enable_rotation(0), Err(Rejection::DefaultKeyForbidden));
    }

    #[test]
    fn keys_are_named_by_id_alias_or_urn() {
        let id = "3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90";
        assert_eq!(KeyName::parse(id).unwrap(), KeyName::Id(id.parse().unwrap()));
        assert_eq!(KeyName::parse("alias/orders").unwrap(), KeyName::Alias("alias/orders".into()));
        let urn = format!("kms:local-1:{}:alias:alias/orders", "d".repeat(32));
        assert_eq!(KeyName::parse(&urn).unwrap(), KeyName::Alias("alias/orders".into()));
        assert_eq!(KeyName::parse("alias/"), Err(Rejection::InvalidKeyId));
        assert_eq!(KeyName::parse("orders"), Err(Rejection::InvalidKeyId));
        assert_eq!(KeyName::parse(""), Err(Rejection::MissingParameter("key_id")));
        assert!(validate_alias_name("alias/a:b/c_d-e").is_ok());
        assert!(validate_alias_name("orders").is_err());
        assert!(validate_alias_name("alias/x/default").is_err());
        assert!(validate_alias_name(&format!("alias/{}", "a".repeat(256))).is_err());
    }

    #[test]
    fn spec_usage_pairings() {
        assert!(KeySpec::Aes256.check_usage(KeyUsage::EncryptDecrypt).is_ok());
        assert!(matches!(KeySpec::Aes256.check_usage(KeyUsage::SignVerify), Err(Rejection::SymmetricCannotSign)));
        assert!(matches!(KeySpec::EcP256.check_usage(KeyUsage::EncryptDecrypt), Err(Rejection::EcCannotEncrypt)));
        assert!(KeySpec::Hmac256.check_usage(KeyUsage::GenerateVerifyMac).is_ok());
        assert!(KeySpec::Hmac256.check_usage(KeyUsage::EncryptDecrypt).is_err());
    }
}

/// One page of keys.
#[derive(Debug)]
pub struct KeyPage {
    /// The keys.
    pub keys: Vec<KeyRecord>,
    /// Keys matching the filter in all.
    pub total: u64,
    /// Offset of the next page, when there is one.
    pub next_offset: Option<u64>,
}

/// What a list-keys page is remembered by: the caller's project and the
/// store's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageQuery {
    pub(crate) project_id: String,
    pub(crate) state: Option<i32>,
    pub(crate) spec: Option<&'static str>,
    pub(crate) offset: u64,
    pub(crate) limit: u32,
}
