//! A CA that is revoked, held or expired signs nothing but CRLs, and an expired
//! certificate is not renewed.

use super::*;

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
    // One issuance, asked two days on and today.
    let issue = [
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
    ];
    let (code, err) = later(&issue);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("certificate of CA `short` has expired"),
        "{err}"
    );
    let (code, list) = later(&["ca", "list", "--output", "json"]);
    assert_eq!(code, Some(0), "{list}");
    // Today it still issues.
    env.ok(&issue);
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
