//! The `Authorization` header parser, on any text: it never panics, and
//! whatever it accepts names at most 64 distinct signed headers (the bound
//! that keeps the canonical request within the size of the headers).
#![no_main]

use gateway::signing::{Authorization, MAX_SIGNED_HEADERS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &str| {
    if let Ok(auth) = Authorization::parse(header) {
        assert!(auth.signed_headers.len() <= MAX_SIGNED_HEADERS);
        let distinct: std::collections::HashSet<_> = auth.signed_headers.iter().collect();
        assert_eq!(distinct.len(), auth.signed_headers.len());
        assert!(!auth.access_key.is_empty() && !auth.signature.is_empty());
        assert!(auth.access_key.len() + auth.signature.len() <= header.len());
    }
});
