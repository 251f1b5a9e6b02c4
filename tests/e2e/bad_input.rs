//! Invariant 7: bad input gets a clear error naming the problem, exit code 1, and
//! changes nothing (row counts and the audit chain are as before).

use crate::both_backends;
use crate::support::{require, runtime, Env};

const OFFICIAL: &str = "/C=KR/O=Government of Korea/OU=Ministry of the Interior and Safety/OU=people/CN=Hong Gildong(001234567)";

both_backends!(
    invariant_bad_input_changes_nothing_sqlite,
    invariant_bad_input_changes_nothing_postgres,
    |env: &Env| {
        if !require("openssl") {
            return;
        }
        env.hierarchy();
        let good = env.csr(
            "good",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            OFFICIAL,
        );
        let good_pem = std::fs::read_to_string(&good).unwrap();
        std::fs::write(env.path("garbage.csr"), "this is not a CSR\n").unwrap();
        std::fs::write(env.path("truncated.csr"), &good_pem[..good_pem.len() / 2]).unwrap();
        let der = env.openssl_ok(&[
            "req", "-in", "good.csr", "-outform", "DER", "-out", "good.der",
        ]);
        let _ = der;
        let mut bytes = std::fs::read(env.path("good.der")).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0x55; // inside the signature value
        std::fs::write(env.path("badsig.der"), &bytes).unwrap();
        std::fs::write(env.path("truncated.der"), &bytes[..n - 20]).unwrap();
        std::fs::write(
            env.path("key-not-csr.pem"),
            std::fs::read(env.path("good.key")).unwrap(),
        )
        .unwrap();
        env.csr("rsa1024", &["rsa:1024"], OFFICIAL);
        env.csr(
            "ec-for-km",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            OFFICIAL,
        );
        env.csr(
            "outside",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "/C=KR/L=Sejong/O=MOIS",
        );
        env.csr(
            "wrongshape",
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "/C=KR/O=Government of Korea/CN=No OU",
        );

        let issued = env.json(&[
            "cert",
            "issue",
            "--ca",
            "mois",
            "--profile",
            "official-sign",
            "--csr",
            "good.csr",
            "--out",
            "ok.pem",
        ]);
        let serial = issued["serial"].as_str().unwrap().to_string();
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &serial,
            "--reason",
            "keyCompromise",
        ]);
        let before = env.counts();
        let audit_before = env.json(&["audit", "verify"]);

        fn issue<'a>(csr: &'a str, profile: &'a str) -> Vec<&'a str> {
            vec![
                "cert",
                "issue",
                "--ca",
                "mois",
                "--profile",
                profile,
                "--csr",
                csr,
            ]
        }
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (issue("garbage.csr", "official-sign"), "neither DER nor PEM"),
            (issue("truncated.csr", "official-sign"), "truncated"),
            (
                issue("truncated.der", "official-sign"),
                "not a valid PKCS#10",
            ),
            (
                issue("badsig.der", "official-sign"),
                "CSR signature does not verify",
            ),
            (
                issue("key-not-csr.pem", "official-sign"),
                "found `PRIVATE KEY`",
            ),
            (
                issue("rsa1024.csr", "official-sign"),
                "RSA key of 1024 bits is not supported",
            ),
            (
                issue("ec-for-km.csr", "official-km"),
                "does not allow p256 keys",
            ),
            (
                issue("wrongshape.csr", "official-sign"),
                "does not fit profile official-sign's template",
            ),
            (
                vec![
                    "cert",
                    "issue",
                    "--ca",
                    "mois",
                    "--profile",
                    "server",
                    "--csr",
                    "outside.csr",
                    "--san",
                    "dns:www.example.com",
                ],
                "[rfc5280.name-constraints]",
            ),
            (
                issue("good.csr", "no-such-profile"),
                "unknown profile `no-such-profile`",
            ),
            (
                vec![
                    "cert",
                    "issue",
                    "--ca",
                    "nowhere",
                    "--profile",
                    "official-sign",
                    "--csr",
                    "good.csr",
                ],
                "unknown CA `nowhere`",
            ),
            (
                vec![
                    "cert",
                    "issue",
                    "--ca",
                    "mois",
                    "--profile",
                    "sub-ca",
                    "--csr",
                    "good.csr",
                ],
                "is for CA certificates",
            ),
            (
                vec![
                    "cert",
                    "issue",
                    "--ca",
                    "mois",
                    "--profile",
                    "official-sign",
                    "--csr",
                    "good.csr",
                    "--validity-days",
                    "9999",
                ],
                "exceeds profile official-sign's 730 days",
            ),
            (
                vec![
                    "cert",
                    "issue",
                    "--ca",
                    "mois",
                    "--profile",
                    "official-sign",
                    "--csr",
                    "good.csr",
                    "--san",
                    "dns:www.mois.go.kr",
                ],
                "does not allow dns subjectAltNames",
            ),
            (
                vec![
                    "cert",
                    "revoke",
                    "--ca",
                    "mois",
                    "--serial",
                    "0badc0ffee",
                    "--reason",
                    "keyCompromise",
                ],
                "no certificate with serial 0badc0ffee",
            ),
            (
                vec![
                    "cert",
                    "revoke",
                    "--ca",
                    "mois",
                    "--serial",
                    &serial,
                    "--reason",
                    "superseded",
                ],
                "already revoked",
            ),
            (
                vec![
                    "cert", "revoke", "--ca", "mois", "--serial", &serial, "--reason", "stolen",
                ],
                "unknown revocation reason `stolen`",
            ),
            (
                vec![
                    "cert",
                    "revoke",
                    "--ca",
                    "mois",
                    "--serial",
                    "xyz",
                    "--reason",
                    "keyCompromise",
                ],
                "serial `xyz` is not hexadecimal",
            ),
            (
                vec![
                    "ca",
                    "create",
                    "--parent",
                    "mois",
                    "--name",
                    "deeper",
                    "--subject",
                    "CN=Deeper, OU=GPKI, O=Government of Korea, C=KR",
                ],
                "pathLenConstraint 0",
            ),
            (
                vec![
                    "ca",
                    "create",
                    "--parent",
                    "root",
                    "--name",
                    "mois",
                    "--subject",
                    "CN=Again, OU=GPKI, O=Government of Korea, C=KR",
                ],
                "a CA named `mois` exists already",
            ),
            (
                vec![
                    "ca",
                    "init-root",
                    "--name",
                    "bad name",
                    "--subject",
                    "CN=X, OU=GPKI, O=Government of Korea, C=KR",
                ],
                "CA name `bad name`",
            ),
            (
                vec![
                    "ca",
                    "cross-certify",
                    "--issuer",
                    "root",
                    "--cert",
                    "ok.pem",
                ],
                "only CA certificates are cross-certified",
            ),
        ];
        for (args, expected) in &cases {
            let r = env.fails(args);
            assert!(
                r.stderr.contains(expected),
                "gpki {args:?}: expected `{expected}` in:\n{}",
                r.stderr
            );
            assert_eq!(env.counts(), before, "gpki {args:?} changed the store");
        }
        // A wrong CA key passphrase.
        let r = env
            .command()
            .env("GPKI_KEY_PASS", "not the passphrase")
            .env_remove("GPKI_KEY_PASS_FILE")
            .args([
                "cert",
                "issue",
                "--ca",
                "mois",
                "--profile",
                "official-sign",
                "--csr",
                "good.csr",
            ])
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("wrong passphrase"),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        // A usage error is exit code 2.
        assert_eq!(env.run(&["cert", "issue", "--nonsense"]).code, 2);
        assert_eq!(env.counts(), before);
        let audit_after = env.json(&["audit", "verify"]);
        assert_eq!(audit_before, audit_after, "the audit chain is unchanged");
    }
);

