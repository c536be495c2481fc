//! `opendew admin`: domains, projects, users and access keys in the
//! identity store (every gateway replica sees a change within its
//! `--identity-refresh-seconds`), and the database instances that database
//! secrets' rotations act on, in csms-service's store.
//!
//! Secrets never travel on the command line (other users can read it from
//! the process table): passwords come from a file or standard input, or
//! are generated; a new SK is printed once and stored only sealed.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::{Args, Subcommand};
use common::db::DatabaseUrl;
use identity::{IdentityStore, Kind, Records, admin, credentials::SecretString, seal::SecretSealer};

/// Where the identity store is.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// A dev data directory: its `iam.db` and `identity.key` are used
    /// unless the two settings below are given.
    #[arg(long = "data-dir", env = "OPENDEW_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The identity store, as the gateway's --iam-database-url.
    #[arg(long = "iam-database-url", env = "OPENDEW_IAM_DATABASE_URL")]
    iam_database_url: Option<DatabaseUrl>,
    /// File whose first line is the identity database's password.
    #[arg(long = "iam-database-password-file", env = "OPENDEW_IAM_DATABASE_PASSWORD_FILE")]
    iam_database_password_file: Option<PathBuf>,
    /// The key that seals SKs, as the gateway's --identity-key-file.
    #[arg(long = "identity-key-file", env = "OPENDEW_IDENTITY_KEY_FILE")]
    identity_key_file: Option<PathBuf>,
    /// csms-service's store, as its --csms-database-url (db-instance).
    #[arg(long = "csms-database-url", env = "OPENDEW_CSMS_DATABASE_URL")]
    csms_database_url: Option<DatabaseUrl>,
    /// File whose first line is csms-service's database password.
    #[arg(long = "csms-database-password-file", env = "OPENDEW_CSMS_DATABASE_PASSWORD_FILE")]
    csms_database_password_file: Option<PathBuf>,
    /// The key that seals instances' administrator URLs (made, mode 0600,
    /// if missing); with --data-dir, its `db-instance.key`.
    #[arg(long = "db-instance-key-file", env = "OPENDEW_DB_INSTANCE_KEY_FILE")]
    db_instance_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Accounts.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Projects of a domain.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Users of a domain.
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys (AK/SK) of a user.
    #[command(subcommand, name = "access-key")]
    AccessKey(AccessKeyCommand),
    /// Database instances whose passwords database secrets rotate.
    #[command(subcommand, name = "db-instance")]
    DbInstance(DbInstanceCommand),
}

#[derive(Debug, Subcommand)]
enum DbInstanceCommand {
    /// Registers an instance: the administrator URL is stored only sealed.
    Add {
        /// The project whose secrets may name it.
        #[arg(long)]
        project: String,
        /// What the secrets' `rotation_config.InstanceId` names.
        #[arg(long)]
        id: String,
        /// postgresql, or mysql (MySQL, MariaDB, GaussDB-FG).
        #[arg(long)]
        engine: String,
        /// The administrator URL, with TLS settings (`sslmode`, a CA file).
        #[arg(long)]
        url: String,
        /// File (or - for standard input) whose first line is the
        /// administrator's password, when the URL has none.
        #[arg(long = "password-file")]
        password_file: Option<PathBuf>,
    },
    /// Lists instances (their URLs without credentials).
    List {
        /// Only this project's.
        #[arg(long)]
        project: Option<String>,
    },
    /// Removes an instance.
    Remove {
        /// Its project.
        #[arg(long)]
        project: String,
        /// Its id.
        #[arg(long)]
        id: String,
    },
}

