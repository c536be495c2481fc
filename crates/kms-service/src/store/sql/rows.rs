//! The SQL text both backends share and the rows it reads, named.

use super::super::{AliasRecord, StoreError};
use crate::domain::{
    GrantOperation, GrantRecord, KeyId, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage, PrincipalType,
};

/// SQL text shared by both backends.
pub mod text {
    pub const KEY_COLUMNS: &str = "key_id, project_id, domain_id, key_alias, key_description, key_spec, key_usage, \
        origin, key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, \
        scheduled_deletion_ms, expiration_ms, material_version, rotation_interval_days, rotation_anchor_ms, \
        last_rotation_ms, rotations, import_digest";

    pub const INSERT_KEY: &str = "INSERT INTO keys (key_id, project_id, domain_id, key_alias, key_description, \
        key_spec, key_usage, origin, key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, \
        scheduled_deletion_ms, expiration_ms, material_version, rotation_interval_days, rotation_anchor_ms, \
        last_rotation_ms, rotations, import_digest) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";

    pub const INSERT_MATERIAL: &str =
        "INSERT INTO key_materials (key_id, version, wrapped, created_ms) VALUES ($1, $2, $3, $4)";

    pub const COUNT_USER_KEYS: &str =
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM key_counts WHERE project_id = $1 AND NOT default_key";

    /// Adds `$6` to shard `$5` of the count of (project, spec, state, default).
    pub const ADD_COUNT: &str = "INSERT INTO key_counts (project_id, key_spec, key_state, default_key, shard, n) \
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, key_spec, key_state, default_key, shard) \
        DO UPDATE SET n = key_counts.n + excluded.n";

    pub const CLAIM_FINGERPRINT: &str =
        "INSERT INTO kms_meta (name, value) VALUES ('root_key_fingerprint', $1) ON CONFLICT DO NOTHING";

    pub const READ_FINGERPRINT: &str = "SELECT value FROM kms_meta WHERE name = 'root_key_fingerprint'";

    pub const SELECT_MATERIALS: &str = "SELECT version, wrapped FROM key_materials WHERE key_id = $1 ORDER BY version";

    pub const MATERIAL_VERSIONS: &str =
        "SELECT version, created_ms FROM key_materials WHERE key_id = $1 ORDER BY version";

    /// Every mutable column: a transition may change any of them.
    pub const UPDATE_KEY: &str = "UPDATE keys SET key_alias = $3, key_description = $4, key_state = $5, \
        scheduled_deletion_ms = $6, rotation_enabled = $7, rotation_interval_days = $8, rotation_anchor_ms = $9, \
        last_rotation_ms = $10, rotations = $11, material_version = $12, expiration_ms = $13, import_digest = $14 \
        WHERE project_id = $1 AND key_id = $2";

    /// External keys whose material expired at `$1`.
    pub const EXPIRED_IMPORTS: &str = "SELECT project_id, key_id FROM keys WHERE expiration_ms IS NOT NULL \
        AND expiration_ms <= $1 AND key_state IN (2, 3) ORDER BY expiration_ms LIMIT $2";

    /// Enabled keys whose rotation period ended: `$1` now, `$2` the length
    /// of a day in ms, `$3` how many.
    pub const DUE_ROTATIONS: &str = "SELECT project_id, key_id FROM keys WHERE rotation_enabled AND key_state = 2 \
        AND rotation_anchor_ms + rotation_interval_days * $2 <= $1 ORDER BY rotation_anchor_ms LIMIT $3";

    /// Keys due for deletion; `$1` is now in ms. (State 4 = pending deletion.)
    pub const DUE_KEYS: &str = "SELECT key_id FROM keys WHERE key_state = 4 AND scheduled_deletion_ms <= $1";

    pub const DELETE_MATERIALS: &str = "DELETE FROM key_materials WHERE key_id = $1";

    pub const DELETE_DUE_KEY: &str = "DELETE FROM keys WHERE key_id = $1 AND key_state = 4 \
        AND scheduled_deletion_ms <= $2 RETURNING project_id, key_spec, default_key";

