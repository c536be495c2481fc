//! What a `Mount` asks for, checked before anything is called: the
//! `SecretProviderClass` parameters (with the driver's pod attributes), the
//! pod's credentials and the default file mode.
//!
//! ```yaml
//! apiVersion: secrets-store.csi.x-k8s.io/v1
//! kind: SecretProviderClass
//! spec:
//!   provider: opendew
//!   parameters:
//!     projectId: 0123…          # optional: the credentials' project
//!     objects: |
//!       - secretName: orders-db
//!         versionStage: SYSCURRENT   # or version: v3 (default: SYSCURRENT)
//!         fileName: db.json          # default: the secret's name
//!         fileMode: "0400"           # default: the driver's (0644)
//!       - secretName: orders-db
//!         jsonKey: password          # one member of a JSON value
//!         fileName: db-password
//! ```

use std::{borrow::Cow, collections::HashMap, fmt};

use serde::Deserialize;
use zeroize::Zeroizing;

/// The most objects one volume may name.
pub const MAX_OBJECTS: usize = 100;
/// The driver's attribute for the pod's name, and for its namespace.
const POD_NAME: &str = "csi.storage.k8s.io/pod.name";
const POD_NAMESPACE: &str = "csi.storage.k8s.io/pod.namespace";

/// Why a mount request is refused (never quotes a credential or a value).
#[derive(Debug, PartialEq, Eq)]
pub enum SpecError {
    /// The driver's attributes or secrets are not the JSON it sends.
    Malformed(&'static str),
    /// No `objects`, or an `objects` list that does not parse.
    Objects(String),
    /// An object that breaks a rule.
    Object { secret: String, why: String },
    /// The nodePublishSecretRef Secret lacks the credentials.
    Credentials(&'static str),
    /// `projectId` is not the credentials' own project.
    OtherProject,
    /// A value asked for by `jsonKey` is not a JSON object with that member.
    JsonKey { key: String },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "the driver's {what} are not a JSON object of strings"),
            Self::Objects(why) => write!(f, "the SecretProviderClass's objects: {why}"),
            Self::Object { secret, why } => write!(f, "object {secret}: {why}"),
            Self::Credentials(why) => write!(f, "the nodePublishSecretRef Secret: {why}"),
            Self::OtherProject => {
                write!(f, "projectId names another project than the credentials' own; a pod reads only its account's")
            }
            Self::JsonKey { key } => write!(f, "the secret's value is not a JSON object with a member {key:?}"),
        }
    }
}

impl std::error::Error for SpecError {}

/// Which version of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A version id (`v3`) or `latest`.
    Version(String),
    /// The version a stage marks.
    Stage(String),
}

/// One object to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The CSMS secret's name.
    pub secret_name: String,
    /// Which version.
    pub selector: Selector,
    /// Path of the file in the volume.
    pub file_name: String,
    /// Its mode, when not the driver's default.
    pub mode: Option<u32>,
    /// The member of a JSON value to write instead of the whole value.
    pub json_key: Option<String>,
}

impl Object {
    /// The object's id in the driver's status: unique per file.
    pub fn id(&self) -> String {
        format!("secret/{}/{}", self.secret_name, self.file_name)
    }
}

/// The pod's credentials (from the nodePublishSecretRef Secret).
pub struct Credentials {
    /// AK.
    pub access_key: String,
    /// SK: wiped on drop, never printed.
    pub secret_key: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("access_key", &self.access_key).finish_non_exhaustive()
    }
}

