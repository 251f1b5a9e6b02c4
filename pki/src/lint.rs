//! Pre-issuance lints (invariant 3). Every planned certificate runs through these
//! before it is signed; any finding refuses issuance with a message naming the rule.
//! They read the decoded tbsCertificate as it will be signed, not the request.
//!
//! Each rule is a [`Rule`] with a stable name, the section it enforces and one small
//! function. [`lint`] decodes what the rules share once, then runs every rule of
//! [`Rule::ALL`] that applies, in that order.

use std::fmt;

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER,
};
use der::Decode;
use flagset::FlagSet;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    NameConstraints, SubjectAltName,
};

use crate::cert::{find_extension, IssuerContext, SanEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::profile::{
    Profile, EKU_ANY, EKU_CLIENT_AUTH, EKU_EMAIL, EKU_OCSP_SIGNING, EKU_SERVER_AUTH,
    EKU_TIME_STAMPING,
};
use crate::signer::KeyType;

/// One lint finding: the rule and what is wrong. The rule serializes as its name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub message: String,
}

/// Runs every lint that applies and returns all findings.
pub fn lint(tbs: &TbsCertificate, profile: &Profile, issuer: &IssuerContext) -> Vec<Finding> {
    let cert = Cert::new(tbs, profile, issuer);
    let mut list = Vec::new();
    for &rule in Rule::ALL {
        if rule.applies(&cert) {
            let mut out = Findings {
                rule,
                list: &mut list,
            };
            (rule.check())(&cert, &mut out);
        }
    }
    list
}

/// Lints and turns findings into a `LintFailed` error naming each rule.
pub fn check(tbs: &TbsCertificate, profile: &Profile, issuer: &IssuerContext) -> Result<()> {
    let findings = lint(tbs, profile, issuer);
    if findings.is_empty() {
        return Ok(());
    }
    let text = findings
        .iter()
        .map(|f| format!("[{}] {}", f.rule, f.message))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::new(
        ErrorKind::LintFailed,
        format!("certificate refused by lint: {text}"),
    ))
}

/// Declares [`Rule`] from one table: variant, name, source and checking function,
/// in the order the rules run.
macro_rules! rules {
    ($($variant:ident => $name:literal, $source:literal, $check:ident;)*) => {
        /// A lint rule. Its [name](Rule::name) is stable: findings and error messages
        /// carry it, and callers match on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Rule {
            $(#[doc = concat!("`", $name, "`: ", $source, ".")] $variant,)*
        }

        impl Rule {
            /// Every rule, in the order [`lint`] runs them.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// The stable name, e.g. `rfc5280.serial.nonzero`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Rule::$variant => $name,)*
                }
            }

            /// The requirement the rule enforces, e.g. `RFC 5280 §4.1.2.2`.
            pub fn source(self) -> &'static str {
                match self {
                    $(Rule::$variant => $source,)*
                }
            }

            fn check(self) -> fn(&Cert<'_>, &mut Findings<'_>) {
                match self {
                    $(Rule::$variant => $check,)*
                }
            }
        }
    };
}

