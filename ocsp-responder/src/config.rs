//! `ocsp.toml`: what a responder serves and how.

use std::path::{Path, PathBuf};

use gpki_pki::{Error, Result};
use serde::Deserialize;

/// The responder's configuration. Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `listen`, `max_request_bytes` and `[http]`, read by [`Config::load`].
    #[serde(skip)]
    pub service: gpki_service::ServiceConfig,
    /// Store URL: `sqlite://PATH` or `postgres://…`.
    pub store: String,
    /// File holding the passphrase of the responder keys.
    pub key_pass_file: Option<PathBuf>,
    /// thisUpdate to nextUpdate of every response (CA/B BR 4.9.10: 8 hours to 10 days).
    #[serde(default = "default_validity_hours")]
    pub validity_hours: u32,
    /// A pre-signed response is signed again once it is this old.
    #[serde(default)]
    pub refresh_after_hours: Option<u32>,
    /// How often the store is polled for status changes (PostgreSQL also notifies).
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How long a cache miss waits for the store before answering tryLater.
    #[serde(default = "default_store_timeout_ms")]
    pub store_timeout_ms: u64,
    /// At most this many CertIDs in one request.
    #[serde(default = "default_max_certs")]
    pub max_certs_per_request: usize,
    /// Keep a signed response for every certificate (true), or sign every answer.
    #[serde(default = "default_true")]
    pub presign: bool,
    #[serde(rename = "ca", default)]
    pub cas: Vec<CaConfig>,
    /// Renewal of the responder certificates through the CA service (the responder
    /// never opens a CA key: design invariant 10).
    #[serde(default)]
    pub renewal: Option<crate::renewal::RenewalConfig>,
    /// Serve the store's credential status lists at `/statuslists/NAME`, signed by
    /// this status-list signer.
    #[serde(default)]
    pub status_lists: Option<crate::status_lists::StatusListsConfig>,
    /// Serve the credential issuer's metadata (`/.well-known/jwt-vc-issuer`) and
    /// `did:web` DID document, naming its credential-signer keys in force.
    #[serde(default)]
    pub credential_issuer: Option<crate::issuer::IssuerConfig>,
}

/// One CA the responder answers for, with its delegated responder certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// The CA's name in the store.
    pub name: String,
    /// The responder certificate (PEM or DER), profile ocsp-signer.
    pub cert: PathBuf,
    /// Its key: encrypted PKCS#8, passphrase in `key_pass_file`.
    pub key: PathBuf,
}

fn default_validity_hours() -> u32 {
    24
}
fn default_poll_ms() -> u64 {
    250
}
fn default_store_timeout_ms() -> u64 {
    1000
}
fn default_max_certs() -> usize {
    16
}
fn default_true() -> bool {
    true
}

/// This service's defaults for the keys every service shares.
const SERVICE_DEFAULTS: gpki_service::ServiceDefaults = gpki_service::ServiceDefaults {
    listen: "127.0.0.1:8080",
    max_request_bytes: 4096,
};

impl Config {
    /// Reads and checks `path`; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Config> {
        let (service, mut config): (_, Config) =
            gpki_service::load_service_toml(path, SERVICE_DEFAULTS)?;
        config.service = service;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve(base);
        config
            .check()
            .map_err(|e| e.context(path.display().to_string()))?;
        Ok(config)
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = self.key_pass_file.as_mut() {
            fix(p)
        }
        for ca in &mut self.cas {
            fix(&mut ca.cert);
            fix(&mut ca.key);
        }
        if let Some(r) = self.renewal.as_mut() {
            r.ca.resolve(base);
        }
        if let Some(l) = self.status_lists.as_mut() {
            fix(&mut l.cert);
            fix(&mut l.key);
        }
        if let Some(path) = self.store.strip_prefix("sqlite://") {
            if Path::new(path).is_relative() && !path.starts_with(":memory:") {
                self.store = format!("sqlite://{}", base.join(path).display());
            }
        }
    }

    /// Checks the values make sense together.
    pub fn check(&self) -> Result<()> {
        self.service.http.check()?;
        if let Some(l) = &self.status_lists {
            l.check()?;
        }
        if let Some(i) = &self.credential_issuer {
            i.check()?;
        }
        if self.cas.is_empty() {
            return Err(Error::malformed("no [[ca]] to answer for"));
        }
        if !(1..=240).contains(&self.validity_hours) {
            return Err(Error::malformed(format!(
                "validity_hours = {}: must be 1 to 240 (10 days, CA/B BR 4.9.10)",
                self.validity_hours
            )));
        }
        if self.refresh_after() >= i64::from(self.validity_hours) * 3600 {
            return Err(Error::malformed(
                "refresh_after_hours must be less than validity_hours",
            ));
        }
        if self.service.max_request_bytes < 64 || self.max_certs_per_request == 0 {
            return Err(Error::malformed(
                "max_request_bytes must be at least 64 and max_certs_per_request at least 1",
            ));
        }
        let mut names: Vec<&str> = self.cas.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::malformed("a CA is listed twice"));
        }
        Ok(())
    }

    /// Seconds after which a pre-signed response is signed again: half its validity
    /// unless set.
    pub fn refresh_after(&self) -> i64 {
        match self.refresh_after_hours {
            Some(h) => i64::from(h) * 3600,
            None => i64::from(self.validity_hours) * 1800,
        }
    }
}
