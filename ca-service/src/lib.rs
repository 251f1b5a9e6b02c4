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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gpki_pki::crl::RevocationReason;
use gpki_pki::profile::Profiles;
use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::{error_reply, json_reply, parse};
use gpki_service::ca_api::{
    check_csr_sans, check_sans, check_scope, CertificateReply, IssueBody, RenewBody, RevokeBody,
    SignerRenewBody,
};
use gpki_service::credential_api::{
    known_official, official_id, CredentialBody, CredentialReply, OfferedAttributes,
};
use gpki_service::mtls::{
    caller, peer_key, ApiMetrics, AuthCache, Caller, Refusals, Running, ServerTls,
};
use gpki_service::{plain, Body, HttpLimits};
use gpki_store::{AuditEvent, CertStatus, CertificateRecord, RaRecord, Store};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use gpki_ca::{Ca, IssueRequest, Issued, KeySource};

/// `ca.toml`. Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: String,
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the CA keys are (`NAME.key.pem`).
    pub key_dir: PathBuf,
    /// The CA keys' passphrase (else `GPKI_KEY_PASS`).
    pub key_pass_file: Option<PathBuf>,
    /// Profiles from this directory instead of the built-in ones.
    #[serde(default)]
    pub policies: Option<PathBuf>,
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
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
    #[serde(default)]
    pub http: HttpLimits,
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

fn default_listen() -> String {
    "127.0.0.1:8443".into()
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
fn default_max_request_bytes() -> usize {
    64 * 1024
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let mut c: Config = gpki_service::load_toml(path)?;
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
        c.http.check()?;
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
    ca: Ca,
    store: Store,
    config: Config,
    metrics: ApiMetrics,
    refusals: Refusals,
    /// Callers by the SHA-256 of their certificate.
    callers: AuthCache<[u8; 32], Caller>,
    /// The RAs a caller (by certificate row) may act for, by name.
    ras: AuthCache<(i64, String), RaRecord>,
    /// The credential signer of `[credentials]`.
    credential_signer: Option<gpki_credentials::IssuerKey>,
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
    let metrics = ApiMetrics::new("ca");
    let refusals = Refusals::new(store.clone(), "ca");
    let acceptor = config
        .tls
        .acceptor(refusals.on_handshake(metrics.clone()))?;
    let (listen, limits) = (config.listen.clone(), config.http);
    let state = Arc::new(State {
        ca,
        store,
        config,
        metrics,
        refusals,
        callers,
        ras,
        credential_signer,
    });
    gpki_service::mtls::start("CA service", &listen, limits, acceptor, move |req| {
        let state = state.clone();
        async move { handle(&state, req).await }
    })
    .await
}

/// Serves until SIGTERM or Ctrl-C, then finishes requests in flight.
pub async fn serve(config: Config) -> Result<()> {
    start(config).await?.until_signal("CA service").await;
    Ok(())
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let route = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => "healthz",
        (&Method::GET, "/metrics") => "metrics",
        (&Method::POST, "/v1/certificates") => "issue",
        (&Method::POST, "/v1/certificates/renew") => "renew",
        (&Method::POST, "/v1/certificates/revoke") => "revoke",
        (&Method::POST, "/v1/signers/renew") => "signer-renew",
        (&Method::POST, "/v1/credentials") => "credential",
        _ => "other",
    };
    let gate = match route {
        "healthz" | "metrics" => gpki_service::mtls::health_refusal(&state.store, &req).await,
        _ => None,
    };
    let reply = match route {
        "healthz" | "metrics" if gate.is_some() => {
            state.metrics.refused("unauthenticated");
            error_reply(gate.as_ref().expect("checked"))
        }
        "healthz" => healthz(state).await,
        "metrics" => {
            let mut r = plain(StatusCode::OK, &state.metrics.render());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        "other" => error_reply(&Error::not_found(format!(
            "no route {} {}",
            req.method(),
            req.uri().path()
        ))),
        _ => api(state, route, req).await,
    };
    state
        .metrics
        .observe(route, reply.status().as_u16(), started);
    reply
}

async fn healthz(state: &State) -> Response<Body> {
    match gpki_store::ping(&state.store).await {
        // Never the store's URL (its user, host, database or password).
        Ok(()) => json_reply(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        Err(e) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "unavailable", "detail": e.detail }),
        ),
    }
}

