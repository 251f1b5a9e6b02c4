//! `gpki credential …`: mobile credentials (the mobile public-official ID) as mdoc and
//! SD-JWT VC, signed by a credential-signer certificate, their status on a status
//! list in the store.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use gpki_credentials::{mdoc, sdjwt, status, verify, HolderKey, IssuerKey, OfficialId, PublicKey};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, Result, SoftwareKey};
use gpki_store::AuditEvent;
use serde_json::json;

use crate::{emit, read_file, write_file, Global};

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
    Issue {
        #[arg(long, value_enum)]
        format: Format,
        /// The official's attributes (JSON: name, employee_number, institution,
        /// department, position, issue_date, expiry_date)
        #[arg(long)]
        attributes: PathBuf,
        /// The official's photograph (JPEG, at most 64 KiB)
        #[arg(long)]
        portrait: Option<PathBuf>,
        /// The holder's public key (PEM or DER SubjectPublicKeyInfo, P-256 or P-384)
        #[arg(long)]
        holder_key: PathBuf,
        #[command(flatten)]
        signer: SignerArgs,
        /// The status list the credential's status goes on
        #[arg(long)]
        status_list: String,
        /// The issuer's identifier (SD-JWT VC `iss`; a URI SAN of the signer certificate)
        #[arg(long, default_value = crate::dev::CREDENTIAL_ISSUER)]
        issuer: String,
        /// Days the credential is valid (at most to the signer certificate's end and
        /// the ID's expiry date)
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
        valid_days: i64,
        /// Credentials of this official this one replaces (a new phone): revoked
        /// `replaced` when this one is issued
        #[arg(long)]
        replaces: Vec<i64>,
        /// Where to write the credential
        #[arg(long)]
        out: PathBuf,
    },
    /// Present a credential: disclose only the chosen attributes, bound to the
    /// holder's key and to the verifier's nonce
    Present {
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
    },
    /// The holder's proof of possession for an RA's credential offer: a JWT by the
    /// holder key (in its header) over the offer's nonce, for the issuer
    /// (OpenID4VCI proof type `jwt`)
    Proof {
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
    },
    /// Verify a presentation as a verifier does: the signer's chain to a trust
    /// anchor, its OCSP status, the signature, the disclosed digests, validity, the
    /// holder binding to this verifier and nonce, and the status list
    Verify {
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
    },
    /// Revoke a credential: its bit on the status list is set
    Revoke {
        #[arg(long)]
        id: i64,
        /// lost-device, left-service, replaced, key-compromise, attributes-changed, unspecified
        #[arg(long)]
        reason: String,
    },
    /// List issued credentials, newest first
    List {
        /// Only this official's (employee number)
        #[arg(long)]
        subject: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Status lists: create, list
    #[command(subcommand)]
    StatusList(StatusListCmd),
}

