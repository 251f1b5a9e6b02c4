//! `gpki cert`: issue, renew, revoke, release, list and show certificates, and
//! issue for many officials from a CSV.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gpki_ca::batch::{BatchOptions, BatchReport};
use gpki_ca::{Ca, IssueRequest, Issued, KeySource};
use gpki_pki::cert::SanEntry;
use gpki_pki::crl::RevocationReason;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result, Signer, SoftwareKey};
use gpki_store::{CertFilter, CertStatus};
use serde_json::{json, Value};

use crate::{emit, key, read_file, write_file, Global, Output};

#[derive(Args)]
pub struct CertOut {
    /// Write the certificate here (default: print PEM)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write DER instead of PEM
    #[arg(long)]
    pub der: bool,
    /// Append the CA chain to the PEM output
    #[arg(long)]
    pub chain: bool,
}

#[derive(Subcommand)]
pub enum CertCmd {
    /// Issue a certificate from a CSR or for a generated key
    Issue(IssueArgs),
    /// Renew a certificate (same key unless --csr or --generate-key)
    Renew(RenewArgs),
    /// Revoke a certificate (certificateHold puts it on hold)
    Revoke(RevokeArgs),
    /// Release a certificate from certificateHold
    Release(ReleaseArgs),
    /// List certificates
    List(ListArgs),
    /// Show one certificate
    Show(ShowArgs),
    /// Issue for many officials from a CSV (resumable)
    IssueBatch(IssueBatchArgs),
}

pub async fn run(g: &Global, cmd: CertCmd) -> Result<()> {
    match cmd {
        CertCmd::Issue(a) => issue(g, a).await,
        CertCmd::Renew(a) => renew(g, a).await,
        CertCmd::Revoke(a) => revoke(g, a).await,
        CertCmd::Release(a) => release(g, a).await,
        CertCmd::List(a) => list(g, a).await,
        CertCmd::Show(a) => show(g, a).await,
        CertCmd::IssueBatch(a) => issue_batch(g, a).await,
    }
}

/// The arguments of `gpki cert issue`.
#[derive(Args)]
pub struct IssueArgs {
    #[arg(long)]
    ca: String,
    #[arg(long)]
    profile: String,
    /// PKCS#10 request (PEM or DER)
    #[arg(long, conflicts_with = "generate_key")]
    csr: Option<PathBuf>,
    /// RFC 4514 subject (required with --generate-key; overrides the CSR's)
    #[arg(long)]
    subject: Option<String>,
    /// Generate the key here (written with --key-out or --pkcs12)
    #[arg(long)]
    generate_key: bool,
    /// subjectAltName: dns:host, email:addr, ip:addr, uri:… (repeatable)
    #[arg(long)]
    san: Vec<String>,
    #[arg(long)]
    validity_days: Option<u32>,
    #[command(flatten)]
    out: CertOut,
    #[command(flatten)]
    key_out: key::KeyOut,
}

/// Issue a certificate from a CSR or for a generated key
async fn issue(g: &Global, args: IssueArgs) -> Result<()> {
    let IssueArgs {
        ca: ca_name,
        profile,
        csr,
        subject,
        generate_key,
        san,
        validity_days,
        out: cert_out,
        key_out,
    } = args;
    let out = g.output;
    let ca = g.ca().await?;
    let (key, generated) = match (&csr, generate_key) {
        (Some(p), false) => (KeySource::Csr(read_file(p, "CSR")?), None),
        (None, true) => {
            let (k, pass) = key::generated_key(&key_out)?;
            (
                KeySource::PublicKey(k.public_key_der().to_vec()),
                Some((k, pass)),
            )
        }
        _ => return Err(Error::malformed("give --csr FILE or --generate-key")),
    };
    let req = IssueRequest {
        ca: ca_name.clone(),
        profile,
        subject,
        key,
        sans: sans(&san)?,
        validity_days,
        request_key: None,
        renewed_from: None,
    };
    let issued = ca.issue(&req).await?;
    finish_issue(
        &ca, &ca_name, &issued, &cert_out, &key_out, generated, out, "issued",
    )
    .await?;
    Ok(())
}

/// The arguments of `gpki cert renew`.
#[derive(Args)]
pub struct RenewArgs {
    #[arg(long)]
    ca: String,
    #[arg(long)]
    serial: String,
    /// New key from this CSR
    #[arg(long, conflicts_with = "generate_key")]
    csr: Option<PathBuf>,
    /// New generated key
    #[arg(long)]
    generate_key: bool,
    /// Revoke the old certificate (superseded)
    #[arg(long)]
    revoke_old: bool,
    #[command(flatten)]
    out: CertOut,
    #[command(flatten)]
    key_out: key::KeyOut,
}

