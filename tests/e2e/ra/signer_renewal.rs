//! Delegated signers (the OCSP responder, the TSA) renewing their certificates
//! through the CA service.

use super::*;

/// Issue 10, point 7: the OCSP responder renews its own certificate through the CA
/// service (a service client of role ocsp), and answers throughout the swap; it
/// never opens a CA key. Other roles and other profiles are refused.
#[test]
fn responder_renews_its_certificate_through_the_ca_service() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(mut d) = Deployment::start(Backend::Sqlite) else {
        return;
    };
    let env = &d.env;
    env.ok(&[
        "ocsp",
        "issue-signer",
        "--ca",
        "mois",
        "--cert-out",
        "ocsp-mois.pem",
        "--key-out",
        "ocsp-mois.key",
    ]);
    let first_signer = env.serial_of("ocsp-mois.pem");
    std::fs::copy(env.path("ocsp-mois.key"), env.path("first-signer.key")).unwrap();
    std::fs::copy(env.path("ocsp-mois.pem"), env.path("first-signer.pem")).unwrap();
    let host = signer_host(&d, "ocsp-host", "ocsp");
    // Refused: an RA service renewing a signer, and an ocsp client renewing what
    // is not a responder certificate.
    for (cert, key, serial, want) in [
        (
            "ra-host",
            "ra-host",
            first_signer.as_str(),
            "only ocsp and tsa clients",
        ),
        (
            "ocsp-host",
            "ocsp-host",
            host.as_str(),
            "ocsp clients renew ocsp-signer",
        ),
    ] {
        env.openssl_ok(&[
            "pkey",
            "-in",
            &format!("{key}.key"),
            "-passin",
            "file:outpass",
            "-out",
            &format!("{key}.plain.key"),
        ]);
        let body = serde_json::json!({ "ca": "mois", "serial": serial, "csr": "", "proof": "" })
            .to_string();
        let (_, out) = d.curl(
            "ca",
            "/v1/signers/renew",
            Some((&format!("{cert}.chain.pem"), &format!("{key}.plain.key"))),
            Some(&body),
        );
        assert!(out.ends_with("403") && out.contains(want), "{out}");
    }
    let port = free_port();
    std::fs::write(
        env.path("ocsp.toml"),
        format!(
            "store = \"{}\"\nlisten = \"127.0.0.1:{port}\"\nkey_pass_file = \"pass\"\n\
             [[ca]]\nname = \"mois\"\ncert = \"ocsp-mois.pem\"\nkey = \"ocsp-mois.key\"\n{}",
            env_store(env),
            renewal_toml(&d, "ocsp-host")
        ),
    )
    .unwrap();
    let _responder = http_service(env, "gpki-ocsp", "ocsp.toml", port);
    // Ask without pause while the responder renews: every answer verifies and
    // says good, first from the old signer, then from the new.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut answers = 0;
    let new_signer = loop {
        let out = env.openssl_ok(&[
            "ocsp",
            "-issuer",
            "mois.pem",
            "-cert",
            "ocsp-host.pem",
            "-CAfile",
            "root.pem",
            "-url",
            &format!("http://127.0.0.1:{port}/ocsp"),
            "-resp_text",
        ]);
        answers += 1;
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("ocsp-host.pem: good"), "{out}");
        let signer = out
            .lines()
            .skip_while(|l| l.trim() != "Serial Number:")
            .nth(1)
            .map(|l| l.trim().replace(':', "").to_ascii_lowercase())
            .unwrap_or_default();
        if !signer.is_empty() && signer != first_signer {
            break signer;
        }
        assert!(std::time::Instant::now() < deadline, "never renewed: {out}");
    };
    eprintln!("{answers} answers before the new signer");
    // The same signer renewed again (for another key) is refused: one renewal per
    // certificate. A signer of another CA cannot be had without its key.
    for ca in ["root", "mois"] {
        let name = if ca == "root" {
            "ocsp-root"
        } else {
            "ocsp-mois-b"
        };
        env.ok(&[
            "ocsp",
            "issue-signer",
            "--ca",
            ca,
            "--cert-out",
            &format!("{name}.pem"),
            "--key-out",
            &format!("{name}.key"),
        ]);
    }
    let (_, other_csr) = official(&d, "other-signer", B);
    let other_csr = std::fs::read(&other_csr).unwrap();
    let renewal = |ca: &str, cert: &str, signing_key: &str| {
        signer_renewal_request(&d, ca, cert, signing_key, &other_csr)
    };
    // The new key waited in KEY.next until the pair was in place, then went.
    assert!(!env.path("ocsp-mois.key.next").exists());
    let out = renewal("mois", "first-signer.pem", "first-signer.key");
    assert!(
        out.ends_with("409") && out.contains("renewed already"),
        "{out}"
    );
    let out = renewal("mois", "ocsp-mois-b.pem", "first-signer.key");
    assert!(
        out.ends_with("403") && out.contains("not signed by that certificate's key"),
        "{out}"
    );
    // The files on disk are the new pair; the store holds the new certificate,
    // renewed from the first, issued by the CA service for the ocsp client.
    assert_eq!(env.serial_of("ocsp-mois.pem"), new_signer);
    let shown = env.json(&["cert", "show", "--ca", "mois", "--serial", &new_signer]);
    assert_eq!(shown["profile"], "ocsp-signer", "{shown}");
    assert_eq!(shown["status"], "issued", "{shown}");
    let audit = env.json(&["audit", "log", "--limit", "1000000"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "signer:ocsp-host-1"),
        "the renewal is audited as the ocsp client"
    );
    env.ok(&["audit", "verify"]);

    // The online CA service never signs with the root: the root's responder
    // certificate, asked by a client holding the responder's key with a request
    // the CA would otherwise sign, is refused as offline and records nothing.
    let files = d.env.path(".");
    let next_request = |signer: &str| {
        let current =
            openssl::x509::X509::from_pem(&std::fs::read(files.join(signer)).unwrap()).unwrap();
        let fresh = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut req = openssl::x509::X509ReqBuilder::new().unwrap();
        req.set_subject_name(current.subject_name()).unwrap();
        req.set_pubkey(&fresh).unwrap();
        req.sign(&fresh, openssl::hash::MessageDigest::sha256())
            .unwrap();
        req.build().to_pem().unwrap()
    };
    let before = d.certificates();
    let root_csr = next_request("ocsp-root.pem");
    let out = signer_renewal_request(&d, "root", "ocsp-root.pem", "ocsp-root.key", &root_csr);
    assert!(
        out.ends_with("403") && out.contains("CA `root` is offline"),
        "{out}"
    );
    assert_eq!(d.certificates(), before, "a refusal records nothing");
    // The second route to the root: an RA of it. `gpki ra create --ca root` is
    // refused, and an RA row pointed at the root past that gets nothing from the
    // CA service, which refuses before it opens a key.
    let r = env.fails(&[
        "ra",
        "create",
        "--name",
        "R",
        "--ca",
        "root",
        "--subtree",
        B,
        "--profiles",
        "ocsp-signer",
        "--host",
        "ra-host-1",
    ]);
    assert!(r.stderr.contains("CA `root` is offline"), "{}", r.stderr);
    runtime().block_on(sql(
        &env.store,
        &["UPDATE ras SET ca_name = 'root' WHERE name = 'B'"],
    ));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (subject, csr) = official(&d, "rooted", B);
    let detail = d.ra_refused(
        "b1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "rooted-1",
            "--profile",
            "official-sign",
            "--subject",
            &subject,
            "--csr",
            &csr,
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "public official ID card",
        ],
        "unauthorized",
    );
    assert!(detail.contains("CA `root` is offline"), "{detail}");
    assert_eq!(d.certificates(), before, "nothing signed by the root");
    runtime().block_on(sql(
        &env.store,
        &["UPDATE ras SET ca_name = 'mois' WHERE name = 'B'"],
    ));
    // Nor does a CA name the store does not know get further than its name.
    let out = signer_renewal_request(
        &d,
        "no-such-ca",
        "ocsp-root.pem",
        "ocsp-root.key",
        &root_csr,
    );
    assert!(
        out.ends_with("404") && out.contains("no CA named `no-such-ca`"),
        "{out}"
    );

    // A signer is renewed only within signer_renewal_days of its end: with a
    // window of one day, a responder certificate (30 days to run) is refused,
    // though its request (a new key, the same subject, proven by the current
    // key) is otherwise one the CA would sign.
    let ca_toml = std::fs::read_to_string(d.env.path("ca.toml")).unwrap();
    std::fs::write(
        d.env.path("ca.toml"),
        ca_toml.replace("signer_renewal_days = 3650", "signer_renewal_days = 1"),
    )
    .unwrap();
    d.restart_ca(&[]);
    let csr = next_request("ocsp-mois-b.pem");
    let out = signer_renewal_request(&d, "mois", "ocsp-mois-b.pem", "ocsp-mois-b.key", &csr);
    assert!(
        out.ends_with("422")
            && out.contains("may be renewed from")
            && out.contains("1 days before it expires"),
        "{out}"
    );
    assert_eq!(
        d.certificates(),
        before,
        "a refused renewal records nothing"
    );
    // The same request, with the window open again, is signed: the window alone
    // refused it.
    std::fs::write(d.env.path("ca.toml"), &ca_toml).unwrap();
    d.restart_ca(&[]);
    let out = signer_renewal_request(&d, "mois", "ocsp-mois-b.pem", "ocsp-mois-b.key", &csr);
    assert!(out.ends_with("201"), "{out}");
    assert_eq!(d.certificates(), before + 1);
}

