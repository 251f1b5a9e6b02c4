//! Pre-issuance lints (invariant 3). Every planned certificate runs through these
//! before it is signed; any finding refuses issuance with a message naming the rule.
//! They read the decoded tbsCertificate as it will be signed, not the request.

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER,
};
use der::Decode;
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

/// One lint finding: the rule's name and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub message: String,
}

/// Runs every lint that applies and returns all findings.
pub fn lint(tbs: &TbsCertificate, profile: &Profile, issuer: &IssuerContext) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut f = |rule: &'static str, message: String| out.push(Finding { rule, message });
    if let Err(e) = lint_inner(tbs, profile, issuer, &mut f) {
        f("rfc5280.decodable", e.detail);
    }
    out
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

fn lint_inner(
    tbs: &TbsCertificate,
    profile: &Profile,
    issuer: &IssuerContext,
    f: &mut impl FnMut(&'static str, String),
) -> Result<()> {
    let spki_der = der::Encode::to_der(&tbs.subject_public_key_info)?;
    let key_type = KeyType::of_spki_info(&tbs.subject_public_key_info);

    // RFC 5280 §4.1.2.2: positive, non-zero, at most 20 octets.
    let serial = tbs.serial_number.as_bytes();
    if serial.is_empty() || serial.iter().all(|b| *b == 0) {
        f("rfc5280.serial.nonzero", "serial number is zero".into());
    }
    if serial.len() > 20 {
        f(
            "rfc5280.serial.length",
            format!("serial number is {} octets (max 20)", serial.len()),
        );
    }
    if serial.len() < 8 {
        f(
            "gpki.serial.entropy",
            "serial number has fewer than 64 bits".into(),
        );
    }

    let nb = crate::time::unix_seconds(&tbs.validity.not_before);
    let na = crate::time::unix_seconds(&tbs.validity.not_after);
    if na <= nb {
        f(
            "rfc5280.validity.order",
            "notAfter is not after notBefore".into(),
        );
    }
    if nb < issuer.not_before || na > issuer.not_after {
        f(
            "rfc5280.validity.within-issuer",
            "validity extends outside the issuing CA's".into(),
        );
    }
    let days = (na - nb + 1) as f64 / 86_400.0;
    if days > f64::from(profile.spec.validity_days) + 0.0001 {
        f(
            "gpki.validity.profile",
            format!(
                "validity of {days:.1} days exceeds the profile's {}",
                profile.spec.validity_days
            ),
        );
    }

    if tbs.subject.0.is_empty() {
        f("rfc5280.subject.empty", "subject is empty".into());
    }
    if tbs.issuer.0.is_empty() {
        f("rfc5280.issuer.empty", "issuer is empty".into());
    }

    // RFC 5280 §4.2: an extension appears at most once.
    let exts = tbs.extensions.clone().unwrap_or_default();
    let mut ids: Vec<_> = exts.iter().map(|e| e.extn_id.to_string()).collect();
    ids.sort();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        f(
            "rfc5280.extensions.unique",
            "an extension appears twice".into(),
        );
    }

    let bc = find_extension::<BasicConstraints>(tbs, ID_CE_BASIC_CONSTRAINTS)?;
    let ku = find_extension::<KeyUsage>(tbs, ID_CE_KEY_USAGE)?;
    let eku = find_extension::<ExtendedKeyUsage>(tbs, ID_CE_EXT_KEY_USAGE)?;
    let ski = find_extension::<der::asn1::OctetString>(tbs, ID_CE_SUBJECT_KEY_IDENTIFIER)?;
    let aki = find_extension::<AuthorityKeyIdentifier>(tbs, ID_CE_AUTHORITY_KEY_IDENTIFIER)?;
    let san = find_extension::<SubjectAltName>(tbs, ID_CE_SUBJECT_ALT_NAME)?;
    let is_ca = bc.as_ref().is_some_and(|(_, b)| b.ca);
    let usages = ku.as_ref().map(|(_, k)| k.0).unwrap_or_default();

    if is_ca != profile.spec.kind.is_ca() {
        f(
            "gpki.profile.kind",
            "basicConstraints cA does not match the profile kind".into(),
        );
    }
    if is_ca {
        if !bc.as_ref().is_some_and(|(c, _)| *c) {
            f(
                "rfc5280.ca.basic-constraints-critical",
                "basicConstraints must be critical in a CA certificate".into(),
            );
        }
        if !usages.contains(KeyUsages::KeyCertSign) {
            f(
                "rfc5280.ca.key-cert-sign",
                "a CA certificate needs keyCertSign".into(),
            );
        }
        if ski.is_none() {
            f(
                "rfc5280.ca.subject-key-identifier",
                "a CA certificate needs a subjectKeyIdentifier".into(),
            );
        }
        // The issuer's own pathLenConstraint bounds what it may sign.
        if let (Some(parent), Some((_, b))) = (issuer.path_len, bc.as_ref()) {
            let self_signed = tbs.issuer == tbs.subject;
            if !self_signed && parent == 0 {
                f(
                    "rfc5280.ca.path-length",
                    "the issuing CA's pathLenConstraint 0 forbids signing CA certificates".into(),
                );
            } else if !self_signed && b.path_len_constraint.is_none_or(|p| p >= parent) {
                f(
                    "rfc5280.ca.path-length",
                    "path length must be less than the issuing CA's".into(),
                );
            }
        }
    } else {
        if usages.contains(KeyUsages::KeyCertSign) || usages.contains(KeyUsages::CRLSign) {
            f(
                "rfc5280.ee.no-cert-sign",
                "an end-entity certificate must not have keyCertSign or cRLSign".into(),
            );
        }
        if bc
            .as_ref()
            .is_some_and(|(_, b)| b.path_len_constraint.is_some())
        {
            f(
                "rfc5280.ee.path-length",
                "pathLenConstraint without cA".into(),
            );
        }
    }
    match &ku {
        None => f("rfc5280.key-usage.present", "keyUsage is missing".into()),
        Some((_, k)) if k.0.is_empty() => f(
            "rfc5280.key-usage.nonempty",
            "keyUsage has no bit set".into(),
        ),
        _ => {}
    }
    if tbs.issuer != tbs.subject
        && aki
            .as_ref()
            .and_then(|(_, a)| a.key_identifier.as_ref())
            .is_none()
    {
        f(
            "rfc5280.authority-key-identifier",
            "authorityKeyIdentifier keyIdentifier is missing".into(),
        );
    }
    if let Some((_, a)) = &aki {
        let expected = if tbs.issuer == tbs.subject && spki_der == issuer.spki_der {
            crate::cert::key_identifier(&tbs.subject_public_key_info)
        } else {
            issuer.key_id.clone()
        };
        if a.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(expected.as_slice()) {
            f(
                "rfc5280.authority-key-identifier.match",
                "authorityKeyIdentifier does not match the issuer's key".into(),
            );
        }
    }

    // Key usage against key type: RSA encryption bits on EC keys are meaningless.
    if let Ok(kt) = &key_type {
        if !kt.is_rsa()
            && (usages.contains(KeyUsages::KeyEncipherment)
                || usages.contains(KeyUsages::DataEncipherment))
        {
            f(
                "gpki.key-usage.ec-encipherment",
                "keyEncipherment/dataEncipherment on an EC key".into(),
            );
        }
        if kt.is_rsa() && usages.contains(KeyUsages::KeyAgreement) {
            f(
                "gpki.key-usage.rsa-key-agreement",
                "keyAgreement on an RSA key".into(),
            );
        }
        if profile.allows_key(*kt).is_err() {
            f(
                "gpki.key-type.profile",
                format!("{kt} keys are not allowed by profile {}", profile.name()),
            );
        }
    } else if let Err(e) = &key_type {
        f("gpki.key-type.supported", e.detail.clone());
    }

    // Key usage consistent with extended key usage (RFC 5280 §4.2.1.12).
    if let Some((eku_critical, e)) = &eku {
        let any = |bits: &[KeyUsages]| bits.iter().any(|b| usages.contains(*b));
        for oid in &e.0 {
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
                f(
                    "rfc5280.key-usage.eku-consistent",
                    format!("keyUsage does not permit extended key usage {oid}"),
                );
            }
        }
        if e.0.contains(&EKU_TIME_STAMPING) && (e.0.len() != 1 || !eku_critical) {
            f(
                "rfc3161.eku",
                "a TSA certificate has exactly one, critical, extendedKeyUsage: timeStamping"
                    .into(),
            );
        }
        if is_ca && e.0.contains(&EKU_ANY) {
            f("gpki.eku.any", "anyExtendedKeyUsage is not issued".into());
        }
    }

    // Name constraints of every CA above (RFC 5280 §4.2.1.10).
    let sans: Vec<SanEntry> = match &san {
        Some((_, s)) => {
            s.0.iter()
                .filter_map(|g| SanEntry::from_general_name(g).ok())
                .collect()
        }
        None => Vec::new(),
    };
    for nc in &issuer.name_constraints {
        if let Some(reason) = violates_name_constraints(&tbs.subject, &sans, nc) {
            f("rfc5280.name-constraints", reason);
        }
    }
    // GnuTLS and NSS check the commonName of a certificate that could authenticate a
    // TLS server (no EKU, serverAuth or anyExtendedKeyUsage) and has no dNSName
    // against the DNS name constraints above it; so does gpki, so that no relying
    // party refuses what was issued.
    let server_capable = !is_ca
        && eku
            .as_ref()
            .is_none_or(|(_, e)| e.0.contains(&EKU_SERVER_AUTH) || e.0.contains(&EKU_ANY));
    if server_capable && !sans.iter().any(|s| matches!(s, SanEntry::Dns(_))) {
        for cn in crate::name::attributes(&tbs.subject)
            .into_iter()
            .filter(|a| a.short.eq_ignore_ascii_case("CN"))
        {
            let as_dns = [SanEntry::Dns(cn.value.to_ascii_lowercase())];
            for nc in &issuer.name_constraints {
                if let Some(reason) = violates_name_constraints(&tbs.subject, &as_dns, nc) {
                    f(
                        "gpki.name-constraints.cn-as-dns",
                        format!(
                            "the certificate could authenticate a TLS server and has no dNSName, so \
                             GnuTLS and NSS check its commonName as one: {reason}"
                        ),
                    );
                }
            }
        }
    }

    // SAN rules of the profile, against the subject.
    if profile.spec.san.cn_in_san {
        let cns = crate::name::values(&tbs.subject, "CN");
        for cn in cns {
            let cn_l = cn.to_ascii_lowercase();
            let found = sans.iter().any(|s| match s {
                SanEntry::Dns(d) => *d == cn_l,
                SanEntry::Ip(ip) => ip.to_string() == cn,
                _ => false,
            });
            if !found {
                f(
                    "cabf.subject.cn-in-san",
                    format!("commonName `{cn}` is not one of the subjectAltNames"),
                );
            }
        }
    }

    if profile.has_lint_set("cabf-serverauth") {
        lint_cabf_serverauth(tbs, &sans, &eku, days, key_type.ok(), f);
    }
    Ok(())
}

