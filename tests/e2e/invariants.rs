//! One test per invariant of the design (design.md, "Invariants").

use std::os::unix::fs::PermissionsExt;

use crate::both_backends;
use crate::support::{require, runtime, sql, Env};

const OFFICIAL: &str = "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";

// Invariant 1: the process is killed between recording and signing; the store knows
// the serial and the tbsCertificate, and no certificate exists that it does not know.
both_backends!(
    invariant_record_before_sign_sqlite,
    invariant_record_before_sign_postgres,
    |env: &Env| {
        env.hierarchy();
        let before = env.counts();
        let out = env
            .command()
            .env("GPKI_FAILPOINT", "after-record")
            .args([
                "cert",
                "issue",
                "--ca",
                "mois",
                "--profile",
                "official-sign",
                "--subject",
                OFFICIAL,
                "--generate-key",
                "--key-out",
                "k.pem",
                "--out",
                "never.pem",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "the failpoint must kill the process");
        assert!(String::from_utf8_lossy(&out.stderr).contains("failpoint after-record"));
        assert!(
            !env.path("never.pem").exists(),
            "nothing was signed, so nothing was written"
        );
        let pending = env.json(&["cert", "list", "--ca", "mois", "--status", "pending"]);
        assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
        let serial = pending[0]["serial"].as_str().unwrap();
        assert_eq!(serial.len(), 32);
        assert_eq!(
            env.counts()["certificates"].as_i64().unwrap(),
            before["certificates"].as_i64().unwrap() + 1
        );
        // The pending record is revocable: if the signature had escaped, it can be killed.
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            serial,
            "--reason",
            "keyCompromise",
        ]);
        env.ok(&["audit", "verify"]);
    }
);

// Invariant 2: serials are unique per issuer, positive, ≥ 64 bits, ≤ 20 octets.
#[test]
fn invariant_serials_unique_positive_random() {
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    env.hierarchy();
    let mut csv = String::from("request_id,subject\n");
    for i in 0..200 {
        csv += &format!("emp{i:04},\"CN=Official {i}(00{i:07}), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR\"\n");
    }
    std::fs::write(env.path("officials.csv"), csv).unwrap();
    env.ok(&[
        "cert",
        "issue-batch",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--csv",
        "officials.csv",
        "--out-dir",
        "out",
    ]);
    let mut seen = std::collections::HashSet::new();
    for i in 0..200 {
        let f = format!("out/emp{i:04}.crt.pem");
        // The oracle reads the serial from the DER, not from gpki.
        let serial = if require("openssl") {
            env.serial_of(&f)
        } else {
            return;
        };
        let bytes = hex::decode(&serial).unwrap();
        assert!(bytes.len() >= 8 && bytes.len() <= 20, "{serial}");
        assert!(
            bytes[0] & 0x80 == 0 && bytes[0] != 0,
            "positive, minimal: {serial}"
        );
        assert!(seen.insert(serial), "serial repeated");
    }
    // The bits are not a counter: over 200 serials every bit position varies.
    let all: Vec<Vec<u8>> = seen.iter().map(|s| hex::decode(s).unwrap()).collect();
    for bit in 8..128 {
        let ones = all
            .iter()
            .filter(|b| b[bit / 8] & (0x80 >> (bit % 8)) != 0)
            .count();
        assert!(
            ones > 40 && ones < 160,
            "bit {bit} set in {ones} of 200 serials"
        );
    }
}

