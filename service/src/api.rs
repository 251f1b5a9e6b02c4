//! JSON over HTTP for the internal APIs: replies with typed error kinds on the
//! server side, and a client that maps them back to [`gpki_pki::Error`].
//!
//! Every error body is `{"error": {"kind": KIND, "detail": TEXT}}`, KIND one of
//! [`ErrorKind`]'s snake_case names, so a caller matches the kind, not the text;
//! an error with a typed [`Reason`] carries it as `"reason": {"reason": NAME, …}`,
//! which the client gives back as the same `Reason`.

use std::time::Duration;

use bytes::Bytes;
use gpki_pki::{Error, ErrorKind, Reason, Result};
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::Body;

/// The HTTP status of an error kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Malformed | ErrorKind::BadSignature => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PolicyViolation | ErrorKind::LintFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unauthorized => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::WrongPassphrase | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON reply.
pub fn json_reply(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("JSON of a reply");
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The JSON reply for `e`. Internal details stay in the log: the client gets
/// the kind only.
pub fn error_reply(e: &Error) -> Response<Body> {
    let (detail, reason) = match e.kind {
        ErrorKind::Internal | ErrorKind::WrongPassphrase => {
            tracing::error!(error = %e, "internal error");
            ("internal error; see the service log".to_string(), None)
        }
        _ => (e.detail.clone(), e.reason()),
    };
    let mut error = json!({ "kind": e.kind, "detail": detail });
    if let Some(r) = reason {
        error["reason"] = json!(r);
    }
    json_reply(status_of(e.kind), &json!({ "error": error }))
}

/// A request body parsed as `T`; a body that is not `T` is refused by name.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::malformed(format!("request body: {e}")))
}

/// A client of one internal API over mutual TLS.
#[derive(Clone)]
pub struct ApiClient {
    base: reqwest::Url,
    client: reqwest::Client,
}

impl ApiClient {
    /// A client of the API at `url` (`https://HOST:PORT`). With `server_name`,
    /// the server's certificate is checked for that name while the connection
    /// goes to `url`'s address (a service on 127.0.0.1 with a certificate for
    /// `ca.gpki.go.kr`).
    pub fn new(
        url: &str,
        server_name: Option<&str>,
        tls: rustls::ClientConfig,
        timeout: Duration,
    ) -> Result<ApiClient> {
        let mut base = reqwest::Url::parse(url)
            .map_err(|e| Error::malformed(format!("API URL `{url}`: {e}")))?;
        if base.scheme() != "https" {
            return Err(Error::malformed(format!(
                "API URL `{url}` must be https (the API requires mutual TLS)"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(5));
        if let Some(name) = server_name {
            let addr = base
                .socket_addrs(|| Some(443))
                .map_err(|e| Error::malformed(format!("API URL `{url}`: {e}")))?
                .into_iter()
                .next()
                .ok_or_else(|| Error::malformed(format!("API URL `{url}` has no address")))?;
            builder = builder.resolve(name, addr);
            base.set_host(Some(name))
                .map_err(|e| Error::malformed(format!("server name `{name}`: {e}")))?;
        }
        let client = builder
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        Ok(ApiClient { base, client })
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.client.get(self.url(path)?)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(self.client.post(self.url(path)?).json(body))
            .await
    }

    fn url(&self, path: &str) -> Result<reqwest::Url> {
        self.base
            .join(path)
            .map_err(|e| Error::malformed(format!("API path `{path}`: {e}")))
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let reply = req.send().await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{}: {}", self.base, describe(&e)),
            )
        })?;
        let status = reply.status();
        let bytes = reply.bytes().await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{}: reading the reply: {e}", self.base),
            )
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Error::internal(format!("{}: reply is not as expected: {e}", self.base))
            });
        }
        Err(error_of(&self.base, status, &bytes))
    }
}

/// The error an API reply of a failure means: its kind, detail and reason as the
/// server sent them, or `Unavailable` naming what answered when it is not ours.
fn error_of(base: &reqwest::Url, status: reqwest::StatusCode, bytes: &[u8]) -> Error {
    #[derive(serde::Deserialize)]
    struct Wire {
        error: WireError,
    }
    #[derive(serde::Deserialize)]
    struct WireError {
        kind: ErrorKind,
        detail: String,
        /// A reason this client does not know (a newer server) is left out.
        #[serde(default, deserialize_with = "known_reason")]
        reason: Option<Reason>,
    }
    match serde_json::from_slice::<Wire>(bytes) {
        Ok(w) => {
            let e = Error::new(w.error.kind, w.error.detail);
            match w.error.reason {
                Some(r) => e.because(r),
                None => e,
            }
        }
        Err(_) => Error::new(
            ErrorKind::Unavailable,
            format!(
                "{base} answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).trim()
            ),
        ),
    }
}

/// A reason as sent, or none when it is not one this client knows.
fn known_reason<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Reason>, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    Ok(serde_json::from_value(value).ok())
}

/// A transport error with its causes (reqwest's own text says only "error
/// sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text += &format!(": {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn round_trip(e: &Error) -> Error {
        let reply = error_reply(e);
        let status = reqwest::StatusCode::from_u16(reply.status().as_u16()).unwrap();
        let bytes = reply.into_body().collect().await.unwrap().to_bytes();
        error_of(&"https://ca.test/".parse().unwrap(), status, &bytes)
    }

    #[tokio::test]
    async fn an_errors_reason_crosses_the_api_as_sent() {
        let e =
            Error::conflict("certificate 0a is already revoked").because(Reason::AlreadyRevoked {
                serial: "0a".into(),
            });
        assert_eq!(round_trip(&e).await, e);
        let plain = Error::not_found("no such CA");
        assert_eq!(round_trip(&plain).await, plain);
        // An internal error keeps its detail and its reason in the log.
        let internal = Error::internal("disk /var/x full").because(Reason::AlreadyRecorded {
            serial: "0b".into(),
        });
        let seen = round_trip(&internal).await;
        assert_eq!(seen.kind, ErrorKind::Internal);
        assert_eq!(seen.reason(), None);
        assert!(!seen.detail.contains("/var/x"), "{seen}");
        // A reason this client does not know is dropped, not an error.
        let unknown =
            br#"{"error":{"kind":"conflict","detail":"d","reason":{"reason":"new_thing"}}}"#;
        let seen = error_of(
            &"https://ca.test/".parse().unwrap(),
            reqwest::StatusCode::CONFLICT,
            unknown,
        );
        assert_eq!(seen, Error::conflict("d"));
    }
}