/// A checked mount request.
#[derive(Debug)]
pub struct MountSpec {
    /// The objects, in the class's order.
    pub objects: Vec<Object>,
    /// Whose credentials.
    pub credentials: Credentials,
    /// The project read (the credentials' own).
    pub project_id: String,
    /// The driver's default file mode.
    pub default_mode: u32,
    /// `namespace/name` of the pod, for the log.
    pub pod: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawObject {
    secret_name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    version_stage: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    file_mode: Option<Mode>,
    #[serde(default)]
    json_key: Option<String>,
}

/// A mode as YAML gives it: `"0400"` (octal text) or `256` (decimal).
#[derive(Deserialize)]
#[serde(untagged)]
enum Mode {
    Text(String),
    Number(u32),
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A file path the driver accepts and that stays inside the volume:
/// relative, no empty, `.` or `..` element, portable characters.
fn is_file_path(path: &str) -> bool {
    path.len() <= 253 && path.split('/').all(|part| is_name(part, 253) && part != "." && part != "..")
}

fn object(raw: RawObject) -> Result<Object, SpecError> {
    let secret = raw.secret_name.clone();
    let bad = |why: &str| SpecError::Object { secret: secret.clone(), why: why.to_owned() };
    if !is_name(&raw.secret_name, 64) {
        return Err(bad("secretName must be 1-64 of A-Z a-z 0-9 _ - ."));
    }
    let selector = match (raw.version, raw.version_stage) {
        (Some(_), Some(_)) => return Err(bad("give version or versionStage, not both")),
        (Some(v), None) if is_name(&v, 64) => Selector::Version(v),
        (None, Some(s)) if is_name(&s, 64) => Selector::Stage(s),
        (None, None) => Selector::Stage("SYSCURRENT".into()),
        _ => return Err(bad("version and versionStage must be 1-64 of A-Z a-z 0-9 _ - .")),
    };
    let file_name = raw.file_name.unwrap_or_else(|| raw.secret_name.clone());
    if !is_file_path(&file_name) {
        return Err(bad("fileName must be a relative path of A-Z a-z 0-9 _ - . without . or .. elements"));
    }
    let mode = match raw.file_mode {
        None => None,
        Some(Mode::Number(n)) => Some(n),
        Some(Mode::Text(t)) => Some(
            u32::from_str_radix(t.trim_start_matches("0o"), 8)
                .map_err(|_| bad("fileMode must be octal, e.g. \"0400\""))?,
        ),
    };
    if mode.is_some_and(|m| m > 0o777) {
        return Err(bad("fileMode must be at most 0777"));
    }
    if let Some(key) = &raw.json_key
        && (key.is_empty() || key.len() > 256)
    {
        return Err(bad("jsonKey must be 1-256 characters"));
    }
    Ok(Object { secret_name: raw.secret_name, selector, file_name, mode, json_key: raw.json_key })
}

impl MountSpec {
    /// Checks the driver's `attributes`, `secrets` and `permission`.
    pub fn parse(attributes: &str, secrets: &str, permission: &str) -> Result<Self, SpecError> {
        let attributes: HashMap<String, String> =
            serde_json::from_str(attributes).map_err(|_| SpecError::Malformed("attributes"))?;
        let default_mode = match permission.trim() {
            "" => 0o644,
            p => p.parse::<u32>().ok().filter(|m| *m <= 0o777).ok_or(SpecError::Malformed("permission"))?,
        };
        let secrets: HashMap<&str, Zeroizing<String>> = serde_json::from_str::<HashMap<&str, String>>(secrets)
            .map_err(|_| SpecError::Malformed("secrets"))?
            .into_iter()
            .map(|(k, v)| (k, Zeroizing::new(v)))
            .collect();
        let access_key = secrets
            .get("access_key")
            .map(|s| s.to_string())
            .ok_or(SpecError::Credentials("needs access_key, secret_key and project_id"))?;
        let secret_key = secrets
            .get("secret_key")
            .map(|s| Zeroizing::new(s.to_string()))
            .ok_or(SpecError::Credentials("needs access_key, secret_key and project_id"))?;
        let own_project = secrets
            .get("project_id")
            .map(|s| s.to_string())
            .ok_or(SpecError::Credentials("needs access_key, secret_key and project_id"))?;
        if !is_name(&access_key, 128) || secret_key.is_empty() || !is_name(&own_project, 64) {
            return Err(SpecError::Credentials("access_key, secret_key or project_id is malformed"));
        }
        if let Some(asked) = attributes.get("projectId")
            && asked != &own_project
        {
            return Err(SpecError::OtherProject);
        }
        let text = attributes.get("objects").ok_or_else(|| SpecError::Objects("no objects parameter".into()))?;
        if text.len() > 64 * 1024 {
            return Err(SpecError::Objects("longer than 64 KiB".into()));
        }
        let raw: Vec<RawObject> = serde_saphyr::from_str(text).map_err(|e| {
            // The parser's message quotes a snippet of the list, which names
            // secrets but holds no value; cut it short for the pod's events.
            let mut why = e.to_string();
            why.truncate(300);
            SpecError::Objects(why)
        })?;
        if raw.is_empty() || raw.len() > MAX_OBJECTS {
            return Err(SpecError::Objects(format!("name 1-{MAX_OBJECTS} objects")));
        }
        let objects = raw.into_iter().map(object).collect::<Result<Vec<_>, _>>()?;
        let mut files: Vec<&str> = objects.iter().map(|o| o.file_name.as_str()).collect();
        files.sort_unstable();
        if let Some(w) = files.windows(2).find(|w| w[0] == w[1] || w[1].starts_with(&format!("{}/", w[0]))) {
            return Err(SpecError::Objects(format!("two objects write {}", w[1])));
        }
        let pod = format!(
            "{}/{}",
            attributes.get(POD_NAMESPACE).map_or("?", String::as_str),
            attributes.get(POD_NAME).map_or("?", String::as_str)
        );
        Ok(Self {
            objects,
            credentials: Credentials { access_key, secret_key },
            project_id: own_project,
            default_mode,
            pod,
        })
    }
}

/// The member `key` of the JSON object `value`: a string as its text,
/// anything else as its JSON. Only that member is copied out of the
/// (wiped) value.
pub fn extract_json_key(value: &[u8], key: &str) -> Result<Zeroizing<Vec<u8>>, SpecError> {
    let not_there = || SpecError::JsonKey { key: key.to_owned() };
    let members: HashMap<Cow<'_, str>, &serde_json::value::RawValue> =
        serde_json::from_slice(value).map_err(|_| not_there())?;
    let member = members.get(key).ok_or_else(not_there)?;
    if member.get().starts_with('"') {
        let text: String = serde_json::from_str(member.get()).map_err(|_| not_there())?;
        Ok(Zeroizing::new(text.into_bytes()))
    } else {
        Ok(Zeroizing::new(member.get().as_bytes().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: &str = r#"{"access_key":"AK1","secret_key":"sk-1","project_id":"p1"}"#;

    fn attrs(objects: &str) -> String {
        serde_json::json!({"objects": objects, POD_NAME: "web-0", POD_NAMESPACE: "shop"}).to_string()
    }

    #[test]
    fn a_class_parses_with_defaults() {
        let spec = MountSpec::parse(
            &attrs("- secretName: db\n- secretName: db\n  version: v2\n  fileName: conf/db\n  fileMode: \"0400\"\n  jsonKey: password\n"),
            CREDS,
            "420",
        )
        .unwrap();
        assert_eq!(spec.default_mode, 0o644);
        assert_eq!(spec.pod, "shop/web-0");
        assert_eq!(spec.objects[0].selector, Selector::Stage("SYSCURRENT".into()));
        assert_eq!(spec.objects[0].file_name, "db");
        let o = &spec.objects[1];
        assert_eq!(
            (o.selector.clone(), o.mode, o.json_key.as_deref()),
            (Selector::Version("v2".into()), Some(0o400), Some("password"))
        );
        assert!(!format!("{spec:?}").contains("sk-1"), "the SK never prints");
    }

    #[test]
    fn hostile_or_wrong_classes_are_refused() {
        let bad = |objects: &str| MountSpec::parse(&attrs(objects), CREDS, "420").unwrap_err();
        assert!(matches!(bad("- secretName: db\n  fileName: ../etc/passwd\n"), SpecError::Object { .. }));
        assert!(matches!(bad("- secretName: db\n  fileName: /abs\n"), SpecError::Object { .. }));
        assert!(matches!(bad("- secretName: db\n  fileName: a//b\n"), SpecError::Object { .. }));
        assert!(matches!(bad("- secretName: ../x\n"), SpecError::Object { .. }));
        assert!(matches!(bad("- secretName: db\n  version: v1\n  versionStage: S\n"), SpecError::Object { .. }));
        assert!(matches!(bad("- secretName: db\n  fileMode: \"0999\"\n"), SpecError::Object { .. }));
        assert!(matches!(bad("- secretName: db\n  versoin: v1\n"), SpecError::Objects(_)), "typos are caught");
        assert!(matches!(
            bad("- secretName: a\n  fileName: x\n- secretName: b\n  fileName: x\n"),
            SpecError::Objects(_)
        ));
        assert!(matches!(
            bad("- secretName: a\n  fileName: x\n- secretName: b\n  fileName: x/y\n"),
            SpecError::Objects(_)
        ));
        assert!(matches!(bad("[]"), SpecError::Objects(_)));
        let many: String = (0..=MAX_OBJECTS).map(|i| format!("- secretName: s{i}\n")).collect();
        assert!(matches!(bad(&many), SpecError::Objects(_)));
        // An alias bomb is cut off by the parser's budget, not expanded.
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
        assert!(matches!(bad(bomb), SpecError::Objects(_)));
    }

    #[test]
    fn credentials_come_from_the_pods_secret_and_bind_the_project() {
        let objects = attrs("- secretName: db\n");
        assert!(matches!(MountSpec::parse(&objects, "{}", "420"), Err(SpecError::Credentials(_))));
        assert!(matches!(MountSpec::parse(&objects, "not json", "420"), Err(SpecError::Malformed("secrets"))));
        let other = serde_json::json!({"objects": "- secretName: db\n", "projectId": "p2"}).to_string();
        assert_eq!(MountSpec::parse(&other, CREDS, "420").unwrap_err(), SpecError::OtherProject);
        let same = serde_json::json!({"objects": "- secretName: db\n", "projectId": "p1"}).to_string();
        assert_eq!(MountSpec::parse(&same, CREDS, "420").unwrap().project_id, "p1");
        assert!(matches!(MountSpec::parse(&objects, CREDS, "1000"), Err(SpecError::Malformed("permission"))));
    }

    #[test]
    fn json_keys_extract_one_member() {
        let value = br#"{"username":"app","password":"p\u00e4ss","port":5432}"#;
        assert_eq!(&*extract_json_key(value, "password").unwrap(), "päss".as_bytes());
        assert_eq!(&*extract_json_key(value, "port").unwrap(), b"5432");
        assert!(extract_json_key(value, "missing").is_err());
        assert!(extract_json_key(b"plain text", "password").is_err());
    }
}
