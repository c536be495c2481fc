//! Envelopes: the root key that wraps master-key material ([`RootKey`]),
//! and the two ciphertext formats master-key material seals:
//! [`datakey_blob`] (data keys) and [`data_blob`] (encrypt-data). Named
//! for what it holds; the request handlers for data keys and data are
//! `crate::datakeys` and `crate::data`.
//!
//! Everything is AES-256-GCM with a fresh random 96-bit nonce. Every
//! ciphertext is bound by its AAD to where it belongs (key id, material
//! version, project), so a blob moved to another key or project fails to
//! open instead of decrypting under the wrong owner.

use std::{fmt, path::Path};

pub use crypto::SecretBytes;
use crypto::{AeadKey, aead::OVERHEAD, derive::SALT_LEN};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{
    domain::{KeyId, Rejection},
    error::KmsError,
};

/// The 256-bit root key. Only kms-service ever holds it.
#[derive(Clone)]
pub struct RootKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

/// Why a root key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    /// The file could not be read or written.
    #[error("cannot access root key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not 64 hex characters.
    #[error("root key from {0} must be 64 hexadecimal characters (32 bytes)")]
    Malformed(String),
}

impl RootKey {
    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str, origin: &str) -> Result<Self, RootKeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut()).map_err(|_| RootKeyError::Malformed(origin.to_owned()))?;
        Ok(Self(bytes))
    }

    /// Reads a root key file. With `create`, a missing file is created with
    /// a fresh random key and mode 0600 (dev mode).
    pub fn from_file(path: &Path, create: bool) -> Result<Self, RootKeyError> {
        let io = |source| RootKeyError::Io { path: path.display().to_string(), source };
        if create && !path.exists() {
            let key = SecretBytes::random(32);
            let text = Zeroizing::new(hex::encode(key.expose()));
            crypto::write_private_file(path, text.as_bytes()).map_err(io)?;
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        Self::from_hex(&text, &path.display().to_string())
    }

    /// A stable, non-secret fingerprint stored in the database so that
    /// kms-service can refuse to start under a different root key.
    pub fn fingerprint(&self) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()).expect("any key length");
        mac.update(b"opendew/root-key-fingerprint/v1");
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    fn cipher(&self) -> AeadKey {
        AeadKey::new(self.0.as_ref()).expect("a root key is 32 bytes")
    }

    /// Wraps master-key material; the AAD binds key id, version and project.
    pub fn wrap_material(&self, material: &SecretBytes, key_id: KeyId, version: i32, project_id: &str) -> Vec<u8> {
        let aad = material_aad(key_id, version, project_id);
        self.cipher().seal(material.expose(), &aad)
    }

    /// Seals an import token's payload (the wrapping private key and what it
    /// is for) for `project_id`: `0x01 ‖ salt ‖ AES-GCM` under a one-token
    /// key derived from the root key. Only this service can open it.
    pub fn seal_token(&self, payload: &[u8], project_id: &str) -> Vec<u8> {
        let salt = crypto::derive::fresh_salt();
        let key =
            crypto::derive::message_key(self.0.as_ref(), IMPORT_TOKEN_LABEL, &salt).expect("a root key is 32 bytes");
        let mut token = vec![TOKEN_VERSION];
        token.extend_from_slice(&salt);
        token.extend_from_slice(&key.seal(payload, &token_aad(project_id)));
        token
    }

    /// Opens a token made by [`RootKey::seal_token`] for `project_id`.
    pub fn open_token(&self, token: &[u8], project_id: &str) -> Result<SecretBytes, Rejection> {
        let (&version, rest) = token.split_first().ok_or(Rejection::ImportTokenInvalid)?;
        if version != TOKEN_VERSION || rest.len() < SALT_LEN {
            return Err(Rejection::ImportTokenInvalid);
        }
        let (salt, sealed) = rest.split_at(SALT_LEN);
        let salt: &[u8; SALT_LEN] = salt.try_into().expect("split at SALT_LEN");
        let key =
            crypto::derive::message_key(self.0.as_ref(), IMPORT_TOKEN_LABEL, salt).expect("a root key is 32 bytes");
        key.open(sealed, &token_aad(project_id)).map_err(|_| Rejection::ImportTokenInvalid)
    }

    /// A keyed digest of imported material: HMAC-SHA256 under a key derived
    /// from the root key, over the key id and the material. Stored, it tells
    /// whether material imported again is the same, and nothing else.
    pub fn import_digest(&self, key_id: KeyId, material: &[u8]) -> Vec<u8> {
        let mut labelled = Hmac::<Sha256>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length");
        labelled.update(IMPORT_DIGEST_LABEL);
        let digest_key: Zeroizing<[u8; 32]> = Zeroizing::new(labelled.finalize().into_bytes().into());
        let mut mac = Hmac::<Sha256>::new_from_slice(digest_key.as_ref()).expect("HMAC takes any key length");
        mac.update(key_id.0.as_bytes());
        mac.update(material);
        mac.finalize().into_bytes().to_vec()
    }

    /// Unwraps master-key material wrapped by [`RootKey::wrap_material`].
    pub fn unwrap_material(
        &self, wrapped: &[u8], key_id: KeyId, version: i32, project_id: &str,
    ) -> Result<SecretBytes, KmsError> {
        let aad = material_aad(key_id, version, project_id);
        self.cipher()
            .open(wrapped, &aad)
            .map_err(|_| KmsError::Internal(format!("material of key {key_id} v{version} failed to unwrap")))
    }
}

