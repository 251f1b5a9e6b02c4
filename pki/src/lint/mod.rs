//! Pre-issuance lints (invariant 3). Every planned certificate runs through these
//! before it is signed; any finding refuses issuance with a message naming the rule.
//! They read the decoded tbsCertificate as it will be signed, not the request.
//!
//! Each rule carries its own facts beside its check, in the file of its family,
//! which is the prefix of its name: `lint/rfc.rs` (`rfc5280.*`, `rfc3161.*`),
//! `lint/gpki.rs` (`gpki.*`) and `lint/cabf.rs` (`cabf.*`). The facts are a stable
//! name, the document and section the rule enforces, the certificates it applies
//! to, the date it takes effect and the check itself. This file is only the
//! registry: [`Rule`] lists the rules in the order they run, and [`lint`] decodes
//! what the rules share once, then runs every rule that applies and is in effect.
//!
//! Each family file ends with its evidence: for every rule, one certificate that
//! passes it and one that fails it (`tests::cases()`). A test here checks that
//! every rule of [`Rule::ALL`] has exactly one such case, and holds each to it.

use std::fmt;

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER,
};
use flagset::FlagSet;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};

use crate::cert::{find_extension, IssuerContext, SanEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::profile::Profile;
use crate::signer::KeyType;

mod cabf;
mod gpki;
mod name_constraints;
mod rfc;
#[cfg(test)]
mod sample;

pub use cabf::{ValiditySchedule, TLS_VALIDITY};
pub use name_constraints::{name_constraints_of, violates_name_constraints};

/// One lint finding: the rule and what is wrong. The rule serializes as its name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub rule: Rule,
    pub message: String,
}

/// Runs every lint that applies and is in effect on the certificate's
/// notBefore, and returns all findings: how a certificate made earlier is judged.
pub fn lint(tbs: &TbsCertificate, profile: &Profile, issuer: &IssuerContext) -> Vec<Finding> {
    run(tbs, profile, issuer, Dates::ByNotBefore)
}

/// Which rules' effective dates count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dates {
    /// A rule judges certificates valid from its date on.
    ByNotBefore,
    /// Every rule judges: a certificate signed now is held to every rule gpki
    /// knows, whatever notBefore a wrong clock would give it.
    Ignored,
}

fn run(
    tbs: &TbsCertificate,
    profile: &Profile,
    issuer: &IssuerContext,
    dates: Dates,
) -> Vec<Finding> {
    let cert = Cert::new(tbs, profile, issuer);
    let mut list = Vec::new();
    for &rule in Rule::ALL {
        if rule.runs_on(&cert, dates) {
            let mut out = Findings {
                rule,
                list: &mut list,
            };
            (rule.facts().check)(&cert, &mut out);
        }
    }
    list
}

/// The issuance gate (`cert::prepare`): every rule that applies, whatever its
/// effective date (a CA clock set back must not switch rules off), and the
/// findings as a `LintFailed` error naming each rule.
pub fn check(tbs: &TbsCertificate, profile: &Profile, issuer: &IssuerContext) -> Result<()> {
    let findings = run(tbs, profile, issuer, Dates::Ignored);
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
    )
    .because(crate::error::Reason::LintFailed { findings }))
}

/// What a rule carries, written beside its check in the file of its family.
struct Facts {
    /// Stable: findings and error messages carry it, and callers match on it.
    name: &'static str,
    /// The requirement enforced, e.g. `RFC 5280 §4.1.2.2`.
    source: &'static str,
    /// The certificates the rule reads.
    scope: Scope,
    /// Unix second from which the rule judges certificates, by their notBefore;
    /// `None`: always.
    effective: Option<i64>,
    /// Reports every fault found in one certificate.
    check: fn(&Cert<'_>, &mut Findings<'_>),
}

