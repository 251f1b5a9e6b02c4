//! `gpki km issue | open`: an official's km certificate, its key made here,
//! archived to the KRA and sealed to the official's transport key, then opened.

use std::path::PathBuf;

use clap::Args;
use gpki_pki::{Error, Result};
use openssl::pkey::PKey;
use serde_json::json;

use super::{certificate, read_cert, read_key, KeyFilesOut};
use crate::{emit, read_file, write_file, Global};

/// The arguments of `gpki km issue`.
#[derive(Args)]
pub struct IssueArgs {
    #[arg(long)]
    ca: String,
    /// Serial of the official-sign certificate the km certificate pairs with
    #[arg(long)]
    serial: String,
    /// The official's transport key: a PKCS#10 request (RSA) they made for it
    #[arg(long)]
    transport: PathBuf,
    #[arg(long)]
    kra: String,
    /// Write the km certificate (PEM) here
    #[arg(long)]
    cert_out: PathBuf,
    /// Write the sealed km key (DER CMS EnvelopedData) here
    #[arg(long)]
    envelope_out: PathBuf,
}

/// Issue the km certificate of an official-sign certificate: a key made here,
/// archived to the KRA, and sealed to the official's transport key
pub(super) async fn issue(g: &Global, args: IssueArgs) -> Result<()> {
    let IssueArgs {
        ca: ca_name,
        serial,
        transport,
        kra,
        cert_out,
        envelope_out,
    } = args;
    let out = g.output;
    let (ca, store) = g.ca_and_store().await?;
    let sign = certificate(&store, &ca_name, &serial).await?;
    let csr = gpki_pki::csr::parse_and_verify(&read_file(&transport, "transport request")?)?;
    let km = ca
        .issue_km(&gpki_ca::km::KmOrder {
            ca: &ca_name,
            sign: &sign,
            kra: &kra,
            transport_spki: csr.spki_der(),
            request_key: None,
            renewed_from: None,
        })
        .await?;
    write_file(
        &cert_out,
        gpki_pki::pem::encode("CERTIFICATE", &km.issued.der).as_bytes(),
    )?;
    write_file(&envelope_out, &km.delivery)?;
    emit(
        out,
        json!({ "serial": km.issued.record.serial, "pair": sign.serial, "certificate": cert_out, "envelope": envelope_out }),
        || {
            format!(
            "km certificate {} (pair of {}) written to {}; its key, sealed to the transport key, to {}",
            km.issued.record.serial,
            sign.serial,
            cert_out.display(),
            envelope_out.display()
        )
        },
    );
    Ok(())
}

/// The arguments of `gpki km open`.
#[derive(Args)]
pub struct OpenArgs {
    /// The sealed key (DER CMS EnvelopedData)
    #[arg(long)]
    envelope: PathBuf,
    /// The km certificate (PEM or DER)
    #[arg(long)]
    cert: PathBuf,
    /// The transport key (encrypted PKCS#8 PEM, from `gpki key new`)
    #[arg(long)]
    transport_key: PathBuf,
    #[arg(long)]
    transport_pass_file: PathBuf,
    #[command(flatten)]
    out: KeyFilesOut,
}

/// Open a delivered km key with the transport key, and write it as PKCS#12
/// and/or Korean key files
pub(super) fn open(g: &Global, args: OpenArgs) -> Result<()> {
    let OpenArgs {
        envelope,
        cert,
        transport_key,
        transport_pass_file,
        out: files,
    } = args;
    let out = g.output;
    let pass = files.check()?;
    let cert_der = read_cert(&cert)?;
    let transport = read_key(&transport_key, &transport_pass_file)?;
    let plain =
        gpki_kmi::envelope::open(&read_file(&envelope, "sealed key")?, transport.pkey(), None)?;
    let key = PKey::private_key_from_pkcs8(&plain)
        .map_err(|_| Error::malformed("the sealed content is not a PKCS#8 private key"))?;
    let written = files.write(&pass, &key, &cert_der, &[], "km")?;
    emit(out, json!({ "written": written }), || {
        format!("wrote {}", written.join(", "))
    });
    Ok(())
}
