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

mod credentials;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gpki_pki::profile::Profiles;
use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::{error_reply, json_reply, parse, ApiClient};
use gpki_service::ca_api::{
    check_csr_sans, check_sans, check_scope, holder_revocation_message, CertificateReply,
    HolderRevocationBody, IssueBody, KmAsk, PairReply, RenewBody, RevokeBody,
};
use gpki_service::mtls::{
    caller, peer_key, ApiMetrics, AuthCache, ClientTls, Refusals, Running, ServerTls,
};
use gpki_service::{plain, Body, HttpLimits};
use gpki_store::{
    AuditEvent, Enrolment, IdentityRecord, NewRequest, OperatorRecord, RaRecord, RaRequest, Store,
    Transition,
};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `ra.toml`. Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: String,
    #[serde(default = "default_listen")]
    pub listen: String,
    /// This RA service's name as a client of the CA service: it hosts the RAs
    /// whose `host` is this name.
    pub host: String,
    #[serde(default)]
    pub policies: Option<PathBuf>,
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    pub tls: ServerTls,
    /// How to reach the CA service, with this RA service's client certificate.
    pub ca: ClientTls,
    #[serde(default)]
    pub http: HttpLimits,
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

fn default_listen() -> String {
    "127.0.0.1:8444".into()
}
fn default_auth_cache_ms() -> u64 {
    500
}
fn default_max_request_bytes() -> usize {
    64 * 1024
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let mut c: Config = gpki_service::load_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(p) = &mut c.policies {
            *p = base.join(&*p);
        }
        c.tls.resolve(base);
        c.ca.resolve(base);
        c.http.check()?;
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

struct State {
    store: Store,
    config: Config,
    profiles: Profiles,
    ca: ApiClient,
    metrics: ApiMetrics,
    refusals: Refusals,
    /// Operators by the SHA-256 of their certificate.
    operators: AuthCache<[u8; 32], Operator>,
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
    let metrics = ApiMetrics::new("ra");
    let refusals = Refusals::new(store.clone(), "ra");
    let acceptor = config
        .tls
        .acceptor(refusals.on_handshake(metrics.clone()))?;
    let (listen, limits) = (config.listen.clone(), config.http);
    let state = Arc::new(State {
        store,
        config,
        profiles,
        ca,
        metrics,
        refusals,
        operators,
    });
    gpki_service::mtls::start("RA service", &listen, limits, acceptor, move |req| {
        let state = state.clone();
        async move { handle(&state, req).await }
    })
    .await
}

/// Serves until SIGTERM or Ctrl-C, then finishes requests in flight.
pub async fn serve(config: Config) -> Result<()> {
    start(config).await?.until_signal("RA service").await;
    Ok(())
}

/// A route: its metric label and the request id in its path, if any.
fn route(method: &Method, path: &str) -> (&'static str, Option<i64>) {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let id = |s: &str| s.parse::<i64>().ok();
    match (method, parts.as_slice()) {
        (&Method::GET, ["healthz"]) => ("healthz", None),
        (&Method::GET, ["metrics"]) => ("metrics", None),
        (&Method::GET, ["v1", "whoami"]) => ("whoami", None),
        (&Method::POST, ["v1", "requests"]) => ("submit", None),
        (&Method::GET, ["v1", "requests"]) => ("list", None),
        (&Method::GET, ["v1", "requests", n]) if id(n).is_some() => ("show", id(n)),
        (&Method::POST, ["v1", "requests", n, "identity"]) if id(n).is_some() => {
            ("identity", id(n))
        }
        (&Method::POST, ["v1", "requests", n, "approve"]) if id(n).is_some() => ("approve", id(n)),
        (&Method::POST, ["v1", "requests", n, "reject"]) if id(n).is_some() => ("reject", id(n)),
        (&Method::POST, ["v1", "revocations"]) => ("revoke", None),
        (&Method::POST, ["v1", "holder", "revocations"]) => ("holder-revoke", None),
        (&Method::POST, ["v1", "holder", "credential-revocations"]) => {
            ("holder-credential-revoke", None)
        }
        (&Method::POST, ["v1", "credentials", n, "revoke"]) if id(n).is_some() => {
            ("credential-revoke", id(n))
        }
        (&Method::POST, ["v1", "renewals"]) => ("renew", None),
        (&Method::POST, ["v1", "credentials", "offers"]) => ("offer", None),
        (&Method::POST, ["v1", "credentials", "offers", n, "issue"]) if id(n).is_some() => {
            ("offer-issue", id(n))
        }
        (&Method::GET, ["v1", "operators"]) => ("operators", None),
        (&Method::POST, ["v1", "operators"]) => ("enrol", None),
        (&Method::POST, ["v1", "operators", n, "suspend"]) if id(n).is_some() => ("suspend", id(n)),
        (&Method::POST, ["v1", "operators", n, "activate"]) if id(n).is_some() => {
            ("activate", id(n))
        }
        (&Method::POST, ["v1", "operators", n, "remove"]) if id(n).is_some() => ("remove", id(n)),
        _ => ("other", None),
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let (name, id) = route(req.method(), req.uri().path());
    let gate = match name {
        "healthz" | "metrics" => gpki_service::mtls::health_refusal(&state.store, &req).await,
        _ => None,
    };
    let reply = match name {
        "healthz" | "metrics" if gate.is_some() => {
            state.metrics.refused("unauthenticated");
            error_reply(gate.as_ref().expect("checked"))
        }
        "healthz" => match gpki_store::ping(&state.store).await {
            Ok(()) => json_reply(StatusCode::OK, &json!({ "status": "ok" })),
            Err(e) => json_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "unavailable", "detail": e.detail }),
            ),
        },
        "metrics" => plain(StatusCode::OK, &state.metrics.render()),
        "holder-revoke" | "holder-credential-revoke" => holder_revoke(state, name, req).await,
        "other" => error_reply(&Error::not_found(format!(
            "no route {} {}",
            req.method(),
            req.uri().path()
        ))),
        _ => api(state, name, id, req).await,
    };
    state
        .metrics
        .observe(name, reply.status().as_u16(), started);
    reply
}

/// The operator making a call, with their RA.
#[derive(Clone)]
struct Operator {
    record: OperatorRecord,
    ra: RaRecord,
    label: String,
}

impl Operator {
    fn event(
        &self,
        action: &str,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::new(&self.label, action, target, detail)
    }
}

/// Who acts for an RA when a request goes to the CA: an operator, or a holder
/// revoking their own certificate.
#[derive(Clone, Copy)]
struct Actor<'a> {
    ra: &'a RaRecord,
    label: &'a str,
}

impl Actor<'_> {
    fn event(
        &self,
        action: &str,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::new(self.label, action, target, detail)
    }
}

impl Operator {
    fn actor(&self) -> Actor<'_> {
        Actor {
            ra: &self.ra,
            label: &self.label,
        }
    }
}

fn unauthorized(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthorized, detail)
}

/// The request body within the service's size and time limits, or the reply that
/// refuses it.
async fn body_of(
    state: &State,
    req: Request<Incoming>,
) -> std::result::Result<gpki_service::Bytes, Response<Body>> {
    gpki_service::read_body(
        req,
        state.config.max_request_bytes,
        Duration::from_millis(state.config.http.body_timeout_ms),
    )
    .await
}

