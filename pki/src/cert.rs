//! Building certificates: a profile, an issuer and a request become the exact
//! `tbsCertificate` to be recorded, linted and signed; the signature then completes it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use const_oid::db::rfc5280::{
    ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_CE_NAME_CONSTRAINTS, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_QT_CPS,
};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, OctetString};
use der::{Any, Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, NameConstraints,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::time::Validity;

use crate::error::{Error, Result};
use crate::profile::{Profile, ProfileKind, SanRule};
use crate::serial::SerialNumber;
use crate::signer::SignatureAlgorithm;

/// id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1.
pub const ID_PKIX_OCSP_NOCHECK: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");

/// One subjectAltName, as the CLI writes it: `dns:host`, `email:a@b`, `ip:1.2.3.4`,
/// `uri:https://…`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum SanEntry {
    Dns(String),
    Email(String),
    Ip(IpAddr),
    Uri(String),
}

impl fmt::Display for SanEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanEntry::Dns(v) => write!(f, "dns:{v}"),
            SanEntry::Email(v) => write!(f, "email:{v}"),
            SanEntry::Ip(v) => write!(f, "ip:{v}"),
            SanEntry::Uri(v) => write!(f, "uri:{v}"),
        }
    }
}

impl FromStr for SanEntry {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, value) = s.split_once(':').ok_or_else(|| {
            Error::malformed(format!("SAN `{s}` is not KIND:value (dns, email, ip, uri)"))
        })?;
        let entry = match kind.to_ascii_lowercase().as_str() {
            "dns" => SanEntry::Dns(value.to_ascii_lowercase()),
            "email" => SanEntry::Email(value.to_string()),
            "ip" => SanEntry::Ip(
                value
                    .parse()
                    .map_err(|_| Error::malformed(format!("SAN `{s}`: not an IP address")))?,
            ),
            "uri" => SanEntry::Uri(value.to_string()),
            _ => {
                return Err(Error::malformed(format!(
                    "SAN `{s}`: unknown kind `{kind}` (dns, email, ip, uri)"
                )))
            }
        };
        entry.validate()?;
        Ok(entry)
    }
}

impl SanEntry {
    fn validate(&self) -> Result<()> {
        match self {
            SanEntry::Dns(h) => {
                let ok = !h.is_empty()
                    && h.len() <= 253
                    && h.split('.').count() >= 2
                    && h.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !ok {
                    return Err(Error::malformed(format!(
                        "`{h}` is not a valid DNS host name"
                    )));
                }
            }
            SanEntry::Email(e) => {
                let ok = e.is_ascii()
                    && e.split_once('@')
                        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
                if !ok {
                    return Err(Error::malformed(format!(
                        "`{e}` is not a valid email address"
                    )));
                }
            }
            SanEntry::Uri(u) => {
                if !u.is_ascii() || !u.contains("://") {
                    return Err(Error::malformed(format!("`{u}` is not an absolute URI")));
                }
            }
            SanEntry::Ip(_) => {}
        }
        Ok(())
    }

    pub fn to_general_name(&self) -> Result<GeneralName> {
        Ok(match self {
            SanEntry::Dns(v) => GeneralName::DnsName(Ia5String::new(v)?),
            SanEntry::Email(v) => GeneralName::Rfc822Name(Ia5String::new(v)?),
            SanEntry::Uri(v) => GeneralName::UniformResourceIdentifier(Ia5String::new(v)?),
            SanEntry::Ip(IpAddr::V4(a)) => {
                GeneralName::IpAddress(OctetString::new(a.octets().to_vec())?)
            }
            SanEntry::Ip(IpAddr::V6(a)) => {
                GeneralName::IpAddress(OctetString::new(a.octets().to_vec())?)
            }
        })
    }

    pub fn from_general_name(gn: &GeneralName) -> Result<SanEntry> {
        let entry = match gn {
            GeneralName::DnsName(v) => SanEntry::Dns(v.to_string().to_ascii_lowercase()),
            GeneralName::Rfc822Name(v) => SanEntry::Email(v.to_string()),
            GeneralName::UniformResourceIdentifier(v) => SanEntry::Uri(v.to_string()),
            GeneralName::IpAddress(o) => {
                let b = o.as_bytes();
                match b.len() {
                    4 => SanEntry::Ip(IpAddr::from(<[u8; 4]>::try_from(b).expect("len 4"))),
                    16 => SanEntry::Ip(IpAddr::from(<[u8; 16]>::try_from(b).expect("len 16"))),
                    _ => return Err(Error::malformed("subjectAltName IP address of bad length")),
                }
            }
            _ => {
                return Err(Error::policy(
                    "only dNSName, rfc822Name, iPAddress and URI subjectAltNames are supported",
                ))
            }
        };
        entry.validate()?;
        Ok(entry)
    }
}

