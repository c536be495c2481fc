//! Scheduled rotation of database secrets against the local MariaDB
//! (issue #33): how many secrets per second the scheduler rotates on one
//! instance, against a same-run baseline of what each rotation must do on
//! the server (`ALTER USER` on the account's two host entries, then a login
//! with the new password) at the same per-instance concurrency.
//!
//! The scheduler runs in this process: csms-service's own `rotate_due`
//! over the benchmark's Postgres database, sealing through the
//! kms-service process over mutual TLS, with a rotation "hour" of 1 ms so
//! that every secret is due again right after its rotation. Afterwards each
//! secret's current password must log in on MariaDB; one that does not is
//! a failure.

use std::{path::Path, time::Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use mysql_async::prelude::Queryable;

use crate::{Row, load::Outcome, print_row, row, scenarios::Run};

/// The scenario's name (for `--only`).
pub(crate) const SCENARIO: &str = "scheduled rotation (MariaDB)";

/// What the scenario needs of the running stack.
pub(crate) struct Setup<'a> {
    /// The benchmark's Postgres database (csms-service's store).
    pub database: &'a str,
    /// kms-service's address.
    pub kms_addr: &'a str,
    /// csms-service's internal TLS settings.
    pub tls: common::grpc::InternalTlsConfig,
    /// A `mysql://` URL of an account that may create users.
    pub mysql: &'a str,
    /// Secrets (each with its own MariaDB user) to rotate.
    pub secrets: usize,
    /// Where the instance key goes.
    pub work: &'a Path,
}

