//! The front of a mutual-TLS service (the CA and RA services): its route table,
//! and the steps every authenticated call takes in the same order — who is
//! calling (from the cache, else the store), the body within limits, the
//! handler, and every refusal of an identified caller audited.
//!
//! A service declares its API routes as an enum implementing [`Api`]; routing,
//! health, metrics and "no route" are [`Front::handle`]'s, so no service writes
//! them again.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gpki_pki::{Error, ErrorKind, Result};
use gpki_store::Store;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use crate::api::error_reply;
use crate::mtls::{caller, health_or_metrics, peer_key, refusal, ApiMetrics, AuthCache, Caller};
use crate::mtls::{Refusals, Running, ServerTls};
use crate::tls::{self, PeerCertificate};
use crate::{Body, Bytes, ServiceConfig};

/// A service's own routes: what [`Route::of`] finds after health and metrics.
pub trait Api: Copy + Send + 'static {
    /// The route of `method` and `path`, or `None` for no route of this API.
    fn of(method: &Method, path: &str) -> Option<Self>;
    /// Its label in metrics and refusal records.
    fn label(self) -> &'static str;
    /// Whether trailing slashes are ignored on every path, health and metrics
    /// included (the RA's routes); else paths match exactly (the CA's).
    const TRAILING_SLASHES: bool = false;
}

/// Where a request to a mutual-TLS service goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<A> {
    Healthz,
    Metrics,
    Api(A),
    Other,
}

impl<A: Api> Route<A> {
    /// The route of `method` and `path`.
    pub fn of(method: &Method, path: &str) -> Route<A> {
        let own = if A::TRAILING_SLASHES {
            path.trim_end_matches('/')
        } else {
            path
        };
        match (method, own) {
            (&Method::GET, "/healthz") => Route::Healthz,
            (&Method::GET, "/metrics") => Route::Metrics,
            _ => A::of(method, path).map_or(Route::Other, Route::Api),
        }
    }

    /// Its label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Other => "other",
            Route::Api(a) => a.label(),
        }
    }
}

/// A mutual-TLS service's state: its front, and how it answers a request
/// (commonly [`Front::handle`] with its own routes).
pub trait Service: Send + Sync + 'static {
    fn front(&self) -> &Front;
    fn handle(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + Send;
}

/// Binds the service's address and serves `state` over `tls` (see
/// [`Front::start`]).
pub async fn start<S: Service>(what: &str, tls: &ServerTls, state: S) -> Result<Running> {
    let state = Arc::new(state);
    let front = state.front().clone();
    front
        .start(what, tls, move |req| {
            let state = state.clone();
            async move { state.handle(req).await }
        })
        .await
}

/// What every mutual-TLS service keeps at its front: the store (health, callers,
/// the audit of refusals), its metrics and its request limits.
#[derive(Clone)]
pub struct Front {
    store: Store,
    metrics: ApiMetrics,
    refusals: Refusals,
    service: ServiceConfig,
}

impl Front {
    /// The front of the service `name` (`ca`, `ra`: its metrics' and audit
    /// records' label).
    pub fn new(store: Store, name: &'static str, service: &ServiceConfig) -> Front {
        Front {
            metrics: ApiMetrics::new(name),
            refusals: Refusals::new(store.clone(), name),
            store,
            service: service.clone(),
        }
    }