// Invariant 3: a lint finding refuses issuance and names the rule; nothing is recorded.
#[test]
fn invariant_lint_refuses_with_rule_name() {
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    env.hierarchy();
    let before = env.counts();
    // Outside the subordinate's DNS name constraint (go.kr).
    let r = env.fails(&[
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "server",
        "--subject",
        "O=MOIS, L=Sejong, C=KR",
        "--san",
        "dns:www.example.com",
        "--generate-key",
        "--key-out",
        "k1.pem",
    ]);
    assert!(
        r.stderr.contains("[rfc5280.name-constraints]") && r.stderr.contains("www.example.com"),
        "{}",
        r.stderr
    );
    // A profile whose key usage contradicts its EKU: the profile loads, the lint refuses.
    let dir = env.policies_copy();
    let server = std::fs::read_to_string(dir.join("server.toml"))
        .unwrap()
        .replace(
            "key_usage = [\"digitalSignature\"]",
            "key_usage = [\"nonRepudiation\"]",
        );
    std::fs::write(dir.join("server.toml"), server).unwrap();
    let r = env.fails(&[
        "--policies",
        dir.to_str().unwrap(),
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "server",
        "--subject",
        "O=MOIS, L=Sejong, C=KR",
        "--san",
        "dns:docs.mois.go.kr",
        "--generate-key",
        "--key-out",
        "k2.pem",
    ]);
    assert!(
        r.stderr.contains("[rfc5280.key-usage.eku-consistent]"),
        "{}",
        r.stderr
    );
    // The refusal leaves no record; loading the edited profile set is itself an
    // audited change (profiles.change), and the only new audit row.
    let after = env.counts();
    for table in ["authorities", "certificates", "crls"] {
        assert_eq!(
            after[table], before[table],
            "a refused certificate leaves no record"
        );
    }
    assert_eq!(
        after["audit"].as_i64(),
        before["audit"].as_i64().map(|n| n + 1)
    );
    let last = env.json(&["audit", "log", "--limit", "1"]);
    assert_eq!(last[0]["action"], "profiles.change", "{last}");
    assert!(!env.path("k1.pem").exists() && !env.path("k2.pem").exists());
}

// Invariant 4: a revoked certificate is on the next CRL, and revocation is never
// undone except from certificateHold.
both_backends!(
    invariant_revocation_is_final_sqlite,
    invariant_revocation_is_final_postgres,
    |env: &Env| {
        env.hierarchy();
        let issued = env.issue_official("c.pem");
        let serial = issued["serial"].as_str().unwrap();
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            serial,
            "--reason",
            "affiliationChanged",
        ]);
        let r = env.fails(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            serial,
            "--reason",
            "certificateHold",
        ]);
        assert!(r.stderr.contains("already revoked"), "{}", r.stderr);
        let r = env.fails(&["cert", "release", "--ca", "mois", "--serial", serial]);
        assert!(r.stderr.contains("not on hold"), "{}", r.stderr);
        let r = env.fails(&["cert", "renew", "--ca", "mois", "--serial", serial]);
        assert!(
            r.stderr.contains("only issued certificates are renewed"),
            "{}",
            r.stderr
        );
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "c.crl"]);
        if require("openssl") {
            let crl = env.openssl_ok(&["crl", "-in", "c.crl", "-noout", "-text"]);
            assert!(
                crl.contains(&serial.to_ascii_uppercase()) && crl.contains("Affiliation Changed"),
                "{crl}"
            );
        }
        let shown = env.json(&["cert", "show", "--ca", "mois", "--serial", serial]);
        assert_eq!(shown["status"], "revoked");
    }
);

