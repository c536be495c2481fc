//! Why the domain refuses a request.

/// Why a request is refused by a rule of the domain: a malformed field, or
/// a key whose spec or state does not allow the operation. Messages never
/// contain key material, plaintext or AAD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A required request field is absent.
    #[error("missing required parameter `{0}`")]
    MissingParameter(&'static str),
    /// A field has a value outside its documented domain.
    #[error("invalid parameter `{0}`")]
    InvalidParameter(&'static str),
    /// `key_id` is not a lower-case UUID.
    #[error("invalid key id")]
    InvalidKeyId,
    /// `sequence` is not 36 characters.
    #[error("invalid sequence number")]
    InvalidSequence,
    /// The key is disabled.
    #[error("the key is disabled")]
    KeyDisabled,
    /// The key is scheduled for deletion.
    #[error("the key is pending deletion")]
    KeyPendingDeletion,
    /// The key has no material yet (external origin).
    #[error("the key is pending import of its material")]
    KeyPendingImport,
    /// Operation forbidden on a service default key.
    #[error("operation not allowed on a default master key")]
    DefaultKeyForbidden,
    /// Alias empty, too long, with bad characters, or ending in `/default`.
    #[error("invalid key alias")]
    InvalidAlias,
    /// Description longer than 255 characters.
    #[error("invalid key description")]
    InvalidDescription,
    /// Unknown or unsupported key spec.
    #[error("invalid or unsupported key spec")]
    InvalidKeySpec,
    /// EC keys cannot encrypt.
    #[error("EC keys cannot encrypt or decrypt")]
    EcCannotEncrypt,
    /// Symmetric keys cannot sign.
    #[error("symmetric keys cannot sign or verify")]
    SymmetricCannotSign,
    /// Page size out of range.
    #[error("invalid limit")]
    InvalidLimit,
    /// Page marker invalid.
    #[error("invalid marker")]
    InvalidMarker,
    /// Data-key length outside 8..=8192 bits.
    #[error("data key length must be 8 to 8192 bits")]
    DatakeyLengthOutOfRange,
    /// Data-key length not a whole number of bytes.
    #[error("data key length must be a multiple of 8 bits")]
    DatakeyLengthNotByteAligned,
    /// Operation needs a symmetric key.
    #[error("asymmetric keys do not support this operation")]
    AsymmetricUnsupported,
    /// Operation not available for HMAC keys.
    #[error("HMAC keys do not support this operation")]
    HmacUnsupported,
    /// Ciphertext malformed, tampered, for another key, or AAD mismatch.
    #[error("invalid ciphertext")]
    InvalidCiphertext,
    /// Decrypted data key length differs from the expected length.
    #[error("decrypted data key length does not match")]
    CiphertextLengthMismatch,
    /// enable-key on a key that is not disabled.
    #[error("the key is not disabled")]
    KeyNotDisabled,
    /// disable-key on a key that is not enabled.
    #[error("the key is not enabled")]
    KeyNotEnabled,
    /// pending_days outside 7..=1096.
    #[error("pending_days must be between 7 and 1096")]
    InvalidPendingDays,
    /// schedule-key-deletion on a key already pending deletion.
    #[error("the key is already pending deletion")]
    KeyAlreadyPendingDeletion,
    /// cancel-key-deletion on a key that is not pending deletion.
    #[error("the key is not pending deletion")]
    KeyNotPendingDeletion,
    /// encrypt-datakey plaintext is not hex or is empty.
    #[error("invalid data key plaintext")]
    InvalidDatakeyPlaintext,
    /// Data-key plaintext length outside 1..=1024 bytes.
    #[error("data key plaintext length must be 1 to 1024 bytes")]
    InvalidDatakeyPlainLength,
    /// The digest appended to a data key does not match it.
    #[error("the data key digest does not match")]
    DatakeyDigestMismatch,
    /// plaintext length differs from data key length + 32.
    #[error("plaintext length does not match the data key length")]
    DatakeyPlaintextLengthMismatch,
    /// datakey_cipher_length outside 1..=1024 bytes.
    #[error("data key cipher length must be 1 to 1024 bytes")]
    InvalidDatakeyCipherLength,
    /// An asymmetric algorithm asked of a symmetric key.
    #[error("the symmetric key does not support this encryption algorithm")]
    SymmetricAlgorithmMismatch,
    /// Encryption asked of a SIGN_VERIFY key.
    #[error("the key is for signing and verifying")]
    SignOnlyKey,
    /// random_data_length outside 8..=8192 bits.
    #[error("random data length must be 8 to 8192 bits")]
    RandomLengthOutOfRange,
    /// random_data_length not a whole number of bytes.
    #[error("random data length must be a multiple of 8 bits")]
    RandomLengthNotMultipleOf8,
    /// Keys with imported material are not rotated.
    #[error("external keys cannot be rotated")]
    ExternalCannotRotate,
    /// RSA keys are not rotated.
    #[error("RSA keys cannot be rotated")]
    RsaCannotRotate,
    /// enable-key-rotation when it is on.
    #[error("key rotation is not disabled")]
    RotationNotDisabled,
    /// disable-key-rotation or a new interval when rotation is off.
    #[error("key rotation is not enabled")]
    RotationNotEnabled,
    /// rotation_interval outside 30..=365 days.
    #[error("rotation_interval must be 30 to 365 days")]
    InvalidRotationInterval,
    /// A grant's operations are only create-grant.
    #[error("a grant needs an operation besides create-grant")]
    GrantOnlyCreateGrant,
    /// A grantee or retiring principal is malformed.
    #[error("invalid principal")]
    InvalidPrincipal,
    /// The key has the most grants it may have.
    #[error("the key has the maximum number of grants")]
    GrantQuota,
    /// The project has the most grants it may have.
    #[error("the project has the maximum number of grants")]
    GrantProjectQuota,
    /// The grant id is malformed or unknown.
    #[error("invalid grant id")]
    InvalidGrantId,
    /// The grant belongs to another key.
    #[error("the grant does not belong to this key")]
    GrantKeyMismatch,
    /// The caller may not do this to the grant.
    #[error("no access permission")]
    NoPermission,
    /// The operation needs an external key.
    #[error("external keys required")]
    ExternalKeyRequired,
    /// The key is not waiting for its material.
    #[error("the key is not pending import")]
    KeyNotPendingImport,
    /// The import token's time is up.
    #[error("the import token expired")]
    ImportTokenExpired,
    /// The material's expiry is not in the future.
    #[error("the expiration time must be in the future")]
    ExpirationNotFuture,
    /// The import token was issued for another key.
    #[error("the import token belongs to another key")]
    ImportTokenKeyMismatch,
    /// The unwrapped material is not 32 bytes.
    #[error("the imported material must be 32 bytes")]
    ImportMaterialLength,
    /// The import token does not open.
    #[error("the import token is invalid")]
    ImportTokenInvalid,
    /// Material other than the key's earlier material.
    #[error("only the key's earlier material may be imported again")]
    DifferentMaterial,
    /// delete-imported-key-material in a state without material.
    #[error("the key material is not enabled or disabled")]
    MaterialNotDeletable,
    /// The wrapped material does not unwrap with the token's key.
    #[error("the wrapped material does not decrypt")]
    UnwrapFailed,
    /// A tag request broke a tag rule.
    #[error("tag request refused: {0}")]
    Tag(common::tags::TagFault),
    /// A resource query named a `matches` key other than `resource_name`.
    #[error("invalid match key")]
    InvalidMatchKey,
    /// The alias does not exist in the project.
    #[error("the alias does not exist")]
    AliasNotFound,
    /// The key has the most aliases it may have.
    #[error("the key has the maximum number of aliases")]
    AliasLimit,
    /// Operation not available for AES and SM4 keys.
    #[error("the symmetric key does not support this operation")]
    SymmetricUnsupported,
    /// Signing asked of an ENCRYPT_DECRYPT key.
    #[error("the key is for encrypting and decrypting")]
    EncryptOnlyKey,
    /// The signing algorithm does not go with the key's spec.
    #[error("the key does not support this signing algorithm")]
    SigningAlgorithmMismatch,
    /// A DIGEST message whose length is not the algorithm's hash length.
    #[error("the digest length does not match the signing algorithm's hash")]
    DigestLengthMismatch,
    /// The encryption algorithm does not go with the asymmetric key.
    #[error("the asymmetric key does not support this encryption algorithm")]
    AsymmetricAlgorithmMismatch,
    /// The plaintext is longer than the key and algorithm encrypt.
    #[error("the plaintext is too long for the key")]
    PlaintextTooLong,
    /// An asymmetric ciphertext that does not decrypt.
    #[error("the ciphertext does not decrypt with the private key")]
    PrivateKeyDecryptFailed,
    /// The scheduled rotation is not due (another replica did it): the
    /// background task's own outcome, never a caller's.
    #[error("the key's rotation is not due")]
    RotationNotDue,
}
