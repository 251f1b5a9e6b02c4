//! Forwarding approved requests to the CA service and recording its answer.

use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::ca_api::{CertificateReply, IssueBody, KmAsk, RenewBody, RevokeBody};
use gpki_store::{RaRequest, Transition};
use serde_json::json;

use crate::auth::{Actor, Operator};
use crate::requests::Settled;
use crate::State;

/// Sends an approved request to the CA by its kind (issue, enrol, revoke,
/// renew): its first send once approved, and every send again after the CA did
/// not answer.
pub(crate) async fn send_by_kind(state: &State, op: Actor<'_>, r: RaRequest) -> Result<Settled> {
    let target = match r.target_cert_id {
        Some(id) => Some(state.store.certificate_by_id(id).await?),
        None => None,
    };
    match (r.kind.as_str(), target) {
        ("issue" | "enrol", _) => forward(state, op, r).await,
        ("revoke", Some(c)) => {
            let reason = gpki_pki::crl::RevocationReason::from_code(r.reason.unwrap_or(-1))
                .ok_or_else(|| Error::internal(format!("request {} has no reason", r.id)))?;
            forward_revocation(state, op, r, &c.serial, reason.as_str()).await
        }
        ("renew", Some(c)) => forward_renewal(state, op, r, &c.serial).await,
        (kind, _) => Err(Error::internal(format!(
            "request {} of kind {kind} has no certificate to act on",
            r.id
        ))),
    }
}

/// A request its submitter may decide alone (revocation, renewal with the same
/// key, an administrator's enrolment): approved by them and forwarded, or
/// forwarded again when the CA did not answer the first time.
pub(crate) async fn decide_alone(state: &State, op: &Operator, r: RaRequest) -> Result<Settled> {
    match r.status.as_str() {
        "submitted" => approve_and_forward(state, op, r).await,
        "approved" => send_by_kind(state, op.actor(), r).await,
        _ => Ok(r.into()),
    }
}

pub(crate) async fn approve_and_forward(
    state: &State,
    op: &Operator,
    r: RaRequest,
) -> Result<Settled> {
    let r = state
        .store
        .transition(
            &r,
            &Transition {
                from: &["submitted"],
                to: "approved",
                approved_by: Some(op.record.id),
                ..Default::default()
            },
            &op.event(
                "ra.request.approve",
                format!("ra-request:{}", r.id),
                json!({}),
            ),
        )
        .await?;
    send_by_kind(state, op.actor(), r).await
}

/// Sends an approved request to the CA service and records the answer. A CA
/// that cannot be reached leaves the request approved, to be asked again; a
/// refusal fails it.
pub(crate) async fn forward(state: &State, op: Actor<'_>, r: RaRequest) -> Result<Settled> {
    let body = IssueBody {
        ra: op.ra.name.clone(),
        request_id: gpki_service::ca_api::ra_request_id(r.id),
        profile: r.profile.clone().unwrap_or_default(),
        subject: r.subject.clone().unwrap_or_default(),
        csr: String::from_utf8(r.csr.clone().unwrap_or_default())
            .map_err(|_| Error::internal("stored CSR is not UTF-8"))?,
        sans: r.sans.clone(),
        validity_days: None,
        km: r.km_transport.clone().map(|transport| KmAsk { transport }),
    };
    gpki_store::failpoint::pause("ra-before-forward").await;
    let answer: Result<CertificateReply> = state.ca.post("v1/certificates", &body).await;
    settle(state, op, r, answer).await
}

/// Records the CA's answer to an approved request: done, still approved (the CA
/// did not answer), or failed; a refusal of a request the CA had in fact signed
/// on an earlier try is recorded as done.
pub(crate) async fn settle(
    state: &State,
    op: Actor<'_>,
    r: RaRequest,
    answer: Result<CertificateReply>,
) -> Result<Settled> {
    match answer {
        Ok(c) => record_done(state, op, r, c).await,
        Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => {
            tracing::warn!(request = r.id, error = %e, "CA service did not answer; the request stays approved");
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("request {} is approved but the CA service did not answer ({}); approve it again to retry", r.id, e.detail),
            ))
        }
        Err(e) => {
            if let Some(made) = made_earlier(state, op, &r).await? {
                tracing::warn!(request = r.id, error = %e, serial = %made.serial, "the CA refused a retry of a request it had already signed; recording that certificate");
                return Box::pin(settle(state, op, r, Ok(made))).await;
            }
            record_failed(state, op, &r, &e).await?;
            Err(e)
        }
    }
}