/// The operator behind an identified certificate, active, of an active RA this
/// service hosts.
async fn operator(state: &State, who: gpki_service::mtls::Caller) -> Result<Operator> {
    let record = state
        .store
        .operator_by_cert(who.cert.id)
        .await?
        .ok_or_else(|| {
            unauthorized(format!(
                "certificate {} is not an RA operator's",
                who.label()
            ))
        })?;
    if who.cert.profile != "ra-operator" {
        return Err(unauthorized(format!(
            "certificate {} is of profile {}, not ra-operator",
            who.label(),
            who.cert.profile
        )));
    }
    if record.status != "active" {
        return Err(unauthorized(format!(
            "operator `{}` is {}",
            record.name, record.status
        )));
    }
    let ra = state.store.ra(record.ra_id).await?;
    if ra.status != "active" {
        return Err(unauthorized(format!("RA `{}` is {}", ra.name, ra.status)));
    }
    if ra.host != state.config.host {
        return Err(unauthorized(format!(
            "RA `{}` is not hosted by this RA service",
            ra.name
        )));
    }
    let label = format!("operator:{}/{}", ra.name, record.name);
    Ok(Operator { record, ra, label })
}

async fn api(
    state: &State,
    name: &'static str,
    id: Option<i64>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let key = peer_key(&req);
    let op = match key.and_then(|k| state.operators.get(&k, gpki_pki::time::now())) {
        Some(op) => op,
        None => match (
            state.operators.ticket(),
            authenticate(state, &req, &path).await,
        ) {
            (ticket, Ok((op, not_after))) => {
                if let Some(k) = key {
                    state.operators.put(ticket, k, not_after, op.clone());
                }
                op
            }
            (_, Err(reply)) => return reply,
        },
    };
    let body = match body_of(state, req).await {
        Ok(b) => b,
        Err(r) => {
            // An oversized or stalled body of an identified operator is a refusal too.
            state.metrics.refused("rejected");
            let e = Error::malformed(format!("request body refused (HTTP {})", r.status()));
            state.refusals.record(&op.label, &path, &e).await;
            return r;
        }
    };
    let result = match name {
        "whoami" => Ok((
            StatusCode::OK,
            json!({ "operator": op.record, "ra": op.ra }),
        )),
        "submit" => submit(state, &op, &body).await,
        "list" => list(state, &op, &query).await,
        "show" => show(state, &op, id.expect("routed with an id")).await,
        "identity" => identity(state, &op, id.expect("routed with an id"), &body).await,
        "approve" => approve(state, &op, id.expect("routed with an id")).await,
        "reject" => reject(state, &op, id.expect("routed with an id"), &body).await,
        "revoke" => revoke(state, &op, &body).await,
        "renew" => renew(state, &op, &body).await,
        "operators" => state
            .store
            .operators(op.ra.id)
            .await
            .map(|o| (StatusCode::OK, json!({ "operators": o }))),
        "enrol" => enrol(state, &op, &body).await,
        "offer" => credentials::offer(state, &op, &body).await,
        "credential-revoke" => {
            credentials::revoke(state, &op, id.expect("routed with an id"), &body).await
        }
        "offer-issue" => {
            credentials::issue(state, &op, id.expect("routed with an id"), &body).await
        }
        "suspend" | "activate" | "remove" => {
            operator_status(state, &op, id.expect("routed with an id"), name).await
        }
        _ => unreachable!("routed above"),
    };
    match result {
        Ok((status, v)) => json_reply(status, &v),
        Err(e) => {
            // Every refusal of an identified operator is audited with its reason
            // (a replayed key with another body, a broken CSR, a policy), not only
            // the unauthorised ones.
            if let Some(label) = gpki_service::mtls::refusal(&e) {
                state.metrics.refused(label);
                state.refusals.record(&op.label, &path, &e).await;
            }
            error_reply(&e)
        }
    }
}

/// The operator behind the request's client certificate, read from the store,
/// with the certificate's `not_after`; or the (audited) refusal.
async fn authenticate(
    state: &State,
    req: &Request<Incoming>,
    path: &str,
) -> std::result::Result<(Operator, i64), Response<Body>> {
    let who = match caller(&state.store, req).await {
        Ok(w) => w,
        Err(e) => {
            if e.kind == ErrorKind::Unauthorized {
                state.metrics.refused("unauthenticated");
                match req.extensions().get::<gpki_service::tls::PeerCertificate>() {
                    None => state.refusals.record_anonymous(path, &e.detail).await,
                    Some(c) => state.refusals.record_unknown(&c.0, path, &e).await,
                }
            }
            return Err(error_reply(&e));
        }
    };
    // A certificate the store holds in force: refusals from here name it.
    let label = format!("cert:{}", who.label());
    let req_peer = req
        .extensions()
        .get::<gpki_service::tls::PeerCertificate>()
        .cloned();
    let cert_id = who.cert.id;
    let not_after = who.cert.not_after;
    match operator(state, who).await {
        Ok(o) => Ok((o, not_after)),
        Err(e) => {
            if e.kind == ErrorKind::Unauthorized {
                state.metrics.refused("unauthorized");
                // An operator's certificate (suspended, removed, of another RA) is
                // audited every time under its name; any other certificate the
                // store holds (an official's) at most once a second, so holders
                // cannot flood the audit log.
                match state.store.operator_by_cert(cert_id).await {
                    Ok(Some(_)) => state.refusals.record(&label, path, &e).await,
                    _ => match req_peer {
                        Some(c) => state.refusals.record_unknown(&c.0, path, &e).await,
                        None => state.refusals.record_anonymous(path, &e.detail).await,
                    },
                }
            }
            Err(error_reply(&e))
        }
    }
}

type Reply = Result<(StatusCode, serde_json::Value)>;

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = openssl::sha::Sha256::new();
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finish())
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > 100
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(Error::malformed(
            "idempotency_key must be 1 to 100 characters of A-Z a-z 0-9 - _ . :",
        ));
    }
    Ok(())
}

fn identity_record(op: &Operator, i: &Identity) -> Result<IdentityRecord> {
    if !matches!(i.method.as_str(), "face-to-face" | "contact-free") {
        return Err(Error::malformed(format!(
            "identity method `{}`: expected face-to-face or contact-free",
            i.method
        )));
    }
    if i.document.trim().is_empty() || i.document.len() > 200 {
        return Err(Error::malformed(
            "identity document must name the document seen (1 to 200 characters)",
        ));
    }
    Ok(IdentityRecord {
        method: i.method.clone(),
        document: i.document.clone(),
        operator_id: op.record.id,
        verified_at: gpki_pki::time::now(),
    })
}

/// What `submit_request` said of a request: made now, or found (a replay), and
/// whether it had been answered before this call carried it on.
#[derive(Clone, Copy)]
struct Recorded {
    created: bool,
    answered_before: bool,
}

impl Recorded {
    fn of(r: &RaRequest, created: bool) -> Recorded {
        Recorded {
            created,
            answered_before: !created && !matches!(r.status.as_str(), "submitted" | "approved"),
        }
    }

    fn status(self) -> StatusCode {
        if self.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    }

    /// The reply for `s` as it stands after this call.
    async fn reply(self, state: &State, s: &Settled) -> Reply {
        Ok((self.status(), reply(state, s, self.answered_before).await?))
    }
}

/// A request as it stands after a call, with the certificate the CA answered
/// on this call (the reply then need not read it back).
struct Settled {
    request: RaRequest,
    certificate: Option<CertificateReply>,
}

