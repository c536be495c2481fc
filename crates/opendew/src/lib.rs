//! The whole opendew stack in one process, for development and tests.
//!
//! `opendew dev` starts kms-service, csms-service and the gateway on SQLite
//! files under one data directory. Each service still listens on its own
//! gRPC port and csms-service still calls kms-service over gRPC, exactly as
//! in a deployment; only the process boundary is gone.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Context;
use common::db::DatabaseUrl;
use tokio_util::sync::CancellationToken;

pub mod admin;
pub mod pki;

/// Settings of `opendew dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevConfig {
    /// Where keys, secrets, the root key and credentials are kept.
    #[arg(long = "data-dir", env = "OPENDEW_DATA_DIR", default_value = ".opendew")]
    pub data_dir: PathBuf,
    /// HTTP address of the gateway (the SDK endpoint).
    #[arg(long = "http-listen", env = "OPENDEW_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,
    /// gRPC address of kms-service.
    #[arg(long = "kms-listen", env = "OPENDEW_KMS_LISTEN", default_value = "127.0.0.1:7101")]
    pub kms_listen: SocketAddr,
    /// gRPC address of csms-service.
    #[arg(long = "csms-listen", env = "OPENDEW_CSMS_LISTEN", default_value = "127.0.0.1:7102")]
    pub csms_listen: SocketAddr,
    /// Use this database (e.g. postgres://…) for both services instead of
    /// SQLite files in the data directory; each service keeps its own schema.
    #[arg(long = "database-url", env = "OPENDEW_DATABASE_URL")]
    pub database_url: Option<DatabaseUrl>,
    /// Region id (the project name and the keys' realm).
    #[arg(long = "region", env = "OPENDEW_REGION", default_value = "local-1")]
    pub region: String,
    /// Serve HTTPS with a certificate from a private CA created in the data
    /// directory on first use (`tls/ca.pem` is what clients trust). Without
    /// it the dev gateway serves plain HTTP on loopback.
    #[arg(long = "tls", env = "OPENDEW_DEV_TLS")]
    pub tls: bool,
    /// csms-service's rotation, expiry and notification tasks (e.g. a
    /// webhook that receives every notification record).
    #[command(flatten)]
    pub csms_jobs: csms_service::CsmsJobs,
}

impl DevConfig {
    /// A stack in `data_dir` on loopback ports chosen by the system, on
    /// SQLite, over plain HTTP, with csms-service's default tasks (tests
    /// and embedders set what they need on top).
    pub fn on_loopback(data_dir: PathBuf) -> Self {
        let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self {
            data_dir,
            http_listen: any_port,
            kms_listen: any_port,
            csms_listen: any_port,
            database_url: None,
            region: "local-1".into(),
            tls: false,
            csms_jobs: csms_service::CsmsJobs::default(),
        }
    }
}

/// The listen addresses of `config` that other machines can reach.
fn exposed(config: &DevConfig) -> Vec<SocketAddr> {
    [config.http_listen, config.kms_listen, config.csms_listen].into_iter().filter(|a| !a.ip().is_loopback()).collect()
}

/// A running dev stack.
#[derive(Debug)]
pub struct DevStack {
    /// Gateway HTTP address.
    pub http: SocketAddr,
    /// kms-service gRPC address.
    pub kms: SocketAddr,
    /// csms-service gRPC address.
    pub csms: SocketAddr,
    /// The credentials file (first entry is the default account).
    pub credentials_file: PathBuf,
    /// The gateway's certificate files when it serves HTTPS.
    pub tls: Option<pki::GatewayTls>,
    /// The certificates of the stack (the operator's is for grpcurl).
    pub pki: pki::Pki,
    /// True when this start created the default account (so the banner
    /// shows its SK and password this once).
    pub first_start: bool,
    /// Cancels every server.
    pub shutdown: CancellationToken,
    /// The in-process kms-service, for hot-path inspection.
    pub kms_service: std::sync::Arc<kms_service::service::KmsService>,
    tasks: Vec<common::grpc::Running>,
}

