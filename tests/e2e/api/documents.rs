//! Signed-document steps of the standard API scenario: `/v1/verify` against
//! OpenSSL's signatures, and `gpki cms sign` judged by OpenSSL.

use super::*;

/// /v1/verify judges what `openssl cms -sign` makes, attached and detached.
pub(super) fn step_verify_judges_openssl_cms(env: &Env, api: &str, serial: &str) {
    let sign_cert = SIGN_CERT;
    // 5. /v1/verify judges what `openssl cms -sign` makes, attached and detached.
    std::fs::write(
        env.path("doc.txt"),
        "공문서: 2026년 예산 집행 계획\n".repeat(40),
    )
    .unwrap();
    env.openssl_ok(&[
        "cms",
        "-sign",
        "-binary",
        "-in",
        "doc.txt",
        "-signer",
        sign_cert,
        "-inkey",
        "sign.key",
        "-certfile",
        "data/certs/mois.crt.pem",
        "-outform",
        "DER",
        "-nodetach",
        "-out",
        "ossl.p7s",
    ]);
    let signed = std::fs::read(env.path("ossl.p7s")).unwrap();
    let (code, v) = post(
        env,
        &format!("{api}/v1/verify"),
        &json!({ "signed_data": b64(&signed) }),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["result"], "valid");
    assert_eq!(v["signers"][0]["signer"]["serial"], serial, "{v}");
    let digest = env.openssl_ok(&["dgst", "-sha256", "-r", "doc.txt"]);
    assert_eq!(v["content_sha256"], digest.split(' ').next().unwrap());
    // The content changed in place: the digest no longer matches.
    let at = signed
        .windows(6)
        .position(|w| w == "공문서".as_bytes().get(..6).unwrap())
        .unwrap();
    let mut changed = signed.clone();
    changed[at + 1] ^= 1;
    refused(
        &post(
            env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": b64(&changed) }),
        ),
        422,
        "bad-signature",
    );
    env.openssl_ok(&[
        "cms",
        "-sign",
        "-binary",
        "-in",
        "doc.txt",
        "-signer",
        sign_cert,
        "-inkey",
        "sign.key",
        "-outform",
        "PEM",
        "-out",
        "detached.pem",
    ]);
    let detached = std::fs::read_to_string(env.path("detached.pem")).unwrap();
    let doc = std::fs::read(env.path("doc.txt")).unwrap();
    let (code, v) = post(
        env,
        &format!("{api}/v1/verify"),
        &json!({ "signed_data": detached, "content": b64(&doc) }),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["attached"], false);
    refused(
        &post(
            env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": detached, "content": b64(b"another document") }),
        ),
        422,
        "bad-signature",
    );
    refused(
        &post(
            env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": detached }),
        ),
        400,
        "malformed",
    );
    // Without signed attributes a signature is over the text alone, as a login
    // signature is: refused.
    env.openssl_ok(&[
        "cms",
        "-sign",
        "-binary",
        "-noattr",
        "-in",
        "doc.txt",
        "-signer",
        sign_cert,
        "-inkey",
        "sign.key",
        "-outform",
        "DER",
        "-nodetach",
        "-out",
        "noattr.p7s",
    ]);
    refused(
        &post(
            env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": b64(&std::fs::read(env.path("noattr.p7s")).unwrap()) }),
        ),
        400,
        "unsupported",
    );
}

/// A document signed by the revoked official is refused by name; a km
/// certificate logs no one in.
pub(super) fn step_verify_refuses_revoked_and_km(env: &Env, api: &str) {
    // A document signed by the revoked official is refused, by name.
    env.openssl_ok(&[
        "cms",
        "-sign",
        "-binary",
        "-in",
        "doc.txt",
        "-signer",
        "kim.pem",
        "-inkey",
        "kim.key",
        "-outform",
        "DER",
        "-nodetach",
        "-out",
        "kim.p7s",
    ]);
    refused(
        &post(
            env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": b64(&std::fs::read(env.path("kim.p7s")).unwrap()) }),
        ),
        422,
        "revoked",
    );
    // /v1/certificate: the km certificate is for encryption, not login.
    let km_pem = std::fs::read_to_string(env.path("data/certs/official-km.crt.pem")).unwrap();
    let (code, v) = post(
        env,
        &format!("{api}/v1/certificate"),
        &json!({ "certificate": km_pem, "purpose": "encryption" }),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["result"], "good");
    refused(
        &post(
            env,
            &format!("{api}/v1/certificate"),
            &json!({ "certificate": km_pem, "purpose": "login" }),
        ),
        422,
        "wrong-purpose",
    );
}

