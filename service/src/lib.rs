//! What the gpki HTTP services (the OCSP responder, the TSA) share: the HTTP/1.1
//! connection loop with keep-alive and graceful shutdown, request-body limits,
//! plain-text error replies, the key passphrase, signals and logging set-up.
#![forbid(unsafe_code)]

pub mod api;
pub mod ca_api;
pub mod credential_api;
pub mod front;
pub mod mtls;
pub mod serve_cli;
pub mod signer_renewal;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;

pub use bytes::Bytes;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

/// The body of every reply: one buffer.
pub type Body = Full<Bytes>;

/// What the connection loop allows a client: how many connections at once, and
/// how long a connection may take to send a request head or sit idle between
/// requests (slowloris and idle keep-alive connections are closed, not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// A request head (request line and headers) must arrive within this, counted
    /// from when the connection starts waiting for it: a new connection, or a
    /// keep-alive connection after its last reply (so it is the idle timeout too).
    pub header_timeout_ms: u64,
    /// A request body must arrive within this once its head is in.
    pub body_timeout_ms: u64,
    /// The service answers within this, or gives up with HTTP 503 (a store that
    /// hangs must not pin connections: the watchdog leaves a connection alone
    /// while its request is being handled).
    pub handler_timeout_ms: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 4096,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            handler_timeout_ms: 120_000,
        }
    }
}

impl HttpLimits {
    pub fn body_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_timeout_ms)
    }

    /// Checks the values make sense.
    pub fn check(&self) -> Result<()> {
        if self.max_connections == 0
            || self.header_timeout_ms == 0
            || self.body_timeout_ms == 0
            || self.handler_timeout_ms == 0
        {
            return Err(Error::malformed(
                "[http] max_connections, header_timeout_ms, body_timeout_ms and handler_timeout_ms must be above 0",
            ));
        }
        Ok(())
    }
}

/// Accepts connections until `shutdown` turns true and serves each with
/// `handler` (HTTP/1.1, keep-alive, TCP_NODELAY) within `limits`; open
/// connections finish their request and close on shutdown.
pub async fn serve_http<F, Fut>(
    listener: tokio::net::TcpListener,
    limits: HttpLimits,
    shutdown: tokio::sync::watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve(listener, limits, shutdown, None, handler).await
}

/// [`serve_http`] over TLS: each connection's handshake must finish within the
/// header timeout, and the client's certificate, when it sent one that the
/// verifier accepted, reaches `handler` as a [`tls::PeerCertificate`] request
/// extension.
pub async fn serve_https<F, Fut>(
    listener: tokio::net::TcpListener,
    limits: HttpLimits,
    shutdown: tokio::sync::watch::Receiver<bool>,
    tls: tls::Acceptor,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve(listener, limits, shutdown, Some(tls), handler).await
}