rules! {
    SerialNonzero => "rfc5280.serial.nonzero", "RFC 5280 §4.1.2.2", serial_nonzero;
    SerialLength => "rfc5280.serial.length", "RFC 5280 §4.1.2.2", serial_length;
    SerialEntropy => "gpki.serial.entropy", "gpki profile", serial_entropy;
    ValidityOrder => "rfc5280.validity.order", "RFC 5280 §4.1.2.5", validity_order;
    ValidityWithinIssuer => "rfc5280.validity.within-issuer", "RFC 5280 §4.1.2.5, §6.1.3", validity_within_issuer;
    ValidityProfile => "gpki.validity.profile", "gpki profile", validity_profile;
    SubjectEmpty => "rfc5280.subject.empty", "RFC 5280 §4.1.2.6", subject_empty;
    IssuerEmpty => "rfc5280.issuer.empty", "RFC 5280 §4.1.2.4", issuer_empty;
    ExtensionsUnique => "rfc5280.extensions.unique", "RFC 5280 §4.2", extensions_unique;
    Decodable => "rfc5280.decodable", "RFC 5280 §4.1, §4.2", decodable;
    ProfileKind => "gpki.profile.kind", "gpki profile", profile_kind;
    CaBasicConstraintsCritical => "rfc5280.ca.basic-constraints-critical", "RFC 5280 §4.2.1.9", ca_basic_constraints_critical;
    CaKeyCertSign => "rfc5280.ca.key-cert-sign", "RFC 5280 §4.2.1.3", ca_key_cert_sign;
    CaSubjectKeyIdentifier => "rfc5280.ca.subject-key-identifier", "RFC 5280 §4.2.1.2", ca_subject_key_identifier;
    CaPathLength => "rfc5280.ca.path-length", "RFC 5280 §4.2.1.9", ca_path_length;
    EeNoCertSign => "rfc5280.ee.no-cert-sign", "RFC 5280 §4.2.1.3", ee_no_cert_sign;
    EePathLength => "rfc5280.ee.path-length", "RFC 5280 §4.2.1.9", ee_path_length;
    KeyUsagePresent => "rfc5280.key-usage.present", "RFC 5280 §4.2.1.3", key_usage_present;
    KeyUsageNonempty => "rfc5280.key-usage.nonempty", "RFC 5280 §4.2.1.3", key_usage_nonempty;
    AuthorityKeyIdentifier => "rfc5280.authority-key-identifier", "RFC 5280 §4.2.1.1", authority_key_identifier;
    AuthorityKeyIdentifierMatch => "rfc5280.authority-key-identifier.match", "RFC 5280 §4.2.1.1", authority_key_identifier_match;
    KeyUsageEcEncipherment => "gpki.key-usage.ec-encipherment", "RFC 5480 §3", key_usage_ec_encipherment;
    KeyUsageRsaKeyAgreement => "gpki.key-usage.rsa-key-agreement", "RFC 3279 §2.3.1", key_usage_rsa_key_agreement;
    KeyTypeProfile => "gpki.key-type.profile", "gpki profile", key_type_profile;
    KeyTypeSupported => "gpki.key-type.supported", "gpki profile", key_type_supported;
    KeyUsageEkuConsistent => "rfc5280.key-usage.eku-consistent", "RFC 5280 §4.2.1.12", key_usage_eku_consistent;
    Rfc3161Eku => "rfc3161.eku", "RFC 3161 §2.3", rfc3161_eku;
    EkuAny => "gpki.eku.any", "gpki profile", eku_any;
    NameConstraints => "rfc5280.name-constraints", "RFC 5280 §4.2.1.10", name_constraints;
    NameConstraintsCnAsDns => "gpki.name-constraints.cn-as-dns", "gpki profile (as GnuTLS and NSS check)", name_constraints_cn_as_dns;
    SubjectCnInSan => "cabf.subject.cn-in-san", "CA/B BR 7.1.4.3", subject_cn_in_san;
    CabfValiditySchedule => "cabf.validity.schedule", "CA/B BR 6.3.2 (ballot SC-081)", cabf_validity_schedule;
    CabfSanPresent => "cabf.san.present", "CA/B BR 7.1.2.7.12", cabf_san_present;
    CabfSanInternalName => "cabf.san.internal-name", "CA/B BR 7.1.2.7.12", cabf_san_internal_name;
    CabfSanReservedIp => "cabf.san.reserved-ip", "CA/B BR 7.1.2.7.12", cabf_san_reserved_ip;
    CabfSanType => "cabf.san.type", "CA/B BR 7.1.2.7.12", cabf_san_type;
    CabfEkuServerAuth => "cabf.eku.server-auth", "CA/B BR 7.1.2.7.10", cabf_eku_server_auth;
    CabfSubjectNoOu => "cabf.subject.no-ou", "CA/B BR 7.1.2.7.4", cabf_subject_no_ou;
    CabfKeyType => "cabf.key.type", "CA/B BR 6.1.5", cabf_key_type;
}

