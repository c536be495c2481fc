//! Authentication of every API request (AK/SK signature or `X-Auth-Token`)
//! and authorisation of the path's project.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::request::Parts;
use identity::directory::Snapshot;

use crate::{
    caller::{Caller, SignatureUse},
    error::ApiError,
    signing::{self, Authorization, RawRequest},
    state::AppState,
    throttle::Subject,
    tokens::TokenError,
};

/// Largest accepted body: the API gateway's 12 MB limit for signed requests.
pub const MAX_BODY_BYTES: usize = 12 * 1024 * 1024;

/// Bytes of request bodies buffered, across every connection, before their
/// requests are authenticated: a flood of large unsigned (or wrongly signed)
/// bodies waits for room or is refused, instead of growing the heap.
pub const UNAUTHENTICATED_BODY_BUDGET: usize = 4 * MAX_BODY_BYTES;

static BODY_BUDGET: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(UNAUTHENTICATED_BODY_BUDGET);

/// Reads a body of at most [`MAX_BODY_BYTES`] within the body timeout,
/// holding its share of [`UNAUTHENTICATED_BODY_BUDGET`] (what the
/// `Content-Length` declares, or the limit without one) until the caller
/// drops the permit.
async fn read_body(
    app: &AppState,
    parts: &Parts,
    body: Body,
) -> Result<(Bytes, tokio::sync::SemaphorePermit<'static>), ApiError> {
    let declared = header(parts, "content-length").map(|v| v.trim().parse::<usize>().map_err(|_| ApiError::TooLarge));
    let limit = declared.transpose()?.unwrap_or(MAX_BODY_BYTES);
    if limit > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge);
    }
    let room = tokio::time::timeout(std::time::Duration::from_secs(1), BODY_BUDGET.acquire_many(limit as u32));
    let permit = room.await.ok().and_then(Result::ok).ok_or(ApiError::Throttled(std::time::Duration::from_secs(1)))?;
    let bytes = tokio::time::timeout(app.body_timeout, collect(body, declared_len(parts), limit))
        .await
        .map_err(|_| ApiError::SlowBody)??;
    Ok((bytes, permit))
}

fn declared_len(parts: &Parts) -> Option<usize> {
    header(parts, "content-length").and_then(|v| v.trim().parse().ok())
}

/// Bodies up to this size are read into the heap; larger ones into a
/// mapping of their own.
const HEAP_BODY_BYTES: usize = 64 * 1024;

/// The body's bytes, read once into one buffer.
///
/// Small bodies (every hot-path request) go into a heap buffer of the
/// declared size. Larger ones go into an anonymous mapping of the declared
/// size (or the limit, for a chunked body): the kernel backs only the
/// pages written and takes them all back when the request is done. On the
/// heap, glibc kept freed 12 MB buffers in its arenas, and a flood of them
/// (each within the body budget) left the peak 100 MiB past the budget and
/// climbing; axum's `to_bytes` also held each body twice while joining its
/// frames (`tests/dev_binary.rs`, `floods_leave_peak_memory_bounded`).
async fn collect(body: Body, declared: Option<usize>, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let size = declared.unwrap_or(limit).min(limit);
    if size <= HEAP_BODY_BYTES {
        let mut buffer = bytes::BytesMut::with_capacity(size);
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.map_err(|_| ApiError::TooLarge)?.data_ref() {
                if buffer.len() + data.len() > size {
                    return Err(ApiError::TooLarge);
                }
                buffer.extend_from_slice(data);
            }
        }
        return Ok(buffer.freeze());
    }
    let mut mapping = memmap2::MmapMut::map_anon(size).map_err(|_| ApiError::TooLarge)?;
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.map_err(|_| ApiError::TooLarge)?.data_ref() {
            let end = len + data.len();
            if end > size {
                return Err(ApiError::TooLarge);
            }
            mapping[len..end].copy_from_slice(data);
            len = end;
        }
    }
    Ok(Bytes::from_owner(MappedBody { mapping, len }))
}

