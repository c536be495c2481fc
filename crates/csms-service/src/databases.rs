//! The database servers whose passwords a database secret's rotation sets
//! (issue #33): one module per engine, each setting an account's password
//! on the server and checking that the server holds it, and making
//! MultiUser's second account. [`Server`] picks the engine and bounds
//! every call in time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crypto::SecretString;

use crate::domain::instances::DbEngine;

pub mod mysql;
pub mod postgres;

/// The longest one call to a server may take (connect, statements, the
/// check). A rotation's lease is longer than two of them (the change and
/// a restore), so no two attempts act on one account at once.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(30);

/// A registered instance, opened: its engine and administrator URL.
pub struct Server {
    /// Its protocol.
    pub engine: DbEngine,
    /// The administrator URL (credentials inside; never shown).
    pub admin: SecretString,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("engine", &self.engine).finish_non_exhaustive()
    }
}

impl ServerError {
    /// Whether the server's password may have changed before this error.
    pub fn may_have_changed(&self) -> bool {
        matches!(self, Self::PartlyApplied(_) | Self::TimedOut | Self::NotApplied)
    }
}

impl Server {
    /// Sets `user`'s password and checks that the server holds it.
    pub async fn set_password(&self, user: &str, password: &SecretString) -> Result<(), ServerError> {
        let call = match self.engine {
            DbEngine::Postgresql => {
                tokio::time::timeout(SERVER_TIMEOUT, postgres::set_password(&self.admin, user, password)).await
            }
            DbEngine::Mysql => {
                tokio::time::timeout(SERVER_TIMEOUT, mysql::set_password(&self.admin, user, password)).await
            }
        };
        call.unwrap_or_else(|_| Err(timed_out()))
    }

    /// Makes `clone` (unless it exists) with `from`'s privileges, then sets
    /// its password as [`Server::set_password`] does.
    pub async fn clone_account(&self, from: &str, clone: &str, password: &SecretString) -> Result<(), ServerError> {
        let call = match self.engine {
            DbEngine::Postgresql => {
                tokio::time::timeout(SERVER_TIMEOUT, postgres::clone_role(&self.admin, from, clone)).await
            }
            DbEngine::Mysql => tokio::time::timeout(SERVER_TIMEOUT, mysql::clone_user(&self.admin, from, clone)).await,
        };
        call.unwrap_or_else(|_| Err(timed_out()))?;
        self.set_password(clone, password).await
    }
}

fn timed_out() -> ServerError {
    ServerError::TimedOut
}

/// Rotations in flight per database instance, so that many secrets due at
/// once on one instance take turns (only registered instances get a slot).
#[derive(Debug)]
pub struct InstanceSlots {
    per_instance: usize,
    slots: Mutex<HashMap<(String, String), Arc<tokio::sync::Semaphore>>>,
}

impl InstanceSlots {
    /// `per_instance` rotations at once on each instance.
    pub fn new(per_instance: u32) -> Self {
        Self { per_instance: per_instance.max(1) as usize, slots: Mutex::default() }
    }

    pub(crate) async fn acquire(&self, project_id: &str, instance_id: &str) -> tokio::sync::OwnedSemaphorePermit {
        let slot = {
            let mut slots = self.slots.lock().expect("instance slots");
            let key = (project_id.to_owned(), instance_id.to_owned());
            slots.entry(key).or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_instance))).clone()
        };
        slot.acquire_owned().await.expect("instance slots are never closed")
    }
}

/// Why a server did not take a new password. Messages name the server's
/// refusal, never a password or its verifier.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The server could not be reached or refused the administrator;
    /// nothing changed.
    #[error("the database server cannot be reached: {0}")]
    Unreachable(String),
    /// The account to rotate does not exist on the server.
    #[error("the account {0:?} does not exist on the database server")]
    UnknownAccount(String),
    /// The server refused the statement (privileges, policy); nothing
    /// changed.
    #[error("the database server refused the password change: {0}")]
    Refused(String),
    /// The server refused a later statement after an earlier one changed
    /// the password (one host entry of a MySQL account).
    #[error("the database server refused the password change part way: {0}")]
    PartlyApplied(String),
    /// No answer in time; the change may or may not have happened.
    #[error("the database server did not answer within {} s", SERVER_TIMEOUT.as_secs())]
    TimedOut,
    /// The password cannot be set as asked (not hashable for this engine).
    #[error("{0}")]
    Invalid(String),
    /// The statement ran, yet the server does not hold the new password.
    #[error("the database server does not hold the new password")]
    NotApplied,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At most `per_instance` rotations hold one instance at once; another
    /// instance has its own slots.
    #[tokio::test]
    async fn an_instance_takes_a_bounded_number_of_rotations_at_once() {
        let slots = InstanceSlots::new(2);
        let held = [slots.acquire("p", "db-1").await, slots.acquire("p", "db-1").await];
        let third = tokio::time::timeout(Duration::from_millis(50), slots.acquire("p", "db-1")).await;
        assert!(third.is_err(), "a third rotation waits");
        let other = tokio::time::timeout(Duration::from_millis(50), slots.acquire("p", "db-2")).await;
        assert!(other.is_ok(), "another instance does not");
        let other_project = tokio::time::timeout(Duration::from_millis(50), slots.acquire("q", "db-1")).await;
        assert!(other_project.is_ok(), "nor the same id in another project");
        drop(held);
        let freed = tokio::time::timeout(Duration::from_millis(50), slots.acquire("p", "db-1")).await;
        assert!(freed.is_ok(), "a finished rotation frees its slot");
    }
}
