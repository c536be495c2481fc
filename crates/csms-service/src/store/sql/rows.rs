//! The SQL text both backends share, and the rows they return.

use super::super::StoreError;
use crate::domain::{
    SecretRecord, SecretState, ValueKind, VersionRecord,
    events::{
        EventRecord, EventState, EventType, NotificationRecord, NotificationTarget, TaskFailure, TaskRecord, TaskStatus,
    },
    instances::{DbEngine, InstanceRecord},
};

/// SQL shared by both backends.
pub mod text {
    pub const SECRET_COLUMNS: &str = "id, project_id, name, state, kms_key_id, description, secret_type, \
        auto_rotation, rotation_period, rotation_config, event_subscriptions, enterprise_project_id, \
        rotation_func_urn, create_ms, update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms, \
        state_before_delete";

    pub const INSERT_SECRET: &str = "INSERT INTO secrets (id, project_id, name, state, kms_key_id, description, \
        secret_type, auto_rotation, rotation_period, rotation_config, event_subscriptions, enterprise_project_id, \
        rotation_func_urn, create_ms, update_ms, scheduled_delete_ms, rotation_ms, next_rotation_ms, \
        state_before_delete, next_version) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

    pub const UPDATE_SECRET: &str = "UPDATE secrets SET state = $3, kms_key_id = $4, description = $5, \
        auto_rotation = $6, rotation_period = $7, event_subscriptions = $8, rotation_func_urn = $9, update_ms = $10, \
        scheduled_delete_ms = $11, next_rotation_ms = $12, state_before_delete = $13, rotation_ms = $14 \
        WHERE project_id = $1 AND id = $2";

    /// One record per firing, when the secret's event (`$3`) is enabled
    /// and has the type (`$5`, as `%"TYPE"%`).
    pub const FIRE: &str = "INSERT INTO csms_notifications (id, project_id, event_name, event_type, secret_name, \
        secret_type, target_id, target_name, content, status, create_ms, attempts, next_attempt_ms) \
        SELECT $1, e.project_id, e.name, $4, $6, $7, e.target_id, e.target_name, $8, 'PENDING', $9, 0, $9 \
        FROM csms_events e WHERE e.project_id = $2 AND e.name = $3 AND e.state = 'ENABLED' \
        AND e.event_types LIKE $5";

    pub const INSERT_TASK: &str = "INSERT INTO csms_tasks (id, project_id, secret_name, rotation_func_urn, status, \
        operate_type, task_ms, attempts, error_reason, error_msg) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

    pub const UPSERT_STAGE: &str = "INSERT INTO secret_stages (secret_id, stage_name, version, update_ms) \
        VALUES ($1, $2, $3, $4) ON CONFLICT (secret_id, stage_name) \
        DO UPDATE SET version = excluded.version, update_ms = excluded.update_ms";

    pub const STAGES_OF_SECRET: &str =
        "SELECT stage_name, version, update_ms FROM secret_stages WHERE secret_id = $1 ORDER BY stage_name";

    pub const OLDEST_DEPRECATED: &str = "SELECT v.version FROM secret_versions v WHERE v.secret_id = $1 \
        AND v.version <> $2 AND NOT EXISTS (SELECT 1 FROM secret_stages s WHERE s.secret_id = v.secret_id \
        AND s.version = v.version) ORDER BY v.version LIMIT 1";

    pub const INSERT_VERSION: &str = "INSERT INTO secret_versions (secret_id, version, kms_key_id, value_kind, \
        wrapped_dek, ciphertext, create_ms, expire_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

    pub const COUNT_SECRETS: &str =
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM secret_counts WHERE project_id = $1";

    pub const ADD_SECRET_COUNT: &str = "INSERT INTO secret_counts (project_id, shard, n) VALUES ($1, $2, $3) \
        ON CONFLICT (project_id, shard) DO UPDATE SET n = secret_counts.n + excluded.n";

    pub const VERSION_COLUMNS: &str =
        "v.secret_id, v.version, v.kms_key_id, v.value_kind, v.wrapped_dek, v.ciphertext, v.create_ms, v.expire_ms";

    pub const STAGES_OF_VERSION: &str =
        "SELECT stage_name FROM secret_stages WHERE secret_id = $1 AND version = $2 ORDER BY stage_name";

