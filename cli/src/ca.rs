//! `gpki ca`: the root, subordinate CAs and cross-certificates.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use gpki_ca::{Ca, Issued, NewCa};
use gpki_pki::{Result, SignatureAlgorithm};
use serde_json::{json, Value};

use crate::cert::{cert_json, output_cert, CertOut};
use crate::{emit, read_file, write_file, Global, Output};

#[derive(Args)]
pub struct CaKeyArgs {
    /// Key type: rsa2048, rsa3072, rsa4096, p256, p384
    #[arg(long, default_value = "p384")]
    key_type: String,
    /// Signature algorithm (default follows the key: rsa-sha256/384, ecdsa-sha256/384)
    #[arg(long)]
    sig_alg: Option<String>,
    #[arg(long)]
    validity_days: Option<u32>,
    /// Base of the CA's CRL, OCSP and caIssuers URLs
    #[arg(long, env = "GPKI_URL_BASE", default_value = "http://pki.gpki.go.kr")]
    url_base: String,
    /// Also write the CA certificate (PEM) here
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ConstraintArgs {
    /// pathLenConstraint
    #[arg(long)]
    path_len: Option<u8>,
    /// Permitted directoryName subtree (RFC 4514), repeatable
    #[arg(long)]
    permit_dn: Vec<String>,
    /// Excluded directoryName subtree, repeatable
    #[arg(long)]
    exclude_dn: Vec<String>,
    /// Permitted DNS subtree (go.kr), repeatable
    #[arg(long)]
    permit_dns: Vec<String>,
    /// Excluded DNS subtree, repeatable
    #[arg(long)]
    exclude_dns: Vec<String>,
}

#[derive(Subcommand)]
pub enum CaCmd {
    /// Create the self-signed root CA (offline)
    InitRoot(InitRootArgs),
    /// Create a subordinate CA signed by --parent
    Create(CreateArgs),
    /// Cross-certify another PKI's CA certificate
    CrossCertify(CrossCertifyArgs),
    /// List CAs
    List,
    /// Show one CA
    Show(ShowArgs),
}

pub async fn run(g: &Global, cmd: CaCmd) -> Result<()> {
    match cmd {
        CaCmd::InitRoot(a) => init_root(g, a).await,
        CaCmd::Create(a) => create(g, a).await,
        CaCmd::CrossCertify(a) => cross_certify(g, a).await,
        CaCmd::List => list(g).await,
        CaCmd::Show(a) => show(g, a).await,
    }
}

/// The arguments of `gpki ca init-root`.
#[derive(Args)]
pub struct InitRootArgs {
    #[arg(long)]
    name: String,
    /// e.g. "CN=GPKI Root CA 1, OU=GPKI, O=Government of Korea, C=KR"
    #[arg(long)]
    subject: String,
    #[arg(long)]
    path_len: Option<u8>,
    #[command(flatten)]
    key: CaKeyArgs,
}

/// Create the self-signed root CA (offline)
async fn init_root(g: &Global, args: InitRootArgs) -> Result<()> {
    let InitRootArgs {
        name,
        subject,
        path_len,
        key,
    } = args;
    let ca = g.ca().await?;
    let new = new_ca(&name, &subject, &key, path_len, None)?;
    let issued = ca.init_root(&new).await?;
    report_ca(g, &ca, &name, &issued, key.out.as_deref()).await?;
    Ok(())
}

/// The arguments of `gpki ca create`.
#[derive(Args)]
pub struct CreateArgs {
    #[arg(long)]
    parent: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    subject: String,
    #[command(flatten)]
    constraints: ConstraintArgs,
    #[command(flatten)]
    key: CaKeyArgs,
    /// Keep it offline, as the root is: its key goes beside the offline
    /// CAs' (--offline-key-dir) and the online CA service never acts for it
    #[arg(long)]
    offline: bool,
}

/// Create a subordinate CA signed by --parent
async fn create(g: &Global, args: CreateArgs) -> Result<()> {
    let CreateArgs {
        parent,
        name,
        subject,
        constraints: c,
        key,
        offline,
    } = args;
    let ca = g.ca().await?;
    let mut new = new_ca(&name, &subject, &key, c.path_len, constraints(&c)?)?;
    new.offline = offline;
    let issued = ca.create_subordinate(&new, &parent).await?;
    report_ca(g, &ca, &name, &issued, key.out.as_deref()).await?;
    Ok(())
}

/// The arguments of `gpki ca cross-certify`.
#[derive(Args)]
pub struct CrossCertifyArgs {
    /// The CA that signs (usually the root)
    #[arg(long)]
    issuer: String,
    /// The other PKI's CA certificate (PEM or DER)
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    validity_days: Option<u32>,
    #[command(flatten)]
    constraints: ConstraintArgs,
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Cross-certify another PKI's CA certificate
async fn cross_certify(g: &Global, args: CrossCertifyArgs) -> Result<()> {
    let CrossCertifyArgs {
        issuer,
        cert,
        validity_days,
        constraints: c,
        out: path,
    } = args;
    let out = g.output;
    let ca = g.ca().await?;
    let foreign = read_file(&cert, "certificate")?;
    let issued = ca
        .cross_certify(
            &issuer,
            &foreign,
            c.path_len,
            constraints(&c)?,
            validity_days,
        )
        .await?;
    let file = output_cert(
        &ca,
        &issuer,
        &issued.der,
        &CertOut {
            out: path,
            der: false,
            chain: false,
        },
    )
    .await?;
    if file.is_some() || out == Output::Json {
        emit(
            out,
            json!({ "certificate": cert_json(&issuer, &issued.record), "file": file }),
            || {
                format!(
                    "cross-certificate {} for `{}` signed by {issuer}",
                    issued.record.serial, issued.record.subject
                )
            },
        );
    }
    Ok(())
}

/// List CAs
async fn list(g: &Global) -> Result<()> {
    let out = g.output;
    let store = g.store().await?;
    let all = store.authorities().await?;
    let names: std::collections::HashMap<i64, String> =
        all.iter().map(|a| (a.id, a.name.clone())).collect();
    let now = gpki_pki::time::now();
    let mut standings = Vec::with_capacity(all.len());
    for a in &all {
        standings.push(gpki_ca::standing(&store, a, now).await?);
    }
    let list: Vec<Value> = all
        .iter()
        .zip(&standings)
        .map(|(a, s)| ca_json(a, s, &names))
        .collect();
    emit(out, json!(list), || {
        all.iter()
            .zip(&standings)
            .map(|(a, s)| {
                format!(
                    "{:<16} {:<8} {:<7} parent={:<12} {}{}",
                    a.name,
                    s.label(),
                    if a.offline { "offline" } else { "online" },
                    a.parent_id
                        .and_then(|p| names.get(&p).cloned())
                        .unwrap_or_else(|| "-".into()),
                    a.subject,
                    match s {
                        gpki_ca::Standing::Unusable { .. } =>
                            format!("\n    {}", s.describe(&a.name)),
                        _ => String::new(),
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// The arguments of `gpki ca show`.
#[derive(Args)]
pub struct ShowArgs {
    name: String,
    /// Print the certificate chain as PEM
    #[arg(long)]
    pem: bool,
}

/// Show one CA
async fn show(g: &Global, args: ShowArgs) -> Result<()> {
    let ShowArgs { name, pem } = args;
    let out = g.output;
    let store = g.store().await?;
    let a = store.authority_by_name(&name).await?;
    let all = store.authorities().await?;
    let names: std::collections::HashMap<i64, String> =
        all.iter().map(|a| (a.id, a.name.clone())).collect();
    if pem {
        let mut walk = Some(a);
        while let Some(r) = walk {
            if let Some(d) = &r.cert_der {
                print!("{}", gpki_pki::pem::encode("CERTIFICATE", d));
            }
            walk = match r.parent_id {
                Some(p) if p != r.id => Some(store.authority(p).await?),
                _ => None,
            };
        }
    } else {
        let standing = gpki_ca::standing(&store, &a, gpki_pki::time::now()).await?;
        let v = ca_json(&a, &standing, &names);
        emit(out, v.clone(), || {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        });
    }
    Ok(())
}

fn constraints(c: &ConstraintArgs) -> Result<Option<x509_cert::ext::pkix::NameConstraints>> {
    gpki_pki::cert::name_constraints(&c.permit_dn, &c.exclude_dn, &c.permit_dns, &c.exclude_dns)
}

fn new_ca(
    name: &str,
    subject: &str,
    key: &CaKeyArgs,
    path_len: Option<u8>,
    nc: Option<x509_cert::ext::pkix::NameConstraints>,
) -> Result<NewCa> {
    Ok(NewCa {
        name: name.to_string(),
        subject: subject.to_string(),
        key_type: key.key_type.parse()?,
        signature_algorithm: key
            .sig_alg
            .as_deref()
            .map(str::parse::<SignatureAlgorithm>)
            .transpose()?,
        validity_days: key.validity_days,
        path_len,
        name_constraints: nc,
        url_base: key.url_base.clone(),
        offline: false,
    })
}

fn ca_json(
    a: &gpki_store::AuthorityRecord,
    standing: &gpki_ca::Standing,
    names: &std::collections::HashMap<i64, String>,
) -> Value {
    let cert = a
        .cert_der
        .as_deref()
        .and_then(|d| gpki_pki::cert::decode(d).ok());
    json!({
        "name": a.name,
        "status": standing.label(),
        "status_cause": standing.cause(),
        "status_detail": standing.describe(&a.name),
        "parent": a.parent_id.filter(|p| *p != a.id).and_then(|p| names.get(&p).cloned()),
        "subject": a.subject,
        "key_type": a.key_type,
        "signature_algorithm": a.signature_algorithm,
        "key_file": a.key_path,
        "offline": a.offline,
        "serial": cert.as_ref().map(|c| hex::encode(c.tbs_certificate.serial_number.as_bytes())),
        "not_before": cert.as_ref().map(|c| gpki_pki::time::rfc3339(gpki_pki::time::unix_seconds(&c.tbs_certificate.validity.not_before))),
        "not_after": cert.as_ref().map(|c| gpki_pki::time::rfc3339(gpki_pki::time::unix_seconds(&c.tbs_certificate.validity.not_after))),
        "crl_url": a.crl_url,
        "ocsp_url": a.ocsp_url,
        "ca_issuers_url": a.ca_issuers_url,
    })
}

async fn report_ca(
    g: &Global,
    ca: &Ca,
    name: &str,
    issued: &Issued,
    out_path: Option<&Path>,
) -> Result<()> {
    if let Some(p) = out_path {
        write_file(
            p,
            gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
        )?;
    }
    let a = ca.store().authority_by_name(name).await?;
    emit(
        g.output,
        json!({ "ca": name, "serial": issued.record.serial, "subject": issued.record.subject, "key_file": a.key_path,
        "not_after": gpki_pki::time::rfc3339(issued.record.not_after), "file": out_path.map(|p| p.display().to_string()) }),
        || {
            format!(
                "CA {name} created: serial {}, valid until {}, key in {} (encrypted, mode 0600)",
                issued.record.serial,
                gpki_pki::time::rfc3339(issued.record.not_after),
                a.key_path
            )
        },
    );
    Ok(())
}
