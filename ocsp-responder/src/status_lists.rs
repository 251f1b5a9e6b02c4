//! `/statuslists/NAME`: the current Status List Token of each credential status list
//! in the store (draft-ietf-oauth-status-list), signed by the status-list signer of
//! `[status_lists]`, as a JWT or, when the request's Accept asks for
//! `application/statuslist+cwt`, a CWT.
//!
//! A verifier fetches the whole list, so the issuer cannot tell which credential is
//! being checked: the request names the list, nothing else, and nothing of it is
//! logged beyond the list's name.
//!
//! Tokens are served from memory. A request asks the store for the list's
//! `status_seq` at most once a second per list, and the list is rebuilt and signed
//! again only when a revocation bumped it, or when the token held has used half
//! its lifetime. `Cache-Control: max-age` is the token's `ttl`, so a revocation
//! reaches verifiers within one refresh. While the store is out of reach, the token
//! held is served until it expires.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use gpki_credentials::status::{self, Issued, StatusList};
use gpki_credentials::IssuerKey;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result, SoftwareKey};
use gpki_service::{plain, Body};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Deserialize;

use crate::State;

/// `[status_lists]` in ocsp.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusListsConfig {
    /// The status-list-signer certificate, with its chain (PEM, leaf first).
    pub cert: PathBuf,
    /// Its key: encrypted PKCS#8, passphrase in the responder's `key_pass_file`.
    pub key: PathBuf,
    /// Seconds a verifier may keep a token (`ttl`, and `Cache-Control: max-age`).
    #[serde(default = "default_ttl")]
    pub ttl_seconds: i64,
    /// Seconds from a token's `iat` to its `exp`.
    #[serde(default = "default_valid")]
    pub valid_seconds: i64,
}

fn default_ttl() -> i64 {
    300
}
fn default_valid() -> i64 {
    86_400
}

impl StatusListsConfig {
    pub fn check(&self) -> Result<()> {
        if !(10..=86_400).contains(&self.ttl_seconds) {
            return Err(Error::malformed(
                "[status_lists] ttl_seconds must be 10 to 86400",
            ));
        }
        if self.valid_seconds < 2 * self.ttl_seconds || self.valid_seconds > 30 * 86_400 {
            return Err(Error::malformed(
                "[status_lists] valid_seconds must be at least twice ttl_seconds and at most 30 days",
            ));
        }
        Ok(())
    }
}

/// How long a token held is taken as current without asking the store.
const RECHECK: Duration = Duration::from_secs(1);
const MAX_NAME: usize = 64;
/// Lists held at most (beyond, the cache starts afresh; a store has a few).
const MAX_HELD: usize = 1024;

/// The signer and the tokens held.
pub struct Lists {
    config: StatusListsConfig,
    signer: IssuerKey,
    held: DashMap<String, Arc<Token>>,
    refresh: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Names found to be no list, with when: a flood of made-up names costs one
    /// store read per name per RECHECK_UNKNOWN and leaves no lock behind.
    unknown: DashMap<String, Instant>,
    /// When the signer's certificate was last found in force or refused in the
    /// store (re-read at most once a RECHECK, one reader at a time).
    standing: tokio::sync::Mutex<Option<Instant>>,
    /// Why the signer may not sign: its certificate (or a CA above it) revoked,
    /// on hold or expired. Nothing is signed or served while it is set.
    refused: Mutex<Option<String>>,
}

const RECHECK_UNKNOWN: Duration = Duration::from_secs(5);

struct Token {
    seq: i64,
    iat: i64,
    exp: i64,
    jwt: Bytes,
    cwt: Bytes,
    etag: String,
    checked: Mutex<Instant>,
}

impl Lists {
    /// Loads the signer: key and certificate must match, the certificate must carry
    /// the status-list purpose and be within its validity.
    pub fn load(config: &StatusListsConfig, pass: &Passphrase) -> Result<Lists> {
        config.check()?;
        let pem = std::fs::read(&config.cert).map_err(|e| {
            Error::not_found(format!(
                "cannot read status-list signer {}: {e}",
                config.cert.display()
            ))
        })?;
        let chain = gpki_pki::pem::decode_all(&pem, "CERTIFICATE")
            .map_err(|e| e.context(config.cert.display()))?;
        let key = SoftwareKey::read_encrypted(&config.key, pass)?;
        let signer = IssuerKey::new(
            Arc::new(key),
            chain,
            gpki_pki::profile::EKU_STATUS_LIST_SIGNING,
            "status-list signer",
        )
        .map_err(|e| e.context(config.cert.display()))?;
        Ok(Lists {
            config: config.clone(),
            signer,
            held: DashMap::new(),
            refresh: DashMap::new(),
            unknown: DashMap::new(),
            standing: tokio::sync::Mutex::new(None),
            refused: Mutex::new(None),
        })
    }

