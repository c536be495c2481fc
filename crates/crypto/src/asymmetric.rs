//! Asymmetric keys: generation, the public key, signatures and public-key
//! encryption, one module per family.
//!
//! | family | specs | library | why |
//! |---|---|---|---|
//! | [`rsa`] | RSA 2048/3072/4096 | aws-lc-rs | RustCrypto's `rsa` has an open timing advisory in decryption (RUSTSEC-2023-0071) |
//! | [`ecdsa`] | P-256, P-384, secp256k1 | RustCrypto `p256`/`p384`/`k256` | RFC 6979 nonces, every digest on every curve |
//! | [`ed25519`] | Ed25519 | `ed25519-dalek` 3 | pure and pre-hashed (RFC 8032 Ed25519ph) |
//! | [`sm2`] | SM2 | RustCrypto `sm2` | SM2DSA with SM3 and SM2 encryption (GB/T 32918) |
//!
//! A private key is stored as PKCS#8 DER (SM2: its 32-byte scalar) only
//! wrapped by the caller; in memory it is a [`PrivateKey`], whose every
//! variant wipes its secret when dropped. Nothing here knows about key ids
//! or wire formats beyond DER signatures, SubjectPublicKeyInfo and PEM.

pub mod ecdsa;
pub mod ed25519;
pub mod rsa;
pub mod sm2;

use crate::SecretBytes;

/// `Debug` for the family key types: the type name, never the key.
macro_rules! redacted_debug {
    ($($ty:ty),+) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($ty), "(<redacted>)"))
            }
        }
    )+};
}

redacted_debug!(rsa::RsaKey, ecdsa::EcdsaKey, ed25519::Ed25519Key, sm2::Sm2Key);

/// The asymmetric key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
    Rsa4096,
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384.
    P384,
    /// ECDSA on secp256k1.
    Secp256k1,
    /// SM2 (GB/T 32918).
    Sm2,
    /// Ed25519 (RFC 8032).
    Ed25519,
}

/// A hash function a signature or MAC names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SM3 (GB/T 32905).
    Sm3,
}

impl Hash {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 | Hash::Sm3 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The digest of `message`.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(message).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(message).to_vec(),
            Hash::Sm3 => sm3::Sm3::digest(message).to_vec(),
        }
    }
}

/// A signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningScheme {
    /// RSASSA-PSS, MGF1 with the same hash, salt as long as the hash.
    RsaPss(Hash),
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(Hash),
    /// ECDSA, DER-encoded `(r, s)`.
    Ecdsa(Hash),
    /// SM2DSA over SM3, DER-encoded, with the default user id.
    Sm2Sm3,
    /// Pure Ed25519 (the message itself, never a digest).
    Ed25519,
    /// Ed25519ph: Ed25519 over SHA-512 of the message, empty context.
    Ed25519Ph,
}

impl SigningScheme {
    /// The hash a `Digest` message must have been made with; `None` for
    /// pure Ed25519, which signs messages only.
    pub fn hash(self) -> Option<Hash> {
        match self {
            SigningScheme::RsaPss(h) | SigningScheme::RsaPkcs1(h) | SigningScheme::Ecdsa(h) => Some(h),
            SigningScheme::Sm2Sm3 => Some(Hash::Sm3),
            SigningScheme::Ed25519 => None,
            SigningScheme::Ed25519Ph => Some(Hash::Sha512),
        }
    }
}

/// What is signed: a message the scheme hashes, or the digest the caller
/// made with the scheme's hash. For SM2 the digest is GB/T 32918's `e =
/// SM3(Z_A ‖ M)`, with `Z_A` over the default user id.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// The message itself.
    Raw(&'a [u8]),
    /// Its digest.
    Digest(&'a [u8]),
}

/// A public-key encryption scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionScheme {
    /// RSAES-OAEP, SHA-1 and MGF1-SHA-1, empty label.
    RsaOaepSha1,
    /// RSAES-OAEP, SHA-256 and MGF1-SHA-256, empty label.
    RsaOaepSha256,
    /// SM2 encryption, C1C3C2 in the ASN.1 DER form of GM/T 0009.
    Sm2,
}

