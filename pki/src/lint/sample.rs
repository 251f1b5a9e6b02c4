//! Sample certificates for the lint tests: clean ones planned under the built-in
//! profiles by `cert::prepare` (so they passed every lint), and the means to spoil
//! them one fault at a time. Each family's `cases()` pairs, for every rule, a
//! certificate that passes it with one that fails it; [`check_cases`] holds them
//! to it.

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::Encode;
use flagset::FlagSet;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages, NameConstraints};
use x509_cert::ext::Extension;

use super::{lint, Cert, Finding, Rule};
use crate::cert::IssuerContext;
use crate::profile::Profile;
use crate::signer::KeyType;

/// A certificate planned by a test CA under a built-in profile, with what `lint`
/// takes besides it.
pub(super) fn planned(
    profile: &str,
    subject: &str,
    sans: &[&str],
) -> (TbsCertificate, Profile, IssuerContext) {
    planned_with_key(profile, subject, sans, KeyType::EcP256)
}

/// [`planned`], for a subject key of `key_type`.
pub(super) fn planned_with_key(
    profile: &str,
    subject: &str,
    sans: &[&str],
    key_type: KeyType,
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
    let key = SoftwareKey::generate(key_type).unwrap();
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

/// A planned certificate and what `lint` takes besides it, to be spoiled by a test.
#[derive(Clone)]
pub(super) struct Sample {
    pub tbs: TbsCertificate,
    pub profile: Profile,
    pub issuer: IssuerContext,
}

impl Sample {
    fn planned(profile: &str, subject: &str, sans: &[&str], key_type: KeyType) -> Sample {
        let (tbs, profile, issuer) = planned_with_key(profile, subject, sans, key_type);
        Sample {
            tbs,
            profile,
            issuer,
        }
    }

    pub fn findings(&self) -> Vec<Finding> {
        lint(&self.tbs, &self.profile, &self.issuer)
    }

    /// The rules that found something, in the order they ran.
    pub fn rules(&self) -> Vec<Rule> {
        self.findings().into_iter().map(|f| f.rule).collect()
    }

    /// The sample changed by `change`.
    pub fn with(mut self, change: impl FnOnce(&mut Sample)) -> Sample {
        change(&mut self);
        self
    }

    /// The sample with extension `value`, in place of any of its type.
    pub fn with_extension<T: Encode + AssociatedOid>(self, value: &T, critical: bool) -> Sample {
        let ext = Extension {
            extn_id: T::OID,
            critical,
            extn_value: der::asn1::OctetString::new(value.to_der().unwrap()).unwrap(),
        };
        self.with(|s| {
            let list = s.tbs.extensions.get_or_insert_with(Vec::new);
            match list.iter_mut().find(|e| e.extn_id == T::OID) {
                Some(old) => *old = ext,
                None => list.push(ext),
            }
        })
    }

    /// The sample without the extension `oid`, which it had.
    pub fn without_extension(self, oid: ObjectIdentifier) -> Sample {
        self.with(|s| {
            let list = s.tbs.extensions.get_or_insert_with(Vec::new);
            let before = list.len();
            list.retain(|e| e.extn_id != oid);
            assert_eq!(list.len() + 1, before, "the sample had no extension {oid}");
        })
    }

    /// The sample with exactly the key usages `usages`.
    pub fn with_key_usage(self, usages: impl Into<FlagSet<KeyUsages>>) -> Sample {
        self.with_extension(&KeyUsage(usages.into()), true)
    }

    /// The sample with exactly the subjectAltNames `sans`, written as the CLI
    /// writes them (`dns:host`, `ip:addr`, `email:a@b`).
    pub fn with_sans(self, sans: &[&str]) -> Sample {
        let names = sans
            .iter()
            .map(|s| {
                s.parse::<crate::cert::SanEntry>()
                    .unwrap()
                    .to_general_name()
                    .unwrap()
            })
            .collect();
        self.with_extension(&x509_cert::ext::pkix::SubjectAltName(names), false)
    }

    /// The sample with the subject `rfc4514`.
    pub fn with_subject(self, rfc4514: &str) -> Sample {
        self.with(|s| s.tbs.subject = crate::name::parse(rfc4514).unwrap())
    }

    /// The sample under issuers whose only name constraint permits the DNS names
    /// within `host`.
    pub fn permitting_dns(self, host: &str) -> Sample {
        self.with(|s| s.issuer.name_constraints = vec![dns_constraint(host)])
    }
}

/// NameConstraints permitting only the DNS names within `host`.
fn dns_constraint(host: &str) -> NameConstraints {
    crate::cert::name_constraints(&[], &[], &[host.to_string()], &[])
        .unwrap()
        .unwrap()
}

/// A serverAuth certificate under the `server` profile, which the CA/B Forum
/// rules judge: subject without CN, one dNSName.
pub(super) fn server() -> Sample {
    Sample::planned(
        "server",
        "O=Test, L=Seoul, C=KR",
        &["dns:www.example.go.kr"],
        KeyType::EcP256,
    )
}

/// A subordinate CA certificate (pathLenConstraint 0, no EKU).
pub(super) fn sub_ca() -> Sample {
    Sample::planned(
        "sub-ca",
        "CN=Test Sub CA, OU=GPKI, O=Government of Korea, C=KR",
        &[],
        KeyType::EcP256,
    )
}

/// An official's signing certificate: EKU clientAuth and emailProtection, no SAN.
pub(super) fn official_sign() -> Sample {
    official_sign_with_key(KeyType::EcP256)
}

/// [`official_sign`] with a key of `key_type`.
pub(super) fn official_sign_with_key(key_type: KeyType) -> Sample {
    Sample::planned(
        "official-sign",
        "CN=Hong Gildong(001234567), OU=people, OU=MOIS, O=Government of Korea, C=KR",
        &[],
        key_type,
    )
}

/// A timestamp authority's certificate: the one critical EKU timeStamping.
pub(super) fn tsa() -> Sample {
    Sample::planned(
        "tsa",
        "CN=Test TSA, OU=GPKI, O=Government of Korea, C=KR",
        &[],
        KeyType::EcP256,
    )
}

/// The SubjectPublicKeyInfo of a key gpki does not take: ECDSA on P-521.
pub(super) fn p521_spki() -> spki::SubjectPublicKeyInfoOwned {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP521R1).unwrap();
    let key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    crate::signer::spki_from_der(&key.public_key_to_der().unwrap()).unwrap()
}

