//! `gpki`, the administrator's command line. Exit codes: 0 ok, 1 failure, 2 usage.
#![forbid(unsafe_code)]

mod dev;
mod key;
mod ocsp;
mod ra;
mod ra_import;
mod ts;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gpki_ca::batch::{BatchOptions, BatchReport};
use gpki_ca::{Ca, IssueRequest, Issued, KeySource, NewCa};
use gpki_pki::cert::SanEntry;
use gpki_pki::crl::RevocationReason;
use gpki_pki::profile::Profiles;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result, SignatureAlgorithm, Signer, SoftwareKey};
use gpki_store::{CertFilter, CertStatus, Store};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "gpki",
    version,
    about = "Government PKI: CAs, certificates, CRLs",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Store URL: sqlite://PATH or postgres://… (default: sqlite://DATA_DIR/gpki.db)
    #[arg(long, global = true, env = "GPKI_STORE")]
    store: Option<String>,
    /// Where keys, the SQLite store and dev artefacts live
    #[arg(
        long,
        global = true,
        env = "GPKI_DATA_DIR",
        default_value = "gpki-data"
    )]
    data_dir: PathBuf,
    /// Load profiles from this directory instead of the built-in policies/
    #[arg(long, global = true, env = "GPKI_POLICIES")]
    policies: Option<PathBuf>,
    /// File whose first line is the CA key passphrase (else GPKI_KEY_PASS, else a prompt)
    #[arg(long, global = true, env = "GPKI_KEY_PASS_FILE")]
    key_pass_file: Option<PathBuf>,
    /// Who is acting, for the audit log (default: $USER)
    #[arg(long, global = true, env = "GPKI_ACTOR")]
    actor: Option<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// The certificate store
    #[command(subcommand)]
    Store(StoreCmd),
    /// Certification authorities: root, subordinates, cross-certificates
    #[command(subcommand)]
    Ca(CaCmd),
    /// Certificate profiles
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Certificates: issue, renew, revoke, list
    #[command(subcommand)]
    Cert(CertCmd),
    /// Certificate revocation lists
    #[command(subcommand)]
    Crl(CrlCmd),
    /// The hash-chained audit log
    #[command(subcommand)]
    Audit(AuditCmd),
    /// OCSP: responder certificates, status queries
    #[command(subcommand)]
    Ocsp(ocsp::OcspCmd),
    /// Timestamps: stamp a file, verify a token, look a token up
    #[command(subcommand)]
    Ts(ts::TsCmd),
    /// Registration authorities: set-up, and the operators' workflow over mTLS
    #[command(subcommand)]
    Ra(ra::RaCmd),
    /// Local all-in-one deployment
    #[command(subcommand)]
    Dev(DevCmd),
    /// Keys: generate one and its PKCS#10 request
    #[command(subcommand)]
    Key(key::KeyCmd),
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Run the embedded schema migrations
    Migrate,
    /// Row counts of the main tables
    Stats,
}

