//! The secret backup blob (upload-secret-blob): the outer envelope on any
//! text, and the opened payload on any bytes, since a tenant can seal a
//! payload of its own under a key it may use (issue #15, finding 9). Never
//! a panic; an accepted payload always passes the create rules.
#![no_main]

use csms_service::backup::{SealedBackup, check_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = SealedBackup::parse(text);
        // The same bytes behind the prefix, so the fuzzer reaches the
        // Base64 and JSON layers without having to guess the prefix.
        let _ = SealedBackup::parse(&format!("opendew-secret-backup-v1:{text}"));
    }
    if let Ok((name, versions)) = check_payload(input) {
        assert!(!name.is_empty() && name.len() <= 64);
        assert!((1..=20).contains(&versions));
    }
});
