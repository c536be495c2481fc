//! Secrets and versions as csms-service understands them, the documented
//! validation rules (csms-api.md §1.7, §1.8, §2.1), and the state
//! transitions of a secret next to its type.
//!
//! This module imports nothing else of the crate; every refusal it can
//! make is a [`Rejection`], which the store passes back unchanged and
//! `error` maps to gRPC.

pub mod events;
pub mod grants;
pub mod instances;

/// Largest `secret_string` / `secret_binary`, in bytes of the JSON string.
pub const MAX_VALUE_LEN: usize = 32 * 1024;
/// Largest description, in UTF-8 bytes.
pub const MAX_DESCRIPTION_LEN: usize = 2048;
/// Versions kept per secret.
pub const MAX_VERSIONS: usize = 20;
/// Distinct stage names per secret.
pub const MAX_STAGES: usize = 12;
/// Tags per secret.
pub const MAX_TAGS: usize = 20;
/// The stage that marks the current version.
pub const SYSCURRENT: &str = "SYSCURRENT";
/// The stage that marks the previous version.
pub const SYSPREVIOUS: &str = "SYSPREVIOUS";
/// The stage of a rotation in progress: the new credentials, staged before
/// the database gets them and never `latest` (only rotation sets it; its
/// update time is the rotation's lease).
pub const SYSPENDING: &str = "SYSPENDING";

/// Lifecycle state of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretState {
    /// Readable and writable.
    Enabled,
    /// Metadata only.
    Disabled,
    /// Waiting for its deletion date.
    PendingDelete,
    /// Account in arrears.
    Frozen,
}

impl SecretState {
    /// Stored spelling (Huawei's).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::PendingDelete => "PENDING_DELETE",
            Self::Frozen => "FROZEN",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ENABLED" => Self::Enabled,
            "DISABLED" => Self::Disabled,
            "PENDING_DELETE" => Self::PendingDelete,
            "FROZEN" => Self::Frozen,
            _ => return None,
        })
    }

    /// Why a value cannot be read or written in this state, if it cannot.
    pub fn check_value_access(self) -> Result<(), Rejection> {
        match self {
            Self::Enabled => Ok(()),
            Self::PendingDelete => Err(Rejection::SecretPendingDelete),
            Self::Disabled | Self::Frozen => Err(Rejection::SecretNotEnabled),
        }
    }
}

/// Whether a version holds text or (Base64) binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// `secret_string`.
    Text,
    /// `secret_binary`, kept as the Base64 text received.
    Binary,
}

impl ValueKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Binary => "binary",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "binary" => Some(Self::Binary),
            _ => None,
        }
    }
}

/// A secret's metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// UUID v4, lower case.
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// Name, unique per project.
    pub name: String,
    /// Lifecycle state.
    pub state: SecretState,
    /// Master key for new versions.
    pub kms_key_id: String,
    /// Free text.
    pub description: String,
    /// COMMON, RDS-FG or GaussDB-FG.
    pub secret_type: String,
    /// Automatic rotation switched on.
    pub auto_rotation: bool,
    /// e.g. "30d"; empty when unset.
    pub rotation_period: String,
    /// JSON text; empty when unset.
    pub rotation_config: String,
    /// 0 or 1 event names.
    pub event_subscriptions: Vec<String>,
    /// "0" by default.
    pub enterprise_project_id: String,
    /// FunctionGraph URN; empty when unset.
    pub rotation_func_urn: String,
    /// ms.
    pub create_ms: i64,
    /// ms.
    pub update_ms: i64,
    /// ms, only while pending deletion.
    pub scheduled_delete_ms: Option<i64>,
    /// ms of the last rotation.
    pub rotation_ms: Option<i64>,
    /// ms of the next rotation.
    pub next_rotation_ms: Option<i64>,
    /// The state to return to when a scheduled deletion is cancelled.
    pub state_before_delete: Option<SecretState>,
}

