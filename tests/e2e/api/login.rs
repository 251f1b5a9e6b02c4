//! Login steps of the standard API scenario: accepted, what a login signature
//! means, and every refusal by name.

use super::*;

/// Login: accepted once, with the path and each certificate's status;
/// returns the official's serial.
pub(super) fn step_login_is_accepted_once(env: &Env, api: &str) -> String {
    let sign_cert = SIGN_CERT;
    // 1. Login: accepted once, with the path and each certificate's status.
    let ok = login(env, api, sign_cert, "sign.key", |_, _| {});
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(ok.1["result"], "accepted");
    assert_eq!(ok.1["algorithm"], "ecdsa-sha256");
    assert_eq!(ok.1["path"].as_array().unwrap().len(), 3, "{}", ok.1);
    assert_eq!(ok.1["status"][0]["status"], "good");
    assert_eq!(ok.1["status"][0]["source"], "ocsp", "{}", ok.1);
    assert_eq!(ok.1["status"][1]["status"], "good", "{}", ok.1);
    let serial = ok.1["serial"].as_str().unwrap().to_string();
    let openssl_serial = env.openssl_ok(&["x509", "-in", sign_cert, "-noout", "-serial"]);
    assert_eq!(
        openssl_serial.trim().trim_start_matches("serial="),
        serial.to_uppercase()
    );
    serial
}

/// `gpki login sign` builds the login text itself: a hostile page gets no
/// revocation signed, and a login signature offered as one is refused by the RA.
pub(super) fn step_a_signature_means_one_thing(env: &Env, api: &str, ra: &str) {
    let sign_cert = SIGN_CERT;
    // 1b. A signature means one thing (issue 28, point 4): `gpki login sign`
    //     builds the login text itself. A hostile login page that hands over a
    //     holder's revocation text, as the challenge or as the message, gets
    //     nothing signed; a login signature it does get is refused by the RA as a
    //     revocation.
    let audience = format!("{api}/");
    let signer = [
        "--key",
        "data/certs/official-sign.key.pem",
        "--cert",
        sign_cert,
        "--pass-file",
        "data/dev-signer-passphrase",
    ];
    let cert_pem = std::fs::read_to_string(env.path(sign_cert)).unwrap();
    let cert_sha = hex::encode(openssl::sha::sha256(
        &openssl::x509::X509::from_pem(cert_pem.as_bytes())
            .unwrap()
            .to_der()
            .unwrap(),
    ));
    let signed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let revocation = format!(
        "gpki holder revocation request v1\ncertificate-sha256: {cert_sha}\nreason: keyCompromise\nsigned_at: {signed_at}\n"
    );
    let (_, genuine) = post(env, &format!("{api}/v1/login/challenge"), &json!({}));
    for (name, evil) in [
        (
            "as-challenge",
            json!({ "challenge": revocation, "audience": audience, "message": revocation }),
        ),
        (
            "as-message",
            json!({ "challenge": genuine["challenge"], "audience": audience, "message": revocation }),
        ),
    ] {
        std::fs::write(env.path(&format!("evil-{name}.json")), evil.to_string()).unwrap();
        let mut args = vec![
            "login",
            "sign",
            "--challenge-file",
            &format!("evil-{name}.json"),
            "--audience",
            &audience,
            "--out",
            &format!("evil-{name}.out"),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(signer.iter().map(|s| s.to_string()));
        let r = user(env, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("nothing signed"), "{name}: {}", r.stderr);
        assert!(!env.path(&format!("evil-{name}.out")).exists(), "{name}");
    }
    // Another system's challenge is not signed for this one either.
    std::fs::write(env.path("ch.json"), genuine.to_string()).unwrap();
    let mut args = vec!["login", "sign", "--challenge-file", "ch.json", "--audience"];
    args.push("https://other.example.go.kr/");
    args.extend(signer);
    let r = user(env, &args);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("is for audience"), "{}", r.stderr);
    // The genuine challenge: signed, and the API logs the official in.
    let mut args = vec!["login", "sign", "--challenge-file", "ch.json", "--audience"];
    args.push(&audience);
    args.extend(["--out", "login.json"]);
    args.extend(signer);
    let r = user(env, &args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let body: Value =
        serde_json::from_slice(&std::fs::read(env.path("login.json")).unwrap()).unwrap();
    let (code, v) = post(env, &format!("{api}/v1/login"), &body);
    assert_eq!((code, &v["result"]), (200, &json!("accepted")), "{v}");
    // That login signature, offered to the RA as the holder's revocation: refused.
    let login_sig = base64::engine::general_purpose::STANDARD
        .decode(body["signature"].as_str().unwrap())
        .unwrap();
    let ra_port = ra.rsplit(':').next().unwrap();
    let rev = json!({
        "certificate": cert_pem, "reason": "keyCompromise",
        "signed_at": signed_at, "signature": hex::encode(&login_sig),
    });
    std::fs::write(env.path("rev.json"), rev.to_string()).unwrap();
    let out = Command::new("curl")
        .current_dir(env.path(""))
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "--cacert",
            "data/certs/gpki-root.crt.pem",
        ])
        .args(["--resolve", &format!("ra.gpki.go.kr:{ra_port}:127.0.0.1")])
        .args([
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@rev.json",
        ])
        .arg(format!(
            "https://ra.gpki.go.kr:{ra_port}/v1/holder/revocations"
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.ends_with("400")
            && out.contains("bad_signature")
            && out.contains("not signed by its key"),
        "{out}"
    );
    let still = login(env, api, sign_cert, "sign.key", |_, _| {});
    assert_eq!(still.0, 200, "the official is not revoked: {}", still.1);
}

