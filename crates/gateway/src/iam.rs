//! The IAM calls clients make before KMS/CSMS calls: password tokens
//! (`POST /v3/auth/tokens`, auth.md §3.1–3.2).

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use http::{HeaderMap, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::{
    AppState,
    error::ApiError,
    json::JsonBody,
    tokens::{Claims, TOKEN_LIFETIME_MS, iso_time},
};

const BAD_BODY: ApiError = ApiError::Iam(StatusCode::BAD_REQUEST, "The request body is invalid");
const BAD_LOGIN: ApiError = ApiError::Iam(StatusCode::UNAUTHORIZED, "The username or password is wrong.");

/// `POST /v3/auth/tokens` with the password method.
pub async fn issue_token(
    State(app): State<Arc<AppState>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonBody::parse(&headers, &body).map_err(|_| BAD_BODY)?;
    let field = |o: &JsonBody, name: &'static str| o.object(name).map_err(|_| BAD_BODY);
    let auth = field(&body, "auth")?.ok_or(BAD_BODY)?;
    let identity = field(&auth, "identity")?.ok_or(BAD_BODY)?;
    let methods = identity.string_list("methods").map_err(|_| BAD_BODY)?.ok_or(BAD_BODY)?;
    if methods != ["password"] {
        return Err(BAD_BODY);
    }
    let user = field(&field(&identity, "password")?.ok_or(BAD_BODY)?, "user")?.ok_or(BAD_BODY)?;
    let text = |o: &JsonBody, name: &'static str| o.strict_string(name).map_err(|_| BAD_BODY);
    let user_name = text(&user, "name")?.ok_or(BAD_BODY)?;
    let password = zeroize::Zeroizing::new(text(&user, "password")?.ok_or(BAD_BODY)?);
    let domain = field(&user, "domain")?.ok_or(BAD_BODY)?;
    let domain_name = text(&domain, "name")?.ok_or(BAD_BODY)?;

    let scope = field(&auth, "scope")?.ok_or(BAD_BODY)?;
    let (project, domain_scope) = (field(&scope, "project")?, field(&scope, "domain")?);
    if project.is_some() == domain_scope.is_some() {
        return Err(BAD_BODY);
    }

    let Some(credential) = app.credentials.by_user(&domain_name, &user_name) else {
        tracing::info!(user = %user_name, domain = %domain_name, "password login for unknown user");
        return Err(BAD_LOGIN);
    };
    if !bool::from(credential.password.expose().as_bytes().ct_eq(password.as_bytes())) {
        tracing::info!(user = %user_name, domain = %domain_name, "wrong password");
        return Err(BAD_LOGIN);
    }
    let scoped_project = match &project {
        Some(p) => {
            let id = text(p, "id")?;
            let name = text(p, "name")?;
            let matches = id.as_deref().is_none_or(|id| id == credential.project_id)
                && name.as_deref().is_none_or(|n| n == credential.project_name)
                && (id.is_some() || name.is_some());
            if !matches {
                return Err(ApiError::Iam(
                    StatusCode::UNAUTHORIZED,
                    "The project in the scope is not available to this user.",
                ));
            }
            Some(credential.project_id.clone())
        }
        None => None,
    };
    let now = common::now_ms();
    let claims = Claims {
        u: credential.user_id.clone(),
        d: credential.domain_id.clone(),
        p: scoped_project.clone(),
        iat: now,
        exp: now + TOKEN_LIFETIME_MS,
    };
    let token = app.tokens.issue(&claims);
    let domain_json = json!({"id": credential.domain_id, "name": credential.domain_name});
    let mut token_body = json!({
        "expires_at": iso_time(claims.exp),
        "issued_at": iso_time(claims.iat),
        "methods": ["password"],
        "roles": [{"id": "0", "name": "te_admin"}],
        "user": {"id": credential.user_id, "name": credential.user_name, "domain": domain_json, "password_expires_at": ""},
    });
    if scoped_project.is_some() {
        token_body["project"] =
            json!({"id": credential.project_id, "name": credential.project_name, "domain": domain_json});
    } else {
        token_body["domain"] = domain_json;
    }
    if query.get("nocatalog").is_none_or(|v| v.is_empty()) {
        token_body["catalog"] = json!([]);
    }
    let mut response = (StatusCode::CREATED, Json(json!({ "token": token_body }))).into_response();
    response.headers_mut().insert("x-subject-token", token.parse().expect("token is ASCII"));
    Ok(response)
}

/// `GET /v3/projects?name=…`: the caller's projects, as the SDK asks for them
/// when its credentials carry no project id (auth.md §3.5).
pub async fn list_projects(
    State(app): State<Arc<AppState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let projects: Vec<serde_json::Value> = app
        .credentials
        .projects_of(&caller.domain_id)
        .into_iter()
        .filter(|(_, name)| query.get("name").is_none_or(|wanted| wanted == name))
        .map(|(id, name)| {
            json!({
                "id": id,
                "name": name,
                "domain_id": caller.domain_id,
                "enabled": true,
                "is_domain": false,
                "parent_id": caller.domain_id,
                "description": "",
                "links": {"self": format!("http://{host}/v3/projects/{id}")},
            })
        })
        .collect();
    Json(
        json!({"projects": projects, "links": {"self": format!("http://{host}/v3/projects"), "previous": null, "next": null}}),
    )
}