/// CA/Browser Forum Baseline Requirements for TLS server certificates (subset that a
/// profile cannot guarantee by itself).
fn lint_cabf_serverauth(
    tbs: &TbsCertificate,
    sans: &[SanEntry],
    eku: &Option<(bool, ExtendedKeyUsage)>,
    days: f64,
    key_type: Option<KeyType>,
    f: &mut impl FnMut(&'static str, String),
) {
    // BR 6.3.2: at most 398 days.
    if days > 398.0 {
        f(
            "cabf.validity.398-days",
            format!("validity of {days:.1} days exceeds 398"),
        );
    }
    if sans.is_empty() {
        f("cabf.san.present", "subjectAltName is required".into());
    }
    for s in sans {
        match s {
            SanEntry::Dns(d) => {
                if d.ends_with(".local")
                    || d.ends_with(".internal")
                    || d == "localhost"
                    || !d.contains('.')
                {
                    f(
                        "cabf.san.internal-name",
                        format!("`{d}` is an internal name"),
                    );
                }
            }
            SanEntry::Ip(ip) => {
                let private = match ip {
                    std::net::IpAddr::V4(v4) => {
                        v4.is_private() || v4.is_loopback() || v4.is_link_local()
                    }
                    std::net::IpAddr::V6(v6) => v6.is_loopback(),
                };
                if private {
                    f(
                        "cabf.san.reserved-ip",
                        format!("{ip} is a reserved address"),
                    );
                }
            }
            other => f(
                "cabf.san.type",
                format!("{other} is not allowed in a TLS server certificate"),
            ),
        }
    }
    match eku {
        Some((_, e)) if e.0.contains(&EKU_SERVER_AUTH) && !e.0.contains(&EKU_ANY) => {}
        _ => f(
            "cabf.eku.server-auth",
            "extendedKeyUsage must contain serverAuth and not anyExtendedKeyUsage".into(),
        ),
    }
    if !crate::name::values(&tbs.subject, "OU").is_empty() {
        f(
            "cabf.subject.no-ou",
            "organizationalUnitName is prohibited (BR 7.1.2.7.4)".into(),
        );
    }
    if key_type.is_none() {
        f(
            "cabf.key.type",
            "key must be RSA ≥ 2048 or ECDSA P-256/P-384".into(),
        );
    }
}

/// BR 6.3.2 as amended by ballot SC-081: the longest validity of a TLS subscriber
/// certificate, by its notBefore (Unix seconds).
pub fn cabf_max_validity_days(not_before: i64) -> u32 {
    const MAR_15_2026: i64 = 1_773_532_800;
    const MAR_15_2027: i64 = 1_805_068_800;
    const MAR_15_2029: i64 = 1_868_227_200;
    match not_before {
        t if t < MAR_15_2026 => 398,
        t if t < MAR_15_2027 => 200,
        t if t < MAR_15_2029 => 100,
        _ => 47,
    }
}

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
}
