//! A certificate's revocation status: OCSP first (RFC 6960, the CertID in SHA-1
//! as RFC 5019 clients send it), the CRL of its distribution point when OCSP
//! gives no usable answer. Every answer is verified (the OCSP response by the
//! issuer or a responder it delegated to; the CRL by the issuer) and is kept
//! until its nextUpdate, never past it. Unknown is not good: when neither source
//! answers, the status is an error and the caller refuses.
//!
//! Delta CRLs are not read: a certificate revoked since the full CRL is seen
//! by OCSP, or at the next full CRL.
//!
//! Here the policy and the order of the sources; `ocsp` asks a responder and
//! verifies its answer, `crl` fetches, verifies and reads CRLs, `cache` keeps
//! answers and lets one fetch at a time run per certificate or CRL.

mod cache;
mod crl;
mod ocsp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use der::Decode;
use gpki_pki::crl::RevocationReason;
use openssl::x509::X509;
use serde::Serialize;
use x509_cert::Certificate;

use crl::Crl;

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

/// A revocation reason code's name (RFC 5280 §5.3.1); `unspecified` for a code
/// without one.
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
        let answer = Arc::new(
            self.ask(cert, &decoded, issuer, &issuer_decoded, now)
                .await?,
        );
        self.keep(key, &answer);
        Ok(answer)
    }

    /// Asks OCSP, then the CRL where it may stand in for OCSP: the first usable
    /// answer, or why there is none. OCSP's `unknown` refuses at once (it is not
    /// good, and the CRL may not judge what the responder does not know).
    async fn ask(
        &self,
        cert: &X509,
        decoded: &Certificate,
        issuer: &X509,
        issuer_decoded: &Certificate,
        now: i64,
    ) -> std::result::Result<Answer, String> {
        let mut why = Vec::new();
        let mut answer = None;
        if self.policy.ocsp {
            match self.ocsp(cert, decoded, issuer, issuer_decoded, now).await {
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
        let crl_may_answer = self.crl_may_answer(cert, decoded);
        if answer.is_none() && self.policy.crl && !crl_may_answer {
            why.push(
                "CRL: not asked, since the responder the certificate names did not answer \
                 (configure ocsp_url to fall back to CRLs during a responder outage)"
                    .into(),
            );
        }
        if answer.is_none() && crl_may_answer {
            match self.crl(decoded, issuer_decoded, now).await {
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
        Ok(answer)
    }

    /// Whether the CRL may answer for this certificate when OCSP did not.
    ///
    /// The CRL answers for an OCSP failure only where the responder asked was
    /// one this relying party configured (`ocsp_url`): a responder named by
    /// an end entity's own AIA is the certificate's word, and one made with
    /// the CA's key outside its records would name an unreachable one (or
    /// none) to be judged by a CRL that cannot list it. A CA certificate that
    /// names no responder is its issuer's ARL's to judge (a subordinate of the
    /// offline root; forging one needs the root's key).
    fn crl_may_answer(&self, cert: &X509, decoded: &Certificate) -> bool {
        let names_none = cert.ocsp_responders().map(|r| r.is_empty()).unwrap_or(true);
        self.policy.crl
            && (!self.policy.ocsp
                || self.policy.ocsp_url.is_some()
                || (is_ca(decoded) && names_none))
    }
}

/// Whether the certificate is a CA's (basicConstraints cA).
fn is_ca(c: &Certificate) -> bool {
    gpki_pki::cert::find_extension::<x509_cert::ext::pkix::BasicConstraints>(
        &c.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
    )
    .ok()
    .flatten()
    .is_some_and(|(_, b)| b.ca)
}

#[cfg(test)]
mod tests {
    use super::*;

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
