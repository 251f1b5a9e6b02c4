//! Issue 10's "done when": a new user runs `gpki dev up`, enrols an operator, and
//! issues, renews and revokes an official's certificate through the RA, with the
//! commands the README's walkthrough gives. OpenSSL judges the certificates and the
//! revocation as the dev OCSP responder answers it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{dev_up, eventually, free_port, require, Backend, Env, Process, Run};

const MOIS: &str = "OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";

/// gpki as a user after `dev up`: the SQLite store of the data directory, the RA
/// profile dev up wrote, and the dev passphrase for the keys it makes.
fn user(env: &Env, args: &[&str]) -> Run {
    let o = env
        .command()
        .env_remove("GPKI_STORE")
        .env_remove("GPKI_KEY_PASS_FILE")
        .env("GPKI_RA_CONFIG", "data/ra-client.toml")
        .env("GPKI_OUT_PASS_FILE", "data/dev-signer-passphrase")
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn user_ok(env: &Env, args: &[&str]) -> Value {
    ok_json(user(env, args))
}

/// The JSON of a run that must have succeeded.
fn ok_json(r: Run) -> Value {
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.stdout))
}

/// `gpki ra revoke-own` of `cert` with `key` (under the dev signer passphrase).
fn revoke_own(env: &Env, cert: &str, key: &str, reason: &str) -> Run {
    user(
        env,
        &[
            "ra",
            "revoke-own",
            "--own-cert",
            cert,
            "--own-key",
            key,
            "--own-pass-file",
            "data/dev-signer-passphrase",
            "--reason",
            reason,
        ],
    )
}

