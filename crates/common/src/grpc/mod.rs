//! Serving gRPC the same way in every service: health and reflection always
//! on, advertising only the public services, with one shutdown token.

use std::net::SocketAddr;

mod access;
pub use access::AccessLogLayer;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, service::Routes};
use tonic_health::{ServingStatus, server::HealthReporter};

/// Starts a route set with `grpc.health.v1` and server reflection (v1 and
/// v1alpha, since grpcurl 1.8 speaks only v1alpha). Reflection advertises
/// exactly `service_names` plus health; each of them is marked SERVING.
pub async fn base_routes(service_names: &[&'static str]) -> anyhow::Result<(HealthReporter, Routes)> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in service_names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let routes = Routes::new(health).add_service(reflection().build_v1()?).add_service(reflection().build_v1alpha()?);
    for name in service_names {
        reporter.set_service_status(*name, ServingStatus::Serving).await;
    }
    Ok((reporter, routes))
}

/// Binds a listener; port 0 picks a free port (tests do that).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves `routes` on `listener` until `shutdown` is cancelled, then lets
/// in-flight calls finish.
pub async fn serve(listener: TcpListener, routes: Routes, shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio_stream::StreamExt;
    // Small gRPC messages must not wait for Nagle's algorithm (a 40 ms stall
    // against delayed ACKs); tonic sets this only on listeners it binds.
    let incoming = TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream {
            let _ = stream.set_nodelay(true);
        }
        stream
    });
    tonic::transport::Server::builder()
        .layer(AccessLogLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// Builds a status that carries a typed detail message (the service's
/// `ErrorDetail`), so clients can branch on the reason without parsing text.
pub fn status_with_detail<M: prost::Message>(code: Code, message: impl Into<String>, detail: &M) -> Status {
    Status::with_details(code, message, detail.encode_to_vec().into())
}

/// Reads the typed detail of a status built by [`status_with_detail`].
pub fn detail_of<M: prost::Message + Default>(status: &Status) -> Option<M> {
    if status.details().is_empty() {
        return None;
    }
    M::decode(status.details()).ok()
}

/// A started server: where it listens and the task serving it.
#[derive(Debug)]
pub struct Running {
    /// The bound address (the real port when asked for port 0).
    pub addr: SocketAddr,
    /// Completes when the server has stopped.
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Binds `addr` and serves `routes` in a task until `shutdown`. On
/// shutdown the services are first reported NOT_SERVING (so load balancers
/// and the gateway's readiness stop sending work), then the server stops
/// accepting and lets in-flight calls finish.
pub async fn spawn(
    addr: SocketAddr,
    routes: Routes,
    health: HealthReporter,
    service_names: &[&'static str],
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    let (listener, addr) = bind(addr).await?;
    let stop = CancellationToken::new();
    let (names, trigger) = (service_names.to_vec(), stop.clone());
    tokio::spawn(async move {
        shutdown.cancelled().await;
        for name in names {
            health.set_service_status(name, ServingStatus::NotServing).await;
        }
        trigger.cancel();
    });
    let task = tokio::spawn(serve(listener, routes, stop));
    Ok(Running { addr, task })
}
