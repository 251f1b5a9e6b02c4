//! The RA service and the CA service as separate processes over mutual TLS: the
//! issuing workflow, and every refusal of issue 10, each on a real TLS
//! connection, audited, and changing nothing else.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{free_port, require, runtime, sql, Backend, Env, Process, Run};

const A: &str = "OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";
const B: &str = "OU=Ministry of Education, O=Government of Korea, C=KR";

/// A service process and the port it listens on.
struct Service {
    process: Process,
    port: u16,
}

/// Everything of the two services: their certificates, configs and processes.
struct Deployment {
    env: Env,
    ca: Service,
    ra: Service,
}

impl Deployment {
    /// Issues `profile` for a generated key into `NAME.pem` / `NAME.key`; returns
    /// the serial.
    fn issue(env: &Env, name: &str, profile: &str, subject: &str, sans: &[&str]) -> String {
        let key = format!("{name}.key");
        let out = format!("{name}.pem");
        let mut args = vec![
            "cert",
            "issue",
            "--ca",
            "mois",
            "--profile",
            profile,
            "--subject",
            subject,
            "--generate-key",
            "--key-out",
            &key,
            "--out",
            &out,
        ];
        for s in sans {
            args.extend(["--san", s]);
        }
        let v = env.json(&args);
        // The client sends its intermediate: certificate, then the CA.
        let chain = std::fs::read_to_string(env.path(&out)).unwrap()
            + &std::fs::read_to_string(env.path("mois.pem")).unwrap();
        std::fs::write(env.path(&format!("{name}.chain.pem")), chain).unwrap();
        v["serial"].as_str().unwrap().to_string()
    }

    fn start(backend: Backend) -> Option<Deployment> {
        let env = Env::new(backend)?;
        // rustls-webpki refuses every certificate under a directoryName name
        // constraint (RFC 5280 §4.2.1.10 lets a verifier refuse what it does not
        // process), so the CA of mutual-TLS certificates carries DNS constraints only.
        env.ok(&[
            "ca",
            "init-root",
            "--name",
            "root",
            "--subject",
            "CN=Test Root CA, OU=GPKI, O=Government of Korea, C=KR",
            "--key-type",
            "p384",
            "--out",
            "root.pem",
        ]);
        env.ok(&[
            "ca",
            "create",
            "--parent",
            "root",
            "--name",
            "mois",
            "--subject",
            "CN=Test MOIS CA, OU=GPKI, O=Government of Korea, C=KR",
            "--key-type",
            "p256",
            "--path-len",
            "0",
            "--permit-dns",
            "go.kr",
            "--out",
            "mois.pem",
        ]);
        let org = "O=Ministry of the Interior and Safety, L=Sejong, C=KR";
        Self::issue(&env, "ca-tls", "server", org, &["dns:ca.gpki.go.kr"]);
        Self::issue(&env, "ra-tls", "server", org, &["dns:ra.gpki.go.kr"]);
        let host = Self::issue(
            &env,
            "ra-host",
            "service-client",
            "CN=ra-host-1, OU=GPKI services, O=Government of Korea, C=KR",
            &[],
        );
        env.ok(&[
            "ra",
            "client",
            "add",
            "--name",
            "ra-host-1",
            "--role",
            "ra",
            "--ca",
            "mois",
            "--serial",
            &host,
        ]);
        // A keeps dual control on official-sign; B decides alone (its bulk imports
        // issue at once).
        for (name, subtree, domain, dual) in
            [("A", A, "mois.go.kr", true), ("B", B, "moe.go.kr", false)]
        {
            let mut args = vec![
                "ra",
                "create",
                "--name",
                name,
                "--ca",
                "mois",
                "--subtree",
                subtree,
                "--profiles",
                "official-sign,official-km,ra-operator",
                "--renew-window-days",
                "400",
                "--host",
                "ra-host-1",
                "--domains",
                domain,
            ];
            if dual {
                args.extend(["--dual-control", "official-sign"]);
            }
            env.ok(&args);
        }
        for (op, ra, inst, admin) in [
            ("a1", "A", A, true),
            ("a2", "A", A, false),
            ("a3", "A", A, true),
            ("b1", "B", B, true),
        ] {
            let serial = Self::issue(
                &env,
                op,
                "ra-operator",
                &format!("CN=Operator {op}(00000000{}), OU=RA, {inst}", op.len()),
                &[],
            );
            let mut args = vec![
                "ra", "operator", "add", "--ra", ra, "--name", op, "--ca", "mois", "--serial",
                &serial,
            ];
            if admin {
                args.push("--admin");
            }
            env.ok(&args);
        }
        // An operator's certificate cannot be registered as an RA service.
        let a1 = env.serial_of("a1.pem");
        let r = env.fails(&[
            "ra", "client", "add", "--name", "sneaky", "--role", "ra", "--ca", "mois", "--serial",
            &a1,
        ]);
        assert!(
            r.stderr.contains("service-client certificates"),
            "{}",
            r.stderr
        );
        let ca_port = free_port();
        let ra_port = free_port();
        let p = |n: &str| env.path(n).display().to_string();
        std::fs::write(
            env.path("ca.toml"),
            format!(
                "store = \"{}\"\nlisten = \"127.0.0.1:{ca_port}\"\nkey_dir = \"{}\"\nkey_pass_file = \"{}\"\n\
                 stale_pending_secs = 1\nsigner_renewal_days = 3650\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nkey_pass_file = \"{}\"\nclient_ca = \"{}\"\n\
                 [audit]\ncheckpoint_dir = \"data/audit\"\ncheckpoint_interval_secs = 1\n",
                env_store(&env),
                p("data/keys"),
                p("pass"),
                p("ca-tls.chain.pem"),
                p("ca-tls.key"),
                p("outpass"),
                p("root.pem"),
            ),
        )
        .unwrap();
        std::fs::write(
            env.path("ra.toml"),
            format!(
                "store = \"{}\"\nlisten = \"127.0.0.1:{ra_port}\"\nhost = \"ra-host-1\"\n\
                 [tls]\ncert = \"{}\"\nkey = \"{}\"\nkey_pass_file = \"{}\"\nclient_ca = \"{}\"\n\
                 [ca]\nurl = \"https://127.0.0.1:{ca_port}\"\nserver_name = \"ca.gpki.go.kr\"\ncert = \"{}\"\nkey = \"{}\"\nkey_pass_file = \"{}\"\nca_file = \"{}\"\n",
                env_store(&env),
                p("ra-tls.chain.pem"),
                p("ra-tls.key"),
                p("outpass"),
                p("root.pem"),
                p("ra-host.chain.pem"),
                p("ra-host.key"),
                p("outpass"),
                p("root.pem"),
            ),
        )
        .unwrap();
        let ca = spawn(&env, "gpki-ca", "ca.toml", ca_port);
        let ra = spawn(&env, "gpki-ra", "ra.toml", ra_port);
        Some(Deployment { env, ca, ra })
    }

