//! One behaviour for both identity backends: every backend's tests call
//! [`run`] (SQLite always, Postgres when a test server is configured).

#![allow(clippy::unwrap_used)]

use crate::{
    admin,
    credentials::SecretString,
    directory::Directory,
    seal::SecretSealer,
    store::{FirstUse, IdentityError, IdentityStore, Kind, SignatureUse},
};

/// Runs every check against `store` (fresh and empty).
pub async fn run(store: impl IdentityStore) {
    let store: std::sync::Arc<dyn IdentityStore> = std::sync::Arc::new(store);
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    let sealer = SecretSealer::new(&[9; 32]).unwrap();
    let v0 = store.version().await.unwrap();

    // Create the hierarchy; names are unique where they must be.
    let domain = admin::create_domain(&*store, "acme").await.unwrap();
    assert!(matches!(admin::create_domain(&*store, "acme").await, Err(IdentityError::AlreadyExists(Kind::Domain))));
    assert!(matches!(admin::create_domain(&*store, "bad name!").await, Err(IdentityError::Invalid(_))));
    let project = admin::create_project(&*store, &domain.id, "local-1").await.unwrap();
    assert!(matches!(
        admin::create_project(&*store, &domain.id, "local-1").await,
        Err(IdentityError::AlreadyExists(Kind::Project))
    ));
    assert!(matches!(
        admin::create_project(&*store, &common::identity::new_hex32(), "x").await,
        Err(IdentityError::NotFound(Kind::Domain))
    ));
    let password = SecretString::new("a long password".into());
    let user = admin::create_user(&*store, &domain.id, "alice", &password).await.unwrap();
    assert!(matches!(
        admin::create_user(&*store, &domain.id, "alice", &password).await,
        Err(IdentityError::AlreadyExists(Kind::User))
    ));
    assert!(matches!(
        admin::create_user(&*store, &domain.id, "bob", &SecretString::new("short".into())).await,
        Err(IdentityError::Invalid(_))
    ));
    let (key, sk) = admin::create_access_key(&*store, &sealer, &user.id, "ci").await.unwrap();
    assert!(matches!(
        admin::create_access_key(&*store, &sealer, &common::identity::new_hex32(), "").await,
        Err(IdentityError::NotFound(Kind::User))
    ));
    assert!(store.version().await.unwrap() > v0, "every change bumps the version");

    // Nothing secret is stored as it was given.
    let records = store.load().await.unwrap();
    let stored = format!("{:?}", records.access_keys)
        + &records.users.iter().map(|u| u.password_hash.clone()).collect::<String>();
    assert!(!stored.contains(sk.expose()) && !stored.contains(password.expose()));
    assert!(records.users[0].password_hash.starts_with("$argon2id$"));

    // The directory sees it all, and follows changes after a refresh.
    let directory = Directory::open(store.clone(), sealer.clone()).await.unwrap();
    let snap = directory.snapshot();
    assert_eq!(snap.access_key(&key.access_key).unwrap().secret.expose(), sk.expose());
    assert!(snap.domain_owns_project(&domain.id, &project.id));
    assert_eq!(snap.user_by_name("acme", "alice").unwrap().0.id, user.id);
    assert_eq!(snap.projects_of(&domain.id).len(), 1);
    assert!(!directory.refresh().await.unwrap(), "no change, no reload");

    store.set_enabled(Kind::AccessKey, &key.access_key, false).await.unwrap();
    assert!(directory.refresh().await.unwrap());
    assert!(directory.snapshot().access_key(&key.access_key).is_none(), "disabled key");
    store.set_enabled(Kind::AccessKey, &key.access_key, true).await.unwrap();
    store.set_enabled(Kind::User, &user.id, false).await.unwrap();
    directory.refresh().await.unwrap();
    let snap = directory.snapshot();
    assert!(snap.access_key(&key.access_key).is_none() && snap.active_user(&user.id).is_none(), "disabled user");
    store.set_enabled(Kind::User, &user.id, true).await.unwrap();
    store.set_enabled(Kind::Project, &project.id, false).await.unwrap();
    directory.refresh().await.unwrap();
    assert!(!directory.snapshot().domain_owns_project(&domain.id, &project.id), "disabled project");
    store.set_enabled(Kind::Project, &project.id, true).await.unwrap();
    store.set_enabled(Kind::Domain, &domain.id, false).await.unwrap();
    directory.refresh().await.unwrap();
    assert!(directory.snapshot().access_key(&key.access_key).is_none(), "disabled domain");
    store.set_enabled(Kind::Domain, &domain.id, true).await.unwrap();

    admin::set_password(&*store, &user.id, &SecretString::new("another password".into())).await.unwrap();
    let hash = store.load().await.unwrap().users[0].password_hash.clone();
    assert!(super::seal::verify_password(&hash, "another password"));
    assert!(matches!(store.set_enabled(Kind::User, "nobody", false).await, Err(IdentityError::NotFound(Kind::User))));

    // Deleting a user deletes its keys; deleting a domain everything in it.
    store.delete(Kind::User, &user.id).await.unwrap();
    directory.refresh().await.unwrap();
    assert!(directory.snapshot().access_key(&key.access_key).is_none());
    assert!(store.load().await.unwrap().access_keys.is_empty());
    assert!(matches!(store.delete(Kind::User, &user.id).await, Err(IdentityError::NotFound(Kind::User))));
    store.delete(Kind::Domain, &domain.id).await.unwrap();
    let left = store.load().await.unwrap();
    assert!(left.domains.is_empty() && left.projects.is_empty() && left.users.is_empty());

    // A sealed SK does not open under another identity key: the key is
    // left out of the directory instead of failing the whole load.
    let domain = admin::create_domain(&*store, "other").await.unwrap();
    let user = admin::create_user(&*store, &domain.id, "carol", &password).await.unwrap();
    let (key, _) = admin::create_access_key(&*store, &sealer, &user.id, "").await.unwrap();
    let stranger = Directory::open(store.clone(), SecretSealer::new(&[1; 32]).unwrap()).await.unwrap();
    assert!(stranger.snapshot().access_key(&key.access_key).is_none());
    assert!(stranger.snapshot().active_user(&user.id).is_some());
    // No SK opens at all: the identity key is another deployment's, which
    // readiness reports (before: ready, and every signature failed).
    assert!(stranger.snapshot().wrong_identity_key());
    assert!(!Directory::open(store.clone(), sealer.clone()).await.unwrap().snapshot().wrong_identity_key());
}