/// URLs a CA's certificates point at.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CaUrls {
    pub crl: Option<String>,
    pub ocsp: Option<String>,
    pub ca_issuers: Option<String>,
}

/// What the issuer contributes to a certificate.
#[derive(Debug, Clone)]
pub struct IssuerContext {
    pub name: Name,
    pub key_id: Vec<u8>,
    pub spki_der: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub signature_algorithm: SignatureAlgorithm,
    pub urls: CaUrls,
    /// Name constraints of the issuer and every CA above it.
    pub name_constraints: Vec<NameConstraints>,
    /// pathLenConstraint of the issuer, when it has one.
    pub path_len: Option<u8>,
}

/// What the requester asks for, after the CSR (if any) was verified.
#[derive(Debug, Clone)]
pub struct SubjectRequest {
    pub subject: Name,
    pub spki_der: Vec<u8>,
    pub sans: Vec<SanEntry>,
    /// Shorter than the profile's validity, never longer.
    pub validity_days: Option<u32>,
    /// For CAs: narrows the profile's path length.
    pub path_len: Option<u8>,
    /// For subordinate CAs: name constraints to place in the certificate.
    pub name_constraints: Option<NameConstraints>,
    /// False only for cross-certificates, whose subject is another PKI's.
    pub check_template: bool,
}

fn extension<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension> {
    extension_oid(T::OID, value, critical)
}

fn extension_oid<T: Encode>(oid: ObjectIdentifier, value: &T, critical: bool) -> Result<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec()
}

fn uri(u: &str) -> Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(u)?))
}

/// A tbsCertificate that the pre-issuance lints passed (invariant 3). Only
/// [`prepare`] makes one, and [`sign`] signs nothing else, so no path can sign a
/// certificate that no lint saw, as only `csr::parse_and_verify` makes a
/// [`VerifiedCsr`](crate::csr::VerifiedCsr).
///
/// Its parts can be read, never changed:
///
/// ```compile_fail
/// fn widen(linted: &mut gpki_pki::cert::Linted) {
///     linted.not_after += 86_400; // private field: does not build
/// }
/// ```
///
/// and `sign` takes no bytes a caller made:
///
/// ```compile_fail
/// fn sign_raw(key: &dyn gpki_pki::signer::Signer, tbs: &[u8]) {
///     let _ = gpki_pki::cert::sign(key, tbs); // expects &Linted: does not build
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Linted {
    tbs: TbsCertificate,
    tbs_der: Vec<u8>,
    serial: SerialNumber,
    not_before: i64,
    not_after: i64,
}

impl Linted {
    /// The tbsCertificate as it will be signed.
    pub fn tbs(&self) -> &TbsCertificate {
        &self.tbs
    }

    /// Its DER: what the store records before signing (step 5) and the key signs.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs_der
    }

    pub fn serial(&self) -> &SerialNumber {
        &self.serial
    }

    /// Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
}

/// Builds the tbsCertificate for `request` under `profile`, to be signed by
/// `issuer`, and lints it: steps 3–4 of issuance. `now` is Unix seconds; the
/// validity is clamped into the issuer's. A finding refuses it
/// ([`ErrorKind::LintFailed`](crate::error::ErrorKind::LintFailed)).
pub fn prepare(
    profile: &Profile,
    issuer: &IssuerContext,
    request: &SubjectRequest,
    serial: SerialNumber,
    now: i64,
) -> Result<Linted> {
    let spki = crate::signer::spki_from_der(&request.spki_der)?;
    profile.allows_key(crate::signer::KeyType::of_spki_info(&spki)?)?;
    if request.check_template {
        profile.check_subject(&request.subject)?;
    }
    check_sans(profile, &request.sans)?;
    let (not_before, not_after) = validity(profile, issuer, request, now)?;
    let ext = Extensions {
        profile,
        issuer,
        request,
        self_signed: request.spki_der == issuer.spki_der && request.subject == issuer.name,
        key_id: key_identifier(&spki),
    };
    let extensions = [
        ext.basic_constraints()?,
        Some(ext.key_usage()?),
        ext.extended_key_usage()?,
        ext.subject_key_identifier()?,
        Some(ext.authority_key_identifier()?),
        ext.certificate_policies()?,
        ext.crl_distribution_points()?,
        ext.authority_info_access()?,
        ext.subject_alt_name()?,
        ext.name_constraints()?,
        ext.ocsp_no_check()?,
    ]
    .into_iter()
    .flatten()
    .collect();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial.to_x509()?,
        signature: issuer.signature_algorithm.identifier(),
        issuer: issuer.name.clone(),
        validity: Validity {
            not_before: crate::time::x509_time(not_before)?,
            not_after: crate::time::x509_time(not_after)?,
        },
        subject: request.subject.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    crate::lint::check(&tbs, profile, issuer)?;
    let tbs_der = tbs.to_der()?;
    Ok(Linted {
        tbs,
        tbs_der,
        serial,
        not_before,
        not_after,
    })
}

