//! Key management (issue 12): an official's km key made on the CA side, archived to
//! the KRA and delivered to the official's transport key; lost, and recovered only
//! with two officers' approvals. OpenSSL opens every file and message, and
//! pkilint lints the certificates.

use serde_json::Value;

use crate::support::{pkilint, require, Backend, Env};

const KRA_SUBJECT: &str = "CN=GPKI Key Recovery, OU=GPKI, O=Government of Korea, C=KR";

fn official_subject(name: &str) -> String {
    format!(
        "CN={name}, OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR"
    )
}

/// An official-sign certificate of `mois` for a generated key: `OUT.pem`, `OUT.key`.
fn official(env: &Env, out: &str, name: &str) -> Value {
    env.json(&[
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--subject",
        &official_subject(name),
        "--generate-key",
        "--key-out",
        &format!("{out}.key"),
        "--out",
        &format!("{out}.pem"),
    ])
}

/// The private key of a PEM or PKCS#12 file as OpenSSL prints it (PKCS#8 PEM).
fn private_key_of(env: &Env, args: &[&str]) -> String {
    let text = env.openssl_ok(args);
    let start = text
        .find("-----BEGIN PRIVATE KEY-----")
        .expect("a private key");
    let end = text.find("-----END PRIVATE KEY-----").unwrap();
    text[start..end].to_string()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn refused(env: &Env, args: &[&str], why: &str) {
    let r = env.fails(args);
    assert!(r.stderr.contains(why), "expected `{why}` in:\n{}", r.stderr);
}

/// `gpki km recover` of the km key `km_serial` with `approvals`, into `out`.
fn recover(km_serial: &str, approvals: &[&str], out: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "km",
        "recover",
        "--ca",
        "mois",
        "--serial",
        km_serial,
        "--kra-key",
        "kra.key",
        "--kra-pass-file",
        "kra.pass",
        "--pkcs12",
        out,
        "--out-pass-file",
        "outpass",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for f in approvals {
        a.extend(["--approval".to_string(), f.to_string()]);
    }
    a
}

fn scenario(backend: Backend) {
    if !require("openssl") {
        return;
    }
    let Some(env) = Env::new(backend) else { return };
    env.hierarchy();

    step_the_kra_and_its_officers(&env);
    let (sign_serial, km_serial) = step_the_officials_signing_and_km_pair(&env);
    let delivered = step_the_delivery_opens_with_the_transport_key(&env);
    let first = step_the_key_is_lost_and_its_recovery_requested(&env, &sign_serial, &km_serial);
    step_an_approval_is_checkable_by_openssl(&env, first);
    step_approvals_that_release_nothing(&env, &km_serial, first);
    step_two_officers_release_the_key(&env, &km_serial, &delivered);
    step_approvals_are_spent_and_korean_files_convert(&env, &km_serial, first, &delivered);
    step_audited_and_revoked_with_its_pair(&env, &sign_serial, &km_serial);
}

/// The KRA makes its key on its own host and the CA certifies it; three
/// officers, and an approval is one person's signature.
fn step_the_kra_and_its_officers(env: &Env) {
    // The KRA makes its key on its own host and sends a request; the CA certifies it.
    std::fs::write(env.path("kra.pass"), "kra passphrase\n").unwrap();
    env.ok(&[
        "key",
        "new",
        "--key-type",
        "rsa3072",
        "--key-out",
        "kra.key",
        "--out-pass-file",
        "kra.pass",
        "--subject",
        KRA_SUBJECT,
        "--csr-out",
        "kra.csr",
    ]);
    env.ok(&[
        "km",
        "kra",
        "create",
        "--name",
        "kra",
        "--ca",
        "mois",
        "--csr",
        "kra.csr",
        "--quorum",
        "2",
        "--cert-out",
        "kra.pem",
    ]);
    env.verify("kra.pem");
    let lint = pkilint("lint_pkix_cert", &[], &env.path("kra.pem"));
    assert!(lint.is_empty(), "{lint}");

    // Three officers, two of whom release a key.
    for (o, name) in [
        ("kim", "Kim Officer(000000001)"),
        ("lee", "Lee Officer(000000002)"),
        ("park", "Park Officer(000000003)"),
    ] {
        official(env, o, name);
        env.ok(&[
            "km",
            "officer",
            "add",
            "--kra",
            "kra",
            "--name",
            o,
            "--cert",
            &format!("{o}.pem"),
        ]);
    }
    // An approval is one person's signature (issue 28, close the class): a second
    // certificate of Kim is not a fourth officer, a key the KRA holds (its own)
    // approves nothing, and one officer alone never releases a key.
    official(env, "kim2", "Kim Officer(000000001)");
    for (cert, why) in [
        ("kim2.pem", "one person is one officer"),
        ("kra.pem", "not an official's personal signing certificate"),
    ] {
        let r = env.fails(&[
            "km", "officer", "add", "--kra", "kra", "--name", "again", "--cert", cert,
        ]);
        assert!(r.stderr.contains(why), "{cert}: {}", r.stderr);
    }
    let r = env.fails(&[
        "km",
        "kra",
        "create",
        "--name",
        "alone",
        "--ca",
        "mois",
        "--csr",
        "kra.csr",
        "--quorum",
        "1",
        "--cert-out",
        "alone.pem",
    ]);
    assert!(
        r.stderr.contains("--quorum must be 2 to 16"),
        "{}",
        r.stderr
    );
    let officers = env.json(&["km", "officer", "list", "--kra", "kra"]);
    assert_eq!(
        officers["officers"].as_array().unwrap().len(),
        3,
        "{officers}"
    );
    assert_eq!(officers["quorum"], 2);
}

/// The official's signing certificate and km pair, renewed together only;
/// returns both serials.
fn step_the_officials_signing_and_km_pair(env: &Env) -> (String, String) {
    // The official: a signing certificate, and a one-time transport key for the
    // km key the CA makes.
    let sign = official(env, "hong", "Hong Gildong(001234567)");
    let sign_serial = sign["serial"].as_str().unwrap().to_string();
    env.ok(&[
        "key",
        "new",
        "--key-type",
        "rsa2048",
        "--key-out",
        "transport.key",
        "--subject",
        "CN=transport",
        "--csr-out",
        "transport.csr",
    ]);
    let km = env.json(&[
        "km",
        "issue",
        "--ca",
        "mois",
        "--serial",
        &sign_serial,
        "--transport",
        "transport.csr",
        "--kra",
        "kra",
        "--cert-out",
        "km.pem",
        "--envelope-out",
        "km.p7m",
    ]);
    let km_serial = km["serial"].as_str().unwrap().to_string();
    assert_eq!(km["pair"], sign_serial.as_str());
    // The pair renews together, through the RA with a new km key archived: the CLI
    // renews neither half alone (no km certificate of a key the archive lacks).
    let certs = env.counts()["certificates"].clone();
    for serial in [&sign_serial, &km_serial] {
        let r = env.fails(&["cert", "renew", "--ca", "mois", "--serial", serial]);
        assert!(
            r.stderr.contains("the pair renews together"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(env.counts()["certificates"], certs);
    env.verify("km.pem");
    let lint = pkilint("lint_pkix_cert", &[], &env.path("km.pem"));
    assert!(lint.is_empty(), "{lint}");
    let text = env.openssl_ok(&["x509", "-in", "km.pem", "-noout", "-text"]);
    assert!(
        text.contains("Key Encipherment") && text.contains("Public-Key: (2048 bit)"),
        "{text}"
    );
    assert!(text.contains("CN = Hong Gildong(001234567)"), "{text}");

    (sign_serial, km_serial)
}

/// OpenSSL opens the delivery with the transport key alone, the official as
/// PKCS#12 and Korean key files, and a document encrypted by another system;
/// returns the delivered key.
fn step_the_delivery_opens_with_the_transport_key(env: &Env) -> String {
    // OpenSSL opens the delivery with the transport key alone: the key inside is
    // the km certificate's.
    env.openssl_ok(&[
        "pkey",
        "-in",
        "transport.key",
        "-passin",
        "file:outpass",
        "-out",
        "transport-plain.key",
    ]);
    env.openssl_ok(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "km.p7m",
        "-inkey",
        "transport-plain.key",
        "-out",
        "km-delivered.der",
    ]);
    let delivered = private_key_of(env, &["pkey", "-inform", "DER", "-in", "km-delivered.der"]);
    let cert_pub = env.openssl_ok(&["x509", "-in", "km.pem", "-noout", "-pubkey"]);
    let key_pub = env.openssl_ok(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        "km-delivered.der",
        "-pubout",
    ]);
    assert_eq!(cert_pub, key_pub);
    // The official opens it as PKCS#12 and Korean key files.
    env.ok(&[
        "km",
        "open",
        "--envelope",
        "km.p7m",
        "--cert",
        "km.pem",
        "--transport-key",
        "transport.key",
        "--transport-pass-file",
        "outpass",
        "--pkcs12",
        "km.p12",
        "--npki-dir",
        "npki",
        "--out-pass-file",
        "outpass",
    ]);
    let from_p12 = private_key_of(
        env,
        &[
            "pkcs12",
            "-in",
            "km.p12",
            "-passin",
            "file:outpass",
            "-nodes",
            "-nocerts",
        ],
    );
    assert_eq!(from_p12, delivered);
    let from_npki = private_key_of(
        env,
        &[
            "pkcs8",
            "-inform",
            "DER",
            "-in",
            "npki/kmPri.key",
            "-passin",
            "file:outpass",
            "-provider",
            "legacy",
            "-provider",
            "default",
        ],
    );
    assert_eq!(from_npki, delivered);
    env.openssl_ok(&["x509", "-inform", "DER", "-in", "npki/kmCert.der", "-noout"]);

    // A document encrypted to the km certificate by another system (OpenSSL).
    std::fs::write(env.path("memo.txt"), "classified memo").unwrap();
    env.openssl_ok(&[
        "cms",
        "-encrypt",
        "-binary",
        "-in",
        "memo.txt",
        "-out",
        "memo.p7m",
        "-outform",
        "DER",
        "-recip",
        "km.pem",
        "-aes256",
        "-keyopt",
        "rsa_padding_mode:oaep",
        "-keyopt",
        "rsa_oaep_md:sha256",
    ]);

    delivered
}

/// The key is lost; one recovery request open per key, none for a signing
/// certificate, none by a non-officer. Returns the request's id.
fn step_the_key_is_lost_and_its_recovery_requested(
    env: &Env,
    sign_serial: &str,
    km_serial: &str,
) -> i64 {
    // The key is lost.
    for f in [
        "km.p12",
        "npki/kmCert.der",
        "npki/kmPri.key",
        "km-delivered.der",
    ] {
        std::fs::remove_file(env.path(f)).unwrap();
    }

    // A recovery request, and the officers' approvals of its statement.
    let req = env.json(&[
        "km",
        "request",
        "--ca",
        "mois",
        "--serial",
        km_serial,
        "--reason",
        "laptop stolen",
        "--statement-out",
        "st.json",
    ]);
    let first = req["recovery"]["id"].as_i64().unwrap();
    // One request open per key.
    refused(
        env,
        &[
            "km", "request", "--ca", "mois", "--serial", km_serial, "--reason", "again",
        ],
        "is open already",
    );
    // A signing certificate has no archived key.
    refused(
        env,
        &[
            "km",
            "request",
            "--ca",
            "mois",
            "--serial",
            sign_serial,
            "--reason",
            "x",
        ],
        "has no archived key",
    );
    for o in ["kim", "lee", "park"] {
        env.ok(&[
            "km",
            "approve",
            "--statement",
            "st.json",
            "--cert",
            &format!("{o}.pem"),
            "--key",
            &format!("{o}.key"),
            "--pass-file",
            "outpass",
            "--out",
            &format!("{o}-1.json"),
        ]);
    }
    // The official is no officer, though their certificate is in force.
    env.ok(&[
        "km",
        "approve",
        "--statement",
        "st.json",
        "--cert",
        "hong.pem",
        "--key",
        "hong.key",
        "--pass-file",
        "outpass",
        "--out",
        "hong-1.json",
    ]);
    first
}

/// An officer's approval is checkable by OpenSSL: the statement's bytes, signed.
fn step_an_approval_is_checkable_by_openssl(env: &Env, first: i64) {
    // An officer's approval is checkable by OpenSSL: the statement's bytes, signed.
    let kim: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("kim-1.json")).unwrap()).unwrap();
    assert_eq!(kim["statement"]["recovery"], first);
    let st = &kim["statement"];
    let mut text = String::from("gpki key recovery approval v1\n");
    for (name, field) in [
        ("recovery", "recovery"),
        ("nonce", "nonce"),
        ("kra", "kra"),
        ("ca", "ca"),
        ("serial", "serial"),
        ("certificate-sha256", "certificate_sha256"),
        ("reason", "reason"),
        ("requested-by", "requested_by"),
        ("requested-at", "requested_at"),
    ] {
        let v = match &st[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text += &format!("{name}: {v}\n");
    }
    std::fs::write(env.path("kim-statement.txt"), text).unwrap();
    use base64::Engine as _;
    std::fs::write(
        env.path("kim-sig.der"),
        base64::engine::general_purpose::STANDARD
            .decode(kim["signature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    env.openssl_ok(&[
        "x509", "-in", "kim.pem", "-noout", "-pubkey", "-out", "kim.pub",
    ]);
    let verified = env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-verify",
        "kim.pub",
        "-signature",
        "kim-sig.der",
        "kim-statement.txt",
    ]);
    assert!(verified.contains("Verified OK"), "{verified}");
}

