//! HTTP for RFC 3161 (§3.4): POST `application/timestamp-query`, answered with
//! `application/timestamp-reply`; `/healthz` and `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gpki_service::{plain, read_body, Body};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::State;

pub async fn serve(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    gpki_service::serve_http(listener, state.config.service.http, shutdown, move |req| {
        let state = state.clone();
        async move { handle(&state, req).await }
    })
    .await
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => health(state),
        (&Method::GET, "/metrics") => {
            use prometheus::Encoder;
            let mut out = Vec::new();
            let _ = prometheus::TextEncoder::new().encode(&state.registry.gather(), &mut out);
            Response::new(Full::new(Bytes::from(out)))
        }
        (&Method::POST, _) => match read_body(
            req,
            state.config.service.max_request_bytes,
            state.config.service.http.body_timeout(),
        )
        .await
        {
            Ok(body) => {
                let (der, outcome) = state.answer(&body).await;
                state.answers.with_label_values(&[outcome]).inc();
                gpki_service::der("application/timestamp-reply", der)
            }
            Err(refusal) => {
                state.answers.with_label_values(&["refused_http"]).inc();
                refusal
            }
        },
        _ => {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "RFC 3161 over HTTP takes POST",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            r
        }
    };
    state.latency.observe(started.elapsed().as_secs_f64());
    response
}

fn health(state: &State) -> Response<Body> {
    let clock = crate::clock::state();
    let refusal = state.refusal();
    let body = json!({
        "status": if refusal.is_none() { "ok" } else { "refusing" },
        "reason": refusal.as_ref().map(|r| r.text.clone()),
        "clock": clock,
        "clock_sync_required": state.config.require_clock_sync,
        "certificate_not_after": gpki_pki::time::rfc3339(state.key().not_after),
        "policy": state.config.policy,
        "certificate_status": {
            "last_ok": state.cert_check().last_ok.map(gpki_pki::time::rfc3339),
            "problem": state.cert_check().problem,
            "error": state.cert_check().error,
        },
    });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    if refusal.is_some() {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
