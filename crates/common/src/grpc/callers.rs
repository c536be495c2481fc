//! Which internal certificate may call which method (issue #15, finding 7).
//!
//! Every internal certificate comes from one CA, and mutual TLS alone let
//! any of them call anything: csms-service's certificate could speak for
//! any tenant on every KMS operation, kms-service's own could call itself.
//! Each service now names, per method, the certificates (by common name,
//! as `opendew bootstrap` issues them) that may call it: the gateway's for
//! tenant operations, csms-service's for the three data-key calls it
//! makes, the operator's (held by people, mounted in no container) for
//! grpcurl debugging. Health and reflection answer any internal caller.
//! Without TLS (`--grpc-plaintext`, the dev process) there is no identity
//! to check.
//!
//! The operator's certificate is read-only (issue #40): it may describe,
//! list and get, not change anything nor use a key, unless the service was
//! started with `--operator-break-glass`. The caller's name is put into
//! every call's extensions ([`CallerName`]), for the access log and for
//! services that decide by it (kms-service's data-key calls).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// The gateway's client certificate.
pub const GATEWAY: &str = "gateway";
/// csms-service's certificate.
pub const CSMS_SERVICE: &str = "csms-service";
/// The operators' client certificate.
pub const OPERATOR: &str = "operator";

/// The common names that may call a method, given its path
/// (`/package.Service/Method`).
pub type CallerPolicy = fn(&str) -> &'static [&'static str];

/// Tenant operations: the gateway speaks for tenants; operators debug.
pub fn gateway_only(_: &str) -> &'static [&'static str] {
    &[GATEWAY, OPERATOR]
}

/// The common name of a call's client certificate, in the extensions of
/// every call that came over mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerName(pub String);

impl CallerName {
    /// The name in `extensions`, if the call came with a certificate.
    pub fn of(extensions: &http::Extensions) -> Option<&str> {
        extensions.get::<CallerName>().map(|name| name.0.as_str())
    }
}

/// Methods that change nothing and reveal no plaintext: what the
/// operator's certificate may call without `--operator-break-glass`.
pub fn read_only(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or("");
    let reads = ["Describe", "List", "Get", "Show"].iter().any(|prefix| method.starts_with(prefix));
    // Reads by name that are not: an import token is minted, a version's
    // value is plaintext.
    let exceptions = ["GetParametersForImport", "ShowSecretVersion"];
    (reads && !exceptions.contains(&method)) || method.starts_with("GenerateRandom")
}

/// The common name of a DER certificate's subject.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject().iter_common_name().next()?.as_str().ok().map(str::to_owned)
}

/// The common name of the client certificate `request` came with.
pub fn peer_name<B>(request: &http::Request<B>) -> Option<String> {
    let tls = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()?;
    tls.peer_certs().and_then(|certs| certs.first().and_then(|leaf| common_name(leaf.as_ref())))
}

/// Whether the caller of `request` may call its method under `policy`.
fn allowed<B>(request: &http::Request<B>, policy: CallerPolicy, break_glass: bool) -> Result<(), String> {
    if request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>().is_none() {
        return Ok(());
    }
    let path = request.uri().path();
    if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
        return Ok(());
    }
    let name = match CallerName::of(request.extensions()) {
        Some(name) => Some(name.to_owned()),
        None => peer_name(request),
    };
    match name {
        Some(name) if name == OPERATOR && !break_glass && !read_only(path) => Err(format!(
            "the operator certificate is read-only: {path} needs the service started with --operator-break-glass"
        )),
        Some(name) if policy(path).contains(&name.as_str()) => Ok(()),
        Some(name) => Err(format!("certificate {name:?} may not call {path}")),
        None => Err("no client certificate identity".into()),
    }
}

/// Applies a [`CallerPolicy`] to every call; the operator's certificate
/// may change state only with `break_glass`.
#[derive(Debug, Clone, Copy)]
pub struct CallerCheckLayer {
    /// Which certificate may call which method.
    pub policy: CallerPolicy,
    /// `--operator-break-glass`: the operator's certificate may call what
    /// the policy allows it, not only reads.
    pub break_glass: bool,
}

impl<S> tower::Layer<S> for CallerCheckLayer {
    type Service = CallerCheck<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CallerCheck { inner, policy: self.policy, break_glass: self.break_glass }
    }
}

/// See [`CallerCheckLayer`].
#[derive(Debug, Clone)]
pub struct CallerCheck<S> {
    inner: S,
    policy: CallerPolicy,
    break_glass: bool,
}

impl<S, B, R> tower::Service<http::Request<B>> for CallerCheck<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Err(why) = allowed(&request, self.policy, self.break_glass) {
            tracing::warn!(reason = %why, "internal caller refused");
            let status = tonic::Status::permission_denied(why);
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_reads_are_reads() {
        for read in [
            "/kms.v1.KeyManagementService/DescribeKey",
            "/kms.v1.KeyManagementService/ListKeys",
            "/kms.v1.KeyManagementService/GetQuotas",
            "/csms.v1.SecretsManagerService/ShowSecret",
            "/kms.v1.KeyManagementService/GenerateRandom",
        ] {
            assert!(read_only(read), "{read}");
        }
        for write in [
            "/kms.v1.KeyManagementService/CreateKey",
            "/kms.v1.KeyManagementService/DecryptData",
            "/kms.v1.KeyManagementService/GetParametersForImport",
            "/csms.v1.SecretsManagerService/ShowSecretVersion",
            "/csms.v1.SecretsManagerService/UploadSecretBlob",
            "/kms.v1.KeyManagementService/CreateDatakey",
        ] {
            assert!(!read_only(write), "{write}");
        }
    }
}