impl SecretRecord {
    /// A new, enabled secret with a fresh id, created at `now_ms`, every
    /// optional setting at its default (no description, `COMMON`, no
    /// rotation, enterprise project `0`).
    pub fn new(project_id: &str, name: String, kms_key_id: String, now_ms: i64) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.to_owned(),
            name,
            state: SecretState::Enabled,
            kms_key_id,
            description: String::new(),
            secret_type: "COMMON".to_owned(),
            auto_rotation: false,
            rotation_period: String::new(),
            rotation_config: String::new(),
            event_subscriptions: Vec::new(),
            enterprise_project_id: "0".to_owned(),
            rotation_func_urn: String::new(),
            create_ms: now_ms,
            update_ms: now_ms,
            scheduled_delete_ms: None,
            rotation_ms: None,
            next_rotation_ms: None,
            state_before_delete: None,
        }
    }
}

/// One sealed version of a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Owning secret.
    pub secret_id: String,
    /// 1 for `v1`, …
    pub number: i32,
    /// Master key whose data key sealed this version.
    pub kms_key_id: String,
    /// Text or binary.
    pub kind: ValueKind,
    /// Data-key ciphertext from kms-service.
    pub wrapped_dek: Vec<u8>,
    /// Nonce ‖ AES-256-GCM ciphertext ‖ tag of the value.
    pub ciphertext: Vec<u8>,
    /// ms.
    pub create_ms: i64,
    /// ms.
    pub expire_ms: Option<i64>,
    /// Stages on this version, sorted.
    pub stages: Vec<String>,
}

impl std::fmt::Debug for VersionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionRecord")
            .field("secret_id", &self.secret_id)
            .field("number", &self.number)
            .field("kms_key_id", &self.kms_key_id)
            .field("stages", &self.stages)
            .finish_non_exhaustive()
    }
}

impl VersionRecord {
    /// `v1`, `v2`, …
    pub fn id(&self) -> String {
        format!("v{}", self.number)
    }
}

fn invalid(msg: impl Into<String>) -> Rejection {
    Rejection::InvalidParameter(msg.into())
}

/// `^[a-zA-Z0-9._-]{1,64}$` (the documented rule plus the dotted form).
pub fn validate_name(name: &str) -> Result<(), Rejection> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(invalid("name must be 1-64 characters of [a-zA-Z0-9._-]")) }
}

/// A KMS key id as csms-api.md allows it on create: a lower-case UUID.
pub fn validate_kms_key_id(id: &str) -> Result<(), Rejection> {
    let ok = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || b.is_ascii_lowercase(),
        });
    if ok { Ok(()) } else { Err(invalid("kms_key_id must be a key id (lower-case UUID)")) }
}

/// Checks a value: at most 32 KiB; binary values must be Base64.
pub fn validate_value(kind: ValueKind, value: &[u8]) -> Result<(), Rejection> {
    if value.len() > MAX_VALUE_LEN {
        return Err(invalid("secret_string and secret_binary are limited to 32768 bytes"));
    }
    if kind == ValueKind::Binary {
        use base64::Engine;
        if value.is_empty() || base64::engine::general_purpose::STANDARD.decode(value).is_err() {
            return Err(invalid("secret_binary must be standard Base64"));
        }
    }
    Ok(())
}

/// `"30d"` → `("30", "d")`: the last character is the unit, whatever its
/// width in bytes (a multi-byte last character once split mid-character and
/// panicked, issue #15 finding 8).
fn split_unit(period: &str) -> Option<(&str, &str)> {
    let (at, _) = period.char_indices().last()?;
    Some(period.split_at(at))
}

/// `<n><d|h|m|s>` between 6 hours and 8760 hours.
pub fn validate_rotation_period(period: &str) -> Result<(), Rejection> {
    let err = || invalid("rotation_period must be <number><d|h|m|s> between 6h and 8760h");
    if period.len() > 50 || period.len() < 2 {
        return Err(err());
    }
    let (digits, unit) = split_unit(period).ok_or_else(err)?;
    let n: u64 = digits.parse().map_err(|_| err())?;
    let seconds = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => None,
    }
    .ok_or_else(err)?;
    if (6 * 3600..=8760 * 3600).contains(&seconds) { Ok(()) } else { Err(err()) }
}