impl Rule {
    /// Whether the rule applies to `c`. Rules after [`Rule::Decodable`] need the
    /// decoded extensions and do not run when decoding failed.
    fn applies(self, c: &Cert<'_>) -> bool {
        use Rule::*;
        match self {
            SerialNonzero | SerialLength | SerialEntropy | ValidityOrder | ValidityWithinIssuer
            | ValidityProfile | SubjectEmpty | IssuerEmpty | ExtensionsUnique => true,
            Decodable => c.undecodable.is_some(),
            _ if c.undecodable.is_some() => false,
            CaBasicConstraintsCritical | CaKeyCertSign | CaSubjectKeyIdentifier | CaPathLength => {
                c.is_ca
            }
            EeNoCertSign | EePathLength => !c.is_ca,
            SubjectCnInSan => c.profile.spec.san.cn_in_san,
            CabfValiditySchedule | CabfSanPresent | CabfSanInternalName | CabfSanReservedIp
            | CabfSanType | CabfEkuServerAuth | CabfSubjectNoOu | CabfKeyType => {
                c.profile.has_lint_set("cabf-serverauth")
            }
            _ => true,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What the rules share, built once per lint run.
struct Cert<'a> {
    tbs: &'a TbsCertificate,
    profile: &'a Profile,
    issuer: &'a IssuerContext,
    /// The validity, in Unix seconds.
    not_before: i64,
    not_after: i64,
    /// Length of the validity period, both ends included.
    days: f64,
    key_type: Result<KeyType>,
    /// Why [`Decoded`] could not be built; `ext` is then empty.
    undecodable: Option<String>,
    ext: Decoded,
    is_ca: bool,
    usages: FlagSet<KeyUsages>,
    /// The subjectAltNames gpki understands.
    sans: Vec<SanEntry>,
}

/// The DER SPKI and the extensions the rules read, each with its critical flag.
#[derive(Default)]
struct Decoded {
    spki_der: Vec<u8>,
    bc: Option<(bool, BasicConstraints)>,
    ku: Option<(bool, KeyUsage)>,
    eku: Option<(bool, ExtendedKeyUsage)>,
    ski: Option<(bool, der::asn1::OctetString)>,
    aki: Option<(bool, AuthorityKeyIdentifier)>,
    san: Option<(bool, SubjectAltName)>,
}

impl Decoded {
    fn of(tbs: &TbsCertificate) -> Result<Decoded> {
        Ok(Decoded {
            spki_der: der::Encode::to_der(&tbs.subject_public_key_info)?,
            bc: find_extension(tbs, ID_CE_BASIC_CONSTRAINTS)?,
            ku: find_extension(tbs, ID_CE_KEY_USAGE)?,
            eku: find_extension(tbs, ID_CE_EXT_KEY_USAGE)?,
            ski: find_extension(tbs, ID_CE_SUBJECT_KEY_IDENTIFIER)?,
            aki: find_extension(tbs, ID_CE_AUTHORITY_KEY_IDENTIFIER)?,
            san: find_extension(tbs, ID_CE_SUBJECT_ALT_NAME)?,
        })
    }
}

impl<'a> Cert<'a> {
    fn new(tbs: &'a TbsCertificate, profile: &'a Profile, issuer: &'a IssuerContext) -> Self {
        let not_before = crate::time::unix_seconds(&tbs.validity.not_before);
        let not_after = crate::time::unix_seconds(&tbs.validity.not_after);
        let (ext, undecodable) = match Decoded::of(tbs) {
            Ok(d) => (d, None),
            Err(e) => (Decoded::default(), Some(e.detail)),
        };
        let is_ca = ext.bc.as_ref().is_some_and(|(_, b)| b.ca);
        let usages = ext.ku.as_ref().map(|(_, k)| k.0).unwrap_or_default();
        let sans = ext.san.as_ref().map_or_else(Vec::new, |(_, s)| {
            s.0.iter()
                .filter_map(|g| SanEntry::from_general_name(g).ok())
                .collect()
        });
        Cert {
            tbs,
            profile,
            issuer,
            not_before,
            not_after,
            days: (not_after - not_before + 1) as f64 / 86_400.0,
            key_type: KeyType::of_spki_info(&tbs.subject_public_key_info),
            undecodable,
            ext,
            is_ca,
            usages,
            sans,
        }
    }

    /// Issuer and subject are the same name (RFC 5280 §3.3 "self-issued").
    fn self_issued(&self) -> bool {
        self.tbs.issuer == self.tbs.subject
    }
}

/// Where a rule reports: each finding is recorded under the rule now running.
struct Findings<'a> {
    rule: Rule,
    list: &'a mut Vec<Finding>,
}

impl Findings<'_> {
    fn add(&mut self, message: impl Into<String>) {
        self.list.push(Finding {
            rule: self.rule,
            message: message.into(),
        });
    }
}

/// RFC 5280 §4.1.2.2: the serial number is positive.
fn serial_nonzero(c: &Cert<'_>, out: &mut Findings<'_>) {
    let serial = c.tbs.serial_number.as_bytes();
    if serial.is_empty() || serial.iter().all(|b| *b == 0) {
        out.add("serial number is zero");
    }
}

/// RFC 5280 §4.1.2.2: the serial number is at most 20 octets.
fn serial_length(c: &Cert<'_>, out: &mut Findings<'_>) {
    let len = c.tbs.serial_number.as_bytes().len();
    if len > 20 {
        out.add(format!("serial number is {len} octets (max 20)"));
    }
}

/// gpki profile: the serial number carries at least 64 bits.
fn serial_entropy(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.tbs.serial_number.as_bytes().len() < 8 {
        out.add("serial number has fewer than 64 bits");
    }
}

/// RFC 5280 §4.1.2.5: notAfter comes after notBefore.
fn validity_order(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.not_after <= c.not_before {
        out.add("notAfter is not after notBefore");
    }
}

/// RFC 5280 §4.1.2.5, §6.1.3: the validity lies within the issuing CA's.
fn validity_within_issuer(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.not_before < c.issuer.not_before || c.not_after > c.issuer.not_after {
        out.add("validity extends outside the issuing CA's");
    }
}

/// gpki profile: the validity is no longer than the profile's.
fn validity_profile(c: &Cert<'_>, out: &mut Findings<'_>) {
    let max = c.profile.spec.validity_days;
    if c.days > f64::from(max) + 0.0001 {
        out.add(format!(
            "validity of {:.1} days exceeds the profile's {max}",
            c.days
        ));
    }
}

/// RFC 5280 §4.1.2.6: the subject is not empty (gpki puts no names in SAN only).
fn subject_empty(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.tbs.subject.0.is_empty() {
        out.add("subject is empty");
    }
}

