//! Who may call: registered service clients, and for an RA the host of the RA
//! it names (and never an RA of an offline CA).

use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::mtls::Caller;
use gpki_store::RaRecord;

use crate::State;

/// The service client the caller's certificate is registered as.
pub(crate) async fn registered_client(
    state: &State,
    who: &Caller,
) -> Result<gpki_store::ServiceClient> {
    state
        .store
        .service_client_by_cert(who.cert.id)
        .await?
        .ok_or_else(|| {
            Error::unauthorized(format!(
                "certificate {} is not registered as a client of the CA service",
                who.label()
            ))
        })
}

/// The RA `ra` when the caller is the RA service registered to act for it.
pub(crate) async fn authorize_ra(state: &State, who: &Caller, ra: &str) -> Result<RaRecord> {
    let key = (who.cert.id, ra.to_string());
    if let Some(r) = state.ras.get(&key, gpki_pki::time::now()) {
        return Ok(r);
    }
    let ticket = state.ras.ticket();
    let record = authorize_ra_in_store(state, who, ra).await?;
    state
        .ras
        .put(ticket, key, who.cert.not_after, record.clone());
    Ok(record)
}

pub(crate) async fn authorize_ra_in_store(
    state: &State,
    who: &Caller,
    ra: &str,
) -> Result<RaRecord> {
    let client = registered_client(state, who).await?;
    if client.role != "ra" {
        return Err(Error::unauthorized(format!(
            "client `{}` has role {}; only RA services ask for certificates",
            client.name, client.role
        )));
    }
    let record = match state.store.ra_by_name(ra).await {
        Ok(r) => r,
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(Error::unauthorized(format!("no RA named `{ra}`")))
        }
        Err(e) => return Err(e),
    };
    if record.host != client.name {
        return Err(Error::unauthorized(format!(
            "RA `{ra}` is not hosted by client `{}`",
            client.name
        )));
    }
    if record.status != "active" {
        return Err(Error::unauthorized(format!(
            "RA `{ra}` is {}",
            record.status
        )));
    }
    // An RA of an offline CA (a row written past `gpki ra create`'s refusal) gets
    // nothing here: every route an RA reaches acts for its CA.
    state
        .ca
        .require_custody(&state.store.authority_by_name(&record.ca_name).await?)?;
    Ok(record)
}

pub(crate) fn request_key(ra: &RaRecord, request_id: &str) -> Result<String> {
    if request_id.is_empty()
        || request_id.len() > 128
        || !request_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        // No `:`: it separates the RA's name from the id in the key, and RA names
        // have none, so no two RAs' keys can meet.
        return Err(Error::malformed(
            "request_id must be 1 to 128 characters of A-Z a-z 0-9 - _ .",
        ));
    }
    Ok(gpki_service::ca_api::ca_request_key(&ra.name, request_id))
}
