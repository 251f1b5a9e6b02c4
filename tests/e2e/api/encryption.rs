//! Encryption and metrics steps of the standard API scenario.

use super::*;

/// Encryption both ways with OpenSSL, to the official's km certificate.
pub(super) fn step_encryption_both_ways(env: &Env) {
    let doc = std::fs::read(env.path("doc.txt")).unwrap();
    let sign_cert = SIGN_CERT;
    // 7. Encryption both ways with OpenSSL, to the official's km certificate.
    user_ok(
        env,
        &[
            "cms",
            "encrypt",
            "--in",
            "doc.txt",
            "--out",
            "gpki.p7m",
            "--to",
            "data/certs/official-km.crt.pem",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--untrusted",
            "data/certs/mois.crt.pem",
        ],
    );
    env.openssl_ok(&[
        "cms",
        "-decrypt",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "gpki.p7m",
        "-recip",
        "data/certs/official-km.crt.pem",
        "-inkey",
        "km.key",
        "-out",
        "ossl.dec",
    ]);
    assert_eq!(std::fs::read(env.path("ossl.dec")).unwrap(), doc);
    env.openssl_ok(&[
        "cms",
        "-encrypt",
        "-binary",
        "-aes256",
        "-in",
        "doc.txt",
        "-outform",
        "DER",
        "-out",
        "ossl.p7m",
        "-recip",
        "data/certs/official-km.crt.pem",
        "-keyopt",
        "rsa_padding_mode:oaep",
    ]);
    user_ok(
        env,
        &[
            "cms",
            "decrypt",
            "--in",
            "ossl.p7m",
            "--out",
            "gpki.dec",
            "--key",
            "data/certs/official-km.key.pem",
            "--cert",
            "data/certs/official-km.crt.pem",
            "--pass-file",
            "data/dev-signer-passphrase",
        ],
    );
    assert_eq!(std::fs::read(env.path("gpki.dec")).unwrap(), doc);
    // Encrypting to a signing certificate is refused before anything is written.
    let r = user(
        env,
        &[
            "cms",
            "encrypt",
            "--in",
            "doc.txt",
            "--out",
            "wrong.p7m",
            "--to",
            sign_cert,
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--untrusted",
            "data/certs/mois.crt.pem",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("wrong-purpose"), "{}", r.stderr);
    assert!(!env.path("wrong.p7m").exists());
}

/// What the service counted.
pub(super) fn step_metrics_count_the_answers(api: &str) {
    // 8. What the service counted.
    let metrics = Command::new("curl")
        .args(["-s", &format!("{api}/metrics")])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.contains("gpki_api_answers_total{operation=\"login\",result=\"revoked\"} 1"),
        "{metrics}"
    );
    let cached: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gpki_api_status_total{source=\"cache\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(cached > 0, "no status answered from the cache: {metrics}");
}
