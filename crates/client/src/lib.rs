//! The one client of opendew's REST API in the codebase: requests signed as
//! the official SDKs sign them (`SDK-HMAC-SHA256` over content-type, host,
//! user-agent, `X-Project-Id` and `X-Sdk-Date`), with the `signing`
//! crate's canonical-request code, the code the gateway verifies with, so
//! client and server cannot drift apart; and without linking the gateway
//! (no axum, sqlx or argon2 in the node agents). The
//! benchmark harness signs its load with [`sign`]; the KMS v2 plugin calls
//! the API through [`GatewayClient`].

use std::{path::Path, time::Duration};

use anyhow::Context;
use serde::Deserialize;

/// Who signs.
#[derive(Clone)]
pub struct Signer {
    /// Access key.
    pub ak: String,
    /// Secret key (wiped when the signer is dropped).
    pub sk: zeroize::Zeroizing<String>,
    /// Project (`X-Project-Id`, and the path's project).
    pub project_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("ak", &self.ak).field("project_id", &self.project_id).finish_non_exhaustive()
    }
}

/// A credentials file: `{"access_key", "secret_key", "project_id"}` (the
/// entries of the file `opendew dev` and `opendew bootstrap` write have
/// these members too, so either form works: one object, or
/// `{"credentials": [...]}`, whose first entry is taken).
#[derive(Deserialize)]
struct CredentialsFile {
    access_key: Option<String>,
    secret_key: Option<String>,
    project_id: Option<String>,
    #[serde(default)]
    credentials: Vec<CredentialsFile>,
}

impl Signer {
    /// Reads a credentials file (kept 0600 by its writer; the SK is wiped
    /// from the read buffer).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("reading credentials {}", path.display()))?,
        );
        let file: CredentialsFile =
            serde_json::from_str(&text).with_context(|| format!("{} is not a credentials file", path.display()))?;
        let entry = match file.credentials.into_iter().next() {
            Some(first) => first,
            None => CredentialsFile { credentials: Vec::new(), ..file },
        };
        match (entry.access_key, entry.secret_key, entry.project_id) {
            (Some(ak), Some(sk), Some(project_id)) => Ok(Self { ak, sk: zeroize::Zeroizing::new(sk), project_id }),
            _ => anyhow::bail!("{} needs access_key, secret_key and project_id", path.display()),
        }
    }
}

/// One request to sign.
#[derive(Debug, Clone)]
pub struct Req {
    /// HTTP method.
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// JSON body (empty for none).
    pub body: Vec<u8>,
}

/// The headers that sign `req` for `host` (`host[:port]`), as the SDK signs.
pub fn sign(signer: &Signer, host: &str, req: &Req) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", http::HeaderValue::from_static("application/json;charset=utf-8"));
    headers.insert("host", host.parse().expect("host"));
    headers.insert("user-agent", http::HeaderValue::from_static(concat!("opendew-client/", env!("CARGO_PKG_VERSION"))));
    headers.insert("x-project-id", signer.project_id.parse().expect("project"));
    let date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    headers.insert("x-sdk-date", date.parse().expect("date"));
    let signed: Vec<String> =
        ["content-type", "host", "user-agent", "x-project-id", "x-sdk-date"].iter().map(|s| s.to_string()).collect();
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let raw = signing::RawRequest { method: req.method.as_str(), path, query, headers: &headers, body: &req.body };
    let canonical = signing::canonical_request(&raw, &signed).expect("canonical request");
    let signature = signing::sign(signer.sk.as_bytes(), &signing::string_to_sign(&date, &canonical));
    let auth =
        format!("SDK-HMAC-SHA256 Access={}, SignedHeaders={}, Signature={signature}", signer.ak, signed.join(";"));
    headers.insert("authorization", auth.parse().expect("authorization"));
    headers
}

/// An answer: status and JSON body (`null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: serde_json::Value,
}

impl Reply {
    /// Huawei's error code, in either body shape.
    pub fn error_code(&self) -> &str {
        let inner = if self.body["error"].is_object() { &self.body["error"] } else { &self.body };
        inner["error_code"].as_str().unwrap_or("")
    }
}

/// The largest answer read: more than any API answer (a backup blob of
/// 5 MiB and its JSON).
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// Whether `url` names a loopback host (`localhost`, 127.0.0.0/8, `::1`).
fn loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A signed client of one gateway.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    base: reqwest::Url,
    host: String,
    signer: Signer,
}

