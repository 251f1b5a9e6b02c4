//! gpki-ocsp: an RFC 6960 OCSP responder with the RFC 5019 profile, read-only on
//! the gpki store.
//!
//! It keeps, for every certificate of each CA it serves, the current status and a
//! response signed ahead of time for the SHA-1 CertID that RFC 5019 clients send.
//! Those are answered from memory; a request with a nonce, a SHA-256 CertID or
//! several CertIDs is signed when it arrives. A background worker follows the store
//! (PostgreSQL LISTEN/NOTIFY, polling on SQLite), signs again what changed, and
//! refreshes responses well before their nextUpdate. When the store is unreachable
//! the responder keeps answering from memory until the responses it could vouch
//! for run out, and says so on `/healthz`.
#![forbid(unsafe_code)]

pub mod authority;
pub mod config;
mod distribution;
mod http;
pub mod issuer;
pub mod metrics;
pub mod renewal;
pub mod request;
pub mod response;
pub mod status_lists;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use der::Decode;
use gpki_pki::cert::find_extension;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result, Signer, SoftwareKey};
use gpki_store::{StatusMark, StatusReader};

pub use authority::{Authority, Entry, Presigned};
pub use config::{CaConfig, Config};
pub use response::{CertState, ResponseStatus};

use crate::metrics::Metrics;

/// The profile of responder certificates.
pub const SIGNER_PROFILE: &str = "ocsp-signer";

/// The responder's shared state.
pub struct State {
    pub config: Config,
    pub store: StatusReader,
    pub authorities: Vec<Arc<Authority>>,
    pub metrics: Metrics,
    /// Where the worker has read each CA up to (same order as `authorities`).
    marks: Vec<Mutex<StatusMark>>,
    /// Unix time of the last complete read of the store.
    last_sync: AtomicI64,
    store_up: AtomicBool,
    store_error: Mutex<Option<String>>,
    ready: AtomicBool,
    /// Completed reads of the store since start.
    syncs: AtomicU64,
    /// CRLs and CA certificates served at the CAs' CDP and caIssuers URLs.
    documents: distribution::Documents,
    /// What each CA's responder certificate and key files looked like when last
    /// loaded (same order as `authorities`): a change means a new pair to pick up.
    files: Vec<Mutex<worker::FileStamp>>,
    key_pass: Passphrase,
    /// The credential status lists served, when `[status_lists]` is configured.
    status_lists: Option<status_lists::Lists>,
    /// The credential issuer's metadata and DID document, when configured.
    issuer: Option<issuer::Issuer>,
}

/// How a request was answered.
pub enum Answer {
    /// A response signed ahead of time.
    Presigned(Arc<Entry>),
    /// A response signed for this request; the label of the first status.
    Live(Vec<u8>, CertState),
    /// An unsuccessful response.
    Failed(ResponseStatus),
}

impl State {
    /// Seconds a response is valid for.
    pub fn validity(&self) -> i64 {
        i64::from(self.config.validity_hours) * 3600
    }

    pub fn last_sync(&self) -> i64 {
        self.last_sync.load(Ordering::Relaxed)
    }

    pub fn store_up(&self) -> bool {
        self.store_up.load(Ordering::Relaxed)
    }

    pub fn store_error(&self) -> Option<String> {
        self.store_error.lock().expect("lock").clone()
    }

