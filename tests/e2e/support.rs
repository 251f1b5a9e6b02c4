//! The harness: each test gets its own directory and store (a fresh SQLite file, or a
//! fresh PostgreSQL database), runs the real `gpki` binary, and checks results with
//! independent oracles (OpenSSL's command line, pkilint).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod process;
pub use process::{dev_up, Process};

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: String,
    pub backend: Backend,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// Whether an oracle tool is on PATH. Under CI a missing oracle fails the test.
pub fn require(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !in_ci(),
            "oracle `{tool}` is missing, and CI is set: install it (see .ci/run)"
        );
        eprintln!("skipping: oracle `{tool}` is not installed");
    }
    found
}

fn postgres_admin_url() -> Option<String> {
    match std::env::var("GPKI_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(!in_ci(), "GPKI_TEST_POSTGRES_URL is not set, and CI is set: the PostgreSQL half of the suite must run");
            eprintln!("skipping PostgreSQL test: GPKI_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs SQL against a store URL (tests only: tampering, locking).
pub async fn sql(url: &str, statements: &[&str]) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    for s in statements {
        sqlx::Executor::execute(&mut conn, *s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

impl Env {
    /// A fresh environment, or None when the backend is not available outside CI.
    pub fn new(backend: Backend) -> Option<Env> {
        let dir = tempfile::tempdir().unwrap();
        let store = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("gpki.db").display()),
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let db = format!("gpki_t_{}", hex::encode(openssl_rand(8)));
                runtime().block_on(sql(&admin, &[&format!("CREATE DATABASE {db}")]));
                let (base, _) = admin.rsplit_once('/').expect("postgres URL has a database");
                format!("{base}/{db}")
            }
        };
        std::fs::write(dir.path().join("pass"), "correct horse battery staple\n").unwrap();
        std::fs::write(dir.path().join("outpass"), "subscriber pass\n").unwrap();
        Some(Env {
            dir,
            store,
            backend,
        })
    }

    /// A copy of the repository's `policies/` under the env, for a test to edit and
    /// pass as `--policies`.
    pub fn policies_copy(&self) -> PathBuf {
        let dir = self.path("policies");
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies")).unwrap()
        {
            let p = entry.unwrap().path();
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
        dir
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gpki"));
        c.current_dir(self.dir.path())
            .env("GPKI_STORE", &self.store)
            .env("GPKI_DATA_DIR", self.path("data"))
            .env("GPKI_KEY_PASS_FILE", self.path("pass"))
            .env("GPKI_OUT_PASS_FILE", self.path("outpass"))
            .env("GPKI_URL_BASE", "http://pki.test.go.kr")
            .env_remove("GPKI_POLICIES")
            .env_remove("GPKI_FAILPOINT");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().unwrap())
    }

    /// Runs gpki and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "gpki {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// Runs gpki and insists on exit code 1; returns the run.
    pub fn fails(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, 1,
            "gpki {args:?} should fail with 1:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    pub fn counts(&self) -> Value {
        self.json(&["store", "stats"])
    }

    /// A small hierarchy: root `root` (P-384) and subordinate `mois` (P-256,
    /// pathLen 0, constrained to C=KR and go.kr).
    pub fn hierarchy(&self) {
        self.ok(&[
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
        self.ok(&[
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
            "--permit-dn",
            "C=KR",
            "--permit-dns",
            "go.kr",
            "--out",
            "mois.pem",
        ]);
        let chain = std::fs::read_to_string(self.path("mois.pem")).unwrap()
            + &std::fs::read_to_string(self.path("root.pem")).unwrap();
        std::fs::write(self.path("chain.pem"), chain).unwrap();
    }

    /// An official-sign certificate for a generated key (`OUT` and `OUT.key`), issued
    /// by `mois`; returns gpki's JSON about it.
    pub fn issue_official(&self, out: &str) -> Value {
        let key = format!("{out}.key");
        self.json(&[
            "cert", "issue", "--ca", "mois", "--profile", "official-sign", "--subject",
            "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR",
            "--generate-key", "--key-out", &key, "--out", out,
        ])
    }

    pub fn openssl(&self, args: &[&str]) -> Run {
        Run::from(
            Command::new("openssl")
                .current_dir(self.dir.path())
                .args(args)
                .output()
                .unwrap(),
        )
    }

    pub fn openssl_ok(&self, args: &[&str]) -> String {
        let r = self.openssl(args);
        assert_eq!(
            r.code, 0,
            "openssl {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r.stdout + &r.stderr
    }

    /// A key and CSR made by OpenSSL (the requester's side).
    pub fn csr(&self, name: &str, key_alg: &[&str], subject: &str) -> PathBuf {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let mut args = vec!["req", "-new", "-newkey"];
        args.extend(key_alg);
        args.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj", subject]);
        self.openssl_ok(&args);
        self.path(&csr)
    }

    /// `openssl verify -x509_strict` of `cert` against the test hierarchy.
    pub fn verify(&self, cert: &str) {
        let out = self.openssl_ok(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "mois.pem",
            cert,
        ]);
        assert!(out.contains(": OK"), "{out}");
    }

    pub fn serial_of(&self, cert: &str) -> String {
        let out = self.openssl_ok(&["x509", "-in", cert, "-noout", "-serial"]);
        out.trim()
            .trim_start_matches("serial=")
            .to_ascii_lowercase()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            if let (Some(admin), Some((_, db))) = (
                std::env::var("GPKI_TEST_POSTGRES_URL").ok(),
                self.store.rsplit_once('/'),
            ) {
                let db = db.to_string();
                let _ = std::thread::spawn(move || {
                    runtime().block_on(async {
                        sqlx::any::install_default_drivers();
                        if let Ok(mut c) =
                            <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await
                        {
                            let _ = sqlx::Executor::execute(
                                &mut c,
                                format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str(),
                            )
                            .await;
                        }
                    })
                })
                .join();
            }
        }
    }
}

fn openssl_rand(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).unwrap();
    b
}

/// pkilint's verdict at WARNING and above: empty means clean.
pub fn pkilint(tool: &str, extra: &[&str], file: &Path) -> String {
    let mut args = vec!["lint", "-s", "WARNING"];
    args.extend(extra);
    let f = file.display().to_string();
    args.push(&f);
    let o = Command::new(tool).args(&args).output().unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    // The CABF linter prints the detected type on stderr with -o; drop that line.
    text.lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.trim().ends_with("-CERTIFICATE")
                && !l.trim().ends_with("-CA")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Declares two tests, one per backend, each running `$body(&Env)`.
#[macro_export]
macro_rules! both_backends {
    ($sqlite:ident, $postgres:ident, $body:expr) => {
        #[test]
        fn $sqlite() {
            let env = $crate::support::Env::new($crate::support::Backend::Sqlite).unwrap();
            ($body)(&env);
        }
        #[test]
        fn $postgres() {
            if let Some(env) = $crate::support::Env::new($crate::support::Backend::Postgres) {
                ($body)(&env);
            }
        }
    };
}

/// A free TCP port on 127.0.0.1 (bound, then released for the process under test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `gpki-ocsp serve` process, killed on drop.
pub struct Responder {
    pub process: Process,
    pub url: String,
    pub config: PathBuf,
}

impl Responder {
    /// The gpki-ocsp binary, built beside gpki.
    pub fn binary() -> PathBuf {
        Process::binary("gpki-ocsp")
    }

    /// Writes `NAME.toml` for the CAs `cas` (each with `ocsp/CA.crt.pem` and
    /// `ocsp/CA.key.pem` under the env's data dir) against `store`, plus `extra`
    /// lines, and starts the responder on a free port.
    pub fn start(env: &Env, name: &str, store: &str, cas: &[&str], extra: &str) -> Responder {
        Self::start_with(env, name, store, cas, extra, &[])
    }

    /// [`Responder::start`] with environment variables for the process; `extra` may
    /// set `poll_interval_ms` (default 100).
    pub fn start_with(
        env: &Env,
        name: &str,
        store: &str,
        cas: &[&str],
        extra: &str,
        vars: &[(&str, &str)],
    ) -> Responder {
        let port = free_port();
        let data = env.path("data");
        let poll = if extra.contains("poll_interval_ms") {
            ""
        } else {
            "poll_interval_ms = 100\n"
        };
        let mut text = format!(
            "store = \"{store}\"\nlisten = \"127.0.0.1:{port}\"\nkey_pass_file = \"{}\"\n{poll}store_timeout_ms = 500\n{extra}\n",
            env.path("pass").display()
        );
        for ca in cas {
            text += &format!(
                "[[ca]]\nname = \"{ca}\"\ncert = \"{}/ocsp/{ca}.crt.pem\"\nkey = \"{}/ocsp/{ca}.key.pem\"\n",
                data.display(),
                data.display()
            );
        }
        let config = env.path(&format!("{name}-{port}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut process = Process::start(
            "gpki-ocsp",
            Command::new(Self::binary())
                .args(["serve", "--config"])
                .arg(&config)
                .env("GPKI_LOG", "info")
                .envs(vars.iter().copied()),
            Stdio::piped(),
        );
        let url = format!("http://127.0.0.1:{port}");
        process.wait_http_ok(&format!("{url}/healthz"), 60);
        Responder {
            process,
            url,
            config,
        }
    }

    /// Sends SIGHUP: reload the responder files and read the store now.
    pub fn hangup(&self) {
        assert!(self.process.signal("HUP"), "kill -HUP failed");
    }

    /// `/healthz` as JSON.
    pub fn health(&self) -> Value {
        let out = Command::new("curl")
            .args(["-s", &format!("{}/healthz", self.url)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("healthz: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

/// A TCP relay to PostgreSQL that a test can cut (every connection dropped, new
/// ones refused) and restore: a store outage without stopping the shared server.
pub struct CuttableProxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl CuttableProxy {
    pub fn start(target: String) -> CuttableProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut2, conns2) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                {
                    let mut c = conns2.lock().unwrap();
                    c.push(client.try_clone().unwrap());
                    c.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        CuttableProxy { port, cut, conns }
    }

    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A `gpki-tsa serve` process, killed on drop.
pub struct Tsa {
    pub process: Process,
    pub url: String,
}

impl Tsa {
    pub fn binary() -> PathBuf {
        Process::binary("gpki-tsa")
    }

    /// Writes `NAME.toml` (TSA certificate `cert`, key `key` encrypted with the
    /// env's `outpass`) plus `extra` lines, and starts the TSA on a free port.
    pub fn start(env: &Env, name: &str, store: &str, cert: &str, key: &str, extra: &str) -> Tsa {
        let port = free_port();
        let text = format!(
            "store = \"{store}\"\nlisten = \"127.0.0.1:{port}\"\nname = \"{name}\"\ncert = \"{}\"\nkey = \"{}\"\nkey_pass_file = \"{}\"\n{extra}\n",
            env.path(cert).display(),
            env.path(key).display(),
            env.path("outpass").display()
        );
        let config = env.path(&format!("{name}-{port}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut process = Process::start(
            "gpki-tsa",
            Command::new(Self::binary())
                .args(["serve", "--config"])
                .arg(&config),
            Stdio::piped(),
        );
        let url = format!("http://127.0.0.1:{port}");
        // healthz answers 503 while refusing (e.g. clock check): wait for the port.
        process.wait_listening(port, 60);
        Tsa { process, url }
    }
}

/// NSS usages (`vfychain -u`) each dev profile is checked for. institution-sign
/// (documentSigning), tsa (timeStamping) and credential-signer (mdlDS) are absent:
/// NSS has no certificate usage for those purposes, so it accepts them under none.
pub const NSS_USAGES: &[(&str, &[&str])] = &[
    ("official-sign", &["0", "4"]),
    ("official-km", &["5"]),
    ("server", &["0", "1"]),
    ("g-ssl", &["1"]),
    ("ocsp-signer", &["10"]),
    ("ra-operator", &["0"]),
    ("service-client", &["0"]),
];

/// A fresh NSS database under the env holding `root` as a trusted CA and `sub` as
/// an intermediate; returns its `sql:` name for certutil and vfychain.
pub fn nss_db(env: &Env, name: &str, root: &Path, sub: &Path) -> String {
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sql:{}", dir.display());
    let run = |args: &[&str]| {
        let o = Command::new("certutil").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "certutil {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&["-N", "-d", &db, "--empty-password"]);
    run(&[
        "-A",
        "-d",
        &db,
        "-n",
        "root",
        "-t",
        "CT,C,C",
        "-i",
        root.to_str().unwrap(),
    ]);
    run(&[
        "-A",
        "-d",
        &db,
        "-n",
        "sub",
        "-t",
        ",,",
        "-i",
        sub.to_str().unwrap(),
    ]);
    db
}

/// `vfychain -pp` of `cert` for `usage` against the NSS database `db`, with
/// `extra` revocation flags; stdout and stderr.
pub fn vfychain(db: &str, usage: &str, cert: &Path, extra: &[&str]) -> String {
    let o = Command::new("vfychain")
        .args(["-d", db, "-pp", "-u", usage])
        .args(extra)
        .arg("-a")
        .arg(cert)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// Calls `attempt` every 100 ms until it returns `Ok`, for at most `secs` seconds;
/// panics with `what` and the last `Err` otherwise. For a change another process
/// makes visible within a bound (a revocation reaching a responder or a list).
pub fn eventually(what: &str, secs: u64, mut attempt: impl FnMut() -> Result<(), String>) {
    let mut last = String::new();
    for _ in 0..secs * 10 {
        match attempt() {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what} within {secs} s: {last}");
}
