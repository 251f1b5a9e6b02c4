//! `gpki ra revoke | revoke-own`: certificates revoked through the RA service, by an
//! operator or by the holder with the certificate's own key.

use clap::Args;
use gpki_pki::Result;
use serde_json::{json, Value};

use super::requests::request_reply;
use super::{Conn, IdentityArgs, KmOut, OwnKey};
use crate::Global;

/// The arguments of `gpki ra revoke`.
#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    idempotency_key: String,
    #[arg(long)]
    serial: String,
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    identity: IdentityArgs,
}

/// Revoke a certificate of the RA's scope
pub(super) async fn revoke(g: &Global, args: RevokeArgs) -> Result<()> {
    let RevokeArgs {
        conn,
        idempotency_key,
        serial,
        reason,
        identity,
    } = args;
    let out = g.output;
    let mut body =
        json!({ "idempotency_key": idempotency_key, "serial": serial, "reason": reason });
    if let Some(i) = identity.value() {
        body["identity"] = i;
    }
    let v: Value = conn.client()?.post("v1/revocations", &body).await?;
    request_reply(out, &v, None, &KmOut::none())?;
    Ok(())
}

/// The arguments of `gpki ra revoke-own`.
#[derive(Args)]
pub struct RevokeOwnArgs {
    /// Only --ra, --server-name and --ca-file are used: no client certificate
    #[command(flatten)]
    conn: Conn,
    /// The certificate to revoke and its key
    #[command(flatten)]
    own: OwnKey,
    /// unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation
    #[arg(long)]
    reason: String,
}

/// Revoke your own certificate without an operator: the request is signed with
/// the certificate's key (a lost phone or a compromised key; when the key is
/// gone, an operator revokes with an identity verification)
pub(super) async fn revoke_own(g: &Global, args: RevokeOwnArgs) -> Result<()> {
    let RevokeOwnArgs { conn, own, reason } = args;
    let out = g.output;
    let (der, key) = own.pair()?;
    let reason_name = reason.parse::<gpki_pki::crl::RevocationReason>()?;
    let signed_at = gpki_pki::time::now();
    let message = gpki_service::ca_api::holder_revocation_message(
        &hex::encode(openssl::sha::sha256(&der)),
        reason_name.as_str(),
        signed_at,
    );
    let signature = gpki_pki::Signer::sign(&key, &message)?;
    let body = gpki_service::ca_api::HolderRevocationBody {
        // Only the certificate, whatever else the file holds.
        certificate: gpki_pki::pem::encode("CERTIFICATE", &der),
        reason: reason_name.as_str().to_string(),
        signed_at,
        signature: hex::encode(signature),
    };
    let v: Value = conn
        .anonymous_client()?
        .post("v1/holder/revocations", &body)
        .await?;
    request_reply(out, &v, None, &KmOut::none())?;
    Ok(())
}
