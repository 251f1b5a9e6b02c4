//! Answers of the responder as relying parties see them: good, revoked, unknown,
//! unauthorized, malformed, oversized, and what the responder counted.

use super::*;

both_backends!(
    ocsp_answers_pass_openssl_and_pkilint_sqlite,
    ocsp_answers_pass_openssl_and_pkilint_postgres,
    |env: &Env| {
        if !require("openssl") || !require("curl") {
            return;
        }
        let (_, serial_b) = setup(env);
        let r = Responder::start(env, "ocsp", &env.store, &["mois"], "");
        let url = format!("{}/ocsp", r.url);

        step_good_answers_by_post_and_get(env, &url);
        step_revoked_and_unknown(env, &url, &serial_b);
        step_unauthorized_and_malformed(env, &url);
        step_oversized_and_counted(env, &r, &url);
    }
);

/// Good, from the pre-signed cache and signed live with a nonce, by POST; by GET
/// with RFC 5019 cache headers; pkilint finds nothing.
fn step_good_answers_by_post_and_get(env: &Env, url: &str) {
    // Good, from the pre-signed cache (no nonce), then signed live with a nonce
    // (openssl warns when a nonce is not echoed), with a SHA-256 CertID, and two
    // certificates in one request.
    for extra in [&["-no_nonce"][..], &[], &["-sha256"]] {
        let out = ask(env, url, &["a.pem"], extra);
        assert!(out.contains("Response verify OK"), "{extra:?}: {out}");
        assert!(out.contains("a.pem: good"), "{extra:?}: {out}");
        assert!(!out.to_lowercase().contains("nonce"), "{extra:?}: {out}");
    }
    let out = ask(env, url, &["a.pem", "b.pem"], &[]);
    assert!(
        out.contains("a.pem: good") && out.contains("b.pem: good"),
        "{out}"
    );

    // GET made by curl: base64 in the path, RFC 5019 cache headers.
    env.openssl_ok(&[
        "ocsp",
        "-issuer",
        "mois.pem",
        "-cert",
        "a.pem",
        "-no_nonce",
        "-reqout",
        "req.der",
    ]);
    let req = std::fs::read(env.path("req.der")).unwrap();
    let b64 = env.openssl_ok(&["base64", "-A", "-in", "req.der"]);
    let encoded = b64
        .trim()
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert!(!req.is_empty());
    let headers = env.path("get.headers").display().to_string();
    let body = env.path("get.der").display().to_string();
    curl(&[
        "-s",
        "-D",
        &headers,
        "-o",
        &body,
        &format!("{url}/{encoded}"),
    ]);
    let h = std::fs::read_to_string(&headers).unwrap().to_lowercase();
    for needed in [
        "200",
        "content-type: application/ocsp-response",
        "cache-control: max-age=",
        "etag: \"",
        "last-modified: ",
        "expires: ",
    ] {
        assert!(h.contains(needed), "GET headers lack {needed}:\n{h}");
    }
    let out = env.openssl_ok(&[
        "ocsp",
        "-respin",
        "get.der",
        "-issuer",
        "mois.pem",
        "-cert",
        "a.pem",
        "-CAfile",
        "root.pem",
        "-no_nonce",
    ]);
    assert!(
        out.contains("Response verify OK") && out.contains("a.pem: good"),
        "{out}"
    );
}

