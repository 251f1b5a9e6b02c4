//! What the two mutual-TLS services (the CA service and the RA service) share:
//! their `[tls]` and client configuration, who the caller is, the audit of
//! refusals, and their metrics.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result};
use gpki_store::{AuditEvent, AuthorityRecord, CertificateRecord, Store};
use hyper::body::Incoming;
use hyper::Request;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use serde::Deserialize;

use crate::api::ApiClient;
use crate::tls::{self, Identity, PeerCertificate};

/// `[tls]` of a service: its server certificate and key, and the trust anchors
/// its clients' certificates must chain to. Relative paths are relative to the
/// configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// PEM: the server certificate, then its intermediates.
    pub cert: PathBuf,
    /// The server key (a gpki encrypted key file).
    pub key: PathBuf,
    pub key_pass_file: Option<PathBuf>,
    /// PEM: the root(s) client certificates must chain to.
    pub client_ca: PathBuf,
}

impl ServerTls {
    pub fn resolve(&mut self, base: &Path) {
        for p in [&mut self.cert, &mut self.key, &mut self.client_ca] {
            *p = base.join(&*p);
        }
        if let Some(p) = &mut self.key_pass_file {
            *p = base.join(&*p);
        }
    }

    /// The acceptor; refused handshakes go to `on_refused`.
    pub fn acceptor(&self, on_refused: tls::OnRefused) -> Result<tls::Acceptor> {
        let pass = crate::passphrase(self.key_pass_file.as_deref(), "the TLS key")?;
        let identity = Identity::load(&self.cert, &self.key, &pass)?;
        let anchors = tls::read_certificates(&self.client_ca)?;
        tls::Acceptor::new(identity, &anchors, on_refused)
    }
}

/// How a client reaches a mutual-TLS API: its URL, the name on the server's
/// certificate when it differs from the URL's host, the client certificate and
/// key, and the root the server's certificate must chain to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    pub url: String,
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM: the client certificate, then its intermediates.
    pub cert: PathBuf,
    pub key: PathBuf,
    pub key_pass_file: Option<PathBuf>,
    /// PEM: the root the server's certificate must chain to.
    pub ca_file: PathBuf,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    30
}

impl ClientTls {
    pub fn resolve(&mut self, base: &Path) {
        for p in [&mut self.cert, &mut self.key, &mut self.ca_file] {
            *p = base.join(&*p);
        }
        if let Some(p) = &mut self.key_pass_file {
            *p = base.join(&*p);
        }
    }

    /// A client with the key decrypted with the passphrase of `key_pass_file`
    /// (or `GPKI_KEY_PASS`).
    pub fn client(&self) -> Result<ApiClient> {
        let pass = crate::passphrase(self.key_pass_file.as_deref(), "the client key")?;
        self.client_with(&pass)
    }

    pub fn client_with(&self, pass: &Passphrase) -> Result<ApiClient> {
        let identity = Identity::load(&self.cert, &self.key, pass)?;
        let anchors = tls::read_certificates(&self.ca_file)?;
        ApiClient::new(
            &self.url,
            self.server_name.as_deref(),
            tls::client_config(Some(identity), &anchors)?,
            Duration::from_secs(self.timeout_secs),
        )
    }
}

/// What a service concluded about a client certificate (who its holder is and
/// that it may call), kept for at most `ttl` and never past the certificate's
/// `not_after`: a certificate revoked, or an operator or RA suspended, in the
/// store is refused within `ttl` (at most a second, as issue 10 promises) without
/// a store read on every request. A zero `ttl` keeps nothing. Only successes are
/// kept; a service clears the cache when it changes a standing itself.
pub struct AuthCache<K, V> {
    ttl: Duration,
    entries: Mutex<Entries<K, V>>,
}

struct Entries<K, V> {
    map: std::collections::HashMap<K, (Instant, i64, V)>,
    /// Moved on by every `clear()`: an answer read before it is not kept.
    generation: u64,
}