/// `POST /v1/signers/renew` as the ocsp client `ocsp-host`: the next certificate of
/// the signer certificate in file `cert` (of CA `ca`) for the key of `csr_pem`,
/// proven by the key in file `signing_key`; curl's output and status.
fn signer_renewal_request(
    d: &Deployment,
    ca: &str,
    cert: &str,
    signing_key: &str,
    csr_pem: &[u8],
) -> String {
    use openssl::pkey::PKey;
    let env = &d.env;
    let pass = std::fs::read_to_string(env.path("pass")).unwrap();
    let key = PKey::private_key_from_pem_passphrase(
        &std::fs::read(env.path(signing_key)).unwrap(),
        pass.trim().as_bytes(),
    )
    .unwrap();
    let csr = openssl::x509::X509Req::from_pem(csr_pem).unwrap();
    let spki = csr.public_key().unwrap().public_key_to_der().unwrap();
    let cert_der = openssl::x509::X509::from_pem(&std::fs::read(env.path(cert)).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let message = format!(
        "gpki signer renewal request v1\ncertificate-sha256: {}\nnew-key-sha256: {}\n",
        hex::encode(openssl::sha::sha256(&cert_der)),
        hex::encode(openssl::sha::sha256(&spki))
    );
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    let proof = hex::encode(signer.sign_oneshot_to_vec(message.as_bytes()).unwrap());
    let serial = env.serial_of(cert);
    let body = serde_json::json!({ "ca": ca, "serial": serial, "csr": String::from_utf8(csr_pem.to_vec()).unwrap(), "proof": proof }).to_string();
    d.curl(
        "ca",
        "/v1/signers/renew",
        Some(("ocsp-host.chain.pem", "ocsp-host.plain.key")),
        Some(&body),
    )
    .1
}

/// Issue 10, point 7 for the TSA: it renews its certificate through the CA service
/// (role tsa, proven by its current key) and keeps stamping through the swap; the
/// tokens after it are signed by the new certificate and verify with OpenSSL.
#[test]
fn tsa_renews_its_certificate_through_the_ca_service() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(d) = Deployment::start(Backend::Sqlite) else {
        return;
    };
    let env = &d.env;
    Deployment::issue(
        env,
        "tsa",
        "tsa",
        "CN=GPKI Time Stamping Authority, OU=GPKI, O=Government of Korea, C=KR",
        &[],
    );
    let first = env.serial_of("tsa.pem");
    signer_host(&d, "tsa-host", "tsa");
    let port = free_port();
    std::fs::write(
        env.path("tsa.toml"),
        format!(
            "store = \"{}\"\nlisten = \"127.0.0.1:{port}\"\nname = \"tsa-1\"\ncert = \"tsa.pem\"\n\
             key = \"tsa.key\"\nkey_pass_file = \"outpass\"\nrequire_clock_sync = false\n{}",
            env_store(env),
            renewal_toml(&d, "tsa-host")
        ),
    )
    .unwrap();
    let _tsa = http_service(env, "gpki-tsa", "tsa.toml", port);
    std::fs::write(env.path("doc.txt"), b"an official document").unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut tokens = 0;
    let new = loop {
        // Every request through the swap is answered.
        env.ok(&[
            "ts", "stamp", "--file", "doc.txt", "--url", &url, "--out", "doc.tsr",
        ]);
        tokens += 1;
        let now = env.serial_of("tsa.pem");
        if now != first {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "never renewed");
    };
    eprintln!("{tokens} tokens before the new certificate was on disk");
    // Once it is in force, tokens carry the new certificate and verify.
    let colons = |hex: &str| {
        hex.to_ascii_lowercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        env.ok(&[
            "ts", "stamp", "--file", "doc.txt", "--url", &url, "--out", "doc.tsr",
        ]);
        env.openssl_ok(&[
            "ts",
            "-reply",
            "-in",
            "doc.tsr",
            "-token_out",
            "-out",
            "doc.tok",
        ]);
        let certs = env.openssl_ok(&[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "doc.tok",
            "-print_certs",
            "-text",
            "-noout",
        ]);
        if certs.contains(&colons(&new)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate never signed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let verified = env.openssl_ok(&[
        "ts",
        "-verify",
        "-data",
        "doc.txt",
        "-in",
        "doc.tsr",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "mois.pem",
    ]);
    assert!(verified.contains("Verification: OK"), "{verified}");
    let shown = env.json(&["cert", "show", "--ca", "mois", "--serial", &new]);
    assert_eq!(shown["profile"], "tsa", "{shown}");
    env.ok(&["audit", "verify"]);
}

/// A delegated signer's host: a service-client certificate `NAME.pem`/`NAME.key`
/// registered as a CA-service client of `role`; returns its serial.
fn signer_host(d: &Deployment, name: &str, role: &str) -> String {
    let serial = Deployment::issue(
        &d.env,
        name,
        "service-client",
        &format!("CN={name}-1, OU=GPKI services, O=Government of Korea, C=KR"),
        &[],
    );
    d.env.ok(&[
        "ra",
        "client",
        "add",
        "--name",
        &format!("{name}-1"),
        "--role",
        role,
        "--ca",
        "mois",
        "--serial",
        &serial,
    ]);
    serial
}

/// The `[renewal]` section of a signer whose host is `name` (before_days 3650:
/// due at once).
fn renewal_toml(d: &Deployment, name: &str) -> String {
    format!(
        "[renewal]\nbefore_days = 3650\ncheck_interval_secs = 3600\nmin_age_secs = 0\n\
         [renewal.ca]\nurl = \"https://127.0.0.1:{}\"\nserver_name = \"ca.gpki.go.kr\"\n\
         cert = \"{name}.chain.pem\"\nkey = \"{name}.key\"\nkey_pass_file = \"outpass\"\nca_file = \"root.pem\"\n",
        d.ca.port
    )
}

/// `BIN serve --config CONFIG` (a plain-HTTP service), answering /healthz.
fn http_service(env: &Env, bin: &str, config: &str, port: u16) -> Service {
    let mut s = Service {
        process: Process::serve(env, bin, config, Stdio::inherit()),
        port,
    };
    s.process
        .wait_http_ok(&format!("http://127.0.0.1:{port}/healthz"), 60);
    s
}