/// A credentials file seeds a fresh store once; what an operator deletes
/// afterwards is not brought back by the next start's import (issue #15,
/// finding 3: it was, so a deleted, leaked AK worked again after a restart).
pub async fn deleted_accounts_stay_deleted(store: impl IdentityStore, dir: &std::path::Path) {
    store.migrate().await.unwrap();
    let sealer = SecretSealer::new(&[5; 32]).unwrap();
    let file = dir.join("credentials.json");
    crate::credentials::load_or_create(&file, "local-1").unwrap();
    assert_eq!(admin::import_credentials(&store, &sealer, &file).await.unwrap(), 4, "domain, project, user, key");
    let records = store.load().await.unwrap();
    let key = records.access_keys[0].access_key.clone();
    store.delete(Kind::AccessKey, &key).await.unwrap();
    assert_eq!(admin::import_credentials(&store, &sealer, &file).await.unwrap(), 0);
    assert!(store.load().await.unwrap().access_keys.iter().all(|k| k.access_key != key), "the deleted key came back");
}

/// A one-shot signature's first use is recorded once, by whichever caller
/// (replica) gets there first, and every later use reads that time; it is
/// forgotten only after its window (issue #15, finding 10). Times are
/// compared only with each other: a shared store records its own clock.
pub async fn signatures_remember_their_first_use(store: impl IdentityStore) {
    store.migrate().await.unwrap();
    let store = std::sync::Arc::new(store);
    let (first, second) = ([1u8; 32], [2u8; 32]);
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.use_signature(&first, 100 + i, 1_000).await.unwrap() })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut firsts = 0;
    for racer in racers {
        let used = racer.await.unwrap();
        seen.insert(used.first_ms);
        firsts += usize::from(used.this_one);
        assert!(used.age_ms >= 0);
    }
    assert_eq!(seen.len(), 1, "eight concurrent uses agree on one first use: {seen:?}");
    assert_eq!(firsts, 1, "exactly one of eight concurrent uses is the first");
    let winner = *seen.iter().next().unwrap();
    let again = store.use_signature(&first, 900, 1_000).await.unwrap();
    assert_eq!((again.first_ms, again.this_one), (winner, false));
    // A repeat in the very millisecond of the first is still a repeat.
    let at_once = store.use_signature(&first, winner, 1_000).await.unwrap();
    assert_eq!((at_once.first_ms, at_once.this_one), (winner, false));
    let second_use = store.use_signature(&second, 500, 2_000).await.unwrap();
    assert_eq!((second_use.age_ms, second_use.this_one), (0, true));
    assert_eq!(store.forget_used_signatures(1_000).await.unwrap(), 0, "still inside its window");
    assert_eq!(store.forget_used_signatures(1_001).await.unwrap(), 1);
    let forgotten = store.use_signature(&first, 1_500, 3_000).await.unwrap();
    assert_eq!((forgotten.age_ms, forgotten.this_one), (0, true), "forgotten after its window");
    assert_eq!(store.use_signature(&second, 1_600, 3_000).await.unwrap().first_ms, second_use.first_ms);

    // A batch (the gateway groups concurrent requests): a digest twice in
    // one batch is one use and its repeat, and a recorded one reads its
    // first use.
    let at = |d: u8, now_ms: i64| SignatureUse { digest: [d; 32], now_ms, expires_ms: 9_000 };
    let firsts = store.use_signatures(&[at(3, 2_000), at(4, 2_001), at(3, 2_002), at(2, 2_003)]).await.unwrap();
    assert_eq!(firsts[0].first_ms, firsts[2].first_ms);
    assert_eq!(firsts[3].first_ms, second_use.first_ms);
    assert_eq!(firsts.iter().map(|u| u.this_one).collect::<Vec<_>>(), vec![true, true, false, false]);
    // The same digest twice in one batch in one millisecond: one first.
    let same = store.use_signatures(&[at(5, 2_100), at(5, 2_100)]).await.unwrap();
    assert_eq!(same.iter().map(|u| u.this_one).collect::<Vec<_>>(), vec![true, false]);
    // Forgotten (its first use failed): the next use is a first again.
    store.forget_signature(&[5; 32]).await.unwrap();
    assert!(store.use_signatures(&[at(5, 2_200)]).await.unwrap()[0].this_one);
    // Replicas' overlapping batches, in opposite orders, all finish and
    // agree: rows are inserted in digest order (unordered, two such
    // batches deadlocked here on Postgres, 40P01).
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let mut batch: Vec<SignatureUse> = (10..250).map(|d| at(d, 3_000 + i)).collect();
            if i % 2 == 1 {
                batch.reverse();
            }
            tokio::spawn(async move {
                let firsts = store.use_signatures(&batch).await.unwrap();
                batch.iter().map(|u| u.digest[0]).zip(firsts).collect::<std::collections::BTreeMap<_, FirstUse>>()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for racer in racers {
        answers.push(racer.await.unwrap());
    }
    for digest in 10..250u8 {
        let firsts = answers.iter().filter(|a| a[&digest].this_one).count();
        assert_eq!(firsts, 1, "digest {digest}: {firsts} replicas each saw the first use");
    }
    let answers: Vec<Vec<i64>> = answers.iter().map(|a| a.values().map(|u| u.first_ms).collect()).collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "replicas disagree on first uses: {answers:?}");
}