/// When a service began reading an answer from the store: the answer is aged
/// from then, and dropped when the cache was cleared meanwhile.
pub struct Ticket {
    at: Instant,
    generation: u64,
}

/// The most an [`AuthCache`] may keep an answer: the services promise to refuse a
/// certificate within a second of its revocation.
pub const AUTH_CACHE_MAX_MS: u64 = 1_000;

/// Entries kept before the cache starts afresh (bounded memory under a flood of
/// distinct certificates).
const AUTH_CACHE_ENTRIES: usize = 16_384;

impl<K: std::hash::Hash + Eq, V: Clone> AuthCache<K, V> {
    /// Refuses a `ttl_ms` over [`AUTH_CACHE_MAX_MS`].
    pub fn new(ttl_ms: u64) -> Result<AuthCache<K, V>> {
        if ttl_ms > AUTH_CACHE_MAX_MS {
            return Err(Error::malformed(format!(
                "auth_cache_ms = {ttl_ms}: at most {AUTH_CACHE_MAX_MS} (a revoked certificate is refused within a second)"
            )));
        }
        Ok(AuthCache {
            ttl: Duration::from_millis(ttl_ms),
            entries: Mutex::new(Entries {
                map: std::collections::HashMap::new(),
                generation: 0,
            }),
        })
    }

    /// The answer for `key`, when it is younger than the ttl and the certificate
    /// it is about is still within its validity at `now`.
    pub fn get(&self, key: &K, now: i64) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().expect("auth cache");
        match entries.map.get(key) {
            Some((at, not_after, v)) if at.elapsed() < self.ttl && now <= *not_after => {
                Some(v.clone())
            }
            _ => None,
        }
    }

    /// Taken before reading an answer from the store.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            at: Instant::now(),
            generation: self.entries.lock().expect("auth cache").generation,
        }
    }

    /// Keeps `v` for `key`, about a certificate valid until `not_after`, read
    /// since `ticket`; not when the cache was cleared since.
    pub fn put(&self, ticket: Ticket, key: K, not_after: i64, v: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("auth cache");
        if entries.generation != ticket.generation {
            return;
        }
        if entries.map.len() >= AUTH_CACHE_ENTRIES {
            entries.map.clear();
        }
        entries.map.insert(key, (ticket.at, not_after, v));
    }

    /// Forgets everything, and every answer being read now (after the service
    /// changed a standing itself).
    pub fn clear(&self) {
        let mut entries = self.entries.lock().expect("auth cache");
        entries.map.clear();
        entries.generation += 1;
    }
}

/// The SHA-256 of the client certificate of `req`, when it has one: the key of
/// an [`AuthCache`].
pub fn peer_key(req: &Request<Incoming>) -> Option<[u8; 32]> {
    req.extensions()
        .get::<PeerCertificate>()
        .map(|c| openssl::sha::sha256(&c.0))
}

/// Whether an error answering an identified caller is a refusal of what they
/// asked (every kind but the service's own faults), which the Baseline
/// Requirements (§5.4.1) ask to be logged, with its reason: the label it is
/// counted under.
pub fn refusal(e: &Error) -> Option<&'static str> {
    match e.kind {
        ErrorKind::Unavailable | ErrorKind::Internal => None,
        ErrorKind::Unauthorized => Some("scope"),
        _ => Some("rejected"),
    }
}

/// Health and metrics of a mutual-TLS service are for a caller whose certificate
/// the store holds in force (a monitoring host's, any service client's or
/// operator's), not for anyone who reaches the port: they say how the service
/// stands, and that is not for the world. `None` when the caller may see them,
/// else the refusal (a store out of reach is `Unavailable`: 503, as health is).
pub async fn health_refusal(store: &Store, req: &Request<Incoming>) -> Option<Error> {
    if req.extensions().get::<PeerCertificate>().is_none() {
        return Some(Error::new(
            ErrorKind::Unauthorized,
            "health and metrics require a client certificate (mutual TLS)",
        ));
    }
    caller(store, req).await.err()
}

