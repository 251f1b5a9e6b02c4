//! The timestamp authority as document services see it: `openssl ts` and curl
//! against a real `gpki-tsa`, tokens verified both ways, refusals with the right
//! failInfo, and unique serials across two TSA processes on one store.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::both_backends;
use crate::support::{require, Backend, Env, Tsa};

const TSA_SUBJECT: &str = "CN=Test Time Stamping Authority, OU=GPKI, O=Government of Korea, C=KR";

fn setup(env: &Env) {
    env.hierarchy();
    env.ok(&[
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "tsa",
        "--subject",
        TSA_SUBJECT,
        "--generate-key",
        "--key-out",
        "tsa.key",
        "--out",
        "tsa.pem",
    ]);
    std::fs::write(env.path("doc.txt"), "an approved document\n").unwrap();
    let chain = std::fs::read_to_string(env.path("tsa.pem")).unwrap()
        + &std::fs::read_to_string(env.path("mois.pem")).unwrap();
    std::fs::write(env.path("tsa-chain.pem"), chain).unwrap();
}

fn post(url: &str, file: &str, out: &str) -> String {
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            out,
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/timestamp-query",
            "--data-binary",
            &format!("@{file}"),
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The kernel's maxerror, as `gpki-tsa clock` reads it.
fn kernel_max_error_us() -> i64 {
    let out = Command::new(Tsa::binary()).arg("clock").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // An unsynchronised clock's error is unbounded.
    v["max_error_us"].as_i64().unwrap_or(i64::MAX)
}

/// `openssl ts -reply -in FILE -text`.
fn reply_text(env: &Env, file: &str) -> String {
    env.openssl_ok(&["ts", "-reply", "-in", file, "-text"])
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, content.len() as u8];
    out.extend_from_slice(content);
    out
}

