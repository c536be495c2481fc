//! Both ciphertext formats kms-service reads (data keys: formats 1 and 3;
//! encrypt-data: formats 2 and 4). Arbitrary blobs never panic and never
//! open; sealing any plaintext and AAD opens back to it, only as its own
//! kind, only with its AAD, and not after any single-byte change.
#![no_main]

use kms_service::{
    domain::KeyId,
    envelope::{Header, SecretBytes, data_blob, datakey_blob},
};
use libfuzzer_sys::fuzz_target;

const PROJECT: &str = "0123456789abcdef0123456789abcdef";

fuzz_target!(|input: &[u8]| {
    let material = SecretBytes::new(vec![0x42; 32]);
    let Some((&mode, rest)) = input.split_first() else { return };
    if mode & 1 == 0 {
        // Untrusted bytes: header parsing is total and nothing opens.
        let _ = datakey_blob::parse_header(rest);
        let _ = data_blob::parse_header(rest);
        assert!(datakey_blob::open(&material, rest, PROJECT, b"").is_err());
        assert!(data_blob::open(&material, rest, PROJECT, b"").is_err());
        return;
    }
    let split = usize::from(mode >> 1).min(rest.len());
    let (aad, plaintext) = rest.split_at(split);
    let header = Header { key_id: KeyId(uuid_from(plaintext)), version: i32::from(mode) };
    let key_blob = datakey_blob::seal(&material, header, PROJECT, aad, plaintext);
    let data_blob = data_blob::seal(&material, header, PROJECT, aad, plaintext);
    assert_eq!(datakey_blob::parse_header(&key_blob).unwrap(), header);
    assert_eq!(data_blob::parse_header(&data_blob).unwrap(), header);
    assert_eq!(datakey_blob::open(&material, &key_blob, PROJECT, aad).unwrap().expose(), plaintext);
    assert_eq!(data_blob::open(&material, &data_blob, PROJECT, aad).unwrap().expose(), plaintext);
    assert!(data_blob::open(&material, &key_blob, PROJECT, aad).is_err());
    assert!(datakey_blob::open(&material, &data_blob, PROJECT, aad).is_err());
    let position = plaintext.len() % key_blob.len();
    let mut tampered = key_blob.clone();
    tampered[position] ^= 0x80;
    assert!(datakey_blob::open(&material, &tampered, PROJECT, aad).is_err());
});

/// A key id that varies with the input, so headers are not all alike.
fn uuid_from(bytes: &[u8]) -> uuid::Uuid {
    let mut id = [0u8; 16];
    for (i, b) in bytes.iter().take(16).enumerate() {
        id[i] = *b;
    }
    uuid::Uuid::from_bytes(id)
}