    /// The read path: `$3` stage or NULL, `$4` version number or NULL.
    /// `agg` is the dialect's string aggregate (`string_agg`, `group_concat`);
    /// stage names cannot contain a comma.
    pub fn read_secret_version(agg: &str) -> String {
        let columns = SECRET_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
        format!(
            "SELECT {columns}, v.version, v.kms_key_id AS v_kms_key_id, v.value_kind, v.wrapped_dek, v.ciphertext, \
             v.create_ms AS v_create_ms, v.expire_ms, \
             (SELECT {agg}(x.stage_name, ',') FROM secret_stages x WHERE x.secret_id = v.secret_id \
              AND x.version = v.version) AS stages \
             FROM secrets s \
             LEFT JOIN secret_stages st ON st.secret_id = s.id AND st.stage_name = $3 \
             LEFT JOIN secret_versions v ON v.secret_id = s.id AND v.version = COALESCE(st.version, $4) \
             WHERE s.project_id = $1 AND s.name = $2"
        )
    }

    /// An event's key and mutable columns are `$1` to `$8` in both (see
    /// `bind_event`).
    pub const UPDATE_EVENT: &str = "UPDATE csms_events SET event_types = $3, state = $4, target_type = $5, \
        target_id = $6, target_name = $7, update_ms = $8 WHERE project_id = $1 AND name = $2";

    pub const INSERT_EVENT: &str = "INSERT INTO csms_events (project_id, name, event_types, state, target_type, \
        target_id, target_name, update_ms, id, create_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

    pub fn select_version() -> String {
        format!("SELECT {VERSION_COLUMNS} FROM secret_versions v WHERE v.secret_id = $1 AND v.version = $2")
    }

    pub fn select_version_by_stage() -> String {
        format!(
            "SELECT {VERSION_COLUMNS} FROM secret_versions v JOIN secret_stages s \
             ON s.secret_id = v.secret_id AND s.version = v.version WHERE s.secret_id = $1 AND s.stage_name = $2"
        )
    }
}

/// A secret joined with one of its versions (read path).
/// Ciphertexts only: `Debug` shows nothing secret.
#[derive(Debug, sqlx::FromRow)]
pub struct ReadRow {
    #[sqlx(flatten)]
    pub(super) secret: SecretRow,
    pub(super) version: Option<i32>,
    pub(super) v_kms_key_id: Option<String>,
    pub(super) value_kind: Option<String>,
    pub(super) wrapped_dek: Option<Vec<u8>>,
    pub(super) ciphertext: Option<Vec<u8>>,
    pub(super) v_create_ms: Option<i64>,
    pub(super) expire_ms: Option<i64>,
    pub(super) stages: Option<String>,
}

impl ReadRow {
    pub fn into_records(self) -> Result<(SecretRecord, Option<VersionRecord>), StoreError> {
        let secret = SecretRecord::try_from(self.secret)?;
        let version = match (
            self.version,
            self.v_kms_key_id,
            self.value_kind,
            self.wrapped_dek,
            self.ciphertext,
            self.v_create_ms,
        ) {
            (Some(number), Some(kms_key_id), Some(kind), Some(wrapped_dek), Some(ciphertext), Some(create_ms)) => {
                let mut stages: Vec<String> =
                    self.stages.unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
                stages.sort();
                Some(VersionRecord {
                    secret_id: secret.id.clone(),
                    number,
                    kms_key_id,
                    kind: ValueKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(secret.id.clone()))?,
                    wrapped_dek,
                    ciphertext,
                    create_ms,
                    expire_ms: self.expire_ms,
                    stages,
                })
            }
            _ => None,
        };
        Ok((secret, version))
    }
}

/// A `secrets` row as both backends return it.
#[derive(Debug, sqlx::FromRow)]
pub struct SecretRow {
    pub(super) id: String,
    pub(super) project_id: String,
    pub(super) name: String,
    pub(super) state: String,
    pub(super) kms_key_id: String,
    pub(super) description: String,
    pub(super) secret_type: String,
    pub(super) auto_rotation: bool,
    pub(super) rotation_period: String,
    pub(super) rotation_config: String,
    pub(super) event_subscriptions: String,
    pub(super) enterprise_project_id: String,
    pub(super) rotation_func_urn: String,
    pub(super) create_ms: i64,
    pub(super) update_ms: i64,
    pub(super) scheduled_delete_ms: Option<i64>,
    pub(super) rotation_ms: Option<i64>,
    pub(super) next_rotation_ms: Option<i64>,
    pub(super) state_before_delete: Option<String>,
}

