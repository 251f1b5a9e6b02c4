//! `gpki credential …`: mobile credentials (the mobile public-official ID) as mdoc and
//! SD-JWT VC, signed by a credential-signer certificate, their status on a status
//! list in the store.

mod holder;
mod issued;
mod status_lists;
mod verifier;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use gpki_credentials::IssuerKey;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Result, SoftwareKey};

use crate::{read_file, Global};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ISO/IEC 18013-5 mdoc (IssuerSigned, CBOR)
    Mdoc,
    /// IETF SD-JWT VC
    SdJwt,
}

impl Format {
    fn as_str(self) -> &'static str {
        gpki_ca::credential::Format::from(self).as_str()
    }
}

impl From<Format> for gpki_ca::credential::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Mdoc => gpki_ca::credential::Format::Mdoc,
            Format::SdJwt => gpki_ca::credential::Format::SdJwt,
        }
    }
}

#[derive(Subcommand)]
pub enum CredentialCmd {
    /// Issue a mobile public-official ID to a holder's key
    Issue(issued::IssueArgs),
    /// Present a credential: disclose only the chosen attributes, bound to the
    /// holder's key and to the verifier's nonce
    Present(holder::PresentArgs),
    /// The holder's proof of possession for an RA's credential offer: a JWT by the
    /// holder key (in its header) over the offer's nonce, for the issuer
    /// (OpenID4VCI proof type `jwt`)
    Proof(holder::ProofArgs),
    /// Verify a presentation as a verifier does: the signer's chain to a trust
    /// anchor, its OCSP status, the signature, the disclosed digests, validity, the
    /// holder binding to this verifier and nonce, and the status list
    Verify(verifier::VerifyArgs),
    /// Revoke a credential: its bit on the status list is set
    Revoke(issued::RevokeArgs),
    /// List issued credentials, newest first
    List(issued::ListArgs),
    /// Status lists: create, list
    #[command(subcommand)]
    StatusList(StatusListCmd),
}

#[derive(Subcommand)]
pub enum StatusListCmd {
    /// Create a status list
    Create(status_lists::StatusListCreateArgs),
    /// List the status lists
    List,
    /// Sign a status list's current state as a Status List Token (JWT and CWT)
    Publish(status_lists::StatusListPublishArgs),
}

/// A signing key of the issuer (credential-signer or status-list-signer) and its chain.
#[derive(clap::Args)]
pub struct SignerArgs {
    /// The signer's key (encrypted PKCS#8 PEM)
    #[arg(long)]
    signer_key: PathBuf,
    /// Passphrase file of the signer key
    #[arg(long, env = "GPKI_SIGNER_PASS_FILE")]
    signer_pass_file: PathBuf,
    /// The signer's certificate, then its CA certificates up to (not including) the
    /// trust anchor (PEM)
    #[arg(long)]
    signer_chain: PathBuf,
}

impl SignerArgs {
    /// The key paired with its chain (the leaf holds the key, carries `purpose`, is
    /// within validity); the store is not asked.
    fn key(&self, purpose: const_oid::ObjectIdentifier, what: &str) -> Result<IssuerKey> {
        let pass = Passphrase::from_file(&self.signer_pass_file)?;
        IssuerKey::new(
            Arc::new(SoftwareKey::read_encrypted(&self.signer_key, &pass)?),
            gpki_pki::pem::decode_all(
                &read_file(&self.signer_chain, "signer chain")?,
                "CERTIFICATE",
            )?,
            purpose,
            what,
        )
    }

    /// The key paired with its chain (the leaf holds the key, carries `purpose`, is
    /// within validity), and the store's row for the leaf, which must be in force
    /// with every CA above it: what is signed now must verify now.
    async fn load(
        &self,
        store: &gpki_store::Store,
        purpose: const_oid::ObjectIdentifier,
        what: &str,
    ) -> Result<(IssuerKey, gpki_store::CertificateRecord)> {
        let key = self.key(purpose, what)?;
        let row = store.signer_in_force(&key.chain()[0], what).await?;
        Ok((key, row))
    }
}

pub async fn run(g: &Global, cmd: CredentialCmd) -> Result<()> {
    match cmd {
        CredentialCmd::Issue(a) => issued::issue(g, a).await,
        CredentialCmd::Present(a) => holder::present(g, a),
        CredentialCmd::Proof(a) => holder::proof(g, a),
        CredentialCmd::Verify(a) => verifier::verify(g, a),
        CredentialCmd::Revoke(a) => issued::revoke(g, a).await,
        CredentialCmd::List(a) => issued::list(g, a).await,
        CredentialCmd::StatusList(StatusListCmd::Create(a)) => status_lists::create(g, a).await,
        CredentialCmd::StatusList(StatusListCmd::List) => status_lists::list(g).await,
        CredentialCmd::StatusList(StatusListCmd::Publish(a)) => status_lists::publish(g, a).await,
    }
}
