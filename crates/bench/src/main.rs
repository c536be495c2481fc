//! `opendew-bench`: reproducible throughput and latency figures for opendew,
//! each next to a baseline measured in the same run with the same client
//! and concurrency (see BENCHMARKS.md).
//!
//! It starts what it measures — the three services as separate processes
//! on a fresh Postgres database, and the one-process dev stack on SQLite —
//! seeds them, then drives signed HTTP load and checks every response.

mod load;
mod rotation;
mod scenarios;
mod stack;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use load::{Check, Gen, Outcome, Req, Signer};
use scenarios::{MIX_PROJECTS, MIXED, Run, crypto_and_secret_scenarios, mixed, ok_with, post};
use serde::Serialize;
use serde_json::{Value, json};

/// Benchmark the opendew stack.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Seconds-long run with tiny data, to prove the harness works (CI).
    #[arg(long)]
    smoke: bool,
    /// Postgres server URL; the harness creates a fresh database on it.
    #[arg(long, env = "OPENDEW_BENCH_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// MariaDB/MySQL URL of an account that may create users: the scheduled
    /// rotation scenario rotates passwords there (skipped without it).
    #[arg(long, env = "OPENDEW_BENCH_MYSQL_URL")]
    mysql_url: Option<String>,
    /// Concurrent connections.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Timed seconds per scenario.
    #[arg(long)]
    duration: Option<f64>,
    /// Warm-up seconds per scenario.
    #[arg(long)]
    warmup: Option<f64>,
    /// Only scenarios whose name contains this (or, comma-separated, one
    /// of these).
    #[arg(long)]
    only: Option<String>,
    /// Where results go (JSON and Markdown).
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// Internal: run the bare-axum baseline server.
    #[arg(long, hide = true)]
    baseline_server: bool,
}

/// One row of the report.
#[derive(Debug, Serialize)]
struct Row {
    config: String,
    scenario: String,
    requests: u64,
    failed: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    baseline: Option<String>,
    ratio: Option<f64>,
    /// A list scenario's rate against the bare server answering a list page.
    #[serde(skip_serializing_if = "Option::is_none")]
    list_ratio: Option<f64>,
    first_failure: Option<String>,
}

pub(crate) fn row(config: &str, scenario: &str, o: &Outcome, baseline: Option<(&str, f64)>) -> Row {
    let rps = o.ok as f64 / o.elapsed.as_secs_f64();
    let ms = |q: f64| o.latency_us.value_at_quantile(q) as f64 / 1000.0;
    Row {
        config: config.into(),
        scenario: scenario.into(),
        requests: o.ok,
        failed: o.failed,
        rps,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        baseline: baseline.map(|(name, _)| name.to_owned()),
        ratio: baseline.map(|(_, base)| if base > 0.0 { rps / base } else { 0.0 }),
        list_ratio: None,
        first_failure: o.first_failure.clone(),
    }
}

/// The fixed body the bare-axum baseline answers with: the size of a
/// create-datakey response.
const BASELINE_BODY_LEN: usize = 250;

