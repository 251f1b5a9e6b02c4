//! `gpki ra …`: registration authorities. The set-up verbs (`create`, `list`,
//! `client add`, `operator add`) work on the store directly, as an administrator
//! of the CA does; the operators' verbs (`submit`, `approve`, `reject`, …) talk to
//! the RA service over mutual TLS with the operator's certificate and key.

mod credentials;
mod operators;
mod requests;
mod revocations;
mod setup;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gpki_pki::{Error, Result};
use gpki_service::api::ApiClient;
use gpki_service::mtls::ClientTls;
use serde_json::{json, Value};

use crate::Global;

#[derive(Subcommand)]
pub enum RaCmd {
    /// Create an RA: its CA, the institutions it serves, the profiles it may ask for
    Create(setup::CreateArgs),
    /// Change an RA's scope or standing: each option given replaces what the RA
    /// has; the services apply it within a second (their auth_cache_ms). Its
    /// name and CA stay.
    Update(setup::UpdateArgs),
    /// The RAs in the store
    List,
    /// Clients of the CA service (RA services, delegated signers)
    #[command(subcommand)]
    Client(ClientCmd),
    /// RA operators
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Submit a request for a certificate
    Submit(requests::SubmitArgs),
    /// Submit every official of a CSV file (header request_id,subject,csr[,san]
    /// [,identity_method,identity_document]; csr names a PKCS#10 file beside it);
    /// request_id is the idempotency key, so rerunning the file submits nothing twice
    Import(requests::ImportArgs),
    /// Record how the official's identity was verified
    VerifyIdentity(requests::VerifyIdentityArgs),
    /// Approve a submitted request (a second operator, under dual control)
    Approve(requests::ApproveArgs),
    /// Reject a submitted request
    Reject(requests::RejectArgs),
    /// The RA's requests, newest first
    Requests(requests::RequestsArgs),
    /// Who the RA service takes this operator certificate for: operator and RA
    Whoami(operators::WhoamiArgs),
    /// One request
    Show(requests::ShowArgs),
    /// Offer a mobile public-official ID to an official the RA knows (by their
    /// official-sign certificate from this RA): prints the nonce the official's
    /// wallet signs (`gpki credential proof`)
    Offer(credentials::OfferArgs),
    /// Issue an offered ID to the key that proved it (`gpki credential proof`)
    OfferIssue(credentials::OfferIssueArgs),
    /// Revoke a certificate of the RA's scope
    Revoke(revocations::RevokeArgs),
    /// Revoke your own certificate without an operator: the request is signed with
    /// the certificate's key (a lost phone or a compromised key; when the key is
    /// gone, an operator revokes with an identity verification)
    RevokeOwn(revocations::RevokeOwnArgs),
    /// Report your own mobile ID lost (or its key compromised), signed with your
    /// official-sign key: every valid ID of yours is revoked at once, no operator
    RevokeOwnId(credentials::RevokeOwnIdArgs),
    /// Revoke a mobile ID your RA offered, or one of an official in its scope
    RevokeId(credentials::RevokeIdArgs),
    /// Renew a certificate inside the RA's renewal window
    Renew(requests::RenewArgs),
}

/// A holder's own certificate and key, for what they sign with no operator.
#[derive(Args, Clone)]
pub struct OwnKey {
    /// The certificate (PEM)
    #[arg(long)]
    own_cert: PathBuf,
    /// Its key (encrypted PKCS#8 PEM)
    #[arg(long)]
    own_key: PathBuf,
    /// File with that key's passphrase
    #[arg(long, env = "GPKI_OWN_KEY_PASS_FILE")]
    own_pass_file: PathBuf,
}

/// Where a dual request's km certificate and sealed key go.
#[derive(Args, Clone)]
pub struct KmOut {
    /// Write the km certificate (PEM) here
    #[arg(long)]
    km_out: Option<PathBuf>,
    /// Write the km key sealed to the transport key (DER CMS) here, for `gpki km open`
    #[arg(long)]
    km_envelope_out: Option<PathBuf>,
}

impl KmOut {
    fn none() -> KmOut {
        KmOut {
            km_out: None,
            km_envelope_out: None,
        }
    }

    /// Writes what the reply carries; the file names written.
    fn save(&self, reply: &Value) -> Result<Vec<String>> {
        let km = &reply["certificate"]["km"];
        let mut written = Vec::new();
        if let (Some(p), Some(pem)) = (&self.km_out, km["certificate"]["certificate"].as_str()) {
            crate::write_file(p, pem.as_bytes())?;
            written.push(p.display().to_string());
        }
        if let Some(p) = &self.km_envelope_out {
            match km["delivery"].as_str() {
                Some(pem) => {
                    let der = gpki_pki::pem::decode(pem.as_bytes(), "CMS")?;
                    crate::write_file(p, &der)?;
                    written.push(p.display().to_string());
                }
                None if km.is_object() => {
                    return Err(Error::conflict(
                        "the CA answered with the km certificate made before, without its key: the key is kept only in the archive now (gpki km request / recover)",
                    ))
                }
                None => {}
            }
        }
        Ok(written)
    }
}

