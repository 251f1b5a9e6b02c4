//! `gpki km request | approve | recover`: an archived km key released with M of N
//! officers' approvals, in the steps the `km` module's documentation lists.

use std::path::{Path, PathBuf};

use clap::Args;
use gpki_kmi::approval::{self, Approval, Statement};
use gpki_pki::{Error, ErrorKind, Result, Signer};
use gpki_store::{
    ArchiveRecord, AuditEvent, CertificateRecord, KeyArchive, KraRecord, NewApproval,
    OfficerRecord, RecoveryRecord,
};
use openssl::pkey::{PKey, Private};
use serde_json::json;

use super::{certificate, read_cert, read_key, KeyFilesOut};
use crate::{emit, read_file, write_file, Global};

/// The arguments of `gpki km request`.
#[derive(Args)]
pub struct RequestArgs {
    #[arg(long)]
    ca: String,
    /// Serial of the km certificate
    #[arg(long)]
    serial: String,
    #[arg(long)]
    reason: String,
    /// Write the statement (JSON) for the officers here
    #[arg(long)]
    statement_out: Option<PathBuf>,
}

/// Open a recovery request for a km certificate's archived key; prints the
/// statement each officer signs
pub(super) async fn request(g: &Global, args: RequestArgs) -> Result<()> {
    let RequestArgs {
        ca: ca_name,
        serial,
        reason,
        statement_out,
    } = args;
    let out = g.output;
    let store = g.store().await?;
    let cert = certificate(&store, &ca_name, &serial).await?;
    // What the command line names is found; the rest goes through the KRA's handle.
    let store = KeyArchive::new(store);
    let archive = store.archive_of(cert.id).await?.ok_or_else(|| {
        Error::not_found(format!(
            "certificate {} of CA `{ca_name}` has no archived key (only km certificates made with a CA-side key do)",
            cert.serial
        ))
    })?;
    if cert.der.is_none() {
        return Err(Error::conflict(format!(
            "certificate {} is not signed; there is no key to recover",
            cert.serial
        )));
    }
    let mut nonce = [0u8; 32];
    openssl::rand::rand_bytes(&mut nonce).map_err(|e| Error::internal(format!("random: {e}")))?;
    let r = store
        .request_recovery(
            archive.id,
            &reason,
            &g.actor(),
            &hex::encode(nonce),
            &AuditEvent::new(
                &g.actor(),
                "km.recover.request",
                "key-recovery",
                json!({ "ca": ca_name, "serial": cert.serial, "reason": reason }),
            ),
        )
        .await?;
    let st = statement(&store, &ca_name, &cert, &r).await?;
    if let Some(p) = &statement_out {
        write_file(
            p,
            serde_json::to_string_pretty(&st).expect("JSON").as_bytes(),
        )?;
    }
    let kra = store.kra(archive.kra_id).await?;
    emit(
        out,
        json!({ "recovery": r, "statement": st, "quorum": kra.quorum }),
        || {
            let mut t = format!(
                "recovery request {} for km certificate {} opened; {} officers of KRA {} must approve it",
                r.id, cert.serial, kra.quorum, kra.name
            );
            match &statement_out {
                Some(p) => t += &format!("\nstatement for the officers written to {}", p.display()),
                None => {
                    t += &format!(
                        "\nstatement for the officers (gpki km approve --statement FILE):\n{}",
                        serde_json::to_string_pretty(&st).expect("JSON")
                    )
                }
            }
            t
        },
    );
    Ok(())
}

/// The arguments of `gpki km approve`.
#[derive(Args)]
pub struct ApproveArgs {
    /// The statement (JSON) from `gpki km request`
    #[arg(long)]
    statement: PathBuf,
    /// The officer's certificate (PEM or DER)
    #[arg(long)]
    cert: PathBuf,
    /// The officer's key (encrypted PKCS#8 PEM)
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    pass_file: PathBuf,
    /// Write the approval (JSON) here
    #[arg(long)]
    out: PathBuf,
}

