//! The account-level CSMS paths (csms-api.md §3.5, §3.6, §3.8): no project
//! in the path; the project is the credential's scope (a token's project,
//! `X-Project-Id`) or the domain's only one.
//!
//! - agencies (flat errors): recorded by csms-service per project;
//! - users (list: nested errors; detail and password: flat): the identity
//!   store's users of the caller's domain, served here, where the identity
//!   store lives. change-password changes the caller's own password, which
//!   ends every token issued under the old one (tokens carry a mark of
//!   the password they were issued under);
//! - function templates (flat): the built-in set below.

use axum::{
    Json,
    http::Method,
    routing::{get, post},
};
use identity::store::UserRow;
use proto::csms::v1 as pb;
use serde::Serialize;

use super::{CsmsBare, CsmsCall, CsmsResult, Query, route};
use crate::{
    error::{ApiError, Shape},
    routes::ApiRoute,
    throttle::Subject,
};

pub(super) fn routes() -> Vec<ApiRoute> {
    let flat = Shape::Flat;
    vec![
        route(Method::POST, "/v1/csms/agencies", post(create_agency), flat),
        route(Method::GET, "/v1/csms/agencies", get(show_agency), flat),
        route(Method::GET, "/v1/csms/users", get(list_users), Shape::Nested),
        route(Method::GET, "/v1/csms/users/{user_id}", get(show_user_detail), flat),
        route(Method::POST, "/v1/csms/users/change-password", post(update_user_password), flat),
        route(Method::GET, "/v1/csms/function-templates", get(show_secret_function_templates), flat),
    ]
}

/// One agency.
#[derive(Debug, Serialize)]
pub struct Agency {
    agency_name: String,
    agency_id: String,
}

/// What create_agency answers.
#[derive(Debug, Serialize)]
pub struct Agencies {
    agencies: Vec<Agency>,
}

/// `POST /v1/csms/agencies`.
pub async fn create_agency(call: CsmsCall) -> CsmsResult<Agencies> {
    let secret_type = call.required("secret_type", "secret_type is required")?;
    let r = call.csms().create_agency(call.request(pb::AgencyRequest { secret_type })).await.map_err(call.status())?;
    let agencies = r
        .into_inner()
        .agencies
        .into_iter()
        .map(|a| Agency { agency_name: a.agency_name, agency_id: a.agency_id })
        .collect();
    Ok(Json(Agencies { agencies }))
}

/// What show_agency answers: a string, `"true"` or `"false"`.
#[derive(Debug, Serialize)]
pub struct AgencyGranted {
    agency_granted: &'static str,
}

/// `GET /v1/csms/agencies?secret_type=`.
pub async fn show_agency(query: Query, call: CsmsBare) -> CsmsResult<AgencyGranted> {
    let secret_type = query.get("secret_type").cloned().ok_or_else(|| call.invalid("secret_type is required"))?;
    let r = call.csms().show_agency(call.request(pb::AgencyRequest { secret_type })).await.map_err(call.status())?;
    Ok(Json(AgencyGranted { agency_granted: if r.into_inner().granted { "true" } else { "false" } }))
}

/// `YYYY-MM-DD HH:MM:SS.mmm`, as the user models spell times.
fn user_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// One `user_org_relation_list` entry: the user's domain.
#[derive(Debug, Serialize)]
pub struct OrgRelation {
    org_id: String,
    relation_type: &'static str,
}

/// The fields both user models share, with the same types.
#[derive(Debug, Serialize)]
pub struct UserFields {
    user_id: String,
    org_id: String,
    user_name: String,
    name: String,
    mobile: String,
    email: String,
    pwd_must_modify: bool,
    pwd_change_at: String,
    created_at: String,
    updated_at: String,
    locked: &'static str,
    user_org_relation_list: Vec<OrgRelation>,
}

impl From<&UserRow> for UserFields {
    fn from(u: &UserRow) -> Self {
        Self {
            user_id: u.id.clone(),
            org_id: u.domain_id.clone(),
            user_name: u.name.clone(),
            name: u.name.clone(),
            mobile: String::new(),
            email: String::new(),
            pwd_must_modify: false,
            pwd_change_at: user_time(u.create_ms),
            created_at: user_time(u.create_ms),
            updated_at: user_time(u.create_ms),
            locked: "false",
            user_org_relation_list: vec![OrgRelation { org_id: u.domain_id.clone(), relation_type: "MEMBER" }],
        }
    }
}

