//! `POST /v1/certificates/renew` and `/revoke` for an RA.

use gpki_pki::crl::RevocationReason;
use gpki_pki::{Error, Result};
use gpki_service::api::parse;
use gpki_service::ca_api::{CertificateReply, RenewBody, RevokeBody};
use gpki_service::mtls::Caller;
use gpki_store::{CertificateRecord, RaRecord};
use hyper::StatusCode;

use gpki_ca::KeySource;

use crate::clients::{authorize_ra, request_key};
use crate::issue::{finish, replayed, reply_for};
use crate::km::{km_asked, km_for};
use crate::State;

pub(crate) async fn renew(
    state: &State,
    who: &Caller,
    body: &[u8],
) -> Result<(StatusCode, CertificateReply)> {
    let b: RenewBody = parse(body)?;
    let ra = authorize_ra(state, who, &b.ra).await?;
    let key = request_key(&ra, &b.request_id)?;
    // Scope first: a replay answers only what the RA may see.
    let old = state.store.scoped_certificate(&ra, &b.serial).await?;
    // The RA's renewal window holds here too, not only in the RA service.
    let opens = old.not_after - ra.renew_window_days * 86_400;
    if gpki_pki::time::now() < opens {
        return Err(Error::policy(format!(
            "certificate {} may be renewed from {} (RA `{}`: {} days before it expires), not earlier",
            old.serial,
            gpki_pki::time::rfc3339(opens),
            ra.name,
            ra.renew_window_days
        )));
    }
    // A pair is renewed together, from its signing certificate, with a new km key.
    let old_km = match state.store.pair_of(old.id).await? {
        Some(_) if old.profile == gpki_ca::km::KM_PROFILE => {
            return Err(Error::policy(format!(
                "km certificate {} is renewed with its official-sign pair",
                old.serial
            )))
        }
        Some(id) => Some(id),
        None => None,
    };
    let km = match (old_km, b.km.as_ref()) {
        (Some(_), None) => {
            return Err(Error::policy(format!(
            "certificate {} has a km pair; a renewal renews both and needs a transport key (km)",
            old.serial
        )))
        }
        (None, Some(_)) => {
            return Err(Error::policy(format!(
                "certificate {} has no km pair to renew",
                old.serial
            )))
        }
        (Some(_), km) => km_asked(state, &ra, &old.profile, &old.subject, km).await?,
        (None, None) => None,
    };
    let (status, mut reply) = renew_one(state, &ra, &key, &old, b).await?;
    if let Some(km) = km {
        reply.km = Some(Box::new(
            km_for(state, &ra, &key, &reply.serial, km, old_km).await?,
        ));
    }
    Ok((status, reply))
}

pub(crate) async fn renew_one(
    state: &State,
    ra: &RaRecord,
    key: &str,
    old: &CertificateRecord,
    b: RenewBody,
) -> Result<(StatusCode, CertificateReply)> {
    let (ra, key, old) = (ra.clone(), key.to_string(), old.clone());
    let new_key = match &b.csr {
        Some(c) => Some(hex::encode(openssl::sha::sha256(
            gpki_pki::csr::parse_and_verify(c.as_bytes())?.spki_der(),
        ))),
        None => None,
    };
    let same = |c: &CertificateRecord| {
        Ok(c.renewed_from == Some(old.id) && new_key.as_ref().is_none_or(|k| *k == c.spki_sha256))
    };
    if let Some(r) = replayed(state, &ra, &key, same, false).await? {
        return Ok(r);
    }
    if old.not_after <= gpki_pki::time::now() {
        return Err(Error::conflict(format!(
            "certificate {} has expired; an expired certificate is not renewed, a new one is requested",
            old.serial
        )));
    }
    let ca = state.ca.acting_as(format!("ra:{}", ra.name));
    let result = ca
        .renew(
            &ra.ca_name,
            &old.serial,
            b.csr.map(|c| KeySource::Csr(c.into_bytes())),
            false,
            Some(key.clone()),
        )
        .await;
    finish(state, &ra, &key, result, same).await
}

pub(crate) async fn revoke(
    state: &State,
    who: &Caller,
    body: &[u8],
) -> Result<(StatusCode, CertificateReply)> {
    let b: RevokeBody = parse(body)?;
    let ra = authorize_ra(state, who, &b.ra).await?;
    let reason: RevocationReason = b.reason.parse()?;
    let old = state.store.scoped_certificate(&ra, &b.serial).await?;
    let ca = state.ca.acting_as(format!("ra:{}", ra.name));
    let (record, pair) = ca
        .revoke_with_pair(&ra.ca_name, &old.serial, reason, b.invalidity_date, false)
        .await?;
    // A client certificate revoked here is refused from the next request on.
    state.callers.clear();
    state.ras.clear();
    let der = record.der.clone();
    let mut reply = reply_for(&state.ca, &ra.ca_name, &record, der.as_deref(), false).await?;
    // A revocation offers the pair: the RA names it, and revokes it on request.
    reply.pair = pair.map(|p| gpki_service::ca_api::PairReply {
        serial: p.serial,
        profile: p.profile,
        status: p.status.to_string(),
    });
    Ok((StatusCode::OK, reply))
}
