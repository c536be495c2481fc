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

/// The common name of a DER certificate's subject.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject().iter_common_name().next()?.as_str().ok().map(str::to_owned)
}

/// Whether the caller of `request` may call its method under `policy`.
fn allowed<B>(request: &http::Request<B>, policy: CallerPolicy) -> Result<(), String> {
    let Some(tls) = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>() else {
        return Ok(());
    };
    let path = request.uri().path();
    if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
        return Ok(());
    }
    let name = tls.peer_certs().and_then(|certs| certs.first().and_then(|leaf| common_name(leaf.as_ref())));
    match name {
        Some(name) if policy(path).contains(&name.as_str()) => Ok(()),
        Some(name) => Err(format!("certificate {name:?} may not call {path}")),
        None => Err("no client certificate identity".into()),
    }
}

/// Applies a [`CallerPolicy`] to every call.
#[derive(Debug, Clone, Copy)]
pub struct CallerCheckLayer(pub CallerPolicy);

impl<S> tower::Layer<S> for CallerCheckLayer {
    type Service = CallerCheck<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CallerCheck { inner, policy: self.0 }
    }
}

/// See [`CallerCheckLayer`].
#[derive(Debug, Clone)]
pub struct CallerCheck<S> {
    inner: S,
    policy: CallerPolicy,
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
        if let Err(why) = allowed(&request, self.policy) {
            tracing::warn!(reason = %why, "internal caller refused");
            let status = tonic::Status::permission_denied(why);
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(request).await })
    }
}
