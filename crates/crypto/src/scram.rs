//! SCRAM-SHA-256 verifiers as PostgreSQL stores them (RFC 5802, RFC 7677;
//! `pg_authid.rolpassword`): what opendew sends in `ALTER ROLE … PASSWORD`
//! so that a rotated database password never travels in SQL text.

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};

/// PostgreSQL's default iteration count (`scram_iterations`, 4096).
pub const ITERATIONS: u32 = 4096;

/// Why a verifier cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// Only printable ASCII passwords are hashed here: for them SASLprep,
    /// which PostgreSQL applies first, changes nothing, so the verifier is
    /// the one PostgreSQL would make from the same password.
    #[error("only printable ASCII passwords can be hashed for PostgreSQL")]
    NotPrintableAscii,
    /// Zero iterations.
    #[error("the iteration count must be at least 1")]
    NoIterations,
}

/// The verifier of `password` under `salt` and `iterations`:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, Base64.
pub fn sha256_verifier(password: &str, salt: &[u8], iterations: u32) -> Result<String, ScramError> {
    if password.is_empty() || !password.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ScramError::NotPrintableAscii);
    }
    let rounds = std::num::NonZeroU32::new(iterations).ok_or(ScramError::NoIterations)?;
    let mut salted = zeroize::Zeroizing::new([0u8; 32]);
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, rounds, salt, password.as_bytes(), salted.as_mut());
    let key = hmac::Key::new(hmac::HMAC_SHA256, salted.as_ref());
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    Ok(format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key.as_ref()),
        BASE64.encode(server_key.as_ref())
    ))
}

/// A verifier under a fresh random 16-byte salt and [`ITERATIONS`].
pub fn new_sha256_verifier(password: &str) -> Result<String, ScramError> {
    let mut salt = [0u8; 16];
    crate::fill_random(&mut salt);
    sha256_verifier(password, &salt, ITERATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example: user "user", password "pencil", salt
    /// `W22ZaJ0SNY7soEsUEjb6gQ==`, 4096 iterations; its ClientProof and
    /// ServerSignature follow from these StoredKey and ServerKey (checked
    /// against PostgreSQL in csms-service's database tests).
    #[test]
    fn matches_the_rfc_7677_exchange() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = sha256_verifier("pencil", &salt, 4096).unwrap();
        let (_, keys) = verifier.rsplit_once('$').unwrap();
        let (_, server_key) = keys.split_once(':').unwrap();
        // ServerSignature = HMAC(ServerKey, AuthMessage), RFC 7677 §3.
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let key = hmac::Key::new(hmac::HMAC_SHA256, &BASE64.decode(server_key).unwrap());
        let signature = BASE64.encode(hmac::sign(&key, auth_message.as_bytes()).as_ref());
        assert_eq!(signature, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert!(verifier.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"));
    }

    #[test]
    fn refuses_what_postgres_would_prepare_differently() {
        assert_eq!(sha256_verifier("pässword", b"salt", 4096), Err(ScramError::NotPrintableAscii));
        assert_eq!(sha256_verifier("", b"salt", 4096), Err(ScramError::NotPrintableAscii));
        assert_eq!(sha256_verifier("ok", b"salt", 0), Err(ScramError::NoIterations));
        assert_ne!(new_sha256_verifier("same").unwrap(), new_sha256_verifier("same").unwrap(), "fresh salts");
    }
}