/// An authenticated API call: who is calling, the body, then the route.
async fn api(state: &State, route: &str, req: Request<Incoming>) -> Response<Body> {
    let from = req.uri().path().to_string();
    let key = peer_key(&req);
    let cached = key.and_then(|k| state.callers.get(&k, gpki_pki::time::now()));
    let found = match cached {
        Some(c) => Ok(c),
        None => {
            let ticket = state.callers.ticket();
            caller(&state.store, &req).await.inspect(|c| {
                if let Some(k) = key {
                    state.callers.put(ticket, k, c.cert.not_after, c.clone());
                }
            })
        }
    };
    let who = match found {
        Ok(c) => c,
        Err(e) => {
            if e.kind == ErrorKind::Unauthorized {
                state.metrics.refused("unauthenticated");
                match req.extensions().get::<gpki_service::tls::PeerCertificate>() {
                    None => state.refusals.record_anonymous(&from, &e.detail).await,
                    Some(c) => state.refusals.record_unknown(&c.0, &from, &e).await,
                }
            }
            return error_reply(&e);
        }
    };
    let body = match gpki_service::read_body(
        req,
        state.config.max_request_bytes,
        Duration::from_millis(state.config.http.body_timeout_ms),
    )
    .await
    {
        Ok(b) => b,
        Err(r) => {
            state.metrics.refused("rejected");
            let e = Error::malformed(format!("request body refused (HTTP {})", r.status()));
            state
                .refusals
                .record(&format!("client:{}", who.label()), route, &e)
                .await;
            return r;
        }
    };
    let result = match route {
        "issue" => issue(state, &who, &body).await.map(reply),
        "renew" => renew(state, &who, &body).await.map(reply),
        "signer-renew" => renew_signer(state, &who, &body).await.map(reply),
        "revoke" => revoke(state, &who, &body).await.map(reply),
        "credential" => credential(state, &who, &body).await.map(reply),
        _ => unreachable!("routed above"),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            // Every refusal of an identified client, of every kind, is audited.
            if let Some(label) = gpki_service::mtls::refusal(&e) {
                state.metrics.refused(label);
                state
                    .refusals
                    .record(&format!("client:{}", who.label()), route, &e)
                    .await;
            }
            error_reply(&e)
        }
    }
}

fn reply(answer: (StatusCode, impl serde::Serialize)) -> Response<Body> {
    json_reply(answer.0, &answer.1)
}

fn unauthorized(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthorized, detail)
}

