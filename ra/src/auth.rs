//! Who is calling: the operator behind a client certificate, active, of an
//! active RA this service hosts; the administrator checks.

use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::error_reply;
use gpki_service::mtls::caller;
use gpki_service::Body;
use gpki_store::{AuditEvent, OperatorRecord, RaRecord, RaRequest};
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::State;

/// The operator making a call, with their RA.
#[derive(Clone)]
pub(crate) struct Operator {
    pub(crate) record: OperatorRecord,
    pub(crate) ra: RaRecord,
    pub(crate) label: String,
}

impl Operator {
    pub(crate) fn event(
        &self,
        action: &str,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::new(&self.label, action, target, detail)
    }
}

/// Who acts for an RA when a request goes to the CA: an operator, or a holder
/// revoking their own certificate.
#[derive(Clone, Copy)]
pub(crate) struct Actor<'a> {
    pub(crate) ra: &'a RaRecord,
    pub(crate) label: &'a str,
}

impl Actor<'_> {
    pub(crate) fn event(
        &self,
        action: &str,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::new(self.label, action, target, detail)
    }
}

impl Operator {
    pub(crate) fn actor(&self) -> Actor<'_> {
        Actor {
            ra: &self.ra,
            label: &self.label,
        }
    }
}

pub(crate) fn unauthorized(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthorized, detail)
}

/// The operator behind an identified certificate, active, of an active RA this
/// service hosts.
pub(crate) async fn operator(state: &State, who: gpki_service::mtls::Caller) -> Result<Operator> {
    let record = state
        .store
        .operator_by_cert(who.cert.id)
        .await?
        .ok_or_else(|| {
            unauthorized(format!(
                "certificate {} is not an RA operator's",
                who.label()
            ))
        })?;
    if who.cert.profile != "ra-operator" {
        return Err(unauthorized(format!(
            "certificate {} is of profile {}, not ra-operator",
            who.label(),
            who.cert.profile
        )));
    }
    if record.status != "active" {
        return Err(unauthorized(format!(
            "operator `{}` is {}",
            record.name, record.status
        )));
    }
    let ra = state.store.ra(record.ra_id).await?;
    if ra.status != "active" {
        return Err(unauthorized(format!("RA `{}` is {}", ra.name, ra.status)));
    }
    if ra.host != state.config.host {
        return Err(unauthorized(format!(
            "RA `{}` is not hosted by this RA service",
            ra.name
        )));
    }
    let label = format!("operator:{}/{}", ra.name, record.name);
    Ok(Operator { record, ra, label })
}

/// The operator behind the request's client certificate, read from the store,
/// with the certificate's `not_after`; or the (audited) refusal.
pub(crate) async fn authenticate(
    state: &State,
    req: &Request<Incoming>,
    path: &str,
) -> std::result::Result<(Operator, i64), Response<Body>> {
    let who = match caller(state.store.scaffolding(), req).await {
        Ok(w) => w,
        Err(e) => {
            if e.kind == ErrorKind::Unauthorized {
                state.metrics.refused("unauthenticated");
                match req.extensions().get::<gpki_service::tls::PeerCertificate>() {
                    None => state.refusals.record_anonymous(path, &e.detail).await,
                    Some(c) => state.refusals.record_unknown(&c.0, path, &e).await,
                }
            }
            return Err(error_reply(&e));
        }
    };
    // A certificate the store holds in force: refusals from here name it.
    let label = format!("cert:{}", who.label());
    let req_peer = req
        .extensions()
        .get::<gpki_service::tls::PeerCertificate>()
        .cloned();
    let cert_id = who.cert.id;
    let not_after = who.cert.not_after;
    match operator(state, who).await {
        Ok(o) => Ok((o, not_after)),
        Err(e) => {
            if e.kind == ErrorKind::Unauthorized {
                state.metrics.refused("unauthorized");
                // An operator's certificate (suspended, removed, of another RA) is
                // audited every time under its name; any other certificate the
                // store holds (an official's) at most once a second, so holders
                // cannot flood the audit log.
                match state.store.operator_by_cert(cert_id).await {
                    Ok(Some(_)) => state.refusals.record(&label, path, &e).await,
                    _ => match req_peer {
                        Some(c) => state.refusals.record_unknown(&c.0, path, &e).await,
                        None => state.refusals.record_anonymous(path, &e.detail).await,
                    },
                }
            }
            Err(error_reply(&e))
        }
    }
}

/// Requests about the RA's membership (an enrolment, or any request for an
/// ra-operator certificate: its renewal too) are decided by administrators only.
pub(crate) fn require_admin_for(op: &Operator, r: &RaRequest) -> Result<()> {
    if r.kind == "enrol" || r.profile.as_deref() == Some("ra-operator") {
        require_admin(op)?;
    }
    Ok(())
}

pub(crate) fn require_admin(op: &Operator) -> Result<()> {
    if !op.record.admin {
        return Err(unauthorized(format!(
            "operator `{}` is not an administrator of RA `{}`",
            op.record.name, op.ra.name
        )));
    }
    Ok(())
}
