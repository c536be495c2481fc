//! Events (notification rules) and their notification records
//! (csms-api.md §3.1), and the expiry watcher that fires
//! `SECRET_VERSION_EXPIRED`. The other event types fire inside the writes
//! that cause them (the store records them in the same transaction).

use common::identity::CallerIdentity;

use crate::{
    domain::{
        Page, Rejection,
        events::{
            EventRecord, EventState, NotificationRecord, NotificationTarget, parse_event_types, validate_event_marker,
            validate_event_name,
        },
    },
    error::CsmsError,
    secrets::{invalid, page_size},
    service::CsmsService,
    store::EventInsert,
};

/// Records are listed for this long after they were written (three months).
pub const RECORD_RETENTION_MS: i64 = 90 * 86_400_000;

/// A create-secret-event request.
#[derive(Debug, Default)]
pub struct NewEvent {
    /// Unique in the project.
    pub name: String,
    /// Base event types.
    pub event_types: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    /// Required.
    pub target: Option<NotificationTarget>,
}

/// An update-secret-event request: each field present is set.
#[derive(Debug, Default)]
pub struct EventChange {
    /// `ENABLED` or `DISABLED`.
    pub state: Option<String>,
    /// Replaces the types.
    pub event_types: Option<Vec<String>>,
    /// Replaces the target.
    pub target: Option<NotificationTarget>,
}

fn event_not_found() -> CsmsError {
    Rejection::ResourceNotFound("event").into()
}

impl CsmsService {
    /// Creates an event.
    pub async fn create_event(&self, caller: &CallerIdentity, req: NewEvent) -> Result<EventRecord, CsmsError> {
        validate_event_name(&req.name)?;
        let event_types = parse_event_types(&req.event_types)?;
        let state = EventState::parse(&req.state)?;
        let target = req.target.ok_or_else(|| invalid("notification is required"))?;
        target.validate()?;
        let now = common::now_ms();
        let event = EventRecord {
            project_id: caller.project_id.clone(),
            name: req.name,
            id: uuid::Uuid::new_v4().to_string(),
            event_types,
            state,
            target,
            create_ms: now,
            update_ms: now,
        };
        match self.store.create_event(&event, self.event_quota).await? {
            EventInsert::Created => {}
            EventInsert::NameTaken => return Err(invalid("an event with this name already exists").into()),
            EventInsert::QuotaReached => return Err(CsmsError::EventQuotaExceeded(self.event_quota)),
        }
        tracing::info!(event_id = %event.id, project_id = %event.project_id, "event created");
        Ok(event)
    }

    /// One event by name.
    pub async fn show_event(&self, caller: &CallerIdentity, name: &str) -> Result<EventRecord, CsmsError> {
        validate_event_name(name).map_err(|_| event_not_found())?;
        self.store.get_event(&caller.project_id, name).await?.ok_or_else(event_not_found)
    }

    /// The project's events by name after `marker`.
    pub async fn list_events(
        &self, caller: &CallerIdentity, limit: Option<u32>, marker: &str,
    ) -> Result<Page<EventRecord>, CsmsError> {
        let limit = page_size(limit)?;
        if !marker.is_empty() {
            validate_event_marker(marker)?;
        }
        let marker = (!marker.is_empty()).then_some(marker);
        Ok(Page::cut(self.store.list_events(&caller.project_id, marker, limit + 1).await?, limit))
    }

    /// Changes an event's state, types or target (never its name).
    pub async fn update_event(
        &self, caller: &CallerIdentity, name: &str, req: EventChange,
    ) -> Result<EventRecord, CsmsError> {
        validate_event_name(name).map_err(|_| event_not_found())?;
        let state = req.state.as_deref().map(EventState::parse).transpose()?;
        let types = req.event_types.as_deref().map(parse_event_types).transpose()?;
        if let Some(target) = &req.target {
            target.validate()?;
        }
        let change = Box::new(move |e: &mut EventRecord| {
            if let Some(state) = state {
                e.state = state;
            }
            if let Some(types) = types {
                e.event_types = types;
            }
            if let Some(target) = req.target {
                e.target = target;
            }
            e.update_ms = common::now_ms();
            Ok(())
        });
        Ok(self.store.update_event(&caller.project_id, name, change).await?)
    }

    /// Deletes an event; refused while a secret subscribes to it.
    pub async fn delete_event(&self, caller: &CallerIdentity, name: &str) -> Result<(), CsmsError> {
        validate_event_name(name).map_err(|_| event_not_found())?;
        self.store.delete_event(&caller.project_id, name).await?;
        tracing::info!(project_id = %caller.project_id, "event deleted");
        Ok(())
    }

    /// The project's notification records of the last three months, newest
    /// first, after the record `marker`.
    pub async fn list_notifications(
        &self, caller: &CallerIdentity, limit: Option<u32>, marker: &str,
    ) -> Result<Page<NotificationRecord>, CsmsError> {
        let limit = page_size(limit)?;
        if !marker.is_empty() && uuid::Uuid::parse_str(marker).is_err() {
            return Err(invalid("marker must be a record id").into());
        }
        let marker = (!marker.is_empty()).then_some(marker);
        let since = common::now_ms() - RECORD_RETENTION_MS;
        Ok(Page::cut(self.store.list_notifications(&caller.project_id, since, marker, limit + 1).await?, limit))
    }

    /// Fires the expiries due now (by the database's clock).
    pub async fn fire_expiries(&self) -> Result<u64, CsmsError> {
        let now = self.store.clock_ms().await?;
        let mut fired = 0;
        loop {
            let n = self.store.fire_due_expiries(now, 100).await?;
            fired += n;
            if n < 100 {
                break;
            }
        }
        if fired > 0 {
            self.wake_deliveries();
        }
        Ok(fired)
    }
}