impl DevStack {
    /// The SDK endpoint: `https://…` with `--tls`, `http://…` otherwise.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.http)
    }

    /// Stops every server and waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for running in self.tasks {
            running.task.await??;
        }
        Ok(())
    }

    /// Waits until any server stops (an error, or shutdown).
    pub async fn wait(self) -> anyhow::Result<()> {
        let (result, _, rest) = futures::future::select_all(self.tasks.into_iter().map(|r| r.task)).await;
        self.shutdown.cancel();
        for task in rest {
            task.await??;
        }
        result?
    }
}

/// The files a stack needs before it starts, as [`bootstrap`] leaves them.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The root key (64 hex characters, mode 0600): kms-service's `--root-key-file`.
    pub root_key_file: PathBuf,
    /// The token signing key (hex, 0600): the gateway's `--token-key-file`.
    pub token_key_file: PathBuf,
    /// The key that seals SKs in the identity store (hex, 0600): the
    /// gateway's and `opendew admin`'s `--identity-key-file`.
    pub identity_key_file: PathBuf,
    /// The default account (0600): the gateway's `--credentials-file`.
    pub credentials_file: PathBuf,
    /// The key that seals registered database instances (hex, 0600):
    /// csms-service's and `opendew admin db-instance`'s
    /// `--db-instance-key-file`.
    pub db_instance_key_file: PathBuf,
    /// The private CA with the gateway's HTTPS certificate and the
    /// internal (mutual TLS) certificates.
    pub pki: pki::Pki,
    /// Which of these were created now (the rest already existed).
    pub created: Vec<PathBuf>,
}

/// Creates in `dir` whatever of the root key, token key, default
/// credentials and certificates (under `tls/`; the gateway's is valid for
/// `localhost`, `127.0.0.1` and `gateway_hosts`) is missing, and keeps what
/// exists: running it again never replaces a key. Both `opendew dev` and
/// `opendew bootstrap` (the compose stack's one-shot service) use it.
pub fn bootstrap(dir: &Path, region: &str, gateway_hosts: &[String]) -> anyhow::Result<Bootstrapped> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let mut created = Vec::new();
    let root_key_file = dir.join("root.key");
    if !root_key_file.exists() {
        kms_service::envelope::RootKey::from_file(&root_key_file, true)?;
        created.push(root_key_file.clone());
    }
    let token_key_file = dir.join("token.key");
    if !token_key_file.exists() {
        let key = zeroize::Zeroizing::new(hex::encode(gateway::tokens::TokenKey::random_bytes()));
        identity::credentials::write_private_file(&token_key_file, key.as_bytes())?;
        created.push(token_key_file.clone());
    }
    let identity_key_file = dir.join("identity.key");
    if identity::seal::SecretSealer::ensure_key_file(&identity_key_file)? {
        created.push(identity_key_file.clone());
    }
    let credentials_file = dir.join("credentials.json");
    if identity::credentials::load_or_create(&credentials_file, region)? {
        created.push(credentials_file.clone());
    }
    let db_instance_key_file = dir.join("db-instance.key");
    if csms_service::instances::InstanceKey::ensure_file(&db_instance_key_file)? {
        created.push(db_instance_key_file.clone());
    }
    let tls_dir = dir.join("tls");
    let existed = tls_dir.exists();
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    hosts.extend(gateway_hosts.iter().filter(|h| !hosts.contains(h)).cloned().collect::<Vec<_>>());
    let pki = pki::ensure(&tls_dir, &hosts).context("creating the certificates")?;
    if !existed {
        created.push(tls_dir);
    }
    Ok(Bootstrapped {
        root_key_file,
        token_key_file,
        identity_key_file,
        credentials_file,
        db_instance_key_file,
        pki,
        created,
    })
}