#[derive(Subcommand)]
pub enum ClientCmd {
    /// Register certificate SERIAL of CA as a client of the CA service in ROLE
    Add(setup::ClientAddArgs),
}

#[derive(Subcommand)]
pub enum OperatorCmd {
    /// Register an issued ra-operator certificate as an operator (store; bootstrap)
    Add(setup::OperatorAddArgs),
    /// Enrol an operator through the RA service (administrators)
    Enrol(operators::OperatorEnrolArgs),
    /// The RA's operators
    List(operators::OperatorListArgs),
    /// Suspend an operator
    Suspend(operators::OperatorIdArgs),
    /// Lift a suspension
    Activate(operators::OperatorIdArgs),
    /// Remove an operator for good
    Remove(operators::OperatorIdArgs),
}

/// How an operator reaches the RA service. Unset values come from the profile
/// file `GPKI_RA_CONFIG` names, else `~/.config/gpki/ra.toml` (the `ClientTls`
/// fields: url, server_name, cert, key, key_pass_file, ca_file).
#[derive(Args, Clone)]
pub struct Conn {
    /// The RA service, https://HOST:PORT
    #[arg(long = "ra", env = "GPKI_RA_URL")]
    url: Option<String>,
    /// The name on the RA service's certificate, when it is not the URL's host
    #[arg(long, env = "GPKI_RA_SERVER_NAME")]
    server_name: Option<String>,
    /// The operator's certificate (PEM, then intermediates)
    #[arg(long, env = "GPKI_RA_CERT")]
    cert: Option<PathBuf>,
    /// The operator's encrypted key
    #[arg(long, env = "GPKI_RA_KEY")]
    key: Option<PathBuf>,
    /// File with the operator key's passphrase
    #[arg(long, env = "GPKI_RA_KEY_PASS_FILE")]
    operator_pass_file: Option<PathBuf>,
    /// The root the RA service's certificate chains to
    #[arg(long, env = "GPKI_RA_CA_FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct IdentityArgs {
    /// face-to-face or contact-free
    #[arg(long = "identity-method", requires = "identity_document")]
    identity_method: Option<String>,
    /// The document seen
    #[arg(long = "identity-document", requires = "identity_method")]
    identity_document: Option<String>,
}

impl IdentityArgs {
    fn value(&self) -> Option<Value> {
        match (&self.identity_method, &self.identity_document) {
            (Some(m), Some(d)) => Some(json!({ "method": m, "document": d })),
            _ => None,
        }
    }
}

impl Conn {
    /// A client without a certificate of its own, for a holder: the RA's URL,
    /// server name and root from the flags or the profile.
    fn anonymous_client(&self) -> Result<ApiClient> {
        let saved = Self::saved()?;
        let url = self
            .url
            .clone()
            .or_else(|| saved.as_ref().map(|s| s.url.clone()))
            .ok_or_else(|| Error::malformed("--ra URL is required"))?;
        let server_name = self
            .server_name
            .clone()
            .or_else(|| saved.as_ref().and_then(|s| s.server_name.clone()));
        let ca_file = self
            .ca_file
            .clone()
            .or_else(|| saved.as_ref().map(|s| s.ca_file.clone()))
            .ok_or_else(|| Error::malformed("--ca-file is required"))?;
        let anchors = gpki_service::tls::read_certificates(&ca_file)?;
        ApiClient::new(
            &url,
            server_name.as_deref(),
            gpki_service::tls::client_config(None, &anchors)?,
            std::time::Duration::from_secs(60),
        )
    }