/// `POST /v1/credentials`: a mobile ID for an offer the RA recorded and whose
/// holder proof it checked. Nothing is taken from the RA on trust: the offer is
/// read from the store and must be this RA's and `proven`; the proof is checked
/// again against the offer's nonce and must be by the key the RA recorded; the
/// official must be one this RA knows, in force, in its scope, and the name and
/// institution and employee number come from their certificate, and the ID ends
/// no later than it. The offer becomes `issuing` before anything is signed, so it
/// makes one credential at most, and `issued` in the transaction that records the
/// credential valid and revokes the official's earlier IDs `replaced` (a new
/// phone).
async fn credential(
    state: &State,
    who: &Caller,
    body: &[u8],
) -> Result<(StatusCode, CredentialReply)> {
    let b: CredentialBody = parse(body)?;
    let ra = authorize_ra(state, who, &b.ra).await?;
    let (Some(config), Some(key)) = (&state.config.credentials, &state.credential_signer) else {
        return Err(Error::policy(
            "this CA service issues no credentials ([credentials] is not configured)",
        ));
    };
    if !config.ras.contains(&ra.name) {
        return Err(unauthorized(format!(
            "RA `{}` is not one this CA service issues credentials for",
            ra.name
        )));
    }
    let offer = state.store.offer(b.offer).await?;
    if offer.ra_id != ra.id {
        return Err(unauthorized(format!(
            "credential offer {} is not RA `{}`'s",
            offer.id, ra.name
        )));
    }
    if offer.status != "proven" {
        return Err(Error::conflict(format!(
            "credential offer {} is {}{}",
            offer.id,
            offer.status,
            offer
                .credential_id
                .map(|c| format!(" (credential {c})"))
                .unwrap_or_default()
        )));
    }
    let now = gpki_pki::time::now();
    let holder = gpki_credentials::proof::verify(&b.proof, &config.issuer, &offer.nonce, now)?;
    if offer.holder_jkt.as_deref() != Some(holder.thumbprint().as_str()) {
        return Err(Error::policy(
            "holder proof refused: its key is not the one the RA checked for this offer",
        ));
    }
    let official = known_official(
        &state.store,
        &ra,
        state
            .store
            .certificate_by_id(offer.official_cert_id)
            .await?,
        now,
    )
    .await?;
    let attributes: OfferedAttributes = serde_json::from_str(&offer.attributes)
        .map_err(|e| Error::internal(format!("offer {} attributes: {e}", offer.id)))?;
    let id = official_id(&attributes, &official)?;
    let official = official.cert;
    let format = gpki_ca::credential::Format::parse(&offer.format)?;
    let actor = format!("ra:{}", ra.name);
    let target = format!("credential-offer:{}", offer.id);
    state
        .store
        .move_offer(
            offer.id,
            "proven",
            "issuing",
            None,
            None,
            &AuditEvent::new(
                &actor,
                "credential.offer.issuing",
                &target,
                serde_json::json!({ "client": who.label() }),
            ),
        )
        .await?;
    let issued = gpki_ca::credential::issue(
        &state.store,
        key,
        &gpki_ca::credential::Order {
            id: &id,
            holder: &holder,
            format,
            status_list: &config.status_list,
            issuer: &config.issuer,
            valid_days: config.valid_days,
            replaces: &[],
            replace_earlier: true,
            not_after: Some(official.not_after),
            official_cert: Some(official.id),
            offer: Some((
                offer.id,
                AuditEvent::new(
                    &actor,
                    "credential.offer.issued",
                    &target,
                    serde_json::json!({ "client": who.label() }),
                ),
            )),
            actor: &actor,
            context: serde_json::json!({ "offer": offer.id, "official": format!("cert:{}/{}", official.issuer_id, official.serial) }),
        },
    )
    .await;
    let issued = match issued {
        Ok(i) => i,
        Err(e) => {
            // Nothing valid was made (a credential row is valid only once recorded
            // with its digest, and the offer marked issued with it): the offer may
            // be tried again while it has not expired.
            let back = AuditEvent::new(
                &actor,
                "credential.offer.retry",
                &target,
                serde_json::json!({ "error": e.detail }),
            );
            if let Err(e2) = state
                .store
                .move_offer(offer.id, "issuing", "proven", None, None, &back)
                .await
            {
                tracing::warn!(offer = offer.id, error = %e2, "offer left issuing");
            }
            return Err(e);
        }
    };
    Ok((
        StatusCode::CREATED,
        CredentialReply {
            id: issued.record.id,
            offer: offer.id,
            format: format.as_str().into(),
            credential: match format {
                gpki_ca::credential::Format::SdJwt => String::from_utf8(issued.bytes)
                    .map_err(|_| Error::internal("SD-JWT is not UTF-8"))?,
                gpki_ca::credential::Format::Mdoc => base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    &issued.bytes,
                ),
            },
            status_list: issued.list.name,
            idx: issued.record.idx,
            holder_jkt: issued.record.holder_jkt,
            valid_until: issued.valid_until,
        },
    ))
}

/// The service client the caller's certificate is registered as.
async fn registered_client(state: &State, who: &Caller) -> Result<gpki_store::ServiceClient> {
    state
        .store
        .service_client_by_cert(who.cert.id)
        .await?
        .ok_or_else(|| {
            unauthorized(format!(
                "certificate {} is not registered as a client of the CA service",
                who.label()
            ))
        })
}

/// The RA `ra` when the caller is the RA service registered to act for it.
async fn authorize_ra(state: &State, who: &Caller, ra: &str) -> Result<RaRecord> {
    let key = (who.cert.id, ra.to_string());
    if let Some(r) = state.ras.get(&key, gpki_pki::time::now()) {
        return Ok(r);
    }
    let ticket = state.ras.ticket();
    let record = authorize_ra_in_store(state, who, ra).await?;
    state
        .ras
        .put(ticket, key, who.cert.not_after, record.clone());
    Ok(record)
}

async fn authorize_ra_in_store(state: &State, who: &Caller, ra: &str) -> Result<RaRecord> {
    let client = registered_client(state, who).await?;
    if client.role != "ra" {
        return Err(unauthorized(format!(
            "client `{}` has role {}; only RA services ask for certificates",
            client.name, client.role
        )));
    }
    let record = match state.store.ra_by_name(ra).await {
        Ok(r) => r,
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(unauthorized(format!("no RA named `{ra}`")))
        }
        Err(e) => return Err(e),
    };
    if record.host != client.name {
        return Err(unauthorized(format!(
            "RA `{ra}` is not hosted by client `{}`",
            client.name
        )));
    }
    if record.status != "active" {
        return Err(unauthorized(format!("RA `{ra}` is {}", record.status)));
    }
    // An RA of an offline CA (a row written past `gpki ra create`'s refusal) gets
    // nothing here: every route an RA reaches acts for its CA.
    state
        .ca
        .require_custody(&state.store.authority_by_name(&record.ca_name).await?)?;
    Ok(record)
}

