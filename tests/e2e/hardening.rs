//! Trust hardening (issue 9): a CA that is revoked, held or expired signs nothing
//! but CRLs; a key revoked as compromised is never certified again; a recorded
//! tbsCertificate is signed only when it is what a first issuance would plan; the
//! root signs only CA and responder certificates.

use crate::both_backends;
use crate::support::{pkilint, require, Backend, Env};

const OFFICIAL: &str = "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";

fn ca_state(env: &Env, name: &str) -> serde_json::Value {
    let list = env.json(&["ca", "list"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no CA {name} in {list}"))
}

both_backends!(
    invariant_revoked_or_held_ca_stops_issuing_sqlite,
    invariant_revoked_or_held_ca_stops_issuing_postgres,
    |env: &Env| {
        if !require("openssl") {
            return;
        }
        env.hierarchy();
        env.issue_official("before.pem");
        assert_eq!(ca_state(env, "mois")["status"], "active");
        let mois = env.serial_of("mois.pem");

        // On hold: refused, with the reason; released: issues again.
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "root",
            "--serial",
            &mois,
            "--reason",
            "certificateHold",
        ]);
        let held = ca_state(env, "mois");
        assert_eq!(held["status"], "hold", "{held}");
        let r = env.fails(&[
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
            "x.key",
            "--out",
            "x.pem",
        ]);
        assert!(r.stderr.contains("on hold"), "{}", r.stderr);
        env.ok(&["cert", "release", "--ca", "root", "--serial", &mois]);
        env.issue_official("released.pem");

        // Revoked for cACompromise by the root: every signing operation refuses, by
        // name: certificates, responder certificates, subordinate CAs.
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "root",
            "--serial",
            &mois,
            "--reason",
            "cACompromise",
        ]);
        let counts = env.counts();
        let revoked = ca_state(env, "mois");
        assert_eq!(revoked["status"], "revoked", "{revoked}");
        assert_eq!(revoked["status_cause"], "mois", "{revoked}");
        for args in [
            &[
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
                "y.key",
                "--out",
                "y.pem",
            ][..],
            &["ocsp", "issue-signer", "--ca", "mois"],
            &[
                "cert",
                "renew",
                "--ca",
                "mois",
                "--serial",
                &env.serial_of("released.pem"),
            ],
        ] {
            let r = env.fails(args);
            assert!(
                r.stderr
                    .contains("certificate of CA `mois` is revoked (cACompromise)")
                    && r.stderr.contains("signs nothing but CRLs"),
                "gpki {args:?}: {}",
                r.stderr
            );
        }
        assert_eq!(env.counts()["certificates"], counts["certificates"]);

        // Its CRL is still signed (relying parties need it), and the audit record
        // says the CA was revoked when it signed.
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "mois.crl"]);
        env.openssl_ok(&[
            "crl", "-in", "mois.crl", "-noout", "-verify", "-CAfile", "mois.pem",
        ]);
        let log = env.json(&["audit", "log", "--limit", "1"]);
        let last = &log.as_array().unwrap()[0];
        assert_eq!(last["action"], "crl.generate", "{log}");
        assert!(last["detail"].to_string().contains("revoked"), "{log}");
        env.ok(&["audit", "verify"]);
    }
);

