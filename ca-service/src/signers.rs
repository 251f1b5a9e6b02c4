//! `POST /v1/signers/renew`: a delegated signer (OCSP responder, TSA) renews its
//! certificate for a new key, proving it holds the current one.

use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::parse;
use gpki_service::ca_api::{CertificateReply, SignerRenewBody};
use gpki_service::mtls::Caller;
use gpki_store::{AuditEvent, CertStatus, CertificateRecord};
use hyper::StatusCode;

use gpki_ca::KeySource;

use crate::clients::registered_client;
use crate::issue::reply_for;
use crate::State;

/// The delegated signer's current certificate that `client` asks renewed: of the
/// profile its role renews, of an online CA, in force, and within the renewal
/// window.
pub(crate) async fn signer_to_renew(
    state: &State,
    client: &gpki_store::ServiceClient,
    b: &SignerRenewBody,
) -> Result<(gpki_store::AuthorityRecord, CertificateRecord)> {
    let profile = match client.role.as_str() {
        "ocsp" => "ocsp-signer",
        "tsa" => "tsa",
        r => {
            return Err(Error::unauthorized(format!(
                "client `{}` has role {r}; only ocsp and tsa clients renew signer certificates",
                client.name
            )))
        }
    };
    let issuer = match state.store.authority_by_name(&b.ca).await {
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(Error::not_found(format!("no CA named `{}`", b.ca)))
        }
        r => r?,
    };
    // An offline CA's responder certificates are renewed offline only.
    state.ca.require_custody(&issuer)?;
    let serial = b.serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    let old = state
        .store
        .certificate(issuer.id, &serial)
        .await?
        .ok_or_else(|| Error::not_found(format!("no certificate {serial} of CA `{}`", b.ca)))?;
    if old.profile != profile {
        return Err(Error::unauthorized(format!(
            "certificate {serial} is of profile {}; {} clients renew {profile} certificates",
            old.profile, client.role
        )));
    }
    let now = gpki_pki::time::now();
    if old.status != CertStatus::Issued || old.not_after <= now {
        return Err(Error::conflict(format!(
            "certificate {serial} is {} (until {}); only a certificate in force is renewed by its signer",
            old.status,
            gpki_pki::time::rfc3339(old.not_after)
        )));
    }
    // A signer renews only within the window before its expiry, once.
    let window = state.config.signer_renewal_days * 86_400;
    if old.not_after - now > window {
        return Err(Error::policy(format!(
            "certificate {serial} may be renewed from {} ({} days before it expires), not earlier",
            gpki_pki::time::rfc3339(old.not_after - window),
            state.config.signer_renewal_days
        )));
    }
    Ok((issuer, old))
}

/// Proof that the caller holds the current signer's key: `proof` (hex) signs the
/// renewal message naming the current certificate and the new key.
pub(crate) fn check_signer_proof(
    old: &CertificateRecord,
    new_key: &str,
    proof: &str,
) -> Result<()> {
    let serial = &old.serial;
    let old_der = old
        .der
        .as_deref()
        .ok_or_else(|| Error::conflict(format!("certificate {serial} was never signed")))?;
    let old_cert = gpki_pki::cert::decode(old_der)?;
    let old_spki = der::Encode::to_der(&old_cert.tbs_certificate.subject_public_key_info)?;
    let proof = hex::decode(proof.trim()).map_err(|_| Error::malformed("proof must be hex"))?;
    let message = gpki_service::ca_api::signer_renewal_message(
        &hex::encode(openssl::sha::sha256(old_der)),
        new_key,
    );
    let algorithm = gpki_pki::KeyType::of_spki(&old_spki)?.default_signature_algorithm();
    if !gpki_pki::signer::verify(&old_spki, algorithm, &message, &proof)? {
        return Err(Error::new(
            ErrorKind::Unauthorized,
            format!("the renewal of {serial} is not signed by that certificate's key"),
        ));
    }
    Ok(())
}

/// `POST /v1/signers/renew`: the next certificate of a delegated signer, for a new
/// key, asked by the signer's host itself (a service client of role `ocsp` for an
/// ocsp-signer certificate, `tsa` for a tsa certificate), so that no process but
/// this one opens a CA key. The current certificate must be in force; the new one
/// keeps its subject and profile. Replays (same certificate, same new key) get the
/// certificate made the first time.
pub(crate) async fn renew_signer(
    state: &State,
    who: &Caller,
    body: &[u8],
) -> Result<(StatusCode, CertificateReply)> {
    let b: SignerRenewBody = parse(body)?;
    let client = registered_client(state, who).await?;
    let (issuer, old) = signer_to_renew(state, &client, &b).await?;
    let (serial, now) = (old.serial.clone(), gpki_pki::time::now());
    let csr = gpki_pki::csr::parse_and_verify(b.csr.as_bytes())?;
    gpki_pki::csr::check_requested_sans(&csr, &[])?;
    let new_key = hex::encode(openssl::sha::sha256(csr.spki_der()));
    check_signer_proof(&old, &new_key, &b.proof)?;
    // One renewal per certificate: the same request again gets what it made;
    // another key for a certificate renewed already is refused.
    let key = format!("signer:{serial}");
    if let Some(found) = state
        .store
        .certificate_by_request_key(issuer.id, &key)
        .await?
    {
        if found.renewed_from != Some(old.id) || found.spki_sha256 != new_key {
            return Err(Error::conflict(format!(
                "certificate {serial} was renewed already (as {}); renew that one",
                found.serial
            )));
        }
        if found.status != CertStatus::Pending {
            let der = found.der.clone();
            return Ok((
                StatusCode::OK,
                reply_for(&state.ca, &b.ca, &found, der.as_deref(), true).await?,
            ));
        }
        // Recorded, never signed: past the stale age the CA that recorded it is
        // gone, so it is abandoned and the renewal made afresh below.
        let stale = now - found.created_at >= state.config.stale_pending_secs;
        let event = AuditEvent::new(
            &format!("signer:{}", client.name),
            "cert.abandon",
            format!("cert:{}/{}", b.ca, found.serial),
            serde_json::json!({ "reason": "pending past the stale age: the CA stopped before signing; renewed afresh" }),
        );
        if !stale || !state.store.abandon(found.id, &event).await? {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("the renewal of {serial} is being signed; ask again shortly"),
            ));
        }
    }
    if new_key == old.spki_sha256 {
        return Err(Error::policy(format!(
            "the request is for the key of certificate {serial}; a signer renews with a new key"
        )));
    }
    if gpki_pki::name::to_string(csr.subject()) != old.subject {
        return Err(Error::policy(format!(
            "the request's subject `{}` is not the certificate's `{}`",
            gpki_pki::name::to_string(csr.subject()),
            old.subject
        )));
    }
    let ca = state.ca.acting_as(format!("signer:{}", client.name));
    let result = ca
        .renew(
            &b.ca,
            &serial,
            Some(KeySource::Verified(csr)),
            false,
            Some(key.clone()),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        reply_for(&state.ca, &b.ca, &result.record, Some(&result.der), false).await?,
    ))
}