    /// `gpki ra …` as operator `op`.
    fn ra(&self, op: &str, args: &[&str]) -> Run {
        let o = self.ra_command(op, args).output().unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The command of `gpki ra …` as operator `op`, with `--output json`.
    fn ra_command(&self, op: &str, args: &[&str]) -> Command {
        let url = format!("https://127.0.0.1:{}", self.ra.port);
        let cert = format!("{op}.chain.pem");
        let key = format!("{op}.key");
        let mut cmd = self.env.command();
        cmd.args(args).args([
            "--ra",
            &url,
            "--server-name",
            "ra.gpki.go.kr",
            "--cert",
            &cert,
            "--key",
            &key,
            "--operator-pass-file",
            "outpass",
            "--ca-file",
            "root.pem",
            "--output",
            "json",
        ]);
        cmd
    }

    fn ra_ok(&self, op: &str, args: &[&str]) -> Value {
        let r = self.ra(op, args);
        assert_eq!(r.code, 0, "gpki {args:?} as {op}: {}{}", r.stdout, r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }

    /// A refusal: exit 1 and the error's kind in the JSON.
    fn ra_refused(&self, op: &str, args: &[&str], kind: &str) -> String {
        let r = self.ra(op, args);
        assert_eq!(
            r.code, 1,
            "gpki {args:?} as {op} should fail: {}{}",
            r.stdout, r.stderr
        );
        let v: Value =
            serde_json::from_str(r.stdout.trim()).unwrap_or_else(|_| panic!("{}", r.stdout));
        assert_eq!(v["error"]["kind"], kind, "{}", r.stdout);
        v["error"]["detail"].as_str().unwrap().to_string()
    }

    /// A refusal that must come within a second of `since` (a revocation made
    /// outside the service, which its cache of callers may hold for up to
    /// `auth_cache_ms`): served before that, refused from then on.
    fn ra_refused_within_a_second(
        &self,
        op: &str,
        args: &[&str],
        kind: &str,
        since: std::time::Instant,
    ) -> String {
        loop {
            let r = self.ra(op, args);
            if r.code != 0 {
                return self.ra_refused(op, args, kind);
            }
            assert!(
                since.elapsed() < std::time::Duration::from_secs(1),
                "gpki {args:?} as {op} still served a second after the revocation"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// curl to a service with an optional client certificate; returns (exit code,
    /// HTTP status, body).
    fn curl(
        &self,
        which: &str,
        path: &str,
        client: Option<(&str, &str)>,
        body: Option<&str>,
    ) -> (i32, String) {
        let (port, name) = match which {
            "ca" => (self.ca.port, "ca.gpki.go.kr"),
            _ => (self.ra.port, "ra.gpki.go.kr"),
        };
        let mut args = vec![
            "-s".to_string(),
            "--cacert".into(),
            "root.pem".into(),
            "--resolve".into(),
            format!("{name}:{port}:127.0.0.1"),
            "-w".into(),
            "\n%{http_code}".into(),
        ];
        if let Some((cert, key)) = client {
            args.extend(["--cert".into(), cert.into(), "--key".into(), key.into()]);
        }
        if let Some(b) = body {
            args.extend([
                "-H".into(),
                "content-type: application/json".into(),
                "--data".into(),
                b.into(),
            ]);
        }
        args.push(format!("https://{name}:{port}{path}"));
        let o = Command::new("curl")
            .current_dir(self.env.path(""))
            .args(&args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }

    /// `POST /v1/certificates` at the CA with the RA host's certificate: (the
    /// body, then the HTTP status on the last line).
    fn issue_at_ca_as_ra_host(&self, body: &str) -> String {
        self.curl(
            "ca",
            "/v1/certificates",
            Some(("ra-host.chain.pem", "ra-host.plain.key")),
            Some(body),
        )
        .1
    }

    /// Audit records of refusals of identified callers (operators, RA hosts,
    /// signers), each audited every time.
    fn refusals(&self) -> usize {
        self.refusal_records()
            .iter()
            .filter(|e| !unidentified(e))
            .count()
    }

    /// Refusals of callers the store does not hold in force (and of callers with
    /// no certificate), audited at most once a second each: (records, refusals
    /// they count).
    fn unidentified_refusals(&self) -> (usize, u64) {
        let rows: Vec<_> = self
            .refusal_records()
            .into_iter()
            .filter(unidentified)
            .collect();
        let counted = rows
            .iter()
            .map(|e| {
                let d: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
                d["refusals"].as_u64().unwrap()
            })
            .sum();
        (rows.len(), counted)
    }

    /// Waits (at most 3 s: a held refusal is audited at the end of its second)
    /// until the unidentified refusals audited count `n` more than `since`.
    fn unidentified_refusals_reach(&self, since: u64, n: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let (_, counted) = self.unidentified_refusals();
            if counted == since + n {
                return;
            }
            assert!(
                counted < since + n,
                "{counted} refusals audited, {n} made after {since}"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "{counted} refusals audited, not {}",
                since + n
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn refusal_records(&self) -> Vec<Value> {
        let log = self.env.json(&["audit", "log", "--limit", "1000000"]);
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"].as_str().is_some_and(|a| a.ends_with(".refuse")))
            .cloned()
            .collect()
    }

    /// Kills the CA service (no clean shutdown) and starts it again on its port,
    /// with environment `vars`.
    fn restart_ca(&mut self, vars: &[(&str, &str)]) {
        let port = self.ca.port;
        self.ca.process.kill();
        self.ca = spawn_with(&self.env, "gpki-ca", "ca.toml", port, vars);
    }

    fn certificates(&self) -> i64 {
        self.env.counts()["certificates"].as_i64().unwrap()
    }
}

/// A refusal record of a caller not identified by the store.
fn unidentified(e: &Value) -> bool {
    e["actor"] == "unauthenticated"
        || e["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("cert-sha256:"))
}

fn spawn(env: &Env, bin: &str, config: &str, port: u16) -> Service {
    spawn_with(env, bin, config, port, &[])
}

/// The service with environment `vars` (a failpoint, a store setting).
fn spawn_with(env: &Env, bin: &str, config: &str, port: u16, vars: &[(&str, &str)]) -> Service {
    let mut s = Service {
        process: Process::serve_with(env, bin, config, vars, Stdio::inherit()),
        port,
    };
    wait_healthy(env, &mut s, if bin == "gpki-ca" { "ca" } else { "ra" });
    s
}

fn env_store(env: &Env) -> String {
    env.store.clone()
}

fn wait_healthy(env: &Env, s: &mut Service, name: &str) {
    let host = format!("{name}.gpki.go.kr");
    // Health is behind the mutual TLS: asked as the RA host.
    if !env.path("health.plain.key").exists() {
        env.openssl_ok(&[
            "pkey",
            "-in",
            "ra-host.key",
            "-passin",
            "file:outpass",
            "-out",
            "health.plain.key",
        ]);
    }
    let port = s.port;
    s.process.wait_until(
        &format!("gpki-{name} became healthy"),
        30,
        std::time::Duration::from_millis(100),
        || {
            Command::new("curl")
                .current_dir(env.path(""))
                .args([
                    "-sf",
                    "--cacert",
                    "root.pem",
                    "--cert",
                    "ra-host.chain.pem",
                    "--key",
                    "health.plain.key",
                    "--resolve",
                    &format!("{host}:{port}:127.0.0.1"),
                    &format!("https://{host}:{port}/healthz"),
                ])
                .output()
                .unwrap()
                .status
                .success()
        },
    );
}

fn official(d: &Deployment, name: &str, inst: &str) -> (String, String) {
    // An employee number belongs to one official: Hong of each institution has
    // their own.
    let number = if inst == A { "001234567" } else { "007654321" };
    let subject = format!("CN=Hong Gildong({number}), OU=people, {inst}");
    let csr = d.env.csr(
        name,
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=ignored",
    );
    (subject, csr.display().to_string())
}

fn workflow_and_refusals(backend: Backend) {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(d) = Deployment::start(backend) else {
        return;
    };

    // Submitted by a1: official-sign is under dual control and needs an identity
    // verification, so it waits.
    let (subject, csr) = official(&d, "hong", A);
    let submit = [
        "ra",
        "submit",
        "--idempotency-key",
        "hong-1",
        "--profile",
        "official-sign",
        "--subject",
        &subject,
        "--csr",
        &csr,
        "--san",
        "email:gildong.hong@mois.go.kr",
    ];
    let v = d.ra_ok("a1", &submit);
    assert_eq!(v["request"]["status"], "submitted", "{v}");
    let id = v["request"]["id"].to_string();

    // The submitter cannot approve under dual control; refused, audited, nothing made.
    let (certs, refusals) = (d.certificates(), d.refusals());
    let detail = d.ra_refused("a1", &["ra", "approve", &id], "unauthorized");
    assert!(detail.contains("dual control"), "{detail}");
    assert_eq!(d.certificates(), certs);
    assert_eq!(d.refusals(), refusals + 1);

    // A second operator cannot approve before the identity is verified.
    let detail = d.ra_refused("a2", &["ra", "approve", &id], "policy_violation");
    assert!(detail.contains("identity verification"), "{detail}");
    d.ra_ok(
        "a2",
        &[
            "ra",
            "verify-identity",
            &id,
            "--method",
            "face-to-face",
            "--document",
            "public-official ID card 12-3456",
        ],
    );
    let v = d.ra_ok("a2", &["ra", "approve", &id, "--out", "hong.pem"]);
    assert_eq!(v["request"]["status"], "issued", "{v}");
    assert_eq!(v["request"]["identity"]["method"], "face-to-face");
    d.env.verify("hong.pem");
    let serial = v["certificate"]["serial"].as_str().unwrap().to_string();
    // An official's certificate (clientAuth, from the RA's root) is no operator's:
    // refused, and audited at most once a second, so holders cannot flood the log.
    let chain = std::fs::read_to_string(d.env.path("hong.pem")).unwrap()
        + &std::fs::read_to_string(d.env.path("mois.pem")).unwrap();
    std::fs::write(d.env.path("hong.chain.pem"), chain).unwrap();
    // Everything held back before is audited first.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (records, counted) = d.unidentified_refusals();
    for _ in 0..5 {
        let (_, out) = d.curl(
            "ra",
            "/v1/whoami",
            Some(("hong.chain.pem", "hong.key")),
            None,
        );
        assert!(
            out.ends_with("403") && out.contains("not an RA operator"),
            "{out}"
        );
    }
    // The ones held back are counted in a record at the end of their second.
    d.unidentified_refusals_reach(counted, 5);
    let audited = d.unidentified_refusals().0 - records;
    assert!(
        (1..=2).contains(&audited),
        "{audited} records of 5 refusals"
    );
    assert_eq!(d.env.serial_of("hong.pem"), serial);

    // The same request replayed: the first request and certificate, no second one.
    let certs = d.certificates();
    let v = d.ra_ok("a1", &submit);
    assert_eq!(v["replayed"], true, "{v}");
    assert_eq!(v["certificate"]["serial"], serial.as_str());
    assert_eq!(d.certificates(), certs);
    // The same key with a different request is refused, and audited with its
    // reason, as a broken CSR is (BR §5.4.1: rejected requests are logged; issue
    // 28, point 10).
    let refusals = d.refusals();
    let (other, csr2) = official(&d, "hong2", A);
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "hong-1",
            "--profile",
            "official-sign",
            "--subject",
            &other,
            "--csr",
            &csr2,
        ],
        "conflict",
    );
    assert!(detail.contains("different request"), "{detail}");
    let pem = std::fs::read_to_string(d.env.path(&csr2)).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = openssl::base64::decode_block(&b64).unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    std::fs::write(
        d.env.path("broken.csr"),
        format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            openssl::base64::encode_block(&der)
        ),
    )
    .unwrap();
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "broken-1",
            "--profile",
            "official-sign",
            "--subject",
            &other,
            "--csr",
            "broken.csr",
        ],
        "bad_signature",
    );
    assert!(detail.contains("signature"), "{detail}");
    assert_eq!(d.refusals(), refusals + 2);
    let kinds: Vec<String> = d
        .refusal_records()
        .iter()
        .map(|e| {
            let detail: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
            format!("{} {}", e["actor"], detail["kind"])
        })
        .collect();
    for kind in ["conflict", "bad_signature"] {
        assert!(
            kinds.iter().any(|k| k.contains("a1") && k.contains(kind)),
            "{kind}: {kinds:?}"
        );
    }

    // An operator of RA B asking for a subject of institution A.
    let (certs, refusals) = (d.certificates(), d.refusals());
    let detail = d.ra_refused(
        "b1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "x-1",
            "--profile",
            "official-km",
            "--subject",
            &subject,
            "--csr",
            &csr,
        ],
        "unauthorized",
    );
    assert!(
        detail.contains("outside the institutions of RA `B`"),
        "{detail}"
    );
    // A profile outside the RA's scope.
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "x-2",
            "--profile",
            "institution-sign",
            "--subject",
            &subject,
            "--csr",
            &csr,
        ],
        "unauthorized",
    );
    assert!(detail.contains("outside the scope of RA `A`"), "{detail}");
    assert_eq!(d.certificates(), certs);
    assert_eq!(d.refusals(), refusals + 2);

    // No client certificate: refused by the RA and by the CA.
    let (code, out) = d.curl("ra", "/v1/whoami", None, None);
    assert_eq!(code, 0);
    assert!(
        out.ends_with("403") && out.contains("\"unauthorized\""),
        "{out}"
    );
    let (_, out) = d.curl("ca", "/v1/certificates", None, Some("{}"));
    assert!(
        out.ends_with("403") && out.contains("requires a client certificate"),
        "{out}"
    );

    // A certificate from another CA: the handshake fails.
    d.env.openssl_ok(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.pem",
        "-subj",
        "/CN=Rogue Operator/O=Government of Korea/C=KR",
        "-days",
        "30",
        "-addext",
        "extendedKeyUsage=clientAuth",
    ]);
    let (code, _) = d.curl("ra", "/v1/whoami", Some(("rogue.pem", "rogue.key")), None);
    assert_ne!(
        code, 0,
        "a certificate of another CA must not complete the handshake"
    );