/// Fewer than two approvals, one officer twice, a non-officer, a forged
/// signature, a revoked officer, the wrong KRA key: nothing released or written.
fn step_approvals_that_release_nothing(env: &Env, km_serial: &str, first: i64) {
    let kim: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("kim-1.json")).unwrap()).unwrap();
    // Fewer than two.
    let a = recover(km_serial, &["kim-1.json"], "r.p12");
    refused(
        env,
        &args(&a),
        "2 approvals of KRA kra's officers are needed to release a key; 1 given",
    );
    // One officer twice.
    let a = recover(km_serial, &["kim-1.json", "kim-1.json"], "r.p12");
    refused(env, &args(&a), "officer kim approved twice");
    // A non-officer.
    let a = recover(km_serial, &["kim-1.json", "hong-1.json"], "r.p12");
    refused(env, &args(&a), "is not an active officer's of KRA kra");
    // A forged signature.
    let mut forged = kim.clone();
    forged["statement"]["reason"] = "something else".into();
    std::fs::write(env.path("forged.json"), forged.to_string()).unwrap();
    let a = recover(km_serial, &["forged.json", "lee-1.json"], "r.p12");
    refused(env, &args(&a), "statement differs");
    let mut forged = kim.clone();
    let lee: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("lee-1.json")).unwrap()).unwrap();
    forged["signature"] = lee["signature"].clone();
    std::fs::write(env.path("forged.json"), forged.to_string()).unwrap();
    let a = recover(km_serial, &["forged.json", "lee-1.json"], "r.p12");
    refused(env, &args(&a), "does not verify");
    // A revoked officer certificate.
    let lee_serial = env.serial_of("lee.pem");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        &lee_serial,
        "--reason",
        "affiliationChanged",
    ]);
    let a = recover(km_serial, &["kim-1.json", "lee-1.json"], "r.p12");
    refused(env, &args(&a), "is revoked");
    // The wrong KRA key.
    std::fs::write(env.path("other.pass"), "other\n").unwrap();
    env.ok(&[
        "key",
        "new",
        "--key-type",
        "rsa3072",
        "--key-out",
        "other.key",
        "--out-pass-file",
        "other.pass",
    ]);
    let mut a = recover(km_serial, &["kim-1.json", "park-1.json"], "r.p12");
    let k = a.iter().position(|s| s == "kra.key").unwrap();
    a[k] = "other.key".into();
    a[k + 2] = "other.pass".into();
    refused(env, &args(&a), "is not KRA kra's key");
    // Nothing was written, and the request stays open.
    assert!(!env.path("r.p12").exists());
    refused(
        env,
        &[
            "km", "request", "--ca", "mois", "--serial", km_serial, "--reason", "again",
        ],
        &format!("recovery request {first} for this key is open already"),
    );
}

