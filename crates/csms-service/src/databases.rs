//! The database servers whose passwords a database secret's rotation sets
//! (issue #33): one module per engine, each setting an account's password
//! on the server and checking that the server holds it.

pub mod mysql;
pub mod postgres;

/// Why a server did not take a new password. Messages name the server's
/// refusal, never a password or its verifier.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The server could not be reached or refused the administrator.
    #[error("the database server cannot be reached: {0}")]
    Unreachable(String),
    /// The account to rotate does not exist on the server.
    #[error("the account {0:?} does not exist on the database server")]
    UnknownAccount(String),
    /// The server refused the statement (privileges, policy).
    #[error("the database server refused the password change: {0}")]
    Refused(String),
    /// The password cannot be set as asked (not hashable for this engine).
    #[error("{0}")]
    Invalid(String),
    /// The statement ran, yet the server does not hold the new password.
    #[error("the database server does not hold the new password")]
    NotApplied,
}
