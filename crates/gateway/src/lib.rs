//! The gateway: the only component that speaks HTTP and JSON.
//!
//! It authenticates callers (AK/SK signatures, `X-Auth-Token`), checks that
//! the path's project is theirs, translates Huawei Cloud's KMS and CSMS
//! REST dialect into kms.v1 / csms.v1 gRPC calls carrying the caller's
//! identity, and translates answers and errors back.

use std::sync::Arc;

use anyhow::Context;
use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use proto::{
    csms::v1::secrets_manager_service_client::SecretsManagerServiceClient,
    kms::v1::key_management_service_client::KeyManagementServiceClient,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub mod auth;
pub mod budget;
pub mod caller;
pub mod config;
pub mod connections;
pub mod error;
pub mod json;
pub mod ledger;
pub mod peer;
pub mod replay;
pub mod routes;
/// The request-signature algorithms, from their own crate (the clients
/// use it without the gateway).
pub use signing;
pub mod state;
pub mod sts;
pub mod throttle;
pub mod tls;
pub mod tokens;

pub use config::GatewayConfig;
use error::{ApiError, CsmsFault, KmsFault, REQUEST_ID};
pub use routes::{ApiRoute, api_routes};
pub use state::{AppState, load_token_key};

/// The router, for tests that want to drive it without a socket.
pub fn router(state: Arc<AppState>) -> Router {
    let mut api = Router::new();
    for route in api_routes() {
        let handler = if route.one_shot {
            let guard = replay::Guard { app: state.clone(), grace: !route.acts_each_time };
            route.handler.route_layer(middleware::from_fn_with_state(guard, replay::guard))
        } else {
            route.handler
        };
        // Authentication is per route: it reads at most the route's body.
        let edge = state::Edge { app: state.clone(), body_limit: route.body_limit };
        api = api.route(route.path, handler.route_layer(middleware::from_fn_with_state(edge, auth::authenticate)));
    }
    let login = state::Edge { app: state.clone(), body_limit: routes::iam::MAX_LOGIN_BODY };
    Router::new()
        .merge(api)
        .route_layer(middleware::from_fn(track))
        .route(
            "/v3/auth/tokens",
            post(routes::iam::issue_token).route_layer(middleware::from_fn_with_state(login, routes::iam::read_login)),
        )
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "alive"})) }))
        .route("/readyz", get(readyz))
        .route("/", get(routes::kms::account::versions))
        .route("/{version_id}", get(routes::kms::account::version))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        // Every route reads its body through `budget::read_body` with its
        // own limit; this bounds anything else that might.
        .layer(DefaultBodyLimit::max(routes::LARGEST_BODY))
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn(connections::activity))
        .with_state(state)
}

/// No route matched. A path in KMS's own space is answered as KMS does
/// (kms-api.md §5: `KMS.0201`, 400); anything else the way the API
/// gateway in front of Huawei's services answers (`APIGW.0101`, 404).
async fn unknown_route(uri: http::Uri) -> ApiError {
    let mut segments = uri.path().trim_start_matches('/').split('/');
    let kms_space = segments.next() == Some("v1.0")
        && segments.next().is_some_and(|project| !project.is_empty())
        && segments.next() == Some("kms");
    if kms_space { ApiError::kms(KmsFault::UnknownOperation) } else { ApiError::RouteNotFound }
}

