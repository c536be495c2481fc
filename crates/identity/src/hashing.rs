//! The password-hashing threads, shared fairly between callers.
//!
//! argon2id takes 19 MiB and tens of milliseconds per hash by design, so
//! password checks run on a few dedicated threads (one per core, at most
//! [`MAX_THREADS`]), each with one reused working buffer allocated when the
//! pool starts: the memory is paid once, up front, never per login.
//!
//! Waiting jobs are queued per *lane* (the gateway uses the client's address
//! prefix) and the threads take one job from each waiting lane in turn, so
//! a flood from one network waits behind itself and a login from elsewhere
//! runs after at most one job per other waiting lane. Both queues are
//! bounded: [`PER_LANE_QUEUE`] jobs per lane, [`TOTAL_QUEUE`] in all; more
//! are refused at once ([`HashingBusy`]) instead of queueing without bound.
//! A job whose caller has gone (the client hung up) is skipped, not run.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Condvar, Mutex, OnceLock},
};

/// Most hashing threads, whatever the core count: each holds 19 MiB.
pub const MAX_THREADS: usize = 4;

/// Jobs that may wait in one lane.
pub const PER_LANE_QUEUE: usize = 8;

/// Jobs that may wait in all lanes together.
pub const TOTAL_QUEUE: usize = 64;

/// The hashing queues are full: answer "try later" rather than wait.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password checks are waiting")]
pub struct HashingBusy;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queues {
    lanes: HashMap<u64, VecDeque<Job>>,
    /// Lanes with waiting jobs, in the order they are served.
    order: VecDeque<u64>,
    waiting: usize,
}

impl Queues {
    fn push(&mut self, lane: u64, job: Job) -> Result<(), HashingBusy> {
        if self.waiting >= TOTAL_QUEUE {
            return Err(HashingBusy);
        }
        let queue = self.lanes.entry(lane).or_default();
        if queue.len() >= PER_LANE_QUEUE {
            return Err(HashingBusy);
        }
        if queue.is_empty() {
            self.order.push_back(lane);
        }
        queue.push_back(job);
        self.waiting += 1;
        Ok(())
    }

    /// The next job: the first of the lane whose turn it is, which then
    /// goes to the back of the order if it has more.
    fn pop(&mut self) -> Option<Job> {
        let lane = self.order.pop_front()?;
        let queue = self.lanes.get_mut(&lane).expect("an ordered lane has a queue");
        let job = queue.pop_front().expect("an ordered lane has a job");
        if queue.is_empty() {
            self.lanes.remove(&lane);
        } else {
            self.order.push_back(lane);
        }
        self.waiting -= 1;
        Some(job)
    }
}

struct Pool {
    queues: Mutex<Queues>,
    ready: Condvar,
}

/// How many hashing threads this machine gets: one per core, at most
/// [`MAX_THREADS`].
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from).min(MAX_THREADS)
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let pool: &'static Pool =
            Box::leak(Box::new(Pool { queues: Mutex::new(Queues::default()), ready: Condvar::new() }));
        for i in 0..threads() {
            std::thread::Builder::new()
                .name(format!("password-hashing-{i}"))
                .spawn(move || {
                    crate::seal::reserve_hashing_memory();
                    loop {
                        let job = {
                            let mut queues = pool.queues.lock().expect("hashing queue lock");
                            loop {
                                if let Some(job) = queues.pop() {
                                    break job;
                                }
                                queues = pool.ready.wait(queues).expect("hashing queue lock");
                            }
                        };
                        job();
                    }
                })
                .expect("spawn a password hashing thread");
        }
        pool
    })
}

/// Starts the hashing threads (and allocates their working memory) now
/// rather than at the first login.
pub fn start() {
    pool();
}

/// Runs `job` on a hashing thread when `lane`'s turn comes.
pub async fn run<R: Send + 'static>(lane: u64, job: impl FnOnce() -> R + Send + 'static) -> Result<R, HashingBusy> {
    let pool = pool();
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        if !done.is_closed() {
            let _ = done.send(job());
        }
    });
    pool.queues.lock().expect("hashing queue lock").push(lane, job)?;
    pool.ready.notify_one();
    // Dropped only if the job was skipped, which needs this future gone.
    result.await.map_err(|_| HashingBusy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_take_turns_and_queues_are_bounded() {
        let mut queues = Queues::default();
        let ran = std::sync::Arc::new(Mutex::new(Vec::new()));
        let job = |name: &'static str| -> Job {
            let ran = ran.clone();
            Box::new(move || ran.lock().unwrap().push(name))
        };
        for _ in 0..PER_LANE_QUEUE {
            queues.push(1, job("flood")).unwrap();
        }
        assert!(queues.push(1, job("flood")).is_err(), "a lane holds at most PER_LANE_QUEUE");
        queues.push(2, job("other")).unwrap();
        queues.push(3, job("third")).unwrap();
        while let Some(job) = queues.pop() {
            job();
        }
        let ran = ran.lock().unwrap();
        assert_eq!(&ran[..3], ["flood", "other", "third"], "one job of each waiting lane in turn");
        assert_eq!(ran.len(), PER_LANE_QUEUE + 2);
        assert!(queues.lanes.is_empty() && queues.order.is_empty() && queues.waiting == 0);
    }

    #[test]
    fn the_total_is_bounded_across_lanes() {
        let mut queues = Queues::default();
        for lane in 0..TOTAL_QUEUE as u64 {
            queues.push(lane, Box::new(|| ())).unwrap();
        }
        assert!(queues.push(u64::MAX, Box::new(|| ())).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_lane_refuses_at_once_and_abandoned_jobs_are_skipped() {
        // Hold every thread, then fill one lane behind them.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Arc::new(Mutex::new(hold));
        let running: Vec<_> = (0..threads() as u64)
            .map(|lane| {
                let hold = hold.clone();
                tokio::spawn(run(1_000 + lane, move || hold.lock().unwrap().recv().ok()))
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for _ in 0..PER_LANE_QUEUE {
            let ran = ran.clone();
            waiting.push(tokio::spawn(run(99, move || ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst))));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(run(99, || ()).await.is_err(), "a full lane refuses at once");
        // Callers that give up leave jobs that never run.
        waiting.drain(..).for_each(|task| task.abort());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        for _ in &running {
            release.send(()).unwrap();
        }
        for task in running {
            task.await.unwrap().unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(run(99, || 7).await.unwrap(), 7, "the lane is served again");
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0, "abandoned jobs were skipped");
    }

    #[tokio::test]
    async fn jobs_run_and_answer() {
        assert_eq!(run(7, || 6 * 7).await.unwrap(), 42);
    }
}
