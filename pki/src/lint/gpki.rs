//! gpki's own rules (`gpki.*`): what its profiles promise beyond the RFCs and the
//! Baseline Requirements (serial entropy, validity and key types as the profile
//! says), key usages that make no sense for the key's algorithm (RFC 5480, RFC
//! 3279), and the name constraints other verifiers apply. gpki's profile rules
//! hold from the start, so none has an effective date.

use x509_cert::ext::pkix::KeyUsages;

use super::{violates_name_constraints, Cert, Facts, Findings, DECODED, EVERY};
use crate::cert::SanEntry;
use crate::profile;

/// gpki profile: the serial number carries at least 64 bits.
pub(super) const SERIAL_ENTROPY: Facts = Facts {
    name: "gpki.serial.entropy",
    source: "gpki profile",
    scope: EVERY,
    effective: None,
    check: serial_entropy,
};

fn serial_entropy(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.tbs.serial_number.as_bytes().len() < 8 {
        out.add("serial number has fewer than 64 bits");
    }
}

/// gpki profile: the validity is no longer than the profile's.
pub(super) const VALIDITY_PROFILE: Facts = Facts {
    name: "gpki.validity.profile",
    source: "gpki profile",
    scope: EVERY,
    effective: None,
    check: validity_profile,
};

fn validity_profile(c: &Cert<'_>, out: &mut Findings<'_>) {
    let max = c.profile.spec.validity_days;
    if c.days > f64::from(max) + 0.0001 {
        out.add(format!(
            "validity of {:.1} days exceeds the profile's {max}",
            c.days
        ));
    }
}

/// gpki profile: basicConstraints cA matches the profile kind.
pub(super) const PROFILE_KIND: Facts = Facts {
    name: "gpki.profile.kind",
    source: "gpki profile",
    scope: DECODED,
    effective: None,
    check: profile_kind,
};

fn profile_kind(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.is_ca != c.profile.spec.kind.is_ca() {
        out.add("basicConstraints cA does not match the profile kind");
    }
}

/// RFC 5480 §3: an EC key asserts neither keyEncipherment nor dataEncipherment.
pub(super) const KEY_USAGE_EC_ENCIPHERMENT: Facts = Facts {
    name: "gpki.key-usage.ec-encipherment",
    source: "RFC 5480 §3",
    scope: DECODED,
    effective: None,
    check: key_usage_ec_encipherment,
};

fn key_usage_ec_encipherment(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.key_type.as_ref().is_ok_and(|kt| !kt.is_rsa())
        && (c.usages.contains(KeyUsages::KeyEncipherment)
            || c.usages.contains(KeyUsages::DataEncipherment))
    {
        out.add("keyEncipherment/dataEncipherment on an EC key");
    }
}

/// RFC 3279 §2.3.1: an RSA key does not assert keyAgreement.
pub(super) const KEY_USAGE_RSA_KEY_AGREEMENT: Facts = Facts {
    name: "gpki.key-usage.rsa-key-agreement",
    source: "RFC 3279 §2.3.1",
    scope: DECODED,
    effective: None,
    check: key_usage_rsa_key_agreement,
};

fn key_usage_rsa_key_agreement(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.key_type.as_ref().is_ok_and(|kt| kt.is_rsa()) && c.usages.contains(KeyUsages::KeyAgreement)
    {
        out.add("keyAgreement on an RSA key");
    }
}

/// gpki profile: the key type is one the profile allows.
pub(super) const KEY_TYPE_PROFILE: Facts = Facts {
    name: "gpki.key-type.profile",
    source: "gpki profile",
    scope: DECODED,
    effective: None,
    check: key_type_profile,
};

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
pub(super) const KEY_TYPE_SUPPORTED: Facts = Facts {
    name: "gpki.key-type.supported",
    source: "gpki profile",
    scope: DECODED,
    effective: None,
    check: key_type_supported,
};

fn key_type_supported(c: &Cert<'_>, out: &mut Findings<'_>) {
    if let Err(e) = &c.key_type {
        out.add(e.detail.clone());
    }
}

/// gpki profile: no CA certificate carries anyExtendedKeyUsage.
pub(super) const EKU_ANY: Facts = Facts {
    name: "gpki.eku.any",
    source: "gpki profile",
    scope: DECODED,
    effective: None,
    check: eku_any,
};

fn eku_any(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.is_ca
        && c.ext
            .eku
            .as_ref()
            .is_some_and(|(_, e)| e.0.contains(&profile::EKU_ANY))
    {
        out.add("anyExtendedKeyUsage is not issued");
    }
}

/// gpki profile: GnuTLS and NSS check the commonName of a certificate that could
/// authenticate a TLS server (no EKU, serverAuth or anyExtendedKeyUsage) and has no
/// dNSName against the DNS name constraints above it; so does gpki, so that no
/// relying party refuses what was issued.
pub(super) const NAME_CONSTRAINTS_CN_AS_DNS: Facts = Facts {
    name: "gpki.name-constraints.cn-as-dns",
    source: "gpki profile (as GnuTLS and NSS check)",
    scope: DECODED,
    effective: None,
    check: name_constraints_cn_as_dns,
};

