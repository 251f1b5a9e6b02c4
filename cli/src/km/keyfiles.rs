//! `gpki km export | import`: PKCS#12 files to Korean key files (NPKI) and back.

use std::path::PathBuf;

use clap::Args;
use gpki_kmi::keyfile::{self};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result};
use serde_json::json;

use super::PairArg;
use crate::{emit, read_file, Global};

/// The arguments of `gpki km export`.
#[derive(Args)]
pub struct ExportArgs {
    #[arg(long)]
    pkcs12: PathBuf,
    #[arg(long)]
    pass_file: PathBuf,
    /// Which pair the files hold: sign (signCert.der, signPri.key) or km
    #[arg(long, value_enum)]
    pair: PairArg,
    #[arg(long)]
    npki_dir: PathBuf,
    /// Password of the key files written
    #[arg(long)]
    out_pass_file: PathBuf,
}

/// Write a PKCS#12 file's key and certificate as Korean key files
pub(super) fn export(g: &Global, args: ExportArgs) -> Result<()> {
    let ExportArgs {
        pkcs12,
        pass_file,
        pair,
        npki_dir,
        out_pass_file,
    } = args;
    let out = g.output;
    let p = keyfile::from_pkcs12(
        &read_file(&pkcs12, "PKCS#12 file")?,
        &Passphrase::from_file(&pass_file)?,
        &pkcs12.display().to_string(),
    )?;
    let (c, k) = keyfile::write_korean(
        &npki_dir,
        pair.into(),
        &p.key,
        &p.cert_der,
        &Passphrase::from_file(&out_pass_file)?,
    )?;
    emit(out, json!({ "written": [c, k] }), || {
        format!("wrote {} and {}", c.display(), k.display())
    });
    Ok(())
}

/// The arguments of `gpki km import`.
#[derive(Args)]
pub struct ImportArgs {
    #[arg(long)]
    npki_dir: PathBuf,
    #[arg(long, value_enum)]
    pair: PairArg,
    #[arg(long)]
    pass_file: PathBuf,
    #[arg(long)]
    pkcs12: PathBuf,
    #[arg(long)]
    out_pass_file: PathBuf,
}

/// Read Korean key files and write them as PKCS#12
pub(super) fn import(g: &Global, args: ImportArgs) -> Result<()> {
    let ImportArgs {
        npki_dir,
        pair,
        pass_file,
        pkcs12,
        out_pass_file,
    } = args;
    let out = g.output;
    if pkcs12.exists() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} exists; refusing to overwrite it", pkcs12.display()),
        ));
    }
    let p = keyfile::read_korean(&npki_dir, pair.into(), &Passphrase::from_file(&pass_file)?)?;
    let p12 = keyfile::to_pkcs12(
        &p.key,
        &p.cert_der,
        &[],
        "key",
        &Passphrase::from_file(&out_pass_file)?,
    )?;
    gpki_pki::signer::write_private_file(&pkcs12, &p12)?;
    emit(out, json!({ "written": [pkcs12] }), || {
        format!("wrote {}", pkcs12.display())
    });
    Ok(())
}
