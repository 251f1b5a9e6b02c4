//! What the gpki HTTP services (the OCSP responder, the TSA) share: the HTTP/1.1
//! connection loop with keep-alive and graceful shutdown, request-body limits,
//! plain-text error replies, the key passphrase, signals and logging set-up.
#![forbid(unsafe_code)]

pub mod failpoint;

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;

use bytes::Bytes;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// The body of every reply: one buffer.
pub type Body = Full<Bytes>;

/// Accepts connections until `shutdown` turns true and serves each with
/// `handler` (HTTP/1.1, keep-alive, TCP_NODELAY); open connections finish their
/// request and close on shutdown.
pub async fn serve_http<F, Fut>(
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors and the like: back off, do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, Infallible>(fut.await) }
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

/// A plain-text reply with `status`.
pub fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A binary reply of `content_type`.
pub fn der(content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The request body, or the reply refusing it: HTTP 413 when it is (or says it
/// is) over `limit` octets, before reading more than `limit`; 400 when it cannot
/// be read.
pub async fn read_body(
    req: Request<Incoming>,
    limit: usize,
) -> std::result::Result<Bytes, Response<Body>> {
    let too_large = || {
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body over {limit} octets"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(_) => Err(plain(
            StatusCode::BAD_REQUEST,
            "could not read the request body",
        )),
    }
}

/// The passphrase of a service's key: from `file`, else `GPKI_KEY_PASS`; `what`
/// names the key in the error.
pub fn passphrase(file: Option<&Path>, what: &str) -> Result<Passphrase> {
    match file {
        Some(p) => Passphrase::from_file(p),
        None => std::env::var("GPKI_KEY_PASS")
            .map(|v| Passphrase::new(v.into_bytes()))
            .map_err(|_| {
                Error::malformed(format!(
                    "no passphrase for {what}: set key_pass_file (or GPKI_KEY_PASS)"
                ))
            }),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Structured logs to stderr, filtered by `GPKI_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GPKI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}
