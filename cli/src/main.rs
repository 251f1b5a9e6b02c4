//! `gpki`, the administrator's command line. Exit codes: 0 ok, 1 failure, 2 usage.
#![forbid(unsafe_code)]

mod audit;
mod ca;
mod cert;
mod cms;
mod credential;
mod crl;
mod dev;
mod key;
mod km;
mod login;
mod ocsp;
mod profile;
mod ra;
mod ra_import;
mod store;
mod ts;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gpki_ca::Ca;
use gpki_pki::profile::Profiles;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, Result};
use gpki_store::Store;
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
    /// Where the offline CAs' keys (the root's) are, apart from the online CAs'
    /// (default: DATA_DIR/offline)
    #[arg(long, global = true, env = "GPKI_OFFLINE_KEY_DIR")]
    offline_key_dir: Option<PathBuf>,
    /// File whose first line is the offline CAs' key passphrase (default: the CA
    /// key passphrase)
    #[arg(long, global = true, env = "GPKI_OFFLINE_KEY_PASS_FILE")]
    offline_key_pass_file: Option<PathBuf>,
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
    Store(store::StoreCmd),
    /// Certification authorities: root, subordinates, cross-certificates
    #[command(subcommand)]
    Ca(ca::CaCmd),
    /// Certificate profiles
    #[command(subcommand)]
    Profile(profile::ProfileCmd),
    /// Certificates: issue, renew, revoke, list
    #[command(subcommand)]
    Cert(cert::CertCmd),
    /// Certificate revocation lists
    #[command(subcommand)]
    Crl(crl::CrlCmd),
    /// The hash-chained audit log
    #[command(subcommand)]
    Audit(audit::AuditCmd),
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
    Dev(dev::DevCmd),
    /// Keys: generate one and its PKCS#10 request
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Mobile credentials (mobile public-official ID): issue, revoke, status lists
    #[command(subcommand)]
    Credential(credential::CredentialCmd),
    /// Key management: officials' km keys, the Key Recovery Authority, recovery
    /// with officers' approvals, PKCS#12 and Korean key files
    #[command(subcommand)]
    Km(km::KmCmd),
    /// Documents: sign, verify, encrypt, decrypt (CMS, with RFC 3161 timestamps);
    /// the standard API's operations
    #[command(subcommand)]
    Cms(cms::CmsCmd),
    /// Certificate login at a system of the standard API: sign a challenge (the
    /// text is built here, never taken from the server)
    #[command(subcommand)]
    Login(login::LoginCmd),
}

/// mimalloc, as in every gpki binary (docs/dependencies.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Ok(self.ca_and_store().await?.0)
    }

    /// [`Global::ca`] and the whole store it records in, for the administrator's
    /// commands that change more than the CA's issuance log (a KRA's registration).
    async fn ca_and_store(&self) -> Result<(Ca, Store)> {
        let store = self.store().await?;
        let pass = self.passphrase()?;
        let offline_pass = match &self.offline_key_pass_file {
            Some(f) => Passphrase::from_file(f)?,
            None => pass.clone(),
        };
        let ca = Ca::new(
            store.clone(),
            self.profiles()?,
            self.data_dir.join("keys"),
            pass,
            self.actor(),
        )
        .with_offline_custody(self.offline_key_dir(), offline_pass);
        ca.record_profiles().await?;
        Ok((ca, store))
    }

    fn offline_key_dir(&self) -> PathBuf {
        self.offline_key_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("offline"))
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

async fn run(cli: Cli) -> Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Store(cmd) => store::run(&g, cmd).await?,
        Command::Ca(cmd) => ca::run(&g, cmd).await?,
        Command::Profile(cmd) => profile::run(&g, cmd)?,
        Command::Cert(cmd) => cert::run(&g, cmd).await?,
        Command::Crl(cmd) => crl::run(&g, cmd).await?,
        Command::Audit(cmd) => audit::run(&g, cmd).await?,
        Command::Ocsp(cmd) => ocsp::run(&g, cmd).await?,
        Command::Ra(cmd) => ra::run(&g, cmd).await?,
        Command::Ts(cmd) => ts::run(&g, cmd).await?,
        Command::Dev(cmd) => dev::run(&g, cmd).await?,
        Command::Key(cmd) => key::run(&g, cmd)?,
        Command::Credential(cmd) => credential::run(&g, cmd).await?,
        Command::Km(cmd) => km::run(&g, cmd).await?,
        Command::Cms(cmd) => cms::run(&g, cmd).await?,
        Command::Login(cmd) => login::run(&g, cmd)?,
    }
    Ok(())
}

impl Global {
    /// Revocation needs no CA key: it changes the store only.
    async fn ca_without_key(&self) -> Result<Ca> {
        let store = self.store().await?;
        Ok(Ca::without_keys(store, self.profiles()?, self.actor()))
    }
}
