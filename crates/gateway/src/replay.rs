//! The replay defence (issue #15, finding 10; ARCHITECTURE.md, "Replay").
//!
//! A signature is valid for 15 minutes either side of its `X-Sdk-Date`
//! (auth.md), so a captured signed request could be sent again within that
//! window. For a one-shot route (one that changes state: every route but
//! GETs and the few POSTs marked replayable), the guard records the
//! signature's digest and first use in the identity store before the
//! operation runs; the store's primary key makes every replica agree on
//! that first use. A use more than [`REPEAT_GRACE_MS`] later gets 401 and
//! changes nothing. Clients lose nothing: the official SDKs and the
//! Terraform provider sign each attempt afresh (a retry a second later has
//! another date, so another signature).
//!
//! Recording is a durable write before the operation runs, so it is
//! grouped: concurrent requests' uses go through the [`Ledger`], whose
//! writers each take what is queued (up to [`BATCH`]) and record it in one
//! statement and one commit. Nothing waits for a batch to fill: a lone
//! request is written at once, and under load the batch is whatever
//! arrived while the previous write was in flight.
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
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{caller::Caller, error::ApiError, state::AppState};

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

/// Most uses one write records.
pub const BATCH: usize = 128;

/// Uses waiting for a writer, at most (then a request waits to queue: the
/// memory stays bounded while the database is slow).
const QUEUE: usize = 4 * 1024;

/// Writes in flight at once: one would make every request wait for the
/// write before its own; a few keep a commit in flight while the next batch
/// gathers. One less than the identity pool's default four connections, so
/// that the directory's refresh and logins always find one.
const WRITERS: usize = 3;

/// The gateway's queue of signature uses to record (see the module docs).
/// Cheap to clone; its writers end when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Ledger {
    queue: mpsc::Sender<Pending>,
}

#[derive(Debug)]
struct Pending {
    used: SignatureUse,
    first_use: oneshot::Sender<Result<i64, NotRecorded>>,
}

/// A use could not be recorded (the writer logged why); the request is
/// refused, since a replay could not be told from a first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRecorded;

impl Ledger {
    /// Starts the writers, recording into `directory`'s store.
    pub fn start(directory: Arc<Directory>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WRITERS {
            let (rx, directory) = (rx.clone(), directory.clone());
            tokio::spawn(async move {
                let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
                loop {
                    // One writer at a time takes what is queued.
                    if rx.lock().await.recv_many(&mut batch, BATCH).await == 0 {
                        return;
                    }
                    let uses: Vec<SignatureUse> = batch.iter().map(|p| p.used).collect();
                    match directory.store().use_signatures(&uses).await {
                        Ok(firsts) => {
                            for (p, first_ms) in batch.drain(..).zip(firsts) {
                                let _ = p.first_use.send(Ok(first_ms));
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, uses = batch.len(), "cannot record request signatures");
                            for p in batch.drain(..) {
                                let _ = p.first_use.send(Err(NotRecorded));
                            }
                        }
                    }
                }
            });
        }
        Self { queue }
    }

    /// Records `used` (durably, with whatever else is queued) and returns
    /// its signature's first use; `Err` when it could not be recorded.
    pub async fn record(&self, used: SignatureUse) -> Result<i64, NotRecorded> {
        let (first_use, answer) = oneshot::channel();
        self.queue.send(Pending { used, first_use }).await.map_err(|_| NotRecorded)?;
        answer.await.map_err(|_| NotRecorded)?
    }
}

/// Route layer of one-shot routes: serves a signature within
/// [`REPEAT_GRACE_MS`] of its first use, and refuses it after.
pub async fn guard(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(used) = req.extensions().get::<Caller>().and_then(|caller| caller.signature) else {
        return next.run(req).await;
    };
    let now_ms = common::now_ms();
    match app.ledger.record(SignatureUse { digest: used.digest, now_ms, expires_ms: used.expires_ms }).await {
        Ok(first_ms) if now_ms - first_ms <= REPEAT_GRACE_MS => next.run(req).await,
        Ok(first_ms) => {
            let caller = req.extensions().get::<Caller>().and_then(|c| c.access_key.clone()).unwrap_or_default();
            tracing::warn!(access_key = %caller, path = %req.uri().path(), first_used_ms = first_ms,
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