fn name_constraints_cn_as_dns(c: &Cert<'_>, out: &mut Findings<'_>) {
    let server_capable = !c.is_ca
        && c.ext.eku.as_ref().is_none_or(|(_, e)| {
            e.0.contains(&profile::EKU_SERVER_AUTH) || e.0.contains(&profile::EKU_ANY)
        });
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

#[cfg(test)]
pub(super) mod tests {
    use const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE;
    use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsages};

    use crate::lint::sample::{self, serial, Case};
    use crate::lint::Rule;
    use crate::profile::{ProfileKind, EKU_ANY};
    use crate::signer::KeyType;

    /// For every rule of the family, a certificate that passes it and one that
    /// fails it, in the order the rules run.
    pub(in crate::lint) fn cases() -> Vec<Case> {
        vec![
            Case {
                rule: Rule::SerialEntropy,
                pass: || sample::server().with(|s| s.tbs.serial_number = serial(&[0x01; 8])),
                fail: || sample::server().with(|s| s.tbs.serial_number = serial(&[0x01; 7])),
                found: &[Rule::SerialEntropy],
                says: "serial number has fewer than 64 bits",
            },
            Case {
                rule: Rule::ValidityProfile,
                pass: sample::official_sign,
                // The sample is valid for the profile's 730 days.
                fail: || sample::official_sign().with(|s| s.profile.spec.validity_days = 30),
                found: &[Rule::ValidityProfile],
                says: "validity of 730.0 days exceeds the profile's 30",
            },
            Case {
                rule: Rule::ProfileKind,
                pass: sample::server,
                fail: || sample::server().with(|s| s.profile.spec.kind = ProfileKind::SubCa),
                found: &[Rule::ProfileKind],
                says: "basicConstraints cA does not match the profile kind",
            },
            Case {
                rule: Rule::KeyUsageEcEncipherment,
                pass: sample::official_sign,
                fail: || {
                    sample::official_sign()
                        .with_key_usage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment)
                },
                found: &[Rule::KeyUsageEcEncipherment],
                says: "keyEncipherment/dataEncipherment on an EC key",
            },
            Case {
                rule: Rule::KeyUsageRsaKeyAgreement,
                pass: || sample::official_sign_with_key(KeyType::Rsa2048),
                fail: || {
                    sample::official_sign_with_key(KeyType::Rsa2048)
                        .with_key_usage(KeyUsages::DigitalSignature | KeyUsages::KeyAgreement)
                },
                found: &[Rule::KeyUsageRsaKeyAgreement],
                says: "keyAgreement on an RSA key",
            },
            Case {
                rule: Rule::KeyTypeProfile,
                pass: sample::official_sign,
                fail: || {
                    sample::official_sign()
                        .with(|s| s.profile.spec.key_types = vec![KeyType::Rsa2048])
                },
                found: &[Rule::KeyTypeProfile],
                says: "p256 keys are not allowed by profile official-sign",
            },
            Case {
                rule: Rule::KeyTypeSupported,
                pass: sample::official_sign,
                fail: || {
                    sample::official_sign()
                        .with(|s| s.tbs.subject_public_key_info = sample::p521_spki())
                },
                found: &[Rule::KeyTypeSupported],
                says: "EC curve 1.3.132.0.35 is not supported (P-256 or P-384)",
            },
            Case {
                rule: Rule::EkuAny,
                pass: sample::sub_ca,
                fail: || sample::sub_ca().with_extension(&ExtendedKeyUsage(vec![EKU_ANY]), false),
                found: &[Rule::EkuAny],
                says: "anyExtendedKeyUsage is not issued",
            },
            Case {
                rule: Rule::NameConstraintsCnAsDns,
                // Without an EKU the certificate could serve a TLS server, so its
                // commonName is read as a host name: one within the constraint.
                pass: || {
                    server_capable_official()
                        .with_subject(
                            "CN=mail.mois.go.kr, OU=people, OU=MOIS, O=Government of Korea, C=KR",
                        )
                        .permitting_dns("go.kr")
                },
                fail: || server_capable_official().permitting_dns("go.kr"),
                found: &[Rule::NameConstraintsCnAsDns],
                says: "GnuTLS and NSS check its commonName as one: dNSName \
                       `hong gildong(001234567)` is outside the CA's permitted DNS names",
            },
        ]
    }

    #[test]
    fn each_rule_passes_and_fails() {
        sample::check_cases(&cases());
    }

    /// An official's certificate without extendedKeyUsage, which a verifier takes
    /// as fit for a TLS server; it has no dNSName.
    fn server_capable_official() -> sample::Sample {
        sample::official_sign().without_extension(ID_CE_EXT_KEY_USAGE)
    }

    /// `gpki.name-constraints.cn-as-dns` reads only certificates that could serve
    /// a TLS server and have no dNSName: with an EKU that cannot, the same
    /// commonName under the same constraint passes.
    #[test]
    fn a_commonname_is_read_as_a_host_only_where_a_tls_server_could_use_it() {
        assert_eq!(
            server_capable_official().permitting_dns("go.kr").rules(),
            [Rule::NameConstraintsCnAsDns]
        );
        assert_eq!(sample::official_sign().permitting_dns("go.kr").rules(), []);
    }
}
