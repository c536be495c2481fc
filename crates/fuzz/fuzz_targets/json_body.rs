//! The JSON body helpers on any bytes: parsing and every typed accessor,
//! through nested objects, never panic.
#![no_main]

use gateway::json::JsonBody;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;

/// Field names the routes read, plus the empty name.
const NAMES: [&str; 8] = ["key_id", "plain_text", "tags", "key", "value", "action", "matches", ""];

fn read(body: &JsonBody, depth: usize) {
    for name in NAMES {
        let _ = body.string(name);
        let _ = body.strict_string(name);
        let _ = body.bool(name);
        let _ = body.int(name);
        let _ = body.string_list(name);
        let _ = body.has(name);
        if depth < 4 {
            if let Ok(Some(inner)) = body.object(name) {
                read(inner, depth + 1);
            }
            if let Ok(Some(items)) = body.objects(name) {
                for item in items.into_iter().take(8) {
                    read(item, depth + 1);
                }
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    if let Ok(body) = JsonBody::parse(&HeaderMap::new(), input) {
        read(&body, 0);
    }
});