/// A stage name a caller may set: `^[a-zA-Z0-9_-]{1,64}$`, not SYSPENDING.
pub fn validate_user_stage(stage: &str) -> Result<(), Rejection> {
    validate_stage_name(stage)?;
    if stage == SYSPENDING {
        return Err(invalid("SYSPENDING marks a rotation in progress; only rotation sets it"));
    }
    Ok(())
}

/// A stage name as stored: 1-64 characters of `[a-zA-Z0-9_-]`.
pub fn validate_stage_name(stage: &str) -> Result<(), Rejection> {
    let ok = !stage.is_empty()
        && stage.len() <= 64
        && stage.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(invalid("stage names are 1-64 characters of [a-zA-Z0-9_-]")) }
}

/// The tag rules of secrets (csms-api.md §2.6): keys of 1-128 letters,
/// separators, digits and `_ . : = + - @`, without surrounding whitespace
/// and not starting `_sys_`; values of 0-255 of the same and `/`; at most
/// [`MAX_TAGS`] per secret.
pub const TAG_RULES: common::tags::TagRules = common::tags::TagRules {
    max_key_chars: 128,
    max_value_chars: 255,
    max_tags: MAX_TAGS,
    key_char: |c| c.is_alphanumeric() || c.is_whitespace() || "_.:=+-@".contains(c),
    value_char: |c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c),
    reserved_key_prefix: Some("_sys_"),
    trimmed_keys: true,
};

/// The message of a refused tag request.
pub fn tag_rejection(fault: common::tags::TagFault) -> Rejection {
    use common::tags::TagFault as F;
    match fault {
        F::NotFound => Rejection::ResourceNotFound("tag"),
        F::InvalidKey => invalid("tag keys are 1-128 letters, digits, spaces or _.:=+-@, not starting with _sys_"),
        F::InvalidValue => invalid("tag values are 0-255 letters, digits, spaces or _.:/=+-@"),
        F::EmptyList | F::ListTooLong => invalid("tags takes 1-20 items"),
        F::InvalidAction => invalid("action must be create or delete (filter or count for the query)"),
        F::TooManyTags => invalid(format!("a secret has at most {MAX_TAGS} tags")),
        F::InvalidLimit => invalid("limit must be 1-1000"),
        other => invalid(other.to_string()),
    }
}

/// Expiry times are epoch milliseconds, 0..=9999999999999.
pub fn validate_expire_time(ms: i64) -> Result<(), Rejection> {
    if (0..=9_999_999_999_999).contains(&ms) { Ok(()) } else { Err(invalid("expire_time must be 0-9999999999999 ms")) }
}

/// Parses a `version_id` path value: `vN` → `Some(N)`, `latest` → `None`.
pub fn parse_version_id(id: &str) -> Result<Option<i32>, Rejection> {
    if id == "latest" {
        return Ok(None);
    }
    id.strip_prefix('v')
        .filter(|d| !d.is_empty() && d.len() <= 10 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<i32>().ok())
        .map(Some)
        .ok_or(Rejection::ResourceNotFound("version"))
}

/// Why a request is refused by a rule of the domain. Messages never contain
/// a secret value or a data key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A field fails validation; the text names the field and the rule.
    #[error("{0}")]
    InvalidParameter(String),
    /// No secret with that name in the caller's project.
    #[error("the secret does not exist")]
    SecretNotFound,
    /// A version, stage or other sub-resource does not exist.
    #[error("the {0} does not exist")]
    ResourceNotFound(&'static str),
    /// The secret is scheduled for deletion.
    #[error("the secret is pending deletion")]
    SecretPendingDelete,
    /// The secret is disabled or frozen.
    #[error("the secret is not enabled")]
    SecretNotEnabled,
    /// A 13th distinct stage would be created.
    #[error("the secret already has the maximum number of stages")]
    StageLimit,
    /// More than 12 stages in one request.
    #[error("too many stages in the request")]
    TooManyStagesInRequest,
    /// SYSCURRENT and SYSPREVIOUS cannot be deleted.
    #[error("system stages cannot be deleted")]
    SystemStage,
    /// Deletion scheduled twice.
    #[error("the secret is already scheduled for deletion")]
    AlreadyPendingDelete,
    /// Restore of a secret that is not scheduled for deletion.
    #[error("the secret is not scheduled for deletion")]
    NotPendingDelete,
    /// The request itself is malformed (e.g. a wrong path word).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Another rotation of the secret holds SYSPENDING (its lease has not
    /// run out).
    #[error("a rotation of this secret is in progress; try again later")]
    RotationInProgress,
}