impl From<RaRequest> for Settled {
    fn from(request: RaRequest) -> Settled {
        Settled {
            request,
            certificate: None,
        }
    }
}

/// The other certificate of `cert_id`'s pair, as it stands.
async fn pair_reply(store: &Store, cert_id: i64) -> Result<Option<PairReply>> {
    Ok(match store.pair_of(cert_id).await? {
        Some(id) => {
            let p = store.certificate_by_id(id).await?;
            Some(PairReply {
                serial: p.serial,
                profile: p.profile,
                status: p.status.to_string(),
            })
        }
        None => None,
    })
}

async fn reply(state: &State, s: &Settled, replayed: bool) -> Result<serde_json::Value> {
    let r = &s.request;
    let certificate = match (&s.certificate, r.cert_id) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(id)) => {
            let c = state.store.certificate_by_id(id).await?;
            let ca = state.store.authority(c.issuer_id).await?;
            Some(CertificateReply {
                ca: ca.name,
                serial: c.serial.clone(),
                profile: c.profile.clone(),
                subject: c.subject.clone(),
                status: c.status.to_string(),
                not_before: c.not_before,
                not_after: c.not_after,
                certificate: c
                    .der
                    .as_deref()
                    .map(|d| gpki_pki::pem::encode("CERTIFICATE", d)),
                chain: gpki_service::ca_api::chain_pem(
                    &state.store.authority_chain(c.issuer_id).await?,
                ),
                replayed: false,
                km: None,
                pair: pair_reply(&state.store, c.id).await?,
            })
        }
        (None, None) => None,
    };
    let waiting_for = if r.status == "submitted" {
        waits_for(
            &state.store.ra(r.ra_id).await?,
            &state.profiles,
            &Ask::of(r),
        )?
    } else {
        Vec::new()
    };
    Ok(serde_json::to_value(RequestReply {
        request: serde_json::to_value(r).expect("JSON of a request"),
        certificate,
        replayed,
        waiting_for,
    })
    .expect("JSON of a reply"))
}

async fn submit(state: &State, op: &Operator, body: &[u8]) -> Reply {
    let b: SubmitBody = parse(body)?;
    check_key(&b.idempotency_key)?;
    let profile = state.profiles.get(&b.profile)?;
    if b.profile == "ra-operator" {
        // Operator certificates are the RA's membership: administrators enrol.
        return Err(unauthorized(
            "ra-operator certificates are enrolled by administrators (POST /v1/operators)",
        ));
    }
    check_scope(&op.ra, &b.profile, &b.subject)?;
    check_sans(&op.ra, &b.sans)?;
    // Refuse a CSR that does not verify, names SANs the request does not, or has
    // a key the profile does not take, before anything is recorded.
    let csr = gpki_pki::csr::parse_and_verify(b.csr.as_bytes())?;
    check_csr_sans(&csr, &b.sans)?;
    profile.allows_key(gpki_pki::KeyType::of_spki(csr.spki_der())?)?;
    if let Some(t) = &b.km_transport {
        // The km certificate is the RA's request too: its profile in scope.
        if b.profile != gpki_service::ca_api::SIGN_PROFILE {
            return Err(Error::policy(format!(
                "a km certificate pairs with an {} certificate, not {}",
                gpki_service::ca_api::SIGN_PROFILE,
                b.profile
            )));
        }
        check_scope(&op.ra, gpki_service::ca_api::KM_PROFILE, &b.subject)?;
        gpki_service::ca_api::check_transport(t)?;
    }
    let identity = b
        .identity
        .as_ref()
        .map(|i| identity_record(op, i))
        .transpose()?;
    let body_sha256 = sha256_hex(&[
        "issue",
        &b.profile,
        &b.subject,
        &b.csr,
        &b.sans.join("\n"),
        b.km_transport.as_deref().unwrap_or(""),
    ]);
    // One operator may decide alone (no dual control, no identity check missing):
    // the submission is the approval, recorded as one.
    let ask = Ask {
        kind: "issue",
        profile: &b.profile,
        km: b.km_transport.is_some(),
        new_key: true,
        identity_seen: identity.is_some(),
    };
    let alone = waits_for(&op.ra, &state.profiles, &ask)?.is_empty();
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                ra_id: op.ra.id,
                idempotency_key: b.idempotency_key.clone(),
                body_sha256,
                kind: "issue".into(),
                profile: Some(b.profile.clone()),
                subject: Some(b.subject.clone()),
                csr: Some(b.csr.clone().into_bytes()),
                sans: b.sans.clone(),
                target_cert_id: None,
                reason: None,
                submitted_by: Some(op.record.id),
                enrol: None,
                approved_by: alone.then_some(op.record.id),
                approved: false,
                km_transport: b.km_transport.clone(),
            },
            identity.as_ref(),
            &op.event(
                "ra.request.submit",
                "ra-request",
                json!({ "ra": op.ra.name, "profile": b.profile, "subject": b.subject, "key": b.idempotency_key, "identity": identity, "decided_alone": alone }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = if r.status == "submitted"
        && waits_for(&op.ra, &state.profiles, &Ask::of(&r))?.is_empty()
    {
        approve_and_forward(state, op, r).await?
    } else if r.status == "approved" {
        // Decided alone at submission, or a replay of a request the CA did not
        // answer: ask the CA.
        forward(state, op.actor(), r).await?
    } else {
        r.into()
    };
    recorded.reply(state, &s).await
}

/// What a request still waits for before one operator's word sends it to the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wait {
    /// Another operator's approval: the profile, or the km profile of the pair
    /// the request makes, is under the RA's dual control.
    SecondOperator,
    /// An identity verification (`POST /v1/requests/ID/identity`): a profile the
    /// request makes asks for one and none is recorded.
    Identity,
}

/// A request as the approval rule sees it.
struct Ask<'a> {
    kind: &'a str,
    profile: &'a str,
    /// It makes an official-km certificate too, whose key the CA makes and
    /// delivers.
    km: bool,
    /// It binds a name to a key not bound before: a new request, an enrolment, a
    /// renewal with a new CSR, or a renewal that makes a new km key.
    new_key: bool,
    identity_seen: bool,
}