impl TryFrom<SecretRow> for SecretRecord {
    type Error = StoreError;

    fn try_from(row: SecretRow) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(row.id.clone());
        Ok(SecretRecord {
            state: SecretState::parse(&row.state).ok_or_else(corrupt)?,
            event_subscriptions: serde_json::from_str(&row.event_subscriptions).map_err(|_| corrupt())?,
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            kms_key_id: row.kms_key_id,
            description: row.description,
            secret_type: row.secret_type,
            auto_rotation: row.auto_rotation,
            rotation_period: row.rotation_period,
            rotation_config: row.rotation_config,
            enterprise_project_id: row.enterprise_project_id,
            rotation_func_urn: row.rotation_func_urn,
            create_ms: row.create_ms,
            update_ms: row.update_ms,
            scheduled_delete_ms: row.scheduled_delete_ms,
            rotation_ms: row.rotation_ms,
            next_rotation_ms: row.next_rotation_ms,
            state_before_delete: row.state_before_delete.as_deref().and_then(SecretState::parse),
        })
    }
}

/// A `secret_versions` row as both backends return it.
/// Ciphertexts only: `Debug` shows nothing secret.
#[derive(Debug, sqlx::FromRow)]
pub struct VersionRow {
    pub(super) secret_id: String,
    pub(super) version: i32,
    pub(super) kms_key_id: String,
    pub(super) value_kind: String,
    pub(super) wrapped_dek: Vec<u8>,
    pub(super) ciphertext: Vec<u8>,
    pub(super) create_ms: i64,
    pub(super) expire_ms: Option<i64>,
}

impl VersionRow {
    pub fn into_record(self, stages: Vec<String>) -> Result<VersionRecord, StoreError> {
        Ok(VersionRecord {
            kind: ValueKind::parse(&self.value_kind).ok_or_else(|| StoreError::Corrupt(self.secret_id.clone()))?,
            secret_id: self.secret_id,
            number: self.version,
            kms_key_id: self.kms_key_id,
            wrapped_dek: self.wrapped_dek,
            ciphertext: self.ciphertext,
            create_ms: self.create_ms,
            expire_ms: self.expire_ms,
            stages,
        })
    }
}

/// A `csms_events` row.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    pub(super) project_id: String,
    pub(super) name: String,
    pub(super) id: String,
    pub(super) event_types: String,
    pub(super) state: String,
    pub(super) target_type: String,
    pub(super) target_id: String,
    pub(super) target_name: String,
    pub(super) create_ms: i64,
    pub(super) update_ms: i64,
}

/// The columns of [`EventRow`].
pub const EVENT_COLUMNS: &str =
    "project_id, name, id, event_types, state, target_type, target_id, target_name, create_ms, update_ms";

impl TryFrom<EventRow> for EventRecord {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("event {}", row.id));
        let names: Vec<String> = serde_json::from_str(&row.event_types).map_err(|_| corrupt())?;
        Ok(EventRecord {
            event_types: names.iter().map(|n| EventType::parse(n).ok_or_else(corrupt)).collect::<Result<_, _>>()?,
            state: EventState::parse(&row.state).map_err(|_| corrupt())?,
            project_id: row.project_id,
            name: row.name,
            id: row.id,
            target: NotificationTarget {
                target_type: row.target_type,
                target_id: row.target_id,
                target_name: row.target_name,
            },
            create_ms: row.create_ms,
            update_ms: row.update_ms,
        })
    }
}

/// The stored spelling of an event's types: a JSON array of names, which
/// `LIKE '%"NAME"%'` matches exactly (the quotes delimit each name).
pub fn event_types_text(types: &[EventType]) -> String {
    serde_json::to_string(&types.iter().map(|t| t.as_str()).collect::<Vec<_>>()).expect("strings serialise")
}

/// A `csms_notifications` row.
#[derive(Debug, sqlx::FromRow)]
pub struct NotificationRow {
    pub(super) id: String,
    pub(super) project_id: String,
    pub(super) event_name: String,
    pub(super) event_type: String,
    pub(super) secret_name: String,
    pub(super) secret_type: String,
    pub(super) target_id: String,
    pub(super) target_name: String,
    pub(super) content: String,
    pub(super) status: String,
    pub(super) create_ms: i64,
    pub(super) attempts: i32,
}