/// The reply to `/healthz` (`metrics` false) or `/metrics` of a mutual-TLS
/// service: refused unless the caller holds a certificate in force
/// ([`health_refusal`]); health pings the store and never names it; metrics are
/// Prometheus' text exposition.
pub async fn health_or_metrics(
    store: &Store,
    api: &ApiMetrics,
    req: &Request<Incoming>,
    metrics: bool,
) -> hyper::Response<crate::Body> {
    if let Some(refused) = health_refusal(store, req).await {
        api.refused("unauthenticated");
        return crate::api::error_reply(&refused);
    }
    if metrics {
        let mut r = crate::plain(hyper::StatusCode::OK, &api.render());
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        return r;
    }
    match gpki_store::ping(store).await {
        Ok(()) => crate::api::json_reply(
            hyper::StatusCode::OK,
            &serde_json::json!({ "status": "ok" }),
        ),
        Err(e) => crate::api::json_reply(
            hyper::StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "unavailable", "detail": e.detail }),
        ),
    }
}

/// The caller of a request: the store's row for its certificate, in force now.
#[derive(Clone)]
pub struct Caller {
    pub cert: CertificateRecord,
    pub authority: AuthorityRecord,
}

impl Caller {
    /// `CA/serial` of the caller's certificate, for audit records.
    pub fn label(&self) -> String {
        format!("{}/{}", self.authority.name, self.cert.serial)
    }
}

/// Who sent `req`: refused when it came without a client certificate, or with
/// one the store does not hold in force (revoked a moment ago, expired, of a CA
/// no longer in force).
pub async fn caller(store: &Store, req: &Request<Incoming>) -> Result<Caller> {
    let peer = req.extensions().get::<PeerCertificate>().ok_or_else(|| {
        Error::new(
            ErrorKind::Unauthorized,
            "this API requires a client certificate (mutual TLS)",
        )
    })?;
    let (cert, authority) = store
        .certificate_in_force(&peer.0, gpki_pki::time::now())
        .await?;
    Ok(Caller { cert, authority })
}

/// Audits refusals. A refusal of a known caller is recorded every time. A
/// refusal of an unknown one (no certificate, a handshake that failed) is
/// recorded at most once a second, with the number of such refusals since the
/// last record, so a flood of anonymous connections cannot flood the audit log.
#[derive(Clone)]
pub struct Refusals {
    store: Store,
    service: &'static str,
    anonymous: Arc<Mutex<Throttle>>,
    /// Per certificate the store does not know (or not in force). Bounded, so a
    /// flood of distinct certificates shares the anonymous bucket instead of memory.
    unknown: Arc<Mutex<std::collections::HashMap<String, Throttle>>>,
}

/// One audited refusal a second for one caller: when the last was audited, the
/// refusals since (each counted, none dropped), the last of them, and whether a
/// record of them is already due at the end of the second.
#[derive(Default)]
struct Throttle {
    audited: Option<Instant>,
    pending: u64,
    last: Option<(String, ErrorKind, String)>,
    flush_due: bool,
}

/// What [`Throttle::refused`] says to do.
enum Throttled {
    /// Audit now: this refusal and `n - 1` held back before it.
    Now(u64),
    /// Counted; a record is already due.
    Held,
    /// Counted; schedule the record of the held refusals, due after this long.
    Schedule(Duration),
}

impl Throttle {
    fn refused(&mut self, what: &str, kind: ErrorKind, detail: &str, now: Instant) -> Throttled {
        self.pending += 1;
        match self.audited {
            Some(t) if now.duration_since(t) < Duration::from_secs(1) => {
                self.last = Some((what.to_string(), kind, detail.to_string()));
                if std::mem::replace(&mut self.flush_due, true) {
                    Throttled::Held
                } else {
                    Throttled::Schedule(Duration::from_secs(1) - now.duration_since(t))
                }
            }
            _ => {
                self.audited = Some(now);
                self.last = None;
                Throttled::Now(std::mem::take(&mut self.pending))
            }
        }
    }