#[derive(Args)]
struct CaKeyArgs {
    /// Key type: rsa2048, rsa3072, rsa4096, p256, p384
    #[arg(long, default_value = "p384")]
    key_type: String,
    /// Signature algorithm (default follows the key: rsa-sha256/384, ecdsa-sha256/384)
    #[arg(long)]
    sig_alg: Option<String>,
    #[arg(long)]
    validity_days: Option<u32>,
    /// Base of the CA's CRL, OCSP and caIssuers URLs
    #[arg(long, env = "GPKI_URL_BASE", default_value = "http://pki.gpki.go.kr")]
    url_base: String,
    /// Also write the CA certificate (PEM) here
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ConstraintArgs {
    /// pathLenConstraint
    #[arg(long)]
    path_len: Option<u8>,
    /// Permitted directoryName subtree (RFC 4514), repeatable
    #[arg(long)]
    permit_dn: Vec<String>,
    /// Excluded directoryName subtree, repeatable
    #[arg(long)]
    exclude_dn: Vec<String>,
    /// Permitted DNS subtree (go.kr), repeatable
    #[arg(long)]
    permit_dns: Vec<String>,
    /// Excluded DNS subtree, repeatable
    #[arg(long)]
    exclude_dns: Vec<String>,
}

#[derive(Subcommand)]
enum CaCmd {
    /// Create the self-signed root CA (offline)
    InitRoot {
        #[arg(long)]
        name: String,
        /// e.g. "CN=GPKI Root CA 1, OU=GPKI, O=Government of Korea, C=KR"
        #[arg(long)]
        subject: String,
        #[arg(long)]
        path_len: Option<u8>,
        #[command(flatten)]
        key: CaKeyArgs,
    },
    /// Create a subordinate CA signed by --parent
    Create {
        #[arg(long)]
        parent: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        subject: String,
        #[command(flatten)]
        constraints: ConstraintArgs,
        #[command(flatten)]
        key: CaKeyArgs,
    },
    /// Cross-certify another PKI's CA certificate
    CrossCertify {
        /// The CA that signs (usually the root)
        #[arg(long)]
        issuer: String,
        /// The other PKI's CA certificate (PEM or DER)
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        validity_days: Option<u32>,
        #[command(flatten)]
        constraints: ConstraintArgs,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List CAs
    List,
    /// Show one CA
    Show {
        name: String,
        /// Print the certificate chain as PEM
        #[arg(long)]
        pem: bool,
    },
}

#[derive(Subcommand)]
enum ProfileCmd {
    /// List profiles
    List,
    /// Show one profile
    Show { name: String },
}

#[derive(Args)]
struct CertOut {
    /// Write the certificate here (default: print PEM)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write DER instead of PEM
    #[arg(long)]
    der: bool,
    /// Append the CA chain to the PEM output
    #[arg(long)]
    chain: bool,
}

#[derive(Subcommand)]
enum CertCmd {
    /// Issue a certificate from a CSR or for a generated key
    Issue {
        #[arg(long)]
        ca: String,
        #[arg(long)]
        profile: String,
        /// PKCS#10 request (PEM or DER)
        #[arg(long, conflicts_with = "generate_key")]
        csr: Option<PathBuf>,
        /// RFC 4514 subject (required with --generate-key; overrides the CSR's)
        #[arg(long)]
        subject: Option<String>,
        /// Generate the key here (written with --key-out or --pkcs12)
        #[arg(long)]
        generate_key: bool,
        /// subjectAltName: dns:host, email:addr, ip:addr, uri:… (repeatable)
        #[arg(long)]
        san: Vec<String>,
        #[arg(long)]
        validity_days: Option<u32>,
        #[command(flatten)]
        out: CertOut,
        #[command(flatten)]
        key_out: key::KeyOut,
    },
    /// Renew a certificate (same key unless --csr or --generate-key)
    Renew {
        #[arg(long)]
        ca: String,
        #[arg(long)]
        serial: String,
        /// New key from this CSR
        #[arg(long, conflicts_with = "generate_key")]
        csr: Option<PathBuf>,
        /// New generated key
        #[arg(long)]
        generate_key: bool,
        /// Revoke the old certificate (superseded)
        #[arg(long)]
        revoke_old: bool,
        #[command(flatten)]
        out: CertOut,
        #[command(flatten)]
        key_out: key::KeyOut,
    },
    /// Revoke a certificate (certificateHold puts it on hold)
    Revoke {
        #[arg(long)]
        ca: String,
        #[arg(long)]
        serial: String,
        /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
        /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise
        #[arg(long, default_value = "unspecified")]
        reason: String,
        /// When the key is known or suspected to have been compromised (RFC 3339)
        #[arg(long)]
        invalidity_date: Option<String>,
    },
    /// Release a certificate from certificateHold
    Release {
        #[arg(long)]
        ca: String,
        #[arg(long)]
        serial: String,
    },
    /// List certificates
    List {
        #[arg(long)]
        ca: Option<String>,
        /// pending, issued, revoked, hold, abandoned
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        /// Subject contains this text
        #[arg(long)]
        subject: Option<String>,
        /// Expiring within this many days
        #[arg(long)]
        expiring_within_days: Option<u32>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one certificate
    Show {
        #[arg(long)]
        ca: String,
        #[arg(long)]
        serial: String,
        #[command(flatten)]
        out: CertOut,
    },
    /// Issue for many officials from a CSV (resumable)
    IssueBatch {
        #[arg(long)]
        ca: String,
        #[arg(long)]
        profile: String,
        /// Header: request_id,subject[,san][,csr]
        #[arg(long)]
        csv: PathBuf,
        /// Where certificates and generated keys are written
        #[arg(long)]
        out_dir: PathBuf,
        #[arg(long, default_value = "p256")]
        key_type: String,
        #[arg(long, env = "GPKI_OUT_PASS_FILE")]
        out_pass_file: Option<PathBuf>,
        #[arg(long, default_value_t = 500)]
        chunk: usize,
    },
}

#[derive(Subcommand)]
enum CrlCmd {
    /// Generate and store a CRL (full, or --delta against the newest full CRL)
    Generate {
        #[arg(long)]
        ca: String,
        #[arg(long)]
        delta: bool,
        #[arg(long, default_value_t = 24)]
        next_update_hours: u32,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write DER instead of PEM
        #[arg(long)]
        der: bool,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the hash chain (names every edited, inserted or deleted row) and every
    /// signed checkpoint (names a rebuilt chain)
    Verify {
        /// Checkpoint directory (default DATA_DIR/audit)
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The audit public key to trust (default: audit.pub.pem in the checkpoint directory)
        #[arg(long)]
        audit_key: Option<PathBuf>,
    },
    /// Sign the chain head into a checkpoint file outside the store (verifiable with
    /// openssl dgst); run it from a timer
    Checkpoint {
        /// Checkpoint directory (default DATA_DIR/audit)
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show the newest audit records
    Log {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum DevCmd {
    /// Create (idempotently) a local hierarchy and one certificate of each profile,
    /// then run the OCSP responder the certificates point at until Ctrl-C
    Up {
        /// Set everything up, then exit instead of serving
        #[arg(long)]
        no_serve: bool,
        /// Where the responder listens (certificates' AIA point here)
        #[arg(long, env = "GPKI_DEV_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Where the TSA listens
        #[arg(long, env = "GPKI_DEV_TSA_LISTEN", default_value = "127.0.0.1:8081")]
        tsa_listen: String,
        /// Where the CA service listens (mutual TLS)
        #[arg(long, env = "GPKI_DEV_CA_LISTEN", default_value = "127.0.0.1:8443")]
        ca_listen: String,
        /// Where the RA service listens (mutual TLS)
        #[arg(long, env = "GPKI_DEV_RA_LISTEN", default_value = "127.0.0.1:8444")]
        ra_listen: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("GPKI_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let output = cli.global.output;
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if output == Output::Json {
                println!(
                    "{}",
                    json!({ "error": { "kind": e.kind, "detail": e.detail } })
                );
            }
            eprintln!("gpki: error: {}", e);
            ExitCode::from(1)
        }
    }
}

impl Global {
    fn store_url(&self) -> String {
        self.store
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("gpki.db").display()))
    }

    fn profiles(&self) -> Result<Profiles> {
        match &self.policies {
            Some(dir) => Profiles::load_dir(dir),
            None => Profiles::builtin(),
        }
    }

    fn actor(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "gpki-cli".into())
    }

    fn passphrase(&self) -> Result<Passphrase> {
        if let Some(f) = &self.key_pass_file {
            return Passphrase::from_file(f);
        }
        if let Ok(p) = std::env::var("GPKI_KEY_PASS") {
            if !p.is_empty() {
                return Ok(Passphrase::new(p));
            }
        }
        if std::io::stdin().is_terminal() {
            let p = rpassword::prompt_password("CA key passphrase: ")
                .map_err(|e| Error::malformed(format!("cannot read passphrase: {e}")))?;
            return Ok(Passphrase::new(p));
        }
        Err(Error::malformed(
            "no CA key passphrase: give --key-pass-file, set GPKI_KEY_PASS, or run on a terminal",
        ))
    }

    async fn store(&self) -> Result<Store> {
        Store::open(&self.store_url()).await
    }

    /// The CA, with the profiles it loaded recorded in the audit log when they
    /// changed since the last time.
    async fn ca(&self) -> Result<Ca> {
        let store = self.store().await?;
        let ca = Ca::new(
            store,
            self.profiles()?,
            self.data_dir.join("keys"),
            self.passphrase()?,
            self.actor(),
        );
        ca.record_profiles().await?;
        Ok(ca)
    }
}

fn emit(output: Output, value: Value, text: impl FnOnce() -> String) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&value).expect("JSON")),
        Output::Text => {
            let t = text();
            if !t.is_empty() {
                println!("{t}");
            }
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, bytes)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::not_found(format!("cannot read {what} {}: {e}", path.display())))
}

