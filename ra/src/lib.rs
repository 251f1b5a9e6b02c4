//! The registration authority service (`gpki-ra serve`): RA operators, each with
//! an ra-operator certificate, submit, verify, approve and reject requests over
//! mutual TLS; approved requests go to the CA service, which signs. RAs are data
//! (the store's `ras` rows), not processes: one RA service hosts every RA whose
//! host is its service-client name. See docs/api/ra.md.
//!
//! A request moves `submitted` → (`approved` by a second operator when the
//! profile is under dual control) → `issued` | `rejected` | `failed`; every move
//! is a compare-and-set in the store with its audit record.
#![forbid(unsafe_code)]

mod auth;
mod credentials;
mod decide;
mod forward;
mod holder;
mod operators;
mod renewal;
mod requests;
mod routes;

pub use decide::Wait;

use std::path::{Path, PathBuf};

use gpki_pki::profile::Profiles;
use gpki_pki::{Error, Result};
use gpki_service::api::ApiClient;
use gpki_service::ca_api::CertificateReply;
use gpki_service::front::Front;
use gpki_service::mtls::{AuthCache, ClientTls, Running, ServerTls};
use gpki_store::{RequestBook, Store};
use serde::{Deserialize, Serialize};

use crate::auth::Operator;
use crate::routes::handle;

/// `ra.toml`. Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `listen`, `max_request_bytes` and `[http]`, read by [`Config::load`].
    #[serde(skip)]
    pub service: gpki_service::ServiceConfig,
    pub store: String,
    /// This RA service's name as a client of the CA service: it hosts the RAs
    /// whose `host` is this name.
    pub host: String,
    #[serde(default)]
    pub policies: Option<PathBuf>,
    pub tls: ServerTls,
    /// How to reach the CA service, with this RA service's client certificate.
    pub ca: ClientTls,
    /// How long an operator's standing (certificate in force, operator and RA
    /// active) is trusted before the store is read again: at most 1000, so a
    /// revoked certificate or a suspended operator is refused within a second.
    /// 0 reads the store on every request.
    #[serde(default = "default_auth_cache_ms")]
    pub auth_cache_ms: u64,
    /// The mobile ID issuer's identifier (the `aud` of a holder's proof); unset,
    /// this RA service makes no credential offers.
    #[serde(default)]
    pub credential_issuer: Option<String>,
    /// Seconds a credential offer's nonce may be proven in.
    #[serde(default = "default_offer_ttl")]
    pub offer_ttl_seconds: i64,
}

fn default_offer_ttl() -> i64 {
    600
}

fn default_auth_cache_ms() -> u64 {
    500
}

/// This service's defaults for the keys every service shares.
const SERVICE_DEFAULTS: gpki_service::ServiceDefaults = gpki_service::ServiceDefaults {
    listen: "127.0.0.1:8444",
    max_request_bytes: 64 * 1024,
};

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let (service, mut c): (_, Config) =
            gpki_service::load_service_toml(path, SERVICE_DEFAULTS)?;
        c.service = service;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(p) = &mut c.policies {
            *p = base.join(&*p);
        }
        c.tls.resolve(base);
        c.ca.resolve(base);
        if !(60..=86_400).contains(&c.offer_ttl_seconds) {
            return Err(Error::malformed(format!(
                "{}: offer_ttl_seconds must be 60 to 86400",
                path.display()
            )));
        }
        Ok(c)
    }
}

/// An identity verification as an operator reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// `face-to-face` or `contact-free`.
    pub method: String,
    /// The document seen (kind and number).
    pub document: String,
}

/// `POST /v1/requests`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// The caller's key for this request: a replay with the same key and body
    /// returns the first request, and never makes a second certificate.
    pub idempotency_key: String,
    pub profile: String,
    pub subject: String,
    /// PEM PKCS#10.
    pub csr: String,
    #[serde(default)]
    pub sans: Vec<String>,
    #[serde(default)]
    pub identity: Option<Identity>,
    /// A dual enrolment (profile official-sign): PEM PKCS#10 of the official's
    /// one-time RSA transport key; the CA also issues the official-km
    /// certificate, whose key it makes, archives and seals to this key.
    #[serde(default)]
    pub km_transport: Option<String>,
}

/// `POST /v1/revocations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationBody {
    pub idempotency_key: String,
    pub serial: String,
    pub reason: String,
    #[serde(default)]
    pub identity: Option<Identity>,
}

/// `POST /v1/renewals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalBody {
    pub idempotency_key: String,
    pub serial: String,
    #[serde(default)]
    pub csr: Option<String>,
    /// Required to renew a certificate with a km pair: the pair is renewed
    /// together, the new km key sealed to this transport key (PEM PKCS#10).
    #[serde(default)]
    pub km_transport: Option<String>,
    /// A renewal that makes a new key (a CSR, or a pair's new km key) binds the
    /// official's name to it again: it needs what a first issuance needs.
    #[serde(default)]
    pub identity: Option<Identity>,
}

/// `POST /v1/requests/ID/reject`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    pub reason: String,
}

/// `POST /v1/operators`: enrol the holder of `csr` as an operator of the
/// caller's RA (admins only); the RA asks the CA for its ra-operator certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolBody {
    pub idempotency_key: String,
    pub name: String,
    pub subject: String,
    pub csr: String,
    #[serde(default)]
    pub admin: bool,
}

/// A request as the RA API returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestReply {
    pub request: serde_json::Value,
    /// The certificate, once issued.
    #[serde(default)]
    pub certificate: Option<CertificateReply>,
    /// True when this answers a replayed submission.
    #[serde(default)]
    pub replayed: bool,
    /// What a submitted request waits for before it goes to the CA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<Wait>,
}

pub(crate) struct State {
    pub(crate) store: RequestBook,
    pub(crate) config: Config,
    pub(crate) profiles: Profiles,
    pub(crate) ca: ApiClient,
    /// Routing, metrics, limits and the audit of refusals.
    pub(crate) front: Front,
    /// Operators by the SHA-256 of their certificate.
    pub(crate) operators: AuthCache<[u8; 32], Operator>,
}

/// Opens the store and starts serving.
pub async fn start(config: Config) -> Result<Running> {
    let store = Store::open(&config.store).await?;
    start_on(config, store).await
}

/// [`start`] on a store already open (on `config.store`), shared with other
/// services of the process (`gpki dev up`).
pub async fn start_on(config: Config, store: Store) -> Result<Running> {
    let operators = AuthCache::new(config.auth_cache_ms)?;
    let profiles = match &config.policies {
        Some(dir) => Profiles::load_dir(dir)?,
        None => Profiles::builtin()?,
    };
    let ca = config.ca.client()?;
    let front = Front::new(store.clone(), "ra", &config.service);
    let tls = config.tls.clone();
    let state = State {
        store: RequestBook::new(store),
        config,
        profiles,
        ca,
        front,
        operators,
    };
    gpki_service::front::start("RA service", &tls, state).await
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
    start(config).await?.until_signal("RA service").await;
    Ok(())
}