#[test]
fn locked_and_unreachable_stores_are_named() {
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    env.hierarchy();
    let before = env.counts();
    // Another process holds SQLite's write lock.
    let store = env.store.clone();
    let rt = runtime();
    let locked = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&store)
            .await
            .unwrap();
        sqlx::Executor::execute(&mut c, "BEGIN EXCLUSIVE")
            .await
            .unwrap();
        let r = env
            .command()
            .env("GPKI_STORE_BUSY_TIMEOUT_MS", "300")
            .args([
                "cert",
                "revoke",
                "--ca",
                "mois",
                "--serial",
                "01",
                "--reason",
                "keyCompromise",
            ])
            .output()
            .unwrap();
        sqlx::Executor::execute(&mut c, "ROLLBACK").await.unwrap();
        r
    });
    assert_eq!(locked.status.code(), Some(1));
    let err = String::from_utf8_lossy(&locked.stderr);
    assert!(err.contains("store is locked"), "{err}");
    assert_eq!(env.counts(), before);
    // Nothing listens on port 1.
    let r = env.fails(&[
        "--store",
        "postgres://postgres@127.0.0.1:1/gpki",
        "ca",
        "list",
    ]);
    assert!(r.stderr.contains("store is unreachable"), "{}", r.stderr);
    let r = env.fails(&["--store", "mysql://x", "ca", "list"]);
    assert!(
        r.stderr.contains("neither sqlite://PATH nor postgres://"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_profile_file_is_refused_at_load() {
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    let dir = env.path("policies");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("g-ssl.toml"),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/g-ssl.toml"
        ))
        .unwrap()
        .replace("validity_days = 199", "validity_days = \"long\""),
    )
    .unwrap();
    let r = env.fails(&["--policies", dir.to_str().unwrap(), "profile", "list"]);
    assert!(
        r.stderr.contains("g-ssl.toml") && r.stderr.contains("validity_days"),
        "{}",
        r.stderr
    );
}
