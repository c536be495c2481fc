//! The replay defence (issue #15, finding 10; ARCHITECTURE.md, "Replay").
//!
//! A signature is valid for 15 minutes either side of its `X-Sdk-Date`
//! (auth.md), so a captured signed request could be sent again within that
//! window. For a one-shot route (one that changes state: every route but
//! GETs and the few POSTs marked replayable), the guard records the
//! signature's digest and first use in the identity store before the
//! operation runs; the store's primary key makes every replica agree on
//! that first use, and the store's clock (Postgres's, shared by every
//! replica) measures how long ago it was. A use more than
//! [`REPEAT_GRACE_MS`] later gets 401 and changes nothing. A route that would act again on a repeat (it creates a
//! version or rotates:
//! `crate::routes::ApiRoute::acts_each_time`) gets no grace at all: only
//! the first use runs, by the store's word, not by a clock (issue #40:
//! a create-secret-version repeated within the grace made two versions).
//! If that first use fails, it changed nothing, and the signature is
//! forgotten: a client that retries at once (in the same second, so with
//! the same signature) is served.
//! Clients lose nothing: the official SDKs and the Terraform provider sign
//! each attempt afresh (a retry a second later has another date, so
//! another signature).
//!
//! Recording is a durable write before the operation runs, grouped with
//! concurrent requests' by the [`Ledger`](crate::ledger::Ledger).
//!
//! Token-authenticated requests are not guarded: a bearer token has no
//! per-request signature to remember; TLS is their protection.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use identity::{SignatureUse, directory::Directory};
use tokio_util::sync::CancellationToken;

use crate::{caller::Caller, error::ApiError, ledger::NotRecorded, state::AppState};

/// How often expired signatures are forgotten.
pub const FORGET_INTERVAL: Duration = Duration::from_secs(60);

/// How long after its first use a signature is still served. A client that
/// sends the same request twice in one second (the official SDK suite's
/// "disable twice, expect KMS.1301", a script retrying at once) signs it
/// identically, since `X-Sdk-Date` has one-second resolution; such repeats
/// arrive within moments and get the answer the API documents. A replay
/// does harm by acting later, after the owner changed the state (re-enabled
/// the key a captured request disabled); later than this it gets 401.
pub const REPEAT_GRACE_MS: i64 = 2_000;

/// What the guard of one route needs.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The gateway's state.
    pub app: Arc<AppState>,
    /// A repeat within [`REPEAT_GRACE_MS`] is served (the route's repeat
    /// does no more than the first did); `false` for routes that act each
    /// time.
    pub grace: bool,
}

/// Route layer of one-shot routes: serves a signature's first use, and a
/// repeat within [`REPEAT_GRACE_MS`] where the route allows it; refuses
/// the rest.
pub async fn guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let Some(used) = req.extensions().get::<Caller>().and_then(|caller| caller.signature) else {
        return next.run(req).await;
    };
    let now_ms = common::now_ms();
    let recorded = guard.app.ledger.record(SignatureUse { digest: used.digest, now_ms, expires_ms: used.expires_ms });
    match recorded.await.map(|first| (first.this_one, first.age_ms)) {
        Ok((true, _)) if guard.grace => next.run(req).await,
        Ok((true, _)) => {
            let response = next.run(req).await;
            let failed = !response.status().is_success();
            if failed && let Err(e) = guard.app.directory.store().forget_signature(&used.digest).await {
                tracing::warn!(error = %e, "forgetting a failed request's signature failed; a retry signs afresh");
            }
            response
        }
        // The age is the store's measure (one clock for every replica).
        Ok((false, age_ms)) if guard.grace && age_ms <= REPEAT_GRACE_MS => next.run(req).await,
        Ok((false, age_ms)) => {
            let caller = req.extensions().get::<Caller>().and_then(|c| c.access_key.clone()).unwrap_or_default();
            tracing::warn!(access_key = %caller, path = %req.uri().path(), first_used_ms_ago = age_ms,
                "replayed signed request refused");
            ApiError::Replayed.into_response()
        }
        // The writer logged why.
        Err(NotRecorded) => ApiError::StoreUnavailable.into_response(),
    }
}

/// Forgets expired signatures every [`FORGET_INTERVAL`] until `shutdown`,
/// so the table holds about 16 minutes of one-shot requests.
pub fn spawn_forgetting(directory: Arc<Directory>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FORGET_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match directory.store().forget_used_signatures(common::now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(forgotten = n, "expired request signatures forgotten"),
                Err(e) => tracing::warn!(error = %e, "forgetting request signatures failed"),
            }
        }
    });
}