/// Why an asymmetric operation was refused. Deliberately without detail
/// beyond the rule broken: a failed decryption never says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AsymmetricError {
    /// The scheme does not go with this key.
    #[error("the algorithm does not fit the key")]
    WrongScheme,
    /// A digest whose length is not the scheme's hash length.
    #[error("the digest length does not match the hash")]
    DigestLength,
    /// A digest given to a scheme that signs messages only.
    #[error("the scheme signs messages, not digests")]
    DigestNotAllowed,
    /// A plaintext too long for the key and scheme.
    #[error("the plaintext is too long for the key")]
    PlaintextTooLong,
    /// The ciphertext does not decrypt.
    #[error("the ciphertext does not decrypt")]
    DecryptFailed,
    /// Stored key material that does not parse as its kind (corruption).
    #[error("the key material is malformed")]
    MalformedKey,
    /// The system's generator failed.
    #[error("key generation failed")]
    Generation,
}

/// A private key ready to use. Each variant wipes its secret on drop: the
/// RustCrypto and dalek keys zeroize themselves, aws-lc cleanses every
/// allocation it frees, and SM2's scalar is a zeroizing `SecretKey`.
pub enum PrivateKey {
    /// An RSA key.
    Rsa(rsa::RsaKey),
    /// An ECDSA key.
    Ecdsa(ecdsa::EcdsaKey),
    /// An Ed25519 key.
    Ed25519(ed25519::Ed25519Key),
    /// An SM2 key.
    Sm2(sm2::Sm2Key),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, <redacted>)", self.kind())
    }
}

impl PrivateKey {
    /// A new key of `kind`, as the bytes [`PrivateKey::from_stored`]
    /// reads (PKCS#8 DER; SM2's scalar). RSA 4096 takes about a second.
    pub fn generate(kind: KeyKind) -> Result<SecretBytes, AsymmetricError> {
        match kind {
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => rsa::generate(kind),
            KeyKind::P256 | KeyKind::P384 | KeyKind::Secp256k1 => ecdsa::generate(kind),
            KeyKind::Ed25519 => ed25519::generate(),
            KeyKind::Sm2 => sm2::generate(),
        }
    }

