//! The standard API over HTTP, for agency systems not written in Rust: JSON in,
//! JSON out, the reasons of a refusal by name.
//!
//! - `POST /v1/login/challenge` → a challenge and the exact text to sign;
//! - `POST /v1/login` {challenge, certificate, chain?, signature, algorithm?} →
//!   the official's certificate, path and status, or a refusal;
//! - `POST /v1/verify` {signed_data, content?, certificates?} → every signer, its
//!   path and status, and its timestamp, or a refusal;
//! - `POST /v1/certificate` {certificate, chain?, purpose} → whether a
//!   certificate is good now for login, signing, time stamping or encryption;
//! - `GET /healthz`, `GET /metrics`.
//!
//! Binary values are base64 (standard alphabet); certificates are PEM or base64
//! DER. A refusal is HTTP 401 (login), 422 (a document or certificate found bad),
//! 400 (malformed) or 503 (status unknown: try again), with
//! `{"result": "refused", "reason": REASON, "detail": TEXT}`.
//!
//! The service holds no private key and opens no store: it reads only the
//! anchors it is configured with and what responders and CRL issuers publish.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::json_reply;
use gpki_service::{plain, read_body, Body};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use serde::Deserialize;
use serde_json::json;

use crate::login::{Login, LoginRequest};
use crate::status::StatusPolicy;
use crate::trust::{Purpose, Trust};
use crate::verifier::Verifier;
use crate::{Reason, Refusal};

/// `api.toml`. Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `listen`, `max_request_bytes` and `[http]`, read by [`Config::load`].
    #[serde(skip)]
    pub service: gpki_service::ServiceConfig,
    /// The relying system logins are for (its URL): part of what officials sign.
    pub audience: String,
    /// Trust anchors, PEM (the GPKI root, or one CA).
    pub anchors: PathBuf,
    /// Intermediate CA certificates, PEM, for clients that send no chain.
    #[serde(default)]
    pub intermediates: Option<PathBuf>,
    /// How long a challenge may be answered, seconds.
    #[serde(default = "default_ttl")]
    pub challenge_ttl_secs: i64,
    #[serde(default)]
    pub status: StatusConfig,
}

/// `[status]`: how certificate status is established.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    pub ocsp: bool,
    pub crl: bool,
    /// Ask this responder for every certificate instead of the one it names.
    pub ocsp_url: Option<String>,
    pub timeout_ms: u64,
    pub skew_secs: i64,
    pub max_crl_bytes: usize,
    /// An OCSP answer or a CRL is kept at most this long (seconds, 0 to 86400;
    /// 0 asks every time): the longest a revocation takes to reach this API.
    pub max_cache_secs: i64,
}

impl Default for StatusConfig {
    fn default() -> StatusConfig {
        let p = StatusPolicy::default();
        StatusConfig {
            ocsp: p.ocsp,
            crl: p.crl,
            ocsp_url: p.ocsp_url,
            timeout_ms: p.timeout.as_millis() as u64,
            skew_secs: p.skew,
            max_crl_bytes: p.max_crl_bytes,
            max_cache_secs: p.max_cache_age,
        }
    }
}

fn default_ttl() -> i64 {
    120
}

/// This service's defaults for the keys every service shares.
const SERVICE_DEFAULTS: gpki_service::ServiceDefaults = gpki_service::ServiceDefaults {
    listen: "127.0.0.1:8090",
    max_request_bytes: 32 << 20,
};

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let (service, mut c): (_, Config) =
            gpki_service::load_service_toml(path, SERVICE_DEFAULTS)?;
        c.service = service;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut c.anchors);
        c.intermediates.as_mut().map(resolve);
        if !c.status.ocsp && !c.status.crl {
            return Err(Error::malformed(format!(
                "{}: [status] needs ocsp or crl (a status is never assumed)",
                path.display()
            )));
        }
        Ok(c)
    }

    fn policy(&self) -> StatusPolicy {
        StatusPolicy {
            ocsp: self.status.ocsp,
            crl: self.status.crl,
            ocsp_url: self.status.ocsp_url.clone(),
            timeout: Duration::from_millis(self.status.timeout_ms),
            skew: self.status.skew_secs,
            max_crl_bytes: self.status.max_crl_bytes,
            max_cache_age: self.status.max_cache_secs,
            ..StatusPolicy::default()
        }
    }
}

/// The service's state.
pub struct State {
    pub login: Login,
    config: Config,
    registry: Registry,
    answers: IntCounterVec,
    latency: Histogram,
}

