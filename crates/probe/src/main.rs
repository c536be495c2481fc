//! `opendew-probe`: the health check inside opendew's container images.
//!
//! The runtime images are distroless (no shell, no curl), so compose
//! healthchecks need a binary of their own. Kubernetes does not use it: it
//! probes gRPC and HTTPS natively.
//!
//! ```text
//! opendew-probe grpc ADDR [SERVICE]     grpc.health.v1 Check; healthy when SERVING
//! opendew-probe http URL [CA_FILE]      GET; healthy on 2xx (https:// trusts CA_FILE)
//! ```
//!
//! Exit status 0 means healthy, 1 unhealthy, 2 a usage error.

use std::time::Duration;

const USAGE: &str = "usage: opendew-probe grpc ADDR [SERVICE] | opendew-probe http URL [CA_FILE]";
const TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["grpc", addr, rest @ ..] if rest.len() <= 1 => grpc(addr, rest.first().copied().unwrap_or("")).await,
        ["http", url, rest @ ..] if rest.len() <= 1 => http(url, rest.first().copied()).await,
        _ => {
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn grpc(addr: &str, service: &str) -> anyhow::Result<()> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let endpoint = if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") };
    let channel =
        tonic::transport::Endpoint::from_shared(endpoint)?.connect_timeout(TIMEOUT).timeout(TIMEOUT).connect().await?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.to_owned() })
        .await?
        .into_inner()
        .status();
    anyhow::ensure!(status == ServingStatus::Serving, "{service:?} is {}", status.as_str_name());
    Ok(())
}

async fn http(url: &str, ca_file: Option<&str>) -> anyhow::Result<()> {
    let mut client = reqwest::Client::builder().timeout(TIMEOUT);
    if let Some(ca) = ca_file {
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?);
    }
    let status = client.build()?.get(url).send().await?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}
