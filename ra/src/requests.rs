//! The request book's routes: submission, listing, identity verification,
//! approval, rejection and revocation, and the replies they answer.

use gpki_pki::{Error, Result};
use gpki_service::api::parse;
use gpki_service::ca_api::{CertificateReply, PairReply};
use gpki_store::{IdentityRecord, NewRequest, RaRequest, RequestBook, Transition};
use hyper::StatusCode;
use serde_json::json;

use crate::auth::{require_admin, require_admin_for, Operator};
use crate::decide::{decide, Ask, Decision, Wait};
use crate::forward::{approve_and_forward, decide_alone, forward, send_by_kind};
use crate::operators::finish_enrolment;
use crate::{Identity, RejectBody, RequestReply, RevocationBody, State, SubmitBody};

pub(crate) type Reply = Result<(StatusCode, serde_json::Value)>;

pub(crate) fn sha256_hex(parts: &[&str]) -> String {
    let mut h = openssl::sha::Sha256::new();
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finish())
}

pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > 100
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(Error::malformed(
            "idempotency_key must be 1 to 100 characters of A-Z a-z 0-9 - _ . :",
        ));
    }
    Ok(())
}

pub(crate) fn identity_record(op: &Operator, i: &Identity) -> Result<IdentityRecord> {
    if !matches!(i.method.as_str(), "face-to-face" | "contact-free") {
        return Err(Error::malformed(format!(
            "identity method `{}`: expected face-to-face or contact-free",
            i.method
        )));
    }
    if i.document.trim().is_empty() || i.document.len() > 200 {
        return Err(Error::malformed(
            "identity document must name the document seen (1 to 200 characters)",
        ));
    }
    Ok(IdentityRecord {
        method: i.method.clone(),
        document: i.document.clone(),
        operator_id: op.record.id,
        verified_at: gpki_pki::time::now(),
    })
}

/// What `submit_request` said of a request: made now, or found (a replay), and
/// whether it had been answered before this call carried it on.
#[derive(Clone, Copy)]
pub(crate) struct Recorded {
    pub(crate) created: bool,
    pub(crate) answered_before: bool,
}

impl Recorded {
    pub(crate) fn of(r: &RaRequest, created: bool) -> Recorded {
        Recorded {
            created,
            answered_before: !created && !matches!(r.status.as_str(), "submitted" | "approved"),
        }
    }

    pub(crate) fn status(self) -> StatusCode {
        if self.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    }

    /// The reply for `s` as it stands after this call.
    pub(crate) async fn reply(self, state: &State, s: &Settled) -> Reply {
        Ok((self.status(), reply(state, s, self.answered_before).await?))
    }
}

/// A request as it stands after a call, with the certificate the CA answered
/// on this call (the reply then need not read it back).
pub(crate) struct Settled {
    pub(crate) request: RaRequest,
    pub(crate) certificate: Option<CertificateReply>,
}

impl From<RaRequest> for Settled {
    fn from(request: RaRequest) -> Settled {
        Settled {
            request,
            certificate: None,
        }
    }
}

/// The other certificate of `cert_id`'s pair, as it stands.
pub(crate) async fn pair_reply(store: &RequestBook, cert_id: i64) -> Result<Option<PairReply>> {
    Ok(match store.pair_of(cert_id).await? {
        Some(id) => {
            let p = store.certificate_by_id(id).await?;
            Some(PairReply {
                serial: p.serial,
                profile: p.profile,
                status: p.status.to_string(),
            })
        }
        None => None,
    })
}

pub(crate) async fn reply(state: &State, s: &Settled, replayed: bool) -> Result<serde_json::Value> {
    let r = &s.request;
    let certificate = match (&s.certificate, r.cert_id) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(id)) => {
            let c = state.store.certificate_by_id(id).await?;
            let ca = state.store.authority(c.issuer_id).await?;
            Some(CertificateReply {
                pair: pair_reply(&state.store, c.id).await?,
                ..CertificateReply::of(&ca.name, &c).with_chain(gpki_service::ca_api::chain_pem(
                    &state.store.authority_chain(c.issuer_id).await?,
                ))
            })
        }
        (None, None) => None,
    };
    let waiting_for = if r.status == "submitted" {
        decide(
            &state.store.ra(r.ra_id).await?,
            &state.profiles,
            &Ask::of(r),
            gpki_pki::time::now(),
        )?
        .waits()?
        .to_vec()
    } else {
        Vec::new()
    };
    Ok(serde_json::to_value(RequestReply {
        request: serde_json::to_value(r).expect("JSON of a request"),
        certificate,
        replayed,
        waiting_for,
    })
    .expect("JSON of a reply"))
}

