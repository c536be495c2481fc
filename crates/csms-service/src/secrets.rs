//! Secrets: create, show, list, update, delete, and deletion with a recovery
//! window. Each operation validates first, then makes one store call whose
//! transaction re-checks the secret's state under its row lock.

use std::sync::Arc;

use common::identity::CallerIdentity;

use crate::{
    domain::{
        self, Page, PageQuery, Rejection, SYSCURRENT, SecretRecord, ValueKind, VersionRecord,
        events::{EventType, Notice},
    },
    error::CsmsError,
    service::CsmsService,
    store::{CreateSecretError, Effects, SecretCheck, SecretMutation},
};

/// A secret's value as a request brings it, wiped when dropped.
#[derive(Debug)]
pub struct NewValue {
    /// Text or binary.
    pub kind: ValueKind,
    /// The bytes.
    pub bytes: crypto::SecretBytes,
}

/// A create-secret request.
#[derive(Debug, Default)]
pub struct NewSecret {
    /// 1-64 characters of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// Empty: the project's `csms/default` key.
    pub kms_key_id: String,
    /// At most 2048 bytes.
    pub description: String,
    /// Required.
    pub value: Option<NewValue>,
    /// Empty: `COMMON`.
    pub secret_type: String,
    /// Rotate on `rotation_period`.
    pub auto_rotation: bool,
    /// `30d`, `6h`, …
    pub rotation_period: String,
    /// JSON, required for the database secret types.
    pub rotation_config: String,
    /// At most one event name.
    pub event_subscriptions: Vec<String>,
    /// Empty: `0`.
    pub enterprise_project_id: String,
    /// The rotation function, passed through.
    pub rotation_func_urn: String,
}

/// An update-secret request: each field present is set.
#[derive(Debug, Default)]
pub struct SecretChange {
    /// A key that must be usable now.
    pub kms_key_id: Option<String>,
    /// At most 2048 bytes.
    pub description: Option<String>,
    /// Rotate on `rotation_period`.
    pub auto_rotation: Option<bool>,
    /// `30d`, `6h`, …
    pub rotation_period: Option<String>,
    /// At most one event name (present: replaces the list).
    pub event_subscriptions: Option<Vec<String>>,
    /// The rotation function.
    pub rotation_func_urn: Option<String>,
}

/// A rotation period in milliseconds, with hours of `hour_ms` (shortened
/// only in tests, to watch scheduled rotations happen).
pub(crate) fn scaled_period_ms(period: &str, hour_ms: i64) -> i64 {
    let real = domain::period_ms(period);
    if hour_ms == 3_600_000 { real } else { (real as i128 * hour_ms as i128 / 3_600_000) as i64 }
}

impl CsmsService {
    /// A rotation period in milliseconds at this service's hour length.
    pub(crate) fn period_ms(&self, period: &str) -> i64 {
        scaled_period_ms(period, self.jobs.rotation_hour_ms)
    }
}

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

/// A list limit: 1-1000, absent for the default page.
pub(crate) fn page_size(limit: Option<u32>) -> Result<u32, CsmsError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n @ 1..=MAX_PAGE) => Ok(n),
        Some(_) => Err(invalid("limit must be 1-1000").into()),
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> Rejection {
    Rejection::InvalidParameter(msg.into())
}

/// Metadata and values may change only while the secret is enabled.
pub(crate) fn writable() -> SecretCheck {
    Box::new(|s: &SecretRecord| s.check_writable())
}

/// [`writable`] for writes that take a [`SecretMutation`] (and change
/// nothing else).
pub(crate) fn writable_unchanged() -> SecretMutation {
    Box::new(|s: &mut SecretRecord| s.check_writable())
}

fn validate_subscriptions(events: &[String]) -> Result<(), Rejection> {
    if events.len() > 1 || events.iter().any(|e| e.is_empty() || e.len() > 32) {
        return Err(invalid("event_subscriptions takes at most one event name of 1-32 characters"));
    }
    Ok(())
}

