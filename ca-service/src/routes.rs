//! Routing: a request's path to its handler, the caller authenticated (from the
//! cache or the store) and the body read within limits; every refusal audited.
//! The steps are [`gpki_service::front`]'s, shared with the RA service.

use gpki_service::api::json_reply;
use gpki_service::front::Api;
use gpki_service::Body;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::credential::credential;
use crate::issue::issue;
use crate::renew::{renew, revoke};
use crate::signers::renew_signer;
use crate::State;

/// The routes of an authenticated service client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientRoute {
    Issue,
    Renew,
    Revoke,
    SignerRenew,
    Credential,
}

impl Api for ClientRoute {
    fn of(method: &Method, path: &str) -> Option<ClientRoute> {
        use ClientRoute as C;
        match (method, path) {
            (&Method::POST, "/v1/certificates") => Some(C::Issue),
            (&Method::POST, "/v1/certificates/renew") => Some(C::Renew),
            (&Method::POST, "/v1/certificates/revoke") => Some(C::Revoke),
            (&Method::POST, "/v1/signers/renew") => Some(C::SignerRenew),
            (&Method::POST, "/v1/credentials") => Some(C::Credential),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        use ClientRoute as C;
        match self {
            C::Issue => "issue",
            C::Renew => "renew",
            C::Revoke => "revoke",
            C::SignerRenew => "signer-renew",
            C::Credential => "credential",
        }
    }
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    state
        .front
        .handle(req, |route, req| api(state, route, req))
        .await
}

/// An authenticated API call: who is calling, the body, then the route.
pub(crate) async fn api(
    state: &State,
    route: ClientRoute,
    req: Request<Incoming>,
) -> Response<Body> {
    let front = &state.front;
    let from = req.uri().path().to_string();
    let authenticate = || async {
        let c = front.caller(&req, &from).await?;
        let not_after = c.cert.not_after;
        Ok((c, not_after))
    };
    let who = match front.who(&req, &state.callers, authenticate).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // Refusals of an identified client name it and the route.
    let (actor, label) = (format!("client:{}", who.label()), route.label());
    let body = match front.body(req, &actor, label).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let result = match route {
        ClientRoute::Issue => issue(state, &who, &body).await.map(reply),
        ClientRoute::Renew => renew(state, &who, &body).await.map(reply),
        ClientRoute::SignerRenew => renew_signer(state, &who, &body).await.map(reply),
        ClientRoute::Revoke => revoke(state, &who, &body).await.map(reply),
        ClientRoute::Credential => credential(state, &who, &body).await.map(reply),
    };
    front.answer(result, &actor, label).await
}

pub(crate) fn reply(answer: (StatusCode, impl serde::Serialize)) -> Response<Body> {
    json_reply(answer.0, &answer.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpki_service::front::Route;

    /// Every route of the CA's API, by method and path, and its label; what is
    /// not one of them has no route (a GET of a POST route, a trailing part).
    #[test]
    fn routes_are_a_table() {
        use ClientRoute as C;
        let post = Method::POST;
        let cases: [(&Method, &str, Route<ClientRoute>, &str); 11] = [
            (&Method::GET, "/healthz", Route::Healthz, "healthz"),
            (&Method::GET, "/metrics", Route::Metrics, "metrics"),
            (&post, "/v1/certificates", Route::Api(C::Issue), "issue"),
            (
                &post,
                "/v1/certificates/renew",
                Route::Api(C::Renew),
                "renew",
            ),
            (
                &post,
                "/v1/certificates/revoke",
                Route::Api(C::Revoke),
                "revoke",
            ),
            (
                &post,
                "/v1/signers/renew",
                Route::Api(C::SignerRenew),
                "signer-renew",
            ),
            (
                &post,
                "/v1/credentials",
                Route::Api(C::Credential),
                "credential",
            ),
            (&Method::GET, "/v1/certificates", Route::Other, "other"),
            (&post, "/v1/certificates/", Route::Other, "other"),
            (&Method::GET, "/healthz/", Route::Other, "other"),
            (&post, "/v1/certificates/x", Route::Other, "other"),
        ];
        for (method, path, route, label) in cases {
            assert_eq!(
                Route::<ClientRoute>::of(method, path),
                route,
                "{method} {path}"
            );
            assert_eq!(route.label(), label);
        }
    }
}