/// What each service reads of the bootstrap directory, relative to it. The
/// CA key and the operator's certificate are no service's.
/// The seed step (`gateway --migrate-only`) alone gets the credentials
/// file: the serving gateway never holds the seeded SKs (issue #40).
pub const SERVICE_FILES: [(&str, &[&str]); 4] = [
    ("kms-service", &["root.key", "tls/ca.pem", "tls/kms-service.pem", "tls/kms-service.key"]),
    ("csms-service", &["db-instance.key", "tls/ca.pem", "tls/csms-service.pem", "tls/csms-service.key"]),
    ("gateway-seed", &["identity.key", "credentials.json"]),
    (
        "gateway",
        &[
            "identity.key",
            "token.key",
            "tls/ca.pem",
            "tls/gateway.pem",
            "tls/gateway.key",
            "tls/gateway-client.pem",
            "tls/gateway-client.key",
        ],
    ),
];

/// Copies each service's files ([`SERVICE_FILES`]) from the bootstrap
/// directory `dir` into `out/<service>/`, at the same relative paths and
/// private (0600), so that each container mounts its own files and no
/// other's (issue #15, finding 7: every container, the internet-facing
/// gateway included, mounted the root key and the CA key). Files already
/// there are kept. Returns the files created.
pub fn share_with_services(dir: &Path, out: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut created = Vec::new();
    for (service, files) in SERVICE_FILES {
        for file in files {
            let target = out.join(service).join(file);
            if target.exists() {
                continue;
            }
            let parent = target.parent().expect("a file under the service's directory");
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            let bytes = zeroize::Zeroizing::new(
                std::fs::read(dir.join(file)).with_context(|| format!("cannot read {}", dir.join(file).display()))?,
            );
            identity::credentials::write_private_file(&target, &bytes)?;
            created.push(target);
        }
    }
    Ok(created)
}

/// Starts the three services. Everything the stack needs is created in the
/// data directory on first start by [`bootstrap`]: the root key (0600), the
/// token key (0600), the default credentials (0600), the development CA
/// with its certificates, and the SQLite databases. The services call each
/// other over mutual TLS, as in a deployment; with `--tls` the gateway
/// serves HTTPS too.
pub async fn start(config: DevConfig, shutdown: CancellationToken) -> anyhow::Result<DevStack> {
    let exposed = exposed(&config);
    if !exposed.is_empty() {
        // The dev stack is for one machine: it prints its SK, keeps its root
        // key beside its data and (without --tls) speaks plain HTTP.
        let list = exposed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        tracing::warn!(addresses = %list, "opendew dev is listening beyond loopback");
        eprintln!(
            "WARNING: opendew dev listens on {list}, reachable from other machines. The dev stack is for one \
             machine: its credentials are printed and its root key lies in its data directory{}. Deploy the \
             services (deploy/) to serve a network.",
            if config.tls { "" } else { ", and it speaks plain HTTP" }
        );
    }
    let dir = &config.data_dir;
    let files = bootstrap(dir, &config.region, &[])?;
    let pki = &files.pki;
    let kms_database = config.database_url.clone().unwrap_or_else(|| DatabaseUrl::sqlite_file(&dir.join("kms.db")));
    let started = kms_service::start(
        kms_service::KmsConfig {
            root_key_file: Some(files.root_key_file.clone()),
            serving: common::grpc::ServeFlags { internal_tls: pki.internal(&pki.kms), ..Default::default() },
            region: config.region.clone(),
            max_connections: 8,
            ..kms_service::KmsConfig::new(kms_database, config.kms_listen)
        },
        shutdown.clone(),
    )
    .await
    .context("starting kms-service")?;
    let (kms, kms_service) = (started.running, started.service);
    // The key `opendew admin db-instance add --data-dir` seals instances
    // under, so that database secrets rotate here as in production.
    let mut csms_jobs = config.csms_jobs.clone();
    csms_jobs.db_instance_key_file.get_or_insert_with(|| files.db_instance_key_file.clone());
    // Local receivers (a webhook on this machine) are what development uses.
    csms_jobs.webhook.allow_loopback = true;
    let csms = csms_service::start(
        csms_service::CsmsConfig {
            database_url: config.database_url.clone().unwrap_or_else(|| DatabaseUrl::sqlite_file(&dir.join("csms.db"))),
            database_password_file: None,
            listen: config.csms_listen,
            serving: common::grpc::ServeFlags { internal_tls: pki.internal(&pki.csms), ..Default::default() },
            kms_endpoint: format!("http://{}", kms.addr),
            secret_quota: 200,
            max_connections: 8,
            purge_interval: std::time::Duration::from_secs(60),
            jobs: csms_jobs,
        },
        shutdown.clone(),
    )
    .await
    .context("starting csms-service")?;
    let mut gateway_config = gateway::GatewayConfig::plaintext(
        config.http_listen,
        format!("http://{}", kms.addr),
        format!("http://{}", csms.addr),
        config.database_url.clone().unwrap_or_else(|| DatabaseUrl::sqlite_file(&dir.join("iam.db"))),
        files.identity_key_file.clone(),
    );
    // The default account lives in the identity store; the file is where
    // the developer reads its SK, and is imported at every start (a no-op
    // once it is in).
    gateway_config.credentials_file = Some(files.credentials_file.clone());
    gateway_config.token_key_file = Some(files.token_key_file.clone());
    gateway_config.internal_tls = pki.internal(&pki.gateway_client);
    let tls = config.tls.then(|| pki.gateway_tls());
    if let Some(tls) = &tls {
        gateway_config.http_plaintext = false;
        gateway_config.tls_cert_file = Some(tls.cert.clone());
        gateway_config.tls_key_file = Some(tls.key.clone());
    }
    let http = gateway::start(gateway_config, shutdown.clone()).await.context("starting the gateway")?;
    Ok(DevStack {
        http: http.addr,
        kms: kms.addr,
        csms: csms.addr,
        first_start: files.created.contains(&files.credentials_file),
        credentials_file: files.credentials_file,
        tls,
        pki: files.pki,
        shutdown,
        kms_service,
        tasks: vec![kms, csms, http],
    })
}

