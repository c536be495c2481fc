//! Rotation of database secrets (csms-api.md §3.2): rotate-secret, the task
//! list, and the scheduler that rotates secrets whose `next_rotation_time`
//! has passed.
//!
//! There is no FunctionGraph here and no database to reset a password in,
//! so a rotation is what the spec allows a server without one to do: a new
//! version whose JSON credentials carry a freshly generated `password`,
//! made SYSCURRENT (its predecessor becomes SYSPREVIOUS). *SingleUser*
//! rotates the SYSCURRENT account; *MultiUser* rotates the SYSPREVIOUS
//! account (the one not in use) and swaps the two. Each attempt is a task
//! (`SUCCESS` or `FAILED`, never a value in its message) and fires
//! `SECRET_ROTATED` or `SECRET_ROTATED_FAILED`, in the transaction that
//! records it.

use common::identity::CallerIdentity;

use crate::{
    domain::{
        self, Page, Rejection, SYSCURRENT, SYSPREVIOUS, SecretRecord, SecretState, ValueKind, VersionRecord,
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

/// A rotation that could not make a value: a reason and a message for
/// the task, never naming a value.
#[derive(Debug)]
struct Fault {
    reason: TaskFailure,
    message: String,
}

impl Fault {
    fn invalid(message: impl Into<String>) -> Self {
        Self { reason: TaskFailure::InvalidParameter, message: message.into() }
    }

    fn internal(message: &str) -> Self {
        Self { reason: TaskFailure::Internal, message: message.to_owned() }
    }

    fn key_unusable(message: &str) -> Self {
        Self { reason: TaskFailure::KmsKeyUnusable, message: message.to_owned() }
    }
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

    /// Makes the new value, then records the outcome: on success a new
    /// version with the task and the events in one transaction, on failure
    /// the task and SECRET_ROTATED_FAILED.
    async fn rotate(&self, caller: &CallerIdentity, secret: SecretRecord) -> Result<Rotated, CsmsError> {
        let sub_type = domain::secret_sub_type(&secret.rotation_config);
        let operate_type = if sub_type == Ok("MultiUser") { "MULTI_USER" } else { "SINGLE_USER" };
        let made = match sub_type {
            Ok(sub) => self.rotated_value(caller, &secret, sub).await,
            Err(why) => Err(Fault::invalid(why)),
        };
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
        let result = match made {
            Ok((kind, value)) => self.store_rotation(caller, &secret, kind, &value, &task, now, period).await,
            Err(fault) => Err(fault),
        };
        let version = match result {
            Ok(version) => Some(version),
            Err(fault) => {
                task.status = TaskStatus::Failed;
                task.failure = Some(fault.reason);
                task.error_msg = fault.message;
                // The next scheduled attempt is a period away, as after a
                // success; a failure is visible as a task and an event. The
                // third failure in a row switches automatic rotation off
                // (visible on the secret), as Huawei's scheduler does.
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
                self.store.record_rotation(&caller.project_id, &secret.id, schedule, &effects).await?;
                tracing::warn!(secret_id = %secret.id, task_id = %task.id, reason = fault.reason.as_str(), "secret rotation failed");
                None
            }
        };
        self.wake_deliveries();
        if version.is_some() {
            tracing::info!(secret_id = %secret.id, task_id = %task.id, "secret rotated");
        }
        Ok(Rotated { task, version })
    }

    /// The new value: the source version's JSON credentials with a new
    /// password (source: SYSCURRENT, or SYSPREVIOUS for MultiUser).
    async fn rotated_value(
        &self, caller: &CallerIdentity, secret: &SecretRecord, sub_type: &str,
    ) -> Result<(ValueKind, crypto::SecretBytes), Fault> {
        let stage = if sub_type == "MultiUser" { SYSPREVIOUS } else { SYSCURRENT };
        let source = self
            .store
            .get_version_by_stage(&secret.id, stage)
            .await
            .map_err(|_| Fault::internal("the current version could not be read"))?
            .ok_or_else(|| {
                Fault::invalid(format!("{sub_type} rotation needs a {stage} version holding the account to rotate"))
            })?;
        let current = self.open_version(caller, &source).await.map_err(|e| match e {
            CsmsError::KmsKeyUnusable(_) => Fault::key_unusable("the version's KMS key cannot be used"),
            _ => Fault::internal("the current version could not be opened"),
        })?;
        let password = zeroize::Zeroizing::new(generate(&policy()).map_err(|_| Fault::invalid("password generation"))?);
        let value = domain::with_new_password(current.expose(), &password).map_err(Fault::invalid)?;
        Ok((source.kind, crypto::SecretBytes::new(value)))
    }

    /// Seals the new value as the next version (SYSCURRENT) and records the
    /// task, the rotation time and the events with it.
    #[allow(clippy::too_many_arguments)]
    async fn store_rotation(
        &self, caller: &CallerIdentity, secret: &SecretRecord, kind: ValueKind, value: &crypto::SecretBytes,
        task: &TaskRecord, now: i64, period: i64,
    ) -> Result<VersionRecord, Fault> {
        let store_fault = |e: CsmsError| match e {
            CsmsError::KmsKeyUnusable(_) => Fault::key_unusable("the secret's KMS key cannot be used"),
            CsmsError::Rejected(r) => Fault::invalid(r.to_string()),
            _ => Fault::internal("the new version could not be stored"),
        };
        let (secret, number) = self
            .store
            .reserve_version(&caller.project_id, &secret.name, writable())
            .await
            .map_err(|e| store_fault(e.into()))?;
        let mut version = self
            .seal_version(caller, &secret.id, number, &secret.kms_key_id, kind, value.expose(), now)
            .await
            .map_err(store_fault)?;
        version.stages = vec![SYSCURRENT.to_owned()];
        let rotated = Box::new(move |s: &mut SecretRecord| {
            s.check_writable()?;
            s.rotation_ms = Some(now);
            s.next_rotation_ms = s.auto_rotation.then_some(now + period);
            Ok(())
        });
        let effects = Effects {
            notices: vec![Notice::version(EventType::VersionCreated, number, None), Notice::of(EventType::Rotated)],
            task: Some(task.clone()),
        };
        self.store
            .insert_version(&caller.project_id, &version, rotated, &effects)
            .await
            .map_err(|e| store_fault(e.into()))
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
        let due = self.store.due_rotations(now_ms, 100, DUE_PER_PROJECT).await?;
        let mut rotated = 0;
        for (project_id, name) in due {
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
                // Another replica claimed it first, or it changed.
                Err(WriteError::Rejected(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let caller = CallerIdentity {
                domain_id: "opendew-csms".into(),
                project_id,
                user_id: "csms-rotation-scheduler".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
            };
            self.rotate(&caller, secret).await?;
            rotated += 1;
        }
        Ok(rotated)
    }
}
