//! The conformance suite's rotation part: tasks and due secrets, the
//! pending version of a rotation in progress, registered instances.

use super::*;

fn task(project: &str, secret: &str, status: TaskStatus) -> TaskRecord {
    TaskRecord {
        id: uuid::Uuid::now_v7().to_string(),
        project_id: project.to_owned(),
        secret_name: secret.to_owned(),
        rotation_func_urn: String::new(),
        status,
        operate_type: "SINGLE_USER".into(),
        task_ms: common::now_ms(),
        attempts: 1,
        failure: (status == TaskStatus::Failed).then_some(TaskFailure::KmsKeyUnusable),
        error_msg: String::new(),
    }
}

/// Tasks: recorded with their secret's change, filtered, paged by id;
/// secrets due for rotation are found by their next rotation time.
pub(super) async fn tasks<S: SecretStore>(store: &S) {
    let project = "c".repeat(32);
    let (mut s, v) = secret(&project, "db");
    s.secret_type = "RDS-FG".into();
    s.auto_rotation = true;
    s.next_rotation_ms = Some(4_000);
    store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await.unwrap();
    let due = store.due_rotations(5_000, 1_000, 10).await.unwrap();
    assert!(due.contains(&(project.clone(), "db".to_owned())));
    assert!(!store.due_rotations(3_999, 1_000, 10).await.unwrap().contains(&(project.clone(), "db".to_owned())));
    // COMMON secrets are never due (nothing here rotates them), and one
    // project's backlog takes at most `per_project` places in a scan.
    let crowded = "e".repeat(32);
    for (i, kind) in ["COMMON", "COMMON", "COMMON", "RDS-FG", "RDS-FG", "RDS-FG"].into_iter().enumerate() {
        let (mut s, v) = secret(&crowded, &format!("crowd-{i}"));
        (s.secret_type, s.auto_rotation, s.next_rotation_ms) = (kind.into(), true, Some(1_000 + i as i64));
        store.create_secret(&s, std::slice::from_ref(&v), 200, &none()).await.unwrap();
    }
    let due = store.due_rotations(5_000, 3, 2).await.unwrap();
    let names = |p: &str| due.iter().filter(|(q, _)| q == p).map(|(_, n)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&crowded), ["crowd-3", "crowd-4"], "oldest first, no COMMON, two of the project");
    assert_eq!(names(&project), ["db"], "another project's due secret is not held back");
    let mut ids = Vec::new();
    for status in [TaskStatus::Success, TaskStatus::Failed, TaskStatus::Success] {
        let t = task(&project, "db", status);
        ids.push(t.id.clone());
        let effects = Effects { notices: vec![], task: Some(t) };
        store
            .record_rotation(
                &project,
                &s.id,
                Box::new(|s| {
                    s.next_rotation_ms = Some(99_000);
                    Ok(())
                }),
                &effects,
                None,
            )
            .await
            .unwrap();
    }
    assert_eq!(store.get_secret(&project, "db").await.unwrap().unwrap().next_rotation_ms, Some(99_000));
    // Success, failure, success: the latest task succeeded.
    assert_eq!(store.failures_in_a_row(&project, "db", 0, 3).await.unwrap(), 0);
    let all = TaskFilter::default();
    let (total, page) = store.list_tasks(&project, &all, None, 2).await.unwrap();
    assert_eq!((total, page.iter().map(|t| &t.id).collect::<Vec<_>>()), (3, vec![&ids[0], &ids[1]]));
    let (_, rest) = store.list_tasks(&project, &all, Some(&ids[1]), 2).await.unwrap();
    assert_eq!(rest.iter().map(|t| &t.id).collect::<Vec<_>>(), [&ids[2]]);
    let failed = TaskFilter { status: Some(TaskStatus::Failed), ..TaskFilter::default() };
    let (total, page) = store.list_tasks(&project, &failed, None, 10).await.unwrap();
    assert_eq!((total, page[0].id.as_str()), (1, ids[1].as_str()));
    let one = TaskFilter { task_id: Some(ids[2].clone()), ..TaskFilter::default() };
    assert_eq!(store.list_tasks(&project, &one, None, 10).await.unwrap().0, 1);
    let other = TaskFilter { secret_name: Some("other".into()), ..TaskFilter::default() };
    assert_eq!(store.list_tasks(&project, &other, None, 10).await.unwrap().0, 0);
    assert_eq!(store.list_tasks(&"d".repeat(32), &all, None, 10).await.unwrap().0, 0, "per project");
    for _ in 0..2 {
        let effects = Effects { notices: vec![], task: Some(task(&project, "db", TaskStatus::Failed)) };
        store.record_rotation(&project, &s.id, Box::new(|_| Ok(())), &effects, None).await.unwrap();
    }
    assert_eq!(store.failures_in_a_row(&project, "db", 0, 3).await.unwrap(), 2);
    assert_eq!(store.failures_in_a_row(&project, "db", 0, 1).await.unwrap(), 1, "looks at `limit` tasks");
    let later = common::now_ms() + 60_000;
    assert_eq!(store.failures_in_a_row(&project, "db", later, 3).await.unwrap(), 0, "only tasks since");
}

