//! The rules of the IETF's certificate profile, RFC 5280 (`rfc5280.*`), and of the
//! RFC 3161 timestamp authority's certificate (`rfc3161.*`). Every one of them
//! holds whenever the certificate was made, so none has an effective date.

use x509_cert::ext::pkix::KeyUsages;

use super::{violates_name_constraints, Cert, Facts, Findings, CA, DECODED, END_ENTITY, EVERY};
use crate::profile::{
    EKU_CLIENT_AUTH, EKU_EMAIL, EKU_OCSP_SIGNING, EKU_SERVER_AUTH, EKU_TIME_STAMPING,
};

/// RFC 5280 §4.1.2.2: the serial number is positive.
pub(super) const SERIAL_NONZERO: Facts = Facts {
    name: "rfc5280.serial.nonzero",
    source: "RFC 5280 §4.1.2.2",
    scope: EVERY,
    effective: None,
    check: serial_nonzero,
};

fn serial_nonzero(c: &Cert<'_>, out: &mut Findings<'_>) {
    let serial = c.tbs.serial_number.as_bytes();
    if serial.is_empty() || serial.iter().all(|b| *b == 0) {
        out.add("serial number is zero");
    }
}

/// RFC 5280 §4.1.2.2: the serial number is at most 20 octets.
pub(super) const SERIAL_LENGTH: Facts = Facts {
    name: "rfc5280.serial.length",
    source: "RFC 5280 §4.1.2.2",
    scope: EVERY,
    effective: None,
    check: serial_length,
};

fn serial_length(c: &Cert<'_>, out: &mut Findings<'_>) {
    let len = c.tbs.serial_number.as_bytes().len();
    if len > 20 {
        out.add(format!("serial number is {len} octets (max 20)"));
    }
}

/// RFC 5280 §4.1.2.5: notAfter comes after notBefore.
pub(super) const VALIDITY_ORDER: Facts = Facts {
    name: "rfc5280.validity.order",
    source: "RFC 5280 §4.1.2.5",
    scope: EVERY,
    effective: None,
    check: validity_order,
};

fn validity_order(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.not_after <= c.not_before {
        out.add("notAfter is not after notBefore");
    }
}

/// RFC 5280 §4.1.2.5, §6.1.3: the validity lies within the issuing CA's.
pub(super) const VALIDITY_WITHIN_ISSUER: Facts = Facts {
    name: "rfc5280.validity.within-issuer",
    source: "RFC 5280 §4.1.2.5, §6.1.3",
    scope: EVERY,
    effective: None,
    check: validity_within_issuer,
};

fn validity_within_issuer(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.not_before < c.issuer.not_before || c.not_after > c.issuer.not_after {
        out.add("validity extends outside the issuing CA's");
    }
}

/// RFC 5280 §4.1.2.6: the subject is not empty (gpki puts no names in SAN only).
pub(super) const SUBJECT_EMPTY: Facts = Facts {
    name: "rfc5280.subject.empty",
    source: "RFC 5280 §4.1.2.6",
    scope: EVERY,
    effective: None,
    check: subject_empty,
};

fn subject_empty(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.tbs.subject.0.is_empty() {
        out.add("subject is empty");
    }
}

/// RFC 5280 §4.1.2.4: the issuer is not empty.
pub(super) const ISSUER_EMPTY: Facts = Facts {
    name: "rfc5280.issuer.empty",
    source: "RFC 5280 §4.1.2.4",
    scope: EVERY,
    effective: None,
    check: issuer_empty,
};

fn issuer_empty(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.tbs.issuer.0.is_empty() {
        out.add("issuer is empty");
    }
}

/// RFC 5280 §4.2: an extension appears at most once.
pub(super) const EXTENSIONS_UNIQUE: Facts = Facts {
    name: "rfc5280.extensions.unique",
    source: "RFC 5280 §4.2",
    scope: EVERY,
    effective: None,
    check: extensions_unique,
};

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

/// RFC 5280 §4.1, §4.2: the SPKI and the extensions the lints read decode. It
/// runs on every certificate and reports only when decoding failed; the rules that
/// read the decoded extensions then do not run (their scopes need them).
pub(super) const DECODABLE: Facts = Facts {
    name: "rfc5280.decodable",
    source: "RFC 5280 §4.1, §4.2",
    scope: EVERY,
    effective: None,
    check: decodable,
};

