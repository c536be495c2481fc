//! Grants: what a grantee may do with a key, and the rules of their fields.

use super::{KeyId, MAX_ALIAS_LEN, Rejection};

string_enum! {
    /// What a grant may let its grantee do (kms-api.md §3.3).
    GrantOperation {
        /// create-datakey.
        CreateDatakey = "create-datakey",
        /// create-datakey-without-plaintext.
        CreateDatakeyWithoutPlaintext = "create-datakey-without-plaintext",
        /// encrypt-datakey.
        EncryptDatakey = "encrypt-datakey",
        /// decrypt-datakey.
        DecryptDatakey = "decrypt-datakey",
        /// describe-key.
        DescribeKey = "describe-key",
        /// create-grant (re-granting at most the grantee's own operations).
        CreateGrant = "create-grant",
        /// retire-grant.
        RetireGrant = "retire-grant",
        /// encrypt-data.
        EncryptData = "encrypt-data",
        /// decrypt-data.
        DecryptData = "decrypt-data",
    }
}

string_enum! {
    /// Whom a grant names.
    PrincipalType {
        /// An IAM user id.
        User = "user",
        /// A domain (account) id: every user of the domain.
        Domain = "domain",
    }
}

/// A grant on a key: its grantee may use the key for `operations`, in its
/// own project, as if it were its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// 64 lower-case hex characters.
    pub grant_id: String,
    /// The key.
    pub key_id: KeyId,
    /// The key's project.
    pub project_id: String,
    /// A user id or a domain id, per `grantee_type`.
    pub grantee: String,
    /// What `grantee` names.
    pub grantee_type: PrincipalType,
    /// Allowed operations, distinct, in the order given.
    pub operations: Vec<GrantOperation>,
    /// The user who created it.
    pub issuing_principal: String,
    /// The user (or domain) that may retire it, if any.
    pub retiring_principal: Option<String>,
    /// Optional name.
    pub name: String,
    /// Creation time, ms.
    pub creation_ms: i64,
}

/// Who is asking, as far as grants care.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The caller's user id.
    pub user_id: &'a str,
    /// The caller's domain id.
    pub domain_id: &'a str,
}

impl GrantRecord {
    /// The grant names this caller.
    pub fn names(&self, who: Principal<'_>) -> bool {
        match self.grantee_type {
            PrincipalType::User => self.grantee == who.user_id,
            PrincipalType::Domain => self.grantee == who.domain_id,
        }
    }

    /// The grant lets this caller do `op`.
    pub fn allows(&self, who: Principal<'_>, op: GrantOperation) -> bool {
        self.names(who) && self.operations.contains(&op)
    }

    /// retire-grant: the issuer, the retiring principal (a user or its
    /// domain), or a grantee allowed to retire.
    pub fn retirable_by(&self, who: Principal<'_>) -> bool {
        self.issuing_principal == who.user_id
            || self.retiring_principal.as_deref().is_some_and(|r| r == who.user_id || r == who.domain_id)
            || self.allows(who, GrantOperation::RetireGrant)
    }
}

/// A grant's id: 64 hex characters (either case; kept in lower case).
pub fn parse_grant_id(text: &str) -> Result<String, Rejection> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else if text.is_empty() {
        Err(Rejection::MissingParameter("grant_id"))
    } else {
        Err(Rejection::InvalidGrantId)
    }
}

/// A grantee or retiring principal: `^[a-zA-Z0-9]{1,64}$`.
pub fn validate_principal(text: &str) -> Result<(), Rejection> {
    if !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Rejection::InvalidPrincipal)
    }
}

/// A grant's name: `^[a-zA-Z0-9:/_-]{1,255}$` (empty when none).
pub fn validate_grant_name(name: &str) -> Result<(), Rejection> {
    let ok = name.len() <= MAX_ALIAS_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(Rejection::InvalidParameter("name")) }
}

/// Grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 100;
/// Grants over all keys of a project.
pub const MAX_GRANTS_PER_PROJECT: usize = 1000;
/// Largest page of list-grants and list-retirable-grants.
pub const MAX_GRANT_PAGE: u32 = 100;