fn request_key(ra: &RaRecord, request_id: &str) -> Result<String> {
    if request_id.is_empty()
        || request_id.len() > 128
        || !request_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        // No `:`: it separates the RA's name from the id in the key, and RA names
        // have none, so no two RAs' keys can meet.
        return Err(Error::malformed(
            "request_id must be 1 to 128 characters of A-Z a-z 0-9 - _ .",
        ));
    }
    Ok(gpki_service::ca_api::ca_request_key(&ra.name, request_id))
}

async fn reply_for(
    ca: &Ca,
    ca_name: &str,
    record: &CertificateRecord,
    der: Option<&[u8]>,
    replayed: bool,
) -> Result<CertificateReply> {
    let chain = gpki_service::ca_api::chain_pem(&ca.chain(ca_name).await?);
    Ok(CertificateReply {
        certificate: der.map(|d| gpki_pki::pem::encode("CERTIFICATE", d)),
        replayed,
        ..CertificateReply::of(ca_name, record).with_chain(chain)
    })
}

/// The certificate an earlier call with `key` made, when there is one: a
/// replay is answered with it, never with a second certificate.
/// `same` says whether the recorded certificate answers this very request; a
/// request id reused for another request is a conflict. With `signed_only`, a
/// record not yet signed is no answer and is left as it is (the caller answers
/// with its own refusal).
async fn replayed(
    state: &State,
    ra: &RaRecord,
    key: &str,
    same: impl Fn(&CertificateRecord) -> Result<bool>,
    signed_only: bool,
) -> Result<Option<(StatusCode, CertificateReply)>> {
    let issuer = state.store.authority_by_name(&ra.ca_name).await?;
    let found = state
        .store
        .certificate_by_request_key(issuer.id, key)
        .await?;
    // A record that cannot be compared (its TBS no longer decodes) is the
    // store's fault, not the caller's: an internal error, not a conflict.
    let same = match &found {
        Some(r) if !(signed_only && r.status == CertStatus::Pending) => same(r)?,
        _ => true,
    };
    match found {
        None => Ok(None),
        Some(r) if signed_only && r.status == CertStatus::Pending => Ok(None),
        Some(r) if !same => Err(Error::conflict(format!(
            "request `{key}` was made for another request (certificate {}); a request id names one request",
            r.serial
        ))),
        // Recorded but never signed: the CA stopped between the two steps (record
        // before sign). Past the stale age no live signer holds it, so it is
        // abandoned (its serial stays reserved, unsigned) and the request is
        // issued afresh.
        Some(r)
            if r.status == CertStatus::Pending
                && gpki_pki::time::now() - r.created_at >= state.config.stale_pending_secs =>
        {
            let event = AuditEvent::new(
                &format!("ra:{}", ra.name),
                "cert.abandon",
                format!("cert:{}/{}", ra.ca_name, r.serial),
                serde_json::json!({ "reason": "pending past the stale age: the CA stopped before signing; issued afresh", "request_key": key }),
            );
            if state.store.abandon(r.id, &event).await? {
                Ok(None)
            } else {
                // Signed or abandoned by another call meanwhile: the next ask
                // finds out which.
                Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("request `{key}` is being settled; ask again"),
                ))
            }
        }
        Some(r) if r.status == CertStatus::Pending => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "request `{key}` is being signed (serial {}); ask again shortly",
                r.serial
            ),
        )),
        Some(r) => {
            let der = r.der.clone();
            Ok(Some((
                StatusCode::OK,
                reply_for(&state.ca, &ra.ca_name, &r, der.as_deref(), true).await?,
            )))
        }
    }
}

