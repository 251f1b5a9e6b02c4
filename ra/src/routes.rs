//! Routing: a request's path to its handler, the operator authenticated (from
//! the cache or the store) and the body read within limits; refusals audited.

use std::time::{Duration, Instant};

use gpki_pki::Error;
use gpki_service::api::{error_reply, json_reply};
use gpki_service::mtls::peer_key;
use gpki_service::Body;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::auth::{authenticate, Operator};
use crate::holder::holder_revoke;
use crate::operators::{enrol, operator_status};
use crate::renewal::renew;
use crate::requests::{approve, identity, list, reject, revoke, show, submit, Reply};
use crate::State;

/// Where a request goes. Operator routes carry the id in their path, so a
/// handler never looks for one that routing did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Healthz,
    Metrics,
    /// An official's own revocation, authenticated by its signed statement.
    HolderRevoke,
    /// An official's own mobile ID revocation, likewise.
    HolderCredentialRevoke,
    /// A route for an authenticated operator.
    Operator(OperatorRoute),
    Other,
}

/// The routes of an authenticated operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperatorRoute {
    Whoami,
    Submit,
    List,
    Show(i64),
    Identity(i64),
    Approve(i64),
    Reject(i64),
    Revoke,
    Renew,
    CredentialRevoke(i64),
    Offer,
    OfferIssue(i64),
    Operators,
    Enrol,
    OperatorStatus(i64, StatusVerb),
}

/// What an administrator does to another operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusVerb {
    Suspend,
    Activate,
    Remove,
}

impl StatusVerb {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StatusVerb::Suspend => "suspend",
            StatusVerb::Activate => "activate",
            StatusVerb::Remove => "remove",
        }
    }
}

impl Route {
    /// The route of `method` and `path`.
    pub(crate) fn of(method: &Method, path: &str) -> Route {
        use OperatorRoute as O;
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let id = |s: &str| s.parse::<i64>().ok();
        let op = Route::Operator;
        match (method, parts.as_slice()) {
            (&Method::GET, ["healthz"]) => Route::Healthz,
            (&Method::GET, ["metrics"]) => Route::Metrics,
            (&Method::POST, ["v1", "holder", "revocations"]) => Route::HolderRevoke,
            (&Method::POST, ["v1", "holder", "credential-revocations"]) => {
                Route::HolderCredentialRevoke
            }
            (&Method::GET, ["v1", "whoami"]) => op(O::Whoami),
            (&Method::POST, ["v1", "requests"]) => op(O::Submit),
            (&Method::GET, ["v1", "requests"]) => op(O::List),
            (&Method::POST, ["v1", "revocations"]) => op(O::Revoke),
            (&Method::POST, ["v1", "renewals"]) => op(O::Renew),
            (&Method::POST, ["v1", "credentials", "offers"]) => op(O::Offer),
            (&Method::GET, ["v1", "operators"]) => op(O::Operators),
            (&Method::POST, ["v1", "operators"]) => op(O::Enrol),
            (&Method::GET, ["v1", "requests", n]) => id(n).map_or(Route::Other, |n| op(O::Show(n))),
            (&Method::POST, ["v1", "requests", n, verb]) => match (id(n), *verb) {
                (Some(n), "identity") => op(O::Identity(n)),
                (Some(n), "approve") => op(O::Approve(n)),
                (Some(n), "reject") => op(O::Reject(n)),
                _ => Route::Other,
            },
            (&Method::POST, ["v1", "credentials", n, "revoke"]) => {
                id(n).map_or(Route::Other, |n| op(O::CredentialRevoke(n)))
            }
            (&Method::POST, ["v1", "credentials", "offers", n, "issue"]) => {
                id(n).map_or(Route::Other, |n| op(O::OfferIssue(n)))
            }
            (&Method::POST, ["v1", "operators", n, verb]) => {
                let verb = match *verb {
                    "suspend" => StatusVerb::Suspend,
                    "activate" => StatusVerb::Activate,
                    "remove" => StatusVerb::Remove,
                    _ => return Route::Other,
                };
                id(n).map_or(Route::Other, |n| op(O::OperatorStatus(n, verb)))
            }
            _ => Route::Other,
        }
    }

