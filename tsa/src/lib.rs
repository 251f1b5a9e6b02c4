//! gpki-tsa: an RFC 3161 timestamp authority with the RFC 5816 signing-certificate
//! attribute. Every token is logged in the store before it is returned (the
//! writes of concurrent requests share one transaction); serials come from the
//! store in blocks, so they never repeat across restarts or across TSA processes
//! sharing a store. It refuses to issue while its certificate is expired or
//! revoked, or (when configured) while the kernel says the clock is unsynchronised.
#![deny(unsafe_code)]

pub mod clock;
pub mod config;
mod http;
pub mod token;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result, Signer, SoftwareKey};
use gpki_store::{TokenRecord, TsaStore};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use tokio::sync::{mpsc, oneshot};

pub use config::Config;
use token::{FailInfo, Refusal, TsaKey};

/// Tokens logged per transaction at most.
const LOG_BATCH: usize = 2000;

type LogJob = (TokenRecord, oneshot::Sender<Result<()>>);

/// The TSA's shared state.
pub struct State {
    pub config: Config,
    pub store: TsaStore,
    /// The signing key and certificate; replaced in place when the TSA renews its
    /// certificate through the CA service.
    key: std::sync::RwLock<Arc<TsaKey>>,
    key_pass: gpki_pki::signer::Passphrase,
    policy: ObjectIdentifier,
    policy_der: Vec<u8>,
    policy_text: String,
    /// The next serial and the end of the reserved block.
    serials: tokio::sync::Mutex<(i64, i64)>,
    log: mpsc::Sender<LogJob>,
    /// What the status checker last established about the TSA certificate.
    cert_check: Mutex<CertCheck>,
    registry: Registry,
    answers: IntCounterVec,
    latency: Histogram,
}

/// The TSA certificate's status as last read from the store. Unknown is not
/// good: until a read succeeds, and again once the last success is too old, the
/// TSA refuses (design invariant 9).
#[derive(Debug, Clone, Default)]
pub struct CertCheck {
    /// When a read of the store last succeeded (Unix seconds).
    pub last_ok: Option<i64>,
    /// What that read found wrong, if anything: revoked, on hold, unknown to the
    /// store, or an issuing CA that signs nothing.
    pub problem: Option<String>,
    /// Why the last read failed, if it did.
    pub error: Option<String>,
}

impl State {
    /// The key and certificate in force.
    pub fn key(&self) -> Arc<TsaKey> {
        self.key.read().expect("key lock").clone()
    }

    /// What the status checker last established.
    pub fn cert_check(&self) -> CertCheck {
        self.cert_check.lock().expect("lock").clone()
    }

    /// Why the TSA may not issue now, if it may not.
    pub fn refusal(&self) -> Option<Refusal> {
        let now = gpki_pki::time::now();
        let refuse = |fail, text: String| Some(Refusal { fail, text });
        if self.key().not_after <= now {
            return refuse(
                FailInfo::TimeNotAvailable,
                "the TSA certificate has expired".into(),
            );
        }
        let check = self.cert_check();
        match check.last_ok {
            None => {
                return refuse(
                    FailInfo::SystemFailure,
                    format!(
                        "the TSA certificate's status is not established yet{}",
                        check.error.map(|e| format!(" ({e})")).unwrap_or_default()
                    ),
                )
            }
            Some(t) if now - t > self.config.status_max_age_secs as i64 => {
                return refuse(
                    FailInfo::SystemFailure,
                    format!(
                        "the TSA certificate's status was last established {} s ago (limit {} s){}",
                        now - t,
                        self.config.status_max_age_secs,
                        check.error.map(|e| format!(": {e}")).unwrap_or_default()
                    ),
                )
            }
            Some(_) => {}
        }
        if let Some(p) = check.problem {
            return refuse(FailInfo::SystemFailure, p);
        }
        let clock = clock::state();
        if self.config.require_clock_sync && !clock.synchronised {
            return refuse(
                FailInfo::TimeNotAvailable,
                "the TSA clock is not synchronised".into(),
            );
        }
        if let Some(a) = self.config.accuracy_ms {
            if clock.max_error_us > i64::from(a) * 1000 {
                return refuse(
                    FailInfo::TimeNotAvailable,
                    if clock.synchronised {
                        format!(
                            "the kernel's clock maxerror ({} µs) exceeds the accuracy tokens claim ({a} ms)",
                            clock.max_error_us
                        )
                    } else {
                        format!("the clock is unsynchronised: it cannot vouch for the accuracy tokens claim ({a} ms)")
                    },
                );
            }
        }
        None
    }

