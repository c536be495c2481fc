//! The JSON body helpers on any bytes: parsing and every typed accessor,
//! through nested objects, never panic; and the pre-parse scan that bounds
//! a body (issue #40) is an upper bound of what serde_json builds from
//! every text it parses (values and depth), so no body builds a bigger tree
//! than its scan admitted.
#![no_main]

use gateway::json::{JsonBody, MAX_DEPTH, scan};
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

/// Values and depth of a parsed tree.
fn shape(value: &serde_json::Value) -> (usize, usize) {
    use serde_json::Value;
    let children: Vec<(usize, usize)> = match value {
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::Object(members) => members.values().map(shape).collect(),
        _ => return (1, 0),
    };
    let values = 1 + children.iter().map(|c| c.0).sum::<usize>();
    (values, 1 + children.iter().map(|c| c.1).max().unwrap_or(0))
}

fuzz_target!(|input: &[u8]| {
    let _ = gateway::json::cost(input);
    if let Ok(tree) = serde_json::from_slice::<serde_json::Value>(input) {
        let (values, depth) = shape(&tree);
        let scanned = scan(input).expect("a text serde_json parses scans");
        // An upper bound, not an equality: a repeated object key keeps one
        // value in the tree and all of them in the text (the fuzzer found
        // `{"a":"x","a":"y"}`).
        if depth <= MAX_DEPTH {
            assert!(scanned.values >= values && scanned.depth >= depth, "scan under the parser: {scanned:?}");
        } else {
            assert!(scanned.depth > MAX_DEPTH, "a body too deep scanned as shallow");
        }
    }
    if let Ok(body) = JsonBody::parse(&HeaderMap::new(), input) {
        read(&body, 0);
    }
});
