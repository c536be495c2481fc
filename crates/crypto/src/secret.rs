//! Secrets in memory: wiped when dropped, never printed.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    use rand::RngCore;
    rand::rngs::OsRng.fill_bytes(buf);
}

/// Secret bytes (key material, data keys, plaintext values) that are wiped
/// on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// `len` bytes from the OS CSPRNG.
    pub fn random(len: usize) -> Self {
        let mut bytes = Self::new(vec![0u8; len]);
        fill_random(bytes.expose_mut());
        bytes
    }

    /// The secret itself; never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret, writable in place.
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Shortens the secret to `len` bytes (the cut bytes are wiped).
    pub fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            zeroize::Zeroize::zeroize(&mut self.0[len..]);
            self.0.truncate(len);
        }
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// A secret string (SK, password, token key) that is wiped on drop and
/// never printed. Serialises transparently, for the credentials file.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The secret itself; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", SecretBytes::new(b"abc".to_vec())), "SecretBytes(<3 bytes redacted>)");
        assert_eq!(format!("{:?}", SecretString::new("hunter2".into())), "<redacted>");
    }

    #[test]
    fn truncate_keeps_the_prefix() {
        let mut s = SecretBytes::new(b"abcdef".to_vec());
        s.truncate(2);
        assert_eq!(s.expose(), b"ab");
        s.truncate(5);
        assert_eq!(s.expose(), b"ab");
        assert_eq!(SecretBytes::random(17).expose().len(), 17);
    }
}
