//! The `opendew` command.

use clap::{Parser, Subcommand};

common::allocator!();

/// opendew: Huawei Cloud KMS and CSMS, self-hosted.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: common::telemetry::LogConfig,
    #[command(flatten)]
    metrics: common::metrics::MetricsConfig,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack in one process on SQLite (development, CI).
    Dev(opendew::DevConfig),
    /// Create the files a deployment needs (root key, token key, default
    /// credentials, TLS certificates) in a directory, keeping any that
    /// exist; the compose stack runs it once before the services start.
    Bootstrap(BootstrapArgs),
    /// Manage domains, projects, users and access keys in the identity store.
    Admin(opendew::admin::AdminArgs),
}

#[derive(Debug, clap::Args)]
struct BootstrapArgs {
    /// Directory to write into (created if missing).
    #[arg(long = "out-dir", env = "OPENDEW_BOOTSTRAP_DIR")]
    out_dir: std::path::PathBuf,
    /// Region id: the default project's name.
    #[arg(long = "region", env = "OPENDEW_REGION", default_value = "local-1")]
    region: String,
    /// Another host name or address the gateway's certificate is valid for
    /// besides localhost and 127.0.0.1 (repeat the flag).
    #[arg(long = "tls-host")]
    tls_hosts: Vec<String>,
    /// Also copy each service's files (and only those) into
    /// `<DIR>/kms-service`, `<DIR>/csms-service` and `<DIR>/gateway`, for
    /// containers that each mount one of them.
    #[arg(long = "service-dirs", env = "OPENDEW_BOOTSTRAP_SERVICE_DIRS")]
    service_dirs: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    common::telemetry::init(&cli.log);
    match cli.command {
        Command::Dev(config) => {
            let shutdown = common::shutdown_on_signal();
            common::metrics::start(&cli.metrics, shutdown.clone()).await?;
            let stack = opendew::start(config, shutdown).await?;
            print_banner(&stack)?;
            stack.wait().await
        }
        Command::Admin(args) => opendew::admin::run(args).await,
        Command::Bootstrap(args) => {
            let files = opendew::bootstrap(&args.out_dir, &args.region, &args.tls_hosts)?;
            if let Some(service_dirs) = &args.service_dirs {
                for file in opendew::share_with_services(&args.out_dir, service_dirs)? {
                    println!("created {}", file.display());
                }
            }
            print_bootstrap(&files)
        }
    }
}

/// Says what was created and who the default account is. The SK stays in
/// the credentials file: this output ends up in container logs.
fn print_bootstrap(files: &opendew::Bootstrapped) -> anyhow::Result<()> {
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files.credentials_file)?)?;
    let c = &file["credentials"][0];
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for path in &files.created {
        writeln!(out, "created {}", path.display())?;
    }
    if files.created.is_empty() {
        writeln!(out, "nothing to create: every file already exists (none was replaced)")?;
    }
    writeln!(
        out,
        "default account: access key {ak}, project {project} ({name}), domain {domain}, user {user}\n\
         its secret key and password are in {file} (mode 0600)",
        ak = s("access_key"),
        project = s("project_id"),
        name = s("project_name"),
        domain = s("domain_name"),
        user = s("user_name"),
        file = files.credentials_file.display(),
    )?;
    writeln!(out, "clients trust the CA certificate {}", files.pki.ca_cert.display())?;
    Ok(())
}

/// Tells the developer how to call the stack. This prints the dev SK on
/// purpose: it is the point of dev mode. It goes to stdout, never the log.
fn print_banner(stack: &opendew::DevStack) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&stack.credentials_file)?;
    let file: serde_json::Value = serde_json::from_str(&text)?;
    let c = &file["credentials"][0];
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    let endpoint = stack.endpoint();
    // With --tls, say which file to trust and how each client is told.
    let (curl_ca, trust) = match &stack.tls {
        Some(tls) => {
            let ca = tls.ca_cert.display().to_string();
            (
                format!(" --cacert {ca}"),
                format!(
                    "\nHTTPS: clients trust the development CA {ca}\n  curl --cacert {ca} …\n  \
                     SDK: config = HttpConfig.get_default_config(); config.ssl_ca_cert = \"{ca}\"\n  \
                     (or config.ignore_ssl_verification = True), then .with_http_config(config)\n"
                ),
            )
        }
        None => (String::new(), String::new()),
    };
    // A closed stdout (a supervisor that stopped reading) must not take the
    // stack down, so write errors are ignored.
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout().lock(),
        r#"
opendew dev stack is up (data in {dir})

  endpoint      {endpoint}
  kms-service   grpc://{kms}
  csms-service  grpc://{csms}
  access key    {ak}
  secret key    {sk}
  project id    {project}  (name {project_name})
  domain        {domain_name} ({domain})
  user          {user} / password {password}
  accounts      opendew admin --data-dir {dir} user list   (domains, projects, users, access keys){hint}
{trust}
grpcurl (services take only callers with a certificate from the dev CA):
  grpcurl -cacert {ca} -cert {op_cert} -key {op_key} {kms} list

curl (token):
  TOKEN=$(curl{curl_ca} -si {endpoint}/v3/auth/tokens -H 'Content-Type: application/json' \
    -d '{{"auth":{{"identity":{{"methods":["password"],"password":{{"user":{{"name":"{user}","password":"{password}","domain":{{"name":"{domain_name}"}}}}}}}},"scope":{{"project":{{"id":"{project}"}}}}}}}}' \
    | awk 'tolower($1)=="x-subject-token:"{{print $2}}' | tr -d '\r')
  curl{curl_ca} -s {endpoint}/v1.0/{project}/kms/create-key -H "X-Auth-Token: $TOKEN" \
    -H 'Content-Type: application/json' -d '{{"key_alias":"my-first-key"}}'

Python SDK (pip install huaweicloudsdkkms huaweicloudsdkcsms):
  from huaweicloudsdkcore.auth.credentials import BasicCredentials
  from huaweicloudsdkkms.v2 import KmsClient, CreateKeyRequest, CreateKeyRequestBody
  client = KmsClient.new_builder() \
      .with_credentials(BasicCredentials("{ak}", "{sk}", "{project}")) \
      .with_endpoint("{endpoint}").build()
  print(client.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="my-key"))))
"#,
        dir = stack.credentials_file.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        kms = stack.kms,
        ca = stack.pki.ca_cert.display(),
        op_cert = stack.pki.operator.cert.display(),
        op_key = stack.pki.operator.key.display(),
        csms = stack.csms,
        ak = s("access_key"),
        // Shown on the first start only; afterwards the banner says where
        // the default account's file is.
        sk = if stack.first_start { s("secret_key") } else { "$OPENDEW_SK".to_owned() },
        project = s("project_id"),
        project_name = s("project_name"),
        domain = s("domain_id"),
        domain_name = s("domain_name"),
        user = s("user_name"),
        password = if stack.first_start { s("password") } else { "$OPENDEW_PASSWORD".to_owned() },
        hint = if stack.first_start {
            String::new()
        } else {
            let file = stack.credentials_file.display();
            format!(
                "\n  (the SK and password were shown on the first start; they are in {file}:\n   \
                 OPENDEW_SK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"credentials\"][0][\"secret_key\"])' {file})\n   \
                 OPENDEW_PASSWORD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"credentials\"][0][\"password\"])' {file}))\n"
            )
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every flag has a unique name across the flattened settings.
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
