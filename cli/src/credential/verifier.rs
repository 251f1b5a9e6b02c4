//! `gpki credential verify`: a presentation checked as a verifier does, over the
//! network (OCSP, status lists) or with a status list token given.

use std::path::PathBuf;

use clap::Args;
use gpki_credentials::verify;
use gpki_pki::{Error, Result};

use crate::{emit, read_file, Global};

/// The arguments of `gpki credential verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The presentation (mdoc DeviceResponse CBOR, or SD-JWT text)
    #[arg(long, required_unless_present = "qr", conflicts_with = "qr")]
    presentation: Option<PathBuf>,
    /// The presentation as a QR code image (PNG)
    #[arg(long)]
    qr: Option<PathBuf>,
    /// Trust anchors (PEM certificates): the GPKI root, or the credential CA
    #[arg(long, required = true)]
    anchor: Vec<PathBuf>,
    /// This verifier's identifier (as given to the holder)
    #[arg(long)]
    verifier: String,
    /// The nonce this verifier gave the holder for this presentation (base64url: it may begin with `-`)
    #[arg(long, allow_hyphen_values = true)]
    nonce: String,
    /// OCSP responder for the signer certificates (default: their AIA URL)
    #[arg(long)]
    ocsp_url: Option<String>,
    /// A Status List Token fetched earlier (offline verification) instead of
    /// fetching the credential's status list
    #[arg(long)]
    status_list_token: Option<PathBuf>,
    /// Verify as of this time (RFC 3339; default now)
    #[arg(long)]
    at: Option<String>,
    /// Seconds a key binding JWT stays acceptable after it was made
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(1..=86400))]
    max_age: i64,
}

/// Verify a presentation as a verifier does: the signer's chain to a trust
/// anchor, its OCSP status, the signature, the disclosed digests, validity, the
/// holder binding to this verifier and nonce, and the status list
pub(super) fn verify(g: &Global, args: VerifyArgs) -> Result<()> {
    let VerifyArgs {
        presentation,
        qr,
        anchor,
        verifier,
        nonce,
        ocsp_url,
        status_list_token,
        at,
        max_age,
    } = args;
    let bytes = read_presentation(presentation.as_ref(), qr.as_ref())?;
    let anchors = read_anchors(&anchor)?;
    let now = match &at {
        Some(t) => gpki_pki::time::parse_rfc3339(t).map_err(|e| e.context("--at"))?,
        None => gpki_pki::time::now(),
    };
    let policy = verify::Policy {
        anchors: &anchors,
        verifier: &verifier,
        nonce: &nonce,
        now,
        skew: 300,
        max_presentation_age: max_age,
        offline_status: status_list_token.is_some(),
    };
    let online = Network {
        ocsp_url,
        token: match &status_list_token {
            Some(p) => Some(read_file(p, "status list token")?),
            None => None,
        },
    };
    match verify::verify(&bytes, &policy, &online) {
        Ok(v) => emit(g.output, verify::report(&v), || verified_text(&v)),
        Err(refused) => return Err(refusal(g.output, &refused)),
    }
    Ok(())
}

/// The presentation, from its file or read from its QR code image.
fn read_presentation(presentation: Option<&PathBuf>, qr: Option<&PathBuf>) -> Result<Vec<u8>> {
    Ok(match (presentation, qr) {
        (Some(p), _) => read_file(p, "presentation")?,
        (None, Some(q)) => gpki_credentials::qr::read_png(&read_file(q, "QR image")?)?,
        (None, None) => unreachable!("clap requires one"),
    })
}

/// Every certificate of the trust anchor files; at least one.
fn read_anchors(files: &[PathBuf]) -> Result<Vec<openssl::x509::X509>> {
    let mut anchors = Vec::new();
    for a in files {
        let pem = read_file(a, "trust anchor")?;
        anchors.extend(
            openssl::x509::X509::stack_from_pem(&pem)
                .map_err(|e| Error::malformed(format!("trust anchor {}: {e}", a.display())))?,
        );
    }
    if anchors.is_empty() {
        return Err(Error::malformed(
            "the trust anchor files hold no certificate",
        ));
    }
    Ok(anchors)
}