both_backends!(
    tsa_tokens_pass_openssl_both_ways_sqlite,
    tsa_tokens_pass_openssl_both_ways_postgres,
    |env: &Env| {
        if !require("openssl") || !require("curl") {
            return;
        }
        setup(env);
        // Tokens claim the accuracy the kernel vouches for (a whole second over its
        // maxerror), and none on an unsynchronised clock.
        let synced = kernel_max_error_us() < 10_000_000;
        let accuracy_s = kernel_max_error_us() / 1_000_000 + 1;
        let config = if synced {
            format!(
                "require_clock_sync = false\naccuracy_ms = {}",
                accuracy_s * 1000
            )
        } else {
            "require_clock_sync = false".to_string()
        };
        let tsa = Tsa::start(env, "tsa", &env.store, "tsa.pem", "tsa.key", &config);
        let d = env.dir.path().display().to_string();
        let p = |n: &str| format!("{d}/{n}");

        // openssl ts -query → curl → openssl ts -verify, with and without certReq.
        env.openssl_ok(&[
            "ts", "-query", "-data", "doc.txt", "-sha256", "-cert", "-out", "q.tsq",
        ]);
        assert_eq!(post(&tsa.url, &p("q.tsq"), &p("r.tsr")), "200");
        let out = env.openssl_ok(&[
            "ts",
            "-verify",
            "-data",
            "doc.txt",
            "-in",
            "r.tsr",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "mois.pem",
        ]);
        assert!(out.contains("Verification: OK"), "{out}");
        let text = reply_text(env, "r.tsr");
        for needed in [
            "Status: Granted.",
            "Policy OID: 1.2.410.100001.2.1.5",
            "Hash Algorithm: sha256",
            &if synced {
                format!("Accuracy: 0x{accuracy_s:02X} seconds")
            } else {
                "Accuracy: unspecified".to_string()
            },
            "Nonce: 0x",
            "TSA: DirName:/C=KR/O=Government of Korea/OU=GPKI/CN=Test Time Stamping Authority",
        ] {
            assert!(text.contains(needed), "reply lacks {needed}:\n{text}");
        }
        for hash in ["-sha384", "-sha512"] {
            env.openssl_ok(&[
                "ts",
                "-query",
                "-data",
                "doc.txt",
                hash,
                "-no_nonce",
                "-out",
                "q2.tsq",
            ]);
            assert_eq!(post(&tsa.url, &p("q2.tsq"), &p("r2.tsr")), "200");
            let out = env.openssl_ok(&[
                "ts",
                "-verify",
                "-data",
                "doc.txt",
                "-in",
                "r2.tsr",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "tsa-chain.pem",
            ]);
            assert!(
                out.contains("Verification: OK"),
                "{hash} without certReq: {out}"
            );
        }

        // gpki ts stamp → openssl verifies; gpki ts verify agrees.
        let stamped = env.json(&[
            "ts", "stamp", "--file", "doc.txt", "--url", &tsa.url, "--out", "g.tsr",
        ]);
        let out = env.openssl_ok(&[
            "ts",
            "-verify",
            "-data",
            "doc.txt",
            "-in",
            "g.tsr",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "mois.pem",
        ]);
        assert!(out.contains("Verification: OK"), "{out}");
        let v = env.json(&[
            "ts",
            "verify",
            "--file",
            "doc.txt",
            "--token",
            "g.tsr",
            "--ca-file",
            "root.pem",
            "--untrusted",
            "mois.pem",
            "--no-status-check",
        ]);
        assert_eq!(v["verified"], true);
        assert_eq!(v["serial"], stamped["serial"]);
        // The wrong document is refused, by name.
        std::fs::write(env.path("other.txt"), "another document\n").unwrap();
        let r = env.fails(&[
            "ts",
            "verify",
            "--file",
            "other.txt",
            "--token",
            "g.tsr",
            "--ca-file",
            "root.pem",
            "--untrusted",
            "mois.pem",
            "--no-status-check",
        ]);
        assert!(r.stderr.contains("imprint differs"), "{}", r.stderr);

        // A token made by OpenSSL's TSA, with the same certificate, verifies with gpki.
        env.openssl_ok(&[
            "pkey",
            "-in",
            "tsa.key",
            "-passin",
            &format!("file:{}", p("outpass")),
            "-out",
            "tsa-plain.key",
        ]);
        std::fs::write(
            env.path("tsa.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = t\n[ t ]\nserial = {d}/tsaserial\nsigner_cert = {d}/tsa.pem\ncerts = {d}/mois.pem\n\
                 signer_key = {d}/tsa-plain.key\nsigner_digest = sha256\ndefault_policy = 1.2.410.100001.2.1.5\n\
                 digests = sha256, sha384, sha512\naccuracy = secs:1\ness_cert_id_alg = sha256\n"
            ),
        )
        .unwrap();
        env.openssl_ok(&[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            "q.tsq",
            "-out",
            "ossl.tsr",
        ]);
        let v = env.json(&[
            "ts",
            "verify",
            "--file",
            "doc.txt",
            "--token",
            "ossl.tsr",
            "--ca-file",
            "root.pem",
            "--untrusted",
            "mois.pem",
            "--no-status-check",
        ]);
        assert_eq!(v["verified"], true, "{v}");

        // The log knows the token.
        let serial = stamped["serial"].as_str().unwrap();
        let found = env.json(&["ts", "lookup", "--serial", serial]);
        let imprint = hex::encode(openssl::sha::sha256(b"an approved document\n"));
        assert_eq!(found[0]["imprint"], imprint, "{found}");
        assert_eq!(found[0]["policy"], "1.2.410.100001.2.1.5");
        env.fails(&["ts", "lookup", "--serial", "ffffffffff"]);
        let r = env.fails(&[
            "ts", "stamp", "--file", "doc.txt", "--url", &tsa.url, "--out", "x.tsr", "--policy",
            "1.2.3.4",
        ]);
        assert!(
            r.stderr.contains("TSA refused") && r.stderr.contains("not this TSA's"),
            "{}",
            r.stderr
        );
        assert!(!env.path("x.tsr").exists());

        // Refusals carry the right failInfo, and the TSA keeps serving.
        env.openssl_ok(&[
            "ts", "-query", "-data", "doc.txt", "-md5", "-out", "md5.tsq",
        ]);
        env.openssl_ok(&[
            "ts",
            "-query",
            "-data",
            "doc.txt",
            "-sha256",
            "-tspolicy",
            "1.2.3.4",
            "-out",
            "pol.tsq",
        ]);
        // A SHA-256 imprint of 31 octets.
        let alg = tlv(
            0x30,
            &[
                tlv(
                    0x06,
                    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
                ),
                vec![0x05, 0x00],
            ]
            .concat(),
        );
        let short = tlv(
            0x30,
            &[
                vec![0x02, 0x01, 0x01],
                tlv(0x30, &[alg, tlv(0x04, &[7u8; 31])].concat()),
            ]
            .concat(),
        );
        std::fs::write(env.path("short.tsq"), short).unwrap();
        std::fs::write(env.path("garbage.tsq"), b"this is not a timestamp request").unwrap();
        for (q, expect) in [
            (
                "md5.tsq",
                "unrecognized or unsupported algorithm identifier",
            ),
            (
                "pol.tsq",
                "the requested TSA policy is not supported by the TSA",
            ),
            ("short.tsq", "the data submitted has the wrong format"),
            ("garbage.tsq", "the data submitted has the wrong format"),
        ] {
            assert_eq!(post(&tsa.url, &p(q), &p("bad.tsr")), "200", "{q}");
            let text = reply_text(env, "bad.tsr");
            assert!(
                text.contains("Status: Rejected.") && text.contains(expect),
                "{q}:\n{text}"
            );
        }
        std::fs::write(env.path("big.tsq"), vec![0x30u8; 64 * 1024]).unwrap();
        assert_eq!(post(&tsa.url, &p("big.tsq"), "/dev/null"), "413");
        assert_eq!(post(&tsa.url, &p("q.tsq"), &p("again.tsr")), "200");
        assert!(reply_text(env, "again.tsr").contains("Status: Granted."));
        let get = |path: &str| {
            let o = Command::new("curl")
                .args(["-s", &format!("{}{path}", tsa.url)])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        let health: serde_json::Value = serde_json::from_str(&get("/healthz")).unwrap();
        assert_eq!(health["status"], "ok", "{health}");
        assert_eq!(health["clock_sync_required"], false);
        let metrics = get("/metrics");
        for needed in [
            "gpki_tsa_responses_total{outcome=\"granted\"}",
            "gpki_tsa_responses_total{outcome=\"bad_alg\"} 1",
            "gpki_tsa_responses_total{outcome=\"unaccepted_policy\"} 2",
            "gpki_tsa_responses_total{outcome=\"bad_data_format\"} 2",
            "gpki_tsa_responses_total{outcome=\"refused_http\"} 1",
            "gpki_tsa_request_duration_seconds_bucket",
        ] {
            assert!(
                metrics.contains(needed),
                "metrics lack {needed}:\n{metrics}"
            );
        }

        // A revoked TSA certificate stops issuance.
        let tsa_serial = env.serial_of("tsa.pem");
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &tsa_serial,
            "--reason",
            "keyCompromise",
        ]);
        let start = Instant::now();
        loop {
            assert_eq!(post(&tsa.url, &p("q.tsq"), &p("late.tsr")), "200");
            let text = reply_text(env, "late.tsr");
            if text.contains("Status: Rejected.") {
                assert!(text.contains("the TSA certificate is revoked"), "{text}");
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "still granting after revocation:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
);

#[test]
fn tsa_refuses_a_certificate_that_is_not_for_timestamping() {
    let env = Env::new(Backend::Sqlite).unwrap();
    setup(&env);
    env.issue_official("official.pem");
    let config = env.path("wrong.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"{}\"\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\nkey_pass_file = \"{}\"\n",
            env.store,
            env.path("official.pem").display(),
            env.path("official.pem.key").display(),
            env.path("outpass").display()
        ),
    )
    .unwrap();
    let out = Command::new(Tsa::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a TSA certificate"), "{err}");
    // A key that is not the certificate's.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace(
            &format!("cert = \"{}\"", env.path("official.pem").display()),
            &format!("cert = \"{}\"", env.path("tsa.pem").display()),
        ),
    )
    .unwrap();
    let out = Command::new(Tsa::binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match the TSA certificate"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}

#[test]
fn tsa_refuses_when_the_clock_is_unsynchronised_and_required() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("openssl") || !require("curl") {
        return;
    }
    setup(&env);
    let tsa = Tsa::start(
        &env,
        "strict",
        &env.store,
        "tsa.pem",
        "tsa.key",
        "require_clock_sync = true",
    );
    let clock = Command::new(Tsa::binary()).arg("clock").output().unwrap();
    let state: serde_json::Value = serde_json::from_slice(&clock.stdout).unwrap();
    let d = env.dir.path().display().to_string();
    env.openssl_ok(&[
        "ts", "-query", "-data", "doc.txt", "-sha256", "-out", "q.tsq",
    ]);
    assert_eq!(
        post(&tsa.url, &format!("{d}/q.tsq"), &format!("{d}/r.tsr")),
        "200"
    );
    let text = reply_text(&env, "r.tsr");
    // Whichever state this machine's kernel reports, the answer must follow it.
    if state["synchronised"] == true {
        assert!(text.contains("Status: Granted."), "{text}");
    } else {
        assert!(
            text.contains("Status: Rejected.")
                && text.contains("the TSA's time source is not available"),
            "{text}"
        );
    }
}

#[test]
fn tsa_serials_never_repeat_across_two_processes_postgres() {
    let Some(env) = Env::new(Backend::Postgres) else {
        return;
    };
    if !require("openssl") {
        return;
    }
    setup(&env);
    // Small blocks, so the two processes go back to the store many times.
    let a = Tsa::start(
        &env,
        "tsa",
        &env.store,
        "tsa.pem",
        "tsa.key",
        "require_clock_sync = false\nserial_block = 7",
    );
    let b = Tsa::start(
        &env,
        "tsa",
        &env.store,
        "tsa.pem",
        "tsa.key",
        "require_clock_sync = false\nserial_block = 7",
    );
    env.openssl_ok(&[
        "ts", "-query", "-data", "doc.txt", "-sha256", "-out", "q.tsq",
    ]);
    let body = std::fs::read(env.path("q.tsq")).unwrap();
    let mut handles = Vec::new();
    for t in 0..8 {
        let url = if t % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let body = body.clone();
        handles.push(std::thread::spawn(move || {
            let mut serials = Vec::new();
            for _ in 0..50 {
                let reply = ureq::post(&url)
                    .set("Content-Type", "application/timestamp-query")
                    .send_bytes(&body)
                    .unwrap();
                let mut der = Vec::new();
                std::io::Read::read_to_end(&mut reply.into_reader(), &mut der).unwrap();
                let resp = <x509_tsp::TimeStampResp as der::Decode>::from_der(&der).unwrap();
                let token = resp.time_stamp_token.expect("granted");
                let sd: cms::signed_data::SignedData = token.content.decode_as().unwrap();
                let tst = <x509_tsp::TstInfo as der::Decode>::from_der(
                    sd.encap_content_info.econtent.unwrap().value(),
                )
                .unwrap();
                serials.push(hex::encode(tst.serial_number.as_bytes()));
            }
            serials
        }));
    }
    let mut all: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), 400);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 400, "a serial was issued twice");
    // Every token is in the log, once.
    let logged = crate::support::runtime().block_on(async {
        sqlx::any::install_default_drivers();
        let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&env.store)
            .await
            .unwrap();
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT serial) AS d FROM tsa_tokens WHERE tsa = 'tsa'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        (
            sqlx::Row::get::<i64, _>(&row, "n"),
            sqlx::Row::get::<i64, _>(&row, "d"),
        )
    });
    assert_eq!(logged, (400, 400));
}

