//! Dual enrolment through the RA: an official's signing certificate and km pair
//! in one request, the km key delivered sealed, archived, renewed with the pair,
//! recovered by two officers; dual control and a KRA out of force.

use super::*;

/// Hong-like official `who` named `name` submitted by Lee (identity seen), with a
/// transport key for a km pair when `transport`.
fn official(env: &Env, who: &str, name: &str, transport: bool) -> Value {
    let subject = format!("CN={name}, OU=people, {MOIS}");
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-out",
            &format!("{who}.key.pem"),
            "--subject",
            &subject,
            "--csr-out",
            &format!("{who}.csr"),
        ],
    );
    let mut args = vec![
        "ra",
        "submit",
        "--idempotency-key",
        who,
        "--profile",
        "official-sign",
        "--subject",
        &subject,
        "--csr",
        &format!("{who}.csr"),
        "--identity-method",
        "face-to-face",
        "--identity-document",
        "public official ID card",
        "--out",
        &format!("{who}.pem"),
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if transport {
        user_ok(
            env,
            &[
                "key",
                "new",
                "--key-type",
                "rsa2048",
                "--key-out",
                &format!("{who}-transport.key.pem"),
                "--subject",
                "CN=transport",
                "--csr-out",
                &format!("{who}-transport.csr"),
            ],
        );
        args.extend(
            [
                "--km-transport",
                &format!("{who}-transport.csr"),
                "--km-out",
                &format!("{who}-km.pem"),
                "--km-envelope-out",
                &format!("{who}-km.p7m"),
            ]
            .map(String::from),
        );
    }
    ok_json(run(
        env,
        as_lee(&args.iter().map(String::as_str).collect::<Vec<_>>()),
    ))
}

/// `openssl verify` of `cert` for `purpose` says OK.
fn verified(env: &Env, cert: &str, purpose: &str) {
    let out = openssl_verify(env, purpose, cert);
    assert!(out.contains(": OK"), "{out}");
}

/// The PEM body of the private key `openssl ARGS` prints.
fn key_of(env: &Env, args: &[&str]) -> String {
    let text = env.openssl_ok(args);
    let start = text
        .find("-----BEGIN PRIVATE KEY-----")
        .expect("a private key");
    text[start..text.find("-----END PRIVATE KEY-----").unwrap()].to_string()
}

/// Issue 12's "done when" through the RA: an official enrolled with both
/// certificates (the km key made by the CA, archived to dev up's KRA and sealed to
/// the official's transport key), the pair renewed together and its revocation
/// offered; the km key lost and recovered with two officers' approvals. OpenSSL
/// opens every file.
pub(super) fn dual_enrolment_through_the_ra(env: &Env) {
    let (sign_serial, km_serial, delivered) = step_one_enrolment_two_certificates(env);
    step_key_files_refusals_and_pair_renewal(env, &sign_serial, &km_serial, &delivered);
    step_a_new_km_key_waits_for_the_identity(env, &sign_serial, &km_serial);
    step_recovery_by_two_officers_and_revocation(env, &sign_serial, &km_serial, &delivered);
    step_dual_control_and_operator_rekey(env);
    step_a_kra_out_of_force_takes_no_key(env);
}

