//! The IAM calls clients make before KMS/CSMS calls: password tokens
//! (`POST /v3/auth/tokens`, auth.md §3.1–3.2, served before authentication),
//! the caller's projects, and temporary credentials (auth.md §1.9; their
//! format is [`crate::sts`]).

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::Method,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use identity::credentials::SecretString;

use super::ApiRoute;
use crate::{
    caller::Caller,
    error::ApiError,
    json::JsonBody,
    state::AppState,
    sts::{StsClaims, issue},
    throttle::Subject,
    tokens::{Claims, TOKEN_LIFETIME_MS, iso_time},
};

const BAD_BODY: ApiError = ApiError::Iam(StatusCode::BAD_REQUEST, "The request body is invalid");
/// The family's authenticated routes (the token route is not among them).
pub(crate) fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(Method::GET, "/v3/projects", get(list_projects)),
        ApiRoute::new(Method::GET, "/v3/auth/domains", get(list_domains)),
        ApiRoute::new(Method::GET, "/v3/auth/catalog", get(show_catalog)),
        ApiRoute::new(Method::POST, "/v3.0/OS-CREDENTIAL/securitytokens", post(create_security_token)),
    ]
}

/// The hash of a random password, checked when the user does not exist so
/// that the answer takes as long as for a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| identity::seal::hash_password(&common::identity::new_hex32()))
}

/// The longest password an account can have.
const MAX_PASSWORD_CHARS: usize = 128;

/// The largest login body: a password login is well under a kilobyte, and
/// this route is open to anyone, so it buffers no more than this.
pub const MAX_LOGIN_BODY: usize = 16 * 1024;

const BAD_LOGIN: ApiError = ApiError::Iam(StatusCode::UNAUTHORIZED, "The username or password is wrong.");

