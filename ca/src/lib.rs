//! The gpki certification authority: CA hierarchy, issuance, renewal, revocation and
//! CRLs.
//!
//! **Architecture invariant:** this is the only crate that opens CA private keys.
//! Every certificate it signs was planned, linted and recorded in the store first
//! (docs/ARCHITECTURE.md, "Issuance"):
//!
//! 1. resolve the CA and the profile;
//! 2. verify the request (CSR proof of possession) and apply the profile;
//! 3. draw a serial from the CSPRNG and plan the tbsCertificate;
//! 4. lint the tbsCertificate; any finding refuses issuance;
//! 5. record the serial and tbsCertificate in the store as `pending`;
//! 6. sign the tbsCertificate;
//! 7. store the certificate, mark it issued and append the audit record.
#![forbid(unsafe_code)]

pub mod anchor;
pub mod batch;
pub mod credential;
mod delegated;
pub mod km;

pub use delegated::DelegatedSigner;
pub use gpki_store::standing::{self, standing, Standing};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS;
use der::{Decode, Encode};
use gpki_pki::cert::{self, CaUrls, IssuerContext, Linted, SanEntry, SubjectRequest};
use gpki_pki::crl::{CrlHeader, CrlScope, RevocationReason};
use gpki_pki::profile::{Profile, ProfileKind, Profiles};
use gpki_pki::serial::SerialNumber;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, KeyType, Result, SignatureAlgorithm, Signer, SoftwareKey};
use gpki_store::{
    AuditEvent, AuthorityRecord, CertificateRecord, CrlRecord, NewAuthority, NewCertificate,
    NewCrl, Store,
};
use serde_json::json;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, NameConstraints};

/// The one end-entity profile a root CA signs: its delegated OCSP responder.
pub const ROOT_END_ENTITY_PROFILE: &str = "ocsp-signer";

/// A certificate as issued: its store row and DER.
#[derive(Debug, Clone)]
pub struct Issued {
    pub record: CertificateRecord,
    pub der: Vec<u8>,
}

/// How a new CA is made.
#[derive(Debug, Clone)]
pub struct NewCa {
    pub name: String,
    pub subject: String,
    pub key_type: KeyType,
    pub signature_algorithm: Option<SignatureAlgorithm>,
    pub validity_days: Option<u32>,
    pub path_len: Option<u8>,
    pub name_constraints: Option<NameConstraints>,
    /// Base of the CA's CRL, OCSP and caIssuers URLs.
    pub url_base: String,
    /// A subordinate CA kept offline, as a root always is: the online CA service
    /// never acts for it.
    pub offline: bool,
}

/// Where the key of a new certificate comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A PKCS#10 request (PEM or DER); its signature is verified.
    Csr(Vec<u8>),
    /// A PKCS#10 request the caller has already verified (the CA service checks
    /// the request before it plans): not verified a second time.
    Verified(gpki_pki::csr::VerifiedCsr),
    /// A DER SubjectPublicKeyInfo whose private key the caller holds (a generated
    /// key, or the same key on renewal).
    PublicKey(Vec<u8>),
}

/// A request to issue one certificate.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub ca: String,
    pub profile: String,
    /// RFC 4514 subject; with a CSR, overrides the CSR's subject when given.
    pub subject: Option<String>,
    pub key: KeySource,
    /// Added to the SANs a CSR asks for.
    pub sans: Vec<SanEntry>,
    pub validity_days: Option<u32>,
    pub request_key: Option<String>,
    pub renewed_from: Option<i64>,
}

/// A CA key, decrypted on first use.
type KeyCell = Arc<tokio::sync::OnceCell<Arc<SoftwareKey>>>;

/// Where a set of CA keys is kept (`DIR/NAME.key.pem`) and the passphrase that
/// opens them. The configuration, never the store, says where a key is.
#[derive(Clone)]
struct Custody {
    key_dir: PathBuf,
    passphrase: Arc<Passphrase>,
}