/// Signs a linted tbsCertificate: the certificate's DER (step 6).
pub fn sign(key: &dyn crate::signer::Signer, linted: &Linted) -> Result<Vec<u8>> {
    let signature = key.sign(&linted.tbs_der)?;
    crate::signed::assemble(&linted.tbs_der, key.algorithm(), &signature)
}

/// notBefore and notAfter: the profile's validity or the shorter one asked, capped
/// for TLS by the Baseline Requirements' schedule, inside the issuer's.
fn validity(
    profile: &Profile,
    issuer: &IssuerContext,
    request: &SubjectRequest,
    now: i64,
) -> Result<(i64, i64)> {
    let most = profile.spec.validity_days;
    let days = match request.validity_days {
        Some(d) if d > most => {
            return Err(Error::policy(format!(
                "validity of {d} days exceeds profile {}'s {most} days",
                profile.name(),
            )))
        }
        Some(0) => return Err(Error::malformed("validity must be at least one day")),
        Some(d) => d,
        None => most,
    };
    // CA/B Forum profiles follow the BR's date-dependent maximum, less a day of
    // margin as pkilint recommends.
    let days = if profile.has_lint_set("cabf-serverauth") {
        days.min(crate::lint::TLS_VALIDITY.max_days(now) - 1)
    } else {
        days
    };
    let not_before = now.max(issuer.not_before);
    // RFC 5280 §4.1.2.5: the period is inclusive, so end one second early.
    let not_after = (now + i64::from(days) * 86_400 - 1).min(issuer.not_after);
    if not_after <= not_before {
        return Err(Error::policy(
            "the issuing CA's validity leaves no room for this certificate",
        ));
    }
    Ok((not_before, not_after))
}

/// What the extension builders read: one small builder per extension, each
/// answering the extension or `None` when the profile leaves it out.
struct Extensions<'a> {
    profile: &'a Profile,
    issuer: &'a IssuerContext,
    request: &'a SubjectRequest,
    self_signed: bool,
    /// The subject key's identifier (RFC 5280 §4.2.1.2 method 1).
    key_id: Vec<u8>,
}

