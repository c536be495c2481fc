//! opendew's cryptographic home.
//!
//! Every AES-256-GCM (and SM4-GCM) seal and open in the workspace goes
//! through [`aead`]; every signature, public-key encryption and key pair
//! through [`asymmetric`] (one module per family); every MAC through
//! [`mac`];
//! every secret held in memory is a [`SecretBytes`] or [`SecretString`]
//! (wiped on drop, redacted in `Debug`); every key file is written by
//! [`write_private_file`]. The services build their formats (ciphertext
//! headers, backup envelopes, sealed SKs) on top of these, so a change to
//! the primitive (nonce policy, key derivation, a new algorithm) is made
//! once, here.
//!
//! Nothing here knows about keys ids, projects or protobuf: callers pass
//! the associated data that binds a ciphertext to its place.

pub mod aead;
pub mod asymmetric;
pub mod derive;
mod file;
pub mod mac;
pub mod scram;
mod secret;

pub use aead::{AeadKey, OpenError};
pub use file::{read_hex_key_file, write_private_file};
pub use secret::{SecretBytes, SecretString, fill_random};
