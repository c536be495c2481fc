//! One access-log line and two metrics per gRPC call, in every service.
//!
//! The layer opens the call's span with the request id the gateway sent
//! (metadata `x-request-id`), so every line the handler logs, down to the
//! database driver's, carries the id that the HTTP response showed the
//! client. Unary calls that fail answer "trailers-only", with `grpc-status`
//! in the response headers; a response without it succeeded.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tracing::Instrument;

/// Wraps a gRPC server's routes with [`AccessLog`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLog { inner }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone has not been polled ready; keep the one that was.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = request.uri().path().to_owned();
        let span = tracing::info_span!("grpc", request_id = %request_id(&request), method = %method);
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
                // Health checks and reflection are probes, not traffic:
                // counted, not logged.
                if !method.starts_with("/grpc.") {
                    tracing::info!(code = ?code, micros = elapsed.as_micros() as u64, "grpc call");
                }
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