// A CA whose own certificate, or one above it, has expired: the clock moves on
// under libfaketime, the store and the files stay as they are.
#[test]
fn invariant_expired_ca_stops_issuing() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("faketime") {
        return;
    }
    env.hierarchy();
    env.ok(&[
        "ca",
        "create",
        "--parent",
        "root",
        "--name",
        "short",
        "--subject",
        "CN=Short Lived CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p256",
        "--path-len",
        "0",
        "--validity-days",
        "2",
    ]);
    let later = |args: &[&str]| {
        let out = env
            .command()
            .env("FAKETIME", "+3d")
            .env("LD_PRELOAD", faketime_lib())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = later(&[
        "cert",
        "issue",
        "--ca",
        "short",
        "--profile",
        "official-sign",
        "--subject",
        OFFICIAL,
        "--generate-key",
        "--key-out",
        "z.key",
        "--out",
        "z.pem",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("certificate of CA `short` has expired"),
        "{err}"
    );
    let (code, list) = later(&["ca", "list", "--output", "json"]);
    assert_eq!(code, Some(0), "{list}");
    // Today it still issues.
    env.ok(&[
        "cert",
        "issue",
        "--ca",
        "short",
        "--profile",
        "official-sign",
        "--subject",
        OFFICIAL,
        "--generate-key",
        "--key-out",
        "z.key",
        "--out",
        "z.pem",
    ]);
}

// An expired certificate vouches for nothing: renewing it (a rebinding of its
// name with no identity seen) is refused on every route, from the CLI here, as the
// CA service refused it already (issue 28, close the class).
#[test]
fn an_expired_certificate_is_not_renewed() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("faketime") {
        return;
    }
    env.hierarchy();
    let issued = env.json(&[
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
        "e.key",
        "--out",
        "e.pem",
        "--validity-days",
        "1",
    ]);
    let serial = issued["serial"].as_str().unwrap().to_string();
    let before = env.counts();
    let out = env
        .command()
        .env("FAKETIME", "+2d")
        .env("LD_PRELOAD", faketime_lib())
        .args(["cert", "renew", "--ca", "mois", "--serial", &serial])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("expired at") && err.contains("is not renewed"),
        "{err}"
    );
    assert_eq!(env.counts()["certificates"], before["certificates"]);
    // Within its validity it renews.
    env.ok(&["cert", "renew", "--ca", "mois", "--serial", &serial]);
}

/// The libfaketime preload library Debian's `faketime` package installs.
fn faketime_lib() -> String {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -n1",
        ])
        .output()
        .unwrap();
    let lib = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!lib.is_empty(), "libfaketime.so.1 not found");
    lib
}

both_backends!(
    invariant_compromised_key_is_never_certified_again_sqlite,
    invariant_compromised_key_is_never_certified_again_postgres,
    |env: &Env| {
        if !require("openssl") {
            return;
        }
        env.hierarchy();
        env.ok(&[
            "ca",
            "create",
            "--parent",
            "root",
            "--name",
            "moe",
            "--subject",
            "CN=Test MOE CA, OU=GPKI, O=Government of Korea, C=KR",
            "--key-type",
            "p256",
            "--path-len",
            "0",
        ]);
        let subject = "/C=KR/O=Government of Korea/OU=Ministry of the Interior and Safety/OU=people/CN=Hong Gildong(001234567)";
        env.csr("k", &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], subject);
        let issue = |ca: &str, csr: &str, out: &str| {
            env.run(&[
                "cert",
                "issue",
                "--ca",
                ca,
                "--profile",
                "official-sign",
                "--csr",
                csr,
                "--out",
                out,
            ])
        };
        assert_eq!(issue("mois", "k.csr", "k1.pem").code, 0);
        // Superseded is not compromise: the same key may be certified again.
        let k1 = env.serial_of("k1.pem");
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &k1,
            "--reason",
            "superseded",
        ]);
        assert_eq!(issue("mois", "k.csr", "k2.pem").code, 0);
        let k2 = env.serial_of("k2.pem");
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &k2,
            "--reason",
            "keyCompromise",
        ]);
        let counts = env.counts();
        // A new CSR for the same key, to the same CA and to another one.
        env.openssl_ok(&[
            "req",
            "-new",
            "-key",
            "k.key",
            "-out",
            "k-again.csr",
            "-subj",
            subject,
        ]);
        for ca in ["mois", "moe"] {
            let r = issue(ca, "k-again.csr", "k3.pem");
            assert_eq!(r.code, 1, "{ca}: {}", r.stderr);
            assert!(
                r.stderr.contains("revoked as compromised")
                    && r.stderr.contains(&format!("certificate {k2} of CA `mois`")),
                "{ca}: {}",
                r.stderr
            );
        }
        assert_eq!(env.counts(), counts, "a refusal changed the store");
        // In a batch, that row fails and the others are issued.
        std::fs::write(
            env.path("batch.csv"),
            format!(
                "request_id,subject,csr\nbad,\"{OFFICIAL}\",k-again.csr\ngood,\"CN=Kim Cheolsu(001234568), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR\",\n"
            ),
        )
        .unwrap();
        let run = env.run(&[
            "cert",
            "issue-batch",
            "--ca",
            "mois",
            "--profile",
            "official-sign",
            "--csv",
            "batch.csv",
            "--out-dir",
            "batch",
            "--output",
            "json",
        ]);
        assert_eq!(
            run.code, 1,
            "a batch with a refused row fails: {}",
            run.stderr
        );
        let report = first_json(&run.stdout);
        assert_eq!(report["issued"], 1, "{report}");
        let failed = report["failed"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{report}");
        assert_eq!(failed[0]["request_id"], "bad");
        assert!(
            failed[0]["error"]
                .as_str()
                .unwrap()
                .contains("revoked as compromised"),
            "{report}"
        );
        env.ok(&["audit", "verify"]);
    }
);

