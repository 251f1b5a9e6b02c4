//! The responder's certificate renewed on the CA side and picked up while it runs;
//! exports, and certificates or CAs it must refuse.

use super::*;

// Issue 9.5: the responder never opens a CA key. The CA side renews its certificate
// (`gpki ocsp renew-signers`); the running responder picks up the new files with
// no restart and no failed answer in between.
#[test]
fn responder_picks_up_a_renewed_certificate_and_refuses_a_foreign_one() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("openssl") {
        return;
    }
    setup(&env);
    let cert = env.path("data/ocsp/mois.crt.pem").display().to_string();
    let before = env.serial_of(&cert);
    let r = Responder::start(&env, "renew", &env.store, &["mois"], "");
    let url = format!("{}/ocsp", r.url);
    assert_eq!(r.health()["cas"][0]["responder_serial"], before.as_str());
    // Relying parties keep asking while the certificate changes under them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asker = {
        let (stop, dir, url) = (stop.clone(), env.path(""), url.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for extra in [&["-no_nonce"][..], &[]] {
                    let out = Command::new("openssl")
                        .current_dir(&dir)
                        .args([
                            "ocsp", "-issuer", "mois.pem", "-CAfile", "root.pem", "-url", &url,
                            "-cert", "a.pem",
                        ])
                        .args(extra)
                        .output()
                        .unwrap();
                    answers.push(
                        String::from_utf8_lossy(&out.stdout).to_string()
                            + &String::from_utf8_lossy(&out.stderr),
                    );
                }
            }
            answers
        })
    };
    // Not due (the certificate has more than 10 days left): nothing happens.
    let kept = env.json(&[
        "ocsp",
        "renew-signers",
        "--config",
        r.config.to_str().unwrap(),
    ]);
    assert_eq!(kept[0]["renewed"], false, "{kept}");
    assert_eq!(env.serial_of(&cert), before);
    // Due when 365 days are asked for.
    let renewed = env.json(&[
        "ocsp",
        "renew-signers",
        "--config",
        r.config.to_str().unwrap(),
        "--before-days",
        "365",
    ]);
    assert_eq!(renewed[0]["renewed"], true, "{renewed}");
    let after = env.serial_of(&cert);
    assert_ne!(before, after, "the responder certificate was not renewed");
    within(
        Duration::from_secs(10),
        "the responder loads the new certificate",
        || r.health()["cas"][0]["responder_serial"] == after.as_str(),
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = asker.join().unwrap();
    assert!(answers.len() >= 2, "{answers:?}");
    for a in &answers {
        assert!(
            a.contains("Response verify OK") && a.contains("a.pem: good"),
            "an answer was missed during the swap: {a}"
        );
    }
    let out = ask(&env, &url, &["a.pem"], &["-no_nonce", "-resp_text"]);
    assert!(out.contains("Response verify OK"), "{out}");
    let embedded = after.to_uppercase();
    let pretty: String = embedded
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_lowercase())
        .collect::<Vec<_>>()
        .join(":");
    assert!(
        out.contains(&pretty),
        "the response does not carry the new certificate {pretty}:\n{out}"
    );
    step_a_ca_key_renewal_config_is_refused(&env, &r);
    step_export_every_presigned_response(&env, &r);
    drop(r);
    step_a_foreign_certificate_and_an_unknown_ca(&env);
}

/// A configuration that asks the responder to open a CA key is refused by name.
fn step_a_ca_key_renewal_config_is_refused(env: &Env, r: &Responder) {
    // A configuration that asks the responder to open a CA key to renew (the old
    // form of [renewal]) is refused by name: [renewal] now names the CA service.
    let old_style = env.path("old-style.toml");
    std::fs::write(
        &old_style,
        std::fs::read_to_string(&r.config).unwrap()
            + &format!(
                "[renewal]\nca_key_pass_file = \"{}\"\n",
                env.path("pass").display()
            ),
    )
    .unwrap();
    let out = Command::new(Responder::binary())
        .args(["check-config", "--config"])
        .arg(&old_style)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field") && err.contains("ca_key_pass_file"),
        "{err}"
    );
}

/// `export`: every pre-signed response OpenSSL accepts, one per certificate mois
/// has issued.
fn step_export_every_presigned_response(env: &Env, r: &Responder) {
    // export: every pre-signed response, base64 per line, each one OpenSSL accepts.
    let out = Command::new(Responder::binary())
        .args(["export", "--config"])
        .arg(&r.config)
        .arg("--out")
        .arg(env.path("export.b64"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = std::fs::read_to_string(env.path("export.b64"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // One per certificate mois has issued, as the store lists them.
    let issued = env.json(&["cert", "list", "--ca", "mois"]);
    assert_eq!(lines.len(), issued.as_array().unwrap().len(), "{issued}");
    std::fs::write(env.path("one.b64"), format!("{}\n", lines[0])).unwrap();
    env.openssl_ok(&["base64", "-d", "-A", "-in", "one.b64", "-out", "one.der"]);
    let text = env.openssl_ok(&[
        "ocsp",
        "-respin",
        "one.der",
        "-resp_text",
        "-CAfile",
        "root.pem",
        "-verify_other",
        "mois.pem",
    ]);
    assert!(
        text.contains("Response verify OK") && text.contains("Cert Status: good"),
        "{text}"
    );
    let listed = env.json(&["cert", "list", "--ca", "mois", "--profile", "ocsp-signer"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

/// A responder certificate from another CA, and an unknown CA: refused by name.
fn step_a_foreign_certificate_and_an_unknown_ca(env: &Env) {
    // A responder certificate from another CA is refused, by name.
    env.ok(&[
        "ocsp",
        "issue-signer",
        "--ca",
        "root",
        "--cert-out",
        "data/ocsp/root-as-mois.crt.pem",
        "--key-out",
        "data/ocsp/root-as-mois.key.pem",
    ]);
    let config = env.path("bad.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"{}\"\nlisten = \"127.0.0.1:0\"\nkey_pass_file = \"{}\"\n[[ca]]\nname = \"mois\"\ncert = \"data/ocsp/root-as-mois.crt.pem\"\nkey = \"data/ocsp/root-as-mois.key.pem\"\n",
            env.store,
            env.path("pass").display()
        ),
    )
    .unwrap();
    let out = Command::new(Responder::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not signed by CA `mois`"), "{err}");
    // An unknown CA, by name.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("name = \"mois\"", "name = \"nope\""),
    )
    .unwrap();
    let out = Command::new(Responder::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown CA `nope`"));
}