// Issue 9.13: an accuracy finer than the kernel's maxerror is a false claim: the TSA
// refuses to start with it. Where the clock does vouch for less than a second,
// genTime carries the milliseconds.
#[test]
fn tsa_accuracy_is_never_finer_than_the_kernel_vouches_for() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("openssl") || !require("curl") {
        return;
    }
    setup(&env);
    let config = env.path("fine.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"{}\"\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\nkey_pass_file = \"{}\"\nrequire_clock_sync = false\naccuracy_ms = 500\n",
            env.store,
            env.path("tsa.pem").display(),
            env.path("tsa.key").display(),
            env.path("outpass").display()
        ),
    )
    .unwrap();
    if kernel_max_error_us() > 500_000 {
        let out = Command::new(Tsa::binary())
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("accuracy_ms = 500 claims more than the clock vouches for")
                && err.contains("maxerror"),
            "{err}"
        );
    } else {
        // A synchronised clock within half a second: tokens carry milliseconds.
        let tsa = Tsa::start(
            &env,
            "fine",
            &env.store,
            "tsa.pem",
            "tsa.key",
            "require_clock_sync = false\naccuracy_ms = 500",
        );
        let d = env.dir.path().display().to_string();
        env.openssl_ok(&[
            "ts", "-query", "-data", "doc.txt", "-sha256", "-cert", "-out", "q.tsq",
        ]);
        let mut fractional = 0;
        for i in 0..5 {
            let out = format!("{d}/f{i}.tsr");
            assert_eq!(post(&tsa.url, &format!("{d}/q.tsq"), &out), "200");
            let text = reply_text(&env, &format!("f{i}.tsr"));
            assert!(
                text.contains("Accuracy: unspecified seconds, 0x01F4 millis")
                    || text.contains("0x01F4 millis"),
                "{text}"
            );
            let time = text
                .lines()
                .find(|l| l.starts_with("Time stamp:"))
                .unwrap()
                .to_string();
            if time.contains('.') {
                fractional += 1;
            }
        }
        assert!(fractional > 0, "no genTime carried a fraction of a second");
    }
}