/// Renew a certificate (same key unless --csr or --generate-key)
async fn renew(g: &Global, args: RenewArgs) -> Result<()> {
    let RenewArgs {
        ca: ca_name,
        serial,
        csr,
        generate_key,
        revoke_old,
        out: cert_out,
        key_out,
    } = args;
    let out = g.output;
    let ca = g.ca().await?;
    // A pair renews together, with a new km key made and archived (the RA
    // and CA services' route); alone, its signing certificate would leave
    // the km key unpaired, and a km certificate renewed here would certify
    // a key the archive does not hold.
    let authority = ca.store().authority_by_name(&ca_name).await?;
    let hex = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    if let Some(old) = ca.store().certificate(authority.id, &hex).await? {
        if old.profile == gpki_ca::km::KM_PROFILE || ca.store().pair_of(old.id).await?.is_some() {
            return Err(Error::policy(format!(
                "certificate {hex} ({}) is one of a signing and km pair: the pair renews together through the RA (gpki ra renew --km-transport), with a new km key archived",
                old.profile
            )));
        }
    }
    let (key, generated) = match (&csr, generate_key) {
        (Some(p), false) => (Some(KeySource::Csr(read_file(p, "CSR")?)), None),
        (None, true) => {
            let (k, pass) = key::generated_key(&key_out)?;
            (
                Some(KeySource::PublicKey(k.public_key_der().to_vec())),
                Some((k, pass)),
            )
        }
        _ => (None, None),
    };
    let issued = ca.renew(&ca_name, &serial, key, revoke_old, None).await?;
    finish_issue(
        &ca,
        &ca_name,
        &issued,
        &cert_out,
        &key_out,
        generated,
        out,
        "renewed as",
    )
    .await?;
    Ok(())
}

/// The arguments of `gpki cert revoke`.
#[derive(Args)]
pub struct RevokeArgs {
    #[arg(long)]
    ca: String,
    #[arg(long)]
    serial: String,
    /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
    /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise
    #[arg(long, default_value = "unspecified")]
    reason: String,
    /// When the key is known or suspected to have been compromised (RFC 3339)
    #[arg(long)]
    invalidity_date: Option<String>,
    /// Revoke the other certificate of an official's pair (official-sign and
    /// official-km) too, for the same reason
    #[arg(long)]
    with_pair: bool,
}

/// Revoke a certificate (certificateHold puts it on hold)
async fn revoke(g: &Global, args: RevokeArgs) -> Result<()> {
    let RevokeArgs {
        ca: ca_name,
        serial,
        reason,
        invalidity_date,
        with_pair,
    } = args;
    let out = g.output;
    let reason: RevocationReason = reason.parse()?;
    let inv = invalidity_date
        .as_deref()
        .map(gpki_pki::time::parse_rfc3339)
        .transpose()?;
    let ca = g.ca_without_key().await?;
    let (r, pair) = ca
        .revoke_with_pair(&ca_name, &serial, reason, inv, with_pair)
        .await?;
    let mut v = cert_json(&ca_name, &r);
    v["pair"] = pair.as_ref().map(|p| cert_json(&ca_name, p)).into();
    emit(out, v, || {
        let mut t = format!(
            "certificate {} of CA {ca_name} is now {} ({})",
            r.serial, r.status, reason
        );
        match &pair {
            Some(p) if with_pair => {
                t += &format!(
                    "\nits pair {} ({}) is now {}",
                    p.serial, p.profile, p.status
                )
            }
            Some(p) if p.status == gpki_store::CertStatus::Issued => {
                t += &format!(
                    "\nits pair {} ({}) is still valid; revoke it too with --with-pair",
                    p.serial, p.profile
                )
            }
            _ => {}
        }
        t
    });
    Ok(())
}

/// The arguments of `gpki cert release`.
#[derive(Args)]
pub struct ReleaseArgs {
    #[arg(long)]
    ca: String,
    #[arg(long)]
    serial: String,
}

/// Release a certificate from certificateHold
async fn release(g: &Global, args: ReleaseArgs) -> Result<()> {
    let ReleaseArgs {
        ca: ca_name,
        serial,
    } = args;
    let out = g.output;
    let ca = g.ca_without_key().await?;
    let r = ca.release_hold(&ca_name, &serial).await?;
    emit(out, cert_json(&ca_name, &r), || {
        format!(
            "certificate {} of CA {ca_name} released from hold",
            r.serial
        )
    });
    Ok(())
}

