//! Issue 11's RA part: an ID offered to an official the RA knows (Hong, whose
//! official-sign certificate Lee requested), issued by the CA service to the phone
//! key proven over the RA's nonce; judged by the independent SD-JWT oracle and by
//! `gpki credential verify` from a QR code without the photo.

use super::*;

/// `gpki ra offer` as Lee: Hong's ID (`hong-id.json`) for certificate `serial`.
fn offer(env: &Env, key: &str, serial: &str, format: &str) -> Run {
    run(
        env,
        as_lee(&[
            "ra",
            "offer",
            "--idempotency-key",
            key,
            "--serial",
            serial,
            "--format",
            format,
            "--attributes",
            "hong-id.json",
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "public official ID card 1234",
        ]),
    )
}

/// The holder's proof of `key` over `nonce` for `audience`, into `out`.
fn proof(env: &Env, key: &str, nonce: &str, audience: &str, out: &str) {
    user_ok(
        env,
        &[
            "credential",
            "proof",
            "--holder-key",
            key,
            "--nonce",
            nonce,
            "--audience",
            audience,
            "--out",
            out,
        ],
    );
}

/// `gpki ra offer-issue` as Lee: the credential of `offer` for `proof`, into `out`.
fn issue(env: &Env, offer: &str, proof: &str, out: &str) -> Run {
    run(
        env,
        as_lee(&[
            "ra",
            "offer-issue",
            "--offer",
            offer,
            "--proof",
            proof,
            "--out",
            out,
        ]),
    )
}

/// A refusal: exit 1, the error's `kind`, and `words` in its detail.
fn refused(r: Run, kind: &str, words: &str) {
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["error"]["kind"], kind, "{v}");
    assert!(
        v["error"]["detail"].as_str().unwrap().contains(words),
        "{v}"
    );
}

/// Issue 11's RA part: an ID offered to an official the RA knows (Hong, whose
/// official-sign certificate `serial` Lee requested), issued by the CA service to
/// the phone key proven over the RA's nonce; judged by the independent SD-JWT
/// oracle and by `gpki credential verify` from a QR code without the photo.
pub(super) fn credentials_through_the_ra(env: &Env, serial: &str, lee: &Value) {
    step_two_phone_keys(env);
    let issued = step_offer_refusals_and_the_phones_proof(env, serial, lee);
    step_a_new_phone_and_revocations_by_operator_and_holder(env, serial, &issued);
    step_presented_by_qr_without_the_photo(env, serial);
}

/// Hong's attributes and two phone keys.
fn step_two_phone_keys(env: &Env) {
    std::fs::write(
        env.path("hong-id.json"),
        r#"{"department": "Digital Government Bureau", "position": "Deputy Director",
           "issue_date": "2026-11-24", "expiry_date": "2031-11-23"}"#,
    )
    .unwrap();
    for phone in ["phone", "phone2"] {
        let key = format!("{phone}.key");
        user_ok(
            env,
            &["key", "new", "--key-type", "p256", "--key-out", &key],
        );
        env.openssl_ok(&[
            "pkey",
            "-in",
            &key,
            "-passin",
            "file:data/dev-signer-passphrase",
            "-pubout",
            "-out",
            &format!("{phone}.pub"),
        ]);
    }
}

