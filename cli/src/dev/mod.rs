//! `gpki dev up`: a local hierarchy on the SQLite default, made idempotently. A
//! second run finds what exists and makes only what is missing.
//!
//! `up` (up.rs) runs the steps in order: the hierarchy, its certificates, the
//! status list, the KRA and the CRLs (hierarchy.rs), then the services' configs
//! (services.rs), an audit checkpoint, the summary, and the services until Ctrl-C.

mod hierarchy;
mod services;
mod up;

use clap::Subcommand;
use gpki_pki::Result;

use crate::Global;

pub const ROOT: &str = "gpki-root";
pub const SUB: &str = "mois";
/// The credential CA: it issues only the signers of mobile credentials (profiles
/// credential-signer and status-list-signer) and its OCSP responder's certificate.
pub const CREDENTIAL_CA: &str = "mobile-id";
/// The mobile ID issuer's identifier: the URI SAN of its signer certificates, an
/// SD-JWT VC's `iss`, and the host of its `did:web` DID.
pub const CREDENTIAL_ISSUER: &str = "https://id.gpki.go.kr";
/// The dev status list of mobile IDs, served by the OCSP responder.
pub const STATUS_LIST: &str = "mpoid-1";
/// The dev RA, its host's CA-service client name and its first administrator.
pub const DEV_RA: &str = "dev-mois";
/// The dev Key Recovery Authority.
pub const DEV_KRA: &str = "dev-kra";
const RA_HOST: &str = "dev-ra-host";
const RA_ADMIN: &str = "dev-admin";
/// The institution the dev RA serves.
const MOIS: &str = "OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";
/// The names on the CA and RA services' TLS certificates.
pub const CA_SERVER_NAME: &str = "ca.gpki.go.kr";
pub const RA_SERVER_NAME: &str = "ra.gpki.go.kr";

#[derive(Subcommand)]
pub enum DevCmd {
    /// Create (idempotently) a local hierarchy and one certificate of each profile,
    /// then run the OCSP responder the certificates point at until Ctrl-C
    Up(up::UpArgs),
}

pub async fn run(g: &Global, cmd: DevCmd) -> Result<()> {
    match cmd {
        DevCmd::Up(a) => up::up(g, a).await,
    }
}

/// What a run made and what it found made before, for its report.
#[derive(Default)]
struct Tally {
    made: Vec<String>,
    found: Vec<String>,
}

/// Where the dev CAs' CRL, OCSP and caIssuers URLs point: the local responder.
fn url_base(listen: &str) -> String {
    std::env::var("GPKI_URL_BASE").unwrap_or_else(|_| format!("http://{listen}"))
}

/// A path made absolute, so a written config works from any directory.
fn abs(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A TOML string literal.
fn q(s: String) -> String {
    toml::Value::String(s).to_string()
}

/// The store URL with a SQLite path made absolute.
fn absolute_store_url(store_url: &str) -> String {
    match store_url.strip_prefix("sqlite://") {
        Some(path) => format!("sqlite://{}", abs(std::path::Path::new(path)).display()),
        None => store_url.to_string(),
    }
}
