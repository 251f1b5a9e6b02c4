//! Issue, renew, revoke, hold and release, CRLs and delta CRLs, on both stores.

use crate::both_backends;
use crate::support::{pkilint, require, Env};

const OFFICIAL: &str = "/C=KR/O=Government of Korea/OU=Ministry of the Interior and Safety/OU=people/CN=Hong Gildong(001234567)";

fn issue_from_csr(env: &Env, name: &str) -> String {
    let csr = env.csr(
        name,
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        OFFICIAL,
    );
    let out = format!("{name}.pem");
    env.ok(&[
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--csr",
        csr.to_str().unwrap(),
        "--san",
        "email:gildong.hong@mois.go.kr",
        "--out",
        &out,
    ]);
    out
}

both_backends!(lifecycle_sqlite, lifecycle_postgres, |env: &Env| {
    if !require("openssl") {
        return;
    }
    env.hierarchy();
    let cert = issue_from_csr(env, "alice");
    env.verify(&cert);
    let serial = env.serial_of(&cert);
    let text = env.openssl_ok(&["x509", "-in", &cert, "-noout", "-text"]);
    assert!(
        text.contains("email:gildong.hong@mois.go.kr")
            && text.contains("OCSP - URI:http://pki.test.go.kr/ocsp"),
        "{text}"
    );

    // Renewal with the same key: new serial, same public key, linked to the old one.
    let renewed = env.json(&[
        "cert",
        "renew",
        "--ca",
        "mois",
        "--serial",
        &serial,
        "--out",
        "renewed.pem",
    ]);
    assert_ne!(renewed["serial"], serial.as_str());
    let key_of = |f: &str| env.openssl_ok(&["x509", "-in", f, "-noout", "-pubkey"]);
    assert_eq!(key_of("renewed.pem"), key_of(&cert));
    assert!(renewed["renewed_from"].is_i64());
    env.verify("renewed.pem");
    // Rekey with a generated key, written as PKCS#12, revoking the old certificate.
    let rekeyed = env.json(&[
        "cert",
        "renew",
        "--ca",
        "mois",
        "--serial",
        renewed["serial"].as_str().unwrap(),
        "--generate-key",
        "--pkcs12",
        "rekey.p12",
        "--revoke-old",
        "--out",
        "rekeyed.pem",
    ]);
    assert_ne!(key_of("rekeyed.pem"), key_of(&cert));
    let p12 = env.openssl_ok(&[
        "pkcs12",
        "-in",
        "rekey.p12",
        "-passin",
        "file:outpass",
        "-nokeys",
    ]);
    assert!(p12.contains("BEGIN CERTIFICATE"), "{p12}");
    let old = env.json(&[
        "cert",
        "show",
        "--ca",
        "mois",
        "--serial",
        renewed["serial"].as_str().unwrap(),
    ]);
    assert_eq!(old["status"], "revoked");
    assert_eq!(old["reason"], "superseded");
    assert!(rekeyed["key_files"][0]
        .as_str()
        .unwrap()
        .ends_with("rekey.p12"));

    // Revocation shows on the next CRL with its reason and invalidity date.
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
        "--invalidity-date",
        "2026-01-02T03:04:05Z",
    ]);
    env.ok(&["crl", "generate", "--ca", "mois", "--out", "full.crl"]);
    let crl = env.openssl_ok(&[
        "crl",
        "-in",
        "full.crl",
        "-noout",
        "-text",
        "-verify",
        "-CAfile",
        "chain.pem",
    ]);
    assert!(
        crl.contains("verify OK")
            && crl.contains(&serial.to_ascii_uppercase())
            && crl.contains("Key Compromise"),
        "{crl}"
    );
    assert!(
        crl.contains("Invalidity Date") && crl.contains("Jan  2 03:04:05 2026 GMT"),
        "{crl}"
    );
    let verify = env.openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        "chain.pem",
        "-CRLfile",
        "full.crl",
        &cert,
    ]);
    assert_ne!(verify.code, 0);
    assert!((verify.stdout + &verify.stderr).contains("certificate revoked"));

    // Hold, then release: the delta CRL first lists the hold, then removeFromCRL.
    let held = issue_from_csr(env, "bob");
    let held_serial = env.serial_of(&held);
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        &held_serial,
        "--reason",
        "certificateHold",
    ]);
    env.ok(&[
        "crl",
        "generate",
        "--ca",
        "mois",
        "--delta",
        "--out",
        "delta1.crl",
    ]);
    let d1 = env.openssl_ok(&[
        "crl",
        "-in",
        "delta1.crl",
        "-noout",
        "-text",
        "-verify",
        "-CAfile",
        "chain.pem",
    ]);
    assert!(
        d1.contains("Delta CRL Indicator")
            && d1.contains("Certificate Hold")
            && d1.contains(&held_serial.to_ascii_uppercase()),
        "{d1}"
    );
    assert!(
        !d1.contains(&serial.to_ascii_uppercase()),
        "a delta lists only changes after its base:\n{d1}"
    );
    env.ok(&["cert", "release", "--ca", "mois", "--serial", &held_serial]);
    env.ok(&[
        "crl",
        "generate",
        "--ca",
        "mois",
        "--delta",
        "--out",
        "delta2.crl",
    ]);
    let d2 = env.openssl_ok(&["crl", "-in", "delta2.crl", "-noout", "-text"]);
    assert!(d2.contains("Remove From CRL"), "{d2}");
    env.ok(&["crl", "generate", "--ca", "mois", "--out", "full2.crl"]);
    let f2 = env.openssl_ok(&["crl", "-in", "full2.crl", "-noout", "-text"]);
    assert!(
        !f2.contains(&held_serial.to_ascii_uppercase())
            && f2.contains(&serial.to_ascii_uppercase()),
        "{f2}"
    );
    env.verify(&held);
    if require("lint_crl") {
        for f in ["full.crl", "delta1.crl", "delta2.crl", "full2.crl"] {
            let findings = pkilint("lint_crl", &["-t", "CRL", "-p", "PKIX"], &env.path(f));
            assert!(findings.is_empty(), "{f}:\n{findings}");
        }
    }

    // Listing with filters, as JSON.
    let revoked = env.json(&["cert", "list", "--ca", "mois", "--status", "revoked"]);
    let serials: Vec<&str> = revoked
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap())
        .collect();
    assert!(
        serials.contains(&serial.as_str()) && serials.len() == 2,
        "{revoked}"
    );
    let cas = env.json(&["ca", "list"]);
    assert_eq!(cas.as_array().unwrap().len(), 2);
    assert_eq!(cas[1]["parent"], "root");
    env.ok(&["audit", "verify"]);
});

