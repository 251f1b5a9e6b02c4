//! Issue 10's "done when": a new user runs `gpki dev up`, enrols an operator, and
//! issues, renews and revokes an official's certificate through the RA, with the
//! commands the README's walkthrough gives. OpenSSL judges the certificates and the
//! revocation as the dev OCSP responder answers it.

mod alone;
mod credentials;
mod dual;
mod issue;
mod revoke;

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

/// Lee's login (certificate and key) for `gpki ra …`.
const AS_LEE: [&str; 4] = ["--cert", "lee.pem", "--key", "lee.key.pem"];

/// `args` followed by Lee's login.
fn as_lee(args: &[&str]) -> Vec<String> {
    args.iter().chain(&AS_LEE).map(|s| s.to_string()).collect()
}

/// gpki as a user with owned `args`.
fn run(env: &Env, args: Vec<String>) -> Run {
    user(env, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Hong's subject at MOIS.
fn hong_subject() -> String {
    format!("CN=Hong Gildong(001234567), OU=people, {MOIS}")
}

/// `openssl verify -x509_strict -purpose PURPOSE` of `cert` against dev up's root
/// and mois; its output.
fn openssl_verify(env: &Env, purpose: &str, cert: &str) -> String {
    env.openssl_ok(&[
        "verify",
        "-x509_strict",
        "-purpose",
        purpose,
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
        "-untrusted",
        "data/certs/mois.crt.pem",
        cert,
    ])
}

#[test]
fn dev_up_then_enrol_issue_renew_revoke_through_the_ra() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("curl") || !require("openssl") {
        return;
    }
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let [ocsp, tsa, ca, ra] = ports.map(|p| format!("127.0.0.1:{p}"));
    let api = format!("127.0.0.1:{}", free_port());
    let mut dev = dev_up(&env, [&ocsp, &tsa, &ca, &ra, &api]);
    dev.wait_http_ok(&format!("http://{ocsp}/healthz"), 180);

    let enrolled = issue::step_the_administrator_enrols_lee(&env);
    let serial = issue::step_lee_issues_hongs_certificate(&env);
    issue::step_an_employee_number_belongs_to_one_official(&env, &serial, &enrolled);
    issue::step_another_institution_is_outside_the_scope(&env);
    revoke::step_the_administrator_renews_and_revokes(&env, ports[0], &serial);
    revoke::step_the_holder_revokes_their_own(&env, ports[0], ports[3]);
    revoke::step_the_mobile_id_goes_with_the_last_certificate(&env);
    revoke::step_every_request_is_listed(&env);
    dual::dual_enrolment_through_the_ra(&env);
    // Each service also runs alone from its binary and the config dev up wrote.
    drop(dev);
    alone::step_each_service_runs_alone(&env);
}