/// Ready when both services answer SERVING on grpc.health.v1 and the
/// identity database answers, each within a second; 503 with each one's
/// status otherwise.
async fn readyz(axum::extract::State(app): axum::extract::State<Arc<AppState>>) -> Response {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let mut statuses = serde_json::Map::new();
    let mut ready = true;
    for (service, channel) in &app.channels {
        let mut client = HealthClient::new(channel.clone());
        let check = client.check(HealthCheckRequest { service: (*service).to_owned() });
        let status = match tokio::time::timeout(std::time::Duration::from_secs(1), check).await {
            Ok(Ok(response)) => response.into_inner().status(),
            _ => ServingStatus::Unknown,
        };
        ready &= status == ServingStatus::Serving;
        statuses.insert((*service).to_owned(), serde_json::Value::String(status.as_str_name().to_owned()));
    }
    let iam = tokio::time::timeout(std::time::Duration::from_secs(1), app.directory.store().ping()).await;
    let iam_ok = matches!(iam, Ok(Ok(())));
    let key_ok = !app.directory.snapshot().wrong_identity_key();
    ready &= iam_ok && key_ok;
    let iam_status = match (iam_ok, key_ok) {
        (false, _) => "UNREACHABLE",
        (true, false) => "WRONG_IDENTITY_KEY",
        (true, true) => "SERVING",
    };
    statuses.insert("identity-store".into(), serde_json::Value::String(iam_status.into()));
    let code = if ready { http::StatusCode::OK } else { http::StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({"status": if ready { "ready" } else { "not ready" }, "services": statuses});
    (code, axum::Json(body)).into_response()
}

async fn method_not_allowed(req: Request) -> ApiError {
    if req.uri().path().starts_with("/v1.0/") {
        ApiError::kms(KmsFault::MethodNotAllowed)
    } else {
        ApiError::csms(CsmsFault::MethodNotAllowed)
    }
}

/// Counts requests by method, route and status, and times them by route. The label
/// is the route's pattern (`/v1.0/{project_id}/kms/create-key`), never the
/// concrete path, so the number of series stays bounded.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("opendew_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("opendew_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Gives every request an id: in the `X-Request-Id` response header, in
/// error bodies, in the log span, and forwarded to the services.
async fn request_id(req: Request, next: Next) -> Response {
    let id = common::identity::new_hex32();
    let span = tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(req)).instrument(span.clone()).await;
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), "request"));
    response.headers_mut().insert("x-request-id", id.parse().expect("hex is a valid header"));
    response
}

/// Starts the gateway; serves until `shutdown` is cancelled, then finishes
/// in-flight requests.
pub async fn start(config: GatewayConfig, shutdown: CancellationToken) -> anyhow::Result<common::grpc::Running> {
    let directory = open_directory(&config).await?;
    directory.spawn_refresh(std::time::Duration::from_secs(config.identity_refresh_seconds), shutdown.clone());
    replay::spawn_forgetting(directory.clone(), shutdown.clone());
    let internal = config.internal_tls.load()?;
    let kms_channel = common::grpc::channel(&config.kms_endpoint, internal.as_ref(), "--gateway-kms-endpoint")?;
    let csms_channel = common::grpc::channel(&config.csms_endpoint, internal.as_ref(), "--csms-endpoint")?;
    let tls_files = config.tls_files()?;
    let state = Arc::new(AppState {
        scheme: if tls_files.is_some() { "https" } else { "http" },
        ledger: ledger::Ledger::start(directory.clone()),
        directory,
        throttle: throttle::Throttle::new(config.throttle.clone()),
        tokens: load_token_key(config.token_key_file.as_deref(), &config.identity_key_file)?,
        kms: KeyManagementServiceClient::new(kms_channel.clone()),
        // A backup's answer carries a blob of up to 5 MiB (csms-service's
        // `MAX_BLOB_LEN`): past tonic's 4 MiB default.
        csms: SecretsManagerServiceClient::new(csms_channel.clone()).max_decoding_message_size(routes::RESTORE_BODY),
        channels: [
            (proto::kms::v1::key_management_service_server::SERVICE_NAME, kms_channel),
            (proto::csms::v1::secrets_manager_service_server::SERVICE_NAME, csms_channel),
        ],
        budgets: budget::Budgets::new(&config.budgets),
        trusted_proxies: peer::TrustedProxies::new(config.trusted_proxies.clone()),
        body_timeout: config.body_timeout,
    });
    // Password hashing's threads and their working memory, up front.
    identity::hashing::start();
    let tls = tls_files.as_ref().map(tls::load).transpose()?;
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on --http-listen {}: {e}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let app = router(state).into_make_service();
    // One drain path for both transports: on shutdown the server stops
    // accepting and lets in-flight requests finish (the caller bounds how
    // long); keep-alive connections close after their current request.
    let handle = axum_server::Handle::new();
    let drain = handle.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        drain.graceful_shutdown(None);
    });
    // Connections within their caps, with their peer and idle timer
    // (`connections`).
    let accept = connections::Acceptor::new(connections::Registry::new(config.connections.clone()));
    // A client that sends nothing, or its headers a byte at a time, holds a
    // connection for a bounded time only (bodies: `budget::read_body`).
    let header_timeout = config.header_timeout;
    let limits = &config.connections;
    let mut server = axum_server::from_tcp(listener)?.handle(handle).first_request_timeout(header_timeout);
    server.http_builder().http1().header_read_timeout(header_timeout);
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(limits.h2_max_streams)
        .keep_alive_interval(limits.h2_keepalive_interval)
        .keep_alive_timeout(limits.h2_keepalive_timeout)
        // Headers of one request on one stream: as HTTP/1.1's bound.
        .max_header_list_size(64 * 1024);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let task = match (tls, tls_files) {
        (Some(tls), Some(files)) => {
            tls::spawn_reloader(
                tls.clone(),
                files,
                std::time::Duration::from_secs(config.tls_reload_seconds),
                shutdown.clone(),
            );
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(accept);
            tokio::spawn(async move { Ok(server.acceptor(acceptor).serve(app).await?) })
        }
        _ => tokio::spawn(async move { Ok(server.acceptor(accept).serve(app).await?) }),
    };
    tracing::info!(%addr, scheme, "gateway listening");
    Ok(common::grpc::Running { addr, task })
}