/// A repeat's age is measured on one clock. Two replicas whose clocks are
/// two minutes apart use one signature a moment apart: a shared store
/// (`shared`: Postgres) answers an age of a moment, whatever the replicas'
/// clocks say; the embedded store (one gateway, one clock) measures the
/// caller's. Before, the gateway compared its own clock with the first
/// replica's, so skew widened or closed the replay grace (issue #40).
pub async fn repeats_are_aged_on_the_stores_clock(store: impl IdentityStore, shared: bool) {
    store.migrate().await.unwrap();
    let now = common::now_ms();
    let digest = [0xA5; 32];
    let behind = store.use_signature(&digest, now - 60_000, now + 900_000).await.unwrap();
    let ahead = store.use_signature(&digest, now + 60_000, now + 900_000).await.unwrap();
    assert!(behind.this_one && !ahead.this_one);
    if shared {
        assert!((0..5_000).contains(&ahead.age_ms), "aged on the callers' clocks: {ahead:?}");
        assert!((behind.first_ms - now).abs() < 60_000, "the store's clock records the first use: {behind:?}");
    } else {
        assert_eq!(ahead.age_ms, 120_000, "one process, one clock: the caller's");
    }
}

#[cfg(test)]
mod tests {
    /// The suite on SQLite, then on Postgres (skipped without a server; a
    /// failure under CI).
    #[tokio::test]
    async fn on_both_backends() {
        let (dir, pool) = test_support::sqlite_pool("iam").await;
        super::run(crate::sqlite::SqliteIdentityStore::new(pool)).await;
        let (_second, pool) = test_support::sqlite_pool("iam").await;
        super::deleted_accounts_stay_deleted(crate::sqlite::SqliteIdentityStore::new(pool), dir.path()).await;
        let (_third, pool) = test_support::sqlite_pool("iam").await;
        super::signatures_remember_their_first_use(crate::sqlite::SqliteIdentityStore::new(pool)).await;
        let (_fourth, pool) = test_support::sqlite_pool("iam").await;
        super::repeats_are_aged_on_the_stores_clock(crate::sqlite::SqliteIdentityStore::new(pool), false).await;
        if let Some(pool) = test_support::postgres_pool("identity store on Postgres", "iam").await {
            super::run(crate::postgres::PgIdentityStore::new(pool)).await;
            let pool = test_support::postgres_pool("identity store on Postgres", "iam").await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            super::deleted_accounts_stay_deleted(crate::postgres::PgIdentityStore::new(pool), dir.path()).await;
            let pool = test_support::postgres_pool("identity store on Postgres", "iam").await.unwrap();
            super::signatures_remember_their_first_use(crate::postgres::PgIdentityStore::new(pool)).await;
            let pool = test_support::postgres_pool("identity store on Postgres", "iam").await.unwrap();
            super::repeats_are_aged_on_the_stores_clock(crate::postgres::PgIdentityStore::new(pool), true).await;
        }
    }
}
