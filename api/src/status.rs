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
    /// Until when the answer is kept; None for an OCSP answer without one (used
    /// once, never kept).
    pub next_update: Option<i64>,
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
    this_update: i64,
    next_update: i64,
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

fn reason_name(code: i64) -> String {
    RevocationReason::from_code(code)
        .map(|r| r.as_str().to_string())
        .unwrap_or_else(|| "unspecified".into())
}

impl StatusChecker {
    pub fn new(policy: StatusPolicy) -> gpki_pki::Result<StatusChecker> {
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
        let key = openssl::sha::sha256(cert_der);
        if let Some(a) = self.answers.lock().expect("status cache").get(&key) {
            if a.this_update <= now + self.policy.skew && a.next_update.is_some_and(|n| now <= n) {
                self.counters.cached.fetch_add(1, Ordering::Relaxed);
                return Ok(a.clone());
            }
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
                Ok(a) => answer = Some(a),
                Err(e) => why.push(format!("OCSP: {e}")),
            }
        }
        if answer.is_none() && self.policy.crl {
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
            answers.insert(key, answer.clone());
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
            .check_validity(self.policy.skew as u32, None)
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
            return Err(format!("{url} does not know the certificate (unknown)"));
        };
        Ok(Answer {
            status,
            revoked_at,
            source: Source::Ocsp,
            url,
            this_update,
            next_update,
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
        for url in urls {
            let cached = self.crls.lock().expect("CRL cache").get(&url).cloned();
            let crl = match cached {
                Some(c) if c.issuer_key == issuer_key && now <= c.next_update => c,
                _ => match self
                    .fetch_crl(&url, issuer, &issuer_name, issuer_key, now)
                    .await
                {
                    Ok(c) => {
                        let c = Arc::new(c);
                        self.crls
                            .lock()
                            .expect("CRL cache")
                            .insert(url.clone(), c.clone());
                        c
                    }
                    Err(e) => {
                        why.push(format!("{url}: {e}"));
                        continue;
                    }
                },
            };
            if (crl.only_ca && !is_ca) || (crl.only_user && is_ca) {
                why.push(format!(
                    "{url}: the CRL does not cover this kind of certificate"
                ));
                continue;
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
                url,
                this_update: crl.this_update,
                next_update: Some(crl.next_update),
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
    let secs = |t: &x509_ocsp::OcspGeneralizedTime| t.0.to_unix_duration().as_secs() as i64;
    basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| {
            r.cert_id.serial_number == cert.tbs_certificate.serial_number
                && r.cert_id.issuer_key_hash.as_bytes() == key_hash.as_slice()
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
            if ext.extn_id.to_string() == "2.5.29.21" {
                let r = x509_cert::ext::pkix::CrlReason::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| format!("CRL entry reason: {e}"))?;
                reason = r as i64;
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
        this_update,
        next_update,
        revoked,
        only_ca,
        only_user,
    })
}