/// Sign a recovery statement as an officer (offline: no store needed)
pub(super) fn approve(g: &Global, args: ApproveArgs) -> Result<()> {
    let ApproveArgs {
        statement,
        cert,
        key,
        pass_file,
        out: path,
    } = args;
    let out = g.output;
    let st: Statement =
        serde_json::from_slice(&read_file(&statement, "statement")?).map_err(|e| {
            Error::malformed(format!(
                "{} is not a recovery statement: {e}",
                statement.display()
            ))
        })?;
    let key = read_key(&key, &pass_file)?;
    let a = approval::sign(&st, &key, &read_cert(&cert)?)?;
    if path.exists() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} exists; refusing to overwrite it", path.display()),
        ));
    }
    write_file(
        &path,
        serde_json::to_string_pretty(&a).expect("JSON").as_bytes(),
    )?;
    emit(
        out,
        json!({ "approval": path, "recovery": st.recovery }),
        || {
            format!(
                "approval of recovery request {} written to {}",
                st.recovery,
                path.display()
            )
        },
    );
    Ok(())
}

/// The arguments of `gpki km recover`.
#[derive(Args)]
pub struct RecoverArgs {
    #[arg(long)]
    ca: String,
    /// Serial of the km certificate
    #[arg(long)]
    serial: String,
    /// An officer's approval (JSON); give one per officer
    #[arg(long = "approval", required = true)]
    approvals: Vec<PathBuf>,
    /// The KRA's private key (encrypted PKCS#8 PEM), on the KRA's host
    #[arg(long)]
    kra_key: PathBuf,
    #[arg(long)]
    kra_pass_file: PathBuf,
    #[command(flatten)]
    out: KeyFilesOut,
}

/// Release an archived km key with M of N officers' approvals
pub(super) async fn recover(g: &Global, args: RecoverArgs) -> Result<()> {
    let RecoverArgs {
        ca: ca_name,
        serial,
        approvals,
        kra_key,
        kra_pass_file,
        out: files,
    } = args;
    let out = g.output;
    let pass = files.check()?;
    let store = g.store().await?;
    let actor = g.actor();
    let cert = certificate(&store, &ca_name, &serial).await?;
    // What the command line names is found; the rest goes through the KRA's handle.
    let store = KeyArchive::new(store);
    match release(
        &store,
        &ca_name,
        &cert,
        &approvals,
        &kra_key,
        &kra_pass_file,
        &actor,
    )
    .await
    {
        Err(e) => return Err(audit_refusal(&store, &actor, &ca_name, &cert, e).await),
        Ok((key, r, officers)) => {
            let chain = store.authority_chain(cert.issuer_id).await?;
            let der = cert.der.clone().unwrap_or_default();
            let written = files.write(&pass, &key, &der, &chain, "km")?;
            emit(
                out,
                json!({ "recovery": r, "officers": officers, "written": written }),
                || {
                    format!(
                        "recovery request {} released with the approvals of {}; wrote {}",
                        r.id,
                        officers.join(", "),
                        written.join(", ")
                    )
                },
            );
        }
    }
    Ok(())
}

/// The statement officers sign for `recovery` of km certificate `cert`.
async fn statement(
    store: &KeyArchive,
    ca: &str,
    cert: &CertificateRecord,
    r: &RecoveryRecord,
) -> Result<Statement> {
    let archive = store.archive(r.archive_id).await?;
    let kra = store.kra(archive.kra_id).await?;
    let der = cert
        .der
        .as_deref()
        .ok_or_else(|| Error::conflict(format!("certificate {} is not signed", cert.serial)))?;
    Ok(Statement {
        recovery: r.id,
        nonce: r.nonce.clone(),
        kra: kra.name,
        ca: ca.to_string(),
        serial: cert.serial.clone(),
        certificate_sha256: hex::encode(openssl::sha::sha256(der)),
        reason: r.reason.clone(),
        requested_by: r.requested_by.clone(),
        requested_at: r.created_at,
    })
}

