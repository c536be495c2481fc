//! Events (notification rules), the notification records their firings
//! leave, and rotation tasks, with the documented validation rules
//! (csms-api.md §3.1, §3.2.2). Like the rest of [`crate::domain`], nothing
//! here imports the rest of the crate.

use serde::Serialize;

use super::{Rejection, SecretRecord, invalid};

/// Base event types a rule can fire on (the SDK's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A version was created (create-secret, create-secret-version, rotation).
    VersionCreated,
    /// A version's `expire_time` was reached.
    VersionExpired,
    /// A rotation succeeded.
    Rotated,
    /// A rotation failed.
    RotatedFailed,
    /// The secret was deleted (at once, or when its recovery window ended).
    Deleted,
}

impl EventType {
    /// Every type, in the SDK's order.
    pub const ALL: [EventType; 5] =
        [Self::VersionCreated, Self::VersionExpired, Self::Rotated, Self::Deleted, Self::RotatedFailed];

    /// Huawei's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VersionCreated => "SECRET_VERSION_CREATED",
            Self::VersionExpired => "SECRET_VERSION_EXPIRED",
            Self::Rotated => "SECRET_ROTATED",
            Self::RotatedFailed => "SECRET_ROTATED_FAILED",
            Self::Deleted => "SECRET_DELETED",
        }
    }

    /// Parses Huawei's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Whether a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// Firings leave records.
    Enabled,
    /// The rule is kept but never fires.
    Disabled,
}

impl EventState {
    /// Huawei's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
        }
    }

    /// Parses Huawei's spelling, refusing anything else.
    pub fn parse(s: &str) -> Result<Self, Rejection> {
        match s {
            "ENABLED" => Ok(Self::Enabled),
            "DISABLED" => Ok(Self::Disabled),
            _ => Err(invalid("state must be ENABLED or DISABLED")),
        }
    }
}

/// Where a rule's notifications go: an SMN topic by URN and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationTarget {
    /// Always `SMN`.
    pub target_type: String,
    /// Topic URN, `^[a-zA-Z0-9\-._:]{1,256}$`.
    pub target_id: String,
    /// Topic name, `^[a-zA-Z0-9_-]{1,64}$`.
    pub target_name: String,
}

impl NotificationTarget {
    /// Checks the documented rules of the three fields.
    pub fn validate(&self) -> Result<(), Rejection> {
        if self.target_type != "SMN" {
            return Err(invalid("notification.target_type must be SMN"));
        }
        let id_ok = (1..=256).contains(&self.target_id.len())
            && self.target_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
        if !id_ok {
            return Err(invalid("notification.target_id must be 1-256 characters of [a-zA-Z0-9-._:]"));
        }
        if !word(&self.target_name, 64) {
            return Err(invalid("notification.target_name must be 1-64 characters of [a-zA-Z0-9_-]"));
        }
        Ok(())
    }
}

/// `^[a-zA-Z0-9_-]{1,max}$`.
fn word(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An event (notification rule) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Owning project.
    pub project_id: String,
    /// Unique in the project, `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    /// UUID v4.
    pub id: String,
    /// 1-12 distinct types.
    pub event_types: Vec<EventType>,
    /// On or off.
    pub state: EventState,
    /// The topic.
    pub target: NotificationTarget,
    /// ms.
    pub create_ms: i64,
    /// ms.
    pub update_ms: i64,
}

/// An event name: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn validate_event_name(name: &str) -> Result<(), Rejection> {
    if word(name, 64) { Ok(()) } else { Err(invalid("event names are 1-64 characters of [a-zA-Z0-9_-]")) }
}

/// The list's marker: `^[a-zA-Z0-9._-]{1,64}$`.
pub fn validate_event_marker(marker: &str) -> Result<(), Rejection> {
    let ok = (1..=64).contains(&marker.len())
        && marker.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(invalid("marker must be an event name")) }
}

/// 1-12 base event types from the enum, without duplicates.
pub fn parse_event_types(types: &[String]) -> Result<Vec<EventType>, Rejection> {
    if types.is_empty() || types.len() > 12 {
        return Err(invalid("event_types takes 1-12 base event types"));
    }
    let mut parsed = Vec::with_capacity(types.len());
    for t in types {
        let t = EventType::parse(t).ok_or_else(|| {
            invalid("event_types items are SECRET_VERSION_CREATED, SECRET_VERSION_EXPIRED, SECRET_ROTATED, SECRET_DELETED or SECRET_ROTATED_FAILED")
        })?;
        if parsed.contains(&t) {
            return Err(invalid("event_types must not repeat a type"));
        }
        parsed.push(t);
    }
    Ok(parsed)
}

/// Delivery states of a notification record: `PENDING` (opendew's own,
/// while the sink has not yet taken it), then `SUCCESS` or `FAIL`.
pub mod status {
    /// Written with the change; the delivery task has not settled it yet.
    pub const PENDING: &str = "PENDING";
    /// The sink took it.
    pub const SUCCESS: &str = "SUCCESS";
    /// Every attempt failed.
    pub const FAIL: &str = "FAIL";
}

/// One notification record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// UUID v4; also the delivery id a webhook receiver deduplicates by.
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// The rule that fired.
    pub event_name: String,
    /// What happened.
    pub event_type: String,
    /// The secret concerned.
    pub secret_name: String,
    /// Its type.
    pub secret_type: String,
    /// Topic URN.
    pub target_id: String,
    /// Topic name.
    pub target_name: String,
    /// The message, JSON text.
    pub content: String,
    /// See [`status`].
    pub status: String,
    /// ms.
    pub create_ms: i64,
    /// Delivery attempts so far.
    pub attempts: i32,
}