impl CsmsService {
    /// Creates a secret with its first version (`v1`, `SYSCURRENT`).
    pub async fn create_secret(&self, caller: &CallerIdentity, req: NewSecret) -> Result<SecretRecord, CsmsError> {
        domain::validate_name(&req.name)?;
        let value = req.value.ok_or_else(|| invalid("exactly one of secret_string and secret_binary is required"))?;
        domain::validate_value(value.kind, value.bytes.expose())?;
        if req.description.len() > domain::MAX_DESCRIPTION_LEN {
            return Err(invalid("description is limited to 2048 bytes").into());
        }
        if !req.kms_key_id.is_empty() {
            domain::validate_kms_key_id(&req.kms_key_id)?;
        }
        let secret_type = if req.secret_type.is_empty() { "COMMON".to_owned() } else { req.secret_type };
        if !matches!(secret_type.as_str(), "COMMON" | "RDS-FG" | "GaussDB-FG") {
            return Err(invalid("secret_type must be COMMON, RDS-FG or GaussDB-FG").into());
        }
        if req.auto_rotation && req.rotation_period.is_empty() {
            return Err(invalid("rotation_period is required when auto_rotation is true").into());
        }
        if !req.rotation_period.is_empty() {
            domain::validate_rotation_period(&req.rotation_period)?;
        }
        if secret_type != "COMMON" && req.rotation_config.is_empty() {
            return Err(invalid("rotation_config is required for RDS-FG and GaussDB-FG secrets").into());
        }
        if req.rotation_config.chars().count() > 1024 {
            return Err(invalid("rotation_config is limited to 1024 characters").into());
        }
        validate_subscriptions(&req.event_subscriptions)?;
        if req.enterprise_project_id.len() > 36 {
            return Err(invalid("enterprise_project_id is limited to 36 characters").into());
        }
        self.refuse_weak(caller, &value).await?;
        // A taken name is refused by the insert's unique constraint (one
        // round trip fewer than asking first; a duplicate costs a data key).
        let kms_key_id =
            if req.kms_key_id.is_empty() { self.kms.default_key_id(caller).await? } else { req.kms_key_id };
        let now = common::now_ms();
        let secret = SecretRecord {
            description: req.description,
            secret_type,
            auto_rotation: req.auto_rotation,
            next_rotation_ms: req.auto_rotation.then(|| now + self.period_ms(&req.rotation_period)),
            rotation_period: req.rotation_period,
            rotation_config: req.rotation_config,
            event_subscriptions: req.event_subscriptions,
            enterprise_project_id: if req.enterprise_project_id.is_empty() {
                "0".to_owned()
            } else {
                req.enterprise_project_id
            },
            rotation_func_urn: req.rotation_func_urn,
            ..SecretRecord::new(&caller.project_id, req.name, kms_key_id.clone(), now)
        };
        let mut first =
            self.seal_version(caller, &secret.id, 1, &kms_key_id, value.kind, value.bytes.expose(), now).await?;
        first.stages = vec![SYSCURRENT.to_owned()];
        let created = Effects::notices([Notice::version(EventType::VersionCreated, 1, None)]);
        self.insert_secret(&secret, &[first], &created).await?;
        self.wake_deliveries();
        tracing::info!(secret_id = %secret.id, project_id = %secret.project_id, "secret created");
        Ok(secret)
    }

    /// Stores a new secret with its versions, inside the project's quota.
    pub(crate) async fn insert_secret(
        &self, secret: &SecretRecord, versions: &[VersionRecord], effects: &Effects,
    ) -> Result<(), CsmsError> {
        self.store.create_secret(secret, versions, self.secret_quota, effects).await.map_err(|e| match e {
            CreateSecretError::NameTaken => CsmsError::DuplicateName,
            CreateSecretError::Rejected(r) => r.into(),
            CreateSecretError::QuotaExceeded => CsmsError::SecretQuotaExceeded(self.secret_quota),
            CreateSecretError::Store(e) => e.into(),
        })
    }

    /// A secret by name: a name that breaks the naming rule cannot exist.
    pub async fn show_secret(&self, caller: &CallerIdentity, name: &str) -> Result<SecretRecord, CsmsError> {
        if domain::validate_name(name).is_err() {
            return Err(Rejection::SecretNotFound.into());
        }
        self.store.get_secret(&caller.project_id, name).await?.ok_or(Rejection::SecretNotFound.into())
    }

    /// A secret by id: a malformed id cannot exist.
    pub(crate) async fn secret_by_id(&self, caller: &CallerIdentity, id: &str) -> Result<SecretRecord, CsmsError> {
        if uuid::Uuid::parse_str(id).is_err() || id.len() != 36 {
            return Err(Rejection::ResourceNotFound("secret").into());
        }
        self.store.get_secret_by_id(&caller.project_id, id).await?.ok_or(Rejection::ResourceNotFound("secret").into())
    }

