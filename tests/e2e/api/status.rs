//! Status steps of the standard API scenario: revoked, forged, cached and
//! unreachable statuses.

use super::*;

/// A certificate revoked before the API first asks about it is refused.
pub(super) fn step_revoked_before_first_asked(env: &Env, api: &str) {
    // 3. A certificate revoked before the API first asks about it is refused.
    let fresh = user_ok(
        env,
        &[
            "cert", "issue", "--ca", "mois", "--profile", "official-sign", "--subject",
            "CN=Kim Cheolsu(001234568), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",
            "--generate-key", "--key-out", "kim.key.pem", "--out", "kim.pem",
        ],
    );
    let kim_serial = fresh["serial"].as_str().unwrap().to_string();
    env.openssl_ok(&[
        "pkey",
        "-in",
        "kim.key.pem",
        "-passin",
        "file:outpass",
        "-out",
        "kim.key",
    ]);
    user_ok(
        env,
        &[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &kim_serial,
            "--reason",
            "keyCompromise",
        ],
    );
    eventually("the dev responder answers revoked", 30, || {
        let r = user(
            env,
            &[
                "ocsp",
                "query",
                "--cert",
                "kim.pem",
                "--issuer",
                "data/certs/mois.crt.pem",
                "--output",
                "json",
            ],
        );
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(json!({}));
        (v["status"] == "revoked")
            .then_some(())
            .ok_or(r.stdout + &r.stderr)
    });
    let revoked = login(env, api, "kim.pem", "kim.key", |_, _| {});
    refused(&revoked, 401, "revoked");
    assert!(
        revoked.1["detail"]
            .as_str()
            .unwrap()
            .contains("keyCompromise"),
        "{}",
        revoked.1
    );
}

