//! Rotation of database secrets (csms-api.md §3.2) on the database
//! (issue #33): rotate-secret, the task list, and the scheduler that
//! rotates secrets whose `next_rotation_time` has passed.
//!
//! `rotation_config.InstanceId` names a database instance the operator
//! registered for the project (`crate::instances`). A rotation cannot lose
//! a password:
//!
//! 1. the new credentials are staged as a version holding only
//!    `SYSPENDING` (never `latest`; the stage is the rotation's lock, its
//!    update time the lease);
//! 2. the server gets the new password and is checked to hold it;
//! 3. `SYSCURRENT` moves onto the staged version (its predecessor becomes
//!    `SYSPREVIOUS`), with the task (`SUCCESS`) and `SECRET_ROTATED`, in one
//!    transaction.
//!
//! On a failure the staged version goes, the server gets the old password
//! back, and the task (`FAILED`, with the reason) and
//! `SECRET_ROTATED_FAILED` are recorded. A process that dies between the
//! steps leaves `SYSPENDING`; the next attempt after the lease runs out
//! sets that password again (idempotent) and finishes. *SingleUser* resets
//! the one account; *MultiUser* resets the `SYSPREVIOUS` account and swaps
//! the two, making `<username>_clone` with the first account's privileges
//! on the first rotation.

use common::identity::CallerIdentity;
use crypto::SecretString;
use futures::StreamExt;

use crate::{
    databases::{Server, ServerError},
    domain::{
        self, Page, Rejection, SYSCURRENT, SYSPENDING, SYSPREVIOUS, SecretRecord, SecretState, VersionRecord,
        events::{EventType, Notice, TaskFailure, TaskFilter, TaskRecord, TaskStatus},
    },
    error::CsmsError,
    password::{PasswordPolicy, generate},
    secrets::{invalid, page_size, scaled_period_ms, writable},
    service::CsmsService,
    store::{Effects, WriteError},
};

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    /// The task recording it.
    pub task: TaskRecord,
    /// The new version, when it succeeded.
    pub version: Option<VersionRecord>,
}

/// A rotation that failed: a reason and a message for the task, never
/// naming a value, and the staged version to drop (`None` when there is
/// none, or when the server may hold its password: then it stays for the
/// next attempt to finish).
#[derive(Debug)]
struct Fault {
    reason: TaskFailure,
    message: String,
    abandon: Option<i32>,
}

impl Fault {
    fn invalid(message: impl Into<String>) -> Self {
        Self { reason: TaskFailure::InvalidParameter, message: message.into(), abandon: None }
    }

    fn internal(message: impl Into<String>) -> Self {
        Self { reason: TaskFailure::Internal, message: message.into(), abandon: None }
    }

    fn key_unusable(message: &str) -> Self {
        Self { reason: TaskFailure::KmsKeyUnusable, message: message.to_owned(), abandon: None }
    }

    fn server(e: &ServerError) -> Self {
        match e {
            ServerError::UnknownAccount(_) | ServerError::Invalid(_) => Self::invalid(e.to_string()),
            _ => Self::internal(e.to_string()),
        }
    }
}

/// Why an attempt did not rotate.
#[derive(Debug)]
enum Attempt {
    /// Another attempt holds the secret's SYSPENDING lease: nothing done,
    /// nothing recorded.
    Busy,
    /// Recorded as a failed task.
    Failed(Fault),
}

impl From<Fault> for Attempt {
    fn from(fault: Fault) -> Self {
        Self::Failed(fault)
    }
}

/// The credentials a rotation staged, opened.
struct Staged {
    /// The pending version's number.
    number: i32,
    /// The account to set.
    username: String,
    /// Its new password.
    password: SecretString,
    /// Its password before (to restore); `None` for a new account.
    old: Option<SecretString>,
    /// MultiUser's first rotation: the account the new one is cloned from.
    clone_from: Option<String>,
}

/// How long a scheduled rotation holds its claim on a secret before
/// another replica may try (a rotation takes milliseconds; a crashed
/// replica's claim runs out after this).
const CLAIM_MS: i64 = 5 * 60_000;

/// Failed rotations in a row after which automatic rotation is switched
/// off until the owner switches it on again.
pub const MAX_FAILURES_IN_A_ROW: u32 = 3;

/// The most secrets of one project a scan takes, so that one project's
/// backlog cannot hold back another's.
const DUE_PER_PROJECT: u32 = 20;