    async fn next_serial(&self) -> Result<i64> {
        let mut s = self.serials.lock().await;
        if s.0 >= s.1 {
            let first = self
                .store
                .allocate_tsa_serials(&self.config.name, self.config.serial_block)
                .await?;
            *s = (first, first + self.config.serial_block);
        }
        let serial = s.0;
        s.0 += 1;
        Ok(serial)
    }

    /// Answers one DER TimeStampReq with a DER TimeStampResp, granted or rejected.
    pub async fn answer(&self, body: &[u8]) -> (Vec<u8>, &'static str) {
        let req = match token::check_request(body, &self.policy) {
            Ok(r) => r,
            Err(r) => return (token::rejection(&r), r.fail.label()),
        };
        if let Some(r) = self.refusal() {
            return (token::rejection(&r), r.fail.label());
        }
        let serial = match self.next_serial().await {
            Ok(s) => s,
            Err(e) => return self.system_failure("no serial from the store", &e),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // RFC 3161 §2.4.2: genTime carries a fraction of a second when the accuracy
        // claimed is finer than a second (milliseconds here); otherwise whole seconds.
        let gen_time = if self.config.accuracy_ms.is_some_and(|a| a < 1000) {
            Duration::from_millis(now.as_millis() as u64)
        } else {
            Duration::from_secs(now.as_secs())
        };
        let der = match self.key().token(
            &req,
            &self.policy_der,
            serial as u64,
            gen_time,
            self.config.accuracy_ms,
        ) {
            Ok(d) => d,
            Err(e) => return self.system_failure("signing", &e),
        };
        let record = TokenRecord {
            tsa: self.config.name.clone(),
            serial: format!("{serial:x}"),
            gen_time: gen_time.as_secs() as i64,
            policy: self.policy_text.clone(),
            hash_alg: req.hash.name().into(),
            imprint: hex::encode(req.imprint.hashed_message.as_bytes()),
            nonce: req.nonce.as_ref().map(|n| hex::encode(n.as_bytes())),
        };
        let (tx, rx) = oneshot::channel();
        if self.log.send((record, tx)).await.is_err() {
            return self.system_failure("token log", &Error::internal("log writer stopped"));
        }
        match rx.await {
            Ok(Ok(())) => (der, "granted"),
            Ok(Err(e)) => self.system_failure("token log", &e),
            Err(_) => self.system_failure("token log", &Error::internal("log writer stopped")),
        }
    }

    fn system_failure(&self, what: &str, e: &Error) -> (Vec<u8>, &'static str) {
        tracing::error!(error = %e, "{what}");
        let r = Refusal {
            fail: FailInfo::SystemFailure,
            text: format!("{what} failed; try again later"),
        };
        (token::rejection(&r), r.fail.label())
    }
}

/// Writes logged tokens in batches: everything waiting when a write starts goes
/// into one transaction, and each request hears when its row is durable.
async fn log_writer(store: TsaStore, mut rx: mpsc::Receiver<LogJob>) {
    let mut log: Option<gpki_store::TokenLog> = None;
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < LOG_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let rows: Vec<TokenRecord> = jobs.iter().map(|(r, _)| r.clone()).collect();
        if log.is_none() {
            log = store.token_log().await.ok();
        }
        let result = match log.as_mut() {
            Some(l) => l.write(&rows).await,
            None => store.log_tokens(&rows).await,
        };
        if result.is_err() {
            // The connection may be gone; the next batch takes a fresh one.
            log = None;
        }
        for (_, tx) in jobs {
            let _ = tx.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::new(e.kind, e.detail.clone())),
            });
        }
    }
}

