//! The responder and its store: an outage, two responders on one store, and the
//! cache race of a miss against a newer revocation.

use super::*;

#[test]
fn ocsp_survives_store_outage_and_scales_out_postgres() {
    let Some(env) = Env::new(Backend::Postgres) else {
        return;
    };
    if !require("openssl") || !require("curl") {
        return;
    }
    let (serial_a, serial_b) = setup(&env);
    let target = pg_host_port(&env.store);
    let proxy = CuttableProxy::start(target.clone());
    let proxied = env
        .store
        .replacen(&target, &format!("127.0.0.1:{}", proxy.port), 1);
    // Two responders on one store: one through the cuttable link, one direct.
    let ra = Responder::start(&env, "a", &proxied, &["mois"], "");
    let rb = Responder::start(&env, "b", &env.store, &["mois"], "");
    let (ua, ub) = (format!("{}/ocsp", ra.url), format!("{}/ocsp", rb.url));
    for u in [&ua, &ub] {
        assert!(ask(&env, u, &["a.pem", "b.pem"], &[]).contains("b.pem: good"));
    }
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        &serial_a,
        "--reason",
        "superseded",
    ]);
    for u in [&ua, &ub] {
        within(
            Duration::from_secs(5),
            "revocation on both responders",
            || ask(&env, u, &["a.pem"], &["-no_nonce"]).contains("a.pem: revoked"),
        );
    }

    // The store goes away for responder A.
    proxy.cut();
    within(Duration::from_secs(10), "healthz degraded", || {
        ra.health()["status"] == "degraded"
    });
    // It keeps answering from memory: pre-signed, and signed live with a nonce.
    let out = ask(&env, &ua, &["a.pem"], &["-no_nonce"]);
    assert!(
        out.contains("a.pem: revoked") && out.contains("Response verify OK"),
        "{out}"
    );
    let out = ask(&env, &ua, &["b.pem"], &[]);
    assert!(
        out.contains("b.pem: good") && out.contains("Response verify OK"),
        "{out}"
    );
    // What it never saw, it cannot vouch for: tryLater.
    let out = env.openssl(&[
        "ocsp",
        "-issuer",
        "mois.pem",
        "-serial",
        "0x0123456789",
        "-url",
        &ua,
        "-CAfile",
        "root.pem",
    ]);
    assert!(
        (out.stdout + &out.stderr).contains("trylater"),
        "expected tryLater"
    );

    // Meanwhile B, on the store, sees a revocation at once.
    env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        &serial_b,
        "--reason",
        "keyCompromise",
    ]);
    within(
        Duration::from_secs(5),
        "revocation on the connected responder",
        || ask(&env, &ub, &["b.pem"], &["-no_nonce"]).contains("b.pem: revoked"),
    );

    // The store comes back: A catches up by itself.
    proxy.restore();
    within(Duration::from_secs(15), "responder A catches up", || {
        ask(&env, &ua, &["b.pem"], &["-no_nonce"]).contains("b.pem: revoked")
    });
    assert_eq!(ra.health()["status"], "ok");
    assert_eq!(rb.health()["status"], "ok");
}

// The OCSP cache race (issue 9.1): a cache miss reads `good` from the store, the
// worker applies a revocation of that serial meanwhile, and the miss must not then
// overwrite it. The `ocsp-after-status-read` pause holds the miss between its read
// and its write while the test revokes and the worker catches up.
both_backends!(
    ocsp_cache_miss_never_overwrites_a_newer_revocation_sqlite,
    ocsp_cache_miss_never_overwrites_a_newer_revocation_postgres,
    |env: &Env| {
        if !require("openssl") {
            return;
        }
        setup(env);
        let pause = env.path("pause");
        std::fs::create_dir_all(&pause).unwrap();
        let failpoint = format!("ocsp-after-status-read:{}", pause.display());
        // The worker reads the store only when told to: a PostgreSQL notification
        // (sent by the revoking transaction) or SIGHUP; it never polls by itself here.
        let r = Responder::start_with(
            env,
            "race",
            &env.store,
            &["mois"],
            "poll_interval_ms = 3600000",
            &[("GPKI_FAILPOINT", failpoint.as_str())],
        );
        let url = format!("{}/ocsp", r.url);
        // Issued after the responder's last read: not in its memory.
        env.issue_official("c.pem");
        let serial = env.serial_of("c.pem");
        let first = {
            let dir = env.path("");
            let url = url.clone();
            std::thread::spawn(move || {
                Command::new("openssl")
                    .current_dir(dir)
                    .args([
                        "ocsp", "-issuer", "mois.pem", "-CAfile", "root.pem", "-url", &url,
                        "-cert", "c.pem",
                    ])
                    .output()
                    .unwrap()
            })
        };
        let paused = pause.join("ocsp-after-status-read.paused");
        within(Duration::from_secs(20), "the cache miss pauses", || {
            paused.exists()
        });
        let syncs = r.health()["syncs"].as_u64().unwrap();
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &serial,
            "--reason",
            "keyCompromise",
        ]);
        if env.backend == crate::support::Backend::Sqlite {
            r.hangup();
        }
        within(
            Duration::from_secs(20),
            "the worker reads the revocation",
            || r.health()["syncs"].as_u64().unwrap() > syncs,
        );
        std::fs::write(pause.join("ocsp-after-status-read.go"), b"").unwrap();
        let first = first.join().unwrap();
        let first = String::from_utf8_lossy(&first.stdout).to_string()
            + &String::from_utf8_lossy(&first.stderr);
        // The miss finds the newer state in memory and answers with it.
        assert!(first.contains("c.pem: revoked"), "{first}");
        let again = ask(env, &url, &["c.pem"], &[]);
        assert!(again.contains("c.pem: revoked"), "{again}");
        let cached = ask(env, &url, &["c.pem"], &["-no_nonce"]);
        assert!(cached.contains("c.pem: revoked"), "{cached}");
    }
);
