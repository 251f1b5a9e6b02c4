//! Mobile IDs through the RA: an operator offers one to an official the RA knows
//! (`POST /v1/credentials/offers`: a nonce for the holder's wallet); the holder's
//! proof over that nonce comes back (`POST /v1/credentials/offers/ID/issue`), is
//! checked, and the offer goes to the CA service, which checks it all again and
//! signs. See `gpki_service::credential_api`.

use gpki_pki::{Error, Result};
use gpki_service::api::parse;
use gpki_service::credential_api::{
    known_official, official_id, CredentialBody, CredentialReply, OfferBody, OfferReply, ProofBody,
    OFFICIAL_PROFILE,
};
use gpki_store::NewOffer;
use hyper::StatusCode;
use serde_json::json;

use crate::{check_key, Operator, Reply, State};

fn audience(state: &State) -> Result<&str> {
    state.config.credential_issuer.as_deref().ok_or_else(|| {
        Error::policy("this RA service offers no credentials (credential_issuer is not set)")
    })
}

fn reply(offer: &gpki_store::OfferRecord, audience: &str, replayed: bool) -> serde_json::Value {
    json!(OfferReply {
        offer: offer.id,
        status: offer.status.clone(),
        nonce: offer.nonce.clone(),
        audience: audience.to_string(),
        expires_at: offer.expires_at,
        replayed,
    })
}

/// `POST /v1/credentials/offers`.
pub(crate) async fn offer(state: &State, op: &Operator, body: &[u8]) -> Reply {
    let b: OfferBody = parse(body)?;
    let audience = audience(state)?;
    check_key(&b.idempotency_key)?;
    gpki_credentials::model::Format::parse(&b.format)?;
    let cert = crate::ra_certificate(state, op, &b.official.serial).await?;
    let now = gpki_pki::time::now();
    let known = known_official(&state.store, &op.ra, cert, now).await?;
    // Refused now, by name, rather than at the CA.
    official_id(&b.attributes, &known)?;
    let official = known.cert;
    if !matches!(b.identity.method.as_str(), "face-to-face" | "contact-free")
        || b.identity.document.trim().is_empty()
        || b.identity.document.len() > 200
    {
        return Err(Error::malformed(
            "identity: method face-to-face or contact-free, and the document seen (at most 200 bytes)",
        ));
    }
    let mut nonce = [0u8; 32];
    openssl::rand::rand_bytes(&mut nonce).map_err(|e| Error::internal(format!("OpenSSL: {e}")))?;
    let canonical = serde_json::to_vec(&b).map_err(|e| Error::internal(e.to_string()))?;
    let attributes =
        serde_json::to_string(&b.attributes).map_err(|e| Error::internal(e.to_string()))?;
    let (offer, fresh) = state
        .store
        .create_offer(
            &NewOffer {
                ra_id: op.ra.id,
                idempotency_key: b.idempotency_key.clone(),
                body_sha256: hex::encode(openssl::sha::sha256(&canonical)),
                official_cert_id: official.id,
                format: b.format.clone(),
                attributes,
                nonce: gpki_credentials::b64::encode(&nonce),
                expires_at: now + state.config.offer_ttl_seconds,
                submitted_by: op.record.id,
            },
            &op.event(
                "credential.offer",
                "",
                json!({
                    "format": b.format,
                    "official": format!("cert:{}/{}", op.ra.ca_name, official.serial),
                    "identity": b.identity,
                }),
            ),
        )
        .await?;
    let status = if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, reply(&offer, audience, !fresh)))
}

/// `POST /v1/credentials/offers/ID/issue`: the holder's proof, checked here (an
/// offer `offered` and unexpired becomes `proven` with the proof's key; one already
/// `proven` is asked again with the same key, as after a lost answer), then the
/// CA service issues.
pub(crate) async fn issue(state: &State, op: &Operator, id: i64, body: &[u8]) -> Reply {
    let b: ProofBody = parse(body)?;
    let audience = audience(state)?;
    let offer = state.store.offer(id).await?;
    if offer.ra_id != op.ra.id {
        return Err(Error::not_found(format!("no credential offer {id}")));
    }
    let now = gpki_pki::time::now();
    // Under dual control of official-sign, the operator who saw the official is not
    // the one who binds the ID to a key.
    if op.ra.dual_control.iter().any(|p| p == OFFICIAL_PROFILE)
        && op.record.id == offer.submitted_by
    {
        return Err(Error::new(
            gpki_pki::ErrorKind::Unauthorized,
            format!("RA `{}` is under dual control: another operator than the one who made credential offer {id} issues it", op.ra.name),
        ));
    }
    let holder = gpki_credentials::proof::verify(&b.proof, audience, &offer.nonce, now)?;
    let jkt = holder.thumbprint();
    if matches!(offer.status.as_str(), "offered" | "proven") && offer.expires_at <= now {
        return Err(Error::conflict(format!(
            "credential offer {id} has expired; make a new offer"
        )));
    }
    match offer.status.as_str() {
        "offered" => {
            state
                .store
                .move_offer(
                    id,
                    "offered",
                    "proven",
                    Some(&jkt),
                    None,
                    &op.event(
                        "credential.proof",
                        format!("credential-offer:{id}"),
                        json!({ "holder_jkt": jkt }),
                    ),
                )
                .await?;
        }
        "proven" if offer.holder_jkt.as_deref() == Some(jkt.as_str()) => {}
        "proven" => {
            return Err(Error::policy(format!(
                "holder proof refused: credential offer {id} was proven by another key"
            )))
        }
        other => {
            return Err(Error::conflict(format!(
                "credential offer {id} is {other}{}",
                offer
                    .credential_id
                    .map(|c| format!(" (credential {c})"))
                    .unwrap_or_default()
            )))
        }
    }
    let answer: CredentialReply = state
        .ca
        .post(
            "v1/credentials",
            &CredentialBody {
                ra: op.ra.name.clone(),
                offer: id,
                proof: b.proof,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, json!(answer)))
}
