//! kms-service's health follows its database: NOT_SERVING while Postgres
//! refuses it connections, SERVING again once they are allowed. (The
//! csms-service check is the same helper over its own store.)

use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

const SERVICE: &str = "kms.v1.KeyManagementService";

async fn status(client: &mut HealthClient<tonic::transport::Channel>) -> ServingStatus {
    client.check(HealthCheckRequest { service: SERVICE.into() }).await.unwrap().into_inner().status()
}

async fn wait_for(client: &mut HealthClient<tonic::transport::Channel>, wanted: ServingStatus) {
    let started = Instant::now();
    while status(client).await != wanted {
        assert!(started.elapsed() < Duration::from_secs(20), "not {wanted:?} within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn health_follows_the_database() {
    let Some(server) = test_support::postgres_url("kms-service health follows the database") else {
        return;
    };
    let url = test_support::fresh_postgres_database(&server).await;
    let name = url.expose().rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let mut config = kms_service::KmsConfig::new(url.clone(), "127.0.0.1:0".parse().unwrap());
    config.root_key = Some("11".repeat(32).parse().unwrap());
    config.serving.internal_tls = common::grpc::InternalTlsConfig::plaintext();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = kms_service::start(config, shutdown.clone()).await.unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", started.running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    assert_eq!(status(&mut client).await, ServingStatus::Serving);

    // Cut the service off: no new connections, existing ones terminated.
    let admin: sqlx::postgres::PgConnectOptions = server.expose().parse().unwrap();
    let mut admin = admin.connect().await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).execute(&mut admin).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    wait_for(&mut client, ServingStatus::NotServing).await;

    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).execute(&mut admin).await.unwrap();
    wait_for(&mut client, ServingStatus::Serving).await;
    admin.close().await.ok();

    shutdown.cancel();
    started.running.task.await.unwrap().unwrap();
}
