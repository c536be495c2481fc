//! Temporary credentials (auth.md §1.9): the security token's format and its
//! verification; `POST /v3.0/OS-CREDENTIAL/securitytokens` is served by
//! [`crate::routes::iam`].
//!
//! A caller authenticated with a token or a permanent access key gets a
//! temporary AK, SK and security token that expire after `duration_seconds`
//! (900 to 86,400; default 900) and carry the caller's scope. Nothing is
//! stored: the security token is the claims (AK, SK, user, domain, project,
//! expiry) sealed with AES-256-GCM under the identity key, so every replica
//! can open it and recover the SK to check the request's signature. The
//! temporary AK is accepted only together with its own security token, and
//! stops working with its user or project.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use identity::{credentials::SecretString, seal::SecretSealer};

use crate::tokens::{TokenError, iso_time};

const PREFIX: &str = "ODS1.";
const LABEL: &[u8] = b"opendew/sts/v1";

/// What a security token asserts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StsClaims {
    /// The temporary AK.
    pub ak: String,
    /// Its SK.
    pub sk: SecretString,
    /// User id.
    pub u: String,
    /// Domain id.
    pub d: String,
    /// Project id, for project-scoped credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    /// Expires at, ms.
    pub exp: i64,
    /// The permanent access key that minted them, if one did: they stop
    /// working when it is deleted or disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pak: Option<String>,
    /// Minted with a token: the mark of the password it was issued under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pw: Option<String>,
}

/// Seals claims into a security token.
pub fn issue(sealer: &SecretSealer, claims: &StsClaims) -> String {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(claims).expect("claims serialise"));
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(sealer.seal_blob(LABEL, &plain)))
}

/// Opens a security token at time `now_ms`.
pub fn open(sealer: &SecretSealer, token: &str, now_ms: i64) -> Result<StsClaims, TokenError> {
    let sealed = token.strip_prefix(PREFIX).and_then(|t| URL_SAFE_NO_PAD.decode(t).ok()).ok_or(TokenError::Invalid)?;
    let plain = sealer.open_blob(LABEL, &sealed).ok_or(TokenError::Invalid)?;
    let claims: StsClaims = serde_json::from_slice(&plain).map_err(|_| TokenError::Invalid)?;
    if now_ms >= claims.exp {
        return Err(TokenError::Expired(iso_time(claims.exp)));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_tokens_open_until_expiry_and_hide_the_sk() {
        let sealer = SecretSealer::new(&[3; 32]).unwrap();
        let claims = StsClaims {
            ak: "ODETAK".into(),
            sk: SecretString::new("temporary-secret".into()),
            u: "u".into(),
            d: "d".into(),
            p: Some("p".into()),
            exp: 1000,
            pak: None,
            pw: None,
        };
        let token = issue(&sealer, &claims);
        assert!(!token.contains("temporary-secret"));
        assert!(!String::from_utf8_lossy(&URL_SAFE_NO_PAD.decode(&token[5..]).unwrap()).contains("temporary-secret"));
        assert_eq!(open(&sealer, &token, 999).unwrap().sk.expose(), "temporary-secret");
        assert!(matches!(open(&sealer, &token, 1000), Err(TokenError::Expired(_))));
        assert!(matches!(open(&SecretSealer::new(&[4; 32]).unwrap(), &token, 0), Err(TokenError::Invalid)));
        let mut forged = token.clone();
        forged.replace_range(10..11, if &token[10..11] == "A" { "B" } else { "A" });
        assert!(matches!(open(&sealer, &forged, 0), Err(TokenError::Invalid)));
    }
}
