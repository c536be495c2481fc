//! The secret checker (csms-api.md §3.7): a per-project switch, and a
//! strength check of a value (given, or a stored version's, which never
//! leaves the service). Strength is zxcvbn's estimate of how many guesses
//! the value takes (score 0-4): 0-1 WEAK, 2 MEDIUM, 3-4 STRONG. For the
//! JSON credentials of a database secret, the `password` member is scored.

use common::identity::CallerIdentity;
use zeroize::Zeroizing;

use crate::{
    domain::{self, Rejection},
    error::CsmsError,
    secrets::invalid,
    service::CsmsService,
};

/// zxcvbn's cost grows with the length; past this many characters a value
/// is scored on its first ones (already far beyond what guessing reaches).
const SCORED_CHARS: usize = 128;

/// What the check says of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// WEAK, MEDIUM or STRONG.
    pub strength: &'static str,
    /// zxcvbn's score, 0-4.
    pub score: u8,
    /// Characters in the value.
    pub length: usize,
    /// Why it is weak (empty when it is not).
    pub warning: String,
    /// How to do better.
    pub suggestions: Vec<String>,
}

/// What to check (`Debug` never shows a value).
pub enum Subject {
    /// This value.
    Value(Zeroizing<String>),
    /// A stored secret's version (`latest` when empty).
    Stored { name: String, version_id: String },
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value(..)"),
            Self::Stored { name, version_id } => {
                f.debug_struct("Stored").field("name", name).field("version_id", version_id).finish()
            }
        }
    }
}

/// Scores a value (see the module's rules).
pub fn score(value: &str) -> Verdict {
    let password = serde_json::from_str::<serde_json::Value>(value)
        .ok()
        .and_then(|doc| doc.get("password").and_then(|p| p.as_str()).map(|p| Zeroizing::new(p.to_owned())));
    let scored: &str = password.as_deref().map_or(value, |p| p.as_str());
    let length = scored.chars().count();
    let head: Zeroizing<String> = Zeroizing::new(scored.chars().take(SCORED_CHARS).collect());
    let entropy = zxcvbn::zxcvbn(&head, &[]);
    let score = u8::from(entropy.score());
    let (warning, suggestions) = match entropy.feedback() {
        Some(f) => (
            f.warning().map(|w| w.to_string()).unwrap_or_default(),
            f.suggestions().iter().map(|s| s.to_string()).collect(),
        ),
        None => (String::new(), Vec::new()),
    };
    let strength = match score {
        0 | 1 => "WEAK",
        2 => "MEDIUM",
        _ => "STRONG",
    };
    Verdict { strength, score, length, warning, suggestions }
}

/// The agencies create_agency makes for a database secret type: one that
/// lets CSMS invoke the rotation function, one that lets the function
/// reach the database service.
pub fn agency_names(secret_type: &str) -> Result<[&'static str; 2], Rejection> {
    match secret_type {
        "RDS-FG" => Ok(["csms_function_invoke_agency", "csms_rds_rotation_agency"]),
        "GaussDB-FG" => Ok(["csms_function_invoke_agency", "csms_gaussdb_rotation_agency"]),
        _ => Err(invalid("secret_type must be RDS-FG or GaussDB-FG")),
    }
}

impl CsmsService {
    /// create_agency: records the project's agencies for a secret type.
    /// Rotation here calls no external function, so it needs none; they
    /// are kept so that tooling which creates and checks them works.
    pub async fn create_agencies(
        &self, caller: &CallerIdentity, secret_type: &str,
    ) -> Result<Vec<(String, String)>, CsmsError> {
        let names = agency_names(secret_type)?;
        Ok(self.store.put_agencies(&caller.project_id, secret_type, &names, common::now_ms()).await?)
    }

