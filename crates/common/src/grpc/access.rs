//! One access-log line and two metrics per gRPC call, in every service.
//!
//! The layer opens the call's span with the request id the gateway sent
//! (metadata `x-request-id`), so every line the handler logs, down to the
//! database driver's, carries the id that the HTTP response showed the
//! client. Unary calls that fail answer "trailers-only", with `grpc-status`
//! in the response headers; a response without it succeeded.
//!
//! The line names the caller's certificate (`caller`, "-" without mutual
//! TLS), which also goes into the call's extensions
//! ([`super::callers::CallerName`]). A path that is not a method of a
//! service this port serves (anything a client makes up, or a method it
//! does not have) is counted under the method `unknown` and logs nothing,
//! so made-up paths grow neither the metrics' label sets nor the log
//! (issue #40).

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tracing::Instrument;

/// Wraps a gRPC server's routes with `AccessLog`.
#[derive(Debug, Clone)]
pub struct AccessLogLayer {
    /// The services (`package.Service`) whose methods are named in labels.
    services: std::sync::Arc<[&'static str]>,
}

impl AccessLogLayer {
    /// An access log for a port serving `services`.
    pub fn new(services: &[&'static str]) -> Self {
        Self { services: services.into() }
    }
}

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLog { inner, services: self.services.clone() }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    services: std::sync::Arc<[&'static str]>,
}

/// The label of `path`: the path itself if it names a method of one of
/// `services` that the server has (it did not answer Unimplemented), else
/// `unknown`.
fn method_label(path: &str, services: &[&'static str], code: tonic::Code) -> Option<String> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let named = services.contains(&service) && !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphanumeric());
    (named && code != tonic::Code::Unimplemented).then(|| path.to_owned())
}

/// The request id from metadata, if it looks like one (it ends up in log
/// lines, so anything else is dropped rather than echoed).
fn request_id<B>(request: &http::Request<B>) -> &str {
    request
        .headers()
        .get(crate::identity::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or("")
}

impl<S, B, R> tower::Service<http::Request<B>> for AccessLog<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone has not been polled ready; keep the one that was.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let services = self.services.clone();
        let path = request.uri().path().to_owned();
        let caller = super::callers::peer_name(&request);
        let caller_field = caller.clone().unwrap_or_else(|| "-".to_owned());
        if let Some(name) = caller {
            request.extensions_mut().insert(super::callers::CallerName(name));
        }
        // The span names the method only if it is one of a served service
        // (a made-up method there reaches no handler, so logs nothing).
        let named = method_label(&path, &services, tonic::Code::Ok);
        let span = tracing::info_span!("grpc", request_id = %request_id(&request),
            method = named.as_deref().unwrap_or("unknown"), caller = %caller_field);
        let started = Instant::now();
        Box::pin(
            async move {
                let result = inner.call(request).await;
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .map_or(tonic::Code::Ok, tonic::Code::from_i32),
                    Err(_) => tonic::Code::Internal,
                };
                let elapsed = started.elapsed();
                let method = method_label(&path, &services, code);
                // Health checks and reflection are probes, not traffic:
                // counted, not logged; unknown paths are neither named nor
                // logged.
                if method.as_deref().is_some_and(|m| !m.starts_with("/grpc.")) {
                    tracing::info!(code = ?code, micros = elapsed.as_micros() as u64, "grpc call");
                }
                let method = method.unwrap_or_else(|| "unknown".to_owned());
                let code = format!("{code:?}");
                metrics::counter!("opendew_grpc_requests_total", "method" => method.clone(), "code" => code)
                    .increment(1);
                metrics::histogram!("opendew_grpc_request_duration_seconds", "method" => method)
                    .record(elapsed.as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_methods_of_served_services_are_named() {
        let services = ["kms.v1.KeyManagementService", "grpc.health.v1.Health"];
        let ok = tonic::Code::Ok;
        let known = "/kms.v1.KeyManagementService/DescribeKey";
        assert_eq!(method_label(known, &services, ok).as_deref(), Some(known));
        assert_eq!(method_label(known, &services, tonic::Code::NotFound).as_deref(), Some(known));
        // Made up: another service, a method the server does not have, junk.
        assert_eq!(method_label("/evil.Service/Method", &services, ok), None);
        assert_eq!(method_label("/kms.v1.KeyManagementService/Nope", &services, tonic::Code::Unimplemented), None);
        assert_eq!(method_label("/kms.v1.KeyManagementService/a%20b", &services, ok), None);
        assert_eq!(method_label("/grpc.health.v1.Health/", &services, ok), None);
        assert_eq!(method_label("nothing", &services, ok), None);
    }
}
