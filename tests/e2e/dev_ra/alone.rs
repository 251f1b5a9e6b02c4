//! The last step of the dev RA scenario: each service runs alone from its binary
//! and the config dev up wrote.

use super::*;

/// Each service also runs alone from its binary and the config dev up wrote
/// (dev up stopped): an RSA signing certificate issued and revoked by its
/// holder; the audit chain verifies.
pub(super) fn step_each_service_runs_alone(env: &Env) {
    let hong = hong_subject();
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
        env,
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
        let r = user(env, &again);
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
        env,
        "hong-rsa.pem",
        "hong-rsa.key.pem",
        "privilegeWithdrawn",
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is an operator's"), "{}", r.stdout);
    let own = ok_json(revoke_own(
        env,
        "hong-rsa.pem",
        "hong-rsa.key.pem",
        "affiliationChanged",
    ));
    assert_eq!(own["request"]["status"], "revoked", "{own}");
    assert!(own["request"]["submitted_by"].is_null(), "{own}");

    let audit = user_ok(env, &["audit", "verify"]);
    assert!(audit["problems"].as_array().unwrap().is_empty(), "{audit}");
    assert!(audit["rows"].as_i64().unwrap() > 20, "{audit}");
}
