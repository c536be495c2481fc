//! Master keys as kms-service understands them, independent of protobuf
//! and SQL: the types, the documented rules, and the state transitions
//! next to the types they govern. Names of enum values are the strings
//! stored in the database.
//!
//! This module imports nothing else of the crate; every refusal it can
//! make is a [`Rejection`], which the store passes back unchanged and
//! `error` maps to gRPC.

use std::{fmt, str::FromStr};

use crypto::asymmetric::EncryptionScheme;

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
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

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

// After the macro: its textual scope reaches these modules.
mod grants;
mod rejection;
mod spec;

pub use grants::*;
pub use rejection::Rejection;
pub use spec::*;

/// How long import parameters stay valid, in seconds.
pub const IMPORT_TOKEN_LIFETIME_S: i64 = 24 * 3600;

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
        &mut self, digest: Vec<u8>, expiration_ms: Option<i64>, material_len: usize,
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
#[cfg(test)]
mod tests;

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
