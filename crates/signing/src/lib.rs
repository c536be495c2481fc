//! Verification of Huawei Cloud AK/SK request signatures: `SDK-HMAC-SHA256`
//! (the SDKs' default, auth.md §1), `SDK-HMAC-SM3` and the derived-key
//! `V11-HMAC-SHA256` (auth.md §1.10).
//!
//! The canonical request is rebuilt from the request exactly as received:
//! raw path and query, the headers the client says it signed, and the raw
//! body bytes. Nothing is re-serialised before hashing.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The algorithm name of the default SDK signer.
pub const SDK_HMAC_SHA256: &str = "SDK-HMAC-SHA256";
/// SHA-256 of the empty string, in hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A signing algorithm the official SDK can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    /// `SDK-HMAC-SHA256`: HMAC-SHA256 keyed by the SK.
    HmacSha256,
    /// `SDK-HMAC-SM3`: SM3 everywhere SHA-256 is used.
    HmacSm3,
    /// `V11-HMAC-SHA256`: HMAC-SHA256 keyed by a key derived from AK, SK and
    /// `info` (`YYYYMMDD/region/service`).
    V11 {
        /// The credential scope.
        info: String,
    },
}

impl Algorithm {
    fn name(&self) -> &'static str {
        match self {
            Self::HmacSha256 => SDK_HMAC_SHA256,
            Self::HmacSm3 => "SDK-HMAC-SM3",
            Self::V11 { .. } => "V11-HMAC-SHA256",
        }
    }

    /// Lower-case hex digest of `bytes` with this algorithm's hash.
    fn digest_hex(&self, bytes: &[u8]) -> String {
        match self {
            Self::HmacSm3 => hex::encode(sm3::Sm3::digest(bytes)),
            Self::HmacSha256 | Self::V11 { .. } => hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The header that may carry a literal payload hash.
    fn content_hash_header(&self) -> &'static str {
        match self {
            Self::HmacSm3 => "x-sdk-content-sm3",
            Self::HmacSha256 | Self::V11 { .. } => "x-sdk-content-sha256",
        }
    }
}

/// RFC 3986 unreserved characters stay; everything else is `%XY`.
const ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The algorithm named by the first word.
    pub algorithm: Algorithm,
    /// The access key id.
    pub access_key: String,
    /// Lower-case header names, in the client's order.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Why a signature was refused. The messages go into 401 bodies, so they
/// never contain the SK or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Header shape wrong or algorithm unsupported.
    #[error("malformed Authorization header")]
    Malformed,
    /// `X-Sdk-Date` missing, unsigned or unparsable.
    #[error("X-Sdk-Date is missing, unsigned or malformed")]
    BadDate,
    /// `X-Sdk-Date` more than 15 minutes away from the server clock.
    #[error("signature expired")]
    Expired,
    /// A header listed in SignedHeaders is absent.
    #[error("signed header {0} is missing")]
    MissingHeader(String),
    /// The path or query is not valid percent-encoded UTF-8.
    #[error("request URI cannot be canonicalised")]
    BadUri,
    /// `UNSIGNED-PAYLOAD` is refused by policy: the body must be signed.
    #[error("unsigned payloads are not accepted")]
    UnsignedPayload,
    /// The signature does not match.
    #[error("verify aksk signature fail")]
    Mismatch,
}

/// Most headers a signature may cover (the official SDKs sign five or six;
/// the Terraform provider every header it sends).
pub const MAX_SIGNED_HEADERS: usize = 64;