/// The offer (replayed as made), refused for officials the RA does not know and
/// for proofs that prove nothing; the phone's proof gets the credential, named
/// from Hong's certificate. Returns it.
fn step_offer_refusals_and_the_phones_proof(env: &Env, serial: &str, lee: &Value) -> Value {
    let o = ok_json(offer(env, "hong-id-1", serial, "sd-jwt"));
    assert_eq!(o["status"], "offered", "{o}");
    assert_eq!(o["audience"], "https://id.gpki.go.kr", "{o}");
    let (id, nonce) = (
        o["offer"].to_string(),
        o["nonce"].as_str().unwrap().to_string(),
    );
    assert!(nonce.len() >= 43, "a 256-bit nonce: {o}");
    let again = ok_json(offer(env, "hong-id-1", serial, "sd-jwt"));
    assert_eq!(
        (&again["replayed"], &again["nonce"]),
        (&Value::Bool(true), &o["nonce"])
    );

    // Officials the RA does not know: an operator's certificate, no certificate.
    refused(
        offer(
            env,
            "lee-id-1",
            lee["certificate"]["serial"].as_str().unwrap(),
            "sd-jwt",
        ),
        "unauthorized",
        "not an official RA `dev-mois` knows",
    );
    refused(
        offer(env, "nobody-1", "7f01", "sd-jwt"),
        "not_found",
        "no certificate",
    );

    // Proofs that prove nothing change nothing: another nonce, another audience.
    proof(
        env,
        "phone.key",
        "not-the-offers-nonce",
        "https://id.gpki.go.kr",
        "bad-nonce.jwt",
    );
    refused(
        issue(env, &id, "bad-nonce.jwt", "x"),
        "policy_violation",
        "nonce",
    );
    proof(
        env,
        "phone.key",
        &nonce,
        "https://elsewhere.example",
        "bad-aud.jwt",
    );
    refused(
        issue(env, &id, "bad-aud.jwt", "x"),
        "policy_violation",
        "aud",
    );
    assert!(!env.path("x").exists());

    // The phone's proof: issued by the CA service, to that key.
    proof(
        env,
        "phone.key",
        &nonce,
        "https://id.gpki.go.kr",
        "proof.jwt",
    );
    let issued = ok_json(issue(env, &id, "proof.jwt", "hong.sd-jwt"));
    assert_eq!(issued["format"], "sd-jwt", "{issued}");
    let judged = crate::credentials::python(
        "sdjwt_oracle.py",
        &[&env.path("hong.sd-jwt"), &env.path("phone.pub")],
    );
    // Name, employee number and institution come from Hong's certificate
    // (`CN=Hong Gildong(001234567)`), not from the request.
    assert_eq!(judged["claims"]["name"], "Hong Gildong", "{judged}");
    assert_eq!(
        judged["claims"]["institution"],
        "Ministry of the Interior and Safety"
    );
    assert_eq!(judged["claims"]["employee_number"], "001234567");
    // The offer made one credential: the same proof again is refused.
    refused(issue(env, &id, "proof.jwt", "y"), "conflict", "is issued");

    issued
}

