//! The services under conditions: a request held longer than the connection
//! watchdog, and an operator certificate expired on the RA's clock.

use std::process::{Command, Stdio};

use serde_json::Value;

use super::*;

/// A connection whose request the service is still working on (here: the RA held
/// before it forwards, longer than the connection watchdog's limit) is not a stalled
/// client: the answer arrives. The watchdog once dropped such connections, which
/// lost requests under load.
#[test]
fn a_request_still_being_handled_is_not_a_stalled_connection() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(mut d) = Deployment::start(Backend::Sqlite) else {
        return;
    };
    // Watchdog limit 0.6 s (head 0.3 s + body 0.3 s); the RA holds 1.5 s.
    let mut toml = std::fs::read_to_string(d.env.path("ra.toml")).unwrap();
    toml += "\n[http]\nheader_timeout_ms = 300\nbody_timeout_ms = 300\n";
    std::fs::write(d.env.path("ra-slow.toml"), toml).unwrap();
    let pause = d.env.path("pause");
    std::fs::create_dir_all(&pause).unwrap();
    let port = d.ra.port;
    d.ra.process.kill();
    d.ra = spawn_with(
        &d.env,
        "gpki-ra",
        "ra-slow.toml",
        port,
        &[(
            "GPKI_FAILPOINT",
            &format!("ra-before-forward:{}", pause.display()),
        )],
    );
    let (subject, csr) = official(&d, "slow", B);
    let child = d
        .ra_command(
            "b1",
            &[
                "ra",
                "submit",
                "--idempotency-key",
                "slow-1",
                "--profile",
                "official-sign",
                "--subject",
                &subject,
                "--csr",
                &csr,
                "--identity-method",
                "face-to-face",
                "--identity-document",
                "card 1",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !pause.join("ra-before-forward.paused").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RA never reached the pause"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(pause.join("ra-before-forward.go"), b"").unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["request"]["status"], "issued", "{v}");
}

/// An expired operator certificate is refused (the RA's clock moved two days past
/// the end of a one-day certificate with libfaketime), while a valid one on the
/// same service is served.
#[test]
fn expired_operator_certificate_is_refused() {
    if !require("curl") || !require("openssl") || !require("faketime") {
        return;
    }
    let Some(d) = Deployment::start(Backend::Sqlite) else {
        return;
    };
    let env = &d.env;
    let subject = format!("CN=Operator a9(000000009), OU=RA, {A}");
    let v = env.json(&[
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "ra-operator",
        "--subject",
        &subject,
        "--generate-key",
        "--key-out",
        "a9.key",
        "--out",
        "a9.pem",
        "--validity-days",
        "1",
    ]);
    let serial = v["serial"].as_str().unwrap().to_string();
    let chain = std::fs::read_to_string(env.path("a9.pem")).unwrap()
        + &std::fs::read_to_string(env.path("mois.pem")).unwrap();
    std::fs::write(env.path("a9.chain.pem"), chain).unwrap();
    env.ok(&[
        "ra", "operator", "add", "--ra", "A", "--name", "a9", "--ca", "mois", "--serial", &serial,
    ]);
    d.ra_ok("a9", &["ra", "whoami"]);
    let port = free_port();
    let mut later = Service {
        process: Process::start(
            "gpki-ra under faketime",
            Command::new("faketime")
                .args(["-f", "+2d"])
                .arg(Process::binary("gpki-ra"))
                .args(["serve", "--config", "ra.toml", "--listen"])
                .arg(format!("127.0.0.1:{port}"))
                .current_dir(env.path("")),
            Stdio::null(),
        ),
        port,
    };
    wait_healthy(env, &mut later, "ra");
    let whoami = |op: &str| {
        env.command()
            .args(["ra", "whoami", "--ra", &format!("https://127.0.0.1:{port}")])
            .args([
                "--server-name",
                "ra.gpki.go.kr",
                "--cert",
                &format!("{op}.chain.pem"),
            ])
            .args([
                "--key",
                &format!("{op}.key"),
                "--operator-pass-file",
                "outpass",
            ])
            .args(["--ca-file", "root.pem", "--output", "json"])
            .output()
            .unwrap()
    };
    let ok = whoami("a1");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let refused = whoami("a9");
    assert_eq!(refused.status.code(), Some(1));
    let text = (String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr))
        .to_lowercase();
    // rustls refuses it in the handshake (CertificateExpired); the store check
    // behind it would say "outside its validity".
    assert!(
        text.contains("certificateexpired") || text.contains("outside its validity"),
        "{text}"
    );
}
