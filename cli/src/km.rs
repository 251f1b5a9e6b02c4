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

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use gpki_kmi::approval::{self, Approval, Statement};
use gpki_kmi::keyfile::{self, Pair};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, Result, Signer, SoftwareKey};
use gpki_store::{AuditEvent, CertificateRecord, NewApproval, RecoveryRecord, Store};
use openssl::pkey::{PKey, Private};
use serde_json::json;

use crate::{emit, read_file, write_file, Global};

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
    Issue {
        #[arg(long)]
        ca: String,
        /// Serial of the official-sign certificate the km certificate pairs with
        #[arg(long)]
        serial: String,
        /// The official's transport key: a PKCS#10 request (RSA) they made for it
        #[arg(long)]
        transport: PathBuf,
        #[arg(long)]
        kra: String,
        /// Write the km certificate (PEM) here
        #[arg(long)]
        cert_out: PathBuf,
        /// Write the sealed km key (DER CMS EnvelopedData) here
        #[arg(long)]
        envelope_out: PathBuf,
    },
    /// Open a delivered km key with the transport key, and write it as PKCS#12
    /// and/or Korean key files
    Open {
        /// The sealed key (DER CMS EnvelopedData)
        #[arg(long)]
        envelope: PathBuf,
        /// The km certificate (PEM or DER)
        #[arg(long)]
        cert: PathBuf,
        /// The transport key (encrypted PKCS#8 PEM, from `gpki key new`)
        #[arg(long)]
        transport_key: PathBuf,
        #[arg(long)]
        transport_pass_file: PathBuf,
        #[command(flatten)]
        out: KeyFilesOut,
    },
    /// Open a recovery request for a km certificate's archived key; prints the
    /// statement each officer signs
    Request {
        #[arg(long)]
        ca: String,
        /// Serial of the km certificate
        #[arg(long)]
        serial: String,
        #[arg(long)]
        reason: String,
        /// Write the statement (JSON) for the officers here
        #[arg(long)]
        statement_out: Option<PathBuf>,
    },
    /// Sign a recovery statement as an officer (offline: no store needed)
    Approve {
        /// The statement (JSON) from `gpki km request`
        #[arg(long)]
        statement: PathBuf,
        /// The officer's certificate (PEM or DER)
        #[arg(long)]
        cert: PathBuf,
        /// The officer's key (encrypted PKCS#8 PEM)
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        pass_file: PathBuf,
        /// Write the approval (JSON) here
        #[arg(long)]
        out: PathBuf,
    },
    /// Release an archived km key with M of N officers' approvals
    Recover {
        #[arg(long)]
        ca: String,
        /// Serial of the km certificate
        #[arg(long)]
        serial: String,
        /// An officer's approval (JSON); give one per officer
        #[arg(long = "approval", required = true)]
        approvals: Vec<PathBuf>,
        /// The KRA's private key (encrypted PKCS#8 PEM), on the KRA's host
        #[arg(long)]
        kra_key: PathBuf,
        #[arg(long)]
        kra_pass_file: PathBuf,
        #[command(flatten)]
        out: KeyFilesOut,
    },
    /// Write a PKCS#12 file's key and certificate as Korean key files
    Export {
        #[arg(long)]
        pkcs12: PathBuf,
        #[arg(long)]
        pass_file: PathBuf,
        /// Which pair the files hold: sign (signCert.der, signPri.key) or km
        #[arg(long, value_enum)]
        pair: PairArg,
        #[arg(long)]
        npki_dir: PathBuf,
        /// Password of the key files written
        #[arg(long)]
        out_pass_file: PathBuf,
    },
    /// Read Korean key files and write them as PKCS#12
    Import {
        #[arg(long)]
        npki_dir: PathBuf,
        #[arg(long, value_enum)]
        pair: PairArg,
        #[arg(long)]
        pass_file: PathBuf,
        #[arg(long)]
        pkcs12: PathBuf,
        #[arg(long)]
        out_pass_file: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum KraCmd {
    /// Certify a KRA's key (from its PKCS#10 request, profile key-recovery) and
    /// register the KRA; its private key stays where the request was made
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        ca: String,
        #[arg(long)]
        csr: PathBuf,
        /// Approvals needed to release a key
        #[arg(long)]
        quorum: i64,
        /// Write the KRA's certificate (PEM) here
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
    /// List the KRAs
    List,
}

#[derive(Subcommand)]
pub enum OfficerCmd {
    /// Make the holder of a certificate of this store a recovery officer
    Add {
        #[arg(long)]
        kra: String,
        #[arg(long)]
        name: String,
        /// The officer's certificate (PEM or DER), in force
        #[arg(long)]
        cert: PathBuf,
    },
    /// Remove an officer: their approvals no longer count
    Remove {
        #[arg(long)]
        kra: String,
        #[arg(long)]
        name: String,
    },
    /// List a KRA's officers
    List {
        #[arg(long)]
        kra: String,
    },
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

fn read_cert(path: &Path) -> Result<Vec<u8>> {
    gpki_pki::pem::decode_pem_or_der(&read_file(path, "certificate")?, &["CERTIFICATE"])
}

fn read_key(path: &Path, pass_file: &Path) -> Result<SoftwareKey> {
    SoftwareKey::read_encrypted(path, &Passphrase::from_file(pass_file)?)
}

async fn certificate(store: &Store, ca: &str, serial: &str) -> Result<CertificateRecord> {
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

/// The statement officers sign for `recovery` of km certificate `cert`.
async fn statement(
    store: &Store,
    ca: &str,
    cert: &CertificateRecord,
    r: &RecoveryRecord,
) -> Result<Statement> {
    let archive = store.archive(r.archive_id).await?;
    let kra = store.kra(archive.kra_id).await?;
    let der = cert
        .der
        .as_deref()
        .ok_or_else(|| Error::conflict(format!("certificate {} is not signed", cert.serial)))?;
    Ok(Statement {
        recovery: r.id,
        nonce: r.nonce.clone(),
        kra: kra.name,
        ca: ca.to_string(),
        serial: cert.serial.clone(),
        certificate_sha256: hex::encode(openssl::sha::sha256(der)),
        reason: r.reason.clone(),
        requested_by: r.requested_by.clone(),
        requested_at: r.created_at,
    })
}

pub async fn run(g: &Global, cmd: KmCmd) -> Result<()> {
    let out = g.output;
    match cmd {
        KmCmd::Kra(KraCmd::Create {
            name,
            ca: ca_name,
            csr,
            quorum,
            cert_out,
        }) => {
            let ca = g.ca().await?;
            if !(2..=16).contains(&quorum) {
                return Err(Error::malformed(
                    "--quorum must be 2 to 16: a key is released by more than one officer",
                ));
            }
            if ca.store().kras().await?.iter().any(|k| k.name == name) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("a KRA named `{name}` exists already"),
                ));
            }
            let issued = ca
                .issue(&gpki_ca::IssueRequest {
                    ca: ca_name.clone(),
                    profile: "key-recovery".into(),
                    subject: None,
                    key: gpki_ca::KeySource::Csr(read_file(&csr, "request")?),
                    sans: vec![],
                    validity_days: None,
                    request_key: None,
                    renewed_from: None,
                })
                .await?;
            let kra = ca
                .store()
                .create_kra(
                    &name,
                    issued.record.id,
                    quorum,
                    &AuditEvent::new(
                        &g.actor(),
                        "km.kra.create",
                        format!("kra:{name}"),
                        json!({ "ca": ca_name, "serial": issued.record.serial, "quorum": quorum }),
                    ),
                )
                .await?;
            if let Some(p) = &cert_out {
                write_file(
                    p,
                    gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
                )?;
            }
            emit(
                out,
                json!({ "kra": kra, "serial": issued.record.serial, "subject": issued.record.subject }),
                || {
                    format!("KRA {name}: certificate {} of CA {ca_name}, {quorum} approvals release a key", issued.record.serial)
                },
            );
        }
        KmCmd::Kra(KraCmd::List) => {
            let store = g.store().await?;
            let kras = store.kras().await?;
            let mut rows = Vec::new();
            for k in &kras {
                let officers = store.officers(k.id).await?;
                let active = officers.iter().filter(|o| o.status == "active").count();
                rows.push(json!({ "kra": k, "officers": active }));
            }
            emit(out, json!({ "kras": rows }), || {
                kras.iter()
                    .zip(&rows)
                    .map(|(k, r)| {
                        format!(
                            "{}\tquorum {}\tofficers {}",
                            k.name, k.quorum, r["officers"]
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KmCmd::Officer(OfficerCmd::Add { kra, name, cert }) => {
            let store = g.store().await?;
            let k = store.kra_by_name(&kra).await?;
            let der = read_cert(&cert)?;
            let (row, authority) = store
                .certificate_in_force(&der, gpki_pki::time::now())
                .await
                .map_err(|e| {
                    Error::policy(format!(
                        "an officer's certificate must be in force: {}",
                        e.detail
                    ))
                })?;
            // An approval is a signature by a person: a key that signs, never one
            // the KRA or the CA holds (an official's km key, the KRA's own), and
            // one officer per person, whatever certificates they hold.
            let person = |subject: &str| {
                gpki_pki::name::parse_rfc4514(subject)
                    .ok()
                    .and_then(|a| gpki_pki::name::official(&a))
                    .map(|o| o.employee_number)
            };
            let number = person(&row.subject);
            if row.profile != "official-sign"
                || number.is_none()
                || !gpki_pki::cert::signs(&gpki_pki::cert::decode(&der)?.tbs_certificate)?
            {
                return Err(Error::policy(format!(
                    "certificate {} (profile {}) is not an official's personal signing certificate: an officer approves with one (official-sign, CN=NAME(NUMBER); never a km, KRA or service key)",
                    row.serial, row.profile
                )));
            }
            // One person, one officer: by employee number (bound to one official).
            for o in store.officers(k.id).await? {
                if o.status == "active"
                    && person(&store.certificate_by_id(o.cert_id).await?.subject) == number
                {
                    return Err(Error::policy(format!(
                        "{} is officer `{}` of KRA {kra} already: one person is one officer",
                        row.subject, o.name
                    )));
                }
            }
            let officer = store
                .add_officer(
                    k.id,
                    &name,
                    row.id,
                    &AuditEvent::new(&g.actor(), "km.officer.add", format!("kra:{kra}"), json!({ "officer": name, "ca": authority.name, "serial": row.serial, "subject": row.subject })),
                )
                .await?;
            emit(out, json!({ "officer": officer }), || {
                format!(
                    "{name} is a recovery officer of KRA {kra} (certificate {} of CA {})",
                    row.serial, authority.name
                )
            });
        }
        KmCmd::Officer(OfficerCmd::Remove { kra, name }) => {
            let store = g.store().await?;
            let k = store.kra_by_name(&kra).await?;
            let officer = store
                .set_officer_status(
                    k.id,
                    &name,
                    "removed",
                    &AuditEvent::new(
                        &g.actor(),
                        "km.officer.remove",
                        format!("kra:{kra}"),
                        json!({ "officer": name }),
                    ),
                )
                .await?;
            emit(out, json!({ "officer": officer }), || {
                format!("{name} is no longer an officer of KRA {kra}")
            });
        }
        KmCmd::Officer(OfficerCmd::List { kra }) => {
            let store = g.store().await?;
            let k = store.kra_by_name(&kra).await?;
            let officers = store.officers(k.id).await?;
            emit(
                out,
                json!({ "kra": kra, "quorum": k.quorum, "officers": officers }),
                || {
                    officers
                        .iter()
                        .map(|o| format!("{}\t{}\tcertificate id {}", o.name, o.status, o.cert_id))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        KmCmd::Issue {
            ca: ca_name,
            serial,
            transport,
            kra,
            cert_out,
            envelope_out,
        } => {
            let ca = g.ca().await?;
            let sign = certificate(ca.store(), &ca_name, &serial).await?;
            let csr =
                gpki_pki::csr::parse_and_verify(&read_file(&transport, "transport request")?)?;
            let km = ca
                .issue_km(&gpki_ca::km::KmOrder {
                    ca: &ca_name,
                    sign: &sign,
                    kra: &kra,
                    transport_spki: csr.spki_der(),
                    request_key: None,
                    renewed_from: None,
                })
                .await?;
            write_file(
                &cert_out,
                gpki_pki::pem::encode("CERTIFICATE", &km.issued.der).as_bytes(),
            )?;
            write_file(&envelope_out, &km.delivery)?;
            emit(
                out,
                json!({ "serial": km.issued.record.serial, "pair": sign.serial, "certificate": cert_out, "envelope": envelope_out }),
                || {
                    format!(
                    "km certificate {} (pair of {}) written to {}; its key, sealed to the transport key, to {}",
                    km.issued.record.serial,
                    sign.serial,
                    cert_out.display(),
                    envelope_out.display()
                )
                },
            );
        }
        KmCmd::Open {
            envelope,
            cert,
            transport_key,
            transport_pass_file,
            out: files,
        } => {
            let pass = files.check()?;
            let cert_der = read_cert(&cert)?;
            let transport = read_key(&transport_key, &transport_pass_file)?;
            let plain = gpki_kmi::envelope::open(
                &read_file(&envelope, "sealed key")?,
                transport.pkey(),
                None,
            )?;
            let key = PKey::private_key_from_pkcs8(&plain)
                .map_err(|_| Error::malformed("the sealed content is not a PKCS#8 private key"))?;
            let written = files.write(&pass, &key, &cert_der, &[], "km")?;
            emit(out, json!({ "written": written }), || {
                format!("wrote {}", written.join(", "))
            });
        }
        KmCmd::Request {
            ca: ca_name,
            serial,
            reason,
            statement_out,
        } => {
            let store = g.store().await?;
            let cert = certificate(&store, &ca_name, &serial).await?;
            let archive = store.archive_of(cert.id).await?.ok_or_else(|| {
                Error::not_found(format!(
                    "certificate {} of CA `{ca_name}` has no archived key (only km certificates made with a CA-side key do)",
                    cert.serial
                ))
            })?;
            if cert.der.is_none() {
                return Err(Error::conflict(format!(
                    "certificate {} is not signed; there is no key to recover",
                    cert.serial
                )));
            }
            let mut nonce = [0u8; 32];
            openssl::rand::rand_bytes(&mut nonce)
                .map_err(|e| Error::internal(format!("random: {e}")))?;
            let r = store
                .request_recovery(
                    archive.id,
                    &reason,
                    &g.actor(),
                    &hex::encode(nonce),
                    &AuditEvent::new(
                        &g.actor(),
                        "km.recover.request",
                        "key-recovery",
                        json!({ "ca": ca_name, "serial": cert.serial, "reason": reason }),
                    ),
                )
                .await?;
            let st = statement(&store, &ca_name, &cert, &r).await?;
            if let Some(p) = &statement_out {
                write_file(
                    p,
                    serde_json::to_string_pretty(&st).expect("JSON").as_bytes(),
                )?;
            }
            let kra = store.kra(archive.kra_id).await?;
            emit(
                out,
                json!({ "recovery": r, "statement": st, "quorum": kra.quorum }),
                || {
                    let mut t = format!(
                        "recovery request {} for km certificate {} opened; {} officers of KRA {} must approve it",
                        r.id, cert.serial, kra.quorum, kra.name
                    );
                    match &statement_out {
                        Some(p) => {
                            t += &format!("\nstatement for the officers written to {}", p.display())
                        }
                        None => {
                            t += &format!(
                            "\nstatement for the officers (gpki km approve --statement FILE):\n{}",
                            serde_json::to_string_pretty(&st).expect("JSON")
                        )
                        }
                    }
                    t
                },
            );
        }
        KmCmd::Approve {
            statement,
            cert,
            key,
            pass_file,
            out: path,
        } => {
            let st: Statement = serde_json::from_slice(&read_file(&statement, "statement")?)
                .map_err(|e| {
                    Error::malformed(format!(
                        "{} is not a recovery statement: {e}",
                        statement.display()
                    ))
                })?;
            let key = read_key(&key, &pass_file)?;
            let a = approval::sign(&st, &key, &read_cert(&cert)?)?;
            if path.exists() {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{} exists; refusing to overwrite it", path.display()),
                ));
            }
            write_file(
                &path,
                serde_json::to_string_pretty(&a).expect("JSON").as_bytes(),
            )?;
            emit(
                out,
                json!({ "approval": path, "recovery": st.recovery }),
                || {
                    format!(
                        "approval of recovery request {} written to {}",
                        st.recovery,
                        path.display()
                    )
                },
            );
        }
        KmCmd::Recover {
            ca: ca_name,
            serial,
            approvals,
            kra_key,
            kra_pass_file,
            out: files,
        } => {
            let pass = files.check()?;
            let store = g.store().await?;
            let actor = g.actor();
            let cert = certificate(&store, &ca_name, &serial).await?;
            let refuse = |e: Error| {
                let store = store.clone();
                let actor = actor.clone();
                let target = format!("cert:{ca_name}/{}", cert.serial);
                async move {
                    let event = AuditEvent::new(
                        &actor,
                        "km.recover.refuse",
                        target,
                        json!({ "kind": e.kind, "detail": e.detail }),
                    );
                    if let Err(a) = store.audit(&event).await {
                        return Error::new(
                            a.kind,
                            format!(
                                "{} (and the refusal could not be audited: {})",
                                e.detail, a.detail
                            ),
                        );
                    }
                    e
                }
            };
            match recover(
                &store,
                &ca_name,
                &cert,
                &approvals,
                &kra_key,
                &kra_pass_file,
                &actor,
            )
            .await
            {
                Err(e) => return Err(refuse(e).await),
                Ok((key, r, officers)) => {
                    let chain = store.authority_chain(cert.issuer_id).await?;
                    let der = cert.der.clone().unwrap_or_default();
                    let written = files.write(&pass, &key, &der, &chain, "km")?;
                    emit(
                        out,
                        json!({ "recovery": r, "officers": officers, "written": written }),
                        || {
                            format!(
                                "recovery request {} released with the approvals of {}; wrote {}",
                                r.id,
                                officers.join(", "),
                                written.join(", ")
                            )
                        },
                    );
                }
            }
        }
        KmCmd::Export {
            pkcs12,
            pass_file,
            pair,
            npki_dir,
            out_pass_file,
        } => {
            let p = keyfile::from_pkcs12(
                &read_file(&pkcs12, "PKCS#12 file")?,
                &Passphrase::from_file(&pass_file)?,
                &pkcs12.display().to_string(),
            )?;
            let (c, k) = keyfile::write_korean(
                &npki_dir,
                pair.into(),
                &p.key,
                &p.cert_der,
                &Passphrase::from_file(&out_pass_file)?,
            )?;
            emit(out, json!({ "written": [c, k] }), || {
                format!("wrote {} and {}", c.display(), k.display())
            });
        }
        KmCmd::Import {
            npki_dir,
            pair,
            pass_file,
            pkcs12,
            out_pass_file,
        } => {
            if pkcs12.exists() {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{} exists; refusing to overwrite it", pkcs12.display()),
                ));
            }
            let p =
                keyfile::read_korean(&npki_dir, pair.into(), &Passphrase::from_file(&pass_file)?)?;
            let p12 = keyfile::to_pkcs12(
                &p.key,
                &p.cert_der,
                &[],
                "key",
                &Passphrase::from_file(&out_pass_file)?,
            )?;
            gpki_pki::signer::write_private_file(&pkcs12, &p12)?;
            emit(out, json!({ "written": [pkcs12] }), || {
                format!("wrote {}", pkcs12.display())
            });
        }
    }
    Ok(())
}

/// Steps 1–5 of a recovery; the key and the released request, or the refusal.
async fn recover(
    store: &Store,
    ca_name: &str,
    cert: &CertificateRecord,
    approvals: &[PathBuf],
    kra_key: &Path,
    kra_pass_file: &Path,
    actor: &str,
) -> Result<(PKey<Private>, RecoveryRecord, Vec<String>)> {
    // 1.
    let archive = store.archive_of(cert.id).await?.ok_or_else(|| {
        Error::not_found(format!(
            "certificate {} of CA `{ca_name}` has no archived key",
            cert.serial
        ))
    })?;
    let r = store.open_recovery(archive.id).await?.ok_or_else(|| {
        Error::conflict(format!(
            "no recovery request is open for km certificate {}; open one with `gpki km request`",
            cert.serial
        ))
    })?;
    let expected = statement(store, ca_name, cert, &r).await?;
    let kra = store.kra(archive.kra_id).await?;
    let officers = store.officers(kra.id).await?;
    // 2.
    let now = gpki_pki::time::now();
    let mut accepted: Vec<(NewApproval, AuditEvent)> = Vec::new();
    let mut names = Vec::new();
    for path in approvals {
        let what = path.display().to_string();
        let text = read_file(path, "approval")?;
        let a: Approval = serde_json::from_slice(&text)
            .map_err(|e| Error::malformed(format!("approval {what} does not parse: {e}")))?;
        if a.statement != expected {
            let why = if a.statement.recovery != r.id {
                format!("it approves recovery request {}, not request {} (an approval counts for the request it names, once)", a.statement.recovery, r.id)
            } else {
                "its statement differs from the request's".to_string()
            };
            return Err(Error::policy(format!("approval {what} is refused: {why}")));
        }
        let checked = a
            .check()
            .map_err(|e| e.context(format!("approval {what}")))?;
        let (row, _) = store
            .certificate_in_force(&checked.certificate_der, now)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unauthorized,
                    format!("approval {what} is refused: {}", e.detail),
                )
            })?;
        let officer = officers
            .iter()
            .find(|o| o.cert_id == row.id && o.status == "active")
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Unauthorized,
                    format!("approval {what} is refused: certificate {} ({}) is not an active officer's of KRA {}", row.serial, row.subject, kra.name),
                )
            })?;
        if names.contains(&officer.name) {
            return Err(Error::policy(format!(
                "officer {} approved twice; {} different officers must approve",
                officer.name, kra.quorum
            )));
        }
        names.push(officer.name.clone());
        accepted.push((
            NewApproval {
                officer_id: officer.id,
                approval_sha256: checked.approval_sha256.clone(),
                approval: String::from_utf8_lossy(&text).into_owned(),
            },
            AuditEvent::new(
                &format!("officer:{}", officer.name),
                "km.recover.approve",
                format!("key-recovery:{}", r.id),
                json!({ "kra": kra.name, "certificate": row.serial, "approval_sha256": checked.approval_sha256 }),
            ),
        ));
    }
    // 3.
    if (accepted.len() as i64) < kra.quorum {
        return Err(Error::policy(format!(
            "{} approvals of KRA {}'s officers are needed to release a key; {} given",
            kra.quorum,
            kra.name,
            accepted.len()
        )));
    }
    // 4.
    let kra_cert = store.certificate_by_id(kra.cert_id).await?;
    let kra_der = kra_cert
        .der
        .ok_or_else(|| Error::internal("the KRA's certificate is not signed"))?;
    let key = read_key(kra_key, kra_pass_file)?;
    if key.public_key_der()
        != der::Encode::to_der(
            &gpki_pki::cert::decode(&kra_der)?
                .tbs_certificate
                .subject_public_key_info,
        )?
    {
        return Err(Error::policy(format!(
            "{} is not KRA {}'s key",
            kra_key.display(),
            kra.name
        )));
    }
    let plain = gpki_kmi::envelope::open(&archive.envelope, key.pkey(), Some(&kra_der))?;
    let km = PKey::private_key_from_pkcs8(&plain)
        .map_err(|_| Error::internal("the archived key is not a PKCS#8 private key"))?;
    let cert_key = openssl::x509::X509::from_der(cert.der.as_deref().unwrap_or_default())
        .and_then(|c| c.public_key())
        .map_err(|_| Error::internal("the km certificate does not parse"))?;
    if !cert_key.public_eq(&km) {
        return Err(Error::internal(format!(
            "the archived key is not certificate {}'s; nothing is released",
            cert.serial
        )));
    }
    // 5.
    let released = store
        .release_recovery(
            r.id,
            &accepted,
            actor,
            &AuditEvent::new(
                actor,
                "km.recover.release",
                format!("key-recovery:{}", r.id),
                json!({ "ca": ca_name, "serial": cert.serial, "kra": kra.name, "officers": names }),
            ),
        )
        .await?;
    Ok((km, released, names))
}