/// Revoked by `gpki cert revoke` and seen by the responder; a serial the CA
/// never issued is unknown.
fn step_revoked_and_unknown(env: &Env, url: &str, serial_b: &str) {
    // Revoked by `gpki cert revoke`, seen by the responder (generous bound here;
    // the p99 is measured in docs/benchmarks.md).
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        serial_b,
        "--reason",
        "keyCompromise",
    ]);
    let mut last = String::new();
    within(
        Duration::from_secs(5),
        "revocation visible over OCSP",
        || {
            last = ask(
                env,
                url,
                &["b.pem"],
                &["-no_nonce", "-respout", "revoked.der"],
            );
            last.contains("b.pem: revoked")
        },
    );
    assert!(
        last.contains("Reason: keyCompromise") && last.contains("Response verify OK"),
        "{last}"
    );
    let with_nonce = ask(env, url, &["b.pem"], &[]);
    assert!(with_nonce.contains("b.pem: revoked"), "{with_nonce}");
    let q = env.json(&[
        "ocsp",
        "query",
        "--cert",
        "b.pem",
        "--issuer",
        "mois.pem",
        "--url",
        url,
        "--ca-file",
        "root.pem",
    ]);
    assert_eq!(q["status"], "revoked", "{q}");
    assert_eq!(q["reason"], "keyCompromise", "{q}");
    assert_eq!(q["nonce"], "matched", "{q}");

    // A serial the CA never issued: unknown.
    let out = env.openssl_ok(&[
        "ocsp",
        "-issuer",
        "mois.pem",
        "-serial",
        "0x0123456789abcdef",
        "-url",
        url,
        "-CAfile",
        "root.pem",
        "-respout",
        "unknown.der",
    ]);
    assert!(out.contains(": unknown"), "{out}");

    if require("lint_ocsp_response") {
        for f in ["get.der", "revoked.der", "unknown.der"] {
            let findings = pkilint("lint_ocsp_response", &[], &env.path(f));
            assert!(findings.is_empty(), "pkilint findings for {f}:\n{findings}");
        }
    }
}

/// Another CA's certificate is unauthorized; garbage and an over-long nonce are
/// malformed; a 32-octet nonce is echoed.
fn step_unauthorized_and_malformed(env: &Env, url: &str) {
    let req = std::fs::read(env.path("req.der")).unwrap();
    // Another CA's certificate: unauthorized.
    env.ok(&[
        "ca",
        "init-root",
        "--name",
        "other",
        "--subject",
        "CN=Other Root, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p384",
        "--out",
        "other.pem",
    ]);
    let out = env.openssl(&[
        "ocsp",
        "-issuer",
        "other.pem",
        "-serial",
        "0x01",
        "-url",
        url,
        "-CAfile",
        "other.pem",
    ]);
    let text = out.stdout + &out.stderr;
    assert!(text.contains("unauthorized"), "{text}");

    // Garbage: malformedRequest, by POST and by GET.
    let malformed = [0x30, 0x03, 0x0a, 0x01, 0x01];
    let reply = curl(&[
        "-s",
        "-H",
        "Content-Type: application/ocsp-request",
        "--data-binary",
        "this is not DER",
        url,
    ]);
    assert_eq!(reply, malformed);
    let reply = curl(&["-s", &format!("{url}/bm90IERFUg%3D%3D")]);
    assert_eq!(reply, malformed);
    // A nonce over RFC 8954's 32 octets: malformedRequest; 32 octets: echoed.
    for (len, expect_malformed) in [(33usize, true), (32, false)] {
        std::fs::write(env.path("nonce.der"), with_nonce_of(&req, len)).unwrap();
        let reply = curl(&[
            "-s",
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            &format!("@{}", env.path("nonce.der").display()),
            url,
        ]);
        assert_eq!(
            reply == malformed,
            expect_malformed,
            "nonce of {len} octets"
        );
    }
}

/// An oversized body gets 413; the responder still serves and counted it all.
fn step_oversized_and_counted(env: &Env, r: &Responder, url: &str) {
    // Oversized body: HTTP 413, nothing read.
    std::fs::write(env.path("big.bin"), vec![0x30u8; 64 * 1024]).unwrap();
    let code = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/ocsp-request",
        "--data-binary",
        &format!("@{}", env.path("big.bin").display()),
        url,
    ]);
    assert_eq!(String::from_utf8_lossy(&code), "413");

    // Still serving, and it counted what happened.
    let out = ask(env, url, &["a.pem"], &["-no_nonce"]);
    assert!(out.contains("a.pem: good"), "{out}");
    assert_eq!(r.health()["status"], "ok");
    let metrics = String::from_utf8(curl(&["-s", &format!("{}/metrics", r.url)])).unwrap();
    for needed in [
        "gpki_ocsp_responses_total{path=\"presigned\",status=\"good\"}",
        "gpki_ocsp_responses_total{path=\"error\",status=\"malformed_request\"} 3",
        "gpki_ocsp_responses_total{path=\"error\",status=\"unauthorized\"} 1",
        "gpki_ocsp_request_duration_seconds_bucket",
        "gpki_ocsp_presigned_oldest_this_update_seconds{ca=\"mois\"}",
    ] {
        assert!(
            metrics.contains(needed),
            "metrics lack {needed}:\n{metrics}"
        );
    }
}
