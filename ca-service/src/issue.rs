//! `POST /v1/certificates`: issuance for an RA, idempotent by the RA's request id.

use gpki_pki::{Error, ErrorKind, Reason, Result};
use gpki_service::api::parse;
use gpki_service::ca_api::{CertificateReply, IssueBody};
use gpki_service::mtls::Caller;
use gpki_store::{AuditEvent, CertStatus, CertificateRecord, RaRecord};
use hyper::StatusCode;

use gpki_ca::{Ca, IssueRequest, Issued, KeySource};

use crate::clients::{authorize_ra, request_key};
use crate::km::{km_asked, km_for};
use crate::State;

pub(crate) async fn reply_for(
    ca: &Ca,
    ca_name: &str,
    record: &CertificateRecord,
    der: Option<&[u8]>,
    replayed: bool,
) -> Result<CertificateReply> {
    let chain = gpki_service::ca_api::chain_pem(&ca.chain(ca_name).await?);
    Ok(CertificateReply {
        certificate: der.map(|d| gpki_pki::pem::encode("CERTIFICATE", d)),
        replayed,
        ..CertificateReply::of(ca_name, record).with_chain(chain)
    })
}

/// The certificate an earlier call with `key` made, when there is one: a
/// replay is answered with it, never with a second certificate.
/// `same` says whether the recorded certificate answers this very request; a
/// request id reused for another request is a conflict. With `signed_only`, a
/// record not yet signed is no answer and is left as it is (the caller answers
/// with its own refusal).
pub(crate) async fn replayed(
    state: &State,
    ra: &RaRecord,
    key: &str,
    same: impl Fn(&CertificateRecord) -> Result<bool>,
    signed_only: bool,
) -> Result<Option<(StatusCode, CertificateReply)>> {
    let issuer = state.store.authority_by_name(&ra.ca_name).await?;
    let found = state
        .store
        .certificate_by_request_key(issuer.id, key)
        .await?;
    // A record that cannot be compared (its TBS no longer decodes) is the
    // store's fault, not the caller's: an internal error, not a conflict.
    let same = match &found {
        Some(r) if !(signed_only && r.status == CertStatus::Pending) => same(r)?,
        _ => true,
    };
    match found {
        None => Ok(None),
        Some(r) if signed_only && r.status == CertStatus::Pending => Ok(None),
        Some(r) if !same => Err(Error::conflict(format!(
            "request `{key}` was made for another request (certificate {}); a request id names one request",
            r.serial
        ))
        .because(Reason::RequestKeyReused {
            key: key.to_string(),
            serial: r.serial,
        })),
        // Recorded but never signed: the CA stopped between the two steps (record
        // before sign). Past the stale age no live signer holds it, so it is
        // abandoned (its serial stays reserved, unsigned) and the request is
        // issued afresh.
        Some(r)
            if r.status == CertStatus::Pending
                && gpki_pki::time::now() - r.created_at >= state.config.stale_pending_secs =>
        {
            let event = AuditEvent::new(
                &format!("ra:{}", ra.name),
                "cert.abandon",
                format!("cert:{}/{}", ra.ca_name, r.serial),
                serde_json::json!({ "reason": "pending past the stale age: the CA stopped before signing; issued afresh", "request_key": key }),
            );
            if state.store.abandon(r.id, &event).await? {
                Ok(None)
            } else {
                // Signed or abandoned by another call meanwhile: the next ask
                // finds out which.
                Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("request `{key}` is being settled; ask again"),
                ))
            }
        }
        Some(r) if r.status == CertStatus::Pending => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "request `{key}` is being signed (serial {}); ask again shortly",
                r.serial
            ),
        )),
        Some(r) => {
            let der = r.der.clone();
            Ok(Some((
                StatusCode::OK,
                reply_for(&state.ca, &ra.ca_name, &r, der.as_deref(), true).await?,
            )))
        }
    }
}