    /// Why the signer signs nothing now, if it does not (for /healthz).
    pub fn refused(&self) -> Option<String> {
        self.refused.lock().expect("lock").clone()
    }

    /// The signer's standing, as the CA checks its own before signing: its
    /// certificate and every CA above it in force in the store, re-read at most
    /// once a second. Refused, nothing is signed and no token served (a token of a
    /// revoked signer makes every verifier refuse every credential). With the
    /// store out of reach the standing is what was last read: a refusal holds,
    /// and the token held is served within its ttl as for any outage.
    async fn check_signer(&self, state: &State) -> Result<()> {
        let mut last = self.standing.lock().await;
        if last.is_none_or(|t| t.elapsed() >= RECHECK) {
            let wait = Duration::from_millis(state.config.store_timeout_ms);
            let read = tokio::time::timeout(
                wait,
                state
                    .store
                    .certificate_in_force(self.signer_certificate(), gpki_pki::time::now()),
            )
            .await;
            match read {
                Ok(Ok(_)) => {
                    if self.refused.lock().expect("lock").take().is_some() {
                        tracing::info!("the status-list signer is in force again");
                    }
                    *last = Some(Instant::now());
                }
                Ok(Err(e)) if !matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => {
                    let why = format!(
                        "the status-list signer certificate is not in force: {}",
                        e.detail
                    );
                    let mut refused = self.refused.lock().expect("lock");
                    if refused.is_none() {
                        tracing::error!(reason = %why, "status lists: signing stopped");
                    }
                    *refused = Some(why);
                    self.held.clear();
                    *last = Some(Instant::now());
                }
                // Out of reach: the standing last read holds for RECHECK, so the
                // requests behind this one do not each wait out the store too.
                _ => *last = Some(Instant::now()),
            }
        }
        match self.refused() {
            Some(why) => Err(Error::new(ErrorKind::Unauthorized, why)),
            None => Ok(()),
        }
    }

    /// The signer's certificate (DER).
    pub fn signer_certificate(&self) -> &[u8] {
        &self.signer.chain()[0]
    }

    fn fresh(&self, t: &Token, now: i64) -> bool {
        t.checked.lock().expect("lock").elapsed() < RECHECK && !self.aging(t, now)
    }

    /// Past half its ttl: signed again even if nothing changed, so that what a
    /// verifier fetches is always within the ttl it will hold the token to.
    fn aging(&self, t: &Token, now: i64) -> bool {
        now >= t.iat + self.config.ttl_seconds / 2
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Serves GET `/statuslists/NAME`.
pub async fn serve(state: &State, name: &str, headers: &HeaderMap) -> Response<Body> {
    let Some(lists) = &state.status_lists else {
        return plain(
            StatusCode::NOT_FOUND,
            "this responder serves no status lists",
        );
    };
    if !valid_name(name) {
        return plain(StatusCode::NOT_FOUND, "no such status list");
    }
    let cwt = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(status::CWT_TYP));
    match token(state, lists, name).await {
        Ok(Some(t)) => respond(lists, &t, cwt, headers),
        Ok(None) => plain(
            StatusCode::NOT_FOUND,
            &format!("no status list named `{name}`"),
        ),
        Err(e) => {
            tracing::warn!(list = name, error = %e, "status list unavailable");
            let why = if e.kind == ErrorKind::Unauthorized {
                e.detail
            } else {
                e.kind.to_string()
            };
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("status list: {why}"),
            )
        }
    }
}