/// Refusals, each by name.
pub(super) fn step_refusals_by_name(env: &Env, api: &str) {
    let sign_cert = SIGN_CERT;
    // 2. Refusals, each by name.
    let (code, ch) = post(env, &format!("{api}/v1/login/challenge"), &json!({}));
    assert_eq!(code, 200);
    let challenge = ch["challenge"].as_str().unwrap().to_string();
    let message = ch["message"].as_str().unwrap().to_string();
    std::fs::write(env.path("m"), &message).unwrap();
    env.openssl_ok(&["dgst", "-sha256", "-sign", "sign.key", "-out", "s", "m"]);
    let body = json!({
        "challenge": challenge,
        "certificate": std::fs::read_to_string(env.path(sign_cert)).unwrap(),
        "signature": b64(&std::fs::read(env.path("s")).unwrap()),
    });
    assert_eq!(post(env, &format!("{api}/v1/login"), &body).0, 200);
    refused(
        &post(env, &format!("{api}/v1/login"), &body),
        401,
        "challenge-reused",
    );
    refused(
        &login(env, api, sign_cert, "sign.key", |_, m| {
            *m = m.replace("gpki login v1", "gpki login v2")
        }),
        401,
        "bad-signature",
    );
    refused(
        &login(env, api, sign_cert, "sign.key", |c, m| {
            // A character inside the MAC (the last one carries padding bits).
            let at = c.len() - 3;
            let flipped = if &c[at..at + 1] == "A" { "B" } else { "A" };
            let new = format!("{}{flipped}{}", &c[..at], &c[at + 1..]);
            *m = m.replace(c.as_str(), &new);
            *c = new;
        }),
        401,
        "challenge-invalid",
    );
    refused(
        &login(
            env,
            api,
            "data/certs/institution-sign.crt.pem",
            "inst.key",
            |_, _| {},
        ),
        401,
        "wrong-purpose",
    );
    env.openssl_ok(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "self.key",
        "-out",
        "self.pem",
        "-subj",
        "/CN=Hong Gildong/C=KR",
        "-days",
        "30",
    ]);
    refused(
        &login(env, api, "self.pem", "self.key", |_, _| {}),
        401,
        "untrusted",
    );
    std::fs::write(env.path("bad.json"), "{\"challenge\": 1").unwrap();
    let bad = post_raw(&format!("{api}/v1/login"), &env.path("bad.json"));
    refused(&bad, 400, "malformed");
}
