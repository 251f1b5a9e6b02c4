//! `gpki dev up` as relying parties meet it: OCSP, CRLs, caIssuers and the TSA
//! where its certificates point, judged by OpenSSL, NSS and GnuTLS.

use super::*;

#[test]
fn dev_up_serves_ocsp_where_the_certificates_point() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("curl") {
        return;
    }
    let port = crate::support::free_port();
    let tsa_port = crate::support::free_port();
    let at = |p: u16| format!("127.0.0.1:{p}");
    let free = || at(crate::support::free_port());
    let mut dev =
        crate::support::dev_up(&env, [&at(port), &at(tsa_port), &free(), &free(), &free()]);
    dev.wait_http_ok(&format!("http://127.0.0.1:{port}/healthz"), 180);
    dev.wait_http_ok(&format!("http://127.0.0.1:{tsa_port}/healthz"), 60);
    step_query_by_aia_and_the_issuers_keys(&env, port);
    step_nss_and_gnutls_check_every_certificate_live(&env);
    step_tsa_tokens_verify_with_status_checked(&env, port, tsa_port);
    step_crl_and_ca_issuers_are_served(&env);
    // SIGTERM stops it cleanly.
    let status = dev.terminate();
    assert!(status.success(), "dev up exited {status}");
}

/// No --url: the certificate's AIA names the responder; a credential round trip;
/// the issuer's keys as dev up serves them.
fn step_query_by_aia_and_the_issuers_keys(env: &Env, port: u16) {
    // No --url: the certificate's AIA names the responder.
    let mut q = env.command();
    let out = q
        .env_remove("GPKI_STORE")
        .env_remove("GPKI_URL_BASE")
        .args([
            "ocsp",
            "query",
            "--cert",
            "data/certs/g-ssl.crt.pem",
            "--issuer",
            "data/certs/mois.crt.pem",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "good", "{v}");
    assert_eq!(v["url"], format!("http://127.0.0.1:{port}/ocsp"), "{v}");
    dev_credential_round_trip(env);
    // The issuer's keys as dev up serves them: the DID of the identifier, one key,
    // the same in the metadata.
    let did: serde_json::Value = serde_json::from_slice(&curl(&[
        "-s",
        &format!("http://127.0.0.1:{port}/.well-known/did.json"),
    ]))
    .unwrap();
    assert_eq!(did["id"], "did:web:id.gpki.go.kr", "{did}");
    let metadata: serde_json::Value = serde_json::from_slice(&curl(&[
        "-s",
        &format!("http://127.0.0.1:{port}/.well-known/jwt-vc-issuer"),
    ]))
    .unwrap();
    assert_eq!(metadata["issuer"], "https://id.gpki.go.kr", "{metadata}");
    let keys = metadata["jwks"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{metadata}");
    assert_eq!(
        did["verificationMethod"][0]["publicKeyJwk"], keys[0],
        "the DID document and the metadata name the same key"
    );
}

/// NSS with revocation checking required, and GnuTLS's ocsptool, against the dev
/// responder: every certificate found good.
fn step_nss_and_gnutls_check_every_certificate_live(env: &Env) {
    // NSS with revocation checking required: every certificate with an OCSP URL is
    // checked live at the dev responder and found good. GnuTLS's ocsptool asks the
    // responder and verifies the delegated signer chains to the issuer.
    let certs = env.path("data/certs");
    if require("vfychain") && require("certutil") {
        let db = crate::support::nss_db(
            env,
            "nss",
            &certs.join("gpki-root.crt.pem"),
            &certs.join("mois.crt.pem"),
        );
        for (p, usages) in crate::support::NSS_USAGES {
            // Responder certificates carry id-pkix-ocsp-nocheck and no OCSP URL.
            if *p == "ocsp-signer" {
                continue;
            }
            for u in *usages {
                let out = crate::support::vfychain(
                    &db,
                    u,
                    &certs.join(format!("{p}.crt.pem")),
                    &[
                        "-g",
                        "leaf",
                        "-h",
                        "requireFreshInfo",
                        "-m",
                        "ocsp",
                        "-s",
                        "requireInfo,failIfNoInfo",
                    ],
                );
                assert!(
                    out.contains("Chain is good!"),
                    "vfychain OCSP-required -u {u} {p}:\n{out}"
                );
            }
        }
    }
    if require("ocsptool") {
        for p in ["g-ssl", "official-sign", "institution-sign"] {
            let out = Command::new("ocsptool")
                .args(["--ask", "--load-cert"])
                .arg(certs.join(format!("{p}.crt.pem")))
                .arg("--load-issuer")
                .arg(certs.join("mois.crt.pem"))
                .arg("--load-signer")
                .arg(certs.join("mois.crt.pem"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                text.contains("Certificate Status: good")
                    && text.contains("Verifying OCSP Response: Success."),
                "ocsptool --ask {p}:\n{text}"
            );
        }
    }
}

/// The dev TSA's tokens verify with only the root, and with the issuer fetched
/// from caIssuers.
fn step_tsa_tokens_verify_with_status_checked(env: &Env, port: u16, tsa_port: u16) {
    // The dev TSA stamps, and the token verifies with the TSA certificate's status
    // checked at the dev responder (its AIA).
    std::fs::write(env.path("doc.txt"), "dev document\n").unwrap();
    let run = |args: &[&str]| {
        let mut c = env.command();
        let o = c.env_remove("GPKI_STORE").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    run(&[
        "ts",
        "stamp",
        "--file",
        "doc.txt",
        "--url",
        &format!("http://127.0.0.1:{tsa_port}/"),
        "--out",
        "doc.tsr",
        "--output",
        "json",
    ]);
    // Issue 9.15: only the root is needed. gpki's TSA puts the chain in the token;
    // openssl ts -verify agrees.
    let v = run(&[
        "ts",
        "verify",
        "--file",
        "doc.txt",
        "--token",
        "doc.tsr",
        "--ca-file",
        "data/certs/gpki-root.crt.pem",
        "--output",
        "json",
    ]);
    assert_eq!(v["tsa_status"], "good", "{v}");
    assert_eq!(v["fetched_issuers"], serde_json::json!([]), "{v}");
    let out = env.openssl_ok(&[
        "ts",
        "-verify",
        "-data",
        "doc.txt",
        "-in",
        "doc.tsr",
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
    ]);
    assert!(out.contains("Verification: OK"), "{out}");
    // A token that carries only the TSA certificate (made by OpenSSL's TSA with the
    // dev TSA key): the missing issuer is fetched from the caIssuers URL.
    std::fs::write(
        env.path("tsa.cnf"),
        format!(
            "[tsa]\ndefault_tsa = t\n[t]\nserial = {}\nsigner_cert = {}\nsigner_key = {}\n\
             default_policy = 1.2.410.100001.2.1.5\nsigner_digest = sha256\n\
             digests = sha256\ness_cert_id_alg = sha256\n",
            env.path("tsa-serial").display(),
            env.path("data/certs/tsa.crt.pem").display(),
            env.path("data/certs/tsa.key.pem").display()
        ),
    )
    .unwrap();
    std::fs::write(env.path("tsa-serial"), "01\n").unwrap();
    env.openssl_ok(&[
        "ts", "-query", "-data", "doc.txt", "-sha256", "-cert", "-out", "o.tsq",
    ]);
    let pass = format!("file:{}", env.path("data/dev-signer-passphrase").display());
    env.openssl_ok(&[
        "ts",
        "-reply",
        "-config",
        "tsa.cnf",
        "-queryfile",
        "o.tsq",
        "-passin",
        &pass,
        "-out",
        "o.tsr",
    ]);
    let v = run(&[
        "ts",
        "verify",
        "--file",
        "doc.txt",
        "--token",
        "o.tsr",
        "--ca-file",
        "data/certs/gpki-root.crt.pem",
        "--output",
        "json",
    ]);
    assert_eq!(v["tsa_status"], "good", "{v}");
    assert_eq!(
        v["fetched_issuers"],
        serde_json::json!([format!("http://127.0.0.1:{port}/ca/mois.crt")]),
        "{v}"
    );
}

/// The CRL distribution point and caIssuers URLs in the certificate are served.
fn step_crl_and_ca_issuers_are_served(env: &Env) {
    // The CRL distribution point and caIssuers URLs in the certificate are served too.
    let text = env.openssl_ok(&[
        "x509",
        "-in",
        "data/certs/g-ssl.crt.pem",
        "-noout",
        "-ext",
        "crlDistributionPoints,authorityInfoAccess",
    ]);
    let url_after = |marker: &str| {
        let line = text
            .lines()
            .find(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no {marker} in\n{text}"));
        line[line.find("http://").unwrap()..].trim().to_string()
    };
    let (crl_url, ca_url) = (url_after("URI:http"), url_after("CA Issuers"));
    assert!(
        crl_url.ends_with("/crl/mois.crl") && ca_url.ends_with("/ca/mois.crt"),
        "{crl_url} {ca_url}"
    );
    for (url, out) in [(&crl_url, "cdp.crl"), (&ca_url, "issuer.crt")] {
        let o = Command::new("curl")
            .args(["-sf", "-o", &env.path(out).display().to_string(), url])
            .status()
            .unwrap();
        assert!(o.success(), "{url}");
    }
    let out = env.openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        "cdp.crl",
        "-noout",
        "-verify",
        "-CAfile",
        "data/certs/chain.pem",
    ]);
    assert!(out.contains("verify OK"), "{out}");
    let served = env.openssl_ok(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        "issuer.crt",
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    let local = env.openssl_ok(&[
        "x509",
        "-in",
        "data/certs/mois.crt.pem",
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    assert_eq!(served, local);
}

/// On the dev stack, nothing overridden: an ID issued to a phone key, presented by
/// QR, verified from the image (signer OCSP at its AIA URL, status list fetched at
/// the URI the credential names, both from the dev responder), revoked on loss, and
/// refused at the next fetch.
fn dev_credential_round_trip(env: &Env) {
    let gpki = |args: &[&str]| {
        let out = env
            .command()
            .env_remove("GPKI_STORE")
            .env_remove("GPKI_URL_BASE")
            .env(
                "GPKI_SIGNER_PASS_FILE",
                env.path("data/dev-signer-passphrase"),
            )
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ok = |args: &[&str]| {
        let (code, out, err) = gpki(args);
        assert_eq!(code, Some(0), "gpki {args:?}: {err}");
        out
    };
    crate::credentials::holder_key(env, "phone");
    std::fs::write(
        env.path("hong.json"),
        r#"{"name": "Hong Gildong", "employee_number": "001234567",
          "institution": "Ministry of the Interior and Safety", "department": "Digital Government Bureau",
          "position": "Deputy Director", "issue_date": "2026-11-24", "expiry_date": "2031-11-23"}"#,
    )
    .unwrap();
    let issued: serde_json::Value = serde_json::from_str(&ok(&[
        "credential",
        "issue",
        "--format",
        "mdoc",
        "--attributes",
        "hong.json",
        "--holder-key",
        "phone.pub",
        "--status-list",
        "mpoid-1",
        "--signer-key",
        "data/certs/credential-signer.key.pem",
        "--signer-chain",
        "data/certs/credential-signer.crt.pem",
        "--out",
        "hong.mdoc",
        "--output",
        "json",
    ]))
    .unwrap();
    let nonce = "4f1c8e2a9b7d6053e1f0";
    ok(&[
        "credential",
        "present",
        "--credential",
        "hong.mdoc",
        "--disclose",
        "name,institution",
        "--holder-key",
        "phone.key",
        "--verifier",
        "https://gate.mois.go.kr",
        "--nonce",
        nonce,
        "--out",
        "hong.vp",
        "--qr",
        "hong.png",
    ]);
    let verify = || {
        gpki(&[
            "credential",
            "verify",
            "--qr",
            "hong.png",
            "--anchor",
            "data/certs/mobile-id.crt.pem",
            "--verifier",
            "https://gate.mois.go.kr",
            "--nonce",
            nonce,
            "--output",
            "json",
        ])
    };
    let (code, out, err) = verify();
    assert_eq!(code, Some(0), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["disclosed"]["name"], "Hong Gildong", "{report}");
    let id = issued["id"].as_i64().unwrap().to_string();
    ok(&[
        "credential",
        "revoke",
        "--id",
        &id,
        "--reason",
        "lost-device",
    ]);
    crate::support::eventually("the lost phone's ID refused", 5, || match verify() {
        (Some(1), _, err) if err.contains("[credential-revoked]") => Ok(()),
        (_, out, err) => Err(format!("{out}{err}")),
    });
}
