//! The behaviour every [`KeyStore`] backend must show. Called from the
//! `tests` module of each backend.

use std::sync::Arc;

use super::*;
use crate::domain::{KeyId, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage};

/// The suite on SQLite, then on Postgres (skipped without a server; a
/// failure under CI).
#[tokio::test]
async fn on_both_backends() {
    let (_dir, pool) = test_support::sqlite_pool("kms").await;
    run(super::sqlite::SqliteKeyStore::new(pool)).await;
    if let Some(pool) = test_support::postgres_pool("kms-service key store on Postgres", "kms").await {
        run(super::postgres::PgKeyStore::new(pool)).await;
    }
}

fn record(project: &str, alias: &str, creation_ms: i64) -> KeyRecord {
    KeyRecord { domain_id: "d".repeat(32), creation_ms, ..KeyRecord::sample(project, alias) }
}

fn new_key(r: KeyRecord) -> NewKey {
    NewKey { record: r, wrapped_material: Some(vec![7; 60]) }
}

/// Runs every check against a fresh, unmigrated store.
pub(crate) async fn run<S: KeyStore>(store: S) {
    store.migrate().await.unwrap();
    // Migrating twice is harmless (every replica migrates at start).
    store.migrate().await.unwrap();
    // The purge task's clock is the database's (here, on this machine,
    // the same as ours).
    let clock = store.clock_ms().await.unwrap();
    assert!((clock - common::now_ms()).abs() < 5_000, "database clock {clock}");
    let store = Arc::new(store);
    fingerprint(&*store).await;
    create_read_and_alias_uniqueness(&*store).await;
    quota_counts_only_user_keys(&*store).await;
    concurrent_creates_with_one_alias(store.clone()).await;
    listing(&*store).await;
    updates(&*store).await;
    purge(&*store).await;
}

