//! The canonical request, from any method, path, query, headers, signed
//! header list and body: it never panics, and its size stays within a small
//! multiple of what the client sent (issue #15, finding 2: before, one
//! header listed many times made it grow without bound).
#![no_main]

use arbitrary::Arbitrary;
use gateway::signing::{Authorization, RawRequest, canonical_request};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, &'a [u8])>,
    signed_headers: &'a str,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let mut headers = HeaderMap::new();
    let mut header_bytes = 0;
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            header_bytes += name.as_str().len() + value.len();
            headers.append(name, value);
        }
    }
    let header = format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders={}, Signature=00", input.signed_headers);
    let Ok(auth) = Authorization::parse(&header) else { return };
    let request =
        RawRequest { method: input.method, path: input.path, query: input.query, headers: &headers, body: input.body };
    if let Ok(text) = canonical_request(&request, &auth.signed_headers) {
        // Percent-encoding at most triples the path and query; each signed
        // header contributes its name twice and one value once.
        let names: usize = auth.signed_headers.iter().map(|h| h.len() + 1).sum();
        let bound = input.method.len() + 3 * (input.path.len() + input.query.len()) + header_bytes + 2 * names + 128;
        assert!(text.len() <= bound, "{} > {bound}", text.len());
    }
});
