//! Temporary credentials: `POST /v3.0/OS-CREDENTIAL/securitytokens`, as
//! Huawei IAM answers it, and their verification (auth.md §1.9).
//!
//! A caller authenticated with a token or a permanent access key gets a
//! temporary AK, SK and security token that expire after `duration_seconds`
//! (900 to 86,400; default 900) and carry the caller's scope. Nothing is
//! stored: the security token is the claims (AK, SK, user, domain, project,
//! expiry) sealed with AES-256-GCM under the identity key, so every replica
//! can open it and recover the SK to check the request's signature. The
//! temporary AK is accepted only together with its own security token, and
//! stops working with its user or project.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    caller::Caller,
    credentials::SecretString,
    error::ApiError,
    identity::seal::SecretSealer,
    json::JsonBody,
    state::AppState,
    tokens::{TokenError, iso_time},
};

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

const BAD_BODY: ApiError = ApiError::Iam(StatusCode::BAD_REQUEST, "The request body is invalid");

/// `POST /v3.0/OS-CREDENTIAL/securitytokens` with the `token` method.
pub async fn create_security_token(
    State(app): State<Arc<AppState>>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if caller.temporary {
        return Err(ApiError::Iam(StatusCode::FORBIDDEN, "Temporary credentials cannot issue temporary credentials."));
    }
    let body = JsonBody::parse(&headers, &body).map_err(|_| BAD_BODY)?;
    let auth = body.object("auth").map_err(|_| BAD_BODY)?.ok_or(BAD_BODY)?;
    let identity = auth.object("identity").map_err(|_| BAD_BODY)?.ok_or(BAD_BODY)?;
    let methods = identity.string_list("methods").map_err(|_| BAD_BODY)?.ok_or(BAD_BODY)?;
    if methods != ["token"] {
        return Err(BAD_BODY);
    }
    let duration = match identity.object("token").map_err(|_| BAD_BODY)? {
        Some(token) => token.int("duration_seconds").map_err(|_| BAD_BODY)?.unwrap_or(900),
        None => 900,
    };
    if !(900..=86_400).contains(&duration) {
        return Err(ApiError::Iam(StatusCode::BAD_REQUEST, "duration_seconds must be between 900 and 86400."));
    }
    let claims = StsClaims {
        ak: format!("ODET{}", random_text(16).to_ascii_uppercase()),
        sk: SecretString::new(random_text(40)),
        u: caller.user_id.clone(),
        d: caller.domain_id.clone(),
        p: caller.scoped_project.clone(),
        exp: common::now_ms() + duration * 1000,
    };
    let token = issue(app.directory.sealer(), &claims);
    tracing::info!(user_id = %claims.u, access_key = %claims.ak, "temporary credentials issued");
    let credential = json!({
        "access": claims.ak,
        "secret": claims.sk.expose(),
        "securitytoken": token,
        "expires_at": iso_time(claims.exp),
    });
    Ok((StatusCode::CREATED, Json(json!({ "credential": credential }))).into_response())
}

fn random_text(len: usize) -> String {
    use rand::{Rng, distributions::Alphanumeric};
    rand::rngs::OsRng.sample_iter(&Alphanumeric).take(len).map(char::from).collect()
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