/// A rotation's pending version: staged once (SYSPENDING is a lock),
/// renewed only by the attempt that saw it, promoted to SYSCURRENT (its
/// predecessor to SYSPREVIOUS) or abandoned (deleted with its stage).
pub(super) async fn pending_versions<S: SecretStore>(store: &S) {
    use crate::domain::{SYSPENDING, SYSPREVIOUS};
    let project = "f".repeat(32);
    let (s, v1) = secret(&project, "pending-db");
    store.create_secret(&s, std::slice::from_ref(&v1), 200, &none()).await.unwrap();
    let staged = |number: i32| VersionRecord { number, create_ms: 10, stages: vec![SYSPENDING.into()], ..v1.clone() };
    let ok = || -> SecretMutation { Box::new(|_| Ok(())) };
    store.insert_version(&project, &staged(2), ok(), &none()).await.unwrap();
    let again = store.insert_version(&project, &staged(3), ok(), &none()).await;
    assert!(matches!(again, Err(WriteError::Rejected(Rejection::RotationInProgress))), "{again:?}");
    let stage = store.get_stage(&s.id, SYSPENDING).await.unwrap().unwrap();
    assert_eq!(stage.version, 2);
    assert!(store.renew_pending(&s.id, 2, stage.update_ms, 500).await.unwrap());
    assert!(!store.renew_pending(&s.id, 2, stage.update_ms, 600).await.unwrap(), "renewed by the first only");
    let current = store.get_version_by_stage(&s.id, SYSCURRENT).await.unwrap().unwrap();
    assert_eq!(current.number, 1, "a pending version is never current");
    let promoted = store.promote_pending(&project, &s.id, 2, ok(), &none()).await.unwrap();
    assert_eq!(promoted.stages, [SYSCURRENT]);
    assert_eq!(store.get_version(&s.id, 1).await.unwrap().unwrap().stages, [SYSPREVIOUS]);
    assert!(store.get_stage(&s.id, SYSPENDING).await.unwrap().is_none());
    let twice = store.promote_pending(&project, &s.id, 2, ok(), &none()).await;
    assert!(matches!(twice, Err(WriteError::Rejected(_))), "promoted once: {twice:?}");
    // Abandoned: the stage and the version go, the others stay.
    store.insert_version(&project, &staged(3), ok(), &none()).await.unwrap();
    let failed = Effects { notices: vec![], task: Some(task(&project, "pending-db", TaskStatus::Failed)) };
    store.record_rotation(&project, &s.id, ok(), &failed, Some(3)).await.unwrap();
    assert!(store.get_version(&s.id, 3).await.unwrap().is_none());
    assert!(store.get_stage(&s.id, SYSPENDING).await.unwrap().is_none());
    assert_eq!(store.get_version(&s.id, 2).await.unwrap().unwrap().stages, [SYSCURRENT]);
}

/// Registered database instances: one id per project, listed by project,
/// removed once.
pub(super) async fn instances<S: SecretStore>(store: &S) {
    use crate::domain::instances::{DbEngine, InstanceRecord};
    let (a, b) = ("1a".repeat(16), "2b".repeat(16));
    let record = |project: &str, id: &str| InstanceRecord {
        project_id: project.to_owned(),
        id: id.to_owned(),
        engine: DbEngine::Mysql,
        display_url: "mysql://db.internal:3306/".into(),
        sealed_url: vec![1, 2, 3],
        create_ms: 7,
    };
    assert!(store.add_instance(&record(&a, "rds-1")).await.unwrap());
    assert!(!store.add_instance(&record(&a, "rds-1")).await.unwrap(), "one id per project");
    assert!(store.add_instance(&record(&b, "rds-1")).await.unwrap(), "ids are the project's");
    assert_eq!(store.get_instance(&a, "rds-1").await.unwrap(), Some(record(&a, "rds-1")));
    assert_eq!(store.get_instance(&a, "rds-2").await.unwrap(), None);
    assert_eq!(store.list_instances(Some(&b)).await.unwrap(), vec![record(&b, "rds-1")]);
    assert!(store.list_instances(None).await.unwrap().len() >= 2);
    assert!(store.remove_instance(&a, "rds-1").await.unwrap());
    assert!(!store.remove_instance(&a, "rds-1").await.unwrap());
    assert_eq!(store.get_instance(&b, "rds-1").await.unwrap(), Some(record(&b, "rds-1")), "the other project's stays");
}