    /// The held refusals, when a record of them is due: their count and the last.
    fn flush(&mut self, now: Instant) -> Option<(u64, (String, ErrorKind, String))> {
        self.flush_due = false;
        let last = self.last.take()?;
        self.audited = Some(now);
        Some((std::mem::take(&mut self.pending), last))
    }
}

/// Certificates tracked one by one before refusals share the anonymous bucket.
const UNKNOWN_TRACKED: usize = 4096;

impl Refusals {
    pub fn new(store: Store, service: &'static str) -> Refusals {
        Refusals {
            store,
            service,
            anonymous: Arc::default(),
            unknown: Arc::default(),
        }
    }

    /// Records a refusal of a certificate that chains to the anchors but the store
    /// does not hold in force for this service: audited at most once a second per
    /// certificate, so a client retrying in a loop cannot flood the audit log. The
    /// refusals held back are counted and audited together at the end of their
    /// second (`refusals`: how many), so none goes unrecorded.
    pub async fn record_unknown(&self, cert_der: &[u8], what: &str, e: &Error) {
        let fingerprint = hex::encode(openssl::sha::sha256(cert_der));
        let decision = {
            let mut g = self.unknown.lock().expect("refusal counter");
            let now = Instant::now();
            if g.len() >= UNKNOWN_TRACKED {
                // Held refusals stay until their record is made.
                g.retain(|_, t| {
                    t.flush_due
                        || t.audited
                            .is_some_and(|a| now.duration_since(a) < Duration::from_secs(1))
                });
            }
            if g.len() >= UNKNOWN_TRACKED && !g.contains_key(&fingerprint) {
                None
            } else {
                Some(
                    g.entry(fingerprint.clone())
                        .or_default()
                        .refused(what, e.kind, &e.detail, now),
                )
            }
        };
        let actor = format!("cert-sha256:{}", &fingerprint[..32]);
        match decision {
            None => self.record_anonymous(what, &e.detail).await,
            Some(Throttled::Held) => {}
            Some(Throttled::Now(n)) => {
                self.audit_refusals(&actor, what, e.kind, &e.detail, n)
                    .await
            }
            Some(Throttled::Schedule(after)) => self.flush_later(after, actor, move |me| {
                me.unknown
                    .lock()
                    .expect("refusal counter")
                    .get_mut(&fingerprint)
                    .and_then(|t| t.flush(Instant::now()))
            }),
        }
    }

    /// Records that `actor` was refused `what` because of `e`.
    pub async fn record(&self, actor: &str, what: &str, e: &Error) {
        let event = AuditEvent::new(
            actor,
            &format!("{}.refuse", self.service),
            what.to_string(),
            serde_json::json!({ "kind": e.kind, "detail": e.detail }),
        );
        if let Err(err) = self.store.audit(&event).await {
            tracing::error!(error = %err, "cannot audit a refusal");
        }
    }

    /// Records a refusal of a caller who could not be identified; `why` names it.
    /// Throttled as [`Refusals::record_unknown`] is, all such callers together.
    pub async fn record_anonymous(&self, from: &str, why: &str) {
        let decision = self.anonymous.lock().expect("refusal counter").refused(
            from,
            ErrorKind::Unauthorized,
            why,
            Instant::now(),
        );
        match decision {
            Throttled::Held => {}
            Throttled::Now(n) => {
                self.audit_refusals("unauthenticated", from, ErrorKind::Unauthorized, why, n)
                    .await
            }
            Throttled::Schedule(after) => self.flush_later(after, "unauthenticated".into(), |me| {
                me.anonymous
                    .lock()
                    .expect("refusal counter")
                    .flush(Instant::now())
            }),
        }
    }