#[derive(Subcommand)]
pub enum StatusListCmd {
    /// Create a status list
    Create {
        #[arg(long)]
        name: String,
        /// The URL verifiers fetch it from (the OCSP responder's /statuslists/NAME)
        #[arg(long)]
        uri: String,
        /// Entries (credentials) the list holds
        #[arg(long, default_value_t = 1 << 20)]
        size: i64,
        /// Bits per entry: 1 (valid, invalid) or 2 (also suspended)
        #[arg(long, default_value_t = 1)]
        bits: u8,
    },
    /// List the status lists
    List,
    /// Sign a status list's current state as a Status List Token (JWT and CWT)
    Publish {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        signer: SignerArgs,
        /// Seconds a verifier may keep the list before fetching it again (`ttl`)
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(1..=86_400))]
        ttl: i64,
        /// Seconds the token is valid (`exp` - `iat`)
        #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(i64).range(1..=2_592_000))]
        valid: i64,
        /// Write the JWT (application/statuslist+jwt) here
        #[arg(long)]
        jwt_out: Option<PathBuf>,
        /// Write the CWT (application/statuslist+cwt) here
        #[arg(long)]
        cwt_out: Option<PathBuf>,
    },
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
        CredentialCmd::Issue {
            format,
            attributes,
            portrait,
            holder_key,
            signer,
            status_list,
            issuer,
            valid_days,
            replaces,
            out,
        } => {
            let portrait = portrait.map(|p| read_file(&p, "portrait")).transpose()?;
            let id = OfficialId::from_json(&read_file(&attributes, "attributes")?, portrait)?;
            let holder = PublicKey::from_pem_or_der(&read_file(&holder_key, "holder key")?)
                .map_err(|e| e.context("holder key"))?;
            let store = g.store().await?;
            // Issuance checks the signer is in force in the store.
            let key = signer.key(gpki_pki::profile::EKU_MDL_DS, "credential signer")?;
            let gpki_ca::credential::Issued {
                record,
                list,
                bytes,
                valid_until,
            } = gpki_ca::credential::issue(
                &store,
                &key,
                &gpki_ca::credential::Order {
                    id: &id,
                    holder: &holder,
                    format: format.into(),
                    status_list: &status_list,
                    issuer: &issuer,
                    valid_days,
                    replaces: &replaces,
                    replace_earlier: false,
                    not_after: None,
                    official_cert: None,
                    offer: None,
                    actor: &g.actor(),
                    context: json!({}),
                },
            )
            .await?;
            write_file(&out, &bytes)?;
            emit(
                g.output,
                json!({
                    "id": record.id,
                    "format": format.as_str(),
                    "status_list": list.name,
                    "status_uri": list.uri,
                    "idx": record.idx,
                    "valid_until": gpki_pki::time::rfc3339(valid_until),
                    "replaced": replaces,
                    "out": out.display().to_string(),
                }),
                || {
                    format!(
                        "issued credential {} ({}) to {}, index {} on {}, valid until {}: {}",
                        record.id,
                        format.as_str(),
                        record.subject,
                        record.idx,
                        list.name,
                        gpki_pki::time::rfc3339(valid_until),
                        out.display()
                    )
                },
            );
        }
        CredentialCmd::Proof {
            holder_key,
            holder_pass_file,
            nonce,
            audience,
            out,
        } => {
            let pass = Passphrase::from_file(&holder_pass_file)?;
            let holder =
                HolderKey::new(Arc::new(SoftwareKey::read_encrypted(&holder_key, &pass)?))?;
            let jwt =
                gpki_credentials::proof::sign(&holder, &audience, &nonce, gpki_pki::time::now())?;
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
        }
        CredentialCmd::Present {
            credential,
            disclose,
            holder_key,
            holder_pass_file,
            verifier,
            nonce,
            out,
            qr,
            qr_terminal,
        } => {
            let bytes = read_file(&credential, "credential")?;
            let mut disclose = disclose;
            disclose.dedup();
            let mut seen = std::collections::HashSet::new();
            disclose.retain(|d| seen.insert(d.clone()));
            let pass = Passphrase::from_file(&holder_pass_file)?;
            let holder =
                HolderKey::new(Arc::new(SoftwareKey::read_encrypted(&holder_key, &pass)?))?;
            if nonce.len() < 16 {
                return Err(Error::malformed(
                    "--nonce must be at least 16 characters (a fresh random value of the verifier's)",
                ));
            }
            let (format, presentation) = if is_sd_jwt(&bytes) {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| Error::malformed("the SD-JWT is not UTF-8"))?;
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
        }
        CredentialCmd::Verify {
            presentation,
            qr,
            anchor,
            verifier,
            nonce,
            ocsp_url,
            status_list_token,
            at,
            max_age,
        } => {
            let bytes = match (&presentation, &qr) {
                (Some(p), _) => read_file(p, "presentation")?,
                (None, Some(q)) => gpki_credentials::qr::read_png(&read_file(q, "QR image")?)?,
                (None, None) => unreachable!("clap requires one"),
            };
            let mut anchors = Vec::new();
            for a in &anchor {
                let pem = read_file(a, "trust anchor")?;
                anchors.extend(
                    openssl::x509::X509::stack_from_pem(&pem).map_err(|e| {
                        Error::malformed(format!("trust anchor {}: {e}", a.display()))
                    })?,
                );
            }
            if anchors.is_empty() {
                return Err(Error::malformed(
                    "the trust anchor files hold no certificate",
                ));
            }
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
                Ok(v) => emit(g.output, verify::report(&v), || {
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
                }),
                Err(refused) => {
                    if g.output == crate::Output::Text {
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
                    return Err(Error::new(
                        kind,
                        format!(
                            "presentation refused [{}]: {}",
                            refused.reason.name(),
                            printable(&refused.detail)
                        ),
                    ));
                }
            }
        }
        CredentialCmd::Revoke { id, reason } => {
            let store = g.store().await?;
            let r = store
                .revoke_credential(
                    id,
                    &reason,
                    &AuditEvent::new(
                        &g.actor(),
                        "credential.revoke",
                        format!("credential:{id}"),
                        json!({ "reason": reason }),
                    ),
                )
                .await?;
            emit(g.output, json!(r), || {
                format!(
                    "revoked credential {} ({}) of {}: {reason}",
                    r.id, r.format, r.subject
                )
            });
        }
        CredentialCmd::List { subject, limit } => {
            let store = g.store().await?;
            let rows = store.credentials(subject.as_deref(), limit).await?;
            emit(g.output, json!(rows), || {
                let mut t = format!(
                    "{:>6}  {:<7} {:<16} {:<9} {:>8}  {}\n",
                    "id", "format", "subject", "status", "idx", "valid until"
                );
                for r in &rows {
                    t += &format!(
                        "{:>6}  {:<7} {:<16} {:<9} {:>8}  {}\n",
                        r.id,
                        r.format,
                        r.subject,
                        r.status,
                        r.idx,
                        gpki_pki::time::rfc3339(r.valid_until)
                    );
                }
                t
            });
        }
        CredentialCmd::StatusList(StatusListCmd::Create {
            name,
            uri,
            size,
            bits,
        }) => {
            let store = g.store().await?;
            let l = store
                .create_status_list(
                    &name,
                    &uri,
                    bits,
                    size,
                    &AuditEvent::new(
                        &g.actor(),
                        "status-list.create",
                        format!("status-list:{name}"),
                        json!({ "uri": uri, "size": size, "bits": bits }),
                    ),
                )
                .await?;
            emit(g.output, json!(l), || {
                format!(
                    "created status list {} ({} entries of {} bit(s)) at {}",
                    l.name, l.size, l.bits, l.uri
                )
            });
        }
        CredentialCmd::StatusList(StatusListCmd::Publish {
            name,
            signer,
            ttl,
            valid,
            jwt_out,
            cwt_out,
        }) => {
            if jwt_out.is_none() && cwt_out.is_none() {
                return Err(Error::malformed("give --jwt-out, --cwt-out or both"));
            }
            if ttl < 1 || valid < ttl {
                return Err(Error::malformed(
                    "--ttl must be at least 1 and --valid at least --ttl",
                ));
            }
            let store = g.store().await?;
            let now = gpki_pki::time::now();
            let (key, _) = signer
                .load(
                    &store,
                    gpki_pki::profile::EKU_STATUS_LIST_SIGNING,
                    "status list signer",
                )
                .await?;
            let record = store.status_list_by_name(&name).await?;
            let (seq, revoked) = store.status_list_revoked(record.id).await?;
            let mut list = status::StatusList::new(record.size as u64, record.bits as u8)?;
            for idx in &revoked {
                list.set(*idx as u64, status::INVALID)?;
            }
            let at = status::Issued {
                iat: now,
                exp: now.saturating_add(valid).min(key.not_after()?),
                ttl,
            };
            let mut written = Vec::new();
            if let Some(p) = &jwt_out {
                replace_file(p, status::jwt(&list, &record.uri, at, &key)?.as_bytes())?;
                written.push(p.display().to_string());
            }
            if let Some(p) = &cwt_out {
                replace_file(p, &status::cwt(&list, &record.uri, at, &key)?)?;
                written.push(p.display().to_string());
            }
            let compressed = list.compressed().len();
            emit(
                g.output,
                json!({
                    "name": record.name,
                    "uri": record.uri,
                    "status_seq": seq,
                    "revoked": revoked.len(),
                    "size": record.size,
                    "compressed_bytes": compressed,
                    "written": written,
                }),
                || {
                    format!(
                        "status list {} ({} entries, {} revoked, {compressed} bytes compressed): {}",
                        record.name,
                        record.size,
                        revoked.len(),
                        written.join(", ")
                    )
                },
            );
        }
        CredentialCmd::StatusList(StatusListCmd::List) => {
            let store = g.store().await?;
            let lists = store.status_lists().await?;
            emit(g.output, json!(lists), || {
                let mut t = format!(
                    "{:<16} {:>9} {:>9} {:>4}  {}\n",
                    "name", "size", "used", "bits", "uri"
                );
                for l in &lists {
                    t += &format!(
                        "{:<16} {:>9} {:>9} {:>4}  {}\n",
                        l.name, l.size, l.used, l.bits, l.uri
                    );
                }
                t
            });
        }
    }
    Ok(())
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

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, so a
/// server reading the file never sees half a list.
fn replace_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write_file(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::internal(format!("cannot replace {}: {e}", path.display())))
}

/// An SD-JWT is base64url text starting with a JWS header (`ey…`); an mdoc is CBOR.
fn is_sd_jwt(bytes: &[u8]) -> bool {
    bytes.starts_with(b"ey")
}
