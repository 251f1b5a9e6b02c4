//! `POST /v1/credentials`: a mobile ID for an offer the RA recorded.

use gpki_pki::{Error, Result};
use gpki_service::api::parse;
use gpki_service::credential_api::{
    known_official, official_id, CredentialBody, CredentialReply, OfferedAttributes,
};
use gpki_service::mtls::Caller;
use gpki_store::{AuditEvent, RaRecord};
use hyper::StatusCode;

use crate::clients::authorize_ra;
use crate::State;

/// `POST /v1/credentials`: a mobile ID for an offer the RA recorded and whose
/// holder proof it checked. Nothing is taken from the RA on trust: the offer is
/// read from the store and must be this RA's and `proven`; the proof is checked
/// again against the offer's nonce and must be by the key the RA recorded; the
/// official must be one this RA knows, in force, in its scope, and the name and
/// institution and employee number come from their certificate, and the ID ends
/// no later than it. The offer becomes `issuing` before anything is signed, so it
/// makes one credential at most, and `issued` in the transaction that records the
/// credential valid and revokes the official's earlier IDs `replaced` (a new
/// phone).
pub(crate) async fn credential(
    state: &State,
    who: &Caller,
    body: &[u8],
) -> Result<(StatusCode, CredentialReply)> {
    let b: CredentialBody = parse(body)?;
    let ra = authorize_ra(state, who, &b.ra).await?;
    let (config, key) = issuing_for(state, &ra)?;
    let offer = proven_offer(state, &ra, b.offer).await?;
    let now = gpki_pki::time::now();
    let holder = gpki_credentials::proof::verify(&b.proof, &config.issuer, &offer.nonce, now)?;
    if offer.holder_jkt.as_deref() != Some(holder.thumbprint().as_str()) {
        return Err(Error::policy(
            "holder proof refused: its key is not the one the RA checked for this offer",
        ));
    }
    let official = known_official(
        &state.store,
        &ra,
        state
            .store
            .certificate_by_id(offer.official_cert_id)
            .await?,
        now,
    )
    .await?;
    let attributes: OfferedAttributes = serde_json::from_str(&offer.attributes)
        .map_err(|e| Error::internal(format!("offer {} attributes: {e}", offer.id)))?;
    let id = official_id(&attributes, &official)?;
    let official = official.cert;
    let format = gpki_ca::credential::Format::parse(&offer.format)?;
    let actor = format!("ra:{}", ra.name);
    let target = format!("credential-offer:{}", offer.id);
    let event =
        |action: &str, detail: serde_json::Value| AuditEvent::new(&actor, action, &target, detail);
    let client = serde_json::json!({ "client": who.label() });
    state
        .store
        .move_offer(
            offer.id,
            "proven",
            "issuing",
            None,
            None,
            &event("credential.offer.issuing", client.clone()),
        )
        .await?;
    let order = gpki_ca::credential::Order {
        id: &id,
        holder: &holder,
        format,
        status_list: &config.status_list,
        issuer: &config.issuer,
        valid_days: config.valid_days,
        replaces: &[],
        replace_earlier: true,
        not_after: Some(official.not_after),
        official_cert: Some(official.id),
        offer: Some((offer.id, event("credential.offer.issued", client))),
        actor: &actor,
        context: serde_json::json!({ "offer": offer.id, "official": format!("cert:{}/{}", official.issuer_id, official.serial) }),
    };
    let issued = match gpki_ca::credential::issue(&state.store, key, &order).await {
        Ok(i) => i,
        Err(e) => {
            // Nothing valid was made (a credential row is valid only once recorded
            // with its digest, and the offer marked issued with it): the offer may
            // be tried again while it has not expired.
            let back = event(
                "credential.offer.retry",
                serde_json::json!({ "error": e.detail }),
            );
            if let Err(e2) = state
                .store
                .move_offer(offer.id, "issuing", "proven", None, None, &back)
                .await
            {
                tracing::warn!(offer = offer.id, error = %e2, "offer left issuing");
            }
            return Err(e);
        }
    };
    Ok((StatusCode::CREATED, reply_of(issued, offer.id, format)?))
}

/// The `[credentials]` configuration and signer, when this service issues
/// credentials for RA `ra`.
fn issuing_for<'s>(
    state: &'s State,
    ra: &RaRecord,
) -> Result<(
    &'s crate::CredentialsConfig,
    &'s gpki_credentials::IssuerKey,
)> {
    let (Some(config), Some(key)) = (&state.config.credentials, &state.credential_signer) else {
        return Err(Error::policy(
            "this CA service issues no credentials ([credentials] is not configured)",
        ));
    };
    if !config.ras.contains(&ra.name) {
        return Err(Error::unauthorized(format!(
            "RA `{}` is not one this CA service issues credentials for",
            ra.name
        )));
    }
    Ok((config, key))
}

/// Offer `id`, read from the store: RA `ra`'s, and `proven` (its holder proof
/// checked by the RA, not yet issued).
async fn proven_offer(state: &State, ra: &RaRecord, id: i64) -> Result<gpki_store::OfferRecord> {
    let offer = state.store.offer(id).await?;
    if offer.ra_id != ra.id {
        return Err(Error::unauthorized(format!(
            "credential offer {} is not RA `{}`'s",
            offer.id, ra.name
        )));
    }
    if offer.status != "proven" {
        return Err(Error::conflict(format!(
            "credential offer {} is {}{}",
            offer.id,
            offer.status,
            offer
                .credential_id
                .map(|c| format!(" (credential {c})"))
                .unwrap_or_default()
        )));
    }
    Ok(offer)
}

/// The reply for a credential issued for `offer`: the SD-JWT as text, an mdoc
/// in base64.
fn reply_of(
    issued: gpki_ca::credential::Issued,
    offer: i64,
    format: gpki_ca::credential::Format,
) -> Result<CredentialReply> {
    Ok(CredentialReply {
        id: issued.record.id,
        offer,
        format: format.as_str().into(),
        credential: match format {
            gpki_ca::credential::Format::SdJwt => String::from_utf8(issued.bytes)
                .map_err(|_| Error::internal("SD-JWT is not UTF-8"))?,
            gpki_ca::credential::Format::Mdoc => {
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &issued.bytes)
            }
        },
        status_list: issued.list.name,
        idx: issued.record.idx,
        holder_jkt: issued.record.holder_jkt,
        valid_until: issued.valid_until,
    })
}
