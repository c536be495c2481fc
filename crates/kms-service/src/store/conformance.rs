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
    rotation_is_once_per_period(store.clone()).await;
    aliases(&*store).await;
    tags(&*store).await;
    grants(&*store).await;
    purge(&*store).await;
}

/// A rotation inserts the new version with the record; two replicas that
/// race for one due key rotate it once; due keys are found by period.
async fn rotation_is_once_per_period<S: KeyStore>(store: Arc<S>) {
    let project = "7".repeat(32);
    let key = store.create_key(new_key(record(&project, "rot", 1)), None).await.unwrap();
    let id = key.key_id;
    store.update_key(&project, id, Box::new(|k| k.enable_rotation(1_000))).await.unwrap();
    store.update_key(&project, id, Box::new(|k| k.set_rotation_interval(30))).await.unwrap();
    let day = 100;
    assert!(store.due_rotations(3_999, day, 10).await.unwrap().iter().all(|(_, k)| *k != id));
    assert!(store.due_rotations(4_000, day, 10).await.unwrap().contains(&(project.clone(), id)));

    let racers = (0..4).map(|_| {
        let store = store.clone();
        let project = project.clone();
        tokio::spawn(async move {
            let wrap: WrapMaterial = Box::new(|k| Ok(vec![k.material_version.unwrap() as u8; 60]));
            store
                .rotate_key(
                    &project,
                    id,
                    Box::new(|k| k.rotate(4_000, crate::domain::Rotation::Scheduled { day_ms: 100 })),
                    wrap,
                )
                .await
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(racers).await.into_iter().map(Result::unwrap).collect();
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 1, "{outcomes:?}");
    for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(matches!(lost, UpdateKeyError::Rejected(crate::domain::Rejection::RotationNotDue)), "{lost:?}");
    }
    let rotated = store.get_key(&project, id).await.unwrap().unwrap();
    assert_eq!((rotated.material_version, rotated.rotations, rotated.rotation_anchor_ms), (Some(2), 1, Some(4_000)));
    let versions: Vec<i32> = store.material_versions(id).await.unwrap().into_iter().map(|(v, _)| v).collect();
    assert_eq!(versions, [1, 2]);
    let materials = store.materials(id).await.unwrap();
    assert_eq!(materials[1], (2, vec![2; 60]));
    assert!(store.due_rotations(4_000, day, 10).await.unwrap().iter().all(|(_, k)| *k != id));
    // A refused material write rolls the whole rotation back.
    let refused: WrapMaterial = Box::new(|_| Err(crate::domain::Rejection::InvalidKeySpec));
    let r =
        store.rotate_key(&project, id, Box::new(|k| k.rotate(5_000, crate::domain::Rotation::OnDemand)), refused).await;
    assert!(matches!(r, Err(UpdateKeyError::Rejected(crate::domain::Rejection::InvalidKeySpec))), "{r:?}");
    assert_eq!(store.get_key(&project, id).await.unwrap().unwrap().material_version, Some(2));
    assert_eq!(store.material_versions(id).await.unwrap().len(), 2);
}

async fn aliases<S: KeyStore>(store: &S) {
    let project = "8".repeat(32);
    let a = store.create_key(new_key(record(&project, "al-a", 1)), None).await.unwrap().key_id;
    let b = store.create_key(new_key(record(&project, "al-b", 2)), None).await.unwrap().key_id;
    let created = store.create_alias(&project, "alias/one", a, 10, 2).await.unwrap();
    assert_eq!((created.key_id, created.create_ms, created.update_ms), (a, 10, 10));
    assert!(matches!(store.create_alias(&project, "alias/one", b, 11, 2).await, Err(UpdateKeyError::AliasTaken)));
    // Another project may use the name.
    let other = "9".repeat(32);
    let c = store.create_key(new_key(record(&other, "al-c", 3)), None).await.unwrap().key_id;
    store.create_alias(&other, "alias/one", c, 12, 2).await.unwrap();
    assert!(matches!(store.create_alias(&project, "alias/x", c, 12, 2).await, Err(UpdateKeyError::NotFound)));
    store.create_alias(&project, "alias/two", a, 13, 2).await.unwrap();
    let full = store.create_alias(&project, "alias/three", a, 14, 2).await;
    assert!(matches!(full, Err(UpdateKeyError::Rejected(crate::domain::Rejection::AliasLimit))), "{full:?}");
    let page = store.list_aliases(&project, None, "", 1).await.unwrap();
    assert_eq!(page.iter().map(|x| x.alias.as_str()).collect::<Vec<_>>(), ["alias/one"]);
    let rest = store.list_aliases(&project, Some(a), "alias/one", 10).await.unwrap();
    assert_eq!(rest.iter().map(|x| x.alias.as_str()).collect::<Vec<_>>(), ["alias/two"]);
    let moved = store.associate_alias(&project, "alias/one", b, 20, 2).await.unwrap();
    assert_eq!((moved.key_id, moved.create_ms, moved.update_ms), (b, 10, 20));
    assert_eq!(store.find_alias(&project, "alias/one").await.unwrap().unwrap().key_id, b);
    assert_eq!(store.find_alias(&other, "alias/one").await.unwrap().unwrap().key_id, c);
    // Deleting is all or nothing, and only for the key the alias names.
    let wrong = store.delete_aliases(&project, a, &["alias/two".into(), "alias/one".into()]).await;
    assert!(matches!(wrong, Err(UpdateKeyError::Rejected(crate::domain::Rejection::AliasNotFound))), "{wrong:?}");
    assert!(store.find_alias(&project, "alias/two").await.unwrap().is_some());
    store.delete_aliases(&project, a, &["alias/two".into()]).await.unwrap();
    assert!(store.find_alias(&project, "alias/two").await.unwrap().is_none());
}

fn limits(per_key: usize, per_project: usize) -> GrantLimits {
    GrantLimits { per_key, per_project }
}

async fn grants<S: KeyStore>(store: &S) {
    use crate::domain::{GrantOperation as Op, GrantRecord, PrincipalType, Rejection};
    let project = "3".repeat(32);
    let key = store.create_key(new_key(record(&project, "granted", 1)), None).await.unwrap().key_id;
    let grant = |n: u8, retiring: Option<&str>| GrantRecord {
        grant_id: hex::encode([n; 32]),
        key_id: key,
        project_id: project.clone(),
        grantee: "grantee".into(),
        grantee_type: PrincipalType::User,
        operations: vec![Op::DescribeKey, Op::EncryptData],
        issuing_principal: "issuer".into(),
        retiring_principal: retiring.map(str::to_owned),
        name: format!("g{n}"),
        creation_ms: i64::from(n),
    };
    store.create_grant(&grant(1, Some("retirer")), Box::new(|_| Ok(())), limits(2, 9)).await.unwrap();
    store.create_grant(&grant(2, None), Box::new(|_| Ok(())), limits(2, 9)).await.unwrap();
    let full = store.create_grant(&grant(3, None), Box::new(|_| Ok(())), limits(2, 9)).await;
    assert!(matches!(full, Err(UpdateKeyError::Rejected(Rejection::GrantQuota))), "{full:?}");
    let refused =
        store.create_grant(&grant(4, None), Box::new(|_| Err(Rejection::KeyPendingDeletion)), limits(9, 9)).await;
    assert!(matches!(refused, Err(UpdateKeyError::Rejected(Rejection::KeyPendingDeletion))), "{refused:?}");
    let missing = GrantRecord { project_id: "2".repeat(32), ..grant(5, None) };
    assert!(matches!(
        store.create_grant(&missing, Box::new(|_| Ok(())), limits(9, 9)).await,
        Err(UpdateKeyError::NotFound)
    ));
    let all = store.grants_of(key).await.unwrap();
    assert_eq!(all, [grant(1, Some("retirer")), grant(2, None)], "as written, oldest first");
    // The project's limit counts every key's grants.
    let second_key = store.create_key(new_key(record(&project, "granted-too", 2)), None).await.unwrap().key_id;
    let on_second = GrantRecord { key_id: second_key, ..grant(6, None) };
    let r = store.create_grant(&on_second, Box::new(|_| Ok(())), limits(9, 2)).await;
    assert!(matches!(r, Err(UpdateKeyError::Rejected(Rejection::GrantProjectQuota))), "{r:?}");
    assert_eq!(store.find_grant(&hex::encode([2u8; 32])).await.unwrap(), Some(grant(2, None)));
    let (retirable, total) = store.retirable_grants(&["retirer", "some-domain"], 0, 10).await.unwrap();
    assert_eq!((retirable, total), (vec![grant(1, Some("retirer"))], 1));
    assert!(store.delete_grant(&grant(2, None)).await.unwrap());
    assert!(!store.delete_grant(&grant(2, None)).await.unwrap());
    assert_eq!(store.grants_of(key).await.unwrap().len(), 1);
    assert_eq!(store.get_key_any(key).await.unwrap().unwrap().project_id, project);
}

async fn tags<S: KeyStore>(store: &S) {
    let project = "5".repeat(32);
    let a = store.create_key(new_key(record(&project, "tag-a", 1)), None).await.unwrap().key_id;
    let b = store.create_key(new_key(record(&project, "tag-b", 2)), None).await.unwrap().key_id;
    store.put_tags(&project, a, &[("env".into(), "prod".into()), ("team".into(), "x".into())], 3).await.unwrap();
    store.put_tags(&project, a, &[("env".into(), "test".into())], 3).await.unwrap();
    store.put_tags(&project, b, &[("env".into(), "prod".into())], 3).await.unwrap();
    assert_eq!(store.tags(a).await.unwrap(), [("env".into(), "test".into()), ("team".into(), "x".into())]);
    let over = store.put_tags(&project, a, &[("k1".into(), String::new()), ("k2".into(), String::new())], 3).await;
    assert!(matches!(over, Err(UpdateKeyError::Rejected(crate::domain::Rejection::Tag(_)))), "{over:?}");
    assert_eq!(store.tags(a).await.unwrap().len(), 2, "a refused write writes nothing");
    assert!(matches!(store.put_tags(&"4".repeat(32), a, &[], 3).await, Err(UpdateKeyError::NotFound)));
    let missing = store.delete_tags(&project, a, &["nope".into()], true).await;
    assert!(matches!(missing, Err(UpdateKeyError::Rejected(crate::domain::Rejection::Tag(_)))), "{missing:?}");
    store.delete_tags(&project, a, &["nope".into(), "team".into()], false).await.unwrap();
    let all = store.keys_with_tags(&project).await.unwrap();
    let by_alias: Vec<_> =
        all.iter().filter(|(k, _)| k.alias.starts_with("tag-")).map(|(k, t)| (k.alias.as_str(), t.clone())).collect();
    assert_eq!(
        by_alias,
        [
            ("tag-a", vec![("env".to_owned(), "test".to_owned())]),
            ("tag-b", vec![("env".to_owned(), "prod".to_owned())])
        ]
    );
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

    // Far from the quota on Postgres, concurrent creates share statements
    // (grouped creates): one alias raced by many, two projects, keys with
    // and without material, all at once.
    let other = "c".repeat(32);
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = store.clone();
            let (p, alias) = match i % 3 {
                0 => (project.clone(), "grouped-race".to_owned()),
                1 => (project.clone(), format!("grouped-{i}")),
                _ => (other.clone(), format!("grouped-{i}")),
            };
            let mut r = record(&p, &alias, 1000 + i);
            let key = if i % 5 == 0 {
                r.origin = KeyOrigin::External;
                r.state = KeyState::PendingImport;
                r.material_version = None;
                NewKey { record: r, wrapped_material: None }
            } else {
                new_key(r)
            };
            let id = key.record.key_id;
            tokio::spawn(async move { (id, store.create_key(key, Some(1_000_000)).await) })
        })
        .collect();
    let (mut raced, mut made) = (0, Vec::new());
    for t in tasks {
        let (id, outcome) = t.await.unwrap();
        match outcome {
            Ok(r) => {
                raced += usize::from(r.alias == "grouped-race");
                made.push((id, r.material_version.is_some()));
            }
            Err(CreateKeyError::AliasTaken) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!((raced, made.len()), (1, 41), "one of the raced alias, every other key");
    for (id, with_material) in made {
        assert_eq!(store.materials(id).await.unwrap().len(), usize::from(with_material), "material of {id}");
    }
    assert_eq!(store.count_user_keys(&project).await.unwrap(), 17 + 21);
    assert_eq!(store.count_user_keys(&other).await.unwrap(), 20);
    assert_eq!(store.list_keys(&other, &all, 0, 100).await.unwrap().1, 20);
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

/// The migrations of issue #12 apply over a database of the schema before
/// them, with keys in it: the keys keep working, rotation off at the
/// documented default interval, and take aliases and tags. (Migrations are
/// forward-only: every replica runs them at start, in order.)
#[tokio::test]
async fn migrations_apply_over_the_previous_schema() {
    let (_dir, pool) = test_support::sqlite_pool("kms").await;
    previous_schema::<sqlx::Sqlite>(&pool).await;
    from_previous_schema(super::sqlite::SqliteKeyStore::new(pool)).await;
    if let Some(pool) = test_support::postgres_pool("kms-service migrations on Postgres", "kms").await {
        previous_schema::<sqlx::Postgres>(&pool).await;
        from_previous_schema(super::postgres::PgKeyStore::new(pool)).await;
    }
}

/// The first migration of issue #12.
const FIRST_NEW_MIGRATION: i64 = 20261203000001;
const OLD_KEY: &str = "0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9";
const OLD_PROJECT: &str = "0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld00";

/// Applies the migrations before issue #12 and writes a key as that schema
/// had it.
async fn previous_schema<D: super::sql::Dialect>(pool: &sqlx::Pool<D>)
where
    D::Connection: sqlx::migrate::Migrate,
    for<'c> &'c sqlx::Pool<D>: sqlx::Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: sqlx::IntoArguments<'q, D>,
{
    let previous = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            D::MIGRATOR.migrations.iter().filter(|m| m.version < FIRST_NEW_MIGRATION).cloned().collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    assert!(previous.migrations.len() < D::MIGRATOR.migrations.len());
    previous.run(pool).await.unwrap();
    let insert = format!(
        "INSERT INTO keys (key_id, project_id, domain_id, key_alias, key_description, key_spec, key_usage, origin, \
         key_state, default_key, enterprise_project_id, rotation_enabled, creation_ms, material_version) \
         VALUES ('{OLD_KEY}', '{OLD_PROJECT}', 'd', 'old', '', 'AES_256', 'ENCRYPT_DECRYPT', 'kms', 2, false, '0', \
         false, 1, 1)"
    );
    sqlx::query(&insert).execute(pool).await.unwrap();
}

async fn from_previous_schema<S: KeyStore>(store: S) {
    store.migrate().await.unwrap();
    let id: KeyId = OLD_KEY.parse().unwrap();
    let key = store.get_key(OLD_PROJECT, id).await.unwrap().expect("the old key survives");
    assert_eq!(
        (key.rotation_enabled, key.rotation_interval_days, key.rotations, key.last_rotation_ms, key.material_version),
        (false, crate::domain::DEFAULT_ROTATION_INTERVAL_DAYS, 0, None, Some(1))
    );
    store.update_key(OLD_PROJECT, id, Box::new(|k| k.enable_rotation(10))).await.unwrap();
    store.create_alias(OLD_PROJECT, "alias/old", id, 10, 5).await.unwrap();
    store.put_tags(OLD_PROJECT, id, &[("env".into(), "old".into())], 20).await.unwrap();
    assert_eq!(store.tags(id).await.unwrap().len(), 1);
}
