//! Registering database instances (issue #33): the operator's
//! `opendew admin db-instance` validates an instance and seals its
//! administrator URL, which carries the administrator's password, under
//! csms-service's instance key, with the project and the id as associated
//! data (a sealed URL moved to another row does not open). The key is a
//! file, like the gateway's identity key; the database never holds the
//! URL in the clear, and no listing, log or error shows its credentials.

use std::path::Path;

use crypto::{AeadKey, SecretString};

use crate::domain::{
    Rejection,
    instances::{DbEngine, InstanceRecord, validate_instance_id},
};

/// The key that seals instances' administrator URLs.
pub struct InstanceKey(AeadKey);

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstanceKey(<redacted>)")
    }
}

impl InstanceKey {
    /// Reads a key file: 64 hex characters.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let key = crypto::read_hex_key_file(path, 32).map_err(|e| anyhow::anyhow!("instance key file: {e}"))?;
        Ok(Self(AeadKey::new(key.expose()).map_err(|_| anyhow::anyhow!("instance key file: not 32 bytes"))?))
    }

    /// Writes a fresh random key file (mode 0600) unless one exists; true
    /// when it wrote one.
    pub fn ensure_file(path: &Path) -> std::io::Result<bool> {
        if path.exists() {
            return Ok(false);
        }
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        crypto::fill_random(key.as_mut());
        crypto::write_private_file(path, zeroize::Zeroizing::new(hex::encode(key.as_ref())).as_bytes())?;
        Ok(true)
    }

    fn aad(project_id: &str, id: &str) -> Vec<u8> {
        format!("opendew/db-instance/{project_id}/{id}").into_bytes()
    }

    /// The administrator URL of `instance`, opened.
    pub fn open(&self, instance: &InstanceRecord) -> Result<SecretString, Rejection> {
        let opened =
            self.0.open(&instance.sealed_url, &Self::aad(&instance.project_id, &instance.id)).map_err(|_| {
                Rejection::InvalidRequest("the instance's URL does not open under this instance key".into())
            })?;
        let text = std::str::from_utf8(opened.expose()).map_err(|_| Rejection::InvalidRequest("corrupt URL".into()))?;
        Ok(SecretString::new(text.to_owned()))
    }
}

/// What the operator registers.
#[derive(Debug)]
pub struct NewInstance {
    /// The project whose secrets may name it.
    pub project_id: String,
    /// What `rotation_config.InstanceId` names.
    pub id: String,
    /// `postgresql` or `mysql`.
    pub engine: String,
    /// The administrator URL (with its TLS settings, e.g. `sslmode`).
    pub url: SecretString,
    /// A password for the URL's user, when the URL has none.
    pub password: Option<SecretString>,
}

/// Checks `new` and seals its URL: the record to store. Refusals name the
/// rule, never the URL.
pub fn prepare(key: &InstanceKey, new: NewInstance, now_ms: i64) -> Result<InstanceRecord, Rejection> {
    validate_instance_id(&new.id)?;
    let engine = DbEngine::parse(&new.engine)?;
    let invalid = |why: &str| Rejection::InvalidParameter(why.to_owned());
    let mut url = url::Url::parse(new.url.expose()).map_err(|_| invalid("the instance URL cannot be parsed"))?;
    if !engine.accepts_scheme(url.scheme()) {
        return Err(invalid(&format!("a {} instance needs a {} URL", engine.as_str(), engine_schemes(engine))));
    }
    if url.host_str().is_none_or(str::is_empty) || url.username().is_empty() {
        return Err(invalid("the instance URL needs a host and an administrator user"));
    }
    if let Some(password) = &new.password {
        if url.password().is_some() {
            return Err(invalid("the password is given twice: in the URL and in --password-file"));
        }
        url.set_password(Some(password.expose())).map_err(|_| invalid("the password cannot be put in the URL"))?;
    }
    let sealed = zeroize::Zeroizing::new(url.to_string());
    let mut display = url.clone();
    let _ = display.set_password(None);
    let _ = display.set_username("");
    let sealed_url = key.0.seal(sealed.as_bytes(), &InstanceKey::aad(&new.project_id, &new.id));
    Ok(InstanceRecord {
        project_id: new.project_id,
        id: new.id,
        engine,
        display_url: display.to_string(),
        sealed_url,
        create_ms: now_ms,
    })
}

fn engine_schemes(engine: DbEngine) -> &'static str {
    match engine {
        DbEngine::Postgresql => "postgres://",
        DbEngine::Mysql => "mysql://",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> InstanceKey {
        InstanceKey(AeadKey::new(&[7; 32]).unwrap())
    }

    fn new(id: &str, engine: &str, url: &str, password: Option<&str>) -> NewInstance {
        NewInstance {
            project_id: "p".into(),
            id: id.into(),
            engine: engine.into(),
            url: SecretString::new(url.into()),
            password: password.map(|p| SecretString::new(p.into())),
        }
    }

    #[test]
    fn urls_are_sealed_and_shown_without_credentials() {
        let r = prepare(&key(), new("rds-1", "mysql", "mysql://root@db:3306/", Some("s3cret!")), 1).unwrap();
        assert_eq!(r.display_url, "mysql://db:3306/");
        assert!(!String::from_utf8_lossy(&r.sealed_url).contains("s3cret"));
        assert!(!format!("{r:?}").contains("s3cret"));
        assert_eq!(key().open(&r).unwrap().expose(), "mysql://root:s3cret!@db:3306/");
        let moved = InstanceRecord { id: "rds-2".into(), ..r };
        assert!(key().open(&moved).is_err(), "the seal names its project and id");
    }

    #[test]
    fn refusals_name_the_rule_not_the_url() {
        for (id, engine, url, password) in [
            ("bad id!", "mysql", "mysql://root@db/", None),
            ("rds-1", "oracle", "mysql://root@db/", None),
            ("rds-1", "postgresql", "mysql://root:pw@db/", None),
            ("rds-1", "mysql", "mysql://db/", None),
            ("rds-1", "mysql", "mysql://root:pw@db/", Some("again")),
            ("rds-1", "mysql", "not a url pw", None),
        ] {
            let refused = prepare(&key(), new(id, engine, url, password), 1).unwrap_err().to_string();
            assert!(!refused.contains("pw") && !refused.contains("again"), "{refused}");
        }
    }
}
