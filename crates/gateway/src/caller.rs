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