/// `UsersDetailsResult` (the list model types `disabled`, `grade` and
/// `extension` as strings).
#[derive(Debug, Serialize)]
pub struct UserSummary {
    #[serde(flatten)]
    fields: UserFields,
    disabled: String,
    grade: &'static str,
    extension: &'static str,
}

impl From<&UserRow> for UserSummary {
    fn from(u: &UserRow) -> Self {
        Self { fields: u.into(), disabled: (!u.enabled).to_string(), grade: "0", extension: "{}" }
    }
}

/// What list_users answers.
#[derive(Debug, Serialize)]
pub struct UserList {
    total: u64,
    users: Vec<UserSummary>,
}

/// `GET /v1/csms/users?offset=&limit=&org_id=&user_info=`: the users of
/// the caller's domain; `offset` is the page (0-based) of `limit` (10-100)
/// users, `user_info` a case-insensitive part of the name.
pub async fn list_users(query: Query, call: CsmsBare) -> CsmsResult<UserList> {
    let number = |name: &str, range: std::ops::RangeInclusive<u64>| -> Result<u64, ApiError> {
        query
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| range.contains(n))
            .ok_or_else(|| call.invalid(&format!("{name} is required ({}-{})", range.start(), range.end())))
    };
    let offset = number("offset", 0..=1_000_000)?;
    let limit = number("limit", 10..=100)?;
    let needle = query.get("user_info").map(|s| s.to_lowercase()).unwrap_or_default();
    if needle.chars().count() > 64 {
        return Err(call.invalid("user_info is limited to 64 characters"));
    }
    let domain = call.identity().domain_id.clone();
    if query.get("org_id").is_some_and(|org| !org.is_empty() && *org != domain) {
        return Ok(Json(UserList { total: 0, users: Vec::new() }));
    }
    let directory = call.app().directory.snapshot();
    let matching: Vec<_> =
        directory.users_of(&domain).into_iter().filter(|u| u.name.to_lowercase().contains(&needle)).collect();
    let users = matching.iter().skip((offset * limit) as usize).take(limit as usize).map(|u| (&**u).into()).collect();
    Ok(Json(UserList { total: matching.len() as u64, users }))
}

/// `ShowUserDetailResponse` (here `disabled` is a bool, `grade` a number
/// and `extension` an object).
#[derive(Debug, Serialize)]
pub struct UserDetail {
    #[serde(flatten)]
    fields: UserFields,
    disabled: bool,
    grade: i32,
    extension: serde_json::Value,
    domain_id: String,
}

/// `GET /v1/csms/users/{user_id}`: a user of the caller's domain (another
/// domain's user does not exist here).
pub async fn show_user_detail(call: CsmsBare) -> CsmsResult<UserDetail> {
    let directory = call.app().directory.snapshot();
    let user_id = call.path.get("user_id");
    let u = directory
        .user(&user_id)
        .filter(|u| u.domain_id == call.identity().domain_id)
        .ok_or_else(|| call.not_found())?;
    Ok(Json(UserDetail {
        fields: (&**u).into(),
        disabled: !u.enabled,
        grade: 0,
        extension: serde_json::json!({}),
        domain_id: u.domain_id.clone(),
    }))
}

/// What update_user_password answers.
#[derive(Debug, Serialize)]
pub struct PasswordChanged {
    user_id: String,
}

/// Longest password checked (the identity store keeps 8-128 characters).
const MAX_PASSWORD_CHARS: usize = 128;

