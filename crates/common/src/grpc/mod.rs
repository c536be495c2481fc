//! Serving gRPC the same way in every service: health and reflection always
//! on, advertising only the public services, with one shutdown token.

use std::net::SocketAddr;

mod access;
pub mod callers;
pub mod errors;
mod tls;
pub use access::AccessLogLayer;
pub use tls::{InternalTls, InternalTlsConfig, channel};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, service::Routes};
use tonic_health::{ServingStatus, server::HealthReporter};

/// Health of a server: the reporter its status goes through, and the
/// health service alone, for the plaintext probe port.
#[derive(Debug)]
pub struct Health {
    reporter: HealthReporter,
    probe_routes: Routes,
}

/// Starts a route set with `grpc.health.v1` and server reflection (v1 and
/// v1alpha, since grpcurl 1.8 speaks only v1alpha). Reflection advertises
/// exactly `service_names` plus health; each of them is marked SERVING.
pub async fn base_routes(service_names: &[&'static str]) -> anyhow::Result<(Health, Routes)> {
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
    let probe_routes = Routes::new(health.clone());
    let routes = Routes::new(health).add_service(reflection().build_v1()?).add_service(reflection().build_v1alpha()?);
    for name in service_names {
        reporter.set_service_status(*name, ServingStatus::Serving).await;
    }
    Ok((Health { reporter, probe_routes }, routes))
}

/// Binds a listener; port 0 picks a free port (tests do that).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves `routes` on `listener` until `shutdown` is cancelled, then lets
/// in-flight calls finish.
pub async fn serve(
    listener: TcpListener, routes: Routes, tls: Option<&InternalTls>, callers: callers::CallerCheckLayer,
    services: &[&'static str], shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use tokio_stream::StreamExt;
    // Small gRPC messages must not wait for Nagle's algorithm (a 40 ms stall
    // against delayed ACKs); tonic sets this only on listeners it binds.
    let incoming = TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream {
            let _ = stream.set_nodelay(true);
        }
        stream
    });
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls.server())?;
    }
    server
        .layer(AccessLogLayer::new(services))
        .layer(callers)
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

/// Whether what a service depends on (its database) answers; polled by
/// [`spawn`] to keep the health status honest.
pub type ReadyCheck = std::sync::Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// How often [`spawn`] runs the ready check.
const READY_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Binds `addr` and serves `routes` in a task until `shutdown`. While
/// running, `ready` is checked every few seconds: the services report
/// NOT_SERVING while it fails (their database is unreachable) and SERVING
/// again once it passes. On shutdown the services are first reported
/// NOT_SERVING (so load balancers and the gateway's readiness stop sending
/// work), then the server stops accepting and lets in-flight calls finish.
/// One task owns the status, so a late check can never undo the shutdown's
/// NOT_SERVING.
pub async fn spawn(
    listen: &Listen, routes: Routes, health: Health, service_names: &[&'static str], ready: ReadyCheck,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    let (listener, addr) = bind(listen.addr).await?;
    let stop = CancellationToken::new();
    if let Some(probe_addr) = listen.health_addr {
        // Kubernetes' gRPC probes speak plain gRPC without a client
        // certificate, so health alone gets a port of its own: it tells
        // nothing but SERVING or not, and serves no API.
        let (probe_listener, probe_addr) = bind(probe_addr).await?;
        let probe = stop.clone();
        tracing::info!(addr = %probe_addr, "health probe port listening");
        let probe_callers = callers::CallerCheckLayer { policy: callers::gateway_only, break_glass: false };
        let health_only: &'static [&'static str] = &["grpc.health.v1.Health"];
        tokio::spawn(async move {
            serve(probe_listener, health.probe_routes, None, probe_callers, health_only, probe).await
        });
    }
    let health = health.reporter;
    let (names, trigger) = (service_names.to_vec(), stop.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(READY_CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut serving = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let check = tokio::time::timeout(std::time::Duration::from_secs(3), ready());
            let ok = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                ok = check => ok.unwrap_or(false),
            };
            if ok != serving {
                serving = ok;
                let status = if ok { ServingStatus::Serving } else { ServingStatus::NotServing };
                if ok {
                    tracing::info!("database reachable again; reporting SERVING");
                } else {
                    tracing::warn!("database unreachable; reporting NOT_SERVING");
                }
                for name in &names {
                    health.set_service_status(*name, status).await;
                }
            }
        }
        for name in names {
            health.set_service_status(name, ServingStatus::NotServing).await;
        }
        trigger.cancel();
    });
    let tls = listen.tls.clone();
    let callers = callers::CallerCheckLayer { policy: listen.callers, break_glass: listen.operator_break_glass };
    let mut services: Vec<&'static str> = service_names.to_vec();
    services.extend(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]);
    services.extend(["grpc.reflection.v1alpha.ServerReflection"]);
    let task = tokio::spawn(async move { serve(listener, routes, tls.as_ref(), callers, &services, stop).await });
    Ok(Running { addr, task })
}

/// The serving flags both services take alike: the probe port, break
/// glass, and mutual TLS.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeFlags {
    /// Plaintext port serving only grpc.health.v1 (for Kubernetes probes,
    /// which present no client certificate); off when unset.
    #[arg(long = "health-listen", env = "OPENDEW_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// Let the operator's certificate change state and use keys or read
    /// values, not only describe (break glass; logged at start). Without it,
    /// grpcurl with the operator certificate can describe, list and get only.
    #[arg(long = "operator-break-glass", env = "OPENDEW_OPERATOR_BREAK_GLASS")]
    pub operator_break_glass: bool,
    /// Mutual TLS for the API port and for calls to other services.
    #[command(flatten)]
    pub internal_tls: InternalTlsConfig,
}

impl Listen {
    /// How a service listens on `addr` with `flags`, the TLS they loaded,
    /// and its caller policy; break glass is logged here, once.
    pub fn new(addr: SocketAddr, flags: &ServeFlags, tls: Option<InternalTls>, callers: callers::CallerPolicy) -> Self {
        if flags.operator_break_glass {
            tracing::warn!("--operator-break-glass: the operator certificate may change state, not only read");
        }
        Self { addr, health_addr: flags.health_listen, tls, callers, operator_break_glass: flags.operator_break_glass }
    }
}

/// Where and how a service listens.
#[derive(Debug, Clone)]
pub struct Listen {
    /// The API port (health and reflection too).
    pub addr: SocketAddr,
    /// A plaintext port serving only `grpc.health.v1`, for probes.
    pub health_addr: Option<SocketAddr>,
    /// Mutual TLS on the API port; `None` only with --grpc-plaintext.
    pub tls: Option<InternalTls>,
    /// Which internal certificates may call which method.
    pub callers: callers::CallerPolicy,
    /// `--operator-break-glass`: the operator's certificate may change
    /// state, not only read (see [`callers`]).
    pub operator_break_glass: bool,
}
