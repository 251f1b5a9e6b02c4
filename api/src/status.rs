//! A certificate's revocation status: OCSP first (RFC 6960, the CertID in SHA-1
//! as RFC 5019 clients send it), the CRL of its distribution point when OCSP
//! gives no usable answer. Every answer is verified (the OCSP response by the
//! issuer or a responder it delegated to; the CRL by the issuer) and is kept
//! until its nextUpdate, never past it. Unknown is not good: when neither source
//! answers, the status is an error and the caller refuses.
//!
//! Delta CRLs are not read: a certificate revoked since the full CRL is seen
//! by OCSP, or at the next full CRL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use der::{Decode, Encode};
use gpki_pki::crl::RevocationReason;
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509;
use serde::Serialize;
use x509_cert::Certificate;

/// Answers kept at most; the cache starts afresh beyond.
const ANSWER_CACHE_ENTRIES: usize = 262_144;
/// The largest OCSP response read.
const MAX_OCSP_RESPONSE: usize = 64 * 1024;

/// Where a status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Ocsp,
    Crl,
}

/// An OCSP answer of `unknown`: the caller refuses it.
const UNKNOWN: &str = "unknown";

/// A verified status.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// `good`, or the revocation reason (certificateHold included).
    pub status: String,
    /// When it was revoked, Unix seconds.
    pub revoked_at: Option<i64>,
    pub source: Source,
    pub url: String,
    pub this_update: i64,
    /// Until when the answer may be kept; None for an OCSP answer without one
    /// (used once, never kept).
    pub next_update: Option<i64>,
    /// When this process fetched it: it is kept `max_cache_age` at most.
    #[serde(skip)]
    pub fetched_at: i64,
}

impl Answer {
    pub fn is_good(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// How status is established.
#[derive(Debug, Clone)]
pub struct StatusPolicy {
    pub ocsp: bool,
    pub crl: bool,
    /// Ask this responder instead of the one the certificate names.
    pub ocsp_url: Option<String>,
    pub timeout: Duration,
    /// Tolerated clock difference with responders and CRL issuers, seconds.
    pub skew: i64,
    /// The largest CRL read.
    pub max_crl_bytes: usize,
    /// An OCSP answer without nextUpdate is taken only this young (seconds).
    pub max_age_without_next_update: i64,
    /// An answer or a CRL is kept at most this long after it was fetched, however
    /// far its nextUpdate (seconds; 0 keeps nothing): how long a revocation may
    /// take to reach a running API.
    pub max_cache_age: i64,
}

impl Default for StatusPolicy {
    fn default() -> StatusPolicy {
        StatusPolicy {
            ocsp: true,
            crl: true,
            ocsp_url: None,
            timeout: Duration::from_secs(5),
            skew: 300,
            max_crl_bytes: 64 << 20,
            max_age_without_next_update: 3600,
            max_cache_age: 300,
        }
    }
}

/// Counters for /metrics and the benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    pub cached: AtomicU64,
    pub ocsp_fetched: AtomicU64,
    pub crl_fetched: AtomicU64,
    pub unknown: AtomicU64,
}

struct Crl {
    issuer_key: [u8; 32],
    /// The CRL's issuingDistributionPoint names: it covers only certificates that
    /// name one of them (RFC 5280 §6.3.3 b.2.i: a partition).
    partition: Option<Vec<String>>,
    this_update: i64,
    next_update: i64,
    fetched_at: i64,
    revoked: HashMap<Vec<u8>, (String, i64)>,
    only_ca: bool,
    only_user: bool,
}

/// Establishes and caches certificate status.
pub struct StatusChecker {
    policy: StatusPolicy,
    client: reqwest::Client,
    answers: Mutex<HashMap<[u8; 32], Arc<Answer>>>,
    crls: Mutex<HashMap<String, Arc<Crl>>>,
    /// One fetch at a time per certificate and per CRL URL: a wave of requests that
    /// miss the cache together waits for the first, not each fetching a copy.
    fetching: Mutex<HashMap<Vec<u8>, Arc<tokio::sync::Mutex<()>>>>,
    pub counters: Counters,
}

/// Holds the fetch lock of a key, and forgets the lock when the last holder is done.
struct InFlight<'a> {
    checker: &'a StatusChecker,
    key: Vec<u8>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut f = self.checker.fetching.lock().expect("fetch locks");
        if f.get(&self.key).is_some_and(|m| Arc::strong_count(m) <= 2) {
            f.remove(&self.key);
        }
    }
}