/// Which certificates a rule applies to: a description for people and the
/// predicate [`lint`] asks, kept together so that one cannot drift from the other.
#[derive(Clone, Copy)]
struct Scope {
    applies_to: &'static str,
    applies: fn(&Cert<'_>) -> bool,
}

/// Every certificate, decodable or not: the rules that read only the fields.
const EVERY: Scope = Scope {
    applies_to: "every certificate",
    applies: |_| true,
};

/// Every certificate whose SPKI and extensions decode: rules that read them.
const DECODED: Scope = Scope {
    applies_to: "every certificate whose key and extensions decode",
    applies: |c| c.undecodable.is_none(),
};

/// CA certificates, whose extensions decode.
const CA: Scope = Scope {
    applies_to: "CA certificates (basicConstraints cA TRUE)",
    applies: |c| c.undecodable.is_none() && c.is_ca,
};

/// End-entity certificates, whose extensions decode.
const END_ENTITY: Scope = Scope {
    applies_to: "end-entity certificates (no basicConstraints cA TRUE)",
    applies: |c| c.undecodable.is_none() && !c.is_ca,
};

/// Unix seconds of midnight UTC starting `date`, for the [effective
/// dates](Rule::effective) of rules.
const fn midnight_utc(date: time::Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp()
}

/// Declares [`Rule`] from one table: variant and the [`Facts`] it carries, in the
/// order the rules run.
macro_rules! rules {
    ($($variant:ident => $family:ident::$facts:ident;)*) => {
        /// A lint rule. Its [name](Rule::name) is stable: findings and error messages
        /// carry it, and callers match on it. It carries its facts:
        ///
        /// ```
        /// use gpki_pki::lint::Rule;
        ///
        /// let rule = Rule::CabfSanPresent;
        /// assert_eq!(rule.name(), "cabf.san.present");
        /// assert_eq!(rule.source(), "CA/B BR 7.1.2.7.12");
        /// assert!(rule.applies_to().contains("cabf-serverauth"));
        /// assert_eq!(rule.effective(), Some(1_694_736_000)); // 2023-09-15T00:00:00Z
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Rule {
            $(
                #[doc = concat!(
                    "The rule whose facts and check are `lint::", stringify!($family),
                    "::", stringify!($facts), "`."
                )]
                $variant,
            )*
        }

        impl Rule {
            /// Every rule, in the order [`lint`] runs them.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// What the rule carries.
            fn facts(self) -> &'static Facts {
                match self {
                    $(Rule::$variant => &$family::$facts,)*
                }
            }
        }
    };
}

rules! {
    SerialNonzero => rfc::SERIAL_NONZERO;
    SerialLength => rfc::SERIAL_LENGTH;
    SerialEntropy => gpki::SERIAL_ENTROPY;
    ValidityOrder => rfc::VALIDITY_ORDER;
    ValidityWithinIssuer => rfc::VALIDITY_WITHIN_ISSUER;
    ValidityProfile => gpki::VALIDITY_PROFILE;
    SubjectEmpty => rfc::SUBJECT_EMPTY;
    IssuerEmpty => rfc::ISSUER_EMPTY;
    ExtensionsUnique => rfc::EXTENSIONS_UNIQUE;
    Decodable => rfc::DECODABLE;
    ProfileKind => gpki::PROFILE_KIND;
    CaBasicConstraintsCritical => rfc::CA_BASIC_CONSTRAINTS_CRITICAL;
    CaKeyCertSign => rfc::CA_KEY_CERT_SIGN;
    CaSubjectKeyIdentifier => rfc::CA_SUBJECT_KEY_IDENTIFIER;
    CaPathLength => rfc::CA_PATH_LENGTH;
    EeNoCertSign => rfc::EE_NO_CERT_SIGN;
    EePathLength => rfc::EE_PATH_LENGTH;
    KeyUsagePresent => rfc::KEY_USAGE_PRESENT;
    KeyUsageNonempty => rfc::KEY_USAGE_NONEMPTY;
    AuthorityKeyIdentifier => rfc::AUTHORITY_KEY_IDENTIFIER;
    AuthorityKeyIdentifierMatch => rfc::AUTHORITY_KEY_IDENTIFIER_MATCH;
    KeyUsageEcEncipherment => gpki::KEY_USAGE_EC_ENCIPHERMENT;
    KeyUsageRsaKeyAgreement => gpki::KEY_USAGE_RSA_KEY_AGREEMENT;
    KeyTypeProfile => gpki::KEY_TYPE_PROFILE;
    KeyTypeSupported => gpki::KEY_TYPE_SUPPORTED;
    KeyUsageEkuConsistent => rfc::KEY_USAGE_EKU_CONSISTENT;
    Rfc3161Eku => rfc::RFC3161_EKU;
    EkuAny => gpki::EKU_ANY;
    NameConstraints => rfc::NAME_CONSTRAINTS;
    NameConstraintsCnAsDns => gpki::NAME_CONSTRAINTS_CN_AS_DNS;
    SubjectCnInSan => cabf::SUBJECT_CN_IN_SAN;
    CabfValiditySchedule => cabf::VALIDITY_SCHEDULE;
    CabfSanPresent => cabf::SAN_PRESENT;
    CabfSanInternalName => cabf::SAN_INTERNAL_NAME;
    CabfSanReservedIp => cabf::SAN_RESERVED_IP;
    CabfSanType => cabf::SAN_TYPE;
    CabfEkuServerAuth => cabf::EKU_SERVER_AUTH;
    CabfSubjectNoOu => cabf::SUBJECT_NO_OU;
    CabfKeyType => cabf::KEY_TYPE;
}