both_backends!(
    root_arl_lists_revoked_subordinate_sqlite,
    root_arl_lists_revoked_subordinate_postgres,
    |env: &Env| {
        if !require("openssl") {
            return;
        }
        env.hierarchy();
        let sub_serial = env.serial_of("mois.pem");
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "root",
            "--serial",
            &sub_serial,
            "--reason",
            "cACompromise",
        ]);
        env.ok(&["crl", "generate", "--ca", "root", "--out", "arl.crl"]);
        let arl = env.openssl_ok(&[
            "crl", "-in", "arl.crl", "-noout", "-text", "-verify", "-CAfile", "root.pem",
        ]);
        assert!(
            !arl.contains("Only CA Certificates") && arl.contains(&sub_serial.to_ascii_uppercase()),
            "{arl}"
        );
        if require("lint_crl") {
            let findings = pkilint(
                "lint_crl",
                &["-t", "ARL", "-p", "PKIX"],
                &env.path("arl.crl"),
            );
            assert!(findings.is_empty(), "{findings}");
        }
    }
);

// RFC 5280 §3.3: an entry may leave the CRL once the certificate has expired, but only
// after it appeared on at least one CRL issued while it was listed.
both_backends!(
    expired_entries_drop_off_after_one_crl_sqlite,
    expired_entries_drop_off_after_one_crl_postgres,
    |env: &Env| {
        if !require("openssl") {
            return;
        }
        env.hierarchy();
        let a = issue_from_csr(env, "expiring");
        let b = issue_from_csr(env, "staying");
        let (sa, sb) = (env.serial_of(&a), env.serial_of(&b));
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &sa,
            "--reason",
            "keyCompromise",
        ]);
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &sb,
            "--reason",
            "keyCompromise",
        ]);
        // `a` expired long ago (the store is edited: issuing an expired certificate is refused).
        crate::support::runtime().block_on(crate::support::sql(
            &env.store,
            &[&format!(
                "UPDATE certificates SET not_after = 1000 WHERE serial = '{sa}'"
            )],
        ));
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "first.crl"]);
        let first = env.openssl_ok(&["crl", "-in", "first.crl", "-noout", "-text"]);
        assert!(
            first.contains(&sa.to_ascii_uppercase()),
            "revoked since the last CRL: listed once even though expired\n{first}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "second.crl"]);
        let second = env.openssl_ok(&["crl", "-in", "second.crl", "-noout", "-text"]);
        assert!(
            !second.contains(&sa.to_ascii_uppercase()),
            "expired and already listed: dropped\n{second}"
        );
        assert!(second.contains(&sb.to_ascii_uppercase()), "{second}");
    }
);

// A renewal keeps the certificate's identity: a new CSR proves its key and adds nothing.
#[test]
fn renewal_with_csr_keeps_subject_and_sans() {
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    if !require("openssl") {
        return;
    }
    env.hierarchy();
    let old = issue_from_csr(&env, "kim");
    let serial = env.serial_of(&old);
    env.openssl_ok(&[
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "wider.key", "-out", "wider.csr",
        "-subj", "/C=KR/O=Government of Korea/OU=Supreme Prosecutors Office/OU=people/CN=Someone Else(999999999)",
        "-addext", "subjectAltName=email:someone.else@spo.go.kr",
    ]);
    env.ok(&[
        "cert",
        "renew",
        "--ca",
        "mois",
        "--serial",
        &serial,
        "--csr",
        "wider.csr",
        "--out",
        "renewed.pem",
    ]);
    env.verify("renewed.pem");
    let subject = |f: &str| {
        env.openssl_ok(&[
            "x509",
            "-in",
            f,
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
        ])
    };
    assert_eq!(
        subject("renewed.pem"),
        subject(&old),
        "renewal changed the identity"
    );
    let new_key = env.openssl_ok(&["pkey", "-in", "wider.key", "-pubout"]);
    assert_eq!(
        env.openssl_ok(&["x509", "-in", "renewed.pem", "-noout", "-pubkey"]),
        new_key,
        "the CSR's key is certified"
    );
}