/// `POST /v1/csms/users/change-password`: the caller's own password. The
/// old one is checked like a login (throttled per user, on the bounded
/// hashing thread); the new one takes effect on this replica at once and
/// on the others at their next directory refresh, and ends every token
/// issued under the old one.
pub async fn update_user_password(call: CsmsCall) -> CsmsResult<PasswordChanged> {
    let old = crypto::SecretString::new(call.required("old_password", "old_password is required")?);
    let new = crypto::SecretString::new(call.required("password", "password is required")?);
    let app = call.app().clone();
    let user_id = call.identity().user_id.clone();
    let name = Subject::Key(format!("change-password/{user_id}"));
    let attempt = crate::routes::iam::PasswordAttempt::begin(&app, name, call.client()).await?;
    let hash = app.directory.snapshot().active_user(&user_id).map(|(u, _)| u.password_hash.clone());
    let Some(hash) = hash else { return Err(call.not_found()) };
    let verified = old.expose().chars().count() <= MAX_PASSWORD_CHARS
        && attempt.check(hash, zeroize::Zeroizing::new(old.expose().to_owned())).await?;
    if !verified {
        tracing::info!(%user_id, "password change with a wrong old password");
        return Err(call.invalid("old_password is not the user's password"));
    }
    let password = identity::credentials::SecretString::new(new.expose().to_owned());
    // Only the password rule is the caller's to read; a store failure is
    // logged, not echoed (its text names tables and the database).
    identity::admin::set_password(&**app.directory.store(), &user_id, &password).await.map_err(|e| match e {
        identity::IdentityError::Invalid(rule) => call.invalid(&rule),
        other => {
            tracing::error!(error = %other, %user_id, "changing a password failed");
            ApiError::StoreUnavailable
        }
    })?;
    if let Err(e) = app.directory.refresh().await {
        tracing::warn!(error = %e, "directory refresh after a password change failed; the next poll retries");
    }
    tracing::info!(%user_id, "password changed");
    Ok(Json(PasswordChanged { user_id }))
}

/// What show_secret_function_templates answers.
#[derive(Debug, Serialize)]
pub struct Templates {
    function_templates: String,
}

/// `GET /v1/csms/function-templates?secret_type=&secret_sub_type=&engine=`:
/// the built-in rotation function template for the combination
/// ([`rotation_template`]).
pub async fn show_secret_function_templates(query: Query, call: CsmsBare) -> CsmsResult<Templates> {
    let get = |name: &str| query.get(name).map(String::as_str);
    let template = rotation_template(get("secret_type"), get("secret_sub_type"), get("engine"))
        .map_err(|why| call.invalid(why))?;
    Ok(Json(Templates { function_templates: template }))
}

/// The built-in template for a secret type, sub type and engine.
pub fn rotation_template(
    secret_type: Option<&str>, sub_type: Option<&str>, engine: Option<&str>,
) -> Result<String, &'static str> {
    let sub = match sub_type {
        Some(s @ ("SingleUser" | "MultiUser")) => s,
        _ => return Err("secret_sub_type must be SingleUser or MultiUser"),
    };
    let (service, engine) = match (secret_type, engine) {
        (Some("RDS-FG"), Some(e @ ("mysql" | "postgresql" | "sqlserver"))) => ("RDS", e),
        (Some("RDS-FG"), _) => return Err("engine must be mysql, postgresql or sqlserver for RDS-FG"),
        (Some("GaussDB-FG"), None) => ("GaussDB", "gaussdb"),
        (Some("GaussDB-FG"), Some(_)) => return Err("engine is not supported for GaussDB-FG"),
        _ => return Err("secret_type must be RDS-FG or GaussDB-FG"),
    };
    let account = if sub == "MultiUser" {
        "the SYSPREVIOUS account (the one not in use); then swap SYSCURRENT and SYSPREVIOUS"
    } else {
        "the SYSCURRENT account"
    };
    Ok(format!(
        "# opendew rotation function template: {service} {engine} {sub}\n\
         # 1. createSecret: read the SYSCURRENT (MultiUser: SYSPREVIOUS) version's JSON credentials\n\
         #    and store a copy with a new random password as a new version staged SYSPENDING.\n\
         # 2. setSecret: set that password on {account} in the {engine} instance named by\n\
         #    rotation_config.InstanceId.\n\
         # 3. testSecret: log in to the instance with the SYSPENDING credentials.\n\
         # 4. finishSecret: move SYSCURRENT to the new version (SYSPREVIOUS follows).\n\
         # opendew's rotate-secret performs steps 1 and 4 itself (there is no FunctionGraph here);\n\
         # steps 2 and 3 belong to the operator's own job, reading the new version.\n"
    ))
}
