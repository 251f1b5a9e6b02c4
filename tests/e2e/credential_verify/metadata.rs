//! Issuer metadata and did:web documents name the signer keys in force, in
//! agreement with X.509.

use super::*;

#[test]
fn issuer_metadata_and_did_web_name_the_signer_keys_in_force_and_agree_with_x509() {
    if !require("openssl") || !require("python3") || !require("curl") {
        return;
    }
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    setup(&env);
    env.ok(&["ocsp", "issue-signer", "--ca", "mobile-id"]);
    // A signer of the same CA for another issuer, and the status-list signer: neither
    // is a key of this issuer.
    env.ok(&[
        "cert",
        "issue",
        "--ca",
        "mobile-id",
        "--profile",
        "credential-signer",
        "--subject",
        "CN=Other Issuer Signer, OU=credentials, OU=Other, O=Government of Korea, C=KR",
        "--san",
        "uri:https://other.gpki.go.kr",
        "--generate-key",
        "--key-out",
        "other.key",
        "--out",
        "other.pem",
    ]);
    let extra = "[credential_issuer]\nid = \"https://id.gpki.go.kr\"\nca = \"mobile-id\"\nmax_age_seconds = 10\n";
    let responder = Responder::start(&env, "ocsp", &env.store, &["mobile-id"], extra);
    let url = responder.url.clone();
    let v = Verifier {
        env: &env,
        ocsp: format!("{url}/ocsp"),
    };
    issue(&env, "sd-jwt", "a.sd-jwt", &[]);
    issue(&env, "mdoc", "a.mdoc", &[]);
    publish(&env);
    present(&env, "a.sd-jwt", "name", "a.presentation", &[]);
    present(&env, "a.mdoc", "name", "am.presentation", &[]);
    // RFC 7638 thumbprints of the signer keys, computed here from the certificates.
    let thumbprint = |pem: &str| -> String {
        let cert = openssl::x509::X509::from_pem(&std::fs::read(env.path(pem)).unwrap()).unwrap();
        let ec = cert.public_key().unwrap().ec_key().unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let (mut x, mut y) = (
            openssl::bn::BigNum::new().unwrap(),
            openssl::bn::BigNum::new().unwrap(),
        );
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .unwrap();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64url_encode(&x.to_vec_padded(32).unwrap()),
            b64url_encode(&y.to_vec_padded(32).unwrap())
        );
        b64url_encode(&openssl::sha::sha256(canonical.as_bytes()))
    };
    let first = thumbprint("signer.pem");

    // One key: the signer's, with its x5c; the SD-JWT names it as kid; both kinds of
    // verifier accept both credentials, and so does the X.509 verifier.
    let d = discovery(&env, &url, &["a.sd-jwt", "a.mdoc"]);
    assert_eq!(d["keys"], json!([first]), "{d}");
    assert_eq!(d["did_keys"], json!([first]), "{d}");
    assert_eq!(verdict(&d, "a.sd-jwt"), "accept");
    assert_eq!(verdict(&d, "a.mdoc"), "accept");
    v.run(&["--presentation", "a.presentation"], "list.jwt", &[])
        .expect("X.509 accepts the SD-JWT");
    v.run(&["--presentation", "am.presentation"], "list.cwt", &[])
        .expect("X.509 accepts the mdoc");
    // Caching: max-age, an ETag of each document's own, 304 on a match.
    let (head, _) = curl(&[&format!("{url}/.well-known/did.json")]);
    assert_eq!(header(&head, "cache-control"), "max-age=10, public");
    let etag = header(&head, "etag").to_string();
    let (head, _) = curl(&[
        &format!("{url}/.well-known/did.json"),
        "-H",
        &format!("If-None-Match: {etag}"),
    ]);
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");

    // Rotation: a second signer, then the first retired (superseded). The new key
    // joins both documents; the old one leaves both, and everything it signed is
    // refused by all three verifiers alike.
    env.ok(&[
        "cert", "issue", "--ca", "mobile-id", "--profile", "credential-signer", "--subject",
        "CN=Mobile Public Official ID Signer 2, OU=credentials, OU=MOIS, O=Government of Korea, C=KR",
        "--san", "uri:https://id.gpki.go.kr", "--generate-key", "--key-out", "signer2.key",
        "--out", "signer2.pem", "--chain",
    ]);
    let second = thumbprint("signer2.pem");
    let mut args = crate::credentials::issue_args("sd-jwt", "attrs.json", "b.sd-jwt");
    for (from, to) in [
        ("signer.key", "signer2.key"),
        ("signer-chain.pem", "signer2.pem"),
    ] {
        let at = args.iter().position(|a| *a == from).unwrap();
        args[at] = to;
    }
    env.ok(&args);
    present(&env, "b.sd-jwt", "name", "b.presentation", &[]);
    crate::support::eventually("the new key listed", 5, || {
        let d = discovery(&env, &url, &[]);
        let mut both = vec![first.clone(), second.clone()];
        both.sort();
        (d["keys"] == json!(both) && d["did_keys"] == json!(both))
            .then_some(())
            .ok_or(format!("{d}"))
    });
    let serial = env.serial_of("signer.pem");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &serial,
        "--reason",
        "superseded",
    ]);
    crate::support::eventually("the retired key gone from both", 5, || {
        let d = discovery(&env, &url, &[]);
        (d["keys"] == json!([second]) && d["did_keys"] == json!([second]))
            .then_some(())
            .ok_or(format!("{d}"))
    });
    let d = discovery(&env, &url, &["a.sd-jwt", "a.mdoc", "b.sd-jwt"]);
    assert_eq!(verdict(&d, "a.sd-jwt"), "no-key");
    assert_eq!(verdict(&d, "a.mdoc"), "no-key");
    assert_eq!(verdict(&d, "b.sd-jwt"), "accept");
    crate::support::eventually("X.509 refuses the retired signer", 10, || {
        match v.run(&["--presentation", "a.presentation"], "list.jwt", &[]) {
            Err(e) if e.contains("[signer-revoked]") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    v.refuses("am.presentation", "list.cwt", &[], "signer-revoked");
    v.run(&["--presentation", "b.presentation"], "list.jwt", &[])
        .expect("X.509 accepts the new signer's credential");

    // A kid naming another key than x5c's: the two kinds of verifier would judge
    // different keys, so gpki refuses it.
    let text = std::fs::read_to_string(env.path("b.presentation")).unwrap();
    let (jws, rest) = text.split_once('~').unwrap();
    let mut parts = jws.splitn(2, '.');
    let mut h: Value = serde_json::from_slice(&b64url_decode(parts.next().unwrap())).unwrap();
    h["kid"] = json!(first);
    let forged = format!(
        "{}.{}~{rest}",
        b64url_encode(&serde_json::to_vec(&h).unwrap()),
        parts.next().unwrap()
    );
    std::fs::write(env.path("kid.presentation"), forged).unwrap();
    let e = v.refuses("kid.presentation", "list.jwt", &[], "issuer-mismatch");
    assert!(e.contains("kid"), "{e}");

    // A renewal that keeps the key: one JWK for the key, however many certificates.
    // Then the renewed certificate revoked: the key is withdrawn from both documents
    // although its first certificate is in force, since a verifier selecting by kid
    // cannot tell the two apart.
    env.ok(&[
        "cert",
        "renew",
        "--ca",
        "mobile-id",
        "--serial",
        &env.serial_of("signer2.pem"),
        "--out",
        "signer2-renewed.pem",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let d = discovery(&env, &url, &["b.sd-jwt"]);
    assert_eq!(d["keys"], json!([second]), "{d}");
    assert_eq!(verdict(&d, "b.sd-jwt"), "accept");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &env.serial_of("signer2-renewed.pem"),
        "--reason",
        "superseded",
    ]);
    crate::support::eventually("a key revoked in one certificate gone", 5, || {
        let d = discovery(&env, &url, &["b.sd-jwt"]);
        (d["keys"] == json!([]) && verdict(&d, "b.sd-jwt") == "no-key")
            .then_some(())
            .ok_or(format!("{d}"))
    });

    // The last key revoked: both documents list none, and the X.509 verifier refuses.
    let serial = env.serial_of("signer2.pem");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    crate::support::eventually("no key left", 5, || {
        let d = discovery(&env, &url, &["b.sd-jwt"]);
        (d["keys"] == json!([]) && verdict(&d, "b.sd-jwt") == "no-key")
            .then_some(())
            .ok_or(format!("{d}"))
    });
    crate::support::eventually("X.509 refuses the revoked signer", 10, || {
        match v.run(&["--presentation", "b.presentation"], "list.jwt", &[]) {
            Err(e) if e.contains("[signer-revoked]") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}
