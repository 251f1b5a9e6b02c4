//! HTTP for RFC 3161 (§3.4): POST `application/timestamp-query`, answered with
//! `application/timestamp-reply`; `/healthz` and `/metrics`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::State;

pub async fn serve(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => health(state),
        (&Method::GET, "/metrics") => {
            use prometheus::Encoder;
            let mut out = Vec::new();
            let _ = prometheus::TextEncoder::new().encode(&state.registry.gather(), &mut out);
            Response::new(Full::new(Bytes::from(out)))
        }
        (&Method::POST, _) => {
            let limit = state.config.max_request_bytes;
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > limit) {
                state.answers.with_label_values(&["too_large"]).inc();
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request body over {limit} octets"),
                );
            }
            match Limited::new(req.into_body(), limit).collect().await {
                Ok(body) => {
                    let (der, outcome) = state.answer(&body.to_bytes()).await;
                    state.answers.with_label_values(&[outcome]).inc();
                    let mut r = Response::new(Full::new(Bytes::from(der)));
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/timestamp-reply"),
                    );
                    r
                }
                Err(_) => {
                    state.answers.with_label_values(&["too_large"]).inc();
                    plain(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("request body over {limit} octets"),
                    )
                }
            }
        }
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

fn health(state: &State) -> Response<Full<Bytes>> {
    let clock = crate::clock::state();
    let refusal = state.refusal();
    let body = json!({
        "status": if refusal.is_none() { "ok" } else { "refusing" },
        "reason": refusal.as_ref().map(|r| r.text.clone()),
        "clock": clock,
        "clock_sync_required": state.config.require_clock_sync,
        "certificate_not_after": gpki_pki::time::rfc3339(state.key.not_after),
        "policy": state.config.policy,
        "certificate_status_error": state.cert_status_error.lock().expect("lock").clone(),
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
