//! The queue of one-shot requests' signature uses to record (see
//! `replay`). Recording is a durable write before the operation runs, so
//! it is grouped: the [`Ledger`]'s writers each take what is queued (up to
//! [`BATCH`]) and record it in one statement and one commit, and each
//! request waits for the commit that holds its use. Nothing waits for a
//! batch to fill: a lone request is written at once, and under load the
//! batch is whatever arrived while the previous write was in flight.

use std::sync::Arc;

use common::group::{Group, Shape};
use identity::{FirstUse, SignatureUse, directory::Directory};

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
    group: Group<SignatureUse, Result<FirstUse, NotRecorded>>,
}

/// A use could not be recorded (the writer logged why); the request is
/// refused, since a replay could not be told from a first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRecorded;

impl Ledger {
    /// Starts the writers, recording into `directory`'s store.
    pub fn start(directory: Arc<Directory>) -> Self {
        let shape = Shape { writers: WRITERS, queue: QUEUE, batch: BATCH };
        // The store's statement orders the rows itself (by digest).
        let group = Group::start(
            shape,
            |_, _| std::cmp::Ordering::Equal,
            move |uses: Vec<SignatureUse>| {
                let directory = directory.clone();
                async move {
                    match directory.store().use_signatures(&uses).await {
                        Ok(firsts) => firsts.into_iter().map(Ok).collect(),
                        Err(e) => {
                            tracing::error!(error = %e, uses = uses.len(), "cannot record request signatures");
                            vec![Err(NotRecorded); uses.len()]
                        }
                    }
                }
            },
        );
        Self { group }
    }

    /// Records `used` (durably, with whatever else is queued) and returns
    /// its signature's first use; `Err` when it could not be recorded.
    pub async fn record(&self, used: SignatureUse) -> Result<FirstUse, NotRecorded> {
        self.group.run(used).await.ok_or(NotRecorded)?
    }
}
