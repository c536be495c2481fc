//! Group commit: concurrent callers' writes gathered into one statement and
//! one commit, each caller answered after the commit that holds its write.
//!
//! A durable commit costs a WAL flush and a round trip whatever it holds,
//! so under load one commit per caller is what bounds write throughput
//! (BENCHMARKS.md, issue #16). A [`Group`] has a bounded queue and a few
//! writers; each writer takes what is queued (up to [`Shape::batch`]) and
//! hands it to the write function, which returns one outcome per item.
//! Nothing waits for a batch to fill: a lone item is written at once, and
//! under load a batch is whatever arrived while the previous write was in
//! flight. Used by the gateway's replay ledger, kms-service's create-key
//! and csms-service's create-secret.

use std::{cmp::Ordering, future::Future, sync::Arc};

use tokio::sync::{Mutex, mpsc, oneshot};

/// How a [`Group`] is sized.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Writes in flight at once: one would make every item wait for the
    /// write before its own; a few keep a commit in flight while the next
    /// batch gathers.
    pub writers: usize,
    /// Items waiting for a writer, at most (the memory stays bounded while
    /// the database is slow).
    pub queue: usize,
    /// Items one write takes, at most.
    pub batch: usize,
}

/// The services' grouped creates (kms-service's create-key, csms-service's
/// create-secret): beyond a queue of 1,024 a create takes its one-row
/// path; a replica has at most `writers × batch` = 96 grouped creates in
/// flight, plus its pool size of one-row ones: 112 by default, well inside
/// each service's `QUOTA_HEADROOM` (1,024).
pub const CREATES: Shape = Shape { writers: 3, queue: 1024, batch: 32 };

struct Pending<T, O> {
    item: T,
    reply: oneshot::Sender<O>,
}

/// A queue of items of type `T`, written in batches, each answered with an
/// outcome `O`. Cheap to clone; its writers end when the last clone is
/// dropped.
pub struct Group<T, O> {
    queue: mpsc::Sender<Pending<T, O>>,
}

impl<T, O> Clone for Group<T, O> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

impl<T, O> std::fmt::Debug for Group<T, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("room", &self.queue.capacity()).finish_non_exhaustive()
    }
}

impl<T: Send + 'static, O: Send + 'static> Group<T, O> {
    /// Starts `shape.writers` writers (on the current tokio runtime). Each
    /// sorts its batch by `order` (a lock order: two batches that meet on a
    /// row then wait for each other in one direction only) and calls
    /// `write`, which must return the batch's outcomes in the order it was
    /// given; an item it returns no outcome for is answered `None`.
    pub fn start<F, Fut>(shape: Shape, order: fn(&T, &T) -> Ordering, write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send,
    {
        let (queue, rx) = mpsc::channel(shape.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..shape.writers.max(1) {
            let (rx, write) = (rx.clone(), write.clone());
            tokio::spawn(async move {
                let mut batch: Vec<Pending<T, O>> = Vec::with_capacity(shape.batch);
                loop {
                    // One writer at a time takes what is queued.
                    if rx.lock().await.recv_many(&mut batch, shape.batch.max(1)).await == 0 {
                        return;
                    }
                    batch.sort_by(|a, b| order(&a.item, &b.item));
                    let (items, replies): (Vec<T>, Vec<_>) = batch.drain(..).map(|p| (p.item, p.reply)).unzip();
                    for (reply, outcome) in replies.into_iter().zip(write(items).await) {
                        let _ = reply.send(outcome);
                    }
                }
            });
        }
        Self { queue }
    }

    /// Queues `item`, waiting for room, and answers its write's outcome;
    /// `None` when the group has stopped or gave no outcome for it.
    pub async fn run(&self, item: T) -> Option<O> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { item, reply }).await.ok()?;
        answer.await.ok()
    }

    /// Queues `item` only if there is room now; `Err(item)` back when the
    /// queue is full or the group stopped, for the caller's own path.
    pub async fn try_run(&self, item: T) -> Result<Option<O>, T> {
        let (reply, answer) = oneshot::channel();
        if let Err(e) = self.queue.try_send(Pending { item, reply }) {
            let (mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p)) = e;
            return Err(p.item);
        }
        Ok(answer.await.ok())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

    use super::*;

    #[tokio::test]
    async fn concurrent_items_share_writes_and_get_their_own_outcomes() {
        let writes = Arc::new(AtomicUsize::new(0));
        let counter = writes.clone();
        let group = Group::start(Shape { writers: 1, queue: 64, batch: 16 }, u32::cmp, move |items: Vec<u32>| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, AtomicOrdering::Relaxed);
                // Sorted before the write: a lock order.
                assert!(items.windows(2).all(|w| w[0] <= w[1]));
                tokio::task::yield_now().await;
                items.into_iter().map(|n| n * 2).collect::<Vec<_>>()
            }
        });
        let answers = futures::future::join_all((0..48u32).rev().map(|n| {
            let group = group.clone();
            async move { (n, group.run(n).await) }
        }))
        .await;
        for (n, answer) in answers {
            assert_eq!(answer, Some(n * 2));
        }
        // 48 items through batches of ≤ 16.
        let n = writes.load(AtomicOrdering::Relaxed);
        assert!((3..48).contains(&n), "{n} writes");
    }

    #[tokio::test]
    async fn missing_outcomes_answer_none_and_a_full_queue_gives_the_item_back() {
        let group = Group::start(Shape { writers: 1, queue: 1, batch: 1 }, u32::cmp, |items: Vec<u32>| async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            items.into_iter().filter(|n| n % 2 == 0).map(|n| n + 1).collect::<Vec<_>>()
        });
        assert_eq!(group.run(2).await, Some(3));
        assert_eq!(group.run(1).await, None);
        // One in the writer, one queued, the third refused at once.
        let (a, b) = (group.clone(), group.clone());
        let first = tokio::spawn(async move { a.run(4).await });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let second = tokio::spawn(async move { b.try_run(6).await });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert_eq!(group.try_run(8).await, Err(8));
        assert_eq!(first.await.unwrap(), Some(5));
        assert_eq!(second.await.unwrap(), Ok(Some(7)));
    }
}