#[cfg(test)]
mod tests {
    /// Each service's directory holds its files and nothing else: no CA
    /// key anywhere, the root key with kms-service only, the identity and
    /// token keys with the gateway only.
    #[test]
    fn each_service_gets_only_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let (data, shared) = (dir.path().join("data"), dir.path().join("services"));
        super::bootstrap(&data, "local-1", &[]).unwrap();
        let created = super::share_with_services(&data, &shared).unwrap();
        assert_eq!(created.len(), super::SERVICE_FILES.iter().map(|(_, f)| f.len()).sum::<usize>());
        let listing = |service: &str| {
            let mut files: Vec<String> = walk(&shared.join(service));
            files.sort();
            files
        };
        assert_eq!(listing("kms-service"), ["root.key", "tls/ca.pem", "tls/kms-service.key", "tls/kms-service.pem"]);
        assert_eq!(
            listing("csms-service"),
            ["db-instance.key", "tls/ca.pem", "tls/csms-service.key", "tls/csms-service.pem"]
        );
        let gateway = listing("gateway");
        assert!(gateway.contains(&"identity.key".to_owned()) && !gateway.iter().any(|f| f.contains("root")));
        assert!(!gateway.iter().any(|f| f.contains("credentials")), "the serving gateway holds no seeded SK");
        assert_eq!(listing("gateway-seed"), ["credentials.json", "identity.key"]);
        assert!(!walk(&shared).iter().any(|f| f.ends_with("ca.key") || f.contains("operator")));
        assert_eq!(
            std::fs::read(shared.join("kms-service/root.key")).unwrap(),
            std::fs::read(data.join("root.key")).unwrap()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(shared.join("gateway/identity.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(super::share_with_services(&data, &shared).unwrap().is_empty(), "kept, not rewritten");
    }

    /// `opendew dev` names every address other machines could reach, so it
    /// can warn about them (issue #40).
    #[test]
    fn addresses_beyond_loopback_are_named() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            dev: super::DevConfig,
        }
        let dev = |args: &[&str]| Args::parse_from([&["dev"][..], args].concat()).dev;
        assert!(super::exposed(&dev(&[])).is_empty(), "the defaults are loopback");
        let open = dev(&["--http-listen", "0.0.0.0:8080", "--kms-listen", "[::]:7101"]);
        assert_eq!(super::exposed(&open).len(), 2);
    }

    fn walk(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out
    }
}
