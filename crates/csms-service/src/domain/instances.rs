//! Database instances: the servers whose passwords database secrets'
//! rotations set (issue #33), registered by the operator per project.

use super::Rejection;

/// The protocol an instance speaks. GaussDB-FG (TaurusDB) speaks MySQL's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbEngine {
    /// PostgreSQL (RDS for PostgreSQL).
    Postgresql,
    /// MySQL, MariaDB, TaurusDB.
    Mysql,
}

impl DbEngine {
    /// The stored and command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgresql => "postgresql",
            Self::Mysql => "mysql",
        }
    }

    /// Parses the spelling; other engines are refused by name.
    pub fn parse(s: &str) -> Result<Self, Rejection> {
        match s {
            "postgresql" => Ok(Self::Postgresql),
            "mysql" => Ok(Self::Mysql),
            other => Err(Rejection::InvalidParameter(format!(
                "engine {other:?} is not supported: use postgresql, or mysql (MySQL, MariaDB, GaussDB-FG)"
            ))),
        }
    }

    /// Whether `scheme` is a URL scheme of this engine.
    pub fn accepts_scheme(self, scheme: &str) -> bool {
        match self {
            Self::Postgresql => matches!(scheme, "postgres" | "postgresql"),
            Self::Mysql => scheme == "mysql",
        }
    }
}

/// A registered instance as stored: its administrator URL only sealed
/// (so `Debug` shows ciphertext, never the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    /// Owning project.
    pub project_id: String,
    /// What `rotation_config.InstanceId` names.
    pub id: String,
    /// Its protocol.
    pub engine: DbEngine,
    /// The URL without its credentials, for listing.
    pub display_url: String,
    /// The administrator URL, sealed (see `crate::instances`).
    pub sealed_url: Vec<u8>,
    /// ms.
    pub create_ms: i64,
}

/// An instance id: 1-64 characters of `[A-Za-z0-9_-]`, as Huawei's are.
pub fn validate_instance_id(id: &str) -> Result<(), Rejection> {
    let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(Rejection::InvalidParameter("an instance id is 1-64 of A-Z a-z 0-9 _ -".into())) }
}
