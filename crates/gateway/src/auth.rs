//! Authentication of every API request (AK/SK signature or `X-Auth-Token`)
//! and authorisation of the path's project.

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::request::Parts;
use identity::directory::Snapshot;

use crate::{
    budget,
    caller::{Caller, SignatureUse},
    error::ApiError,
    signing::{self, Authorization, RawRequest},
    state::{AppState, Edge},
    throttle::Subject,
    tokens::TokenError,
};

/// Middleware of every authenticated route, in the order that keeps a
/// stranger's cost bounded:
/// 1. a declared body past the route's limit: 413;
/// 2. what the headers alone can show: a valid token, or a signature whose
///    AK is known and whose `X-Sdk-Date` is in the window; otherwise 401
///    (or 429 for a caller that keeps failing) without reading the body;
/// 3. the body, within the route's limit and the body timeout, charged to
///    the reading budget as it arrives ([`crate::budget`]);
/// 4. the signature over the body;
/// 5. a memory permit sized by the body, held while the handler runs.
///
/// The [`Caller`] goes into the request extensions.
pub async fn authenticate(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let app = &edge.app;
    let (mut parts, body) = req.into_parts();
    // A declared length past the route's limit costs nothing to refuse,
    // and says so whoever asks (the API gateway answers 413 first).
    if let Err(e) = budget::within_limit(&parts, edge.body_limit) {
        return e.into_response();
    }
    let subjects = throttle_subjects(app, &parts);
    let presented = match before_body(app, &parts) {
        Ok(presented) => presented,
        Err(e) => return refuse(app, subjects, e, declares_body(&parts)),
    };
    let (bytes, reading) = match budget::read_body(&app.budgets, &parts, body, edge.body_limit, app.body_timeout).await
    {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let caller = match presented {
        Presented::Token(caller) => caller,
        Presented::Signed { auth, claims } => match signed_caller(app, &parts, auth, claims, &bytes) {
            Ok(caller) => caller,
            Err(e) => return refuse(app, subjects, e, false),
        },
    };
    let permit = match app.budgets.memory(crate::json::cost(&bytes)).await {
        Ok(permit) => permit,
        Err(e) => return e.into_response(),
    };
    drop(reading);
    parts.extensions.insert(caller);
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    drop(permit);
    response
}

/// A request that failed authentication: 401, or 429 once its AK or
/// address keeps failing. `unread` when its body was not read (the
/// connection then closes: it cannot carry another request).
///
/// Valid credentials are never throttled: refusing them by the AK's or the
/// address's bucket let anyone who knew an AK, or shared a proxy's
/// address, lock its owner out (issue #15, finding 5). The buckets slow
/// failures only: a key or address that keeps failing gets 429 (no answer
/// to learn from) instead of 401.
fn refuse(app: &AppState, subjects: Vec<Subject>, e: ApiError, unread: bool) -> Response {
    let response = if !matches!(e, ApiError::Unauthenticated(_)) {
        e.into_response()
    } else {
        let wait = subjects.iter().filter_map(|s| app.throttle.wait(s)).max();
        for subject in subjects {
            app.throttle.failed(subject);
        }
        match wait {
            Some(wait) => ApiError::Throttled(wait).into_response(),
            None => e.into_response(),
        }
    };
    if unread { crate::error::closing(response) } else { response }
}

/// The request says it has a body.
fn declares_body(parts: &Parts) -> bool {
    let length = header(parts, "content-length").map(|v| v.trim() != "0");
    length.unwrap_or_else(|| parts.headers.contains_key(http::header::TRANSFER_ENCODING))
}

/// The credentials a request presents, as far as its headers show them.
enum Presented {
    /// A valid token: its caller, whatever the body.
    Token(Caller),
    /// A signature by a known AK (or one its security token names), dated
    /// within the window; the signature itself covers the body, so the
    /// caller is known only once the body has been read.
    Signed { auth: Authorization, claims: Option<crate::sts::StsClaims> },
}

/// Everything about the credentials that does not need the body: a valid
/// token, or a known AK (or a valid security token for it) with its
/// `X-Sdk-Date` within the window, so a stranger cannot make the gateway
/// read a body at all.
fn before_body(app: &AppState, parts: &Parts) -> Result<Presented, ApiError> {
    if let Some(token) = header(parts, "x-auth-token") {
        return token_caller(app, token).map(Presented::Token);
    }
    let Some(authorization) = header(parts, "authorization") else {
        return Err(ApiError::Unauthenticated("x-auth-token not found".into()));
    };
    let auth = Authorization::parse(authorization)
        .map_err(|_| ApiError::Unauthenticated("verify aksk signature fail".into()))?;
    signing::check_date(&auth, &parts.headers, chrono::Utc::now()).map_err(|e| signature_refused(&auth, e))?;
    let claims = match header(parts, "x-security-token") {
        Some(token) => Some(security_claims(app, &auth, token)?),
        None if app.directory.snapshot().access_key(&auth.access_key).is_none() => {
            tracing::info!(access_key = %auth.access_key, "unknown access key");
            return Err(ApiError::Unauthenticated("Get secretKey failed".into()));
        }
        None => None,
    };
    Ok(Presented::Signed { auth, claims })
}

/// The peer's address and, for a signed request, its AK.
fn throttle_subjects(app: &AppState, parts: &Parts) -> Vec<Subject> {
    let mut subjects = Vec::with_capacity(2);
    if let Some(peer) = crate::connections::peer(parts) {
        subjects.push(Subject::Address(app.trusted_proxies.client(peer, &parts.headers)));
    }
    if let Some(auth) = header(parts, "authorization").and_then(|a| Authorization::parse(a).ok()) {
        subjects.push(Subject::Key(auth.access_key));
    }
    subjects
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The caller of a signed request whose body has been read: the signature
/// verified with the SK of its AK (read again from the directory, which may
/// have changed while the body arrived) or of its temporary credentials.
fn signed_caller(
    app: &AppState, parts: &Parts, auth: Authorization, claims: Option<crate::sts::StsClaims>, body: &Bytes,
) -> Result<Caller, ApiError> {
    let directory = app.directory.snapshot();
    let raw = RawRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
    };
    if let Some(claims) = claims {
        return temporary_caller(&directory, parts, &auth, claims, &raw);
    }
    let Some(credential) = directory.access_key(&auth.access_key) else {
        tracing::info!(access_key = %auth.access_key, "unknown access key");
        return Err(ApiError::Unauthenticated("Get secretKey failed".into()));
    };
    let signature = verify_signature(&auth, credential.secret.expose(), &raw)?;
    Ok(Caller {
        domain_id: credential.domain.id.clone(),
        user_id: credential.user.id.clone(),
        scoped_project: header(parts, "x-project-id").map(str::to_owned),
        signed: true,
        access_key: Some(auth.access_key),
        temporary: false,
        expires_ms: None,
        password_mark: None,
        signature: Some(signature),
    })
}

/// The caller of an `X-Auth-Token`, if the token is valid and its user,
/// domain, project and password are as they were when it was issued.
fn token_caller(app: &AppState, token: &str) -> Result<Caller, ApiError> {
    let directory = app.directory.snapshot();
    let claims = app.tokens.verify(token.trim(), common::now_ms()).map_err(|e| {
        ApiError::Unauthenticated(match e {
            TokenError::Invalid => "decrypt token fail".to_owned(),
            TokenError::Expired(at) => format!("token expires, expires_at: {at}"),
        })
    })?;
    // A token outlives nothing it was issued for: its user (and domain)
    // and its project must still exist and be enabled.
    if !still_valid(&directory, &claims.u, &claims.d, claims.p.as_deref()) {
        tracing::info!(user_id = %claims.u, "token of a disabled or deleted user or project");
        return Err(ApiError::Unauthenticated("token is no longer valid".into()));
    }
    if !same_password(&directory, &claims.u, &claims.pw) {
        tracing::info!(user_id = %claims.u, "token issued before a password change");
        return Err(ApiError::Unauthenticated("token is no longer valid".into()));
    }
    Ok(Caller {
        domain_id: claims.d,
        user_id: claims.u,
        scoped_project: claims.p,
        signed: false,
        access_key: None,
        temporary: false,
        expires_ms: Some(claims.exp),
        password_mark: Some(claims.pw),
        signature: None,
    })
}

/// The user's password is still the one `mark` was taken of.
fn same_password(directory: &Snapshot, user_id: &str, mark: &str) -> bool {
    directory.active_user(user_id).is_some_and(|(user, _)| crate::tokens::password_mark(&user.password_hash) == mark)
}

/// Credentials issued earlier (a token, temporary credentials) hold only
/// while their user and domain are enabled and, when scoped, their project.
fn still_valid(directory: &Snapshot, user_id: &str, domain_id: &str, project_id: Option<&str>) -> bool {
    directory.active_user(user_id).is_some_and(|(user, _)| user.domain_id == domain_id)
        && project_id.is_none_or(|p| directory.domain_owns_project(domain_id, p))
}

/// Checks a request's signature with `secret_key`; a failure is logged with
/// the AK (never the SK) and answered in the gateway's words.
/// Returns the signature's single use, for the replay guard.
fn verify_signature(auth: &Authorization, secret_key: &str, raw: &RawRequest<'_>) -> Result<SignatureUse, ApiError> {
    let signed_at = signing::verify(auth, secret_key.as_bytes(), raw, chrono::Utc::now())
        .map_err(|e| signature_refused(auth, e))?;
    Ok(SignatureUse::new(auth, signed_at))
}

/// A signature that failed, logged with the AK (never the SK) and answered
/// in the gateway's words.
fn signature_refused(auth: &Authorization, e: signing::SignatureError) -> ApiError {
    tracing::info!(access_key = %auth.access_key, error = %e, "signature rejected");
    ApiError::Unauthenticated(match e {
        signing::SignatureError::Expired => "calc ak sk signature fail:signature expired".to_owned(),
        other => other.to_string(),
    })
}

/// The claims of a request's security token, if it opens, names the AK
/// that signed, and is itself signed.
fn security_claims(app: &AppState, auth: &Authorization, token: &str) -> Result<crate::sts::StsClaims, ApiError> {
    let claims = crate::sts::open(app.directory.sealer(), token.trim(), common::now_ms()).map_err(|e| {
        tracing::info!(access_key = %auth.access_key, error = %e, "security token rejected");
        ApiError::Unauthenticated(e.to_string())
    })?;
    if claims.ak != auth.access_key {
        tracing::info!(access_key = %auth.access_key, "security token of another access key");
        return Err(ApiError::Unauthenticated("the security token does not belong to this access key".into()));
    }
    // auth.md §1.7: the token is part of what the signature covers, so it
    // cannot be swapped under a captured signature (issue #15, finding 10).
    if !auth.signed_headers.iter().any(|h| h == "x-security-token") {
        tracing::info!(access_key = %auth.access_key, "security token not among the signed headers");
        return Err(ApiError::Unauthenticated("X-Security-Token must be a signed header".into()));
    }
    Ok(claims)
}

/// A request signed with temporary credentials: the security token names
/// the AK it belongs to and carries its SK (auth.md §1.9).
fn temporary_caller(
    directory: &Snapshot, parts: &Parts, auth: &Authorization, claims: crate::sts::StsClaims, raw: &RawRequest<'_>,
) -> Result<Caller, ApiError> {
    if !still_valid(directory, &claims.u, &claims.d, claims.p.as_deref()) {
        return Err(ApiError::Unauthenticated("token is no longer valid".into()));
    }
    // Minted with a token: they die with its password, like the token.
    if claims.pw.as_deref().is_some_and(|mark| !same_password(directory, &claims.u, mark)) {
        return Err(ApiError::Unauthenticated("token is no longer valid".into()));
    }
    // Minted with a permanent access key: they die with it (deleted or
    // disabled), as they outlived it before (issue #15, finding 4).
    if claims.pak.as_deref().is_some_and(|parent| directory.access_key(parent).is_none()) {
        tracing::info!(access_key = %auth.access_key, "temporary credentials of a removed access key");
        return Err(ApiError::Unauthenticated("token is no longer valid".into()));
    }
    let signature = verify_signature(auth, claims.sk.expose(), raw)?;
    Ok(Caller {
        domain_id: claims.d,
        user_id: claims.u,
        // Scoped to the token's project, or (domain scope) as X-Project-Id says.
        scoped_project: claims.p.or_else(|| header(parts, "x-project-id").map(str::to_owned)),
        signed: true,
        access_key: Some(claims.ak),
        temporary: true,
        expires_ms: Some(claims.exp),
        password_mark: claims.pw,
        signature: Some(signature),
    })
}