impl State {
    pub fn new(config: Config) -> Result<State> {
        let read = |p: &Path, what: &str| {
            std::fs::read(p).map_err(|e| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("cannot read the {what} {}: {e}", p.display()),
                )
            })
        };
        let anchors = read(&config.anchors, "trust anchors")?;
        let intermediates = match &config.intermediates {
            Some(p) => read(p, "intermediates")?,
            None => Vec::new(),
        };
        let trust = Trust::from_pem(&anchors, &intermediates)?;
        let verifier = Arc::new(Verifier::new(trust, config.policy())?);
        let login = Login::new(verifier, &config.audience, config.challenge_ttl_secs)?;
        let registry = Registry::new();
        let answers = IntCounterVec::new(
            Opts::new("gpki_api_answers_total", "Answers by operation and result"),
            &["operation", "result"],
        )
        .map_err(|e| Error::internal(format!("metrics: {e}")))?;
        let latency = Histogram::with_opts(HistogramOpts::new(
            "gpki_api_request_seconds",
            "Time to answer a request",
        ))
        .map_err(|e| Error::internal(format!("metrics: {e}")))?;
        registry
            .register(Box::new(answers.clone()))
            .and_then(|_| registry.register(Box::new(latency.clone())))
            .map_err(|e| Error::internal(format!("metrics: {e}")))?;
        Ok(State {
            login,
            config,
            registry,
            answers,
            latency,
        })
    }

    fn verifier(&self) -> &Verifier {
        self.login.verifier()
    }
}

/// A running API service.
pub struct Running {
    pub state: Arc<State>,
    addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Loads the anchors, binds and serves in the background.
pub async fn start(config: Config) -> Result<Running> {
    let listen = config.service.listen.clone();
    let limits = config.service.http;
    let state = Arc::new(State::new(config)?);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("{e}")))?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let s = state.clone();
    let task = tokio::spawn(async move {
        gpki_service::serve_http(listener, limits, rx, move |req| {
            let state = s.clone();
            async move { handle(&state, req).await }
        })
        .await
    });
    tracing::info!(%addr, audience = %state.login.audience(), "standard API listening");
    Ok(Running {
        state,
        addr,
        shutdown: tx,
        task,
    })
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> Result<()> {
    let mut signals = gpki_service::Signals::install();
    let running = start(config).await?;
    signals.recv().await;
    running.stop().await;
    Ok(())
}

fn refused(status: StatusCode, r: &Refusal) -> Response<Body> {
    json_reply(
        status,
        &json!({ "result": "refused", "reason": r.reason, "detail": r.detail }),
    )
}

/// The HTTP status of a refusal of `operation`.
fn status_of(operation: &str, r: &Refusal) -> StatusCode {
    match r.reason {
        Reason::Malformed | Reason::Unsupported => StatusCode::BAD_REQUEST,
        Reason::StatusUnknown => StatusCode::SERVICE_UNAVAILABLE,
        _ if operation == "login" => StatusCode::UNAUTHORIZED,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let operation = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => {
            return json_reply(
                StatusCode::OK,
                &json!({ "status": "ok", "audience": state.login.audience() }),
            )
        }
        (&Method::GET, "/metrics") => {
            use prometheus::Encoder;
            let mut out = Vec::new();
            let _ = prometheus::TextEncoder::new().encode(&state.registry.gather(), &mut out);
            let c = &state.verifier().status.counters;
            let load =
                |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            out.extend_from_slice(
                format!(
                    "# TYPE gpki_api_status_total counter\ngpki_api_status_total{{source=\"cache\"}} {}\ngpki_api_status_total{{source=\"ocsp\"}} {}\ngpki_api_status_total{{source=\"crl\"}} {}\ngpki_api_status_total{{source=\"unknown\"}} {}\n",
                    load(&c.cached), load(&c.ocsp_fetched), load(&c.crl_fetched), load(&c.unknown)
                )
                .as_bytes(),
            );
            return Response::new(Full::new(Bytes::from(out)));
        }
        (&Method::POST, "/v1/login/challenge") => "challenge",
        (&Method::POST, "/v1/login") => "login",
        (&Method::POST, "/v1/verify") => "verify",
        (&Method::POST, "/v1/certificate") => "certificate",
        (_, "/v1/login/challenge" | "/v1/login" | "/v1/verify" | "/v1/certificate") => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "this path takes POST");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        _ => return plain(StatusCode::NOT_FOUND, "no such path"),
    };
    let body = match read_body(
        req,
        state.config.service.max_request_bytes,
        state.config.service.http.body_timeout(),
    )
    .await
    {
        Ok(b) => b,
        Err(r) => {
            state
                .answers
                .with_label_values(&[operation, "refused_http"])
                .inc();
            return r;
        }
    };
    let result = match operation {
        "challenge" => state
            .login
            .challenge()
            .map(|c| json!(c))
            .map_err(|e| Refusal::new(Reason::Malformed, e.detail)),
        "login" => login(state, &body).await,
        "verify" => verify(state, &body).await,
        _ => certificate(state, &body).await,
    };
    let response = match result {
        Ok(v) => {
            state.answers.with_label_values(&[operation, "ok"]).inc();
            json_reply(StatusCode::OK, &v)
        }
        Err(r) => {
            state
                .answers
                .with_label_values(&[operation, r.reason.name()])
                .inc();
            // The detail names people (subjects carry personal ID numbers): debug only.
            tracing::info!(operation, reason = r.reason.name(), "refused");
            tracing::debug!(operation, detail = %r.detail, "refused");
            refused(status_of(operation, &r), &r)
        }
    };
    state.latency.observe(started.elapsed().as_secs_f64());
    response
}