    /// At the end of the second (`after`), audits the refusals of `actor` that
    /// `take` finds held back, in one record.
    fn flush_later(
        &self,
        after: Duration,
        actor: String,
        take: impl FnOnce(&Refusals) -> Option<(u64, (String, ErrorKind, String))> + Send + 'static,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some((n, (what, kind, detail))) = take(&me) {
                me.audit_refusals(&actor, &what, kind, &detail, n).await;
            }
        });
    }

    /// One audit record of `n` refusals of `actor`, the last for `what`.
    async fn audit_refusals(&self, actor: &str, what: &str, kind: ErrorKind, detail: &str, n: u64) {
        let event = AuditEvent::new(
            actor,
            &format!("{}.refuse", self.service),
            what.to_string(),
            serde_json::json!({ "kind": kind, "detail": detail, "refusals": n }),
        );
        if let Err(err) = self.store.audit(&event).await {
            tracing::error!(error = %err, "cannot audit a refusal");
        }
    }

    /// A handshake callback for [`ServerTls::acceptor`].
    pub fn on_handshake(&self, metrics: ApiMetrics) -> tls::OnRefused {
        let me = self.clone();
        Arc::new(move |addr: SocketAddr, why: &str| {
            metrics.refused("handshake");
            tracing::info!(peer = %addr, error = why, "TLS handshake refused");
            let me = me.clone();
            let why = format!("TLS handshake: {why}");
            tokio::spawn(async move { me.record_anonymous(&addr.ip().to_string(), &why).await });
        })
    }
}

/// Requests by route and status, their duration, and refusals by cause.
#[derive(Clone)]
pub struct ApiMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    refusals: IntCounterVec,
}

impl ApiMetrics {
    /// Metrics named `gpki_{service}_…`.
    pub fn new(service: &str) -> ApiMetrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                format!("gpki_{service}_requests_total"),
                "API requests by route and HTTP status",
            ),
            &["route", "status"],
        )
        .expect("metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                format!("gpki_{service}_request_duration_seconds"),
                "Time to answer an API request, by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
            ]),
            &["route"],
        )
        .expect("metric");
        let refusals = IntCounterVec::new(
            Opts::new(
                format!("gpki_{service}_refusals_total"),
                "Callers refused, by cause",
            ),
            &["cause"],
        )
        .expect("metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(refusals.clone()),
        ] {
            registry.register(m).expect("metric registration");
        }
        ApiMetrics {
            registry,
            requests,
            duration,
            refusals,
        }
    }

    pub fn observe(&self, route: &str, status: u16, started: Instant) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route])
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn refused(&self, cause: &str) {
        self.refusals.with_label_values(&[cause]).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("metrics encoding");
        String::from_utf8(out).expect("metrics are UTF-8")
    }
}

/// A running mutual-TLS service.
pub struct Running {
    addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes requests in flight.
    pub async fn until_signal(self, what: &str) {
        crate::wait_for_signal().await;
        tracing::info!("{what} stopping");
        self.stop().await;
    }
}