async fn token(state: &State, lists: &Lists, name: &str) -> Result<Option<Arc<Token>>> {
    lists.check_signer(state).await?;
    let now = gpki_pki::time::now();
    if let Some(t) = lists.held.get(name).filter(|t| lists.fresh(t, now)) {
        return Ok(Some(t.clone()));
    }
    if lists
        .unknown
        .get(name)
        .is_some_and(|t| t.elapsed() < RECHECK_UNKNOWN)
    {
        return Ok(None);
    }
    let lock = lists.refresh.entry(name.to_string()).or_default().clone();
    let _one = lock.lock().await;
    // Read under the lock: another request may have signed a newer token meanwhile.
    let held = lists.held.get(name).map(|t| t.clone());
    if let Some(t) = held.as_ref().filter(|t| lists.fresh(t, now)) {
        return Ok(Some(t.clone()));
    }
    let wait = Duration::from_millis(state.config.store_timeout_ms);
    let unavailable = || Error::new(ErrorKind::Unavailable, "store timed out");
    let record = match tokio::time::timeout(wait, state.store.status_list_by_name(name)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) if e.kind == ErrorKind::NotFound => {
            lists.held.remove(name);
            lists.refresh.remove(name);
            if lists.unknown.len() >= 10_000 {
                lists.unknown.clear();
            }
            lists.unknown.insert(name.to_string(), Instant::now());
            return Ok(None);
        }
        other => {
            // The store is out of reach: the token held is served while verifiers
            // still take it (within its ttl), then 503: a revocation the store holds
            // must not stay hidden for a day behind an outage.
            let ttl = lists.config.ttl_seconds;
            return match held.filter(|t| now < t.iat + ttl) {
                Some(t) => {
                    *t.checked.lock().expect("lock") = Instant::now();
                    Ok(Some(t))
                }
                None => Err(match other {
                    Ok(Err(e)) => e,
                    _ => unavailable(),
                }),
            };
        }
    };
    if let Some(t) = held.filter(|t| t.seq == record.status_seq && !lists.aging(t, now)) {
        *t.checked.lock().expect("lock") = Instant::now();
        return Ok(Some(t));
    }
    let (seq, revoked) =
        tokio::time::timeout(wait * 10, state.store.status_list_revoked(record.id))
            .await
            .map_err(|_| unavailable())??;
    let bits = u8::try_from(record.bits).map_err(|_| Error::internal("status list bits"))?;
    let mut list = StatusList::new(record.size as u64, bits)?;
    for idx in revoked {
        list.set(idx as u64, status::INVALID)?;
    }
    let at = Issued {
        iat: now,
        exp: now + lists.config.valid_seconds,
        ttl: lists.config.ttl_seconds,
    };
    let signer = &lists.signer;
    let jwt = status::jwt(&list, &record.uri, at, signer)?;
    let cwt = status::cwt(&list, &record.uri, at, signer)?;
    let token = Arc::new(Token {
        seq,
        iat: at.iat,
        exp: at.exp,
        etag: format!("\"{seq}-{}\"", at.iat),
        jwt: Bytes::from(jwt),
        cwt: Bytes::from(cwt),
        checked: Mutex::new(Instant::now()),
    });
    state
        .metrics
        .status_list_signs
        .with_label_values(&[name])
        .inc();
    if lists.held.len() >= MAX_HELD {
        lists.held.clear();
    }
    lists.held.insert(name.to_string(), token.clone());
    Ok(Some(token))
}

fn http_date(t: i64) -> HeaderValue {
    let st = std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    HeaderValue::from_str(&httpdate::fmt_http_date(st)).expect("HTTP date is ASCII")
}

fn respond(lists: &Lists, t: &Token, cwt: bool, request: &HeaderMap) -> Response<Body> {
    let etag = format!(
        "{}-{}\"",
        t.etag.trim_end_matches('"'),
        if cwt { "cwt" } else { "jwt" }
    );
    let body = if cwt { t.cwt.clone() } else { t.jwt.clone() };
    let mut r = crate::http::conditional(&etag, body, request);
    let now = gpki_pki::time::now();
    let max_age = lists.config.ttl_seconds.min(t.exp - now).max(0);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if cwt {
            "application/statuslist+cwt"
        } else {
            "application/statuslist+jwt"
        }),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("max-age={max_age}, public, no-transform")).expect("ASCII"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("ASCII"));
    h.insert(header::LAST_MODIFIED, http_date(t.iat));
    h.insert(header::EXPIRES, http_date(now + max_age));
    r
}
