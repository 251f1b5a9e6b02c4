//! `gpki ra offer | offer-issue | revoke-id | revoke-own-id`: mobile public-official
//! IDs through the RA service.

use std::path::PathBuf;

use clap::Args;
use gpki_pki::{Error, Result};
use serde_json::{json, Value};

use super::{Conn, IdentityArgs, OwnKey};
use crate::{emit, read_file, Global};

/// The arguments of `gpki ra offer`.
#[derive(Args)]
pub struct OfferArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    idempotency_key: String,
    /// The official's official-sign certificate (serial, from the RA's CA)
    #[arg(long)]
    serial: String,
    /// mdoc or sd-jwt
    #[arg(long)]
    format: String,
    /// JSON: department, position, issue_date, expiry_date (name, employee
    /// number and institution come from the certificate)
    #[arg(long)]
    attributes: PathBuf,
    /// How the official was seen (required)
    #[command(flatten)]
    identity: IdentityArgs,
}

/// Offer a mobile public-official ID to an official the RA knows (by their
/// official-sign certificate from this RA): prints the nonce the official's
/// wallet signs (`gpki credential proof`)
pub(super) async fn offer(g: &Global, args: OfferArgs) -> Result<()> {
    let OfferArgs {
        conn,
        idempotency_key,
        serial,
        format,
        attributes,
        identity,
    } = args;
    let out = g.output;
    let identity = identity.value().ok_or_else(|| {
        Error::malformed("--identity-method and --identity-document: how the official was seen")
    })?;
    let attributes: Value = serde_json::from_slice(&read_file(&attributes, "attributes")?)
        .map_err(|e| Error::malformed(format!("attributes: {e}")))?;
    let body = json!({
        "idempotency_key": idempotency_key,
        "format": format,
        "official": { "serial": serial },
        "attributes": attributes,
        "identity": identity,
    });
    let v: Value = conn.client()?.post("v1/credentials/offers", &body).await?;
    emit(out, v.clone(), || {
        format!(
            "credential offer {} ({}): nonce {} for {}, until {}",
            v["offer"],
            v["status"].as_str().unwrap_or(""),
            v["nonce"].as_str().unwrap_or(""),
            v["audience"].as_str().unwrap_or(""),
            gpki_pki::time::rfc3339(v["expires_at"].as_i64().unwrap_or(0))
        )
    });
    Ok(())
}

/// The arguments of `gpki ra offer-issue`.
#[derive(Args)]
pub struct OfferIssueArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    offer: i64,
    /// The holder's proof JWT
    #[arg(long)]
    proof: PathBuf,
    /// Where to write the credential (mdoc CBOR or SD-JWT text)
    #[arg(long)]
    out: PathBuf,
}

/// Issue an offered ID to the key that proved it (`gpki credential proof`)
pub(super) async fn offer_issue(g: &Global, args: OfferIssueArgs) -> Result<()> {
    let OfferIssueArgs {
        conn,
        offer,
        proof,
        out: file,
    } = args;
    let out = g.output;
    let proof = String::from_utf8(read_file(&proof, "proof")?)
        .map_err(|_| Error::malformed("the proof is not UTF-8"))?;
    let body = json!({ "proof": proof.trim() });
    let v: gpki_service::credential_api::CredentialReply = conn
        .client()?
        .post(&format!("v1/credentials/offers/{offer}/issue"), &body)
        .await?;
    let bytes = match v.format.as_str() {
        "mdoc" => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &v.credential)
            .map_err(|e| Error::malformed(format!("the CA's mdoc: {e}")))?,
        _ => v.credential.clone().into_bytes(),
    };
    crate::write_file(&file, &bytes)?;
    let mut shown = serde_json::to_value(&v).map_err(|e| Error::internal(e.to_string()))?;
    shown["credential"] = json!(file.display().to_string());
    emit(out, shown, || {
        format!(
            "credential {} ({}) issued for offer {}: index {} on {}, valid until {}: {}",
            v.id,
            v.format,
            v.offer,
            v.idx,
            v.status_list,
            gpki_pki::time::rfc3339(v.valid_until),
            file.display()
        )
    });
    Ok(())
}

/// The arguments of `gpki ra revoke-own-id`.
#[derive(Args)]
pub struct RevokeOwnIdArgs {
    /// Only --ra, --server-name and --ca-file are used: no client certificate
    #[command(flatten)]
    conn: Conn,
    /// Your official-sign certificate and its key
    #[command(flatten)]
    own: OwnKey,
    /// lost-device, key-compromise or unspecified
    #[arg(long, default_value = "lost-device")]
    reason: String,
}

/// Report your own mobile ID lost (or its key compromised), signed with your
/// official-sign key: every valid ID of yours is revoked at once, no operator
pub(super) async fn revoke_own_id(g: &Global, args: RevokeOwnIdArgs) -> Result<()> {
    let RevokeOwnIdArgs { conn, own, reason } = args;
    let out = g.output;
    let (der, key) = own.pair()?;
    let signed_at = gpki_pki::time::now();
    let message = gpki_service::ca_api::holder_credential_revocation_message(
        &hex::encode(openssl::sha::sha256(&der)),
        &reason,
        signed_at,
    );
    let signature = gpki_pki::Signer::sign(&key, &message)?;
    let body = gpki_service::ca_api::HolderRevocationBody {
        certificate: gpki_pki::pem::encode("CERTIFICATE", &der),
        reason,
        signed_at,
        signature: hex::encode(signature),
    };
    let v: Value = conn
        .anonymous_client()?
        .post("v1/holder/credential-revocations", &body)
        .await?;
    emit(out, v.clone(), || revoked_ids_text(&v));
    Ok(())
}

/// The arguments of `gpki ra revoke-id`.
#[derive(Args)]
pub struct RevokeIdArgs {
    #[command(flatten)]
    conn: Conn,
    /// The credential's id (gpki credential list)
    id: i64,
    /// lost-device, left-service, key-compromise, attributes-changed, unspecified
    #[arg(long)]
    reason: String,
}

/// Revoke a mobile ID your RA offered, or one of an official in its scope
pub(super) async fn revoke_id(g: &Global, args: RevokeIdArgs) -> Result<()> {
    let RevokeIdArgs { conn, id, reason } = args;
    let out = g.output;
    let v: Value = conn
        .client()?
        .post(
            &format!("v1/credentials/{id}/revoke"),
            &json!({ "reason": reason }),
        )
        .await?;
    emit(out, v.clone(), || revoked_ids_text(&v));
    Ok(())
}

fn revoked_ids_text(v: &Value) -> String {
    v["revoked"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "mobile ID {} ({}) revoked: {}",
                c["id"],
                c["format"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
