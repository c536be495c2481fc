//! The behaviour every [`SecretStore`] backend must show.

use std::sync::Arc;

use super::*;
use crate::domain::{
    SYSCURRENT, SecretRecord, SecretState, ValueKind, VersionRecord,
    events::{
        EventRecord, EventState, EventType, Notice, NotificationTarget, TaskFailure, TaskFilter, TaskRecord,
        TaskStatus, status,
    },
};

mod rotation;

use rotation::{instances, pending_versions, tasks};

fn none() -> Effects {
    Effects::default()
}

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
    let secret = SecretRecord {
        description: "déscription".into(),
        next_rotation_ms: Some(9),
        ..SecretRecord::new(project, name.to_owned(), "3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90".into(), 1)
    };
    let id = secret.id.clone();
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
    events(&*store).await;
    firings_and_delivery(&*store).await;
    concurrent_claims(store.clone()).await;
    fair_claims_and_retention(&*store).await;
    expiries(&*store).await;
    tasks(&*store).await;
    pending_versions(&*store).await;
    grants_and_settings(&*store).await;
    instances(&*store).await;
    // Last: a store is watched once.
    creates_tell_this_process(&*store).await;
}

/// A create tells this process's feed at once after its commit, on both
/// create paths (the one statement far from the quota, the transaction
/// near it), so that its list pages show the secret (common::pages).
async fn creates_tell_this_process<S: SecretStore>(store: &S) {
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = heard.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    store
        .watch(
            Arc::new(move |event| {
                if let common::db::FeedEvent::Changed(id) = event {
                    sink.lock().unwrap().push(id);
                }
            }),
            stop,
        )
        .await
        .unwrap();
    let project = "9".repeat(32);
    for (name, quota) in [("told-far", 1_000_000), ("told-near", 200)] {
        let (s, v) = secret(&project, name);
        store.create_secret(&s, std::slice::from_ref(&v), quota, &none()).await.unwrap();
        assert!(heard.lock().unwrap().contains(&s.id), "creating {name} (quota {quota}) told this process nothing");
    }
}

/// Grants: one per secret and grantee, validity honoured, gone with the
/// secret; the checker switch and agencies per project.
async fn grants_and_settings<S: SecretStore>(store: &S) {
    use crate::domain::grants::GrantRecord;
    let project = "e".repeat(32);
    let (s, v) = secret(&project, "shared");
    store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await.unwrap();
    let grant = |grantee: &str, validity_ms: Option<i64>| GrantRecord {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project.clone(),
        secret_id: s.id.clone(),
        grantee_id: grantee.to_owned(),
        create_ms: 1,
        update_ms: 1,
        validity_ms,
    };
    let first = store.put_grant(&grant("u1", None)).await.unwrap();
    let again = store.put_grant(&grant("u1", Some(5_000))).await.unwrap();
    assert_eq!((again.id.as_str(), again.validity_ms), (first.id.as_str(), Some(5_000)), "one grant per grantee");
    store.put_grant(&grant("u2", None)).await.unwrap();
    let mut other_project = grant("u3", None);
    other_project.project_id = "f".repeat(32);
    assert!(matches!(store.put_grant(&other_project).await, Err(WriteError::Rejected(_))), "not that project's secret");
    assert_eq!(
        store.grants_of(&s.id).await.unwrap().iter().map(|g| g.grantee_id.as_str()).collect::<Vec<_>>(),
        ["u1", "u2"]
    );
    assert_eq!(store.granted_secret(&s.id, "u1", 4_999).await.unwrap().map(|s| s.name), Some("shared".into()));
    assert_eq!(store.granted_secret(&s.id, "u1", 5_000).await.unwrap(), None, "expired");
    assert_eq!(store.granted_secret(&s.id, "nobody", 0).await.unwrap(), None);
    store.update_grant(&s.id, "u1", None, 9).await.unwrap();
    assert!(store.granted_secret(&s.id, "u1", 9_999_999).await.unwrap().is_some());
    assert!(matches!(store.update_grant(&s.id, "nobody", None, 9).await, Err(WriteError::Rejected(_))));
    assert_eq!(store.delete_grants(&s.id, Some("u1")).await.unwrap(), 1);
    assert_eq!(store.granted_secret(&s.id, "u1", 0).await.unwrap(), None);
    assert!(store.delete_secret(&project, "shared").await.unwrap());
    assert!(store.grants_of(&s.id).await.unwrap().is_empty(), "grants go with the secret");

    assert!(!store.checking_strength(&project).await.unwrap());
    store.set_checking_strength(&project, true).await.unwrap();
    assert!(store.checking_strength(&project).await.unwrap());
    assert!(!store.checking_strength(&"f".repeat(32)).await.unwrap());
    let made = store.put_agencies(&project, "RDS-FG", &["a", "b"], 1).await.unwrap();
    assert_eq!(made.len(), 2);
    assert_eq!(store.put_agencies(&project, "RDS-FG", &["a", "b"], 2).await.unwrap(), made, "ids are kept");
    assert!(store.agencies(&project, "GaussDB-FG").await.unwrap().is_empty());
}