    /// `WHERE` clause of list queries: `$2` state filter, `$3` spec filter,
    /// each NULL for "any".
    pub const LIST_WHERE: &str = "WHERE project_id = $1 AND ($2 IS NULL OR key_state = $2) \
        AND ($3 IS NULL OR key_spec = $3)";

    pub const INSERT_ALIAS: &str =
        "INSERT INTO key_aliases (project_id, alias, key_id, create_ms, update_ms) VALUES ($1, $2, $3, $4, $4)";

    pub const MOVE_ALIAS: &str = "UPDATE key_aliases SET key_id = $3, update_ms = $4 \
        WHERE project_id = $1 AND alias = $2 RETURNING alias, key_id, create_ms, update_ms";

    pub const COUNT_ALIASES: &str = "SELECT COUNT(*) FROM key_aliases WHERE key_id = $1";

    pub const DELETE_ALIAS: &str = "DELETE FROM key_aliases WHERE project_id = $1 AND alias = $2 AND key_id = $3";

    pub const FIND_ALIAS: &str =
        "SELECT alias, key_id, create_ms, update_ms FROM key_aliases WHERE project_id = $1 AND alias = $2";

    /// `$2` a key id or NULL, `$3` the last alias of the previous page.
    pub const LIST_ALIASES: &str = "SELECT alias, key_id, create_ms, update_ms FROM key_aliases \
        WHERE project_id = $1 AND ($2 IS NULL OR key_id = $2) AND alias > $3 ORDER BY alias LIMIT $4";

    pub const GRANT_COLUMNS: &str = "grant_id, key_id, project_id, grantee, grantee_type, operations, \
        issuing_principal, retiring_principal, name, creation_ms";

    pub const INSERT_GRANT: &str = "INSERT INTO key_grants (grant_id, key_id, project_id, grantee, grantee_type, \
        operations, issuing_principal, retiring_principal, name, creation_ms) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

    pub const COUNT_GRANTS: &str = "SELECT COUNT(*) FROM key_grants WHERE key_id = $1";

    pub const COUNT_PROJECT_GRANTS: &str = "SELECT COUNT(*) FROM key_grants WHERE project_id = $1";

    pub const DELETE_GRANT: &str = "DELETE FROM key_grants WHERE grant_id = $1";

    /// Key tags in the shared tag-table shape.
    pub const TAGS: common::tags::sql::TagTable =
        common::tags::sql::TagTable { table: "key_tags", owner: "key_id", owners: "keys", owner_id: "key_id" };

    pub fn select_one(by: &str) -> String {
        format!("SELECT {KEY_COLUMNS} FROM keys WHERE project_id = $1 AND {by} = $2")
    }

    pub fn list_page() -> String {
        format!("SELECT {KEY_COLUMNS} FROM keys {LIST_WHERE} ORDER BY creation_ms, key_id LIMIT $4 OFFSET $5")
    }

    pub fn list_count() -> String {
        format!("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM key_counts {LIST_WHERE}")
    }
}

