//! Events and notification records (csms-api.md §3.1); every one of them
//! answers errors in the nested shape.

use axum::{
    Json,
    http::{Method, StatusCode},
    routing::{delete, get, post, put},
};
use proto::csms::v1 as pb;
use serde::Serialize;

use super::{CsmsBare, CsmsCall, CsmsResult, PageInfo, Query, route};
use crate::{
    error::{ApiError, Shape},
    json::JsonBody,
    routes::ApiRoute,
};

pub(super) fn routes() -> Vec<ApiRoute> {
    let (events, event, shape) =
        ("/v1/{project_id}/csms/events", "/v1/{project_id}/csms/events/{event_name}", Shape::Nested);
    vec![
        route(Method::POST, events, post(create_secret_event), shape),
        route(Method::GET, events, get(list_secret_events), shape),
        route(Method::GET, event, get(show_secret_event), shape),
        route(Method::PUT, event, put(update_secret_event), shape),
        route(Method::DELETE, event, delete(delete_secret_event), shape),
        route(Method::GET, "/v1/{project_id}/csms/notification-records", get(list_notification_records), shape),
    ]
}

/// The `Notification` object.
#[derive(Debug, Serialize)]
pub struct Notification {
    target_type: String,
    target_id: String,
    target_name: String,
}

/// The `Event` object.
#[derive(Debug, Serialize)]
pub struct Event {
    name: String,
    event_id: String,
    event_types: Vec<String>,
    state: String,
    create_time: i64,
    update_time: i64,
    notification: Notification,
}

impl From<pb::SecretEvent> for Event {
    fn from(e: pb::SecretEvent) -> Self {
        let n = e.notification.unwrap_or_default();
        Self {
            name: e.name,
            event_id: e.event_id,
            event_types: e.event_types,
            state: e.state,
            create_time: e.create_time_ms,
            update_time: e.update_time_ms,
            notification: Notification {
                target_type: n.target_type,
                target_id: n.target_id,
                target_name: n.target_name,
            },
        }
    }
}

/// `{"event": …}`.
#[derive(Debug, Serialize)]
pub struct EventAnswer {
    event: Event,
}

impl From<pb::EventResponse> for EventAnswer {
    fn from(r: pb::EventResponse) -> Self {
        Self { event: r.event.unwrap_or_default().into() }
    }
}

/// The `notification` member: an object with the three strings.
fn notification<const B: bool>(call: &CsmsCall<B>) -> Result<Option<pb::NotificationTarget>, ApiError> {
    let Some(n) = call.body.object("notification").map_err(|e| call.err(e))? else { return Ok(None) };
    let field = |body: &JsonBody, name: &'static str| -> Result<String, ApiError> {
        body.strict_string(name)
            .map_err(|e| call.err(e))?
            .ok_or_else(|| call.invalid(&format!("notification.{name} is required")))
    };
    Ok(Some(pb::NotificationTarget {
        target_type: field(n, "target_type")?,
        target_id: field(n, "target_id")?,
        target_name: field(n, "target_name")?,
    }))
}

/// `POST /v1/{project_id}/csms/events`.
pub async fn create_secret_event(call: CsmsCall) -> CsmsResult<EventAnswer> {
    let request = pb::CreateSecretEventRequest {
        name: call.required("name", "name is required")?,
        event_types: call.string_list("event_types")?.ok_or_else(|| call.invalid("event_types is required"))?,
        state: call.required("state", "state is required")?,
        notification: Some(notification(&call)?.ok_or_else(|| call.invalid("notification is required"))?),
    };
    let r = call.csms().create_secret_event(call.request(request)).await.map_err(call.status())?;
    Ok(Json(r.into_inner().into()))
}

/// What list-secret-events answers.
#[derive(Debug, Serialize)]
pub struct EventList {
    events: Vec<Event>,
    page_info: PageInfo,
}

/// `GET /v1/{project_id}/csms/events`.
pub async fn list_secret_events(query: Query, call: CsmsBare) -> CsmsResult<EventList> {
    let request = pb::ListSecretEventsRequest {
        limit: call.limit(&query)?,
        marker: query.get("marker").cloned().unwrap_or_default(),
    };
    let r = call.csms().list_secret_events(call.request(request)).await.map_err(call.status())?.into_inner();
    let page_info = PageInfo::of(r.events.iter().map(|e| e.name.as_str()), r.more);
    Ok(Json(EventList { events: r.events.into_iter().map(Event::from).collect(), page_info }))
}

/// `GET /v1/{project_id}/csms/events/{event_name}`.
pub async fn show_secret_event(call: CsmsBare) -> CsmsResult<EventAnswer> {
    let request = pb::EventName { name: call.path.get("event_name") };
    let r = call.csms().show_secret_event(call.request(request)).await.map_err(call.status())?;
    Ok(Json(r.into_inner().into()))
}

/// `PUT /v1/{project_id}/csms/events/{event_name}`.
pub async fn update_secret_event(call: CsmsCall) -> CsmsResult<EventAnswer> {
    let types = call.string_list("event_types")?;
    let request = pb::UpdateSecretEventRequest {
        name: call.path.get("event_name"),
        state: call.string("state")?,
        set_event_types: types.is_some(),
        event_types: types.unwrap_or_default(),
        notification: notification(&call)?,
    };
    let r = call.csms().update_secret_event(call.request(request)).await.map_err(call.status())?;
    Ok(Json(r.into_inner().into()))
}

/// `DELETE /v1/{project_id}/csms/events/{event_name}`: 204.
pub async fn delete_secret_event(call: CsmsBare) -> Result<StatusCode, ApiError> {
    let request = pb::EventName { name: call.path.get("event_name") };
    call.csms().delete_secret_event(call.request(request)).await.map_err(call.status())?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `Record` object.
#[derive(Debug, Serialize)]
pub struct Record {
    event_name: String,
    trigger_event_type: String,
    create_time: i64,
    secret_name: String,
    secret_type: String,
    notification_target_name: String,
    notification_target_id: String,
    notification_content: String,
    notification_status: String,
}

/// What list-notification-records answers.
#[derive(Debug, Serialize)]
pub struct RecordList {
    records: Vec<Record>,
    page_info: PageInfo,
}

/// `GET /v1/{project_id}/csms/notification-records` (the SDK sends no
/// query; `limit` and `marker`, a record's position from `page_info`, page
/// through more than one page).
pub async fn list_notification_records(query: Query, call: CsmsBare) -> CsmsResult<RecordList> {
    let request = pb::ListNotificationRecordsRequest {
        limit: call.limit(&query)?,
        marker: query.get("marker").cloned().unwrap_or_default(),
    };
    let r = call.csms().list_notification_records(call.request(request)).await.map_err(call.status())?.into_inner();
    let page_info = PageInfo::of(r.records.iter().map(|e| e.id.as_str()), r.more);
    let records = r
        .records
        .into_iter()
        .map(|r| Record {
            event_name: r.event_name,
            trigger_event_type: r.trigger_event_type,
            create_time: r.create_time_ms,
            secret_name: r.secret_name,
            secret_type: r.secret_type,
            notification_target_name: r.notification_target_name,
            notification_target_id: r.notification_target_id,
            notification_content: r.notification_content,
            notification_status: r.notification_status,
        })
        .collect();
    Ok(Json(RecordList { records, page_info }))
}