/// gpki cms sign, timestamped by the dev TSA: OpenSSL verifies the signature
/// and, with `openssl ts`, the token over it.
pub(super) fn step_gpki_cms_sign_timestamped(env: &Env, tsa: &str, serial: &str) {
    let doc = std::fs::read(env.path("doc.txt")).unwrap();
    let sign_args = SIGN_ARGS;
    // 6. gpki cms sign, timestamped by the dev TSA: OpenSSL verifies the signature
    //    (S/MIME signing purpose) and, with `openssl ts`, the token over it.
    let tsa_url = format!("http://{tsa}/");
    let mut a = vec![
        "cms", "sign", "--in", "doc.txt", "--out", "gpki.p7s", "--tsa", &tsa_url,
    ];
    a.extend(sign_args);
    user_ok(env, &a);
    env.openssl_ok(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "gpki.p7s",
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
        "-out",
        "gpki.out",
    ]);
    assert_eq!(std::fs::read(env.path("gpki.out")).unwrap(), doc);
    let (token, signature) = token_of(env, "gpki.p7s");
    assert!(!token.is_empty(), "no timestamp token in the signature");
    std::fs::write(env.path("token.der"), &token).unwrap();
    let imprint = hex::encode(openssl::sha::sha256(&signature));
    std::fs::write(
        env.path("tsa-chain.pem"),
        std::fs::read_to_string(env.path("data/certs/mois.crt.pem")).unwrap(),
    )
    .unwrap();
    env.openssl_ok(&[
        "ts",
        "-verify",
        "-digest",
        &imprint,
        "-in",
        "token.der",
        "-token_in",
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
        "-untrusted",
        "tsa-chain.pem",
    ]);
    let v = user_ok(
        env,
        &[
            "cms",
            "verify",
            "--in",
            "gpki.p7s",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--out",
            "gpki.out2",
        ],
    );
    assert_eq!(v["signers"][0]["signer"]["serial"], serial);
    assert!(v["signers"][0]["timestamp"]["gen_time"].is_string(), "{v}");
    assert_eq!(std::fs::read(env.path("gpki.out2")).unwrap(), doc);
}

/// A detached gpki signature verified by OpenSSL and by gpki; a changed document
/// refused by name; an OpenSSL signature through the CLI.
pub(super) fn step_detached_and_cli_verification(env: &Env, serial: &str) {
    let sign_args = SIGN_ARGS;
    // A detached gpki signature, verified by OpenSSL with the document beside it,
    // and by gpki from the CRL alone.
    let mut a = vec![
        "cms",
        "sign",
        "--in",
        "doc.txt",
        "--out",
        "gpki-det.pem",
        "--detached",
        "--pem",
    ];
    a.extend(sign_args);
    user_ok(env, &a);
    env.openssl_ok(&[
        "cms",
        "-verify",
        "-binary",
        "-in",
        "gpki-det.pem",
        "-inform",
        "PEM",
        "-content",
        "doc.txt",
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
        "-out",
        "/dev/null",
    ]);
    let v = user_ok(
        env,
        &[
            "cms",
            "verify",
            "--in",
            "gpki-det.pem",
            "--content",
            "doc.txt",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--no-ocsp",
        ],
    );
    assert_eq!(
        v["signers"][0]["signer"]["status"][0]["source"], "crl",
        "{v}"
    );
    // gpki refuses a changed document and names why.
    std::fs::write(env.path("doc2.txt"), "another document").unwrap();
    let r = user(
        env,
        &[
            "cms",
            "verify",
            "--in",
            "gpki-det.pem",
            "--content",
            "doc2.txt",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("the document was changed"),
        "{}",
        r.stderr
    );
    // And an OpenSSL signature, through the CLI.
    let v = user_ok(
        env,
        &[
            "cms",
            "verify",
            "--in",
            "ossl.p7s",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
        ],
    );
    assert_eq!(v["signers"][0]["signer"]["serial"], serial);
}