/// Moves the request to `issued` (or `revoked`) with the certificate the CA
/// answered, which the store must hold for this request.
async fn record_done(
    state: &State,
    op: Actor<'_>,
    r: RaRequest,
    c: CertificateReply,
) -> Result<Settled> {
    let ca = state.store.authority_by_name(&c.ca).await?;
    let to = if r.kind == "revoke" {
        // An operator's certificate revoked here is refused from the next
        // request on.
        state.operators.clear();
        "revoked"
    } else {
        "issued"
    };
    let request = state
        .store
        .transition(
            &r,
            &Transition {
                from: &["approved"],
                to,
                // The transition fails unless the store holds it, made for this
                // request (a revocation names its target).
                certificate: Some((
                    ca.id,
                    c.serial.clone(),
                    (r.kind != "revoke").then(|| ca_key_of(op, &r)),
                )),
                ..Default::default()
            },
            &op.event(
                &format!("ra.request.{to}"),
                format!("ra-request:{}", r.id),
                json!({ "ca": c.ca, "serial": c.serial }),
            ),
        )
        .await?;
    // A certificate made on this call is answered as the CA sent it, with the
    // chain from the store; anything else is read back.
    let certificate = match c.certificate {
        Some(_) if to == "issued" => Some(CertificateReply {
            chain: gpki_service::ca_api::chain_pem(&state.store.authority_chain(ca.id).await?),
            replayed: false,
            ..c
        }),
        _ => None,
    };
    Ok(Settled {
        request,
        certificate,
    })
}

/// The key under which the CA records what it makes for request `r`.
fn ca_key_of(op: Actor<'_>, r: &RaRequest) -> String {
    gpki_service::ca_api::ca_request_key(&op.ra.name, &gpki_service::ca_api::ra_request_id(r.id))
}

/// The certificate the CA made for `r` on an earlier try whose answer was lost
/// (and which it refuses now, its scope narrowed since), when the store holds
/// one that is this request's: its profile and subject, signed, with its pair
/// for a dual request, and never for an enrolment the CA now refuses.
async fn made_earlier(
    state: &State,
    op: Actor<'_>,
    r: &RaRequest,
) -> Result<Option<CertificateReply>> {
    if matches!(r.kind.as_str(), "revoke" | "enrol") {
        return Ok(None);
    }
    let ca = state.store.authority_by_name(&op.ra.ca_name).await?;
    let Some(c) = state
        .store
        .certificate_by_request_key(ca.id, &ca_key_of(op, r))
        .await?
    else {
        return Ok(None);
    };
    // A dual request is issued only with its pair: a signing certificate alone
    // fails it, to be enrolled again.
    let paired = r.km_transport.is_none() || state.store.pair_of(c.id).await?.is_some();
    let subject = r
        .subject
        .as_deref()
        .map(|s| gpki_pki::name::parse(s).map(|n| gpki_pki::name::to_string(&n)))
        .transpose()?;
    let this_request = c.status != gpki_store::CertStatus::Pending
        && paired
        && r.profile.as_deref() == Some(c.profile.as_str())
        && subject.as_deref() == Some(c.subject.as_str());
    Ok(this_request.then(|| CertificateReply::of(&ca.name, &c).replayed()))
}

/// Moves the request to `failed`, noting the CA's refusal.
async fn record_failed(state: &State, op: Actor<'_>, r: &RaRequest, e: &Error) -> Result<()> {
    state
        .store
        .transition(
            r,
            &Transition {
                from: &["approved"],
                to: "failed",
                note: Some(format!("{}: {}", e.kind, e.detail)),
                ..Default::default()
            },
            &op.event(
                "ra.request.fail",
                format!("ra-request:{}", r.id),
                json!({ "kind": e.kind, "detail": e.detail }),
            ),
        )
        .await?;
    Ok(())
}