/// Runs the baseline and the scenario; appends their rows.
pub(crate) async fn bench(run: &Run, setup: Setup<'_>, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let per_instance = csms_service::CsmsJobs::default().rotations_per_instance as usize;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let users: Vec<String> = (0..setup.secrets).map(|i| format!("odtest_bench_{tag}_{i}")).collect();
    let mut admin = connect(setup.mysql).await?;
    for user in &users {
        for host in ["127.0.0.1", "localhost"] {
            admin.query_drop(format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY 'initial-Pw-0'")).await?;
        }
    }

    // Baseline: the server's own work per rotation, same concurrency.
    let o = baseline(run, setup.mysql, &users[..per_instance.min(users.len())]).await?;
    let base = o.ok as f64 / o.elapsed.as_secs_f64();
    rows.push(row("baseline", "MariaDB ALTER USER + login", &o, None));
    print_row(rows.last().expect("row"));

    // The scheduler over `setup.secrets` secrets on one instance.
    let key_file = setup.work.join("db-instance.key");
    csms_service::instances::InstanceKey::ensure_file(&key_file)?;
    let jobs = csms_service::CsmsJobs {
        rotation_hour_ms: 1,
        db_instance_key_file: Some(key_file.clone()),
        ..csms_service::CsmsJobs::default()
    };
    let store = csms_service::open_store(&setup.database.parse()?, 16).await?;
    let tls = setup.tls.load()?;
    let channel = common::grpc::channel(&format!("http://{}", setup.kms_addr), tls.as_ref(), "kms")?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let key = csms_service::instances::InstanceKey::from_file(&key_file)?;
    let service = csms_service::service::CsmsService::new(
        store.clone(),
        csms_service::kms::KmsClient::new(channel),
        1_000_000,
        jobs,
        &shutdown,
    )
    .await?
    .with_instance_key(Some(csms_service::instances::InstanceKey::from_file(&key_file)?));
    let project = uuid::Uuid::new_v4().simple().to_string();
    let caller = common::identity::CallerIdentity {
        domain_id: "bench".into(),
        project_id: project.clone(),
        user_id: "bench".into(),
        request_id: "bench".into(),
    };
    let new = csms_service::instances::NewInstance {
        project_id: project.clone(),
        id: "bench-maria".into(),
        engine: "mysql".into(),
        url: crypto::SecretString::new(setup.mysql.to_owned()),
        password: None,
    };
    store.add_instance(&csms_service::instances::prepare(&key, new, common::now_ms())?).await?;
    service.create_agencies(&caller, "RDS-FG").await?;
    for (i, user) in users.iter().enumerate() {
        let value = serde_json::json!({"username": user, "password": "initial-Pw-0"}).to_string();
        let secret = csms_service::secrets::NewSecret {
            name: format!("bench-rotated-{i}"),
            value: Some(csms_service::secrets::NewValue {
                kind: csms_service::domain::ValueKind::Text,
                bytes: crypto::SecretBytes::new(value.into_bytes()),
            }),
            secret_type: "RDS-FG".into(),
            auto_rotation: true,
            rotation_period: "6h".into(),
            rotation_config: r#"{"InstanceId":"bench-maria","SecretSubType":"SingleUser"}"#.into(),
            ..Default::default()
        };
        service.create_secret(&caller, secret).await?;
    }
    let o = scheduled(run, &service).await?;
    // Every secret's current password must be the one MariaDB holds.
    let mut failed = 0;
    let mut first_failure = None;
    for (i, user) in users.iter().enumerate() {
        let opened = service.show_version(&caller, &format!("bench-rotated-{i}"), "latest").await?;
        let value: serde_json::Value = serde_json::from_slice(opened.value.expose())?;
        let password = value["password"].as_str().unwrap_or_default();
        if password == "initial-Pw-0" || !login(setup.mysql, user, password).await {
            failed += 1;
            first_failure.get_or_insert_with(|| format!("secret {i}: MariaDB does not take its current password"));
        }
    }
    let o = Outcome { failed, first_failure, ..o };
    rows.push(row("services/pg", SCENARIO, &o, Some(("MariaDB ALTER USER + login", base))));
    print_row(rows.last().expect("row"));
    for user in &users {
        for host in ["127.0.0.1", "localhost"] {
            admin.query_drop(format!("DROP USER IF EXISTS '{user}'@'{host}'")).await?;
        }
    }
    admin.disconnect().await?;
    Ok(())
}

/// Scheduler runs back to back: warm-up, then the timed phase, counting
/// rotations (the latencies are of whole runs, each a scan's batch).
async fn scheduled(run: &Run, service: &csms_service::service::CsmsService) -> anyhow::Result<Outcome> {
    let warm = Instant::now() + run.warmup;
    while Instant::now() < warm {
        service.rotate_due(common::now_ms()).await?;
    }
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
    let (start, mut ok) = (Instant::now(), 0u64);
    while start.elapsed() < run.duration {
        let one = Instant::now();
        ok += service.rotate_due(common::now_ms()).await? as u64;
        latency_us.record(one.elapsed().as_micros().max(1) as u64)?;
    }
    Ok(Outcome { ok, failed: 0, latency_us, elapsed: start.elapsed(), first_failure: None })
}

/// `ALTER USER` on both host entries, then a login, in a loop per user.
async fn baseline(run: &Run, url: &str, users: &[String]) -> anyhow::Result<Outcome> {
    let until_warm = Instant::now() + run.warmup;
    let end = until_warm + run.duration;
    let mut tasks = Vec::new();
    for user in users {
        let (url, user) = (url.to_owned(), user.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&url).await?;
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
            let (mut ok, mut n) = (0u64, 0u64);
            while Instant::now() < end {
                n += 1;
                let password = format!("Baseline-{n}-pw");
                let one = Instant::now();
                for host in ["127.0.0.1", "localhost"] {
                    conn.query_drop(format!("ALTER USER '{user}'@'{host}' IDENTIFIED BY '{password}'")).await?;
                }
                anyhow::ensure!(login(&url, &user, &password).await, "the baseline's password does not log in");
                if Instant::now() >= until_warm {
                    ok += 1;
                    hist.record(one.elapsed().as_micros().max(1) as u64)?;
                }
            }
            conn.disconnect().await?;
            anyhow::Ok((ok, hist))
        }));
    }
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
    let mut ok = 0;
    for task in tasks {
        let (n, hist) = task.await??;
        ok += n;
        latency_us.add(hist)?;
    }
    Ok(Outcome { ok, failed: 0, latency_us, elapsed: run.duration, first_failure: None })
}

async fn connect(url: &str) -> anyhow::Result<mysql_async::Conn> {
    let opts = mysql_async::Opts::from_url(url).context("the --mysql-url")?;
    mysql_async::Conn::new(opts).await.context("connecting to MariaDB")
}

async fn login(url: &str, user: &str, password: &str) -> bool {
    let Ok(opts) = mysql_async::Opts::from_url(url) else { return false };
    let opts = mysql_async::OptsBuilder::from_opts(opts).user(Some(user)).pass(Some(password));
    match mysql_async::Conn::new(opts).await {
        Ok(conn) => conn.disconnect().await.is_ok(),
        Err(_) => false,
    }
}