/// Binds `listen` and serves `handler` over `acceptor` within `limits`.
pub async fn start<F, Fut>(
    what: &str,
    listen: &str,
    limits: crate::HttpLimits,
    acceptor: tls::Acceptor,
    handler: F,
) -> Result<Running>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<crate::Body>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot listen on {listen}: {e}"),
        )
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("listener address: {e}")))?;
    let (shutdown, watch) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(crate::serve_https(
        listener, limits, watch, acceptor, handler,
    ));
    tracing::info!(%addr, "{what} listening");
    Ok(Running {
        addr,
        shutdown,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusals a second holds back are audited at its end, counted: the
    /// `refusals` of every record add up to the refusals made, for one unknown
    /// certificate and for unidentified callers alike, in two records each (the
    /// first refusal at once, the rest together).
    #[tokio::test]
    async fn throttled_refusals_are_all_counted_in_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap();
        let refusals = Refusals::new(store.clone(), "ra");
        let e = Error::new(ErrorKind::Unauthorized, "certificate not in force");
        for _ in 0..5 {
            refusals
                .record_unknown(b"a certificate", "POST /v1/requests", &e)
                .await;
        }
        for i in 0..7 {
            refusals
                .record_anonymous(&format!("10.0.0.{i}"), "no client certificate")
                .await;
        }
        let counted = |rows: &[gpki_store::AuditRow], actor: &str| -> (u64, usize) {
            let mine: Vec<_> = rows.iter().filter(|r| r.actor.starts_with(actor)).collect();
            let n = mine
                .iter()
                .map(|r| {
                    let d: serde_json::Value = serde_json::from_str(&r.detail).unwrap();
                    d["refusals"].as_u64().unwrap()
                })
                .sum();
            (n, mine.len())
        };
        // At once: the first of each, alone.
        let rows = store.audit_tail(100).await.unwrap();
        assert_eq!(counted(&rows, "cert-sha256:"), (1, 1));
        assert_eq!(counted(&rows, "unauthenticated"), (1, 1));
        // At the end of the second: the rest, in one record each.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let rows = store.audit_tail(100).await.unwrap();
            if counted(&rows, "cert-sha256:").0 == 5 && counted(&rows, "unauthenticated").0 == 7 {
                assert_eq!(
                    counted(&rows, "cert-sha256:").1,
                    2,
                    "one record for the held four"
                );
                assert_eq!(
                    counted(&rows, "unauthenticated").1,
                    2,
                    "one record for the held six"
                );
                assert!(
                    rows.iter().any(|r| r.target == "10.0.0.6"),
                    "the record of the held names the last of them"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "held refusals never audited: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        store.audit_verify().await.unwrap();
    }

    #[test]
    fn auth_cache_keeps_an_answer_for_its_ttl_and_never_past_not_after() {
        let cache: AuthCache<u8, &str> = AuthCache::new(AUTH_CACHE_MAX_MS).unwrap();
        let now = 1_000;
        cache.put(cache.ticket(), 1, now + 10, "op");
        assert_eq!(cache.get(&1, now), Some("op"));
        // The certificate's validity ends before the ttl does.
        assert_eq!(cache.get(&1, now + 11), None);
        std::thread::sleep(Duration::from_millis(AUTH_CACHE_MAX_MS + 100));
        assert_eq!(cache.get(&1, now), None, "kept past its ttl");
        cache.put(cache.ticket(), 2, now + 10, "op");
        cache.clear();
        assert_eq!(cache.get(&2, now), None, "kept past clear()");
        // An answer read before a clear() (an operator suspended meanwhile) is
        // not kept.
        let ticket = cache.ticket();
        cache.clear();
        cache.put(ticket, 3, now + 10, "op");
        assert_eq!(
            cache.get(&3, now),
            None,
            "an answer older than clear() kept"
        );
        // An answer is aged from its ticket, not from put().
        let ticket = cache.ticket();
        std::thread::sleep(Duration::from_millis(AUTH_CACHE_MAX_MS + 100));
        cache.put(ticket, 4, now + 10, "op");
        assert_eq!(cache.get(&4, now), None, "aged from put()");
    }

    #[test]
    fn auth_cache_of_zero_keeps_nothing_and_over_a_second_is_refused() {
        let cache: AuthCache<u8, &str> = AuthCache::new(0).unwrap();
        cache.put(cache.ticket(), 1, i64::MAX, "op");
        assert_eq!(cache.get(&1, 0), None);
        let e = AuthCache::<u8, &str>::new(AUTH_CACHE_MAX_MS + 1)
            .err()
            .expect("over a second refused");
        assert!(e.detail.contains("within a second"), "{e}");
    }
}
