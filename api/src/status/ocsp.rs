//! OCSP (RFC 6960): the request with the CertID in SHA-1 as RFC 5019 clients send
//! it, the response verified as the issuer's or its delegated responder's, and its
//! single answer for the certificate read with its times.

use std::sync::atomic::Ordering;

use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspBasicResponseRef, OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse,
    OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509;
use x509_cert::Certificate;

use super::{read_limited, reason_name, Answer, Source, StatusChecker, UNKNOWN};

/// The largest OCSP response read.
const MAX_OCSP_RESPONSE: usize = 64 * 1024;

/// An OpenSSL error as the text of a refusal.
fn ossl(e: openssl::error::ErrorStack) -> String {
    e.to_string()
}

impl StatusChecker {
    /// The status of `cert` from OCSP: asked of the responder, the response
    /// verified, its answer for this certificate current; `unknown` is returned
    /// as such for the caller to refuse.
    pub(super) async fn ocsp(
        &self,
        cert: &X509,
        decoded: &Certificate,
        issuer: &X509,
        issuer_decoded: &Certificate,
        now: i64,
    ) -> std::result::Result<Answer, String> {
        let url = self.responder_url(cert)?;
        let id = || OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).map_err(ossl);
        let mut req = OcspRequest::new().map_err(ossl)?;
        req.add_id(id()?).map_err(ossl)?;
        let body = self.post(&url, req.to_der().map_err(ossl)?).await?;
        let resp = OcspResponse::from_der(&body)
            .map_err(|e| format!("{url}: not an OCSP response: {e}"))?;
        successful(&resp, &url)?;
        let basic = resp.basic().map_err(|e| format!("{url}: {e}"))?;
        signed_by_issuer_or_its_responder(&basic, issuer, &url)?;
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

    /// The responder to ask: the configured one, else the first the certificate
    /// names; only http(s).
    fn responder_url(&self, cert: &X509) -> std::result::Result<String, String> {
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
        Ok(url)
    }

    /// POSTs the DER request to `url`: the response's body, refused unless the
    /// reply is a success and at most [`MAX_OCSP_RESPONSE`] octets.
    async fn post(&self, url: &str, request: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
        let reply = self
            .client
            .post(url)
            .header("Content-Type", "application/ocsp-request")
            .body(request)
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
        Ok(body)
    }
}

/// Refuses a response whose status is not successful, naming the status (an
/// error status carries no answer to read).
fn successful(resp: &OcspResponse, url: &str) -> std::result::Result<(), String> {
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
    Ok(())
}

/// Checks that the response is signed by the issuer, or by a responder the issuer
/// certified for OCSPSigning (RFC 6960 §4.2.2.2): the issuer is the only anchor
/// here, so no other CA's responder can answer for its certificates.
fn signed_by_issuer_or_its_responder(
    basic: &OcspBasicResponseRef,
    issuer: &X509,
    url: &str,
) -> std::result::Result<(), String> {
    let mut trust = X509StoreBuilder::new().map_err(ossl)?;
    trust.add_cert(issuer.to_owned()).map_err(ossl)?;
    trust
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(ossl)?;
    let trust = trust.build();
    let none = Stack::new().map_err(ossl)?;
    basic.verify(&none, &trust, OcspFlag::empty()).map_err(|e| {
        format!("{url}: the response's signature is not the issuer's or its responder's: {e}")
    })
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
