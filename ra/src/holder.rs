//! The holder's own routes: an official revoking their certificate or mobile ID
//! with a statement signed by their key, without an operator.

use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::{error_reply, json_reply, parse};
use gpki_service::ca_api::{holder_revocation_message, HolderRevocationBody};
use gpki_service::Body;
use gpki_store::{NewRequest, RaRecord, Transition};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;

use crate::auth::Actor;
use crate::forward::send_by_kind;
use crate::requests::{sha256_hex, Recorded, Reply};
use crate::routes::RaRoute;
use crate::State;

/// `POST /v1/holder/revocations`: a holder revokes their own certificate with no
/// operator and no client certificate; a signature by the certificate's key over
/// [`holder_revocation_message`] is the proof. Refusals are audited as anonymous
/// ones are (at most once a second), since the caller is not identified until
/// the signature verifies.
/// The active RA of this service, of the certificate's CA, whose scope holds it:
/// the one that acts for a holder who comes with no operator.
pub(crate) async fn holder_ra(
    state: &State,
    cert: &gpki_store::CertificateRecord,
    issuer: &gpki_store::AuthorityRecord,
) -> Result<RaRecord> {
    state
        .store
        .ras()
        .await?
        .into_iter()
        .find(|r| {
            r.status == "active"
                && r.host == state.config.host
                && r.ca_name == issuer.name
                && r.check_scope(&cert.profile, &cert.subject).is_ok()
        })
        .ok_or_else(|| {
            Error::not_found(format!(
                "no RA of this service serves certificate {} of CA `{}`",
                cert.serial, issuer.name
            ))
        })
}

/// A holder's own request, proven by a signature with their certificate's key:
/// revoking the certificate, or reporting their mobile ID lost.
pub(crate) async fn holder_revoke(
    state: &State,
    route: RaRoute,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let body = match state.front.read(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let answer = if route == RaRoute::HolderRevoke {
        holder_revocation(state, &body).await
    } else {
        crate::credentials::holder_revocation(state, &body).await
    };
    match answer {
        Ok((status, v)) => json_reply(status, &v),
        Err(e) => {
            if matches!(e.kind, ErrorKind::Unauthorized | ErrorKind::BadSignature) {
                state.front.metrics().refused("holder");
                state
                    .front
                    .refusals()
                    .record_anonymous(&path, &e.detail)
                    .await;
            }
            error_reply(&e)
        }
    }
}

/// Reasons a holder may give for their own certificate; the CA-side ones
/// (cACompromise, privilegeWithdrawn, certificateHold, …) are an operator's.
pub(crate) const HOLDER_REASONS: &[&str] = &[
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
];

/// Signed requests are accepted this long either side of the RA's clock.
pub(crate) const HOLDER_SKEW_SECS: i64 = 300;

pub(crate) async fn holder_revocation(state: &State, body: &[u8]) -> Reply {
    let b: HolderRevocationBody = parse(body)?;
    let reason: gpki_pki::crl::RevocationReason = b.reason.parse()?;
    if !HOLDER_REASONS.contains(&reason.as_str()) {
        return Err(Error::policy(format!(
            "a holder revokes with one of {}; {} is an operator's",
            HOLDER_REASONS.join(", "),
            reason.as_str()
        )));
    }
    let now = gpki_pki::time::now();
    if now.abs_diff(b.signed_at) > HOLDER_SKEW_SECS as u64 {
        return Err(Error::policy(format!(
            "signed_at {} is more than {HOLDER_SKEW_SECS} s from the RA's clock ({now}); sign again",
            b.signed_at
        )));
    }
    let der = gpki_pki::pem::decode(b.certificate.as_bytes(), "CERTIFICATE")?;
    let parsed = gpki_pki::cert::decode(&der)?;
    let signature =
        hex::decode(b.signature.trim()).map_err(|_| Error::malformed("signature must be hex"))?;
    // The exact certificate, held by the store, issued and in force.
    let (cert, issuer) = state.store.certificate_in_force(&der, now).await?;
    if cert.profile == "ra-operator" {
        // The RA's membership is managed by its administrators, not by holders.
        return Err(Error::unauthorized(
            "an RA operator's certificate is revoked by an administrator of the RA",
        ));
    }
    // Proof of possession by a key that signs: an official-km key was made on
    // the CA's side and is archived, so holding it proves nothing of the holder.
    if !gpki_pki::cert::signs(&parsed.tbs_certificate)?
        || cert.profile == gpki_service::ca_api::KM_PROFILE
    {
        return Err(Error::policy(format!(
            "certificate {} is not for signing (no digitalSignature, or an archived km key): a holder revokes with their signing certificate, and its pair with it",
            cert.serial
        )));
    }
    let spki = der::Encode::to_der(&parsed.tbs_certificate.subject_public_key_info)?;
    let algorithm = gpki_pki::KeyType::of_spki(&spki)?.default_signature_algorithm();
    let message = holder_revocation_message(
        &hex::encode(openssl::sha::sha256(&der)),
        reason.as_str(),
        b.signed_at,
    );
    if !gpki_pki::signer::verify(&spki, algorithm, &message, &signature)? {
        return Err(Error::new(
            ErrorKind::BadSignature,
            format!(
                "the revocation request for certificate {} is not signed by its key",
                cert.serial
            ),
        ));
    }
    // The RA of this service whose scope holds the certificate acts for it.
    let ra = holder_ra(state, &cert, &issuer).await?;
    let label = format!("holder:{}/{}", issuer.name, cert.serial);
    let actor = Actor {
        ra: &ra,
        label: &label,
    };
    // Keyed by what was asked, not by the signature bytes (an ECDSA signature
    // has more than one valid form).
    let key = format!(
        "holder-{}",
        &sha256_hex(&[&cert.serial, reason.as_str(), &b.signed_at.to_string()])[..48]
    );
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                profile: Some(cert.profile.clone()),
                subject: Some(cert.subject.clone()),
                target_cert_id: Some(cert.id),
                reason: Some(reason.code()),
                approved: true,
                ..NewRequest::new(ra.id, &key, "revoke", sha256_hex(&[
                    "holder-revoke",
                    &cert.serial,
                    reason.as_str(),
                    &b.signed_at.to_string(),
                ]))
            },
            None,
            &actor.event(
                "ra.request.submit",
                "ra-request",
                json!({ "kind": "revoke", "by": "holder", "serial": cert.serial, "reason": reason.as_str(), "signed_at": b.signed_at, "approved": "by the signature of the certificate's key" }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = match r.status.as_str() {
        // The signature is the approval: no operator decides.
        "submitted" => {
            let r = state
                .store
                .transition(
                    &r,
                    &Transition {
                        from: &["submitted"],
                        to: "approved",
                        ..Default::default()
                    },
                    &actor.event(
                        "ra.request.approve",
                        format!("ra-request:{}", r.id),
                        json!({ "proof": "signature by the certificate's key" }),
                    ),
                )
                .await?;
            send_by_kind(state, actor, r).await?
        }
        "approved" => send_by_kind(state, actor, r).await?,
        _ => r.into(),
    };
    recorded.reply(state, &s).await
}