    // An operator's certificate is no RA service: the CA refuses it, and an RA
    // service's certificate asking for a profile outside the RA's scope.
    d.env.openssl_ok(&[
        "pkey",
        "-in",
        "a1.key",
        "-passin",
        "file:outpass",
        "-out",
        "a1.plain.key",
    ]);
    d.env.openssl_ok(&[
        "pkey",
        "-in",
        "ra-host.key",
        "-passin",
        "file:outpass",
        "-out",
        "ra-host.plain.key",
    ]);
    let csr_pem = std::fs::read_to_string(&csr).unwrap();
    let body = serde_json::json!({ "ra": "A", "request_id": "direct-1", "profile": "official-km", "subject": subject, "csr": csr_pem }).to_string();
    let (_, out) = d.curl(
        "ca",
        "/v1/certificates",
        Some(("a1.chain.pem", "a1.plain.key")),
        Some(&body),
    );
    assert!(
        out.ends_with("403") && out.contains("not registered as a client"),
        "{out}"
    );
    let body = serde_json::json!({ "ra": "A", "request_id": "direct-2", "profile": "g-ssl", "subject": subject, "csr": csr_pem }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("403") && out.contains("outside the scope of RA `A`"),
        "{out}"
    );
    // The CA's audit record of the refusal names the operation refused.
    let refused = d.refusal_records();
    let scope = refused
        .iter()
        .find(|e| {
            e["action"] == "ca.refuse"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("outside the scope of RA `A`"))
        })
        .expect("the CA audited the refusal");
    assert_eq!(scope["target"], "issue", "{scope}");
    // The CA replays, too: the RA's request id at the CA gives the certificate it made.
    let body = serde_json::json!({ "ra": "A", "request_id": format!("req-{id}"), "profile": "official-sign", "subject": subject, "csr": csr_pem, "sans": ["email:gildong.hong@mois.go.kr"] }).to_string();
    let certs = d.certificates();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("200") && out.contains(&serial) && out.contains("\"replayed\":true"),
        "{out}"
    );
    // The same request id asking for other SANs is another request: a conflict,
    // not the first certificate.
    let more_sans = body.replace(
        "[\"email:gildong.hong@mois.go.kr\"]",
        "[\"email:gildong.hong@mois.go.kr\",\"email:minister@mois.go.kr\"]",
    );
    assert_ne!(more_sans, body);
    // The same SANs written twice are the same request: its certificate again.
    let twice = body.replace(
        "[\"email:gildong.hong@mois.go.kr\"]",
        "[\"email:gildong.hong@mois.go.kr\",\"email:gildong.hong@mois.go.kr\"]",
    );
    assert_ne!(twice, body);
    let out = d.issue_at_ca_as_ra_host(&twice);
    assert!(
        out.ends_with("200") && out.contains(&serial) && out.contains("\"replayed\":true"),
        "{out}"
    );
    let out = d.issue_at_ca_as_ra_host(&more_sans);
    assert!(
        out.ends_with("409") && out.contains("made for another request"),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);
    // The CA checks the proof of possession itself: a request whose signature
    // does not verify is refused there, whatever the RA host says, and nothing is
    // recorded.
    d.env
        .openssl_ok(&["req", "-in", &csr, "-outform", "DER", "-out", "direct.der"]);
    let mut der = std::fs::read(d.env.path("direct.der")).unwrap();
    let n = der.len();
    der[n - 5] ^= 0x55; // inside the signature value
    std::fs::write(d.env.path("direct-badsig.der"), &der).unwrap();
    d.env.openssl_ok(&[
        "req",
        "-inform",
        "DER",
        "-in",
        "direct-badsig.der",
        "-outform",
        "PEM",
        "-out",
        "direct-badsig.pem",
    ]);
    let bad_pem = std::fs::read_to_string(d.env.path("direct-badsig.pem")).unwrap();
    let bad = serde_json::json!({ "ra": "A", "request_id": "direct-badsig", "profile": "official-sign", "subject": subject, "csr": bad_pem, "sans": ["email:gildong.hong@mois.go.kr"] }).to_string();
    let out = d.issue_at_ca_as_ra_host(&bad);
    assert!(
        out.ends_with("400")
            && out.contains("bad_signature")
            && out.contains("proof of possession"),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);

    // A SAN outside the RA's domains, at the RA and at the CA.
    let (certs, refusals) = (d.certificates(), d.refusals());
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "x-3",
            "--profile",
            "official-sign",
            "--subject",
            &subject,
            "--csr",
            &csr,
            "--san",
            "email:gildong.hong@moe.go.kr",
        ],
        "unauthorized",
    );
    assert!(detail.contains("outside the domains of RA `A`"), "{detail}");
    let body = serde_json::json!({ "ra": "A", "request_id": "direct-3", "profile": "official-km", "subject": subject, "csr": csr_pem, "sans": ["dns:www.moe.go.kr"] }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("403") && out.contains("outside the domains"),
        "{out}"
    );
    // A CSR cannot carry a SAN past the scope check and the approver: every SAN it
    // asks for must be named in the request, at the RA and at the CA.
    d.env.openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "sneaky.key",
        "-out",
        "sneaky.csr",
        "-subj",
        "/C=KR/O=Government of Korea/OU=Ministry of the Interior and Safety/OU=people/CN=Hong Gildong(001234567)",
        "-addext",
        "subjectAltName=email:minister@moe.go.kr",
    ]);
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "x-4",
            "--profile",
            "official-km",
            "--subject",
            &subject,
            "--csr",
            "sneaky.csr",
            "--san",
            "email:gildong.hong@mois.go.kr",
        ],
        "unauthorized",
    );
    assert!(detail.contains("the CSR asks for SAN"), "{detail}");
    let sneaky = std::fs::read_to_string(d.env.path("sneaky.csr")).unwrap();
    let body = serde_json::json!({ "ra": "A", "request_id": "direct-4", "profile": "official-sign", "subject": subject, "csr": sneaky, "sans": ["email:gildong.hong@mois.go.kr"] }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("403") && out.contains("the CSR asks for SAN"),
        "{out}"
    );
    // The CA's request id names one request: reused for another, a conflict; and
    // it has no `:`, which separates it from the RA's name.
    let csr2_pem = std::fs::read_to_string(&csr2).unwrap();
    let body = serde_json::json!({ "ra": "A", "request_id": format!("req-{id}"), "profile": "official-sign", "subject": other, "csr": csr2_pem }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("409") && out.contains("another request"),
        "{out}"
    );
    let body = serde_json::json!({ "ra": "A", "request_id": "B:x", "profile": "official-km", "subject": subject, "csr": csr_pem }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(out.ends_with("400") && out.contains("request_id"), "{out}");
    // The RA's renewal window holds at the CA too: a fresh certificate asked
    // renewed directly by the RA host is refused.
    let early =
        serde_json::json!({ "ra": "A", "request_id": "early-1", "serial": serial }).to_string();
    let out = d
        .curl(
            "ca",
            "/v1/certificates/renew",
            Some(("ra-host.chain.pem", "ra-host.plain.key")),
            Some(&early),
        )
        .1;
    assert!(
        out.ends_with("422") && out.contains("may be renewed from") && out.contains("RA `A`"),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);
    // Four refused for scope, the conflict, the malformed id and the early
    // renewal: each audited.
    assert_eq!(d.refusals(), refusals + 7);

    // Renewal opens 400 days before expiry here; a two-year certificate just issued
    // is refused, and nothing is recorded (dev_ra.rs renews inside the window).
    let certs = d.certificates();
    let detail = d.ra_refused(
        "a2",
        &[
            "ra",
            "renew",
            "--idempotency-key",
            "hong-renew",
            "--serial",
            &serial,
        ],
        "policy_violation",
    );
    assert!(detail.contains("may be renewed from"), "{detail}");
    assert_eq!(d.certificates(), certs);

    // Under dual control, an administrator's enrolment waits for a second
    // administrator: not the submitter, not a plain operator.
    let a5 = format!("CN=Operator a5(000000005), OU=RA, {A}");
    d.env.ok(&[
        "key",
        "new",
        "--key-out",
        "a5.key",
        "--subject",
        &a5,
        "--csr-out",
        "a5.csr",
    ]);
    let enrol = [
        "ra",
        "operator",
        "enrol",
        "--idempotency-key",
        "enrol-a5",
        "--name",
        "a5",
        "--subject",
        &a5,
        "--csr",
        "a5.csr",
        "--out",
        "a5.chain.pem",
    ];
    let detail = d.ra_refused("a2", &enrol, "unauthorized");
    assert!(detail.contains("not an administrator"), "{detail}");
    let v = d.ra_ok("a1", &enrol);
    assert_eq!(v["request"]["status"], "submitted", "{v}");
    assert_eq!(v["request"]["kind"], "enrol", "{v}");
    let enrol_id = v["request"]["id"].to_string();
    // A plain operator can neither reject it nor get an ra-operator certificate
    // by a plain submission.
    let detail = d.ra_refused(
        "a2",
        &["ra", "reject", &enrol_id, "--reason", "no"],
        "unauthorized",
    );
    assert!(detail.contains("not an administrator"), "{detail}");
    let detail = d.ra_refused(
        "a2",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "sneaky-op",
            "--profile",
            "ra-operator",
            "--subject",
            &a5,
            "--csr",
            "a5.csr",
        ],
        "unauthorized",
    );
    assert!(detail.contains("enrolled by administrators"), "{detail}");
    let detail = d.ra_refused("a1", &["ra", "approve", &enrol_id], "unauthorized");
    assert!(detail.contains("dual control"), "{detail}");
    let detail = d.ra_refused("a2", &["ra", "approve", &enrol_id], "unauthorized");
    assert!(detail.contains("not an administrator"), "{detail}");
    let v = d.ra_ok("a3", &["ra", "approve", &enrol_id]);
    assert_eq!(v["request"]["status"], "issued", "{v}");
    assert_eq!(v["operator"]["name"], "a5", "{v}");
    // The submitter's replay hands over the certificate with its chain.
    d.ra_ok("a1", &enrol);
    assert_eq!(
        std::fs::read_to_string(d.env.path("a5.chain.pem"))
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let who = d.ra_ok("a5", &["ra", "whoami"]);
    assert_eq!(who["operator"]["name"], "a5", "{who}");
    let a5_id = who["operator"]["id"].to_string();
    // Suspended, a5 is refused at once; activated, served again.
    d.ra_ok("a1", &["ra", "operator", "suspend", &a5_id]);
    let refusals = d.refusals();
    let detail = d.ra_refused("a5", &["ra", "whoami"], "unauthorized");
    assert!(detail.contains("suspended"), "{detail}");
    // A known certificate's refusals are audited every time, under its name.
    d.ra_refused("a5", &["ra", "whoami"], "unauthorized");
    assert_eq!(d.refusals(), refusals + 2);
    d.ra_ok("a1", &["ra", "operator", "activate", &a5_id]);
    d.ra_ok("a5", &["ra", "whoami"]);
    // A plain operator cannot revoke an operator's certificate.
    let a5_serial = d.env.serial_of("a5.chain.pem");
    let detail = d.ra_refused(
        "a2",
        &[
            "ra",
            "revoke",
            "--idempotency-key",
            "rev-a5",
            "--serial",
            &a5_serial,
            "--reason",
            "affiliationChanged",
        ],
        "unauthorized",
    );
    assert!(detail.contains("not an administrator"), "{detail}");
    d.ra_ok("a5", &["ra", "whoami"]);

    // A revoked operator certificate is refused within a second of its
    // revocation in the store (here by the offline CLI, not through the service,
    // whose cache of callers keeps an answer for at most auth_cache_ms = 500).
    let a2_serial = d.env.serial_of("a2.pem");
    d.ra_ok("a2", &["ra", "requests"]);
    d.env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        &a2_serial,
        "--reason",
        "affiliationChanged",
    ]);
    let revoked = std::time::Instant::now();
    let detail = d.ra_refused_within_a_second("a2", &["ra", "requests"], "unauthorized", revoked);
    assert!(detail.contains("revoked"), "{detail}");
    // Revoked already at the CA, a2's certificate revoked through the RA is done:
    // the CA's conflict carries the reason `already_revoked`, which the RA acts on.
    let done = d.ra_ok(
        "a1",
        &[
            "ra",
            "revoke",
            "--idempotency-key",
            "rev-a2",
            "--serial",
            &a2_serial,
            "--reason",
            "affiliationChanged",
        ],
    );
    assert_eq!(done["request"]["status"], "revoked", "{done}");
    assert_eq!(done["certificate"]["status"], "revoked", "{done}");
    // A client retrying in a loop does not flood the audit log: its refusals are
    // audited at most once a second, with a count.
    d.env.openssl_ok(&[
        "pkey",
        "-in",
        "a2.key",
        "-passin",
        "file:outpass",
        "-out",
        "a2.plain.key",
    ]);
    // Once the refusals above are all audited, eight more in a row make at most
    // a record a second, and count all eight.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (records, counted) = d.unidentified_refusals();
    let url = format!("https://ra.gpki.go.kr:{}/v1/whoami", d.ra.port);
    let o = Command::new("curl")
        .current_dir(d.env.path(""))
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "\ncode=%{http_code}\n",
            "--cacert",
            "root.pem",
        ])
        .args([
            "--cert",
            "a2.chain.pem",
            "--key",
            "a2.plain.key",
            "--resolve",
        ])
        .arg(format!("ra.gpki.go.kr:{}:127.0.0.1", d.ra.port))
        .args([&url, &url, &url, &url, &url, &url, &url, &url])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("code=403").count(), 8, "{out}");
    d.unidentified_refusals_reach(counted, 8);
    let audited = d.unidentified_refusals().0 - records;
    assert!(
        (1..=3).contains(&audited),
        "{audited} records of 8 refusals"
    );

    // Revocation through the RA reaches the store at once.
    let v = d.ra_ok(
        "a1",
        &[
            "ra",
            "revoke",
            "--idempotency-key",
            "rev-1",
            "--serial",
            &serial,
            "--reason",
            "keyCompromise",
            "--identity-method",
            "contact-free",
            "--identity-document",
            "mobile ID",
        ],
    );
    assert_eq!(v["request"]["status"], "revoked", "{v}");
    let shown = d
        .env
        .json(&["cert", "show", "--ca", "mois", "--serial", &serial]);
    assert_eq!(shown["status"], "revoked", "{shown}");

    // An operator suspended by an admin is refused; reactivated, served again.
    let ops = d.ra_ok("a1", &["ra", "operator", "list"]);
    let a2 = ops["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "a2")
        .unwrap()["id"]
        .to_string();
    d.ra_ok("a1", &["ra", "operator", "suspend", &a2]);
    let detail = d.ra_refused("b1", &["ra", "operator", "suspend", &a2], "not_found");
    assert!(detail.contains("no operator"), "{detail}");

    // A replay is answered with what the first call made even when the call
    // itself would now be refused: here the issuing CA has since been put on
    // hold, which stops it signing anything new. RA C issues from a CA of its
    // own, so the hold leaves the services' certificates (from mois) in force.
    d.env.ok(&[
        "ca",
        "create",
        "--parent",
        "root",
        "--name",
        "late",
        "--subject",
        "CN=Test Late CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p256",
        "--path-len",
        "0",
        "--out",
        "late.pem",
    ]);
    d.env.ok(&[
        "ra",
        "create",
        "--name",
        "C",
        "--ca",
        "late",
        "--subtree",
        A,
        "--profiles",
        "official-sign",
        "--renew-window-days",
        "400",
        "--host",
        "ra-host-1",
    ]);
    let (subject, csr) = official(&d, "late", A);
    let body = serde_json::json!({ "ra": "C", "request_id": "late-1", "profile": "official-sign", "subject": subject, "csr": std::fs::read_to_string(&csr).unwrap() }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(out.ends_with("201"), "{out}");
    let first: Value = serde_json::from_str(out.rsplit_once('\n').unwrap().0).unwrap();
    let serial = first["serial"].as_str().unwrap();
    let late = d.env.serial_of("late.pem");
    d.env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "root",
        "--serial",
        &late,
        "--reason",
        "certificateHold",
    ]);
    let certs = d.certificates();
    let fresh = body.replace("late-1", "late-2");
    let out = d.issue_at_ca_as_ra_host(&fresh);
    let (reply, status) = out.rsplit_once('\n').unwrap();
    assert!(
        status == "409" && reply.contains("`late`") && reply.contains("hold"),
        "{out}"
    );
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("200") && out.contains(serial) && out.contains("\"replayed\":true"),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);

    // An RA's scope changed from the command line holds within a second (the RA
    // service trusts an operator's standing, RA included, for auth_cache_ms): B
    // loses official-sign, then is suspended; each refusal changes nothing.
    // Reactivated with it, B issues again (no dual control, identity given).
    let (b_subject, b_csr) = official(&d, "b-later", B);
    let b_submit = |key: &str| -> Vec<String> {
        [
            "ra",
            "submit",
            "--idempotency-key",
            key,
            "--profile",
            "official-sign",
            "--subject",
            &b_subject,
            "--csr",
            &b_csr,
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "public-official ID card 98-7654",
        ]
        .map(String::from)
        .to_vec()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let v = d.env.json(&[
        "ra",
        "update",
        "--name",
        "B",
        "--profiles",
        "official-km,ra-operator",
    ]);
    assert_eq!(
        v["ra"]["profiles"],
        serde_json::json!(["official-km", "ra-operator"]),
        "{v}"
    );
    let certs = d.certificates();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let detail = d.ra_refused("b1", &args(&b_submit("b-later-1")), "unauthorized");
    assert!(detail.contains("outside the scope of RA `B`"), "{detail}");
    let v = d.env.json(&[
        "ra",
        "update",
        "--name",
        "B",
        "--suspend",
        "--profiles",
        "official-sign,official-km,ra-operator",
    ]);
    assert_eq!(v["ra"]["status"], "suspended", "{v}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let detail = d.ra_refused("b1", &args(&b_submit("b-later-2")), "unauthorized");
    assert!(detail.contains("suspended"), "{detail}");
    assert_eq!(d.certificates(), certs);
    // Nothing to change, and a change the CLI cannot check: refused.
    let r = d.env.fails(&["ra", "update", "--name", "B", "--suspend"]);
    assert!(r.stderr.contains("already as asked"), "{}", r.stderr);
    let r = d.env.fails(&[
        "ra",
        "update",
        "--name",
        "B",
        "--profiles",
        "no-such-profile",
    ]);
    assert!(r.stderr.contains("no-such-profile"), "{}", r.stderr);
    d.env.json(&["ra", "update", "--name", "B", "--activate"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let v = d.ra_ok("b1", &args(&b_submit("b-later-3")));
    assert_eq!(v["request"]["status"], "issued", "{v}");
    let audit = d.env.json(&["audit", "log", "--limit", "1000000"]);
    let updates: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "ra.update" && e["target"] == "ra:B")
        .collect();
    assert_eq!(updates.len(), 3, "{updates:?}");
    let suspended = |e: &&&Value| {
        let detail: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
        detail["status"]["to"] == "suspended"
    };
    assert_eq!(updates.iter().filter(suspended).count(), 1, "{updates:?}");

    // The audit chain is intact after all of it, and anchored by the checkpoints
    // the CA service signs on its schedule (issue 28, point 8).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let verified = d.env.json(&["audit", "verify"]);
    assert!(
        verified["anchoring"]["checkpoints"].as_i64().unwrap() >= 2
            && verified["anchoring"]["anchored_seq"].as_i64().unwrap() > 1,
        "{verified}"
    );
    // Health and metrics are behind the mutual TLS: refused without a client
    // certificate, answered with one, and health never shows the store's URL
    // (issue 28, point 12).
    let client = Some(("ra-host.chain.pem", "health.plain.key"));
    for which in ["ca", "ra"] {
        for path in ["/healthz", "/metrics"] {
            let (_, out) = d.curl(which, path, None, None);
            assert!(
                out.ends_with("403") && out.contains("require a client certificate"),
                "{which}{path}: {out}"
            );
        }
        let (_, health) = d.curl(which, "/healthz", client, None);
        assert!(health.ends_with("200"), "{which}: {health}");
        let store = &d.env.store;
        let db = store.rsplit('/').next().unwrap().split('?').next().unwrap();
        assert!(
            !health.contains("store") && !health.contains(db),
            "{which}: {health}"
        );
    }
    let (_, m) = d.curl("ra", "/metrics", client, None);
    assert!(m.contains("gpki_ra_refusals_total"), "{m}");
    let (_, m) = d.curl("ca", "/metrics", client, None);
    assert!(m.ends_with("200"), "{m}");

    // A replay whose recorded certificate cannot be read back (its TBS damaged in
    // the store) is the store's fault: an internal error, not "made for another
    // request", and no second certificate.
    let certs = d.certificates();
    let damaged = damage_tbs(&d.env.store, serial);
    assert_eq!(damaged, 1, "one row damaged");
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("500") && out.contains("\"kind\":\"internal\""),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);
}

/// Overwrites the stored TBS of certificate `serial` with one byte that is no
/// DER; the rows changed.
fn damage_tbs(store: &str, serial: &str) -> usize {
    let out = if let Some(path) = store.strip_prefix("sqlite://") {
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 db = sqlite3.connect(sys.argv[1])\n\
                 n = db.execute(\"UPDATE certificates SET tbs = x'00' WHERE serial = ?\", (sys.argv[2],)).rowcount\n\
                 db.commit()\n\
                 print(n)",
                path.split('?').next().unwrap(),
                serial,
            ])
            .output()
            .unwrap()
    } else {
        Command::new("psql")
            .args([store, "-qtAc"])
            .arg(format!(
                "WITH d AS (UPDATE certificates SET tbs = '\\x00'::bytea WHERE serial = '{serial}' RETURNING 1) SELECT count(*) FROM d"
            ))
            .output()
            .unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn ra_and_ca_services_over_mtls_sqlite() {
    workflow_and_refusals(Backend::Sqlite);
}

#[test]
fn ra_and_ca_services_over_mtls_postgres() {
    workflow_and_refusals(Backend::Postgres);
}

/// `n` officials of institution B in `import.csv`, each with its own P-256 key and
/// CSR (made in-process with OpenSSL) and an identity verification.
fn import_file(env: &Env, n: usize) {
    import_rows(env, "import.csv", 0..n, 0);
}

/// A CSV of officials `rows` in `file`, each with a P-256 CSR: of a fresh key,
/// or of one of `keys` shared keys when that is not 0.
fn import_rows(env: &Env, file: &str, rows: std::ops::Range<usize>, keys: usize) {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509NameBuilder, X509ReqBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    std::fs::create_dir_all(env.path("csr")).unwrap();
    let mut csv = String::from("request_id,subject,csr,identity_method,identity_document\n");
    let fresh = || PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let shared: Vec<_> = (0..keys).map(|_| fresh()).collect();
    for i in rows {
        let cn = format!("Official {i}({:09})", 100_000_000 + i);
        let key = match keys {
            0 => fresh(),
            k => shared[i % k].clone(),
        };
        let mut name = X509NameBuilder::new().unwrap();
        for (k, v) in [
            ("C", "KR"),
            ("O", "Government of Korea"),
            ("OU", "Ministry of Education"),
            ("OU", "people"),
            ("CN", cn.as_str()),
        ] {
            name.append_entry_by_text(k, v).unwrap();
        }
        let mut req = X509ReqBuilder::new().unwrap();
        req.set_subject_name(&name.build()).unwrap();
        req.set_pubkey(&key).unwrap();
        req.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        std::fs::write(
            env.path(&format!("csr/moe-{i}.csr")),
            req.build().to_pem().unwrap(),
        )
        .unwrap();
        csv += &format!(
            "moe-{i},\"CN={cn}, OU=people, {B}\",csr/moe-{i}.csr,face-to-face,public-official ID {i}\n"
        );
    }
    std::fs::write(env.path(file), csv).unwrap();
}

/// The first JSON document of a command's output (an import that fails prints its
/// report, then the error).
fn first_json(out: &str) -> Value {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .next()
        .unwrap_or_else(|| panic!("no JSON in {out}"))
        .unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Issued certificates of the imported officials, by subject: each must appear
/// exactly once.
fn imported(d: &Deployment) -> std::collections::HashMap<String, usize> {
    let v = d.env.json(&[
        "cert",
        "list",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--status",
        "issued",
        "--limit",
        "100000",
    ]);
    let mut by_subject = std::collections::HashMap::new();
    for c in v.as_array().unwrap() {
        let subject = c["subject"].as_str().unwrap().to_string();
        if subject.contains("Ministry of Education") {
            *by_subject.entry(subject).or_insert(0) += 1;
        }
    }
    by_subject
}

/// Issue 10's fault test: the CA service is killed in the middle of a bulk
/// import and started again; rerunning the same file finishes the import, nothing
/// is issued twice, and the audit chain verifies.
fn import_survives_a_killed_ca(backend: Backend) {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(mut d) = Deployment::start(backend) else {
        return;
    };
    let rows = 150;
    import_file(&d.env, rows);
    let import = [
        "ra",
        "import",
        "--csv",
        "import.csv",
        "--profile",
        "official-sign",
    ];
    // The CA dies (abort: no clean shutdown) on its 31st issuance, between
    // recording the certificate and signing it: that row (and any other in
    // flight) is left pending.
    d.restart_ca(&[("GPKI_FAILPOINT", "after-record@31")]);
    let o = d
        .ra_command("b1", &[&import[..], &["--concurrency", "4"]].concat())
        .output()
        .unwrap();
    assert!(d.ca.process.has_exited(), "the CA did not die");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let first = first_json(&out);
    eprintln!(
        "import with the CA killed: {} issued, {} failed",
        first["issued"],
        first["failed"].as_array().map(Vec::len).unwrap_or(0)
    );
    // With 4 in flight, up to 3 answers besides the 31st may be lost with the CA.
    let issued_first = first["issued"].as_u64().unwrap();
    assert!((27..=30).contains(&issued_first), "{first}");
    assert_eq!(
        first["failed"].as_array().unwrap().len() as u64,
        rows as u64 - issued_first,
        "{first}"
    );
    assert!(
        first["failed"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] == "unavailable"),
        "{first}"
    );
    let pending = d
        .env
        .json(&["cert", "list", "--ca", "mois", "--status", "pending"]);
    let pending = pending.as_array().unwrap().len();
    assert!((1..=4).contains(&pending), "{pending} pending rows");

    // Started again (after the stale-pending age of 1 s), the same file finishes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    d.ca = spawn(&d.env, "gpki-ca", "ca.toml", d.ca.port);
    let o = d.ra_command("b1", &import).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let second: Value = serde_json::from_str(&out).unwrap();
    eprintln!(
        "rerun: {} issued, {} done before; audit: {} pending rows abandoned",
        second["issued"],
        second["already_done"],
        d.env
            .json(&["audit", "log", "--limit", "1000000"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "cert.abandon")
            .count()
    );
    assert_eq!(second["failed"].as_array().unwrap().len(), 0, "{second}");
    assert_eq!(
        second["issued"].as_u64().unwrap() + second["already_done"].as_u64().unwrap(),
        rows as u64,
        "{second}"
    );
    assert_eq!(second["already_done"], issued_first, "{second}");
    // The pending row was abandoned (its serial unsigned, reserved), not signed.
    let abandoned = d
        .env
        .json(&["cert", "list", "--ca", "mois", "--status", "abandoned"]);
    assert_eq!(abandoned.as_array().unwrap().len(), pending, "{abandoned}");
    // Every official once: nothing issued twice, nothing lost.
    let by_subject = imported(&d);
    assert_eq!(by_subject.len(), rows, "{by_subject:?}");
    assert!(by_subject.values().all(|n| *n == 1), "{by_subject:?}");
    // A third run submits nothing new.
    let certs = d.certificates();
    let third = d.ra_ok("b1", &import);
    assert_eq!(third["already_done"], rows, "{third}");
    assert_eq!(d.certificates(), certs);
    d.env.ok(&["audit", "verify"]);
}

#[test]
fn ra_import_survives_a_killed_ca_sqlite() {
    import_survives_a_killed_ca(Backend::Sqlite);
}

#[test]
fn ra_import_survives_a_killed_ca_postgres() {
    import_survives_a_killed_ca(Backend::Postgres);
}

/// Issue 10's load test: 1,000 issuance requests at once through RA and CA on
/// PostgreSQL. Every one is answered, each official gets exactly one certificate,
/// and the serials are distinct (the store's unique index would refuse a
/// duplicate; this counts them). The officials share 8 keys and the CA's writer
/// runs 3 groups at once, each taking the key locks of its recordings: in one
/// order, so the database reports no deadlock.
#[test]
fn ra_thousand_concurrent_issuances_postgres() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(mut d) = Deployment::start(Backend::Postgres) else {
        return;
    };
    d.restart_ca(&[("GPKI_STORE_WRITER_LANES", "3")]);
    let rows = 1000;
    import_rows(&d.env, "import.csv", 0..rows, 8);
    let o = d
        .ra_command(
            "b1",
            &[
                "ra",
                "import",
                "--csv",
                "import.csv",
                "--profile",
                "official-sign",
                "--concurrency",
                "1000",
            ],
        )
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["issued"], rows, "{report}");
    let by_subject = imported(&d);
    assert_eq!(by_subject.len(), rows);
    assert!(by_subject.values().all(|n| *n == 1));
    let v = d.env.json(&[
        "cert",
        "list",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--limit",
        "100000",
    ]);
    let serials: std::collections::HashSet<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(serials.len(), v.as_array().unwrap().len());
    let listed = d.ra_ok(
        "b1",
        &["ra", "requests", "--status", "issued", "--limit", "10000"],
    );
    assert_eq!(listed["requests"].as_array().unwrap().len(), rows);

    // The server drops every connection the services hold (a restart, a
    // failover, an idle timeout on the way). Pooled connections idle past a
    // second are checked before use, so the next request is answered on new ones
    // instead of failing on a dead one.
    runtime().block_on(sql(
        &d.env.store,
        &["SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
           WHERE datname = current_database() AND pid <> pg_backend_pid()"],
    ));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // A backend reports its statistics as it exits, so the count is complete.
    let deadlocks: i64 = runtime().block_on(async {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&d.env.store)
            .await
            .unwrap();
        sqlx::query_scalar(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    });
    assert_eq!(deadlocks, 0, "deadlocks in the load test's database");
    import_rows(&d.env, "after.csv", rows..rows + 1, 0);
    let after = d.ra_ok(
        "b1",
        &[
            "ra",
            "import",
            "--csv",
            "after.csv",
            "--profile",
            "official-sign",
        ],
    );
    assert_eq!(after["issued"], 1, "{after}");
}

/// Issue 10, point 7: the OCSP responder renews its own certificate through the CA
/// service (a service client of role ocsp), and answers throughout the swap; it
/// never opens a CA key. Other roles and other profiles are refused.
#[test]
fn responder_renews_its_certificate_through_the_ca_service() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(mut d) = Deployment::start(Backend::Sqlite) else {
        return;
    };
    let env = &d.env;
    env.ok(&[
        "ocsp",
        "issue-signer",
        "--ca",
        "mois",
        "--cert-out",
        "ocsp-mois.pem",
        "--key-out",
        "ocsp-mois.key",
    ]);
    let first_signer = env.serial_of("ocsp-mois.pem");
    std::fs::copy(env.path("ocsp-mois.key"), env.path("first-signer.key")).unwrap();
    std::fs::copy(env.path("ocsp-mois.pem"), env.path("first-signer.pem")).unwrap();
    let host = signer_host(&d, "ocsp-host", "ocsp");
    // Refused: an RA service renewing a signer, and an ocsp client renewing what
    // is not a responder certificate.
    for (cert, key, serial, want) in [
        (
            "ra-host",
            "ra-host",
            first_signer.as_str(),
            "only ocsp and tsa clients",
        ),
        (
            "ocsp-host",
            "ocsp-host",
            host.as_str(),
            "ocsp clients renew ocsp-signer",
        ),
    ] {
        env.openssl_ok(&[
            "pkey",
            "-in",
            &format!("{key}.key"),
            "-passin",
            "file:outpass",
            "-out",
            &format!("{key}.plain.key"),
        ]);
        let body = serde_json::json!({ "ca": "mois", "serial": serial, "csr": "", "proof": "" })
            .to_string();
        let (_, out) = d.curl(
            "ca",
            "/v1/signers/renew",
            Some((&format!("{cert}.chain.pem"), &format!("{key}.plain.key"))),
            Some(&body),
        );
        assert!(out.ends_with("403") && out.contains(want), "{out}");
    }
    let port = free_port();
    std::fs::write(
        env.path("ocsp.toml"),
        format!(
            "store = \"{}\"\nlisten = \"127.0.0.1:{port}\"\nkey_pass_file = \"pass\"\n\
             [[ca]]\nname = \"mois\"\ncert = \"ocsp-mois.pem\"\nkey = \"ocsp-mois.key\"\n{}",
            env_store(env),
            renewal_toml(&d, "ocsp-host")
        ),
    )
    .unwrap();
    let _responder = http_service(env, "gpki-ocsp", "ocsp.toml", port);
    // Ask without pause while the responder renews: every answer verifies and
    // says good, first from the old signer, then from the new.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut answers = 0;
    let new_signer = loop {
        let out = env.openssl_ok(&[
            "ocsp",
            "-issuer",
            "mois.pem",
            "-cert",
            "ocsp-host.pem",
            "-CAfile",
            "root.pem",
            "-url",
            &format!("http://127.0.0.1:{port}/ocsp"),
            "-resp_text",
        ]);
        answers += 1;
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("ocsp-host.pem: good"), "{out}");
        let signer = out
            .lines()
            .skip_while(|l| l.trim() != "Serial Number:")
            .nth(1)
            .map(|l| l.trim().replace(':', "").to_ascii_lowercase())
            .unwrap_or_default();
        if !signer.is_empty() && signer != first_signer {
            break signer;
        }
        assert!(std::time::Instant::now() < deadline, "never renewed: {out}");
    };
    eprintln!("{answers} answers before the new signer");
    // The same signer renewed again (for another key) is refused: one renewal per
    // certificate. A signer of another CA cannot be had without its key.
    for ca in ["root", "mois"] {
        let name = if ca == "root" {
            "ocsp-root"
        } else {
            "ocsp-mois-b"
        };
        env.ok(&[
            "ocsp",
            "issue-signer",
            "--ca",
            ca,
            "--cert-out",
            &format!("{name}.pem"),
            "--key-out",
            &format!("{name}.key"),
        ]);
    }
    let (_, other_csr) = official(&d, "other-signer", B);
    let other_csr = std::fs::read(&other_csr).unwrap();
    let renewal = |ca: &str, cert: &str, signing_key: &str| {
        signer_renewal_request(&d, ca, cert, signing_key, &other_csr)
    };
    // The new key waited in KEY.next until the pair was in place, then went.
    assert!(!env.path("ocsp-mois.key.next").exists());
    let out = renewal("mois", "first-signer.pem", "first-signer.key");
    assert!(
        out.ends_with("409") && out.contains("renewed already"),
        "{out}"
    );
    let out = renewal("mois", "ocsp-mois-b.pem", "first-signer.key");
    assert!(
        out.ends_with("403") && out.contains("not signed by that certificate's key"),
        "{out}"
    );
    // The files on disk are the new pair; the store holds the new certificate,
    // renewed from the first, issued by the CA service for the ocsp client.
    assert_eq!(env.serial_of("ocsp-mois.pem"), new_signer);
    let shown = env.json(&["cert", "show", "--ca", "mois", "--serial", &new_signer]);
    assert_eq!(shown["profile"], "ocsp-signer", "{shown}");
    assert_eq!(shown["status"], "issued", "{shown}");
    let audit = env.json(&["audit", "log", "--limit", "1000000"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "signer:ocsp-host-1"),
        "the renewal is audited as the ocsp client"
    );
    env.ok(&["audit", "verify"]);

    // The online CA service never signs with the root: the root's responder
    // certificate, asked by a client holding the responder's key with a request
    // the CA would otherwise sign, is refused as offline and records nothing.
    let files = d.env.path(".");
    let next_request = |signer: &str| {
        let current =
            openssl::x509::X509::from_pem(&std::fs::read(files.join(signer)).unwrap()).unwrap();
        let fresh = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut req = openssl::x509::X509ReqBuilder::new().unwrap();
        req.set_subject_name(current.subject_name()).unwrap();
        req.set_pubkey(&fresh).unwrap();
        req.sign(&fresh, openssl::hash::MessageDigest::sha256())
            .unwrap();
        req.build().to_pem().unwrap()
    };
    let before = d.certificates();
    let root_csr = next_request("ocsp-root.pem");
    let out = signer_renewal_request(&d, "root", "ocsp-root.pem", "ocsp-root.key", &root_csr);
    assert!(
        out.ends_with("403") && out.contains("CA `root` is offline"),
        "{out}"
    );
    assert_eq!(d.certificates(), before, "a refusal records nothing");
    // The second route to the root: an RA of it. `gpki ra create --ca root` is
    // refused, and an RA row pointed at the root past that gets nothing from the
    // CA service, which refuses before it opens a key.
    let r = env.fails(&[
        "ra",
        "create",
        "--name",
        "R",
        "--ca",
        "root",
        "--subtree",
        B,
        "--profiles",
        "ocsp-signer",
        "--host",
        "ra-host-1",
    ]);
    assert!(r.stderr.contains("CA `root` is offline"), "{}", r.stderr);
    runtime().block_on(sql(
        &env.store,
        &["UPDATE ras SET ca_name = 'root' WHERE name = 'B'"],
    ));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (subject, csr) = official(&d, "rooted", B);
    let detail = d.ra_refused(
        "b1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "rooted-1",
            "--profile",
            "official-sign",
            "--subject",
            &subject,
            "--csr",
            &csr,
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "public official ID card",
        ],
        "unauthorized",
    );
    assert!(detail.contains("CA `root` is offline"), "{detail}");
    assert_eq!(d.certificates(), before, "nothing signed by the root");
    runtime().block_on(sql(
        &env.store,
        &["UPDATE ras SET ca_name = 'mois' WHERE name = 'B'"],
    ));
    // Nor does a CA name the store does not know get further than its name.
    let out = signer_renewal_request(
        &d,
        "no-such-ca",
        "ocsp-root.pem",
        "ocsp-root.key",
        &root_csr,
    );
    assert!(
        out.ends_with("404") && out.contains("no CA named `no-such-ca`"),
        "{out}"
    );

    // A signer is renewed only within signer_renewal_days of its end: with a
    // window of one day, a responder certificate (30 days to run) is refused,
    // though its request (a new key, the same subject, proven by the current
    // key) is otherwise one the CA would sign.
    let ca_toml = std::fs::read_to_string(d.env.path("ca.toml")).unwrap();
    std::fs::write(
        d.env.path("ca.toml"),
        ca_toml.replace("signer_renewal_days = 3650", "signer_renewal_days = 1"),
    )
    .unwrap();
    d.restart_ca(&[]);
    let csr = next_request("ocsp-mois-b.pem");
    let out = signer_renewal_request(&d, "mois", "ocsp-mois-b.pem", "ocsp-mois-b.key", &csr);
    assert!(
        out.ends_with("422")
            && out.contains("may be renewed from")
            && out.contains("1 days before it expires"),
        "{out}"
    );
    assert_eq!(
        d.certificates(),
        before,
        "a refused renewal records nothing"
    );
    // The same request, with the window open again, is signed: the window alone
    // refused it.
    std::fs::write(d.env.path("ca.toml"), &ca_toml).unwrap();
    d.restart_ca(&[]);
    let out = signer_renewal_request(&d, "mois", "ocsp-mois-b.pem", "ocsp-mois-b.key", &csr);
    assert!(out.ends_with("201"), "{out}");
    assert_eq!(d.certificates(), before + 1);
}

