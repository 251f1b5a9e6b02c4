//! `tsa.toml`: what a timestamp authority signs with and how.

use std::path::{Path, PathBuf};

use gpki_pki::{Error, Result};
use serde::Deserialize;

/// The TSA's configuration. Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `listen`, `max_request_bytes` and `[http]`, read by [`Config::load`].
    #[serde(skip)]
    pub service: gpki_service::ServiceConfig,
    /// Store URL: `sqlite://PATH` or `postgres://…`.
    pub store: String,
    /// This TSA's name in the token log and serial allocator.
    #[serde(default = "default_name")]
    pub name: String,
    /// The TSA certificate (profile tsa) and its encrypted key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// File holding the key's passphrase.
    pub key_pass_file: Option<PathBuf>,
    /// The TSA policy OID put in every token; requests for another are refused.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// The accuracy every token claims for its genTime, milliseconds. Left out, tokens
    /// claim none (RFC 3161 §2.4.2: accuracy is OPTIONAL). It may not be finer than
    /// the kernel's maxerror: the TSA refuses to start, and refuses requests
    /// (timeNotAvailable) whenever the clock drifts past it. Below a second, genTime
    /// carries milliseconds.
    #[serde(default)]
    pub accuracy_ms: Option<u32>,
    /// Tokens are refused (systemFailure) when the TSA certificate's status was last
    /// read from the store longer ago than this, seconds.
    #[serde(default = "default_status_max_age")]
    pub status_max_age_secs: u64,
    /// Refuse to issue (timeNotAvailable) when the kernel says the clock is not
    /// synchronised.
    #[serde(default = "default_true")]
    pub require_clock_sync: bool,
    /// Serials reserved from the store at a time.
    #[serde(default = "default_serial_block")]
    pub serial_block: i64,
    /// Renewal of the TSA certificate through the CA service (`[renewal]`, as a
    /// service client of role tsa); the TSA never opens a CA key.
    #[serde(default)]
    pub renewal: Option<gpki_service::signer_renewal::RenewalConfig>,
}

fn default_name() -> String {
    "tsa".into()
}
fn default_policy() -> String {
    // The GPKI timestamp policy arc used by the tsa profile.
    "1.2.410.100001.2.1.5".into()
}
fn default_status_max_age() -> u64 {
    60
}
fn default_true() -> bool {
    true
}
fn default_serial_block() -> i64 {
    1000
}

/// This service's defaults for the keys every service shares.
const SERVICE_DEFAULTS: gpki_service::ServiceDefaults = gpki_service::ServiceDefaults {
    listen: "127.0.0.1:8081",
    max_request_bytes: 4096,
};

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let (service, mut c): (_, Config) =
            gpki_service::load_service_toml(path, SERVICE_DEFAULTS)?;
        c.service = service;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut c.cert, &mut c.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = c.key_pass_file.as_mut() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(r) = c.renewal.as_mut() {
            r.ca.resolve(base);
        }
        c.check().map_err(|e| e.context(path.display()))?;
        Ok(c)
    }

    pub fn check(&self) -> Result<()> {
        self.service.http.check()?;
        self.policy
            .parse::<const_oid::ObjectIdentifier>()
            .map_err(|e| Error::malformed(format!("policy `{}`: {e}", self.policy)))?;
        if self.accuracy_ms.is_some_and(|a| a == 0 || a > 60_000) {
            return Err(Error::malformed("accuracy_ms must be 1 to 60000"));
        }
        if self.status_max_age_secs < 10 {
            return Err(Error::malformed(
                "status_max_age_secs must be at least 10 (the status is read every 5 s)",
            ));
        }
        if !(1..=1_000_000).contains(&self.serial_block) {
            return Err(Error::malformed("serial_block must be 1 to 1000000"));
        }
        Ok(())
    }
}