async fn updates<S: KeyStore>(store: &S) {
    let project = "6".repeat(32);
    let a = store.create_key(new_key(record(&project, "a", 1)), None).await.unwrap();
    store.create_key(new_key(record(&project, "b", 2)), None).await.unwrap();
    let before = store.round_trips();
    let changed = store
        .update_key(
            &project,
            a.key_id,
            Box::new(|k| {
                k.state = KeyState::Disabled;
                k.description = "off".into();
                k.alias = "a2".into();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert!(store.round_trips() > before);
    assert_eq!(
        (changed.state, changed.description.as_str(), changed.alias.as_str()),
        (KeyState::Disabled, "off", "a2")
    );
    assert_eq!(store.get_key(&project, a.key_id).await.unwrap(), Some(changed.clone()));
    // A rejected mutation changes nothing.
    let rejected = store
        .update_key(
            &project,
            a.key_id,
            Box::new(|k| {
                k.alias = "zzz".into();
                Err(crate::domain::Rejection::KeyNotEnabled)
            }),
        )
        .await;
    assert!(matches!(rejected, Err(UpdateKeyError::Rejected(crate::domain::Rejection::KeyNotEnabled))));
    assert_eq!(store.get_key(&project, a.key_id).await.unwrap(), Some(changed));
    // Alias uniqueness holds for renames.
    let taken = store
        .update_key(
            &project,
            a.key_id,
            Box::new(|k| {
                k.alias = "b".into();
                Ok(())
            }),
        )
        .await;
    assert!(matches!(taken, Err(UpdateKeyError::AliasTaken)), "{taken:?}");
    // Another project's key is not found.
    let other = store.update_key(&"7".repeat(32), a.key_id, Box::new(|_| Ok(()))).await;
    assert!(matches!(other, Err(UpdateKeyError::NotFound)));
    assert_eq!(store.count_user_keys(&project).await.unwrap(), 2);
}

async fn purge<S: KeyStore>(store: &S) {
    let project = "8".repeat(32);
    let due = store.create_key(new_key(record(&project, "due", 1)), None).await.unwrap();
    let later = store.create_key(new_key(record(&project, "later", 2)), None).await.unwrap();
    let enabled = store.create_key(new_key(record(&project, "kept", 3)), None).await.unwrap();
    for (key, at) in [(&due, 1_000), (&later, 10_000)] {
        store
            .update_key(
                &project,
                key.key_id,
                Box::new(move |k| {
                    k.state = KeyState::PendingDeletion;
                    k.scheduled_deletion_ms = Some(at);
                    Ok(())
                }),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.purge_due(5_000).await.unwrap(), vec![due.key_id]);
    assert_eq!(store.get_key(&project, due.key_id).await.unwrap(), None);
    assert_eq!(store.materials(due.key_id).await.unwrap(), vec![], "material is destroyed with the key");
    assert!(store.get_key(&project, later.key_id).await.unwrap().is_some());
    assert!(store.get_key(&project, enabled.key_id).await.unwrap().is_some());
    // Running again (another replica) deletes nothing more.
    assert_eq!(store.purge_due(5_000).await.unwrap(), vec![]);
}

async fn fingerprint<S: KeyStore>(store: &S) {
    assert_eq!(store.claim_root_fingerprint("aaaa").await.unwrap(), "aaaa");
    assert_eq!(store.claim_root_fingerprint("bbbb").await.unwrap(), "aaaa");
}

async fn create_read_and_alias_uniqueness<S: KeyStore>(store: &S) {
    let project = "1".repeat(32);
    let mut r = record(&project, "app", 10);
    r.description = "désc".into();
    r.scheduled_deletion_ms = Some(5);
    let created = store.create_key(new_key(r.clone()), None).await.unwrap();
    assert_eq!(created, r);
    assert_eq!(store.get_key(&project, r.key_id).await.unwrap(), Some(r.clone()));
    assert_eq!(store.find_by_alias(&project, "app").await.unwrap(), Some(r.clone()));
    assert_eq!(store.materials(r.key_id).await.unwrap(), vec![(1, vec![7; 60])]);
    assert_eq!(store.materials(KeyId::new()).await.unwrap(), vec![]);
    // Another project sees nothing.
    assert_eq!(store.get_key(&"2".repeat(32), r.key_id).await.unwrap(), None);
    // One alias per project; the same alias in another project is fine.
    let dup = store.create_key(new_key(record(&project, "app", 11)), None).await;
    assert!(matches!(dup, Err(CreateKeyError::AliasTaken)), "{dup:?}");
    store.create_key(new_key(record(&"2".repeat(32), "app", 11)), None).await.unwrap();
    // A refused create leaves nothing behind.
    let (keys, total) = store.list_keys(&project, &KeyFilter::default(), 0, 100).await.unwrap();
    assert_eq!((keys.len(), total), (1, 1));
    // Keys without material.
    let mut ext = record(&project, "ext", 12);
    ext.origin = KeyOrigin::External;
    ext.state = KeyState::PendingImport;
    ext.material_version = None;
    store.create_key(NewKey { record: ext.clone(), wrapped_material: None }, None).await.unwrap();
    assert_eq!(store.get_key(&project, ext.key_id).await.unwrap(), Some(ext));
}

async fn quota_counts_only_user_keys<S: KeyStore>(store: &S) {
    let project = "3".repeat(32);
    let mut default = record(&project, "csms/default", 1);
    default.default_key = true;
    store.create_key(new_key(default), None).await.unwrap();
    store.create_key(new_key(record(&project, "a", 2)), Some(2)).await.unwrap();
    store.create_key(new_key(record(&project, "b", 3)), Some(2)).await.unwrap();
    let third = store.create_key(new_key(record(&project, "c", 4)), Some(2)).await;
    assert!(matches!(third, Err(CreateKeyError::QuotaExceeded)), "{third:?}");
}

async fn concurrent_creates_with_one_alias<S: KeyStore>(store: Arc<S>) {
    let project = "4".repeat(32);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let r = record(&project, "race", i);
            tokio::spawn(async move { store.create_key(new_key(r), Some(100)).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CreateKeyError::AliasTaken) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    // Far from the quota creates run without the project lock; the counts
    // stay exact.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let r = record(&project, &format!("parallel-{i}"), 100 + i);
            tokio::spawn(async move { store.create_key(new_key(r), Some(1_000_000)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.count_user_keys(&project).await.unwrap(), 17);
    let all = KeyFilter { state: None, spec: None };
    assert_eq!(store.list_keys(&project, &all, 0, 100).await.unwrap().1, 17);
}

async fn listing<S: KeyStore>(store: &S) {
    let project = "5".repeat(32);
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut r = record(&project, &format!("k{i}"), 100 + i);
        if i == 4 {
            r.spec = KeySpec::Hmac256;
            r.usage = KeyUsage::GenerateVerifyMac;
        }
        if i == 3 {
            r.state = KeyState::Disabled;
        }
        ids.push(r.key_id);
        store.create_key(new_key(r), None).await.unwrap();
    }
    let all = KeyFilter::default();
    let (page, total) = store.list_keys(&project, &all, 1, 2).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(page.iter().map(|k| k.key_id).collect::<Vec<_>>(), ids[1..3]);
    let aes = KeyFilter { spec: Some(KeySpec::Aes256), state: None };
    assert_eq!(store.list_keys(&project, &aes, 0, 10).await.unwrap().1, 4);
    let disabled = KeyFilter { spec: None, state: Some(KeyState::Disabled) };
    let (page, total) = store.list_keys(&project, &disabled, 0, 10).await.unwrap();
    assert_eq!((page[0].key_id, total), (ids[3], 1));
    let (page, total) = store.list_keys(&project, &all, 10, 10).await.unwrap();
    assert_eq!((page.len(), total), (0, 5));
}