impl GatewayClient {
    /// A client of the gateway at `base` (`https://…`; `http://` only on a
    /// loopback address, where nothing travels over a network), trusting
    /// `ca_file` when given, giving up on a call after `timeout`. It
    /// follows no redirect: a signed request goes only where it was meant
    /// to (issue #40), and the node agents that use it send credentials.
    pub fn new(base: &str, signer: Signer, ca_file: Option<&Path>, timeout: Duration) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(base).with_context(|| format!("{base} is not a URL"))?;
        anyhow::ensure!(
            base.scheme() == "https" || (base.scheme() == "http" && loopback(&base)),
            "the gateway URL must be https:// (http:// only on a loopback address), not {base}"
        );
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => anyhow::bail!("the gateway URL {base} names no host"),
        };
        let mut http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).context("parsing the CA file")?);
        }
        Ok(Self { http: http.build().context("building the HTTP client")?, base, host, signer })
    }

    /// The project the client acts in.
    pub fn project_id(&self) -> &str {
        &self.signer.project_id
    }

    /// Sends one signed JSON request (`path` from the root, e.g.
    /// `/v1.0/{project}/kms/describe-key`).
    pub async fn call(
        &self, method: http::Method, path: &str, body: Option<&serde_json::Value>,
    ) -> anyhow::Result<Reply> {
        let body = body.map(|b| serde_json::to_vec(b).expect("JSON serialises")).unwrap_or_default();
        let answer = self.call_sensitive(method, path, zeroize::Zeroizing::new(body)).await?;
        Ok(Reply { status: answer.status, body: serde_json::from_slice(&answer.bytes).unwrap_or_default() })
    }

    /// Sends one signed request whose body, or answer, holds a secret (a
    /// data key, a secret's value): both byte buffers are wiped when
    /// dropped, the request's once it is sent. Build `body` with its final
    /// capacity, since a growing `Vec` leaves unwiped copies behind.
    pub async fn call_sensitive(
        &self, method: http::Method, path: &str, mut body: zeroize::Zeroizing<Vec<u8>>,
    ) -> anyhow::Result<SensitiveReply> {
        let req = Req { method: method.clone(), path: path.to_owned(), body: std::mem::take(&mut *body) };
        let headers = sign(&self.signer, &self.host, &req);
        let body = bytes::Bytes::from_owner(zeroize::Zeroizing::new(req.body));
        let url = self.base.join(path).with_context(|| format!("{path} is not a path"))?;
        let answer = self.http.request(method, url).headers(headers).body(body).send().await.map_err(|e| {
            anyhow::anyhow!(
                "the gateway did not answer: {}",
                if e.is_timeout() { "timed out" } else { "connection failed" }
            )
        })?;
        let status = answer.status().as_u16();
        // Bounded: an answer larger than any the API gives is refused
        // rather than buffered. Sized once from the declared length (when
        // believable) so that growing does not leave copies behind.
        let mut answer = answer;
        let declared = answer.content_length().unwrap_or(0).min(MAX_ANSWER as u64) as usize;
        let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(declared));
        while let Some(chunk) = answer.chunk().await.context("reading the gateway's answer")? {
            anyhow::ensure!(bytes.len() + chunk.len() <= MAX_ANSWER, "the gateway's answer is over {MAX_ANSWER} bytes");
            if bytes.len() + chunk.len() > bytes.capacity() {
                let mut larger =
                    zeroize::Zeroizing::new(Vec::with_capacity((bytes.len() + chunk.len()).max(2 * bytes.capacity())));
                larger.extend_from_slice(&bytes);
                bytes = larger;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(SensitiveReply { status, bytes })
    }
}

/// An answer that may hold a secret; its bytes are wiped when dropped.
pub struct SensitiveReply {
    /// HTTP status.
    pub status: u16,
    /// The body as received.
    pub bytes: zeroize::Zeroizing<Vec<u8>>,
}

impl SensitiveReply {
    /// The body as `T` (give secret members a zeroizing type), if it is one.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.bytes).ok()
    }

    /// Huawei's error code of an error answer (which holds no secret).
    pub fn error_code(&self) -> String {
        let body: serde_json::Value = serde_json::from_slice(&self.bytes).unwrap_or_default();
        Reply { status: self.status, body }.error_code().to_owned()
    }
}

impl std::fmt::Debug for SensitiveReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensitiveReply").field("status", &self.status).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer { ak: "AK".into(), sk: zeroize::Zeroizing::new("SK".into()), project_id: "0".repeat(32) }
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let client = |url: &str| GatewayClient::new(url, signer(), None, Duration::from_secs(1));
        for allowed in ["https://opendew.example:8443", "http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2"]
        {
            assert!(client(allowed).is_ok(), "{allowed}");
        }
        for refused in ["http://opendew.example:8080", "http://10.0.0.1", "ftp://127.0.0.1", "http://127.0.0.1.nip.io"]
        {
            assert!(client(refused).is_err(), "{refused}");
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_answers_are_bounded() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = vec![0; 8192];
                let n = stream.read(&mut buf).await.unwrap();
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if request.starts_with("GET /moved") {
                    let moved =
                        format!("HTTP/1.1 302 Found\r\nlocation: http://{addr}/elsewhere\r\ncontent-length: 0\r\n\r\n");
                    stream.write_all(moved.as_bytes()).await.unwrap();
                } else {
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", MAX_ANSWER + 1);
                    stream.write_all(head.as_bytes()).await.unwrap();
                    let _ = stream.write_all(&vec![b' '; MAX_ANSWER + 1]).await;
                }
            }
        });
        let client = GatewayClient::new(&format!("http://{addr}"), signer(), None, Duration::from_secs(5)).unwrap();
        let moved = client.call(http::Method::GET, "/moved", None).await.unwrap();
        assert_eq!(moved.status, 302, "the redirect is the answer");
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1, "and was not followed");
        let huge = client.call(http::Method::GET, "/huge", None).await;
        assert!(huge.is_err(), "an answer past MAX_ANSWER is refused");
    }
}