/// A refused recovery, audited (`km.recover.refuse`) with nothing else changed:
/// the refusal, or why it could not be audited as well.
async fn audit_refusal(
    store: &KeyArchive,
    actor: &str,
    ca_name: &str,
    cert: &CertificateRecord,
    e: Error,
) -> Error {
    let target = format!("cert:{ca_name}/{}", cert.serial);
    let event = AuditEvent::new(
        actor,
        "km.recover.refuse",
        target,
        json!({ "kind": e.kind, "detail": e.detail }),
    );
    if let Err(a) = store.audit(&event).await {
        return Error::new(
            a.kind,
            format!(
                "{} (and the refusal could not be audited: {})",
                e.detail, a.detail
            ),
        );
    }
    e
}

/// Steps 1–5 of a recovery; the key and the released request, or the refusal.
async fn release(
    store: &KeyArchive,
    ca_name: &str,
    cert: &CertificateRecord,
    approvals: &[PathBuf],
    kra_key: &Path,
    kra_pass_file: &Path,
    actor: &str,
) -> Result<(PKey<Private>, RecoveryRecord, Vec<String>)> {
    let open = open_request(store, ca_name, cert).await?;
    let (accepted, names) = check_approvals(store, &open, approvals).await?;
    check_quorum(&open.kra, accepted.len())?;
    let km = open_archive(store, &open, cert, kra_key, kra_pass_file).await?;
    // 5.
    let released = store
        .release_recovery(
            open.request.id,
            &accepted,
            actor,
            &AuditEvent::new(
                actor,
                "km.recover.release",
                format!("key-recovery:{}", open.request.id),
                json!({ "ca": ca_name, "serial": cert.serial, "kra": open.kra.name, "officers": names }),
            ),
        )
        .await?;
    Ok((km, released, names))
}

/// A km certificate's open recovery request, with what its approvals are checked
/// against.
struct OpenRequest {
    archive: ArchiveRecord,
    request: RecoveryRecord,
    /// The statement the officers must have signed.
    expected: Statement,
    kra: KraRecord,
    officers: Vec<OfficerRecord>,
}

/// Step 1: the km certificate's archived key and its open recovery request.
async fn open_request(
    store: &KeyArchive,
    ca_name: &str,
    cert: &CertificateRecord,
) -> Result<OpenRequest> {
    let archive = store.archive_of(cert.id).await?.ok_or_else(|| {
        Error::not_found(format!(
            "certificate {} of CA `{ca_name}` has no archived key",
            cert.serial
        ))
    })?;
    let r = store.open_recovery(archive.id).await?.ok_or_else(|| {
        Error::conflict(format!(
            "no recovery request is open for km certificate {}; open one with `gpki km request`",
            cert.serial
        ))
    })?;
    let expected = statement(store, ca_name, cert, &r).await?;
    let kra = store.kra(archive.kra_id).await?;
    let officers = store.officers(kra.id).await?;
    Ok(OpenRequest {
        archive,
        request: r,
        expected,
        kra,
        officers,
    })
}