both_backends!(
    batch_resume_refuses_an_edited_tbs_certificate_sqlite,
    batch_resume_refuses_an_edited_tbs_certificate_postgres,
    |env: &Env| {
        env.hierarchy();
        let mut csv = String::from("request_id,subject,san\n");
        for i in 0..4 {
            csv += &format!(
                "emp{i},\"CN=Official {i}(1{i:08}), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR\",\n"
            );
        }
        std::fs::write(env.path("officials.csv"), csv).unwrap();
        let args = [
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
            "--output",
            "json",
        ];
        let crashed = env
            .command()
            .env("GPKI_FAILPOINT", "after-record")
            .args(args)
            .output()
            .unwrap();
        assert!(!crashed.status.success());
        // Someone with write access to the store pushes the recorded notAfter of
        // one pending row ten years out (its key is untouched).
        let rt = crate::support::runtime();
        let (id, tbs) = rt.block_on(async {
            sqlx::any::install_default_drivers();
            let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&env.store)
                .await
                .unwrap();
            let row = sqlx::query(
                "SELECT id, tbs FROM certificates WHERE status = 'pending' AND request_key LIKE '%emp2' ",
            )
            .fetch_one(&mut c)
            .await
            .unwrap();
            use sqlx::Row;
            (row.get::<i64, _>("id"), row.get::<Vec<u8>, _>("tbs"))
        });
        let edited = push_not_after(&tbs);
        assert_ne!(edited, tbs);
        // ... and makes the row's own columns agree, so only planning the row again
        // (the profile's 730 days, the issuer's validity) can tell.
        let not_after = {
            use der::Decode;
            let t = x509_cert::certificate::TbsCertificate::from_der(&edited).unwrap();
            t.validity.not_after.to_unix_duration().as_secs() as i64
        };
        rt.block_on(async {
            let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&env.store)
                .await
                .unwrap();
            sqlx::query("UPDATE certificates SET tbs = $1, not_after = $2 WHERE id = $3")
                .bind(&edited)
                .bind(not_after)
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap();
        });
        let out = env.run(&args);
        assert_eq!(out.code, 1, "{}", out.stderr);
        let report = first_json(&out.stdout);
        assert_eq!(report["resumed"], 3, "{report}");
        let failed = report["failed"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{report}");
        assert_eq!(failed[0]["request_id"], "emp2");
        let err = failed[0]["error"].as_str().unwrap();
        assert!(
            err.contains("was not resumed")
                && err.contains("validity")
                && err.contains("nothing was signed"),
            "{err}"
        );
        // Nothing was signed for it: still pending, no certificate file.
        let pending = env.json(&["cert", "list", "--ca", "mois", "--status", "pending"]);
        assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
        assert!(!env.path("out/emp2.crt.pem").exists());
    }
);

