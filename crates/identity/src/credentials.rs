//! The credentials file: accounts (domain, project, user with password,
//! access key with SK) as JSON, mode 0600. Dev mode and `opendew bootstrap`
//! write one so the developer can read the SK; the gateway imports it into
//! the identity store at start (`identity::admin::import_credentials`).
//! Secrets are held in a zeroizing, `Debug`-redacting wrapper and never
//! logged.

use std::path::Path;

use rand::{Rng, distributions::Alphanumeric};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crypto::{SecretString, write_private_file};

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
pub struct CredentialsFile {
    /// The accounts; the first is the default one.
    pub credentials: Vec<Credential>,
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
pub fn load_or_create(path: &Path, region: &str) -> anyhow::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let file = CredentialsFile { credentials: vec![generate(region)] };
    let text = Zeroizing::new(serde_json::to_string_pretty(&file)?);
    write_private_file(path, text.as_bytes())?;
    Ok(true)
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
        assert!(load_or_create(&path, "local-1").unwrap());
        let first = std::fs::read(&path).unwrap();
        assert!(!load_or_create(&path, "local-1").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), first, "kept, not replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
