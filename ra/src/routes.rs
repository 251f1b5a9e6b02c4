//! Routing: a request's path to its handler, the operator authenticated (from
//! the cache or the store) and the body read within limits; refusals audited.
//! The steps are [`gpki_service::front`]'s, shared with the CA service.

use gpki_service::api::json_reply;
use gpki_service::front::Api;
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

/// The RA's own routes (health and metrics are the front's). Operator routes
/// carry the id in their path, so a handler never looks for one that routing
/// did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RaRoute {
    /// An official's own revocation, authenticated by its signed statement.
    HolderRevoke,
    /// An official's own mobile ID revocation, likewise.
    HolderCredentialRevoke,
    /// A route for an authenticated operator.
    Operator(OperatorRoute),
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

impl Api for RaRoute {
    const TRAILING_SLASHES: bool = true;

    fn of(method: &Method, path: &str) -> Option<RaRoute> {
        use OperatorRoute as O;
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let id = |s: &str| s.parse::<i64>().ok();
        let op = |o| Some(RaRoute::Operator(o));
        match (method, parts.as_slice()) {
            (&Method::POST, ["v1", "holder", "revocations"]) => Some(RaRoute::HolderRevoke),
            (&Method::POST, ["v1", "holder", "credential-revocations"]) => {
                Some(RaRoute::HolderCredentialRevoke)
            }
            (&Method::GET, ["v1", "whoami"]) => op(O::Whoami),
            (&Method::POST, ["v1", "requests"]) => op(O::Submit),
            (&Method::GET, ["v1", "requests"]) => op(O::List),
            (&Method::POST, ["v1", "revocations"]) => op(O::Revoke),
            (&Method::POST, ["v1", "renewals"]) => op(O::Renew),
            (&Method::POST, ["v1", "credentials", "offers"]) => op(O::Offer),
            (&Method::GET, ["v1", "operators"]) => op(O::Operators),
            (&Method::POST, ["v1", "operators"]) => op(O::Enrol),
            (&Method::GET, ["v1", "requests", n]) => id(n).and_then(|n| op(O::Show(n))),
            (&Method::POST, ["v1", "requests", n, verb]) => match (id(n), *verb) {
                (Some(n), "identity") => op(O::Identity(n)),
                (Some(n), "approve") => op(O::Approve(n)),
                (Some(n), "reject") => op(O::Reject(n)),
                _ => None,
            },
            (&Method::POST, ["v1", "credentials", n, "revoke"]) => {
                id(n).and_then(|n| op(O::CredentialRevoke(n)))
            }
            (&Method::POST, ["v1", "credentials", "offers", n, "issue"]) => {
                id(n).and_then(|n| op(O::OfferIssue(n)))
            }
            (&Method::POST, ["v1", "operators", n, verb]) => {
                let verb = match *verb {
                    "suspend" => StatusVerb::Suspend,
                    "activate" => StatusVerb::Activate,
                    "remove" => StatusVerb::Remove,
                    _ => return None,
                };
                id(n).and_then(|n| op(O::OperatorStatus(n, verb)))
            }
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        use OperatorRoute as O;
        match self {
            RaRoute::HolderRevoke => "holder-revoke",
            RaRoute::HolderCredentialRevoke => "holder-credential-revoke",
            RaRoute::Operator(o) => match o {
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
    state
        .front
        .handle(req, |route, req| async move {
            match route {
                RaRoute::HolderRevoke | RaRoute::HolderCredentialRevoke => {
                    holder_revoke(state, route, req).await
                }
                RaRoute::Operator(o) => api(state, o, req).await,
            }
        })
        .await
}

/// An operator's call: authenticated, its body read, handled, its refusal
/// audited (a replayed key with another body, a broken CSR, a policy: not only
/// the unauthorised ones).
pub(crate) async fn api(
    state: &State,
    route: OperatorRoute,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let front = &state.front;
    let authenticated = || authenticate(state, &req, &path);
    let op = match front.who(&req, &state.operators, authenticated).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    let body = match front.body(req, &op.label, &path).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let result = dispatch(state, &op, route, &query, &body).await;
    let reply = result.map(|(status, v)| json_reply(status, &v));
    front.answer(reply, &op.label, &path).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use gpki_service::front::Route;

    /// Every route of the RA's API by method and path, with its label; a path
    /// whose id is not a number, an unknown verb or a wrong method has none.
    #[test]
    fn routes_are_a_table() {
        use OperatorRoute as O;
        use RaRoute::Operator as Op;
        let (get, post) = (&Method::GET, &Method::POST);
        let cases: Vec<(&Method, &str, Route<RaRoute>, &str)> = vec![
            (get, "/healthz", Route::Healthz, "healthz"),
            (get, "/metrics", Route::Metrics, "metrics"),
            (get, "/healthz/", Route::Healthz, "healthz"),
            (get, "/metrics/", Route::Metrics, "metrics"),
            (
                post,
                "/v1/holder/revocations",
                Route::Api(RaRoute::HolderRevoke),
                "holder-revoke",
            ),
            (
                post,
                "/v1/holder/credential-revocations",
                Route::Api(RaRoute::HolderCredentialRevoke),
                "holder-credential-revoke",
            ),
            (get, "/v1/whoami", Route::Api(Op(O::Whoami)), "whoami"),
            (post, "/v1/requests", Route::Api(Op(O::Submit)), "submit"),
            (get, "/v1/requests/", Route::Api(Op(O::List)), "list"),
            (get, "/v1/requests/7", Route::Api(Op(O::Show(7))), "show"),
            (
                post,
                "/v1/requests/7/identity",
                Route::Api(Op(O::Identity(7))),
                "identity",
            ),
            (
                post,
                "/v1/requests/7/approve",
                Route::Api(Op(O::Approve(7))),
                "approve",
            ),
            (
                post,
                "/v1/requests/7/reject",
                Route::Api(Op(O::Reject(7))),
                "reject",
            ),
            (post, "/v1/revocations", Route::Api(Op(O::Revoke)), "revoke"),
            (post, "/v1/renewals", Route::Api(Op(O::Renew)), "renew"),
            (
                post,
                "/v1/credentials/3/revoke",
                Route::Api(Op(O::CredentialRevoke(3))),
                "credential-revoke",
            ),
            (
                post,
                "/v1/credentials/offers",
                Route::Api(Op(O::Offer)),
                "offer",
            ),
            (
                post,
                "/v1/credentials/offers/4/issue",
                Route::Api(Op(O::OfferIssue(4))),
                "offer-issue",
            ),
            (
                get,
                "/v1/operators",
                Route::Api(Op(O::Operators)),
                "operators",
            ),
            (post, "/v1/operators", Route::Api(Op(O::Enrol)), "enrol"),
            (
                post,
                "/v1/operators/2/suspend",
                Route::Api(Op(O::OperatorStatus(2, StatusVerb::Suspend))),
                "suspend",
            ),
            (
                post,
                "/v1/operators/2/activate",
                Route::Api(Op(O::OperatorStatus(2, StatusVerb::Activate))),
                "activate",
            ),
            (
                post,
                "/v1/operators/2/remove",
                Route::Api(Op(O::OperatorStatus(2, StatusVerb::Remove))),
                "remove",
            ),
            (get, "/v1/requests/x", Route::Other, "other"),
            (post, "/v1/requests/7/sign", Route::Other, "other"),
            (post, "/v1/operators/2/promote", Route::Other, "other"),
            (post, "/v1/operators/x/suspend", Route::Other, "other"),
            (get, "/v1/revocations", Route::Other, "other"),
            (post, "/healthz", Route::Other, "other"),
            (get, "/v1/holder/revocations", Route::Other, "other"),
        ];
        for (method, path, route, label) in cases {
            assert_eq!(Route::<RaRoute>::of(method, path), route, "{method} {path}");
            assert_eq!(route.label(), label, "{method} {path}");
        }
    }
}
