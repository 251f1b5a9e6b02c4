//! `gpki crl`: generate and store a CRL.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gpki_pki::{Error, Result};
use serde_json::json;

use crate::{emit, write_file, Global, Output};

#[derive(Subcommand)]
pub enum CrlCmd {
    /// Generate and store a CRL (full, or --delta against the newest full CRL)
    Generate(GenerateArgs),
}

pub async fn run(g: &Global, cmd: CrlCmd) -> Result<()> {
    match cmd {
        CrlCmd::Generate(a) => generate(g, a).await,
    }
}

/// The arguments of `gpki crl generate`.
#[derive(Args)]
pub struct GenerateArgs {
    #[arg(long)]
    ca: String,
    #[arg(long)]
    delta: bool,
    #[arg(long, default_value_t = 24)]
    next_update_hours: u32,
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write DER instead of PEM
    #[arg(long)]
    der: bool,
}

/// Generate and store a CRL (full, or --delta against the newest full CRL)
async fn generate(g: &Global, args: GenerateArgs) -> Result<()> {
    let GenerateArgs {
        ca: name,
        delta,
        next_update_hours,
        out: path,
        der,
    } = args;
    let out = g.output;
    let ca = g.ca().await?;
    let crl = ca.generate_crl(&name, delta, next_update_hours).await?;
    // Each CRL also anchors the audit chain outside the store. The CRL is
    // recorded already: a failed checkpoint is reported, not fatal.
    if let Err(e) = ca.audit_checkpoint(&g.data_dir.join("audit")).await {
        eprintln!("gpki: warning: the CRL was made, but the audit checkpoint failed: {e}");
    }
    let bytes = if der {
        crl.der.clone()
    } else {
        gpki_pki::pem::encode("X509 CRL", &crl.der).into_bytes()
    };
    if let Some(p) = &path {
        write_file(p, &bytes)?;
    } else if der {
        return Err(Error::malformed("--der needs --out FILE"));
    }
    let value = json!({ "ca": name, "crl_number": crl.crl_number, "delta_base": crl.delta_base, "entries": crl.entries,
        "this_update": gpki_pki::time::rfc3339(crl.this_update), "next_update": gpki_pki::time::rfc3339(crl.next_update),
        "file": path.as_ref().map(|p| p.display().to_string()) });
    match (&path, out) {
        (None, Output::Text) => print!("{}", String::from_utf8_lossy(&bytes)),
        _ => emit(out, value, || {
            format!(
                "{} CRL {} of CA {name}: {} entries, next update {}",
                if delta { "delta" } else { "full" },
                crl.crl_number,
                crl.entries,
                gpki_pki::time::rfc3339(crl.next_update)
            )
        }),
    }
    Ok(())
}