impl Extensions<'_> {
    /// RFC 5280 §4.2.1.9: critical; in a CA certificate with the path length the
    /// profile allows, narrowed by the request (a root's only by the request).
    fn basic_constraints(&self) -> Result<Option<Extension>> {
        let spec = &self.profile.spec;
        if !spec.kind.is_ca() {
            return spec
                .basic_constraints
                .then(|| {
                    extension(
                        &BasicConstraints {
                            ca: false,
                            path_len_constraint: None,
                        },
                        true,
                    )
                })
                .transpose();
        }
        let path_len = match (spec.path_len, self.request.path_len) {
            (Some(p), Some(r)) if r > p => {
                return Err(Error::policy(format!(
                    "path length {r} exceeds profile {}'s {p}",
                    self.profile.name()
                )))
            }
            _ if spec.kind == ProfileKind::RootCa => self.request.path_len,
            (_, Some(r)) => Some(r),
            (p, None) => p,
        };
        extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
            true,
        )
        .map(Some)
    }

    fn key_usage(&self) -> Result<Extension> {
        extension(
            &KeyUsage(self.profile.key_usage),
            self.profile.spec.key_usage_critical,
        )
    }

    fn extended_key_usage(&self) -> Result<Option<Extension>> {
        let ekus = &self.profile.extended_key_usage;
        (!ekus.is_empty())
            .then(|| {
                extension(
                    &ExtendedKeyUsage(ekus.clone()),
                    self.profile.spec.extended_key_usage_critical,
                )
            })
            .transpose()
    }

    /// Always in CA certificates (RFC 5280 §4.2.1.2), in others as the profile says.
    fn subject_key_identifier(&self) -> Result<Option<Extension>> {
        let spec = &self.profile.spec;
        (spec.subject_key_identifier || spec.kind.is_ca())
            .then(|| {
                extension(
                    &SubjectKeyIdentifier(OctetString::new(self.key_id.clone())?),
                    false,
                )
            })
            .transpose()
    }

    /// RFC 5280 §4.2.1.1: in every certificate but self-signed ones, where it is
    /// still customary to repeat the SKI.
    fn authority_key_identifier(&self) -> Result<Extension> {
        let id = if self.self_signed {
            &self.key_id
        } else {
            &self.issuer.key_id
        };
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(id.clone())?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )
    }

    /// The profile's policies, each with the CPS URI when the profile has one.
    fn certificate_policies(&self) -> Result<Option<Extension>> {
        if self.profile.policy_oids.is_empty() {
            return Ok(None);
        }
        let qualifiers = match &self.profile.spec.policy.cps_uri {
            Some(u) => Some(vec![PolicyQualifierInfo {
                policy_qualifier_id: ID_QT_CPS,
                qualifier: Some(Any::encode_from(&Ia5String::new(u)?)?),
            }]),
            None => None,
        };
        let policies = self
            .profile
            .policy_oids
            .iter()
            .map(|oid| PolicyInformation {
                policy_identifier: *oid,
                policy_qualifiers: qualifiers.clone(),
            })
            .collect();
        extension(&CertificatePolicies(policies), false).map(Some)
    }

    /// The issuer's URL of `what`, which the profile asks for: its absence refuses.
    fn issuer_url<'u>(&self, url: &'u Option<String>, what: &str) -> Result<&'u str> {
        url.as_deref().ok_or_else(|| {
            Error::policy(format!(
                "profile {} needs {what} URL, and the issuing CA has none",
                self.profile.name(),
            ))
        })
    }

    fn crl_distribution_points(&self) -> Result<Option<Extension>> {
        if !self.profile.spec.distribution.crl {
            return Ok(None);
        }
        let url = self.issuer_url(&self.issuer.urls.crl, "a CRL")?;
        extension(
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
                reasons: None,
                crl_issuer: None,
            }]),
            false,
        )
        .map(Some)
    }

    /// OCSP and caIssuers, as the profile asks.
    fn authority_info_access(&self) -> Result<Option<Extension>> {
        let wanted = &self.profile.spec.distribution;
        let urls = &self.issuer.urls;
        let mut access = Vec::new();
        for (asked, url, what, method) in [
            (wanted.ocsp, &urls.ocsp, "an OCSP", ID_AD_OCSP),
            (
                wanted.ca_issuers,
                &urls.ca_issuers,
                "a caIssuers",
                ID_AD_CA_ISSUERS,
            ),
        ] {
            if asked {
                access.push(AccessDescription {
                    access_method: method,
                    access_location: uri(self.issuer_url(url, what)?)?,
                });
            }
        }
        (!access.is_empty())
            .then(|| extension(&AuthorityInfoAccessSyntax(access), false))
            .transpose()
    }

    fn subject_alt_name(&self) -> Result<Option<Extension>> {
        if self.request.sans.is_empty() {
            return Ok(None);
        }
        let names = self
            .request
            .sans
            .iter()
            .map(SanEntry::to_general_name)
            .collect::<Result<Vec<_>>>()?;
        extension(&SubjectAltName(names), false).map(Some)
    }

    /// Only in subordinate CA certificates, and critical (RFC 5280 §4.2.1.10).
    fn name_constraints(&self) -> Result<Option<Extension>> {
        let Some(nc) = &self.request.name_constraints else {
            return Ok(None);
        };
        if self.profile.spec.kind != ProfileKind::SubCa {
            return Err(Error::policy(
                "name constraints belong only in subordinate CA certificates",
            ));
        }
        extension_oid(ID_CE_NAME_CONSTRAINTS, nc, true).map(Some)
    }

    /// RFC 6960 §4.2.2.2.1, in delegated responders' certificates.
    fn ocsp_no_check(&self) -> Result<Option<Extension>> {
        self.profile
            .spec
            .ocsp_no_check
            .then(|| extension_oid(ID_PKIX_OCSP_NOCHECK, &der::asn1::Null, false))
            .transpose()
    }
}

