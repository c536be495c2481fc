//! IAM-style tokens (`X-Auth-Token`), verifiable by any gateway replica that
//! shares the token key, without a database round trip.
//!
//! Format: `ODT1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, claims))>`.
//! Claims name the user, domain and (for project-scoped tokens) project, and
//! the expiry; the MAC makes them unforgeable without the gateway's key.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

const PREFIX: &str = "ODT1.";

/// How long a token lives: 24 hours, as IAM's do.
pub const TOKEN_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub u: String,
    /// Domain id.
    pub d: String,
    /// Project id, for project-scoped tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    /// Issued at, ms.
    pub iat: i64,
    /// Expires at, ms.
    pub exp: i64,
    /// [`password_mark`] of the user's password when the token was issued:
    /// a password change ends every token issued before it (issue #15,
    /// finding 4). A token without one (issued before this field) is no
    /// longer valid.
    #[serde(default)]
    pub pw: String,
}

/// A short mark of a stored password hash, carried by tokens so that they
/// die when the password changes (a new hash has a new salt). It reveals
/// nothing usable about the hash: 64 bits of SHA-256 under a label.
pub fn password_mark(password_hash: &str) -> String {
    use sha2::Digest;
    let digest =
        sha2::Sha256::new().chain_update(b"opendew/gateway/token-password/v1|").chain_update(password_hash).finalize();
    hex::encode(&digest[..8])
}

/// The key that signs tokens.
#[derive(Clone)]
pub struct TokenKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not one of ours, or tampered with.
    #[error("decrypt token fail")]
    Invalid,
    /// Past its expiry.
    #[error("token expires, expires_at: {0}")]
    Expired(String),
}

impl TokenKey {
    /// A key from bytes (at least 32).
    pub fn new(bytes: Vec<u8>) -> anyhow::Result<Self> {
        anyhow::ensure!(bytes.len() >= 32, "the token key must be at least 32 bytes");
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// A random key (tokens then die with the process).
    pub fn random() -> Self {
        Self(Self::random_bytes())
    }

    /// 32 random bytes for a new token key file.
    pub fn random_bytes() -> Zeroizing<Vec<u8>> {
        use rand::RngCore;
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        bytes
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"opendew/token/v1|");
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }

    /// Issues a token for `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        format!("{PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(self.mac(&payload)))
    }

    /// Verifies a token at time `now_ms`.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Invalid)?;
        let (payload, mac) = rest.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Invalid)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| TokenError::Invalid)?;
        use subtle::ConstantTimeEq;
        if !bool::from(self.mac(&payload).ct_eq(&mac)) {
            return Err(TokenError::Invalid);
        }
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
        if now_ms >= claims.exp {
            return Err(TokenError::Expired(iso_time(claims.exp)));
        }
        Ok(claims)
    }
}

/// IAM's timestamp format: ISO-8601 UTC with microseconds.
pub fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_expiry_and_resist_tampering() {
        let key = TokenKey::random();
        let claims = Claims { u: "u".into(), d: "d".into(), p: Some("p".into()), iat: 0, exp: 1000, pw: "m".into() };
        let token = key.issue(&claims);
        assert!(token.len() >= 32);
        assert_eq!(key.verify(&token, 999).unwrap(), claims);
        assert!(matches!(key.verify(&token, 1000), Err(TokenError::Expired(_))));
        assert_eq!(TokenKey::random().verify(&token, 0), Err(TokenError::Invalid));
        let mut forged = token.clone();
        forged.insert(8, 'x');
        assert_eq!(key.verify(&forged, 0), Err(TokenError::Invalid));
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000000Z");
    }
}