/// The CA: the store, the profiles and the custody of the keys. Cheap to clone;
/// clones share the key cache.
///
/// A CA is online (its key in the online CA service) or offline (a root always,
/// and any CA made `--offline`): an offline CA's key is opened only through the
/// offline custody, which the online service does not have ([`Ca::online_only`]),
/// so it refuses every operation of an offline CA before it opens anything.
#[derive(Clone)]
pub struct Ca {
    store: Store,
    profiles: Arc<Profiles>,
    /// The online CAs' keys, also the audit key's directory and passphrase:
    /// `None` for a `Ca` that holds no key ([`Ca::without_keys`]).
    online: Option<Custody>,
    /// The offline CAs' keys: `None` in the online CA service.
    offline: Option<Custody>,
    actor: String,
    /// One cell per CA, so concurrent first calls decrypt its key once and a
    /// key being decrypted holds up no other CA's signing.
    keys: Arc<Mutex<HashMap<String, KeyCell>>>,
}

/// An issuing CA, ready to sign.
#[derive(Clone)]
pub struct Issuer {
    pub record: AuthorityRecord,
    pub context: IssuerContext,
    pub key: Arc<SoftwareKey>,
}

impl Ca {
    pub fn new(
        store: Store,
        profiles: Profiles,
        key_dir: PathBuf,
        passphrase: Passphrase,
        actor: String,
    ) -> Ca {
        let custody = Custody {
            key_dir,
            passphrase: Arc::new(passphrase),
        };
        Ca {
            store,
            profiles: Arc::new(profiles),
            offline: Some(custody.clone()),
            online: Some(custody),
            actor,
            keys: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A CA that holds no key, for what changes or reads only the store
    /// (revocation, hold release, reading certificates back): anything that
    /// would open a key or sign is refused, naming why.
    pub fn without_keys(store: Store, profiles: Profiles, actor: String) -> Ca {
        Ca {
            store,
            profiles: Arc::new(profiles),
            online: None,
            offline: None,
            actor,
            keys: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// This CA with the offline CAs' keys kept apart: in `key_dir`, under
    /// `passphrase` (the root's own directory and passphrase).
    pub fn with_offline_custody(self, key_dir: PathBuf, passphrase: Passphrase) -> Ca {
        Ca {
            offline: Some(Custody {
                key_dir,
                passphrase: Arc::new(passphrase),
            }),
            ..self
        }
    }

    /// This CA without any offline CA's key: what the online CA service is. Every
    /// operation that would sign for an offline CA is refused before a key is
    /// opened, whichever route asks.
    pub fn online_only(self) -> Ca {
        Ca {
            offline: None,
            ..self
        }
    }

    /// Whether this CA may sign for `record`: an offline CA only where its
    /// custody is held.
    pub fn require_custody(&self, record: &AuthorityRecord) -> Result<()> {
        if record.offline && self.offline.is_none() {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "CA `{}` is offline: the online CA service does not act for it (its operations run offline, with `gpki` on the machine that holds its key)",
                    record.name
                ),
            ));
        }
        Ok(())
    }

    fn custody(&self, offline: bool) -> Result<Custody> {
        if offline {
            self.offline.clone().ok_or_else(|| {
                Error::new(ErrorKind::Unauthorized, "no offline CA key is held here")
            })
        } else {
            self.online.clone().ok_or_else(|| {
                Error::new(
                    ErrorKind::Unauthorized,
                    "this command holds no CA key: it changes or reads the store only",
                )
            })
        }
    }

    /// Where the audit key is kept and its passphrase: the online CAs' custody.
    pub(crate) fn audit_custody(&self) -> Result<(PathBuf, Arc<Passphrase>)> {
        let c = self.custody(false)?;
        Ok((c.key_dir, c.passphrase))
    }

    /// This CA, with `actor` named in the audit records of what it does (the CA
    /// service acts for a different RA on each request).
    pub fn acting_as(&self, actor: impl Into<String>) -> Ca {
        Ca {
            actor: actor.into(),
            ..self.clone()
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    fn event(
        &self,
        action: &str,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::new(&self.actor, action, target, detail)
    }

    async fn load_key(&self, record: &AuthorityRecord) -> Result<Arc<SoftwareKey>> {
        self.require_custody(record)?;
        let custody = self.custody(record.offline)?;
        let cell = self
            .keys
            .lock()
            .expect("key cache")
            .entry(record.name.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            // The name from the store goes into a path: only a CA name's characters,
            // so no row can point this process at a file outside its custody.
            validate_ca_name(&record.name)?;
            let alg: SignatureAlgorithm = record.signature_algorithm.parse()?;
            let (path, pass) = (
                custody.key_dir.join(format!("{}.key.pem", record.name)),
                custody.passphrase.clone(),
            );
            if !path.exists() && record.offline && Path::new(&record.key_path).exists() {
                // A store from before offline CAs (migration 0011): the root's key
                // is still beside the online CAs'. Moved by hand, not silently read.
                return Err(Error::not_found(format!(
                    "CA `{}` is offline and its key belongs in {}: move it there from {} \
                     (out of the online CA service's key directory), and give its passphrase \
                     with --offline-key-pass-file",
                    record.name,
                    path.display(),
                    record.key_path
                )));
            }
            // 600,000 PBKDF2 rounds: off the async workers.
            let key = tokio::task::spawn_blocking(move || {
                SoftwareKey::read_encrypted(Path::new(&path), &pass)
            })
            .await
            .map_err(|e| Error::internal(format!("reading a CA key: {e}")))??
            .with_algorithm(alg)?;
            Ok::<_, Error>(Arc::new(key))
        })
        .await
        .cloned()
    }

    /// Everything needed to sign certificates under CA `name`: its record, issuer
    /// context (including the name constraints of every CA above it) and key.
    /// Refused unless the CA's certificate and every one above it is in force.
    pub async fn issuer(&self, name: &str) -> Result<Issuer> {
        let record = self.store.authority_by_name(name).await?;
        self.require_custody(&record)?;
        gpki_store::standing::current(&self.store, &record)
            .await?
            .require_active(name)?;
        self.issuer_of(record).await
    }

    /// [`Ca::issuer`] without the standing check: for CRLs, which a revoked or
    /// expired CA still signs (RFC 5280 relying parties need its last CRLs).
    async fn issuer_of(&self, record: AuthorityRecord) -> Result<Issuer> {
        self.require_custody(&record)?;
        let name = record.name.clone();
        if record.status != "active" {
            return Err(Error::conflict(format!(
                "CA `{name}` has no certificate yet (status {})",
                record.status
            )));
        }
        let cert = decode_cert(record.cert_der.as_deref())?;
        let tbs = &cert.tbs_certificate;
        let mut name_constraints = Vec::new();
        let mut walk = Some(record.clone());
        while let Some(r) = walk {
            let c = decode_cert(r.cert_der.as_deref())?;
            if let Some(nc) = gpki_pki::lint::name_constraints_of(&c.tbs_certificate)? {
                name_constraints.push(nc);
            }
            walk = match r.parent_id {
                Some(p) if p != r.id => Some(self.store.authority(p).await?),
                _ => None,
            };
        }
        let path_len = cert::find_extension::<BasicConstraints>(tbs, ID_CE_BASIC_CONSTRAINTS)?
            .and_then(|(_, bc)| bc.path_len_constraint);
        let context = IssuerContext {
            name: tbs.subject.clone(),
            key_id: cert::subject_key_id(tbs)?,
            spki_der: tbs.subject_public_key_info.to_der()?,
            not_before: gpki_pki::time::unix_seconds(&tbs.validity.not_before),
            not_after: gpki_pki::time::unix_seconds(&tbs.validity.not_after),
            signature_algorithm: record.signature_algorithm.parse()?,
            urls: urls_of(&record),
            name_constraints,
            path_len,
        };
        let key = self.load_key(&record).await?;
        if key.public_key_der() != context.spki_der {
            return Err(Error::internal(format!(
                "key file of CA `{name}` does not match its certificate"
            )));
        }
        Ok(Issuer {
            record,
            context,
            key,
        })
    }

    /// Steps 2–4: verifies the request, applies the profile, plans and lints.
    pub fn prepare(
        &self,
        issuer: &Issuer,
        profile: &Profile,
        req: &IssueRequest,
        now: i64,
    ) -> Result<Linted> {
        self.prepare_with_serial(issuer, profile, req, SerialNumber::random()?, now)
    }

    /// [`Ca::prepare`] with a given serial: a resumed batch row is planned again
    /// with its recorded serial and time, and must come out as the bytes recorded.
    pub fn prepare_with_serial(
        &self,
        issuer: &Issuer,
        profile: &Profile,
        req: &IssueRequest,
        serial: SerialNumber,
        now: i64,
    ) -> Result<Linted> {
        // With a CSR, the request's subject (when given) overrides the CSR's.
        let from_csr = |csr: &gpki_pki::csr::VerifiedCsr| -> Result<_> {
            let subject = match &req.subject {
                Some(s) => gpki_pki::name::parse(s)?,
                None => csr.subject().clone(),
            };
            Ok((
                subject,
                csr.spki_der().to_vec(),
                csr.requested_sans().to_vec(),
            ))
        };
        let (subject, spki_der, mut sans) = match &req.key {
            KeySource::Csr(bytes) => from_csr(&gpki_pki::csr::parse_and_verify(bytes)?)?,
            KeySource::Verified(csr) => from_csr(csr)?,
            KeySource::PublicKey(spki) => {
                let subject = req.subject.as_deref().ok_or_else(|| {
                    Error::malformed("a subject is required when no CSR is given")
                })?;
                (gpki_pki::name::parse(subject)?, spki.clone(), Vec::new())
            }
        };
        for s in &req.sans {
            if !sans.contains(s) {
                sans.push(s.clone());
            }
        }
        if profile.spec.kind != ProfileKind::EndEntity {
            return Err(Error::policy(format!(
                "profile {} is for CA certificates; use `gpki ca create` or `gpki ca cross-certify`",
                profile.name()
            )));
        }
        if issuer.record.parent_id.is_none() && profile.name() != ROOT_END_ENTITY_PROFILE {
            return Err(Error::policy(format!(
                "CA `{}` is a root: it signs only CA certificates (`gpki ca create`, `gpki ca \
                 cross-certify`) and its delegated OCSP responder's (profile {ROOT_END_ENTITY_PROFILE}); \
                 issue profile {} from a subordinate CA",
                issuer.record.name,
                profile.name()
            )));
        }
        let request = SubjectRequest {
            subject,
            spki_der,
            sans,
            validity_days: req.validity_days,
            path_len: None,
            name_constraints: None,
            check_template: true,
        };
        cert::prepare(profile, &issuer.context, &request, serial, now)
    }

    fn new_certificate(
        issuer_id: i64,
        profile: &str,
        linted: &Linted,
        renewed_from: Option<i64>,
        request_key: Option<String>,
    ) -> Result<NewCertificate> {
        Ok(NewCertificate {
            issuer_id,
            serial: linted.serial().to_hex(),
            subject: gpki_pki::name::to_string(&linted.tbs().subject),
            profile: profile.to_string(),
            not_before: linted.not_before(),
            not_after: linted.not_after(),
            spki_sha256: hex::encode(openssl::sha::sha256(
                &linted.tbs().subject_public_key_info.to_der()?,
            )),
            tbs: linted.tbs_der().to_vec(),
            renewed_from,
            request_key,
        })
    }

    /// Steps 5–7 for one planned certificate.
    async fn record_sign_store(
        &self,
        issuer: &Issuer,
        profile: &str,
        plan: &Linted,
        renewed_from: Option<i64>,
        request_key: Option<String>,
    ) -> Result<Issued> {
        self.record_archive_sign_store(issuer, profile, plan, renewed_from, request_key, None)
            .await
    }

    /// Steps 5–7, with a km key archived between 5 and 6: no km certificate is
    /// signed whose key the archive does not hold.
    async fn record_archive_sign_store(
        &self,
        issuer: &Issuer,
        profile: &str,
        plan: &Linted,
        renewed_from: Option<i64>,
        request_key: Option<String>,
        archive: Option<(gpki_store::NewArchive, AuditEvent)>,
    ) -> Result<Issued> {
        let new =
            Self::new_certificate(issuer.record.id, profile, plan, renewed_from, request_key)?;
        let id = self.store.record_tbs(&new).await?;
        if let Some((mut a, event)) = archive {
            a.cert_id = id;
            self.store.archive_key(&a, &event).await?;
        }
        gpki_store::failpoint::crash("after-record");
        let der = cert::sign(&*issuer.key, plan)?;
        let event = self.event(
            "cert.issue",
            format!("cert:{}/{}", issuer.record.name, new.serial),
            json!({ "profile": profile, "subject": new.subject, "not_after": new.not_after, "renewed_from": renewed_from }),
        );
        let record = self.store.mark_issued(id, &der, &event).await?;
        Ok(Issued { record, der })
    }

    /// Issues one end-entity certificate (steps 1–7).
    pub async fn issue(&self, req: &IssueRequest) -> Result<Issued> {
        let profile = self.profiles.get(&req.profile)?.clone();
        let issuer = self.issuer(&req.ca).await?;
        let plan = self.prepare(&issuer, &profile, req, gpki_pki::time::now())?;
        self.record_sign_store(
            &issuer,
            profile.name(),
            &plan,
            req.renewed_from,
            req.request_key.clone(),
        )
        .await
    }

    /// Renews a certificate: same subject, SANs and profile, new serial and validity,
    /// linked to the old one. With `new_key`, the new certificate gets that key.
    pub async fn renew(
        &self,
        ca: &str,
        serial: &str,
        new_key: Option<KeySource>,
        revoke_old: bool,
        request_key: Option<String>,
    ) -> Result<Issued> {
        let serial = serial.parse::<SerialNumber>()?.to_hex();
        let authority = self.store.authority_by_name(ca).await?;
        let old = self
            .store
            .certificate(authority.id, &serial)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no certificate with serial {serial} from CA `{ca}`"
                ))
            })?;
        if old.status != gpki_store::CertStatus::Issued {
            return Err(Error::conflict(format!(
                "certificate {serial} is {}; only issued certificates are renewed",
                old.status
            )));
        }
        // An expired certificate vouches for nothing any more: binding its name to
        // a key again is a new issuance, with what a new one needs (every route:
        // the CLI, the CA service, the RA).
        if old.not_after <= gpki_pki::time::now() {
            return Err(Error::conflict(format!(
                "certificate {serial} expired at {}; an expired certificate is not renewed: issue a new one",
                gpki_pki::time::rfc3339(old.not_after)
            )));
        }
        let tbs = x509_cert::certificate::TbsCertificate::from_der(&old.tbs)?;
        let sans = cert::san_entries(&tbs)?;
        // A renewal keeps the old identity: a new CSR proves possession of its key and
        // contributes nothing else (not its subject, not its requested SANs).
        let key = match new_key {
            Some(KeySource::Csr(bytes)) => {
                KeySource::PublicKey(gpki_pki::csr::parse_and_verify(&bytes)?.spki_der().to_vec())
            }
            Some(KeySource::Verified(csr)) => KeySource::PublicKey(csr.spki_der().to_vec()),
            Some(other) => other,
            None => KeySource::PublicKey(tbs.subject_public_key_info.to_der()?),
        };
        let req = IssueRequest {
            ca: ca.to_string(),
            profile: old.profile.clone(),
            subject: Some(gpki_pki::name::to_string(&tbs.subject)),
            key,
            sans,
            validity_days: None,
            request_key,
            renewed_from: Some(old.id),
        };
        let issued = self.issue(&req).await?;
        if revoke_old {
            self.revoke(ca, &serial, RevocationReason::Superseded, None)
                .await?;
        }
        Ok(issued)
    }

    /// Creates the self-signed root CA.
    pub async fn init_root(&self, new: &NewCa) -> Result<Issued> {
        self.create_ca(new, None).await
    }

    /// Creates a subordinate CA signed by `parent`.
    pub async fn create_subordinate(&self, new: &NewCa, parent: &str) -> Result<Issued> {
        let parent = self.issuer(parent).await?;
        self.create_ca(new, Some(parent)).await
    }

    async fn create_ca(&self, new: &NewCa, parent: Option<Issuer>) -> Result<Issued> {
        validate_ca_name(&new.name)?;
        if self.store.find_authority(&new.name).await?.is_some() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a CA named `{}` exists already", new.name),
            ));
        }
        let profile_name = if parent.is_some() {
            "sub-ca"
        } else {
            "root-ca"
        };
        let profile = self.profiles.get(profile_name)?.clone();
        profile.allows_key(new.key_type)?;
        let subject = gpki_pki::name::parse(&new.subject)?;
        profile.check_subject(&subject)?;
        let alg = new
            .signature_algorithm
            .unwrap_or(new.key_type.default_signature_algorithm());
        if !alg.fits(new.key_type) {
            return Err(Error::policy(format!(
                "signature algorithm {alg} does not fit a {} key",
                new.key_type
            )));
        }
        if let Some(p) = &parent {
            if p.context.path_len == Some(0) {
                return Err(Error::policy(format!(
                    "CA `{}` has pathLenConstraint 0 and cannot sign CAs",
                    p.record.name
                )));
            }
        }
        // A root is always offline; a subordinate is when asked.
        let offline = parent.is_none() || new.offline;
        let (key, key_path) = self.write_new_key(&new.name, offline, new.key_type, alg)?;
        let base = new.url_base.trim_end_matches('/');
        let record = self
            .store
            .create_authority(
                &NewAuthority {
                    name: new.name.clone(),
                    parent_id: parent.as_ref().map(|p| p.record.id),
                    subject: gpki_pki::name::to_string(&subject),
                    key_type: new.key_type.to_string(),
                    signature_algorithm: alg.to_string(),
                    key_path: key_path.display().to_string(),
                    offline,
                    crl_url: Some(format!("{base}/crl/{}.crl", new.name)),
                    ocsp_url: Some(format!("{base}/ocsp")),
                    ca_issuers_url: Some(format!("{base}/ca/{}.crt", new.name)),
                },
                &self.event(
                    "ca.create",
                    format!("ca:{}", new.name),
                    json!({ "subject": new.subject, "key_type": new.key_type.as_str(), "parent": parent.as_ref().map(|p| p.record.name.clone()), "offline": offline }),
                ),
            )
            .await?;
        let now = gpki_pki::time::now();
        let validity = new.validity_days.unwrap_or(profile.spec.validity_days);
        let (issuer_ctx, issuer_key, issuer_id): (IssuerContext, Arc<SoftwareKey>, i64) =
            match &parent {
                Some(p) => (p.context.clone(), p.key.clone(), p.record.id),
                None => {
                    let spki = gpki_pki::signer::spki_from_der(key.public_key_der())?;
                    (
                        IssuerContext {
                            name: subject.clone(),
                            key_id: cert::key_identifier(&spki),
                            spki_der: key.public_key_der().to_vec(),
                            not_before: now,
                            not_after: now + i64::from(validity) * 86_400 - 1,
                            signature_algorithm: alg,
                            urls: CaUrls::default(),
                            name_constraints: Vec::new(),
                            path_len: None,
                        },
                        // Read back from its file: the root signs with what was written.
                        Arc::new(
                            SoftwareKey::read_encrypted(
                                &key_path,
                                &self.custody(offline)?.passphrase,
                            )?
                            .with_algorithm(alg)?,
                        ),
                        record.id,
                    )
                }
            };
        let request = SubjectRequest {
            subject,
            spki_der: key.public_key_der().to_vec(),
            sans: Vec::new(),
            validity_days: Some(validity),
            path_len: new.path_len,
            name_constraints: new.name_constraints.clone(),
            check_template: true,
        };
        let plan = cert::prepare(
            &profile,
            &issuer_ctx,
            &request,
            SerialNumber::random()?,
            now,
        )?;
        let signer = Issuer {
            record: self.store.authority(issuer_id).await?,
            context: issuer_ctx,
            key: issuer_key,
        };
        let issued = self
            .record_sign_store(&signer, profile.name(), &plan, None, None)
            .await?;
        self.activate(record.id, &new.name, &plan, &issued).await?;
        Ok(issued)
    }

    /// A new CA's key, made and written (encrypted, mode 0600) where the custody
    /// of its kind keeps keys: the offline directory for a root or an offline CA.
    fn write_new_key(
        &self,
        name: &str,
        offline: bool,
        key_type: KeyType,
        alg: SignatureAlgorithm,
    ) -> Result<(SoftwareKey, PathBuf)> {
        let custody = self.custody(offline)?;
        std::fs::create_dir_all(&custody.key_dir).map_err(|e| {
            Error::internal(format!(
                "cannot create key directory {}: {e}",
                custody.key_dir.display()
            ))
        })?;
        let key_path = custody.key_dir.join(format!("{name}.key.pem"));
        let key = SoftwareKey::generate(key_type)?.with_algorithm(alg)?;
        key.write_encrypted(&key_path, &custody.passphrase)?;
        Ok((key, key_path))
    }

    /// Attaches a new CA's signed certificate to its pending record.
    async fn activate(&self, id: i64, name: &str, plan: &Linted, issued: &Issued) -> Result<()> {
        let spki = &plan.tbs().subject_public_key_info;
        self.store
            .activate_authority(
                id,
                &cert::key_identifier(spki),
                &openssl::sha::sha1(spki.subject_public_key.raw_bytes()),
                &openssl::sha::sha1(&plan.tbs().subject.to_der()?),
                &issued.der,
                &self.event(
                    "ca.activate",
                    format!("ca:{name}"),
                    json!({ "serial": plan.serial().to_hex() }),
                ),
            )
            .await
    }

    /// Cross-certifies another PKI's CA: `issuer` signs that CA's subject and key.
    pub async fn cross_certify(
        &self,
        issuer: &str,
        foreign_cert: &[u8],
        path_len: Option<u8>,
        name_constraints: Option<NameConstraints>,
        validity_days: Option<u32>,
    ) -> Result<Issued> {
        let foreign =
            cert::decode(foreign_cert).map_err(|e| e.context("certificate to cross-certify"))?;
        let ftbs = &foreign.tbs_certificate;
        let bc = cert::find_extension::<BasicConstraints>(ftbs, ID_CE_BASIC_CONSTRAINTS)?;
        if !bc.is_some_and(|(_, b)| b.ca) {
            return Err(Error::policy(
                "only CA certificates are cross-certified (basicConstraints cA is not set)",
            ));
        }
        // The foreign certificate must at least be self-consistent when self-signed.
        let spki_der = ftbs.subject_public_key_info.to_der()?;
        if ftbs.subject == ftbs.issuer {
            let ossl = openssl::x509::X509::from_der(&foreign.to_der()?).map_err(|_| {
                Error::malformed("certificate to cross-certify: OpenSSL cannot read it")
            })?;
            let key = ossl
                .public_key()
                .map_err(|_| Error::malformed("certificate to cross-certify: unreadable key"))?;
            if !ossl.verify(&key).unwrap_or(false) {
                return Err(Error::new(
                    ErrorKind::BadSignature,
                    "certificate to cross-certify is self-signed but its signature does not verify",
                ));
            }
        }
        let profile = self.profiles.get("sub-ca")?.clone();
        let signer = self.issuer(issuer).await?;
        let request = SubjectRequest {
            subject: ftbs.subject.clone(),
            spki_der,
            sans: Vec::new(),
            validity_days,
            path_len,
            name_constraints,
            check_template: false,
        };
        let plan = cert::prepare(
            &profile,
            &signer.context,
            &request,
            SerialNumber::random()?,
            gpki_pki::time::now(),
        )?;
        self.record_sign_store(&signer, profile.name(), &plan, None, None)
            .await
    }

    /// Revokes a certificate of CA `ca`. `certificateHold` puts it on hold.
    pub async fn revoke(
        &self,
        ca: &str,
        serial: &str,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
    ) -> Result<CertificateRecord> {
        if reason == RevocationReason::RemoveFromCrl {
            return Err(Error::malformed(
                "removeFromCRL is not a revocation reason; use `gpki cert release` to lift a hold",
            ));
        }
        let serial = serial.parse::<SerialNumber>()?.to_hex();
        let authority = self.store.authority_by_name(ca).await?;
        let now = gpki_pki::time::now();
        if invalidity_date.is_some_and(|d| d > now) {
            return Err(Error::malformed("invalidity date is in the future"));
        }
        let event = self.event(
            "cert.revoke",
            format!("cert:{ca}/{serial}"),
            json!({ "reason": reason.as_str(), "invalidity_date": invalidity_date }),
        );
        self.store
            .revoke(
                authority.id,
                &serial,
                reason.code(),
                now,
                invalidity_date,
                &event,
            )
            .await
    }

    /// Lifts a certificateHold.
    pub async fn release_hold(&self, ca: &str, serial: &str) -> Result<CertificateRecord> {
        let serial = serial.parse::<SerialNumber>()?.to_hex();
        let authority = self.store.authority_by_name(ca).await?;
        let event = self.event("cert.release", format!("cert:{ca}/{serial}"), json!({}));
        self.store.release_hold(authority.id, &serial, &event).await
    }

    /// Generates and stores a full CRL, or with `delta` a delta CRL against the
    /// newest full one.
    pub async fn generate_crl(
        &self,
        ca: &str,
        delta: bool,
        next_update_hours: u32,
    ) -> Result<CrlRecord> {
        if next_update_hours == 0 {
            return Err(Error::malformed(
                "next update must be at least one hour away",
            ));
        }
        let record = self.store.authority_by_name(ca).await?;
        let standing = standing(&self.store, &record, gpki_pki::time::now()).await?;
        if standing != Standing::Active {
            tracing::warn!(ca, standing = %standing.describe(ca), "signing a CRL for a CA that signs nothing else");
        }
        let issuer = self.issuer_of(record).await?;
        let id = issuer.record.id;
        let alloc = self.store.allocate_crl(id).await?;
        let (entries, delta_base) = if delta {
            let base = alloc.previous_full.as_ref().ok_or_else(|| {
                Error::conflict(format!(
                    "CA `{ca}` has no full CRL yet to base a delta CRL on"
                ))
            })?;
            (
                self.store
                    .delta_entries(id, base.revocation_seq, alloc.watermark)
                    .await?,
                Some(base.crl_number),
            )
        } else {
            (
                self.store
                    .crl_entries(id, alloc.watermark, alloc.previous_full.as_ref())
                    .await?,
                None,
            )
        };
        let now = gpki_pki::time::now();
        // Once a CA issues delta CRLs, its full CRLs say where they are.
        let issues_deltas = delta || self.store.crl_numbers(id).await?.1.is_some();
        let header = CrlHeader {
            issuer: issuer.context.name.clone(),
            issuer_key_id: issuer.context.key_id.clone(),
            algorithm: issuer.key.algorithm(),
            this_update: now,
            next_update: now + i64::from(next_update_hours) * 3600,
            crl_number: alloc.crl_number as u64,
            delta_base: delta_base.map(|b| b as u64),
            distribution_point: issuer.record.crl_url.clone(),
            scope: if issuer.context.path_len == Some(0) {
                CrlScope::UserCerts
            } else {
                CrlScope::All
            },
            freshest: issuer
                .record
                .crl_url
                .as_deref()
                .filter(|_| issues_deltas)
                .map(gpki_pki::crl::delta_url),
        };
        let tbs = gpki_pki::crl::build_tbs(&header, &entries.der, entries.count as usize)?;
        let der = gpki_pki::crl::sign(&*issuer.key, &tbs)?;
        let event = self.event(
            if delta { "crl.generate-delta" } else { "crl.generate" },
            format!("crl:{ca}/{}", alloc.crl_number),
            json!({ "entries": entries.count, "delta_base": delta_base, "next_update": header.next_update,
                    "ca_standing": standing.label(), "ca_standing_cause": standing.cause() }),
        );
        self.store
            .record_crl(
                &NewCrl {
                    issuer_id: id,
                    crl_number: alloc.crl_number,
                    delta_base,
                    watermark: alloc.watermark,
                    this_update: header.this_update,
                    next_update: header.next_update,
                    entries: entries.count,
                    der,
                },
                &event,
            )
            .await
    }

    /// The chain of CA certificates from `ca` up to its root, `ca` first.
    pub async fn chain(&self, ca: &str) -> Result<Vec<Vec<u8>>> {
        let id = self.store.authority_by_name(ca).await?.id;
        self.store.authority_chain(id).await
    }
}

fn urls_of(r: &AuthorityRecord) -> CaUrls {
    CaUrls {
        crl: r.crl_url.clone(),
        ocsp: r.ocsp_url.clone(),
        ca_issuers: r.ca_issuers_url.clone(),
    }
}

fn decode_cert(der: Option<&[u8]>) -> Result<Certificate> {
    let der = der.ok_or_else(|| Error::conflict("CA has no certificate"))?;
    Certificate::from_der(der)
        .map_err(|e| Error::internal(format!("stored CA certificate does not decode: {e}")))
}

/// CA names become file names and URL path segments.
fn validate_ca_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::malformed(format!(
            "CA name `{name}` must be 1–64 characters of a-z, 0-9, - and _"
        )))
    }
}