const TOKEN_VERSION: u8 = 1;
const IMPORT_TOKEN_LABEL: &[u8] = b"opendew/kms/import-token/v1";
const IMPORT_DIGEST_LABEL: &[u8] = b"opendew/kms/import-digest/v1";

fn token_aad(project_id: &str) -> Vec<u8> {
    format!("opendew/kms/import-token/v1|{project_id}").into_bytes()
}

fn material_aad(key_id: KeyId, version: i32, project_id: &str) -> Vec<u8> {
    format!("opendew/kms/material/v1|{key_id}|{version}|{project_id}").into_bytes()
}

/// One ciphertext format: its version byte, AAD label, whether it pads
/// short plaintexts, whether it seals under a per-message key derived from
/// the material ([`crypto::derive`]) or the material itself (formats 1 and
/// 2, still opened, no longer made), and its cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    byte: u8,
    label: &'static [u8],
    padded: bool,
    derived: bool,
    cipher: Cipher,
}

/// The block cipher under GCM. A key's material length names it: AES_256
/// material is 32 bytes, SM4 material 16, and a spec never changes, so a
/// key's ciphertexts are all of its cipher's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cipher {
    /// AES-256-GCM; per-message keys by HKDF-SHA256.
    Aes256,
    /// SM4-GCM; per-message keys by HKDF-SM3.
    Sm4,
}

impl Cipher {
    fn of(material: &SecretBytes) -> Cipher {
        if material.expose().len() == crypto::aead::SM4_KEY_LEN { Cipher::Sm4 } else { Cipher::Aes256 }
    }
}

/// Bytes every header starts with: version, key id, material version.
const BASE_HEADER_LEN: usize = 1 + 16 + 4;

impl Format {
    /// Header length: the base, the padding length, the salt.
    const fn header_len(self) -> usize {
        BASE_HEADER_LEN + if self.padded { 2 } else { 0 } + if self.derived { SALT_LEN } else { 0 }
    }

    /// Smallest blob of this format (empty plaintext, no padding).
    const fn min_len(self) -> usize {
        self.header_len() + OVERHEAD
    }

    /// The AEAD key of this blob: the material itself, or the message key
    /// for the salt that ends the header.
    fn key(self, material: &SecretBytes, header: &[u8]) -> Result<AeadKey, Rejection> {
        if Cipher::of(material) != self.cipher {
            return Err(Rejection::InvalidCiphertext);
        }
        let material = material.expose();
        let key = match (self.derived, self.cipher) {
            (true, cipher) => {
                let salt = header[header.len() - SALT_LEN..].try_into().expect("the header ends with the salt");
                match cipher {
                    Cipher::Aes256 => crypto::derive::message_key(material, self.label, salt),
                    Cipher::Sm4 => crypto::derive::sm4_message_key(material, self.label, salt),
                }
            }
            (false, Cipher::Aes256) => AeadKey::new(material),
            (false, Cipher::Sm4) => AeadKey::sm4(material),
        };
        key.map_err(|_| Rejection::InvalidCiphertext)
    }