/// Step 2: each approval names this request's statement, verifies with its
/// certificate's key, comes from a certificate in force now, an active officer's
/// of the KRA; no officer counts twice. The approvals to record, and the
/// officers' names.
async fn check_approvals(
    store: &KeyArchive,
    open: &OpenRequest,
    approvals: &[PathBuf],
) -> Result<(Vec<(NewApproval, AuditEvent)>, Vec<String>)> {
    let (r, expected, kra, officers) = (&open.request, &open.expected, &open.kra, &open.officers);
    let now = gpki_pki::time::now();
    let mut accepted: Vec<(NewApproval, AuditEvent)> = Vec::new();
    let mut names = Vec::new();
    for path in approvals {
        let what = path.display().to_string();
        let text = read_file(path, "approval")?;
        let a: Approval = serde_json::from_slice(&text)
            .map_err(|e| Error::malformed(format!("approval {what} does not parse: {e}")))?;
        if a.statement != *expected {
            let why = if a.statement.recovery != r.id {
                format!("it approves recovery request {}, not request {} (an approval counts for the request it names, once)", a.statement.recovery, r.id)
            } else {
                "its statement differs from the request's".to_string()
            };
            return Err(Error::policy(format!("approval {what} is refused: {why}")));
        }
        let checked = a
            .check()
            .map_err(|e| e.context(format!("approval {what}")))?;
        let (row, _) = store
            .certificate_in_force(&checked.certificate_der, now)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unauthorized,
                    format!("approval {what} is refused: {}", e.detail),
                )
            })?;
        let officer = officers
            .iter()
            .find(|o| o.cert_id == row.id && o.status == "active")
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Unauthorized,
                    format!("approval {what} is refused: certificate {} ({}) is not an active officer's of KRA {}", row.serial, row.subject, kra.name),
                )
            })?;
        if names.contains(&officer.name) {
            return Err(Error::policy(format!(
                "officer {} approved twice; {} different officers must approve",
                officer.name, kra.quorum
            )));
        }
        names.push(officer.name.clone());
        accepted.push((
            NewApproval {
                officer_id: officer.id,
                approval_sha256: checked.approval_sha256.clone(),
                approval: String::from_utf8_lossy(&text).into_owned(),
            },
            AuditEvent::new(
                &format!("officer:{}", officer.name),
                "km.recover.approve",
                format!("key-recovery:{}", r.id),
                json!({ "kra": kra.name, "certificate": row.serial, "approval_sha256": checked.approval_sha256 }),
            ),
        ));
    }
    Ok((accepted, names))
}

/// Step 3: at least the KRA's quorum of approvals stands.
fn check_quorum(kra: &KraRecord, accepted: usize) -> Result<()> {
    if (accepted as i64) < kra.quorum {
        return Err(Error::policy(format!(
            "{} approvals of KRA {}'s officers are needed to release a key; {} given",
            kra.quorum, kra.name, accepted
        )));
    }
    Ok(())
}

/// Step 4: the KRA's key opens the archive, and the key must be the certificate's.
async fn open_archive(
    store: &KeyArchive,
    open: &OpenRequest,
    cert: &CertificateRecord,
    kra_key: &Path,
    kra_pass_file: &Path,
) -> Result<PKey<Private>> {
    let kra = &open.kra;
    let kra_cert = store.certificate_by_id(kra.cert_id).await?;
    let kra_der = kra_cert
        .der
        .ok_or_else(|| Error::internal("the KRA's certificate is not signed"))?;
    let key = read_key(kra_key, kra_pass_file)?;
    if key.public_key_der()
        != der::Encode::to_der(
            &gpki_pki::cert::decode(&kra_der)?
                .tbs_certificate
                .subject_public_key_info,
        )?
    {
        return Err(Error::policy(format!(
            "{} is not KRA {}'s key",
            kra_key.display(),
            kra.name
        )));
    }
    let plain = gpki_kmi::envelope::open(&open.archive.envelope, key.pkey(), Some(&kra_der))?;
    let km = PKey::private_key_from_pkcs8(&plain)
        .map_err(|_| Error::internal("the archived key is not a PKCS#8 private key"))?;
    let cert_key = openssl::x509::X509::from_der(cert.der.as_deref().unwrap_or_default())
        .and_then(|c| c.public_key())
        .map_err(|_| Error::internal("the km certificate does not parse"))?;
    if !cert_key.public_eq(&km) {
        return Err(Error::internal(format!(
            "the archived key is not certificate {}'s; nothing is released",
            cert.serial
        )));
    }
    Ok(km)
}
