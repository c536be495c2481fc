//! Two kms-service processes on one Postgres: a state change made through
//! one stops the key on the other within a second, the purge task deletes
//! due keys everywhere, a revoked grant stops working on the other within
//! a second too, list pages follow both replicas' changes within a
//! second, and scheduled rotations happen once per period whichever
//! replica gets there.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::identity::CallerIdentity;
use proto::kms::v1::{self as pb, key_management_service_client::KeyManagementServiceClient};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::{Code, transport::Channel};

struct Replica {
    child: tokio::process::Child,
    client: KeyManagementServiceClient<Channel>,
}

impl Replica {
    /// Two replicas on one fresh Postgres database under one root key;
    /// `None` (the test skipped) without a test server.
    async fn pair(test: &str, root_key_byte: &str) -> Option<(Self, Self, common::db::DatabaseUrl)> {
        let server = test_support::postgres_url(test)?;
        let db = test_support::fresh_postgres_database(&server).await;
        let root_key = root_key_byte.repeat(32);
        Some((Self::start(db.expose(), &root_key).await, Self::start(db.expose(), &root_key).await, db))
    }

    /// Creates a key with `alias` through this replica.
    async fn create_key(&mut self, alias: &str) -> pb::Key {
        let request = pb::CreateKeyRequest { key_alias: alias.into(), ..Default::default() };
        self.client.create_key(caller().request(request)).await.unwrap().into_inner().key.unwrap()
    }

    async fn start(database: &str, root_key: &str) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kms-service"))
            .args(["--kms-listen", "127.0.0.1:0", "--purge-interval-seconds", "1", "--log-format", "json"])
            // A rotation "day" of 20 ms: the shortest interval, 30 days, is 600 ms.
            .args(["--rotation-check-seconds", "1", "--rotation-day-ms", "20"])
            .env("OPENDEW_KMS_DATABASE_URL", database)
            .env("OPENDEW_ROOT_KEY", root_key)
            // Cache invalidation is under test here, not the transport.
            .env("OPENDEW_GRPC_PLAINTEXT", "true")
            .env("OPENDEW_LOG", "info")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start kms-service");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if event["message"] == "kms-service listening" {
                    return event["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("kms-service exited before listening");
        })
        .await
        .expect("kms-service did not start within 30 s");
        // Keep draining its output so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let client = KeyManagementServiceClient::connect(format!("http://{addr}")).await.unwrap();
        Self { child, client }
    }

    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.unwrap().unwrap();
        assert!(status.success(), "kms-service exited with {status}");
    }
}

fn caller() -> CallerIdentity {
    CallerIdentity {
        domain_id: "d".repeat(32),
        project_id: "a".repeat(32),
        user_id: "u".into(),
        request_id: "replica-test".into(),
    }
}

async fn create_datakey(r: &mut Replica, key_id: &str) -> Result<(), tonic::Status> {
    r.client
        .create_datakey(caller().request(pb::CreateDatakeyRequest { key_id: key_id.into(), ..Default::default() }))
        .await
        .map(|_| ())
}

