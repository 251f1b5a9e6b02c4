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
mod create;
pub mod credential;
mod delegated;
pub mod km;
mod revocation;

pub use delegated::DelegatedSigner;
pub use gpki_store::standing::{self, standing, Standing};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS;
use der::{Decode, Encode};
use gpki_pki::cert::{self, CaUrls, IssuerContext, Linted, SanEntry, SubjectRequest};
use gpki_pki::crl::RevocationReason;
use gpki_pki::profile::{Profile, ProfileKind, Profiles};
use gpki_pki::serial::SerialNumber;
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, ErrorKind, KeyType, Result, SignatureAlgorithm, Signer, SoftwareKey};
use gpki_store::{
    AuditEvent, AuthorityRecord, CertificateRecord, IssuanceLog, NewCertificate, Store,
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
pub(crate) struct Custody {
    pub(crate) key_dir: PathBuf,
    pub(crate) passphrase: Arc<Passphrase>,
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
    store: IssuanceLog,
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
            store: IssuanceLog::new(store),
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
            store: IssuanceLog::new(store),
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

    pub(crate) fn custody(&self, offline: bool) -> Result<Custody> {
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

    pub fn store(&self) -> &IssuanceLog {
        &self.store
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    pub(crate) fn event(
        &self,
        action: &str,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::new(&self.actor, action, target, detail)
    }

    pub(crate) async fn load_key(&self, record: &AuthorityRecord) -> Result<Arc<SoftwareKey>> {
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
        self.store
            .current_standing(&record)
            .await?
            .require_active(name)?;
        self.issuer_of(record).await
    }

    /// [`Ca::issuer`] without the standing check: for CRLs, which a revoked or
    /// expired CA still signs (RFC 5280 relying parties need its last CRLs).
    pub(crate) async fn issuer_of(&self, record: AuthorityRecord) -> Result<Issuer> {
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

    pub(crate) fn new_certificate(
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
    pub(crate) async fn record_sign_store(
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
    pub(crate) async fn record_archive_sign_store(
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

    /// The chain of CA certificates from `ca` up to its root, `ca` first.
    pub async fn chain(&self, ca: &str) -> Result<Vec<Vec<u8>>> {
        let id = self.store.authority_by_name(ca).await?.id;
        self.store.authority_chain(id).await
    }
}

pub(crate) fn urls_of(r: &AuthorityRecord) -> CaUrls {
    CaUrls {
        crl: r.crl_url.clone(),
        ocsp: r.ocsp_url.clone(),
        ca_issuers: r.ca_issuers_url.clone(),
    }
}

pub(crate) fn decode_cert(der: Option<&[u8]>) -> Result<Certificate> {
    let der = der.ok_or_else(|| Error::conflict("CA has no certificate"))?;
    Certificate::from_der(der)
        .map_err(|e| Error::internal(format!("stored CA certificate does not decode: {e}")))
}

/// CA names become file names and URL path segments.
pub(crate) fn validate_ca_name(name: &str) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Ca` that holds no key refuses, naming why, whatever would open one:
    /// the audit key, an online CA's signing key; and it still reads the store.
    #[tokio::test]
    async fn a_ca_without_keys_opens_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/gpki.db", dir.path().display()))
            .await
            .unwrap();
        let profiles = Profiles::builtin().unwrap();
        // A root made by a CA that holds keys, in the same store.
        let keyed = Ca::new(
            store.clone(),
            profiles.clone(),
            dir.path().join("keys"),
            Passphrase::new("root pass"),
            "test".into(),
        );
        keyed
            .init_root(&NewCa {
                name: "root".into(),
                subject: "CN=Test Root, OU=GPKI, O=Government of Korea, C=KR".into(),
                key_type: KeyType::EcP384,
                signature_algorithm: None,
                validity_days: Some(3650),
                path_len: None,
                name_constraints: None,
                url_base: "http://pki.test.go.kr".into(),
                offline: false,
            })
            .await
            .unwrap();
        keyed
            .create_subordinate(
                &NewCa {
                    name: "sub".into(),
                    subject: "CN=Test Sub, OU=GPKI, O=Government of Korea, C=KR".into(),
                    key_type: KeyType::EcP256,
                    signature_algorithm: None,
                    validity_days: Some(1825),
                    path_len: Some(0),
                    name_constraints: None,
                    url_base: "http://pki.test.go.kr".into(),
                    offline: false,
                },
                "root",
            )
            .await
            .unwrap();
        keyed.issuer("sub").await.unwrap();
        let keyless = Ca::without_keys(store, profiles, "test".into());
        let e = keyless
            .audit_checkpoint(&dir.path().join("checkpoints"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
        assert!(e.detail.contains("holds no CA key"), "{e}");
        let e = keyless.issuer("sub").await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
        assert!(e.detail.contains("holds no CA key"), "{e}");
        assert_eq!(keyless.chain("sub").await.unwrap().len(), 2);
    }
}