/// Two officers in force release the archived key, which opens the document
/// OpenSSL encrypted before the loss.
fn step_two_officers_release_the_key(env: &Env, km_serial: &str, delivered: &str) {
    // Two officers in force: released, as PKCS#12 and Korean key files.
    let mut a = recover(km_serial, &["kim-1.json", "park-1.json"], "recovered.p12");
    a.extend(["--npki-dir".into(), "recovered".into()]);
    let done: Value =
        serde_json::from_str(&env.ok(&[args(&a), vec!["--output", "json"]].concat())).unwrap();
    assert_eq!(done["recovery"]["status"], "released");
    assert_eq!(done["officers"], serde_json::json!(["kim", "park"]));
    // The same key as was archived.
    let recovered = private_key_of(
        env,
        &[
            "pkcs12",
            "-in",
            "recovered.p12",
            "-passin",
            "file:outpass",
            "-nodes",
            "-nocerts",
        ],
    );
    assert_eq!(recovered, delivered);
    let info = env.openssl_ok(&[
        "pkcs12",
        "-info",
        "-in",
        "recovered.p12",
        "-passin",
        "file:outpass",
        "-noout",
    ]);
    assert!(info.contains("MAC: sha256"), "{info}");
    let from_npki = private_key_of(
        env,
        &[
            "pkcs8",
            "-inform",
            "DER",
            "-in",
            "recovered/kmPri.key",
            "-passin",
            "file:outpass",
            "-provider",
            "legacy",
            "-provider",
            "default",
        ],
    );
    assert_eq!(from_npki, delivered);
    // And it opens the document OpenSSL encrypted before the loss.
    env.openssl_ok(&[
        "pkcs12",
        "-in",
        "recovered.p12",
        "-passin",
        "file:outpass",
        "-nodes",
        "-nocerts",
        "-out",
        "recovered.key",
    ]);
    let memo = env.openssl_ok(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "memo.p7m",
        "-inkey",
        "recovered.key",
        "-recip",
        "km.pem",
    ]);
    assert!(memo.contains("classified memo"), "{memo}");
}

