//! Issue 12's standard API through `gpki dev up`: certificate login over HTTP
//! (challenges signed by `openssl dgst`), signed-document verification of what
//! `openssl cms -sign` makes, and `gpki cms` whose messages `openssl cms` and
//! `openssl ts` judge. Every refusal names its reason; a status that cannot be
//! established refuses; the CRL answers when OCSP cannot.

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{json, Value};

use crate::support::{dev_up, eventually, free_port, require, Backend, Env, Process, Run};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// POSTs `body` (JSON) to `url`; the HTTP status and the JSON answer.
fn post(env: &Env, url: &str, body: &Value) -> (u16, Value) {
    let file = env.path(&format!("body-{}.json", free_port()));
    std::fs::write(&file, body.to_string()).unwrap();
    post_raw(url, &file)
}

fn post_raw(url: &str, file: &Path) -> (u16, Value) {
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-X", "POST", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (json, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(json).unwrap_or_else(|_| json!({ "raw": json })),
    )
}

/// gpki as a user after dev up (the data directory's store and passphrases).
fn user(env: &Env, args: &[&str]) -> Run {
    let o = env
        .command()
        .env_remove("GPKI_STORE")
        .env_remove("GPKI_URL_BASE")
        .env("GPKI_KEY_PASS_FILE", "data/dev-passphrase")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn user_ok(env: &Env, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    let r = user(env, &a);
    assert_eq!(r.code, 0, "gpki {args:?}: {}{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.stdout))
}

/// Logs in at `api` with `cert` (PEM path) and `key` (plain PEM path), the
/// signature made by `openssl dgst` over the message the challenge came with.
/// `tamper` may change the challenge or the message before use.
fn login(
    env: &Env,
    api: &str,
    cert: &str,
    key: &str,
    tamper: impl Fn(&mut String, &mut String),
) -> (u16, Value) {
    let (code, ch) = post(env, &format!("{api}/v1/login/challenge"), &json!({}));
    assert_eq!(code, 200, "{ch}");
    let mut challenge = ch["challenge"].as_str().unwrap().to_string();
    let mut message = ch["message"].as_str().unwrap().to_string();
    assert_eq!(
        message,
        format!(
            "gpki login v1\naudience: {}\nchallenge: {challenge}\n",
            ch["audience"].as_str().unwrap()
        )
    );
    tamper(&mut challenge, &mut message);
    let n = free_port();
    std::fs::write(env.path(&format!("msg-{n}")), &message).unwrap();
    env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-sign",
        key,
        "-out",
        &format!("sig-{n}"),
        &format!("msg-{n}"),
    ]);
    let sig = std::fs::read(env.path(&format!("sig-{n}"))).unwrap();
    post(
        env,
        &format!("{api}/v1/login"),
        &json!({
            "challenge": challenge,
            "certificate": std::fs::read_to_string(env.path(cert)).unwrap(),
            "signature": b64(&sig),
        }),
    )
}

fn refused(reply: &(u16, Value), code: u16, reason: &str) {
    assert_eq!(reply.0, code, "{}", reply.1);
    assert_eq!(reply.1["result"], "refused", "{}", reply.1);
    assert_eq!(reply.1["reason"], reason, "{}", reply.1);
    assert!(
        reply.1["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{}",
        reply.1
    );
}

/// Starts `gpki-api serve` with the dev anchors and `status` as its `[status]`.
fn api_process(env: &Env, name: &str, status: &str) -> (Process, String) {
    let port = free_port();
    let certs = env.path("data/certs");
    let config = env.path(&format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\naudience = \"https://{name}.example.go.kr/\"\nanchors = \"{}\"\nintermediates = \"{}\"\n[status]\n{status}\n",
            certs.join("gpki-root.crt.pem").display(),
            certs.join("mois.crt.pem").display()
        ),
    )
    .unwrap();
    let mut api = Process::start(
        "gpki-api",
        Command::new(Process::binary("gpki-api"))
            .args(["serve", "--config"])
            .arg(&config),
        Stdio::piped(),
    );
    let url = format!("http://127.0.0.1:{port}");
    api.wait_http_ok(&format!("{url}/healthz"), 60);
    (api, url)
}

