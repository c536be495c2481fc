//! Administration of the identity store: what `opendew admin` and the
//! credentials-file import do. Ids and keys are generated here; inputs are
//! validated before anything is written.

use std::path::Path;

use rand::{Rng, distributions::Alphanumeric};

use crate::{
    credentials::{Credential, SecretString},
    seal::{SecretSealer, hash_password},
    store::{AccessKeyRow, DomainRow, IdentityError, IdentityStore, NewRecord, ProjectRow, UserRow},
};

/// Names: 1–64 characters of letters, digits, `-`, `_` and `.`.
fn check_name(what: &str, name: &str) -> Result<(), IdentityError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(IdentityError::Invalid(format!("{what} names are 1-64 letters, digits, '-', '_' or '.'")))
    }
}

fn random_text(len: usize) -> String {
    rand::rngs::OsRng.sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// Creates a domain.
pub async fn create_domain(store: &dyn IdentityStore, name: &str) -> Result<DomainRow, IdentityError> {
    check_name("domain", name)?;
    let row =
        DomainRow { id: common::identity::new_hex32(), name: name.into(), enabled: true, create_ms: common::now_ms() };
    store.insert(&NewRecord::Domain(row.clone())).await?;
    Ok(row)
}

/// Creates a project in a domain.
pub async fn create_project(
    store: &dyn IdentityStore, domain_id: &str, name: &str,
) -> Result<ProjectRow, IdentityError> {
    check_name("project", name)?;
    let row = ProjectRow {
        id: common::identity::new_hex32(),
        domain_id: domain_id.into(),
        name: name.into(),
        enabled: true,
        create_ms: common::now_ms(),
    };
    store.insert(&NewRecord::Project(row.clone())).await?;
    Ok(row)
}

/// Creates a user with a password (hashed with argon2id).
pub async fn create_user(
    store: &dyn IdentityStore, domain_id: &str, name: &str, password: &SecretString,
) -> Result<UserRow, IdentityError> {
    check_name("user", name)?;
    check_password(password)?;
    let row = UserRow {
        id: common::identity::new_hex32(),
        domain_id: domain_id.into(),
        name: name.into(),
        password_hash: hash(password).await,
        enabled: true,
        create_ms: common::now_ms(),
    };
    store.insert(&NewRecord::User(row.clone())).await?;
    Ok(row)
}

/// Replaces a user's password.
pub async fn set_password(
    store: &dyn IdentityStore, user_id: &str, password: &SecretString,
) -> Result<(), IdentityError> {
    check_password(password)?;
    store.set_password_hash(user_id, &hash(password).await).await
}

fn check_password(password: &SecretString) -> Result<(), IdentityError> {
    let n = password.expose().chars().count();
    if (8..=128).contains(&n) { Ok(()) } else { Err(IdentityError::Invalid("passwords are 8-128 characters".into())) }
}

/// Hashes off the async threads. Not through the login path's bounded
/// hashing thread: an operator's command waits rather than be refused.
async fn hash(password: &SecretString) -> String {
    let password = password.clone();
    tokio::task::spawn_blocking(move || hash_password(password.expose())).await.expect("hashing does not panic")
}

/// A random password for generated accounts.
pub fn random_password() -> SecretString {
    SecretString::new(random_text(20))
}

/// Creates an access key for a user; the SK is returned once and stored
/// only sealed.
pub async fn create_access_key(
    store: &dyn IdentityStore, sealer: &SecretSealer, user_id: &str, description: &str,
) -> Result<(AccessKeyRow, SecretString), IdentityError> {
    if description.len() > 255 {
        return Err(IdentityError::Invalid("descriptions are at most 255 characters".into()));
    }
    let access_key = format!("ODEW{}", random_text(16).to_ascii_uppercase());
    let secret = SecretString::new(random_text(40));
    let row = AccessKeyRow {
        sealed_secret: sealer.seal(&access_key, &secret),
        access_key,
        user_id: user_id.into(),
        enabled: true,
        description: description.into(),
        create_ms: common::now_ms(),
    };
    store.insert(&NewRecord::AccessKey(row.clone())).await?;
    Ok((row, secret))
}

/// Brings the accounts of a credentials file (the format dev mode and
/// `opendew bootstrap` write) into the store, keeping their ids, AK and SK.
/// Only a store that was never written is seeded, so importing on every
/// start is harmless and never brings back what an operator deleted.
/// Returns how many records were added.
pub async fn import_credentials(
    store: &dyn IdentityStore, sealer: &SecretSealer, path: &Path,
) -> anyhow::Result<usize> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read credentials file {}: {e}", path.display()))?,
    );
    #[derive(serde::Deserialize)]
    struct File {
        credentials: Vec<Credential>,
    }
    let file: File = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("credentials file {} is malformed: {e}", path.display()))?;
    let now = common::now_ms();
    let mut added = 0;
    let existing = store.load().await?;
    // The file seeds a new store and nothing else: once anything has been
    // written (an import, an operator's change), what the operator deleted
    // stays deleted. Importing at every start re-created deleted users,
    // keys and projects, so a leaked and deleted AK worked again after a
    // restart (issue #15, finding 3). Later accounts: `opendew admin`.
    if existing.version > 0 {
        return Ok(0);
    }
    // Only what is missing is built (a password hash costs tens of ms).
    let has_user = |id: &str| existing.users.iter().any(|u| u.id == id);
    let has_key = |ak: &str| existing.access_keys.iter().any(|k| k.access_key == ak);
    for c in file.credentials {
        if has_user(&c.user_id) && has_key(&c.access_key) {
            continue;
        }
        for id in [&c.user_id, &c.domain_id, &c.project_id] {
            anyhow::ensure!(common::identity::is_hex32(id), "credential ids must be 32 lower-case hex characters");
        }
        let records = [
            NewRecord::Domain(DomainRow {
                id: c.domain_id.clone(),
                name: c.domain_name.clone(),
                enabled: true,
                create_ms: now,
            }),
            NewRecord::Project(ProjectRow {
                id: c.project_id.clone(),
                domain_id: c.domain_id.clone(),
                name: c.project_name.clone(),
                enabled: true,
                create_ms: now,
            }),
            NewRecord::User(UserRow {
                id: c.user_id.clone(),
                domain_id: c.domain_id.clone(),
                name: c.user_name.clone(),
                password_hash: hash(&c.password).await,
                enabled: true,
                create_ms: now,
            }),
            NewRecord::AccessKey(AccessKeyRow {
                sealed_secret: sealer.seal(&c.access_key, &c.secret_key),
                access_key: c.access_key.clone(),
                user_id: c.user_id.clone(),
                enabled: true,
                description: "imported from the credentials file".into(),
                create_ms: now,
            }),
        ];
        for record in &records {
            match store.insert(record).await {
                Ok(()) => added += 1,
                Err(IdentityError::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(added)
}