/// `--migrate-only`: applies the identity store's migrations (the gateway's
/// only database), seeds a new store from `--credentials-file` when given,
/// and returns. The deployments seed here, so the credentials file (every
/// seeded SK in plaintext) is mounted only in this short-lived step and
/// never in the serving gateway (issue #40).
pub async fn migrate(config: GatewayConfig) -> anyhow::Result<()> {
    let store = open_identity_store(&config).await?;
    seed(&config, &*store).await
}

/// Imports `--credentials-file` into a store never written before.
async fn seed(config: &GatewayConfig, store: &dyn identity::IdentityStore) -> anyhow::Result<()> {
    let Some(file) = &config.credentials_file else { return Ok(()) };
    let sealer = identity::seal::SecretSealer::from_file(&config.identity_key_file)?;
    let added = identity::admin::import_credentials(store, &sealer, file).await?;
    if added > 0 {
        tracing::info!(added, file = %file.display(), "accounts imported into the identity store");
    }
    Ok(())
}

/// The identity store with its settings, migrated.
pub async fn open_identity_store(config: &GatewayConfig) -> anyhow::Result<Arc<dyn identity::IdentityStore>> {
    let url = config
        .iam_database_url
        .clone()
        .with_password_file(config.iam_database_password_file.as_deref(), "--iam-database-password-file")?;
    identity::open_store(&url, config.iam_max_connections).await.context("opening the identity store")
}

/// Opens the identity store, imports --credentials-file, loads the directory.
async fn open_directory(config: &GatewayConfig) -> anyhow::Result<Arc<identity::directory::Directory>> {
    let store = open_identity_store(config).await?;
    seed(config, &*store).await?;
    let sealer = identity::seal::SecretSealer::from_file(&config.identity_key_file)?;
    Ok(identity::directory::Directory::open(store, sealer).await?)
}

/// Lets `main` and tests turn an error into a response.
pub fn into_response(e: ApiError) -> Response {
    e.into_response()
}
