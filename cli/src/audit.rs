//! `gpki audit`: verify the hash-chained audit log, sign checkpoints, show the newest records.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gpki_pki::{Error, ErrorKind, Result};
use serde_json::json;

use crate::{emit, Global};

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain (names every edited, inserted or deleted row) and every
    /// signed checkpoint (names a rebuilt chain)
    Verify(VerifyArgs),
    /// Sign the chain head into a checkpoint file outside the store (verifiable with
    /// openssl dgst); run it from a timer
    Checkpoint(CheckpointArgs),
    /// Show the newest audit records
    Log(LogArgs),
}

pub async fn run(g: &Global, cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Verify(a) => verify(g, a).await,
        AuditCmd::Checkpoint(a) => checkpoint(g, a).await,
        AuditCmd::Log(a) => log(g, a).await,
    }
}

/// The arguments of `gpki audit verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Checkpoint directory (default DATA_DIR/audit)
    #[arg(long)]
    checkpoints: Option<PathBuf>,
    /// The audit public key to trust (default: audit.pub.pem in the checkpoint directory)
    #[arg(long)]
    audit_key: Option<PathBuf>,
}

/// Check the hash chain (names every edited, inserted or deleted row) and every
/// signed checkpoint (names a rebuilt chain)
async fn verify(g: &Global, args: VerifyArgs) -> Result<()> {
    let VerifyArgs {
        checkpoints,
        audit_key,
    } = args;
    let out = g.output;
    let store = g.store().await?;
    let mut report = store.audit_verify().await?;
    let dir = checkpoints.unwrap_or_else(|| g.data_dir.join("audit"));
    let (anchoring, problems) = gpki_ca::anchor::verify_checkpoints(
        &store,
        &dir,
        &g.data_dir.join("keys"),
        audit_key.as_deref(),
    )
    .await?;
    report.problems.extend(problems);
    let mut value = serde_json::to_value(&report).expect("JSON");
    value["anchoring"] = serde_json::to_value(&anchoring).expect("JSON");
    emit(out, value, || {
        if report.intact() {
            let anchored = if anchoring.checkpoints == 0 {
                "NOT ANCHORED: no audit key and no checkpoint yet (gpki audit checkpoint)"
                    .to_string()
            } else {
                format!(
                    "{} signed checkpoint(s) in {} match, up to row {} ({} newer row(s) rest on the chain alone); audit key sha256 {}",
                    anchoring.checkpoints,
                    dir.display(),
                    anchoring.anchored_seq,
                    (report.head_seq - anchoring.anchored_seq).max(0),
                    anchoring.audit_key_sha256.as_deref().unwrap_or("-")
                )
            };
            format!(
                "audit log intact: {} records, chain head {}\n{anchored}",
                report.rows, report.head_seq
            )
        } else {
            report
                .problems
                .iter()
                .map(|p| format!("TAMPERED: {}", p.problem))
                .collect::<Vec<_>>()
                .join("\n")
        }
    });
    if !report.intact() {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "audit log fails verification: {} problem(s)",
                report.problems.len()
            ),
        ));
    }
    Ok(())
}

/// The arguments of `gpki audit checkpoint`.
#[derive(Args)]
pub struct CheckpointArgs {
    /// Checkpoint directory (default DATA_DIR/audit)
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Sign the chain head into a checkpoint file outside the store (verifiable with
/// openssl dgst); run it from a timer
async fn checkpoint(g: &Global, args: CheckpointArgs) -> Result<()> {
    let CheckpointArgs { dir } = args;
    let out = g.output;
    let ca = g.ca().await?;
    let dir = dir.unwrap_or_else(|| g.data_dir.join("audit"));
    let (cp, file) = ca.audit_checkpoint(&dir).await?;
    emit(
        out,
        json!({ "seq": cp.seq, "hash": cp.hash, "file": file.display().to_string(),
                "public_key": dir.join(gpki_ca::anchor::AUDIT_PUB_FILE).display().to_string() }),
        || {
            format!(
                "checkpoint of audit row {} ({}) in {}\n  check: openssl dgst -sha256 -verify {} -signature {} {}",
                cp.seq,
                cp.hash,
                file.display(),
                dir.join(gpki_ca::anchor::AUDIT_PUB_FILE).display(),
                file.with_extension("sig").display(),
                file.display()
            )
        },
    );
    Ok(())
}

/// The arguments of `gpki audit log`.
#[derive(Args)]
pub struct LogArgs {
    #[arg(long, default_value_t = 20)]
    limit: i64,
}

/// Show the newest audit records
async fn log(g: &Global, args: LogArgs) -> Result<()> {
    let LogArgs { limit } = args;
    let out = g.output;
    let store = g.store().await?;
    let rows = store.audit_tail(limit).await?;
    emit(out, serde_json::to_value(&rows).expect("JSON"), || {
        rows.iter()
            .map(|r| {
                format!(
                    "{:>6} {} {:<12} {:<18} {} {}",
                    r.seq,
                    gpki_pki::time::rfc3339(r.at),
                    r.actor,
                    r.action,
                    r.target,
                    r.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
