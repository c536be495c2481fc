//! The authenticated caller, as it travels from the gateway to the services.
//!
//! The gateway authenticates every request and forwards who the caller is as
//! gRPC metadata; services trust these values only because
//! mutual TLS authenticates the caller itself (`grpc::tls`). Services never accept a
//! call without a project: every key and secret belongs to one.

use tonic::metadata::{MetadataMap, MetadataValue};

/// Metadata key of the caller's domain (account) id.
pub const DOMAIN_ID: &str = "x-opendew-domain-id";
/// Metadata key of the caller's project id.
pub const PROJECT_ID: &str = "x-opendew-project-id";
/// Metadata key of the caller's user id.
pub const USER_ID: &str = "x-opendew-user-id";
/// Metadata key of the request id, shared with the HTTP `X-Request-Id`.
pub const REQUEST_ID: &str = "x-request-id";

/// Who is calling, on behalf of which project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// 32 lower-case hex characters.
    pub domain_id: String,
    /// 32 lower-case hex characters.
    pub project_id: String,
    /// The user (or service) acting.
    pub user_id: String,
    /// Correlates log lines across services.
    pub request_id: String,
}

/// Why identity metadata could not be read.
#[derive(Debug, thiserror::Error)]
#[error("caller identity metadata `{0}` is missing or malformed")]
pub struct MissingIdentity(pub &'static str);

impl CallerIdentity {
    /// Writes the identity into outgoing request metadata.
    pub fn write_to(&self, map: &mut MetadataMap) {
        for (key, value) in [
            (DOMAIN_ID, &self.domain_id),
            (PROJECT_ID, &self.project_id),
            (USER_ID, &self.user_id),
            (REQUEST_ID, &self.request_id),
        ] {
            // Ids are validated ASCII; a value that is not valid metadata is
            // dropped, and the service then refuses the call as anonymous.
            if let Ok(v) = MetadataValue::try_from(value.as_str()) {
                map.insert(key, v);
            }
        }
    }

    /// Reads the identity from incoming request metadata.
    pub fn read_from(map: &MetadataMap) -> Result<Self, MissingIdentity> {
        let get = |key: &'static str, required: bool| -> Result<String, MissingIdentity> {
            match map.get(key).and_then(|v| v.to_str().ok()) {
                Some(v) if !v.is_empty() => Ok(v.to_owned()),
                _ if required => Err(MissingIdentity(key)),
                _ => Ok(String::new()),
            }
        };
        let project_id = get(PROJECT_ID, true)?;
        if !is_hex32(&project_id) {
            return Err(MissingIdentity(PROJECT_ID));
        }
        Ok(Self {
            domain_id: get(DOMAIN_ID, true)?,
            project_id,
            user_id: get(USER_ID, false)?,
            request_id: get(REQUEST_ID, false)?,
        })
    }

    /// Wraps a message into a request that carries this identity.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        self.write_to(request.metadata_mut());
        request
    }
}

/// True for Huawei-style ids: exactly 32 lower-case hex characters.
pub fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh random id in Huawei's format (32 lower-case hex characters).
pub fn new_hex32() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_through_metadata() {
        let id = CallerIdentity {
            domain_id: new_hex32(),
            project_id: new_hex32(),
            user_id: "u1".into(),
            request_id: "r1".into(),
        };
        let mut map = MetadataMap::new();
        id.write_to(&mut map);
        assert_eq!(CallerIdentity::read_from(&map).unwrap(), id);
    }

    #[test]
    fn missing_or_malformed_project_is_refused() {
        let mut map = MetadataMap::new();
        map.insert(DOMAIN_ID, "d".parse().unwrap());
        assert!(CallerIdentity::read_from(&map).is_err());
        map.insert(PROJECT_ID, "not-hex".parse().unwrap());
        assert!(CallerIdentity::read_from(&map).is_err());
    }
}