fn check_sans(profile: &Profile, sans: &[SanEntry]) -> Result<()> {
    let rules = &profile.spec.san;
    let count = |f: fn(&SanEntry) -> bool| sans.iter().filter(|s| f(s)).count();
    let checks: [(&str, SanRule, usize); 4] = [
        ("dns", rules.dns, count(|s| matches!(s, SanEntry::Dns(_)))),
        (
            "email",
            rules.email,
            count(|s| matches!(s, SanEntry::Email(_))),
        ),
        ("ip", rules.ip, count(|s| matches!(s, SanEntry::Ip(_)))),
        ("uri", rules.uri, count(|s| matches!(s, SanEntry::Uri(_)))),
    ];
    for (kind, rule, n) in checks {
        match rule {
            SanRule::Forbidden if n > 0 => {
                return Err(Error::policy(format!(
                    "profile {} does not allow {kind} subjectAltNames",
                    profile.name()
                )))
            }
            SanRule::Required if n == 0 => {
                return Err(Error::policy(format!(
                    "profile {} requires at least one {kind} subjectAltName",
                    profile.name()
                )))
            }
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in sans {
        if !seen.insert(s.to_string()) {
            return Err(Error::malformed(format!(
                "subjectAltName {s} is given twice"
            )));
        }
    }
    Ok(())
}

/// Decodes a certificate from PEM or DER.
pub fn decode(input: &[u8]) -> Result<Certificate> {
    let der_bytes = crate::pem::decode_pem_or_der(input, &["CERTIFICATE"])?;
    Certificate::from_der(&der_bytes)
        .map_err(|e| Error::malformed(format!("certificate is not valid DER: {e}")))
}

/// What the services read of a CA certificate with every request: its serial (hex),
/// validity and whether it is self-issued (a root, left out of the chains they
/// return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFacts {
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub self_issued: bool,
}

/// [`CaFacts`] of the certificate `der`. Decoding a certificate is tens of
/// microseconds and every issuance asks about the same few CA certificates, so
/// the answers are kept, by the certificate's bytes: a changed certificate is
/// another key. At most [`CA_FACTS_KEPT`] are kept; beyond that the memory starts
/// again.
pub fn ca_facts(der: &[u8]) -> Result<std::sync::Arc<CaFacts>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static KEPT: OnceLock<Mutex<HashMap<Vec<u8>, Arc<CaFacts>>>> = OnceLock::new();
    let kept = KEPT.get_or_init(Default::default);
    if let Some(f) = kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(der)
    {
        return Ok(f.clone());
    }
    let cert = decode(der)?;
    let tbs = &cert.tbs_certificate;
    let facts = Arc::new(CaFacts {
        serial: SerialNumber::from_bytes(tbs.serial_number.as_bytes())?.to_hex(),
        not_before: crate::time::unix_seconds(&tbs.validity.not_before),
        not_after: crate::time::unix_seconds(&tbs.validity.not_after),
        self_issued: tbs.issuer == tbs.subject,
    });
    let mut kept = kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if kept.len() >= CA_FACTS_KEPT {
        kept.clear();
    }
    kept.insert(der.to_vec(), facts.clone());
    Ok(facts)
}

/// How many CA certificates' [`CaFacts`] a process keeps.
pub const CA_FACTS_KEPT: usize = 256;

/// Whether the certificate's key signs: keyUsage present with digitalSignature.
pub fn signs(cert: &TbsCertificate) -> Result<bool> {
    Ok(find_extension::<x509_cert::ext::pkix::KeyUsage>(
        cert,
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    )?
    .is_some_and(|(_, ku)| ku.digital_signature()))
}

/// The extension with `oid`, decoded.
pub fn find_extension<T: for<'a> Decode<'a>>(
    cert: &TbsCertificate,
    oid: ObjectIdentifier,
) -> Result<Option<(bool, T)>> {
    for ext in cert.extensions.iter().flatten() {
        if ext.extn_id == oid {
            let v = T::from_der(ext.extn_value.as_bytes())
                .map_err(|e| Error::malformed(format!("extension {oid}: {e}")))?;
            return Ok(Some((ext.critical, v)));
        }
    }
    Ok(None)
}

/// The subjectAltName entries of a certificate (none without the extension).
pub fn san_entries(tbs: &TbsCertificate) -> Result<Vec<SanEntry>> {
    match find_extension::<SubjectAltName>(tbs, const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)? {
        Some((_, san)) => san.0.iter().map(SanEntry::from_general_name).collect(),
        None => Ok(Vec::new()),
    }
}