impl<'a> Ask<'a> {
    fn of(r: &'a RaRequest) -> Ask<'a> {
        let km = r.km_transport.is_some();
        Ask {
            kind: &r.kind,
            profile: r.profile.as_deref().unwrap_or(""),
            km,
            new_key: match r.kind.as_str() {
                "issue" | "enrol" => true,
                "renew" => r.csr.is_some() || km,
                _ => false,
            },
            identity_seen: r.identity.is_some(),
        }
    }
}

/// The approval rule, one function for every route that binds a name to a key
/// (submission, enrolment, renewal with a new key or a new km key, approval): a
/// new binding needs a second operator when any profile it makes is under dual
/// control, and an identity verification when any profile it makes asks for one.
/// Revocations and same-key renewals wait for nothing.
fn waits_for(ra: &RaRecord, profiles: &Profiles, a: &Ask) -> Result<Vec<Wait>> {
    if !a.new_key {
        return Ok(Vec::new());
    }
    let mut made = vec![a.profile];
    if a.km {
        made.push(gpki_service::ca_api::KM_PROFILE);
    }
    let dual = if a.kind == "enrol" || a.profile == "ra-operator" {
        // An operator certificate is the RA's membership, whatever the route.
        enrolment_dual_control(ra)
    } else {
        made.iter().any(|p| ra.dual_control.iter().any(|d| d == p))
    };
    let mut identity = false;
    for p in &made {
        identity |= profiles.get(p)?.spec.requires_identity_verification;
    }
    let mut waits = Vec::new();
    if dual {
        waits.push(Wait::SecondOperator);
    }
    if identity && !a.identity_seen {
        waits.push(Wait::Identity);
    }
    Ok(waits)
}

async fn own_request(state: &State, op: &Operator, id: i64) -> Result<RaRequest> {
    let r = state.store.request(id).await?;
    if r.ra_id != op.ra.id {
        // Another RA's request is not this operator's to see or decide.
        return Err(Error::not_found(format!("no request {id}")));
    }
    Ok(r)
}

async fn show(state: &State, op: &Operator, id: i64) -> Reply {
    let r = own_request(state, op, id).await?;
    Ok((StatusCode::OK, reply(state, &r.into(), false).await?))
}

async fn list(state: &State, op: &Operator, query: &str) -> Reply {
    let mut status = None;
    let mut limit = 100i64;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("status", s)) => status = Some(s.to_string()),
            Some(("limit", n)) => {
                limit = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| Error::malformed("limit must be 1 to 10000"))?
            }
            _ => {
                return Err(Error::malformed(format!(
                    "unknown query parameter `{pair}`"
                )))
            }
        }
    }
    let rows = state
        .store
        .requests(op.ra.id, status.as_deref(), limit)
        .await?;
    Ok((StatusCode::OK, json!({ "requests": rows })))
}

async fn identity(state: &State, op: &Operator, id: i64, body: &[u8]) -> Reply {
    let b: Identity = parse(body)?;
    require_admin_for(op, &own_request(state, op, id).await?)?;
    let v = identity_record(op, &b)?;
    let r = state
        .store
        .verify_identity(
            id,
            &v,
            &op.event(
                "ra.request.identity",
                format!("ra-request:{id}"),
                json!({ "method": v.method, "document": v.document }),
            ),
        )
        .await?;
    Ok((StatusCode::OK, reply(state, &r.into(), false).await?))
}

async fn approve(state: &State, op: &Operator, id: i64) -> Reply {
    let r = own_request(state, op, id).await?;
    require_admin_for(op, &r)?;
    let s = match r.status.as_str() {
        "submitted" => {
            let profile = r.profile.clone().unwrap_or_default();
            let waits = waits_for(&op.ra, &state.profiles, &Ask::of(&r))?;
            let what = if r.km_transport.is_some() {
                format!(
                    "{profile} with its {} pair",
                    gpki_service::ca_api::KM_PROFILE
                )
            } else {
                format!("profile {profile}")
            };
            if waits.contains(&Wait::SecondOperator) && r.submitted_by == Some(op.record.id) {
                return Err(unauthorized(format!(
                    "{what} is under dual control: request {id} must be approved by an operator other than its submitter"
                )));
            }
            if waits.contains(&Wait::Identity) {
                return Err(Error::policy(format!(
                    "{what} requires an identity verification before approval (POST /v1/requests/{id}/identity)"
                )));
            }
            approve_and_forward(state, op, r).await?
        }
        // Approved, but the CA did not answer: ask again, as what it is.
        "approved" => retry(state, op.actor(), r).await?,
        // Issued, but the operator not made (a crash in between): make it.
        "issued" if r.kind == "enrol" => r.into(),
        s => {
            return Err(Error::conflict(format!(
                "request {id} is {s}; only submitted requests are approved"
            )))
        }
    };
    let mut v = reply(state, &s, false).await?;
    let r = &s.request;
    if r.kind == "enrol" && r.status == "issued" {
        v["operator"] = serde_json::to_value(finish_enrolment(state, op, r).await?).expect("JSON");
    }
    Ok((StatusCode::OK, v))
}

/// Forwards an approved request again, by its kind.
async fn retry(state: &State, op: Actor<'_>, r: RaRequest) -> Result<Settled> {
    let target = match r.target_cert_id {
        Some(id) => Some(state.store.certificate_by_id(id).await?),
        None => None,
    };
    match (r.kind.as_str(), target) {
        ("issue" | "enrol", _) => forward(state, op, r).await,
        ("revoke", Some(c)) => {
            let reason = gpki_pki::crl::RevocationReason::from_code(r.reason.unwrap_or(-1))
                .ok_or_else(|| Error::internal(format!("request {} has no reason", r.id)))?;
            forward_revocation(state, op, r, &c.serial, reason.as_str()).await
        }
        ("renew", Some(c)) => forward_renewal(state, op, r, &c.serial).await,
        (kind, _) => Err(Error::internal(format!(
            "request {} of kind {kind} has no certificate to act on",
            r.id
        ))),
    }
}

/// A request its submitter may decide alone (revocation, renewal with the same
/// key, an administrator's enrolment): approved by them and forwarded, or
/// forwarded again when the CA did not answer the first time.
async fn decide_alone(state: &State, op: &Operator, r: RaRequest) -> Result<Settled> {
    match r.status.as_str() {
        "submitted" => approve_and_forward(state, op, r).await,
        "approved" => retry(state, op.actor(), r).await,
        _ => Ok(r.into()),
    }
}

async fn approve_and_forward(state: &State, op: &Operator, r: RaRequest) -> Result<Settled> {
    let r = state
        .store
        .transition(
            &r,
            &Transition {
                from: &["submitted"],
                to: "approved",
                approved_by: Some(op.record.id),
                ..Default::default()
            },
            &op.event(
                "ra.request.approve",
                format!("ra-request:{}", r.id),
                json!({}),
            ),
        )
        .await?;
    retry(state, op.actor(), r).await
}

/// Sends an approved request to the CA service and records the answer. A CA
/// that cannot be reached leaves the request approved, to be asked again; a
/// refusal fails it.
async fn forward(state: &State, op: Actor<'_>, r: RaRequest) -> Result<Settled> {
    let body = IssueBody {
        ra: op.ra.name.clone(),
        request_id: gpki_service::ca_api::ra_request_id(r.id),
        profile: r.profile.clone().unwrap_or_default(),
        subject: r.subject.clone().unwrap_or_default(),
        csr: String::from_utf8(r.csr.clone().unwrap_or_default())
            .map_err(|_| Error::internal("stored CSR is not UTF-8"))?,
        sans: r.sans.clone(),
        validity_days: None,
        km: r.km_transport.clone().map(|transport| KmAsk { transport }),
    };
    gpki_service::failpoint::pause("ra-before-forward").await;
    let answer: Result<CertificateReply> = state.ca.post("v1/certificates", &body).await;
    settle(state, op, r, answer).await
}