/// RFC 5280 §4.1.2.4: the issuer is not empty.
fn issuer_empty(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.tbs.issuer.0.is_empty() {
        out.add("issuer is empty");
    }
}

/// RFC 5280 §4.2: an extension appears at most once.
fn extensions_unique(c: &Cert<'_>, out: &mut Findings<'_>) {
    let mut ids: Vec<_> = c
        .tbs
        .extensions
        .iter()
        .flatten()
        .map(|e| e.extn_id)
        .collect();
    ids.sort();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        out.add("an extension appears twice");
    }
}

/// RFC 5280 §4.1, §4.2: the SPKI and the extensions the lints read decode.
fn decodable(c: &Cert<'_>, out: &mut Findings<'_>) {
    if let Some(detail) = &c.undecodable {
        out.add(detail.clone());
    }
}

/// gpki profile: basicConstraints cA matches the profile kind.
fn profile_kind(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.is_ca != c.profile.spec.kind.is_ca() {
        out.add("basicConstraints cA does not match the profile kind");
    }
}

/// RFC 5280 §4.2.1.9: basicConstraints is critical in a CA certificate.
fn ca_basic_constraints_critical(c: &Cert<'_>, out: &mut Findings<'_>) {
    if !c.ext.bc.as_ref().is_some_and(|(critical, _)| *critical) {
        out.add("basicConstraints must be critical in a CA certificate");
    }
}

/// RFC 5280 §4.2.1.3: a CA certificate asserts keyCertSign.
fn ca_key_cert_sign(c: &Cert<'_>, out: &mut Findings<'_>) {
    if !c.usages.contains(KeyUsages::KeyCertSign) {
        out.add("a CA certificate needs keyCertSign");
    }
}

/// RFC 5280 §4.2.1.2: a CA certificate has a subjectKeyIdentifier.
fn ca_subject_key_identifier(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.ext.ski.is_none() {
        out.add("a CA certificate needs a subjectKeyIdentifier");
    }
}

/// RFC 5280 §4.2.1.9: the issuer's own pathLenConstraint bounds the CA certificates
/// it signs (self-issued ones excepted).
fn ca_path_length(c: &Cert<'_>, out: &mut Findings<'_>) {
    let (Some(parent), Some((_, bc))) = (c.issuer.path_len, &c.ext.bc) else {
        return;
    };
    if c.self_issued() {
        return;
    }
    if parent == 0 {
        out.add("the issuing CA's pathLenConstraint 0 forbids signing CA certificates");
    } else if bc.path_len_constraint.is_none_or(|p| p >= parent) {
        out.add("path length must be less than the issuing CA's");
    }
}

/// RFC 5280 §4.2.1.3: an end-entity certificate asserts neither keyCertSign nor
/// cRLSign.
fn ee_no_cert_sign(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.usages.contains(KeyUsages::KeyCertSign) || c.usages.contains(KeyUsages::CRLSign) {
        out.add("an end-entity certificate must not have keyCertSign or cRLSign");
    }
}

/// RFC 5280 §4.2.1.9: pathLenConstraint only with cA.
fn ee_path_length(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.ext
        .bc
        .as_ref()
        .is_some_and(|(_, b)| b.path_len_constraint.is_some())
    {
        out.add("pathLenConstraint without cA");
    }
}

/// RFC 5280 §4.2.1.3: keyUsage is present.
fn key_usage_present(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.ext.ku.is_none() {
        out.add("keyUsage is missing");
    }
}

/// RFC 5280 §4.2.1.3: a keyUsage asserts at least one bit.
fn key_usage_nonempty(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.ext.ku.as_ref().is_some_and(|(_, k)| k.0.is_empty()) {
        out.add("keyUsage has no bit set");
    }
}

/// RFC 5280 §4.2.1.1: a certificate that is not self-issued carries
/// authorityKeyIdentifier with keyIdentifier.
fn authority_key_identifier(c: &Cert<'_>, out: &mut Findings<'_>) {
    let key_id = c
        .ext
        .aki
        .as_ref()
        .and_then(|(_, a)| a.key_identifier.as_ref());
    if !c.self_issued() && key_id.is_none() {
        out.add("authorityKeyIdentifier keyIdentifier is missing");
    }
}

/// RFC 5280 §4.2.1.1: authorityKeyIdentifier names the signing key: the issuer's, or
/// the certificate's own when it is self-signed.
fn authority_key_identifier_match(c: &Cert<'_>, out: &mut Findings<'_>) {
    let Some((_, aki)) = &c.ext.aki else {
        return;
    };
    let expected = if c.self_issued() && c.ext.spki_der == c.issuer.spki_der {
        crate::cert::key_identifier(&c.tbs.subject_public_key_info)
    } else {
        c.issuer.key_id.clone()
    };
    if aki.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(expected.as_slice()) {
        out.add("authorityKeyIdentifier does not match the issuer's key");
    }
}