/// The subjectKeyIdentifier of a certificate, or one computed from its key.
pub fn subject_key_id(tbs: &TbsCertificate) -> Result<Vec<u8>> {
    match find_extension::<SubjectKeyIdentifier>(tbs, ID_CE_SUBJECT_KEY_IDENTIFIER)? {
        Some((_, ski)) => Ok(ski.0.as_bytes().to_vec()),
        None => Ok(key_identifier(&tbs.subject_public_key_info)),
    }
}

/// Name constraints from the CLI: `--permit-dn`, `--exclude-dn`, `--permit-dns`,
/// `--exclude-dns`.
pub fn name_constraints(
    permit_dn: &[String],
    exclude_dn: &[String],
    permit_dns: &[String],
    exclude_dns: &[String],
) -> Result<Option<NameConstraints>> {
    let subtree = |gn: GeneralName| GeneralSubtree {
        base: gn,
        minimum: 0,
        maximum: None,
    };
    let dn = |s: &String| -> Result<GeneralSubtree> {
        Ok(subtree(GeneralName::DirectoryName(crate::name::parse(s)?)))
    };
    let dns = |s: &String| -> Result<GeneralSubtree> {
        SanEntry::Dns(s.to_ascii_lowercase()).validate()?;
        Ok(subtree(GeneralName::DnsName(Ia5String::new(
            &s.to_ascii_lowercase(),
        )?)))
    };
    let mut permitted = permit_dn.iter().map(dn).collect::<Result<Vec<_>>>()?;
    permitted.extend(permit_dns.iter().map(dns).collect::<Result<Vec<_>>>()?);
    let mut excluded = exclude_dn.iter().map(dn).collect::<Result<Vec<_>>>()?;
    excluded.extend(exclude_dns.iter().map(dns).collect::<Result<Vec<_>>>()?);
    if permitted.is_empty() && excluded.is_empty() {
        return Ok(None);
    }
    Ok(Some(NameConstraints {
        permitted_subtrees: (!permitted.is_empty()).then_some(permitted),
        excluded_subtrees: (!excluded.is_empty()).then_some(excluded),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate made by OpenSSL, not by gpki: `issuer` signs it, or it signs
    /// itself.
    fn openssl_cert(
        cn: &str,
        serial: u32,
        days: u32,
        issuer: Option<(&str, &openssl::pkey::PKey<openssl::pkey::Private>)>,
    ) -> (Vec<u8>, openssl::pkey::PKey<openssl::pkey::Private>) {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let name = |cn: &str| {
            let mut n = openssl::x509::X509NameBuilder::new().unwrap();
            n.append_entry_by_text("CN", cn).unwrap();
            n.build()
        };
        let (issuer_cn, signer) = issuer.unwrap_or((cn, &key));
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(serial).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(&name(issuer_cn)).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::from_unix(1_700_000_000).unwrap())
            .unwrap();
        b.set_not_after(
            &openssl::asn1::Asn1Time::from_unix(1_700_000_000 + 86_400 * i64::from(days)).unwrap(),
        )
        .unwrap();
        b.sign(signer, openssl::hash::MessageDigest::sha256())
            .unwrap();
        (b.build().to_der().unwrap(), key)
    }

    #[test]
    fn ca_facts_are_the_certificates_and_follow_its_bytes() {
        let (root, root_key) = openssl_cert("root", 0x1234, 10, None);
        let (sub, _) = openssl_cert("sub", 0xabcdef, 5, Some(("root", &root_key)));
        let r = ca_facts(&root).unwrap();
        assert!(r.self_issued);
        assert_eq!(r.serial, "1234");
        assert_eq!((r.not_before, r.not_after), (1_700_000_000, 1_700_864_000));
        let s = ca_facts(&sub).unwrap();
        assert!(!s.self_issued);
        assert_eq!(s.serial, "abcdef");
        assert_eq!(s.not_after, 1_700_432_000);
        // Asked again: the same answer; another certificate under the same name
        // (re-issued) has its own.
        assert_eq!(*ca_facts(&sub).unwrap(), *s);
        let (again, _) = openssl_cert("sub", 0x77, 7, Some(("root", &root_key)));
        let a = ca_facts(&again).unwrap();
        assert_eq!((a.serial.as_str(), a.not_after), ("77", 1_700_604_800));
        // Not a certificate: an error, not an answer.
        assert!(ca_facts(b"not DER").is_err());
    }
}
