//! Forwarding approved requests to the CA service and recording its answer.

use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::ca_api::{CertificateReply, IssueBody, KmAsk, RenewBody, RevokeBody};
use gpki_store::{RaRequest, Transition};
use serde_json::json;

use crate::auth::{Actor, Operator};
use crate::requests::Settled;
use crate::State;

/// Forwards an approved request again, by its kind.
pub(crate) async fn retry(state: &State, op: Actor<'_>, r: RaRequest) -> Result<Settled> {
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
        "approved" => retry(state, op.actor(), r).await,
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
    retry(state, op.actor(), r).await
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
    gpki_service::failpoint::pause("ra-before-forward").await;
    let answer: Result<CertificateReply> = state.ca.post("v1/certificates", &body).await;
    settle(state, op, r, answer).await
}

pub(crate) async fn settle(
    state: &State,
    op: Actor<'_>,
    r: RaRequest,
    answer: Result<CertificateReply>,
) -> Result<Settled> {
    match answer {
        Ok(c) => {
            let ca = state.store.authority_by_name(&c.ca).await?;
            let to = if r.kind == "revoke" {
                // An operator's certificate revoked here is refused from the
                // next request on.
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
                        // The transition fails unless the store holds it, made
                        // for this request (a revocation names its target).
                        certificate: Some((
                            ca.id,
                            c.serial.clone(),
                            (r.kind != "revoke").then(|| {
                                gpki_service::ca_api::ca_request_key(
                                    &op.ra.name,
                                    &gpki_service::ca_api::ra_request_id(r.id),
                                )
                            }),
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
            // A certificate made on this call is answered as the CA sent it, with
            // the chain from the store; anything else is read back.
            let certificate = match c.certificate {
                Some(_) if to == "issued" => Some(CertificateReply {
                    chain: gpki_service::ca_api::chain_pem(
                        &state.store.authority_chain(ca.id).await?,
                    ),
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
        Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => {
            tracing::warn!(request = r.id, error = %e, "CA service did not answer; the request stays approved");
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("request {} is approved but the CA service did not answer ({}); approve it again to retry", r.id, e.detail),
            ))
        }
        Err(e) => {
            // Refused now, but the CA may have made the certificate on an earlier
            // try whose answer was lost (and scope narrowed since): the store
            // holds it under the request's key, and then the request is issued.
            if r.kind != "revoke" {
                let ca = state.store.authority_by_name(&op.ra.ca_name).await?;
                let key = gpki_service::ca_api::ca_request_key(
                    &op.ra.name,
                    &gpki_service::ca_api::ra_request_id(r.id),
                );
                if let Some(c) = state.store.certificate_by_request_key(ca.id, &key).await? {
                    // Only this request's certificate (its profile and subject),
                    // and never an enrolment the CA now refuses.
                    // A dual request is issued only with its pair: a signing
                    // certificate alone fails it, to be enrolled again.
                    let paired =
                        r.km_transport.is_none() || state.store.pair_of(c.id).await?.is_some();
                    if c.status != gpki_store::CertStatus::Pending
                        && paired
                        && r.kind != "enrol"
                        && r.profile.as_deref() == Some(c.profile.as_str())
                        && r.subject
                            .as_deref()
                            .map(|s| {
                                gpki_pki::name::parse(s).map(|n| gpki_pki::name::to_string(&n))
                            })
                            .transpose()?
                            .as_deref()
                            == Some(c.subject.as_str())
                    {
                        let reply = CertificateReply::of(&ca.name, &c).replayed();
                        tracing::warn!(request = r.id, error = %e, serial = %c.serial, "the CA refused a retry of a request it had already signed; recording that certificate");
                        return Box::pin(settle(state, op, r, Ok(reply))).await;
                    }
                }
            }
            state
                .store
                .transition(
                    &r,
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
            Err(e)
        }
    }
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
    // request is done, and answered with the certificate as it stands.
    let answer = match answer {
        Err(e) if matches!(e.reason(), Some(gpki_pki::Reason::AlreadyRevoked { .. })) => {
            let c = state
                .store
                .certificate_by_id(r.target_cert_id.unwrap_or_default())
                .await?;
            let ca = state.store.authority(c.issuer_id).await?;
            Ok(CertificateReply {
                certificate: None,
                ..CertificateReply::of(&ca.name, &c).replayed()
            })
        }
        other => other,
    };
    settle(state, op, r, answer).await
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