/// RFC 5480 §3: an EC key asserts neither keyEncipherment nor dataEncipherment.
fn key_usage_ec_encipherment(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.key_type.as_ref().is_ok_and(|kt| !kt.is_rsa())
        && (c.usages.contains(KeyUsages::KeyEncipherment)
            || c.usages.contains(KeyUsages::DataEncipherment))
    {
        out.add("keyEncipherment/dataEncipherment on an EC key");
    }
}

/// RFC 3279 §2.3.1: an RSA key does not assert keyAgreement.
fn key_usage_rsa_key_agreement(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.key_type.as_ref().is_ok_and(|kt| kt.is_rsa()) && c.usages.contains(KeyUsages::KeyAgreement)
    {
        out.add("keyAgreement on an RSA key");
    }
}

/// gpki profile: the key type is one the profile allows.
fn key_type_profile(c: &Cert<'_>, out: &mut Findings<'_>) {
    if let Ok(kt) = c.key_type {
        if c.profile.allows_key(kt).is_err() {
            out.add(format!(
                "{kt} keys are not allowed by profile {}",
                c.profile.name()
            ));
        }
    }
}

/// gpki profile: the key is of a type gpki supports.
fn key_type_supported(c: &Cert<'_>, out: &mut Findings<'_>) {
    if let Err(e) = &c.key_type {
        out.add(e.detail.clone());
    }
}

/// RFC 5280 §4.2.1.12: keyUsage permits every extended key usage.
fn key_usage_eku_consistent(c: &Cert<'_>, out: &mut Findings<'_>) {
    let Some((_, eku)) = &c.ext.eku else {
        return;
    };
    let any = |bits: &[KeyUsages]| bits.iter().any(|b| c.usages.contains(*b));
    for oid in &eku.0 {
        let ok = if *oid == EKU_SERVER_AUTH {
            any(&[
                KeyUsages::DigitalSignature,
                KeyUsages::KeyEncipherment,
                KeyUsages::KeyAgreement,
            ])
        } else if *oid == EKU_CLIENT_AUTH {
            any(&[KeyUsages::DigitalSignature, KeyUsages::KeyAgreement])
        } else if *oid == EKU_EMAIL {
            any(&[
                KeyUsages::DigitalSignature,
                KeyUsages::NonRepudiation,
                KeyUsages::KeyEncipherment,
                KeyUsages::KeyAgreement,
            ])
        } else if *oid == EKU_OCSP_SIGNING || *oid == EKU_TIME_STAMPING {
            any(&[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation])
        } else {
            true
        };
        if !ok {
            out.add(format!("keyUsage does not permit extended key usage {oid}"));
        }
    }
}

/// RFC 3161 §2.3: a TSA certificate has exactly one, critical, extendedKeyUsage.
fn rfc3161_eku(c: &Cert<'_>, out: &mut Findings<'_>) {
    let Some((critical, eku)) = &c.ext.eku else {
        return;
    };
    if eku.0.contains(&EKU_TIME_STAMPING) && (eku.0.len() != 1 || !critical) {
        out.add("a TSA certificate has exactly one, critical, extendedKeyUsage: timeStamping");
    }
}

/// gpki profile: no CA certificate carries anyExtendedKeyUsage.
fn eku_any(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.is_ca
        && c.ext
            .eku
            .as_ref()
            .is_some_and(|(_, e)| e.0.contains(&EKU_ANY))
    {
        out.add("anyExtendedKeyUsage is not issued");
    }
}

/// RFC 5280 §4.2.1.10: subject and subjectAltNames fit the name constraints of every
/// CA above.
fn name_constraints(c: &Cert<'_>, out: &mut Findings<'_>) {
    for nc in &c.issuer.name_constraints {
        if let Some(reason) = violates_name_constraints(&c.tbs.subject, &c.sans, nc) {
            out.add(reason);
        }
    }
}

/// gpki profile: GnuTLS and NSS check the commonName of a certificate that could
/// authenticate a TLS server (no EKU, serverAuth or anyExtendedKeyUsage) and has no
/// dNSName against the DNS name constraints above it; so does gpki, so that no
/// relying party refuses what was issued.
fn name_constraints_cn_as_dns(c: &Cert<'_>, out: &mut Findings<'_>) {
    let server_capable = !c.is_ca
        && c.ext
            .eku
            .as_ref()
            .is_none_or(|(_, e)| e.0.contains(&EKU_SERVER_AUTH) || e.0.contains(&EKU_ANY));
    if !server_capable || c.sans.iter().any(|s| matches!(s, SanEntry::Dns(_))) {
        return;
    }
    for cn in crate::name::attributes(&c.tbs.subject)
        .into_iter()
        .filter(|a| a.short.eq_ignore_ascii_case("CN"))
    {
        let as_dns = [SanEntry::Dns(cn.value.to_ascii_lowercase())];
        for nc in &c.issuer.name_constraints {
            if let Some(reason) = violates_name_constraints(&c.tbs.subject, &as_dns, nc) {
                out.add(format!(
                    "the certificate could authenticate a TLS server and has no dNSName, so \
                     GnuTLS and NSS check its commonName as one: {reason}"
                ));
            }
        }
    }
}

