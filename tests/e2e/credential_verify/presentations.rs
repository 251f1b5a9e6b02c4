//! Presentations verified from a file and from a QR code, and every tampering
//! refused by name.

use super::*;

#[test]
fn presentations_verify_from_file_and_qr_and_every_tampering_is_refused_by_name() {
    if !require("openssl") || !require("python3") || !require("zbarimg") {
        return;
    }
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    setup(&env);
    env.ok(&["ocsp", "issue-signer", "--ca", "mobile-id"]);
    // Another root with the same subject as ours, made by OpenSSL: a look-alike
    // anchor must not be mistaken for the real one.
    env.openssl_ok(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        "other-root.key",
        "-out",
        "other-root.pem",
        "-days",
        "30",
        "-subj",
        "/C=KR/O=Government of Korea/OU=GPKI/CN=Test Root CA",
    ]);
    let responder = Responder::start(&env, "ocsp", &env.store, &["mobile-id"], "");
    let v = Verifier {
        env: &env,
        ocsp: format!("{}/ocsp", responder.url),
    };
    issue(&env, "mdoc", "id.mdoc", &[]);
    let sdjwt = issue(&env, "sd-jwt", "id.sd-jwt", &[]);
    issue(&env, "sd-jwt", "short.sd-jwt", &["--valid-days", "1"]);
    publish(&env);

    for (format, credential, token) in [
        ("mdoc", "id.mdoc", "list.cwt"),
        ("sd-jwt", "id.sd-jwt", "list.jwt"),
    ] {
        let file = format!("{format}.presentation");
        let png = format!("{format}.png");
        let p = present(
            &env,
            credential,
            "name,institution,position",
            &file,
            &["--qr", &png],
        );
        assert!(p["qr"]["version"].as_i64().unwrap() <= 40, "{p}");

        // From the file and from the image: the same report.
        let report = v
            .run(&["--presentation", &file], token, &[])
            .unwrap_or_else(|e| panic!("{format}: a good presentation is refused: {e}"));
        assert_eq!(report["verified"], true);
        assert_eq!(report["format"], format);
        let disclosed = report["disclosed"].as_object().unwrap();
        let mut names: Vec<&str> = disclosed.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["institution", "name", "position"], "{format}");
        assert_eq!(disclosed["name"], "Hong Gildong");
        let made = checks(&report);
        for c in [
            "chain",
            "signer-status",
            "signature",
            "digests",
            "validity",
            "holder-binding",
            "status",
        ] {
            assert!(
                made.iter().any(|m| m == c),
                "{format}: no `{c}` in {made:?}"
            );
        }
        // The status list token's own signer was checked too (chain and OCSP).
        assert!(
            made.iter().filter(|m| *m == "chain").count() == 2,
            "{made:?}"
        );
        let from_qr = v.run(&["--qr", &png], token, &[]).unwrap();
        assert_eq!(from_qr["disclosed"], report["disclosed"]);

        // An independent reader of the image gets the same bytes.
        let bytes = std::fs::read(env.path(&file)).unwrap();
        let read = zbarimg(&env, &png);
        match format {
            "mdoc" => assert_eq!(read, bytes, "zbarimg reads the DeviceResponse"),
            _ => assert_eq!(
                sd_jwt_from_qr_bytes(&read),
                bytes,
                "zbarimg reads the packed SD-JWT"
            ),
        }

        // A wrong nonce.
        let wrong = "another-nonce-0000";
        let reason = if format == "mdoc" {
            "device-auth"
        } else {
            "wrong-nonce"
        };
        let e = v
            .ask(
                &Ask {
                    nonce: wrong,
                    ..Ask::new(Some(token))
                },
                &["--presentation", &file],
                &[],
            )
            .expect_err("a wrong nonce accepted");
        assert!(e.contains(&format!("[{reason}]")), "{format}: {e}");

        // An unknown trust anchor: another government's root.
        let e = v
            .ask(
                &Ask {
                    anchor: "other-root.pem",
                    ..Ask::new(Some(token))
                },
                &["--presentation", &file],
                &[],
            )
            .expect_err("an unknown anchor accepted");
        assert!(
            e.contains("[untrusted-chain]") && e.contains("does not chain to a trust anchor"),
            "{e}"
        );
        // The root above the credential CA is not enough: any CA under it could mint IDs.
        let e = v
            .ask(
                &Ask {
                    anchor: "root.pem",
                    ..Ask::new(Some(token))
                },
                &["--presentation", &file],
                &[],
            )
            .expect_err("a root-only anchor accepted");
        assert!(
            e.contains("[untrusted-chain]") && e.contains("which is not a configured trust anchor"),
            "{e}"
        );
        // Another verifier presenting what was made for this one.
        let reason = if format == "mdoc" {
            "device-auth"
        } else {
            "wrong-verifier"
        };
        let e = v
            .ask(
                &Ask {
                    verifier: "https://elsewhere.go.kr",
                    ..Ask::new(Some(token))
                },
                &["--presentation", &file],
                &[],
            )
            .expect_err("another verifier accepted");
        assert!(e.contains(&format!("[{reason}]")), "{format}: {e}");
    }

    // A status list signed under another CA of the same root: refused, even though it
    // chains and carries the purpose (it could clear anyone's revocation).
    env.ok(&[
        "ca",
        "create",
        "--parent",
        "root",
        "--name",
        "other-ca",
        "--subject",
        "CN=Test Other CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p256",
        "--out",
        "other-ca.pem",
    ]);
    env.ok(&[
        "cert", "issue", "--ca", "other-ca", "--profile", "status-list-signer", "--subject",
        "CN=Other Status List, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",
        "--generate-key", "--key-out", "other-status.key", "--out", "other-status.pem", "--chain",
    ]);
    env.ok(&[
        "credential",
        "status-list",
        "publish",
        "--name",
        "mpoid-1",
        "--signer-key",
        "other-status.key",
        "--signer-pass-file",
        "outpass",
        "--signer-chain",
        "other-status.pem",
        "--jwt-out",
        "other.jwt",
        "--cwt-out",
        "other.cwt",
    ]);
    let e = v
        .run(
            &["--presentation", "mdoc.presentation"],
            "other.cwt",
            &["--anchor", "other-ca.pem"],
        )
        .expect_err("another CA's status list accepted");
    assert!(
        e.contains("[status-untrusted]") && e.contains("not the credential's CA"),
        "{e}"
    );

    // Tampering with the mdoc, each refused by its name.
    let m = std::fs::read(env.path("mdoc.presentation")).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(env.path(name), bytes).unwrap();
    let at = |hay: &[u8], needle: &[u8]| {
        hay.windows(needle.len())
            .position(|w| w == needle)
            .expect("present")
    };
    // An attribute's value (same length, so the CBOR stays well formed).
    let mut t = m.clone();
    let i = at(&t, b"Hong Gildong");
    t[i + 11] = b'q';
    write("attr.mdoc", &t);
    let e = v.refuses("attr.mdoc", "list.cwt", &[], "digest-mismatch");
    assert!(e.contains("attribute `name`"), "{e}");
    // A signed digest in the MSO (the first digest runs from 36 to 67 bytes past
    // "valueDigests"): the issuer's signature no longer covers it.
    let mut t = m.clone();
    let i = at(&t, b"valueDigests") + 40;
    t[i] ^= 0x01;
    write("digest.mdoc", &t);
    v.refuses("digest.mdoc", "list.cwt", &[], "bad-signature");
    // Truncated CBOR.
    write("truncated.mdoc", &m[..m.len() / 2]);
    let e = v.refuses("truncated.mdoc", "list.cwt", &[], "malformed");
    assert!(e.contains("truncated or malformed CBOR"), "{e}");

    // Tampering with the SD-JWT.
    let text = std::fs::read_to_string(env.path("sd-jwt.presentation")).unwrap();
    let parts: Vec<&str> = text.split('~').collect();
    // An attribute's disclosure, re-encoded with another value.
    let (k, d) = parts
        .iter()
        .enumerate()
        .filter(|(k, _)| *k > 0 && *k + 1 < parts.len())
        .find(|(_, d)| String::from_utf8_lossy(&b64url_decode(d)).contains("Hong Gildong"))
        .unwrap();
    let forged = String::from_utf8(b64url_decode(d))
        .unwrap()
        .replace("Hong Gildong", "Kim Minsu");
    let mut t = parts.clone();
    let forged = b64url_encode(forged.as_bytes());
    t[k] = &forged;
    write("attr.sd-jwt", t.join("~").as_bytes());
    let e = v.refuses("attr.sd-jwt", "list.jwt", &[], "digest-mismatch");
    assert!(e.contains("attribute `name`"), "{e}");
    // A signed digest in _sd.
    let jws: Vec<&str> = parts[0].split('.').collect();
    let payload = String::from_utf8(b64url_decode(jws[1])).unwrap();
    let i = payload.find("\"_sd\":[\"").unwrap() + 8;
    let mut forged = payload.into_bytes();
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let jws_forged = format!("{}.{}.{}", jws[0], b64url_encode(&forged), jws[2]);
    let mut t = parts.clone();
    t[0] = &jws_forged;
    write("digest.sd-jwt", t.join("~").as_bytes());
    v.refuses("digest.sd-jwt", "list.jwt", &[], "bad-signature");
    // A malformed JWT.
    write("malformed.sd-jwt", b"eyJhbGciOiJFUzI1NiJ9.%%%~");
    let e = v.refuses("malformed.sd-jwt", "list.jwt", &[], "malformed");
    assert!(e.contains("malformed JWT"), "{e}");

    // Expired: a one-day credential, verified three days on.
    present(&env, "short.sd-jwt", "name", "short.presentation", &[]);
    let later = String::from_utf8(
        std::process::Command::new("date")
            .args(["-u", "-d", "+3 days", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    v.run(&["--presentation", "short.presentation"], "list.jwt", &[])
        .expect("valid today");
    let e = v.refuses(
        "short.presentation",
        "list.jwt",
        &["--at", later.trim()],
        "expired",
    );
    assert!(e.contains("the credential expired at"), "{e}");

    // Revoked (lost phone): its bit is set in the next list, and the credential fails.
    let id = sdjwt["id"].as_i64().unwrap().to_string();
    env.ok(&[
        "credential",
        "revoke",
        "--id",
        &id,
        "--reason",
        "lost-device",
    ]);
    publish(&env);
    let e = v.refuses("sd-jwt.presentation", "list.jwt", &[], "credential-revoked");
    assert!(e.contains(&format!("entry {} of", sdjwt["idx"])), "{e}");
    // The other credential on the same list still verifies.
    v.run(&["--presentation", "mdoc.presentation"], "list.cwt", &[])
        .expect("the mdoc is not revoked");

    // The signer certificate revoked: OCSP says so, and nothing it signed verifies.
    let serial = env.serial_of("signer.pem");
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
    crate::support::eventually("the revoked signer refused", 10, || {
        match v.run(&["--presentation", "mdoc.presentation"], "list.cwt", &[]) {
            Err(e) if e.contains("[signer-revoked]") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}