/// A verified presentation as text: what it discloses (a portrait only
/// described), then the checks that passed.
fn verified_text(v: &verify::Verified) -> String {
    let mut t = format!("VERIFIED {} {}\n", v.format, v.doc_type);
    for (name, value) in &v.disclosed {
        let shown = match value.as_str() {
            Some(s) if s.starts_with("data:image/jpeg") => {
                format!("(JPEG, {} characters as a data URL)", s.len())
            }
            Some(s) => printable(s),
            None => printable(&value.to_string()),
        };
        t += &format!("  {}: {shown}\n", printable(name));
    }
    t += "checks:\n";
    for c in &v.checks {
        t += &format!("  ok  {:<15} {}\n", c.name, printable(&c.detail));
    }
    t.trim_end().to_string()
}

/// A refused presentation as the error the command ends with, its kind from the
/// reason; in text output the checks that passed before are shown first.
fn refusal(output: crate::Output, refused: &verify::Refused) -> Error {
    if output == crate::Output::Text {
        for c in &refused.checks {
            eprintln!("  ok  {:<15} {}", c.name, printable(&c.detail));
        }
    }
    let kind = match refused.reason {
        verify::Reason::Malformed => gpki_pki::ErrorKind::Malformed,
        verify::Reason::BadSignature | verify::Reason::DigestMismatch => {
            gpki_pki::ErrorKind::BadSignature
        }
        verify::Reason::StatusUntrusted => gpki_pki::ErrorKind::BadSignature,
        verify::Reason::SignerStatusUnknown | verify::Reason::StatusUnavailable => {
            gpki_pki::ErrorKind::Unavailable
        }
        _ => gpki_pki::ErrorKind::PolicyViolation,
    };
    Error::new(
        kind,
        format!(
            "presentation refused [{}]: {}",
            refused.reason.name(),
            printable(&refused.detail)
        ),
    )
}

/// Text from a presentation, safe for a terminal: control characters (escape
/// sequences that could paint a false "VERIFIED") shown escaped.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// The verifier's network: OCSP for signer certificates, HTTP for status lists.
struct Network {
    ocsp_url: Option<String>,
    /// A token given on the command line, used instead of fetching.
    token: Option<Vec<u8>>,
}

/// The largest status list token fetched (a 2^27-entry list compresses far below).
const MAX_TOKEN: u64 = 20 * 1024 * 1024;

impl verify::Online for Network {
    fn certificate_status(
        &self,
        cert: &openssl::x509::X509,
        issuer: &openssl::x509::X509,
    ) -> std::result::Result<verify::CertStatus, String> {
        let issuer_der = issuer.to_der().map_err(|e| e.to_string())?;
        let answer = crate::ocsp::query_x509(
            cert,
            issuer,
            &issuer_der,
            self.ocsp_url.clone(),
            None,
            "sha1",
            true,
        )
        .map_err(|e| e.to_string())?;
        match answer["status"].as_str() {
            Some("good") => Ok(verify::CertStatus::Good),
            Some("revoked") => Ok(verify::CertStatus::Revoked {
                reason: answer["reason"]
                    .as_str()
                    .unwrap_or("unspecified")
                    .to_string(),
            }),
            other => Err(format!(
                "the responder answered {}",
                other.unwrap_or("nothing")
            )),
        }
    }

    fn status_list(&self, uri: &str, cwt: bool) -> std::result::Result<Vec<u8>, String> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return Err("the status list URI is not http(s)".into());
        }
        // Only the list's own URI and the media type: nothing that tells the issuer
        // which credential is being checked.
        let accept = if cwt {
            "application/statuslist+cwt"
        } else {
            "application/statuslist+jwt"
        };
        let reply = ureq::get(uri)
            .set("Accept", accept)
            .timeout(std::time::Duration::from_secs(10))
            .call()
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(reply.into_reader(), MAX_TOKEN + 1),
            &mut body,
        )
        .map_err(|e| e.to_string())?;
        if body.len() as u64 > MAX_TOKEN {
            return Err(format!("larger than {MAX_TOKEN} bytes"));
        }
        Ok(body)
    }
}