/// A `keys` row as both backends return it.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    key_id: String,
    project_id: String,
    domain_id: String,
    key_alias: String,
    key_description: String,
    key_spec: String,
    key_usage: String,
    origin: String,
    key_state: i32,
    default_key: bool,
    enterprise_project_id: String,
    rotation_enabled: bool,
    creation_ms: i64,
    scheduled_deletion_ms: Option<i64>,
    expiration_ms: Option<i64>,
    material_version: Option<i32>,
    rotation_interval_days: i32,
    rotation_anchor_ms: Option<i64>,
    last_rotation_ms: Option<i64>,
    rotations: i32,
    import_digest: Option<Vec<u8>>,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(row.key_id.clone());
        Ok(KeyRecord {
            key_id: KeyId(uuid::Uuid::parse_str(&row.key_id).map_err(|_| corrupt())?),
            spec: KeySpec::parse(&row.key_spec).ok_or_else(corrupt)?,
            usage: KeyUsage::parse(&row.key_usage).ok_or_else(corrupt)?,
            origin: KeyOrigin::parse(&row.origin).ok_or_else(corrupt)?,
            state: KeyState::from_i32(row.key_state).ok_or_else(corrupt)?,
            project_id: row.project_id,
            domain_id: row.domain_id,
            alias: row.key_alias,
            description: row.key_description,
            default_key: row.default_key,
            enterprise_project_id: row.enterprise_project_id,
            rotation_enabled: row.rotation_enabled,
            creation_ms: row.creation_ms,
            scheduled_deletion_ms: row.scheduled_deletion_ms,
            expiration_ms: row.expiration_ms,
            material_version: row.material_version,
            rotation_interval_days: u32::try_from(row.rotation_interval_days).map_err(|_| corrupt())?,
            rotation_anchor_ms: row.rotation_anchor_ms,
            last_rotation_ms: row.last_rotation_ms,
            rotations: u32::try_from(row.rotations).map_err(|_| corrupt())?,
            import_digest: row.import_digest,
        })
    }
}

/// A `key_grants` row.
#[derive(Debug, sqlx::FromRow)]
pub struct GrantRow {
    grant_id: String,
    key_id: String,
    project_id: String,
    grantee: String,
    grantee_type: String,
    operations: String,
    issuing_principal: String,
    retiring_principal: Option<String>,
    name: String,
    creation_ms: i64,
}

impl TryFrom<GrantRow> for GrantRecord {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("grant {}", row.grant_id));
        let operations = row
            .operations
            .split(',')
            .map(|op| GrantOperation::parse(op).ok_or_else(corrupt))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GrantRecord {
            key_id: KeyId(uuid::Uuid::parse_str(&row.key_id).map_err(|_| corrupt())?),
            grantee_type: PrincipalType::parse(&row.grantee_type).ok_or_else(corrupt)?,
            operations,
            grant_id: row.grant_id,
            project_id: row.project_id,
            grantee: row.grantee,
            issuing_principal: row.issuing_principal,
            retiring_principal: row.retiring_principal,
            name: row.name,
            creation_ms: row.creation_ms,
        })
    }
}

/// A (project, key id) row: the background tasks' work lists.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRefRow {
    project_id: String,
    key_id: String,
}

/// The background tasks' work list from its rows.
pub(super) fn key_refs(rows: Vec<KeyRefRow>) -> Result<Vec<(String, KeyId)>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let key_id = uuid::Uuid::parse_str(&row.key_id).map_err(|_| StoreError::Corrupt(row.key_id.clone()))?;
            Ok((row.project_id, KeyId(key_id)))
        })
        .collect()
}

/// A `key_aliases` row.
#[derive(Debug, sqlx::FromRow)]
pub struct AliasRow {
    alias: String,
    key_id: String,
    create_ms: i64,
    update_ms: i64,
}

impl TryFrom<AliasRow> for AliasRecord {
    type Error = StoreError;

    fn try_from(row: AliasRow) -> Result<Self, StoreError> {
        let key_id = KeyId(uuid::Uuid::parse_str(&row.key_id).map_err(|_| StoreError::Corrupt(row.alias.clone()))?);
        Ok(AliasRecord { alias: row.alias, key_id, create_ms: row.create_ms, update_ms: row.update_ms })
    }
}

/// A `key_materials` row: one wrapped material version.
#[derive(Debug, sqlx::FromRow)]
pub struct MaterialRow {
    pub(super) version: i32,
    pub(super) wrapped: Vec<u8>,
}

/// A material version and when it was made.
#[derive(Debug, sqlx::FromRow)]
pub struct MaterialVersionRow {
    pub(super) version: i32,
    pub(super) created_ms: i64,
}

/// What a purge deleted: the key's project, spec and whether it was a
/// default key (its count shard to decrement).
#[derive(Debug, sqlx::FromRow)]
pub struct PurgedKeyRow {
    pub(super) project_id: String,
    pub(super) key_spec: String,
    pub(super) default_key: bool,
}
