//! The secret checker (csms-api.md §3.7), flat errors. Its update is a POST
//! on the path of its show.

use axum::{
    Json,
    http::Method,
    routing::{get, post},
};
use proto::csms::v1 as pb;
use serde::Serialize;

use super::{CsmsBare, CsmsCall, CsmsResult, route};
use crate::{error::Shape, routes::ApiRoute};

pub(super) fn routes() -> Vec<ApiRoute> {
    let (config, shape) = ("/v1/{project_id}/secrets/checker/config", Shape::Flat);
    vec![
        route(Method::GET, config, get(show_secrets_config), shape),
        route(Method::POST, config, post(update_secrets_config), shape),
        route(Method::POST, "/v1/{project_id}/secrets/checker/check", post(check_secrets), shape),
    ]
}

/// The checker's settings.
#[derive(Debug, Serialize)]
pub struct Config {
    checking_secret_strength: bool,
}

/// `GET /v1/{project_id}/secrets/checker/config`.
pub async fn show_secrets_config(call: CsmsBare) -> CsmsResult<Config> {
    let r = call.csms().show_secrets_config(call.request(pb::Empty {})).await.map_err(call.status())?.into_inner();
    Ok(Json(Config { checking_secret_strength: r.checking_secret_strength }))
}

/// `POST /v1/{project_id}/secrets/checker/config`.
pub async fn update_secrets_config(call: CsmsCall) -> CsmsResult<Config> {
    let on =
        call.bool("checking_secret_strength")?.ok_or_else(|| call.invalid("checking_secret_strength is required"))?;
    let request = pb::SecretsConfig { checking_secret_strength: on };
    let r = call.csms().update_secrets_config(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(Config { checking_secret_strength: r.checking_secret_strength }))
}

/// The verdict in `data`.
#[derive(Debug, Serialize)]
pub struct Verdict {
    strength: String,
    score: u32,
    length: u32,
    warning: String,
    suggestions: Vec<String>,
}

/// What check-secrets answers.
#[derive(Debug, Serialize)]
pub struct Checked {
    r#type: String,
    data: Verdict,
}

/// `POST /v1/{project_id}/secrets/checker/check`: `data` holds
/// `secret_string` (a value to score) or `secret_name` with an optional
/// `version_id` (a stored version, scored where it is kept).
pub async fn check_secrets(call: CsmsCall) -> CsmsResult<Checked> {
    use pb::check_secret_request::Subject;
    let kind = call.required("type", "type is required")?;
    let data = call.body.object("data").map_err(|e| call.err(e))?.ok_or_else(|| call.invalid("data is required"))?;
    let text = |name| data.strict_string(name).map_err(|e| call.err(e));
    let (subject, version_id) = match (text("secret_string")?, text("secret_name")?) {
        (Some(value), None) => (Subject::Value(value), String::new()),
        (None, Some(name)) => (Subject::SecretName(name), text("version_id")?.unwrap_or_default()),
        _ => return Err(call.invalid("data takes secret_string or secret_name")),
    };
    let request = pb::CheckSecretRequest { r#type: kind, subject: Some(subject), version_id };
    let r = call.csms().check_secret(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(Checked {
        r#type: r.r#type,
        data: Verdict {
            strength: r.strength,
            score: r.score,
            length: r.length,
            warning: r.warning,
            suggestions: r.suggestions,
        },
    }))
}