impl Rule {
    /// The stable name, e.g. `rfc5280.serial.nonzero`.
    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// The requirement the rule enforces, e.g. `RFC 5280 §4.1.2.2`.
    pub fn source(self) -> &'static str {
        self.facts().source
    }

    /// The certificates the rule applies to, in words, e.g. `CA certificates
    /// (basicConstraints cA TRUE)`.
    pub fn applies_to(self) -> &'static str {
        self.facts().scope.applies_to
    }

    /// The Unix second from which the rule judges a certificate, by its notBefore:
    /// a certificate valid from earlier is not held to it. `None`: always.
    pub fn effective(self) -> Option<i64> {
        self.facts().effective
    }

    /// Whether the rule runs on `c`: it applies to c and, unless `dates` says
    /// otherwise, is in effect on c's notBefore.
    fn runs_on(self, c: &Cert<'_>, dates: Dates) -> bool {
        let facts = self.facts();
        let in_effect =
            dates == Dates::Ignored || facts.effective.is_none_or(|from| from <= c.not_before);
        in_effect && (facts.scope.applies)(c)
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

/// A rule by its name, as [`Finding`]s travel in an error's reason.
impl<'de> serde::Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.name() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("no lint rule `{name}`")))
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

#[cfg(test)]
mod tests {
    use super::sample::{self, planned};
    use super::*;

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

    /// Coverage: the families' tables hold one case per rule, no more, and each
    /// case's certificates pass and fail as it says.
    #[test]
    fn every_rule_has_exactly_one_case_that_passes_and_one_that_fails() {
        let cases = [
            rfc::tests::cases(),
            gpki::tests::cases(),
            cabf::tests::cases(),
        ]
        .concat();
        for rule in Rule::ALL {
            let n = cases.iter().filter(|c| c.rule == *rule).count();
            assert_eq!(n, 1, "{rule} has {n} cases");
        }
        assert_eq!(cases.len(), Rule::ALL.len());
        sample::check_cases(&cases);
    }

    /// Each family holds the rules of its name's prefix, so a reader finds a rule
    /// by its name.
    #[test]
    fn each_rule_lives_in_the_family_of_its_name() {
        let family = |cases: Vec<sample::Case>, prefixes: &[&str]| {
            for case in cases {
                let name = case.rule.name();
                assert!(
                    prefixes.iter().any(|p| name.starts_with(p)),
                    "{name} is not one of {prefixes:?}"
                );
            }
        };
        family(rfc::tests::cases(), &["rfc5280.", "rfc3161."]);
        family(gpki::tests::cases(), &["gpki."]);
        family(cabf::tests::cases(), &["cabf."]);
    }

    #[test]
    fn every_rule_says_what_it_applies_to_and_is_in_effect_today() {
        let today = crate::time::now();
        for rule in Rule::ALL {
            assert!(!rule.applies_to().is_empty(), "{rule}");
            // Rules are added as the documents they enforce take effect: none may
            // wait, unseen, for a future date while gpki issues.
            assert!(rule.effective().is_none_or(|from| from <= today), "{rule}");
        }
    }

    #[test]
    fn effective_dates_are_midnight_utc_of_their_day() {
        use time::macros::date;
        assert_eq!(midnight_utc(date!(1970 - 01 - 01)), 0);
        assert_eq!(
            Some(midnight_utc(date!(2023 - 09 - 15))),
            crate::time::parse_rfc3339("2023-09-15T00:00:00Z").ok()
        );
        assert_eq!(
            Rule::CabfSanPresent.effective(),
            crate::time::parse_rfc3339("2023-09-15T00:00:00Z").ok()
        );
    }

    /// A rule judges only certificates valid from its effective date on: a TLS
    /// certificate without subjectAltName valid from the day before ballot SC-062's
    /// profiles took effect is not held to BR 7.1.2.7.12; from the day itself it is.
    #[test]
    fn a_rule_does_not_run_before_it_takes_effect() {
        let from = Rule::CabfSanPresent.effective().unwrap();
        let no_san = |not_before: i64| {
            let mut s = sample::server().without_extension(ID_CE_SUBJECT_ALT_NAME);
            s.issuer.not_before = 0;
            s.tbs.validity.not_before = crate::time::x509_time(not_before).unwrap();
            s.tbs.validity.not_after = crate::time::x509_time(not_before + 90 * 86_400).unwrap();
            s
        };
        assert_eq!(no_san(from - 86_400).rules(), []);
        assert_eq!(no_san(from - 1).rules(), []);
        assert_eq!(no_san(from).rules(), [Rule::CabfSanPresent]);
        // Issuance is held to every rule: a CA whose clock is set back to before
        // the date still refuses the certificate.
        let early = no_san(from - 86_400);
        let e = check(&early.tbs, &early.profile, &early.issuer).unwrap_err();
        assert_eq!(e.kind, ErrorKind::LintFailed);
        assert!(e.detail.contains("cabf.san.present"), "{e}");
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
        let refused = check(&tbs, &profile, &issuer).unwrap_err();
        assert_eq!(
            refused.detail,
            "certificate refused by lint: [gpki.serial.entropy] serial number has fewer than 64 bits"
        );
        // The findings themselves travel with the error, and back from JSON.
        let reason = crate::error::Reason::LintFailed {
            findings: findings.clone(),
        };
        assert_eq!(refused.reason(), Some(&reason));
        let wire = serde_json::to_value(&reason).unwrap();
        assert_eq!(wire["findings"][0]["rule"], "gpki.serial.entropy");
        assert_eq!(
            serde_json::from_value::<crate::error::Reason>(wire).unwrap(),
            reason
        );
        assert!(serde_json::from_value::<Rule>(serde_json::json!("no.such.rule")).is_err());

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

    /// The rules run, and report, in the order of [`Rule::ALL`], whichever family
    /// they come from.
    #[test]
    fn findings_come_in_the_order_of_the_rules() {
        let mut s = sample::server();
        s.tbs.serial_number = x509_cert::serial_number::SerialNumber::new(&[1]).unwrap();
        s.tbs.subject = crate::name::parse("OU=Web, O=Test, L=Seoul, C=KR").unwrap();
        s.tbs.issuer = x509_cert::name::Name::default();
        assert_eq!(
            s.rules(),
            [
                Rule::SerialEntropy,
                Rule::IssuerEmpty,
                Rule::CabfSubjectNoOu
            ]
        );
    }
}
