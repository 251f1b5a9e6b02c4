//! `gpki credential present | proof`: the holder's side, a presentation that
//! discloses chosen attributes, and the proof of possession for an RA's offer.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use gpki_credentials::{mdoc, sdjwt, HolderKey};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, Result, SoftwareKey};
use serde_json::json;

use super::Format;
use crate::{emit, read_file, write_file, Global};

/// The arguments of `gpki credential present`.
#[derive(Args)]
pub struct PresentArgs {
    /// The credential as issued (mdoc IssuerSigned CBOR, or SD-JWT text)
    #[arg(long)]
    credential: PathBuf,
    /// Attributes to disclose, comma-separated (e.g. name,institution)
    #[arg(long, value_delimiter = ',', required = true)]
    disclose: Vec<String>,
    /// The holder's key (encrypted PKCS#8 PEM)
    #[arg(long)]
    holder_key: PathBuf,
    /// Passphrase file of the holder key
    #[arg(long, env = "GPKI_OUT_PASS_FILE")]
    holder_pass_file: PathBuf,
    /// The verifier's identifier (SD-JWT `aud`; in the mdoc session transcript)
    #[arg(long)]
    verifier: String,
    /// The verifier's nonce (base64url: it may begin with `-`)
    #[arg(long, allow_hyphen_values = true)]
    nonce: String,
    /// Where to write the presentation
    #[arg(long)]
    out: PathBuf,
    /// Also render it as a QR code image (PNG)
    #[arg(long)]
    qr: Option<PathBuf>,
    /// Also print the QR code on the terminal
    #[arg(long)]
    qr_terminal: bool,
}

/// Present a credential: disclose only the chosen attributes, bound to the
/// holder's key and to the verifier's nonce
pub(super) fn present(g: &Global, args: PresentArgs) -> Result<()> {
    let PresentArgs {
        credential,
        disclose,
        holder_key,
        holder_pass_file,
        verifier,
        nonce,
        out,
        qr,
        qr_terminal,
    } = args;
    let bytes = read_file(&credential, "credential")?;
    let mut disclose = disclose;
    disclose.dedup();
    let mut seen = std::collections::HashSet::new();
    disclose.retain(|d| seen.insert(d.clone()));
    let pass = Passphrase::from_file(&holder_pass_file)?;
    let holder = HolderKey::new(Arc::new(SoftwareKey::read_encrypted(&holder_key, &pass)?))?;
    if nonce.len() < 16 {
        return Err(Error::malformed(
            "--nonce must be at least 16 characters (a fresh random value of the verifier's)",
        ));
    }
    let (format, presentation) = if is_sd_jwt(&bytes) {
        let text =
            std::str::from_utf8(&bytes).map_err(|_| Error::malformed("the SD-JWT is not UTF-8"))?;
        let p = sdjwt::present(
            text,
            &disclose,
            &holder,
            &verifier,
            &nonce,
            gpki_pki::time::now(),
        )?;
        (Format::SdJwt, p.into_bytes())
    } else {
        (
            Format::Mdoc,
            mdoc::present(&bytes, &disclose, &holder, &verifier, &nonce)?,
        )
    };
    write_file(&out, &presentation)?;
    let code = if qr.is_some() || qr_terminal {
        Some(gpki_credentials::qr::encode(&presentation)?)
    } else {
        None
    };
    if let (Some(path), Some(code)) = (&qr, &code) {
        write_file(path, &gpki_credentials::qr::png(code)?)?;
    }
    if let (true, Some(code)) = (qr_terminal, &code) {
        eprintln!("{}", gpki_credentials::qr::terminal(code));
    }
    let qr_json = code.as_ref().map(|c| {
        let (version, level) = gpki_credentials::qr::describe(c);
        json!({
            "version": version,
            "error_correction": level,
            "bytes": gpki_credentials::qr::pack(&presentation).len(),
            "png": qr.as_ref().map(|p| p.display().to_string()),
        })
    });
    emit(
        g.output,
        json!({
            "format": format.as_str(),
            "disclosed": disclose,
            "verifier": verifier,
            "bytes": presentation.len(),
            "out": out.display().to_string(),
            "qr": qr_json,
        }),
        || {
            format!(
                "{} presentation disclosing {} for {verifier} ({} bytes): {}",
                format.as_str(),
                disclose.join(", "),
                presentation.len(),
                out.display()
            )
        },
    );
    Ok(())
}

/// The arguments of `gpki credential proof`.
#[derive(Args)]
pub struct ProofArgs {
    /// The holder's key (encrypted PKCS#8 PEM)
    #[arg(long)]
    holder_key: PathBuf,
    /// Passphrase file of the holder key
    #[arg(long, env = "GPKI_OUT_PASS_FILE")]
    holder_pass_file: PathBuf,
    /// The offer's nonce (base64url: it may begin with `-`)
    #[arg(long, allow_hyphen_values = true)]
    nonce: String,
    /// The offer's audience (the issuer's identifier)
    #[arg(long)]
    audience: String,
    /// Where to write the proof JWT
    #[arg(long)]
    out: PathBuf,
}

/// The holder's proof of possession for an RA's credential offer: a JWT by the
/// holder key (in its header) over the offer's nonce, for the issuer
/// (OpenID4VCI proof type `jwt`)
pub(super) fn proof(g: &Global, args: ProofArgs) -> Result<()> {
    let ProofArgs {
        holder_key,
        holder_pass_file,
        nonce,
        audience,
        out,
    } = args;
    let pass = Passphrase::from_file(&holder_pass_file)?;
    let holder = HolderKey::new(Arc::new(SoftwareKey::read_encrypted(&holder_key, &pass)?))?;
    let jwt = gpki_credentials::proof::sign(&holder, &audience, &nonce, gpki_pki::time::now())?;
    write_file(&out, jwt.as_bytes())?;
    emit(
        g.output,
        json!({ "holder_jkt": holder.public().thumbprint(), "out": out.display().to_string() }),
        || {
            format!(
                "proof by key {} written to {}",
                holder.public().thumbprint(),
                out.display()
            )
        },
    );
    Ok(())
}

/// An SD-JWT is base64url text starting with a JWS header (`ey…`); an mdoc is CBOR.
fn is_sd_jwt(bytes: &[u8]) -> bool {
    bytes.starts_with(b"ey")
}
