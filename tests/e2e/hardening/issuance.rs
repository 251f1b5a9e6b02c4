//! What issuance refuses: a compromised key again, an edited tbsCertificate on
//! resume, a root signing end-entity certificates, CNs relying parties refuse.

use super::*;

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