impl Authorization {
    /// Parses `ALG Access=AK, SignedHeaders=a;b, Signature=hex` leniently.
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let (name, rest) = header.trim().split_once(' ').ok_or(SignatureError::Malformed)?;
        let (mut access, mut credential, mut signed, mut signature) = (None, None, None, None);
        for field in rest.split(',') {
            let (key, value) = field.trim().split_once('=').ok_or(SignatureError::Malformed)?;
            match key.trim() {
                "Access" => access = Some(value.trim()),
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => {}
            }
        }
        let (algorithm, access) = match name {
            SDK_HMAC_SHA256 => (Algorithm::HmacSha256, access),
            "SDK-HMAC-SM3" => (Algorithm::HmacSm3, access),
            "V11-HMAC-SHA256" => {
                let (ak, info) = credential.and_then(|c| c.split_once('/')).ok_or(SignatureError::Malformed)?;
                (Algorithm::V11 { info: info.to_owned() }, Some(ak))
            }
            _ => return Err(SignatureError::Malformed),
        };
        let (Some(access), Some(signed), Some(signature)) = (access, signed, signature) else {
            return Err(SignatureError::Malformed);
        };
        if access.is_empty() || signed.is_empty() || signature.is_empty() {
            return Err(SignatureError::Malformed);
        }
        // Each signed header's value goes into the canonical request once per
        // listing, before the signature is checked: a name listed twice (or
        // thousands of times) would make one request with a known AK build
        // gigabytes (issue #15, finding 2). Distinct names, and few of them,
        // keep the canonical request within the size of the headers.
        let signed_headers: Vec<String> = signed.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
        let distinct: std::collections::HashSet<&str> = signed_headers.iter().map(String::as_str).collect();
        if signed_headers.len() > MAX_SIGNED_HEADERS || distinct.len() != signed_headers.len() {
            return Err(SignatureError::Malformed);
        }
        Ok(Self { algorithm, access_key: access.to_owned(), signed_headers, signature: signature.to_ascii_lowercase() })
    }
}

/// The request as it arrived, for canonicalisation.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// Path before `?`, still percent-encoded.
    pub path: &'a str,
    /// Query after `?`, still percent-encoded; empty when none.
    pub query: &'a str,
    /// All received headers.
    pub headers: &'a HeaderMap,
    /// The body bytes exactly as received.
    pub body: &'a [u8],
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE_SET).to_string()
}

fn decode(s: &str) -> Result<String, SignatureError> {
    percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|_| SignatureError::BadUri)
}

/// CanonicalURI: decode, split on `/`, encode each segment, always end in `/`.
pub fn canonical_uri(path: &str) -> Result<String, SignatureError> {
    let decoded = decode(path)?;
    let mut out = decoded.split('/').map(encode).collect::<Vec<_>>().join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// CanonicalQuery: decoded pairs sorted by name then value, re-encoded.
pub fn canonical_query(query: &str) -> Result<String, SignatureError> {
    let mut pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect::<Result<Vec<_>, SignatureError>>()?;
    pairs.sort();
    Ok(pairs.iter().map(|(n, v)| format!("{}={}", encode(n), encode(v))).collect::<Vec<_>>().join("&"))
}

/// The full canonical request text for `SDK-HMAC-SHA256`.
pub fn canonical_request(req: &RawRequest<'_>, signed_headers: &[String]) -> Result<String, SignatureError> {
    canonical_request_for(&Algorithm::HmacSha256, req, signed_headers)
}

/// The full canonical request text for `algorithm`.
pub fn canonical_request_for(
    algorithm: &Algorithm, req: &RawRequest<'_>, signed_headers: &[String],
) -> Result<String, SignatureError> {
    let mut headers = String::new();
    for name in signed_headers {
        let value = req
            .headers
            .get(name.as_str())
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .ok_or_else(|| SignatureError::MissingHeader(name.clone()))?;
        headers.push_str(name);
        headers.push(':');
        headers.push_str(value.trim());
        headers.push('\n');
    }
    let payload_hash = if req.headers.contains_key(algorithm.content_hash_header()) && !req.body.is_empty() {
        return Err(SignatureError::UnsignedPayload);
    } else {
        algorithm.digest_hex(req.body)
    };
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path)?,
        canonical_query(req.query)?,
        headers,
        signed_headers.join(";"),
        payload_hash
    ))
}

/// The string to sign for `SDK-HMAC-SHA256`.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!("{SDK_HMAC_SHA256}\n{sdk_date}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

/// Hex HMAC-SHA256 of the string to sign, keyed by the SK.
pub fn sign(secret_key: &[u8], string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret_key).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The string to sign for any algorithm.
pub fn string_to_sign_for(algorithm: &Algorithm, sdk_date: &str, canonical_request: &str) -> String {
    let hash = algorithm.digest_hex(canonical_request.as_bytes());
    match algorithm {
        Algorithm::V11 { info } => format!("{}\n{sdk_date}\n{info}\n{hash}", algorithm.name()),
        _ => format!("{}\n{sdk_date}\n{hash}", algorithm.name()),
    }
}