async fn finish(
    state: &State,
    ra: &RaRecord,
    key: &str,
    result: Result<Issued>,
    same: impl Fn(&CertificateRecord) -> Result<bool>,
) -> Result<(StatusCode, CertificateReply)> {
    match result {
        Ok(issued) => Ok((
            StatusCode::CREATED,
            reply_for(
                &state.ca,
                &ra.ca_name,
                &issued.record,
                Some(&issued.der),
                false,
            )
            .await?,
        )),
        // A concurrent call with the same key recorded first.
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            match replayed(state, ra, key, same, false).await? {
                Some(r) => Ok(r),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// SANs as a sorted set of their text forms.
fn san_set(sans: &[gpki_pki::cert::SanEntry]) -> Vec<String> {
    let mut v: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The km half of a dual request, checked before anything is issued: this
/// service archives keys to a KRA in force, the request is for an official-sign
/// certificate, the km profile is in the RA's scope, and the transport key is an
/// RSA key its holder signed with.
async fn km_asked(
    state: &State,
    ra: &RaRecord,
    profile: &str,
    subject: &str,
    km: Option<&gpki_service::ca_api::KmAsk>,
) -> Result<Option<(String, gpki_pki::csr::VerifiedCsr)>> {
    let Some(km) = km else { return Ok(None) };
    let kra = state.config.km.as_ref().ok_or_else(|| {
        Error::policy(
            "this CA service archives no km keys ([km] is not configured); ask without km",
        )
    })?;
    if profile != gpki_ca::km::SIGN_PROFILE {
        return Err(Error::policy(format!(
            "a km certificate pairs with an {} certificate, not {profile}",
            gpki_ca::km::SIGN_PROFILE
        )));
    }
    check_scope(ra, gpki_ca::km::KM_PROFILE, subject)?;
    let transport = gpki_service::ca_api::check_transport(&km.transport)?;
    // The KRA must take the key before the signing certificate is made: a pair is
    // not left half made for a KRA out of force.
    gpki_ca::km::kra_certificate(&state.store, &kra.kra).await?;
    Ok(Some((kra.kra.clone(), transport)))
}

/// The km certificate paired with `sign` for request `key`: the one made before
/// (a replay: no delivery, the key is only in the archive now), or a new one.
async fn km_for(
    state: &State,
    ra: &RaRecord,
    key: &str,
    sign_serial: &str,
    (kra, transport): (String, gpki_pki::csr::VerifiedCsr),
    renewed_from: Option<i64>,
) -> Result<gpki_service::ca_api::KmReply> {
    let km_key = format!("{key}/km");
    let issuer = state.store.authority_by_name(&ra.ca_name).await?;
    let sign = &state
        .store
        .certificate(issuer.id, sign_serial)
        .await?
        .ok_or_else(|| Error::internal("the certificate just answered is not in the store"))?;
    let earlier = |r: CertificateRecord| async move {
        if r.status == CertStatus::Pending {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "km certificate {} of request `{key}` was recorded but not signed; ask again, and if it stays so, revoke the pair and enrol again",
                    r.serial
                ),
            ));
        }
        if state.store.pair_of(r.id).await? != Some(sign.id) {
            return Err(Error::conflict(format!(
                "request `{key}` made km certificate {} for another certificate",
                r.serial
            )));
        }
        let der = r.der.clone();
        Ok(gpki_service::ca_api::KmReply {
            certificate: reply_for(&state.ca, &ra.ca_name, &r, der.as_deref(), true).await?,
            delivery: None,
        })
    };
    if let Some(r) = state
        .store
        .certificate_by_request_key(issuer.id, &km_key)
        .await?
    {
        return earlier(r).await;
    }
    let ca = state.ca.acting_as(format!("ra:{}", ra.name));
    let made = ca
        .issue_km(&gpki_ca::km::KmOrder {
            ca: &ra.ca_name,
            sign,
            kra: &kra,
            transport_spki: transport.spki_der(),
            request_key: Some(km_key.clone()),
            renewed_from,
        })
        .await;
    match made {
        Ok(m) => Ok(gpki_service::ca_api::KmReply {
            certificate: reply_for(
                &state.ca,
                &ra.ca_name,
                &m.issued.record,
                Some(&m.issued.der),
                false,
            )
            .await?,
            delivery: Some(gpki_pki::pem::encode("CMS", &m.delivery)),
        }),
        // A concurrent call with the same key recorded first.
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            match state
                .store
                .certificate_by_request_key(issuer.id, &km_key)
                .await?
            {
                Some(r) => earlier(r).await,
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

async fn issue(state: &State, who: &Caller, body: &[u8]) -> Result<(StatusCode, CertificateReply)> {
    let b: IssueBody = parse(body)?;
    let ra = authorize_ra(state, who, &b.ra).await?;
    check_scope(&ra, &b.profile, &b.subject)?;
    check_sans(&ra, &b.sans)?;
    let km = km_asked(state, &ra, &b.profile, &b.subject, b.km.as_ref()).await?;
    let key = request_key(&ra, &b.request_id)?;
    let (status, mut reply) = issue_one(state, &ra, &key, b).await?;
    if let Some(km) = km {
        reply.km = Some(Box::new(
            km_for(state, &ra, &key, &reply.serial, km, None).await?,
        ));
    }
    Ok((status, reply))
}

async fn issue_one(
    state: &State,
    ra: &RaRecord,
    key: &str,
    b: IssueBody,
) -> Result<(StatusCode, CertificateReply)> {
    let (ra, key) = (ra.clone(), key.to_string());
    let csr = gpki_pki::csr::parse_and_verify(b.csr.as_bytes())?;
    check_csr_sans(&csr, &b.sans)?;
    let spki_sha256 = hex::encode(openssl::sha::sha256(csr.spki_der()));
    let subject = gpki_pki::name::to_string(&gpki_pki::name::parse(&b.subject)?);
    let sans: Vec<gpki_pki::cert::SanEntry> = b
        .sans
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<_>>>()?;
    // The certificate's SANs are the request's (a CSR names no others: checked
    // above), as a set.
    let asked = san_set(&sans);
    let same = |c: &CertificateRecord| -> Result<bool> {
        if c.profile != b.profile || c.subject != subject || c.spki_sha256 != spki_sha256 {
            return Ok(false);
        }
        let made = <x509_cert::certificate::TbsCertificate as der::Decode>::from_der(&c.tbs)
            .map_err(Error::from)
            .and_then(|tbs| gpki_pki::cert::san_entries(&tbs))
            .map_err(|e| {
                Error::internal(format!(
                    "certificate {} in the store cannot be read ({}); the request is not answered",
                    c.serial, e.detail
                ))
            })?;
        Ok(san_set(&made) == asked)
    };
    let ca = state.ca.acting_as(format!("ra:{}", ra.name));
    let request = IssueRequest {
        ca: ra.ca_name.clone(),
        profile: b.profile.clone(),
        subject: Some(b.subject.clone()),
        key: KeySource::Verified(csr),
        sans,
        validity_days: b.validity_days,
        request_key: Some(key.clone()),
        renewed_from: None,
    };
    // The key is recorded with the certificate, before it is signed, under a
    // unique index: a replay is refused at recording (nothing is signed) and
    // answered with what the first call made, so the store is not asked first.
    let result = ca.issue(&request).await;
    match &result {
        // A replay: answered with what the first call made, or (a record
        // abandoned past the stale age) issued afresh, once.
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            return match replayed(state, &ra, &key, same, false).await? {
                Some(r) => Ok(r),
                None => finish(state, &ra, &key, ca.issue(&request).await, same).await,
            };
        }
        // Refused for another reason (the CA put on hold or a profile changed
        // since the first call was signed): a certificate signed for the key
        // is still the answer; a record not signed (this call's own, say) is
        // not, and the refusal stands.
        Err(_) => {
            if let Some(r) = replayed(state, &ra, &key, same, true).await? {
                return Ok(r);
            }
        }
        Ok(_) => {}
    }
    finish(state, &ra, &key, result, same).await
}

/// The RA's certificate `serial`, when it is in the RA's scope.
async fn scoped_certificate(
    state: &State,
    ra: &RaRecord,
    serial: &str,
) -> Result<CertificateRecord> {
    let serial = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    let issuer = state.store.authority_by_name(&ra.ca_name).await?;
    let old = state
        .store
        .certificate(issuer.id, &serial)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "no certificate with serial {serial} from CA `{}`",
                ra.ca_name
            ))
        })?;
    check_scope(ra, &old.profile, &old.subject)?;
    Ok(old)
}