fn decodable(c: &Cert<'_>, out: &mut Findings<'_>) {
    if let Some(detail) = &c.undecodable {
        out.add(detail.clone());
    }
}

/// RFC 5280 §4.2.1.9: basicConstraints is critical in a CA certificate.
pub(super) const CA_BASIC_CONSTRAINTS_CRITICAL: Facts = Facts {
    name: "rfc5280.ca.basic-constraints-critical",
    source: "RFC 5280 §4.2.1.9",
    scope: CA,
    effective: None,
    check: ca_basic_constraints_critical,
};

fn ca_basic_constraints_critical(c: &Cert<'_>, out: &mut Findings<'_>) {
    if !c.ext.bc.as_ref().is_some_and(|(critical, _)| *critical) {
        out.add("basicConstraints must be critical in a CA certificate");
    }
}

/// RFC 5280 §4.2.1.3: a CA certificate asserts keyCertSign.
pub(super) const CA_KEY_CERT_SIGN: Facts = Facts {
    name: "rfc5280.ca.key-cert-sign",
    source: "RFC 5280 §4.2.1.3",
    scope: CA,
    effective: None,
    check: ca_key_cert_sign,
};

fn ca_key_cert_sign(c: &Cert<'_>, out: &mut Findings<'_>) {
    if !c.usages.contains(KeyUsages::KeyCertSign) {
        out.add("a CA certificate needs keyCertSign");
    }
}

/// RFC 5280 §4.2.1.2: a CA certificate has a subjectKeyIdentifier.
pub(super) const CA_SUBJECT_KEY_IDENTIFIER: Facts = Facts {
    name: "rfc5280.ca.subject-key-identifier",
    source: "RFC 5280 §4.2.1.2",
    scope: CA,
    effective: None,
    check: ca_subject_key_identifier,
};

fn ca_subject_key_identifier(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.ext.ski.is_none() {
        out.add("a CA certificate needs a subjectKeyIdentifier");
    }
}

/// RFC 5280 §4.2.1.9: the issuer's own pathLenConstraint bounds the CA certificates
/// it signs (self-issued ones excepted).
pub(super) const CA_PATH_LENGTH: Facts = Facts {
    name: "rfc5280.ca.path-length",
    source: "RFC 5280 §4.2.1.9",
    scope: CA,
    effective: None,
    check: ca_path_length,
};

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
pub(super) const EE_NO_CERT_SIGN: Facts = Facts {
    name: "rfc5280.ee.no-cert-sign",
    source: "RFC 5280 §4.2.1.3",
    scope: END_ENTITY,
    effective: None,
    check: ee_no_cert_sign,
};

fn ee_no_cert_sign(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.usages.contains(KeyUsages::KeyCertSign) || c.usages.contains(KeyUsages::CRLSign) {
        out.add("an end-entity certificate must not have keyCertSign or cRLSign");
    }
}

/// RFC 5280 §4.2.1.9: pathLenConstraint only with cA.
pub(super) const EE_PATH_LENGTH: Facts = Facts {
    name: "rfc5280.ee.path-length",
    source: "RFC 5280 §4.2.1.9",
    scope: END_ENTITY,
    effective: None,
    check: ee_path_length,
};

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
pub(super) const KEY_USAGE_PRESENT: Facts = Facts {
    name: "rfc5280.key-usage.present",
    source: "RFC 5280 §4.2.1.3",
    scope: DECODED,
    effective: None,
    check: key_usage_present,
};

fn key_usage_present(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.ext.ku.is_none() {
        out.add("keyUsage is missing");
    }
}

/// RFC 5280 §4.2.1.3: a keyUsage asserts at least one bit.
pub(super) const KEY_USAGE_NONEMPTY: Facts = Facts {
    name: "rfc5280.key-usage.nonempty",
    source: "RFC 5280 §4.2.1.3",
    scope: DECODED,
    effective: None,
    check: key_usage_nonempty,
};