    /// The project's secrets by name after `marker`, optionally only those
    /// subscribed to `event`.
    pub async fn list_secrets(
        &self, caller: &CallerIdentity, limit: Option<u32>, marker: &str, event: &str,
    ) -> Result<Arc<Page<SecretRecord>>, CsmsError> {
        let limit = page_size(limit)?;
        if !marker.is_empty() {
            domain::validate_name(marker)?;
        }
        let query = PageQuery {
            project_id: caller.project_id.clone(),
            marker: marker.to_owned(),
            limit,
            event: event.to_owned(),
        };
        // Read before the load: a change committed during it leaves the
        // page unkept (common::pages).
        let epoch = self.reads.epoch();
        if self.reads.usable()
            && let Some(page) = self.pages.get(&query, epoch)
        {
            return Ok(page);
        }
        let marker = (!marker.is_empty()).then_some(marker);
        let event = (!event.is_empty()).then_some(event);
        let fetched = self.store.list_secrets(&caller.project_id, marker, limit + 1, event).await?;
        let page = Arc::new(Page::cut(fetched, limit));
        if self.reads.usable() {
            self.pages.insert(query, page.clone(), epoch, || self.reads.epoch());
        }
        Ok(page)
    }

    /// Changes a secret's metadata.
    pub async fn update_secret(
        &self, caller: &CallerIdentity, name: &str, req: SecretChange,
    ) -> Result<SecretRecord, CsmsError> {
        self.show_secret(caller, name).await?;
        if let Some(key) = &req.kms_key_id {
            if key.len() < 2 || key.len() > 64 {
                return Err(invalid("kms_key_id must be 2-64 characters").into());
            }
            // The key must be usable now: ask kms-service for a data key.
            self.kms.create_data_key(caller, key, b"opendew/csms/key-check").await?;
        }
        if req.description.as_ref().is_some_and(|d| d.len() > domain::MAX_DESCRIPTION_LEN) {
            return Err(invalid("description is limited to 2048 bytes").into());
        }
        if let Some(period) = &req.rotation_period {
            domain::validate_rotation_period(period)?;
        }
        if let Some(events) = &req.event_subscriptions {
            validate_subscriptions(events)?;
        }
        let hour_ms = self.jobs.rotation_hour_ms;
        let change = Box::new(move |s: &mut SecretRecord| {
            s.state.check_value_access()?;
            let schedule_changes = req.auto_rotation.is_some_and(|a| a != s.auto_rotation)
                || req.rotation_period.as_ref().is_some_and(|p| *p != s.rotation_period);
            if let Some(key) = req.kms_key_id {
                s.kms_key_id = key;
            }
            if let Some(description) = req.description {
                s.description = description;
            }
            if let Some(period) = req.rotation_period {
                s.rotation_period = period;
            }
            if let Some(auto) = req.auto_rotation {
                s.auto_rotation = auto;
            }
            if s.auto_rotation && s.rotation_period.is_empty() {
                return Err(invalid("rotation_period is required when auto_rotation is true"));
            }
            if let Some(events) = req.event_subscriptions {
                s.event_subscriptions = events;
            }
            if let Some(urn) = req.rotation_func_urn {
                s.rotation_func_urn = urn;
            }
            s.update_ms = common::now_ms();
            // Only a change of the schedule moves the next rotation (an
            // update of, say, the description must not postpone it).
            if schedule_changes {
                let from = s.rotation_ms.unwrap_or(s.update_ms).max(s.update_ms);
                s.next_rotation_ms = s.auto_rotation.then(|| from + scaled_period_ms(&s.rotation_period, hour_ms));
            }
            Ok(())
        });
        Ok(self.store.update_secret(&caller.project_id, name, change).await?)
    }

    /// Deletes a secret with all its versions at once.
    pub async fn delete_secret(&self, caller: &CallerIdentity, name: &str) -> Result<(), CsmsError> {
        self.show_secret(caller, name).await?;
        if !self.store.delete_secret(&caller.project_id, name).await? {
            return Err(Rejection::SecretNotFound.into());
        }
        self.wake_deliveries();
        tracing::info!(project_id = %caller.project_id, "secret deleted");
        Ok(())
    }

    /// Schedules a secret's deletion after a recovery window of 7-30 days
    /// (absent: 30).
    pub async fn schedule_deletion(
        &self, caller: &CallerIdentity, name: &str, days: Option<i64>,
    ) -> Result<SecretRecord, CsmsError> {
        let days = match days.unwrap_or(30) {
            days @ 7..=30 => days as u32,
            _ => return Err(invalid("recovery_window_in_days must be 7-30").into()),
        };
        self.show_secret(caller, name).await?;
        let change = Box::new(move |s: &mut SecretRecord| s.schedule_deletion(common::now_ms(), days));
        Ok(self.store.update_secret(&caller.project_id, name, change).await?)
    }

    /// Cancels a scheduled deletion.
    pub async fn restore_secret(&self, caller: &CallerIdentity, name: &str) -> Result<SecretRecord, CsmsError> {
        self.show_secret(caller, name).await?;
        let change = Box::new(|s: &mut SecretRecord| s.restore(common::now_ms()));
        Ok(self.store.update_secret(&caller.project_id, name, change).await?)
    }
}