// Invariant 5: private keys never appear in output, logs, the store, or
// world-readable files.
#[test]
fn invariant_private_keys_never_leak() {
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    let mut output = String::new();
    let mut run = |args: &[&str]| {
        let r = env
            .command()
            .env("GPKI_LOG", "trace")
            .args(args)
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        output += &String::from_utf8_lossy(&r.stdout);
        output += &String::from_utf8_lossy(&r.stderr);
    };
    run(&[
        "ca",
        "init-root",
        "--name",
        "root",
        "--subject",
        "CN=Test Root CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p384",
    ]);
    run(&[
        "ca",
        "create",
        "--parent",
        "root",
        "--name",
        "mois",
        "--subject",
        "CN=Test MOIS CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p256",
    ]);
    run(&[
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--subject",
        OFFICIAL,
        "--generate-key",
        "--key-out",
        "ee.key",
        "--pkcs12",
        "ee.p12",
        "--output",
        "json",
    ]);
    run(&["crl", "generate", "--ca", "mois"]);
    let wrong = env
        .command()
        .env("GPKI_KEY_PASS", "wrong")
        .env_remove("GPKI_KEY_PASS_FILE")
        .args(["crl", "generate", "--ca", "mois"])
        .output()
        .unwrap();
    let wrong_err = String::from_utf8_lossy(&wrong.stderr).into_owned();
    assert!(
        wrong_err.contains("passphrase does not decrypt"),
        "{wrong_err}"
    );
    assert!(!wrong_err.contains("wrong\n") && !wrong_err.contains("correct horse"));
    output += &wrong_err;
    assert!(
        !output.contains("PRIVATE KEY"),
        "key material in output:\n{output}"
    );

    let db = std::fs::read(env.path("gpki.db")).unwrap();
    let mut files = vec![
        env.path("data/offline/root.key.pem"),
        env.path("data/keys/mois.key.pem"),
        env.path("ee.key"),
    ];
    for f in &files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is mode {mode:o}", f.display());
        let pem = std::fs::read_to_string(f).unwrap();
        assert!(
            pem.contains("BEGIN ENCRYPTED PRIVATE KEY"),
            "{} is not encrypted",
            f.display()
        );
    }
    files.truncate(2);
    if require("openssl") {
        for f in &files {
            // The raw private scalar, decrypted by OpenSSL, appears nowhere.
            let text = env.openssl_ok(&[
                "pkey",
                "-in",
                f.to_str().unwrap(),
                "-passin",
                "file:pass",
                "-noout",
                "-text",
            ]);
            let hexpriv: String = text
                .split("pub:")
                .next()
                .unwrap()
                .split("priv:")
                .nth(1)
                .unwrap()
                .chars()
                .filter(|c| c.is_ascii_hexdigit())
                .collect();
            let scalar = hex::decode(hexpriv.trim_start_matches("00")).unwrap();
            assert!(scalar.len() >= 30);
            assert!(
                !db.windows(scalar.len()).any(|w| w == scalar.as_slice()),
                "private key of {} found in the store",
                f.display()
            );
            assert!(
                !output.contains(&hex::encode(&scalar))
                    && !output.contains(&hex::encode_upper(&scalar))
            );
        }
    }
    let p12 = std::fs::metadata(env.path("ee.p12"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(p12, 0o600);
}

// Invariant 6: every state change is audited; an edited, inserted or deleted row is
// detected and named.
both_backends!(
    invariant_audit_chain_detects_tampering_sqlite,
    invariant_audit_chain_detects_tampering_postgres,
    |env: &Env| {
        env.hierarchy();
        let issued = env.issue_official("c.pem");
        let serial = issued["serial"].as_str().unwrap();
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            serial,
            "--reason",
            "certificateHold",
        ]);
        env.ok(&["cert", "release", "--ca", "mois", "--serial", serial]);
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "c.crl"]);
        let log = env.json(&["audit", "log", "--limit", "100"]);
        let actions: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["action"].as_str().unwrap())
            .collect();
        for a in [
            "ca.create",
            "ca.activate",
            "cert.issue",
            "cert.revoke",
            "cert.release",
            "crl.generate",
        ] {
            assert!(actions.contains(&a), "no audit record for {a}: {actions:?}");
        }
        let report = env.json(&["audit", "verify"]);
        let rows = report["rows"].as_i64().unwrap();
        assert!(rows >= 10 && report["problems"].as_array().unwrap().is_empty());

        let rt = runtime();
        // Edit: the row is named.
        rt.block_on(sql(
            &env.store,
            &["UPDATE audit_log SET detail = '{\"reason\":\"nothing to see\"}' WHERE seq = 5"],
        ));
        let r = env.fails(&["audit", "verify"]);
        assert!(r.stdout.contains("row 5 was edited"), "{}", r.stdout);
        // Delete in the middle: the gap is named.
        rt.block_on(sql(&env.store, &["DELETE FROM audit_log WHERE seq = 7"]));
        let r = env.fails(&["audit", "verify"]);
        assert!(r.stdout.contains("row 7 is missing"), "{}", r.stdout);
        // Delete the newest row: the chain head notices.
        rt.block_on(sql(
            &env.store,
            &[&format!("DELETE FROM audit_log WHERE seq = {rows}")],
        ));
        let r = env.fails(&["audit", "verify"]);
        assert!(
            r.stdout
                .contains(&format!("rows {rows}..{rows} at the end are missing")),
            "{}",
            r.stdout
        );
        // Insert a forged row between two others.
        rt.block_on(sql(&env.store, &["INSERT INTO audit_log (seq, at, actor, action, target, detail, prev_hash, hash) SELECT 7, at, 'mallory', 'cert.revoke', target, detail, prev_hash, hash FROM audit_log WHERE seq = 6"]));
        let r = env.fails(&["audit", "verify"]);
        assert!(
            r.stdout.contains("row 7 does not chain") || r.stdout.contains("row 7 was edited"),
            "{}",
            r.stdout
        );
    }
);