/// The first JSON value of a command's output (a failed batch prints its report,
/// then the error).
fn first_json(stdout: &str) -> serde_json::Value {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap_or_else(|| panic!("no JSON in {stdout}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The tbsCertificate with the year of its notAfter (the second time in it) moved
/// ten years on: still valid DER, same length.
fn push_not_after(tbs: &[u8]) -> Vec<u8> {
    let mut out = tbs.to_vec();
    let mut seen = 0;
    let mut i = 0;
    while i + 15 <= out.len() {
        // UTCTime YYMMDDHHMMSSZ (tag 0x17, length 13) or GeneralizedTime (0x18, 15).
        if (out[i] == 0x17 && out[i + 1] == 13) || (out[i] == 0x18 && out[i + 1] == 15) {
            seen += 1;
            if seen == 2 {
                let tens = if out[i] == 0x17 { i + 2 } else { i + 4 };
                out[tens] = if out[tens] == b'9' {
                    b'8'
                } else {
                    out[tens] + 1
                };
                return out;
            }
            i += 2 + out[i + 1] as usize;
        } else {
            i += 1;
        }
    }
    panic!("no notAfter found");
}

// Issue 9.6: the root signs only CA certificates and its delegated responder's;
// its CRL covers both, so it does not claim onlyContainsCACerts.
both_backends!(
    root_signs_only_ca_and_responder_certificates_sqlite,
    root_signs_only_ca_and_responder_certificates_postgres,
    |env: &Env| {
        if !require("openssl") || !require("lint_crl") {
            return;
        }
        env.hierarchy();
        let counts = env.counts();
        for profile in ["official-sign", "institution-sign", "tsa", "g-ssl"] {
            let r = env.fails(&[
                "cert",
                "issue",
                "--ca",
                "root",
                "--profile",
                profile,
                "--subject",
                "CN=Some Name, OU=GPKI, O=Government of Korea, C=KR",
                "--generate-key",
                "--key-out",
                "r.key",
                "--out",
                "r.pem",
            ]);
            assert!(
                r.stderr
                    .contains("CA `root` is a root: it signs only CA certificates"),
                "{profile}: {}",
                r.stderr
            );
        }
        assert_eq!(env.counts(), counts);
        let signer = env.json(&["ocsp", "issue-signer", "--ca", "root"]);
        let serial = signer["serial"].as_str().unwrap().to_string();
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "root",
            "--serial",
            &serial,
            "--reason",
            "keyCompromise",
        ]);
        env.ok(&["crl", "generate", "--ca", "root", "--out", "arl.crl"]);
        let text = env.openssl_ok(&[
            "crl", "-in", "arl.crl", "-noout", "-text", "-verify", "-CAfile", "root.pem",
        ]);
        assert!(!text.contains("Only CA Certificates"), "{text}");
        assert!(text.contains(&serial.to_ascii_uppercase()), "{text}");
        let lint = pkilint(
            "lint_crl",
            &["-t", "CRL", "-p", "PKIX"],
            &env.path("arl.crl"),
        );
        assert!(lint.trim().is_empty(), "{lint}");
    }
);

// Issue 9.7: on SQLite, what gpki hands out (here the revocation it reports) is on
// disk first. strace is the oracle: the WAL is synced (fsync/fdatasync on
// gpki.db-wal) before the first byte reaches stdout. With `synchronous = NORMAL`
// the WAL is synced only at a checkpoint, after the answer has left.
#[test]
fn sqlite_commits_are_durable_before_anything_is_handed_out() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("strace") {
        return;
    }
    env.hierarchy();
    env.issue_official("a.pem");
    let serial = env.issue_official("b.pem")["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let trace = env.path("trace.txt");
    for (name, args) in [
        (
            "revoke",
            vec![
                "cert",
                "revoke",
                "--ca",
                "mois",
                "--serial",
                &serial,
                "--reason",
                "keyCompromise",
            ],
        ),
        (
            "issue",
            vec![
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
                "c.key",
            ],
        ),
    ] {
        let out = env
            .command()
            .env_remove("GPKI_LOG")
            .arg0_strace(&trace)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&trace).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let first_out = lines
            .iter()
            .position(|l| l.contains("write(1<") || l.contains("write(1,"))
            .unwrap_or_else(|| panic!("{name}: nothing written to stdout:\n{text}"));
        let synced = lines[..first_out].iter().any(|l| {
            (l.contains("fdatasync(") || l.contains("fsync(")) && l.contains("gpki.db-wal")
        });
        assert!(
            synced,
            "{name}: the WAL was not synced before the answer left:\n{}",
            lines
                .iter()
                .filter(|l| !l.contains("write(2"))
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Runs a command under `strace -f -y` (syscalls that sync, and writes), its trace
/// in `out`.
trait UnderStrace {
    fn arg0_strace(&mut self, out: &std::path::Path) -> std::process::Command;
}

impl UnderStrace for std::process::Command {
    fn arg0_strace(&mut self, out: &std::path::Path) -> std::process::Command {
        let mut c = std::process::Command::new("strace");
        c.args(["-f", "-y", "-e", "trace=fsync,fdatasync,write", "-o"])
            .arg(out)
            .arg(self.get_program());
        if let Some(dir) = self.get_current_dir() {
            c.current_dir(dir);
        }
        for (k, v) in self.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }
}

// Issue 9.9: key files are PBES2 with PBKDF2-HMAC-SHA256 at 600,000 iterations and
// AES-256-CBC, as OpenSSL's asn1parse reads them, and `openssl pkey` still opens them.
#[test]
fn key_files_use_a_modern_kdf_that_openssl_reads() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("openssl") {
        return;
    }
    env.hierarchy();
    env.issue_official("a.pem");
    for (key, pass) in [("data/keys/mois.key.pem", "pass"), ("a.pem.key", "outpass")] {
        let parsed = env.openssl_ok(&["asn1parse", "-in", key]);
        assert!(
            parsed.contains(":PBES2")
                && parsed.contains(":PBKDF2")
                && parsed.contains(":hmacWithSHA256")
                && parsed.contains(":aes-256-cbc"),
            "{key}: {parsed}"
        );
        // The iteration count: the only INTEGER inside PBKDF2-params here.
        let iterations = parsed
            .lines()
            .find(|l| l.contains("prim: INTEGER"))
            .and_then(|l| l.rsplit(':').next())
            .map(|h| i64::from_str_radix(h.trim(), 16).unwrap())
            .unwrap_or_else(|| panic!("{key}: no iteration count in {parsed}"));
        assert!(iterations >= 600_000, "{key}: {iterations} iterations");
        env.openssl_ok(&[
            "pkey",
            "-in",
            key,
            "-passin",
            &format!("file:{pass}"),
            "-noout",
        ]);
        let wrong = env.openssl(&["pkey", "-in", key, "-passin", "pass:wrong", "-noout"]);
        assert_ne!(wrong.code, 0, "{key} opened with a wrong passphrase");
    }
}

// Issue 9.19: after `cargo run … dev up`, no `gpki` need be on PATH; the next steps
// it prints must still run as printed.
#[test]
fn dev_up_next_steps_name_a_gpki_that_runs() {
    let env = Env::new(Backend::Sqlite).unwrap();
    let out = env
        .command()
        .env_remove("GPKI_KEY_PASS_FILE")
        .env_remove("GPKI_STORE")
        .env("PATH", "/usr/bin:/bin")
        .args(["dev", "up", "--no-serve"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let export = text
        .lines()
        .find(|l| l.trim_start().starts_with("export GPKI_KEY_PASS_FILE="))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .to_string();
    let list = text
        .lines()
        .find(|l| l.trim_end().ends_with(" ca list"))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .to_string();
    assert!(
        !list.starts_with("gpki "),
        "gpki is not on this PATH: {list}"
    );
    // Run exactly what was printed, from the same directory, with the same PATH.
    let run = std::process::Command::new("/bin/sh")
        .current_dir(env.path(""))
        .env("PATH", "/usr/bin:/bin")
        .env_remove("GPKI_STORE")
        .env_remove("GPKI_KEY_PASS_FILE")
        .env("GPKI_DATA_DIR", env.path("data"))
        .args(["-c", &format!("{export} && {list}")])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && listed.contains("gpki-root") && listed.contains("mois"),
        "{list}: {listed}{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

// Issue 9.16: GnuTLS and NSS check the CN of a certificate that could serve a TLS
// server and has no dNSName against the DNS name constraints above it (and refused
// institution-sign, which had no EKU). Profiles now need an EKU, and a lint refuses
// such a CN before signing, as those relying parties would.
#[test]
fn certificates_relying_parties_would_refuse_for_their_cn_are_not_issued() {
    let env = Env::new(Backend::Sqlite).unwrap();
    env.hierarchy();
    let dir = env.policies_copy();
    std::fs::write(
        dir.join("intranet.toml"),
        "name = \"intranet\"\ndescription = \"test\"\nkind = \"end-entity\"\nvalidity_days = 90\n\
         key_types = [\"p256\"]\nkey_usage = [\"digitalSignature\"]\nextended_key_usage = [\"serverAuth\"]\n\
         subject = \"CN={host}, O=Government of Korea, C=KR\"\n[policy]\noids = [\"1.2.410.100001.2.1.2\"]\n\
         [san]\ndns = \"optional\"\n[distribution]\ncrl = true\nocsp = true\nca_issuers = true\n",
    )
    .unwrap();
    let issue = |cn: &str| {
        env.run(&[
            "--policies",
            dir.to_str().unwrap(),
            "cert",
            "issue",
            "--ca",
            "mois",
            "--profile",
            "intranet",
            "--subject",
            &format!("CN={cn}, O=Government of Korea, C=KR"),
            "--generate-key",
            "--key-out",
            &format!("{cn}.key"),
            "--out",
            &format!("{cn}.pem"),
        ])
    };
    let r = issue("intranet.example.com");
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains("[gpki.name-constraints.cn-as-dns]")
            && r.stderr.contains("intranet.example.com"),
        "{}",
        r.stderr
    );
    assert_eq!(issue("portal.mois.go.kr").code, 0);

    // A profile without an EKU is refused when the profiles load.
    let inst = std::fs::read_to_string(dir.join("institution-sign.toml"))
        .unwrap()
        .replace("extended_key_usage = [\"documentSigning\"]\n", "");
    std::fs::write(dir.join("institution-sign.toml"), inst).unwrap();
    let r = env.run(&["--policies", dir.to_str().unwrap(), "profile", "list"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("institution-sign") && r.stderr.contains("needs an extended key usage"),
        "{}",
        r.stderr
    );
}

// Issue 9.8: the audit chain is unkeyed, so someone who can write to the store and
// knows the algorithm can edit a row and rebuild every hash after it. Signed
// checkpoints outside the store catch that; OpenSSL verifies them on its own.
both_backends!(
    audit_chain_rebuilt_after_an_edit_is_caught_by_signed_checkpoints_sqlite,
    audit_chain_rebuilt_after_an_edit_is_caught_by_signed_checkpoints_postgres,
    |env: &Env| {
        if !require("openssl") {
            return;
        }
        env.hierarchy();
        env.issue_official("a.pem");
        let cp = env.json(&["audit", "checkpoint"]);
        let file = cp["file"].as_str().unwrap().to_string();
        let sig = file.replace(".json", ".sig");
        let out = env.openssl_ok(&[
            "dgst",
            "-sha256",
            "-verify",
            cp["public_key"].as_str().unwrap(),
            "-signature",
            &sig,
            &file,
        ]);
        assert!(out.contains("Verified OK"), "{out}");
        env.ok(&["audit", "verify"]);

        // The attack: rewrite the subject in the first cert.issue row and rebuild the
        // chain from there, head included.
        let rt = crate::support::runtime();
        rt.block_on(async {
            use sqlx::Row;
            sqlx::any::install_default_drivers();
            let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&env.store)
                .await
                .unwrap();
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, detail FROM audit_log ORDER BY seq",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            let mut prev = vec![0u8; 32];
            let mut edited = false;
            for r in &rows {
                let seq: i64 = r.get("seq");
                let at: i64 = r.get("at");
                let actor: String = r.get("actor");
                let action: String = r.get("action");
                let target: String = r.get("target");
                let mut detail: String = r.get("detail");
                if !edited && action == "cert.issue" && detail.contains("Hong Gildong") {
                    detail = detail.replace("Hong Gildong", "Kim Forged");
                    edited = true;
                }
                let canonical =
                    serde_json::to_vec(&(seq, at, &actor, &action, &target, &detail)).unwrap();
                let mut h = openssl::sha::Sha256::new();
                h.update(&prev);
                h.update(&canonical);
                let hash = h.finish().to_vec();
                sqlx::query(
                    "UPDATE audit_log SET detail = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
                )
                .bind(&detail)
                .bind(&prev)
                .bind(&hash)
                .bind(seq)
                .execute(&mut c)
                .await
                .unwrap();
                prev = hash;
            }
            assert!(edited);
            sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                .bind(&prev)
                .execute(&mut c)
                .await
                .unwrap();
        });
        // The chain alone cannot tell: against a directory without checkpoints the
        // only problem is that they are missing (the audit key exists).
        std::fs::create_dir_all(env.path("no-checkpoints")).unwrap();
        let r = env.fails(&[
            "audit",
            "verify",
            "--checkpoints",
            "no-checkpoints",
            "--output",
            "json",
        ]);
        let v = first_json(&r.stdout);
        let problems = v["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{v}");
        assert!(
            problems[0]["problem"]
                .as_str()
                .unwrap()
                .contains("no checkpoint"),
            "{v}"
        );
        // The checkpoint can.
        let r = env.fails(&["audit", "verify"]);
        assert!(
            r.stdout.contains("the chain was rebuilt")
                || r.stderr.contains("the chain was rebuilt"),
            "{}{}",
            r.stdout,
            r.stderr
        );
        // A checkpoint rewritten to match the rebuilt chain no longer verifies; a
        // checkpoint directory whose public key was swapped is named; a deleted
        // checkpoint breaks the link of the next one.
        let dir = std::path::Path::new(&file).parent().unwrap().to_path_buf();
        let pub_copy = dir.join("audit.pub.pem");
        let saved = std::fs::read(&pub_copy).unwrap();
        env.openssl_ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ]);
        let other = env.openssl_ok(&["pkey", "-in", "other.key", "-pubout"]);
        std::fs::write(&pub_copy, other).unwrap();
        let r = env.fails(&["audit", "verify"]);
        assert!(
            (r.stdout.clone() + &r.stderr).contains("is not the trusted audit key"),
            "{}",
            r.stdout
        );
        std::fs::write(&pub_copy, saved).unwrap();
        let mut forged: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        forged["hash"] = serde_json::json!("00".repeat(32));
        std::fs::write(&file, serde_json::to_string_pretty(&forged).unwrap() + "\n").unwrap();
        let r = env.fails(&["audit", "verify"]);
        assert!(
            (r.stdout.clone() + &r.stderr)
                .contains("signature does not verify under the audit key"),
            "{}{}",
            r.stdout,
            r.stderr
        );
    }
);

// Issue 9.8: profile changes are state changes, and audited.
#[test]
fn profile_changes_are_audited() {
    let env = Env::new(Backend::Sqlite).unwrap();
    env.hierarchy();
    let recorded = |env: &Env| -> Vec<serde_json::Value> {
        env.json(&["audit", "log", "--limit", "100"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "profiles.change")
            .cloned()
            .collect()
    };
    assert_eq!(recorded(&env).len(), 1, "the first load is recorded once");
    env.issue_official("a.pem");
    assert_eq!(
        recorded(&env).len(),
        1,
        "unchanged profiles are not recorded again"
    );
    let dir = env.policies_copy();
    let edited = std::fs::read_to_string(dir.join("official-sign.toml"))
        .unwrap()
        .replace("validity_days = 730", "validity_days = 365");
    std::fs::write(dir.join("official-sign.toml"), edited).unwrap();
    env.ok(&[
        "--policies",
        dir.to_str().unwrap(),
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
        "b.key",
        "--out",
        "b.pem",
    ]);
    let changes = recorded(&env);
    assert_eq!(changes.len(), 2, "{changes:?}");
    let detail: serde_json::Value =
        serde_json::from_str(changes[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        detail["changed"],
        serde_json::json!(["official-sign"]),
        "{detail}"
    );
    env.ok(&["audit", "verify"]);
}

// Checkpoints are linked: deleting one (to hide what it fixed) is named.
#[test]
fn a_deleted_audit_checkpoint_is_noticed() {
    let env = Env::new(Backend::Sqlite).unwrap();
    env.hierarchy();
    let first = env.json(&["audit", "checkpoint"]);
    env.issue_official("a.pem");
    let second = env.json(&["audit", "checkpoint"]);
    env.issue_official("b.pem");
    env.json(&["audit", "checkpoint"]);
    assert_ne!(first["seq"], second["seq"]);
    env.ok(&["audit", "verify"]);
    let victim = second["file"].as_str().unwrap();
    std::fs::remove_file(victim).unwrap();
    std::fs::remove_file(victim.replace(".json", ".sig")).unwrap();
    let r = env.fails(&["audit", "verify"]);
    assert!(
        (r.stdout.clone() + &r.stderr).contains("a checkpoint was deleted"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}