async fn baseline_server() -> anyhow::Result<()> {
    let body: &'static str =
        Box::leak(format!("{{\"pad\":\"{}\"}}", "x".repeat(BASELINE_BODY_LEN - 10)).into_boxed_str());
    let page: &'static str = Box::leak(list_page_body().into_boxed_str());
    let app = axum::Router::new()
        .route(
            LIST_BASELINE_PATH,
            axum::routing::post(move || async move { ([("content-type", "application/json")], page) }),
        )
        .fallback(move || async move { ([("content-type", "application/json")], body) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", json!({"message": "baseline listening", "addr": listener.local_addr()?.to_string()}));
    axum::serve(listener, app).await?;
    Ok(())
}

/// A 200 whose body is well-formed JSON (all of it is parsed) with `field`
/// present and not null at the top level. Values stay raw: building a
/// `serde_json::Value` tree of a 25 KB list page cost the load generator,
/// which shares the two cores with the servers, a fifth of the machine.
/// Where the baseline server answers [`list_page_body`].
const LIST_BASELINE_PATH: &str = "/v1.0/baseline/kms/list-keys";

/// A fixed list-keys page of 50 keys, shaped and sized like opendew's (about
/// 25 KB): the HTTP limit for a list response, where the 250-byte baseline
/// is the limit for a small one.
fn list_page_body() -> String {
    let details: Vec<Value> = (0..50)
        .map(|i| {
            json!({
                "key_id": format!("3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b{i:04}"), "domain_id": "d".repeat(32),
                "key_alias": format!("bench-list-key-{i:06}"), "realm": "local-1", "key_spec": "AES_256",
                "key_usage": "ENCRYPT_DECRYPT", "key_description": "a key seeded for the list benchmark",
                "creation_date": "1764000000000", "scheduled_deletion_date": "", "key_state": "2",
                "default_key_flag": "0", "key_type": "1", "expiration_time": "", "origin": "kms",
                "key_rotation_enabled": "false", "sys_enterprise_project_id": "0", "keystore_id": "0",
            })
        })
        .collect();
    let keys: Vec<Value> = details.iter().map(|d| d["key_id"].clone()).collect();
    json!({"keys": keys, "key_details": details, "next_marker": "50", "truncated": "true", "total": 1000}).to_string()
}

pub(crate) fn print_row(r: &Row) {
    eprintln!(
        "{:<12} {:<30} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  failed {}{}",
        r.config,
        r.scenario,
        r.rps,
        r.p50_ms,
        r.p99_ms,
        r.failed,
        r.first_failure.as_ref().map(|f| format!("  first failure: {f}")).unwrap_or_default()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.baseline_server {
        return baseline_server().await;
    }
    let run = Run {
        concurrency: cli.concurrency.unwrap_or(if cli.smoke { 4 } else { 64 }),
        warmup: Duration::from_secs_f64(cli.warmup.unwrap_or(if cli.smoke { 0.2 } else { 2.0 })),
        duration: Duration::from_secs_f64(cli.duration.unwrap_or(if cli.smoke { 0.5 } else { 10.0 })),
        only: cli.only.clone(),
    };
    let (small, large) = if cli.smoke { (100, 2_000) } else { (1_000, 100_000) };
    let mut rows = Vec::new();
    let mut rss = Vec::new();
    let work = tempdir()?;

    // Baseline 1: a bare axum handler, same client, same signing, same concurrency.
    let me = std::env::current_exe()?;
    let baseline = spawn_baseline(&me).await?;
    let bench_signer =
        Signer { ak: "BASELINE".into(), sk: String::from("baseline").into(), project_id: "0".repeat(32) };
    let base_path = format!("/v1.0/{}/kms/create-datakey", bench_signer.project_id);
    let o = run
        .go(
            &baseline.addr,
            &bench_signer,
            Arc::new(move |_| post(base_path.clone(), json!({"key_id": "3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90"}))),
            ok_with("pad"),
        )
        .await;
    let http_base = o.ok as f64 / o.elapsed.as_secs_f64();
    rows.push(row("baseline", "bare axum (fixed JSON)", &o, None));
    print_row(rows.last().expect("row"));
    // The same server answering a list page instead: what a 25 KB response
    // costs this client and this machine, with nothing behind it.
    let o = run
        .go(
            &baseline.addr,
            &bench_signer,
            Arc::new(move |_| post(LIST_BASELINE_PATH.to_owned(), json!({"limit": "50", "key_spec": "ALL"}))),
            ok_with("keys"),
        )
        .await;
    let list_base = o.ok as f64 / o.elapsed.as_secs_f64();
    rows.push(row("baseline", "bare axum (list page, 25 KB)", &o, None));
    print_row(rows.last().expect("row"));
    baseline.stop().await;

    // Baseline 2: single-row INSERTs into the same Postgres.
    let db = fresh_database(&cli.postgres_url).await?;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(run.concurrency as u32).connect(&db).await?;
    let o = load::insert_loop(&pool, run.concurrency, run.warmup, run.duration).await?;
    let insert_base = o.ok as f64 / o.elapsed.as_secs_f64();
    // Its 64 connections would otherwise count against Postgres's
    // max_connections (100 by default) while the services run.
    pool.close().await;
    rows.push(row("baseline", "sqlx INSERT (Postgres)", &o, None));
    print_row(rows.last().expect("row"));

    // Configuration 1: three release processes on Postgres.
    let accounts: Vec<Value> = ["main", "list-small", "list-large"]
        .iter()
        .copied()
        .chain(MIX_PROJECTS.iter().copied())
        .map(|name| {
            json!({
                "access_key": format!("BENCH{}", name.to_uppercase().replace('-', "")),
                "secret_key": format!("sk-{}", uuid::Uuid::new_v4().simple()),
                "user_id": uuid::Uuid::new_v4().simple().to_string(),
                "user_name": name,
                "password": uuid::Uuid::new_v4().simple().to_string(),
                "domain_id": "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0",
                "domain_name": "bench",
                "project_id": uuid::Uuid::new_v4().simple().to_string(),
                "project_name": format!("bench-{name}"),
            })
        })
        .collect();
    let credentials = work.join("credentials.json");
    std::fs::write(&credentials, serde_json::to_vec(&json!({ "credentials": accounts }))?)?;
    let signer = |i: usize| Signer {
        ak: accounts[i]["access_key"].as_str().unwrap_or_default().into(),
        sk: String::from(accounts[i]["secret_key"].as_str().unwrap_or_default()).into(),
        project_id: accounts[i]["project_id"].as_str().unwrap_or_default().into(),
    };
    let root_key = hex::encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
    let identity_key = work.join("identity.key");
    identity::seal::SecretSealer::ensure_key_file(&identity_key)?;
    // Internal calls over mutual TLS, as deployed.
    let pki = opendew::pki::ensure(&work.join("tls"), &["localhost".into()])?;
    let mtls = |pair: &opendew::pki::CertPair| {
        [
            ("OPENDEW_GRPC_CERT_FILE", pair.cert.display().to_string()),
            ("OPENDEW_GRPC_KEY_FILE", pair.key.display().to_string()),
            ("OPENDEW_GRPC_CA_FILE", pki.ca_cert.display().to_string()),
        ]
    };
    let kms = stack::spawn(
        &stack::sibling("kms-service")?,
        &["--kms-listen".into(), "127.0.0.1:0".into(), "--key-quota".into(), "1000000".into()],
        &[&[("OPENDEW_KMS_DATABASE_URL", db.clone()), ("OPENDEW_ROOT_KEY", root_key)][..], &mtls(&pki.kms)].concat(),
        "kms-service listening",
    )
    .await?;
    let csms = stack::spawn(
        &stack::sibling("csms-service")?,
        &["--csms-listen".into(), "127.0.0.1:0".into(), "--secret-quota".into(), "1000000".into()],
        &[
            &[("OPENDEW_CSMS_DATABASE_URL", db.clone()), ("OPENDEW_KMS_ENDPOINT", format!("http://{}", kms.addr))][..],
            &mtls(&pki.csms),
        ]
        .concat(),
        "csms-service listening",
    )
    .await?;
    let gateway = stack::spawn(
        &stack::sibling("gateway")?,
        &["--http-listen".into(), "127.0.0.1:0".into()],
        &[
            &[
                ("OPENDEW_CREDENTIALS_FILE", credentials.display().to_string()),
                ("OPENDEW_IAM_DATABASE_URL", db.clone()),
                ("OPENDEW_IDENTITY_KEY_FILE", identity_key.display().to_string()),
                ("OPENDEW_HTTP_PLAINTEXT", "true".into()),
                ("OPENDEW_GATEWAY_KMS_ENDPOINT", format!("http://{}", kms.addr)),
                ("OPENDEW_CSMS_ENDPOINT", format!("http://{}", csms.addr)),
            ][..],
            &mtls(&pki.gateway_client),
        ]
        .concat(),
        "gateway listening",
    )
    .await?;
    let host = gateway.addr.clone();
    crypto_and_secret_scenarios("services/pg", &run, &host, &signer(0), http_base, &mut rows).await?;
    if run.wants(MIXED) {
        let signers: Vec<Signer> = (3..3 + MIX_PROJECTS.len()).map(signer).collect();
        let o = mixed(&run, &host, signers).await?;
        rows.push(row("services/pg", MIXED, &o, Some(("bare axum", http_base))));
        print_row(rows.last().expect("row"));
    }

    // Writes, against the database baseline.
    let insert = Some(("sqlx INSERT", insert_base));
    let main = signer(0);
    let writes: Vec<(&str, Gen, Check)> = vec![
        (
            "create-key",
            {
                let path = format!("/v1.0/{}/kms/create-key", main.project_id);
                let tag = uuid::Uuid::new_v4().simple().to_string();
                Arc::new(move |n| post(path.clone(), json!({"key_alias": format!("w-{tag}-{n}")})))
            },
            ok_with("key_info"),
        ),
        (
            "create-secret",
            {
                let path = format!("/v1/{}/secrets", main.project_id);
                let tag = uuid::Uuid::new_v4().simple().to_string();
                Arc::new(move |n| {
                    post(path.clone(), json!({"name": format!("w-{tag}-{n}"), "secret_string": "benchmark value"}))
                })
            },
            ok_with("secret"),
        ),
    ];
    for (name, make, check) in writes {
        if run.wants(name) {
            let o = run.go(&host, &main, make, check).await;
            rows.push(row("services/pg", name, &o, insert));
            print_row(rows.last().expect("row"));
        }
    }

    // Listing from projects of two sizes (rows seeded in bulk with SQL: the
    // list path reads metadata only).
    seed_lists(&db, &signer(1).project_id, small).await?;
    seed_lists(&db, &signer(2).project_id, large).await?;
    for (i, size) in [(1, small), (2, large)] {
        let sg = signer(i);
        let lists: Vec<(String, Gen, Check)> = vec![
            (
                format!("list-keys ({size} keys)"),
                {
                    let path = format!("/v1.0/{}/kms/list-keys", sg.project_id);
                    Arc::new(move |_| post(path.clone(), json!({"limit": "50", "key_spec": "ALL"})))
                },
                ok_with("keys"),
            ),
            (
                format!("list-secrets ({size} secrets)"),
                {
                    let path = format!("/v1/{}/secrets?limit=50", sg.project_id);
                    Arc::new(move |_| Req { method: http::Method::GET, path: path.clone(), body: Vec::new() })
                },
                ok_with("secrets"),
            ),
        ];
        for (name, make, check) in lists {
            if run.wants(&name) {
                let o = run.go(&host, &sg, make, check).await;
                let mut r = row("services/pg", &name, &o, Some(("bare axum", http_base)));
                r.list_ratio = Some(if list_base > 0.0 { r.rps / list_base } else { 0.0 });
                rows.push(r);
                print_row(rows.last().expect("row"));
            }
        }
    }
    match &cli.mysql_url {
        Some(mysql) if run.wants(rotation::SCENARIO) => {
            let setup = rotation::Setup {
                database: &db,
                kms_addr: &kms.addr,
                tls: pki.internal(&pki.csms),
                mysql,
                secrets: if cli.smoke { 8 } else { 200 },
                work: &work,
            };
            rotation::bench(&run, setup, &mut rows).await?;
        }
        Some(_) => {}
        None => eprintln!("{}: skipped (no --mysql-url)", rotation::SCENARIO),
    }
    for p in [&kms, &csms, &gateway] {
        rss.push(json!({"config": "services/pg", "process": p.name, "peak_rss_mib": p.peak_rss_kib().map(|k| k as f64 / 1024.0)}));
    }
    gateway.stop().await;
    csms.stop().await;
    kms.stop().await;

    // Configuration 2: the one-process dev stack on SQLite.
    let (dev, ready) = stack::spawn_dev(&stack::sibling("opendew")?, &work.join("dev")).await?;
    let file: Value = serde_json::from_slice(&std::fs::read(work.join("dev/credentials.json"))?)?;
    let c = &file["credentials"][0];
    let dev_signer = Signer {
        ak: c["access_key"].as_str().unwrap_or_default().into(),
        sk: String::from(c["secret_key"].as_str().unwrap_or_default()).into(),
        project_id: c["project_id"].as_str().unwrap_or_default().into(),
    };
    crypto_and_secret_scenarios("dev/sqlite", &run, &dev.addr, &dev_signer, http_base, &mut rows).await?;
    rss.push(json!({"config": "dev/sqlite", "process": "opendew dev (all three)", "peak_rss_mib": dev.peak_rss_kib().map(|k| k as f64 / 1024.0), "ready_ms": ready.as_millis()}));
    dev.stop().await;

    let failed: u64 = rows.iter().map(|r| r.failed).sum();
    let report = json!({
        "machine": machine(),
        "concurrency": run.concurrency,
        "duration_s": run.duration.as_secs_f64(),
        "warmup_s": run.warmup.as_secs_f64(),
        "smoke": cli.smoke,
        "results": rows,
        "processes": rss,
    });
    std::fs::create_dir_all(&cli.out_dir)?;
    std::fs::write(cli.out_dir.join("results.json"), serde_json::to_vec_pretty(&report)?)?;
    let markdown = markdown(&report);
    std::fs::write(cli.out_dir.join("results.md"), &markdown)?;
    println!("{markdown}");
    let _ = std::fs::remove_dir_all(&work);
    anyhow::ensure!(
        failed == 0,
        "{failed} requests failed; see first_failure in {}",
        cli.out_dir.join("results.json").display()
    );
    Ok(())
}

async fn spawn_baseline(me: &std::path::Path) -> anyhow::Result<stack::Proc> {
    stack::spawn_plain(me, &["--baseline-server".into()], "baseline listening").await
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("opendew-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn fresh_database(server: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("opendew_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(server).await.context("connecting to the benchmark Postgres")?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    let (head, _) = server.rsplit_once('/').context("Postgres URL without a database")?;
    Ok(format!("{head}/{name}"))
}

/// Bulk-inserts `n` keys and `n` secrets (metadata only) into a project.
async fn seed_lists(db: &str, project_id: &str, n: i64) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(db).await?;
    sqlx::query(
        "INSERT INTO kms.keys (key_id, project_id, domain_id, key_alias, key_description, key_spec, key_usage, origin, \
         key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, scheduled_deletion_ms, \
         expiration_ms, material_version) SELECT gen_random_uuid()::text, $1, 'd0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0', 'seed-' || g, '', \
         'AES_256', 'ENCRYPT_DECRYPT', 'kms', 3, false, '0', false, 1000 + g, NULL, NULL, NULL FROM generate_series(1, $2) g",
    )
    .bind(project_id)
    .bind(n)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO kms.key_counts (project_id, key_spec, key_state, default_key, shard, n) \
         VALUES ($1, 'AES_256', 3, false, 0, $2) ON CONFLICT (project_id, key_spec, key_state, default_key, shard) \
         DO UPDATE SET n = key_counts.n + excluded.n",
    )
    .bind(project_id)
    .bind(n)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO csms.secrets (id, project_id, name, state, kms_key_id, description, secret_type, auto_rotation, \
         rotation_period, rotation_config, event_subscriptions, enterprise_project_id, rotation_func_urn, create_ms, \
         update_ms) SELECT gen_random_uuid()::text, $1, 'seed-' || lpad(g::text, 7, '0'), 'ENABLED', \
         gen_random_uuid()::text, '', 'COMMON', false, '', '', '[]', '0', '', 1000 + g, 1000 + g \
         FROM generate_series(1, $2) g",
    )
    .bind(project_id)
    .bind(n)
    .execute(&mut conn)
    .await?;
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    Ok(())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
    });
    json!({"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "cpu": cpu})
}

fn markdown(report: &Value) -> String {
    let mut out = String::from(
        "| configuration | scenario | req/s | p50 ms | p99 ms | p99.9 ms | failed | vs baseline |\n|---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in report["results"].as_array().into_iter().flatten() {
        let ratio = match (r["baseline"].as_str(), r["ratio"].as_f64()) {
            (Some(b), Some(x)) => format!("{:.0}% of {b}", x * 100.0),
            _ => "—".into(),
        };
        let ratio = match r["list_ratio"].as_f64() {
            Some(x) => format!("{ratio}, {:.0}% of the list-page baseline", x * 100.0),
            None => ratio,
        };
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
            r["config"].as_str().unwrap_or(""),
            r["scenario"].as_str().unwrap_or(""),
            r["rps"].as_f64().unwrap_or(0.0),
            r["p50_ms"].as_f64().unwrap_or(0.0),
            r["p99_ms"].as_f64().unwrap_or(0.0),
            r["p999_ms"].as_f64().unwrap_or(0.0),
            r["failed"],
            ratio
        ));
    }
    out.push_str("\n| configuration | process | peak RSS MiB |\n|---|---|---:|\n");
    for p in report["processes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "| {} | {} | {:.1} |\n",
            p["config"].as_str().unwrap_or(""),
            p["process"].as_str().unwrap_or(""),
            p["peak_rss_mib"].as_f64().unwrap_or(0.0)
        ));
        if let Some(ms) = p["ready_ms"].as_u64() {
            out.push_str(&format!("\nDev stack ready to serve {ms} ms after start.\n"));
        }
    }
    out
}
