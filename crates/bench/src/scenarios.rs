//! The scenarios: what each timed phase sends and how its answers are
//! checked, and the set-up calls before them.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use serde_json::{Value, json};
use sha2::Digest;

use crate::{
    Row,
    load::{self, Check, Gen, Outcome, Req, Signer},
    print_row, row,
};

pub(crate) fn ok_with(field: &'static str) -> Check {
    Arc::new(move |status, body| {
        status == 200
            && serde_json::from_slice::<HashMap<&str, &serde_json::value::RawValue>>(body)
                .is_ok_and(|top| top.get(field).is_some_and(|v| v.get() != "null"))
    })
}

pub(crate) fn post(path: String, body: Value) -> Req {
    Req { method: http::Method::POST, path, body: serde_json::to_vec(&body).expect("json") }
}

pub(crate) struct Run {
    pub(crate) concurrency: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) only: Option<String>,
}

impl Run {
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.split(',').any(|part| name.contains(part)))
    }

    pub(crate) async fn go(&self, host: &str, signer: &Signer, make: Gen, check: Check) -> Outcome {
        load::run(host, signer, self.concurrency, self.warmup, self.duration, make, check).await
    }
}

/// A client for set-up calls (not timed).
pub(crate) async fn call(host: &str, signer: &Signer, req: Req) -> anyhow::Result<Value> {
    let headers = load::sign(signer, host, &req);
    let response = reqwest::Client::new()
        .request(req.method.clone(), format!("http://{host}{}", req.path))
        .headers(headers)
        .body(req.body)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "set-up call {} failed: {status} {body}", req.path);
    Ok(body)
}

/// The per-request scenarios against one stack's main project.
pub(crate) async fn crypto_and_secret_scenarios(
    config: &str, run: &Run, host: &str, s: &Signer, http_base: f64, rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let p = s.project_id.clone();
    let kms = move |op: &str| format!("/v1.0/{p}/kms/{op}");
    let key = call(
        host,
        s,
        post(kms("create-key"), json!({"key_alias": format!("bench-{}", uuid::Uuid::new_v4().simple())})),
    )
    .await?;
    let key_id = key["key_info"]["key_id"].as_str().context("key id")?.to_owned();
    let dk = call(host, s, post(kms("create-datakey"), json!({"key_id": key_id}))).await?;
    let dek = hex::decode(dk["plain_text"].as_str().context("plain_text")?)?;
    let dek_cipher = dk["cipher_text"].as_str().context("cipher_text")?.to_owned();
    let with_digest = format!("{}{}", hex::encode(&dek), hex::encode(sha2::Sha256::digest(&dek)));
    let data = call(
        host,
        s,
        post(kms("encrypt-data"), json!({"key_id": key_id, "plain_text": "benchmark payload of modest size"})),
    )
    .await?;
    let data_cipher = data["cipher_text"].as_str().context("cipher_text")?.to_owned();
    let secret_name = format!("bench-{}", uuid::Uuid::new_v4().simple());
    call(
        host,
        s,
        post(
            format!("/v1/{}/secrets", s.project_id),
            json!({"name": secret_name, "secret_string": "s3cr3t-benchmark-value"}),
        ),
    )
    .await?;

    // Signing and MAC keys (issue #13): ECDSA P-256 and RSA-2048 signing a
    // SHA-256 digest, HMAC-SHA-256 over a short message.
    let new_key = |spec: &'static str| {
        let path = kms("create-key");
        async move {
            let key = call(
                host,
                s,
                post(path, json!({"key_alias": format!("bench-{}", uuid::Uuid::new_v4().simple()), "key_spec": spec})),
            )
            .await?;
            anyhow::Ok(key["key_info"]["key_id"].as_str().context("key id")?.to_owned())
        }
    };
    let (ec_key, rsa_key, mac_key) =
        (new_key("EC_P256").await?, new_key("RSA_2048").await?, new_key("HMAC_256").await?);
    let digest = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"benchmark artefact"))
    };
    let sign = |k: &str, algorithm: &'static str| -> Gen {
        let (k, path, digest) = (k.to_owned(), kms("sign"), digest.clone());
        Arc::new(move |_| {
            post(
                path.clone(),
                json!({"key_id": k, "signing_algorithm": algorithm, "message_type": "DIGEST", "message": digest}),
            )
        })
    };

    let http = Some(("bare axum", http_base));
    let scenarios: Vec<(&str, Gen, Check)> = vec![
        ("sign EC_P256", sign(&ec_key, "ECDSA_SHA_256"), ok_with("signature")),
        ("sign RSA_2048", sign(&rsa_key, "RSASSA_PSS_SHA_256"), ok_with("signature")),
        (
            "generate-mac HMAC_256",
            {
                let (k, path) = (mac_key.clone(), kms("generate-mac"));
                Arc::new(move |_| {
                    post(path.clone(), json!({"key_id": k, "mac_algorithm": "HMAC_SHA_256", "message": "YmVuY2htYXJr"}))
                })
            },
            ok_with("mac"),
        ),
        (
            "create-datakey",
            {
                let (k, path) = (key_id.clone(), kms("create-datakey"));
                Arc::new(move |_| post(path.clone(), json!({"key_id": k})))
            },
            ok_with("cipher_text"),
        ),
        (
            "encrypt-datakey",
            {
                let (k, path, pt) = (key_id.clone(), kms("encrypt-datakey"), with_digest.clone());
                Arc::new(move |_| {
                    post(path.clone(), json!({"key_id": k, "plain_text": pt, "datakey_plain_length": "32"}))
                })
            },
            ok_with("cipher_text"),
        ),
        (
            "decrypt-datakey",
            {
                let (k, path, ct) = (key_id.clone(), kms("decrypt-datakey"), dek_cipher.clone());
                Arc::new(move |_| {
                    post(path.clone(), json!({"key_id": k, "cipher_text": ct, "datakey_cipher_length": "32"}))
                })
            },
            ok_with("data_key"),
        ),
        (
            "encrypt-data",
            {
                let (k, path) = (key_id.clone(), kms("encrypt-data"));
                Arc::new(move |_| {
                    post(path.clone(), json!({"key_id": k, "plain_text": "benchmark payload of modest size"}))
                })
            },
            ok_with("cipher_text"),
        ),
        (
            "decrypt-data",
            {
                let (path, ct) = (kms("decrypt-data"), data_cipher.clone());
                Arc::new(move |_| post(path.clone(), json!({"cipher_text": ct})))
            },
            ok_with("plain_text"),
        ),
        (
            "describe-key",
            {
                let (k, path) = (key_id.clone(), kms("describe-key"));
                Arc::new(move |_| post(path.clone(), json!({"key_id": k})))
            },
            ok_with("key_info"),
        ),
        (
            "show-secret-version latest",
            {
                let path = format!("/v1/{}/secrets/{secret_name}/versions/latest", s.project_id);
                Arc::new(move |_| Req { method: http::Method::GET, path: path.clone(), body: Vec::new() })
            },
            ok_with("version"),
        ),
    ];
    for (name, make, check) in scenarios {
        if run.wants(name) {
            let o = run.go(host, s, make, check).await;
            rows.push(row(config, name, &o, http));
            print_row(rows.last().expect("row"));
        }
    }
    Ok(())
}

