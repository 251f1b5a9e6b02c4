//! `gpki cms`: documents signed, verified, encrypted and decrypted with the
//! standard API (gpki-api), in the CMS forms `openssl cms` reads and writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use gpki_api::signed::SignOptions;
use gpki_api::status::StatusPolicy;
use gpki_api::trust::Trust;
use gpki_api::verifier::Verifier;
use gpki_kmi::keyfile::{self, KeyPair, Pair};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, Result, SoftwareKey};
use serde_json::json;

use crate::{emit, read_file, write_file, Global};

#[derive(Subcommand)]
pub enum CmsCmd {
    /// Sign a document: CMS SignedData (content inside unless --detached), with an
    /// RFC 3161 timestamp of the signature when --tsa is given
    Sign(SignArgs),
    /// Verify a signed document: every signature, each signer's path to --ca-file
    /// for document signing, the status of every certificate on it (OCSP, else the
    /// CRL; unknown refuses), and any timestamp and its TSA
    Verify(VerifyArgs),
    /// Encrypt a document to officials' km certificates: CMS EnvelopedData
    /// (RSA-OAEP, AES-256-CBC), each recipient first found good for encryption
    Encrypt(EncryptArgs),
    /// Decrypt a CMS EnvelopedData with a km key
    Decrypt(DecryptArgs),
}

/// Where a key comes from: an encrypted PKCS#8 file and its certificate, a
/// PKCS#12 file, or a Korean key directory (signCert.der/signPri.key to sign,
/// kmCert.der/kmPri.key to decrypt).
#[derive(Args)]
pub struct KeySource {
    /// Encrypted PKCS#8 (PEM, or DER such as signPri.key), with --cert
    #[arg(long, conflicts_with_all = ["p12", "npki_dir"])]
    key: Option<PathBuf>,
    /// The key's certificate (PEM or DER)
    #[arg(long)]
    cert: Option<PathBuf>,
    /// A PKCS#12 file holding key and certificate
    #[arg(long, conflicts_with = "npki_dir")]
    p12: Option<PathBuf>,
    /// A directory of Korean key files
    #[arg(long)]
    npki_dir: Option<PathBuf>,
    /// File whose first line is the key's password
    #[arg(long)]
    pass_file: PathBuf,
}

/// What the relying party trusts and how it checks status.
#[derive(Args)]
pub struct TrustArgs {
    /// Trust anchors (PEM)
    #[arg(long)]
    ca_file: PathBuf,
    /// Intermediate certificates (PEM), for messages that do not carry them
    #[arg(long)]
    untrusted: Option<PathBuf>,
    /// Ask this OCSP responder instead of the one each certificate names
    #[arg(long)]
    ocsp_url: Option<String>,
    /// Do not ask OCSP; the CRL only
    #[arg(long)]
    no_ocsp: bool,
    /// Do not fetch CRLs; OCSP only
    #[arg(long)]
    no_crl: bool,
}

impl TrustArgs {
    fn verifier(&self) -> Result<Verifier> {
        let anchors = read_file(&self.ca_file, "trust anchors")?;
        let untrusted = match &self.untrusted {
            Some(p) => read_file(p, "intermediates")?,
            None => Vec::new(),
        };
        if self.no_ocsp && self.no_crl {
            return Err(Error::malformed(
                "--no-ocsp and --no-crl together leave no way to establish status",
            ));
        }
        Verifier::new(
            Trust::from_pem(&anchors, &untrusted)?,
            StatusPolicy {
                ocsp: !self.no_ocsp,
                crl: !self.no_crl,
                ocsp_url: self.ocsp_url.clone(),
                ..StatusPolicy::default()
            },
        )
    }
}

fn certificate_file(path: &Path) -> Result<Vec<u8>> {
    gpki_pki::pem::decode_pem_or_der(&read_file(path, "certificate")?, &["CERTIFICATE"])
        .map_err(|e| e.context(path.display()))
}