/// CA/B BR 7.1.4.3: every commonName is one of the subjectAltNames (when the
/// profile asks for it).
fn subject_cn_in_san(c: &Cert<'_>, out: &mut Findings<'_>) {
    for cn in crate::name::values(&c.tbs.subject, "CN") {
        let cn_l = cn.to_ascii_lowercase();
        let found = c.sans.iter().any(|s| match s {
            SanEntry::Dns(d) => *d == cn_l,
            SanEntry::Ip(ip) => ip.to_string() == cn,
            _ => false,
        });
        if !found {
            out.add(format!(
                "commonName `{cn}` is not one of the subjectAltNames"
            ));
        }
    }
}

/// CA/B BR 6.3.2: a TLS subscriber certificate is valid for at most the days
/// [`TLS_VALIDITY`] allows on its notBefore (398, then 200, 100 and 47).
fn cabf_validity_schedule(c: &Cert<'_>, out: &mut Findings<'_>) {
    let most = TLS_VALIDITY.max_days(c.not_before);
    if c.days > f64::from(most) {
        out.add(format!(
            "validity of {:.1} days exceeds the {most} days allowed from {}",
            c.days,
            crate::time::rfc3339(c.not_before)
        ));
    }
}

/// CA/B BR 7.1.2.7.12: subjectAltName is present.
fn cabf_san_present(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.sans.is_empty() {
        out.add("subjectAltName is required");
    }
}

/// CA/B BR 7.1.2.7.12: no dNSName is an Internal Name.
fn cabf_san_internal_name(c: &Cert<'_>, out: &mut Findings<'_>) {
    for s in &c.sans {
        if let SanEntry::Dns(d) = s {
            if d.ends_with(".local")
                || d.ends_with(".internal")
                || d == "localhost"
                || !d.contains('.')
            {
                out.add(format!("`{d}` is an internal name"));
            }
        }
    }
}

/// CA/B BR 7.1.2.7.12: no iPAddress is a Reserved IP Address.
fn cabf_san_reserved_ip(c: &Cert<'_>, out: &mut Findings<'_>) {
    for s in &c.sans {
        if let SanEntry::Ip(ip) = s {
            let reserved = match ip {
                std::net::IpAddr::V4(v4) => {
                    v4.is_private() || v4.is_loopback() || v4.is_link_local()
                }
                std::net::IpAddr::V6(v6) => v6.is_loopback(),
            };
            if reserved {
                out.add(format!("{ip} is a reserved address"));
            }
        }
    }
}

/// CA/B BR 7.1.2.7.12: subjectAltName holds only dNSName and iPAddress.
fn cabf_san_type(c: &Cert<'_>, out: &mut Findings<'_>) {
    for s in &c.sans {
        if !matches!(s, SanEntry::Dns(_) | SanEntry::Ip(_)) {
            out.add(format!("{s} is not allowed in a TLS server certificate"));
        }
    }
}

/// CA/B BR 7.1.2.7.10: extendedKeyUsage has serverAuth and not anyExtendedKeyUsage.
fn cabf_eku_server_auth(c: &Cert<'_>, out: &mut Findings<'_>) {
    let ok = c
        .ext
        .eku
        .as_ref()
        .is_some_and(|(_, e)| e.0.contains(&EKU_SERVER_AUTH) && !e.0.contains(&EKU_ANY));
    if !ok {
        out.add("extendedKeyUsage must contain serverAuth and not anyExtendedKeyUsage");
    }
}

/// CA/B BR 7.1.2.7.4: no organizationalUnitName in the subject.
fn cabf_subject_no_ou(c: &Cert<'_>, out: &mut Findings<'_>) {
    if !crate::name::values(&c.tbs.subject, "OU").is_empty() {
        out.add("organizationalUnitName is prohibited (BR 7.1.2.7.4)");
    }
}

/// CA/B BR 6.1.5: the key is RSA ≥ 2048 or ECDSA P-256/P-384 (the key types gpki
/// decodes).
fn cabf_key_type(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.key_type.is_err() {
        out.add("key must be RSA ≥ 2048 or ECDSA P-256/P-384");
    }
}

/// A maximum validity that changes on set dates.
#[derive(Debug, Clone, Copy)]
pub struct ValiditySchedule {
    /// `(from, days)`, oldest first: from Unix second `from` on, at most `days`.
    /// The first step's `from` is `i64::MIN`.
    pub steps: &'static [(i64, u32)],
}

impl ValiditySchedule {
    /// The longest validity, in days, of a certificate whose notBefore is
    /// `not_before` (Unix seconds).
    pub fn max_days(&self, not_before: i64) -> u32 {
        self.steps
            .iter()
            .take_while(|(from, _)| *from <= not_before)
            .last()
            .map_or(0, |(_, days)| *days)
    }
}

