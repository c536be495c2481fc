//! Grants of a secret to a user (csms-api.md §3.4) and their rules.

use super::{Rejection, invalid};

/// One secret shared with one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// UUID v4 (the response's `uuid`).
    pub id: String,
    /// The secret's project.
    pub project_id: String,
    /// The secret.
    pub secret_id: String,
    /// The user it is shared with (an identity-store user id).
    pub grantee_id: String,
    /// ms.
    pub create_ms: i64,
    /// ms.
    pub update_ms: i64,
    /// When it ends (ms); `None`: until deleted.
    pub validity_ms: Option<i64>,
}

impl GrantRecord {
    /// Whether it lets its grantee read at `now_ms`.
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.validity_ms.is_none_or(|end| now_ms < end)
    }
}

/// A grant's `validity_time`, `YYYY-MM-DD` as the SDK sends a date: the
/// grant holds through that day (UTC) and ends at the next midnight, which
/// must be in the future.
pub fn parse_validity(date: &str, now_ms: i64) -> Result<i64, Rejection> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| invalid("validity_time must be a date, YYYY-MM-DD"))?;
    let end = day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| invalid("validity_time is out of range"))?;
    if end <= now_ms {
        return Err(invalid("validity_time must not be in the past"));
    }
    Ok(end)
}

/// A grantee id: an identity-store user id (32 lower-case hex characters).
pub fn validate_grantee(id: &str) -> Result<(), Rejection> {
    let ok = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok { Ok(()) } else { Err(invalid("grantee_target_id must be a user id (32 lower-case hex characters)")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_dates_end_at_the_next_midnight() {
        let now = 1_735_689_600_000; // 2025-01-01T00:00:00Z
        assert_eq!(parse_validity("2025-01-01", now).unwrap(), now + 86_400_000);
        assert!(parse_validity("2024-12-31", now).is_err());
        assert!(parse_validity("2025-13-01", now).is_err());
        assert!(parse_validity("1735689600000", now).is_err());
        let g = GrantRecord {
            id: "g".into(),
            project_id: "p".into(),
            secret_id: "s".into(),
            grantee_id: "u".into(),
            create_ms: 0,
            update_ms: 0,
            validity_ms: Some(10),
        };
        assert!(g.active_at(9) && !g.active_at(10));
    }
}
