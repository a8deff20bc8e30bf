//! `https://` servers: the simulator serves TLS with a certificate from a private CA made
//! here; the client trusts it only with `--ca-cert` (or `--insecure`), names the server by
//! SNI, times the handshake apart, and reaches `/tokenize` and `/metrics` over the same TLS.
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::Value;

use crate::run_cli::cmd;
use crate::support::{fixed, sim};

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate it signed for `names`, as PEM files.
fn pki(names: &[&str]) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        cert: write("cert.pem", leaf.pem()),
        key: write("key.pem", leaf_key.serialize_pem()),
        _dir: dir,
    }
}

async fn tls_sim(cert: &Path, key: &Path) -> llm_loadtest_sim::SimHandle {
    let mut cfg = fixed(5, 1);
    cfg.tls_cert = Some(cert.to_owned());
    cfg.tls_key = Some(key.to_owned());
    sim(cfg).await
}

/// `run` against `url` with `extra` flags: exit code, stdout, stderr, the result if written.
async fn run(url: &str, extra: &[&str]) -> (Option<i32>, String, String, Option<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    let mut c = cmd(&[
        "run",
        "--server",
        url,
        "--adapter",
        "vllm",
        "--model",
        "m",
        "--concurrency",
        "2",
        "--num-prompts",
        "6",
        "--input-len",
        "16",
        "--output-len",
        "4",
        "--ignore-eos",
        "--no-progress",
        "--no-save",
        "--output",
    ]);
    c.arg(&file).args(extra);
    c.env("LLM_LOADTEST_NVML_LIB", "/nonexistent/no-nvml-here.so");
    let out = tokio::process::Command::from(c).output().await.unwrap();
    let result = std::fs::read_to_string(&file)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        result,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_with_ca_cert_and_only_then() {
    let pki = pki(&["127.0.0.1", "localhost"]);
    let server = tls_sim(&pki.cert, &pki.key).await;
    let url = format!("https://127.0.0.1:{}", server.local_addr().port());
    let ca = pki.ca.display().to_string();

    // Trusted: prompts sized by the server's /tokenize and /metrics scraped, both over TLS.
    let (code, stdout, stderr, r) = run(&url, &["--ca-cert", &ca, "--server-metrics"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let r = r.unwrap();
    let level = &r["levels"][0]["summary"];
    assert_eq!(level["completed"], 6, "{level}");
    let tls = r["settings"]["tls"].as_str().unwrap();
    assert!(
        tls.contains("checked against the platform's roots and"),
        "{tls}"
    );
    let tokenizer = r["settings"]["tokenizer"].as_str().unwrap();
    assert!(tokenizer.starts_with("server"), "{tokenizer}");
    assert_eq!(r["server_metrics"]["server"], "vLLM");
    let handshakes = level["connections"]["tls_handshakes"].as_u64().unwrap();
    assert!((1..=2).contains(&handshakes), "{level}");
    assert!(
        stdout.contains("c=2: ") && stdout.contains("TLS handshake"),
        "{stdout}"
    );

    // Not trusted: the pre-flight request says why, before any level.
    let (code, stdout, stderr, r) = run(&url, &["--tokenizer", "cl100k_base"]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("TLS handshake failed: invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );
    assert!(r.is_none());

    // Not checked: warned, and recorded.
    let (code, stdout, stderr, r) = run(&url, &["--insecure", "--tokenizer", "cl100k_base"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("WARNING: --insecure"), "{stderr}");
    let tls = r.unwrap()["settings"]["tls"].as_str().unwrap().to_owned();
    assert!(tls.starts_with("insecure"), "{tls}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let pki = pki(&["other.example"]);
    let server = tls_sim(&pki.cert, &pki.key).await;
    let url = format!("https://127.0.0.1:{}", server.local_addr().port());
    let ca = pki.ca.display().to_string();
    let (code, stdout, stderr, _) =
        run(&url, &["--ca-cert", &ca, "--tokenizer", "cl100k_base"]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("certificate not valid for name \"127.0.0.1\""),
        "{stderr}"
    );
    server.shutdown().await.unwrap();
}