    /// Completed reads of the store since start.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// The issuer document `path` names, when `[credential_issuer]` is configured.
    pub fn issuer_document(&self, path: &str) -> Option<issuer::Document> {
        self.issuer.as_ref().and_then(|i| i.route(path))
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Answers one DER OCSPRequest.
    pub async fn answer(&self, body: &[u8]) -> Answer {
        let parsed = match request::parse(body, self.config.max_certs_per_request) {
            Ok(p) => p,
            Err(m) => {
                tracing::debug!(reason = %m.0, "malformed OCSP request");
                return Answer::Failed(ResponseStatus::MalformedRequest);
            }
        };
        let Some(auth) = self.authorities.iter().find(|a| a.issued(&parsed.certs[0])) else {
            return Answer::Failed(ResponseStatus::Unauthorized);
        };
        // One response is signed by one CA's delegated responder.
        if !parsed.certs.iter().all(|c| auth.issued(c)) {
            return Answer::Failed(ResponseStatus::Unauthorized);
        }
        let now = gpki_pki::time::now();
        if self.config.presign && parsed.nonce.is_none() && parsed.certs.len() == 1 {
            let id = &parsed.certs[0];
            if let Some(entry) = auth.entries.get(id.serial) {
                if let Some(p) = &entry.presigned {
                    if p.next_update > now && auth.is_presigned_form(id.der) {
                        return Answer::Presigned(entry.clone());
                    }
                }
            }
        }
        // Signed now. thisUpdate is when the status was last known to be right:
        // the last read of the store, or now for a row read for this request.
        let responder = auth.responder();
        let synced = self.last_sync();
        let mut singles = Vec::with_capacity(parsed.certs.len() * 120);
        let mut first = None;
        for id in &parsed.certs {
            let (state, this_update) = match self.lookup(auth, id.serial).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(ca = %auth.name, error = %e, "status lookup failed");
                    return Answer::Failed(ResponseStatus::TryLater);
                }
            };
            let this_update = this_update.unwrap_or(synced);
            let next_update = (this_update + self.validity()).min(responder.not_after);
            if next_update <= now {
                // The store has been out of reach for longer than a response lasts.
                return Answer::Failed(ResponseStatus::TryLater);
            }
            first.get_or_insert(state);
            if let Err(e) = response::push_single_response(
                &mut singles,
                id.der,
                state,
                this_update,
                next_update,
            ) {
                tracing::error!(error = %e, "encoding a response");
                return Answer::Failed(ResponseStatus::InternalError);
            }
        }
        match responder.sign(now, &singles, parsed.nonce) {
            Ok(der) => Answer::Live(der, first.unwrap_or(CertState::Unknown)),
            Err(e) => {
                tracing::error!(error = %e, "signing a response");
                Answer::Failed(ResponseStatus::InternalError)
            }
        }
    }

    /// The state of one serial: from memory (`None` time: as of the last sync), or
    /// read from the store now and remembered, unless the worker stored a newer
    /// state meanwhile, which is then the answer.
    async fn lookup(&self, auth: &Authority, serial: &[u8]) -> Result<(CertState, Option<i64>)> {
        if let Some(e) = auth.entries.get(serial) {
            return Ok((e.state, None));
        }
        let read_at = gpki_pki::time::now();
        match self.store.status_of(auth.id, &hex::encode(serial)).await? {
            Some(row) => {
                gpki_store::failpoint::pause("ocsp-after-status-read").await;
                let read = Arc::new(Entry {
                    state: authority::state_of(&row),
                    version: authority::version_of(&row),
                    presigned: None,
                });
                let held = auth.put_if_newer(serial.to_vec(), read.clone());
                if !Arc::ptr_eq(&held, &read) {
                    // The worker applied a newer state while this read was in flight.
                    return Ok((held.state, None));
                }
                auth.needs_signing.store(true, Ordering::Relaxed);
                Ok((read.state, Some(read_at)))
            }
            None => Ok((CertState::Unknown, Some(read_at))),
        }
    }

    fn set_store(&self, result: &Result<()>) {
        match result {
            Ok(()) => {
                if !self.store_up.swap(true, Ordering::Relaxed) {
                    tracing::info!("store reachable");
                }
                *self.store_error.lock().expect("lock") = None;
                self.metrics.store_up.set(1);
            }
            Err(e) => {
                if self.store_up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "store unreachable; answering from memory");
                }
                *self.store_error.lock().expect("lock") = Some(e.to_string());
                self.metrics.store_up.set(0);
            }
        }
    }
}

/// Reads the responder certificate and key of `ca` and checks they belong together
/// and to the CA: the CA signed it, it has id-kp-OCSPSigning, and it is in force.
pub fn load_responder(
    ca: &CaConfig,
    ca_cert_der: &[u8],
    pass: &Passphrase,
) -> Result<response::ResponderKey> {
    gpki_service::signer_renewal::finish_interrupted(&ca.key, &ca.cert, pass)?;
    let raw = std::fs::read(&ca.cert).map_err(|e| {
        Error::not_found(format!(
            "cannot read responder certificate {}: {e}",
            ca.cert.display()
        ))
    })?;
    let cert_der = gpki_pki::pem::decode_pem_or_der(&raw, &["CERTIFICATE"])
        .map_err(|e| e.context(ca.cert.display()))?;
    let key = SoftwareKey::read_encrypted(&ca.key, pass)?;
    let not_after = check_responder_cert(&ca.name, &cert_der, ca_cert_der, &key)
        .map_err(|e| e.context(ca.cert.display()))?;
    response::ResponderKey::new(Box::new(key), cert_der, not_after)
}