/// Re-reads the TSA certificate's status in the store every few seconds.
async fn status_checker(state: Arc<State>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        check_status(&state).await;
    }
}

/// Longest one status read may take: a black-holed store must not stall the
/// checker (the TSA refuses meanwhile anyway).
const STATUS_READ_LIMIT: Duration = Duration::from_secs(10);

/// One read of the TSA certificate's status: the row of its serial under the CA
/// whose subject is its issuer, and that CA's standing.
async fn check_status(state: &State) {
    let key = state.key();
    let serial = hex::encode(SerialOf(&key.cert).magnitude());
    let found = tokio::time::timeout(STATUS_READ_LIMIT, async {
        let issuer = state.store.authorities().await?.into_iter().find(|a| {
            a.cert_der
                .as_deref()
                .and_then(|d| x509_cert::Certificate::from_der(d).ok())
                .is_some_and(|c| c.tbs_certificate.subject == key.cert.tbs_certificate.issuer)
        });
        let Some(ca) = issuer else {
            return Ok::<_, Error>(Some(
                "the TSA certificate's issuer is not a CA of this store: its status is unknown"
                    .to_string(),
            ));
        };
        let standing = state.store.standing(&ca, gpki_pki::time::now()).await?;
        if standing != gpki_store::Standing::Active {
            return Ok(Some(format!(
                "the TSA certificate's issuer cannot vouch for it: {}",
                standing.describe(&ca.name)
            )));
        }
        Ok(match state.store.status_of(ca.id, &serial).await? {
            None => Some(format!(
                "CA `{}` has no record of the TSA certificate (serial {serial}): its status is unknown",
                ca.name
            )),
            Some(r) => match r.status.as_str() {
                "issued" => None,
                "revoked" => Some("the TSA certificate is revoked".to_string()),
                "hold" => Some("the TSA certificate is on hold".to_string()),
                other => Some(format!("the TSA certificate's record is {other}")),
            },
        })
    })
    .await
    .unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("the store did not answer within {STATUS_READ_LIMIT:?}"),
        ))
    });
    let mut check = state.cert_check.lock().expect("lock");
    match found {
        Ok(problem) => {
            if problem.is_some() && check.problem != problem {
                tracing::error!(
                    problem = problem.as_deref().unwrap_or(""),
                    "refusing to issue"
                );
            }
            check.last_ok = Some(gpki_pki::time::now());
            check.problem = problem;
            check.error = None;
        }
        Err(e) => {
            if check.error.is_none() {
                tracing::warn!(error = %e, "cannot read the TSA certificate's status");
            }
            check.error = Some(e.to_string());
        }
    }
}

/// The certificates of the store's CAs from the TSA certificate's issuer up to,
/// not including, the root; empty when the issuer is not in the store.
async fn issuer_chain(store: &TsaStore, cert: &x509_cert::Certificate) -> Result<Vec<Vec<u8>>> {
    let all = store.authorities().await?;
    let subject_of = |a: &gpki_store::AuthorityRecord| {
        a.cert_der
            .as_deref()
            .and_then(|d| x509_cert::Certificate::from_der(d).ok())
            .map(|c| c.tbs_certificate.subject)
    };
    let mut out = Vec::new();
    let mut walk = all
        .iter()
        .find(|a| subject_of(a).as_ref() == Some(&cert.tbs_certificate.issuer));
    while let Some(a) = walk {
        let Some(parent) = a.parent_id.filter(|p| *p != a.id) else {
            break;
        };
        if let Some(d) = &a.cert_der {
            out.push(d.clone());
        }
        walk = all.iter().find(|b| b.id == parent);
        if out.len() > 8 {
            break;
        }
    }
    Ok(out)
}

struct SerialOf<'a>(&'a x509_cert::Certificate);

impl SerialOf<'_> {
    fn magnitude(&self) -> Vec<u8> {
        let b = self.0.tbs_certificate.serial_number.as_bytes();
        b[b.iter().position(|x| *x != 0).unwrap_or(b.len())..].to_vec()
    }
}