    /// The operator profile: the file GPKI_RA_CONFIG names, else
    /// ~/.config/gpki/ra.toml when it exists.
    fn saved() -> Result<Option<ClientTls>> {
        // A profile named by GPKI_RA_CONFIG must exist; the default one may not.
        let named = std::env::var_os("GPKI_RA_CONFIG").map(PathBuf::from);
        if let Some(p) = named.as_ref().filter(|p| !p.exists()) {
            return Err(Error::not_found(format!(
                "GPKI_RA_CONFIG names {}, which does not exist",
                p.display()
            )));
        }
        named
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".config/gpki/ra.toml"))
                    .filter(|p| p.exists())
            })
            .map(|p| -> Result<ClientTls> {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| Error::not_found(format!("{}: {e}", p.display())))?;
                let mut c: ClientTls = toml::from_str(&text)
                    .map_err(|e| Error::malformed(format!("{}: {e}", p.display())))?;
                c.resolve(p.parent().unwrap_or(std::path::Path::new(".")));
                Ok(c)
            })
            .transpose()
    }

    fn client(&self) -> Result<ApiClient> {
        let saved = Self::saved()?;
        let need = |v: Option<PathBuf>, from: Option<&PathBuf>, flag: &str| {
            v.or_else(|| from.cloned()).ok_or_else(|| {
                Error::malformed(format!(
                    "{flag} is required (or set it in the GPKI_RA_CONFIG profile or ~/.config/gpki/ra.toml)"
                ))
            })
        };
        let tls = ClientTls {
            url: self
                .url
                .clone()
                .or_else(|| saved.as_ref().map(|s| s.url.clone()))
                .ok_or_else(|| {
                    Error::malformed("--ra URL is required (or set url in ~/.config/gpki/ra.toml)")
                })?,
            server_name: self
                .server_name
                .clone()
                .or_else(|| saved.as_ref().and_then(|s| s.server_name.clone())),
            cert: need(self.cert.clone(), saved.as_ref().map(|s| &s.cert), "--cert")?,
            key: need(self.key.clone(), saved.as_ref().map(|s| &s.key), "--key")?,
            key_pass_file: self
                .operator_pass_file
                .clone()
                .or_else(|| saved.as_ref().and_then(|s| s.key_pass_file.clone())),
            ca_file: need(
                self.ca_file.clone(),
                saved.as_ref().map(|s| &s.ca_file),
                "--ca-file",
            )?,
            timeout_secs: 60,
        };
        tls.client()
    }
}

pub async fn run(g: &Global, cmd: RaCmd) -> Result<()> {
    match cmd {
        RaCmd::Create(a) => setup::create(g, a).await,
        RaCmd::Update(a) => setup::update(g, a).await,
        RaCmd::List => setup::list(g).await,
        RaCmd::Client(ClientCmd::Add(a)) => setup::client_add(g, a).await,
        RaCmd::Operator(OperatorCmd::Add(a)) => setup::operator_add(g, a).await,
        RaCmd::Operator(OperatorCmd::Enrol(a)) => operators::enrol(g, a).await,
        RaCmd::Operator(OperatorCmd::List(a)) => operators::list(g, a).await,
        RaCmd::Operator(OperatorCmd::Suspend(a)) => operators::suspend(g, a).await,
        RaCmd::Operator(OperatorCmd::Activate(a)) => operators::activate(g, a).await,
        RaCmd::Operator(OperatorCmd::Remove(a)) => operators::remove(g, a).await,
        RaCmd::Submit(a) => requests::submit(g, a).await,
        RaCmd::Import(a) => requests::import(g, a).await,
        RaCmd::VerifyIdentity(a) => requests::verify_identity(g, a).await,
        RaCmd::Approve(a) => requests::approve(g, a).await,
        RaCmd::Reject(a) => requests::reject(g, a).await,
        RaCmd::Requests(a) => requests::requests(g, a).await,
        RaCmd::Whoami(a) => operators::whoami(g, a).await,
        RaCmd::Show(a) => requests::show(g, a).await,
        RaCmd::Offer(a) => credentials::offer(g, a).await,
        RaCmd::OfferIssue(a) => credentials::offer_issue(g, a).await,
        RaCmd::Revoke(a) => revocations::revoke(g, a).await,
        RaCmd::RevokeOwn(a) => revocations::revoke_own(g, a).await,
        RaCmd::RevokeOwnId(a) => credentials::revoke_own_id(g, a).await,
        RaCmd::RevokeId(a) => credentials::revoke_id(g, a).await,
        RaCmd::Renew(a) => requests::renew(g, a).await,
    }
}

impl OwnKey {
    /// The certificate (DER) and its key, checked to belong together, with the
    /// key's usual algorithm.
    fn pair(&self) -> Result<(Vec<u8>, gpki_pki::SoftwareKey)> {
        own_pair(&self.own_cert, &self.own_key, &self.own_pass_file)
    }
}

fn own_pair(
    own_cert: &std::path::Path,
    own_key: &std::path::Path,
    own_pass_file: &std::path::Path,
) -> Result<(Vec<u8>, gpki_pki::SoftwareKey)> {
    let pem = std::fs::read(own_cert)
        .map_err(|e| Error::not_found(format!("cannot read {}: {e}", own_cert.display())))?;
    let der = gpki_pki::pem::decode(&pem, "CERTIFICATE")?;
    let cert = gpki_pki::cert::decode(&der)?;
    let key = gpki_pki::SoftwareKey::read_encrypted(
        own_key,
        &gpki_pki::signer::Passphrase::from_file(own_pass_file)?,
    )?;
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)?;
    if spki != gpki_pki::Signer::public_key_der(&key) {
        return Err(Error::malformed(format!(
            "{} is not the key of {}",
            own_key.display(),
            own_cert.display()
        )));
    }
    let algorithm = key.key_type().default_signature_algorithm();
    Ok((der, key.with_algorithm(algorithm)?))
}