    /// `header ‖ AES-GCM(plaintext)`; the header gets this format's byte,
    /// `header`'s key and version, `pad` (when padded) and a fresh salt
    /// (when derived). The AAD binds the whole header.
    fn seal(
        self, material: &SecretBytes, header: Header, pad: u16, project_id: &str, caller_aad: &[u8], plaintext: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len() + OVERHEAD + plaintext.len());
        out.push(self.byte);
        out.extend_from_slice(header.key_id.0.as_bytes());
        out.extend_from_slice(&(header.version as u32).to_be_bytes());
        if self.padded {
            out.extend_from_slice(&pad.to_be_bytes());
        }
        if self.derived {
            out.extend_from_slice(&crypto::derive::fresh_salt());
        }
        let cipher = self.key(material, &out).expect("material of the format's cipher");
        let aad = framed_aad(self.label, &out, project_id, caller_aad);
        cipher.seal_into(&mut out, plaintext, &aad);
        out
    }

    /// Opens what [`Format::seal`] made (the caller checked the length
    /// with [`parse`]).
    fn open(
        self, material: &SecretBytes, blob: &[u8], project_id: &str, caller_aad: &[u8],
    ) -> Result<SecretBytes, Rejection> {
        let (header, body) = blob.split_at(self.header_len());
        self.key(material, header)?
            .open(body, &framed_aad(self.label, header, project_id, caller_aad))
            .map_err(|_| Rejection::InvalidCiphertext)
    }
}

/// Data-key ciphertexts; the first of the material's cipher is sealed.
const DATA_KEY_FORMATS: [Format; 3] = [
    Format { byte: 0x03, label: b"opendew/kms/ciphertext/v3", padded: false, derived: true, cipher: Cipher::Aes256 },
    Format { byte: 0x05, label: b"opendew/kms/ciphertext/sm4/v5", padded: false, derived: true, cipher: Cipher::Sm4 },
    Format { byte: 0x01, label: b"opendew/kms/ciphertext/v1", padded: false, derived: false, cipher: Cipher::Aes256 },
];

/// encrypt-data ciphertexts; the first of the material's cipher is sealed.
const DATA_FORMATS: [Format; 3] = [
    Format { byte: 0x04, label: b"opendew/kms/data/v4", padded: true, derived: true, cipher: Cipher::Aes256 },
    Format { byte: 0x06, label: b"opendew/kms/data/sm4/v6", padded: true, derived: true, cipher: Cipher::Sm4 },
    Format { byte: 0x02, label: b"opendew/kms/data/v2", padded: true, derived: false, cipher: Cipher::Aes256 },
];

/// The format `formats` seals with under `material`.
fn sealing(formats: &[Format], material: &SecretBytes) -> Format {
    let cipher = Cipher::of(material);
    *formats.iter().find(|f| f.cipher == cipher).expect("every cipher has a format")
}

/// The still-unauthenticated header of a ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Master key that sealed it.
    pub key_id: KeyId,
    /// Material version of that key.
    pub version: i32,
}

/// Finds `blob`'s format among `formats` and reads its header without
/// authenticating anything.
fn parse(formats: &[Format], blob: &[u8]) -> Result<(Format, Header), Rejection> {
    let format = *formats.iter().find(|f| blob.first() == Some(&f.byte)).ok_or(Rejection::InvalidCiphertext)?;
    if blob.len() < format.min_len() {
        return Err(Rejection::InvalidCiphertext);
    }
    let key_id = KeyId(uuid::Uuid::from_slice(&blob[1..17]).map_err(|_| Rejection::InvalidCiphertext)?);
    let version = u32::from_be_bytes(blob[17..21].try_into().expect("4 bytes")) as i32;
    Ok((format, Header { key_id, version }))
}

/// The AAD of a framed ciphertext: its format's `label`, its header, the
/// project and the caller's AAD, so that a blob opens only as its own
/// format, in its own project, with the caller's AAD.
fn framed_aad(label: &[u8], header: &[u8], project_id: &str, caller_aad: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + header.len() + project_id.len() + caller_aad.len());
    aad.extend_from_slice(label);
    aad.extend_from_slice(header);
    aad.extend_from_slice(project_id.as_bytes());
    aad.extend_from_slice(caller_aad);
    aad
}

