//! The RA service and the CA service as separate processes over mutual TLS: the
//! issuing workflow, and every refusal of issue 10, each on a real TLS
//! connection, audited, and changing nothing else.

mod changes;
mod import;
mod operators;
mod services;
mod signer_renewal;
mod to_the_ca;
mod workflow;

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