/// `POST /v1/signers/renew` as the ocsp client `ocsp-host`: the next certificate of
/// the signer certificate in file `cert` (of CA `ca`) for the key of `csr_pem`,
/// proven by the key in file `signing_key`; curl's output and status.
fn signer_renewal_request(
    d: &Deployment,
    ca: &str,
    cert: &str,
    signing_key: &str,
    csr_pem: &[u8],
) -> String {
    use openssl::pkey::PKey;
    let env = &d.env;
    let pass = std::fs::read_to_string(env.path("pass")).unwrap();
    let key = PKey::private_key_from_pem_passphrase(
        &std::fs::read(env.path(signing_key)).unwrap(),
        pass.trim().as_bytes(),
    )
    .unwrap();
    let csr = openssl::x509::X509Req::from_pem(csr_pem).unwrap();
    let spki = csr.public_key().unwrap().public_key_to_der().unwrap();
    let cert_der = openssl::x509::X509::from_pem(&std::fs::read(env.path(cert)).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let message = format!(
        "gpki signer renewal request v1\ncertificate-sha256: {}\nnew-key-sha256: {}\n",
        hex::encode(openssl::sha::sha256(&cert_der)),
        hex::encode(openssl::sha::sha256(&spki))
    );
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    let proof = hex::encode(signer.sign_oneshot_to_vec(message.as_bytes()).unwrap());
    let serial = env.serial_of(cert);
    let body = serde_json::json!({ "ca": ca, "serial": serial, "csr": String::from_utf8(csr_pem.to_vec()).unwrap(), "proof": proof }).to_string();
    d.curl(
        "ca",
        "/v1/signers/renew",
        Some(("ocsp-host.chain.pem", "ocsp-host.plain.key")),
        Some(&body),
    )
    .1
}

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

/// Issue 10, point 7 for the TSA: it renews its certificate through the CA service
/// (role tsa, proven by its current key) and keeps stamping through the swap; the
/// tokens after it are signed by the new certificate and verify with OpenSSL.
#[test]
fn tsa_renews_its_certificate_through_the_ca_service() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(d) = Deployment::start(Backend::Sqlite) else {
        return;
    };
    let env = &d.env;
    Deployment::issue(
        env,
        "tsa",
        "tsa",
        "CN=GPKI Time Stamping Authority, OU=GPKI, O=Government of Korea, C=KR",
        &[],
    );
    let first = env.serial_of("tsa.pem");
    signer_host(&d, "tsa-host", "tsa");
    let port = free_port();
    std::fs::write(
        env.path("tsa.toml"),
        format!(
            "store = \"{}\"\nlisten = \"127.0.0.1:{port}\"\nname = \"tsa-1\"\ncert = \"tsa.pem\"\n\
             key = \"tsa.key\"\nkey_pass_file = \"outpass\"\nrequire_clock_sync = false\n{}",
            env_store(env),
            renewal_toml(&d, "tsa-host")
        ),
    )
    .unwrap();
    let _tsa = http_service(env, "gpki-tsa", "tsa.toml", port);
    std::fs::write(env.path("doc.txt"), b"an official document").unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut tokens = 0;
    let new = loop {
        // Every request through the swap is answered.
        env.ok(&[
            "ts", "stamp", "--file", "doc.txt", "--url", &url, "--out", "doc.tsr",
        ]);
        tokens += 1;
        let now = env.serial_of("tsa.pem");
        if now != first {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "never renewed");
    };
    eprintln!("{tokens} tokens before the new certificate was on disk");
    // Once it is in force, tokens carry the new certificate and verify.
    let colons = |hex: &str| {
        hex.to_ascii_lowercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        env.ok(&[
            "ts", "stamp", "--file", "doc.txt", "--url", &url, "--out", "doc.tsr",
        ]);
        env.openssl_ok(&[
            "ts",
            "-reply",
            "-in",
            "doc.tsr",
            "-token_out",
            "-out",
            "doc.tok",
        ]);
        let certs = env.openssl_ok(&[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "doc.tok",
            "-print_certs",
            "-text",
            "-noout",
        ]);
        if certs.contains(&colons(&new)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate never signed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let verified = env.openssl_ok(&[
        "ts",
        "-verify",
        "-data",
        "doc.txt",
        "-in",
        "doc.tsr",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "mois.pem",
    ]);
    assert!(verified.contains("Verification: OK"), "{verified}");
    let shown = env.json(&["cert", "show", "--ca", "mois", "--serial", &new]);
    assert_eq!(shown["profile"], "tsa", "{shown}");
    env.ok(&["audit", "verify"]);
}

/// A delegated signer's host: a service-client certificate `NAME.pem`/`NAME.key`
/// registered as a CA-service client of `role`; returns its serial.
fn signer_host(d: &Deployment, name: &str, role: &str) -> String {
    let serial = Deployment::issue(
        &d.env,
        name,
        "service-client",
        &format!("CN={name}-1, OU=GPKI services, O=Government of Korea, C=KR"),
        &[],
    );
    d.env.ok(&[
        "ra",
        "client",
        "add",
        "--name",
        &format!("{name}-1"),
        "--role",
        role,
        "--ca",
        "mois",
        "--serial",
        &serial,
    ]);
    serial
}

/// The `[renewal]` section of a signer whose host is `name` (before_days 3650:
/// due at once).
fn renewal_toml(d: &Deployment, name: &str) -> String {
    format!(
        "[renewal]\nbefore_days = 3650\ncheck_interval_secs = 3600\nmin_age_secs = 0\n\
         [renewal.ca]\nurl = \"https://127.0.0.1:{}\"\nserver_name = \"ca.gpki.go.kr\"\n\
         cert = \"{name}.chain.pem\"\nkey = \"{name}.key\"\nkey_pass_file = \"outpass\"\nca_file = \"root.pem\"\n",
        d.ca.port
    )
}

/// `BIN serve --config CONFIG` (a plain-HTTP service), answering /healthz.
fn http_service(env: &Env, bin: &str, config: &str, port: u16) -> Service {
    let mut s = Service {
        process: Process::serve(env, bin, config, Stdio::inherit()),
        port,
    };
    s.process
        .wait_http_ok(&format!("http://127.0.0.1:{port}/healthz"), 60);
    s
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