impl KeySource {
    /// The key, its certificate and any chain that came with it.
    pub(crate) fn load(&self, pair: Pair) -> Result<KeyPair> {
        let pass = Passphrase::from_file(&self.pass_file)?;
        if let Some(p) = &self.p12 {
            return keyfile::from_pkcs12(
                &read_file(p, "PKCS#12 file")?,
                &pass,
                &p.display().to_string(),
            );
        }
        if let Some(dir) = &self.npki_dir {
            return keyfile::read_korean(dir, pair, &pass);
        }
        let (Some(key), Some(cert)) = (&self.key, &self.cert) else {
            return Err(Error::malformed(
                "give --key and --cert, or --p12, or --npki-dir",
            ));
        };
        let pkey = keyfile::from_encrypted_pkcs8(
            &read_file(key, "key")?,
            &pass,
            &key.display().to_string(),
        )?;
        Ok(KeyPair {
            key: pkey,
            cert_der: certificate_file(cert)?,
            chain: Vec::new(),
        })
    }
}

fn write_cms(path: &Path, der: &[u8], pem: bool) -> Result<()> {
    if pem {
        write_file(path, gpki_pki::pem::encode("CMS", der).as_bytes())
    } else {
        write_file(path, der)
    }
}

/// A CMS message as read: PEM (CMS or PKCS7) or DER.
fn read_cms(path: &Path) -> Result<Vec<u8>> {
    gpki_pki::pem::decode_pem_or_der(&read_file(path, "message")?, &["CMS", "PKCS7"])
        .map_err(|e| e.context(path.display()))
}

pub async fn run(g: &Global, cmd: CmsCmd) -> Result<()> {
    match cmd {
        CmsCmd::Sign(a) => sign(g, a).await,
        CmsCmd::Verify(a) => verify(g, a).await,
        CmsCmd::Encrypt(a) => encrypt(g, a).await,
        CmsCmd::Decrypt(a) => decrypt(g, a),
    }
}

/// The arguments of `gpki cms sign`.
#[derive(Args)]
pub struct SignArgs {
    #[arg(long = "in")]
    input: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    key: KeySource,
    /// Certificates to carry beside the signer's (its CA), PEM
    #[arg(long)]
    chain: Option<PathBuf>,
    /// Leave the document out of the message
    #[arg(long)]
    detached: bool,
    /// Timestamp the signature at this TSA (RFC 3161 over HTTP)
    #[arg(long)]
    tsa: Option<String>,
    /// Write PEM (`-----BEGIN CMS-----`) instead of DER
    #[arg(long)]
    pem: bool,
}

/// Sign a document: CMS SignedData (content inside unless --detached), with an
/// RFC 3161 timestamp of the signature when --tsa is given
async fn sign(g: &Global, args: SignArgs) -> Result<()> {
    let SignArgs {
        input,
        out,
        key,
        chain,
        detached,
        tsa,
        pem,
    } = args;
    let KeyPair {
        key: pkey,
        cert_der: cert,
        chain: mut carried,
    } = key.load(Pair::Sign)?;
    if let Some(c) = &chain {
        carried.extend(gpki_pki::pem::decode_all(
            &read_file(c, "chain")?,
            "CERTIFICATE",
        )?);
    }
    let signer = SoftwareKey::from_pkey(pkey)?;
    let content = read_file(&input, "document")?;
    let mut sig = gpki_api::signed::sign(
        &content,
        &signer,
        &cert,
        &SignOptions {
            detached,
            signing_time: gpki_pki::time::now(),
            chain: carried,
        },
    )?;
    if let Some(url) = &tsa {
        let client = reqwest::Client::new();
        let token = gpki_api::timestamp::request(
            &client,
            url,
            sig.digest(),
            sig.value(),
            std::time::Duration::from_secs(10),
        )
        .await?;
        sig.add_timestamp(&token)?;
    }
    let der = sig.to_der(&content)?;
    write_cms(&out, &der, pem)?;
    emit(
        g.output,
        json!({ "out": out, "detached": detached, "timestamped": tsa.is_some(), "digest": sig.digest().name() }),
        || {
            format!(
                "signed {} into {}{}{}",
                input.display(),
                out.display(),
                if detached { " (detached)" } else { "" },
                if tsa.is_some() { ", timestamped" } else { "" }
            )
        },
    );
    Ok(())
}

