//! The online CA service (`gpki-ca serve`): holds the subordinate CA keys and
//! signs for authorised RA services over mutual TLS. See docs/api/ca.md.
//!
//! It is its own crate so that the CA library (`gpki-ca`), which the offline
//! root's tools link, carries no HTTP server.
//!
//! Each request is authorised from the store, not from the TLS layer alone: the
//! client certificate must be in force now, registered as a service client of the
//! right role, and (for an RA) the host of the RA it names. The RA is not trusted
//! to apply anything: the scope (CA, profiles, subject subtrees) is checked here,
//! and the CA plans, lints and signs as for any issuance.

mod clients;
mod credential;
mod issue;
mod km;
mod renew;
mod routes;
mod signers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gpki_pki::profile::Profiles;
use gpki_pki::{Error, Result};
use gpki_service::front::Front;
use gpki_service::mtls::{AuthCache, Caller, Running, ServerTls};
use gpki_store::{RaRecord, Store};
use serde::Deserialize;

use gpki_ca::Ca;

use crate::routes::handle;

/// `ca.toml`. Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `listen`, `max_request_bytes` and `[http]`, read by [`Config::load`].
    #[serde(skip)]
    pub service: gpki_service::ServiceConfig,
    pub store: String,
    /// Where the CA keys are (`NAME.key.pem`).
    pub key_dir: PathBuf,
    /// The CA keys' passphrase (else `GPKI_KEY_PASS`).
    pub key_pass_file: Option<PathBuf>,
    /// Profiles from this directory instead of the built-in ones.
    #[serde(default)]
    pub policies: Option<PathBuf>,
    /// A certificate recorded but not signed for this long (the CA stopped between
    /// record and sign) is abandoned when its request comes again, and issued
    /// afresh. No live signing takes a fraction of it.
    #[serde(default = "default_stale_pending_secs")]
    pub stale_pending_secs: i64,
    /// Delegated signers (OCSP responders, TSAs) renew their certificates through
    /// this service this many days before expiry, not earlier.
    #[serde(default = "default_signer_renewal_days")]
    pub signer_renewal_days: i64,
    pub tls: ServerTls,
    /// How long a client's standing (certificate in force, registered, its RA
    /// active) is trusted before the store is read again: at most 1000, so a
    /// revoked client certificate or a suspended RA is refused within a second.
    /// 0 reads the store on every request.
    #[serde(default = "default_auth_cache_ms")]
    pub auth_cache_ms: u64,
    /// Mobile IDs for the RAs named here (`POST /v1/credentials`), signed by this
    /// credential signer.
    #[serde(default)]
    pub credentials: Option<CredentialsConfig>,
    /// Dual enrolments: km certificates whose keys this service makes and
    /// archives to this KRA.
    #[serde(default)]
    pub km: Option<KmConfig>,
    /// Signed checkpoints of the audit chain, written on a schedule (the audit key
    /// is in `key_dir`, under the CA keys' passphrase).
    #[serde(default)]
    pub audit: Option<AuditConfig>,
}

/// `[audit]` in ca.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where checkpoints go: `gpki audit verify --checkpoints` reads them (better a
    /// directory another host or write-once storage keeps).
    pub checkpoint_dir: PathBuf,
    /// Seconds between checkpoints (one is taken at start).
    #[serde(default = "default_checkpoint_secs")]
    pub checkpoint_interval_secs: u64,
}

fn default_checkpoint_secs() -> u64 {
    3600
}

/// `[km]` in ca.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmConfig {
    /// The KRA (`gpki km kra create`) km keys are archived to.
    pub kra: String,
}

/// `[credentials]` in ca.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// The credential-signer key (encrypted PKCS#8).
    pub signer_key: PathBuf,
    /// Its passphrase; else the CA keys' (`key_pass_file` or `GPKI_KEY_PASS`).
    #[serde(default)]
    pub signer_pass_file: Option<PathBuf>,
    /// The signer's certificate, then its CA's (PEM).
    pub signer_chain: PathBuf,
    /// The issuer identifier: the SD-JWT VC `iss` (a URI SAN of the signer) and the
    /// `aud` a holder's proof must name.
    pub issuer: String,
    /// The status list the credentials go on.
    pub status_list: String,
    /// The RAs whose offers this service issues.
    pub ras: Vec<String>,
    /// Days a credential is valid, at most (and never past the signer's end or the
    /// ID's expiry date).
    #[serde(default = "default_credential_days")]
    pub valid_days: i64,
}

fn default_credential_days() -> i64 {
    365
}

fn default_auth_cache_ms() -> u64 {
    500
}

fn default_stale_pending_secs() -> i64 {
    60
}

fn default_signer_renewal_days() -> i64 {
    30
}

/// This service's defaults for the keys every service shares.
const SERVICE_DEFAULTS: gpki_service::ServiceDefaults = gpki_service::ServiceDefaults {
    listen: "127.0.0.1:8443",
    max_request_bytes: 64 * 1024,
};

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let (service, mut c): (_, Config) =
            gpki_service::load_service_toml(path, SERVICE_DEFAULTS)?;
        c.service = service;
        let base = path.parent().unwrap_or(Path::new("."));
        c.key_dir = base.join(&c.key_dir);
        if let Some(p) = &mut c.key_pass_file {
            *p = base.join(&*p);
        }
        if let Some(p) = &mut c.policies {
            *p = base.join(&*p);
        }
        if let Some(a) = &mut c.audit {
            a.checkpoint_dir = base.join(&a.checkpoint_dir);
            if !(1..=86_400).contains(&a.checkpoint_interval_secs) {
                return Err(Error::malformed(format!(
                    "{}: [audit] checkpoint_interval_secs must be 1 to 86400",
                    path.display()
                )));
            }
        }
        c.tls.resolve(base);
        if let Some(cr) = &mut c.credentials {
            cr.signer_key = base.join(&cr.signer_key);
            cr.signer_chain = base.join(&cr.signer_chain);
            if let Some(p) = &mut cr.signer_pass_file {
                *p = base.join(&*p);
            }
            if !(1..=3650).contains(&cr.valid_days) {
                return Err(Error::malformed(format!(
                    "{}: [credentials] valid_days must be 1 to 3650",
                    path.display()
                )));
            }
        }
        if c.stale_pending_secs < 1 || c.signer_renewal_days < 0 {
            return Err(Error::malformed(format!(
                "{}: stale_pending_secs must be 1 or more and signer_renewal_days 0 or more",
                path.display()
            )));
        }
        Ok(c)
    }
}