/// Data-key ciphertexts: the self-describing formats of
/// `docs/ciphertext-format.md`. Format 3 is sealed; formats 3 and 1 open.
///
/// ```text
/// 0      1                 17              21          37        49
/// | 0x03 | key id (16, BE) | version (u32) | salt (16) | nonce   | AES-GCM ciphertext ‖ tag (16) |
/// ```
/// AES key = HKDF-Expand(material, label ‖ salt); AAD = label ‖ header
/// (bytes 0..37) ‖ project id ‖ caller AAD, label
/// `"opendew/kms/ciphertext/v3"`.
pub mod datakey_blob {
    pub use super::Header;
    use super::*;

    /// Reads the header without authenticating anything.
    pub fn parse_header(blob: &[u8]) -> Result<Header, Rejection> {
        parse(&DATA_KEY_FORMATS, blob).map(|(_, header)| header)
    }

    /// Seals `plaintext` under master-key `material`.
    pub fn seal(
        material: &SecretBytes, header: Header, project_id: &str, caller_aad: &[u8], plaintext: &[u8],
    ) -> Vec<u8> {
        sealing(&DATA_KEY_FORMATS, material).seal(material, header, 0, project_id, caller_aad, plaintext)
    }

    /// Opens a ciphertext; any tampering, a wrong project or a wrong AAD
    /// gives [`Rejection::InvalidCiphertext`].
    pub fn open(
        material: &SecretBytes, blob: &[u8], project_id: &str, caller_aad: &[u8],
    ) -> Result<SecretBytes, Rejection> {
        let (format, _) = parse(&DATA_KEY_FORMATS, blob)?;
        format.open(material, blob, project_id, caller_aad)
    }
}

/// encrypt-data ciphertexts (formats 4 and 2): like data-key ciphertexts,
/// plus a padding length so that every ciphertext is at least
/// [`data_blob::MIN_LEN`] bytes (its Base64 form then meets Huawei's documented
/// 188-character minimum). The AAD label differs, so a blob of one kind
/// never opens as the other.
///
/// ```text
/// 0      1                 17              21              23          39        51
/// | 0x04 | key id (16, BE) | version (u32) | pad len (u16) | salt (16) | nonce   | AES-GCM(plaintext ‖ zeros) ‖ tag |
/// ```
pub mod data_blob {
    use super::*;

    /// Smallest ciphertext produced.
    pub const MIN_LEN: usize = 141;

    /// Reads the header without authenticating anything.
    pub fn parse_header(blob: &[u8]) -> Result<Header, Rejection> {
        parse(&DATA_FORMATS, blob).map(|(_, header)| header)
    }

    /// Seals `plaintext` (at most 65535 bytes) under master-key `material`.
    pub fn seal(
        material: &SecretBytes, header: Header, project_id: &str, caller_aad: &[u8], plaintext: &[u8],
    ) -> Vec<u8> {
        let format = sealing(&DATA_FORMATS, material);
        let pad = (MIN_LEN - format.min_len()).saturating_sub(plaintext.len());
        let mut padded = Zeroizing::new(Vec::with_capacity(plaintext.len() + pad));
        padded.extend_from_slice(plaintext);
        padded.resize(plaintext.len() + pad, 0);
        format.seal(material, header, pad as u16, project_id, caller_aad, &padded)
    }

    /// Opens a format-4 or format-2 ciphertext and strips its padding.
    pub fn open(
        material: &SecretBytes, blob: &[u8], project_id: &str, caller_aad: &[u8],
    ) -> Result<SecretBytes, Rejection> {
        let (format, _) = parse(&DATA_FORMATS, blob)?;
        let pad = u16::from_be_bytes([blob[21], blob[22]]) as usize;
        let mut padded = format.open(material, blob, project_id, caller_aad)?;
        let len = padded.expose().len().checked_sub(pad).ok_or(Rejection::InvalidCiphertext)?;
        padded.truncate(len);
        Ok(padded)
    }
}

#[cfg(test)]
mod tests {
    use super::{
        RootKey, SecretBytes,
        datakey_blob::{Header, open, parse_header, seal},
    };
    use crate::domain::KeyId;

