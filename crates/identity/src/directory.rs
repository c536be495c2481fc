//! The in-memory directory every request consults: the whole identity
//! store, SKs opened, indexed for the lookups authentication needs.
//!
//! A background task polls the store's change counter (one tiny query per
//! `--identity-refresh-seconds`) and swaps in a freshly loaded snapshot when
//! it moved, so a change made anywhere (another replica, the admin command)
//! reaches every replica within one interval. Requests only clone an `Arc`.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use crate::{
    credentials::SecretString,
    seal::SecretSealer,
    store::{DomainRow, IdentityError, IdentityStore, ProjectRow, Records, UserRow},
};

/// An access key that authenticates, with its user and domain.
#[derive(Debug, Clone)]
pub struct ActiveKey {
    /// The SK, opened.
    pub secret: SecretString,
    /// Its user.
    pub user: Arc<UserRow>,
    /// The user's domain.
    pub domain: Arc<DomainRow>,
}

/// One consistent view of the store.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The store's change counter at load.
    pub version: i64,
    domains: HashMap<String, Arc<DomainRow>>,
    domain_by_name: HashMap<String, String>,
    projects: HashMap<String, Arc<ProjectRow>>,
    users: HashMap<String, Arc<UserRow>>,
    user_by_name: HashMap<(String, String), String>,
    keys: HashMap<String, (bool, String, SecretString)>,
    /// Stored access keys whose SK did not open under this identity key.
    pub unopened_keys: usize,
}

impl Snapshot {
    /// Builds the indexes and opens every SK. A key whose SK does not open
    /// is left out (and logged): it cannot authenticate anyway.
    fn build(records: Records, sealer: &SecretSealer) -> Self {
        let mut s = Snapshot { version: records.version, ..Default::default() };
        for d in records.domains {
            s.domain_by_name.insert(d.name.clone(), d.id.clone());
            s.domains.insert(d.id.clone(), Arc::new(d));
        }
        for p in records.projects {
            s.projects.insert(p.id.clone(), Arc::new(p));
        }
        for u in records.users {
            s.user_by_name.insert((u.domain_id.clone(), u.name.clone()), u.id.clone());
            s.users.insert(u.id.clone(), Arc::new(u));
        }
        for k in records.access_keys {
            match sealer.open(&k.access_key, &k.sealed_secret) {
                Ok(secret) => {
                    s.keys.insert(k.access_key.clone(), (k.enabled, k.user_id, secret));
                }
                Err(e) => {
                    s.unopened_keys += 1;
                    tracing::warn!(access_key = %k.access_key, error = %e, "access key left out");
                }
            }
        }
        s
    }

    /// Access keys are stored and none of their SKs opens: the gateway was
    /// given another deployment's identity key, and no signed request can
    /// succeed. Readiness reports it rather than saying ready (issue #15,
    /// finding 11).
    pub fn wrong_identity_key(&self) -> bool {
        self.unopened_keys > 0 && self.keys.is_empty()
    }

    fn active_domain(&self, id: &str) -> Option<&Arc<DomainRow>> {
        self.domains.get(id).filter(|d| d.enabled)
    }

    /// An enabled domain.
    pub fn domain(&self, id: &str) -> Option<Arc<DomainRow>> {
        self.active_domain(id).cloned()
    }

    /// The user, if it and its domain are enabled.
    pub fn active_user(&self, user_id: &str) -> Option<(&Arc<UserRow>, &Arc<DomainRow>)> {
        let user = self.users.get(user_id).filter(|u| u.enabled)?;
        Some((user, self.active_domain(&user.domain_id)?))
    }

    /// An enabled access key of an enabled user of an enabled domain.
    pub fn access_key(&self, access_key: &str) -> Option<ActiveKey> {
        let (enabled, user_id, secret) = self.keys.get(access_key)?;
        if !enabled {
            return None;
        }
        let (user, domain) = self.active_user(user_id)?;
        Some(ActiveKey { secret: secret.clone(), user: user.clone(), domain: domain.clone() })
    }