/// A body in its own mapping, `len` bytes of it written.
struct MappedBody {
    mapping: memmap2::MmapMut,
    len: usize,
}

impl AsRef<[u8]> for MappedBody {
    fn as_ref(&self) -> &[u8] {
        &self.mapping[..self.len]
    }
}

/// Middleware: buffers the body (refusing more than 12 MB, within the body
/// timeout and the unauthenticated budget), authenticates and stores the
/// [`Caller`] in the request extensions.
pub async fn authenticate(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let subjects = throttle_subjects(&parts);
    let (bytes, permit) = match read_body(&app, &parts, body).await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let identified = identify(&app, &parts, &bytes);
    drop(permit);
    match identified {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        // Valid credentials are never throttled: refusing them by the AK's
        // or the address's bucket let anyone who knew an AK, or shared a
        // proxy's address, lock its owner out (issue #15, finding 5). The
        // buckets slow failures only: a key or address that keeps failing
        // gets 429 (no answer to learn from) instead of 401. What a failure
        // costs before that is bounded by the body budget and timeouts.
        Err(e) => {
            if !matches!(e, ApiError::Unauthenticated(_)) {
                return e.into_response();
            }
            let wait = subjects.iter().filter_map(|s| app.throttle.wait(s)).max();
            for subject in subjects {
                app.throttle.failed(subject);
            }
            match wait {
                Some(wait) => ApiError::Throttled(wait).into_response(),
                None => e.into_response(),
            }
        }
    }
}

/// The peer's address and, for a signed request, its AK.
fn throttle_subjects(parts: &Parts) -> Vec<Subject> {
    let mut subjects = Vec::with_capacity(2);
    if let Some(axum::extract::ConnectInfo(peer)) =
        parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        subjects.push(Subject::Address(peer.ip()));
    }
    if let Some(auth) = header(parts, "authorization").and_then(|a| Authorization::parse(a).ok()) {
        subjects.push(Subject::Key(auth.access_key));
    }
    subjects
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn identify(app: &AppState, parts: &Parts, body: &Bytes) -> Result<Caller, ApiError> {
    let directory = app.directory.snapshot();
    if let Some(token) = header(parts, "x-auth-token") {
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
        return Ok(Caller {
            domain_id: claims.d,
            user_id: claims.u,
            scoped_project: claims.p,
            signed: false,
            access_key: None,
            temporary: false,
            expires_ms: Some(claims.exp),
            password_mark: Some(claims.pw),
            signature: None,
        });
    }
    let Some(authorization) = header(parts, "authorization") else {
        return Err(ApiError::Unauthenticated("x-auth-token not found".into()));
    };
    let auth = Authorization::parse(authorization)
        .map_err(|_| ApiError::Unauthenticated("verify aksk signature fail".into()))?;
    let raw = RawRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
    };
    if let Some(token) = header(parts, "x-security-token") {
        return temporary_caller(app, &directory, parts, &auth, token, &raw);
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
    let signed_at = signing::verify(auth, secret_key.as_bytes(), raw, chrono::Utc::now()).map_err(|e| {
        tracing::info!(access_key = %auth.access_key, error = %e, "signature rejected");
        ApiError::Unauthenticated(match e {
            signing::SignatureError::Expired => "calc ak sk signature fail:signature expired".to_owned(),
            other => other.to_string(),
        })
    })?;
    Ok(SignatureUse::new(auth, signed_at))
}

/// A request signed with temporary credentials: the security token names
/// the AK it belongs to and carries its SK (auth.md §1.9).
fn temporary_caller(
    app: &AppState,
    directory: &Snapshot,
    parts: &Parts,
    auth: &Authorization,
    token: &str,
    raw: &RawRequest<'_>,
) -> Result<Caller, ApiError> {
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
