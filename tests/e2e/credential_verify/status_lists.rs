//! Status lists served by the responder, and what a verifier's fetch tells it.

use super::*;

#[test]
fn the_responder_serves_status_lists_and_a_verifiers_fetch_names_no_credential() {
    if !require("openssl") || !require("python3") || !require("curl") {
        return;
    }
    let env = Env::new(crate::support::Backend::Sqlite).unwrap();
    setup(&env);
    env.ok(&["ocsp", "issue-signer", "--ca", "mobile-id"]);
    // The responder opens its keys with one passphrase: the status-list signer's key
    // re-encrypted under it.
    env.openssl_ok(&[
        "pkcs8",
        "-topk8",
        "-in",
        "status.key",
        "-passin",
        "file:outpass",
        "-v2",
        "aes-256-cbc",
        "-passout",
        "file:pass",
        "-out",
        "status-responder.key",
    ]);
    let extra = format!(
        "[status_lists]\ncert = \"{}\"\nkey = \"{}\"\nttl_seconds = 10\nvalid_seconds = 60\n",
        env.path("status.pem").display(),
        env.path("status-responder.key").display()
    );
    let responder = Responder::start(&env, "ocsp", &env.store, &["mobile-id"], &extra);
    let recorder = Recorder::start(responder.url.trim_start_matches("http://").to_string());
    let uri = format!("http://127.0.0.1:{}/statuslists/mpoid-2", recorder.port);
    env.ok(&[
        "credential",
        "status-list",
        "create",
        "--name",
        "mpoid-2",
        "--uri",
        &uri,
        "--size",
        "65536",
    ]);
    let v = Verifier {
        env: &env,
        ocsp: format!("{}/ocsp", responder.url),
    };
    let on_list_2 = |format: &str, out: &str| {
        let mut args = crate::credentials::issue_args(format, "attrs.json", out);
        let at = args.iter().position(|a| *a == "mpoid-1").unwrap();
        args[at] = "mpoid-2";
        env.json(&args)
    };
    let a = on_list_2("sd-jwt", "a.sd-jwt");
    let b = on_list_2("sd-jwt", "b.sd-jwt");
    on_list_2("mdoc", "m.mdoc");
    present(&env, "a.sd-jwt", "name", "a.presentation", &[]);
    present(&env, "b.sd-jwt", "name", "b.presentation", &[]);
    present(&env, "m.mdoc", "name", "m.presentation", &[]);

    // Fetched live (no token given): verified, and the list's own check shows it.
    let fetch = |file: &str| v.ask(&Ask::new(None), &["--presentation", file], &[]);
    recorder.take();
    let report = fetch("a.presentation").unwrap_or_else(|e| panic!("{e}"));
    assert!(checks(&report).contains(&"status".to_string()));
    let for_a = recorder.take();
    fetch("b.presentation").unwrap_or_else(|e| panic!("{e}"));
    let for_b = recorder.take();
    fetch("m.presentation").unwrap_or_else(|e| panic!("{e}"));
    let for_m = recorder.take();

    // What the issuer's server saw: the list's path, the media type, nothing else.
    // Two different credentials' checks are the same bytes.
    assert_eq!(for_a.len(), 1, "{for_a:?}");
    assert_eq!(for_a, for_b, "the fetch differs by credential");
    let request = &for_a[0];
    let mut lines = request.split("\r\n");
    assert_eq!(lines.next(), Some("GET /statuslists/mpoid-2 HTTP/1.1"));
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "host" => assert_eq!(value.trim(), format!("127.0.0.1:{}", recorder.port)),
            "accept" => assert_eq!(value.trim(), "application/statuslist+jwt"),
            "user-agent" => assert!(value.trim().starts_with("ureq/"), "{line}"),
            "accept-encoding" => {}
            other => panic!("the fetch sends `{other}`: {request}"),
        }
    }
    assert!(
        !request.contains('?') && !request.contains("Cookie"),
        "{request}"
    );
    // The mdoc's fetch asks for the CWT of the same list.
    assert!(
        for_m[0].starts_with("GET /statuslists/mpoid-2 HTTP/1.1\r\n")
            && for_m[0].contains("Accept: application/statuslist+cwt"),
        "{for_m:?}"
    );

    // The tokens as served: caching headers, 304 on a matching ETag, and the
    // independent oracle reads them.
    let url = format!("{}/statuslists/mpoid-2", responder.url);
    let (head, jwt) = curl(&[&url]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), "application/statuslist+jwt");
    assert_eq!(
        header(&head, "cache-control"),
        "max-age=10, public, no-transform"
    );
    let etag = header(&head, "etag").to_string();
    header(&head, "last-modified");
    header(&head, "expires");
    let (head, _) = curl(&[&url, "-H", &format!("If-None-Match: {etag}")]);
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");
    let (head, cwt) = curl(&[&url, "-H", "Accept: application/statuslist+cwt"]);
    assert_eq!(header(&head, "content-type"), "application/statuslist+cwt");
    assert_ne!(
        header(&head, "etag"),
        etag,
        "the CWT has an ETag of its own"
    );
    std::fs::write(env.path("served.jwt"), &jwt).unwrap();
    std::fs::write(env.path("served.cwt"), &cwt).unwrap();
    let (ia, ib) = (a["idx"].to_string(), b["idx"].to_string());
    let oracle = |ia: &str, ib: &str| {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/e2e/py/status_list_oracle.py"
            ))
            .args(["served.jwt", "served.cwt", "mobile-id.pem", ia, ib])
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let before = oracle(&ia, &ib);
    assert_eq!(before["sub"], uri);
    assert_eq!(before["ttl"], 10);
    assert_eq!(before["set_bits"], 0);
    // An unknown list, and a name that is no name.
    let (head, _) = curl(&[&format!("{}/statuslists/nope", responder.url)]);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, body) = curl(&[&format!("{}/statuslists/..%2f..%2fetc", responder.url)]);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(
        String::from_utf8_lossy(&body).trim(),
        "no such status list",
        "refused before the store"
    );

    // Lost phone: revoked, and the next fetch (the responder rereads the list's
    // sequence at most once a second) makes verification fail; the other stays good.
    let id = a["id"].as_i64().unwrap().to_string();
    env.ok(&[
        "credential",
        "revoke",
        "--id",
        &id,
        "--reason",
        "lost-device",
    ]);
    crate::support::eventually("the lost credential refused", 5, || {
        match fetch("a.presentation") {
            Err(e) if e.contains("[credential-revoked]") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    fetch("b.presentation").expect("the other credential is still good");
    let (_, jwt) = curl(&[&url]);
    let (_, cwt) = curl(&[&url, "-H", "Accept: application/statuslist+cwt"]);
    std::fs::write(env.path("served.jwt"), &jwt).unwrap();
    std::fs::write(env.path("served.cwt"), &cwt).unwrap();
    let after = oracle(&ia, &ib);
    assert_eq!(after["statuses"][&ia], 1);
    assert_eq!(after["statuses"][&ib], 0);
    assert_eq!(after["set_bits"], 1);

    // The signer's standing is checked as the CA checks its own (issue 28, point
    // 7): revoked, it signs no further token, the list answers 503 naming why, and
    // /healthz is degraded, saying the same.
    assert_eq!(responder.health()["status_list_signer"], "in force");
    let signer = env.serial_of("status.pem");
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mobile-id",
        "--serial",
        &signer,
        "--reason",
        "keyCompromise",
    ]);
    crate::support::eventually(
        "the status list refused after its signer's revocation",
        5,
        || {
            let (head, body) = curl(&[&url]);
            let body = String::from_utf8_lossy(&body).into_owned();
            (head.starts_with("HTTP/1.1 503")
                && body.contains("signer certificate is not in force"))
            .then_some(())
            .ok_or(format!("{head}{body}"))
        },
    );
    let health = responder.health();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["status_list_signer"]
            .as_str()
            .unwrap()
            .contains("not in force"),
        "{health}"
    );
}