/// A serial number of `bytes` (big-endian, leading zeros dropped).
pub(super) fn serial(bytes: &[u8]) -> x509_cert::serial_number::SerialNumber {
    x509_cert::serial_number::SerialNumber::new(bytes).unwrap()
}

/// One rule's evidence: a certificate that passes it and one that fails it.
#[derive(Clone)]
pub(super) struct Case {
    pub rule: Rule,
    /// A certificate the rule runs on (it applies and is in effect) and finds
    /// nothing in; no other rule finds anything in it either.
    pub pass: fn() -> Sample,
    /// A certificate the rule finds fault with.
    pub fail: fn() -> Sample,
    /// Every rule that finds fault with `fail`, once per finding, in the order
    /// they run: `rule` and any other the same fault trips.
    pub found: &'static [Rule],
    /// Part of the message of `rule`'s finding, as error messages carry it.
    pub says: &'static str,
}

/// Holds every case to what it claims; panics naming the rule of the first that
/// does not.
pub(super) fn check_cases(cases: &[Case]) {
    for case in cases {
        check_case(case);
    }
}

fn check_case(case: &Case) {
    let rule = case.rule;
    let pass = (case.pass)();
    let cert = Cert::new(&pass.tbs, &pass.profile, &pass.issuer);
    assert!(
        rule.runs_on(&cert, super::Dates::ByNotBefore),
        "{rule}: does not run on its passing case"
    );
    assert_eq!(pass.findings(), [], "{rule}: its passing case has findings");

    let fail = (case.fail)();
    let findings = fail.findings();
    let found: Vec<Rule> = findings.iter().map(|f| f.rule).collect();
    assert_eq!(found, case.found, "{rule}: its failing case: {findings:?}");
    assert!(found.contains(&rule), "{rule}: not among the rules found");
    assert!(
        findings
            .iter()
            .any(|f| f.rule == rule && f.message.contains(case.says)),
        "{rule}: no finding says `{}`: {findings:?}",
        case.says
    );
}
