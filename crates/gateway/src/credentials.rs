//! The bootstrap identity store: access keys and users from a JSON file.
//!
//! Until the real identity store exists (issue 5), the gateway reads its
//! accounts from a file that dev mode creates with mode 0600 and prints.
//! The SK must stay recoverable to verify HMAC signatures, so it is kept in
//! memory in a zeroizing, `Debug`-redacting wrapper and never logged.

use std::{collections::HashMap, fmt, path::Path, sync::Arc};

use rand::{Rng, distributions::Alphanumeric};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A string that is wiped on drop and never printed.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The secret itself; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One user with one access key, in one project of one domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    /// Access key id (AK).
    pub access_key: String,
    /// Secret access key (SK).
    pub secret_key: SecretString,
    /// User id (32 hex).
    pub user_id: String,
    /// User name, for password login.
    pub user_name: String,
    /// Password, for `POST /v3/auth/tokens`.
    pub password: SecretString,
    /// Domain (account) id (32 hex).
    pub domain_id: String,
    /// Domain name.
    pub domain_name: String,
    /// Project id (32 hex).
    pub project_id: String,
    /// Project name (a region id such as `local-1`).
    pub project_name: String,
}

/// The file format.
#[derive(Debug, Serialize, Deserialize)]
struct CredentialsFile {
    credentials: Vec<Credential>,
}

/// Access keys by AK, users by (domain name, user name).
#[derive(Debug, Default)]
pub struct CredentialStore {
    by_ak: HashMap<String, Arc<Credential>>,
    by_user: HashMap<(String, String), Arc<Credential>>,
}

impl CredentialStore {
    /// A store of the given credentials.
    pub fn new(credentials: Vec<Credential>) -> anyhow::Result<Self> {
        let mut store = Self::default();
        for c in credentials {
            for id in [&c.user_id, &c.domain_id, &c.project_id] {
                anyhow::ensure!(common::identity::is_hex32(id), "credential ids must be 32 lower-case hex characters");
            }
            let c = Arc::new(c);
            store.by_user.insert((c.domain_name.clone(), c.user_name.clone()), c.clone());
            anyhow::ensure!(
                store.by_ak.insert(c.access_key.clone(), c).is_none(),
                "duplicate access key in credentials"
            );
        }
        Ok(store)
    }

    /// Reads a credentials file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read credentials file {}: {e}", path.display()))?,
        );
        let file: CredentialsFile = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("credentials file {} is malformed: {e}", path.display()))?;
        Self::new(file.credentials)
    }

    /// Looks up an access key.
    pub fn by_access_key(&self, ak: &str) -> Option<&Arc<Credential>> {
        self.by_ak.get(ak)
    }

    /// Looks up a user for password login.
    pub fn by_user(&self, domain_name: &str, user_name: &str) -> Option<&Arc<Credential>> {
        self.by_user.get(&(domain_name.to_owned(), user_name.to_owned()))
    }

    /// The projects of a domain as (id, name), sorted by name.
    pub fn projects_of(&self, domain_id: &str) -> Vec<(String, String)> {
        let mut projects: Vec<(String, String)> = self
            .by_ak
            .values()
            .filter(|c| c.domain_id == domain_id)
            .map(|c| (c.project_id.clone(), c.project_name.clone()))
            .collect();
        projects.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        projects.dedup();
        projects
    }

    /// Does `domain_id` own `project_id`?
    pub fn domain_owns_project(&self, domain_id: &str, project_id: &str) -> bool {
        self.by_ak.values().any(|c| c.domain_id == domain_id && c.project_id == project_id)
    }
}

fn random_text(len: usize, upper: bool) -> String {
    let s: String = rand::rngs::OsRng.sample_iter(&Alphanumeric).take(len).map(char::from).collect();
    if upper { s.to_ascii_uppercase() } else { s }
}

/// A fresh development credential.
pub fn generate(region: &str) -> Credential {
    Credential {
        access_key: format!("ODEW{}", random_text(16, true)),
        secret_key: SecretString::new(random_text(40, false)),
        user_id: common::identity::new_hex32(),
        user_name: "admin".into(),
        password: SecretString::new(random_text(20, false)),
        domain_id: common::identity::new_hex32(),
        domain_name: "opendew".into(),
        project_id: common::identity::new_hex32(),
        project_name: region.to_owned(),
    }
}

/// Loads the file, first creating it (mode 0600) with one fresh credential
/// when it does not exist. Returns the store and whether it was created.
pub fn load_or_create(path: &Path, region: &str) -> anyhow::Result<(CredentialStore, bool)> {
    let created = if path.exists() {
        false
    } else {
        let file = CredentialsFile { credentials: vec![generate(region)] };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file)?);
        write_private_file(path, text.as_bytes())?;
        true
    };
    Ok((CredentialStore::load(path)?, created))
}

/// Writes a new file readable only by its owner.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = generate("local-1");
        let shown = format!("{c:?}");
        assert!(!shown.contains(c.secret_key.expose()));
        assert!(!shown.contains(c.password.expose()));
    }

    #[test]
    fn file_round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        let (store, created) = load_or_create(&path, "local-1").unwrap();
        assert!(created);
        let (again, created) = load_or_create(&path, "local-1").unwrap();
        assert!(!created);
        assert_eq!(store.by_ak.keys().collect::<Vec<_>>(), again.by_ak.keys().collect::<Vec<_>>());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