    /// show_agency: whether every agency of the secret type exists.
    pub async fn agencies_granted(&self, caller: &CallerIdentity, secret_type: &str) -> Result<bool, CsmsError> {
        let names = agency_names(secret_type)?;
        let have = self.store.agencies(&caller.project_id, secret_type).await?;
        Ok(names.iter().all(|n| have.iter().any(|(h, _)| h == n)))
    }

    /// show-secrets-config.
    pub async fn checking_strength(&self, caller: &CallerIdentity) -> Result<bool, CsmsError> {
        Ok(self.store.checking_strength(&caller.project_id).await?)
    }

    /// update-secrets-config (what the switch does: weak new values are
    /// refused while it is on).
    pub async fn set_checking_strength(&self, caller: &CallerIdentity, on: bool) -> Result<bool, CsmsError> {
        self.store.set_checking_strength(&caller.project_id, on).await?;
        Ok(on)
    }

    /// What `checking_secret_strength` does: while it is on, a new text
    /// value (create-secret, create-secret-version) that scores WEAK is
    /// refused, naming why; binary values and values written while it is
    /// off are not scored.
    pub(crate) async fn refuse_weak(
        &self, caller: &CallerIdentity, value: &crate::secrets::NewValue,
    ) -> Result<(), CsmsError> {
        if value.kind != domain::ValueKind::Text || !self.store.checking_strength(&caller.project_id).await? {
            return Ok(());
        }
        let text = Zeroizing::new(String::from_utf8_lossy(value.bytes.expose()).into_owned());
        let verdict = tokio::task::spawn_blocking(move || score(&text))
            .await
            .map_err(|e| CsmsError::Internal(format!("the strength check failed: {e}")))?;
        if verdict.strength != "WEAK" {
            return Ok(());
        }
        let why = if verdict.warning.is_empty() { "it is easy to guess".to_owned() } else { verdict.warning };
        Err(invalid(format!(
            "the value is weak ({why}); checking_secret_strength is on for this project, so weak values are refused"
        ))
        .into())
    }

    /// check-secrets: the verdict on a value or a stored version.
    pub async fn check_secret(
        &self, caller: &CallerIdentity, check_type: &str, subject: Subject,
    ) -> Result<Verdict, CsmsError> {
        if check_type.is_empty() || check_type.len() > 64 {
            return Err(invalid("type must be 1-64 characters").into());
        }
        let value = match subject {
            Subject::Value(v) => {
                domain::validate_value(domain::ValueKind::Text, v.as_bytes())?;
                v
            }
            Subject::Stored { name, version_id } => {
                let version_id = if version_id.is_empty() { "latest".to_owned() } else { version_id };
                let opened = self.show_version(caller, &name, &version_id).await?;
                let text = std::str::from_utf8(opened.value.expose())
                    .map_err(|_| Rejection::InvalidParameter("only text values can be checked".into()))?;
                Zeroizing::new(text.to_owned())
            }
        };
        tokio::task::spawn_blocking(move || score(&value))
            .await
            .map_err(|e| CsmsError::Internal(format!("the strength check failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_never_shows_in_debug() {
        let subject = Subject::Value(Zeroizing::new("hunter2-value".into()));
        assert!(!format!("{subject:?}").contains("hunter2"));
    }

    #[test]
    fn weak_and_strong_values() {
        assert_eq!(score("password").strength, "WEAK");
        assert_eq!(score("123456").strength, "WEAK");
        let strong = score("vK7#qL9!zR2@wX5$");
        assert_eq!(strong.strength, "STRONG", "{strong:?}");
        assert!(score("password").suggestions.len() + score("password").warning.len() > 0);
        // Database credentials: the password member is what is scored.
        assert_eq!(score(r#"{"username":"app","password":"password"}"#).strength, "WEAK");
        assert_eq!(score(r#"{"username":"app","password":"vK7#qL9!zR2@wX5$"}"#).length, 16);
        // Long values cost bounded time.
        let long = "a".repeat(32 * 1024);
        assert_eq!(score(&long).length, 32 * 1024);
    }
}
