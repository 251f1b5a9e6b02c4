//! Routing: a request's path to its handler, the caller authenticated (from the
//! cache or the store) and the body read within limits; every refusal audited.

use std::time::{Duration, Instant};

use gpki_pki::{Error, ErrorKind};
use gpki_service::api::{error_reply, json_reply};
use gpki_service::mtls::{caller, peer_key};
use gpki_service::Body;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::credential::credential;
use crate::issue::issue;
use crate::renew::{renew, revoke};
use crate::signers::renew_signer;
use crate::State;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Healthz,
    Metrics,
    /// A route for an authenticated service client.
    Client(ClientRoute),
    Other,
}

/// The routes of an authenticated service client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientRoute {
    Issue,
    Renew,
    Revoke,
    SignerRenew,
    Credential,
}

impl Route {
    /// The route of `method` and `path`.
    pub(crate) fn of(method: &Method, path: &str) -> Route {
        use ClientRoute as C;
        match (method, path) {
            (&Method::GET, "/healthz") => Route::Healthz,
            (&Method::GET, "/metrics") => Route::Metrics,
            (&Method::POST, "/v1/certificates") => Route::Client(C::Issue),
            (&Method::POST, "/v1/certificates/renew") => Route::Client(C::Renew),
            (&Method::POST, "/v1/certificates/revoke") => Route::Client(C::Revoke),
            (&Method::POST, "/v1/signers/renew") => Route::Client(C::SignerRenew),
            (&Method::POST, "/v1/credentials") => Route::Client(C::Credential),
            _ => Route::Other,
        }
    }

    /// Its label in metrics and refusal records.
    pub(crate) fn label(self) -> &'static str {
        use ClientRoute as C;
        match self {
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Other => "other",
            Route::Client(C::Issue) => "issue",
            Route::Client(C::Renew) => "renew",
            Route::Client(C::Revoke) => "revoke",
            Route::Client(C::SignerRenew) => "signer-renew",
            Route::Client(C::Credential) => "credential",
        }
    }
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let route = Route::of(req.method(), req.uri().path());
    let reply = match route {
        Route::Healthz | Route::Metrics => {
            gpki_service::mtls::health_or_metrics(
                &state.store,
                &state.metrics,
                &req,
                route == Route::Metrics,
            )
            .await
        }
        Route::Other => error_reply(&Error::not_found(format!(
            "no route {} {}",
            req.method(),
            req.uri().path()
        ))),
        Route::Client(c) => api(state, c, req).await,
    };
    state
        .metrics
        .observe(route.label(), reply.status().as_u16(), started);
    reply
}

/// An authenticated API call: who is calling, the body, then the route.
pub(crate) async fn api(
    state: &State,
    route: ClientRoute,
    req: Request<Incoming>,
) -> Response<Body> {
    let label = Route::Client(route).label();
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
        state.config.service.max_request_bytes,
        Duration::from_millis(state.config.service.http.body_timeout_ms),
    )
    .await
    {
        Ok(b) => b,
        Err(r) => {
            state.metrics.refused("rejected");
            let e = Error::malformed(format!("request body refused (HTTP {})", r.status()));
            state
                .refusals
                .record(&format!("client:{}", who.label()), label, &e)
                .await;
            return r;
        }
    };
    let result = match route {
        ClientRoute::Issue => issue(state, &who, &body).await.map(reply),
        ClientRoute::Renew => renew(state, &who, &body).await.map(reply),
        ClientRoute::SignerRenew => renew_signer(state, &who, &body).await.map(reply),
        ClientRoute::Revoke => revoke(state, &who, &body).await.map(reply),
        ClientRoute::Credential => credential(state, &who, &body).await.map(reply),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            // Every refusal of an identified client, of every kind, is audited.
            if let Some(kind) = gpki_service::mtls::refusal(&e) {
                state.metrics.refused(kind);
                state
                    .refusals
                    .record(&format!("client:{}", who.label()), label, &e)
                    .await;
            }
            error_reply(&e)
        }
    }
}

pub(crate) fn reply(answer: (StatusCode, impl serde::Serialize)) -> Response<Body> {
    json_reply(answer.0, &answer.1)
}

pub(crate) fn unauthorized(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthorized, detail)
}
