//! `gpki km`: Key Recovery Authorities and their officers, officials' km keys
//! (delivery, key files) and their recovery with M of N officers' approvals.
//!
//! Recovery, step by step (`recover`):
//! 1. the km certificate's archived key and its open recovery request are found;
//! 2. each approval must name this request's statement, verify with its
//!    certificate's key, come from a certificate in force now (the store says), and
//!    that certificate must be an active officer's of the KRA holding the key; no
//!    officer counts twice;
//! 3. at least the KRA's quorum of approvals must stand;
//! 4. the KRA's key opens the archive, and the key must be the certificate's;
//! 5. the approvals and the release are recorded in one transaction (each approval
//!    used once, the request released once), then the key is written.
//!
//! Any refusal is audited (`km.recover.refuse`) and changes nothing else.

mod delivery;
mod keyfiles;
mod kra;
mod recovery;

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use gpki_kmi::keyfile::{self, Pair};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result, SoftwareKey};
use gpki_store::{CertificateRecord, Store};
use openssl::pkey::{PKey, Private};

use crate::{read_file, Global};

#[derive(Subcommand)]
pub enum KmCmd {
    /// Key Recovery Authorities
    #[command(subcommand)]
    Kra(KraCmd),
    /// A KRA's recovery officers
    #[command(subcommand)]
    Officer(OfficerCmd),
    /// Issue the km certificate of an official-sign certificate: a key made here,
    /// archived to the KRA, and sealed to the official's transport key
    Issue(delivery::IssueArgs),
    /// Open a delivered km key with the transport key, and write it as PKCS#12
    /// and/or Korean key files
    Open(delivery::OpenArgs),
    /// Open a recovery request for a km certificate's archived key; prints the
    /// statement each officer signs
    Request(recovery::RequestArgs),
    /// Sign a recovery statement as an officer (offline: no store needed)
    Approve(recovery::ApproveArgs),
    /// Release an archived km key with M of N officers' approvals
    Recover(recovery::RecoverArgs),
    /// Write a PKCS#12 file's key and certificate as Korean key files
    Export(keyfiles::ExportArgs),
    /// Read Korean key files and write them as PKCS#12
    Import(keyfiles::ImportArgs),
}

#[derive(Subcommand)]
pub enum KraCmd {
    /// Certify a KRA's key (from its PKCS#10 request, profile key-recovery) and
    /// register the KRA; its private key stays where the request was made
    Create(kra::KraCreateArgs),
    /// List the KRAs
    List,
}

#[derive(Subcommand)]
pub enum OfficerCmd {
    /// Make the holder of a certificate of this store a recovery officer
    Add(kra::OfficerAddArgs),
    /// Remove an officer: their approvals no longer count
    Remove(kra::OfficerRemoveArgs),
    /// List a KRA's officers
    List(kra::OfficerListArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PairArg {
    Sign,
    Km,
}

impl From<PairArg> for Pair {
    fn from(p: PairArg) -> Pair {
        match p {
            PairArg::Sign => Pair::Sign,
            PairArg::Km => Pair::Km,
        }
    }
}

/// Where an opened or recovered km key goes: PKCS#12, Korean key files, or both.
#[derive(clap::Args)]
pub struct KeyFilesOut {
    /// Write key, certificate and chain as PKCS#12 here
    #[arg(long)]
    pkcs12: Option<PathBuf>,
    /// Write kmCert.der and kmPri.key (SEED-CBC) into this directory
    #[arg(long)]
    npki_dir: Option<PathBuf>,
    /// Password of the files written
    #[arg(long)]
    out_pass_file: PathBuf,
}

impl KeyFilesOut {
    /// Refuses before anything happens when nothing would be written or a file
    /// exists already.
    fn check(&self) -> Result<Passphrase> {
        if self.pkcs12.is_none() && self.npki_dir.is_none() {
            return Err(Error::malformed(
                "give --pkcs12 FILE and/or --npki-dir DIR, or the key would be lost",
            ));
        }
        let mut paths: Vec<PathBuf> = self.pkcs12.iter().cloned().collect();
        if let Some(d) = &self.npki_dir {
            let (c, k) = Pair::Km.files(d);
            paths.extend([c, k]);
        }
        for p in paths {
            if p.exists() {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{} exists; refusing to overwrite it", p.display()),
                ));
            }
        }
        Passphrase::from_file(&self.out_pass_file)
    }

    fn write(
        &self,
        pass: &Passphrase,
        key: &PKey<Private>,
        cert_der: &[u8],
        chain: &[Vec<u8>],
        name: &str,
    ) -> Result<Vec<String>> {
        let mut written = Vec::new();
        if let Some(p) = &self.pkcs12 {
            let p12 = keyfile::to_pkcs12(key, cert_der, chain, name, pass)?;
            gpki_pki::signer::write_private_file(p, &p12)?;
            written.push(p.display().to_string());
        }
        if let Some(d) = &self.npki_dir {
            let (c, k) = keyfile::write_korean(d, Pair::Km, key, cert_der, pass)?;
            written.extend([c.display().to_string(), k.display().to_string()]);
        }
        Ok(written)
    }
}

pub(super) fn read_cert(path: &Path) -> Result<Vec<u8>> {
    gpki_pki::pem::decode_pem_or_der(&read_file(path, "certificate")?, &["CERTIFICATE"])
}

pub(super) fn read_key(path: &Path, pass_file: &Path) -> Result<SoftwareKey> {
    SoftwareKey::read_encrypted(path, &Passphrase::from_file(pass_file)?)
}

pub(super) async fn certificate(
    store: &Store,
    ca: &str,
    serial: &str,
) -> Result<CertificateRecord> {
    let serial = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    let authority = store.authority_by_name(ca).await?;
    store
        .certificate(authority.id, &serial)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "no certificate with serial {serial} from CA `{ca}`"
            ))
        })
}

pub async fn run(g: &Global, cmd: KmCmd) -> Result<()> {
    match cmd {
        KmCmd::Kra(KraCmd::Create(a)) => kra::kra_create(g, a).await,
        KmCmd::Kra(KraCmd::List) => kra::kra_list(g).await,
        KmCmd::Officer(OfficerCmd::Add(a)) => kra::officer_add(g, a).await,
        KmCmd::Officer(OfficerCmd::Remove(a)) => kra::officer_remove(g, a).await,
        KmCmd::Officer(OfficerCmd::List(a)) => kra::officer_list(g, a).await,
        KmCmd::Issue(a) => delivery::issue(g, a).await,
        KmCmd::Open(a) => delivery::open(g, a),
        KmCmd::Request(a) => recovery::request(g, a).await,
        KmCmd::Approve(a) => recovery::approve(g, a),
        KmCmd::Recover(a) => recovery::recover(g, a).await,
        KmCmd::Export(a) => keyfiles::export(g, a),
        KmCmd::Import(a) => keyfiles::import(g, a),
    }
}