/// Polls `r` until create-datakey fails with `code`; returns how long it took.
async fn until_refused(r: &mut Replica, key_id: &str, code: Code) -> Duration {
    let start = Instant::now();
    loop {
        match create_datakey(r, key_id).await {
            Err(status) if status.code() == code => return start.elapsed(),
            _ if start.elapsed() > Duration::from_secs(5) => panic!("the other replica still serves the key after 5 s"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn describe(r: &mut Replica, key_id: &str) -> pb::Key {
    let request = caller().request(pb::DescribeKeyRequest { key_id: key_id.into(), ..Default::default() });
    r.client.describe_key(request).await.unwrap().into_inner().key.unwrap()
}

/// Polls `r`'s describe-key until `seen` holds; returns how long it took.
async fn until_described(r: &mut Replica, key_id: &str, seen: impl Fn(&pb::Key) -> bool) -> Duration {
    let start = Instant::now();
    while !seen(&describe(r, key_id).await) {
        assert!(start.elapsed() < Duration::from_secs(5), "the other replica still describes the old key after 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_change_on_one_replica_reaches_the_other_within_a_second() {
    let Some((mut a, mut b, db)) = Replica::pair("kms-service replicas", "5c").await else { return };

    let key = a.create_key("replicated").await;
    let id = key.key_id.clone();
    // B serves it (and now has it cached).
    for _ in 0..3 {
        create_datakey(&mut b, &id).await.unwrap();
    }

    // A grant lets another domain's user use the key through B; revoked on
    // A, it stops working on B within a second.
    let grantee = CallerIdentity {
        domain_id: "e".repeat(32),
        project_id: "f".repeat(32),
        user_id: "grantee0user0id".into(),
        request_id: "replica-grantee".into(),
    };
    let grant_id = a
        .client
        .create_grant(caller().request(pb::CreateGrantRequest {
            key_id: id.clone(),
            grantee_principal: grantee.user_id.clone(),
            operations: vec!["create-datakey".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .grant_id;
    let as_grantee = |r: &mut Replica| {
        let request = grantee.request(pb::CreateDatakeyRequest { key_id: id.clone(), ..Default::default() });
        let mut client = r.client.clone();
        async move { client.create_datakey(request).await.map(|_| ()) }
    };
    let start = Instant::now();
    while as_grantee(&mut b).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(1), "the grant did not reach the other replica");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.client
        .revoke_grant(caller().request(pb::GrantRef { key_id: id.clone(), grant_id, ..Default::default() }))
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        match as_grantee(&mut b).await {
            Err(status) if status.code() == Code::NotFound => break,
            _ => assert!(start.elapsed() < Duration::from_secs(1), "the revoke did not reach the other replica in 1 s"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // describe-key is served from the cache too (issue #16): B describes
    // the key from memory, and a change made on A shows there within a second.
    assert_eq!(describe(&mut b, &id).await.key_state, pb::KeyState::Enabled as i32);
    a.client
        .update_key_description(caller().request(pb::UpdateKeyDescriptionRequest {
            key_id: id.clone(),
            key_description: "changed on A".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let took = until_described(&mut b, &id, |k| k.key_description == "changed on A").await;
    assert!(took < Duration::from_secs(1), "a description change reached B's describe-key after {took:?}");

    a.client.disable_key(caller().request(pb::KeyRequest { key_id: id.clone(), ..Default::default() })).await.unwrap();
    let took = until_refused(&mut b, &id, Code::FailedPrecondition).await;
    assert!(took < Duration::from_secs(1), "disable reached the other replica after {took:?}");
    let took = until_described(&mut b, &id, |k| k.key_state == pb::KeyState::Disabled as i32).await;
    assert!(took < Duration::from_secs(1), "disable reached B's describe-key after {took:?}");

    a.client.enable_key(caller().request(pb::KeyRequest { key_id: id.clone(), ..Default::default() })).await.unwrap();
    let start = Instant::now();
    while create_datakey(&mut b, &id).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(1), "enable did not reach the other replica");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    a.client
        .schedule_key_deletion(caller().request(pb::ScheduleKeyDeletionRequest {
            key_id: id.clone(),
            pending_days: 7,
            ..Default::default()
        }))
        .await
        .unwrap();
    let took = until_refused(&mut b, &id, Code::FailedPrecondition).await;
    assert!(took < Duration::from_secs(1), "schedule-deletion reached the other replica after {took:?}");

    // Make the deletion due now; the purge task (every second) removes it.
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(db.expose()).await.unwrap();
    sqlx::query("UPDATE kms.keys SET scheduled_deletion_ms = 0 WHERE key_id = $1")
        .bind(&id)
        .execute(&mut conn)
        .await
        .unwrap();
    until_refused(&mut b, &id, Code::NotFound).await;
    let described = a
        .client
        .describe_key(caller().request(pb::DescribeKeyRequest { key_id: id.clone(), ..Default::default() }))
        .await;
    assert_eq!(described.unwrap_err().code(), Code::NotFound);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kms.key_materials WHERE key_id = $1")
        .bind(&id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "material is destroyed");

    a.stop().await;
    b.stop().await;
}

async fn list(r: &mut Replica) -> Vec<pb::Key> {
    let request = caller().request(pb::ListKeysRequest { all_specs: true, ..Default::default() });
    r.client.list_keys(request).await.unwrap().into_inner().keys
}

/// Polls `r`'s list-keys until `seen` holds; returns how long it took.
async fn until_listed(r: &mut Replica, seen: impl Fn(&[pb::Key]) -> bool) -> Duration {
    let start = Instant::now();
    while !seen(&list(r).await) {
        assert!(start.elapsed() < Duration::from_secs(5), "the other replica still lists the old keys after 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// list-keys pages are remembered (common::pages): a replica's own change
/// is in its next list, another replica's within a second.
#[tokio::test]
async fn list_pages_follow_changes_on_either_replica() {
    let Some((mut a, mut b, db)) = Replica::pair("kms-service replicas", "5d").await else { return };
    let create = |r: &mut Replica, alias: &str| {
        let request = caller().request(pb::CreateKeyRequest { key_alias: alias.into(), ..Default::default() });
        let mut client = r.client.clone();
        async move { client.create_key(request).await.unwrap().into_inner().key.unwrap().key_id }
    };
    let first = create(&mut a, "listed-1").await;
    // Both replicas hold a page with the one key.
    until_listed(&mut a, |keys| keys.len() == 1).await;
    until_listed(&mut b, |keys| keys.len() == 1).await;

    // A create: in the creating replica's next list at once, in the other's
    // within the page bound (creations send no notification).
    let second = create(&mut a, "listed-2").await;
    assert!(list(&mut a).await.iter().any(|k| k.key_id == second), "a replica's own create is in its next list");
    let took = until_listed(&mut b, |keys| keys.iter().any(|k| k.key_id == second)).await;
    assert!(took < Duration::from_secs(1), "a create on A reached B's list after {took:?}");

    // A state change on B: in A's list within a second (the change feed).
    until_listed(&mut a, |keys| keys.len() == 2).await;
    b.client
        .disable_key(caller().request(pb::KeyRequest { key_id: first.clone(), ..Default::default() }))
        .await
        .unwrap();
    let disabled =
        |keys: &[pb::Key]| keys.iter().any(|k| k.key_id == first && k.key_state == pb::KeyState::Disabled as i32);
    assert!(disabled(&list(&mut b).await), "a replica's own disable is in its next list");
    let took = until_listed(&mut a, disabled).await;
    assert!(took < Duration::from_secs(1), "a disable on B reached A's list after {took:?}");

    // A deletion (scheduled, then due and purged) leaves every list.
    a.client
        .schedule_key_deletion(caller().request(pb::ScheduleKeyDeletionRequest {
            key_id: second.clone(),
            pending_days: 7,
            ..Default::default()
        }))
        .await
        .unwrap();
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(db.expose()).await.unwrap();
    sqlx::query("UPDATE kms.keys SET scheduled_deletion_ms = 0 WHERE key_id = $1")
        .bind(&second)
        .execute(&mut conn)
        .await
        .unwrap();
    for r in [&mut a, &mut b] {
        until_listed(r, |keys| keys.len() == 1 && keys[0].key_id == first).await;
    }

    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn two_replicas_rotate_a_due_key_once_per_period() {
    let Some((mut a, mut b, _db)) = Replica::pair("kms-service replicas rotating", "6d").await else { return };
    let key = a.create_key("rotating").await;
    let id = key.key_id.clone();
    let encrypt = |text: &str| pb::EncryptDataRequest {
        key_id: id.clone(),
        plaintext: text.as_bytes().to_vec(),
        ..Default::default()
    };
    let first = a.client.encrypt_data(caller().request(encrypt("under material 1"))).await.unwrap().into_inner();
    let key_request = || caller().request(pb::KeyRequest { key_id: id.clone(), ..Default::default() });
    a.client.enable_key_rotation(key_request()).await.unwrap();
    a.client
        .update_key_rotation_interval(caller().request(pb::UpdateKeyRotationIntervalRequest {
            key_id: id.clone(),
            rotation_interval_days: 30,
            ..Default::default()
        }))
        .await
        .unwrap();

    // Both replicas run the task every second; the key is due every 600 ms.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    a.client.disable_key_rotation(key_request()).await.unwrap();
    let status = b.client.get_key_rotation_status(key_request()).await.unwrap().into_inner();
    let rotations = status.number_of_rotations as usize;
    assert!((2..=8).contains(&rotations), "{rotations} rotations in 4.5 s");
    let versions: Vec<i32> = status.key_materials.iter().map(|m| m.version).collect();
    assert_eq!(versions, (1..=rotations as i32 + 1).collect::<Vec<_>>(), "one new version per rotation");
    // Two replicas rotating one period would leave two versions moments
    // apart; each period's rotation starts the next, 600 ms later.
    for pair in status.key_materials[1..].windows(2) {
        let gap = pair[1].create_time_ms - pair[0].create_time_ms;
        assert!(gap >= 590, "versions {} and {} are {gap} ms apart", pair[0].version, pair[1].version);
    }
    assert!(status.key_materials.last().unwrap().current);

    // New ciphertexts use the newest material on either replica; the first
    // still opens on both.
    let newest = b.client.encrypt_data(caller().request(encrypt("under the newest"))).await.unwrap().into_inner();
    for r in [&mut a, &mut b] {
        for (blob, text) in [(&first.ciphertext, "under material 1"), (&newest.ciphertext, "under the newest")] {
            let opened = r
                .client
                .decrypt_data(
                    caller().request(pb::DecryptDataRequest { ciphertext: blob.clone(), ..Default::default() }),
                )
                .await
                .unwrap()
                .into_inner();
            assert_eq!(opened.plaintext, text.as_bytes());
        }
    }
    a.stop().await;
    b.stop().await;
}