/// The running service's state.
pub struct State {
    pub(crate) ca: Ca,
    pub(crate) store: Store,
    pub(crate) config: Config,
    /// Routing, metrics, limits and the audit of refusals.
    pub(crate) front: Front,
    /// Callers by the SHA-256 of their certificate.
    pub(crate) callers: AuthCache<[u8; 32], Caller>,
    /// The RAs a caller (by certificate row) may act for, by name.
    pub(crate) ras: AuthCache<(i64, String), RaRecord>,
    /// The credential signer of `[credentials]`.
    pub(crate) credential_signer: Option<gpki_credentials::IssuerKey>,
}

/// Opens the store and the CA keys' passphrase, and starts serving.
pub async fn start(config: Config) -> Result<Running> {
    let store = Store::open(&config.store).await?;
    start_on(config, store).await
}

/// [`start`] on a store already open (on `config.store`), shared with other
/// services of the process (`gpki dev up`): one pool and one writer, so their
/// writes group together instead of queueing for SQLite's one write lock.
pub async fn start_on(config: Config, store: Store) -> Result<Running> {
    let (callers, ras) = (
        AuthCache::new(config.auth_cache_ms)?,
        AuthCache::new(config.auth_cache_ms)?,
    );
    let profiles = match &config.policies {
        Some(dir) => Profiles::load_dir(dir)?,
        None => Profiles::builtin()?,
    };
    let pass = gpki_service::passphrase(config.key_pass_file.as_deref(), "the CA keys")?;
    // The online service holds no offline CA's custody: the root's key is never
    // reachable from here, whatever the store or a request names.
    let ca = Ca::new(
        store.clone(),
        profiles,
        config.key_dir.clone(),
        pass.clone(),
        "gpki-ca".into(),
    )
    .online_only();
    ca.record_profiles().await?;
    // The keys of the CAs that the RAs issue from are decrypted now (600,000
    // PBKDF2 rounds each), not while the first requests wait. A CA not in force
    // is only logged: the service still answers for the others.
    let issuing: std::collections::BTreeSet<String> = store
        .ras()
        .await?
        .into_iter()
        .filter(|r| r.status == "active")
        .map(|r| r.ca_name)
        .collect();
    for name in issuing {
        // (An offline CA is refused by `issuer` before its key is looked for.)
        if let Err(e) = ca.issuer(&name).await {
            tracing::warn!(ca = %name, error = %e, "CA key not loaded at start");
        }
    }
    let credential_signer = match &config.credentials {
        Some(c) => {
            let pass = match &c.signer_pass_file {
                Some(f) => gpki_pki::signer::Passphrase::from_file(f)?,
                None => pass.clone(),
            };
            let chain = gpki_pki::pem::decode_all(
                &std::fs::read(&c.signer_chain).map_err(|e| {
                    Error::not_found(format!("cannot read {}: {e}", c.signer_chain.display()))
                })?,
                "CERTIFICATE",
            )?;
            let key = gpki_credentials::IssuerKey::new(
                Arc::new(gpki_pki::SoftwareKey::read_encrypted(&c.signer_key, &pass)?),
                chain,
                gpki_pki::profile::EKU_MDL_DS,
                "credential signer",
            )?;
            // What is signed must verify: refused now, not at the first offer.
            store
                .signer_in_force(&key.chain()[0], "credential signer")
                .await?;
            Some(key)
        }
        None => None,
    };
    if let Some(a) = &config.audit {
        // The first checkpoint now, so a key or directory that does not work is
        // found at start; then on the schedule, each failure logged and retried.
        let (cp, _) = ca.audit_checkpoint(&a.checkpoint_dir).await?;
        tracing::info!(seq = cp.seq, dir = %a.checkpoint_dir.display(), "audit checkpoint");
        let (ca, a) = (ca.clone(), a.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(a.checkpoint_interval_secs));
            tick.tick().await;
            loop {
                tick.tick().await;
                match ca.audit_checkpoint(&a.checkpoint_dir).await {
                    Ok((cp, _)) => tracing::debug!(seq = cp.seq, "audit checkpoint"),
                    Err(e) => tracing::error!(error = %e, "audit checkpoint failed"),
                }
            }
        });
    }
    let front = Front::new(store.clone(), "ca", &config.service);
    let tls = config.tls.clone();
    let state = State {
        ca,
        store,
        config,
        front,
        callers,
        ras,
        credential_signer,
    };
    gpki_service::front::start("CA service", &tls, state).await
}

impl gpki_service::front::Service for State {
    fn front(&self) -> &Front {
        &self.front
    }

    async fn handle(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<gpki_service::Body> {
        handle(self, req).await
    }
}

/// Serves until SIGTERM or Ctrl-C, then finishes requests in flight.
pub async fn serve(config: Config) -> Result<()> {
    start(config).await?.until_signal("CA service").await;
    Ok(())
}
