//! Bulk issuance: a crash mid-run, then a second run that issues only what is missing.

use crate::both_backends;
use crate::support::{require, Env};

fn officials_csv(env: &Env, n: usize) {
    let mut csv = String::from("request_id,subject,san\n");
    for i in 0..n {
        csv += &format!(
            "emp{i:05},\"CN=Official {i}(1{i:08}), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR\",email:official{i}@mois.go.kr\n"
        );
    }
    std::fs::write(env.path("officials.csv"), csv).unwrap();
}

both_backends!(
    batch_resumes_after_crash_sqlite,
    batch_resumes_after_crash_postgres,
    |env: &Env| {
        env.hierarchy();
        officials_csv(env, 30);
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
            "--chunk",
            "10",
        ];
        // Crash after the first chunk's tbsCertificates are recorded, before signing.
        let crashed = env
            .command()
            .env("GPKI_FAILPOINT", "after-record")
            .args(args)
            .output()
            .unwrap();
        assert!(!crashed.status.success());
        let pending = env.json(&["cert", "list", "--ca", "mois", "--status", "pending"]);
        assert_eq!(pending.as_array().unwrap().len(), 10, "{pending}");
        let pending_serials: Vec<String> = pending
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["serial"].as_str().unwrap().to_string())
            .collect();

        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let report: serde_json::Value = serde_json::from_str(&env.ok(&a)).unwrap();
        assert_eq!(report["issued"], 30, "{report}");
        assert_eq!(report["resumed"], 10, "{report}");
        assert_eq!(report["already_issued"], 0, "{report}");
        // Its own clock (benches/ra.sh): seconds from the key in hand, rows per second over them.
        let (secs, rate) = (
            report["seconds"].as_f64().unwrap(),
            report["per_second"].as_f64().unwrap(),
        );
        assert!(secs > 0.0, "{report}");
        assert!(
            (rate * secs - report["rows"].as_f64().unwrap()).abs() < 1e-6,
            "{report}"
        );
        let again: serde_json::Value = serde_json::from_str(&env.ok(&a)).unwrap();
        assert_eq!(again["issued"], 0, "{again}");
        assert_eq!(again["already_issued"], 30, "{again}");
        assert_eq!(
            env.counts()["certificates"].as_i64().unwrap(),
            2 + 30,
            "exactly one certificate per row"
        );
        assert!(env
            .json(&["cert", "list", "--ca", "mois", "--status", "pending"])
            .as_array()
            .unwrap()
            .is_empty());

        if require("openssl") {
            let mut resumed_seen = 0;
            for i in 0..30 {
                let cert = format!("out/emp{i:05}.crt.pem");
                env.verify(&cert);
                // The certificate carries the key written beside it.
                let from_cert = env.openssl_ok(&["x509", "-in", &cert, "-noout", "-pubkey"]);
                let from_key = env.openssl_ok(&[
                    "pkey",
                    "-in",
                    &format!("out/emp{i:05}.key.pem"),
                    "-passin",
                    "file:outpass",
                    "-pubout",
                ]);
                assert_eq!(from_cert, from_key, "row {i}");
                if pending_serials.contains(&env.serial_of(&cert)) {
                    resumed_seen += 1;
                }
            }
            assert_eq!(
                resumed_seen, 10,
                "the crashed chunk kept its recorded serials"
            );
        }
        env.ok(&["audit", "verify"]);
    }
);

#[test]
fn batch_reports_bad_rows_and_issues_the_rest() {
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    if !require("openssl") {
        return;
    }
    env.hierarchy();
    env.csr(
        "csr1",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/C=KR/O=Government of Korea/OU=Supreme Court/OU=people/CN=Judge Park(000000042)",
    );
    let csv = "request_id,subject,csr\n\
               court1,\"CN=Judge Park(000000042), OU=people, OU=Supreme Court, O=Government of Korea, C=KR\",csr1.csr\n\
               court2,\"CN=Clerk Choi, OU=staff, OU=Supreme Court, O=Government of Korea, C=KR\",\n";
    std::fs::write(env.path("court.csv"), csv).unwrap();
    let r = env.fails(&[
        "cert",
        "issue-batch",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--csv",
        "court.csv",
        "--out-dir",
        "court",
    ]);
    assert!(
        r.stdout.contains("line 3 (court2)") && r.stdout.contains("OU must be `people`"),
        "{}",
        r.stdout
    );
    env.verify("court/court1.crt.pem");
    assert!(!env.path("court/court2.crt.pem").exists());
    // A structural error in the CSV refuses the whole file.
    std::fs::write(
        env.path("dup.csv"),
        "request_id,subject\na,\"CN=x\"\na,\"CN=y\"\n",
    )
    .unwrap();
    let r = env.fails(&[
        "cert",
        "issue-batch",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--csv",
        "dup.csv",
        "--out-dir",
        "dup",
    ]);
    assert!(
        r.stderr.contains("line 3") && r.stderr.contains("repeats line 2"),
        "{}",
        r.stderr
    );
}

// A crash leaves pending rows whose generated keys are then lost: the second run
// abandons them (their serials stay reserved, never signed) and issues those rows afresh.
#[test]
fn batch_abandons_pending_rows_whose_keys_are_lost() {
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    env.hierarchy();
    officials_csv(&env, 12);
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
        "--chunk",
        "4",
    ];
    let crashed = env
        .command()
        .env("GPKI_FAILPOINT", "after-record")
        .args(args)
        .output()
        .unwrap();
    assert!(!crashed.status.success());
    for i in 0..4 {
        std::fs::remove_file(env.path(&format!("out/emp{i:05}.key.pem"))).unwrap();
    }
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    let report: serde_json::Value = serde_json::from_str(&env.ok(&a)).unwrap();
    assert_eq!(report["abandoned"], 4, "{report}");
    assert_eq!(report["resumed"], 0, "{report}");
    assert_eq!(report["issued"], 12, "{report}");
    let abandoned = env.json(&["cert", "list", "--ca", "mois", "--status", "abandoned"]);
    assert_eq!(abandoned.as_array().unwrap().len(), 4, "{abandoned}");
    if require("openssl") {
        for i in 0..12 {
            let cert = format!("out/emp{i:05}.crt.pem");
            env.verify(&cert);
            let from_key = env.openssl_ok(&[
                "pkey",
                "-in",
                &format!("out/emp{i:05}.key.pem"),
                "-passin",
                "file:outpass",
                "-pubout",
            ]);
            assert_eq!(
                env.openssl_ok(&["x509", "-in", &cert, "-noout", "-pubkey"]),
                from_key,
                "row {i}"
            );
            assert!(!abandoned
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["serial"] == env.serial_of(&cert).as_str()));
        }
    }
    env.ok(&["audit", "verify"]);
}
