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

use crate::auth::Operator;
use crate::requests::{check_key, Reply};
use crate::State;

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
    // Scope is checked by known_official (the official profile and subtree).
    let cert = state
        .store
        .unscoped_ra_certificate(&op.ra, &b.official.serial)
        .await?;
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

/// `POST /v1/credentials/ID/revoke` `{"reason"}`: an operator revokes a mobile ID
/// their RA offered, or one of an official in their RA's scope, audited under
/// their name. Another RA's is not found.
pub(crate) async fn revoke(state: &State, op: &Operator, id: i64, body: &[u8]) -> Reply {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RevokeBody {
        reason: String,
    }
    let b: RevokeBody = parse(body)?;
    let hidden = || Error::not_found(format!("no mobile ID {id} of RA `{}`", op.ra.name));
    state.store.credential(id).await.map_err(|_| hidden())?;
    let offer = state
        .store
        .offer_of_credential(id)
        .await?
        .ok_or_else(hidden)?;
    let official = state
        .store
        .certificate_by_id(offer.official_cert_id)
        .await?;
    let ca = state.store.authority(official.issuer_id).await?;
    let in_scope = ca.name == op.ra.ca_name
        && op
            .ra
            .check_scope(OFFICIAL_PROFILE, &official.subject)
            .is_ok();
    if offer.ra_id != op.ra.id && !in_scope {
        return Err(hidden());
    }
    let record = state
        .store
        .revoke_credential(
            id,
            &b.reason,
            &op.event(
                "credential.revoke",
                format!("credential:{id}"),
                json!({ "reason": b.reason, "ra": op.ra.name, "official": format!("cert:{}/{}", ca.name, official.serial) }),
            ),
        )
        .await?;
    Ok((StatusCode::OK, json!({ "revoked": [record] })))
}

/// Why a holder reports their own mobile ID.
const HOLDER_ID_REASONS: &[&str] = &["lost-device", "key-compromise", "unspecified"];

/// `POST /v1/holder/credential-revocations`: the holder reports their mobile ID
/// lost at once, with no operator, proving it is them by a signature with their
/// official-sign key (in force) over a statement of its own; every valid ID of
/// theirs is revoked, audited as the holder's.
pub(crate) async fn holder_revocation(state: &State, body: &[u8]) -> Reply {
    let b: gpki_service::ca_api::HolderRevocationBody = parse(body)?;
    if !HOLDER_ID_REASONS.contains(&b.reason.as_str()) {
        return Err(Error::policy(format!(
            "a holder reports a mobile ID with one of {}",
            HOLDER_ID_REASONS.join(", ")
        )));
    }
    let now = gpki_pki::time::now();
    if now.abs_diff(b.signed_at) > crate::holder::HOLDER_SKEW_SECS as u64 {
        return Err(Error::policy(format!(
            "signed_at {} is more than {} s from the RA's clock ({now}); sign again",
            b.signed_at,
            crate::holder::HOLDER_SKEW_SECS
        )));
    }
    let der = gpki_pki::pem::decode(b.certificate.as_bytes(), "CERTIFICATE")?;
    let parsed = gpki_pki::cert::decode(&der)?;
    let signature =
        hex::decode(b.signature.trim()).map_err(|_| Error::malformed("signature must be hex"))?;
    let (cert, issuer) = state.store.certificate_in_force(&der, now).await?;
    if cert.profile != OFFICIAL_PROFILE || !gpki_pki::cert::signs(&parsed.tbs_certificate)? {
        return Err(Error::policy(format!(
            "certificate {} is not an official's signing certificate: a holder reports their mobile ID with it",
            cert.serial
        )));
    }
    let spki = der::Encode::to_der(&parsed.tbs_certificate.subject_public_key_info)?;
    let algorithm = gpki_pki::KeyType::of_spki(&spki)?.default_signature_algorithm();
    let message = gpki_service::ca_api::holder_credential_revocation_message(
        &hex::encode(openssl::sha::sha256(&der)),
        &b.reason,
        b.signed_at,
    );
    if !gpki_pki::signer::verify(&spki, algorithm, &message, &signature)? {
        return Err(Error::new(
            gpki_pki::ErrorKind::BadSignature,
            format!(
                "the mobile ID report for certificate {} is not signed by its key",
                cert.serial
            ),
        ));
    }
    let official =
        gpki_pki::name::official(&gpki_pki::name::attributes(&parsed.tbs_certificate.subject))
            .ok_or_else(|| {
                Error::unauthorized("the certificate does not name an official (CN=NAME(NUMBER))")
            })?;
    // Served by an RA of this service whose scope holds the official.
    let ra = crate::holder::holder_ra(state, &cert, &issuer).await?;
    let revoked = state
        .store
        .revoke_official_credentials(
            &official.employee_number,
            b.signed_at,
            &b.reason,
            &format!("holder:{}/{}", issuer.name, cert.serial),
            json!({ "ra": ra.name, "reported_by": "holder", "signed_at": b.signed_at }),
        )
        .await?;
    Ok((StatusCode::OK, json!({ "revoked": revoked })))
}