/// Route layer of the token route: reads its body (at most `body_limit`,
/// within the body timeout, charged to the reading budget as it arrives,
/// as every route's), so that a login whose body never comes holds
/// nothing for long.
pub async fn read_login(
    State(edge): State<crate::state::Edge>, req: axum::extract::Request, next: axum::middleware::Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let app = &edge.app;
    match crate::budget::read_body(&app.budgets, &parts, body, edge.body_limit, app.body_timeout).await {
        // The reservation is held while the login is checked.
        Ok((bytes, _reading)) => {
            next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /v3/auth/tokens` with the password method.
///
/// Guessing is slowed per source address and per login name, differently:
/// an address that keeps failing is refused (429), but a name that keeps
/// failing only makes each further attempt wait before its check. Refusing
/// by the name let anyone who knew it lock its owner out: twelve wrong
/// passwords from one address made the right one from another get 429
/// (issue #40). The checks run on the hashing threads in a lane per address
/// prefix ([`identity::hashing`]), unknown names in the same lane as known
/// ones, so a flood from one network waits behind itself.
pub async fn issue_token(
    State(app): State<Arc<AppState>>,
    // Absent when the router is driven without a socket (tests).
    conn: Option<axum::Extension<Arc<crate::connections::Connection>>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = JsonBody::parse(&headers, &body).map_err(|_| BAD_BODY)?;
    fn field<'a>(o: &'a JsonBody, name: &'static str) -> Result<Option<&'a JsonBody>, ApiError> {
        o.object(name).map_err(|_| BAD_BODY)
    }
    let auth = field(&body, "auth")?.ok_or(BAD_BODY)?;
    let identity = field(auth, "identity")?.ok_or(BAD_BODY)?;
    let methods = identity.string_list("methods").map_err(|_| BAD_BODY)?.ok_or(BAD_BODY)?;
    if methods != ["password"] {
        return Err(BAD_BODY);
    }
    let user = field(field(identity, "password")?.ok_or(BAD_BODY)?, "user")?.ok_or(BAD_BODY)?;
    let text = |o: &JsonBody, name: &'static str| o.strict_string(name).map_err(|_| BAD_BODY);
    let user_name = text(user, "name")?.ok_or(BAD_BODY)?;
    let password = zeroize::Zeroizing::new(text(user, "password")?.ok_or(BAD_BODY)?);
    let domain = field(user, "domain")?.ok_or(BAD_BODY)?;
    let domain_name = text(domain, "name")?.ok_or(BAD_BODY)?;

    let scope = field(auth, "scope")?.ok_or(BAD_BODY)?;
    let (project, domain_scope) = (field(scope, "project")?, field(scope, "domain")?);
    if project.is_some() == domain_scope.is_some() {
        return Err(BAD_BODY);
    }

    let client = conn.map(|c| app.trusted_proxies.client(c.peer(), &headers));
    let name = Subject::Key(format!("{domain_name}/{user_name}"));
    let attempt = PasswordAttempt::begin(&app, name, client).await?;
    let fail = || {
        metrics::counter!("opendew_auth_failures_total").increment(1);
        BAD_LOGIN
    };
    let directory = app.directory.snapshot();
    let Some((user, domain)) = directory.user_by_name(&domain_name, &user_name) else {
        tracing::info!(user = %user_name, domain = %domain_name, "password login for unknown user");
        // As slow as a wrong password, so timing does not tell names apart.
        if password.chars().count() <= MAX_PASSWORD_CHARS {
            attempt.check(dummy_hash().to_owned(), password).await?;
        }
        return Err(fail());
    };
    let (user, domain) = (user.clone(), domain.clone());
    // No stored password is longer (`admin` takes 8-128 characters): a
    // longer one is wrong without costing a hash.
    let verified =
        password.chars().count() <= MAX_PASSWORD_CHARS && attempt.check(user.password_hash.clone(), password).await?;
    if !verified {
        tracing::info!(user = %user_name, domain = %domain_name, "wrong password");
        return Err(fail());
    }
    let scoped_project = match &project {
        Some(p) => {
            let id = text(p, "id")?;
            let name = text(p, "name")?;
            if id.is_none() && name.is_none() {
                return Err(BAD_BODY);
            }
            let found = directory.projects_of(&domain.id).into_iter().find(|project| {
                id.as_deref().is_none_or(|id| id == project.id) && name.as_deref().is_none_or(|n| n == project.name)
            });
            let Some(found) = found else {
                return Err(ApiError::Iam(
                    StatusCode::UNAUTHORIZED,
                    "The project in the scope is not available to this user.",
                ));
            };
            Some(found)
        }
        None => None,
    };
    let now = common::now_ms();
    let claims = Claims {
        u: user.id.clone(),
        d: domain.id.clone(),
        p: scoped_project.as_ref().map(|p| p.id.clone()),
        iat: now,
        exp: now + TOKEN_LIFETIME_MS,
        pw: crate::tokens::password_mark(&user.password_hash),
    };
    let token = app.tokens.issue(&claims);
    let domain_json = json!({"id": domain.id, "name": domain.name});
    let mut token_body = json!({
        "expires_at": iso_time(claims.exp),
        "issued_at": iso_time(claims.iat),
        "methods": ["password"],
        "roles": [{"id": "0", "name": "te_admin"}],
        "user": {"id": user.id, "name": user.name, "domain": domain_json, "password_expires_at": ""},
    });
    if let Some(project) = &scoped_project {
        token_body["project"] = json!({"id": project.id, "name": project.name, "domain": domain_json});
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

/// One password check, charged to the throttle before its hash (so a burst
/// cannot all pass): the client address's bucket refuses when full; the
/// name's bucket, when full, delays the check by one failure's drain time
/// instead. Success gives the charges back; a failure keeps them.
pub(crate) struct PasswordAttempt {
    app: Arc<AppState>,
    charged: Vec<Subject>,
    lane: u64,
    succeeded: bool,
}

impl PasswordAttempt {
    /// Charges the attempt, waiting out the name's delay if it has one.
    pub(crate) async fn begin(
        app: &Arc<AppState>, name: Subject, client: Option<std::net::IpAddr>,
    ) -> Result<Self, ApiError> {
        let mut charged = Vec::with_capacity(2);
        if let Some(client) = client {
            let address = Subject::Address(client);
            app.throttle.charge(std::slice::from_ref(&address)).map_err(ApiError::Throttled)?;
            charged.push(address);
        }
        let mut attempt =
            Self { app: app.clone(), charged, lane: client.map_or(0, crate::peer::lane), succeeded: false };
        match app.throttle.charge(std::slice::from_ref(&name)) {
            Ok(()) => attempt.charged.push(name),
            Err(_) => {
                metrics::counter!("opendew_auth_delayed_total").increment(1);
                tokio::time::sleep(app.throttle.failure_drain()).await;
                // Charged like any attempt (a full bucket stays full), so
                // that a success has a charge to give back.
                app.throttle.failed(name.clone());
                attempt.charged.push(name);
            }
        }
        Ok(attempt)
    }

    /// Checks `password` against `hash` on the hashing threads, in the
    /// client's lane; a success gives the attempt's charges back.
    pub(crate) async fn check(mut self, hash: String, password: zeroize::Zeroizing<String>) -> Result<bool, ApiError> {
        let verify = move || identity::seal::verify_password(&hash, &password);
        let verified = identity::hashing::run(self.lane, verify)
            .await
            .map_err(|_| ApiError::Throttled(std::time::Duration::from_secs(1)))?;
        self.succeeded = verified;
        Ok(verified)
    }
}

impl Drop for PasswordAttempt {
    fn drop(&mut self) {
        if self.succeeded {
            self.charged.iter().for_each(|s| self.app.throttle.refund(s));
        }
    }
}

/// `GET /v3/projects?name=…`: the caller's projects, as the SDK asks for them
/// when its credentials carry no project id (auth.md §3.5).
pub async fn list_projects(
    State(app): State<Arc<AppState>>, axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<std::collections::HashMap<String, String>>, headers: HeaderMap,
) -> Json<serde_json::Value> {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let projects: Vec<serde_json::Value> = app
        .directory
        .snapshot()
        .projects_of(&caller.domain_id)
        .into_iter()
        .filter(|p| query.get("name").is_none_or(|wanted| *wanted == p.name))
        .map(|p| {
            let id = &p.id;
            json!({
                "id": id,
                "name": p.name,
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

/// This gateway's base URL as the caller reached it.
fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("{}://{host}", app.scheme)
}

/// `GET /v3/auth/domains`: the caller's own domain, as the Terraform
/// provider (with `domain_name`) and the SDKs (global credentials without a
/// domain id) look it up; `?name=` filters by name.
pub async fn list_domains(
    State(app): State<Arc<AppState>>, axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<std::collections::HashMap<String, String>>, headers: HeaderMap,
) -> Json<serde_json::Value> {
    let base = base_url(&app, &headers);
    let snapshot = app.directory.snapshot();
    let domains: Vec<serde_json::Value> = snapshot
        .domain(&caller.domain_id)
        .into_iter()
        .filter(|d| query.get("name").is_none_or(|wanted| *wanted == d.name))
        .map(|d| {
            json!({
                "id": d.id,
                "name": d.name,
                "enabled": true,
                "description": "",
                "links": {"self": format!("{base}/v3/domains/{}", d.id)},
            })
        })
        .collect();
    Json(
        json!({"domains": domains, "links": {"self": format!("{base}/v3/auth/domains"), "previous": null, "next": null}}),
    )
}

/// `GET /v3/auth/catalog`: the services this gateway serves, one public
/// endpoint per region the caller has a project in (a project is named by
/// its region). The Vault/OpenBao `huaweicloudkms` seal needs the `kms`
/// entry of its region, with the URL ending in `/v1.0/`.
pub async fn show_catalog(
    State(app): State<Arc<AppState>>, axum::Extension(caller): axum::Extension<Caller>, headers: HeaderMap,
) -> Json<serde_json::Value> {
    let base = base_url(&app, &headers);
    let mut regions: Vec<String> =
        app.directory.snapshot().projects_of(&caller.domain_id).into_iter().map(|p| p.name.clone()).collect();
    regions.sort();
    regions.dedup();
    let entry = |kind: &str, path: &str| {
        let endpoints: Vec<serde_json::Value> = regions
            .iter()
            .map(|region| {
                json!({
                    "id": format!("{kind}-{region}"),
                    "interface": "public",
                    "region": region,
                    "region_id": region,
                    "url": format!("{base}{path}"),
                })
            })
            .collect();
        json!({"id": kind, "name": kind, "type": kind, "endpoints": endpoints})
    };
    Json(json!({
        "catalog": [entry("kms", "/v1.0/"), entry("csms", "/v1/"), entry("identity", "/v3/")],
        "links": {"self": format!("{base}/v3/auth/catalog"), "previous": null, "next": null},
    }))
}

/// `POST /v3.0/OS-CREDENTIAL/securitytokens` with the `token` method.
pub async fn create_security_token(
    State(app): State<Arc<AppState>>, axum::Extension(caller): axum::Extension<Caller>, headers: HeaderMap, body: Bytes,
) -> Result<Response, ApiError> {
    if caller.temporary {
        return Err(ApiError::Iam(StatusCode::FORBIDDEN, "Temporary credentials cannot issue temporary credentials."));
    }
    let body = JsonBody::parse(&headers, &body).map_err(|_| BAD_BODY)?;
    let auth = body.object("auth").map_err(|_| BAD_BODY)?.ok_or(BAD_BODY)?;
    let identity = auth.object("identity").map_err(|_| BAD_BODY)?.ok_or(BAD_BODY)?;
    let methods = identity.string_list("methods").map_err(|_| BAD_BODY)?.ok_or(BAD_BODY)?;
    if methods != ["token"] {
        return Err(BAD_BODY);
    }
    let duration = match identity.object("token").map_err(|_| BAD_BODY)? {
        Some(token) => token.int("duration_seconds").map_err(|_| BAD_BODY)?.unwrap_or(900),
        None => 900,
    };
    if !(900..=86_400).contains(&duration) {
        return Err(ApiError::Iam(StatusCode::BAD_REQUEST, "duration_seconds must be between 900 and 86400."));
    }
    let claims = StsClaims {
        ak: format!("ODET{}", random_text(16).to_ascii_uppercase()),
        sk: SecretString::new(random_text(40)),
        u: caller.user_id.clone(),
        d: caller.domain_id.clone(),
        p: caller.scoped_project.clone(),
        // Never past the credential that asked for them (a token's expiry):
        // they outlived their parent token before (issue #15, finding 4).
        exp: (common::now_ms() + duration * 1000).min(caller.expires_ms.unwrap_or(i64::MAX)),
        pak: caller.access_key.clone(),
        pw: caller.password_mark.clone(),
    };
    let token = issue(app.directory.sealer(), &claims);
    tracing::info!(user_id = %claims.u, access_key = %claims.ak, "temporary credentials issued");
    let credential = json!({
        "access": claims.ak,
        "secret": claims.sk.expose(),
        "securitytoken": token,
        "expires_at": iso_time(claims.exp),
    });
    Ok((StatusCode::CREATED, Json(json!({ "credential": credential }))).into_response())
}

fn random_text(len: usize) -> String {
    use rand::{Rng, distributions::Alphanumeric};
    rand::rngs::OsRng.sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}
