//! `gpki credential issue | revoke | list`: the issuer's side, credentials issued
//! to holders' keys and their status in the store.

use std::path::PathBuf;

use clap::Args;
use gpki_credentials::{OfficialId, PublicKey};
use gpki_pki::Result;
use gpki_store::AuditEvent;
use serde_json::json;

use super::{Format, SignerArgs};
use crate::{emit, read_file, write_file, Global};

/// The arguments of `gpki credential issue`.
#[derive(Args)]
pub struct IssueArgs {
    #[arg(long, value_enum)]
    format: Format,
    /// The official's attributes (JSON: name, employee_number, institution,
    /// department, position, issue_date, expiry_date)
    #[arg(long)]
    attributes: PathBuf,
    /// The official's photograph (JPEG, at most 64 KiB)
    #[arg(long)]
    portrait: Option<PathBuf>,
    /// The holder's public key (PEM or DER SubjectPublicKeyInfo, P-256 or P-384)
    #[arg(long)]
    holder_key: PathBuf,
    #[command(flatten)]
    signer: SignerArgs,
    /// The status list the credential's status goes on
    #[arg(long)]
    status_list: String,
    /// The issuer's identifier (SD-JWT VC `iss`; a URI SAN of the signer certificate)
    #[arg(long, default_value = crate::dev::CREDENTIAL_ISSUER)]
    issuer: String,
    /// Days the credential is valid (at most to the signer certificate's end and
    /// the ID's expiry date)
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
    valid_days: i64,
    /// Credentials of this official this one replaces (a new phone): revoked
    /// `replaced` when this one is issued
    #[arg(long)]
    replaces: Vec<i64>,
    /// Where to write the credential
    #[arg(long)]
    out: PathBuf,
}

/// Issue a mobile public-official ID to a holder's key
pub(super) async fn issue(g: &Global, args: IssueArgs) -> Result<()> {
    let IssueArgs {
        format,
        attributes,
        portrait,
        holder_key,
        signer,
        status_list,
        issuer,
        valid_days,
        replaces,
        out,
    } = args;
    let portrait = portrait.map(|p| read_file(&p, "portrait")).transpose()?;
    let id = OfficialId::from_json(&read_file(&attributes, "attributes")?, portrait)?;
    let holder = PublicKey::from_pem_or_der(&read_file(&holder_key, "holder key")?)
        .map_err(|e| e.context("holder key"))?;
    let store = g.store().await?;
    // Issuance checks the signer is in force in the store.
    let key = signer.key(gpki_pki::profile::EKU_MDL_DS, "credential signer")?;
    let gpki_ca::credential::Issued {
        record,
        list,
        bytes,
        valid_until,
    } = gpki_ca::credential::issue(
        &store,
        &key,
        &gpki_ca::credential::Order {
            id: &id,
            holder: &holder,
            format: format.into(),
            status_list: &status_list,
            issuer: &issuer,
            valid_days,
            replaces: &replaces,
            replace_earlier: false,
            not_after: None,
            official_cert: None,
            offer: None,
            actor: &g.actor(),
            context: json!({}),
        },
    )
    .await?;
    write_file(&out, &bytes)?;
    emit(
        g.output,
        json!({
            "id": record.id,
            "format": format.as_str(),
            "status_list": list.name,
            "status_uri": list.uri,
            "idx": record.idx,
            "valid_until": gpki_pki::time::rfc3339(valid_until),
            "replaced": replaces,
            "out": out.display().to_string(),
        }),
        || {
            format!(
                "issued credential {} ({}) to {}, index {} on {}, valid until {}: {}",
                record.id,
                format.as_str(),
                record.subject,
                record.idx,
                list.name,
                gpki_pki::time::rfc3339(valid_until),
                out.display()
            )
        },
    );
    Ok(())
}

/// The arguments of `gpki credential revoke`.
#[derive(Args)]
pub struct RevokeArgs {
    #[arg(long)]
    id: i64,
    /// lost-device, left-service, replaced, key-compromise, attributes-changed, unspecified
    #[arg(long)]
    reason: String,
}

/// Revoke a credential: its bit on the status list is set
pub(super) async fn revoke(g: &Global, args: RevokeArgs) -> Result<()> {
    let RevokeArgs { id, reason } = args;
    let store = g.store().await?;
    let r = store
        .revoke_credential(
            id,
            &reason,
            &AuditEvent::new(
                &g.actor(),
                "credential.revoke",
                format!("credential:{id}"),
                json!({ "reason": reason }),
            ),
        )
        .await?;
    emit(g.output, json!(r), || {
        format!(
            "revoked credential {} ({}) of {}: {reason}",
            r.id, r.format, r.subject
        )
    });
    Ok(())
}

/// The arguments of `gpki credential list`.
#[derive(Args)]
pub struct ListArgs {
    /// Only this official's (employee number)
    #[arg(long)]
    subject: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

/// List issued credentials, newest first
pub(super) async fn list(g: &Global, args: ListArgs) -> Result<()> {
    let ListArgs { subject, limit } = args;
    let store = g.store().await?;
    let rows = store.credentials(subject.as_deref(), limit).await?;
    emit(g.output, json!(rows), || {
        let mut t = format!(
            "{:>6}  {:<7} {:<16} {:<9} {:>8}  {}\n",
            "id", "format", "subject", "status", "idx", "valid until"
        );
        for r in &rows {
            t += &format!(
                "{:>6}  {:<7} {:<16} {:<9} {:>8}  {}\n",
                r.id,
                r.format,
                r.subject,
                r.status,
                r.idx,
                gpki_pki::time::rfc3339(r.valid_until)
            );
        }
        t
    });
    Ok(())
}
