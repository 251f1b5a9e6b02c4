//! `gpki ra …`: registration authorities. The set-up verbs (`create`, `list`,
//! `client add`, `operator add`) work on the store directly, as an administrator
//! of the CA does; the operators' verbs (`submit`, `approve`, `reject`, …) talk to
//! the RA service over mutual TLS with the operator's certificate and key.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::ApiClient;
use gpki_service::mtls::ClientTls;
use gpki_store::{AuditEvent, NewRa, RaChange};
use serde_json::{json, Value};

use crate::{emit, read_file, Global};

#[derive(Subcommand)]
pub enum RaCmd {
    /// Create an RA: its CA, the institutions it serves, the profiles it may ask for
    Create {
        #[arg(long)]
        name: String,
        /// The CA it asks for certificates
        #[arg(long)]
        ca: String,
        /// An RFC 4514 DN every subject must fall under (repeatable)
        #[arg(long = "subtree", required = true)]
        subtrees: Vec<String>,
        /// Profiles it may ask for, comma-separated
        #[arg(long, value_delimiter = ',', required = true)]
        profiles: Vec<String>,
        /// Profiles whose requests need a second operator's approval
        #[arg(long, value_delimiter = ',')]
        dual_control: Vec<String>,
        /// Renewal opens this many days before expiry
        #[arg(long, default_value_t = 30)]
        renew_window_days: i64,
        /// DNS domains its DNS and e-mail SANs must fall under, comma-separated
        /// (none: the RA asks for no such SANs)
        #[arg(long, value_delimiter = ',')]
        domains: Vec<String>,
        /// The RA service (its service-client name) that hosts it
        #[arg(long)]
        host: String,
    },
    /// Change an RA's scope or standing: each option given replaces what the RA
    /// has; the services apply it within a second (their auth_cache_ms). Its
    /// name and CA stay.
    Update {
        #[arg(long)]
        name: String,
        /// An RFC 4514 DN every subject must fall under (repeatable; replaces all)
        #[arg(long = "subtree")]
        subtrees: Option<Vec<String>>,
        /// Profiles it may ask for, comma-separated
        #[arg(long, value_delimiter = ',')]
        profiles: Option<Vec<String>>,
        /// Profiles whose requests need a second operator's approval
        #[arg(long, value_delimiter = ',', conflicts_with = "no_dual_control")]
        dual_control: Option<Vec<String>>,
        /// No profile under dual control any more (said in full, never by an
        /// empty --dual-control)
        #[arg(long)]
        no_dual_control: bool,
        /// Renewal opens this many days before expiry
        #[arg(long)]
        renew_window_days: Option<i64>,
        /// DNS domains its DNS and e-mail SANs must fall under, comma-separated
        /// (an empty value: none, so the RA asks for no such SANs)
        #[arg(long, value_delimiter = ',')]
        domains: Option<Vec<String>>,
        /// The RA service (its service-client name) that hosts it
        #[arg(long)]
        host: Option<String>,
        /// Refuse its requests from now on (its operators and records stay)
        #[arg(long, conflicts_with = "activate")]
        suspend: bool,
        /// Accept its requests again
        #[arg(long)]
        activate: bool,
    },
    /// The RAs in the store
    List,
    /// Clients of the CA service (RA services, delegated signers)
    #[command(subcommand)]
    Client(ClientCmd),
    /// RA operators
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Submit a request for a certificate
    Submit {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        idempotency_key: String,
        #[arg(long)]
        profile: String,
        #[arg(long)]
        subject: String,
        /// PKCS#10 request (PEM)
        #[arg(long)]
        csr: PathBuf,
        /// SAN entries (email:…, dns:…), repeatable
        #[arg(long = "san")]
        sans: Vec<String>,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Write the certificate here when it is issued
        #[arg(long)]
        out: Option<PathBuf>,
        /// A dual enrolment (official-sign): the official's transport key request
        /// (PKCS#10, RSA); the CA also issues the km certificate, whose key it
        /// makes, archives and seals to this key
        #[arg(long)]
        km_transport: Option<PathBuf>,
        #[command(flatten)]
        km_out: KmOut,
    },
    /// Submit every official of a CSV file (header request_id,subject,csr[,san]
    /// [,identity_method,identity_document]; csr names a PKCS#10 file beside it);
    /// request_id is the idempotency key, so rerunning the file submits nothing twice
    Import {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        profile: String,
        /// Requests in flight at once
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Record how the official's identity was verified
    VerifyIdentity {
        #[command(flatten)]
        conn: Conn,
        id: i64,
        #[arg(long)]
        method: String,
        #[arg(long)]
        document: String,
    },
    /// Approve a submitted request (a second operator, under dual control)
    Approve {
        #[command(flatten)]
        conn: Conn,
        id: i64,
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        km_out: KmOut,
    },
    /// Reject a submitted request
    Reject {
        #[command(flatten)]
        conn: Conn,
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// The RA's requests, newest first
    Requests {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Who the RA service takes this operator certificate for: operator and RA
    Whoami {
        #[command(flatten)]
        conn: Conn,
    },
    /// One request
    Show {
        #[command(flatten)]
        conn: Conn,
        id: i64,
    },
    /// Offer a mobile public-official ID to an official the RA knows (by their
    /// official-sign certificate from this RA): prints the nonce the official's
    /// wallet signs (`gpki credential proof`)
    Offer {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        idempotency_key: String,
        /// The official's official-sign certificate (serial, from the RA's CA)
        #[arg(long)]
        serial: String,
        /// mdoc or sd-jwt
        #[arg(long)]
        format: String,
        /// JSON: department, position, issue_date, expiry_date (name, employee
        /// number and institution come from the certificate)
        #[arg(long)]
        attributes: PathBuf,
        /// How the official was seen (required)
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Issue an offered ID to the key that proved it (`gpki credential proof`)
    OfferIssue {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        offer: i64,
        /// The holder's proof JWT
        #[arg(long)]
        proof: PathBuf,
        /// Where to write the credential (mdoc CBOR or SD-JWT text)
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke a certificate of the RA's scope
    Revoke {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        idempotency_key: String,
        #[arg(long)]
        serial: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Revoke your own certificate without an operator: the request is signed with
    /// the certificate's key (a lost phone or a compromised key; when the key is
    /// gone, an operator revokes with an identity verification)
    RevokeOwn {
        /// Only --ra, --server-name and --ca-file are used: no client certificate
        #[command(flatten)]
        conn: Conn,
        /// The certificate to revoke and its key
        #[command(flatten)]
        own: OwnKey,
        /// unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation
        #[arg(long)]
        reason: String,
    },
    /// Report your own mobile ID lost (or its key compromised), signed with your
    /// official-sign key: every valid ID of yours is revoked at once, no operator
    RevokeOwnId {
        /// Only --ra, --server-name and --ca-file are used: no client certificate
        #[command(flatten)]
        conn: Conn,
        /// Your official-sign certificate and its key
        #[command(flatten)]
        own: OwnKey,
        /// lost-device, key-compromise or unspecified
        #[arg(long, default_value = "lost-device")]
        reason: String,
    },
    /// Revoke a mobile ID your RA offered, or one of an official in its scope
    RevokeId {
        #[command(flatten)]
        conn: Conn,
        /// The credential's id (gpki credential list)
        id: i64,
        /// lost-device, left-service, key-compromise, attributes-changed, unspecified
        #[arg(long)]
        reason: String,
    },
    /// Renew a certificate inside the RA's renewal window
    Renew {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        idempotency_key: String,
        #[arg(long)]
        serial: String,
        /// A new key's PKCS#10 request; without it the key is kept
        #[arg(long)]
        csr: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
        /// For a certificate with a km pair: the transport key request for the
        /// pair's new km key
        #[arg(long)]
        km_transport: Option<PathBuf>,
        #[command(flatten)]
        km_out: KmOut,
        /// A new key (--csr, or a pair's new km key) needs the identity verified
        /// again, as a first issuance does
        #[command(flatten)]
        identity: IdentityArgs,
    },
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
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["ra", "ocsp", "tsa"])]
        role: String,
        #[arg(long)]
        ca: String,
        #[arg(long)]
        serial: String,
    },
}

#[derive(Subcommand)]
pub enum OperatorCmd {
    /// Register an issued ra-operator certificate as an operator (store; bootstrap)
    Add {
        /// The RA's name
        #[arg(long)]
        ra: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        ca: String,
        #[arg(long)]
        serial: String,
        #[arg(long)]
        admin: bool,
    },
    /// Enrol an operator through the RA service (administrators)
    Enrol {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        idempotency_key: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        csr: PathBuf,
        #[arg(long)]
        admin: bool,
        /// Write the certificate, then its CA chain (ready for --cert), here
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The RA's operators
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Suspend an operator
    Suspend {
        #[command(flatten)]
        conn: Conn,
        id: i64,
    },
    /// Lift a suspension
    Activate {
        #[command(flatten)]
        conn: Conn,
        id: i64,
    },
    /// Remove an operator for good
    Remove {
        #[command(flatten)]
        conn: Conn,
        id: i64,
    },
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

/// Writes the certificate of a request reply to `out`, when issued.
/// With `chain`, the CA chain follows the certificate (what a TLS client sends).
fn save_certificate(reply: &Value, out: Option<&PathBuf>, chain: bool) -> Result<Option<String>> {
    let (Some(out), Some(pem)) = (out, reply["certificate"]["certificate"].as_str()) else {
        return Ok(None);
    };
    let mut text = pem.to_string();
    if chain {
        for c in reply["certificate"]["chain"]
            .as_array()
            .into_iter()
            .flatten()
        {
            text += c.as_str().unwrap_or_default();
        }
    }
    crate::write_file(out, text.as_bytes())?;
    Ok(Some(out.display().to_string()))
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

fn revoked_ids_text(v: &Value) -> String {
    v["revoked"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "mobile ID {} ({}) revoked: {}",
                c["id"],
                c["format"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn request_text(v: &Value) -> String {
    let r = &v["request"];
    let mut t = format!(
        "request {} ({}) {}: {} {}",
        r["id"],
        r["kind"].as_str().unwrap_or(""),
        r["status"].as_str().unwrap_or(""),
        r["profile"].as_str().unwrap_or(""),
        r["subject"].as_str().unwrap_or("")
    );
    if let Some(serial) = v["certificate"]["serial"].as_str() {
        t += &format!(
            "\n  certificate {serial} of CA {}",
            v["certificate"]["ca"].as_str().unwrap_or("")
        );
    }
    if v["replayed"].as_bool() == Some(true) {
        t += "\n  (a replay: this is the request made the first time)";
    }
    let id = &r["id"];
    for w in v["waiting_for"].as_array().into_iter().flatten() {
        match w.as_str() {
            Some("identity") => t += &format!(
                "\n  waiting for an identity verification: gpki ra verify-identity {id} --method face-to-face|contact-free --document \"…\", then gpki ra approve {id}"
            ),
            Some("second-operator") => t += &format!(
                "\n  waiting for a second operator (dual control): another operator of this RA runs gpki ra approve {id}"
            ),
            _ => t += &format!("\n  waiting for {w}"),
        }
    }
    t
}

pub async fn run(g: &Global, cmd: RaCmd) -> Result<()> {
    let out = g.output;
    match cmd {
        RaCmd::Create {
            name,
            ca,
            subtrees,
            profiles,
            dual_control,
            renew_window_days,
            domains,
            host,
        } => {
            let store = g.store().await?;
            store.authority_by_name(&ca).await?;
            check_names(g, profiles.iter().chain(&dual_control), &subtrees)?;
            let ra = store
                .create_ra(
                    &NewRa {
                        name: name.clone(),
                        ca_name: ca,
                        subtrees,
                        profiles,
                        dual_control,
                        renew_window_days,
                        host,
                        domains,
                    },
                    &AuditEvent::new(&g.actor(), "ra.create", format!("ra:{name}"), json!({})),
                )
                .await?;
            emit(out, json!({ "ra": ra }), || {
                format!("RA {} created (id {})", ra.name, ra.id)
            });
        }
        RaCmd::Update {
            name,
            subtrees,
            profiles,
            dual_control,
            no_dual_control,
            renew_window_days,
            domains,
            host,
            suspend,
            activate,
        } => {
            let store = g.store().await?;
            // `--domains ''` clears the domains; an empty profile name is an error
            // (dual control is lifted only by --no-dual-control).
            let domains =
                domains.map(|v| v.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>());
            let dual_control = if no_dual_control {
                Some(Vec::new())
            } else {
                dual_control
            };
            check_names(
                g,
                profiles.iter().chain(&dual_control).flatten(),
                subtrees.as_deref().unwrap_or_default(),
            )?;
            let change = RaChange {
                subtrees,
                profiles,
                dual_control,
                renew_window_days,
                domains,
                host,
                status: match (suspend, activate) {
                    (true, _) => Some("suspended".into()),
                    (_, true) => Some("active".into()),
                    _ => None,
                },
            };
            let ra = store
                .update_ra(
                    &name,
                    &change,
                    &AuditEvent::new(&g.actor(), "ra.update", format!("ra:{name}"), json!({})),
                )
                .await?;
            emit(out, json!({ "ra": ra }), || {
                format!(
                    "RA {} updated: {}, profiles {}, dual control {}, subtrees {}",
                    ra.name,
                    ra.status,
                    ra.profiles.join(","),
                    if ra.dual_control.is_empty() {
                        "none".into()
                    } else {
                        ra.dual_control.join(",")
                    },
                    ra.subtrees.join(" | ")
                )
            });
        }
        RaCmd::List => {
            let store = g.store().await?;
            let ras = store.ras().await?;
            emit(out, json!({ "ras": ras }), || {
                ras.iter()
                    .map(|r| {
                        format!(
                            "{}\t{}\tCA {}\thost {}\tprofiles {}\t{}",
                            r.name,
                            r.status,
                            r.ca_name,
                            r.host,
                            r.profiles.join(","),
                            r.subtrees.join(" | ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RaCmd::Client(ClientCmd::Add {
            name,
            role,
            ca,
            serial,
        }) => {
            let store = g.store().await?;
            let cert = certificate(&store, &ca, &serial).await?;
            if cert.profile != "service-client" {
                return Err(Error::policy(format!(
                    "certificate {} is of profile {}; CA service clients use service-client certificates",
                    cert.serial, cert.profile
                )));
            }
            let client = store
                .add_service_client(
                    &name,
                    &role,
                    cert.id,
                    &AuditEvent::new(
                        &g.actor(),
                        "ca.client.add",
                        format!("cert:{ca}/{}", cert.serial),
                        json!({ "name": name, "role": role }),
                    ),
                )
                .await?;
            emit(out, json!({ "client": client }), || {
                format!(
                    "certificate {} registered as {role} client `{name}`",
                    cert.serial
                )
            });
        }
        RaCmd::Operator(OperatorCmd::Add {
            ra,
            name,
            ca,
            serial,
            admin,
        }) => {
            let store = g.store().await?;
            let ra = store.ra_by_name(&ra).await?;
            let cert = certificate(&store, &ca, &serial).await?;
            if cert.profile != "ra-operator" {
                return Err(Error::policy(format!(
                    "certificate {} is of profile {}; operators log in with ra-operator certificates",
                    cert.serial, cert.profile
                )));
            }
            ra.check_scope("ra-operator", &cert.subject)?;
            let op = store
                .add_operator(
                    ra.id,
                    &name,
                    cert.id,
                    admin,
                    &AuditEvent::new(
                        &g.actor(),
                        "ra.operator.enrol",
                        format!("ra:{}", ra.name),
                        json!({ "name": name, "cert_id": cert.id, "admin": admin }),
                    ),
                )
                .await?;
            emit(out, json!({ "operator": op }), || {
                format!("operator {} of RA {} (id {})", op.name, ra.name, op.id)
            });
        }
        RaCmd::Operator(OperatorCmd::Enrol {
            conn,
            idempotency_key,
            name,
            subject,
            csr,
            admin,
            out: file,
        }) => {
            let body = json!({
                "idempotency_key": idempotency_key, "name": name, "subject": subject,
                "csr": String::from_utf8_lossy(&read_file(&csr, "CSR")?), "admin": admin,
            });
            let v: Value = conn.client()?.post("v1/operators", &body).await?;
            let saved = save_certificate(&v, file.as_ref(), true)?;
            emit(out, v.clone(), || {
                let mut t = format!(
                    "operator {} enrolled (id {})",
                    v["operator"]["name"].as_str().unwrap_or(""),
                    v["operator"]["id"]
                );
                if let Some(s) = saved {
                    t += &format!("\n  certificate written to {s}");
                }
                t
            });
        }
        RaCmd::Operator(OperatorCmd::List { conn }) => {
            let v: Value = conn.client()?.get("v1/operators").await?;
            emit(out, v.clone(), || {
                v["operators"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| {
                        format!(
                            "{}\t{}\t{}{}",
                            o["id"],
                            o["name"].as_str().unwrap_or(""),
                            o["status"].as_str().unwrap_or(""),
                            if o["admin"].as_bool() == Some(true) {
                                "\tadmin"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RaCmd::Operator(OperatorCmd::Suspend { conn, id }) => {
            operator_verb(out, &conn, id, "suspend").await?
        }
        RaCmd::Operator(OperatorCmd::Activate { conn, id }) => {
            operator_verb(out, &conn, id, "activate").await?
        }
        RaCmd::Operator(OperatorCmd::Remove { conn, id }) => {
            operator_verb(out, &conn, id, "remove").await?
        }
        RaCmd::Submit {
            conn,
            idempotency_key,
            profile,
            subject,
            csr,
            sans,
            identity,
            out: file,
            km_transport,
            km_out,
        } => {
            let mut body = json!({
                "idempotency_key": idempotency_key, "profile": profile, "subject": subject,
                "csr": String::from_utf8_lossy(&read_file(&csr, "CSR")?), "sans": sans,
            });
            if let Some(i) = identity.value() {
                body["identity"] = i;
            }
            if let Some(t) = &km_transport {
                body["km_transport"] = Value::String(
                    String::from_utf8_lossy(&read_file(t, "transport request")?).into(),
                );
            }
            let v: Value = conn.client()?.post("v1/requests", &body).await?;
            request_reply(out, &v, file.as_ref(), &km_out)?;
        }
        RaCmd::Import {
            conn,
            csv,
            profile,
            concurrency,
        } => {
            let client = conn.client()?;
            let total = gpki_ca::batch::read_csv(&csv)?.len();
            let bar = indicatif::ProgressBar::new(total as u64);
            if out == crate::Output::Json {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} submitting [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
                )
                .expect("progress template")
                .progress_chars("=> "),
            );
            let report = crate::ra_import::import(&client, &csv, &profile, concurrency, &|n| {
                bar.set_position(n as u64)
            })
            .await?;
            bar.finish_and_clear();
            emit(out, serde_json::to_value(&report).expect("JSON"), || {
                let mut t = format!(
                    "{} rows: {} issued, {} done before (replayed), {} waiting for approval, {} failed\n{:.1} s, {:.0} rows/s, latency p50 {:.1} ms, p99 {:.1} ms",
                    report.rows,
                    report.issued,
                    report.already_done,
                    report.waiting,
                    report.failed.len(),
                    report.seconds,
                    report.per_second,
                    report.latency_ms.p50,
                    report.latency_ms.p99,
                );
                for f in &report.failed {
                    t += &format!(
                        "\n  line {} ({}): {}: {}",
                        f.line, f.request_id, f.kind, f.error
                    );
                }
                if !report.failed.is_empty() {
                    t += "\nrun the same file again to retry the failed rows; answered rows are not submitted twice";
                }
                t
            });
            if !report.failed.is_empty() {
                return Err(Error::new(
                    ErrorKind::PolicyViolation,
                    format!("{} of {} rows failed", report.failed.len(), report.rows),
                ));
            }
        }
        RaCmd::VerifyIdentity {
            conn,
            id,
            method,
            document,
        } => {
            let v: Value = conn
                .client()?
                .post(
                    &format!("v1/requests/{id}/identity"),
                    &json!({ "method": method, "document": document }),
                )
                .await?;
            request_reply(out, &v, None, &KmOut::none())?;
        }
        RaCmd::Approve {
            conn,
            id,
            out: file,
            km_out,
        } => {
            let v: Value = conn
                .client()?
                .post(&format!("v1/requests/{id}/approve"), &json!({}))
                .await?;
            request_reply(out, &v, file.as_ref(), &km_out)?;
        }
        RaCmd::Reject { conn, id, reason } => {
            let v: Value = conn
                .client()?
                .post(
                    &format!("v1/requests/{id}/reject"),
                    &json!({ "reason": reason }),
                )
                .await?;
            request_reply(out, &v, None, &KmOut::none())?;
        }
        RaCmd::Requests {
            conn,
            status,
            limit,
        } => {
            let mut path = format!("v1/requests?limit={limit}");
            if let Some(s) = status {
                path += &format!("&status={s}");
            }
            let v: Value = conn.client()?.get(&path).await?;
            emit(out, v.clone(), || {
                v["requests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        format!(
                            "{}\t{}\t{}\t{}\t{}",
                            r["id"],
                            r["kind"].as_str().unwrap_or(""),
                            r["status"].as_str().unwrap_or(""),
                            r["profile"].as_str().unwrap_or(""),
                            r["subject"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RaCmd::RevokeId { conn, id, reason } => {
            let v: Value = conn
                .client()?
                .post(
                    &format!("v1/credentials/{id}/revoke"),
                    &json!({ "reason": reason }),
                )
                .await?;
            emit(out, v.clone(), || revoked_ids_text(&v));
        }
        RaCmd::RevokeOwnId { conn, own, reason } => {
            let (der, key) = own.pair()?;
            let signed_at = gpki_pki::time::now();
            let message = gpki_service::ca_api::holder_credential_revocation_message(
                &hex::encode(openssl::sha::sha256(&der)),
                &reason,
                signed_at,
            );
            let signature = gpki_pki::Signer::sign(&key, &message)?;
            let body = gpki_service::ca_api::HolderRevocationBody {
                certificate: gpki_pki::pem::encode("CERTIFICATE", &der),
                reason,
                signed_at,
                signature: hex::encode(signature),
            };
            let v: Value = conn
                .anonymous_client()?
                .post("v1/holder/credential-revocations", &body)
                .await?;
            emit(out, v.clone(), || revoked_ids_text(&v));
        }
        RaCmd::RevokeOwn { conn, own, reason } => {
            let (der, key) = own.pair()?;
            let reason_name = reason.parse::<gpki_pki::crl::RevocationReason>()?;
            let signed_at = gpki_pki::time::now();
            let message = gpki_service::ca_api::holder_revocation_message(
                &hex::encode(openssl::sha::sha256(&der)),
                reason_name.as_str(),
                signed_at,
            );
            let signature = gpki_pki::Signer::sign(&key, &message)?;
            let body = gpki_service::ca_api::HolderRevocationBody {
                // Only the certificate, whatever else the file holds.
                certificate: gpki_pki::pem::encode("CERTIFICATE", &der),
                reason: reason_name.as_str().to_string(),
                signed_at,
                signature: hex::encode(signature),
            };
            let v: Value = conn
                .anonymous_client()?
                .post("v1/holder/revocations", &body)
                .await?;
            request_reply(out, &v, None, &KmOut::none())?;
        }
        RaCmd::Whoami { conn } => {
            let v: Value = conn.client()?.get("v1/whoami").await?;
            emit(out, v.clone(), || {
                format!(
                    "operator {} (id {}{}) of RA {} (CA {}, profiles {})",
                    v["operator"]["name"].as_str().unwrap_or(""),
                    v["operator"]["id"],
                    if v["operator"]["admin"] == true {
                        ", administrator"
                    } else {
                        ""
                    },
                    v["ra"]["name"].as_str().unwrap_or(""),
                    v["ra"]["ca_name"].as_str().unwrap_or(""),
                    v["ra"]["profiles"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default(),
                )
            });
        }
        RaCmd::Show { conn, id } => {
            let v: Value = conn.client()?.get(&format!("v1/requests/{id}")).await?;
            request_reply(out, &v, None, &KmOut::none())?;
        }
        RaCmd::Offer {
            conn,
            idempotency_key,
            serial,
            format,
            attributes,
            identity,
        } => {
            let identity = identity.value().ok_or_else(|| {
                Error::malformed(
                    "--identity-method and --identity-document: how the official was seen",
                )
            })?;
            let attributes: Value = serde_json::from_slice(&read_file(&attributes, "attributes")?)
                .map_err(|e| Error::malformed(format!("attributes: {e}")))?;
            let body = json!({
                "idempotency_key": idempotency_key,
                "format": format,
                "official": { "serial": serial },
                "attributes": attributes,
                "identity": identity,
            });
            let v: Value = conn.client()?.post("v1/credentials/offers", &body).await?;
            emit(out, v.clone(), || {
                format!(
                    "credential offer {} ({}): nonce {} for {}, until {}",
                    v["offer"],
                    v["status"].as_str().unwrap_or(""),
                    v["nonce"].as_str().unwrap_or(""),
                    v["audience"].as_str().unwrap_or(""),
                    gpki_pki::time::rfc3339(v["expires_at"].as_i64().unwrap_or(0))
                )
            });
        }
        RaCmd::OfferIssue {
            conn,
            offer,
            proof,
            out: file,
        } => {
            let proof = String::from_utf8(read_file(&proof, "proof")?)
                .map_err(|_| Error::malformed("the proof is not UTF-8"))?;
            let body = json!({ "proof": proof.trim() });
            let v: gpki_service::credential_api::CredentialReply = conn
                .client()?
                .post(&format!("v1/credentials/offers/{offer}/issue"), &body)
                .await?;
            let bytes = match v.format.as_str() {
                "mdoc" => base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    &v.credential,
                )
                .map_err(|e| Error::malformed(format!("the CA's mdoc: {e}")))?,
                _ => v.credential.clone().into_bytes(),
            };
            crate::write_file(&file, &bytes)?;
            let mut shown = serde_json::to_value(&v).map_err(|e| Error::internal(e.to_string()))?;
            shown["credential"] = json!(file.display().to_string());
            emit(out, shown, || {
                format!(
                    "credential {} ({}) issued for offer {}: index {} on {}, valid until {}: {}",
                    v.id,
                    v.format,
                    v.offer,
                    v.idx,
                    v.status_list,
                    gpki_pki::time::rfc3339(v.valid_until),
                    file.display()
                )
            });
        }
        RaCmd::Revoke {
            conn,
            idempotency_key,
            serial,
            reason,
            identity,
        } => {
            let mut body =
                json!({ "idempotency_key": idempotency_key, "serial": serial, "reason": reason });
            if let Some(i) = identity.value() {
                body["identity"] = i;
            }
            let v: Value = conn.client()?.post("v1/revocations", &body).await?;
            request_reply(out, &v, None, &KmOut::none())?;
        }
        RaCmd::Renew {
            conn,
            idempotency_key,
            serial,
            csr,
            out: file,
            km_transport,
            km_out,
            identity,
        } => {
            let mut body = json!({ "idempotency_key": idempotency_key, "serial": serial });
            if let Some(i) = identity.value() {
                body["identity"] = i;
            }
            if let Some(c) = csr {
                body["csr"] = Value::String(String::from_utf8_lossy(&read_file(&c, "CSR")?).into());
            }
            if let Some(t) = &km_transport {
                body["km_transport"] = Value::String(
                    String::from_utf8_lossy(&read_file(t, "transport request")?).into(),
                );
            }
            let v: Value = conn.client()?.post("v1/renewals", &body).await?;
            request_reply(out, &v, file.as_ref(), &km_out)?;
        }
    }
    Ok(())
}

fn request_reply(out: crate::Output, v: &Value, file: Option<&PathBuf>, km: &KmOut) -> Result<()> {
    let saved = save_certificate(v, file, false)?;
    let km_saved = km.save(v)?;
    emit(out, v.clone(), || {
        let mut t = request_text(v);
        if let Some(s) = saved {
            t += &format!("\n  certificate written to {s}");
        }
        if let Some(serial) = v["certificate"]["km"]["certificate"]["serial"].as_str() {
            t += &format!("\n  km certificate {serial}");
        }
        for s in km_saved {
            t += &format!("\n  written to {s}");
        }
        if let Some(p) = v["certificate"]["pair"].as_object() {
            t += &format!(
                "\n  its pair {} ({}) is {}",
                p["serial"].as_str().unwrap_or(""),
                p["profile"].as_str().unwrap_or(""),
                p["status"].as_str().unwrap_or("")
            );
        }
        t
    });
    Ok(())
}

async fn operator_verb(out: crate::Output, conn: &Conn, id: i64, verb: &str) -> Result<()> {
    let v: Value = conn
        .client()?
        .post(&format!("v1/operators/{id}/{verb}"), &json!({}))
        .await?;
    emit(out, v.clone(), || {
        format!(
            "operator {} is {}",
            v["operator"]["name"].as_str().unwrap_or(""),
            v["operator"]["status"].as_str().unwrap_or("")
        )
    });
    Ok(())
}

async fn certificate(
    store: &gpki_store::Store,
    ca: &str,
    serial: &str,
) -> Result<gpki_store::CertificateRecord> {
    let serial = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
    let authority = store.authority_by_name(ca).await?;
    store
        .certificate(authority.id, &serial)
        .await?
        .filter(|c| c.status == gpki_store::CertStatus::Issued)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no issued certificate {serial} from CA `{ca}`"),
            )
        })
}

/// What the store cannot check of an RA's scope: its profiles are known ones and
/// its subtrees are DNs. (The store checks the rest, for create and update alike.)
fn check_names<'a>(
    g: &Global,
    profiles: impl Iterator<Item = &'a String>,
    subtrees: &[String],
) -> Result<()> {
    let known = g.profiles()?;
    for p in profiles {
        known.get(p)?;
    }
    for s in subtrees {
        gpki_pki::name::parse(s)?;
    }
    Ok(())
}