async fn settle(
    state: &State,
    op: Actor<'_>,
    r: RaRequest,
    answer: Result<CertificateReply>,
) -> Result<Settled> {
    match answer {
        Ok(c) => {
            let ca = state.store.authority_by_name(&c.ca).await?;
            let to = if r.kind == "revoke" {
                // An operator's certificate revoked here is refused from the
                // next request on.
                state.operators.clear();
                "revoked"
            } else {
                "issued"
            };
            let request = state
                .store
                .transition(
                    &r,
                    &Transition {
                        from: &["approved"],
                        to,
                        // The transition fails unless the store holds it, made
                        // for this request (a revocation names its target).
                        certificate: Some((
                            ca.id,
                            c.serial.clone(),
                            (r.kind != "revoke").then(|| {
                                gpki_service::ca_api::ca_request_key(
                                    &op.ra.name,
                                    &gpki_service::ca_api::ra_request_id(r.id),
                                )
                            }),
                        )),
                        ..Default::default()
                    },
                    &op.event(
                        &format!("ra.request.{to}"),
                        format!("ra-request:{}", r.id),
                        json!({ "ca": c.ca, "serial": c.serial }),
                    ),
                )
                .await?;
            // A certificate made on this call is answered as the CA sent it, with
            // the chain from the store; anything else is read back.
            let certificate = match c.certificate {
                Some(_) if to == "issued" => Some(CertificateReply {
                    chain: gpki_service::ca_api::chain_pem(
                        &state.store.authority_chain(ca.id).await?,
                    ),
                    replayed: false,
                    ..c
                }),
                _ => None,
            };
            Ok(Settled {
                request,
                certificate,
            })
        }
        Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => {
            tracing::warn!(request = r.id, error = %e, "CA service did not answer; the request stays approved");
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("request {} is approved but the CA service did not answer ({}); approve it again to retry", r.id, e.detail),
            ))
        }
        Err(e) => {
            // Refused now, but the CA may have made the certificate on an earlier
            // try whose answer was lost (and scope narrowed since): the store
            // holds it under the request's key, and then the request is issued.
            if r.kind != "revoke" {
                let ca = state.store.authority_by_name(&op.ra.ca_name).await?;
                let key = gpki_service::ca_api::ca_request_key(
                    &op.ra.name,
                    &gpki_service::ca_api::ra_request_id(r.id),
                );
                if let Some(c) = state.store.certificate_by_request_key(ca.id, &key).await? {
                    // Only this request's certificate (its profile and subject),
                    // and never an enrolment the CA now refuses.
                    // A dual request is issued only with its pair: a signing
                    // certificate alone fails it, to be enrolled again.
                    let paired =
                        r.km_transport.is_none() || state.store.pair_of(c.id).await?.is_some();
                    if c.status != gpki_store::CertStatus::Pending
                        && paired
                        && r.kind != "enrol"
                        && r.profile.as_deref() == Some(c.profile.as_str())
                        && r.subject
                            .as_deref()
                            .map(|s| {
                                gpki_pki::name::parse(s).map(|n| gpki_pki::name::to_string(&n))
                            })
                            .transpose()?
                            .as_deref()
                            == Some(c.subject.as_str())
                    {
                        let made = c
                            .der
                            .as_deref()
                            .map(|d| gpki_pki::pem::encode("CERTIFICATE", d));
                        let reply = CertificateReply {
                            ca: ca.name.clone(),
                            serial: c.serial.clone(),
                            profile: c.profile.clone(),
                            subject: c.subject.clone(),
                            status: c.status.to_string(),
                            not_before: c.not_before,
                            not_after: c.not_after,
                            certificate: made,
                            chain: Vec::new(),
                            replayed: true,
                            km: None,
                            pair: None,
                        };
                        tracing::warn!(request = r.id, error = %e, serial = %c.serial, "the CA refused a retry of a request it had already signed; recording that certificate");
                        return Box::pin(settle(state, op, r, Ok(reply))).await;
                    }
                }
            }
            state
                .store
                .transition(
                    &r,
                    &Transition {
                        from: &["approved"],
                        to: "failed",
                        note: Some(format!("{}: {}", e.kind, e.detail)),
                        ..Default::default()
                    },
                    &op.event(
                        "ra.request.fail",
                        format!("ra-request:{}", r.id),
                        json!({ "kind": e.kind, "detail": e.detail }),
                    ),
                )
                .await?;
            Err(e)
        }
    }
}

async fn reject(state: &State, op: &Operator, id: i64, body: &[u8]) -> Reply {
    let b: RejectBody = parse(body)?;
    let r = own_request(state, op, id).await?;
    require_admin_for(op, &r)?;
    let r = state
        .store
        .transition(
            &r,
            &Transition {
                from: &["submitted"],
                to: "rejected",
                decided_by: Some(op.record.id),
                note: Some(b.reason.clone()),
                ..Default::default()
            },
            &op.event(
                "ra.request.reject",
                format!("ra-request:{id}"),
                json!({ "reason": b.reason }),
            ),
        )
        .await?;
    Ok((StatusCode::OK, reply(state, &r.into(), false).await?))
}

/// The RA's certificate `serial`, in its scope.
async fn scoped_certificate(
    state: &State,
    op: &Operator,
    serial: &str,
) -> Result<gpki_store::CertificateRecord> {
    let c = ra_certificate(state, op, serial).await?;
    check_scope(&op.ra, &c.profile, &c.subject)?;
    Ok(c)
}

/// The certificate `serial` of the RA's CA.
async fn ra_certificate(
    state: &State,
    op: &Operator,
    serial: &str,
) -> Result<gpki_store::CertificateRecord> {
    let serial = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    let ca = state.store.authority_by_name(&op.ra.ca_name).await?;
    let c = state
        .store
        .certificate(ca.id, &serial)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "no certificate with serial {serial} from CA `{}`",
                op.ra.ca_name
            ))
        })?;
    Ok(c)
}