fn malformed(detail: impl Into<String>) -> Refusal {
    Refusal::new(Reason::Malformed, detail)
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> std::result::Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| malformed(format!("request body: {e}")))
}

fn b64(field: &str, v: &str) -> std::result::Result<Vec<u8>, Refusal> {
    STANDARD
        .decode(v.trim())
        .map_err(|e| malformed(format!("{field} is not base64: {e}")))
}

/// A certificate given as PEM or base64 DER.
fn certificate_of(field: &str, v: &str) -> std::result::Result<Vec<u8>, Refusal> {
    if v.trim_start().starts_with("-----BEGIN") {
        gpki_pki::pem::decode(v.as_bytes(), "CERTIFICATE")
            .map_err(|e| malformed(format!("{field}: {}", e.detail)))
    } else {
        b64(field, v)
    }
}

fn certificates_of(field: &str, v: &[String]) -> std::result::Result<Vec<Vec<u8>>, Refusal> {
    let mut out = Vec::new();
    for c in v {
        if c.trim_start().starts_with("-----BEGIN") {
            out.extend(
                gpki_pki::pem::decode_all(c.as_bytes(), "CERTIFICATE")
                    .map_err(|e| malformed(format!("{field}: {}", e.detail)))?,
            );
        } else {
            out.push(b64(field, c)?);
        }
        if out.len() > crate::signed::MAX_CERTIFICATES {
            return Err(malformed(format!(
                "{field}: more than {} certificates",
                crate::signed::MAX_CERTIFICATES
            )));
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    challenge: String,
    certificate: String,
    #[serde(default)]
    chain: Vec<String>,
    signature: String,
    #[serde(default)]
    algorithm: Option<String>,
}

async fn login(state: &State, body: &[u8]) -> std::result::Result<serde_json::Value, Refusal> {
    let b: LoginBody = parse(body)?;
    let req = LoginRequest {
        challenge: b.challenge,
        certificate: certificate_of("certificate", &b.certificate)?,
        chain: certificates_of("chain", &b.chain)?,
        signature: b64("signature", &b.signature)?,
        algorithm: b
            .algorithm
            .map(|a| {
                a.parse()
                    .map_err(|e: Error| Refusal::new(Reason::Unsupported, e.detail))
            })
            .transpose()?,
    };
    Ok(json!(state.login.login(&req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    /// base64 DER, or PEM (`-----BEGIN CMS-----` / `PKCS7`).
    signed_data: String,
    /// The document of a detached signature, base64.
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    certificates: Vec<String>,
}

async fn verify(state: &State, body: &[u8]) -> std::result::Result<serde_json::Value, Refusal> {
    let b: VerifyBody = parse(body)?;
    let signed = if b.signed_data.trim_start().starts_with("-----BEGIN") {
        gpki_pki::pem::decode_pem_or_der(b.signed_data.as_bytes(), &["CMS", "PKCS7"])
            .map_err(|e| malformed(format!("signed_data: {}", e.detail)))?
    } else {
        b64("signed_data", &b.signed_data)?
    };
    let content = b
        .content
        .as_deref()
        .map(|c| b64("content", c))
        .transpose()?;
    let extra = certificates_of("certificates", &b.certificates)?;
    let report = state
        .verifier()
        .signed(&signed, content.as_deref(), &extra)
        .await?;
    let mut v = json!(report);
    v["result"] = json!("valid");
    Ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateBody {
    certificate: String,
    #[serde(default)]
    chain: Vec<String>,
    purpose: String,
}

async fn certificate(
    state: &State,
    body: &[u8],
) -> std::result::Result<serde_json::Value, Refusal> {
    let b: CertificateBody = parse(body)?;
    let purpose = match b.purpose.as_str() {
        "login" => Purpose::Login,
        "signing" => Purpose::Signing,
        "timestamping" => Purpose::TimeStamping,
        "encryption" => Purpose::Encryption,
        other => {
            return Err(malformed(format!(
                "purpose `{other}`: one of login, signing, timestamping, encryption"
            )))
        }
    };
    let (_, report) = state
        .verifier()
        .certificate(
            &certificate_of("certificate", &b.certificate)?,
            &certificates_of("chain", &b.chain)?,
            purpose,
        )
        .await?;
    let mut v = json!(report);
    v["result"] = json!("good");
    Ok(v)
}