fn key_usage_nonempty(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.ext.ku.as_ref().is_some_and(|(_, k)| k.0.is_empty()) {
        out.add("keyUsage has no bit set");
    }
}

/// RFC 5280 §4.2.1.1: a certificate that is not self-issued carries
/// authorityKeyIdentifier with keyIdentifier.
pub(super) const AUTHORITY_KEY_IDENTIFIER: Facts = Facts {
    name: "rfc5280.authority-key-identifier",
    source: "RFC 5280 §4.2.1.1",
    scope: DECODED,
    effective: None,
    check: authority_key_identifier,
};

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
pub(super) const AUTHORITY_KEY_IDENTIFIER_MATCH: Facts = Facts {
    name: "rfc5280.authority-key-identifier.match",
    source: "RFC 5280 §4.2.1.1",
    scope: DECODED,
    effective: None,
    check: authority_key_identifier_match,
};

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

/// RFC 5280 §4.2.1.12: keyUsage permits every extended key usage.
pub(super) const KEY_USAGE_EKU_CONSISTENT: Facts = Facts {
    name: "rfc5280.key-usage.eku-consistent",
    source: "RFC 5280 §4.2.1.12",
    scope: DECODED,
    effective: None,
    check: key_usage_eku_consistent,
};

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
pub(super) const RFC3161_EKU: Facts = Facts {
    name: "rfc3161.eku",
    source: "RFC 3161 §2.3",
    scope: DECODED,
    effective: None,
    check: rfc3161_eku,
};

fn rfc3161_eku(c: &Cert<'_>, out: &mut Findings<'_>) {
    let Some((critical, eku)) = &c.ext.eku else {
        return;
    };
    if eku.0.contains(&EKU_TIME_STAMPING) && (eku.0.len() != 1 || !critical) {
        out.add("a TSA certificate has exactly one, critical, extendedKeyUsage: timeStamping");
    }
}

/// RFC 5280 §4.2.1.10: subject and subjectAltNames fit the name constraints of every
/// CA above.
pub(super) const NAME_CONSTRAINTS: Facts = Facts {
    name: "rfc5280.name-constraints",
    source: "RFC 5280 §4.2.1.10",
    scope: DECODED,
    effective: None,
    check: name_constraints,
};