async fn revoke(state: &State, op: &Operator, body: &[u8]) -> Reply {
    let b: RevocationBody = parse(body)?;
    check_key(&b.idempotency_key)?;
    let reason: gpki_pki::crl::RevocationReason = b.reason.parse()?;
    let cert = scoped_certificate(state, op, &b.serial).await?;
    if cert.profile == "ra-operator" {
        // An operator's certificate is the RA's membership: administrators
        // manage it, as they enrol and suspend.
        require_admin(op)?;
    }
    let identity = b
        .identity
        .as_ref()
        .map(|i| identity_record(op, i))
        .transpose()?;
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                ra_id: op.ra.id,
                idempotency_key: b.idempotency_key.clone(),
                body_sha256: sha256_hex(&["revoke", &cert.serial, &b.reason]),
                kind: "revoke".into(),
                profile: Some(cert.profile.clone()),
                subject: Some(cert.subject.clone()),
                csr: None,
                sans: Vec::new(),
                target_cert_id: Some(cert.id),
                reason: Some(reason.code()),
                submitted_by: Some(op.record.id),
                enrol: None,
                approved_by: Some(op.record.id),
                approved: false,
                km_transport: None,
            },
            identity.as_ref(),
            &op.event(
                "ra.request.submit",
                "ra-request",
                json!({ "kind": "revoke", "serial": cert.serial, "reason": b.reason, "identity": identity }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = decide_alone(state, op, r).await?;
    recorded.reply(state, &s).await
}

async fn forward_revocation(
    state: &State,
    op: Actor<'_>,
    r: RaRequest,
    serial: &str,
    reason: &str,
) -> Result<Settled> {
    let answer: Result<CertificateReply> = state
        .ca
        .post(
            "v1/certificates/revoke",
            &RevokeBody {
                ra: op.ra.name.clone(),
                serial: serial.to_string(),
                reason: reason.to_string(),
                invalidity_date: None,
            },
        )
        .await;
    // Revoking what is revoked already is a conflict at the CA; for the RA the
    // request is done, and answered with the certificate as it stands.
    let answer = match answer {
        Err(e) if matches!(e.reason(), Some(gpki_pki::Reason::AlreadyRevoked { .. })) => {
            let c = state
                .store
                .certificate_by_id(r.target_cert_id.unwrap_or_default())
                .await?;
            let ca = state.store.authority(c.issuer_id).await?;
            Ok(CertificateReply {
                ca: ca.name,
                serial: c.serial,
                profile: c.profile,
                subject: c.subject,
                status: c.status.to_string(),
                not_before: c.not_before,
                not_after: c.not_after,
                certificate: None,
                chain: Vec::new(),
                replayed: true,
                km: None,
                pair: None,
            })
        }
        other => other,
    };
    settle(state, op, r, answer).await
}

async fn renew(state: &State, op: &Operator, body: &[u8]) -> Reply {
    let b: RenewalBody = parse(body)?;
    check_key(&b.idempotency_key)?;
    let cert = scoped_certificate(state, op, &b.serial).await?;
    if cert.profile == "ra-operator" {
        require_admin(op)?;
    }
    let now = gpki_pki::time::now();
    let opens = cert.not_after - op.ra.renew_window_days * 86_400;
    if now < opens {
        return Err(Error::policy(format!(
            "certificate {} may be renewed from {} ({} days before it expires), not earlier",
            cert.serial,
            gpki_pki::time::rfc3339(opens),
            op.ra.renew_window_days
        )));
    }
    if let Some(csr) = &b.csr {
        let csr = gpki_pki::csr::parse_and_verify(csr.as_bytes())?;
        state
            .profiles
            .get(&cert.profile)?
            .allows_key(gpki_pki::KeyType::of_spki(csr.spki_der())?)?;
    }
    // A pair is renewed together, from its signing certificate.
    if let Some(pair) = state.store.pair_of(cert.id).await? {
        if cert.profile == gpki_service::ca_api::KM_PROFILE {
            let sign = state.store.certificate_by_id(pair).await?;
            return Err(Error::policy(format!(
                "km certificate {} is renewed with its pair: renew official-sign certificate {}",
                cert.serial, sign.serial
            )));
        }
        match &b.km_transport {
            Some(t) => {
                gpki_service::ca_api::check_transport(t)?;
            }
            None => {
                return Err(Error::policy(format!(
                    "certificate {} has a km pair; its renewal renews the pair, with a new km key sealed to a transport key (km_transport)",
                    cert.serial
                )))
            }
        }
    } else if b.km_transport.is_some() {
        return Err(Error::policy(format!(
            "certificate {} has no km pair to renew",
            cert.serial
        )));
    }
    // A new key (a CSR, or the pair's new km key, which the CA makes and
    // delivers) is a new binding of the official's name: it needs what a first
    // issuance of the profiles it makes needs, a second operator or an identity
    // verification, and waits for them as a submission does.
    let identity = b
        .identity
        .as_ref()
        .map(|i| identity_record(op, i))
        .transpose()?;
    let ask = Ask {
        kind: "renew",
        profile: &cert.profile,
        km: b.km_transport.is_some(),
        new_key: b.csr.is_some() || b.km_transport.is_some(),
        identity_seen: identity.is_some(),
    };
    let alone = waits_for(&op.ra, &state.profiles, &ask)?.is_empty();
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                ra_id: op.ra.id,
                idempotency_key: b.idempotency_key.clone(),
                body_sha256: sha256_hex(&[
                    "renew",
                    &cert.serial,
                    b.csr.as_deref().unwrap_or(""),
                    b.km_transport.as_deref().unwrap_or(""),
                ]),
                kind: "renew".into(),
                profile: Some(cert.profile.clone()),
                subject: Some(cert.subject.clone()),
                csr: b.csr.clone().map(String::into_bytes),
                sans: Vec::new(),
                target_cert_id: Some(cert.id),
                reason: None,
                submitted_by: Some(op.record.id),
                enrol: None,
                approved_by: alone.then_some(op.record.id),
                approved: false,
                km_transport: b.km_transport.clone(),
            },
            identity.as_ref(),
            &op.event(
                "ra.request.submit",
                "ra-request",
                json!({ "kind": "renew", "serial": cert.serial, "new_key": ask.new_key, "km": ask.km, "identity": identity, "decided_alone": alone }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = if r.status == "submitted"
        && !waits_for(&op.ra, &state.profiles, &Ask::of(&r))?.is_empty()
    {
        // A second operator approves it, or the identity verification is
        // recorded first (POST /v1/requests/ID/identity, then approve).
        r.into()
    } else {
        decide_alone(state, op, r).await?
    };
    recorded.reply(state, &s).await
}

async fn forward_renewal(
    state: &State,
    op: Actor<'_>,
    r: RaRequest,
    serial: &str,
) -> Result<Settled> {
    let csr = match &r.csr {
        Some(c) => Some(
            String::from_utf8(c.clone()).map_err(|_| Error::internal("stored CSR is not UTF-8"))?,
        ),
        None => None,
    };
    let answer = state
        .ca
        .post(
            "v1/certificates/renew",
            &RenewBody {
                ra: op.ra.name.clone(),
                request_id: gpki_service::ca_api::ra_request_id(r.id),
                serial: serial.to_string(),
                csr,
                km: r.km_transport.clone().map(|transport| KmAsk { transport }),
            },
        )
        .await;
    settle(state, op, r, answer).await
}

/// Requests about the RA's membership (an enrolment, or any request for an
/// ra-operator certificate: its renewal too) are decided by administrators only.
fn require_admin_for(op: &Operator, r: &RaRequest) -> Result<()> {
    if r.kind == "enrol" || r.profile.as_deref() == Some("ra-operator") {
        require_admin(op)?;
    }
    Ok(())
}

fn require_admin(op: &Operator) -> Result<()> {
    if !op.record.admin {
        return Err(unauthorized(format!(
            "operator `{}` is not an administrator of RA `{}`",
            op.record.name, op.ra.name
        )));
    }
    Ok(())
}

/// Whether enrolments in `ra` need a second administrator: when any of its
/// profiles is under dual control (else one administrator could enrol a second
/// identity and approve their own requests with it), or ra-operator is.
fn enrolment_dual_control(ra: &RaRecord) -> bool {
    !ra.dual_control.is_empty()
}

async fn enrol(state: &State, op: &Operator, body: &[u8]) -> Reply {
    require_admin(op)?;
    let b: EnrolBody = parse(body)?;
    check_key(&b.idempotency_key)?;
    gpki_store::check_operator_name(&b.name)?;
    // A name in use is refused before a certificate is made for it (a replay of
    // the enrolment that made it is answered below).
    if state
        .store
        .request_by_key(op.ra.id, &b.idempotency_key)
        .await?
        .is_none()
        && state
            .store
            .operators(op.ra.id)
            .await?
            .iter()
            .any(|o| o.name == b.name)
    {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("RA `{}` has an operator named `{}`", op.ra.name, b.name),
        ));
    }
    check_scope(&op.ra, "ra-operator", &b.subject)?;
    let csr = gpki_pki::csr::parse_and_verify(b.csr.as_bytes())?;
    check_csr_sans(&csr, &[])?;
    let profile = state.profiles.get("ra-operator")?;
    profile.allows_key(gpki_pki::KeyType::of_spki(csr.spki_der())?)?;
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                ra_id: op.ra.id,
                idempotency_key: b.idempotency_key.clone(),
                body_sha256: sha256_hex(&[
                    "enrol",
                    &b.name,
                    &b.subject,
                    &b.csr,
                    if b.admin { "admin" } else { "" },
                ]),
                kind: "enrol".into(),
                profile: Some("ra-operator".into()),
                subject: Some(b.subject.clone()),
                csr: Some(b.csr.clone().into_bytes()),
                sans: Vec::new(),
                target_cert_id: None,
                reason: None,
                submitted_by: Some(op.record.id),
                enrol: Some(Enrolment {
                    name: b.name.clone(),
                    admin: b.admin,
                }),
                approved_by: waits_for(
                    &op.ra,
                    &state.profiles,
                    &Ask {
                        kind: "enrol",
                        profile: "ra-operator",
                        km: false,
                        new_key: true,
                        identity_seen: false,
                    },
                )?
                .is_empty()
                .then_some(op.record.id),
                approved: false,
                km_transport: None,
            },
            None,
            &op.event(
                "ra.operator.enrol-request",
                "ra-request",
                json!({ "name": b.name, "subject": b.subject, "admin": b.admin }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = if r.status == "submitted"
        && !waits_for(&op.ra, &state.profiles, &Ask::of(&r))?.is_empty()
    {
        // A second administrator approves it (POST /v1/requests/{id}/approve),
        // after the identity verification when the profile asks for one.
        r.into()
    } else {
        decide_alone(state, op, r).await?
    };
    let mut v = reply(state, &s, recorded.answered_before).await?;
    if s.request.status == "issued" {
        v["operator"] =
            serde_json::to_value(finish_enrolment(state, op, &s.request).await?).expect("JSON");
    }
    Ok((recorded.status(), v))
}

/// The operator an issued enrolment makes (once: a replay finds it).
async fn finish_enrolment(state: &State, op: &Operator, r: &RaRequest) -> Result<OperatorRecord> {
    let (Some(cert_id), Some(e)) = (r.cert_id, r.enrol.as_ref()) else {
        return Err(Error::internal(format!(
            "enrolment request {} has no certificate or operator",
            r.id
        )));
    };
    if let Some(o) = state.store.operator_by_cert(cert_id).await? {
        return Ok(o);
    }
    match state
        .store
        .add_operator(
            op.ra.id,
            &e.name,
            cert_id,
            e.admin,
            &op.event(
                "ra.operator.enrol",
                format!("ra:{}", op.ra.name),
                json!({ "name": e.name, "cert_id": cert_id, "admin": e.admin, "request": r.id }),
            ),
        )
        .await
    {
        // A concurrent replay made it first.
        Err(err) if err.kind == ErrorKind::AlreadyExists => {
            state.store.operator_by_cert(cert_id).await?.ok_or(err)
        }
        other => other,
    }
}

async fn operator_status(state: &State, op: &Operator, id: i64, verb: &str) -> Reply {
    require_admin(op)?;
    let target = state.store.operator(id).await?;
    if target.ra_id != op.ra.id {
        return Err(Error::not_found(format!("no operator {id}")));
    }
    if target.id == op.record.id {
        return Err(Error::conflict(
            "an operator cannot change their own status",
        ));
    }
    let status = match verb {
        "suspend" => "suspended",
        "activate" => "active",
        _ => "removed",
    };
    let updated = state
        .store
        .set_operator_status(
            id,
            status,
            &op.event(
                &format!("ra.operator.{verb}"),
                format!("ra-operator:{id}"),
                json!({ "name": target.name }),
            ),
        )
        .await?;
    // The change holds from the next request, not after the cache's age.
    state.operators.clear();
    Ok((StatusCode::OK, json!({ "operator": updated })))
}

/// `POST /v1/holder/revocations`: a holder revokes their own certificate with no
/// operator and no client certificate; a signature by the certificate's key over
/// [`holder_revocation_message`] is the proof. Refusals are audited as anonymous
/// ones are (at most once a second), since the caller is not identified until
/// the signature verifies.
/// The active RA of this service, of the certificate's CA, whose scope holds it:
/// the one that acts for a holder who comes with no operator.
pub(crate) async fn holder_ra(
    state: &State,
    cert: &gpki_store::CertificateRecord,
    issuer: &gpki_store::AuthorityRecord,
) -> Result<RaRecord> {
    state
        .store
        .ras()
        .await?
        .into_iter()
        .find(|r| {
            r.status == "active"
                && r.host == state.config.host
                && r.ca_name == issuer.name
                && check_scope(r, &cert.profile, &cert.subject).is_ok()
        })
        .ok_or_else(|| {
            Error::not_found(format!(
                "no RA of this service serves certificate {} of CA `{}`",
                cert.serial, issuer.name
            ))
        })
}

/// A holder's own request, proven by a signature with their certificate's key:
/// revoking the certificate, or reporting their mobile ID lost.
async fn holder_revoke(state: &State, route: &str, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let body = match body_of(state, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let answer = if route == "holder-revoke" {
        holder_revocation(state, &body).await
    } else {
        credentials::holder_revocation(state, &body).await
    };
    match answer {
        Ok((status, v)) => json_reply(status, &v),
        Err(e) => {
            if matches!(e.kind, ErrorKind::Unauthorized | ErrorKind::BadSignature) {
                state.metrics.refused("holder");
                state.refusals.record_anonymous(&path, &e.detail).await;
            }
            error_reply(&e)
        }
    }
}

/// Reasons a holder may give for their own certificate; the CA-side ones
/// (cACompromise, privilegeWithdrawn, certificateHold, …) are an operator's.
const HOLDER_REASONS: &[&str] = &[
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
];

/// Signed requests are accepted this long either side of the RA's clock.
pub(crate) const HOLDER_SKEW_SECS: i64 = 300;

async fn holder_revocation(state: &State, body: &[u8]) -> Reply {
    let b: HolderRevocationBody = parse(body)?;
    let reason: gpki_pki::crl::RevocationReason = b.reason.parse()?;
    if !HOLDER_REASONS.contains(&reason.as_str()) {
        return Err(Error::policy(format!(
            "a holder revokes with one of {}; {} is an operator's",
            HOLDER_REASONS.join(", "),
            reason.as_str()
        )));
    }
    let now = gpki_pki::time::now();
    if now.abs_diff(b.signed_at) > HOLDER_SKEW_SECS as u64 {
        return Err(Error::policy(format!(
            "signed_at {} is more than {HOLDER_SKEW_SECS} s from the RA's clock ({now}); sign again",
            b.signed_at
        )));
    }
    let der = gpki_pki::pem::decode(b.certificate.as_bytes(), "CERTIFICATE")?;
    let parsed = gpki_pki::cert::decode(&der)?;
    let signature =
        hex::decode(b.signature.trim()).map_err(|_| Error::malformed("signature must be hex"))?;
    // The exact certificate, held by the store, issued and in force.
    let (cert, issuer) = state.store.certificate_in_force(&der, now).await?;
    if cert.profile == "ra-operator" {
        // The RA's membership is managed by its administrators, not by holders.
        return Err(unauthorized(
            "an RA operator's certificate is revoked by an administrator of the RA",
        ));
    }
    // Proof of possession by a key that signs: an official-km key was made on
    // the CA's side and is archived, so holding it proves nothing of the holder.
    if !gpki_pki::cert::signs(&parsed.tbs_certificate)?
        || cert.profile == gpki_service::ca_api::KM_PROFILE
    {
        return Err(Error::policy(format!(
            "certificate {} is not for signing (no digitalSignature, or an archived km key): a holder revokes with their signing certificate, and its pair with it",
            cert.serial
        )));
    }
    let spki = der::Encode::to_der(&parsed.tbs_certificate.subject_public_key_info)?;
    let algorithm = gpki_pki::KeyType::of_spki(&spki)?.default_signature_algorithm();
    let message = holder_revocation_message(
        &hex::encode(openssl::sha::sha256(&der)),
        reason.as_str(),
        b.signed_at,
    );
    if !gpki_pki::signer::verify(&spki, algorithm, &message, &signature)? {
        return Err(Error::new(
            ErrorKind::BadSignature,
            format!(
                "the revocation request for certificate {} is not signed by its key",
                cert.serial
            ),
        ));
    }
    // The RA of this service whose scope holds the certificate acts for it.
    let ra = holder_ra(state, &cert, &issuer).await?;
    let label = format!("holder:{}/{}", issuer.name, cert.serial);
    let actor = Actor {
        ra: &ra,
        label: &label,
    };
    // Keyed by what was asked, not by the signature bytes (an ECDSA signature
    // has more than one valid form).
    let key = format!(
        "holder-{}",
        &sha256_hex(&[&cert.serial, reason.as_str(), &b.signed_at.to_string()])[..48]
    );
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                ra_id: ra.id,
                idempotency_key: key,
                body_sha256: sha256_hex(&[
                    "holder-revoke",
                    &cert.serial,
                    reason.as_str(),
                    &b.signed_at.to_string(),
                ]),
                kind: "revoke".into(),
                profile: Some(cert.profile.clone()),
                subject: Some(cert.subject.clone()),
                csr: None,
                sans: Vec::new(),
                target_cert_id: Some(cert.id),
                reason: Some(reason.code()),
                submitted_by: None,
                enrol: None,
                approved_by: None,
                approved: true,
                km_transport: None,
            },
            None,
            &actor.event(
                "ra.request.submit",
                "ra-request",
                json!({ "kind": "revoke", "by": "holder", "serial": cert.serial, "reason": reason.as_str(), "signed_at": b.signed_at, "approved": "by the signature of the certificate's key" }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = match r.status.as_str() {
        // The signature is the approval: no operator decides.
        "submitted" => {
            let r = state
                .store
                .transition(
                    &r,
                    &Transition {
                        from: &["submitted"],
                        to: "approved",
                        ..Default::default()
                    },
                    &actor.event(
                        "ra.request.approve",
                        format!("ra-request:{}", r.id),
                        json!({ "proof": "signature by the certificate's key" }),
                    ),
                )
                .await?;
            retry(state, actor, r).await?
        }
        "approved" => retry(state, actor, r).await?,
        _ => r.into(),
    };
    recorded.reply(state, &s).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ra(dual: &[&str]) -> RaRecord {
        RaRecord {
            id: 1,
            name: "A".into(),
            ca_name: "mois".into(),
            subtrees: vec![],
            profiles: vec![],
            dual_control: dual.iter().map(|s| s.to_string()).collect(),
            renew_window_days: 30,
            domains: vec![],
            host: "h".into(),
            status: "active".into(),
            created_at: 0,
        }
    }

    /// The approval rule, every combination that matters: which routes bind a
    /// new key, which profiles a request makes, dual control on either, the
    /// identity seen or not; and an operator certificate under the enrolment rule.
    #[test]
    fn the_approval_rule_holds_for_every_route_that_binds_a_key() {
        use Wait::{Identity, SecondOperator};
        let profiles = Profiles::builtin().unwrap();
        // (kind, profile, km, new key, identity seen, RA dual control, waits)
        type Row<'a> = (
            &'a str,
            &'a str,
            bool,
            bool,
            bool,
            &'a [&'a str],
            &'a [Wait],
        );
        let table: &[Row] = &[
            // A submission of a profile asking for identity.
            (
                "issue",
                "official-sign",
                false,
                true,
                false,
                &[],
                &[Identity],
            ),
            ("issue", "official-sign", false, true, true, &[], &[]),
            (
                "issue",
                "official-sign",
                false,
                true,
                true,
                &["official-sign"],
                &[SecondOperator],
            ),
            // A dual enrolment: official-km under dual control holds.
            (
                "issue",
                "official-sign",
                true,
                true,
                true,
                &["official-km"],
                &[SecondOperator],
            ),
            (
                "issue",
                "official-sign",
                true,
                true,
                false,
                &[],
                &[Identity],
            ),
            // A profile without identity, under dual control or not.
            ("issue", "institution-sign", false, true, false, &[], &[]),
            (
                "issue",
                "institution-sign",
                false,
                true,
                false,
                &["institution-sign"],
                &[SecondOperator],
            ),
            // Renewals: the same key waits for nothing; a new CSR or a new km key
            // is a new binding.
            (
                "renew",
                "official-sign",
                false,
                false,
                false,
                &["official-sign"],
                &[],
            ),
            (
                "renew",
                "official-sign",
                false,
                true,
                false,
                &[],
                &[Identity],
            ),
            (
                "renew",
                "official-sign",
                true,
                true,
                false,
                &[],
                &[Identity],
            ),
            ("renew", "official-sign", true, true, true, &[], &[]),
            (
                "renew",
                "official-sign",
                true,
                true,
                true,
                &["official-km"],
                &[SecondOperator],
            ),
            // Operator certificates: any dual control of the RA holds them.
            (
                "enrol",
                "ra-operator",
                false,
                true,
                false,
                &["official-sign"],
                &[SecondOperator],
            ),
            ("enrol", "ra-operator", false, true, false, &[], &[]),
            (
                "renew",
                "ra-operator",
                false,
                true,
                false,
                &["official-sign"],
                &[SecondOperator],
            ),
            // Revocations wait for nothing.
            (
                "revoke",
                "official-sign",
                false,
                false,
                false,
                &["official-sign"],
                &[],
            ),
        ];
        for (kind, profile, km, new_key, identity_seen, dual, want) in table {
            let ask = Ask {
                kind,
                profile,
                km: *km,
                new_key: *new_key,
                identity_seen: *identity_seen,
            };
            let got = waits_for(&ra(dual), &profiles, &ask).unwrap();
            assert_eq!(
                got, *want,
                "{kind} {profile} km={km} new_key={new_key} identity={identity_seen} dual={dual:?}"
            );
        }
    }

    /// A stored request is asked as what it binds: a renewal with a CSR or a
    /// transport key is a new key, one with neither is not.
    #[test]
    fn a_stored_request_is_asked_as_what_it_binds() {
        let r = |kind: &str, csr: bool, km: bool| RaRequest {
            id: 1,
            ra_id: 1,
            idempotency_key: "k".into(),
            body_sha256: String::new(),
            kind: kind.into(),
            profile: Some("official-sign".into()),
            subject: None,
            csr: csr.then(|| b"csr".to_vec()),
            sans: vec![],
            target_cert_id: None,
            reason: None,
            status: "submitted".into(),
            submitted_by: Some(1),
            approved_by: None,
            decided_by: None,
            note: None,
            cert_id: None,
            created_at: 0,
            updated_at: 0,
            identity: None,
            enrol: None,
            km_transport: km.then(|| "t".into()),
        };
        for (kind, csr, km, new_key) in [
            ("issue", true, false, true),
            ("enrol", true, false, true),
            ("renew", false, false, false),
            ("renew", true, false, true),
            ("renew", false, true, true),
            ("revoke", false, false, false),
        ] {
            let req = r(kind, csr, km);
            let a = Ask::of(&req);
            assert_eq!((a.new_key, a.km), (new_key, km), "{kind} csr={csr} km={km}");
        }
    }
}