pub(crate) async fn submit(state: &State, op: &Operator, body: &[u8]) -> Reply {
    let b: SubmitBody = parse(body)?;
    check_key(&b.idempotency_key)?;
    let profile = state.profiles.get(&b.profile)?;
    if b.profile == "ra-operator" {
        // Operator certificates are the RA's membership: administrators enrol.
        return Err(Error::unauthorized(
            "ra-operator certificates are enrolled by administrators (POST /v1/operators)",
        ));
    }
    op.ra.check_scope(&b.profile, &b.subject)?;
    op.ra.check_sans(&b.sans)?;
    // Refuse a CSR that does not verify, names SANs the request does not, or has
    // a key the profile does not take, before anything is recorded.
    let csr = gpki_pki::csr::parse_and_verify(b.csr.as_bytes())?;
    gpki_pki::csr::check_requested_sans(&csr, &b.sans)?;
    profile.allows_key(gpki_pki::KeyType::of_spki(csr.spki_der())?)?;
    if let Some(t) = &b.km_transport {
        // The km certificate is the RA's request too: its profile in scope.
        if b.profile != gpki_service::ca_api::SIGN_PROFILE {
            return Err(Error::policy(format!(
                "a km certificate pairs with an {} certificate, not {}",
                gpki_service::ca_api::SIGN_PROFILE,
                b.profile
            )));
        }
        op.ra
            .check_scope(gpki_service::ca_api::KM_PROFILE, &b.subject)?;
        gpki_service::ca_api::check_transport(t)?;
    }
    let identity = b
        .identity
        .as_ref()
        .map(|i| identity_record(op, i))
        .transpose()?;
    let body_sha256 = sha256_hex(&[
        "issue",
        &b.profile,
        &b.subject,
        &b.csr,
        &b.sans.join("\n"),
        b.km_transport.as_deref().unwrap_or(""),
    ]);
    // One operator may decide alone (no dual control, no identity check missing):
    // the submission is the approval, recorded as one.
    let ask = Ask {
        kind: "issue",
        profile: &b.profile,
        km: b.km_transport.is_some(),
        new_key: true,
        identity_seen: identity.is_some(),
        renews: None,
    };
    let alone = decide(&op.ra, &state.profiles, &ask, gpki_pki::time::now())? == Decision::Alone;
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                profile: Some(b.profile.clone()),
                subject: Some(b.subject.clone()),
                csr: Some(b.csr.clone().into_bytes()),
                sans: b.sans.clone(),
                submitted_by: Some(op.record.id),
                approved_by: alone.then_some(op.record.id),
                km_transport: b.km_transport.clone(),
                ..NewRequest::new(op.ra.id, &b.idempotency_key, "issue", body_sha256)
            },
            identity.as_ref(),
            &op.event(
                "ra.request.submit",
                "ra-request",
                json!({ "ra": op.ra.name, "profile": b.profile, "subject": b.subject, "key": b.idempotency_key, "identity": identity, "decided_alone": alone }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = if r.status == "submitted"
        && decide(&op.ra, &state.profiles, &Ask::of(&r), gpki_pki::time::now())? == Decision::Alone
    {
        approve_and_forward(state, op, r).await?
    } else if r.status == "approved" {
        // Decided alone at submission, or a replay of a request the CA did not
        // answer: ask the CA.
        forward(state, op.actor(), r).await?
    } else {
        r.into()
    };
    recorded.reply(state, &s).await
}

pub(crate) async fn own_request(state: &State, op: &Operator, id: i64) -> Result<RaRequest> {
    let r = state.store.request(id).await?;
    if r.ra_id != op.ra.id {
        // Another RA's request is not this operator's to see or decide.
        return Err(Error::not_found(format!("no request {id}")));
    }
    Ok(r)
}

pub(crate) async fn show(state: &State, op: &Operator, id: i64) -> Reply {
    let r = own_request(state, op, id).await?;
    Ok((StatusCode::OK, reply(state, &r.into(), false).await?))
}

pub(crate) async fn list(state: &State, op: &Operator, query: &str) -> Reply {
    let mut status = None;
    let mut limit = 100i64;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("status", s)) => status = Some(s.to_string()),
            Some(("limit", n)) => {
                limit = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| Error::malformed("limit must be 1 to 10000"))?
            }
            _ => {
                return Err(Error::malformed(format!(
                    "unknown query parameter `{pair}`"
                )))
            }
        }
    }
    let rows = state
        .store
        .requests(op.ra.id, status.as_deref(), limit)
        .await?;
    Ok((StatusCode::OK, json!({ "requests": rows })))
}