/// One enrolment, two certificates; the km key delivered sealed and archived,
/// and a replay answers the pair without it. Returns the serials and the key.
fn step_one_enrolment_two_certificates(env: &Env) -> (String, String, String) {
    // One enrolment, two certificates.
    let park = official(env, "park", "Park Jimin(002345678)", true);
    assert_eq!(park["request"]["status"], "issued", "{park}");
    let sign_serial = park["certificate"]["serial"].as_str().unwrap().to_string();
    let km = &park["certificate"]["km"];
    let km_serial = km["certificate"]["serial"].as_str().unwrap().to_string();
    assert_eq!(km["certificate"]["profile"], "official-km", "{park}");
    assert!(
        km["delivery"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CMS-----"),
        "{park}"
    );
    verified(env, "park.pem", "smimesign");
    verified(env, "park-km.pem", "smimeencrypt");
    // OpenSSL opens the delivery with the transport key: the km certificate's key.
    env.openssl_ok(&[
        "pkey",
        "-in",
        "park-transport.key.pem",
        "-passin",
        "file:data/dev-signer-passphrase",
        "-out",
        "park-transport.plain",
    ]);
    env.openssl_ok(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "park-km.p7m",
        "-inkey",
        "park-transport.plain",
        "-out",
        "park-km.der",
    ]);
    let delivered = key_of(env, &["pkey", "-inform", "DER", "-in", "park-km.der"]);
    // The km key was made on the CA's side and is archived: holding it proves
    // nothing of the holder, so it cannot revoke (the signing key does).
    env.openssl_ok(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-inform",
        "DER",
        "-in",
        "park-km.der",
        "-passout",
        "file:data/dev-signer-passphrase",
        "-out",
        "park-km.key.pem",
    ]);
    let r = revoke_own(env, "park-km.pem", "park-km.key.pem", "keyCompromise");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is not for signing"), "{}", r.stdout);
    assert_eq!(
        env.openssl_ok(&["pkey", "-inform", "DER", "-in", "park-km.der", "-pubout"]),
        env.openssl_ok(&["x509", "-in", "park-km.pem", "-noout", "-pubkey"])
    );
    // A replay answers the same pair, without the key: it is only in the archive now.
    let again = user_ok(
        env,
        &as_lee(&[
            "ra",
            "submit",
            "--idempotency-key",
            "park",
            "--profile",
            "official-sign",
            "--subject",
            &format!("CN=Park Jimin(002345678), OU=people, {MOIS}"),
            "--csr",
            "park.csr",
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "public official ID card",
            "--km-transport",
            "park-transport.csr",
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    assert_eq!(
        again["certificate"]["serial"],
        sign_serial.as_str(),
        "{again}"
    );
    // (The RA answers a replay from its own records: the pair as it stands.)
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(
        again["certificate"]["pair"]["serial"],
        km_serial.as_str(),
        "{again}"
    );
    (sign_serial, km_serial, delivered)
}

/// The official's key files from the delivery; refusals before anything is
/// recorded; the pair renewed together, not without a transport key.
fn step_key_files_refusals_and_pair_renewal(
    env: &Env,
    sign_serial: &str,
    km_serial: &str,
    delivered: &str,
) {
    // The official's key files, from the delivery.
    user_ok(
        env,
        &[
            "km",
            "open",
            "--envelope",
            "park-km.p7m",
            "--cert",
            "park-km.pem",
            "--transport-key",
            "park-transport.key.pem",
            "--transport-pass-file",
            "data/dev-signer-passphrase",
            "--npki-dir",
            "park-npki",
            "--out-pass-file",
            "data/dev-signer-passphrase",
        ],
    );
    let npki = key_of(
        env,
        &[
            "pkcs8",
            "-inform",
            "DER",
            "-in",
            "park-npki/kmPri.key",
            "-passin",
            "file:data/dev-signer-passphrase",
            "-provider",
            "legacy",
            "-provider",
            "default",
        ],
    );
    assert_eq!(npki, delivered);

    // Refusals, before anything is recorded: an EC transport key, a km pair for
    // another profile.
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-type",
            "p256",
            "--key-out",
            "ec-transport.key.pem",
            "--subject",
            "CN=transport",
            "--csr-out",
            "ec-transport.csr",
        ],
    );
    let r = run(
        env,
        as_lee(&[
            "ra",
            "submit",
            "--idempotency-key",
            "park-ec",
            "--profile",
            "official-sign",
            "--subject",
            &format!("CN=Park Jimin(002345678), OU=people, {MOIS}"),
            "--csr",
            "park.csr",
            "--km-transport",
            "ec-transport.csr",
        ]),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("must be RSA"), "{}", r.stdout);
    let r = run(
        env,
        as_lee(&[
            "ra",
            "submit",
            "--idempotency-key",
            "park-inst",
            "--profile",
            "institution-sign",
            "--subject",
            &format!("CN=Park Jimin(002345678), OU=people, {MOIS}"),
            "--csr",
            "park.csr",
            "--km-transport",
            "park-transport.csr",
        ]),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("pairs with an official-sign certificate"),
        "{}",
        r.stdout
    );
    // Neither refusal recorded a request.
    let listed = user_ok(env, &["ra", "requests"]);
    assert!(
        listed["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !["park-ec", "park-inst"]
                .contains(&r["idempotency_key"].as_str().unwrap_or(""))),
        "{listed}"
    );

    // The pair is renewed together: the signing certificate with a transport key
    // for a new km key; not without, and not from the km certificate.
    for (key, serial, why) in [
        ("park-renew-0", sign_serial, "has a km pair"),
        ("park-renew-km", km_serial, "renewed with its pair"),
    ] {
        let renew = ["ra", "renew", "--idempotency-key", key, "--serial", serial];
        let r = run(env, as_lee(&renew));
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(why), "{}", r.stdout);
    }
}