fn event(project: &str, name: &str, types: &[EventType]) -> EventRecord {
    EventRecord {
        project_id: project.to_owned(),
        name: name.to_owned(),
        id: uuid::Uuid::new_v4().to_string(),
        event_types: types.to_vec(),
        state: EventState::Enabled,
        target: NotificationTarget {
            target_type: "SMN".into(),
            target_id: format!("urn:smn:local-1:{project}:{name}"),
            target_name: name.to_owned(),
        },
        create_ms: 1,
        update_ms: 1,
    }
}

/// Events: unique names, paging, updates, and the subscription rule (a
/// secret names only an existing event; an event with subscribers stays).
async fn events<S: SecretStore>(store: &S) {
    let project = "6".repeat(32);
    let ops = event(&project, "ops", &[EventType::VersionCreated]);
    assert_eq!(store.create_event(&ops, 100).await.unwrap(), EventInsert::Created);
    let again = store.create_event(&event(&project, "ops", &[EventType::Deleted]), 100).await.unwrap();
    assert_eq!(again, EventInsert::NameTaken, "names are unique");
    assert_eq!(
        store.create_event(&event(&project, "audit", &EventType::ALL), 100).await.unwrap(),
        EventInsert::Created
    );
    assert_eq!(
        store.create_event(&event(&"7".repeat(32), "ops", &[EventType::Rotated]), 100).await.unwrap(),
        EventInsert::Created
    );
    // The quota counts the project's events only.
    let third = store.create_event(&event(&project, "third", &[EventType::Deleted]), 2).await.unwrap();
    assert_eq!(third, EventInsert::QuotaReached, "two events are the quota");
    assert_eq!(store.get_event(&project, "third").await.unwrap(), None, "a refused event is not stored");
    assert_eq!(store.get_event(&project, "ops").await.unwrap(), Some(ops.clone()));
    let names = |v: Vec<EventRecord>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
    assert_eq!(names(store.list_events(&project, None, 10).await.unwrap()), ["audit", "ops"]);
    assert_eq!(names(store.list_events(&project, Some("audit"), 10).await.unwrap()), ["ops"]);
    let updated = store
        .update_event(
            &project,
            "ops",
            Box::new(|e| {
                e.state = EventState::Disabled;
                e.event_types = vec![EventType::Rotated, EventType::RotatedFailed];
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(store.get_event(&project, "ops").await.unwrap(), Some(updated));

    let (mut s, v) = secret(&project, "subscriber");
    s.event_subscriptions = vec!["missing".into()];
    assert!(matches!(
        store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await,
        Err(CreateSecretError::Rejected(_))
    ));
    s.event_subscriptions = vec!["ops".into()];
    store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await.unwrap();
    assert_eq!(store.get_secret(&project, "subscriber").await.unwrap().unwrap().event_subscriptions, ["ops"]);
    let to_missing = store
        .update_secret(
            &project,
            "subscriber",
            Box::new(|s| {
                s.event_subscriptions = vec!["gone".into()];
                Ok(())
            }),
        )
        .await;
    assert!(matches!(to_missing, Err(WriteError::Rejected(_))));
    assert!(matches!(store.delete_event(&project, "ops").await, Err(WriteError::Rejected(_))), "it has a subscriber");
    store
        .update_secret(
            &project,
            "subscriber",
            Box::new(|s| {
                s.event_subscriptions.clear();
                Ok(())
            }),
        )
        .await
        .unwrap();
    store.delete_event(&project, "ops").await.unwrap();
    assert_eq!(store.get_event(&project, "ops").await.unwrap(), None);
    assert!(matches!(store.delete_event(&project, "ops").await, Err(WriteError::Rejected(_))));
    assert!(store.get_event(&"7".repeat(32), "ops").await.unwrap().is_some(), "another project's event stays");
}

/// A firing leaves a record only for an enabled event of that type; the
/// record is claimed with a lease, retried, and settled.
async fn firings_and_delivery<S: SecretStore>(store: &S) {
    let project = "8".repeat(32);
    let now = common::now_ms();
    let on = event(&project, "on", &[EventType::VersionCreated, EventType::Deleted]);
    assert_eq!(store.create_event(&on, 100).await.unwrap(), EventInsert::Created);
    let mut off = event(&project, "off", &EventType::ALL);
    off.state = EventState::Disabled;
    assert_eq!(store.create_event(&off, 100).await.unwrap(), EventInsert::Created);
    let (mut s, mut v) = secret(&project, "watched");
    s.event_subscriptions = vec!["on".into()];
    s.create_ms = now;
    v.create_ms = now;
    let created = Effects::notices([Notice::version(EventType::VersionCreated, 1, None)]);
    store.create_secret(&s, std::slice::from_ref(&v), 200, &created).await.unwrap();
    let (mut quiet, qv) = secret(&project, "quiet");
    quiet.event_subscriptions = vec!["off".into()];
    store.create_secret(&quiet, &[qv], 200, &created).await.unwrap();
    // A type the event does not have records nothing.
    let mut v2 = v.clone();
    v2.number = 2;
    v2.create_ms = now + 1;
    store
        .insert_version(&project, &v2, Box::new(|_| Ok(())), &Effects::notices([Notice::of(EventType::Rotated)]))
        .await
        .unwrap();
    let records = store.list_notifications(&project, 0, None, 10).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!((record.event_name.as_str(), record.event_type.as_str()), ("on", "SECRET_VERSION_CREATED"));
    assert_eq!((record.secret_name.as_str(), record.status.as_str()), ("watched", status::PENDING));
    assert_eq!(record.target_name, "on");
    let content: serde_json::Value = serde_json::from_str(&record.content).unwrap();
    assert_eq!(content["data"]["versionId"], "v1");

    // Claimed once per lease; retried after it; settled.
    let claimed = store.claim_deliveries(now + 10, 1_000, 10, 100).await.unwrap();
    assert_eq!(claimed.iter().map(|r| (&r.id, r.attempts)).collect::<Vec<_>>(), [(&record.id, 1)]);
    assert!(store.claim_deliveries(now + 20, 1_000, 10, 100).await.unwrap().is_empty(), "the lease holds");
    store.settle_delivery(&record.id, &Delivery::Retry { at_ms: now + 500, error: "HTTP 503".into() }).await.unwrap();
    assert!(store.claim_deliveries(now + 100, 1_000, 10, 100).await.unwrap().is_empty(), "not before the retry time");
    let again = store.claim_deliveries(now + 600, 1_000, 10, 100).await.unwrap();
    assert_eq!(again.iter().map(|r| r.attempts).collect::<Vec<_>>(), [2]);
    store.settle_delivery(&record.id, &Delivery::Delivered).await.unwrap();
    assert!(store.claim_deliveries(now + 10_000, 1_000, 10, 100).await.unwrap().is_empty());
    assert_eq!(store.list_notifications(&project, 0, None, 10).await.unwrap()[0].status, status::SUCCESS);

    // Deletion fires too; the list is newest first and pages by record.
    assert!(store.delete_secret(&project, "watched").await.unwrap());
    let records = store.list_notifications(&project, 0, None, 10).await.unwrap();
    let types: Vec<&str> = records.iter().map(|r| r.event_type.as_str()).collect();
    assert_eq!(types, ["SECRET_DELETED", "SECRET_VERSION_CREATED"]);
    let rest = store.list_notifications(&project, 0, Some(&records[0].id), 10).await.unwrap();
    assert_eq!(rest.iter().map(|r| &r.id).collect::<Vec<_>>(), [&records[1].id]);
    assert!(store.list_notifications(&project, now + 60_000, None, 10).await.unwrap().is_empty(), "since");
    assert!(store.list_notifications(&"9".repeat(32), 0, None, 10).await.unwrap().is_empty());
    // The end of a recovery window fires SECRET_DELETED too.
    let (mut due, dv) = secret(&project, "due-watched");
    due.event_subscriptions = vec!["on".into()];
    store.create_secret(&due, &[dv], 200, &none()).await.unwrap();
    store
        .update_secret(
            &project,
            "due-watched",
            Box::new(|s| {
                s.state = SecretState::PendingDelete;
                s.scheduled_delete_ms = Some(2_000);
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert!(store.purge_due(5_000).await.unwrap().contains(&due.id));
    let purged = store.list_notifications(&project, 0, None, 10).await.unwrap();
    assert!(purged.iter().any(|r| r.secret_name == "due-watched" && r.event_type == "SECRET_DELETED"), "{purged:?}");
    // Settle the purge's record; put the rest back as due at once.
    for r in store.claim_deliveries(common::now_ms() + 10, 1_000, 10, 100).await.unwrap() {
        let outcome = if r.secret_name == "due-watched" {
            Delivery::Delivered
        } else {
            Delivery::Retry { at_ms: 0, error: "again".into() }
        };
        store.settle_delivery(&r.id, &outcome).await.unwrap();
    }
    let failed = store.claim_deliveries(common::now_ms() + 10, 1_000, 10, 100).await.unwrap();
    assert_eq!(failed.len(), 1);
    store.settle_delivery(&failed[0].id, &Delivery::Failed { error: "timed out".into() }).await.unwrap();
    assert_eq!(store.list_notifications(&project, 0, None, 1).await.unwrap()[0].status, status::FAIL);
}

/// Two replicas claiming at once never both take one record.
async fn concurrent_claims<S: SecretStore>(store: Arc<S>) {
    let project = "a".repeat(32);
    assert_eq!(
        store.create_event(&event(&project, "busy", &[EventType::VersionCreated]), 100).await.unwrap(),
        EventInsert::Created
    );
    let (mut s, v) = secret(&project, "busy");
    s.event_subscriptions = vec!["busy".into()];
    store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await.unwrap();
    for n in 2..=21 {
        let mut next = v.clone();
        next.number = n;
        next.stages = vec![];
        let notice = Effects::notices([Notice::version(EventType::VersionCreated, n, None)]);
        store.insert_version(&project, &next, Box::new(|_| Ok(())), &notice).await.unwrap();
    }
    let at = common::now_ms() + 1_000;
    let claims: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_deliveries(at, 60_000, 5, 100).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for c in claims {
        ids.extend(c.await.unwrap().into_iter().map(|r| r.id));
    }
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a record was claimed twice");
    assert!(total > 0);
    for id in ids {
        store.settle_delivery(&id, &Delivery::Delivered).await.unwrap();
    }
    while let Some(r) = store.claim_deliveries(at, 60_000, 50, 100).await.unwrap().pop() {
        store.settle_delivery(&r.id, &Delivery::Delivered).await.unwrap();
    }
}

/// A project's backlog takes at most `per_project` places in a claim, so
/// another project's record is claimed in the same batch; settled records
/// past their retention are deleted, pending ones are not.
async fn fair_claims_and_retention<S: SecretStore>(store: &S) {
    let (busy, quiet) = ("c1".repeat(16), "c2".repeat(16));
    for project in [&busy, &quiet] {
        assert_eq!(
            store.create_event(&event(project, "fair", &[EventType::VersionCreated]), 100).await.unwrap(),
            EventInsert::Created
        );
    }
    let (mut s, v) = secret(&busy, "flood");
    s.event_subscriptions = vec!["fair".into()];
    store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await.unwrap();
    for n in 2..=13 {
        let next = VersionRecord { number: n, stages: vec![], ..v.clone() };
        let notice = Effects::notices([Notice::version(EventType::VersionCreated, n, None)]);
        store.insert_version(&busy, &next, Box::new(|_| Ok(())), &notice).await.unwrap();
    }
    let (mut q, qv) = secret(&quiet, "late");
    q.event_subscriptions = vec!["fair".into()];
    let created = Effects::notices([Notice::version(EventType::VersionCreated, 1, None)]);
    store.create_secret(&q, &[qv], 200, &created).await.unwrap();
    let at = common::now_ms() + 1_000;
    let batch = store.claim_deliveries(at, 60_000, 5, 3).await.unwrap();
    let from = |p: &str| batch.iter().filter(|r| r.project_id == p).count();
    assert_eq!((from(&busy), from(&quiet)), (3, 1), "the quiet project is not held back");
    for r in &batch {
        store.settle_delivery(&r.id, &Delivery::Delivered).await.unwrap();
    }
    // Retention: the settled records go, the pending ones stay.
    let later = common::now_ms() + 60_000;
    let purged = store.purge_notifications(later, 1_000).await.unwrap();
    assert!(purged >= 4, "{purged}");
    let left = store.list_notifications(&busy, 0, None, 100).await.unwrap();
    assert!(left.iter().all(|r| r.status == status::PENDING) && left.len() == 9, "{left:?}");
    assert!(store.list_notifications(&quiet, 0, None, 100).await.unwrap().is_empty());
    while let Some(r) = store.claim_deliveries(at, 60_000, 50, 50).await.unwrap().pop() {
        store.settle_delivery(&r.id, &Delivery::Delivered).await.unwrap();
    }
}

/// SECRET_VERSION_EXPIRED fires once per expiry setting.
async fn expiries<S: SecretStore>(store: &S) {
    let project = "b".repeat(32);
    assert_eq!(
        store.create_event(&event(&project, "exp", &[EventType::VersionExpired]), 100).await.unwrap(),
        EventInsert::Created
    );
    let (mut s, mut v) = secret(&project, "expiring");
    s.event_subscriptions = vec!["exp".into()];
    // Far in the past, so that no other test's scan finds it first.
    v.expire_ms = Some(1_000);
    store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await.unwrap();
    let fired_for = |records: Vec<crate::domain::events::NotificationRecord>| {
        records.iter().filter(|r| r.secret_name == "expiring").count()
    };
    assert_eq!(store.fire_due_expiries(500, 100).await.unwrap(), 0, "not yet");
    assert!(store.fire_due_expiries(2_000, 100).await.unwrap() >= 1);
    assert_eq!(fired_for(store.list_notifications(&project, 0, None, 10).await.unwrap()), 1);
    store.fire_due_expiries(3_000, 100).await.unwrap();
    assert_eq!(fired_for(store.list_notifications(&project, 0, None, 10).await.unwrap()), 1, "once per setting");
    store.set_version_expiry(&project, "expiring", 1, Some(2_500), Box::new(|_| Ok(()))).await.unwrap();
    store.fire_due_expiries(3_000, 100).await.unwrap();
    let records = store.list_notifications(&project, 0, None, 10).await.unwrap();
    assert_eq!(fired_for(records.clone()), 2, "a new expiry fires again");
    let content: serde_json::Value = serde_json::from_str(&records[0].content).unwrap();
    assert_eq!(content["data"]["versionExpireTime"], "1970-01-01T00:00:02.500Z");
}

async fn purge<S: SecretStore>(store: &S) {
    let project = "5".repeat(32);
    let (due, v1) = secret(&project, "due");
    let (kept, v2) = secret(&project, "kept");
    store.create_secret(&due, &[v1], 200, &none()).await.unwrap();
    store.create_secret(&kept, &[v2], 200, &none()).await.unwrap();
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
    store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await.unwrap();
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
    assert!(matches!(store.create_secret(&dup, &[dv], 200, &none()).await, Err(CreateSecretError::NameTaken)));
    assert_eq!(store.get_version(&dup.id, 1).await.unwrap(), None);
}

async fn quota<S: SecretStore>(store: &S) {
    let project = "3".repeat(32);
    for name in ["a", "b"] {
        let (s, v) = secret(&project, name);
        store.create_secret(&s, &[v], 2, &none()).await.unwrap();
    }
    let (s, v) = secret(&project, "c");
    assert!(matches!(store.create_secret(&s, &[v], 2, &none()).await, Err(CreateSecretError::QuotaExceeded)));
    assert_eq!(store.get_secret(&project, "c").await.unwrap(), None);
}

async fn concurrent_creates_with_one_name<S: SecretStore>(store: Arc<S>) {
    let project = "4".repeat(32);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let (s, v) = secret(&"4".repeat(32), "race");
                store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await
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

    // Far from the quota on Postgres, concurrent creates share statements
    // (grouped creates): one name raced by many, two projects, versions
    // with and without an expiry, all at once. Every secret made has its
    // version, its stage and its next version number; the counts stay
    // exact.
    let other = "c".repeat(32);
    let tasks: Vec<_> = (0..60i64)
        .map(|i| {
            let store = store.clone();
            let (p, name) = match i % 3 {
                0 => (project.clone(), "grouped-race".to_owned()),
                1 => (project.clone(), format!("grouped-{i}")),
                _ => (other.clone(), format!("grouped-{i}")),
            };
            tokio::spawn(async move {
                let (s, mut v) = secret(&p, &name);
                v.expire_ms = (i % 4 == 0).then_some(5_000 + i);
                v.ciphertext = vec![i as u8; 3 + i as usize];
                let outcome = store.create_secret(&s, std::slice::from_ref(&v), 1_000_000, &none()).await;
                (s, v, outcome)
            })
        })
        .collect();
    let (mut raced, mut made) = (0, 0);
    for t in tasks {
        let (s, v, outcome) = t.await.unwrap();
        match outcome {
            Ok(()) => {
                raced += usize::from(s.name == "grouped-race");
                made += 1;
                let read = store.read_secret_version(&s.project_id, &s.name, Some(SYSCURRENT), None).await.unwrap();
                assert_eq!(read, Some((s.clone(), Some(v))), "{}", s.name);
                let (_, next) = store.reserve_version(&s.project_id, &s.name, Box::new(|_| Ok(()))).await.unwrap();
                assert_eq!(next, 2, "{}", s.name);
            }
            Err(CreateSecretError::NameTaken) => assert_eq!(s.name, "grouped-race"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((raced, made), (1, 41), "one of the raced name, every other secret");
    // "race", then one of "grouped-race" and 20 more; 20 in the other.
    for (p, n) in [(&project, 22), (&other, 20)] {
        let (s, v) = secret(p, "one-more");
        let full = store.create_secret(&s, std::slice::from_ref(&v), n, &none()).await;
        assert!(matches!(full, Err(CreateSecretError::QuotaExceeded)), "{p}: {full:?}");
        store.create_secret(&s, std::slice::from_ref(&v), n + 1, &none()).await.unwrap();
    }
}