pub(crate) async fn identity(state: &State, op: &Operator, id: i64, body: &[u8]) -> Reply {
    let b: Identity = parse(body)?;
    require_admin_for(op, &own_request(state, op, id).await?)?;
    let v = identity_record(op, &b)?;
    let r = state
        .store
        .verify_identity(
            id,
            &v,
            &op.event(
                "ra.request.identity",
                format!("ra-request:{id}"),
                json!({ "method": v.method, "document": v.document }),
            ),
        )
        .await?;
    Ok((StatusCode::OK, reply(state, &r.into(), false).await?))
}

pub(crate) async fn approve(state: &State, op: &Operator, id: i64) -> Reply {
    let r = own_request(state, op, id).await?;
    require_admin_for(op, &r)?;
    let s = match r.status.as_str() {
        "submitted" => {
            let profile = r.profile.clone().unwrap_or_default();
            let decision = decide(&op.ra, &state.profiles, &Ask::of(&r), gpki_pki::time::now())?;
            let waits = decision.waits()?;
            let what = if r.km_transport.is_some() {
                format!(
                    "{profile} with its {} pair",
                    gpki_service::ca_api::KM_PROFILE
                )
            } else {
                format!("profile {profile}")
            };
            if waits.contains(&Wait::SecondOperator) && r.submitted_by == Some(op.record.id) {
                return Err(Error::unauthorized(format!(
                    "{what} is under dual control: request {id} must be approved by an operator other than its submitter"
                )));
            }
            if waits.contains(&Wait::Identity) {
                return Err(Error::policy(format!(
                    "{what} requires an identity verification before approval (POST /v1/requests/{id}/identity)"
                )));
            }
            approve_and_forward(state, op, r).await?
        }
        // Approved, but the CA did not answer: ask again, as what it is.
        "approved" => send_by_kind(state, op.actor(), r).await?,
        // Issued, but the operator not made (a crash in between): make it.
        "issued" if r.kind == "enrol" => r.into(),
        s => {
            return Err(Error::conflict(format!(
                "request {id} is {s}; only submitted requests are approved"
            )))
        }
    };
    let mut v = reply(state, &s, false).await?;
    let r = &s.request;
    if r.kind == "enrol" && r.status == "issued" {
        v["operator"] = serde_json::to_value(finish_enrolment(state, op, r).await?).expect("JSON");
    }
    Ok((StatusCode::OK, v))
}

pub(crate) async fn reject(state: &State, op: &Operator, id: i64, body: &[u8]) -> Reply {
    let b: RejectBody = parse(body)?;
    let r = own_request(state, op, id).await?;
    require_admin_for(op, &r)?;
    let r = state
        .store
        .transition(
            &r,
            &Transition {
                from: &["submitted"],
                to: "rejected",
                decided_by: Some(op.record.id),
                note: Some(b.reason.clone()),
                ..Default::default()
            },
            &op.event(
                "ra.request.reject",
                format!("ra-request:{id}"),
                json!({ "reason": b.reason }),
            ),
        )
        .await?;
    Ok((StatusCode::OK, reply(state, &r.into(), false).await?))
}

pub(crate) async fn revoke(state: &State, op: &Operator, body: &[u8]) -> Reply {
    let b: RevocationBody = parse(body)?;
    check_key(&b.idempotency_key)?;
    let reason: gpki_pki::crl::RevocationReason = b.reason.parse()?;
    let cert = state.store.scoped_certificate(&op.ra, &b.serial).await?;
    if cert.profile == "ra-operator" {
        // An operator's certificate is the RA's membership: administrators
        // manage it, as they enrol and suspend.
        require_admin(op)?;
    }
    let identity = b
        .identity
        .as_ref()
        .map(|i| identity_record(op, i))
        .transpose()?;
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                profile: Some(cert.profile.clone()),
                subject: Some(cert.subject.clone()),
                target_cert_id: Some(cert.id),
                reason: Some(reason.code()),
                submitted_by: Some(op.record.id),
                approved_by: Some(op.record.id),
                ..NewRequest::new(op.ra.id, &b.idempotency_key, "revoke", sha256_hex(&["revoke", &cert.serial, &b.reason]))
            },
            identity.as_ref(),
            &op.event(
                "ra.request.submit",
                "ra-request",
                json!({ "kind": "revoke", "serial": cert.serial, "reason": b.reason, "identity": identity }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = decide_alone(state, op, r).await?;
    recorded.reply(state, &s).await
}
