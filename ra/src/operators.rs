//! Operator enrolment and status (suspend, activate, remove): administrators' work.

use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::parse;
use gpki_store::{Enrolment, NewRequest, OperatorRecord, RaRequest};
use hyper::StatusCode;
use serde_json::json;

use crate::auth::{require_admin, Operator};
use crate::decide::{decide, Ask, Decision};
use crate::forward::decide_alone;
use crate::requests::{check_key, reply, sha256_hex, Recorded, Reply};
use crate::routes::StatusVerb;
use crate::{EnrolBody, State};

pub(crate) async fn enrol(state: &State, op: &Operator, body: &[u8]) -> Reply {
    require_admin(op)?;
    let b: EnrolBody = parse(body)?;
    check_key(&b.idempotency_key)?;
    gpki_store::check_operator_name(&b.name)?;
    // A name in use is refused before a certificate is made for it (a replay of
    // the enrolment that made it is answered below).
    if state
        .store
        .request_by_key(op.ra.id, &b.idempotency_key)
        .await?
        .is_none()
        && state
            .store
            .operators(op.ra.id)
            .await?
            .iter()
            .any(|o| o.name == b.name)
    {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("RA `{}` has an operator named `{}`", op.ra.name, b.name),
        ));
    }
    op.ra.check_scope("ra-operator", &b.subject)?;
    let csr = gpki_pki::csr::parse_and_verify(b.csr.as_bytes())?;
    gpki_pki::csr::check_requested_sans(&csr, &[])?;
    let profile = state.profiles.get("ra-operator")?;
    profile.allows_key(gpki_pki::KeyType::of_spki(csr.spki_der())?)?;
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                profile: Some("ra-operator".into()),
                subject: Some(b.subject.clone()),
                csr: Some(b.csr.clone().into_bytes()),
                submitted_by: Some(op.record.id),
                enrol: Some(Enrolment {
                    name: b.name.clone(),
                    admin: b.admin,
                }),
                approved_by: (decide(
                    &op.ra,
                    &state.profiles,
                    &Ask {
                        kind: "enrol",
                        profile: "ra-operator",
                        km: false,
                        new_key: true,
                        identity_seen: false,
                        renews: None,
                    },
                    gpki_pki::time::now(),
                )? == Decision::Alone)
                    .then_some(op.record.id),
                ..NewRequest::new(
                    op.ra.id,
                    &b.idempotency_key,
                    "enrol",
                    sha256_hex(&[
                        "enrol",
                        &b.name,
                        &b.subject,
                        &b.csr,
                        if b.admin { "admin" } else { "" },
                    ]),
                )
            },
            None,
            &op.event(
                "ra.operator.enrol-request",
                "ra-request",
                json!({ "name": b.name, "subject": b.subject, "admin": b.admin }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = if r.status == "submitted"
        && !decide(&op.ra, &state.profiles, &Ask::of(&r), gpki_pki::time::now())?
            .waits()?
            .is_empty()
    {
        // A second administrator approves it (POST /v1/requests/{id}/approve),
        // after the identity verification when the profile asks for one.
        r.into()
    } else {
        decide_alone(state, op, r).await?
    };
    let mut v = reply(state, &s, recorded.answered_before).await?;
    if s.request.status == "issued" {
        v["operator"] =
            serde_json::to_value(finish_enrolment(state, op, &s.request).await?).expect("JSON");
    }
    Ok((recorded.status(), v))
}

/// The operator an issued enrolment makes (once: a replay finds it).
pub(crate) async fn finish_enrolment(
    state: &State,
    op: &Operator,
    r: &RaRequest,
) -> Result<OperatorRecord> {
    let (Some(cert_id), Some(e)) = (r.cert_id, r.enrol.as_ref()) else {
        return Err(Error::internal(format!(
            "enrolment request {} has no certificate or operator",
            r.id
        )));
    };
    if let Some(o) = state.store.operator_by_cert(cert_id).await? {
        return Ok(o);
    }
    match state
        .store
        .add_operator(
            op.ra.id,
            &e.name,
            cert_id,
            e.admin,
            &op.event(
                "ra.operator.enrol",
                format!("ra:{}", op.ra.name),
                json!({ "name": e.name, "cert_id": cert_id, "admin": e.admin, "request": r.id }),
            ),
        )
        .await
    {
        // A concurrent replay made it first.
        Err(err) if err.kind == ErrorKind::AlreadyExists => {
            state.store.operator_by_cert(cert_id).await?.ok_or(err)
        }
        other => other,
    }
}

pub(crate) async fn operator_status(
    state: &State,
    op: &Operator,
    id: i64,
    verb: StatusVerb,
) -> Reply {
    require_admin(op)?;
    let target = state.store.operator(id).await?;
    if target.ra_id != op.ra.id {
        return Err(Error::not_found(format!("no operator {id}")));
    }
    if target.id == op.record.id {
        return Err(Error::conflict(
            "an operator cannot change their own status",
        ));
    }
    let status = match verb {
        StatusVerb::Suspend => "suspended",
        StatusVerb::Activate => "active",
        StatusVerb::Remove => "removed",
    };
    let updated = state
        .store
        .set_operator_status(
            id,
            status,
            &op.event(
                &format!("ra.operator.{}", verb.name()),
                format!("ra-operator:{id}"),
                json!({ "name": target.name }),
            ),
        )
        .await?;
    // The change holds from the next request, not after the cache's age.
    state.operators.clear();
    Ok((StatusCode::OK, json!({ "operator": updated })))
}
