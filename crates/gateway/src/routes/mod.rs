//! The API the gateway serves, grouped by family: [`iam`] (tokens, projects,
//! temporary credentials), [`kms`] and [`csms`]. Each family lists its own
//! routes next to its handlers and owns one request extractor that
//! authenticates, checks the path's project and parses the body with the
//! family's error shape, so that a handler is the wire conversion and
//! nothing else.
//!
//! [`api_routes`] is the single list of authenticated operations: the router
//! is built from it, and the isolation suite, SDK coverage and the metrics'
//! route labels all read it, so an operation added without tests fails them.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::Method, routing::MethodRouter};
use common::identity::CallerIdentity;
use http::request::Parts;

pub use crate::budget::{CSMS_BODY, IAM_BODY, KMS_BODY, LARGEST_BODY, RESTORE_BODY};
use crate::{caller::Caller, state::AppState};

pub mod csms;
pub mod iam;
pub mod kms;
pub mod tags;

/// One authenticated API operation: a method on a path pattern.
pub struct ApiRoute {
    /// The HTTP method.
    pub method: Method,
    /// The path pattern, as the router and the metrics name it.
    pub path: &'static str,
    /// A signed request to this route is served once: it changes state, so
    /// the replay guard refuses its signature a second time
    /// ([`crate::replay`]). Every route but GETs is one-shot unless it says
    /// otherwise with `ApiRoute::replayable`.
    pub one_shot: bool,
    /// A one-shot route whose repeat would act again (create a second
    /// version, rotate again): a repeated signature is refused even within
    /// the replay guard's grace (`ApiRoute::acts_each_time`).
    pub acts_each_time: bool,
    /// The largest body this route reads, checked before authentication
    /// (against `Content-Length`) and while the body arrives.
    pub body_limit: usize,
    pub(crate) handler: MethodRouter<Arc<AppState>>,
}

impl std::fmt::Debug for ApiRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

impl ApiRoute {
    /// `handler` serves `method` on `path`.
    pub(crate) fn new(method: Method, path: &'static str, handler: MethodRouter<Arc<AppState>>) -> Self {
        let body_limit = family_body_limit(path);
        Self { one_shot: method != Method::GET, acts_each_time: false, body_limit, method, path, handler }
    }

    /// Marks a route whose repeat would act again rather than find the
    /// first's effect (a second version, a second rotation): a signed
    /// request to it is served once, with no grace for repeats. (create-key
    /// needs no mark: its alias is required and unique, so a repeat answers
    /// `KMS.1104`.)
    pub(crate) fn acts_each_time(mut self) -> Self {
        self.acts_each_time = true;
        self
    }

    /// Sets the largest body this route reads (at most [`LARGEST_BODY`]).
    pub(crate) fn body_limit(mut self, limit: usize) -> Self {
        assert!(limit <= LARGEST_BODY, "{} {}: no route reads more than LARGEST_BODY", self.method, self.path);
        self.body_limit = limit;
        self
    }

    /// Marks a route that changes nothing (KMS's POST reads, and the
    /// cryptographic operations, whose answers only the caller can read):
    /// a repeated signature is served again, without the guard's write.
    pub(crate) fn replayable(mut self) -> Self {
        self.one_shot = false;
        self
    }

    /// `handler` serves POST on `path` (every KMS operation but two).
    pub(crate) fn post<H, T>(path: &'static str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, Arc<AppState>>,
        T: 'static,
    {
        Self::new(Method::POST, path, axum::routing::post(handler))
    }
}

/// A route's body limit by its family, from its path.
fn family_body_limit(path: &str) -> usize {
    if path.starts_with("/v1.0/") {
        KMS_BODY
    } else if path.starts_with("/v3") {
        IAM_BODY
    } else {
        CSMS_BODY
    }
}

/// Every route behind authentication, one entry per method.
pub fn api_routes() -> Vec<ApiRoute> {
    [iam::routes(), kms::routes(), csms::routes()].into_iter().flatten().collect()
}

/// The path's parameters after `project_id`, by name, as the route pattern
/// names them.
#[derive(Debug, Default)]
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    /// The parameter `name` (empty if the pattern has none by that name,
    /// which the route table's tests rule out).
    pub fn get(&self, name: &str) -> String {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// Sets `name`, for a route whose pattern spells a parameter literally.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value.to_owned()));
    }
}

/// The one enabled project of a domain, if it has exactly one.
fn only_project(app: &AppState, domain_id: &str) -> Option<String> {
    match app.directory.snapshot().projects_of(domain_id).as_slice() {
        [one] => Some(one.id.clone()),
        _ => None,
    }
}

/// The authenticated caller acting in the path's project: what every family's
/// extractor starts from. `None` when the caller may not act there (the
/// family answers 403 in its own shape).
async fn authorise(parts: &mut Parts, app: &Arc<AppState>) -> Option<(CallerIdentity, PathParams)> {
    let caller = parts.extensions.get::<Caller>()?.clone();
    let axum::extract::Path(mut params) =
        axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, app).await.ok()?;
    let project_id = match params.iter().position(|(name, _)| name == "project_id") {
        Some(at) => params.remove(at).1,
        // Account-level paths (`/v1/csms/users`, …) name no project: it is
        // the credential's scope (a token's project, `X-Project-Id`), or
        // the domain's only project.
        None => caller.scoped_project.clone().or_else(|| only_project(app, &caller.domain_id))?,
    };
    let identity = caller.for_project(app, &project_id)?;
    Some((identity, PathParams(params)))
}