/// The projects of the mixed scenario.
pub(crate) const MIX_PROJECTS: [&str; 4] = ["mix-1", "mix-2", "mix-3", "mix-4"];

/// The mixed scenario's name.
pub(crate) const MIXED: &str = "mixed 80% read / 15% crypto / 5% write, 4 projects";

/// Secrets read per project in the mixed scenario.
pub(crate) const MIX_SECRETS: usize = 4;

/// What applications do to a shared deployment, all at once: in each of
/// four projects, 80% of requests read one of four secrets (`latest`), 15%
/// are encrypt-data under the project's key, 5% add a version to the
/// first secret (so its readers see changes while they read), every
/// request signed by its own project's credentials.
pub(crate) async fn mixed(run: &Run, host: &str, signers: Vec<Signer>) -> anyhow::Result<load::Outcome> {
    struct Project {
        secrets: Vec<String>,
        encrypt: (String, Vec<u8>),
        write: String,
    }
    let mut projects = Vec::new();
    for s in &signers {
        let p = &s.project_id;
        let key = call(host, s, post(format!("/v1.0/{p}/kms/create-key"), json!({"key_alias": "mix"}))).await?;
        let key_id = key["key_info"]["key_id"].as_str().context("key id")?.to_owned();
        let mut names = Vec::new();
        for i in 0..MIX_SECRETS {
            let name = format!("mix-{i}");
            call(
                host,
                s,
                post(format!("/v1/{p}/secrets"), json!({"name": name, "secret_string": format!("value-{i}")})),
            )
            .await?;
            names.push(format!("/v1/{p}/secrets/{name}/versions/latest"));
        }
        projects.push(Project {
            secrets: names,
            encrypt: (
                format!("/v1.0/{p}/kms/encrypt-data"),
                serde_json::to_vec(&json!({"key_id": key_id, "plain_text": "benchmark payload of modest size"}))?,
            ),
            write: format!("/v1/{p}/secrets/mix-0/versions"),
        });
    }
    let projects = Arc::new(projects);
    let (read_ok, crypto_ok, write_ok) = (ok_with("version"), ok_with("cipher_text"), ok_with("version_metadata"));
    let plan: load::Plan = Arc::new(move |n| {
        let signer = (n % projects.len() as u64) as usize;
        let project = &projects[signer];
        let round = n / projects.len() as u64;
        let (req, check) = match round % 20 {
            0 => (post(project.write.clone(), json!({"secret_string": format!("value-{n}")})), write_ok.clone()),
            1..=3 => (
                Req { method: http::Method::POST, path: project.encrypt.0.clone(), body: project.encrypt.1.clone() },
                crypto_ok.clone(),
            ),
            _ => {
                let path = project.secrets[(round / 20) as usize % project.secrets.len()].clone();
                (Req { method: http::Method::GET, path, body: Vec::new() }, read_ok.clone())
            }
        };
        load::Step { signer, req, check }
    });
    Ok(load::run_plan(host, Arc::new(signers), run.concurrency, run.warmup, run.duration, plan).await)
}