    /// Parses stored material of `kind`.
    pub fn from_stored(kind: KeyKind, stored: &[u8]) -> Result<Self, AsymmetricError> {
        Ok(match kind {
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => {
                PrivateKey::Rsa(rsa::RsaKey::from_pkcs8(kind, stored)?)
            }
            KeyKind::P256 | KeyKind::P384 | KeyKind::Secp256k1 => {
                PrivateKey::Ecdsa(ecdsa::EcdsaKey::from_pkcs8(kind, stored)?)
            }
            KeyKind::Ed25519 => PrivateKey::Ed25519(ed25519::Ed25519Key::from_pkcs8(stored)?),
            KeyKind::Sm2 => PrivateKey::Sm2(sm2::Sm2Key::from_scalar(stored)?),
        })
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        match self {
            PrivateKey::Rsa(k) => k.kind(),
            PrivateKey::Ecdsa(k) => k.kind(),
            PrivateKey::Ed25519(_) => KeyKind::Ed25519,
            PrivateKey::Sm2(_) => KeyKind::Sm2,
        }
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        match self {
            PrivateKey::Rsa(k) => k.public_key_der(),
            PrivateKey::Ecdsa(k) => k.public_key_der(),
            PrivateKey::Ed25519(k) => k.public_key_der(),
            PrivateKey::Sm2(k) => k.public_key_der(),
        }
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`, CRLF line
    /// ends as Huawei's example shows).
    pub fn public_key_pem(&self) -> String {
        pem("PUBLIC KEY", &self.public_key_der())
    }

    /// Signs `message` with `scheme`.
    pub fn sign(&self, scheme: SigningScheme, message: Message<'_>) -> Result<Vec<u8>, AsymmetricError> {
        check_digest(scheme, message)?;
        match self {
            PrivateKey::Rsa(k) => k.sign(scheme, message),
            PrivateKey::Ecdsa(k) => k.sign(scheme, message),
            PrivateKey::Ed25519(k) => k.sign(scheme, message),
            PrivateKey::Sm2(k) => k.sign(scheme, message),
        }
    }

    /// Whether `signature` is this key's signature of `message` under
    /// `scheme`. A malformed or wrong signature is `Ok(false)`; only a
    /// scheme that does not fit or a bad digest length is an error.
    pub fn verify(
        &self, scheme: SigningScheme, message: Message<'_>, signature: &[u8],
    ) -> Result<bool, AsymmetricError> {
        check_digest(scheme, message)?;
        match self {
            PrivateKey::Rsa(k) => k.verify(scheme, message, signature),
            PrivateKey::Ecdsa(k) => k.verify(scheme, message, signature),
            PrivateKey::Ed25519(k) => k.verify(scheme, message, signature),
            PrivateKey::Sm2(k) => k.verify(scheme, message, signature),
        }
    }

    /// The longest plaintext `scheme` encrypts under this key.
    pub fn max_plaintext(&self, scheme: EncryptionScheme) -> Result<usize, AsymmetricError> {
        match self {
            PrivateKey::Rsa(k) => k.max_plaintext(scheme),
            PrivateKey::Sm2(_) if scheme == EncryptionScheme::Sm2 => Ok(sm2::MAX_PLAINTEXT),
            _ => Err(AsymmetricError::WrongScheme),
        }
    }

    /// Encrypts `plaintext` to this key's public key.
    pub fn encrypt(&self, scheme: EncryptionScheme, plaintext: &[u8]) -> Result<Vec<u8>, AsymmetricError> {
        if plaintext.len() > self.max_plaintext(scheme)? {
            return Err(AsymmetricError::PlaintextTooLong);
        }
        match self {
            PrivateKey::Rsa(k) => k.encrypt(scheme, plaintext),
            PrivateKey::Sm2(k) => k.encrypt(plaintext),
            _ => Err(AsymmetricError::WrongScheme),
        }
    }

    /// Decrypts what [`PrivateKey::encrypt`] (or any implementation of the
    /// scheme) made for this key.
    pub fn decrypt(&self, scheme: EncryptionScheme, ciphertext: &[u8]) -> Result<SecretBytes, AsymmetricError> {
        self.max_plaintext(scheme)?;
        match self {
            PrivateKey::Rsa(k) => k.decrypt(scheme, ciphertext),
            PrivateKey::Sm2(k) => k.decrypt(ciphertext),
            _ => Err(AsymmetricError::WrongScheme),
        }
    }
}

/// A digest must have its hash's length, and pure Ed25519 takes none.
fn check_digest(scheme: SigningScheme, message: Message<'_>) -> Result<(), AsymmetricError> {
    match (message, scheme.hash()) {
        (Message::Raw(_), _) => Ok(()),
        (Message::Digest(_), None) => Err(AsymmetricError::DigestNotAllowed),
        (Message::Digest(d), Some(hash)) if d.len() == hash.output_len() => Ok(()),
        (Message::Digest(_), Some(_)) => Err(AsymmetricError::DigestLength),
    }
}

/// The digest a scheme signs: the caller's, or the message's under `hash`.
fn digest_of(hash: Hash, message: Message<'_>) -> Vec<u8> {
    match message {
        Message::Digest(d) => d.to_vec(),
        Message::Raw(m) => hash.digest(m),
    }
}

/// RFC 7468 text encoding: Base64 in 64-character lines, CRLF.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\r\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("Base64 is ASCII"));
        out.push_str("\r\n");
    }
    out.push_str(&format!("-----END {label}-----\r\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind generates, parses back, signs with each of its schemes
    /// (raw and digest), verifies its own signature and refuses a wrong
    /// one, another key's, and schemes of other kinds.
    #[test]
    fn every_kind_signs_and_verifies_with_its_schemes_only() {
        use Hash::*;
        use SigningScheme::*;
        let all = [
            RsaPss(Sha256),
            RsaPss(Sha384),
            RsaPss(Sha512),
            RsaPkcs1(Sha256),
            RsaPkcs1(Sha384),
            RsaPkcs1(Sha512),
            Ecdsa(Sha256),
            Ecdsa(Sha384),
            Ecdsa(Sha512),
            Sm2Sm3,
            Ed25519,
            Ed25519Ph,
        ];
        for kind in [KeyKind::Rsa2048, KeyKind::P256, KeyKind::P384, KeyKind::Secp256k1, KeyKind::Sm2, KeyKind::Ed25519]
        {
            let stored = PrivateKey::generate(kind).unwrap();
            let key = PrivateKey::from_stored(kind, stored.expose()).unwrap();
            let other = PrivateKey::from_stored(kind, PrivateKey::generate(kind).unwrap().expose()).unwrap();
            assert_eq!(key.kind(), kind);
            assert!(key.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----\r\n"));
            let mut fitting = 0;
            for scheme in all {
                let message = Message::Raw(b"release-1.2.3.tar.gz");
                match key.sign(scheme, message) {
                    Err(AsymmetricError::WrongScheme) => {
                        assert_eq!(key.verify(scheme, message, b"x"), Err(AsymmetricError::WrongScheme));
                        continue;
                    }
                    Err(e) => panic!("{kind:?} {scheme:?}: {e}"),
                    Ok(sig) => {
                        fitting += 1;
                        assert_eq!(key.verify(scheme, message, &sig), Ok(true), "{kind:?} {scheme:?}");
                        assert_eq!(key.verify(scheme, Message::Raw(b"other"), &sig), Ok(false));
                        assert_eq!(other.verify(scheme, message, &sig), Ok(false), "another key's signature");
                        assert_eq!(key.verify(scheme, message, b"not a signature"), Ok(false));
                        if let Some(hash) = scheme.hash().filter(|_| scheme != Sm2Sm3) {
                            let digest = hash.digest(b"release-1.2.3.tar.gz");
                            let by_digest = key.sign(scheme, Message::Digest(&digest)).unwrap();
                            assert_eq!(key.verify(scheme, message, &by_digest), Ok(true), "{kind:?} {scheme:?}");
                            assert_eq!(
                                key.sign(scheme, Message::Digest(&digest[1..])).unwrap_err(),
                                AsymmetricError::DigestLength
                            );
                        }
                    }
                }
            }
            assert!(fitting > 0, "{kind:?} has a scheme");
        }
    }

    #[test]
    fn rsa_and_sm2_encrypt_within_their_limits() {
        let rsa = PrivateKey::from_stored(KeyKind::Rsa2048, PrivateKey::generate(KeyKind::Rsa2048).unwrap().expose())
            .unwrap();
        assert_eq!(rsa.max_plaintext(EncryptionScheme::RsaOaepSha256), Ok(190));
        assert_eq!(rsa.max_plaintext(EncryptionScheme::RsaOaepSha1), Ok(214));
        for scheme in [EncryptionScheme::RsaOaepSha256, EncryptionScheme::RsaOaepSha1] {
            let ct = rsa.encrypt(scheme, b"card=4111").unwrap();
            assert_eq!(rsa.decrypt(scheme, &ct).unwrap().expose(), b"card=4111");
            let mut bad = ct.clone();
            bad[10] ^= 1;
            assert_eq!(rsa.decrypt(scheme, &bad).unwrap_err(), AsymmetricError::DecryptFailed);
        }
        assert_eq!(
            rsa.encrypt(EncryptionScheme::RsaOaepSha256, &[1; 191]).unwrap_err(),
            AsymmetricError::PlaintextTooLong
        );
        assert_eq!(rsa.encrypt(EncryptionScheme::Sm2, b"x").unwrap_err(), AsymmetricError::WrongScheme);
        let sm2 = PrivateKey::from_stored(KeyKind::Sm2, PrivateKey::generate(KeyKind::Sm2).unwrap().expose()).unwrap();
        let ct = sm2.encrypt(EncryptionScheme::Sm2, b"card=4111").unwrap();
        assert_eq!(sm2.decrypt(EncryptionScheme::Sm2, &ct).unwrap().expose(), b"card=4111");
        let mut bad = ct.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(sm2.decrypt(EncryptionScheme::Sm2, &bad).unwrap_err(), AsymmetricError::DecryptFailed);
        let ec = PrivateKey::from_stored(KeyKind::P256, PrivateKey::generate(KeyKind::P256).unwrap().expose()).unwrap();
        assert_eq!(ec.encrypt(EncryptionScheme::RsaOaepSha256, b"x").unwrap_err(), AsymmetricError::WrongScheme);
    }

    #[test]
    fn pem_lines_are_64_characters_with_crlf() {
        let text = pem("PUBLIC KEY", &[0u8; 100]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!((lines[2].len(), lines[3].len()), (64, 8), "136 Base64 characters");
        assert_eq!(lines[4], "-----END PUBLIC KEY-----");
        assert!(!text.replace("\r\n", "").contains('\n'));
    }
}
