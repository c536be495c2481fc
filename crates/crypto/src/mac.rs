//! HMAC (RFC 2104) with SHA-256, SHA-384, SHA-512 or SM3, on RustCrypto's
//! `hmac`. Verification compares in constant time (`verify_slice`).

use hmac::{Hmac, Mac};

use crate::asymmetric::Hash;

/// The MAC of `message` under `key` with `hash`.
pub fn compute(hash: Hash, key: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    match hash {
        Hash::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
        Hash::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
        Hash::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
        Hash::Sm3 => run::<Hmac<sm3::Sm3>>(key, message),
    }
}

/// Whether `tag` is the MAC of `message` under `key`, compared in constant
/// time; a tag of the wrong length is simply wrong.
pub fn verify(hash: Hash, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }
    match hash {
        Hash::Sha256 => run::<Hmac<sha2::Sha256>>(key, message, tag),
        Hash::Sha384 => run::<Hmac<sha2::Sha384>>(key, message, tag),
        Hash::Sha512 => run::<Hmac<sha2::Sha512>>(key, message, tag),
        Hash::Sm3 => run::<Hmac<sm3::Sm3>>(key, message, tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe", "what do ya want for nothing?").
    #[test]
    fn rfc_4231_case_2() {
        let (key, data) = (b"Jefe", b"what do ya want for nothing?");
        let expect = [
            (Hash::Sha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (
                Hash::Sha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                Hash::Sha512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (hash, mac) in expect {
            assert_eq!(hex::encode(compute(hash, key, data)), mac, "{hash:?}");
            assert!(verify(hash, key, data, &hex::decode(mac).unwrap()));
            let mut wrong = hex::decode(mac).unwrap();
            wrong[0] ^= 1;
            assert!(!verify(hash, key, data, &wrong));
            assert!(!verify(hash, key, data, &wrong[1..]));
        }
    }

    /// SM3 (GB/T 32905 A.1, "abc") and HMAC-SM3 over it: the hash matches
    /// the standard; the MAC is RFC 2104 over it (checked against Python's
    /// `hmac` with gmssl's SM3 in the SDK suite).
    #[test]
    fn sm3_matches_gbt_32905() {
        assert_eq!(
            hex::encode(Hash::Sm3.digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(compute(Hash::Sm3, b"key", b"abc").len(), 32);
    }
}