const DAY_MS: i64 = 86_400_000;

/// The state transitions of a secret; the store runs them on the locked
/// row, so a refused change writes nothing.
impl SecretRecord {
    /// Metadata and values may change only while the secret is enabled.
    pub fn check_writable(&self) -> Result<(), Rejection> {
        self.state.check_value_access()
    }

    /// delete-secret with a recovery window of `days` from `now_ms`.
    pub fn schedule_deletion(&mut self, now_ms: i64, days: u32) -> Result<(), Rejection> {
        if self.state == SecretState::PendingDelete {
            return Err(Rejection::AlreadyPendingDelete);
        }
        self.state_before_delete = Some(self.state);
        self.state = SecretState::PendingDelete;
        self.scheduled_delete_ms = Some(now_ms + i64::from(days) * DAY_MS);
        self.update_ms = now_ms;
        Ok(())
    }

    /// restore-secret: back to the state before the scheduled deletion.
    pub fn restore(&mut self, now_ms: i64) -> Result<(), Rejection> {
        if self.state != SecretState::PendingDelete {
            return Err(Rejection::NotPendingDelete);
        }
        self.state = self.state_before_delete.take().unwrap_or(SecretState::Enabled);
        self.scheduled_delete_ms = None;
        self.update_ms = now_ms;
        Ok(())
    }
}

/// The JSON credentials of a database secret with a new `password`
/// member (csms-api.md §3.2: the shape of these values is not documented
/// beyond being JSON credentials; opendew rotates the `password` member and
/// keeps every other member). The reason for a refusal names no value.
pub fn with_new_password(value: &[u8], password: &str) -> Result<Vec<u8>, &'static str> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(value).map_err(|_| "the current value is not JSON credentials")?;
    let members = doc.as_object_mut().ok_or("the current value is not a JSON object")?;
    if !members.get("password").is_some_and(serde_json::Value::is_string) {
        return Err("the current value has no string member \"password\"");
    }
    members.insert("password".to_owned(), serde_json::Value::String(password.to_owned()));
    Ok(serde_json::to_vec(&doc).expect("JSON serialises"))
}

/// The `username` and `password` members of a database secret's JSON
/// credentials. The reason for a refusal names no value.
pub fn credentials(value: &[u8]) -> Result<(String, zeroize::Zeroizing<String>), &'static str> {
    let doc: serde_json::Value =
        serde_json::from_slice(value).map_err(|_| "the current value is not JSON credentials")?;
    let member = |name| doc.get(name).and_then(serde_json::Value::as_str);
    let username = member("username").filter(|u| !u.is_empty()).ok_or("the value has no string member \"username\"")?;
    let password = member("password").ok_or("the value has no string member \"password\"")?;
    Ok((username.to_owned(), zeroize::Zeroizing::new(password.to_owned())))
}

/// [`with_new_password`], with `username` replaced too (MultiUser's second
/// account).
pub fn with_new_account(value: &[u8], username: &str, password: &str) -> Result<Vec<u8>, &'static str> {
    let new = with_new_password(value, password)?;
    let mut doc: serde_json::Value = serde_json::from_slice(&new).map_err(|_| "not JSON")?;
    doc["username"] = serde_json::Value::String(username.to_owned());
    Ok(serde_json::to_vec(&doc).expect("JSON serialises"))
}

/// The `InstanceId` of a database secret's `rotation_config`.
pub fn rotation_instance(rotation_config: &str) -> Result<String, &'static str> {
    let config: serde_json::Value = serde_json::from_str(rotation_config).map_err(|_| "rotation_config is not JSON")?;
    match config.get("InstanceId").and_then(serde_json::Value::as_str) {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err("rotation_config.InstanceId names no database instance"),
    }
}