/// What `openssl ocsp` says of `cert` at the dev responder (signature verified).
fn openssl_ocsp(env: &Env, port: u16, cert: &str) -> String {
    let o = Command::new("openssl")
        .current_dir(env.path(""))
        .args([
            "ocsp",
            "-issuer",
            "data/certs/mois.crt.pem",
            "-CAfile",
            "data/certs/gpki-root.crt.pem",
            "-cert",
            cert,
            "-url",
            &format!("http://127.0.0.1:{port}/ocsp"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(text.contains("Response verify OK"), "{text}");
    text
}

#[test]
fn dev_up_then_enrol_issue_renew_revoke_through_the_ra() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("curl") || !require("openssl") {
        return;
    }
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let [ocsp, tsa, ca, ra] = ports.map(|p| format!("127.0.0.1:{p}"));
    let mut dev = dev_up(
        &env,
        &[
            "--listen",
            &ocsp,
            "--tsa-listen",
            &tsa,
            "--ca-listen",
            &ca,
            "--ra-listen",
            &ra,
            "--api-listen",
            &format!("127.0.0.1:{}", free_port()),
        ],
    );
    dev.wait_http_ok(&format!("http://{ocsp}/healthz"), 180);

    // The RA answers the dev administrator once its port is open.
    let deadline = Instant::now() + Duration::from_secs(60);
    let who = loop {
        let r = user(&env, &["ra", "whoami"]);
        if r.code == 0 {
            break serde_json::from_str::<Value>(&r.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "RA never answered: {}", r.stderr);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(who["operator"]["name"], "dev-admin", "{who}");
    assert_eq!(who["operator"]["admin"], true, "{who}");
    assert_eq!(who["ra"]["name"], "dev-mois", "{who}");

    // Enrol a second operator; the certificate file it gets logs in as is.
    let lee = format!("CN=Lee Sora(000000002), OU=RA, {MOIS}");
    user_ok(
        &env,
        &[
            "key",
            "new",
            "--key-out",
            "lee.key.pem",
            "--subject",
            &lee,
            "--csr-out",
            "lee.csr",
        ],
    );
    // OpenSSL checks the request's self-signature; an existing key is never replaced.
    let checked = env.openssl_ok(&["req", "-in", "lee.csr", "-verify", "-noout", "-subject"]);
    assert!(checked.contains("Lee Sora"), "{checked}");
    let before = std::fs::read(env.path("lee.key.pem")).unwrap();
    let r = user(&env, &["key", "new", "--key-out", "lee.key.pem"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("refusing to overwrite"), "{}", r.stdout);
    assert_eq!(std::fs::read(env.path("lee.key.pem")).unwrap(), before);
    let enrolled = user_ok(
        &env,
        &[
            "ra",
            "operator",
            "enrol",
            "--idempotency-key",
            "enrol-lee",
            "--name",
            "lee",
            "--subject",
            &lee,
            "--csr",
            "lee.csr",
            "--out",
            "lee.pem",
        ],
    );
    assert_eq!(enrolled["request"]["status"], "issued", "{enrolled}");
    let as_lee = ["--cert", "lee.pem", "--key", "lee.key.pem"];
    let who = user_ok(&env, &[&["ra", "whoami"][..], &as_lee].concat());
    assert_eq!(who["operator"]["name"], "lee", "{who}");
    assert_eq!(who["operator"]["admin"], false, "{who}");

    // Lee issues an official's signing certificate after seeing an ID card.
    let hong = format!("CN=Hong Gildong(001234567), OU=people, {MOIS}");
    user_ok(
        &env,
        &[
            "key",
            "new",
            "--key-out",
            "hong.key.pem",
            "--subject",
            &hong,
            "--csr-out",
            "hong.csr",
        ],
    );
    let submit = [
        "ra",
        "submit",
        "--idempotency-key",
        "hong-1",
        "--profile",
        "official-sign",
        "--subject",
        &hong,
        "--csr",
        "hong.csr",
        "--identity-method",
        "face-to-face",
        "--identity-document",
        "public official ID card 1234",
        "--out",
        "hong.pem",
    ];
    let issued = user_ok(&env, &[&submit[..], &as_lee].concat());
    assert_eq!(issued["request"]["status"], "issued", "{issued}");
    let serial = issued["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let verify = |cert: &str| {
        env.openssl_ok(&[
            "verify",
            "-x509_strict",
            "-purpose",
            "smimesign",
            "-CAfile",
            "data/certs/gpki-root.crt.pem",
            "-untrusted",
            "data/certs/mois.crt.pem",
            cert,
        ])
    };
    verify("hong.pem");
    // An employee number belongs to one official: an operator who names Hong's
    // number for another name gets no certificate, so no mobile ID can be had, or
    // Hong's revoked, through it (issue 28, point 3).
    user_ok(
        &env,
        &[
            "key",
            "new",
            "--key-out",
            "mallory.key.pem",
            "--subject",
            "CN=ignored",
            "--csr-out",
            "mallory.csr",
        ],
    );
    let mallory = [
        "ra",
        "submit",
        "--idempotency-key",
        "mallory-1",
        "--profile",
        "official-sign",
        "--subject",
        &format!("CN=Mallory(001234567), OU=people, {MOIS}"),
        "--csr",
        "mallory.csr",
        "--identity-method",
        "face-to-face",
        "--identity-document",
        "ID card 666",
    ];
    let r = user(&env, &[&mallory[..], &as_lee].concat());
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("employee number 001234567 belongs to Hong Gildong"),
        "{}",
        r.stdout
    );
    credentials_through_the_ra(&env, &serial, &enrolled, &as_lee);
    // A subject of another institution is outside the dev RA's scope.
    let moe = "CN=Kim Cheolsu(001111111), OU=people, OU=Ministry of Education, O=Government of Korea, C=KR";
    let other = [
        "ra",
        "submit",
        "--idempotency-key",
        "kim-1",
        "--profile",
        "official-sign",
        "--subject",
        moe,
        "--csr",
        "hong.csr",
        "--identity-method",
        "face-to-face",
        "--identity-document",
        "ID card 99",
    ];
    let r = user(&env, &[&other[..], &as_lee].concat());
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["error"]["kind"], "unauthorized", "{v}");
    assert!(
        v["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("outside the institutions of RA `dev-mois`"),
        "{v}"
    );
    let listed = user_ok(&env, &["ra", "requests"]);
    assert!(
        !listed.to_string().contains("kim-1"),
        "a refused request is not recorded: {listed}"
    );

    // The administrator renews it (same key) and revokes the renewed certificate.
    let renewed = user_ok(
        &env,
        &[
            "ra",
            "renew",
            "--idempotency-key",
            "hong-renew",
            "--serial",
            &serial,
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
        &env,
        &[
            "ra",
            "renew",
            "--idempotency-key",
            "hong-renew",
            "--serial",
            &serial,
        ],
    );
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["certificate"]["serial"], serial2.as_str(), "{again}");
    verify("hong2.pem");
    assert!(openssl_ocsp(&env, ports[0], "hong2.pem").contains("hong2.pem: good"));
    let revoked = user_ok(
        &env,
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
        let text = openssl_ocsp(&env, ports[0], "hong2.pem");
        if text.contains("hong2.pem: revoked") {
            assert!(text.contains("Reason: superseded"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "OCSP never said revoked: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(openssl_ocsp(&env, ports[0], "hong.pem").contains("hong.pem: good"));

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
    assert!(openssl_ocsp(&env, ports[0], "hong.pem").contains("hong.pem: good"));
    // An operator's own certificate is not revoked this way (administrators do).
    let r = revoke_own(&env, "lee.pem", "lee.key.pem", "keyCompromise");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("administrator of the RA"), "{}", r.stdout);
    // Someone else's key cannot sign for it (refused before anything is sent).
    let r = revoke_own(&env, "hong.pem", "lee.key.pem", "keyCompromise");
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
        let text = openssl_ocsp(&env, ports[0], "hong.pem");
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
    assert_eq!(valid_ids(&env), 1);
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
        &env,
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
    assert_eq!(valid_ids(&env), 0);
    let listed = user_ok(&env, &["credential", "list", "--subject", "001234567"]);
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
            &env,
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
    let r = revoke_own(&env, "hong.pem", "hong.key.pem", "superseded");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("revoked"), "{}", r.stdout);

    // Every step is in the RA's requests and the audit log, whose chain verifies.
    let listed = user_ok(&env, &["ra", "requests"]);
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

    dual_enrolment_through_the_ra(&env, &as_lee);

    // Each service also runs alone from its binary and the config dev up wrote.
    drop(dev);
    let spawn = |bin: &str, config: &str| {
        Process::start(
            bin,
            Command::new(Process::binary(bin))
                .args(["serve", "--config", config])
                .current_dir(env.path("")),
            Stdio::null(),
        )
    };
    let _ca = spawn("gpki-ca", "data/ca.toml");
    let _ra = spawn("gpki-ra", "data/ra.toml");
    user_ok(
        &env,
        &[
            "key",
            "new",
            "--key-type",
            "rsa2048",
            "--key-out",
            "hong-rsa.key.pem",
            "--subject",
            &hong,
            "--csr-out",
            "hong-rsa.csr",
        ],
    );
    let again = [
        "ra",
        "submit",
        "--idempotency-key",
        "hong-rsa",
        "--profile",
        "official-sign",
        "--subject",
        &hong,
        "--csr",
        "hong-rsa.csr",
        "--identity-method",
        "contact-free",
        "--identity-document",
        "mobile ID 1234",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let km = loop {
        let r = user(&env, &again);
        if r.code == 0 {
            break serde_json::from_str::<Value>(&r.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "standalone services: {}{}",
            r.stdout,
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(km["request"]["status"], "issued", "{km}");
    // `gpki ra revoke-own` signs with the holder's (here RSA) signing key.
    std::fs::write(
        env.path("hong-rsa.pem"),
        km["certificate"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    // A reason that is an operator's is refused.
    let r = revoke_own(
        &env,
        "hong-rsa.pem",
        "hong-rsa.key.pem",
        "privilegeWithdrawn",
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is an operator's"), "{}", r.stdout);
    let own = ok_json(revoke_own(
        &env,
        "hong-rsa.pem",
        "hong-rsa.key.pem",
        "affiliationChanged",
    ));
    assert_eq!(own["request"]["status"], "revoked", "{own}");
    assert!(own["request"]["submitted_by"].is_null(), "{own}");

    let audit = user_ok(&env, &["audit", "verify"]);
    assert!(audit["problems"].as_array().unwrap().is_empty(), "{audit}");
    assert!(audit["rows"].as_i64().unwrap() > 20, "{audit}");
}

/// Issue 11's RA part: an ID offered to an official the RA knows (Hong, whose
/// official-sign certificate `serial` Lee requested), issued by the CA service to
/// the phone key proven over the RA's nonce; judged by the independent SD-JWT
/// oracle and by `gpki credential verify` from a QR code without the photo.
fn credentials_through_the_ra(env: &Env, serial: &str, lee: &Value, lee_login: &[&str]) {
    let as_lee = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(lee_login)
            .map(|s| s.to_string())
            .collect()
    };
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
    let offer = |key: &str, serial: &str, format: &str| {
        let args = as_lee(&[
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
        ]);
        user(env, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let proof = |key: &str, nonce: &str, audience: &str, out: &str| {
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
    };
    let issue = |offer: &str, proof: &str, out: &str| {
        let args = as_lee(&[
            "ra",
            "offer-issue",
            "--offer",
            offer,
            "--proof",
            proof,
            "--out",
            out,
        ]);
        user(env, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let refused = |r: Run, kind: &str, words: &str| {
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_eq!(v["error"]["kind"], kind, "{v}");
        assert!(
            v["error"]["detail"].as_str().unwrap().contains(words),
            "{v}"
        );
    };

    let o = ok_json(offer("hong-id-1", serial, "sd-jwt"));
    assert_eq!(o["status"], "offered", "{o}");
    assert_eq!(o["audience"], "https://id.gpki.go.kr", "{o}");
    let (id, nonce) = (
        o["offer"].to_string(),
        o["nonce"].as_str().unwrap().to_string(),
    );
    assert!(nonce.len() >= 43, "a 256-bit nonce: {o}");
    let again = ok_json(offer("hong-id-1", serial, "sd-jwt"));
    assert_eq!(
        (&again["replayed"], &again["nonce"]),
        (&Value::Bool(true), &o["nonce"])
    );

    // Officials the RA does not know: an operator's certificate, no certificate.
    refused(
        offer(
            "lee-id-1",
            lee["certificate"]["serial"].as_str().unwrap(),
            "sd-jwt",
        ),
        "unauthorized",
        "not an official RA `dev-mois` knows",
    );
    refused(
        offer("nobody-1", "7f01", "sd-jwt"),
        "not_found",
        "no certificate",
    );

    // Proofs that prove nothing change nothing: another nonce, another audience.
    proof(
        "phone.key",
        "not-the-offers-nonce",
        "https://id.gpki.go.kr",
        "bad-nonce.jwt",
    );
    refused(
        issue(&id, "bad-nonce.jwt", "x"),
        "policy_violation",
        "nonce",
    );
    proof(
        "phone.key",
        &nonce,
        "https://elsewhere.example",
        "bad-aud.jwt",
    );
    refused(issue(&id, "bad-aud.jwt", "x"), "policy_violation", "aud");
    assert!(!env.path("x").exists());

    // The phone's proof: issued by the CA service, to that key.
    proof("phone.key", &nonce, "https://id.gpki.go.kr", "proof.jwt");
    let issued = ok_json(issue(&id, "proof.jwt", "hong.sd-jwt"));
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
    refused(issue(&id, "proof.jwt", "y"), "conflict", "is issued");

    // A new phone: an mdoc offered and proven by the second key; Hong's first ID is
    // revoked `replaced`, and the new one is presented by QR without the photo.
    let o2 = ok_json(offer("hong-id-2", serial, "mdoc"));
    proof(
        "phone2.key",
        o2["nonce"].as_str().unwrap(),
        "https://id.gpki.go.kr",
        "proof2.jwt",
    );
    let second = ok_json(issue(&o2["offer"].to_string(), "proof2.jwt", "hong.mdoc"));
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
    let o3 = ok_json(offer("hong-id-3", serial, "sd-jwt"));
    proof(
        "phone.key",
        o3["nonce"].as_str().unwrap(),
        "https://id.gpki.go.kr",
        "proof3.jwt",
    );
    let third = ok_json(issue(&o3["offer"].to_string(), "proof3.jwt", "hong3.sdjwt"));
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
    // A new phone again: the ID presented below.
    let o4 = ok_json(offer("hong-id-4", serial, "mdoc"));
    proof(
        "phone2.key",
        o4["nonce"].as_str().unwrap(),
        "https://id.gpki.go.kr",
        "proof4.jwt",
    );
    ok_json(issue(&o4["offer"].to_string(), "proof4.jwt", "hong.mdoc"));
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

/// Issue 12's "done when" through the RA: an official enrolled with both
/// certificates (the km key made by the CA, archived to dev up's KRA and sealed to
/// the official's transport key), the pair renewed together and its revocation
/// offered; the km key lost and recovered with two officers' approvals. OpenSSL
/// opens every file.
fn dual_enrolment_through_the_ra(env: &Env, lee_login: &[&str]) {
    let as_lee = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(lee_login)
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| user(env, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let official = |who: &str, name: &str, transport: bool| -> Value {
        let subject = format!("CN={name}, OU=people, {MOIS}");
        user_ok(
            env,
            &[
                "key",
                "new",
                "--key-out",
                &format!("{who}.key.pem"),
                "--subject",
                &subject,
                "--csr-out",
                &format!("{who}.csr"),
            ],
        );
        let mut args = vec![
            "ra",
            "submit",
            "--idempotency-key",
            who,
            "--profile",
            "official-sign",
            "--subject",
            &subject,
            "--csr",
            &format!("{who}.csr"),
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "public official ID card",
            "--out",
            &format!("{who}.pem"),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        if transport {
            user_ok(
                env,
                &[
                    "key",
                    "new",
                    "--key-type",
                    "rsa2048",
                    "--key-out",
                    &format!("{who}-transport.key.pem"),
                    "--subject",
                    "CN=transport",
                    "--csr-out",
                    &format!("{who}-transport.csr"),
                ],
            );
            args.extend(
                [
                    "--km-transport",
                    &format!("{who}-transport.csr"),
                    "--km-out",
                    &format!("{who}-km.pem"),
                    "--km-envelope-out",
                    &format!("{who}-km.p7m"),
                ]
                .map(String::from),
            );
        }
        ok_json(run(as_lee(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )))
    };
    let verify = |cert: &str, purpose: &str| {
        let out = env.openssl_ok(&[
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            "data/certs/gpki-root.crt.pem",
            "-untrusted",
            "data/certs/mois.crt.pem",
            cert,
        ]);
        assert!(out.contains(": OK"), "{out}");
    };
    let key_of = |args: &[&str]| -> String {
        let text = env.openssl_ok(args);
        let start = text
            .find("-----BEGIN PRIVATE KEY-----")
            .expect("a private key");
        text[start..text.find("-----END PRIVATE KEY-----").unwrap()].to_string()
    };

    // One enrolment, two certificates.
    let park = official("park", "Park Jimin(002345678)", true);
    assert_eq!(park["request"]["status"], "issued", "{park}");
    let sign_serial = park["certificate"]["serial"].as_str().unwrap().to_string();
    let km = &park["certificate"]["km"];
    let km_serial = km["certificate"]["serial"].as_str().unwrap().to_string();
    assert_eq!(km["certificate"]["profile"], "official-km", "{park}");
    assert!(
        km["delivery"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CMS-----"),
        "{park}"
    );
    verify("park.pem", "smimesign");
    verify("park-km.pem", "smimeencrypt");
    // OpenSSL opens the delivery with the transport key: the km certificate's key.
    env.openssl_ok(&[
        "pkey",
        "-in",
        "park-transport.key.pem",
        "-passin",
        "file:data/dev-signer-passphrase",
        "-out",
        "park-transport.plain",
    ]);
    env.openssl_ok(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "park-km.p7m",
        "-inkey",
        "park-transport.plain",
        "-out",
        "park-km.der",
    ]);
    let delivered = key_of(&["pkey", "-inform", "DER", "-in", "park-km.der"]);
    // The km key was made on the CA's side and is archived: holding it proves
    // nothing of the holder, so it cannot revoke (the signing key does).
    env.openssl_ok(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-inform",
        "DER",
        "-in",
        "park-km.der",
        "-passout",
        "file:data/dev-signer-passphrase",
        "-out",
        "park-km.key.pem",
    ]);
    let r = revoke_own(env, "park-km.pem", "park-km.key.pem", "keyCompromise");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is not for signing"), "{}", r.stdout);
    assert_eq!(
        env.openssl_ok(&["pkey", "-inform", "DER", "-in", "park-km.der", "-pubout"]),
        env.openssl_ok(&["x509", "-in", "park-km.pem", "-noout", "-pubkey"])
    );
    // A replay answers the same pair, without the key: it is only in the archive now.
    let again = user_ok(
        env,
        &as_lee(&[
            "ra",
            "submit",
            "--idempotency-key",
            "park",
            "--profile",
            "official-sign",
            "--subject",
            &format!("CN=Park Jimin(002345678), OU=people, {MOIS}"),
            "--csr",
            "park.csr",
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "public official ID card",
            "--km-transport",
            "park-transport.csr",
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    assert_eq!(
        again["certificate"]["serial"],
        sign_serial.as_str(),
        "{again}"
    );
    // (The RA answers a replay from its own records: the pair as it stands.)
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(
        again["certificate"]["pair"]["serial"],
        km_serial.as_str(),
        "{again}"
    );
    // The official's key files, from the delivery.
    user_ok(
        env,
        &[
            "km",
            "open",
            "--envelope",
            "park-km.p7m",
            "--cert",
            "park-km.pem",
            "--transport-key",
            "park-transport.key.pem",
            "--transport-pass-file",
            "data/dev-signer-passphrase",
            "--npki-dir",
            "park-npki",
            "--out-pass-file",
            "data/dev-signer-passphrase",
        ],
    );
    let npki = key_of(&[
        "pkcs8",
        "-inform",
        "DER",
        "-in",
        "park-npki/kmPri.key",
        "-passin",
        "file:data/dev-signer-passphrase",
        "-provider",
        "legacy",
        "-provider",
        "default",
    ]);
    assert_eq!(npki, delivered);

    // Refusals, before anything is recorded: an EC transport key, a km pair for
    // another profile.
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-type",
            "p256",
            "--key-out",
            "ec-transport.key.pem",
            "--subject",
            "CN=transport",
            "--csr-out",
            "ec-transport.csr",
        ],
    );
    let r = run(as_lee(&[
        "ra",
        "submit",
        "--idempotency-key",
        "park-ec",
        "--profile",
        "official-sign",
        "--subject",
        &format!("CN=Park Jimin(002345678), OU=people, {MOIS}"),
        "--csr",
        "park.csr",
        "--km-transport",
        "ec-transport.csr",
    ]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("must be RSA"), "{}", r.stdout);
    let r = run(as_lee(&[
        "ra",
        "submit",
        "--idempotency-key",
        "park-inst",
        "--profile",
        "institution-sign",
        "--subject",
        &format!("CN=Park Jimin(002345678), OU=people, {MOIS}"),
        "--csr",
        "park.csr",
        "--km-transport",
        "park-transport.csr",
    ]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("pairs with an official-sign certificate"),
        "{}",
        r.stdout
    );
    // Neither refusal recorded a request.
    let listed = user_ok(env, &["ra", "requests"]);
    assert!(
        listed["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !["park-ec", "park-inst"]
                .contains(&r["idempotency_key"].as_str().unwrap_or(""))),
        "{listed}"
    );

    // The pair is renewed together: the signing certificate with a transport key
    // for a new km key; not without, and not from the km certificate.
    let r = run(as_lee(&[
        "ra",
        "renew",
        "--idempotency-key",
        "park-renew-0",
        "--serial",
        &sign_serial,
    ]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("has a km pair"), "{}", r.stdout);
    let r = run(as_lee(&[
        "ra",
        "renew",
        "--idempotency-key",
        "park-renew-km",
        "--serial",
        &km_serial,
    ]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("renewed with its pair"), "{}", r.stdout);
    // A new km key, made by the CA and sealed to a transport key the operator
    // hands in, is a new key: one operator without the identity seen again gets
    // a request that waits, and no key (issue 28, point 1).
    let waiting = ok_json(run(as_lee(&[
        "ra",
        "renew",
        "--idempotency-key",
        "park-renew-1",
        "--serial",
        &sign_serial,
        "--km-transport",
        "park-transport.csr",
    ])));
    assert_eq!(waiting["request"]["status"], "submitted", "{waiting}");
    assert_eq!(waiting["waiting_for"], json!(["identity"]), "{waiting}");
    assert!(waiting["certificate"].is_null(), "{waiting}");
    let renewal_id = waiting["request"]["id"].to_string();
    // Said in words too, with the commands that finish it (point 15).
    let text = env
        .command()
        .env_remove("GPKI_STORE")
        .env_remove("GPKI_KEY_PASS_FILE")
        .env("GPKI_RA_CONFIG", "data/ra-client.toml")
        .args(["ra", "show", &renewal_id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("waiting for an identity verification")
            && text.contains(&format!("gpki ra verify-identity {renewal_id}")),
        "{text}"
    );
    // Approval alone is refused while the identity is not recorded.
    let r = run(as_lee(&["ra", "approve", &renewal_id]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("requires an identity verification"),
        "{}",
        r.stdout
    );
    ok_json(run(as_lee(&[
        "ra",
        "verify-identity",
        &renewal_id,
        "--method",
        "face-to-face",
        "--document",
        "public official ID card",
    ])));
    let renewed = ok_json(run(as_lee(&[
        "ra",
        "approve",
        &renewal_id,
        "--out",
        "park-2.pem",
        "--km-out",
        "park-km-2.pem",
        "--km-envelope-out",
        "park-km-2.p7m",
    ])));
    assert_eq!(renewed["request"]["status"], "issued", "{renewed}");
    let new_km = renewed["certificate"]["km"]["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_km, km_serial, "{renewed}");
    verify("park-km-2.pem", "smimeencrypt");
    env.openssl_ok(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "park-km-2.p7m",
        "-inkey",
        "park-transport.plain",
        "-out",
        "park-km-2.der",
    ]);

    // The first km key is lost; two officers (officials the RA enrolled, made
    // officers of dev up's KRA) approve its recovery.
    for (o, name) in [
        ("officer-kim", "Kim Officer(000000011)"),
        ("officer-choi", "Choi Officer(000000012)"),
    ] {
        official(o, name, false);
        user_ok(
            env,
            &[
                "km",
                "officer",
                "add",
                "--kra",
                "dev-kra",
                "--name",
                o,
                "--cert",
                &format!("{o}.pem"),
            ],
        );
    }
    std::fs::remove_dir_all(env.path("park-npki")).unwrap();
    user_ok(
        env,
        &[
            "km",
            "request",
            "--ca",
            "mois",
            "--serial",
            &km_serial,
            "--reason",
            "laptop lost",
            "--statement-out",
            "park-recovery.json",
        ],
    );
    for o in ["officer-kim", "officer-choi"] {
        user_ok(
            env,
            &[
                "km",
                "approve",
                "--statement",
                "park-recovery.json",
                "--cert",
                &format!("{o}.pem"),
                "--key",
                &format!("{o}.key.pem"),
                "--pass-file",
                "data/dev-signer-passphrase",
                "--out",
                &format!("{o}-approval.json"),
            ],
        );
    }
    let released = user_ok(
        env,
        &[
            "km",
            "recover",
            "--ca",
            "mois",
            "--serial",
            &km_serial,
            "--approval",
            "officer-kim-approval.json",
            "--approval",
            "officer-choi-approval.json",
            "--kra-key",
            "data/kra/kra.key.pem",
            "--kra-pass-file",
            "data/dev-signer-passphrase",
            "--pkcs12",
            "park-recovered.p12",
            "--out-pass-file",
            "data/dev-signer-passphrase",
        ],
    );
    assert_eq!(released["recovery"]["status"], "released", "{released}");
    let recovered = key_of(&[
        "pkcs12",
        "-in",
        "park-recovered.p12",
        "-passin",
        "file:data/dev-signer-passphrase",
        "-nodes",
        "-nocerts",
    ]);
    assert_eq!(
        recovered, delivered,
        "recovery must give back the key that was archived"
    );

    // Revoking the signing certificate offers its pair.
    let revoked = ok_json(run(as_lee(&[
        "ra",
        "revoke",
        "--idempotency-key",
        "park-revoke",
        "--serial",
        &sign_serial,
        "--reason",
        "affiliationChanged",
    ])));
    assert_eq!(revoked["certificate"]["status"], "revoked", "{revoked}");
    assert_eq!(
        revoked["certificate"]["pair"]["serial"],
        km_serial.as_str(),
        "{revoked}"
    );
    assert_eq!(
        revoked["certificate"]["pair"]["status"], "issued",
        "{revoked}"
    );

    // official-km under dual control holds for dual enrolments, though the
    // signing profile is not: one operator's submission waits, the submitter
    // cannot approve it, another operator can.
    user_ok(
        env,
        &[
            "ra",
            "update",
            "--name",
            "dev-mois",
            "--dual-control",
            "official-km",
        ],
    );
    let jang = official("jang", "Jang Mina(002345680)", true);
    assert_eq!(jang["request"]["status"], "submitted", "{jang}");
    assert_eq!(jang["waiting_for"], json!(["second-operator"]), "{jang}");
    assert!(jang["certificate"].is_null(), "{jang}");
    let jang_id = jang["request"]["id"].to_string();
    let r = run(as_lee(&["ra", "approve", &jang_id]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("under dual control"), "{}", r.stdout);
    // An operator certificate renewed with a new key is the RA's membership: it
    // waits for a second administrator, and an operator who is not one cannot
    // approve it, verify it or reject it.
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-out",
            "lee-2.key.pem",
            "--subject",
            "CN=ignored",
            "--csr-out",
            "lee-2.csr",
        ],
    );
    let lee_serial = env
        .openssl_ok(&["x509", "-in", "lee.pem", "-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    let rekey = user_ok(
        env,
        &[
            "ra",
            "renew",
            "--idempotency-key",
            "lee-rekey",
            "--serial",
            &lee_serial,
            "--csr",
            "lee-2.csr",
        ],
    );
    assert_eq!(rekey["request"]["status"], "submitted", "{rekey}");
    assert_eq!(rekey["waiting_for"], json!(["second-operator"]), "{rekey}");
    let rekey_id = rekey["request"]["id"].to_string();
    for args in [
        vec!["ra", "approve", &rekey_id],
        vec![
            "ra",
            "verify-identity",
            &rekey_id,
            "--method",
            "face-to-face",
            "--document",
            "x",
        ],
        vec!["ra", "reject", &rekey_id, "--reason", "x"],
    ] {
        let r = run(as_lee(&args));
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("is not an administrator"),
            "{args:?}: {}",
            r.stdout
        );
    }
    user_ok(env, &["ra", "reject", &rekey_id, "--reason", "test over"]);
    let approved = user_ok(env, &["ra", "approve", &jang_id, "--km-out", "jang-km.pem"]);
    assert_eq!(approved["request"]["status"], "issued", "{approved}");
    assert_eq!(
        approved["certificate"]["km"]["certificate"]["profile"], "official-km",
        "{approved}"
    );
    user_ok(
        env,
        &["ra", "update", "--name", "dev-mois", "--no-dual-control"],
    );

    // A KRA out of force takes no key: the enrolment is refused before the signing
    // certificate is made.
    let kra_serial = env
        .openssl_ok(&["x509", "-in", "data/certs/kra.crt.pem", "-noout", "-serial"])
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
            &kra_serial,
            "--reason",
            "cessationOfOperation",
        ],
    );
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-out",
            "yoon.key.pem",
            "--subject",
            &format!("CN=Yoon Seo(002345679), OU=people, {MOIS}"),
            "--csr-out",
            "yoon.csr",
        ],
    );
    let r = run(as_lee(&[
        "ra",
        "submit",
        "--idempotency-key",
        "yoon",
        "--profile",
        "official-sign",
        "--subject",
        &format!("CN=Yoon Seo(002345679), OU=people, {MOIS}"),
        "--csr",
        "yoon.csr",
        "--identity-method",
        "face-to-face",
        "--identity-document",
        "ID card 9",
        "--km-transport",
        "park-transport.csr",
    ]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("the KRA certificate is not in force"),
        "{}",
        r.stdout
    );
    let listed = user_ok(
        env,
        &["cert", "list", "--ca", "mois", "--subject", "Yoon Seo"],
    );
    assert_eq!(
        listed
            .as_array()
            .map(|a| a.len())
            .unwrap_or_else(|| listed["certificates"].as_array().unwrap().len()),
        0,
        "{listed}"
    );
}