/// What can be done to an existing record.
#[derive(Debug, Subcommand)]
enum Change {
    /// Let it authenticate again.
    Enable {
        /// Id (a domain also by name, an access key by AK).
        id: String,
    },
    /// Stop it authenticating (tokens and keys of a disabled user or
    /// project stop working too).
    Disable {
        /// Id (a domain also by name, an access key by AK).
        id: String,
    },
    /// Delete it and what it owns.
    Delete {
        /// Id (a domain also by name, an access key by AK).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    /// Create a domain.
    Create {
        /// Its name (what users log in with).
        name: String,
    },
    /// List domains.
    List,
    #[command(flatten)]
    Change(Change),
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    /// Create a project.
    Create {
        /// Owning domain (id or name).
        #[arg(long)]
        domain: String,
        /// Its name, usually a region id such as local-1.
        name: String,
    },
    /// List projects.
    List {
        /// Only this domain's (id or name).
        #[arg(long)]
        domain: Option<String>,
    },
    #[command(flatten)]
    Change(Change),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password comes from --password-file (`-` for
    /// standard input) or is generated and printed once.
    Create {
        /// Owning domain (id or name).
        #[arg(long)]
        domain: String,
        /// Its name.
        name: String,
        /// File holding the password on its first line, or `-`.
        #[arg(long = "password-file")]
        password_file: Option<PathBuf>,
    },
    /// List users.
    List {
        /// Only this domain's (id or name).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Replace a user's password.
    SetPassword {
        /// User id.
        id: String,
        /// File holding the password on its first line, or `-`.
        #[arg(long = "password-file")]
        password_file: Option<PathBuf>,
    },
    #[command(flatten)]
    Change(Change),
}

#[derive(Debug, Subcommand)]
enum AccessKeyCommand {
    /// Create an access key; its SK is printed once.
    Create {
        /// Owning user id.
        #[arg(long)]
        user: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List access keys (never their SKs).
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    #[command(flatten)]
    Change(Change),
}

impl AdminArgs {
    fn url(&self) -> anyhow::Result<DatabaseUrl> {
        let url = match (&self.iam_database_url, &self.data_dir) {
            (Some(url), _) => url.clone(),
            (None, Some(dir)) => DatabaseUrl::sqlite_file(&dir.join("iam.db")),
            (None, None) => anyhow::bail!("set --iam-database-url (OPENDEW_IAM_DATABASE_URL) or --data-dir"),
        };
        url.with_password_file(self.iam_database_password_file.as_deref(), "--iam-database-password-file")
    }
}

/// Runs one admin command, printing its result to standard output.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    if let AdminCommand::DbInstance(command) = &args.command {
        return db_instance(&args, command).await;
    }
    let store = identity::open_store(&args.url()?, 1).await.context("opening the identity store")?;
    let out = &mut std::io::stdout();
    use std::io::Write;
    match args.command {
        AdminCommand::Domain(DomainCommand::Create { name }) => {
            let d = admin::create_domain(&*store, &name).await?;
            writeln!(out, "created domain {} ({})", d.id, d.name)?;
        }
        AdminCommand::Domain(DomainCommand::List) => {
            writeln!(out, "ID\tNAME\tENABLED")?;
            for d in store.load().await?.domains {
                writeln!(out, "{}\t{}\t{}", d.id, d.name, d.enabled)?;
            }
        }
        AdminCommand::Domain(DomainCommand::Change(change)) => {
            let records = store.load().await?;
            let id = domain_id(&records, change.id())?;
            apply(&store, Kind::Domain, &id, change).await?;
        }
        AdminCommand::Project(ProjectCommand::Create { domain, name }) => {
            let domain = domain_id(&store.load().await?, &domain)?;
            let p = admin::create_project(&*store, &domain, &name).await?;
            writeln!(out, "created project {} ({}) in domain {}", p.id, p.name, p.domain_id)?;
        }
        AdminCommand::Project(ProjectCommand::List { domain }) => {
            let records = store.load().await?;
            let rows = records.projects.iter().map(|p| [p.id.as_str(), &p.domain_id, &p.name, bool_text(p.enabled)]);
            print_members(out, &records, domain, rows)?;
        }
        AdminCommand::Project(ProjectCommand::Change(change)) => {
            let id = change.id().to_owned();
            apply(&store, Kind::Project, &id, change).await?;
        }
        AdminCommand::User(UserCommand::Create { domain, name, password_file }) => {
            let domain = domain_id(&store.load().await?, &domain)?;
            let (password, generated) = password(password_file)?;
            let u = admin::create_user(&*store, &domain, &name, &password).await?;
            writeln!(out, "created user {} ({}) in domain {}", u.id, u.name, u.domain_id)?;
            if generated {
                // Printed once, on purpose: it is stored only as a hash.
                writeln!(out, "password {}", password.expose())?;
            }
        }
        AdminCommand::User(UserCommand::List { domain }) => {
            let records = store.load().await?;
            let rows = records.users.iter().map(|u| [u.id.as_str(), &u.domain_id, &u.name, bool_text(u.enabled)]);
            print_members(out, &records, domain, rows)?;
        }
        AdminCommand::User(UserCommand::SetPassword { id, password_file }) => {
            let (password, generated) = password(password_file)?;
            admin::set_password(&*store, &id, &password).await?;
            writeln!(out, "password of user {id} replaced")?;
            if generated {
                writeln!(out, "password {}", password.expose())?;
            }
        }
        AdminCommand::User(UserCommand::Change(change)) => {
            let id = change.id().to_owned();
            apply(&store, Kind::User, &id, change).await?;
        }
        AdminCommand::AccessKey(AccessKeyCommand::Create { user, description }) => {
            let sealer = args_sealer(&args.identity_key_file, &args.data_dir)?;
            let (key, secret) = admin::create_access_key(&*store, &sealer, &user, &description).await?;
            writeln!(out, "created access key for user {}", key.user_id)?;
            writeln!(out, "access key {}", key.access_key)?;
            // Printed once, on purpose: the store keeps it only sealed.
            writeln!(out, "secret key {}", secret.expose())?;
        }
        AdminCommand::AccessKey(AccessKeyCommand::List { user }) => {
            writeln!(out, "ACCESS_KEY\tUSER\tENABLED\tDESCRIPTION")?;
            for k in store.load().await?.access_keys.iter().filter(|k| user.as_ref().is_none_or(|u| *u == k.user_id)) {
                writeln!(out, "{}\t{}\t{}\t{}", k.access_key, k.user_id, k.enabled, k.description)?;
            }
        }
        AdminCommand::AccessKey(AccessKeyCommand::Change(change)) => {
            let id = change.id().to_owned();
            apply(&store, Kind::AccessKey, &id, change).await?;
        }
        AdminCommand::DbInstance(_) => unreachable!("handled before the identity store opens"),
    }
    Ok(())
}

/// The sealer, read only by the commands that need it (so listing works
/// without the key).
fn args_sealer(key_file: &Option<PathBuf>, data_dir: &Option<PathBuf>) -> anyhow::Result<SecretSealer> {
    match (key_file, data_dir) {
        (Some(file), _) => SecretSealer::from_file(file),
        (None, Some(dir)) => SecretSealer::from_file(&dir.join("identity.key")),
        (None, None) => anyhow::bail!("set --identity-key-file (OPENDEW_IDENTITY_KEY_FILE) or --data-dir"),
    }
}

impl Change {
    fn id(&self) -> &str {
        match self {
            Change::Enable { id } | Change::Disable { id } | Change::Delete { id } => id,
        }
    }
}

async fn apply(store: &Arc<dyn IdentityStore>, kind: Kind, id: &str, change: Change) -> anyhow::Result<()> {
    let verb = match change {
        Change::Enable { .. } => {
            store.set_enabled(kind, id, true).await?;
            "enabled"
        }
        Change::Disable { .. } => {
            store.set_enabled(kind, id, false).await?;
            "disabled"
        }
        Change::Delete { .. } => {
            store.delete(kind, id).await?;
            "deleted"
        }
    };
    use std::io::Write;
    writeln!(std::io::stdout(), "{verb} {} {id}", kind.as_str())?;
    Ok(())
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Prints projects or users (`[id, domain id, name, enabled]`), only those
/// of `domain` (a name or id) when one is given.
fn print_members<'a>(
    out: &mut impl std::io::Write, records: &Records, domain: Option<String>, rows: impl Iterator<Item = [&'a str; 4]>,
) -> anyhow::Result<()> {
    let only = domain.map(|d| domain_id(records, &d)).transpose()?;
    writeln!(out, "ID\tDOMAIN\tNAME\tENABLED")?;
    for row in rows.filter(|row| only.as_deref().is_none_or(|d| d == row[1])) {
        writeln!(out, "{}", row.join("\t"))?;
    }
    Ok(())
}

fn domain_id(records: &Records, id_or_name: &str) -> anyhow::Result<String> {
    records
        .domains
        .iter()
        .find(|d| d.id == id_or_name || d.name == id_or_name)
        .map(|d| d.id.clone())
        .ok_or_else(|| anyhow::anyhow!("no domain {id_or_name}"))
}

/// The password from a file (`-`: standard input), or a generated one.
fn password(file: Option<PathBuf>) -> anyhow::Result<(SecretString, bool)> {
    let text = match file {
        None => return Ok((admin::random_password(), true)),
        Some(path) if path.as_os_str() == "-" => {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line)?;
            line
        }
        Some(path) => zeroize::Zeroizing::new(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read --password-file {}", path.display()))?,
        ),
    };
    let first = text.lines().next().unwrap_or("").to_owned();
    Ok((SecretString::new(first), false))
}

/// `opendew admin db-instance …`, on csms-service's store.
async fn db_instance(args: &AdminArgs, command: &DbInstanceCommand) -> anyhow::Result<()> {
    use std::io::Write;
    let url = match (&args.csms_database_url, &args.data_dir) {
        (Some(url), _) => url.clone(),
        (None, Some(dir)) => DatabaseUrl::sqlite_file(&dir.join("csms.db")),
        (None, None) => anyhow::bail!("set --csms-database-url (OPENDEW_CSMS_DATABASE_URL) or --data-dir"),
    };
    let url = url.with_password_file(args.csms_database_password_file.as_deref(), "--csms-database-password-file")?;
    let store = csms_service::open_store(&url, 1).await.context("opening csms-service's store")?;
    let out = &mut std::io::stdout();
    match command {
        DbInstanceCommand::Add { project, id, engine, url, password_file } => {
            let (project, id, engine, url) = (project.clone(), id.clone(), engine.clone(), url.clone());
            let key_file = match (&args.db_instance_key_file, &args.data_dir) {
                (Some(file), _) => file.clone(),
                (None, Some(dir)) => dir.join("db-instance.key"),
                (None, None) => {
                    anyhow::bail!("set --db-instance-key-file (OPENDEW_DB_INSTANCE_KEY_FILE) or --data-dir")
                }
            };
            if csms_service::instances::InstanceKey::ensure_file(&key_file)? {
                writeln!(out, "created the instance key {} (csms-service reads it)", key_file.display())?;
            }
            let key = csms_service::instances::InstanceKey::from_file(&key_file)?;
            let password = match password_file {
                Some(file) => Some(csms_password(file.clone())?),
                None => None,
            };
            let new = csms_service::instances::NewInstance {
                project_id: project,
                id,
                engine,
                url: SecretString::new(url),
                password,
            };
            let record = csms_service::instances::prepare(&key, new, common::now_ms())?;
            anyhow::ensure!(
                store.add_instance(&record).await?,
                "project {} already has an instance {}",
                record.project_id,
                record.id
            );
            writeln!(
                out,
                "registered instance {} ({}, {}) for project {}",
                record.id,
                record.engine.as_str(),
                record.display_url,
                record.project_id
            )?;
        }
        DbInstanceCommand::List { project } => {
            writeln!(out, "PROJECT\tID\tENGINE\tURL")?;
            for i in store.list_instances(project.as_deref()).await? {
                writeln!(out, "{}\t{}\t{}\t{}", i.project_id, i.id, i.engine.as_str(), i.display_url)?;
            }
        }
        DbInstanceCommand::Remove { project, id } => {
            anyhow::ensure!(store.remove_instance(project, id).await?, "project {project} has no instance {id}");
            writeln!(out, "removed instance {id} of project {project}")?;
        }
    }
    Ok(())
}

/// The first line of a password file (or standard input).
fn csms_password(file: PathBuf) -> anyhow::Result<SecretString> {
    let (password, _) = password(Some(file))?;
    anyhow::ensure!(!password.expose().is_empty(), "the administrator's password file is empty");
    Ok(password)
}