/// `SingleUser` or `MultiUser`, from a database secret's `rotation_config`.
pub fn secret_sub_type(rotation_config: &str) -> Result<&'static str, &'static str> {
    let config: serde_json::Value = serde_json::from_str(rotation_config).map_err(|_| "rotation_config is not JSON")?;
    match config.get("SecretSubType").and_then(serde_json::Value::as_str) {
        Some("SingleUser") | None => Ok("SingleUser"),
        Some("MultiUser") => Ok("MultiUser"),
        Some(_) => Err("rotation_config.SecretSubType must be SingleUser or MultiUser"),
    }
}

/// Milliseconds of a validated rotation period.
pub fn period_ms(period: &str) -> i64 {
    let (digits, unit) = split_unit(period).unwrap_or(("0", "s"));
    let n: i64 = digits.parse().unwrap_or(0);
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        _ => 1_000,
    };
    n.saturating_mul(unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_byte_unit_is_refused_not_a_panic() {
        assert!(validate_rotation_period("6é").is_err());
        assert!(validate_rotation_period("é").is_err());
        let _ = period_ms("6é");
        assert_eq!(period_ms("30d"), 30 * 86_400_000);
    }

    #[test]
    fn database_values_get_a_new_password_and_keep_the_rest() {
        let new = with_new_password(br#"{"username":"app","password":"old","port":5432}"#, "n3w").unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&new).unwrap();
        assert_eq!(doc, serde_json::json!({"username": "app", "password": "n3w", "port": 5432}));
        assert!(with_new_password(b"plain text", "x").is_err());
        assert!(with_new_password(br#"{"user":"app"}"#, "x").is_err());
        assert_eq!(secret_sub_type(r#"{"InstanceId":"i","SecretSubType":"MultiUser"}"#), Ok("MultiUser"));
        assert!(secret_sub_type(r#"{"SecretSubType":"Both"}"#).is_err());
    }

    #[test]
    fn names() {
        assert!(validate_name("orders-db.password_1").is_ok());
        assert!(validate_name(&"a".repeat(64)).is_ok());
        assert!(validate_name(&"a".repeat(65)).is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("a/b").is_err());
    }

    #[test]
    fn values() {
        assert!(validate_value(ValueKind::Text, &[b'x'; MAX_VALUE_LEN]).is_ok());
        assert!(validate_value(ValueKind::Text, &[b'x'; MAX_VALUE_LEN + 1]).is_err());
        assert!(validate_value(ValueKind::Binary, b"aGVsbG8=").is_ok());
        assert!(validate_value(ValueKind::Binary, b"not base64!").is_err());
    }

    #[test]
    fn rotation_periods() {
        for ok in ["6h", "1d", "365d", "8760h", "21600s"] {
            assert!(validate_rotation_period(ok).is_ok(), "{ok}");
        }
        for bad in ["5h", "366d", "1w", "d", "", "-1d", "21599s"] {
            assert!(validate_rotation_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_ids() {
        assert_eq!(parse_version_id("latest").unwrap(), None);
        assert_eq!(parse_version_id("v12").unwrap(), Some(12));
        assert!(parse_version_id("12").is_err());
        assert!(parse_version_id("v").is_err());
    }
}

/// One page of a list and whether more follow.
#[derive(Debug)]
pub struct Page<T> {
    /// The page.
    pub items: Vec<T>,
    /// More follow after the last item.
    pub more: bool,
}

impl<T> Page<T> {
    /// Cuts `fetched` (asked for `limit + 1`) to `limit`.
    pub(crate) fn cut(mut fetched: Vec<T>, limit: u32) -> Self {
        let more = fetched.len() > limit as usize;
        fetched.truncate(limit as usize);
        Self { items: fetched, more }
    }
}

/// What a list-secrets page is remembered by: the caller's project and the
/// store's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageQuery {
    pub(crate) project_id: String,
    pub(crate) marker: String,
    pub(crate) limit: u32,
    pub(crate) event: String,
}
