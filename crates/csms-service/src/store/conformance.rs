//! The behaviour every [`SecretStore`] backend must show.

use std::sync::Arc;

use super::*;
use crate::domain::{SYSCURRENT, SecretRecord, SecretState, ValueKind, VersionRecord};

/// The suite on SQLite, then on Postgres (skipped without a server; a
/// failure under CI).
#[tokio::test]
async fn on_both_backends() {
    let (_dir, pool) = test_support::sqlite_pool("csms").await;
    run(super::sqlite::SqliteSecretStore::new(pool)).await;
    if let Some(pool) = test_support::postgres_pool("csms-service secret store on Postgres", "csms").await {
        run(super::postgres::PgSecretStore::new(pool)).await;
    }
}

fn secret(project: &str, name: &str) -> (SecretRecord, VersionRecord) {
    let id = uuid::Uuid::new_v4().to_string();
    let secret = SecretRecord {
        id: id.clone(),
        project_id: project.to_owned(),
        name: name.to_owned(),
        state: SecretState::Enabled,
        kms_key_id: "3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90".into(),
        description: "déscription".into(),
        secret_type: "COMMON".into(),
        auto_rotation: false,
        rotation_period: String::new(),
        rotation_config: String::new(),
        event_subscriptions: vec!["ev".into()],
        enterprise_project_id: "0".into(),
        rotation_func_urn: String::new(),
        create_ms: 1,
        update_ms: 1,
        scheduled_delete_ms: None,
        rotation_ms: None,
        next_rotation_ms: Some(9),
        state_before_delete: None,
    };
    let version = VersionRecord {
        secret_id: id,
        number: 1,
        kms_key_id: secret.kms_key_id.clone(),
        kind: ValueKind::Binary,
        wrapped_dek: vec![1, 2, 3],
        ciphertext: vec![4, 5, 6],
        create_ms: 1,
        expire_ms: None,
        stages: vec![SYSCURRENT.into()],
    };
    (secret, version)
}

/// Runs every check against a fresh, unmigrated store.
pub(crate) async fn run<S: SecretStore>(store: S) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let clock = store.clock_ms().await.unwrap();
    assert!((clock - common::now_ms()).abs() < 5_000, "the purge task's clock, the database's, is {clock}");
    let store = Arc::new(store);
    create_and_read(&*store).await;
    quota(&*store).await;
    concurrent_creates_with_one_name(store.clone()).await;
    purge(&*store).await;
}

async fn purge<S: SecretStore>(store: &S) {
    let project = "5".repeat(32);
    let (due, v1) = secret(&project, "due");
    let (kept, v2) = secret(&project, "kept");
    store.create_secret(&due, &[v1], 200).await.unwrap();
    store.create_secret(&kept, &[v2], 200).await.unwrap();
    for (name, at) in [("due", 1_000), ("kept", 10_000)] {
        store
            .update_secret(
                &project,
                name,
                Box::new(move |s| {
                    s.state = SecretState::PendingDelete;
                    s.scheduled_delete_ms = Some(at);
                    Ok(())
                }),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.purge_due(5_000).await.unwrap(), vec![due.id.clone()]);
    assert_eq!(store.get_secret(&project, "due").await.unwrap(), None);
    assert_eq!(store.get_version(&due.id, 1).await.unwrap(), None, "versions go with the secret");
    assert!(store.get_secret(&project, "kept").await.unwrap().is_some());
    assert_eq!(store.purge_due(5_000).await.unwrap(), Vec::<String>::new(), "a second replica finds nothing");
}

async fn create_and_read<S: SecretStore>(store: &S) {
    let project = "1".repeat(32);
    let (s, v) = secret(&project, "db.password");
    store.create_secret(&s, std::slice::from_ref(&v), 200).await.unwrap();
    assert_eq!(store.get_secret(&project, "db.password").await.unwrap(), Some(s.clone()));
    assert_eq!(store.get_secret(&"2".repeat(32), "db.password").await.unwrap(), None);
    assert_eq!(store.get_version(&s.id, 1).await.unwrap(), Some(v.clone()));
    assert_eq!(store.get_version(&s.id, 2).await.unwrap(), None);
    assert_eq!(store.get_version_by_stage(&s.id, SYSCURRENT).await.unwrap(), Some(v.clone()));
    assert_eq!(store.get_version_by_stage(&s.id, "OTHER").await.unwrap(), None);
    // The one-round-trip read path.
    let read = store.read_secret_version(&project, "db.password", Some(SYSCURRENT), None).await.unwrap();
    assert_eq!(read, Some((s.clone(), Some(v.clone()))));
    let read = store.read_secret_version(&project, "db.password", None, Some(1)).await.unwrap();
    assert_eq!(read, Some((s.clone(), Some(v.clone()))));
    let read = store.read_secret_version(&project, "db.password", None, Some(2)).await.unwrap();
    assert_eq!(read, Some((s.clone(), None)));
    let read = store.read_secret_version(&project, "db.password", Some("OTHER"), None).await.unwrap();
    assert_eq!(read, Some((s.clone(), None)));
    assert_eq!(store.read_secret_version(&"2".repeat(32), "db.password", Some(SYSCURRENT), None).await.unwrap(), None);
    // Duplicate names are refused and leave nothing behind.
    let (dup, dv) = secret(&project, "db.password");
    assert!(matches!(store.create_secret(&dup, &[dv], 200).await, Err(CreateSecretError::NameTaken)));
    assert_eq!(store.get_version(&dup.id, 1).await.unwrap(), None);
}

async fn quota<S: SecretStore>(store: &S) {
    let project = "3".repeat(32);
    for name in ["a", "b"] {
        let (s, v) = secret(&project, name);
        store.create_secret(&s, &[v], 2).await.unwrap();
    }
    let (s, v) = secret(&project, "c");
    assert!(matches!(store.create_secret(&s, &[v], 2).await, Err(CreateSecretError::QuotaExceeded)));
    assert_eq!(store.get_secret(&project, "c").await.unwrap(), None);
}

async fn concurrent_creates_with_one_name<S: SecretStore>(store: Arc<S>) {
    let project = "4".repeat(32);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let (s, v) = secret(&"4".repeat(32), "race");
                store.create_secret(&s, std::slice::from_ref(&v), 200).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(CreateSecretError::NameTaken) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert!(store.get_secret(&project, "race").await.unwrap().is_some());
}