/// The arguments of `gpki cms verify`.
#[derive(Args)]
pub struct VerifyArgs {
    #[arg(long = "in")]
    input: PathBuf,
    /// The document of a detached signature
    #[arg(long)]
    content: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Write the signed content here
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Verify a signed document: every signature, each signer's path to --ca-file
/// for document signing, the status of every certificate on it (OCSP, else the
/// CRL; unknown refuses), and any timestamp and its TSA
async fn verify(g: &Global, args: VerifyArgs) -> Result<()> {
    let VerifyArgs {
        input,
        content,
        trust,
        out,
    } = args;
    let verifier = Arc::new(trust.verifier()?);
    let message = read_cms(&input)?;
    let document = content
        .as_deref()
        .map(|p| read_file(p, "document"))
        .transpose()?;
    let report = verifier
        .signed(&message, document.as_deref(), &[])
        .await
        .map_err(Error::from)?;
    if let Some(o) = &out {
        let checked = gpki_api::signed::check(&message, document.as_deref(), &[])?;
        write_file(o, checked.content)?;
    }
    let v = json!(report);
    emit(g.output, v, || {
        let mut t = format!(
            "Verification: OK ({} octets, SHA-256 {})",
            report.content_length, report.content_sha256
        );
        for s in &report.signers {
            t += &format!(
                "\n  signer     {}\n  serial     {}\n  status     {}",
                s.signer.subject,
                s.signer.serial,
                s.signer
                    .status
                    .iter()
                    .map(|a| format!("{} ({:?})", a.status, a.source).to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(st) = &s.signing_time {
                t += &format!("\n  signed at  {st} (the signer's claim)");
            }
            if let Some(ts) = &s.timestamp {
                t += &format!(
                    "\n  timestamp  {} by {} (token {})",
                    ts.gen_time, ts.tsa.subject, ts.serial
                );
            }
        }
        t
    });
    Ok(())
}

/// The arguments of `gpki cms encrypt`.
#[derive(Args)]
pub struct EncryptArgs {
    #[arg(long = "in")]
    input: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// A recipient's km certificate (PEM or DER); give one per recipient
    #[arg(long = "to", required = true)]
    to: Vec<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
    #[arg(long)]
    pem: bool,
}

/// Encrypt a document to officials' km certificates: CMS EnvelopedData
/// (RSA-OAEP, AES-256-CBC), each recipient first found good for encryption
async fn encrypt(g: &Global, args: EncryptArgs) -> Result<()> {
    let EncryptArgs {
        input,
        out,
        to,
        trust,
        pem,
    } = args;
    let verifier = trust.verifier()?;
    let recipients = to
        .iter()
        .map(|p| certificate_file(p))
        .collect::<Result<Vec<_>>>()?;
    let content = read_file(&input, "document")?;
    let (sealed, reports) = gpki_api::envelope::encrypt(&verifier, &content, &recipients, &[])
        .await
        .map_err(Error::from)?;
    write_cms(&out, &sealed, pem)?;
    emit(
        g.output,
        json!({ "out": out, "recipients": reports }),
        || {
            format!(
                "encrypted {} to {} into {}",
                input.display(),
                reports
                    .iter()
                    .map(|r| r.subject.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                out.display()
            )
        },
    );
    Ok(())
}

/// The arguments of `gpki cms decrypt`.
#[derive(Args)]
pub struct DecryptArgs {
    #[arg(long = "in")]
    input: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    key: KeySource,
}

/// Decrypt a CMS EnvelopedData with a km key
fn decrypt(g: &Global, args: DecryptArgs) -> Result<()> {
    let DecryptArgs { input, out, key } = args;
    let pair = key.load(Pair::Km)?;
    let message = read_cms(&input)?;
    let plain = gpki_api::envelope::open_document(&message, &pair.key, Some(&pair.cert_der))?;
    gpki_pki::signer::write_private_file(&out, &plain)?;
    emit(
        g.output,
        json!({ "out": out, "length": plain.len() }),
        || format!("decrypted {} into {}", input.display(), out.display()),
    );
    Ok(())
}