/// The most secrets one scan takes.
const DUE_PER_SCAN: u32 = 100;

/// Scans per scheduler run, at most (see [`CsmsService::rotate_due`]).
const SCANS_PER_RUN: usize = 10;

/// Generated passwords: 32 characters of every class; no quotes or
/// backslash, which database drivers and connection strings mishandle.
fn policy() -> PasswordPolicy {
    PasswordPolicy {
        length: Some(32),
        exclude_characters: "\"'\\`".to_owned(),
        require_each_included_type: true,
        ..PasswordPolicy::default()
    }
}

/// Tests stop the process here (`OPENDEW_CSMS_CRASH_AT=<step>`), to prove
/// that the next attempt finishes what a crash left; in debug builds only
/// (not a feature: the compose test's `cargo build` of the same binary
/// would build it without one while the crash test runs).
#[cfg(debug_assertions)]
fn crash_point(step: &str) {
    if std::env::var("OPENDEW_CSMS_CRASH_AT").is_ok_and(|at| at == step) {
        eprintln!("crash point {step}: aborting");
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
fn crash_point(_: &str) {}

impl CsmsService {
    /// rotate-secret: rotates a database secret now.
    pub async fn rotate_secret(&self, caller: &CallerIdentity, name: &str) -> Result<Rotated, CsmsError> {
        let secret = self.show_secret(caller, name).await?;
        secret.check_writable()?;
        if secret.secret_type == "COMMON" {
            return Err(invalid("COMMON secrets cannot be rotated; only RDS-FG and GaussDB-FG secrets can").into());
        }
        self.rotate(caller, secret).await
    }

    /// One attempt, recorded: on success the promotion carries the task
    /// and the events; on failure the task and SECRET_ROTATED_FAILED are
    /// recorded here (and the staged version dropped).
    async fn rotate(&self, caller: &CallerIdentity, secret: SecretRecord) -> Result<Rotated, CsmsError> {
        let sub_type = domain::secret_sub_type(&secret.rotation_config);
        let operate_type = if sub_type == Ok("MultiUser") { "MULTI_USER" } else { "SINGLE_USER" };
        let now = common::now_ms();
        let mut task = TaskRecord {
            id: uuid::Uuid::now_v7().to_string(),
            project_id: caller.project_id.clone(),
            secret_name: secret.name.clone(),
            rotation_func_urn: secret.rotation_func_urn.clone(),
            status: TaskStatus::Success,
            operate_type: operate_type.to_owned(),
            task_ms: now,
            attempts: 1,
            failure: None,
            error_msg: String::new(),
        };
        let period = scaled_period_ms(&secret.rotation_period, self.jobs.rotation_hour_ms);
        let fault = match self.attempt(caller, &secret, sub_type, &task, period).await {
            Ok(version) => {
                self.wake_deliveries();
                tracing::info!(secret_id = %secret.id, task_id = %task.id, version = version.number, "secret rotated");
                return Ok(Rotated { task, version: Some(version) });
            }
            Err(Attempt::Busy) => return Err(Rejection::RotationInProgress.into()),
            Err(Attempt::Failed(fault)) => fault,
        };
        task.status = TaskStatus::Failed;
        task.failure = Some(fault.reason);
        task.error_msg = fault.message;
        // The next scheduled attempt is a period away, as after a success;
        // a failure is visible as a task and an event. The third failure
        // in a row switches automatic rotation off (visible on the
        // secret), as Huawei's scheduler does.
        let earlier = self
            .store
            .failures_in_a_row(&caller.project_id, &secret.name, secret.create_ms, MAX_FAILURES_IN_A_ROW)
            .await?;
        let give_up = earlier + 1 >= MAX_FAILURES_IN_A_ROW;
        let schedule = Box::new(move |s: &mut SecretRecord| {
            if s.auto_rotation && give_up {
                s.auto_rotation = false;
                s.next_rotation_ms = None;
            } else if s.auto_rotation {
                s.next_rotation_ms = Some(now + period);
            }
            Ok(())
        });
        let effects = Effects { notices: vec![Notice::of(EventType::RotatedFailed)], task: Some(task.clone()) };
        self.store.record_rotation(&caller.project_id, &secret.id, schedule, &effects, fault.abandon).await?;
        tracing::warn!(secret_id = %secret.id, task_id = %task.id, reason = fault.reason.as_str(), "secret rotation failed");
        self.wake_deliveries();
        Ok(Rotated { task, version: None })
    }

    /// Stage, set on the server, promote (see the module's steps).
    async fn attempt(
        &self, caller: &CallerIdentity, secret: &SecretRecord, sub_type: Result<&str, &str>, task: &TaskRecord,
        period: i64,
    ) -> Result<VersionRecord, Attempt> {
        let sub_type = sub_type.map_err(Fault::invalid)?;
        let instance_id = domain::rotation_instance(&secret.rotation_config).map_err(Fault::invalid)?;
        let granted = self
            .agencies_granted(caller, &secret.secret_type)
            .await
            .map_err(|_| Fault::internal("the project's agencies could not be read"))?;
        if !granted {
            return Err(Fault::invalid(format!(
                "the project has not granted CSMS the agencies that {} rotation needs (create_agency)",
                secret.secret_type
            ))
            .into());
        }
        let server = self.server(&caller.project_id, &instance_id).await?;
        let staged = self.stage(caller, secret, sub_type, task.task_ms).await?;
        crash_point("staged");
        {
            // The slot bounds the connections to the server, not the
            // work on opendew's side.
            let _slot = self.instance_slots.acquire(&caller.project_id, &instance_id).await;
            let applied = match &staged.clone_from {
                Some(from) => server.clone_account(from, &staged.username, &staged.password).await,
                None => server.set_password(&staged.username, &staged.password).await,
            };
            if let Err(e) = applied {
                return Err(undo(&server, &staged, &e).await.into());
            }
        }
        crash_point("applied");
        let now = task.task_ms;
        let rotated = Box::new(move |s: &mut SecretRecord| {
            s.check_writable()?;
            s.rotation_ms = Some(now);
            s.next_rotation_ms = s.auto_rotation.then_some(now + period);
            Ok(())
        });
        let notices =
            vec![Notice::version(EventType::VersionCreated, staged.number, None), Notice::of(EventType::Rotated)];
        let effects = Effects { notices, task: Some(task.clone()) };
        // The server holds the staged password now: if this fails, the
        // staged version stays for the next attempt to finish.
        let promoted =
            self.store.promote_pending(&caller.project_id, &secret.id, staged.number, rotated, &effects).await;
        promoted.map_err(|e| match e {
            WriteError::Rejected(r) => Fault::invalid(r.to_string()).into(),
            WriteError::Store(_) => Fault::internal("the new version could not be made current").into(),
        })
    }

    /// The registered instance `id` of the project, opened.
    async fn server(&self, project_id: &str, id: &str) -> Result<Server, Fault> {
        let instance = self
            .store
            .get_instance(project_id, id)
            .await
            .map_err(|_| Fault::internal("the database instances could not be read"))?
            .ok_or_else(|| Fault::invalid(format!("no database instance {id:?} is registered for this project")))?;
        let key = self.instance_key.as_ref().ok_or_else(|| {
            Fault::internal("csms-service has no --db-instance-key-file to open database instances with")
        })?;
        let admin = key.open(&instance).map_err(|_| {
            Fault::internal("the instance's administrator URL does not open under csms-service's instance key")
        })?;
        Ok(Server { engine: instance.engine, admin })
    }

    /// Stages the new credentials as a SYSPENDING version, or takes over
    /// the one an attempt that died left once its lease ran out.
    async fn stage(
        &self, caller: &CallerIdentity, secret: &SecretRecord, sub_type: &str, now: i64,
    ) -> Result<Staged, Attempt> {
        let lease = i64::try_from(self.jobs.rotation_lease.as_millis()).unwrap_or(i64::MAX);
        let read_fault = |_| Fault::internal("the secret's versions could not be read");
        let current = self.accounts(caller, secret, SYSCURRENT).await?;
        let previous = self.accounts(caller, secret, SYSPREVIOUS).await?;
        if let Some(stage) = self.store.get_stage(&secret.id, SYSPENDING).await.map_err(read_fault)? {
            if stage.update_ms > now - lease
                || !self
                    .store
                    .renew_pending(&secret.id, stage.version, stage.update_ms, now)
                    .await
                    .map_err(read_fault)?
            {
                return Err(Attempt::Busy);
            }
            let version =
                self.store.get_version(&secret.id, stage.version).await.map_err(read_fault)?.ok_or(Attempt::Busy)?;
            let (username, password, _) = self.open_account(caller, &version).await?;
            let same = |a: &Option<(String, SecretString, VersionRecord)>| {
                a.as_ref().filter(|(u, _, _)| *u == username).map(|(_, p, _)| SecretString::new(p.expose().to_owned()))
            };
            let old = same(&current).or_else(|| same(&previous));
            let clone_from = match (&old, sub_type, &current) {
                (None, "MultiUser", Some((from, _, _))) => Some(from.clone()),
                _ => None,
            };
            tracing::info!(secret_id = %secret.id, version = stage.version, "finishing a rotation an earlier attempt left");
            return Ok(Staged { number: stage.version, username, password, old, clone_from });
        }
        let Some((current_user, current_password, current_version)) = current else {
            return Err(Fault::invalid("rotation needs a SYSCURRENT version holding the account to rotate").into());
        };
        let (source, username, old, clone_from) = match (sub_type, previous) {
            ("MultiUser", Some((user, password, version))) if user != current_user => {
                (version, user, Some(password), None)
            }
            ("MultiUser", _) => (current_version, format!("{current_user}_clone"), None, Some(current_user)),
            _ => (current_version, current_user, Some(current_password), None),
        };
        let password =
            SecretString::new(generate(&policy()).map_err(|_| Fault::invalid("password generation"))?.to_string());
        let opened = self.open_version(caller, &source).await.map_err(open_fault)?;
        let value = if clone_from.is_some() {
            domain::with_new_account(opened.expose(), &username, password.expose())
        } else {
            domain::with_new_password(opened.expose(), password.expose())
        }
        .map_err(Fault::invalid)?;
        let number = self.stage_version(caller, secret, source.kind, &value, now).await?;
        Ok(Staged { number, username, password, old, clone_from })
    }

    /// The account in the version at `stage`, opened, with the version.
    async fn accounts(
        &self, caller: &CallerIdentity, secret: &SecretRecord, stage: &str,
    ) -> Result<Option<(String, SecretString, VersionRecord)>, Fault> {
        let version = self
            .store
            .get_version_by_stage(&secret.id, stage)
            .await
            .map_err(|_| Fault::internal("the secret's versions could not be read"))?;
        match version {
            Some(version) => {
                let (user, password, version) = self.open_account(caller, &version).await?;
                Ok(Some((user, password, version)))
            }
            None => Ok(None),
        }
    }

    async fn open_account(
        &self, caller: &CallerIdentity, version: &VersionRecord,
    ) -> Result<(String, SecretString, VersionRecord), Fault> {
        let value = self.open_version(caller, version).await.map_err(open_fault)?;
        let (user, password) = domain::credentials(value.expose()).map_err(Fault::invalid)?;
        Ok((user, SecretString::new(password.to_string()), version.clone()))
    }

    /// Seals `value` as the next version, holding only SYSPENDING.
    async fn stage_version(
        &self, caller: &CallerIdentity, secret: &SecretRecord, kind: domain::ValueKind, value: &[u8], now: i64,
    ) -> Result<i32, Attempt> {
        let store_fault = |e: CsmsError| match e {
            CsmsError::Rejected(Rejection::RotationInProgress) => Attempt::Busy,
            CsmsError::KmsKeyUnusable(_) => Fault::key_unusable("the secret's KMS key cannot be used").into(),
            CsmsError::Rejected(r) => Fault::invalid(r.to_string()).into(),
            _ => Fault::internal("the new version could not be stored").into(),
        };
        let (secret, number) = self
            .store
            .reserve_version(&caller.project_id, &secret.name, writable())
            .await
            .map_err(|e| store_fault(e.into()))?;
        let mut version = self
            .seal_version(caller, &secret.id, number, &secret.kms_key_id, kind, value, now)
            .await
            .map_err(store_fault)?;
        version.stages = vec![SYSPENDING.to_owned()];
        let check = Box::new(|s: &mut SecretRecord| s.check_writable());
        self.store
            .insert_version(&caller.project_id, &version, check, &Effects::default())
            .await
            .map_err(|e| store_fault(e.into()))?;
        Ok(number)
    }

    /// list-secret-task: tasks by time, with the documented filters.
    pub async fn list_tasks(
        &self, caller: &CallerIdentity, filter: TaskFilter, limit: Option<u32>, marker: Option<String>,
    ) -> Result<(u64, Page<TaskRecord>), CsmsError> {
        if filter.task_id.is_some()
            && (filter.secret_name.is_some() || filter.status.is_some() || limit.is_some() || marker.is_some())
        {
            return Err(invalid("task_id cannot be combined with other query parameters").into());
        }
        let limit = page_size(limit)?;
        for id in [&filter.task_id, &marker].into_iter().flatten() {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(invalid("task_id and marker must be task ids").into());
            }
        }
        if let Some(name) = &filter.secret_name {
            domain::validate_name(name)?;
        }
        let (total, tasks) = self.store.list_tasks(&caller.project_id, &filter, marker.as_deref(), limit + 1).await?;
        Ok((total, Page::cut(tasks, limit)))
    }

    /// Rotates the database secrets whose automatic rotation is due at
    /// `now_ms` (the database's clock). Each is first claimed on its locked
    /// row (its next rotation moved a few minutes on), so of several
    /// replicas exactly one rotates it; a replica that dies mid-rotation
    /// leaves a claim that runs out and is retried.
    pub async fn rotate_due(&self, now_ms: i64) -> Result<usize, CsmsError> {
        // Several at once (each instance's slots bound how many reach one
        // server); a claim is taken before each. A backlog drains at the
        // servers' pace: the scan repeats while it finds due secrets (each
        // rotated or failed one moves its next time past `now_ms`), up to
        // SCANS_PER_RUN times per run.
        let parallel = (self.jobs.rotations_per_instance as usize).saturating_mul(4);
        let mut rotated = 0;
        for _ in 0..SCANS_PER_RUN {
            let due = self.store.due_rotations(now_ms, DUE_PER_SCAN, DUE_PER_PROJECT).await?;
            if due.is_empty() {
                break;
            }
            let rotations =
                futures::stream::iter(due).map(|(project_id, name)| self.rotate_claimed(now_ms, project_id, name));
            let outcomes: Vec<Result<bool, CsmsError>> = rotations.buffer_unordered(parallel).collect().await;
            for outcome in outcomes {
                rotated += usize::from(outcome?);
            }
        }
        Ok(rotated)
    }

    /// Claims one due secret and rotates it; false when it was not due any
    /// more (another replica claimed it, or it changed).
    async fn rotate_claimed(&self, now_ms: i64, project_id: String, name: String) -> Result<bool, CsmsError> {
        let claim = Box::new(move |s: &mut SecretRecord| {
            let due = s.state == SecretState::Enabled
                && s.auto_rotation
                && s.secret_type != "COMMON"
                && s.next_rotation_ms.is_some_and(|n| n <= now_ms);
            if !due {
                return Err(Rejection::InvalidRequest("rotation not due".into()));
            }
            s.next_rotation_ms = Some(now_ms + CLAIM_MS);
            Ok(())
        });
        let secret = match self.store.update_secret(&project_id, &name, claim).await {
            Ok(secret) => secret,
            Err(WriteError::Rejected(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let caller = CallerIdentity {
            domain_id: "opendew-csms".into(),
            project_id,
            user_id: "csms-rotation-scheduler".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        match self.rotate(&caller, secret).await {
            Ok(_) => Ok(true),
            // An on-demand rotation holds it; the claim retries later.
            Err(CsmsError::Rejected(Rejection::RotationInProgress)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// After the server did not take the staged password: where it may have
/// changed (part way, unanswered, not what was sent) the server gets the
/// old one back, and the staged version is dropped. If the old
/// password cannot be restored the staged version stays, so that no
/// password the server may hold is lost; the next attempt sets it.
async fn undo(server: &Server, staged: &Staged, e: &ServerError) -> Fault {
    let mut fault = Fault::server(e);
    let untouched = !e.may_have_changed();
    match (&staged.old, untouched) {
        (_, true) | (None, _) => fault.abandon = Some(staged.number),
        (Some(old), false) => match server.set_password(&staged.username, old).await {
            Ok(()) => fault.abandon = Some(staged.number),
            Err(again) => {
                fault.message = format!(
                    "{}; restoring the old password failed too ({again}): the next rotation sets the pending one",
                    fault.message
                );
            }
        },
    }
    fault
}

fn open_fault(e: CsmsError) -> Fault {
    match e {
        CsmsError::KmsKeyUnusable(_) => Fault::key_unusable("the version's KMS key cannot be used"),
        _ => Fault::internal("the current version could not be opened"),
    }
}
