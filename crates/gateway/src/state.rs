//! What every handler shares: the identity directory, token key, throttle
//! and the gRPC clients of the services.

use proto::{
    csms::v1::secrets_manager_service_client::SecretsManagerServiceClient,
    kms::v1::key_management_service_client::KeyManagementServiceClient,
};
use tonic::transport::Channel;

use crate::{throttle, tokens::TokenKey};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// Who may call: the identity store, in memory.
    pub directory: std::sync::Arc<identity::directory::Directory>,
    /// Records one-shot requests' signatures, grouped (`replay`).
    pub ledger: crate::ledger::Ledger,
    /// Signs and verifies tokens.
    pub tokens: TokenKey,
    /// Failed-authentication buckets.
    pub throttle: throttle::Throttle,
    /// kms-service client (cheap to clone).
    pub kms: KeyManagementServiceClient<Channel>,
    /// csms-service client (cheap to clone).
    pub csms: SecretsManagerServiceClient<Channel>,
    /// Channels to the services, for readiness checks.
    pub channels: [(&'static str, Channel); 2],
    /// What request bodies may hold before and after authentication.
    pub budgets: crate::budget::Budgets,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::peer::TrustedProxies,
    /// How long a request's body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// `https` when the gateway serves TLS, else `http`: the scheme of the
    /// URLs it hands out (links, the service catalog).
    pub scheme: &'static str,
}

/// What the authentication layer of one route needs: the shared state and
/// the route's body limit.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The gateway's state.
    pub app: std::sync::Arc<AppState>,
    /// The route's largest body.
    pub body_limit: usize,
}

/// Reads a token key file (hex); without one, derives the token key from the
/// identity key, which every replica shares. (A random key per process made
/// a token work on one replica only and die at every rollout: issue #15,
/// finding 11.) The derivation is HMAC-SHA256 under a label of its own, so
/// the token key reveals nothing of the identity key that seals SKs.
pub fn load_token_key(path: Option<&std::path::Path>, identity_key_file: &std::path::Path) -> anyhow::Result<TokenKey> {
    match path {
        Some(path) => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read token key {}: {e}", path.display()))?,
            );
            let bytes = hex::decode(text.trim())
                .map_err(|_| anyhow::anyhow!("token key file {} must hold hex", path.display()))?;
            TokenKey::new(bytes)
        }
        None => {
            use hmac::Mac;
            let key = crypto::read_hex_key_file(identity_key_file, 32)
                .map_err(|e| anyhow::anyhow!("--identity-key-file: {e}"))?;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key length");
            mac.update(b"opendew/gateway/token-key/v1");
            TokenKey::new(mac.finalize().into_bytes().to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(hex: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), hex.repeat(32)).unwrap();
        file
    }

    #[test]
    fn without_a_token_key_file_replicas_derive_the_same_key() {
        let identity = key_file("ab");
        let (one, two) =
            (load_token_key(None, identity.path()).unwrap(), load_token_key(None, identity.path()).unwrap());
        let now = common::now_ms();
        let claims = crate::tokens::Claims {
            u: "u".into(),
            d: "d".into(),
            p: None,
            iat: now,
            exp: now + 60_000,
            pw: String::new(),
        };
        // Before: each process drew a random key, so this failed.
        assert!(two.verify(&one.issue(&claims), now).is_ok(), "a token from one replica works on another");
        let other = key_file("cd");
        assert!(load_token_key(None, other.path()).unwrap().verify(&one.issue(&claims), now).is_err());
    }
}