/// A certificate made with the CA's key outside its records, one whose AIA
/// names no answering responder, and one calling itself a CA: none logs in.
pub(super) fn step_certificates_outside_the_cas_records(env: &Env, api: &str, ocsp: &str) {
    // 3b. A certificate made with the CA's key outside the CA's records (openssl
    //     x509 -req): its responder does not know it, and unknown is not good; the
    //     CRL, where its absence would read as good, is not asked (issue 28,
    //     point 6).
    env.openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.csr",
        "-subj",
        "/C=KR/O=Government of Korea/OU=Ministry of the Interior and Safety/OU=people/CN=Rogue(009999999)",
    ]);
    // Signed with mois's key by OpenSSL, outside gpki: extensions as given.
    let forge = |name: &str, serial: &str, ext: String| {
        std::fs::write(env.path(&format!("{name}.ext")), ext).unwrap();
        env.openssl_ok(&[
            "x509",
            "-req",
            "-in",
            "rogue.csr",
            "-CA",
            "data/certs/mois.crt.pem",
            "-CAkey",
            "data/keys/mois.key.pem",
            "-passin",
            "file:data/dev-passphrase",
            "-set_serial",
            serial,
            "-days",
            "30",
            "-sha256",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    };
    forge(
        "rogue",
        "0x5eed0c0ffee15bad",
        format!(
            "keyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n\
             authorityInfoAccess=OCSP;URI:http://{ocsp}/ocsp\ncrlDistributionPoints=URI:http://{ocsp}/crl/mois.crl\n"
        ),
    );
    let rogue = login(env, api, "rogue.pem", "rogue.key", |_, _| {});
    refused(&rogue, 503, "status-unknown");
    assert!(
        rogue.1["detail"].as_str().unwrap().contains("(unknown)"),
        "{}",
        rogue.1
    );
    // Nor does one whose AIA names a responder that does not answer (or none):
    // the certificate's own word is not a reason to ask the CRL, which cannot
    // list it. (A relying party that configures ocsp_url falls back on its
    // outage: step 4.)
    for (name, aia) in [
        (
            "rogue-dead",
            "authorityInfoAccess=OCSP;URI:http://127.0.0.1:1/ocsp\n",
        ),
        ("rogue-none", ""),
    ] {
        forge(
            name,
            if name == "rogue-dead" { "0x5eed0c0ffee15bae" } else { "0x5eed0c0ffee15baf" },
            format!(
                "keyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n\
                 {aia}crlDistributionPoints=URI:http://{ocsp}/crl/mois.crl\n"
            ),
        );
        let r = login(env, api, &format!("{name}.pem"), "rogue.key", |_, _| {});
        refused(&r, 503, "status-unknown");
        assert!(
            r.1["detail"].as_str().unwrap().contains("CRL: not asked"),
            "{name}: {}",
            r.1
        );
    }
    // Nor one that calls itself a CA to be judged as one (no responder, the CRL):
    // a CA certificate logs no one in.
    forge(
        "rogue-ca",
        "0x5eed0c0ffee15bb0",
        format!(
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n\
             authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n\
             crlDistributionPoints=URI:http://{ocsp}/crl/mois.crl\n"
        ),
    );
    let r = login(env, api, "rogue-ca.pem", "rogue.key", |_, _| {});
    refused(&r, 401, "wrong-purpose");
    assert!(
        r.1["detail"]
            .as_str()
            .unwrap()
            .contains("is a CA certificate"),
        "{}",
        r.1
    );
}

/// A revocation reaches a running API within its max_cache_secs.
pub(super) fn step_revocation_reaches_a_running_api(env: &Env) {
    // 3c. A revocation reaches a running API within its max_cache_secs, though
    //     the responder's answer runs for a day (issue 28, point 9).
    let lee = user_ok(
        env,
        &[
            "cert", "issue", "--ca", "mois", "--profile", "official-sign", "--subject",
            "CN=Lee Minho(001234569), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",
            "--generate-key", "--key-out", "lee.key.pem", "--out", "lee.pem",
        ],
    );
    env.openssl_ok(&[
        "pkey",
        "-in",
        "lee.key.pem",
        "-passin",
        "file:outpass",
        "-out",
        "lee.key",
    ]);
    let (_short_api, short_url) = api_process(env, "short-cache", "max_cache_secs = 2");
    for _ in 0..2 {
        let ok = login(env, &short_url, "lee.pem", "lee.key", |_, _| {});
        assert_eq!(ok.0, 200, "{}", ok.1);
    }
    user_ok(
        env,
        &[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            lee["serial"].as_str().unwrap(),
            "--reason",
            "affiliationChanged",
        ],
    );
    eventually("a running API refuses the revoked official", 30, || {
        let r = login(env, &short_url, "lee.pem", "lee.key", |_, _| {});
        (r.0 == 401 && r.1["reason"] == "revoked")
            .then_some(())
            .ok_or(r.1.to_string())
    });
}

/// OCSP unreachable: the CRL answers; with no CRL either, unknown refuses.
pub(super) fn step_ocsp_unreachable_the_crl_answers(env: &Env) {
    let sign_cert = SIGN_CERT;
    // 4. OCSP unreachable: the CRL answers (after a CRL that lists the revocation);
    //    with no CRL either, the status is unknown and the login refused (503).
    user_ok(env, &["crl", "generate", "--ca", "mois"]);
    let (_crl_api, crl_url) = api_process(
        env,
        "crl-only",
        "ocsp_url = \"http://127.0.0.1:1/ocsp\"\ntimeout_ms = 2000",
    );
    let by_crl = login(env, &crl_url, sign_cert, "sign.key", |_, _| {});
    assert_eq!(by_crl.0, 200, "{}", by_crl.1);
    assert_eq!(by_crl.1["status"][0]["source"], "crl", "{}", by_crl.1);
    assert!(
        by_crl.1["status"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/crl/mois.crl"),
        "{}",
        by_crl.1
    );
    refused(
        &login(env, &crl_url, "kim.pem", "kim.key", |_, _| {}),
        401,
        "revoked",
    );
    let (_blind_api, blind_url) = api_process(
        env,
        "blind",
        "ocsp_url = \"http://127.0.0.1:1/ocsp\"\ncrl = false\ntimeout_ms = 2000",
    );
    let unknown = login(env, &blind_url, sign_cert, "sign.key", |_, _| {});
    refused(&unknown, 503, "status-unknown");
}
