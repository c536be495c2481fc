//! Rotation on demand, its tasks, and scheduled rotation across replicas.

use super::*;

/// rotate-secret on single- and multi-user database secrets, COMMON
/// refused, the task list's filters, exclusivity rule and paging, and an
/// update of the description leaving the schedule alone.
pub(super) async fn rotation_and_tasks(s: &TestStack) {
    let common_name = unique("rot-common");
    call(s, Method::POST, "secrets", Some(json!({"name": common_name, "secret_string": "x"}))).await;
    assert_error(&call(s, Method::POST, &format!("secrets/{common_name}/rotate"), None).await, 400, "CSMS.0002", true);
    assert_error(&call(s, Method::POST, "secrets/no-such-secret/rotate", None).await, 400, "CSMS.0106", true);

    let single = unique("rot-single");
    let value = json!({"username": "app", "password": "old-password", "host": "db.local"});
    let body = json!({"name": single, "secret_string": value.to_string(), "secret_type": "RDS-FG",
                      "auto_rotation": true, "rotation_period": "30d",
                      "rotation_config": r#"{"InstanceId":"i-1","SecretSubType":"SingleUser"}"#});
    let created = call(s, Method::POST, "secrets", Some(body)).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let next = created.body["secret"]["next_rotation_time"].as_i64().unwrap();
    let r = call(s, Method::PUT, &format!("secrets/{single}"), Some(json!({"description": "only this"}))).await;
    assert_eq!(r.body["secret"]["next_rotation_time"], next, "a description change moved the schedule");
    let r = call(s, Method::POST, &format!("secrets/{single}/rotate"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(&r.body, &[("version_id", "string"), ("secret_name", "string"), ("rotation_task_id", "string")]);
    let task_id = r.body["rotation_task_id"].as_str().unwrap().to_owned();
    let new: Value =
        serde_json::from_str(read(s, &single, "latest").await.body["version"]["secret_string"].as_str().unwrap())
            .unwrap();
    assert_eq!((new["username"].as_str(), new["host"].as_str()), (Some("app"), Some("db.local")));
    let password = new["password"].as_str().unwrap();
    assert!(password != "old-password" && password.len() == 32, "{password}");
    let previous = read(s, &single, "v1").await;
    assert_eq!(previous.body["version"]["version_metadata"]["version_stages"], json!(["SYSPREVIOUS"]));
    let shown = call(s, Method::GET, &format!("secrets/{single}"), None).await;
    assert!(shown.body["secret"]["rotation_time"].as_i64().is_some(), "{:?}", shown.body);
    assert!(shown.body["secret"]["next_rotation_time"].as_i64().unwrap() > next);

    // MultiUser rotates the SYSPREVIOUS account and swaps the two.
    let multi = unique("rot-multi");
    let alice = json!({"username": "alice", "password": "a0"}).to_string();
    let bob = json!({"username": "bob", "password": "b0"}).to_string();
    let body = json!({"name": multi, "secret_string": alice, "secret_type": "GaussDB-FG",
                      "rotation_config": r#"{"InstanceId":"i-2","SecretSubType":"MultiUser"}"#});
    call(s, Method::POST, "secrets", Some(body)).await;
    let no_second = call(s, Method::POST, &format!("secrets/{multi}/rotate"), None).await;
    assert!(no_second.body.get("version_id").is_none(), "one account only: {:?}", no_second.body);
    call(s, Method::POST, &format!("secrets/{multi}/versions"), Some(json!({"secret_string": bob}))).await;
    // The same rotate again: signed in the next second, as a new request
    // (an identical signature is a replay, and rotate acts each time).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = call(s, Method::POST, &format!("secrets/{multi}/rotate"), None).await;
    assert_eq!(r.body["version_id"], "v3", "{:?}", r.body);
    let current: Value =
        serde_json::from_str(read(s, &multi, "latest").await.body["version"]["secret_string"].as_str().unwrap())
            .unwrap();
    assert_eq!(current["username"], "alice", "the idle account became current");
    assert_ne!(current["password"], "a0");
    let prev = read(s, &multi, "v2").await;
    assert_eq!(prev.body["version"]["version_metadata"]["version_stages"], json!(["SYSPREVIOUS"]));

    // Tasks: filters, the task_id rule (flat errors), paging.
    let r = call(s, Method::GET, &format!("csms/tasks?secret_name={multi}"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(&r.body, &[("total", "int"), ("tasks", "array"), ("next_marker", "string")]);
    assert_eq!(r.body["total"], 2);
    let statuses: Vec<&str> =
        r.body["tasks"].as_array().unwrap().iter().map(|t| t["task_status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["FAILED", "SUCCESS"]);
    let t = &r.body["tasks"][0];
    assert_types(
        t,
        &[
            ("task_id", "string"),
            ("secret_name", "string"),
            ("task_status", "string"),
            ("operate_type", "string"),
            ("task_time", "int"),
            ("attempt_nums", "int"),
            ("task_error_code", "string"),
            ("task_error_msg", "string"),
        ],
    );
    assert_eq!(t["operate_type"], "MULTI_USER");
    assert!(!t["task_error_msg"].as_str().unwrap().is_empty());
    // The task stores a reason; the gateway spells it as CSMS's code.
    assert_eq!(t["task_error_code"], "CSMS.0002", "{t}");
    assert_eq!(r.body["tasks"][1]["task_error_code"], "", "a success has no code");
    let failed = call(s, Method::GET, &format!("csms/tasks?secret_name={multi}&status=FAILED"), None).await;
    assert_eq!(failed.body["total"], 1);
    let one = call(s, Method::GET, &format!("csms/tasks?task_id={task_id}"), None).await;
    assert_eq!(
        (one.body["total"].as_u64(), one.body["tasks"][0]["secret_name"].as_str()),
        (Some(1), Some(single.as_str()))
    );
    assert_error(
        &call(s, Method::GET, &format!("csms/tasks?task_id={task_id}&status=SUCCESS"), None).await,
        400,
        "CSMS.0002",
        false,
    );
    assert_error(&call(s, Method::GET, "csms/tasks?status=RUNNING", None).await, 400, "CSMS.0002", false);
    let page = call(s, Method::GET, "csms/tasks?limit=1", None).await;
    let marker = page.body["next_marker"].as_str().unwrap().to_owned();
    let rest = call(s, Method::GET, &format!("csms/tasks?limit=1000&marker={marker}"), None).await;
    assert_eq!(rest.body["tasks"].as_array().unwrap().len() + 1, page.body["total"].as_u64().unwrap() as usize);
}

/// Scheduled rotation with a short period (a rotation "hour" of 100 ms:
/// `6h` is 600 ms), with a second csms-service replica on the same
/// database: the secret rotates every period, and no period is rotated
/// twice.
async fn scheduled_rotation_across_replicas(db: Db) {
    let mut jobs = support::csms_jobs();
    jobs.rotation_hour_ms = 100;
    let s = TestStack::start_with_jobs(db, jobs.clone()).await;
    let pki = &s.stack.pki;
    let database_url = match &s.db {
        Db::Sqlite => common::db::DatabaseUrl::sqlite_file(&s.dir.path().join("csms.db")),
        Db::Postgres(url) => url.clone(),
    };
    // Two more replicas, driven here: each calls the scheduler's step
    // every 50 ms, at the same moments, so that a period rotated twice
    // would show.
    let tls = pki.internal(&pki.csms).load().unwrap();
    let mut replicas = Vec::new();
    let feeds = tokio_util::sync::CancellationToken::new();
    let _stop_feeds = feeds.clone().drop_guard();
    for _ in 0..2 {
        let store = csms_service::open_store(&database_url, 4).await.unwrap();
        let channel = common::grpc::channel(&format!("http://{}", s.stack.kms), tls.as_ref(), "test").unwrap();
        let kms = csms_service::kms::KmsClient::new(channel);
        let service = csms_service::service::CsmsService::new(store, kms, 200, jobs.clone(), &feeds).await.unwrap();
        replicas.push(std::sync::Arc::new(service));
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let driver = {
        let (stop, replicas) = (stop.clone(), replicas.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let now = common::now_ms();
                let (a, b) = tokio::join!(replicas[0].rotate_due(now), replicas[1].rotate_due(now));
                a.unwrap();
                b.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };

    let name = unique("scheduled");
    let body = json!({"name": name, "secret_string": json!({"username": "app", "password": "p0"}).to_string(),
                      "secret_type": "RDS-FG", "auto_rotation": true, "rotation_period": "6h",
                      "rotation_config": r#"{"InstanceId":"i-9","SecretSubType":"SingleUser"}"#});
    assert_eq!(call(&s, Method::POST, "secrets", Some(body)).await.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let tasks = call(&s, Method::GET, &format!("csms/tasks?secret_name={name}&status=SUCCESS"), None).await;
        if tasks.body["total"].as_u64().unwrap() >= 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no scheduled rotations: {:?}", tasks.body);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    stop.cancel();
    let off = call(&s, Method::PUT, &format!("secrets/{name}"), Some(json!({"auto_rotation": false}))).await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let tasks = call(&s, Method::GET, &format!("csms/tasks?secret_name={name}&limit=1000"), None).await;
    let tasks = tasks.body["tasks"].as_array().unwrap().clone();
    assert!(tasks.iter().all(|t| t["task_status"] == "SUCCESS"), "{tasks:?}");
    let times: Vec<i64> = tasks.iter().map(|t| t["task_time"].as_i64().unwrap()).collect();
    for pair in times.windows(2) {
        // A period is 600 ms: two rotations closer than that would be one
        // period rotated twice (by two replicas racing).
        assert!(pair[1] - pair[0] >= 550, "two rotations {} ms apart: {times:?}", pair[1] - pair[0]);
    }
    let versions = call(&s, Method::GET, &format!("secrets/{name}/versions?limit=1000"), None).await;
    let versions = versions.body["version_metadatas"].as_array().unwrap().len();
    assert_eq!(versions, tasks.len() + 1, "one version per rotation");
    let mut passwords = std::collections::BTreeSet::new();
    for n in 1..=versions {
        let v = read(&s, &name, &format!("v{n}")).await;
        let doc: Value = serde_json::from_str(v.body["version"]["secret_string"].as_str().unwrap()).unwrap();
        passwords.insert(doc["password"].as_str().unwrap().to_owned());
    }
    assert_eq!(passwords.len(), versions, "every rotation made a new password");
    driver.await.unwrap();
    s.stack.stop().await.unwrap();
}

#[tokio::test]
async fn scheduled_rotation_on_sqlite() {
    scheduled_rotation_across_replicas(Db::Sqlite).await;
}

#[tokio::test]
async fn scheduled_rotation_on_postgres() {
    let Some(db) = Db::postgres("scheduled rotation across replicas on Postgres").await else { return };
    scheduled_rotation_across_replicas(db).await;
}

/// A backlog cannot stall the scheduler (issue #33): 101 due COMMON
/// secrets with automatic rotation in one project (nothing here can rotate
/// them; they were once taken first, skipped, and left due, filling every
/// scan) and one due RDS-FG secret in another: the next scan rotates it.
/// Three failed rotations in a row switch automatic rotation off.
#[tokio::test]
async fn a_backlog_never_stalls_scheduled_rotation() {
    let mut jobs = support::csms_jobs();
    // A rotation "hour" of 10 ms: `6h` is 60 ms. The stack's own scheduler
    // waits an hour; the scans here are the test's.
    (jobs.rotation_hour_ms, jobs.rotation_check) = (10, std::time::Duration::from_secs(3600));
    let s = TestStack::start_with_jobs(Db::Sqlite, jobs.clone()).await;
    for i in 0..101 {
        let body = json!({"name": format!("backlog-{i:03}"), "secret_string": "x", "auto_rotation": true,
                          "rotation_period": "6h"});
        assert_eq!(call(&s, Method::POST, "secrets", Some(body)).await.status, 200);
    }
    let (_, _, project, ak, sk) = support::other_account(&s, "dba", "dba's password").await;
    let db_secret = json!({"name": "orders-db", "secret_type": "RDS-FG", "auto_rotation": true,
                           "rotation_period": "6h",
                           "secret_string": json!({"username": "app", "password": "p0"}).to_string(),
                           "rotation_config": r#"{"InstanceId":"i-1","SecretSubType":"SingleUser"}"#});
    let created = support::as_other(&s, &ak, &sk, &project, Method::POST, "secrets", Some(db_secret)).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let tls = s.stack.pki.internal(&s.stack.pki.csms).load().unwrap();
    let channel = common::grpc::channel(&format!("http://{}", s.stack.kms), tls.as_ref(), "test").unwrap();
    let store = csms_service::open_store(&common::db::DatabaseUrl::sqlite_file(&s.dir.path().join("csms.db")), 2)
        .await
        .unwrap();
    let feeds = tokio_util::sync::CancellationToken::new();
    let _stop_feeds = feeds.clone().drop_guard();
    let kms = csms_service::kms::KmsClient::new(channel);
    let scheduler = csms_service::service::CsmsService::new(store, kms, 200, jobs, &feeds).await.unwrap();
    assert_eq!(scheduler.rotate_due(common::now_ms()).await.unwrap(), 1, "the one rotatable secret, at once");
    let tasks = support::as_other(&s, &ak, &sk, &project, Method::GET, "csms/tasks?secret_name=orders-db", None).await;
    assert_eq!(tasks.body["tasks"][0]["task_status"], "SUCCESS", "{:?}", tasks.body);

    // A secret whose value cannot be rotated fails each time; the third
    // failure in a row switches its automatic rotation off.
    let broken = json!({"name": "broken-db", "secret_type": "RDS-FG", "auto_rotation": true,
                        "rotation_period": "6h", "secret_string": "not json",
                        "rotation_config": r#"{"InstanceId":"i-1","SecretSubType":"SingleUser"}"#});
    assert_eq!(call(&s, Method::POST, "secrets", Some(broken)).await.status, 200);
    for attempt in 1..=3 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        scheduler.rotate_due(common::now_ms()).await.unwrap();
        let shown = call(&s, Method::GET, "secrets/broken-db", None).await;
        assert_eq!(shown.body["secret"]["auto_rotation"], attempt < 3, "after {attempt} failures: {:?}", shown.body);
    }
    let failed = call(&s, Method::GET, "csms/tasks?secret_name=broken-db&status=FAILED", None).await;
    assert_eq!(failed.body["total"], 3, "{:?}", failed.body);
    s.stack.stop().await.unwrap();
}

/// `opendew admin db-instance`: an instance is registered with its
/// administrator URL sealed (neither the listing nor csms-service's
/// database holds the password), once per id, and only for an engine that
/// rotation speaks.
#[tokio::test]
async fn db_instances_are_registered_sealed() {
    let s = TestStack::start(Db::Sqlite).await;
    let admin = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opendew"))
            .arg("admin")
            .arg("--data-dir")
            .arg(s.dir.path())
            .args(["db-instance"])
            .args(args)
            .env("OPENDEW_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let project = s.account.project_id.clone();
    let add = ["add", "--project", &project, "--id", "orders-db", "--engine", "mysql", "--url"];
    let (ok, text) =
        admin(&[&add[..], &["mysql://root@db.internal:3306/", "--password-file", "-"]].concat(), "Adm1n-pw!\n");
    assert!(ok, "{text}");
    assert!(text.contains("registered instance orders-db (mysql, mysql://db.internal:3306/)"), "{text}");
    let (ok, again) = admin(&[&add[..], &["mysql://root@db.internal:3306/", "--password-file", "-"]].concat(), "x\n");
    assert!(!ok && again.contains("already has an instance orders-db"), "{again}");
    let (ok, oracle) =
        admin(&["add", "--project", &project, "--id", "o", "--engine", "oracle", "--url", "oracle://sys:pw@db/"], "");
    assert!(!ok && oracle.contains("not supported") && !oracle.contains("sys:pw"), "{oracle}");
    let (ok, listed) = admin(&["list", "--project", &project], "");
    assert!(ok && listed.contains("orders-db\tmysql\tmysql://db.internal:3306/"), "{listed}");
    assert!(!listed.contains("Adm1n-pw"), "{listed}");
    // The database and its write-ahead log: the listing's host is there
    // (so the scan sees the row), the password is not.
    let mut stored = std::fs::read(s.dir.path().join("csms.db")).unwrap();
    stored.extend(std::fs::read(s.dir.path().join("csms.db-wal")).unwrap_or_default());
    assert!(stored.windows(11).any(|w| w == b"db.internal"), "the row is not where the scan looks");
    assert!(!stored.windows(8).any(|w| w == b"Adm1n-pw"), "the password is stored in the clear");
    assert!(admin(&["remove", "--project", &project, "--id", "orders-db"], "").0);
    assert!(!admin(&["list"], "").1.contains("orders-db"));
    s.stack.stop().await.unwrap();
}