/// A new phone's mdoc replaces the first ID; an operator in scope revokes one,
/// the holder reports the next lost with their signing key; each audited.
fn step_a_new_phone_and_revocations_by_operator_and_holder(
    env: &Env,
    serial: &str,
    issued: &Value,
) {
    // A new phone: an mdoc offered and proven by the second key; Hong's first ID is
    // revoked `replaced`, and the new one is presented by QR without the photo.
    let o2 = ok_json(offer(env, "hong-id-2", serial, "mdoc"));
    proof(
        env,
        "phone2.key",
        o2["nonce"].as_str().unwrap(),
        "https://id.gpki.go.kr",
        "proof2.jwt",
    );
    let second = ok_json(issue(
        env,
        &o2["offer"].to_string(),
        "proof2.jwt",
        "hong.mdoc",
    ));
    let listed = user_ok(env, &["credential", "list", "--subject", "001234567"]);
    let status_of = |id: &Value| {
        listed
            .as_array()
            .or(listed["credentials"].as_array())
            .unwrap()
            .iter()
            .find(|c| c["id"] == *id)
            .map(|c| c["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(status_of(&issued["id"]), "revoked", "{listed}");
    assert_eq!(status_of(&second["id"]), "valid", "{listed}");

    // The RA revokes IDs (issue 28, point 5): an operator in scope revokes one,
    // and the holder reports the next lost at once with their signing key, no
    // operator; each audited under who did it.
    let credential_status = |id: &Value| -> (String, String) {
        let listed = user_ok(env, &["credential", "list", "--subject", "001234567"]);
        let c = listed
            .as_array()
            .or(listed["credentials"].as_array())
            .unwrap()
            .iter()
            .find(|c| c["id"] == *id)
            .cloned()
            .unwrap();
        (
            c["status"].as_str().unwrap().to_string(),
            c["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    let r = user(
        env,
        &as_lee(&["ra", "revoke-id", "999999", "--reason", "unspecified"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    refused(r, "not_found", "no mobile ID 999999");
    let by_operator = ok_json(user(
        env,
        &as_lee(&[
            "ra",
            "revoke-id",
            &second["id"].to_string(),
            "--reason",
            "attributes-changed",
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    ));
    assert_eq!(
        by_operator["revoked"][0]["status"], "revoked",
        "{by_operator}"
    );
    assert_eq!(
        credential_status(&second["id"]),
        ("revoked".into(), "attributes-changed".into())
    );
    let o3 = ok_json(offer(env, "hong-id-3", serial, "sd-jwt"));
    proof(
        env,
        "phone.key",
        o3["nonce"].as_str().unwrap(),
        "https://id.gpki.go.kr",
        "proof3.jwt",
    );
    let third = ok_json(issue(
        env,
        &o3["offer"].to_string(),
        "proof3.jwt",
        "hong3.sdjwt",
    ));
    assert_eq!(credential_status(&third["id"]).0, "valid");
    let report_lost = || {
        user(
            env,
            &[
                "ra",
                "revoke-own-id",
                "--own-cert",
                "hong.pem",
                "--own-key",
                "hong.key.pem",
                "--own-pass-file",
                "data/dev-signer-passphrase",
            ],
        )
    };
    let lost = ok_json(report_lost());
    assert_eq!(lost["revoked"].as_array().unwrap().len(), 1, "{lost}");
    assert_eq!(
        credential_status(&third["id"]),
        ("revoked".into(), "lost-device".into())
    );
    // Reported again: nothing valid is left to revoke.
    refused(report_lost(), "conflict", "holds no valid mobile ID");
    let audit = user_ok(env, &["audit", "log", "--limit", "1000000"]);
    let revokes: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "credential.revoke")
        .collect();
    assert!(
        revokes
            .iter()
            .any(|e| e["actor"].as_str().unwrap().starts_with("holder:"))
            && revokes
                .iter()
                .any(|e| e["target"] == format!("credential:{}", second["id"])),
        "{revokes:?}"
    );
}

/// A new phone again: the ID presented by QR without the photo and verified.
fn step_presented_by_qr_without_the_photo(env: &Env, serial: &str) {
    // A new phone again: the ID presented below.
    let o4 = ok_json(offer(env, "hong-id-4", serial, "mdoc"));
    proof(
        env,
        "phone2.key",
        o4["nonce"].as_str().unwrap(),
        "https://id.gpki.go.kr",
        "proof4.jwt",
    );
    ok_json(issue(
        env,
        &o4["offer"].to_string(),
        "proof4.jwt",
        "hong.mdoc",
    ));
    let nonce = "0d6c1f8e2b7a94c3e5f1";
    let p = user_ok(
        env,
        &[
            "credential",
            "present",
            "--credential",
            "hong.mdoc",
            "--disclose",
            "name,employee_number,institution,department,position,issue_date,expiry_date",
            "--holder-key",
            "phone2.key",
            "--verifier",
            "https://gate.mois.go.kr",
            "--nonce",
            nonce,
            "--out",
            "hong-mdoc.vp",
            "--qr",
            "hong-mdoc.png",
        ],
    );
    // Every attribute but the photo, in one code (2,579 bytes, version 38-L).
    assert_eq!(p["disclosed"].as_array().unwrap().len(), 7, "{p}");
    let report = user_ok(
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
            nonce,
        ],
    );
    assert_eq!(report["disclosed"]["name"], "Hong Gildong", "{report}");
    assert_eq!(report["verified"], true, "{report}");
}