async fn renew(state: &State, who: &Caller, body: &[u8]) -> Result<(StatusCode, CertificateReply)> {
    let b: RenewBody = parse(body)?;
    let ra = authorize_ra(state, who, &b.ra).await?;
    let key = request_key(&ra, &b.request_id)?;
    // Scope first: a replay answers only what the RA may see.
    let old = scoped_certificate(state, &ra, &b.serial).await?;
    // The RA's renewal window holds here too, not only in the RA service.
    let opens = old.not_after - ra.renew_window_days * 86_400;
    if gpki_pki::time::now() < opens {
        return Err(Error::policy(format!(
            "certificate {} may be renewed from {} (RA `{}`: {} days before it expires), not earlier",
            old.serial,
            gpki_pki::time::rfc3339(opens),
            ra.name,
            ra.renew_window_days
        )));
    }
    // A pair is renewed together, from its signing certificate, with a new km key.
    let old_km = match state.store.pair_of(old.id).await? {
        Some(_) if old.profile == gpki_ca::km::KM_PROFILE => {
            return Err(Error::policy(format!(
                "km certificate {} is renewed with its official-sign pair",
                old.serial
            )))
        }
        Some(id) => Some(id),
        None => None,
    };
    let km = match (old_km, b.km.as_ref()) {
        (Some(_), None) => {
            return Err(Error::policy(format!(
            "certificate {} has a km pair; a renewal renews both and needs a transport key (km)",
            old.serial
        )))
        }
        (None, Some(_)) => {
            return Err(Error::policy(format!(
                "certificate {} has no km pair to renew",
                old.serial
            )))
        }
        (Some(_), km) => km_asked(state, &ra, &old.profile, &old.subject, km).await?,
        (None, None) => None,
    };
    let (status, mut reply) = renew_one(state, &ra, &key, &old, b).await?;
    if let Some(km) = km {
        reply.km = Some(Box::new(
            km_for(state, &ra, &key, &reply.serial, km, old_km).await?,
        ));
    }
    Ok((status, reply))
}