/// Reads a reply's body, refusing more than `limit` octets.
pub async fn read_limited(
    mut reply: reqwest::Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, String> {
    if reply.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("the reply is larger than {limit} octets"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = reply.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the reply is larger than {limit} octets"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn reason_name(code: i64) -> String {
    RevocationReason::from_code(code)
        .map(|r| r.as_str().to_string())
        .unwrap_or_else(|| "unspecified".into())
}

impl StatusChecker {
    pub fn new(policy: StatusPolicy) -> gpki_pki::Result<StatusChecker> {
        if !(0..=86_400).contains(&policy.max_cache_age) {
            return Err(gpki_pki::Error::malformed(
                "the status cache's maximum age must be 0 to 86400 seconds",
            ));
        }
        if !(0..=3600).contains(&policy.skew) {
            return Err(gpki_pki::Error::malformed(
                "the tolerated clock skew must be 0 to 3600 seconds",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| gpki_pki::Error::internal(format!("HTTP client: {e}")))?;
        Ok(StatusChecker {
            policy,
            client,
            answers: Mutex::new(HashMap::new()),
            crls: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    pub fn policy(&self) -> &StatusPolicy {
        &self.policy
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    async fn in_flight(&self, key: Vec<u8>) -> InFlight<'_> {
        let lock = self
            .fetching
            .lock()
            .expect("fetch locks")
            .entry(key.clone())
            .or_default()
            .clone();
        InFlight {
            checker: self,
            key,
            _guard: lock.lock_owned().await,
        }
    }

    fn cached(&self, key: &[u8; 32], now: i64) -> Option<Arc<Answer>> {
        let answers = self.answers.lock().expect("status cache");
        let a = answers.get(key)?;
        (a.this_update <= now + self.policy.skew
            && a.next_update.is_some_and(|n| now <= n)
            && now - a.fetched_at < self.policy.max_cache_age)
            .then(|| a.clone())
    }

    /// The status of `cert` (DER `cert_der`), issued by `issuer`, at `now`. An
    /// error says why it could not be established.
    pub async fn status(
        &self,
        cert: &X509,
        cert_der: &[u8],
        issuer: &X509,
        now: i64,
    ) -> std::result::Result<Arc<Answer>, String> {
        self.status_hashed(openssl::sha::sha256(cert_der), cert, cert_der, issuer, now)
            .await
    }

    /// [`StatusChecker::status`] with the certificate's SHA-256 already taken.
    pub async fn status_hashed(
        &self,
        key: [u8; 32],
        cert: &X509,
        cert_der: &[u8],
        issuer: &X509,
        now: i64,
    ) -> std::result::Result<Arc<Answer>, String> {
        if let Some(a) = self.cached(&key, now) {
            self.counters.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(a);
        }
        let _one = self.in_flight(key.to_vec()).await;
        // Another request may have fetched it while this one waited.
        if let Some(a) = self.cached(&key, now) {
            self.counters.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(a);
        }
        let decoded = Certificate::from_der(cert_der).map_err(|e| format!("certificate: {e}"))?;
        let issuer_der = issuer.to_der().map_err(|e| e.to_string())?;
        let issuer_decoded =
            Certificate::from_der(&issuer_der).map_err(|e| format!("issuer certificate: {e}"))?;
        let mut why = Vec::new();
        let mut answer = None;
        if self.policy.ocsp {
            match self
                .ocsp(cert, &decoded, issuer, &issuer_decoded, now)
                .await
            {
                // The issuer's own responder does not know the certificate: it
                // may have been made with the CA's key outside the CA's records,
                // and a CRL (which lists only what it revoked) would read its
                // absence as good. Unknown is not good: refused, not asked of the
                // CRL, never kept.
                Ok(a) if a.status == UNKNOWN => {
                    self.counters.unknown.fetch_add(1, Ordering::Relaxed);
                    return Err(format!(
                        "OCSP: {} does not know the certificate (unknown); the CRL is not asked, since a certificate its issuer's responder does not know is not shown good by its absence from a CRL",
                        a.url
                    ));
                }
                Ok(a) => answer = Some(a),
                Err(e) => why.push(format!("OCSP: {e}")),
            }
        }
        // The CRL answers for an OCSP failure only where the responder asked was
        // one this relying party configured (`ocsp_url`): a responder named by
        // an end entity's own AIA is the certificate's word, and one made with
        // the CA's key outside its records would name an unreachable one (or
        // none) to be judged by a CRL that cannot list it. A CA certificate that
        // names no responder is its issuer's ARL's to judge (a subordinate of the
        // offline root; forging one needs the root's key).
        let names_none = cert.ocsp_responders().map(|r| r.is_empty()).unwrap_or(true);
        let crl_may_answer = self.policy.crl
            && (!self.policy.ocsp
                || self.policy.ocsp_url.is_some()
                || (is_ca(&decoded) && names_none));
        if answer.is_none() && self.policy.crl && !crl_may_answer {
            why.push(
                "CRL: not asked, since the responder the certificate names did not answer \
                 (configure ocsp_url to fall back to CRLs during a responder outage)"
                    .into(),
            );
        }
        if answer.is_none() && crl_may_answer {
            match self.crl(&decoded, &issuer_decoded, now).await {
                Ok(a) => answer = Some(a),
                Err(e) => why.push(format!("CRL: {e}")),
            }
        }
        let Some(answer) = answer else {
            self.counters.unknown.fetch_add(1, Ordering::Relaxed);
            if why.is_empty() {
                why.push("neither OCSP nor CRLs are enabled".into());
            }
            return Err(why.join("; "));
        };
        let answer = Arc::new(answer);
        if answer.next_update.is_some() {
            let mut answers = self.answers.lock().expect("status cache");
            if answers.len() >= ANSWER_CACHE_ENTRIES {
                answers.clear();
            }
            // A newer answer is never replaced by an older one.
            if answers
                .get(&key)
                .is_none_or(|held| held.this_update <= answer.this_update)
            {
                answers.insert(key, answer.clone());
            }
        }
        Ok(answer)
    }

    async fn ocsp(
        &self,
        cert: &X509,
        decoded: &Certificate,
        issuer: &X509,
        issuer_decoded: &Certificate,
        now: i64,
    ) -> std::result::Result<Answer, String> {
        let url = match &self.policy.ocsp_url {
            Some(u) => u.clone(),
            None => cert
                .ocsp_responders()
                .ok()
                .and_then(|r| r.iter().next().map(|s| s.to_string()))
                .ok_or("the certificate names no OCSP responder")?,
        };
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(format!("responder {url} is not http(s)"));
        }
        let ossl = |e: openssl::error::ErrorStack| e.to_string();
        let id = || OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).map_err(ossl);
        let mut req = OcspRequest::new().map_err(ossl)?;
        req.add_id(id()?).map_err(ossl)?;
        let reply = self
            .client
            .post(&url)
            .header("Content-Type", "application/ocsp-request")
            .body(req.to_der().map_err(ossl)?)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !reply.status().is_success() {
            return Err(format!("{url}: HTTP {}", reply.status()));
        }
        let body = read_limited(reply, MAX_OCSP_RESPONSE)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        self.counters.ocsp_fetched.fetch_add(1, Ordering::Relaxed);
        let resp = OcspResponse::from_der(&body)
            .map_err(|e| format!("{url}: not an OCSP response: {e}"))?;
        let st = resp.status();
        if st != OcspResponseStatus::SUCCESSFUL {
            let name = match st {
                OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest",
                OcspResponseStatus::INTERNAL_ERROR => "internalError",
                OcspResponseStatus::TRY_LATER => "tryLater",
                OcspResponseStatus::SIG_REQUIRED => "sigRequired",
                OcspResponseStatus::UNAUTHORIZED => "unauthorized",
                _ => "an unknown status",
            };
            return Err(format!("{url} answered {name}"));
        }
        let basic = resp.basic().map_err(|e| format!("{url}: {e}"))?;
        // Signed by the issuer, or by a responder the issuer certified for
        // OCSPSigning (RFC 6960 §4.2.2.2): the issuer is the only anchor here.
        let mut trust = X509StoreBuilder::new().map_err(ossl)?;
        trust.add_cert(issuer.to_owned()).map_err(ossl)?;
        trust
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(ossl)?;
        let trust = trust.build();
        let none = Stack::new().map_err(ossl)?;
        basic
            .verify(&none, &trust, OcspFlag::empty())
            .map_err(|e| {
                format!(
                    "{url}: the response's signature is not the issuer's or its responder's: {e}"
                )
            })?;
        let id = id()?;
        let found = basic
            .find_status(&id)
            .ok_or_else(|| format!("{url}: the response does not answer for this certificate"))?;
        found
            .check_validity(u32::try_from(self.policy.skew).unwrap_or(0), None)
            .map_err(|_| format!("{url}: the response is stale or not yet valid"))?;
        let status = found.status;
        let reason = found.reason.as_raw() as i64;
        // The times, read with x509-ocsp (rust-openssl gives them only as text).
        let (this_update, next_update, revoked_at) =
            single_response_times(&body, decoded, issuer_decoded)
                .ok_or_else(|| format!("{url}: the response's single answer is unreadable"))?;
        if next_update.is_none() && now - this_update > self.policy.max_age_without_next_update {
            return Err(format!(
                "{url}: the response has no nextUpdate and is older than {} s",
                self.policy.max_age_without_next_update
            ));
        }
        let (status, revoked_at) = if status == OcspCertStatus::GOOD {
            ("good".to_string(), None)
        } else if status == OcspCertStatus::REVOKED {
            (
                reason_name(reason.max(0)),
                Some(revoked_at.unwrap_or(this_update)),
            )
        } else {
            (UNKNOWN.to_string(), None)
        };
        Ok(Answer {
            status,
            revoked_at,
            source: Source::Ocsp,
            url,
            this_update,
            next_update,
            fetched_at: now,
        })
    }

    async fn crl(
        &self,
        decoded: &Certificate,
        issuer: &Certificate,
        now: i64,
    ) -> std::result::Result<Answer, String> {
        let urls = distribution_points(decoded);
        if urls.is_empty() {
            return Err("the certificate names no http CRL distribution point".into());
        }
        let is_ca = is_ca(decoded);
        let issuer_name = issuer
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| e.to_string())?;
        let issuer_key = openssl::sha::sha256(
            issuer
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        );
        let mut why = Vec::new();
        for url in &urls {
            let fresh = |c: &Arc<Crl>| {
                c.issuer_key == issuer_key
                    && now <= c.next_update
                    && now - c.fetched_at < self.policy.max_cache_age
            };
            let mut crl = self
                .crls
                .lock()
                .expect("CRL cache")
                .get(url)
                .cloned()
                .filter(fresh);
            if crl.is_none() {
                let _one = self.in_flight(url.as_bytes().to_vec()).await;
                crl = self
                    .crls
                    .lock()
                    .expect("CRL cache")
                    .get(url)
                    .cloned()
                    .filter(fresh);
                if crl.is_none() {
                    match self
                        .fetch_crl(url, issuer, &issuer_name, issuer_key, now)
                        .await
                    {
                        Ok(c) => {
                            let c = Arc::new(c);
                            let mut crls = self.crls.lock().expect("CRL cache");
                            if crls
                                .get(url)
                                .is_none_or(|held| held.this_update <= c.this_update)
                            {
                                crls.insert(url.clone(), c.clone());
                            }
                            crl = Some(c);
                        }
                        Err(e) => {
                            why.push(format!("{url}: {e}"));
                            continue;
                        }
                    }
                }
            }
            let crl = crl.expect("fetched or held");
            if (crl.only_ca && !is_ca) || (crl.only_user && is_ca) {
                why.push(format!(
                    "{url}: the CRL does not cover this kind of certificate"
                ));
                continue;
            }
            if let Some(names) = &crl.partition {
                if !names.iter().any(|n| urls.contains(n)) {
                    why.push(format!(
                        "{url}: the CRL is the partition {}, which this certificate does not name",
                        names.join(", ")
                    ));
                    continue;
                }
            }
            let serial = decoded.tbs_certificate.serial_number.as_bytes();
            let (status, revoked_at) = match crl.revoked.get(serial) {
                Some((reason, at)) => (reason.clone(), Some(*at)),
                None => ("good".into(), None),
            };
            return Ok(Answer {
                status,
                revoked_at,
                source: Source::Crl,
                url: url.clone(),
                this_update: crl.this_update,
                next_update: Some(crl.next_update),
                fetched_at: crl.fetched_at,
            });
        }
        Err(why.join("; "))
    }

    async fn fetch_crl(
        &self,
        url: &str,
        issuer: &Certificate,
        issuer_name: &[u8],
        issuer_key: [u8; 32],
        now: i64,
    ) -> std::result::Result<Crl, String> {
        let reply = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !reply.status().is_success() {
            return Err(format!("HTTP {}", reply.status()));
        }
        let body = read_limited(reply, self.policy.max_crl_bytes).await?;
        self.counters.crl_fetched.fetch_add(1, Ordering::Relaxed);
        let der_bytes =
            gpki_pki::pem::decode_pem_or_der(&body, &["X509 CRL"]).map_err(|e| e.detail)?;
        parse_crl(
            &der_bytes,
            issuer,
            issuer_name,
            issuer_key,
            now,
            self.policy.skew,
        )
    }
}

/// The thisUpdate, nextUpdate and revocationTime of the response's answer for
/// `cert` (by serial and issuer key hash).
fn single_response_times(
    body: &[u8],
    cert: &Certificate,
    issuer: &Certificate,
) -> Option<(i64, Option<i64>, Option<i64>)> {
    let resp = x509_ocsp::OcspResponse::from_der(body).ok()?;
    let basic =
        x509_ocsp::BasicOcspResponse::from_der(resp.response_bytes?.response.as_bytes()).ok()?;
    let key_hash = openssl::sha::sha1(
        issuer
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    );
    let name_hash = openssl::sha::sha1(&issuer.tbs_certificate.subject.to_der().ok()?);
    let sha1: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_1;
    let secs = |t: &x509_ocsp::OcspGeneralizedTime| t.0.to_unix_duration().as_secs() as i64;
    basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| {
            r.cert_id.hash_algorithm.oid == sha1
                && r.cert_id.serial_number == cert.tbs_certificate.serial_number
                && r.cert_id.issuer_key_hash.as_bytes() == key_hash.as_slice()
                && r.cert_id.issuer_name_hash.as_bytes() == name_hash.as_slice()
        })
        .map(|r| {
            let revoked = match &r.cert_status {
                x509_ocsp::CertStatus::Revoked(info) => Some(secs(&info.revocation_time)),
                _ => None,
            };
            (
                secs(&r.this_update),
                r.next_update.as_ref().map(secs),
                revoked,
            )
        })
}

fn is_ca(c: &Certificate) -> bool {
    gpki_pki::cert::find_extension::<x509_cert::ext::pkix::BasicConstraints>(
        &c.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
    )
    .ok()
    .flatten()
    .is_some_and(|(_, b)| b.ca)
}

/// The http(s) URIs of a certificate's CRL distribution points.
fn distribution_points(c: &Certificate) -> Vec<String> {
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    let Ok(Some((_, dps))) =
        gpki_pki::cert::find_extension::<x509_cert::ext::pkix::CrlDistributionPoints>(
            &c.tbs_certificate,
            const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
        )
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dp in dps.0 {
        if let Some(DistributionPointName::FullName(names)) = dp.distribution_point {
            for n in names {
                if let GeneralName::UniformResourceIdentifier(u) = n {
                    let u = u.as_str().to_string();
                    if u.starts_with("http://") || u.starts_with("https://") {
                        out.push(u);
                    }
                }
            }
        }
    }
    out
}

/// A full CRL from `issuer`, verified and current at `now`.
fn parse_crl(
    der_bytes: &[u8],
    issuer: &Certificate,
    issuer_name: &[u8],
    issuer_key: [u8; 32],
    now: i64,
    skew: i64,
) -> std::result::Result<Crl, String> {
    use x509_cert::crl::CertificateList;
    use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
    let list = CertificateList::from_der(der_bytes).map_err(|e| format!("not a CRL: {e}"))?;
    let tbs = &list.tbs_cert_list;
    if tbs.issuer.to_der().map_err(|e| e.to_string())? != issuer_name {
        return Err("the CRL is not the issuer's".into());
    }
    if list.signature_algorithm != tbs.signature {
        return Err("the CRL's two signature algorithms differ".into());
    }
    let crl_sign = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::KeyUsage>(
        &issuer.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    )
    .map_err(|e| e.detail)?
    .is_none_or(|(_, ku)| ku.crl_sign());
    if !crl_sign {
        return Err("the issuer's key may not sign CRLs (no cRLSign)".into());
    }
    let outer = gpki_pki::tlv::only(der_bytes, 0x30, "CRL").map_err(|e| e.detail)?;
    let tbs_raw = gpki_pki::tlv::Reader::new(outer.value)
        .expect(0x30, "tbsCertList")
        .map_err(|e| e.detail)?
        .raw;
    let ok = gpki_pki::signer::verify_with_identifier(
        &issuer.tbs_certificate.subject_public_key_info,
        &list.signature_algorithm,
        tbs_raw,
        list.signature.raw_bytes(),
    )
    .map_err(|e| e.detail)?;
    if !ok {
        return Err("the CRL's signature is not the issuer's".into());
    }
    let this_update = gpki_pki::time::unix_seconds(&tbs.this_update);
    let next_update = tbs
        .next_update
        .as_ref()
        .map(gpki_pki::time::unix_seconds)
        .ok_or("the CRL has no nextUpdate")?;
    if this_update > now + skew {
        return Err("the CRL is not yet valid".into());
    }
    if now > next_update {
        return Err(format!(
            "the CRL is stale (nextUpdate {})",
            gpki_pki::time::rfc3339(next_update)
        ));
    }
    let mut only_ca = false;
    let mut only_user = false;
    let mut partition = None;
    for ext in tbs.crl_extensions.iter().flatten() {
        match ext.extn_id.to_string().as_str() {
            // deltaCRLIndicator: a delta alone is not a status.
            "2.5.29.27" => return Err("a delta CRL is not a full CRL".into()),
            "2.5.29.28" => {
                let idp = IssuingDistributionPoint::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| format!("issuingDistributionPoint: {e}"))?;
                if idp.indirect_crl
                    || idp.only_some_reasons.is_some()
                    || idp.only_contains_attribute_certs
                {
                    return Err("the CRL is partial (indirect, or some reasons only)".into());
                }
                only_ca = idp.only_contains_ca_certs;
                only_user = idp.only_contains_user_certs;
                use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
                match idp.distribution_point {
                    None => {}
                    Some(DistributionPointName::FullName(names)) => {
                        partition = Some(
                            names
                                .iter()
                                .filter_map(|n| match n {
                                    GeneralName::UniformResourceIdentifier(u) => {
                                        Some(u.as_str().to_string())
                                    }
                                    _ => None,
                                })
                                .collect(),
                        )
                    }
                    Some(_) => {
                        return Err(
                            "the CRL names its partition relative to the issuer; not supported"
                                .into(),
                        )
                    }
                }
            }
            _ if ext.critical => {
                return Err(format!(
                    "the CRL has an unknown critical extension {}",
                    ext.extn_id
                ))
            }
            _ => {}
        }
    }
    let mut revoked = HashMap::new();
    for entry in tbs.revoked_certificates.iter().flatten() {
        let mut reason = 0i64;
        for ext in entry.crl_entry_extensions.iter().flatten() {
            match ext.extn_id.to_string().as_str() {
                "2.5.29.21" => {
                    let r = x509_cert::ext::pkix::CrlReason::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| format!("CRL entry reason: {e}"))?;
                    reason = r as i64;
                }
                // certificateIssuer belongs to indirect CRLs, refused above.
                _ if ext.critical => {
                    return Err(format!(
                        "a CRL entry has an unknown critical extension {}",
                        ext.extn_id
                    ))
                }
                _ => {}
            }
        }
        // removeFromCRL belongs in deltas; in a full CRL it revokes nothing.
        if reason == 8 {
            continue;
        }
        revoked.insert(
            entry.serial_number.as_bytes().to_vec(),
            (
                reason_name(reason),
                gpki_pki::time::unix_seconds(&entry.revocation_date),
            ),
        );
    }
    Ok(Crl {
        issuer_key,
        partition,
        this_update,
        next_update,
        fetched_at: now,
        revoked,
        only_ca,
        only_user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpki_pki::crl::{build_tbs, encode_entry, CrlEntry, CrlHeader, CrlScope};
    use gpki_pki::{KeyType, Signer, SoftwareKey};

    /// An issuer certificate (self-signed; a CA's key usage, or digitalSignature
    /// only) and its key.
    fn issuer(cn: &str, crl_sign: bool) -> (SoftwareKey, Certificate) {
        let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key.pkey()).unwrap();
        b.set_serial_number(
            &openssl::bn::BigNum::from_u32(1)
                .unwrap()
                .to_asn1_integer()
                .unwrap(),
        )
        .unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let mut ku = openssl::x509::extension::KeyUsage::new();
        ku.critical();
        if crl_sign {
            ku.key_cert_sign().crl_sign();
        } else {
            ku.digital_signature();
        }
        let ext = ku.build().unwrap();
        b.append_extension(ext).unwrap();
        b.sign(key.pkey(), MessageDigest::sha256()).unwrap();
        let der = b.build().to_der().unwrap();
        (key, Certificate::from_der(&der).unwrap())
    }

    /// A CRL by `key` for `issuer`, listing serial 7 (keyCompromise) and serial 8
    /// (removeFromCRL), with `dp` as its issuingDistributionPoint.
    fn crl(
        key: &SoftwareKey,
        issuer: &Certificate,
        next_update: i64,
        dp: Option<&str>,
        delta: bool,
    ) -> Vec<u8> {
        let header = CrlHeader {
            issuer: issuer.tbs_certificate.subject.clone(),
            issuer_key_id: vec![1; 20],
            algorithm: key.algorithm(),
            this_update: gpki_pki::time::now() - 60,
            next_update,
            crl_number: 1,
            delta_base: delta.then_some(0),
            distribution_point: dp.map(str::to_string),
            scope: CrlScope::All,
            freshest: None,
        };
        let mut entries = encode_entry(&CrlEntry {
            serial: vec![7],
            revoked_at: 1_700_000_000,
            reason: gpki_pki::crl::RevocationReason::KeyCompromise,
            invalidity_date: None,
        })
        .unwrap();
        entries.extend(
            encode_entry(&CrlEntry {
                serial: vec![8],
                revoked_at: 1_700_000_000,
                reason: gpki_pki::crl::RevocationReason::RemoveFromCrl,
                invalidity_date: None,
            })
            .unwrap(),
        );
        let tbs = build_tbs(&header, &entries, 2).unwrap();
        gpki_pki::crl::sign(key, &tbs).unwrap()
    }

    fn parse(der: &[u8], issuer: &Certificate) -> std::result::Result<Crl, String> {
        let name = issuer.tbs_certificate.subject.to_der().unwrap();
        let key = openssl::sha::sha256(
            issuer
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        );
        parse_crl(der, issuer, &name, key, gpki_pki::time::now(), 300)
    }

    #[test]
    fn a_crl_is_taken_only_from_its_issuer_current_complete_and_with_its_partition() {
        let (key, ca) = issuer("CA", true);
        let soon = gpki_pki::time::now() + 3600;
        let url = "http://pki.test.go.kr/crl/mois.crl";
        let good = parse(&crl(&key, &ca, soon, Some(url), false), &ca).unwrap();
        assert_eq!(good.revoked.get(&vec![7u8]).unwrap().0, "keyCompromise");
        assert!(
            !good.revoked.contains_key(&vec![8u8]),
            "removeFromCRL revokes nothing"
        );
        assert_eq!(good.partition.as_deref(), Some(&[url.to_string()][..]));
        // Another CA's key, under this CA's name.
        let (other_key, _) = issuer("CA", true);
        let e = parse(&crl(&other_key, &ca, soon, None, false), &ca)
            .err()
            .unwrap();
        assert!(e.contains("not the issuer's"), "{e}");
        // Another CA's CRL.
        let (key2, ca2) = issuer("Other CA", true);
        let e = parse(&crl(&key2, &ca2, soon, None, false), &ca)
            .err()
            .unwrap();
        assert!(e.contains("not the issuer's"), "{e}");
        // Stale, a delta, an issuer without cRLSign.
        let e = parse(&crl(&key, &ca, gpki_pki::time::now() - 1, None, false), &ca)
            .err()
            .unwrap();
        assert!(e.contains("stale"), "{e}");
        let e = parse(&crl(&key, &ca, soon, None, true), &ca).err().unwrap();
        assert!(e.contains("delta"), "{e}");
        let (key3, ca3) = issuer("CA3", false);
        let e = parse(&crl(&key3, &ca3, soon, None, false), &ca3)
            .err()
            .unwrap();
        assert!(e.contains("cRLSign"), "{e}");
        // Garbage.
        assert!(parse(b"\x30\x00", &ca).is_err());
    }

    #[test]
    fn skew_is_bounded() {
        for skew in [-1, 3601] {
            let p = StatusPolicy {
                skew,
                ..StatusPolicy::default()
            };
            assert!(StatusChecker::new(p).is_err(), "{skew}");
        }
    }
}
