//! `gpki km kra create | list` and `gpki km officer add | remove | list`: Key
//! Recovery Authorities and the officers whose approvals release a key.

use std::path::PathBuf;

use clap::Args;
use gpki_pki::{Error, ErrorKind, Result};
use gpki_store::AuditEvent;
use serde_json::json;

use super::read_cert;
use crate::{emit, read_file, write_file, Global};

/// The arguments of `gpki km kra create`.
#[derive(Args)]
pub struct KraCreateArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    ca: String,
    #[arg(long)]
    csr: PathBuf,
    /// Approvals needed to release a key
    #[arg(long)]
    quorum: i64,
    /// Write the KRA's certificate (PEM) here
    #[arg(long)]
    cert_out: Option<PathBuf>,
}

/// Certify a KRA's key (from its PKCS#10 request, profile key-recovery) and
/// register the KRA; its private key stays where the request was made
pub(super) async fn kra_create(g: &Global, args: KraCreateArgs) -> Result<()> {
    let KraCreateArgs {
        name,
        ca: ca_name,
        csr,
        quorum,
        cert_out,
    } = args;
    let out = g.output;
    let (ca, store) = g.ca_and_store().await?;
    if !(2..=16).contains(&quorum) {
        return Err(Error::malformed(
            "--quorum must be 2 to 16: a key is released by more than one officer",
        ));
    }
    if store.kras().await?.iter().any(|k| k.name == name) {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("a KRA named `{name}` exists already"),
        ));
    }
    let issued = ca
        .issue(&gpki_ca::IssueRequest {
            ca: ca_name.clone(),
            profile: "key-recovery".into(),
            subject: None,
            key: gpki_ca::KeySource::Csr(read_file(&csr, "request")?),
            sans: vec![],
            validity_days: None,
            request_key: None,
            renewed_from: None,
        })
        .await?;
    let kra = store
        .create_kra(
            &name,
            issued.record.id,
            quorum,
            &AuditEvent::new(
                &g.actor(),
                "km.kra.create",
                format!("kra:{name}"),
                json!({ "ca": ca_name, "serial": issued.record.serial, "quorum": quorum }),
            ),
        )
        .await?;
    if let Some(p) = &cert_out {
        write_file(
            p,
            gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
        )?;
    }
    emit(
        out,
        json!({ "kra": kra, "serial": issued.record.serial, "subject": issued.record.subject }),
        || {
            format!(
                "KRA {name}: certificate {} of CA {ca_name}, {quorum} approvals release a key",
                issued.record.serial
            )
        },
    );
    Ok(())
}

/// List the KRAs
pub(super) async fn kra_list(g: &Global) -> Result<()> {
    let out = g.output;
    let store = g.store().await?;
    let kras = store.kras().await?;
    let mut rows = Vec::new();
    for k in &kras {
        let officers = store.officers(k.id).await?;
        let active = officers.iter().filter(|o| o.status == "active").count();
        rows.push(json!({ "kra": k, "officers": active }));
    }
    emit(out, json!({ "kras": rows }), || {
        kras.iter()
            .zip(&rows)
            .map(|(k, r)| {
                format!(
                    "{}\tquorum {}\tofficers {}",
                    k.name, k.quorum, r["officers"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// The arguments of `gpki km officer add`.
#[derive(Args)]
pub struct OfficerAddArgs {
    #[arg(long)]
    kra: String,
    #[arg(long)]
    name: String,
    /// The officer's certificate (PEM or DER), in force
    #[arg(long)]
    cert: PathBuf,
}

/// Make the holder of a certificate of this store a recovery officer
pub(super) async fn officer_add(g: &Global, args: OfficerAddArgs) -> Result<()> {
    let OfficerAddArgs { kra, name, cert } = args;
    let out = g.output;
    let store = g.store().await?;
    let k = store.kra_by_name(&kra).await?;
    let der = read_cert(&cert)?;
    let (row, authority) = store
        .certificate_in_force(&der, gpki_pki::time::now())
        .await
        .map_err(|e| {
            Error::policy(format!(
                "an officer's certificate must be in force: {}",
                e.detail
            ))
        })?;
    // An approval is a signature by a person: a key that signs, never one
    // the KRA or the CA holds (an official's km key, the KRA's own), and
    // one officer per person, whatever certificates they hold.
    let person = |subject: &str| {
        gpki_pki::name::parse_rfc4514(subject)
            .ok()
            .and_then(|a| gpki_pki::name::official(&a))
            .map(|o| o.employee_number)
    };
    let number = person(&row.subject);
    if row.profile != "official-sign"
        || number.is_none()
        || !gpki_pki::cert::signs(&gpki_pki::cert::decode(&der)?.tbs_certificate)?
    {
        return Err(Error::policy(format!(
            "certificate {} (profile {}) is not an official's personal signing certificate: an officer approves with one (official-sign, CN=NAME(NUMBER); never a km, KRA or service key)",
            row.serial, row.profile
        )));
    }
    // One person, one officer: by employee number (bound to one official).
    for o in store.officers(k.id).await? {
        if o.status == "active"
            && person(&store.certificate_by_id(o.cert_id).await?.subject) == number
        {
            return Err(Error::policy(format!(
                "{} is officer `{}` of KRA {kra} already: one person is one officer",
                row.subject, o.name
            )));
        }
    }
    let officer = store
        .add_officer(
            k.id,
            &name,
            row.id,
            &AuditEvent::new(&g.actor(), "km.officer.add", format!("kra:{kra}"), json!({ "officer": name, "ca": authority.name, "serial": row.serial, "subject": row.subject })),
        )
        .await?;
    emit(out, json!({ "officer": officer }), || {
        format!(
            "{name} is a recovery officer of KRA {kra} (certificate {} of CA {})",
            row.serial, authority.name
        )
    });
    Ok(())
}

/// The arguments of `gpki km officer remove`.
#[derive(Args)]
pub struct OfficerRemoveArgs {
    #[arg(long)]
    kra: String,
    #[arg(long)]
    name: String,
}

/// Remove an officer: their approvals no longer count
pub(super) async fn officer_remove(g: &Global, args: OfficerRemoveArgs) -> Result<()> {
    let OfficerRemoveArgs { kra, name } = args;
    let out = g.output;
    let store = g.store().await?;
    let k = store.kra_by_name(&kra).await?;
    let officer = store
        .set_officer_status(
            k.id,
            &name,
            "removed",
            &AuditEvent::new(
                &g.actor(),
                "km.officer.remove",
                format!("kra:{kra}"),
                json!({ "officer": name }),
            ),
        )
        .await?;
    emit(out, json!({ "officer": officer }), || {
        format!("{name} is no longer an officer of KRA {kra}")
    });
    Ok(())
}

/// The arguments of `gpki km officer list`.
#[derive(Args)]
pub struct OfficerListArgs {
    #[arg(long)]
    kra: String,
}

/// List a KRA's officers
pub(super) async fn officer_list(g: &Global, args: OfficerListArgs) -> Result<()> {
    let OfficerListArgs { kra } = args;
    let out = g.output;
    let store = g.store().await?;
    let k = store.kra_by_name(&kra).await?;
    let officers = store.officers(k.id).await?;
    emit(
        out,
        json!({ "kra": kra, "quorum": k.quorum, "officers": officers }),
        || {
            officers
                .iter()
                .map(|o| format!("{}\t{}\tcertificate id {}", o.name, o.status, o.cert_id))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    Ok(())
}
