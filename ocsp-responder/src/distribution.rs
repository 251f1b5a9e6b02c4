//! The documents the CAs' certificates point at: `/crl/NAME.crl` (the newest full
//! CRL), `/crl/NAME.delta.crl` (the newest delta CRL, named by the full CRL's
//! freshestCRL) and `/ca/NAME.crt` (caIssuers).
//!
//! CRLs are served from memory. A request asks the store for the newest CRL
//! numbers at most once a second per CRL (one indexed aggregate), and reads the CRL
//! itself only when its number changed, so a 49 MB CRL crosses the pool once per
//! issue, not once per download. ETag (the CRL number and a digest), Last-Modified
//! (thisUpdate), Expires (nextUpdate) and If-None-Match let HTTP caches and clients
//! skip the body. While the store is out of reach, the CRL held is served until its
//! nextUpdate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use gpki_service::{plain, Body};
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use crate::State;

/// How long a CRL held is taken as the newest without asking the store.
const RECHECK: Duration = Duration::from_secs(1);

/// What the responder holds of the CAs' documents.
#[derive(Default)]
pub struct Documents {
    /// CA name → (id, certificate DER).
    cas: DashMap<String, (i64, Option<Bytes>)>,
    /// Names that are no CA of the store, with when that was read: a flood of made-up
    /// names costs one store read per name per `RECHECK_UNKNOWN`, not one per request.
    unknown: DashMap<String, Instant>,
    /// (CA name, delta?) → the newest CRL held.
    crls: DashMap<(String, bool), Arc<CachedCrl>>,
    /// One refresh at a time per CRL: a burst of requests after a new CRL reads it
    /// once, and a slow store holds up only that CRL's requests.
    refresh: DashMap<(String, bool), Arc<tokio::sync::Mutex<()>>>,
}

/// How long a name found to be no CA is taken as such.
const RECHECK_UNKNOWN: Duration = Duration::from_secs(5);
/// Remembered unknown names at most (beyond, the list starts afresh).
const MAX_UNKNOWN: usize = 10_000;

struct CachedCrl {
    number: i64,
    der: Bytes,
    etag: HeaderValue,
    last_modified: HeaderValue,
    expires: HeaderValue,
    next_update: i64,
    checked: Mutex<Instant>,
}

impl CachedCrl {
    fn fresh(&self) -> bool {
        self.checked.lock().expect("lock").elapsed() < RECHECK
    }
}

fn http_date(t: i64) -> HeaderValue {
    let st = std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    HeaderValue::from_str(&httpdate::fmt_http_date(st)).expect("HTTP date is ASCII")
}

/// Serves GET `path` (`/crl/…` or `/ca/…`).
pub async fn serve(state: &State, path: &str, headers: &HeaderMap) -> Response<Body> {
    let (name, kind) = if let Some(n) = path.strip_prefix("/crl/") {
        if let Some(n) = n.strip_suffix(".delta.crl") {
            (n, Kind::Crl { delta: true })
        } else if let Some(n) = n.strip_suffix(".crl") {
            (n, Kind::Crl { delta: false })
        } else {
            return plain(StatusCode::NOT_FOUND, "no such document");
        }
    } else if let Some(n) = path
        .strip_prefix("/ca/")
        .and_then(|n| n.strip_suffix(".crt"))
    {
        (n, Kind::Cert)
    } else {
        return plain(StatusCode::NOT_FOUND, "no such document");
    };
    let (id, cert) = match ca(state, name).await {
        Ok(Some(found)) => found,
        Ok(None) => return plain(StatusCode::NOT_FOUND, &format!("no CA named `{name}`")),
        Err(e) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("store: {}", e.kind),
            )
        }
    };
    match kind {
        Kind::Cert => match cert {
            Some(d) => {
                let mut r = Response::new(Full::new(d));
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/pkix-cert"),
                );
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=86400, public"),
                );
                r
            }
            None => plain(
                StatusCode::NOT_FOUND,
                &format!("CA `{name}` has no certificate yet"),
            ),
        },
        Kind::Crl { delta } => match crl(state, name, id, delta).await {
            Ok(Some(c)) => crl_response(&c, headers),
            Ok(None) => plain(
                StatusCode::NOT_FOUND,
                &format!(
                    "CA `{name}` has issued no {}CRL yet",
                    if delta { "delta " } else { "" }
                ),
            ),
            Err(e) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("store: {}", e.kind),
            ),
        },
    }
}

enum Kind {
    Crl { delta: bool },
    Cert,
}