    /// A user for password login, by domain name and user name (enabled).
    pub fn user_by_name(&self, domain_name: &str, user_name: &str) -> Option<(&Arc<UserRow>, &Arc<DomainRow>)> {
        let domain_id = self.domain_by_name.get(domain_name)?;
        let user_id = self.user_by_name.get(&(domain_id.clone(), user_name.to_owned()))?;
        self.active_user(user_id)
    }

    /// Every user of a domain (enabled or not), by name.
    pub fn users_of(&self, domain_id: &str) -> Vec<Arc<UserRow>> {
        let mut users: Vec<_> = self.users.values().filter(|u| u.domain_id == domain_id).cloned().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        users
    }

    /// A user of any state, by id.
    pub fn user(&self, user_id: &str) -> Option<&Arc<UserRow>> {
        self.users.get(user_id)
    }

    /// An enabled project of an enabled domain.
    pub fn project(&self, project_id: &str) -> Option<&Arc<ProjectRow>> {
        let project = self.projects.get(project_id).filter(|p| p.enabled)?;
        self.active_domain(&project.domain_id)?;
        Some(project)
    }

    /// Does `domain_id` own the enabled project `project_id`?
    pub fn domain_owns_project(&self, domain_id: &str, project_id: &str) -> bool {
        self.project(project_id).is_some_and(|p| p.domain_id == domain_id)
    }

    /// The enabled projects of a domain, by name.
    pub fn projects_of(&self, domain_id: &str) -> Vec<Arc<ProjectRow>> {
        let mut projects: Vec<_> =
            self.projects.values().filter(|p| p.domain_id == domain_id && p.enabled).cloned().collect();
        projects.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        projects
    }
}

/// The directory: the store, the sealer and the current snapshot.
#[derive(Debug)]
pub struct Directory {
    store: Arc<dyn IdentityStore>,
    sealer: SecretSealer,
    current: RwLock<Arc<Snapshot>>,
}

impl Directory {
    /// Loads the first snapshot.
    pub async fn open(store: Arc<dyn IdentityStore>, sealer: SecretSealer) -> Result<Arc<Self>, IdentityError> {
        let records = store.load().await?;
        let snapshot = Arc::new(Snapshot::build(records, &sealer));
        Ok(Arc::new(Self { store, sealer, current: RwLock::new(snapshot) }))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().expect("directory lock").clone()
    }

    /// The identity key's sealer.
    pub fn sealer(&self) -> &SecretSealer {
        &self.sealer
    }

    /// The store behind it.
    pub fn store(&self) -> &Arc<dyn IdentityStore> {
        &self.store
    }

    /// Reloads when the store changed since the current snapshot; true when
    /// it did.
    pub async fn refresh(&self) -> Result<bool, IdentityError> {
        let seen = self.snapshot().version;
        if self.store.version().await? == seen {
            return Ok(false);
        }
        let records = self.store.load().await?;
        let sealer = self.sealer.clone();
        let snapshot = tokio::task::spawn_blocking(move || Snapshot::build(records, &sealer))
            .await
            .expect("building a snapshot does not panic");
        let version = snapshot.version;
        let mut current = self.current.write().expect("directory lock");
        // Never go back: a slower refresh must not undo a newer one.
        if version > current.version {
            *current = Arc::new(snapshot);
        }
        Ok(true)
    }

    /// Polls for changes every `interval` until `shutdown`.
    pub fn spawn_refresh(self: &Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let directory = self.clone();
        tokio::spawn(async move {
            let mut ticks = common::Ticker::new(interval, shutdown);
            while ticks.next().await {
                match directory.refresh().await {
                    Ok(true) => tracing::info!(version = directory.snapshot().version, "identity directory reloaded"),
                    Ok(false) => {}
                    // Keep serving the last snapshot; the next tick retries.
                    Err(e) => tracing::warn!(error = %e, "identity directory refresh failed"),
                }
            }
        });
    }
}