/// Loads the TSA key and certificate and checks they belong together and that the
/// certificate is a TSA certificate (id-kp-timeStamping, critical).
pub fn load_key(config: &Config, pass: &Passphrase) -> Result<TsaKey> {
    gpki_service::signer_renewal::finish_interrupted(&config.key, &config.cert, pass)?;
    let raw = std::fs::read(&config.cert).map_err(|e| {
        Error::not_found(format!(
            "cannot read TSA certificate {}: {e}",
            config.cert.display()
        ))
    })?;
    let cert_der = gpki_pki::pem::decode_pem_or_der(&raw, &["CERTIFICATE"])?;
    let key = SoftwareKey::read_encrypted(&config.key, pass)?;
    tsa_key(key, cert_der, &config.cert)
}

/// A TSA key for `cert_der` once they belong together and the certificate is a
/// TSA certificate; `cert_path` names it in errors.
fn tsa_key(key: SoftwareKey, cert_der: Vec<u8>, cert_path: &std::path::Path) -> Result<TsaKey> {
    let cert = x509_cert::Certificate::from_der(&cert_der)
        .map_err(|e| Error::malformed(format!("TSA certificate: {e}")))?;
    if cert.tbs_certificate.subject_public_key_info.to_der()? != key.public_key_der() {
        return Err(Error::malformed(format!(
            "the key does not match the TSA certificate {}",
            cert_path.display()
        )));
    }
    let eku = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>(
        &cert.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
    )?;
    match eku {
        Some((true, e)) if e.0 == [const_oid::db::rfc5280::ID_KP_TIME_STAMPING] => {}
        _ => {
            return Err(Error::policy(format!(
                "{} is not a TSA certificate: RFC 3161 §2.3 needs id-kp-timeStamping as the only, critical, extended key usage",
                cert_path.display()
            )))
        }
    }
    TsaKey::new(Box::new(key), cert_der)
}

/// A running TSA.
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
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Opens the store, loads the key, binds and serves in the background.
pub async fn start(config: Config) -> Result<Running> {
    config.check()?;
    // A [renewal] that cannot reach the CA service is refused now, not found out
    // days before the certificate expires.
    if let Some(r) = &config.renewal {
        r.ca.client()?;
    }
    let store = TsaStore::open(&config.store).await?;
    let pass = gpki_service::passphrase(config.key_pass_file.as_deref(), "the TSA key")?;
    let key = load_key(&config, &pass)?;
    let chain = issuer_chain(&store, &key.cert).await?;
    let key = key.with_chain(&chain);
    let policy: ObjectIdentifier = config
        .policy
        .parse()
        .map_err(|e| Error::malformed(format!("policy `{}`: {e}", config.policy)))?;
    let clock = clock::state();
    if let Some(a) = config.accuracy_ms {
        if clock.max_error_us > i64::from(a) * 1000 {
            let error = if clock.synchronised {
                format!("the kernel's maxerror is {} µs", clock.max_error_us)
            } else {
                "the kernel reports the clock unsynchronised, so its maxerror is unbounded"
                    .to_string()
            };
            return Err(Error::malformed(format!(
                "accuracy_ms = {a} claims more than the clock vouches for: {error}. Synchronise \
                 the clock, raise accuracy_ms, or leave it out (tokens then claim no accuracy)"
            )));
        }
    }
    if !clock.synchronised {
        tracing::warn!(
            required = config.require_clock_sync,
            "the kernel reports the clock unsynchronised"
        );
    }
    let listener = tokio::net::TcpListener::bind(&config.service.listen)
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot listen on {}: {e}", config.service.listen),
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("listener address: {e}")))?;
    let registry = Registry::new();
    let answers = IntCounterVec::new(
        Opts::new(
            "gpki_tsa_responses_total",
            "TimeStampResp answers by outcome",
        ),
        &["outcome"],
    )
    .expect("metric");
    let latency = Histogram::with_opts(
        HistogramOpts::new(
            "gpki_tsa_request_duration_seconds",
            "Time to answer one request",
        )
        .buckets(vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
        ]),
    )
    .expect("metric");
    registry
        .register(Box::new(answers.clone()))
        .expect("register");
    registry
        .register(Box::new(latency.clone()))
        .expect("register");
    let (log, rx) = mpsc::channel(LOG_BATCH * 4);
    let writer = tokio::spawn(log_writer(store.clone(), rx));
    let state = Arc::new(State {
        policy_text: policy.to_string(),
        policy_der: policy.to_der()?,
        policy,
        store,
        key: std::sync::RwLock::new(Arc::new(key)),
        key_pass: pass,
        serials: tokio::sync::Mutex::new((0, 0)),
        log,
        cert_check: Mutex::new(CertCheck::default()),
        registry,
        answers,
        latency,
        config,
    });
    // The first status read happens before the port answers; if it fails, the TSA
    // serves refusals until one succeeds.
    check_status(&state).await;
    let (shutdown, watch) = tokio::sync::watch::channel(false);
    let tasks = vec![
        tokio::spawn(status_checker(state.clone(), watch.clone())),
        tokio::spawn(renewer(state.clone(), watch.clone())),
        tokio::spawn(http::serve(state.clone(), listener, watch)),
    ];
    drop(writer);
    tracing::info!(%addr, "TSA listening");
    Ok(Running {
        state,
        addr,
        shutdown,
        tasks,
    })
}