async fn renew_one(
    state: &State,
    ra: &RaRecord,
    key: &str,
    old: &CertificateRecord,
    b: RenewBody,
) -> Result<(StatusCode, CertificateReply)> {
    let (ra, key, old) = (ra.clone(), key.to_string(), old.clone());
    let new_key = match &b.csr {
        Some(c) => Some(hex::encode(openssl::sha::sha256(
            gpki_pki::csr::parse_and_verify(c.as_bytes())?.spki_der(),
        ))),
        None => None,
    };
    let same = |c: &CertificateRecord| {
        Ok(c.renewed_from == Some(old.id) && new_key.as_ref().is_none_or(|k| *k == c.spki_sha256))
    };
    if let Some(r) = replayed(state, &ra, &key, same, false).await? {
        return Ok(r);
    }
    if old.not_after <= gpki_pki::time::now() {
        return Err(Error::conflict(format!(
            "certificate {} has expired; an expired certificate is not renewed, a new one is requested",
            old.serial
        )));
    }
    let ca = state.ca.acting_as(format!("ra:{}", ra.name));
    let result = ca
        .renew(
            &ra.ca_name,
            &old.serial,
            b.csr.map(|c| KeySource::Csr(c.into_bytes())),
            false,
            Some(key.clone()),
        )
        .await;
    finish(state, &ra, &key, result, same).await
}

async fn revoke(
    state: &State,
    who: &Caller,
    body: &[u8],
) -> Result<(StatusCode, CertificateReply)> {
    let b: RevokeBody = parse(body)?;
    let ra = authorize_ra(state, who, &b.ra).await?;
    let reason: RevocationReason = b.reason.parse()?;
    let old = scoped_certificate(state, &ra, &b.serial).await?;
    let ca = state.ca.acting_as(format!("ra:{}", ra.name));
    let (record, pair) = ca
        .revoke_with_pair(&ra.ca_name, &old.serial, reason, b.invalidity_date, false)
        .await?;
    // A client certificate revoked here is refused from the next request on.
    state.callers.clear();
    state.ras.clear();
    let der = record.der.clone();
    let mut reply = reply_for(&state.ca, &ra.ca_name, &record, der.as_deref(), false).await?;
    // A revocation offers the pair: the RA names it, and revokes it on request.
    reply.pair = pair.map(|p| gpki_service::ca_api::PairReply {
        serial: p.serial,
        profile: p.profile,
        status: p.status.to_string(),
    });
    Ok((StatusCode::OK, reply))
}

/// The delegated signer's current certificate that `client` asks renewed: of the
/// profile its role renews, of an online CA, in force, and within the renewal
/// window.
async fn signer_to_renew(
    state: &State,
    client: &gpki_store::ServiceClient,
    b: &SignerRenewBody,
) -> Result<(gpki_store::AuthorityRecord, CertificateRecord)> {
    let profile = match client.role.as_str() {
        "ocsp" => "ocsp-signer",
        "tsa" => "tsa",
        r => {
            return Err(unauthorized(format!(
                "client `{}` has role {r}; only ocsp and tsa clients renew signer certificates",
                client.name
            )))
        }
    };
    let issuer = match state.store.authority_by_name(&b.ca).await {
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(Error::not_found(format!("no CA named `{}`", b.ca)))
        }
        r => r?,
    };
    // An offline CA's responder certificates are renewed offline only.
    state.ca.require_custody(&issuer)?;
    let serial = b.serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    let old = state
        .store
        .certificate(issuer.id, &serial)
        .await?
        .ok_or_else(|| Error::not_found(format!("no certificate {serial} of CA `{}`", b.ca)))?;
    if old.profile != profile {
        return Err(unauthorized(format!(
            "certificate {serial} is of profile {}; {} clients renew {profile} certificates",
            old.profile, client.role
        )));
    }
    let now = gpki_pki::time::now();
    if old.status != CertStatus::Issued || old.not_after <= now {
        return Err(Error::conflict(format!(
            "certificate {serial} is {} (until {}); only a certificate in force is renewed by its signer",
            old.status,
            gpki_pki::time::rfc3339(old.not_after)
        )));
    }
    // A signer renews only within the window before its expiry, once.
    let window = state.config.signer_renewal_days * 86_400;
    if old.not_after - now > window {
        return Err(Error::policy(format!(
            "certificate {serial} may be renewed from {} ({} days before it expires), not earlier",
            gpki_pki::time::rfc3339(old.not_after - window),
            state.config.signer_renewal_days
        )));
    }
    Ok((issuer, old))
}

