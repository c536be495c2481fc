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
    /// How long a request's body may take to arrive.
    pub body_timeout: std::time::Duration,
}

/// Reads a token key file (hex) or returns a random key with a warning.
pub fn load_token_key(path: Option<&std::path::Path>) -> anyhow::Result<TokenKey> {
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
            tracing::warn!("no --token-key-file: tokens are valid only on this process until it restarts");
            Ok(TokenKey::random())
        }
    }
}