/// Runs a TSA until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let running = start(config).await?;
    wait_for_signal().await;
    running.stop().await;
    Ok(())
}

pub use gpki_service::wait_for_signal;

/// With `[renewal]`: renews the TSA certificate through the CA service within
/// `before_days` of expiry (at start, after the port opens, and every
/// `check_interval_secs`), then puts the new key in force for the next token. The
/// current key signs until then: no request is refused for the swap.
async fn renewer(state: Arc<State>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(cfg) = state.config.renewal.clone() else {
        return;
    };
    loop {
        if cfg.due(&state.key().cert_der) {
            match renew_key(&state, &cfg).await {
                Ok(serial) => {
                    tracing::info!(new = %serial, "TSA certificate renewed through the CA service")
                }
                Err(e) => {
                    tracing::error!(error = %e, "TSA certificate not renewed; the current one keeps signing")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(cfg.check_interval_secs.max(1))) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn renew_key(
    state: &State,
    cfg: &gpki_service::signer_renewal::RenewalConfig,
) -> Result<String> {
    let current = state.key();
    let issuer = current.cert.tbs_certificate.issuer.clone();
    let ca = state
        .store
        .authorities()
        .await?
        .into_iter()
        .find(|a| {
            a.cert_der
                .as_deref()
                .and_then(|d| x509_cert::Certificate::from_der(d).ok())
                .is_some_and(|c| c.tbs_certificate.subject == issuer)
        })
        .ok_or_else(|| {
            Error::not_found("the TSA certificate's issuer is not a CA of this store")
        })?;
    let issuer_der = ca
        .cert_der
        .as_deref()
        .ok_or_else(|| Error::not_found(format!("CA `{}` has no certificate yet", ca.name)))?;
    let client = cfg.ca.client()?;
    let renewed = gpki_service::signer_renewal::renew(
        &client,
        &ca.name,
        issuer_der,
        &current.cert_der,
        current.signer.as_ref(),
        &gpki_service::signer_renewal::next_key_path(&state.config.key),
        &state.key_pass,
    )
    .await?;
    // Checked as at start (the key belongs to the certificate, timeStamping only
    // and critical) and given its chain before any file is written.
    let key = tsa_key(renewed.key, renewed.cert_der, &state.config.cert)?;
    let chain = issuer_chain(&state.store, &key.cert).await?;
    gpki_service::signer_renewal::replace_files_off_workers(
        renewed.key_pem,
        renewed.cert_pem,
        state.config.key.clone(),
        state.config.cert.clone(),
    )
    .await?;
    *state.key.write().expect("key lock") = Arc::new(key.with_chain(&chain));
    check_status(state).await;
    Ok(renewed.serial)
}