pub(crate) async fn finish(
    state: &State,
    ra: &RaRecord,
    key: &str,
    result: Result<Issued>,
    same: impl Fn(&CertificateRecord) -> Result<bool>,
) -> Result<(StatusCode, CertificateReply)> {
    match result {
        Ok(issued) => Ok((
            StatusCode::CREATED,
            reply_for(
                &state.ca,
                &ra.ca_name,
                &issued.record,
                Some(&issued.der),
                false,
            )
            .await?,
        )),
        // A concurrent call with the same key recorded first.
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            match replayed(state, ra, key, same, false).await? {
                Some(r) => Ok(r),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// SANs as a sorted set of their text forms.
pub(crate) fn san_set(sans: &[gpki_pki::cert::SanEntry]) -> Vec<String> {
    let mut v: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

pub(crate) async fn issue(
    state: &State,
    who: &Caller,
    body: &[u8],
) -> Result<(StatusCode, CertificateReply)> {
    let b: IssueBody = parse(body)?;
    let ra = authorize_ra(state, who, &b.ra).await?;
    ra.check_scope(&b.profile, &b.subject)?;
    ra.check_sans(&b.sans)?;
    let km = km_asked(state, &ra, &b.profile, &b.subject, b.km.as_ref()).await?;
    let key = request_key(&ra, &b.request_id)?;
    let (status, mut reply) = issue_one(state, &ra, &key, b).await?;
    if let Some(km) = km {
        reply.km = Some(Box::new(
            km_for(state, &ra, &key, &reply.serial, km, None).await?,
        ));
    }
    Ok((status, reply))
}

pub(crate) async fn issue_one(
    state: &State,
    ra: &RaRecord,
    key: &str,
    b: IssueBody,
) -> Result<(StatusCode, CertificateReply)> {
    let (ra, key) = (ra.clone(), key.to_string());
    let csr = gpki_pki::csr::parse_and_verify(b.csr.as_bytes())?;
    gpki_pki::csr::check_requested_sans(&csr, &b.sans)?;
    let spki_sha256 = hex::encode(openssl::sha::sha256(csr.spki_der()));
    let subject = gpki_pki::name::to_string(&gpki_pki::name::parse(&b.subject)?);
    let sans: Vec<gpki_pki::cert::SanEntry> = b
        .sans
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<_>>>()?;
    // The certificate's SANs are the request's (a CSR names no others: checked
    // above), as a set.
    let asked = san_set(&sans);
    let same = |c: &CertificateRecord| -> Result<bool> {
        if c.profile != b.profile || c.subject != subject || c.spki_sha256 != spki_sha256 {
            return Ok(false);
        }
        let made = <x509_cert::certificate::TbsCertificate as der::Decode>::from_der(&c.tbs)
            .map_err(Error::from)
            .and_then(|tbs| gpki_pki::cert::san_entries(&tbs))
            .map_err(|e| {
                Error::internal(format!(
                    "certificate {} in the store cannot be read ({}); the request is not answered",
                    c.serial, e.detail
                ))
            })?;
        Ok(san_set(&made) == asked)
    };
    let ca = state.ca.acting_as(format!("ra:{}", ra.name));
    let request = IssueRequest {
        ca: ra.ca_name.clone(),
        profile: b.profile.clone(),
        subject: Some(b.subject.clone()),
        key: KeySource::Verified(csr),
        sans,
        validity_days: b.validity_days,
        request_key: Some(key.clone()),
        renewed_from: None,
    };
    // The key is recorded with the certificate, before it is signed, under a
    // unique index: a replay is refused at recording (nothing is signed) and
    // answered with what the first call made, so the store is not asked first.
    let result = ca.issue(&request).await;
    match &result {
        // A replay: answered with what the first call made, or (a record
        // abandoned past the stale age) issued afresh, once.
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            return match replayed(state, &ra, &key, same, false).await? {
                Some(r) => Ok(r),
                None => finish(state, &ra, &key, ca.issue(&request).await, same).await,
            };
        }
        // Refused for another reason (the CA put on hold or a profile changed
        // since the first call was signed): a certificate signed for the key
        // is still the answer; a record not signed (this call's own, say) is
        // not, and the refusal stands.
        Err(_) => {
            if let Some(r) = replayed(state, &ra, &key, same, true).await? {
                return Ok(r);
            }
        }
        Ok(_) => {}
    }
    finish(state, &ra, &key, result, same).await
}
