//! The authenticated caller, as the authentication middleware leaves it in
//! the request's extensions for the handlers.

use common::identity::CallerIdentity;

use crate::{error::current_request_id, state::AppState};

/// An authenticated caller, before the path's project is checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Domain (account) id.
    pub domain_id: String,
    /// User id.
    pub user_id: String,
    /// The project the credential is scoped to: a token's project, or the
    /// `X-Project-Id` header of a signed request.
    pub scoped_project: Option<String>,
    /// Signed with AK/SK (true) or token (false).
    pub signed: bool,
    /// The access key used, for logs.
    pub access_key: Option<String>,
    /// Authenticated with temporary credentials (a security token).
    pub temporary: bool,
    /// When the credential used expires (a token, temporary credentials);
    /// `None` for a permanent access key.
    pub expires_ms: Option<i64>,
    /// For a token (and what it mints), the mark of the password it was
    /// issued under ([`crate::tokens::password_mark`]).
    pub password_mark: Option<String>,
    /// For a signed request, its signature's one use (the replay guard
    /// records it for one-shot operations); `None` for a token.
    pub signature: Option<SignatureUse>,
}

/// A verified signature, as the replay guard records it: a digest of the
/// AK and signature (the signature covers method, path, query, signed
/// headers, body and `X-Sdk-Date`, so an identical digest is the same
/// request sent again) and the end of its validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureUse {
    /// SHA-256 of a label, the AK and the signature.
    pub digest: [u8; 32],
    /// When the signature stops being accepted anywhere: its date plus the
    /// allowed skew, plus a minute for replicas' clocks to disagree.
    pub expires_ms: i64,
}

impl SignatureUse {
    /// The use of `auth`'s signature, made at `signed_at`.
    pub fn new(auth: &crate::signing::Authorization, signed_at: chrono::DateTime<chrono::Utc>) -> Self {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(b"opendew/gateway/signature-use/v1\0");
        hash.update(auth.access_key.as_bytes());
        hash.update(b"\0");
        hash.update(auth.signature.as_bytes());
        let window_ms = (crate::signing::MAX_SKEW_SECONDS + 60) * 1000;
        Self { digest: hash.finalize().into(), expires_ms: signed_at.timestamp_millis() + window_ms }
    }
}

impl Caller {
    /// The identity to forward for a call on `path_project`, or `None` when
    /// the caller may not act in that project (the route answers 403).
    pub fn for_project(&self, app: &AppState, path_project: &str) -> Option<CallerIdentity> {
        let allowed = match &self.scoped_project {
            Some(scoped) => scoped == path_project,
            // Signed requests without X-Project-Id: any project of the domain.
            None => self.signed,
        } && app.directory.snapshot().domain_owns_project(&self.domain_id, path_project);
        allowed.then(|| CallerIdentity {
            domain_id: self.domain_id.clone(),
            project_id: path_project.to_owned(),
            user_id: self.user_id.clone(),
            request_id: current_request_id(),
        })
    }
}