/// The arguments of `gpki cert list`.
#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    ca: Option<String>,
    /// pending, issued, revoked, hold, abandoned
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    profile: Option<String>,
    /// Subject contains this text
    #[arg(long)]
    subject: Option<String>,
    /// Expiring within this many days
    #[arg(long)]
    expiring_within_days: Option<u32>,
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

/// List certificates
async fn list(g: &Global, args: ListArgs) -> Result<()> {
    let ListArgs {
        ca,
        status,
        profile,
        subject,
        expiring_within_days,
        limit,
    } = args;
    let out = g.output;
    let store = g.store().await?;
    let names: std::collections::HashMap<i64, String> = store
        .authorities()
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let issuer_id = match &ca {
        Some(n) => Some(store.authority_by_name(n).await?.id),
        None => None,
    };
    let filter = CertFilter {
        issuer_id,
        status: status
            .as_deref()
            .map(str::parse::<CertStatus>)
            .transpose()?,
        profile,
        subject_contains: subject,
        expires_before: expiring_within_days.map(|d| gpki_pki::time::now() + i64::from(d) * 86_400),
        limit,
    };
    let rows = store.list_certificates(&filter).await?;
    let name_of = |id: i64| names.get(&id).cloned().unwrap_or_default();
    emit(
        out,
        json!(rows
            .iter()
            .map(|r| cert_json(&name_of(r.issuer_id), r))
            .collect::<Vec<_>>()),
        || {
            rows.iter()
                .map(|r| {
                    format!(
                        "{:<12} {:<32} {:<9} {:<17} {}  {}",
                        name_of(r.issuer_id),
                        r.serial,
                        r.status.as_str(),
                        r.profile,
                        gpki_pki::time::rfc3339(r.not_after),
                        r.subject
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    Ok(())
}

/// The arguments of `gpki cert show`.
#[derive(Args)]
pub struct ShowArgs {
    #[arg(long)]
    ca: String,
    #[arg(long)]
    serial: String,
    #[command(flatten)]
    out: CertOut,
}

/// Show one certificate
async fn show(g: &Global, args: ShowArgs) -> Result<()> {
    let ShowArgs {
        ca: ca_name,
        serial,
        out: cert_out,
    } = args;
    let out = g.output;
    let store = g.store().await?;
    let a = store.authority_by_name(&ca_name).await?;
    let serial_hex = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    let r = store.certificate(a.id, &serial_hex).await?.ok_or_else(|| {
        Error::not_found(format!(
            "no certificate with serial {serial_hex} from CA `{ca_name}`"
        ))
    })?;
    if cert_out.out.is_some() || cert_out.der {
        let der = r.der.clone().ok_or_else(|| {
            Error::conflict(format!(
                "certificate {serial_hex} was never signed ({})",
                r.status
            ))
        })?;
        let ca = Ca::without_keys(store.clone(), g.profiles()?, g.actor());
        output_cert(&ca, &ca_name, &der, &cert_out).await?;
    } else {
        let mut v = cert_json(&ca_name, &r);
        v["pem"] = json!(r
            .der
            .as_deref()
            .map(|d| gpki_pki::pem::encode("CERTIFICATE", d)));
        emit(out, v.clone(), || {
            let mut t = serde_json::to_string_pretty(&cert_json(&ca_name, &r)).unwrap_or_default();
            if let Some(d) = &r.der {
                t += "\n";
                t += &gpki_pki::pem::encode("CERTIFICATE", d);
            }
            t
        });
    }
    Ok(())
}

/// The arguments of `gpki cert issue-batch`.
#[derive(Args)]
pub struct IssueBatchArgs {
    #[arg(long)]
    ca: String,
    #[arg(long)]
    profile: String,
    /// Header: request_id,subject[,san][,csr]
    #[arg(long)]
    csv: PathBuf,
    /// Where certificates and generated keys are written
    #[arg(long)]
    out_dir: PathBuf,
    #[arg(long, default_value = "p256")]
    key_type: String,
    #[arg(long, env = "GPKI_OUT_PASS_FILE")]
    out_pass_file: Option<PathBuf>,
    #[arg(long, default_value_t = 500)]
    chunk: usize,
}

/// Issue for many officials from a CSV (resumable)
async fn issue_batch(g: &Global, args: IssueBatchArgs) -> Result<()> {
    let IssueBatchArgs {
        ca: ca_name,
        profile,
        csv,
        out_dir,
        key_type,
        out_pass_file,
        chunk,
    } = args;
    let out = g.output;
    let rows = gpki_ca::batch::read_csv(&csv)?;
    let ca = g.ca().await?;
    let opts = BatchOptions {
        ca: ca_name,
        profile,
        key_type: key_type.parse()?,
        out_dir,
        key_passphrase: out_pass_file
            .as_deref()
            .map(Passphrase::from_file)
            .transpose()?,
        chunk,
    };
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    if out == Output::Json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} issuing [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    let report: BatchReport = ca
        .issue_batch(rows, &opts, &mut |done| bar.set_position(done as u64))
        .await?;
    bar.finish_and_clear();
    emit(out, serde_json::to_value(&report).expect("JSON"), || {
        let mut t = format!(
            "{} rows: {} issued, {} already issued, {} resumed from pending, {} abandoned and reissued, {} failed",
            report.rows, report.issued, report.already_issued, report.resumed, report.abandoned, report.failed.len()
        );
        for f in &report.failed {
            t += &format!("\n  line {} ({}): {}", f.line, f.request_id, f.error);
        }
        t
    });
    if !report.failed.is_empty() {
        return Err(Error::new(
            ErrorKind::PolicyViolation,
            format!("{} row(s) were not issued", report.failed.len()),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn finish_issue(
    ca: &Ca,
    ca_name: &str,
    issued: &Issued,
    cert_out: &CertOut,
    key_out: &key::KeyOut,
    generated: Option<(SoftwareKey, Passphrase)>,
    out: Output,
    verb: &str,
) -> Result<()> {
    let key_files = match &generated {
        Some((k, pass)) => key::write_generated(ca, ca_name, k, pass, issued, key_out).await?,
        None => Vec::new(),
    };
    if cert_out.out.is_none() && !cert_out.der && out == Output::Text {
        output_cert(ca, ca_name, &issued.der, cert_out).await?;
        return Ok(());
    }
    let file = if cert_out.out.is_some() {
        output_cert(ca, ca_name, &issued.der, cert_out).await?
    } else {
        None
    };
    let mut v = cert_json(ca_name, &issued.record);
    v["file"] = json!(file);
    v["key_files"] = json!(key_files);
    if file.is_none() {
        v["pem"] = json!(gpki_pki::pem::encode("CERTIFICATE", &issued.der));
    }
    emit(out, v, || {
        format!(
            "{verb} {} ({}) for `{}` → {}",
            issued.record.serial,
            issued.record.profile,
            issued.record.subject,
            file.clone().unwrap_or_default()
        )
    });
    Ok(())
}

fn sans(list: &[String]) -> Result<Vec<SanEntry>> {
    list.iter().map(|s| s.parse()).collect()
}

pub fn cert_json(ca: &str, r: &gpki_store::CertificateRecord) -> Value {
    json!({
        "ca": ca,
        "serial": r.serial,
        "subject": r.subject,
        "profile": r.profile,
        "status": r.status,
        "not_before": gpki_pki::time::rfc3339(r.not_before),
        "not_after": gpki_pki::time::rfc3339(r.not_after),
        "revoked_at": r.revoked_at.map(gpki_pki::time::rfc3339),
        "reason": r.reason.and_then(RevocationReason::from_code).map(|x| x.as_str()),
        "invalidity_date": r.invalidity_date.map(gpki_pki::time::rfc3339),
        "renewed_from": r.renewed_from,
    })
}

/// Writes or prints a certificate as the CertOut flags ask.
pub async fn output_cert(
    ca: &Ca,
    ca_name: &str,
    der: &[u8],
    out: &CertOut,
) -> Result<Option<String>> {
    let bytes = if out.der {
        der.to_vec()
    } else {
        let mut pem = gpki_pki::pem::encode("CERTIFICATE", der);
        if out.chain {
            for c in ca.chain(ca_name).await? {
                pem += &gpki_pki::pem::encode("CERTIFICATE", &c);
            }
        }
        pem.into_bytes()
    };
    match &out.out {
        Some(p) => {
            write_file(p, &bytes)?;
            Ok(Some(p.display().to_string()))
        }
        None if out.der => Err(Error::malformed("--der needs --out FILE")),
        None => {
            print!("{}", String::from_utf8_lossy(&bytes));
            Ok(None)
        }
    }
}