/// A firing to record, in the transaction of the change that caused it:
/// the type and, for version events, the version's number and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// What happened.
    pub event_type: EventType,
    /// `(number, expire_ms)` of the version concerned.
    pub version: Option<(i32, Option<i64>)>,
}

impl Notice {
    /// A notice about the secret itself.
    pub fn of(event_type: EventType) -> Self {
        Self { event_type, version: None }
    }

    /// A notice about one version.
    pub fn version(event_type: EventType, number: i32, expire_ms: Option<i64>) -> Self {
        Self { event_type, version: Some((number, expire_ms)) }
    }
}

/// ISO-8601 UTC with milliseconds, as the message content spells times.
pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content<'a> {
    event_name: &'a str,
    event_type: &'a str,
    event_time: String,
    data: ContentData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentData<'a> {
    secret_id: &'a str,
    secret_name: &'a str,
    create_time: String,
    update_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_expire_time: Option<String>,
}

/// The message of one firing (csms-api.md §3.1.6): never a value.
pub fn notification_content(event_name: &str, notice: &Notice, secret: &SecretRecord, now_ms: i64) -> String {
    let content = Content {
        event_name,
        event_type: notice.event_type.as_str(),
        event_time: iso_ms(now_ms),
        data: ContentData {
            secret_id: &secret.id,
            secret_name: &secret.name,
            create_time: iso_ms(secret.create_ms),
            update_time: iso_ms(secret.update_ms),
            version_id: notice.version.map(|(n, _)| format!("v{n}")),
            version_expire_time: notice.version.and_then(|(_, e)| e).map(iso_ms),
        },
    };
    serde_json::to_string(&content).expect("content serialises")
}

/// Outcome of a rotation attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// A new version holds the new value.
    Success,
    /// Nothing changed; the task says why.
    Failed,
}

impl TaskStatus {
    /// Huawei's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
        }
    }

    /// Parses Huawei's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SUCCESS" => Some(Self::Success),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Why a rotation failed, as stored with its task: a reason, not an API
/// code (the gateway spells it as CSMS does). The names are the proto
/// `ErrorReason`'s without its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFailure {
    /// The secret's value or configuration cannot be rotated as asked.
    InvalidParameter,
    /// The KMS key of the secret cannot be used.
    KmsKeyUnusable,
    /// Storage or kms-service failed.
    Internal,
}

impl TaskFailure {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameter => "INVALID_PARAMETER",
            Self::KmsKeyUnusable => "KMS_KEY_UNUSABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::InvalidParameter, Self::KmsKeyUnusable, Self::Internal].into_iter().find(|f| f.as_str() == s)
    }
}

/// One rotation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// UUIDv7: ordered by time.
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// The secret rotated.
    pub secret_name: String,
    /// Its rotation function, passed through.
    pub rotation_func_urn: String,
    /// Outcome.
    pub status: TaskStatus,
    /// `SINGLE_USER` or `MULTI_USER`.
    pub operate_type: String,
    /// ms.
    pub task_ms: i64,
    /// Attempts made (1).
    pub attempts: i32,
    /// `None` on success.
    pub failure: Option<TaskFailure>,
    /// Empty on success; never a value.
    pub error_msg: String,
}

/// The filters of list-secret-task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Only tasks of this secret.
    pub secret_name: Option<String>,
    /// Only tasks with this outcome.
    pub status: Option<TaskStatus>,
    /// Only this task.
    pub task_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_parse_once_each() {
        let all: Vec<String> = EventType::ALL.iter().map(|t| t.as_str().to_owned()).collect();
        assert_eq!(parse_event_types(&all).unwrap(), EventType::ALL);
        assert!(parse_event_types(&[]).is_err());
        assert!(parse_event_types(&["SECRET_ROTATED".into(), "SECRET_ROTATED".into()]).is_err());
        assert!(parse_event_types(&["SECRET_VERSION_NEAR_EXPIRY".into()]).is_err());
    }

    #[test]
    fn targets() {
        let ok = NotificationTarget {
            target_type: "SMN".into(),
            target_id: "urn:smn:cn-north-4:0123:ops".into(),
            target_name: "ops".into(),
        };
        assert!(ok.validate().is_ok());
        assert!(NotificationTarget { target_type: "HTTP".into(), ..ok.clone() }.validate().is_err());
        assert!(NotificationTarget { target_id: "a b".into(), ..ok.clone() }.validate().is_err());
        assert!(NotificationTarget { target_name: "a.b".into(), ..ok }.validate().is_err());
    }

    #[test]
    fn content_names_the_version_and_never_more() {
        let secret = SecretRecord::new("p", "db".into(), "k".into(), 1_735_689_600_000);
        let notice = Notice::version(EventType::VersionExpired, 2, Some(1_735_776_000_000));
        let content: serde_json::Value =
            serde_json::from_str(&notification_content("ops", &notice, &secret, 1_735_776_000_000)).unwrap();
        assert_eq!(content["eventType"], "SECRET_VERSION_EXPIRED");
        assert_eq!(content["eventTime"], "2025-01-02T00:00:00.000Z");
        assert_eq!(content["data"]["versionId"], "v2");
        assert_eq!(content["data"]["versionExpireTime"], "2025-01-02T00:00:00.000Z");
        assert_eq!(content["data"]["secretName"], "db");
    }
}
