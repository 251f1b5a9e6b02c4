//! Issue 12's standard API through `gpki dev up`: certificate login over HTTP
//! (challenges signed by `openssl dgst`), signed-document verification of what
//! `openssl cms -sign` makes, and `gpki cms` whose messages `openssl cms` and
//! `openssl ts` judge. Every refusal names its reason; a status that cannot be
//! established refuses; the CRL answers when OCSP cannot.

mod documents;
mod encryption;
mod login;
mod status;

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

const SIGN_CERT: &str = "data/certs/official-sign.crt.pem";

/// The official's signing key, certificate and chain for `gpki cms sign`.
const SIGN_ARGS: [&str; 8] = [
    "--key",
    "data/certs/official-sign.key.pem",
    "--cert",
    SIGN_CERT,
    "--chain",
    "data/certs/mois.crt.pem",
    "--pass-file",
    "data/dev-signer-passphrase",
];

#[test]
fn standard_api_login_verify_sign_encrypt() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("curl") || !require("openssl") || !require("python3") {
        return;
    }
    let [ocsp, tsa, ca, ra, api] = [(); 5].map(|_| format!("127.0.0.1:{}", free_port()));
    let mut dev = dev_up(&env, [&ocsp, &tsa, &ca, &ra, &api]);
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

    let serial = login::step_login_is_accepted_once(&env, &api);
    login::step_a_signature_means_one_thing(&env, &api, &ra);
    login::step_refusals_by_name(&env, &api);
    status::step_revoked_before_first_asked(&env, &api);
    status::step_certificates_outside_the_cas_records(&env, &api, &ocsp);
    status::step_revocation_reaches_a_running_api(&env);
    status::step_ocsp_unreachable_the_crl_answers(&env);
    documents::step_verify_judges_openssl_cms(&env, &api, &serial);
    documents::step_verify_refuses_revoked_and_km(&env, &api);
    documents::step_gpki_cms_sign_timestamped(&env, &tsa, &serial);
    documents::step_detached_and_cli_verification(&env, &serial);
    encryption::step_encryption_both_ways(&env);
    encryption::step_metrics_count_the_answers(&api);
}
