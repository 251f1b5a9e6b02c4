//! Building certificates: a profile, an issuer and a request become the exact
//! `tbsCertificate` to be recorded, linted and signed; the signature then completes it.
//!
//! Here: what goes in (issuer, request), [`prepare`] and [`sign`]. The extensions
//! are built in `extensions`, subjectAltNames and name constraints are `names`,
//! and reading a certificate back is `read`.

mod extensions;
mod names;
mod read;

pub use names::{name_constraints, SanEntry};
pub use read::{
    ca_facts, decode, find_extension, san_entries, signs, subject_key_id, CaFacts, CA_FACTS_KEPT,
};

use extensions::Extensions;
use names::check_sans;

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, OctetString};
use der::Encode;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::NameConstraints;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::time::Validity;

use crate::error::{Error, Result};
use crate::profile::Profile;
use crate::serial::SerialNumber;
use crate::signer::SignatureAlgorithm;

/// id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1.
pub const ID_PKIX_OCSP_NOCHECK: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");

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