/// The approvals are spent; Korean files convert back to PKCS#12, and a wrong
/// password is named.
fn step_approvals_are_spent_and_korean_files_convert(
    env: &Env,
    km_serial: &str,
    first: i64,
    delivered: &str,
) {
    // The approvals are spent: a new request refuses them.
    let second = env.json(&[
        "km",
        "request",
        "--ca",
        "mois",
        "--serial",
        km_serial,
        "--reason",
        "lost again",
    ]);
    let second_id = second["recovery"]["id"].as_i64().unwrap();
    let a = recover(km_serial, &["kim-1.json", "park-1.json"], "again.p12");
    refused(
        env,
        &args(&a),
        &format!("it approves recovery request {first}, not request {second_id}"),
    );

    // Korean files back to PKCS#12, and a wrong password named.
    env.ok(&[
        "km",
        "import",
        "--npki-dir",
        "recovered",
        "--pair",
        "km",
        "--pass-file",
        "outpass",
        "--pkcs12",
        "imported.p12",
        "--out-pass-file",
        "outpass",
    ]);
    assert_eq!(
        private_key_of(
            env,
            &[
                "pkcs12",
                "-in",
                "imported.p12",
                "-passin",
                "file:outpass",
                "-nodes",
                "-nocerts"
            ]
        ),
        delivered
    );
    std::fs::write(env.path("wrong"), "not it\n").unwrap();
    refused(
        env,
        &[
            "km",
            "import",
            "--npki-dir",
            "recovered",
            "--pair",
            "km",
            "--pass-file",
            "wrong",
            "--pkcs12",
            "x.p12",
            "--out-pass-file",
            "outpass",
        ],
        "the password does not open",
    );
    env.ok(&[
        "km",
        "export",
        "--pkcs12",
        "imported.p12",
        "--pass-file",
        "outpass",
        "--pair",
        "sign",
        "--npki-dir",
        "as-sign",
        "--out-pass-file",
        "outpass",
    ]);
    assert!(env.path("as-sign/signCert.der").exists() && env.path("as-sign/signPri.key").exists());
}