/// The DER of the first id-aa-timeStampToken of the first signer of a CMS
/// SignedData, and that signer's signature value, read with pyasn1's RFC 5652
/// module (not gpki).
fn token_of(env: &Env, cms: &str) -> (Vec<u8>, Vec<u8>) {
    let script = r#"
import sys
from pyasn1.codec.der import decoder, encoder
from pyasn1_alt_modules import rfc5652
ci, _ = decoder.decode(open(sys.argv[1], 'rb').read(), asn1Spec=rfc5652.ContentInfo())
sd, _ = decoder.decode(ci['content'], asn1Spec=rfc5652.SignedData())
si = sd['signerInfos'][0]
for a in si['unsignedAttrs']:
    if str(a['attrType']) == '1.2.840.113549.1.9.16.2.14':
        open(sys.argv[2], 'wb').write(encoder.encode(a['attrValues'][0]))
open(sys.argv[3], 'wb').write(bytes(si['signature']))
"#;
    let o = Command::new("python3")
        .current_dir(env.path(""))
        .args(["-c", script, cms, "token.der", "signature.bin"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        std::fs::read(env.path("token.der")).unwrap(),
        std::fs::read(env.path("signature.bin")).unwrap(),
    )
}

#[test]
fn standard_api_login_verify_sign_encrypt() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("curl") || !require("openssl") || !require("python3") {
        return;
    }
    let [ocsp, tsa, ca, ra, api] = [(); 5].map(|_| format!("127.0.0.1:{}", free_port()));
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
            &api,
        ],
    );
    dev.wait_http_ok(&format!("http://{ocsp}/healthz"), 180);
    dev.wait_http_ok(&format!("http://{api}/healthz"), 60);
    let api = format!("http://{api}");
    let pass = "file:data/dev-signer-passphrase";
    for (name, out) in [
        ("official-sign", "sign.key"),
        ("official-km", "km.key"),
        ("institution-sign", "inst.key"),
    ] {
        env.openssl_ok(&[
            "pkey",
            "-in",
            &format!("data/certs/{name}.key.pem"),
            "-passin",
            pass,
            "-out",
            out,
        ]);
    }
    let sign_cert = "data/certs/official-sign.crt.pem";

    // 1. Login: accepted once, with the path and each certificate's status.
    let ok = login(&env, &api, sign_cert, "sign.key", |_, _| {});
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
    let (_, genuine) = post(&env, &format!("{api}/v1/login/challenge"), &json!({}));
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
        let r = user(&env, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("nothing signed"), "{name}: {}", r.stderr);
        assert!(!env.path(&format!("evil-{name}.out")).exists(), "{name}");
    }
    // Another system's challenge is not signed for this one either.
    std::fs::write(env.path("ch.json"), genuine.to_string()).unwrap();
    let mut args = vec!["login", "sign", "--challenge-file", "ch.json", "--audience"];
    args.push("https://other.example.go.kr/");
    args.extend(signer);
    let r = user(&env, &args);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("is for audience"), "{}", r.stderr);
    // The genuine challenge: signed, and the API logs the official in.
    let mut args = vec!["login", "sign", "--challenge-file", "ch.json", "--audience"];
    args.push(&audience);
    args.extend(["--out", "login.json"]);
    args.extend(signer);
    let r = user(&env, &args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let body: Value =
        serde_json::from_slice(&std::fs::read(env.path("login.json")).unwrap()).unwrap();
    let (code, v) = post(&env, &format!("{api}/v1/login"), &body);
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
    let still = login(&env, &api, sign_cert, "sign.key", |_, _| {});
    assert_eq!(still.0, 200, "the official is not revoked: {}", still.1);

    // 2. Refusals, each by name.
    let (code, ch) = post(&env, &format!("{api}/v1/login/challenge"), &json!({}));
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
    assert_eq!(post(&env, &format!("{api}/v1/login"), &body).0, 200);
    refused(
        &post(&env, &format!("{api}/v1/login"), &body),
        401,
        "challenge-reused",
    );
    refused(
        &login(&env, &api, sign_cert, "sign.key", |_, m| {
            *m = m.replace("gpki login v1", "gpki login v2")
        }),
        401,
        "bad-signature",
    );
    refused(
        &login(&env, &api, sign_cert, "sign.key", |c, m| {
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
            &env,
            &api,
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
        &login(&env, &api, "self.pem", "self.key", |_, _| {}),
        401,
        "untrusted",
    );
    std::fs::write(env.path("bad.json"), "{\"challenge\": 1").unwrap();
    let bad = post_raw(&format!("{api}/v1/login"), &env.path("bad.json"));
    refused(&bad, 400, "malformed");

    // 3. A certificate revoked before the API first asks about it is refused.
    let fresh = user_ok(
        &env,
        &[
            "cert", "issue", "--ca", "mois", "--profile", "official-sign", "--subject",
            "CN=Kim Cheolsu(001234568), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",
            "--generate-key", "--key-out", "kim.key.pem", "--out", "kim.pem",
        ],
    );
    let kim_serial = fresh["serial"].as_str().unwrap().to_string();
    env.openssl_ok(&[
        "pkey",
        "-in",
        "kim.key.pem",
        "-passin",
        "file:outpass",
        "-out",
        "kim.key",
    ]);
    user_ok(
        &env,
        &[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &kim_serial,
            "--reason",
            "keyCompromise",
        ],
    );
    eventually("the dev responder answers revoked", 30, || {
        let r = user(
            &env,
            &[
                "ocsp",
                "query",
                "--cert",
                "kim.pem",
                "--issuer",
                "data/certs/mois.crt.pem",
                "--output",
                "json",
            ],
        );
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(json!({}));
        (v["status"] == "revoked")
            .then_some(())
            .ok_or(r.stdout + &r.stderr)
    });
    let revoked = login(&env, &api, "kim.pem", "kim.key", |_, _| {});
    refused(&revoked, 401, "revoked");
    assert!(
        revoked.1["detail"]
            .as_str()
            .unwrap()
            .contains("keyCompromise"),
        "{}",
        revoked.1
    );

    // 3b. A certificate made with the CA's key outside the CA's records (openssl
    //     x509 -req): its responder does not know it, and unknown is not good; the
    //     CRL, where its absence would read as good, is not asked (issue 28,
    //     point 6).
    env.openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.csr",
        "-subj",
        "/C=KR/O=Government of Korea/OU=Ministry of the Interior and Safety/OU=people/CN=Rogue(009999999)",
    ]);
    // Signed with mois's key by OpenSSL, outside gpki: extensions as given.
    let forge = |name: &str, serial: &str, ext: String| {
        std::fs::write(env.path(&format!("{name}.ext")), ext).unwrap();
        env.openssl_ok(&[
            "x509",
            "-req",
            "-in",
            "rogue.csr",
            "-CA",
            "data/certs/mois.crt.pem",
            "-CAkey",
            "data/keys/mois.key.pem",
            "-passin",
            "file:data/dev-passphrase",
            "-set_serial",
            serial,
            "-days",
            "30",
            "-sha256",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    };
    forge(
        "rogue",
        "0x5eed0c0ffee15bad",
        format!(
            "keyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n\
             authorityInfoAccess=OCSP;URI:http://{ocsp}/ocsp\ncrlDistributionPoints=URI:http://{ocsp}/crl/mois.crl\n"
        ),
    );
    let rogue = login(&env, &api, "rogue.pem", "rogue.key", |_, _| {});
    refused(&rogue, 503, "status-unknown");
    assert!(
        rogue.1["detail"].as_str().unwrap().contains("(unknown)"),
        "{}",
        rogue.1
    );
    // Nor does one whose AIA names a responder that does not answer (or none):
    // the certificate's own word is not a reason to ask the CRL, which cannot
    // list it. (A relying party that configures ocsp_url falls back on its
    // outage: step 4.)
    for (name, aia) in [
        (
            "rogue-dead",
            "authorityInfoAccess=OCSP;URI:http://127.0.0.1:1/ocsp\n",
        ),
        ("rogue-none", ""),
    ] {
        forge(
            name,
            if name == "rogue-dead" { "0x5eed0c0ffee15bae" } else { "0x5eed0c0ffee15baf" },
            format!(
                "keyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n\
                 {aia}crlDistributionPoints=URI:http://{ocsp}/crl/mois.crl\n"
            ),
        );
        let r = login(&env, &api, &format!("{name}.pem"), "rogue.key", |_, _| {});
        refused(&r, 503, "status-unknown");
        assert!(
            r.1["detail"].as_str().unwrap().contains("CRL: not asked"),
            "{name}: {}",
            r.1
        );
    }
    // Nor one that calls itself a CA to be judged as one (no responder, the CRL):
    // a CA certificate logs no one in.
    forge(
        "rogue-ca",
        "0x5eed0c0ffee15bb0",
        format!(
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n\
             authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n\
             crlDistributionPoints=URI:http://{ocsp}/crl/mois.crl\n"
        ),
    );
    let r = login(&env, &api, "rogue-ca.pem", "rogue.key", |_, _| {});
    refused(&r, 401, "wrong-purpose");
    assert!(
        r.1["detail"]
            .as_str()
            .unwrap()
            .contains("is a CA certificate"),
        "{}",
        r.1
    );

    // 3c. A revocation reaches a running API within its max_cache_secs, though
    //     the responder's answer runs for a day (issue 28, point 9).
    let lee = user_ok(
        &env,
        &[
            "cert", "issue", "--ca", "mois", "--profile", "official-sign", "--subject",
            "CN=Lee Minho(001234569), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",
            "--generate-key", "--key-out", "lee.key.pem", "--out", "lee.pem",
        ],
    );
    env.openssl_ok(&[
        "pkey",
        "-in",
        "lee.key.pem",
        "-passin",
        "file:outpass",
        "-out",
        "lee.key",
    ]);
    let (_short_api, short_url) = api_process(&env, "short-cache", "max_cache_secs = 2");
    for _ in 0..2 {
        let ok = login(&env, &short_url, "lee.pem", "lee.key", |_, _| {});
        assert_eq!(ok.0, 200, "{}", ok.1);
    }
    user_ok(
        &env,
        &[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            lee["serial"].as_str().unwrap(),
            "--reason",
            "affiliationChanged",
        ],
    );
    eventually("a running API refuses the revoked official", 30, || {
        let r = login(&env, &short_url, "lee.pem", "lee.key", |_, _| {});
        (r.0 == 401 && r.1["reason"] == "revoked")
            .then_some(())
            .ok_or(r.1.to_string())
    });

    // 4. OCSP unreachable: the CRL answers (after a CRL that lists the revocation);
    //    with no CRL either, the status is unknown and the login refused (503).
    user_ok(&env, &["crl", "generate", "--ca", "mois"]);
    let (_crl_api, crl_url) = api_process(
        &env,
        "crl-only",
        "ocsp_url = \"http://127.0.0.1:1/ocsp\"\ntimeout_ms = 2000",
    );
    let by_crl = login(&env, &crl_url, sign_cert, "sign.key", |_, _| {});
    assert_eq!(by_crl.0, 200, "{}", by_crl.1);
    assert_eq!(by_crl.1["status"][0]["source"], "crl", "{}", by_crl.1);
    assert!(
        by_crl.1["status"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/crl/mois.crl"),
        "{}",
        by_crl.1
    );
    refused(
        &login(&env, &crl_url, "kim.pem", "kim.key", |_, _| {}),
        401,
        "revoked",
    );
    let (_blind_api, blind_url) = api_process(
        &env,
        "blind",
        "ocsp_url = \"http://127.0.0.1:1/ocsp\"\ncrl = false\ntimeout_ms = 2000",
    );
    let unknown = login(&env, &blind_url, sign_cert, "sign.key", |_, _| {});
    refused(&unknown, 503, "status-unknown");

    // 5. /v1/verify judges what `openssl cms -sign` makes, attached and detached.
    std::fs::write(
        env.path("doc.txt"),
        "공문서: 2026년 예산 집행 계획\n".repeat(40),
    )
    .unwrap();
    env.openssl_ok(&[
        "cms",
        "-sign",
        "-binary",
        "-in",
        "doc.txt",
        "-signer",
        sign_cert,
        "-inkey",
        "sign.key",
        "-certfile",
        "data/certs/mois.crt.pem",
        "-outform",
        "DER",
        "-nodetach",
        "-out",
        "ossl.p7s",
    ]);
    let signed = std::fs::read(env.path("ossl.p7s")).unwrap();
    let (code, v) = post(
        &env,
        &format!("{api}/v1/verify"),
        &json!({ "signed_data": b64(&signed) }),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["result"], "valid");
    assert_eq!(v["signers"][0]["signer"]["serial"], serial.as_str(), "{v}");
    let digest = env.openssl_ok(&["dgst", "-sha256", "-r", "doc.txt"]);
    assert_eq!(v["content_sha256"], digest.split(' ').next().unwrap());
    // The content changed in place: the digest no longer matches.
    let at = signed
        .windows(6)
        .position(|w| w == "공문서".as_bytes().get(..6).unwrap())
        .unwrap();
    let mut changed = signed.clone();
    changed[at + 1] ^= 1;
    refused(
        &post(
            &env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": b64(&changed) }),
        ),
        422,
        "bad-signature",
    );
    env.openssl_ok(&[
        "cms",
        "-sign",
        "-binary",
        "-in",
        "doc.txt",
        "-signer",
        sign_cert,
        "-inkey",
        "sign.key",
        "-outform",
        "PEM",
        "-out",
        "detached.pem",
    ]);
    let detached = std::fs::read_to_string(env.path("detached.pem")).unwrap();
    let doc = std::fs::read(env.path("doc.txt")).unwrap();
    let (code, v) = post(
        &env,
        &format!("{api}/v1/verify"),
        &json!({ "signed_data": detached, "content": b64(&doc) }),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["attached"], false);
    refused(
        &post(
            &env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": detached, "content": b64(b"another document") }),
        ),
        422,
        "bad-signature",
    );
    refused(
        &post(
            &env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": detached }),
        ),
        400,
        "malformed",
    );
    // Without signed attributes a signature is over the text alone, as a login
    // signature is: refused.
    env.openssl_ok(&[
        "cms",
        "-sign",
        "-binary",
        "-noattr",
        "-in",
        "doc.txt",
        "-signer",
        sign_cert,
        "-inkey",
        "sign.key",
        "-outform",
        "DER",
        "-nodetach",
        "-out",
        "noattr.p7s",
    ]);
    refused(
        &post(
            &env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": b64(&std::fs::read(env.path("noattr.p7s")).unwrap()) }),
        ),
        400,
        "unsupported",
    );
    // A document signed by the revoked official is refused, by name.
    env.openssl_ok(&[
        "cms",
        "-sign",
        "-binary",
        "-in",
        "doc.txt",
        "-signer",
        "kim.pem",
        "-inkey",
        "kim.key",
        "-outform",
        "DER",
        "-nodetach",
        "-out",
        "kim.p7s",
    ]);
    refused(
        &post(
            &env,
            &format!("{api}/v1/verify"),
            &json!({ "signed_data": b64(&std::fs::read(env.path("kim.p7s")).unwrap()) }),
        ),
        422,
        "revoked",
    );
    // /v1/certificate: the km certificate is for encryption, not login.
    let km_pem = std::fs::read_to_string(env.path("data/certs/official-km.crt.pem")).unwrap();
    let (code, v) = post(
        &env,
        &format!("{api}/v1/certificate"),
        &json!({ "certificate": km_pem, "purpose": "encryption" }),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["result"], "good");
    refused(
        &post(
            &env,
            &format!("{api}/v1/certificate"),
            &json!({ "certificate": km_pem, "purpose": "login" }),
        ),
        422,
        "wrong-purpose",
    );

    // 6. gpki cms sign, timestamped by the dev TSA: OpenSSL verifies the signature
    //    (S/MIME signing purpose) and, with `openssl ts`, the token over it.
    let sign_args = [
        "--key",
        "data/certs/official-sign.key.pem",
        "--cert",
        sign_cert,
        "--chain",
        "data/certs/mois.crt.pem",
        "--pass-file",
        "data/dev-signer-passphrase",
    ];
    let tsa_url = format!("http://{tsa}/");
    let mut a = vec![
        "cms", "sign", "--in", "doc.txt", "--out", "gpki.p7s", "--tsa", &tsa_url,
    ];
    a.extend(sign_args);
    user_ok(&env, &a);
    env.openssl_ok(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "gpki.p7s",
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
        "-out",
        "gpki.out",
    ]);
    assert_eq!(std::fs::read(env.path("gpki.out")).unwrap(), doc);
    let (token, signature) = token_of(&env, "gpki.p7s");
    assert!(!token.is_empty(), "no timestamp token in the signature");
    std::fs::write(env.path("token.der"), &token).unwrap();
    let imprint = hex::encode(openssl::sha::sha256(&signature));
    std::fs::write(
        env.path("tsa-chain.pem"),
        std::fs::read_to_string(env.path("data/certs/mois.crt.pem")).unwrap(),
    )
    .unwrap();
    env.openssl_ok(&[
        "ts",
        "-verify",
        "-digest",
        &imprint,
        "-in",
        "token.der",
        "-token_in",
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
        "-untrusted",
        "tsa-chain.pem",
    ]);
    let v = user_ok(
        &env,
        &[
            "cms",
            "verify",
            "--in",
            "gpki.p7s",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--out",
            "gpki.out2",
        ],
    );
    assert_eq!(v["signers"][0]["signer"]["serial"], serial.as_str());
    assert!(v["signers"][0]["timestamp"]["gen_time"].is_string(), "{v}");
    assert_eq!(std::fs::read(env.path("gpki.out2")).unwrap(), doc);
    // A detached gpki signature, verified by OpenSSL with the document beside it,
    // and by gpki from the CRL alone.
    let mut a = vec![
        "cms",
        "sign",
        "--in",
        "doc.txt",
        "--out",
        "gpki-det.pem",
        "--detached",
        "--pem",
    ];
    a.extend(sign_args);
    user_ok(&env, &a);
    env.openssl_ok(&[
        "cms",
        "-verify",
        "-binary",
        "-in",
        "gpki-det.pem",
        "-inform",
        "PEM",
        "-content",
        "doc.txt",
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
        "-out",
        "/dev/null",
    ]);
    let v = user_ok(
        &env,
        &[
            "cms",
            "verify",
            "--in",
            "gpki-det.pem",
            "--content",
            "doc.txt",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--no-ocsp",
        ],
    );
    assert_eq!(
        v["signers"][0]["signer"]["status"][0]["source"], "crl",
        "{v}"
    );
    // gpki refuses a changed document and names why.
    std::fs::write(env.path("doc2.txt"), "another document").unwrap();
    let r = user(
        &env,
        &[
            "cms",
            "verify",
            "--in",
            "gpki-det.pem",
            "--content",
            "doc2.txt",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("the document was changed"),
        "{}",
        r.stderr
    );
    // And an OpenSSL signature, through the CLI.
    let v = user_ok(
        &env,
        &[
            "cms",
            "verify",
            "--in",
            "ossl.p7s",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
        ],
    );
    assert_eq!(v["signers"][0]["signer"]["serial"], serial.as_str());

    // 7. Encryption both ways with OpenSSL, to the official's km certificate.
    user_ok(
        &env,
        &[
            "cms",
            "encrypt",
            "--in",
            "doc.txt",
            "--out",
            "gpki.p7m",
            "--to",
            "data/certs/official-km.crt.pem",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--untrusted",
            "data/certs/mois.crt.pem",
        ],
    );
    env.openssl_ok(&[
        "cms",
        "-decrypt",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "gpki.p7m",
        "-recip",
        "data/certs/official-km.crt.pem",
        "-inkey",
        "km.key",
        "-out",
        "ossl.dec",
    ]);
    assert_eq!(std::fs::read(env.path("ossl.dec")).unwrap(), doc);
    env.openssl_ok(&[
        "cms",
        "-encrypt",
        "-binary",
        "-aes256",
        "-in",
        "doc.txt",
        "-outform",
        "DER",
        "-out",
        "ossl.p7m",
        "-recip",
        "data/certs/official-km.crt.pem",
        "-keyopt",
        "rsa_padding_mode:oaep",
    ]);
    user_ok(
        &env,
        &[
            "cms",
            "decrypt",
            "--in",
            "ossl.p7m",
            "--out",
            "gpki.dec",
            "--key",
            "data/certs/official-km.key.pem",
            "--cert",
            "data/certs/official-km.crt.pem",
            "--pass-file",
            "data/dev-signer-passphrase",
        ],
    );
    assert_eq!(std::fs::read(env.path("gpki.dec")).unwrap(), doc);
    // Encrypting to a signing certificate is refused before anything is written.
    let r = user(
        &env,
        &[
            "cms",
            "encrypt",
            "--in",
            "doc.txt",
            "--out",
            "wrong.p7m",
            "--to",
            sign_cert,
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--untrusted",
            "data/certs/mois.crt.pem",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("wrong-purpose"), "{}", r.stderr);
    assert!(!env.path("wrong.p7m").exists());

    // 8. What the service counted.
    let metrics = Command::new("curl")
        .args(["-s", &format!("{api}/metrics")])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.contains("gpki_api_answers_total{operation=\"login\",result=\"revoked\"} 1"),
        "{metrics}"
    );
    let cached: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gpki_api_status_total{source=\"cache\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(cached > 0, "no status answered from the cache: {metrics}");
}