/// CA/B BR 6.3.2 as amended by ballot SC-081: the longest validity of a TLS
/// subscriber certificate, by its notBefore. The planner caps g-ssl validity with
/// it and rule `cabf.validity.schedule` checks it.
pub const TLS_VALIDITY: ValiditySchedule = ValiditySchedule {
    steps: &[
        (i64::MIN, 398),
        (1_773_532_800, 200), // 2026-03-15T00:00:00Z
        (1_805_068_800, 100), // 2027-03-15T00:00:00Z
        (1_868_227_200, 47),  // 2029-03-15T00:00:00Z
    ],
};

/// Checks a subject and its SANs against one NameConstraints value. Returns why it
/// does not fit, if it does not.
pub fn violates_name_constraints(
    subject: &x509_cert::name::Name,
    sans: &[SanEntry],
    nc: &NameConstraints,
) -> Option<String> {
    let subject_text = crate::name::to_string(subject);
    let dn_bases = |trees: &Option<
        Vec<x509_cert::ext::pkix::constraints::name::GeneralSubtree>,
    >|
     -> Vec<x509_cert::name::Name> {
        trees
            .iter()
            .flatten()
            .filter_map(|t| match &t.base {
                GeneralName::DirectoryName(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    };
    let dns_bases = |trees: &Option<
        Vec<x509_cert::ext::pkix::constraints::name::GeneralSubtree>,
    >|
     -> Vec<String> {
        trees
            .iter()
            .flatten()
            .filter_map(|t| match &t.base {
                GeneralName::DnsName(n) => Some(n.to_string().to_ascii_lowercase()),
                _ => None,
            })
            .collect()
    };
    let permitted_dn = dn_bases(&nc.permitted_subtrees);
    let excluded_dn = dn_bases(&nc.excluded_subtrees);
    if !permitted_dn.is_empty()
        && !permitted_dn
            .iter()
            .any(|b| crate::name::within_subtree(subject, b))
    {
        return Some(format!(
            "subject `{subject_text}` is outside the CA's permitted directory names"
        ));
    }
    if let Some(b) = excluded_dn
        .iter()
        .find(|b| crate::name::within_subtree(subject, b))
    {
        return Some(format!(
            "subject `{subject_text}` is inside the excluded subtree `{}`",
            crate::name::to_string(b)
        ));
    }
    let permitted_dns = dns_bases(&nc.permitted_subtrees);
    let excluded_dns = dns_bases(&nc.excluded_subtrees);
    for s in sans {
        if let SanEntry::Dns(host) = s {
            if !permitted_dns.is_empty() && !permitted_dns.iter().any(|b| dns_within(host, b)) {
                return Some(format!(
                    "dNSName `{host}` is outside the CA's permitted DNS names"
                ));
            }
            if let Some(b) = excluded_dns.iter().find(|b| dns_within(host, b)) {
                return Some(format!(
                    "dNSName `{host}` is inside the excluded DNS subtree `{b}`"
                ));
            }
        }
    }
    None
}

/// RFC 5280 §4.2.1.10: a host is within `base` when it equals it or ends with
/// `.base` (label boundary).
fn dns_within(host: &str, base: &str) -> bool {
    let base = base.trim_start_matches('.');
    host == base || host.ends_with(&format!(".{base}"))
}

/// Decodes a NameConstraints extension value (for an issuer chain).
pub fn name_constraints_of(tbs: &TbsCertificate) -> Result<Option<NameConstraints>> {
    for ext in tbs.extensions.iter().flatten() {
        if ext.extn_id == const_oid::db::rfc5280::ID_CE_NAME_CONSTRAINTS {
            return NameConstraints::from_der(ext.extn_value.as_bytes())
                .map(Some)
                .map_err(|e| Error::malformed(format!("nameConstraints: {e}")));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_constraint_respects_label_boundaries() {
        assert!(dns_within("www.mois.go.kr", "go.kr"));
        assert!(dns_within("go.kr", "go.kr"));
        assert!(!dns_within("evilgo.kr", "go.kr"));
        assert!(dns_within("a.go.kr", ".go.kr"));
    }

    /// A certificate planned by a test CA under a built-in profile, with what `lint`
    /// takes besides it.
    fn planned(
        profile: &str,
        subject: &str,
        sans: &[&str],
    ) -> (TbsCertificate, Profile, IssuerContext) {
        use crate::signer::{Signer, SoftwareKey};
        let ca = SoftwareKey::generate(KeyType::EcP256).unwrap();
        let ca_spki = crate::signer::spki_from_der(ca.public_key_der()).unwrap();
        let now = crate::time::now();
        let url = |path: &str| Some(format!("http://pki.example.go.kr/{path}"));
        let issuer = IssuerContext {
            name: crate::name::parse("CN=Test CA, O=Government of Korea, C=KR").unwrap(),
            key_id: crate::cert::key_identifier(&ca_spki),
            spki_der: ca.public_key_der().to_vec(),
            not_before: now - 86_400,
            not_after: now + 3_650 * 86_400,
            signature_algorithm: ca.algorithm(),
            urls: crate::cert::CaUrls {
                crl: url("ca.crl"),
                ocsp: url("ocsp"),
                ca_issuers: url("ca.crt"),
            },
            name_constraints: Vec::new(),
            path_len: None,
        };
        let profile = crate::profile::Profiles::builtin()
            .unwrap()
            .get(profile)
            .unwrap()
            .clone();
        let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
        let request = crate::cert::SubjectRequest {
            subject: crate::name::parse(subject).unwrap(),
            spki_der: key.public_key_der().to_vec(),
            sans: sans.iter().map(|s| s.parse().unwrap()).collect(),
            validity_days: None,
            path_len: None,
            name_constraints: None,
            check_template: false,
        };
        let serial = crate::serial::SerialNumber::random().unwrap();
        let linted = crate::cert::prepare(&profile, &issuer, &request, serial, now).unwrap();
        (linted.tbs().clone(), profile, issuer)
    }

    #[test]
    fn rules_have_distinct_names_and_sources() {
        let mut names = std::collections::HashSet::new();
        for rule in Rule::ALL {
            assert!(
                !rule.name().is_empty() && !rule.source().is_empty(),
                "{rule:?}"
            );
            assert!(names.insert(rule.name()), "{} named twice", rule.name());
        }
    }

    #[test]
    fn findings_name_typed_rules() {
        let (mut tbs, profile, issuer) = planned(
            "server",
            "O=Test, L=Seoul, C=KR",
            &["dns:www.example.go.kr"],
        );
        assert_eq!(lint(&tbs, &profile, &issuer), []);

        tbs.serial_number = x509_cert::serial_number::SerialNumber::new(&[1]).unwrap();
        let findings = lint(&tbs, &profile, &issuer);
        assert_eq!(
            findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
            [Rule::SerialEntropy]
        );
        assert_eq!(
            serde_json::to_value(&findings[0]).unwrap(),
            serde_json::json!({
                "rule": "gpki.serial.entropy",
                "message": "serial number has fewer than 64 bits",
            })
        );
        assert_eq!(
            check(&tbs, &profile, &issuer).unwrap_err().detail,
            "certificate refused by lint: [gpki.serial.entropy] serial number has fewer than 64 bits"
        );

        // An undecodable extension: the rules before decoding still report.
        let ku = tbs
            .extensions
            .iter_mut()
            .flatten()
            .find(|e| e.extn_id == ID_CE_KEY_USAGE)
            .unwrap();
        ku.extn_value = der::asn1::OctetString::new(vec![0xff]).unwrap();
        let rules: Vec<_> = lint(&tbs, &profile, &issuer)
            .into_iter()
            .map(|f| f.rule)
            .collect();
        assert_eq!(rules, [Rule::SerialEntropy, Rule::Decodable]);
    }

    #[test]
    fn the_tls_validity_schedule_steps_on_its_dates() {
        let day = 86_400;
        let mar_15_2026 = 1_773_532_800;
        assert_eq!(TLS_VALIDITY.max_days(i64::MIN), 398);
        assert_eq!(TLS_VALIDITY.max_days(mar_15_2026 - 1), 398);
        assert_eq!(TLS_VALIDITY.max_days(mar_15_2026), 200);
        assert_eq!(TLS_VALIDITY.max_days(mar_15_2026 + 365 * day - 1), 200);
        assert_eq!(TLS_VALIDITY.max_days(1_805_068_800), 100);
        assert_eq!(TLS_VALIDITY.max_days(1_868_227_200), 47);
        assert_eq!(TLS_VALIDITY.max_days(i64::MAX), 47);
    }

    #[test]
    fn tls_validity_is_judged_by_the_schedule_not_by_398_days() {
        let (mut tbs, mut profile, issuer) = planned(
            "server",
            "O=Test, L=Seoul, C=KR",
            &["dns:www.example.go.kr"],
        );
        // Planned today (after 2026-03-15): inside the 200 days the schedule allows.
        assert_eq!(lint(&tbs, &profile, &issuer), []);
        // A profile written for the old maximum does not widen it.
        profile.spec.validity_days = 397;
        let not_before = crate::time::now();
        assert!(TLS_VALIDITY.max_days(not_before) <= 200);
        // 250 days passed the old 398-day rule; the schedule refuses it.
        tbs.validity.not_before = crate::time::x509_time(not_before).unwrap();
        tbs.validity.not_after = crate::time::x509_time(not_before + 250 * 86_400).unwrap();
        let findings = lint(&tbs, &profile, &issuer);
        assert_eq!(
            findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
            [Rule::CabfValiditySchedule],
            "{findings:?}"
        );
    }
}
