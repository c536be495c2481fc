//! The load generator: fixed concurrency, one keep-alive HTTP/1.1
//! connection per worker, every request signed as the official SDK signs it
//! (the signing cost is the client's), every response checked.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

pub use client::{Req, Signer, sign};

/// Makes the n-th request of a run.
pub type Gen = Arc<dyn Fn(u64) -> Req + Send + Sync>;
/// Accepts a response (status, body).
pub type Check = Arc<dyn Fn(u16, &[u8]) -> bool + Send + Sync>;

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Successful requests in the timed phase.
    pub ok: u64,
    /// Failed requests (bad status, bad body, transport errors) in the timed phase.
    pub failed: u64,
    /// Latency of successful timed requests, microseconds.
    pub latency_us: Histogram<u64>,
    /// Length of the timed phase.
    pub elapsed: Duration,
    /// The first failure, for the report.
    pub first_failure: Option<String>,
}

/// One request of a mixed run: who signs it (an index into the run's
/// signers), what it is, and how its response is checked.
pub struct Step {
    /// Index of the signer.
    pub signer: usize,
    /// The request.
    pub req: Req,
    /// Its check.
    pub check: Check,
}

/// Makes the n-th step of a mixed run.
pub type Plan = Arc<dyn Fn(u64) -> Step + Send + Sync>;

/// Drives `concurrency` workers against `host` for `warmup + duration`;
/// only the timed phase is recorded.
pub async fn run(
    host: &str, signer: &Signer, concurrency: usize, warmup: Duration, duration: Duration, make: Gen, check: Check,
) -> Outcome {
    let plan: Plan = Arc::new(move |n| Step { signer: 0, req: make(n), check: check.clone() });
    run_plan(host, Arc::new(vec![signer.clone()]), concurrency, warmup, duration, plan).await
}

/// As [`run`], each request made, signed and checked as `plan` says.
pub async fn run_plan(
    host: &str, signers: Arc<Vec<Signer>>, concurrency: usize, warmup: Duration, duration: Duration, plan: Plan,
) -> Outcome {
    let sequence = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let timed_from = start + warmup;
    let end = timed_from + duration;
    let workers = (0..concurrency).map(|_| {
        let (plan, sequence, signers, host) = (plan.clone(), sequence.clone(), signers.clone(), host.to_owned());
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let (mut ok, mut failed, mut first_failure) = (0u64, 0u64, None);
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let Step { signer, req, check } = plan(sequence.fetch_add(1, Ordering::Relaxed));
                let headers = sign(&signers[signer], &host, &req);
                let sent = Instant::now();
                let result = client
                    .request(req.method.clone(), format!("http://{host}{}", req.path))
                    .headers(headers)
                    .body(req.body)
                    .send()
                    .await;
                let verdict = match result {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match response.bytes().await {
                            Ok(body) if check(status, &body) => Ok(()),
                            Ok(body) => {
                                Err(format!("{status} {}", String::from_utf8_lossy(&body[..body.len().min(300)])))
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let took = sent.elapsed();
                if sent < timed_from {
                    continue;
                }
                match verdict {
                    Ok(()) => {
                        ok += 1;
                        let _ = hist.record(took.as_micros().max(1) as u64);
                    }
                    Err(e) => {
                        failed += 1;
                        first_failure.get_or_insert(e);
                    }
                }
            }
            (ok, failed, hist, first_failure)
        })
    });
    let results = futures::future::join_all(workers).await;
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let (mut ok, mut failed, mut first_failure) = (0, 0, None);
    for (o, f, h, e) in results.into_iter().flatten() {
        ok += o;
        failed += f;
        latency_us.add(h).expect("same bounds");
        if first_failure.is_none() {
            first_failure = e;
        }
    }
    Outcome { ok, failed, latency_us, elapsed: duration, first_failure }
}

/// The database baseline: `concurrency` tasks doing single-row INSERTs into
/// the same Postgres for `duration` (after `warmup`).
pub async fn insert_loop(
    pool: &sqlx::PgPool, concurrency: usize, warmup: Duration, duration: Duration,
) -> anyhow::Result<Outcome> {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_baseline (id TEXT PRIMARY KEY, created BIGINT NOT NULL, payload TEXT NOT NULL)")
        .execute(pool)
        .await?;
    let start = Instant::now();
    let timed_from = start + warmup;
    let end = timed_from + duration;
    let workers = (0..concurrency).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let (mut ok, mut failed, mut first) = (0u64, 0u64, None);
            while Instant::now() < end {
                let sent = Instant::now();
                let r = sqlx::query("INSERT INTO bench_baseline (id, created, payload) VALUES ($1, $2, $3)")
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(common::now_ms())
                    .bind("x".repeat(200))
                    .execute(&pool)
                    .await;
                if sent < timed_from {
                    continue;
                }
                match r {
                    Ok(_) => {
                        ok += 1;
                        let _ = hist.record(sent.elapsed().as_micros().max(1) as u64);
                    }
                    Err(e) => {
                        failed += 1;
                        first.get_or_insert(e.to_string());
                    }
                }
            }
            (ok, failed, hist, first)
        })
    });
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let (mut ok, mut failed, mut first_failure) = (0, 0, None);
    for (o, f, h, e) in futures::future::join_all(workers).await.into_iter().flatten() {
        ok += o;
        failed += f;
        latency_us.add(h).expect("same bounds");
        if first_failure.is_none() {
            first_failure = e;
        }
    }
    Ok(Outcome { ok, failed, latency_us, elapsed: duration, first_failure })
}