fn sans(list: &[String]) -> Result<Vec<SanEntry>> {
    list.iter().map(|s| s.parse()).collect()
}

fn constraints(c: &ConstraintArgs) -> Result<Option<x509_cert::ext::pkix::NameConstraints>> {
    gpki_pki::cert::name_constraints(&c.permit_dn, &c.exclude_dn, &c.permit_dns, &c.exclude_dns)
}

fn cert_json(ca: &str, r: &gpki_store::CertificateRecord) -> Value {
    json!({
        "ca": ca,
        "serial": r.serial,
        "subject": r.subject,
        "profile": r.profile,
        "status": r.status,
        "not_before": gpki_pki::time::rfc3339(r.not_before),
        "not_after": gpki_pki::time::rfc3339(r.not_after),
        "revoked_at": r.revoked_at.map(gpki_pki::time::rfc3339),
        "reason": r.reason.and_then(RevocationReason::from_code).map(|x| x.as_str()),
        "invalidity_date": r.invalidity_date.map(gpki_pki::time::rfc3339),
        "renewed_from": r.renewed_from,
    })
}

/// Writes or prints a certificate as the CertOut flags ask.
async fn output_cert(ca: &Ca, ca_name: &str, der: &[u8], out: &CertOut) -> Result<Option<String>> {
    let bytes = if out.der {
        der.to_vec()
    } else {
        let mut pem = gpki_pki::pem::encode("CERTIFICATE", der);
        if out.chain {
            for c in ca.chain(ca_name).await? {
                pem += &gpki_pki::pem::encode("CERTIFICATE", &c);
            }
        }
        pem.into_bytes()
    };
    match &out.out {
        Some(p) => {
            write_file(p, &bytes)?;
            Ok(Some(p.display().to_string()))
        }
        None if out.der => Err(Error::malformed("--der needs --out FILE")),
        None => {
            print!("{}", String::from_utf8_lossy(&bytes));
            Ok(None)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let g = cli.global;
    let out = g.output;
    match cli.command {
        Command::Store(StoreCmd::Migrate) => {
            let store = Store::connect(&g.store_url()).await?;
            let applied = store.migrate().await?;
            emit(
                out,
                json!({ "store": store.display_url(), "migrations": applied }),
                || {
                    format!(
                        "store {} is at the current schema ({} migrations)",
                        store.display_url(),
                        applied.len()
                    )
                },
            );
        }
        Command::Store(StoreCmd::Stats) => {
            let store = g.store().await?;
            let c = store.counts().await?;
            emit(out, serde_json::to_value(c).expect("JSON"), || {
                format!(
                    "authorities {}\ncertificates {}\ncrls {}\naudit records {}",
                    c.authorities, c.certificates, c.crls, c.audit
                )
            });
        }
        Command::Ca(cmd) => ca_command(&g, cmd).await?,
        Command::Profile(ProfileCmd::List) => {
            let profiles = g.profiles()?;
            let list: Vec<Value> = profiles
                .iter()
                .map(|p| json!({ "name": p.name(), "kind": p.spec.kind, "validity_days": p.spec.validity_days, "description": p.spec.description, "source": p.source }))
                .collect();
            emit(out, json!(list), || {
                profiles
                    .iter()
                    .map(|p| {
                        format!(
                            "{:<18} {:>5}d  {}",
                            p.name(),
                            p.spec.validity_days,
                            p.spec.description
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Profile(ProfileCmd::Show { name }) => {
            let profiles = g.profiles()?;
            let p = profiles.get(&name)?;
            emit(
                out,
                serde_json::to_value(&p.spec).expect("profile JSON"),
                || {
                    format!(
                        "# {}\n{}",
                        p.source,
                        toml::to_string_pretty(&p.spec).unwrap_or_default()
                    )
                },
            );
        }
        Command::Cert(cmd) => cert_command(&g, cmd).await?,
        Command::Crl(CrlCmd::Generate {
            ca: name,
            delta,
            next_update_hours,
            out: path,
            der,
        }) => {
            let ca = g.ca().await?;
            let crl = ca.generate_crl(&name, delta, next_update_hours).await?;
            // Each CRL also anchors the audit chain outside the store. The CRL is
            // recorded already: a failed checkpoint is reported, not fatal.
            if let Err(e) = ca.audit_checkpoint(&g.data_dir.join("audit")).await {
                eprintln!("gpki: warning: the CRL was made, but the audit checkpoint failed: {e}");
            }
            let bytes = if der {
                crl.der.clone()
            } else {
                gpki_pki::pem::encode("X509 CRL", &crl.der).into_bytes()
            };
            if let Some(p) = &path {
                write_file(p, &bytes)?;
            } else if der {
                return Err(Error::malformed("--der needs --out FILE"));
            }
            let value = json!({ "ca": name, "crl_number": crl.crl_number, "delta_base": crl.delta_base, "entries": crl.entries,
                "this_update": gpki_pki::time::rfc3339(crl.this_update), "next_update": gpki_pki::time::rfc3339(crl.next_update),
                "file": path.as_ref().map(|p| p.display().to_string()) });
            match (&path, out) {
                (None, Output::Text) => print!("{}", String::from_utf8_lossy(&bytes)),
                _ => emit(out, value, || {
                    format!(
                        "{} CRL {} of CA {name}: {} entries, next update {}",
                        if delta { "delta" } else { "full" },
                        crl.crl_number,
                        crl.entries,
                        gpki_pki::time::rfc3339(crl.next_update)
                    )
                }),
            }
        }
        Command::Audit(AuditCmd::Verify {
            checkpoints,
            audit_key,
        }) => {
            let store = g.store().await?;
            let mut report = store.audit_verify().await?;
            let dir = checkpoints.unwrap_or_else(|| g.data_dir.join("audit"));
            let (anchoring, problems) = gpki_ca::anchor::verify_checkpoints(
                &store,
                &dir,
                &g.data_dir.join("keys"),
                audit_key.as_deref(),
            )
            .await?;
            report.problems.extend(problems);
            let mut value = serde_json::to_value(&report).expect("JSON");
            value["anchoring"] = serde_json::to_value(&anchoring).expect("JSON");
            emit(out, value, || {
                if report.intact() {
                    let anchored = if anchoring.checkpoints == 0 {
                        "NOT ANCHORED: no audit key and no checkpoint yet (gpki audit checkpoint)"
                            .to_string()
                    } else {
                        format!(
                            "{} signed checkpoint(s) in {} match, up to row {} ({} newer row(s) rest on the chain alone); audit key sha256 {}",
                            anchoring.checkpoints,
                            dir.display(),
                            anchoring.anchored_seq,
                            (report.head_seq - anchoring.anchored_seq).max(0),
                            anchoring.audit_key_sha256.as_deref().unwrap_or("-")
                        )
                    };
                    format!(
                        "audit log intact: {} records, chain head {}\n{anchored}",
                        report.rows, report.head_seq
                    )
                } else {
                    report
                        .problems
                        .iter()
                        .map(|p| format!("TAMPERED: {}", p.problem))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
            if !report.intact() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "audit log fails verification: {} problem(s)",
                        report.problems.len()
                    ),
                ));
            }
        }
        Command::Audit(AuditCmd::Checkpoint { dir }) => {
            let ca = g.ca().await?;
            let dir = dir.unwrap_or_else(|| g.data_dir.join("audit"));
            let (cp, file) = ca.audit_checkpoint(&dir).await?;
            emit(
                out,
                json!({ "seq": cp.seq, "hash": cp.hash, "file": file.display().to_string(),
                        "public_key": dir.join(gpki_ca::anchor::AUDIT_PUB_FILE).display().to_string() }),
                || {
                    format!(
                        "checkpoint of audit row {} ({}) in {}\n  check: openssl dgst -sha256 -verify {} -signature {} {}",
                        cp.seq,
                        cp.hash,
                        file.display(),
                        dir.join(gpki_ca::anchor::AUDIT_PUB_FILE).display(),
                        file.with_extension("sig").display(),
                        file.display()
                    )
                },
            );
        }
        Command::Audit(AuditCmd::Log { limit }) => {
            let store = g.store().await?;
            let rows = store.audit_tail(limit).await?;
            emit(out, serde_json::to_value(&rows).expect("JSON"), || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{:>6} {} {:<12} {:<18} {} {}",
                            r.seq,
                            gpki_pki::time::rfc3339(r.at),
                            r.actor,
                            r.action,
                            r.target,
                            r.detail
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Ocsp(cmd) => ocsp::command(&g, cmd).await?,
        Command::Ra(cmd) => ra::run(&g, cmd).await?,
        Command::Ts(cmd) => ts::command(&g, cmd).await?,
        Command::Dev(DevCmd::Up {
            no_serve,
            listen,
            tsa_listen,
            ca_listen,
            ra_listen,
        }) => {
            let at = dev::Listen {
                ocsp: listen,
                tsa: tsa_listen,
                ca: ca_listen,
                ra: ra_listen,
            };
            dev::up(&g, !no_serve, &at).await?
        }
        Command::Key(cmd) => key::run(&g, cmd)?,
    }
    Ok(())
}

async fn ca_command(g: &Global, cmd: CaCmd) -> Result<()> {
    let out = g.output;
    match cmd {
        CaCmd::InitRoot {
            name,
            subject,
            path_len,
            key,
        } => {
            let ca = g.ca().await?;
            let new = new_ca(&name, &subject, &key, path_len, None)?;
            let issued = ca.init_root(&new).await?;
            report_ca(g, &ca, &name, &issued, key.out.as_deref()).await?;
        }
        CaCmd::Create {
            parent,
            name,
            subject,
            constraints: c,
            key,
        } => {
            let ca = g.ca().await?;
            let new = new_ca(&name, &subject, &key, c.path_len, constraints(&c)?)?;
            let issued = ca.create_subordinate(&new, &parent).await?;
            report_ca(g, &ca, &name, &issued, key.out.as_deref()).await?;
        }
        CaCmd::CrossCertify {
            issuer,
            cert,
            validity_days,
            constraints: c,
            out: path,
        } => {
            let ca = g.ca().await?;
            let foreign = read_file(&cert, "certificate")?;
            let issued = ca
                .cross_certify(
                    &issuer,
                    &foreign,
                    c.path_len,
                    constraints(&c)?,
                    validity_days,
                )
                .await?;
            let file = output_cert(
                &ca,
                &issuer,
                &issued.der,
                &CertOut {
                    out: path,
                    der: false,
                    chain: false,
                },
            )
            .await?;
            if file.is_some() || out == Output::Json {
                emit(
                    out,
                    json!({ "certificate": cert_json(&issuer, &issued.record), "file": file }),
                    || {
                        format!(
                            "cross-certificate {} for `{}` signed by {issuer}",
                            issued.record.serial, issued.record.subject
                        )
                    },
                );
            }
        }
        CaCmd::List => {
            let store = g.store().await?;
            let all = store.authorities().await?;
            let names: std::collections::HashMap<i64, String> =
                all.iter().map(|a| (a.id, a.name.clone())).collect();
            let now = gpki_pki::time::now();
            let mut standings = Vec::with_capacity(all.len());
            for a in &all {
                standings.push(gpki_ca::standing(&store, a, now).await?);
            }
            let list: Vec<Value> = all
                .iter()
                .zip(&standings)
                .map(|(a, s)| ca_json(a, s, &names))
                .collect();
            emit(out, json!(list), || {
                all.iter()
                    .zip(&standings)
                    .map(|(a, s)| {
                        format!(
                            "{:<16} {:<8} parent={:<12} {}{}",
                            a.name,
                            s.label(),
                            a.parent_id
                                .and_then(|p| names.get(&p).cloned())
                                .unwrap_or_else(|| "-".into()),
                            a.subject,
                            match s {
                                gpki_ca::Standing::Unusable { .. } =>
                                    format!("\n    {}", s.describe(&a.name)),
                                _ => String::new(),
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        CaCmd::Show { name, pem } => {
            let store = g.store().await?;
            let a = store.authority_by_name(&name).await?;
            let all = store.authorities().await?;
            let names: std::collections::HashMap<i64, String> =
                all.iter().map(|a| (a.id, a.name.clone())).collect();
            if pem {
                let mut walk = Some(a);
                while let Some(r) = walk {
                    if let Some(d) = &r.cert_der {
                        print!("{}", gpki_pki::pem::encode("CERTIFICATE", d));
                    }
                    walk = match r.parent_id {
                        Some(p) if p != r.id => Some(store.authority(p).await?),
                        _ => None,
                    };
                }
            } else {
                let standing = gpki_ca::standing(&store, &a, gpki_pki::time::now()).await?;
                let v = ca_json(&a, &standing, &names);
                emit(out, v.clone(), || {
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                });
            }
        }
    }
    Ok(())
}

fn new_ca(
    name: &str,
    subject: &str,
    key: &CaKeyArgs,
    path_len: Option<u8>,
    nc: Option<x509_cert::ext::pkix::NameConstraints>,
) -> Result<NewCa> {
    Ok(NewCa {
        name: name.to_string(),
        subject: subject.to_string(),
        key_type: key.key_type.parse()?,
        signature_algorithm: key
            .sig_alg
            .as_deref()
            .map(str::parse::<SignatureAlgorithm>)
            .transpose()?,
        validity_days: key.validity_days,
        path_len,
        name_constraints: nc,
        url_base: key.url_base.clone(),
    })
}

fn ca_json(
    a: &gpki_store::AuthorityRecord,
    standing: &gpki_ca::Standing,
    names: &std::collections::HashMap<i64, String>,
) -> Value {
    let cert = a
        .cert_der
        .as_deref()
        .and_then(|d| gpki_pki::cert::decode(d).ok());
    json!({
        "name": a.name,
        "status": standing.label(),
        "status_cause": standing.cause(),
        "status_detail": standing.describe(&a.name),
        "parent": a.parent_id.filter(|p| *p != a.id).and_then(|p| names.get(&p).cloned()),
        "subject": a.subject,
        "key_type": a.key_type,
        "signature_algorithm": a.signature_algorithm,
        "key_file": a.key_path,
        "serial": cert.as_ref().map(|c| hex::encode(c.tbs_certificate.serial_number.as_bytes())),
        "not_before": cert.as_ref().map(|c| gpki_pki::time::rfc3339(gpki_pki::time::unix_seconds(&c.tbs_certificate.validity.not_before))),
        "not_after": cert.as_ref().map(|c| gpki_pki::time::rfc3339(gpki_pki::time::unix_seconds(&c.tbs_certificate.validity.not_after))),
        "crl_url": a.crl_url,
        "ocsp_url": a.ocsp_url,
        "ca_issuers_url": a.ca_issuers_url,
    })
}

async fn report_ca(
    g: &Global,
    ca: &Ca,
    name: &str,
    issued: &Issued,
    out_path: Option<&Path>,
) -> Result<()> {
    if let Some(p) = out_path {
        write_file(
            p,
            gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
        )?;
    }
    let a = ca.store().authority_by_name(name).await?;
    emit(
        g.output,
        json!({ "ca": name, "serial": issued.record.serial, "subject": issued.record.subject, "key_file": a.key_path,
        "not_after": gpki_pki::time::rfc3339(issued.record.not_after), "file": out_path.map(|p| p.display().to_string()) }),
        || {
            format!(
                "CA {name} created: serial {}, valid until {}, key in {} (encrypted, mode 0600)",
                issued.record.serial,
                gpki_pki::time::rfc3339(issued.record.not_after),
                a.key_path
            )
        },
    );
    Ok(())
}

async fn cert_command(g: &Global, cmd: CertCmd) -> Result<()> {
    let out = g.output;
    match cmd {
        CertCmd::Issue {
            ca: ca_name,
            profile,
            csr,
            subject,
            generate_key,
            san,
            validity_days,
            out: cert_out,
            key_out,
        } => {
            let ca = g.ca().await?;
            let (key, generated) = match (&csr, generate_key) {
                (Some(p), false) => (KeySource::Csr(read_file(p, "CSR")?), None),
                (None, true) => {
                    let (k, pass) = key::generated_key(&key_out)?;
                    (
                        KeySource::PublicKey(k.public_key_der().to_vec()),
                        Some((k, pass)),
                    )
                }
                _ => return Err(Error::malformed("give --csr FILE or --generate-key")),
            };
            let req = IssueRequest {
                ca: ca_name.clone(),
                profile,
                subject,
                key,
                sans: sans(&san)?,
                validity_days,
                request_key: None,
                renewed_from: None,
            };
            let issued = ca.issue(&req).await?;
            finish_issue(
                &ca, &ca_name, &issued, &cert_out, &key_out, generated, out, "issued",
            )
            .await?;
        }
        CertCmd::Renew {
            ca: ca_name,
            serial,
            csr,
            generate_key,
            revoke_old,
            out: cert_out,
            key_out,
        } => {
            let ca = g.ca().await?;
            let (key, generated) = match (&csr, generate_key) {
                (Some(p), false) => (Some(KeySource::Csr(read_file(p, "CSR")?)), None),
                (None, true) => {
                    let (k, pass) = key::generated_key(&key_out)?;
                    (
                        Some(KeySource::PublicKey(k.public_key_der().to_vec())),
                        Some((k, pass)),
                    )
                }
                _ => (None, None),
            };
            let issued = ca.renew(&ca_name, &serial, key, revoke_old, None).await?;
            finish_issue(
                &ca,
                &ca_name,
                &issued,
                &cert_out,
                &key_out,
                generated,
                out,
                "renewed as",
            )
            .await?;
        }
        CertCmd::Revoke {
            ca: ca_name,
            serial,
            reason,
            invalidity_date,
        } => {
            let reason: RevocationReason = reason.parse()?;
            let inv = invalidity_date
                .as_deref()
                .map(gpki_pki::time::parse_rfc3339)
                .transpose()?;
            let ca = g.ca_without_key().await?;
            let r = ca.revoke(&ca_name, &serial, reason, inv).await?;
            emit(out, cert_json(&ca_name, &r), || {
                format!(
                    "certificate {} of CA {ca_name} is now {} ({})",
                    r.serial, r.status, reason
                )
            });
        }
        CertCmd::Release {
            ca: ca_name,
            serial,
        } => {
            let ca = g.ca_without_key().await?;
            let r = ca.release_hold(&ca_name, &serial).await?;
            emit(out, cert_json(&ca_name, &r), || {
                format!(
                    "certificate {} of CA {ca_name} released from hold",
                    r.serial
                )
            });
        }
        CertCmd::List {
            ca,
            status,
            profile,
            subject,
            expiring_within_days,
            limit,
        } => {
            let store = g.store().await?;
            let names: std::collections::HashMap<i64, String> = store
                .authorities()
                .await?
                .into_iter()
                .map(|a| (a.id, a.name))
                .collect();
            let issuer_id = match &ca {
                Some(n) => Some(store.authority_by_name(n).await?.id),
                None => None,
            };
            let filter = CertFilter {
                issuer_id,
                status: status
                    .as_deref()
                    .map(str::parse::<CertStatus>)
                    .transpose()?,
                profile,
                subject_contains: subject,
                expires_before: expiring_within_days
                    .map(|d| gpki_pki::time::now() + i64::from(d) * 86_400),
                limit,
            };
            let rows = store.list_certificates(&filter).await?;
            let name_of = |id: i64| names.get(&id).cloned().unwrap_or_default();
            emit(
                out,
                json!(rows
                    .iter()
                    .map(|r| cert_json(&name_of(r.issuer_id), r))
                    .collect::<Vec<_>>()),
                || {
                    rows.iter()
                        .map(|r| {
                            format!(
                                "{:<12} {:<32} {:<9} {:<17} {}  {}",
                                name_of(r.issuer_id),
                                r.serial,
                                r.status.as_str(),
                                r.profile,
                                gpki_pki::time::rfc3339(r.not_after),
                                r.subject
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        CertCmd::Show {
            ca: ca_name,
            serial,
            out: cert_out,
        } => {
            let store = g.store().await?;
            let a = store.authority_by_name(&ca_name).await?;
            let serial_hex = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
            let r = store.certificate(a.id, &serial_hex).await?.ok_or_else(|| {
                Error::not_found(format!(
                    "no certificate with serial {serial_hex} from CA `{ca_name}`"
                ))
            })?;
            if cert_out.out.is_some() || cert_out.der {
                let der = r.der.clone().ok_or_else(|| {
                    Error::conflict(format!(
                        "certificate {serial_hex} was never signed ({})",
                        r.status
                    ))
                })?;
                let ca = Ca::new(
                    store.clone(),
                    g.profiles()?,
                    g.data_dir.join("keys"),
                    Passphrase::new(""),
                    g.actor(),
                );
                output_cert(&ca, &ca_name, &der, &cert_out).await?;
            } else {
                let mut v = cert_json(&ca_name, &r);
                v["pem"] = json!(r
                    .der
                    .as_deref()
                    .map(|d| gpki_pki::pem::encode("CERTIFICATE", d)));
                emit(out, v.clone(), || {
                    let mut t =
                        serde_json::to_string_pretty(&cert_json(&ca_name, &r)).unwrap_or_default();
                    if let Some(d) = &r.der {
                        t += "\n";
                        t += &gpki_pki::pem::encode("CERTIFICATE", d);
                    }
                    t
                });
            }
        }
        CertCmd::IssueBatch {
            ca: ca_name,
            profile,
            csv,
            out_dir,
            key_type,
            out_pass_file,
            chunk,
        } => {
            let rows = gpki_ca::batch::read_csv(&csv)?;
            let ca = g.ca().await?;
            let opts = BatchOptions {
                ca: ca_name,
                profile,
                key_type: key_type.parse()?,
                out_dir,
                key_passphrase: out_pass_file
                    .as_deref()
                    .map(Passphrase::from_file)
                    .transpose()?,
                chunk,
            };
            let bar = indicatif::ProgressBar::new(rows.len() as u64);
            if out == Output::Json {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} issuing [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
                )
                .expect("progress template")
                .progress_chars("=> "),
            );
            let report: BatchReport = ca
                .issue_batch(rows, &opts, &mut |done| bar.set_position(done as u64))
                .await?;
            bar.finish_and_clear();
            emit(out, serde_json::to_value(&report).expect("JSON"), || {
                let mut t = format!(
                    "{} rows: {} issued, {} already issued, {} resumed from pending, {} abandoned and reissued, {} failed",
                    report.rows, report.issued, report.already_issued, report.resumed, report.abandoned, report.failed.len()
                );
                for f in &report.failed {
                    t += &format!("\n  line {} ({}): {}", f.line, f.request_id, f.error);
                }
                t
            });
            if !report.failed.is_empty() {
                return Err(Error::new(
                    ErrorKind::PolicyViolation,
                    format!("{} row(s) were not issued", report.failed.len()),
                ));
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn finish_issue(
    ca: &Ca,
    ca_name: &str,
    issued: &Issued,
    cert_out: &CertOut,
    key_out: &key::KeyOut,
    generated: Option<(SoftwareKey, Passphrase)>,
    out: Output,
    verb: &str,
) -> Result<()> {
    let key_files = match &generated {
        Some((k, pass)) => key::write_generated(ca, ca_name, k, pass, issued, key_out).await?,
        None => Vec::new(),
    };
    if cert_out.out.is_none() && !cert_out.der && out == Output::Text {
        output_cert(ca, ca_name, &issued.der, cert_out).await?;
        return Ok(());
    }
    let file = if cert_out.out.is_some() {
        output_cert(ca, ca_name, &issued.der, cert_out).await?
    } else {
        None
    };
    let mut v = cert_json(ca_name, &issued.record);
    v["file"] = json!(file);
    v["key_files"] = json!(key_files);
    if file.is_none() {
        v["pem"] = json!(gpki_pki::pem::encode("CERTIFICATE", &issued.der));
    }
    emit(out, v, || {
        format!(
            "{verb} {} ({}) for `{}` → {}",
            issued.record.serial,
            issued.record.profile,
            issued.record.subject,
            file.clone().unwrap_or_default()
        )
    });
    Ok(())
}

impl Global {
    /// Revocation needs no CA key: it changes the store only.
    async fn ca_without_key(&self) -> Result<Ca> {
        let store = self.store().await?;
        Ok(Ca::new(
            store,
            self.profiles()?,
            self.data_dir.join("keys"),
            Passphrase::new(""),
            self.actor(),
        ))
    }
}
