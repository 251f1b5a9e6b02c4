//! HTTP/1.1 for OCSP (RFC 6960 Appendix A, RFC 5019 §5–6): POST of a DER request,
//! GET of its base64 in the path, plus `/healthz` and `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use gpki_service::{plain, read_body, Body};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::response::{error_response, CertState};
use crate::{Answer, State};

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
    let path = req.uri().path();
    let response = match (req.method(), path) {
        (&Method::GET, "/healthz") => health(state),
        (&Method::GET, "/metrics") => {
            let mut r = Response::new(Full::new(Bytes::from(state.metrics.render())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (&Method::GET, p) if p.starts_with("/statuslists/") => {
            crate::status_lists::serve(state, &p["/statuslists/".len()..], req.headers()).await
        }
        (&Method::GET, p) if state.issuer_document(p).is_some() => {
            let which = state.issuer_document(p).expect("matched");
            crate::issuer::serve(state, which, req.headers()).await
        }
        (&Method::GET, p) if p.starts_with("/crl/") || p.starts_with("/ca/") => {
            crate::distribution::serve(state, p, req.headers()).await
        }
        (&Method::GET, _) => match decode_get(path) {
            Some(body) => ocsp(state, &body, true).await,
            None => {
                state.metrics.malformed.inc();
                ocsp_bytes(Bytes::from(error_response(
                    crate::ResponseStatus::MalformedRequest,
                )))
            }
        },
        (&Method::POST, _) => match read_body(
            req,
            state.config.service.max_request_bytes,
            state.config.service.http.body_timeout(),
        )
        .await
        {
            Ok(body) => ocsp(state, &body, false).await,
            Err(refusal) => {
                state.metrics.refused_http.inc();
                refusal
            }
        },
        _ => {
            state.metrics.refused_http.inc();
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "OCSP takes GET or POST");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            r
        }
    };
    state
        .metrics
        .latency
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The CA certificates and CRLs the store holds, where the CAs' caIssuers and CRL
/// distribution point URLs name them (`/ca/NAME.crt`, `/crl/NAME.crl`, the latest
/// full CRL), so one HTTP service answers every URL a certificate carries.
/// The DER request of a GET: the path after an optional `/ocsp` prefix is the
/// URL-encoded base64 of the request (RFC 6960 Appendix A.1).
fn decode_get(path: &str) -> Option<Vec<u8>> {
    let encoded = path.strip_prefix("/ocsp").unwrap_or(path);
    let encoded = encoded.trim_start_matches('/');
    if encoded.is_empty() {
        return None;
    }
    let text = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text.as_bytes()))
        .ok()
}

fn ocsp_bytes(body: Bytes) -> Response<Body> {
    gpki_service::der("application/ocsp-response", body)
}

async fn ocsp(state: &State, body: &[u8], get: bool) -> Response<Body> {
    let m = &state.metrics;
    match state.answer(body).await {
        Answer::Presigned(entry) => {
            let p = entry.presigned.as_ref().expect("pre-signed entry");
            match entry.state {
                CertState::Revoked { .. } => m.revoked_presigned.inc(),
                _ => m.good_presigned.inc(),
            }
            let mut r = ocsp_bytes(p.der.clone());
            if get {
                // RFC 5019 §6.2: let caches keep it until nextUpdate.
                let max_age = (p.next_update - gpki_pki::time::now()).max(0);
                let h = r.headers_mut();
                h.insert(header::LAST_MODIFIED, p.last_modified.clone());
                h.insert(header::EXPIRES, p.expires.clone());
                h.insert(header::ETAG, p.etag.clone());
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_str(&format!(
                        "max-age={max_age}, public, no-transform, must-revalidate"
                    ))
                    .expect("ASCII"),
                );
            }
            r
        }
        Answer::Live(der, first) => {
            match first {
                CertState::Good => m.good_live.inc(),
                CertState::Revoked { .. } => m.revoked_live.inc(),
                CertState::Unknown => m.unknown.inc(),
            }
            let mut r = ocsp_bytes(Bytes::from(der));
            // Signed for this request (it may carry a nonce): not for shared caches.
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Answer::Failed(status) => {
            use crate::ResponseStatus as S;
            match status {
                S::MalformedRequest => m.malformed.inc(),
                S::Unauthorized => m.unauthorized.inc(),
                S::TryLater => m.try_later.inc(),
                S::InternalError => m.internal.inc(),
            }
            let mut r = ocsp_bytes(Bytes::from(error_response(status)));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
    }
}

/// The serial (lower-case hex) of a certificate, as the store writes it.
fn responder_serial(cert_der: &[u8]) -> Option<String> {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(cert_der).ok()?;
    Some(hex::encode(c.tbs_certificate.serial_number.as_bytes()))
}

fn health(state: &State) -> Response<Body> {
    let now = gpki_pki::time::now();
    let last = state.last_sync();
    let age = if last > 0 { now - last } else { -1 };
    let signer_refused = state.status_lists.as_ref().and_then(|l| l.refused());
    let status = if !state.ready() || (last > 0 && age >= state.validity()) {
        "stale"
    } else if state.store_up() && signer_refused.is_none() {
        "ok"
    } else {
        "degraded"
    };
    let cas: Vec<_> = state
        .authorities
        .iter()
        .map(|a| {
            let r = a.responder();
            json!({
                "name": a.name,
                "certificates": a.entries.len(),
                "responder_serial": responder_serial(&r.cert_der),
                "responder_not_after": gpki_pki::time::rfc3339(r.not_after),
            })
        })
        .collect();
    let body = json!({
        "status": status,
        "store": if state.store_up() { "reachable" } else { "unreachable" },
        "store_error": state.store_error(),
        "last_sync_age_seconds": age,
        "syncs": state.syncs(),
        "cas": cas,
        "status_list_signer": state.status_lists.as_ref().map(|_| signer_refused.as_deref().unwrap_or("in force")),
    });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    if status == "stale" {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// 304 when the request's If-None-Match names `etag`, else 200 with `body`; the
/// caller adds its headers.
pub(crate) fn conditional(etag: &str, body: Bytes, request: &hyper::HeaderMap) -> Response<Body> {
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if not_modified {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Full::new(body))
    }
}
