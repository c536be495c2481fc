//! Rotation on demand, its tasks, and scheduled rotation across replicas.

use test_support::accounts;

use super::*;

/// The value of `name`'s version `version` as JSON.
async fn value(s: &TestStack, name: &str, version: &str) -> Value {
    let r = read(s, name, version).await;
    serde_json::from_str(r.body["version"]["secret_string"].as_str().unwrap_or("null")).unwrap()
}

/// A database secret of `instance` holding `value`.
async fn database_secret(s: &TestStack, name: &str, kind: &str, instance: &str, sub: &str, value: &Value) {
    let config = json!({"InstanceId": instance, "SecretSubType": sub}).to_string();
    let body = json!({"name": name, "secret_string": value.to_string(), "secret_type": kind,
                      "auto_rotation": true, "rotation_period": "30d", "rotation_config": config});
    let created = call(s, Method::POST, "secrets", Some(body)).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
}

/// A rotation that must fail: the task says why, and the stages, the
/// value and the server's password (`holds`) stay as they were.
async fn fails_and_changes_nothing(s: &TestStack, name: &str, why: &str, holds: impl AsyncFn() -> bool) {
    let before = call(s, Method::GET, &format!("secrets/{name}/versions"), None).await.body;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = call(s, Method::POST, &format!("secrets/{name}/rotate"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.get("version_id").is_none(), "{name}: {:?}", r.body);
    let tasks = call(s, Method::GET, &format!("csms/tasks?secret_name={name}"), None).await;
    let task = tasks.body["tasks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(task["task_status"], "FAILED", "{name}: {task}");
    let message = task["task_error_msg"].as_str().unwrap();
    assert!(message.contains(why), "{name}: {message:?} does not say {why:?}");
    let after = call(s, Method::GET, &format!("secrets/{name}/versions"), None).await.body;
    assert_eq!(before, after, "{name}: the versions and stages moved");
    assert!(holds().await, "{name}: the server no longer holds the old password");
}

/// rotate-secret on the real servers (issue #33): SingleUser on
/// PostgreSQL (the server holds the new password as its verifier, not the
/// old one), MultiUser on MariaDB (the first rotation makes
/// `<user>_clone`, the next resets the first account, each time the
/// credentials read before still log in), every failure leaving stages,
/// value and password alone; COMMON refused; the task list's filters,
/// exclusivity rule and paging; a description change leaving the schedule.
pub(super) async fn rotation_and_tasks(s: &TestStack) {
    let common_name = unique("rot-common");
    call(s, Method::POST, "secrets", Some(json!({"name": common_name, "secret_string": "x"}))).await;
    assert_error(&call(s, Method::POST, &format!("secrets/{common_name}/rotate"), None).await, 400, "CSMS.0002", true);
    assert_error(&call(s, Method::POST, "secrets/no-such-secret/rotate", None).await, 400, "CSMS.0106", true);
    let (Some(pg), Some(maria)) =
        (test_support::postgres_url("rotation on PostgreSQL"), test_support::mysql_url("rotation on MariaDB"))
    else {
        return;
    };
    let project = s.account.project_id.clone();
    let (pg_instance, maria_instance) = (unique("pg"), unique("maria"));
    s.register_instance(&project, &pg_instance, "postgresql", pg.expose()).await;
    s.register_instance(&project, &maria_instance, "mysql", &maria).await;

    // Without the agencies, rotation may not act on the databases.
    let role = accounts::postgres_role(&pg, "old-password").await;
    let single = unique("rot-single");
    let credentials = json!({"username": role, "password": "old-password", "host": "db.local"});
    database_secret(s, &single, "RDS-FG", &pg_instance, "SingleUser", &credentials).await;
    let granted = s.call(Method::GET, "/v1/csms/agencies?secret_type=RDS-FG", None).await;
    if granted.body["agency_granted"] == "false" {
        let old = || accounts::postgres_holds(&pg, &role, "old-password");
        fails_and_changes_nothing(s, &single, "agencies", old).await;
        let r = s.call(Method::POST, "/v1/csms/agencies", Some(&json!({"secret_type": "RDS-FG"}))).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    let shown = call(s, Method::GET, &format!("secrets/{single}"), None).await;
    let next = shown.body["secret"]["next_rotation_time"].as_i64().unwrap();
    let r = call(s, Method::PUT, &format!("secrets/{single}"), Some(json!({"description": "only this"}))).await;
    assert_eq!(r.body["secret"]["next_rotation_time"], next, "a description change moved the schedule");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = call(s, Method::POST, &format!("secrets/{single}/rotate"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(&r.body, &[("version_id", "string"), ("secret_name", "string"), ("rotation_task_id", "string")]);
    let task_id = r.body["rotation_task_id"].as_str().unwrap().to_owned();
    let new = value(s, &single, "latest").await;
    assert_eq!((new["username"].as_str(), new["host"].as_str()), (Some(role.as_str()), Some("db.local")));
    let password = new["password"].as_str().unwrap();
    assert!(password != "old-password" && password.len() == 32, "{password}");
    assert!(accounts::postgres_holds(&pg, &role, password).await, "PostgreSQL holds the new password");
    assert!(!accounts::postgres_holds(&pg, &role, "old-password").await, "and no longer the old one");
    let previous = read(s, &single, "v1").await;
    assert_eq!(previous.body["version"]["version_metadata"]["version_stages"], json!(["SYSPREVIOUS"]));
    let shown = call(s, Method::GET, &format!("secrets/{single}"), None).await;
    assert!(shown.body["secret"]["rotation_time"].as_i64().is_some(), "{:?}", shown.body);
    assert!(shown.body["secret"]["next_rotation_time"].as_i64().unwrap() > next);

    // MultiUser on MariaDB: the first rotation makes <user>_clone with the
    // first account's grants and makes it current; the next resets the
    // first account. The credentials read before keep working each time.
    let user = accounts::mysql_user(&maria, "a0-password").await;
    let multi = unique("rot-multi");
    database_secret(
        s,
        &multi,
        "RDS-FG",
        &maria_instance,
        "MultiUser",
        &json!({"username": user, "password": "a0-password"}),
    )
    .await;
    let r = call(s, Method::POST, &format!("secrets/{multi}/rotate"), None).await;
    assert_eq!(r.body["version_id"], "v2", "{:?}", r.body);
    let clone = value(s, &multi, "latest").await;
    assert_eq!(clone["username"], format!("{user}_clone"), "the second account became current");
    let clone_password = clone["password"].as_str().unwrap().to_owned();
    assert!(accounts::mysql_login(&maria, &format!("{user}_clone"), &clone_password).await);
    assert!(accounts::mysql_login(&maria, &user, "a0-password").await, "the previous credentials still work");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = call(s, Method::POST, &format!("secrets/{multi}/rotate"), None).await;
    assert_eq!(r.body["version_id"], "v3", "{:?}", r.body);
    let current = value(s, &multi, "latest").await;
    assert_eq!(current["username"], user.as_str(), "the idle account became current");
    let current_password = current["password"].as_str().unwrap();
    assert!(accounts::mysql_login(&maria, &user, current_password).await, "its new password logs in");
    assert!(!accounts::mysql_login(&maria, &user, "a0-password").await, "its old one is refused");
    assert!(accounts::mysql_login(&maria, &format!("{user}_clone"), &clone_password).await, "SYSPREVIOUS still works");
    let prev = read(s, &multi, "v2").await;
    assert_eq!(prev.body["version"]["version_metadata"]["version_stages"], json!(["SYSPREVIOUS"]));

    // Failures: an unknown instance, an unknown account, an unreachable
    // server, a refused statement, a value without credentials, and a
    // type whose agencies are missing (GaussDB-FG here).
    let holds = |role: String, password: &'static str| {
        let pg = pg.clone();
        async move || accounts::postgres_holds(&pg, &role, password).await
    };
    let other = accounts::postgres_role(&pg, "kept-password").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let unreachable = unique("closed");
    let closed_url = format!("postgres://postgres:pw@{closed}/postgres");
    s.register_instance(&project, &unreachable, "postgresql", &closed_url).await;
    // An administrator that may not change other roles' passwords.
    let weak = accounts::postgres_role(&pg, "weak-admin").await;
    let mut weak_url = url::Url::parse(pg.expose()).unwrap();
    weak_url.set_username(&weak).unwrap();
    let refused = unique("weak");
    s.register_instance(&project, &refused, "postgresql", weak_url.as_str()).await;
    let cases = [
        ("unknown-instance", "RDS-FG", "no-such-instance", other.clone(), "is registered"),
        ("unknown-account", "RDS-FG", pg_instance.as_str(), "odtest_nobody".to_owned(), "does not exist"),
        ("no-agency", "GaussDB-FG", pg_instance.as_str(), other.clone(), "agencies"),
        ("unreachable", "RDS-FG", unreachable.as_str(), other.clone(), "cannot be reached"),
        ("refused", "RDS-FG", refused.as_str(), other.clone(), "refused"),
    ];
    for (case, kind, instance, username, why) in cases {
        let name = unique(case);
        let value = json!({"username": username, "password": "kept-password"});
        database_secret(s, &name, kind, instance, "SingleUser", &value).await;
        fails_and_changes_nothing(s, &name, why, holds(other.clone(), "kept-password")).await;
    }
    let name = unique("not-json");
    let config = json!({"InstanceId": pg_instance, "SecretSubType": "SingleUser"}).to_string();
    let body = json!({"name": name, "secret_string": "not json", "secret_type": "RDS-FG", "rotation_config": config});
    assert_eq!(call(s, Method::POST, "secrets", Some(body)).await.status, 200);
    fails_and_changes_nothing(s, &name, "JSON", holds(other.clone(), "kept-password")).await;
    // SYSPENDING is rotation's alone.
    let r =
        call(s, Method::PUT, &format!("secrets/{single}/stages/SYSPENDING"), Some(json!({"version_id": "v1"}))).await;
    assert_error(&r, 400, "CSMS.0002", false);

    // Tasks: filters, the task_id rule (flat errors), paging.
    let r = call(s, Method::GET, &format!("csms/tasks?secret_name={single}"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(&r.body, &[("total", "int"), ("tasks", "array"), ("next_marker", "string")]);
    let statuses: Vec<&str> =
        r.body["tasks"].as_array().unwrap().iter().map(|t| t["task_status"].as_str().unwrap()).collect();
    let expected: &[&str] = if statuses.len() == 2 { &["FAILED", "SUCCESS"] } else { &["SUCCESS"] };
    assert_eq!(statuses, expected, "a failure without agencies when the suite had none, then the success");
    let r = call(s, Method::GET, &format!("csms/tasks?secret_name={name}"), None).await;
    assert_eq!(r.body["total"], 1);
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
    assert_eq!(t["operate_type"], "SINGLE_USER");
    assert!(!t["task_error_msg"].as_str().unwrap().is_empty());
    // The task stores a reason; the gateway spells it as CSMS's code.
    assert_eq!(t["task_error_code"], "CSMS.0002", "{t}");
    let multi_tasks = call(s, Method::GET, &format!("csms/tasks?secret_name={multi}"), None).await;
    assert_eq!(multi_tasks.body["tasks"][1]["operate_type"], "MULTI_USER");
    assert_eq!(multi_tasks.body["tasks"][1]["task_error_code"], "", "a success has no code");
    let failed = call(s, Method::GET, &format!("csms/tasks?secret_name={multi}&status=FAILED"), None).await;
    assert_eq!(failed.body["total"], 0);
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
    let Some(pg) = test_support::postgres_url("scheduled rotation on a PostgreSQL instance") else { return };
    let mut jobs = support::csms_jobs();
    jobs.rotation_hour_ms = 100;
    let s = TestStack::start_with_jobs(db, jobs.clone()).await;
    let pki = &s.stack.pki;
    let database_url = s.csms_database();
    let instance_key = s.dir.path().join("db-instance.key");
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
        let key = csms_service::instances::InstanceKey::from_file(&instance_key).unwrap();
        replicas.push(std::sync::Arc::new(service.with_instance_key(Some(key))));
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

    let role = accounts::postgres_role(&pg, "p0").await;
    s.register_instance(&s.account.project_id, "orders-pg", "postgresql", pg.expose()).await;
    let r = s.call(Method::POST, "/v1/csms/agencies", Some(&json!({"secret_type": "RDS-FG"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let name = unique("scheduled");
    let body = json!({"name": name, "secret_string": json!({"username": role, "password": "p0"}).to_string(),
                      "secret_type": "RDS-FG", "auto_rotation": true, "rotation_period": "6h",
                      "rotation_config": r#"{"InstanceId":"orders-pg","SecretSubType":"SingleUser"}"#});
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
    let latest = value(&s, &name, "latest").await;
    assert!(accounts::postgres_holds(&pg, &role, latest["password"].as_str().unwrap()).await, "the server has it");
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
    let Some(maria) = test_support::mysql_url("scheduled rotation on a MariaDB instance") else { return };
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
    s.register_instance(&project, "orders-maria", "mysql", &maria).await;
    let user = accounts::mysql_user(&maria, "p0-password").await;
    let agency = serde_json::to_vec(&json!({"secret_type": "RDS-FG"})).unwrap();
    let headers = [("content-type", "application/json;charset=utf-8"), ("x-project-id", project.as_str())];
    let r = s.raw(Method::POST, "/v1/csms/agencies", &headers, agency, support::Sign::With(&ak, &sk, 0)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let db_secret = json!({"name": "orders-db", "secret_type": "RDS-FG", "auto_rotation": true,
                           "rotation_period": "6h",
                           "secret_string": json!({"username": user, "password": "p0-password"}).to_string(),
                           "rotation_config": r#"{"InstanceId":"orders-maria","SecretSubType":"SingleUser"}"#});
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
    let key = csms_service::instances::InstanceKey::from_file(&s.dir.path().join("db-instance.key")).unwrap();
    let scheduler = csms_service::service::CsmsService::new(store, kms, 200, jobs, &feeds)
        .await
        .unwrap()
        .with_instance_key(Some(key));
    assert_eq!(scheduler.rotate_due(common::now_ms()).await.unwrap(), 1, "the one rotatable secret, at once");
    let tasks = support::as_other(&s, &ak, &sk, &project, Method::GET, "csms/tasks?secret_name=orders-db", None).await;
    assert_eq!(tasks.body["tasks"][0]["task_status"], "SUCCESS", "{:?}", tasks.body);
    let read = support::as_other(&s, &ak, &sk, &project, Method::GET, "secrets/orders-db/versions/latest", None).await;
    let rotated: Value = serde_json::from_str(read.body["version"]["secret_string"].as_str().unwrap()).unwrap();
    assert!(accounts::mysql_login(&maria, &user, rotated["password"].as_str().unwrap()).await, "MariaDB has it");
    assert!(!accounts::mysql_login(&maria, &user, "p0-password").await);

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