/// Everything is in the audit chain, which holds; the km certificate is revoked
/// with its pair.
fn step_audited_and_revoked_with_its_pair(env: &Env, sign_serial: &str, km_serial: &str) {
    // Every request, approval, refusal and release is in the audit chain, and the
    // chain holds.
    let log = env.ok(&["audit", "log", "--limit", "500"]);
    for action in [
        "km.kra.create",
        "km.officer.add",
        "km.archive",
        "km.recover.request",
        "km.recover.approve",
        "km.recover.release",
        "km.recover.refuse",
    ] {
        assert!(log.contains(action), "{action} missing from the audit log");
    }
    assert!(
        !log.contains("BEGIN PRIVATE KEY") && !log.contains("PRIVATE"),
        "key material in the audit log"
    );
    env.ok(&["audit", "verify"]);

    // Revoking the km certificate alone would leave its pair valid (named in the
    // answer); --with-pair revokes both, for the same reason.
    let r = env.run(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        km_serial,
        "--reason",
        "affiliationChanged",
        "--with-pair",
        "--output",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let both: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(both["status"], "revoked", "{both}");
    assert_eq!(both["pair"]["serial"], sign_serial, "{both}");
    assert_eq!(both["pair"]["status"], "revoked", "{both}");
    assert_eq!(both["pair"]["reason"], "affiliationChanged", "{both}");
}

#[test]
fn km_key_archived_delivered_and_recovered_with_two_officers_sqlite() {
    scenario(Backend::Sqlite);
}

#[test]
fn km_key_archived_delivered_and_recovered_with_two_officers_postgres() {
    scenario(Backend::Postgres);
}
