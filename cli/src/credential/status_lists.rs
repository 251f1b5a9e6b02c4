//! `gpki credential status-list create | list | publish`: the status lists
//! credentials' status goes on, and their signed tokens.

use std::path::PathBuf;

use clap::Args;
use gpki_credentials::status;
use gpki_pki::{Error, Result};
use gpki_store::AuditEvent;
use serde_json::json;

use super::SignerArgs;
use crate::{emit, write_file, Global};

/// The arguments of `gpki credential status-list create`.
#[derive(Args)]
pub struct StatusListCreateArgs {
    #[arg(long)]
    name: String,
    /// The URL verifiers fetch it from (the OCSP responder's /statuslists/NAME)
    #[arg(long)]
    uri: String,
    /// Entries (credentials) the list holds
    #[arg(long, default_value_t = 1 << 20)]
    size: i64,
    /// Bits per entry: 1 (valid, invalid) or 2 (also suspended)
    #[arg(long, default_value_t = 1)]
    bits: u8,
}

/// Create a status list
pub(super) async fn create(g: &Global, args: StatusListCreateArgs) -> Result<()> {
    let StatusListCreateArgs {
        name,
        uri,
        size,
        bits,
    } = args;
    let store = g.store().await?;
    let l = store
        .create_status_list(
            &name,
            &uri,
            bits,
            size,
            &AuditEvent::new(
                &g.actor(),
                "status-list.create",
                format!("status-list:{name}"),
                json!({ "uri": uri, "size": size, "bits": bits }),
            ),
        )
        .await?;
    emit(g.output, json!(l), || {
        format!(
            "created status list {} ({} entries of {} bit(s)) at {}",
            l.name, l.size, l.bits, l.uri
        )
    });
    Ok(())
}

/// List the status lists
pub(super) async fn list(g: &Global) -> Result<()> {
    let store = g.store().await?;
    let lists = store.status_lists().await?;
    emit(g.output, json!(lists), || {
        let mut t = format!(
            "{:<16} {:>9} {:>9} {:>4}  {}\n",
            "name", "size", "used", "bits", "uri"
        );
        for l in &lists {
            t += &format!(
                "{:<16} {:>9} {:>9} {:>4}  {}\n",
                l.name, l.size, l.used, l.bits, l.uri
            );
        }
        t
    });
    Ok(())
}

/// The arguments of `gpki credential status-list publish`.
#[derive(Args)]
pub struct StatusListPublishArgs {
    #[arg(long)]
    name: String,
    #[command(flatten)]
    signer: SignerArgs,
    /// Seconds a verifier may keep the list before fetching it again (`ttl`)
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(1..=86_400))]
    ttl: i64,
    /// Seconds the token is valid (`exp` - `iat`)
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(i64).range(1..=2_592_000))]
    valid: i64,
    /// Write the JWT (application/statuslist+jwt) here
    #[arg(long)]
    jwt_out: Option<PathBuf>,
    /// Write the CWT (application/statuslist+cwt) here
    #[arg(long)]
    cwt_out: Option<PathBuf>,
}

/// Sign a status list's current state as a Status List Token (JWT and CWT)
pub(super) async fn publish(g: &Global, args: StatusListPublishArgs) -> Result<()> {
    let StatusListPublishArgs {
        name,
        signer,
        ttl,
        valid,
        jwt_out,
        cwt_out,
    } = args;
    if jwt_out.is_none() && cwt_out.is_none() {
        return Err(Error::malformed("give --jwt-out, --cwt-out or both"));
    }
    if ttl < 1 || valid < ttl {
        return Err(Error::malformed(
            "--ttl must be at least 1 and --valid at least --ttl",
        ));
    }
    let store = g.store().await?;
    let now = gpki_pki::time::now();
    let (key, _) = signer
        .load(
            &store,
            gpki_pki::profile::EKU_STATUS_LIST_SIGNING,
            "status list signer",
        )
        .await?;
    let record = store.status_list_by_name(&name).await?;
    let (seq, revoked) = store.status_list_revoked(record.id).await?;
    let mut list = status::StatusList::new(record.size as u64, record.bits as u8)?;
    for idx in &revoked {
        list.set(*idx as u64, status::INVALID)?;
    }
    let at = status::Issued {
        iat: now,
        exp: now.saturating_add(valid).min(key.not_after()?),
        ttl,
    };
    let mut written = Vec::new();
    if let Some(p) = &jwt_out {
        replace_file(p, status::jwt(&list, &record.uri, at, &key)?.as_bytes())?;
        written.push(p.display().to_string());
    }
    if let Some(p) = &cwt_out {
        replace_file(p, &status::cwt(&list, &record.uri, at, &key)?)?;
        written.push(p.display().to_string());
    }
    let compressed = list.compressed().len();
    emit(
        g.output,
        json!({
            "name": record.name,
            "uri": record.uri,
            "status_seq": seq,
            "revoked": revoked.len(),
            "size": record.size,
            "compressed_bytes": compressed,
            "written": written,
        }),
        || {
            format!(
                "status list {} ({} entries, {} revoked, {compressed} bytes compressed): {}",
                record.name,
                record.size,
                revoked.len(),
                written.join(", ")
            )
        },
    );
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, so a
/// server reading the file never sees half a list.
fn replace_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write_file(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::internal(format!("cannot replace {}: {e}", path.display())))
}