// Issue 9.14: unknown is not good. A TSA certificate whose issuer the store does
// not know gets no tokens, and neither does one whose status the TSA has not read
// for longer than `status_max_age_secs`.
#[test]
fn tsa_refuses_when_its_certificate_status_is_unknown() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("openssl") || !require("curl") {
        return;
    }
    setup(&env);
    // Another, empty store: the TSA certificate's issuer is not one of its CAs.
    let empty = format!("sqlite://{}", env.path("empty.db").display());
    env.ok(&["--store", &empty, "store", "migrate"]);
    let tsa = Tsa::start(
        &env,
        "stranger",
        &empty,
        "tsa.pem",
        "tsa.key",
        "require_clock_sync = false",
    );
    let d = env.dir.path().display().to_string();
    env.openssl_ok(&[
        "ts", "-query", "-data", "doc.txt", "-sha256", "-out", "q.tsq",
    ]);
    assert_eq!(
        post(&tsa.url, &format!("{d}/q.tsq"), &format!("{d}/r.tsr")),
        "200"
    );
    let text = reply_text(&env, "r.tsr");
    assert!(
        text.contains("Status: Rejected.") && text.contains("issuer is not a CA of this store"),
        "{text}"
    );
    let health = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            &format!("{}/healthz", tsa.url),
        ])
        .output()
        .unwrap();
    let health = String::from_utf8_lossy(&health.stdout);
    assert!(
        health.ends_with("503") && health.contains("refusing"),
        "{health}"
    );
    drop(tsa);

    // In its own store, but with no record of its serial there any more.
    let tsa = Tsa::start(
        &env,
        "norecord",
        &env.store,
        "tsa.pem",
        "tsa.key",
        "require_clock_sync = false",
    );
    assert_eq!(
        post(&tsa.url, &format!("{d}/q.tsq"), &format!("{d}/ok.tsr")),
        "200"
    );
    assert!(reply_text(&env, "ok.tsr").contains("Status: Granted."));
    let serial = env.serial_of("tsa.pem");
    crate::support::runtime().block_on(crate::support::sql(
        &env.store,
        &[&format!(
            "DELETE FROM certificates WHERE serial = '{serial}'"
        )],
    ));
    let start = Instant::now();
    loop {
        assert_eq!(
            post(&tsa.url, &format!("{d}/q.tsq"), &format!("{d}/gone.tsr")),
            "200"
        );
        let text = reply_text(&env, "gone.tsr");
        if text.contains("Status: Rejected.") {
            assert!(
                text.contains("has no record of the TSA certificate"),
                "{text}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "still granting:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn tsa_fails_closed_when_the_store_stays_out_of_reach_postgres() {
    let Some(env) = Env::new(Backend::Postgres) else {
        return;
    };
    if !require("openssl") || !require("curl") {
        return;
    }
    setup(&env);
    let rest = env.store.split_once("://").unwrap().1;
    let target = rest
        .rsplit_once('@')
        .map_or(rest, |(_, h)| h)
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let proxy = crate::support::CuttableProxy::start(target.clone());
    let proxied = env
        .store
        .replacen(&target, &format!("127.0.0.1:{}", proxy.port), 1);
    let tsa = Tsa::start(
        &env,
        "cut",
        &proxied,
        "tsa.pem",
        "tsa.key",
        "require_clock_sync = false\nstatus_max_age_secs = 10",
    );
    let d = env.dir.path().display().to_string();
    env.openssl_ok(&[
        "ts", "-query", "-data", "doc.txt", "-sha256", "-out", "q.tsq",
    ]);
    let ask = |out: &str| {
        assert_eq!(
            post(&tsa.url, &format!("{d}/q.tsq"), &format!("{d}/{out}")),
            "200"
        );
        reply_text(&env, out)
    };
    assert!(ask("ok.tsr").contains("Status: Granted."));
    proxy.cut();
    let start = Instant::now();
    loop {
        let text = ask("cut.tsr");
        if text.contains("status was last established") {
            assert!(text.contains("Status: Rejected."), "{text}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still not refusing on status:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    proxy.restore();
    let start = Instant::now();
    while !ask("back.tsr").contains("Status: Granted.") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no tokens after the store came back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
