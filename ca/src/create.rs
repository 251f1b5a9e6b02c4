//! Creating CAs: the self-signed root, subordinate CAs (their key made and
//! written where the custody of their kind keeps keys) and cross-certificates.

use std::path::PathBuf;
use std::sync::Arc;

use const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS;
use der::Encode;
use gpki_pki::cert::{self, CaUrls, IssuerContext, Linted, SubjectRequest};
use gpki_pki::serial::SerialNumber;
use gpki_pki::{Error, ErrorKind, KeyType, Result, SignatureAlgorithm, Signer, SoftwareKey};
use gpki_store::NewAuthority;
use serde_json::json;
use x509_cert::ext::pkix::{BasicConstraints, NameConstraints};

use crate::{validate_ca_name, Ca, Issued, Issuer, NewCa};

impl Ca {
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
}