fn name_constraints(c: &Cert<'_>, out: &mut Findings<'_>) {
    for nc in &c.issuer.name_constraints {
        if let Some(reason) = violates_name_constraints(&c.tbs.subject, &c.sans, nc) {
            out.add(reason);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_KEY_USAGE, ID_CE_SUBJECT_KEY_IDENTIFIER,
    };
    use der::Decode;
    use flagset::FlagSet;
    use x509_cert::ext::pkix::{
        AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsages,
    };
    use x509_cert::serial_number::SerialNumber;

    use crate::lint::sample::{self, serial, Case, Sample};
    use crate::lint::Rule;
    use crate::profile::EKU_TIME_STAMPING;

    /// For every rule of the family, a certificate that passes it and one that
    /// fails it, in the order the rules run.
    pub(in crate::lint) fn cases() -> Vec<Case> {
        vec![
            Case {
                rule: Rule::SerialNonzero,
                pass: sample::server,
                // A zero serial keeps one octet, so it is also short of 64 bits.
                fail: || sample::server().with(|s| s.tbs.serial_number = serial(&[0])),
                found: &[Rule::SerialNonzero, Rule::SerialEntropy],
                says: "serial number is zero",
            },
            Case {
                rule: Rule::SerialLength,
                pass: || sample::server().with(|s| s.tbs.serial_number = serial(&[0x7f; 20])),
                fail: || sample::server().with(|s| s.tbs.serial_number = serial_of_21_octets()),
                found: &[Rule::SerialLength],
                says: "serial number is 21 octets (max 20)",
            },
            Case {
                rule: Rule::ValidityOrder,
                pass: sample::server,
                fail: || {
                    sample::server().with(|s| s.tbs.validity.not_after = s.tbs.validity.not_before)
                },
                found: &[Rule::ValidityOrder],
                says: "notAfter is not after notBefore",
            },
            Case {
                rule: Rule::ValidityWithinIssuer,
                pass: sample::server,
                fail: || {
                    sample::server().with(|s| {
                        s.issuer.not_after =
                            crate::time::unix_seconds(&s.tbs.validity.not_after) - 1
                    })
                },
                found: &[Rule::ValidityWithinIssuer],
                says: "validity extends outside the issuing CA's",
            },
            Case {
                rule: Rule::SubjectEmpty,
                pass: sample::server,
                fail: || sample::server().with(|s| s.tbs.subject = Default::default()),
                found: &[Rule::SubjectEmpty],
                says: "subject is empty",
            },
            Case {
                rule: Rule::IssuerEmpty,
                pass: sample::server,
                fail: || sample::server().with(|s| s.tbs.issuer = Default::default()),
                found: &[Rule::IssuerEmpty],
                says: "issuer is empty",
            },
            Case {
                rule: Rule::ExtensionsUnique,
                pass: sample::server,
                fail: || sample::server().with(repeat_first_extension),
                found: &[Rule::ExtensionsUnique],
                says: "an extension appears twice",
            },
            Case {
                rule: Rule::Decodable,
                pass: sample::server,
                fail: || sample::server().with(|s| spoil_extension(s, ID_CE_KEY_USAGE)),
                found: &[Rule::Decodable],
                says: "extension 2.5.29.15",
            },
            Case {
                rule: Rule::CaBasicConstraintsCritical,
                pass: sample::sub_ca,
                fail: || sample::sub_ca().with_extension(&ca_constraints(Some(0)), false),
                found: &[Rule::CaBasicConstraintsCritical],
                says: "basicConstraints must be critical in a CA certificate",
            },
            Case {
                rule: Rule::CaKeyCertSign,
                pass: sample::sub_ca,
                fail: || sample::sub_ca().with_key_usage(KeyUsages::CRLSign),
                found: &[Rule::CaKeyCertSign],
                says: "a CA certificate needs keyCertSign",
            },
            Case {
                rule: Rule::CaSubjectKeyIdentifier,
                pass: sample::sub_ca,
                fail: || sample::sub_ca().without_extension(ID_CE_SUBJECT_KEY_IDENTIFIER),
                found: &[Rule::CaSubjectKeyIdentifier],
                says: "a CA certificate needs a subjectKeyIdentifier",
            },
            Case {
                rule: Rule::CaPathLength,
                // pathLenConstraint 0 under an issuer's 1.
                pass: || sample::sub_ca().with(|s| s.issuer.path_len = Some(1)),
                // pathLenConstraint 1 under an issuer's 1.
                fail: || {
                    sample::sub_ca()
                        .with(|s| s.issuer.path_len = Some(1))
                        .with_extension(&ca_constraints(Some(1)), true)
                },
                found: &[Rule::CaPathLength],
                says: "path length must be less than the issuing CA's",
            },
            Case {
                rule: Rule::EeNoCertSign,
                pass: sample::server,
                fail: || {
                    sample::server()
                        .with_key_usage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign)
                },
                found: &[Rule::EeNoCertSign],
                says: "an end-entity certificate must not have keyCertSign or cRLSign",
            },
            Case {
                rule: Rule::EePathLength,
                pass: || sample::server().with_extension(&ee_constraints(None), true),
                fail: || sample::server().with_extension(&ee_constraints(Some(0)), true),
                found: &[Rule::EePathLength],
                says: "pathLenConstraint without cA",
            },
            Case {
                rule: Rule::KeyUsagePresent,
                pass: sample::tsa,
                // Without keyUsage, nothing permits the extended key usage either.
                fail: || sample::tsa().without_extension(ID_CE_KEY_USAGE),
                found: &[Rule::KeyUsagePresent, Rule::KeyUsageEkuConsistent],
                says: "keyUsage is missing",
            },
            Case {
                rule: Rule::KeyUsageNonempty,
                pass: sample::tsa,
                // An empty keyUsage permits no extended key usage either.
                fail: || sample::tsa().with_key_usage(FlagSet::default()),
                found: &[Rule::KeyUsageNonempty, Rule::KeyUsageEkuConsistent],
                says: "keyUsage has no bit set",
            },
            Case {
                rule: Rule::AuthorityKeyIdentifier,
                pass: sample::server,
                fail: || sample::server().without_extension(ID_CE_AUTHORITY_KEY_IDENTIFIER),
                found: &[Rule::AuthorityKeyIdentifier],
                says: "authorityKeyIdentifier keyIdentifier is missing",
            },
            Case {
                rule: Rule::AuthorityKeyIdentifierMatch,
                pass: sample::server,
                fail: || sample::server().with_extension(&authority_key_id(&[0x42; 20]), false),
                found: &[Rule::AuthorityKeyIdentifierMatch],
                says: "authorityKeyIdentifier does not match the issuer's key",
            },
            Case {
                rule: Rule::KeyUsageEkuConsistent,
                pass: sample::tsa,
                fail: || sample::tsa().with_key_usage(KeyUsages::KeyAgreement),
                found: &[Rule::KeyUsageEkuConsistent],
                says: "keyUsage does not permit extended key usage 1.3.6.1.5.5.7.3.8",
            },
            Case {
                rule: Rule::Rfc3161Eku,
                pass: sample::tsa,
                fail: || {
                    sample::tsa().with_extension(&ExtendedKeyUsage(vec![EKU_TIME_STAMPING]), false)
                },
                found: &[Rule::Rfc3161Eku],
                says: "a TSA certificate has exactly one, critical, extendedKeyUsage: timeStamping",
            },
            Case {
                rule: Rule::NameConstraints,
                pass: || sample::server().permitting_dns("example.go.kr"),
                fail: || sample::server().permitting_dns("other.go.kr"),
                found: &[Rule::NameConstraints],
                says: "dNSName `www.example.go.kr` is outside the CA's permitted DNS names",
            },
        ]
    }

    #[test]
    fn each_rule_passes_and_fails() {
        sample::check_cases(&cases());
    }

    /// A positive serial of 20 value octets whose high bit is set: DER needs a
    /// 21st, a leading zero, to keep it positive. x509-cert encodes no such serial
    /// (it caps a new one at 20 octets) but decodes one (it permits 21, as some
    /// CAs read the limit as one on the value), so the test decodes it.
    fn serial_of_21_octets() -> SerialNumber {
        let mut der = vec![0x02, 21, 0x00];
        der.extend([0x80; 20]);
        SerialNumber::from_der(&der).unwrap()
    }

    /// Adds a second copy of the certificate's first extension.
    fn repeat_first_extension(s: &mut Sample) {
        let list = s.tbs.extensions.as_mut().unwrap();
        list.push(list[0].clone());
    }

    /// Makes the value of extension `oid` undecodable DER.
    fn spoil_extension(s: &mut Sample, oid: const_oid::ObjectIdentifier) {
        let ext = s
            .tbs
            .extensions
            .iter_mut()
            .flatten()
            .find(|e| e.extn_id == oid)
            .unwrap();
        ext.extn_value = der::asn1::OctetString::new(vec![0xff]).unwrap();
    }

    fn ca_constraints(path_len: Option<u8>) -> BasicConstraints {
        BasicConstraints {
            ca: true,
            path_len_constraint: path_len,
        }
    }

    fn ee_constraints(path_len: Option<u8>) -> BasicConstraints {
        BasicConstraints {
            ca: false,
            path_len_constraint: path_len,
        }
    }

    fn authority_key_id(id: &[u8]) -> AuthorityKeyIdentifier {
        AuthorityKeyIdentifier {
            key_identifier: Some(der::asn1::OctetString::new(id).unwrap()),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        }
    }

    /// The other refusal of `rfc5280.ca.path-length`: an issuer whose
    /// pathLenConstraint is 0 signs no CA certificate but a self-issued one.
    #[test]
    fn an_issuer_with_path_length_zero_signs_no_ca() {
        let under_zero = || sample::sub_ca().with(|s| s.issuer.path_len = Some(0));
        let findings = under_zero().findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            findings[0].message,
            "the issuing CA's pathLenConstraint 0 forbids signing CA certificates"
        );
        let self_issued = under_zero().with(|s| s.tbs.issuer = s.tbs.subject.clone());
        assert_eq!(self_issued.rules(), []);
    }
}