/// A new km key is a new key: without the identity seen again the request
/// waits, and approval alone is refused.
fn step_a_new_km_key_waits_for_the_identity(env: &Env, sign_serial: &str, km_serial: &str) {
    // A new km key, made by the CA and sealed to a transport key the operator
    // hands in, is a new key: one operator without the identity seen again gets
    // a request that waits, and no key (issue 28, point 1).
    let waiting = ok_json(run(
        env,
        as_lee(&[
            "ra",
            "renew",
            "--idempotency-key",
            "park-renew-1",
            "--serial",
            sign_serial,
            "--km-transport",
            "park-transport.csr",
        ]),
    ));
    assert_eq!(waiting["request"]["status"], "submitted", "{waiting}");
    assert_eq!(waiting["waiting_for"], json!(["identity"]), "{waiting}");
    assert!(waiting["certificate"].is_null(), "{waiting}");
    let renewal_id = waiting["request"]["id"].to_string();
    // Said in words too, with the commands that finish it (point 15).
    let text = env
        .command()
        .env_remove("GPKI_STORE")
        .env_remove("GPKI_KEY_PASS_FILE")
        .env("GPKI_RA_CONFIG", "data/ra-client.toml")
        .args(["ra", "show", &renewal_id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("waiting for an identity verification")
            && text.contains(&format!("gpki ra verify-identity {renewal_id}")),
        "{text}"
    );
    // Approval alone is refused while the identity is not recorded.
    let r = run(env, as_lee(&["ra", "approve", &renewal_id]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("requires an identity verification"),
        "{}",
        r.stdout
    );
    ok_json(run(
        env,
        as_lee(&[
            "ra",
            "verify-identity",
            &renewal_id,
            "--method",
            "face-to-face",
            "--document",
            "public official ID card",
        ]),
    ));
    let renewed = ok_json(run(
        env,
        as_lee(&[
            "ra",
            "approve",
            &renewal_id,
            "--out",
            "park-2.pem",
            "--km-out",
            "park-km-2.pem",
            "--km-envelope-out",
            "park-km-2.p7m",
        ]),
    ));
    assert_eq!(renewed["request"]["status"], "issued", "{renewed}");
    let new_km = renewed["certificate"]["km"]["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_km, km_serial, "{renewed}");
    verified(env, "park-km-2.pem", "smimeencrypt");
    env.openssl_ok(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "park-km-2.p7m",
        "-inkey",
        "park-transport.plain",
        "-out",
        "park-km-2.der",
    ]);
}

/// The first km key is recovered with two officers; revoking the signing
/// certificate offers its pair.
fn step_recovery_by_two_officers_and_revocation(
    env: &Env,
    sign_serial: &str,
    km_serial: &str,
    delivered: &str,
) {
    // The first km key is lost; two officers (officials the RA enrolled, made
    // officers of dev up's KRA) approve its recovery.
    for (o, name) in [
        ("officer-kim", "Kim Officer(000000011)"),
        ("officer-choi", "Choi Officer(000000012)"),
    ] {
        official(env, o, name, false);
        user_ok(
            env,
            &[
                "km",
                "officer",
                "add",
                "--kra",
                "dev-kra",
                "--name",
                o,
                "--cert",
                &format!("{o}.pem"),
            ],
        );
    }
    std::fs::remove_dir_all(env.path("park-npki")).unwrap();
    user_ok(
        env,
        &[
            "km",
            "request",
            "--ca",
            "mois",
            "--serial",
            km_serial,
            "--reason",
            "laptop lost",
            "--statement-out",
            "park-recovery.json",
        ],
    );
    for o in ["officer-kim", "officer-choi"] {
        user_ok(
            env,
            &[
                "km",
                "approve",
                "--statement",
                "park-recovery.json",
                "--cert",
                &format!("{o}.pem"),
                "--key",
                &format!("{o}.key.pem"),
                "--pass-file",
                "data/dev-signer-passphrase",
                "--out",
                &format!("{o}-approval.json"),
            ],
        );
    }
    let released = user_ok(
        env,
        &[
            "km",
            "recover",
            "--ca",
            "mois",
            "--serial",
            km_serial,
            "--approval",
            "officer-kim-approval.json",
            "--approval",
            "officer-choi-approval.json",
            "--kra-key",
            "data/kra/kra.key.pem",
            "--kra-pass-file",
            "data/dev-signer-passphrase",
            "--pkcs12",
            "park-recovered.p12",
            "--out-pass-file",
            "data/dev-signer-passphrase",
        ],
    );
    assert_eq!(released["recovery"]["status"], "released", "{released}");
    let recovered = key_of(
        env,
        &[
            "pkcs12",
            "-in",
            "park-recovered.p12",
            "-passin",
            "file:data/dev-signer-passphrase",
            "-nodes",
            "-nocerts",
        ],
    );
    assert_eq!(
        recovered, delivered,
        "recovery must give back the key that was archived"
    );

    // Revoking the signing certificate offers its pair.
    let revoked = ok_json(run(
        env,
        as_lee(&[
            "ra",
            "revoke",
            "--idempotency-key",
            "park-revoke",
            "--serial",
            sign_serial,
            "--reason",
            "affiliationChanged",
        ]),
    ));
    assert_eq!(revoked["certificate"]["status"], "revoked", "{revoked}");
    assert_eq!(
        revoked["certificate"]["pair"]["serial"], km_serial,
        "{revoked}"
    );
    assert_eq!(
        revoked["certificate"]["pair"]["status"], "issued",
        "{revoked}"
    );
}

/// official-km under dual control holds for dual enrolments; an operator's rekey
/// waits for a second administrator.
fn step_dual_control_and_operator_rekey(env: &Env) {
    // official-km under dual control holds for dual enrolments, though the
    // signing profile is not: one operator's submission waits, the submitter
    // cannot approve it, another operator can.
    user_ok(
        env,
        &[
            "ra",
            "update",
            "--name",
            "dev-mois",
            "--dual-control",
            "official-km",
        ],
    );
    let jang = official(env, "jang", "Jang Mina(002345680)", true);
    assert_eq!(jang["request"]["status"], "submitted", "{jang}");
    assert_eq!(jang["waiting_for"], json!(["second-operator"]), "{jang}");
    assert!(jang["certificate"].is_null(), "{jang}");
    let jang_id = jang["request"]["id"].to_string();
    let r = run(env, as_lee(&["ra", "approve", &jang_id]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("under dual control"), "{}", r.stdout);
    // An operator certificate renewed with a new key is the RA's membership: it
    // waits for a second administrator, and an operator who is not one cannot
    // approve it, verify it or reject it.
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-out",
            "lee-2.key.pem",
            "--subject",
            "CN=ignored",
            "--csr-out",
            "lee-2.csr",
        ],
    );
    let lee_serial = env
        .openssl_ok(&["x509", "-in", "lee.pem", "-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    let rekey = user_ok(
        env,
        &[
            "ra",
            "renew",
            "--idempotency-key",
            "lee-rekey",
            "--serial",
            &lee_serial,
            "--csr",
            "lee-2.csr",
        ],
    );
    assert_eq!(rekey["request"]["status"], "submitted", "{rekey}");
    assert_eq!(rekey["waiting_for"], json!(["second-operator"]), "{rekey}");
    let rekey_id = rekey["request"]["id"].to_string();
    for args in [
        vec!["ra", "approve", &rekey_id],
        vec![
            "ra",
            "verify-identity",
            &rekey_id,
            "--method",
            "face-to-face",
            "--document",
            "x",
        ],
        vec!["ra", "reject", &rekey_id, "--reason", "x"],
    ] {
        let r = run(env, as_lee(&args));
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("is not an administrator"),
            "{args:?}: {}",
            r.stdout
        );
    }
    user_ok(env, &["ra", "reject", &rekey_id, "--reason", "test over"]);
    let approved = user_ok(env, &["ra", "approve", &jang_id, "--km-out", "jang-km.pem"]);
    assert_eq!(approved["request"]["status"], "issued", "{approved}");
    assert_eq!(
        approved["certificate"]["km"]["certificate"]["profile"], "official-km",
        "{approved}"
    );
    user_ok(
        env,
        &["ra", "update", "--name", "dev-mois", "--no-dual-control"],
    );
}

/// A KRA out of force takes no key: the enrolment is refused first.
fn step_a_kra_out_of_force_takes_no_key(env: &Env) {
    // A KRA out of force takes no key: the enrolment is refused before the signing
    // certificate is made.
    let kra_serial = env
        .openssl_ok(&["x509", "-in", "data/certs/kra.crt.pem", "-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    user_ok(
        env,
        &[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &kra_serial,
            "--reason",
            "cessationOfOperation",
        ],
    );
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-out",
            "yoon.key.pem",
            "--subject",
            &format!("CN=Yoon Seo(002345679), OU=people, {MOIS}"),
            "--csr-out",
            "yoon.csr",
        ],
    );
    let r = run(
        env,
        as_lee(&[
            "ra",
            "submit",
            "--idempotency-key",
            "yoon",
            "--profile",
            "official-sign",
            "--subject",
            &format!("CN=Yoon Seo(002345679), OU=people, {MOIS}"),
            "--csr",
            "yoon.csr",
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "ID card 9",
            "--km-transport",
            "park-transport.csr",
        ]),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("the KRA certificate is not in force"),
        "{}",
        r.stdout
    );
    let listed = user_ok(
        env,
        &["cert", "list", "--ca", "mois", "--subject", "Yoon Seo"],
    );
    assert_eq!(
        listed
            .as_array()
            .map(|a| a.len())
            .unwrap_or_else(|| listed["certificates"].as_array().unwrap().len()),
        0,
        "{listed}"
    );
}