    pub fn metrics(&self) -> &ApiMetrics {
        &self.metrics
    }

    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// Binds the service's address and serves `handler` over `tls`, every failed
    /// handshake counted and audited.
    pub async fn start<F, Fut>(&self, what: &str, tls: &ServerTls, handler: F) -> Result<Running>
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let acceptor: tls::Acceptor =
            tls.acceptor(self.refusals.on_handshake(self.metrics.clone()))?;
        crate::mtls::start(
            what,
            &self.service.listen,
            self.service.http,
            acceptor,
            handler,
        )
        .await
    }

    /// Routes `req`: health and metrics (for a caller in force), "no route", or
    /// `api` for the service's own routes; the reply's status counted under the
    /// route's label.
    pub async fn handle<A, F, Fut>(&self, req: Request<Incoming>, api: F) -> Response<Body>
    where
        A: Api,
        F: FnOnce(A, Request<Incoming>) -> Fut,
        Fut: Future<Output = Response<Body>>,
    {
        let started = Instant::now();
        let route = Route::<A>::of(req.method(), req.uri().path());
        let reply = match route {
            Route::Healthz | Route::Metrics => {
                health_or_metrics(
                    &self.store,
                    &self.metrics,
                    &req,
                    matches!(route, Route::Metrics),
                )
                .await
            }
            Route::Other => error_reply(&Error::not_found(format!(
                "no route {} {}",
                req.method(),
                req.uri().path()
            ))),
            Route::Api(a) => api(a, req).await,
        };
        self.metrics
            .observe(route.label(), reply.status().as_u16(), started);
        reply
    }

    /// The caller of `req` from `cache`, else from `authenticate` (whose
    /// refusal reply is returned as it is), cached until its certificate's
    /// `not_after`. The ticket is taken before `authenticate` is called, so a
    /// revocation that clears the cache while the store is read is not undone
    /// by this put.
    pub async fn who<T, A, Fut>(
        &self,
        req: &Request<Incoming>,
        cache: &AuthCache<[u8; 32], T>,
        authenticate: A,
    ) -> std::result::Result<T, Response<Body>>
    where
        T: Clone,
        A: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<(T, i64), Response<Body>>>,
    {
        let key = peer_key(req);
        if let Some(t) = key.and_then(|k| cache.get(&k, gpki_pki::time::now())) {
            return Ok(t);
        }
        let ticket = cache.ticket();
        let (t, not_after) = authenticate().await?;
        if let Some(k) = key {
            cache.put(ticket, k, not_after, t.clone());
        }
        Ok(t)
    }

    /// The store's caller behind `req`'s client certificate, in force now; an
    /// unauthenticated request (no certificate, or one the store does not hold
    /// in force) is counted and audited (throttled: it names no one), and its
    /// refusal is the reply.
    pub async fn caller(
        &self,
        req: &Request<Incoming>,
        what: &str,
    ) -> std::result::Result<Caller, Response<Body>> {
        match caller(&self.store, req).await {
            Ok(c) => Ok(c),
            Err(e) => {
                if e.kind == ErrorKind::Unauthorized {
                    self.metrics.refused("unauthenticated");
                    self.audit_unknown(req, what, &e).await;
                }
                Err(error_reply(&e))
            }
        }
    }

    /// Audits the refusal `e` of `req` for `what` when its caller is no one the
    /// service knows: under the certificate it presented, or as anonymous
    /// (throttled, as neither names anyone).
    pub async fn audit_unknown(&self, req: &Request<Incoming>, what: &str, e: &Error) {
        match req.extensions().get::<PeerCertificate>() {
            None => self.refusals.record_anonymous(what, &e.detail).await,
            Some(c) => self.refusals.record_unknown(&c.0, what, e).await,
        }
    }

    /// The body of `req` within the service's size and time limits, or the reply
    /// that refuses it.
    pub async fn read(&self, req: Request<Incoming>) -> std::result::Result<Bytes, Response<Body>> {
        let limit = self.service.max_request_bytes;
        let timeout = Duration::from_millis(self.service.http.body_timeout_ms);
        crate::read_body(req, limit, timeout).await
    }

    /// [`Front::read`] for an identified caller: an oversized or stalled body is
    /// a refusal, audited under `who` for `what`.
    pub async fn body(
        &self,
        req: Request<Incoming>,
        who: &str,
        what: &str,
    ) -> std::result::Result<Bytes, Response<Body>> {
        match self.read(req).await {
            Ok(b) => Ok(b),
            Err(r) => {
                self.metrics.refused("rejected");
                let e = Error::malformed(format!("request body refused (HTTP {})", r.status()));
                self.refusals.record(who, what, &e).await;
                Err(r)
            }
        }
    }

    /// The reply to an identified caller: `result`, or its error, which is
    /// counted and audited under `who` for `what` when it refuses what they
    /// asked (every kind but the service's own faults).
    pub async fn answer(
        &self,
        result: Result<Response<Body>>,
        who: &str,
        what: &str,
    ) -> Response<Body> {
        match result {
            Ok(r) => r,
            Err(e) => {
                if let Some(kind) = refusal(&e) {
                    self.metrics.refused(kind);
                    self.refusals.record(who, what, &e).await;
                }
                error_reply(&e)
            }
        }
    }
}
