//! Renewal and revocation steps of the dev RA scenario: by the administrator, by
//! the holder with no operator, and what follows for Hong's mobile ID.

use super::*;

/// The administrator renews Hong's certificate (same key), replays the renewal,
/// and revokes the renewed certificate; the dev responder follows.
pub(super) fn step_the_administrator_renews_and_revokes(env: &Env, ocsp_port: u16, serial: &str) {
    let ports = [ocsp_port];
    // The administrator renews it (same key) and revokes the renewed certificate.
    let renewed = user_ok(
        env,
        &[
            "ra",
            "renew",
            "--idempotency-key",
            "hong-renew",
            "--serial",
            serial,
            "--out",
            "hong2.pem",
        ],
    );
    assert_eq!(renewed["request"]["status"], "issued", "{renewed}");
    let serial2 = renewed["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(serial, serial2);
    // Replayed: the same renewal, no second certificate.
    let again = user_ok(
        env,
        &[
            "ra",
            "renew",
            "--idempotency-key",
            "hong-renew",
            "--serial",
            serial,
        ],
    );
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["certificate"]["serial"], serial2.as_str(), "{again}");
    openssl_verify(env, "smimesign", "hong2.pem");
    assert!(openssl_ocsp(env, ports[0], "hong2.pem").contains("hong2.pem: good"));
    let revoked = user_ok(
        env,
        &[
            "ra",
            "revoke",
            "--idempotency-key",
            "hong-revoke",
            "--serial",
            &serial2,
            "--reason",
            "superseded",
        ],
    );
    assert_eq!(revoked["request"]["status"], "revoked", "{revoked}");
    // The dev responder follows the store (SQLite: polled every 250 ms).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = openssl_ocsp(env, ports[0], "hong2.pem");
        if text.contains("hong2.pem: revoked") {
            assert!(text.contains("Reason: superseded"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "OCSP never said revoked: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(openssl_ocsp(env, ports[0], "hong.pem").contains("hong.pem: good"));
}

/// The holder revokes their own certificate with no operator: a request signed
/// over another time, or by another key, is refused; the one OpenSSL signed
/// revokes it and the responder says so within a second.
pub(super) fn step_the_holder_revokes_their_own(env: &Env, ocsp_port: u16, ra_port: u16) {
    let ports = [ocsp_port, 0, 0, ra_port];
    // The holder revokes their own certificate, with no operator: first a request
    // whose signature (made by OpenSSL with the right key) covers another time is
    // refused and changes nothing; then the signed request from gpki revokes it,
    // and the responder says so within a second.
    env.openssl_ok(&[
        "pkey",
        "-in",
        "hong.key.pem",
        "-passin",
        "file:data/dev-signer-passphrase",
        "-out",
        "hong.plain.key",
    ]);
    let fingerprint = env
        .openssl_ok(&[
            "x509",
            "-in",
            "hong.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ])
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_ascii_lowercase();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let message = format!(
        "gpki holder revocation request v1\ncertificate-sha256: {fingerprint}\nreason: keyCompromise\nsigned_at: {now}\n"
    );
    std::fs::write(env.path("holder.msg"), &message).unwrap();
    env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-sign",
        "hong.plain.key",
        "-out",
        "holder.sig",
        "holder.msg",
    ]);
    let signature = hex::encode(std::fs::read(env.path("holder.sig")).unwrap());
    let post = |signed_at: i64, signature: &str| {
        let body = serde_json::json!({
            "certificate": std::fs::read_to_string(env.path("hong.pem")).unwrap(),
            "reason": "keyCompromise",
            "signed_at": signed_at,
            "signature": signature,
        });
        let o = Command::new("curl")
            .current_dir(env.path(""))
            .args([
                "-s",
                "-w",
                "\ncode=%{http_code}",
                "--cacert",
                "data/certs/gpki-root.crt.pem",
            ])
            .arg("--resolve")
            .arg(format!("ra.gpki.go.kr:{}:127.0.0.1", ports[3]))
            .args([
                "-H",
                "content-type: application/json",
                "--data",
                &body.to_string(),
            ])
            .arg(format!(
                "https://ra.gpki.go.kr:{}/v1/holder/revocations",
                ports[3]
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let refused = post(now + 1, &signature);
    assert!(
        refused.ends_with("code=422") || refused.contains("bad_signature"),
        "{refused}"
    );
    assert!(refused.contains("not signed by its key"), "{refused}");
    // The right message signed by another key (Lee's) is refused by the RA too.
    env.openssl_ok(&[
        "pkey",
        "-in",
        "lee.key.pem",
        "-passin",
        "file:data/dev-signer-passphrase",
        "-out",
        "lee.plain.key",
    ]);
    env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-sign",
        "lee.plain.key",
        "-out",
        "lee.sig",
        "holder.msg",
    ]);
    let lee_signature = hex::encode(std::fs::read(env.path("lee.sig")).unwrap());
    let refused = post(now, &lee_signature);
    assert!(refused.contains("not signed by its key"), "{refused}");
    assert!(openssl_ocsp(env, ports[0], "hong.pem").contains("hong.pem: good"));
    // An operator's own certificate is not revoked this way (administrators do).
    let r = revoke_own(env, "lee.pem", "lee.key.pem", "keyCompromise");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("administrator of the RA"), "{}", r.stdout);
    // Someone else's key cannot sign for it (refused before anything is sent).
    let r = revoke_own(env, "hong.pem", "lee.key.pem", "keyCompromise");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    // The request OpenSSL signed, sent as signed: the message format is
    // reproducible outside gpki.
    let own = post(now, &signature);
    let revoked_at = Instant::now();
    assert!(own.ends_with("code=201"), "{own}");
    let own: Value = serde_json::from_str(own.rsplit_once('\n').unwrap().0).unwrap();
    assert_eq!(own["request"]["status"], "revoked", "{own}");
    assert!(own["request"]["submitted_by"].is_null(), "{own}");
    loop {
        let text = openssl_ocsp(env, ports[0], "hong.pem");
        if text.contains("hong.pem: revoked") {
            assert!(text.contains("Reason: keyCompromise"), "{text}");
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "OCSP did not say revoked within a second: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// With every official-sign certificate of Hong's revoked, the mobile ID goes
/// too; a revoked certificate signs no further request.
pub(super) fn step_the_mobile_id_goes_with_the_last_certificate(env: &Env) {
    // Hong still holds dev up's official-sign certificate: the mobile ID stays.
    // With that one revoked too (from the CLI), Hong holds none in force and the
    // ID goes with it: revoked `certificate-revoked` in the revocation's
    // transaction, and the QR presentation fails at the verifier's next fetch of
    // the status list (issue 28, point 5).
    let valid_ids = |env: &Env| {
        let listed = user_ok(env, &["credential", "list", "--subject", "001234567"]);
        listed
            .as_array()
            .or(listed["credentials"].as_array())
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "valid")
            .count()
    };
    assert_eq!(valid_ids(env), 1);
    let sample = env
        .openssl_ok(&[
            "x509",
            "-in",
            "data/certs/official-sign.crt.pem",
            "-noout",
            "-serial",
        ])
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
            &sample,
            "--reason",
            "affiliationChanged",
        ],
    );
    assert_eq!(valid_ids(env), 0);
    let listed = user_ok(env, &["credential", "list", "--subject", "001234567"]);
    let ids = listed
        .as_array()
        .or(listed["credentials"].as_array())
        .unwrap()
        .clone();
    assert!(!ids.is_empty(), "{listed}");
    assert!(ids.iter().all(|c| c["status"] == "revoked"), "{listed}");
    assert!(
        ids.iter().any(|c| c["reason"] == "certificate-revoked"),
        "{listed}"
    );
    eventually("the verifier refuses the revoked ID", 15, || {
        let r = user(
            env,
            &[
                "credential",
                "verify",
                "--qr",
                "hong-mdoc.png",
                "--anchor",
                "data/certs/mobile-id.crt.pem",
                "--verifier",
                "https://gate.mois.go.kr",
                "--nonce",
                "0d6c1f8e2b7a94c3e5f1",
            ],
        );
        (r.code == 1
            && (r.stdout.contains("credential-revoked") || r.stderr.contains("credential-revoked")))
        .then_some(())
        .ok_or(r.stdout + &r.stderr)
    });
    // Revoked, the certificate can sign no further request.
    let r = revoke_own(env, "hong.pem", "hong.key.pem", "superseded");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("revoked"), "{}", r.stdout);
}

/// Every step is in the RA's requests.
pub(super) fn step_every_request_is_listed(env: &Env) {
    // Every step is in the RA's requests and the audit log, whose chain verifies.
    let listed = user_ok(env, &["ra", "requests"]);
    let kinds: Vec<_> = listed["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["kind"].as_str().unwrap(),
                r["status"].as_str().unwrap()
            )
        })
        .collect();
    for (k, n) in [
        ("enrol:issued", 1),
        ("issue:issued", 1),
        ("renew:issued", 1),
        ("revoke:revoked", 2),
    ] {
        assert_eq!(
            kinds.iter().filter(|x| *x == k).count(),
            n,
            "{k} in {kinds:?}"
        );
    }
}
