//! Sealing SKs for the identity store, and hashing passwords.
//!
//! An SK has to be recoverable (HMAC verification needs it), so it is
//! encrypted, not hashed: AES-256-GCM under the gateway's identity key,
//! with the AK as associated data so a sealed SK cannot be moved to another
//! key's row. Passwords only need checking, so they get argon2id.

use crypto::{AeadKey, SecretString};
use rand::RngCore;

const AAD_PREFIX: &[u8] = b"opendew/iam/sk/v1/";

/// Seals and opens SKs; `Debug` never shows the key.
#[derive(Clone, Debug)]
pub struct SecretSealer {
    cipher: AeadKey,
}

/// A sealed SK that does not open: wrong identity key, or a damaged row.
#[derive(Debug, thiserror::Error)]
#[error("the SK of access key {0} does not open with this identity key (wrong --identity-key-file?)")]
pub struct SealError(pub String);

impl SecretSealer {
    /// From a 32-byte key.
    pub fn new(key: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(key.len() == 32, "the identity key must be 32 bytes (64 hex characters)");
        Ok(Self { cipher: AeadKey::new(key)? })
    }

    /// Reads a key file holding 64 hex characters.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let key = crypto::read_hex_key_file(path, 32).map_err(|e| anyhow::anyhow!("--identity-key-file: {e}"))?;
        Self::new(key.expose())
    }

    /// Writes a fresh random key file (mode 0600) unless one exists; true
    /// when it wrote one.
    pub fn ensure_key_file(path: &std::path::Path) -> std::io::Result<bool> {
        if path.exists() {
            return Ok(false);
        }
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let text = zeroize::Zeroizing::new(hex::encode(key.as_ref()));
        crypto::write_private_file(path, text.as_bytes())?;
        Ok(true)
    }

    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, access_key: &str, secret: &SecretString) -> Vec<u8> {
        self.cipher.seal(secret.expose().as_bytes(), &[AAD_PREFIX, access_key.as_bytes()].concat())
    }

    /// Seals any short blob under `label` (its associated data), e.g. the
    /// claims of a security token.
    pub fn seal_blob(&self, label: &[u8], plain: &[u8]) -> Vec<u8> {
        self.cipher.seal(plain, label)
    }

    /// Opens what [`SecretSealer::seal_blob`] sealed under the same label.
    pub fn open_blob(&self, label: &[u8], sealed: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        self.cipher.open(sealed, label).ok().map(|plain| zeroize::Zeroizing::new(plain.expose().to_vec()))
    }

    /// Opens what [`SecretSealer::seal`] sealed for the same AK.
    pub fn open(&self, access_key: &str, sealed: &[u8]) -> Result<SecretString, SealError> {
        let fail = || SealError(access_key.to_owned());
        let plain = self.cipher.open(sealed, &[AAD_PREFIX, access_key.as_bytes()].concat()).map_err(|_| fail())?;
        Ok(SecretString::new(String::from_utf8(plain.expose().to_vec()).map_err(|_| fail())?))
    }
}

/// Allocates this thread's argon2 working memory for the default
/// parameters, so that a hashing thread pays for it once when it starts
/// ([`crate::hashing`]) rather than at its first login.
pub(crate) fn reserve_hashing_memory() {
    with_memory(argon2::Params::default().block_count(), |_| ());
}

/// Runs `f` with this thread's argon2 working memory, `count` blocks.
///
/// argon2id needs 19 MiB per hash by design. Allocated per hash, glibc kept
/// up to five of them alive on the hashing thread (its arena never reused a
/// freed one for the next), so sequential logins grew the process by 100
/// MiB (measured: `tests/dev_binary.rs`, `floods_leave_peak_memory_bounded`).
/// One buffer per thread, reused by every hash, makes it 19 MiB, once.
fn with_memory<R>(count: usize, f: impl FnOnce(&mut [argon2::Block]) -> R) -> R {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < count {
            blocks.resize(count, argon2::Block::default());
        }
        f(&mut blocks[..count])
    })
}

/// argon2 `algorithm`/`version`/`params` of `password` with `salt` into
/// `out`, in this thread's reused memory.
fn argon2_into(argon: &argon2::Argon2<'_>, count: usize, password: &str, salt: &[u8], out: &mut [u8]) -> bool {
    with_memory(count, |memory| argon.hash_password_into_with_memory(password.as_bytes(), salt, out, memory).is_ok())
}

/// An argon2id PHC string for `password`, default parameters (CPU-heavy:
/// call through [`crate::hashing::run`] on a request path).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{Output, PasswordHash, SaltString};
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let params = argon2::Params::default();
    let count = params.block_count();
    let argon = argon2::Argon2::from(params.clone());
    let mut out = zeroize::Zeroizing::new([0u8; argon2::Params::DEFAULT_OUTPUT_LEN]);
    assert!(argon2_into(&argon, count, password, &salt, out.as_mut()), "argon2 with default parameters");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: (&params).try_into().expect("default parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(out.as_ref()).expect("32 bytes is a valid output")),
    }
    .to_string()
}

/// Most working memory a stored hash may ask for (argon2's default is
/// 19 MiB): a hash with more is refused rather than allocated.
const MAX_MEMORY_KIB: u32 = 64 * 1024;

/// Checks `password` against a PHC string, in constant time (CPU-heavy:
/// call through [`crate::hashing::run`]).
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::PasswordHash;
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) =
        (argon2::Algorithm::try_from(parsed.algorithm), argon2::Params::try_from(&parsed))
    else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let count = params.block_count();
    let argon = argon2::Argon2::new(algorithm, version, params);
    let mut out = zeroize::Zeroizing::new(vec![0u8; expected.len()]);
    argon2_into(&argon, count, password, salt, &mut out) && {
        use subtle::ConstantTimeEq;
        bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_key_and_access_key() {
        let sealer = SecretSealer::new(&[7; 32]).unwrap();
        let sk = SecretString::new("s3cr3t-sk".into());
        let sealed = sealer.seal("AK1", &sk);
        assert!(!String::from_utf8_lossy(&sealed).contains("s3cr3t"));
        assert_eq!(sealer.open("AK1", &sealed).unwrap().expose(), "s3cr3t-sk");
        assert!(sealer.open("AK2", &sealed).is_err(), "moved to another key's row");
        assert!(SecretSealer::new(&[8; 32]).unwrap().open("AK1", &sealed).is_err(), "another identity key");
        let mut tampered = sealed.clone();
        tampered[15] ^= 1;
        assert!(sealer.open("AK1", &tampered).is_err());
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horse "));
        assert!(!verify_password("not a hash", "x"));
    }

    /// Hashes stored before the reused buffer (argon2's own API) verify, and
    /// new ones verify with argon2's own API: the PHC strings are the same.
    #[test]
    fn hashes_interoperate_with_argon2s_own_api() {
        use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
        let salt = SaltString::encode_b64(&[3; 16]).unwrap();
        let theirs = argon2::Argon2::default().hash_password(b"correct horse", &salt).unwrap().to_string();
        assert!(verify_password(&theirs, "correct horse"));
        assert!(!verify_password(&theirs, "wrong horse"));
        let ours = hash_password("correct horse");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2::Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        // A stored hash asking for more memory than any account's is refused,
        // not allocated.
        let greedy = theirs.replace("m=19456", "m=1048576");
        assert!(!verify_password(&greedy, "correct horse"));
    }
}