async fn ca(state: &State, name: &str) -> gpki_pki::Result<Option<(i64, Option<Bytes>)>> {
    if let Some(found) = state.documents.cas.get(name) {
        return Ok(Some(found.clone()));
    }
    if state
        .documents
        .unknown
        .get(name)
        .is_some_and(|t| t.elapsed() < RECHECK_UNKNOWN)
    {
        return Ok(None);
    }
    let wait = Duration::from_millis(state.config.store_timeout_ms);
    let found = tokio::time::timeout(wait, state.store.find_authority(name))
        .await
        .map_err(|_| gpki_pki::Error::new(gpki_pki::ErrorKind::Unavailable, "store timed out"))??;
    if found.is_none() {
        if state.documents.unknown.len() >= MAX_UNKNOWN {
            state.documents.unknown.clear();
        }
        state
            .documents
            .unknown
            .insert(name.to_string(), Instant::now());
    }
    Ok(found.map(|a| {
        let doc = (a.id, a.cert_der.map(Bytes::from));
        if doc.1.is_some() {
            state.documents.cas.insert(name.to_string(), doc.clone());
        }
        doc
    }))
}

/// The newest CRL of CA `id`, from memory when it is still the newest.
async fn crl(
    state: &State,
    name: &str,
    id: i64,
    delta: bool,
) -> gpki_pki::Result<Option<Arc<CachedCrl>>> {
    let key = (name.to_string(), delta);
    let held = state.documents.crls.get(&key).map(|c| c.clone());
    if let Some(c) = &held {
        if c.fresh() {
            return Ok(Some(c.clone()));
        }
    }
    let lock = state
        .documents
        .refresh
        .entry(key.clone())
        .or_default()
        .clone();
    let _one = lock.lock().await;
    // Another request may have refreshed it while this one waited.
    if let Some(c) = state.documents.crls.get(&key) {
        if c.fresh() {
            return Ok(Some(c.clone()));
        }
    }
    let wait = Duration::from_millis(state.config.store_timeout_ms);
    let numbers = tokio::time::timeout(wait, state.store.crl_numbers(id)).await;
    let newest = match numbers {
        Ok(Ok((full, d))) => {
            if delta {
                d
            } else {
                full
            }
        }
        _ => {
            // The store is out of reach: what is held stays good until nextUpdate,
            // and the store is asked again only after RECHECK, so requests meanwhile
            // do not each wait for it.
            return match held {
                Some(c) if c.next_update > gpki_pki::time::now() => {
                    *c.checked.lock().expect("lock") = Instant::now();
                    Ok(Some(c))
                }
                _ => Err(gpki_pki::Error::new(
                    gpki_pki::ErrorKind::Unavailable,
                    "store unreachable and no CRL in force is held",
                )),
            };
        }
    };
    let Some(number) = newest else {
        return Ok(None);
    };
    if let Some(c) = held.filter(|c| c.number == number) {
        *c.checked.lock().expect("lock") = Instant::now();
        return Ok(Some(c));
    }
    let Some(record) = tokio::time::timeout(wait * 10, state.store.crl_by_number(id, number))
        .await
        .map_err(|_| gpki_pki::Error::new(gpki_pki::ErrorKind::Unavailable, "store timed out"))??
    else {
        return Ok(None);
    };
    let digest = openssl::sha::sha256(&record.der);
    let cached = Arc::new(CachedCrl {
        number,
        etag: HeaderValue::from_str(&format!("\"{number}-{}\"", hex::encode(&digest[..8])))
            .expect("ASCII"),
        last_modified: http_date(record.this_update),
        expires: http_date(record.next_update),
        next_update: record.next_update,
        der: Bytes::from(record.der),
        checked: Mutex::new(Instant::now()),
    });
    state
        .metrics
        .crl_loads
        .with_label_values(&[name, if delta { "delta" } else { "full" }])
        .inc();
    state.documents.crls.insert(key, cached.clone());
    Ok(Some(cached))
}

fn crl_response(c: &CachedCrl, request: &HeaderMap) -> Response<Body> {
    let max_age = (c.next_update - gpki_pki::time::now()).max(0);
    let mut r = crate::http::conditional(c.etag.to_str().unwrap_or(""), c.der.clone(), request);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-crl"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("max-age={max_age}, public")).expect("ASCII"),
    );
    h.insert(header::ETAG, c.etag.clone());
    h.insert(header::LAST_MODIFIED, c.last_modified.clone());
    h.insert(header::EXPIRES, c.expires.clone());
    r
}