/// The V11 signing key: the hex text of HKDF-SHA256(salt = AK, ikm = SK,
/// info), one block of 32 bytes.
pub fn v11_signing_key(access_key: &str, secret_key: &[u8], info: &str) -> String {
    let mut extract = <Hmac<Sha256> as Mac>::new_from_slice(access_key.as_bytes()).expect("any key length");
    extract.update(secret_key);
    let prk = extract.finalize().into_bytes();
    let mut expand = <Hmac<Sha256> as Mac>::new_from_slice(&prk).expect("any key length");
    expand.update(info.as_bytes());
    expand.update(&[1]);
    hex::encode(expand.finalize().into_bytes())
}

/// The hex signature of a string to sign under `algorithm`.
pub fn sign_for(algorithm: &Algorithm, access_key: &str, secret_key: &[u8], string_to_sign: &str) -> String {
    match algorithm {
        Algorithm::HmacSha256 => sign(secret_key, string_to_sign),
        Algorithm::HmacSm3 => {
            let mut mac = <Hmac<sm3::Sm3> as Mac>::new_from_slice(secret_key).expect("any key length");
            mac.update(string_to_sign.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Algorithm::V11 { info } => {
            let key = zeroize::Zeroizing::new(v11_signing_key(access_key, secret_key, info));
            sign(key.as_bytes(), string_to_sign)
        }
    }
}

/// Maximum distance between `X-Sdk-Date` and the server clock.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The request's `X-Sdk-Date`, if it is signed and within
/// [`MAX_SKEW_SECONDS`] of `now`: what can be checked of a signature
/// before its body has been read.
pub fn check_date(
    auth: &Authorization, headers: &http::HeaderMap, now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, SignatureError> {
    if !auth.signed_headers.iter().any(|h| h == "x-sdk-date") {
        return Err(SignatureError::BadDate);
    }
    let date = headers.get("x-sdk-date").and_then(|v| v.to_str().ok()).ok_or(SignatureError::BadDate)?.trim();
    let signed_at =
        chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ").map_err(|_| SignatureError::BadDate)?.and_utc();
    if (now - signed_at).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(SignatureError::Expired);
    }
    Ok(signed_at)
}

/// Verifies a parsed signature with the SK of its AK, at time `now`;
/// returns when it was signed (`X-Sdk-Date`).
pub fn verify(
    auth: &Authorization, secret_key: &[u8], req: &RawRequest<'_>, now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, SignatureError> {
    let signed_at = check_date(auth, req.headers, now)?;
    // The text as sent is what the client signed.
    let date = req.headers.get("x-sdk-date").and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
    if let Algorithm::V11 { info } = &auth.algorithm {
        // The scope's date must be the signing date.
        if info.split('/').next() != Some(&date[..8.min(date.len())]) {
            return Err(SignatureError::Malformed);
        }
    }
    let canonical = canonical_request_for(&auth.algorithm, req, &auth.signed_headers)?;
    let string_to_sign = string_to_sign_for(&auth.algorithm, date, &canonical);
    let expected = sign_for(&auth.algorithm, &auth.access_key, secret_key, &string_to_sign);
    use subtle::ConstantTimeEq;
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(signed_at)
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_headers_are_distinct_and_bounded() {
        let auth = |signed: &str| {
            Authorization::parse(&format!("SDK-HMAC-SHA256 Access=AK, SignedHeaders={signed}, Signature=00"))
        };
        assert!(auth("host;x-sdk-date").is_ok());
        // Before: accepted, and each repetition appended the header's value
        // to the canonical request again.
        assert!(matches!(auth(&vec!["x-big"; 10_000].join(";")), Err(SignatureError::Malformed)));
        assert!(matches!(auth("host;X-Sdk-Date;x-sdk-date"), Err(SignatureError::Malformed)));
        let many: Vec<String> = (0..=MAX_SIGNED_HEADERS).map(|i| format!("x-h{i}")).collect();
        assert!(matches!(auth(&many.join(";")), Err(SignatureError::Malformed)));
        assert!(auth(&many[..MAX_SIGNED_HEADERS].join(";")).is_ok());
    }

    const SK: &[u8] = b"exampleSecretKey0123456789abcdefghijABCD";
    const PROJECT: &str = "0123456789abcdef0123456789abcdef";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        map
    }

    fn at(date: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ").unwrap().and_utc()
    }

    fn vector1() -> (HeaderMap, &'static [u8], &'static str) {
        let auth = "SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, Signature=2f9004635e287bcc0de874c2a0951401102ded51bf277d0e9bfd63d548acc533";
        let h = headers(&[
            ("content-type", "application/json;charset=utf-8"),
            ("host", "kms.cn-north-4.myhuaweicloud.com"),
            ("user-agent", "huaweicloud-usdk-python/3.0"),
            ("x-project-id", PROJECT),
            ("x-sdk-date", "20240101T000000Z"),
        ]);
        (h, br#"{"name": "demo", "secret_string": "hello"}"#, auth)
    }

    #[test]
    fn vector_1_post_with_body() {
        let (h, body, auth) = vector1();
        let path = format!("/v1/{PROJECT}/secrets");
        let req = RawRequest { method: "POST", path: &path, query: "", headers: &h, body };
        let auth = Authorization::parse(auth).unwrap();
        let canonical = canonical_request(&req, &auth.signed_headers).unwrap();
        assert_eq!(
            canonical,
            format!(
                "POST\n/v1/{PROJECT}/secrets/\n\ncontent-type:application/json;charset=utf-8\nhost:kms.cn-north-4.myhuaweicloud.com\nuser-agent:huaweicloud-usdk-python/3.0\nx-project-id:{PROJECT}\nx-sdk-date:20240101T000000Z\n\ncontent-type;host;user-agent;x-project-id;x-sdk-date\n7342df36e6bd0c699674072e98d24c4eb38a1207cf19d43e86fe5ca7a331939f"
            )
        );
        assert_eq!(
            string_to_sign("20240101T000000Z", &canonical),
            "SDK-HMAC-SHA256\n20240101T000000Z\nfb52bd6bb615e044ba172fee62713a1de9bdc20fde0648a81ecf8d4500be900d"
        );
        verify(&auth, SK, &req, at("20240101T000000Z")).unwrap();
        // Tampering anywhere fails.
        let mut bad = body.to_vec();
        bad[10] ^= 1;
        let req_bad = RawRequest { body: &bad, ..req };
        assert_eq!(verify(&auth, SK, &req_bad, at("20240101T000000Z")), Err(SignatureError::Mismatch));
        let mut h2 = h.clone();
        h2.insert("user-agent", "other".parse().unwrap());
        let req_h = RawRequest { headers: &h2, ..req };
        assert_eq!(verify(&auth, SK, &req_h, at("20240101T000000Z")), Err(SignatureError::Mismatch));
        assert_eq!(verify(&auth, b"wrong", &req, at("20240101T000000Z")), Err(SignatureError::Mismatch));
        // 15 minutes of skew either way is accepted, 16 is not.
        verify(&auth, SK, &req, at("20240101T001500Z")).unwrap();
        verify(&auth, SK, &req, at("20231231T234500Z")).unwrap();
        assert_eq!(verify(&auth, SK, &req, at("20240101T001600Z")), Err(SignatureError::Expired));
        assert_eq!(verify(&auth, SK, &req, at("20231231T234400Z")), Err(SignatureError::Expired));
    }

    #[test]
    fn vector_2_get_with_unsorted_query() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("host", "kms.cn-north-4.myhuaweicloud.com"),
            ("user-agent", "huaweicloud-usdk-python/3.0"),
            ("x-project-id", PROJECT),
            ("x-sdk-date", "20240101T000000Z"),
        ]);
        let path = format!("/v1/{PROJECT}/secrets");
        let req =
            RawRequest { method: "GET", path: &path, query: "marker=my%20secret&limit=10", headers: &h, body: b"" };
        let auth = Authorization::parse("SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, Signature=98bafceb3f4eda2b0e97ccbe4a1ee95f638b46203053d55800d79c7f5ae08d35").unwrap();
        let canonical = canonical_request(&req, &auth.signed_headers).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "bce5355be36ed0ea696c28a215c84587466fda07047db7f33bbb28cc4b8f1087"
        );
        assert!(canonical.contains("\nlimit=10&marker=my%20secret\n"));
        verify(&auth, SK, &req, at("20240101T000000Z")).unwrap();
    }

    /// The Terraform provider (chnsz/golangsdk) signs every header present
    /// but `host`, and adds `X-Project-Id` after signing: the canonical
    /// request is rebuilt from `SignedHeaders` as sent, so the unsigned
    /// headers neither break nor join it. (Expected values computed from
    /// auth.md's recipe with Python's hashlib/hmac.)
    #[test]
    fn terraform_shape_signs_everything_but_host() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("user-agent", "terraform-provider-huaweicloud"),
            ("x-language", "en-us"),
            ("x-sdk-date", "20240101T000000Z"),
            ("host", "127.0.0.1:8080"),
            ("x-project-id", PROJECT),
        ]);
        let path = format!("/v1.0/{PROJECT}/kms/create-key");
        let req =
            RawRequest { method: "POST", path: &path, query: "", headers: &h, body: br#"{"key_alias":"tf-key"}"# };
        let auth = Authorization::parse("SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;user-agent;x-language;x-sdk-date, Signature=a5ac7c4ea555c50df8c2be2a7108adc5e3c44f5defddd307e92e90657192ef83").unwrap();
        assert_eq!(
            canonical_request(&req, &auth.signed_headers).unwrap(),
            format!(
                "POST\n/v1.0/{PROJECT}/kms/create-key/\n\ncontent-type:application/json\nuser-agent:terraform-provider-huaweicloud\nx-language:en-us\nx-sdk-date:20240101T000000Z\n\ncontent-type;user-agent;x-language;x-sdk-date\nf31da2da231f61cbdb7c4ae931e24354a1cbdeff54d01631ab91b2337bd16390"
            )
        );
        verify(&auth, SK, &req, at("20240101T000000Z")).unwrap();
        // A signed header's value still counts.
        let mut changed = h.clone();
        changed.insert("x-language", "zh-cn".parse().unwrap());
        let req_changed = RawRequest { headers: &changed, ..req };
        assert_eq!(verify(&auth, SK, &req_changed, at("20240101T000000Z")), Err(SignatureError::Mismatch));
    }

    /// The Go SDK's shape: `host` signed, `content-type` (and the project
    /// header added later) not.
    #[test]
    fn go_sdk_shape_signs_host_but_not_content_type() {
        let h = headers(&[
            ("content-type", "application/json;charset=UTF-8"),
            ("host", "127.0.0.1:8080"),
            ("user-agent", "huaweicloud-usdk-go/3.0"),
            ("x-sdk-date", "20240101T000000Z"),
            ("x-project-id", PROJECT),
        ]);
        let path = format!("/v1.0/{PROJECT}/kms/describe-key");
        let body = br#"{"key_id":"3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90"}"#;
        let req = RawRequest { method: "POST", path: &path, query: "", headers: &h, body };
        let auth = Authorization::parse("SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=host;user-agent;x-sdk-date, Signature=15dc971408dd61d3bae57bdd40295fa62001692705a22577d3832568c54995e8").unwrap();
        assert_eq!(
            canonical_request(&req, &auth.signed_headers).unwrap(),
            format!(
                "POST\n/v1.0/{PROJECT}/kms/describe-key/\n\nhost:127.0.0.1:8080\nuser-agent:huaweicloud-usdk-go/3.0\nx-sdk-date:20240101T000000Z\n\nhost;user-agent;x-sdk-date\nc72d144e3e0dd259c30978934819f56a5f8df99115a3a9c8bcf6104fd3af1305"
            )
        );
        verify(&auth, SK, &req, at("20240101T000000Z")).unwrap();
        // The body is signed whatever the headers.
        let req_body = RawRequest { body: br#"{"key_id":"00000000-0000-4000-8000-000000000000"}"#, ..req };
        assert_eq!(verify(&auth, SK, &req_body, at("20240101T000000Z")), Err(SignatureError::Mismatch));
    }

    fn vector2_request(headers: &HeaderMap) -> RawRequest<'_> {
        RawRequest { method: "GET", path: VECTOR2_PATH, query: "marker=my%20secret&limit=10", headers, body: b"" }
    }

    const VECTOR2_PATH: &str = "/v1/0123456789abcdef0123456789abcdef/secrets";

    fn vector2_headers() -> HeaderMap {
        headers(&[
            ("content-type", "application/json"),
            ("host", "kms.cn-north-4.myhuaweicloud.com"),
            ("user-agent", "huaweicloud-usdk-python/3.0"),
            ("x-project-id", PROJECT),
            ("x-sdk-date", "20240101T000000Z"),
        ])
    }

    #[test]
    fn sm3_vector() {
        let h = vector2_headers();
        let auth = Authorization::parse("SDK-HMAC-SM3 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, Signature=7a0adff58f6ac12df9db23f9a7cf1c49768ca6d512f9c627851d66e6dfc83320").unwrap();
        assert_eq!(auth.algorithm, Algorithm::HmacSm3);
        let canonical = canonical_request_for(&auth.algorithm, &vector2_request(&h), &auth.signed_headers).unwrap();
        assert!(canonical.ends_with("1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"));
        assert_eq!(
            hex::encode(sm3::Sm3::digest(canonical.as_bytes())),
            "dfb1cd43d58b3f40c99fc551bc0e06abf7de3d2332857f064ab7943700dee4dc"
        );
        verify(&auth, SK, &vector2_request(&h), at("20240101T000000Z")).unwrap();
        assert_eq!(
            verify(&auth, b"other", &vector2_request(&h), at("20240101T000000Z")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn v11_vector() {
        let h = vector2_headers();
        assert_eq!(
            v11_signing_key("HPUAEXAMPLEAK0000001", SK, "20240101/cn-north-4/csms"),
            "fdfac5993ea88da21df3969e5a913e4d0ef5ee21cc6ec3f9fd11d5fc1e508fd2"
        );
        let auth = Authorization::parse("V11-HMAC-SHA256 Credential=HPUAEXAMPLEAK0000001/20240101/cn-north-4/csms, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, Signature=eb85d70fc2a890c94621240cf75138b141eeaee2a3769ca4286d8d3fab43262d").unwrap();
        assert_eq!(auth.access_key, "HPUAEXAMPLEAK0000001");
        let canonical = canonical_request_for(&auth.algorithm, &vector2_request(&h), &auth.signed_headers).unwrap();
        assert_eq!(
            string_to_sign_for(&auth.algorithm, "20240101T000000Z", &canonical),
            "V11-HMAC-SHA256\n20240101T000000Z\n20240101/cn-north-4/csms\nbce5355be36ed0ea696c28a215c84587466fda07047db7f33bbb28cc4b8f1087"
        );
        verify(&auth, SK, &vector2_request(&h), at("20240101T000000Z")).unwrap();
        // A scope dated another day is refused.
        let other_day = Authorization::parse("V11-HMAC-SHA256 Credential=HPUAEXAMPLEAK0000001/20231231/cn-north-4/csms, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, Signature=eb85d70fc2a890c94621240cf75138b141eeaee2a3769ca4286d8d3fab43262d").unwrap();
        assert!(verify(&other_day, SK, &vector2_request(&h), at("20240101T000000Z")).is_err());
    }

    #[test]
    fn vector_3_delete_with_encoded_slash_and_port() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("host", "127.0.0.1:8443"),
            ("user-agent", "huaweicloud-usdk-python/3.0"),
            ("x-project-id", PROJECT),
            ("x-sdk-date", "20240101T000000Z"),
            ("x-security-token", "TEMP-TOKEN-EXAMPLE"),
        ]);
        let path = format!("/v1/{PROJECT}/csms/11111111-2222-3333-4444-555555555555/tags/my%20key%2F1");
        let req = RawRequest { method: "DELETE", path: &path, query: "", headers: &h, body: b"" };
        let auth = Authorization::parse("SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date;x-security-token, Signature=169f621dfbe779d4ef8d77e51bcd1489d7fa2b64fb48ee26b42d12e433f7309f").unwrap();
        let canonical = canonical_request(&req, &auth.signed_headers).unwrap();
        assert!(canonical.contains("/tags/my%20key/1/\n"));
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "1594a2c5a00b74fd68c508673c6bec59b654f23abbc29a9dbbc04b648155332a"
        );
        verify(&auth, SK, &req, at("20240101T000000Z")).unwrap();
    }

    #[test]
    fn malformed_and_missing_parts_are_refused() {
        assert!(Authorization::parse("SDK-HMAC-SHA256").is_err());
        assert!(Authorization::parse("SDK-HMAC-SHA256 Access=a, Signature=b").is_err());
        let (h, body, auth) = vector1();
        let path = format!("/v1/{PROJECT}/secrets");
        let mut auth = Authorization::parse(auth).unwrap();
        let mut h2 = h.clone();
        h2.remove("user-agent");
        let req = RawRequest { method: "POST", path: &path, query: "", headers: &h2, body };
        assert!(matches!(verify(&auth, SK, &req, at("20240101T000000Z")), Err(SignatureError::MissingHeader(_))));
        let mut h3 = h.clone();
        h3.insert("x-sdk-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        auth.signed_headers.push("x-sdk-content-sha256".into());
        auth.signed_headers.sort();
        let req = RawRequest { method: "POST", path: &path, query: "", headers: &h3, body };
        assert_eq!(verify(&auth, SK, &req, at("20240101T000000Z")), Err(SignatureError::UnsignedPayload));
    }
}
