//! The OCSP responder as relying parties see it: `openssl ocsp` and curl against a
//! real `gpki-ocsp` process, pkilint on its responses, and a store outage.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::both_backends;
use crate::support::{pkilint, require, Backend, CuttableProxy, Env, Responder};

/// `openssl ocsp` for `certs` issued by mois, against `url`; stdout and stderr.
fn ask(env: &Env, url: &str, certs: &[&str], extra: &[&str]) -> String {
    let mut args = vec![
        "ocsp", "-issuer", "mois.pem", "-url", url, "-CAfile", "root.pem",
    ];
    args.extend(extra);
    for c in certs {
        args.extend(["-cert", c]);
    }
    env.openssl_ok(&args)
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Polls until `check` holds, for at most `limit`; returns how long it took.
fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn setup(env: &Env) -> (String, String) {
    env.hierarchy();
    env.issue_official("a.pem");
    env.issue_official("b.pem");
    let signer = env.json(&["ocsp", "issue-signer", "--ca", "mois"]);
    assert_eq!(signer["ca"], "mois", "{signer}");
    (env.serial_of("a.pem"), env.serial_of("b.pem"))
}

both_backends!(
    ocsp_answers_pass_openssl_and_pkilint_sqlite,
    ocsp_answers_pass_openssl_and_pkilint_postgres,
    |env: &Env| {
        if !require("openssl") || !require("curl") {
            return;
        }
        let (_, serial_b) = setup(env);
        let r = Responder::start(env, "ocsp", &env.store, &["mois"], "");
        let url = format!("{}/ocsp", r.url);

        // Good, from the pre-signed cache (no nonce), then signed live with a nonce
        // (openssl warns when a nonce is not echoed), with a SHA-256 CertID, and two
        // certificates in one request.
        for extra in [&["-no_nonce"][..], &[], &["-sha256"]] {
            let out = ask(env, &url, &["a.pem"], extra);
            assert!(out.contains("Response verify OK"), "{extra:?}: {out}");
            assert!(out.contains("a.pem: good"), "{extra:?}: {out}");
            assert!(!out.to_lowercase().contains("nonce"), "{extra:?}: {out}");
        }
        let out = ask(env, &url, &["a.pem", "b.pem"], &[]);
        assert!(
            out.contains("a.pem: good") && out.contains("b.pem: good"),
            "{out}"
        );

        // GET made by curl: base64 in the path, RFC 5019 cache headers.
        env.openssl_ok(&[
            "ocsp",
            "-issuer",
            "mois.pem",
            "-cert",
            "a.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ]);
        let req = std::fs::read(env.path("req.der")).unwrap();
        let b64 = env.openssl_ok(&["base64", "-A", "-in", "req.der"]);
        let encoded = b64
            .trim()
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert!(!req.is_empty());
        let headers = env.path("get.headers").display().to_string();
        let body = env.path("get.der").display().to_string();
        curl(&[
            "-s",
            "-D",
            &headers,
            "-o",
            &body,
            &format!("{url}/{encoded}"),
        ]);
        let h = std::fs::read_to_string(&headers).unwrap().to_lowercase();
        for needed in [
            "200",
            "content-type: application/ocsp-response",
            "cache-control: max-age=",
            "etag: \"",
            "last-modified: ",
            "expires: ",
        ] {
            assert!(h.contains(needed), "GET headers lack {needed}:\n{h}");
        }
        let out = env.openssl_ok(&[
            "ocsp",
            "-respin",
            "get.der",
            "-issuer",
            "mois.pem",
            "-cert",
            "a.pem",
            "-CAfile",
            "root.pem",
            "-no_nonce",
        ]);
        assert!(
            out.contains("Response verify OK") && out.contains("a.pem: good"),
            "{out}"
        );

        // Revoked by `gpki cert revoke`, seen by the responder (generous bound here;
        // the p99 is measured in docs/benchmarks.md).
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
        let mut last = String::new();
        within(
            Duration::from_secs(5),
            "revocation visible over OCSP",
            || {
                last = ask(
                    env,
                    &url,
                    &["b.pem"],
                    &["-no_nonce", "-respout", "revoked.der"],
                );
                last.contains("b.pem: revoked")
            },
        );
        assert!(
            last.contains("Reason: keyCompromise") && last.contains("Response verify OK"),
            "{last}"
        );
        let with_nonce = ask(env, &url, &["b.pem"], &[]);
        assert!(with_nonce.contains("b.pem: revoked"), "{with_nonce}");
        let q = env.json(&[
            "ocsp",
            "query",
            "--cert",
            "b.pem",
            "--issuer",
            "mois.pem",
            "--url",
            &url,
            "--ca-file",
            "root.pem",
        ]);
        assert_eq!(q["status"], "revoked", "{q}");
        assert_eq!(q["reason"], "keyCompromise", "{q}");
        assert_eq!(q["nonce"], "matched", "{q}");

        // A serial the CA never issued: unknown.
        let out = env.openssl_ok(&[
            "ocsp",
            "-issuer",
            "mois.pem",
            "-serial",
            "0x0123456789abcdef",
            "-url",
            &url,
            "-CAfile",
            "root.pem",
            "-respout",
            "unknown.der",
        ]);
        assert!(out.contains(": unknown"), "{out}");

        if require("lint_ocsp_response") {
            for f in ["get.der", "revoked.der", "unknown.der"] {
                let findings = pkilint("lint_ocsp_response", &[], &env.path(f));
                assert!(findings.is_empty(), "pkilint findings for {f}:\n{findings}");
            }
        }

        // Another CA's certificate: unauthorized.
        env.ok(&[
            "ca",
            "init-root",
            "--name",
            "other",
            "--subject",
            "CN=Other Root, OU=GPKI, O=Government of Korea, C=KR",
            "--key-type",
            "p384",
            "--out",
            "other.pem",
        ]);
        let out = env.openssl(&[
            "ocsp",
            "-issuer",
            "other.pem",
            "-serial",
            "0x01",
            "-url",
            &url,
            "-CAfile",
            "other.pem",
        ]);
        let text = out.stdout + &out.stderr;
        assert!(text.contains("unauthorized"), "{text}");

        // Garbage: malformedRequest, by POST and by GET.
        let malformed = [0x30, 0x03, 0x0a, 0x01, 0x01];
        let reply = curl(&[
            "-s",
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            "this is not DER",
            &url,
        ]);
        assert_eq!(reply, malformed);
        let reply = curl(&["-s", &format!("{url}/bm90IERFUg%3D%3D")]);
        assert_eq!(reply, malformed);
        // A nonce over RFC 8954's 32 octets: malformedRequest; 32 octets: echoed.
        for (len, expect_malformed) in [(33usize, true), (32, false)] {
            std::fs::write(env.path("nonce.der"), with_nonce_of(&req, len)).unwrap();
            let reply = curl(&[
                "-s",
                "-H",
                "Content-Type: application/ocsp-request",
                "--data-binary",
                &format!("@{}", env.path("nonce.der").display()),
                &url,
            ]);
            assert_eq!(
                reply == malformed,
                expect_malformed,
                "nonce of {len} octets"
            );
        }
        // Oversized body: HTTP 413, nothing read.
        std::fs::write(env.path("big.bin"), vec![0x30u8; 64 * 1024]).unwrap();
        let code = curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            &format!("@{}", env.path("big.bin").display()),
            &url,
        ]);
        assert_eq!(String::from_utf8_lossy(&code), "413");

        // Still serving, and it counted what happened.
        let out = ask(env, &url, &["a.pem"], &["-no_nonce"]);
        assert!(out.contains("a.pem: good"), "{out}");
        assert_eq!(r.health()["status"], "ok");
        let metrics = String::from_utf8(curl(&["-s", &format!("{}/metrics", r.url)])).unwrap();
        for needed in [
            "gpki_ocsp_responses_total{path=\"presigned\",status=\"good\"}",
            "gpki_ocsp_responses_total{path=\"error\",status=\"malformed_request\"} 3",
            "gpki_ocsp_responses_total{path=\"error\",status=\"unauthorized\"} 1",
            "gpki_ocsp_request_duration_seconds_bucket",
            "gpki_ocsp_presigned_oldest_this_update_seconds{ca=\"mois\"}",
        ] {
            assert!(
                metrics.contains(needed),
                "metrics lack {needed}:\n{metrics}"
            );
        }
    }
);

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        out.extend([0x81, content.len() as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// `request` (a DER OCSPRequest without extensions) with a nonce of `len` octets.
fn with_nonce_of(request: &[u8], len: usize) -> Vec<u8> {
    // OCSPRequest { TBSRequest { requestList } }: take the requestList out.
    let tbs = &request[2..];
    let list = &tbs[2..];
    let nonce_oid = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
    let ext = tlv(
        0x30,
        &[
            tlv(0x06, &nonce_oid),
            tlv(0x04, &tlv(0x04, &vec![0x5a; len])),
        ]
        .concat(),
    );
    let exts = tlv(0xa2, &tlv(0x30, &ext));
    tlv(0x30, &tlv(0x30, &[list, &exts[..]].concat()))
}

/// The host:port of a PostgreSQL URL.
fn pg_host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    rest.split('/').next().unwrap().to_string()
}

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
    drop(r);

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

#[test]
fn dev_up_serves_ocsp_where_the_certificates_point() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("curl") {
        return;
    }
    let port = crate::support::free_port();
    let tsa_port = crate::support::free_port();
    let mut dev = crate::support::dev_up(
        &env,
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tsa-listen",
            &format!("127.0.0.1:{tsa_port}"),
            "--ca-listen",
            &format!("127.0.0.1:{}", crate::support::free_port()),
            "--ra-listen",
            &format!("127.0.0.1:{}", crate::support::free_port()),
            "--api-listen",
            &format!("127.0.0.1:{}", crate::support::free_port()),
        ],
    );
    dev.wait_http_ok(&format!("http://127.0.0.1:{port}/healthz"), 180);
    dev.wait_http_ok(&format!("http://127.0.0.1:{tsa_port}/healthz"), 60);
    // No --url: the certificate's AIA names the responder.
    let mut q = env.command();
    let out = q
        .env_remove("GPKI_STORE")
        .env_remove("GPKI_URL_BASE")
        .args([
            "ocsp",
            "query",
            "--cert",
            "data/certs/g-ssl.crt.pem",
            "--issuer",
            "data/certs/mois.crt.pem",
            "--ca-file",
            "data/certs/gpki-root.crt.pem",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "good", "{v}");
    assert_eq!(v["url"], format!("http://127.0.0.1:{port}/ocsp"), "{v}");
    dev_credential_round_trip(&env);
    // The issuer's keys as dev up serves them: the DID of the identifier, one key,
    // the same in the metadata.
    let did: serde_json::Value = serde_json::from_slice(&curl(&[
        "-s",
        &format!("http://127.0.0.1:{port}/.well-known/did.json"),
    ]))
    .unwrap();
    assert_eq!(did["id"], "did:web:id.gpki.go.kr", "{did}");
    let metadata: serde_json::Value = serde_json::from_slice(&curl(&[
        "-s",
        &format!("http://127.0.0.1:{port}/.well-known/jwt-vc-issuer"),
    ]))
    .unwrap();
    assert_eq!(metadata["issuer"], "https://id.gpki.go.kr", "{metadata}");
    let keys = metadata["jwks"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{metadata}");
    assert_eq!(
        did["verificationMethod"][0]["publicKeyJwk"], keys[0],
        "the DID document and the metadata name the same key"
    );
    // NSS with revocation checking required: every certificate with an OCSP URL is
    // checked live at the dev responder and found good. GnuTLS's ocsptool asks the
    // responder and verifies the delegated signer chains to the issuer.
    let certs = env.path("data/certs");
    if require("vfychain") && require("certutil") {
        let db = crate::support::nss_db(
            &env,
            "nss",
            &certs.join("gpki-root.crt.pem"),
            &certs.join("mois.crt.pem"),
        );
        for (p, usages) in crate::support::NSS_USAGES {
            // Responder certificates carry id-pkix-ocsp-nocheck and no OCSP URL.
            if *p == "ocsp-signer" {
                continue;
            }
            for u in *usages {
                let out = crate::support::vfychain(
                    &db,
                    u,
                    &certs.join(format!("{p}.crt.pem")),
                    &[
                        "-g",
                        "leaf",
                        "-h",
                        "requireFreshInfo",
                        "-m",
                        "ocsp",
                        "-s",
                        "requireInfo,failIfNoInfo",
                    ],
                );
                assert!(
                    out.contains("Chain is good!"),
                    "vfychain OCSP-required -u {u} {p}:\n{out}"
                );
            }
        }
    }
    if require("ocsptool") {
        for p in ["g-ssl", "official-sign", "institution-sign"] {
            let out = Command::new("ocsptool")
                .args(["--ask", "--load-cert"])
                .arg(certs.join(format!("{p}.crt.pem")))
                .arg("--load-issuer")
                .arg(certs.join("mois.crt.pem"))
                .arg("--load-signer")
                .arg(certs.join("mois.crt.pem"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                text.contains("Certificate Status: good")
                    && text.contains("Verifying OCSP Response: Success."),
                "ocsptool --ask {p}:\n{text}"
            );
        }
    }
    // The dev TSA stamps, and the token verifies with the TSA certificate's status
    // checked at the dev responder (its AIA).
    std::fs::write(env.path("doc.txt"), "dev document\n").unwrap();
    let run = |args: &[&str]| {
        let mut c = env.command();
        let o = c.env_remove("GPKI_STORE").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    run(&[
        "ts",
        "stamp",
        "--file",
        "doc.txt",
        "--url",
        &format!("http://127.0.0.1:{tsa_port}/"),
        "--out",
        "doc.tsr",
        "--output",
        "json",
    ]);
    // Issue 9.15: only the root is needed. gpki's TSA puts the chain in the token;
    // openssl ts -verify agrees.
    let v = run(&[
        "ts",
        "verify",
        "--file",
        "doc.txt",
        "--token",
        "doc.tsr",
        "--ca-file",
        "data/certs/gpki-root.crt.pem",
        "--output",
        "json",
    ]);
    assert_eq!(v["tsa_status"], "good", "{v}");
    assert_eq!(v["fetched_issuers"], serde_json::json!([]), "{v}");
    let out = env.openssl_ok(&[
        "ts",
        "-verify",
        "-data",
        "doc.txt",
        "-in",
        "doc.tsr",
        "-CAfile",
        "data/certs/gpki-root.crt.pem",
    ]);
    assert!(out.contains("Verification: OK"), "{out}");
    // A token that carries only the TSA certificate (made by OpenSSL's TSA with the
    // dev TSA key): the missing issuer is fetched from the caIssuers URL.
    std::fs::write(
        env.path("tsa.cnf"),
        format!(
            "[tsa]\ndefault_tsa = t\n[t]\nserial = {}\nsigner_cert = {}\nsigner_key = {}\n\
             default_policy = 1.2.410.100001.2.1.5\nsigner_digest = sha256\n\
             digests = sha256\ness_cert_id_alg = sha256\n",
            env.path("tsa-serial").display(),
            env.path("data/certs/tsa.crt.pem").display(),
            env.path("data/certs/tsa.key.pem").display()
        ),
    )
    .unwrap();
    std::fs::write(env.path("tsa-serial"), "01\n").unwrap();
    env.openssl_ok(&[
        "ts", "-query", "-data", "doc.txt", "-sha256", "-cert", "-out", "o.tsq",
    ]);
    let pass = format!("file:{}", env.path("data/dev-signer-passphrase").display());
    env.openssl_ok(&[
        "ts",
        "-reply",
        "-config",
        "tsa.cnf",
        "-queryfile",
        "o.tsq",
        "-passin",
        &pass,
        "-out",
        "o.tsr",
    ]);
    let v = run(&[
        "ts",
        "verify",
        "--file",
        "doc.txt",
        "--token",
        "o.tsr",
        "--ca-file",
        "data/certs/gpki-root.crt.pem",
        "--output",
        "json",
    ]);
    assert_eq!(v["tsa_status"], "good", "{v}");
    assert_eq!(
        v["fetched_issuers"],
        serde_json::json!([format!("http://127.0.0.1:{port}/ca/mois.crt")]),
        "{v}"
    );
    // The CRL distribution point and caIssuers URLs in the certificate are served too.
    let text = env.openssl_ok(&[
        "x509",
        "-in",
        "data/certs/g-ssl.crt.pem",
        "-noout",
        "-ext",
        "crlDistributionPoints,authorityInfoAccess",
    ]);
    let url_after = |marker: &str| {
        let line = text
            .lines()
            .find(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no {marker} in\n{text}"));
        line[line.find("http://").unwrap()..].trim().to_string()
    };
    let (crl_url, ca_url) = (url_after("URI:http"), url_after("CA Issuers"));
    assert!(
        crl_url.ends_with("/crl/mois.crl") && ca_url.ends_with("/ca/mois.crt"),
        "{crl_url} {ca_url}"
    );
    for (url, out) in [(&crl_url, "cdp.crl"), (&ca_url, "issuer.crt")] {
        let o = Command::new("curl")
            .args(["-sf", "-o", &env.path(out).display().to_string(), url])
            .status()
            .unwrap();
        assert!(o.success(), "{url}");
    }
    let out = env.openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        "cdp.crl",
        "-noout",
        "-verify",
        "-CAfile",
        "data/certs/chain.pem",
    ]);
    assert!(out.contains("verify OK"), "{out}");
    let served = env.openssl_ok(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        "issuer.crt",
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    let local = env.openssl_ok(&[
        "x509",
        "-in",
        "data/certs/mois.crt.pem",
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    assert_eq!(served, local);
    // SIGTERM stops it cleanly.
    let status = dev.terminate();
    assert!(status.success(), "dev up exited {status}");
}

fn get_crl(url: &str, out: &std::path::Path, etag: Option<&str>) -> (String, String) {
    let headers = out.with_extension("headers");
    let mut args = vec![
        "-s".to_string(),
        "-D".into(),
        headers.display().to_string(),
        "-o".into(),
        out.display().to_string(),
        "-w".into(),
        "%{http_code}".into(),
    ];
    if let Some(t) = etag {
        args.extend(["-H".into(), format!("If-None-Match: {t}")]);
    }
    args.push(url.to_string());
    let code =
        String::from_utf8(curl(&args.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
    (
        code,
        std::fs::read_to_string(headers).unwrap().to_lowercase(),
    )
}

fn header_value(headers: &str, name: &str) -> String {
    headers
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {headers}"))
        .trim()
        .to_string()
}

// Issue 9.12: CRLs come from memory (read from the store once per CRL number, with
// ETag and Last-Modified), delta CRLs are served, and full CRLs point at them.
both_backends!(
    crls_are_served_from_memory_with_their_delta_sqlite,
    crls_are_served_from_memory_with_their_delta_postgres,
    |env: &Env| {
        if !require("openssl") || !require("curl") || !require("lint_crl") {
            return;
        }
        let (_, serial_b) = setup(env);
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "full1.crl"]);
        let r = Responder::start(env, "crl", &env.store, &["mois"], "");
        let full = format!("{}/crl/mois.crl", r.url);
        let mut etag = String::new();
        for i in 0..20 {
            let (code, h) = get_crl(&full, &env.path(&format!("get{i}.crl")), None);
            assert_eq!(code, "200", "{h}");
            for needed in [
                "etag: ",
                "last-modified: ",
                "expires: ",
                "content-type: application/pkix-crl",
            ] {
                assert!(h.contains(needed), "{needed}: {h}");
            }
            etag = header_value(&h, "etag");
        }
        let loads = |kind: &str| -> u64 {
            let m = String::from_utf8(curl(&["-s", &format!("{}/metrics", r.url)])).unwrap();
            m.lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "gpki_ocsp_crl_loads_total{{ca=\"mois\",kind=\"{kind}\"}}"
                    ))
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(|n| n.parse().unwrap())
                .unwrap_or(0)
        };
        assert_eq!(loads("full"), 1, "20 downloads, one read of the CRL");
        // Past the one-second recheck, the store is asked again, the number is the
        // same, and the CRL is not read again.
        std::thread::sleep(Duration::from_millis(1300));
        let (code, _) = get_crl(&full, &env.path("later.crl"), None);
        assert_eq!(code, "200");
        assert_eq!(loads("full"), 1, "an unchanged CRL number re-reads nothing");
        // The same CRL again: 304 without a body.
        let (code, _) = get_crl(&full, &env.path("cond.crl"), Some(&etag));
        assert_eq!(code, "304");
        env.openssl_ok(&[
            "crl", "-in", "get0.crl", "-inform", "DER", "-noout", "-verify", "-CAfile", "mois.pem",
        ]);

        // A revocation and a delta CRL, served at the delta URL.
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
        env.ok(&[
            "crl",
            "generate",
            "--ca",
            "mois",
            "--delta",
            "--out",
            "delta.crl",
        ]);
        std::thread::sleep(Duration::from_millis(1100));
        let (code, h) = get_crl(
            &format!("{}/crl/mois.delta.crl", r.url),
            &env.path("d.crl"),
            None,
        );
        assert_eq!(code, "200", "{h}");
        let text = env.openssl_ok(&["crl", "-in", "d.crl", "-inform", "DER", "-noout", "-text"]);
        assert!(
            text.contains("Delta CRL Indicator") && text.contains(&serial_b.to_uppercase()),
            "{text}"
        );
        // The next full CRL names where its deltas are; served in place of the old.
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "full2.crl"]);
        std::thread::sleep(Duration::from_millis(1100));
        let (code, h) = get_crl(&full, &env.path("new.crl"), Some(&etag));
        assert_eq!(code, "200", "{h}");
        assert_ne!(header_value(&h, "etag"), etag);
        let text = env.openssl_ok(&[
            "crl", "-in", "new.crl", "-inform", "DER", "-noout", "-text", "-verify", "-CAfile",
            "mois.pem",
        ]);
        assert!(
            text.contains("Freshest CRL") && text.contains("/crl/mois.delta.crl"),
            "{text}"
        );
        assert_eq!(loads("full"), 2);
        for f in ["new.crl", "d.crl"] {
            let findings = pkilint("lint_crl", &["-t", "CRL", "-p", "PKIX"], &env.path(f));
            assert!(findings.is_empty(), "{f}:\n{findings}");
        }
    }
);

/// On the dev stack, nothing overridden: an ID issued to a phone key, presented by
/// QR, verified from the image (signer OCSP at its AIA URL, status list fetched at
/// the URI the credential names, both from the dev responder), revoked on loss, and
/// refused at the next fetch.
fn dev_credential_round_trip(env: &Env) {
    let gpki = |args: &[&str]| {
        let out = env
            .command()
            .env_remove("GPKI_STORE")
            .env_remove("GPKI_URL_BASE")
            .env(
                "GPKI_SIGNER_PASS_FILE",
                env.path("data/dev-signer-passphrase"),
            )
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ok = |args: &[&str]| {
        let (code, out, err) = gpki(args);
        assert_eq!(code, Some(0), "gpki {args:?}: {err}");
        out
    };
    crate::credentials::holder_key(env, "phone");
    std::fs::write(
        env.path("hong.json"),
        r#"{"name": "Hong Gildong", "employee_number": "001234567",
          "institution": "Ministry of the Interior and Safety", "department": "Digital Government Bureau",
          "position": "Deputy Director", "issue_date": "2026-11-24", "expiry_date": "2031-11-23"}"#,
    )
    .unwrap();
    let issued: serde_json::Value = serde_json::from_str(&ok(&[
        "credential",
        "issue",
        "--format",
        "mdoc",
        "--attributes",
        "hong.json",
        "--holder-key",
        "phone.pub",
        "--status-list",
        "mpoid-1",
        "--signer-key",
        "data/certs/credential-signer.key.pem",
        "--signer-chain",
        "data/certs/credential-signer.crt.pem",
        "--out",
        "hong.mdoc",
        "--output",
        "json",
    ]))
    .unwrap();
    let nonce = "4f1c8e2a9b7d6053e1f0";
    ok(&[
        "credential",
        "present",
        "--credential",
        "hong.mdoc",
        "--disclose",
        "name,institution",
        "--holder-key",
        "phone.key",
        "--verifier",
        "https://gate.mois.go.kr",
        "--nonce",
        nonce,
        "--out",
        "hong.vp",
        "--qr",
        "hong.png",
    ]);
    let verify = || {
        gpki(&[
            "credential",
            "verify",
            "--qr",
            "hong.png",
            "--anchor",
            "data/certs/mobile-id.crt.pem",
            "--verifier",
            "https://gate.mois.go.kr",
            "--nonce",
            nonce,
            "--output",
            "json",
        ])
    };
    let (code, out, err) = verify();
    assert_eq!(code, Some(0), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["disclosed"]["name"], "Hong Gildong", "{report}");
    let id = issued["id"].as_i64().unwrap().to_string();
    ok(&[
        "credential",
        "revoke",
        "--id",
        &id,
        "--reason",
        "lost-device",
    ]);
    crate::support::eventually("the lost phone's ID refused", 5, || match verify() {
        (Some(1), _, err) if err.contains("[credential-revoked]") => Ok(()),
        (_, out, err) => Err(format!("{out}{err}")),
    });
}