    const PROJECT: &str = "0123456789abcdef0123456789abcdef";

    fn root() -> RootKey {
        RootKey::from_hex(&"11".repeat(32), "test").unwrap()
    }

    #[test]
    fn data_ciphertexts_are_padded_bound_and_distinct_from_data_keys() {
        use super::data_blob;
        let material = SecretBytes::random(32);
        let header = Header { key_id: KeyId::new(), version: 1 };
        for len in [1usize, 89, 90, 91, 4096] {
            let plain = vec![0x61u8; len];
            let blob = data_blob::seal(&material, header, PROJECT, b"", &plain);
            assert!(blob.len() >= data_blob::MIN_LEN);
            assert_eq!(data_blob::open(&material, &blob, PROJECT, b"").unwrap().expose(), &plain[..]);
            assert!(data_blob::open(&material, &blob, PROJECT, b"x").is_err());
            assert!(open(&material, &blob, PROJECT, b"").is_err(), "a data blob is not a data-key blob");
            let mut bad = blob.clone();
            bad[22] ^= 1;
            assert!(data_blob::open(&material, &bad, PROJECT, b"").is_err(), "padding length is authenticated");
        }
        let dek_blob = seal(&material, header, PROJECT, b"", b"k");
        assert!(data_blob::open(&material, &dek_blob, PROJECT, b"").is_err());
    }

    #[test]
    fn fingerprint_is_stable_and_differs_per_key() {
        assert_eq!(root().fingerprint(), root().fingerprint());
        let other = RootKey::from_hex(&"22".repeat(32), "test").unwrap();
        assert_ne!(root().fingerprint(), other.fingerprint());
        assert_eq!(root().fingerprint().len(), 32);
    }

    #[test]
    fn material_is_bound_to_key_version_and_project() {
        let id = KeyId::new();
        let material = SecretBytes::random(32);
        let wrapped = root().wrap_material(&material, id, 1, PROJECT);
        assert_eq!(root().unwrap_material(&wrapped, id, 1, PROJECT).unwrap().expose(), material.expose());
        assert!(root().unwrap_material(&wrapped, id, 2, PROJECT).is_err());
        assert!(root().unwrap_material(&wrapped, KeyId::new(), 1, PROJECT).is_err());
        assert!(root().unwrap_material(&wrapped, id, 1, &"f".repeat(32)).is_err());
    }