/// Proof that the caller holds the current signer's key: `proof` (hex) signs the
/// renewal message naming the current certificate and the new key.
fn check_signer_proof(old: &CertificateRecord, new_key: &str, proof: &str) -> Result<()> {
    let serial = &old.serial;
    let old_der = old
        .der
        .as_deref()
        .ok_or_else(|| Error::conflict(format!("certificate {serial} was never signed")))?;
    let old_cert = gpki_pki::cert::decode(old_der)?;
    let old_spki = der::Encode::to_der(&old_cert.tbs_certificate.subject_public_key_info)?;
    let proof = hex::decode(proof.trim()).map_err(|_| Error::malformed("proof must be hex"))?;
    let message = gpki_service::ca_api::signer_renewal_message(
        &hex::encode(openssl::sha::sha256(old_der)),
        new_key,
    );
    let algorithm = gpki_pki::KeyType::of_spki(&old_spki)?.default_signature_algorithm();
    if !gpki_pki::signer::verify(&old_spki, algorithm, &message, &proof)? {
        return Err(Error::new(
            ErrorKind::Unauthorized,
            format!("the renewal of {serial} is not signed by that certificate's key"),
        ));
    }
    Ok(())
}

/// `POST /v1/signers/renew`: the next certificate of a delegated signer, for a new
/// key, asked by the signer's host itself (a service client of role `ocsp` for an
/// ocsp-signer certificate, `tsa` for a tsa certificate), so that no process but
/// this one opens a CA key. The current certificate must be in force; the new one
/// keeps its subject and profile. Replays (same certificate, same new key) get the
/// certificate made the first time.
async fn renew_signer(
    state: &State,
    who: &Caller,
    body: &[u8],
) -> Result<(StatusCode, CertificateReply)> {
    let b: SignerRenewBody = parse(body)?;
    let client = registered_client(state, who).await?;
    let (issuer, old) = signer_to_renew(state, &client, &b).await?;
    let (serial, now) = (old.serial.clone(), gpki_pki::time::now());
    let csr = gpki_pki::csr::parse_and_verify(b.csr.as_bytes())?;
    check_csr_sans(&csr, &[])?;
    let new_key = hex::encode(openssl::sha::sha256(csr.spki_der()));
    check_signer_proof(&old, &new_key, &b.proof)?;
    // One renewal per certificate: the same request again gets what it made;
    // another key for a certificate renewed already is refused.
    let key = format!("signer:{serial}");
    if let Some(found) = state
        .store
        .certificate_by_request_key(issuer.id, &key)
        .await?
    {
        if found.renewed_from != Some(old.id) || found.spki_sha256 != new_key {
            return Err(Error::conflict(format!(
                "certificate {serial} was renewed already (as {}); renew that one",
                found.serial
            )));
        }
        if found.status != CertStatus::Pending {
            let der = found.der.clone();
            return Ok((
                StatusCode::OK,
                reply_for(&state.ca, &b.ca, &found, der.as_deref(), true).await?,
            ));
        }
        // Recorded, never signed: past the stale age the CA that recorded it is
        // gone, so it is abandoned and the renewal made afresh below.
        let stale = now - found.created_at >= state.config.stale_pending_secs;
        let event = AuditEvent::new(
            &format!("signer:{}", client.name),
            "cert.abandon",
            format!("cert:{}/{}", b.ca, found.serial),
            serde_json::json!({ "reason": "pending past the stale age: the CA stopped before signing; renewed afresh" }),
        );
        if !stale || !state.store.abandon(found.id, &event).await? {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("the renewal of {serial} is being signed; ask again shortly"),
            ));
        }
    }
    if new_key == old.spki_sha256 {
        return Err(Error::policy(format!(
            "the request is for the key of certificate {serial}; a signer renews with a new key"
        )));
    }
    if gpki_pki::name::to_string(csr.subject()) != old.subject {
        return Err(Error::policy(format!(
            "the request's subject `{}` is not the certificate's `{}`",
            gpki_pki::name::to_string(csr.subject()),
            old.subject
        )));
    }
    let ca = state.ca.acting_as(format!("signer:{}", client.name));
    let result = ca
        .renew(
            &b.ca,
            &serial,
            Some(KeySource::Verified(csr)),
            false,
            Some(key.clone()),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        reply_for(&state.ca, &b.ca, &result.record, Some(&result.der), false).await?,
    ))
}