pub(crate) async fn forward_revocation(
    state: &State,
    op: Actor<'_>,
    r: RaRequest,
    serial: &str,
    reason: &str,
) -> Result<Settled> {
    let answer: Result<CertificateReply> = state
        .ca
        .post(
            "v1/certificates/revoke",
            &RevokeBody {
                ra: op.ra.name.clone(),
                serial: serial.to_string(),
                reason: reason.to_string(),
                invalidity_date: None,
            },
        )
        .await;
    // Revoking what is revoked already is a conflict at the CA; for the RA the
    // request is done, answered with the certificate as it stands, once the
    // store shows it revoked: the CA's word alone records no revocation.
    let answer = match answer {
        Err(e) if matches!(e.reason(), Some(gpki_pki::Reason::AlreadyRevoked { .. })) => {
            let c = state
                .store
                .certificate_by_id(r.target_cert_id.unwrap_or_default())
                .await?;
            if revoked_as_told(&e, &c, serial) {
                let ca = state.store.authority(c.issuer_id).await?;
                Ok(CertificateReply {
                    certificate: None,
                    ..CertificateReply::of(&ca.name, &c).replayed()
                })
            } else {
                Err(e)
            }
        }
        other => other,
    };
    settle(state, op, r, answer).await
}

/// Whether the CA's "already revoked" `e` is borne out by the store: it names
/// the serial asked for, and that certificate's row is revoked.
fn revoked_as_told(e: &Error, c: &gpki_store::CertificateRecord, serial: &str) -> bool {
    matches!(e.reason(), Some(gpki_pki::Reason::AlreadyRevoked { serial: s }) if s == serial)
        && c.serial == serial
        && c.status == gpki_store::CertStatus::Revoked
}

pub(crate) async fn forward_renewal(
    state: &State,
    op: Actor<'_>,
    r: RaRequest,
    serial: &str,
) -> Result<Settled> {
    let csr = match &r.csr {
        Some(c) => Some(
            String::from_utf8(c.clone()).map_err(|_| Error::internal("stored CSR is not UTF-8"))?,
        ),
        None => None,
    };
    let answer = state
        .ca
        .post(
            "v1/certificates/renew",
            &RenewBody {
                ra: op.ra.name.clone(),
                request_id: gpki_service::ca_api::ra_request_id(r.id),
                serial: serial.to_string(),
                csr,
                km: r.km_transport.clone().map(|transport| KmAsk { transport }),
            },
        )
        .await;
    settle(state, op, r, answer).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpki_store::{CertStatus, CertificateRecord};

    fn record(serial: &str, status: CertStatus) -> CertificateRecord {
        CertificateRecord {
            id: 1,
            issuer_id: 1,
            serial: serial.into(),
            subject: "CN=x".into(),
            profile: "official-sign".into(),
            status,
            not_before: 0,
            not_after: 1,
            revoked_at: None,
            reason: None,
            invalidity_date: None,
            spki_sha256: String::new(),
            der: None,
            renewed_from: None,
            request_key: None,
            tbs: Vec::new(),
            revocation_seq: None,
            created_at: 0,
        }
    }

    /// The CA saying "already revoked" is believed only when the store agrees:
    /// the serial asked for, revoked in its row. A CA answering so for a
    /// certificate in force, or for another serial, fails the request.
    #[test]
    fn already_revoked_is_taken_only_when_the_store_shows_it() {
        let told = |s: &str| {
            Error::conflict("already revoked")
                .because(gpki_pki::Reason::AlreadyRevoked { serial: s.into() })
        };
        assert!(revoked_as_told(
            &told("0a"),
            &record("0a", CertStatus::Revoked),
            "0a"
        ));
        assert!(!revoked_as_told(
            &told("0a"),
            &record("0a", CertStatus::Issued),
            "0a"
        ));
        assert!(!revoked_as_told(
            &told("0a"),
            &record("0a", CertStatus::Hold),
            "0a"
        ));
        assert!(!revoked_as_told(
            &told("0b"),
            &record("0a", CertStatus::Revoked),
            "0a"
        ));
        assert!(!revoked_as_told(
            &told("0a"),
            &record("0b", CertStatus::Revoked),
            "0a"
        ));
        let other = Error::conflict("certificate 0a was never signed (abandoned)").because(
            gpki_pki::Reason::Abandoned {
                serial: "0a".into(),
            },
        );
        assert!(!revoked_as_told(
            &other,
            &record("0a", CertStatus::Revoked),
            "0a"
        ));
    }
}
