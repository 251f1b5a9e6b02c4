//! Dual enrolments: the km certificate of an official-sign request, its key
//! made here, archived to the KRA and sealed to the official's transport key.

use gpki_pki::{Error, ErrorKind, Result};
use gpki_store::{CertStatus, CertificateRecord, RaRecord};

use crate::issue::reply_for;
use crate::State;

/// The km half of a dual request, checked before anything is issued: this
/// service archives keys to a KRA in force, the request is for an official-sign
/// certificate, the km profile is in the RA's scope, and the transport key is an
/// RSA key its holder signed with.
pub(crate) async fn km_asked(
    state: &State,
    ra: &RaRecord,
    profile: &str,
    subject: &str,
    km: Option<&gpki_service::ca_api::KmAsk>,
) -> Result<Option<(String, gpki_pki::csr::VerifiedCsr)>> {
    let Some(km) = km else { return Ok(None) };
    let kra = state.config.km.as_ref().ok_or_else(|| {
        Error::policy(
            "this CA service archives no km keys ([km] is not configured); ask without km",
        )
    })?;
    if profile != gpki_ca::km::SIGN_PROFILE {
        return Err(Error::policy(format!(
            "a km certificate pairs with an {} certificate, not {profile}",
            gpki_ca::km::SIGN_PROFILE
        )));
    }
    ra.check_scope(gpki_ca::km::KM_PROFILE, subject)?;
    let transport = gpki_service::ca_api::check_transport(&km.transport)?;
    // The KRA must take the key before the signing certificate is made: a pair is
    // not left half made for a KRA out of force.
    gpki_ca::km::kra_certificate(&state.store, &kra.kra).await?;
    Ok(Some((kra.kra.clone(), transport)))
}

/// The km certificate paired with `sign` for request `key`: the one made before
/// (a replay: no delivery, the key is only in the archive now), or a new one.
pub(crate) async fn km_for(
    state: &State,
    ra: &RaRecord,
    key: &str,
    sign_serial: &str,
    (kra, transport): (String, gpki_pki::csr::VerifiedCsr),
    renewed_from: Option<i64>,
) -> Result<gpki_service::ca_api::KmReply> {
    let km_key = format!("{key}/km");
    let issuer = state.store.authority_by_name(&ra.ca_name).await?;
    let sign = &state
        .store
        .certificate(issuer.id, sign_serial)
        .await?
        .ok_or_else(|| Error::internal("the certificate just answered is not in the store"))?;
    let earlier = |r: CertificateRecord| async move {
        if r.status == CertStatus::Pending {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "km certificate {} of request `{key}` was recorded but not signed; ask again, and if it stays so, revoke the pair and enrol again",
                    r.serial
                ),
            ));
        }
        if state.store.pair_of(r.id).await? != Some(sign.id) {
            return Err(Error::conflict(format!(
                "request `{key}` made km certificate {} for another certificate",
                r.serial
            )));
        }
        let der = r.der.clone();
        Ok(gpki_service::ca_api::KmReply {
            certificate: reply_for(&state.ca, &ra.ca_name, &r, der.as_deref(), true).await?,
            delivery: None,
        })
    };
    if let Some(r) = state
        .store
        .certificate_by_request_key(issuer.id, &km_key)
        .await?
    {
        return earlier(r).await;
    }
    let ca = state.ca.acting_as(format!("ra:{}", ra.name));
    let made = ca
        .issue_km(&gpki_ca::km::KmOrder {
            ca: &ra.ca_name,
            sign,
            kra: &kra,
            transport_spki: transport.spki_der(),
            request_key: Some(km_key.clone()),
            renewed_from,
        })
        .await;
    match made {
        Ok(m) => Ok(gpki_service::ca_api::KmReply {
            certificate: reply_for(
                &state.ca,
                &ra.ca_name,
                &m.issued.record,
                Some(&m.issued.der),
                false,
            )
            .await?,
            delivery: Some(gpki_pki::pem::encode("CMS", &m.delivery)),
        }),
        // A concurrent call with the same key recorded first.
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            match state
                .store
                .certificate_by_request_key(issuer.id, &km_key)
                .await?
            {
                Some(r) => earlier(r).await,
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}