    #[test]
    fn ciphertexts_detect_every_single_bit_flip_and_truncation() {
        let material = SecretBytes::random(32);
        let header = Header { key_id: KeyId::new(), version: 3 };
        let blob = seal(&material, header, PROJECT, b"aad", b"data key bytes");
        assert_eq!(parse_header(&blob).unwrap(), header);
        assert_eq!(open(&material, &blob, PROJECT, b"aad").unwrap().expose(), b"data key bytes");
        for i in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(open(&material, &bad, PROJECT, b"aad").is_err(), "bit {i}");
        }
        for len in 0..blob.len() {
            assert!(open(&material, &blob[..len], PROJECT, b"aad").is_err());
        }
        assert!(open(&material, &blob, PROJECT, b"other").is_err());
        assert!(open(&material, &blob, &"e".repeat(32), b"aad").is_err());
    }

    /// A fixed vector for docs/ciphertext-format.md: decrypts with the
    /// documented material, project and AAD.
    #[test]
    fn documented_vector_opens() {
        let material = SecretBytes::new(vec![0x42; 32]);
        let blob = hex::decode(DOC_VECTOR).unwrap();
        let header = parse_header(&blob).unwrap();
        assert_eq!(header.key_id.to_string(), "3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90");
        assert_eq!(header.version, 1);
        let plain = open(&material, &blob, PROJECT, b"example-aad").unwrap();
        assert_eq!(plain.expose(), &[0x5a; 32]);
    }

    const DOC_VECTOR: &str = include_str!("../../../docs/ciphertext-vector-v1.hex");

    /// Formats 3 and 4 (per-message keys) are what sealing makes now;
    /// their documented vectors open, and formats 1 and 2 still do.
    #[test]
    fn new_ciphertexts_use_per_message_keys_and_old_ones_still_open() {
        use super::data_blob;
        let material = SecretBytes::new(vec![0x42; 32]);
        let header = Header { key_id: "3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90".parse().unwrap(), version: 1 };
        let (a, b) = (seal(&material, header, PROJECT, b"", b"k"), seal(&material, header, PROJECT, b"", b"k"));
        assert_eq!((a[0], a.len()), (0x03, 37 + 12 + 1 + 16));
        assert_ne!(a[21..37], b[21..37], "each ciphertext draws its own salt");
        assert_eq!(data_blob::seal(&material, header, PROJECT, b"", b"k")[0], 0x04);
        let v3 = hex::decode(include_str!("../../../docs/ciphertext-vector-v3.hex")).unwrap();
        assert_eq!(parse_header(&v3).unwrap(), header);
        assert_eq!(open(&material, &v3, PROJECT, b"example-aad").unwrap().expose(), &[0x5a; 32]);
        let v4 = hex::decode(include_str!("../../../docs/ciphertext-vector-v4.hex")).unwrap();
        assert_eq!(v4.len(), data_blob::MIN_LEN);
        assert_eq!(data_blob::open(&material, &v4, PROJECT, b"example-aad").unwrap().expose(), b"card=4111-xx");
        for i in 0..v4.len() * 8 {
            let mut bad = v4.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(data_blob::open(&material, &bad, PROJECT, b"example-aad").is_err(), "bit {i}");
        }
        // The same body under the old format byte (material used directly)
        // does not open, nor does a data-key blob as data or the reverse.
        let mut relabelled = v3.clone();
        relabelled[0] = 0x01;
        assert!(open(&material, &relabelled, PROJECT, b"example-aad").is_err());
        assert!(data_blob::open(&material, &v3, PROJECT, b"example-aad").is_err());
        assert!(open(&material, &v4, PROJECT, b"example-aad").is_err());
    }

    /// SM4 material seals formats 5 and 6 (SM4-GCM under HKDF-SM3 keys);
    /// they open only under their own material, and AES material never
    /// opens them.
    #[test]
    fn sm4_material_seals_its_own_formats() {
        use super::data_blob;
        let sm4 = SecretBytes::random(16);
        let aes = SecretBytes::random(32);
        let header = Header { key_id: KeyId::new(), version: 1 };
        let dek = seal(&sm4, header, PROJECT, b"aad", b"data key");
        assert_eq!(dek[0], 0x05);
        assert_eq!(open(&sm4, &dek, PROJECT, b"aad").unwrap().expose(), b"data key");
        assert!(open(&aes, &dek, PROJECT, b"aad").is_err());
        assert!(open(&SecretBytes::random(16), &dek, PROJECT, b"aad").is_err());
        let blob = data_blob::seal(&sm4, header, PROJECT, b"", b"card=4111-xx");
        assert_eq!(blob[0], 0x06);
        assert!(blob.len() >= data_blob::MIN_LEN);
        assert_eq!(data_blob::open(&sm4, &blob, PROJECT, b"").unwrap().expose(), b"card=4111-xx");
        assert!(data_blob::open(&aes, &blob, PROJECT, b"").is_err());
        let mut relabelled = blob.clone();
        relabelled[0] = 0x04;
        assert!(data_blob::open(&sm4, &relabelled, PROJECT, b"").is_err());
        for i in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(data_blob::open(&sm4, &bad, PROJECT, b"").is_err(), "bit {i}");
        }
    }

    /// The format-2 vector of docs/ciphertext-format.md: every bit matters.
    #[test]
    fn documented_data_vector_opens_and_every_bit_flip_fails() {
        use super::data_blob;
        let material = SecretBytes::new(vec![0x42; 32]);
        let blob = hex::decode(include_str!("../../../docs/ciphertext-vector-v2.hex")).unwrap();
        assert_eq!(data_blob::parse_header(&blob).unwrap().key_id.to_string(), "3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90");
        assert_eq!(data_blob::open(&material, &blob, PROJECT, b"example-aad").unwrap().expose(), b"card=4111-xx");
        for i in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(data_blob::open(&material, &bad, PROJECT, b"example-aad").is_err(), "bit {i}");
        }
        for len in 0..blob.len() {
            assert!(data_blob::open(&material, &blob[..len], PROJECT, b"example-aad").is_err());
        }
    }
}
