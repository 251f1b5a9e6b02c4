//! Where keys live on the command line: generating a key (encrypted PKCS#8 PEM, and
//! a PKCS#10 request for it), and writing a key generated for an issued
//! certificate as an encrypted key file or PKCS#12.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gpki_ca::{Ca, Issued};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, KeyType, Result, SoftwareKey};
use serde_json::json;

use crate::{emit, write_file, Global};

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Generate a key pair (encrypted PKCS#8 PEM) and, with --subject, a PKCS#10
    /// request for it to submit to an RA or to `gpki cert issue --csr`
    New(NewArgs),
}

pub fn run(g: &Global, cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::New(a) => new(g, a),
    }
}

/// The arguments of `gpki key new`.
#[derive(Args)]
pub struct NewArgs {
    /// rsa2048, rsa3072, rsa4096, p256, p384
    #[arg(long, default_value = "p256")]
    key_type: String,
    /// The encrypted key file to write (never overwritten)
    #[arg(long)]
    key_out: PathBuf,
    /// Passphrase file that encrypts the key
    #[arg(long, env = "GPKI_OUT_PASS_FILE")]
    out_pass_file: PathBuf,
    /// Subject of the request (RFC 4514, e.g. "CN=Hong Gildong, O=…, C=KR")
    #[arg(long, requires = "csr_out")]
    subject: Option<String>,
    /// Write the PKCS#10 request (PEM) here
    #[arg(long, requires = "subject")]
    csr_out: Option<PathBuf>,
}

/// Generate a key pair (encrypted PKCS#8 PEM) and, with --subject, a PKCS#10
/// request for it to submit to an RA or to `gpki cert issue --csr`
fn new(g: &Global, args: NewArgs) -> Result<()> {
    let NewArgs {
        key_type,
        key_out,
        out_pass_file,
        subject,
        csr_out,
    } = args;
    refuse_overwrite(&key_out)?;
    let pass = Passphrase::from_file(&out_pass_file)?;
    // Parse the subject before a key exists, so a bad DN leaves no file.
    let name = subject.as_deref().map(gpki_pki::name::parse).transpose()?;
    let key = SoftwareKey::generate(key_type.parse::<KeyType>()?)?;
    key.write_encrypted(&key_out, &pass)?;
    let mut csr_written = None;
    if let (Some(name), Some(path)) = (name, &csr_out) {
        write_file(path, &gpki_pki::csr::build(&key, &name)?)?;
        csr_written = Some(path.display().to_string());
    }
    emit(
        g.output,
        json!({ "key": key_out.display().to_string(), "key_type": key.key_type().as_str(), "csr": csr_written }),
        || {
            let mut t = format!("wrote {} ({})", key_out.display(), key.key_type().as_str());
            if let Some(c) = &csr_written {
                t += &format!("\nwrote {c}");
            }
            t
        },
    );
    Ok(())
}

fn refuse_overwrite(p: &std::path::Path) -> Result<()> {
    if p.exists() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} exists; refusing to overwrite a key", p.display()),
        ));
    }
    Ok(())
}

#[derive(Args)]
pub struct KeyOut {
    /// Key type for --generate-key
    #[arg(long, default_value = "p256")]
    pub key_type: String,
    /// Write the generated key as encrypted PKCS#8 PEM here
    #[arg(long)]
    pub key_out: Option<PathBuf>,
    /// Write key, certificate and chain as PKCS#12 here
    #[arg(long)]
    pub pkcs12: Option<PathBuf>,
    /// Passphrase file for --key-out / --pkcs12
    #[arg(long, env = "GPKI_OUT_PASS_FILE")]
    pub out_pass_file: Option<PathBuf>,
}

/// For --generate-key: the key, written as the KeyOut flags ask once issued.
pub fn generated_key(k: &KeyOut) -> Result<(SoftwareKey, Passphrase)> {
    if k.key_out.is_none() && k.pkcs12.is_none() {
        return Err(Error::malformed(
            "--generate-key needs --key-out FILE or --pkcs12 FILE, or the key would be lost",
        ));
    }
    let file = k.out_pass_file.as_ref().ok_or_else(|| {
        Error::malformed("--generate-key needs --out-pass-file to encrypt the key")
    })?;
    let pass = Passphrase::from_file(file)?;
    for p in [&k.key_out, &k.pkcs12].into_iter().flatten() {
        refuse_overwrite(p)?;
    }
    Ok((SoftwareKey::generate(k.key_type.parse::<KeyType>()?)?, pass))
}

pub async fn write_generated(
    ca: &Ca,
    ca_name: &str,
    key: &SoftwareKey,
    pass: &Passphrase,
    issued: &Issued,
    k: &KeyOut,
) -> Result<Vec<String>> {
    let mut written = Vec::new();
    if let Some(p) = &k.key_out {
        key.write_encrypted(p, pass)?;
        written.push(p.display().to_string());
    }
    if let Some(p) = &k.pkcs12 {
        let cert = openssl::x509::X509::from_der(&issued.der)
            .map_err(|e| Error::internal(format!("certificate: {e}")))?;
        let mut chain = openssl::stack::Stack::new().map_err(|e| Error::internal(e.to_string()))?;
        for c in ca.chain(ca_name).await? {
            chain
                .push(
                    openssl::x509::X509::from_der(&c)
                        .map_err(|e| Error::internal(e.to_string()))?,
                )
                .map_err(|e| Error::internal(e.to_string()))?;
        }
        let pass_text = std::str::from_utf8(pass.expose())
            .map_err(|_| Error::malformed("PKCS#12 passphrase must be UTF-8"))?;
        let p12 = openssl::pkcs12::Pkcs12::builder()
            .name(&issued.record.subject)
            .pkey(key.pkey())
            .cert(&cert)
            .ca(chain)
            .build2(pass_text)
            .and_then(|p| p.to_der())
            .map_err(|e| Error::internal(format!("PKCS#12: {e}")))?;
        gpki_pki::signer::write_private_file(p, &p12)?;
        written.push(p.display().to_string());
    }
    Ok(written)
}