async fn serve<F, Fut>(
    listener: tokio::net::TcpListener,
    limits: HttpLimits,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    tls: Option<tls::Acceptor>,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let header_timeout = std::time::Duration::from_millis(limits.header_timeout_ms);
    // On shutdown, stop accepting and wait (for at most both timeouts) until every
    // open connection has finished its request in flight and closed.
    let drained = |slots: std::sync::Arc<tokio::sync::Semaphore>| async move {
        let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
        let grace =
            std::time::Duration::from_millis(limits.header_timeout_ms + limits.body_timeout_ms);
        let _ = tokio::time::timeout(grace, slots.acquire_many(all)).await;
    };
    loop {
        // At the cap, stop accepting: new clients wait in the kernel's backlog
        // until a connection closes, instead of exhausting descriptors.
        let slot = tokio::select! {
            _ = shutdown.changed() => return drained(slots).await,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.changed() => { drop(slot); return drained(slots).await }
            a = listener.accept() => a,
        };
        let (stream, peer_addr) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: back off, do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let stop = shutdown.clone();
        // hyper's timers cover reading a request; nothing of hyper's covers a client
        // that stops reading its reply. A connection that makes no progress either
        // way for longer than both timeouts together is dropped.
        let stall_limit =
            std::time::Duration::from_millis(limits.header_timeout_ms + limits.body_timeout_ms);
        let timeouts = Timeouts {
            header: header_timeout,
            handler: std::time::Duration::from_millis(limits.handler_timeout_ms),
            stall: stall_limit,
        };
        let (stream, progress) = Watched::new(stream);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => connection(stream, None, handler, timeouts, &progress, stop).await,
                Some(tls) => {
                    match tokio::time::timeout(header_timeout, tls.acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let peer = tls::PeerCertificate::of(stream.get_ref().1);
                            connection(stream, peer, handler, timeouts, &progress, stop).await
                        }
                        Ok(Err(e)) => (tls.on_refused)(peer_addr, &e.to_string()),
                        Err(_) => (tls.on_refused)(peer_addr, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// A connection's time limits: the request head, the service's answer, and no
/// byte moving either way (outside a request being handled).
#[derive(Clone, Copy)]
struct Timeouts {
    header: std::time::Duration,
    handler: std::time::Duration,
    stall: std::time::Duration,
}

/// Serves one connection until it closes, stalls, or shutdown asks it to finish.
async fn connection<S, F, Fut>(
    stream: S,
    peer: Option<tls::PeerCertificate>,
    handler: F,
    t: Timeouts,
    progress: &std::sync::Arc<Progress>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let watched = progress.clone();
    let service = service_fn(move |mut req: Request<Incoming>| {
        if let Some(p) = &peer {
            req.extensions_mut().insert(p.clone());
        }
        let fut = handler(req);
        let watched = watched.clone();
        async move {
            let _busy = Busy::new(&watched);
            Ok::<_, Infallible>(match tokio::time::timeout(t.handler, fut).await {
                Ok(reply) => reply,
                Err(_) => {
                    tracing::error!("a request took longer than handler_timeout_ms; answered 503");
                    api::error_reply(&Error::new(
                        ErrorKind::Unavailable,
                        "the service did not finish this request in time; ask again",
                    ))
                }
            })
        }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(t.header)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stalled(progress, t.stall) => {
            tracing::debug!("dropping a connection that made no progress");
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stalled(progress, t.stall) => {}
            }
        }
    }
}

/// When a [`Watched`] stream last moved a byte either way.
struct Progress {
    start: std::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
    /// Requests of this connection the service is still working on: the client
    /// waiting for the service is not a stalled client.
    busy: std::sync::atomic::AtomicUsize,
}

/// Marks a connection busy while its request is handled.
struct Busy<'a>(&'a Progress);

impl<'a> Busy<'a> {
    fn new(p: &'a Progress) -> Busy<'a> {
        p.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Busy(p)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Progress {
    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    fn idle(&self) -> std::time::Duration {
        if self.busy.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            return std::time::Duration::ZERO;
        }
        let last = self.last_ms.load(std::sync::atomic::Ordering::Relaxed);
        self.start
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(last))
    }
}

/// Resolves once `progress` has been idle for `limit`.
async fn stalled(progress: &Progress, limit: std::time::Duration) {
    loop {
        let idle = progress.idle();
        if idle >= limit {
            return;
        }
        tokio::time::sleep(limit - idle + std::time::Duration::from_millis(50)).await;
    }
}

/// A TCP stream that records when it last read or wrote a byte.
struct Watched {
    inner: tokio::net::TcpStream,
    progress: std::sync::Arc<Progress>,
}

impl Watched {
    fn new(inner: tokio::net::TcpStream) -> (Watched, std::sync::Arc<Progress>) {
        let progress = std::sync::Arc::new(Progress {
            start: std::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
            busy: std::sync::atomic::AtomicUsize::new(0),
        });
        (
            Watched {
                inner,
                progress: progress.clone(),
            },
            progress,
        )
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.progress.touch();
        }
        r
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            this.progress.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            this.progress.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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

/// Octets of an oversized body read and thrown away so the client, still
/// sending, reads the 413 instead of a connection reset; past this, the
/// connection is closed.
const DRAIN_LIMIT: usize = 4 << 20;

/// The request body, or the reply refusing it: HTTP 413 when it is (or says it
/// is) over `limit` octets, without keeping more than `limit` in memory; 408 when
/// it does not arrive within `timeout`; 400 when it cannot be read.
///
/// Before a 413 the rest of the body (up to 4 MiB) is read and dropped: closing a
/// socket with unread data makes the kernel send a reset, and most clients then
/// report the reset, not the reply (RFC 9110 §15.5.14 lets the server close, but
/// the client should learn why).
pub async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: std::time::Duration,
) -> std::result::Result<Bytes, Response<Body>> {
    let too_large = || {
        let mut r = plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body over {limit} octets"),
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > limit) {
        if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            let _ = tokio::time::timeout(timeout, drain(&mut body, DRAIN_LIMIT)).await;
        }
        return Err(too_large());
    }
    let read = async {
        let mut out = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ReadError::Broken)?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limit {
                    drain(&mut body, DRAIN_LIMIT - limit.min(DRAIN_LIMIT)).await;
                    return Err(ReadError::TooLarge);
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(ReadError::TooLarge)) => Err(too_large()),
        Ok(Err(ReadError::Broken)) => Err(plain(
            StatusCode::BAD_REQUEST,
            "could not read the request body",
        )),
        Err(_) => {
            let mut r = plain(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Err(r)
        }
    }
}

enum ReadError {
    TooLarge,
    Broken,
}

/// Reads and drops up to `max` octets of `body`.
async fn drain(body: &mut Incoming, max: usize) {
    let mut seen = 0usize;
    while seen <= max {
        match body.frame().await {
            Some(Ok(f)) => seen += f.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

/// How a gpki service serves, written with the same keys at the top of every
/// service's file: `listen`, `max_request_bytes` and the `[http]` limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    pub listen: String,
    /// Larger request bodies are refused with HTTP 413.
    pub max_request_bytes: usize,
    /// Connection cap and timeouts.
    pub http: HttpLimits,
}

/// A placeholder until the file is read ([`load_service_toml`]): a free port on
/// the loopback, 64 KiB bodies, the default limits.
impl Default for ServiceConfig {
    fn default() -> ServiceConfig {
        ServiceConfig {
            listen: "127.0.0.1:0".into(),
            max_request_bytes: 64 * 1024,
            http: HttpLimits::default(),
        }
    }
}

impl ServiceConfig {
    /// Listens on `listen` instead, when the command line names one.
    pub fn override_listen(&mut self, listen: Option<String>) {
        if let Some(l) = listen {
            self.listen = l;
        }
    }
}

/// Runs `work` on a multi-thread Tokio runtime, as every service binary does.
pub fn block_on(work: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the runtime: {e}")))?
        .block_on(work)
}

/// A service binary's exit: success, or its error printed as `NAME: error` and
/// status 1.
pub fn exit_with(name: &str, result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A service's defaults for the keys of [`ServiceConfig`].
#[derive(Debug, Clone, Copy)]
pub struct ServiceDefaults {
    pub listen: &'static str,
    pub max_request_bytes: usize,
}

/// The keys of [`ServiceConfig`] as written, each optional.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceKeys {
    listen: Option<String>,
    max_request_bytes: Option<usize>,
    #[serde(default)]
    http: HttpLimits,
}

impl ServiceConfig {
    /// Takes the service keys out of `table`, the service's defaults where one is
    /// left out, and checks them.
    fn take(table: &mut toml::Table, defaults: ServiceDefaults) -> Result<ServiceConfig> {
        let mut keys = toml::Table::new();
        for k in ["listen", "max_request_bytes", "http"] {
            if let Some(v) = table.remove(k) {
                keys.insert(k.to_string(), v);
            }
        }
        let keys: ServiceKeys = toml::Value::Table(keys)
            .try_into()
            .map_err(|e| Error::malformed(e.to_string()))?;
        keys.http.check()?;
        let config = ServiceConfig {
            listen: keys.listen.unwrap_or_else(|| defaults.listen.to_string()),
            max_request_bytes: keys.max_request_bytes.unwrap_or(defaults.max_request_bytes),
            http: keys.http,
        };
        if config.max_request_bytes == 0 {
            return Err(Error::malformed("max_request_bytes must be above 0"));
        }
        Ok(config)
    }
}

/// Reads a service's TOML file: the keys every service shares into a
/// [`ServiceConfig`] (the service's `defaults` where left out), the rest into
/// `T`, whose unknown keys are refused. Errors name the file.
pub fn load_service_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    defaults: ServiceDefaults,
) -> Result<(ServiceConfig, T)> {
    let mut table: toml::Table = load_toml(path)?;
    let service =
        ServiceConfig::take(&mut table, defaults).map_err(|e| e.context(path.display()))?;
    let rest = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| Error::malformed(format!("{}: {e}", path.display())))?;
    Ok((service, rest))
}

/// A TOML config file parsed as `T`; the errors name the file (and toml names
/// the field).
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::not_found(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::malformed(format!("{}: {e}", path.display())))
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
    Signals::install().recv().await
}

/// SIGTERM and SIGINT handlers, installed at once: a signal that arrives while a
/// process is still starting its services is kept for `recv`, instead of killing
/// it mid-start by the default action.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
        }
    }

    /// Waits for the first SIGTERM or SIGINT.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Own {
        store: String,
    }

    const DEFAULTS: ServiceDefaults = ServiceDefaults {
        listen: "127.0.0.1:9999",
        max_request_bytes: 4096,
    };

    fn load(text: &str) -> Result<(ServiceConfig, Own)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.toml");
        std::fs::write(&path, text).unwrap();
        load_service_toml(&path, DEFAULTS)
    }

    /// The shared keys are read once for every service, with that service's
    /// defaults; the rest is the service's own, and an unknown key anywhere is
    /// refused naming the file, as each service's own struct refused it before.
    #[test]
    fn the_keys_every_service_shares_are_read_in_one_place() {
        let (service, own) = load("store = \"sqlite://x\"\n").unwrap();
        assert_eq!(own.store, "sqlite://x");
        assert_eq!(
            service,
            ServiceConfig {
                listen: "127.0.0.1:9999".into(),
                max_request_bytes: 4096,
                http: HttpLimits::default(),
            }
        );
        let (service, _) = load(
            "store = \"s\"\nlisten = \"0.0.0.0:1\"\nmax_request_bytes = 10\n[http]\nmax_connections = 3\n",
        )
        .unwrap();
        assert_eq!(service.listen, "0.0.0.0:1");
        assert_eq!(service.max_request_bytes, 10);
        assert_eq!(service.http.max_connections, 3);
        assert_eq!(
            service.http.body_timeout_ms,
            HttpLimits::default().body_timeout_ms
        );
        for (text, why) in [
            ("store = \"s\"\nlisten_on = \"x\"\n", "listen_on"),
            (
                "store = \"s\"\n[http]\nmax_conections = 3\n",
                "max_conections",
            ),
            (
                "store = \"s\"\n[http]\nbody_timeout_ms = 0\n",
                "must be above 0",
            ),
            (
                "store = \"s\"\nmax_request_bytes = 0\n",
                "max_request_bytes must be above 0",
            ),
            ("listen = \"x\"\n", "store"),
            ("store = \"s\"\nlisten = 5\n", "listen"),
        ] {
            let e = load(text).unwrap_err();
            assert!(
                e.detail.contains(why) && e.detail.contains("svc.toml"),
                "{why}: {e}"
            );
        }
    }
}