pub(crate) fn check_responder_cert(
    ca_name: &str,
    cert_der: &[u8],
    ca_cert_der: &[u8],
    key: &SoftwareKey,
) -> Result<i64> {
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| Error::malformed(format!("responder certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    use der::Encode;
    if tbs.subject_public_key_info.to_der()? != key.public_key_der() {
        return Err(Error::malformed(
            "the responder key does not match its certificate",
        ));
    }
    let ossl = |e: openssl::error::ErrorStack| Error::malformed(format!("certificate: {e}"));
    let x = openssl::x509::X509::from_der(cert_der).map_err(ossl)?;
    let ca_x = openssl::x509::X509::from_der(ca_cert_der).map_err(ossl)?;
    let ca_key = ca_x.public_key().map_err(ossl)?;
    if !x.verify(&ca_key).unwrap_or(false) {
        return Err(Error::new(
            ErrorKind::BadSignature,
            format!("the responder certificate is not signed by CA `{ca_name}`"),
        ));
    }
    let eku = find_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>(
        tbs,
        const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
    )?;
    if !eku.is_some_and(|(_, e)| e.0.contains(&const_oid::db::rfc5280::ID_KP_OCSP_SIGNING)) {
        return Err(Error::policy(
            "the responder certificate lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)",
        ));
    }
    let not_after = gpki_pki::time::unix_seconds(&tbs.validity.not_after);
    if not_after <= gpki_pki::time::now() {
        return Err(Error::policy("the responder certificate has expired"));
    }
    Ok(not_after)
}

/// A running responder.
pub struct Running {
    pub state: Arc<State>,
    addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends the background worker.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Opens the store, loads the responder keys and reads every certificate of the
/// served CAs, signing their responses when pre-signing.
pub async fn prepare(config: Config) -> Result<Arc<State>> {
    config.check()?;
    let store = StatusReader::connect(
        &config.store,
        Duration::from_millis(config.store_timeout_ms),
    )
    .await?;
    let key_pass = gpki_service::passphrase(config.key_pass_file.as_deref(), "the responder keys")?;
    let mut authorities = Vec::new();
    for ca in &config.cas {
        let record = store.authority_by_name(&ca.name).await?;
        let ca_cert = record
            .cert_der
            .clone()
            .ok_or_else(|| Error::conflict(format!("CA `{}` has no certificate yet", ca.name)))?;
        let responder = load_responder(ca, &ca_cert, &key_pass)?;
        authorities.push(Arc::new(Authority::new(
            ca.name.clone(),
            record.id,
            &ca_cert,
            responder,
        )?));
    }
    let status_lists = match &config.status_lists {
        Some(c) => {
            let lists = status_lists::Lists::load(c, &key_pass)?;
            // What is signed now must verify now: the signer in force in the store.
            store
                .signer_in_force(lists.signer_certificate(), "status-list signer")
                .await?;
            Some(lists)
        }
        None => None,
    };
    let issuer = match &config.credential_issuer {
        Some(c) => {
            // An unknown CA is found now, not at the first request.
            store.authority_by_name(&c.ca).await?;
            Some(issuer::Issuer::new(c)?)
        }
        None => None,
    };
    let marks = authorities
        .iter()
        .map(|_| Mutex::new(StatusMark::default()))
        .collect();
    let files = config
        .cas
        .iter()
        .map(|ca| Mutex::new(worker::FileStamp::of(ca)))
        .collect();
    let state = Arc::new(State {
        config,
        store,
        authorities,
        metrics: Metrics::new(),
        marks,
        last_sync: AtomicI64::new(0),
        store_up: AtomicBool::new(false),
        store_error: Mutex::new(None),
        ready: AtomicBool::new(false),
        syncs: AtomicU64::new(0),
        documents: distribution::Documents::default(),
        files,
        key_pass,
        status_lists,
        issuer,
    });
    let first = worker::sync(&state).await;
    state.set_store(&first);
    first?;
    state.ready.store(true, Ordering::Relaxed);
    Ok(state)
}

/// [`prepare`]s, binds the listener and serves in the background. The first full
/// read happens before the port answers, so no request sees an empty cache.
pub async fn start(config: Config) -> Result<Running> {
    let listen = config.service.listen.clone();
    // A [renewal] that cannot reach the CA service is refused now, not found out
    // days before a certificate expires.
    if let Some(r) = &config.renewal {
        r.ca.client()?;
    }
    let state = prepare(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot listen on {listen}: {e}"),
        )
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("listener address: {e}")))?;
    let (shutdown, watch) = tokio::sync::watch::channel(false);
    let tasks = vec![
        tokio::spawn(worker::run(state.clone(), watch.clone())),
        tokio::spawn(renewal::run(state.clone(), watch.clone())),
        tokio::spawn(http::serve(state.clone(), listener, watch)),
    ];
    tracing::info!(%addr, cas = state.authorities.len(), "OCSP responder listening");
    Ok(Running {
        state,
        addr,
        shutdown,
        tasks,
    })
}

/// Every pre-signed response of the served CAs, DER, for a CDN or another
/// responder to serve (`gpki-ocsp export`).
pub async fn export(config: Config) -> Result<Vec<Bytes>> {
    let state = prepare(config).await?;
    let mut out = Vec::new();
    for auth in &state.authorities {
        out.extend(
            auth.entries
                .iter()
                .filter_map(|e| e.presigned.as_ref().map(|p| p.der.clone())),
        );
    }
    Ok(out)
}

/// Runs a responder until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let running = start(config).await?;
    wait_for_signal().await;
    running.stop().await;
    Ok(())
}

pub use gpki_service::wait_for_signal;