/// The columns of [`NotificationRow`].
pub const NOTIFICATION_COLUMNS: &str = "id, project_id, event_name, event_type, secret_name, secret_type, \
    target_id, target_name, content, status, create_ms, attempts";

impl From<NotificationRow> for NotificationRecord {
    fn from(r: NotificationRow) -> Self {
        NotificationRecord {
            id: r.id,
            project_id: r.project_id,
            event_name: r.event_name,
            event_type: r.event_type,
            secret_name: r.secret_name,
            secret_type: r.secret_type,
            target_id: r.target_id,
            target_name: r.target_name,
            content: r.content,
            status: r.status,
            create_ms: r.create_ms,
            attempts: r.attempts,
        }
    }
}

/// A `csms_tasks` row.
#[derive(Debug, sqlx::FromRow)]
pub struct TaskRow {
    pub(super) id: String,
    pub(super) project_id: String,
    pub(super) secret_name: String,
    pub(super) rotation_func_urn: String,
    pub(super) status: String,
    pub(super) operate_type: String,
    pub(super) task_ms: i64,
    pub(super) attempts: i32,
    pub(super) error_reason: String,
    pub(super) error_msg: String,
}

/// The columns of [`TaskRow`].
pub const TASK_COLUMNS: &str =
    "id, project_id, secret_name, rotation_func_urn, status, operate_type, task_ms, attempts, error_reason, error_msg";

impl TryFrom<TaskRow> for TaskRecord {
    type Error = StoreError;

    fn try_from(r: TaskRow) -> Result<Self, StoreError> {
        Ok(TaskRecord {
            status: TaskStatus::parse(&r.status).ok_or_else(|| StoreError::Corrupt(format!("task {}", r.id)))?,
            failure: match r.error_reason.as_str() {
                "" => None,
                reason => {
                    Some(TaskFailure::parse(reason).ok_or_else(|| StoreError::Corrupt(format!("task {}", r.id)))?)
                }
            },
            id: r.id,
            project_id: r.project_id,
            secret_name: r.secret_name,
            rotation_func_urn: r.rotation_func_urn,
            operate_type: r.operate_type,
            task_ms: r.task_ms,
            attempts: r.attempts,
            error_msg: r.error_msg,
        })
    }
}

/// A `csms_grants` row.
#[derive(Debug, sqlx::FromRow)]
pub struct GrantRow {
    pub(super) id: String,
    pub(super) project_id: String,
    pub(super) secret_id: String,
    pub(super) grantee_id: String,
    pub(super) create_ms: i64,
    pub(super) update_ms: i64,
    pub(super) validity_ms: Option<i64>,
}

/// The columns of [`GrantRow`].
pub const GRANT_COLUMNS: &str = "id, project_id, secret_id, grantee_id, create_ms, update_ms, validity_ms";

impl From<GrantRow> for crate::domain::grants::GrantRecord {
    fn from(r: GrantRow) -> Self {
        Self {
            id: r.id,
            project_id: r.project_id,
            secret_id: r.secret_id,
            grantee_id: r.grantee_id,
            create_ms: r.create_ms,
            update_ms: r.update_ms,
            validity_ms: r.validity_ms,
        }
    }
}

/// A `csms_db_instances` row.
#[derive(Debug, sqlx::FromRow)]
pub struct InstanceRow {
    pub(super) project_id: String,
    pub(super) id: String,
    pub(super) engine: String,
    pub(super) display_url: String,
    pub(super) sealed_url: Vec<u8>,
    pub(super) create_ms: i64,
}

/// The columns of [`InstanceRow`].
pub const INSTANCE_COLUMNS: &str = "project_id, id, engine, display_url, sealed_url, create_ms";

impl TryFrom<InstanceRow> for InstanceRecord {
    type Error = StoreError;

    fn try_from(r: InstanceRow) -> Result<Self, StoreError> {
        let engine = DbEngine::parse(&r.engine).map_err(|_| StoreError::Corrupt(format!("instance {}", r.id)))?;
        Ok(InstanceRecord {
            project_id: r.project_id,
            id: r.id,
            engine,
            display_url: r.display_url,
            sealed_url: r.sealed_url,
            create_ms: r.create_ms,
        })
    }
}