    /// Its label in metrics.
    pub(crate) fn label(self) -> &'static str {
        use OperatorRoute as O;
        match self {
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::HolderRevoke => "holder-revoke",
            Route::HolderCredentialRevoke => "holder-credential-revoke",
            Route::Other => "other",
            Route::Operator(o) => match o {
                O::Whoami => "whoami",
                O::Submit => "submit",
                O::List => "list",
                O::Show(_) => "show",
                O::Identity(_) => "identity",
                O::Approve(_) => "approve",
                O::Reject(_) => "reject",
                O::Revoke => "revoke",
                O::Renew => "renew",
                O::CredentialRevoke(_) => "credential-revoke",
                O::Offer => "offer",
                O::OfferIssue(_) => "offer-issue",
                O::Operators => "operators",
                O::Enrol => "enrol",
                O::OperatorStatus(_, verb) => verb.name(),
            },
        }
    }
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let route = Route::of(req.method(), req.uri().path());
    let reply = match route {
        Route::Healthz | Route::Metrics => {
            gpki_service::mtls::health_or_metrics(
                state.store.scaffolding(),
                &state.metrics,
                &req,
                route == Route::Metrics,
            )
            .await
        }
        Route::HolderRevoke | Route::HolderCredentialRevoke => {
            holder_revoke(state, route, req).await
        }
        Route::Other => error_reply(&Error::not_found(format!(
            "no route {} {}",
            req.method(),
            req.uri().path()
        ))),
        Route::Operator(o) => api(state, o, req).await,
    };
    state
        .metrics
        .observe(route.label(), reply.status().as_u16(), started);
    reply
}

/// The request body within the service's size and time limits, or the reply that
/// refuses it.
pub(crate) async fn body_of(
    state: &State,
    req: Request<Incoming>,
) -> std::result::Result<gpki_service::Bytes, Response<Body>> {
    gpki_service::read_body(
        req,
        state.config.service.max_request_bytes,
        Duration::from_millis(state.config.service.http.body_timeout_ms),
    )
    .await
}

/// An operator's call: authenticated, its body read, handled, its refusal
/// audited.
pub(crate) async fn api(
    state: &State,
    route: OperatorRoute,
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
    let result = dispatch(state, &op, route, &query, &body).await;
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

/// The handler of an operator's route.
async fn dispatch(
    state: &State,
    op: &Operator,
    route: OperatorRoute,
    query: &str,
    body: &[u8],
) -> Reply {
    use OperatorRoute as O;
    match route {
        O::Whoami => Ok((
            StatusCode::OK,
            json!({ "operator": op.record, "ra": op.ra }),
        )),
        O::Submit => submit(state, op, body).await,
        O::List => list(state, op, query).await,
        O::Show(id) => show(state, op, id).await,
        O::Identity(id) => identity(state, op, id, body).await,
        O::Approve(id) => approve(state, op, id).await,
        O::Reject(id) => reject(state, op, id, body).await,
        O::Revoke => revoke(state, op, body).await,
        O::Renew => renew(state, op, body).await,
        O::Operators => state
            .store
            .operators(op.ra.id)
            .await
            .map(|o| (StatusCode::OK, json!({ "operators": o }))),
        O::Enrol => enrol(state, op, body).await,
        O::Offer => crate::credentials::offer(state, op, body).await,
        O::CredentialRevoke(id) => crate::credentials::revoke(state, op, id, body).await,
        O::OfferIssue(id) => crate::credentials::issue(state, op, id, body).await,
        O::OperatorStatus(id, verb) => operator_status(state, op, id, verb).await,
    }
}
